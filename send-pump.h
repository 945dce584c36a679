/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The pump: moves the stream the kernel's send ioctl writes into a pipe on
 * to the output, and repairs a restarted ioctl.
 *
 * When the sending thread is stopped while the kernel waits on a full pipe
 * (SIGSTOP, Ctrl-Z, a debugger, the freezer of a suspend), the kernel
 * restarts BTRFS_IOC_SEND from the beginning and writes the whole stream
 * again after what it had written.  The pump makes that visible: once the
 * kernel holds the pipe, it takes the pipe's number out of the ioctl's
 * arguments, so that a restart fails with EBADF instead of writing into
 * the pipe again, and the caller runs a new attempt into a new pipe.  Each
 * attempt's stream is then checked against what the output already holds
 * (the chain of command headers, see struct send_stream_pos), the
 * repeated part is dropped, and the rest goes on.  Until the kernel is
 * known to hold the pipe, every command is checked (CRC32C) before it is
 * written, so that a restart in that short window is caught by content.
 */
#ifndef SEND_PUMP_H
#define SEND_PUMP_H

#include <linux/types.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "progress.h"
#include "send-frame.h"

/* What --progress shows, over all the subvolumes of a send. */
#define SEND_PUMP_PATH_SHOWN	256

struct send_pump_progress {
	struct progress *prog;
	uint64_t moved;			/* bytes written */
	uint64_t cmds;			/* commands written */
	char path[SEND_PUMP_PATH_SHOWN];	/* of the last one that had one */
	size_t path_len;
};

struct send_pump {
	/* Set by the caller before the first attempt. */
	int out;
	size_t chunk;			/* the largest command the kernel writes */
	bool no_end;			/* send -e: no END command */
	const unsigned char *frame;	/* --resume: written before the rest */
	struct send_pump_progress *progress;	/* --progress, or NULL */
	/* Where the kernel's stream stands, for the prefetcher. */
	_Atomic uint64_t kernel_pos;

	/* What the output holds of this stream, over all attempts. */
	struct send_stream_pos done;	/* at the last whole command written */
	uint64_t written;		/* may end inside the command at done */
	unsigned char cut_hdr[BTRFS_SEND_STREAM_HEADER_LEN];
	bool frame_due;
	bool can_splice;
	bool large_payload;		/* the last unit's was spliced */
	bool ended;			/* the stream is complete */

	/* One attempt: see send_pump_attempt(). */
	int in;
	__s64 *send_fd;			/* the ioctl's argument */
	int write_end;			/* our copy of the pipe's write end */
	bool disarmed;
	bool restart_seen;		/* its content showed a restart */
	uint64_t verify_end;
	struct send_frame at;		/* the kernel's stream, followed */
	unsigned char *buf;
	size_t size;			/* of buf */
	size_t start, end;		/* the unread bytes of buf */
	size_t queued;			/* bytes before start still to write */
	bool drained;			/* the last read emptied the pipe */
	uint64_t in_off;		/* stream offset of buf[start] */

	int err;
	char msg[256];
};

/*
 * Before the first attempt.  With resume, the output is taken to hold the
 * token's prefix already and frame is written before what follows it.
 */
int send_pump_init(struct send_pump *p, int out, size_t chunk,
		   bool headerless, bool no_end,
		   const struct send_stream_pos *resume,
		   const unsigned char *frame);
void send_pump_free(struct send_pump *p);

/*
 * Thread body: read one attempt's pipe (p->in, closed at the end) until
 * its end.  Before it starts, the caller sets p->in, p->send_fd (the
 * ioctl's send_fd, which holds p->write_end) and p->write_end.
 */
void *send_pump_attempt(void *arg);

/* After the ioctl returned: close p->write_end unless the pump did. */
void send_pump_release(struct send_pump *p);

/* The attempt was cut short by a restart: run another. */
bool send_pump_restarted(const struct send_pump *p, int ioctl_err);

/*
 * After the last attempt: 0 when the output holds the whole stream or the
 * ioctl's own error explains why not; -ESTALE when the kernel's stream
 * differs from what was written before (p->frame_due: from the resume
 * token), -EIO when it is damaged, each explained in p->msg; or the
 * output's error.
 */
int send_pump_finish(struct send_pump *p, int ioctl_err);

#endif
