// SPDX-License-Identifier: GPL-2.0-only
/*
 * The stream file read around the page cache, by a thread, into a pipe.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "input-reader.h"
#include "utils.h"

/* O_DIRECT wants buffers aligned to the device's blocks: a page is plenty. */
#define INPUT_READER_ALIGN	4096

static int set_direct(int fd, bool on)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0)
		return -errno;
	flags = on ? flags | O_DIRECT : flags & ~O_DIRECT;
	return fcntl(fd, F_SETFL, flags) < 0 ? -errno : 0;
}

/*
 * The next chunk, at most INPUT_READER_CHUNK bytes, 0 at the end.  A short
 * read leaves the offset unaligned and the next direct read refused: the
 * rest is then read through the page cache.
 */
static ssize_t read_chunk(struct input_reader *r, void *buf)
{
	ssize_t n;

	for (;;) {
		n = pread(r->file_fd, buf, INPUT_READER_CHUNK, r->offset);
		if (n >= 0) {
			r->offset += n;
			return n;
		}
		if (errno == EINTR)
			continue;
		if (errno == EINVAL && r->direct && !set_direct(r->file_fd, false)) {
			r->direct = false;
			continue;
		}
		r->err = -errno;
		error("read error at stream offset %llu: %m",
		      (unsigned long long)r->offset);
		return r->err;
	}
}

static void *reader_main(void *arg)
{
	struct input_reader *r = arg;
	void *buf;
	ssize_t n;

	if (posix_memalign(&buf, INPUT_READER_ALIGN, INPUT_READER_CHUNK)) {
		r->err = -ENOMEM;
		error("cannot allocate %d bytes to read the stream",
		      INPUT_READER_CHUNK);
		goto out;
	}
	do {
		n = read_chunk(r, buf);
		/* EPIPE: the parser stopped reading, which is no error here. */
	} while (n > 0 && write_all(r->pipe_wr, buf, n) >= 0);
	free(buf);
out:
	/* The parser sees the end of its input. */
	close(r->pipe_wr);
	return NULL;
}

/* With every signal blocked: they are the main thread's to take. */
static int start_thread(struct input_reader *r)
{
	sigset_t all, old;
	int ret;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(&r->thread, NULL, reader_main, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}

int input_reader_start(struct input_reader *r, int file_fd)
{
	struct stat st;
	int fds[2];
	off_t pos;

	*r = (struct input_reader){ .file_fd = file_fd, .pipe_rd = -1,
				    .pipe_wr = -1 };
	if (fstat(file_fd, &st) < 0 || !S_ISREG(st.st_mode))
		return file_fd;
	pos = lseek(file_fd, 0, SEEK_CUR);
	if (pos < 0 || pipe2(fds, O_CLOEXEC) < 0)
		return file_fd;
	pipe_grow(fds[1], STREAM_PIPE_SIZE);
	r->offset = pos;
	r->direct = !set_direct(file_fd, true);
	r->pipe_rd = fds[0];
	r->pipe_wr = fds[1];
	if (start_thread(r) < 0) {
		close(fds[0]);
		close(fds[1]);
		r->pipe_rd = -1;
		r->pipe_wr = -1;
		if (r->direct)
			set_direct(file_fd, false);
		return file_fd;
	}
	return r->pipe_rd;
}

int input_reader_stop(struct input_reader *r)
{
	if (r->pipe_rd >= 0) {
		close(r->pipe_rd);
		pthread_join(r->thread, NULL);
		r->pipe_rd = -1;
		r->pipe_wr = -1;
	}
	if (r->file_fd >= 0)
		close(r->file_fd);
	r->file_fd = -1;
	return r->err;
}
