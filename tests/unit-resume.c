// SPDX-License-Identifier: GPL-2.0-only
/*
 * The resume token, the continuation frame and the resume record: round
 * trips of every field, and refusals of damaged, truncated or forged
 * input.  The record is written to a plain temporary directory.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "crc32c.h"
#include "resume.h"

/* The token's blob (resume.c): "BR", version, ..., CRC32C of the rest. */
#define BLOB_LEN		87
#define BLOB_VERSION_AT		2
#define BLOB_CRC_AT		83
#define TOKEN_TEXT_LEN		(BLOB_LEN / 3 * 4)
#define RECORD_FILE_SIZE	16384

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void sample_token(struct resume_token *t)
{
	static const uint8_t uuid[16] = {
		0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
		0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
	static const uint8_t parent[16] = {
		0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87,
		0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0x0f };

	memset(t, 0, sizeof(*t));
	memcpy(t->uuid, uuid, 16);
	t->ctransid = 0x0123456789abcdefULL;
	memcpy(t->parent_uuid, parent, 16);
	t->parent_ctransid = 42;
	t->flags = RESUME_FLAG_COMPRESSED;
	t->pos.version = 2;
	t->pos.offset = 1ULL << 40;
	t->pos.cmds = 123456;
	t->pos.chain = 0xdeadbeef;
	t->pos.last_crc = 0xcafef00d;
}

static void assert_token_fields_equal(const struct resume_token *a,
				      const struct resume_token *b)
{
	assert_memory_equal(a->uuid, b->uuid, 16);
	assert_int_equal(a->ctransid, b->ctransid);
	assert_memory_equal(a->parent_uuid, b->parent_uuid, 16);
	assert_int_equal(a->parent_ctransid, b->parent_ctransid);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->pos.version, b->pos.version);
	assert_int_equal(a->pos.offset, b->pos.offset);
	assert_int_equal(a->pos.cmds, b->pos.cmds);
	assert_int_equal(a->pos.chain, b->pos.chain);
	assert_int_equal(a->pos.last_crc, b->pos.last_crc);
}

/* The blob inside a token's text, so that a test can forge one. */
static void text_to_blob(const char *text, unsigned char *b)
{
	uint32_t v;
	size_t i, j;

	for (i = 0; i < BLOB_LEN; i += 3) {
		v = 0;
		for (j = 0; j < 4; j++)
			v = v << 6 | (uint32_t)(strchr(b64, *text++) - b64);
		b[i] = v >> 16;
		b[i + 1] = v >> 8;
		b[i + 2] = v;
	}
}

static void blob_to_text(const unsigned char *b, char *text)
{
	uint32_t v;
	size_t i;

	for (i = 0; i < BLOB_LEN; i += 3) {
		v = b[i] << 16 | b[i + 1] << 8 | b[i + 2];
		*text++ = b64[v >> 18];
		*text++ = b64[(v >> 12) & 63];
		*text++ = b64[(v >> 6) & 63];
		*text++ = b64[v & 63];
	}
	*text = '\0';
}

static void blob_reseal(unsigned char *b)
{
	uint32_t crc = crc32c_update(0, b, BLOB_CRC_AT);

	b[BLOB_CRC_AT] = crc;
	b[BLOB_CRC_AT + 1] = crc >> 8;
	b[BLOB_CRC_AT + 2] = crc >> 16;
	b[BLOB_CRC_AT + 3] = crc >> 24;
}

static void assert_decode_refused(const char *text, const char *reason)
{
	struct resume_token t;
	const char *why = NULL;

	assert_int_equal(resume_token_decode(text, &t, &why), -EINVAL);
	assert_non_null(why);
	assert_string_equal(why, reason);
}

static void test_token_round_trip_keeps_every_field(void **state)
{
	char text[RESUME_TOKEN_TEXT_SIZE];
	struct resume_token in, out;
	const char *why = NULL;
	size_t i;

	(void)state;
	sample_token(&in);
	resume_token_encode(&in, text);
	assert_int_equal(strlen(text), TOKEN_TEXT_LEN);
	assert_true(strlen(text) < RESUME_TOKEN_TEXT_SIZE);
	for (i = 0; text[i]; i++)
		assert_non_null(strchr(b64, text[i]));
	assert_int_equal(resume_token_decode(text, &out, &why), 0);
	assert_token_fields_equal(&in, &out);
	assert_true(resume_token_equal(&in, &out));
}

static void test_token_flags_set_the_position_flags(void **state)
{
	char text[RESUME_TOKEN_TEXT_SIZE];
	struct resume_token in, out;
	const char *why;

	(void)state;
	sample_token(&in);
	in.flags = RESUME_FLAG_HEADERLESS | RESUME_FLAG_ENDED;
	resume_token_encode(&in, text);
	assert_int_equal(resume_token_decode(text, &out, &why), 0);
	assert_true(out.pos.headerless);
	assert_true(out.pos.ended);

	in.flags = RESUME_FLAG_NO_DATA;
	resume_token_encode(&in, text);
	assert_int_equal(resume_token_decode(text, &out, &why), 0);
	assert_false(out.pos.headerless);
	assert_false(out.pos.ended);
}

static void test_token_from_pos_derives_flags(void **state)
{
	static const struct {
		bool headerless, ended;
		uint32_t cmds_seen, flags;
	} cases[] = {
		{ false, false, 1U << BTRFS_SEND_C_WRITE, 0 },
		{ true, false, 0, RESUME_FLAG_HEADERLESS },
		{ false, true, 0, RESUME_FLAG_ENDED },
		{ false, false, 1U << BTRFS_SEND_C_UPDATE_EXTENT,
		  RESUME_FLAG_NO_DATA },
		{ false, false, 1U << BTRFS_SEND_C_ENCODED_WRITE,
		  RESUME_FLAG_COMPRESSED },
		{ true, true, (1U << BTRFS_SEND_C_UPDATE_EXTENT) |
		  (1U << BTRFS_SEND_C_ENCODED_WRITE),
		  RESUME_FLAG_HEADERLESS | RESUME_FLAG_ENDED |
		  RESUME_FLAG_NO_DATA | RESUME_FLAG_COMPRESSED },
	};
	struct send_stream_pos pos;
	struct resume_token t;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&pos, 0, sizeof(pos));
		pos.offset = 1000 + i;
		pos.cmds = 7;
		pos.headerless = cases[i].headerless;
		pos.ended = cases[i].ended;
		pos.cmds_seen = cases[i].cmds_seen;
		sample_token(&t);
		t.flags = ~0U;
		resume_token_from_pos(&t, &pos);
		assert_int_equal(t.flags, cases[i].flags);
		assert_int_equal(t.pos.offset, 1000 + i);
		assert_int_equal(t.pos.cmds, 7);
	}
}

static void test_token_equal_sees_each_field(void **state)
{
	struct resume_token a, b;
	int field;

	(void)state;
	sample_token(&a);
	for (field = 0; field < 10; field++) {
		sample_token(&b);
		assert_true(resume_token_equal(&a, &b));
		switch (field) {
		case 0: b.uuid[15] ^= 1; break;
		case 1: b.ctransid++; break;
		case 2: b.parent_uuid[0] ^= 0x80; break;
		case 3: b.parent_ctransid++; break;
		case 4: b.flags ^= RESUME_FLAG_ENDED; break;
		case 5: b.pos.version = 1; break;
		case 6: b.pos.offset++; break;
		case 7: b.pos.cmds++; break;
		case 8: b.pos.chain ^= 1; break;
		case 9: b.pos.last_crc ^= 1U << 31; break;
		}
		assert_false(resume_token_equal(&a, &b));
	}
}

static void test_token_decode_refuses_bad_text(void **state)
{
	char text[RESUME_TOKEN_TEXT_SIZE + 8];
	struct resume_token t;

	(void)state;
	sample_token(&t);
	resume_token_encode(&t, text);

	text[TOKEN_TEXT_LEN - 1] = '\0';
	assert_decode_refused(text, "wrong length");
	assert_decode_refused("", "wrong length");
	resume_token_encode(&t, text);
	strcat(text, "A");
	assert_decode_refused(text, "wrong length");

	resume_token_encode(&t, text);
	text[10] = '+';		/* base64, not base64url */
	assert_decode_refused(text, "a character that is not base64url");
	resume_token_encode(&t, text);
	text[50] = '=';
	assert_decode_refused(text, "a character that is not base64url");
}

static void test_token_decode_refuses_damaged_blob(void **state)
{
	char text[RESUME_TOKEN_TEXT_SIZE];
	unsigned char b[BLOB_LEN];
	struct resume_token t;
	size_t i;

	(void)state;
	sample_token(&t);
	resume_token_encode(&t, text);
	/* Any one character changed: the checksum no longer matches. */
	for (i = 4; i < TOKEN_TEXT_LEN; i += 7) {
		resume_token_encode(&t, text);
		text[i] = text[i] == 'x' ? 'y' : 'x';
		assert_decode_refused(text,
				      "checksum mismatch (damaged or edited)");
	}

	resume_token_encode(&t, text);
	text_to_blob(text, b);
	b[0] = 'C';
	blob_reseal(b);
	blob_to_text(b, text);
	assert_decode_refused(text, "not a resume token");
}

static void test_token_decode_refuses_other_version(void **state)
{
	char text[RESUME_TOKEN_TEXT_SIZE];
	unsigned char b[BLOB_LEN];
	struct resume_token t;

	(void)state;
	sample_token(&t);
	resume_token_encode(&t, text);
	text_to_blob(text, b);
	b[BLOB_VERSION_AT] = 2;
	blob_reseal(b);
	blob_to_text(b, text);
	assert_decode_refused(text, "token version not supported");
}

static void test_token_decode_refuses_inconsistent_fields(void **state)
{
	static const struct {
		uint32_t version;
		uint64_t offset, cmds;
	} cases[] = {
		{ 0, 1000, 10 },			/* no such protocol */
		{ BTRFS_SEND_STREAM_VERSION + 1, 1000, 10 },
		{ 1, 1000, 0 },				/* no command */
		{ 1, 10 * BTRFS_SEND_CMD_HEADER_LEN - 1, 10 },
	};
	char text[RESUME_TOKEN_TEXT_SIZE];
	struct resume_token t, out;
	const char *why;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sample_token(&t);
		t.pos.version = cases[i].version;
		t.pos.offset = cases[i].offset;
		t.pos.cmds = cases[i].cmds;
		resume_token_encode(&t, text);
		assert_decode_refused(text, "inconsistent fields");
	}
	/* The edge itself is consistent: ten bare command headers. */
	sample_token(&t);
	t.pos.version = BTRFS_SEND_STREAM_VERSION;
	t.pos.cmds = 10;
	t.pos.offset = 10 * BTRFS_SEND_CMD_HEADER_LEN;
	resume_token_encode(&t, text);
	assert_int_equal(resume_token_decode(text, &out, &why), 0);
	/* So is the first protocol version. */
	t.pos.version = 1;
	resume_token_encode(&t, text);
	assert_int_equal(resume_token_decode(text, &out, &why), 0);
	assert_int_equal(out.pos.version, 1);
}

static void test_frame_round_trip(void **state)
{
	unsigned char buf[RESUME_FRAME_LEN];
	struct resume_token in, out;
	const char *why = NULL;

	(void)state;
	sample_token(&in);
	memset(buf, 0xa5, sizeof(buf));
	resume_frame_encode(&in, buf);
	assert_memory_equal(buf, RESUME_FRAME_MAGIC, RESUME_FRAME_MAGIC_LEN);
	assert_true(resume_frame_magic(buf));
	assert_int_equal(resume_frame_decode(buf, &out, &why), 0);
	assert_token_fields_equal(&in, &out);
	assert_true(resume_token_equal(&in, &out));
}

static void test_frame_magic_is_not_a_stream_magic(void **state)
{
	unsigned char buf[RESUME_FRAME_LEN] = "btrfs-stream";

	(void)state;
	assert_false(resume_frame_magic(buf));
	memcpy(buf, RESUME_FRAME_MAGIC, RESUME_FRAME_MAGIC_LEN);
	buf[RESUME_FRAME_MAGIC_LEN - 1] = 'x';	/* the magic's NUL */
	assert_false(resume_frame_magic(buf));
}

static void test_frame_decode_refuses_damage(void **state)
{
	unsigned char buf[RESUME_FRAME_LEN];
	struct resume_token t, out;
	const char *why = NULL;

	(void)state;
	sample_token(&t);
	resume_frame_encode(&t, buf);
	buf[RESUME_FRAME_MAGIC_LEN] = 2;	/* the frame's version */
	assert_int_equal(resume_frame_decode(buf, &out, &why),
			 -EPROTONOSUPPORT);
	assert_string_equal(why, "continuation frame version not supported");

	resume_frame_encode(&t, buf);
	buf[RESUME_FRAME_LEN - 10] ^= 1;
	why = NULL;
	assert_int_equal(resume_frame_decode(buf, &out, &why), -EINVAL);
	assert_string_equal(why, "checksum mismatch (damaged or edited)");
}

/* A temporary directory per test, with its fd. */
struct tmpdir {
	char path[64];
	int fd;
};

static int tmpdir_setup(void **state)
{
	struct tmpdir *d = calloc(1, sizeof(*d));

	if (!d)
		return -1;
	strcpy(d->path, "/tmp/unit-resume.XXXXXX");
	if (!mkdtemp(d->path)) {
		free(d);
		return -1;
	}
	d->fd = open(d->path, O_RDONLY | O_DIRECTORY);
	*state = d;
	return d->fd < 0 ? -1 : 0;
}

static int tmpdir_teardown(void **state)
{
	struct tmpdir *d = *state;
	struct dirent *de;
	DIR *dir;

	dir = fdopendir(d->fd);
	while (dir && (de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dirfd(dir), de->d_name, 0);
	if (dir)
		closedir(dir);
	rmdir(d->path);
	free(d);
	return 0;
}

static void sample_record(struct resume_record *r)
{
	static const uint8_t local[16] = { 9, 8, 7, 6, 5, 4, 3, 2, 1 };
	static const unsigned char cap[] = { 0x01, 0x00, 0x00, 0x02, 0x00,
					     0x20, 0x00, 0x00, 0xff };

	memset(r, 0, sizeof(*r));
	r->state = RESUME_STOPPED;
	sample_token(&r->tok);
	r->tok.pos.cmds_seen = (1U << BTRFS_SEND_C_WRITE) |
			       (1U << BTRFS_SEND_C_ENCODED_WRITE);
	memcpy(r->local_uuid, local, 16);
	r->local_ctransid = 77;
	strcpy(r->cap_path, "dir with space/f\nx\xff");
	memcpy(r->cap_value, cap, sizeof(cap));
	r->cap_len = sizeof(cap);
}

static void assert_record_equal(const struct resume_record *a,
				const struct resume_record *b)
{
	assert_int_equal(a->state, b->state);
	assert_token_fields_equal(&a->tok, &b->tok);
	assert_int_equal(a->tok.pos.cmds_seen, b->tok.pos.cmds_seen);
	assert_memory_equal(a->local_uuid, b->local_uuid, 16);
	assert_int_equal(a->local_ctransid, b->local_ctransid);
	assert_int_equal(a->cap_len, b->cap_len);
	assert_string_equal(a->cap_path, b->cap_path);
	assert_memory_equal(a->cap_value, b->cap_value, a->cap_len);
}

static off_t file_size(int dir_fd, const char *name)
{
	struct stat st;

	if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	return st.st_size;
}

static void test_record_round_trip_every_state(void **state)
{
	static const enum resume_state states[] = {
		RESUME_STOPPED, RESUME_APPLYING, RESUME_FAILED,
		RESUME_RECEIVING,
	};
	struct tmpdir *d = *state;
	struct resume_record in, out;
	size_t i;

	for (i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		sample_record(&in);
		in.state = states[i];
		in.tok.ctransid += i;
		assert_int_equal(resume_record_write(d->fd, "snap", &in), 0);
		assert_int_equal(file_size(d->fd,
					   ".snap.btrfs-receive-resume"),
				 RECORD_FILE_SIZE);
		memset(&out, 0xee, sizeof(out));
		assert_int_equal(resume_record_read(d->fd, "snap", &out), 0);
		assert_record_equal(&in, &out);
	}
}

static void test_record_without_cap_reads_empty(void **state)
{
	struct tmpdir *d = *state;
	struct resume_record in, out;

	sample_record(&in);
	in.cap_len = 0;
	in.tok.flags = RESUME_FLAG_HEADERLESS | RESUME_FLAG_ENDED;
	assert_int_equal(resume_record_write(d->fd, "s", &in), 0);
	assert_int_equal(resume_record_read(d->fd, "s", &out), 0);
	assert_int_equal(out.cap_len, 0);
	assert_string_equal(out.cap_path, "");
	assert_true(out.tok.pos.headerless);
	assert_true(out.tok.pos.ended);
}

static void test_record_remove_and_missing(void **state)
{
	struct tmpdir *d = *state;
	struct resume_record r;

	assert_int_equal(resume_record_read(d->fd, "none", &r), -ENOENT);
	assert_int_equal(resume_record_remove(d->fd, "none"), 0);
	sample_record(&r);
	assert_int_equal(resume_record_write(d->fd, "snap", &r), 0);
	assert_int_equal(resume_record_remove(d->fd, "snap"), 0);
	assert_int_equal(resume_record_read(d->fd, "snap", &r), -ENOENT);
	assert_int_equal(file_size(d->fd, ".snap.btrfs-receive-resume"), -1);
}

static void test_record_name_too_long(void **state)
{
	struct tmpdir *d = *state;
	char name[NAME_MAX + 1], subvol[NAME_MAX + 1];
	size_t fits = NAME_MAX - strlen(".") - strlen(".btrfs-receive-resume");
	struct resume_record r;

	memset(subvol, 'n', fits);
	subvol[fits] = '\0';
	assert_int_equal(resume_record_name(subvol, name, sizeof(name)), 0);
	assert_int_equal(strlen(name), NAME_MAX);
	sample_record(&r);
	assert_int_equal(resume_record_write(d->fd, subvol, &r), 0);

	subvol[fits] = 'n';
	subvol[fits + 1] = '\0';
	assert_int_equal(resume_record_name(subvol, name, sizeof(name)),
			 -ENAMETOOLONG);
	assert_int_equal(resume_record_name("snap", name, 10), -ENAMETOOLONG);
	/* ".snap.btrfs-receive-resume" is 26 bytes: 27 with its NUL. */
	assert_int_equal(resume_record_name("snap", name, 26), -ENAMETOOLONG);
	assert_int_equal(resume_record_name("snap", name, 27), 0);
	assert_string_equal(name, ".snap.btrfs-receive-resume");
	assert_int_equal(resume_record_write(d->fd, subvol, &r),
			 -ENAMETOOLONG);
	assert_int_equal(resume_record_read(d->fd, subvol, &r), -ENOENT);
}

static void write_file(int dir_fd, const char *name, const void *data,
		       size_t len)
{
	int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static size_t read_file(int dir_fd, const char *name, char *buf,
			size_t size)
{
	int fd = openat(dir_fd, name, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, size);
	close(fd);
	assert_true(n > 0);
	return n;
}

/* A record text with a valid CRC line, as a forger would write it. */
static void write_sealed(int dir_fd, const char *name, const char *body)
{
	char text[4096];
	int n;

	n = snprintf(text, sizeof(text), "%scrc %u\n", body,
		     crc32c_update(0, body, strlen(body)));
	write_file(dir_fd, name, text, n);
}

static void test_record_refuses_damage(void **state)
{
	static const char name[] = ".snap.btrfs-receive-resume";
	struct tmpdir *d = *state;
	struct resume_record r;
	static char good[RECORD_FILE_SIZE], bad[RECORD_FILE_SIZE];
	size_t len, at;

	sample_record(&r);
	assert_int_equal(resume_record_write(d->fd, "snap", &r), 0);
	len = read_file(d->fd, name, good, sizeof(good));
	assert_int_equal(len, RECORD_FILE_SIZE);

	/* One byte flipped anywhere in the text: the CRC refuses it. */
	for (at = 0; at < 400; at += 13) {
		memcpy(bad, good, len);
		if (bad[at] == '\n')
			continue;
		bad[at] ^= 0x01;
		write_file(d->fd, name, bad, len);
		assert_int_equal(resume_record_read(d->fd, "snap", &r),
				 -EBADMSG);
	}
	/* Cut short, before or inside the CRC line. */
	write_file(d->fd, name, good, 100);
	assert_int_equal(resume_record_read(d->fd, "snap", &r), -EBADMSG);
	len = strstr(good, "\ncrc ") - good + 4;
	write_file(d->fd, name, good, len);
	assert_int_equal(resume_record_read(d->fd, "snap", &r), -EBADMSG);
	write_file(d->fd, name, "", 0);
	assert_int_equal(resume_record_read(d->fd, "snap", &r), -EBADMSG);
}

static void test_record_refuses_forged_fields(void **state)
{
	static const char name[] = ".snap.btrfs-receive-resume";
	static const char *const bodies[] = {
		"btrfs-receive-resume 2\nstate stopped\n",
		"btrfs-receive-resume 1\nuuid not-a-uuid\n",
		"btrfs-receive-resume 1\nparent_uuid 1234\n",
		"btrfs-receive-resume 1\nlocal_uuid \n",
		"btrfs-receive-resume 1\nno-value-line\n",
		"btrfs-receive-resume 1\ncap_value abc\n",
		"btrfs-receive-resume 1\ncap_value zz\n",
		"btrfs-receive-resume 1\ncap_path 6\n",
	};
	struct tmpdir *d = *state;
	struct resume_record r;
	size_t i;

	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		write_sealed(d->fd, name, bodies[i]);
		assert_int_equal(resume_record_read(d->fd, "snap", &r),
				 -EBADMSG);
	}
	/* The longest capability that fits, and one byte more. */
	{
		char body[1024] = "btrfs-receive-resume 1\ncap_value ";
		size_t n = strlen(body);

		memset(body + n, 'a', 2 * sizeof(r.cap_value));
		strcpy(body + n + 2 * sizeof(r.cap_value), "\n");
		write_sealed(d->fd, name, body);
		assert_int_equal(resume_record_read(d->fd, "snap", &r), 0);
		assert_int_equal(r.cap_len, sizeof(r.cap_value));
		strcpy(body + n + 2 * sizeof(r.cap_value), "aa\n");
		write_sealed(d->fd, name, body);
		assert_int_equal(resume_record_read(d->fd, "snap", &r),
				 -EBADMSG);
	}
}

static void test_record_find_by_uuid_and_ctransid(void **state)
{
	struct tmpdir *d = *state;
	struct resume_record a, b, out;
	char name[NAME_MAX + 1];

	sample_record(&a);
	sample_record(&b);
	b.tok.uuid[0] ^= 0xff;
	assert_int_equal(resume_record_write(d->fd, "first", &a), 0);
	assert_int_equal(resume_record_write(d->fd, "second", &b), 0);
	/* Things that are not records, or not readable ones. */
	write_file(d->fd, ".x.btrfs-receive-resume", "junk", 4);
	write_file(d->fd, "first.btrfs-receive-resume", "junk", 4);
	write_file(d->fd, ".btrfs-receive-resume", "junk", 4);

	assert_int_equal(resume_record_find(d->fd, b.tok.uuid, b.tok.ctransid,
					    name, sizeof(name), &out), 0);
	assert_string_equal(name, "second");
	assert_record_equal(&b, &out);
	assert_int_equal(resume_record_find(d->fd, a.tok.uuid, a.tok.ctransid,
					    name, sizeof(name), &out), 0);
	assert_string_equal(name, "first");

	assert_int_equal(resume_record_find(d->fd, a.tok.uuid,
					    a.tok.ctransid + 1, name,
					    sizeof(name), &out), -ENOENT);
	/* A name that does not fit the caller's buffer is not found. */
	assert_int_equal(resume_record_find(d->fd, a.tok.uuid, a.tok.ctransid,
					    name, 5, &out), -ENOENT);
	assert_int_equal(resume_record_find(d->fd, a.tok.uuid, a.tok.ctransid,
					    name, 6, &out), 0);
	assert_string_equal(name, "first");
}

/*
 * Faults on demand: the executable's pwrite(), fsync() and renameat()
 * come before libc's, fail with the errno set here once, and count.
 */
static int pwrite_errno, rename_errno;
static int fsyncs, fsync_fail_at;	/* that call fails: 1 the first */

static void *libc_fn(const char *name)
{
	void *fn = dlsym(RTLD_NEXT, name);

	assert_non_null(fn);
	return fn;
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t offset)
{
	static ssize_t (*real)(int, const void *, size_t, off_t);

	if (pwrite_errno) {
		errno = pwrite_errno;
		pwrite_errno = 0;
		return -1;
	}
	if (!real)
		real = libc_fn("pwrite");
	return real(fd, buf, len, offset);
}

int fsync(int fd)
{
	static int (*real)(int);

	if (++fsyncs == fsync_fail_at) {
		errno = EIO;
		return -1;
	}
	if (!real)
		real = libc_fn("fsync");
	return real(fd);
}

int renameat(int from_dir, const char *from, int to_dir, const char *to)
{
	static int (*real)(int, const char *, int, const char *);

	if (rename_errno) {
		errno = rename_errno;
		rename_errno = 0;
		return -1;
	}
	if (!real)
		real = libc_fn("renameat");
	return real(from_dir, from, to_dir, to);
}

static void resize(int dir_fd, const char *name, off_t size)
{
	int fd = openat(dir_fd, name, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, size), 0);
	close(fd);
}

static ino_t inode_of(int dir_fd, const char *name)
{
	struct stat st;

	assert_int_equal(fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW), 0);
	return st.st_ino;
}

/* No temporary record file is left in the directory. */
static void assert_no_tmp(int dir_fd)
{
	char tmp[64];
	struct stat st;

	snprintf(tmp, sizeof(tmp), ".btrfs-receive-resume.%d.tmp", getpid());
	assert_int_equal(fstatat(dir_fd, tmp, &st, AT_SYMLINK_NOFOLLOW), -1);
}

/*
 * A new record is written whole, synced, renamed into place and the
 * directory synced; a record of the full size is rewritten in place,
 * synced; one of another size is replaced.
 */
static void test_record_written_in_place_once_it_exists(void **state)
{
	struct tmpdir *d = *state;
	struct resume_record r, out;
	ino_t ino;

	sample_record(&r);
	fsyncs = 0;
	assert_int_equal(resume_record_write(d->fd, "snap", &r), 0);
	assert_int_equal(fsyncs, 2);
	ino = inode_of(d->fd, ".snap.btrfs-receive-resume");
	r.state = RESUME_FAILED;
	fsyncs = 0;
	assert_int_equal(resume_record_write(d->fd, "snap", &r), 0);
	assert_int_equal(fsyncs, 1);
	assert_int_equal(inode_of(d->fd, ".snap.btrfs-receive-resume"), ino);
	assert_int_equal(resume_record_read(d->fd, "snap", &out), 0);
	assert_record_equal(&r, &out);
	/* Longer than a record (an old or foreign file): replaced. */
	resize(d->fd, ".snap.btrfs-receive-resume", RECORD_FILE_SIZE + 4096);
	assert_int_equal(resume_record_write(d->fd, "snap", &r), 0);
	assert_int_equal(file_size(d->fd, ".snap.btrfs-receive-resume"),
			 RECORD_FILE_SIZE);
	assert_true(inode_of(d->fd, ".snap.btrfs-receive-resume") != ino);
	assert_no_tmp(d->fd);
}

static void test_record_write_faults_are_returned(void **state)
{
	struct tmpdir *d = *state;
	struct resume_record r, out;
	char tmp[64];

	sample_record(&r);
	pwrite_errno = ENOSPC;
	assert_int_equal(resume_record_write(d->fd, "snap", &r), -ENOSPC);
	assert_int_equal(file_size(d->fd, ".snap.btrfs-receive-resume"), -1);
	assert_no_tmp(d->fd);
	/* The new file's sync fails, then the directory's. */
	fsyncs = 0;
	fsync_fail_at = 1;
	assert_int_equal(resume_record_write(d->fd, "snap", &r), -EIO);
	assert_int_equal(file_size(d->fd, ".snap.btrfs-receive-resume"), -1);
	assert_no_tmp(d->fd);
	fsyncs = 0;
	fsync_fail_at = 2;
	assert_int_equal(resume_record_write(d->fd, "snap", &r), -EIO);
	fsync_fail_at = 0;
	assert_int_equal(resume_record_remove(d->fd, "snap"), 0);
	rename_errno = EXDEV;
	assert_int_equal(resume_record_write(d->fd, "snap", &r), -EXDEV);
	assert_int_equal(file_size(d->fd, ".snap.btrfs-receive-resume"), -1);
	assert_no_tmp(d->fd);
	assert_int_equal(resume_record_write(d->fd, "snap", &r), 0);
	r.state = RESUME_APPLYING;
	pwrite_errno = EIO;
	assert_int_equal(resume_record_write(d->fd, "snap", &r), -EIO);
	assert_int_equal(resume_record_read(d->fd, "snap", &out), 0);
	assert_int_equal(out.state, RESUME_STOPPED);
	/* The temporary name is taken by a directory. */
	assert_int_equal(resume_record_remove(d->fd, "snap"), 0);
	snprintf(tmp, sizeof(tmp), ".btrfs-receive-resume.%d.tmp", getpid());
	assert_int_equal(mkdirat(d->fd, tmp, 0700), 0);
	assert_int_equal(resume_record_write(d->fd, "snap", &r), -EISDIR);
	assert_int_equal(unlinkat(d->fd, tmp, AT_REMOVEDIR), 0);
}

/* Every file the record code opens may get fd 0. */
static void test_record_io_when_fd_0_is_free(void **state)
{
	struct tmpdir *d = *state;
	struct resume_record r, out;
	char name[NAME_MAX + 1];
	int in = dup(STDIN_FILENO);

	sample_record(&r);
	close(STDIN_FILENO);
	assert_int_equal(resume_record_write(d->fd, "snap", &r), 0);
	assert_int_equal(resume_record_write(d->fd, "snap", &r), 0);
	assert_int_equal(resume_record_read(d->fd, "snap", &out), 0);
	assert_int_equal(resume_record_find(d->fd, r.tok.uuid, r.tok.ctransid,
					    name, sizeof(name), &out), 0);
	assert_int_equal(dup2(in, STDIN_FILENO), STDIN_FILENO);
	close(in);
	assert_record_equal(&r, &out);
}

/* Files named almost like a record, holding a valid one: not records. */
static void test_record_find_takes_only_record_names(void **state)
{
	static const char *const names[] = {
		".btrfs-receive-resume",	/* no subvolume name */
		"..btrfs-receive-resume",	/* an empty one */
		"xsnap.btrfs-receive-resume",	/* no leading dot */
		".snap.btrfs-receive-resumX",	/* another suffix */
	};
	struct tmpdir *d = *state;
	struct resume_record r, out;
	char name[NAME_MAX + 1];
	size_t i;

	sample_record(&r);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_int_equal(resume_record_write(d->fd, "snap", &r), 0);
		assert_int_equal(renameat(d->fd, ".snap.btrfs-receive-resume",
					  d->fd, names[i]), 0);
		assert_int_equal(resume_record_find(d->fd, r.tok.uuid,
						    r.tok.ctransid, name,
						    sizeof(name), &out),
				 -ENOENT);
		assert_int_equal(unlinkat(d->fd, names[i], 0), 0);
	}
	/* Not a directory to look in. */
	write_file(d->fd, "plain", "x", 1);
	i = openat(d->fd, "plain", O_RDONLY);
	assert_int_equal(resume_record_find(i, r.tok.uuid, r.tok.ctransid,
					    name, sizeof(name), &out),
			 -ENOTDIR);
	close(i);
}

/*
 * A subvolume name too long for a record name is never cut short: not
 * even a record under the cut name is read or removed.
 */
static void test_record_name_is_never_cut_short(void **state)
{
	struct tmpdir *d = *state;
	char subvol[NAME_MAX + 1], full[NAME_MAX + 32], cut[NAME_MAX + 1];
	size_t fits = NAME_MAX - strlen(".") - strlen(".btrfs-receive-resume");
	struct resume_record r, out;

	memset(subvol, 'n', fits + 1);
	subvol[fits + 1] = '\0';
	snprintf(full, sizeof(full), ".%s.btrfs-receive-resume", subvol);
	memcpy(cut, full, NAME_MAX);
	cut[NAME_MAX] = '\0';
	sample_record(&r);
	assert_int_equal(resume_record_write(d->fd, "snap", &r), 0);
	assert_int_equal(renameat(d->fd, ".snap.btrfs-receive-resume",
				  d->fd, cut), 0);
	assert_int_equal(resume_record_read(d->fd, subvol, &out), -ENOENT);
	assert_int_equal(resume_record_remove(d->fd, subvol), 0);
	assert_int_equal(file_size(d->fd, cut), RECORD_FILE_SIZE);
	assert_int_equal(unlinkat(d->fd, cut, 0), 0);
}

/* A record that cannot be removed (a directory took its name). */
static void test_record_remove_failure_is_returned(void **state)
{
	struct tmpdir *d = *state;

	assert_int_equal(mkdirat(d->fd, ".snap.btrfs-receive-resume", 0700),
			 0);
	assert_int_equal(resume_record_remove(d->fd, "snap"), -EISDIR);
	assert_int_equal(unlinkat(d->fd, ".snap.btrfs-receive-resume",
				  AT_REMOVEDIR), 0);
	assert_int_equal(resume_record_remove(d->fd, "snap"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token_round_trip_keeps_every_field),
		cmocka_unit_test(test_token_flags_set_the_position_flags),
		cmocka_unit_test(test_token_from_pos_derives_flags),
		cmocka_unit_test(test_token_equal_sees_each_field),
		cmocka_unit_test(test_token_decode_refuses_bad_text),
		cmocka_unit_test(test_token_decode_refuses_damaged_blob),
		cmocka_unit_test(test_token_decode_refuses_other_version),
		cmocka_unit_test(test_token_decode_refuses_inconsistent_fields),
		cmocka_unit_test(test_frame_round_trip),
		cmocka_unit_test(test_frame_magic_is_not_a_stream_magic),
		cmocka_unit_test(test_frame_decode_refuses_damage),
		cmocka_unit_test_setup_teardown(
			test_record_round_trip_every_state,
			tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(
			test_record_without_cap_reads_empty,
			tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_record_remove_and_missing,
						tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_record_name_too_long,
						tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_record_refuses_damage,
						tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(
			test_record_refuses_forged_fields,
			tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(
			test_record_find_by_uuid_and_ctransid,
			tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(
			test_record_written_in_place_once_it_exists,
			tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(
			test_record_write_faults_are_returned,
			tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(
			test_record_io_when_fd_0_is_free,
			tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(
			test_record_find_takes_only_record_names,
			tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(
			test_record_name_is_never_cut_short,
			tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(
			test_record_remove_failure_is_returned,
			tmpdir_setup, tmpdir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
