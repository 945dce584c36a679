#!/bin/bash
# A stopped sender writes a correct stream.  When send is stopped (SIGSTOP
# then SIGCONT, as Ctrl-Z and fg, a debugger or a suspend's freezer do)
# while the kernel waits on a full pipe, the kernel restarts the send ioctl
# from the beginning (btrfs-progs issue #719).  Each case here sends into a
# slow reader and stops and continues the sender at least 10 times: the
# first two land while the kernel waits on the full pipe (the reader held
# still until the sending thread's kernel stack shows it), so that each
# makes a restart to repair; the others at random moments.  The stream
# must be byte-identical to one sent without stops: to stdout and with -f, with --progress, an incremental, -e with
# several subvolumes, --proto 2 --compressed-data, and --resume.
. "$(dirname "$0")/recv-lib.sh"

require "root with btrfs and loop devices" have_loop_btrfs
require "Debian's btrfs-progs ($REF)" have_reference

RANDOM=${STOP_SEED:-719}
MIN_STOPS=10
# Stops of each case that land while the kernel waits on the full pipe.
LANDED=2
# What the pipes and the pump hold at most, with room to spare: a send
# with more than this still to go must wait on its reader held still.
IN_FLIGHT=$((16 << 20))
RATE=${STOP_RATE_MB:-12}

make_fs src 2G compress=zstd && make_fs dst 2G ||
	{ fail "cannot make the filesystems"; finish; }
SRC=$WORK/src DST=$WORK/dst

# About 40 MB of stream: random files of all sizes, compressible text (for
# --compressed-data), small files, then a changed copy for -p.
"$REF" -q subvolume create "$SRC/data"
make_data() {
	"$PYTHON" - "$SRC/data" "$1" <<'PY'
import os, random, sys
root, seed = sys.argv[1], int(sys.argv[2])
rng = random.Random(seed)
for i in range(60):
    with open(os.path.join(root, "r%02d" % i), "wb") as f:
        f.write(rng.randbytes(rng.randrange(1000, 900000)))
for i in range(20):
    with open(os.path.join(root, "t%02d" % i), "w") as f:
        f.write(("line %d of text %d\n" % (i, seed)) * rng.randrange(1000, 40000))
os.makedirs(os.path.join(root, "small"), exist_ok=True)
for i in range(300):
    with open(os.path.join(root, "small", "s%03d" % i), "wb") as f:
        f.write(rng.randbytes(rng.randrange(0, 3000)))
PY
}
make_data 1
sync
"$REF" -q subvolume snapshot -r "$SRC/data" "$SRC/s1"
make_data 2
"$REF" -q subvolume snapshot -r "$SRC/data" "$SRC/s2"
sync

# blocked_in_send PID: the thread of PID in the send ioctl (the main one)
# waits on a full pipe, where a stop makes the kernel restart the ioctl.
blocked_in_send() {
	local stack
	stack=$(cat "/proc/$1/stack" 2>/dev/null) || return 1
	grep -q 'pipe_write' <<<"$stack" && grep -q 'btrfs_ioctl_send' <<<"$stack"
}

# pump_stuck PID: the pump of PID waits on the full output while the main
# thread is out of the send ioctl (it waits for the pump to pass on what
# an attempt wrote before a restart, or between subvolumes): nothing
# moves until the reader takes some.
pump_stuck() {
	local t
	grep -q 'btrfs_ioctl_send' "/proc/$1/stack" 2>/dev/null && return 1
	for t in /proc/"$1"/task/*; do
		[ "$t" != "/proc/$1/task/$1" ] &&
			grep -qE 'pipe_write|pipe_wait_writable' "$t/stack" \
				2>/dev/null && return 0
	done
	return 1
}

# land PID STOP CONT: hold the reader ($READER) still until the send ioctl
# waits on the full pipe (120 s at most), then STOP PID, CONT PID, and
# let the reader go on.  Fails, stopping nothing, when the send is too
# near its end to have to wait ($OUT holds what the reader took of
# $TOTAL bytes) or ends first.
land() {
	local pid=$1 end
	[ $((TOTAL - $(stat -c %s "$OUT"))) -gt "$IN_FLIGHT" ] || return 1
	kill -STOP "$READER"
	end=$((SECONDS + 120))
	until blocked_in_send "$pid"; do
		if ! kill -0 "$pid" 2>/dev/null || [ "$SECONDS" -ge "$end" ]; then
			kill -CONT "$READER"
			return 1
		fi
		if pump_stuck "$pid"; then
			kill -CONT "$READER"
			sleep 0.05
			kill -STOP "$READER"
		fi
		sleep 0.01
	done
	$2 "$pid"
	sleep "0.0$((RANDOM % 10))"
	$3 "$pid"
	kill -CONT "$READER"
}

# stops PID STOP CONT: STOP and CONT until the process ends, the first
# LANDED times landed on the full pipe, the others at random moments;
# prints how many stops it made and how many of them landed.
stops() {
	local pid=$1 n=0 landed=0
	while kill -0 "$pid" 2>/dev/null; do
		sleep "0.$((RANDOM % 2))$((RANDOM % 10))"
		if [ "$landed" -lt "$LANDED" ] && land "$pid" "$2" "$3"; then
			landed=$((landed + 1))
		else
			$2 "$pid" 2>/dev/null || break
			sleep "0.0$((RANDOM % 10))"
			$3 "$pid" 2>/dev/null
		fi
		n=$((n + 1))
	done
	echo "$n $landed"
}

stop_pid() {
	kill -STOP "$1"
}

cont_pid() {
	kill -CONT "$1"
}

# stop_and_continue PID: with SIGSTOP and SIGCONT.
stop_and_continue() {
	stops "$1" stop_pid cont_pid
}

# A cgroup freezer, as a suspend uses: v1's freezer.state or v2's
# cgroup.freeze, in a cgroup of our own, removed at exit.
FREEZER=
for d in /sys/fs/cgroup/freezer /sys/fs/cgroup/unified /sys/fs/cgroup; do
	if [ -e "$d/freezer.state" ] || [ -e "$d/cgroup.procs" ] &&
		mkdir "$d/btrfs-test-$$" 2>/dev/null; then
		if [ -e "$d/btrfs-test-$$/freezer.state" ] ||
			[ -e "$d/btrfs-test-$$/cgroup.freeze" ]; then
			FREEZER=$d/btrfs-test-$$
			break
		fi
		rmdir "$d/btrfs-test-$$"
	fi
done
at_exit '[ -z "$FREEZER" ] || rmdir "$FREEZER" 2>/dev/null'

freeze() {
	if [ -e "$FREEZER/freezer.state" ]; then
		echo "$1" >"$FREEZER/freezer.state"
	else
		echo "$([ "$1" = FROZEN ] && echo 1 || echo 0)" \
			>"$FREEZER/cgroup.freeze"
	fi
}

freeze_pid() {
	kill -0 "$1" 2>/dev/null && freeze FROZEN
}

thaw_pid() {
	freeze THAWED
}

# freeze_and_thaw PID: as stop_and_continue, with the cgroup freezer.
freeze_and_thaw() {
	echo "$1" >"$FREEZER/cgroup.procs" || { echo "0 0"; return; }
	stops "$1" freeze_pid thaw_pid
}

# stopped NAME CLEAN [-f] SEND-ARGS...: send into a slow reader (through
# stdout, or -f onto the reader's fifo) while stopping the sender, the
# stream CLEAN's size; the stream in $WORK/NAME.stopped, the sender's
# stderr in $WORK/NAME.err.
stopped() {
	local name=$1 fifo=$WORK/$1.fifo pid stops
	local OUT=$WORK/$1.stopped READER TOTAL
	TOTAL=$(stat -c %s "$2")
	shift 2
	mkfifo "$fifo"
	: >"$OUT"
	"$PYTHON" "$TOP/tests/slow-reader.py" "$RATE" "$OUT" <"$fifo" &
	READER=$!
	if [ "$1" = -f ]; then
		shift
		"$OURS" send -v "$@" -f "$fifo" 2>"$WORK/$name.err" &
	else
		"$OURS" send -v "$@" >"$fifo" 2>"$WORK/$name.err" &
	fi
	pid=$!
	stops=$($STOPPER "$pid")
	wait "$pid"
	echo "$?" >"$WORK/$name.rc"
	wait "$READER"
	rm -f "$fifo"
	echo "$stops" >"$WORK/$name.stops"
}

STOPPER=stop_and_continue
RESTARTS=0
# check_case NAME CLEAN: exit 0, the same bytes, enough stops, a restart
# repaired for each stop that landed on the full pipe.
check_case() {
	local name=$1 clean=$2 stops landed restarts
	read -r stops landed <"$WORK/$name.stops"
	restarts=$(grep -c 'the kernel restarted the send' "$WORK/$name.err")
	RESTARTS=$((RESTARTS + restarts))
	check "$name: exit 0 ($(cat "$WORK/$name.rc"))" \
		[ "$(cat "$WORK/$name.rc")" -eq 0 ]
	check "$name: no ERROR line" \
		eval '! grep -q "^ERROR" "$WORK/$name.err"'
	check "$name: $stops stops (at least $MIN_STOPS), $restarts restarts repaired" \
		[ "$stops" -ge "$MIN_STOPS" ]
	check "$name: $landed of $LANDED stops landed on the full pipe, each a restart repaired" \
		[ "$landed" -eq "$LANDED" -a "$restarts" -ge "$landed" ]
	check "$name: stream identical to one sent without stops" \
		cmp "$clean" "$WORK/$name.stopped"
}

# Clean streams: ours without stops, checked against btrfs-progs' once.
"$OURS" send -q -f "$WORK/full.clean" "$SRC/s1"
"$REF" send -q -f "$WORK/full.ref" "$SRC/s1"
check "clean full stream: ours equals btrfs-progs'" \
	cmp "$WORK/full.clean" "$WORK/full.ref"
"$OURS" send -q -p "$SRC/s1" -f "$WORK/incr.clean" "$SRC/s2"
"$OURS" send -q -e -f "$WORK/multi.clean" "$SRC/s1" "$SRC/s2"
"$REF" send -q -e -f "$WORK/multi.ref" "$SRC/s1" "$SRC/s2"
check "clean -e stream: ours equals btrfs-progs'" \
	cmp "$WORK/multi.clean" "$WORK/multi.ref"
"$OURS" send -q --proto 2 --compressed-data -f "$WORK/comp.clean" "$SRC/s2"

stopped stdout "$WORK/full.clean" "$SRC/s1"
check_case stdout "$WORK/full.clean"
stopped file "$WORK/full.clean" -f "$SRC/s1"
check_case file "$WORK/full.clean"
stopped progress "$WORK/full.clean" --progress "$SRC/s1"
check_case progress "$WORK/full.clean"
check "progress: a summary line" grep -q '^Sent [0-9]* bytes' "$WORK/progress.err"
stopped incr "$WORK/incr.clean" -p "$SRC/s1" "$SRC/s2"
check_case incr "$WORK/incr.clean"
stopped multi "$WORK/multi.clean" -e "$SRC/s1" "$SRC/s2"
check_case multi "$WORK/multi.clean"
stopped comp "$WORK/comp.clean" -f --proto 2 --compressed-data "$SRC/s2"
check_case comp "$WORK/comp.clean"

# --resume: a receive cut at a third leaves a token; the continuation sent
# with stops equals the one sent without.
head -c $(($(stat -c %s "$WORK/full.clean") / 3)) "$WORK/full.clean" |
	"$OURS" receive -q "$DST" 2>/dev/null
TOK=$("$OURS" receive --resume-token "$DST/s1")
check "resume: a token" [ -n "$TOK" ]
"$OURS" send -q --resume "$TOK" -f "$WORK/resume.clean" "$SRC/s1"
# Two thirds of the stream: read as much slower, it lasts as long as the
# others and leaves the stopper as many chances.
RATE=$((RATE * 2 / 3)) stopped resume "$WORK/resume.clean" --resume "$TOK" "$SRC/s1"
check_case resume "$WORK/resume.clean"
"$OURS" receive -q -f "$WORK/resume.stopped" "$DST" 2>"$WORK/resume.recv.err"
check "resume: the stopped continuation completes the receive" \
	grep -q '^flags=readonly' <(subvol_props "$DST/s1")
check "resume: the received subvolume has its received uuid" \
	grep -qv '^received_uuid=-' <(subvol_props "$DST/s1" | grep received_uuid)
# --no-flags, --no-extents: the source is mounted with compress, which marks
# its files with the compression flag and stores their extents compressed.
compare_trees "resume: tree after the stopped continuation" "$SRC/s1" \
	"$DST/s1" --no-atime --no-flags --no-extents

# The freezer of a suspend or of a cgroup restarts the ioctl as a stop does.
if [ -n "$FREEZER" ]; then
	STOPPER=freeze_and_thaw
	stopped frozen "$WORK/full.clean" "$SRC/s1"
	check_case frozen "$WORK/full.clean"
elif [ -n "${CI:-}" ]; then
	fail "no cgroup freezer (v1 freezer.state or v2 cgroup.freeze) to test with"
else
	echo "NOTE: $TEST_NAME: no cgroup freezer here: the frozen case was not run" >&2
fi

check "at least one restart repaired in all ($RESTARTS)" [ "$RESTARTS" -ge 1 ]
finish
