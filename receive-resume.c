// SPDX-License-Identifier: GPL-2.0-only
/*
 * The receive side of resumable transfers.
 *
 * Safety rests on three rules.  No record exists while commands are being
 * applied: a first receive writes one only at a clean stop, and a resumed
 * one first turns the record to "applying", durably, so that a receiver
 * killed mid-command (SIGKILL, power loss) leaves a state that refuses to
 * resume rather than replay commands onto a tree that moved on.  The
 * subvolume's data is synced before its record is written, so the record
 * is never ahead of the data.  And everything is checked (the record, the
 * partial subvolume unchanged since, the continuation's position and
 * chain) before the first change.
 */
#include <btrfsutil.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "receive-resume.h"
#include "utils.h"

static void fill_record(const struct receive_ctx *ctx,
			const struct send_stream_pos *pos,
			struct resume_record *r)
{
	memset(r, 0, sizeof(*r));
	r->state = RESUME_STOPPED;
	resume_token_from_pos(&r->tok, pos);
	memcpy(r->tok.uuid, ctx->cur.uuid, 16);
	r->tok.ctransid = ctx->cur.ctransid;
	memcpy(r->tok.parent_uuid, ctx->cur.parent_uuid, 16);
	r->tok.parent_ctransid = ctx->cur.parent_ctransid;
	if (ctx->cap_len) {
		memcpy(r->cap_path, ctx->cap_path, sizeof(r->cap_path));
		memcpy(r->cap_value, ctx->cap_value, ctx->cap_len);
		r->cap_len = ctx->cap_len;
	}
}

static int save_state(struct receive_ctx *ctx, struct resume_marks *marks,
		      const struct send_stream_pos *pos, const char *dest)
{
	struct btrfs_util_subvolume_info info;
	struct resume_record r;
	enum btrfs_util_error err;
	int ret;

	fill_record(ctx, pos, &r);
	/*
	 * The data first: a record must never be ahead of what it records.
	 * Failing to save is a warning: the receive has its own ERROR.
	 */
	ret = receive_settle(ctx);
	if (ret < 0) {
		warning("cannot finish what %s was given so far, its resume state is not saved",
			ctx->cur.name);
		goto fail;
	}
	if (syncfs(ctx->cur.fd) < 0) {
		ret = -errno;
		warning("cannot sync %s to save its resume state: %m",
		      ctx->cur.name);
		goto fail;
	}
	err = btrfs_util_subvolume_info_fd(ctx->cur.fd, 0, &info);
	if (err) {
		ret = -EIO;
		warning("cannot read subvolume %s to save its resume state: %s",
		      ctx->cur.name, btrfs_util_strerror(err));
		goto fail;
	}
	memcpy(r.local_uuid, info.uuid, 16);
	r.local_ctransid = info.ctransid;
	ret = resume_record_write(ctx->dest_fd, ctx->cur.name, &r);
	if (ret < 0) {
		warning("cannot save the resume state of %s: %s", ctx->cur.name,
		      strerror(-ret));
		goto fail;
	}
	marks->record_reserved = false;
	if (verbosity >= 1)
		fprintf(stderr,
			"Receive of %s stopped at stream offset %llu; resume it with the token of 'btrfs receive --resume-token %s/%s'\n",
			ctx->cur.name, (unsigned long long)pos->offset, dest,
			ctx->cur.name);
	return 0;
fail:
	/* An old record would offer a position the tree has left. */
	if (marks->has_record)
		resume_mark_failed(ctx, marks);
	return ret;
}

int resume_reserve(struct receive_ctx *ctx, struct resume_marks *marks)
{
	static const struct send_stream_pos none;
	struct btrfs_util_subvolume_info info;
	struct resume_record r;
	int ret;

	fill_record(ctx, &none, &r);
	r.state = RESUME_RECEIVING;
	/* Which subvolume --abort may delete. */
	if (!btrfs_util_subvolume_info_fd(ctx->cur.fd, 0, &info))
		memcpy(r.local_uuid, info.uuid, 16);
	ret = resume_record_write(ctx->dest_fd, ctx->cur.name, &r);
	if (ret < 0)
		return ret;
	marks->has_record = true;
	marks->record_reserved = true;
	return 0;
}

void resume_mark_failed(struct receive_ctx *ctx, struct resume_marks *marks)
{
	struct resume_record r;

	/* A reservation goes when the subvolume is closed. */
	if (marks->record_reserved)
		return;
	if (resume_record_read(ctx->dest_fd, ctx->cur.name, &r) < 0)
		return;
	r.state = RESUME_FAILED;
	if (resume_record_write(ctx->dest_fd, ctx->cur.name, &r) < 0)
		resume_record_remove(ctx->dest_fd, ctx->cur.name);
}

static const char *state_problem(enum resume_state state)
{
	if (state == RESUME_APPLYING)
		return "a resumed receive was stopped while applying commands (killed, or the system went down), so the tree may be ahead of the recorded position";
	return "a resumed receive failed with an error that cannot be resumed";
}

/*
 * The partial subvolume must be the one recorded, unchanged since, still
 * writable and without a received uuid.
 */
static int check_partial(int dest_fd, const char *name,
			 const struct resume_record *r)
{
	struct btrfs_util_subvolume_info info;
	static const uint8_t zero[16];
	enum btrfs_util_error err;
	bool ro = true;
	int fd;

	if (r->state == RESUME_RECEIVING) {
		error("%s has no resume state: it is being received, or its receive was killed or the system went down before it could save one; if no receive runs, delete it with 'btrfs receive --abort' and receive it again",
		      name);
		return -ESTALE;
	}
	if (r->state != RESUME_STOPPED) {
		error("%s cannot be resumed: %s; delete it with 'btrfs receive --abort' and receive it again",
		      name, state_problem(r->state));
		return -ESTALE;
	}
	fd = openat(dest_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	if (fd < 0) {
		error("cannot open partial subvolume %s: %m", name);
		return -errno;
	}
	err = btrfs_util_subvolume_info_fd(fd, 0, &info);
	if (!err)
		err = btrfs_util_get_subvolume_read_only_fd(fd, &ro);
	close(fd);
	if (err) {
		error("%s is not a subvolume: %s", name,
		      btrfs_util_strerror(err));
		return -EINVAL;
	}
	if (memcmp(info.uuid, r->local_uuid, 16) || ro ||
	    memcmp(info.received_uuid, zero, 16)) {
		error("%s is not the partial subvolume its resume state describes (replaced, made read-only or marked received)",
		      name);
		return -ESTALE;
	}
	if (info.ctransid != r->local_ctransid) {
		error("%s was modified after its receive stopped (ctransid %llu, recorded %llu): cannot resume",
		      name, (unsigned long long)info.ctransid,
		      (unsigned long long)r->local_ctransid);
		return -ESTALE;
	}
	return 0;
}

/* Everything checked: record that commands are being applied, reopen. */
static int reopen(struct receive_ctx *ctx, struct resume_marks *marks,
		  const char *name, struct resume_record *r)
{
	int ret;

	r->state = RESUME_APPLYING;
	ret = resume_record_write(ctx->dest_fd, name, r);
	if (ret < 0) {
		error("cannot update the resume state of %s: %s", name,
		      strerror(-ret));
		return ret;
	}
	ret = receive_reopen_subvol(ctx, name, r->tok.uuid, r->tok.ctransid);
	if (ret < 0) {
		resume_mark_failed(ctx, marks);
		return ret;
	}
	marks->has_record = true;
	memcpy(ctx->cur.parent_uuid, r->tok.parent_uuid, 16);
	ctx->cur.parent_ctransid = r->tok.parent_ctransid;
	if (r->cap_len) {
		memcpy(ctx->cap_path, r->cap_path, sizeof(ctx->cap_path));
		memcpy(ctx->cap_value, r->cap_value, r->cap_len);
		ctx->cap_len = r->cap_len;
	}
	if (verbosity >= 1)
		fprintf(stderr,
			"Resuming %s at stream offset %llu (command %llu)\n",
			name, (unsigned long long)r->tok.pos.offset,
			(unsigned long long)r->tok.pos.cmds);
	return 0;
}

static int take_up_frame(struct send_stream *s, struct receive_ctx *ctx,
			 struct resume_marks *marks)
{
	struct resume_token tok;
	struct resume_record r;
	char name[NAME_MAX + 1];
	char uuid[UUID_STR_LEN];
	const void *frame;
	const char *why;
	int ret;

	ret = send_stream_peek(s, &frame, RESUME_FRAME_LEN);
	if (ret) {
		error("truncated continuation stream: the frame is incomplete");
		return -EIO;
	}
	ret = resume_frame_decode(frame, &tok, &why);
	if (ret < 0) {
		error("invalid continuation stream: %s", why);
		return ret;
	}
	ret = resume_record_find(ctx->dest_fd, tok.uuid, tok.ctransid, name,
				 sizeof(name), &r);
	if (ret < 0) {
		uuid_unparse(tok.uuid, uuid);
		error("continuation stream of subvolume %s (ctransid %llu), but no interrupted receive of it here",
		      uuid, (unsigned long long)tok.ctransid);
		return -ENOENT;
	}
	ret = check_partial(ctx->dest_fd, name, &r);
	if (ret < 0)
		return ret;
	if (!resume_token_equal(&tok, &r.tok)) {
		error("the continuation stream does not continue %s where it stopped (stale token: it starts at offset %llu, %s stopped at %llu)",
		      name, (unsigned long long)tok.pos.offset, name,
		      (unsigned long long)r.tok.pos.offset);
		return -ESTALE;
	}
	ret = reopen(ctx, marks, name, &r);
	if (ret < 0)
		return ret;
	send_stream_skip(s, RESUME_FRAME_LEN);
	send_stream_resume_at(s, &r.tok.pos);
	return 0;
}

/* receive --resume: the parser reads commands, applying none. */
struct prefix_scan {
	struct receive_ctx *ctx;
	struct progress *prog;		/* --progress, or NULL */
	bool found;
	char name[NAME_MAX + 1];
	struct resume_record r;
	struct send_stream_pos pos;	/* where the scan stopped */
};

static void scan_subvol(struct prefix_scan *scan, const uint8_t *uuid,
			uint64_t ctransid)
{
	if (scan->found)
		return;
	scan->found = !resume_record_find(scan->ctx->dest_fd, uuid, ctransid,
					  scan->name, sizeof(scan->name),
					  &scan->r);
}

static int scan_on_subvol(const char *path, const uint8_t *uuid,
			  uint64_t ctransid, void *user)
{
	(void)path;
	scan_subvol(user, uuid, ctransid);
	return 0;
}

static int scan_on_snapshot(const char *path, const uint8_t *uuid,
			    uint64_t ctransid, const uint8_t *parent_uuid,
			    uint64_t parent_ctransid, void *user)
{
	(void)path;
	(void)parent_uuid;
	(void)parent_ctransid;
	scan_subvol(user, uuid, ctransid);
	return 0;
}

static const struct send_stream_ops scan_ops = {
	.subvol = scan_on_subvol,
	.snapshot = scan_on_snapshot,
};

/* The scan stops once it has passed where the record says it stopped. */
static void scan_tick(struct send_stream *s, struct progress *prog)
{
	const char *path;
	size_t len = 0;

	if (!prog || !progress_due(prog))
		return;
	path = send_stream_cmd_path(s, &len);
	progress_show(prog, send_stream_offset(s), send_stream_cmd_count(s),
		      path, len);
}

static bool scan_reached_stop(struct send_stream *s, void *data)
{
	struct prefix_scan *scan = data;

	scan_tick(s, scan->prog);
	if (!scan->found)
		return false;
	send_stream_position(s, &scan->pos);
	return scan->pos.offset >= scan->r.tok.pos.offset;
}

static int skip_prefix(struct send_stream *s, struct receive_ctx *ctx,
		       struct resume_marks *marks, struct progress *prog)
{
	struct prefix_scan scan = { .ctx = ctx, .prog = prog };
	const struct send_stream_loop loop = {
		.data = &scan,
		.after = scan_reached_stop,
	};
	struct resume_token here;
	int ret;

	if (prog)
		progress_skip_begin(prog);
	ret = send_stream_run(s, &scan_ops, &scan, &loop);
	if (ret == SEND_STREAM_EOF) {
		error("no stream in the input continues an interrupted receive here");
		return -ENOENT;
	}
	if (ret < 0) {
		error("%s", send_stream_error(s));
		return ret;
	}
	ret = check_partial(ctx->dest_fd, scan.name, &scan.r);
	if (ret < 0)
		return ret;
	here = scan.r.tok;
	resume_token_from_pos(&here, &scan.pos);
	if (!resume_token_equal(&here, &scan.r.tok)) {
		error("the input is not the stream %s was receiving: it differs before stream offset %llu",
		      scan.name, (unsigned long long)scan.r.tok.pos.offset);
		return -ESTALE;
	}
	if (verbosity >= 2)
		fprintf(stderr, "skipped %llu bytes already applied\n",
			(unsigned long long)send_stream_offset(s));
	ret = reopen(ctx, marks, scan.name, &scan.r);
	if (!ret && prog)
		progress_skip_end(prog, send_stream_offset(s),
				  send_stream_cmd_count(s),
				  send_stream_offset(s));
	return ret;
}

/* A continuation holds the frame and the rest: nothing of the prefix. */
static int take_up_continuation(struct send_stream *s,
				struct receive_ctx *ctx,
				struct resume_marks *marks,
				struct progress *prog)
{
	int ret;

	ret = take_up_frame(s, ctx, marks);
	if (!ret && prog)
		progress_skip_end(prog, send_stream_offset(s),
				  send_stream_cmd_count(s), RESUME_FRAME_LEN);
	return ret;
}

int resume_take_up(struct send_stream *s, struct receive_ctx *ctx,
		   struct resume_marks *marks, bool skip,
		   struct progress *prog)
{
	const void *magic;

	if (!marks)
		return 0;
	if (send_stream_peek(s, &magic, RESUME_FRAME_MAGIC_LEN) == 0 &&
	    resume_frame_magic(magic))
		return take_up_continuation(s, ctx, marks, prog);
	if (skip)
		return skip_prefix(s, ctx, marks, prog);
	return 0;
}

/* A refused path never passes. */
bool resume_retry_is_safe(unsigned int cmd, int err)
{
	if (err != -ENOSPC && err != -EDQUOT && err != -EIO && err != -ENOMEM)
		return false;
	return send_cmd_is_repeatable(cmd);
}

void resume_after_stop(struct send_stream *s, struct receive_ctx *ctx,
		       struct resume_marks *marks,
		       const struct receive_stop *stop, const char *dest)
{
	struct send_stream_pos pos;

	if (!ctx->cur.active || !marks)
		return;
	if (stop->retry_last && stop->errors == 1) {
		save_state(ctx, marks, &stop->before, dest);
	} else if (stop->stream_broken && !ctx->cur.failed) {
		send_stream_position(s, &pos);
		save_state(ctx, marks, &pos, dest);
	} else if (marks->has_record)
		resume_mark_failed(ctx, marks);
}

int resume_subvol_finished(struct receive_ctx *ctx, struct resume_marks *marks,
			   bool complete, int ret)
{
	if (complete && !ret && marks->has_record)
		ret = resume_record_remove(ctx->dest_fd, ctx->cur.name);
	else if (!complete && marks->record_reserved)
		/* No stop turned the reservation into a state to resume. */
		resume_record_remove(ctx->dest_fd, ctx->cur.name);
	memset(marks, 0, sizeof(*marks));
	return ret;
}

/* DEST/NAME: an fd of DEST and NAME. */
static int split_path(const char *path, int *dest_fd, char **name)
{
	char *copy = strdup(path), *copy2 = strdup(path);
	char *base;
	int ret = 0;

	if (!copy || !copy2) {
		ret = -ENOMEM;
		goto out;
	}
	base = basename(copy2);
	if (!*base || !strcmp(base, "/") || !strcmp(base, ".") ||
	    !strcmp(base, "..")) {
		error("%s does not name a subvolume", path);
		ret = -EINVAL;
		goto out;
	}
	*dest_fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*dest_fd < 0) {
		ret = -errno;
		error("cannot open the directory of %s: %m", path);
		goto out;
	}
	*name = strdup(base);
	if (!*name) {
		close(*dest_fd);
		ret = -ENOMEM;
	}
out:
	free(copy);
	free(copy2);
	return ret;
}

static int read_named_record(int dest_fd, const char *name,
			     const char *path, struct resume_record *r)
{
	int ret = resume_record_read(dest_fd, name, r);

	if (ret == -ENOENT)
		error("%s has no resume state: it was not stopped in a resumable way, or it is complete",
		      path);
	else if (ret < 0)
		error("the resume state of %s is damaged: %s", path,
		      strerror(-ret));
	return ret;
}

int resume_print_token(const char *path)
{
	char text[RESUME_TOKEN_TEXT_SIZE];
	struct resume_record r;
	char *name;
	int dest_fd, ret;

	ret = split_path(path, &dest_fd, &name);
	if (ret < 0)
		return ret;
	ret = read_named_record(dest_fd, name, path, &r);
	if (!ret)
		ret = check_partial(dest_fd, name, &r);
	if (!ret) {
		resume_token_encode(&r.tok, text);
		printf("%s\n", text);
	}
	free(name);
	close(dest_fd);
	return ret;
}

int resume_abort(const char *path)
{
	struct btrfs_util_subvolume_info info;
	struct resume_record r;
	enum btrfs_util_error err;
	char *name;
	int dest_fd, ret;

	ret = split_path(path, &dest_fd, &name);
	if (ret < 0)
		return ret;
	ret = read_named_record(dest_fd, name, path, &r);
	if (ret < 0)
		goto out;
	/* Only the subvolume the record describes, never another one. */
	err = btrfs_util_subvolume_info(path, 0, &info);
	if (!err && memcmp(info.uuid, r.local_uuid, 16)) {
		error("%s is not the partial subvolume of the resume state, not deleted",
		      path);
		ret = -ESTALE;
		goto out;
	}
	if (!err) {
		err = btrfs_util_delete_subvolume_fd(dest_fd, name, 0);
		if (err) {
			error("cannot delete %s: %s", path,
			      btrfs_util_strerror(err));
			ret = -EIO;
			goto out;
		}
	}
	ret = resume_record_remove(dest_fd, name);
	if (ret < 0)
		error("cannot remove the resume state of %s: %s", path,
		      strerror(-ret));
	else if (verbosity >= 1)
		fprintf(stderr, "Deleted partial subvolume %s\n", path);
out:
	free(name);
	close(dest_fd);
	return ret;
}
