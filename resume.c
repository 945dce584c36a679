// SPDX-License-Identifier: GPL-2.0-only
/*
 * Resumable transfers: the record, the token and the continuation frame.
 * The sender checks a regenerated prefix in send-pump.c.  See resume.h.
 *
 * The token is base64url of a blob: "BR", version, flags, protocol, uuid,
 * ctransid, parent uuid and ctransid, offset, command count, chain, last
 * command CRC, and the CRC32C of all of it, integers little-endian.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "crc32c.h"
#include "le.h"
#include "resume.h"
#include "utils.h"

#define TOKEN_VERSION		1
#define RECORD_PREFIX		"."
#define RECORD_SUFFIX		".btrfs-receive-resume"
#define RECORD_HEADER		"btrfs-receive-resume 1\n"
#define RECORD_MAX		(4 * PATH_MAX + 2048)
/* The record file's size: the longest record (a cap_path in hex) fits. */
#define RECORD_SIZE		16384

/* Where each field of the blob starts. */
enum {
	BLOB_MAGIC = 0,			/* "BR" */
	BLOB_VERSION = 2,		/* u8 */
	BLOB_FLAGS = 3,			/* the u32s and u64s little-endian */
	BLOB_PROTO = 7,
	BLOB_UUID = 11,			/* 16 bytes */
	BLOB_CTRANSID = 27,
	BLOB_PARENT_UUID = 35,		/* 16 bytes */
	BLOB_PARENT_CTRANSID = 51,
	BLOB_OFFSET = 59,
	BLOB_CMDS = 67,
	BLOB_CHAIN = 75,
	BLOB_LAST_CRC = 79,
	BLOB_CRC = 83,			/* of every byte before it */
	BLOB_LEN = RESUME_BLOB_LEN
};
_Static_assert(BLOB_CRC + 4 == BLOB_LEN, "the CRC ends the blob");

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void resume_token_from_pos(struct resume_token *t,
			   const struct send_stream_pos *pos)
{
	t->pos = *pos;
	t->flags = 0;
	if (pos->headerless)
		t->flags |= RESUME_FLAG_HEADERLESS;
	if (pos->cmds_seen & (1U << BTRFS_SEND_C_UPDATE_EXTENT))
		t->flags |= RESUME_FLAG_NO_DATA;
	if (pos->cmds_seen & (1U << BTRFS_SEND_C_ENCODED_WRITE))
		t->flags |= RESUME_FLAG_COMPRESSED;
	if (pos->ended)
		t->flags |= RESUME_FLAG_ENDED;
}

static void blob_encode(const struct resume_token *t, unsigned char *b)
{
	b[BLOB_MAGIC] = 'B';
	b[BLOB_MAGIC + 1] = 'R';
	b[BLOB_VERSION] = TOKEN_VERSION;
	put_le32(b + BLOB_FLAGS, t->flags);
	put_le32(b + BLOB_PROTO, t->pos.version);
	memcpy(b + BLOB_UUID, t->uuid, 16);
	put_le64(b + BLOB_CTRANSID, t->ctransid);
	memcpy(b + BLOB_PARENT_UUID, t->parent_uuid, 16);
	put_le64(b + BLOB_PARENT_CTRANSID, t->parent_ctransid);
	put_le64(b + BLOB_OFFSET, t->pos.offset);
	put_le64(b + BLOB_CMDS, t->pos.cmds);
	put_le32(b + BLOB_CHAIN, t->pos.chain);
	put_le32(b + BLOB_LAST_CRC, t->pos.last_crc);
	put_le32(b + BLOB_CRC, crc32c_update(0, b, BLOB_CRC));
}

static int blob_decode(const unsigned char *b, struct resume_token *t,
		       const char **why)
{
	if (b[BLOB_MAGIC] != 'B' || b[BLOB_MAGIC + 1] != 'R') {
		*why = "not a resume token";
		return -EINVAL;
	}
	if (get_le32(b + BLOB_CRC) != crc32c_update(0, b, BLOB_CRC)) {
		*why = "checksum mismatch (damaged or edited)";
		return -EINVAL;
	}
	if (b[BLOB_VERSION] != TOKEN_VERSION) {
		*why = "token version not supported";
		return -EINVAL;
	}
	memset(t, 0, sizeof(*t));
	t->flags = get_le32(b + BLOB_FLAGS);
	t->pos.version = get_le32(b + BLOB_PROTO);
	memcpy(t->uuid, b + BLOB_UUID, 16);
	t->ctransid = get_le64(b + BLOB_CTRANSID);
	memcpy(t->parent_uuid, b + BLOB_PARENT_UUID, 16);
	t->parent_ctransid = get_le64(b + BLOB_PARENT_CTRANSID);
	t->pos.offset = get_le64(b + BLOB_OFFSET);
	t->pos.cmds = get_le64(b + BLOB_CMDS);
	t->pos.chain = get_le32(b + BLOB_CHAIN);
	t->pos.last_crc = get_le32(b + BLOB_LAST_CRC);
	t->pos.headerless = t->flags & RESUME_FLAG_HEADERLESS;
	t->pos.ended = t->flags & RESUME_FLAG_ENDED;
	if (t->pos.version < 1 || t->pos.version > BTRFS_SEND_STREAM_VERSION ||
	    !t->pos.cmds || t->pos.offset < t->pos.cmds *
	    BTRFS_SEND_CMD_HEADER_LEN) {
		*why = "inconsistent fields";
		return -EINVAL;
	}
	return 0;
}

void resume_token_encode(const struct resume_token *t, char *text)
{
	unsigned char b[BLOB_LEN];
	uint32_t v;
	size_t i;

	blob_encode(t, b);
	for (i = 0; i < BLOB_LEN; i += 3) {
		v = b[i] << 16 | b[i + 1] << 8 | b[i + 2];
		*text++ = b64[v >> 18];
		*text++ = b64[(v >> 12) & 63];
		*text++ = b64[(v >> 6) & 63];
		*text++ = b64[v & 63];
	}
	*text = '\0';
}

int resume_token_decode(const char *text, struct resume_token *t,
			const char **why)
{
	unsigned char b[BLOB_LEN];
	const char *c;
	uint32_t v;
	size_t i, j;

	if (strlen(text) != BLOB_LEN / 3 * 4) {
		*why = "wrong length";
		return -EINVAL;
	}
	for (i = 0; i < BLOB_LEN; i += 3) {
		v = 0;
		for (j = 0; j < 4; j++) {
			c = *text ? strchr(b64, *text++) : NULL;
			if (!c) {
				*why = "a character that is not base64url";
				return -EINVAL;
			}
			v = v << 6 | (uint32_t)(c - b64);
		}
		b[i] = v >> 16;
		b[i + 1] = v >> 8;
		b[i + 2] = v;
	}
	return blob_decode(b, t, why);
}

bool resume_token_equal(const struct resume_token *a,
			const struct resume_token *b)
{
	unsigned char x[BLOB_LEN], y[BLOB_LEN];

	blob_encode(a, x);
	blob_encode(b, y);
	return !memcmp(x, y, BLOB_LEN);
}

void resume_frame_encode(const struct resume_token *t, unsigned char *buf)
{
	memcpy(buf, RESUME_FRAME_MAGIC, RESUME_FRAME_MAGIC_LEN);
	put_le32(buf + RESUME_FRAME_MAGIC_LEN, TOKEN_VERSION);
	blob_encode(t, buf + RESUME_FRAME_MAGIC_LEN + 4);
}

bool resume_frame_magic(const unsigned char *buf)
{
	return !memcmp(buf, RESUME_FRAME_MAGIC, RESUME_FRAME_MAGIC_LEN);
}

int resume_frame_decode(const unsigned char *buf, struct resume_token *t,
			const char **why)
{
	if (get_le32(buf + RESUME_FRAME_MAGIC_LEN) != TOKEN_VERSION) {
		*why = "continuation frame version not supported";
		return -EPROTONOSUPPORT;
	}
	return blob_decode(buf + RESUME_FRAME_MAGIC_LEN + 4, t, why);
}

int resume_record_name(const char *subvol, char *out, size_t size)
{
	int n = snprintf(out, size, RECORD_PREFIX "%s" RECORD_SUFFIX, subvol);

	if (n < 0 || (size_t)n >= size || n > NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

static void put_hex(FILE *f, const char *key, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i;

	fprintf(f, "%s ", key);
	for (i = 0; i < len; i++)
		fprintf(f, "%02x", p[i]);
	fputc('\n', f);
}

static void put_uuid(FILE *f, const char *key, const uint8_t *uuid)
{
	char str[UUID_STR_LEN];

	uuid_unparse(uuid, str);
	fprintf(f, "%s %s\n", key, str);
}

static const char *state_name(enum resume_state state)
{
	switch (state) {
	case RESUME_STOPPED:
		return "stopped";
	case RESUME_APPLYING:
		return "applying";
	case RESUME_RECEIVING:
		return "receiving";
	default:
		return "failed";
	}
}

/* The record as text, with a CRC32C line over everything before it. */
static char *format_record(const struct resume_record *r, size_t *len)
{
	const struct resume_token *t = &r->tok;
	char *text = NULL;
	size_t size = 0;
	FILE *f;

	f = open_memstream(&text, &size);
	if (!f)
		return NULL;
	fputs(RECORD_HEADER, f);
	fprintf(f, "state %s\n", state_name(r->state));
	put_uuid(f, "uuid", t->uuid);
	fprintf(f, "ctransid %llu\n", (unsigned long long)t->ctransid);
	put_uuid(f, "parent_uuid", t->parent_uuid);
	fprintf(f, "parent_ctransid %llu\n",
		(unsigned long long)t->parent_ctransid);
	fprintf(f, "version %u\nflags %u\n", t->pos.version, t->flags);
	fprintf(f, "offset %llu\ncommands %llu\n",
		(unsigned long long)t->pos.offset,
		(unsigned long long)t->pos.cmds);
	fprintf(f, "chain %u\nlast_crc %u\ncmds_seen %u\n", t->pos.chain,
		t->pos.last_crc, t->pos.cmds_seen);
	put_uuid(f, "local_uuid", r->local_uuid);
	fprintf(f, "local_ctransid %llu\n",
		(unsigned long long)r->local_ctransid);
	put_hex(f, "cap_path", r->cap_path,
		r->cap_len ? strlen(r->cap_path) : 0);
	put_hex(f, "cap_value", r->cap_value, r->cap_len);
	if (fclose(f)) {
		free(text);
		return NULL;
	}
	*len = size;
	return text;
}

/*
 * The record padded to RECORD_SIZE: every version of it fills the same
 * blocks, so that it can be overwritten in place.
 */
static char *record_block(const struct resume_record *r)
{
	char crc_line[32], *block, *text;
	size_t len, crc_len;

	text = format_record(r, &len);
	if (!text)
		return NULL;
	snprintf(crc_line, sizeof(crc_line), "crc %u\n",
		 crc32c_update(0, text, len));
	crc_len = strlen(crc_line);
	block = len + crc_len <= RECORD_SIZE ? malloc(RECORD_SIZE) : NULL;
	if (block) {
		memcpy(block, text, len);
		memcpy(block + len, crc_line, crc_len);
		memset(block + len + crc_len, '\n', RECORD_SIZE - len - crc_len);
	}
	free(text);
	return block;
}

static int write_block(int fd, const char *block)
{
	int ret = pwrite_all(fd, block, RECORD_SIZE, 0);

	if (ret < 0)
		return ret;
	return fsync(fd) < 0 ? -errno : 0;
}

/*
 * Over a record file of the full size, in place: a NOCOW file rewrites its
 * own blocks, which needs no free data space (the stop users meet most is
 * a full disk).  A torn write fails the CRC: the record reads as damaged,
 * never as another valid state.  1 when there is no such file.
 */
static int write_in_place(int dest_fd, const char *name, const char *block)
{
	struct stat st;
	int fd, ret;

	fd = openat(dest_fd, name, O_WRONLY | O_NOFOLLOW | O_NONBLOCK |
		    O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 1 : -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size != RECORD_SIZE)
		ret = 1;
	else
		ret = write_block(fd, block);
	close(fd);
	return ret;
}

/*
 * A new record file: made NOCOW while empty (a flag btrfs takes only
 * then), written whole, synced (its blocks allocated now, while there is
 * space), renamed over whatever had the name, the directory synced.
 */
static int write_new(int dest_fd, const char *name, const char *block)
{
	unsigned int flags = FS_NOCOW_FL;
	char tmp[64];
	int fd, ret;

	snprintf(tmp, sizeof(tmp), ".btrfs-receive-resume.%d.tmp", getpid());
	fd = openat(dest_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	/* Without it the record is still written, copy-on-write. */
	ioctl(fd, FS_IOC_SETFLAGS, &flags);
	ret = write_block(fd, block);
	close(fd);
	if (!ret && renameat(dest_fd, tmp, dest_fd, name) < 0)
		ret = -errno;
	if (ret)
		unlinkat(dest_fd, tmp, 0);
	else if (fsync(dest_fd) < 0)
		ret = -errno;
	return ret;
}

int resume_record_write(int dest_fd, const char *subvol,
			const struct resume_record *r)
{
	char name[NAME_MAX + 1];
	char *block;
	int ret;

	ret = resume_record_name(subvol, name, sizeof(name));
	if (ret < 0)
		return ret;
	block = record_block(r);
	if (!block)
		return -ENOMEM;
	ret = write_in_place(dest_fd, name, block);
	if (ret == 1)
		ret = write_new(dest_fd, name, block);
	free(block);
	return ret;
}

static int get_hex(const char *hex, void *out, size_t max, size_t *len)
{
	unsigned char *p = out;
	size_t n = strlen(hex);
	unsigned int byte;
	size_t i;

	if (n % 2 || n / 2 > max)
		return -EBADMSG;
	for (i = 0; i < n / 2; i++) {
		if (sscanf(hex + 2 * i, "%2x", &byte) != 1)
			return -EBADMSG;
		p[i] = byte;
	}
	*len = n / 2;
	return 0;
}

/* One "key value" line of the record into r. */
static int parse_line(char *line, struct resume_record *r)
{
	struct resume_token *t = &r->tok;
	char *val = strchr(line, ' ');
	unsigned long long n;
	size_t len;
	int ret = 0;

	if (!val)
		return -EBADMSG;
	*val++ = '\0';
	n = strtoull(val, NULL, 10);
	if (!strcmp(line, "state"))
		r->state = !strcmp(val, "stopped") ? RESUME_STOPPED :
			   !strcmp(val, "applying") ? RESUME_APPLYING :
			   !strcmp(val, "receiving") ? RESUME_RECEIVING :
			   RESUME_FAILED;
	else if (!strcmp(line, "uuid"))
		ret = uuid_parse(val, t->uuid) ? -EBADMSG : 0;
	else if (!strcmp(line, "parent_uuid"))
		ret = uuid_parse(val, t->parent_uuid) ? -EBADMSG : 0;
	else if (!strcmp(line, "local_uuid"))
		ret = uuid_parse(val, r->local_uuid) ? -EBADMSG : 0;
	else if (!strcmp(line, "ctransid"))
		t->ctransid = n;
	else if (!strcmp(line, "parent_ctransid"))
		t->parent_ctransid = n;
	else if (!strcmp(line, "local_ctransid"))
		r->local_ctransid = n;
	else if (!strcmp(line, "version"))
		t->pos.version = n;
	else if (!strcmp(line, "flags"))
		t->flags = n;
	else if (!strcmp(line, "offset"))
		t->pos.offset = n;
	else if (!strcmp(line, "commands"))
		t->pos.cmds = n;
	else if (!strcmp(line, "chain"))
		t->pos.chain = n;
	else if (!strcmp(line, "last_crc"))
		t->pos.last_crc = n;
	else if (!strcmp(line, "cmds_seen"))
		t->pos.cmds_seen = n;
	else if (!strcmp(line, "cap_path"))
		ret = get_hex(val, r->cap_path, sizeof(r->cap_path) - 1, &len);
	else if (!strcmp(line, "cap_value"))
		ret = get_hex(val, r->cap_value, sizeof(r->cap_value),
			      &r->cap_len);
	return ret;
}

static int parse_resume_record(char *text, size_t len, struct resume_record *r)
{
	char *crc_line, *line, *next;
	unsigned int crc;
	int ret;

	text[len] = '\0';
	crc_line = strstr(text, "\ncrc ");
	if (strncmp(text, RECORD_HEADER, strlen(RECORD_HEADER)) || !crc_line ||
	    sscanf(crc_line, "\ncrc %u", &crc) != 1 ||
	    crc != crc32c_update(0, text, crc_line + 1 - text))
		return -EBADMSG;
	crc_line[1] = '\0';
	memset(r, 0, sizeof(*r));
	for (line = text + strlen(RECORD_HEADER); *line; line = next) {
		next = strchr(line, '\n');
		*next++ = '\0';
		ret = parse_line(line, r);
		if (ret < 0)
			return ret;
	}
	r->tok.pos.headerless = r->tok.flags & RESUME_FLAG_HEADERLESS;
	r->tok.pos.ended = r->tok.flags & RESUME_FLAG_ENDED;
	return 0;
}

static int read_resume_record(int dest_fd, const char *name,
			      struct resume_record *r)
{
	char *text;
	ssize_t n;
	int fd, ret;

	fd = openat(dest_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	text = malloc(RECORD_MAX + 1);
	if (!text) {
		close(fd);
		return -ENOMEM;
	}
	n = read(fd, text, RECORD_MAX);
	close(fd);
	ret = n < 0 ? -errno : parse_resume_record(text, n, r);
	free(text);
	return ret;
}

int resume_record_read(int dest_fd, const char *subvol,
		       struct resume_record *r)
{
	char name[NAME_MAX + 1];
	int ret;

	ret = resume_record_name(subvol, name, sizeof(name));
	if (ret < 0)
		return -ENOENT;
	return read_resume_record(dest_fd, name, r);
}

int resume_record_remove(int dest_fd, const char *subvol)
{
	char name[NAME_MAX + 1];

	if (resume_record_name(subvol, name, sizeof(name)) < 0)
		return 0;
	if (unlinkat(dest_fd, name, 0) < 0 && errno != ENOENT)
		return -errno;
	fsync(dest_fd);
	return 0;
}

int resume_record_find(int dest_fd, const uint8_t *uuid, uint64_t ctransid,
		       char *name, size_t size, struct resume_record *r)
{
	size_t plen = strlen(RECORD_PREFIX), slen = strlen(RECORD_SUFFIX);
	struct dirent *de;
	size_t len;
	DIR *dir;
	int fd, ret = -ENOENT;

	fd = openat(dest_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(dir))) {
		len = strlen(de->d_name);
		if (len <= plen + slen ||
		    strncmp(de->d_name, RECORD_PREFIX, plen) ||
		    strcmp(de->d_name + len - slen, RECORD_SUFFIX))
			continue;
		if (read_resume_record(dest_fd, de->d_name, r) < 0 ||
		    memcmp(r->tok.uuid, uuid, 16) || r->tok.ctransid != ctransid)
			continue;
		if (len - plen - slen >= size)
			continue;
		memcpy(name, de->d_name + plen, len - plen - slen);
		name[len - plen - slen] = '\0';
		ret = 0;
		break;
	}
	closedir(dir);
	return ret;
}
