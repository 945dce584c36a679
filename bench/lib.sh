# SPDX-License-Identifier: GPL-2.0-only
# What bench/run-bench.sh and bench/run-scale.sh share: loop filesystems,
# caches, clocks and subvolume cleanup.  Sourced after tests/lib.sh; uses
# $work (the work directory), $ref (btrfs-progs' binary) and $dst (the
# destination's mount point).

die() {
	echo "bench: $*" >&2
	exit 1
}

log() {
	printf '[%s] %s\n' "$(date +%T)" "$*" >&2
}

# make_fs NAME SIZE [prealloc]: a fresh btrfs on an image file, mounted on
# $work/NAME, noatime and nodiscard.  The loop device bypasses the page
# cache of /tmp's filesystem (direct I/O) where it can, so that dropping
# caches and syncing measure the device, not a second cache.  Discard is
# off and the destination's image is preallocated: otherwise every run
# would punch holes in the image (subvolume deletion) and then allocate
# them again in /tmp's filesystem, in the background or under the next
# timed command, a large and erratic cost on either tool's account.
make_fs() {
	local img=$work/$1.img
	if [ -n "${3:-}" ]; then
		fallocate -l "$2" "$img" || die "fallocate $2 for $img failed"
	fi
	make_fs_image btrfs "$img" "$2" -K || die "mkfs.btrfs $img failed"
	loop_attach "$img" --direct-io=on 2>/dev/null || loop_attach "$img" ||
		die "losetup $img failed"
	mount_fs "$LOOP_DEV" "$work/$1" noatime,nodiscard ||
		die "mount $LOOP_DEV failed"
}

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

# prime FILE...: read files once, untimed.  On a virtual machine the
# host caches the guest's disk: the first read of freshly written data
# is slower than any later one (and its waits show up as system time),
# whatever drop_caches does in the guest.  Priming puts every timed
# command, first or second of its run, in the same state.
prime() {
	cat "$@" >/dev/null
}

# bash's clock, to the microsecond and without a process of its own.
now() {
	echo "$EPOCHREALTIME"
}

# since T0: seconds elapsed since T0 (a now() value), to the millisecond.
since() {
	local t=$EPOCHREALTIME
	awk -v a="$t" -v b="$1" 'BEGIN { printf "%.3f", a - b }'
}

# The last line of a /usr/bin/time -f '%e %U %S %M' output (a failing
# command adds a "Command exited with non-zero status" line before it).
time_of() {
	tail -n 1 "$1"
}

# delete_subvols DIR...: delete every subvolume directly under each DIR
# (received ones are read-only: deleting works on them as root), then wait
# for the cleaner, so that it does not run under the next timed command.
delete_subvols() {
	local d s any=
	for d in "$@"; do
		[ -d "$d" ] || continue
		for s in "$d"/*; do
			[ -e "$s" ] || continue
			"$ref" -q subvolume delete "$s" >/dev/null
			any=1
		done
	done
	[ -z "$any" ] || wait_cleaner "$dst"
}

# wait_cleaner MOUNT: wait until deleted subvolumes are cleaned up.  The
# filesystem sync wakes the cleaner, which would otherwise wait for the
# next transaction commit (up to 30 s).
wait_cleaner() {
	"$ref" -q filesystem sync "$1"
	"$ref" subvolume sync "$1" >/dev/null
}

