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
# 2,000 files of 4,097 bytes: each ends one byte into a block.
"$REF" -q subvolume create "$SRC/odd"
"$PYTHON" - "$SRC/odd" <<'PY'
import os, sys
for i in range(2000):
    with open(os.path.join(sys.argv[1], "f%04d" % i), "wb") as f:
        f.write(os.urandom(4097))
PY
"$REF" -q subvolume snapshot -r "$SRC/odd" "$SRC/o1"
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

# It does read ahead.  The test hook BTRFS_SEND_PREFETCH_TEST=cold makes
# the prefetcher take every page as not cached and finish its walk, and
# report its readaheads and their bytes: figures of what it did, the
# same whatever the page cache holds and whichever thread is faster.
# A readahead is one extent's part of a head, so that how a loaded machine
# happened to cut the files into extents adds readaheads: the bytes are
# what is exact, the readaheads at least one per run of data.
# prefetched SEND-ARGS...: "READAHEADS BYTES" of a send of SEND-ARGS.
prefetched() {
	BTRFS_SEND_PREFETCH_TEST=cold "$OURS" send -f /dev/null "$@" 2>&1 |
		sed -n 's/^prefetch: \([0-9]*\) readaheads of \([0-9]*\) bytes, .*/\1 \2/p'
}

# Bytes of data in the files, but at most the head of RUN_HEAD of each
# that is read ahead.
heads() {
	stat -c %s "$@" | awk '{ s += $1 < 2097152 ? $1 : 2097152 }
		END { print s }'
}

read -r n bytes <<<"$(prefetched "$SRC/s1")"
want=$(heads "$SRC"/s1/big* "$SRC"/s1/d*/*)
check "the prefetcher reads ahead the head of each file ($n readaheads of $bytes bytes, $want expected)" \
	test "${n:-0}" -ge 1096 -a "${bytes:-0}" -eq "$want"
read -r n bytes <<<"$(prefetched -p "$SRC/s1" "$SRC/s2")"
# The changed MiB of 8 big files, and 10 new files of 20000 bytes.
want=$((8 * 1048576 + 10 * 20000))
check "of an incremental it reads only what changed ($n readaheads of $bytes bytes, $want expected)" \
	test "${n:-0}" -ge 18 -a "${bytes:-0}" -eq "$want"
# Its window is counted in stream bytes, which it foresees from the tree:
# of files that end inside a block, the file's bytes, not the block's.
# Counting blocks, it foresaw 1.9 times the stream here, and on a large
# tree of small files fell behind the kernel for good.
read -r seen real < <(BTRFS_SEND_PREFETCH_TEST=cold "$OURS" send \
	-f /dev/null "$SRC/o1" 2>&1 |
	sed -n 's/^prefetch: .*, \([0-9]*\) stream bytes foreseen of \([0-9]*\)$/\1 \2/p')
seen=${seen:-0} real=${real:-0}
check "it foresees the stream within 10 % ($seen bytes of $real)" \
	test "$real" -gt 0 -a $((10 * seen)) -gt $((9 * real)) \
	-a $((10 * seen)) -lt $((11 * real))
read -r n bytes <<<"$(prefetched "$SRC/l1")"
check "of a large file only the head ($n readaheads of $bytes bytes, 2 MiB of 64)" \
	test "${n:-0}" -ge 1 -a "${bytes:-0}" -eq 2097152
read -r n bytes <<<"$(prefetched "$SRC/h1")"
check "of a sparse file each run after a hole ($n readaheads of 32, $bytes bytes)" \
	test "${n:-0}" -ge 32 -a "${bytes:-0}" -eq $((32 * 65536))

# MiB of the files of s1 in the page cache.
cached_mib() {
	fincore -b -n -o RES "$SRC"/s1/big* "$SRC"/s1/d*/* |
		awk '{ s += $1 } END { printf "%d\n", s / 1048576 }'
}

# A reader that takes 2 MiB and then stops reading until $WORK/go is
# there: the kernel blocks on the full pipe and the prefetcher must stop
# at its window.  The page cache is emptied first so that the prefetcher,
# with its own look at the cache this time, finds the files ahead of the
# kernel cold; what it did comes from the test hook.
sync
echo 3 >/proc/sys/vm/drop_caches
BTRFS_SEND_PREFETCH_TEST=1 "$OURS" send -q "$SRC/s1" 2>"$WORK/window.err" |
	"$PYTHON" -c 'import os, sys, time
sys.stdin.buffer.read(2 << 20)
for _ in range(12000):
    if os.path.exists(sys.argv[1]):
        break
    time.sleep(0.05)
while sys.stdin.buffer.read(1 << 20):
    pass' "$WORK/go" &
reader=$!
# Wait (120 s at most) until the prefetcher waits at its window.
for _ in $(seq 1200); do
	grep -q '^prefetch: window full' "$WORK/window.err" && break
	sleep 0.1
done
started=$(sed -n 's/^prefetch: window full, \([0-9]*\) bytes.*/\1/p' \
	"$WORK/window.err")
# What is cached can only be less than what was read, whenever it is
# counted: the window, what the reader and the pipes took, what the
# kernel itself reads ahead, and slack.
held=$(cached_mib)
touch "$WORK/go"
wait "$reader"
lead=$(sed -n 's/^prefetch: .* at most \([0-9]*\) bytes ahead of the kernel, .*/\1/p' \
	"$WORK/window.err")
echo "read ahead: $((${started:-0} >> 20)) MiB at the window, $held MiB cached then, at most $((${lead:-0} >> 20)) MiB ahead" >&2
check "the prefetcher runs ahead of a stalled reader ($((${started:-0} >> 20)) MiB)" \
	test "${started:-0}" -ge $((32 << 20))
check "but no more than its window ($held MiB cached of 192 MiB)" \
	test "$held" -le $((WINDOW_MIB + 32))
check "never further ahead of the kernel than its window ($((${lead:-0} >> 20)) MiB)" \
	test -n "$lead" -a "${lead:-0}" -le $((WINDOW_MIB << 20))

finish
