// SPDX-License-Identifier: GPL-2.0-only
/*
 * A thread that parses the stream file ahead of the applier and looks up
 * what the coming commands name, so that the applier finds it cached.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "confined-path.h"
#include "input-reader.h"
#include "receive-warm.h"
#include "send-stream.h"
#include "utils.h"

/* The thread reads the file 1 MiB at a time, through the page cache. */
#define WARM_CHUNK		(1024 * 1024)
/* Chunks it brought into the cache and drops once the applier is past. */
#define WARM_DROPS		16
/* How long it sleeps when it is far enough ahead. */
#define WARM_WAIT_NS		(1000 * 1000)

struct receive_warm {
	int fd;			/* the thread's own open of the stream file */
	uint64_t start;		/* file offset of the stream's first byte */
	uint64_t size;		/* of the file when warming began */
	struct send_stream *s;
	pthread_t thread;

	/* Written by the applier. */
	_Atomic uint64_t applier_offset;
	unsigned int applier_subvols;
	atomic_bool stop;

	/* The applier's subvolume, looked up beneath; under lock. */
	pthread_mutex_t lock;
	int root_fd;
	unsigned int root_subvols;

	/* The thread's own. */
	unsigned int subvols;	/* SUBVOL and SNAPSHOT commands parsed */
	bool full_seen;		/* a SUBVOL command: stop */
	uint64_t cmd_offset;	/* input offset of the command parsed */
	char last_path[256];	/* a file's commands come one after another */
	long block;		/* page size: what a partial write reads */
	unsigned char *buf;
	uint64_t buf_offset;	/* file offset of buf[0] */
	size_t buf_len;
	size_t buf_pos;
	uint64_t drops[WARM_DROPS];	/* file offsets of chunks to drop */
	unsigned int drop_head;
	unsigned int drop_tail;

	/* Read by tests. */
	_Atomic uint64_t offset;
	atomic_bool ended;
	_Atomic uint64_t found;
	_Atomic uint64_t read_ahead;
};

static void drop_chunk(struct receive_warm *w, uint64_t offset)
{
	posix_fadvise(w->fd, offset, WARM_CHUNK, POSIX_FADV_DONTNEED);
}

/* Drop the chunks the applier is past; all of them when it is done. */
static void drop_passed(struct receive_warm *w, bool all)
{
	uint64_t applier = atomic_load(&w->applier_offset);
	uint64_t offset;

	while (w->drop_head != w->drop_tail) {
		offset = w->drops[w->drop_head % WARM_DROPS];
		if (!all && offset - w->start + WARM_CHUNK > applier)
			break;
		drop_chunk(w, offset);
		w->drop_head++;
	}
}

/* Remember to drop a chunk that was not cached before it was read. */
static void note_read(struct receive_warm *w, uint64_t offset, bool cached)
{
	if (cached)
		return;
	if (w->drop_tail - w->drop_head == WARM_DROPS)
		drop_chunk(w, w->drops[w->drop_head++ % WARM_DROPS]);
	w->drops[w->drop_tail++ % WARM_DROPS] = offset;
}

static int fill_buf(struct receive_warm *w)
{
	uint64_t offset = w->buf_offset + w->buf_len;
	uint64_t len = WARM_CHUNK;
	bool cached;
	ssize_t n;

	if (offset < w->size && w->size - offset < len)
		len = w->size - offset;
	cached = offset >= w->size || file_range_cached(w->fd, offset, len);
	do {
		n = pread(w->fd, w->buf, WARM_CHUNK, offset);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n)
		note_read(w, offset, cached);
	w->buf_offset = offset;
	w->buf_len = n;
	w->buf_pos = 0;
	return 0;
}

/* The parser's read function: the file, through the thread's buffer. */
static ssize_t warm_read(void *user, void *out, size_t len)
{
	struct receive_warm *w = user;
	int ret;

	if (w->buf_pos == w->buf_len) {
		ret = fill_buf(w);
		if (ret < 0) {
			errno = -ret;
			return -1;
		}
	}
	if (len > w->buf_len - w->buf_pos)
		len = w->buf_len - w->buf_pos;
	memcpy(out, w->buf + w->buf_pos, len);
	w->buf_pos += len;
	return len;
}

/*
 * Whether the command being parsed is worth a lookup: it is ahead of the
 * applier, in the incremental that the applier is receiving (the thread
 * stops at a full one; root_subvols is 1 or more once root_fd is set).
 * Called and left with the lock held.
 */
static bool worth_warming(struct receive_warm *w)
{
	return w->root_fd >= 0 &&
	       w->root_subvols == w->subvols &&
	       w->cmd_offset >= atomic_load(&w->applier_offset);
}

/*
 * Read ahead the block of a regular file that a write covering it only in
 * part must read first (within the file's size).
 */
static void read_ahead_partial(struct receive_warm *w, const char *path,
			       const struct stat *st, uint64_t offset,
			       uint64_t len)
{
	uint64_t mask = (uint64_t)w->block - 1;
	uint64_t first = offset & ~mask, last = (offset + len) & ~mask;
	struct stat rst;
	int fd;

	if (!S_ISREG(st->st_mode) || !((offset | len) & mask) ||
	    first >= (uint64_t)st->st_size)
		return;
	fd = confined_open_quiet(w->root_fd, path,
				 O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return;
	/* The same file the lookup found, still a regular file. */
	if (!fstat(fd, &rst) && rst.st_ino == st->st_ino &&
	    rst.st_dev == st->st_dev && S_ISREG(rst.st_mode)) {
		if (offset & mask)
			readahead(fd, first, w->block);
		if (((offset + len) & mask) &&
		    (last != first || !(offset & mask)) &&
		    last < (uint64_t)st->st_size)
			readahead(fd, last, w->block);
		atomic_fetch_add(&w->read_ahead, 1);
	}
	close(fd);
}

/*
 * Look up path beneath the subvolume (its directories, its inode) and,
 * for a write of len bytes at offset (len 0: none), the block it reads.
 */
static void warm(struct receive_warm *w, const char *path, uint64_t offset,
		 uint64_t len)
{
	bool same = !strncmp(path, w->last_path, sizeof(w->last_path));
	struct stat st;
	int fd;

	if (same && !len)
		return;
	snprintf(w->last_path, sizeof(w->last_path), "%s", path);
	pthread_mutex_lock(&w->lock);
	if (!worth_warming(w))
		goto out;
	fd = confined_open_quiet(w->root_fd, path, O_PATH | O_NOFOLLOW);
	if (fd < 0)
		goto out;
	if (!same)
		atomic_fetch_add(&w->found, 1);
	if (len && !fstat(fd, &st))
		read_ahead_partial(w, path, &st, offset, len);
	close(fd);
out:
	pthread_mutex_unlock(&w->lock);
}

static void count_subvol(struct receive_warm *w)
{
	w->subvols++;
	w->last_path[0] = '\0';
}

/*
 * A full stream names nothing that is there already: the thread stops
 * rather than parse it all a second time.  (An incremental after a full
 * subvolume in the same input, rare, goes unwarmed.)
 */
static int on_subvol(const char *path, const uint8_t *uuid,
		     uint64_t ctransid, void *user)
{
	struct receive_warm *w = user;

	(void)path;
	(void)uuid;
	(void)ctransid;
	count_subvol(w);
	w->full_seen = true;
	return 0;
}

static int on_snapshot(const char *path, const uint8_t *uuid,
		       uint64_t ctransid, const uint8_t *parent_uuid,
		       uint64_t parent_ctransid, void *user)
{
	(void)path;
	(void)uuid;
	(void)ctransid;
	(void)parent_uuid;
	(void)parent_ctransid;
	count_subvol(user);
	return 0;
}

static int on_path(const char *path, void *user)
{
	warm(user, path, 0, 0);
	return 0;
}

/*
 * What a command makes (a new name, a rename's destination) is not there
 * yet: looking for it would only cost the applier a search and a lock.
 */
static int on_create(const char *path, void *user)
{
	(void)path;
	(void)user;
	return 0;
}

static int on_symlink(const char *path, const char *target, void *user)
{
	(void)path;
	(void)target;
	(void)user;
	return 0;
}

static int on_rename(const char *from, const char *to, void *user)
{
	(void)to;
	return on_path(from, user);
}

static int on_link(const char *path, const char *target, void *user)
{
	(void)path;
	return on_path(target, user);
}

static int on_write(const char *path, const void *data, uint64_t offset,
		    size_t len, void *user)
{
	(void)data;
	warm(user, path, offset, len);
	return 0;
}

static int on_encoded_write(const char *path,
			    const struct send_encoded_write *ew, void *user)
{
	warm(user, path, ew->offset, ew->unencoded_file_len);
	return 0;
}

static int on_clone(const char *path, uint64_t offset, uint64_t len,
		    const uint8_t *clone_uuid, uint64_t clone_ctransid,
		    const char *clone_path, uint64_t clone_offset, void *user)
{
	(void)clone_uuid;
	(void)clone_ctransid;
	(void)clone_path;
	(void)clone_offset;
	warm(user, path, offset, len);
	return 0;
}

static int on_set_xattr(const char *path, const char *name, const void *data,
			size_t len, void *user)
{
	(void)name;
	(void)data;
	(void)len;
	return on_path(path, user);
}

static int on_remove_xattr(const char *path, const char *name, void *user)
{
	(void)name;
	return on_path(path, user);
}

static int on_u64(const char *path, uint64_t value, void *user)
{
	(void)value;
	return on_path(path, user);
}

static int on_chown(const char *path, uint64_t uid, uint64_t gid, void *user)
{
	(void)uid;
	(void)gid;
	return on_path(path, user);
}

static int on_utimes(const char *path, const struct send_timespec *atime,
		     const struct send_timespec *mtime,
		     const struct send_timespec *ctime, void *user)
{
	(void)atime;
	(void)mtime;
	(void)ctime;
	return on_path(path, user);
}

/* Nothing to warm for mknod, update_extent, end, fallocate, verity. */
static const struct send_stream_ops warm_ops = {
	.subvol = on_subvol,
	.snapshot = on_snapshot,
	.mkfile = on_create,
	.mkdir = on_create,
	.mkfifo = on_create,
	.mksock = on_create,
	.symlink = on_symlink,
	.rename = on_rename,
	.link = on_link,
	.unlink = on_path,
	.rmdir = on_path,
	.write = on_write,
	.clone = on_clone,
	.set_xattr = on_set_xattr,
	.remove_xattr = on_remove_xattr,
	.truncate = on_u64,
	.chmod = on_u64,
	.chown = on_chown,
	.utimes = on_utimes,
	.fileattr = on_u64,
	.encoded_write = on_encoded_write,
};

/* Wait until the applier is close enough; false when told to stop. */
static bool wait_for_applier(struct receive_warm *w)
{
	const struct timespec pause = { 0, WARM_WAIT_NS };
	uint64_t ahead = send_stream_offset(w->s);

	for (;;) {
		drop_passed(w, false);
		if (atomic_load(&w->stop))
			return false;
		if (ahead <= atomic_load(&w->applier_offset) +
			     RECEIVE_WARM_AHEAD)
			return true;
		nanosleep(&pause, NULL);
	}
}

static void *warm_main(void *arg)
{
	struct receive_warm *w = arg;
	int ret;

	while (wait_for_applier(w)) {
		w->cmd_offset = send_stream_offset(w->s);
		ret = send_stream_next(w->s, &warm_ops, w);
		atomic_store(&w->offset, send_stream_offset(w->s));
		if (ret == SEND_STREAM_EOF || w->full_seen ||
		    (ret < 0 && !send_stream_failed_in_callback(w->s)))
			break;
	}
	atomic_store(&w->ended, true);
	return NULL;
}

/* A new open of the file: its own offset, flags and page cache hints. */
static int reopen_stream(int stream_fd, uint64_t *size)
{
	char proc[64];
	struct stat st;
	int fd;

	if (fstat(stream_fd, &st) < 0 || !S_ISREG(st.st_mode))
		return -EINVAL;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", stream_fd);
	fd = open(proc, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/*
	 * No readahead beyond the chunk read: a chunk would look cached
	 * already when its turn came, and stay cached after.
	 */
	posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
	*size = st.st_size;
	return fd;
}

static void free_warm(struct receive_warm *w)
{
	if (w->s)
		send_stream_close(w->s);
	if (w->fd >= 0)
		close(w->fd);
	free(w->buf);
	free(w);
}

struct receive_warm *receive_warm_start(int stream_fd)
{
	struct receive_warm *w;
	off_t pos = lseek(stream_fd, 0, SEEK_CUR);

	if (mechanism_off("warm"))
		return NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->root_fd = -1;
	w->block = sysconf(_SC_PAGESIZE);
	w->fd = reopen_stream(stream_fd, &w->size);
	w->buf = malloc(WARM_CHUNK);
	if (w->fd < 0 || pos < 0 || !w->buf || w->block <= 0 ||
	    send_stream_open(&w->s, w->fd) < 0)
		goto fail;
	/* The applier's parser starts where the fd stands; so does this. */
	w->start = pos;
	w->buf_offset = pos;
	send_stream_set_reader(w->s, warm_read, w);
	pthread_mutex_init(&w->lock, NULL);
	if (start_thread_without_signals(&w->thread, warm_main, w)) {
		pthread_mutex_destroy(&w->lock);
		goto fail;
	}
	return w;
fail:
	free_warm(w);
	return NULL;
}

void receive_warm_follow(struct receive_warm *w, uint64_t offset,
			 unsigned int subvols, int root_fd)
{
	if (!w)
		return;
	atomic_store_explicit(&w->applier_offset, offset, memory_order_relaxed);
	if (subvols == w->applier_subvols)
		return;
	w->applier_subvols = subvols;
	pthread_mutex_lock(&w->lock);
	if (w->root_fd >= 0)
		close(w->root_fd);
	w->root_fd = root_fd >= 0 ? fcntl(root_fd, F_DUPFD_CLOEXEC, 0) : -1;
	w->root_subvols = subvols;
	pthread_mutex_unlock(&w->lock);
}

void receive_warm_stop(struct receive_warm *w)
{
	if (!w)
		return;
	atomic_store(&w->stop, true);
	pthread_join(w->thread, NULL);
	drop_passed(w, true);
	pthread_mutex_destroy(&w->lock);
	if (w->root_fd >= 0)
		close(w->root_fd);
	free_warm(w);
}

uint64_t receive_warm_offset(struct receive_warm *w, bool *ended)
{
	*ended = atomic_load(&w->ended);
	return atomic_load(&w->offset);
}

uint64_t receive_warm_found(struct receive_warm *w, uint64_t *read_ahead)
{
	*read_ahead = atomic_load(&w->read_ahead);
	return atomic_load(&w->found);
}
