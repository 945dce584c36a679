/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Test-only builder of send streams in memory: a header, then commands
 * assembled attribute by attribute, each with a correct CRC unless the
 * test spoils it.  Fed to the parser through a memfd.
 */
#ifndef STREAM_BUILDER_H
#define STREAM_BUILDER_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "crc32c.h"
#include "send.h"

struct sb {
	unsigned char *buf;
	size_t len;
	size_t cap;
	size_t cmd_start;	/* offset of the open command's header */
	uint32_t version;
};

static inline void sb_put(struct sb *b, const void *data, size_t len)
{
	if (b->len + len > b->cap) {
		b->cap = (b->len + len) * 2 + 64;
		b->buf = realloc(b->buf, b->cap);
	}
	memcpy(b->buf + b->len, data, len);
	b->len += len;
}

static inline void sb_le16(struct sb *b, uint16_t v)
{
	unsigned char p[2] = { v & 0xff, v >> 8 };

	sb_put(b, p, 2);
}

static inline void sb_le32(struct sb *b, uint32_t v)
{
	unsigned char p[4];
	int i;

	for (i = 0; i < 4; i++)
		p[i] = v >> (8 * i);
	sb_put(b, p, 4);
}

static inline void sb_le64(struct sb *b, uint64_t v)
{
	unsigned char p[8];
	int i;

	for (i = 0; i < 8; i++)
		p[i] = v >> (8 * i);
	sb_put(b, p, 8);
}

static inline void sb_header(struct sb *b, uint32_t version)
{
	sb_put(b, BTRFS_SEND_STREAM_MAGIC, BTRFS_SEND_STREAM_MAGIC_LEN);
	sb_le32(b, version);
	b->version = version;
}

static inline void sb_cmd(struct sb *b, uint16_t cmd)
{
	b->cmd_start = b->len;
	sb_le32(b, 0);
	sb_le16(b, cmd);
	sb_le32(b, 0);
}

static inline void sb_attr(struct sb *b, uint16_t type, const void *data,
			   size_t len)
{
	sb_le16(b, type);
	if (!(type == BTRFS_SEND_A_DATA && b->version >= 2))
		sb_le16(b, len);
	sb_put(b, data, len);
}

static inline void sb_str(struct sb *b, uint16_t type, const char *s)
{
	sb_attr(b, type, s, strlen(s));
}

static inline void sb_u64(struct sb *b, uint16_t type, uint64_t v)
{
	sb_le16(b, type);
	sb_le16(b, 8);
	sb_le64(b, v);
}

static inline void sb_u32(struct sb *b, uint16_t type, uint32_t v)
{
	sb_le16(b, type);
	sb_le16(b, 4);
	sb_le32(b, v);
}

static inline void sb_timespec(struct sb *b, uint16_t type, uint64_t sec,
			       uint32_t nsec)
{
	sb_le16(b, type);
	sb_le16(b, 12);
	sb_le64(b, sec);
	sb_le32(b, nsec);
}

/* Close the open command: fill in its length and CRC. */
static inline void sb_end_cmd(struct sb *b)
{
	unsigned char *hdr = b->buf + b->cmd_start;
	uint32_t len = b->len - b->cmd_start - BTRFS_SEND_CMD_HEADER_LEN;
	uint32_t crc;
	int i;

	for (i = 0; i < 4; i++)
		hdr[i] = len >> (8 * i);
	memset(hdr + 6, 0, 4);
	crc = crc32c_update(0, hdr, b->len - b->cmd_start);
	for (i = 0; i < 4; i++)
		hdr[6 + i] = crc >> (8 * i);
}

/* A command with no attributes, e.g. END. */
static inline void sb_simple(struct sb *b, uint16_t cmd)
{
	sb_cmd(b, cmd);
	sb_end_cmd(b);
}

/* An fd from which the parser reads exactly the built bytes. */
static inline int sb_fd(const struct sb *b)
{
	int fd = memfd_create("stream", 0);

	if (fd < 0)
		return -1;
	if (write(fd, b->buf, b->len) != (ssize_t)b->len) {
		close(fd);
		return -1;
	}
	lseek(fd, 0, SEEK_SET);
	return fd;
}

static inline void sb_free(struct sb *b)
{
	free(b->buf);
	memset(b, 0, sizeof(*b));
}

#endif
