/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Warming the caches ahead of the applier, for an incremental received
 * from a file.  Its commands name the parent's files, which are cold after
 * a reboot: applied one at a time, each waits on the disk for its inode,
 * its directory entries, and the block it partly overwrites.  A thread
 * parses the same file a bounded distance ahead, looks up every path the
 * coming commands name beneath the subvolume being received, and reads
 * ahead the blocks a write will only partly cover.  The applier then
 * finds them cached.  The thread changes nothing and reports nothing: a
 * lookup that fails, a stream it cannot parse, a thread that cannot start
 * only mean that less is warm.
 */
#ifndef RECEIVE_WARM_H
#define RECEIVE_WARM_H

#include <stdbool.h>
#include <stdint.h>

/*
 * How far ahead of the applier the thread parses, in stream bytes.  This
 * bounds what it brings into the caches whatever the stream's size: the
 * stream's own pages (dropped again once the applier is past them, unless
 * they were cached before) and the metadata of the paths named in 8 MiB of
 * commands (some 10 000 commands of an incremental of small files).
 */
#define RECEIVE_WARM_AHEAD	(8ULL << 20)

struct receive_warm;

/*
 * Start warming with a stream file: stream_fd is left as it is (the
 * thread reads its own open of the same file).  NULL where the input is
 * not a regular file or the thread cannot start.
 */
struct receive_warm *receive_warm_start(int stream_fd);

/*
 * Where the applier stands, after each command: offset is its parser's
 * input offset; subvols counts the SUBVOL and SNAPSHOT commands it has
 * applied; root_fd is the top directory of the subvolume being received
 * (-1 for none), duplicated when subvols changes.  w may be NULL.
 */
void receive_warm_follow(struct receive_warm *w, uint64_t offset,
			 unsigned int subvols, int root_fd);

/* Stop the thread and free w (which may be NULL). */
void receive_warm_stop(struct receive_warm *w);

/* For tests: the input offset the thread has parsed to; whether it ended. */
uint64_t receive_warm_offset(struct receive_warm *w, bool *ended);
/* For tests: paths found, and blocks read ahead. */
uint64_t receive_warm_found(struct receive_warm *w, uint64_t *read_ahead);

#endif
