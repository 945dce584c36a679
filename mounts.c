// SPDX-License-Identifier: GPL-2.0-only
/*
 * Mount lookup.  mountinfo rather than /proc/self/mounts: it also tells
 * what a mount holds (the subvolume of a btrfs mount), which receive
 * needs to place its paths.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paths.h"
#include "mounts.h"

struct mountinfo_entry {
	char *root;
	char *dir;
	const char *fstype;
};

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape_mountinfo(char *s)
{
	char *d = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*d++ = (s[1] - '0') << 6 | (s[2] - '0') << 3 |
			       (s[3] - '0');
			s += 4;
		} else {
			*d++ = *s++;
		}
	}
	*d = '\0';
}

/*
 * Split a line in place: "ID PARENT MAJ:MIN ROOT DIR OPTIONS [OPTIONAL...]
 * - FSTYPE SOURCE SUPER_OPTIONS".  No field holds a space, they are
 * escaped.  false for a line that does not read so.
 */
static bool parse_mountinfo_line(char *line, struct mountinfo_entry *e)
{
	char *save, *tok;
	int i = 0;

	e->root = e->dir = NULL;
	e->fstype = NULL;
	for (tok = strtok_r(line, " \n", &save); tok;
	     tok = strtok_r(NULL, " \n", &save), i++) {
		if (i == 3) {
			e->root = tok;
		} else if (i == 4) {
			e->dir = tok;
		} else if (i > 5 && !strcmp(tok, "-")) {
			e->fstype = strtok_r(NULL, " \n", &save);
			break;
		}
	}
	if (!e->fstype)
		return false;
	unescape_mountinfo(e->root);
	unescape_mountinfo(e->dir);
	return true;
}

static int set_mount_point(struct mount_point *mp,
			   const struct mountinfo_entry *e)
{
	mount_point_free(mp);
	mp->dir = strdup(e->dir);
	mp->fs_root = strdup(e->root + strspn(e->root, "/"));
	mp->is_btrfs = !strcmp(e->fstype, "btrfs");
	if (!mp->dir || !mp->fs_root) {
		mount_point_free(mp);
		return -ENOMEM;
	}
	return 0;
}

static int find_mount(const char *path, bool btrfs_only,
		      struct mount_point *mp)
{
	struct mountinfo_entry e;
	char *line = NULL;
	size_t size = 0, best = 0;
	int ret = 1;
	FILE *f;

	mp->dir = mp->fs_root = NULL;
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	while (getline(&line, &size, f) > 0) {
		if (!parse_mountinfo_line(line, &e) ||
		    (btrfs_only && strcmp(e.fstype, "btrfs")) ||
		    !path_is_under(path, e.dir) ||
		    (mp->dir && strlen(e.dir) < best))
			continue;
		best = strlen(e.dir);
		ret = set_mount_point(mp, &e);
		if (ret < 0)
			break;
	}
	free(line);
	fclose(f);
	return ret;
}

int mount_point_find(const char *path, struct mount_point *mp)
{
	return find_mount(path, false, mp);
}

int mount_point_find_btrfs(const char *path, struct mount_point *mp)
{
	int ret = find_mount(path, true, mp);

	return ret > 0 ? -ENOENT : ret;
}

void mount_point_free(struct mount_point *mp)
{
	free(mp->dir);
	free(mp->fs_root);
	mp->dir = mp->fs_root = NULL;
}
