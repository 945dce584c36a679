#!/bin/bash
# The recipes of the README's cookbook (and of the man pages' COOKBOOK),
# run as written: over ssh (a real sshd on 127.0.0.1 with a key made here,
# whose sessions find this btrfs first on PATH) with progress and a known
# total; an incremental cut off on its way through ssh, then resumed over
# ssh; a full and an incremental backup into files on ext4, checked and
# restored; what changed between the snapshots, from them and from the
# stream file.  The btrbk recipe is tests/test-btrbk.sh.
. "$(dirname "$0")/recv-lib.sh"

require "root with btrfs and loop devices" have_loop_btrfs
require "Debian's btrfs-progs ($REF)" have_reference
require "sshd and ssh (Debian packages openssh-server, openssh-client)" \
	command -v /usr/sbin/sshd ssh ssh-keygen
require "mkfs.ext4 (Debian package e2fsprogs)" command -v mkfs.ext4

make_fs src 1G && make_fs backup 1G && make_fs restore 1G &&
	make_loop_fs ext4 "$WORK/disk.img" 512M "$WORK/disk" noatime ||
	{ fail "cannot make the filesystems"; finish; }
SRC=$WORK/src
BACKUP=$WORK/backup
DISK=$WORK/disk

# ------------------------------------------------------------ sshd
# A host key, a client key, and the remote PATH pointing at this btrfs:
# the recipes say "ssh backup btrfs receive", as a user types them.
start_sshd() {
	local d=$WORK/ssh port
	mkdir -p "$d/bin" && ln -s "$OURS" "$d/bin/btrfs" || return 1
	ssh-keygen -q -t ed25519 -N '' -f "$d/host_key" &&
		ssh-keygen -q -t ed25519 -N '' -f "$d/id" || return 1
	cp "$d/id.pub" "$d/authorized_keys"
	port=$("$PYTHON" -c 'import socket; s = socket.socket()
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	cat >"$d/sshd_config" <<-EOF
		ListenAddress 127.0.0.1
		Port $port
		HostKey $d/host_key
		AuthorizedKeysFile $d/authorized_keys
		PermitRootLogin prohibit-password
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		UsePAM no
		StrictModes no
		PidFile $d/sshd.pid
		SetEnv PATH=$d/bin:/usr/sbin:/usr/bin:/sbin:/bin
	EOF
	cat >"$d/config" <<-EOF
		Host backup
		  HostName 127.0.0.1
		  Port $port
		  User root
		  IdentityFile $d/id
		  IdentitiesOnly yes
		  StrictHostKeyChecking no
		  UserKnownHostsFile /dev/null
		  LogLevel ERROR
		  BatchMode yes
	EOF
	# sshd's privilege separation directory, as its service makes it.
	[ -d /run/sshd ] || { mkdir -m 755 /run/sshd && at_exit "rmdir /run/sshd"; }
	/usr/sbin/sshd -f "$d/sshd_config" -E "$d/sshd.log" || return 1
	at_exit 'kill "$(cat "$WORK/ssh/sshd.pid")"'
	for _ in $(seq 50); do
		ssh backup true 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

ssh() {
	command ssh -F "$WORK/ssh/config" "$@"
}
btrfs() {
	"$OURS" "$@"
}

start_sshd || { fail "cannot start sshd: $(tail -3 "$WORK/ssh/sshd.log")"; finish; }
check "the remote btrfs is ours" \
	[ "$(ssh backup readlink -f '$(command -v btrfs)')" = "$(readlink -f "$OURS")" ]

# ------------------------------------------------------------ the data
# snap1: 300 files and 24 MiB; snap2: a tenth changed, one removed, and
# 24 MiB more, so that its incremental stream is long enough to cut.
make_data() {
	"$REF" -q subvolume create "$SRC/data" && mkdir -p "$SRC/snaps" &&
		"$PYTHON" - "$SRC/data" <<-'PY'
			import os, random, sys
			rng = random.Random(16)
			for d in range(6):
			    os.makedirs(os.path.join(sys.argv[1], "dir%d" % d))
			    for f in range(50):
			        p = os.path.join(sys.argv[1], "dir%d" % d, "f%d" % f)
			        with open(p, "wb") as fh:
			            fh.write(rng.randbytes(rng.randrange(0, 30000)))
			with open(os.path.join(sys.argv[1], "big1"), "wb") as fh:
			    fh.write(rng.randbytes(24 << 20))
		PY
}
change_data() {
	local f
	for f in "$SRC"/data/dir*/f1?; do
		head -c 5000 /dev/urandom >>"$f" || return 1
	done
	rm "$SRC/data/dir2/f3" && mv "$SRC/data/dir4" "$SRC/data/dir4-moved" &&
		head -c 24M /dev/urandom >"$SRC/data/big2"
}
make_data && "$REF" -q subvolume snapshot -r "$SRC/data" "$SRC/snaps/snap1" &&
	change_data && "$REF" -q subvolume snapshot -r "$SRC/data" "$SRC/snaps/snap2" ||
	{ fail "cannot make the source snapshots"; finish; }

# received SUBVOL: read-only with a received uuid, as btrbk checks it.
received() {
	local show
	show=$("$REF" subvolume show "$1" 2>/dev/null) &&
		grep -qP '^\tFlags:\s+readonly' <<<"$show" &&
		grep -qP '^\tReceived UUID:\s+[0-9a-f-]{36}$' <<<"$show"
}

# ------------------------------------------------------------ over ssh
# Recipe: a backup over ssh, with progress and an ETA on the sending
# side (--estimate gives the total first).
cd "$SRC/snaps" || finish
btrfs send --progress --estimate snap1 2>"$WORK/full.err" |
	ssh backup btrfs receive "$BACKUP" 2>"$WORK/full.rerr"
check "ssh: full backup exits 0" [ "${PIPESTATUS[*]}" = "0 0" ]
check "ssh: the send summary" grep -q '^Sent [0-9]* bytes' "$WORK/full.err"
check "ssh: the remote receive said At subvol" grep -q '^At subvol snap1' "$WORK/full.rerr"
check "ssh: snap1 received" received "$BACKUP/snap1"
compare_trees "ssh: snap1" "$SRC/snaps/snap1" "$BACKUP/snap1" --no-extents --no-atime

# The total the ETA is computed from is the stream's size: the JSON form
# of the same recipe says both.
btrfs --format json send --progress --estimate -p snap1 snap2 \
	2>"$WORK/incr.json" >"$WORK/incr.stream"
total=$(tail -1 "$WORK/incr.json" | "$PYTHON" -c \
	'import json, sys; d = json.load(sys.stdin); print(d["total"], d["bytes"])')
check "ssh: the estimate is the stream's size ($total)" \
	[ "$total" = "$(stat -c %s "$WORK/incr.stream") $(stat -c %s "$WORK/incr.stream")" ]

# ------------------------------------------------------------ resume
# The link drops a third of the way through an incremental: head stands
# in for the dropped link, cutting the stream where ssh would.
cut=$(($(stat -c %s "$WORK/incr.stream") / 3))
btrfs send -p snap1 snap2 2>/dev/null | head -c "$cut" |
	ssh backup btrfs receive "$BACKUP" >/dev/null 2>"$WORK/cut.rerr"
check "resume: the cut receive fails" [ "${PIPESTATUS[2]}" -ne 0 ]
check "resume: the cut receive says how to resume" \
	grep -q 'resume' "$WORK/cut.rerr"

# Recipe: resuming over ssh.
token=$(ssh backup btrfs receive --resume-token "$BACKUP/snap2")
check "resume: a token from the far side" [ -n "$token" ]
btrfs send --progress --resume "$token" -p snap1 snap2 2>"$WORK/resume.err" |
	ssh backup btrfs receive "$BACKUP" >/dev/null 2>"$WORK/resume.rerr"
check "resume: the resumed backup exits 0" [ "${PIPESTATUS[*]}" = "0 0" ]
check "resume: the prefix was skipped, not sent" \
	grep -q '^Skipped [0-9]* bytes' "$WORK/resume.err"
sent=$(sed -n 's/^Sent \([0-9]*\) bytes.*/\1/p' "$WORK/resume.err")
check "resume: less than the whole stream crossed the link (${sent:-?})" \
	test "${sent:-0}" -gt 0 -a "${sent:-0}" -lt "$(stat -c %s "$WORK/incr.stream")"
check "resume: snap2 received" received "$BACKUP/snap2"
compare_trees "resume: snap2" "$SRC/snaps/snap2" "$BACKUP/snap2" --no-extents --no-atime
check "resume: no record left behind" [ ! -e "$BACKUP/.snap2.btrfs-receive-resume" ]

# ------------------------------------------------------------ file
# Recipe: backups as files on a disk that is not btrfs, checked, then
# restored onto btrfs (and browsed without it).
btrfs send -q -f "$DISK/snap1.stream" snap1
btrfs send -q -p snap1 -f "$DISK/snap2.stream" snap2
check "file: two stream files on ext4" \
	test -s "$DISK/snap1.stream" -a -s "$DISK/snap2.stream"
btrfs receive --dump -f "$DISK/snap2.stream" >/dev/null
check "file: a sound file passes the check" [ $? -eq 0 ]
cp "$DISK/snap2.stream" "$WORK/bad.stream"
# The byte is inverted, not overwritten with a constant: the data is random,
# and a constant matches the byte it replaces once in 256 runs.
"$PYTHON" - "$WORK/bad.stream" $((cut + 100)) <<-'PY'
	import sys
	with open(sys.argv[1], "r+b") as f:
	    f.seek(int(sys.argv[2]))
	    b = f.read(1)[0]
	    f.seek(int(sys.argv[2]))
	    f.write(bytes([b ^ 0xff]))
PY
btrfs receive --dump -f "$WORK/bad.stream" >/dev/null 2>"$WORK/bad.err"
check "file: a damaged file fails the check" [ $? -ne 0 ]
check "file: the check names the damage" grep -q '^ERROR: stream offset .*checksum mismatch' "$WORK/bad.err"

btrfs receive -f "$DISK/snap1.stream" "$WORK/restore" >/dev/null 2>&1 &&
	btrfs receive -f "$DISK/snap2.stream" "$WORK/restore" >/dev/null 2>&1
check "file: restored onto btrfs" [ $? -eq 0 ]
for s in snap1 snap2; do
	check "file: $s restored as received" received "$WORK/restore/$s"
	compare_trees "file: $s" "$SRC/snaps/$s" "$WORK/restore/$s" --no-extents --no-atime
done
mkdir "$DISK/browse"
btrfs receive --to-dir "$DISK/browse" -f "$DISK/snap1.stream" >/dev/null 2>&1 &&
	btrfs receive --to-dir "$DISK/browse" -f "$DISK/snap2.stream" >/dev/null 2>&1
check "file: browsed on ext4 with --to-dir" [ $? -eq 0 ]
compare_trees "file: snap2 on ext4" "$SRC/snaps/snap2" "$DISK/browse/snap2" \
	--no-extents --no-atime --no-flags --no-dir-size \
	--ignore ".:xattr user.btrfs.received_uuid" \
	--ignore ".:xattr user.btrfs.stransid"

# ------------------------------------------------------------ what changed
# Recipe: what last night's backup changed, from the two snapshots and
# from the stream file on ext4 (no btrfs needed for that one).
cd "$SRC/snaps" || fail "cannot cd to the snapshots"
btrfs send --changes -p snap1 snap2 >"$WORK/changes.txt"
check "changes: exit 0" [ $? -eq 0 ]
S2=$SRC/snaps/snap2
check "changes: the moved directory is one R line" \
	grep -qxF "R	$S2/dir4	$S2/dir4-moved" "$WORK/changes.txt"
check "changes: the removed file" grep -qxF -- "-	$S2/dir2/f3" "$WORK/changes.txt"
check "changes: the new file" grep -qxF "+	$S2/big2" "$WORK/changes.txt"
# 6 directories, 10 files f1? appended to in each, under dir4-moved for one.
appended=$(grep -c "^M	$S2/dir[0-9]*\(-moved\)\?/f1[0-9]\$" "$WORK/changes.txt")
files=$(grep -c "^M	$S2/dir[0-9]*\(-moved\)\?/f" "$WORK/changes.txt")
check "changes: the 60 appended files ($appended)" [ "$appended" = 60 ]
check "changes: no other file in the dirs ($files)" [ "$files" = 60 ]
btrfs receive --changes -f "$DISK/snap2.stream" >"$WORK/changes-stream.txt"
check "changes: from the stream file, exit 0" [ $? -eq 0 ]
for line in "R	/dir4	/dir4-moved" "-	/dir2/f3" "+	/big2"; do
	check "changes: from the stream file, '$line'" \
		grep -qxF -- "$line" "$WORK/changes-stream.txt"
done
cd / || true
finish
