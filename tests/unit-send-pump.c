// SPDX-License-Identifier: GPL-2.0-only
/*
 * The send pump's repair of a restarted ioctl, fed through real pipes as
 * the kernel would fill them: cut attempts, restarts seen only in the
 * content, a replay that differs, a resumed stream, a header-less one.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "progress.h"
#include "progress-tty.h"
#include "resume.h"
#include "send-pump.h"
#include "stream-builder.h"

#define CHUNK	(64 * 1024)

/*
 * The pump's naps, counted per thread: the executable's nanosleep()
 * comes before libc's.
 */
static __thread unsigned long naps;

int nanosleep(const struct timespec *req, struct timespec *rem)
{
	static int (*real)(const struct timespec *, struct timespec *);

	naps++;
	if (!real)
		real = (int (*)(const struct timespec *, struct timespec *))
		       dlsym(RTLD_NEXT, "nanosleep");
	return real(req, rem);
}

/* SUBVOL, then WRITEs of assorted sizes (some spliced), then END. */
static void build_stream(struct sb *b, bool header, bool end, int seed)
{
	static unsigned char data[60000];
	const uint8_t uuid[16] = { 1, 2, 3 };
	size_t sizes[] = { 10, 40000, 300, 59000, 5, 20000, 4096, 17000 };
	size_t i;

	for (i = 0; i < sizeof(data); i++)
		data[i] = (i * 7 + seed) & 0xff;
	if (header)
		sb_header(b, 1);
	sb_cmd(b, BTRFS_SEND_C_SUBVOL);
	sb_str(b, BTRFS_SEND_A_PATH, "vol");
	sb_attr(b, BTRFS_SEND_A_UUID, uuid, 16);
	sb_u64(b, BTRFS_SEND_A_CTRANSID, 7);
	sb_end_cmd(b);
	for (i = 0; i < 3 * sizeof(sizes) / sizeof(sizes[0]); i++) {
		sb_cmd(b, BTRFS_SEND_C_WRITE);
		sb_str(b, BTRFS_SEND_A_PATH, "f");
		sb_u64(b, BTRFS_SEND_A_FILE_OFFSET, i * 65536);
		sb_attr(b, BTRFS_SEND_A_DATA, data, sizes[i % 8]);
		sb_end_cmd(b);
	}
	if (end)
		sb_simple(b, BTRFS_SEND_C_END);
}

struct feeder {
	int fd;
	const unsigned char *data;
	size_t from, len;
	const size_t *ends;	/* NULL, or where each unit ends */
	__s64 *send_fd;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/*
 * The rest of an attempt, once the pump has taken the fd out: in one
 * write, or (with ends) a unit every 20 us, each in a write of its own,
 * as the kernel writes them.
 */
static void *feed_rest(void *arg)
{
	struct feeder *f = arg;
	const size_t *end = f->ends;
	size_t from = f->from, to;
	uint64_t next;

	while (__atomic_load_n(f->send_fd, __ATOMIC_SEQ_CST) != -1)
		usleep(100);
	while (end && *end <= from)
		end++;
	next = now_ns();
	while (from < f->len) {
		to = end ? *end++ : f->len;
		while (end && now_ns() < next)
			;
		next += 20000;
		assert_int_equal(write(f->fd, f->data + from, to - from),
				 (ssize_t)(to - from));
		from = to;
	}
	close(f->fd);
	return NULL;
}

/* write(2) calls this thread has made so far. */
static unsigned long writes_made(void)
{
	FILE *f = fopen("/proc/thread-self/io", "r");
	char line[128];
	unsigned long n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "syscw: %lu", &n) == 1)
			break;
	fclose(f);
	return n;
}

/*
 * One attempt whose pipe holds data[0..len): the first `early` bytes are
 * in the pipe before the pump starts (all of them are checked by content),
 * the rest come after it took the fd out of the ioctl's arguments, paced
 * by unit if ends is given.  Returns the writes the pump made.
 */
static unsigned long paced_attempt(struct send_pump *p,
				   const unsigned char *data, size_t len,
				   size_t early, const size_t *ends)
{
	unsigned long writes;
	struct feeder f;
	pthread_t t;
	__s64 send_fd;
	int pfd[2];

	assert_int_equal(pipe(pfd), 0);
	assert_true(fcntl(pfd[1], F_SETPIPE_SZ, 1 << 20) >= (1 << 19));
	if (early > len)
		early = len;
	assert_int_equal(write(pfd[1], data, early), (ssize_t)early);
	send_fd = pfd[1];
	f = (struct feeder){ dup(pfd[1]), data, early, len, ends, &send_fd };
	assert_int_equal(pthread_create(&t, NULL, feed_rest, &f), 0);
	p->in = pfd[0];
	p->write_end = pfd[1];
	p->send_fd = &send_fd;
	writes = writes_made();
	send_pump_attempt(p);
	writes = writes_made() - writes;
	pthread_join(t, NULL);
	assert_int_equal(send_fd, -1);
	return writes;
}

static void attempt(struct send_pump *p, const unsigned char *data,
		    size_t len, size_t early)
{
	paced_attempt(p, data, len, early, NULL);
}

static int out_file(void)
{
	int fd = open("/tmp", O_TMPFILE | O_RDWR, 0600);

	assert_true(fd >= 0);
	return fd;
}

static void assert_output(int fd, const unsigned char *want, size_t len)
{
	unsigned char *got = malloc(len + 1);
	off_t size = lseek(fd, 0, SEEK_END);

	assert_int_equal(size, (off_t)len);
	assert_int_equal(pread(fd, got, len + 1, 0), (ssize_t)len);
	assert_memory_equal(got, want, len);
	free(got);
	close(fd);
}

static void test_whole_stream_passes_unchanged(void **state)
{
	struct send_pump p;
	struct sb b = { 0 };
	int out = out_file();

	(void)state;
	build_stream(&b, true, true, 0);
	assert_int_equal(send_pump_init(&p, out, CHUNK, false, false, NULL,
					 NULL), 0);
	attempt(&p, b.buf, b.len, 100);
	assert_false(send_pump_restarted(&p, 0));
	assert_int_equal(send_pump_finish(&p, 0), 0);
	send_pump_free(&p);
	assert_output(out, b.buf, b.len);
	sb_free(&b);
}

/*
 * The kernel's restart failed with EBADF: the first attempt's pipe ends
 * at cut, anywhere (in a header, in a spliced payload, at a boundary),
 * and the next attempt's repeated part is dropped.
 */
static void test_cut_attempt_then_whole_one(void **state)
{
	struct sb b = { 0 };
	size_t cut;

	(void)state;
	build_stream(&b, true, true, 0);
	for (cut = 1; cut < b.len; cut += 997) {
		struct send_pump p;
		int out = out_file();

		assert_int_equal(send_pump_init(&p, out, CHUNK, false, false,
						NULL, NULL), 0);
		attempt(&p, b.buf, cut, 60);
		assert_true(send_pump_restarted(&p, -EBADF));
		assert_false(p.restart_seen);
		attempt(&p, b.buf, b.len, 60);
		assert_false(send_pump_restarted(&p, 0));
		assert_int_equal(send_pump_finish(&p, 0), 0);
		send_pump_free(&p);
		assert_output(out, b.buf, b.len);
	}
	sb_free(&b);
}

/*
 * A restart before the pump took the fd out: the same pipe holds the cut
 * stream and the whole one after it.  Nothing of the restart is written;
 * the next attempt completes the stream.
 */
static void test_restart_seen_in_content(void **state)
{
	struct sb b = { 0 }, both = { 0 };
	size_t cut;

	(void)state;
	build_stream(&b, true, true, 0);
	for (cut = 3; cut < b.len; cut += 1499) {
		struct send_pump p;
		int out = out_file();

		both.len = 0;
		sb_put(&both, b.buf, cut);
		sb_put(&both, b.buf, b.len);
		assert_int_equal(send_pump_init(&p, out, CHUNK, false, false,
						NULL, NULL), 0);
		attempt(&p, both.buf, both.len, both.len);
		assert_true(p.restart_seen);
		assert_true(send_pump_restarted(&p, 0));
		assert_true(p.written <= cut);
		attempt(&p, b.buf, b.len, 60);
		assert_int_equal(send_pump_finish(&p, 0), 0);
		send_pump_free(&p);
		assert_output(out, b.buf, b.len);
	}
	sb_free(&both);
	sb_free(&b);
}

static void test_replay_that_differs_is_refused(void **state)
{
	struct sb b = { 0 }, other = { 0 };
	struct send_pump p;
	int out = out_file();

	(void)state;
	build_stream(&b, true, true, 0);
	build_stream(&other, true, true, 1);
	assert_int_equal(send_pump_init(&p, out, CHUNK, false, false, NULL,
					 NULL), 0);
	attempt(&p, b.buf, b.len / 2, 60);
	attempt(&p, other.buf, other.len, 60);
	assert_int_equal(send_pump_finish(&p, 0), -ESTALE);
	assert_non_null(strstr(p.msg, "at stream offset"));
	send_pump_free(&p);
	close(out);
	sb_free(&b);
	sb_free(&other);
}

/* --resume: the token's prefix is checked and dropped, the frame first. */
static void test_resume_with_a_restart(void **state)
{
	const unsigned char frame[RESUME_FRAME_LEN] = "btrfs-resume";
	struct send_stream_pos token;
	struct sb b = { 0 }, want = { 0 };
	struct send_pump p;
	int out = out_file();
	int scratch = out_file();

	(void)state;
	build_stream(&b, true, true, 0);
	/* The position after a few whole commands, as a receiver keeps it. */
	assert_int_equal(send_pump_init(&p, scratch, CHUNK, false, false,
					 NULL, NULL), 0);
	attempt(&p, b.buf, b.len / 3, b.len);
	token = p.done;
	send_pump_free(&p);
	close(scratch);
	assert_true(token.offset > 0 && token.offset < b.len / 3);

	sb_put(&want, frame, sizeof(frame));
	sb_put(&want, b.buf + token.offset, b.len - token.offset);
	assert_int_equal(send_pump_init(&p, out, CHUNK, false, false, &token,
					 frame), 0);
	attempt(&p, b.buf, b.len * 2 / 3, 60);
	attempt(&p, b.buf, b.len, 60);
	assert_int_equal(send_pump_finish(&p, 0), 0);
	send_pump_free(&p);
	assert_output(out, want.buf, want.len);
	sb_free(&b);
	sb_free(&want);
}

/* --resume onto another stream: its prefix is not the token's. */
static void test_resume_prefix_that_differs_is_refused(void **state)
{
	const unsigned char frame[RESUME_FRAME_LEN] = "btrfs-resume";
	struct send_stream_pos token;
	struct sb b = { 0 }, other = { 0 };
	struct send_pump p;
	int out = out_file();
	int scratch = out_file();

	(void)state;
	build_stream(&b, true, true, 0);
	build_stream(&other, true, true, 1);
	assert_int_equal(send_pump_init(&p, scratch, CHUNK, false, false,
					 NULL, NULL), 0);
	attempt(&p, b.buf, b.len / 3, b.len);
	token = p.done;
	send_pump_free(&p);
	close(scratch);

	assert_int_equal(send_pump_init(&p, out, CHUNK, false, false, &token,
					 frame), 0);
	attempt(&p, other.buf, other.len, 60);
	assert_int_equal(send_pump_finish(&p, 0), -ESTALE);
	assert_true(p.frame_due);
	assert_int_equal(lseek(out, 0, SEEK_END), 0);
	send_pump_free(&p);
	close(out);
	sb_free(&b);
	sb_free(&other);
}

/* send -e: no stream header, no END; a SUBVOL again is a restart. */
static void test_headerless_restart(void **state)
{
	struct sb b = { 0 }, both = { 0 };
	struct send_pump p;
	int out = out_file();

	(void)state;
	build_stream(&b, false, false, 0);
	sb_put(&both, b.buf, 4242);
	sb_put(&both, b.buf, b.len);
	assert_int_equal(send_pump_init(&p, out, CHUNK, true, true, NULL,
					 NULL), 0);
	attempt(&p, both.buf, both.len, both.len);
	assert_true(p.restart_seen);
	attempt(&p, b.buf, b.len, 60);
	assert_int_equal(send_pump_finish(&p, 0), 0);
	send_pump_free(&p);
	assert_output(out, b.buf, b.len);
	sb_free(&b);
	sb_free(&both);
}

/*
 * The kernel's stream stops short_by bytes before its end and the ioctl says
 * 0: the pump's finish is an error.
 */
static void assert_stream_cut_short_is_an_error(size_t short_by)
{
	struct sb b = { 0 };
	struct send_pump p;
	int out = out_file();

	build_stream(&b, true, true, 0);
	assert_int_equal(send_pump_init(&p, out, CHUNK, false, false, NULL,
					 NULL), 0);
	attempt(&p, b.buf, b.len - short_by, 60);
	assert_int_equal(send_pump_finish(&p, 0), -EIO);
	send_pump_free(&p);
	close(out);
	sb_free(&b);
}

/* The kernel's stream stops inside a command. */
static void test_stream_ending_inside_a_command_is_an_error(void **state)
{
	(void)state;
	assert_stream_cut_short_is_an_error(3);
}

#define TRICKLED_CMDS	2000

/*
 * Small commands that trickle in, one per write, go out in far fewer
 * writes than commands: the pump lets them gather instead of waking for
 * each one.
 */
static void test_trickled_commands_go_out_gathered(void **state)
{
	static size_t ends[TRICKLED_CMDS + 1];
	struct sb b = { 0 };
	struct send_pump p;
	unsigned long writes;
	int out = out_file();
	size_t i;

	(void)state;
	sb_header(&b, 1);
	for (i = 0; i < TRICKLED_CMDS; i++) {
		sb_cmd(&b, i ? BTRFS_SEND_C_UTIMES : BTRFS_SEND_C_SUBVOL);
		sb_str(&b, BTRFS_SEND_A_PATH, "some/file");
		sb_u64(&b, BTRFS_SEND_A_INO, i);
		sb_end_cmd(&b);
		ends[i] = b.len;
	}
	sb_simple(&b, BTRFS_SEND_C_END);
	ends[i] = b.len;
	assert_int_equal(send_pump_init(&p, out, CHUNK, false, false, NULL,
					 NULL), 0);
	/* The header comes first: the pump disarms on its first read. */
	writes = paced_attempt(&p, b.buf, b.len,
			       BTRFS_SEND_STREAM_HEADER_LEN, ends);
	assert_int_equal(send_pump_finish(&p, 0), 0);
	send_pump_free(&p);
	assert_output(out, b.buf, b.len);
	printf("%d commands, one every 20 us: %lu writes\n", TRICKLED_CMDS,
	       writes);
	assert_true(writes < TRICKLED_CMDS / 5);
	sb_free(&b);
}

/*
 * An output pipe and the thread that reads it (nap us after each read of
 * at most 4 KiB: a slow reader), collecting what the pump wrote.
 */
struct collector {
	int rfd, wfd;
	unsigned char *buf;
	size_t len, cap;
	useconds_t nap;
	pthread_t t;
};

static void *collect(void *arg)
{
	struct collector *c = arg;
	size_t most = c->nap ? 4096 : 65536;
	ssize_t n;

	for (;;) {
		if (c->len + most > c->cap) {
			c->cap = 2 * c->cap + most;
			c->buf = realloc(c->buf, c->cap);
			assert_non_null(c->buf);
		}
		n = read(c->rfd, c->buf + c->len, most);
		if (n <= 0)
			break;
		c->len += n;
		if (c->nap)
			usleep(c->nap);
	}
	close(c->rfd);
	return NULL;
}

static int pipe_out(struct collector *c, bool nonblock, useconds_t nap)
{
	int pfd[2];

	memset(c, 0, sizeof(*c));
	assert_int_equal(pipe(pfd), 0);
	c->rfd = pfd[0];
	c->wfd = pfd[1];
	c->nap = nap;
	if (nonblock) {
		assert_true(fcntl(c->wfd, F_SETPIPE_SZ, 4096) > 0);
		assert_int_equal(fcntl(c->wfd, F_SETFL, O_NONBLOCK), 0);
	}
	assert_int_equal(pthread_create(&c->t, NULL, collect, c), 0);
	return c->wfd;
}

/* The same with a socket, its sending end's file flags set to flags. */
static int socket_out(struct collector *c, int flags, useconds_t nap)
{
	int sv[2], size = 4096;

	memset(c, 0, sizeof(*c));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	c->rfd = sv[0];
	c->wfd = sv[1];
	c->nap = nap;
	assert_int_equal(setsockopt(c->wfd, SOL_SOCKET, SO_SNDBUF, &size,
				    sizeof(size)), 0);
	assert_int_equal(fcntl(c->wfd, F_SETFL, flags), 0);
	assert_int_equal(pthread_create(&c->t, NULL, collect, c), 0);
	return c->wfd;
}

static void assert_collected(struct collector *c, const unsigned char *want,
			     size_t len)
{
	close(c->wfd);
	pthread_join(c->t, NULL);
	assert_int_equal(c->len, len);
	assert_memory_equal(c->buf, want, len);
	free(c->buf);
}

/*
 * Into a pipe, payloads past the checked part are spliced: the stream
 * still passes unchanged, whole or cut and attempted again.
 */
static void test_into_a_pipe_the_stream_passes_unchanged(void **state)
{
	struct sb b = { 0 };
	struct collector c;
	size_t cut;

	(void)state;
	build_stream(&b, true, true, 0);
	for (cut = 0; cut < b.len; cut += 12007) {
		struct send_pump p;

		assert_int_equal(send_pump_init(&p, pipe_out(&c, false, 0),
						 CHUNK, false, false, NULL,
						 NULL), 0);
		assert_true(p.can_splice);
		if (cut)
			attempt(&p, b.buf, cut, 60);
		attempt(&p, b.buf, b.len, 60);
		assert_int_equal(send_pump_finish(&p, 0), 0);
		send_pump_free(&p);
		assert_collected(&c, b.buf, b.len);
	}
	sb_free(&b);
}

/* CPU time of this thread, in ms. */
static uint64_t thread_cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * A slow reader of a non-blocking pipe, where splice says EAGAIN: the
 * pump waits for room (poll) instead of spinning, and the output is
 * whole.  (A spin costs some 40 ms of CPU here, a wait 1 ms.)
 */
static void test_full_output_is_waited_for_not_spun_on(void **state)
{
	struct sb b = { 0 };
	struct send_pump p;
	struct collector c;
	uint64_t cpu;

	(void)state;
	build_stream(&b, true, true, 0);
	assert_int_equal(send_pump_init(&p, pipe_out(&c, true, 4000), CHUNK,
					 false, false, NULL, NULL), 0);
	cpu = thread_cpu_ms();
	attempt(&p, b.buf, b.len, 60);
	cpu = thread_cpu_ms() - cpu;
	assert_int_equal(send_pump_finish(&p, 0), 0);
	send_pump_free(&p);
	assert_collected(&c, b.buf, b.len);
	printf("%zu bytes to a slow reader: %llu ms of CPU\n", b.len,
	       (unsigned long long)cpu);
	assert_true(cpu < 15);
	sb_free(&b);
}

/* Into a file the pump copies through a buffer of 1 MiB or two chunks. */
static void test_into_a_file_the_pump_copies(void **state)
{
	struct send_pump p;
	struct collector c;
	int out = out_file();

	(void)state;
	assert_int_equal(send_pump_init(&p, out, CHUNK, false, false, NULL,
					 NULL), 0);
	assert_false(p.can_splice);
	assert_int_equal(p.size, 1024 * 1024);
	send_pump_free(&p);
	assert_int_equal(send_pump_init(&p, out, 4 << 20, false, false, NULL,
					 NULL), 0);
	assert_int_equal(p.size, 8 << 20);
	send_pump_free(&p);
	close(out);
	assert_int_equal(send_pump_init(&p, pipe_out(&c, false, 0), CHUNK,
					 false, false, NULL, NULL), 0);
	assert_true(p.can_splice);
	assert_int_equal(p.size, 2 * CHUNK);
	send_pump_free(&p);
	assert_collected(&c, NULL, 0);
}

/* The restart hidden in what the pipe held before the first read. */
static void test_into_a_pipe_a_restart_is_seen_in_content(void **state)
{
	struct sb b = { 0 }, both = { 0 };
	struct collector c;
	size_t cut;

	(void)state;
	build_stream(&b, true, true, 0);
	for (cut = 3; cut < b.len; cut += 29989) {
		struct send_pump p;

		both.len = 0;
		sb_put(&both, b.buf, cut);
		sb_put(&both, b.buf, b.len);
		assert_int_equal(send_pump_init(&p, pipe_out(&c, false, 0),
						 CHUNK, false, false, NULL,
						 NULL), 0);
		attempt(&p, both.buf, both.len, both.len);
		assert_true(p.restart_seen);
		attempt(&p, b.buf, b.len, 60);
		assert_int_equal(send_pump_finish(&p, 0), 0);
		send_pump_free(&p);
		assert_collected(&c, b.buf, b.len);
	}
	sb_free(&both);
	sb_free(&b);
}

/* The write end is closed whatever its number, 0 included. */
static void test_release_closes_the_write_end(void **state)
{
	struct send_pump p = { .write_end = -1 };
	int in = dup(STDIN_FILENO), pfd[2];
	char c;

	(void)state;
	assert_int_equal(pipe(pfd), 0);
	assert_int_equal(dup2(pfd[1], STDIN_FILENO), STDIN_FILENO);
	close(pfd[1]);
	p.write_end = STDIN_FILENO;
	send_pump_release(&p);
	assert_int_equal(p.write_end, -1);
	assert_int_equal(read(pfd[0], &c, 1), 0);
	close(pfd[0]);
	send_pump_release(&p);
	assert_int_equal(dup2(in, STDIN_FILENO), STDIN_FILENO);
	close(in);
}

/* --progress: bytes and commands written, the last path (capped). */
static void test_progress_counts_what_goes_out(void **state)
{
	static char long_path[400];
	struct send_pump_progress pp = { 0 };
	struct progress prog;
	struct sb b = { 0 };
	struct send_pump p;
	struct collector c;
	int out;

	(void)state;
	progress_init(&prog, &progress_tty_view, "send", "Sent", 0);
	pp.prog = &prog;
	build_stream(&b, true, true, 0);
	out = out_file();
	assert_int_equal(send_pump_init(&p, out, CHUNK, false, false, NULL,
					 NULL), 0);
	p.progress = &pp;
	attempt(&p, b.buf, b.len, 60);
	assert_int_equal(send_pump_finish(&p, 0), 0);
	send_pump_free(&p);
	close(out);
	assert_int_equal(pp.moved, b.len);
	assert_int_equal(pp.cmds, 26);
	assert_int_equal(pp.path_len, 1);
	assert_memory_equal(pp.path, "f", 1);
	assert_int_equal(prog.seen_bytes, b.len);

	/* Into a pipe, spliced payloads count as well; a long path is cut. */
	memset(&pp, 0, sizeof(pp));
	pp.prog = &prog;
	memset(long_path, 'p', sizeof(long_path) - 1);
	b.len -= BTRFS_SEND_CMD_HEADER_LEN;
	sb_cmd(&b, BTRFS_SEND_C_CHMOD);
	sb_str(&b, BTRFS_SEND_A_PATH, long_path);
	sb_u64(&b, BTRFS_SEND_A_MODE, 0644);
	sb_end_cmd(&b);
	sb_simple(&b, BTRFS_SEND_C_END);
	assert_int_equal(send_pump_init(&p, pipe_out(&c, false, 0), CHUNK,
					 false, false, NULL, NULL), 0);
	p.progress = &pp;
	attempt(&p, b.buf, b.len, 60);
	assert_int_equal(send_pump_finish(&p, 0), 0);
	send_pump_free(&p);
	assert_collected(&c, b.buf, b.len);
	assert_int_equal(pp.moved, b.len);
	assert_int_equal(pp.cmds, 27);
	assert_int_equal(pp.path_len, SEND_PUMP_PATH_SHOWN);
	assert_memory_equal(pp.path, long_path, SEND_PUMP_PATH_SHOWN);
	sb_free(&b);
}

/* A storm of signals at the pump's thread, without SA_RESTART. */
struct storm {
	pthread_t target;
	volatile bool stop;
};

static void on_signal(int sig)
{
	(void)sig;
}

static void *signal_storm(void *arg)
{
	struct storm *st = arg;

	while (!st->stop) {
		pthread_kill(st->target, SIGUSR1);
		usleep(200);
	}
	return NULL;
}

/* Interrupted reads, writes, splices and polls are taken up again. */
static void test_signals_during_a_send_change_nothing(void **state)
{
	struct sigaction sa = { .sa_handler = on_signal }, old;
	struct storm st = { .target = pthread_self() };
	struct sb b = { 0 };
	struct collector c;
	pthread_t t;
	int round;

	(void)state;
	build_stream(&b, true, true, 0);
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	assert_int_equal(pthread_create(&t, NULL, signal_storm, &st), 0);
	for (round = 0; round < 3; round++) {
		struct send_pump p;
		int out = round ? pipe_out(&c, round == 2, 500) : out_file();

		assert_int_equal(send_pump_init(&p, out, CHUNK, false, false,
						 NULL, NULL), 0);
		paced_attempt(&p, b.buf, b.len / 2, 60, NULL);
		attempt(&p, b.buf, b.len, 60);
		assert_int_equal(send_pump_finish(&p, 0), 0);
		send_pump_free(&p);
		if (round)
			assert_collected(&c, b.buf, b.len);
		else
			assert_output(out, b.buf, b.len);
	}
	st.stop = true;
	pthread_join(t, NULL);
	sigaction(SIGUSR1, &old, NULL);
	sb_free(&b);
}

/* Bytes this thread passed to write(2) and its kin so far. */
static unsigned long bytes_written(void)
{
	FILE *f = fopen("/proc/thread-self/io", "r");
	char line[128];
	unsigned long n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "wchar: %lu", &n) == 1)
			break;
	fclose(f);
	return n;
}

/*
 * Into a pipe, large payloads past the checked part are spliced, not
 * copied: after one, the pump reads little, so that the next one is
 * still in the pipe to splice.
 */
static void test_large_payloads_are_spliced_not_copied(void **state)
{
	static unsigned char data[60000];
	struct sb b = { 0 };
	struct send_pump p;
	struct collector c;
	unsigned long copied;
	const uint8_t uuid[16] = { 1 };
	int i;

	(void)state;
	sb_header(&b, 1);
	sb_cmd(&b, BTRFS_SEND_C_SUBVOL);
	sb_str(&b, BTRFS_SEND_A_PATH, "vol");
	sb_attr(&b, BTRFS_SEND_A_UUID, uuid, 16);
	sb_u64(&b, BTRFS_SEND_A_CTRANSID, 7);
	sb_end_cmd(&b);
	for (i = 0; i < 40; i++) {
		memset(data, i, sizeof(data));
		sb_cmd(&b, BTRFS_SEND_C_WRITE);
		sb_str(&b, BTRFS_SEND_A_PATH, "f");
		sb_u64(&b, BTRFS_SEND_A_FILE_OFFSET, i * sizeof(data));
		sb_attr(&b, BTRFS_SEND_A_DATA, data, sizeof(data) - i);
		sb_end_cmd(&b);
	}
	sb_simple(&b, BTRFS_SEND_C_END);
	assert_int_equal(send_pump_init(&p, pipe_out(&c, false, 0), CHUNK,
					 false, false, NULL, NULL), 0);
	copied = bytes_written();
	naps = 0;
	attempt(&p, b.buf, b.len, 60);
	copied = bytes_written() - copied;
	assert_int_equal(send_pump_finish(&p, 0), 0);
	send_pump_free(&p);
	assert_collected(&c, b.buf, b.len);
	printf("%zu bytes into a pipe: %lu of them copied\n", b.len, copied);
	assert_true(copied < b.len / 4);
	/* Its reads of 4 KiB find the pipe full: no nap before the next. */
	assert_true(naps < 10);
	sb_free(&b);
}

/* A stream of header, SUBVOL, then what add() puts, then END. */
static void stream_with(struct sb *b, void (*add)(struct sb *b))
{
	const uint8_t uuid[16] = { 1, 2, 3 };

	memset(b, 0, sizeof(*b));
	sb_header(b, 2);
	sb_cmd(b, BTRFS_SEND_C_SUBVOL);
	sb_str(b, BTRFS_SEND_A_PATH, "vol");
	sb_attr(b, BTRFS_SEND_A_UUID, uuid, 16);
	sb_u64(b, BTRFS_SEND_A_CTRANSID, 7);
	sb_end_cmd(b);
	add(b);
	sb_simple(b, BTRFS_SEND_C_END);
}

/*
 * One attempt of the whole of b, into a file, early bytes of it in the
 * pipe before the pump starts: finish's result.
 */
static int pump_whole(const struct sb *b, size_t early, char *msg,
		      size_t size)
{
	struct send_pump p;
	int out = out_file(), ret;

	assert_int_equal(send_pump_init(&p, out, CHUNK, false, false, NULL,
					 NULL), 0);
	attempt(&p, b->buf, b->len, early);
	ret = send_pump_finish(&p, 0);
	snprintf(msg, size, "%s", ret ? p.msg : "");
	send_pump_free(&p);
	if (!ret)
		assert_output(out, b->buf, b->len);
	else
		close(out);
	return ret;
}

static void add_write_of_chunk(struct sb *b)
{
	static unsigned char data[CHUNK];
	size_t start = b->len;

	sb_cmd(b, BTRFS_SEND_C_WRITE);
	sb_str(b, BTRFS_SEND_A_PATH, "f");
	sb_u64(b, BTRFS_SEND_A_FILE_OFFSET, 0);
	sb_le16(b, BTRFS_SEND_A_DATA);
	sb_put(b, data, CHUNK - (b->len - start));
	sb_end_cmd(b);
}

static void add_write_over_chunk(struct sb *b)
{
	add_write_of_chunk(b);
	b->len -= BTRFS_SEND_CMD_HEADER_LEN + 0;
	b->len = b->cmd_start + CHUNK;
	sb_put(b, "x", 1);
	sb_end_cmd(b);
}

static void add_enable_verity(struct sb *b)
{
	sb_cmd(b, BTRFS_SEND_C_ENABLE_VERITY);
	sb_str(b, BTRFS_SEND_A_PATH, "f");
	sb_end_cmd(b);
}

static void add_second_subvol(struct sb *b)
{
	const uint8_t uuid[16] = { 4 };

	sb_cmd(b, BTRFS_SEND_C_SUBVOL);
	sb_str(b, BTRFS_SEND_A_PATH, "other");
	sb_attr(b, BTRFS_SEND_A_UUID, uuid, 16);
	sb_u64(b, BTRFS_SEND_A_CTRANSID, 8);
	sb_end_cmd(b);
}

static void add_unspec(struct sb *b)
{
	sb_simple(b, BTRFS_SEND_C_UNSPEC);
}

static void add_end(struct sb *b)
{
	sb_simple(b, BTRFS_SEND_C_END);
}

/*
 * Past the part checked for a restart, a header the kernel cannot write
 * is damage: a command longer than the chunk, of no known type, a second
 * SUBVOL, anything after END.  The limits themselves pass.
 */
static void test_impossible_command_headers_are_damage(void **state)
{
	static const struct {
		void (*add)(struct sb *b);
		const char *msg;
	} cases[] = {
		{ add_write_of_chunk, NULL },
		{ add_enable_verity, NULL },
		{ add_write_over_chunk, "an impossible command header" },
		{ add_second_subvol, "an impossible command header" },
		{ add_unspec, "an impossible command header" },
		{ add_end, "an impossible command header" },
	};
	char msg[256];
	struct sb b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		stream_with(&b, cases[i].add);
		if (!cases[i].msg) {
			assert_int_equal(pump_whole(&b, 60, msg, sizeof(msg)), 0);
		} else {
			assert_int_equal(pump_whole(&b, 60, msg, sizeof(msg)),
					 -EIO);
			if (!strstr(msg, cases[i].msg))
				fail_msg("case %zu: \"%s\"", i, msg);
		}
		sb_free(&b);
	}
}

/* A stream that does not open with SUBVOL or SNAPSHOT is damaged. */
static void test_stream_must_open_with_a_subvolume(void **state)
{
	char msg[256];
	struct sb b = { 0 };

	(void)state;
	sb_header(&b, 1);
	sb_cmd(&b, BTRFS_SEND_C_MKFILE);
	sb_str(&b, BTRFS_SEND_A_PATH, "f");
	sb_u64(&b, BTRFS_SEND_A_INO, 257);
	sb_end_cmd(&b);
	sb_simple(&b, BTRFS_SEND_C_END);
	/* One byte early: the command at 17 is past the checked part. */
	assert_int_equal(pump_whole(&b, 1, msg, sizeof(msg)), -EIO);
	assert_non_null(strstr(msg, "an impossible command header at stream offset 17"));
	sb_free(&b);
}

/* The kernel's next attempt ends before what the output already holds. */
static void test_attempt_shorter_than_the_output_is_refused(void **state)
{
	struct sb b = { 0 };
	struct send_pump p;
	int out = out_file();

	(void)state;
	build_stream(&b, true, true, 0);
	assert_int_equal(send_pump_init(&p, out, CHUNK, false, false, NULL,
					 NULL), 0);
	attempt(&p, b.buf, b.len * 2 / 3, 60);
	attempt(&p, b.buf, b.len / 3, 60);
	assert_int_equal(send_pump_finish(&p, 0), -ESTALE);
	assert_non_null(strstr(p.msg, "the stream ends before the offset already written"));
	/* A failed ioctl is no verdict on the stream. */
	assert_int_equal(send_pump_finish(&p, -EINTR), 0);
	send_pump_free(&p);
	close(out);
	sb_free(&b);
}

/* Two small WRITEs, or one WRITE as long as both: the same offsets. */
static void add_two_writes(struct sb *b)
{
	int i;

	for (i = 0; i < 2; i++) {
		sb_cmd(b, BTRFS_SEND_C_WRITE);
		sb_str(b, BTRFS_SEND_A_PATH, "f");
		sb_u64(b, BTRFS_SEND_A_FILE_OFFSET, 0);
		sb_attr(b, BTRFS_SEND_A_DATA, "0123456789", 10);
		sb_end_cmd(b);
	}
}

static void add_one_long_write(struct sb *b)
{
	static const char data[49] = "one WRITE as long as two";

	sb_cmd(b, BTRFS_SEND_C_WRITE);
	sb_str(b, BTRFS_SEND_A_PATH, "f");
	sb_u64(b, BTRFS_SEND_A_FILE_OFFSET, 0);
	sb_attr(b, BTRFS_SEND_A_DATA, data, sizeof(data));
	sb_end_cmd(b);
}

/* --resume onto a stream with other commands up to the token's offset. */
static void test_resume_prefix_of_other_commands_is_refused(void **state)
{
	const unsigned char frame[RESUME_FRAME_LEN] = "btrfs-resume";
	struct send_stream_pos token;
	struct sb a, other;
	struct send_pump p;
	int out = out_file(), scratch = out_file();

	(void)state;
	stream_with(&a, add_two_writes);
	stream_with(&other, add_one_long_write);
	assert_int_equal(a.len, other.len);
	assert_int_equal(send_pump_init(&p, scratch, CHUNK, false, false,
					 NULL, NULL), 0);
	attempt(&p, a.buf, a.len - 5, a.len);
	token = p.done;
	send_pump_free(&p);
	close(scratch);
	assert_int_equal(token.cmds, 3);

	assert_int_equal(send_pump_init(&p, out, CHUNK, false, false, &token,
					 frame), 0);
	attempt(&p, other.buf, other.len, 60);
	assert_int_equal(send_pump_finish(&p, 0), -ESTALE);
	assert_non_null(strstr(p.msg, "another number of commands"));
	assert_int_equal(lseek(out, 0, SEEK_END), 0);
	send_pump_free(&p);
	close(out);
	sb_free(&a);
	sb_free(&other);
}

/*
 * An output that refuses splice (a socket opened for appending): the
 * pump falls back to copying, and the stream passes unchanged.
 */
static void test_output_refusing_splice_gets_copies(void **state)
{
	struct sb b = { 0 };
	struct send_pump p;
	struct collector c;

	(void)state;
	build_stream(&b, true, true, 0);
	assert_int_equal(send_pump_init(&p, socket_out(&c, O_APPEND, 0),
					 CHUNK, false, false, NULL, NULL), 0);
	assert_true(p.can_splice);
	attempt(&p, b.buf, b.len, 60);
	assert_false(p.can_splice);
	assert_int_equal(send_pump_finish(&p, 0), 0);
	send_pump_free(&p);
	assert_collected(&c, b.buf, b.len);
	sb_free(&b);
}

/*
 * The pipe held exactly `cut` bytes when the pump took the fd out: the
 * unit that begins there is still checked (a restart may begin there),
 * and a restart seen leaves no error to stop the retry.
 */
static void test_unit_at_the_disarm_point_is_checked(void **state)
{
	struct sb b = { 0 }, both = { 0 };
	struct send_pump p;
	size_t cut;
	int out, round;

	(void)state;
	build_stream(&b, true, true, 0);
	/* The boundary after SUBVOL and the first WRITE. */
	cut = BTRFS_SEND_STREAM_HEADER_LEN;
	cut += BTRFS_SEND_CMD_HEADER_LEN + (b.buf[cut] | b.buf[cut + 1] << 8);
	cut += BTRFS_SEND_CMD_HEADER_LEN + (b.buf[cut] | b.buf[cut + 1] << 8);
	for (round = 0; round < 2; round++) {
		out = out_file();
		both.len = 0;
		sb_put(&both, b.buf, cut);
		if (round) {
			/* The stream restarted there: its header follows. */
			sb_put(&both, b.buf, b.len);
		} else {
			/* A command there whose CRC fails. */
			sb_put(&both, b.buf + cut, b.len - cut);
			both.buf[cut + 6] ^= 1;
		}
		assert_int_equal(send_pump_init(&p, out, CHUNK, false, false,
						 NULL, NULL), 0);
		attempt(&p, both.buf, both.len, cut);
		assert_true(p.restart_seen);
		assert_int_equal(p.err, 0);
		assert_true(p.written <= cut);
		attempt(&p, b.buf, b.len, 60);
		assert_int_equal(send_pump_finish(&p, 0), 0);
		send_pump_free(&p);
		assert_output(out, b.buf, b.len);
	}
	sb_free(&both);
	sb_free(&b);
}

/* A stream that stops at a command boundary, before its END. */
static void test_stream_stopping_before_its_end_is_an_error(void **state)
{
	(void)state;
	assert_stream_cut_short_is_an_error(BTRFS_SEND_CMD_HEADER_LEN);
}

/*
 * A read of 64 KiB or more, or one that filled the room asked for, finds
 * no trickle: the pump reads on without a nap.
 */
static void test_large_reads_are_not_followed_by_a_nap(void **state)
{
	static unsigned char data[CHUNK];
	const uint8_t uuid[16] = { 1 };
	struct sb b = { 0 };
	struct send_pump p;
	int out = out_file();

	(void)state;
	sb_header(&b, 1);
	sb_cmd(&b, BTRFS_SEND_C_SUBVOL);
	sb_str(&b, BTRFS_SEND_A_PATH, "vol");
	sb_attr(&b, BTRFS_SEND_A_UUID, uuid, 16);
	sb_u64(&b, BTRFS_SEND_A_CTRANSID, 7);
	sb_end_cmd(&b);
	sb_cmd(&b, BTRFS_SEND_C_WRITE);
	sb_str(&b, BTRFS_SEND_A_PATH, "f");
	sb_u64(&b, BTRFS_SEND_A_FILE_OFFSET, 0);
	/* The whole stream 64 KiB: one read takes it. */
	sb_attr(&b, BTRFS_SEND_A_DATA, data, 65536 - b.len - 4 - 10);
	sb_end_cmd(&b);
	sb_simple(&b, BTRFS_SEND_C_END);
	assert_int_equal(b.len, 65536);
	assert_int_equal(send_pump_init(&p, out, CHUNK, false, false, NULL,
					 NULL), 0);
	naps = 0;
	attempt(&p, b.buf, b.len, b.len);
	assert_int_equal(naps, 0);
	assert_int_equal(send_pump_finish(&p, 0), 0);
	send_pump_free(&p);
	assert_output(out, b.buf, b.len);
	sb_free(&b);
}

/* Two WRITEs; the first one's data differs by seed. */
static int write_seed;

static void add_two_seeded_writes(struct sb *b)
{
	char data[10];
	int i;

	for (i = 0; i < 2; i++) {
		memset(data, i ? 'z' : 'a' + write_seed, sizeof(data));
		sb_cmd(b, BTRFS_SEND_C_WRITE);
		sb_str(b, BTRFS_SEND_A_PATH, "f");
		sb_u64(b, BTRFS_SEND_A_FILE_OFFSET, 0);
		sb_attr(b, BTRFS_SEND_A_DATA, data, sizeof(data));
		sb_end_cmd(b);
	}
}

/*
 * --resume onto a stream that differs in an earlier command only: its
 * last command before the token's offset is the same, the chain is not.
 */
static void test_resume_prefix_differing_before_its_last_command(void **state)
{
	const unsigned char frame[RESUME_FRAME_LEN] = "btrfs-resume";
	struct send_stream_pos token;
	struct sb a, other;
	struct send_pump p;
	int out = out_file(), scratch = out_file();

	(void)state;
	write_seed = 0;
	stream_with(&a, add_two_seeded_writes);
	write_seed = 1;
	stream_with(&other, add_two_seeded_writes);
	assert_int_equal(send_pump_init(&p, scratch, CHUNK, false, false,
					 NULL, NULL), 0);
	attempt(&p, a.buf, a.len - 5, a.len);
	token = p.done;
	send_pump_free(&p);
	close(scratch);
	assert_int_equal(token.cmds, 3);

	assert_int_equal(send_pump_init(&p, out, CHUNK, false, false, &token,
					 frame), 0);
	attempt(&p, other.buf, other.len, 60);
	assert_int_equal(send_pump_finish(&p, 0), -ESTALE);
	assert_non_null(strstr(p.msg, "other content"));
	assert_int_equal(lseek(out, 0, SEEK_END), 0);
	send_pump_free(&p);
	close(out);
	sb_free(&a);
	sb_free(&other);
}

static void add_second_write_seeded(struct sb *b)
{
	static char data[30000];
	int i;

	for (i = 0; i < 2; i++) {
		memset(data, i ? 'a' + write_seed : 'z', sizeof(data));
		sb_cmd(b, BTRFS_SEND_C_WRITE);
		sb_str(b, BTRFS_SEND_A_PATH, "f");
		sb_u64(b, BTRFS_SEND_A_FILE_OFFSET, 0);
		sb_attr(b, BTRFS_SEND_A_DATA, data, sizeof(data));
		sb_end_cmd(b);
	}
}

/*
 * The output ends inside a command; the next attempt sends another
 * command there (same length, other content): refused, not spliced on.
 */
static void test_other_command_at_the_cut_is_refused(void **state)
{
	struct sb a, other;
	struct send_pump p;
	int out = out_file();

	(void)state;
	write_seed = 0;
	stream_with(&a, add_second_write_seeded);
	write_seed = 1;
	stream_with(&other, add_second_write_seeded);
	assert_int_equal(send_pump_init(&p, out, CHUNK, false, false, NULL,
					 NULL), 0);
	attempt(&p, a.buf, a.len - 20000, 60);
	assert_true(p.written > p.done.offset);
	attempt(&p, other.buf, other.len, 60);
	assert_int_equal(send_pump_finish(&p, 0), -ESTALE);
	assert_non_null(strstr(p.msg, "another command"));
	send_pump_free(&p);
	close(out);
	sb_free(&a);
	sb_free(&other);
}

/* --resume where the other stream has no command boundary. */
static void test_resume_without_a_boundary_there_is_refused(void **state)
{
	const unsigned char frame[RESUME_FRAME_LEN] = "btrfs-resume";
	struct send_stream_pos token;
	struct sb a, other;
	struct send_pump p;
	int out = out_file(), scratch = out_file();

	(void)state;
	stream_with(&a, add_two_writes);
	stream_with(&other, add_one_long_write);
	assert_int_equal(send_pump_init(&p, scratch, CHUNK, false, false,
					 NULL, NULL), 0);
	/* Cut inside the second WRITE: the token is after the first. */
	attempt(&p, a.buf, a.len - 20, a.len);
	token = p.done;
	send_pump_free(&p);
	close(scratch);
	assert_int_equal(token.cmds, 2);

	assert_int_equal(send_pump_init(&p, out, CHUNK, false, false, &token,
					 frame), 0);
	attempt(&p, other.buf, other.len, 60);
	assert_int_equal(send_pump_finish(&p, 0), -ESTALE);
	assert_non_null(strstr(p.msg, "no command boundary"));
	assert_int_equal(lseek(out, 0, SEEK_END), 0);
	send_pump_free(&p);
	close(out);
	sb_free(&a);
	sb_free(&other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole_stream_passes_unchanged),
		cmocka_unit_test(test_cut_attempt_then_whole_one),
		cmocka_unit_test(test_restart_seen_in_content),
		cmocka_unit_test(test_replay_that_differs_is_refused),
		cmocka_unit_test(test_resume_with_a_restart),
		cmocka_unit_test(test_resume_prefix_that_differs_is_refused),
		cmocka_unit_test(test_headerless_restart),
		cmocka_unit_test(test_stream_ending_inside_a_command_is_an_error),
		cmocka_unit_test(test_trickled_commands_go_out_gathered),
		cmocka_unit_test(test_into_a_pipe_the_stream_passes_unchanged),
		cmocka_unit_test(test_full_output_is_waited_for_not_spun_on),
		cmocka_unit_test(test_into_a_file_the_pump_copies),
		cmocka_unit_test(test_into_a_pipe_a_restart_is_seen_in_content),
		cmocka_unit_test(test_release_closes_the_write_end),
		cmocka_unit_test(test_progress_counts_what_goes_out),
		cmocka_unit_test(test_signals_during_a_send_change_nothing),
		cmocka_unit_test(test_large_payloads_are_spliced_not_copied),
		cmocka_unit_test(test_impossible_command_headers_are_damage),
		cmocka_unit_test(test_stream_must_open_with_a_subvolume),
		cmocka_unit_test(test_attempt_shorter_than_the_output_is_refused),
		cmocka_unit_test(test_resume_prefix_of_other_commands_is_refused),
		cmocka_unit_test(test_output_refusing_splice_gets_copies),
		cmocka_unit_test(test_unit_at_the_disarm_point_is_checked),
		cmocka_unit_test(test_stream_stopping_before_its_end_is_an_error),
		cmocka_unit_test(test_large_reads_are_not_followed_by_a_nap),
		cmocka_unit_test(test_resume_prefix_differing_before_its_last_command),
		cmocka_unit_test(test_other_command_at_the_cut_is_refused),
		cmocka_unit_test(test_resume_without_a_boundary_there_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
