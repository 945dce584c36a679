/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Subvolumes found as btrfs-progs finds them: by root id, and by uuid or
 * received uuid through the filesystem's UUID tree, so that a lookup costs
 * the same with ten subvolumes or ten thousand.  The only place that
 * knows how subvolumes are found.
 */
#ifndef SUBVOL_LOOKUP_H
#define SUBVOL_LOOKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct subvol_info {
	uint64_t root_id;
	uint8_t uuid[16];
	uint8_t parent_uuid[16];
	uint8_t received_uuid[16];
	uint64_t ctransid;
	uint64_t stransid;
	bool read_only;
};

/*
 * The subvolume root_id of the filesystem that holds fd: 0, -ENOENT if
 * there is none, or another negative errno.
 */
int subvol_get(int fd, uint64_t root_id, struct subvol_info *info);

/* Its path from the top level, no leading slash, in *path (malloc'd). */
int subvol_path(int fd, uint64_t root_id, char **path);

/*
 * The root ids of the subvolumes whose own uuid (received false) or
 * received uuid is uuid, lowest first, in *ids (malloc'd, NULL when there
 * are none): their number, or a negative errno.
 */
ssize_t subvol_ids_by_uuid(int fd, const uint8_t *uuid, bool received,
			   uint64_t **ids);

#endif
