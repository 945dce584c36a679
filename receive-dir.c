// SPDX-License-Identifier: GPL-2.0-only
/*
 * receive --to-dir: the destination (struct receive_dest_ops) that makes
 * subvolumes directories of any filesystem.  A subvolume is a mkdir, a
 * snapshot a copy of the parent directory (reflinked where possible),
 * clone sources are found by their records, and a complete subvolume
 * gets a record of its received uuid and stransid instead of the
 * received-subvol ioctl and the read-only flag.  Encoded writes are
 * always decompressed; inode flags and verity are applied where the
 * filesystem has them, with one warning where not; btrfs properties are
 * dropped off btrfs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "copy-tree.h"
#include "receive-dir.h"
#include "utils.h"

#define RECORD_UUID_XATTR "user.btrfs.received_uuid"
#define RECORD_STRANSID_XATTR "user.btrfs.stransid"
/* Beside the directory NAME where xattrs cannot be set: .NAME.received */
#define SIDECAR_SUFFIX ".received"

struct record {
	uint8_t uuid[16];
	uint64_t stransid;
};

struct receive_dir {
	/* Not on btrfs: the btrfs.* xattr names dropped so far. */
	bool not_btrfs;
	char **dropped_props;
	size_t nr_dropped_props;
	/* Features warned about once: inode flags, verity. */
	bool warned[RECEIVE_NR_FEATURES];	/* accept_missing_feature() */
	/* What the CLONE and SNAPSHOT copies did. */
	struct copy_stats copies;
};

static struct receive_dir *dir_of(const struct receive_ctx *ctx)
{
	return ctx->dest;
}

static bool is_record_xattr(const char *name)
{
	return !strcmp(name, RECORD_UUID_XATTR) ||
	       !strcmp(name, RECORD_STRANSID_XATTR);
}

static int sidecar_name(char *buf, size_t size, const char *name,
			const char *tmp)
{
	if (snprintf(buf, size, ".%s%s%s", name, SIDECAR_SUFFIX, tmp) >=
	    (int)size)
		return -ENAMETOOLONG;
	return 0;
}

/* "UUID STRANSID": the values the record holds, as text. */
static int parse_record(const char *uuid_str, const char *stransid,
			struct record *rec)
{
	if (uuid_parse(uuid_str, rec->uuid) ||
	    parse_u64(stransid, &rec->stransid))
		return -EINVAL;
	return 0;
}

static int read_sidecar(int dest_fd, const char *name, struct record *rec)
{
	/* A character more than a uuid: a longer value is refused, not cut. */
	char file[NAME_MAX + 1], buf[128], uuid_str[UUID_STR_LEN + 1];
	char stransid[24];
	ssize_t n;
	int fd;

	if (sidecar_name(file, sizeof(file), name, ""))
		return -ENOENT;
	fd = openat(dest_fd, file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
		    O_CLOEXEC);
	if (fd < 0)
		return -ENOENT;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -ENOENT;
	buf[n] = '\0';
	if (sscanf(buf, "received_uuid=%37s stransid=%23s", uuid_str,
		   stransid) != 2)
		return -ENOENT;
	return parse_record(uuid_str, stransid, rec) ? -ENOENT : 0;
}

/* The record of the directory name under dest_fd; -ENOENT if none. */
static int read_dir_record(int dest_fd, const char *name, struct record *rec)
{
	char uuid_str[UUID_STR_LEN + 1], stransid[24];
	ssize_t ulen, slen;
	int fd;

	fd = openat(dest_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	if (fd < 0)
		return -ENOENT;
	ulen = fgetxattr(fd, RECORD_UUID_XATTR, uuid_str, sizeof(uuid_str) - 1);
	slen = fgetxattr(fd, RECORD_STRANSID_XATTR, stransid,
			 sizeof(stransid) - 1);
	close(fd);
	if (ulen < 0 && errno == EOPNOTSUPP)
		return read_sidecar(dest_fd, name, rec);
	if (ulen < 0 || slen < 0)
		return -ENOENT;
	uuid_str[ulen] = '\0';
	stransid[slen] = '\0';
	return parse_record(uuid_str, stransid, rec) ? -ENOENT : 0;
}

static int write_sidecar(struct receive_ctx *ctx, const char *uuid_str,
			 const char *stransid)
{
	char file[NAME_MAX + 1], tmp[NAME_MAX + 1], buf[128];
	int fd, len, ret = 0;

	if (sidecar_name(file, sizeof(file), ctx->cur.name, "") ||
	    sidecar_name(tmp, sizeof(tmp), ctx->cur.name, ".tmp")) {
		error("cannot record received uuid of %s: name too long",
		      ctx->cur.name);
		return -ENAMETOOLONG;
	}
	len = snprintf(buf, sizeof(buf), "received_uuid=%s\nstransid=%s\n",
		       uuid_str, stransid);
	fd = openat(ctx->dest_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC |
		    O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, buf, len) != len || fsync(fd) < 0 ||
	    renameat(ctx->dest_fd, tmp, ctx->dest_fd, file) < 0) {
		ret = errno ? -errno : -EIO;
		error("cannot record received uuid of %s in %s: %m",
		      ctx->cur.name, file);
		unlinkat(ctx->dest_fd, tmp, 0);
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

/*
 * The uuid goes last: a record without it is no record, so a receive
 * interrupted here does not look complete.
 */
static int write_dir_record(struct receive_ctx *ctx)
{
	char uuid_str[UUID_STR_LEN], stransid[24];
	int ret;

	uuid_unparse(ctx->cur.uuid, uuid_str);
	snprintf(stransid, sizeof(stransid), "%llu",
		 (unsigned long long)ctx->cur.ctransid);
	if (!fsetxattr(ctx->cur.fd, RECORD_STRANSID_XATTR, stransid,
		       strlen(stransid), 0) &&
	    !fsetxattr(ctx->cur.fd, RECORD_UUID_XATTR, uuid_str,
		       strlen(uuid_str), 0))
		return 0;
	if (errno == EOPNOTSUPP)
		return write_sidecar(ctx, uuid_str, stransid);
	ret = -errno;
	error("cannot set received uuid of %s: %m", ctx->cur.name);
	fremovexattr(ctx->cur.fd, RECORD_STRANSID_XATTR);
	return ret;
}

/*
 * The directory under the destination received from the sender's
 * subvolume uuid at ctransid, into name.  *stale: one with that uuid
 * exists, at another transid.
 */
static int find_received(struct receive_ctx *ctx, const uint8_t *uuid,
			 uint64_t ctransid, char *name, size_t size,
			 bool *stale)
{
	struct record rec;
	struct dirent *de;
	DIR *dir;
	int fd, ret = -ENOENT;

	*stale = false;
	fd = openat(ctx->dest_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(dir = fdopendir(fd))) {
		ret = -errno;
		error("cannot read the destination directory: %m");
		if (fd >= 0)
			close(fd);
		return ret;
	}
	while ((de = readdir(dir))) {
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    read_dir_record(ctx->dest_fd, de->d_name, &rec) ||
		    memcmp(rec.uuid, uuid, 16))
			continue;
		if (rec.stransid != ctransid) {
			*stale = true;
			continue;
		}
		snprintf(name, size, "%s", de->d_name);
		ret = 0;
		break;
	}
	closedir(dir);
	return ret;
}

/* A record beside a directory that is gone must not describe a new one. */
static void drop_stale_sidecar(struct receive_ctx *ctx, const char *name)
{
	char file[NAME_MAX + 1];

	if (!sidecar_name(file, sizeof(file), name, ""))
		unlinkat(ctx->dest_fd, file, 0);
}

/* parent: the directory a snapshot copies, NULL for a subvolume. */
static int make_subvol_dir(struct receive_ctx *ctx, const char *name,
			   const char *parent)
{
	int ret;

	if (mkdirat(ctx->dest_fd, name, 0755) < 0) {
		ret = -errno;
		if (parent)
			error("creating snapshot %s -> %s failed: %m", parent,
			      name);
		else
			error("creating subvolume %s failed: %m", name);
		return ret;
	}
	drop_stale_sidecar(ctx, name);
	return 0;
}

static int make_subvol(struct receive_ctx *ctx, const char *name)
{
	return make_subvol_dir(ctx, name, NULL);
}

static int open_dir(struct receive_ctx *ctx, const char *name)
{
	int fd = openat(ctx->dest_fd, name, O_RDONLY | O_DIRECTORY |
			O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0) {
		fd = -errno;
		error("cannot open %s: %m", name);
	}
	return fd;
}

static int copy_parent(struct receive_ctx *ctx, const char *parent,
		       const char *path)
{
	int src, dst, ret;

	src = open_dir(ctx, parent);
	if (src < 0)
		return src;
	dst = open_dir(ctx, path);
	if (dst < 0) {
		close(src);
		return dst;
	}
	ret = copy_tree(src, dst, is_record_xattr, &dir_of(ctx)->copies);
	if (ret < 0)
		error("creating snapshot %s -> %s failed: %s", parent, path,
		      strerror(-ret));
	close(dst);
	close(src);
	return ret;
}

static int make_snapshot(struct receive_ctx *ctx, const char *name,
			 const uint8_t *parent_uuid, uint64_t parent_ctransid)
{
	char parent[NAME_MAX + 1], parent_str[UUID_STR_LEN];
	bool stale;
	int ret;

	ret = find_received(ctx, parent_uuid, parent_ctransid, parent,
			    sizeof(parent), &stale);
	if (ret == -ENOENT) {
		uuid_unparse(parent_uuid, parent_str);
		error("cannot find parent subvolume %s (transid %llu) of snapshot %s%s",
		      parent_str, (unsigned long long)parent_ctransid, name,
		      stale ? ": a directory received from it has another transid" : "");
	}
	if (ret < 0)
		return ret;
	ret = make_subvol_dir(ctx, name, parent);
	if (ret < 0)
		return ret;
	return copy_parent(ctx, parent, name);
}

static int open_clone_subvol(struct receive_ctx *ctx, const uint8_t *uuid,
			     uint64_t ctransid, const char *clone_path)
{
	char subvol[NAME_MAX + 1], uuid_str[UUID_STR_LEN];
	bool stale;
	int ret;

	ret = find_received(ctx, uuid, ctransid, subvol, sizeof(subvol),
			    &stale);
	if (ret == -ENOENT) {
		uuid_unparse(uuid, uuid_str);
		error("clone: did not find source subvol %s (transid %llu) for %s",
		      uuid_str, (unsigned long long)ctransid, clone_path);
	}
	if (ret < 0)
		return ret;
	return open_dir(ctx, subvol);
}

/*
 * btrfs.* names are btrfs properties (compression): a filesystem that is
 * not btrfs has no place for them.  True when name is one, after one
 * warning per name.
 */
static bool drop_btrfs_property(struct receive_dir *rd, const char *name)
{
	char **names, *copy;
	size_t i;

	if (!rd->not_btrfs || strncmp(name, "btrfs.", 6))
		return false;
	for (i = 0; i < rd->nr_dropped_props; i++)
		if (!strcmp(rd->dropped_props[i], name))
			return true;
	warning("xattr %s dropped: it is a btrfs property and the destination is not btrfs",
		name);
	names = realloc(rd->dropped_props, (i + 1) * sizeof(*names));
	copy = strdup(name);
	if (names)
		rd->dropped_props = names;
	if (!names || !copy) {
		/* Without memory the warning may come again: no harm. */
		free(copy);
		return true;
	}
	names[rd->nr_dropped_props++] = copy;
	return true;
}

/*
 * The record is ours: a stream that sets it would fake a complete receive.
 * Properties are dropped off btrfs.
 */
static int dir_filter_xattr(struct receive_ctx *ctx, const char *path,
			    const char *name, bool set)
{
	if (set && !*path && is_record_xattr(name)) {
		error("set_xattr %s on the subvolume: --to-dir keeps its record there, refused",
		      name);
		return -EPERM;
	}
	return drop_btrfs_property(dir_of(ctx), name) ? 1 : 0;
}

/* Inode flags and verity, where the filesystem lacks them: one warning. */
static bool accept_missing_feature(struct receive_ctx *ctx,
				   enum receive_feature feature,
				   const char *what, const char *path, int err)
{
	struct receive_dir *rd = dir_of(ctx);

	if (err != EOPNOTSUPP && err != ENOTTY)
		return false;
	if (!rd->warned[feature])
		warning("%s not applied, the destination does not support it: %s (first on %s)",
			what, strerror(err), path);
	rd->warned[feature] = true;
	return true;
}

/* Clones copied here are expected, not warned about: told with -vv. */
static int finish_subvol(struct receive_ctx *ctx, bool complete)
{
	struct receive_dir *rd = dir_of(ctx);

	rd->copies.reflinked += ctx->cur.clones.reflinked;
	rd->copies.copied += ctx->cur.clones.copied;
	return complete ? write_dir_record(ctx) : 0;
}

static void release(struct receive_ctx *ctx)
{
	struct receive_dir *rd = dir_of(ctx);
	size_t i;

	for (i = 0; i < rd->nr_dropped_props; i++)
		free(rd->dropped_props[i]);
	free(rd->dropped_props);
	if (verbosity >= 2)
		fprintf(stderr, "to-dir: %llu ranges reflinked, %llu copied\n",
			(unsigned long long)rd->copies.reflinked,
			(unsigned long long)rd->copies.copied);
	free(rd);
	ctx->dest = NULL;
}

static const struct receive_dest_ops dir_dest_ops = {
	.lossy_without_root = true,
	.make_subvol = make_subvol,
	.make_snapshot = make_snapshot,
	.open_clone_subvol = open_clone_subvol,
	.accept_missing_feature = accept_missing_feature,
	.filter_xattr = dir_filter_xattr,
	.finish_subvol = finish_subvol,
	.release = release,
};

int receive_dir_open(struct receive_ctx *ctx, const char *dir, bool do_chroot)
{
	struct receive_dir *rd;
	struct statfs sfs;
	int dest_fd, ret;

	dest_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dest_fd < 0) {
		ret = -errno;
		error("cannot open destination %s: %m", dir);
		return ret;
	}
	if (do_chroot) {
		if (fchdir(dest_fd) < 0 || chroot(".") < 0) {
			ret = -errno;
			error("cannot chroot to %s: %m", dir);
			goto out_close;
		}
		if (verbosity >= 1)
			fprintf(stderr, "Chroot to %s\n", dir);
	}
	rd = calloc(1, sizeof(*rd));
	if (!rd) {
		ret = -ENOMEM;
		error("cannot open destination %s: %s", dir, strerror(-ret));
		goto out_close;
	}
	rd->not_btrfs = fstatfs(dest_fd, &sfs) < 0 ||
			sfs.f_type != BTRFS_SUPER_MAGIC;
	receive_ctx_init(ctx, dest_fd, &dir_dest_ops, rd);
	return 0;
out_close:
	close(dest_fd);
	return ret;
}
