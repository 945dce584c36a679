// SPDX-License-Identifier: GPL-2.0-only
/*
 * The applier: one callback per stream command, on confined paths
 * (confined-path.c) of the subvolume being received; what needs the
 * destination goes through ctx->dest_ops.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/fsverity.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "decompress.h"
#include "paths.h"
#include "receive-apply.h"
#include "utils.h"

#define CAPABILITY_XATTR "security.capability"

/* fchmodat2(2), Linux 6.6; older libc headers lack the number. */
#ifndef SYS_fchmodat2
#define SYS_FCHMODAT2 452
#else
#define SYS_FCHMODAT2 SYS_fchmodat2
#endif

void receive_ctx_init(struct receive_ctx *ctx, int dest_fd,
		      const struct receive_dest_ops *ops, void *dest)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->dest_fd = dest_fd;
	ctx->dest_ops = ops;
	ctx->dest = dest;
	ctx->unprivileged = ops->lossy_without_root && geteuid() != 0;
	ctx->cur.fd = -1;
	ctx->write_fd = -1;
	confined_init(&ctx->paths, -1, false);
}

static void close_write_fd(struct receive_ctx *ctx)
{
	if (ctx->write_fd >= 0)
		close(ctx->write_fd);
	ctx->write_fd = -1;
	ctx->write_path[0] = '\0';
}

static int make_pending(struct receive_ctx *ctx);
static int flush_dir_times(struct receive_ctx *ctx);

int receive_settle(struct receive_ctx *ctx)
{
	int ret = make_pending(ctx);

	if (ret >= 0)
		ret = flush_dir_times(ctx);
	if (ret >= 0 && ctx->cur.lost_create)
		ret = -EIO;
	return ret;
}

int receive_close_subvol(struct receive_ctx *ctx, bool complete)
{
	int ret;

	/*
	 * Also when incomplete: what the commands read so far did must be on
	 * disk, for whoever looks at (or continues) the partial subvolume.
	 */
	if (ctx->cur.active && ctx->closing)
		ctx->closing(ctx->closing_data, true);
	if (ctx->cur.active && receive_settle(ctx) < 0)
		ctx->cur.failed = true;
	dir_times_release(&ctx->dir_times);
	close_write_fd(ctx);
	confined_release(&ctx->paths);
	if (!ctx->cur.active)
		return 0;
	ret = ctx->dest_ops->finish_subvol(ctx, complete && !ctx->cur.failed);
	close(ctx->cur.fd);
	ctx->cur.fd = -1;
	ctx->cur.active = false;
	if (ctx->closing)
		ctx->closing(ctx->closing_data, false);
	return ret;
}

static void report_losses(const struct receive_ctx *ctx);

void receive_ctx_release(struct receive_ctx *ctx)
{
	receive_close_subvol(ctx, false);
	report_losses(ctx);
	ctx->dest_ops->release(ctx);
	free(ctx->decompress_buf);
	ctx->decompress_buf = NULL;
	close(ctx->dest_fd);
	ctx->dest_fd = -1;
}

/* A subvolume name from the stream is one plain path component. */
static int check_subvol_name(const char *name)
{
	if (!*name || strchr(name, '/') || !strcmp(name, ".") ||
	    !strcmp(name, "..")) {
		error("invalid subvolume name in stream, refused: %s", name);
		return -EINVAL;
	}
	if (strlen(name) >= PATH_MAX) {
		error("subvolume name too long: %s", name);
		return -ENAMETOOLONG;
	}
	return 0;
}

static int begin_subvol(struct receive_ctx *ctx, const char *name,
			const uint8_t *uuid, uint64_t ctransid)
{
	int fd;

	fd = openat(ctx->dest_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	if (fd < 0) {
		error("cannot open new subvolume %s: %m", name);
		return -errno;
	}
	memset(&ctx->cur, 0, sizeof(ctx->cur));
	ctx->cur.active = true;
	ctx->cur.fd = fd;
	snprintf(ctx->cur.name, sizeof(ctx->cur.name), "%s", name);
	memcpy(ctx->cur.uuid, uuid, 16);
	ctx->cur.ctransid = ctransid;
	confined_init(&ctx->paths, fd, false);
	return 0;
}


int receive_reopen_subvol(struct receive_ctx *ctx, const char *name,
			  const uint8_t *uuid, uint64_t ctransid)
{
	int ret;

	ret = receive_close_subvol(ctx, true);
	if (ret < 0)
		return ret;
	return begin_subvol(ctx, name, uuid, ctransid);
}

static void print_verbose_subvol(const char *what, const char *name,
				 const uint8_t *uuid, uint64_t ctransid)
{
	char uuid_str[UUID_STR_LEN];

	if (verbosity < 2)
		return;
	uuid_unparse(uuid, uuid_str);
	status_line_printf(stderr, "receiving %s %s uuid=%s, stransid=%llu\n",
			   what, name, uuid_str, (unsigned long long)ctransid);
}

/*
 * What SUBVOL and SNAPSHOT do first: complete the previous subvolume,
 * check the new name, and say "At subvol" or "At snapshot".
 */
static int start_subvol(struct receive_ctx *ctx, bool snapshot,
			const char *path, const uint8_t *uuid,
			uint64_t ctransid)
{
	int ret;

	ret = receive_close_subvol(ctx, true);
	if (ret < 0)
		return ret;
	ret = check_subvol_name(path);
	if (ret < 0)
		return ret;
	/* btrfs-progs 6.2 prints the first on stderr, the second on stdout. */
	if (verbosity >= 1) {
		if (snapshot)
			status_line_printf(stdout, "At snapshot %s\n", path);
		else
			status_line_printf(stderr, "At subvol %s\n", path);
	}
	print_verbose_subvol(snapshot ? "snapshot" : "subvol", path, uuid,
			     ctransid);
	return 0;
}

static int apply_subvol(const char *path, const uint8_t *uuid,
			uint64_t ctransid, void *user)
{
	struct receive_ctx *ctx = user;
	int ret;

	ret = start_subvol(ctx, false, path, uuid, ctransid);
	if (ret < 0)
		return ret;
	ret = ctx->dest_ops->make_subvol(ctx, path);
	if (ret < 0)
		return ret;
	ret = begin_subvol(ctx, path, uuid, ctransid);
	if (ret < 0)
		return ret;
	if (ctx->dest_ops->subvol_begun)
		ctx->dest_ops->subvol_begun(ctx);
	return 0;
}

static int apply_snapshot(const char *path, const uint8_t *uuid,
			  uint64_t ctransid, const uint8_t *parent_uuid,
			  uint64_t parent_ctransid, void *user)
{
	struct receive_ctx *ctx = user;
	int ret;

	ret = start_subvol(ctx, true, path, uuid, ctransid);
	if (ret < 0)
		return ret;
	ret = ctx->dest_ops->make_snapshot(ctx, path, parent_uuid,
					   parent_ctransid);
	if (ret < 0)
		return ret;
	ret = begin_subvol(ctx, path, uuid, ctransid);
	if (ret < 0)
		return ret;
	memcpy(ctx->cur.parent_uuid, parent_uuid, 16);
	ctx->cur.parent_ctransid = parent_ctransid;
	if (ctx->dest_ops->subvol_begun)
		ctx->dest_ops->subvol_begun(ctx);
	return 0;
}

static int need_subvol(struct receive_ctx *ctx)
{
	if (ctx->cur.active)
		return 0;
	error("command before any subvol or snapshot command in the stream");
	return -EINVAL;
}

/*
 * Resolve path as the tree is now, without making the pending inode first;
 * prints its own errors.
 */
static int resolve_now(struct receive_ctx *ctx, const char *path,
		       int *dir_fd, const char **name)
{
	int ret = need_subvol(ctx);

	if (ret < 0)
		return ret;
	return confined_lookup(&ctx->paths, path, dir_fd, name);
}

/* Make a file or directory; a new file's fd is kept for what comes next. */
static int create_inode(struct receive_ctx *ctx, enum pending_kind kind,
			int dfd, const char *name, const char *path)
{
	int fd;

	if (kind == PENDING_DIR)
		return mkdirat(dfd, name, 0700) < 0 ? -errno : 0;
	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	close_write_fd(ctx);
	ctx->write_fd = fd;
	snprintf(ctx->write_path, sizeof(ctx->write_path), "%s", path);
	return 0;
}

static const char *create_cmd_name(enum pending_kind kind)
{
	return kind == PENDING_DIR ? "mkdir" : "mkfile";
}

/* Make the pending inode where the stream said, if there is one. */
static int make_pending(struct receive_ctx *ctx)
{
	struct pending_create *p = &ctx->pending;
	enum pending_kind kind = p->kind;
	const char *name;
	int dfd, ret;

	if (kind == PENDING_NONE)
		return 0;
	p->kind = PENDING_NONE;
	ret = resolve_now(ctx, p->path, &dfd, &name);
	if (ret < 0)
		return ret;
	ret = create_inode(ctx, kind, dfd, name, p->path);
	if (ret < 0) {
		errno = -ret;
		error("%s %s failed: %m", create_cmd_name(kind), p->path);
		/* It failed within another command, which a retry redoes alone. */
		ctx->cur.lost_create = true;
	}
	return ret;
}

/*
 * Resolve path for a command, after making the pending inode: commands
 * take effect in stream order.  Prints its own errors.
 */
static int resolve_in_order(struct receive_ctx *ctx, const char *path,
			    int *dir_fd, const char **name)
{
	int ret = need_subvol(ctx);

	if (ret < 0)
		return ret;
	ret = make_pending(ctx);
	if (ret < 0)
		return ret;
	return confined_lookup(&ctx->paths, path, dir_fd, name);
}

/*
 * The same for commands that create, remove or rename a directory entry:
 * the empty path names the subvolume itself, never an entry.
 */
static int resolve_entry(struct receive_ctx *ctx, const char *cmd,
			 const char *path, int *dir_fd, const char **name)
{
	if (!*path) {
		error("%s: empty path in stream", cmd);
		return -EINVAL;
	}
	return resolve_in_order(ctx, path, dir_fd, name);
}

/* The stream names the subvolume's top directory with the empty path. */
static const char *shown_path(const char *path)
{
	return *path ? path : ".";
}

static int fail_errno(const char *what, const char *path)
{
	int ret = -errno;

	error("%s %s failed: %m", what, shown_path(path));
	return ret;
}

/*
 * Without root (--to-dir), what the kernel refuses an unprivileged user is
 * lost, as with tar: counted for one warning per kind at the end, not an
 * error.  True when err is such a refusal.
 */
static bool lost_without_root(struct receive_ctx *ctx,
			      enum receive_loss_kind kind, const char *path,
			      const char *xname, int err)
{
	struct receive_loss *loss;

	if (!ctx->unprivileged || err != EPERM || kind >= RECEIVE_LOSS_KINDS)
		return false;
	loss = &ctx->losses[kind];
	if (loss->count++)
		return true;
	/* Only an example: cut if it must be. */
	if (snprintf(loss->first, sizeof(loss->first), "%s%s%s%s%s",
		     ctx->cur.name, *path ? "/" : "", path, xname ? " " : "",
		     xname ? xname : "") >= (int)sizeof(loss->first))
		loss->first[sizeof(loss->first) - 1] = '\0';
	return true;
}

/*
 * A send makes new inodes under temporary names: the first device node
 * lost is shown under the name it gets right after.
 */
static void rename_lost_device(struct receive_ctx *ctx, const char *from,
			       const char *to)
{
	struct receive_loss *loss = &ctx->losses[RECEIVE_LOSS_DEVICE];
	const char *rel = path_relative_to(loss->first, ctx->cur.name);

	if (loss->count != 1 || !rel || strcmp(rel, from))
		return;
	if (snprintf(loss->first, sizeof(loss->first), "%s/%s", ctx->cur.name,
		     to) >= (int)sizeof(loss->first))
		loss->first[sizeof(loss->first) - 1] = '\0';
}

static void report_losses(const struct receive_ctx *ctx)
{
	static const char *const what[RECEIVE_LOSS_KINDS] = {
		[RECEIVE_LOSS_OWNER] = "owners not kept, the receiving user owns those files",
		[RECEIVE_LOSS_DEVICE] = "device nodes not made, empty files stand in their place",
		[RECEIVE_LOSS_TRUSTED_XATTR] = "trusted.* xattrs not set",
		[RECEIVE_LOSS_SECURITY_XATTR] = "security.* xattrs not set",
	};
	int i;

	for (i = 0; i < RECEIVE_LOSS_KINDS; i++)
		if (ctx->losses[i].count)
			warning("not root: %llu %s (first: %s)",
				(unsigned long long)ctx->losses[i].count,
				what[i], ctx->losses[i].first);
}

/*
 * The ioctl of what failed on path (errno): an error, unless the
 * destination accepts the loss of that feature.
 */
static int fail_missing_feature(struct receive_ctx *ctx,
				enum receive_feature feature, const char *path)
{
	static const char *const names[RECEIVE_NR_FEATURES] = {
		[RECEIVE_FEATURE_FILEATTR] = "fileattr",
		[RECEIVE_FEATURE_VERITY] = "enable_verity",
	};
	const char *what = names[feature];
	int err = errno;

	if (ctx->dest_ops->accept_missing_feature &&
	    ctx->dest_ops->accept_missing_feature(ctx, feature, what,
						  shown_path(path), err))
		return 0;
	errno = err;
	return fail_errno(what, path);
}

/*
 * mkfile and mkdir: checked now, made later (struct pending_create).  A
 * name that is taken, or that cannot be looked at, is created at once so
 * that its error comes from this command, as without the delay.
 */
static int create_later(struct receive_ctx *ctx, enum pending_kind kind,
			const char *path)
{
	const char *cmd = create_cmd_name(kind);
	const char *name;
	struct stat st;
	int dfd, ret;

	ret = resolve_entry(ctx, cmd, path, &dfd, &name);
	if (ret < 0)
		return ret;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 &&
	    errno == ENOENT) {
		ctx->pending.kind = kind;
		snprintf(ctx->pending.path, sizeof(ctx->pending.path), "%s",
			 path);
		return 0;
	}
	ret = create_inode(ctx, kind, dfd, name, path);
	if (ret < 0) {
		errno = -ret;
		error("%s %s failed: %m", cmd, path);
	}
	return ret;
}

static int apply_mkfile(const char *path, void *user)
{
	return create_later(user, PENDING_FILE, path);
}

static int apply_mkdir(const char *path, void *user)
{
	return create_later(user, PENDING_DIR, path);
}

static int make_node(struct receive_ctx *ctx, const char *what,
		     const char *path, mode_t mode, dev_t rdev)
{
	const char *name;
	int dfd, ret;

	ret = resolve_entry(ctx, what, path, &dfd, &name);
	if (ret < 0)
		return ret;
	if (!mknodat(dfd, name, mode, rdev))
		return 0;
	/* Later commands (rename, chown, utimes) need an inode there. */
	if ((S_ISCHR(mode) || S_ISBLK(mode)) &&
	    lost_without_root(ctx, RECEIVE_LOSS_DEVICE, path, NULL, errno) &&
	    !mknodat(dfd, name, S_IFREG | 0600, 0))
		return 0;
	return fail_errno(what, path);
}

static int apply_mknod(const char *path, uint64_t mode, uint64_t rdev,
		       void *user)
{
	mode_t type = mode & S_IFMT;

	if (type != S_IFCHR && type != S_IFBLK && type != S_IFIFO &&
	    type != S_IFSOCK && type != S_IFREG) {
		error("mknod %s: invalid mode %llo in stream", path,
		      (unsigned long long)mode);
		return -EINVAL;
	}
	return make_node(user, "mknod", path, mode & (S_IFMT | 07777), rdev);
}

static int apply_mkfifo(const char *path, void *user)
{
	return make_node(user, "mkfifo", path, S_IFIFO | 0600, 0);
}

static int apply_mksock(const char *path, void *user)
{
	return make_node(user, "mksock", path, S_IFSOCK | 0600, 0);
}

static int apply_symlink(const char *path, const char *target, void *user)
{
	const char *name;
	int dfd, ret;

	ret = resolve_entry(user, "symlink", path, &dfd, &name);
	if (ret < 0)
		return ret;
	if (symlinkat(target, dfd, name) < 0)
		return fail_errno("symlink", path);
	return 0;
}

/* Two paths at once: the directory cache holds both directories. */
static int resolve_pair(struct receive_ctx *ctx, const char *from,
		       const char *to, int *from_dfd, const char **from_name,
		       int *to_dfd, const char **to_name)
{
	int ret;

	ret = resolve_entry(ctx, "rename or link", from, from_dfd, from_name);
	if (ret < 0)
		return ret;
	return resolve_entry(ctx, "rename or link", to, to_dfd, to_name);
}

/* Is path the file whose fd the cache holds? */
static bool is_cached_file(const struct receive_ctx *ctx, const char *path)
{
	return ctx->write_fd >= 0 && !strcmp(ctx->write_path, path);
}

/* After a rename, the cached file's path follows it. */
static void rename_cached_file(struct receive_ctx *ctx, const char *from,
			       const char *to)
{
	size_t len = strlen(from);
	char moved[PATH_MAX];

	if (ctx->write_fd < 0)
		return;
	if (!strcmp(ctx->write_path, from)) {
		snprintf(ctx->write_path, sizeof(ctx->write_path), "%s", to);
	} else if (path_is_under(ctx->write_path, from)) {
		if (snprintf(moved, sizeof(moved), "%s%s", to,
			     ctx->write_path + len) >= (int)sizeof(moved)) {
			close_write_fd(ctx);
			return;
		}
		memcpy(ctx->write_path, moved, sizeof(moved));
	}
}

/*
 * The rename of the pending inode: make it at its new name.  Returns 1 when
 * done, 0 when the new name is taken (or the create fails otherwise): then
 * the inode is made at its old name and renamed, with the usual errors.
 */
static int create_at_new_name(struct receive_ctx *ctx, const char *to)
{
	enum pending_kind kind = ctx->pending.kind;
	const char *name;
	int dfd, ret;

	if (!*to)
		return 0;
	/* A bad new name fails as the rename would; the inode stays pending. */
	ret = resolve_now(ctx, to, &dfd, &name);
	if (ret < 0)
		return ret;
	if (create_inode(ctx, kind, dfd, name, to) < 0)
		return 0;
	/* Its old name was never made. */
	ctx->pending.kind = PENDING_NONE;
	return 1;
}

static int apply_rename(const char *from, const char *to, void *user)
{
	struct receive_ctx *ctx = user;
	const char *from_name, *to_name;
	int from_dfd, to_dfd, ret;

	struct stat st;
	bool is_dir;

	if (ctx->pending.kind != PENDING_NONE &&
	    !strcmp(from, ctx->pending.path)) {
		ret = create_at_new_name(ctx, to);
		if (ret)
			return ret < 0 ? ret : 0;
	}
	ret = resolve_pair(ctx, from, to, &from_dfd, &from_name, &to_dfd,
			  &to_name);
	if (ret < 0)
		return ret;
	/* A file renamed over the cached one ends that one's name. */
	if (is_cached_file(ctx, to))
		close_write_fd(ctx);
	/* Only a renamed directory makes cached directory fds misleading. */
	is_dir = !is_cached_file(ctx, from) &&
		 (fstatat(from_dfd, from_name, &st, AT_SYMLINK_NOFOLLOW) ||
		  S_ISDIR(st.st_mode));
	if (renameat(from_dfd, from_name, to_dfd, to_name) < 0) {
		ret = -errno;
		error("rename %s -> %s failed: %m", from, to);
		return ret;
	}
	rename_cached_file(ctx, from, to);
	rename_lost_device(ctx, from, to);
	if (is_dir) {
		confined_forget_under(&ctx->paths, from);
		confined_forget_under(&ctx->paths, to);
		/* Held directory times follow their directories. */
		ret = dir_times_move(&ctx->dir_times, from, to);
		if (ret < 0) {
			error("rename %s -> %s: %s", from, to, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static int apply_link(const char *path, const char *target, void *user)
{
	struct receive_ctx *ctx = user;
	const char *target_name, *name;
	int target_dfd, dfd, ret;

	ret = resolve_pair(ctx, target, path, &target_dfd, &target_name, &dfd,
			  &name);
	if (ret < 0)
		return ret;
	if (linkat(target_dfd, target_name, dfd, name, 0) < 0) {
		ret = -errno;
		error("link %s -> %s failed: %m", path, target);
	}
	return ret;
}

static int apply_unlink(const char *path, void *user)
{
	const char *name;
	int dfd, ret;

	ret = resolve_entry(user, "unlink", path, &dfd, &name);
	if (ret < 0)
		return ret;
	if (is_cached_file(user, path))
		close_write_fd(user);
	if (unlinkat(dfd, name, 0) < 0)
		return fail_errno("unlink", path);
	return 0;
}

static int apply_rmdir(const char *path, void *user)
{
	struct receive_ctx *ctx = user;
	const char *name;
	int dfd, ret;

	ret = resolve_entry(ctx, "rmdir", path, &dfd, &name);
	if (ret < 0)
		return ret;
	if (unlinkat(dfd, name, AT_REMOVEDIR) < 0)
		return fail_errno("rmdir", path);
	confined_forget_under(&ctx->paths, path);
	/* Its held times go with it. */
	ret = dir_times_move(&ctx->dir_times, path, NULL);
	if (ret < 0)
		error("rmdir %s: %s", path, strerror(-ret));
	return ret;
}

/*
 * Open a file the stream writes, reads or changes, which must be a regular
 * file (or, with allow_dir, a directory): a device node the stream made
 * would take the data to a real device, a FIFO would hang.  Checked before
 * the open, so that no device is ever opened, and after it, on the inode
 * actually opened.
 */
static int open_inode(int dfd, const char *name, const char *path, int flags,
		      bool allow_dir)
{
	struct stat before, after;
	int fd;

	if (fstatat(dfd, name, &before, AT_SYMLINK_NOFOLLOW) < 0)
		return fail_errno("open", path);
	if (!S_ISREG(before.st_mode) && !(allow_dir && S_ISDIR(before.st_mode))) {
		error("%s is not a regular file, refused", path);
		return -EINVAL;
	}
	fd = openat(dfd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
		    O_CLOEXEC);
	if (fd < 0)
		return fail_errno("open", path);
	if (fstat(fd, &after) < 0 || after.st_ino != before.st_ino ||
	    after.st_dev != before.st_dev ||
	    (after.st_mode & S_IFMT) != (before.st_mode & S_IFMT)) {
		close(fd);
		error("%s changed while being opened, refused", path);
		return -EAGAIN;
	}
	return fd;
}

/* The file of consecutive writes stays open until another one is needed. */
static int open_for_write(struct receive_ctx *ctx, const char *path)
{
	const char *name;
	int dfd, fd, ret;

	if (ctx->write_fd >= 0 && !strcmp(ctx->write_path, path))
		return ctx->write_fd;
	close_write_fd(ctx);
	ret = resolve_in_order(ctx, path, &dfd, &name);
	if (ret < 0)
		return ret;
	fd = open_inode(dfd, name, path, O_WRONLY, false);
	if (fd < 0)
		return fd;
	ctx->write_fd = fd;
	snprintf(ctx->write_path, sizeof(ctx->write_path), "%s", path);
	return fd;
}

/* Write data at offset of the file of path; prints its own errors. */
static int write_range(int fd, const void *data, size_t len,
		       uint64_t offset, const char *path)
{
	int ret;

	if (offset > (uint64_t)INT64_MAX - len) {
		error("write %s: offset %llu out of range", path,
		      (unsigned long long)offset);
		return -EFBIG;
	}
	ret = pwrite_all(fd, data, len, offset);
	if (ret < 0) {
		errno = -ret;
		return fail_errno("write", path);
	}
	return 0;
}

static int apply_write(const char *path, const void *data, uint64_t offset,
		       size_t len, void *user)
{
	int fd = open_for_write(user, path);

	if (fd < 0)
		return fd;
	return write_range(fd, data, len, offset, path);
}

/*
 * A file to read a clone from: in the subvolume being received
 * (subvol_fd < 0), or beneath subvol_fd, which this closes.
 */
static int open_source_file(struct receive_ctx *ctx, int subvol_fd,
			    const char *path)
{
	struct confined_root src_paths;
	const char *name;
	int dfd, ret;

	if (subvol_fd < 0) {
		ret = resolve_in_order(ctx, path, &dfd, &name);
		if (ret < 0)
			return ret;
		return open_inode(dfd, name, path, O_RDONLY, false);
	}
	confined_init(&src_paths, subvol_fd, true);
	ret = confined_lookup(&src_paths, path, &dfd, &name);
	if (ret >= 0)
		ret = open_inode(dfd, name, path, O_RDONLY, false);
	confined_release(&src_paths);
	close(subvol_fd);
	return ret;
}

/* The file a CLONE reads: in this subvolume, or in one received before. */
static int open_clone_source(struct receive_ctx *ctx,
			     const uint8_t *clone_uuid,
			     uint64_t clone_ctransid, const char *clone_path)
{
	int subvol_fd;

	if (!memcmp(clone_uuid, ctx->cur.uuid, 16))
		return open_source_file(ctx, -1, clone_path);
	subvol_fd = ctx->dest_ops->open_clone_subvol(ctx, clone_uuid,
						     clone_ctransid,
						     clone_path);
	if (subvol_fd < 0)
		return subvol_fd;
	return open_source_file(ctx, subvol_fd, clone_path);
}

static int apply_clone(const char *path, uint64_t offset, uint64_t len,
		       const uint8_t *clone_uuid, uint64_t clone_ctransid,
		       const char *clone_path, uint64_t clone_offset,
		       void *user)
{
	struct receive_ctx *ctx = user;
	int src_fd, dst_fd, ret;

	if (len == 0) {
		error("clone %s: zero length in stream", path);
		return -EINVAL;
	}
	dst_fd = open_for_write(ctx, path);
	if (dst_fd < 0)
		return dst_fd;
	src_fd = open_clone_source(ctx, clone_uuid, clone_ctransid,
				   clone_path);
	if (src_fd < 0)
		return src_fd;
	/*
	 * A clone the kernel refuses for this pair of files (their checksum
	 * flags differ on a destination mounted nodatasum or nodatacow,
	 * another filesystem, ...) is copied: the same data, unshared.
	 */
	ret = copy_range(src_fd, clone_offset, dst_fd, offset, len,
			 &ctx->cur.clones);
	if (ret < 0)
		error("clone %s from %s failed: %s", path, clone_path,
		      strerror(-ret));
	close(src_fd);
	return ret;
}

/*
 * xattr calls have no *at() form in this libc: run them from inside the
 * confined directory.  The working directory is the whole process's, but
 * only this thread resolves paths against it (the progress thread uses
 * none).
 */
static int enter_dir_of(struct receive_ctx *ctx, const char *path,
			const char **name)
{
	int dfd, ret;

	ret = resolve_in_order(ctx, path, &dfd, name);
	if (ret < 0)
		return ret;
	if (fchdir(dfd) < 0)
		return fail_errno("chdir to the directory of", path);
	return 0;
}

/* The namespaces an unprivileged user cannot write. */
static enum receive_loss_kind xattr_loss_kind(const char *xname)
{
	if (!strncmp(xname, "trusted.", 8))
		return RECEIVE_LOSS_TRUSTED_XATTR;
	if (!strncmp(xname, "security.", 9))
		return RECEIVE_LOSS_SECURITY_XATTR;
	return RECEIVE_LOSS_KINDS;
}

/* 0 to apply a set (or remove) of xname on path, 1 to skip it, or an error. */
static int dest_skips_xattr(struct receive_ctx *ctx, const char *path,
			    const char *xname, bool set)
{
	if (!ctx->dest_ops->filter_xattr)
		return 0;
	return ctx->dest_ops->filter_xattr(ctx, path, xname, set);
}

static int apply_set_xattr(const char *path, const char *xname,
			   const void *data, size_t len, void *user)
{
	struct receive_ctx *ctx = user;
	const char *name;
	int ret;

	ret = dest_skips_xattr(ctx, path, xname, true);
	if (ret)
		return ret < 0 ? ret : 0;
	if (is_cached_file(ctx, path)) {
		ret = fsetxattr(ctx->write_fd, xname, data, len, 0);
	} else {
		ret = enter_dir_of(ctx, path, &name);
		if (ret < 0)
			return ret;
		ret = lsetxattr(name, xname, data, len, 0);
	}
	if (ret < 0) {
		ret = -errno;
		if (lost_without_root(ctx, xattr_loss_kind(xname), path, xname,
				      errno))
			return 0;
		error("set_xattr %s %s failed: %m", shown_path(path), xname);
		return ret;
	}
	if (!strcmp(xname, CAPABILITY_XATTR) &&
	    len <= sizeof(ctx->cap_value)) {
		snprintf(ctx->cap_path, sizeof(ctx->cap_path), "%s", path);
		memcpy(ctx->cap_value, data, len);
		ctx->cap_len = len;
	}
	return 0;
}

static int apply_remove_xattr(const char *path, const char *xname,
			      void *user)
{
	const char *name;
	int ret;

	ret = dest_skips_xattr(user, path, xname, false);
	if (ret)
		return ret < 0 ? ret : 0;
	ret = enter_dir_of(user, path, &name);
	if (ret < 0)
		return ret;
	if (lremovexattr(name, xname) < 0) {
		ret = -errno;
		error("remove_xattr %s %s failed: %m", shown_path(path), xname);
	}
	return ret;
}

static int apply_truncate(const char *path, uint64_t size, void *user)
{
	int fd = open_for_write(user, path);

	if (fd < 0)
		return fd;
	if (size > INT64_MAX) {
		error("truncate %s: size %llu out of range", path,
		      (unsigned long long)size);
		return -EFBIG;
	}
	if (ftruncate(fd, size) < 0)
		return fail_errno("truncate", path);
	return 0;
}

static int apply_chmod(const char *path, uint64_t mode, void *user)
{
	const char *name;
	struct stat st;
	int dfd, fd, ret;

	if (is_cached_file(user, path)) {
		if (fchmod(((struct receive_ctx *)user)->write_fd,
			   mode & 07777) < 0)
			return fail_errno("chmod", path);
		return 0;
	}
	ret = resolve_in_order(user, path, &dfd, &name);
	if (ret < 0)
		return ret;
	/*
	 * fchmodat2 changes the inode the name holds without following a
	 * symlink that a local user could swap in between two calls.
	 */
	if (!syscall(SYS_FCHMODAT2, dfd, name, (mode_t)(mode & 07777),
		     AT_SYMLINK_NOFOLLOW))
		return 0;
	if (errno == EOPNOTSUPP) {
		error("chmod %s: refusing to change the mode through a symlink",
		      path);
		return -ELOOP;
	}
	if (errno != ENOSYS)
		return fail_errno("chmod", path);
	/* Older kernels: through an fd of the inode itself. */
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return fail_errno("chmod", path);
	if (S_ISLNK(st.st_mode)) {
		error("chmod %s: refusing to change the mode through a symlink",
		      path);
		return -ELOOP;
	}
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
		if (fchmodat(dfd, name, mode & 07777, 0) < 0)
			return fail_errno("chmod", path);
		return 0;
	}
	fd = open_inode(dfd, name, path, O_RDONLY, true);
	if (fd < 0)
		return fd;
	if (fchmod(fd, mode & 07777) < 0)
		ret = fail_errno("chmod", path);
	close(fd);
	return ret;
}

/* chown clears security.capability: put back what the stream set. */
static int restore_capability(struct receive_ctx *ctx, const char *path)
{
	const char *name;
	int ret = 0;

	if (!ctx->cap_len || strcmp(ctx->cap_path, path))
		return 0;
	ret = enter_dir_of(ctx, path, &name);
	if (ret >= 0 && lsetxattr(name, CAPABILITY_XATTR, ctx->cap_value,
				  ctx->cap_len, 0) < 0) {
		ret = -errno;
		error("restoring %s of %s failed: %m", CAPABILITY_XATTR, path);
	}
	ctx->cap_len = 0;
	return ret;
}

static int apply_chown(const char *path, uint64_t uid, uint64_t gid,
		       void *user)
{
	struct receive_ctx *ctx = user;
	const char *name;
	struct stat st;
	int dfd, ret;

	if (is_cached_file(ctx, path)) {
		/*
		 * A file just made has our owner; when the stream asks for
		 * the same, the chown (a metadata update) can be skipped.
		 */
		if (!fstat(ctx->write_fd, &st) && st.st_uid == uid &&
		    st.st_gid == gid)
			return 0;
		ret = fchown(ctx->write_fd, uid, gid);
	} else {
		ret = resolve_in_order(ctx, path, &dfd, &name);
		if (ret < 0)
			return ret;
		ret = fchownat(dfd, name, uid, gid, AT_SYMLINK_NOFOLLOW);
	}
	if (ret < 0) {
		if (lost_without_root(ctx, RECEIVE_LOSS_OWNER, path, NULL,
				      errno))
			return 0;
		return fail_errno("chown", path);
	}
	return restore_capability(ctx, path);
}

static int set_dir_times(const char *path, const struct timespec ts[2],
			 void *user)
{
	const char *name;
	int dfd, ret;

	ret = resolve_now(user, path, &dfd, &name);
	if (ret < 0)
		return ret;
	if (utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return fail_errno("utimes", path);
	return 0;
}

static int flush_dir_times(struct receive_ctx *ctx)
{
	return dir_times_flush(&ctx->dir_times, set_dir_times, ctx);
}

/*
 * Only the last times of a directory count: a later entry made in it would
 * change them.  They are set at the end of the subvolume; a directory
 * renamed or removed before takes its held times along.
 */
static int hold_dir_times(struct receive_ctx *ctx, const char *path,
			  const struct timespec ts[2])
{
	static int off = -1;
	int ret;

	if (off < 0)
		off = mechanism_off("dirtimes");
	if (off)
		return set_dir_times(path, ts, ctx);
	ret = dir_times_set(&ctx->dir_times, path, ts);
	if (ret == -ENOSPC) {
		ret = flush_dir_times(ctx);
		if (ret < 0)
			return ret;
		ret = dir_times_set(&ctx->dir_times, path, ts);
	}
	if (ret == -ENOMEM)
		return set_dir_times(path, ts, ctx);
	return ret;
}

static int apply_utimes(const char *path, const struct send_timespec *atime,
			const struct send_timespec *mtime,
			const struct send_timespec *ctime, void *user)
{
	struct receive_ctx *ctx = user;
	struct timespec ts[2];
	const char *name;
	struct stat st;
	int dfd, ret;

	(void)ctime;
	ts[0].tv_sec = atime->sec;
	ts[0].tv_nsec = atime->nsec;
	ts[1].tv_sec = mtime->sec;
	ts[1].tv_nsec = mtime->nsec;
	if (is_cached_file(ctx, path)) {
		if (futimens(ctx->write_fd, ts) < 0)
			return fail_errno("utimes", path);
		return 0;
	}
	/* Again, after another entry made in it: no need to look. */
	if (dir_times_update_held(&ctx->dir_times, path, ts))
		return 0;
	ret = resolve_in_order(ctx, path, &dfd, &name);
	if (ret < 0)
		return ret;
	if (!fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) &&
	    S_ISDIR(st.st_mode))
		return hold_dir_times(ctx, path, ts);
	if (utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return fail_errno("utimes", path);
	return 0;
}

/* No-data streams describe extents without their bytes: nothing to do. */
static int apply_update_extent(const char *path, uint64_t offset,
			       uint64_t len, void *user)
{
	(void)path;
	(void)offset;
	(void)len;
	return need_subvol(user);
}

/*
 * The subvolume is marked received only once what follows END is known to
 * be sound (the next stream's header, or the end of the input): a stream
 * that goes on with commands after END is broken, and so is its copy.
 */
static int apply_end(void *user)
{
	struct receive_ctx *ctx = user;
	int ret;

	ret = need_subvol(ctx);
	if (ret < 0)
		return ret;
	ret = make_pending(ctx);
	if (ret >= 0)
		ret = flush_dir_times(ctx);
	close_write_fd(ctx);
	return ret;
}

static int apply_fallocate(const char *path, uint32_t mode, uint64_t offset,
			   uint64_t len, void *user)
{
	int flags = 0;
	int fd;

	if (mode & ~(BTRFS_SEND_FALLOC_KEEP_SIZE |
		     BTRFS_SEND_FALLOC_PUNCH_HOLE)) {
		error("fallocate %s: unknown mode 0x%x", path, mode);
		return -EINVAL;
	}
	if (mode & BTRFS_SEND_FALLOC_KEEP_SIZE)
		flags |= FALLOC_FL_KEEP_SIZE;
	if (mode & BTRFS_SEND_FALLOC_PUNCH_HOLE)
		flags |= FALLOC_FL_PUNCH_HOLE;
	fd = open_for_write(user, path);
	if (fd < 0)
		return fd;
	if (fallocate(fd, flags, offset, len) < 0)
		return fail_errno("fallocate", path);
	return 0;
}

/* btrfs inode flags (FILEATTR) and their FS_IOC_SETFLAGS equivalents. */
static const struct {
	uint64_t btrfs;
	unsigned int fs;
} fileattr_map[] = {
	{ 1ULL << 1, FS_NOCOW_FL },
	{ 1ULL << 3, FS_NOCOMP_FL },
	{ 1ULL << 5, FS_SYNC_FL },
	{ 1ULL << 6, FS_IMMUTABLE_FL },
	{ 1ULL << 7, FS_APPEND_FL },
	{ 1ULL << 8, FS_NODUMP_FL },
	{ 1ULL << 9, FS_NOATIME_FL },
	{ 1ULL << 10, FS_DIRSYNC_FL },
	{ 1ULL << 11, FS_COMPR_FL },
};

static int apply_fileattr(const char *path, uint64_t attr, void *user)
{
	struct receive_ctx *ctx = user;
	unsigned int flags = 0;
	const char *name;
	size_t i;
	int dfd, fd, ret;

	for (i = 0; i < sizeof(fileattr_map) / sizeof(fileattr_map[0]); i++)
		if (attr & fileattr_map[i].btrfs)
			flags |= fileattr_map[i].fs;
	ret = resolve_in_order(ctx, path, &dfd, &name);
	if (ret < 0)
		return ret;
	fd = open_inode(dfd, name, path, O_RDONLY, true);
	if (fd < 0)
		return fd;
	if (ioctl(fd, FS_IOC_SETFLAGS, &flags) < 0)
		ret = fail_missing_feature(ctx, RECEIVE_FEATURE_FILEATTR,
					   path);
	close(fd);
	return ret;
}

static int decompressed_write(struct receive_ctx *ctx, int fd,
			      const char *path,
			      const struct send_encoded_write *ew)
{
	void *buf;
	int ret;

	if (!ew->unencoded_len || ew->unencoded_len > 16 * 1024 * 1024 ||
	    ew->unencoded_offset > ew->unencoded_len ||
	    ew->unencoded_file_len > ew->unencoded_len - ew->unencoded_offset) {
		error("encoded_write %s: inconsistent lengths in stream", path);
		return -EINVAL;
	}
	if (ctx->decompress_size < ew->unencoded_len) {
		buf = realloc(ctx->decompress_buf, ew->unencoded_len);
		if (!buf) {
			error("encoded_write %s: out of memory", path);
			return -ENOMEM;
		}
		ctx->decompress_buf = buf;
		ctx->decompress_size = ew->unencoded_len;
	}
	ret = decompress_extent(ew->compression, ew->data, ew->len,
				ctx->decompress_buf, ew->unencoded_len);
	if (ret < 0) {
		error("encoded_write %s: cannot decompress (compression %u): %s",
		      path, ew->compression, strerror(-ret));
		return ret;
	}
	return write_range(fd, (char *)ctx->decompress_buf +
			   ew->unencoded_offset, ew->unencoded_file_len,
			   ew->offset, path);
}

static int apply_encoded_write(const char *path,
			       const struct send_encoded_write *ew, void *user)
{
	struct receive_ctx *ctx = user;
	int fd, ret;

	fd = open_for_write(ctx, path);
	if (fd < 0)
		return fd;
	if (ew->encryption) {
		error("encoded_write %s: encryption %u is not supported", path,
		      ew->encryption);
		return -EOPNOTSUPP;
	}
	if (ew->compression == 0) {
		/* Unencoded: the data is the extent, of which a range is used. */
		if (ew->len != ew->unencoded_len ||
		    ew->unencoded_offset > ew->len ||
		    ew->unencoded_file_len > ew->len - ew->unencoded_offset) {
			error("encoded_write %s: inconsistent lengths in stream",
			      path);
			return -EINVAL;
		}
		return write_range(fd, (const char *)ew->data +
				   ew->unencoded_offset, ew->unencoded_file_len,
				   ew->offset, path);
	}
	if (ctx->dest_ops->write_encoded) {
		ret = ctx->dest_ops->write_encoded(ctx, fd, path, ew);
		if (ret <= 0)
			return ret;
	}
	return decompressed_write(ctx, fd, path, ew);
}

static int apply_enable_verity(const char *path, const struct send_verity *v,
			       void *user)
{
	struct receive_ctx *ctx = user;
	struct fsverity_enable_arg arg = { 0 };
	const char *name;
	int dfd, fd, ret;

	/* Verity refuses files open for writing. */
	close_write_fd(ctx);
	ret = resolve_in_order(ctx, path, &dfd, &name);
	if (ret < 0)
		return ret;
	fd = open_inode(dfd, name, path, O_RDONLY, false);
	if (fd < 0)
		return fd;
	arg.version = 1;
	arg.hash_algorithm = v->algorithm;
	arg.block_size = v->block_size;
	arg.salt_size = v->salt_len;
	arg.salt_ptr = (uintptr_t)v->salt;
	arg.sig_size = v->sig_len;
	arg.sig_ptr = (uintptr_t)v->sig;
	if (ioctl(fd, FS_IOC_ENABLE_VERITY, &arg) < 0)
		ret = fail_missing_feature(ctx, RECEIVE_FEATURE_VERITY, path);
	close(fd);
	return ret;
}

const struct send_stream_ops receive_apply_ops = {
	.subvol = apply_subvol,
	.snapshot = apply_snapshot,
	.mkfile = apply_mkfile,
	.mkdir = apply_mkdir,
	.mknod = apply_mknod,
	.mkfifo = apply_mkfifo,
	.mksock = apply_mksock,
	.symlink = apply_symlink,
	.rename = apply_rename,
	.link = apply_link,
	.unlink = apply_unlink,
	.rmdir = apply_rmdir,
	.write = apply_write,
	.clone = apply_clone,
	.set_xattr = apply_set_xattr,
	.remove_xattr = apply_remove_xattr,
	.truncate = apply_truncate,
	.chmod = apply_chmod,
	.chown = apply_chown,
	.utimes = apply_utimes,
	.update_extent = apply_update_extent,
	.end = apply_end,
	.fallocate = apply_fallocate,
	.fileattr = apply_fileattr,
	.encoded_write = apply_encoded_write,
	.enable_verity = apply_enable_verity,
};
