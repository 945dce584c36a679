/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef RECEIVE_DUMP_H
#define RECEIVE_DUMP_H

#include <stdio.h>
#include <limits.h>

#include "send-stream.h"

/* State of the text dump: where it prints and the current subvolume. */
struct dump_ctx {
	FILE *out;
	/* The subvolume's path as printed, escaped: "./name". */
	char subvol_escaped[4 * PATH_MAX + 3];
	int subvol_escaped_len;
	/* The same unescaped, as btrfs-progs prints clone sources. */
	char subvol_raw[PATH_MAX];
	size_t subvol_raw_len;
	/* The parser, for the offsets the JSON dump reports; may be NULL. */
	const struct send_stream *stream;
};

void dump_ctx_init(struct dump_ctx *ctx, FILE *out);

/* Prints each command as btrfs-progs' "btrfs receive --dump" does. */
extern const struct send_stream_ops dump_ops;
/* One JSON object per command (JSON Lines), for --format json. */
extern const struct send_stream_ops dump_json_ops;

#endif
