/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The btrfs send stream format: protocol versions 1 to 3.
 *
 * All integers in the stream are little-endian.  A stream is a header
 * followed by commands; each command is a header followed by a payload of
 * type-length-value attributes.
 */
#ifndef SEND_H
#define SEND_H

#include <stdint.h>

#define BTRFS_SEND_STREAM_MAGIC		"btrfs-stream"
/* The magic is written with its terminating NUL. */
#define BTRFS_SEND_STREAM_MAGIC_LEN	13
#define BTRFS_SEND_STREAM_HEADER_LEN	(BTRFS_SEND_STREAM_MAGIC_LEN + 4)

/* The highest protocol version this implementation reads and writes. */
#define BTRFS_SEND_STREAM_VERSION	3

/* In protocol v1 no command, header included, exceeds 64 KiB. */
#define BTRFS_SEND_BUF_SIZE_V1		(64 * 1024)
/*
 * From v2 on the format sets no limit.  The kernel's commands stay below
 * 16 KiB plus the largest compressed extent (128 KiB); anything beyond
 * this bound is refused so that memory stays bounded on hostile input.
 */
#define BTRFS_SEND_CMD_MAX_V2		(16 * 1024 * 1024)

/* Command header: len u32 | cmd u16 | crc u32, then len payload bytes. */
#define BTRFS_SEND_CMD_HEADER_LEN	10
/* Attribute header: type u16 | len u16. */
#define BTRFS_SEND_TLV_HEADER_LEN	4

enum btrfs_send_cmd {
	BTRFS_SEND_C_UNSPEC = 0,

	/* Version 1 */
	BTRFS_SEND_C_SUBVOL = 1,
	BTRFS_SEND_C_SNAPSHOT = 2,
	BTRFS_SEND_C_MKFILE = 3,
	BTRFS_SEND_C_MKDIR = 4,
	BTRFS_SEND_C_MKNOD = 5,
	BTRFS_SEND_C_MKFIFO = 6,
	BTRFS_SEND_C_MKSOCK = 7,
	BTRFS_SEND_C_SYMLINK = 8,
	BTRFS_SEND_C_RENAME = 9,
	BTRFS_SEND_C_LINK = 10,
	BTRFS_SEND_C_UNLINK = 11,
	BTRFS_SEND_C_RMDIR = 12,
	BTRFS_SEND_C_SET_XATTR = 13,
	BTRFS_SEND_C_REMOVE_XATTR = 14,
	BTRFS_SEND_C_WRITE = 15,
	BTRFS_SEND_C_CLONE = 16,
	BTRFS_SEND_C_TRUNCATE = 17,
	BTRFS_SEND_C_CHMOD = 18,
	BTRFS_SEND_C_CHOWN = 19,
	BTRFS_SEND_C_UTIMES = 20,
	BTRFS_SEND_C_END = 21,
	BTRFS_SEND_C_UPDATE_EXTENT = 22,
	BTRFS_SEND_C_MAX_V1 = 22,

	/* Version 2 */
	BTRFS_SEND_C_FALLOCATE = 23,
	BTRFS_SEND_C_FILEATTR = 24,
	BTRFS_SEND_C_ENCODED_WRITE = 25,
	BTRFS_SEND_C_MAX_V2 = 25,

	/* Version 3 */
	BTRFS_SEND_C_ENABLE_VERITY = 26,
	BTRFS_SEND_C_MAX_V3 = 26,

	BTRFS_SEND_C_MAX = 26,
};

enum btrfs_send_attr {
	BTRFS_SEND_A_UNSPEC = 0,

	/* Version 1 */
	BTRFS_SEND_A_UUID = 1,
	BTRFS_SEND_A_CTRANSID = 2,
	BTRFS_SEND_A_INO = 3,
	BTRFS_SEND_A_SIZE = 4,
	BTRFS_SEND_A_MODE = 5,
	BTRFS_SEND_A_UID = 6,
	BTRFS_SEND_A_GID = 7,
	BTRFS_SEND_A_RDEV = 8,
	BTRFS_SEND_A_CTIME = 9,
	BTRFS_SEND_A_MTIME = 10,
	BTRFS_SEND_A_ATIME = 11,
	BTRFS_SEND_A_OTIME = 12,
	BTRFS_SEND_A_XATTR_NAME = 13,
	BTRFS_SEND_A_XATTR_DATA = 14,
	BTRFS_SEND_A_PATH = 15,
	BTRFS_SEND_A_PATH_TO = 16,
	BTRFS_SEND_A_PATH_LINK = 17,
	BTRFS_SEND_A_FILE_OFFSET = 18,
	/* From v2 on: no length field, must be last, runs to the command end. */
	BTRFS_SEND_A_DATA = 19,
	BTRFS_SEND_A_CLONE_UUID = 20,
	BTRFS_SEND_A_CLONE_CTRANSID = 21,
	BTRFS_SEND_A_CLONE_PATH = 22,
	BTRFS_SEND_A_CLONE_OFFSET = 23,
	BTRFS_SEND_A_CLONE_LEN = 24,
	BTRFS_SEND_A_MAX_V1 = 24,

	/* Version 2 */
	BTRFS_SEND_A_FALLOCATE_MODE = 25,
	BTRFS_SEND_A_FILEATTR = 26,
	BTRFS_SEND_A_UNENCODED_FILE_LEN = 27,
	BTRFS_SEND_A_UNENCODED_LEN = 28,
	BTRFS_SEND_A_UNENCODED_OFFSET = 29,
	BTRFS_SEND_A_COMPRESSION = 30,
	BTRFS_SEND_A_ENCRYPTION = 31,
	BTRFS_SEND_A_MAX_V2 = 31,

	/* Version 3 */
	BTRFS_SEND_A_VERITY_ALGORITHM = 32,
	BTRFS_SEND_A_VERITY_BLOCK_SIZE = 33,
	BTRFS_SEND_A_VERITY_SALT_DATA = 34,
	BTRFS_SEND_A_VERITY_SIG_DATA = 35,
	BTRFS_SEND_A_MAX_V3 = 35,

	BTRFS_SEND_A_MAX = 35,
};

/* FALLOCATE_MODE bits. */
#define BTRFS_SEND_FALLOC_KEEP_SIZE	0x1
#define BTRFS_SEND_FALLOC_PUNCH_HOLE	0x2

/* A timestamp attribute: sec u64 | nsec u32. */
#define BTRFS_SEND_TIMESPEC_LEN		12

#endif
