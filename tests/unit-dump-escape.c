// SPDX-License-Identifier: GPL-2.0-only
/*
 * How the text dump prints paths: spaces, backslashes and control bytes
 * as C escapes, other bytes outside printable ASCII in octal, the
 * subvolume's path escaped in front, the padding to 32 columns.  Driven
 * through dump_ops into a memory stream; the expected lines are what
 * btrfs-progs 6.2's "btrfs receive --dump" prints for the same commands.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "receive-dump.h"

static const uint8_t uuid[16] = {
	0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
	0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };

struct dump_out {
	struct dump_ctx ctx;
	char *text;
	size_t len;
	FILE *f;
};

static void dump_open(struct dump_out *d)
{
	d->text = NULL;
	d->f = open_memstream(&d->text, &d->len);
	assert_non_null(d->f);
	dump_ctx_init(&d->ctx, d->f);
}

static void dump_expect(struct dump_out *d, const char *want)
{
	assert_int_equal(fclose(d->f), 0);
	assert_string_equal(d->text, want);
	free(d->text);
}

static void test_file_name_bytes_escaped(void **state)
{
	struct dump_out d;

	(void)state;
	dump_open(&d);
	assert_int_equal(dump_ops.subvol("sub a\\b", uuid, 7, &d.ctx), 0);
	assert_int_equal(dump_ops.mkfile("a\tb\nc\\d\a\b\033\f\r\v\177"
					 "\303\251\001\200\377", &d.ctx), 0);
	assert_int_equal(dump_ops.mkfile("plain name", &d.ctx), 0);
	dump_expect(&d,
		"subvol          ./sub\\ a\\\\b                     uuid=00112233-4455-6677-8899-aabbccddeeff transid=7\n"
		"mkfile          ./sub\\ a\\\\b/a\\tb\\nc\\\\d\\a\\b\\e\\f\\r\\v\\177\\303\\251\\001\\200\\377\n"
		"mkfile          ./sub\\ a\\\\b/plain\\ name\n");
}

static void test_second_paths_escaped_as_progs_does(void **state)
{
	struct dump_out d;

	(void)state;
	dump_open(&d);
	assert_int_equal(dump_ops.subvol("sub a\\b", uuid, 7, &d.ctx), 0);
	assert_int_equal(dump_ops.rename("a b", "c d\001", &d.ctx), 0);
	assert_int_equal(dump_ops.symlink("sym x", "/etc/ pass\nwd\377",
					  &d.ctx), 0);
	assert_int_equal(dump_ops.link("l k", "t g\002", &d.ctx), 0);
	dump_expect(&d,
		"subvol          ./sub\\ a\\\\b                     uuid=00112233-4455-6677-8899-aabbccddeeff transid=7\n"
		"rename          ./sub\\ a\\\\b/a\\ b                dest=./sub\\ a\\\\b/c\\ d\\001\n"
		"symlink         ./sub\\ a\\\\b/sym\\ x              dest=/etc/\\ pass\\nwd\\377\n"
		"link            ./sub\\ a\\\\b/l\\ k                dest=t\\ g\\002\n");
}

/* btrfs-progs prints a clone's source and an xattr's name unescaped. */
static void test_clone_source_and_xattr_printed_raw(void **state)
{
	struct dump_out d;

	(void)state;
	dump_open(&d);
	assert_int_equal(dump_ops.subvol("sub a\\b", uuid, 7, &d.ctx), 0);
	assert_int_equal(dump_ops.clone("f", 0, 4096, uuid, 3, "g h\001", 8192,
					&d.ctx), 0);
	assert_int_equal(dump_ops.set_xattr("f", "user.a b\001",
					    "va\001\nl\0ue", 8, &d.ctx), 0);
	dump_expect(&d,
		"subvol          ./sub\\ a\\\\b                     uuid=00112233-4455-6677-8899-aabbccddeeff transid=7\n"
		"clone           ./sub\\ a\\\\b/f                   offset=0 len=4096 from=./sub a\\b/g h\001 clone_offset=8192\n"
		"set_xattr       ./sub\\ a\\\\b/f                   name=user.a b\001 data=va\001\nl len=8\n");
}

/* The path column is 32 wide with at least one space after it. */
static void test_path_padding_edges(void **state)
{
	struct dump_out d;

	(void)state;
	dump_open(&d);
	assert_int_equal(dump_ops.chmod("123456789012345678901234567890",
					0755, &d.ctx), 0);
	assert_int_equal(dump_ops.chmod("1234567890123456789012345678901",
					0755, &d.ctx), 0);
	assert_int_equal(dump_ops.chmod("\001\001\001\001\001\001\001", 0755,
					&d.ctx), 0);
	assert_int_equal(dump_ops.subvol("sub a\\b", uuid, 7, &d.ctx), 0);
	assert_int_equal(dump_ops.chmod("123456789012345678901234567", 0755,
					&d.ctx), 0);
	assert_int_equal(dump_ops.chmod("1234567890123456789012345678", 0755,
					&d.ctx), 0);
	dump_expect(&d,
		"chmod           ./123456789012345678901234567890 mode=755\n"
		"chmod           ./1234567890123456789012345678901 mode=755\n"
		"chmod           ./\\001\\001\\001\\001\\001\\001\\001  mode=755\n"
		"subvol          ./sub\\ a\\\\b                     uuid=00112233-4455-6677-8899-aabbccddeeff transid=7\n"
		"chmod           ./sub\\ a\\\\b/123456789012345678901234567 mode=755\n"
		"chmod           ./sub\\ a\\\\b/1234567890123456789012345678 mode=755\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_name_bytes_escaped),
		cmocka_unit_test(test_second_paths_escaped_as_progs_does),
		cmocka_unit_test(test_clone_source_and_xattr_printed_raw),
		cmocka_unit_test(test_path_padding_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
