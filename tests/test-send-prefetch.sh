#!/bin/bash
# The prefetcher beside the send ioctl (send-prefetch.c): it changes no
# byte of the stream, it does read ahead, and it stays within its window
# (64 MiB of stream) of what the kernel has written, however far behind
# the reader of the stream falls: a send that waits on its reader does not
# read the whole subvolume into the page cache.  Of a large file it reads
# ahead only the head: the kernel's own readahead takes the rest; of a
# sparse file, the head of each run of data after a hole.
. "$(dirname "$0")/recv-lib.sh"

require "root with btrfs and loop devices" have_loop_btrfs
command -v fincore >/dev/null || {
	fail "fincore (util-linux) is missing"
	finish
}

WINDOW_MIB=64
make_fs src 1G || { fail "cannot make the filesystem"; finish; }
SRC=$WORK/src

# 96 files of 2 MiB (192 MiB, three windows; each within the head that
# is read ahead), then small files and directories; the same again
# changed, for an incremental.
"$REF" -q subvolume create "$SRC/data"
"$PYTHON" - "$SRC/data" <<'PY'
import os, sys
root = sys.argv[1]
for i in range(96):
    with open(os.path.join(root, "big%02d" % i), "wb") as f:
        f.write(os.urandom(2 << 20))
for d in range(20):
    os.mkdir(os.path.join(root, "d%02d" % d))
    for i in range(50):
        with open(os.path.join(root, "d%02d" % d, "f%d" % i), "wb") as f:
            f.write(os.urandom(3000 + 97 * i))
PY
"$REF" -q subvolume snapshot -r "$SRC/data" "$SRC/s1"
"$PYTHON" - "$SRC/data" <<'PY'
import os, sys
root = sys.argv[1]
for i in range(0, 96, 12):
    with open(os.path.join(root, "big%02d" % i), "r+b") as f:
        f.seek(1 << 20)
        f.write(os.urandom(1 << 20))
for d in range(0, 20, 2):
    with open(os.path.join(root, "d%02d" % d, "new"), "wb") as f:
        f.write(os.urandom(20000))
PY
"$REF" -q subvolume snapshot -r "$SRC/data" "$SRC/s2"
# One file of 64 MiB.
"$REF" -q subvolume create "$SRC/large"
head -c 64M /dev/urandom >"$SRC/large/file"
"$REF" -q subvolume snapshot -r "$SRC/large" "$SRC/l1"
# A file of 32 runs of 64 KiB, each after a hole of 1 MiB.
"$REF" -q subvolume create "$SRC/holes"
"$PYTHON" - "$SRC/holes/file" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
for i in range(32):
    os.pwrite(fd, os.urandom(64 << 10), (i * 1088 + 1024) << 10)
os.close(fd)
PY
"$REF" -q subvolume snapshot -r "$SRC/holes" "$SRC/h1"
sync

# Byte for byte the stream of a send without it, full and incremental.
for args in "$SRC/s1" "-p $SRC/s1 $SRC/s2"; do
	name=${args//[^a-z0-9]/}
	# shellcheck disable=SC2086
	"$OURS" send -q -f "$WORK/$name.on" $args
	# shellcheck disable=SC2086
	BTRFS_SEND_PREFETCH=0 "$OURS" send -q -f "$WORK/$name.off" $args
	check "send ${args//$SRC\//} with the prefetcher: the same stream" \
		cmp -s "$WORK/$name.on" "$WORK/$name.off"
done

# It does read ahead (BTRFS_SEND_PREFETCH=count tells how much).
readaheads() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	"$@" 2>&1 >/dev/null | sed -n 's/^prefetch of .*: \([0-9]*\) readaheads$/\1/p'
}
n=$(BTRFS_SEND_PREFETCH=count readaheads "$OURS" send -f /dev/null "$SRC/s1")
check "the prefetcher reads ahead on a cold cache ($n readaheads)" \
	test "${n:-0}" -ge 96
n=$(BTRFS_SEND_PREFETCH=count readaheads "$OURS" send -f /dev/null \
	-p "$SRC/s1" "$SRC/s2")
check "of an incremental it reads only what changed ($n readaheads)" \
	test "${n:-0}" -ge 8 -a "${n:-0}" -le 24
n=$(BTRFS_SEND_PREFETCH=count readaheads "$OURS" send -f /dev/null "$SRC/l1")
# The kernel may have read a head itself before the prefetcher got there:
# the counts are at most what it would read, well under reading it all.
check "of a large file only the head ($n readaheads of 2 MiB, not 32)" \
	test "${n:-0}" -le 1
n=$(BTRFS_SEND_PREFETCH=count readaheads "$OURS" send -f /dev/null "$SRC/h1")
check "of a sparse file each run after a hole ($n readaheads of 32, not 1)" \
	test "${n:-0}" -ge 16 -a "${n:-0}" -le 32

# MiB of the files of s1 in the page cache.
cached_mib() {
	fincore -b -n -o RES "$SRC"/s1/big* "$SRC"/s1/d*/* |
		awk '{ s += $1 } END { printf "%d\n", s / 1048576 }'
}

# A reader that takes 2 MiB and then stops reading: the kernel blocks on
# the full pipe and the prefetcher must stop at its window.
sync
echo 3 >/proc/sys/vm/drop_caches
"$OURS" send -q "$SRC/s1" |
	"$PYTHON" -c 'import sys, time
sys.stdin.buffer.read(2 << 20)
time.sleep(600)' &
reader=$!
# Wait (as long as the machine needs) until the prefetcher got going...
for _ in $(seq 200); do
	[ "$(cached_mib)" -ge 32 ] && break
	sleep 0.1
done
started=$(cached_mib)
# ...then until it stops reading (unbounded, it would read all 192 MiB).
held=$started
for _ in $(seq 60); do
	sleep 1
	now=$(cached_mib)
	[ "$now" -eq "$held" ] && break
	held=$now
done
echo "cached: $started MiB when it got going, $held MiB when it stopped" >&2
pkill -P $$ -f "time.sleep\(600\)" 2>/dev/null
kill "$reader" 2>/dev/null
wait 2>/dev/null
check "the prefetcher runs ahead of a stalled reader ($started MiB)" \
	test "$started" -ge 32
# The window, what the reader and the pipe took, what the kernel itself
# reads ahead, and slack.
check "but no more than its window ($held MiB cached of 192 MiB)" \
	test "$held" -le $((WINDOW_MIB + 32))

finish
