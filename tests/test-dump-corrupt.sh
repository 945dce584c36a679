#!/bin/bash
# A stream with any one byte of a command flipped, or cut short anywhere,
# makes --dump exit 1 with an ERROR: line, never crash or hang.
. "$(dirname "$0")/lib.sh"

# Variants per stream: the sanitizer run takes fewer (each of its
# processes is slow), its fuzzers cover the rest.
VARIANTS=${CORRUPT_VARIANTS:-300}

run_corrupt() {
	local stream=$1 f rc bad=0 n=0

	mkdir -p "$WORK/c"
	rm -f "$WORK"/c/*
	if ! "$PYTHON" "$TOP/tests/corrupt.py" "$stream" "$WORK/c" "$VARIANTS" >"$WORK/list"; then
		fail "$(basename "$stream"): corrupt.py failed"
		return
	fi
	for f in $(cat "$WORK/list"); do
		n=$((n + 1))
		# A CPU limit rather than timeout(1), which costs as much as
		# the dump itself: reading a file, a hang can only spin.
		(ulimit -t 10; exec "$OURS" receive --dump -f "$f") \
			>/dev/null 2>"$WORK/err"
		rc=$?
		if [ "$rc" -ne 1 ]; then
			fail "$(basename "$stream") $(basename "$f"): exit $rc, expected 1"
			bad=$((bad + 1))
		elif ! grep -q '^ERROR: ' "$WORK/err"; then
			fail "$(basename "$stream") $(basename "$f"): no ERROR line"
			bad=$((bad + 1))
		fi
		[ "$bad" -gt 5 ] && break
	done
	[ "$bad" -eq 0 ] && pass "$(basename "$stream"): $n corrupt variants all refused"
}

run_corrupt "$TOP/tests/streams/xattrs.stream"
run_corrupt "$TOP/tests/streams/compressed-zstd.stream"
run_corrupt "$TOP/tests/streams/multi.stream"
run_corrupt "$TOP/tests/streams/incr-tricky.stream"

# The message names the problem and where it is.
cp "$TOP/tests/streams/special.stream" "$WORK/crc.stream"
printf '\xff' | dd of="$WORK/crc.stream" bs=1 seek=40 conv=notrunc status=none
"$OURS" receive --dump -f "$WORK/crc.stream" >/dev/null 2>"$WORK/err"
check "bad CRC is named with its offset" \
	grep -q '^ERROR: stream offset 17, command 1 (subvol): checksum mismatch' "$WORK/err"
printf 'btrfs-stream\0\4\0\0\0' >"$WORK/v4.stream"
"$OURS" receive --dump -f "$WORK/v4.stream" >/dev/null 2>"$WORK/err"
check "version 4 is refused by name" grep -q 'unsupported stream version 4' "$WORK/err"
printf 'not a stream at all' >"$WORK/junk.stream"
"$OURS" receive --dump -f "$WORK/junk.stream" >/dev/null 2>"$WORK/err"
check "junk is not a send stream" grep -q 'bad magic, not a btrfs send stream' "$WORK/err"
"$OURS" receive --dump </dev/null >/dev/null 2>"$WORK/err"
check "empty input exits 1" [ $? -eq 1 ]
check "empty input is named" grep -q '^ERROR: no send stream in the input' "$WORK/err"
"$OURS" receive --dump -f "$WORK/does-not-exist" >/dev/null 2>"$WORK/err"
check "missing file exits 1" [ $? -eq 1 ]
check "missing file is named" grep -q "^ERROR: cannot open $WORK/does-not-exist: No such file" "$WORK/err"
finish
