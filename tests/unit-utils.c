// SPDX-License-Identifier: GPL-2.0-only
/* The shared helpers of utils.c: whole writes, number parsing, fd table. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "utils.h"

static int temp_file(void)
{
	FILE *f = tmpfile();

	assert_non_null(f);
	return dup(fileno(f));
}

static void test_pwrite_all_keeps_the_file_offset(void **state)
{
	char buf[16] = { 0 };
	int fd = temp_file();

	(void)state;
	assert_int_equal(pwrite_all(fd, "abc", 3, 5), 0);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 0);
	assert_int_equal(pread(fd, buf, sizeof(buf), 0), 8);
	assert_memory_equal(buf, "\0\0\0\0\0abc", 8);
	close(fd);
}

/* A pipe smaller than the data, made non-blocking: write_all waits. */
static void test_write_all_waits_on_a_full_pipe(void **state)
{
	size_t len = 256 * 1024, got = 0;
	char *data = malloc(len), *back = malloc(len);
	int fds[2], status;
	pid_t pid;
	ssize_t n;

	(void)state;
	for (size_t i = 0; i < len; i++)
		data[i] = (char)(i * 7);
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	if (!pid) {
		close(fds[0]);
		fcntl(fds[1], F_SETFL, O_NONBLOCK);
		_exit(write_all(fds[1], data, len) ? 1 : 0);
	}
	close(fds[1]);
	while ((n = read(fds[0], back + got, len - got)) > 0)
		got += n;
	assert_int_equal(got, len);
	assert_memory_equal(back, data, len);
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	free(data);
	free(back);
}

static void test_write_all_returns_the_errno(void **state)
{
	(void)state;
	assert_int_equal(write_all(-1, "x", 1), -EBADF);
	assert_int_equal(pwrite_all(-1, "x", 1, 0), -EBADF);
}

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
		assert_int_equal(parse_size(ok[i].in, &v), 0);
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
		assert_int_equal(parse_size(bad[i], &v), -EINVAL);
	assert_true(v == 7);
}

static void test_parse_u64_takes_digits_only(void **state)
{
	static const char *const bad[] = {
		"", "x", "-1", "+1", " 1", "1 ", "4k", "0x10", "1.5",
		"18446744073709551616",
	};
	uint64_t v = 7;
	size_t i;

	(void)state;
	assert_int_equal(parse_u64("0", &v), 0);
	assert_true(v == 0);
	assert_int_equal(parse_u64("18446744073709551615", &v), 0);
	assert_true(v == UINT64_MAX);
	v = 7;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse_u64(bad[i], &v), -EINVAL);
	assert_true(v == 7);
}

static void test_mechanism_off_takes_whole_names(void **state)
{
	(void)state;
	assert_int_equal(unsetenv("BTRFS_MECHANISMS_OFF"), 0);
	assert_false(mechanism_off("pipe"));
	assert_int_equal(setenv("BTRFS_MECHANISMS_OFF", "warm,pipe", 1), 0);
	assert_true(mechanism_off("warm"));
	assert_true(mechanism_off("pipe"));
	assert_false(mechanism_off("pip"));
	assert_false(mechanism_off("reader"));
	assert_int_equal(setenv("BTRFS_MECHANISMS_OFF", "pipes,", 1), 0);
	assert_false(mechanism_off("pipe"));
	assert_true(mechanism_off("pipes"));
	assert_int_equal(unsetenv("BTRFS_MECHANISMS_OFF"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pwrite_all_keeps_the_file_offset),
		cmocka_unit_test(test_write_all_waits_on_a_full_pipe),
		cmocka_unit_test(test_write_all_returns_the_errno),
		cmocka_unit_test(test_parse_size_accepts_binary_suffixes),
		cmocka_unit_test(test_parse_size_refuses_garbage_and_overflow),
		cmocka_unit_test(test_parse_u64_takes_digits_only),
		cmocka_unit_test(test_mechanism_off_takes_whole_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
