// SPDX-License-Identifier: GPL-2.0-only
/* The red-black tree and the subvolume index's lookups, without a kernel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rbtree.h"
#include "subvol-index.h"

struct item {
	int key;
	struct rb_node node;
};

static void insert_item(struct rb_root *root, struct item *it)
{
	struct rb_node **link = &root->node, *parent = NULL;

	while (*link) {
		parent = *link;
		if (it->key < rb_entry(parent, struct item, node)->key)
			link = &parent->left;
		else
			link = &parent->right;
	}
	rb_link_node(&it->node, parent, link);
	rb_insert_color(&it->node, root);
}

/* Black height of the subtree, or -1 if a red-black rule is broken. */
static int black_height(const struct rb_node *n)
{
	int l, r;

	if (!n)
		return 1;
	if (n->red && ((n->left && n->left->red) ||
		       (n->right && n->right->red)))
		return -1;
	if ((n->left && n->left->parent != n) ||
	    (n->right && n->right->parent != n))
		return -1;
	l = black_height(n->left);
	r = black_height(n->right);
	if (l < 0 || r < 0 || l != r)
		return -1;
	return l + !n->red;
}

static void test_rbtree_stays_balanced_and_ordered(void **state)
{
	enum { N = 5000 };
	struct item *items = calloc(N, sizeof(*items));
	struct rb_root root = RB_ROOT;
	struct rb_node *n;
	int i, count = 0, prev = -1;

	(void)state;
	srand(7);
	for (i = 0; i < N; i++) {
		items[i].key = rand() % 100000;
		insert_item(&root, &items[i]);
		if (i % 500 == 0)
			assert_true(black_height(root.node) > 0);
	}
	assert_false(root.node->red);
	assert_true(black_height(root.node) > 0);
	for (n = rb_first(&root); n; n = rb_next(n)) {
		assert_true(rb_entry(n, struct item, node)->key >= prev);
		prev = rb_entry(n, struct item, node)->key;
		count++;
	}
	assert_int_equal(count, N);
	free(items);
}

static struct subvol_info *make_subvol(uint64_t id, int uuid_byte,
				       int received_byte, uint64_t stransid,
				       const char *path)
{
	struct subvol_info *si = calloc(1, sizeof(*si));

	si->root_id = id;
	memset(si->uuid, uuid_byte, 16);
	if (received_byte)
		memset(si->received_uuid, received_byte, 16);
	si->stransid = stransid;
	si->path = strdup(path);
	return si;
}

static void test_subvol_index_finds_by_every_key(void **state)
{
	struct subvol_index idx = { 0 };
	struct subvol_info *si;
	uint8_t uuid[16];
	int i;

	(void)state;
	for (i = 1; i <= 200; i++) {
		char path[32];

		snprintf(path, sizeof(path), "snaps/s%d", i);
		/* Received uuids repeat: read-only snapshots keep them. */
		subvol_index_add(&idx, make_subvol(255 + i, i, i % 50 + 1,
						   i, path));
	}
	assert_int_equal(idx.count, 200);
	memset(uuid, 77, 16);
	assert_int_equal(subvol_index_find_by_uuid(&idx, uuid)->root_id, 332);
	assert_string_equal(subvol_index_find_by_root_id(&idx, 300)->path,
			    "snaps/s45");
	memset(uuid, 10, 16);
	/* Received uuid 10 belongs to s9, s59, s109, s159, in that order. */
	si = subvol_index_first_received(&idx, uuid);
	for (i = 0; i < 4; i++) {
		assert_non_null(si);
		assert_int_equal(si->root_id, 264 + 50 * i);
		si = subvol_index_next_received(si);
	}
	assert_null(si);
	memset(uuid, 51, 16);
	assert_null(subvol_index_first_received(&idx, uuid));
	memset(uuid, 0xee, 16);
	assert_null(subvol_index_find_by_uuid(&idx, uuid));
	assert_null(subvol_index_find_by_root_id(&idx, 5));
	subvol_index_free(&idx);
	assert_int_equal(idx.count, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rbtree_stays_balanced_and_ordered),
		cmocka_unit_test(test_subvol_index_finds_by_every_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
