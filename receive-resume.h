/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The receive side of resumable transfers: saving the state of an
 * interrupted receive, taking up a continuation, printing a token and
 * aborting.  Every function prints its own ERROR line.
 */
#ifndef RECEIVE_RESUME_H
#define RECEIVE_RESUME_H

#include "receive-btrfs.h"
#include "resume.h"
#include "send-stream.h"

/*
 * The receive stopped cleanly at pos inside the current subvolume: sync
 * it, then record how to go on.  dest names the destination in messages.
 */
int resume_save(struct receive_ctx *ctx, const struct send_stream_pos *pos,
		const char *dest);
/*
 * A subvolume starts: write its record, "receiving", at full size, so
 * that a stop on a full disk can overwrite it in place (the
 * reserve_record hook of struct receive_ctx).
 */
int resume_reserve(struct receive_ctx *ctx);
/* A resumed subvolume failed in a way that cannot be resumed. */
void resume_mark_failed(struct receive_ctx *ctx);

/*
 * At the start of the input: a continuation frame makes the matching
 * partial subvolume current and sets the parser after its applied
 * prefix; any other input is left alone.  With skip_prefix (receive
 * --resume) the input is an ordinary stream whose prefix is read,
 * checked and not applied.  Nothing is changed before every check passed.
 */
int resume_take_up(struct send_stream *s, struct receive_ctx *ctx,
		   bool skip_prefix);

/* --resume-token DEST/NAME and --abort DEST/NAME. */
int resume_print_token(const char *path);
int resume_abort(const char *path);

#endif
