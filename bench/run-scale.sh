#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# How cost grows with the work: ./btrfs and Debian's btrfs-progs
# (/usr/bin/btrfs) in the same run, caches dropped before every timed
# command, along three curves.
#
#   files    the `small` tree of make bench at each size of SCALE_FILES:
#            send -f, receive -f, send | receive and --dump, and tar -x of
#            the same tree (the floor)
#   subvols  receive of an incremental onto a filesystem that holds each
#            number of subvolumes of SCALE_SUBVOLS: one with no changes
#            (start-up: finding the parent, the snapshot, the end) and one
#            of a night's changes
#   chain    SCALE_CHAIN nightly incrementals of a SCALE_TREE-file tree
#            (about 1% changed each night), received one after the other
#
# Every received tree is then checked against its source.  The tables go
# to bench/results/<date>-<host>-scale.md, the plots beside them (or, with
# BENCH_RESULTS=0, to stdout and the work directory).  Needs root.  See
# bench/README.md.
#
# Environment:
#   SCALE_FILES="25000 100000 400000"   sizes of the files curve
#   SCALE_SUBVOLS="0 1000 10000"        subvolumes on the target
#   SCALE_CHAIN=100                     nights of the chain
#   SCALE_TREE=20000                    files of the chain's and the
#                                       subvols curve's tree
#   SCALE_RUNS=1                        timed runs per tool and point
#   SCALE_SUBVOL_RUNS=5                 the same for the subvols curve,
#                                       whose receives take 0.02-0.1 s
#   SCALE_CURVES="files subvols chain"  which curves
#   BENCH_OURS, BENCH_REF, BENCH_TMP, BENCH_KEEP: as for bench/run-bench.sh
#   PLOT_PYTHON=/usr/bin/python3        a python with matplotlib
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
bench=$top/bench
ours=${BENCH_OURS:-$top/btrfs}
ref=${BENCH_REF:-/usr/bin/btrfs}
python=${PYTHON:-python3}
plot_python=${PLOT_PYTHON:-/usr/bin/python3}
files_sizes=${SCALE_FILES:-25000 100000 400000}
subvol_counts=${SCALE_SUBVOLS:-0 1000 10000}
nights=${SCALE_CHAIN:-100}
tree_files=${SCALE_TREE:-20000}
runs=${SCALE_RUNS:-1}
subvol_runs=${SCALE_SUBVOL_RUNS:-5}
curves=${SCALE_CURVES:-files subvols chain}
export TZ=UTC LC_ALL=C
. "$bench/lib.sh"

[ "$(id -u)" -eq 0 ] || die "run as root (loop devices, drop_caches)"
[ -x "$ours" ] || die "$ours is missing: run make first"
[ -x "$ref" ] || die "$ref is missing: apt-get install btrfs-progs"
[ -x /usr/bin/time ] || die "/usr/bin/time is missing: apt-get install time"
"$plot_python" -c 'import matplotlib' 2>/dev/null ||
	die "$plot_python has no matplotlib: apt-get install python3-matplotlib"
for n in $files_sizes $subvol_counts $nights $tree_files $runs $subvol_runs; do
	[[ $n =~ ^[0-9]+$ ]] || die "not a number: $n"
done

TEST_NAME=bench-scale WORK_NAME=btrfs-scale WORK_PARENT=${BENCH_TMP:-/tmp}
KEEP_WORK=${BENCH_KEEP:-}
. "$top/tests/lib.sh"
work=$WORK
src=$work/src
dst=$work/dst
streams=$work/streams
times=$work/times
tsv=$work/scale.tsv

has_curve() {
	[[ " $curves " == *" $1 "* ]]
}

bin_of() {
	if [ "$1" = ours ]; then echo "$ours"; else echo "$ref"; fi
}

# Alternate which tool goes first, from one run or point to the next.
order_of() {
	if (($1 % 2)); then echo "ours ref"; else echo "ref ours"; fi
}

# Busy jiffies of every CPU (user, nice, system, irq, softirq): what the
# commands, btrfs' worker threads and the loop device did.
busy_jiffies() {
	awk '/^cpu / { print $2 + $3 + $4 + $7 + $8; exit }' /proc/stat
}

# cpu_since J0: busy CPU seconds since busy_jiffies printed J0.
cpu_since() {
	awk -v a="$(busy_jiffies)" -v b="$1" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%.2f", (a - b) / hz }'
}

# record CURVE X OP TOOL RUN WALL USER SYS RSS CPU_ALL
record() {
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$tsv"
}

# timed CURVE X OP TOOL RUN CMD...: CMD under /usr/bin/time, with the busy
# CPU of the whole machine meanwhile; the sync after it is not timed.
timed() {
	local curve=$1 x=$2 op=$3 tool=$4 run=$5 tf j0 cpu rc=0
	shift 5
	tf=$times/$curve.$x.$op.$tool.$run
	j0=$(busy_jiffies)
	/usr/bin/time -f '%e %U %S %M' -o "$tf" "$@" || rc=$?
	cpu=$(cpu_since "$j0")
	sync
	[ "$rc" -eq 0 ] || die "$curve $x $op ($tool, run $run) failed with exit $rc: $*"
	# shellcheck disable=SC2046
	record "$curve" "$x" "$op" "$tool" "$run" $(time_of "$tf") "$cpu"
}

# timed_pipe X TOOL RUN DEST SNAPSHOT: send | receive, as a whole and
# each side on its own.
timed_pipe() {
	local x=$1 tool=$2 run=$3 dest=$4 snap=$5 bin tf j0 cpu rc=0
	local -a s r
	bin=$(bin_of "$tool")
	tf=$times/files.$x.pipe.$tool.$run
	j0=$(busy_jiffies)
	/usr/bin/time -f '%e %U %S %M' -o "$tf" bash -c '
		set -o pipefail
		/usr/bin/time -f "%e %U %S %M" -o "$1.send" "$2" send -q "$4" |
			/usr/bin/time -f "%e %U %S %M" -o "$1.recv" \
			"$2" receive -q "$3"' pipe "$tf" "$bin" "$dest" "$snap" ||
		rc=$?
	cpu=$(cpu_since "$j0")
	sync
	[ "$rc" -eq 0 ] || die "files $x pipe ($tool, run $run) failed with exit $rc"
	read -r -a s < <(time_of "$tf.send")
	read -r -a r < <(time_of "$tf.recv")
	local wall user sys rss
	read -r wall user sys rss < <(time_of "$tf")
	record files "$x" pipe "$tool" "$run" "$wall" \
		"$(awk -v a="${s[1]}" -v b="${r[1]}" 'BEGIN { print a + b }')" \
		"$(awk -v a="${s[2]}" -v b="${r[2]}" 'BEGIN { print a + b }')" \
		"$((s[3] > r[3] ? s[3] : r[3]))" "$cpu"
	record files "$x" pipe.send "$tool" "$run" "${s[@]}" -
	record files "$x" pipe.recv "$tool" "$run" "${r[@]}" -
}

# verify [--data-since NS] SOURCE TREE...: every TREE must equal SOURCE,
# which is read once.  A received tree keeps the mtime of the full receive
# on its top directory (see compare_opts in run-bench.sh) until a night
# changes its entries; the rest must be equal.
verify() {
	local out
	if out=$("$python" "$top/tests/tree-compare.py" --no-extents \
		--ignore .:mtime "$@" 2>&1); then
		return 0
	fi
	echo "$out" | grep -v ' entries equal$' | sed 's/^/    /' >&2
	log "verify of $*: FAILED"
	echo "$*" >>"$work/failed"
}

# tree_scale FILES: the --scale of make-datasets.py's small for FILES.
tree_scale() {
	awk -v n="$1" 'BEGIN { print n / 100000 }'
}

# The checks of a curve or of a point run in the background, beside the
# making of what comes next (untimed too); what is timed waits for them.
checking=
wait_checks() {
	[ -z "$checking" ] || wait "$checking" || true
	checking=
}

# fresh_dir DIR: DIR exists and holds no subvolume.
fresh_dir() {
	delete_subvols "$1"
	mkdir -p "$1"
}

# A received `small` tree keeps the receive's mtime on its top directory
# (see compare_opts in run-bench.sh); the rest must be equal.
files_point() {
	local n=$1 point=$2 snap=$src/snaps/t$1 run tool bin
	for ((run = 1; run <= runs; run++)); do
		log "files $n: run $run/$runs"
		for tool in $(order_of $((point + run))); do
			bin=$(bin_of "$tool")
			rm -f "$streams/t$n.sent"
			drop_caches
			timed files "$n" send "$tool" "$run" "$bin" send -q \
				-f "$streams/t$n.sent" "$snap"
			fresh_dir "$dst/$tool-file"
			drop_caches
			timed files "$n" receive "$tool" "$run" "$bin" receive -q \
				-f "$streams/t$n" "$dst/$tool-file"
			fresh_dir "$dst/$tool-pipe"
			drop_caches
			timed_pipe "$n" "$tool" "$run" "$dst/$tool-pipe" "$snap"
			drop_caches
			timed files "$n" dump "$tool" "$run" "$bin" receive --dump \
				-f "$streams/t$n" >/dev/null
		done
		fresh_dir "$dst/floor"
		"$ref" -q subvolume create "$dst/floor/t$n"
		prime "$work/t$n.tar"
		drop_caches
		timed files "$n" tar-x floor "$run" tar -x --xattrs \
			--xattrs-include='user.*' -f "$work/t$n.tar" -C "$dst/floor/t$n"
	done
}

curve_files() {
	local n point=0
	for n in $files_sizes; do
		point=$((point + 1))
		log "files $n: making the tree"
		"$ref" -q subvolume create "$src/t$n"
		"$python" "$bench/make-datasets.py" small "$src/t$n" \
			--scale "$(tree_scale "$n")" >/dev/null
		"$ref" -q subvolume snapshot -r "$src/t$n" "$src/snaps/t$n"
		"$ref" -q subvolume delete "$src/t$n" >/dev/null
		tar -c --xattrs --xattrs-include='user.*' -f "$work/t$n.tar" \
			-C "$src/snaps/t$n" .
		"$ref" -q send -f "$streams/t$n" "$src/snaps/t$n"
		wait_checks
		files_point "$n" "$point"
		check_files_point "$n" &
		checking=$!
	done
}

check_files_point() {
	local n=$1
	log "files $n: checking the received trees"
	verify "$src/snaps/t$n" "$dst"/ours-{file,pipe}/t"$n" &
	verify "$src/snaps/t$n" "$dst"/ref-{file,pipe}/t"$n"
	wait
	delete_subvols "$dst"/{ours,ref}-{file,pipe} "$dst/floor"
	"$ref" -q subvolume delete "$src/snaps/t$n" >/dev/null
	rm -f "$streams/t$n" "$streams/t$n.sent" "$work/t$n.tar"
}

# add_subvols DIR N: plain subvolumes in DIR until it holds N.
add_subvols() {
	"$python" - "$1" "$2" <<'PY'
import fcntl, os, struct, sys
BTRFS_IOC_SUBVOL_CREATE = 0x5000940E
d, want = sys.argv[1], int(sys.argv[2])
fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
for i in range(len(os.listdir(d)), want):
    args = bytearray(struct.pack("q4088s", 0, b"sv%05d" % i))
    fcntl.ioctl(fd, BTRFS_IOC_SUBVOL_CREATE, args)
PY
}

curve_subvols() {
	local n run tool bin op point=0
	log "subvols: making the trees"
	"$ref" -q subvolume create "$src/sv"
	"$python" "$bench/make-datasets.py" small "$src/sv" \
		--scale "$(tree_scale "$tree_files")" >/dev/null
	"$ref" -q subvolume snapshot -r "$src/sv" "$src/sv-snaps/base"
	"$ref" -q subvolume snapshot -r "$src/sv" "$src/sv-snaps/startup"
	"$python" "$bench/make-datasets.py" night "$src/sv" >/dev/null
	"$ref" -q subvolume snapshot -r "$src/sv" "$src/sv-snaps/total"
	"$ref" -q send -f "$streams/sv-base" "$src/sv-snaps/base"
	for op in startup total; do
		"$ref" -q send -f "$streams/sv-$op" -p "$src/sv-snaps/base" \
			"$src/sv-snaps/$op"
	done
	mkdir -p "$dst/sv-base" "$dst/many"
	"$ref" -q receive -f "$streams/sv-base" "$dst/sv-base"
	wait_checks
	for n in $subvol_counts; do
		point=$((point + 1))
		add_subvols "$dst/many" "$n"
		"$ref" -q filesystem sync "$dst"
		for ((run = 1; run <= subvol_runs; run++)); do
			log "subvols $n: run $run/$subvol_runs"
			for tool in $(order_of $((point + run))); do
				bin=$(bin_of "$tool")
				for op in startup total; do
					fresh_dir "$dst/sv-$tool-$op"
					drop_caches
					timed subvols "$n" "$op" "$tool" "$run" "$bin" \
						receive -q -f "$streams/sv-$op" \
						"$dst/sv-$tool-$op"
				done
			done
		done
	done
	# Each receive of a kind is of the same stream onto the same parent:
	# the last of each is checked.
	wait_checks
	log "subvols: checking the received trees"
	verify "$src/sv-snaps/startup" "$dst"/sv-{ours,ref}-startup/startup
	verify "$src/sv-snaps/total" "$dst"/sv-{ours,ref}-total/total
	delete_subvols "$dst"/sv-{ours,ref}-{startup,total} "$dst/sv-base" \
		"$dst/many"
}

curve_chain() {
	local i tool bin name prev
	log "chain: making $nights nights of a $tree_files-file tree"
	"$ref" -q subvolume create "$src/chain"
	"$python" "$bench/make-datasets.py" small "$src/chain" \
		--scale "$(tree_scale "$tree_files")" >/dev/null
	"$ref" -q subvolume snapshot -r "$src/chain" "$src/chain-snaps/c000"
	"$ref" -q send -f "$streams/c000" "$src/chain-snaps/c000"
	for ((i = 1; i <= nights; i++)); do
		name=$(printf 'c%03d' "$i")
		prev=$(printf 'c%03d' $((i - 1)))
		# The stamp is a file's ctime: the clock files are stamped with.
		touch "$streams/$name.since"
		"$python" "$bench/make-datasets.py" night "$src/chain" \
			--night "$i" >/dev/null
		"$ref" -q subvolume snapshot -r "$src/chain" \
			"$src/chain-snaps/$name"
		"$ref" -q send -f "$streams/$name" \
			-p "$src/chain-snaps/$prev" "$src/chain-snaps/$name"
	done
	wait_checks
	for tool in ours ref; do
		mkdir -p "$dst/chain-$tool"
		"$(bin_of "$tool")" -q receive -f "$streams/c000" "$dst/chain-$tool"
	done
	for ((i = 1; i <= nights; i++)); do
		name=$(printf 'c%03d' "$i")
		((i % 10 != 1)) || log "chain: nights $i-$((i + 9))"
		for tool in $(order_of "$i"); do
			bin=$(bin_of "$tool")
			drop_caches
			timed chain "$i" receive "$tool" 1 "$bin" receive -q \
				-f "$streams/$name" "$dst/chain-$tool"
		done
	done
	check_chain &
	checking=$!
}

# Each night of both chains against its source, four nights at a time.
# Every entry's metadata is compared each night; the content only of the
# files the night changed (their ctime is past its stamp), but all of it
# on the first, every tenth and the last night.  An unchanged file's
# content was checked on the night it last changed or at the start, and a
# receive that wrote it by mistake would leave a wrong mtime behind.
check_chain() {
	local i name n=0
	local -a since
	log "chain: checking the $((2 * nights + 2)) received trees"
	for ((i = 0; i <= nights; i++)); do
		name=$(printf 'c%03d' "$i")
		since=()
		if ((i % 10 && i != nights)); then
			since=(--data-since "$(stat -c %.9Z \
				"$streams/$name.since" | tr -d .)")
		fi
		verify "${since[@]}" "$src/chain-snaps/$name" \
			"$dst"/chain-{ours,ref}/"$name" &
		if ((++n % 4 == 0)); then wait; fi
	done
	wait
	delete_subvols "$dst"/chain-{ours,ref}
}

# ---- main ----
mkdir -p "$streams" "$times"
printf 'curve\tx\top\ttool\trun\twall\tuser\tsys\trss_kib\tcpu_all\n' >"$tsv"
t_start=$(now)
loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)
# The largest tree, four received copies of it and the tar floor.
max_files=$(echo "$files_sizes" | tr ' ' '\n' | sort -n | tail -1)
src_gib=$((8 + ${max_files:-0} * 2 / 100000))
dst_gib=$((8 + ${max_files:-0} * 6 / 100000))
log "work directory $work; source ${src_gib}G, destination ${dst_gib}G"
make_fs src "${src_gib}G"
make_fs dst "${dst_gib}G" prealloc
mkdir -p "$src/snaps" "$src/sv-snaps" "$src/chain-snaps"
for c in files chain subvols; do
	has_curve "$c" || continue
	"curve_$c"
done
wait_checks
t_total=$(since "$t_start" | cut -d. -f1)
log "done in $t_total s"

out=$work/scale.md
pngs=$work
if [ "${BENCH_RESULTS:-1}" != 0 ]; then
	out=$bench/results/$(date +%Y-%m-%d)-$(hostname -s)-scale.md
	pngs=$bench/results
	cp "$tsv" "${out%.md}.tsv"
fi
"$plot_python" "$bench/plot-scale.py" "$tsv" "$pngs" >"$work/plots.md"
{
	head -n 1 "$work/plots.md"
	echo
	echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), host $(hostname -s), kernel $(uname -r), $(nproc) cores"
	echo "- ours: \`$ours\` (git $(git -C "$top" describe --always --dirty 2>/dev/null || echo '?')); reference: \`$ref\` ($("$ref" --version 2>/dev/null | head -1))"
	echo "- SCALE_FILES=\"$files_sizes\", SCALE_SUBVOLS=\"$subvol_counts\", SCALE_CHAIN=$nights, SCALE_TREE=$tree_files, SCALE_RUNS=$runs, SCALE_SUBVOL_RUNS=$subvol_runs; whole run $t_total s; load average at start / end: $loadavg_start / $(cut -d' ' -f1-3 /proc/loadavg)"
	if [ -s "$work/failed" ]; then
		echo "- correctness: FAILED: $(wc -l <"$work/failed") check(s) of received trees"
	else
		echo "- correctness: every received tree equal to its source (tests/tree-compare.py)"
	fi
	tail -n +2 "$work/plots.md"
} >"$out"
[ "$out" != "$work/scale.md" ] || cat "$out"
log "results in $out"
if [ -s "$work/failed" ]; then
	die "$(wc -l <"$work/failed") check(s) of received trees FAILED"
fi
