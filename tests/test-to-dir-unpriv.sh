#!/bin/bash
# What receive --to-dir cannot keep, and how it says so.  btrfs properties
# (btrfs.compression, set with 'btrfs property set') on tmpfs and ext4:
# dropped with one warning per name.  A receive by a user without root
# (nobody, through setpriv) into a directory of their own: owners, device
# nodes, trusted.* and security.* xattrs are lost with one warning per
# kind, everything else is received and the exit status is 0.  Also: an
# error on the subvolume's top directory names it, and --dump works
# without root.
. "$(dirname "$0")/recv-lib.sh"

require "Debian's btrfs-progs ($REF)" have_reference
require "root with btrfs and loop devices" have_loop_btrfs
require "mkfs.ext4" command -v mkfs.ext4
require "setpriv (util-linux)" command -v setpriv
require "user nobody (65534)" getent passwd 65534

NOBODY=65534
as_nobody() { setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups "$@"; }
CAP=0100000200200000000000000000000000000000

# The unprivileged user must reach the streams and the binary.
chmod 755 "$WORK"
ST=$WORK/streams
mkdir -p "$ST"

# make_plain NAME TYPE: a tmpfs, or an ext4 image, on $WORK/NAME.
make_plain() {
	if [ "$2" = tmpfs ]; then
		mount_tmpfs "$WORK/$1" size=256M
	else
		make_loop_fs "$2" "$WORK/$1.img" 512M "$WORK/$1" noatime
	fi
}

# ------------------------------------------------------------ the source
make_fs src 1G || { fail "cannot make the source filesystem"; finish; }
SRC=$WORK/src
build() (
	set -e
	"$REF" -q subvolume create "$SRC/sv" >/dev/null
	cd "$SRC/sv"
	rh rand f 0 20000 f
	rh rand g 0 30000 g
	rh rand big 0 $((256 * 1024)) big
	"$REF" property set f compression zstd
	"$REF" property set g compression lzo
	rh setx f user.kept 6b657074
	rh setx f trusted.lost 6c6f7374
	mkdir dir
	mknod chr c 1 3
	mknod blk b 7 200
	mkfifo fifo
	ln -s f sl
	chown 1234:5678 f dir
	chown -h 1234:5678 sl
	chmod 4755 f
	chmod 2755 dir
	rh setx big security.capability $CAP
	"$REF" -q subvolume snapshot -r "$SRC/sv" "$SRC/s0" >/dev/null
	rh rand h 0 5000 h
	"$REF" property set h compression zstd
	mknod chr2 c 1 5
	rh rand f 100 100 f2
	"$REF" -q subvolume snapshot -r "$SRC/sv" "$SRC/s1" >/dev/null
	"$REF" send -q -f "$ST/s0" "$SRC/s0"
	"$REF" send -q -f "$ST/s1" -p "$SRC/s0" "$SRC/s1"
	chmod 644 "$ST/s0" "$ST/s1"
)
build || { fail "cannot build the source and its streams"; finish; }
check "the stream holds btrfs.compression" \
	grep -q "name=btrfs.compression" <("$REF" receive --dump -f "$ST/s0")

# to_dir NAME DIR STREAM [prefix...]: receive with ours, output in $WORK/NAME.*
to_dir() {
	local base=$WORK/$1 dir=$2 stream=$3
	shift 3
	"$@" timeout -k 10 120 "$OURS" receive -f "$stream" --to-dir "$dir" \
		>"$base.out" 2>"$base.err" </dev/null
	echo $? >"$base.rc"
}

received() {
	local what=$1 name=$2
	if [ "$(cat "$WORK/$name.rc")" = 0 ] && ! grep -q '^ERROR' "$WORK/$name.err"; then
		pass "$what: exit 0, no ERROR"
	else
		fail "$what: exit $(cat "$WORK/$name.rc")"
		sed 's/^/    /' "$WORK/$name.err" | head -8 >&2
	fi
}

# count NAME REGEX: lines of $WORK/NAME.err that match.
count() { grep -c -- "$2" "$WORK/$1.err"; }

same_data() { cmp -s "$SRC/$1" "$2"; }

# ------------------------------------- btrfs properties, as root, off btrfs
PROP='^WARNING: xattr btrfs.compression dropped: .*not btrfs'
for fs in tmpfs ext4; do
	make_plain "$fs" "$fs" || { fail "cannot make the $fs destination"; continue; }
	for s in s0 s1; do
		to_dir "$fs-$s" "$WORK/$fs" "$ST/$s"
		received "$fs: $s with btrfs.compression" "$fs-$s"
		check "$fs: $s: one warning for btrfs.compression" \
			[ "$(count "$fs-$s" "$PROP")" = 1 ]
		check "$fs: $s: no other warning" \
			[ "$(count "$fs-$s" '^WARNING')" = 1 ]
	done
	check "$fs: the data of f" same_data s1/f "$WORK/$fs/s1/f"
	check "$fs: the data of h" same_data s1/h "$WORK/$fs/s1/h"
	check "$fs: user.kept is kept" \
		[ "$(rh getx "$WORK/$fs/s1/f" user.kept)" = 6b657074 ]
	check "$fs: the owner is kept as root" \
		[ "$(stat -c %u:%g "$WORK/$fs/s1/f")" = 1234:5678 ]
done

# ---------------------------------------------- a receive without root
make_plain user tmpfs || { fail "cannot make the user's destination"; finish; }
U=$WORK/user/dest
mkdir "$U" && chown $NOBODY:$NOBODY "$U"
for s in s0 s1; do
	to_dir "user-$s" "$U" "$ST/$s" as_nobody
	received "without root: $s" "user-$s"
done
# s0 loses owners (every chown to another user), 2 devices, trusted.lost
# and security.capability.
for kind in "owners not kept" "device nodes not made" \
	"trusted.\* xattrs not set" "security.\* xattrs not set"; do
	check "without root: s0: one warning for $kind" \
		[ "$(count user-s0 "^WARNING: not root: [0-9]* $kind")" = 1 ]
done
check "without root: s0: the devices are counted and named" \
	grep -q "^WARNING: not root: 2 device nodes not made.*(first: s0/chr)" \
	"$WORK/user-s0.err"
check "without root: s0: the xattrs are named" \
	grep -q "trusted.* xattrs not set (first: s0/f trusted.lost)" \
	"$WORK/user-s0.err"
check "without root: s0: 5 warnings in all (one is btrfs.compression)" \
	[ "$(count user-s0 '^WARNING')" = 5 ]
check "without root: s1: one warning for the new device node" \
	grep -q "^WARNING: not root: 1 device nodes not made.*(first: s1/chr2)" \
	"$WORK/user-s1.err"
check "without root: every file is the user's" \
	[ -z "$(find "$U" ! -uid $NOBODY)" ]
empty_file() { [ -f "$1" ] && [ ! -s "$1" ]; }
for dev in s0/chr s0/blk s1/chr2; do
	check "without root: device $dev is an empty regular file" \
		empty_file "$U/$dev"
done
check "without root: the FIFO is made" [ -p "$U/s1/fifo" ]
check "without root: the symlink is made" [ "$(readlink "$U/s1/sl")" = f ]
check "without root: the data of f" same_data s1/f "$U/s1/f"
check "without root: setuid is kept on the user's own file" \
	[ "$(stat -c %a "$U/s0/f")" = 4755 ]
check "without root: user.kept is kept" \
	[ "$(rh getx "$U/s1/f" user.kept)" = 6b657074 ]
check "without root: the record says complete" \
	[ -n "$(rh getx "$U/s1" user.btrfs.received_uuid)" ]

# On btrfs, without --to-dir, the chown of the top directory fails: the
# error names it.
mkdir -p "$WORK/src/nb" && chown $NOBODY "$WORK/src/nb"
as_nobody "$OURS" receive -f "$ST/s0" "$WORK/src/nb" >/dev/null 2>"$WORK/nb.err"
check "an error on the top directory names it" \
	grep -qx "ERROR: chown . failed: Operation not permitted" "$WORK/nb.err"

# --dump needs no privilege.
"$OURS" receive --dump -f "$ST/s1" >"$WORK/dump-root" 2>&1
as_nobody "$OURS" receive --dump -f "$ST/s1" >"$WORK/dump-user" 2>&1
check "--dump without root: exit 0" [ $? = 0 ]
check "--dump without root: the same as with root" \
	cmp -s "$WORK/dump-root" "$WORK/dump-user"

finish
