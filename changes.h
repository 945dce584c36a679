/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What changed between a parent snapshot and a snapshot, from the
 * incremental stream between them (send --changes, receive --changes).
 *
 * The stream names paths only, and paths of a tree that changes as the
 * stream goes.  The model follows each inode the stream touches through
 * its renames and links, from where it was in the parent to where it is
 * at the end, and keeps nothing of the parts of the tree the stream does
 * not name: its memory grows with the changes, not with the tree.
 */
#ifndef CHANGES_H
#define CHANGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "send-stream.h"

/* What changed in an inode that is in both snapshots. */
enum {
	CHANGED_DATA	= 1 << 0,
	CHANGED_SIZE	= 1 << 1,
	CHANGED_MODE	= 1 << 2,
	CHANGED_OWNER	= 1 << 3,
	CHANGED_GROUP	= 1 << 4,
	CHANGED_XATTR	= 1 << 5,
	CHANGED_MTIME	= 1 << 6,
	CHANGED_ENTRIES	= 1 << 7,
	/* From a stream alone: some time changed, maybe only ctime. */
	CHANGED_TIMES	= 1 << 8,
};
#define CHANGED_NAMES_COUNT 9

enum change_type {
	CHANGE_TYPE_UNKNOWN,
	CHANGE_TYPE_FILE,
	CHANGE_TYPE_DIR,
	CHANGE_TYPE_SYMLINK,
	CHANGE_TYPE_BLOCK,
	CHANGE_TYPE_CHAR,
	CHANGE_TYPE_FIFO,
	CHANGE_TYPE_SOCKET,
};

/* One line of the list, as zfs diff has them: '-', '+', 'R' or 'M'. */
struct change {
	char kind;
	enum change_type type;
	unsigned int what;	/* CHANGED_*, on 'M' lines */
	char *path;		/* "/a/b": in the parent for '-' and 'R' */
	char *new_path;		/* 'R' only */
	uint64_t ino;		/* on 'M': the inode, if it has other names */
};

struct change_list {
	struct change *items;
	size_t count;
	size_t alloc;
};

/* A range of a file the stream wrote, cloned, punched or allocated. */
struct change_range {
	uint64_t offset;
	uint64_t len;
};

/*
 * An inode that was in the parent and that the stream touched, handed to
 * the refiner before it is listed.  old_path is its path in the parent,
 * new_path its path at the end ("" for the top directory), or NULL when
 * it is gone.  The refiner, which may look at both snapshots, sets what
 * to what really changed, the type, and the link counts.
 */
struct change_inode {
	const char *old_path;
	const char *new_path;
	unsigned int what;
	enum change_type type;
	const struct change_range *ranges;
	size_t nr_ranges;
	/* Link counts before and after; 0 if not known. */
	unsigned int nlink_before;
	unsigned int nlink_after;
	/*
	 * Its inode number, 0 if not known.  A stream names an inode with
	 * hard links by one path per command, so the model may hold two
	 * nodes for it; the list gives it one 'M'.
	 */
	uint64_t ino;
};

/* 0, or a negative errno that ends the list with an error. */
typedef int (*changes_refine_fn)(struct change_inode *ci, void *arg);

struct changes;

/* The stream's commands go to changes_ops with the model as user. */
extern const struct send_stream_ops changes_ops;

struct changes *changes_new(void);
void changes_free(struct changes *c);

/* Whether the stream has begun a subvolume (SUBVOL or SNAPSHOT). */
bool changes_started(const struct changes *c);

/*
 * The list of the subvolume the stream described, sorted by path; refine
 * may be NULL.  The model is left empty for the next subvolume.
 */
int changes_take(struct changes *c, changes_refine_fn refine, void *arg,
		 struct change_list *list);

/* Called by the model when a second subvolume begins in the stream. */
void changes_set_subvol_hook(struct changes *c,
			     int (*fn)(struct changes *c, void *arg),
			     void *arg);

void change_list_free(struct change_list *list);

/* How the list is printed. */
struct change_print {
	FILE *out;
	bool json;
	bool file_type;		/* the type column of zfs diff -F */
	const char *prefix;	/* before every path; "" for none */
};

int change_list_print(const struct change_list *list,
		      const struct change_print *p);
/* The -v summary: the counts of each kind. */
void change_list_summary(const struct change_list *list, FILE *out);

/* The name of each CHANGED_* bit, in bit order. */
extern const char *const change_what_names[CHANGED_NAMES_COUNT];

#endif
