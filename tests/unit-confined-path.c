// SPDX-License-Identifier: GPL-2.0-only
/*
 * Stream paths resolved beneath the root: the lexical refusals (absolute,
 * "..", ".", empty components) with their messages, and on a temporary
 * directory the lookups themselves: a symlink or a missing directory on
 * the way, a component too long, the cache forgotten after a rename.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cmocka.h>

#include "confined-path.h"
#include "paths.h"

struct fixture {
	char path[64];
	int root_fd;
	struct confined_root cr;
	int saved_stderr;
	FILE *err;
};

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	strcpy(f->path, "/tmp/unit-confined.XXXXXX");
	if (!mkdtemp(f->path))
		return -1;
	f->root_fd = open(f->path, O_RDONLY | O_DIRECTORY);
	if (f->root_fd < 0 || mkdirat(f->root_fd, "a", 0755) ||
	    mkdirat(f->root_fd, "a/b", 0755) ||
	    symlinkat("a", f->root_fd, "link") ||
	    symlinkat("/", f->root_fd, "a/up"))
		return -1;
	confined_init(&f->cr, f->root_fd, false);
	f->saved_stderr = -1;
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	confined_release(&f->cr);
	close(f->root_fd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->path);
	if (system(cmd))
		return -1;
	free(f);
	return 0;
}

/* What the lookups print on stderr goes to f->err until stderr_text(). */
static void stderr_capture(struct fixture *f)
{
	fflush(stderr);
	f->err = tmpfile();
	assert_non_null(f->err);
	f->saved_stderr = dup(STDERR_FILENO);
	assert_true(f->saved_stderr >= 0);
	assert_true(dup2(fileno(f->err), STDERR_FILENO) >= 0);
}

static void stderr_text(struct fixture *f, char *buf, size_t size)
{
	size_t n;

	fflush(stderr);
	dup2(f->saved_stderr, STDERR_FILENO);
	close(f->saved_stderr);
	f->saved_stderr = -1;
	rewind(f->err);
	n = fread(buf, 1, size - 1, f->err);
	buf[n] = '\0';
	fclose(f->err);
}

/* lookup path: its status, and what it printed (empty when nothing). */
static int lookup(struct fixture *f, const char *path, int *dir_fd,
		  const char **name, char *msg, size_t size)
{
	int ret;

	stderr_capture(f);
	ret = confined_lookup(&f->cr, path, dir_fd, name);
	stderr_text(f, msg, size);
	return ret;
}

static void test_lexical_refusals(void **state)
{
	static const struct {
		const char *path;
		int ret;
		const char *msg;
	} cases[] = {
		{ "/etc/passwd", -EXDEV, "absolute path in stream refused" },
		{ "/", -EXDEV, "absolute path in stream refused" },
		{ "..", -EXDEV, "path in stream leaves the subvolume, refused" },
		{ "../x", -EXDEV,
		  "path in stream leaves the subvolume, refused" },
		{ "a/..", -EXDEV,
		  "path in stream leaves the subvolume, refused" },
		{ "a/../../b", -EXDEV,
		  "path in stream leaves the subvolume, refused" },
		{ ".", -EINVAL,
		  "path in stream has an empty or '.' component, refused" },
		{ "./a", -EINVAL,
		  "path in stream has an empty or '.' component, refused" },
		{ "a/./b", -EINVAL,
		  "path in stream has an empty or '.' component, refused" },
		{ "a//b", -EINVAL,
		  "path in stream has an empty or '.' component, refused" },
		{ "a/", -EINVAL,
		  "path in stream has an empty or '.' component, refused" },
		/* The first refusal found, left to right, is the one named. */
		{ "a//..", -EINVAL,
		  "path in stream has an empty or '.' component, refused" },
		{ "../a//b", -EXDEV,
		  "path in stream leaves the subvolume, refused" },
	};
	struct fixture *f = *state;
	char msg[512], want[512];
	const char *name;
	int fd, ret;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fd = -2;
		ret = lookup(f, cases[i].path, &fd, &name, msg, sizeof(msg));
		assert_int_equal(ret, cases[i].ret);
		assert_int_equal(fd, -2);
		snprintf(want, sizeof(want), "ERROR: %s: %s\n", cases[i].msg,
			 cases[i].path);
		assert_string_equal(msg, want);
	}
}

static void test_names_that_only_look_special(void **state)
{
	static const char *const names[] = {
		"...", "..a", ".a", "a.", "a..", " ", "\\", "a\nb", "\xff",
	};
	struct fixture *f = *state;
	const char *name;
	char msg[256];
	size_t i;
	int fd;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		fd = -2;
		assert_int_equal(lookup(f, names[i], &fd, &name, msg,
					sizeof(msg)), 0);
		assert_int_equal(fd, f->root_fd);
		assert_ptr_equal(name, names[i]);
		assert_string_equal(msg, "");
	}
}

static void test_root_and_top_level_names(void **state)
{
	struct fixture *f = *state;
	const char *name;
	char msg[256];
	int fd;

	assert_int_equal(lookup(f, "", &fd, &name, msg, sizeof(msg)), 0);
	assert_int_equal(fd, f->root_fd);
	assert_string_equal(name, ".");
	assert_int_equal(lookup(f, "file", &fd, &name, msg, sizeof(msg)), 0);
	assert_int_equal(fd, f->root_fd);
	assert_string_equal(name, "file");
	/* The final component may be anything, even a symlink. */
	assert_int_equal(lookup(f, "link", &fd, &name, msg, sizeof(msg)), 0);
	assert_int_equal(fd, f->root_fd);
	assert_string_equal(msg, "");
}

static void assert_same_dir(int fd, int root_fd, const char *rel)
{
	struct stat a, b;

	assert_int_equal(fstat(fd, &a), 0);
	assert_int_equal(fstatat(root_fd, rel, &b, 0), 0);
	assert_int_equal(a.st_dev, b.st_dev);
	assert_int_equal(a.st_ino, b.st_ino);
}

static void test_parent_directory_is_opened(void **state)
{
	struct fixture *f = *state;
	const char *path = "a/b/new file";
	const char *name;
	char msg[256];
	int fd, again;

	assert_int_equal(lookup(f, path, &fd, &name, msg, sizeof(msg)), 0);
	assert_ptr_equal(name, path + 4);
	assert_same_dir(fd, f->root_fd, "a/b");
	/* The same directory again comes from the cache. */
	assert_int_equal(lookup(f, "a/b/other", &again, &name, msg,
				sizeof(msg)), 0);
	assert_int_equal(again, fd);
	assert_int_equal(lookup(f, "a/x", &fd, &name, msg, sizeof(msg)), 0);
	assert_same_dir(fd, f->root_fd, "a");
	assert_string_equal(msg, "");
}

static void test_symlink_on_the_way_is_refused(void **state)
{
	static const char *const paths[] = { "link/b/x", "a/up/etc/passwd",
					     "a/up/x" };
	struct fixture *f = *state;
	char msg[512], want[512];
	const char *name;
	size_t i;
	int fd;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		assert_int_equal(lookup(f, paths[i], &fd, &name, msg,
					sizeof(msg)), -ELOOP);
		snprintf(want, sizeof(want),
			 "ERROR: path in stream goes through a symlink or out of the subvolume, refused: %s\n",
			 paths[i]);
		assert_string_equal(msg, want);
	}
}

static void test_missing_or_too_long_directory(void **state)
{
	struct fixture *f = *state;
	char path[NAME_MAX + 16], msg[1024], want[1024];
	const char *name;
	int fd;

	assert_int_equal(lookup(f, "a/missing/x", &fd, &name, msg,
				sizeof(msg)), -ENOENT);
	assert_string_equal(msg, "ERROR: cannot open directory of a/missing/x: No such file or directory\n");

	memset(path, 'd', NAME_MAX + 1);
	strcpy(path + NAME_MAX + 1, "/x");
	assert_int_equal(lookup(f, path, &fd, &name, msg, sizeof(msg)),
			 -ENAMETOOLONG);
	snprintf(want, sizeof(want),
		 "ERROR: cannot open directory of %s: File name too long\n",
		 path);
	assert_string_equal(msg, want);
}

static void test_forget_under_after_rename(void **state)
{
	struct fixture *f = *state;
	const char *name;
	char msg[256];
	int fd;

	assert_int_equal(lookup(f, "a/b/x", &fd, &name, msg, sizeof(msg)), 0);
	assert_int_equal(renameat(f->root_fd, "a", f->root_fd, "z"), 0);
	confined_forget_under(&f->cr, "a");
	assert_int_equal(lookup(f, "a/b/x", &fd, &name, msg, sizeof(msg)),
			 -ENOENT);
	assert_int_equal(lookup(f, "z/b/x", &fd, &name, msg, sizeof(msg)), 0);
	assert_same_dir(fd, f->root_fd, "z/b");
}

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

/* The sets of the cache with the soft fd limit at cur. */
static unsigned int sets_with_fd_limit(rlim_t cur, bool check_dev)
{
	struct confined_root cr;
	struct rlimit saved, rl;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
	rl = saved;
	rl.rlim_cur = cur;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	confined_init(&cr, -1, check_dev);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
	return cr.nr_sets;
}

/* Up to 256 sets of 4 directories, within half the fds: a power of two. */
static void test_cache_takes_at_most_half_the_fd_limit(void **state)
{
	struct rlimit rl;

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_max < 2048)
		skip();
	assert_int_equal(sets_with_fd_limit(2048, false), 256);
	assert_int_equal(sets_with_fd_limit(2047, false), 128);
	assert_int_equal(sets_with_fd_limit(1000, false), 64);
	assert_int_equal(sets_with_fd_limit(16, false), 2);
	assert_int_equal(sets_with_fd_limit(7, false), 1);
	/* A clone source's tree: one set. */
	assert_int_equal(sets_with_fd_limit(2048, true), 1);
}

/*
 * openat2() as an old kernel has it, or not at all: the lookups fall
 * back to walking one component at a time.  The executable's syscall()
 * comes before libc's.
 */
static bool no_openat2;

long syscall(long number, ...)
{
	static long (*real)(long, ...);
	long a[6];
	va_list ap;
	int i;

	va_start(ap, number);
	for (i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (number == SYS_openat2 && no_openat2) {
		errno = ENOSYS;
		return -1;
	}
	if (!real)
		real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
	return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/*
 * With stdin closed, so that the first directory opened gets fd 0: the
 * lookups that succeed, and each refusal with its errno.
 */
static void check_lookups_with_fd_0_free(struct fixture *f)
{
	const char *name;
	char msg[512];
	int fd, in = dup(STDIN_FILENO);

	assert_true(in > 0);
	assert_int_equal(mknodat(f->root_fd, "a/file", S_IFREG | 0644, 0), 0);
	close(STDIN_FILENO);
	assert_int_equal(confined_lookup(&f->cr, "a/x", &fd, &name), 0);
	assert_int_equal(fd, 0);
	assert_same_dir(fd, f->root_fd, "a");
	assert_string_equal(name, "x");
	assert_int_equal(lookup(f, "a/b/x", &fd, &name, msg, sizeof(msg)), 0);
	assert_same_dir(fd, f->root_fd, "a/b");
	assert_int_equal(lookup(f, "link/b/x", &fd, &name, msg, sizeof(msg)),
			 -ELOOP);
	assert_int_equal(lookup(f, "a/up/x", &fd, &name, msg, sizeof(msg)),
			 -ELOOP);
	assert_int_equal(lookup(f, "a/missing/x", &fd, &name, msg,
				sizeof(msg)), -ENOENT);
	assert_int_equal(lookup(f, "a/file/x", &fd, &name, msg, sizeof(msg)),
			 -ENOTDIR);
	assert_string_equal(msg, "ERROR: cannot open directory of a/file/x: Not a directory\n");
	/* The walk closes what it opened on the way, never the root. */
	assert_true(fcntl(f->root_fd, F_GETFD) >= 0);
	assert_int_equal(lookup(f, "a/y", &fd, &name, msg, sizeof(msg)), 0);
	assert_int_equal(fd, 0);
	confined_forget_under(&f->cr, "a");
	assert_int_equal(fcntl(0, F_GETFD), -1);
	assert_int_equal(dup2(in, STDIN_FILENO), STDIN_FILENO);
	close(in);
}

static void test_lookups_when_fd_0_is_free(void **state)
{
	check_lookups_with_fd_0_free(*state);
}

static void test_lookups_walk_without_openat2(void **state)
{
	no_openat2 = true;
	check_lookups_with_fd_0_free(*state);
	no_openat2 = false;
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* 40 directories looked up, then the cache released. */
static void fill_and_release(struct fixture *f, bool mkdirs)
{
	const char *name;
	char path[32];
	int fd, i;

	confined_init(&f->cr, f->root_fd, false);
	for (i = 0; i < 40; i++) {
		snprintf(path, sizeof(path), "d%d", i);
		if (mkdirs)
			assert_int_equal(mkdirat(f->root_fd, path, 0755), 0);
		snprintf(path, sizeof(path), "d%d/x", i);
		assert_int_equal(confined_lookup(&f->cr, path, &fd, &name), 0);
	}
	confined_release(&f->cr);
}

/*
 * Every directory the cache opened is closed, every path freed (the
 * second round, malloc's caches warm, ends where it began).
 */
static void test_release_closes_and_frees_the_cache(void **state)
{
	struct fixture *f = *state;
	struct mallinfo2 before, after;
	int fds;

	confined_release(&f->cr);
	fds = open_fds();
	fill_and_release(f, true);
	assert_int_equal(open_fds(), fds);
	before = mallinfo2();
	fill_and_release(f, false);
	after = mallinfo2();
	assert_int_equal(after.uordblks, before.uordblks);
	assert_int_equal(open_fds(), fds);
	confined_init(&f->cr, f->root_fd, false);
}

/*
 * A clone source's tree (check_dev): a directory on another filesystem
 * beneath it is refused, one on its own is not.  From "/", /proc is
 * another filesystem and /usr/bin usually is not.
 */
static void test_clone_source_lookups_stay_on_its_filesystem(void **state)
{
	struct confined_root cr;
	struct stat root, usr, proc;
	const char *name;
	int root_fd, fd, in;

	(void)state;
	root_fd = open("/", O_RDONLY | O_DIRECTORY);
	assert_true(root_fd >= 0);
	if (stat("/", &root) || stat("/usr/bin", &usr) ||
	    stat("/proc/self", &proc) || usr.st_dev != root.st_dev ||
	    proc.st_dev == root.st_dev) {
		close(root_fd);
		skip();
	}
	confined_init(&cr, root_fd, true);
	assert_int_equal(confined_lookup(&cr, "usr/bin/x", &fd, &name), 0);
	assert_int_equal(fstat(fd, &usr), 0);
	assert_int_equal(usr.st_dev, root.st_dev);
	/* Its directory gets fd 0, which is checked as any other. */
	in = dup(STDIN_FILENO);
	close(STDIN_FILENO);
	assert_int_equal(confined_lookup(&cr, "proc/sys/x", &fd, &name),
			 -EXDEV);
	assert_int_equal(dup2(in, STDIN_FILENO), STDIN_FILENO);
	close(in);
	confined_release(&cr);
	close(root_fd);
}

/* A directory looked up before comes from the cache: a rename is unseen. */
static void test_cached_directory_is_not_opened_again(void **state)
{
	struct fixture *f = *state;
	const char *name;
	int fd, again;

	assert_int_equal(confined_lookup(&f->cr, "a/b/x", &fd, &name), 0);
	assert_int_equal(renameat(f->root_fd, "a/b", f->root_fd, "a/c"), 0);
	assert_int_equal(confined_lookup(&f->cr, "a/b/y", &again, &name), 0);
	assert_int_equal(again, fd);
	assert_same_dir(again, f->root_fd, "a/c");
	/* Another directory of the same length and set is not a hit. */
	assert_int_equal(confined_lookup(&f->cr, "a/c/y", &again, &name), 0);
	assert_same_dir(again, f->root_fd, "a/c");
}

/*
 * Five directories of one set of four ways: the least recently used one
 * makes room.  Which are cached shows after they are all renamed.  The
 * fourth gets fd 0, a slot in use like the others.
 */
static void test_full_set_drops_its_least_recent_directory(void **state)
{
	struct fixture *f = *state;
	char names[5][16], path[128], to[16];
	unsigned int set = 0;
	const char *name;
	int n = 0, i, fd, in = dup(STDIN_FILENO);

	assert_int_equal(confined_lookup(&f->cr, "a/x", &fd, &name), 0);
	for (i = 0; n < 5; i++) {
		snprintf(names[n], sizeof(names[n]), "d%d", i);
		if (n && (path_hash(names[n], strlen(names[n])) &
			  (f->cr.nr_sets - 1)) != set)
			continue;
		set = path_hash(names[n], strlen(names[n])) &
		      (f->cr.nr_sets - 1);
		assert_int_equal(mkdirat(f->root_fd, names[n], 0755), 0);
		n++;
	}
	for (i = 0; i < 5; i++) {
		if (i == 3)
			close(STDIN_FILENO);
		snprintf(path, sizeof(path), "%s/x", names[i]);
		assert_int_equal(confined_lookup(&f->cr, path, &fd, &name), 0);
		assert_true(i != 3 || fd == 0);
		/* The first is used again: the second is the least recent. */
		if (i == 3) {
			snprintf(path, sizeof(path), "%s/y", names[0]);
			assert_int_equal(confined_lookup(&f->cr, path, &fd,
							 &name), 0);
		}
	}
	for (i = 0; i < 5; i++) {
		snprintf(to, sizeof(to), "e%d", i);
		assert_int_equal(renameat(f->root_fd, names[i], f->root_fd,
					  to), 0);
	}
	for (i = 0; i < 5; i++) {
		if (i == 1)
			continue;
		snprintf(path, sizeof(path), "%s/z", names[i]);
		assert_int_equal(confined_lookup(&f->cr, path, &fd, &name), 0);
		snprintf(to, sizeof(to), "e%d", i);
		assert_same_dir(fd, f->root_fd, to);
	}
	snprintf(path, sizeof(path), "%s/z", names[1]);
	stderr_capture(f);
	assert_int_equal(confined_lookup(&f->cr, path, &fd, &name), -ENOENT);
	stderr_text(f, path, sizeof(path));
	confined_release(&f->cr);
	confined_init(&f->cr, f->root_fd, false);
	assert_int_equal(dup2(in, STDIN_FILENO), STDIN_FILENO);
	close(in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lexical_refusals,
						fixture_setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(
			test_names_that_only_look_special,
			fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_root_and_top_level_names,
						fixture_setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(
			test_parent_directory_is_opened,
			fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(
			test_symlink_on_the_way_is_refused,
			fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(
			test_missing_or_too_long_directory,
			fixture_setup, fixture_teardown),
		cmocka_unit_test(test_path_is_under_needs_a_whole_component),
		cmocka_unit_test(test_roots_hold_paths_of_their_kind),
		cmocka_unit_test(test_path_relative_to_strips_the_dir),
		cmocka_unit_test(test_path_hash_reads_only_len_bytes),
		cmocka_unit_test(test_cache_takes_at_most_half_the_fd_limit),
		cmocka_unit_test_setup_teardown(test_lookups_when_fd_0_is_free,
						fixture_setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(
			test_lookups_walk_without_openat2,
			fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(
			test_release_closes_and_frees_the_cache,
			fixture_setup, fixture_teardown),
		cmocka_unit_test(test_clone_source_lookups_stay_on_its_filesystem),
		cmocka_unit_test_setup_teardown(
			test_cached_directory_is_not_opened_again,
			fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(
			test_full_set_drops_its_least_recent_directory,
			fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_forget_under_after_rename,
						fixture_setup,
						fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
