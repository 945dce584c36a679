// SPDX-License-Identifier: GPL-2.0-only
/*
 * The send stream parser: buffered reads, validation of every header,
 * checksum and attribute, and dispatch of each command to a callback table.
 *
 * Commands are parsed in place in the read buffer; only the string
 * attributes are copied out, to give callbacks NUL-terminated paths.  The
 * buffer holds at most one command beyond its read-ahead, so memory use
 * depends on the largest command, never on the size of the stream.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "le.h"
#include "send-frame.h"
#include "send-stream.h"

#define READ_BUF_SIZE	(128 * 1024)
#define ERR_MSG_SIZE	512
/* Enough for a stream header and any SUBVOL or SNAPSHOT the kernel sends. */
#define HEAD_MAX	512

struct send_attr_value {
	const unsigned char *data;
	uint32_t len;
};

struct send_stream {
	int fd;
	send_stream_read_fn read_fn;	/* NULL: read(2) from fd */
	void *read_user;
	unsigned char *buf;
	size_t buf_size;
	/* Unconsumed bytes are buf[pos, end); buf[0] is at base in the input. */
	size_t pos;
	size_t end;
	uint64_t base;
	bool input_eof;

	unsigned int header_count;
	uint64_t cmd_offset;
	uint64_t cmd_count;
	bool callback_failed;
	volatile sig_atomic_t *interrupt;

	struct send_frame frame;
	/*
	 * Its first bytes (its stream header if it has one, and its first
	 * command), to recognise it when the kernel sends it again.
	 */
	unsigned char head[HEAD_MAX];
	size_t head_len;
	send_stream_restart_fn restart_hook;
	void *restart_user;

	/* The command being decoded. */
	unsigned int cmd;
	uint64_t attrs_present;
	struct send_attr_value attrs[BTRFS_SEND_A_MAX + 1];
	char *strings;
	size_t strings_size;
	size_t strings_used;

	char err[ERR_MSG_SIZE];
};

enum attr_kind {
	ATTR_BYTES,	/* any length */
	ATTR_STRING,	/* any length, no NUL inside */
	ATTR_U8,
	ATTR_U32,
	ATTR_U64,
	ATTR_UUID,
	ATTR_TIMESPEC,
};

struct attr_spec {
	const char *name;
	enum attr_kind kind;
	uint32_t version;
};

#define ATTR(n, k, v) [BTRFS_SEND_A_##n] = { #n, k, v }
static const struct attr_spec attr_specs[BTRFS_SEND_A_MAX + 1] = {
	ATTR(UUID, ATTR_UUID, 1),
	ATTR(CTRANSID, ATTR_U64, 1),
	ATTR(INO, ATTR_U64, 1),
	ATTR(SIZE, ATTR_U64, 1),
	ATTR(MODE, ATTR_U64, 1),
	ATTR(UID, ATTR_U64, 1),
	ATTR(GID, ATTR_U64, 1),
	ATTR(RDEV, ATTR_U64, 1),
	ATTR(CTIME, ATTR_TIMESPEC, 1),
	ATTR(MTIME, ATTR_TIMESPEC, 1),
	ATTR(ATIME, ATTR_TIMESPEC, 1),
	ATTR(OTIME, ATTR_TIMESPEC, 1),
	ATTR(XATTR_NAME, ATTR_STRING, 1),
	ATTR(XATTR_DATA, ATTR_BYTES, 1),
	ATTR(PATH, ATTR_STRING, 1),
	ATTR(PATH_TO, ATTR_STRING, 1),
	ATTR(PATH_LINK, ATTR_STRING, 1),
	ATTR(FILE_OFFSET, ATTR_U64, 1),
	ATTR(DATA, ATTR_BYTES, 1),
	ATTR(CLONE_UUID, ATTR_UUID, 1),
	ATTR(CLONE_CTRANSID, ATTR_U64, 1),
	ATTR(CLONE_PATH, ATTR_STRING, 1),
	ATTR(CLONE_OFFSET, ATTR_U64, 1),
	ATTR(CLONE_LEN, ATTR_U64, 1),
	ATTR(FALLOCATE_MODE, ATTR_U32, 2),
	ATTR(FILEATTR, ATTR_U64, 2),
	ATTR(UNENCODED_FILE_LEN, ATTR_U64, 2),
	ATTR(UNENCODED_LEN, ATTR_U64, 2),
	ATTR(UNENCODED_OFFSET, ATTR_U64, 2),
	ATTR(COMPRESSION, ATTR_U32, 2),
	ATTR(ENCRYPTION, ATTR_U32, 2),
	ATTR(VERITY_ALGORITHM, ATTR_U8, 3),
	ATTR(VERITY_BLOCK_SIZE, ATTR_U32, 3),
	ATTR(VERITY_SALT_DATA, ATTR_BYTES, 3),
	ATTR(VERITY_SIG_DATA, ATTR_BYTES, 3),
};
#undef ATTR

struct cmd_spec {
	const char *name;
	uint32_t version;
	/* Bit n set: attribute n must be present. */
	uint64_t required;
	/*
	 * Applying it again after it failed gives the same result, and a
	 * receiver keeps no state of it: a stop there can be resumed at it.
	 */
	bool repeatable;
};

#define A(n) (1ULL << BTRFS_SEND_A_##n)
#define CMD(n, s, v, r) [BTRFS_SEND_C_##n] = { s, v, r, false }
#define REPEATABLE_CMD(n, s, v, r) [BTRFS_SEND_C_##n] = { s, v, r, true }
static const struct cmd_spec cmd_specs[BTRFS_SEND_C_MAX + 1] = {
	CMD(SUBVOL, "subvol", 1, A(PATH) | A(UUID) | A(CTRANSID)),
	CMD(SNAPSHOT, "snapshot", 1, A(PATH) | A(UUID) | A(CTRANSID) |
	    A(CLONE_UUID) | A(CLONE_CTRANSID)),
	CMD(MKFILE, "mkfile", 1, A(PATH) | A(INO)),
	CMD(MKDIR, "mkdir", 1, A(PATH) | A(INO)),
	CMD(MKNOD, "mknod", 1, A(PATH) | A(INO) | A(MODE) | A(RDEV)),
	CMD(MKFIFO, "mkfifo", 1, A(PATH) | A(INO)),
	CMD(MKSOCK, "mksock", 1, A(PATH) | A(INO)),
	CMD(SYMLINK, "symlink", 1, A(PATH) | A(INO) | A(PATH_LINK)),
	CMD(RENAME, "rename", 1, A(PATH) | A(PATH_TO)),
	CMD(LINK, "link", 1, A(PATH) | A(PATH_LINK)),
	CMD(UNLINK, "unlink", 1, A(PATH)),
	CMD(RMDIR, "rmdir", 1, A(PATH)),
	CMD(SET_XATTR, "set_xattr", 1, A(PATH) | A(XATTR_NAME) |
	    A(XATTR_DATA)),
	CMD(REMOVE_XATTR, "remove_xattr", 1, A(PATH) | A(XATTR_NAME)),
	REPEATABLE_CMD(WRITE, "write", 1, A(PATH) | A(FILE_OFFSET) | A(DATA)),
	REPEATABLE_CMD(CLONE, "clone", 1, A(PATH) | A(FILE_OFFSET) | A(CLONE_LEN) |
	    A(CLONE_UUID) | A(CLONE_CTRANSID) | A(CLONE_PATH) |
	    A(CLONE_OFFSET)),
	REPEATABLE_CMD(TRUNCATE, "truncate", 1, A(PATH) | A(SIZE)),
	REPEATABLE_CMD(CHMOD, "chmod", 1, A(PATH) | A(MODE)),
	CMD(CHOWN, "chown", 1, A(PATH) | A(UID) | A(GID)),
	REPEATABLE_CMD(UTIMES, "utimes", 1, A(PATH) | A(ATIME) | A(MTIME) | A(CTIME)),
	CMD(END, "end", 1, 0),
	REPEATABLE_CMD(UPDATE_EXTENT, "update_extent", 1, A(PATH) | A(FILE_OFFSET) |
	    A(SIZE)),
	REPEATABLE_CMD(FALLOCATE, "fallocate", 2, A(PATH) | A(FALLOCATE_MODE) |
	    A(FILE_OFFSET) | A(SIZE)),
	CMD(FILEATTR, "fileattr", 2, A(PATH) | A(FILEATTR)),
	REPEATABLE_CMD(ENCODED_WRITE, "encoded_write", 2, A(PATH) | A(FILE_OFFSET) |
	    A(UNENCODED_FILE_LEN) | A(UNENCODED_LEN) | A(UNENCODED_OFFSET) |
	    A(DATA)),
	CMD(ENABLE_VERITY, "enable_verity", 3, A(PATH) |
	    A(VERITY_ALGORITHM) | A(VERITY_BLOCK_SIZE)),
};
#undef REPEATABLE_CMD
#undef CMD
#undef A

static const char *send_cmd_name(unsigned int cmd)
{
	if (cmd > BTRFS_SEND_C_MAX || !cmd_specs[cmd].name)
		return "unknown";
	return cmd_specs[cmd].name;
}

bool send_cmd_is_repeatable(unsigned int cmd)
{
	return cmd <= BTRFS_SEND_C_MAX && cmd_specs[cmd].repeatable;
}

static const char *send_attr_name(unsigned int attr)
{
	if (attr > BTRFS_SEND_A_MAX || !attr_specs[attr].name)
		return "UNKNOWN";
	return attr_specs[attr].name;
}

static size_t attr_fixed_size(enum attr_kind kind)
{
	switch (kind) {
	case ATTR_U8:
		return 1;
	case ATTR_U32:
		return 4;
	case ATTR_U64:
		return 8;
	case ATTR_UUID:
		return 16;
	case ATTR_TIMESPEC:
		return BTRFS_SEND_TIMESPEC_LEN;
	default:
		return 0;
	}
}

__attribute__((format(printf, 3, 4)))
static int stream_fail(struct send_stream *s, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	return ret;
}

/* An error in the current command, prefixed with where it is. */
__attribute__((format(printf, 4, 5)))
static int cmd_fail(struct send_stream *s, int ret, int attr,
		    const char *fmt, ...)
{
	char detail[ERR_MSG_SIZE];
	char where[160];
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);

	n = snprintf(where, sizeof(where),
		     "stream offset %llu, command %llu (%s)",
		     (unsigned long long)s->cmd_offset,
		     (unsigned long long)s->cmd_count,
		     send_cmd_name(s->cmd));
	if (attr >= 0 && n > 0 && (size_t)n < sizeof(where))
		snprintf(where + n, sizeof(where) - n, ", attribute %s",
			 send_attr_name(attr));
	return stream_fail(s, ret, "%s: %s", where, detail);
}

int send_stream_open(struct send_stream **ret, int fd)
{
	struct send_stream *s;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->buf_size = READ_BUF_SIZE;
	s->buf = malloc(s->buf_size);
	if (!s->buf) {
		free(s);
		return -ENOMEM;
	}
	s->fd = fd;
	*ret = s;
	return 0;
}

void send_stream_set_reader(struct send_stream *s, send_stream_read_fn fn,
			    void *user)
{
	s->read_fn = fn;
	s->read_user = user;
}

void send_stream_close(struct send_stream *s)
{
	if (!s)
		return;
	free(s->buf);
	free(s->strings);
	free(s);
}

static int grow_buffer(struct send_stream *s, size_t need)
{
	unsigned char *buf;
	size_t size = s->buf_size;

	while (size < need)
		size *= 2;
	buf = realloc(s->buf, size);
	if (!buf)
		return -ENOMEM;
	s->buf = buf;
	s->buf_size = size;
	return 0;
}

/*
 * Make at least need bytes available at buf + pos.  Returns 0 when they
 * are, 1 when the input ended first, or a negative errno.
 */
static int ensure_buffered(struct send_stream *s, size_t need)
{
	ssize_t n;
	int ret;

	if (s->end - s->pos >= need)
		return 0;
	if (need > s->buf_size) {
		ret = grow_buffer(s, need);
		if (ret < 0)
			return stream_fail(s, ret,
				"cannot allocate %zu bytes for a command", need);
	}
	if (s->pos + need > s->buf_size) {
		memmove(s->buf, s->buf + s->pos, s->end - s->pos);
		s->base += s->pos;
		s->end -= s->pos;
		s->pos = 0;
	}
	while (s->end - s->pos < need) {
		if (s->input_eof)
			return 1;
		n = s->read_fn ?
			s->read_fn(s->read_user, s->buf + s->end,
				   s->buf_size - s->end) :
			read(s->fd, s->buf + s->end, s->buf_size - s->end);
		if (n < 0) {
			if (errno == EINTR && s->interrupt && *s->interrupt)
				return stream_fail(s, -EINTR,
					"interrupted at stream offset %llu",
					(unsigned long long)(s->base + s->end));
			if (errno == EINTR)
				continue;
			ret = -errno;
			return stream_fail(s, ret,
				"read error at stream offset %llu: %m",
				(unsigned long long)(s->base + s->end));
		}
		if (n == 0)
			s->input_eof = true;
		s->end += n;
	}
	return 0;
}

static uint64_t input_offset(const struct send_stream *s)
{
	return s->base + s->pos;
}

static int bad_magic(struct send_stream *s, uint64_t offset)
{
	if (s->header_count)
		return stream_fail(s, -EINVAL,
			"stream offset %llu: data after an END command is not a new stream header",
			(unsigned long long)offset);
	return stream_fail(s, -EINVAL,
		"stream offset %llu: bad magic, not a btrfs send stream",
		(unsigned long long)offset);
}

/* Keep the start of a subvolume's stream: its header, its first command. */
static void keep_head(struct send_stream *s, const unsigned char *p,
		      size_t len)
{
	/* A stream header, or a header-less stream's SUBVOL, starts it anew. */
	size_t kept = s->frame.pos.cmds && !s->frame.pos.headerless ?
		      s->head_len : 0;
	size_t room = sizeof(s->head) - kept;

	if (len > room)
		len = room;
	memcpy(s->head + kept, p, len);
	s->head_len = kept + len;
}

static int read_stream_header(struct send_stream *s)
{
	const unsigned char *p;
	uint64_t offset = input_offset(s);
	size_t avail, cmp_len;
	uint32_t version;
	int ret;

	ret = ensure_buffered(s, BTRFS_SEND_STREAM_HEADER_LEN);
	if (ret < 0)
		return ret;
	p = s->buf + s->pos;
	avail = s->end - s->pos;
	if (ret > 0 && avail == 0)
		return SEND_STREAM_EOF;
	cmp_len = avail < BTRFS_SEND_STREAM_MAGIC_LEN ? avail :
						       BTRFS_SEND_STREAM_MAGIC_LEN;
	if (memcmp(p, BTRFS_SEND_STREAM_MAGIC, cmp_len))
		return bad_magic(s, offset);
	if (ret > 0)
		return stream_fail(s, -EIO,
			"stream offset %llu: truncated stream header (%zu of %d bytes)",
			(unsigned long long)offset, avail,
			BTRFS_SEND_STREAM_HEADER_LEN);
	send_frame_stream_header(p, &version);
	if (version < 1 || version > BTRFS_SEND_STREAM_VERSION)
		return stream_fail(s, -EPROTONOSUPPORT,
			"stream offset %llu: unsupported stream version %u (versions 1 to %d are supported)",
			(unsigned long long)offset, version,
			BTRFS_SEND_STREAM_VERSION);
	send_frame_advance(&s->frame, p, BTRFS_SEND_STREAM_HEADER_LEN);
	keep_head(s, p, BTRFS_SEND_STREAM_HEADER_LEN);
	s->pos += BTRFS_SEND_STREAM_HEADER_LEN;
	s->header_count++;
	return 0;
}

static int check_attr(struct send_stream *s, unsigned int type, uint32_t len)
{
	const struct attr_spec *spec;
	size_t size;

	if (type == 0 || type > BTRFS_SEND_A_MAX)
		return cmd_fail(s, -EINVAL, -1, "unknown attribute type %u",
				type);
	spec = &attr_specs[type];
	if (spec->version > s->frame.pos.version)
		return cmd_fail(s, -EINVAL, type,
			"attribute of protocol v%u in a v%u stream",
			spec->version, s->frame.pos.version);
	if (s->attrs_present & (1ULL << type))
		return cmd_fail(s, -EINVAL, type, "attribute given twice");
	size = attr_fixed_size(spec->kind);
	if (size && len != size)
		return cmd_fail(s, -EINVAL, type,
			"length %u, expected %zu", len, size);
	return 0;
}

static bool is_path_attr(unsigned int type)
{
	return type == BTRFS_SEND_A_PATH || type == BTRFS_SEND_A_PATH_TO ||
	       type == BTRFS_SEND_A_PATH_LINK ||
	       type == BTRFS_SEND_A_CLONE_PATH;
}

/* Strings reach callbacks as C strings: no NUL inside, paths bounded. */
static int check_string(struct send_stream *s, unsigned int type,
			const unsigned char *data, uint32_t len)
{
	if (memchr(data, '\0', len))
		return cmd_fail(s, -EINVAL, type, "string contains a NUL byte");
	if (is_path_attr(type) && len >= PATH_MAX)
		return cmd_fail(s, -ENAMETOOLONG, type,
			"path of %u bytes is longer than PATH_MAX", len);
	return 0;
}

/* Split the payload into attributes; values stay in the read buffer. */
static int parse_attrs(struct send_stream *s, const unsigned char *p,
		       uint32_t len)
{
	const unsigned char *payload = p;
	unsigned int type;
	uint32_t vlen;
	uint32_t left;
	int ret;

	s->attrs_present = 0;
	while (p < payload + len) {
		left = len - (p - payload);
		if (left < 2)
			return cmd_fail(s, -EINVAL, -1,
				"truncated attribute header at payload byte %u",
				len - left);
		type = get_le16(p);
		if (type == BTRFS_SEND_A_DATA && s->frame.pos.version >= 2) {
			/* From v2 on DATA has no length and ends the command. */
			vlen = left - 2;
			p += 2;
		} else {
			if (left < BTRFS_SEND_TLV_HEADER_LEN)
				return cmd_fail(s, -EINVAL, -1,
					"truncated attribute header at payload byte %u",
					len - left);
			vlen = get_le16(p + 2);
			if (vlen > left - BTRFS_SEND_TLV_HEADER_LEN)
				return cmd_fail(s, -EINVAL,
					type <= BTRFS_SEND_A_MAX ? (int)type : -1,
					"length %u runs past the end of the command (%u bytes left)",
					vlen, left - BTRFS_SEND_TLV_HEADER_LEN);
			p += BTRFS_SEND_TLV_HEADER_LEN;
		}
		ret = check_attr(s, type, vlen);
		if (ret < 0)
			return ret;
		if (attr_specs[type].kind == ATTR_STRING) {
			ret = check_string(s, type, p, vlen);
			if (ret < 0)
				return ret;
		}
		s->attrs[type].data = p;
		s->attrs[type].len = vlen;
		s->attrs_present |= 1ULL << type;
		p += vlen;
	}
	return 0;
}

static bool has_attr(const struct send_stream *s, int type)
{
	return s->attrs_present & (1ULL << type);
}

static uint64_t get_u64(const struct send_stream *s, int type)
{
	return get_le64(s->attrs[type].data);
}

static uint32_t get_u32(const struct send_stream *s, int type)
{
	return get_le32(s->attrs[type].data);
}

static uint32_t get_u32_or_zero(const struct send_stream *s, int type)
{
	return has_attr(s, type) ? get_u32(s, type) : 0;
}

static const uint8_t *get_uuid(const struct send_stream *s, int type)
{
	return s->attrs[type].data;
}

static void get_timespec(const struct send_stream *s, int type,
			 struct send_timespec *ts)
{
	ts->sec = get_le64(s->attrs[type].data);
	ts->nsec = get_le32(s->attrs[type].data + 8);
}

/* Copy a string attribute out of the buffer and NUL-terminate it. */
static const char *get_string(struct send_stream *s, int type)
{
	const struct send_attr_value *v = &s->attrs[type];
	char *dst = s->strings + s->strings_used;

	memcpy(dst, v->data, v->len);
	dst[v->len] = '\0';
	s->strings_used += v->len + 1;
	return dst;
}

static int reserve_strings(struct send_stream *s, uint32_t payload_len)
{
	/* All strings fit in the payload; add one NUL per attribute. */
	size_t need = (size_t)payload_len + BTRFS_SEND_A_MAX + 1;
	char *strings;

	s->strings_used = 0;
	if (need <= s->strings_size)
		return 0;
	strings = realloc(s->strings, need);
	if (!strings)
		return stream_fail(s, -ENOMEM, "out of memory");
	s->strings = strings;
	s->strings_size = need;
	return 0;
}

/* A NULL slot has nothing to do. */
#define CALL(slot, ...)	(ops->slot ? ops->slot(__VA_ARGS__, user) : 0)

static int dispatch_path_only(struct send_stream *s,
			      const struct send_stream_ops *ops, void *user)
{
	const char *path;

	path = get_string(s, BTRFS_SEND_A_PATH);
	switch (s->cmd) {
	case BTRFS_SEND_C_MKFILE:
		return CALL(mkfile, path);
	case BTRFS_SEND_C_MKDIR:
		return CALL(mkdir, path);
	case BTRFS_SEND_C_MKFIFO:
		return CALL(mkfifo, path);
	case BTRFS_SEND_C_MKSOCK:
		return CALL(mksock, path);
	case BTRFS_SEND_C_UNLINK:
		return CALL(unlink, path);
	case BTRFS_SEND_C_RMDIR:
		return CALL(rmdir, path);
	}
	return -EINVAL;
}

static int dispatch_xattr(struct send_stream *s,
			  const struct send_stream_ops *ops, void *user)
{
	const char *path, *name;

	path = get_string(s, BTRFS_SEND_A_PATH);
	name = get_string(s, BTRFS_SEND_A_XATTR_NAME);
	if (s->cmd == BTRFS_SEND_C_REMOVE_XATTR)
		return CALL(remove_xattr, path, name);
	return CALL(set_xattr, path, name,
		    s->attrs[BTRFS_SEND_A_XATTR_DATA].data,
		    s->attrs[BTRFS_SEND_A_XATTR_DATA].len);
}

static int dispatch_clone(struct send_stream *s,
			  const struct send_stream_ops *ops, void *user)
{
	const char *path, *clone_path;

	path = get_string(s, BTRFS_SEND_A_PATH);
	clone_path = get_string(s, BTRFS_SEND_A_CLONE_PATH);
	return CALL(clone, path, get_u64(s, BTRFS_SEND_A_FILE_OFFSET),
		    get_u64(s, BTRFS_SEND_A_CLONE_LEN),
		    get_uuid(s, BTRFS_SEND_A_CLONE_UUID),
		    get_u64(s, BTRFS_SEND_A_CLONE_CTRANSID), clone_path,
		    get_u64(s, BTRFS_SEND_A_CLONE_OFFSET));
}

static int dispatch_utimes(struct send_stream *s,
			   const struct send_stream_ops *ops, void *user)
{
	struct send_timespec at, mt, ct;
	const char *path;

	path = get_string(s, BTRFS_SEND_A_PATH);
	get_timespec(s, BTRFS_SEND_A_ATIME, &at);
	get_timespec(s, BTRFS_SEND_A_MTIME, &mt);
	get_timespec(s, BTRFS_SEND_A_CTIME, &ct);
	return CALL(utimes, path, &at, &mt, &ct);
}

static int dispatch_encoded_write(struct send_stream *s,
				  const struct send_stream_ops *ops,
				  void *user)
{
	struct send_encoded_write ew;
	const char *path;

	path = get_string(s, BTRFS_SEND_A_PATH);
	ew.offset = get_u64(s, BTRFS_SEND_A_FILE_OFFSET);
	ew.unencoded_file_len = get_u64(s, BTRFS_SEND_A_UNENCODED_FILE_LEN);
	ew.unencoded_len = get_u64(s, BTRFS_SEND_A_UNENCODED_LEN);
	ew.unencoded_offset = get_u64(s, BTRFS_SEND_A_UNENCODED_OFFSET);
	ew.compression = get_u32_or_zero(s, BTRFS_SEND_A_COMPRESSION);
	ew.encryption = get_u32_or_zero(s, BTRFS_SEND_A_ENCRYPTION);
	ew.data = s->attrs[BTRFS_SEND_A_DATA].data;
	ew.len = s->attrs[BTRFS_SEND_A_DATA].len;
	return CALL(encoded_write, path, &ew);
}

static int dispatch_enable_verity(struct send_stream *s,
				  const struct send_stream_ops *ops,
				  void *user)
{
	struct send_verity v = { 0 };
	const char *path;

	path = get_string(s, BTRFS_SEND_A_PATH);
	v.algorithm = s->attrs[BTRFS_SEND_A_VERITY_ALGORITHM].data[0];
	v.block_size = get_u32(s, BTRFS_SEND_A_VERITY_BLOCK_SIZE);
	if (has_attr(s, BTRFS_SEND_A_VERITY_SALT_DATA)) {
		v.salt = s->attrs[BTRFS_SEND_A_VERITY_SALT_DATA].data;
		v.salt_len = s->attrs[BTRFS_SEND_A_VERITY_SALT_DATA].len;
	}
	if (has_attr(s, BTRFS_SEND_A_VERITY_SIG_DATA)) {
		v.sig = s->attrs[BTRFS_SEND_A_VERITY_SIG_DATA].data;
		v.sig_len = s->attrs[BTRFS_SEND_A_VERITY_SIG_DATA].len;
	}
	return CALL(enable_verity, path, &v);
}

/* SYMLINK, RENAME and LINK: a path and another. */
static int dispatch_two_paths(struct send_stream *s,
			      const struct send_stream_ops *ops, void *user)
{
	const char *path = get_string(s, BTRFS_SEND_A_PATH);

	switch (s->cmd) {
	case BTRFS_SEND_C_SYMLINK:
		return CALL(symlink, path,
			    get_string(s, BTRFS_SEND_A_PATH_LINK));
	case BTRFS_SEND_C_RENAME:
		return CALL(rename, path, get_string(s, BTRFS_SEND_A_PATH_TO));
	default:
		return CALL(link, path, get_string(s, BTRFS_SEND_A_PATH_LINK));
	}
}

static int dispatch(struct send_stream *s, const struct send_stream_ops *ops,
		    void *user)
{
	const char *path;

	switch (s->cmd) {
	case BTRFS_SEND_C_SUBVOL:
		path = get_string(s, BTRFS_SEND_A_PATH);
		return CALL(subvol, path, get_uuid(s, BTRFS_SEND_A_UUID),
			    get_u64(s, BTRFS_SEND_A_CTRANSID));
	case BTRFS_SEND_C_SNAPSHOT:
		path = get_string(s, BTRFS_SEND_A_PATH);
		return CALL(snapshot, path, get_uuid(s, BTRFS_SEND_A_UUID),
			    get_u64(s, BTRFS_SEND_A_CTRANSID),
			    get_uuid(s, BTRFS_SEND_A_CLONE_UUID),
			    get_u64(s, BTRFS_SEND_A_CLONE_CTRANSID));
	case BTRFS_SEND_C_MKFILE:
	case BTRFS_SEND_C_MKDIR:
	case BTRFS_SEND_C_MKFIFO:
	case BTRFS_SEND_C_MKSOCK:
	case BTRFS_SEND_C_UNLINK:
	case BTRFS_SEND_C_RMDIR:
		return dispatch_path_only(s, ops, user);
	case BTRFS_SEND_C_MKNOD:
		path = get_string(s, BTRFS_SEND_A_PATH);
		return CALL(mknod, path, get_u64(s, BTRFS_SEND_A_MODE),
			    get_u64(s, BTRFS_SEND_A_RDEV));
	case BTRFS_SEND_C_SYMLINK:
	case BTRFS_SEND_C_RENAME:
	case BTRFS_SEND_C_LINK:
		return dispatch_two_paths(s, ops, user);
	case BTRFS_SEND_C_SET_XATTR:
	case BTRFS_SEND_C_REMOVE_XATTR:
		return dispatch_xattr(s, ops, user);
	case BTRFS_SEND_C_WRITE:
		path = get_string(s, BTRFS_SEND_A_PATH);
		return CALL(write, path, s->attrs[BTRFS_SEND_A_DATA].data,
			    get_u64(s, BTRFS_SEND_A_FILE_OFFSET),
			    s->attrs[BTRFS_SEND_A_DATA].len);
	case BTRFS_SEND_C_CLONE:
		return dispatch_clone(s, ops, user);
	case BTRFS_SEND_C_TRUNCATE:
		path = get_string(s, BTRFS_SEND_A_PATH);
		return CALL(truncate, path, get_u64(s, BTRFS_SEND_A_SIZE));
	case BTRFS_SEND_C_CHMOD:
		path = get_string(s, BTRFS_SEND_A_PATH);
		return CALL(chmod, path, get_u64(s, BTRFS_SEND_A_MODE));
	case BTRFS_SEND_C_CHOWN:
		path = get_string(s, BTRFS_SEND_A_PATH);
		return CALL(chown, path, get_u64(s, BTRFS_SEND_A_UID),
			    get_u64(s, BTRFS_SEND_A_GID));
	case BTRFS_SEND_C_UTIMES:
		return dispatch_utimes(s, ops, user);
	case BTRFS_SEND_C_END:
		return ops->end ? ops->end(user) : 0;
	case BTRFS_SEND_C_UPDATE_EXTENT:
		path = get_string(s, BTRFS_SEND_A_PATH);
		return CALL(update_extent, path,
			    get_u64(s, BTRFS_SEND_A_FILE_OFFSET),
			    get_u64(s, BTRFS_SEND_A_SIZE));
	case BTRFS_SEND_C_FALLOCATE:
		path = get_string(s, BTRFS_SEND_A_PATH);
		return CALL(fallocate, path,
			    get_u32(s, BTRFS_SEND_A_FALLOCATE_MODE),
			    get_u64(s, BTRFS_SEND_A_FILE_OFFSET),
			    get_u64(s, BTRFS_SEND_A_SIZE));
	case BTRFS_SEND_C_FILEATTR:
		path = get_string(s, BTRFS_SEND_A_PATH);
		return CALL(fileattr, path, get_u64(s, BTRFS_SEND_A_FILEATTR));
	case BTRFS_SEND_C_ENCODED_WRITE:
		return dispatch_encoded_write(s, ops, user);
	case BTRFS_SEND_C_ENABLE_VERITY:
		return dispatch_enable_verity(s, ops, user);
	}
	return cmd_fail(s, -EINVAL, -1, "no decoder for this command");
}

#undef CALL

static int check_required(struct send_stream *s)
{
	uint64_t missing = cmd_specs[s->cmd].required & ~s->attrs_present;

	if (!missing)
		return 0;
	return cmd_fail(s, -EINVAL, __builtin_ctzll(missing),
			"required attribute missing");
}

/*
 * Read one command into the buffer and frame it (send_frame_check()).
 * *suspect tells whether the failure is one that a restarted stream
 * causes (see repair_restart()).
 */
static int frame_cmd(struct send_stream *s, uint32_t *len_ret, bool *suspect)
{
	const unsigned char *hdr;
	struct send_frame_cmd c;
	int ret, verdict;

	*suspect = false;
	s->cmd = BTRFS_SEND_C_UNSPEC;
	/* Nothing of the last command stays visible once the buffer moves. */
	s->attrs_present = 0;
	s->cmd_offset = input_offset(s);
	ret = ensure_buffered(s, BTRFS_SEND_CMD_HEADER_LEN);
	if (ret < 0)
		return ret;
	if (ret > 0) {
		if (s->end == s->pos)
			return stream_fail(s, -EIO,
				"stream offset %llu: the input ends before the END command",
				(unsigned long long)s->cmd_offset);
		return stream_fail(s, -EIO,
			"stream offset %llu: truncated command header (%zu of %d bytes)",
			(unsigned long long)s->cmd_offset, s->end - s->pos,
			BTRFS_SEND_CMD_HEADER_LEN);
	}
	s->cmd_count++;
	*suspect = true;
	verdict = send_frame_check(&s->frame, s->buf + s->pos, false, &c);
	s->cmd = c.cmd <= BTRFS_SEND_C_MAX ? c.cmd : BTRFS_SEND_C_UNSPEC;
	if (verdict == SEND_FRAME_STREAM_HEADER)
		return cmd_fail(s, -EINVAL, -1,
			"a stream header where a command was expected (missing END command?)");
	if (verdict == SEND_FRAME_TOO_LONG)
		return cmd_fail(s, -EINVAL, -1,
			"command length %llu exceeds the protocol v%u maximum of %llu",
			(unsigned long long)c.len, s->frame.pos.version,
			(unsigned long long)send_frame_max_payload(
				s->frame.pos.version));
	ret = ensure_buffered(s, BTRFS_SEND_CMD_HEADER_LEN + (size_t)c.len);
	if (ret < 0) {
		*suspect = false;
		return ret;
	}
	if (ret > 0)
		return cmd_fail(s, -EIO, -1,
			"truncated command: stream ends after %zu of %llu bytes",
			s->end - s->pos,
			(unsigned long long)c.len + BTRFS_SEND_CMD_HEADER_LEN);
	/* ensure_buffered() may have moved the buffer. */
	hdr = s->buf + s->pos;
	verdict = send_frame_check(&s->frame, hdr, true, &c);
	if (verdict == SEND_FRAME_BAD_CRC)
		return cmd_fail(s, -EBADMSG, -1,
			"checksum mismatch (stored 0x%08x, computed 0x%08x)",
			c.crc, send_frame_cmd_crc(hdr,
				hdr + BTRFS_SEND_CMD_HEADER_LEN, c.len));
	if (verdict)
		return cmd_fail(s, -EINVAL, -1, "unknown command type %u",
				c.cmd);
	if (cmd_specs[c.cmd].version > s->frame.pos.version)
		return cmd_fail(s, -EINVAL, -1,
			"command of protocol v%u in a v%u stream",
			cmd_specs[c.cmd].version, s->frame.pos.version);
	*suspect = false;
	*len_ret = c.len;
	return 0;
}

/*
 * The well-formed command just framed is the first command of the current
 * header-less stream again: the kernel restarted it at a command boundary.
 * (A stream with a header restarts with its header, which frame_cmd()
 * refuses as a command.)
 */
static bool head_repeated(const struct send_stream *s, uint32_t len)
{
	if (!send_frame_opens_subvol(s->cmd) || !s->frame.pos.cmds ||
	    !s->frame.pos.headerless || !s->head_len ||
	    s->head_len > BTRFS_SEND_CMD_HEADER_LEN + len)
		return false;
	return !memcmp(s->buf + s->pos, s->head, s->head_len);
}

/*
 * Find the start of the current subvolume's stream again, at or after the
 * read position and at most one command's length past it, reading ahead
 * as needed.  *at: its distance from the read position.
 */
static bool find_head(struct send_stream *s, size_t *at)
{
	size_t want = BTRFS_SEND_CMD_HEADER_LEN + s->head_len +
		      send_frame_max_payload(s->frame.pos.version);
	const unsigned char *hit;
	size_t from = 0, have;

	if (!s->head_len)
		return false;
	for (;;) {
		have = s->end - s->pos < want ? s->end - s->pos : want;
		if (have >= from + s->head_len) {
			hit = memmem(s->buf + s->pos + from, have - from,
				     s->head, s->head_len);
			if (hit) {
				*at = hit - (s->buf + s->pos);
				return true;
			}
			from = have - s->head_len + 1;
		}
		if (have == want || s->input_eof ||
		    ensure_buffered(s, have + 1) < 0)
			return false;
	}
}

/* A repair under way: what was applied, and where the repeat stands. */
struct replay {
	struct send_stream_pos want;	/* the position at clean_at */
	uint64_t clean_at;		/* input offset of the broken command */
	uint64_t cmd_count;		/* commands before it */
	uint64_t restart_at;		/* input offset of the repeat */
	uint64_t broken_at;		/* where the stream broke before it */
};

__attribute__((format(printf, 4, 5)))
static int restart_fail(struct send_stream *s, const struct replay *r,
			int ret, const char *fmt, ...)
{
	char detail[ERR_MSG_SIZE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return stream_fail(s, ret,
		"stream offset %llu: the stream restarts at offset %llu (a stopped sender, btrfs-progs issue #719), and %s",
		(unsigned long long)r->clean_at,
		(unsigned long long)r->restart_at, detail);
}

/*
 * A command of the repeat that cannot be read: the repeat restarts again
 * (1, *at set) or the repair fails.
 */
static int replay_broken(struct send_stream *s, const struct replay *r,
			 int ret, size_t *at)
{
	char detail[ERR_MSG_SIZE];

	if (find_head(s, at) && input_offset(s) + *at > r->restart_at)
		return 1;
	if (ret == -EIO && s->input_eof)
		return restart_fail(s, r, ret,
			"the input ends at offset %llu, before the repeated part reaches what was applied at offset %llu",
			(unsigned long long)(s->base + s->end),
			(unsigned long long)r->clean_at);
	memcpy(detail, s->err, sizeof(detail));
	return restart_fail(s, r, ret, "the repeated part is broken: %s",
			    detail);
}

/*
 * Read the repeat, from its start at the read position up to where the
 * stream broke, applying nothing, and check that it is what was applied
 * (send_frame_replay()).  Returns 0 when it is, 1 when the repeat restarts
 * again at *at, or a negative errno.
 */
static int replay(struct send_stream *s, const struct replay *r, size_t *at)
{
	uint32_t len = 0;
	bool suspect;
	int ret;

	send_frame_restart(&s->frame);
	/* Its commands get the numbers they have in the stream applied. */
	s->cmd_count = r->cmd_count - r->want.cmds;
	/* find_head() saw its stream header, if it has one, in the buffer. */
	if (!s->frame.pos.headerless) {
		send_frame_advance(&s->frame, s->buf + s->pos,
				   BTRFS_SEND_STREAM_HEADER_LEN);
		s->pos += BTRFS_SEND_STREAM_HEADER_LEN;
	}
	while (s->frame.pos.offset < r->want.offset) {
		ret = frame_cmd(s, &len, &suspect);
		if (ret < 0 && !suspect && !(ret == -EIO && s->input_eof))
			return ret;
		if (ret < 0 || head_repeated(s, len))
			return replay_broken(s, r, ret ? ret : -EINVAL, at);
		/* Another subvolume's stream: it cannot reach what was. */
		if (send_frame_opens_subvol(s->cmd) && s->frame.pos.cmds)
			break;
		send_frame_advance(&s->frame, s->buf + s->pos,
				   BTRFS_SEND_CMD_HEADER_LEN);
		s->pos += BTRFS_SEND_CMD_HEADER_LEN + len;
	}
	ret = send_frame_replay(&s->frame.pos, 0, &r->want);
	if (ret == SEND_FRAME_ACROSS)
		return restart_fail(s, r, -EINVAL,
			"the repeated part differs from what was applied before offset %llu (it has no command boundary there)",
			(unsigned long long)r->clean_at);
	if (ret)
		return restart_fail(s, r, -EINVAL,
			"the repeated part differs from what was applied before offset %llu",
			(unsigned long long)r->clean_at);
	return 0;
}

static void report_restart(const struct send_stream *s, uint64_t offset,
			   uint64_t skipped)
{
	struct send_stream_restart ev = { offset, skipped };

	if (s->restart_hook)
		s->restart_hook(&ev, s->restart_user);
}

/*
 * A sender stopped while the kernel sends makes the kernel send the
 * subvolume's stream again from its start, after the bytes it had written
 * (btrfs-progs issue #719): the command at the read position is broken,
 * and the stream's first bytes follow within one command's length.  Read
 * the repeat up to here without dispatching it, check that it is what was
 * applied and go on from there, in the repeat.  Returns 1 when repaired, 0
 * when there is no restart (the error message stays), or a negative errno.
 */
static int repair_restart(struct send_stream *s)
{
	struct replay r = { .want = s->frame.pos, .clean_at = s->cmd_offset,
			    .cmd_count = s->cmd_count - 1,
			    .broken_at = s->cmd_offset };
	char err[ERR_MSG_SIZE];
	size_t at;
	int ret;

	/* A stream header alone is no mark: concatenated streams share it. */
	if (!s->frame.pos.cmds)
		return 0;
	memcpy(err, s->err, sizeof(err));
	if (!find_head(s, &at)) {
		memcpy(s->err, err, sizeof(err));
		return 0;
	}
	for (;;) {
		r.restart_at = input_offset(s) + at;
		s->pos += at;
		ret = replay(s, &r, &at);
		if (ret <= 0)
			break;
		report_restart(s, r.restart_at, s->cmd_offset - r.broken_at);
		r.broken_at = s->cmd_offset;
	}
	s->cmd_count = r.cmd_count;
	if (ret < 0) {
		/* Positions stay those of what was applied. */
		s->frame.pos = r.want;
		return ret;
	}
	report_restart(s, r.restart_at, input_offset(s) - r.broken_at);
	return 1;
}

/* Read and check the next command, repairing a restart before it. */
static int read_cmd(struct send_stream *s, const unsigned char **payload,
		    uint32_t *len_ret)
{
	bool suspect;
	int ret, fixed;

	for (;;) {
		ret = frame_cmd(s, len_ret, &suspect);
		if (!ret && !head_repeated(s, *len_ret))
			break;
		if (ret && !suspect)
			return ret;
		fixed = repair_restart(s);
		if (fixed < 0)
			return fixed;
		if (!fixed && ret)
			return ret;
		if (!fixed)
			break;
	}
	*payload = s->buf + s->pos + BTRFS_SEND_CMD_HEADER_LEN;
	return 0;
}

int send_stream_next(struct send_stream *s, const struct send_stream_ops *ops,
		     void *user)
{
	const unsigned char *payload = NULL;
	uint32_t len = 0;
	int ret;

	s->callback_failed = false;
	if (send_frame_header_due(&s->frame)) {
		ret = read_stream_header(s);
		if (ret)
			return ret;
	}
	ret = read_cmd(s, &payload, &len);
	if (ret)
		return ret;
	ret = parse_attrs(s, payload, len);
	if (ret < 0)
		return ret;
	ret = check_required(s);
	if (ret < 0)
		return ret;
	ret = reserve_strings(s, len);
	if (ret < 0)
		return ret;

	/* The command is well-formed: consume it whatever the callback says. */
	s->pos += BTRFS_SEND_CMD_HEADER_LEN + len;
	send_frame_advance(&s->frame, payload - BTRFS_SEND_CMD_HEADER_LEN,
			   BTRFS_SEND_CMD_HEADER_LEN);
	if (s->frame.pos.cmds == 1)
		keep_head(s, payload - BTRFS_SEND_CMD_HEADER_LEN,
			  BTRFS_SEND_CMD_HEADER_LEN + len);
	ret = dispatch(s, ops, user);
	if (ret < 0) {
		s->callback_failed = true;
		if (ret == -EOPNOTSUPP)
			return cmd_fail(s, ret, -1,
				"command not supported here");
		return cmd_fail(s, ret, -1, "%s", strerror(-ret));
	}
	return s->cmd == BTRFS_SEND_C_END ? SEND_STREAM_END : SEND_STREAM_CMD;
}

/* Whether the loop goes on after the command that send_stream_next() read. */
static int loop_step(struct send_stream *s, const struct send_stream_loop *loop,
		     int ret)
{
	if (ret < 0 && (!s->callback_failed || !loop->callback_failed ||
			loop->callback_failed(s, ret, loop->data)))
		return ret;
	if (loop->after && loop->after(s, loop->data))
		return SEND_STREAM_STOPPED;
	if (ret == SEND_STREAM_END && loop->stop_at_end)
		return SEND_STREAM_END;
	return SEND_STREAM_CMD;
}

int send_stream_run(struct send_stream *s, const struct send_stream_ops *ops,
		    void *user, const struct send_stream_loop *loop)
{
	int ret;

	for (;;) {
		if (loop->before && loop->before(s, loop->data))
			return SEND_STREAM_STOPPED;
		ret = send_stream_next(s, ops, user);
		if (ret == SEND_STREAM_EOF)
			return ret;
		ret = loop_step(s, loop, ret);
		if (ret != SEND_STREAM_CMD)
			return ret;
	}
}

void send_stream_position(const struct send_stream *s,
			  struct send_stream_pos *pos)
{
	*pos = s->frame.pos;
}

int send_stream_peek(struct send_stream *s, const void **data, size_t len)
{
	int ret = ensure_buffered(s, len);

	if (ret)
		return ret;
	*data = s->buf + s->pos;
	return 0;
}

void send_stream_skip(struct send_stream *s, size_t len)
{
	s->pos += len;
}

void send_stream_resume_at(struct send_stream *s,
			   const struct send_stream_pos *pos)
{
	s->frame.pos = *pos;
	s->header_count = 1;
	s->cmd_count = pos->cmds;
	/* Input offsets from here on are those of the original stream. */
	s->base = pos->offset - s->pos;
	/* Its start is not in this input: a restart cannot be recognised. */
	s->head_len = 0;
}

void send_stream_set_restart_hook(struct send_stream *s,
				  send_stream_restart_fn hook, void *user)
{
	s->restart_hook = hook;
	s->restart_user = user;
}

void send_stream_set_interrupt(struct send_stream *s,
			       volatile sig_atomic_t *flag)
{
	s->interrupt = flag;
}

int send_stream_failed_in_callback(const struct send_stream *s)
{
	return s->callback_failed;
}

const char *send_stream_error(const struct send_stream *s)
{
	return s->err;
}

uint32_t send_stream_version(const struct send_stream *s)
{
	return s->frame.pos.version;
}

uint64_t send_stream_cmd_offset(const struct send_stream *s)
{
	return s->cmd_offset;
}

uint64_t send_stream_offset(const struct send_stream *s)
{
	return input_offset(s);
}

uint64_t send_stream_cmd_count(const struct send_stream *s)
{
	return s->cmd_count;
}

unsigned int send_stream_cmd_type(const struct send_stream *s)
{
	return s->cmd;
}

const char *send_stream_cmd_path(const struct send_stream *s, size_t *len)
{
	if (!has_attr(s, BTRFS_SEND_A_PATH))
		return NULL;
	*len = s->attrs[BTRFS_SEND_A_PATH].len;
	return (const char *)s->attrs[BTRFS_SEND_A_PATH].data;
}

unsigned int send_stream_header_count(const struct send_stream *s)
{
	return s->header_count;
}
