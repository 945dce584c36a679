/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Inside the progress module: the JSON Lines that replace the status line
 * and the summary with --format json (progress-json.c).
 */
#ifndef PROGRESS_JSON_H
#define PROGRESS_JSON_H

#include "progress.h"

/* One status object, at now (progress_now()), for progress_show(). */
void progress_json_update(const struct progress *p, uint64_t now,
			  uint64_t bytes, uint64_t cmds, const char *path,
			  size_t path_len);

#endif
