// SPDX-License-Identifier: GPL-2.0-only
/*
 * The stream file read around the page cache: bytes, cache, early stop.
 * What the reader decides is checked against a probe the test answers
 * (file_range_cached_hook); what the kernel then does with the page cache
 * on a file of a disk-like filesystem (page-cache.h), wherever the
 * current directory and TMPDIR are.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "input-reader.h"
#include "page-cache.h"
#include "utils.h"

#define PAGE	4096

/*
 * A file of len bytes of a pattern, out of the page cache, in dir (which
 * takes O_DIRECT).
 */
static int pattern_file_in(const char *dir, size_t len,
			   unsigned char **content)
{
	char name[PATH_MAX];
	unsigned char *p = malloc(len);
	int fd = mkstemp(temp_name(name, sizeof(name), dir,
				   "unit-input-reader"));

	assert_non_null(p);
	assert_true(fd >= 0);
	unlink(name);
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(i * 7 + i / 4099);
	assert_int_equal(write_all(fd, p, len), 0);
	assert_int_equal(fsync(fd), 0);
	/* Out of the page cache, as after a reboot. */
	drop_from_cache(fd, len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	*content = p;
	return fd;
}

/* A pattern file on a disk-like filesystem; the test is skipped without. */
static int pattern_file(size_t len, unsigned char **content)
{
	return pattern_file_in(require_disk_dir(), len, content);
}

/* The test's answers to "is this chunk cached": a bit per MiB of offset. */
static unsigned int cached_mask;

static bool probe_says(int fd, uint64_t offset, uint64_t len)
{
	(void)fd;
	(void)len;
	return cached_mask >> (offset / INPUT_READER_CHUNK) & 1;
}

static int teardown_probe(void **state)
{
	(void)state;
	file_range_cached_hook = NULL;
	return 0;
}

/* As the parser reads: whatever it asks for, in pieces it cannot choose. */
static size_t read_to_end(struct input_reader *r, unsigned char *out,
			  size_t max)
{
	size_t got = 0;
	ssize_t n;

	while ((n = input_reader_read(r, out + got, max - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		assert_true(n > 0);
		got += n;
	}
	return got;
}

static size_t read_to_end_fd(int fd, unsigned char *out, size_t max)
{
	size_t got = 0;
	ssize_t n;

	while ((n = read(fd, out + got, max - got)) > 0)
		got += n;
	assert_int_equal(n, 0);
	return got;
}

static void test_bytes_arrive_and_skip_the_cache(void **state)
{
	size_t len = 3 * INPUT_READER_CHUNK + 123;
	unsigned char *want, *got = malloc(len + 1);
	struct input_reader r;
	int fd = pattern_file(len, &want);
	int dup_fd = dup(fd);

	(void)state;
	input_reader_start(&r, fd);
	assert_true(r.active);
	assert_true(r.direct);
	assert_int_equal(read_to_end(&r, got, len + 1), len);
	assert_memory_equal(got, want, len);
	assert_int_equal(r.cached_chunks, 0);
	assert_int_equal(input_reader_stop(&r), 0);
	/* Only the short tail went through the page cache. */
	assert_in_range(cached_pages(dup_fd, len), 0, 1);
	close(dup_fd);
	free(want);
	free(got);
}

/*
 * A file the page cache holds (just written, a warm cache) is read there:
 * the probe says all of it is cached.
 */
static void test_cached_file_is_read_from_the_cache(void **state)
{
	size_t len = 3 * INPUT_READER_CHUNK + 123;
	unsigned char *want, *got = malloc(len + 1);
	struct input_reader r;
	int fd = pattern_file(len, &want);

	(void)state;
	assert_int_equal(read_to_end_fd(fd, got, len + 1), len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	cached_mask = 0xf;
	file_range_cached_hook = probe_says;
	input_reader_start(&r, fd);
	assert_true(r.active);
	memset(got, 0, len);
	assert_int_equal(read_to_end(&r, got, len + 1), len);
	assert_memory_equal(got, want, len);
	/* All 4 chunks, where a direct read would have gone to the disk. */
	assert_int_equal(r.cached_chunks, 4);
	assert_int_equal(input_reader_stop(&r), 0);
	free(want);
	free(got);
}

/*
 * Cached chunks and chunks that are not, one after the other: each is
 * read as the probe says, O_DIRECT turned off and on again.
 */
static void test_each_chunk_read_as_the_probe_says(void **state)
{
	size_t len = 4 * INPUT_READER_CHUNK;
	unsigned char *want, *got = malloc(len + 1);
	struct input_reader r;
	int fd = pattern_file(len, &want);

	(void)state;
	cached_mask = 0x6;
	file_range_cached_hook = probe_says;
	input_reader_start(&r, fd);
	assert_true(r.active);
	assert_int_equal(read_to_end(&r, got, len + 1), len);
	assert_memory_equal(got, want, len);
	assert_int_equal(r.cached_chunks, 2);
	assert_int_equal(input_reader_stop(&r), 0);
	free(want);
	free(got);
}

/*
 * The probe itself, on a memfd (the same on any machine): a range is
 * cached when every page of it is, a hole is not.
 */
static void test_file_range_cached_counts_every_page(void **state)
{
	static unsigned char data[3 * PAGE + 100];
	int fd = memfd_create("unit-input-reader", MFD_CLOEXEC);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write_all(fd, data, sizeof(data)), 0);
	assert_int_equal(ftruncate(fd, 8 * PAGE), 0);
	assert_true(file_range_cached(fd, 0, sizeof(data)));
	assert_true(file_range_cached(fd, PAGE, 3 * PAGE));
	assert_false(file_range_cached(fd, 2 * PAGE, 3 * PAGE));
	assert_false(file_range_cached(fd, 5 * PAGE, PAGE));
	assert_false(file_range_cached(fd, 0, 0));
	close(fd);
}

/* An offset O_DIRECT refuses: the thread reads through the cache. */
static void test_unaligned_offset_reads_buffered(void **state)
{
	size_t len = 2 * INPUT_READER_CHUNK + 5000;
	unsigned char *want, *got = malloc(len);
	struct input_reader r;
	int fd = pattern_file(len, &want);

	(void)state;
	assert_int_equal(lseek(fd, 5, SEEK_SET), 5);
	input_reader_start(&r, fd);
	assert_true(r.active);
	assert_int_equal(read_to_end(&r, got, len), len - 5);
	assert_memory_equal(got, want + 5, len - 5);
	assert_false(r.direct);
	assert_int_equal(input_reader_stop(&r), 0);
	free(want);
	free(got);
}

/* A pipe is read as it is, by the caller. */
static void test_not_a_file(void **state)
{
	struct input_reader r;
	int fds[2];

	(void)state;
	assert_int_equal(pipe(fds), 0);
	input_reader_start(&r, fds[0]);
	assert_false(r.active);
	assert_int_equal(input_reader_stop(&r), 0);
	/* The reader closed the fd it took over. */
	assert_int_equal(close(fds[0]), -1);
	assert_int_equal(errno, EBADF);
	close(fds[1]);
}

/* The parser stops early (-e, an error): the thread must not hang. */
static void test_stop_before_the_end(void **state)
{
	size_t len = 8 * INPUT_READER_CHUNK;
	unsigned char *want, got[10];
	struct input_reader r;
	int fd = pattern_file_in(disk_dir() ? disk_dir() : ".", len, &want);

	(void)state;
	input_reader_start(&r, fd);
	assert_true(r.active);
	/* 8 chunks for 4 slots: the thread is left waiting for room. */
	for (int i = 0; i < 2; i++)
		while (input_reader_read(&r, got, sizeof(got)) < 0)
			assert_int_equal(errno, EINTR);
	assert_memory_equal(got, want + 10, sizeof(got));
	assert_int_equal(input_reader_stop(&r), 0);
	free(want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bytes_arrive_and_skip_the_cache),
		cmocka_unit_test_teardown(test_cached_file_is_read_from_the_cache,
					  teardown_probe),
		cmocka_unit_test_teardown(test_each_chunk_read_as_the_probe_says,
					  teardown_probe),
		cmocka_unit_test(test_file_range_cached_counts_every_page),
		cmocka_unit_test(test_unaligned_offset_reads_buffered),
		cmocka_unit_test(test_not_a_file),
		cmocka_unit_test(test_stop_before_the_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
