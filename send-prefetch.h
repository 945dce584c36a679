/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A reader beside the send ioctl.  The kernel's send walks the subvolume's
 * tree in key order and reads each file's extents as it comes to them, one
 * synchronous read at a time: on a cold cache it waits on the disk about a
 * third of its time.  The prefetcher walks the same tree ahead of it with
 * BTRFS_IOC_TREE_SEARCH_V2 (which brings the tree's leaves into the cache
 * the kernel reads them from) and starts the reads of the files' data (the
 * first 2 MiB of each run of it) with readahead(), never more than a
 * bounded window of stream bytes ahead of what the kernel has written.  It
 * changes no byte of the stream, and when anything fails it stops and the
 * send goes on without it.
 */
#ifndef SEND_PREFETCH_H
#define SEND_PREFETCH_H

#include <stdatomic.h>
#include <stdint.h>

/*
 * How far ahead of the kernel the prefetcher may read, in stream bytes
 * (file data and about SEND_PREFETCH_INODE_BYTES per inode): enough to keep
 * the disk busy while the kernel works through it, small beside the page
 * cache of any machine that sends, so that a send of any size does not
 * evict what the machine has cached.
 */
#define SEND_PREFETCH_WINDOW		(64ULL << 20)
#define SEND_PREFETCH_INODE_BYTES	256

struct send_prefetch;

/*
 * Start prefetching the subvolume open at subvol_fd.  min_transid: for an
 * incremental send, the parent's ctransid (only leaves changed since are
 * read), else 0.  *kernel_pos is where the stream from the kernel stands,
 * in bytes, kept up to date by the caller.  Returns NULL when it cannot
 * start (not root, out of memory): the send then goes on without it.
 */
struct send_prefetch *send_prefetch_start(int subvol_fd, uint64_t min_transid,
					  const _Atomic uint64_t *kernel_pos);
/* Stop and free it; NULL is accepted.  *reads: readaheads started. */
void send_prefetch_stop(struct send_prefetch *p, uint64_t *reads);

#endif
