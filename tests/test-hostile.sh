#!/bin/bash
# Hostile and broken input to receive, and faults on both sides: every
# malformed stream gets its own ERROR and exit 1 and leaves no subvolume
# that looks complete; a full destination, a sender killed mid-stream, a
# snapshot deleted during send; receive and dump under valgrind.
. "$(dirname "$0")/recv-lib.sh"

require "root with btrfs and loop devices" have_loop_btrfs
require "Debian's btrfs-progs ($REF)" have_reference

make_fs dst 2G || { fail "cannot make the destination"; finish; }
DST=$WORK/dst
SUB="subvol path=s:h uuid=uuid:4000000000000000000000000000000a ctransid=u64:9"
N=0

# The subvolume NAME under DIR, if it exists, is writable with no received
# uuid: nobody can take it for a complete copy.
check_partial() {
	local what=$1 path=$2 show
	[ -e "$path" ] || { pass "$what: no subvolume left"; return; }
	show=$("$REF" subvolume show "$path" 2>&1)
	if echo "$show" | grep -qP '^\tReceived UUID:\s+-$' &&
		echo "$show" | grep -qP '^\tFlags:\s+-$'; then
		pass "$what: partial subvolume writable, no received uuid"
	else
		fail "$what: partial subvolume looks complete: $(echo "$show" | grep -P 'Received UUID|Flags' | paste -sd' ')"
	fi
	"$REF" subvolume delete -c "$path" >/dev/null 2>&1
}

# bad NAME PATTERN SPEC: receive of the crafted stream exits 1 with an
# ERROR line containing PATTERN; whatever it left is not complete.
bad() {
	local name=$1 pattern=$2 spec=$3 dir rc
	N=$((N + 1))
	dir=$DST/bad$N
	mkdir -p "$dir"
	printf '%s\n' "$spec" | "$PYTHON" "$TOP/tests/mkstream.py" >"$WORK/bad.stream"
	timeout 30 "$OURS" receive -f "$WORK/bad.stream" "$dir" >/dev/null 2>"$WORK/bad.err"
	rc=$?
	if [ "$rc" -ne 1 ]; then
		fail "$name: exit $rc, expected 1 ($(head -2 "$WORK/bad.err" | paste -sd'|'))"
	elif ! grep -qF -- "$pattern" "$WORK/bad.err"; then
		fail "$name: no ERROR with '$pattern': $(grep '^ERROR' "$WORK/bad.err" | head -2 | paste -sd'|')"
	elif ! grep -q '^ERROR: ' "$WORK/bad.err"; then
		fail "$name: no ERROR line"
	else
		pass "$name"
	fi
	check_partial "$name" "$dir/h"
}

bad "bad magic" "bad magic" "header 1 magic=btrfs-strexm\\x00"
bad "version 0" "unsupported stream version 0" "header 0"
bad "version 4" "unsupported stream version 4" "header 4"
bad "bad crc" "checksum mismatch" "header 1
$SUB
mkfile path=s:f ino=u64:257 !crc=0x1234"
bad "command over the v1 maximum" "exceeds the protocol v1 maximum" "header 1
$SUB
raw f7ff0000 0300 00000000"
bad "attribute past the command end" "runs past the end of the command" "header 1
$SUB
mkfile path=s:f!len=200 ino=u64:257"
bad "zero-length path" "mkfile: empty path in stream" "header 1
$SUB
mkfile path=s: ino=u64:257
end"
bad "zero-length rename target" "empty path in stream" "header 1
$SUB
mkfile path=s:f ino=u64:257
rename path=s:f path_to=s:
end"
bad "path longer than PATH_MAX" "longer than PATH_MAX" "header 2
$SUB
mkfile path=fill:4096:0x61 ino=u64:257"
bad "xattr name over 255 bytes" "set_xattr f" "header 1
$SUB
mkfile path=s:f ino=u64:257
set_xattr path=s:f xattr_name=s:user.$(printf 'n%.0s' $(seq 251)) xattr_data=s:v
end"
bad "write at offset 2^63" "out of range" "header 1
$SUB
mkfile path=s:f ino=u64:257
write path=s:f file_offset=u64:9223372036854775808 data=s:x
end"
bad "write ending past 2^63" "out of range" "header 1
$SUB
mkfile path=s:f ino=u64:257
write path=s:f file_offset=u64:9223372036854775807 data=s:xy
end"
bad "clone of length 0" "zero length" "header 1
$SUB
mkfile path=s:f ino=u64:257
write path=s:f file_offset=u64:0 data=fill:4096:1
mkfile path=s:g ino=u64:258
clone path=s:g file_offset=u64:0 clone_len=u64:0 clone_uuid=uuid:4000000000000000000000000000000a clone_ctransid=u64:9 clone_path=s:f clone_offset=u64:0
end"
bad "clone past the source end" "clone g from f failed" "header 1
$SUB
mkfile path=s:f ino=u64:257
write path=s:f file_offset=u64:0 data=fill:4096:1
mkfile path=s:g ino=u64:258
clone path=s:g file_offset=u64:0 clone_len=u64:65536 clone_uuid=uuid:4000000000000000000000000000000a clone_ctransid=u64:9 clone_path=s:f clone_offset=u64:8192
end"
bad "unknown command" "unknown command type 77" "header 1
$SUB
77 path=s:f"
bad "unknown attribute" "unknown attribute type 99" "header 1
$SUB
mkfile path=s:f ino=u64:257 99=u64:1"
bad "duplicated attribute" "attribute given twice" "header 1
$SUB
mkfile path=s:f path=s:g ino=u64:257"
bad "END followed by more commands" "not a new stream header" "header 1
$SUB
mkfile path=s:f ino=u64:257
end
mkfile path=s:g ino=u64:258
end"
bad "input ends before END" "ends before the END command" "header 1
$SUB
mkfile path=s:f ino=u64:257"
bad "command before any subvolume" "before any subvol" "header 1
mkfile path=s:f ino=u64:257
end"

# Device nodes and FIFOs the stream made are never written, read or
# opened: the data would go to a real device, a FIFO would hang.
bad "write to a device node" "d is not a regular file, refused" "header 1
$SUB
mknod path=s:d mode=u64:0o20600 rdev=u64:0x107 ino=u64:257
write path=s:d file_offset=u64:0 data=s:x
end"
bad "fallocate on a device node" "d is not a regular file, refused" "header 2
$SUB
mknod path=s:d mode=u64:0o60600 rdev=u64:0x700 ino=u64:257
fallocate path=s:d fallocate_mode=u32:3 file_offset=u64:0 size=u64:4096
end"
bad "write to a fifo" "p is not a regular file, refused" "header 1
$SUB
mkfifo path=s:p ino=u64:257
write path=s:p file_offset=u64:0 data=s:x
end"
bad "clone from a fifo" "p is not a regular file, refused" "header 1
$SUB
mkfifo path=s:p ino=u64:257
mkfile path=s:f ino=u64:258
clone path=s:f file_offset=u64:0 clone_len=u64:4096 clone_uuid=uuid:4000000000000000000000000000000a clone_ctransid=u64:9 clone_path=s:p clone_offset=u64:0
end"
bad "chmod of a symlink" "refusing to change the mode through a symlink" "header 1
$SUB
symlink path=s:l path_link=s:/etc/shadow ino=u64:257
chmod path=s:l mode=u64:0o777
end"

# An xattr name of exactly 255 bytes is received.
N=$((N + 1))
mkdir -p "$DST/ok$N"
printf '%s\n' "header 1" "$SUB" "mkfile path=s:f ino=u64:257" \
	"set_xattr path=s:f xattr_name=s:user.$(printf 'n%.0s' $(seq 250)) xattr_data=fill:3000:0x41" "end" |
	"$PYTHON" "$TOP/tests/mkstream.py" >"$WORK/ok.stream"
"$OURS" receive -f "$WORK/ok.stream" "$DST/ok$N" >/dev/null 2>"$WORK/ok.err"
check "xattr name of 255 bytes is received" [ $? -eq 0 ]
check "its value arrives whole" "$PYTHON" -c "import os, sys
sys.exit(os.getxattr('$DST/ok$N/h/f', 'user.' + 'n' * 250) != b'A' * 3000)"

# A parent that exists here with another transid is taken, as btrfs-progs
# takes it: the stream's transid is the sender's own, which differs from
# ours whenever the sender received that subvolume itself.
mkdir -p "$DST/stale"
printf '%s\n' "header 1" "subvol path=s:p uuid=uuid:5000000000000000000000000000000b ctransid=u64:5" "end" |
	"$PYTHON" "$TOP/tests/mkstream.py" >"$WORK/p.stream"
"$OURS" receive -f "$WORK/p.stream" "$DST/stale" >/dev/null 2>&1
printf '%s\n' "header 1" "snapshot path=s:c uuid=uuid:5000000000000000000000000000000c ctransid=u64:9 clone_uuid=uuid:5000000000000000000000000000000b clone_ctransid=u64:6" "end" |
	"$PYTHON" "$TOP/tests/mkstream.py" >"$WORK/c.stream"
"$OURS" receive -f "$WORK/c.stream" "$DST/stale" >/dev/null 2>"$WORK/stale.err"
check "parent with another transid: received" [ $? -eq 0 ]
check "parent with another transid: no ERROR" \
	[ -z "$(grep '^ERROR' "$WORK/stale.err")" ]
check "parent with another transid: the snapshot is complete" \
	grep -qP '^\tReceived UUID:\s+50000000-0000-0000-0000-00000000000c$' \
	<("$REF" subvolume show "$DST/stale/c" 2>&1)

# A live, writable subvolume (or the top level) named as parent or clone
# source by its uuid and ctransid is refused: its data would be read into
# the received tree.
"$REF" -q subvolume create "$DST/live"
echo secret >"$DST/live/secret"
sync
live=$("$PYTHON" - "$DST/live" <<'PY'
import fcntl, os, struct, sys, uuid
IOC = (2 << 30) | (504 << 16) | (0x94 << 8) | 60   # GET_SUBVOL_INFO
buf = bytearray(504)
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.ioctl(fd, IOC, buf)
print(uuid.UUID(bytes=bytes(buf[296:312])).hex, struct.unpack_from("<Q", buf, 344)[0])
PY
)
set -- $live
bad "a live subvolume named as parent" "is writable or the top level, refused" "header 1
snapshot path=s:h uuid=uuid:6000000000000000000000000000000a ctransid=u64:3 clone_uuid=uuid:$1 clone_ctransid=u64:$2
end"
bad "a live subvolume named as clone source" "is writable or the top level, refused" "header 1
$SUB
mkfile path=s:f ino=u64:257
clone path=s:f file_offset=u64:0 clone_len=u64:4096 clone_uuid=uuid:$1 clone_ctransid=u64:$2 clone_path=s:secret clone_offset=u64:0
end"
set --

# The open file kept between commands follows renames and never outlives
# its name: renamed over, moved with its directory, unlinked and remade.
mkdir -p "$DST/cache"
printf '%s\n' "header 1" "subvol path=s:c uuid=uuid:7000000000000000000000000000000a ctransid=u64:1" \
	"mkfile path=s:a ino=u64:257" "write path=s:a file_offset=u64:0 data=s:AAAA" \
	"mkfile path=s:b ino=u64:258" "write path=s:b file_offset=u64:0 data=s:BBBB" \
	"rename path=s:a path_to=s:b" "write path=s:b file_offset=u64:0 data=s:XX" \
	"mkdir path=s:d ino=u64:259" "mkfile path=s:d/f ino=u64:260" \
	"write path=s:d/f file_offset=u64:0 data=s:1111" "rename path=s:d path_to=s:e" \
	"write path=s:e/f file_offset=u64:2 data=s:22" "chmod path=s:e/f mode=u64:0o640" \
	"mkfile path=s:g ino=u64:261" "write path=s:g file_offset=u64:0 data=s:GG" \
	"unlink path=s:g" "mkfile path=s:g ino=u64:262" "write path=s:g file_offset=u64:0 data=s:H" \
	"chown path=s:g uid=u64:1000 gid=u64:100" "utimes path=s:g atime=ts:100.0 mtime=ts:200.0 ctime=ts:0.0" \
	"end" | "$PYTHON" "$TOP/tests/mkstream.py" >"$WORK/cache.stream"
"$OURS" receive -f "$WORK/cache.stream" "$DST/cache" >/dev/null 2>"$WORK/cache.err"
check "cache edge cases: received" [ $? -eq 0 ]
check "renamed over: the new name gets the write" [ "$(cat "$DST/cache/c/b")" = XXAA ]
check "moved with its directory: the write follows" [ "$(cat "$DST/cache/c/e/f")" = 1122 ]
check "moved with its directory: so does the chmod" [ "$(stat -c %a "$DST/cache/c/e/f")" = 640 ]
check "unlinked and remade: the new file gets the write" [ "$(cat "$DST/cache/c/g")" = H ]
check "unlinked and remade: owner and times on the new file" \
	[ "$(stat -c '%u:%g %Y' "$DST/cache/c/g")" = "1000:100 200" ]

# ------------------------------------------------ a real stream, cut short
make_fs src 2G || { fail "cannot make the source"; finish; }
SRC=$WORK/src
"$REF" -q subvolume create "$SRC/data"
mkdir -p "$SRC/data/d"
for i in $(seq 1 40); do
	head -c $((i * 3000)) /dev/urandom >"$SRC/data/d/f$i"
done
head -c 64M /dev/urandom >"$SRC/data/big"
"$REF" -q subvolume snapshot -r "$SRC/data" "$SRC/snap"
"$REF" -q send -f "$WORK/full.stream" "$SRC/snap"
cut_total=0
cut_ok=0
for cut in $("$PYTHON" - "$WORK/full.stream" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
pos, spans = 17, []
while pos < len(data):
    n, = struct.unpack_from("<I", data, pos)
    spans.append((pos, pos + 10 + n))
    pos += 10 + n
cuts = {s for s, _ in spans[1:]} | {(s + e) // 2 for s, e in spans} | {s + 4 for s, _ in spans}
cuts = sorted(c for c in cuts if c < len(data))
step = max(1, len(cuts) // 40)
print(" ".join(str(c) for c in cuts[::step]))
PY
); do
	cut_total=$((cut_total + 1))
	rm -rf "$DST/cut"
	mkdir -p "$DST/cut"
	head -c "$cut" "$WORK/full.stream" |
		timeout 60 "$OURS" receive "$DST/cut" >/dev/null 2>"$WORK/cut.err"
	rc=$?
	if [ "$rc" -eq 1 ] && grep -q '^ERROR: ' "$WORK/cut.err"; then
		cut_ok=$((cut_ok + 1))
	else
		fail "stream cut at $cut: exit $rc: $(head -2 "$WORK/cut.err" | paste -sd'|')"
	fi
	check_partial "cut at $cut" "$DST/cut/snap" >/dev/null
done
check "cuts at command boundaries and inside commands all refused ($cut_ok/$cut_total)" \
	[ "$cut_ok" -eq "$cut_total" ]

# ------------------------------------------ the sender dies mid-stream
kills_ok=0
for trial in $(seq 1 20); do
	rm -rf "$DST/kill"
	mkdir -p "$DST/kill"
	rm -f "$WORK/pipe"
	mkfifo "$WORK/pipe"
	"$OURS" receive -f "$WORK/pipe" "$DST/kill" >/dev/null 2>"$WORK/kill.err" &
	rpid=$!
	"$OURS" send -q -f "$WORK/pipe" "$SRC/snap" 2>/dev/null &
	spid=$!
	# Kill it once the stream has begun (the subvolume is made): killed
	# before it even opened the FIFO, the receive would wait for a writer.
	for i in $(seq 200); do
		[ -e "$DST/kill/snap" ] || ! kill -0 "$spid" 2>/dev/null && break
		sleep 0.05
	done
	sleep "0.0$((RANDOM % 10))$((RANDOM % 10))"
	kill -9 "$spid" 2>/dev/null
	wait "$spid" 2>/dev/null
	timeout 60 tail --pid="$rpid" -f /dev/null
	wait "$rpid"
	rc=$?
	if [ -e "$DST/kill/snap" ] && [ "$rc" -eq 0 ]; then
		# The sender finished before the kill: a complete receive.
		"$REF" subvolume delete -c "$DST/kill/snap" >/dev/null 2>&1
		kills_ok=$((kills_ok + 1))
		continue
	fi
	if [ "$rc" -ne 1 ]; then
		fail "kill trial $trial: receive exit $rc"
		continue
	fi
	check_partial "kill trial $trial" "$DST/kill/snap" >/dev/null
	kills_ok=$((kills_ok + 1))
done
check "sender killed 20 times: receive fails cleanly every time ($kills_ok)" [ "$kills_ok" -eq 20 ]
rm -rf "$DST/kill"
mkdir -p "$DST/after"
"$OURS" send -q "$SRC/snap" | "$OURS" receive "$DST/after" >/dev/null 2>&1
check "a full receive succeeds after the killed ones" [ $? -eq 0 ]
"$PYTHON" "$TREE_COMPARE" --no-atime --no-extents "$SRC/snap" "$DST/after/snap" >"$WORK/cmp.out" 2>&1
check "and its tree equals the source" [ $? -eq 0 ]
[ -n "${TEST_VERBOSE:-}" ] && head -20 "$WORK/cmp.out"

# ------------------------------------------------- destination full
make_fs tiny 160M || { fail "cannot make the small destination"; finish; }
"$REF" -q subvolume create "$SRC/huge"
head -c 300M /dev/urandom >"$SRC/huge/file"
"$REF" -q subvolume snapshot -r "$SRC/huge" "$SRC/hugesnap"
"$OURS" send -q "$SRC/hugesnap" 2>/dev/null | "$OURS" receive "$WORK/tiny" >/dev/null 2>"$WORK/enospc.err"
check "a full destination exits 1" [ $? -eq 1 ]
check "with one clear ERROR line" [ "$(grep -c '^ERROR: ' "$WORK/enospc.err")" -eq 1 ]
check "naming ENOSPC" grep -q 'No space left on device' "$WORK/enospc.err"
check_partial "full destination" "$WORK/tiny/hugesnap"

# ------------------------------------ a snapshot deleted during send
"$REF" -q subvolume snapshot -r "$SRC/data" "$SRC/victim"
{ "$OURS" send -q "$SRC/victim"; echo "send=$?" >"$WORK/victim.rc"; } |
	{ sleep 2; cat >/dev/null; } &
vpid=$!
sleep 0.5
"$REF" subvolume delete "$SRC/victim" >"$WORK/victim.del" 2>&1
del_rc=$?
timeout 60 tail --pid="$vpid" -f /dev/null
check "send during deletion ends, no hang" [ -s "$WORK/victim.rc" ]
if [ "$del_rc" -eq 0 ]; then
	check "deleted during send: send reports an error or completes" grep -qE 'send=(0|1)$' "$WORK/victim.rc"
else
	check "deletion of a subvolume being sent is refused, send completes" grep -q 'send=0' "$WORK/victim.rc"
fi

# ------------------------------------------------------------ valgrind
if command -v valgrind >/dev/null; then
	vg() {
		valgrind -q --error-exitcode=99 --leak-check=full \
			--suppressions="$TOP/tests/valgrind.supp" \
			--errors-for-leak-kinds=definite,indirect \
			--show-leak-kinds=definite,indirect "$@"
	}
	for s in full clone xattrs compressed-zstd multi hardlinks-incr; do
		vg "$OURS" receive --dump -f "$TOP/tests/streams/$s.stream" >/dev/null 2>"$WORK/vg.err"
		check "valgrind: dump of $s clean" [ $? -eq 0 ]
	done
	mkdir -p "$DST/vg"
	for s in full clone xattrs compressed-zstd multi; do
		vg "$OURS" receive -f "$TOP/tests/streams/$s.stream" "$DST/vg" >/dev/null 2>"$WORK/vg.err"
		rc=$?
		check "valgrind: receive of $s clean (exit $rc)" [ "$rc" -eq 0 ]
		[ "$rc" -eq 0 ] || head -20 "$WORK/vg.err" >&2
	done
	vg "$OURS" receive -f "$WORK/bad.stream" "$DST/vg" >/dev/null 2>&1
	check "valgrind: a failing receive is clean too" [ $? -eq 1 ]
	# Valgrind lacks openat2: paths go through the fallback walk, which
	# must refuse a symlink the stream made just the same.
	printf '%s\n' "header 1" "$SUB" "symlink path=s:l path_link=s:/tmp ino=u64:257" \
		"mkfile path=s:l/escaped ino=u64:258" "end" |
		"$PYTHON" "$TOP/tests/mkstream.py" >"$WORK/esc.stream"
	mkdir -p "$DST/vgesc"
	vg "$OURS" receive -f "$WORK/esc.stream" "$DST/vgesc" >/dev/null 2>"$WORK/vg.err"
	check "valgrind (no openat2): symlink escape refused" [ $? -eq 1 ]
	check "valgrind (no openat2): refusal names the path" grep -q 'refused: l/escaped' "$WORK/vg.err"
	check "valgrind (no openat2): nothing escaped" [ ! -e /tmp/escaped ]
	vg "$OURS" send -q -f /dev/null "$SRC/snap" 2>"$WORK/vg.err"
	rc=$?
	check "valgrind: send clean (exit $rc)" [ "$rc" -eq 0 ]
	[ "$rc" -eq 0 ] || head -20 "$WORK/vg.err" >&2
elif [ -n "${CI:-}" ]; then
	fail "valgrind is required in CI"
fi
finish
