#!/bin/bash
# The multiplexer and the options: help, version, usage errors, exit codes.
. "$(dirname "$0")/lib.sh"

# expect STATUS STDOUT_PATTERN STDERR_PATTERN -- ARGS...
expect() {
	local status=$1 out_pat=$2 err_pat=$3 rc
	shift 4
	"$OURS" "$@" >"$WORK/out" 2>"$WORK/err"
	rc=$?
	if [ "$rc" -ne "$status" ]; then
		fail "btrfs $*: exit $rc, expected $status"
		return
	fi
	if [ -n "$out_pat" ] && ! grep -qE -- "$out_pat" "$WORK/out"; then
		fail "btrfs $*: stdout lacks /$out_pat/"
		return
	fi
	if [ -n "$err_pat" ] && ! grep -qE -- "$err_pat" "$WORK/err"; then
		fail "btrfs $*: stderr lacks /$err_pat/"
		return
	fi
	pass "btrfs $*"
}

expect 0 '^usage: btrfs ' '' -- --help
expect 0 'btrfs receive \[options\] <mount>' '' -- --help
expect 0 '^usage: btrfs ' '' -- help
expect 0 '^usage: btrfs receive ' '' -- help receive
expect 0 '^btrfs-progs v6\.2 ' '' -- version
expect 0 '^btrfs-progs v6\.2 ' '' -- --version
expect 0 '--dump' '' -- receive --help
expect 0 '^usage: btrfs send ' '' -- send --help
expect 1 '' '^usage: btrfs ' -- --bogus
expect 1 '' "unrecognized option '--bogus'" -- receive --bogus
expect 1 '' "invalid option '-x'" -- receive -x
expect 1 '' "option '-E' requires an argument" -- receive --dump -E
expect 1 '' '^ERROR: invalid value for --max-errors: abc' -- receive --dump -E abc
expect 1 '' "unknown command 'frobnicate'" -- frobnicate
expect 1 '' '^usage: btrfs ' --
expect 1 '' '--dump takes no <mount>' -- receive --dump /mnt
expect 1 '' 'missing <mount>' -- receive
expect 1 '' 'unknown command' -- help frobnicate

# Global options before the command, and -v/-q after it.
stream="$TOP/tests/streams/special.stream"
expect 0 '^subvol ' '' -- -v receive --dump -f "$stream"
expect 0 '^subvol ' '' -- -q receive --dump -f "$stream"
expect 0 '^subvol ' '' -- --verbose receive -v --dump -f "$stream"
expect 0 '^subvol ' '' -- receive --quiet --dump -f "$stream"
# Options may follow the positional arguments, as with getopt.
expect 0 '^subvol ' '' -- receive --dump -f "$stream" -e

# stdin is the default input.
"$OURS" receive --dump <"$stream" >"$WORK/stdin.out"
"$OURS" receive --dump -f "$stream" >"$WORK/file.out"
check "dump from stdin equals dump from -f" cmp -s "$WORK/stdin.out" "$WORK/file.out"

# -e stops at the first END: only the first of concatenated streams.
"$OURS" receive --dump -e -f "$TOP/tests/streams/multi.stream" >"$WORK/e.out"
check "-e dumps one subvolume" [ "$(grep -c '^subvol ' "$WORK/e.out")" -eq 1 ]
"$OURS" receive --dump -f "$TOP/tests/streams/multi.stream" >"$WORK/all.out"
check "without -e all subvolumes" [ "$(grep -c '^subvol ' "$WORK/all.out")" -eq 3 ]

# A write error on stdout is an error, not a silent truncation.
if [ -w /dev/full ]; then
	"$OURS" receive --dump -f "$TOP/tests/streams/full.stream" >/dev/full 2>"$WORK/err"
	check "dump to a full device exits 1" [ $? -eq 1 ]
	check "dump to a full device says so" grep -q '^ERROR: cannot write the dump' "$WORK/err"
fi
# Commands of btrfs-progs are handed on to it, with the global options.
"$OURS" -q filesystem df / >"$WORK/out" 2>"$WORK/err"
"$REF" -q filesystem df / >"$WORK/ref.out" 2>"$WORK/ref.err"
check "btrfs-progs commands are handed on" cmp -s "$WORK/err" "$WORK/ref.err"
BTRFS_PROGS=/nonexistent "$OURS" subvolume list / >/dev/null 2>"$WORK/err"
check "without btrfs-progs: exit 1" [ $? -eq 1 ]
check "without btrfs-progs: a clear error naming the command" grep -q \
	"^ERROR: 'subvolume' is a btrfs-progs command, and btrfs-progs was not found at /nonexistent" "$WORK/err"

# The bash completion knows the options of send and receive.
completions() {
	bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		_btrfs_send_receive; printf "%s\n" "${COMPREPLY[@]}"' _ \
		"$TOP/btrfs-completion.bash" "$@" 2>/dev/null
}
check "completion: receive --force-decompress" grep -qx -- --force-decompress <(completions btrfs receive --fo)
check "completion: send --compressed-data" grep -qx -- --compressed-data <(completions btrfs send --com)
check "completion: --format json" grep -qx json <(completions btrfs --format j)

# make install puts the binary, the man pages and the completion in place.
make -s -C "$TOP" install DESTDIR="$WORK/pkg" prefix=/usr >/dev/null 2>&1
for f in bin/btrfs share/man/man8/btrfs.8 share/man/man8/btrfs-send.8 \
	share/man/man8/btrfs-receive.8 share/bash-completion/completions/btrfs; do
	check "make install: $f" [ -f "$WORK/pkg/usr/$f" ]
done
make -s -C "$TOP" uninstall DESTDIR="$WORK/pkg" prefix=/usr >/dev/null 2>&1
check "make uninstall removes them" [ -z "$(find "$WORK/pkg" -type f)" ]

# Memory does not grow with the stream: 256 MiB of writes are dumped in
# bounded RSS (the read buffer plus the largest command).  The baseline is an
# 8 MiB stream (past the 4 MiB that receive -f reads ahead) dumped by the
# same binary in the same run, so that a
# sanitizer build's larger, machine-dependent footprint does not count; the
# absolute bound holds only for the normal build.
"$PYTHON" -c '
import sys
sys.path.insert(0, "'"$TOP"'/tests")
import mkstream
head = mkstream.build(["header 1", "subvol path=s:big uuid=uuid:00112233445566778899aabbccddeeff ctransid=u64:1"])
write = mkstream.command(["write", "path=s:f", "file_offset=u64:0", "data=fill:65000:1"], 1)
end = mkstream.command(["end"], 1)
for name, writes in ((sys.argv[1], 4096), (sys.argv[2], 128)):
    with open(name, "wb") as f:
        f.write(head)
        for _ in range(writes):
            f.write(write)
        f.write(end)
' "$WORK/big.stream" "$WORK/small.stream"
peak_rss() {
	/usr/bin/time -f '%M' -o "$WORK/rss" "$OURS" receive --dump -f "$1" >"$WORK/big.out"
	tail -1 "$WORK/rss"
}
if [ -x /usr/bin/time ]; then
	base=$(peak_rss "$WORK/small.stream")
	rss=$(peak_rss "$WORK/big.stream")
	check "256 MiB stream dumps all writes" [ "$(grep -c '^write ' "$WORK/big.out")" -eq 4096 ]
	check "dump of 256 MiB grows RSS by under 4 MiB over one of 8 MiB (${base} -> ${rss} KiB)" \
		[ $((rss - base)) -lt 4096 ]
	if [ "$OURS" = "$TOP/btrfs" ]; then
		check "dump of 256 MiB stays under 16 MiB RSS (${rss} KiB)" [ "$rss" -lt 16384 ]
	fi
elif [ -n "${CI:-}" ]; then
	fail "/usr/bin/time is required in CI"
fi
rm -f "$WORK/big.stream" "$WORK/small.stream" "$WORK/big.out"
finish
