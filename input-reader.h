/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Reading a stream file (receive -f) around the page cache.  receive reads
 * its file once, front to back, and never again: a cached copy only costs
 * the page cache's work for every page and pushes out what the machine
 * had cached.  A thread reads the file with O_DIRECT a few chunks ahead of
 * the parser, which takes the bytes with input_reader_read().  Not a pipe:
 * the parser's read and the thread's write would wait on the pipe's lock
 * for each other's copies.
 *
 * A chunk that the page cache holds whole already (the file was just
 * written, the cache is warm) is copied from there instead.  Where O_DIRECT
 * is refused (a filesystem without it, a file offset or a length it cannot
 * take), the thread goes on with ordinary reads; where the thread cannot
 * start at all, the caller reads the file itself.
 */
#ifndef INPUT_READER_H
#define INPUT_READER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Bytes read at once, and chunks read ahead: at most 4 MiB ahead. */
#define INPUT_READER_CHUNK	(1024 * 1024)
#define INPUT_READER_SLOTS	4

struct input_reader {
	int file_fd;
	bool active;		/* the thread runs: read with input_reader_read */
	uint64_t offset;	/* next file offset the thread reads */
	uint64_t size;		/* of the file when reading began */
	bool direct_ok;		/* the file takes O_DIRECT reads */
	bool direct;		/* the fd is set to O_DIRECT now */
	uint64_t cached_chunks;	/* read from the page cache (tests) */
	int err;		/* a failed read's negative errno, or 0 */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* Chunks filled by the thread at tail, taken by the parser at head. */
	unsigned char *slot[INPUT_READER_SLOTS];
	size_t len[INPUT_READER_SLOTS];
	unsigned int head;
	unsigned int tail;
	size_t pos;		/* bytes of the head chunk already taken */
	bool done;		/* the thread read its last chunk (end or error) */
	bool stopping;		/* the parser wants no more */
};

/*
 * Take over file_fd, an open stream file, and start reading it ahead when
 * it is a regular file (r->active).  Otherwise, or when the thread cannot
 * start, the caller reads file_fd itself.  Never fails.
 */
void input_reader_start(struct input_reader *r, int file_fd);

/*
 * As read(2), for send_stream_set_reader(): up to len bytes, 0 at the
 * end, -1 with errno set when the file could not be read.  Returns -1
 * with EINTR now and then while it waits, so that an interrupt is seen.
 */
ssize_t input_reader_read(void *reader, void *buf, size_t len);

/*
 * Stop reading, wait for the thread and close the file.  Returns the
 * negative errno of a read that failed, or 0.
 */
int input_reader_stop(struct input_reader *r);

/*
 * Whether every page of len bytes of fd at offset is in the page cache;
 * false also where cachestat(2) (Linux 6.5) is missing.
 */
bool file_range_cached(int fd, uint64_t offset, uint64_t len);

/*
 * Test hook, NULL otherwise: when set, it answers file_range_cached() in
 * place of cachestat(2), so that a unit test says what is cached whatever
 * the filesystem it runs on (tmpfs holds every page, overlayfs shows none).
 */
extern bool (*file_range_cached_hook)(int fd, uint64_t offset, uint64_t len);

#endif
