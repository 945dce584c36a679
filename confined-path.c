// SPDX-License-Identifier: GPL-2.0-only
/*
 * Confinement of stream paths.  Every path of a stream is relative to the
 * subvolume being received; a hostile stream may try to leave it through
 * an absolute path, a ".." component or a symlink it created earlier.
 * Paths are checked lexically, then their directories are opened with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) from the subvolume's fd,
 * so the kernel refuses any way out.  The final component is never
 * followed: callers use it with *at() calls and NOFOLLOW flags.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "confined-path.h"
#include "utils.h"

void confined_init(struct confined_root *cr, int root_fd, bool check_dev)
{
	struct stat st;

	cr->check_dev = check_dev;
	cr->root_dev = check_dev && !fstat(root_fd, &st) ? st.st_dev : 0;
	cr->root_fd = root_fd;
	cr->clock = 0;
	for (int i = 0; i < CONFINED_CACHE_SLOTS; i++)
		cr->cache[i].fd = -1;
}

void confined_forget(struct confined_root *cr)
{
	for (int i = 0; i < CONFINED_CACHE_SLOTS; i++) {
		if (cr->cache[i].fd >= 0)
			close(cr->cache[i].fd);
		cr->cache[i].fd = -1;
	}
}

void confined_release(struct confined_root *cr)
{
	confined_forget(cr);
	cr->root_fd = -1;
}

/* Lexical check: relative, no empty, "." or ".." component. */
static int check_components(const char *path)
{
	const char *p = path;
	const char *slash;
	size_t len;

	if (*path == '/') {
		error("absolute path in stream refused: %s", path);
		return -EXDEV;
	}
	for (;;) {
		slash = strchr(p, '/');
		len = slash ? (size_t)(slash - p) : strlen(p);
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			error("path in stream leaves the subvolume, refused: %s",
			      path);
			return -EXDEV;
		}
		if (len == 0 || (len == 1 && p[0] == '.')) {
			error("path in stream has an empty or '.' component, refused: %s",
			      path);
			return -EINVAL;
		}
		if (!slash)
			return 0;
		p = slash + 1;
	}
}

/*
 * Without openat2 (old kernels, valgrind): one component at a time, none
 * of them followed if it is a symlink.  The path was checked lexically.
 */
static int walk_beneath(int root_fd, char *dir)
{
	int fd = root_fd, next, ret = 0;
	char *comp = dir, *slash;
	struct stat st;

	for (;;) {
		slash = strchr(comp, '/');
		if (slash)
			*slash = '\0';
		next = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW |
			      O_CLOEXEC);
		if (next < 0) {
			ret = -errno;
			if (!fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) &&
			    S_ISLNK(st.st_mode))
				ret = -ELOOP;
		}
		if (slash)
			*slash = '/';
		if (fd != root_fd)
			close(fd);
		if (ret < 0)
			return ret;
		fd = next;
		if (!slash)
			return fd;
		comp = slash + 1;
	}
}

static int open_beneath(int root_fd, char *dir)
{
	struct open_how how = {
		.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
			   RESOLVE_NO_MAGICLINKS,
	};
	long fd;

	fd = syscall(SYS_openat2, root_fd, dir, &how, sizeof(how));
	if (fd < 0 && errno == ENOSYS)
		return walk_beneath(root_fd, dir);
	return fd < 0 ? -errno : (int)fd;
}

static bool same_subvolume(const struct confined_root *cr, int fd)
{
	struct stat st;

	return !fstat(fd, &st) && st.st_dev == cr->root_dev;
}

/* The slot that holds this directory, or else the least recently used. */
static struct confined_dir *find_slot(struct confined_root *cr,
				      const char *path, size_t len)
{
	struct confined_dir *lru = &cr->cache[0];

	for (int i = 0; i < CONFINED_CACHE_SLOTS; i++) {
		struct confined_dir *d = &cr->cache[i];

		if (d->fd >= 0 && d->len == len && !memcmp(d->path, path, len))
			return d;
		if (d->fd < 0 || d->used < lru->used)
			lru = d;
	}
	return lru;
}

int confined_lookup(struct confined_root *cr, const char *path, int *dir_fd,
		    const char **name)
{
	struct confined_dir *slot;
	const char *slash;
	size_t dir_len;
	int fd, ret;

	if (*path == '\0') {
		*dir_fd = cr->root_fd;
		*name = ".";
		return 0;
	}
	ret = check_components(path);
	if (ret < 0)
		return ret;
	slash = strrchr(path, '/');
	if (!slash) {
		*dir_fd = cr->root_fd;
		*name = path;
		return 0;
	}
	dir_len = slash - path;
	*name = slash + 1;
	slot = find_slot(cr, path, dir_len);
	if (slot->fd >= 0 && slot->len == dir_len &&
	    !memcmp(slot->path, path, dir_len)) {
		slot->used = ++cr->clock;
		*dir_fd = slot->fd;
		return 0;
	}
	if (slot->fd >= 0)
		close(slot->fd);
	slot->fd = -1;
	memcpy(slot->path, path, dir_len);
	slot->path[dir_len] = '\0';
	fd = open_beneath(cr->root_fd, slot->path);
	if (fd >= 0 && cr->check_dev && !same_subvolume(cr, fd)) {
		close(fd);
		fd = -EXDEV;
	}
	if (fd < 0) {
		if (fd == -ELOOP || fd == -EXDEV)
			error("path in stream goes through a symlink or out of the subvolume, refused: %s",
			      path);
		else
			error("cannot open directory of %s: %s", path,
			      strerror(-fd));
		return fd;
	}
	slot->fd = fd;
	slot->len = dir_len;
	slot->used = ++cr->clock;
	*dir_fd = fd;
	return 0;
}
