#!/bin/bash
# send --progress and receive --progress on a pseudo-terminal, the screen
# read through a minimal terminal (tests/pty-screen.py) at 200 and 60
# columns: the line is redrawn during a stall with the elapsed time going
# on; no status line is wider than the terminal; `send --progress |
# receive --progress` on one terminal shows two lines at once, one each,
# and leaves both summaries.
. "$(dirname "$0")/recv-lib.sh"

require "Debian's btrfs-progs ($REF)" have_reference
require "root with btrfs and loop devices" have_loop_btrfs
require "python3" "$PYTHON" -c 'import pty'

SCREEN=$TOP/tests/pty-screen.py

make_fs src 1G && make_fs dst 1G ||
	{ fail "cannot make the filesystems"; finish; }
SRC=$WORK/src
DST=$WORK/dst

# Small files under long names (the path field), and 16 MiB of data.
make_tree() {
	local i d=$SRC/vol/a-directory-with-a-rather-long-name/and-a-second-level
	"$REF" -q subvolume create "$SRC/vol" >/dev/null && mkdir -p "$d" ||
		return 1
	for i in $(seq 1 200); do
		head -c $((i * 97)) /dev/urandom >"$d/file-number-$i" || return 1
	done
	head -c 16M /dev/urandom >"$SRC/vol/big" &&
		"$REF" -q subvolume snapshot -r "$SRC/vol" "$SRC/snap" >/dev/null
}
make_tree || { fail "cannot make the source tree"; finish; }
"$OURS" send -q -f "$WORK/snap.stream" "$SRC/snap" ||
	{ fail "cannot send the snapshot"; finish; }
SIZE=$(stat -c %s "$WORK/snap.stream")

# pty COLS NAME COMMAND: COMMAND on a terminal of COLS columns; what it
# printed in $WORK/NAME.raw.
pty() {
	"$PYTHON" "$SCREEN" run "$1" "$WORK/$2.raw" -- "$3" >/dev/null
}

# Each draw of a status line with WORD, one a line.
draws() {
	"$PYTHON" "$SCREEN" draws "$WORK/$1.raw" "$2"
}

# No draw of the status lines in $WORK/NAME.raw wider than COLS - 1.
draws_fit() {
	draws "$1" "$2" | awk -v max=$(($3 - 1)) '
		length($0) > max { bad++ } END { exit !(NR > 0 && !bad) }'
}

# The elapsed times (H:MM:SS) of the draws that say what they wait for.
stall_times() {
	draws "$1" "$2" | grep "$3" | grep -oE ', [0-9]+:[0-9]{2}:[0-9]{2}' |
		sort -u
}

# wait_for MODE NAME N WORD TEXT: a command, run within the pty, that
# waits until the screen NAME shows N draws of WORD with TEXT (MODE
# wait), or N elapsed times among them (MODE wait-times): a stall lasts
# until what it is for has been drawn, however slow the machine
# (pty-screen.py gives up after 120 s).
wait_for() {
	echo "'$PYTHON' '$SCREEN' $1 '$WORK/$2.raw' $3 $4 '$5'"
}

# A stall: receive from a pipe whose writer stops until the line has been
# redrawn in it, WAIT being what it waits for.
stall_receive() {
	local cols=$1 name=$2 wait=$3 dir=$DST/$2
	mkdir -p "$dir"
	pty "$cols" "$name" "{ head -c 300000 '$WORK/snap.stream'
		$wait
		tail -c +300001 '$WORK/snap.stream'; } |
		'$OURS' receive --progress '$dir'; echo \"rc=\$?\""
}

# Two elapsed times (a redraw each half second) in the stall.
stall_receive 200 stall200 "$(wait_for wait-times stall200 2 Received \
	'waiting for the input')"
check "200 columns: the receive exits 0" grep -q 'rc=0' "$WORK/stall200.raw"
n=$(stall_times stall200 Received 'waiting for the input' | wc -l)
check "200 columns: redrawn during the stall, elapsed time going on ($n times)" \
	[ "$n" -ge 2 ]
check "200 columns: the bytes stand still during the stall" \
	[ "$(draws stall200 Received | grep 'waiting for the input' |
		cut -d, -f1 | sort -u | wc -l)" -le 2 ]
check "200 columns: the summary counts the whole stream" \
	grep -q "Received $SIZE bytes (" "$WORK/stall200.raw"
check "200 columns: the screen ends with the summary, nothing wrapped" \
	eval '"$PYTHON" "$SCREEN" screen 200 "$WORK/stall200.raw" |
		grep -qx "wrapped 0"'

stall_receive 60 stall60 "$(wait_for wait stall60 2 Received \
	'waiting for the input')"
check "60 columns: the receive exits 0" grep -q 'rc=0' "$WORK/stall60.raw"
check "60 columns: no status line wider than the terminal" \
	draws_fit stall60 Received 60
check "60 columns: still redrawn during the stall" \
	[ "$(draws stall60 Received | grep -c 'waiting for the input')" -ge 2 ]

# What only a status line shows (a size and a comma, a wait, an elapsed
# H:MM:SS; a summary says "bytes (...) in N s") on the screen NAME.
no_status_piece() {
	! grep -E 'B, |waiting for|[0-9]:[0-9]{2}:[0-9]{2}' "$WORK/$1.screen"
}

# send --progress | receive --progress on one terminal, the pipe held up
# in the middle until both lines have stalled and been redrawn so.
pair() {
	local cols=$1 name=$2 dir=$DST/$2
	mkdir -p "$dir"
	pty "$cols" "$name" "set -o pipefail
		'$OURS' send --progress '$SRC/snap' |
		{ head -c 1000000
		  $(wait_for wait "$name" 1 Sent 'waiting for the output')
		  $(wait_for wait "$name" 1 Received 'waiting for the input')
		  cat; } |
		'$OURS' receive --progress '$dir'; echo \"rc=\$?\""
}

for cols in 200 60; do
	pair "$cols" "pair$cols"
	raw=$WORK/pair$cols.raw
	check "$cols columns: send | receive exits 0" grep -q 'rc=0' "$raw"
	check "$cols columns: two status lines on the screen at once" \
		eval '"$PYTHON" "$SCREEN" both "$cols" "$raw" Sent Received \
			>"$WORK/both$cols.screen"'
	check "$cols columns: no send status line wider than the terminal" \
		draws_fit "pair$cols" Sent "$cols"
	check "$cols columns: no receive status line wider than the terminal" \
		draws_fit "pair$cols" Received "$cols"
	check "$cols columns: the send shows it waits for the output" \
		eval 'draws "pair$cols" Sent | grep -q "waiting for the output"'
	"$PYTHON" "$SCREEN" screen "$cols" "$raw" >"$WORK/end$cols.screen"
	check "$cols columns: the send's summary starts a line of its own" \
		grep -qE '^Sent [0-9]+ bytes \(' "$WORK/end$cols.screen"
	check "$cols columns: the receive's summary starts a line of its own" \
		grep -qE '^Received [0-9]+ bytes \(' "$WORK/end$cols.screen"
	check "$cols columns: no line holds both" \
		eval '! grep -E "Sent .*Received|Received .*Sent" \
			"$WORK/end$cols.screen"'
	check "$cols columns: no status line left on the screen" \
		eval '! grep -E "(Sent|Received) [0-9.]+[KMGTP]?i?B[, ]" \
			"$WORK/end$cols.screen"'
	check "$cols columns: nor a piece of one" no_status_piece "end$cols"
	check "$cols columns: the received snapshot is complete" \
		"$REF" subvolume show "$DST/pair$cols/snap" >/dev/null
done
check "200 columns: the pair's screen has not wrapped" \
	grep -qx 'wrapped 0' "$WORK/end200.screen"

# Receive on the first row and send, started once receive has drawn its
# line, on the row above it: send's summary, wider than 60 columns, wraps
# onto lines of its own, not onto receive's.
mkdir -p "$DST/late60"
pty 60 late60 "set -o pipefail
	{ $(wait_for wait late60 1 Received '')
	  '$OURS' send --progress '$SRC/snap'; } |
	'$OURS' receive --progress '$DST/late60'; echo \"rc=\$?\""
"$PYTHON" "$SCREEN" screen 60 "$WORK/late60.raw" >"$WORK/late60.screen"
check "60 columns, send second: exits 0" grep -q 'rc=0' "$WORK/late60.raw"
check "60 columns, send second: both summaries start a line" \
	eval 'grep -qE "^Sent [0-9]+ bytes \(" "$WORK/late60.screen" &&
		grep -qE "^Received [0-9]+ bytes \(" "$WORK/late60.screen"'
check "60 columns, send second: no piece of a status line left" \
	no_status_piece late60

# The stopped-sender repair with the redraw thread: a send --progress on
# the terminal, stopped and continued again and again while the kernel
# waits on a slow reader, still writes the stream of a clean send.
# The reader is waited for: the stream is whole only once it has ended.
mkfifo "$WORK/stopped.fifo"
pty 200 stopped "'$PYTHON' '$TOP/tests/slow-reader.py' 4 '$WORK/stopped.stream' \\
		<'$WORK/stopped.fifo' &
	reader=\$!
	'$OURS' send -v --progress '$SRC/snap' >'$WORK/stopped.fifo' &
	pid=\$!
	for i in \$(seq 1 40); do
		sleep 0.1; kill -STOP \$pid 2>/dev/null || break
		sleep 0.03; kill -CONT \$pid
	done
	wait \$pid; rc=\$?; wait \$reader; echo \"rc=\$rc\""
check "stopped send on a terminal: exit 0" grep -q 'rc=0' "$WORK/stopped.raw"
check "stopped send on a terminal: no ERROR" \
	eval '! grep -q ERROR "$WORK/stopped.raw"'
check "stopped send on a terminal: the stream of a clean send" \
	cmp -s "$WORK/stopped.stream" "$WORK/snap.stream"
"$PYTHON" "$SCREEN" screen 200 "$WORK/stopped.raw" >"$WORK/stopped.screen"
check "stopped send on a terminal: each restart message starts a line" \
	eval '! grep -q ".the kernel restarted" "$WORK/stopped.screen"'
echo "    stopped send: $(grep -c 'the kernel restarted the send' \
	"$WORK/stopped.raw") restarts repaired"

if [ "$FAILURES" -gt 0 ]; then
	for f in "$WORK"/*.screen; do
		echo "== $f" >&2
		cat "$f" >&2
	done
fi
finish
