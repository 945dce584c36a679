// SPDX-License-Identifier: GPL-2.0-only
/* A bounded set of names, hashed into chained buckets (see name-set.h). */
#include <stdlib.h>
#include <string.h>

#include "paths.h"
#include "utils.h"
#include "name-set.h"

#define NAME_SET_BUCKETS	4096

struct name_node {
	struct name_node *next;
	char name[];
};

static size_t bucket_of(const char *name)
{
	return path_hash(name, strlen(name)) % NAME_SET_BUCKETS;
}

/* The link that points at name's node, or the NULL link ending its chain. */
static struct name_node **link_of(const struct name_set *set, const char *name)
{
	struct name_node **link = &set->buckets[bucket_of(name)];

	while (*link && strcmp((*link)->name, name))
		link = &(*link)->next;
	return link;
}

void name_set_init(struct name_set *set, size_t max)
{
	memset(set, 0, sizeof(*set));
	set->max = mechanism_off("names") ? 0 : max;
}

void name_set_reset(struct name_set *set, bool known)
{
	struct name_node *node;

	for (size_t i = 0; set->count && i < NAME_SET_BUCKETS; i++) {
		while ((node = set->buckets[i])) {
			set->buckets[i] = node->next;
			free(node);
			set->count--;
		}
	}
	set->known = known && set->max;
}

void name_set_free(struct name_set *set)
{
	name_set_reset(set, false);
	free(set->buckets);
	set->buckets = NULL;
}

void name_set_add(struct name_set *set, const char *name)
{
	struct name_node **link, *node;
	size_t len = strlen(name) + 1;

	if (!set->known)
		return;
	if (!set->buckets)
		set->buckets = calloc(NAME_SET_BUCKETS, sizeof(*set->buckets));
	if (!set->buckets)
		goto unknown;
	link = link_of(set, name);
	if (*link)
		return;
	if (set->count >= set->max)
		goto unknown;
	node = malloc(sizeof(*node) + len);
	if (!node)
		goto unknown;
	node->next = NULL;
	memcpy(node->name, name, len);
	*link = node;
	set->count++;
	return;
unknown:
	name_set_reset(set, false);
}

void name_set_remove(struct name_set *set, const char *name)
{
	struct name_node **link, *node;

	if (!set->known || !set->buckets)
		return;
	link = link_of(set, name);
	node = *link;
	if (!node)
		return;
	*link = node->next;
	free(node);
	set->count--;
}

bool name_set_surely_absent(const struct name_set *set, const char *name)
{
	return set->known && (!set->buckets || !*link_of(set, name));
}
