#!/bin/bash
# A receive stopped by a full disk can be resumed.  A 1.5 GiB destination
# is filled by a file of its own, then a stream of 1 GiB of incompressible
# data (one large file, then small ones) cannot fit: the receive stops
# with ENOSPC, and must still save its resume record (written in place
# over the record reserved when the subvolume started, as no new space
# can be had at that moment) and say how to resume.  Once the filler is
# deleted, the documented procedure (receive --resume-token, send
# --resume, receive) completes the subvolume: the same tree as the
# source, read-only, with its received uuid.  Before the fix, the stop
# printed "WARNING: cannot save the resume state of s1: No space left on
# device" and --resume-token found no state.
. "$(dirname "$0")/recv-lib.sh"

require "root with btrfs and loop devices" have_loop_btrfs
require "Debian's btrfs-progs ($REF)" have_reference

MiB=$((1024 * 1024))

not_grep() {
	! grep -q "$@"
}

make_fs src 2G && make_fs dst 1536M ||
	{ fail "cannot make the filesystems"; finish; }
SRC=$WORK/src DST=$WORK/dst
"$REF" -q subvolume create "$SRC/data" >/dev/null
"$PYTHON" - "$SRC/data" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(4711)
with open(os.path.join(root, "big"), "wb") as f:
    for _ in range(16):
        f.write(rng.randbytes(64 << 20))
os.makedirs(os.path.join(root, "d"))
for i in range(200):
    with open(os.path.join(root, "d", "f%03d" % i), "wb") as f:
        f.write(rng.randbytes(rng.randrange(0, 20000)))
PY
sync
"$REF" -q subvolume snapshot -r "$SRC/data" "$SRC/s1" >/dev/null
"$OURS" send -q -f "$WORK/s1.stream" "$SRC/s1" ||
	{ fail "cannot make the stream"; finish; }
check "the stream holds at least 1 GiB" \
	[ "$(stat -c %s "$WORK/s1.stream")" -ge $((1024 * MiB)) ]

# Leave about 700 MiB of data space: the stream cannot fit.
head -c $((640 * MiB)) /dev/urandom >"$DST/filler"
sync

"$OURS" receive -f "$WORK/s1.stream" "$DST" >"$WORK/out" 2>"$WORK/err"
rc=$?
check "the receive fails" [ "$rc" = 1 ]
check "it stops on a full disk" \
	grep -q '^ERROR: .*No space left on device' "$WORK/err"
check "it saves its resume state" \
	not_grep 'cannot save the resume state' "$WORK/err"
check "it says how to resume" grep -qF \
	"resume it with the token of 'btrfs receive --resume-token $DST/s1'" \
	"$WORK/err"
check "the record is a stopped state" \
	grep -qx 'state stopped' "$DST/.s1.btrfs-receive-resume"
check "the partial subvolume stays writable" \
	[ "$("$REF" property get "$DST/s1" ro)" = "ro=false" ]
[ "$FAILURES" = 0 ] || sed 's/^/    /' "$WORK/err" >&2
REC=$DST/.s1.btrfs-receive-resume
reserved() {
	[ "$(stat -c %s "$REC")" = 16384 ] && lsattr "$REC" | grep -q '^[^ ]*C'
}
check "the record file is the reserved one: 16 KiB, NOCOW" reserved

# A torn write (a field of another version) fails the CRC: damaged.
cp "$REC" "$WORK/record"
"$PYTHON" - "$REC" <<'PY'
import re, sys
with open(sys.argv[1], "r+b") as f:
    rec = f.read()
    # The last digit of the command count, another one: same length.
    m = re.search(rb"\ncommands \d*(\d)\n", rec)
    f.seek(m.start(1))
    f.write(b"%d" % ((int(m.group(1)) + 1) % 10))
PY
damaged() {
	! "$OURS" receive --resume-token "$DST/s1" >"$WORK/tok" 2>"$WORK/err" &&
		grep -q '^ERROR: the resume state of .* is damaged' "$WORK/err" &&
		[ ! -s "$WORK/tok" ]
}
check "a torn record is refused as damaged" damaged
dd if="$WORK/record" of="$REC" conv=notrunc status=none

# The documented procedure, once there is space again.
rm -f "$DST/filler"
sync
TOKEN=$("$OURS" receive --resume-token "$DST/s1" 2>"$WORK/err")
check "receive --resume-token prints the token" \
	grep -qx '[A-Za-z0-9_-]\{116\}' <<<"$TOKEN"
[ -n "$TOKEN" ] || sed 's/^/    /' "$WORK/err" >&2
"$OURS" send -q --resume "$TOKEN" "$SRC/s1" 2>"$WORK/send.err" |
	"$OURS" receive "$DST" >"$WORK/out" 2>"$WORK/err"
check "the continuation completes it" [ "${PIPESTATUS[1]}" = 0 ]
check "... with no ERROR line" not_grep '^ERROR' "$WORK/err" "$WORK/send.err"
check "no record is left" [ ! -e "$DST/.s1.btrfs-receive-resume" ]
# Extents: the source's are shared with its snapshot, the copy's not.
compare_trees "resumed" "$SRC/s1" "$DST/s1" --no-extents
src_uuid=$("$REF" subvolume show "$SRC/s1" | sed -n 's/^\tUUID: *\t*//p')
props=$(subvol_props "$DST/s1")
check "read-only" grep -qx 'flags=readonly' <<<"$props"
check "with its received uuid" \
	grep -qx "received_uuid=$src_uuid" <<<"$props"

finish
