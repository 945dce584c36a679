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
#include <stdint.h>
#include <stdlib.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "confined-path.h"
#include "paths.h"
#include "utils.h"

/*
 * The tree being received gets a large cache, up to half the fds the
 * process may open; a clone source, looked up once per CLONE command, a
 * single set.
 */
#define RECEIVE_CACHE_SETS 256

static unsigned int cache_sets(void)
{
	unsigned int sets = RECEIVE_CACHE_SETS;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 1;
	while (sets > 1 && (rlim_t)sets * CONFINED_WAYS * 2 > rl.rlim_cur)
		sets /= 2;
	return sets;
}

void confined_init(struct confined_root *cr, int root_fd, bool check_dev)
{
	struct stat st;

	cr->check_dev = check_dev;
	cr->root_dev = check_dev && !fstat(root_fd, &st) ? st.st_dev : 0;
	cr->root_fd = root_fd;
	cr->clock = 0;
	cr->nr_sets = check_dev ? 1 : cache_sets();
	cr->cache = NULL;
}

static void drop_slot(struct confined_dir *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
}

static void confined_forget(struct confined_root *cr)
{
	if (!cr->cache)
		return;
	for (unsigned int i = 0; i < cr->nr_sets * CONFINED_WAYS; i++)
		drop_slot(&cr->cache[i]);
}

void confined_forget_under(struct confined_root *cr, const char *path)
{
	if (!cr->cache)
		return;
	for (unsigned int i = 0; i < cr->nr_sets * CONFINED_WAYS; i++) {
		struct confined_dir *d = &cr->cache[i];

		if (d->fd >= 0 && path_is_under(d->path, path))
			drop_slot(d);
	}
}

void confined_release(struct confined_root *cr)
{
	if (cr->cache) {
		confined_forget(cr);
		for (unsigned int i = 0; i < cr->nr_sets * CONFINED_WAYS; i++)
			free(cr->cache[i].path);
		free(cr->cache);
		cr->cache = NULL;
	}
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

/* openat2(2) refuses every way out; without it, one component at a time. */
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

static int alloc_cache(struct confined_root *cr)
{
	size_t n = (size_t)cr->nr_sets * CONFINED_WAYS;

	cr->cache = calloc(n, sizeof(*cr->cache));
	if (!cr->cache)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		cr->cache[i].fd = -1;
	return 0;
}

/* The slot that holds this directory, or else its set's least recent. */
static struct confined_dir *find_slot(struct confined_root *cr,
				      const char *path, size_t len,
				      unsigned int hash, bool *hit)
{
	struct confined_dir *set, *lru;

	set = &cr->cache[(hash & (cr->nr_sets - 1)) * CONFINED_WAYS];
	lru = &set[0];
	for (int i = 0; i < CONFINED_WAYS; i++) {
		struct confined_dir *d = &set[i];

		if (d->fd >= 0 && d->hash == hash && d->len == len &&
		    !memcmp(d->path, path, len)) {
			*hit = true;
			return d;
		}
		if (d->fd < 0 || (lru->fd >= 0 && d->used < lru->used))
			lru = d;
	}
	*hit = false;
	return lru;
}

static int set_slot_path(struct confined_dir *d, const char *path,
			 size_t len)
{
	char *p;

	if (len + 1 > d->path_size) {
		p = realloc(d->path, len + 1);
		if (!p)
			return -ENOMEM;
		d->path = p;
		d->path_size = len + 1;
	}
	memcpy(d->path, path, len);
	d->path[len] = '\0';
	d->len = len;
	return 0;
}

int confined_lookup(struct confined_root *cr, const char *path, int *dir_fd,
		    const char **name)
{
	struct confined_dir *slot;
	const char *slash;
	unsigned int hash;
	size_t dir_len;
	bool hit;
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
	if (!cr->cache && alloc_cache(cr) < 0) {
		error("cannot open directory of %s: %s", path, strerror(ENOMEM));
		return -ENOMEM;
	}
	hash = path_hash(path, dir_len);
	slot = find_slot(cr, path, dir_len, hash, &hit);
	if (hit) {
		slot->used = ++cr->clock;
		*dir_fd = slot->fd;
		return 0;
	}
	drop_slot(slot);
	ret = set_slot_path(slot, path, dir_len);
	if (ret < 0) {
		error("cannot open directory of %s: %s", path, strerror(-ret));
		return ret;
	}
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
	slot->hash = hash;
	slot->used = ++cr->clock;
	*dir_fd = fd;
	return 0;
}
