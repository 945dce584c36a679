#!/bin/bash
# The cookbook's btrbk recipe (README, COOKBOOK in the man pages), with a
# lockfile and long timestamps of its own: btrbk, Debian's package,
# unchanged, with this btrfs first on PATH: a full
# and two incremental backups.  Its send and receive are ours (a wrapper
# logs each call); its other btrfs commands reach btrfs-progs by hand-off.
. "$(dirname "$0")/recv-lib.sh"

require "root with btrfs and loop devices" have_loop_btrfs
require "Debian's btrfs-progs ($REF)" have_reference
require "btrbk (Debian package btrbk)" command -v btrbk

make_fs src 1G && make_fs dst 1G || { fail "cannot make filesystems"; finish; }
SRC=$WORK/src
DST=$WORK/dst
mkdir -p "$WORK/bin" "$SRC/snaps" "$DST/backup"
cat >"$WORK/bin/btrfs" <<WRAP
#!/bin/bash
echo "\$*" >>"$WORK/calls.log"
exec "$OURS" "\$@"
WRAP
chmod +x "$WORK/bin/btrfs"
cat >"$WORK/btrbk.conf" <<CONF
timestamp_format        long-iso
snapshot_preserve_min   all
target_preserve_min     all
lockfile                $WORK/btrbk.lock
volume $SRC
  snapshot_dir snaps
  subvolume data
    target send-receive $DST/backup
CONF

"$REF" -q subvolume create "$SRC/data"
"$PYTHON" - "$SRC/data" <<'PY'
import os, random, sys
rng = random.Random(3)
for d in range(5):
    os.makedirs(os.path.join(sys.argv[1], "d%d" % d))
    for f in range(20):
        with open(os.path.join(sys.argv[1], "d%d" % d, "f%d" % f), "wb") as fh:
            fh.write(rng.randbytes(rng.randrange(0, 20000)))
PY

backup() {
	local what=$1
	PATH="$WORK/bin:$PATH" btrbk -c "$WORK/btrbk.conf" run >"$WORK/btrbk.out" 2>&1
	local rc=$?
	check "btrbk $what backup exits 0" [ "$rc" -eq 0 ]
	[ "$rc" -eq 0 ] || tail -20 "$WORK/btrbk.out" >&2
	sleep 1.1
}

backup full
echo "new" >"$SRC/data/d0/new"
mv "$SRC/data/d1" "$SRC/data/d1-moved"
backup "first incremental"
rm -r "$SRC/data/d2"
head -c 100000 /dev/urandom >>"$SRC/data/d3/f1"
backup "second incremental"

mapfile -t backups < <(ls "$DST/backup")
check "three backups made (${#backups[@]})" [ "${#backups[@]}" -eq 3 ]
check "btrbk used our send" grep -q '^send ' "$WORK/calls.log"
check "btrbk used our receive" grep -q '^receive ' "$WORK/calls.log"
check "btrbk sent incrementally with -p" grep -qE '^send .*-p ' "$WORK/calls.log"
for i in "${!backups[@]}"; do
	b=${backups[i]}
	show=$("$REF" subvolume show "$DST/backup/$b")
	check "$b: read-only" grep -qP '^\tFlags:\s+readonly' <<<"$show"
	check "$b: received uuid set" grep -qP '^\tReceived UUID:\s+[0-9a-f-]{36}$' <<<"$show"
	if [ "$i" -eq 0 ]; then
		check "$b: no parent uuid (full)" grep -qP '^\tParent UUID:\s+-$' <<<"$show"
	else
		check "$b: parent uuid set (incremental)" grep -qP '^\tParent UUID:\s+[0-9a-f-]{36}$' <<<"$show"
	fi
	compare_trees "$b" "$SRC/snaps/$b" "$DST/backup/$b" --no-extents --no-atime
done
check "no ERROR line from receive" bash -c "! grep -q '^ERROR' '$WORK/btrbk.out'"
finish
