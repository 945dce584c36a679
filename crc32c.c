// SPDX-License-Identifier: GPL-2.0-only
/*
 * CRC32C: the SSE4.2 crc32 instruction when the CPU has it, chosen once at
 * run time, and a slicing-by-8 table implementation everywhere else.
 */
#include <string.h>
#include <pthread.h>

#include "crc32c.h"
#include "le.h"

/* The reflected Castagnoli polynomial. */
#define CRC32C_POLY 0x82f63b78u

static uint32_t crc_table[8][256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

static void crc32c_init_table(void)
{
	uint32_t i, j, crc;

	for (i = 0; i < 256; i++) {
		crc = i;
		for (j = 0; j < 8; j++)
			crc = (crc >> 1) ^ (CRC32C_POLY & -(crc & 1));
		crc_table[0][i] = crc;
	}
	for (i = 0; i < 256; i++) {
		crc = crc_table[0][i];
		for (j = 1; j < 8; j++) {
			crc = (crc >> 8) ^ crc_table[0][crc & 0xff];
			crc_table[j][i] = crc;
		}
	}
}

uint32_t crc32c_update_sw(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t v;

	pthread_once(&crc_table_once, crc32c_init_table);

	while (len && ((uintptr_t)p & 7)) {
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
		len--;
	}
	while (len >= 8) {
		v = get_le64(p) ^ crc;
		crc = crc_table[7][v & 0xff] ^
		      crc_table[6][(v >> 8) & 0xff] ^
		      crc_table[5][(v >> 16) & 0xff] ^
		      crc_table[4][(v >> 24) & 0xff] ^
		      crc_table[3][(v >> 32) & 0xff] ^
		      crc_table[2][(v >> 40) & 0xff] ^
		      crc_table[1][(v >> 48) & 0xff] ^
		      crc_table[0][v >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
	return crc;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

/*
 * The crc32 instruction takes three cycles to give its result but can
 * start a new one every cycle: one chain of them runs at a third of the
 * speed the CPU allows.  A long buffer is checksummed as three lanes of
 * LANE bytes side by side, then the lanes are joined.  The register is
 * linear: the CRC of A followed by B is the CRC of A carried over |B|
 * zero bytes, xor the CRC of B from zero.  lane_shift[k][b] carries byte
 * k of a register, of value b, over LANE zero bytes.
 */
#define LANE 4096

static uint32_t lane_shift[4][256];

__attribute__((target("sse4.2")))
static uint32_t over_zero_lane(uint32_t crc)
{
	uint64_t crc64 = crc;
	size_t i;

	for (i = 0; i < LANE / 8; i++)
		crc64 = _mm_crc32_u64(crc64, 0);
	return crc64;
}

static void init_lane_shift(void)
{
	uint32_t bit[32];
	unsigned int k, b, j;

	for (j = 0; j < 32; j++)
		bit[j] = over_zero_lane(1u << j);
	for (k = 0; k < 4; k++) {
		for (b = 0; b < 256; b++) {
			lane_shift[k][b] = 0;
			for (j = 0; j < 8; j++)
				if (b & (1u << j))
					lane_shift[k][b] ^= bit[8 * k + j];
		}
	}
}

static uint32_t shift_lane(uint32_t crc)
{
	return lane_shift[0][crc & 0xff] ^ lane_shift[1][(crc >> 8) & 0xff] ^
	       lane_shift[2][(crc >> 16) & 0xff] ^ lane_shift[3][crc >> 24];
}

/* p is 8-byte aligned and holds 3 * LANE bytes. */
__attribute__((target("sse4.2")))
static uint32_t crc_three_lanes(uint32_t crc, const unsigned char *p)
{
	uint64_t a = crc, b = 0, c = 0, va, vb, vc;
	size_t i;

	for (i = 0; i < LANE; i += 8) {
		memcpy(&va, p + i, 8);
		memcpy(&vb, p + LANE + i, 8);
		memcpy(&vc, p + 2 * LANE + i, 8);
		a = _mm_crc32_u64(a, va);
		b = _mm_crc32_u64(b, vb);
		c = _mm_crc32_u64(c, vc);
	}
	return shift_lane(shift_lane(a) ^ b) ^ c;
}

__attribute__((target("sse4.2")))
uint32_t crc32c_update_hw(uint32_t crc, const void *buf, size_t len)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	const unsigned char *p = buf;
	uint64_t crc64;
	uint64_t v;

	while (len && ((uintptr_t)p & 7)) {
		crc = _mm_crc32_u8(crc, *p++);
		len--;
	}
	if (len >= 3 * LANE)
		pthread_once(&once, init_lane_shift);
	for (; len >= 3 * LANE; p += 3 * LANE, len -= 3 * LANE)
		crc = crc_three_lanes(crc, p);
	crc64 = crc;
	while (len >= 8) {
		memcpy(&v, p, sizeof(v));
		crc64 = _mm_crc32_u64(crc64, v);
		p += 8;
		len -= 8;
	}
	crc = (uint32_t)crc64;
	while (len--)
		crc = _mm_crc32_u8(crc, *p++);
	return crc;
}

bool crc32c_hw_available(void)
{
	return __builtin_cpu_supports("sse4.2");
}
#else
uint32_t crc32c_update_hw(uint32_t crc, const void *buf, size_t len)
{
	return crc32c_update_sw(crc, buf, len);
}

bool crc32c_hw_available(void)
{
	return false;
}
#endif

typedef uint32_t (*crc32c_fn)(uint32_t, const void *, size_t);

static crc32c_fn crc32c_impl;
static pthread_once_t crc32c_impl_once = PTHREAD_ONCE_INIT;

static void crc32c_choose(void)
{
	crc32c_impl = crc32c_hw_available() ? crc32c_update_hw :
					      crc32c_update_sw;
}

uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc32c_impl_once, crc32c_choose);
	return crc32c_impl(crc, buf, len);
}
