// SPDX-License-Identifier: GPL-2.0-only
/*
 * Tree and range copies for receive --to-dir, and the copy of a CLONE
 * that the kernel refuses on a btrfs destination.  A range is first
 * offered to FICLONERANGE (xfs, btrfs: the copy shares extents as a btrfs
 * snapshot would); where it is refused, copy_file_range runs over the
 * data ranges only (SEEK_DATA / SEEK_HOLE), so holes stay holes.
 * The source tree is walked with *at() calls from directory fds and never
 * follows a symlink; hardlinked inodes are copied once and linked.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "confined-path.h"
#include "copy-tree.h"
#include "utils.h"

#define COPY_CHUNK (1024 * 1024)

/* The inode flags a user may set, and that a copy carries over. */
#define COPIED_FLAGS (FS_NOCOW_FL | FS_NOCOMP_FL | FS_SYNC_FL | \
		      FS_IMMUTABLE_FL | FS_APPEND_FL | FS_NODUMP_FL | \
		      FS_NOATIME_FL | FS_DIRSYNC_FL | FS_COMPR_FL)

static bool clone_refused(int err)
{
	return err == EOPNOTSUPP || err == ENOTTY || err == EXDEV ||
	       err == EINVAL || err == ENOSYS;
}

/* Bytes through a buffer: where copy_file_range refuses (overlaps...). */
static int copy_by_read(int src_fd, off_t src_off, int dst_fd, off_t dst_off,
			uint64_t len)
{
	char *buf = malloc(COPY_CHUNK);
	ssize_t n = 0;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	while (len) {
		n = pread(src_fd, buf, len < COPY_CHUNK ? len : COPY_CHUNK,
			  src_off);
		if (n <= 0)
			break;
		if (pwrite(dst_fd, buf, n, dst_off) != n) {
			n = -1;
			break;
		}
		src_off += n;
		dst_off += n;
		len -= n;
	}
	if (n < 0)
		ret = errno ? -errno : -EIO;
	free(buf);
	return ret;
}

static int copy_data(int src_fd, off_t src_off, int dst_fd, off_t dst_off,
		     uint64_t len)
{
	ssize_t n;

	while (len) {
		n = copy_file_range(src_fd, &src_off, dst_fd, &dst_off,
				    len < SSIZE_MAX ? len : SSIZE_MAX, 0);
		if (n == 0)
			return 0;	/* the source ends early */
		if (n > 0) {
			len -= n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EINVAL && errno != EXDEV && errno != EOPNOTSUPP &&
		    errno != ENOSYS)
			return -errno;
		return copy_by_read(src_fd, src_off, dst_fd, dst_off, len);
	}
	return 0;
}

/* A hole of the source over what dst holds there; beyond EOF it is one. */
static int make_hole(int dst_fd, off_t off, uint64_t len)
{
	struct stat st;
	char *zeros;
	int ret;

	if (fstat(dst_fd, &st) < 0)
		return -errno;
	if (off >= st.st_size)
		return 0;
	if ((uint64_t)(st.st_size - off) < len)
		len = st.st_size - off;
	if (!fallocate(dst_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
		       len))
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
	zeros = calloc(1, COPY_CHUNK);
	if (!zeros)
		return -ENOMEM;
	ret = 0;
	while (len && !ret) {
		size_t n = len < COPY_CHUNK ? len : COPY_CHUNK;

		if (pwrite(dst_fd, zeros, n, off) != (ssize_t)n)
			ret = errno ? -errno : -EIO;
		off += n;
		len -= n;
	}
	free(zeros);
	return ret;
}

/* The next data at or after pos, below end; end when there is none. */
static off_t next_data(int fd, off_t pos, off_t end)
{
	off_t data = lseek(fd, pos, SEEK_DATA);

	if (data < 0)
		return errno == ENXIO ? end : pos;
	return data < end ? data : end;
}

/* The end of the data at pos: always past it, so the walk moves on. */
static off_t next_hole(int fd, off_t pos, off_t end)
{
	off_t hole = lseek(fd, pos, SEEK_HOLE);

	return hole <= pos || hole > end ? end : hole;
}

static int copy_sparse(int src_fd, off_t src_off, int dst_fd, off_t dst_off,
		       uint64_t len)
{
	off_t end = src_off + len, pos = src_off, data, hole;
	struct stat st;
	int ret;

	while (pos < end) {
		data = next_data(src_fd, pos, end);
		if (data > pos) {
			ret = make_hole(dst_fd, dst_off + (pos - src_off),
					data - pos);
			if (ret < 0)
				return ret;
		}
		if (data >= end)
			break;
		hole = next_hole(src_fd, data, end);
		ret = copy_data(src_fd, data, dst_fd, dst_off + (data - src_off),
				hole - data);
		if (ret < 0)
			return ret;
		pos = hole;
	}
	/* A clone past dst's end grows it, even by a hole. */
	if (fstat(dst_fd, &st) < 0)
		return -errno;
	if (st.st_size < dst_off + (off_t)len &&
	    ftruncate(dst_fd, dst_off + len) < 0)
		return -errno;
	return 0;
}

/*
 * After EINVAL, which also means a malformed request: a source range past
 * the source's end, or overlapping its destination in the same file, is
 * refused by every filesystem and is no clone to carry out by copying.
 */
static bool range_copyable(int src_fd, uint64_t src_off, int dst_fd,
			   uint64_t dst_off, uint64_t len)
{
	struct stat src, dst;

	if (fstat(src_fd, &src) < 0 || fstat(dst_fd, &dst) < 0)
		return false;
	if (src_off + len > (uint64_t)src.st_size)
		return false;
	if (src.st_dev == dst.st_dev && src.st_ino == dst.st_ino &&
	    src_off < dst_off + len && dst_off < src_off + len)
		return false;
	return true;
}

int copy_range(int src_fd, uint64_t src_off, int dst_fd, uint64_t dst_off,
	       uint64_t len, struct copy_stats *stats)
{
	struct file_clone_range range = {
		.src_fd = src_fd,
		.src_offset = src_off,
		.src_length = len,
		.dest_offset = dst_off,
	};
	int ret;

	if (src_off > INT64_MAX - len || dst_off > INT64_MAX - len)
		return -EFBIG;
	if (!ioctl(dst_fd, FICLONERANGE, &range)) {
		stats->reflinked++;
		return 0;
	}
	ret = -errno;
	if (!clone_refused(-ret) ||
	    !range_copyable(src_fd, src_off, dst_fd, dst_off, len))
		return ret;
	stats->refused = -ret;
	ret = copy_sparse(src_fd, src_off, dst_fd, dst_off, len);
	if (!ret)
		stats->copied++;
	return ret;
}

/* The state of one tree copy. */
struct tree_copy {
	dev_t dev;
	bool (*skip_xattr)(const char *name);
	struct copy_stats *stats;
	/* Inodes with several links: the first copy's path, for linkat. */
	void *links;
	struct confined_root dst_paths;
	char path[PATH_MAX];
	size_t path_len;
};

struct link_entry {
	ino_t ino;
	char *path;
};

static int cmp_link(const void *a, const void *b)
{
	const struct link_entry *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static void free_link(void *p)
{
	struct link_entry *e = p;

	free(e->path);
	free(e);
}

static int fail(struct tree_copy *tc, const char *what, int err)
{
	error("snapshot copy: %s %s failed: %s", what,
	      tc->path_len ? tc->path : ".", strerror(-err));
	return err;
}

static int copy_xattr_list(struct tree_copy *tc, int src_dir, int dst_dir,
			   const char *name, char *list, ssize_t size)
{
	char *value = NULL;
	ssize_t vlen;
	char *x;
	int ret = 0;

	for (x = list; x < list + size; x += strlen(x) + 1) {
		if (tc->skip_xattr && tc->skip_xattr(x))
			continue;
		if (fchdir(src_dir) < 0)
			return -errno;
		vlen = lgetxattr(name, x, NULL, 0);
		free(value);
		value = vlen >= 0 ? malloc(vlen + 1) : NULL;
		if (!value ||
		    (vlen = lgetxattr(name, x, value, vlen)) < 0 ||
		    fchdir(dst_dir) < 0 || lsetxattr(name, x, value, vlen, 0) < 0) {
			ret = errno ? -errno : -ENOMEM;
			break;
		}
	}
	free(value);
	return ret;
}

/*
 * xattr calls have no *at() form: they run from inside the directory, as
 * the applier's do (receive-apply.c, enter_dir_of(): no other thread
 * resolves a path against the working directory).
 */
static int copy_xattrs(struct tree_copy *tc, int src_dir, int dst_dir,
		       const char *name)
{
	ssize_t size;
	char *list;
	int ret;

	if (fchdir(src_dir) < 0)
		return -errno;
	size = llistxattr(name, NULL, 0);
	if (size < 0)
		return errno == EOPNOTSUPP ? 0 : -errno;
	if (size == 0)
		return 0;
	list = malloc(size);
	if (!list)
		return -ENOMEM;
	size = llistxattr(name, list, size);
	ret = size < 0 ? -errno : copy_xattr_list(tc, src_dir, dst_dir, name,
						   list, size);
	free(list);
	return ret;
}

/* Inode flags last but times: immutable or append-only ends the copy. */
static void copy_flags(struct tree_copy *tc, int src_fd, int dst_fd)
{
	unsigned int flags = 0;

	if (ioctl(src_fd, FS_IOC_GETFLAGS, &flags) < 0 ||
	    !(flags & COPIED_FLAGS))
		return;
	flags &= COPIED_FLAGS;
	if (!ioctl(dst_fd, FS_IOC_SETFLAGS, &flags) || tc->stats->flags_warned)
		return;
	warning("inode flags not copied, the destination does not support them: %m (first on %s)",
		tc->path_len ? tc->path : ".");
	tc->stats->flags_warned = true;
}

/* Owner before mode (chown clears set-id bits), xattrs after chown. */
static int copy_attrs(struct tree_copy *tc, int src_dir, int dst_dir,
		      const char *name, const struct stat *st)
{
	struct timespec ts[2] = { st->st_atim, st->st_mtim };
	int ret;

	if (fchownat(dst_dir, name, st->st_uid, st->st_gid,
		     AT_SYMLINK_NOFOLLOW) < 0)
		return fail(tc, "chown", -errno);
	if (!S_ISLNK(st->st_mode) &&
	    fchmodat(dst_dir, name, st->st_mode & 07777, 0) < 0)
		return fail(tc, "chmod", -errno);
	ret = copy_xattrs(tc, src_dir, dst_dir, name);
	if (ret < 0)
		return fail(tc, "copying xattrs of", ret);
	if (utimensat(dst_dir, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return fail(tc, "utimes", -errno);
	return 0;
}

/* 1 when the inode was copied already and name is now a link to it. */
static int link_known(struct tree_copy *tc, const struct stat *st,
		      int dst_dir, const char *name)
{
	struct link_entry key = { .ino = st->st_ino }, **found, *e;
	const char *first_name;
	int first_dir, ret;

	if (st->st_nlink < 2)
		return 0;
	found = (struct link_entry **)tfind(&key, &tc->links, cmp_link);
	if (!found) {
		e = calloc(1, sizeof(*e));
		if (!e || !(e->path = strdup(tc->path))) {
			free(e);
			return fail(tc, "remembering the links of", -ENOMEM);
		}
		e->ino = st->st_ino;
		if (!tsearch(e, &tc->links, cmp_link)) {
			free_link(e);
			return fail(tc, "remembering the links of", -ENOMEM);
		}
		return 0;
	}
	ret = confined_lookup(&tc->dst_paths, (*found)->path, &first_dir,
			      &first_name);
	if (ret < 0)
		return ret;
	if (linkat(first_dir, first_name, dst_dir, name, 0) < 0)
		return fail(tc, "link", -errno);
	return 1;
}

static int copy_file(struct tree_copy *tc, int src_dir, int dst_dir,
		     const char *name, const struct stat *st)
{
	struct stat opened;
	int src, dst, ret = 0;

	src = openat(src_dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
		     O_NOCTTY | O_CLOEXEC);
	if (src < 0)
		return fail(tc, "open", -errno);
	if (fstat(src, &opened) < 0 || opened.st_ino != st->st_ino) {
		close(src);
		return fail(tc, "open", -EAGAIN);
	}
	dst = openat(dst_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		     O_CLOEXEC, 0600);
	if (dst < 0) {
		close(src);
		return fail(tc, "create", -errno);
	}
	if (st->st_size)
		ret = copy_range(src, 0, dst, 0, st->st_size, tc->stats);
	if (ret < 0)
		fail(tc, "copying data of", ret);
	else
		ret = copy_attrs(tc, src_dir, dst_dir, name, st);
	if (!ret)
		copy_flags(tc, src, dst);
	close(dst);
	close(src);
	return ret;
}

static int copy_dir_entries(struct tree_copy *tc, int src_fd, int dst_fd);

static int copy_dir(struct tree_copy *tc, int src_dir, int dst_dir,
		    const char *name, const struct stat *st)
{
	int src, dst, ret;

	if (st->st_dev != tc->dev)
		return fail(tc, "crossing into another filesystem at", -EXDEV);
	if (mkdirat(dst_dir, name, 0700) < 0)
		return fail(tc, "mkdir", -errno);
	src = openat(src_dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		     O_CLOEXEC);
	if (src < 0)
		return fail(tc, "open", -errno);
	dst = openat(dst_dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		     O_CLOEXEC);
	if (dst < 0) {
		close(src);
		return fail(tc, "open", -errno);
	}
	ret = copy_dir_entries(tc, src, dst);
	if (!ret)
		ret = copy_attrs(tc, src_dir, dst_dir, name, st);
	if (!ret)
		copy_flags(tc, src, dst);
	close(dst);
	close(src);
	return ret;
}

static int copy_symlink(struct tree_copy *tc, int src_dir, int dst_dir,
			const char *name, const struct stat *st)
{
	char target[PATH_MAX];
	ssize_t n;

	n = readlinkat(src_dir, name, target, sizeof(target));
	if (n < 0 || n >= (ssize_t)sizeof(target))
		return fail(tc, "readlink", n < 0 ? -errno : -ENAMETOOLONG);
	target[n] = '\0';
	if (symlinkat(target, dst_dir, name) < 0)
		return fail(tc, "symlink", -errno);
	return copy_attrs(tc, src_dir, dst_dir, name, st);
}

static int copy_entry(struct tree_copy *tc, int src_dir, int dst_dir,
		      const char *name)
{
	struct stat st;
	int ret;

	if (fstatat(src_dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return fail(tc, "stat", -errno);
	if (S_ISDIR(st.st_mode))
		return copy_dir(tc, src_dir, dst_dir, name, &st);
	if (S_ISLNK(st.st_mode))
		return copy_symlink(tc, src_dir, dst_dir, name, &st);
	ret = link_known(tc, &st, dst_dir, name);
	if (ret)
		return ret < 0 ? ret : 0;
	if (S_ISREG(st.st_mode))
		return copy_file(tc, src_dir, dst_dir, name, &st);
	if (mknodat(dst_dir, name, st.st_mode & (S_IFMT | 07777),
		    st.st_rdev) < 0)
		return fail(tc, "mknod", -errno);
	return copy_attrs(tc, src_dir, dst_dir, name, &st);
}

/* tc->path follows the walk: errors and hardlinks name the entry. */
static int push_name(struct tree_copy *tc, const char *name)
{
	size_t len = strlen(name);
	size_t sep = tc->path_len ? 1 : 0;

	if (tc->path_len + sep + len >= sizeof(tc->path))
		return fail(tc, "path too long below", -ENAMETOOLONG);
	if (sep)
		tc->path[tc->path_len] = '/';
	memcpy(tc->path + tc->path_len + sep, name, len + 1);
	tc->path_len += sep + len;
	return 0;
}

static int copy_dir_entries(struct tree_copy *tc, int src_fd, int dst_fd)
{
	size_t saved = tc->path_len;
	struct dirent *de;
	DIR *dir;
	int fd, ret = 0;

	fd = openat(src_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(dir = fdopendir(fd))) {
		ret = fail(tc, "reading directory", -errno);
		if (fd >= 0)
			close(fd);
		return ret;
	}
	while (!ret && (errno = 0, de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		ret = push_name(tc, de->d_name);
		if (!ret)
			ret = copy_entry(tc, src_fd, dst_fd, de->d_name);
		tc->path_len = saved;
		tc->path[saved] = '\0';
	}
	if (!ret && errno)
		ret = fail(tc, "reading directory", -errno);
	closedir(dir);
	return ret;
}

int copy_tree(int src_fd, int dst_fd, bool (*skip_xattr)(const char *name),
	      struct copy_stats *stats)
{
	struct tree_copy tc = {
		.stats = stats,
	};
	struct stat st;
	int ret;

	if (fstat(src_fd, &st) < 0)
		return fail(&tc, "stat", -errno);
	tc.dev = st.st_dev;
	confined_init(&tc.dst_paths, dst_fd, false);
	ret = copy_dir_entries(&tc, src_fd, dst_fd);
	/* Only the root's own xattrs may hold what skip_xattr names. */
	tc.skip_xattr = skip_xattr;
	if (!ret)
		ret = copy_attrs(&tc, src_fd, dst_fd, ".", &st);
	if (!ret)
		copy_flags(&tc, src_fd, dst_fd);
	confined_release(&tc.dst_paths);
	tdestroy(tc.links, free_link);
	return ret;
}
