#!/bin/bash
# btrfs --format json send --progress and receive --progress on a loop
# btrfs: every stderr line parses as JSON, the summary's figures are those
# of the real transfer (bytes = stream size, commands = the JSON dump's,
# exit status); after an interrupted receive, send --resume and receive
# --resume count the skipped prefix apart, in JSON and in the text
# summary; paths are escaped; --format json is refused where a command
# has no JSON output.
. "$(dirname "$0")/recv-lib.sh"

require "root with btrfs and loop devices" have_loop_btrfs
require "Debian's btrfs-progs ($REF)" have_reference
require "python3" "$PYTHON" -c 'import json'

CHECKER=$TOP/tests/check-progress-json.py
# Test only: a status object every millisecond instead of every 10 s.
export BTRFS_PROGRESS_INTERVAL_MS=1

make_fs src 1G && make_fs dst 1G ||
	{ fail "cannot make the filesystems"; finish; }
SRC=$WORK/src DST=$WORK/dst S=$WORK/streams
mkdir -p "$S" "$DST/whole" "$DST/cont" "$DST/again"

# Some MiB of data and names that JSON must escape.
"$REF" -q subvolume create "$SRC/vol" >/dev/null
for i in 1 2 3 4 5 6; do
	rh rand "$SRC/vol/big$i" 0 $((i * 1024 * 1024 + 777)) "b$i" ||
		{ fail "cannot write the data"; finish; }
done
for i in $(seq 1 200); do
	rh rand "$SRC/vol/f$i" 0 $((i * 53 % 3000)) "s$i"
done
"$PYTHON" - "$SRC/vol" <<'PY'
import os, sys
root = os.fsencode(sys.argv[1])
for name in (b'quote"d', b'back\\slash', b'ctl\x01\x1b[31m', b'bad\xff\xfe',
             'caf\u00e9'.encode()):
    with open(os.path.join(root, name), "wb") as f:
        f.write(b"x" * 5000)
PY
"$REF" -q subvolume snapshot -r "$SRC/vol" "$SRC/snap" >/dev/null
sync

"$OURS" send -q -f "$S/plain" "$SRC/snap" ||
	{ fail "cannot make the reference stream"; finish; }
SIZE=$(stat -c %s "$S/plain")
CMDS=$("$OURS" --format json receive --dump -f "$S/plain" | wc -l)
echo "    stream: $SIZE bytes, $CMDS commands"

# json_ok WHAT FILE OPERATION KEY=VALUE...: the lines and the summary.
json_ok() {
	local what=$1
	shift
	check "$what" "$PYTHON" "$CHECKER" "$@"
}

# send: the same stream, and a summary that matches it.
"$OURS" -q --format json send --progress -f "$S/json" "$SRC/snap" \
	2>"$S/send.err"
check "json send --progress exits 0" [ $? -eq 0 ]
check "json send --progress: the stream is unchanged" \
	cmp -s "$S/json" "$S/plain"
json_ok "json send --progress: lines and summary" "$S/send.err" send \
	bytes="$SIZE" commands="$CMDS" skipped_bytes=0 exit_status=0
check "json send --progress: status objects while sending" \
	grep -q '"phase":"sending"' "$S/send.err"

# receive from the file: total known, bytes and commands of the stream.
"$OURS" -q --format json receive --progress -f "$S/plain" "$DST/whole" \
	2>"$S/recv.err"
check "json receive --progress exits 0" [ $? -eq 0 ]
json_ok "json receive --progress: lines and summary" "$S/recv.err" receive \
	bytes="$SIZE" total="$SIZE" commands="$CMDS" skipped_bytes=0 \
	exit_status=0 syncing=1
check "json receive --progress: the last update before the summary is syncing" \
	grep -q '"phase":"syncing","bytes":'"$SIZE"',' <(tail -2 "$S/recv.err" | head -1)
check "json receive --progress: the subvolume is received" \
	[ "$("$REF" property get "$DST/whole/snap" ro)" = "ro=true" ]

# receive --dump --progress: the JSON dump on stdout, progress on stderr.
"$OURS" --format json receive --dump --progress -f "$S/plain" \
	>"$S/dump.json" 2>"$S/dump.err"
check "json receive --dump --progress exits 0" [ $? -eq 0 ]
check "json receive --dump --progress: stdout is the JSON dump" \
	cmp -s "$S/dump.json" <("$OURS" --format json receive --dump -f "$S/plain")
json_ok "json receive --dump --progress: lines and summary" "$S/dump.err" \
	receive bytes="$SIZE" commands="$CMDS" exit_status=0 syncing=0

# The paths of the status objects are the stream's bytes, escaped: each
# decodes (surrogateescape) to a path of the dump.
"$PYTHON" - "$S/dump.err" "$S/dump.json" <<'PY' >"$S/paths.out"
import json, sys
dumped = set()
for line in open(sys.argv[2], encoding="utf-8"):
    obj = json.loads(line)
    # A SUBVOL or SNAPSHOT command's path is the subvolume's name.
    for key in ("path", "subvol"):
        if key in obj:
            dumped.add(obj[key].encode("utf-8", "surrogateescape"))
seen = 0
for line in open(sys.argv[1], encoding="utf-8"):
    obj = json.loads(line)
    path = obj.get("path")
    if path is None:
        continue
    raw = path.encode("utf-8", "surrogateescape")
    if raw not in dumped:
        print("unknown path %r" % raw)
        sys.exit(1)
    seen += 1
print("%d paths" % seen)
PY
rc=$?
check "json progress: every path is one of the stream's ($(cat "$S/paths.out"))" \
	[ "$rc" = 0 ]
# A hostile name, slowly, so that status objects name it.
{
	echo "header 1"
	echo "subvol path=s:v uuid=uuid:e5c0000000000000000000000000000e ctransid=u64:1"
	for i in $(seq 40); do
		echo 'chmod path=s:q\x22b\x5cc\x01\x1b[31m\xff mode=u64:420'
	done
	echo end
} | "$PYTHON" "$TOP/tests/mkstream.py" >"$S/evil.stream"
{ head -c 200 "$S/evil.stream"; sleep 0.3; tail -c +201 "$S/evil.stream"; } |
	"$OURS" --format json receive --dump --progress >/dev/null 2>"$S/evil.err"
json_ok "json progress of a hostile name: lines and summary" "$S/evil.err" \
	receive bytes="$(stat -c %s "$S/evil.stream")" commands=42 exit_status=0
check "json progress: a hostile name is escaped and decodes to its bytes" \
	"$PYTHON" -c '
import json, sys
want = b"q\"b\\c\x01\x1b[31m\xff"
for line in open(sys.argv[1], encoding="utf-8"):
    p = json.loads(line).get("path")
    if p is not None and p.encode("utf-8", "surrogateescape") == want:
        sys.exit(0)
sys.exit(1)' "$S/evil.err"
check "json progress: no raw control byte on stderr" \
	eval '! grep -q $'"'"'[\001\033]'"'"' "$S/evil.err"'

# A failed receive still ends with a summary, with its exit status.
"$OURS" -q --format json receive --progress -f "$S/plain" "$WORK/nowhere" \
	2>"$S/failed.err"
check "json receive into a missing directory exits 1" [ $? -eq 1 ]
grep '^{' "$S/failed.err" >"$S/failed.json"
json_ok "json receive that fails: the summary has exit status 1" \
	"$S/failed.json" receive exit_status=1

# An interrupted receive: the stream cut at 60%, a resume record left.
CUT=$((SIZE * 60 / 100))
head -c "$CUT" "$S/plain" | "$OURS" -q receive "$DST/cont" 2>/dev/null
check "the cut receive fails" [ "${PIPESTATUS[1]}" != 0 ]
OFF=$(sed -n 's/^offset //p' "$DST/cont/.snap.btrfs-receive-resume")
check "the cut receive left a resume offset ($OFF)" [ "${OFF:-0}" -gt 0 ]
TOKEN=$("$OURS" receive --resume-token "$DST/cont/snap")
check "a token for the interrupted receive" [ -n "$TOKEN" ]
LEFT=$((SIZE - OFF))

# send --resume, text: the skipped prefix and the bytes sent apart.
"$OURS" send -q --progress --resume "$TOKEN" -f "$S/cont.text" "$SRC/snap" \
	2>"$S/cont.text.err"
check "send --resume --progress exits 0" [ $? -eq 0 ]
check "send --resume --progress: a Skipped line with the prefix" \
	grep -qE "^Skipped $OFF bytes \([0-9.]+[KMG]?i?B\) in [0-9.]+ s, [0-9]+ commands, received before the interruption\$" \
	"$S/cont.text.err"
check "send --resume --progress: Sent counts only what was sent" \
	grep -qE "^Sent $LEFT bytes \([0-9.]+[KMG]?i?B\) in [0-9.]+ s, [0-9.]+[KMG]?i?B/s, [0-9]+ commands\$" \
	"$S/cont.text.err"

# send --resume, JSON: the summary counts the rest; then its receive.
"$OURS" -q --format json send --progress --resume "$TOKEN" -f "$S/cont" \
	"$SRC/snap" 2>"$S/cont.err"
check "json send --resume --progress exits 0" [ $? -eq 0 ]
check "json send --resume: the same continuation as the text run" \
	cmp -s "$S/cont" "$S/cont.text"
json_ok "json send --resume: bytes = stream size - skipped prefix" \
	"$S/cont.err" send bytes="$LEFT" skipped_bytes="$OFF" exit_status=0
SKIPPED_CMDS=$("$PYTHON" -c 'import json, sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["skipped_commands"])' "$S/cont.err")
json_ok "json send --resume: commands = all - skipped ($SKIPPED_CMDS)" \
	"$S/cont.err" send commands=$((CMDS - SKIPPED_CMDS))
"$OURS" -q --format json receive --progress -f "$S/cont" "$DST/cont" \
	2>"$S/cont.recv.err"
check "json receive of the continuation exits 0" [ $? -eq 0 ]
json_ok "json receive of the continuation: bytes = size - prefix" \
	"$S/cont.recv.err" receive bytes="$LEFT" skipped_bytes="$OFF" \
	skipped_commands="$SKIPPED_CMDS" commands=$((CMDS - SKIPPED_CMDS)) \
	exit_status=0
compare_trees "the continued receive" "$DST/whole/snap" "$DST/cont/snap"

# receive --resume of the whole stream: the prefix is read and skipped.
head -c "$CUT" "$S/plain" | "$OURS" -q receive "$DST/again" 2>/dev/null
OFF2=$(sed -n 's/^offset //p' "$DST/again/.snap.btrfs-receive-resume")
"$OURS" -q --format json receive --progress --resume -f "$S/plain" \
	"$DST/again" 2>"$S/again.err"
check "json receive --resume exits 0" [ $? -eq 0 ]
json_ok "json receive --resume: bytes = size - skipped prefix" \
	"$S/again.err" receive bytes=$((SIZE - OFF2)) skipped_bytes="$OFF2" \
	total=$((SIZE - OFF2)) exit_status=0
compare_trees "receive --resume" "$DST/whole/snap" "$DST/again/snap"

# --format json only where there is JSON output: refused elsewhere.
refused() {
	local what=$1
	shift
	"$OURS" "$@" >"$WORK/ref.out" 2>"$WORK/ref.err"
	check "$what: exit 1" [ $? -eq 1 ]
	check "$what: an ERROR line" grep -q '^ERROR: --format json is supported by ' "$WORK/ref.err"
	check "$what: nothing on stdout" [ ! -s "$WORK/ref.out" ]
}
refused "json send without --progress" --format json send "$SRC/snap"
refused "json send --estimate" --format json send --estimate "$SRC/snap"
refused "json receive without --dump or --progress" \
	--format json receive -f "$S/plain" "$DST/whole"
refused "json receive --resume-token" \
	--format json receive --resume-token "$DST/cont/snap"
refused "json receive --abort" --format json receive --abort "$DST/cont/x"
"$OURS" --format text send -q -f "$S/text" "$SRC/snap"
check "--format text send is a plain send" cmp -s "$S/text" "$S/plain"

finish
