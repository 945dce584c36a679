// SPDX-License-Identifier: GPL-2.0-only
/*
 * Red-black tree insertion and in-order walk.  Nothing is ever removed
 * from the project's trees (they are built, searched and freed whole), so
 * deletion is not implemented.
 */
#include "rbtree.h"

static void rotate(struct rb_node *x, struct rb_root *root, int left)
{
	struct rb_node *y = left ? x->right : x->left;
	struct rb_node *child = left ? y->left : y->right;

	if (left)
		x->right = child;
	else
		x->left = child;
	if (child)
		child->parent = x;
	y->parent = x->parent;
	if (!x->parent)
		root->node = y;
	else if (x == x->parent->left)
		x->parent->left = y;
	else
		x->parent->right = y;
	if (left)
		y->left = x;
	else
		y->right = x;
	x->parent = y;
}

void rb_insert_color(struct rb_node *node, struct rb_root *root)
{
	struct rb_node *parent, *gparent, *uncle;
	int parent_is_left;

	while ((parent = node->parent) && parent->red) {
		gparent = parent->parent;
		parent_is_left = parent == gparent->left;
		uncle = parent_is_left ? gparent->right : gparent->left;
		if (uncle && uncle->red) {
			parent->red = 0;
			uncle->red = 0;
			gparent->red = 1;
			node = gparent;
			continue;
		}
		/* Bring the node to the outside, then rotate the grandparent. */
		if (node == (parent_is_left ? parent->right : parent->left)) {
			rotate(parent, root, parent_is_left);
			node = parent;
			parent = node->parent;
		}
		parent->red = 0;
		gparent->red = 1;
		rotate(gparent, root, !parent_is_left);
	}
	root->node->red = 0;
}

struct rb_node *rb_first(const struct rb_root *root)
{
	struct rb_node *n = root->node;

	if (!n)
		return NULL;
	while (n->left)
		n = n->left;
	return n;
}

struct rb_node *rb_next(const struct rb_node *node)
{
	const struct rb_node *parent;

	if (node->right) {
		node = node->right;
		while (node->left)
			node = node->left;
		return (struct rb_node *)node;
	}
	while ((parent = node->parent) && node == parent->right)
		node = parent;
	return (struct rb_node *)parent;
}
