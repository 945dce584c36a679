/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef PATHS_H
#define PATHS_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Lexical tests on paths, for stream paths (relative) and mount points
 * (absolute) alike; dir has no trailing slash.  A path is under dir when
 * it is dir itself or continues it with a '/'.  The roots are "" (every
 * relative path is under it) and "/" (every absolute path).
 */
bool path_is_under(const char *path, const char *dir);
/*
 * The rest of a path under dir, without its leading slashes: "" for dir
 * itself; NULL when path is not under dir.
 */
const char *path_relative_to(const char *path, const char *dir);

/* A hash of len bytes of path (FNV-1a), for tables keyed by path. */
size_t path_hash(const char *path, size_t len);

#endif
