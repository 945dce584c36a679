#!/bin/bash
# Receive against the reference: streams made now by Debian's btrfs send
# (full, an incremental chain, clones across subvolumes, special files,
# xattrs, sparse and huge files, --no-data, compressed data, several
# subvolumes, -m, -C), the committed corpus and the external streams are
# received by /usr/bin/btrfs and by ours into two filesystems laid out the
# same way; the trees, the subvolume properties, the exit status and the
# At subvol / At snapshot lines must be equal.
. "$(dirname "$0")/recv-lib.sh"

require "Debian's btrfs-progs ($REF)" have_reference
require "root with btrfs and loop devices" have_loop_btrfs

CORPUS=$TOP/tests/streams
ST=$WORK/streams
mkdir -p "$ST"
KiB=1024
MiB=$((1024 * 1024))
# VFS_CAP_REVISION_2 | EFFECTIVE, cap_net_raw permitted.
CAP=0100000200200000000000000000000000000000
# user::rw- user:1000:r-- group::r-- mask::r-- other::---
ACL_ACCESS=0200000001000600ffffffff02000400e803000004000400ffffffff10000400ffffffff20000000ffffffff
ACL_DEFAULT=0200000001000700ffffffff04000500ffffffff20000500ffffffff

subvol() { "$REF" -q subvolume create "$1" >/dev/null; }
snap() { "$REF" -q subvolume snapshot -r "$1" "$2" >/dev/null; }

# ------------------------------------------------------------ the sources
make_fs src 4G || { fail "cannot make the source filesystem"; finish; }
SRC=$WORK/src
W=$SRC/w

build_base0() (
	set -e
	cd "$W"
	mkdir -p d1/d2 dx dy tree/a/b/c inv-p/inv-c dir-to-move/sub empty-dir
	rh rand a.txt 0 5000 a
	rh rand b.txt 0 70000 b
	rh rand x.txt 0 3000 x
	rh rand y.txt 0 9000 y
	echo in-x >dx/in-x
	echo in-y >dy/in-y
	rh rand mv-me.txt 0 12345 mv
	rh rand dir-to-move/f 0 100 dm
	rh rand dir-to-move/sub/g 0 200 dm2
	rh rand tree/a/b/c/leaf 0 300 leaf
	rh rand inv-p/inv-c/f 0 10 inv
	rh rand big 0 $((MiB + 3)) big
	printf inline >inline
	: >empty
	rh rand trunc-short 0 200000 ts
	rh rand trunc-long 0 10000 tl
	rh rand overwrite 0 $((512 * KiB)) ow
	rh rand d1/d2/deep.txt 0 100 deep
	rh rand link-src 0 1000 ls
	ln link-src d1/link-dst
	ln link-src d1/d2/link3
	rh rand rot1 0 11 r1
	rh rand rot2 0 22 r2
	rh rand rot3 0 33 r3
	# Sparse: holes at the start, in the middle, at the end, only a hole,
	# and a file above 1 GiB with three small data blocks.
	rh rand hole-start $MiB 4096 hs
	rh rand hole-mid 0 $((64 * KiB)) hm1
	rh rand hole-mid $MiB $((64 * KiB)) hm2
	rh rand hole-end 0 4096 he
	truncate -s $((5 * MiB)) hole-end
	truncate -s $((10 * MiB)) all-hole
	rh rand huge 0 4096 h1
	rh rand huge $((700 * MiB)) $((64 * KiB)) h2
	rh rand huge $((1536 * MiB - 4096)) 4096 h3
	# Ownership and modes: chown before chmod (chown clears setuid).
	rh rand setuid 0 60 su
	chown 1000:1000 setuid
	chmod 4755 setuid
	rh rand setgid 0 60 sg
	chmod 2755 setgid
	rh rand nomode 0 60 nm
	chmod 0000 nomode
	rh rand nobody 0 70 nb
	chown 65534:65533 nobody
	chmod 0640 nobody
	mkdir sticky setgid-dir
	chmod 1777 sticky
	chown 0:1000 setgid-dir
	chmod 2775 setgid-dir
	# Symlinks.
	ln -s a.txt sl-rel
	ln -s /etc/passwd sl-abs
	ln -s does/not/exist sl-dangling
	ln -s ../../d1 d1/d2/sl-up
	chown -h 1000:1000 sl-rel
	# Special files.
	mkfifo fifo
	mkfifo -m 0600 d1/fifo-0600
	chown 12:34 d1/fifo-0600
	rh sock sock
	mknod chr c 1 3
	mknod blk b 7 200
	mknod bigminor c 259 131072
	chmod 0640 chr
	# xattrs: many on one inode, empty, binary, long, on a dir, trusted.*
	# on a symlink and a FIFO, ACLs, and a capability on a file that is
	# not root's (set after the chown, which would clear it).
	rh rand many 0 10 many
	for i in $(seq 1 40); do
		rh setx many "user.attr$i" "$(printf '%02x' $((0x40 + i)))"
	done
	rh setx a.txt user.empty ''
	rh setx a.txt user.binary 00010200ff00fe7f00
	rh setx a.txt user.long "$(printf '61%.0s' $(seq 3000))"
	rh setx a.txt user.change-me 6f6c64
	rh setx a.txt user.remove-me 676f6e65
	rh setx d1 user.on-dir 646972
	rh setx sl-rel trusted.on-symlink 6c6e6b
	rh setx fifo trusted.on-fifo 6666
	rh rand cap-file 0 100 cap
	chown 1000:1000 cap-file
	chmod 0755 cap-file
	rh setx cap-file security.capability $CAP
	rh rand acl-file 0 10 acl
	rh setx acl-file system.posix_acl_access $ACL_ACCESS
	mkdir acl-dir
	rh setx acl-dir system.posix_acl_default $ACL_DEFAULT
	# Reflinks inside the subvolume: whole, partial, inside one file.
	rh rand clone-src 0 $((256 * KiB)) cs
	cp --reflink=always clone-src clone-whole
	rh clone clone-src $((64 * KiB)) $((64 * KiB)) clone-part 4096
	rh clone clone-src 0 $((64 * KiB)) clone-src $((192 * KiB))
	# Times: fixed, epoch, far future, on a symlink.
	touch -h -d '2001-02-03 04:05:06.123456789 UTC' x.txt sl-rel
	touch -d @0 empty
	touch -d '2100-01-01 00:00:00 UTC' y.txt
)

# base.0 -> base.1: renames, moves, swaps, unlinks, rmdirs, overwrites,
# appends, truncates, new hardlinks, metadata-only changes.
build_base1() (
	set -e
	cd "$W"
	mv a.txt a-renamed.txt
	mv mv-me.txt d1/mv-me.txt
	mv dir-to-move d1/d2/dir-moved
	mv x.txt swap.tmp && mv y.txt x.txt && mv swap.tmp y.txt
	mv dx swapd.tmp && mv dy dx && mv swapd.tmp dy
	rm b.txt d1/d2/deep.txt
	rmdir empty-dir
	rh rand overwrite $((64 * KiB)) 4096 ow2
	rh rand overwrite $((200 * KiB + 1)) 100 ow3
	rh rand big $((MiB + 3)) 5000 big2
	truncate -s 50000 trunc-short
	truncate -s $((3 * MiB)) trunc-long
	ln big d1/big-link
	ln fifo d1/fifo-link
	rh rand huge $((1024 * MiB)) 4096 h4
	chmod 0700 setgid
	chown 1000:1000 nobody
	touch -d '2011-11-11 11:11:11 UTC' inline
	rh rmx a-renamed.txt user.remove-me
	rh setx a-renamed.txt user.change-me 6e6577
	rh setx a-renamed.txt user.new 0000
	rh rand new-file 0 $((70 * KiB)) nf
	mkdir -p newdir/newsub
	rh rand newdir/newsub/nested 0 999 nn
)

# base.1 -> base.2: hierarchy inversion, rename over a file, a dir that
# replaces a file and the other way round, a rotation of three names, a
# deleted first link, a punched hole, a chown of the capability file.
build_base2() (
	set -e
	cd "$W"
	mv inv-p/inv-c inv-c
	mv inv-p inv-c/inv-p
	mv inline trunc-long
	mv d1 d1-old
	mkdir d1
	rh rand d1/in-new-d1 0 10 nd1
	rm new-file
	mkdir new-file
	rm -r newdir
	rh rand newdir 0 20 nd
	mv rot1 rot.tmp && mv rot2 rot1 && mv rot3 rot2 && mv rot.tmp rot3
	rm link-src
	ln d1-old/link-dst d1/link-again
	fallocate -p -o $((128 * KiB)) -l $((128 * KiB)) overwrite
	chown 1001:1001 cap-file
	rh setx cap-file security.capability $CAP
	rm -r tree/a/b
	: >trunc-short
	rm sl-abs
	ln -s /etc/hostname sl-abs
)

# base.2 -> base.3 (sent with -c CS.0): a clone from another subvolume, a
# dir moved into a dir that is itself moved, more special files.
build_base3() (
	set -e
	cd "$W"
	cp --reflink=always "$SRC/cs.0/data" from-cs
	rh clone "$SRC/cs.0/data" $((128 * KiB)) $((64 * KiB)) overwrite 0
	mkdir -p m1/m2
	mv tree m1/m2/tree
	mv m1 inv-c/m1
	mkfifo fifo2
	mknod chr2 c 4 5
	rm sock
	truncate -s $((2 * 1024 * MiB)) huge
	rm -r d1-old
)

# set -e works in the builders only when they are not called from a
# condition (`f || ...` would silence it), hence `f; ok $? || ...`.
ok() { [ "$1" -eq 0 ]; }

build_sources() {
	subvol "$W" || return 1
	build_base0; ok $? || return 1
	snap "$W" "$SRC/base.0" || return 1
	build_base1; ok $? || return 1
	snap "$W" "$SRC/base.1" || return 1
	build_base2; ok $? || return 1
	snap "$W" "$SRC/base.2" || return 1
	# The clone source of base.3 and of the cu series.
	subvol "$SRC/cs" && rh rand "$SRC/cs/data" 0 $MiB csd &&
		snap "$SRC/cs" "$SRC/cs.0" || return 1
	build_base3; ok $? || return 1
	snap "$W" "$SRC/base.3" || return 1
	# cu.0 clones from cs.0 and has cu.pre as parent.
	subvol "$SRC/cu" && rh rand "$SRC/cu/own" 0 10000 own &&
		snap "$SRC/cu" "$SRC/cu.pre" || return 1
	cp --reflink=always "$SRC/cs.0/data" "$SRC/cu/whole" &&
		rh clone "$SRC/cs.0/data" $((256 * KiB)) $((128 * KiB)) \
			"$SRC/cu/part" 4096 &&
		snap "$SRC/cu" "$SRC/cu.0" || return 1
	# Three subvolumes for multi-subvolume streams.
	subvol "$SRC/m" && rh rand "$SRC/m/f" 0 20000 m0 &&
		snap "$SRC/m" "$SRC/m.0" && rh rand "$SRC/m/g" 0 30000 m1 &&
		snap "$SRC/m" "$SRC/m.1" && rm "$SRC/m/f" &&
		snap "$SRC/m" "$SRC/m.2" || return 1
	# A small pair whose parent is received outside the -m root.
	subvol "$SRC/o" && rh rand "$SRC/o/f" 0 100 o0 &&
		snap "$SRC/o" "$SRC/o.0" && rh rand "$SRC/o/g" 0 100 o1 &&
		snap "$SRC/o" "$SRC/o.1" || return 1
	# For --no-data: no clones (a --no-data receive cannot clone).
	build_nodata; ok $?
}

build_nodata() (
	set -e
	subvol "$SRC/nd"
	cd "$SRC/nd"
	mkdir -p d/e
	: >empty
	rh rand small 0 100 nd1
	rh rand mid 0 5000 nd2
	rh rand big 0 $MiB nd3
	rh rand sparse $((2 * MiB)) 4096 nd4
	truncate -s $((8 * MiB)) sparse
	rh rand d/e/f 0 7000 nd5
	ln d/e/f d/link
	ln -s ../small d/sl
	chown 1000:1000 mid
	chmod 0600 mid
	snap "$SRC/nd" "$SRC/nd.0"
	rh rand big 4096 4096 nd6
	rh rand mid 5000 3000 nd7
	truncate -s 50 small
	mv d/e d/e2
	rh rand new 0 9000 nd8
	snap "$SRC/nd" "$SRC/nd.1"
)

# Compressed sources: one subvolume per algorithm, written while the
# filesystem is mounted with compress-force=ALG.
compressed_files() (
	set -e
	cd "$1"
	yes "compressible line of $2 text" | head -c $((600 * KiB)) >text
	rh rand random 0 $((200 * KiB)) "r$2"
	yes "a short file" | head -c 3000 >small
	yes "a sparse file" | head -c $((128 * KiB)) >sparse
	yes "more of the sparse file" | head -c $((100 * KiB)) |
		dd of=sparse bs=1M seek=1 conv=notrunc status=none
	truncate -s $((3 * MiB)) sparse
)

build_compressed() {
	local alg c
	make_fs csrc 1G || return 1
	for alg in zlib zstd lzo; do
		mount -o remount,compress-force=$alg "$WORK/csrc" || return 1
		c=$WORK/csrc/c-$alg
		subvol "$c" || return 1
		compressed_files "$c" $alg; ok $? || return 1
		sync
		snap "$c" "$c.0" || return 1
	done
	c=$WORK/csrc/c-zstd
	yes overwritten | head -c 5000 |
		dd of="$c/text" bs=1 seek=$((300 * KiB)) conv=notrunc status=none &&
		yes new | head -c $((300 * KiB)) >"$c/new" && sync &&
		snap "$c" "$c.1"
}

make_streams() {
	send_ref "$ST/base0" "$SRC/base.0" &&
		send_ref "$ST/base1" -p "$SRC/base.0" "$SRC/base.1" &&
		send_ref "$ST/base2" -p "$SRC/base.1" "$SRC/base.2" &&
		send_ref "$ST/cs0" "$SRC/cs.0" &&
		send_ref "$ST/base3" -p "$SRC/base.2" -c "$SRC/cs.0" "$SRC/base.3" &&
		send_ref "$ST/cupre" "$SRC/cu.pre" &&
		send_ref "$ST/cu0" -c "$SRC/cs.0" -c "$SRC/cu.pre" "$SRC/cu.0" &&
		send_ref "$ST/nodata-clones" --no-data "$SRC/base.0" &&
		send_ref "$ST/nodata0" --no-data "$SRC/nd.0" &&
		send_ref "$ST/nodata1" --no-data -p "$SRC/nd.0" "$SRC/nd.1" &&
		send_ref "$ST/multi" "$SRC/m.0" "$SRC/m.1" "$SRC/m.2" &&
		send_ref "$ST/multi-e" -e "$SRC/m.0" "$SRC/m.1" "$SRC/m.2" &&
		send_ref "$ST/multi-chain" -c "$SRC/m.0" "$SRC/m.1" "$SRC/m.2" &&
		send_ref "$ST/o0" "$SRC/o.0" &&
		send_ref "$ST/o1" -p "$SRC/o.0" "$SRC/o.1" || return 1
	local alg c=$WORK/csrc
	for alg in zlib zstd lzo; do
		send_ref "$ST/c-$alg" --proto 2 --compressed-data "$c/c-$alg.0" ||
			return 1
	done
	send_ref "$ST/c-zstd1" --proto 2 --compressed-data -p "$c/c-zstd.0" \
		"$c/c-zstd.1"
}

build_sources
rc=$?
[ $rc -eq 0 ] && { build_compressed; rc=$?; }
[ $rc -eq 0 ] && { make_streams; rc=$?; }
if [ $rc -ne 0 ]; then
	fail "cannot build the source subvolumes and streams"
	finish
fi
# The streams must contain what the cases are about.
dump_has() {
	"$REF" receive --dump -f "$1" 2>/dev/null | grep -q "^$2 "
}
check "base3 stream clones from cs.0" dump_has "$ST/base3" clone
check "cu0 stream clones" dump_has "$ST/cu0" clone
check "base0 stream sets security.capability" \
	grep -qa security.capability "$ST/base0"
check "nodata stream has update_extent" dump_has "$ST/nodata0" update_extent
for alg in zlib zstd lzo; do
	check "c-$alg stream has encoded_write" dump_has "$ST/c-$alg" encoded_write
done
drop_fs csrc
drop_fs src

# The harness itself: tree-compare finds an equal copy equal, and each of
# a set of small changes to that copy.
self_test_tree_compare() {
	local src=$1 a=$RMNT/selftest-a b=$RMNT/selftest-b out=$WORK/selftest.out
	local f since
	snap_rw() { "$REF" -q subvolume snapshot "$1" "$2" >/dev/null; }
	snap_rw "$src" "$a" && snap_rw "$src" "$b" || {
		fail "tree-compare self-test: cannot snapshot"
		return
	}
	"$PYTHON" "$TREE_COMPARE" "$src" "$b" >"$out"
	check "tree-compare: a snapshot equals its source" [ $? -eq 0 ]
	# Of A, only overwrite changes after this: --data-since reads it alone.
	# The stamp is a file's ctime: the clock files are stamped with.
	touch "$WORK/since"
	since=$(stat -c %.9Z "$WORK/since" | tr -d .)
	printf Y | dd of="$a/overwrite" bs=1 seek=2000 conv=notrunc status=none
	chmod 4750 "$b/setuid"
	touch -a -d @12345 "$b/big"
	touch -m -h -d @12345 "$b/sl-rel"
	printf X | dd of="$b/overwrite" bs=1 seek=1000 conv=notrunc status=none
	rh setx "$b/d1" user.extra 00
	rm "$b/d1/link-dst" && cp -p "$b/link-src" "$b/d1/link-dst"
	rm "$b/empty"
	mkdir "$b/new-dir"
	chown 7:7 "$b/fifo"
	fallocate -p -o 0 -l 4096 "$b/hole-start"
	fallocate -p -o 0 -l 4096 "$b/hole-mid"
	cp --reflink=never "$b/clone-src" "$b/clone.tmp" && mv "$b/clone.tmp" "$b/clone-whole"
	# The same bytes, compressed on one side only.
	yes "one line" | head -c 200000 | tee "$a/packed" >"$b/packed"
	sync -f "$b" && "$REF" filesystem defragment -czstd "$b/packed"
	touch -r "$a/packed" "$b/packed"
	sync -f "$a" && sync -f "$b"
	"$PYTHON" "$TREE_COMPARE" --max 100 "$a" "$b" >"$out"
	check "tree-compare: differences make exit 1" [ $? -eq 1 ]
	for f in "setuid: mode:" "big: atime:" "sl-rel: mtime:" \
		"overwrite: content:" "d1: xattr user.extra:" \
		"d1/link-dst: hardlinks:" "link-src: nlink:" "empty: exists:" \
		"new-dir: exists:" "fifo: uid:" "hole-mid: sparse:" \
		"clone-whole: extents:"; do
		check "tree-compare finds $f" grep -qF "$f" "$out"
	done
	check "tree-compare: hole-start reads the same" \
		sh -c "! grep -qF 'hole-start: content:' '$out'"
	check "tree-compare: a buffered write's compression is writeback's" \
		sh -c "! grep -qF 'packed:' '$out'"
	"$PYTHON" "$TREE_COMPARE" --encoded-layout "$a" "$b" >"$out"
	check "tree-compare --encoded-layout finds packed: extents:" \
		grep -qF "packed: extents:" "$out"
	"$PYTHON" "$TREE_COMPARE" --max 100 --data-since "$since" "$a" "$b" >"$out"
	check "tree-compare --data-since reads a newer file" \
		grep -qF "overwrite: content:" "$out"
	check "tree-compare --data-since leaves older contents" \
		sh -c "! grep -qE '(hole-mid|clone-whole): (content|sparse|extents):' '$out'"
	check "tree-compare --data-since still compares the rest" \
		grep -qF "setuid: mode:" "$out"
	"$PYTHON" "$TREE_COMPARE" --no-atime --no-data --no-extents \
		"$a" "$b" >"$out"
	check "tree-compare --no-atime --no-data" \
		sh -c "! grep -qE ': (atime|content|sparse|extents):' '$out'"
	"$REF" -q subvolume delete "$a" "$b" >/dev/null
}

# ------------------------------------------------------------ fresh streams
new_dests || { fail "cannot make the destinations"; finish; }
set_dest chain
receive_both "full send" "$ST/base0"
# The stream sets the capability, then chowns: it must survive.
check "reference keeps security.capability after chown" \
	[ "$(rh getx "$RDEST/base.0/cap-file" security.capability)" = $CAP ]
receive_both "incremental base.1" "$ST/base1"
receive_both "incremental base.2" "$ST/base2"
set_dest clone-src
receive_both "clone source cs.0" "$ST/cs0"
set_dest chain
receive_both "incremental base.3 with -c" "$ST/base3"
set_dest cu
receive_both "cu.pre" "$ST/cupre"
receive_both "cu.0 with -c (clones across subvolumes)" "$ST/cu0"
# Last on this pair: its snapshots would share extents with what follows.
self_test_tree_compare "$RMNT/chain/base.0"

new_dests || { fail "cannot make the destinations"; finish; }
RECV_COMPARE_OPTS=(--no-data)
receive_both "--no-data full" "$ST/nodata0"
receive_both "--no-data incremental" "$ST/nodata1"
# With no data to clone from, the reference fails at the first clone.
set_dest clones
RECV_EXPECT_RC=1 receive_both "--no-data with a clone" "$ST/nodata-clones"
RECV_COMPARE_OPTS=()

# Encoded writes decide the layout: compare it too.
for fd in "" --force-decompress; do
	new_dests || { fail "cannot make the destinations"; finish; }
	RECV_COMPARE_OPTS=()
	if [ -z "$fd" ]; then
		RECV_COMPARE_OPTS=(--encoded-layout)
	fi
	for alg in zlib zstd lzo; do
		receive_both "compressed $alg ${fd:-encoded}" "$ST/c-$alg" $fd
	done
	receive_both "compressed zstd incremental ${fd:-encoded}" \
		"$ST/c-zstd1" $fd
done
RECV_COMPARE_OPTS=()

new_dests || { fail "cannot make the destinations"; finish; }
# receive -e stops at the first END: of 3 concatenated streams it takes
# one, of a send -e stream (one END, at the end) all.
set_dest chain
receive_both "3 subvolumes, 3 streams, receive -e" "$ST/multi" -e
ref_received "3 subvolumes, 3 streams, receive -e" 1
receive_both "2 incremental subvolumes in one stream" "$ST/multi-chain"
ref_received "2 incremental subvolumes in one stream" 2
set_dest multi
receive_both "3 subvolumes, 3 streams" "$ST/multi"
ref_received "3 subvolumes, 3 streams" 3
set_dest multi-e
receive_both "3 subvolumes, send -e" "$ST/multi-e"
ref_received "3 subvolumes, send -e" 3
set_dest multi-e-recv-e
receive_both "3 subvolumes, send -e, receive -e" "$ST/multi-e" -e
ref_received "3 subvolumes, send -e, receive -e" 3
# Now m.0 and m.1 were each received 4 times on this filesystem: progs
# takes the parent the uuid tree lists first, the first received (chain/).
set_dest dup
receive_both "parent received several times" "$ST/multi-chain"

# -m ROOTMOUNT: the destination is a directory inside subvolume vol,
# mounted by itself; paths are made relative to ROOTMOUNT, and parents and
# clone sources must be reachable from the subvolume that contains it.
new_dests || { fail "cannot make the destinations"; finish; }
"$REF" -q subvolume create "$RMNT/vol" >/dev/null &&
	"$REF" -q subvolume create "$OMNT/vol" >/dev/null &&
	mount_fs "$(fs_dev "$RMNT")" "$WORK/refvol" noatime,subvol=vol &&
	mount_fs "$(fs_dev "$OMNT")" "$WORK/oursvol" noatime,subvol=vol ||
	fail "cannot mount subvolume vol"
RROOT=$WORK/refvol
OROOT=$WORK/oursvol
RDEST=$RROOT/a/b
ODEST=$OROOT/a/b
mkdir -p "$RDEST" "$ODEST"
receive_both "-m subvolume mount, nested destination" "$ST/base0" -m @ROOT@
receive_both "-m subvolume mount, incremental" "$ST/base1" -m @ROOT@
receive_both "no -m, subvolume mount, incremental" "$ST/base2"
RROOT=$RMNT/vol
OROOT=$OMNT/vol
RDEST=$RROOT/c
ODEST=$OROOT/c
mkdir -p "$RDEST" "$ODEST"
receive_both "-m subvolume through the top level: clone source" \
	"$ST/cs0" -m @ROOT@
receive_both "-m subvolume through the top level: cu.pre" "$ST/cupre" -m @ROOT@
receive_both "-m subvolume through the top level: -c" "$ST/cu0" -m @ROOT@
set_dest outside
receive_both "parent outside vol" "$ST/o0"
RROOT=$WORK/refvol
OROOT=$WORK/oursvol
RDEST=$RROOT/d
ODEST=$OROOT/d
mkdir -p "$RDEST" "$ODEST"
RECV_EXPECT_RC=1 receive_both "-m: parent not reachable from the root" \
	"$ST/o1" -m @ROOT@
check "-m: the reference says the parent is not reachable" \
	grep -q '^ERROR: parent subvol is not reachable from inside the root subvol' \
	"$RECV_LAST.ref.err"
RECV_EXPECT_RC=1 receive_both "-m /: not a btrfs subvolume" "$ST/o0" -m /

# -C: chroot into the destination; parents and clone sources still found.
new_dests || { fail "cannot make the destinations"; finish; }
set_dest chroot
receive_both "-C full" "$ST/base0" -C
check "-C prints Chroot to DEST" grep -qx "Chroot to $ODEST" \
	"$RECV_LAST.ours.err"
receive_both "-C incremental" "$ST/base1" -C
receive_both "-C clone source" "$ST/cs0" -C
receive_both "-C cu.pre" "$ST/cupre" -C
receive_both "-C clones across subvolumes" "$ST/cu0" -C

# ------------------------------------------------------------ the corpus
# Skipped: incr-tricky.stream (its parent base.1b is not in the corpus),
# clone-src.stream (its parent cluser.pre is not in the corpus).
corpus_chain() {
	local s
	for s in "$@"; do
		receive_both "corpus $s" "$CORPUS/$s.stream"
	done
}
new_dests || { fail "cannot make the destinations"; finish; }
corpus_chain full incr-basic hardlinks hardlinks-incr symlinks \
	symlinks-incr special xattrs xattrs-incr sparse sparse-incr clone \
	clone-incr compressed-zlib compressed-lzo compressed-zstd \
	compressed-zstd-incr proto2-plain
set_dest multi
corpus_chain multi
set_dest multi-chain
corpus_chain multi-chain
echo "SKIP: $TEST_NAME: corpus incr-tricky.stream (parent base.1b not in the corpus) and clone-src.stream (parent cluser.pre not in the corpus)" >&2

new_dests || { fail "cannot make the destinations"; finish; }
RECV_COMPARE_OPTS=(--no-data)
corpus_chain nodata nodata-incr
RECV_COMPARE_OPTS=()
set_dest multi-e
corpus_chain multi-e
set_dest multi-chain-e
corpus_chain multi-chain-e

# ------------------------------------------------------------ shortcuts
# Where the applier makes a new inode at the name of its first rename and
# holds directory times back, every case that must fall back (taken
# names, use before the rename, directory renames and removals): the tree
# must match the reference's, times included.
set_dest lazy-create
"$PYTHON" "$TOP/tests/mkstream.py" "$TOP/tests/specs/recv-lazy-create.spec" \
	>"$WORK/lazy-create.stream"
receive_both "crafted: inodes made at their new name, held directory times" \
	"$WORK/lazy-create.stream"
check "crafted: the never-renamed file and directory exist" \
	test -f "$ODEST/lazy/o268-7-0" -a -d "$ODEST/lazy/o269-7-0"
check "crafted: the file renamed over another has the new data" \
	[ "$(cat "$ODEST/lazy/d/plain")" = replaced ]

# ------------------------------------------------------------ external
X=$SHARED_STREAMS
new_dests || { fail "cannot make the destinations"; finish; }
receive_both "external r2f-stream01" "$X/r2f-stream01.bin"
# The last command of r2f-stream02 in the top directory is an rmdir after
# its last utimes: its mtime is the wall clock's.
RECV_COMPARE_OPTS=(--ignore .:mtime)
receive_both "external r2f-stream02 (incremental)" "$X/r2f-stream02.bin"
RECV_COMPARE_OPTS=()
# Ours sets directory times once at the end: the top directory keeps the
# stream's last times (a documented difference), not the wall clock's.
check "external r2f-stream02: ours keeps the stream's mtime of the top directory" \
	[ "$(stat -c %Y.%y "$ODEST/02" | sed 's/^\([0-9]*\)\..*:[0-9][0-9]\.\([0-9]*\) .*/\1.\2/')" = 1606327362.718506663 ]
check "external r2f-stream02: the reference's is the wall clock's" \
	[ "$(stat -c %Y "$RDEST/02")" -gt 1606327362 ]
for n in 01 02; do
	check "external r2f-stream$n: ours matches the md5 list" \
		sh -c "cd '$ODEST/$n' && md5sum --quiet -c '$X/r2f-stream${n}_files.txt'"
done
receive_both "external sendstream_parser-demo" \
	"$X/sendstream_parser-demo.sendstream"
# Four snapshots whose parent (received uuid b0afcb2c...) and clone source
# (e9afdf92..., the source of a 1 MiB clone) are not in the stream: the
# reference stops at the first, then, once both are made up, receives all.
set_dest progs-alone
RECV_EXPECT_RC=1 receive_both "external progs-multi-clone-src, no parent" \
	"$X/progs-multi-clone-src-v4.8.2.stream"
fake_subvol() {
	local path=$1 uuid=$2 stransid=$3 file=$4 size=$5
	subvol "$path" && rh rand "$path/$file" 0 "$size" "$file" &&
		touch -d @1478649600 "$path/$file" "$path" &&
		rh set-received "$path" "$uuid" "$stransid" &&
		"$REF" property set -ts "$path" ro true 2>/dev/null
}
for m in "$RMNT" "$OMNT"; do
	fake_subvol "$m/fake-parent" b0afcb2c-91d5-2f42-b817-6e073b881952 12 \
		file2_1 4096 &&
		fake_subvol "$m/fake-clone" e9afdf92-ac63-bb47-8f22-0acc185043e0 8 \
			file1_1 $MiB ||
		fail "cannot make up the parent of progs-multi-clone-src"
done
set_dest progs
receive_both "external progs-multi-clone-src, made-up parent" \
	"$X/progs-multi-clone-src-v4.8.2.stream"
ref_received "external progs-multi-clone-src, made-up parent" 4

finish
