/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The status line on a terminal (progress-tty.c), for progress.c only:
 * a redraw thread that keeps the line alive during a stall, the fields
 * fitted to the terminal's width, and a row of its own when a send and a
 * receive draw on the same terminal.
 */
#ifndef PROGRESS_TTY_H
#define PROGRESS_TTY_H

#include <stddef.h>
#include <stdint.h>

struct progress;

/*
 * Claim a row on the terminal and start the redraw thread; on failure
 * p->tty is cleared and plain lines are printed instead.
 */
void progress_live_start(struct progress *p);
/* Draw the line from the data thread (path as progress_show() takes it). */
void progress_live_show(struct progress *p, uint64_t now, uint64_t bytes,
			uint64_t cmds, const char *path, size_t path_len);
/* Stop the redraw thread and print the summary line (no newline in it). */
void progress_live_finish(struct progress *p, const char *summary);

/* From progress.c, for the line drawn here. */
void progress_rate_update(struct progress *p, uint64_t now, uint64_t bytes);
void progress_pretty_elapsed(char *buf, size_t size, uint64_t secs);
/* The test hook of BTRFS_PROGRESS_TRACE_FD: a line drawn at now, by who. */
void progress_trace(uint64_t now, const char *who);

#endif
