// SPDX-License-Identifier: GPL-2.0-only
/*
 * JSON strings from arbitrary bytes, for the JSON dump and the JSON
 * progress lines.
 */
#include "json-string.h"

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0. */
static int utf8_sequence(const unsigned char *p, size_t n)
{
	unsigned int c = p[0], min, cp;
	int len, i;

	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0) {
		len = 2;
		cp = c & 0x1f;
		min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3;
		cp = c & 0x0f;
		min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4;
		cp = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if ((size_t)len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	/* Overlong forms, surrogates and values past Unicode are invalid. */
	if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

void json_put_string(FILE *out, const char *str, size_t n)
{
	const unsigned char *p = (const unsigned char *)str;
	size_t i = 0;
	int len;

	putc_unlocked('"', out);
	while (i < n) {
		len = utf8_sequence(p + i, n - i);
		if (len == 0) {
			fprintf(out, "\\udc%02x", p[i]);
			i++;
			continue;
		}
		if (len > 1) {
			fwrite(p + i, 1, len, out);
		} else if (p[i] == '"' || p[i] == '\\') {
			putc_unlocked('\\', out);
			putc_unlocked(p[i], out);
		} else if (p[i] < 0x20 || p[i] == 0x7f) {
			fprintf(out, "\\u%04x", p[i]);
		} else {
			putc_unlocked(p[i], out);
		}
		i += len;
	}
	putc_unlocked('"', out);
}
