// SPDX-License-Identifier: GPL-2.0-only
/* The framing of a send stream.  See send-frame.h. */
#include <string.h>

#include "crc32c.h"
#include "le.h"
#include "send-frame.h"

bool send_frame_stream_header(const unsigned char *hdr, uint32_t *version)
{
	if (memcmp(hdr, BTRFS_SEND_STREAM_MAGIC, BTRFS_SEND_STREAM_MAGIC_LEN))
		return false;
	*version = get_le32(hdr + BTRFS_SEND_STREAM_MAGIC_LEN);
	return true;
}

void send_frame_cmd_header(const unsigned char *hdr, struct send_frame_cmd *c)
{
	c->len = get_le32(hdr);
	c->cmd = get_le16(hdr + 4);
	c->crc = get_le32(hdr + 6);
}

uint32_t send_frame_cmd_crc(const unsigned char *hdr,
			    const unsigned char *payload, uint32_t len)
{
	static const unsigned char zero[4];
	uint32_t crc;

	crc = crc32c_update(0, hdr, 6);
	crc = crc32c_update(crc, zero, sizeof(zero));
	return crc32c_update(crc, payload, len);
}

uint64_t send_frame_max_payload(uint32_t version)
{
	if (version == 1)
		return BTRFS_SEND_BUF_SIZE_V1 - BTRFS_SEND_CMD_HEADER_LEN;
	return BTRFS_SEND_CMD_MAX_V2;
}

void send_frame_advance(struct send_stream_pos *pos, const unsigned char *hdr,
			size_t hlen, uint64_t unit_len)
{
	struct send_frame_cmd c;

	pos->chain = crc32c_update(pos->chain, hdr, hlen);
	pos->offset += unit_len;
	if (hlen == BTRFS_SEND_STREAM_HEADER_LEN) {
		send_frame_stream_header(hdr, &pos->version);
		return;
	}
	send_frame_cmd_header(hdr, &c);
	pos->cmds++;
	pos->last_crc = c.crc;
	if (c.cmd < 32)
		pos->cmds_seen |= 1U << c.cmd;
	pos->ended = c.cmd == BTRFS_SEND_C_END;
}

bool send_frame_first_path(const unsigned char *payload, size_t avail,
			   uint32_t len, const char **path, size_t *path_len)
{
	uint32_t alen;

	if (avail > len)
		avail = len;
	if (avail < BTRFS_SEND_TLV_HEADER_LEN ||
	    get_le16(payload) != BTRFS_SEND_A_PATH)
		return false;
	alen = get_le16(payload + 2);
	if (alen > avail - BTRFS_SEND_TLV_HEADER_LEN)
		return false;
	*path = (const char *)payload + BTRFS_SEND_TLV_HEADER_LEN;
	*path_len = alen;
	return true;
}
