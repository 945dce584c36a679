// SPDX-License-Identifier: GPL-2.0-only
/*
 * receive --to-dir: subvolumes become directories of any filesystem.
 * Most commands are the btrfs table's own (they are plain calls on
 * confined paths already); this table replaces what needs btrfs:
 * creating a subvolume (mkdir), a snapshot (a copy of the parent
 * directory, reflinked where possible), CLONE (reflink or copy), and
 * completing a subvolume (a record of its received uuid and stransid
 * instead of the received-subvol ioctl and the read-only flag).  Encoded
 * writes are always decompressed; inode flags and verity are applied
 * where the filesystem has them, with one warning where not.
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
	char file[NAME_MAX + 1], buf[128], uuid_str[40], stransid[24];
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
	if (sscanf(buf, "received_uuid=%39s stransid=%23s", uuid_str,
		   stransid) != 2)
		return -ENOENT;
	return parse_record(uuid_str, stransid, rec) ? -ENOENT : 0;
}

/* The record of the directory name under dest_fd; -ENOENT if none. */
static int read_record(int dest_fd, const char *name, struct record *rec)
{
	char uuid_str[40], stransid[24];
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
static int complete_dir(struct receive_ctx *ctx)
{
	char uuid_str[37], stransid[24];
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
		    read_record(ctx->dest_fd, de->d_name, &rec) ||
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

static int dir_subvol(const char *path, const uint8_t *uuid,
		      uint64_t ctransid, void *user)
{
	struct receive_ctx *ctx = user;
	int ret;

	ret = receive_start_subvol(ctx, false, path, uuid, ctransid);
	if (ret < 0)
		return ret;
	ret = make_subvol_dir(ctx, path, NULL);
	if (ret < 0)
		return ret;
	return receive_begin_subvol(ctx, path, uuid, ctransid);
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
	ret = copy_tree(src, dst, is_record_xattr, &ctx->copies);
	if (ret < 0)
		error("creating snapshot %s -> %s failed: %s", parent, path,
		      strerror(-ret));
	close(dst);
	close(src);
	return ret;
}

static int dir_snapshot(const char *path, const uint8_t *uuid,
			uint64_t ctransid, const uint8_t *parent_uuid,
			uint64_t parent_ctransid, void *user)
{
	struct receive_ctx *ctx = user;
	char parent[NAME_MAX + 1], parent_str[37];
	bool stale;
	int ret;

	ret = receive_start_subvol(ctx, true, path, uuid, ctransid);
	if (ret < 0)
		return ret;
	ret = find_received(ctx, parent_uuid, parent_ctransid, parent,
			    sizeof(parent), &stale);
	if (ret == -ENOENT) {
		uuid_unparse(parent_uuid, parent_str);
		error("cannot find parent subvolume %s (transid %llu) of snapshot %s%s",
		      parent_str, (unsigned long long)parent_ctransid, path,
		      stale ? ": a directory received from it has another transid" : "");
	}
	if (ret < 0)
		return ret;
	ret = make_subvol_dir(ctx, path, parent);
	if (ret < 0)
		return ret;
	ret = copy_parent(ctx, parent, path);
	if (ret < 0)
		return ret;
	return receive_begin_subvol(ctx, path, uuid, ctransid);
}

/* The file a CLONE reads: in this subvolume, or in one received before. */
static int open_clone_source(struct receive_ctx *ctx, const uint8_t *uuid,
			     uint64_t ctransid, const char *clone_path)
{
	char subvol[NAME_MAX + 1], uuid_str[37];
	bool stale;
	int subvol_fd, ret;

	if (!memcmp(uuid, ctx->cur.uuid, 16))
		return receive_open_source_file(ctx, -1, clone_path);
	ret = find_received(ctx, uuid, ctransid, subvol, sizeof(subvol),
			    &stale);
	if (ret == -ENOENT) {
		uuid_unparse(uuid, uuid_str);
		error("clone: did not find source subvol %s (transid %llu) for %s",
		      uuid_str, (unsigned long long)ctransid, clone_path);
	}
	if (ret < 0)
		return ret;
	subvol_fd = open_dir(ctx, subvol);
	if (subvol_fd < 0)
		return subvol_fd;
	return receive_open_source_file(ctx, subvol_fd, clone_path);
}

static int dir_clone(const char *path, uint64_t offset, uint64_t len,
		     const uint8_t *clone_uuid, uint64_t clone_ctransid,
		     const char *clone_path, uint64_t clone_offset, void *user)
{
	struct receive_ctx *ctx = user;
	int src_fd, dst_fd, ret;

	if (len == 0) {
		error("clone %s: zero length in stream", path);
		return -EINVAL;
	}
	dst_fd = receive_open_for_write(ctx, path);
	if (dst_fd < 0)
		return dst_fd;
	src_fd = open_clone_source(ctx, clone_uuid, clone_ctransid,
				   clone_path);
	if (src_fd < 0)
		return src_fd;
	ret = copy_range(src_fd, clone_offset, dst_fd, offset, len,
			 &ctx->copies);
	if (ret < 0)
		error("clone %s from %s failed: %s", path, clone_path,
		      strerror(-ret));
	close(src_fd);
	return ret;
}

/*
 * btrfs.* names are btrfs properties (compression): a filesystem that is
 * not btrfs has no place for them.  True when name is one, after one
 * warning per name.
 */
static bool drop_btrfs_property(struct receive_ctx *ctx, const char *name)
{
	char **names, *copy;
	size_t i;

	if (!ctx->not_btrfs || strncmp(name, "btrfs.", 6))
		return false;
	for (i = 0; i < ctx->nr_dropped_props; i++)
		if (!strcmp(ctx->dropped_props[i], name))
			return true;
	warning("xattr %s dropped: it is a btrfs property and the destination is not btrfs",
		name);
	names = realloc(ctx->dropped_props, (i + 1) * sizeof(*names));
	copy = strdup(name);
	if (names)
		ctx->dropped_props = names;
	if (!names || !copy) {
		/* Without memory the warning may come again: no harm. */
		free(copy);
		return true;
	}
	names[ctx->nr_dropped_props++] = copy;
	return true;
}

/* The record is ours: a stream that sets it would fake a complete receive. */
static int dir_set_xattr(const char *path, const char *name,
			 const void *data, size_t len, void *user)
{
	if (!*path && is_record_xattr(name)) {
		error("set_xattr %s on the subvolume: --to-dir keeps its record there, refused",
		      name);
		return -EPERM;
	}
	if (drop_btrfs_property(user, name))
		return 0;
	return receive_btrfs_ops.set_xattr(path, name, data, len, user);
}

static int dir_remove_xattr(const char *path, const char *name, void *user)
{
	if (drop_btrfs_property(user, name))
		return 0;
	return receive_btrfs_ops.remove_xattr(path, name, user);
}

static struct send_stream_ops dir_ops;

const struct send_stream_ops *receive_dir_ops(void)
{
	if (!dir_ops.subvol) {
		dir_ops = receive_btrfs_ops;
		dir_ops.subvol = dir_subvol;
		dir_ops.snapshot = dir_snapshot;
		dir_ops.clone = dir_clone;
		dir_ops.set_xattr = dir_set_xattr;
		dir_ops.remove_xattr = dir_remove_xattr;
	}
	return &dir_ops;
}

int receive_dir_open(struct receive_ctx *ctx, const char *dir, bool do_chroot)
{
	struct statfs sfs;
	int dest_fd, anchor_fd, ret;

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
	anchor_fd = fcntl(dest_fd, F_DUPFD_CLOEXEC, 0);
	if (anchor_fd < 0) {
		ret = -errno;
		error("cannot open destination %s: %m", dir);
		goto out_close;
	}
	/* Encoded writes are btrfs-only: always decompressed here. */
	receive_ctx_init(ctx, dest_fd, anchor_fd, "", true);
	ctx->complete_subvol = complete_dir;
	ctx->warn_unsupported = true;
	ctx->unprivileged = geteuid() != 0;
	ctx->not_btrfs = fstatfs(dest_fd, &sfs) < 0 ||
			 sfs.f_type != BTRFS_SUPER_MAGIC;
	return 0;
out_close:
	close(dest_fd);
	return ret;
}

void receive_dir_release(struct receive_ctx *ctx)
{
	size_t i;

	receive_ctx_release(ctx);
	receive_report_losses(ctx);
	for (i = 0; i < ctx->nr_dropped_props; i++)
		free(ctx->dropped_props[i]);
	free(ctx->dropped_props);
	ctx->dropped_props = NULL;
	ctx->nr_dropped_props = 0;
	if (verbosity >= 2)
		fprintf(stderr, "to-dir: %llu ranges reflinked, %llu copied\n",
			(unsigned long long)ctx->copies.reflinked,
			(unsigned long long)ctx->copies.copied);
}
