#!/bin/bash
# Run every integration test (tests/test-*.sh, or those named) and
# summarize.  Exit status 0 only if none failed.  A test exits 77 to skip,
# which tests/lib.sh allows only outside CI.  Off a terminal (CI), each
# test has TEST_TIMEOUT seconds.
set -u
cd "$(dirname "$0")/.." || exit 1

tests=("$@")
[ ${#tests[@]} -eq 0 ] && tests=(tests/test-*.sh)
# The longest test takes about 2 minutes on a slow machine.
TEST_TIMEOUT=${TEST_TIMEOUT:-900}
failed=()
skipped=()
for t in "${tests[@]}"; do
	echo "== $t"
	start=$(date +%s)
	# A test that hangs fails alone instead of stopping the whole run.
	# On a terminal, Ctrl-C must reach the test: timeout would take it
	# out of the terminal's foreground process group.
	if [ -t 0 ]; then
		"$t"
	else
		timeout -k 30 "$TEST_TIMEOUT" "$t"
	fi
	rc=$?
	echo "   ($(($(date +%s) - start)) s)"
	[ $rc -eq 124 ] && echo "   timed out after $TEST_TIMEOUT s"
	case $rc in
	0) ;;
	77) skipped+=("$t") ;;
	*) failed+=("$t") ;;
	esac
done
echo "== ${#tests[@]} integration tests: ${#failed[@]} failed, ${#skipped[@]} skipped"
[ ${#skipped[@]} -gt 0 ] && echo "skipped: ${skipped[*]}"
if [ ${#failed[@]} -gt 0 ]; then
	echo "failed: ${failed[*]}"
	exit 1
fi
exit 0
