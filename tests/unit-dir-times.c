// SPDX-License-Identifier: GPL-2.0-only
/* The held directory times of the receive applier: set, move, flush. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dir-times.h"

/* What a flush applied: path -> mtime seconds, in a small list. */
struct applied {
	int n;
	char path[8192][32];
	long mtime[8192];
};

static int record(const char *path, const struct timespec ts[2], void *arg)
{
	struct applied *a = arg;

	snprintf(a->path[a->n], sizeof(a->path[0]), "%s", path);
	a->mtime[a->n] = ts[1].tv_sec;
	a->n++;
	return 0;
}

static long mtime_of(const struct applied *a, const char *path)
{
	for (int i = 0; i < a->n; i++)
		if (!strcmp(a->path[i], path))
			return a->mtime[i];
	return -1;
}

static void times(struct timespec ts[2], long sec)
{
	ts[0].tv_sec = sec;
	ts[0].tv_nsec = 1;
	ts[1].tv_sec = sec;
	ts[1].tv_nsec = 2;
}

static void test_last_times_win(void **state)
{
	struct dir_times dt = { 0 };
	struct applied *a = calloc(1, sizeof(*a));
	struct timespec ts[2];

	(void)state;
	for (long i = 1; i <= 100; i++) {
		char path[16];

		snprintf(path, sizeof(path), "d%ld", i % 10);
		times(ts, i);
		assert_int_equal(dir_times_set(&dt, path, ts), 0);
	}
	times(ts, 500);
	assert_int_equal(dir_times_set(&dt, "", ts), 0);
	assert_int_equal(dt.nr_used, 11);
	assert_int_equal(dir_times_flush(&dt, record, a), 0);
	assert_int_equal(a->n, 11);
	assert_int_equal(mtime_of(a, "d0"), 100);
	assert_int_equal(mtime_of(a, "d7"), 97);
	assert_int_equal(mtime_of(a, ""), 500);
	assert_int_equal(dt.nr_used, 0);
	/* A flush of an empty table applies nothing. */
	a->n = 0;
	assert_int_equal(dir_times_flush(&dt, record, a), 0);
	assert_int_equal(a->n, 0);
	dir_times_release(&dt);
	free(a);
}

static void test_move_and_drop(void **state)
{
	struct dir_times dt = { 0 };
	struct applied *a = calloc(1, sizeof(*a));
	struct timespec ts[2];

	(void)state;
	times(ts, 1);
	dir_times_set(&dt, "a", ts);
	times(ts, 2);
	dir_times_set(&dt, "a/b", ts);
	times(ts, 3);
	dir_times_set(&dt, "ab", ts);	/* not under "a" */
	times(ts, 4);
	dir_times_set(&dt, "x", ts);	/* replaced by the rename */
	times(ts, 5);
	dir_times_set(&dt, "gone/c", ts);
	assert_int_equal(dir_times_move(&dt, "a", "x"), 0);
	assert_int_equal(dir_times_move(&dt, "gone", NULL), 0);
	assert_int_equal(dt.nr_used, 3);
	dir_times_flush(&dt, record, a);
	assert_int_equal(a->n, 3);
	assert_int_equal(mtime_of(a, "x"), 1);
	assert_int_equal(mtime_of(a, "x/b"), 2);
	assert_int_equal(mtime_of(a, "ab"), 3);
	assert_int_equal(mtime_of(a, "a"), -1);
	assert_int_equal(mtime_of(a, "gone/c"), -1);
	dir_times_release(&dt);
	free(a);
}

/* Only a held path is updated: a moved or dropped one is not held. */
static void test_update_held(void **state)
{
	struct dir_times dt = { 0 };
	struct applied *a = calloc(1, sizeof(*a));
	struct timespec ts[2];

	(void)state;
	times(ts, 1);
	assert_false(dir_times_update_held(&dt, "a", ts));
	assert_int_equal(dir_times_set(&dt, "a", ts), 0);
	assert_int_equal(dir_times_set(&dt, "gone", ts), 0);
	times(ts, 7);
	assert_true(dir_times_update_held(&dt, "a", ts));
	assert_false(dir_times_update_held(&dt, "a/b", ts));
	assert_int_equal(dir_times_move(&dt, "a", "z"), 0);
	assert_int_equal(dir_times_move(&dt, "gone", NULL), 0);
	assert_false(dir_times_update_held(&dt, "a", ts));
	assert_false(dir_times_update_held(&dt, "gone", ts));
	times(ts, 9);
	assert_true(dir_times_update_held(&dt, "z", ts));
	assert_int_equal(dt.nr_used, 1);
	dir_times_flush(&dt, record, a);
	assert_int_equal(a->n, 1);
	assert_int_equal(mtime_of(a, "z"), 9);
	assert_false(dir_times_update_held(&dt, "z", ts));
	dir_times_release(&dt);
	free(a);
}

static void test_bounded(void **state)
{
	struct dir_times dt = { 0 };
	struct applied *a = calloc(1, sizeof(*a));
	struct timespec ts[2];
	char path[32];

	(void)state;
	times(ts, 7);
	for (int i = 0; i < DIR_TIMES_MAX; i++) {
		snprintf(path, sizeof(path), "dir%d", i);
		assert_int_equal(dir_times_set(&dt, path, ts), 0);
	}
	assert_int_equal(dir_times_set(&dt, "one-more", ts), -ENOSPC);
	/* Replacing a held one is still possible. */
	assert_int_equal(dir_times_set(&dt, "dir0", ts), 0);
	assert_int_equal(dir_times_flush(&dt, record, a), 0);
	assert_int_equal(a->n, DIR_TIMES_MAX);
	assert_int_equal(dir_times_set(&dt, "one-more", ts), 0);
	dir_times_release(&dt);
	free(a);
}

static int fail_on_b(const char *path, const struct timespec ts[2], void *arg)
{
	(void)ts;
	(*(int *)arg)++;
	return strcmp(path, "b") ? 0 : -ENOENT;
}

static void test_flush_tries_all(void **state)
{
	struct dir_times dt = { 0 };
	struct timespec ts[2];
	int calls = 0;

	(void)state;
	times(ts, 1);
	dir_times_set(&dt, "a", ts);
	dir_times_set(&dt, "b", ts);
	dir_times_set(&dt, "c", ts);
	assert_int_equal(dir_times_flush(&dt, fail_on_b, &calls), -ENOENT);
	assert_int_equal(calls, 3);
	assert_int_equal(dt.nr_used, 0);
	dir_times_release(&dt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_last_times_win),
		cmocka_unit_test(test_move_and_drop),
		cmocka_unit_test(test_update_held),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_flush_tries_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
