/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A bounded set of names (strings): which names a directory holds, as far
 * as the commands that made and removed them tell.  When more than its
 * bound would be held, it gives up (name_set_known() turns false) and
 * its owner asks the filesystem again.
 */
#ifndef NAME_SET_H
#define NAME_SET_H

#include <stdbool.h>
#include <stddef.h>

struct name_node;

struct name_set {
	struct name_node **buckets;	/* NULL until the first add */
	size_t count;
	size_t max;
	bool known;		/* every name added since the last reset is held */
};

/* An empty set of at most max names, not yet known (name_set_reset). */
void name_set_init(struct name_set *set, size_t max);
/* Empty the set; known says whether it stands for an empty directory. */
void name_set_reset(struct name_set *set, bool known);
void name_set_free(struct name_set *set);

/* Add name; past the bound, or without memory, the set is no longer known. */
void name_set_add(struct name_set *set, const char *name);
void name_set_remove(struct name_set *set, const char *name);

/* Whether the set is known and name is surely not in the directory. */
bool name_set_surely_absent(const struct name_set *set, const char *name);

#endif
