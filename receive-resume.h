/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The receive side of resumable transfers: saving the state of an
 * interrupted receive, taking up a continuation, printing a token and
 * aborting.  Every function prints its own ERROR line.
 */
#ifndef RECEIVE_RESUME_H
#define RECEIVE_RESUME_H

#include "progress.h"
#include "receive-apply.h"
#include "resume.h"
#include "send-stream.h"

/*
 * What a btrfs destination knows of the resume record of the subvolume
 * being received.
 */
struct resume_marks {
	/* Resumed or reserved: its record goes once it is complete. */
	bool has_record;
	/* The record holds only the reservation made when it started. */
	bool record_reserved;
};

/* How the apply loop ended. */
struct receive_stop {
	bool stream_broken;
	uint64_t errors;
	bool retry_last;	/* the last command failed; it may be retried */
	struct send_stream_pos before;	/* the position before it */
};

/*
 * Whether a receive stopped where cmd failed with err may resume at cmd:
 * when the reason may pass (a full disk) and applying it again gives the
 * same result.
 */
bool resume_retry_is_safe(unsigned int cmd, int err);
/*
 * After the apply loop: when the current subvolume is left incomplete,
 * sync it and record where to go on if that is safe, else make sure no
 * old state offers it.  dest names the destination in messages.
 */
void resume_after_stop(struct send_stream *s, struct receive_ctx *ctx,
		       struct resume_marks *marks,
		       const struct receive_stop *stop, const char *dest);
/*
 * A subvolume starts: write its record, "receiving", at full size, so
 * that a stop on a full disk can overwrite it in place.
 */
int resume_reserve(struct receive_ctx *ctx, struct resume_marks *marks);
/* A resumed subvolume failed in a way that cannot be resumed. */
void resume_mark_failed(struct receive_ctx *ctx, struct resume_marks *marks);
/*
 * The subvolume is being closed, complete (marked received: ret is how
 * that went) or not: its record goes when it is no longer needed.
 * Returns ret, or the error of removing the record.
 */
int resume_subvol_finished(struct receive_ctx *ctx, struct resume_marks *marks,
			   bool complete, int ret);

/*
 * At the start of the input: a continuation frame makes the matching
 * partial subvolume current and sets the parser after its applied
 * prefix; any other input is left alone.  With skip_prefix (receive
 * --resume) the input is an ordinary stream whose prefix is read,
 * checked and not applied.  Nothing is changed before every check passed.
 * Without marks (a destination that cannot resume), nothing is done.  prog
 * (--progress, or NULL) is told what was skipped.
 */
int resume_take_up(struct send_stream *s, struct receive_ctx *ctx,
		   struct resume_marks *marks, bool skip_prefix,
		   struct progress *prog);

/* --resume-token DEST/NAME and --abort DEST/NAME. */
int resume_print_token(const char *path);
int resume_abort(const char *path);

#endif
