// SPDX-License-Identifier: GPL-2.0-only
/*
 * Stream paths resolved beneath the root: the lexical refusals (absolute,
 * "..", ".", empty components) with their messages, and on a temporary
 * directory the lookups themselves: a symlink or a missing directory on
 * the way, a component too long, the cache forgotten after a rename.
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "confined-path.h"

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
		cmocka_unit_test_setup_teardown(test_forget_under_after_rename,
						fixture_setup,
						fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
