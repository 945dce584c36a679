/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * receive --to-dir: the destination (struct receive_dest_ops) that applies
 * a stream onto any filesystem with plain calls.  A subvolume becomes a
 * directory under the destination; once complete, it carries the received
 * uuid and stransid in the xattrs user.btrfs.received_uuid and
 * user.btrfs.stransid (or, on a filesystem without user xattrs, in a file
 * .NAME.received beside it).
 */
#ifndef RECEIVE_DIR_H
#define RECEIVE_DIR_H

#include <stdbool.h>

#include "receive-apply.h"

/*
 * Open dir (chroot into it with do_chroot) and set up ctx to receive onto
 * it.  Prints its own errors; 0 or a negative errno.
 * receive_ctx_release() undoes it.
 */
int receive_dir_open(struct receive_ctx *ctx, const char *dir, bool do_chroot);

#endif
