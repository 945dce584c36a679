// SPDX-License-Identifier: GPL-2.0-only
/*
 * The JSON dump: one JSON object per command and line (JSON Lines), with
 * typed fields, for "btrfs --format json receive --dump".  Strings are
 * the stream's bytes, escaped as json-string.h says.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

#include "json-string.h"
#include "receive-dump.h"

static void field_str(FILE *out, const char *key, const char *value)
{
	fprintf(out, ",\"%s\":", key);
	json_put_string(out, value, strlen(value));
}

static void field_u64(FILE *out, const char *key, uint64_t value)
{
	fprintf(out, ",\"%s\":%llu", key, (unsigned long long)value);
}

static void field_uuid(FILE *out, const char *key, const uint8_t *uuid)
{
	char str[UUID_STR_LEN];

	uuid_unparse(uuid, str);
	fprintf(out, ",\"%s\":\"%s\"", key, str);
}

/* UTC ISO-8601 with nanoseconds, plus the raw values. */
static void field_time(FILE *out, const char *key,
		       const struct send_timespec *ts)
{
	time_t sec = (time_t)ts->sec;
	char buf[64];
	struct tm tm;

	fprintf(out, ",\"%s_sec\":%llu,\"%s_nsec\":%u", key,
		(unsigned long long)ts->sec, key, ts->nsec);
	if ((uint64_t)sec == ts->sec && gmtime_r(&sec, &tm) &&
	    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm))
		fprintf(out, ",\"%s\":\"%s.%09uZ\"", key, buf, ts->nsec);
	else
		fprintf(out, ",\"%s\":null", key);
}

/* Every object starts with the command, its offset and the subvolume. */
static FILE *begin(struct dump_ctx *ctx, const char *cmd, const char *path)
{
	FILE *out = ctx->out;

	fprintf(out, "{\"cmd\":\"%s\",\"offset\":%llu", cmd,
		(unsigned long long)(ctx->stream ?
				     send_stream_cmd_offset(ctx->stream) : 0));
	if (ctx->subvol_raw_len > 2)
		field_str(out, "subvol", ctx->subvol_raw + 2);
	if (path)
		field_str(out, "path", path);
	return out;
}

static int end(struct dump_ctx *ctx)
{
	fputs("}\n", ctx->out);
	return 0;
}

static void set_subvol(struct dump_ctx *ctx, const char *path)
{
	snprintf(ctx->subvol_raw, sizeof(ctx->subvol_raw), "./%s", path);
	ctx->subvol_raw_len = strlen(ctx->subvol_raw);
}

static int json_subvol(const char *path, const uint8_t *uuid,
		       uint64_t ctransid, void *user)
{
	struct dump_ctx *ctx = user;
	FILE *out;

	set_subvol(ctx, path);
	out = begin(ctx, "subvol", NULL);
	field_uuid(out, "uuid", uuid);
	field_u64(out, "ctransid", ctransid);
	return end(ctx);
}

static int json_snapshot(const char *path, const uint8_t *uuid,
			 uint64_t ctransid, const uint8_t *parent_uuid,
			 uint64_t parent_ctransid, void *user)
{
	struct dump_ctx *ctx = user;
	FILE *out;

	set_subvol(ctx, path);
	out = begin(ctx, "snapshot", NULL);
	field_uuid(out, "uuid", uuid);
	field_u64(out, "ctransid", ctransid);
	field_uuid(out, "parent_uuid", parent_uuid);
	field_u64(out, "parent_ctransid", parent_ctransid);
	return end(ctx);
}

#define JSON_PATH_ONLY(name)						\
static int json_##name(const char *path, void *user)			\
{									\
	begin(user, #name, path);					\
	return end(user);						\
}
JSON_PATH_ONLY(mkfile)
JSON_PATH_ONLY(mkdir)
JSON_PATH_ONLY(mkfifo)
JSON_PATH_ONLY(mksock)
JSON_PATH_ONLY(unlink)
JSON_PATH_ONLY(rmdir)

static int json_mknod(const char *path, uint64_t mode, uint64_t rdev,
		      void *user)
{
	FILE *out = begin(user, "mknod", path);

	field_u64(out, "mode", mode);
	field_u64(out, "rdev", rdev);
	return end(user);
}

static int json_two_paths(void *user, const char *cmd, const char *path,
			  const char *key, const char *other)
{
	FILE *out = begin(user, cmd, path);

	field_str(out, key, other);
	return end(user);
}

static int json_symlink(const char *path, const char *target, void *user)
{
	return json_two_paths(user, "symlink", path, "target", target);
}

static int json_rename(const char *from, const char *to, void *user)
{
	return json_two_paths(user, "rename", from, "to", to);
}

static int json_link(const char *path, const char *target, void *user)
{
	return json_two_paths(user, "link", path, "target", target);
}

static int json_write(const char *path, const void *data, uint64_t offset,
		      size_t len, void *user)
{
	FILE *out = begin(user, "write", path);

	(void)data;
	field_u64(out, "file_offset", offset);
	field_u64(out, "len", len);
	return end(user);
}

static int json_clone(const char *path, uint64_t offset, uint64_t len,
		      const uint8_t *clone_uuid, uint64_t clone_ctransid,
		      const char *clone_path, uint64_t clone_offset,
		      void *user)
{
	FILE *out = begin(user, "clone", path);

	field_u64(out, "file_offset", offset);
	field_u64(out, "len", len);
	field_uuid(out, "clone_uuid", clone_uuid);
	field_u64(out, "clone_ctransid", clone_ctransid);
	field_str(out, "clone_path", clone_path);
	field_u64(out, "clone_offset", clone_offset);
	return end(user);
}

static int json_set_xattr(const char *path, const char *name,
			  const void *data, size_t len, void *user)
{
	FILE *out = begin(user, "set_xattr", path);

	(void)data;
	field_str(out, "name", name);
	field_u64(out, "data_len", len);
	return end(user);
}

static int json_remove_xattr(const char *path, const char *name, void *user)
{
	FILE *out = begin(user, "remove_xattr", path);

	field_str(out, "name", name);
	return end(user);
}

static int json_one_u64(void *user, const char *cmd, const char *path,
			const char *key, uint64_t value)
{
	FILE *out = begin(user, cmd, path);

	field_u64(out, key, value);
	return end(user);
}

static int json_truncate(const char *path, uint64_t size, void *user)
{
	return json_one_u64(user, "truncate", path, "size", size);
}

static int json_chmod(const char *path, uint64_t mode, void *user)
{
	return json_one_u64(user, "chmod", path, "mode", mode);
}

static int json_fileattr(const char *path, uint64_t attr, void *user)
{
	return json_one_u64(user, "fileattr", path, "fileattr", attr);
}

static int json_chown(const char *path, uint64_t uid, uint64_t gid,
		      void *user)
{
	FILE *out = begin(user, "chown", path);

	field_u64(out, "uid", uid);
	field_u64(out, "gid", gid);
	return end(user);
}

static int json_utimes(const char *path, const struct send_timespec *atime,
		       const struct send_timespec *mtime,
		       const struct send_timespec *ctime, void *user)
{
	FILE *out = begin(user, "utimes", path);

	field_time(out, "atime", atime);
	field_time(out, "mtime", mtime);
	field_time(out, "ctime", ctime);
	return end(user);
}

static int json_update_extent(const char *path, uint64_t offset,
			      uint64_t len, void *user)
{
	FILE *out = begin(user, "update_extent", path);

	field_u64(out, "file_offset", offset);
	field_u64(out, "len", len);
	return end(user);
}

static int json_end(void *user)
{
	begin(user, "end", NULL);
	return end(user);
}

static int json_fallocate(const char *path, uint32_t mode, uint64_t offset,
			  uint64_t len, void *user)
{
	FILE *out = begin(user, "fallocate", path);

	field_u64(out, "mode", mode);
	field_u64(out, "file_offset", offset);
	field_u64(out, "len", len);
	return end(user);
}

static int json_encoded_write(const char *path,
			      const struct send_encoded_write *ew, void *user)
{
	FILE *out = begin(user, "encoded_write", path);

	field_u64(out, "file_offset", ew->offset);
	field_u64(out, "len", ew->len);
	field_u64(out, "unencoded_file_len", ew->unencoded_file_len);
	field_u64(out, "unencoded_len", ew->unencoded_len);
	field_u64(out, "unencoded_offset", ew->unencoded_offset);
	field_u64(out, "compression", ew->compression);
	field_u64(out, "encryption", ew->encryption);
	return end(user);
}

static int json_enable_verity(const char *path, const struct send_verity *v,
			      void *user)
{
	FILE *out = begin(user, "enable_verity", path);

	field_u64(out, "algorithm", v->algorithm);
	field_u64(out, "block_size", v->block_size);
	field_u64(out, "salt_len", v->salt_len);
	field_u64(out, "sig_len", v->sig_len);
	return end(user);
}

const struct send_stream_ops dump_json_ops = {
	.subvol = json_subvol,
	.snapshot = json_snapshot,
	.mkfile = json_mkfile,
	.mkdir = json_mkdir,
	.mknod = json_mknod,
	.mkfifo = json_mkfifo,
	.mksock = json_mksock,
	.symlink = json_symlink,
	.rename = json_rename,
	.link = json_link,
	.unlink = json_unlink,
	.rmdir = json_rmdir,
	.write = json_write,
	.clone = json_clone,
	.set_xattr = json_set_xattr,
	.remove_xattr = json_remove_xattr,
	.truncate = json_truncate,
	.chmod = json_chmod,
	.chown = json_chown,
	.utimes = json_utimes,
	.update_extent = json_update_extent,
	.end = json_end,
	.fallocate = json_fallocate,
	.fileattr = json_fileattr,
	.encoded_write = json_encoded_write,
	.enable_verity = json_enable_verity,
};
