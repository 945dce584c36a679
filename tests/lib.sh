# SPDX-License-Identifier: GPL-2.0-only
# Shared helpers of the integration tests; source it, then call tests.
# Also the one place of loop images, mounts and their cleanup at exit
# (make_loop_fs, mount_tmpfs, release_fs), for demo.sh, bench/run-bench.sh,
# tests/run-fuzz.sh and tests/streams/make-corpus.sh as well.
set -u

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# BTRFS_BIN selects another build, e.g. the sanitizer one.
OURS="${BTRFS_BIN:-$TOP/btrfs}"
REF=/usr/bin/btrfs
SHARED_STREAMS="$TOP/../shared/streams/external"
# The dump prints local time: pin it so that both tools agree.
export TZ=UTC
PYTHON=${PYTHON:-python3}
# The interpreter itself, not a version manager's shim in front of it:
# a shim (pyenv's) costs half a second a call, minutes over the suite.
_py=$("$PYTHON" -c 'import sys; print(sys.executable)' 2>/dev/null) &&
	[ -n "$_py" ] && PYTHON=$_py
unset _py

# A script may set TEST_NAME (its messages), WORK_NAME and WORK_PARENT
# (where its work directory goes) and KEEP_WORK (keep it at exit) first.
TEST_NAME=${TEST_NAME:-$(basename "$0" .sh)}
FAILURES=0
CHECKS=0

WORK=$(mktemp -d "${WORK_PARENT:-${TMPDIR:-/tmp}}/${WORK_NAME:-$TEST_NAME}.XXXXXX")

# What this script attached and mounted: the only devices and mounts that
# its exit undoes.  A device or mount of anyone else is never touched.
OUR_LOOPS=()
OUR_MOUNTS=()
AT_EXIT=()

# at_exit COMMAND: eval COMMAND at exit, before the mounts are undone.
at_exit() {
	AT_EXIT+=("$1")
}

# release_mount DIR: unmount it; a killed process of the test may still
# be leaving it (a send ioctl ends at its next write), so wait for it a
# while, however busy the machine, before detaching it lazily.
release_mount() {
	local i
	for ((i = 0; i < 30; i++)); do
		umount "$1" 2>/dev/null && return
		sleep 1
	done
	echo "$TEST_NAME: $1 still busy after 30 s, detached lazily" >&2
	umount -l "$1"
}

# release_all: unmount what this script mounted, newest first, and detach
# the loop devices it attached.
release_all() {
	local i
	for ((i = ${#OUR_MOUNTS[@]} - 1; i >= 0; i--)); do
		mountpoint -q "${OUR_MOUNTS[i]}" || continue
		release_mount "${OUR_MOUNTS[i]}"
	done
	OUR_MOUNTS=()
	for i in ${OUR_LOOPS[@]+"${OUR_LOOPS[@]}"}; do
		losetup -d "$i"
	done
	OUR_LOOPS=()
}

lib_exit() {
	local rc=$? c
	set +e
	cd / || true
	for c in ${AT_EXIT[@]+"${AT_EXIT[@]}"}; do
		eval "$c"
	done
	release_all
	# Never rm -rf across a filesystem that is still mounted.
	if grep -qF " $WORK/" /proc/mounts; then
		echo "$TEST_NAME: $WORK still has mounts, not removed" >&2
	elif [ -n "${KEEP_WORK:-}" ]; then
		echo "$TEST_NAME: kept $WORK" >&2
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap lib_exit EXIT
trap 'exit 130' INT TERM HUP

# loop_attach IMAGE [losetup options]: IMAGE on a free loop device, named
# in LOOP_DEV, detached at exit.
loop_attach() {
	LOOP_DEV=$(losetup --find --show "${@:2}" "$1") || return 1
	OUR_LOOPS+=("$LOOP_DEV")
}

# mount_fs DEVICE DIR OPTIONS [TYPE]: one more mount (DIR made if need
# be), undone at exit.
mount_fs() {
	mkdir -p "$2" && mount ${4:+-t "$4"} -o "${3:-defaults}" "$1" "$2" ||
		return 1
	OUR_MOUNTS+=("$2")
}

# mount_tmpfs DIR OPTIONS: a tmpfs on DIR, undone at exit.
mount_tmpfs() {
	mount_fs none "$1" "$2" tmpfs
}

# make_fs_image TYPE IMAGE SIZE [mkfs options]: a fresh btrfs, ext4 or
# xfs on a sparse image file; mkfs speaks only when it fails.
make_fs_image() {
	local type=$1 img=$2 size=$3 force out
	shift 3
	case $type in
	ext4) force=-F ;;
	*) force=-f ;;
	esac
	truncate -s "$size" "$img" || return 1
	if ! out=$("mkfs.$type" -q "$force" "$@" "$img" 2>&1 >/dev/null); then
		echo "$TEST_NAME: mkfs.$type $img failed: $out" >&2
		return 1
	fi
}

# make_loop_fs TYPE IMAGE SIZE DIR OPTIONS [mkfs options]: a fresh
# filesystem on a sparse IMAGE, on a loop device, mounted on DIR with
# OPTIONS; all of it undone at exit.
make_loop_fs() {
	local type=$1 img=$2 size=$3 dir=$4 opts=$5
	shift 5
	make_fs_image "$type" "$img" "$size" "$@" &&
		loop_attach "$img" && mount_fs "$LOOP_DEV" "$dir" "$opts"
}

# fs_dev DIR: the device mounted on DIR.
fs_dev() {
	findmnt -n -o SOURCE --mountpoint "$1" | sed 's/\[.*//' | head -1
}

# release_fs DIR: unmount now every mount of ours of the device mounted
# on DIR, newest first, and detach that device if we attached it.
release_fs() {
	local dev i keep=()
	dev=$(fs_dev "$1")
	[ -n "$dev" ] || return 1
	for ((i = ${#OUR_MOUNTS[@]} - 1; i >= 0; i--)); do
		if [ "$(fs_dev "${OUR_MOUNTS[i]}")" = "$dev" ]; then
			umount "${OUR_MOUNTS[i]}" || return 1
		else
			keep=("${OUR_MOUNTS[i]}" ${keep[@]+"${keep[@]}"})
		fi
	done
	OUR_MOUNTS=(${keep[@]+"${keep[@]}"})
	keep=()
	for i in ${OUR_LOOPS[@]+"${OUR_LOOPS[@]}"}; do
		if [ "$i" = "$dev" ]; then
			losetup -d "$i" || return 1
		else
			keep+=("$i")
		fi
	done
	OUR_LOOPS=(${keep[@]+"${keep[@]}"})
}

have_loop_tools() {
	command -v losetup && command -v mountpoint && command -v findmnt
}

fail() {
	FAILURES=$((FAILURES + 1))
	echo "FAIL: $TEST_NAME: $*" >&2
}

pass() {
	CHECKS=$((CHECKS + 1))
	[ -n "${TEST_VERBOSE:-}" ] && echo "ok: $*"
	return 0
}

check() {
	local what=$1
	shift
	if "$@"; then
		pass "$what"
	else
		fail "$what"
	fi
}

# A missing prerequisite is a skip on a developer machine, a failure in CI.
require() {
	local what=$1
	shift
	if ! "$@" >/dev/null 2>&1; then
		if [ -n "${CI:-}" ]; then
			echo "FAIL: $TEST_NAME: $what is required in CI" >&2
			exit 1
		fi
		echo "SKIP: $TEST_NAME: $what is not available" >&2
		exit 77
	fi
}

have_reference() {
	[ -x "$REF" ] && "$REF" version | grep -q 'btrfs-progs'
}

have_root_and_btrfs() {
	[ "$(id -u)" -eq 0 ] && grep -qw btrfs /proc/filesystems ||
		modprobe btrfs
}

finish() {
	if [ "$FAILURES" -gt 0 ]; then
		echo "$TEST_NAME: $FAILURES failed, $CHECKS passed" >&2
		exit 1
	fi
	echo "$TEST_NAME: $CHECKS checks passed"
	exit 0
}
