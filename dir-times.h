/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Directory times set by a stream, kept back until nothing will change
 * the directories any more.  A send sets a directory's times again after
 * every entry it adds there: on a tree of many small files, most of the
 * receiver's utimes calls would be overwritten by later ones.
 */
#ifndef DIR_TIMES_H
#define DIR_TIMES_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct dir_times_entry {
	char *path;			/* NULL: a free slot */
	struct timespec ts[2];		/* atime, mtime */
};

struct dir_times {
	struct dir_times_entry *slots;
	size_t nr_slots;		/* a power of two, or 0 */
	size_t nr_used;
};

/* Past this many directories, the caller should flush. */
#define DIR_TIMES_MAX 4096

/*
 * Remember (or replace) the times of path.  Returns 0, -ENOMEM, or -ENOSPC
 * when DIR_TIMES_MAX directories are held already (flush, then retry).
 */
int dir_times_set(struct dir_times *dt, const char *path,
		  const struct timespec ts[2]);

/*
 * Replace the times of path if they are held, and say whether they were.
 * A held path names a directory (see dir_times_move), so a caller that
 * finds it here needs no look at the filesystem.
 */
bool dir_times_update_held(struct dir_times *dt, const char *path,
			   const struct timespec ts[2]);

/*
 * Apply every held entry with apply() and forget them all.  Every entry is
 * tried; the first error is returned.
 */
int dir_times_flush(struct dir_times *dt,
		    int (*apply)(const char *path, const struct timespec ts[2],
				 void *arg),
		    void *arg);

/*
 * A directory was renamed from `from` to `to`: its entry and those beneath
 * it now name it by its new path.  With to NULL (removed), they are
 * dropped.  An entry that held `to` already is replaced.  Returns 0 or
 * -ENOMEM (the table is unchanged then).
 */
int dir_times_move(struct dir_times *dt, const char *from, const char *to);

/* Forget every entry without applying it, and free the table. */
void dir_times_release(struct dir_times *dt);

#endif
