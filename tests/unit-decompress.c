// SPDX-License-Identifier: GPL-2.0-only
/*
 * Encoded extents decompressed: zlib, zstd and btrfs' lzo framing (sectors
 * of 4 KiB to 64 KiB, segment headers moved past a sector's last 3 bytes)
 * compressed here with the libraries themselves; short output padded with
 * zeros; damaged input and unknown algorithms refused.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <lzo/lzo1x.h>
#include <zlib.h>
#include <zstd.h>

#include "decompress.h"

#define ZLIB		1
#define ZSTD		2
#define LZO_4K		3
#define LZO_64K		7
#define DATA_LEN	(3 * 4096 + 100)

static unsigned char data[DATA_LEN];

/* Half text, half noise: compressible, but not to nothing. */
static int make_data(void **state)
{
	uint32_t x = 2463534242u;
	size_t i;

	(void)state;
	for (i = 0; i < DATA_LEN; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		if (i % 512 < 256)
			data[i] = "send receive "[i % 13];
		else
			data[i] = x & 0xff;
	}
	return 0;
}

static size_t zlib_pack(const void *in, size_t len, unsigned char *out,
			size_t size)
{
	uLongf n = size;

	assert_int_equal(compress2(out, &n, in, len, 6), Z_OK);
	return n;
}

static size_t zstd_pack(const void *in, size_t len, unsigned char *out,
			size_t size)
{
	size_t n = ZSTD_compress(out, size, in, len, 3);

	assert_false(ZSTD_isError(n));
	return n;
}

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

/* One lzo1x segment of in at out + pos: its length header, then it. */
static size_t lzo_segment(const void *in, size_t len, unsigned char *out,
			  size_t pos)
{
	static unsigned char wrk[LZO1X_1_MEM_COMPRESS];
	lzo_uint n;

	assert_int_equal(lzo1x_1_compress(in, len, out + pos + 4, &n, wrk),
			 LZO_E_OK);
	put_le32(out + pos, n);
	return pos + 4 + n;
}

/*
 * btrfs' lzo extent: a u32 total, then a segment per chunk of input; a
 * segment header that would cross a sector boundary starts on the next
 * sector instead, the gap zeroed.
 */
static size_t lzo_pack(const unsigned char *in, size_t len,
		       const size_t *chunks, size_t nr_chunks, size_t sector,
		       unsigned char *out)
{
	size_t pos = 4, done = 0, i, c;

	for (i = 0; done < len; i++) {
		c = i < nr_chunks ? chunks[i] : sector;
		if (c > len - done)
			c = len - done;
		if (sector - pos % sector < 4) {
			memset(out + pos, 0, sector - pos % sector);
			pos += sector - pos % sector;
		}
		pos = lzo_segment(in + done, c, out, pos);
		done += c;
	}
	put_le32(out, pos);
	return pos;
}

static void assert_decompresses(uint32_t alg, const unsigned char *in,
				size_t in_len, size_t data_len, size_t out_len)
{
	unsigned char *out = malloc(out_len);

	assert_non_null(out);
	memset(out, 0xa5, out_len);
	assert_int_equal(decompress_extent(alg, in, in_len, out, out_len), 0);
	assert_memory_equal(out, data, data_len < out_len ? data_len : out_len);
	for (size_t i = data_len; i < out_len; i++)
		assert_int_equal(out[i], 0);
	free(out);
}

static void test_zlib_round_trip_and_padding(void **state)
{
	unsigned char packed[2 * DATA_LEN];
	size_t n;

	(void)state;
	n = zlib_pack(data, DATA_LEN, packed, sizeof(packed));
	assert_decompresses(ZLIB, packed, n, DATA_LEN, DATA_LEN);
	/* The extent's length is a whole sector; the data may end before. */
	assert_decompresses(ZLIB, packed, n, DATA_LEN, 4 * 4096);
	/* A full output buffer ends the extent before the stream's end. */
	assert_decompresses(ZLIB, packed, n, DATA_LEN, 4096);
}

static void test_zstd_round_trip_and_padding(void **state)
{
	unsigned char packed[2 * DATA_LEN];
	size_t n;

	(void)state;
	n = zstd_pack(data, DATA_LEN, packed, sizeof(packed));
	assert_decompresses(ZSTD, packed, n, DATA_LEN, DATA_LEN);
	assert_decompresses(ZSTD, packed, n, DATA_LEN, 4 * 4096);
	assert_decompresses(ZSTD, packed, n, DATA_LEN, 4096);
}

static void test_lzo_round_trip_each_sector_size(void **state)
{
	static unsigned char packed[4 * DATA_LEN];
	size_t sector, n;
	uint32_t alg;

	(void)state;
	for (alg = LZO_4K; alg <= LZO_64K; alg++) {
		sector = 4096 << (alg - LZO_4K);
		n = lzo_pack(data, DATA_LEN, NULL, 0, sector, packed);
		assert_decompresses(alg, packed, n, DATA_LEN, DATA_LEN);
		assert_decompresses(alg, packed, n, DATA_LEN, 4 * 4096);
	}
}

/*
 * A first segment that ends 1 to 3 bytes before the end of a sector: the
 * second one's header is on the next sector.  The input length that gets
 * there is searched for, as lzo decides the compressed size.
 */
static void test_lzo_header_skips_sector_tail(void **state)
{
	static unsigned char packed[4 * DATA_LEN];
	static unsigned char probe[4 * 4096];
	size_t chunks[2], first, end = 0;

	(void)state;
	for (first = 1; first < 2 * 4096; first++) {
		end = lzo_segment(data, first, probe, 4);
		if (end % 4096 >= 4093)
			break;
	}
	assert_true(end % 4096 >= 4093);
	chunks[0] = first;
	chunks[1] = DATA_LEN - first;
	assert_decompresses(LZO_4K, packed,
			    lzo_pack(data, DATA_LEN, chunks, 2, 4096, packed),
			    DATA_LEN, DATA_LEN);
}

static void test_corrupt_input_refused(void **state)
{
	static unsigned char packed[4 * DATA_LEN], out[DATA_LEN + 4096];
	unsigned char junk[64];
	size_t n;

	(void)state;
	memset(junk, 0x5a, sizeof(junk));
	assert_int_equal(decompress_extent(ZLIB, junk, sizeof(junk), out,
					   sizeof(out)), -EBADMSG);
	assert_int_equal(decompress_extent(ZSTD, junk, sizeof(junk), out,
					   sizeof(out)), -EBADMSG);

	/* zlib cut short: the stream ends before the output is full. */
	n = zlib_pack(data, DATA_LEN, packed, sizeof(packed));
	assert_int_equal(decompress_extent(ZLIB, packed, n / 2, out,
					   sizeof(out)), -EBADMSG);
	packed[n / 2] ^= 0xff;
	assert_int_equal(decompress_extent(ZLIB, packed, n, out, sizeof(out)),
			 -EBADMSG);

	n = lzo_pack(data, DATA_LEN, NULL, 0, 4096, packed);
	/* Shorter than its total, or than the length word itself. */
	assert_int_equal(decompress_extent(LZO_4K, packed, n - 1, out,
					   sizeof(out)), -EBADMSG);
	assert_int_equal(decompress_extent(LZO_4K, packed, 3, out,
					   sizeof(out)), -EBADMSG);
	/* A segment longer than what is left. */
	put_le32(packed + 4, n);
	assert_int_equal(decompress_extent(LZO_4K, packed, n, out,
					   sizeof(out)), -EBADMSG);
	/* A segment that is not lzo1x. */
	n = lzo_pack(data, DATA_LEN, NULL, 0, 4096, packed);
	memset(packed + 8, 0xff, 32);
	assert_int_equal(decompress_extent(LZO_4K, packed, n, out,
					   sizeof(out)), -EBADMSG);
}

static void test_unknown_compression_refused(void **state)
{
	static const uint32_t algs[] = { 0, LZO_64K + 1, 0xffffffff };
	unsigned char in[16] = { 0 }, out[16];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		assert_int_equal(decompress_extent(algs[i], in, sizeof(in), out,
						   sizeof(out)), -EOPNOTSUPP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zlib_round_trip_and_padding),
		cmocka_unit_test(test_zstd_round_trip_and_padding),
		cmocka_unit_test(test_lzo_round_trip_each_sector_size),
		cmocka_unit_test(test_lzo_header_skips_sector_tail),
		cmocka_unit_test(test_corrupt_input_refused),
		cmocka_unit_test(test_unknown_compression_refused),
	};

	return cmocka_run_group_tests(tests, make_data, NULL);
}
