#!/bin/bash
# Round trips: our send | our receive, our send | reference receive and
# reference send | our receive, each against reference send | reference
# receive, for full, incremental, clone-source and compressed streams:
# trees and received-subvolume properties must be equal.
. "$(dirname "$0")/recv-lib.sh"

require "root with btrfs and loop devices" have_loop_btrfs
require "Debian's btrfs-progs ($REF)" have_reference

make_fs src 2G || { fail "cannot make the source"; finish; }
SRC=$WORK/src
PAIRS="rr ro or oo"
for p in $PAIRS; do
	make_fs "d$p" 2G || { fail "cannot make destination $p"; finish; }
done

"$REF" -q subvolume create "$SRC/data"
"$PYTHON" - "$SRC/data" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(42)
os.makedirs(os.path.join(root, "dir/sub"))
os.makedirs(os.path.join(root, "comp"))
for i in range(60):
    d = os.path.join(root, "dir" if i % 2 else "dir/sub")
    with open(os.path.join(d, "f%d" % i), "wb") as f:
        f.write(rng.randbytes(rng.randrange(0, 70000)))
with open(os.path.join(root, "sparse"), "wb") as f:
    f.seek(10 << 20)
    f.write(b"end")
    f.seek(1 << 20)
    f.write(rng.randbytes(8192))
os.link(os.path.join(root, "dir/f1"), os.path.join(root, "hard"))
os.symlink("dir/f3", os.path.join(root, "sym"))
os.mkfifo(os.path.join(root, "fifo"))
os.setxattr(os.path.join(root, "dir/f5"), "user.tag", b"x" * 100)
os.chmod(os.path.join(root, "dir/f7"), 0o4750)
os.chown(os.path.join(root, "dir/f9"), 1000, 100)
PY
"$REF" property set "$SRC/data/comp" compression zstd
for i in 1 2 3; do
	yes "compressible line $i" | head -c 300000 >"$SRC/data/comp/text$i"
done
cp --reflink=always "$SRC/data/dir/f11" "$SRC/data/reflink"
sync
"$REF" -q subvolume snapshot -r "$SRC/data" "$SRC/s1"
mv "$SRC/data/dir/sub" "$SRC/data/moved"
rm "$SRC/data/dir/f1" "$SRC/data/dir/f5"
head -c 5000 /dev/urandom >>"$SRC/data/dir/f3"
truncate -s 100 "$SRC/data/dir/f7"
cp --reflink=always "$SRC/data/dir/f13" "$SRC/data/moved/clone"
ln "$SRC/data/dir/f15" "$SRC/data/hard2"
yes "more text" | head -c 200000 >"$SRC/data/comp/text4"
sync
"$REF" -q subvolume snapshot -r "$SRC/data" "$SRC/s2"
"$REF" -q subvolume snapshot -r "$SRC/data" "$SRC/s3"

bin() {
	case $1 in
	r) echo "$REF" ;;
	o) echo "$OURS" ;;
	esac
}

# trip WHAT SUBVOL [send args]: send and receive SUBVOL in every pairing,
# then compare each pairing's result with the reference pair's, with
# $TRIP_COMPARE as an option of tree-compare if set.
trip() {
	local what=$1 name=$2 p s r rc
	shift 2
	for p in $PAIRS; do
		s=$(bin "${p:0:1}")
		r=$(bin "${p:1:1}")
		"$s" send -q "$@" | "$r" receive "$WORK/d$p" >"$WORK/trip.out" 2>"$WORK/trip.err"
		rc=$?
		check "$what ($p): send | receive exits 0" [ "$rc" -eq 0 ]
		[ "$rc" -eq 0 ] || head -3 "$WORK/trip.err" >&2
	done
	for p in ro or oo; do
		compare_trees "$what ($p vs rr)" "$WORK/drr/$name" "$WORK/d$p/$name" \
			${TRIP_COMPARE:+"$TRIP_COMPARE"}
		compare_props "$what ($p vs rr)" "$WORK/drr/$name" "$WORK/d$p/$name"
	done
}

trip "full" s1 "$SRC/s1"
trip "incremental" s2 -p "$SRC/s1" "$SRC/s2"
trip "clone source, automatic parent" s3 -c "$SRC/s1" -c "$SRC/s2" "$SRC/s3"
"$REF" -q subvolume snapshot -r "$SRC/data" "$SRC/c1"
TRIP_COMPARE=--encoded-layout trip "compressed data" c1 --proto 2 \
	--compressed-data "$SRC/c1"
finish
