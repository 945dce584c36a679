/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Test-only view of the page cache: how many pages of a file's range are
 * resident, by mincore() on a shared mapping.  Include after <cmocka.h>.
 */
#ifndef TESTS_PAGE_CACHE_H
#define TESTS_PAGE_CACHE_H

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Resident pages of fd in [offset, offset + len); offset page-aligned. */
static inline size_t cached_pages_at(int fd, off_t offset, size_t len)
{
	size_t page = sysconf(_SC_PAGESIZE);
	size_t pages = (len + page - 1) / page, n = 0;
	unsigned char *vec = calloc(pages ? pages : 1, 1);
	void *map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, offset);

	assert_non_null(vec);
	assert_true(map != MAP_FAILED);
	assert_int_equal(mincore(map, len, vec), 0);
	for (size_t i = 0; i < pages; i++)
		n += vec[i] & 1;
	munmap(map, len);
	free(vec);
	return n;
}

static inline size_t cached_pages(int fd, size_t len)
{
	return cached_pages_at(fd, 0, len);
}

#endif
