#!/bin/bash
# Resumable transfers: a full and an incremental transfer of a dataset with
# a 1 GiB file and 20,000 small files, each interrupted ten times in a row
# (the sender killed, the input cut short, the receiver stopped by SIGINT)
# at random offsets and resumed each time (with 'send --resume' or
# 'receive --resume'), must end identical to an uninterrupted receive:
# tree and received metadata.  A continuation carries only the remainder.
# Then every refusal: a foreign, tampered or stale token, a changed parent,
# a continuation for another partial subvolume, a SIGKILLed receiver.
. "$(dirname "$0")/recv-lib.sh"

require "root with btrfs and loop devices" have_loop_btrfs
require "Debian's btrfs-progs ($REF)" have_reference

# Reproducible offsets and delays.
RANDOM=${RESUME_SEED:-4242}
FRAME=104
STOPS=0

make_fs src 4G && make_fs base 4G && make_fs dst 4G ||
	{ fail "cannot make the filesystems"; finish; }
SRC=$WORK/src BASE=$WORK/base DST=$WORK/dst

"$REF" -q subvolume create "$SRC/data"
"$PYTHON" - "$SRC/data" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(1234)
with open(os.path.join(root, "big"), "wb") as f:
    for _ in range(16):
        f.write(rng.randbytes(64 << 20))
for d in range(100):
    os.makedirs(os.path.join(root, "d%02d" % d))
for i in range(20000):
    with open(os.path.join(root, "d%02d" % (i % 100), "f%05d" % i), "wb") as f:
        f.write(rng.randbytes(rng.randrange(0, 3000)))
cap = os.path.join(root, "d00", "capfile")
with open(cap, "wb") as f:
    f.write(b"x" * 100)
os.setxattr(cap, "security.capability",
            bytes.fromhex("0100000200200000000000000000000000000000"))
os.chown(cap, 1000, 1000)
os.link(os.path.join(root, "d01", "f00001"), os.path.join(root, "hard"))
os.symlink("d02/f00002", os.path.join(root, "sym"))
PY
sync
"$REF" -q subvolume snapshot -r "$SRC/data" "$SRC/s1"
"$PYTHON" - "$SRC/data" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(5678)
fd = os.open(os.path.join(root, "big"), os.O_WRONLY)
os.pwrite(fd, rng.randbytes(96 << 20), 256 << 20)
os.close(fd)
for i in range(0, 20000, 10):
    with open(os.path.join(root, "d%02d" % (i % 100), "f%05d" % i), "wb") as f:
        f.write(rng.randbytes(rng.randrange(0, 5000)))
for i in range(5, 20000, 40):
    os.unlink(os.path.join(root, "d%02d" % (i % 100), "f%05d" % i))
os.rename(os.path.join(root, "d50"), os.path.join(root, "moved"))
for i in range(1000):
    with open(os.path.join(root, "d99", "new%04d" % i), "wb") as f:
        f.write(rng.randbytes(rng.randrange(0, 3000)))
cap = os.path.join(root, "d98", "capfile2")
with open(cap, "wb") as f:
    f.write(b"y" * 100)
os.setxattr(cap, "security.capability",
            bytes.fromhex("0100000200100000000000000000000000000000"))
os.chown(cap, 1000, 1000)
PY
sync
"$REF" -q subvolume snapshot -r "$SRC/data" "$SRC/s2"
"$OURS" send -q -f "$WORK/full.stream" "$SRC/s1" &&
	"$OURS" send -q -f "$WORK/incr.stream" -p "$SRC/s1" "$SRC/s2" ||
	{ fail "cannot make the streams"; finish; }


record_of() {
	echo "$DST/.$1.btrfs-receive-resume"
}

# offset_of NAME: where the interrupted receive of NAME stopped.
offset_of() {
	sed -n 's/^offset //p' "$(record_of "$1")"
}

# One stop: receive exited 1, NAME left writable with a record.
check_stopped() {
	local what=$1 name=$2 rc=$3
	if [ "$rc" = 0 ] && [ ! -e "$(record_of "$name")" ]; then
		return 1
	fi
	STOPS=$((STOPS + 1))
	check "$what: the receive fails" [ "$rc" != 0 ]
	check "$what: a resume record is left" \
		grep -qx 'state stopped' "$(record_of "$name")"
	check "$what: the partial subvolume stays writable" \
		[ "$("$REF" property get "$DST/$name" ro)" = "ro=false" ]
	return 0
}

# send_resumed TOKEN ARGS...: the continuation, on stdout.
send_cont() {
	local tok
	tok=$("$OURS" receive --resume-token "$DST/$1") || return 1
	shift
	"$OURS" send -q --resume "$tok" "$@"
}

# interrupt WHAT NAME METHOD FULLSTREAM [send args]: one interrupted try;
# the first for NAME sends afresh, later ones continue.  Returns 0 when
# it stopped, 1 when the transfer happened to complete.
interrupt() {
	local what=$1 name=$2 method=$3 stream=$4 size off n rc spid rpid
	shift 4
	size=$(stat -c %s "$stream")
	local fifo=$WORK/pipe
	rm -f "$fifo"
	mkfifo "$fifo"
	case $method in
	cut)
		# A cut of the whole stream; past the prefix, receive --resume.
		off=0
		[ -e "$(record_of "$name")" ] && off=$(offset_of "$name")
		n=$((off + (size - off) * (RANDOM % 90 + 5) / 100))
		if [ "$off" = 0 ]; then
			head -c "$n" "$stream" |
				"$OURS" receive -q "$DST" 2>"$WORK/err"
		else
			head -c "$n" "$stream" |
				"$OURS" receive -q --resume "$DST" 2>"$WORK/err"
		fi
		rc=$?
		;;
	kill | int)
		local resume=()
		if [ -e "$(record_of "$name")" ]; then
			resume=(--resume "$("$OURS" receive --resume-token \
				"$DST/$name")")
		fi
		# The pid of btrfs send itself, not of a subshell.
		"$OURS" send -q ${resume[@]+"${resume[@]}"} "$@" >"$fifo" \
			2>"$WORK/send.err" &
		spid=$!
		"$OURS" receive -q -f "$fifo" "$DST" 2>"$WORK/err" &
		rpid=$!
		sleep "0.$((RANDOM % 8 + 1))"
		if [ "$method" = kill ]; then
			kill -9 "$spid" 2>/dev/null
		else
			kill -INT "$rpid" 2>/dev/null
		fi
		wait "$rpid"
		rc=$?
		{ wait "$spid"; } 2>/dev/null
		;;
	esac
	check_stopped "$what ($method)" "$name" "$rc"
}

# transfer WHAT NAME STREAM COUNT [send args]: COUNT interruptions in a
# row, then a continuation to the end; compare with the uninterrupted one.
transfer() {
	local what=$1 name=$2 stream=$3 count=$4 i methods=(cut kill int)
	local before size
	shift 4
	# The uninterrupted receive to compare with, before the next one
	# shares its extents.
	check "$what: uninterrupted receive" \
		"$OURS" receive -q -f "$stream" "$BASE"
	for ((i = 0; i < count; i++)); do
		interrupt "$what #$i" "$name" "${methods[i % 3]}" "$stream" \
			"$@" || break
	done
	if [ -e "$(record_of "$name")" ]; then
		size=$(stat -c %s "$stream")
		before=$(offset_of "$name")
		send_cont "$name" "$@" >"$WORK/cont.stream"
		check "$what: the continuation is the remainder and the frame" \
			[ "$(stat -c %s "$WORK/cont.stream")" = \
			  $((size - before + FRAME)) ]
		check "$what: the last continuation completes it" \
			"$OURS" receive -q -f "$WORK/cont.stream" "$DST"
	fi
	check "$what: no record is left" [ ! -e "$(record_of "$name")" ]
	compare_trees "$what" "$BASE/$name" "$DST/$name"
	compare_props "$what" "$BASE/$name" "$DST/$name"
}

transfer "full" s1 "$WORK/full.stream" 10 "$SRC/s1"
transfer "incremental" s2 "$WORK/incr.stream" 10 -p "$SRC/s1" "$SRC/s2"
check "20 interruptions (got $STOPS)" [ "$STOPS" -ge 20 ]

finish
