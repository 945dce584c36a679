// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer harness: the parser with the dump table.  Any input must end
 * in EOF or an error, never in a crash, a hang or unbounded memory.
 */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "receive-dump.h"
#include "send-stream.h"

static FILE *devnull;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct send_stream *s;
	struct dump_ctx ctx;
	int fd, ret, steps = 0;

	if (!devnull)
		devnull = fopen("/dev/null", "w");
	fd = memfd_create("fuzz", MFD_CLOEXEC);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		goto out;
	lseek(fd, 0, SEEK_SET);
	if (send_stream_open(&s, fd) < 0)
		goto out;
	dump_ctx_init(&ctx, devnull);
	do {
		ret = send_stream_next(s, &dump_ops, &ctx);
		/* The dump's own errors leave the stream readable. */
		if (ret < 0 && send_stream_failed_in_callback(s))
			ret = 0;
	} while (ret >= 0 && ret != SEND_STREAM_EOF && ++steps < 100000);
	send_stream_close(s);
out:
	if (fd >= 0)
		close(fd);
	return 0;
}
