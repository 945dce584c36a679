/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A JSON string from bytes that come from a stream (paths, names): valid
 * UTF-8 is written as it is, with JSON's escapes for '"', '\' and control
 * characters; a byte that is not part of valid UTF-8 is written as the
 * escape \udcXX of a lone low surrogate (XX its value), the
 * "surrogateescape" convention, so that no byte is lost: Python reads it
 * back with json.loads() and s.encode("utf-8", "surrogateescape").
 */
#ifndef JSON_STRING_H
#define JSON_STRING_H

#include <stddef.h>
#include <stdio.h>

/* The n bytes at str as a quoted JSON string. */
void json_put_string(FILE *out, const char *str, size_t n);

#endif
