#!/bin/bash
# The loop-image demo: a small btrfs on a loop device, a snapshot sent as a
# stream, and the stream read back by this btrfs.  Needs root.  Cleans up
# its mount and loop device whatever happens.
set -euo pipefail

top=$(cd "$(dirname "$0")" && pwd)
ours="$top/btrfs"
ref=/usr/bin/btrfs
work=$(mktemp -d /tmp/btrfs-demo.XXXXXX)
mnt="$work/mnt"
loop=

cleanup() {
	set +e
	mountpoint -q "$mnt" && umount "$mnt"
	[ -n "$loop" ] && losetup -d "$loop"
	rm -rf "$work"
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (loop devices)" >&2; exit 1; }

truncate -s 512M "$work/img"
mkfs.btrfs -q "$work/img"
loop=$(losetup --find --show "$work/img")
mkdir "$mnt"
mount "$loop" "$mnt"

"$ref" -q subvolume create "$mnt/data"
mkdir -p "$mnt/data/docs/old"
echo "hello from the demo" >"$mnt/data/docs/hello.txt"
seq 1 20000 >"$mnt/data/docs/numbers.txt"
ln -s docs/hello.txt "$mnt/data/link"
ln "$mnt/data/docs/hello.txt" "$mnt/data/docs/old/hardlink.txt"
"$ref" -q subvolume snapshot -r "$mnt/data" "$mnt/snap1"
echo "changed" >>"$mnt/data/docs/hello.txt"
mv "$mnt/data/docs/old" "$mnt/data/archive"
"$ref" -q subvolume snapshot -r "$mnt/data" "$mnt/snap2"

# btrfs send of this project comes with a later release; the stream is
# made by btrfs-progs' send and read by this receive --dump.
"$ref" -q send -f "$work/full.stream" "$mnt/snap1"
"$ref" -q send -p "$mnt/snap1" -f "$work/incr.stream" "$mnt/snap2"

for s in full incr; do
	echo "== btrfs receive --dump of the $s stream ($(stat -c %s "$work/$s.stream") bytes)"
	"$ours" receive --dump -f "$work/$s.stream" | tee "$work/$s.ours"
	"$ref" receive --dump -f "$work/$s.stream" >"$work/$s.ref"
	if cmp -s "$work/$s.ours" "$work/$s.ref"; then
		echo "== identical to btrfs-progs' output"
	else
		echo "== DIFFERENT from btrfs-progs' output" >&2
		exit 1
	fi
done
