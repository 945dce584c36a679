// SPDX-License-Identifier: GPL-2.0-only
/*
 * The prefetcher beside the send ioctl (see send-prefetch.h).  One thread
 * searches the subvolume's tree in key order, as the kernel's send walks
 * it, and for each extent of a regular file starts a readahead of its
 * range through a file handle (open_by_handle_at: no path to resolve).
 */
#include <btrfsutil.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "le.h"
#include "send-prefetch.h"

#define SEARCH_BUF_SIZE		(64 * 1024)
#define READAHEAD_CHUNK		(2 << 20)
/*
 * Of each run of contiguous data in a file, only the head is read ahead.
 * Past it the kernel's own readahead keeps up with a file read in order;
 * reading the whole of large files ahead only competed with the receiving
 * side for the disk (cold send | receive of 2 GiB in 4 files: 3.8 s
 * against 2.9 s with only the heads, medians of 5).  After a hole that
 * readahead starts again from nothing, so each run has its head read
 * (4 sparse files of 64 KiB extents: 1.49 s to send with heads of files
 * only, 0.22 s with heads of runs).
 */
#define RUN_HEAD		(2 << 20)
/*
 * On a warm cache the prefetcher only costs: after this many files in a
 * row whose data was cached already, it opens only every COAST_STRIDE-th
 * file, to notice where the cache ends.
 */
#define COAST_AFTER		32
#define COAST_STRIDE		32
/*
 * Test hook: BTRFS_SEND_PREFETCH_TEST=1 reports on stderr what the
 * prefetcher did, in figures of its own rather than of the page cache:
 * the first time it waits at its window, how much it had read ahead; at
 * the end, its readaheads, their bytes and its greatest lead over the
 * kernel.  It also finishes its walk when the send is done instead of
 * stopping where it is, so that the figures do not depend on which
 * thread was faster.  BTRFS_SEND_PREFETCH_TEST=cold takes every page as
 * not cached besides, so that they do not depend on what is cached.
 */
#define TEST_ENV		"BTRFS_SEND_PREFETCH_TEST"

/* A file handle of btrfs without its parent: objectid, root, generation. */
#define FILEID_BTRFS_WITHOUT_PARENT	0x4d
#define BTRFS_FID_LEN		20

/* Offsets in struct btrfs_inode_item and btrfs_file_extent_item. */
#define INODE_GENERATION	0
#define INODE_TRANSID		8
#define INODE_SIZE		16
#define INODE_MODE		52
#define INODE_ITEM_LEN		160
#define EXTENT_GENERATION	0
#define EXTENT_TYPE		20
#define EXTENT_DISK_BYTENR	21
#define EXTENT_NUM_BYTES	45
#define EXTENT_REG_LEN		53

struct send_prefetch {
	int fd;				/* the subvolume */
	uint64_t root_id;
	uint64_t min_transid;
	const _Atomic uint64_t *kernel_pos;
	atomic_bool stop;
	pthread_t thread;

	/* The test hook (TEST_ENV): on, all pages taken as cold, finishing. */
	bool test;
	bool cold;
	bool window_seen;
	atomic_bool finish;
	uint64_t read_bytes;
	uint64_t max_lead;

	/* Stream bytes the kernel will write for what was prefetched. */
	uint64_t ahead;
	/* The regular file whose extents come next in the tree, or -1. */
	int file_fd;
	uint64_t file_ino;
	/* The size of the inode whose extents come next. */
	uint64_t file_size;
	/* Where its current run of contiguous data started, and ends. */
	uint64_t run_start;
	uint64_t run_end;
	bool no_handles;		/* open_by_handle_at refused */
	unsigned int cached_run;	/* files in a row found cached */
	uint64_t files;
	uint64_t reads;
	struct btrfs_ioctl_search_args_v2 *args;
};

/*
 * Of an incremental send, what the parent has too: the kernel sends
 * nothing of it, and reads no data of it.
 */
static bool unchanged(const struct send_prefetch *p, uint64_t transid)
{
	return p->min_transid && transid <= p->min_transid;
}

/* The test hook's report of the first wait at the window. */
static void report_window(struct send_prefetch *p)
{
	if (!p->test || p->window_seen)
		return;
	p->window_seen = true;
	fprintf(stderr, "prefetch: window full, %llu bytes read ahead\n",
		(unsigned long long)p->read_bytes);
}

/* Wait until the kernel is within the window of what was prefetched. */
static void wait_for_kernel(struct send_prefetch *p)
{
	static const struct timespec pause = { .tv_nsec = 5 * 1000 * 1000 };

	while (!atomic_load(&p->stop) && !atomic_load(&p->finish) &&
	       p->ahead > atomic_load(p->kernel_pos) + SEND_PREFETCH_WINDOW) {
		report_window(p);
		nanosleep(&pause, NULL);
	}
}

/* For the test hook: how far ahead of the kernel a readahead starts. */
static void note_lead(struct send_prefetch *p, uint64_t chunk)
{
	uint64_t kernel = atomic_load(p->kernel_pos);

	p->read_bytes += chunk;
	if (!atomic_load(&p->finish) && p->ahead > kernel &&
	    p->ahead - kernel > p->max_lead)
		p->max_lead = p->ahead - kernel;
}

static void close_file(struct send_prefetch *p)
{
	if (p->file_fd >= 0)
		close(p->file_fd);
	p->file_fd = -1;
}

static int open_by_ino(struct send_prefetch *p, uint64_t ino, uint32_t gen)
{
	struct {
		struct file_handle fh;
		unsigned char fid[BTRFS_FID_LEN];
	} h;
	int fd;

	h.fh.handle_bytes = BTRFS_FID_LEN;
	h.fh.handle_type = FILEID_BTRFS_WITHOUT_PARENT;
	put_le64(h.fid, ino);
	put_le64(h.fid + 8, p->root_id);
	put_le32(h.fid + 16, gen);
	fd = open_by_handle_at(p->fd, &h.fh, O_RDONLY | O_NOATIME | O_CLOEXEC);
	if (fd < 0 && (errno == EPERM || errno == EOPNOTSUPP ||
		       errno == ENOSYS || errno == EINVAL))
		p->no_handles = true;
	return fd;
}

static void on_inode(struct send_prefetch *p, uint64_t ino,
		     const unsigned char *item, uint32_t len)
{
	uint32_t mode;

	close_file(p);
	p->file_size = 0;
	if (len < INODE_ITEM_LEN ||
	    unchanged(p, get_le64(item + INODE_TRANSID)))
		return;
	p->file_size = get_le64(item + INODE_SIZE);
	p->ahead += SEND_PREFETCH_INODE_BYTES;
	if (p->no_handles)
		return;
	mode = get_le32(item + INODE_MODE);
	if (!S_ISREG(mode) || !get_le64(item + INODE_SIZE))
		return;
	if (p->cached_run >= COAST_AFTER && ++p->files % COAST_STRIDE)
		return;
	wait_for_kernel(p);
	p->file_fd = open_by_ino(p, ino,
				 (uint32_t)get_le64(item + INODE_GENERATION));
	p->file_ino = ino;
	p->run_end = UINT64_MAX;
}

/* Whether the page at offset of fd is in the cache: a read that may not wait. */
static bool page_cached(int fd, uint64_t offset)
{
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };

	return preadv2(fd, &iov, 1, offset, RWF_NOWAIT) == 1;
}

/* Of bytes at offset of the open file, those to read ahead. */
static uint64_t head_of_run(struct send_prefetch *p, uint64_t offset,
			    uint64_t bytes)
{
	uint64_t into;

	if (offset != p->run_end)
		p->run_start = offset;
	p->run_end = offset + bytes;
	into = offset - p->run_start;
	if (into >= RUN_HEAD)
		return 0;
	return bytes < RUN_HEAD - into ? bytes : RUN_HEAD - into;
}

static void on_extent(struct send_prefetch *p, uint64_t ino, uint64_t offset,
		      const unsigned char *item, uint32_t len)
{
	uint64_t bytes, head, chunk;

	if (len <= EXTENT_TYPE ||
	    unchanged(p, get_le64(item + EXTENT_GENERATION)))
		return;
	if (item[EXTENT_TYPE] == BTRFS_FILE_EXTENT_INLINE) {
		p->ahead += len - EXTENT_DISK_BYTENR;
		return;
	}
	if (len < EXTENT_REG_LEN)
		return;
	/*
	 * The kernel sends the file's bytes, not the extent's whole blocks:
	 * counting the blocks made the estimate run ahead of the stream by
	 * up to a block a file, until the prefetcher, while taking itself
	 * for ahead, fell behind the kernel for good (after some 30,000
	 * small files).
	 */
	bytes = get_le64(item + EXTENT_NUM_BYTES);
	if (offset >= p->file_size)
		bytes = 0;
	else if (bytes > p->file_size - offset)
		bytes = p->file_size - offset;
	if (p->file_fd < 0 || p->file_ino != ino ||
	    !get_le64(item + EXTENT_DISK_BYTENR)) {
		p->ahead += bytes;
		return;
	}
	head = head_of_run(p, offset, bytes);
	p->ahead += bytes - head;
	bytes = head;
	if (!bytes)
		return;
	if (!p->cold && page_cached(p->file_fd, offset)) {
		p->cached_run++;
		p->ahead += bytes;
		return;
	}
	p->cached_run = 0;
	/* The kernel caps one readahead() at the device's window. */
	while (bytes && !atomic_load(&p->stop)) {
		chunk = bytes < READAHEAD_CHUNK ? bytes : READAHEAD_CHUNK;
		p->ahead += chunk;
		wait_for_kernel(p);
		if (!readahead(p->file_fd, offset, chunk)) {
			p->reads++;
			note_lead(p, chunk);
		}
		offset += chunk;
		bytes -= chunk;
	}
}

/* The items of one search, in key order; the last key in *last. */
static void take_items(struct send_prefetch *p, struct btrfs_ioctl_search_key *last)
{
	const unsigned char *b = (const unsigned char *)p->args->buf;
	struct btrfs_ioctl_search_header sh;
	uint32_t i;

	for (i = 0; i < p->args->key.nr_items; i++) {
		if (atomic_load(&p->stop))
			return;
		/* Items are packed: a header may sit at any address. */
		memcpy(&sh, b, sizeof(sh));
		b += sizeof(sh);
		if (sh.type == BTRFS_INODE_ITEM_KEY)
			on_inode(p, sh.objectid, b, sh.len);
		else if (sh.type == BTRFS_EXTENT_DATA_KEY)
			on_extent(p, sh.objectid, sh.offset, b, sh.len);
		last->min_objectid = sh.objectid;
		last->min_type = sh.type;
		last->min_offset = sh.offset;
		b += sh.len;
	}
}

/* The key just after the last one found; false past the last key. */
static bool next_key(struct btrfs_ioctl_search_key *k)
{
	if (++k->min_offset)
		return true;
	if (++k->min_type)
		return true;
	k->min_type = 0;
	return ++k->min_objectid != 0;
}

static void *prefetch_main(void *arg)
{
	struct send_prefetch *p = arg;
	struct btrfs_ioctl_search_key *k = &p->args->key;
	struct btrfs_ioctl_search_key last;

	k->tree_id = p->root_id;
	k->min_objectid = BTRFS_FIRST_FREE_OBJECTID;
	k->min_type = 0;
	k->min_offset = 0;
	k->max_objectid = (uint64_t)-1;
	k->max_type = (uint32_t)-1;
	k->max_offset = (uint64_t)-1;
	k->min_transid = p->min_transid;
	k->max_transid = (uint64_t)-1;
	while (!atomic_load(&p->stop)) {
		k->nr_items = (uint32_t)-1;
		p->args->buf_size = SEARCH_BUF_SIZE;
		if (ioctl(p->fd, BTRFS_IOC_TREE_SEARCH_V2, p->args) < 0 ||
		    !k->nr_items)
			break;
		last = *k;
		take_items(p, &last);
		k->min_objectid = last.min_objectid;
		k->min_type = last.min_type;
		k->min_offset = last.min_offset;
		if (!next_key(k))
			break;
	}
	close_file(p);
	return NULL;
}

struct send_prefetch *send_prefetch_start(int subvol_fd, uint64_t min_transid,
					  const _Atomic uint64_t *kernel_pos)
{
	struct send_prefetch *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	/* Zeroed: valgrind cannot see what TREE_SEARCH_V2 writes. */
	p->args = calloc(1, sizeof(*p->args) + SEARCH_BUF_SIZE);
	p->fd = fcntl(subvol_fd, F_DUPFD_CLOEXEC, 0);
	if (!p->args || p->fd < 0 ||
	    btrfs_util_subvolume_id_fd(p->fd, &p->root_id))
		goto fail;
	p->min_transid = min_transid;
	p->kernel_pos = kernel_pos;
	p->file_fd = -1;
	p->test = getenv(TEST_ENV) != NULL;
	p->cold = p->test && !strcmp(getenv(TEST_ENV), "cold");
	atomic_init(&p->stop, false);
	atomic_init(&p->finish, false);
	if (pthread_create(&p->thread, NULL, prefetch_main, p))
		goto fail;
	return p;
fail:
	if (p->fd >= 0)
		close(p->fd);
	free(p->args);
	free(p);
	return NULL;
}

void send_prefetch_stop(struct send_prefetch *p, uint64_t *reads)
{
	*reads = 0;
	if (!p)
		return;
	atomic_store(p->test ? &p->finish : &p->stop, true);
	pthread_join(p->thread, NULL);
	*reads = p->reads;
	if (p->test)
		fprintf(stderr, "prefetch: %llu readaheads of %llu bytes, at most %llu bytes ahead of the kernel, %llu stream bytes foreseen of %llu\n",
			(unsigned long long)p->reads,
			(unsigned long long)p->read_bytes,
			(unsigned long long)p->max_lead,
			(unsigned long long)p->ahead,
			(unsigned long long)atomic_load(p->kernel_pos));
	close(p->fd);
	free(p->args);
	free(p);
}
