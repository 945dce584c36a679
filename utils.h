/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef UTILS_H
#define UTILS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Verbosity shared by all commands: 1 by default, raised by -v and
 * lowered to 0 by -q, before or after the command name.
 */
extern int verbosity;

#define VERBOSITY_DEFAULT 1

/* The global --format option: text (btrfs-progs' output) or json. */
enum output_format {
	OUTPUT_TEXT,
	OUTPUT_JSON,
};
extern enum output_format output_format;

/* "ERROR: ..." and "WARNING: ..." lines on stderr. */
__attribute__((format(printf, 1, 2)))
void error(const char *fmt, ...);
__attribute__((format(printf, 1, 2)))
void warning(const char *fmt, ...);

/*
 * A progress line drawn in place on a terminal (progress-tty.c) is wiped
 * before any other message on stderr, so that the message starts at the
 * left margin rather than after the line.
 */
void status_line_shown(void);
bool status_line_is_shown(void);
/* The line was wiped by whoever drew it (under the lock). */
void status_line_gone(void);
/* Wipe the line and print a message, with no redraw in between. */
__attribute__((format(printf, 2, 3)))
void status_line_printf(FILE *out, const char *fmt, ...);

/*
 * Drawing, wiping and messages hold this lock (a mutex), so that a line
 * redrawn by another thread never lands inside a message.  Hooks set by
 * progress-tty.c on a terminal: lock and unlock the terminal (shared
 * with another process drawing a line on it), and wipe the status
 * line(s) before a message of len bytes, 0 if unknown (shown: this
 * process's line is on the screen).
 */
struct status_line_hooks {
	void (*lock)(void);
	void (*unlock)(void);
	void (*wipe)(bool shown, size_t len);
};

void status_line_set_hooks(const struct status_line_hooks *hooks);
void status_line_lock(void);
void status_line_unlock(void);

/*
 * pthread_create() with every signal blocked in the new thread: signals
 * are the main thread's to take.  Returns 0 or a negative errno.
 */
int start_thread_without_signals(pthread_t *thread, void *(*fn)(void *),
				 void *arg);

/*
 * Whether BTRFS_MECHANISMS_OFF (a comma-separated list) names this speed
 * mechanism: a switch for bench/run-bench.sh's BENCH_MECHANISMS, which
 * measures each one on against off.  The output never depends on it.
 */
bool mechanism_off(const char *name);

/*
 * Room in a pipe between send and receive, and between the kernel and
 * send's pump: with the default 64 KiB, one side soon waits whenever the
 * other waits on its disk, and the two take turns instead of working at
 * once.
 */
#define STREAM_PIPE_SIZE	(1024 * 1024)
/*
 * Grow the pipe at fd to at least size bytes; anything else, or a pipe
 * the user's pipe quota keeps as it is, is left alone.
 */
void pipe_grow(int fd, int size);
/* Wait until fd can be written to; 0 or a negative errno. */
int wait_writable(int fd);
/*
 * Write all len bytes of buf, or fail: 0 or a negative errno, nothing
 * printed.  Interrupted writes are retried; on a non-blocking fd, EAGAIN
 * waits until the fd takes more.
 */
int write_all(int fd, const void *buf, size_t len);
/* The same at offset, with pwrite; the file offset does not move. */
int pwrite_all(int fd, const void *buf, size_t len, uint64_t offset);

/* Parse a whole decimal u64, digits only; 0 or -EINVAL. */
int parse_u64(const char *str, uint64_t *value);
/*
 * A byte count: a whole decimal number with at most one binary suffix,
 * k, M, G or T in any case (powers of 1024): "4096", "512M", "3G".  No
 * fraction ("1.5M" is refused), as btrfs-receive(8) says of
 * --expected-size.  0 or -EINVAL (overflow included).
 */
int parse_size(const char *str, uint64_t *value);

#endif
