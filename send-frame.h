/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The framing of a send stream, once: the stream header, the command
 * header, the command's checksum, a command's first PATH, and the
 * position a stream has reached (struct send_stream_pos).  The parser
 * (send-stream.c) and the send pump (send-pump.c) both follow a stream
 * with these; neither decodes a header on its own.
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
 * Account a consumed unit (a stream header of hlen 17, or a command whose
 * 10-byte header is hdr and whose whole length is unit_len) to pos.
 */
void send_frame_advance(struct send_stream_pos *pos, const unsigned char *hdr,
			size_t hlen, uint64_t unit_len);
/*
 * The PATH that opens a command's payload (as the kernel sends it), from
 * the avail bytes of the payload at hand: false if it does not open with
 * one, or if the PATH is not all there.
 */
bool send_frame_first_path(const unsigned char *payload, size_t avail,
			   uint32_t len, const char **path, size_t *path_len);

#endif
