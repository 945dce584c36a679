/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The framing of a send stream, once: the stream header, the command
 * header, the command's checksum, a command's first PATH, the position a
 * stream has reached (struct send_stream_pos), and which unit may come
 * next (struct send_frame).  The parser (send-stream.c) and the send pump
 * (send-pump.c) both follow a stream with these; neither decodes or judges
 * a header on its own.
 */
#ifndef SEND_FRAME_H
#define SEND_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "send.h"

/*
 * How far the stream of one subvolume has been followed: its bytes start
 * at its stream header, or at its SUBVOL/SNAPSHOT command when it has no
 * header (the second and later subvolumes of "send -e").  chain is CRC32C
 * over that header and over the 10-byte header of every command consumed;
 * each command header carries the CRC32C of its command, so the chain
 * identifies every byte of the prefix at the cost of 10 bytes per command.
 * A resumed transfer compares two of these.
 */
struct send_stream_pos {
	uint64_t offset;	/* bytes consumed, from the subvolume's start */
	uint64_t cmds;		/* its commands consumed */
	uint32_t chain;
	uint32_t last_crc;	/* the stored CRC of the last command */
	uint32_t version;	/* protocol version of its stream */
	uint32_t cmds_seen;	/* bit n: a command of type n was consumed */
	bool headerless;
	bool ended;		/* its END command was consumed */
};

struct send_frame_cmd {
	uint32_t len;		/* of the payload, after the 10-byte header */
	uint16_t cmd;
	uint32_t crc;		/* as stored */
};

/* The stream header's version, or false when its magic is not there. */
bool send_frame_stream_header(const unsigned char *hdr, uint32_t *version);
void send_frame_cmd_header(const unsigned char *hdr,
			   struct send_frame_cmd *c);
/* The CRC32C of a command as the kernel computes it; compare to c->crc. */
uint32_t send_frame_cmd_crc(const unsigned char *hdr,
			    const unsigned char *payload, uint32_t len);
/* The largest payload a command of protocol version may carry. */
uint64_t send_frame_max_payload(uint32_t version);
/*
 * The PATH that opens a command's payload (as the kernel sends it), from
 * the avail bytes of the payload at hand: false if it does not open with
 * one, or if the PATH is not all there.
 */
bool send_frame_first_path(const unsigned char *payload, size_t avail,
			   uint32_t len, const char **path, size_t *path_len);

static inline bool send_frame_opens_subvol(unsigned int cmd)
{
	return cmd == BTRFS_SEND_C_SUBVOL || cmd == BTRFS_SEND_C_SNAPSHOT;
}

/*
 * A stream followed, and which unit may come next.  The parser follows
 * streams one after another, each from its stream header or ("send -e")
 * its SUBVOL or SNAPSHOT; the pump follows one send ioctl's (one_subvol):
 * SUBVOL or SNAPSHOT first and only there, nothing after END.
 */
struct send_frame {
	struct send_stream_pos pos;	/* of the current subvolume's stream */
	uint64_t max_len;		/* of a payload; 0: the protocol's */
	bool one_subvol;
};

/* Of send_frame_check(), in the order it looks; of send_frame_replay(). */
enum send_frame_verdict {
	SEND_FRAME_OK,
	SEND_FRAME_STREAM_HEADER,	/* a stream header, not a command */
	SEND_FRAME_TOO_LONG,		/* a payload over the limit */
	SEND_FRAME_BAD_CRC,
	SEND_FRAME_BAD_TYPE,		/* no command of protocol v1 to v3 */
	SEND_FRAME_OUT_OF_PLACE,	/* one_subvol: see struct send_frame */
	SEND_FRAME_TAKEN,		/* taken before: drop it */
	SEND_FRAME_ACROSS,		/* across or past want: no boundary */
	SEND_FRAME_OTHER_CMDS,		/* at want: another number of commands */
	SEND_FRAME_OTHER_CONTENT,	/* at want: other commands */
};

/* Whether a stream header is due next rather than a command. */
bool send_frame_header_due(const struct send_frame *f);
/*
 * Check the command header at hdr where f stands; with whole, its payload
 * follows and the command's checksum is checked too.  *c: the header.
 */
int send_frame_check(const struct send_frame *f, const unsigned char *hdr,
		     bool whole, struct send_frame_cmd *c);
/*
 * Take a checked unit whose header is hdr: a stream header (hlen 17),
 * which starts a stream, or a command (hlen 10).  A SUBVOL or SNAPSHOT
 * after other commands starts a header-less stream.
 */
void send_frame_advance(struct send_frame *f, const unsigned char *hdr,
			size_t hlen);
/*
 * A send ioctl restarted after a stop writes the subvolume's stream again
 * from its start (see send-pump.h): the parser finds the repeat in its
 * input, the pump runs the ioctl again.  Each follows the repeat from its
 * start (send_frame_restart() keeps the version and whether it has a
 * header) and asks send_frame_replay() what its unit of ulen bytes at pos
 * is against want, where what was taken before ended; of pos itself (ulen
 * 0), SEND_FRAME_OK means at want, after the same commands.
 */
void send_frame_restart(struct send_frame *f);
int send_frame_replay(const struct send_stream_pos *pos, uint64_t ulen,
		      const struct send_stream_pos *want);

#endif
