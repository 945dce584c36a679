/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The applier of btrfs receive: one callback table for every destination.
 * The commands that are plain calls on the subvolume being received
 * (mkfile ... utimes, write, truncate, fallocate, END) are POSIX and
 * written here once, with what goes around them: inodes made later, the
 * kept-open file, held directory times, the capability restore, what a
 * user without root cannot keep.  What needs the destination itself
 * (making a subvolume or a snapshot, finding a clone source, encoded
 * writes, features it may lack, marking a subvolume received) goes
 * through its struct receive_dest_ops: btrfs (receive-btrfs.c) or any
 * directory (receive-dir.c).
 */
#ifndef RECEIVE_APPLY_H
#define RECEIVE_APPLY_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "confined-path.h"
#include "copy-tree.h"
#include "dir-times.h"
#include "send-stream.h"

/* The subvolume being received. */
struct received_subvol {
	bool active;
	bool failed;		/* a command failed: never mark it complete */
	bool lost_create;	/* a delayed mkfile/mkdir failed: not resumable */
	char name[PATH_MAX];
	int fd;
	uint8_t uuid[16];	/* the sender's uuid: our received uuid */
	uint64_t ctransid;	/* the sender's ctransid: our stransid */
	uint8_t parent_uuid[16];	/* of a snapshot; zero for a subvol */
	uint64_t parent_ctransid;
	/* CLONEs whose range was copied instead of shared. */
	struct copy_stats clones;
};

/*
 * A mkfile or mkdir not made yet.  A send makes every new inode under a
 * temporary name and renames it at once: the inode is made at the name of
 * that rename instead, which saves the rename.  Any other command makes it
 * first where the stream said.
 */
enum pending_kind {
	PENDING_NONE,
	PENDING_FILE,
	PENDING_DIR,
};

struct pending_create {
	enum pending_kind kind;
	char path[PATH_MAX];
};

/* Kinds of what a receive without root cannot keep. */
enum receive_loss_kind {
	RECEIVE_LOSS_OWNER,
	RECEIVE_LOSS_DEVICE,
	RECEIVE_LOSS_TRUSTED_XATTR,
	RECEIVE_LOSS_SECURITY_XATTR,
	RECEIVE_LOSS_KINDS,
};

struct receive_loss {
	uint64_t count;
	char first[PATH_MAX];	/* subvolume/path of the first one */
};

struct receive_ctx;
struct resume_marks;

/* What a destination may lack, and accept losing (accept_missing_feature). */
enum receive_feature {
	RECEIVE_FEATURE_FILEATTR,
	RECEIVE_FEATURE_VERITY,
	RECEIVE_NR_FEATURES
};

/*
 * A destination.  Each callback prints its own errors and returns 0 or a
 * negative errno unless it says otherwise; a NULL slot is described with
 * it.  A destination keeps its own state behind ctx->dest and reads the
 * applier's (ctx->dest_fd, ctx->cur) without changing it.
 */
struct receive_dest_ops {
	/* Without root, lose what only root may keep instead of failing. */
	bool lossy_without_root;
	/* Make the subvolume name under ctx->dest_fd. */
	int (*make_subvol)(struct receive_ctx *ctx, const char *name);
	/* Make name a snapshot of the sender's subvolume parent_uuid. */
	int (*make_snapshot)(struct receive_ctx *ctx, const char *name,
			     const uint8_t *parent_uuid,
			     uint64_t parent_ctransid);
	/* The new subvolume is open as ctx->cur.  May be NULL. */
	void (*subvol_begun)(struct receive_ctx *ctx);
	/*
	 * The top directory of the sender's subvolume uuid, which a CLONE
	 * of clone_path reads (never the subvolume being received).
	 */
	int (*open_clone_subvol)(struct receive_ctx *ctx, const uint8_t *uuid,
				 uint64_t ctransid, const char *clone_path);
	/*
	 * Write an encoded extent as it is: 0 when written, 1 when it must
	 * be written decoded instead, or a negative errno.  NULL: always
	 * decoded.
	 */
	int (*write_encoded)(struct receive_ctx *ctx, int fd, const char *path,
			     const struct send_encoded_write *ew);
	/*
	 * The ioctl of feature, named what in messages, failed on path with
	 * err: true when the destination accepts the loss (and has warned),
	 * false when it is an error.  NULL: always an error.
	 */
	bool (*accept_missing_feature)(struct receive_ctx *ctx,
				       enum receive_feature feature,
				       const char *what, const char *path,
				       int err);
	/*
	 * Before a set (set true) or remove of the xattr name on path: 0
	 * to apply it, 1 to skip it, or a negative errno.  May be NULL.
	 */
	int (*filter_xattr)(struct receive_ctx *ctx, const char *path,
			    const char *name, bool set);
	/*
	 * The current subvolume ends: complete, mark it received; otherwise
	 * leave it as it is.  ctx->cur is still open.
	 */
	int (*finish_subvol)(struct receive_ctx *ctx, bool complete);
	/* Its resume marks (receive-resume.h).  NULL: it cannot resume. */
	struct resume_marks *(*resume_marks)(struct receive_ctx *ctx);
	/* Free the destination's state (ctx->dest). */
	void (*release)(struct receive_ctx *ctx);
};

struct receive_ctx {
	/* Where subvolumes are created. */
	int dest_fd;
	const struct receive_dest_ops *dest_ops;
	void *dest;		/* the destination's own state */

	struct received_subvol cur;
	struct confined_root paths;

	/*
	 * The regular file last made or written, kept open: its data, owner,
	 * mode and times usually come next.  write_path follows its renames.
	 */
	int write_fd;
	char write_path[PATH_MAX];

	struct pending_create pending;
	/* Directory times, applied when the subvolume is finished. */
	struct dir_times dir_times;

	/* security.capability set on a path, restored after its chown. */
	char cap_path[PATH_MAX];
	unsigned char cap_value[256];
	size_t cap_len;

	/*
	 * Without root, on a destination lossy_without_root: what the kernel
	 * refuses an unprivileged user (owners, device nodes, trusted.* and
	 * security.* xattrs) is counted instead of failing, and told once
	 * per kind at the end.
	 */
	bool unprivileged;
	struct receive_loss losses[RECEIVE_LOSS_KINDS];

	void *decompress_buf;
	size_t decompress_size;

	/*
	 * Told when closing a subvolume begins (true) and ends (false): its
	 * last changes and received marks go to disk then (--progress says
	 * "syncing").  NULL: nobody listens.
	 */
	void (*closing)(void *data, bool begin);
	void *closing_data;
};

/* The applier over dest_fd for the destination ops, whose state is dest. */
void receive_ctx_init(struct receive_ctx *ctx, int dest_fd,
		      const struct receive_dest_ops *ops, void *dest);
/*
 * Close the current subvolume.  complete: mark it received (unless one
 * of its commands failed); otherwise leave it writable and unmarked.
 */
int receive_close_subvol(struct receive_ctx *ctx, bool complete);
/*
 * Close the current subvolume as incomplete, tell the losses, release
 * the destination and close dest_fd.
 */
void receive_ctx_release(struct receive_ctx *ctx);
/*
 * Carry out what the commands applied so far left for later (an inode not
 * made yet, held directory times): before the tree is looked at from
 * outside, e.g. to save the state of an interrupted receive.
 */
int receive_settle(struct receive_ctx *ctx);
/* Make the partial subvolume name the current one again, to resume it. */
int receive_reopen_subvol(struct receive_ctx *ctx, const char *name,
			  const uint8_t *uuid, uint64_t ctransid);

extern const struct send_stream_ops receive_apply_ops;

#endif
