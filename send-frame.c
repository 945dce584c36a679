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

bool send_frame_header_due(const struct send_frame *f)
{
	/* After END another stream may follow, but not in one ioctl's. */
	if (f->pos.ended)
		return !f->one_subvol;
	return !f->pos.offset && !f->pos.headerless;
}

int send_frame_check(const struct send_frame *f, const unsigned char *hdr,
		     bool whole, struct send_frame_cmd *c)
{
	const struct send_stream_pos *pos = &f->pos;

	send_frame_cmd_header(hdr, c);
	/* Its magic reads as a length over any limit: name it for what it is. */
	if (!memcmp(hdr, BTRFS_SEND_STREAM_MAGIC, BTRFS_SEND_CMD_HEADER_LEN))
		return SEND_FRAME_STREAM_HEADER;
	/* The length says how much to read: it is judged on the header. */
	if (c->len > (f->max_len ?: send_frame_max_payload(pos->version)))
		return SEND_FRAME_TOO_LONG;
	/* With the whole command, its checksum names a damaged header best. */
	if (whole && c->crc != send_frame_cmd_crc(hdr,
				hdr + BTRFS_SEND_CMD_HEADER_LEN, c->len))
		return SEND_FRAME_BAD_CRC;
	if (c->cmd == BTRFS_SEND_C_UNSPEC || c->cmd > BTRFS_SEND_C_MAX)
		return SEND_FRAME_BAD_TYPE;
	if (f->one_subvol && (pos->ended ||
			      send_frame_opens_subvol(c->cmd) != !pos->cmds))
		return SEND_FRAME_OUT_OF_PLACE;
	return SEND_FRAME_OK;
}

void send_frame_advance(struct send_frame *f, const unsigned char *hdr,
			size_t hlen)
{
	struct send_stream_pos *pos = &f->pos;
	struct send_frame_cmd c;

	if (hlen == BTRFS_SEND_STREAM_HEADER_LEN) {
		*pos = (struct send_stream_pos){ .offset = 0 };
		send_frame_stream_header(hdr, &pos->version);
	} else {
		send_frame_cmd_header(hdr, &c);
		/* "send -e": the next subvolume's stream, without a header. */
		if (send_frame_opens_subvol(c.cmd) && pos->cmds)
			*pos = (struct send_stream_pos){
				.version = pos->version, .headerless = true };
		pos->offset += c.len;
		pos->cmds++;
		pos->last_crc = c.crc;
		if (c.cmd < 32)
			pos->cmds_seen |= 1U << c.cmd;
		pos->ended = c.cmd == BTRFS_SEND_C_END;
	}
	pos->chain = crc32c_update(pos->chain, hdr, hlen);
	pos->offset += hlen;
}

void send_frame_restart(struct send_frame *f)
{
	f->pos = (struct send_stream_pos){ .version = f->pos.version,
					   .headerless = f->pos.headerless };
}

int send_frame_replay(const struct send_stream_pos *pos, uint64_t ulen,
		      const struct send_stream_pos *want)
{
	if (pos->offset < want->offset && pos->offset + ulen <= want->offset)
		return SEND_FRAME_TAKEN;
	if (pos->offset != want->offset)
		return SEND_FRAME_ACROSS;
	/* At want: the chain of command headers says what came before. */
	if (pos->cmds != want->cmds)
		return SEND_FRAME_OTHER_CMDS;
	if (pos->chain != want->chain || pos->last_crc != want->last_crc)
		return SEND_FRAME_OTHER_CONTENT;
	return SEND_FRAME_OK;
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
