# SPDX-License-Identifier: GPL-2.0-only
# Shared helpers of the integration tests; source it, then call tests.
set -u

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# BTRFS_BIN selects another build, e.g. the sanitizer one.
OURS="${BTRFS_BIN:-$TOP/btrfs}"
REF=/usr/bin/btrfs
SHARED_STREAMS="$TOP/../shared/streams/external"
# The dump prints local time: pin it so that both tools agree.
export TZ=UTC
PYTHON=${PYTHON:-python3}

TEST_NAME=$(basename "$0" .sh)
FAILURES=0
CHECKS=0

WORK=$(mktemp -d "/tmp/${TEST_NAME}.XXXXXX")
cleanup_work() {
	rm -rf "$WORK"
}
trap cleanup_work EXIT

fail() {
	FAILURES=$((FAILURES + 1))
	echo "FAIL: $TEST_NAME: $*" >&2
}

pass() {
	CHECKS=$((CHECKS + 1))
	[ -n "${TEST_VERBOSE:-}" ] && echo "ok: $*"
	return 0
}

check() {
	local what=$1
	shift
	if "$@"; then
		pass "$what"
	else
		fail "$what"
	fi
}

# A missing prerequisite is a skip on a developer machine, a failure in CI.
require() {
	local what=$1
	shift
	if ! "$@" >/dev/null 2>&1; then
		if [ -n "${CI:-}" ]; then
			echo "FAIL: $TEST_NAME: $what is required in CI" >&2
			exit 1
		fi
		echo "SKIP: $TEST_NAME: $what is not available" >&2
		exit 77
	fi
}

have_reference() {
	[ -x "$REF" ] && "$REF" version | grep -q 'btrfs-progs'
}

have_root_and_btrfs() {
	[ "$(id -u)" -eq 0 ] && grep -qw btrfs /proc/filesystems ||
		modprobe btrfs
}

finish() {
	if [ "$FAILURES" -gt 0 ]; then
		echo "$TEST_NAME: $FAILURES failed, $CHECKS passed" >&2
		exit 1
	fi
	echo "$TEST_NAME: $CHECKS checks passed"
	exit 0
}
