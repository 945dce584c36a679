/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A small red-black tree with the node embedded in the indexed structure,
 * in the style of the kernel's: callers walk it with their own compare and
 * link new nodes with rb_link_node() + rb_insert_color().
 */
#ifndef RBTREE_H
#define RBTREE_H

#include <stddef.h>

struct rb_node {
	struct rb_node *parent;
	struct rb_node *left;
	struct rb_node *right;
	int red;
};

struct rb_root {
	struct rb_node *node;
};

#define RB_ROOT ((struct rb_root){ NULL })
#define rb_entry(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

static inline void rb_link_node(struct rb_node *node, struct rb_node *parent,
				struct rb_node **link)
{
	node->parent = parent;
	node->left = node->right = NULL;
	node->red = 1;
	*link = node;
}

/* Rebalance after rb_link_node(). */
void rb_insert_color(struct rb_node *node, struct rb_root *root);
struct rb_node *rb_first(const struct rb_root *root);
struct rb_node *rb_next(const struct rb_node *node);

#endif
