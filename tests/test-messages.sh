#!/bin/bash
# Messages where btrfs-progs 6.2 has one: ours must print the same words on
# the same channel and exit with the same status.  A snapshot whose name
# exists (on btrfs and with --to-dir), a send whose reader goes away (with
# SIGPIPE at its default and ignored), a send whose output file fills up,
# and a receive onto a directory that is not on btrfs (btrfs-progs' line,
# then our one HINT line naming --to-dir).
. "$(dirname "$0")/recv-lib.sh"

require "Debian's btrfs-progs ($REF)" have_reference
require "root with btrfs and loop devices" have_loop_btrfs
require "env --default-signal (coreutils 8.31)" env --default-signal=PIPE true

ST=$WORK/streams
mkdir -p "$ST"

make_fs src 1G && make_fs ref 1G && make_fs ours 1G ||
	{ fail "cannot make the filesystems"; finish; }
SRC=$WORK/src
"$REF" -q subvolume create "$SRC/sv" >/dev/null &&
	rh rand "$SRC/sv/a" 0 4096 a &&
	rh rand "$SRC/sv/big" 0 $((4 * 1024 * 1024)) big &&
	"$REF" -q subvolume snapshot -r "$SRC/sv" "$SRC/s0" >/dev/null &&
	rh rand "$SRC/sv/b" 0 4096 b &&
	"$REF" -q subvolume snapshot -r "$SRC/sv" "$SRC/s1" >/dev/null &&
	"$REF" send -q -f "$ST/s0" "$SRC/s0" &&
	"$REF" send -q -f "$ST/s1" -p "$SRC/s0" "$SRC/s1" ||
	{ fail "cannot make the streams"; finish; }

# run NAME TOOL ARGS...: stdout, stderr and status in $WORK/NAME.*
run() {
	local base=$WORK/$1
	shift
	"$@" >"$base.out" 2>"$base.err" </dev/null
	echo $? >"$base.rc"
}

# same WHAT A B: A's and B's stdout, stderr and status are identical.
same() {
	local what=$1 a=$WORK/$2 b=$WORK/$3 x
	for x in rc out err; do
		if cmp -s "$a.$x" "$b.$x"; then
			pass "$what: same $x"
		else
			fail "$what: $x differs"
			diff "$a.$x" "$b.$x" | sed 's/^/    /' | head -6 >&2
		fi
	done
}

# ------------------------------------------------ a snapshot that exists
for tool in ref ours; do
	bin=$REF
	[ $tool = ours ] && bin=$OURS
	"$bin" receive -q -f "$ST/s0" "$WORK/$tool" &&
		"$bin" receive -q -f "$ST/s1" "$WORK/$tool" ||
		fail "$tool: first receive of s0 and s1"
	run "exists-$tool" "$bin" receive -f "$ST/s1" "$WORK/$tool"
done
check "snapshot exists: btrfs-progs says creating snapshot" \
	grep -qx "ERROR: creating snapshot s0 -> s1 failed: File exists" \
	"$WORK/exists-ref.err"
same "snapshot exists" exists-ref exists-ours

# The same with --to-dir: the parent is the directory s0.
mkdir -p "$WORK/plain"
mount_tmpfs "$WORK/plain" size=64M ||
	fail "cannot mount a tmpfs"
"$OURS" receive -q -f "$ST/s0" --to-dir "$WORK/plain" &&
	"$OURS" receive -q -f "$ST/s1" --to-dir "$WORK/plain" ||
	fail "--to-dir: first receive of s0 and s1"
run exists-dir "$OURS" receive -f "$ST/s1" --to-dir "$WORK/plain"
check "--to-dir snapshot exists: exit 1" [ "$(cat "$WORK/exists-dir.rc")" = 1 ]
check "--to-dir snapshot exists: btrfs-progs' snapshot line" \
	cmp -s "$WORK/exists-ref.err" "$WORK/exists-dir.err"

# A snapshot whose copy fails says snapshot too.
mkdir -p "$WORK/plain/full"
"$OURS" receive -q -f "$ST/s0" --to-dir "$WORK/plain/full" ||
	fail "--to-dir: receive of s0 into full"
rh rand "$WORK/plain/filler" 0 $((62 * 1024 * 1024)) filler 2>/dev/null
run copy-fails "$OURS" receive -f "$ST/s1" --to-dir "$WORK/plain/full"
rm -f "$WORK/plain/filler"
check "--to-dir snapshot copy fails: exit 1" \
	[ "$(cat "$WORK/copy-fails.rc")" = 1 ]
check "--to-dir snapshot copy fails: says creating snapshot" \
	grep -q "^ERROR: creating snapshot s0 -> s1 failed: No space left on device" \
	"$WORK/copy-fails.err"

# ---------------------------------------------- send into a broken pipe
# The reader takes 100 bytes and goes: killed by SIGPIPE (status 141 in
# bash) at the default, an ERROR and the errno as status when ignored.
broken_send() {
	local name=$1 sig=$2 bin=$3
	env "--$sig-signal=PIPE" "$bin" send "$SRC/s1" 2>"$WORK/$name.err" |
		head -c 100 >/dev/null
	echo "${PIPESTATUS[0]}" >"$WORK/$name.rc"
	: >"$WORK/$name.out"
}
for sig in default ignore; do
	broken_send "pipe-$sig-ref" $sig "$REF"
	broken_send "pipe-$sig-ours" $sig "$OURS"
	same "send into a broken pipe, SIGPIPE $sig" "pipe-$sig-ref" "pipe-$sig-ours"
done
check "SIGPIPE default: btrfs-progs is killed by it" \
	[ "$(cat "$WORK/pipe-default-ref.rc")" = 141 ]

# An output file that fills up: the errno as status, as btrfs-progs.
mkdir -p "$WORK/tiny"
mount_tmpfs "$WORK/tiny" size=1M ||
	fail "cannot mount a small tmpfs"
run full-ref "$REF" send -q -f "$WORK/tiny/s" "$SRC/s0"
rm -f "$WORK/tiny/s"
run full-ours "$OURS" send -q -f "$WORK/tiny/s" "$SRC/s0"
same "send into a full file" full-ref full-ours

# ---------------------------------------------- receive onto non-btrfs
mkdir -p "$WORK/plain/x"
cd "$WORK/plain" || fail "cd"
run notbtrfs-ref "$REF" receive -f "$ST/s0" x
run notbtrfs-ours "$OURS" receive -f "$ST/s0" x
cd / || true
check "not on btrfs: same status" \
	cmp -s "$WORK/notbtrfs-ref.rc" "$WORK/notbtrfs-ours.rc"
check "not on btrfs: btrfs-progs' line first" \
	[ "$(head -1 "$WORK/notbtrfs-ours.err")" = "$(cat "$WORK/notbtrfs-ref.err")" ]
check "not on btrfs: then one HINT naming --to-dir" \
	[ "$(sed 1d "$WORK/notbtrfs-ours.err" | grep -c '^HINT: .*--to-dir x')" = 1 ]
check "not on btrfs: two lines" \
	[ "$(wc -l <"$WORK/notbtrfs-ours.err")" = 2 ]
check "not on btrfs: one ERROR" \
	[ "$(grep -c '^ERROR' "$WORK/notbtrfs-ours.err")" = 1 ]
check "not on btrfs: nothing created" [ -z "$(ls -A "$WORK/plain/x")" ]

finish
