/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A status line on stderr for long transfers (send --progress, receive
 * --progress): bytes, smoothed rate, elapsed time, commands, the current
 * path, and percent and ETA when the total is known.  This module counts
 * and times the transfer and says when a line is due (4 times a second
 * on a terminal, else every 10 seconds); a view, chosen by the command,
 * draws it: text (progress-tty.h) or JSON Lines (progress-json.h).
 * progress_finish() and progress_done() end it with a summary.
 */
#ifndef PROGRESS_H
#define PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct progress {
	const struct progress_view *view;
	const char *op;		/* "send", "receive" */
	const char *verb;	/* "Received", "Sent" */
	uint64_t total;		/* 0: unknown */
	bool tty;		/* stderr is a terminal */
	/* Nanoseconds on CLOCK_MONOTONIC_COARSE, for the cheap check. */
	uint64_t start_ns;
	uint64_t next_ns;
	uint64_t interval_ns;
	/* The rate, smoothed over the draws. */
	uint64_t last_ns;
	uint64_t last_bytes;
	double rate;

	/*
	 * A resumed transfer: the prefix of the stream that was passed over
	 * (progress_skip_begin(), progress_skip_end()).  The figures given to
	 * progress_show() and progress_finish() are those after it.
	 */
	bool skipping;
	bool resumed;
	/* Between progress_syncing(p, true) and (p, false). */
	bool syncing;
	const char *moving_verb;	/* verb, while skipping */
	uint64_t moving_total;		/* total, while skipping */
	uint64_t skip_bytes;
	uint64_t skip_cmds;
	uint64_t skip_ns;		/* how long it took */

	/* Set by progress_finish(). */
	bool finished;
	uint64_t end_ns;
	uint64_t end_bytes;
	uint64_t end_cmds;

	/*
	 * The counts as they stand (progress_note()), and what the transfer
	 * may wait for (progress_watch()), under status_line_lock(): for a
	 * view that redraws the line when the transfer stalls.
	 */
	uint64_t seen_bytes;
	uint64_t seen_cmds;
	int in_fd;
	const char *source;
	int out_fd;
	/* The view's own state. */
	struct progress_live *live;
};

/* How a transfer is shown: one const table per view; a hook may be NULL. */
struct progress_view {
	/* From progress_init(), once the clock has started. */
	void (*start)(struct progress *p);
	/*
	 * An update at now, under status_line_lock(), the rate up to date;
	 * path as progress_show() takes it, raw from the stream.
	 */
	void (*show)(struct progress *p, uint64_t now, uint64_t bytes,
		     uint64_t cmds, const char *path, size_t path_len);
	/* The transfer ended: p->end_* hold its figures. */
	void (*finish)(struct progress *p);
	/* The command ends with exit_status (progress_done()). */
	void (*done)(struct progress *p, int exit_status);
	/* An update is shown, without a path, as syncing begins. */
	bool show_syncing;
};

/* Nanoseconds of the coarse monotonic clock (a vDSO call, no syscall). */
static inline uint64_t progress_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/*
 * Start the clock and the view: op names the command ("send",
 * "receive"), verb its text ("Sent", "Received").
 */
void progress_init(struct progress *p, const struct progress_view *view,
		   const char *op, const char *verb, uint64_t total);
/*
 * The total known once the estimate is done: the transfer's clock starts
 * now, on the line (and row) progress_init() set up.
 */
void progress_set_total(struct progress *p, uint64_t total);

/* True when a status line is due: cheap enough to ask after every command. */
static inline bool progress_due(const struct progress *p)
{
	return progress_now() >= p->next_ns;
}

/*
 * The counts as they stand, cheap enough for every command (two plain
 * stores): on a terminal a line redrawn during a stall shows them.
 */
static inline void progress_note(struct progress *p, uint64_t bytes,
				 uint64_t cmds)
{
	__atomic_store_n(&p->seen_bytes, bytes, __ATOMIC_RELAXED);
	__atomic_store_n(&p->seen_cmds, cmds, __ATOMIC_RELAXED);
}

/*
 * What a stalled line says it waits for: in_fd with no data to read is
 * "waiting for <source>" ("the kernel", "the input"), out_fd that takes
 * no more is "waiting for the output".  -1: none.
 */
void progress_watch(struct progress *p, int in_fd, const char *source,
		    int out_fd);

/*
 * Draw the status line.  path (path_len bytes, not NUL-terminated, may be
 * NULL) is the path the last command worked on.
 */
void progress_show(struct progress *p, uint64_t bytes, uint64_t cmds,
		   const char *path, size_t path_len);

/* The summary line: bytes, time, mean rate, commands. */
void progress_finish(struct progress *p, uint64_t bytes, uint64_t cmds);

/*
 * A resumed transfer passes over the prefix the receiver has already:
 * status lines show "skipping" from here to progress_skip_end().
 */
void progress_skip_begin(struct progress *p);
/*
 * The prefix is passed: bytes and cmds of the stream were in it, and
 * input_bytes of the total were read for it (the total of what follows
 * is the rest).  Time and rate start again; the summary says both.
 */
void progress_skip_end(struct progress *p, uint64_t bytes, uint64_t cmds,
		       uint64_t input_bytes);

/*
 * The transfer waits for what it wrote to reach the disk (receive
 * closing a subvolume): a line redrawn on a terminal says "syncing", and
 * with JSON one update with the phase "syncing" is written at once.
 */
void progress_syncing(struct progress *p, bool on);

/*
 * The command ends with exit_status: with JSON, the summary object is
 * written now, once the status is known; text has its summary already.
 */
void progress_done(struct progress *p, int exit_status);

/* 1.23GiB: two decimals and a binary unit, like btrfs-progs' sizes. */
void progress_pretty_size(char *buf, size_t size, double bytes);

/*
 * For the views.  The rate at now, for a line a view draws on its own
 * (under status_line_lock()).
 */
void progress_rate_update(struct progress *p, uint64_t now, uint64_t bytes);
/* The test hook of BTRFS_PROGRESS_TRACE_FD: a line drawn at now, by who. */
void progress_trace(uint64_t now, const char *who);

#endif
