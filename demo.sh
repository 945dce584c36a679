#!/bin/bash
# The loop-image demo: a small btrfs on a loop device, two snapshots sent
# with ./btrfs send and received with ./btrfs receive, the received trees
# checked against their sources.  Needs root.  Cleans up
# its mount and loop device whatever happens.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (loop devices)" >&2; exit 1; }
# The loop image, its mount and the cleanup at exit.
TEST_NAME=demo WORK_NAME=btrfs-demo
. "$top/tests/lib.sh"
ours="$top/btrfs"
ref=/usr/bin/btrfs
mnt="$WORK/mnt"
make_loop_fs btrfs "$WORK/img" 512M "$mnt" defaults

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

mkdir "$mnt/backup"
echo "== ./btrfs send snap1 | ./btrfs receive backup   (full)"
"$ours" send "$mnt/snap1" | "$ours" receive "$mnt/backup"
echo "== ./btrfs send -p snap1 snap2 | ./btrfs receive backup   (incremental)"
"$ours" send -p "$mnt/snap1" "$mnt/snap2" | "$ours" receive "$mnt/backup"

# The received trees equal their sources, and carry the received uuid.
for s in snap1 snap2; do
	if ! diff -r --no-dereference "$mnt/$s" "$mnt/backup/$s"; then
		echo "== $s: received tree DIFFERS from its source" >&2
		exit 1
	fi
	uuid=$("$ref" subvolume show "$mnt/$s" | awk '$1 == "UUID:" { print $2 }')
	received=$("$ref" subvolume show "$mnt/backup/$s" |
		   awk '$1 == "Received" && $2 == "UUID:" { print $3 }')
	ro=$("$ref" property get -ts "$mnt/backup/$s" ro)
	echo "== backup/$s: same files as $s, received uuid $received, $ro"
	[ "$uuid" = "$received" ] && [ "$ro" = "ro=true" ] || exit 1
done

echo "== ./btrfs send -p snap1 snap2 | ./btrfs receive --dump"
"$ours" send -q -p "$mnt/snap1" "$mnt/snap2" | "$ours" receive --dump
echo "== demo done: full and incremental send | receive verified"
