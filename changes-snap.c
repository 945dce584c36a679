// SPDX-License-Identifier: GPL-2.0-only
/*
 * send --changes looks at both snapshots to say exactly what changed in
 * an inode the stream touched.  The stream says an inode's extents or
 * times changed, not whether its bytes or its mtime did: a file rewritten
 * with the same bytes gets new extents, a chmod to the same mode a new
 * ctime.  So the inode is compared: its stat always, its xattrs when the
 * stream set or removed one, its bytes over the ranges the stream named.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "changes-snap.h"

#define COMPARE_CHUNK	(256 * 1024)

/* root + path, path "/..." as the model gives it. */
static char *join(const char *root, const char *path)
{
	size_t rlen = strlen(root), plen = strlen(path);
	char *s = malloc(rlen + plen + 1);

	if (s) {
		memcpy(s, root, rlen);
		memcpy(s + rlen, path, plen + 1);
	}
	return s;
}

static int lstat_in(const char *root, const char *path, struct stat *st)
{
	char *full = join(root, path);
	int ret = 0;

	if (!full)
		return -ENOMEM;
	if (lstat(full, st) < 0)
		ret = -errno;
	free(full);
	return ret;
}

static enum change_type type_of(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return CHANGE_TYPE_FILE;
	case S_IFDIR:
		return CHANGE_TYPE_DIR;
	case S_IFLNK:
		return CHANGE_TYPE_SYMLINK;
	case S_IFBLK:
		return CHANGE_TYPE_BLOCK;
	case S_IFCHR:
		return CHANGE_TYPE_CHAR;
	case S_IFIFO:
		return CHANGE_TYPE_FIFO;
	case S_IFSOCK:
		return CHANGE_TYPE_SOCKET;
	}
	return CHANGE_TYPE_UNKNOWN;
}

static unsigned int stat_changes(const struct stat *a, const struct stat *b)
{
	unsigned int what = 0;

	if (a->st_size != b->st_size)
		what |= CHANGED_SIZE;
	if (a->st_mode != b->st_mode)
		what |= CHANGED_MODE;
	if (a->st_uid != b->st_uid)
		what |= CHANGED_OWNER;
	if (a->st_gid != b->st_gid)
		what |= CHANGED_GROUP;
	if (a->st_mtim.tv_sec != b->st_mtim.tv_sec ||
	    a->st_mtim.tv_nsec != b->st_mtim.tv_nsec)
		what |= CHANGED_MTIME;
	return what;
}

/* The names of path's xattrs, NUL-separated, in *list (malloc'd). */
static ssize_t xattr_names(const char *path, char **list)
{
	ssize_t len;

	for (;;) {
		len = llistxattr(path, NULL, 0);
		if (len <= 0) {
			*list = NULL;
			return len < 0 ? -errno : 0;
		}
		*list = malloc(len);
		if (!*list)
			return -ENOMEM;
		len = llistxattr(path, *list, len);
		if (len >= 0)
			return len;
		free(*list);
		if (errno != ERANGE)
			return -errno;
	}
}

/* 1 if name has another value (or none) on b than on a, 0 if the same. */
static int xattr_differs(const char *a, const char *b, const char *name)
{
	ssize_t la = lgetxattr(a, name, NULL, 0);
	ssize_t lb = lgetxattr(b, name, NULL, 0);
	char *va, *vb;
	int ret;

	if (la < 0 || lb < 0 || la != lb)
		return 1;
	va = malloc(la + 1);
	vb = malloc(lb + 1);
	ret = -ENOMEM;
	if (va && vb) {
		la = lgetxattr(a, name, va, la);
		lb = lgetxattr(b, name, vb, lb);
		ret = la != lb || la < 0 || memcmp(va, vb, la);
	}
	free(va);
	free(vb);
	return ret;
}

/* 1 if the xattrs of a and b differ in a name or a value, 0 if not. */
static int xattrs_differ(const char *a, const char *b)
{
	char *na = NULL, *nb = NULL;
	ssize_t la, lb;
	const char *p;
	int ret;

	la = xattr_names(a, &na);
	lb = xattr_names(b, &nb);
	ret = la < 0 ? la : lb < 0 ? lb : la != lb;
	/* Same length of names: same set if each of a's is a value of b. */
	for (p = na; !ret && p && p < na + la; p += strlen(p) + 1)
		ret = xattr_differs(a, b, p);
	free(na);
	free(nb);
	return ret;
}

/* len bytes at off of fd, zeros past its size. */
static int read_zero_filled(int fd, char *buf, size_t len, uint64_t off)
{
	ssize_t n;
	size_t got = 0;

	while (got < len) {
		n = pread(fd, buf + got, len - got, off + got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += n;
	}
	memset(buf + got, 0, len - got);
	return 0;
}

/* 1 if b's bytes over r (up to b's size) differ from a's, zero-extended. */
static int range_differs(int a, int b, const struct change_range *r,
			 uint64_t size, char *buf)
{
	uint64_t off = r->offset;
	uint64_t end = r->offset + r->len < size ? r->offset + r->len : size;
	size_t len;
	int ret;

	for (; off < end; off += len) {
		len = end - off < COMPARE_CHUNK ? end - off : COMPARE_CHUNK;
		ret = read_zero_filled(a, buf, len, off);
		if (!ret)
			ret = read_zero_filled(b, buf + COMPARE_CHUNK, len, off);
		if (ret)
			return ret;
		if (memcmp(buf, buf + COMPARE_CHUNK, len))
			return 1;
	}
	return 0;
}

/* 1 if the data of file b differs from that of a over ci's ranges. */
static int data_differs(const char *a, const char *b,
			const struct change_inode *ci, uint64_t size)
{
	int fa = open(a, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
	int fb = open(b, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
	char *buf = malloc(2 * COMPARE_CHUNK);
	size_t i;
	int ret;

	ret = fa < 0 || fb < 0 ? -errno : buf ? 0 : -ENOMEM;
	for (i = 0; !ret && i < ci->nr_ranges; i++)
		ret = range_differs(fa, fb, &ci->ranges[i], size, buf);
	free(buf);
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	return ret;
}

/* What of ci changed, between what a and b hold. */
static int compare_inode(const struct changes_snapshots *snaps,
			 struct change_inode *ci, const struct stat *sa,
			 const struct stat *sb)
{
	char *a = join(snaps->before, ci->old_path);
	char *b = join(snaps->after, ci->new_path);
	unsigned int what = (ci->what & CHANGED_ENTRIES) | stat_changes(sa, sb);
	int ret = a && b ? 0 : -ENOMEM;

	if (!ret && (ci->what & CHANGED_XATTR)) {
		ret = xattrs_differ(a, b);
		if (ret > 0)
			what |= CHANGED_XATTR;
	}
	if (ret >= 0 && (ci->what & CHANGED_DATA) && S_ISREG(sb->st_mode) &&
	    S_ISREG(sa->st_mode)) {
		ret = data_differs(a, b, ci, sb->st_size);
		if (ret > 0)
			what |= CHANGED_DATA;
	}
	free(a);
	free(b);
	ci->what = what;
	return ret < 0 ? ret : 0;
}

int changes_refine_snapshots(struct change_inode *ci, void *arg)
{
	const struct changes_snapshots *snaps = arg;
	struct stat sa, sb;
	int ret;

	if (ci->old_path) {
		ret = lstat_in(snaps->before, ci->old_path, &sa);
		if (ret)
			return ret;
		ci->nlink_before = sa.st_nlink;
		ci->type = type_of(sa.st_mode);
	}
	if (!ci->new_path) {
		ci->what = 0;
		return 0;
	}
	ret = lstat_in(snaps->after, ci->new_path, &sb);
	if (ret)
		return ret;
	ci->nlink_after = sb.st_nlink;
	ci->ino = sb.st_ino;
	ci->type = type_of(sb.st_mode);
	return ci->old_path ? compare_inode(snaps, ci, &sa, &sb) : 0;
}
