#!/bin/bash
# Streams that restart in the middle: btrfs-progs' send, stopped and
# continued (SIGSTOP/SIGCONT) while the kernel waits on a full pipe, makes
# the kernel send the subvolume's whole stream again after what it had
# written (btrfs-progs issue #719).  Such streams are recorded from the
# reference's send behind a reader limited to 40 MB/s: a full send with at
# least three restarts, an incremental one, and "send -e" of two
# subvolumes restarted inside the second (no stream header there).  Ours
# must receive each (onto btrfs, --to-dir, --dump) as the reference
# receives the clean stream, with one WARNING per restart and no ERROR.
# A restart whose repeat differs from what was applied is refused.
. "$(dirname "$0")/recv-lib.sh"

require "root with btrfs and loop devices" have_loop_btrfs
require "Debian's btrfs-progs ($REF)" have_reference

export RECV_TIMEOUT=600
ST=$WORK/streams
mkdir -p "$ST"

make_fs src 2G || { fail "cannot make the source filesystem"; finish; }
SRC=$WORK/src

"$REF" -q subvolume create "$SRC/data" >/dev/null
"$PYTHON" - "$SRC/data" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(719)
for i in range(3):
    with open(os.path.join(root, "big%d" % i), "wb") as f:
        for _ in range(25):
            f.write(rng.randbytes(4 << 20))
for d in range(10):
    os.makedirs(os.path.join(root, "d%d" % d))
for i in range(300):
    with open(os.path.join(root, "d%d" % (i % 10), "f%03d" % i), "wb") as f:
        f.write(rng.randbytes(rng.randrange(0, 20000)))
os.symlink("d1/f001", os.path.join(root, "sym"))
os.link(os.path.join(root, "d2", "f002"), os.path.join(root, "hard"))
PY
sync
"$REF" -q subvolume snapshot -r "$SRC/data" "$SRC/s1" >/dev/null
"$PYTHON" - "$SRC/data" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(2023)
fd = os.open(os.path.join(root, "big1"), os.O_WRONLY)
os.pwrite(fd, rng.randbytes(40 << 20), 30 << 20)
os.close(fd)
with open(os.path.join(root, "big3"), "wb") as f:
    f.write(rng.randbytes(40 << 20))
for i in range(0, 300, 7):
    os.unlink(os.path.join(root, "d%d" % (i % 10), "f%03d" % i))
os.rename(os.path.join(root, "d5"), os.path.join(root, "moved"))
PY
sync
"$REF" -q subvolume snapshot -r "$SRC/data" "$SRC/s2" >/dev/null
"$REF" -q subvolume create "$SRC/small" >/dev/null
"$PYTHON" - "$SRC/small" <<'PY'
import os, random, sys
rng = random.Random(5)
for i in range(20):
    with open(os.path.join(sys.argv[1], "g%02d" % i), "wb") as f:
        f.write(rng.randbytes(50000))
PY
sync
"$REF" -q subvolume snapshot -r "$SRC/small" "$SRC/e1" >/dev/null

# magic_count FILE: how many stream headers FILE holds.
magic_count() {
	"$PYTHON" -c '
import mmap, sys
with open(sys.argv[1], "rb") as f:
    m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    n, i = 0, m.find(b"btrfs-stream\0")
    while i >= 0:
        n, i = n + 1, m.find(b"btrfs-stream\0", i + 1)
    print(n)' "$1"
}

size_of() { stat -c %s "$1"; }

no_warning() { ! grep -q '^WARNING' "$1"; }

# record OUT WAIT STOPS [send args]: the reference's send into OUT through
# the slow reader, stopped and continued STOPS times from WAIT s on.
record() {
	local out=$1 wait=$2 stops=$3 spid rpid i rc
	shift 3
	rm -f "$WORK/pipe" && mkfifo "$WORK/pipe" || return 1
	"$PYTHON" "$TOP/tests/slow-reader.py" 40 "$out" <"$WORK/pipe" &
	rpid=$!
	"$REF" send -q "$@" >"$WORK/pipe" 2>"$out.err" &
	spid=$!
	sleep "$wait"
	for ((i = 0; i < stops; i++)); do
		kill -STOP "$spid" 2>/dev/null || break
		sleep 0.2
		kill -CONT "$spid"
		sleep "0.$((2 + i % 4))"
	done
	wait "$spid"
	rc=$?
	wait "$rpid" && [ "$rc" = 0 ]
}

# record_restarted OUT CLEAN MIN MAX WAIT [send args]: record until OUT
# holds MIN to MAX stream headers and is longer than CLEAN (the send
# really restarted), stopping more often at each try.
record_restarted() {
	local out=$1 clean=$2 min=$3 max=$4 wait=$5 try n
	shift 5
	for try in 1 2 3 4; do
		record "$out" "$wait" $((2 + 2 * try)) "$@" || {
			fail "the reference's send $* failed: $(head -2 "$out.err")"
			return 1
		}
		n=$(magic_count "$out")
		[ "$n" -ge "$min" ] && [ "$n" -le "$max" ] &&
			[ "$(size_of "$out")" -gt "$(size_of "$clean")" ] &&
			return 0
	done
	fail "send $* did not restart after $try tries"
	return 1
}

# A send of a read-only snapshot is deterministic: a clean stream stands
# for what the restarted one should have been.
send_ref "$ST/full.clean" "$SRC/s1" && send_ref "$ST/full.clean2" "$SRC/s1" &&
	send_ref "$ST/incr.clean" -p "$SRC/s1" "$SRC/s2" &&
	send_ref "$ST/e.clean" -e "$SRC/e1" "$SRC/s1" ||
	{ fail "cannot make the clean streams"; finish; }
check "two clean sends of one snapshot are the same stream" \
	cmp -s "$ST/full.clean" "$ST/full.clean2"
rm -f "$ST/full.clean2"

record_restarted "$ST/full" "$ST/full.clean" 4 99 0.5 "$SRC/s1"
record_restarted "$ST/incr" "$ST/incr.clean" 2 99 0.3 -p "$SRC/s1" "$SRC/s2"
# Inside the second subvolume only: its stream has no header to repeat.
record_restarted "$ST/e" "$ST/e.clean" 1 1 1 -e "$SRC/e1" "$SRC/s1"
echo "restarts: full $(($(magic_count "$ST/full") - 1)), incremental $(($(magic_count "$ST/incr") - 1)), -e $(($(size_of "$ST/e") - $(size_of "$ST/e.clean"))) bytes more"

# warnings_ok WHAT BASE RECORDED CLEAN: exit 0, no ERROR line, a WARNING
# per restart, and the bytes they skipped are what the restarts added.
warnings_ok() {
	local what=$1 base=$2 n sum
	if [ "$(cat "$base.rc")" != 0 ] || grep -q '^ERROR: ' "$base.err"; then
		fail "$what: exit $(cat "$base.rc")"
		sed 's/^/    /' "$base.err" | head -5 >&2
		return
	fi
	pass "$what: exit 0, no ERROR"
	n=$(grep -c '^WARNING: the stream restarts at offset [0-9]* (the sender was stopped and the kernel sent the subvolume again, btrfs-progs issue #719): [0-9]* bytes repeated, checked and skipped$' "$base.err")
	sum=$(sed -n 's/^WARNING: the stream restarts .*: \([0-9]*\) bytes repeated.*/\1/p' "$base.err" |
		awk '{ s += $1 } END { print s + 0 }')
	check "$what: a WARNING per restart ($n)" [ "$n" -ge 1 ]
	check "$what: the warnings account for every repeated byte" \
		[ "$sum" = $(($(size_of "$3") - $(size_of "$4"))) ]
}

# receive_pair WHAT NAME RECORDED CLEAN [args]: the reference receives
# CLEAN, ours RECORDED; both trees and properties must be the same.
receive_pair() {
	local what=$1 name=$2 rec=$3 clean=$4 base
	shift 4
	RECV_SEQ=$((RECV_SEQ + 1))
	base=$WORK/recv.$RECV_SEQ
	run_receive "$REF" "$RROOT" "$base.ref" "$RDEST" "$clean" "$@"
	[ "$(cat "$base.ref.rc")" = 0 ] ||
		fail "$what: the reference's receive of the clean stream fails"
	run_receive "$OURS" "$OROOT" "$base.ours" "$ODEST" "$rec" "$@"
	warnings_ok "$what" "$base.ours" "$rec" "$clean"
	for n in $name; do
		compare_trees "$what: $n" "$RDEST/$n" "$ODEST/$n"
		compare_props "$what: $n" "$RDEST/$n" "$ODEST/$n"
		check "$what: $n: received uuid set" \
			grep -q '^received_uuid=[0-9a-f]' <(subvol_props "$ODEST/$n")
	done
}

# dump_same WHAT RECORDED CLEAN: ours dumps the recorded stream as the
# reference dumps the clean one.
dump_same() {
	local base=$WORK/dump.$RANDOM
	"$REF" receive --dump -f "$3" >"$base.ref" 2>/dev/null
	"$OURS" receive --dump -f "$2" >"$base.ours" 2>"$base.err"
	echo $? >"$base.rc"
	warnings_ok "$1: --dump" "$base" "$2" "$3"
	if cmp -s "$base.ref" "$base.ours"; then
		pass "$1: --dump is the clean stream's"
	else
		fail "$1: --dump differs from the clean stream's:"
		diff "$base.ref" "$base.ours" | head -6 | sed 's/^/    /' >&2
	fi
}

new_dests || { fail "cannot make the destinations"; finish; }
receive_pair "full" s1 "$ST/full" "$ST/full.clean"
receive_pair "incremental" s2 "$ST/incr" "$ST/incr.clean"
dump_same "full" "$ST/full" "$ST/full.clean"
dump_same "incremental" "$ST/incr" "$ST/incr.clean"

# --to-dir, onto a directory of the same filesystem.
mkdir -p "$OMNT/plain"
timeout -k 10 300 "$OURS" receive -f "$ST/full" --to-dir "$OMNT/plain" \
	>"$WORK/todir.out" 2>"$WORK/todir.err" </dev/null
echo $? >"$WORK/todir.rc"
warnings_ok "full --to-dir" "$WORK/todir" "$ST/full" "$ST/full.clean"
compare_trees "full --to-dir" "$RDEST/s1" "$OMNT/plain/s1" --no-extents \
	--no-dir-size --ignore ".:xattr user.btrfs.received_uuid" \
	--ignore ".:xattr user.btrfs.stransid"

# Cut short after its restarts, then resumed from the clean stream: the
# resume record holds the position in the stream without the repeats.
head -c $(($(size_of "$ST/full") - 40000000)) "$ST/full" >"$ST/full.cut"
mkdir -p "$OMNT/resume"
run_receive "$OURS" "$OROOT" "$WORK/cut" "$OMNT/resume" "$ST/full.cut"
check "cut after the restarts: the receive fails" \
	[ "$(cat "$WORK/cut.rc")" != 0 ]
check "cut after the restarts: they were repaired first" \
	grep -q '^WARNING: the stream restarts at offset' "$WORK/cut.err"
run_receive "$OURS" "$OROOT" "$WORK/resume" "$OMNT/resume" \
	"$ST/full.clean" --resume
check "resumed from the clean stream" [ "$(cat "$WORK/resume.rc")" = 0 ]
# (the reference's s1 shares its extents with s2 since)
compare_trees "resumed" "$RDEST/s1" "$OMNT/resume/s1" --no-extents
compare_props "resumed" "$RDEST/s1" "$OMNT/resume/s1"
rm -f "$ST/full.cut"

new_dests || { fail "cannot make the destinations"; finish; }
receive_pair "send -e" "e1 s1" "$ST/e" "$ST/e.clean"
dump_same "send -e" "$ST/e" "$ST/e.clean"

# ------------------------------------------------ a repeat that differs
# The clean full stream cut inside a command, then the stream again with
# a byte of an earlier write changed and its CRC made right.
"$PYTHON" - "$ST/full.clean" "$ST/differs" "$TOP/tests" <<'PY' >"$WORK/differs.at"
import struct, sys
sys.path.insert(0, sys.argv[3])
from mkstream import crc32c
data = open(sys.argv[1], "rb").read()
pos, cmds = 17, []
while pos < len(data):
    ln, typ = struct.unpack_from("<IH", data, pos)
    cmds.append((pos, ln, typ))
    pos += 10 + ln
writes = [c for c in cmds if c[2] == 15 and c[1] > 1000]
w = writes[len(writes) // 2]
after = cmds[cmds.index(w) + 3]
cut = after[0] + 4
mod = bytearray(data)
mod[w[0] + 10 + w[1] - 1] ^= 0xff
body = bytes(mod[w[0]:w[0] + 6]) + b"\0\0\0\0" + bytes(mod[w[0] + 10:w[0] + 10 + w[1]])
struct.pack_into("<I", mod, w[0] + 6, crc32c(body))
open(sys.argv[2], "wb").write(data[:cut] + bytes(mod))
print(cut, after[0])
PY
read -r CUT AT <"$WORK/differs.at"
new_dests || { fail "cannot make the destinations"; finish; }
for mode in btrfs dump; do
	base=$WORK/differs.$mode
	if [ $mode = btrfs ]; then
		run_receive "$OURS" "$OROOT" "$base" "$ODEST" "$ST/differs"
	else
		"$OURS" receive --dump -f "$ST/differs" >"$base.out" 2>"$base.err"
		echo $? >"$base.rc"
	fi
	check "differing repeat, $mode: refused" [ "$(cat "$base.rc")" != 0 ]
	check "differing repeat, $mode: the error names the restart" \
		grep -q "^ERROR: stream offset $AT: the stream restarts at offset $CUT (a stopped sender, btrfs-progs issue #719), and the repeated part differs from what was applied before offset $AT$" "$base.err"
	check "differing repeat, $mode: no WARNING" no_warning "$base.err"
done

finish
