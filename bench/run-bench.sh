#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Benchmark of ./btrfs send / receive against Debian's btrfs-progs
# (/usr/bin/btrfs): datasets on a loop btrfs, each sent to a file, received
# from that file, sent | received through a pipe and dumped, the two tools
# alternately, caches dropped before every timed command, into a separate
# loop btrfs.  Then the received trees are checked against their sources.
# Needs root.  See bench/README.md.
#
# Environment:
#   BENCH_SCALE=1       dataset size factor (0.1 for a quick run)
#   BENCH_RUNS=3        timed runs per tool and operation
#   BENCH_DUMP_REPEAT=3 dumps per tool in each run: a dump takes well under
#                       a second on some datasets, where one spell of the
#                       host moves a median of three
#   BENCH_DATASETS="big small sparse incr"   which ones to time
#   BENCH_RESULTS=1     also write bench/results/<date>-<hostname>.md and
#                       the ratios as a bar chart beside it (.png)
#   BENCH_OURS, BENCH_REF   the two binaries (./btrfs, /usr/bin/btrfs)
#   BENCH_TMP=/tmp      where the work directory (images, streams) goes
#   BENCH_KEEP=1        keep the work directory (not the mounts) at exit
#   BENCH_PROGRESS=1    ours sends and receives with --progress (status
#                       lines on stderr), to measure what --progress costs
#   BENCH_OPS="send receive pipe dump changes"   which operations to time
#   BENCH_MECHANISMS="NAME:DATASET:OP ..."  instead of ours against the
#                       reference: for each entry, ours against ours with
#                       BTRFS_MECHANISMS_OFF=NAME (one of its speed
#                       mechanisms off), OP of DATASET only; no floor
#   BENCH_WARM=1        the warm-cache pass: before every timed command the
#                       dataset's source and stream are read (every file,
#                       with its xattrs) instead of the caches dropped
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
bench=$top/bench
ours=${BENCH_OURS:-$top/btrfs}
ref=${BENCH_REF:-/usr/bin/btrfs}
scale=${BENCH_SCALE:-1}
runs=${BENCH_RUNS:-3}
dump_reps=${BENCH_DUMP_REPEAT:-3}
datasets=${BENCH_DATASETS:-big small sparse incr}
ops=${BENCH_OPS:-send receive pipe dump changes}
mechanisms=${BENCH_MECHANISMS:-}
python=${PYTHON:-python3}
export TZ=UTC LC_ALL=C
. "$bench/lib.sh"


[ "$(id -u)" -eq 0 ] || die "run as root (loop devices, drop_caches)"
[ -x "$ours" ] || die "$ours is missing: run make first"
[ -x "$ref" ] || die "$ref is missing: apt-get install btrfs-progs"
[ -x /usr/bin/time ] || die "/usr/bin/time is missing: apt-get install time"
for t in losetup mkfs.btrfs mountpoint tar fallocate "$python"; do
	command -v "$t" >/dev/null || die "$t is missing"
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer"
[[ $dump_reps =~ ^[1-9][0-9]*$ ]] ||
	die "BENCH_DUMP_REPEAT must be a positive integer"
"$python" -c "import sys; s = float(sys.argv[1]); assert 0 < s <= 10" \
	"$scale" 2>/dev/null || die "BENCH_SCALE must be in (0, 10]"
for d in $datasets; do
	case $d in big | small | sparse | incr) ;;
	*) die "unknown dataset $d (big small sparse incr)" ;;
	esac
done

# The loop images, their mounts and the cleanup at exit.
TEST_NAME=bench WORK_NAME=btrfs-bench WORK_PARENT=${BENCH_TMP:-/tmp}
KEEP_WORK=${BENCH_KEEP:-}
. "$top/tests/lib.sh"
work=$WORK
src=$work/src
dst=$work/dst
streams=$work/streams
times=$work/times
tsv=$work/results.tsv
manifest=$work/manifest.json

# record DATASET OP TOOL RUN WALL USER SYS RSS SYNC
record() {
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$tsv"
}

# timed DATASET OP TOOL RUN CMD...: run CMD under /usr/bin/time, then time
# the sync that writes back what it left dirty; record both.  The wall
# time is taken to the millisecond around it: time(1)'s 10 ms are a tenth
# of a cold dump of sparse.
timed() {
	local ds=$1 op=$2 tool=$3 run=$4 tf t0 rc=0 wall user sys rss
	shift 4
	tf=$times/$ds.$op.$tool.$run
	t0=$(now)
	/usr/bin/time -f '%e %U %S %M' -o "$tf" "$@" || rc=$?
	wall=$(since "$t0")
	t0=$(now)
	sync
	[ "$rc" -eq 0 ] || die "$ds $op ($tool, run $run) failed with exit $rc: $*"
	read -r _ user sys rss < <(time_of "$tf")
	record "$ds" "$op" "$tool" "$run" "$wall" "$user" "$sys" "$rss" \
		"$(since "$t0")"
}

# timed_pipe DATASET TOOL RUN BIN DEST SENDARGS...: BIN send | BIN receive,
# the pipeline timed as a whole and each side on its own.
timed_pipe() {
	local ds=$1 tool=$2 run=$3 bin=$4 dest=$5 tf t0 rc=0
	shift 5
	tf=$times/$ds.pipe.$tool.$run
	/usr/bin/time -f '%e %U %S %M' -o "$tf" bash -c '
		set -o pipefail
		tf=$1 bin=$2 dest=$3
		shift 3
		/usr/bin/time -f "%e %U %S %M" -o "$tf.send" "$bin" send -q \
			$PROGRESS_OPT "$@" |
			/usr/bin/time -f "%e %U %S %M" -o "$tf.recv" \
			"$bin" receive -q $PROGRESS_OPT "$dest"' \
		pipe "$tf" "$bin" "$dest" "$@" ||
		rc=$?
	t0=$(now)
	sync
	[ "$rc" -eq 0 ] || die "$ds pipe ($tool, run $run) failed with exit $rc"
	local sync_s wall user sys rss s r
	sync_s=$(since "$t0")
	read -r wall user sys rss < <(time_of "$tf")
	read -r -a s < <(time_of "$tf.send")
	read -r -a r < <(time_of "$tf.recv")
	# The whole: wall of the pipeline, CPU of both sides, the larger RSS.
	rss=$((s[3] > r[3] ? s[3] : r[3]))
	record "$ds" pipe "$tool" "$run" "$wall" "$user" "$sys" "$rss" "$sync_s"
	record "$ds" pipe.send "$tool" "$run" "${s[@]}" "$sync_s"
	record "$ds" pipe.recv "$tool" "$run" "${r[@]}" "$sync_s"
}

# The --progress option of BENCH_PROGRESS=1, for ours only.
export PROGRESS_OPT=
progress_opt() {
	[ "$1" = ours ] && [ -n "${BENCH_PROGRESS:-}" ] &&
		[ "$BENCH_PROGRESS" != 0 ] && echo --progress
	return 0
}

has_op() {
	[[ " $ops " == *" $1 "* ]]
}

# order_of N: which tool goes first in the Nth turn, alternating.
order_of() {
	if (($1 % 2)); then echo "ours ref"; else echo "ref ours"; fi
}

bin_of() {
	if [ "$1" = ours ]; then echo "$ours"; else echo "$ref"; fi
}

send_args() {
	case $1 in
	incr) echo "-p $src/snaps/small -c $src/snaps/big $src/snaps/incr" ;;
	*) echo "$src/snaps/$1" ;;
	esac
}

# Options of tree-compare.py per dataset.  Extents (FIEMAP shared flags)
# are compared only where source and destination share the same history:
# the source snapshots of big and small share extents with incr, the
# received copies share nothing.  The root of small keeps the receive's
# wall-clock mtime, with either tool: the kernel's full stream sets the
# root's times early, then creates entries there under orphan names and
# renames them away, and sends no utimes for the root again.
compare_opts() {
	case $1 in
	small) echo "--no-extents --ignore .:mtime" ;;
	sparse | incr) echo "" ;;
	*) echo "--no-extents" ;;
	esac
}

verify() {
	local ds=$1 what=$2 tree=$3 out
	# shellcheck disable=SC2046
	if out=$("$python" "$top/tests/tree-compare.py" $(compare_opts "$ds") \
		"$src/snaps/$ds" "$tree" 2>&1); then
		log "verify $ds $what: ok (${out##*: })"
	else
		echo "$out" | sed 's/^/    /' >&2
		log "verify $ds $what: FAILED"
		echo "$ds $what" >>"$work/failed"
	fi
}

# ready DATASET: the state every timed command starts from.  Reading the
# reference's stream first is no cache for the command (the caches are
# dropped right after) but makes the machine's state the same for both
# tools: see prime().
ready() {
	prime "$streams/$1.ref"
	if warm; then
		warm_up "$1"
	else
		drop_caches
	fi
}

warm() {
	[ -n "${BENCH_WARM:-}" ] && [ "$BENCH_WARM" != 0 ]
}

# warm_up DATASET: the source trees a send of DATASET reads, in the cache.
warm_up() {
	local d
	sync
	for d in $(send_args "$1"); do
		[ -d "$d" ] || continue
		tar -c --xattrs --xattrs-include='*' -f - -C "$d" . >/dev/null
	done
}

verify_streams() {
	local ds=$1
	if cmp -s "$streams/$ds.ours.sent" "$streams/$ds.ref" &&
		cmp -s "$streams/$ds.ref.sent" "$streams/$ds.ref"; then
		log "verify $ds: our stream is byte-identical to the reference's"
	else
		log "verify $ds: our stream DIFFERS from the reference's:" \
			"$(cmp "$streams/$ds.ours.sent" "$streams/$ds.ref" 2>&1 |
				head -1)"
		echo "$ds stream" >>"$work/failed"
	fi
}

# What changed, listed by ours (send --changes) against the reference's
# no-data stream of the same send, which is what ours reads and more: on
# the full send of small (every name new) and on incr.
has_changes() {
	[ "$1" = small ] || [ "$1" = incr ]
}

changes_args() {
	if [ "$1" = ours ]; then
		echo send --changes
	else
		echo send -q --no-data
	fi
}

bench_dataset() {
	local ds=$1 run tool order args bin d k n
	# shellcheck disable=SC2207
	args=($(send_args "$ds"))
	mkdir -p "$dst/$ds"
	if [ "$ds" = incr ]; then
		# The receiver's side of an incremental: the parent (small) and
		# the clone source (big), received once with the reference.
		log "incr: receiving the bases (small, big) with the reference"
		mkdir -p "$dst/base"
		for d in big small; do
			[ -s "$streams/$d.ref" ] ||
				"$ref" -q send -f "$streams/$d.ref" "$src/snaps/$d"
			"$ref" -q receive -f "$streams/$d.ref" "$dst/base"
		done
	fi
	# The stream that both tools receive and dump, sent once untimed by
	# the reference (which also primes the source).
	[ -s "$streams/$ds.ref" ] ||
		"$ref" -q send -f "$streams/$ds.ref" "${args[@]}"
	for ((run = 1; run <= runs; run++)); do
		order=$(order_of "$run")
		log "$ds: run $run/$runs ($order)"
		has_op send && for tool in $order; do
			bin=$(bin_of "$tool")
			rm -f "$streams/$ds.$tool.sent"
			ready "$ds"
			PROGRESS_OPT=$(progress_opt "$tool")
			timed "$ds" send "$tool" "$run" "$bin" send -q $PROGRESS_OPT \
				-f "$streams/$ds.$tool.sent" "${args[@]}"
		done
		has_op receive && for tool in $order; do
			bin=$(bin_of "$tool")
			d=$dst/$ds/$tool-file
			delete_subvols "$d"
			mkdir -p "$d"
			ready "$ds"
			PROGRESS_OPT=$(progress_opt "$tool")
			timed "$ds" receive "$tool" "$run" "$bin" receive -q $PROGRESS_OPT \
				-f "$streams/$ds.ref" "$d"
		done
		has_op pipe && for tool in $order; do
			bin=$(bin_of "$tool")
			d=$dst/$ds/$tool-pipe
			delete_subvols "$d"
			mkdir -p "$d"
			ready "$ds"
			PROGRESS_OPT=$(progress_opt "$tool")
			timed_pipe "$ds" "$tool" "$run" "$bin" "$d" "${args[@]}"
		done
		has_op dump && for ((k = 1; k <= dump_reps; k++)); do
			n=$(((run - 1) * dump_reps + k))
			for tool in $(order_of "$n"); do
				bin=$(bin_of "$tool")
				ready "$ds"
				timed "$ds" dump "$tool" "$n" "$bin" receive \
					--dump -f "$streams/$ds.ref" >/dev/null
			done
		done
		has_op changes && has_changes "$ds" && for tool in $order; do
			bin=$(bin_of "$tool")
			ready "$ds"
			timed "$ds" changes "$tool" "$run" "$bin" \
				$(changes_args "$tool") "${args[@]}" >/dev/null
		done
	done
	stat -c %s "$streams/$ds.ref" >"$work/$ds.stream-bytes"
	# send --estimate of the same arguments, against the real size.
	"$ours" send --estimate -q "${args[@]}" >"$work/$ds.estimate-bytes" ||
		echo "estimate of $ds failed" >>"$work/failed"
	# Correctness, after the timed runs: the same stream from both send
	# implementations, every received tree equal to its source.
	has_op send && verify_streams "$ds"
	# Two tree comparisons at a time, one per core.
	local tool kind
	for tool in ours ref; do
		for kind in file pipe; do
			[ -d "$dst/$ds/$tool-$kind/$ds" ] || continue
			verify "$ds" "$tool receive ($kind)" \
				"$dst/$ds/$tool-$kind/$ds" &
		done
		wait
	done
	delete_subvols "$dst/$ds"/*
	[ "$ds" != incr ] || delete_subvols "$dst/base"
	rm -f "$streams/$ds".*.sent
	# Keep the reference's streams of big and small for incr's bases.
	case $ds in big | small) ;;
	*) rm -f "$streams/$ds.ref" ;;
	esac
}

# The physical floor on the destination: sequential write of the big
# files (from the page cache) with fsync, and the small tree extracted
# with tar (from disk, caches dropped); the source read with cat.
bench_floor() {
	local run bytes
	bytes=$(stat -c %s "$src"/snaps/big/* | awk '{ n += $1 } END { printf "%.0f\n", n }')
	for ((run = 1; run <= runs; run++)); do
		log "floor: run $run/$runs"
		rm -f "$dst/floor.bin"
		prime "$src"/snaps/big/*
		drop_caches
		timed floor read-big - "$run" \
			bash -c 'cat "$@" >/dev/null' - "$src"/snaps/big/*
		prime "$src"/snaps/big/*
		timed floor write-big - "$run" bash -c \
			'cat "$@" | dd of="$0" bs=1M iflag=fullblock conv=fsync status=none' \
			"$dst/floor.bin" "$src"/snaps/big/*
		rm -f "$dst/floor.bin"
		delete_subvols "$dst/floor"
		mkdir -p "$dst/floor"
		"$ref" -q subvolume create "$dst/floor/tar"
		prime "$work/small.tar"
		drop_caches
		timed floor tar-x-small - "$run" tar -x --xattrs \
			--xattrs-include='user.*' -f "$work/small.tar" \
			-C "$dst/floor/tar"
		delete_subvols "$dst/floor"
		"$ref" -q subvolume create "$dst/floor/tar"
		prime "$work/small-inode-order.tar"
		drop_caches
		timed floor tar-x-small-inode-order - "$run" tar -x --xattrs \
			--xattrs-include='user.*' \
			-f "$work/small-inode-order.tar" -C "$dst/floor/tar"
	done
	delete_subvols "$dst/floor"
	echo "$bytes" >"$work/floor.big-bytes"
	stat -c %s "$work/small.tar" >"$work/floor.tar-bytes"
}

# Each mechanism on ("ours") against off ("ref", ours with
# BTRFS_MECHANISMS_OFF naming it), on its target: medians of wall time,
# of wall + the sync after and of CPU time, each side's range, and whether
# the ranges are apart.
bench_mechanisms() {
	local m name ds op out=/dev/stdout
	for m in $mechanisms; do
		IFS=: read -r name ds op <<<"$m"
		ref=$work/off-$name
		printf '#!/bin/sh\nBTRFS_MECHANISMS_OFF=%s exec %s "$@"\n' \
			"$name" "$ours" >"$ref"
		chmod +x "$ref"
		ops=$op
		tsv=$work/mechanism-$name.tsv
		log "mechanism $name: $op of $ds, on against off"
		bench_dataset "$ds"
	done
	if [ -n "${BENCH_RESULTS:-}" ] && [ "$BENCH_RESULTS" != 0 ]; then
		out=$bench/results/$(date +%Y-%m-%d)-$(hostname -s)-mechanisms.md
	fi
	"$python" "$bench/report.py" --mechanisms "$work"/mechanism-*.tsv \
		--runs "$runs" --scale "$scale" >"$out"
	[ ! -s "$work/failed" ] || die "correctness checks FAILED: $(cat "$work/failed")"
}

# ---- main ----
mkdir -p "$streams" "$times"
: >"$tsv"
echo '{}' >"$manifest"
t_start=$(now)
# Other work on the machine skews the numbers: the report shows the load.
loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)

# Peak use at full scale: about 4 GiB on the source, 14 GiB on the
# destination (four received copies of big, the bases of incr).
src_gib=$("$python" -c "import math,sys; print(max(6, math.ceil(8 * float(sys.argv[1]))))" "$scale")
dst_gib=$("$python" -c "import math,sys; print(max(4, math.ceil(20 * float(sys.argv[1]))))" "$scale")
log "work directory $work; source btrfs image ${src_gib}G (sparse), destination ${dst_gib}G (preallocated)"
make_fs src "${src_gib}G"
make_fs dst "${dst_gib}G" prealloc

# ---- datasets, all on the source filesystem, so that incr can reflink
# from big; each filled in a subvolume, then snapshotted read-only.
log "making datasets (scale $scale)"
mkdir -p "$src/snaps"
for d in big small sparse; do
	"$ref" -q subvolume create "$src/$d"
	"$python" "$bench/make-datasets.py" "$d" "$src/$d" --scale "$scale" \
		--manifest "$manifest" >/dev/null
	sync
	"$ref" -q subvolume snapshot -r "$src/$d" "$src/snaps/$d"
done
"$python" "$bench/make-datasets.py" incr "$src/small" --scale "$scale" \
	--big "$src/snaps/big" --manifest "$manifest" >/dev/null
sync
"$ref" -q subvolume snapshot -r "$src/small" "$src/snaps/incr"
for d in big small sparse; do
	"$ref" -q subvolume delete "$src/$d" >/dev/null
done
wait_cleaner "$src"
log "tar of the small tree, for the floor"
tar -c --xattrs --xattrs-include='user.*' -f "$work/small.tar" \
	-C "$src/snaps/small" .
# The same entries in inode-number order: the order in which a full send
# makes them, which a receive has to follow.
(cd "$src/snaps/small" && find . -mindepth 1 -printf '%i %p\0' |
	sort -z -n | cut -z -d' ' -f2-) >"$work/small.inode-order"
tar -c --xattrs --xattrs-include='user.*' -f "$work/small-inode-order.tar" \
	-C "$src/snaps/small" --no-recursion --null -T "$work/small.inode-order"
drop_caches
log "datasets ready in $(since "$t_start" | cut -d. -f1) s"

if [ -n "$mechanisms" ]; then
	bench_mechanisms
	exit
fi
# The floor is that of send and receive; a run of dumps alone skips it.
if has_op send || has_op receive || has_op pipe; then
	bench_floor
fi
for ds in $datasets; do
	bench_dataset "$ds"
done

t_total=$(since "$t_start" | cut -d. -f1)
log "done in $t_total s"

loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)
report_args=(--loadavg "$loadavg_start / $loadavg_end" --tsv "$tsv" --manifest "$manifest" --work "$work"
	--scale "$scale" --runs "$runs" --dump-repeat "$dump_reps"
	--ours "$ours" --ref "$ref" --total-seconds "$t_total")
! warm || report_args+=(--warm)
[ -s "$work/failed" ] && report_args+=(--failed "$work/failed")
if [ -n "${BENCH_RESULTS:-}" ] && [ "$BENCH_RESULTS" != 0 ]; then
	mkdir -p "$bench/results"
	# A reduced scale is named as such: it never replaces a full run.
	out=$bench/results/$(date +%Y-%m-%d)-$(hostname -s)
	[ "$scale" = 1 ] || out+=-scale$scale
	[ -z "$(progress_opt ours)" ] || out+=-progress
	! warm || out+=-warm
	out+=.md
	# The ratio table as a bar chart too: a python with matplotlib.
	"${PLOT_PYTHON:-/usr/bin/python3}" "$bench/report.py" "${report_args[@]}" \
		--output "$out" --chart "${out%.md}.png"
	log "results written to $out"
else
	"$python" "$bench/report.py" "${report_args[@]}"
fi

if [ -s "$work/failed" ]; then
	log "$(wc -l <"$work/failed") correctness check(s) FAILED:"
	sed 's/^/    /' "$work/failed" >&2
	exit 1
fi
log "all received trees equal their sources"
