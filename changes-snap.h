/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * send --changes: the refiner of the model's inodes (changes.h), which
 * looks at the parent snapshot and the snapshot sent.
 */
#ifndef CHANGES_SNAP_H
#define CHANGES_SNAP_H

#include "changes.h"

/* The two snapshots, as paths of mounted subvolumes. */
struct changes_snapshots {
	const char *before;	/* the parent */
	const char *after;	/* the snapshot sent */
};

/* A changes_refine_fn; arg is a struct changes_snapshots. */
int changes_refine_snapshots(struct change_inode *ci, void *arg);

#endif
