#!/bin/bash
# btrfs send against the reference, on loop filesystems made here: the
# same stream, byte for byte, for every combination of options; the same
# messages and exit codes for each refusal; write errors (EPIPE, ENOSPC)
# that end the send without a hang, as btrfs-progs: by SIGPIPE, or with one
# ERROR line and the errno as status.
. "$(dirname "$0")/lib.sh"

have_tools() {
	local t
	for t in mkfs.btrfs losetup mount umount mountpoint truncate script \
		timeout cp; do
		command -v "$t" || return 1
	done
}

require "Debian's btrfs-progs ($REF)" have_reference
require "root with btrfs and loop devices" have_root_and_btrfs
require "mkfs.btrfs, losetup, script, timeout" have_tools
require "python3" "$PYTHON" -c 'import os; os.setxattr'

die() {
	fail "$*"
	exit 1
}

# mkbtrfs IMAGE MOUNTPOINT SIZE
mkbtrfs() {
	make_loop_fs btrfs "$1" "$3" "$2" defaults || die "cannot make $2"
}

M=$WORK/mnt
M2=$WORK/mnt2
SNAPS=$M/snaps
mkbtrfs "$WORK/fs.img" "$M" 1G
mkbtrfs "$WORK/fs2.img" "$M2" 256M
mkdir "$SNAPS"

subvol() { "$REF" -q subvolume create "$1" >/dev/null; }
snap() { sync; "$REF" -q subvolume snapshot -r "$1" "$SNAPS/$2" >/dev/null; }
# Repeatable contents: lines of text (compressible) or seeded noise.
text() { # FILE SIZE SEED
	yes "line of seed $3: the quick brown fox jumps over the lazy dog" |
		head -c "$2" >"$1"
}
noise() { # FILE SIZE SEED
	"$PYTHON" -c 'import hashlib, sys
sys.stdout.buffer.write(hashlib.shake_256(sys.argv[2].encode()).digest(int(sys.argv[1])))' \
		"$2" "$3" >"$1"
}

# ---------------------------------------------------------------- dataset
D=$M/data
subvol "$D"
(
	set -e
	cd "$D"
	mkdir -p dir/sub/deeper 'with space' empty
	: >empty-file
	text text 70000 1
	noise dir/noise 200000 2
	noise dir/sub/deeper/leaf 5000 3
	text 'with space/f g' 100 4
	ln text dir/hardlink
	ln text 'with space/hardlink 2'
	ln -s text rel-link
	ln -s /etc/passwd abs-link
	ln -s does/not/exist dangling
	truncate -s 8M sparse
	noise part 4096 5
	dd if=part of=sparse bs=4096 seek=300 conv=notrunc status=none
	dd if=part of=sparse bs=4096 seek=1500 conv=notrunc status=none
	cp --reflink=always dir/noise reflink-whole
	cp --reflink=always dir/noise dir/sub/reflink-2
	mkfifo fifo
	chmod 0600 dir/noise
	chown 1000:1000 'with space'
	touch -h -d '2001-02-03 04:05:06 UTC' text
) || die "cannot build the dataset"
"$PYTHON" - "$D" <<'EOF' || die "cannot set xattrs"
import os, sys
d = sys.argv[1]
os.setxattr(d + "/text", "user.plain", b"value")
os.setxattr(d + "/text", "user.binary", b"\x00\x01\xff")
os.setxattr(d + "/dir", "user.on-dir", b"dir")
os.setxattr(d + "/abs-link", "trusted.on-link", b"lnk", follow_symlinks=False)
for i in range(20):
    os.setxattr(d + "/empty-file", "user.a%d" % i, b"x" * i)
EOF
snap "$D" data.0
(
	set -e
	cd "$D"
	mv dir/sub moved-sub
	rm dir/hardlink
	text new-file 30000 6
	noise dir/noise 4096 7
	cat dir/noise >>text
	truncate -s 4M sparse
	ln -sf dir rel-link
) || die "cannot change the dataset"
snap "$D" data.1
(
	set -e
	cd "$D"
	rm -r 'with space'
	cp --reflink=always new-file new-file-copy
	mkdir new-dir
	noise new-dir/f 10000 8
) || die "cannot change the dataset again"
snap "$D" data.2
# Unchanged in between: the same ctransid, a tie for the automatic parent.
snap "$D" data.2b
# A snapshot of a snapshot: its origin is data.1, not data.
"$REF" -q subvolume snapshot -r "$SNAPS/data.1" "$SNAPS/data.1b" >/dev/null
# A writable snapshot and a plain directory for the refusals.
"$REF" -q subvolume snapshot "$D" "$SNAPS/rw" >/dev/null

# Another subvolume that shares data with data.0 by reflinks: sent with
# data.0 as a clone source, other.pre as the parent (same origin).
O=$M/other
subvol "$O"
text "$O/own" 9000 9
snap "$O" other.pre
cp --reflink=always "$SNAPS/data.0/dir/noise" "$O/from-data"
cp --reflink=always "$SNAPS/data.0/reflink-whole" "$O/from-data-2"
snap "$O" other.0

# Compressed extents, one subvolume per algorithm; remounting switches the
# algorithm for the writes that follow.
for alg in zlib zstd lzo; do
	mount -o remount,compress=$alg "$M" || die "remount compress=$alg"
	subvol "$M/comp-$alg"
	text "$M/comp-$alg/text" 400000 10
	text "$M/comp-$alg/small" 3000 11
	noise "$M/comp-$alg/noise" 70000 12
	snap "$M/comp-$alg" "comp-$alg.0"
	text "$M/comp-$alg/more" 200000 13
	dd if=/dev/zero of="$M/comp-$alg/text" bs=4096 seek=20 count=8 \
		conv=notrunc status=none
	snap "$M/comp-$alg" "comp-$alg.1"
done
mount -o remount,compress=no "$M" || die "remount compress=no"

# Large enough that a reader which stops early leaves the kernel waiting.
subvol "$M/big"
head -c 24M /dev/urandom >"$M/big/f"
snap "$M/big" big.0

subvol "$M2/x"
text "$M2/x/f" 1000 14
"$REF" -q subvolume snapshot -r "$M2/x" "$M2/x.0" >/dev/null

SUPPORTED=$(cat /sys/fs/btrfs/features/send_stream_version 2>/dev/null || echo 1)

# ---------------------------------------------------------------- streams
# same_send NAME ARGS...: "btrfs ARGS -f FILE" run in $SNAPS by both tools
# (getopt takes -f after the subvolumes too); the streams, stderr and exit
# codes must be equal.
same_send() {
	local name=$1 rc_ref rc_ours
	shift
	rm -f "$WORK/ref.stream" "$WORK/our.stream"
	(cd "$SNAPS" && "$REF" "$@" -f "$WORK/ref.stream") 2>"$WORK/ref.err"
	rc_ref=$?
	(cd "$SNAPS" && "$OURS" "$@" -f "$WORK/our.stream") 2>"$WORK/our.err"
	rc_ours=$?
	if [ "$rc_ref" -ne 0 ]; then
		fail "$name: the reference failed ($rc_ref): $(head -3 "$WORK/ref.err")"
	elif [ "$rc_ours" -ne 0 ]; then
		fail "$name: exit $rc_ours: $(head -3 "$WORK/our.err")"
	elif ! cmp -s "$WORK/ref.stream" "$WORK/our.stream"; then
		fail "$name: streams differ ($(cmp "$WORK/ref.stream" "$WORK/our.stream" 2>&1 | head -1))"
	elif ! cmp -s "$WORK/ref.err" "$WORK/our.err"; then
		fail "$name: stderr differs: $(diff "$WORK/ref.err" "$WORK/our.err" | head -5 | tr '\n' ' ')"
	else
		pass "$name"
	fi
}

# dump_has STREAM COMMAND...: the reference's dump holds each command, so
# that a test means what it says.
dump_has() {
	local f=$1 c
	shift
	"$REF" receive --dump -f "$f" >"$WORK/dump" 2>/dev/null || return 1
	for c in "$@"; do
		awk -v c="$c" '$1 == c { found = 1 } END { exit !found }' \
			"$WORK/dump" || return 1
	done
}

same_send "full" send data.0
check "full stream has links, xattrs, writes" dump_has "$WORK/ref.stream" \
	subvol mkfile mkdir link symlink set_xattr write mkfifo
same_send "full, path with ./ and trailing /" send ./data.0/
same_send "full, absolute path" send "$SNAPS/data.1"
same_send "incremental -p" send -p data.0 data.1
check "incremental stream is a snapshot" dump_has "$WORK/ref.stream" \
	snapshot rename unlink
same_send "incremental -p, second step" send -p data.1 data.2
same_send "-p and -c" send -p data.0 -c other.0 data.2
same_send "-c picks the origin's closest snapshot" send -c data.0 -c data.2 data.1
same_send "-c picks it whatever the order" send -c data.2 -c data.0 data.1
same_send "-c picks the first of a tie" send -c data.2 -c data.2b data.1
same_send "-c picks the first of a tie, reversed" send -c data.2b -c data.2 data.1
same_send "-c picks the origin itself" send -c data.0 -c data.1 data.1b
same_send "-c from another subvolume, parent a sibling" \
	send -c data.0 -c other.pre other.0
check "clone-source stream clones" dump_has "$WORK/ref.stream" snapshot clone
same_send "reflinks inside one subvolume" send -c data.0 data.2
same_send "several subvolumes" send data.0 data.1 data.2
same_send "several subvolumes, -e" send -e data.0 data.1 data.2
same_send "several, -c chains parents" send -c data.0 data.1 data.2
same_send "several, -e -c" send -e -c data.0 data.1 data.2
same_send "several, -p" send -p data.0 data.1 data.2
same_send "several, -e -p" send -e -p data.0 data.1 data.2
same_send "one subvolume with -e" send -e data.0
same_send "--no-data" send --no-data data.0
check "no-data stream has update_extent" dump_has "$WORK/ref.stream" update_extent
same_send "--no-data -p" send --no-data -p data.0 data.1
same_send "--proto 1" send --proto 1 data.1
same_send "--proto 0" send --proto 0 data.1
same_send "--proto 0 -p" send --proto 0 -p data.0 data.1
if [ "$SUPPORTED" -ge 2 ]; then
	same_send "--proto 2" send --proto 2 data.0
	same_send "--proto 2 -c" send --proto 2 -c data.0 data.1 data.2
	for alg in zlib zstd lzo; do
		same_send "--compressed-data ($alg)" send --compressed-data comp-$alg.0
		check "$alg stream has encoded writes" dump_has "$WORK/ref.stream" encoded_write
		same_send "--proto 0 --compressed-data ($alg)" \
			send --proto 0 --compressed-data comp-$alg.0
		same_send "--compressed-data -p ($alg)" \
			send --proto 2 --compressed-data -p comp-$alg.0 comp-$alg.1
		same_send "compressed extents without the flag ($alg)" \
			send -p comp-$alg.0 comp-$alg.1
	done
	same_send "--compressed-data -e several" \
		send -e --compressed-data comp-zlib.0 comp-zstd.0 comp-lzo.0
	same_send "--compressed-data --no-data" \
		send --compressed-data --no-data comp-zstd.0
else
	fail "the kernel offers send protocol $SUPPORTED only: no v2 checks"
fi

# Messages: At subvol, verbose lines, quiet.
same_send "-q" send -q data.0
same_send "global -q" -q send data.0
same_send "-v" send -v data.0
same_send "global -v, --no-data, -c" -v send --no-data -c data.0 data.1 data.2
same_send "-vvv" -vvv send -p data.0 data.1
same_send "global -q, then -v" -q send -v data.0
(cd "$SNAPS" && "$OURS" send -q data.0 -f "$WORK/our.stream") 2>"$WORK/our.err"
check "-q prints nothing" [ ! -s "$WORK/our.err" ]
check "At subvol names the path as given" \
	grep -qx 'At subvol ./data.0/' <(cd "$SNAPS" && "$OURS" send ./data.0/ 2>&1 >/dev/null)

# -i is -c's alias here (btrfs-progs 6.2 refuses it).
(cd "$SNAPS" && "$REF" -q send -c data.0 data.1 -f "$WORK/ref.stream")
(cd "$SNAPS" && "$OURS" -q send -i data.0 data.1 -f "$WORK/our.stream")
check "-i works as -c" cmp -s "$WORK/ref.stream" "$WORK/our.stream"

# ---------------------------------------------------------------- outputs
cd "$SNAPS" || die "cd $SNAPS"
"$REF" -q send -p data.0 data.1 >"$WORK/ref.stream"
"$OURS" send -p data.0 data.1 >"$WORK/our.stream" 2>"$WORK/our.err"
check "stdout: same stream" cmp -s "$WORK/ref.stream" "$WORK/our.stream"
check "stdout: At subvol on stderr" grep -qx 'At subvol data.1' "$WORK/our.err"
"$OURS" -q send -p data.0 data.1 | cat >"$WORK/our.stream"
check "pipe: same stream" cmp -s "$WORK/ref.stream" "$WORK/our.stream"
: >"$WORK/our.stream"
"$OURS" -q send -p data.0 data.1 >>"$WORK/our.stream"
check "O_APPEND stdout (no splice): same stream" \
	cmp -s "$WORK/ref.stream" "$WORK/our.stream"
"$OURS" -q send -p data.0 data.1 -f /dev/null
check "-f /dev/null succeeds" [ $? -eq 0 ]

rm -f "$WORK/new.stream"
(umask 022; "$OURS" -q send -f "$WORK/new.stream" data.0)
check "-f creates the file with mode 0600" \
	[ "$(stat -c %a "$WORK/new.stream")" = 600 ]
echo old >"$WORK/old.ref"
echo old-and-longer-than-nothing >"$WORK/old.ours"
chmod 0644 "$WORK/old.ref" "$WORK/old.ours"
"$REF" -q send -f "$WORK/old.ref" data.0
"$OURS" -q send -f "$WORK/old.ours" data.0
check "-f truncates an existing file and keeps its mode" \
	[ "$(stat -c %a "$WORK/old.ours")" = 644 ]
check "-f over an existing file: same stream" \
	cmp -s "$WORK/old.ref" "$WORK/old.ours"

mkdir "$M/recv"
"$REF" -q receive -f "$WORK/new.stream" "$M/recv"
check "the reference receives our full stream" [ -d "$M/recv/data.0/dir" ]
"$OURS" -q send -p data.0 data.1 -f "$WORK/incr.stream"
check "the reference receives our incremental stream" \
	"$REF" -q receive -f "$WORK/incr.stream" "$M/recv"
check "received incremental has the new file" [ -f "$M/recv/data.1/new-file" ]

# ---------------------------------------------------------------- refusals
# same_refusal NAME ARGS...: "btrfs ARGS" in $SNAPS with stdout to a file,
# @OUT@ standing for an output file; exit code, stderr and what became of
# the output file must match the reference's.  btrfs-progs prints an empty
# line after some errors: empty lines are not compared.
same_refusal() {
	local name=$1 rc_ref rc_ours out=$WORK/refusal.out a ref_file our_file
	local args=()
	shift
	for a in "$@"; do
		args+=("${a//@OUT@/$out}")
	done
	rm -f "$out"
	"$REF" "${args[@]}" >"$WORK/ref.stdout" 2>"$WORK/ref.err"
	rc_ref=$?
	ref_file=$( [ -e "$out" ] && stat -c '%s %a' "$out" || echo none)
	rm -f "$out"
	"$OURS" "${args[@]}" >"$WORK/our.stdout" 2>"$WORK/our.err"
	rc_ours=$?
	our_file=$( [ -e "$out" ] && stat -c '%s %a' "$out" || echo none)
	sed -i '/^$/d' "$WORK/ref.err"
	if [ "$rc_ours" -ne "$rc_ref" ] || [ "$rc_ours" -ne 1 ]; then
		fail "$name: exit $rc_ours, the reference $rc_ref"
	elif ! cmp -s "$WORK/ref.err" "$WORK/our.err"; then
		fail "$name: stderr differs: $(diff "$WORK/ref.err" "$WORK/our.err" | tr '\n' ' ')"
	elif [ "$ref_file" != "$our_file" ]; then
		fail "$name: output file $our_file, the reference's $ref_file"
	elif [ -s "$WORK/our.stdout" ]; then
		fail "$name: wrote to stdout"
	else
		pass "$name"
	fi
}

same_refusal "not read-only" send -f @OUT@ rw
same_refusal "not read-only among several" send -f @OUT@ data.0 rw
same_refusal "parent not read-only" send -f @OUT@ -p rw data.1
same_refusal "clone source not read-only" send -f @OUT@ -c data.0 -c rw data.1
same_refusal "not a subvolume (directory)" send -f @OUT@ "$D/dir"
same_refusal "not a subvolume (file)" send -f @OUT@ "$D/text"
same_refusal "parent not a subvolume" send -f @OUT@ -p "$D/dir" data.1
same_refusal "does not exist" send -f @OUT@ nonexistent
same_refusal "second does not exist" send -f @OUT@ data.0 nonexistent
same_refusal "parent does not exist" send -f @OUT@ -p nonexistent data.1
same_refusal "clone source does not exist" send -f @OUT@ -c nonexistent data.1
same_refusal "not on btrfs" send -f @OUT@ /proc
same_refusal "second not on btrfs" send -f @OUT@ data.0 /proc
same_refusal "clone source not on btrfs" send -f @OUT@ -c /proc data.1
same_refusal "different filesystems" send -f @OUT@ data.0 "$M2/x.0"
same_refusal "different filesystems, other first" send -f @OUT@ "$M2/x.0" data.0
same_refusal "parent on another filesystem" send -f @OUT@ -p "$M2/x.0" data.1
same_refusal "two parents" send -f @OUT@ -p data.0 -p data.1 data.2
same_refusal "no parent among the clone sources" send -f @OUT@ -c data.0 other.0
same_refusal "origin not among the clone sources" send -f @OUT@ -c data.0 data.1b
same_refusal "--compressed-data with --proto 1" \
	send -f @OUT@ --proto 1 --compressed-data data.0
# The kernel refuses a version it lacks; btrfs-progs' reader thread then
# races the main one and sometimes adds an error of its own (exit 9): only
# the first two lines are compared.
"$REF" send -f "$WORK/x.stream" --proto $((SUPPORTED + 1)) data.0 2>&1 |
	head -2 >"$WORK/ref.err"
"$OURS" send -f "$WORK/x.stream" --proto $((SUPPORTED + 1)) data.0 2>"$WORK/our.err"
check "--proto the kernel lacks: exit 1" [ $? -eq 1 ]
check "--proto the kernel lacks: same messages" cmp -s "$WORK/ref.err" "$WORK/our.err"
same_refusal "--proto far too big" send -f @OUT@ --proto 99999999999 data.0
same_refusal "--proto not a number" send -f @OUT@ --proto 2x data.0
same_refusal "--proto negative" send -f @OUT@ --proto -1 data.0
same_refusal "--proto overflow" send -f @OUT@ --proto 18446744073709551615 data.0
same_refusal "no subvolume" send -f @OUT@
same_refusal "no arguments" send
same_refusal "-f into a missing directory" send -f "$WORK/no/such/dir" data.0
same_refusal "quiet refusal still says why" -q send -f @OUT@ rw

# Writing to a terminal: under script(1), stdout is a pty.
tty_run() {
	script -qec "$1 send $2; echo rc=\$?" /dev/null 2>&1 | tr -d '\r'
}
check "terminal: same refusal" \
	[ "$(tty_run "$REF" data.0)" = "$(tty_run "$OURS" data.0)" ]
check "terminal: refused with exit 1" \
	grep -q '^rc=1$' <(tty_run "$OURS" data.0)
check "terminal: also with -f /dev/tty" \
	[ "$(tty_run "$REF" "-f /dev/tty data.0")" = "$(tty_run "$OURS" "-f /dev/tty data.0")" ]

# Where we differ on purpose: a clone source on another filesystem is
# refused (btrfs-progs 6.2 looks its root id up on the wrong one).
"$OURS" send -f "$WORK/x.stream" -c "$M2/x.0" data.1 2>"$WORK/our.err"
check "clone source on another filesystem refused" [ $? -eq 1 ]
check "... with one ERROR line" \
	[ "$(cat "$WORK/our.err")" = "ERROR: all subvolumes must be from the same filesystem" ]
"$OURS" send -x data.0 2>"$WORK/our.err"
check "unknown option: exit 1" [ $? -eq 1 ]
check "unknown option: named" grep -q "invalid option '-x'" "$WORK/our.err"

# ---------------------------------------------------------------- write errors
# The reader of stdout goes away: EPIPE ends the send, no SIGPIPE death.
# SIGPIPE ignored: an ERROR and EPIPE (32) as status; at its default, the
# signal ends send (141 in bash) without a message.  The send must end
# of itself once its reader is gone: it is given 120 s, which no machine
# needs, and timeout's 124 says that it did not end.
timeout 120 env --ignore-signal=PIPE "$OURS" send big.0 2>"$WORK/epipe.err" |
	head -c 100 >/dev/null
rc=${PIPESTATUS[0]}
check "broken pipe: exit 32 (got $rc)" [ "$rc" -eq 32 ]
check "broken pipe: no hang, the send ended of itself" [ "$rc" -ne 124 ]
check "broken pipe: one ERROR line" \
	[ "$(grep -c '^ERROR: ' "$WORK/epipe.err")" -eq 1 ]
check "broken pipe: says so" \
	grep -qx 'ERROR: failed to read stream from kernel: Broken pipe' "$WORK/epipe.err"
timeout 120 env --default-signal=PIPE "$OURS" send big.0 2>"$WORK/sigpipe.err" |
	head -c 100 >/dev/null
rc=${PIPESTATUS[0]}
check "broken pipe, SIGPIPE default: killed by it (got $rc)" [ "$rc" -eq 141 ]
check "broken pipe, SIGPIPE default: no ERROR" \
	[ "$(grep -c '^ERROR: ' "$WORK/sigpipe.err")" -eq 0 ]

# The output file's filesystem fills up.
mkdir -p "$WORK/tiny"
if mount_tmpfs "$WORK/tiny" size=1M; then
	timeout 20 "$OURS" send -q -f "$WORK/tiny/out" big.0 2>"$WORK/enospc.err"
	rc=$?
	check "ENOSPC: exit 28 (got $rc)" [ "$rc" -eq 28 ]
	check "ENOSPC: one line, an ERROR" \
		[ "$(wc -l <"$WORK/enospc.err")" -eq 1 ]
	check "ENOSPC: says so" grep -q '^ERROR: .*No space left on device' "$WORK/enospc.err"
	umount "$WORK/tiny"
else
	fail "cannot mount a tmpfs for the ENOSPC check"
fi
if [ -w /dev/full ]; then
	timeout 20 "$OURS" send -q big.0 >/dev/full 2>"$WORK/full.err"
	check "/dev/full: exit 28" [ $? -eq 28 ]
	check "/dev/full: one ERROR line" [ "$(wc -l <"$WORK/full.err")" -eq 1 ]
fi

# A pipe between send and receive holds 1 MiB, grown by either side: the
# size of the pipe at fd ARG, on stderr, once it is 1 MiB or after 20 s.
pipe_size='import fcntl, sys, time
fd, end = int(sys.argv[1]), time.monotonic() + 20
while fcntl.fcntl(fd, 1032) < 1 << 20 and time.monotonic() < end:
    time.sleep(0.05)
print(fcntl.fcntl(fd, 1032), file=sys.stderr)'
n=$("$OURS" send -q big.0 2>/dev/null |
	{ head -c 1 >/dev/null; "$PYTHON" -c "$pipe_size" 0 2>&1; })
check "send grows the pipe it writes to ($n bytes)" [ "$n" = 1048576 ]
n=$({ "$PYTHON" -c "$pipe_size" 1 2>&3 |
	"$OURS" receive --dump >/dev/null 2>&1; } 3>&1)
check "receive grows the pipe it reads ($n bytes)" [ "$n" = 1048576 ]
cd / || true
finish
