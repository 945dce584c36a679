/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * send --estimate: the size of a stream computed from the kernel's
 * no-data stream of the same send, which reports each extent as one
 * UPDATE_EXTENT command instead of the WRITE commands that carry it.
 * Everything else in the no-data stream is what the real stream holds.
 */
#ifndef SEND_ESTIMATE_H
#define SEND_ESTIMATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct send_estimate {
	uint64_t stream_bytes;	/* the estimated stream size, all subvolumes */
	uint64_t data_bytes;	/* file data in it */
	/* --no-data was asked for: the no-data stream is the stream. */
	bool no_data;
	/*
	 * --compressed-data: compressed extents go as ENCODED_WRITE of their
	 * size on disk, looked up in the subvolume being sent (subvol_fd).
	 */
	bool compressed;
	int subvol_fd;
};

/*
 * Read one no-data stream from fd to its end (fd is left open) and add
 * its estimate to e.  The stream must have its header and END command;
 * omit_header and omit_end take out what -e would leave out.  0, or a
 * negative errno with msg (size msg_size) saying what went wrong.
 */
int send_estimate_stream(struct send_estimate *e, int fd, bool omit_header,
			 bool omit_end, char *msg, size_t msg_size);

#endif
