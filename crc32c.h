/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef CRC32C_H
#define CRC32C_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/*
 * CRC32C (Castagnoli) without the customary pre- and post-inversion: the
 * send stream checksums each command as crc32c_update(0, ...).  Standard
 * CRC32C of a buffer is ~crc32c_update(~0, buf, len).
 */
uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len);

/* Both implementations, exported so that tests can compare them. */
uint32_t crc32c_update_sw(uint32_t crc, const void *buf, size_t len);
uint32_t crc32c_update_hw(uint32_t crc, const void *buf, size_t len);
bool crc32c_hw_available(void);

#endif
