#!/bin/bash
# make-corpus.sh [OUTDIR]
#
# Generate the corpus of real btrfs send streams used by the test suite,
# using the *reference* tool /usr/bin/btrfs (Debian btrfs-progs) and the
# running kernel.  Must run as root (loop mounts).
#
# Everything happens on a sparse loop image inside a private mktemp -d
# directory; the EXIT trap of tests/lib.sh unmounts what this script
# mounted, detaches only the loop devices this script attached and removes
# the temp dir.
#
# File contents are deterministic (SHAKE-256 of a seed / fixed text);
# timestamps, uuids and transids naturally differ between runs.
set -euo pipefail

BTRFS=/usr/bin/btrfs
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUTDIR=${1:-$SCRIPT_DIR}
START=$(date +%s.%N)

die() { echo "make-corpus: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"
[ -x "$BTRFS" ] || die "$BTRFS not found (install btrfs-progs)"
for t in mkfs.btrfs losetup mount umount truncate fallocate mknod mkfifo perl; do
    command -v "$t" >/dev/null || die "missing tool: $t"
done
command -v python3 >/dev/null || die "missing tool: python3"
# Resolve the real interpreter once (pyenv shims are slow to start).
PY=$(python3 -c 'import sys; print(sys.executable)')

mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)

# The loop image, its mount and the cleanup at exit.
TEST_NAME=make-corpus WORK_NAME=btrfs-corpus
. "$SCRIPT_DIR/../lib.sh"
TMP=$WORK

# ---------------------------------------------------------------- helpers

cat >"$TMP/helper.py" <<'EOF'
import os, sys, struct, hashlib

def prng_bytes(seed, n):
    # deterministic pseudo-random bytes (SHAKE-256 XOF of the seed)
    return hashlib.shake_256(b'btrfs-corpus-%d' % seed).digest(n) if n else b''

def text_bytes(seed, n):
    out = bytearray()
    i = 0
    while len(out) < n:
        out += b'line %07d seed %d: the quick brown fox jumps over the lazy dog\n' % (i, seed)
        i += 1
    return bytes(out[:n])

def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd in ('rand', 'text'):
        # rand|text FILE OFFSET LEN SEED  -- pwrite data, create if needed
        path, off, ln, seed = args[0], int(args[1]), int(args[2]), int(args[3])
        data = (prng_bytes if cmd == 'rand' else text_bytes)(seed, ln)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, data, off)
        finally:
            os.close(fd)
    elif cmd == 'setx':
        # setx PATH NAME HEXVALUE
        os.setxattr(args[0], args[1], bytes.fromhex(args[2]), follow_symlinks=False)
    elif cmd == 'setxlen':
        # setxlen PATH NAME LEN SEED  -- printable pseudo-random value
        v = bytes(0x21 + b % 94 for b in prng_bytes(int(args[3]), int(args[2])))
        os.setxattr(args[0], args[1], v, follow_symlinks=False)
    elif cmd == 'rmx':
        os.removexattr(args[0], args[1], follow_symlinks=False)
    elif cmd == 'sock':
        import socket
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(args[0])
        s.close()
    elif cmd == 'clone':
        # clone SRC SRCOFF LEN DST DSTOFF  -- FICLONERANGE (partial reflink)
        import fcntl
        FICLONERANGE = 0x4020940d
        src = os.open(args[0], os.O_RDONLY)
        dst = os.open(args[3], os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            fcntl.ioctl(dst, FICLONERANGE, struct.pack('=qQQQ', src,
                        int(args[1]), int(args[2]), int(args[4])))
        finally:
            os.close(src); os.close(dst)
    elif cmd == 'setflags':
        # setflags PATH FLAGBITS(int) -- FS_IOC_SETFLAGS (chattr without e2fsprogs)
        import fcntl
        FS_IOC_GETFLAGS, FS_IOC_SETFLAGS = 0x80086601, 0x40086602
        fd = os.open(args[0], os.O_RDONLY)
        try:
            cur = struct.unpack('l', fcntl.ioctl(fd, FS_IOC_GETFLAGS, struct.pack('l', 0)))[0]
            fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack('l', cur | int(args[1], 0)))
        finally:
            os.close(fd)
    else:
        sys.exit('unknown helper command ' + cmd)

main()
EOF

h() { "$PY" -I -S "$TMP/helper.py" "$@"; }
# rnd FILE OFFSET LEN SEED / txt FILE OFFSET LEN SEED
rnd() { h rand "$@"; }
txt() { h text "$@"; }

KiB=1024
MiB=$((1024 * 1024))

IMG=$TMP/fs.img
MNT=$TMP/mnt
make_loop_fs btrfs "$IMG" 1G "$MNT" defaults || die "cannot make the loop btrfs"
M=$MNT
mkdir "$M/snaps"

subvol() { "$BTRFS" -q subvolume create "$M/$1" >/dev/null; }
snap() { # snap SUBVOL NAME
    sync
    "$BTRFS" -q subvolume snapshot -r "$M/$1" "$M/snaps/$2" >/dev/null
}
STREAMS=()
send() { # send OUTNAME [send args...] -- snapshot names are relative to snaps/
    local out=$1
    shift
    local args=() a
    for a in "$@"; do
        case $a in
            -*) args+=("$a") ;;
            *) if [ -d "$M/snaps/$a" ]; then args+=("$M/snaps/$a"); else args+=("$a"); fi ;;
        esac
    done
    rm -f "$OUTDIR/$out"
    "$BTRFS" -q send -f "$OUTDIR/$out" "${args[@]}"
    STREAMS+=("$out")
}

# ================================================================ 1. full
subvol base
B=$M/base
(
    cd "$B"
    mkdir -p dir1/sub/deeper/deepest dir2 dir3/empty-dir 'dir with space' emptydir
    : >empty1
    : >dir1/empty2
    rnd one-byte 0 1 1
    rnd inline-2000 0 2000 2
    rnd exact-4096 0 4096 3
    rnd block-plus-one 0 4097 4
    rnd multi-200k 0 $((200 * KiB)) 5
    rnd big-1m-plus-3 0 $((MiB + 3)) 6
    rnd trailing-hole 0 4096 38
    truncate -s $((MiB)) trailing-hole
    txt dir1/text.txt 0 $((20 * KiB)) 7
    rnd dir1/sub/deeper/deepest/leaf 0 12345 8
    rnd dir2/moveme 0 5000 9
    rnd dir2/overwrite-mid 0 $((256 * KiB)) 10
    rnd dir2/append-me 0 $((100 * KiB)) 11
    rnd dir2/truncate-me 0 $((300 * KiB)) 12
    rnd dir2/extend-me 0 3000 13
    rnd dir2/swap-a 0 111 14
    rnd dir2/swap-b 0 222 15
    rnd dir3/delete-me 0 4444 16
    rnd dir3/empty-dir/.hidden 0 10 17
    rnd 'dir with space/file with space' 0 100 18
    # odd names
    rnd $'tab\there' 0 10 19
    rnd $'new\nline' 0 10 20
    rnd 'back\slash' 0 10 21
    rnd 'café' 0 10 22
    rnd $'latin1-\xe9\xff-not-utf8' 0 10 23
    rnd "quote'single" 0 10 24
    rnd 'quote"double' 0 10 25
    rnd '-leading-dash' 0 10 26
    rnd ' leading space' 0 10 27
    rnd 'trailing space ' 0 10 28
    rnd '$dollar*star?q[br]{c}|pipe&amp;semi;' 0 10 29
    rnd "$(printf 'n%.0s' {1..255})" 0 10 30     # 255-byte name (NAME_MAX)
    mkdir "dir-$(printf 'd%.0s' {1..200})"
    rnd "dir-$(printf 'd%.0s' {1..200})/$(printf 'f%.0s' {1..250})" 0 10 31
    # ownership and modes (chown before chmod: chown clears setuid)
    rnd owned-1000 0 50 32
    chown 1000:1000 owned-1000
    rnd setuid-4755 0 60 33
    chown 1000:1000 setuid-4755
    chmod 4755 setuid-4755
    rnd setgid-2755 0 60 34
    chmod 2755 setgid-2755
    rnd private-0600 0 60 35
    chmod 0600 private-0600
    rnd nomode-0000 0 60 36
    chmod 0000 nomode-0000
    rnd uid-65534 0 70 37
    chown 65534:65533 uid-65534
    chmod 0640 uid-65534
    mkdir sticky-1777 setgid-dir-2775
    chmod 1777 sticky-1777
    chown 0:1000 setgid-dir-2775
    chmod 2775 setgid-dir-2775
    chown 1000:1000 dir3
    chmod 0700 dir3
    touch -h -d '2001-02-03 04:05:06.789 UTC' dir1/text.txt
    touch -h -d '1970-01-01 00:00:00 UTC' one-byte
)
snap base base.0
send full.stream base.0

# ================================================================ 2. incremental
(
    cd "$B"
    mv one-byte one-byte-renamed                   # rename file
    mv dir2/moveme dir1/moveme-moved               # move file across dirs
    mv dir1/sub dir3/sub                           # move dir into another dir
    mv dir2/swap-a dir2/swap-tmp                   # swap two names
    mv dir2/swap-b dir2/swap-a
    mv dir2/swap-tmp dir2/swap-b
    mv 'dir with space' 'dir renamed'              # rename dir
    rm dir3/delete-me exact-4096                   # unlink
    rm dir3/empty-dir/.hidden
    rmdir dir3/empty-dir emptydir                  # rmdir
    rnd dir2/overwrite-mid $((100 * KiB)) $((8 * KiB)) 100     # partial overwrite (aligned)
    rnd dir2/overwrite-mid $((200 * KiB + 123)) 1000 101       # unaligned overwrite
    rnd dir2/append-me $((100 * KiB)) $((30 * KiB)) 102       # append
    truncate -s $((100 * KiB + 7)) dir2/truncate-me             # truncate shorter
    truncate -s $((64 * KiB)) dir2/extend-me                    # truncate longer
    rnd new-file 0 $((70 * KiB)) 103                            # new files
    mkdir -p newdir/newsub
    rnd newdir/newsub/new-nested 0 999 104
    : >newdir/new-empty
    chmod 0755 private-0600                                     # chmod only
    chown 1000:1000 uid-65534                                   # chown only
    touch -h -d '2011-11-11 11:11:11 UTC' multi-200k            # utimes only
    mv 'café' 'caf'$'\xc3\xa9''-renamed'
)
snap base base.1
send incr-basic.stream -p base.0 base.1

(
    cd "$B"
    # invert hierarchy: dir1/... parent P with child C -> C/P
    mkdir -p inv-p/inv-c
    rnd inv-p/inv-c/f 0 10 200
)
snap base base.1b
(
    cd "$B"
    mv inv-p/inv-c inv-c
    mv inv-p inv-c/inv-p
    # rename over an existing file (old target inode gets unlinked)
    mv inline-2000 block-plus-one
    # rename a dir, then create a new dir with the old name
    mv dir1 dir1-old
    mkdir dir1
    rnd dir1/in-new-dir1 0 10 201
    # delete a file, create a dir with the same name (and vice versa)
    rm new-file
    mkdir new-file
    rm -r newdir
    rnd newdir 0 20 202
    # rotate three names
    mv dir2/swap-a dir2/rot-tmp
    mv dir2/swap-b dir2/swap-a
    mv dir2/append-me dir2/swap-b
    mv dir2/rot-tmp dir2/append-me
    # move a dir to where a (now deleted) dir used to be
    mv dir3/sub emptydir
    # deep delete
    rm -r 'dir renamed'
)
snap base base.2
send incr-tricky.stream -p base.1b base.2

# ================================================================ 3. hardlinks
subvol hl
(
    cd "$M/hl"
    mkdir d1 d2 d3
    rnd orig 0 $((10 * KiB)) 300
    ln orig d1/l1
    ln orig d2/l2
    ln orig d2/l3
    ln orig l4
    rnd d3/pair-a 0 100 301
    ln d3/pair-a d3/pair-b
    rnd single 0 10 302
)
snap hl hl.0
send hardlinks.stream hl.0
(
    cd "$M/hl"
    ln d2/l2 d1/new-link            # add link
    rm orig                         # remove the first link
    mv d2/l3 d1/l3-moved            # rename a link across dirs
    rm d3/pair-b                    # drop to nlink 1
    ln single d3/single-link        # nlink 1 -> 2
    rnd orig 0 50 303               # reuse old link name for a new inode
    rnd d3/pair-a 5000 10 304       # modify data of a hardlinked file
)
snap hl hl.1
send hardlinks-incr.stream -p hl.0 hl.1

# ================================================================ 4. symlinks
subvol sl
(
    cd "$M/sl"
    mkdir -p dir/sub
    rnd target 0 100 400
    ln -s target rel-link
    ln -s ../target dir/rel-up-link
    ln -s /etc/passwd abs-link
    ln -s does/not/exist dangling
    ln -s "$(printf 'x%.0s' {1..200})/$(printf 'y%.0s' {1..200})/$(printf 'z%.0s' {1..1100})" long-link
    ln -s dir dir-link
    ln -s . self-dot
    ln -s loop-b loop-a
    ln -s loop-a loop-b
    ln -s 'target with space and café' odd-target
    chown -h 1000:1000 rel-link
)
snap sl sl.0
send symlinks.stream sl.0
(
    cd "$M/sl"
    rm rel-link && ln -s dir/sub rel-link    # change target
    mv dangling dir/sub/dangling-moved
    rm long-link
    ln -s new-target new-link
)
snap sl sl.1
send symlinks-incr.stream -p sl.0 sl.1

# ================================================================ 5. special files
subvol sp
(
    cd "$M/sp"
    mkdir d
    mkfifo fifo
    mkfifo -m 0600 d/fifo-0600
    h sock sock
    h sock d/sock2
    mknod null-c c 1 3
    mknod loop-b b 7 200
    mknod bigdev-c c 259 131072      # large minor (new_encode_dev)
    chmod 0660 loop-b
    chown 1000:1000 d/fifo-0600
)
snap sp sp.0
send special.stream sp.0

# ================================================================ 6. xattrs
subvol xa
(
    cd "$M/xa"
    rnd file 0 100 600
    h setx file user.empty ''
    h setx file user.binary 00010200ff00fe7f00
    h setxlen file user.long 3072 601
    h setx file user.change-me 6f6c64
    h setx file user.remove-me 676f6e65
    h setx file trusted.secret 73336372337400
    mkdir dir
    h setx dir user.on-dir 646972
    ln -s file link
    h setx link trusted.on-symlink 6c6e6b   # user.* not allowed on symlinks
    mkfifo fifo
    h setx fifo trusted.on-fifo 6666
    # many xattrs on one inode
    rnd many 0 10 602
    for i in $(seq 1 40); do h setx many "user.attr$i" "$(printf '%02x' $((0x40 + i)))"; done
    # security.capability (VFS_CAP_REVISION_2 | EFFECTIVE, cap_net_raw), root-owned;
    # receivers must re-apply it after chown (chown clears capabilities).
    rnd cap-file 0 100 603
    chmod 0755 cap-file
    h setx cap-file security.capability 0100000200200000000000000000000000000000
    # POSIX ACLs as raw xattrs (user::rw-, user:1000:r--, group::r--, mask::r--, other::---)
    rnd acl-file 0 10 604
    h setx acl-file system.posix_acl_access \
        0200000001000600ffffffff02000400e803000004000400ffffffff10000400ffffffff20000000ffffffff
    mkdir acl-dir
    h setx acl-dir system.posix_acl_default \
        0200000001000700ffffffff04000500ffffffff20000500ffffffff
    # an owned file with xattrs (chown must not drop user.*)
    rnd owned 0 10 605
    chown 1000:1000 owned
    h setx owned user.owned 6f
)
snap xa xa.0
send xattrs.stream xa.0
(
    cd "$M/xa"
    h rmx file user.remove-me
    h setx file user.change-me 6e65772076616c7565
    h setx file user.added 616464
    h rmx many user.attr7
    h setx many user.attr8 ffff
    h rmx acl-file system.posix_acl_access
    rnd owned 5 5 606
)
snap xa xa.1
send xattrs-incr.stream -p xa.0 xa.1

# ================================================================ 7. sparse
subvol sparse
(
    cd "$M/sparse"
    rnd hole-start $((MiB)) $((64 * KiB)) 700
    rnd hole-mid 0 $((64 * KiB)) 701
    rnd hole-mid $((MiB + 64 * KiB)) $((64 * KiB)) 702
    rnd hole-end 0 $((64 * KiB)) 703
    truncate -s $((2 * MiB)) hole-end
    truncate -s 1G big-sparse
    rnd big-sparse 0 4096 704
    rnd big-sparse $((100 * MiB)) 4096 705
    rnd big-sparse $((512 * MiB + 12345)) 1000 706
    rnd big-sparse $((1024 * MiB - 4096)) 4096 707
    truncate -s $((10 * MiB)) all-hole
    fallocate -l $((256 * KiB)) prealloc
    rnd prealloc $((64 * KiB)) 4096 708
    : >prealloc-beyond-eof
    fallocate -o 0 -l $((128 * KiB)) -n prealloc-beyond-eof
    rnd prealloc-beyond-eof 0 100 709
    rnd punch-me 0 $((256 * KiB)) 710
)
snap sparse sparse.0
send sparse.stream sparse.0
(
    cd "$M/sparse"
    fallocate -p -o $((64 * KiB)) -l $((64 * KiB)) punch-me   # punch a hole
    rnd hole-mid $((512 * KiB)) 4096 711                       # fill into a hole
    truncate -s 2G big-sparse                                  # extend
    truncate -s $((MiB / 2)) hole-start                        # shrink into the hole
    truncate -s 0 hole-end
)
snap sparse sparse.1
send sparse-incr.stream -p sparse.0 sparse.1

# ================================================================ 8. clone / reflink
subvol cl
(
    cd "$M/cl"
    rnd src 0 $((512 * KiB)) 800
    cp --reflink=always src whole-copy                 # whole-file reflink
    cp --reflink=always src copy-then-modify
    rnd copy-then-modify $((128 * KiB)) 4096 801       # ... partly overwritten
    h clone src $((128 * KiB)) $((128 * KiB)) partial 0          # partial reflinks
    h clone src 0 $((64 * KiB)) partial $((192 * KiB))
    rnd same-file 0 $((128 * KiB)) 802
    h clone same-file 0 $((64 * KiB)) same-file $((256 * KiB))   # clone within one file
    mkdir sub
    cp --reflink=always src sub/in-subdir
    rnd tail-unaligned 0 $((64 * KiB + 1000)) 803
    h clone tail-unaligned 0 $((64 * KiB + 1000)) tail-clone 0   # clone incl. EOF tail
)
snap cl cl.0
send clone.stream cl.0
(
    cd "$M/cl"
    h clone src $((256 * KiB)) $((128 * KiB)) new-partial 0
    cp --reflink=always whole-copy whole-copy-2
    rm whole-copy
    rnd src $((300 * KiB)) 4096 804
)
snap cl cl.1
send clone-incr.stream -p cl.0 cl.1
# A different subvolume reflinking from the cl.0 snapshot, sent with
# -c cluser.pre -c cl.0.  btrfs-progs refuses -c without a determinable parent
# ("parent determination failed"); it picks cluser.pre (a sibling snapshot of
# the same subvolume) as parent, while the clones refer to cl.0.
subvol cluser
rnd "$M/cluser/base-file" 0 $((8 * KiB)) 806
snap cluser cluser.pre
(
    cd "$M/cluser"
    cp --reflink=always "$M/snaps/cl.0/src" from-src
    h clone "$M/snaps/cl.0/partial" 0 $((64 * KiB)) pieces 0
    h clone "$M/snaps/cl.0/same-file" $((64 * KiB)) $((64 * KiB)) pieces $((64 * KiB))
    rnd own-data 0 $((32 * KiB)) 805
)
snap cluser cluser.0
send clone-src.stream -c cluser.pre -c cl.0 cluser.0

# ================================================================ 9. no-data
send nodata.stream --no-data base.0
send nodata-incr.stream --no-data -p base.0 base.1

# ================================================================ 11. multiple subvolumes
subvol multi
(
    cd "$M/multi"
    rnd a 0 $((20 * KiB)) 1100
    mkdir d
)
snap multi multi.0
(
    cd "$M/multi"
    rnd b 0 5000 1101
    mv a d/a
)
snap multi multi.1
(
    cd "$M/multi"
    rnd d/a 100 100 1102
    rm b
    mkdir e
)
snap multi multi.2
# No -p/-c: btrfs-progs sends every subvolume as a full stream.
send multi.stream multi.0 multi.1 multi.2
send multi-e.stream -e multi.0 multi.1 multi.2
# With a clone source progs picks parents itself: multi.1 -p multi.0, then
# multi.2 -p multi.1 (each sent subvolume becomes a clone source).
send multi-chain.stream -c multi.0 multi.1 multi.2
send multi-chain-e.stream -e -c multi.0 multi.1 multi.2

# ================================================================ 10. proto 2 / compressed
# proto2-plain: uncompressed fs, big writes (v2 allows larger WRITE payloads),
# plus inode flags (chattr +C / +A / +d via FS_IOC_SETFLAGS).
subvol p2
(
    cd "$M/p2"
    rnd big 0 $((3 * MiB / 2)) 1000
    txt text 0 $((100 * KiB)) 1001
    : >nocow
    h setflags nocow 0x00800000          # FS_NOCOW_FL (must be set while empty)
    rnd nocow 0 $((64 * KiB)) 1002
    rnd noatime 0 100 1003
    h setflags noatime 0x00000080        # FS_NOATIME_FL
    rnd nodump 0 100 1004
    h setflags nodump 0x00000040         # FS_NODUMP_FL
    truncate -s $((MiB)) sparse-tail
    rnd sparse-tail $((256 * KiB)) 4096 1005
)
snap p2 p2.0
send proto2-plain.stream --proto 2 p2.0

for alg in zlib zstd lzo; do
    mount -o remount,compress-force=$alg "$M"
    subvol "comp-$alg"
    (
        cd "$M/comp-$alg"
        txt text-300k 0 $((300 * KiB)) 1010
        txt small-inline 0 3000 1011                 # compressed inline extent
        rnd random-64k 0 $((64 * KiB)) 1012          # incompressible
        txt mixed 0 $((256 * KiB)) 1013
        rnd mixed $((128 * KiB)) 4096 1014
        truncate -s $((600 * KiB)) mixed             # hole after compressed data
        txt mixed $((512 * KiB)) $((20 * KiB)) 1015
        txt unaligned-tail 0 $((128 * KiB + 777)) 1016
    )
    sync
    snap "comp-$alg" "comp-$alg.0"
    send "compressed-$alg.stream" --proto 2 --compressed-data "comp-$alg.0"
done
# an incremental compressed stream (zstd): overwrite middle of a compressed extent
(
    cd "$M/comp-zstd"
    txt text-300k $((64 * KiB)) $((32 * KiB)) 1020
    txt appended 0 $((200 * KiB)) 1021
)
snap comp-zstd comp-zstd.1
send compressed-zstd-incr.stream --proto 2 --compressed-data -p comp-zstd.0 comp-zstd.1
mount -o remount,compress=no "$M"

# ================================================================ 12. v3
V3=no
if [ -r /sys/fs/btrfs/features/send_stream_version ] &&
    [ "$(cat /sys/fs/btrfs/features/send_stream_version)" -ge 3 ] 2>/dev/null; then
    subvol v3
    rnd "$M/v3/file" 0 $((100 * KiB)) 1200
    snap v3 v3.0
    rm -f "$OUTDIR/v3.stream"
    if "$BTRFS" -q send --proto 3 -f "$OUTDIR/v3.stream" "$M/snaps/v3.0"; then
        V3=yes
        STREAMS+=(v3.stream)
    else
        rm -f "$OUTDIR/v3.stream"
    fi
fi

# ================================================================ verify
declare -A EXPECT=(
    [full.stream]="subvol mkfile mkdir write truncate chown chmod utimes rename"
    [incr-basic.stream]="snapshot rename unlink rmdir write truncate mkfile mkdir chmod chown utimes"
    [incr-tricky.stream]="snapshot rename unlink rmdir mkdir mkfile write"
    [hardlinks.stream]="subvol link mkfile rename"
    [hardlinks-incr.stream]="snapshot link unlink rename mkfile write"
    [symlinks.stream]="subvol symlink"
    [symlinks-incr.stream]="snapshot symlink unlink rename"
    [special.stream]="subvol mkfifo mksock mknod"
    [xattrs.stream]="subvol set_xattr"
    [xattrs-incr.stream]="snapshot set_xattr remove_xattr"
    [sparse.stream]="subvol write truncate"
    [sparse-incr.stream]="snapshot write truncate"
    [clone.stream]="subvol clone write"
    [clone-incr.stream]="snapshot clone"
    [clone-src.stream]="snapshot clone"
    [nodata.stream]="subvol update_extent"
    [nodata-incr.stream]="snapshot update_extent"
    [multi.stream]="subvol"
    [multi-e.stream]="subvol"
    [multi-chain.stream]="snapshot"
    [multi-chain-e.stream]="snapshot"
    [proto2-plain.stream]="subvol write"
    [compressed-zlib.stream]="subvol encoded_write"
    [compressed-zstd.stream]="subvol encoded_write"
    [compressed-lzo.stream]="subvol encoded_write"
    [compressed-zstd-incr.stream]="snapshot encoded_write"
    [v3.stream]="subvol"
)

fail=0
total=0
echo
printf '%-30s %10s %7s  %s\n' STREAM BYTES LINES COMMANDS
for s in "${STREAMS[@]}"; do
    f=$OUTDIR/$s
    if ! TZ=UTC "$BTRFS" receive --dump -f "$f" >"$TMP/dump" 2>"$TMP/dump.err"; then
        echo "FAIL: receive --dump $s:" >&2
        cat "$TMP/dump.err" >&2
        fail=1
        continue
    fi
    size=$(stat -c %s "$f")
    total=$((total + size))
    lines=$(wc -l <"$TMP/dump")
    cmds=$(awk '{print $1}' "$TMP/dump" | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}')
    printf '%-30s %10d %7d  %s\n' "$s" "$size" "$lines" "$cmds"
    for c in ${EXPECT[$s]:-}; do
        if ! awk -v c="$c" '$1 == c {found=1} END {exit !found}' "$TMP/dump"; then
            echo "FAIL: $s does not contain command '$c'" >&2
            fail=1
        fi
    done
done
# Several subvolumes in one stream.  Note: btrfs-progs 6.2 'receive --dump'
# stops after the first END of a concatenated (non -e) stream, so only the
# -e variants are counted in the dump; the non -e ones are really received.
for s in multi-e.stream:3 multi-chain-e.stream:2; do
    want=${s#*:}
    s=${s%:*}
    n=$(TZ=UTC "$BTRFS" receive --dump -f "$OUTDIR/$s" | awk '$1 == "subvol" || $1 == "snapshot"' | wc -l)
    [ "$n" -eq "$want" ] || { echo "FAIL: $s has $n subvolumes, expected $want" >&2; fail=1; }
done
for s in multi.stream multi-chain.stream; do
    r=$M/recv-${s%.stream}
    mkdir "$r"
    if [ "$s" = multi-chain.stream ]; then
        # needs the clone source multi.0 on the receiving side
        "$BTRFS" -q receive -f "$OUTDIR/multi.stream" "$r" 2>"$TMP/recv.err" || true
        "$BTRFS" -q subvolume delete "$r/multi.1" "$r/multi.2" >/dev/null
    fi
    if ! "$BTRFS" -q receive -f "$OUTDIR/$s" "$r" 2>"$TMP/recv.err"; then
        echo "FAIL: receive $s:" >&2; cat "$TMP/recv.err" >&2; fail=1
    fi
    for sv in multi.1 multi.2; do
        [ -d "$r/$sv" ] || { echo "FAIL: receive $s did not create $sv" >&2; fail=1; }
    done
done
[ "$V3" = yes ] || echo "note: kernel send_stream_version < 3 (or v3 send failed): no v3.stream"
END=$(date +%s.%N)
printf 'total: %d streams, %d bytes, %.1f s\n' "${#STREAMS[@]}" "$total" "$(awk -v a="$START" -v b="$END" 'BEGIN{print b-a}')"
[ "$fail" -eq 0 ] || die "corpus verification failed"
