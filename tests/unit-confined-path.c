// SPDX-License-Identifier: GPL-2.0-only
/* The lexical path tests shared by the receive applier and the commands. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "confined-path.h"

static void test_path_is_under_needs_a_whole_component(void **state)
{
	(void)state;
	assert_true(path_is_under("a", "a"));
	assert_true(path_is_under("a/b", "a"));
	assert_true(path_is_under("a/b/c", "a/b"));
	assert_false(path_is_under("ab", "a"));
	assert_false(path_is_under("a", "a/b"));
	assert_false(path_is_under("b/a", "a"));
	assert_true(path_is_under("/mnt/x", "/mnt"));
	assert_false(path_is_under("/mntx", "/mnt"));
}

static void test_roots_hold_paths_of_their_kind(void **state)
{
	(void)state;
	assert_true(path_is_under("a/b", ""));
	assert_true(path_is_under("", ""));
	assert_false(path_is_under("/a", ""));
	assert_true(path_is_under("/a/b", "/"));
	assert_true(path_is_under("/", "/"));
	assert_false(path_is_under("a", "/"));
}

static void test_path_relative_to_strips_the_dir(void **state)
{
	(void)state;
	assert_string_equal(path_relative_to("a/b/c", "a"), "b/c");
	assert_string_equal(path_relative_to("a", "a"), "");
	assert_string_equal(path_relative_to("/mnt/s/t", "/mnt"), "s/t");
	assert_string_equal(path_relative_to("/mnt/s", "/"), "mnt/s");
	assert_string_equal(path_relative_to("s/t", ""), "s/t");
	assert_null(path_relative_to("ab/c", "a"));
	assert_null(path_relative_to("/s", ""));
}

static void test_path_hash_reads_only_len_bytes(void **state)
{
	(void)state;
	assert_true(path_hash("a/b/c", 3) == path_hash("a/b", 3));
	assert_true(path_hash("a/b", 3) != path_hash("a/c", 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_is_under_needs_a_whole_component),
		cmocka_unit_test(test_roots_hold_paths_of_their_kind),
		cmocka_unit_test(test_path_relative_to_strips_the_dir),
		cmocka_unit_test(test_path_hash_reads_only_len_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
