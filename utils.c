// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "utils.h"

int verbosity = VERBOSITY_DEFAULT;
enum output_format output_format = OUTPUT_TEXT;
static bool status_line;
/*
 * The line may be redrawn by a thread of its own (progress-tty.c): the
 * lock keeps a redraw from landing between the wipe and a message.
 */
static pthread_mutex_t status_line_mutex = PTHREAD_MUTEX_INITIALIZER;
static const struct status_line_hooks *status_line_hooks;

void status_line_set_hooks(const struct status_line_hooks *hooks)
{
	status_line_hooks = hooks;
}

void status_line_lock(void)
{
	pthread_mutex_lock(&status_line_mutex);
	if (status_line_hooks)
		status_line_hooks->lock();
}

void status_line_unlock(void)
{
	if (status_line_hooks)
		status_line_hooks->unlock();
	pthread_mutex_unlock(&status_line_mutex);
}

void status_line_shown(void)
{
	status_line = true;
}

void status_line_gone(void)
{
	status_line = false;
}

bool status_line_is_shown(void)
{
	return status_line;
}

/* Under the lock; len: the bytes of the message to follow. */
static void wipe_status_line(size_t len)
{
	if (status_line_hooks)
		status_line_hooks->wipe(status_line, len);
	else if (status_line)
		fputs("\r\033[K", stderr);
	status_line = false;
}

void status_line_printf(FILE *out, const char *fmt, ...)
{
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	status_line_lock();
	wipe_status_line(len > 0 ? len : 0);
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fflush(out);
	status_line_unlock();
}

static void message(const char *prefix, const char *fmt, va_list ap)
{
	int saved_errno = errno;
	va_list copy;
	int len;

	/* Whatever stdout holds goes first, so the two stay in order. */
	fflush(stdout);
	va_copy(copy, ap);
	errno = saved_errno;	/* for %m */
	len = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	status_line_lock();
	wipe_status_line(len > 0 ? strlen(prefix) + len : 0);
	errno = saved_errno;	/* for %m, and for the caller */
	fputs(prefix, stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	status_line_unlock();
	errno = saved_errno;
}

void error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	message("ERROR: ", fmt, ap);
	va_end(ap);
}

void warning(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	message("WARNING: ", fmt, ap);
	va_end(ap);
}

bool mechanism_off(const char *name)
{
	const char *list = getenv("BTRFS_MECHANISMS_OFF");
	size_t len = strlen(name);

	while (list && *list) {
		if (!strncmp(list, name, len) &&
		    (list[len] == ',' || !list[len]))
			return true;
		list = strchr(list, ',');
		if (list)
			list++;
	}
	return false;
}

void pipe_grow(int fd, int size)
{
	struct stat st;
	int now;

	if (mechanism_off("pipe") || fstat(fd, &st) || !S_ISFIFO(st.st_mode))
		return;
	now = fcntl(fd, F_GETPIPE_SZ);
	if (now >= 0 && now < size)
		fcntl(fd, F_SETPIPE_SZ, size);
}

int wait_writable(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };

	while (poll(&pfd, 1, -1) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;
	int ret;

	while (len) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			ret = wait_writable(fd);
			if (ret < 0)
				return ret;
			continue;
		}
		p += n;
		len -= n;
	}
	return 0;
}

int pwrite_all(int fd, const void *buf, size_t len, uint64_t offset)
{
	const char *p = buf;
	ssize_t n;

	while (len) {
		n = pwrite(fd, p, len, offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= n;
		offset += n;
	}
	return 0;
}

/* The leading decimal digits of str (at least one); 0 or -EINVAL. */
static int parse_digits(const char *str, uint64_t *value, char **end)
{
	unsigned long long v;

	if (!str || *str < '0' || *str > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(str, end, 10);
	if (errno)
		return -EINVAL;
	*value = v;
	return 0;
}

int parse_u64(const char *str, uint64_t *value)
{
	uint64_t v;
	char *end;

	if (parse_digits(str, &v, &end) || *end)
		return -EINVAL;
	*value = v;
	return 0;
}

static int binary_suffix_shift(const char *suffix)
{
	if (!suffix[0])
		return 0;
	if (suffix[1])
		return -1;
	switch (suffix[0]) {
	case 'k': case 'K':
		return 10;
	case 'm': case 'M':
		return 20;
	case 'g': case 'G':
		return 30;
	case 't': case 'T':
		return 40;
	default:
		return -1;
	}
}

int parse_size(const char *str, uint64_t *value)
{
	uint64_t v;
	char *end;
	int shift;

	if (parse_digits(str, &v, &end))
		return -EINVAL;
	shift = binary_suffix_shift(end);
	if (shift < 0 || (shift && v > (UINT64_MAX >> shift)))
		return -EINVAL;
	*value = v << shift;
	return 0;
}

int start_thread_without_signals(pthread_t *thread, void *(*fn)(void *),
				 void *arg)
{
	sigset_t all, old;
	int ret;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(thread, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}
