// SPDX-License-Identifier: GPL-2.0-only
/*
 * The counts and the clock of send --progress and receive --progress;
 * the view the command chose draws them.
 *
 * The caller asks progress_due() after each command or chunk: a read of
 * the coarse monotonic clock, no system call, so that asking costs
 * nothing measurable; only a due line is formatted and written.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "progress.h"
#include "utils.h"

#define NSEC_PER_SEC	1000000000ULL
/* A terminal is redrawn at most 4 times a second. */
#define TTY_INTERVAL_NS	(NSEC_PER_SEC / 4)
/* Logs get one line every 10 seconds. */
#define LOG_INTERVAL_NS	(10 * NSEC_PER_SEC)
/* The rate follows changes over about this many seconds. */
#define RATE_TAU_S	3.0

/*
 * For the tests only: the interval of the plain (non-terminal) lines in
 * milliseconds, so that a test sees several lines without waiting 10 s.
 */
#define INTERVAL_ENV	"BTRFS_PROGRESS_INTERVAL_MS"

/*
 * For the tests only: BTRFS_PROGRESS_TRACE_FD=N writes one record to fd N
 * for each status line drawn, "<clock> line|show|stall": the clock of
 * progress_now() it was drawn at, and whether it was a plain line, a
 * redraw on a terminal as the transfer moves, or one of the redraw
 * thread's during a stall.  A test then checks the spacing of the lines
 * on the clock that spaced them, however slow the machine is.
 */
#define TRACE_FD_ENV	"BTRFS_PROGRESS_TRACE_FD"

static int trace_fd = -1;

static void trace_init(void)
{
	const char *env = getenv(TRACE_FD_ENV);
	uint64_t fd;

	if (env && !parse_u64(env, &fd) && fd <= INT_MAX)
		trace_fd = fd;
}

void progress_trace(uint64_t now, const char *who)
{
	if (trace_fd >= 0)
		dprintf(trace_fd, "%" PRIu64 " %s\n", now, who);
}

static uint64_t log_interval(void)
{
	const char *env = getenv(INTERVAL_ENV);
	uint64_t ms;

	if (env && !parse_u64(env, &ms) && ms > 0)
		return ms * 1000000ULL;
	return LOG_INTERVAL_NS;
}

void progress_init(struct progress *p, const struct progress_view *view,
		   const char *op, const char *verb, uint64_t total)
{
	memset(p, 0, sizeof(*p));
	p->view = view;
	p->op = op;
	p->verb = verb;
	p->total = total;
	p->tty = isatty(STDERR_FILENO);
	p->interval_ns = p->tty ? TTY_INTERVAL_NS : log_interval();
	trace_init();
	p->start_ns = progress_now();
	p->last_ns = p->start_ns;
	p->next_ns = p->start_ns + p->interval_ns;
	p->in_fd = -1;
	p->out_fd = -1;
	if (view->start)
		view->start(p);
}

void progress_set_total(struct progress *p, uint64_t total)
{
	status_line_lock();
	p->total = total;
	p->start_ns = progress_now();
	p->last_ns = p->start_ns;
	p->next_ns = p->start_ns + p->interval_ns;
	status_line_unlock();
}

void progress_pretty_size(char *buf, size_t size, double bytes)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
	int i = -1;

	if (bytes < 1024) {
		snprintf(buf, size, "%.0fB", bytes);
		return;
	}
	while (bytes >= 1024 && i < 4) {
		bytes /= 1024;
		i++;
	}
	snprintf(buf, size, "%.2f%s", bytes, units[i]);
}

void progress_rate_update(struct progress *p, uint64_t now, uint64_t bytes)
{
	double dt = (double)(now - p->last_ns) / NSEC_PER_SEC;
	double inst;

	if (dt <= 0)
		return;
	inst = (bytes - p->last_bytes) / dt;
	if (p->last_ns == p->start_ns || dt >= RATE_TAU_S)
		p->rate = inst;
	else
		p->rate += (inst - p->rate) * (dt / RATE_TAU_S);
	p->last_ns = now;
	p->last_bytes = bytes;
}

static void show(struct progress *p, uint64_t now, uint64_t bytes,
		 uint64_t cmds, const char *path, size_t path_len)
{
	status_line_lock();
	progress_rate_update(p, now, bytes);
	p->view->show(p, now, bytes, cmds, path, path_len);
	status_line_unlock();
}

void progress_show(struct progress *p, uint64_t bytes, uint64_t cmds,
		   const char *path, size_t path_len)
{
	uint64_t now = progress_now();

	p->next_ns = now + p->interval_ns;
	show(p, now, bytes, cmds, path, path_len);
}

void progress_watch(struct progress *p, int in_fd, const char *source,
		    int out_fd)
{
	status_line_lock();
	p->in_fd = in_fd;
	p->source = source;
	p->out_fd = out_fd;
	status_line_unlock();
}

void progress_syncing(struct progress *p, bool on)
{
	uint64_t now = progress_now();

	__atomic_store_n(&p->syncing, on, __ATOMIC_RELAXED);
	if (on && p->view->show_syncing)
		show(p, now, p->seen_bytes, p->seen_cmds, NULL, 0);
}

void progress_finish(struct progress *p, uint64_t bytes, uint64_t cmds)
{
	p->finished = true;
	p->end_ns = progress_now();
	p->end_bytes = bytes;
	p->end_cmds = cmds;
	if (p->view->finish)
		p->view->finish(p);
}

void progress_done(struct progress *p, int exit_status)
{
	if (p->view->done)
		p->view->done(p, exit_status);
}

void progress_skip_begin(struct progress *p)
{
	if (p->skipping)
		return;
	p->skipping = true;
	p->moving_verb = p->verb;
	p->moving_total = p->total;
	p->verb = "Skipping";
	p->total = 0;
}

void progress_skip_end(struct progress *p, uint64_t bytes, uint64_t cmds,
		       uint64_t input_bytes)
{
	uint64_t now = progress_now();

	progress_skip_begin(p);
	p->verb = p->moving_verb;
	p->total = p->moving_total > input_bytes ?
		   p->moving_total - input_bytes : 0;
	p->skipping = false;
	p->resumed = true;
	p->skip_bytes = bytes;
	p->skip_cmds = cmds;
	p->skip_ns = now - p->start_ns;
	/* The moving part is timed, and its rate measured, on its own. */
	p->start_ns = now;
	p->last_ns = now;
	p->last_bytes = 0;
	p->rate = 0;
	p->next_ns = now + p->interval_ns;
}
