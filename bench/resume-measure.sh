#!/bin/bash
# What resuming saves: a dataset of 4 x 512 MiB incompressible files sent
# whole (send | receive), against resuming at 50% and at 90% of the
# stream (send --resume | receive): time and bytes.  Needs root, loop
# devices; run from the top of the checkout after make.
. "$(dirname "$0")/../tests/recv-lib.sh"

require "root with btrfs and loop devices" have_loop_btrfs
make_fs src 4G && make_fs dst 8G || exit 1
SRC=$WORK/src DST=$WORK/dst
"$REF" -q subvolume create "$SRC/data"
for i in 1 2 3 4; do
	openssl enc -aes-128-ctr -nosalt -pass pass:"seed$i" -pbkdf2 \
		</dev/zero 2>/dev/null | head -c 512M >"$SRC/data/f$i"
done
sync
"$REF" -q subvolume snapshot -r "$SRC/data" "$SRC/snap"
"$OURS" send -q -f "$WORK/full.stream" "$SRC/snap"
SIZE=$(stat -c %s "$WORK/full.stream")

secs() {
	local t0 t1
	t0=$(date +%s.%N)
	"$@"
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc
}
pipe_full() {
	"$OURS" send -q "$SRC/snap" | "$OURS" receive -q "$DST" && sync -f "$DST"
}
pipe_resume() {
	"$OURS" send -q --resume "$TOKEN" "$SRC/snap" |
		"$OURS" receive -q "$DST" && sync -f "$DST"
}

sync; echo 3 >/proc/sys/vm/drop_caches
T_FULL=$(secs pipe_full)
printf 'full:      %12d bytes  %6.2f s\n' "$SIZE" "$T_FULL"
# Wait for the cleaner: the space of a deleted subvolume comes back late.
drop_snap() {
	"$REF" -q subvolume delete "$DST/snap" >/dev/null
	"$REF" subvolume sync "$DST" >/dev/null 2>&1
}
drop_snap
for pct in 50 90; do
	head -c $((SIZE * pct / 100)) "$WORK/full.stream" |
		"$OURS" receive -q "$DST" 2>"$WORK/cut.err"
	grep -v "^ERROR: stream offset .*truncated command" "$WORK/cut.err" >&2
	sync -f "$DST"
	TOKEN=$("$OURS" receive --resume-token "$DST/snap")
	BYTES=$("$OURS" send -q --resume "$TOKEN" "$SRC/snap" | wc -c)
	sync; echo 3 >/proc/sys/vm/drop_caches
	T=$(secs pipe_resume)
	[ -e "$DST/.snap.btrfs-receive-resume" ] && echo "resume failed" >&2
	cmp <(cd "$SRC/snap" && md5sum f1 f2 f3 f4) \
	    <(cd "$DST/snap" && md5sum f1 f2 f3 f4) >/dev/null ||
		echo "trees differ" >&2
	printf 'resume at %d%%: %12d bytes  %6.2f s  (saved %d bytes, %.2f s)\n' \
		"$pct" "$BYTES" "$T" $((SIZE - BYTES)) "$(echo "$T_FULL - $T" | bc)"
	drop_snap
done
