#!/bin/bash
# Streams made now, on a loop btrfs, by Debian's btrfs send: our --dump
# equals the reference's.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/dump-compare.sh"

require "Debian's btrfs-progs ($REF)" have_reference
require "root with btrfs and loop devices" have_root_and_btrfs

if ! "$TOP/tests/streams/make-corpus.sh" "$WORK/fresh" >"$WORK/corpus.log" 2>&1; then
	fail "make-corpus.sh failed:"
	tail -20 "$WORK/corpus.log" >&2
	finish
fi
count=0
for s in "$WORK"/fresh/*.stream; do
	compare_dump "$s"
	count=$((count + 1))
done
check "fresh corpus has streams ($count)" [ "$count" -ge 20 ]
finish
