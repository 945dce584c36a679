#!/bin/bash
# Run every integration test (tests/test-*.sh, or those named) and
# summarize.  Exit status 0 only if none failed.  A test exits 77 to skip,
# which tests/lib.sh allows only outside CI.  Off a terminal (CI), each
# test has TEST_TIMEOUT seconds.
#
# A test may be given with its environment first, as one argument:
# "VAR=VALUE ... tests/test-x.sh" (the sanitizer runs of the Makefile).
#
# TEST_JOBS=N runs up to N tests at once (default 1; make sets 3).  Each test makes its
# own loop devices, mounts and work directory and none depends on the
# machine's speed, so they share nothing; each one's output is printed
# whole when it ends.  TEST_TIMES=FILE appends "SECONDS TEST" per test.
set -u
cd "$(dirname "$0")/.." || exit 1

tests=("$@")
[ ${#tests[@]} -eq 0 ] && tests=(tests/test-*.sh)
# The longest test takes about 2 minutes on a slow machine.
TEST_TIMEOUT=${TEST_TIMEOUT:-900}
TEST_JOBS=${TEST_JOBS:-1}
failed=()
skipped=()
logs=$(mktemp -d "${TMPDIR:-/tmp}/integration.XXXXXX")
# An interrupted run stops its tests, which undo their own mounts.
trap 'kill $(jobs -p) 2>/dev/null; wait; rm -rf "$logs"' EXIT

# The slowest tests start first, longest first, so that a parallel run
# does not end with one of them alone (times in .ci/run's table).
SLOW_FIRST=(test-hostile.sh test-resume.sh test-restarted-stream.sh
	test-receive-errors.sh test-receive.sh test-progress.sh
	test-enospc-resume.sh test-stopped-send.sh)

ordered() {
	local slow t
	for slow in "${SLOW_FIRST[@]}"; do
		for t in "${tests[@]}"; do
			[ "${t##*/}" = "$slow" ] && echo "$t"
		done
	done
	for t in "${tests[@]}"; do
		[[ " ${SLOW_FIRST[*]} " == *" ${t##*/} "* ]] || echo "$t"
	done
}

# label TEST: its script, and the build it runs if not the normal one.
label() {
	local bin
	bin=$(grep -o 'BTRFS_BIN=[^ ]*' <<<"$1")
	echo "${1##* }${bin:+ (${bin##*/})}"
}

# run_test TEST: run it; a test that hangs fails alone instead of
# stopping the whole run.  On a terminal, Ctrl-C must reach the test:
# timeout would take it out of the terminal's foreground process group.
run_test() {
	local cmd
	read -ra cmd <<<"$1"
	if [ -t 0 ] && [ "$TEST_JOBS" -eq 1 ]; then
		env "${cmd[@]}"
	else
		timeout -k 30 "$TEST_TIMEOUT" env "${cmd[@]}" </dev/null
	fi
}

# run_one TEST N: run it; its status and time go to $logs/N.rc.  In a
# parallel run its output goes to $logs/N.out, to be printed whole.
run_one() {
	local t=$1 n=$2 start rc
	start=$(date +%s)
	if [ "$TEST_JOBS" -gt 1 ]; then
		run_test "$t" >"$logs/$n.out" 2>&1
	else
		run_test "$t"
	fi
	rc=$?
	echo "$rc $(($(date +%s) - start))" >"$logs/$n.rc"
}

# report N TEST: print its output (of a parallel run) and time, and count
# its result.
report() {
	local n=$1 t rc secs
	t=$(label "$2")
	read -r rc secs <"$logs/$n.rc"
	if [ "$TEST_JOBS" -gt 1 ]; then
		echo "== $t"
		cat "$logs/$n.out"
	fi
	echo "   ($secs s)"
	[ -n "${TEST_TIMES:-}" ] && echo "$secs $t" >>"$TEST_TIMES"
	[ "$rc" -eq 124 ] && echo "   timed out after $TEST_TIMEOUT s"
	case $rc in
	0) ;;
	77) skipped+=("$t") ;;
	*) failed+=("$t") ;;
	esac
}

mapfile -t queue < <(ordered)
declare -A running=()
n=0
for t in "${queue[@]}"; do
	while [ ${#running[@]} -ge "$TEST_JOBS" ]; do
		wait -n
		for i in "${!running[@]}"; do
			[ -e "$logs/$i.rc" ] || continue
			report "$i" "${running[$i]}"
			unset "running[$i]"
		done
	done
	n=$((n + 1))
	if [ "$TEST_JOBS" -eq 1 ]; then
		echo "== $(label "$t")"
		run_one "$t" "$n"
		report "$n" "$t"
		continue
	fi
	run_one "$t" "$n" &
	running[$n]=$t
done
wait
for i in "${!running[@]}"; do
	report "$i" "${running[$i]}"
done

echo "== ${#tests[@]} integration tests: ${#failed[@]} failed, ${#skipped[@]} skipped"
[ ${#skipped[@]} -gt 0 ] && echo "skipped: ${skipped[*]}"
if [ ${#failed[@]} -gt 0 ]; then
	echo "failed: ${failed[*]}"
	exit 1
fi
exit 0
