// SPDX-License-Identifier: GPL-2.0-only
/*
 * The stream file read around the page cache, by a thread, a few chunks
 * ahead of the parser.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "input-reader.h"
#include "utils.h"

/* O_DIRECT wants buffers aligned to the device's blocks: a page is plenty. */
#define INPUT_READER_ALIGN	4096
/* How long the parser waits before it looks at its interrupt flag. */
#define INPUT_READER_WAIT_NS	(100 * 1000 * 1000)

/* cachestat(2), Linux 6.5; older headers do not know it. */
#ifndef __NR_cachestat
#define __NR_cachestat		451
#endif

struct cachestat_range_arg {
	uint64_t off;
	uint64_t len;
};

struct cachestat_result {
	uint64_t nr_cache;
	uint64_t nr_dirty;
	uint64_t nr_writeback;
	uint64_t nr_evicted;
	uint64_t nr_recently_evicted;
};

static int set_direct(int fd, bool on)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0)
		return -errno;
	flags = on ? flags | O_DIRECT : flags & ~O_DIRECT;
	return fcntl(fd, F_SETFL, flags) < 0 ? -errno : 0;
}

bool (*file_range_cached_hook)(int fd, uint64_t offset, uint64_t len);

bool file_range_cached(int fd, uint64_t offset, uint64_t len)
{
	struct cachestat_range_arg range = { offset, len };
	struct cachestat_result cs;
	long page = sysconf(_SC_PAGESIZE);

	if (file_range_cached_hook)
		return file_range_cached_hook(fd, offset, len);
	if (!len || page <= 0)
		return false;
	if (syscall(__NR_cachestat, fd, &range, &cs, 0) < 0)
		return false;
	return cs.nr_cache >= (len + page - 1) / page;
}

/*
 * Whether every page of the next chunk is in the page cache (a stream
 * just written by send -f, a warm cache): then a copy from there beats a
 * read from the disk.
 */
static bool chunk_cached(const struct input_reader *r)
{
	uint64_t len;

	if (r->offset >= r->size)
		return false;
	len = r->size - r->offset < INPUT_READER_CHUNK ?
	      r->size - r->offset : INPUT_READER_CHUNK;
	return file_range_cached(r->file_fd, r->offset, len);
}

/* O_DIRECT for a chunk that is not cached, where the file allows it. */
static void choose_direct(struct input_reader *r)
{
	bool direct = r->direct_ok && !chunk_cached(r);

	if (direct == r->direct)
		return;
	if (set_direct(r->file_fd, direct) < 0) {
		r->direct_ok = false;
		return;
	}
	r->direct = direct;
}

/*
 * The next chunk, at most INPUT_READER_CHUNK bytes, 0 at the end.  A short
 * read leaves the offset unaligned and the next direct read refused: the
 * rest is then read through the page cache.
 */
static ssize_t read_chunk(struct input_reader *r, void *buf)
{
	ssize_t n;
	int ret;

	choose_direct(r);
	for (;;) {
		n = pread(r->file_fd, buf, INPUT_READER_CHUNK, r->offset);
		if (n >= 0) {
			r->offset += n;
			r->cached_chunks += n && !r->direct;
			return n;
		}
		if (errno == EINTR)
			continue;
		ret = -errno;
		if (ret == -EINVAL && r->direct) {
			/* Refused here: read the rest of the file cached. */
			r->direct_ok = false;
			choose_direct(r);
			if (!r->direct)
				continue;
		}
		return ret;
	}
}

/* Wait for a free slot; false when the parser stopped. */
static bool wait_for_room(struct input_reader *r)
{
	bool go;

	pthread_mutex_lock(&r->lock);
	while (r->tail - r->head == INPUT_READER_SLOTS && !r->stopping)
		pthread_cond_wait(&r->cond, &r->lock);
	go = !r->stopping;
	pthread_mutex_unlock(&r->lock);
	return go;
}

static void *reader_main(void *arg)
{
	struct input_reader *r = arg;
	unsigned int i;
	ssize_t n = 0;

	while (wait_for_room(r)) {
		/* The tail slot is the thread's alone until tail moves on. */
		i = r->tail % INPUT_READER_SLOTS;
		n = read_chunk(r, r->slot[i]);
		pthread_mutex_lock(&r->lock);
		if (n > 0) {
			r->len[i] = n;
			r->tail++;
		} else {
			r->err = n;
			r->done = true;
		}
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->lock);
		if (n <= 0)
			break;
	}
	return NULL;
}

static void free_slots(struct input_reader *r)
{
	for (int i = 0; i < INPUT_READER_SLOTS; i++) {
		free(r->slot[i]);
		r->slot[i] = NULL;
	}
}

static int alloc_slots(struct input_reader *r)
{
	void *p;

	for (int i = 0; i < INPUT_READER_SLOTS; i++) {
		if (posix_memalign(&p, INPUT_READER_ALIGN, INPUT_READER_CHUNK)) {
			free_slots(r);
			return -ENOMEM;
		}
		r->slot[i] = p;
	}
	return 0;
}

void input_reader_start(struct input_reader *r, int file_fd)
{
	struct stat st;
	off_t pos;

	*r = (struct input_reader){ .file_fd = file_fd };
	if (mechanism_off("reader") || fstat(file_fd, &st) < 0 ||
	    !S_ISREG(st.st_mode))
		return;
	pos = lseek(file_fd, 0, SEEK_CUR);
	if (pos < 0 || alloc_slots(r) < 0)
		return;
	r->offset = pos;
	r->size = st.st_size;
	r->direct_ok = !set_direct(file_fd, true);
	r->direct = r->direct_ok;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	if (start_thread_without_signals(&r->thread, reader_main, r)) {
		pthread_cond_destroy(&r->cond);
		pthread_mutex_destroy(&r->lock);
		free_slots(r);
		if (r->direct)
			set_direct(file_fd, false);
		r->direct = false;
		return;
	}
	r->active = true;
}

/* Wait until the head chunk is there or the thread is done. */
static int wait_for_data(struct input_reader *r)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += INPUT_READER_WAIT_NS;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (r->head == r->tail && !r->done)
		if (pthread_cond_timedwait(&r->cond, &r->lock, &until))
			return r->head == r->tail && !r->done ? -EINTR : 0;
	return 0;
}

ssize_t input_reader_read(void *reader, void *buf, size_t len)
{
	struct input_reader *r = reader;
	unsigned int i;
	bool empty;
	size_t n;
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = wait_for_data(r);
	empty = r->head == r->tail;
	if (!ret && empty)
		ret = r->err;	/* the end, or why it came early */
	pthread_mutex_unlock(&r->lock);
	if (ret < 0) {
		errno = -ret;
		return -1;
	}
	if (empty)
		return 0;
	/* The head slot is the parser's alone until head moves on. */
	i = r->head % INPUT_READER_SLOTS;
	n = r->len[i] - r->pos < len ? r->len[i] - r->pos : len;
	memcpy(buf, r->slot[i] + r->pos, n);
	r->pos += n;
	if (r->pos == r->len[i]) {
		pthread_mutex_lock(&r->lock);
		r->pos = 0;
		r->head++;
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->lock);
	}
	return n;
}

int input_reader_stop(struct input_reader *r)
{
	if (r->active) {
		pthread_mutex_lock(&r->lock);
		r->stopping = true;
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->lock);
		pthread_join(r->thread, NULL);
		pthread_cond_destroy(&r->cond);
		pthread_mutex_destroy(&r->lock);
		free_slots(r);
		r->active = false;
	}
	if (r->file_fd >= 0)
		close(r->file_fd);
	r->file_fd = -1;
	return r->err;
}
