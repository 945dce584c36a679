# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# Shared helpers of the receive tests: loop btrfs filesystems, sending with
# the reference, receiving one stream with the reference and with ours, and
# comparing what both left behind.  Source it instead of lib.sh.
#
# The reference and ours receive into two different filesystems ($RMNT and
# $OMNT) laid out the same way.  One filesystem would not do: receive finds
# the parent of an incremental stream, and clone sources, by received uuid
# over the whole filesystem, so ours could pick the reference's copy (or
# the other way round) and hide a bug.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TREE_COMPARE="$TOP/tests/tree-compare.py"
RECV_SEQ=0
# Extra options of tree-compare.py for the next receive_both (--no-data...).
RECV_COMPARE_OPTS=()

have_loop_btrfs() {
	have_root_and_btrfs && command -v mkfs.btrfs && have_loop_tools
}

# make_fs NAME SIZE [MOUNT_OPTIONS]: a fresh btrfs on a sparse image,
# mounted (noatime: reading a tree must not move the atimes it compares)
# on $WORK/NAME.  Only what it attached and mounted is undone at exit.
make_fs() {
	make_loop_fs btrfs "$WORK/$1.img" "$2" "$WORK/$1" "noatime${3:+,$3}"
}

# drop_fs NAME: unmount $WORK/NAME (and every other mount of ours of the
# same device) and detach its loop device now.
drop_fs() {
	release_fs "$WORK/$1" || return 1
	rm -f "$WORK/$1.img"
	rmdir "$WORK/$1"
}

# new_dests: a fresh pair of destination filesystems,
# $RMNT for the reference and $OMNT for ours, replacing the previous pair.
# Parents and clone sources are looked up by received uuid over the whole
# filesystem, so a stream received twice on one filesystem makes the
# lookups of later incremental streams ambiguous: groups that reuse
# uuids get their own pair.
new_dests() {
	if [ -n "${RMNT:-}" ]; then
		drop_fs "$(basename "$RMNT")" && drop_fs "$(basename "$OMNT")" ||
			return 1
	fi
	RECV_PAIR=$((${RECV_PAIR:-0} + 1))
	make_fs "ref$RECV_PAIR" 3G && make_fs "ours$RECV_PAIR" 3G || return 1
	RMNT=$WORK/ref$RECV_PAIR
	OMNT=$WORK/ours$RECV_PAIR
	RROOT=$RMNT
	OROOT=$OMNT
	set_dest .
}

# set_dest DIR: receive into $RMNT/DIR and $OMNT/DIR from now on.
set_dest() {
	RDEST=$RMNT/$1
	ODEST=$OMNT/$1
	mkdir -p "$RDEST" "$ODEST"
}

# A small python helper for what coreutils cannot do: xattrs, sockets,
# reflinks of ranges, and the received-subvolume ioctl.
RECV_PY=$PYTHON
cat >"$WORK/recv-helper.py" <<'EOF'
import fcntl, hashlib, os, struct, sys, uuid

def main():
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "rand":
        # rand FILE OFFSET LEN SEED: deterministic bytes, pwrite
        data = hashlib.shake_256(b"recv-%s" % a[3].encode()).digest(int(a[2]))
        fd = os.open(a[0], os.O_WRONLY | os.O_CREAT, 0o644)
        os.pwrite(fd, data, int(a[1]))
        os.close(fd)
    elif cmd == "setx":
        # setx PATH NAME HEXVALUE
        os.setxattr(a[0], a[1], bytes.fromhex(a[2]), follow_symlinks=False)
    elif cmd == "state":
        # state DIR [SKIP...]: one line per entry below DIR (SKIP subtrees
        # left out, SKIP's parents without times): what a stray write
        # would change
        root, skip = a[0], set(a[1:])
        parents = {os.path.dirname(x) for x in skip}
        for dirpath, dirs, files in os.walk(root):
            for n in sorted(dirs + files):
                p = os.path.join(dirpath, n)
                rel = os.path.relpath(p, root)
                if rel in skip:
                    dirs[:] = [d for d in dirs if d != n]
                    continue
                st = os.lstat(p)
                line = [rel, oct(st.st_mode), st.st_uid, st.st_gid]
                if rel not in parents:
                    line += [st.st_size, st.st_mtime_ns]
                if os.path.islink(p):
                    line.append(os.readlink(p))
                elif os.path.isfile(p):
                    line.append(hashlib.md5(open(p, "rb").read()).hexdigest())
                for x in sorted(os.listxattr(p, follow_symlinks=False)):
                    line.append((x, os.getxattr(p, x, follow_symlinks=False)))
                print(*line)
    elif cmd == "getx":
        # getx PATH NAME: print the value in hex
        print(os.getxattr(a[0], a[1], follow_symlinks=False).hex())
    elif cmd == "rmx":
        os.removexattr(a[0], a[1], follow_symlinks=False)
    elif cmd == "sock":
        import socket
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(a[0])
        s.close()
    elif cmd == "clone":
        # clone SRC SRCOFF LEN DST DSTOFF: FICLONERANGE
        src = os.open(a[0], os.O_RDONLY)
        dst = os.open(a[3], os.O_WRONLY | os.O_CREAT, 0o644)
        fcntl.ioctl(dst, 0x4020940d, struct.pack("=qQQQ", src, int(a[1]),
                    int(a[2]), int(a[4])))
        os.close(src)
        os.close(dst)
    elif cmd == "set-received":
        # set-received SUBVOL UUID STRANSID: BTRFS_IOC_SET_RECEIVED_SUBVOL
        args = bytearray(200)
        args[0:16] = uuid.UUID(a[1]).bytes
        struct.pack_into("<Q", args, 16, int(a[2]))
        fd = os.open(a[0], os.O_RDONLY | os.O_DIRECTORY)
        fcntl.ioctl(fd, 0xc0c89425, args)
        os.close(fd)
    else:
        sys.exit("recv-helper: unknown command " + cmd)

main()
EOF
rh() {
	"$RECV_PY" -I -S "$WORK/recv-helper.py" "$@"
}

# send_ref OUT [send args]: a stream made by the reference.
send_ref() {
	local out=$1
	shift
	if ! "$REF" send -q -f "$out" "$@" 2>"$out.err"; then
		fail "reference send $* failed: $(head -3 "$out.err")"
		return 1
	fi
}

# subvol_props PATH: what receive records on a subvolume, in a form that
# can be compared across filesystems: received uuid, send transid, the
# read-only flag, and the parent as a path from the top level of the same
# filesystem (uuids of local subvolumes differ between filesystems).
subvol_props() {
	local show uuid p
	show=$("$REF" subvolume show "$1" 2>&1) || {
		echo "not a subvolume: $(echo "$show" | head -1)"
		return 0
	}
	echo "$show" | sed -n -e 's/^\tReceived UUID: *\t*/received_uuid=/p' \
		-e 's/^\tSend transid: *\t*/send_transid=/p' \
		-e 's/^\tFlags: *\t*/flags=/p'
	uuid=$(echo "$show" | sed -n 's/^\tParent UUID: *\t*//p')
	if [ "$uuid" = "-" ] || [ -z "$uuid" ]; then
		echo "parent=-"
	elif p=$("$REF" subvolume show -u "$uuid" "$1" 2>/dev/null | head -1) &&
		[ -n "$p" ]; then
		echo "parent=$p"
	else
		echo "parent=unresolved"
	fi
}

# compare_trees WHAT A B [tree-compare options]
compare_trees() {
	local what=$1 a=$2 b=$3 out
	shift 3
	RECV_SEQ=$((RECV_SEQ + 1))
	out=$WORK/compare.$RECV_SEQ
	# Shared extents are reported from committed backrefs.
	sync -f "$a" && sync -f "$b"
	if "$PYTHON" "$TREE_COMPARE" "$@" "$a" "$b" >"$out" 2>&1; then
		pass "$what: trees equal"
	else
		fail "$what: trees differ (A=reference, B=ours):"
		head -20 "$out" | sed 's/^/    /' >&2
	fi
}

compare_props() {
	local what=$1 a b
	a=$(subvol_props "$2")
	b=$(subvol_props "$3")
	if [ "$a" = "$b" ]; then
		pass "$what: subvolume properties equal"
	else
		fail "$what: subvolume properties differ:"
		diff <(echo "$a") <(echo "$b") | sed 's/^/    /' >&2
	fi
}

# run_receive BIN ROOT OUTBASE DEST STREAM [receive args]: receive,
# keeping stdout, stderr and the exit status in OUTBASE.{out,err,rc}.
# @ROOT@ in the arguments becomes ROOT (for -m).
run_receive() {
	local bin=$1 root=$2 base=$3 dest=$4 stream=$5 a args=()
	shift 5
	for a in "$@"; do
		args+=("${a//@ROOT@/$root}")
	done
	# A receive that hangs is killed (exit 124) rather than the test.
	timeout -k 10 "${RECV_TIMEOUT:-120}" \
		"$bin" receive ${args[@]+"${args[@]}"} -f "$stream" "$dest" \
		>"$base.out" 2>"$base.err" </dev/null
	echo $? >"$base.rc"
}

# ref_received WHAT N: the reference's last receive reported N subvolumes
# (checks that a case is what it is meant to be).
ref_received() {
	check "$1: the reference receives $2 subvolume(s)" \
		[ "$(received_names "$RECV_LAST.ref" | wc -l)" -eq "$2" ]
}

# The subvolumes a receive reported, one per line.
received_names() {
	sed -n 's/^At \(subvol\|snapshot\) //p' "$1.out" "$1.err"
}

show_output() {
	echo "    $1: exit $(cat "$2.rc")" >&2
	sed 's/^/    stdout: /' "$2.out" | head -5 >&2
	sed 's/^/    stderr: /' "$2.err" | head -5 >&2
}

# compare_messages WHAT REFBASE OURSBASE: same exit status, same stdout,
# the same At subvol/At snapshot lines on stderr, and an ERROR: line from
# ours whenever the reference printed one.
compare_messages() {
	local what=$1 r=$2 o=$3 ok=1
	if [ "$(cat "$r.rc")" != "$(cat "$o.rc")" ]; then
		fail "$what: exit $(cat "$o.rc"), the reference exits $(cat "$r.rc")"
		ok=
	fi
	if ! cmp -s "$r.out" "$o.out"; then
		fail "$what: stdout differs from the reference's"
		diff "$r.out" "$o.out" | head -6 | sed 's/^/    /' >&2
		ok=
	fi
	if ! cmp -s <(grep '^At ' "$r.err") <(grep '^At ' "$o.err"); then
		fail "$what: 'At ...' lines on stderr differ from the reference's"
		diff <(grep '^At ' "$r.err") <(grep '^At ' "$o.err") | head -6 |
			sed 's/^/    /' >&2
		ok=
	fi
	if grep -q '^ERROR: ' "$r.err" && ! grep -q '^ERROR: ' "$o.err"; then
		fail "$what: no ERROR: line on stderr (the reference: $(grep -m1 '^ERROR: ' "$r.err"))"
		ok=
	fi
	if [ -n "$ok" ]; then
		pass "$what: exit status and messages"
	else
		show_output reference "$r"
		show_output ours "$o"
	fi
}

# ls_dest DIR: ls -A without resume records.
ls_dest() {
	ls -A "$1" | grep -v '^\..*\.btrfs-receive-resume$'
}

# receive_both WHAT STREAM [receive args]: receive STREAM with the reference
# into $RDEST and with ours into $ODEST, then compare the messages, the
# contents of both destinations, and every received subvolume (tree and
# properties).  The reference must succeed unless RECV_EXPECT_RC says
# otherwise.
receive_both() {
	local what=$1 stream=$2 base name rrc
	shift 2
	RECV_SEQ=$((RECV_SEQ + 1))
	base=$WORK/recv.$RECV_SEQ
	run_receive "$REF" "$RROOT" "$base.ref" "$RDEST" "$stream" "$@"
	run_receive "$OURS" "$OROOT" "$base.ours" "$ODEST" "$stream" "$@"
	rrc=$(cat "$base.ref.rc")
	if [ "$rrc" != "${RECV_EXPECT_RC:-0}" ]; then
		fail "$what: the reference exits $rrc (harness or setup problem):"
		show_output reference "$base.ref"
	fi
	compare_messages "$what" "$base.ref" "$base.ours"
	# Ours leaves a resume record beside a partial subvolume.
	if ! cmp -s <(ls -A "$RDEST") <(ls_dest "$ODEST"); then
		fail "$what: destination contents differ:"
		diff <(ls -A "$RDEST") <(ls_dest "$ODEST") | sed 's/^/    /' >&2
	fi
	# After a failure, what was not yet done has wall-clock times.
	local opts=(${RECV_COMPARE_OPTS[@]+"${RECV_COMPARE_OPTS[@]}"})
	[ "$rrc" = 0 ] || opts+=(--no-times)
	while IFS= read -r name; do
		[ -d "$RDEST/$name" ] || continue
		if [ ! -d "$ODEST/$name" ]; then
			fail "$what: ours did not create $name"
			continue
		fi
		compare_trees "$what: $name" "$RDEST/$name" "$ODEST/$name" \
			${opts[@]+"${opts[@]}"}
		compare_props "$what: $name" "$RDEST/$name" "$ODEST/$name"
	done < <(received_names "$base.ref")
	RECV_LAST=$base
}
