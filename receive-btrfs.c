// SPDX-License-Identifier: GPL-2.0-only
/*
 * The btrfs destination of receive: subvolumes and snapshots made with
 * the btrfs ioctls, parents and clone sources found by uuid
 * (subvol-lookup.c), encoded writes, the received uuid and read-only flag
 * that mark a subvolume complete, and its resume record.  Also where the
 * destination is: its mount point (-m), its subvolume, the -C chroot.
 */
#include <btrfsutil.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/btrfs.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "receive-btrfs.h"
#include "receive-resume.h"
#include "mounts.h"
#include "paths.h"
#include "subvol-lookup.h"
#include "utils.h"

#define BTRFS_FS_TREE_OBJECTID 5ULL

struct receive_btrfs {
	/*
	 * A directory from which other subvolumes (parents, clone sources)
	 * are opened, and its path from the filesystem's top level.
	 */
	int anchor_fd;
	char anchor_path[PATH_MAX];
	bool force_decompress;
	bool encoded_write_refused;

	/*
	 * The path of the last subvolume found, for the uuid found_for:
	 * clones name the same source again and again.
	 */
	char *found_path;
	uint8_t found_for[16];

	struct resume_marks marks;
};

static struct receive_btrfs *btrfs_of(const struct receive_ctx *ctx)
{
	return ctx->dest;
}

static int mark_received(struct receive_ctx *ctx)
{
	struct btrfs_ioctl_received_subvol_args rs = { 0 };
	enum btrfs_util_error err;

	memcpy(rs.uuid, ctx->cur.uuid, 16);
	rs.stransid = ctx->cur.ctransid;
	if (ioctl(ctx->cur.fd, BTRFS_IOC_SET_RECEIVED_SUBVOL, &rs) < 0) {
		error("cannot set received uuid of %s: %m", ctx->cur.name);
		return -errno;
	}
	err = btrfs_util_set_subvolume_read_only_fd(ctx->cur.fd, true);
	if (err) {
		error("cannot make %s read-only: %s", ctx->cur.name,
		      btrfs_util_strerror(err));
		/* Writable with a received uuid would look complete. */
		memset(&rs, 0, sizeof(rs));
		ioctl(ctx->cur.fd, BTRFS_IOC_SET_RECEIVED_SUBVOL, &rs);
		return -EIO;
	}
	return 0;
}

/*
 * One WARNING per subvolume, never an ERROR: the tree is whole, only its
 * extents are not shared where the stream shared them.
 */
static void warn_copied_clones(const struct receive_ctx *ctx)
{
	const struct copy_stats *c = &ctx->cur.clones;

	if (!c->copied)
		return;
	warning("%s: %llu clone operation%s refused by the kernel (%s), data copied instead",
		ctx->cur.name, (unsigned long long)c->copied,
		c->copied == 1 ? "" : "s", strerror(c->refused));
}

enum lookup_failure {
	LOOKUP_NOT_FOUND,	/* no subvolume carries the uuid */
	LOOKUP_NOT_USABLE,	/* only writable ones, or the top level */
	LOOKUP_UNREACHABLE,	/* read-only ones, none beneath the anchor */
};

/*
 * Parents and clone sources are read-only snapshots on the sender, and so
 * are their received copies: a stream must not name a live subvolume (or
 * the top level) to read its data into the received tree.
 */
static bool usable_source(const struct subvol_info *si)
{
	return si->read_only && si->root_id != BTRFS_FS_TREE_OBJECTID;
}

static void forget_found(struct receive_btrfs *bd)
{
	free(bd->found_path);
	bd->found_path = NULL;
}

/*
 * 1 if the subvolume root_id can serve, with its path in bd->found_path;
 * 0 if not, with the worst reason so far in *why; or a negative errno.
 */
static int try_source(struct receive_btrfs *bd, uint64_t root_id,
		      enum lookup_failure *why)
{
	struct subvol_info si;
	int ret;

	forget_found(bd);
	ret = subvol_get(bd->anchor_fd, root_id, &si);
	/* Deleted since the UUID tree named it. */
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	if (!usable_source(&si)) {
		if (*why == LOOKUP_NOT_FOUND)
			*why = LOOKUP_NOT_USABLE;
		return 0;
	}
	ret = subvol_path(bd->anchor_fd, root_id, &bd->found_path);
	if (ret < 0)
		return ret == -ENOENT ? 0 : ret;
	if (!path_relative_to(bd->found_path, bd->anchor_path)) {
		*why = LOOKUP_UNREACHABLE;
		forget_found(bd);
		return 0;
	}
	return 1;
}

/* try_source() on each subvolume that carries uuid, lowest root id first. */
static int first_source(struct receive_btrfs *bd, const uint8_t *uuid,
			bool received, enum lookup_failure *why)
{
	uint64_t *ids;
	ssize_t n, i;
	int ret = 0;

	n = subvol_ids_by_uuid(bd->anchor_fd, uuid, received, &ids);
	if (n < 0) {
		error("cannot search the UUID tree of the filesystem: %s",
		      strerror(-n));
		return n;
	}
	for (i = 0; i < n && !ret; i++)
		ret = try_source(bd, ids[i], why);
	free(ids);
	return ret;
}

/*
 * A subvolume of the sender, known here by the uuid the stream gives (the
 * sender's received uuid if it has one, else its own): as btrfs-progs
 * does, the subvolumes received from it first (lowest root id first), then
 * the one whose own uuid it is (the sender shares this filesystem, or the
 * stream comes back to where its subvolume was made).  The stream's
 * ctransid decides nothing: it is the sender's own, which differs from
 * ours whenever the sender received the subvolume itself.  Of these, the
 * first that is read-only and reachable from the anchor: its path from
 * the top level, or NULL.
 */
static const char *find_sender_subvol(struct receive_btrfs *bd,
				      const uint8_t *uuid,
				      enum lookup_failure *why)
{
	int ret;

	*why = LOOKUP_NOT_FOUND;
	if (bd->found_path && !memcmp(bd->found_for, uuid, 16))
		return bd->found_path;
	ret = first_source(bd, uuid, true, why);
	if (!ret)
		ret = first_source(bd, uuid, false, why);
	if (ret <= 0) {
		forget_found(bd);
		return NULL;
	}
	memcpy(bd->found_for, uuid, 16);
	return bd->found_path;
}

/* The end of the error line of a failed lookup: why, in buf. */
static const char *lookup_failure_reason(const struct receive_btrfs *bd,
					 enum lookup_failure why, char *buf,
					 size_t size)
{
	switch (why) {
	case LOOKUP_NOT_USABLE:
		snprintf(buf, size, ": every subvolume with that uuid is writable or the top level, refused");
		break;
	case LOOKUP_UNREACHABLE:
		snprintf(buf, size, ": no read-only subvolume with that uuid is reachable from the mount point (it holds /%s)",
			 bd->anchor_path);
		break;
	default:
		buf[0] = '\0';
	}
	return buf;
}

/* Open a subvolume, given by its path from the top level, via the anchor. */
static int open_subvol(struct receive_btrfs *bd, const char *path)
{
	const char *rel = path_relative_to(path, bd->anchor_path);
	int fd;

	if (!rel) {
		error("subvolume /%s is not reachable from the mount point (it holds /%s)",
		      path, bd->anchor_path);
		return -ENOENT;
	}
	fd = openat(bd->anchor_fd, *rel ? rel : ".",
		    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		error("cannot open subvolume %s: %m", path);
		return -errno;
	}
	return fd;
}

static void explain_one(struct receive_btrfs *bd, uint64_t root_id)
{
	char own[UUID_STR_LEN], received[UUID_STR_LEN];
	struct subvol_info si;
	char *path = NULL;

	if (subvol_get(bd->anchor_fd, root_id, &si) < 0 ||
	    subvol_path(bd->anchor_fd, root_id, &path) < 0) {
		free(path);
		return;
	}
	uuid_unparse(si.uuid, own);
	uuid_unparse(si.received_uuid, received);
	fprintf(stderr,
		"  candidate /%s: uuid %s ctransid %llu, received uuid %s stransid %llu, %s\n",
		path, own, (unsigned long long)si.ctransid, received,
		(unsigned long long)si.stransid,
		si.read_only ? "read-only" : "writable");
	free(path);
}

/*
 * After a failed lookup: the subvolumes that carry the uuid, as their own
 * or as received uuid, in root id order, but cannot serve, so that the
 * user sees why (made writable, outside the mount point or the -C chroot,
 * ...).
 */
static void explain_candidates(struct receive_btrfs *bd, const uint8_t *uuid)
{
	uint64_t *own, *received, id;
	ssize_t no, nr, i = 0, j = 0;

	nr = subvol_ids_by_uuid(bd->anchor_fd, uuid, true, &received);
	no = subvol_ids_by_uuid(bd->anchor_fd, uuid, false, &own);
	while (i < nr || j < no) {
		if (j >= no || (i < nr && received[i] <= own[j]))
			id = received[i++];
		else
			id = own[j++];
		if (j < no && own[j] == id)
			j++;
		explain_one(bd, id);
	}
	free(own);
	free(received);
}

static int make_subvol(struct receive_ctx *ctx, const char *name)
{
	enum btrfs_util_error err;
	int ret;

	err = btrfs_util_create_subvolume_fd(ctx->dest_fd, name, 0, NULL,
					     NULL);
	if (err) {
		ret = errno ? -errno : -EIO;
		error("creating subvolume %s failed: %s", name,
		      errno ? strerror(errno) : btrfs_util_strerror(err));
		return ret;
	}
	return 0;
}

static int make_snapshot(struct receive_ctx *ctx, const char *name,
			 const uint8_t *parent_uuid, uint64_t parent_ctransid)
{
	struct receive_btrfs *bd = btrfs_of(ctx);
	enum btrfs_util_error err;
	enum lookup_failure why;
	const char *parent;
	char parent_str[UUID_STR_LEN], reason[PATH_MAX + 128];
	int parent_fd, ret;

	parent = find_sender_subvol(bd, parent_uuid, &why);
	if (!parent) {
		uuid_unparse(parent_uuid, parent_str);
		error("cannot find parent subvolume %s (transid %llu) of snapshot %s%s",
		      parent_str, (unsigned long long)parent_ctransid, name,
		      lookup_failure_reason(bd, why, reason, sizeof(reason)));
		explain_candidates(bd, parent_uuid);
		return -ENOENT;
	}
	parent_fd = open_subvol(bd, parent);
	if (parent_fd < 0)
		return parent_fd;
	err = btrfs_util_create_snapshot_fd2(parent_fd, ctx->dest_fd, name, 0,
					     NULL, NULL);
	ret = errno;
	close(parent_fd);
	if (err) {
		error("creating snapshot %s -> %s failed: %s", parent, name,
		      ret ? strerror(ret) : btrfs_util_strerror(err));
		return ret ? -ret : -EIO;
	}
	return 0;
}

/*
 * The resume record's file is made before the data can fill the disk; a
 * receive that cannot make it goes on (a stop then tries again).
 */
static void reserve_record(struct receive_ctx *ctx)
{
	resume_reserve(ctx, &btrfs_of(ctx)->marks);
}

static int open_clone_subvol(struct receive_ctx *ctx, const uint8_t *uuid,
			     uint64_t ctransid, const char *clone_path)
{
	struct receive_btrfs *bd = btrfs_of(ctx);
	char uuid_str[UUID_STR_LEN], reason[PATH_MAX + 128];
	enum lookup_failure why;
	const char *path;

	path = find_sender_subvol(bd, uuid, &why);
	if (!path) {
		uuid_unparse(uuid, uuid_str);
		error("clone: did not find source subvol %s (transid %llu) for %s%s",
		      uuid_str, (unsigned long long)ctransid, clone_path,
		      lookup_failure_reason(bd, why, reason, sizeof(reason)));
		explain_candidates(bd, uuid);
		return -ENOENT;
	}
	return open_subvol(bd, path);
}

static bool encoded_write_refused(int err)
{
	return err == ENOTTY || err == EINVAL || err == EOPNOTSUPP ||
	       err == EPERM || err == ENOSYS;
}

static int write_encoded(struct receive_ctx *ctx, int fd, const char *path,
			 const struct send_encoded_write *ew)
{
	struct receive_btrfs *bd = btrfs_of(ctx);
	struct btrfs_ioctl_encoded_io_args args = { 0 };
	struct iovec iov;
	int ret;

	if (bd->force_decompress || bd->encoded_write_refused)
		return 1;
	iov.iov_base = (void *)ew->data;
	iov.iov_len = ew->len;
	args.iov = &iov;
	args.iovcnt = 1;
	args.offset = ew->offset;
	args.len = ew->unencoded_file_len;
	args.unencoded_len = ew->unencoded_len;
	args.unencoded_offset = ew->unencoded_offset;
	args.compression = ew->compression;
	if (ioctl(fd, BTRFS_IOC_ENCODED_WRITE, &args) >= 0)
		return 0;
	if (!encoded_write_refused(errno)) {
		ret = -errno;
		error("encoded_write %s failed: %m", path);
		return ret;
	}
	/* Refused for this extent; ENOTTY means for all of them. */
	if (errno == ENOTTY || errno == EPERM)
		bd->encoded_write_refused = true;
	return 1;
}

static int finish_subvol(struct receive_ctx *ctx, bool complete)
{
	struct receive_btrfs *bd = btrfs_of(ctx);
	int ret = 0;

	warn_copied_clones(ctx);
	if (complete)
		ret = mark_received(ctx);
	ret = resume_subvol_finished(ctx, &bd->marks, complete, ret);
	/* The last source found may have changed with this subvolume. */
	forget_found(bd);
	return ret;
}

static void release(struct receive_ctx *ctx)
{
	struct receive_btrfs *bd = btrfs_of(ctx);

	forget_found(bd);
	close(bd->anchor_fd);
	free(bd);
	ctx->dest = NULL;
}

static struct resume_marks *resume_marks(struct receive_ctx *ctx)
{
	return &btrfs_of(ctx)->marks;
}

static const struct receive_dest_ops btrfs_dest_ops = {
	.make_subvol = make_subvol,
	.make_snapshot = make_snapshot,
	.subvol_begun = reserve_record,
	.open_clone_subvol = open_clone_subvol,
	.write_encoded = write_encoded,
	.finish_subvol = finish_subvol,
	.resume_marks = resume_marks,
	.release = release,
};

/* -m ROOTMOUNT: trust it, and ask btrfs what it mounts when /proc cannot. */
static int mount_point_from_option(const char *root_mount,
				   struct mount_point *mp)
{
	enum btrfs_util_error err;
	char real[PATH_MAX];
	uint64_t id;
	char *path;

	if (!realpath(root_mount, real)) {
		error("cannot resolve root mount %s: %m", root_mount);
		return -errno;
	}
	if (!mount_point_find_btrfs(real, mp) && !strcmp(mp->dir, real))
		return 0;
	mount_point_free(mp);
	err = btrfs_util_subvolume_id(real, &id);
	if (!err)
		err = btrfs_util_subvolume_path(real, id, &path);
	if (err) {
		error("cannot tell which subvolume %s is: %s", real,
		      btrfs_util_strerror(err));
		return -EINVAL;
	}
	mp->dir = strdup(real);
	mp->fs_root = path;
	return mp->dir ? 0 : -ENOMEM;
}

static char *join_path(const char *a, const char *b)
{
	char *out;

	while (*b == '/')
		b++;
	if (asprintf(&out, "%s%s%s", a, *a && *b ? "/" : "", b) < 0)
		return NULL;
	return out;
}

static int check_on_btrfs(const char *dest, const char *real_dest)
{
	struct statfs sfs;
	int ret;

	ret = statfs(real_dest, &sfs);
	if (ret == 0 && sfs.f_type == BTRFS_SUPER_MAGIC)
		return 0;
	error("%s doesn't belong to btrfs mount point", real_dest);
	/* Ours, after btrfs-progs' line: not an ERROR. */
	if (!ret)
		fprintf(stderr,
			"HINT: to receive onto a filesystem that is not btrfs, use 'btrfs receive --to-dir %s'\n",
			dest);
	return -EINVAL;
}

/* The mount point holding real_dest: -m ROOTMOUNT, or the longest one. */
static int locate_mount(const struct receive_btrfs_opts *o,
			const char *real_dest, struct mount_point *mp)
{
	int ret;

	ret = o->root_mount ? mount_point_from_option(o->root_mount, mp) :
			      mount_point_find_btrfs(real_dest, mp);
	if (ret < 0) {
		if (!o->root_mount)
			error("cannot find the mount point of %s, use -m", o->dest);
		return ret;
	}
	if (!path_is_under(real_dest, mp->dir)) {
		error("%s is not under the root mount %s", real_dest, mp->dir);
		return -EINVAL;
	}
	return 0;
}

/*
 * -C: the process is confined to real_dest, which becomes both where
 * subvolumes are made and the anchor of lookups.
 */
static int open_chrooted(const char *real_dest, const struct mount_point *mp,
			 int *dest_fd, struct receive_btrfs *bd)
{
	char *anchor_path;
	int ret = 0;

	anchor_path = join_path(mp->fs_root, real_dest +
				(strcmp(mp->dir, "/") ? strlen(mp->dir) : 0));
	if (!anchor_path || chroot(real_dest) < 0 || chdir("/") < 0) {
		ret = -errno;
		error("cannot chroot to %s: %m", real_dest);
		goto out;
	}
	if (verbosity >= 1)
		fprintf(stderr, "Chroot to %s\n", real_dest);
	snprintf(bd->anchor_path, sizeof(bd->anchor_path), "%s", anchor_path);
	*dest_fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bd->anchor_fd = *dest_fd < 0 ? -1 :
			fcntl(*dest_fd, F_DUPFD_CLOEXEC, 0);
out:
	free(anchor_path);
	return ret;
}

static int open_fds(const struct receive_btrfs_opts *o, const char *real_dest,
		    const struct mount_point *mp, int *dest_fd,
		    struct receive_btrfs *bd)
{
	int ret;

	if (o->chroot) {
		ret = open_chrooted(real_dest, mp, dest_fd, bd);
		if (ret < 0)
			return ret;
	} else {
		snprintf(bd->anchor_path, sizeof(bd->anchor_path), "%s",
			 mp->fs_root);
		*dest_fd = open(real_dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		bd->anchor_fd = open(mp->dir, O_RDONLY | O_DIRECTORY |
				     O_CLOEXEC);
	}
	if (*dest_fd < 0 || bd->anchor_fd < 0) {
		ret = -errno;
		error("cannot open destination %s: %m", o->dest);
		if (*dest_fd >= 0)
			close(*dest_fd);
		if (bd->anchor_fd >= 0)
			close(bd->anchor_fd);
		return ret;
	}
	return 0;
}

int receive_btrfs_open(struct receive_ctx *ctx,
		       const struct receive_btrfs_opts *o)
{
	struct mount_point mp = { 0 };
	struct receive_btrfs *bd;
	char real_dest[PATH_MAX];
	int dest_fd = -1, ret;

	if (!realpath(o->dest, real_dest)) {
		ret = -errno;
		error("realpath(%s) failed: %m", o->dest);
		return ret;
	}
	ret = check_on_btrfs(o->dest, real_dest);
	if (ret < 0)
		return ret;
	bd = calloc(1, sizeof(*bd));
	if (!bd)
		return -ENOMEM;
	bd->anchor_fd = -1;
	bd->force_decompress = o->force_decompress;
	ret = locate_mount(o, real_dest, &mp);
	if (ret >= 0)
		ret = open_fds(o, real_dest, &mp, &dest_fd, bd);
	mount_point_free(&mp);
	if (ret < 0) {
		free(bd);
		return ret;
	}
	receive_ctx_init(ctx, dest_fd, &btrfs_dest_ops, bd);
	return 0;
}
