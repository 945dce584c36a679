// SPDX-License-Identifier: GPL-2.0-only
/*
 * The text view: a status line drawn in place on a terminal, else one
 * plain line at each update; then the summary.
 *
 * A line that is only drawn when bytes move freezes when they stop, which
 * looks like a hang.  A thread of our own redraws it when nothing was
 * drawn for half a second: the elapsed time goes on, the rate falls, and
 * a word says what the transfer waits for.  The thread blocks every
 * signal, so that signals go to the threads they went to before; no
 * timer or signal handler may ever interrupt the thread in the send
 * ioctl, which the kernel would then restart (see send-pump.h).
 *
 * `btrfs send --progress | btrfs receive --progress` draws two lines on
 * one terminal.  Each process claims a row with a POSIX lock on one byte
 * of the terminal (row 0 or row 1), and holds a lock on another byte
 * while it writes, as pv -c does.  The cursor rests on the upper row;
 * row 0 is drawn one row below it when row 1 is held.  A message goes on
 * a line inserted above both rows, so that neither line covers it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "progress.h"
#include "progress-tty.h"
#include "utils.h"

#define NSEC_PER_SEC	1000000000ULL
/* The redraw thread looks this often... */
#define TICK_NS		(NSEC_PER_SEC / 2)
/* ...and draws when nothing was drawn for this long (the coarse clock). */
#define STALE_NS	(TICK_NS * 3 / 4)
#define PATH_SHOWN	256
#define FIELD_LEN	64
#define LINE_LEN	4096

/* Bytes of the terminal locked with fcntl: the writer, and the rows. */
#define TTY_LOCK_BYTE	0
#define ROW_BYTE(row)	(1 + (row))

struct progress_live {
	pthread_t thread;
	bool running;
	pthread_mutex_t wake_lock;
	pthread_cond_t wake;
	bool stop;
	/* The rest under status_line_lock(). */
	int row;		/* 0, 1 (see above) or -1: none */
	uint64_t drawn_ns;
	char path[PATH_SHOWN];
	size_t path_len;
};

/* The fields of the line, in the order shown. */
enum {
	F_DONE, F_TOTAL, F_PCT, F_RATE, F_ELAPSED, F_ETA, F_CMDS, F_WAIT,
	F_NR
};

/* When the line is too wide, after the path: the least useful first. */
static const int drop_order[] = {
	F_CMDS, F_TOTAL, F_ELAPSED, F_RATE, F_WAIT, F_ETA, F_PCT,
};
#define DROPPABLE	(sizeof(drop_order) / sizeof(*drop_order))

/* One status line per process: the one the hooks of utils.c act on. */
static struct progress_live *term_live;

static int range_lock(int cmd, short type, off_t start)
{
	struct flock fl = {
		.l_type = type, .l_whence = SEEK_SET, .l_start = start,
		.l_len = 1,
	};
	int ret;

	do
		ret = fcntl(STDERR_FILENO, cmd, &fl);
	while (ret < 0 && errno == EINTR);
	return ret < 0 ? -errno : 0;
}

/* Does another process draw on this row of the terminal? */
static bool row_held_elsewhere(int row)
{
	struct flock fl = {
		.l_type = F_WRLCK, .l_whence = SEEK_SET,
		.l_start = ROW_BYTE(row), .l_len = 1,
	};

	if (fcntl(STDERR_FILENO, F_GETLK, &fl) < 0)
		return false;
	return fl.l_type != F_UNLCK;
}

static bool other_row_held(const struct progress_live *l)
{
	return l->row >= 0 && row_held_elsewhere(!l->row);
}

static void tty_lock(void)
{
	range_lock(F_SETLKW, F_WRLCK, TTY_LOCK_BYTE);
}

static void tty_unlock(void)
{
	range_lock(F_SETLK, F_UNLCK, TTY_LOCK_BYTE);
}

/* Columns of the terminal, read at each draw: it may have been resized. */
static size_t tty_width(void)
{
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
		return ws.ws_col;
	return 80;
}

/* Lines a message of len bytes takes on the terminal (0: unknown, one). */
static size_t message_lines(size_t len)
{
	size_t cols = tty_width();

	return len ? (len + cols - 1) / cols : 1;
}

/*
 * With the cursor on the upper of two rows: that many blank lines (at least
 * one) inserted above both, after making room below them, the cursor on
 * the first.
 */
static void insert_above(size_t lines)
{
	size_t i;

	fputs("\033[B", stderr);
	for (i = 0; i < lines; i++)
		fputc('\n', stderr);
	fprintf(stderr, "\033[%zuA\033[%zuL\r", lines + 1, lines);
}

/* Before a message: new lines above both rows, or wipe our own. */
static void tty_wipe(bool shown, size_t len)
{
	if (term_live && other_row_held(term_live))
		insert_above(message_lines(len));
	else if (shown)
		fputs("\r\033[K", stderr);
}

static const struct status_line_hooks tty_hooks = {
	.lock = tty_lock,
	.unlock = tty_unlock,
	.wipe = tty_wipe,
};

/*
 * Row 0 when it is free, adding a row below the other's if row 1 is
 * held; else row 1, on a line inserted above row 0's.
 */
static void claim_row(struct progress_live *l)
{
	status_line_lock();
	if (!range_lock(F_SETLK, F_WRLCK, ROW_BYTE(0))) {
		l->row = 0;
		if (row_held_elsewhere(1))
			fputs("\n\033[A", stderr);
	} else if (!range_lock(F_SETLK, F_WRLCK, ROW_BYTE(1))) {
		l->row = 1;
		fputs("\n\033[A\033[L\r", stderr);
	}
	fflush(stderr);
	status_line_unlock();
}

static void release_row(struct progress_live *l)
{
	if (l->row >= 0)
		range_lock(F_SETLK, F_UNLCK, ROW_BYTE(l->row));
	l->row = -1;
}

/* H:MM:SS */
static void pretty_time(char *buf, size_t size, uint64_t secs)
{
	snprintf(buf, size, "%" PRIu64 ":%02u:%02u", secs / 3600,
		 (unsigned int)(secs / 60 % 60), (unsigned int)(secs % 60));
}

/*
 * A path comes from the stream, which may be hostile: its control bytes
 * would be terminal escape sequences.  At most size bytes, no NUL.
 */
static size_t printable_path(char *buf, size_t size, const char *path,
			     size_t len)
{
	size_t i;

	if (!path)
		return 0;
	if (len > size)
		len = size;
	for (i = 0; i < len; i++) {
		unsigned char ch = path[i];

		buf[i] = ch < 0x20 || ch == 0x7f ? '?' : ch;
	}
	return len;
}

static void fill_fields(const struct progress *p, char f[F_NR][FIELD_LEN],
			uint64_t now, uint64_t bytes, uint64_t cmds,
			const char *wait)
{
	char a[32], b[32];
	uint64_t left, pct;
	int i;

	for (i = 0; i < F_NR; i++)
		f[i][0] = '\0';
	progress_pretty_size(a, sizeof(a), bytes);
	snprintf(f[F_DONE], FIELD_LEN, "%s %s", p->verb, a);
	progress_pretty_size(a, sizeof(a), p->rate);
	snprintf(f[F_RATE], FIELD_LEN, ", %s/s", a);
	pretty_time(a, sizeof(a), (now - p->start_ns) / NSEC_PER_SEC);
	snprintf(f[F_ELAPSED], FIELD_LEN, ", %s", a);
	snprintf(f[F_CMDS], FIELD_LEN, ", %" PRIu64 " commands", cmds);
	if (__atomic_load_n(&p->syncing, __ATOMIC_RELAXED))
		snprintf(f[F_WAIT], FIELD_LEN, ", syncing");
	else if (wait)
		snprintf(f[F_WAIT], FIELD_LEN, ", waiting for %s", wait);
	if (!p->total)
		return;
	progress_pretty_size(a, sizeof(a), p->total);
	snprintf(f[F_TOTAL], FIELD_LEN, " of %s", a);
	pct = bytes >= p->total ? 100 : bytes * 100 / p->total;
	snprintf(f[F_PCT], FIELD_LEN, " (%u%%)", (unsigned int)pct);
	left = bytes < p->total ? p->total - bytes : 0;
	if (p->rate > 0)
		pretty_time(b, sizeof(b), (uint64_t)(left / p->rate));
	else
		snprintf(b, sizeof(b), "-");
	snprintf(f[F_ETA], FIELD_LEN, ", ETA %s", b);
}

/* The path in what room is left, its end kept: the name is there. */
static void append_path(const struct progress_live *l, char *line,
			size_t size, size_t room)
{
	size_t n = strlen(line);

	if (!l->path_len || n + 10 >= room)
		return;
	room -= n + 2;
	if (l->path_len > room)
		snprintf(line + n, size - n, ", ...%.*s", (int)(room - 3),
			 l->path + l->path_len - room + 3);
	else
		snprintf(line + n, size - n, ", %.*s", (int)l->path_len,
			 l->path);
}

/* A line of at most room columns: fields dropped rather than wrapped. */
static void format_line(const struct progress *p, char *line, size_t size,
			size_t room, uint64_t now, uint64_t bytes,
			uint64_t cmds, const char *wait)
{
	char f[F_NR][FIELD_LEN];
	size_t len[F_NR], n = 0, i;

	fill_fields(p, f, now, bytes, cmds, wait);
	for (i = 0; i < F_NR; i++) {
		len[i] = strlen(f[i]);
		n += len[i];
	}
	for (i = 0; n > room && i < DROPPABLE; i++) {
		n -= len[drop_order[i]];
		len[drop_order[i]] = 0;
	}
	line[0] = '\0';
	for (i = 0, n = 0; i < F_NR; i++) {
		if (!len[i])
			continue;
		memcpy(line + n, f[i], len[i]);
		n += len[i];
	}
	line[n] = '\0';
	append_path(p->live, line, size, room);
	if (strlen(line) > room)
		line[room] = '\0';
}

/* Under status_line_lock(). */
static void draw(struct progress *p, uint64_t now, uint64_t bytes,
		 uint64_t cmds, const char *wait)
{
	struct progress_live *l = p->live;
	char line[LINE_LEN];

	format_line(p, line, sizeof(line), tty_width() - 1, now, bytes, cmds,
		    wait);
	if (l->row == 0 && row_held_elsewhere(1))
		fprintf(stderr, "\033[B\r%s\033[K\033[A", line);
	else
		fprintf(stderr, "\r%s\033[K", line);
	fflush(stderr);
	status_line_shown();
	l->drawn_ns = now;
}

/* What a stalled transfer waits for, if the descriptors tell. */
static const char *stall_reason(const struct progress *p)
{
	struct pollfd pfd;

	if (p->out_fd >= 0) {
		pfd = (struct pollfd){ .fd = p->out_fd, .events = POLLOUT };
		if (poll(&pfd, 1, 0) == 0)
			return "the output";
	}
	if (p->in_fd >= 0) {
		pfd = (struct pollfd){ .fd = p->in_fd, .events = POLLIN };
		if (poll(&pfd, 1, 0) == 0)
			return p->source;
	}
	return NULL;
}

/*
 * The clock is read under the lock: read before it, it could be older
 * than a draw of the data thread in between, and the difference would
 * wrap around into a redraw just after that draw.
 */
static void redraw_if_stale(struct progress *p)
{
	struct progress_live *l = p->live;
	uint64_t bytes = __atomic_load_n(&p->seen_bytes, __ATOMIC_RELAXED);
	uint64_t cmds = __atomic_load_n(&p->seen_cmds, __ATOMIC_RELAXED);
	uint64_t now;

	status_line_lock();
	now = progress_now();
	if (now - l->drawn_ns >= STALE_NS) {
		progress_rate_update(p, now, bytes);
		draw(p, now, bytes, cmds, stall_reason(p));
		progress_trace(now, "stall");
	}
	status_line_unlock();
}

static void *redraw_run(void *arg)
{
	struct progress *p = arg;
	struct progress_live *l = p->live;
	struct timespec at;

	pthread_mutex_lock(&l->wake_lock);
	while (!l->stop) {
		clock_gettime(CLOCK_MONOTONIC, &at);
		at.tv_nsec += TICK_NS;
		if (at.tv_nsec >= (long)NSEC_PER_SEC) {
			at.tv_sec++;
			at.tv_nsec -= NSEC_PER_SEC;
		}
		pthread_cond_timedwait(&l->wake, &l->wake_lock, &at);
		if (l->stop)
			break;
		pthread_mutex_unlock(&l->wake_lock);
		redraw_if_stale(p);
		pthread_mutex_lock(&l->wake_lock);
	}
	pthread_mutex_unlock(&l->wake_lock);
	return NULL;
}

/* Started with every signal blocked, which the new thread inherits. */
static bool start_redraw_thread(struct progress *p)
{
	struct progress_live *l = p->live;
	pthread_condattr_t attr;
	pthread_mutex_init(&l->wake_lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&l->wake, &attr);
	pthread_condattr_destroy(&attr);
	return !start_thread_without_signals(&l->thread, redraw_run, p);
}

static void stop_thread(struct progress_live *l)
{
	if (!l->running)
		return;
	pthread_mutex_lock(&l->wake_lock);
	l->stop = true;
	pthread_cond_signal(&l->wake);
	pthread_mutex_unlock(&l->wake_lock);
	pthread_join(l->thread, NULL);
	l->running = false;
}

/*
 * An exit before progress_finish() (an error on the way) must not leave
 * the line on the screen, where the shell's prompt would follow it.
 */
static void leave_at_exit(void)
{
	struct progress_live *l = term_live;

	if (!l)
		return;
	stop_thread(l);
	status_line_lock();
	if (l->row == 0 && other_row_held(l))
		fputs("\033[B\r\033[K\033[A", stderr);
	else if (status_line_is_shown())
		fputs("\r\033[K", stderr);
	fflush(stderr);
	status_line_gone();
	release_row(l);
	status_line_unlock();
}

/*
 * On a terminal, claim a row on it and start the redraw thread; without
 * memory for them, plain lines are printed instead.
 */
static void tty_start(struct progress *p)
{
	struct progress_live *l;
	static bool exit_hooked;

	if (!p->tty)
		return;
	if (!exit_hooked)
		exit_hooked = !atexit(leave_at_exit);
	l = calloc(1, sizeof(*l));
	if (!l)
		return;
	l->row = -1;
	l->drawn_ns = p->start_ns;
	p->live = l;
	term_live = l;
	status_line_set_hooks(&tty_hooks);
	claim_row(l);
	l->running = start_redraw_thread(p);
}

/*
 * Our line wiped and the cursor where a summary of len bytes goes, so
 * that neither it nor its newline touches the other's row.
 */
static void make_room_for_summary(struct progress_live *l, size_t len)
{
	size_t lines = message_lines(len);

	if (l->row == 0 && other_row_held(l)) {
		/* Our row under the other's: wipe it, go above both. */
		fputs("\033[B\r\033[K\033[A", stderr);
		insert_above(lines);
	} else if (l->row == 1 && other_row_held(l)) {
		/* Our row above the other's: a summary that wraps needs more. */
		fputs("\r\033[K", stderr);
		if (lines > 1)
			insert_above(lines - 1);
	} else if (status_line_is_shown()) {
		fputs("\r\033[K", stderr);
	}
}

/* Stop the redraw thread and print the summary in place of the line. */
static void live_finish(struct progress *p, const char *summary)
{
	struct progress_live *l = p->live;

	stop_thread(l);
	status_line_lock();
	make_room_for_summary(l, strlen(summary));
	fprintf(stderr, "%s\n", summary);
	status_line_gone();
	release_row(l);
	status_line_unlock();
	status_line_set_hooks(NULL);
	term_live = NULL;
	pthread_cond_destroy(&l->wake);
	pthread_mutex_destroy(&l->wake_lock);
	free(l);
	p->live = NULL;
}

/*
 * Off a terminal: the fields of the terminal's line but what it waits
 * for, and the path in full, in one write.
 */
static void plain_show(struct progress *p, uint64_t now, uint64_t bytes,
		       uint64_t cmds, const char *raw_path, size_t raw_len)
{
	char f[F_NR][FIELD_LEN];
	char path[LINE_LEN - 1];
	size_t path_len;

	fill_fields(p, f, now, bytes, cmds, NULL);
	path_len = printable_path(path, sizeof(path), raw_path, raw_len);
	fprintf(stderr, "%s%s%s%s%s%s%s%s%.*s\n", f[F_DONE], f[F_TOTAL],
		f[F_PCT], f[F_RATE], f[F_ELAPSED], f[F_ETA], f[F_CMDS],
		path_len ? ", " : "", (int)path_len, path);
	progress_trace(now, "line");
}

static void tty_show(struct progress *p, uint64_t now, uint64_t bytes,
		     uint64_t cmds, const char *path, size_t path_len)
{
	struct progress_live *l = p->live;

	if (!l) {
		plain_show(p, now, bytes, cmds, path, path_len);
		return;
	}
	l->path_len = printable_path(l->path, sizeof(l->path), path,
				     path_len);
	draw(p, now, bytes, cmds, NULL);
	progress_trace(now, "show");
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

/* The summary line: bytes, time, mean rate, commands. */
static void tty_finish(struct progress *p)
{
	double secs = (double)(p->end_ns - p->start_ns) / NSEC_PER_SEC;
	char size[32], rate[32];
	char line[256];

	progress_pretty_size(size, sizeof(size), p->end_bytes);
	progress_pretty_size(rate, sizeof(rate),
			     secs > 0 ? p->end_bytes / secs : 0);
	snprintf(line, sizeof(line), "%s %" PRIu64 " bytes (%s) in %.1f s, %s/s, %" PRIu64 " commands",
		 p->verb, p->end_bytes, size, secs, rate, p->end_cmds);
	if (p->resumed)
		print_skipped(p);
	if (p->live)
		live_finish(p, line);
	else
		fprintf(stderr, "%s\n", line);
}

const struct progress_view progress_tty_view = {
	.start = tty_start,
	.show = tty_show,
	.finish = tty_finish,
};
