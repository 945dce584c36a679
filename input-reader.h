/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Reading a stream file (receive -f) around the page cache.  receive reads
 * its file once, front to back, and never again: a cached copy only costs
 * the page cache's work for every page and pushes out what the machine
 * had cached.  A thread reads the file with O_DIRECT a little ahead of
 * the parser and hands the bytes on through a pipe, so that the parser
 * reads a pipe as it does with stdin.
 *
 * Where O_DIRECT is refused (a filesystem without it, a file offset or a
 * length it cannot take), the thread goes on with ordinary reads; where
 * the thread cannot start at all, the caller reads the file itself.
 */
#ifndef INPUT_READER_H
#define INPUT_READER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Bytes read at once: with the pipe's 1 MiB, at most 2 MiB ahead. */
#define INPUT_READER_CHUNK	(1024 * 1024)

struct input_reader {
	int file_fd;
	int pipe_rd;		/* what the parser reads; -1: no thread */
	int pipe_wr;		/* the thread's end */
	uint64_t offset;	/* next file offset the thread reads */
	bool direct;		/* still reading with O_DIRECT */
	int err;		/* a failed read's negative errno, or 0 */
	pthread_t thread;
};

/*
 * Take over file_fd, an open stream file, and return the fd to read the
 * stream from: the reader's pipe, or file_fd itself when file_fd is not a
 * regular file or the thread cannot start.  Never fails.
 */
int input_reader_start(struct input_reader *r, int file_fd);

/*
 * Stop reading (the thread's pending write ends with EPIPE), wait for the
 * thread and close both fds.  Returns the negative errno of a read that
 * failed, or 0; the failure was reported as an ERROR when it happened.
 */
int input_reader_stop(struct input_reader *r);

#endif
