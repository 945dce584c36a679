/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Stream paths resolved beneath the subvolume being received: a directory
 * fd and a final name, never a string pasted onto the mount point.
 */
#ifndef CONFINED_PATH_H
#define CONFINED_PATH_H

#include <limits.h>
#include <sys/types.h>

/* The last parent directory looked up, reused by consecutive commands. */
struct confined_root {
	int root_fd;
	dev_t root_dev;
	int cached_fd;
	size_t cached_len;
	char cached_dir[PATH_MAX];
};

void confined_init(struct confined_root *cr, int root_fd);
/* Forget the cached directory; call after anything renames or removes. */
void confined_forget(struct confined_root *cr);
void confined_release(struct confined_root *cr);

/*
 * Split path into the fd of its parent directory, opened beneath the root
 * without following any symlink, and its final component (a pointer into
 * path, or "." for the root itself).  The fd belongs to cr.  Refuses
 * absolute paths, "." and ".." components and empty components with
 * -EXDEV / -EINVAL after printing an ERROR naming the path.
 */
int confined_lookup(struct confined_root *cr, const char *path, int *dir_fd,
		    const char **name);

#endif
