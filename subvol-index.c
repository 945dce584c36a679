// SPDX-License-Identifier: GPL-2.0-only
/*
 * The subvolume index: libbtrfsutil's iterator lists the subvolumes, three
 * red-black trees find them by uuid, received uuid and root id.
 */
#include <btrfsutil.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "subvol-index.h"
#include "utils.h"

#define BTRFS_FS_TREE_OBJECTID 5ULL

typedef int (*node_cmp)(const struct rb_node *a, const struct rb_node *b);

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

static int cmp_uuid(const struct rb_node *a, const struct rb_node *b)
{
	return memcmp(rb_entry(a, struct subvol_info, by_uuid)->uuid,
		      rb_entry(b, struct subvol_info, by_uuid)->uuid, 16);
}

/*
 * Received uuids repeat (read-only snapshots keep them, a stream may be
 * received twice): order by root id within one received uuid.
 */
static int cmp_received(const struct rb_node *a, const struct rb_node *b)
{
	const struct subvol_info *x =
		rb_entry(a, struct subvol_info, by_received_uuid);
	const struct subvol_info *y =
		rb_entry(b, struct subvol_info, by_received_uuid);
	int ret = memcmp(x->received_uuid, y->received_uuid, 16);

	return ret ? ret : cmp_u64(x->root_id, y->root_id);
}

static int cmp_root_id(const struct rb_node *a, const struct rb_node *b)
{
	return cmp_u64(rb_entry(a, struct subvol_info, by_root_id)->root_id,
		       rb_entry(b, struct subvol_info, by_root_id)->root_id);
}

static void insert(struct rb_root *root, struct rb_node *node, node_cmp cmp)
{
	struct rb_node **link = &root->node;
	struct rb_node *parent = NULL;

	while (*link) {
		parent = *link;
		link = cmp(node, parent) < 0 ? &parent->left : &parent->right;
	}
	rb_link_node(node, parent, link);
	rb_insert_color(node, root);
}

void subvol_index_add(struct subvol_index *idx, struct subvol_info *info)
{
	insert(&idx->by_uuid, &info->by_uuid, cmp_uuid);
	insert(&idx->by_root_id, &info->by_root_id, cmp_root_id);
	if (!uuid_is_null(info->received_uuid))
		insert(&idx->by_received_uuid, &info->by_received_uuid,
		       cmp_received);
	idx->count++;
}

static void fill_info(struct subvol_info *info,
		      const struct btrfs_util_subvolume_info *u)
{
	info->root_id = u->id;
	memcpy(info->uuid, u->uuid, 16);
	memcpy(info->parent_uuid, u->parent_uuid, 16);
	memcpy(info->received_uuid, u->received_uuid, 16);
	info->ctransid = u->ctransid;
	info->stransid = u->stransid;
	info->read_only = u->flags & 1ULL; /* BTRFS_ROOT_SUBVOL_RDONLY */
}

static int add_from_util(struct subvol_index *idx, char *path,
			 const struct btrfs_util_subvolume_info *u)
{
	struct subvol_info *info = calloc(1, sizeof(*info));

	if (!info) {
		free(path);
		return -ENOMEM;
	}
	fill_info(info, u);
	info->path = path;
	subvol_index_add(idx, info);
	return 0;
}

int subvol_index_build_fd(struct subvol_index *idx, int fd)
{
	struct btrfs_util_subvolume_iterator *iter;
	struct btrfs_util_subvolume_info u;
	enum btrfs_util_error err;
	char *path;
	int ret;

	memset(idx, 0, sizeof(*idx));
	/* The top level itself is not listed by the iterator. */
	err = btrfs_util_subvolume_info_fd(fd, BTRFS_FS_TREE_OBJECTID, &u);
	if (err)
		goto fail;
	path = strdup("");
	if (!path)
		return -ENOMEM;
	ret = add_from_util(idx, path, &u);
	if (ret < 0)
		return ret;

	err = btrfs_util_create_subvolume_iterator_fd(fd, BTRFS_FS_TREE_OBJECTID,
						      0, &iter);
	if (err)
		goto fail;
	while (!(err = btrfs_util_subvolume_iterator_next_info(iter, &path,
							       &u))) {
		ret = add_from_util(idx, path, &u);
		if (ret < 0) {
			btrfs_util_destroy_subvolume_iterator(iter);
			return ret;
		}
	}
	btrfs_util_destroy_subvolume_iterator(iter);
	if (err == BTRFS_UTIL_ERROR_STOP_ITERATION)
		return 0;
fail:
	ret = errno ? -errno : -EIO;
	error("cannot list the subvolumes of the filesystem: %s",
	      btrfs_util_strerror(err));
	subvol_index_free(idx);
	return ret;
}

int subvol_index_build(struct subvol_index *idx, const char *mount_path)
{
	int fd, ret;

	fd = open(mount_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		error("cannot open %s: %m", mount_path);
		return ret;
	}
	ret = subvol_index_build_fd(idx, fd);
	close(fd);
	return ret;
}

/* Children before their parent: a freed node is never visited again. */
static void free_subtree(struct rb_node *node)
{
	struct subvol_info *info;

	if (!node)
		return;
	free_subtree(node->left);
	free_subtree(node->right);
	info = rb_entry(node, struct subvol_info, by_root_id);
	free(info->path);
	free(info);
}

void subvol_index_free(struct subvol_index *idx)
{
	free_subtree(idx->by_root_id.node);
	memset(idx, 0, sizeof(*idx));
}

struct subvol_info *subvol_index_find_by_uuid(const struct subvol_index *idx,
					      const uint8_t *uuid)
{
	struct rb_node *n = idx->by_uuid.node;
	struct subvol_info *info;
	int c;

	while (n) {
		info = rb_entry(n, struct subvol_info, by_uuid);
		c = memcmp(uuid, info->uuid, 16);
		if (!c)
			return info;
		n = c < 0 ? n->left : n->right;
	}
	return NULL;
}

/* The leftmost node, the lowest root id, of the run of equal uuids. */
struct subvol_info *
subvol_index_first_received(const struct subvol_index *idx,
			    const uint8_t *uuid)
{
	struct rb_node *n = idx->by_received_uuid.node;
	struct subvol_info *info, *best = NULL;
	int c;

	while (n) {
		info = rb_entry(n, struct subvol_info, by_received_uuid);
		c = memcmp(uuid, info->received_uuid, 16);
		if (!c)
			best = info;
		n = c <= 0 ? n->left : n->right;
	}
	return best;
}

struct subvol_info *subvol_index_next_received(const struct subvol_info *info)
{
	const struct rb_node *n = rb_next(&info->by_received_uuid);
	struct subvol_info *next;

	if (!n)
		return NULL;
	next = rb_entry(n, struct subvol_info, by_received_uuid);
	return memcmp(next->received_uuid, info->received_uuid, 16) ? NULL :
								       next;
}

struct subvol_info *
subvol_index_find_by_root_id(const struct subvol_index *idx, uint64_t id)
{
	struct rb_node *n = idx->by_root_id.node;
	struct subvol_info *info;
	int c;

	while (n) {
		info = rb_entry(n, struct subvol_info, by_root_id);
		c = cmp_u64(id, info->root_id);
		if (!c)
			return info;
		n = c < 0 ? n->left : n->right;
	}
	return NULL;
}
