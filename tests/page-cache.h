/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Test-only view of the page cache: how many pages of a file's range are
 * resident, by mincore() on a shared mapping; and where to put a file
 * whose cache behaves as a disk's.  Include after <cmocka.h>.
 */
#ifndef TESTS_PAGE_CACHE_H
#define TESTS_PAGE_CACHE_H

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/*
 * Drop len bytes of fd, synced, from the page cache, and assert that they
 * left it: the test's starting state.  POSIX_FADV_DONTNEED skips the pages
 * something holds at that moment (the per-CPU lists of new pages, a
 * reclaim in progress on a loaded machine), so it is asked again until
 * none is left, at most 1000 times.
 */
static inline void drop_from_cache(int fd, size_t len)
{
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED),
				 0);
		if (!cached_pages(fd, len))
			return;
		usleep(1000);
	}
	fail_msg("%zu pages stay in the page cache", cached_pages(fd, len));
}

/*
 * Whether a file in dir behaves as one on a disk: two pages written,
 * synced and dropped (POSIX_FADV_DONTNEED) are out of the cache, and
 * O_DIRECT reads are taken at an aligned offset and refused at offset 5.
 */
static inline bool disk_like_dir(const char *dir)
{
	static char buf[8192] __attribute__((aligned(4096)));
	char name[PATH_MAX];
	bool ok = false;
	int fd, flags;

	snprintf(name, sizeof(name), "%s/page-cache-probe.XXXXXX", dir);
	fd = mkstemp(name);
	if (fd < 0)
		return false;
	unlink(name);
	if (pwrite(fd, buf, sizeof(buf), 0) != sizeof(buf) || fsync(fd) ||
	    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED))
		goto out;
	flags = fcntl(fd, F_GETFL);
	if (cached_pages(fd, sizeof(buf)) ||
	    fcntl(fd, F_SETFL, flags | O_DIRECT) < 0 ||
	    pread(fd, buf, 4096, 0) != 4096)
		goto out;
	ok = pread(fd, buf, 4096, 5) < 0 && errno == EINVAL;
out:
	close(fd);
	return ok;
}

/*
 * Where the tests that watch the page cache put their files: a directory
 * on a filesystem that keeps its cache apart from its storage, as the
 * disks that streams live on do.  The current directory and TMPDIR may be
 * a tmpfs (whose pages are the file: never dropped) or an overlayfs, so
 * the test binary's own directory is tried first, then /var/tmp, TMPDIR
 * and the current directory.  NULL when none of them is such.
 */
static inline const char *disk_dir(void)
{
	static char exe_dir[PATH_MAX];
	static const char *found;
	static bool looked;
	const char *tries[4];
	ssize_t n;

	if (looked)
		return found;
	looked = true;
	n = readlink("/proc/self/exe", exe_dir, sizeof(exe_dir) - 1);
	exe_dir[n > 0 ? n : 0] = '\0';
	tries[0] = n > 0 ? dirname(exe_dir) : ".";
	tries[1] = "/var/tmp";
	tries[2] = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	tries[3] = ".";
	for (int i = 0; i < 4 && !found; i++)
		if (disk_like_dir(tries[i]))
			found = tries[i];
	return found;
}

/*
 * disk_dir(), or skip the test (cmocka's skip) where there is none; in CI
 * (CI set) a missing one fails, as a missing prerequisite does there.
 */
static inline const char *require_disk_dir(void)
{
	const char *dir = disk_dir();
	const char *ci = getenv("CI");

	if (!dir && ci && *ci)
		fail_msg("no directory on a disk-like filesystem found, required in CI");
	if (!dir) {
		print_message("no directory on a disk-like filesystem found\n");
		skip();
	}
	return dir;
}

/* dir/base.XXXXXX in buf, for mkstemp() or mkdtemp(). */
static inline char *temp_name(char *buf, size_t size, const char *dir,
			      const char *base)
{
	snprintf(buf, size, "%s/%s.XXXXXX", dir, base);
	return buf;
}

#endif
