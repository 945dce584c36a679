// SPDX-License-Identifier: GPL-2.0-only
/*
 * Lexical tests on paths and a hash for tables keyed by path: nothing
 * here touches the filesystem.
 */
#include <stdint.h>
#include <string.h>

#include "paths.h"

const char *path_relative_to(const char *path, const char *dir)
{
	size_t len = strlen(dir);

	if (!strcmp(dir, "/") || !len) {
		if ((path[0] == '/') != (dir[0] == '/'))
			return NULL;
		return path + strspn(path, "/");
	}
	if (strncmp(path, dir, len) || (path[len] && path[len] != '/'))
		return NULL;
	return path + len + strspn(path + len, "/");
}

bool path_is_under(const char *path, const char *dir)
{
	return path_relative_to(path, dir) != NULL;
}

size_t path_hash(const char *path, size_t len)
{
	uint64_t h = 14695981039346656037ULL;	/* FNV-1a, 64 bits */

	while (len--)
		h = (h ^ (unsigned char)*path++) * 1099511628211ULL;
	return (size_t)(h ^ (h >> 32));
}
