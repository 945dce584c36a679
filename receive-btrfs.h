/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The ioctl-backed callback table: applies a stream's commands onto a
 * btrfs destination.  All its state lives in struct receive_ctx, so that
 * a caller can inspect or persist it (a resumed receive needs it).
 */
#ifndef RECEIVE_BTRFS_H
#define RECEIVE_BTRFS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "confined-path.h"
#include "copy-tree.h"
#include "dir-times.h"
#include "send-stream.h"
#include "subvol-index.h"

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
	/* Resumed or reserved: its resume record goes once it is complete. */
	bool has_record;
	/* The record holds only the reservation made when it started. */
	bool record_reserved;
	/* CLONEs the kernel refused, copied instead: warned at the end. */
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

struct receive_ctx {
	/* Where subvolumes are created. */
	int dest_fd;
	/*
	 * A directory from which other subvolumes (parents, clone sources)
	 * are opened, and its path from the filesystem's top level.
	 */
	int anchor_fd;
	char anchor_path[PATH_MAX];
	bool force_decompress;

	struct subvol_index index;
	bool index_ready;

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

	bool encoded_write_refused;
	/*
	 * --to-dir (receive-dir.c): how a subvolume is completed (NULL: the
	 * btrfs ioctls), and features the destination may lack, warned about
	 * once instead of failing.
	 */
	int (*complete_subvol)(struct receive_ctx *ctx);
	/*
	 * A btrfs receive that keeps resume state: writes the resume record
	 * of a subvolume when it starts (receive-resume.c).
	 */
	int (*reserve_record)(struct receive_ctx *ctx);
	bool warn_unsupported;
	bool fileattr_warned;
	bool verity_warned;
	/*
	 * --to-dir without root: what the kernel refuses an unprivileged
	 * user (owners, device nodes, trusted.* and security.* xattrs) is
	 * counted instead of failing, and told once per kind at the end.
	 */
	bool unprivileged;
	struct receive_loss losses[RECEIVE_LOSS_KINDS];
	/* --to-dir not on btrfs: the btrfs.* xattr names dropped so far. */
	bool not_btrfs;
	char **dropped_props;
	size_t nr_dropped_props;
	/* What the CLONE and SNAPSHOT copies of --to-dir did. */
	struct copy_stats copies;
	void *decompress_buf;
	size_t decompress_size;
};

void receive_ctx_init(struct receive_ctx *ctx, int dest_fd, int anchor_fd,
		      const char *anchor_path, bool force_decompress);
/*
 * Close the current subvolume.  complete: set its received uuid and
 * stransid and make it read-only (unless one of its commands failed);
 * otherwise leave it writable and unmarked.
 */
int receive_close_subvol(struct receive_ctx *ctx, bool complete);
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

extern const struct send_stream_ops receive_btrfs_ops;

/*
 * Pieces of the table shared with receive-dir.c: they print their own
 * errors, as the callbacks do.
 */
/* Complete the previous subvolume, check the name, print At subvol/snapshot. */
int receive_start_subvol(struct receive_ctx *ctx, bool snapshot,
			 const char *path, const uint8_t *uuid,
			 uint64_t ctransid);
/* The new subvolume's directory, name under dest_fd, receives from now on. */
int receive_begin_subvol(struct receive_ctx *ctx, const char *name,
			 const uint8_t *uuid, uint64_t ctransid);
/*
 * A regular file to read a clone from, opened read-only: path in the
 * subvolume being received (subvol_fd < 0) or beneath subvol_fd (which
 * this closes).  An fd or a negative errno.
 */
int receive_open_source_file(struct receive_ctx *ctx, int subvol_fd,
			     const char *path);
/* The kept-open file for writes to path. */
int receive_open_for_write(struct receive_ctx *ctx, const char *path);
/* One WARNING per kind of loss counted without root (--to-dir). */
void receive_report_losses(const struct receive_ctx *ctx);

#endif
