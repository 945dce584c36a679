#!/bin/bash
# send --changes and receive --changes against the truth that
# tests/changes-truth.py derives from the two snapshots themselves.  For
# each case, a small tree, P its read-only snapshot, one change, S the
# next snapshot; then: send --changes -p P S (text and JSON: exactly the
# truth), and receive --changes of the reference's --no-data stream
# through a pipe and of our own stream (with data, protocol 2 for every
# other case) from a file, text and JSON (the truth's -, + and R lines,
# every truth M, an extra M only with 'times').  Once each: --file-type,
# -v, a relative snapshot path, and receive --changes as nobody.  Then
# random change sets over a bigger tree; CHANGES_SEED=N repeats a run,
# CHANGES_RANDOM=N sets how many (default 20).
. "$(dirname "$0")/recv-lib.sh"

TRUTH="$TOP/tests/changes-truth.py"

require "python3" "$PYTHON" -c 'import os; os.setxattr'
# The truth is proved first, without btrfs: every rule of it and of the
# comparison on small trees in memory.
if ! "$PYTHON" "$TRUTH" --self-test; then
	fail "changes-truth.py --self-test"
	finish
fi
pass "changes-truth.py --self-test"

require "Debian's btrfs-progs ($REF)" have_reference
require "root with btrfs and loop devices" have_loop_btrfs
require "setpriv (util-linux)" command -v setpriv
require "user nobody (65534)" getent passwd 65534

NOBODY=65534
as_nobody() { setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups "$@"; }
SEED=${CHANGES_SEED:-$(($(date +%s) % 100000))}
RANDOM_CASES=${CHANGES_RANDOM:-20}
echo "$TEST_NAME: random seed $SEED (CHANGES_SEED=$SEED repeats this run)"

# nobody must reach one stream file and the binary.
chmod 755 "$WORK"
make_fs src 1G || { fail "cannot make the source filesystem"; finish; }
SRC=$WORK/src
NCASE=0

# ------------------------------------------------------------ the trees

# The base tree of the named cases, made in the current directory: a few
# directories and files, two pairs of hard links, a symlink, an xattr.
base_tree() {
	mkdir -p a/sub b c &&
		printf 'one\n' >a/f1 &&
		printf 'two two\n' >a/f2 &&
		printf 'three\n' >a/sub/g &&
		printf 'four\n' >b/h &&
		printf 'five\n' >c/k &&
		printf 'top\n' >top &&
		ln a/f1 b/f1-link &&
		ln c/k c/k2 &&
		ln -s a/f1 sym &&
		rh setx a/f2 user.color 626c7565 &&
		chmod 640 b/h
}

# random.py base|change SEED: a random tree of about 50 entries, or 5 to
# 30 random changes of one, in the current directory; each change is
# printed.
cat >"$WORK/random.py" <<'PY'
import os, random, stat, sys

what, rng = sys.argv[1], random.Random(int(sys.argv[2]))
serial = [1000 if what == "change" else 0]


def name():
    serial[0] += 1
    n = serial[0]
    return rng.choice([b"f%d" % n] * 6 + [b"sp %d" % n, b"t\t%d" % n,
                      b"nl\n%d" % n, b"x\xff%d" % n, b"b\\s%d" % n,
                      b"\xc3\xa9%d" % n])


def walk():
    """(directories, other entries) of the tree, by path."""
    dirs, others, stack = [b"."], [], [b"."]
    while stack:
        d = stack.pop()
        for n in sorted(os.listdir(d)):
            p = d + b"/" + n
            if stat.S_ISDIR(os.lstat(p).st_mode):
                dirs.append(p)
                stack.append(p)
            else:
                others.append(p)
    return dirs, others


def files(others):
    return [p for p in others if stat.S_ISREG(os.lstat(p).st_mode)]


def data():
    n = rng.choice([0, 1, 7, 100, 1000, 5000])
    return rng.choice([bytes(n), rng.randbytes(n)] + [b"abc" * n] * 2)


def create(d):
    p = d + b"/" + name()
    with open(p, "wb") as f:
        f.write(data())
    return p


def base():
    dirs = [b"."]
    for i in range(8):
        p = rng.choice(dirs) + b"/" + name()
        os.mkdir(p)
        dirs.append(p)
    for i in range(34):
        create(rng.choice(dirs))
    fs = files(walk()[1])
    for i in range(4):
        os.link(rng.choice(fs), rng.choice(dirs) + b"/" + name())
    for i in range(2):
        os.symlink(rng.choice(fs)[2:], rng.choice(dirs) + b"/" + name())
    for p in rng.sample(fs, 3):
        os.setxattr(p, b"user.base", rng.randbytes(4))


def under(p, d):
    return d == p or d.startswith(p + b"/")


def change():
    dirs, others = walk()
    fs = files(others)
    op = rng.choice(["create", "delete", "rename", "move", "link", "unlink",
                     "mkdir", "rmdir", "write", "append", "truncate",
                     "chmod", "chown", "setfattr", "touch", "symlink"])
    entries = dirs[1:] + others
    plain = [x for x in entries if not os.path.islink(x)]
    if op == "create":
        return op, create(rng.choice(dirs))
    if op == "delete" and others:
        p = rng.choice(others)
        os.unlink(p)
        return op, p
    if op in ("rename", "move") and entries:
        p = rng.choice(entries)
        d = os.path.dirname(p)
        if op == "move":
            d = rng.choice([x for x in dirs if not under(p, x)])
        # Now and then onto an existing file, which goes.
        targets = [x for x in fs if os.path.dirname(x) == d and x != p]
        if p in others and targets and rng.random() < 0.3:
            to = rng.choice(targets)
        else:
            to = d + b"/" + name()
        os.rename(p, to)
        return op, p, to
    if op == "link" and fs:
        p, to = rng.choice(fs), rng.choice(dirs) + b"/" + name()
        os.link(p, to)
        return op, p, to
    if op == "unlink":
        linked = [p for p in fs if os.lstat(p).st_nlink > 1]
        if linked:
            p = rng.choice(linked)
            os.unlink(p)
            return op, p
    if op == "mkdir":
        p = rng.choice(dirs) + b"/" + name()
        os.mkdir(p)
        return op, p
    if op == "rmdir":
        empty = [d for d in dirs[1:] if not os.listdir(d)]
        if empty:
            p = rng.choice(empty)
            os.rmdir(p)
            return op, p
    if op in ("write", "append", "truncate") and fs:
        p = rng.choice(fs)
        size = os.lstat(p).st_size
        if op == "truncate":
            n = rng.randrange(2 * size + 10)
            os.truncate(p, n)
            return op, p, n
        fd = os.open(p, os.O_WRONLY)
        at = size if op == "append" else rng.randrange(size + 100)
        n = os.pwrite(fd, data() or b"z", at)
        os.close(fd)
        return op, p, at, n
    if op == "chmod" and plain:
        p = rng.choice(plain)
        m = rng.choice([0o700, 0o750, 0o755] if p in dirs else
                       [0o600, 0o640, 0o644, 0o755, 0o4755])
        os.chmod(p, m)
        return op, p, oct(m)
    if op == "chown" and entries:
        p, u, g = rng.choice(entries), rng.choice([0, 1000, 1001]), \
            rng.choice([0, 1000, 1002])
        os.lchown(p, u, g)
        return op, p, u, g
    if op == "setfattr" and plain:
        p = rng.choice(plain)
        os.setxattr(p, rng.choice([b"user.base", b"user.new"]),
                    rng.randbytes(rng.randrange(1, 9)))
        return op, p
    if op == "touch" and entries:
        p = rng.choice(entries)
        t = rng.randrange(10 ** 18, 2 * 10 ** 18)
        os.utime(p, ns=(t, t), follow_symlinks=False)
        return op, p, t
    if op == "symlink":
        p = rng.choice(dirs) + b"/" + name()
        os.symlink(rng.choice(others or [b"nowhere"])[2:], p)
        return op, p
    return None


if what == "base":
    base()
else:
    done = 0
    want = rng.randint(5, 30)
    while done < want:
        c = change()
        if c:
            print(*[repr(x) for x in c])
            done += 1
PY

# odd_names: a rename to, and new names with, every byte the text
# output escapes, and a space, which it does not.
odd_names() {
	"$PYTHON" - <<'PY'
import os
os.rename(b"top", b"top\t\xff x")
for n in (b"with space", b"tab\there", b"new\nline", b"latin\xe9\xff",
          b"\xc3\xa9t\xc3\xa9", b"back\\slash", b"ctl\x01\x1b\x7f"):
    with open(b"a/" + n, "wb") as f:
        f.write(n)
os.mkdir(b"b/dir\nwith\tall \xfe")
open(b"b/dir\nwith\tall \xfe/in", "wb").close()
PY
}

# same_bytes: only the extents of a/f2 change: cp writes the same bytes
# again, touch -r puts the mtime back.
same_bytes() {
	cp -p --reflink=never a/f2 "$OUT/same" &&
		cp --reflink=never "$OUT/same" a/f2 &&
		touch -r "$OUT/same" a/f2
}

# ------------------------------------------------------------ the checks

# run NAME CMD...: CMD's stdout in $OUT/NAME, its stderr in $OUT/NAME.err;
# it must exit 0 and, but with -v, print nothing on stderr.
run() {
	local name=$1 rc
	shift
	"$@" >"$OUT/$name" 2>"$OUT/$name.err" </dev/null
	rc=$?
	[ "$rc" -eq 0 ] || head -5 "$OUT/$name.err" | sed 's/^/    /' >&2
	check "$CASE: $name exits 0 (exit $rc)" [ "$rc" -eq 0 ]
	check "$CASE: $name prints nothing on stderr" [ ! -s "$OUT/$name.err" ]
}

# pipe FORMAT_ARGS... -- RECEIVE_ARGS...: the reference's --no-data stream
# of P to S, through a pipe, into receive --changes; both must exit 0.
pipe() {
	local fmt=() st
	while [ "$1" != -- ]; do
		fmt+=("$1")
		shift
	done
	shift
	"$REF" send -q --no-data -p "$P" "$S" |
		"$OURS" ${fmt[@]+"${fmt[@]}"} receive --changes "$@"
	st=("${PIPESTATUS[@]}")
	[ "${st[0]}" -eq 0 ] && [ "${st[1]}" -eq 0 ]
}

# agrees WHAT OUTPUT [compare options]: OUTPUT is the truth of P to S.
agrees() {
	local what=$1 output=$2
	shift 2
	check "$CASE: $what agrees with the truth" \
		"$PYTHON" "$TRUTH" compare "$@" "$P" "$S" "$OUT/$output"
}

# check_case: every output of the tool for P and S against the truth.
check_case() {
	local proto=()
	[ $((NCASE % 2)) -eq 0 ] && proto=(--proto 2)
	PREFIX=$(realpath "$S")
	"$PYTHON" "$TRUTH" expect "$P" "$S" >"$OUT/expect"
	"$PYTHON" "$TRUTH" expect --format json "$P" "$S" >"$OUT/expect.json"

	run snap.txt "$OURS" send --changes -p "$P" "$S"
	agrees "send --changes" snap.txt --mode snap --prefix "$PREFIX"
	run snap.json "$OURS" --format json send --changes -p "$P" "$S"
	agrees "send --changes, JSON" snap.json --mode snap --format json \
		--prefix "$PREFIX"

	run pipe.json pipe --format json --
	agrees "receive --changes of a pipe, JSON" pipe.json --mode stream \
		--format json
	run pipe.txt pipe --
	agrees "receive --changes of a pipe" pipe.txt --mode stream \
		--whats "$OUT/pipe.json"

	run send "$OURS" send -q ${proto[@]+"${proto[@]}"} -p "$P" "$S" \
		-f "$OUT/stream"
	run file.json "$OURS" --format json receive --changes -f "$OUT/stream"
	agrees "receive --changes -f ${proto[*]:-(v1)}, JSON" file.json \
		--mode stream --format json
	run file.txt "$OURS" receive --changes -f "$OUT/stream"
	agrees "receive --changes -f ${proto[*]:-(v1)}" file.txt --mode stream \
		--whats "$OUT/file.json"
}

# file_types: once, --file-type from snapshots and from a stream.
file_types() {
	run snap-ft.txt "$OURS" send --changes --file-type -p "$P" "$S"
	agrees "send --changes --file-type" snap-ft.txt --mode snap \
		--file-type --prefix "$PREFIX"
	run file-ft.txt "$OURS" receive --changes --file-type -f "$OUT/stream"
	agrees "receive --changes --file-type" file-ft.txt --mode stream \
		--file-type --whats "$OUT/file.json"
}

# verbose: once, -v adds the summary on stderr (send's -v also says what
# it asks of the kernel, as without --changes) and changes nothing on
# stdout.  The summary counts the lines of stdout.
# verbose_run NAME CMD...: CMD's outputs, it must exit 0.
verbose_run() {
	local name=$1 rc want
	shift
	"$@" >"$OUT/$name" 2>"$OUT/$name.err" </dev/null
	rc=$?
	check "$CASE: $name exits 0 (exit $rc)" [ "$rc" -eq 0 ]
	check "$CASE: $name prints one summary on stderr" \
		[ "$(grep -c '^Changes: ' "$OUT/$name.err")" -eq 1 ]
	check "$CASE: $name prints no ERROR or WARNING" \
		[ "$(grep -c '^ERROR\|^WARNING' "$OUT/$name.err")" -eq 0 ]
	want=$(printf 'Changes: %d removed, %d added, %d renamed, %d modified' \
		"$(grep -c '^-' "$OUT/$name")" "$(grep -c '^+' "$OUT/$name")" \
		"$(grep -c '^R' "$OUT/$name")" "$(grep -c '^M' "$OUT/$name")")
	check "$CASE: $name's summary counts its lines ($want)" \
		grep -qxF "$want" "$OUT/$name.err"
}
same_lines() {
	cmp -s <(sort "$1") <(sort "$2")
}
verbose() {
	verbose_run snap-v.txt "$OURS" send --changes -v -p "$P" "$S"
	check "$CASE: send --changes -v: stdout as without -v" \
		same_lines "$OUT/snap-v.txt" "$OUT/snap.txt"
	verbose_run file-v.txt "$OURS" receive --changes -v -f "$OUT/stream"
	check "$CASE: receive --changes -v: stdout as without -v" \
		same_lines "$OUT/file-v.txt" "$OUT/file.txt"
}

# relative: once, a relative snapshot path is printed made absolute.
relative_send() (
	cd "$(dirname "$S")" && "$OURS" send --changes -p P S
)
relative() {
	run snap-rel.txt relative_send
	agrees "send --changes -p P S, relative" snap-rel.txt --mode snap \
		--prefix "$PREFIX"
}

# unprivileged: once, receive --changes by nobody of a stream it can read.
unprivileged() {
	chmod 755 "$WORK/out" "$OUT"
	chmod 644 "$OUT/stream"
	run nobody.txt as_nobody "$OURS" receive --changes -f "$OUT/stream"
	agrees "receive --changes as nobody" nobody.txt --mode stream \
		--whats "$OUT/file.json"
}

# nothing: the case's truth is empty, and send --changes prints nothing.
nothing() {
	check "$CASE: the truth is empty" [ ! -s "$OUT/expect" ]
	check "$CASE: send --changes prints nothing" [ ! -s "$OUT/snap.txt" ]
	check "$CASE: send --changes prints nothing in JSON" \
		[ ! -s "$OUT/snap.json" ]
}

# new_case NAME: a fresh subvolume $V for the case, $P and $S its
# snapshots to be, $OUT its outputs.
new_case() {
	NCASE=$((NCASE + 1))
	CASE=$1
	V=$SRC/$NCASE/vol
	P=$SRC/$NCASE/P
	S=$SRC/$NCASE/S
	OUT=$WORK/out/$NCASE
	mkdir -p "$SRC/$NCASE" "$OUT"
	"$REF" -q subvolume create "$V" >/dev/null
}

snapshot() {
	"$REF" -q subvolume snapshot -r "$V" "$1" >/dev/null
}

# named NAME CHANGE [EXTRA...]: the base tree, CHANGE (a shell command
# run in it), the checks, then each EXTRA check.
named() {
	local name=$1 change=$2 extra
	shift 2
	new_case "$name"
	if ! (cd "$V" && base_tree) || ! snapshot "$P" ||
		! (cd "$V" && eval "$change") || ! snapshot "$S"; then
		fail "$CASE: cannot make the snapshots"
		return
	fi
	check_case
	for extra in "$@"; do
		"$extra"
	done
}

# ------------------------------------------------------------ the cases

named "a renamed directory with changed children" \
	'mv a d && printf "more\n" >>d/f2 && printf "new\n" >d/new &&
	rm d/sub/g' verbose relative
named "a move across directories" 'mv a/f2 b/'
named "a swap of two names" 'mv a/f2 a/tmp && mv b/h a/f2 && mv a/tmp b/h'
named "a rename cycle of three" \
	'mv a/f2 t && mv top a/f2 && mv b/h top && mv t b/h'
named "a hard link added, another removed" 'ln top a/top-link && rm c/k2'
named "a hard link moved, its other name touched" \
	'mkdir d && mv c/k d/k && touch -d 2001-01-01 c/k2'
named "a hard link renamed away, the file grown by its other name" \
	'ln a/f1 b/a-link && rm a/f1 && printf "%05000d" 0 >>b/f1-link'
named "a delete and a re-create under one name" \
	'rm b/h && printf "four\n" >b/h'
named "a file that becomes a directory" 'rm top && mkdir top' file_types
named "an xattr set" 'rh setx a/f1 user.new 7878' unprivileged
named "a chmod" 'chmod 600 a/f2'
named "a chown" 'chown 1000:1001 b/h'
named "a truncate" 'truncate -s 2 a/f2'
named "an append" 'printf "more\n" >>c/k'
named "a rewrite with the same bytes" same_bytes nothing
named "a touch" 'touch b/h'
named "a symlink retargeted" 'ln -sfn a/f2 sym'
named "names with spaces, tabs, newlines, non-UTF-8 bytes" odd_names
named "an empty diff" ':' nothing
named "a chmod back to the same mode" 'chmod 640 b/h' nothing

for ((i = 0; i < RANDOM_CASES; i++)); do
	seed=$((SEED + i))
	new_case "random $seed"
	if ! (cd "$V" && "$PYTHON" "$WORK/random.py" base "$seed") ||
		! snapshot "$P" ||
		! (cd "$V" && "$PYTHON" "$WORK/random.py" change "$seed" \
			>"$OUT/changes") || ! snapshot "$S"; then
		fail "$CASE: cannot make the snapshots"
		continue
	fi
	failed=$FAILURES
	check_case
	if [ "$FAILURES" -gt "$failed" ]; then
		echo "    $CASE: the changes were:" >&2
		sed 's/^/    /' "$OUT/changes" >&2
	fi
done

cd / || true
finish
