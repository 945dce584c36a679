/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef DECOMPRESS_H
#define DECOMPRESS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Decompress one encoded extent of a send stream (compression as in the
 * COMPRESSION attribute: 1 zlib, 2 zstd, 3..7 lzo with 4 KiB..64 KiB
 * sectors) into out, which holds the extent's unencoded length.  Output
 * shorter than out_len is padded with zeros.  0 or a negative errno.
 */
int decompress_extent(uint32_t compression, const void *in, size_t in_len,
		      void *out, size_t out_len);

#endif
