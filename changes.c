// SPDX-License-Identifier: GPL-2.0-only
/*
 * The model of send --changes and receive --changes: inodes and their
 * names, as the stream moves them.
 *
 * An inode of the parent enters the model when the stream first names
 * it, found by its name in a directory of the parent that the model
 * already holds.  A name the model does not hold, in a directory that
 * was in the parent, is that directory's entry in the parent, unchanged
 * so far.  Each name (directory, name) remembers who held it in the
 * parent and who holds it now; the kernel's temporary names (o257-12-0)
 * are names like others, held by nobody before and after, so they leave
 * nothing behind.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "changes.h"
#include "paths.h"

struct node;

/* A name in a directory. */
struct link {
	struct link *hash_next;
	struct link *node_next;		/* the holder's next name */
	struct node *dir;
	struct node *node;		/* who holds it now; NULL: nobody */
	struct node *orig;		/* who held it in the parent */
	size_t len;
	char name[];
};

struct node {
	struct node *all_next;
	struct link *links;		/* its names now, oldest first */
	struct link *orig_link;		/* its name in the parent, if it was */
	enum change_type type;
	unsigned int what;		/* what the stream did to it */
	bool is_new;
	struct change_range *ranges;	/* data ranges, in-parent inodes only */
	size_t nr_ranges;
	size_t alloc_ranges;
};

struct changes {
	struct node *top;
	struct node *all;
	struct link **buckets;
	size_t nr_buckets;		/* a power of two */
	size_t nr_links;
	bool started;
	int (*subvol_hook)(struct changes *c, void *arg);
	void *hook_arg;
};

static struct node *node_new(struct changes *c, bool is_new,
			     enum change_type type)
{
	struct node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->is_new = is_new;
	n->type = type;
	n->all_next = c->all;
	c->all = n;
	return n;
}

static size_t bucket_of(const struct changes *c, const struct node *dir,
			const char *name, size_t len)
{
	size_t h = path_hash(name, len) ^ ((uintptr_t)dir >> 4) * 31;

	return h & (c->nr_buckets - 1);
}

static struct link *lookup_link(const struct changes *c,
				const struct node *dir, const char *name,
				size_t len)
{
	struct link *l = c->buckets[bucket_of(c, dir, name, len)];

	for (; l; l = l->hash_next) {
		if (l->dir == dir && l->len == len &&
		    !memcmp(l->name, name, len))
			return l;
	}
	return NULL;
}

static int grow_buckets(struct changes *c)
{
	size_t old_nr = c->nr_buckets;
	struct link **old = c->buckets;
	struct link *l, *next;
	size_t i, b;

	c->buckets = calloc(old_nr * 2, sizeof(*c->buckets));
	if (!c->buckets) {
		c->buckets = old;
		return -ENOMEM;
	}
	c->nr_buckets = old_nr * 2;
	for (i = 0; i < old_nr; i++) {
		for (l = old[i]; l; l = next) {
			next = l->hash_next;
			b = bucket_of(c, l->dir, l->name, l->len);
			l->hash_next = c->buckets[b];
			c->buckets[b] = l;
		}
	}
	free(old);
	return 0;
}

/* A name nobody holds yet, in dir. */
static struct link *add_link(struct changes *c, struct node *dir,
			     const char *name, size_t len)
{
	struct link *l;
	size_t b;

	if (c->nr_links >= c->nr_buckets && grow_buckets(c) < 0)
		return NULL;
	l = calloc(1, sizeof(*l) + len + 1);
	if (!l)
		return NULL;
	l->dir = dir;
	l->len = len;
	memcpy(l->name, name, len);
	b = bucket_of(c, dir, name, len);
	l->hash_next = c->buckets[b];
	c->buckets[b] = l;
	c->nr_links++;
	return l;
}

static void bind(struct link *l, struct node *n)
{
	struct link **p = &n->links;

	while (*p)
		p = &(*p)->node_next;
	*p = l;
	l->node_next = NULL;
	l->node = n;
}

static void unbind(struct link *l)
{
	struct link **p;

	if (!l->node)
		return;
	for (p = &l->node->links; *p != l; p = &(*p)->node_next)
		;
	*p = l->node_next;
	l->node_next = NULL;
	l->node = NULL;
}

/*
 * The name (dir, name): the model's, or the parent's entry, which enters
 * the model with its inode.  -ENOENT if dir holds no such name.
 */
static int child_link(struct changes *c, struct node *dir, const char *name,
		      size_t len, struct link **ret)
{
	struct link *l = lookup_link(c, dir, name, len);
	struct node *n;

	if (!l && !dir->is_new) {
		n = node_new(c, false, CHANGE_TYPE_UNKNOWN);
		l = n ? add_link(c, dir, name, len) : NULL;
		if (!l)
			return -ENOMEM;
		n->orig_link = l;
		l->orig = n;
		bind(l, n);
	}
	if (!l || !l->node)
		return -ENOENT;
	*ret = l;
	return 0;
}

/* The directory that holds the last component of path. */
static int resolve_dir(struct changes *c, const char *path, size_t len,
		       struct node **ret)
{
	struct node *dir = c->top;
	const char *p = path, *end = path + len, *slash;
	struct link *l;
	int err;

	while (p < end) {
		slash = memchr(p, '/', end - p);
		if (!slash)
			slash = end;
		if (slash > p) {
			err = child_link(c, dir, p, slash - p, &l);
			if (err)
				return err;
			dir = l->node;
			if (dir->type == CHANGE_TYPE_UNKNOWN)
				dir->type = CHANGE_TYPE_DIR;
			else if (dir->type != CHANGE_TYPE_DIR)
				return -ENOTDIR;
		}
		p = slash + 1;
	}
	*ret = dir;
	return 0;
}

/* path split at its last '/': the directory and the name in it. */
static int resolve_parent(struct changes *c, const char *path,
			  struct node **dir, const char **name)
{
	const char *slash = strrchr(path, '/');

	*name = slash ? slash + 1 : path;
	if (!**name)
		return -EINVAL;
	return resolve_dir(c, path, slash ? (size_t)(slash - path) : 0, dir);
}

/* The name path: one the model holds or one of the parent. */
static int resolve_link(struct changes *c, const char *path,
			struct link **ret)
{
	struct node *dir;
	const char *name;
	int err;

	err = resolve_parent(c, path, &dir, &name);
	if (err)
		return err;
	return child_link(c, dir, name, strlen(name), ret);
}

/* The inode at path; "" is the subvolume's top directory. */
static int resolve(struct changes *c, const char *path, struct node **ret)
{
	struct link *l;
	int err;

	if (!*path) {
		*ret = c->top;
		return 0;
	}
	err = resolve_link(c, path, &l);
	if (!err)
		*ret = l->node;
	return err;
}

/*
 * The name path, free to be given: created in the model if it is not
 * there.  A name of the parent the stream never named is taken as free:
 * the kernel moves or removes an inode before it gives its name away.
 */
static int free_slot(struct changes *c, const char *path, struct link **ret)
{
	struct node *dir;
	const char *name;
	struct link *l;
	size_t len;
	int err;

	err = resolve_parent(c, path, &dir, &name);
	if (err)
		return err;
	len = strlen(name);
	l = lookup_link(c, dir, name, len);
	if (!l)
		l = add_link(c, dir, name, len);
	if (!l)
		return -ENOMEM;
	*ret = l;
	return 0;
}

static int make_inode(struct changes *c, const char *path,
		      enum change_type type)
{
	struct link *l;
	struct node *n;
	int err;

	err = free_slot(c, path, &l);
	if (err)
		return err;
	if (l->node)
		return -EEXIST;
	n = node_new(c, true, type);
	if (!n)
		return -ENOMEM;
	bind(l, n);
	return 0;
}

static int begin_subvol(struct changes *c, bool is_new)
{
	int err;

	if (c->started && c->subvol_hook) {
		err = c->subvol_hook(c, c->hook_arg);
		if (err)
			return err;
	}
	c->top->is_new = is_new;
	c->started = true;
	return 0;
}

static int ch_subvol(const char *path, const uint8_t *uuid,
		     uint64_t ctransid, void *user)
{
	(void)path;
	(void)uuid;
	(void)ctransid;
	return begin_subvol(user, true);
}

static int ch_snapshot(const char *path, const uint8_t *uuid,
		       uint64_t ctransid, const uint8_t *parent_uuid,
		       uint64_t parent_ctransid, void *user)
{
	(void)path;
	(void)uuid;
	(void)ctransid;
	(void)parent_uuid;
	(void)parent_ctransid;
	return begin_subvol(user, false);
}

static int ch_mkfile(const char *path, void *user)
{
	return make_inode(user, path, CHANGE_TYPE_FILE);
}

static int ch_mkdir(const char *path, void *user)
{
	return make_inode(user, path, CHANGE_TYPE_DIR);
}

static int ch_mknod(const char *path, uint64_t mode, uint64_t rdev,
		    void *user)
{
	(void)rdev;
	return make_inode(user, path, (mode & 0170000) == 0060000 ?
			  CHANGE_TYPE_BLOCK : CHANGE_TYPE_CHAR);
}

static int ch_mkfifo(const char *path, void *user)
{
	return make_inode(user, path, CHANGE_TYPE_FIFO);
}

static int ch_mksock(const char *path, void *user)
{
	return make_inode(user, path, CHANGE_TYPE_SOCKET);
}

static int ch_symlink(const char *path, const char *target, void *user)
{
	(void)target;
	return make_inode(user, path, CHANGE_TYPE_SYMLINK);
}

/* The directory a directory is in now; NULL for the top or a removed one. */
static struct node *dir_of(const struct node *n)
{
	return n->links ? n->links->dir : NULL;
}

/* Whether dir is n or below it: a move there would make a loop. */
static bool is_within(const struct node *dir, const struct node *n)
{
	for (; dir; dir = dir_of(dir)) {
		if (dir == n)
			return true;
	}
	return false;
}

static int ch_rename(const char *from, const char *to, void *user)
{
	struct changes *c = user;
	struct link *src, *dst;
	struct node *n;
	int err;

	err = resolve_link(c, from, &src);
	if (err)
		return err;
	err = free_slot(c, to, &dst);
	if (err || dst == src)
		return err;
	n = src->node;
	if (is_within(dst->dir, n))
		return -EINVAL;
	unbind(dst);
	unbind(src);
	bind(dst, n);
	return 0;
}

static int ch_link(const char *path, const char *target, void *user)
{
	struct changes *c = user;
	struct link *src, *dst;
	int err;

	err = resolve_link(c, target, &src);
	if (err)
		return err;
	err = free_slot(c, path, &dst);
	if (err)
		return err;
	if (dst->node)
		return -EEXIST;
	bind(dst, src->node);
	return 0;
}

static int remove_name(struct changes *c, const char *path, bool dir)
{
	struct link *l;
	int err;

	err = resolve_link(c, path, &l);
	if (err)
		return err;
	if (dir && l->node->type == CHANGE_TYPE_UNKNOWN)
		l->node->type = CHANGE_TYPE_DIR;
	unbind(l);
	return 0;
}

static int ch_unlink(const char *path, void *user)
{
	return remove_name(user, path, false);
}

static int ch_rmdir(const char *path, void *user)
{
	return remove_name(user, path, true);
}

/* Keep the ranges merged where they touch, as the kernel sends them. */
static int add_range(struct node *n, uint64_t offset, uint64_t len)
{
	struct change_range *r = n->nr_ranges ?
				 &n->ranges[n->nr_ranges - 1] : NULL;
	size_t alloc;

	if (r && offset >= r->offset && offset <= r->offset + r->len) {
		if (offset + len > r->offset + r->len)
			r->len = offset + len - r->offset;
		return 0;
	}
	if (n->nr_ranges == n->alloc_ranges) {
		alloc = n->alloc_ranges ? 2 * n->alloc_ranges : 2;
		r = realloc(n->ranges, alloc * sizeof(*r));
		if (!r)
			return -ENOMEM;
		n->ranges = r;
		n->alloc_ranges = alloc;
	}
	n->ranges[n->nr_ranges++] = (struct change_range){ offset, len };
	return 0;
}

/* The stream changed what of the inode at path. */
static int mark(struct changes *c, const char *path, unsigned int what)
{
	struct node *n;
	int err;

	err = resolve(c, path, &n);
	if (err)
		return err;
	n->what |= what;
	return 0;
}

/* Data written over a range: the file is a regular one. */
static int mark_data(struct changes *c, const char *path, uint64_t offset,
		     uint64_t len)
{
	struct node *n;
	int err;

	err = resolve(c, path, &n);
	if (err)
		return err;
	n->what |= CHANGED_DATA;
	if (n->type == CHANGE_TYPE_UNKNOWN)
		n->type = CHANGE_TYPE_FILE;
	return n->is_new ? 0 : add_range(n, offset, len);
}

static int ch_write(const char *path, const void *data, uint64_t offset,
		    size_t len, void *user)
{
	(void)data;
	return mark_data(user, path, offset, len);
}

static int ch_clone(const char *path, uint64_t offset, uint64_t len,
		    const uint8_t *clone_uuid, uint64_t clone_ctransid,
		    const char *clone_path, uint64_t clone_offset, void *user)
{
	(void)clone_uuid;
	(void)clone_ctransid;
	(void)clone_path;
	(void)clone_offset;
	return mark_data(user, path, offset, len);
}

static int ch_update_extent(const char *path, uint64_t offset, uint64_t len,
			    void *user)
{
	return mark_data(user, path, offset, len);
}

static int ch_fallocate(const char *path, uint32_t mode, uint64_t offset,
			uint64_t len, void *user)
{
	(void)mode;
	return mark_data(user, path, offset, len);
}

static int ch_encoded_write(const char *path,
			    const struct send_encoded_write *ew, void *user)
{
	return mark_data(user, path, ew->offset, ew->unencoded_file_len);
}

static int ch_set_xattr(const char *path, const char *name, const void *data,
			size_t len, void *user)
{
	(void)name;
	(void)data;
	(void)len;
	return mark(user, path, CHANGED_XATTR);
}

static int ch_remove_xattr(const char *path, const char *name, void *user)
{
	(void)name;
	return mark(user, path, CHANGED_XATTR);
}

static int ch_truncate(const char *path, uint64_t size, void *user)
{
	(void)size;
	return mark(user, path, CHANGED_SIZE);
}

static int ch_chmod(const char *path, uint64_t mode, void *user)
{
	(void)mode;
	return mark(user, path, CHANGED_MODE);
}

/* The stream gives both ids and does not say which one changed. */
static int ch_chown(const char *path, uint64_t uid, uint64_t gid, void *user)
{
	(void)uid;
	(void)gid;
	return mark(user, path, CHANGED_OWNER | CHANGED_GROUP);
}

static int ch_utimes(const char *path, const struct send_timespec *atime,
		     const struct send_timespec *mtime,
		     const struct send_timespec *ctime, void *user)
{
	(void)atime;
	(void)mtime;
	(void)ctime;
	return mark(user, path, CHANGED_TIMES);
}

const struct send_stream_ops changes_ops = {
	.subvol = ch_subvol,
	.snapshot = ch_snapshot,
	.mkfile = ch_mkfile,
	.mkdir = ch_mkdir,
	.mknod = ch_mknod,
	.mkfifo = ch_mkfifo,
	.mksock = ch_mksock,
	.symlink = ch_symlink,
	.rename = ch_rename,
	.link = ch_link,
	.unlink = ch_unlink,
	.rmdir = ch_rmdir,
	.write = ch_write,
	.clone = ch_clone,
	.set_xattr = ch_set_xattr,
	.remove_xattr = ch_remove_xattr,
	.truncate = ch_truncate,
	.chmod = ch_chmod,
	.chown = ch_chown,
	.utimes = ch_utimes,
	.update_extent = ch_update_extent,
	.fallocate = ch_fallocate,
	.encoded_write = ch_encoded_write,
};

static void clear_model(struct changes *c)
{
	struct node *n, *next_node;
	struct link *l, *next_link;
	size_t i;

	for (n = c->all; n; n = next_node) {
		next_node = n->all_next;
		free(n->ranges);
		free(n);
	}
	c->all = NULL;
	for (i = 0; i < c->nr_buckets; i++) {
		for (l = c->buckets[i]; l; l = next_link) {
			next_link = l->hash_next;
			free(l);
		}
		c->buckets[i] = NULL;
	}
	c->nr_links = 0;
	c->top = NULL;
}

static int reset_model(struct changes *c)
{
	clear_model(c);
	c->top = node_new(c, false, CHANGE_TYPE_DIR);
	return c->top ? 0 : -ENOMEM;
}

struct changes *changes_new(void)
{
	struct changes *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->nr_buckets = 1024;
	c->buckets = calloc(c->nr_buckets, sizeof(*c->buckets));
	if (!c->buckets || reset_model(c) < 0) {
		changes_free(c);
		return NULL;
	}
	return c;
}

void changes_free(struct changes *c)
{
	if (!c)
		return;
	clear_model(c);
	free(c->buckets);
	free(c);
}

bool changes_started(const struct changes *c)
{
	return c->started;
}

void changes_set_subvol_hook(struct changes *c,
			     int (*fn)(struct changes *c, void *arg),
			     void *arg)
{
	c->subvol_hook = fn;
	c->hook_arg = arg;
}

/* The name a path ends in, and where that name's directory is. */
static const struct link *up(const struct link *l, bool in_parent)
{
	const struct node *dir = l->dir;

	if (in_parent || !dir->links)
		return dir->orig_link;
	return dir->links;
}

/* "/a/b": the path of the name l now, or in the parent. */
static char *path_of(const struct link *l, bool in_parent)
{
	const struct link *p;
	size_t len = 0;
	char *path;

	for (p = l; p; p = up(p, in_parent))
		len += 1 + p->len;
	path = malloc(len + 1);
	if (!path)
		return NULL;
	path[len] = '\0';
	for (p = l; p; p = up(p, in_parent)) {
		len -= p->len;
		memcpy(path + len, p->name, p->len);
		path[--len] = '/';
	}
	return path;
}

static int add_change_of(struct change_list *list, char kind,
			 enum change_type type, unsigned int what, char *path,
			 char *new_path, uint64_t ino)
{
	struct change *items;
	size_t alloc;

	if (!path || (kind == 'R' && !new_path)) {
		free(path);
		free(new_path);
		return -ENOMEM;
	}
	if (list->count == list->alloc) {
		alloc = list->alloc ? 2 * list->alloc : 64;
		items = realloc(list->items, alloc * sizeof(*items));
		if (!items) {
			free(path);
			free(new_path);
			return -ENOMEM;
		}
		list->items = items;
		list->alloc = alloc;
	}
	list->items[list->count++] = (struct change){
		.kind = kind, .type = type, .what = what,
		.path = path, .new_path = new_path, .ino = ino,
	};
	return 0;
}

static int add_change(struct change_list *list, char kind,
		      enum change_type type, unsigned int what, char *path,
		      char *new_path)
{
	return add_change_of(list, kind, type, what, path, new_path, 0);
}

/* A '+' for each name of n from first on. */
static int add_names(struct change_list *list, const struct node *n,
		     const struct link *first, enum change_type type)
{
	const struct link *l;
	int err;

	for (l = first; l; l = l->node_next) {
		if (l == n->orig_link)
			continue;
		err = add_change(list, '+', type, 0, path_of(l, false), NULL);
		if (err)
			return err;
	}
	return 0;
}

/* The names an inode of the parent lost and gained, and its change. */
static int list_old_inode(struct change_list *list, const struct node *n,
			  const struct change_inode *ci)
{
	const struct link *ol = n->orig_link;
	bool kept = ol->node == n;
	bool one = n->links && !n->links->node_next &&
		   ci->nlink_before <= 1 && ci->nlink_after <= 1;
	int err;

	if (!kept && one) {
		err = add_change(list, 'R', ci->type, 0, path_of(ol, true),
				 path_of(n->links, false));
	} else {
		err = kept ? 0 : add_change(list, '-', ci->type, 0,
					    path_of(ol, true), NULL);
		if (!err)
			err = add_names(list, n, n->links, ci->type);
	}
	if (err || !ci->what || !n->links)
		return err;
	return add_change_of(list, 'M', ci->type, ci->what,
			     path_of(kept ? ol : n->links, false), NULL,
			     ci->nlink_after > 1 ? ci->ino : 0);
}

/* An inode of the parent the stream touched: refined, then listed. */
static int take_old_inode(struct change_list *list, const struct node *n,
			  changes_refine_fn refine, void *arg)
{
	const struct link *now = n->orig_link->node == n ? n->orig_link :
				 n->links;
	struct change_inode ci = {
		.what = n->what,
		.type = n->type,
		.ranges = n->ranges,
		.nr_ranges = n->nr_ranges,
	};
	char *old_path, *new_path = NULL;
	int err = -ENOMEM;

	old_path = path_of(n->orig_link, true);
	if (now)
		new_path = path_of(now, false);
	if (!old_path || (now && !new_path))
		goto out;
	ci.old_path = old_path;
	ci.new_path = new_path;
	err = refine ? refine(&ci, arg) : 0;
	if (!err)
		err = list_old_inode(list, n, &ci);
out:
	free(old_path);
	free(new_path);
	return err;
}

/* The top directory changes only in itself: its entries, its inode. */
static int take_top(struct change_list *list, const struct node *top,
		    changes_refine_fn refine, void *arg)
{
	struct change_inode ci = {
		.old_path = "/",
		.new_path = "/",
		.what = top->what,
		.type = CHANGE_TYPE_DIR,
	};
	int err;

	if (top->is_new || !top->what)
		return 0;
	err = refine ? refine(&ci, arg) : 0;
	if (err || !ci.what)
		return err;
	return add_change(list, 'M', CHANGE_TYPE_DIR, ci.what, strdup("/"),
			  NULL);
}

/* A directory whose names are held by others than in the parent. */
static void mark_entries(struct changes *c)
{
	struct link *l;
	size_t i;

	for (i = 0; i < c->nr_buckets; i++) {
		for (l = c->buckets[i]; l; l = l->hash_next) {
			if (l->node != l->orig && !l->dir->is_new)
				l->dir->what |= CHANGED_ENTRIES;
		}
	}
}

static int compare_changes(const void *a, const void *b)
{
	const struct change *x = a, *y = b;
	int d = strcmp(x->path, y->path);

	return d ? d : x->kind - y->kind;
}

static int compare_linked(const void *a, const void *b)
{
	const struct change *x = *(const struct change *const *)a;
	const struct change *y = *(const struct change *const *)b;

	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return x < y ? -1 : x > y;
}

/*
 * One 'M' for an inode with hard links that the model held as two nodes:
 * the first by path (the list is sorted) stays, with what every node saw
 * (the stream may write the data by one name and link by another).
 */
static int drop_repeated_m(struct change_list *list)
{
	struct change **linked = NULL, *first;
	size_t i, n = 0, kept = 0;

	for (i = 0; i < list->count; i++) {
		if (!list->items[i].ino)
			continue;
		if (!linked)
			linked = malloc(list->count * sizeof(*linked));
		if (!linked)
			return -ENOMEM;
		linked[n++] = &list->items[i];
	}
	if (n < 2) {
		free(linked);
		return 0;
	}
	qsort(linked, n, sizeof(*linked), compare_linked);
	for (first = linked[0], i = 1; i < n; i++) {
		if (linked[i]->ino != first->ino) {
			first = linked[i];
			continue;
		}
		first->what |= linked[i]->what;
		free(linked[i]->path);
		linked[i]->kind = 0;
	}
	free(linked);
	for (i = 0; i < list->count; i++) {
		if (list->items[i].kind)
			list->items[kept++] = list->items[i];
	}
	list->count = kept;
	return 0;
}

int changes_take(struct changes *c, changes_refine_fn refine, void *arg,
		 struct change_list *list)
{
	const struct node *n;
	int err = 0;

	mark_entries(c);
	for (n = c->all; n && !err; n = n->all_next) {
		if (n == c->top)
			err = take_top(list, n, refine, arg);
		else if (n->is_new)
			err = add_names(list, n, n->links, n->type);
		else
			err = take_old_inode(list, n, refine, arg);
	}
	if (!err) {
		qsort(list->items, list->count, sizeof(*list->items),
		      compare_changes);
		err = drop_repeated_m(list);
	}
	c->started = false;
	return reset_model(c) ?: err;
}

void change_list_free(struct change_list *list)
{
	size_t i;

	for (i = 0; i < list->count; i++) {
		free(list->items[i].path);
		free(list->items[i].new_path);
	}
	free(list->items);
	memset(list, 0, sizeof(*list));
}
