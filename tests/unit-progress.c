// SPDX-License-Identifier: GPL-2.0-only
/*
 * --expected-size parsing, and the command scanner of send --progress
 * against the parser on the committed stream corpus, fed in pieces of
 * every kind.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "progress.h"
#include "send-stream.h"

static void test_parse_size_accepts_binary_suffixes(void **state)
{
	static const struct { const char *in; uint64_t out; } ok[] = {
		{ "0", 0 }, { "4096", 4096 }, { "4k", 4096 }, { "4K", 4096 },
		{ "3M", 3ULL << 20 }, { "3m", 3ULL << 20 }, { "2G", 2ULL << 30 },
		{ "1T", 1ULL << 40 }, { "16777215T", 16777215ULL << 40 },
		{ "18446744073709551615", UINT64_MAX },
	};
	uint64_t v;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = 1;
		assert_int_equal(progress_parse_size(ok[i].in, &v), 0);
		assert_true(v == ok[i].out);
	}
}

static void test_parse_size_refuses_garbage_and_overflow(void **state)
{
	static const char *const bad[] = {
		"", "x", "-1", "+1", " 1", "4kk", "1.5M", "4KiB", "1P",
		"99999999999999999999", "16777216T", "18446744073709551616",
	};
	uint64_t v = 7;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(progress_parse_size(bad[i], &v), -EINVAL);
	assert_true(v == 7);
}

static unsigned char *read_file(const char *path, size_t *len)
{
	struct stat st;
	unsigned char *buf;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc(st.st_size);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, st.st_size), st.st_size);
	close(fd);
	*len = st.st_size;
	return buf;
}

/*
 * What the parser makes of a stream: commands and the last PATH; 0 for a
 * file of several streams (the scanner follows one kernel stream).
 */
static uint64_t parse_counts(const char *path, char *last, size_t size)
{
	static const struct send_stream_ops no_ops;
	struct send_stream *s;
	const char *p;
	size_t len;
	uint64_t n;
	int fd = open(path, O_RDONLY);
	int ret;

	assert_true(fd >= 0);
	assert_int_equal(send_stream_open(&s, fd), 0);
	last[0] = '\0';
	for (;;) {
		/* Every slot is NULL: each command "fails" in its callback. */
		ret = send_stream_next(s, &no_ops, NULL);
		if (ret == SEND_STREAM_EOF)
			break;
		assert_true(ret >= 0 || send_stream_failed_in_callback(s));
		p = send_stream_cmd_path(s, &len);
		if (p) {
			if (len >= size)
				len = size - 1;
			memcpy(last, p, len);
			last[len] = '\0';
		}
	}
	n = send_stream_header_count(s) == 1 ? send_stream_cmd_count(s) : 0;
	send_stream_close(s);
	close(fd);
	return n;
}

static void scan_in_pieces(const unsigned char *buf, size_t len,
			   size_t piece, struct send_scan *sc)
{
	size_t off, n;

	memset(sc, 0, sizeof(*sc));
	send_scan_start(sc, 1);
	for (off = 0; off < len; off += n) {
		n = piece ? piece : (size_t)(rand() % 70000) + 1;
		if (n > len - off)
			n = len - off;
		send_scan_feed(sc, buf + off, n);
	}
}

static void test_scan_agrees_with_the_parser_on_the_corpus(void **state)
{
	static const size_t pieces[] = { 1, 2, 3, 7, 10, 14, 4096, 65536, 0 };
	char last[SEND_SCAN_PATH_MAX];
	struct send_scan sc;
	unsigned char *buf;
	glob_t g;
	uint64_t cmds;
	size_t len, i, j;

	(void)state;
	srand(1);
	assert_int_equal(glob("tests/streams/*.stream", 0, NULL, &g), 0);
	assert_true(g.gl_pathc >= 10);
	for (i = 0; i < g.gl_pathc; i++) {
		cmds = parse_counts(g.gl_pathv[i], last, sizeof(last));
		if (!cmds)
			continue;
		buf = read_file(g.gl_pathv[i], &len);
		for (j = 0; j < sizeof(pieces) / sizeof(pieces[0]); j++) {
			scan_in_pieces(buf, len, pieces[j], &sc);
			assert_true(sc.cmds == cmds);
			assert_int_equal(sc.skip, 0);
			assert_int_equal(sc.path_left, 0);
			/* The last command is END: the path is the one before. */
			assert_int_equal(sc.path_len, strlen(last));
			assert_memory_equal(sc.path, last, sc.path_len);
		}
		free(buf);
	}
	globfree(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size_accepts_binary_suffixes),
		cmocka_unit_test(test_parse_size_refuses_garbage_and_overflow),
		cmocka_unit_test(test_scan_agrees_with_the_parser_on_the_corpus),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
