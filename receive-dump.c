// SPDX-License-Identifier: GPL-2.0-only
/*
 * The text dump: a callback table that prints one line per command, in
 * exactly the format of btrfs-progs' "btrfs receive --dump", so that
 * scripts written against it read ours unchanged.
 *
 * Each line is the command name padded to 16 columns, the path prefixed
 * with the subvolume's and escaped, padded to 32 columns (at least one
 * space), then the command's fields.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

#include "receive-dump.h"
#include "utils.h"

#define TITLE_WIDTH	16
#define PATH_WIDTH	32

void dump_ctx_init(struct dump_ctx *ctx, FILE *out)
{
	ctx->out = out;
	ctx->stream = NULL;
	strcpy(ctx->subvol_escaped, ".");
	ctx->subvol_escaped_len = 1;
	strcpy(ctx->subvol_raw, ".");
	ctx->subvol_raw_len = 1;
}

/*
 * Escape like btrfs-progs: C escapes for control characters, space and
 * backslash, three-digit octal for every other byte outside printable
 * ASCII.  Returns the number of characters written to dst.
 */
static int escape_path(char *dst, const char *src)
{
	static const char simple[] = "\a\b\033\f\n\r\t\v \\";
	static const char letter[] = "abefnrtv \\";
	const unsigned char *p = (const unsigned char *)src;
	char *d = dst;
	const char *hit;

	for (; *p; p++) {
		hit = strchr(simple, *p);
		if (hit) {
			*d++ = '\\';
			*d++ = letter[hit - simple];
		} else if (*p < 0x20 || *p >= 0x7f) {
			*d++ = '\\';
			*d++ = '0' + (*p >> 6);
			*d++ = '0' + ((*p >> 3) & 7);
			*d++ = '0' + (*p & 7);
		} else {
			*d++ = *p;
		}
	}
	*d = '\0';
	return d - dst;
}

/* The joined path "<subvol>/<path>", escaped, into buf; its length. */
static int join_escaped(const struct dump_ctx *ctx, char *buf,
			const char *path)
{
	size_t len = strlen(path);
	int n;

	if (ctx->subvol_raw_len + len + 2 > PATH_MAX) {
		error("path too long: %s/%s", ctx->subvol_escaped, path);
		return -ENAMETOOLONG;
	}
	memcpy(buf, ctx->subvol_escaped, ctx->subvol_escaped_len);
	n = ctx->subvol_escaped_len;
	buf[n++] = '/';
	return n + escape_path(buf + n, path);
}

static void print_head(struct dump_ctx *ctx, const char *title,
		       const char *escaped, int len)
{
	fprintf(ctx->out, "%-*s%s", TITLE_WIDTH, title, escaped);
	do {
		putc_unlocked(' ', ctx->out);
	} while (++len < PATH_WIDTH);
}

__attribute__((format(printf, 4, 5)))
static int print_line(struct dump_ctx *ctx, const char *title,
		      const char *path, const char *fmt, ...)
{
	char escaped[4 * PATH_MAX + 8];
	va_list ap;
	int len;

	len = join_escaped(ctx, escaped, path);
	if (len < 0)
		return len;
	if (!fmt) {
		fprintf(ctx->out, "%-*s%s\n", TITLE_WIDTH, title, escaped);
		return 0;
	}
	print_head(ctx, title, escaped, len);
	va_start(ap, fmt);
	vfprintf(ctx->out, fmt, ap);
	va_end(ap);
	putc_unlocked('\n', ctx->out);
	return 0;
}

static int enter_subvol(struct dump_ctx *ctx, const char *path)
{
	size_t len = strlen(path);

	if (len + 3 > PATH_MAX) {
		error("path too long: ./%s", path);
		return -ENAMETOOLONG;
	}
	strcpy(ctx->subvol_escaped, "./");
	ctx->subvol_escaped_len = 2 + escape_path(ctx->subvol_escaped + 2,
						  path);
	snprintf(ctx->subvol_raw, sizeof(ctx->subvol_raw), "./%s", path);
	ctx->subvol_raw_len = len + 2;
	return 0;
}

static int dump_subvol(const char *path, const uint8_t *uuid,
		       uint64_t ctransid, void *user)
{
	struct dump_ctx *ctx = user;
	char uuid_str[UUID_STR_LEN];
	int ret;

	ret = enter_subvol(ctx, path);
	if (ret < 0)
		return ret;
	uuid_unparse(uuid, uuid_str);
	print_head(ctx, "subvol", ctx->subvol_escaped,
		   ctx->subvol_escaped_len);
	fprintf(ctx->out, "uuid=%s transid=%llu\n", uuid_str,
		(unsigned long long)ctransid);
	return 0;
}

static int dump_snapshot(const char *path, const uint8_t *uuid,
			 uint64_t ctransid, const uint8_t *parent_uuid,
			 uint64_t parent_ctransid, void *user)
{
	struct dump_ctx *ctx = user;
	char uuid_str[UUID_STR_LEN], parent_str[UUID_STR_LEN];
	int ret;

	ret = enter_subvol(ctx, path);
	if (ret < 0)
		return ret;
	uuid_unparse(uuid, uuid_str);
	uuid_unparse(parent_uuid, parent_str);
	print_head(ctx, "snapshot", ctx->subvol_escaped,
		   ctx->subvol_escaped_len);
	fprintf(ctx->out,
		"uuid=%s transid=%llu parent_uuid=%s parent_transid=%llu\n",
		uuid_str, (unsigned long long)ctransid, parent_str,
		(unsigned long long)parent_ctransid);
	return 0;
}

static int dump_mkfile(const char *path, void *user)
{
	return print_line(user, "mkfile", path, NULL);
}

static int dump_mkdir(const char *path, void *user)
{
	return print_line(user, "mkdir", path, NULL);
}

static int dump_mknod(const char *path, uint64_t mode, uint64_t rdev,
		      void *user)
{
	return print_line(user, "mknod", path, "mode=%llo dev=0x%llx",
			  (unsigned long long)mode, (unsigned long long)rdev);
}

static int dump_mkfifo(const char *path, void *user)
{
	return print_line(user, "mkfifo", path, NULL);
}

static int dump_mksock(const char *path, void *user)
{
	return print_line(user, "mksock", path, NULL);
}

static int dump_symlink(const char *path, const char *target, void *user)
{
	char escaped[4 * PATH_MAX + 1];

	escape_path(escaped, target);
	return print_line(user, "symlink", path, "dest=%s", escaped);
}

static int dump_rename(const char *from, const char *to, void *user)
{
	char escaped[4 * PATH_MAX + 8];
	int ret;

	ret = join_escaped(user, escaped, to);
	if (ret < 0)
		return ret;
	return print_line(user, "rename", from, "dest=%s", escaped);
}

static int dump_link(const char *path, const char *target, void *user)
{
	char escaped[4 * PATH_MAX + 1];

	escape_path(escaped, target);
	return print_line(user, "link", path, "dest=%s", escaped);
}

static int dump_unlink(const char *path, void *user)
{
	return print_line(user, "unlink", path, NULL);
}

static int dump_rmdir(const char *path, void *user)
{
	return print_line(user, "rmdir", path, NULL);
}

static int dump_write(const char *path, const void *data, uint64_t offset,
		      size_t len, void *user)
{
	(void)data;
	return print_line(user, "write", path, "offset=%llu len=%zu",
			  (unsigned long long)offset, len);
}

/* btrfs-progs prints the clone source joined but not escaped. */
static int dump_clone(const char *path, uint64_t offset, uint64_t len,
		      const uint8_t *clone_uuid, uint64_t clone_ctransid,
		      const char *clone_path, uint64_t clone_offset,
		      void *user)
{
	struct dump_ctx *ctx = user;

	(void)clone_uuid;
	(void)clone_ctransid;
	if (ctx->subvol_raw_len + strlen(clone_path) + 2 > PATH_MAX) {
		error("path too long: %s/%s", ctx->subvol_raw, clone_path);
		return -ENAMETOOLONG;
	}
	return print_line(ctx, "clone", path,
			  "offset=%llu len=%llu from=%s/%s clone_offset=%llu",
			  (unsigned long long)offset, (unsigned long long)len,
			  ctx->subvol_raw, clone_path,
			  (unsigned long long)clone_offset);
}

/* The value is printed as a C string: it stops at the first NUL byte. */
static int dump_set_xattr(const char *path, const char *name,
			  const void *data, size_t len, void *user)
{
	return print_line(user, "set_xattr", path, "name=%s data=%.*s len=%zu",
			  name, (int)strnlen(data, len), (const char *)data,
			  len);
}

static int dump_remove_xattr(const char *path, const char *name, void *user)
{
	return print_line(user, "remove_xattr", path, "name=%s", name);
}

static int dump_truncate(const char *path, uint64_t size, void *user)
{
	return print_line(user, "truncate", path, "size=%llu",
			  (unsigned long long)size);
}

static int dump_chmod(const char *path, uint64_t mode, void *user)
{
	return print_line(user, "chmod", path, "mode=%llo",
			  (unsigned long long)mode);
}

static int dump_chown(const char *path, uint64_t uid, uint64_t gid,
		      void *user)
{
	return print_line(user, "chown", path, "gid=%llu uid=%llu",
			  (unsigned long long)gid, (unsigned long long)uid);
}

/* Local time without fractions, as btrfs-progs prints it. */
static int format_time(const struct send_timespec *ts, char *buf, size_t size)
{
	time_t sec = (time_t)ts->sec;
	struct tm tm;

	if ((uint64_t)sec != ts->sec || !localtime_r(&sec, &tm) ||
	    !strftime(buf, size, "%Y-%m-%dT%H:%M:%S%z", &tm)) {
		error("failed to convert time %llu.%09u to local time",
		      (unsigned long long)ts->sec, ts->nsec);
		return -EINVAL;
	}
	return 0;
}

static int dump_utimes(const char *path, const struct send_timespec *atime,
		       const struct send_timespec *mtime,
		       const struct send_timespec *ctime, void *user)
{
	char at[64], mt[64], ct[64];

	if (format_time(atime, at, sizeof(at)) ||
	    format_time(mtime, mt, sizeof(mt)) ||
	    format_time(ctime, ct, sizeof(ct)))
		return -EINVAL;
	return print_line(user, "utimes", path, "atime=%s mtime=%s ctime=%s",
			  at, mt, ct);
}

static int dump_update_extent(const char *path, uint64_t offset,
			      uint64_t len, void *user)
{
	return print_line(user, "update_extent", path, "offset=%llu len=%llu",
			  (unsigned long long)offset, (unsigned long long)len);
}

/* END prints nothing; the next SUBVOL or SNAPSHOT names the next one. */
static int dump_end(void *user)
{
	(void)user;
	return 0;
}

static int dump_fallocate(const char *path, uint32_t mode, uint64_t offset,
			  uint64_t len, void *user)
{
	return print_line(user, "fallocate", path, "mode=%u offset=%llu len=%llu",
			  mode, (unsigned long long)offset,
			  (unsigned long long)len);
}

/*
 * btrfs-progs 6.2 prints the flags in decimal behind a "0x"; kept so that
 * the output stays byte-identical (documented in btrfs-receive.8).
 */
static int dump_fileattr(const char *path, uint64_t attr, void *user)
{
	return print_line(user, "fileattr", path, "fileattr=0x%llu",
			  (unsigned long long)attr);
}

static int dump_encoded_write(const char *path,
			      const struct send_encoded_write *ew, void *user)
{
	return print_line(user, "encoded_write", path,
			  "offset=%llu len=%zu, unencoded_file_len=%llu, unencoded_len=%llu, unencoded_offset=%llu, compression=%u, encryption=%u",
			  (unsigned long long)ew->offset, ew->len,
			  (unsigned long long)ew->unencoded_file_len,
			  (unsigned long long)ew->unencoded_len,
			  (unsigned long long)ew->unencoded_offset,
			  ew->compression, ew->encryption);
}

/* btrfs-progs 6.2 does not read protocol v3; this follows its later style. */
static int dump_enable_verity(const char *path, const struct send_verity *v,
			      void *user)
{
	return print_line(user, "enable_verity", path,
			  "algorithm=%u block_size=%u salt_len=%zu sig_len=%zu",
			  v->algorithm, v->block_size, v->salt_len,
			  v->sig_len);
}

const struct send_stream_ops dump_ops = {
	.subvol = dump_subvol,
	.snapshot = dump_snapshot,
	.mkfile = dump_mkfile,
	.mkdir = dump_mkdir,
	.mknod = dump_mknod,
	.mkfifo = dump_mkfifo,
	.mksock = dump_mksock,
	.symlink = dump_symlink,
	.rename = dump_rename,
	.link = dump_link,
	.unlink = dump_unlink,
	.rmdir = dump_rmdir,
	.write = dump_write,
	.clone = dump_clone,
	.set_xattr = dump_set_xattr,
	.remove_xattr = dump_remove_xattr,
	.truncate = dump_truncate,
	.chmod = dump_chmod,
	.chown = dump_chown,
	.utimes = dump_utimes,
	.update_extent = dump_update_extent,
	.end = dump_end,
	.fallocate = dump_fallocate,
	.fileattr = dump_fileattr,
	.encoded_write = dump_encoded_write,
	.enable_verity = dump_enable_verity,
};
