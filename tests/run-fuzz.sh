#!/bin/bash
# Run the libFuzzer harnesses at once for FUZZ_SECONDS each (default 60),
# seeded from the committed streams.  The receive harness works on a loop
# btrfs made here and removed on exit.  Crashes land in
# tests/fuzz-crashes/; keep each as a regression input in
# tests/regressions/ once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
seconds=${FUZZ_SECONDS:-60}
# The loop btrfs, its mount and the cleanup at exit.
WORK_NAME=fuzz
. "$top/tests/lib.sh"
work=$WORK

mkdir -p "$work/corpus-dump" "$work/corpus-receive" tests/fuzz-crashes
for s in tests/streams/*.stream tests/regressions/*.stream; do
	[ -f "$s" ] || continue
	# Seeds of at most 64 KiB keep the fuzzer fast.
	head -c 65536 "$s" >"$work/corpus-dump/$(basename "$s")"
done
for spec in tests/specs/*.spec; do
	python3 tests/mkstream.py "$spec" >"$work/corpus-dump/$(basename "$spec").stream"
done
cp "$work"/corpus-dump/* "$work/corpus-receive/"

run() {
	local harness=$1 corpus=$2 input start
	# Inputs that once crashed a harness must not crash it again.
	for input in "$top"/tests/regressions/*.stream; do
		[ -f "$input" ] || continue
		"$top/tests/$harness" "$input" >"$work/$harness.replay" 2>&1 || {
			tail -30 "$work/$harness.replay" >&2
			echo "FAIL: $harness crashes again on $input" >&2
			return 1
		}
	done
	echo "== $harness for $seconds s"
	start=$(date +%s)
	"$top/tests/$harness" -max_total_time="$seconds" -max_len=262144 \
		-rss_limit_mb=1024 -timeout=20 -print_final_stats=1 \
		-artifact_prefix="$top/tests/fuzz-crashes/" "$corpus" 2>"$work/$harness.log" || {
		tail -50 "$work/$harness.log" >&2
		echo "FAIL: $harness found a problem (see tests/fuzz-crashes/)" >&2
		return 1
	}
	[ -n "${TEST_TIMES:-}" ] &&
		echo "$(($(date +%s) - start)) tests/$harness" >>"$TEST_TIMES"
	grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "$work/$harness.log" |
		sed "s/^/$harness: /"
}

# The two harnesses at once, one a core: each gets its FUZZ_SECONDS.
make_loop_fs btrfs "$work/img" 1G "$work/mnt" defaults
run fuzz-dump "$work/corpus-dump" &
dump=$!
FUZZ_RECEIVE_DIR="$work/mnt" run fuzz-receive "$work/corpus-receive" || rc=$?
wait "$dump" || rc=$?
exit "${rc:-0}"
