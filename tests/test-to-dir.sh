#!/bin/bash
# receive --to-dir: a full + incremental chain (renames, a swap, hardlinks,
# xattrs, sparse files, reflinks, a deleted and a moved directory tree), a
# --compressed-data stream and a -c clone stream, sent by the reference,
# received by the reference onto btrfs and by ours with --to-dir onto
# tmpfs, ext4 and xfs: the trees must be equal.  Also: the record of a
# completed receive, reflinks on xfs and copies elsewhere, and refusals
# (missing parent, the same subvolume twice, escaping paths, a forged
# record).
. "$(dirname "$0")/recv-lib.sh"

require "Debian's btrfs-progs ($REF)" have_reference
require "root with btrfs and loop devices" have_loop_btrfs
require "mkfs.ext4" command -v mkfs.ext4
require "mkfs.xfs (xfsprogs)" command -v mkfs.xfs
require "filefrag" command -v filefrag

KiB=1024
MiB=$((1024 * 1024))
CAP=0100000200200000000000000000000000000000
ST=$WORK/streams
mkdir -p "$ST"

subvol() { "$REF" -q subvolume create "$1" >/dev/null; }
snap() { "$REF" -q subvolume snapshot -r "$1" "$2" >/dev/null; }

# make_plain NAME TYPE: a tmpfs, or an ext4 or xfs image, on $WORK/NAME.
make_plain() {
	case $2 in
	tmpfs) mount_tmpfs "$WORK/$1" noatime,size=2G ;;
	ext4) make_loop_fs ext4 "$WORK/$1.img" 1G "$WORK/$1" noatime -b 4096 ;;
	*) make_loop_fs "$2" "$WORK/$1.img" 1G "$WORK/$1" noatime ;;
	esac
}

# ------------------------------------------------------------ the source
make_fs src 2G || { fail "cannot make the source filesystem"; finish; }
make_fs ref 2G || { fail "cannot make the btrfs destination"; finish; }
SRC=$WORK/src
W=$SRC/w

build_base() (
	set -e
	cd "$W"
	mkdir -p d1/d2 gone/sub moving/tree/deep keep
	rh rand a 0 5000 a
	rh rand b 0 70000 b
	rh rand swap1 0 300 s1
	rh rand swap2 0 600 s2
	rh rand d1/d2/deep 0 100 deep
	rh rand gone/sub/f 0 100 g
	rh rand moving/tree/deep/leaf 0 4000 leaf
	rh rand link-src 0 1000 ls
	ln link-src d1/link-dst
	ln link-src keep/link3
	rh rand hole-mid 0 $((64 * KiB)) hm1
	rh rand hole-mid $MiB $((64 * KiB)) hm2
	rh rand hole-start $MiB 4096 hs
	truncate -s $((3 * MiB)) all-hole
	rh rand big 0 $((2 * MiB)) big
	# Reflinks: across files and within one file.
	rh clone big 0 $((256 * KiB)) cl-across 0
	rh clone big $MiB $((128 * KiB)) cl-across $((512 * KiB))
	rh rand cl-within 0 $((128 * KiB)) cw
	rh clone cl-within 0 $((64 * KiB)) cl-within $((256 * KiB))
	ln -s a sl
	ln -s ../nowhere d1/dangling
	mkfifo fifo
	mknod chr c 1 3
	rh sock sock
	rh setx a user.one 6f6e65
	rh setx a user.gone 676f6e65
	rh setx d1 user.on-dir 646972
	rh setx sl trusted.on-symlink 6c6e6b
	rh rand cap 0 50 cap
	rh setx cap security.capability $CAP
	chown 1000:1000 b
	rh rand setuid 0 60 su
	chown 1000:1000 setuid
	chmod 4755 setuid
	chmod 0700 keep
	chown -h 1234:5678 sl
	touch -d @1000000000 a
)

build_incr1() (
	set -e
	cd "$W"
	mv swap1 swap.tmp && mv swap2 swap1 && mv swap.tmp swap2
	mv a a-renamed
	mv moving/tree keep/moved-tree
	rm -rf gone
	rm d1/link-dst
	ln b d1/b-link
	rh rand b 4096 4096 b2
	rh setx a-renamed user.one 6e6577
	rh rmx a-renamed user.gone
	rh rand hole-mid $((2 * MiB)) 4096 hm3
	truncate -s $((100 * KiB)) big-cut 2>/dev/null || true
	rh rand new-in-incr 0 9000 ni
	rh clone big $((1536 * KiB)) $((128 * KiB)) new-in-incr $((64 * KiB))
	chmod 0640 a-renamed
)

build_incr2() (
	set -e
	cd "$W"
	mv d1 d1-moved
	rm -f keep/moved-tree/deep/leaf
	rh rand keep/moved-tree/deep/leaf2 0 777 l2
	truncate -s 3000 a-renamed
	rh rand big $((512 * KiB)) 8192 bg
)

subvol "$W"
build_base || fail "building the base tree"
snap "$W" "$SRC/s0"
build_incr1 || fail "building the first increment"
snap "$W" "$SRC/s1"
build_incr2 || fail "building the second increment"
snap "$W" "$SRC/s2"
# A snapshot of s0 with data cloned from s1: a -c clone stream.
"$REF" -q subvolume snapshot "$SRC/s0" "$SRC/c" >/dev/null
rh clone "$SRC/s1/new-in-incr" 0 8192 "$SRC/c/from-s1" 0
rh clone "$SRC/s1/b" 0 $((64 * KiB)) "$SRC/c/from-s1" $((64 * KiB))
rh rand "$SRC/c/own" 0 3000 own
snap "$SRC/c" "$SRC/c0"
sync -f "$SRC"

send_ref "$ST/s0" "$SRC/s0"
send_ref "$ST/s1" -p "$SRC/s0" "$SRC/s1"
send_ref "$ST/s2" -p "$SRC/s1" "$SRC/s2"
send_ref "$ST/c0" -p "$SRC/s0" -c "$SRC/s1" "$SRC/c0"
CHAIN=(s0 s1 s2 c0)
for s in "${CHAIN[@]}"; do
	if ! "$REF" receive -q -f "$ST/$s" "$WORK/ref" 2>"$WORK/ref-$s.err"; then
		fail "reference receive of $s: $(head -2 "$WORK/ref-$s.err")"
	fi
done
check "the -c stream clones from s1" \
	grep -q "^clone .*from-s1" <("$REF" receive --dump -f "$ST/c0")

# A compressed stream: the source mounted with compression.
make_fs zsrc 1G compress-force=zstd || fail "cannot make the compressed source"
subvol "$WORK/zsrc/z"
for i in 1 2 3; do
	yes "compressible line $i" | head -c $((300 * KiB)) >"$WORK/zsrc/z/t$i"
done
rh rand "$WORK/zsrc/z/t1" $((400 * KiB)) 4096 z
snap "$WORK/zsrc/z" "$WORK/zsrc/z0"
sync -f "$WORK/zsrc"
"$REF" send -q --compressed-data -f "$ST/z0" "$WORK/zsrc/z0" 2>/dev/null ||
	fail "reference send --compressed-data"
check "the compressed stream holds encoded writes" \
	grep -q "^encoded_write" <("$REF" receive --dump -f "$ST/z0")
"$REF" receive -q -f "$ST/z0" "$WORK/ref" 2>/dev/null ||
	fail "reference receive of the compressed stream"

# What differs by nature between btrfs and a plain filesystem: extents
# (a btrfs snapshot shares them all), inode flags ext4 sets on every file,
# directory sizes, and our record on the top directory.
PLAIN_OPTS=(--no-extents --no-flags --no-dir-size
	    --ignore ".:xattr user.btrfs.received_uuid"
	    --ignore ".:xattr user.btrfs.stransid")

# to_dir NAME DIR STREAM [args]: receive with ours, output in $WORK/NAME.*
to_dir() {
	local base=$WORK/$1 dir=$2 stream=$3
	shift 3
	timeout -k 10 120 "$OURS" receive "$@" -f "$stream" --to-dir "$dir" \
		>"$base.out" 2>"$base.err" </dev/null
	echo $? >"$base.rc"
}

# getfattr_any DIR: the names of our record's xattrs that DIR has.
getfattr_any() {
	"$PYTHON" -c 'import os,sys; print(*[x for x in os.listxattr(sys.argv[1]) if x.startswith("user.btrfs.")])' "$1"
}

record_of() {
	echo "$(rh getx "$1" user.btrfs.received_uuid) $(rh getx "$1" user.btrfs.stransid)"
}

not_shared() { ! filefrag -v "$1" 2>/dev/null | grep -q shared; }

hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }

check_chain() {
	local fs=$1 m=$WORK/$1 s uuid transid
	for s in "${CHAIN[@]}" z0; do
		to_dir "$fs-$s" "$m" "$ST/$s" -vv
		if [ "$(cat "$WORK/$fs-$s.rc")" != 0 ]; then
			fail "$fs: receive --to-dir of $s exits $(cat "$WORK/$fs-$s.rc")"
			sed 's/^/    /' "$WORK/$fs-$s.err" | head -5 >&2
			continue
		fi
		pass "$fs: receive --to-dir of $s"
		compare_trees "$fs: $s" "$WORK/ref/$s" "$m/$s" "${PLAIN_OPTS[@]}"
		uuid=$("$REF" subvolume show "$WORK/ref/$s" |
			sed -n 's/^\tReceived UUID: *\t*//p')
		transid=$("$REF" subvolume show "$WORK/ref/$s" |
			sed -n 's/^\tSend transid: *\t*//p')
		check "$fs: $s: the record holds the received uuid and stransid" \
			[ "$(record_of "$m/$s")" = "$(hex "$uuid") $(hex "$transid")" ]
	done
	check "$fs: At snapshot lines on stdout, as btrfs receive" \
		grep -qx "At snapshot s2" "$WORK/$fs-s2.out"
	check "$fs: At subvol lines on stderr" \
		grep -qx "At subvol s0" "$WORK/$fs-s0.err"
}

for fs in tmpfs ext4 xfs; do
	make_plain "$fs" "$fs" || { fail "cannot make the $fs destination"; continue; }
	check_chain "$fs"
done

# Reflinks where the filesystem has them, copy_file_range elsewhere.
copies() { sed -n 's/^to-dir: \([0-9]*\) ranges reflinked, \([0-9]*\) copied$/\1 \2/p' "$WORK/$1.err"; }
read -r xr xc <<<"$(copies xfs-s1)"
check "xfs: the snapshot copy and clones are reflinks ($xr reflinked)" \
	[ "${xr:-0}" -gt 0 ]
check "xfs: nothing copied ($xc copied)" [ "${xc:-1}" -eq 0 ]
check "xfs: FIEMAP shows big shared between s0 and s1" \
	grep -q shared <(filefrag -v "$WORK/xfs/s1/big")
for fs in tmpfs ext4; do
	read -r r c <<<"$(copies "$fs-s1")"
	check "$fs: no reflinks ($r reflinked)" [ "${r:-1}" -eq 0 ]
	check "$fs: copies instead ($c copied)" [ "${c:-0}" -gt 0 ]
	check "$fs: the copy of big shares nothing" \
		not_shared "$WORK/$fs/s1/big"
done

# ------------------------------------------------------------ refusals
T=$WORK/tmpfs

# -C: the same chain from inside a chroot.
mkdir -p "$T/chroot"
for s in s0 s1; do
	to_dir "chroot-$s" "$T/chroot" "$ST/$s" -C
	check "-C: receive --to-dir of $s" [ "$(cat "$WORK/chroot-$s.rc")" = 0 ]
	compare_trees "-C: $s" "$WORK/ref/$s" "$T/chroot/$s" "${PLAIN_OPTS[@]}"
done
mkdir -p "$T/empty"
to_dir no-parent "$T/empty" "$ST/s1"
check "missing parent: exit 1" [ "$(cat "$WORK/no-parent.rc")" = 1 ]
check "missing parent: the btrfs table's message" \
	grep -q "^ERROR: cannot find parent subvolume .* of snapshot s1" "$WORK/no-parent.err"
check "missing parent: nothing created" [ -z "$(ls -A "$T/empty")" ]

before=$(record_of "$T/s0")
to_dir twice "$T" "$ST/s0"
check "the same subvolume twice: exit 1" [ "$(cat "$WORK/twice.rc")" = 1 ]
check "the same subvolume twice: ERROR" \
	grep -q "^ERROR: creating subvolume s0 failed: File exists" "$WORK/twice.err"
check "the same subvolume twice: the first one kept" \
	[ "$(record_of "$T/s0")" = "$before" ]
compare_trees "the same subvolume twice: tree kept" "$WORK/ref/s0" "$T/s0" \
	"${PLAIN_OPTS[@]}"

# A receive cut short must not look complete.
mkdir -p "$T/cut"
head -c $(($(stat -c %s "$ST/s0") / 2)) "$ST/s0" >"$ST/s0-cut"
to_dir cut "$T/cut" "$ST/s0-cut"
check "cut stream: exit 1" [ "$(cat "$WORK/cut.rc")" = 1 ]
check "cut stream: no record" \
	[ -z "$(getfattr_any "$T/cut/s0")" ]

# A snapshot copy does not carry its parent's record: an incremental
# receive cut short leaves its directory without one.
mkdir -p "$T/cut2"
to_dir cut2-s0 "$T/cut2" "$ST/s0"
head -c $(($(stat -c %s "$ST/s1") * 3 / 4)) "$ST/s1" >"$ST/s1-cut"
to_dir cut2 "$T/cut2" "$ST/s1-cut"
check "cut incremental stream: exit 1" [ "$(cat "$WORK/cut2.rc")" = 1 ]
check "cut incremental stream: the copy was made" [ -e "$T/cut2/s1/b" ]
check "cut incremental stream: no record" [ -z "$(getfattr_any "$T/cut2/s1")" ]

# A stream that forges a record is refused.
MKSTREAM=$TOP/tests/mkstream.py
mkdir -p "$T/forge"
printf '%s\n' "header 1" \
	"subvol path=s:f uuid=uuid:f0f0000000000000000000000000000f ctransid=u64:9" \
	"set_xattr path=s: xattr_name=s:user.btrfs.received_uuid xattr_data=s:f0f00000-0000-0000-0000-00000000000f" \
	"set_xattr path=s: xattr_name=s:user.btrfs.stransid xattr_data=s:9" \
	"end" | "$PYTHON" "$MKSTREAM" >"$ST/forge"
to_dir forge "$T/forge" "$ST/forge"
check "forged record: exit 1" [ "$(cat "$WORK/forge.rc")" = 1 ]
check "forged record: refused" grep -q "^ERROR: set_xattr user.btrfs.received_uuid" "$WORK/forge.err"
check "forged record: no record" [ -z "$(getfattr_any "$T/forge/f")" ]

# Escaping paths: refused as on btrfs, nothing outside changes.
SUB="subvol path=s:esc uuid=uuid:e5c0000000000000000000000000000e ctransid=u64:1"
escape() {
	local name=$1 pat=$2 body=$3 area=$T/esc-$1 base=$WORK/esc-$1
	mkdir -p "$area/dest" "$area/canary/dir"
	echo canary >"$area/canary/file"
	printf '%s\n' "header 1" "${body//@CANARY@/$area/canary}" "end" |
		"$PYTHON" "$MKSTREAM" >"$base.stream" || { fail "escape $name: mkstream"; return; }
	rh state "$area" dest/esc >"$base.before"
	to_dir "esc-$name" "$area/dest" "$base.stream"
	rh state "$area" dest/esc >"$base.after"
	pat=${pat//@CANARY@/$area/canary}
	check "escape $name: exit 1" [ "$(cat "$base.rc")" = 1 ]
	check "escape $name: ERROR names $pat" \
		grep -qwF -- "$pat" <(grep '^ERROR: ' "$base.err")
	check "escape $name: nothing changed outside" cmp -s "$base.before" "$base.after"
}
escape mkfile-dotdot ../escape "$SUB
mkfile path=s:../escape ino=u64:257"
escape mkfile-absolute "@CANARY@" "$SUB
mkfile path=s:@CANARY@/evil ino=u64:257"
escape rename-dotdot ../../canary/x "$SUB
mkfile path=s:f ino=u64:257
rename path=s:f path_to=s:../../canary/x"
escape symlink-then-mkfile l/evil "$SUB
symlink path=s:l path_link=s:@CANARY@ ino=u64:257
mkfile path=s:l/evil ino=u64:258"
escape symlink-write-final l "$SUB
symlink path=s:l path_link=s:@CANARY@/file ino=u64:257
write path=s:l file_offset=u64:0 data=s:pwned"
escape link-from-outside ../../canary/file "$SUB
link path=s:stolen path_link=s:../../canary/file"
escape clone-from-outside ../../canary/file "$SUB
mkfile path=s:f ino=u64:257
clone path=s:f file_offset=u64:0 clone_len=u64:7 clone_uuid=uuid:e5c0000000000000000000000000000e clone_ctransid=u64:1 clone_path=s:../../canary/file clone_offset=u64:0"
escape subvol-dotdot ../escape "subvol path=s:../escape uuid=uuid:e5c0000000000000000000000000000e ctransid=u64:1"

# Inode flags and verity tmpfs lacks: one warning each, not an error.
mkdir -p "$T/feat"
printf '%s\n' "header 3" \
	"subvol path=s:feat uuid=uuid:fea70000000000000000000000000000 ctransid=u64:3" \
	"mkfile path=s:f ino=u64:257" "write path=s:f file_offset=u64:0 data=s:one" \
	"mkfile path=s:g ino=u64:258" "write path=s:g file_offset=u64:0 data=s:two" \
	"fileattr path=s:f fileattr=u64:0x2" "fileattr path=s:g fileattr=u64:0x2" \
	"enable_verity path=s:f verity_algorithm=u8:1 verity_block_size=u32:4096" \
	"enable_verity path=s:g verity_algorithm=u8:1 verity_block_size=u32:4096" \
	"end" | "$PYTHON" "$MKSTREAM" >"$ST/feat"
to_dir feat "$T/feat" "$ST/feat"
check "unsupported flags and verity: exit 0" [ "$(cat "$WORK/feat.rc")" = 0 ]
check "unsupported flags: one warning" \
	[ "$(grep -c '^WARNING: fileattr not applied' "$WORK/feat.err")" = 1 ]
check "unsupported verity: one warning" \
	[ "$(grep -c '^WARNING: enable_verity not applied' "$WORK/feat.err")" = 1 ]
check "unsupported flags and verity: complete" \
	[ -n "$(getfattr_any "$T/feat/feat")" ]
check "unsupported flags and verity: data written" \
	[ "$(cat "$T/feat/feat/f" "$T/feat/feat/g")" = onetwo ]

# Options that make no sense with --to-dir.
"$OURS" receive -m / --to-dir "$T" </dev/null >/dev/null 2>"$WORK/m.err"
check "-m with --to-dir: usage error" [ $? = 1 ]
check "-m with --to-dir: says so" grep -q -- "-m cannot be used with --to-dir" "$WORK/m.err"
"$OURS" receive --to-dir "$T" "$T" </dev/null >/dev/null 2>"$WORK/two.err"
check "--to-dir and <mount>: usage error" [ $? = 1 ]

finish
