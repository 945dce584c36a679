// SPDX-License-Identifier: GPL-2.0-only
/*
 * The receive side of resumable transfers, on a plain temporary
 * directory: the checks made before anything changes (the record's state,
 * the partial subvolume, the continuation's token, the skipped prefix),
 * saving the state at a stop, --resume-token and --abort.  The few
 * libbtrfsutil calls are answered by this file, from fake_subvol: the
 * executable's definitions come before the shared library's.
 */
#include <btrfsutil.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
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

#include "receive-resume.h"
#include "stream-builder.h"
#include "utils.h"

static const uint8_t local_uuid[16] = { 9, 8, 7, 6, 5, 4, 3, 2, 1 };
static const uint8_t sender_uuid[16] = { 0xaa, 0xbb, 0xcc, 1, 2, 3 };
static const uint8_t parent_uuid[16] = { 0x11, 0x22, 0x33, 4, 5, 6 };
#define LOCAL_CTRANSID		77
#define SENDER_CTRANSID		500

/* What the fake libbtrfsutil says of the partial subvolume. */
static struct {
	uint8_t uuid[16];
	uint8_t received_uuid[16];
	uint64_t ctransid;
	bool ro;
	enum btrfs_util_error info_err;
	enum btrfs_util_error ro_err;
	enum btrfs_util_error delete_err;
	int deleted;
	char deleted_name[64];
} fake;

enum btrfs_util_error btrfs_util_subvolume_info_fd(int fd, uint64_t id,
		struct btrfs_util_subvolume_info *info)
{
	(void)fd;
	(void)id;
	if (fake.info_err)
		return fake.info_err;
	memset(info, 0, sizeof(*info));
	memcpy(info->uuid, fake.uuid, 16);
	memcpy(info->received_uuid, fake.received_uuid, 16);
	info->ctransid = fake.ctransid;
	return BTRFS_UTIL_OK;
}

enum btrfs_util_error btrfs_util_subvolume_info(const char *path, uint64_t id,
		struct btrfs_util_subvolume_info *info)
{
	(void)path;
	return btrfs_util_subvolume_info_fd(-1, id, info);
}

enum btrfs_util_error btrfs_util_get_subvolume_read_only_fd(int fd, bool *ro)
{
	(void)fd;
	if (fake.ro_err)
		return fake.ro_err;
	*ro = fake.ro;
	return BTRFS_UTIL_OK;
}

enum btrfs_util_error btrfs_util_delete_subvolume_fd(int parent_fd,
						     const char *name,
						     int flags)
{
	(void)parent_fd;
	(void)flags;
	if (fake.delete_err)
		return fake.delete_err;
	fake.deleted++;
	snprintf(fake.deleted_name, sizeof(fake.deleted_name), "%s", name);
	return BTRFS_UTIL_OK;
}

static int no_finish(struct receive_ctx *ctx, bool complete)
{
	(void)ctx;
	(void)complete;
	return 0;
}

static void no_release(struct receive_ctx *ctx)
{
	(void)ctx;
}

static const struct receive_dest_ops fake_ops = {
	.finish_subvol = no_finish,
	.release = no_release,
};

/* DIR holds the partial subvolume "sub", a plain directory. */
struct dest {
	char path[64];
	char sub[80];
	int fd;
	struct receive_ctx ctx;
};

static void fake_matches_partial(void)
{
	memset(&fake, 0, sizeof(fake));
	memcpy(fake.uuid, local_uuid, 16);
	fake.ctransid = LOCAL_CTRANSID;
}

static int dest_setup(void **state)
{
	struct dest *d = calloc(1, sizeof(*d));

	if (!d)
		return -1;
	strcpy(d->path, "/tmp/unit-receive-resume.XXXXXX");
	if (!mkdtemp(d->path))
		return -1;
	snprintf(d->sub, sizeof(d->sub), "%s/sub", d->path);
	d->fd = open(d->path, O_RDONLY | O_DIRECTORY);
	if (d->fd < 0 || mkdirat(d->fd, "sub", 0755) < 0)
		return -1;
	receive_ctx_init(&d->ctx, dup(d->fd), &fake_ops, NULL);
	fake_matches_partial();
	*state = d;
	return 0;
}

static int dest_teardown(void **state)
{
	struct dest *d = *state;
	struct dirent *de;
	DIR *dir;

	receive_ctx_release(&d->ctx);
	unlinkat(d->fd, "sub", AT_REMOVEDIR);
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

/* The subvolume being received is "sub", open as ctx->cur. */
static void open_current(struct dest *d)
{
	d->ctx.cur.active = true;
	d->ctx.cur.fd = openat(d->fd, "sub", O_RDONLY | O_DIRECTORY);
	assert_true(d->ctx.cur.fd >= 0);
	strcpy(d->ctx.cur.name, "sub");
	memcpy(d->ctx.cur.uuid, sender_uuid, 16);
	d->ctx.cur.ctransid = SENDER_CTRANSID;
	memcpy(d->ctx.cur.parent_uuid, parent_uuid, 16);
	d->ctx.cur.parent_ctransid = 3;
}

/*
 * A full stream of "sub": header, SUBVOL, MKFILE of each name, END.  pos
 * (if not NULL) is where it stands after the first stop commands.
 */
static void build_stream(struct sb *b, const char *const *names, int n)
{
	int i;

	sb_header(b, 1);
	sb_cmd(b, BTRFS_SEND_C_SUBVOL);
	sb_str(b, BTRFS_SEND_A_PATH, "sub");
	sb_attr(b, BTRFS_SEND_A_UUID, sender_uuid, 16);
	sb_u64(b, BTRFS_SEND_A_CTRANSID, SENDER_CTRANSID);
	sb_end_cmd(b);
	for (i = 0; i < n; i++) {
		sb_cmd(b, BTRFS_SEND_C_MKFILE);
		sb_str(b, BTRFS_SEND_A_PATH, names[i]);
		sb_u64(b, BTRFS_SEND_A_INO, 257 + i);
		sb_end_cmd(b);
	}
	sb_simple(b, BTRFS_SEND_C_END);
}

static const char *const abc[] = { "a", "b", "c" };

/* Where a parser of the stream stands after its first cmds commands. */
static void position_after(const struct sb *b, int cmds,
			   struct send_stream_pos *pos)
{
	static const struct send_stream_ops no_ops;
	struct send_stream *s;
	int fd = sb_fd(b), i;

	assert_int_equal(send_stream_open(&s, fd), 0);
	for (i = 0; i < cmds; i++)
		send_stream_next(s, &no_ops, NULL);
	send_stream_position(s, pos);
	send_stream_close(s);
	close(fd);
}

/* A record of "sub" stopped at pos, as a first receive leaves it. */
static void stopped_record(struct resume_record *r,
			   const struct send_stream_pos *pos)
{
	memset(r, 0, sizeof(*r));
	r->state = RESUME_STOPPED;
	resume_token_from_pos(&r->tok, pos);
	memcpy(r->tok.uuid, sender_uuid, 16);
	r->tok.ctransid = SENDER_CTRANSID;
	memcpy(r->tok.parent_uuid, parent_uuid, 16);
	r->tok.parent_ctransid = 3;
	memcpy(r->local_uuid, local_uuid, 16);
	r->local_ctransid = LOCAL_CTRANSID;
	strcpy(r->cap_path, "a");
	r->cap_value[0] = 1;
	r->cap_len = 1;
}

/* A stopped record of the full stream after SUBVOL and MKFILE a. */
static void write_stopped(struct dest *d, struct resume_record *r)
{
	struct sb b = { 0 };
	struct send_stream_pos pos;

	build_stream(&b, abc, 3);
	position_after(&b, 2, &pos);
	stopped_record(r, &pos);
	assert_int_equal(resume_record_write(d->fd, "sub", r), 0);
	sb_free(&b);
}

static enum resume_state state_of(struct dest *d)
{
	struct resume_record r;

	assert_int_equal(resume_record_read(d->fd, "sub", &r), 0);
	return r.state;
}

static bool has_record(struct dest *d)
{
	struct resume_record r;

	return resume_record_read(d->fd, "sub", &r) == 0;
}

static void set_state(struct dest *d, enum resume_state state)
{
	struct resume_record r;

	assert_int_equal(resume_record_read(d->fd, "sub", &r), 0);
	r.state = state;
	assert_int_equal(resume_record_write(d->fd, "sub", &r), 0);
}

/* resume_print_token(path), its stdout in out. */
static int print_token(const char *path, char *out, size_t size)
{
	int saved = dup(1), p[2], ret;
	ssize_t n;

	assert_int_equal(pipe(p), 0);
	fflush(stdout);
	dup2(p[1], 1);
	ret = resume_print_token(path);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	close(p[1]);
	n = read(p[0], out, size - 1);
	close(p[0]);
	out[n > 0 ? n : 0] = '\0';
	return ret;
}

static void test_token_of_a_stopped_partial_subvolume_is_printed(void **state)
{
	struct dest *d = *state;
	struct resume_record r;
	struct resume_token t;
	char out[256];
	const char *why;

	write_stopped(d, &r);
	assert_int_equal(print_token(d->sub, out, sizeof(out)), 0);
	assert_int_equal(strlen(out), 117);
	out[116] = '\0';
	assert_int_equal(resume_token_decode(out, &t, &why), 0);
	assert_true(resume_token_equal(&t, &r.tok));
}

static void test_token_refused_unless_the_record_is_stopped(void **state)
{
	static const enum resume_state refused[] = {
		RESUME_RECEIVING, RESUME_APPLYING, RESUME_FAILED,
	};
	struct dest *d = *state;
	struct resume_record r;
	char out[256];
	size_t i;

	write_stopped(d, &r);
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		set_state(d, refused[i]);
		assert_int_equal(print_token(d->sub, out, sizeof(out)),
				 -ESTALE);
		assert_string_equal(out, "");
	}
}

static void expect_partial_refused(struct dest *d, int err)
{
	char out[256];

	assert_int_equal(print_token(d->sub, out, sizeof(out)), err);
	assert_string_equal(out, "");
	fake_matches_partial();
	assert_int_equal(print_token(d->sub, out, sizeof(out)), 0);
}

static void test_token_refused_when_the_partial_subvolume_changed(void **state)
{
	struct dest *d = *state;
	struct resume_record r;

	write_stopped(d, &r);
	fake.uuid[0] ^= 1;
	expect_partial_refused(d, -ESTALE);
	fake.ro = true;
	expect_partial_refused(d, -ESTALE);
	fake.received_uuid[15] = 1;
	expect_partial_refused(d, -ESTALE);
	fake.ctransid = LOCAL_CTRANSID + 1;
	expect_partial_refused(d, -ESTALE);
	fake.info_err = BTRFS_UTIL_ERROR_NOT_BTRFS;
	expect_partial_refused(d, -EINVAL);
	fake.ro_err = BTRFS_UTIL_ERROR_NOT_SUBVOLUME;
	expect_partial_refused(d, -EINVAL);
	assert_int_equal(unlinkat(d->fd, "sub", AT_REMOVEDIR), 0);
	assert_int_equal(resume_print_token(d->sub), -ENOENT);
	assert_int_equal(mkdirat(d->fd, "sub", 0755), 0);
}

static void test_token_refused_without_or_with_a_damaged_record(void **state)
{
	struct dest *d = *state;
	struct resume_record r;
	char out[256];
	int fd;

	assert_int_equal(print_token(d->sub, out, sizeof(out)), -ENOENT);
	write_stopped(d, &r);
	fd = openat(d->fd, ".sub.btrfs-receive-resume", O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "X", 1, 30), 1);
	close(fd);
	assert_int_equal(print_token(d->sub, out, sizeof(out)), -EBADMSG);
	assert_string_equal(out, "");
}

static void test_paths_that_name_no_subvolume_are_refused(void **state)
{
	struct dest *d = *state;
	char path[128];

	(void)d;
	assert_int_equal(resume_print_token("/"), -EINVAL);
	assert_int_equal(resume_abort("/"), -EINVAL);
	snprintf(path, sizeof(path), "%s/.", d->path);
	assert_int_equal(resume_print_token(path), -EINVAL);
	snprintf(path, sizeof(path), "%s/..", d->path);
	assert_int_equal(resume_abort(path), -EINVAL);
	assert_int_equal(resume_print_token(""), -EINVAL);
	snprintf(path, sizeof(path), "%s/none/sub", d->path);
	assert_int_equal(resume_print_token(path), -ENOENT);
	assert_int_equal(resume_abort(path), -ENOENT);
}

static void test_abort_deletes_the_recorded_subvolume(void **state)
{
	struct dest *d = *state;
	struct resume_record r;

	write_stopped(d, &r);
	assert_int_equal(resume_abort(d->sub), 0);
	assert_int_equal(fake.deleted, 1);
	assert_string_equal(fake.deleted_name, "sub");
	assert_false(has_record(d));
}

static void test_abort_refuses_another_subvolume(void **state)
{
	struct dest *d = *state;
	struct resume_record r;

	write_stopped(d, &r);
	fake.uuid[3] ^= 0x40;
	assert_int_equal(resume_abort(d->sub), -ESTALE);
	assert_int_equal(fake.deleted, 0);
	assert_true(has_record(d));
}

static void test_abort_keeps_the_record_when_delete_fails(void **state)
{
	struct dest *d = *state;
	struct resume_record r;

	write_stopped(d, &r);
	fake.delete_err = BTRFS_UTIL_ERROR_SNAP_DESTROY_FAILED;
	assert_int_equal(resume_abort(d->sub), -EIO);
	assert_true(has_record(d));
}

static void test_abort_of_a_gone_subvolume_removes_its_record(void **state)
{
	struct dest *d = *state;
	struct resume_record r;

	assert_int_equal(resume_abort(d->sub), -ENOENT);
	write_stopped(d, &r);
	fake.info_err = BTRFS_UTIL_ERROR_STATFS_FAILED;
	assert_int_equal(resume_abort(d->sub), 0);
	assert_int_equal(fake.deleted, 0);
	assert_false(has_record(d));
}

static void test_reserve_writes_a_receiving_record(void **state)
{
	struct dest *d = *state;
	struct resume_marks marks = { 0 };
	struct resume_record r;

	open_current(d);
	assert_int_equal(resume_reserve(&d->ctx, &marks), 0);
	assert_true(marks.has_record);
	assert_true(marks.record_reserved);
	assert_int_equal(resume_record_read(d->fd, "sub", &r), 0);
	assert_int_equal(r.state, RESUME_RECEIVING);
	assert_memory_equal(r.local_uuid, local_uuid, 16);
	assert_memory_equal(r.tok.uuid, sender_uuid, 16);
	assert_int_equal(r.tok.ctransid, SENDER_CTRANSID);
	assert_memory_equal(r.tok.parent_uuid, parent_uuid, 16);
}

static void test_mark_failed_spares_a_reservation(void **state)
{
	struct dest *d = *state;
	struct resume_marks marks = { .has_record = true };
	struct resume_record r;

	open_current(d);
	resume_mark_failed(&d->ctx, &marks);
	assert_false(has_record(d));
	write_stopped(d, &r);
	marks.record_reserved = true;
	resume_mark_failed(&d->ctx, &marks);
	assert_int_equal(state_of(d), RESUME_STOPPED);
	marks.record_reserved = false;
	resume_mark_failed(&d->ctx, &marks);
	assert_int_equal(state_of(d), RESUME_FAILED);
}

static void test_finished_subvolume_drops_its_record(void **state)
{
	struct dest *d = *state;
	struct resume_marks marks = { .has_record = true };
	struct resume_record r;

	open_current(d);
	write_stopped(d, &r);
	/* Complete but its marking failed: the record stays. */
	assert_int_equal(resume_subvol_finished(&d->ctx, &marks, true, -EIO),
			 -EIO);
	assert_true(has_record(d));
	assert_false(marks.has_record);
	/* Incomplete, a state to resume: it stays. */
	marks.has_record = true;
	assert_int_equal(resume_subvol_finished(&d->ctx, &marks, false, 0), 0);
	assert_true(has_record(d));
	/* Complete without a record of ours: it stays. */
	assert_int_equal(resume_subvol_finished(&d->ctx, &marks, true, 0), 0);
	assert_true(has_record(d));
	marks.has_record = true;
	assert_int_equal(resume_subvol_finished(&d->ctx, &marks, true, 0), 0);
	assert_false(has_record(d));
	/* Incomplete with only the reservation: it goes. */
	write_stopped(d, &r);
	marks.record_reserved = true;
	assert_int_equal(resume_subvol_finished(&d->ctx, &marks, false, 0), 0);
	assert_false(has_record(d));
	assert_false(marks.record_reserved);
}

static void test_stop_before_a_retryable_command_saves_it(void **state)
{
	struct dest *d = *state;
	struct resume_marks marks = { .has_record = true,
				      .record_reserved = true };
	struct receive_stop stop = { .retry_last = true, .errors = 1 };
	struct resume_record want, r;

	open_current(d);
	assert_int_equal(resume_reserve(&d->ctx, &marks), 0);
	write_stopped(d, &want);
	stop.before = want.tok.pos;
	d->ctx.cap_len = 0;
	resume_after_stop(NULL, &d->ctx, &marks, &stop, d->path);
	assert_false(marks.record_reserved);
	assert_int_equal(resume_record_read(d->fd, "sub", &r), 0);
	assert_int_equal(r.state, RESUME_STOPPED);
	assert_true(resume_token_equal(&r.tok, &want.tok));
	assert_memory_equal(r.local_uuid, local_uuid, 16);
	assert_int_equal(r.local_ctransid, LOCAL_CTRANSID);
}

static void test_stop_after_two_errors_marks_the_record_failed(void **state)
{
	struct dest *d = *state;
	struct resume_marks marks = { .has_record = true };
	struct receive_stop stop = { .retry_last = true, .errors = 2 };
	struct resume_record r;

	open_current(d);
	write_stopped(d, &r);
	resume_after_stop(NULL, &d->ctx, &marks, &stop, d->path);
	assert_int_equal(state_of(d), RESUME_FAILED);
}

static void test_stop_of_a_broken_stream_saves_the_parser_position(
	void **state)
{
	static const struct send_stream_ops no_ops;
	struct dest *d = *state;
	struct resume_marks marks = { 0 };
	struct receive_stop stop = { .stream_broken = true, .errors = 1 };
	struct send_stream_pos pos;
	struct send_stream *s;
	struct resume_record r;
	struct sb b = { 0 };
	int fd;

	open_current(d);
	build_stream(&b, abc, 3);
	fd = sb_fd(&b);
	assert_int_equal(send_stream_open(&s, fd), 0);
	send_stream_next(s, &no_ops, NULL);
	send_stream_next(s, &no_ops, NULL);
	send_stream_position(s, &pos);
	resume_after_stop(s, &d->ctx, &marks, &stop, d->path);
	assert_int_equal(resume_record_read(d->fd, "sub", &r), 0);
	assert_int_equal(r.state, RESUME_STOPPED);
	assert_int_equal(r.tok.pos.offset, pos.offset);
	assert_int_equal(r.tok.pos.cmds, 2);
	/* A failed subvolume is not resumable: its record fails. */
	d->ctx.cur.failed = true;
	marks.has_record = true;
	resume_after_stop(s, &d->ctx, &marks, &stop, d->path);
	assert_int_equal(state_of(d), RESUME_FAILED);
	send_stream_close(s);
	close(fd);
	sb_free(&b);
}

static void test_stop_without_a_subvolume_or_marks_saves_nothing(
	void **state)
{
	struct dest *d = *state;
	struct resume_marks marks = { .has_record = true };
	struct receive_stop stop = { .retry_last = true, .errors = 1 };
	struct resume_record r;

	write_stopped(d, &r);
	set_state(d, RESUME_APPLYING);
	strcpy(d->ctx.cur.name, "sub");
	resume_after_stop(NULL, &d->ctx, &marks, &stop, d->path);
	assert_int_equal(state_of(d), RESUME_APPLYING);
	open_current(d);
	resume_after_stop(NULL, &d->ctx, NULL, &stop, d->path);
	assert_int_equal(state_of(d), RESUME_APPLYING);
}

/* Each way saving fails leaves the old record failed, not stopped. */
static void test_stop_that_cannot_be_saved_fails_the_record(void **state)
{
	struct dest *d = *state;
	struct resume_marks marks = { .has_record = true };
	struct receive_stop stop = { .retry_last = true, .errors = 1 };
	struct resume_record r;
	int fd;

	open_current(d);
	write_stopped(d, &r);
	stop.before = r.tok.pos;
	d->ctx.cur.lost_create = true;
	resume_after_stop(NULL, &d->ctx, &marks, &stop, d->path);
	assert_int_equal(state_of(d), RESUME_FAILED);

	d->ctx.cur.lost_create = false;
	set_state(d, RESUME_STOPPED);
	fake.info_err = BTRFS_UTIL_ERROR_NOT_SUBVOLUME;
	resume_after_stop(NULL, &d->ctx, &marks, &stop, d->path);
	assert_int_equal(state_of(d), RESUME_FAILED);

	fake.info_err = 0;
	set_state(d, RESUME_STOPPED);
	fd = d->ctx.cur.fd;
	d->ctx.cur.fd = 1000;
	resume_after_stop(NULL, &d->ctx, &marks, &stop, d->path);
	d->ctx.cur.fd = fd;
	assert_int_equal(state_of(d), RESUME_FAILED);
}

/* The frame that continues r, then the stream from r's offset on. */
static int continuation(const struct resume_token *t, const struct sb *full,
			size_t keep_frame)
{
	unsigned char frame[RESUME_FRAME_LEN];
	struct sb b = { 0 };
	int fd;

	resume_frame_encode(t, frame);
	sb_put(&b, frame, keep_frame);
	if (keep_frame == sizeof(frame))
		sb_put(&b, full->buf + t->pos.offset,
		       full->len - t->pos.offset);
	fd = sb_fd(&b);
	sb_free(&b);
	return fd;
}

static int take_up(struct dest *d, int fd, bool skip,
		   struct resume_marks *marks, struct send_stream **sp)
{
	struct send_stream *s;
	int ret;

	assert_int_equal(send_stream_open(&s, fd), 0);
	ret = resume_take_up(s, &d->ctx, marks, skip, NULL);
	if (sp)
		*sp = s;
	else
		send_stream_close(s);
	return ret;
}

/* The command that the parser reads next is MKFILE of name. */
static const char *mkfile_path;

static int note_mkfile(const char *path, void *user)
{
	(void)user;
	mkfile_path = path;
	return 0;
}

static void expect_next_mkfile(struct send_stream *s, const char *name,
			       uint64_t offset)
{
	static const struct send_stream_ops ops = { .mkfile = note_mkfile };

	mkfile_path = NULL;
	assert_int_equal(send_stream_next(s, &ops, NULL), SEND_STREAM_CMD);
	assert_non_null(mkfile_path);
	assert_string_equal(mkfile_path, name);
	assert_int_equal(send_stream_cmd_offset(s), offset);
}

static void assert_reopened(struct dest *d, const struct resume_marks *marks)
{
	assert_int_equal(state_of(d), RESUME_APPLYING);
	assert_true(marks->has_record);
	assert_true(d->ctx.cur.active);
	assert_string_equal(d->ctx.cur.name, "sub");
	assert_memory_equal(d->ctx.cur.uuid, sender_uuid, 16);
	assert_int_equal(d->ctx.cur.ctransid, SENDER_CTRANSID);
	assert_memory_equal(d->ctx.cur.parent_uuid, parent_uuid, 16);
	assert_int_equal(d->ctx.cap_len, 1);
	assert_string_equal(d->ctx.cap_path, "a");
}

static void test_continuation_reopens_where_the_receive_stopped(void **state)
{
	struct dest *d = *state;
	struct resume_marks marks = { 0 };
	struct resume_record r;
	struct send_stream *s;
	struct sb full = { 0 };
	int fd;

	build_stream(&full, abc, 3);
	write_stopped(d, &r);
	fd = continuation(&r.tok, &full, RESUME_FRAME_LEN);
	assert_int_equal(take_up(d, fd, false, &marks, &s), 0);
	assert_reopened(d, &marks);
	expect_next_mkfile(s, "b", r.tok.pos.offset);
	send_stream_close(s);
	close(fd);
	sb_free(&full);
}

/* A refused continuation changes nothing: the record stays stopped. */
static void expect_continuation_refused(struct dest *d,
					const struct resume_token *t,
					const struct sb *full, size_t keep,
					int err)
{
	struct resume_marks marks = { 0 };
	int fd = continuation(t, full, keep);

	assert_int_equal(take_up(d, fd, true, &marks, NULL), err);
	close(fd);
	assert_false(marks.has_record);
	assert_false(d->ctx.cur.active);
}

static void test_continuation_refusals_change_nothing(void **state)
{
	struct dest *d = *state;
	struct resume_record r;
	struct resume_token t;
	struct sb full = { 0 };

	build_stream(&full, abc, 3);
	write_stopped(d, &r);
	expect_continuation_refused(d, &r.tok, &full, RESUME_FRAME_LEN - 1,
				    -EIO);
	t = r.tok;
	t.ctransid++;
	expect_continuation_refused(d, &t, &full, RESUME_FRAME_LEN, -ENOENT);
	t = r.tok;
	t.pos.chain ^= 1;
	expect_continuation_refused(d, &t, &full, RESUME_FRAME_LEN, -ESTALE);
	t = r.tok;
	t.pos.cmds = 0;
	expect_continuation_refused(d, &t, &full, RESUME_FRAME_LEN, -EINVAL);
	fake.ctransid++;
	expect_continuation_refused(d, &r.tok, &full, RESUME_FRAME_LEN,
				    -ESTALE);
	fake_matches_partial();
	assert_int_equal(state_of(d), RESUME_STOPPED);
	set_state(d, RESUME_FAILED);
	expect_continuation_refused(d, &r.tok, &full, RESUME_FRAME_LEN,
				    -ESTALE);
	assert_int_equal(state_of(d), RESUME_FAILED);
	sb_free(&full);
}

static void test_take_up_leaves_other_input_alone(void **state)
{
	struct dest *d = *state;
	struct resume_marks marks = { 0 };
	struct resume_record r;
	struct send_stream *s;
	struct sb full = { 0 };
	int fd;

	build_stream(&full, abc, 3);
	write_stopped(d, &r);
	fd = continuation(&r.tok, &full, RESUME_FRAME_LEN);
	/* Not a btrfs destination: not even a frame is looked at. */
	assert_int_equal(take_up(d, fd, true, NULL, NULL), 0);
	close(fd);
	fd = sb_fd(&full);
	assert_int_equal(take_up(d, fd, false, &marks, &s), 0);
	assert_false(marks.has_record);
	assert_int_equal(state_of(d), RESUME_STOPPED);
	assert_int_equal(send_stream_next(s, &(struct send_stream_ops){ 0 },
					  NULL), SEND_STREAM_CMD);
	assert_int_equal(send_stream_cmd_offset(s),
			 BTRFS_SEND_STREAM_HEADER_LEN);
	send_stream_close(s);
	close(fd);
	sb_free(&full);
}

static void test_resume_skips_the_applied_prefix(void **state)
{
	struct dest *d = *state;
	struct resume_marks marks = { 0 };
	struct resume_record r;
	struct send_stream *s;
	struct sb full = { 0 };
	int fd;

	build_stream(&full, abc, 3);
	write_stopped(d, &r);
	fd = sb_fd(&full);
	assert_int_equal(take_up(d, fd, true, &marks, &s), 0);
	assert_reopened(d, &marks);
	expect_next_mkfile(s, "b", r.tok.pos.offset);
	send_stream_close(s);
	close(fd);
	sb_free(&full);
}

static void expect_skip_refused(struct dest *d, const struct sb *b, int err)
{
	struct resume_marks marks = { 0 };
	int fd = sb_fd(b);

	assert_int_equal(take_up(d, fd, true, &marks, NULL), err);
	close(fd);
	assert_false(marks.has_record);
	assert_false(d->ctx.cur.active);
	assert_int_equal(state_of(d), RESUME_STOPPED);
}

static void test_resume_refuses_a_stream_that_is_not_the_one(void **state)
{
	static const char *const xbc[] = { "x", "b", "c" };
	struct dest *d = *state;
	struct resume_record r;
	struct sb other = { 0 }, full = { 0 }, cut = { 0 };

	write_stopped(d, &r);
	build_stream(&other, xbc, 3);
	expect_skip_refused(d, &other, -ESTALE);
	/* A stream of no interrupted subvolume: the input ends first. */
	r.tok.ctransid++;
	assert_int_equal(resume_record_write(d->fd, "sub", &r), 0);
	build_stream(&full, abc, 3);
	expect_skip_refused(d, &full, -ENOENT);
	r.tok.ctransid--;
	assert_int_equal(resume_record_write(d->fd, "sub", &r), 0);
	fake.ro = true;
	expect_skip_refused(d, &full, -ESTALE);
	fake_matches_partial();
	/* A prefix cut short inside a command is an error of the input. */
	sb_put(&cut, full.buf, r.tok.pos.offset - 3);
	expect_skip_refused(d, &cut, -EIO);
	sb_free(&other);
	sb_free(&full);
	sb_free(&cut);
}

/* stderr into a temporary file until captured_text(). */
static int saved_stderr = -1;
static FILE *captured;

static void capture_stderr(void)
{
	fflush(stderr);
	captured = tmpfile();
	assert_non_null(captured);
	saved_stderr = dup(STDERR_FILENO);
	assert_true(dup2(fileno(captured), STDERR_FILENO) >= 0);
}

static void captured_text(char *buf, size_t size)
{
	size_t n;

	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	rewind(captured);
	n = fread(buf, 1, size - 1, captured);
	buf[n] = '\0';
	fclose(captured);
}

static void assert_contains(const char *text, const char *part)
{
	if (!strstr(text, part))
		fail_msg("\"%s\" lacks \"%s\"", text, part);
}

static void expect_state_refused(struct dest *d, enum resume_state state,
				 const char *why)
{
	char err[1024];

	set_state(d, state);
	capture_stderr();
	assert_int_equal(resume_print_token(d->sub), -ESTALE);
	captured_text(err, sizeof(err));
	assert_contains(err, why);
	/* One ERROR line: the refusal stops at its first reason. */
	assert_ptr_equal(strchr(err, '\n'), err + strlen(err) - 1);
}

static void test_token_refusals_say_why(void **state)
{
	struct dest *d = *state;
	struct resume_record r;

	write_stopped(d, &r);
	expect_state_refused(d, RESUME_RECEIVING,
			     "sub has no resume state: it is being received");
	expect_state_refused(d, RESUME_APPLYING,
			     "sub cannot be resumed: a resumed receive was stopped while applying commands");
	expect_state_refused(d, RESUME_FAILED,
			     "sub cannot be resumed: a resumed receive failed with an error that cannot be resumed");
}

/*
 * Each directory opened may get fd 0: the destination's of
 * --resume-token, the partial subvolume's of a continuation.
 */
static void test_directories_on_fd_0_are_used(void **state)
{
	struct dest *d = *state;
	struct resume_marks marks = { 0 };
	struct resume_record r;
	struct send_stream *s;
	struct sb full = { 0 };
	int in = dup(STDIN_FILENO), fd, ret;

	write_stopped(d, &r);
	close(STDIN_FILENO);
	ret = resume_print_token(d->sub);
	assert_int_equal(dup2(in, STDIN_FILENO), STDIN_FILENO);
	assert_int_equal(ret, 0);

	build_stream(&full, abc, 3);
	fd = continuation(&r.tok, &full, RESUME_FRAME_LEN);
	close(STDIN_FILENO);
	ret = take_up(d, fd, false, &marks, &s);
	receive_close_subvol(&d->ctx, false);
	assert_int_equal(dup2(in, STDIN_FILENO), STDIN_FILENO);
	assert_int_equal(ret, 0);
	assert_int_equal(state_of(d), RESUME_APPLYING);
	send_stream_close(s);
	close(fd);

	/* On fd 0 a changed partial subvolume is still refused. */
	set_state(d, RESUME_STOPPED);
	fake.ctransid++;
	fd = continuation(&r.tok, &full, RESUME_FRAME_LEN);
	close(STDIN_FILENO);
	ret = take_up(d, fd, false, &marks, NULL);
	assert_int_equal(dup2(in, STDIN_FILENO), STDIN_FILENO);
	close(in);
	assert_int_equal(ret, -ESTALE);
	assert_int_equal(state_of(d), RESUME_STOPPED);
	close(fd);
	sb_free(&full);
}

static void test_input_of_no_interrupted_receive_says_so(void **state)
{
	struct dest *d = *state;
	struct resume_marks marks = { 0 };
	struct resume_record r;
	struct resume_token t;
	struct sb full = { 0 };
	char err[1024];
	int fd;

	build_stream(&full, abc, 3);
	write_stopped(d, &r);
	t = r.tok;
	t.ctransid++;
	fd = continuation(&t, &full, RESUME_FRAME_LEN);
	capture_stderr();
	assert_int_equal(take_up(d, fd, false, &marks, NULL), -ENOENT);
	captured_text(err, sizeof(err));
	close(fd);
	assert_contains(err, "(ctransid 501), but no interrupted receive of it here");
	assert_ptr_equal(strchr(err, '\n'), err + strlen(err) - 1);
	r.tok.ctransid++;
	assert_int_equal(resume_record_write(d->fd, "sub", &r), 0);
	fd = sb_fd(&full);
	capture_stderr();
	assert_int_equal(take_up(d, fd, true, &marks, NULL), -ENOENT);
	captured_text(err, sizeof(err));
	close(fd);
	assert_string_equal(err, "ERROR: no stream in the input continues an interrupted receive here\n");
	sb_free(&full);
}

/* What -v and -vv add: where a receive stopped, resumes, what it skips. */
static void test_verbose_messages_of_stop_and_resume(void **state)
{
	struct dest *d = *state;
	struct resume_marks marks = { 0 };
	struct receive_stop stop = { .retry_last = true, .errors = 1 };
	struct resume_record r;
	struct send_stream *s;
	struct sb full = { 0 };
	char err[1024];
	int fd, v;

	build_stream(&full, abc, 3);
	open_current(d);
	write_stopped(d, &r);
	stop.before = r.tok.pos;
	for (v = 0; v <= 2; v++) {
		verbosity = v;
		capture_stderr();
		resume_after_stop(NULL, &d->ctx, &marks, &stop, d->path);
		captured_text(err, sizeof(err));
		assert_int_equal(!!strstr(err, "Receive of sub stopped at stream offset 93; resume it with the token of 'btrfs receive --resume-token "), v >= 1);
		receive_close_subvol(&d->ctx, false);
		fd = sb_fd(&full);
		capture_stderr();
		assert_int_equal(take_up(d, fd, true, &marks, &s), 0);
		captured_text(err, sizeof(err));
		send_stream_close(s);
		close(fd);
		assert_int_equal(!!strstr(err, "Resuming sub at stream offset 93 (command 2)\n"), v >= 1);
		assert_int_equal(!!strstr(err, "skipped 93 bytes already applied\n"), v >= 2);
		set_state(d, RESUME_STOPPED);
	}
	verbosity = 1;
	sb_free(&full);
}

/* A record that cannot be saved leaves the reservation as it was. */
static void test_stop_not_saved_keeps_the_reservation(void **state)
{
	struct dest *d = *state;
	struct resume_marks marks = { .has_record = true,
				      .record_reserved = true };
	struct receive_stop stop = { .retry_last = true, .errors = 1 };
	char err[1024];

	open_current(d);
	assert_int_equal(mkdirat(d->fd, ".sub.btrfs-receive-resume", 0700), 0);
	capture_stderr();
	resume_after_stop(NULL, &d->ctx, &marks, &stop, d->path);
	captured_text(err, sizeof(err));
	assert_contains(err, "WARNING: cannot save the resume state of sub: ");
	assert_true(marks.record_reserved);
	assert_int_equal(unlinkat(d->fd, ".sub.btrfs-receive-resume",
				  AT_REMOVEDIR), 0);
}

static int open_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(dir);
	while (readdir(dir))
		n++;
	closedir(dir);
	return n;
}

/* A refused path costs no fd and no memory (a second round, warm). */
static void test_refused_paths_leak_nothing(void **state)
{
	struct dest *d = *state;
	struct mallinfo2 before, after;
	char dot[128], none[128];
	int fds, round;

	snprintf(dot, sizeof(dot), "%s/..", d->path);
	snprintf(none, sizeof(none), "%s/none/sub", d->path);
	capture_stderr();
	for (round = 0; round < 2; round++) {
		fds = open_fds();
		before = mallinfo2();
		assert_int_equal(resume_print_token(dot), -EINVAL);
		assert_int_equal(resume_abort(dot), -EINVAL);
		assert_int_equal(resume_print_token(none), -ENOENT);
		assert_int_equal(resume_abort(none), -ENOENT);
		after = mallinfo2();
		assert_int_equal(open_fds(), fds);
	}
	captured_text(dot, sizeof(dot));
	assert_int_equal(after.uordblks, before.uordblks);
}

/* What --resume-token and --abort say, and only that. */
static void test_token_and_abort_messages(void **state)
{
	struct dest *d = *state;
	struct resume_record r;
	char err[1024], want[256];
	int fd;

	capture_stderr();
	assert_int_equal(resume_print_token(d->sub), -ENOENT);
	captured_text(err, sizeof(err));
	snprintf(want, sizeof(want), "ERROR: %s has no resume state: it was not stopped in a resumable way, or it is complete\n", d->sub);
	assert_string_equal(err, want);

	write_stopped(d, &r);
	capture_stderr();
	assert_int_equal(resume_print_token(d->sub), 0);
	captured_text(err, sizeof(err));
	assert_string_equal(err, "");

	fd = openat(d->fd, ".sub.btrfs-receive-resume", O_WRONLY);
	assert_int_equal(pwrite(fd, "X", 1, 30), 1);
	close(fd);
	capture_stderr();
	assert_int_equal(resume_print_token(d->sub), -EBADMSG);
	captured_text(err, sizeof(err));
	snprintf(want, sizeof(want), "ERROR: the resume state of %s is damaged: Bad message\n", d->sub);
	assert_string_equal(err, want);

	write_stopped(d, &r);
	verbosity = 0;
	capture_stderr();
	assert_int_equal(resume_abort(d->sub), 0);
	captured_text(err, sizeof(err));
	verbosity = 1;
	assert_string_equal(err, "");
	write_stopped(d, &r);
	capture_stderr();
	assert_int_equal(resume_abort(d->sub), 0);
	captured_text(err, sizeof(err));
	snprintf(want, sizeof(want), "Deleted partial subvolume %s\n", d->sub);
	assert_string_equal(err, want);
}

#define DEST_TEST(f) cmocka_unit_test_setup_teardown(f, dest_setup, \
						     dest_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		DEST_TEST(test_token_of_a_stopped_partial_subvolume_is_printed),
		DEST_TEST(test_token_refused_unless_the_record_is_stopped),
		DEST_TEST(test_token_refused_when_the_partial_subvolume_changed),
		DEST_TEST(test_token_refused_without_or_with_a_damaged_record),
		DEST_TEST(test_paths_that_name_no_subvolume_are_refused),
		DEST_TEST(test_abort_deletes_the_recorded_subvolume),
		DEST_TEST(test_abort_refuses_another_subvolume),
		DEST_TEST(test_abort_keeps_the_record_when_delete_fails),
		DEST_TEST(test_abort_of_a_gone_subvolume_removes_its_record),
		DEST_TEST(test_reserve_writes_a_receiving_record),
		DEST_TEST(test_mark_failed_spares_a_reservation),
		DEST_TEST(test_finished_subvolume_drops_its_record),
		DEST_TEST(test_stop_before_a_retryable_command_saves_it),
		DEST_TEST(test_stop_after_two_errors_marks_the_record_failed),
		DEST_TEST(test_stop_of_a_broken_stream_saves_the_parser_position),
		DEST_TEST(test_stop_without_a_subvolume_or_marks_saves_nothing),
		DEST_TEST(test_stop_that_cannot_be_saved_fails_the_record),
		DEST_TEST(test_continuation_reopens_where_the_receive_stopped),
		DEST_TEST(test_continuation_refusals_change_nothing),
		DEST_TEST(test_take_up_leaves_other_input_alone),
		DEST_TEST(test_resume_skips_the_applied_prefix),
		DEST_TEST(test_resume_refuses_a_stream_that_is_not_the_one),
		DEST_TEST(test_token_refusals_say_why),
		DEST_TEST(test_directories_on_fd_0_are_used),
		DEST_TEST(test_input_of_no_interrupted_receive_says_so),
		DEST_TEST(test_verbose_messages_of_stop_and_resume),
		DEST_TEST(test_stop_not_saved_keeps_the_reservation),
		DEST_TEST(test_refused_paths_leak_nothing),
		DEST_TEST(test_token_and_abort_messages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
