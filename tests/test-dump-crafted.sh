#!/bin/bash
# Streams crafted from tests/specs/*.spec reach what real streams do not:
# every escaped byte class, padding edges, every v1-v2 command and value
# extremes.  Our --dump must equal the reference's.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/dump-compare.sh"

require "Debian's btrfs-progs ($REF)" have_reference

for spec in "$TOP"/tests/specs/*.spec; do
	stream="$WORK/$(basename "$spec" .spec).stream"
	if ! "$PYTHON" "$TOP/tests/mkstream.py" "$spec" >"$stream"; then
		fail "$spec: mkstream failed"
		continue
	fi
	compare_dump "$stream"
done

# Protocol v3, which btrfs-progs 6.2 cannot read: checked against text.
"$PYTHON" "$TOP/tests/mkstream.py" >"$WORK/v3.stream" <<'SPEC'
header 3
subvol path=s:v3 uuid=uuid:0123456789abcdef0123456789abcdef ctransid=u64:5
enable_verity path=s:f verity_algorithm=u8:1 verity_block_size=u32:4096 verity_salt_data=s:salt verity_sig_data=s:
end
SPEC
cat >"$WORK/v3.expected" <<'TEXT'
subvol          ./v3                            uuid=01234567-89ab-cdef-0123-456789abcdef transid=5
enable_verity   ./v3/f                          algorithm=1 block_size=4096 salt_len=4 sig_len=0
TEXT
"$OURS" receive --dump -f "$WORK/v3.stream" >"$WORK/v3.out" 2>&1
check "v3 enable_verity dumps" cmp -s "$WORK/v3.out" "$WORK/v3.expected"

# Times follow TZ, as in btrfs-progs.
TZ=Asia/Tokyo "$OURS" receive --dump -f "$WORK/v3.stream" >/dev/null
"$PYTHON" "$TOP/tests/mkstream.py" >"$WORK/tz.stream" <<'SPEC'
header 1
subvol path=s:t uuid=uuid:0123456789abcdef0123456789abcdef ctransid=u64:5
utimes path=s:f atime=ts:1764106317.1 mtime=ts:1764106317.2 ctime=ts:1764106317.3
end
SPEC
for tz in UTC Asia/Tokyo America/St_Johns; do
	TZ=$tz "$OURS" receive --dump -f "$WORK/tz.stream" >"$WORK/tz.ours"
	TZ=$tz "$REF" receive --dump -f "$WORK/tz.stream" >"$WORK/tz.ref"
	check "utimes in TZ=$tz" cmp -s "$WORK/tz.ours" "$WORK/tz.ref"
done
finish
