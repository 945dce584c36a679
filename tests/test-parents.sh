#!/bin/bash
# How receive finds the parent of an incremental stream and its clone
# sources: by received uuid, then by uuid, whatever the stream's transid
# (the sender's own), and of several candidates the first read-only one
# reachable from the mount point or the -C chroot.  Chains over three
# filesystems, a backup sent back to where it was made and on from there,
# a parent received twice with -C, and the errors when nothing serves.
. "$(dirname "$0")/recv-lib.sh"

require "root with btrfs and loop devices" have_loop_btrfs
require "Debian's btrfs-progs ($REF)" have_reference

make_fs A 1G && make_fs B 1G || { fail "cannot make A and B"; finish; }
A=$WORK/A
B=$WORK/B

# uuid_of SUBVOL, received_of SUBVOL: as "subvolume show" prints them.
uuid_of() {
	"$REF" subvolume show "$1" | sed -n 's/^\tUUID: *\t*//p'
}
received_of() {
	"$REF" subvolume show "$1" | sed -n 's/^\tReceived UUID: *\t*//p'
}

# clone_uuids STREAM: the clone source uuids of its CLONE commands.
clone_uuids() {
	"$OURS" --format json receive --dump -f "$1" |
		sed -n 's/.*"cmd":"clone".*"clone_uuid":"\([^"]*\)".*/\1/p' |
		sort -u
}

# cloned_as_sent STREAM PATH FILE: FILE (PATH in STREAM) shares exactly
# the bytes that the CLONE commands of STREAM put into it.  The sender's
# own file may share more: the kernel writes what it would not clone
# (the first block alone, say), which its writeback timing decides.
cloned_as_sent() {
	"$OURS" --format json receive --dump -f "$1" | "$PYTHON" -c '
import importlib.util, json, os, sys
spec = importlib.util.spec_from_file_location("tc", sys.argv[1])
tc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tc)
want = []
for line in sys.stdin:
    c = json.loads(line)
    if c["cmd"] != "clone" or c["path"] != sys.argv[2]:
        continue
    start, end = c["file_offset"], c["file_offset"] + c["len"]
    end = -(-end // 4096) * 4096  # a clone up to EOF takes its last block
    if want and want[-1][1] >= start:
        want[-1] = (want[-1][0], max(end, want[-1][1]))
    else:
        want.append((start, end))
got = tc.extent_classes(os.open(sys.argv[3], os.O_RDONLY), tc.SHARED_CLASS)
print("cloned %s, shared %s" % (tc.fmt_ranges(want), got))
sys.exit(not want or got != "shared=" + tc.fmt_ranges(want))
' "$TREE_COMPARE" "$2" "$3"
}

# receive_ours WHAT STREAM DEST [receive args]: ours must receive it.
receive_ours() {
	local what=$1 stream=$2 dest=$3
	shift 3
	RECV_SEQ=$((RECV_SEQ + 1))
	run_receive "$OURS" "" "$WORK/recv.$RECV_SEQ" "$dest" "$stream" "$@"
	RECV_LAST=$WORK/recv.$RECV_SEQ
	if [ "$(cat "$RECV_LAST.rc")" = 0 ]; then
		pass "$what: received"
	else
		fail "$what: ours exits $(cat "$RECV_LAST.rc")"
		show_output ours "$RECV_LAST"
	fi
}

# A file of random data to reflink, and one to change.
"$REF" -q subvolume create "$A/vol"
rh rand "$A/vol/big" 0 300000 big
echo hello >"$A/vol/small"
mkdir "$A/vol/dir"
rh rand "$A/vol/dir/other" 0 70000 other
"$REF" -q subvolume snapshot -r "$A/vol" "$A/s1"
send_ref "$WORK/s1.full" "$A/s1"

# ------------------------------------------- (a) A -> B -> C, three hops
# C holds the s1 received from A; B snapshots its own received s1, changes
# it, makes it read-only and sends it with -p s1 to C.  The stream names
# s1 by A's uuid (B's received uuid) beside B's ctransid, which C's copy
# of s1 does not carry: btrfs-progs takes it all the same.
new_dests || { fail "cannot make the destinations"; finish; }
# B's transactions run ahead of A's first, so that the transid of B's s1
# (which the stream of s2 names) is never that of A's s1 (which C's s1
# carries), however the commits of a busy machine fell.
generation() {
	"$REF" subvolume find-new "$1" 999999999 | sed -n 's/^transid marker was //p'
}
a_gen=$(generation "$A/s1")
for ((i = 0; i < 1000; i++)); do
	[ "$(generation "$B")" -gt $((${a_gen:-0} + 2)) ] && break
	touch "$B/.tick" && sync -f "$B"
done
rm -f "$B/.tick"
"$REF" receive -q -f "$WORK/s1.full" "$B" ||
	fail "(a) cannot receive s1 on B"
receive_both "(a) s1 on C" "$WORK/s1.full"

# Made by "subvolume snapshot", then "snapshot -r" of it.
"$REF" -q subvolume snapshot "$B/s1" "$B/w2"
echo "changed on B" >"$B/w2/small"
cp --reflink=always "$B/w2/big" "$B/w2/dir/big2"
rh rand "$B/w2/dir/new" 0 5000 new
"$REF" -q subvolume snapshot -r "$B/w2" "$B/s2"
# Made by "subvolume snapshot", then "property set ro true".
"$REF" -q subvolume snapshot "$B/s1" "$B/s3"
rm "$B/s3/dir/other"
ln -s big "$B/s3/link"
"$REF" property set "$B/s3" ro true
sync -f "$B"
send_ref "$WORK/s2.incr" -p "$B/s1" "$B/s2"
send_ref "$WORK/s3.incr" -p "$B/s1" "$B/s3"
# The stream's parent: its uuid and transid, as "uuid transid".
parent_of() {
	"$OURS" receive --dump -f "$1" | head -1 |
		sed -n 's/.* parent_uuid=\([^ ]*\) parent_transid=\([0-9]*\).*/\1 \2/p'
}
read -r puuid ptransid < <(parent_of "$WORK/s2.incr")
check "(a) the stream names s1 by A's uuid" [ "${puuid:-}" = "$(uuid_of "$A/s1")" ]
check "(a) beside a transid that C's s1 does not carry" [ "${ptransid:-}" != "$(
	"$REF" subvolume show "$OMNT/s1" | sed -n 's/^\tSend transid: *\t*//p')" ]
# btrfs-progs leaves the wall clock's mtime on the top directory of this
# one (a documented difference): ours is also compared with the sender's
# (whose files share extents with the snapshot it was made from).
RECV_COMPARE_OPTS=(--ignore .:mtime)
receive_both "(a) B's snapshot -r of a snapshot, on to C" "$WORK/s2.incr"
RECV_COMPARE_OPTS=()
compare_trees "(a) s2 on C as on B" "$B/s2" "$OMNT/s2" --no-extents
ref_received "(a) s2" 1
check "(a) s2 received with B's uuid" \
	[ "$(received_of "$OMNT/s2")" = "$(uuid_of "$B/s2")" ]
receive_both "(a) B's snapshot made read-only, on to C" "$WORK/s3.incr"
compare_trees "(a) s3 on C as on B" "$B/s3" "$OMNT/s3" --no-extents
ref_received "(a) s3" 1
check "(a) s3 received with B's uuid" \
	[ "$(received_of "$OMNT/s3")" = "$(uuid_of "$B/s3")" ]

# ------------------------ (b) a backup sent back, and on again from there
# B's s4 (snapshot of its received s1) goes back to A with -p s1: the
# stream names s1, parent and clone source, by A's own uuid, which A's s1
# carries only as its uuid.  btrfs-progs 6.2 finds the parent so but not
# the clone source (fixed in btrfs-progs 6.10.1).  Then A, restored, sends
# s5 with -p s4 to B: s4 and its clones are named by B's own uuid of s4.
"$REF" -q subvolume snapshot "$B/s1" "$B/w4"
# A new inode on the old extent: a clone from the parent, not a copy.
cp --reflink=always "$B/w4/big" "$B/w4/moved"
rm "$B/w4/big"
echo "restored" >"$B/w4/small"
"$REF" -q subvolume snapshot -r "$B/w4" "$B/s4"
sync -f "$B"
send_ref "$WORK/s4.back" -p "$B/s1" "$B/s4"
check "(b) the way back clones from s1, named by A's uuid" \
	[ "$(clone_uuids "$WORK/s4.back")" = "$(uuid_of "$A/s1")" ]
mkdir "$A/ref"
run_receive "$REF" "" "$WORK/ref.back" "$A/ref" "$WORK/s4.back"
[ "$(cat "$WORK/ref.back.rc")" = 0 ] ||
	check "(b) btrfs-progs 6.2 misses the clone source" \
		grep -q '^ERROR: clone: did not find source subvol' \
		"$WORK/ref.back.err"
receive_ours "(b) s4 back on A" "$WORK/s4.back" "$A"
sync -f "$A"
check "(b) s4's moved on A shares what the stream clones" \
	cloned_as_sent "$WORK/s4.back" moved "$A/s4/moved"
compare_trees "(b) s4 on A and on B" "$B/s4" "$A/s4" --no-extents
# A btrfs-progs of 6.10.1 or later receives it: the same tree.
[ "$(cat "$WORK/ref.back.rc")" = 0 ] &&
	compare_trees "(b) s4 on A, ours and the reference's" "$A/ref/s4" "$A/s4"
check "(b) s4 received with B's uuid" \
	[ "$(received_of "$A/s4")" = "$(uuid_of "$B/s4")" ]

# The rest needs s4 on A.
if [ -d "$A/s4" ]; then
	"$REF" -q subvolume snapshot "$A/s4" "$A/w5"
	cp --reflink=always "$A/w5/moved" "$A/w5/dir/again"
	rm "$A/w5/moved"
	echo "onward" >"$A/w5/small"
	"$REF" -q subvolume snapshot -r "$A/w5" "$A/s5"
	sync -f "$A"
	send_ref "$WORK/s5.onward" -p "$A/s4" "$A/s5"
	check "(b) onward, the stream clones from s4, named by B's uuid" \
		[ "$(clone_uuids "$WORK/s5.onward")" = "$(uuid_of "$B/s4")" ]
	receive_ours "(b) s5 from the restored A to B" "$WORK/s5.onward" "$B"
	sync -f "$B"
	check "(b) s5's dir/again on B shares what the stream clones" \
		cloned_as_sent "$WORK/s5.onward" dir/again "$B/s5/dir/again"
	compare_trees "(b) s5 on B and on A" "$A/s5" "$B/s5" --no-extents
	check "(b) s5 received with A's uuid" \
		[ "$(received_of "$B/s5")" = "$(uuid_of "$A/s5")" ]
fi

# --------------------- (c) -C, the parent received twice on the filesystem
# s1 was received into a/ and then into b/; -C into b/ must take b/s1
# (parent and clone source), which the chroot can reach.  btrfs-progs 6.2
# takes a/s1 through a descriptor opened before its chroot, so the trees
# are compared, and the parent is checked to be b/s1.
"$REF" -q subvolume snapshot "$A/vol" "$A/w6"
cp --reflink=always "$A/w6/big" "$A/w6/dir/cloned"
rm "$A/w6/big"
"$REF" -q subvolume snapshot -r "$A/w6" "$A/s6"
sync -f "$A"
send_ref "$WORK/s6.incr" -p "$A/s1" "$A/s6"
check "(c) the stream clones from s1" \
	[ "$(clone_uuids "$WORK/s6.incr")" = "$(uuid_of "$A/s1")" ]
new_dests || { fail "cannot make the destinations"; finish; }
set_dest a
receive_both "(c) s1 into a/" "$WORK/s1.full"
set_dest b
receive_both "(c) s1 into b/" "$WORK/s1.full"
RECV_SEQ=$((RECV_SEQ + 1))
run_receive "$REF" "" "$WORK/recv.$RECV_SEQ.ref" "$RDEST" "$WORK/s6.incr" -C
run_receive "$OURS" "" "$WORK/recv.$RECV_SEQ.ours" "$ODEST" "$WORK/s6.incr" -C
compare_messages "(c) -C into b/" "$WORK/recv.$RECV_SEQ.ref" \
	"$WORK/recv.$RECV_SEQ.ours"
compare_trees "(c) -C into b/: s6" "$RDEST/s6" "$ODEST/s6"
check "(c) s6 received with A's uuid" \
	[ "$(received_of "$ODEST/s6")" = "$(uuid_of "$A/s6")" ]
check "(c) ours took b/s1, beneath the chroot" \
	grep -qP "^\tParent UUID:\s+$(uuid_of "$ODEST/s1")$" \
	<("$REF" subvolume show "$ODEST/s6")

# ------------------------------------------ (d) when nothing serves: errors
make_fs D 1G || { fail "cannot make D"; finish; }
D=$WORK/D
# Nothing carries the uuid: the error as it always was, no candidate.
run_receive "$OURS" "" "$WORK/none" "$D" "$WORK/s6.incr"
check "(d) no parent at all: exit 1" [ "$(cat "$WORK/none.rc")" = 1 ]
check "(d) no parent at all: the error names uuid and transid" \
	grep -qx "ERROR: cannot find parent subvolume $(uuid_of "$A/s1") (transid [0-9]*) of snapshot s6" \
	"$WORK/none.err"
check "(d) no parent at all: no candidate" \
	[ -z "$(grep '^  candidate' "$WORK/none.err")" ]
[ -e "$D/s6" ] && "$REF" -q subvolume delete "$D/s6" >/dev/null

# Only a read-only copy outside the -C chroot: it is listed.
mkdir "$D/a" "$D/far"
"$REF" receive -q -f "$WORK/s1.full" "$D/a" || fail "(d) cannot receive s1"
run_receive "$OURS" "" "$WORK/far" "$D/far" "$WORK/s6.incr" -C
check "(d) parent outside the chroot: exit 1" [ "$(cat "$WORK/far.rc")" = 1 ]
check "(d) parent outside the chroot: the error says so" \
	grep -qx "ERROR: cannot find parent subvolume $(uuid_of "$A/s1") (transid [0-9]*) of snapshot s6: no read-only subvolume with that uuid is reachable from the mount point (it holds /far)" \
	"$WORK/far.err"
check "(d) parent outside the chroot: a/s1 is listed" \
	grep -q "^  candidate /a/s1: .*received uuid $(uuid_of "$A/s1") .*, read-only$" \
	"$WORK/far.err"

# Only a writable subvolume that carries the received uuid: refused, listed.
"$REF" -q subvolume delete "$D/a/s1" >/dev/null
"$REF" -q subvolume create "$D/fake"
rh set-received "$D/fake" "$(uuid_of "$A/s1")" 1
run_receive "$OURS" "" "$WORK/live" "$D" "$WORK/s6.incr"
check "(d) writable parent only: exit 1" [ "$(cat "$WORK/live.rc")" = 1 ]
check "(d) writable parent only: the error says so" \
	grep -qx "ERROR: cannot find parent subvolume $(uuid_of "$A/s1") (transid [0-9]*) of snapshot s6: every subvolume with that uuid is writable or the top level, refused" \
	"$WORK/live.err"
check "(d) writable parent only: it is listed" \
	grep -q "^  candidate /fake: .*, writable$" "$WORK/live.err"

finish
