// SPDX-License-Identifier: GPL-2.0-only
/* The bounded set of names of name-set.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "name-set.h"

static void test_unknown_until_reset_known(void **state)
{
	struct name_set set;

	(void)state;
	name_set_init(&set, 8);
	assert_false(name_set_surely_absent(&set, "a"));
	name_set_add(&set, "a");
	assert_false(name_set_surely_absent(&set, "b"));
	name_set_reset(&set, true);
	assert_true(name_set_surely_absent(&set, "b"));
	name_set_free(&set);
}

static void test_added_names_are_held_until_removed(void **state)
{
	struct name_set set;
	char name[32];

	(void)state;
	name_set_init(&set, 1000);
	name_set_reset(&set, true);
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "o%d-5-0", 257 + i);
		name_set_add(&set, name);
	}
	name_set_add(&set, "o257-5-0");
	assert_int_equal(set.count, 1000);
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "o%d-5-0", 257 + i);
		assert_false(name_set_surely_absent(&set, name));
	}
	assert_true(name_set_surely_absent(&set, "o1257-5-0"));
	name_set_remove(&set, "o600-5-0");
	name_set_remove(&set, "never");
	assert_true(name_set_surely_absent(&set, "o600-5-0"));
	assert_false(name_set_surely_absent(&set, "o601-5-0"));
	assert_int_equal(set.count, 999);
	/* A new subvolume: nothing held, everything free. */
	name_set_reset(&set, true);
	assert_int_equal(set.count, 0);
	assert_true(name_set_surely_absent(&set, "o601-5-0"));
	name_set_free(&set);
}

static void test_past_the_bound_nothing_is_surely_absent(void **state)
{
	struct name_set set;

	(void)state;
	name_set_init(&set, 2);
	name_set_reset(&set, true);
	name_set_add(&set, "a");
	name_set_add(&set, "b");
	assert_true(name_set_surely_absent(&set, "c"));
	name_set_add(&set, "c");
	assert_false(name_set_surely_absent(&set, "c"));
	assert_false(name_set_surely_absent(&set, "d"));
	name_set_remove(&set, "a");
	assert_false(name_set_surely_absent(&set, "a"));
	assert_int_equal(set.count, 0);
	name_set_free(&set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unknown_until_reset_known),
		cmocka_unit_test(test_added_names_are_held_until_removed),
		cmocka_unit_test(test_past_the_bound_nothing_is_surely_absent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
