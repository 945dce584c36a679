/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Stream paths resolved beneath the subvolume being received: a directory
 * fd and a final name, never a string pasted onto the mount point.
 */
#ifndef CONFINED_PATH_H
#define CONFINED_PATH_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

/*
 * The parent directories looked up before, reused by the commands that
 * follow: a file's own commands, the directory times the stream sets after
 * adding to it, both sides of a rename.  A send walks inodes in number
 * order, which scatters consecutive files over the whole tree, so the
 * cache is large (a few hundred directories) and set-associative.
 */
struct confined_dir {
	int fd;
	unsigned int hash;
	size_t len;
	unsigned long used;
	char *path;
	size_t path_size;
};

#define CONFINED_WAYS 4

struct confined_root {
	int root_fd;
	/* Set: directories must be on the root's subvolume (st_dev). */
	bool check_dev;
	dev_t root_dev;
	unsigned long clock;
	unsigned int nr_sets;		/* a power of two */
	struct confined_dir *cache;	/* nr_sets * CONFINED_WAYS, lazily */
};

/*
 * check_dev: refuse directories of nested subvolumes, for trees the stream
 * did not make (clone sources); the tree being received has none.
 */
void confined_init(struct confined_root *cr, int root_fd, bool check_dev);
/*
 * Forget the cached directories at path and beneath it: call before a
 * directory is renamed (for both names) or removed.
 */
void confined_forget_under(struct confined_root *cr, const char *path);
void confined_release(struct confined_root *cr);

/*
 * Split path into the fd of its parent directory, opened beneath the root
 * without following any symlink, and its final component (a pointer into
 * path, or "." for the root itself).  The fd belongs to cr and stays
 * valid until the lookup after next.  Refuses
 * absolute paths, "." and ".." components and empty components with
 * -EXDEV / -EINVAL after printing an ERROR naming the path.
 */
int confined_lookup(struct confined_root *cr, const char *path, int *dir_fd,
		    const char **name);

#endif
