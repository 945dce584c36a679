// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "utils.h"

int verbosity = VERBOSITY_DEFAULT;
enum output_format output_format = OUTPUT_TEXT;
static bool status_line;

void status_line_shown(void)
{
	status_line = true;
}

void status_line_clear(void)
{
	if (!status_line)
		return;
	fputs("\r\033[K", stderr);
	status_line = false;
}

static void message(const char *prefix, const char *fmt, va_list ap)
{
	int saved_errno = errno;

	/* Whatever stdout holds goes first, so the two stay in order. */
	fflush(stdout);
	status_line_clear();
	errno = saved_errno;	/* for %m, and for the caller */
	fputs(prefix, stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
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
