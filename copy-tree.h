/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Copies for receive --to-dir, where a snapshot or a clone cannot share
 * extents the btrfs way, and for a CLONE the kernel refuses on btrfs:
 * reflinks where the filesystem has them, else copy_file_range, holes
 * kept.
 */
#ifndef COPY_TREE_H
#define COPY_TREE_H

#include <stdbool.h>
#include <stdint.h>

struct copy_stats {
	uint64_t reflinked;	/* ranges shared with FICLONERANGE */
	uint64_t copied;	/* ranges copied */
	int refused;		/* errno of the last FICLONERANGE refused */
	bool flags_warned;	/* inode flags refused: warned once */
};

/*
 * Make dst's [dst_off, dst_off + len) what src's [src_off, src_off + len)
 * is, holes included, growing dst if needed: a reflink, or a copy where
 * the kernel refuses one for this pair of files (another filesystem,
 * different checksum flags...).  A range no filesystem could clone (past
 * the source's end, overlapping itself) keeps the kernel's error.  0 or a
 * negative errno.
 */
int copy_range(int src_fd, uint64_t src_off, int dst_fd, uint64_t dst_off,
	       uint64_t len, struct copy_stats *stats);

/*
 * Copy everything below the directory src_fd into the empty directory
 * dst_fd, and the attributes of src_fd itself, except the xattrs for
 * which skip_xattr() is true: files (reflinked or copied), directories,
 * symlinks, device nodes, FIFOs, sockets, hardlinks, owners, modes,
 * xattrs, inode flags and times.  The source must not cross into another
 * filesystem.  Prints an ERROR naming the path on failure.
 */
int copy_tree(int src_fd, int dst_fd, bool (*skip_xattr)(const char *name),
	      struct copy_stats *stats);

#endif
