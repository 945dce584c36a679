#!/bin/bash
# btrfs --format json receive --dump: JSON Lines that a real JSON parser
# reads, saying what the text dump says, for every corpus, external and
# crafted stream; and the text output is unchanged by the option's absence.
. "$(dirname "$0")/lib.sh"

json_check() {
	local stream=$1 name
	name=$(basename "$stream")
	"$OURS" receive --dump -f "$stream" >"$WORK/text" 2>/dev/null
	if ! "$OURS" --format json receive --dump -f "$stream" >"$WORK/json" 2>"$WORK/err"; then
		fail "$name: json dump failed: $(head -2 "$WORK/err")"
		return
	fi
	if "$PYTHON" "$TOP/tests/check-json-dump.py" "$WORK/text" "$WORK/json" >"$WORK/out" 2>&1; then
		pass "$name: $(cat "$WORK/out")"
	else
		fail "$name: $(cat "$WORK/out")"
	fi
}

for s in "$TOP"/tests/streams/*.stream; do
	json_check "$s"
done
for s in "$SHARED_STREAMS"/*; do
	case "$s" in *.txt|*LICENSE*) continue ;; esac
	[ -f "$s" ] && json_check "$s"
done
for spec in "$TOP"/tests/specs/*.spec; do
	"$PYTHON" "$TOP/tests/mkstream.py" "$spec" >"$WORK/$(basename "$spec").stream"
	json_check "$WORK/$(basename "$spec").stream"
done

# Every stream of a concatenated input, END objects included.
"$OURS" --format json receive --dump -f "$TOP/tests/streams/multi.stream" >"$WORK/multi.json"
check "json: three subvolumes of a concatenated input" \
	[ "$(grep -c '"cmd":"subvol"' "$WORK/multi.json")" -eq 3 ]
check "json: an end object per stream" \
	[ "$(grep -c '"cmd":"end"' "$WORK/multi.json")" -eq 3 ]

# Non-UTF-8 bytes survive: surrogateescape gives the bytes back.
"$PYTHON" "$TOP/tests/mkstream.py" >"$WORK/bytes.stream" <<'SPEC'
header 1
subvol path=s:s uuid=uuid:0123456789abcdef0123456789abcdef ctransid=u64:5
mkfile path=s:caf\xc3\xa9\xff\xfe\x80"q\\\n\x01 ino=u64:257
end
SPEC
"$OURS" --format json receive --dump -f "$WORK/bytes.stream" >"$WORK/bytes.json"
check "json: non-UTF-8 path round-trips losslessly" "$PYTHON" -c '
import json, sys
objs = [json.loads(l) for l in open(sys.argv[1])]
path = objs[1]["path"].encode("utf-8", "surrogateescape")
sys.exit(path != b"caf\xc3\xa9\xff\xfe\x80\"q\\\n\x01")' "$WORK/bytes.json"

# v3 and times: UTC with nanoseconds, raw values beside.
"$PYTHON" "$TOP/tests/mkstream.py" >"$WORK/v3.stream" <<'SPEC'
header 3
subvol path=s:v uuid=uuid:0123456789abcdef0123456789abcdef ctransid=u64:5
utimes path=s:f atime=ts:1764106317.000000123 mtime=ts:0.5 ctime=ts:1.999999999
enable_verity path=s:f verity_algorithm=u8:1 verity_block_size=u32:4096 verity_salt_data=s:salt
end
SPEC
TZ=Asia/Tokyo "$OURS" --format json receive --dump -f "$WORK/v3.stream" >"$WORK/v3.json"
check "json: times in UTC with nanoseconds" grep -qF \
	'"atime_sec":1764106317,"atime_nsec":123,"atime":"2025-11-25T21:31:57.000000123Z"' "$WORK/v3.json"
check "json: v3 enable_verity" grep -qF \
	'"cmd":"enable_verity","offset":' "$WORK/v3.json"
check "json: verity fields" grep -qF '"algorithm":1,"block_size":4096,"salt_len":4,"sig_len":0' "$WORK/v3.json"

# The option is global and opt-in: --format text is the default output.
"$OURS" --format text receive --dump -f "$TOP/tests/streams/special.stream" >"$WORK/a"
"$OURS" receive --dump -f "$TOP/tests/streams/special.stream" >"$WORK/b"
check "--format text is the plain dump" cmp -s "$WORK/a" "$WORK/b"
"$OURS" --format yaml receive --dump -f "$TOP/tests/streams/special.stream" >/dev/null 2>"$WORK/err"
check "an unknown format exits 1" [ $? -eq 1 ]
finish
