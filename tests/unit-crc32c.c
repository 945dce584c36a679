// SPDX-License-Identifier: GPL-2.0-only
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "crc32c.h"

/* Standard CRC32C is the raw update wrapped in two inversions. */
static uint32_t crc32c_std(uint32_t (*fn)(uint32_t, const void *, size_t),
			   const void *buf, size_t len)
{
	return ~fn(~0u, buf, len);
}

struct vector {
	const char *data;
	size_t len;
	uint32_t crc;
};

/* Published check values of CRC-32C (RFC 3720, iSCSI). */
static const struct vector vectors[] = {
	{ "123456789", 9, 0xe3069283 },
	{ "", 0, 0x00000000 },
	{ "a", 1, 0xc1d04330 },
	{ "The quick brown fox jumps over the lazy dog", 43, 0x22620404 },
};

static void check_vectors(uint32_t (*fn)(uint32_t, const void *, size_t))
{
	unsigned char zeros[32] = { 0 };
	unsigned char ones[32];
	unsigned char inc[32];
	size_t i;

	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
		assert_int_equal(crc32c_std(fn, vectors[i].data,
					    vectors[i].len), vectors[i].crc);
	/* RFC 3720 B.4 */
	memset(ones, 0xff, sizeof(ones));
	for (i = 0; i < sizeof(inc); i++)
		inc[i] = i;
	assert_int_equal(crc32c_std(fn, zeros, 32), 0x8a9136aa);
	assert_int_equal(crc32c_std(fn, ones, 32), 0x62a8ab43);
	assert_int_equal(crc32c_std(fn, inc, 32), 0x46dd794e);
}

static void test_software_crc_matches_known_vectors(void **state)
{
	(void)state;
	check_vectors(crc32c_update_sw);
}

static void test_hardware_crc_matches_known_vectors(void **state)
{
	(void)state;
	if (!crc32c_hw_available())
		skip();
	check_vectors(crc32c_update_hw);
}

/* The value PROTOCOL.md records for the first command of a real stream. */
static void test_stream_crc_has_no_inversion(void **state)
{
	unsigned char buf[] = "123456789";

	(void)state;
	assert_int_equal(crc32c_update(0, buf, 9),
			 crc32c_update_sw(0, buf, 9));
	assert_int_not_equal(crc32c_update(0, buf, 9), 0xe3069283);
}

/* Every length and alignment, chained in pieces, agrees across paths. */
static void test_hardware_and_software_agree(void **state)
{
	unsigned char buf[4096 + 16];
	uint32_t sw, hw, chained;
	size_t off, len, i;

	(void)state;
	srand(42);
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = rand();
	for (off = 0; off < 16; off++) {
		for (len = 0; len <= 300; len++) {
			sw = crc32c_update_sw(0x1234, buf + off, len);
			hw = crc32c_update_hw(0x1234, buf + off, len);
			assert_int_equal(sw, hw);
			assert_int_equal(crc32c_update(0x1234, buf + off, len),
					 sw);
		}
	}
	sw = crc32c_update_sw(0, buf, 4096);
	chained = crc32c_update(0, buf, 1000);
	chained = crc32c_update(chained, buf + 1000, 3096);
	assert_int_equal(sw, chained);
}

/*
 * Long buffers, where the hardware path checksums lanes side by side and
 * joins them: every length near a multiple of three lanes, and a write
 * command's size, from any alignment and a non-zero start.
 */
static void test_long_buffers_agree_across_paths(void **state)
{
	static const size_t lens[] = {
		3 * 4096 - 1, 3 * 4096, 3 * 4096 + 1, 3 * 4096 + 7,
		6 * 4096 + 5, 49 * 1024 + 10, 96 * 1024, 200 * 1024 + 3,
	};
	size_t size = 200 * 1024 + 16, off, i;
	unsigned char *buf;

	(void)state;
	if (!crc32c_hw_available())
		skip();
	buf = malloc(size);
	assert_non_null(buf);
	srand(7);
	for (i = 0; i < size; i++)
		buf[i] = rand();
	for (off = 0; off < 9; off++)
		for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
			assert_int_equal(crc32c_update_hw(0xdeadbeef, buf + off,
							  lens[i]),
					 crc32c_update_sw(0xdeadbeef, buf + off,
							  lens[i]));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_software_crc_matches_known_vectors),
		cmocka_unit_test(test_hardware_crc_matches_known_vectors),
		cmocka_unit_test(test_stream_crc_has_no_inversion),
		cmocka_unit_test(test_hardware_and_software_agree),
		cmocka_unit_test(test_long_buffers_agree_across_paths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
