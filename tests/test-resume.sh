#!/bin/bash
# Resumable transfers: a full and an incremental transfer of a dataset with
# a 1 GiB file and 20,000 small files, each interrupted ten times in a row
# (the sender killed, the input cut short, the receiver stopped by SIGINT)
# at random offsets and resumed each time (with 'send --resume' or
# 'receive --resume'), must end identical to an uninterrupted receive:
# tree and received metadata.  A continuation carries only the remainder.
# Then every refusal: a foreign, tampered or stale token, a changed parent,
# a continuation for another partial subvolume, a SIGKILLed receiver
# (first or resumed).
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
# 1 GiB of 16 different chunks, cheaper than 1 GiB of randbytes: each a
# rotation of one random block by an amount no multiple of a page.
block = rng.randbytes(64 << 20)
with open(os.path.join(root, "big"), "wb") as f:
    for i in range(16):
        k = i * 1048583
        f.write(block[k:] + block[:k])
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

# wait_record NAME STATE...: wait, a minute at most, for the record of
# NAME to show one of the STATEs.
wait_record() {
	local name=$1 i
	shift
	for ((i = 0; i < 1200; i++)); do
		grep -qxE "state ($(IFS='|'; echo "$*"))" \
			"$(record_of "$name")" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
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
		# The sender writes into one FIFO, a relay forwards a random part
		# of the stream to the receiver's FIFO, then either kills the
		# sender (the receiver sees the end of its input) or sends the
		# receiver SIGINT while its input is still open.  Deciding by
		# bytes, not by time, makes every try stop, however loaded the
		# machine is.
		local resume=() in=$WORK/pipe.in cont=0
		if [ -e "$(record_of "$name")" ]; then
			resume=(--resume "$("$OURS" receive --resume-token \
				"$DST/$name")")
			off=$(offset_of "$name")
			cont=$FRAME
		else
			off=0
		fi
		n=$((cont + (size - off) * (RANDOM % 90 + 5) / 100))
		rm -f "$in"
		mkfifo "$in"
		# The pid of btrfs send itself, not of a subshell.
		"$OURS" send -q ${resume[@]+"${resume[@]}"} "$@" >"$in" \
			2>"$WORK/send.err" &
		spid=$!
		"$OURS" receive -q -f "$fifo" "$DST" 2>"$WORK/err" &
		rpid=$!
		exec 3>"$fifo"
		head -c "$n" "$in" >&3
		if [ "$method" = kill ]; then
			kill -9 "$spid" 2>/dev/null
			exec 3>&-
		else
			# Once it is under way, however busy the machine.
			wait_record "$name" receiving applying
			kill -INT "$rpid" 2>/dev/null
		fi
		wait "$rpid"
		rc=$?
		exec 3>&-
		kill -9 "$spid" 2>/dev/null
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

# Refusals, on a small dataset.
"$REF" -q subvolume create "$SRC/r"
# As `rh rand` makes them, in one process rather than 300.
"$PYTHON" - "$SRC/r" <<'PY'
import hashlib, os, sys
for i in range(1, 301):
    with open(os.path.join(sys.argv[1], "f%d" % i), "wb") as f:
        f.write(hashlib.shake_256(b"recv-r%d" % i).digest(i * 200))
PY
sync
"$REF" -q subvolume snapshot -r "$SRC/r" "$SRC/r0"
"$REF" -q subvolume snapshot -r "$SRC/r" "$SRC/r1"
rh rand "$SRC/r/f1" 0 500000 changed
"$REF" -q subvolume snapshot -r "$SRC/r" "$SRC/r2"
"$OURS" send -q -f "$WORK/r0.stream" "$SRC/r0"
"$OURS" send -q -f "$WORK/r1.stream" "$SRC/r1"
"$OURS" send -q -f "$WORK/r2.stream" -p "$SRC/r1" "$SRC/r2"
"$OURS" receive -q -f "$WORK/r0.stream" "$DST"
half() {
	head -c $(($(stat -c %s "$1") / 2)) "$1"
}
half "$WORK/r1.stream" | "$OURS" receive -q "$DST" 2>/dev/null
TOK=$("$OURS" receive --resume-token "$DST/r1")
check "token: one line of base64url" grep -qx '[A-Za-z0-9_-]\{116\}' <<<"$TOK"

# expect_error WHAT PATTERN CMD...: exit 1, the ERROR line, nothing on stdout.
expect_error() {
	local what=$1 pattern=$2 rc
	shift 2
	"$@" >"$WORK/out" 2>"$WORK/err"
	rc=$?
	if [ "$rc" = 1 ] && grep -q "^ERROR: .*$pattern" "$WORK/err" &&
		[ ! -s "$WORK/out" ]; then
		pass "$what"
	else
		fail "$what: exit $rc, stderr: $(head -2 "$WORK/err")"
	fi
}
state() {
	rh state "$DST/$1"
	cat "$(record_of "$1")" 2>/dev/null
}

expect_error "a token for another subvolume" "not among those to send" \
	"$OURS" send --resume "$TOK" "$SRC/r0"
BAD=${TOK:0:40}$([ "${TOK:40:1}" = A ] && echo B || echo A)${TOK:41}
expect_error "a tampered token" "invalid resume token: checksum" \
	"$OURS" send --resume "$BAD" "$SRC/r1"
expect_error "a truncated token" "invalid resume token" \
	"$OURS" send --resume "${TOK:0:100}" "$SRC/r1"
expect_error "a token for a full stream with a parent" "another parent" \
	"$OURS" send --resume "$TOK" -p "$SRC/r0" "$SRC/r1"
expect_error "another protocol version" "another protocol" \
	"$OURS" send --resume "$TOK" --proto 2 "$SRC/r1"

"$OURS" send -q --resume "$TOK" -f "$WORK/r1.cont" "$SRC/r1"
before=$(state r1)
"$OURS" send -q --resume "$TOK" "$SRC/r1" 2>/dev/null |
	head -c $(($(stat -c %s "$WORK/r1.cont") / 2)) |
	"$OURS" receive -q "$DST" 2>/dev/null
check "a continuation cut short stops again" [ "$(state r1)" != "$before" ]
before=$(state r1)
expect_error "a stale continuation" "stale token" \
	"$OURS" receive -f "$WORK/r1.cont" "$DST"
check "a stale continuation changes nothing" [ "$(state r1)" = "$before" ]
expect_error "another stream for the same token" "differs from the one" \
	"$OURS" send --resume "$TOK" --no-data "$SRC/r1"

mkdir "$DST/other"
"$OURS" receive -q -f "$WORK/r1.stream" "$DST/other"
half "$WORK/r2.stream" | "$OURS" receive -q "$DST/other" 2>/dev/null
TOK2=$("$OURS" receive --resume-token "$DST/other/r2")
expect_error "a changed parent" "another parent" \
	"$OURS" send --resume "$TOK2" -p "$SRC/r0" "$SRC/r2"
other_before=$(rh state "$DST/other"; cat "$DST/other/.r2.btrfs-receive-resume")
"$OURS" send -q --resume "$("$OURS" receive --resume-token "$DST/r1")" \
	-f "$WORK/r1.cont" "$SRC/r1"
expect_error "a continuation for another partial subvolume" \
	"no interrupted receive of it here" \
	"$OURS" receive -f "$WORK/r1.cont" "$DST/other"
check "... changes nothing" [ "$(rh state "$DST/other"; cat "$DST/other/.r2.btrfs-receive-resume")" = "$other_before" ]
expect_error "btrfs-progs refuses a continuation cleanly" "" \
	"$REF" receive -f "$WORK/r1.cont" "$DST/other"

# kill_receiver STREAM STATE: SIGKILL a receive of r1 from the first
# 100000 bytes of STREAM once its record shows STATE (within a minute,
# however busy the machine), the writer still holding the pipe open.
kill_receiver() {
	local rpid wpid
	rm -f "$WORK/pipe"
	mkfifo "$WORK/pipe"
	"$OURS" receive -q -f "$WORK/pipe" "$DST" 2>/dev/null &
	rpid=$!
	{ head -c 100000 "$1"; exec sleep 600; } >"$WORK/pipe" &
	wpid=$!
	wait_record r1 "$2"
	kill -9 "$rpid"
	kill "$wpid"
	wait
}

# A receiver killed while applying a continuation cannot resume.
kill_receiver "$WORK/r1.cont" applying
check "a SIGKILLed receiver leaves the applying state" \
	grep -qx 'state applying' "$(record_of r1)"
expect_error "... its token is refused" "cannot be resumed" \
	"$OURS" receive --resume-token "$DST/r1"
expect_error "... its continuation is refused" "cannot be resumed" \
	"$OURS" receive -f "$WORK/r1.cont" "$DST"
expect_error "... and --resume of the whole stream" "cannot be resumed" \
	"$OURS" receive --resume -f "$WORK/r1.stream" "$DST"
check "--abort deletes it" "$OURS" receive -q --abort "$DST/r1"
check "... and the subvolume" [ ! -e "$DST/r1" ]
check "... and its record" [ ! -e "$(record_of r1)" ]
expect_error "--abort of a complete subvolume" "has no resume state" \
	"$OURS" receive --abort "$DST/r0"
check "... leaves it" [ -f "$DST/r0/f1" ]

# A first receive killed by SIGKILL leaves only the record reserved when
# the subvolume started: nothing to resume, but --abort knows it.
kill_receiver "$WORK/r1.stream" receiving
expect_error "a SIGKILLed first receive cannot resume" "has no resume state" \
	"$OURS" receive --resume-token "$DST/r1"
check "... its record is the reservation" \
	grep -qx 'state receiving' "$(record_of r1)"
check "... --abort deletes it" "$OURS" receive -q --abort "$DST/r1"
check "... and the subvolume" [ ! -e "$DST/r1" ]
check "... and its record" [ ! -e "$(record_of r1)" ]

# receive --resume of the whole stream skips the prefix by reading it.
half "$WORK/r1.stream" | "$OURS" receive -q "$DST" 2>/dev/null
check "receive --resume -f of the whole stream completes it" \
	"$OURS" receive -q --resume -f "$WORK/r1.stream" "$DST"
"$OURS" receive -q -f "$WORK/r1.stream" "$BASE"
compare_trees "receive --resume" "$BASE/r1" "$DST/r1"
compare_props "receive --resume" "$BASE/r1" "$DST/r1"
expect_error "receive --resume with nothing to resume" "no stream in the input" \
	"$OURS" receive --resume -f "$WORK/r1.stream" "$DST/other"

finish
