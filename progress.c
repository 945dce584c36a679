// SPDX-License-Identifier: GPL-2.0-only
/*
 * The status line of send --progress and receive --progress.
 *
 * The caller asks progress_due() after each command or chunk: a read of
 * the coarse monotonic clock, no system call, so that asking costs
 * nothing measurable; only a due line is formatted and written.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "progress.h"
#include "progress-json.h"
#include "progress-tty.h"
#include "utils.h"

#define NSEC_PER_SEC	1000000000ULL
/* A terminal is redrawn at most 4 times a second. */
#define TTY_INTERVAL_NS	(NSEC_PER_SEC / 4)
/* Logs get one line every 10 seconds. */
#define LOG_INTERVAL_NS	(10 * NSEC_PER_SEC)
/* The rate follows changes over about this many seconds. */
#define RATE_TAU_S	3.0
#define LINE_MAX_LEN	4096

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

void progress_init(struct progress *p, const char *verb, uint64_t total)
{
	memset(p, 0, sizeof(*p));
	p->verb = verb;
	p->total = total;
	p->tty = isatty(STDERR_FILENO);
	p->interval_ns = p->tty ? TTY_INTERVAL_NS : log_interval();
	trace_init();
	p->start_ns = progress_now();
	p->last_ns = p->start_ns;
	p->next_ns = p->start_ns + p->interval_ns;
	if (p->tty)
		progress_live_start(p);
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

/* H:MM:SS */
static void pretty_time(char *buf, size_t size, uint64_t secs)
{
	snprintf(buf, size, "%" PRIu64 ":%02u:%02u", secs / 3600,
		 (unsigned int)(secs / 60 % 60), (unsigned int)(secs % 60));
}

static void update_rate(struct progress *p, uint64_t now, uint64_t bytes)
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

/* Everything but the path: size, percent, rate, time, ETA, commands. */
static int format_counts(const struct progress *p, char *buf, size_t size,
			 uint64_t now, uint64_t bytes, uint64_t cmds)
{
	char done[32], total[32], rate[32], elapsed[32], eta[32];
	uint64_t left;
	int n;

	progress_pretty_size(done, sizeof(done), bytes);
	progress_pretty_size(rate, sizeof(rate), p->rate);
	pretty_time(elapsed, sizeof(elapsed), (now - p->start_ns) / NSEC_PER_SEC);
	if (!p->total)
		return snprintf(buf, size, "%s %s, %s/s, %s, %" PRIu64 " commands",
				p->verb, done, rate, elapsed, cmds);
	progress_pretty_size(total, sizeof(total), p->total);
	left = bytes < p->total ? p->total - bytes : 0;
	if (p->rate > 0)
		pretty_time(eta, sizeof(eta), (uint64_t)(left / p->rate));
	else
		snprintf(eta, sizeof(eta), "-");
	n = snprintf(buf, size, "%s %s of %s (%u%%), %s/s, %s, ETA %s, %" PRIu64 " commands",
		     p->verb, done, total,
		     (unsigned int)(bytes >= p->total ? 100 : bytes * 100 / p->total),
		     rate, elapsed, eta, cmds);
	return n;
}

/*
 * A path comes from the stream, which may be hostile: its control bytes
 * would be terminal escape sequences.
 */
static size_t printable_path(char *buf, size_t size, const char *path,
			     size_t len)
{
	size_t i;

	if (len >= size)
		len = size - 1;
	for (i = 0; i < len; i++) {
		unsigned char ch = path[i];

		buf[i] = ch < 0x20 || ch == 0x7f ? '?' : ch;
	}
	buf[len] = '\0';
	return len;
}

void progress_show(struct progress *p, uint64_t bytes, uint64_t cmds,
		   const char *raw_path, size_t raw_len)
{
	char line[LINE_MAX_LEN];
	char path[LINE_MAX_LEN];
	uint64_t now = progress_now();
	size_t path_len = 0;
	int n;

	if (raw_path)
		path_len = printable_path(path, sizeof(path), raw_path,
					  raw_len);
	p->next_ns = now + p->interval_ns;
	if (p->json_op) {
		update_rate(p, now, bytes);
		progress_json_update(p, now, bytes, cmds, raw_path, raw_len);
		return;
	}
	if (p->tty) {
		progress_live_show(p, now, bytes, cmds, path, path_len);
		return;
	}
	update_rate(p, now, bytes);
	n = format_counts(p, line, sizeof(line), now, bytes, cmds);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	if (path_len)
		fprintf(stderr, "%s, %.*s\n", line, (int)path_len, path);
	else
		fprintf(stderr, "%s\n", line);
	progress_trace(now, "line");
}

void progress_syncing(struct progress *p, bool on)
{
	uint64_t now = progress_now();

	__atomic_store_n(&p->syncing, on, __ATOMIC_RELAXED);
	if (!on || !p->json_op)
		return;
	update_rate(p, now, p->seen_bytes);
	progress_json_update(p, now, p->seen_bytes, p->seen_cmds, NULL, 0);
}

/* With JSON the summary waits for the exit status: progress_done(). */
static void record_end(struct progress *p, uint64_t now, uint64_t bytes,
		       uint64_t cmds)
{
	p->finished = true;
	p->end_ns = now;
	p->end_bytes = bytes;
	p->end_cmds = cmds;
}

/* Before the summary of a resumed transfer: what it did not move. */
static void print_skipped(const struct progress *p)
{
	char size[32];

	progress_pretty_size(size, sizeof(size), p->skip_bytes);
	status_line_printf(stderr, "Skipped %" PRIu64 " bytes (%s) in %.1f s, %" PRIu64 " commands, received before the interruption\n",
		p->skip_bytes, size, (double)p->skip_ns / NSEC_PER_SEC,
		p->skip_cmds);
}

void progress_finish(struct progress *p, uint64_t bytes, uint64_t cmds)
{
	uint64_t now = progress_now();
	double secs = (double)(now - p->start_ns) / NSEC_PER_SEC;
	char size[32], rate[32];
	char line[256];

	if (p->json_op) {
		record_end(p, now, bytes, cmds);
		return;
	}
	progress_pretty_size(size, sizeof(size), bytes);
	progress_pretty_size(rate, sizeof(rate), secs > 0 ? bytes / secs : 0);
	snprintf(line, sizeof(line), "%s %" PRIu64 " bytes (%s) in %.1f s, %s/s, %" PRIu64 " commands",
		 p->verb, bytes, size, secs, rate, cmds);
	if (p->tty) {
		if (p->resumed)
			print_skipped(p);
		progress_live_finish(p, line);
		return;
	}
	status_line_clear();
	if (p->resumed)
		print_skipped(p);
	fprintf(stderr, "%s\n", line);
}

/* For progress-tty.c. */
void progress_rate_update(struct progress *p, uint64_t now, uint64_t bytes)
{
	update_rate(p, now, bytes);
}

void progress_pretty_elapsed(char *buf, size_t size, uint64_t secs)
{
	pretty_time(buf, size, secs);
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
