/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The btrfs destination of receive (struct receive_dest_ops): subvolumes,
 * snapshots and clone sources through the btrfs ioctls, on the filesystem
 * mounted at or above the destination directory.
 */
#ifndef RECEIVE_BTRFS_H
#define RECEIVE_BTRFS_H

#include <stdbool.h>

#include "receive-apply.h"

struct receive_btrfs_opts {
	const char *dest;		/* <mount> */
	const char *root_mount;		/* -m ROOTMOUNT, or NULL */
	bool chroot;			/* -C */
	bool force_decompress;
};

/*
 * Find the destination's filesystem and mount point, chroot with -C, and
 * set up ctx to receive onto it.  Prints its own errors; 0 or a negative
 * errno.  receive_ctx_release() undoes it.
 */
int receive_btrfs_open(struct receive_ctx *ctx,
		       const struct receive_btrfs_opts *o);

#endif
