// SPDX-License-Identifier: GPL-2.0-only
/*
 * The list of --changes as text, in the lines of zfs diff -H, or as JSON
 * Lines.  In the text a name can split neither a line nor a field: tab,
 * newline and backslash are written as \t, \n and \\, every other byte
 * that is not printable ASCII as \ooo.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "changes.h"
#include "json-string.h"

const char *const change_what_names[CHANGED_NAMES_COUNT] = {
	"data", "size", "mode", "owner", "group", "xattr", "mtime",
	"entries", "times",
};

/* zfs diff -F's letters, and the JSON names, by enum change_type. */
static const char type_letters[] = "?F/@BC|=";
static const char *const type_names[] = {
	"unknown", "file", "dir", "symlink", "blockdev", "chardev", "fifo",
	"socket",
};

static void put_escaped(FILE *out, const char *s)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p; p++) {
		if (*p == '\\')
			fputs("\\\\", out);
		else if (*p == '\t')
			fputs("\\t", out);
		else if (*p == '\n')
			fputs("\\n", out);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(out, "\\%03o", *p);
		else
			putc(*p, out);
	}
}

static void put_text_path(FILE *out, const char *prefix, const char *path)
{
	putc('\t', out);
	put_escaped(out, prefix);
	put_escaped(out, path);
}

static void print_text(const struct change *ch, const struct change_print *p)
{
	putc(ch->kind, p->out);
	if (p->file_type) {
		putc('\t', p->out);
		putc(type_letters[ch->type], p->out);
	}
	put_text_path(p->out, p->prefix, ch->path);
	if (ch->new_path)
		put_text_path(p->out, p->prefix, ch->new_path);
	putc('\n', p->out);
}

static int put_json_path(FILE *out, const char *prefix, const char *path)
{
	size_t plen = strlen(prefix), len = strlen(path);
	char *buf = malloc(plen + len);

	if (!buf)
		return -ENOMEM;
	memcpy(buf, prefix, plen);
	memcpy(buf + plen, path, len);
	json_put_string(out, buf, plen + len);
	free(buf);
	return 0;
}

static void put_json_what(FILE *out, unsigned int what)
{
	const char *sep = "";
	int i;

	putc('[', out);
	for (i = 0; i < CHANGED_NAMES_COUNT; i++) {
		if (what & (1u << i)) {
			fprintf(out, "%s\"%s\"", sep, change_what_names[i]);
			sep = ", ";
		}
	}
	putc(']', out);
}

static int links_delta(char kind)
{
	return kind == '+' ? 1 : kind == '-' ? -1 : 0;
}

static int print_json(const struct change *ch, const struct change_print *p)
{
	int ret;

	fprintf(p->out, "{\"change\": \"%c\", \"path\": ", ch->kind);
	ret = put_json_path(p->out, p->prefix, ch->path);
	if (!ret && ch->new_path) {
		fputs(", \"new_path\": ", p->out);
		ret = put_json_path(p->out, p->prefix, ch->new_path);
	}
	if (ret)
		return ret;
	fprintf(p->out, ", \"type\": \"%s\", \"links\": %d, \"what\": ",
		type_names[ch->type], links_delta(ch->kind));
	put_json_what(p->out, ch->what);
	fputs("}\n", p->out);
	return 0;
}

int change_list_print(const struct change_list *list,
		      const struct change_print *p)
{
	size_t i;
	int ret;

	for (i = 0; i < list->count; i++) {
		if (!p->json) {
			print_text(&list->items[i], p);
			continue;
		}
		ret = print_json(&list->items[i], p);
		if (ret)
			return ret;
	}
	return ferror(p->out) ? -EIO : 0;
}

void change_list_summary(const struct change_list *list, FILE *out)
{
	size_t removed = 0, added = 0, renamed = 0, modified = 0;
	size_t i;

	for (i = 0; i < list->count; i++) {
		switch (list->items[i].kind) {
		case '-':
			removed++;
			break;
		case '+':
			added++;
			break;
		case 'R':
			renamed++;
			break;
		default:
			modified++;
		}
	}
	fprintf(out, "Changes: %zu removed, %zu added, %zu renamed, %zu modified\n",
		removed, added, renamed, modified);
}
