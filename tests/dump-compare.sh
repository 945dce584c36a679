# SPDX-License-Identifier: GPL-2.0-only
# compare_dump STREAM: our --dump must equal the reference's byte for byte.
# The reference (btrfs-progs 6.2) stops after the first of concatenated
# streams; ours goes on, so such input is split and the reference's dumps
# of the parts, concatenated, must equal ours.  Sourced after lib.sh.

compare_dump() {
	local stream=$1 name
	local ours="$WORK/ours.txt" ref="$WORK/ref.txt" n i

	name=$(basename "$stream")
	if ! "$OURS" receive --dump -f "$stream" >"$ours" 2>"$WORK/ours.err"; then
		fail "$name: our dump failed: $(cat "$WORK/ours.err")"
		return
	fi
	[ -s "$WORK/ours.err" ] && fail "$name: our dump wrote to stderr: $(cat "$WORK/ours.err")"
	n=$("$PYTHON" "$TOP/tests/split-streams.py" "$stream" "$WORK/part")
	: >"$ref"
	for ((i = 0; i < n; i++)); do
		if ! "$REF" receive --dump -f "$WORK/part.$i" >>"$ref" 2>"$WORK/ref.err"; then
			fail "$name: reference dump of part $i failed: $(cat "$WORK/ref.err")"
			return
		fi
	done
	rm -f "$WORK"/part.*
	if cmp -s "$ours" "$ref"; then
		pass "$name: dump identical ($n stream(s), $(wc -l <"$ours") lines)"
	else
		fail "$name: dump differs from the reference:"
		diff "$ref" "$ours" | head -20 >&2
	fi
	# Unsplit, the reference's output must be a prefix of ours.
	"$REF" receive --dump -f "$stream" >"$ref" 2>/dev/null
	if head -c "$(stat -c %s "$ref")" "$ours" | cmp -s - "$ref"; then
		pass "$name: reference output is a prefix of ours"
	else
		fail "$name: reference output is not a prefix of ours"
	fi
}
