/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The subvolumes of one btrfs filesystem, indexed by uuid, by received
 * uuid and by root id, built from libbtrfsutil.  The only place
 * that knows how subvolumes are found.
 */
#ifndef SUBVOL_INDEX_H
#define SUBVOL_INDEX_H

#include <stdbool.h>
#include <stdint.h>

#include "rbtree.h"

struct subvol_info {
	uint64_t root_id;
	uint8_t uuid[16];
	uint8_t parent_uuid[16];
	uint8_t received_uuid[16];
	uint64_t ctransid;
	uint64_t stransid;
	bool read_only;
	/* Relative to the filesystem's top level, no leading slash. */
	char *path;

	struct rb_node by_uuid;
	struct rb_node by_received_uuid;
	struct rb_node by_root_id;
};

struct subvol_index {
	struct rb_root by_uuid;
	struct rb_root by_received_uuid;
	struct rb_root by_root_id;
	unsigned int count;
};

/*
 * Index every subvolume of the filesystem that holds mount_path (which
 * must be a path on that filesystem; the top level need not be mounted).
 * 0 or a negative errno, with an ERROR line printed.
 */
int subvol_index_build(struct subvol_index *idx, const char *mount_path);
/* The same from an fd of any directory on the filesystem. */
int subvol_index_build_fd(struct subvol_index *idx, int fd);
void subvol_index_free(struct subvol_index *idx);

/* Add one subvolume; the index takes ownership of info and its path. */
void subvol_index_add(struct subvol_index *idx, struct subvol_info *info);

struct subvol_info *subvol_index_find_by_uuid(const struct subvol_index *idx,
					      const uint8_t *uuid);
/*
 * The subvolumes that carry this received uuid, lowest root id first (the
 * order in which they were received, as btrfs-progs lists them): the
 * first, then each next one; NULL after the last.
 */
struct subvol_info *
subvol_index_first_received(const struct subvol_index *idx,
			    const uint8_t *uuid);
struct subvol_info *subvol_index_next_received(const struct subvol_info *info);
struct subvol_info *
subvol_index_find_by_root_id(const struct subvol_index *idx, uint64_t id);

#endif
