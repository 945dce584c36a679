// SPDX-License-Identifier: GPL-2.0-only
/*
 * The model of --changes, fed command by command as the kernel sends
 * them: the list it makes from a stream alone, and how it prints it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "changes.h"

static const struct send_stream_ops *ops = &changes_ops;

static struct changes *incremental(void)
{
	struct changes *c = changes_new();
	static const uint8_t uuid[16];

	assert_non_null(c);
	assert_int_equal(ops->snapshot("snap", uuid, 2, uuid, 1, c), 0);
	return c;
}

/* The list, printed as text, one string. */
static char *listed(struct changes *c, bool file_type)
{
	struct change_list list = { 0 };
	struct change_print p = { .file_type = file_type, .prefix = "" };
	char *text = NULL;
	size_t len = 0;

	p.out = open_memstream(&text, &len);
	assert_non_null(p.out);
	assert_int_equal(changes_take(c, NULL, NULL, &list), 0);
	assert_int_equal(change_list_print(&list, &p), 0);
	fclose(p.out);
	change_list_free(&list);
	changes_free(c);
	return text;
}

static void assert_listed(struct changes *c, const char *expected)
{
	char *text = listed(c, false);

	assert_string_equal(text, expected);
	free(text);
}

static void test_directory_renamed_with_a_changed_child(void **state)
{
	struct changes *c = incremental();

	(void)state;
	assert_int_equal(ops->rename("a", "z", c), 0);
	assert_int_equal(ops->update_extent("z/b/f", 0, 8, c), 0);
	assert_int_equal(ops->utimes("", NULL, NULL, NULL, c), 0);
	assert_listed(c, "M\t/\nR\t/a\t/z\nM\t/z/b/f\n");
}

/* mv x tmp; mv y x; mv tmp y, as the kernel sends it: an orphan name. */
static void test_swap_through_an_orphan_name(void **state)
{
	struct changes *c = incremental();

	(void)state;
	assert_int_equal(ops->rename("x", "o258-5-0", c), 0);
	assert_int_equal(ops->rename("y", "x", c), 0);
	assert_int_equal(ops->rename("o258-5-0", "y", c), 0);
	assert_listed(c, "M\t/\nR\t/x\t/y\nR\t/y\t/x\n");
}

static void test_rename_cycle_of_three(void **state)
{
	struct changes *c = incremental();

	(void)state;
	assert_int_equal(ops->rename("d/a", "o260-5-0", c), 0);
	assert_int_equal(ops->rename("d/c", "d/a", c), 0);
	assert_int_equal(ops->rename("d/b", "d/c", c), 0);
	assert_int_equal(ops->rename("o260-5-0", "d/b", c), 0);
	assert_listed(c, "M\t/d\nR\t/d/a\t/d/b\nR\t/d/b\t/d/c\n"
			 "R\t/d/c\t/d/a\n");
}

/* A name given to a new inode: a '-' and a '+' on one path. */
static void test_file_that_becomes_a_directory(void **state)
{
	struct changes *c = incremental();

	(void)state;
	assert_int_equal(ops->unlink("d/k", c), 0);
	assert_int_equal(ops->mkdir("o265-8-0", c), 0);
	assert_int_equal(ops->rename("o265-8-0", "d/k", c), 0);
	assert_int_equal(ops->mkfile("o266-8-0", c), 0);
	assert_int_equal(ops->rename("o266-8-0", "d/k/new", c), 0);
	assert_listed(c, "M\t/d\n+\t/d/k\n-\t/d/k\n+\t/d/k/new\n");
}

static void test_hard_link_added_and_removed(void **state)
{
	struct changes *c = incremental();

	(void)state;
	assert_int_equal(ops->link("e/second", "e/first", c), 0);
	assert_int_equal(ops->unlink("f/gone", c), 0);
	assert_listed(c, "M\t/e\n+\t/e/second\nM\t/f\n-\t/f/gone\n");
}

/* Made and removed between the snapshots: the stream never names it. */
/* A refiner that says every inode is number 7, with two links. */
static int one_linked_inode(struct change_inode *ci, void *arg)
{
	(void)arg;
	ci->ino = 7;
	ci->nlink_before = 2;
	ci->nlink_after = 2;
	return 0;
}

/*
 * ln k k2 in the parent; mkdir d; mv k d/k; touch k2: the stream names
 * the inode by two paths it never links, so the model holds two nodes.
 */
static void test_hard_linked_inode_has_one_m(void **state)
{
	struct change_list list = { 0 };
	struct changes *c = incremental();

	(void)state;
	assert_int_equal(ops->mkdir("o300-5-0", c), 0);
	assert_int_equal(ops->rename("o300-5-0", "d", c), 0);
	assert_int_equal(ops->link("d/k", "k", c), 0);
	assert_int_equal(ops->unlink("k", c), 0);
	assert_int_equal(ops->utimes("k2", NULL, NULL, NULL, c), 0);
	assert_int_equal(ops->utimes("d/k", NULL, NULL, NULL, c), 0);
	assert_int_equal(changes_take(c, one_linked_inode, NULL, &list), 0);
	/* M / (d is new), + /d, + /d/k, M /d/k (the first name), - /k. */
	assert_int_equal(list.count, 5);
	assert_int_equal(list.items[2].kind, '+');
	assert_int_equal(list.items[3].kind, 'M');
	assert_string_equal(list.items[3].path, "/d/k");
	assert_int_equal(list.items[4].kind, '-');
	assert_string_equal(list.items[4].path, "/k");
	change_list_free(&list);
	changes_free(c);
}

static void test_removed_directory_lists_its_entries(void **state)
{
	struct changes *c = incremental();

	(void)state;
	assert_int_equal(ops->unlink("d/a", c), 0);
	assert_int_equal(ops->rmdir("d", c), 0);
	assert_listed(c, "M\t/\n-\t/d\n-\t/d/a\n");
}

static void test_attributes_are_what_the_stream_says(void **state)
{
	struct changes *c = incremental();
	struct change_list list = { 0 };

	(void)state;
	assert_int_equal(ops->chmod("m", 0600, c), 0);
	assert_int_equal(ops->chown("o", 1, 2, c), 0);
	assert_int_equal(ops->set_xattr("x", "user.a", "1", 1, c), 0);
	assert_int_equal(ops->truncate("t", 0, c), 0);
	assert_int_equal(ops->utimes("u", NULL, NULL, NULL, c), 0);
	assert_int_equal(changes_take(c, NULL, NULL, &list), 0);
	assert_int_equal(list.count, 5);
	assert_int_equal(list.items[0].what, CHANGED_MODE);
	assert_int_equal(list.items[1].what, CHANGED_OWNER | CHANGED_GROUP);
	assert_int_equal(list.items[2].what, CHANGED_SIZE);
	assert_int_equal(list.items[3].what, CHANGED_TIMES);
	assert_int_equal(list.items[4].what, CHANGED_XATTR);
	change_list_free(&list);
	changes_free(c);
}

/* A full stream: every name is new, the top directory is not listed. */
static void test_full_stream_lists_every_name_as_new(void **state)
{
	struct changes *c = changes_new();
	static const uint8_t uuid[16];

	(void)state;
	assert_int_equal(ops->subvol("s", uuid, 1, c), 0);
	assert_int_equal(ops->mkdir("o257-1-0", c), 0);
	assert_int_equal(ops->rename("o257-1-0", "d", c), 0);
	assert_int_equal(ops->symlink("o258-1-0", "t", c), 0);
	assert_int_equal(ops->rename("o258-1-0", "d/l", c), 0);
	assert_int_equal(ops->utimes("", NULL, NULL, NULL, c), 0);
	assert_int_equal(ops->unlink("elsewhere", c), -ENOENT);
	assert_listed(c, "+\t/d\n+\t/d/l\n");
}

static void test_stream_that_contradicts_itself_is_refused(void **state)
{
	struct changes *c = incremental();

	(void)state;
	assert_int_equal(ops->unlink("a", c), 0);
	assert_int_equal(ops->unlink("a", c), -ENOENT);
	assert_int_equal(ops->mkfile("b", c), 0);
	assert_int_equal(ops->mkfile("b", c), -EEXIST);
	assert_int_equal(ops->mkdir("d", c), 0);
	assert_int_equal(ops->rename("d", "d/e/f", c), -ENOENT);
	assert_int_equal(ops->rename("old", "old/in/itself", c), -EINVAL);
	assert_int_equal(ops->update_extent("b/x", 0, 1, c), -ENOTDIR);
	changes_free(c);
}

static void test_names_are_escaped(void **state)
{
	struct changes *c = incremental();
	char *text;

	(void)state;
	assert_int_equal(ops->mkfile("tab\there", c), 0);
	assert_int_equal(ops->mkfile("new\nline", c), 0);
	assert_int_equal(ops->mkfile("back\\slash and space", c), 0);
	assert_int_equal(ops->mkfile("\xff\x01\x7f", c), 0);
	text = listed(c, true);
	assert_string_equal(text, "M\t/\t/\n"
				  "+\tF\t/back\\\\slash and space\n"
				  "+\tF\t/new\\nline\n"
				  "+\tF\t/tab\\there\n"
				  "+\tF\t/\\377\\001\\177\n");
	free(text);
}

static void test_json_line_has_every_field(void **state)
{
	struct changes *c = incremental();
	struct change_list list = { 0 };
	struct change_print p = { .json = true, .prefix = "/mnt/s" };
	char *text = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(ops->rename("a\xff", "b", c), 0);
	assert_int_equal(ops->chmod("b", 0600, c), 0);
	assert_int_equal(ops->link("c", "b", c), 0);
	assert_int_equal(changes_take(c, NULL, NULL, &list), 0);
	p.out = open_memstream(&text, &len);
	assert_int_equal(change_list_print(&list, &p), 0);
	fclose(p.out);
	assert_string_equal(text,
		"{\"change\": \"M\", \"path\": \"/mnt/s/\", \"type\": \"dir\", \"links\": 0, \"what\": [\"entries\"]}\n"
		"{\"change\": \"-\", \"path\": \"/mnt/s/a\\udcff\", \"type\": \"unknown\", \"links\": -1, \"what\": []}\n"
		"{\"change\": \"+\", \"path\": \"/mnt/s/b\", \"type\": \"unknown\", \"links\": 1, \"what\": []}\n"
		"{\"change\": \"M\", \"path\": \"/mnt/s/b\", \"type\": \"unknown\", \"links\": 0, \"what\": [\"mode\"]}\n"
		"{\"change\": \"+\", \"path\": \"/mnt/s/c\", \"type\": \"unknown\", \"links\": 1, \"what\": []}\n");
	free(text);
	change_list_free(&list);
	changes_free(c);
}

/* Two subvolumes in one stream: the first list comes out at the second. */
static int take_first(struct changes *c, void *arg)
{
	return changes_take(c, NULL, NULL, arg);
}

static void test_second_subvolume_starts_a_new_list(void **state)
{
	struct changes *c = changes_new();
	struct change_list first = { 0 }, second = { 0 };
	static const uint8_t uuid[16];

	(void)state;
	changes_set_subvol_hook(c, take_first, &first);
	assert_int_equal(ops->subvol("s1", uuid, 1, c), 0);
	assert_int_equal(ops->mkfile("f", c), 0);
	assert_int_equal(ops->snapshot("s2", uuid, 2, uuid, 1, c), 0);
	assert_int_equal(ops->unlink("f", c), 0);
	assert_int_equal(changes_take(c, NULL, NULL, &second), 0);
	assert_int_equal(first.count, 1);
	assert_int_equal(first.items[0].kind, '+');
	assert_int_equal(second.count, 2);
	assert_int_equal(second.items[1].kind, '-');
	change_list_free(&first);
	change_list_free(&second);
	changes_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_directory_renamed_with_a_changed_child),
		cmocka_unit_test(test_swap_through_an_orphan_name),
		cmocka_unit_test(test_rename_cycle_of_three),
		cmocka_unit_test(test_file_that_becomes_a_directory),
		cmocka_unit_test(test_hard_link_added_and_removed),
		cmocka_unit_test(test_hard_linked_inode_has_one_m),
		cmocka_unit_test(test_removed_directory_lists_its_entries),
		cmocka_unit_test(test_attributes_are_what_the_stream_says),
		cmocka_unit_test(test_full_stream_lists_every_name_as_new),
		cmocka_unit_test(test_stream_that_contradicts_itself_is_refused),
		cmocka_unit_test(test_names_are_escaped),
		cmocka_unit_test(test_json_line_has_every_field),
		cmocka_unit_test(test_second_subvolume_starts_a_new_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
