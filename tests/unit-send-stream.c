// SPDX-License-Identifier: GPL-2.0-only
/*
 * The parser on streams built in memory: every command decodes into the
 * right callback with the right values, and every kind of malformed input
 * gets its own error.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "send-stream.h"
#include "tests/stream-builder.h"

static const uint8_t UUID_A[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
				    13, 14, 15, 16 };
static const uint8_t UUID_B[16] = { 0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99,
				    0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22,
				    0x11, 0x00 };

/* What the last callback saw. */
struct rec {
	int calls;
	const char *cmd;
	char path[PATH_MAX];
	char path2[PATH_MAX];
	uint64_t v[6];
	uint8_t uuid[16];
	uint8_t uuid2[16];
	unsigned char data[70000];
	size_t len;
	size_t len2;
	struct send_timespec ts[3];
	int fail_with;
};

static int record(struct rec *r, const char *cmd, const char *path,
		  const char *path2)
{
	r->calls++;
	r->cmd = cmd;
	snprintf(r->path, sizeof(r->path), "%s", path ? path : "");
	snprintf(r->path2, sizeof(r->path2), "%s", path2 ? path2 : "");
	return r->fail_with;
}

static int rec_subvol(const char *p, const uint8_t *u, uint64_t t, void *user)
{
	struct rec *r = user;

	memcpy(r->uuid, u, 16);
	r->v[0] = t;
	return record(r, "subvol", p, NULL);
}

static int rec_snapshot(const char *p, const uint8_t *u, uint64_t t,
			const uint8_t *pu, uint64_t pt, void *user)
{
	struct rec *r = user;

	memcpy(r->uuid, u, 16);
	memcpy(r->uuid2, pu, 16);
	r->v[0] = t;
	r->v[1] = pt;
	return record(r, "snapshot", p, NULL);
}

#define REC_PATH_ONLY(name)						\
static int rec_##name(const char *p, void *user)			\
{									\
	return record(user, #name, p, NULL);				\
}
REC_PATH_ONLY(mkfile)
REC_PATH_ONLY(mkdir)
REC_PATH_ONLY(mkfifo)
REC_PATH_ONLY(mksock)
REC_PATH_ONLY(unlink)
REC_PATH_ONLY(rmdir)

#define REC_TWO_PATHS(name)						\
static int rec_##name(const char *p, const char *q, void *user)		\
{									\
	return record(user, #name, p, q);				\
}
REC_TWO_PATHS(symlink)
REC_TWO_PATHS(rename)
REC_TWO_PATHS(link)

static int rec_mknod(const char *p, uint64_t mode, uint64_t rdev, void *user)
{
	struct rec *r = user;

	r->v[0] = mode;
	r->v[1] = rdev;
	return record(r, "mknod", p, NULL);
}

static int rec_write(const char *p, const void *d, uint64_t off, size_t len,
		     void *user)
{
	struct rec *r = user;

	r->v[0] = off;
	r->len = len;
	memcpy(r->data, d, len < sizeof(r->data) ? len : sizeof(r->data));
	return record(r, "write", p, NULL);
}

static int rec_clone(const char *p, uint64_t off, uint64_t len,
		     const uint8_t *cu, uint64_t ct, const char *cp,
		     uint64_t coff, void *user)
{
	struct rec *r = user;

	r->v[0] = off;
	r->v[1] = len;
	r->v[2] = ct;
	r->v[3] = coff;
	memcpy(r->uuid, cu, 16);
	return record(r, "clone", p, cp);
}

static int rec_set_xattr(const char *p, const char *name, const void *d,
			 size_t len, void *user)
{
	struct rec *r = user;

	r->len = len;
	memcpy(r->data, d, len);
	return record(r, "set_xattr", p, name);
}

static int rec_remove_xattr(const char *p, const char *name, void *user)
{
	return record(user, "remove_xattr", p, name);
}

#define REC_ONE_U64(name)						\
static int rec_##name(const char *p, uint64_t a, void *user)		\
{									\
	((struct rec *)user)->v[0] = a;					\
	return record(user, #name, p, NULL);				\
}
REC_ONE_U64(truncate)
REC_ONE_U64(chmod)
REC_ONE_U64(fileattr)

static int rec_chown(const char *p, uint64_t uid, uint64_t gid, void *user)
{
	struct rec *r = user;

	r->v[0] = uid;
	r->v[1] = gid;
	return record(r, "chown", p, NULL);
}

static int rec_utimes(const char *p, const struct send_timespec *a,
		      const struct send_timespec *m,
		      const struct send_timespec *c, void *user)
{
	struct rec *r = user;

	r->ts[0] = *a;
	r->ts[1] = *m;
	r->ts[2] = *c;
	return record(r, "utimes", p, NULL);
}

static int rec_update_extent(const char *p, uint64_t off, uint64_t len,
			     void *user)
{
	struct rec *r = user;

	r->v[0] = off;
	r->v[1] = len;
	return record(r, "update_extent", p, NULL);
}

static int rec_end(void *user)
{
	return record(user, "end", NULL, NULL);
}

static int rec_fallocate(const char *p, uint32_t mode, uint64_t off,
			 uint64_t len, void *user)
{
	struct rec *r = user;

	r->v[0] = mode;
	r->v[1] = off;
	r->v[2] = len;
	return record(r, "fallocate", p, NULL);
}

static int rec_encoded_write(const char *p, const struct send_encoded_write *e,
			     void *user)
{
	struct rec *r = user;

	r->v[0] = e->offset;
	r->v[1] = e->unencoded_file_len;
	r->v[2] = e->unencoded_len;
	r->v[3] = e->unencoded_offset;
	r->v[4] = e->compression;
	r->v[5] = e->encryption;
	r->len = e->len;
	memcpy(r->data, e->data, e->len);
	return record(r, "encoded_write", p, NULL);
}

static int rec_enable_verity(const char *p, const struct send_verity *v,
			     void *user)
{
	struct rec *r = user;

	r->v[0] = v->algorithm;
	r->v[1] = v->block_size;
	r->len = v->salt_len;
	r->len2 = v->sig_len;
	memcpy(r->data, v->salt, v->salt_len);
	memcpy(r->data + v->salt_len, v->sig, v->sig_len);
	return record(r, "enable_verity", p, NULL);
}

static const struct send_stream_ops rec_ops = {
	.subvol = rec_subvol,
	.snapshot = rec_snapshot,
	.mkfile = rec_mkfile,
	.mkdir = rec_mkdir,
	.mknod = rec_mknod,
	.mkfifo = rec_mkfifo,
	.mksock = rec_mksock,
	.symlink = rec_symlink,
	.rename = rec_rename,
	.link = rec_link,
	.unlink = rec_unlink,
	.rmdir = rec_rmdir,
	.write = rec_write,
	.clone = rec_clone,
	.set_xattr = rec_set_xattr,
	.remove_xattr = rec_remove_xattr,
	.truncate = rec_truncate,
	.chmod = rec_chmod,
	.chown = rec_chown,
	.utimes = rec_utimes,
	.update_extent = rec_update_extent,
	.end = rec_end,
	.fallocate = rec_fallocate,
	.fileattr = rec_fileattr,
	.encoded_write = rec_encoded_write,
	.enable_verity = rec_enable_verity,
};

static struct rec rec;

static int setup(void **state)
{
	(void)state;
	memset(&rec, 0, sizeof(rec));
	return 0;
}

/* A stream header and a SUBVOL command, the start of most tests. */
static void start_stream(struct sb *b, uint32_t version)
{
	memset(b, 0, sizeof(*b));
	sb_header(b, version);
	sb_cmd(b, BTRFS_SEND_C_SUBVOL);
	sb_str(b, BTRFS_SEND_A_PATH, "sub");
	sb_attr(b, BTRFS_SEND_A_UUID, UUID_A, 16);
	sb_u64(b, BTRFS_SEND_A_CTRANSID, 7);
	sb_end_cmd(b);
}

struct run {
	struct send_stream *s;
	int fd;
};

static void run_open(struct run *r, const struct sb *b)
{
	r->fd = sb_fd(b);
	assert_true(r->fd >= 0);
	assert_int_equal(send_stream_open(&r->s, r->fd), 0);
}

static void run_close(struct run *r)
{
	send_stream_close(r->s);
	close(r->fd);
}

/* Parse everything; return the first error or the last event. */
static int parse_all(const struct sb *b, char *err, size_t errsize)
{
	struct run r;
	int ret;

	run_open(&r, b);
	do {
		ret = send_stream_next(r.s, &rec_ops, &rec);
	} while (ret == SEND_STREAM_CMD || ret == SEND_STREAM_END);
	if (err)
		snprintf(err, errsize, "%s", send_stream_error(r.s));
	run_close(&r);
	return ret;
}

/* The stream's second command, after SUBVOL, is parsed into rec. */
static void parse_second(struct sb *b)
{
	struct run r;

	sb_simple(b, BTRFS_SEND_C_END);
	run_open(&r, b);
	assert_int_equal(send_stream_next(r.s, &rec_ops, &rec), SEND_STREAM_CMD);
	assert_int_equal(send_stream_next(r.s, &rec_ops, &rec), SEND_STREAM_CMD);
	run_close(&r);
	sb_free(b);
}

static void test_subvol_decodes(void **state)
{
	struct sb b;
	struct run r;

	(void)state;
	start_stream(&b, 1);
	sb_simple(&b, BTRFS_SEND_C_END);
	run_open(&r, &b);
	assert_int_equal(send_stream_next(r.s, &rec_ops, &rec), SEND_STREAM_CMD);
	assert_string_equal(rec.cmd, "subvol");
	assert_string_equal(rec.path, "sub");
	assert_memory_equal(rec.uuid, UUID_A, 16);
	assert_int_equal(rec.v[0], 7);
	assert_int_equal(send_stream_version(r.s), 1);
	assert_int_equal(send_stream_next(r.s, &rec_ops, &rec), SEND_STREAM_END);
	assert_string_equal(rec.cmd, "end");
	assert_int_equal(send_stream_next(r.s, &rec_ops, &rec), SEND_STREAM_EOF);
	assert_int_equal(send_stream_cmd_count(r.s), 2);
	assert_int_equal(send_stream_offset(r.s), b.len);
	run_close(&r);
	sb_free(&b);
}

static void test_snapshot_decodes(void **state)
{
	struct sb b = { 0 };
	struct run r;

	(void)state;
	sb_header(&b, 1);
	sb_cmd(&b, BTRFS_SEND_C_SNAPSHOT);
	sb_str(&b, BTRFS_SEND_A_PATH, "snap");
	sb_attr(&b, BTRFS_SEND_A_UUID, UUID_A, 16);
	sb_u64(&b, BTRFS_SEND_A_CTRANSID, 9);
	sb_attr(&b, BTRFS_SEND_A_CLONE_UUID, UUID_B, 16);
	sb_u64(&b, BTRFS_SEND_A_CLONE_CTRANSID, 5);
	sb_end_cmd(&b);
	run_open(&r, &b);
	assert_int_equal(send_stream_next(r.s, &rec_ops, &rec), SEND_STREAM_CMD);
	assert_string_equal(rec.cmd, "snapshot");
	assert_string_equal(rec.path, "snap");
	assert_memory_equal(rec.uuid, UUID_A, 16);
	assert_memory_equal(rec.uuid2, UUID_B, 16);
	assert_int_equal(rec.v[0], 9);
	assert_int_equal(rec.v[1], 5);
	run_close(&r);
	sb_free(&b);
}

static void test_inode_creations_decode(void **state)
{
	static const struct {
		uint16_t cmd;
		const char *name;
	} cmds[] = {
		{ BTRFS_SEND_C_MKFILE, "mkfile" },
		{ BTRFS_SEND_C_MKDIR, "mkdir" },
		{ BTRFS_SEND_C_MKFIFO, "mkfifo" },
		{ BTRFS_SEND_C_MKSOCK, "mksock" },
	};
	struct sb b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		start_stream(&b, 1);
		sb_cmd(&b, cmds[i].cmd);
		sb_str(&b, BTRFS_SEND_A_PATH, "o257-7-0");
		sb_u64(&b, BTRFS_SEND_A_INO, 257);
		sb_end_cmd(&b);
		parse_second(&b);
		assert_string_equal(rec.cmd, cmds[i].name);
		assert_string_equal(rec.path, "o257-7-0");
	}
}

/* A path and integer attributes in, the same integers out in rec.v. */
struct int_attr {
	uint16_t type;
	uint8_t size;		/* 4 or 8 */
	uint64_t value;
};

static void test_path_and_integer_commands_decode(void **state)
{
	static const struct {
		uint32_t version;
		uint16_t cmd;
		const char *name;
		const char *path;
		struct int_attr attrs[3];
		unsigned int nr_attrs;
		uint64_t want[3];
		unsigned int nr_want;
	} cmds[] = {
		{ 1, BTRFS_SEND_C_UNLINK, "unlink", "a/file", { { 0 } }, 0,
		  { 0 }, 0 },
		{ 1, BTRFS_SEND_C_RMDIR, "rmdir", "a/dir", { { 0 } }, 0,
		  { 0 }, 0 },
		{ 1, BTRFS_SEND_C_MKNOD, "mknod", "dev",
		  { { BTRFS_SEND_A_INO, 8, 300 },
		    { BTRFS_SEND_A_MODE, 8, 020644 },
		    { BTRFS_SEND_A_RDEV, 8, 0x10305 } }, 3,
		  { 020644, 0x10305 }, 2 },
		{ 1, BTRFS_SEND_C_TRUNCATE, "truncate", "f",
		  { { BTRFS_SEND_A_SIZE, 8, 123456789 } }, 1,
		  { 123456789 }, 1 },
		{ 1, BTRFS_SEND_C_CHMOD, "chmod", "f",
		  { { BTRFS_SEND_A_MODE, 8, 04755 } }, 1, { 04755 }, 1 },
		{ 1, BTRFS_SEND_C_CHOWN, "chown", "f",
		  { { BTRFS_SEND_A_UID, 8, 1000 },
		    { BTRFS_SEND_A_GID, 8, 100 } }, 2, { 1000, 100 }, 2 },
		{ 1, BTRFS_SEND_C_UPDATE_EXTENT, "update_extent", "f",
		  { { BTRFS_SEND_A_FILE_OFFSET, 8, 65536 },
		    { BTRFS_SEND_A_SIZE, 8, 4096 } }, 2, { 65536, 4096 }, 2 },
		{ 2, BTRFS_SEND_C_FALLOCATE, "fallocate", "f",
		  { { BTRFS_SEND_A_FALLOCATE_MODE, 4, 3 },
		    { BTRFS_SEND_A_FILE_OFFSET, 8, 8192 },
		    { BTRFS_SEND_A_SIZE, 8, 4096 } }, 3, { 3, 8192, 4096 }, 3 },
		{ 2, BTRFS_SEND_C_FILEATTR, "fileattr", "f",
		  { { BTRFS_SEND_A_FILEATTR, 8, 0x10 } }, 1, { 0x10 }, 1 },
	};
	const struct int_attr *a;
	struct sb b;
	unsigned int j;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		start_stream(&b, cmds[i].version);
		sb_cmd(&b, cmds[i].cmd);
		sb_str(&b, BTRFS_SEND_A_PATH, cmds[i].path);
		for (j = 0; j < cmds[i].nr_attrs; j++) {
			a = &cmds[i].attrs[j];
			if (a->size == 4)
				sb_u32(&b, a->type, a->value);
			else
				sb_u64(&b, a->type, a->value);
		}
		sb_end_cmd(&b);
		parse_second(&b);
		assert_string_equal(rec.cmd, cmds[i].name);
		assert_string_equal(rec.path, cmds[i].path);
		for (j = 0; j < cmds[i].nr_want; j++)
			assert_int_equal(rec.v[j], cmds[i].want[j]);
	}
}

static void test_two_path_commands_decode(void **state)
{
	static const struct {
		uint16_t cmd;
		uint16_t attr2;
		const char *name;
		bool ino;
	} cmds[] = {
		{ BTRFS_SEND_C_SYMLINK, BTRFS_SEND_A_PATH_LINK, "symlink", true },
		{ BTRFS_SEND_C_RENAME, BTRFS_SEND_A_PATH_TO, "rename", false },
		{ BTRFS_SEND_C_LINK, BTRFS_SEND_A_PATH_LINK, "link", false },
	};
	struct sb b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		start_stream(&b, 1);
		sb_cmd(&b, cmds[i].cmd);
		sb_str(&b, BTRFS_SEND_A_PATH, "from path");
		sb_str(&b, cmds[i].attr2, "to/\xff path");
		if (cmds[i].ino)
			sb_u64(&b, BTRFS_SEND_A_INO, 1);
		sb_end_cmd(&b);
		parse_second(&b);
		assert_string_equal(rec.cmd, cmds[i].name);
		assert_string_equal(rec.path, "from path");
		assert_string_equal(rec.path2, "to/\xff path");
	}
}

static void test_xattr_commands_decode(void **state)
{
	static const unsigned char value[] = { 'v', 0, 1, 0xff };
	struct sb b;

	(void)state;
	start_stream(&b, 1);
	sb_cmd(&b, BTRFS_SEND_C_SET_XATTR);
	sb_str(&b, BTRFS_SEND_A_PATH, "f");
	sb_str(&b, BTRFS_SEND_A_XATTR_NAME, "user.x");
	sb_attr(&b, BTRFS_SEND_A_XATTR_DATA, value, sizeof(value));
	sb_end_cmd(&b);
	parse_second(&b);
	assert_string_equal(rec.cmd, "set_xattr");
	assert_string_equal(rec.path2, "user.x");
	assert_int_equal(rec.len, sizeof(value));
	assert_memory_equal(rec.data, value, sizeof(value));

	start_stream(&b, 1);
	sb_cmd(&b, BTRFS_SEND_C_REMOVE_XATTR);
	sb_str(&b, BTRFS_SEND_A_PATH, "f");
	sb_str(&b, BTRFS_SEND_A_XATTR_NAME, "user.gone");
	sb_end_cmd(&b);
	parse_second(&b);
	assert_string_equal(rec.cmd, "remove_xattr");
	assert_string_equal(rec.path2, "user.gone");
}

static void test_write_decodes_v1_and_v2_data(void **state)
{
	unsigned char data[5000];
	struct sb b;
	uint32_t v;

	(void)state;
	memset(data, 0xab, sizeof(data));
	for (v = 1; v <= 3; v++) {
		start_stream(&b, v);
		sb_cmd(&b, BTRFS_SEND_C_WRITE);
		sb_str(&b, BTRFS_SEND_A_PATH, "f");
		sb_u64(&b, BTRFS_SEND_A_FILE_OFFSET, 1ULL << 40);
		sb_attr(&b, BTRFS_SEND_A_DATA, data, sizeof(data));
		sb_end_cmd(&b);
		parse_second(&b);
		assert_string_equal(rec.cmd, "write");
		assert_int_equal(rec.v[0], 1ULL << 40);
		assert_int_equal(rec.len, sizeof(data));
		assert_memory_equal(rec.data, data, sizeof(data));
	}
}

/* v2 data runs to the command's end, beyond what a u16 length can say. */
static void test_v2_data_longer_than_64k(void **state)
{
	static unsigned char data[69000];
	struct sb b;

	(void)state;
	memset(data, 0x5a, sizeof(data));
	start_stream(&b, 2);
	sb_cmd(&b, BTRFS_SEND_C_WRITE);
	sb_str(&b, BTRFS_SEND_A_PATH, "f");
	sb_u64(&b, BTRFS_SEND_A_FILE_OFFSET, 0);
	sb_attr(&b, BTRFS_SEND_A_DATA, data, sizeof(data));
	sb_end_cmd(&b);
	parse_second(&b);
	assert_int_equal(rec.len, sizeof(data));
	assert_memory_equal(rec.data, data, sizeof(data));
}

static void test_clone_decodes(void **state)
{
	struct sb b;

	(void)state;
	start_stream(&b, 1);
	sb_cmd(&b, BTRFS_SEND_C_CLONE);
	sb_str(&b, BTRFS_SEND_A_PATH, "dst");
	sb_u64(&b, BTRFS_SEND_A_FILE_OFFSET, 4096);
	sb_u64(&b, BTRFS_SEND_A_CLONE_LEN, 8192);
	sb_attr(&b, BTRFS_SEND_A_CLONE_UUID, UUID_B, 16);
	sb_u64(&b, BTRFS_SEND_A_CLONE_CTRANSID, 11);
	sb_str(&b, BTRFS_SEND_A_CLONE_PATH, "src");
	sb_u64(&b, BTRFS_SEND_A_CLONE_OFFSET, 12288);
	sb_end_cmd(&b);
	parse_second(&b);
	assert_string_equal(rec.cmd, "clone");
	assert_string_equal(rec.path2, "src");
	assert_int_equal(rec.v[0], 4096);
	assert_int_equal(rec.v[1], 8192);
	assert_int_equal(rec.v[2], 11);
	assert_int_equal(rec.v[3], 12288);
	assert_memory_equal(rec.uuid, UUID_B, 16);
}

static void test_utimes_decodes(void **state)
{
	struct sb b;

	(void)state;
	start_stream(&b, 1);
	sb_cmd(&b, BTRFS_SEND_C_UTIMES);
	sb_str(&b, BTRFS_SEND_A_PATH, "f");
	sb_timespec(&b, BTRFS_SEND_A_ATIME, 1, 2);
	sb_timespec(&b, BTRFS_SEND_A_MTIME, 3, 4);
	sb_timespec(&b, BTRFS_SEND_A_CTIME, 5, 999999999);
	sb_end_cmd(&b);
	parse_second(&b);
	assert_string_equal(rec.cmd, "utimes");
	assert_int_equal(rec.ts[0].sec, 1);
	assert_int_equal(rec.ts[0].nsec, 2);
	assert_int_equal(rec.ts[1].sec, 3);
	assert_int_equal(rec.ts[2].nsec, 999999999);
}

static void test_encoded_write_decodes(void **state)
{
	static const unsigned char payload[] = "compressed bytes";
	struct sb b;

	(void)state;
	start_stream(&b, 2);
	sb_cmd(&b, BTRFS_SEND_C_ENCODED_WRITE);
	sb_str(&b, BTRFS_SEND_A_PATH, "f");
	sb_u64(&b, BTRFS_SEND_A_FILE_OFFSET, 0);
	sb_u64(&b, BTRFS_SEND_A_UNENCODED_FILE_LEN, 131072);
	sb_u64(&b, BTRFS_SEND_A_UNENCODED_LEN, 131072);
	sb_u64(&b, BTRFS_SEND_A_UNENCODED_OFFSET, 4096);
	sb_u32(&b, BTRFS_SEND_A_COMPRESSION, 2);
	sb_u32(&b, BTRFS_SEND_A_ENCRYPTION, 0);
	sb_attr(&b, BTRFS_SEND_A_DATA, payload, sizeof(payload));
	sb_end_cmd(&b);
	parse_second(&b);
	assert_string_equal(rec.cmd, "encoded_write");
	assert_int_equal(rec.v[1], 131072);
	assert_int_equal(rec.v[3], 4096);
	assert_int_equal(rec.v[4], 2);
	assert_int_equal(rec.len, sizeof(payload));
	assert_memory_equal(rec.data, payload, sizeof(payload));
}

/* COMPRESSION and ENCRYPTION default to 0 when absent. */
static void test_encoded_write_defaults(void **state)
{
	struct sb b;

	(void)state;
	rec.v[4] = rec.v[5] = 99;
	start_stream(&b, 2);
	sb_cmd(&b, BTRFS_SEND_C_ENCODED_WRITE);
	sb_str(&b, BTRFS_SEND_A_PATH, "f");
	sb_u64(&b, BTRFS_SEND_A_FILE_OFFSET, 0);
	sb_u64(&b, BTRFS_SEND_A_UNENCODED_FILE_LEN, 4096);
	sb_u64(&b, BTRFS_SEND_A_UNENCODED_LEN, 4096);
	sb_u64(&b, BTRFS_SEND_A_UNENCODED_OFFSET, 0);
	sb_attr(&b, BTRFS_SEND_A_DATA, "x", 1);
	sb_end_cmd(&b);
	parse_second(&b);
	assert_int_equal(rec.v[4], 0);
	assert_int_equal(rec.v[5], 0);
}

static void test_v3_enable_verity_decodes(void **state)
{
	struct sb b;
	uint8_t alg = 1;

	(void)state;
	start_stream(&b, 3);
	sb_cmd(&b, BTRFS_SEND_C_ENABLE_VERITY);
	sb_str(&b, BTRFS_SEND_A_PATH, "f");
	sb_attr(&b, BTRFS_SEND_A_VERITY_ALGORITHM, &alg, 1);
	sb_u32(&b, BTRFS_SEND_A_VERITY_BLOCK_SIZE, 4096);
	sb_attr(&b, BTRFS_SEND_A_VERITY_SALT_DATA, "salt", 4);
	sb_attr(&b, BTRFS_SEND_A_VERITY_SIG_DATA, "sg", 2);
	sb_end_cmd(&b);
	parse_second(&b);
	assert_string_equal(rec.cmd, "enable_verity");
	assert_int_equal(rec.v[0], 1);
	assert_int_equal(rec.v[1], 4096);
	assert_int_equal(rec.len, 4);
	assert_int_equal(rec.len2, 2);
	assert_memory_equal(rec.data, "saltsg", 6);
}

static void test_concatenated_streams_parse_as_one_input(void **state)
{
	struct sb b;
	struct run r;

	(void)state;
	start_stream(&b, 1);
	sb_simple(&b, BTRFS_SEND_C_END);
	sb_header(&b, 2);
	sb_cmd(&b, BTRFS_SEND_C_SUBVOL);
	sb_str(&b, BTRFS_SEND_A_PATH, "second");
	sb_attr(&b, BTRFS_SEND_A_UUID, UUID_B, 16);
	sb_u64(&b, BTRFS_SEND_A_CTRANSID, 8);
	sb_end_cmd(&b);
	sb_simple(&b, BTRFS_SEND_C_END);
	run_open(&r, &b);
	assert_int_equal(send_stream_next(r.s, &rec_ops, &rec), SEND_STREAM_CMD);
	assert_int_equal(send_stream_next(r.s, &rec_ops, &rec), SEND_STREAM_END);
	assert_int_equal(send_stream_next(r.s, &rec_ops, &rec), SEND_STREAM_CMD);
	assert_string_equal(rec.path, "second");
	assert_int_equal(send_stream_version(r.s), 2);
	assert_int_equal(send_stream_header_count(r.s), 2);
	assert_int_equal(send_stream_next(r.s, &rec_ops, &rec), SEND_STREAM_END);
	assert_int_equal(send_stream_next(r.s, &rec_ops, &rec), SEND_STREAM_EOF);
	run_close(&r);
	sb_free(&b);
}

/* Commands straddle the read buffer's end many times over. */
static void test_many_commands_across_buffer_refills(void **state)
{
	static unsigned char data[60000];
	struct sb b;
	struct run r;
	int i, ret, writes = 0;

	(void)state;
	start_stream(&b, 1);
	for (i = 0; i < 100; i++) {
		memset(data, i, sizeof(data));
		sb_cmd(&b, BTRFS_SEND_C_WRITE);
		sb_str(&b, BTRFS_SEND_A_PATH, "big");
		sb_u64(&b, BTRFS_SEND_A_FILE_OFFSET, (uint64_t)i * sizeof(data));
		sb_attr(&b, BTRFS_SEND_A_DATA, data, sizeof(data) - i);
		sb_end_cmd(&b);
	}
	sb_simple(&b, BTRFS_SEND_C_END);
	run_open(&r, &b);
	while ((ret = send_stream_next(r.s, &rec_ops, &rec)) == SEND_STREAM_CMD) {
		if (strcmp(rec.cmd, "write"))
			continue;
		assert_int_equal(rec.len, sizeof(data) - writes);
		assert_int_equal(rec.data[0], writes);
		assert_int_equal(rec.data[rec.len - 1], writes);
		writes++;
	}
	assert_int_equal(ret, SEND_STREAM_END);
	assert_int_equal(writes, 100);
	run_close(&r);
	sb_free(&b);
}

/* A callback's error is reported as such and the next command is read. */
static void test_callback_error_keeps_stream_in_sync(void **state)
{
	struct sb b;
	struct run r;

	(void)state;
	start_stream(&b, 1);
	sb_cmd(&b, BTRFS_SEND_C_UNLINK);
	sb_str(&b, BTRFS_SEND_A_PATH, "x");
	sb_end_cmd(&b);
	sb_simple(&b, BTRFS_SEND_C_END);
	run_open(&r, &b);
	rec.fail_with = -EACCES;
	assert_int_equal(send_stream_next(r.s, &rec_ops, &rec), -EACCES);
	assert_true(send_stream_failed_in_callback(r.s));
	assert_int_equal(send_stream_next(r.s, &rec_ops, &rec), -EACCES);
	assert_true(send_stream_failed_in_callback(r.s));
	assert_non_null(strstr(send_stream_error(r.s), "unlink"));
	rec.fail_with = 0;
	assert_int_equal(send_stream_next(r.s, &rec_ops, &rec), SEND_STREAM_END);
	run_close(&r);
	sb_free(&b);
}

static void test_missing_slot_does_nothing(void **state)
{
	struct send_stream_ops ops = rec_ops;
	struct sb b;
	struct run r;

	(void)state;
	ops.mkdir = NULL;
	start_stream(&b, 1);
	sb_cmd(&b, BTRFS_SEND_C_MKDIR);
	sb_str(&b, BTRFS_SEND_A_PATH, "d");
	sb_u64(&b, BTRFS_SEND_A_INO, 258);
	sb_end_cmd(&b);
	run_open(&r, &b);
	assert_int_equal(send_stream_next(r.s, &ops, &rec), SEND_STREAM_CMD);
	assert_int_equal(send_stream_next(r.s, &ops, &rec), SEND_STREAM_CMD);
	assert_int_equal(rec.calls, 1);
	assert_int_equal(send_stream_cmd_type(r.s), BTRFS_SEND_C_MKDIR);
	run_close(&r);
	sb_free(&b);
}

/* Malformed input: each case must fail with its own message. */
static void expect_error(struct sb *b, const char *message)
{
	char err[1024];
	int ret;

	ret = parse_all(b, err, sizeof(err));
	assert_true(ret < 0);
	if (!strstr(err, message))
		fail_msg("error \"%s\" does not contain \"%s\"", err, message);
	sb_free(b);
}

static void test_empty_input_is_eof(void **state)
{
	struct sb b = { 0 };

	(void)state;
	assert_int_equal(parse_all(&b, NULL, 0), SEND_STREAM_EOF);
}

static void test_bad_magic(void **state)
{
	struct sb b = { 0 };

	(void)state;
	sb_put(&b, "btrfs-strea\0\0\1\0\0\0", 17);
	expect_error(&b, "bad magic");
}

static void test_unknown_versions(void **state)
{
	static const struct {
		uint32_t version;
		const char *message;
	} cases[] = {
		{ 0, "unsupported stream version 0" },
		{ 4, "unsupported stream version 4" },
	};
	struct sb b = { 0 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sb_header(&b, cases[i].version);
		expect_error(&b, cases[i].message);
	}
}

static void test_truncated_stream_header(void **state)
{
	struct sb b = { 0 };

	(void)state;
	sb_put(&b, "btrfs-stream\0\1", 14);
	expect_error(&b, "truncated stream header");
}

static void test_truncated_command_header(void **state)
{
	struct sb b;

	(void)state;
	start_stream(&b, 1);
	sb_put(&b, "\0\0\0\0\x15", 5);
	expect_error(&b, "truncated command header");
}

static void test_truncated_payload(void **state)
{
	struct sb b;

	(void)state;
	start_stream(&b, 1);
	b.len -= 3;
	expect_error(&b, "truncated command");
}

static void test_missing_end_command(void **state)
{
	struct sb b;

	(void)state;
	start_stream(&b, 1);
	expect_error(&b, "ends before the END command");
}

static void test_bad_crc(void **state)
{
	struct sb b;

	(void)state;
	start_stream(&b, 1);
	b.buf[b.len - 1] ^= 1;
	expect_error(&b, "checksum mismatch");
}

static void test_unknown_command(void **state)
{
	static const struct {
		uint16_t cmd;
		const char *message;
	} cases[] = {
		{ 99, "unknown command type 99" },
		{ 0, "unknown command type 0" },
	};
	struct sb b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		start_stream(&b, 1);
		sb_simple(&b, cases[i].cmd);
		expect_error(&b, cases[i].message);
	}
}

static void test_attribute_past_command_end(void **state)
{
	struct sb b;

	(void)state;
	start_stream(&b, 1);
	sb_cmd(&b, BTRFS_SEND_C_UNLINK);
	sb_le16(&b, BTRFS_SEND_A_PATH);
	sb_le16(&b, 10);
	sb_put(&b, "abc", 3);
	sb_end_cmd(&b);
	expect_error(&b, "runs past the end of the command");
}

static void test_truncated_attribute_header(void **state)
{
	struct sb b;

	(void)state;
	start_stream(&b, 1);
	sb_cmd(&b, BTRFS_SEND_C_UNLINK);
	sb_str(&b, BTRFS_SEND_A_PATH, "f");
	sb_put(&b, "\x0f", 1);
	sb_end_cmd(&b);
	expect_error(&b, "truncated attribute header");
}

/* The other wrong sizes are in test_malformed_command_refused. */
static void test_wrong_uuid_size(void **state)
{
	struct sb b = { 0 };

	(void)state;
	sb_header(&b, 1);
	sb_cmd(&b, BTRFS_SEND_C_SUBVOL);
	sb_str(&b, BTRFS_SEND_A_PATH, "s");
	sb_attr(&b, BTRFS_SEND_A_UUID, UUID_A, 15);
	sb_end_cmd(&b);
	expect_error(&b, "attribute UUID: length 15, expected 16");
}

/* One command after SUBVOL, its attributes as given: each is refused. */
static void test_malformed_command_refused(void **state)
{
	static const struct {
		uint32_t version;
		uint16_t cmd;
		struct {
			uint16_t type;
			uint16_t len;
			const char *data;
		} attrs[2];
		unsigned int nr_attrs;
		const char *message;
	} cases[] = {
		{ 1, BTRFS_SEND_C_FILEATTR,
		  { { BTRFS_SEND_A_PATH, 1, "f" } }, 1,
		  "command of protocol v2 in a v1 stream" },
		{ 3, BTRFS_SEND_C_UNLINK,
		  { { BTRFS_SEND_A_PATH, 1, "f" },
		    { 36, 8, "\1\0\0\0\0\0\0\0" } }, 2,
		  "unknown attribute type 36" },
		{ 1, BTRFS_SEND_C_UNLINK,
		  { { BTRFS_SEND_A_PATH, 1, "f" },
		    { BTRFS_SEND_A_COMPRESSION, 4, "\1\0\0\0" } }, 2,
		  "attribute of protocol v2 in a v1 stream" },
		{ 1, BTRFS_SEND_C_TRUNCATE,
		  { { BTRFS_SEND_A_PATH, 1, "f" },
		    { BTRFS_SEND_A_SIZE, 4, "1234" } }, 2,
		  "attribute SIZE: length 4, expected 8" },
		{ 1, BTRFS_SEND_C_UTIMES,
		  { { BTRFS_SEND_A_PATH, 1, "f" },
		    { BTRFS_SEND_A_ATIME, 8, "\1\0\0\0\0\0\0\0" } }, 2,
		  "attribute ATIME: length 8, expected 12" },
		{ 1, BTRFS_SEND_C_WRITE,
		  { { BTRFS_SEND_A_PATH, 1, "f" },
		    { BTRFS_SEND_A_DATA, 1, "x" } }, 2,
		  "attribute FILE_OFFSET: required attribute missing" },
		{ 1, BTRFS_SEND_C_UNLINK,
		  { { BTRFS_SEND_A_PATH, 1, "a" },
		    { BTRFS_SEND_A_PATH, 1, "b" } }, 2,
		  "attribute PATH: attribute given twice" },
		{ 1, BTRFS_SEND_C_UNLINK,
		  { { BTRFS_SEND_A_PATH, 3, "a\0b" } }, 1,
		  "string contains a NUL byte" },
	};
	struct sb b;
	unsigned int j;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		start_stream(&b, cases[i].version);
		sb_cmd(&b, cases[i].cmd);
		for (j = 0; j < cases[i].nr_attrs; j++)
			sb_attr(&b, cases[i].attrs[j].type,
				cases[i].attrs[j].data, cases[i].attrs[j].len);
		sb_end_cmd(&b);
		expect_error(&b, cases[i].message);
	}
}

static void test_command_longer_than_v1_maximum(void **state)
{
	struct sb b;

	(void)state;
	start_stream(&b, 1);
	sb_le32(&b, 65536);
	sb_le16(&b, BTRFS_SEND_C_WRITE);
	sb_le32(&b, 0);
	expect_error(&b, "exceeds the protocol v1 maximum");
}

static void test_path_longer_than_path_max(void **state)
{
	static char path[PATH_MAX + 1];
	struct sb b;

	(void)state;
	memset(path, 'p', sizeof(path) - 1);
	start_stream(&b, 1);
	sb_cmd(&b, BTRFS_SEND_C_UNLINK);
	sb_str(&b, BTRFS_SEND_A_PATH, path);
	sb_end_cmd(&b);
	expect_error(&b, "longer than PATH_MAX");
}

static void test_commands_after_end_without_header(void **state)
{
	struct sb b;

	(void)state;
	start_stream(&b, 1);
	sb_simple(&b, BTRFS_SEND_C_END);
	sb_cmd(&b, BTRFS_SEND_C_UNLINK);
	sb_str(&b, BTRFS_SEND_A_PATH, "a");
	sb_end_cmd(&b);
	expect_error(&b, "not a new stream header");
}

static void test_header_in_place_of_command(void **state)
{
	struct sb b;

	(void)state;
	start_stream(&b, 1);
	sb_header(&b, 1);
	expect_error(&b, "a stream header where a command was expected");
}

static void test_error_names_offset_and_command(void **state)
{
	char err[1024];
	char want[128];
	struct sb b;
	size_t offset;

	(void)state;
	start_stream(&b, 1);
	offset = b.len;
	sb_cmd(&b, BTRFS_SEND_C_CHMOD);
	sb_str(&b, BTRFS_SEND_A_PATH, "f");
	sb_end_cmd(&b);
	assert_int_equal(parse_all(&b, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want),
		 "stream offset %zu, command 2 (chmod), attribute MODE", offset);
	if (!strstr(err, want))
		fail_msg("\"%s\" lacks \"%s\"", err, want);
	sb_free(&b);
}

/*
 * Streams that restart: a stopped sender makes the kernel send the
 * subvolume's stream again after what it had written (btrfs-progs issue
 * #719).  A subvolume's stream is built with its command boundaries noted.
 */
struct built {
	struct sb b;
	size_t head_end;	/* end of its first command */
};

static void build_subvol(struct built *o, uint32_t version, bool header,
			 const uint8_t *uuid, bool end, size_t data_len)
{
	static unsigned char data[100000];
	struct sb *b = &o->b;

	memset(b, 0, sizeof(*b));
	b->version = version;
	if (header)
		sb_header(b, version);
	sb_cmd(b, BTRFS_SEND_C_SUBVOL);
	sb_str(b, BTRFS_SEND_A_PATH, header ? "first" : "second");
	sb_attr(b, BTRFS_SEND_A_UUID, uuid, 16);
	sb_u64(b, BTRFS_SEND_A_CTRANSID, 7);
	sb_end_cmd(b);
	o->head_end = b->len;
	sb_cmd(b, BTRFS_SEND_C_MKFILE);
	sb_str(b, BTRFS_SEND_A_PATH, "f");
	sb_u64(b, BTRFS_SEND_A_INO, 257);
	sb_end_cmd(b);
	memset(data, 0x5a, data_len);
	sb_cmd(b, BTRFS_SEND_C_WRITE);
	sb_str(b, BTRFS_SEND_A_PATH, "f");
	sb_u64(b, BTRFS_SEND_A_FILE_OFFSET, 0);
	sb_attr(b, BTRFS_SEND_A_DATA, data, data_len);
	sb_end_cmd(b);
	sb_cmd(b, BTRFS_SEND_C_CHMOD);
	sb_str(b, BTRFS_SEND_A_PATH, "f");
	sb_u64(b, BTRFS_SEND_A_MODE, 0644);
	sb_end_cmd(b);
	sb_cmd(b, BTRFS_SEND_C_RENAME);
	sb_str(b, BTRFS_SEND_A_PATH, "f");
	sb_str(b, BTRFS_SEND_A_PATH_TO, "g");
	sb_end_cmd(b);
	if (end)
		sb_simple(b, BTRFS_SEND_C_END);
}

/* Everything one parse of an input dispatched, and how it ended. */
struct trace {
	char log[4096];
	int restarts;
	struct send_stream_restart ev[4];
	struct send_stream_pos pos;
	uint64_t cmds;
	char err[1024];
	int ret;
};

static void on_restart(const struct send_stream_restart *r, void *user)
{
	struct trace *t = user;

	if (t->restarts < 4)
		t->ev[t->restarts] = *r;
	t->restarts++;
}

static void log_cmd(struct trace *t)
{
	size_t n = strlen(t->log);

	snprintf(t->log + n, sizeof(t->log) - n, "%s %s %s %llu %zu\n",
		 rec.cmd, rec.path, rec.path2, (unsigned long long)rec.v[0],
		 rec.len);
}

static void trace_parse(const struct sb *b, struct trace *t)
{
	struct run r;

	memset(t, 0, sizeof(*t));
	run_open(&r, b);
	send_stream_set_restart_hook(r.s, on_restart, t);
	for (;;) {
		rec.calls = 0;
		rec.len = 0;
		rec.v[0] = 0;
		t->ret = send_stream_next(r.s, &rec_ops, &rec);
		if (t->ret != SEND_STREAM_CMD && t->ret != SEND_STREAM_END)
			break;
		assert_int_equal(rec.calls, 1);
		log_cmd(t);
	}
	snprintf(t->err, sizeof(t->err), "%s", send_stream_error(r.s));
	send_stream_position(r.s, &t->pos);
	t->cmds = send_stream_cmd_count(r.s);
	run_close(&r);
}

/* The same commands, once each, and the same position at the end. */
static void assert_same_as_clean(const struct trace *t, const struct trace *c)
{
	if (t->ret != c->ret)
		fail_msg("ret %d, clean %d: %s", t->ret, c->ret, t->err);
	assert_string_equal(t->log, c->log);
	assert_int_equal(t->cmds, c->cmds);
	assert_int_equal(t->pos.offset, c->pos.offset);
	assert_int_equal(t->pos.cmds, c->pos.cmds);
	assert_int_equal(t->pos.chain, c->pos.chain);
	assert_int_equal(t->pos.last_crc, c->pos.last_crc);
	assert_int_equal(t->pos.cmds_seen, c->pos.cmds_seen);
	assert_int_equal(t->pos.ended, c->pos.ended);
}

/* in: pre, then the first cut bytes of each stream in cuts, then s whole. */
static void restarted(struct sb *in, const struct sb *pre, const struct sb *s,
		      const size_t *cuts, int n)
{
	int i;

	memset(in, 0, sizeof(*in));
	if (pre)
		sb_put(in, pre->buf, pre->len);
	for (i = 0; i < n; i++)
		sb_put(in, s->buf, cuts[i]);
	sb_put(in, s->buf, s->len);
}

static void test_restart_repaired_at_every_cut(void **state)
{
	struct trace clean, t;
	struct built s;
	struct sb in;
	size_t k;

	(void)state;
	build_subvol(&s, 1, true, UUID_A, true, 3000);
	trace_parse(&s.b, &clean);
	assert_int_equal(clean.ret, SEND_STREAM_EOF);
	/* Inside headers, inside payloads, at boundaries, before END. */
	for (k = s.head_end; k < s.b.len; k++) {
		restarted(&in, NULL, &s.b, &k, 1);
		trace_parse(&in, &t);
		assert_same_as_clean(&t, &clean);
		assert_int_equal(t.restarts, 1);
		assert_int_equal(t.ev[0].offset, k);
		assert_int_equal(t.ev[0].skipped, k);
		sb_free(&in);
	}
	sb_free(&s.b);
}

/* The second subvolume of "send -e": no stream header, no END before. */
static void test_restart_of_headerless_stream_repaired(void **state)
{
	struct trace clean, t;
	struct built a, s;
	struct sb in;
	size_t k;

	(void)state;
	build_subvol(&a, 1, true, UUID_A, false, 3000);
	build_subvol(&s, 1, false, UUID_B, true, 3000);
	restarted(&in, &a.b, &s.b, NULL, 0);
	trace_parse(&in, &clean);
	sb_free(&in);
	assert_int_equal(clean.ret, SEND_STREAM_EOF);
	for (k = s.head_end; k < s.b.len; k++) {
		restarted(&in, &a.b, &s.b, &k, 1);
		trace_parse(&in, &t);
		assert_same_as_clean(&t, &clean);
		assert_int_equal(t.restarts, 1);
		assert_int_equal(t.ev[0].offset, a.b.len + k);
		assert_int_equal(t.ev[0].skipped, k);
		sb_free(&in);
	}
	sb_free(&a.b);
	sb_free(&s.b);
}

/* A v2 stream whose command is longer than the v1 maximum. */
static void test_restart_inside_long_v2_command_repaired(void **state)
{
	size_t cuts[] = { 0 };
	struct trace clean, t;
	struct built s;
	struct sb in;

	(void)state;
	build_subvol(&s, 2, true, UUID_A, true, 90000);
	trace_parse(&s.b, &clean);
	cuts[0] = s.b.len - 45000;
	restarted(&in, NULL, &s.b, cuts, 1);
	trace_parse(&in, &t);
	assert_same_as_clean(&t, &clean);
	assert_int_equal(t.restarts, 1);
	sb_free(&in);
	sb_free(&s.b);
}

/* Stopped again while the kernel sends the repeat, before or past the cut. */
static void test_second_restart_repaired(void **state)
{
	struct trace clean, t;
	struct built s, a;
	size_t cuts[2];
	struct sb in;
	bool headerless;

	(void)state;
	for (headerless = false; ; headerless = true) {
		build_subvol(&a, 1, true, UUID_A, false, 3000);
		build_subvol(&s, 1, !headerless, UUID_B, true, 3000);
		restarted(&in, headerless ? &a.b : NULL, &s.b, NULL, 0);
		trace_parse(&in, &clean);
		sb_free(&in);
		for (cuts[0] = s.head_end; cuts[0] < s.b.len; cuts[0] += 97) {
			for (cuts[1] = s.head_end; cuts[1] < s.b.len;
			     cuts[1] += 89) {
				restarted(&in, headerless ? &a.b : NULL, &s.b,
					  cuts, 2);
				trace_parse(&in, &t);
				assert_same_as_clean(&t, &clean);
				assert_int_equal(t.restarts, 2);
				assert_int_equal(t.ev[0].skipped +
						 t.ev[1].skipped,
						 cuts[0] + cuts[1]);
				sb_free(&in);
			}
		}
		sb_free(&a.b);
		sb_free(&s.b);
		if (headerless)
			break;
	}
}

/* What the callbacks saw before the error: the stream up to the cut. */
static void assert_refused(const struct trace *t, const char *msg)
{
	assert_true(t->ret < 0);
	assert_int_equal(t->restarts, 0);
	if (!strstr(t->err, msg))
		fail_msg("error \"%s\" does not contain \"%s\"", t->err, msg);
}

static void test_restart_that_differs_is_refused(void **state)
{
	struct built s, other;
	struct trace t;
	struct sb in;
	size_t cut;
	char want[256];

	(void)state;
	build_subvol(&s, 1, true, UUID_A, true, 3000);
	build_subvol(&other, 1, true, UUID_A, true, 3000);
	/* The repeat writes other data (its CRC is right). */
	other.b.buf[other.b.len - 200] ^= 1;
	cut = s.b.len - 30;
	memset(&in, 0, sizeof(in));
	sb_put(&in, s.b.buf, cut);
	sb_put(&in, other.b.buf, other.b.len);
	trace_parse(&in, &t);
	snprintf(want, sizeof(want),
		 "the stream restarts at offset %zu (a stopped sender, btrfs-progs issue #719), and the repeated part",
		 cut);
	assert_refused(&t, want);
	sb_free(&in);
	sb_free(&s.b);
	sb_free(&other.b);
}

static void test_restart_differing_in_a_crc_is_refused(void **state)
{
	struct trace t, upto;
	struct built s, other;
	struct sb in;
	size_t cut, i;

	(void)state;
	build_subvol(&s, 1, true, UUID_A, true, 3000);
	build_subvol(&other, 1, true, UUID_A, true, 3000);
	/* Another mode for chmod, and its CRC fixed, as a sender would. */
	for (i = s.head_end; i < other.b.len; i++)
		if (!memcmp(other.b.buf + i, "\x05\0\x08\0\xa4\x01", 6))
			break;
	assert_true(i < other.b.len);
	other.b.buf[i + 4] = 0xed;
	other.b.cmd_start = i - 4 - 1 - BTRFS_SEND_CMD_HEADER_LEN;
	other.b.len = i + 12;
	sb_end_cmd(&other.b);
	other.b.len = s.b.len;
	cut = s.b.len - 5;
	memset(&in, 0, sizeof(in));
	sb_put(&in, s.b.buf, cut);
	sb_put(&in, other.b.buf, other.b.len);
	trace_parse(&in, &t);
	assert_refused(&t, "and the repeated part differs from what was applied before offset");
	/* Nothing of the repeat was dispatched. */
	sb_free(&in);
	sb_put(&in, s.b.buf, cut);
	trace_parse(&in, &upto);
	assert_string_equal(t.log, upto.log);
	sb_free(&in);
	sb_free(&s.b);
	sb_free(&other.b);
}

static void test_restart_cut_short_is_refused(void **state)
{
	size_t cuts[] = { 0, 0 };
	struct built s;
	struct trace t;
	struct sb in;

	(void)state;
	build_subvol(&s, 1, true, UUID_A, true, 3000);
	cuts[0] = s.b.len - 20;
	cuts[1] = s.b.len - 300;
	memset(&in, 0, sizeof(in));
	sb_put(&in, s.b.buf, cuts[0]);
	sb_put(&in, s.b.buf, cuts[1]);
	trace_parse(&in, &t);
	assert_refused(&t, "the input ends at offset");
	sb_free(&in);
	sb_free(&s.b);
}

/* Without a repeat of the stream's start, a bad CRC is what it was. */
static void test_bad_crc_without_restart_unchanged(void **state)
{
	char want[128];
	struct built s;
	struct trace t;

	(void)state;
	build_subvol(&s, 1, true, UUID_A, true, 3000);
	s.b.buf[s.head_end + 12] ^= 1;
	trace_parse(&s.b, &t);
	snprintf(want, sizeof(want),
		 "stream offset %zu, command 2 (mkfile): checksum mismatch",
		 s.head_end);
	assert_refused(&t, want);
	sb_free(&s.b);
}

/*
 * A stream header alone does not mark a restart: every stream of a
 * concatenated input starts with the same one.
 */
static void test_broken_first_command_is_not_a_restart(void **state)
{
	struct built a, s;
	struct trace t;
	struct sb in;

	(void)state;
	build_subvol(&a, 1, true, UUID_A, true, 3000);
	build_subvol(&s, 1, true, UUID_B, true, 3000);
	a.b.buf[BTRFS_SEND_STREAM_HEADER_LEN] ^= 1;
	restarted(&in, &a.b, &s.b, NULL, 0);
	trace_parse(&in, &t);
	assert_refused(&t,
		       "stream offset 17, command 1 (subvol): checksum mismatch");
	sb_free(&in);
	sb_free(&a.b);
	sb_free(&s.b);
}

/* A reader that gives at most `chunk` bytes a call, from a memfd. */
struct chunked {
	int fd;
	size_t chunk;
};

static ssize_t chunked_read(void *user, void *buf, size_t len)
{
	struct chunked *c = user;

	return read(c->fd, buf, len < c->chunk ? len : c->chunk);
}

/* trace_parse() with the input read 100 bytes at a time. */
static void trace_parse_chunked(const struct sb *b, struct trace *t)
{
	struct chunked c = { sb_fd(b), 100 };
	struct send_stream *s;

	memset(t, 0, sizeof(*t));
	assert_int_equal(send_stream_open(&s, -1), 0);
	send_stream_set_reader(s, chunked_read, &c);
	send_stream_set_restart_hook(s, on_restart, t);
	for (;;) {
		rec.calls = 0;
		rec.len = 0;
		rec.v[0] = 0;
		t->ret = send_stream_next(s, &rec_ops, &rec);
		if (t->ret != SEND_STREAM_CMD && t->ret != SEND_STREAM_END)
			break;
		log_cmd(t);
	}
	snprintf(t->err, sizeof(t->err), "%s", send_stream_error(s));
	send_stream_position(s, &t->pos);
	t->cmds = send_stream_cmd_count(s);
	send_stream_close(s);
	close(c.fd);
}

/* The repeat is found by reading ahead of what the parser has. */
static void test_restart_found_by_reading_ahead(void **state)
{
	struct trace clean, t;
	struct built s;
	struct sb in;
	size_t k;

	(void)state;
	build_subvol(&s, 1, true, UUID_A, true, 3000);
	trace_parse(&s.b, &clean);
	for (k = s.head_end; k < s.b.len; k += 37) {
		restarted(&in, NULL, &s.b, &k, 1);
		trace_parse_chunked(&in, &t);
		assert_same_as_clean(&t, &clean);
		assert_int_equal(t.restarts, 1);
		assert_int_equal(t.ev[0].offset, k);
		sb_free(&in);
	}
	sb_free(&s.b);
}

/* The input ends just after the repeated stream header and SUBVOL. */
static void test_restart_ending_with_its_head_is_refused(void **state)
{
	struct built s;
	struct trace t;
	struct sb in = { 0 };
	size_t cut;

	(void)state;
	build_subvol(&s, 1, true, UUID_A, true, 3000);
	/* At the boundary after MKFILE: a stream header where a command is. */
	cut = s.head_end + 27;
	sb_put(&in, s.b.buf, cut);
	sb_put(&in, s.b.buf, s.head_end);
	trace_parse(&in, &t);
	assert_refused(&t, "the input ends at offset");
	sb_free(&in);
	sb_free(&s.b);
}

/*
 * After send_stream_resume_at() the stream's start is not in the input: a
 * broken command is not taken for a restart.
 */
static void test_broken_command_after_resume_is_not_a_restart(void **state)
{
	struct send_stream_pos pos;
	struct built s;
	struct trace t;
	struct run r;
	char want[128];

	(void)state;
	build_subvol(&s, 1, true, UUID_A, true, 3000);
	trace_parse(&s.b, &t);
	memset(&r, 0, sizeof(r));
	/* Where the stream stands after SUBVOL: the rest, a CRC spoiled. */
	run_open(&r, &s.b);
	assert_int_equal(send_stream_next(r.s, &rec_ops, &rec), SEND_STREAM_CMD);
	send_stream_position(r.s, &pos);
	run_close(&r);
	s.b.buf[s.head_end + 12] ^= 1;
	memmove(s.b.buf, s.b.buf + s.head_end, s.b.len - s.head_end);
	s.b.len -= s.head_end;
	run_open(&r, &s.b);
	send_stream_resume_at(r.s, &pos);
	assert_int_equal(send_stream_next(r.s, &rec_ops, &rec), -EBADMSG);
	snprintf(want, sizeof(want),
		 "stream offset %zu, command 2 (mkfile): checksum mismatch",
		 s.head_end);
	if (!strstr(send_stream_error(r.s), want))
		fail_msg("\"%s\" lacks \"%s\"", send_stream_error(r.s), want);
	run_close(&r);
	sb_free(&s.b);
}

/*
 * A header-less subvolume whose SUBVOL is longer than the part of it kept
 * to recognise it (512 bytes), repeated only in part: refused, and the
 * same cut repeat is not taken for a further restart.
 */
static void test_restart_cut_inside_a_long_head_is_refused(void **state)
{
	static char path[700];
	struct built a;
	struct sb s = { 0 }, in = { 0 };
	struct trace t;
	size_t subvol_end;

	(void)state;
	memset(path, 'p', sizeof(path) - 1);
	build_subvol(&a, 1, true, UUID_A, false, 3000);
	sb_cmd(&s, BTRFS_SEND_C_SUBVOL);
	sb_str(&s, BTRFS_SEND_A_PATH, path);
	sb_attr(&s, BTRFS_SEND_A_UUID, UUID_B, 16);
	sb_u64(&s, BTRFS_SEND_A_CTRANSID, 9);
	sb_end_cmd(&s);
	subvol_end = s.len;
	sb_cmd(&s, BTRFS_SEND_C_MKFILE);
	sb_str(&s, BTRFS_SEND_A_PATH, "f");
	sb_u64(&s, BTRFS_SEND_A_INO, 257);
	sb_end_cmd(&s);
	sb_simple(&s, BTRFS_SEND_C_END);
	sb_put(&in, a.b.buf, a.b.len);
	sb_put(&in, s.buf, subvol_end + 10);
	sb_put(&in, s.buf, 600);
	trace_parse(&in, &t);
	assert_refused(&t, "the input ends at offset");
	sb_free(&in);
	sb_free(&s);
	sb_free(&a.b);
}

/* A reader of 100 bytes a call that fails with EIO past `limit`. */
struct failing {
	int fd;
	size_t given, limit;
};

static ssize_t failing_read(void *user, void *buf, size_t len)
{
	struct failing *f = user;
	ssize_t n;

	if (f->given >= f->limit) {
		errno = EIO;
		return -1;
	}
	n = read(f->fd, buf, len < 100 ? len : 100);
	if (n > 0)
		f->given += n;
	return n;
}

/* A read error inside the repeat is a read error, not a broken repeat. */
static void test_read_error_in_a_repeat_stays_a_read_error(void **state)
{
	struct failing f = { .limit = 0 };
	struct send_stream *s;
	struct built b;
	struct sb in;
	size_t cut;
	int ret;

	(void)state;
	build_subvol(&b, 1, true, UUID_A, true, 3000);
	cut = b.b.len - 30;
	restarted(&in, NULL, &b.b, &cut, 1);
	f.fd = sb_fd(&in);
	/* The repeat's head is read, its third command is not. */
	f.limit = cut + b.head_end + 100;
	assert_int_equal(send_stream_open(&s, -1), 0);
	send_stream_set_reader(s, failing_read, &f);
	while ((ret = send_stream_next(s, &rec_ops, &rec)) == SEND_STREAM_CMD)
		;
	assert_int_equal(ret, -EIO);
	if (strncmp(send_stream_error(s), "read error at stream offset ", 28))
		fail_msg("error \"%s\"", send_stream_error(s));
	send_stream_close(s);
	close(f.fd);
	sb_free(&in);
	sb_free(&b.b);
}

/* A SUBVOL inside the repeat, before what was applied: refused there. */
static void test_subvol_inside_a_repeat_is_refused(void **state)
{
	struct built s, other;
	struct trace t;
	struct sb in = { 0 };
	size_t cut;

	(void)state;
	build_subvol(&s, 1, true, UUID_A, true, 3000);
	build_subvol(&other, 1, false, UUID_B, true, 3000);
	cut = s.b.len - 30;
	sb_put(&in, s.b.buf, cut);
	sb_put(&in, s.b.buf, s.head_end);
	sb_put(&in, other.b.buf, other.head_end);
	trace_parse(&in, &t);
	assert_refused(&t, "and the repeated part differs from what was applied before offset");
	sb_free(&in);
	sb_free(&s.b);
	sb_free(&other.b);
}

/* A repeat whose commands end elsewhere than the applied ones. */
static void test_repeat_without_the_boundary_is_refused(void **state)
{
	struct built s;
	struct trace t;
	struct sb other = { 0 }, in = { 0 };
	size_t cut;

	(void)state;
	build_subvol(&s, 1, true, UUID_A, true, 3000);
	sb_put(&other, s.b.buf, s.head_end);
	sb_cmd(&other, BTRFS_SEND_C_MKFILE);
	sb_str(&other, BTRFS_SEND_A_PATH, "ff");
	sb_u64(&other, BTRFS_SEND_A_INO, 257);
	sb_end_cmd(&other);
	sb_put(&other, s.b.buf + s.head_end + 27, s.b.len - s.head_end - 27);
	/* Cut at the boundary after MKFILE "f". */
	cut = s.head_end + 27;
	sb_put(&in, s.b.buf, cut);
	sb_put(&in, other.buf, other.len);
	trace_parse(&in, &t);
	assert_refused(&t, "(it has no command boundary there)");
	sb_free(&in);
	sb_free(&other);
	sb_free(&s.b);
}

/* The error of a stream whose second command is cmd, as built by add. */
static void error_of_command(uint16_t cmd, void (*add)(struct sb *b),
			     char *err, size_t errsize)
{
	struct sb b;

	start_stream(&b, 3);
	sb_cmd(&b, cmd);
	if (add)
		add(&b);
	sb_end_cmd(&b);
	assert_int_equal(parse_all(&b, err, errsize), -EINVAL);
	sb_free(&b);
}

/* The last attribute type, its length running past the command. */
static void add_cut_signature(struct sb *b)
{
	sb_str(b, BTRFS_SEND_A_PATH, "f");
	sb_le16(b, BTRFS_SEND_A_MAX);
	sb_le16(b, 100);
}

#define assert_error_has(err, want) do {				\
	if (!strstr((err), (want)))					\
		fail_msg("\"%s\" lacks \"%s\"", (err), (want));	\
} while (0)

/* The names at the ends of the tables, as the parser's errors give them. */
static void test_names_at_the_ends_of_the_tables(void **state)
{
	char err[1024];

	(void)state;
	error_of_command(BTRFS_SEND_C_MAX + 1, NULL, err, sizeof(err));
	assert_error_has(err, "command 2 (unknown)");
	error_of_command(BTRFS_SEND_C_UNSPEC, NULL, err, sizeof(err));
	assert_error_has(err, "command 2 (unknown)");
	error_of_command(BTRFS_SEND_C_MAX, add_cut_signature, err, sizeof(err));
	assert_error_has(err, "(enable_verity), attribute VERITY_SIG_DATA");
	assert_true(send_cmd_is_repeatable(BTRFS_SEND_C_WRITE));
	assert_false(send_cmd_is_repeatable(BTRFS_SEND_C_MKFILE));
	assert_false(send_cmd_is_repeatable(BTRFS_SEND_C_MAX + 1));
}

/* A v2 command larger than the read buffer (128 KiB): the buffer grows. */
static void test_command_larger_than_the_read_buffer_decodes(void **state)
{
	size_t len = 1536 * 1024;
	unsigned char *data = malloc(len);
	struct sb b;

	(void)state;
	assert_non_null(data);
	memset(data, 0xa5, len);
	start_stream(&b, 2);
	sb_cmd(&b, BTRFS_SEND_C_WRITE);
	sb_str(&b, BTRFS_SEND_A_PATH, "big");
	sb_u64(&b, BTRFS_SEND_A_FILE_OFFSET, 4096);
	sb_le16(&b, BTRFS_SEND_A_DATA);
	sb_put(&b, data, len);
	sb_end_cmd(&b);
	parse_second(&b);
	assert_string_equal(rec.cmd, "write");
	assert_int_equal(rec.v[0], 4096);
	assert_int_equal(rec.len, len);
	assert_int_equal(rec.data[sizeof(rec.data) - 1], 0xa5);
	free(data);
}

/* A reader that fails once with fail_errno, then reads the memfd. */
struct flaky {
	int fd;
	int fail_errno;
	int failures;
};

static ssize_t flaky_read(void *user, void *buf, size_t len)
{
	struct flaky *f = user;

	if (f->fail_errno) {
		errno = f->fail_errno;
		f->fail_errno = 0;
		f->failures++;
		return -1;
	}
	return read(f->fd, buf, len);
}

/* Parse with a flaky reader; the first result, the error in err. */
static int parse_flaky(const struct sb *b, int fail_errno,
		       volatile sig_atomic_t *flag, char *err, size_t size)
{
	struct flaky f = { .fd = sb_fd(b), .fail_errno = fail_errno };
	struct send_stream *s;
	int ret;

	assert_int_equal(send_stream_open(&s, -1), 0);
	send_stream_set_reader(s, flaky_read, &f);
	if (flag)
		send_stream_set_interrupt(s, flag);
	ret = send_stream_next(s, &rec_ops, &rec);
	snprintf(err, size, "%s", send_stream_error(s));
	send_stream_close(s);
	close(f.fd);
	assert_int_equal(f.failures, 1);
	return ret;
}

static void test_read_interrupted_by_a_signal(void **state)
{
	volatile sig_atomic_t stop = 0;
	char err[512];
	struct sb b;

	(void)state;
	start_stream(&b, 1);
	/* EINTR without a stop asked for: the read is retried. */
	assert_int_equal(parse_flaky(&b, EINTR, NULL, err, sizeof(err)),
			 SEND_STREAM_CMD);
	assert_string_equal(rec.path, "sub");
	assert_int_equal(parse_flaky(&b, EINTR, &stop, err, sizeof(err)),
			 SEND_STREAM_CMD);
	stop = 1;
	assert_int_equal(parse_flaky(&b, EINTR, &stop, err, sizeof(err)),
			 -EINTR);
	assert_string_equal(err, "interrupted at stream offset 0");
	sb_free(&b);
}

static void test_read_error_names_its_offset(void **state)
{
	char err[512];
	struct sb b;

	(void)state;
	start_stream(&b, 1);
	assert_int_equal(parse_flaky(&b, EIO, NULL, err, sizeof(err)), -EIO);
	assert_string_equal(err, "read error at stream offset 0: Input/output error");
	sb_free(&b);
}

/* An attribute of type 0 that overruns its command is named UNKNOWN. */
static void test_overrun_of_attribute_type_0_names_it(void **state)
{
	struct sb b;

	(void)state;
	start_stream(&b, 1);
	sb_cmd(&b, BTRFS_SEND_C_UNLINK);
	sb_le16(&b, 0);
	sb_le16(&b, 100);
	sb_end_cmd(&b);
	expect_error(&b, "(unlink), attribute UNKNOWN: length 100 runs past");
}

/* Only paths are bounded by PATH_MAX: an xattr name is not a path. */
static void test_long_xattr_name_is_not_a_path(void **state)
{
	static char name[PATH_MAX + 10];
	struct sb b;

	(void)state;
	memset(name, 'x', sizeof(name) - 1);
	start_stream(&b, 1);
	sb_cmd(&b, BTRFS_SEND_C_REMOVE_XATTR);
	sb_str(&b, BTRFS_SEND_A_PATH, "f");
	sb_str(&b, BTRFS_SEND_A_XATTR_NAME, name);
	sb_end_cmd(&b);
	parse_second(&b);
	assert_string_equal(rec.cmd, "remove_xattr");
}

static void expect_long_path_refused(uint16_t cmd, uint16_t attr,
				     uint16_t other)
{
	static char path[PATH_MAX + 1];
	struct sb b;

	memset(path, 'p', sizeof(path) - 1);
	start_stream(&b, 1);
	sb_cmd(&b, cmd);
	sb_str(&b, BTRFS_SEND_A_PATH, "f");
	sb_str(&b, attr, path);
	if (other)
		sb_u64(&b, other, 1);
	sb_end_cmd(&b);
	expect_error(&b, "longer than PATH_MAX");
}

static void test_every_path_attribute_is_bounded(void **state)
{
	(void)state;
	expect_long_path_refused(BTRFS_SEND_C_RENAME, BTRFS_SEND_A_PATH_TO, 0);
	expect_long_path_refused(BTRFS_SEND_C_LINK, BTRFS_SEND_A_PATH_LINK, 0);
	expect_long_path_refused(BTRFS_SEND_C_SYMLINK, BTRFS_SEND_A_PATH_LINK,
				 BTRFS_SEND_A_INO);
	expect_long_path_refused(BTRFS_SEND_C_CLONE, BTRFS_SEND_A_CLONE_PATH,
				 BTRFS_SEND_A_CLONE_OFFSET);
}

/* In v2 DATA has no length: its type alone at the end is empty data. */
static void test_v2_empty_data_ends_a_command(void **state)
{
	struct sb b;

	(void)state;
	start_stream(&b, 2);
	sb_cmd(&b, BTRFS_SEND_C_WRITE);
	sb_str(&b, BTRFS_SEND_A_PATH, "f");
	sb_u64(&b, BTRFS_SEND_A_FILE_OFFSET, 7);
	sb_le16(&b, BTRFS_SEND_A_DATA);
	sb_end_cmd(&b);
	rec.len = 99;
	parse_second(&b);
	assert_string_equal(rec.cmd, "write");
	assert_int_equal(rec.v[0], 7);
	assert_int_equal(rec.len, 0);
}

/*
 * One byte left in a payload is a truncated attribute header, even when
 * it and the next command's first byte would read as DATA.
 */
static void test_one_byte_left_is_a_truncated_attribute(void **state)
{
	struct sb b;

	(void)state;
	start_stream(&b, 2);
	sb_cmd(&b, BTRFS_SEND_C_CHMOD);
	sb_str(&b, BTRFS_SEND_A_PATH, "f");
	sb_u64(&b, BTRFS_SEND_A_MODE, 0644);
	sb_put(&b, (unsigned char[]){ BTRFS_SEND_A_DATA }, 1);
	sb_end_cmd(&b);
	sb_simple(&b, BTRFS_SEND_C_END);
	expect_error(&b, "truncated attribute header at payload byte 17");
}

/* Two or three bytes left in a v1 payload: a truncated header too. */
static void test_three_bytes_left_are_a_truncated_attribute(void **state)
{
	struct sb b;

	(void)state;
	start_stream(&b, 1);
	sb_cmd(&b, BTRFS_SEND_C_CHMOD);
	sb_str(&b, BTRFS_SEND_A_PATH, "f");
	sb_u64(&b, BTRFS_SEND_A_MODE, 0644);
	sb_le16(&b, BTRFS_SEND_A_XATTR_NAME);
	sb_put(&b, "", 1);
	sb_end_cmd(&b);
	sb_simple(&b, BTRFS_SEND_C_END);
	expect_error(&b, "truncated attribute header at payload byte 17");
}

/* The last attribute type of the table is named when it overruns. */
static void test_overrun_of_the_last_attribute_type_names_it(void **state)
{
	struct sb b;

	(void)state;
	start_stream(&b, 3);
	sb_cmd(&b, BTRFS_SEND_C_UNLINK);
	sb_le16(&b, BTRFS_SEND_A_MAX);
	sb_le16(&b, 100);
	sb_end_cmd(&b);
	expect_error(&b, "attribute VERITY_SIG_DATA: length 100 runs past");
}

/* The last command type of the table is named in framing errors. */
static void test_truncated_last_command_type_is_named(void **state)
{
	struct sb b;

	(void)state;
	start_stream(&b, 3);
	sb_le32(&b, 100);
	sb_le16(&b, BTRFS_SEND_C_MAX);
	sb_le32(&b, 0);
	expect_error(&b, "command 2 (enable_verity): truncated command");
}

/* A v1 command of exactly the v1 maximum length is accepted. */
static void test_command_of_the_v1_maximum_length_decodes(void **state)
{
	static unsigned char data[65536];
	size_t n = BTRFS_SEND_BUF_SIZE_V1 - BTRFS_SEND_CMD_HEADER_LEN - 21;
	struct sb b;

	(void)state;
	memset(data, 0x3c, sizeof(data));
	start_stream(&b, 1);
	sb_cmd(&b, BTRFS_SEND_C_WRITE);
	sb_str(&b, BTRFS_SEND_A_PATH, "f");
	sb_u64(&b, BTRFS_SEND_A_FILE_OFFSET, 0);
	sb_attr(&b, BTRFS_SEND_A_DATA, data, n);
	sb_end_cmd(&b);
	assert_int_equal(b.len - b.cmd_start,
			 BTRFS_SEND_BUF_SIZE_V1);
	parse_second(&b);
	assert_string_equal(rec.cmd, "write");
	assert_int_equal(rec.len, n);
}

static void test_callback_errors_are_worded_by_kind(void **state)
{
	struct sb b;
	struct run r;

	(void)state;
	start_stream(&b, 1);
	sb_simple(&b, BTRFS_SEND_C_END);
	run_open(&r, &b);
	rec.fail_with = -EOPNOTSUPP;
	assert_int_equal(send_stream_next(r.s, &rec_ops, &rec), -EOPNOTSUPP);
	assert_non_null(strstr(send_stream_error(r.s),
			       "(subvol): command not supported here"));
	rec.fail_with = -EPERM;
	assert_int_equal(send_stream_next(r.s, &rec_ops, &rec), -EPERM);
	assert_non_null(strstr(send_stream_error(r.s),
			       "(end): Operation not permitted"));
	assert_true(send_stream_failed_in_callback(r.s));
	run_close(&r);
	sb_free(&b);
}

/* What a loop's hooks saw, and what they answer. */
struct hooks {
	int before, after, failed;
	int stop_before_at, stop_after_at;	/* call number, 0: never */
	bool go_on;
};

static bool hook_before(struct send_stream *s, void *data)
{
	struct hooks *h = data;

	(void)s;
	return ++h->before == h->stop_before_at;
}

static bool hook_after(struct send_stream *s, void *data)
{
	struct hooks *h = data;

	(void)s;
	return ++h->after == h->stop_after_at;
}

static bool hook_failed(struct send_stream *s, int err, void *data)
{
	struct hooks *h = data;

	assert_true(send_stream_failed_in_callback(s));
	assert_int_equal(err, rec.fail_with);
	h->failed++;
	return !h->go_on;
}

/* Two streams of SUBVOL, MKFILE, END; run with the hooks and stop_at_end. */
static int run_loop(struct hooks *h, bool stop_at_end, bool spoil)
{
	const struct send_stream_loop loop = {
		.stop_at_end = stop_at_end, .data = h,
		.before = hook_before, .after = hook_after,
		.callback_failed = hook_failed,
	};
	struct sb b;
	struct run r;
	int i, ret;

	start_stream(&b, 1);
	for (i = 0; i < 2; i++) {
		if (i)
			sb_header(&b, 1);
		sb_cmd(&b, BTRFS_SEND_C_MKFILE);
		sb_str(&b, BTRFS_SEND_A_PATH, "f");
		sb_u64(&b, BTRFS_SEND_A_INO, 257);
		sb_end_cmd(&b);
		sb_simple(&b, BTRFS_SEND_C_END);
	}
	if (spoil)
		b.buf[b.len - 1] ^= 1;
	run_open(&r, &b);
	ret = send_stream_run(r.s, &rec_ops, &rec, &loop);
	run_close(&r);
	sb_free(&b);
	return ret;
}

static void test_run_loop_stops_where_its_hooks_say(void **state)
{
	struct hooks h = { 0 };

	(void)state;
	/* To the end of the input: the second stream has no SUBVOL. */
	assert_int_equal(run_loop(&h, false, false), SEND_STREAM_EOF);
	assert_int_equal(h.after, 5);
	assert_int_equal(h.before, 6);
	memset(&h, 0, sizeof(h));
	assert_int_equal(run_loop(&h, true, false), SEND_STREAM_END);
	assert_int_equal(h.after, 3);
	memset(&h, 0, sizeof(h));
	h.stop_before_at = 2;
	assert_int_equal(run_loop(&h, false, false), SEND_STREAM_STOPPED);
	assert_int_equal(h.after, 1);
	memset(&h, 0, sizeof(h));
	h.stop_after_at = 2;
	assert_int_equal(run_loop(&h, false, false), SEND_STREAM_STOPPED);
	assert_int_equal(h.before, 2);
	assert_string_equal(rec.cmd, "mkfile");
}

static void test_run_loop_goes_on_after_failed_callbacks(void **state)
{
	struct hooks h = { .go_on = true };

	(void)state;
	rec.fail_with = -EPERM;
	assert_int_equal(run_loop(&h, false, false), SEND_STREAM_EOF);
	assert_int_equal(h.failed, 5);
	assert_int_equal(h.after, 5);
	memset(&h, 0, sizeof(h));
	assert_int_equal(run_loop(&h, false, false), -EPERM);
	assert_int_equal(h.failed, 1);
	assert_int_equal(h.after, 0);
	/* A broken stream is no callback's failure: the hook is not asked. */
	memset(&h, 0, sizeof(h));
	h.go_on = true;
	rec.fail_with = 0;
	assert_int_equal(run_loop(&h, false, true), -EBADMSG);
	assert_int_equal(h.failed, 0);
	assert_int_equal(h.after, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_subvol_decodes, setup),
		cmocka_unit_test_setup(test_snapshot_decodes, setup),
		cmocka_unit_test_setup(test_inode_creations_decode, setup),
		cmocka_unit_test_setup(test_path_and_integer_commands_decode,
				       setup),
		cmocka_unit_test_setup(test_two_path_commands_decode, setup),
		cmocka_unit_test_setup(test_xattr_commands_decode, setup),
		cmocka_unit_test_setup(test_write_decodes_v1_and_v2_data, setup),
		cmocka_unit_test_setup(test_v2_data_longer_than_64k, setup),
		cmocka_unit_test_setup(test_clone_decodes, setup),
		cmocka_unit_test_setup(test_utimes_decodes, setup),
		cmocka_unit_test_setup(test_encoded_write_decodes, setup),
		cmocka_unit_test_setup(test_encoded_write_defaults, setup),
		cmocka_unit_test_setup(test_v3_enable_verity_decodes, setup),
		cmocka_unit_test_setup(test_concatenated_streams_parse_as_one_input, setup),
		cmocka_unit_test_setup(test_many_commands_across_buffer_refills, setup),
		cmocka_unit_test_setup(test_callback_error_keeps_stream_in_sync, setup),
		cmocka_unit_test_setup(test_missing_slot_does_nothing, setup),
		cmocka_unit_test_setup(test_empty_input_is_eof, setup),
		cmocka_unit_test_setup(test_bad_magic, setup),
		cmocka_unit_test_setup(test_unknown_versions, setup),
		cmocka_unit_test_setup(test_truncated_stream_header, setup),
		cmocka_unit_test_setup(test_truncated_command_header, setup),
		cmocka_unit_test_setup(test_truncated_payload, setup),
		cmocka_unit_test_setup(test_missing_end_command, setup),
		cmocka_unit_test_setup(test_bad_crc, setup),
		cmocka_unit_test_setup(test_unknown_command, setup),
		cmocka_unit_test_setup(test_attribute_past_command_end, setup),
		cmocka_unit_test_setup(test_truncated_attribute_header, setup),
		cmocka_unit_test_setup(test_wrong_uuid_size, setup),
		cmocka_unit_test_setup(test_malformed_command_refused, setup),
		cmocka_unit_test_setup(test_command_longer_than_v1_maximum, setup),
		cmocka_unit_test_setup(test_path_longer_than_path_max, setup),
		cmocka_unit_test_setup(test_commands_after_end_without_header, setup),
		cmocka_unit_test_setup(test_header_in_place_of_command, setup),
		cmocka_unit_test_setup(test_error_names_offset_and_command, setup),
		cmocka_unit_test_setup(test_restart_repaired_at_every_cut, setup),
		cmocka_unit_test_setup(test_restart_of_headerless_stream_repaired, setup),
		cmocka_unit_test_setup(test_restart_inside_long_v2_command_repaired, setup),
		cmocka_unit_test_setup(test_second_restart_repaired, setup),
		cmocka_unit_test_setup(test_restart_that_differs_is_refused, setup),
		cmocka_unit_test_setup(test_restart_differing_in_a_crc_is_refused, setup),
		cmocka_unit_test_setup(test_restart_cut_short_is_refused, setup),
		cmocka_unit_test_setup(test_bad_crc_without_restart_unchanged, setup),
		cmocka_unit_test_setup(test_broken_first_command_is_not_a_restart, setup),
		cmocka_unit_test_setup(test_restart_found_by_reading_ahead, setup),
		cmocka_unit_test_setup(test_restart_ending_with_its_head_is_refused, setup),
		cmocka_unit_test_setup(test_broken_command_after_resume_is_not_a_restart, setup),
		cmocka_unit_test_setup(test_restart_cut_inside_a_long_head_is_refused, setup),
		cmocka_unit_test_setup(test_read_error_in_a_repeat_stays_a_read_error, setup),
		cmocka_unit_test_setup(test_subvol_inside_a_repeat_is_refused, setup),
		cmocka_unit_test_setup(test_repeat_without_the_boundary_is_refused, setup),
		cmocka_unit_test_setup(test_names_at_the_ends_of_the_tables, setup),
		cmocka_unit_test_setup(test_command_larger_than_the_read_buffer_decodes, setup),
		cmocka_unit_test_setup(test_read_interrupted_by_a_signal, setup),
		cmocka_unit_test_setup(test_read_error_names_its_offset, setup),
		cmocka_unit_test_setup(test_overrun_of_attribute_type_0_names_it, setup),
		cmocka_unit_test_setup(test_long_xattr_name_is_not_a_path, setup),
		cmocka_unit_test_setup(test_every_path_attribute_is_bounded, setup),
		cmocka_unit_test_setup(test_v2_empty_data_ends_a_command, setup),
		cmocka_unit_test_setup(test_one_byte_left_is_a_truncated_attribute, setup),
		cmocka_unit_test_setup(test_three_bytes_left_are_a_truncated_attribute, setup),
		cmocka_unit_test_setup(test_overrun_of_the_last_attribute_type_names_it, setup),
		cmocka_unit_test_setup(test_truncated_last_command_type_is_named, setup),
		cmocka_unit_test_setup(test_command_of_the_v1_maximum_length_decodes, setup),
		cmocka_unit_test_setup(test_callback_errors_are_worded_by_kind, setup),
		cmocka_unit_test_setup(test_run_loop_stops_where_its_hooks_say, setup),
		cmocka_unit_test_setup(test_run_loop_goes_on_after_failed_callbacks, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
