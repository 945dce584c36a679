// SPDX-License-Identifier: GPL-2.0-only
/*
 * The framing shared by the parser and the send pump: on every stream of
 * the corpus, following the commands with send-frame.c alone finds the
 * parser's commands, checksums, paths and positions; the rules of each
 * caller, and the check of a restarted stream's repeat.
 */
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "send-frame.h"
#include "send-stream.h"
#include "stream-builder.h"

static unsigned char *read_file(const char *path, size_t *len)
{
	struct stat st;
	unsigned char *buf;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc(st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, st.st_size), st.st_size);
	close(fd);
	*len = st.st_size;
	return buf;
}

/*
 * One stream of the file, framed by send-frame.c, against the parser: the
 * same commands in the same places, checksums right, the same path of
 * each, the same position at the end.  Returns the offset after it.
 */
static size_t frame_one_stream(const unsigned char *buf, size_t len,
			       size_t off, struct send_stream *s)
{
	static const struct send_stream_ops no_ops;
	struct send_frame mine = { 0 };
	struct send_stream_pos parsed;
	struct send_frame_cmd c;
	const char *path, *want;
	size_t path_len, want_len;
	uint32_t version;
	int ret;

	assert_true(send_frame_stream_header(buf + off, &version));
	send_frame_advance(&mine, buf + off, BTRFS_SEND_STREAM_HEADER_LEN);
	assert_int_equal(mine.pos.version, version);
	off += BTRFS_SEND_STREAM_HEADER_LEN;
	while (!mine.pos.ended) {
		assert_true(off + BTRFS_SEND_CMD_HEADER_LEN <= len);
		send_frame_cmd_header(buf + off, &c);
		assert_true(c.len <= send_frame_max_payload(version));
		assert_int_equal(send_frame_cmd_crc(buf + off,
			buf + off + BTRFS_SEND_CMD_HEADER_LEN, c.len), c.crc);
		/* Every slot is NULL: each command "fails" in its callback. */
		ret = send_stream_next(s, &no_ops, NULL);
		assert_true(ret >= 0 || send_stream_failed_in_callback(s));
		assert_int_equal(send_stream_cmd_offset(s), off);
		assert_int_equal(send_stream_cmd_type(s), c.cmd);
		want = send_stream_cmd_path(s, &want_len);
		if (send_frame_first_path(buf + off + BTRFS_SEND_CMD_HEADER_LEN,
					  len - off - BTRFS_SEND_CMD_HEADER_LEN,
					  c.len, &path, &path_len)) {
			assert_non_null(want);
			assert_int_equal(path_len, want_len);
			assert_memory_equal(path, want, path_len);
		}
		/* send -e: the framing starts a position at each SUBVOL. */
		send_frame_advance(&mine, buf + off, BTRFS_SEND_CMD_HEADER_LEN);
		off += BTRFS_SEND_CMD_HEADER_LEN + c.len;
	}
	send_stream_position(s, &parsed);
	assert_int_equal(mine.pos.offset, parsed.offset);
	assert_int_equal(mine.pos.cmds, parsed.cmds);
	assert_int_equal(mine.pos.chain, parsed.chain);
	assert_int_equal(mine.pos.last_crc, parsed.last_crc);
	assert_int_equal(mine.pos.cmds_seen, parsed.cmds_seen);
	return off;
}

static void test_framing_agrees_with_the_parser_on_the_corpus(void **state)
{
	struct send_stream *s;
	unsigned char *buf;
	size_t len, off;
	glob_t g;
	size_t i;
	int fd;

	(void)state;
	assert_int_equal(glob("tests/streams/*.stream", 0, NULL, &g), 0);
	assert_true(g.gl_pathc >= 10);
	for (i = 0; i < g.gl_pathc; i++) {
		buf = read_file(g.gl_pathv[i], &len);
		fd = open(g.gl_pathv[i], O_RDONLY);
		assert_int_equal(send_stream_open(&s, fd), 0);
		for (off = 0; off < len; )
			off = frame_one_stream(buf, len, off, s);
		send_stream_close(s);
		close(fd);
		free(buf);
	}
	globfree(&g);
}

static void test_first_path_needs_the_whole_path(void **state)
{
	struct sb b = { 0 };
	const unsigned char *payload;
	const char *path;
	size_t len;
	uint32_t plen;

	(void)state;
	sb_header(&b, 1);
	sb_cmd(&b, BTRFS_SEND_C_CHMOD);
	sb_str(&b, BTRFS_SEND_A_PATH, "dir/file");
	sb_u64(&b, BTRFS_SEND_A_MODE, 0644);
	sb_end_cmd(&b);
	payload = b.buf + BTRFS_SEND_STREAM_HEADER_LEN + BTRFS_SEND_CMD_HEADER_LEN;
	plen = b.len - BTRFS_SEND_STREAM_HEADER_LEN - BTRFS_SEND_CMD_HEADER_LEN;
	assert_true(send_frame_first_path(payload, plen, plen, &path, &len));
	assert_int_equal(len, 8);
	assert_memory_equal(path, "dir/file", 8);
	assert_false(send_frame_first_path(payload, 11, plen, &path, &len));
	assert_false(send_frame_first_path(payload, 3, plen, &path, &len));
	/* A payload that does not open with PATH. */
	assert_false(send_frame_first_path(payload + 12, plen - 12, plen - 12,
					   &path, &len));
	sb_free(&b);
}

/* A command header: its length, type and CRC, little-endian. */
static void put_cmd_header(unsigned char *h, uint32_t len, uint16_t cmd,
			   uint32_t crc)
{
	h[0] = len;
	h[1] = len >> 8;
	h[2] = len >> 16;
	h[3] = len >> 24;
	h[4] = cmd;
	h[5] = cmd >> 8;
	h[6] = crc;
	h[7] = crc >> 8;
	h[8] = crc >> 16;
	h[9] = crc >> 24;
}

static void test_advance_marks_command_types_below_32_only(void **state)
{
	struct send_frame f = { 0 };
	unsigned char h[BTRFS_SEND_CMD_HEADER_LEN];

	(void)state;
	put_cmd_header(h, 0, BTRFS_SEND_C_WRITE, 0x1234);
	send_frame_advance(&f, h, sizeof(h));
	assert_int_equal(f.pos.cmds_seen, 1U << BTRFS_SEND_C_WRITE);
	assert_int_equal(f.pos.last_crc, 0x1234);
	assert_int_equal(f.pos.cmds, 1);
	assert_false(f.pos.ended);
	/* Type 32 has no bit: it must not wrap around to bit 0. */
	put_cmd_header(h, 0, 32, 0);
	send_frame_advance(&f, h, sizeof(h));
	assert_int_equal(f.pos.cmds_seen, 1U << BTRFS_SEND_C_WRITE);
	assert_int_equal(f.pos.cmds, 2);
	put_cmd_header(h, 0, BTRFS_SEND_C_END, 0);
	send_frame_advance(&f, h, sizeof(h));
	assert_true(f.pos.ended);
	assert_int_equal(f.pos.offset, 3 * sizeof(h));
}

static void test_first_path_that_fills_the_payload_exactly(void **state)
{
	static const unsigned char empty[] = { BTRFS_SEND_A_PATH, 0, 0, 0 };
	static const unsigned char full[] = { BTRFS_SEND_A_PATH, 0, 3, 0,
					      'a', '/', 'b' };
	const char *path = NULL;
	size_t len = 99;

	(void)state;
	/* Only the TLV header: an empty path, still a path. */
	assert_true(send_frame_first_path(empty, sizeof(empty), sizeof(empty),
					  &path, &len));
	assert_int_equal(len, 0);
	assert_ptr_equal(path, (const char *)empty + 4);
	/* A path that ends where the payload ends. */
	assert_true(send_frame_first_path(full, sizeof(full), sizeof(full),
					  &path, &len));
	assert_int_equal(len, 3);
	assert_memory_equal(path, "a/b", 3);
	/* One byte short of it, by what is at hand or by the command. */
	assert_false(send_frame_first_path(full, sizeof(full) - 1,
					   sizeof(full), &path, &len));
	assert_false(send_frame_first_path(full, sizeof(full),
					   sizeof(full) - 1, &path, &len));
}

/* A command of len payload bytes (all zero) in u, its CRC right. */
static const unsigned char *put_cmd(unsigned char *u, uint16_t cmd,
				    uint32_t len)
{
	memset(u + BTRFS_SEND_CMD_HEADER_LEN, 0, len);
	put_cmd_header(u, len, cmd, 0);
	put_cmd_header(u, len, cmd, send_frame_cmd_crc(u,
			u + BTRFS_SEND_CMD_HEADER_LEN, len));
	return u;
}

/* The parser's framing: several streams, "send -e" SUBVOLs, any length. */
static void test_check_names_what_is_wrong_in_its_order(void **state)
{
	static unsigned char u[BTRFS_SEND_BUF_SIZE_V1 + 16];
	struct send_frame f = { 0 };
	struct send_frame_cmd c;

	(void)state;
	memcpy(u, BTRFS_SEND_STREAM_MAGIC "\0\1\0\0\0", 17);
	send_frame_advance(&f, u, BTRFS_SEND_STREAM_HEADER_LEN);
	assert_false(send_frame_header_due(&f));
	/* A stream header where a command is due, named as such. */
	assert_int_equal(send_frame_check(&f, u, true, &c),
			 SEND_FRAME_STREAM_HEADER);
	/* The protocol's limit for the stream's version. */
	put_cmd(u, BTRFS_SEND_C_WRITE, send_frame_max_payload(1));
	assert_int_equal(send_frame_check(&f, u, true, &c), SEND_FRAME_OK);
	assert_int_equal(c.len, send_frame_max_payload(1));
	put_cmd(u, BTRFS_SEND_C_WRITE, send_frame_max_payload(1) + 1);
	assert_int_equal(send_frame_check(&f, u, false, &c),
			 SEND_FRAME_TOO_LONG);
	f.pos.version = 2;
	assert_int_equal(send_frame_check(&f, u, true, &c), SEND_FRAME_OK);
	f.pos.version = 1;
	/* A damaged type: the checksum names it when it is at hand. */
	put_cmd(u, BTRFS_SEND_C_MAX + 1, 5);
	assert_int_equal(send_frame_check(&f, u, true, &c),
			 SEND_FRAME_BAD_TYPE);
	u[4] = BTRFS_SEND_C_UNSPEC;
	assert_int_equal(send_frame_check(&f, u, false, &c),
			 SEND_FRAME_BAD_TYPE);
	assert_int_equal(send_frame_check(&f, u, true, &c),
			 SEND_FRAME_BAD_CRC);
	/* Any known type in any place: the parser judges versions. */
	put_cmd(u, BTRFS_SEND_C_MAX, 0);
	assert_int_equal(send_frame_check(&f, u, true, &c), SEND_FRAME_OK);
	put_cmd(u, BTRFS_SEND_C_SUBVOL, 0);
	send_frame_advance(&f, u, BTRFS_SEND_CMD_HEADER_LEN);
	assert_int_equal(send_frame_check(&f, u, true, &c), SEND_FRAME_OK);
	/* After END another stream may follow. */
	put_cmd(u, BTRFS_SEND_C_END, 0);
	send_frame_advance(&f, u, BTRFS_SEND_CMD_HEADER_LEN);
	assert_true(send_frame_header_due(&f));
}

/* The pump's: one ioctl's stream, no command over its chunk. */
static void test_check_of_one_ioctl_stream(void **state)
{
	static unsigned char u[256];
	struct send_frame f = { .max_len = 100, .one_subvol = true };
	struct send_frame_cmd c;

	(void)state;
	f.pos.headerless = true;
	assert_false(send_frame_header_due(&f));
	put_cmd(u, BTRFS_SEND_C_MKFILE, 0);
	assert_int_equal(send_frame_check(&f, u, false, &c),
			 SEND_FRAME_OUT_OF_PLACE);
	put_cmd(u, BTRFS_SEND_C_SNAPSHOT, 100);
	assert_int_equal(send_frame_check(&f, u, true, &c), SEND_FRAME_OK);
	send_frame_advance(&f, u, BTRFS_SEND_CMD_HEADER_LEN);
	assert_int_equal(f.pos.offset, 110);
	assert_true(f.pos.headerless);
	assert_int_equal(send_frame_check(&f, u, false, &c),
			 SEND_FRAME_OUT_OF_PLACE);
	put_cmd(u, BTRFS_SEND_C_SUBVOL, 0);
	assert_int_equal(send_frame_check(&f, u, false, &c),
			 SEND_FRAME_OUT_OF_PLACE);
	put_cmd(u, BTRFS_SEND_C_MKFILE, 101);
	assert_int_equal(send_frame_check(&f, u, false, &c),
			 SEND_FRAME_TOO_LONG);
	put_cmd(u, BTRFS_SEND_C_END, 0);
	assert_int_equal(send_frame_check(&f, u, false, &c), SEND_FRAME_OK);
	send_frame_advance(&f, u, BTRFS_SEND_CMD_HEADER_LEN);
	/* Nothing after END, not even another stream. */
	assert_false(send_frame_header_due(&f));
	put_cmd(u, BTRFS_SEND_C_MKFILE, 0);
	assert_int_equal(send_frame_check(&f, u, false, &c),
			 SEND_FRAME_OUT_OF_PLACE);
}

/* "send -e": a SUBVOL after commands starts a header-less stream. */
static void test_advance_starts_a_stream_at_a_later_subvol(void **state)
{
	static unsigned char u[64];
	struct send_frame f = { 0 };

	(void)state;
	memcpy(u, BTRFS_SEND_STREAM_MAGIC "\0\2\0\0\0", 17);
	send_frame_advance(&f, u, BTRFS_SEND_STREAM_HEADER_LEN);
	send_frame_advance(&f, put_cmd(u, BTRFS_SEND_C_SUBVOL, 3),
			   BTRFS_SEND_CMD_HEADER_LEN);
	send_frame_advance(&f, put_cmd(u, BTRFS_SEND_C_MKFILE, 4),
			   BTRFS_SEND_CMD_HEADER_LEN);
	assert_false(f.pos.headerless);
	assert_int_equal(f.pos.offset, 17 + 13 + 14);
	send_frame_advance(&f, put_cmd(u, BTRFS_SEND_C_SNAPSHOT, 5),
			   BTRFS_SEND_CMD_HEADER_LEN);
	assert_true(f.pos.headerless);
	assert_int_equal(f.pos.version, 2);
	assert_int_equal(f.pos.offset, 15);
	assert_int_equal(f.pos.cmds, 1);
	assert_int_equal(f.pos.cmds_seen, 1U << BTRFS_SEND_C_SNAPSHOT);
	assert_int_equal(f.pos.chain, crc32c_update(0, u, 10));
	/* A stream header starts a stream with one. */
	memcpy(u, BTRFS_SEND_STREAM_MAGIC "\0\1\0\0\0", 17);
	send_frame_advance(&f, u, BTRFS_SEND_STREAM_HEADER_LEN);
	assert_false(f.pos.headerless);
	assert_int_equal(f.pos.version, 1);
	assert_int_equal(f.pos.cmds, 0);
	assert_int_equal(f.pos.offset, 17);
}

static void test_replay_against_what_was_taken(void **state)
{
	const struct send_stream_pos want = { .offset = 100, .cmds = 3,
					      .chain = 7, .last_crc = 9 };
	struct send_stream_pos pos = want;
	struct send_frame f = { .pos = { .offset = 5, .cmds = 2, .version = 2,
					 .headerless = true, .ended = true } };

	(void)state;
	send_frame_restart(&f);
	assert_int_equal(f.pos.offset, 0);
	assert_int_equal(f.pos.cmds, 0);
	assert_false(f.pos.ended);
	assert_int_equal(f.pos.version, 2);
	assert_true(f.pos.headerless);
	/* Before want: a unit that ends there at most was taken. */
	pos.offset = 40;
	assert_int_equal(send_frame_replay(&pos, 60, &want), SEND_FRAME_TAKEN);
	assert_int_equal(send_frame_replay(&pos, 61, &want), SEND_FRAME_ACROSS);
	assert_int_equal(send_frame_replay(&pos, 0, &want), SEND_FRAME_TAKEN);
	pos.offset = 101;
	assert_int_equal(send_frame_replay(&pos, 0, &want), SEND_FRAME_ACROSS);
	/* At want: the same commands, or not. */
	pos = want;
	assert_int_equal(send_frame_replay(&pos, 0, &want), SEND_FRAME_OK);
	assert_int_equal(send_frame_replay(&pos, 10, &want), SEND_FRAME_OK);
	pos.chain++;
	assert_int_equal(send_frame_replay(&pos, 0, &want),
			 SEND_FRAME_OTHER_CONTENT);
	pos.cmds++;
	assert_int_equal(send_frame_replay(&pos, 0, &want),
			 SEND_FRAME_OTHER_CMDS);
	pos = want;
	pos.last_crc++;
	assert_int_equal(send_frame_replay(&pos, 0, &want),
			 SEND_FRAME_OTHER_CONTENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_framing_agrees_with_the_parser_on_the_corpus),
		cmocka_unit_test(test_first_path_needs_the_whole_path),
		cmocka_unit_test(test_advance_marks_command_types_below_32_only),
		cmocka_unit_test(test_first_path_that_fills_the_payload_exactly),
		cmocka_unit_test(test_check_names_what_is_wrong_in_its_order),
		cmocka_unit_test(test_check_of_one_ioctl_stream),
		cmocka_unit_test(test_advance_starts_a_stream_at_a_later_subvol),
		cmocka_unit_test(test_replay_against_what_was_taken),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
