#!/bin/bash
# Receive failures: each exits 1 with an ERROR: line on stderr, leaves what
# btrfs-progs leaves (a writable subvolume without received uuid) and, for
# streams whose paths try to leave the subvolume, nothing outside it.  The
# reference's messages are shown with TEST_VERBOSE=1; RECV_STRICT_ERRORS=1
# also fails when ours words an ERROR line differently.
. "$(dirname "$0")/recv-lib.sh"

require "Debian's btrfs-progs ($REF)" have_reference
require "root with btrfs and loop devices" have_loop_btrfs

CORPUS=$TOP/tests/streams
MKSTREAM=$TOP/tests/mkstream.py

# First ERROR: lines of the reference and of ours, side by side.
report_errors() {
	local what=$1 base=$2 r o
	r=$(grep -m2 '^ERROR: ' "$base.ref.err" | paste -sd'|')
	o=$(grep -m2 '^ERROR: ' "$base.ours.err" | paste -sd'|')
	if [ -n "${TEST_VERBOSE:-}" ]; then
		echo "   reference: $r"
		echo "   ours:      $o"
	fi
	if [ -n "${RECV_STRICT_ERRORS:-}" ] && [ "$r" != "$o" ]; then
		fail "$what: ERROR lines differ: reference '$r', ours '$o'"
	fi
}

# expect_failure WHAT STREAM [receive args]: both fail with exit 1 and an
# ERROR: line, the same messages otherwise, and equal partial trees.
expect_failure() {
	local what=$1
	RECV_EXPECT_RC=1 receive_both "$@"
	check "$what: ours exits 1" [ "$(cat "$RECV_LAST.ours.rc")" = 1 ]
	check "$what: ours prints ERROR:" grep -q '^ERROR: ' "$RECV_LAST.ours.err"
	report_errors "$what" "$RECV_LAST"
}

# is_garbled SUBVOL: what a failed receive leaves: writable, no received
# uuid.
is_garbled() {
	local p
	p=$(subvol_props "$1")
	echo "$p" | grep -qx 'received_uuid=-' && echo "$p" | grep -qx 'flags=-' &&
		touch "$1/.writable" && rm "$1/.writable"
}

new_dests || { fail "cannot make the destinations"; finish; }

# ------------------------------------------------------------ parents
set_dest no-parent
expect_failure "missing parent" "$CORPUS/incr-basic.stream"
check "missing parent: reference says so" \
	grep -q '^ERROR: cannot find parent subvolume' "$RECV_LAST.ref.err"
check "missing parent: nothing created" [ -z "$(ls -A "$ODEST")" ]

"$PYTHON" "$MKSTREAM" >"$WORK/clone-missing.stream" <<'SPEC'
header 1
subvol path=s:cm uuid=uuid:11111111111111111111111111111111 ctransid=u64:5
mkfile path=s:f ino=u64:257
clone path=s:f file_offset=u64:0 clone_len=u64:4096 clone_uuid=uuid:deadbeefdeadbeefdeadbeefdeadbeef clone_ctransid=u64:3 clone_path=s:x clone_offset=u64:0
end
SPEC
set_dest clone-missing
expect_failure "missing clone source" "$WORK/clone-missing.stream"

# ------------------------------------------------------------ destination
set_dest exists
receive_both "first receive" "$CORPUS/special.stream"
expect_failure "destination subvolume exists" "$CORPUS/special.stream"
check "existing subvolume is left as it was" \
	[ "$(subvol_props "$ODEST/sp.0" | grep -c 'flags=readonly\|received_uuid=bc67ebb6')" = 2 ]

# fail_both WHAT DEST_SUFFIX STREAM: the destination itself is wrong;
# both receive into DEST_SUFFIX below their own filesystem (or $WORK).
fail_both() {
	local what=$1 rdest=$2 odest=$3 stream=$4 base
	RECV_SEQ=$((RECV_SEQ + 1))
	base=$WORK/misc.$RECV_SEQ
	run_receive "$REF" "$RROOT" "$base.ref" "$rdest" "$stream"
	run_receive "$OURS" "$OROOT" "$base.ours" "$odest" "$stream"
	check "$what: ours exits 1" [ "$(cat "$base.ours.rc")" = 1 ]
	check "$what: ours prints ERROR:" grep -q '^ERROR: ' "$base.ours.err"
	report_errors "$what" "$base"
}
fail_both "missing destination dir" "$RMNT/no-such-dir" "$OMNT/no-such-dir" \
	"$CORPUS/special.stream"
fail_both "empty stream" "$RMNT" "$OMNT" /dev/null
# $WORK is not on btrfs (it holds the images).
if [ "$(stat -f -c %T "$WORK")" != btrfs ]; then
	mkdir "$WORK/plain-ref" "$WORK/plain-ours"
	fail_both "destination not on btrfs" "$WORK/plain-ref" \
		"$WORK/plain-ours" "$CORPUS/special.stream"
	check "destination not on btrfs: nothing created" \
		[ -z "$(ls -A "$WORK/plain-ours")" ]
fi

# ------------------------------------------------------------ corruption
# Copies of full.stream: a byte flipped in the payload of a command two
# thirds in (crc mismatch), a command length made huge, cut inside a
# command, cut at a command boundary (no END).
"$PYTHON" - "$CORPUS/full.stream" "$WORK" <<'PY'
import struct, sys
d = bytearray(open(sys.argv[1], "rb").read())
pos, spans = 17, []
while pos < len(d):
    ln, = struct.unpack_from("<I", d, pos)
    spans.append((pos, ln))
    pos += 10 + ln
p, ln = spans[2 * len(spans) // 3]
flip = bytearray(d)
flip[p + 10 + ln // 2] ^= 0x55
open(sys.argv[2] + "/flip.stream", "wb").write(flip)
big = bytearray(d)
struct.pack_into("<I", big, p, 0x7fffffff)
open(sys.argv[2] + "/biglen.stream", "wb").write(big)
open(sys.argv[2] + "/cut-mid.stream", "wb").write(d[:p + 10 + ln // 2])
open(sys.argv[2] + "/cut-boundary.stream", "wb").write(d[:p])
PY
for c in flip biglen cut-mid cut-boundary; do
	set_dest "corrupt-$c"
	expect_failure "corrupt stream ($c)" "$WORK/$c.stream"
	check "corrupt stream ($c): ours leaves base.0 writable, no received uuid" \
		is_garbled "$ODEST/base.0"
	check "corrupt stream ($c): so does the reference" \
		is_garbled "$RDEST/base.0"
done
check "crc mismatch: the reference says so" \
	grep -q '^ERROR: crc32 mismatch in command' "$WORK"/recv.*.ref.err

# ------------------------------------------------------------ -E
# An unlink and an rmdir of missing names between mkfiles: -E N stops at
# the Nth error, -E 0 never; either way the exit status is 1 and the
# subvolume is not finished (no received uuid, writable).
"$PYTHON" "$MKSTREAM" "$TOP/tests/specs/recv-max-errors.spec" \
	>"$WORK/max-errors.stream"
for e in default 1 2 3 0; do
	set_dest "max-errors-$e"
	args=()
	[ $e = default ] || args=(-E "$e")
	expect_failure "-E $e" "$WORK/max-errors.stream" ${args[@]+"${args[@]}"}
	want="a"
	case $e in
	2) want="a b" ;;
	3 | 0) want="a b c" ;;
	esac
	check "-E $e: ours applied exactly: $want" \
		[ "$(ls "$ODEST/e" 2>/dev/null | paste -sd' ')" = "$want" ]
	check "-E $e: the reference applied exactly: $want" \
		[ "$(ls "$RDEST/e" 2>/dev/null | paste -sd' ')" = "$want" ]
	check "-E $e: not finished" is_garbled "$ODEST/e"
	# Not resumable: the record reserved at its start goes.
	check "-E $e: no resume record" [ ! -e "$ODEST/.e.btrfs-receive-resume" ]
done

# ------------------------------------------------------------ taken names
# A new subvolume's top directory: the names ours knows are free there
# need no lookup; every name taken must still fail its mkfile or mkdir
# (btrfs-progs 6.2 opens a taken name for a mkfile, see
# btrfs-receive(8)), and every freed name be made again.
"$PYTHON" "$MKSTREAM" "$TOP/tests/specs/recv-top-names.spec" \
	>"$WORK/top-names.stream"
set_dest top-names
expect_failure "taken names in the top directory" "$WORK/top-names.stream" -E 0
check "taken names: ours failed exactly the taken ones" \
	[ "$(sed -n 's/^ERROR: \(mk[a-z]* [^ ]*\) failed: File exists$/\1/p' \
		"$RECV_LAST.ours.err" | paste -sd,)" = \
	  "mkfile o257-5-0,mkfile o259-5-0,mkdir fifo,mkfile b,mkfile a,mkfile moved,mkdir o268-5-0,mkfile c" ]
check "taken names: the reference failed the mkdirs" \
	[ "$(grep -c '^ERROR: mkdir .* failed: File exists$' "$RECV_LAST.ref.err")" = 2 ]
check "taken names: ours made the freed ones again" \
	test -f "$ODEST/top/b" -a -f "$ODEST/top/d" -a -d "$ODEST/top/o268-5-0"

# ------------------------------------------------------------ escapes
# Streams whose paths leave the subvolume: '..', absolute paths, and
# symlinks the stream made itself.  Ours must refuse with an ERROR naming
# the path and leave everything outside the subvolume as it was: a canary
# directory beside the destination, the destination itself.  The
# reference runs them too, on its own throwaway filesystem, where every
# escape lands in its own canary: it is only recorded, it is known to
# follow them.
SUB="subvol path=s:esc uuid=uuid:e5c0000000000000000000000000000e ctransid=u64:1"

# state AREA: everything in AREA except the received subvolume.
state() {
	rh state "$1" dest/esc
}

escape_run() {
	local bin=$1 root=$2 area=$3 base=$4 body=$5 opt=${6:-}
	mkdir -p "$area/dest" "$area/canary/dir"
	echo canary >"$area/canary/file"
	printf '%s\n' "header 1" "${body//@CANARY@/$area/canary}" "end" |
		"$PYTHON" "$MKSTREAM" >"$base.stream" || return 1
	state "$area" >"$base.before"
	# shellcheck disable=SC2086
	run_receive "$bin" "$root" "$base" "$area/dest" "$base.stream" $opt
	state "$area" >"$base.after"
	return 0
}

# escape NAME PATTERN RECEIVE_OPTION SPEC_LINES: PATTERN, a fixed string
# (@CANARY@ for the canary's absolute path), must be a whole word of ours'
# ERROR line.  Without an option, each case runs once more with -C:
# confinement must not depend on the chroot.
escape() {
	escape_once "$@"
	[ -n "$3" ] || escape_once "$1-chroot" "$2" -C "$4"
}

escape_once() {
	local name=$1 pat=$2 opt=$3 body=$4 base=$WORK/esc-$1 what
	what="escape $name"
	pat=${pat//@CANARY@/$OMNT/esc/$name/canary}
	escape_run "$OURS" "$OMNT" "$OMNT/esc/$name" "$base.ours" "$body" "$opt" || {
		fail "$what: mkstream failed"
		return
	}
	escape_run "$REF" "$RMNT" "$RMNT/esc/$name" "$base.ref" "$body" "$opt"
	check "$what: ours exits 1" [ "$(cat "$base.ours.rc")" = 1 ]
	if grep '^ERROR: ' "$base.ours.err" | grep -qwF -- "$pat"; then
		pass "$what: ours' ERROR names $pat"
	else
		fail "$what: no ERROR naming '$pat': $(head -2 "$base.ours.err" | paste -sd'|')"
	fi
	if cmp -s "$base.ours.before" "$base.ours.after"; then
		pass "$what: nothing changed outside the subvolume"
	else
		fail "$what: ours changed things outside the subvolume:"
		diff "$base.ours.before" "$base.ours.after" | sed 's/^/    /' | head >&2
	fi
	if [ -n "${TEST_VERBOSE:-}" ]; then
		echo "   reference: exit $(cat "$base.ref.rc"): $(grep -m2 '^ERROR: ' "$base.ref.err" | paste -sd'|')$(cmp -s "$base.ref.before" "$base.ref.after" || echo ' (it escaped)')"
		echo "   ours:      exit $(cat "$base.ours.rc"): $(grep -m2 '^ERROR: ' "$base.ours.err" | paste -sd'|')"
	fi
}

escape mkfile-dotdot ../escape "" "$SUB
mkfile path=s:../escape ino=u64:257"
escape mkdir-dotdot ../../canary/evil "" "$SUB
mkdir path=s:../../canary/evil ino=u64:257"
escape mkfile-inner-dotdot a/../../escape "" "$SUB
mkdir path=s:a ino=u64:257
mkfile path=s:a/../../escape ino=u64:258"
escape mkfile-absolute "@CANARY@" "" "$SUB
mkfile path=s:@CANARY@/evil ino=u64:257"
escape rename-dotdot ../../canary/x "" "$SUB
mkfile path=s:f ino=u64:257
rename path=s:f path_to=s:../../canary/x"
escape rename-absolute @CANARY@/x "" "$SUB
mkfile path=s:f ino=u64:257
rename path=s:f path_to=s:@CANARY@/x"
escape rename-from-outside ../../canary/file "" "$SUB
rename path=s:../../canary/file path_to=s:stolen"
escape symlink-absolute-then-mkfile l/evil "" "$SUB
symlink path=s:l path_link=s:@CANARY@ ino=u64:257
mkfile path=s:l/evil ino=u64:258"
escape symlink-relative-then-mkdir l/evil "" "$SUB
symlink path=s:l path_link=s:../../canary ino=u64:257
mkdir path=s:l/evil ino=u64:258"
escape symlink-in-dir-then-write d/l/file "" "$SUB
mkdir path=s:d ino=u64:257
symlink path=s:d/l path_link=s:@CANARY@ ino=u64:258
write path=s:d/l/file file_offset=u64:0 data=s:pwned"
escape symlink-write-final l "" "$SUB
symlink path=s:l path_link=s:@CANARY@/file ino=u64:257
write path=s:l file_offset=u64:0 data=s:pwned"
escape symlink-truncate-final l "" "$SUB
symlink path=s:l path_link=s:../../canary/file ino=u64:257
truncate path=s:l size=u64:0"
escape symlink-chmod-final l "" "$SUB
symlink path=s:l path_link=s:@CANARY@/file ino=u64:257
chmod path=s:l mode=u64:0o777"
escape unlink-dotdot ../../canary/file "" "$SUB
unlink path=s:../../canary/file"
escape rmdir-dotdot ../../canary/dir "" "$SUB
rmdir path=s:../../canary/dir"
escape truncate-dotdot ../../canary/file "" "$SUB
truncate path=s:../../canary/file size=u64:0"
escape chmod-dotdot ../../canary "" "$SUB
chmod path=s:../../canary mode=u64:0o777"
escape chown-dotdot ../../canary/file "" "$SUB
chown path=s:../../canary/file uid=u64:1 gid=u64:1"
escape utimes-dotdot ../../canary "" "$SUB
utimes path=s:../../canary atime=ts:1.0 mtime=ts:1.0 ctime=ts:1.0"
escape set-xattr-dotdot ../../canary/file "" "$SUB
set_xattr path=s:../../canary/file xattr_name=s:user.evil xattr_data=s:x"
escape link-from-outside ../../canary/file "" "$SUB
link path=s:stolen path_link=s:../../canary/file"
escape clone-from-outside ../../canary/file "" "$SUB
mkfile path=s:f ino=u64:257
clone path=s:f file_offset=u64:0 clone_len=u64:7 clone_uuid=uuid:e5c0000000000000000000000000000e clone_ctransid=u64:1 clone_path=s:../../canary/file clone_offset=u64:0"
escape mknod-dotdot ../../canary/fifo "" "$SUB
mkfifo path=s:../../canary/fifo ino=u64:257"
escape subvol-dotdot ../escape "" "subvol path=s:../escape uuid=uuid:e5c0000000000000000000000000000e ctransid=u64:1"
escape subvol-absolute "@CANARY@" "" "subvol path=s:@CANARY@/sub uuid=uuid:e5c0000000000000000000000000000e ctransid=u64:1"
escape chroot-symlink l/evil -C "$SUB
symlink path=s:l path_link=s:../../canary ino=u64:257
mkfile path=s:l/evil ino=u64:258"

finish
