// SPDX-License-Identifier: GPL-2.0-only
/*
 * The warmer: what it looks up (paths of an incremental, beneath the
 * subvolume, ahead of the applier), what it reads ahead, how far ahead it
 * goes.  The page cache is watched on files of a disk-like filesystem
 * (page-cache.h), whatever the current directory and TMPDIR are, and the
 * warmer's question "was this chunk cached" is answered by the test.
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "input-reader.h"
#include "page-cache.h"
#include "receive-warm.h"
#include "stream-builder.h"
#include "utils.h"

#define PAGE		4096
#define FILE_SIZE	(3 * PAGE)
/* What the machine's load may delay an event by, at the very most. */
#define DEADLINE_S	120

static const uint8_t UUID_A[16] = { 0xaa, 1, 2, 3 };
static const uint8_t UUID_B[16] = { 0xbb, 1, 2, 3 };

static void sleep_ms(long ms)
{
	const struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&t, NULL);
}

/* Seconds on the monotonic clock, for the deadlines of the waits. */
static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/*
 * A directory standing for the subvolume: d/f0..d/f3 of three pages each,
 * dropped from the page cache (and asserted out of it when cold), and
 * "out", a symlink to /.  In dir/NAME.XXXXXX, the name left in name.
 */
static int make_root_in(const char *dir, char *name, bool cold)
{
	static unsigned char data[FILE_SIZE];
	char path[64];
	int fd, root;

	assert_non_null(mkdtemp(temp_name(name, PATH_MAX, dir,
					  "unit-receive-warm")));
	root = open(name, O_RDONLY | O_DIRECTORY);
	assert_true(root >= 0);
	assert_int_equal(mkdirat(root, "d", 0755), 0);
	memset(data, 'x', sizeof(data));
	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "d/f%d", i);
		fd = openat(root, path, O_RDWR | O_CREAT, 0644);
		assert_true(fd >= 0);
		assert_int_equal(write_all(fd, data, sizeof(data)), 0);
		assert_int_equal(fsync(fd), 0);
		if (cold)
			drop_from_cache(fd, sizeof(data));
		else
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
	}
	assert_int_equal(symlinkat("/", root, "out"), 0);
	return root;
}

/* For the tests that do not watch the page cache: anywhere will do. */
static int make_root(char *name)
{
	return make_root_in(disk_dir() ? disk_dir() : ".", name, false);
}

static void remove_root(const char *name, int root)
{
	char path[64];

	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "d/f%d", i);
		unlinkat(root, path, 0);
	}
	unlinkat(root, "d", AT_REMOVEDIR);
	unlinkat(root, "out", 0);
	close(root);
	rmdir(name);
}

/* Whether the page of root/path at offset is in the page cache. */
static bool page_cached(int root, const char *path, off_t offset)
{
	int fd = openat(root, path, O_RDONLY);
	size_t n;

	assert_true(fd >= 0);
	n = cached_pages_at(fd, offset, PAGE);
	close(fd);
	return n == 1;
}

static void begin(struct sb *b, bool snapshot)
{
	sb_header(b, 1);
	sb_cmd(b, snapshot ? BTRFS_SEND_C_SNAPSHOT : BTRFS_SEND_C_SUBVOL);
	sb_str(b, BTRFS_SEND_A_PATH, "snap");
	sb_attr(b, BTRFS_SEND_A_UUID, UUID_A, 16);
	sb_u64(b, BTRFS_SEND_A_CTRANSID, 9);
	if (snapshot) {
		sb_attr(b, BTRFS_SEND_A_CLONE_UUID, UUID_B, 16);
		sb_u64(b, BTRFS_SEND_A_CLONE_CTRANSID, 5);
	}
	sb_end_cmd(b);
}

static void put_write(struct sb *b, const char *path, uint64_t offset,
		      size_t len)
{
	static unsigned char data[64 * 1024];

	sb_cmd(b, BTRFS_SEND_C_WRITE);
	sb_str(b, BTRFS_SEND_A_PATH, path);
	sb_u64(b, BTRFS_SEND_A_FILE_OFFSET, offset);
	sb_attr(b, BTRFS_SEND_A_DATA, data, len);
	sb_end_cmd(b);
}

static void put_path_cmd(struct sb *b, uint16_t cmd, const char *path)
{
	sb_cmd(b, cmd);
	sb_str(b, BTRFS_SEND_A_PATH, path);
	if (cmd == BTRFS_SEND_C_MKFILE)
		sb_u64(b, BTRFS_SEND_A_INO, 300);
	if (cmd == BTRFS_SEND_C_CHOWN) {
		sb_u64(b, BTRFS_SEND_A_UID, 0);
		sb_u64(b, BTRFS_SEND_A_GID, 0);
	}
	sb_end_cmd(b);
}

/*
 * A partial write of f0 (its last page is read ahead), commands on f1 and
 * f2, a whole-page write of f3 (nothing to read), a name that is not
 * there, one behind a symlink, and a new file (not looked up).
 */
static void build_commands(struct sb *b, bool snapshot)
{
	begin(b, snapshot);
	put_write(b, "d/f0", 2 * PAGE, 100);
	put_path_cmd(b, BTRFS_SEND_C_CHOWN, "d/f1");
	put_path_cmd(b, BTRFS_SEND_C_UNLINK, "d/f2");
	put_write(b, "d/f3", PAGE, PAGE);
	put_path_cmd(b, BTRFS_SEND_C_UNLINK, "missing");
	put_path_cmd(b, BTRFS_SEND_C_UNLINK, "out/etc/passwd");
	put_path_cmd(b, BTRFS_SEND_C_MKFILE, "d/f1");
	sb_simple(b, BTRFS_SEND_C_END);
}

/* Wait for the thread to reach the end of the stream. */
static void wait_for_end(struct receive_warm *w)
{
	double deadline = now_s() + DEADLINE_S;
	bool ended = false;

	while (!ended && now_s() < deadline) {
		receive_warm_offset(w, &ended);
		if (!ended)
			sleep_ms(1);
	}
	assert_true(ended);
}

struct warm_result {
	uint64_t found;
	uint64_t read_ahead;
	uint64_t offset;	/* where the thread stopped parsing */
	uint64_t total;		/* the stream's length */
};

/* Run the warmer over the commands, the applier at offset in subvols. */
static struct warm_result run_warmer(bool snapshot, uint64_t offset,
				     unsigned int subvols, int root)
{
	struct warm_result res;
	struct receive_warm *w;
	struct sb b = { 0 };
	int fd;

	build_commands(&b, snapshot);
	fd = sb_fd(&b);
	assert_true(fd >= 0);
	w = receive_warm_start(fd);
	assert_non_null(w);
	receive_warm_follow(w, offset, subvols, root);
	wait_for_end(w);
	res.found = receive_warm_found(w, &res.read_ahead);
	res.offset = receive_warm_offset(w, &(bool){ false });
	res.total = b.len;
	receive_warm_stop(w);
	close(fd);
	sb_free(&b);
	return res;
}

static void test_incremental_paths_are_looked_up(void **state)
{
	char name[PATH_MAX];
	int root = make_root_in(require_disk_dir(), name, true);
	struct warm_result res = run_warmer(true, 0, 1, root);
	double deadline = now_s() + DEADLINE_S;

	(void)state;
	assert_int_equal(res.offset, res.total);
	/* f0..f3; not "missing", not through "out", not the new file. */
	assert_int_equal(res.found, 4);
	assert_int_equal(res.read_ahead, 1);
	/*
	 * The page the partial write of f0 reads; none of f3, which a write
	 * of whole pages does not read.
	 */
	while (!page_cached(root, "d/f0", 2 * PAGE) && now_s() < deadline)
		sleep_ms(1);
	assert_true(page_cached(root, "d/f0", 2 * PAGE));
	assert_false(page_cached(root, "d/f3", PAGE));
	remove_root(name, root);
}

static void test_full_stream_stops_the_thread(void **state)
{
	char name[PATH_MAX];
	int root = make_root(name);
	struct warm_result res = run_warmer(false, 0, 1, root);

	(void)state;
	assert_int_equal(res.found, 0);
	assert_int_equal(res.read_ahead, 0);
	/* It stopped after the SUBVOL command, not at the end. */
	assert_true(res.offset < res.total);
	remove_root(name, root);
}

/* The applier has not begun the subvolume, or is past the commands. */
static void test_nothing_warmed_out_of_step(void **state)
{
	char name[PATH_MAX];
	int root = make_root(name);

	(void)state;
	assert_int_equal(run_warmer(true, 0, 0, root).found, 0);
	assert_int_equal(run_warmer(true, 1 << 20, 1, root).found, 0);
	assert_int_equal(run_warmer(true, 0, 1, -1).found, 0);
	remove_root(name, root);
}

/* It parses no further than RECEIVE_WARM_AHEAD past the applier. */
static void test_bounded_ahead(void **state)
{
	const size_t cmd_len = 48 * 1024;
	uint64_t offset, total;
	struct receive_warm *w;
	struct sb b = { 0 };
	bool ended;
	int fd;

	(void)state;
	begin(&b, true);
	while (b.len < 3 * RECEIVE_WARM_AHEAD)
		put_write(&b, "nowhere", 0, cmd_len);
	total = b.len;
	fd = sb_fd(&b);
	assert_true(fd >= 0);
	w = receive_warm_start(fd);
	assert_non_null(w);
	receive_warm_follow(w, 0, 1, -1);
	for (double end = now_s() + DEADLINE_S; now_s() < end;) {
		if (receive_warm_offset(w, &ended) >= RECEIVE_WARM_AHEAD)
			break;
		sleep_ms(1);
	}
	/* Given time, it does not go on. */
	sleep_ms(200);
	offset = receive_warm_offset(w, &ended);
	assert_false(ended);
	assert_true(offset >= RECEIVE_WARM_AHEAD);
	assert_true(offset <= RECEIVE_WARM_AHEAD + 2 * cmd_len);
	/* The applier moves on: so does the warmer, to the end. */
	receive_warm_follow(w, total, 1, -1);
	wait_for_end(w);
	assert_int_equal(receive_warm_offset(w, &ended), total);
	receive_warm_stop(w);
	close(fd);
	sb_free(&b);
}

static bool cached_answer;

static bool probe_says(int fd, uint64_t offset, uint64_t len)
{
	(void)fd;
	(void)offset;
	(void)len;
	return cached_answer;
}

/*
 * Run the warmer over a stream file of 3 MiB on a disk-like filesystem,
 * out of the page cache or in it; the probe tells the warmer the same.
 */
static size_t pages_cached_after_warming(bool cached_before)
{
	char name[PATH_MAX];
	struct receive_warm *w;
	struct sb b = { 0 };
	size_t pages;
	int fd;

	begin(&b, true);
	while (b.len < 3 << 20)
		put_write(&b, "nowhere", 0, 48 * 1024);
	fd = mkstemp(temp_name(name, sizeof(name), require_disk_dir(),
			       "unit-receive-warm"));
	assert_true(fd >= 0);
	unlink(name);
	assert_int_equal(write_all(fd, b.buf, b.len), 0);
	assert_int_equal(fsync(fd), 0);
	if (!cached_before)
		drop_from_cache(fd, b.len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	cached_answer = cached_before;
	file_range_cached_hook = probe_says;
	w = receive_warm_start(fd);
	assert_non_null(w);
	receive_warm_follow(w, 0, 1, -1);
	receive_warm_follow(w, b.len, 1, -1);
	wait_for_end(w);
	receive_warm_stop(w);
	file_range_cached_hook = NULL;
	pages = cached_pages(fd, b.len);
	close(fd);
	sb_free(&b);
	return pages;
}

/*
 * What the thread read into the page cache leaves it again; what was
 * there before stays.
 */
static void test_stream_pages_dropped(void **state)
{
	(void)state;
	assert_int_equal(pages_cached_after_warming(false), 0);
	assert_true(pages_cached_after_warming(true) >= (3 << 20) / PAGE);
}

/* Not a regular file: nothing to start. */
static void test_pipe_is_not_warmed(void **state)
{
	int p[2];

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_null(receive_warm_start(p[0]));
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_incremental_paths_are_looked_up),
		cmocka_unit_test(test_full_stream_stops_the_thread),
		cmocka_unit_test(test_nothing_warmed_out_of_step),
		cmocka_unit_test(test_bounded_ahead),
		cmocka_unit_test(test_stream_pages_dropped),
		cmocka_unit_test(test_pipe_is_not_warmed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
