// SPDX-License-Identifier: GPL-2.0-only
/* --expected-size parsing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "progress.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size_accepts_binary_suffixes),
		cmocka_unit_test(test_parse_size_refuses_garbage_and_overflow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
