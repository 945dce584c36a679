// SPDX-License-Identifier: GPL-2.0-only
/* The shared helpers of utils.c: whole writes. */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pwrite_all_keeps_the_file_offset),
		cmocka_unit_test(test_write_all_waits_on_a_full_pipe),
		cmocka_unit_test(test_write_all_returns_the_errno),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
