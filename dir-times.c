// SPDX-License-Identifier: GPL-2.0-only
/*
 * A small open-addressing hash table from a directory path to the last
 * times the stream set on it.  Paths are compared whole: the receive
 * applier moves the entries of a directory it renames or removes, so a
 * held path always still names the directory it was set on.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "paths.h"
#include "dir-times.h"

/* The slot of path: its entry, or the free slot where it would go. */
static struct dir_times_entry *slot_of(struct dir_times_entry *slots,
				       size_t nr_slots, const char *path)
{
	size_t i = path_hash(path, strlen(path)) & (nr_slots - 1);

	while (slots[i].path && strcmp(slots[i].path, path))
		i = (i + 1) & (nr_slots - 1);
	return &slots[i];
}

/* Keep the table at most half full, so that probes stay short. */
static int grow(struct dir_times *dt)
{
	size_t nr = dt->nr_slots ? dt->nr_slots * 2 : 64;
	struct dir_times_entry *slots;

	slots = calloc(nr, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < dt->nr_slots; i++)
		if (dt->slots[i].path)
			*slot_of(slots, nr, dt->slots[i].path) = dt->slots[i];
	free(dt->slots);
	dt->slots = slots;
	dt->nr_slots = nr;
	return 0;
}

int dir_times_set(struct dir_times *dt, const char *path,
		  const struct timespec ts[2])
{
	struct dir_times_entry *e;
	int ret;

	if (dir_times_update_held(dt, path, ts))
		return 0;
	if (dt->nr_used >= DIR_TIMES_MAX)
		return -ENOSPC;
	if ((dt->nr_used + 1) * 2 > dt->nr_slots) {
		ret = grow(dt);
		if (ret < 0)
			return ret;
	}
	e = slot_of(dt->slots, dt->nr_slots, path);
	e->path = strdup(path);
	if (!e->path)
		return -ENOMEM;
	e->ts[0] = ts[0];
	e->ts[1] = ts[1];
	dt->nr_used++;
	return 0;
}

bool dir_times_update_held(struct dir_times *dt, const char *path,
			   const struct timespec ts[2])
{
	struct dir_times_entry *e;

	if (!dt->nr_slots)
		return false;
	e = slot_of(dt->slots, dt->nr_slots, path);
	if (!e->path)
		return false;
	e->ts[0] = ts[0];
	e->ts[1] = ts[1];
	return true;
}

/* The new path of an entry: moved under `to`, or kept. */
static char *moved_path(const char *path, const char *from, size_t len,
			const char *to)
{
	char *out;

	if (!path_is_under(path, from))
		return strdup(path);
	if (asprintf(&out, "%s%s", to, path + len) < 0)
		return NULL;
	return out;
}

int dir_times_move(struct dir_times *dt, const char *from, const char *to)
{
	struct dir_times_entry *slots, *e;
	size_t len = strlen(from), used = 0, nr_slots = dt->nr_slots, i;
	char *path;

	if (!dt->nr_used)
		return 0;
	slots = calloc(dt->nr_slots, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (i = 0; i < dt->nr_slots; i++) {
		const struct dir_times_entry *old = &dt->slots[i];

		if (!old->path || (!to && path_is_under(old->path, from)))
			continue;
		/* The old holder of `to` goes: it was replaced. */
		if (to && path_is_under(old->path, to))
			continue;
		path = to ? moved_path(old->path, from, len, to) :
			    strdup(old->path);
		if (!path)
			goto fail;
		e = slot_of(slots, dt->nr_slots, path);
		if (e->path) {
			free(e->path);
			used--;
		}
		e->path = path;
		e->ts[0] = old->ts[0];
		e->ts[1] = old->ts[1];
		used++;
	}
	dir_times_release(dt);
	dt->slots = slots;
	dt->nr_slots = nr_slots;
	dt->nr_used = used;
	return 0;
fail:
	for (i = 0; i < dt->nr_slots; i++)
		free(slots[i].path);
	free(slots);
	return -ENOMEM;
}

int dir_times_flush(struct dir_times *dt,
		    int (*apply)(const char *path, const struct timespec ts[2],
				 void *arg),
		    void *arg)
{
	int ret = 0, err;

	if (!dt->nr_used)
		return 0;
	for (size_t i = 0; i < dt->nr_slots; i++) {
		struct dir_times_entry *e = &dt->slots[i];

		if (!e->path)
			continue;
		err = apply(e->path, e->ts, arg);
		if (err < 0 && !ret)
			ret = err;
		free(e->path);
		e->path = NULL;
	}
	dt->nr_used = 0;
	return ret;
}

void dir_times_release(struct dir_times *dt)
{
	for (size_t i = 0; i < dt->nr_slots; i++)
		free(dt->slots[i].path);
	free(dt->slots);
	dt->slots = NULL;
	dt->nr_slots = 0;
	dt->nr_used = 0;
}
