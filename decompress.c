// SPDX-License-Identifier: GPL-2.0-only
/*
 * Decompression of encoded extents, for destinations that refuse encoded
 * writes and for --force-decompress.
 */
#include <errno.h>
#include <lzo/lzo1x.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "decompress.h"
#include "le.h"

#define COMPRESS_ZLIB	1
#define COMPRESS_ZSTD	2
#define COMPRESS_LZO_4K	3
#define COMPRESS_LZO_64K 7

static int inflate_zlib(const void *in, size_t in_len, void *out,
			size_t out_len, size_t *done)
{
	z_stream zs = { 0 };
	int ret;

	if (inflateInit(&zs) != Z_OK)
		return -ENOMEM;
	zs.next_in = (Bytef *)in;
	zs.avail_in = in_len;
	zs.next_out = out;
	zs.avail_out = out_len;
	ret = inflate(&zs, Z_FINISH);
	*done = out_len - zs.avail_out;
	inflateEnd(&zs);
	/* A full output buffer ends the extent even before the stream end. */
	if (ret == Z_STREAM_END || (ret == Z_BUF_ERROR && zs.avail_out == 0))
		return 0;
	return -EBADMSG;
}

static int decompress_zstd(const void *in, size_t in_len, void *out,
			   size_t out_len, size_t *done)
{
	ZSTD_inBuffer ib = { in, in_len, 0 };
	ZSTD_outBuffer ob = { out, out_len, 0 };
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	size_t ret;

	if (!dctx)
		return -ENOMEM;
	do {
		ret = ZSTD_decompressStream(dctx, &ob, &ib);
		if (ZSTD_isError(ret)) {
			ZSTD_freeDCtx(dctx);
			return -EBADMSG;
		}
	} while (ret && ob.pos < ob.size && ib.pos < ib.size);
	ZSTD_freeDCtx(dctx);
	*done = ob.pos;
	return 0;
}

/*
 * btrfs' lzo format: a u32 total length, then segments of u32 length plus
 * lzo1x data, one per sector of output; a segment header never straddles
 * a sector boundary of the input, the gap is padding.
 */
static int decompress_lzo(const void *in, size_t in_len, void *out,
			  size_t out_len, size_t sector, size_t *done)
{
	const unsigned char *src = in;
	unsigned char *dst = out;
	size_t pos = 4, total, seg_len, out_pos = 0;
	lzo_uint seg_out;

	if (lzo_init() != LZO_E_OK || in_len < 4)
		return -EBADMSG;
	total = get_le32(src);
	if (total > in_len)
		return -EBADMSG;
	while (pos < total && out_pos < out_len) {
		if (sector - pos % sector < 4)
			pos += sector - pos % sector;
		if (pos + 4 > total)
			break;
		seg_len = get_le32(src + pos);
		pos += 4;
		if (seg_len > total - pos)
			return -EBADMSG;
		seg_out = out_len - out_pos;
		if (lzo1x_decompress_safe(src + pos, seg_len, dst + out_pos,
					  &seg_out, NULL) != LZO_E_OK)
			return -EBADMSG;
		out_pos += seg_out;
		pos += seg_len;
	}
	*done = out_pos;
	return 0;
}

int decompress_extent(uint32_t compression, const void *in, size_t in_len,
		      void *out, size_t out_len)
{
	size_t done = 0;
	int ret;

	if (compression == COMPRESS_ZLIB)
		ret = inflate_zlib(in, in_len, out, out_len, &done);
	else if (compression == COMPRESS_ZSTD)
		ret = decompress_zstd(in, in_len, out, out_len, &done);
	else if (compression >= COMPRESS_LZO_4K &&
		 compression <= COMPRESS_LZO_64K)
		ret = decompress_lzo(in, in_len, out, out_len,
				     4096 << (compression - COMPRESS_LZO_4K),
				     &done);
	else
		return -EOPNOTSUPP;
	if (ret < 0)
		return ret;
	memset((char *)out + done, 0, out_len - done);
	return 0;
}
