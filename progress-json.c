// SPDX-License-Identifier: GPL-2.0-only
/*
 * --format json with send --progress and receive --progress: one JSON
 * object a line on stderr for each status update, at the same times as
 * the text line, and a summary object once the exit status is known.
 *
 * Each object is formatted in memory and written with one write(), so
 * that a send and a receive sharing stderr cannot cut into each other's
 * lines.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json-string.h"
#include "progress-json.h"
#include "utils.h"

#define NSEC_PER_SEC	1000000000ULL

/* "sending", "receiving", "skipping" or "syncing": what it does now. */
static const char *phase(const struct progress *p)
{
	if (p->skipping)
		return "skipping";
	if (__atomic_load_n(&p->syncing, __ATOMIC_RELAXED))
		return "syncing";
	return strcmp(p->op, "send") ? "receiving" : "sending";
}

static double seconds(uint64_t ns)
{
	return (double)ns / NSEC_PER_SEC;
}

static void field_u64_or_null(FILE *f, const char *key, bool known,
			      uint64_t value)
{
	if (known)
		fprintf(f, ",\"%s\":%" PRIu64, key, value);
	else
		fprintf(f, ",\"%s\":null", key);
}

/* Hand the finished line over in one write: a failure is not reported. */
static void write_line(FILE *f, char **buf, size_t *len)
{
	if (fclose(f) == 0) {
		(*buf)[*len] = '\n';
		write_all(STDERR_FILENO, *buf, *len + 1);
	}
	free(*buf);
}

static FILE *open_line(const struct progress *p, char **buf, size_t *len,
		       const char *what)
{
	FILE *f;

	*buf = NULL;
	f = open_memstream(buf, len);
	if (!f)
		return NULL;
	fprintf(f, "{\"operation\":\"%s\",\"phase\":\"%s\"", p->op, what);
	return f;
}

static void json_show(struct progress *p, uint64_t now, uint64_t bytes,
		      uint64_t cmds, const char *path, size_t path_len)
{
	uint64_t left = bytes < p->total ? p->total - bytes : 0;
	bool eta_known = p->total && p->rate > 0;
	size_t len;
	char *buf;
	FILE *f;

	f = open_line(p, &buf, &len, phase(p));
	if (!f)
		return;
	fprintf(f, ",\"bytes\":%" PRIu64, bytes);
	field_u64_or_null(f, "total", p->total, p->total);
	fprintf(f, ",\"rate\":%.0f", p->rate);
	field_u64_or_null(f, "eta", eta_known,
			  eta_known ? (uint64_t)(left / p->rate) : 0);
	fprintf(f, ",\"elapsed\":%.3f,\"commands\":%" PRIu64 ",\"path\":",
		seconds(now - p->start_ns), cmds);
	if (path)
		json_put_string(f, path, path_len);
	else
		fputs("null", f);
	putc('}', f);
	write_line(f, &buf, &len);
}

/*
 * The summary of a command whose transfer never finished (it failed
 * before, or during the prefix) counts what it did until now.
 */
static void json_done(struct progress *p, int exit_status)
{
	uint64_t end_ns = p->finished ? p->end_ns : progress_now();
	double secs = seconds(end_ns - p->start_ns);
	size_t len;
	char *buf;
	FILE *f;

	f = open_line(p, &buf, &len, "done");
	if (!f)
		return;
	fprintf(f, ",\"bytes\":%" PRIu64, p->end_bytes);
	field_u64_or_null(f, "total", p->total, p->total);
	fprintf(f, ",\"rate\":%.0f,\"elapsed\":%.3f,\"commands\":%" PRIu64,
		secs > 0 ? p->end_bytes / secs : 0, secs, p->end_cmds);
	fprintf(f, ",\"skipped_bytes\":%" PRIu64 ",\"skipped_commands\":%" PRIu64 ",\"skip_elapsed\":%.3f",
		p->skip_bytes, p->skip_cmds, seconds(p->skip_ns));
	fprintf(f, ",\"exit_status\":%d}", exit_status);
	write_line(f, &buf, &len);
}

const struct progress_view progress_json_view = {
	.show = json_show,
	.done = json_done,
	.show_syncing = true,
};
