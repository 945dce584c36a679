/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The view of --format json (progress-json.c): JSON Lines on stderr, a
 * status object at each update and a summary object once the exit
 * status is known.
 */
#ifndef PROGRESS_JSON_H
#define PROGRESS_JSON_H

#include "progress.h"

extern const struct progress_view progress_json_view;

#endif
