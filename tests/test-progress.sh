#!/bin/bash
# send --estimate, send --progress and receive --progress on a loop btrfs:
# the estimate against the size of the real stream (full, incremental,
# protocol 1 and 2, compressed, several subvolumes, -e); nothing written
# by a dry run; the progress summary's byte counts; the streams and trees
# unchanged by --progress; the plain periodic lines off a terminal and
# the in-place redraw on one (under script(1)); --expected-size parsing.
. "$(dirname "$0")/recv-lib.sh"

have_tools() {
	local t
	for t in mkfs.btrfs losetup mount umount mountpoint truncate script \
		timeout cp dd; do
		command -v "$t" || return 1
	done
}

require "Debian's btrfs-progs ($REF)" have_reference
require "root with btrfs and loop devices" have_loop_btrfs
require "mkfs.btrfs, losetup, script, timeout, dd" have_tools
require "python3" "$PYTHON" -c 'import os; os.setxattr'

# Test only: the plain progress lines come every 200 ms instead of 10 s.
FAST_LINES=200
# On a terminal: redrawn at most every 250 ms as bytes move, and in a
# stall when nothing was drawn for 375 ms (progress.c, progress-tty.c).
TTY_LINES=250
STALE=375
MS=1000000

make_fs src 2G || { fail "cannot make the source filesystem"; finish; }
SRC=$WORK/src
S=$WORK/streams
mkdir -p "$S"

# A tree of small files, symlinks, hardlinks and xattrs, a few MiB of
# incompressible files, a sparse file; then an incremental change of it
# with modifications, renames, deletions and reflinks.
make_trees() {
	local i d
	"$REF" -q subvolume create "$SRC/vol" >/dev/null || return 1
	for d in a b c d; do mkdir -p "$SRC/vol/$d/sub"; done
	for i in $(seq 1 400); do
		d=$(printf 'abcd' | cut -c$((i % 4 + 1)))
		rh rand "$SRC/vol/$d/f$i" 0 $((i * 37 % 8193)) "s$i" || return 1
		[ $((i % 10)) -eq 0 ] && rh setx "$SRC/vol/$d/f$i" user.t 6869
		[ $((i % 20)) -eq 0 ] && ln -s "../$d/f$i" "$SRC/vol/$d/sub/l$i"
		[ $((i % 25)) -eq 0 ] && ln "$SRC/vol/$d/f$i" "$SRC/vol/$d/sub/h$i"
	done
	for i in 1 2 3; do
		rh rand "$SRC/vol/big$i" 0 $((i * 1024 * 1024 + 12345)) "b$i" ||
			return 1
	done
	truncate -s 64M "$SRC/vol/sparse"
	for i in 0 7 19 33 60; do
		rh rand "$SRC/vol/sparse" $((i * 1024 * 1024)) 65536 "sp$i"
	done
	"$REF" -q subvolume snapshot -r "$SRC/vol" "$SRC/full" >/dev/null ||
		return 1
	for i in $(seq 1 400 | awk 'NR % 9 == 0'); do
		rh rand "$SRC/vol/$(printf 'abcd' | cut -c$((i % 4 + 1)))/f$i" 100 3000 "m$i"
	done
	rm -f "$SRC"/vol/a/f4 "$SRC"/vol/a/f8 "$SRC"/vol/b/f1
	mv "$SRC/vol/c/f2" "$SRC/vol/d/moved"
	mv "$SRC/vol/b/sub" "$SRC/vol/a/movedsub"
	cp --reflink=always "$SRC/vol/big1" "$SRC/vol/reflinked" || return 1
	rh clone "$SRC/vol/big2" 1048576 1048576 "$SRC/vol/partial" 65536 ||
		return 1
	rh rand "$SRC/vol/new" 0 300000 new
	"$REF" -q subvolume snapshot -r "$SRC/vol" "$SRC/incr" >/dev/null
}

# A compressed subvolume of compressible text and some random data, and
# an incremental change of it.
make_compressed() {
	"$REF" -q subvolume create "$SRC/cvol" >/dev/null &&
		"$REF" property set "$SRC/cvol" compression zstd || return 1
	"$PYTHON" - "$SRC/cvol" <<'PY' || return 1
import os, sys
root = sys.argv[1]
for i in range(8):
    with open(os.path.join(root, "t%d" % i), "w") as f:
        for j in range(6000 + 3000 * i):
            f.write("line %d of file %d: %s\n" % (j, i, "xyz" * (j % 17)))
with open(os.path.join(root, "small"), "w") as f:
    f.write("tiny " * 200)
PY
	rh rand "$SRC/cvol/random" 0 700000 crand
	"$REF" -q subvolume snapshot -r "$SRC/cvol" "$SRC/cfull" >/dev/null ||
		return 1
	cat "$SRC/cvol/t1" >>"$SRC/cvol/t0"
	mv "$SRC/cvol/t2" "$SRC/cvol/t2-renamed"
	rm "$SRC/cvol/t3"
	"$REF" -q subvolume snapshot -r "$SRC/cvol" "$SRC/cincr" >/dev/null
}

make_trees || { fail "cannot make the test trees"; finish; }
make_compressed || { fail "cannot make the compressed trees"; finish; }
sync

# within2 WHAT ESTIMATE REAL: |ESTIMATE - REAL| <= 2% of REAL.
within2() {
	local err
	err=$(awk -v e="$2" -v r="$3" 'BEGIN { printf "%.4f", (e - r) * 100 / r }')
	echo "    estimate $1: $2 for $3 bytes, error $err%"
	check "$1: estimate $2 within 2% of the stream's $3 bytes" \
		awk -v e="$2" -v r="$3" 'BEGIN { d = e - r; if (d < 0) d = -d; exit !(d * 50 <= r) }'
}

# estimate_case NAME SENDARGS...: the real stream, then the estimate of
# the same arguments, plain and with -q.
estimate_case() {
	local name=$1 real est out rc
	shift
	"$OURS" send -q -f "$S/$name" "$@" 2>"$S/$name.err" ||
		{ fail "$name: send failed: $(head -2 "$S/$name.err")"; return; }
	real=$(stat -c %s "$S/$name")
	est=$("$OURS" send --estimate -q "$@" 2>"$S/$name.est.err")
	rc=$?
	check "$name: send --estimate -q exits 0" [ "$rc" -eq 0 ]
	check "$name: send --estimate -q prints one number" \
		grep -qxE '[0-9]+' <<<"$est"
	check "$name: send --estimate -q prints nothing on stderr" \
		[ ! -s "$S/$name.est.err" ]
	[[ $est =~ ^[0-9]+$ ]] && within2 "$name" "$est" "$real"
	out=$("$OURS" send --estimate "$@" 2>/dev/null)
	check "$name: send --estimate prints the size in bytes" \
		grep -qxE "Estimated stream size: $est bytes \([0-9.]+(B|KiB|MiB|GiB)\)" <<<"$out"
	check "$name: send --estimate prints the file data" \
		grep -qxE 'File data: [0-9]+ bytes \([0-9.]+(B|KiB|MiB|GiB)\)' <<<"$out"
}

cd "$SRC" || exit 1
estimate_case full-v1 full
estimate_case full-v2 --proto 2 full
estimate_case incr-v1 -p full incr
estimate_case incr-v2 --proto 2 -p full incr
estimate_case incr-c -c full incr
estimate_case comp-full --compressed-data cfull
estimate_case comp-incr --compressed-data -p cfull cincr
estimate_case comp-v1 cfull
estimate_case multi full cfull
estimate_case multi-e -e full cfull
estimate_case no-data --no-data -p full incr

# The compressed case must be one: its stream is smaller than its data.
check "comp-full: the compressed stream is smaller than the files" \
	[ "$(stat -c %s "$S/comp-full")" -lt "$(stat -c %s "$S/comp-v1")" ]

# A dry run writes no stream: not to stdout, not to -f.
out=$("$OURS" send --estimate -q -f "$S/not-written" full 2>&1)
check "--estimate with -f: only the number on stdout" grep -qxE '[0-9]+' <<<"$out"
check "--estimate with -f: the file is not created" [ ! -e "$S/not-written" ]
echo keep >"$S/kept"
"$OURS" send --estimate -q -f "$S/kept" full >/dev/null 2>&1
check "--estimate with -f: an existing file is left alone" \
	[ "$(cat "$S/kept")" = keep ]
# Exit codes: a writable subvolume and a missing one are refused.
"$OURS" send --estimate vol >"$S/rw.out" 2>"$S/rw.err"
check "--estimate of a writable subvolume exits 1" [ $? -eq 1 ]
check "--estimate of a writable subvolume: ERROR line" \
	grep -q "^ERROR: subvolume .*vol is not read-only" "$S/rw.err"
check "--estimate of a writable subvolume: nothing on stdout" \
	[ ! -s "$S/rw.out" ]
"$OURS" send --estimate -q "$SRC/nonexistent" >/dev/null 2>"$S/ne.err"
check "--estimate of a missing subvolume exits 1" [ $? -eq 1 ]
check "--estimate of a missing subvolume: ERROR line" grep -q '^ERROR: ' "$S/ne.err"

# send --progress: the same stream, and a summary with its byte count.
# summary_bytes FILE VERB: the byte count of the summary line.
summary_bytes() {
	sed -n "s/^.*$2 \([0-9]*\) bytes (.*) in [0-9.]* s, .*\/s, [0-9]* commands\$/\1/p" "$1" |
		tail -1
}

progress_send_case() {
	local name=$1 n
	shift
	"$OURS" send --progress -f "$S/$name.p" "$@" 2>"$S/$name.p.err"
	check "send --progress $name exits 0" [ $? -eq 0 ]
	check "send --progress $name: the stream is unchanged" \
		cmp -s "$S/$name.p" "$S/$name"
	n=$(summary_bytes "$S/$name.p.err" Sent)
	check "send --progress $name: summary bytes $n = stream size" \
		[ "$n" = "$(stat -c %s "$S/$name")" ]
}
progress_send_case full-v1 full
progress_send_case incr-v2 --proto 2 -p full incr
progress_send_case multi-e -e full cfull
progress_send_case comp-full --compressed-data cfull
# Through a pipe (splice to a pipe) and onto an O_APPEND file (no splice).
"$OURS" send -q --progress full 2>"$S/pipe.err" | cat >"$S/pipe.out"
check "send --progress into a pipe: the stream is unchanged" \
	cmp -s "$S/pipe.out" "$S/full-v1"
: >"$S/append.out"
"$OURS" send -q --progress full 2>"$S/append.err" >>"$S/append.out"
check "send --progress onto an O_APPEND file: the stream is unchanged" \
	cmp -s "$S/append.out" "$S/full-v1"
check "send --progress onto an O_APPEND file: summary bytes" \
	[ "$(summary_bytes "$S/append.err" Sent)" = "$(stat -c %s "$S/full-v1")" ]
# With --estimate, percent and ETA (lines every 1 ms off a terminal).
# The reader takes 20 MB/s at most, and the full stream is more than the
# pipes hold: the send waits on it for a while, however fast the machine.
BTRFS_PROGRESS_INTERVAL_MS=1 "$OURS" send --progress --estimate \
	full 2>"$S/pe.err" |
	"$PYTHON" "$TOP/tests/slow-reader.py" 20 "$S/pe"
check "send --progress --estimate: the stream is unchanged" \
	cmp -s "$S/pe" "$S/full-v1"
check "send --progress --estimate: percent and ETA in the status lines" \
	grep -qE '^Sent [0-9.]+[KMG]?i?B of [0-9.]+[KMG]?i?B \([0-9]+%\), [0-9.]+[KMG]?i?B/s, [0-9]+:[0-9]{2}:[0-9]{2}, ETA [0-9]+:[0-9]{2}:[0-9]{2}, [0-9]+ commands' "$S/pe.err"
check "send --progress --estimate: no estimate printed on stdout" \
	[ "$(stat -c %s "$S/pe")" = "$(stat -c %s "$S/full-v1")" ]
# Without --progress, send prints what the reference prints.
"$OURS" send -f "$S/plain" full 2>"$S/plain.err"
"$REF" send -f "$S/plain.ref" full 2>"$S/plain.ref.err"
check "send without --progress: stderr as the reference's" \
	cmp -s "$S/plain.err" "$S/plain.ref.err"
check "send without --progress: stream as the reference's" \
	cmp -s "$S/plain" "$S/plain.ref"

# receive --progress -f FILE: summary bytes = file size, the same tree.
make_fs dst 2G || { fail "cannot make the destination"; finish; }
DST=$WORK/dst
mkdir -p "$DST/plain" "$DST/progress"
"$OURS" receive -f "$S/full-v1" "$DST/plain" >"$S/r.out" 2>"$S/r.err"
check "receive without --progress exits 0" [ $? -eq 0 ]
check "receive without --progress: only 'At subvol' on stderr" \
	[ "$(cat "$S/r.err")" = "At subvol full" ]
"$OURS" receive --progress -f "$S/full-v1" "$DST/progress" \
	>"$S/rp.out" 2>"$S/rp.err"
check "receive --progress exits 0" [ $? -eq 0 ]
check "receive --progress: summary bytes = file size" \
	[ "$(summary_bytes "$S/rp.err" Received)" = "$(stat -c %s "$S/full-v1")" ]
check "receive --progress: stdout unchanged" cmp -s "$S/r.out" "$S/rp.out"
check "receive --progress: the At subvol line is still there" \
	grep -qx 'At subvol full' "$S/rp.err"
compare_trees "receive --progress" "$DST/plain/full" "$DST/progress/full"
compare_props "receive --progress" "$DST/plain/full" "$DST/progress/full"
# The incremental on top, from a pipe with --expected-size.
"$OURS" receive --progress --expected-size "$(stat -c %s "$S/incr-v1")" \
	"$DST/progress" <"$S/incr-v1" 2>"$S/ri.err" >/dev/null
check "receive --progress of the incremental exits 0" [ $? -eq 0 ]
"$OURS" receive "$DST/plain" <"$S/incr-v1" >/dev/null 2>&1
compare_trees "receive --progress, incremental" "$DST/plain/incr" \
	"$DST/progress/incr"

# feed.py GAP FILE (pieces N | CUT...): FILE on stdout in N equal pieces
# or cut at the byte offsets CUT; after each piece, the pipe is watched
# until the reader has taken all of it (120 s at most), then nothing
# comes for GAP seconds.  A status line due at an interval below GAP is
# due again in the next piece however slow the machine is: the gap runs
# from when the reader had the bytes, not from when they were written.
cat >"$WORK/feed.py" <<'PY'
import fcntl, os, struct, sys, termios, time
gap, data = float(sys.argv[1]), open(sys.argv[2], "rb").read()
if sys.argv[3] == "pieces":
    size = -(-len(data) // int(sys.argv[4]))
    cuts = list(range(size, len(data), size))
else:
    cuts = [int(c) for c in sys.argv[3:]]
out = sys.stdout.buffer
for start, end in zip([0] + cuts, cuts + [len(data)]):
    try:
        out.write(data[start:end])
        out.flush()
    except BrokenPipeError:
        sys.exit(0)
    if end == len(data):
        break
    deadline = time.monotonic() + 120
    while struct.unpack("i", fcntl.ioctl(1, termios.FIONREAD, b"0000"))[0]:
        if time.monotonic() > deadline:
            sys.exit("feed.py: the reader took nothing for 120 s")
        time.sleep(0.005)
    time.sleep(gap)
PY

# slow_feed FILE: the file through a pipe in 8 pieces, 0.3 s apart.
slow_feed() {
	"$PYTHON" "$WORK/feed.py" 0.3 "$1" pieces 8
}

# spaced TRACE LINE_MS STALE_MS: the records of a BTRFS_PROGRESS_TRACE_FD
# trace keep their distances on the clock that spaced them: plain lines
# ("line") and redraws as bytes move ("show") LINE_MS apart at least,
# each from the one of its kind before; a redraw in a stall ("stall")
# STALE_MS at least after the draw before it, of any kind.
spaced() {
	awk -v line_ns=$(($2 * MS)) -v stale_ns=$(($3 * MS)) '
		$2 == "stall" && NR > 1 && $1 - prev < stale_ns { bad++ }
		$2 != "stall" && ($2 in last) && $1 - last[$2] < line_ns { bad++ }
		$2 != "stall" { last[$2] = $1 }
		{ prev = $1 }
		END { exit !(NR > 0 && !bad) }' "$1"
}

# plain_lines_at_interval COUNT TRACE: at least 4 lines, each of them in
# the trace, and no two closer than the interval.
plain_lines_at_interval() {
	[ "$1" -ge 4 ] &&
		[ "$(grep -c ' line$' "$2")" -eq "$1" ] &&
		spaced "$2" "$FAST_LINES" "$STALE"
}

# Off a terminal: full plain lines at the (test-shortened) interval, on
# the clock of the lines themselves (BTRFS_PROGRESS_TRACE_FD).
slow_feed "$S/full-v1" | BTRFS_PROGRESS_INTERVAL_MS=$FAST_LINES \
	BTRFS_PROGRESS_TRACE_FD=9 \
	"$OURS" receive --dump --progress --expected-size 1G \
	>/dev/null 2>"$S/plain-lines.err" 9>"$S/plain-lines.trace"
lines=$(grep -cE '^Received [0-9.]+[KMG]?i?B of 1\.00GiB \([0-9]+%\), [0-9.]+[KMG]?i?B/s, [0-9]+:[0-9]{2}:[0-9]{2}, ETA ([0-9]+:[0-9]{2}:[0-9]{2}|-), [0-9]+ commands(, .*)?$' "$S/plain-lines.err")
check "plain progress lines at the interval ($lines lines, ${FAST_LINES} ms apart at least)" \
	plain_lines_at_interval "$lines" "$S/plain-lines.trace"
check "plain progress lines: no carriage return or escape" \
	eval '! grep -q $'"'"'[\r\033]'"'"' "$S/plain-lines.err"'
check "plain progress lines: a path is named" \
	grep -qE ', [0-9]+ commands, [^ ]+$' "$S/plain-lines.err"
check "plain progress: the summary line last" \
	grep -qE '^Received [0-9]+ bytes \(' <(tail -1 "$S/plain-lines.err")
# Without a total: no percent.
slow_feed "$S/full-v1" | BTRFS_PROGRESS_INTERVAL_MS=$FAST_LINES \
	"$OURS" receive --dump --progress >/dev/null 2>"$S/nototal.err"
check "progress without a total: no percent, no ETA" \
	eval '! grep -qE "%|ETA" "$S/nototal.err"'
check "progress without a total: status lines" \
	grep -qE '^Received [0-9.]+[KMG]?i?B, [0-9.]+[KMG]?i?B/s, ' "$S/nototal.err"

# A path is the stream's, maybe hostile: its control bytes (a terminal
# escape here) are shown as '?'.
{
	echo "header 1"
	echo "subvol path=s:v uuid=uuid:e5c0000000000000000000000000000e ctransid=u64:1"
	for i in $(seq 40); do
		echo 'chmod path=s:evil\x1b]0;title\x07\x1b[31mred mode=u64:420'
	done
	echo end
} | "$PYTHON" "$TOP/tests/mkstream.py" >"$S/evil.stream"
"$PYTHON" "$WORK/feed.py" 0.3 "$S/evil.stream" 200 |
	BTRFS_PROGRESS_INTERVAL_MS=1 "$OURS" receive --dump --progress \
	>/dev/null 2>"$S/evil.err"
check "progress: a path with control bytes is shown with '?'" \
	grep -qF 'evil?]0;title??[31mred' "$S/evil.err"
check "progress: no control byte of the stream reaches stderr" \
	eval '! grep -q $'"'"'[\033\007]'"'"' "$S/evil.err"'

# On a terminal: redrawn in place (\r ... ESC[K), at most 4 times a second
# as bytes move, on the clock of the redraws themselves.
cat >"$WORK/tty-run.sh" <<TTY
#!/bin/bash
"$PYTHON" "$WORK/feed.py" 0.3 "$S/full-v1" pieces 8 |
	BTRFS_PROGRESS_TRACE_FD=9 "$OURS" receive --dump --progress \
	>/dev/null 9>"$S/tty.trace"
TTY
chmod +x "$WORK/tty-run.sh"
script -q -c "$WORK/tty-run.sh" /dev/null >"$S/tty.out" 2>&1 </dev/null
redraws=$(grep -o $'\r[^\r]*Received [0-9.]*[KMG]*i*B, [^\r]*\033\\[K' "$S/tty.out" | wc -l)
check "terminal: redrawn in place ($redraws redraws)" [ "$redraws" -ge 3 ]
check "terminal: each redraw in the trace ($(wc -l <"$S/tty.trace") records)" \
	[ "$(wc -l <"$S/tty.trace")" -eq "$redraws" ]
check "terminal: at most 4 redraws a second as bytes move, ${TTY_LINES} ms apart" \
	spaced "$S/tty.trace" "$TTY_LINES" "$STALE"
check "terminal: the summary line after the redraws" \
	grep -qE 'Received [0-9]+ bytes \(' "$S/tty.out"
check "terminal: no newline between redraws" \
	[ "$(grep -c 'Received [0-9.]*[KMG]*i*B, ' "$S/tty.out")" -le 2 ]

# --expected-size: k/M/G/T suffixes, and refusals.
for v in 4096:4.00KiB 4k:4.00KiB 3M:3.00MiB 2G:2.00GiB 1T:1.00TiB 512m:512.00MiB; do
	"$PYTHON" "$WORK/feed.py" 0.1 "$S/incr-v1" 1000 |
		BTRFS_PROGRESS_INTERVAL_MS=1 "$OURS" receive --dump --progress \
		--expected-size "${v%%:*}" >/dev/null 2>"$S/es.err"
	check "--expected-size ${v%%:*} is ${v#*:}" \
		grep -q " of ${v#*:} (" "$S/es.err"
done
for v in x -1 1Q 4kk "" 1.5M 99999999999999999999 20000000000T; do
	"$OURS" receive --dump --progress --expected-size "$v" \
		-f "$S/incr-v1" >"$S/bad.out" 2>"$S/bad.err"
	rc=$?
	check "--expected-size '$v' refused with exit 1" [ "$rc" -eq 1 ]
	check "--expected-size '$v': ERROR line" \
		grep -qx "ERROR: invalid value for --expected-size: $v" "$S/bad.err"
	check "--expected-size '$v': nothing dumped" [ ! -s "$S/bad.out" ]
done

# receive --dump --progress: the dump itself unchanged.
"$OURS" receive --dump -f "$S/incr-v1" >"$S/d1" 2>/dev/null
"$OURS" receive --dump --progress -f "$S/incr-v1" >"$S/d2" 2>"$S/d2.err"
check "receive --dump --progress: the dump unchanged" cmp -s "$S/d1" "$S/d2"
check "receive --dump --progress: summary bytes = file size" \
	[ "$(summary_bytes "$S/d2.err" Received)" = "$(stat -c %s "$S/incr-v1")" ]

cd / || true
finish
