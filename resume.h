/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Resumable transfers, shared by send and receive: the resume record that
 * an interrupted receive leaves beside its partial subvolume, the token
 * that carries its identity and position to the sender, and the
 * continuation frame that precedes the rest of a regenerated stream (whose
 * prefix the sender checks in send-pump.c).
 */
#ifndef RESUME_H
#define RESUME_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "send-frame.h"

/* Flags of a token: what the applied prefix shows about the stream. */
#define RESUME_FLAG_HEADERLESS	0x1	/* no stream header (send -e) */
#define RESUME_FLAG_NO_DATA	0x2	/* UPDATE_EXTENT seen (--no-data) */
#define RESUME_FLAG_COMPRESSED	0x4	/* ENCODED_WRITE seen */
#define RESUME_FLAG_ENDED	0x8	/* stopped right after END */

struct resume_token {
	uint8_t uuid[16];		/* the sent subvolume */
	uint64_t ctransid;
	uint8_t parent_uuid[16];	/* zero for a full stream */
	uint64_t parent_ctransid;
	uint32_t flags;
	struct send_stream_pos pos;	/* just after the last applied command */
};

/* Base64url text of the versioned, checksummed blob, and its NUL. */
#define RESUME_TOKEN_TEXT_SIZE	128

void resume_token_from_pos(struct resume_token *t,
			   const struct send_stream_pos *pos);
void resume_token_encode(const struct resume_token *t, char *text);
/* 0, or -EINVAL with *why set when the text is not a valid token. */
int resume_token_decode(const char *text, struct resume_token *t,
			const char **why);
bool resume_token_equal(const struct resume_token *a,
			const struct resume_token *b);

/*
 * A continuation stream: the frame, then the bytes of the original stream
 * from pos.offset on.  Its magic is not the send stream's, so a receiver
 * that does not know it refuses it as a bad magic.
 */
#define RESUME_FRAME_MAGIC	"btrfs-resume"
#define RESUME_FRAME_MAGIC_LEN	13
/* The token's bytes before base64url: 29 groups of 3, 116 characters. */
#define RESUME_BLOB_LEN		87
#define RESUME_FRAME_LEN	(RESUME_FRAME_MAGIC_LEN + 4 + RESUME_BLOB_LEN)

void resume_frame_encode(const struct resume_token *t, unsigned char *buf);
bool resume_frame_magic(const unsigned char *buf);
int resume_frame_decode(const unsigned char *buf, struct resume_token *t,
			const char **why);

enum resume_state {
	RESUME_STOPPED,		/* stopped cleanly: may be resumed */
	RESUME_APPLYING,	/* a resumed receive was applying commands */
	RESUME_FAILED,		/* a resumed receive failed: cannot resume */
	/*
	 * Written when a subvolume starts, so that its file exists at full
	 * size before the disk can fill: a receive is applying commands,
	 * nothing saved yet.
	 */
	RESUME_RECEIVING,
};

/*
 * The record, in DEST/.NAME.btrfs-receive-resume: everything a
 * continuation needs beyond the subvolume itself.
 */
struct resume_record {
	enum resume_state state;
	struct resume_token tok;
	/* The partial subvolume as it was left: a change refuses a resume. */
	uint8_t local_uuid[16];
	uint64_t local_ctransid;
	/* A security.capability waiting for its chown (struct receive_ctx). */
	char cap_path[PATH_MAX];
	unsigned char cap_value[256];
	size_t cap_len;
};

/* The record's file name for subvolume name; -ENAMETOOLONG if none fits. */
int resume_record_name(const char *subvol, char *out, size_t size);
/*
 * Overwritten in place when the record file has its full size (a NOCOW
 * file of fixed size: no free space needed), else written to a temporary
 * file, synced and renamed over the old one.  Synced either way.
 */
int resume_record_write(int dest_fd, const char *subvol,
			const struct resume_record *r);
/* 0, -ENOENT without a record, -EBADMSG when it is damaged. */
int resume_record_read(int dest_fd, const char *subvol,
		       struct resume_record *r);
int resume_record_remove(int dest_fd, const char *subvol);
/* The record in dest of the subvolume sent as uuid/ctransid; name out. */
int resume_record_find(int dest_fd, const uint8_t *uuid, uint64_t ctransid,
		       char *name, size_t size, struct resume_record *r);

#endif
