/* SPDX-License-Identifier: GPL-2.0-only */
/* Which mount holds a path, from /proc/self/mountinfo. */
#ifndef MOUNTS_H
#define MOUNTS_H

#include <stdbool.h>

struct mount_point {
	char *dir;		/* the mount point */
	char *fs_root;		/* what it mounts: from the top, no leading / */
	bool is_btrfs;
};

/*
 * The mount whose mount point is the longest prefix of path (absolute,
 * without symlinks: a realpath), the last listed when several share it,
 * which is the one on top.  0 with *mp set (free it with
 * mount_point_free), 1 when no mount holds path, or a negative errno.
 */
int mount_point_find(const char *path, struct mount_point *mp);
/*
 * The same among btrfs mounts only, even where another filesystem is
 * mounted nearer to path.  0 with *mp set, -ENOENT when no btrfs mount
 * holds path, or a negative errno.
 */
int mount_point_find_btrfs(const char *path, struct mount_point *mp);
void mount_point_free(struct mount_point *mp);

#endif
