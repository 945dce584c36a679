#!/bin/bash
# Our --dump of every committed stream and every external stream equals
# Debian's btrfs receive --dump, byte for byte.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/dump-compare.sh"

require "Debian's btrfs-progs ($REF)" have_reference

for s in "$TOP"/tests/streams/*.stream; do
	compare_dump "$s"
done
if [ -d "$SHARED_STREAMS" ]; then
	for s in "$SHARED_STREAMS"/*; do
		case "$s" in
		*.txt|*LICENSE*) continue ;;
		esac
		compare_dump "$s"
	done
elif [ -n "${CI:-}" ]; then
	fail "external streams not found at $SHARED_STREAMS"
fi
finish
