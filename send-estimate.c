// SPDX-License-Identifier: GPL-2.0-only
/*
 * The estimate of send --estimate, from a no-data stream.
 *
 * The kernel sends a file's data range by range: in protocol 1 at most
 * 48 KiB per WRITE (its 64 KiB command buffer less 16 KiB for the rest of
 * the command), from protocol 2 on at most 128 KiB.  In a no-data stream
 * the same range is one UPDATE_EXTENT (PATH, FILE_OFFSET, SIZE), so the
 * real stream holds, instead of it, ceil(SIZE / max) WRITE commands of
 * PATH, FILE_OFFSET and DATA each.  CLONE commands are the same in both.
 *
 * With --compressed-data a compressed extent sent whole goes as one
 * ENCODED_WRITE of its bytes on disk, which the no-data stream does not
 * tell: the extent is looked up in the subvolume by the path the stream
 * names.  A path that does not resolve there (a file renamed later in the
 * stream, say) counts as uncompressed: the estimate is then too large.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "le.h"
#include "send-estimate.h"
#include "send-stream.h"

#define WRITE_MAX_V1	(48 * 1024)
#define WRITE_MAX_V2	(128 * 1024)

/* The bytes of a TLV attribute holding len bytes. */
#define TLV(len)	(BTRFS_SEND_TLV_HEADER_LEN + (len))

struct estimate_ctx {
	struct send_stream *s;
	const struct send_estimate *e;
	bool no_data;
	uint64_t data_bytes;
	/* What the WRITEs add over the UPDATE_EXTENTs; may be negative. */
	int64_t adjust;
};

/* Offsets in struct btrfs_file_extent_item, packed, little-endian. */
#define FE_COMPRESSION		16
#define FE_TYPE			20
#define FE_DISK_NUM_BYTES	29
#define FE_INLINE_DATA		21
#define FE_REG_SIZE		53

/*
 * The bytes of data an ENCODED_WRITE of the extent of path at offset
 * would carry; 0 if the extent is not compressed or cannot be found.
 */
static uint64_t encoded_bytes(const struct send_estimate *e, const char *path,
			      uint64_t offset)
{
	struct btrfs_ioctl_search_args args;
	struct btrfs_ioctl_search_key *sk = &args.key;
	struct btrfs_ioctl_search_header sh;
	const unsigned char *item;
	struct stat st;

	if (fstatat(e->subvol_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode))
		return 0;
	memset(&args, 0, sizeof(args));
	sk->tree_id = 0;	/* the subvolume of subvol_fd */
	sk->min_objectid = sk->max_objectid = st.st_ino;
	sk->min_type = sk->max_type = BTRFS_EXTENT_DATA_KEY;
	sk->min_offset = sk->max_offset = offset;
	sk->max_transid = (uint64_t)-1;
	sk->nr_items = 1;
	if (ioctl(e->subvol_fd, BTRFS_IOC_TREE_SEARCH, &args) < 0 ||
	    sk->nr_items != 1)
		return 0;
	memcpy(&sh, args.buf, sizeof(sh));
	item = (const unsigned char *)args.buf + sizeof(sh);
	if (sh.len < FE_INLINE_DATA || item[FE_COMPRESSION] == 0)
		return 0;
	if (item[FE_TYPE] == BTRFS_FILE_EXTENT_INLINE)
		return sh.len - FE_INLINE_DATA;
	if (item[FE_TYPE] != BTRFS_FILE_EXTENT_REG || sh.len < FE_REG_SIZE)
		return 0;
	return get_le64(item + FE_DISK_NUM_BYTES);
}

/*
 * ENCODED_WRITE as the kernel sends it: PATH, FILE_OFFSET,
 * UNENCODED_FILE_LEN, UNENCODED_LEN, UNENCODED_OFFSET, COMPRESSION,
 * ENCRYPTION, then DATA with only its 2-byte type.
 */
static uint64_t encoded_write_size(uint64_t path_len, uint64_t data)
{
	return BTRFS_SEND_CMD_HEADER_LEN + TLV(path_len) + 4 * TLV(8) +
	       2 * TLV(4) + 2 + data;
}

static int est_update_extent(const char *path, uint64_t offset, uint64_t len,
			     void *user)
{
	struct estimate_ctx *c = user;
	uint32_t version = send_stream_version(c->s);
	uint64_t max = version == 1 ? WRITE_MAX_V1 : WRITE_MAX_V2;
	uint64_t path_len = strlen(path);
	uint64_t writes = (len + max - 1) / max;
	/* From v2 on DATA has only its 2-byte type, no length. */
	uint64_t data_hdr = version == 1 ? BTRFS_SEND_TLV_HEADER_LEN : 2;
	uint64_t write_hdr = BTRFS_SEND_CMD_HEADER_LEN + TLV(path_len) +
			     TLV(8) + data_hdr;
	uint64_t update = BTRFS_SEND_CMD_HEADER_LEN + TLV(path_len) + TLV(8) +
			  TLV(8);

	uint64_t encoded = 0;

	if (c->no_data) {
		c->data_bytes += len;
		return 0;
	}
	if (c->e->compressed)
		encoded = encoded_bytes(c->e, path, offset);
	if (encoded) {
		c->data_bytes += encoded;
		c->adjust += (int64_t)encoded_write_size(path_len, encoded) -
			     (int64_t)update;
		return 0;
	}
	c->data_bytes += len;
	c->adjust += (int64_t)(writes * write_hdr + len) - (int64_t)update;
	return 0;
}

/* Every other command is counted as it comes: nothing to do. */
static const struct send_stream_ops estimate_ops = {
	.update_extent = est_update_extent,
};

int send_estimate_stream(struct send_estimate *e, int fd, bool omit_header,
			 bool omit_end, char *msg, size_t msg_size)
{
	static const struct send_stream_loop loop = { .stop_at_end = true };
	struct estimate_ctx c = { .e = e, .no_data = e->no_data };
	int64_t bytes;
	int ret;

	ret = send_stream_open(&c.s, fd);
	if (ret < 0) {
		snprintf(msg, msg_size, "%s", strerror(-ret));
		return ret;
	}
	ret = send_stream_run(c.s, &estimate_ops, &c, &loop);
	if (ret < 0) {
		snprintf(msg, msg_size, "%s", send_stream_error(c.s));
		goto out;
	}
	bytes = (int64_t)send_stream_offset(c.s) + c.adjust;
	if (omit_header)
		bytes -= BTRFS_SEND_STREAM_HEADER_LEN;
	/* END has no attributes: just its command header. */
	if (omit_end)
		bytes -= BTRFS_SEND_CMD_HEADER_LEN;
	e->stream_bytes += bytes > 0 ? bytes : 0;
	e->data_bytes += c.data_bytes;
	ret = 0;
out:
	send_stream_close(c.s);
	return ret;
}
