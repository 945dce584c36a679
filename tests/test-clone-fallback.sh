#!/bin/bash
# A CLONE the kernel refuses becomes a copy.  An incremental stream whose
# new files share extents with files of the parent (cp --reflink, a range
# clone, a clone past a hole) is received onto a destination remounted
# nodatasum, and another remounted nodatacow, after the full stream was
# received there without it: the new files get NODATASUM while the
# parent's files have checksums, and the kernel (6.18 here) refuses a
# clone between the two with EINVAL.  btrfs-progs 6.2 fails there
# ("ERROR: failed to clone extents to b: Invalid argument", checked
# below).  Ours must copy the ranges: exit 0 with the default -E 1 and
# with -E 0, no ERROR line (btrbk would treat it as fatal), exactly one
# WARNING line for the subvolume with the number of clones copied, and a
# tree equal to the source.
. "$(dirname "$0")/recv-lib.sh"

require "root with btrfs and loop devices" have_loop_btrfs
require "Debian's btrfs-progs ($REF)" have_reference

MiB=$((1024 * 1024))

make_fs src 1G || { fail "cannot make the source filesystem"; finish; }
SRC=$WORK/src
"$REF" -q subvolume create "$SRC/data" >/dev/null
rh rand "$SRC/data/a" 0 $((2 * MiB)) a
rh rand "$SRC/data/big" 0 $((8 * MiB)) big
rh rand "$SRC/data/sparse" $((4 * MiB)) $((1 * MiB)) sparse
"$REF" -q subvolume snapshot -r "$SRC/data" "$SRC/s1" >/dev/null
cp --reflink=always "$SRC/data/a" "$SRC/data/b"
rh rand "$SRC/data/c" 0 $((256 * 1024)) c
rh clone "$SRC/data/big" $((MiB)) $((512 * 1024)) "$SRC/data/c" $((64 * 1024))
cp --reflink=always "$SRC/data/sparse" "$SRC/data/sparse2"
sync
"$REF" -q subvolume snapshot -r "$SRC/data" "$SRC/s2" >/dev/null
"$OURS" send -q -f "$WORK/full.stream" "$SRC/s1" &&
	"$OURS" send -q -f "$WORK/incr.stream" -p "$SRC/s1" "$SRC/s2" ||
	{ fail "cannot make the streams"; finish; }
CLONES=$("$OURS" receive --dump -f "$WORK/incr.stream" | grep -c '^clone')
check "the incremental stream has clones ($CLONES)" [ "$CLONES" -ge 3 ]

# dest NAME OPTION: a destination holding s1, remounted with OPTION.
dest() {
	make_fs "$1" 1G && "$REF" receive -q -f "$WORK/full.stream" \
		"$WORK/$1" && mount -o "remount,$2" "$WORK/$1"
}

# ours_on OPTION [receive options]: receive the incremental with ours.
ours_on() {
	local opt=$1 what name=ours-$1${2:+-E}
	shift
	what="$opt${*:+ $*}"
	dest "$name" "$opt" || { fail "$what: cannot make the destination"; return; }
	"$OURS" receive "$@" -f "$WORK/incr.stream" "$WORK/$name" \
		>"$WORK/$name.out" 2>"$WORK/$name.err"
	check "$what: exit 0" [ $? = 0 ]
	check "$what: no ERROR line" not_grep '^ERROR' "$WORK/$name.err"
	check "$what: one WARNING line" \
		[ "$(grep -c '^WARNING' "$WORK/$name.err")" = 1 ]
	check "$what: it counts the clones copied" grep -qx \
		"WARNING: s2: $CLONES clone operations refused by the kernel (Invalid argument), data copied instead" \
		"$WORK/$name.err"
	[ "$FAILURES" = 0 ] || sed 's/^/    /' "$WORK/$name.err" >&2
	# New files are NOCOW under nodatacow: their flags differ from the
	# source's by the mount option, not by the receive.
	compare_trees "$what" "$SRC/s2" "$WORK/$name/s2" --no-extents \
		${NO_FLAGS:+--no-flags}
	check "$what: read-only with its received uuid" \
		[ "$(subvol_props "$WORK/$name/s2" | grep -c \
			-e '^flags=readonly' -e "^received_uuid=$(src_uuid)")" = 2 ]
	drop_fs "$name"
}

not_grep() {
	! grep -q "$@"
}

src_uuid() {
	"$REF" subvolume show "$SRC/s2" | sed -n 's/^\tUUID: *\t*//p'
}

# ref_on OPTION: btrfs-progs 6.2 fails on the same destination.
ref_on() {
	local name=ref-$1
	dest "$name" "$1" || { fail "$1: cannot make the destination"; return; }
	"$REF" receive -f "$WORK/incr.stream" "$WORK/$name" \
		>/dev/null 2>"$WORK/$name.err"
	check "$1: btrfs-progs 6.2 fails with a clone error (the case is real)" \
		grep -q '^ERROR: failed to clone extents.*Invalid argument' \
		"$WORK/$name.err"
	drop_fs "$name"
}

for opt in nodatasum nodatacow; do
	NO_FLAGS=
	[ "$opt" = nodatacow ] && NO_FLAGS=1
	ref_on "$opt"
	ours_on "$opt"
	ours_on "$opt" -E 0
done

finish
