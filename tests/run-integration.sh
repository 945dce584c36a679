#!/bin/bash
# Run every integration test (tests/test-*.sh, or those named) and
# summarize.  Exit status 0 only if none failed.  A test exits 77 to skip,
# which tests/lib.sh allows only outside CI.
set -u
cd "$(dirname "$0")/.." || exit 1

tests=("$@")
[ ${#tests[@]} -eq 0 ] && tests=(tests/test-*.sh)
failed=()
skipped=()
for t in "${tests[@]}"; do
	echo "== $t"
	start=$(date +%s)
	"$t"
	rc=$?
	echo "   ($(($(date +%s) - start)) s)"
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
