// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer harness: the parser with the receive table, applied inside a
 * throw-away directory of a loop-mounted btrfs named by FUZZ_RECEIVE_DIR
 * (tests/run-fuzz.sh sets one up).  After each input everything received
 * is deleted, and nothing may have appeared outside the directory: the
 * harness aborts if the canary beside it changes.
 */
#include <btrfsutil.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "receive-apply.h"
#include "receive-btrfs.h"
#include "send-stream.h"
#include "utils.h"

static const char *base;
static char dest[4096];
static char canary_dir[4096];
static int base_fd = -1;

static void remove_tree(int parent_fd, const char *name);

static void empty_dir(int fd)
{
	DIR *d = fdopendir(fcntl(fd, F_DUPFD_CLOEXEC, 0));
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		remove_tree(fd, e->d_name);
	}
	closedir(d);
}

/* Received subvolumes are read-only: make them writable, then delete. */
static void remove_tree(int parent_fd, const char *name)
{
	struct stat st;
	int fd;

	if (fstatat(parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlinkat(parent_fd, name, 0);
		return;
	}
	fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	if (fd < 0)
		return;
	if (st.st_ino == 256) {
		btrfs_util_set_subvolume_read_only_fd(fd, false);
		close(fd);
		btrfs_util_delete_subvolume_fd(parent_fd, name,
					       BTRFS_UTIL_DELETE_SUBVOLUME_RECURSIVE);
		return;
	}
	empty_dir(fd);
	close(fd);
	unlinkat(parent_fd, name, AT_REMOVEDIR);
}

static void check_canary(void)
{
	DIR *d = opendir(canary_dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		abort();
	while ((e = readdir(d)))
		n++;
	closedir(d);
	/* ".", ".." and the one file put there. */
	if (n != 3) {
		fprintf(stderr, "fuzz-receive: something escaped into %s\n",
			canary_dir);
		abort();
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	base = getenv("FUZZ_RECEIVE_DIR");
	if (!base) {
		fprintf(stderr, "fuzz-receive: set FUZZ_RECEIVE_DIR to a directory on btrfs\n");
		exit(1);
	}
	snprintf(dest, sizeof(dest), "%s/dest", base);
	snprintf(canary_dir, sizeof(canary_dir), "%s/canary", base);
	mkdir(dest, 0755);
	mkdir(canary_dir, 0755);
	close(open(strcat(strcpy((char[4200]){ 0 }, canary_dir), "/file"),
		   O_CREAT | O_WRONLY, 0600));
	base_fd = open(base, O_RDONLY | O_DIRECTORY);
	verbosity = 0;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct receive_btrfs_opts opts = { .dest = dest };
	struct receive_ctx ctx;
	struct send_stream *s;
	int fd, dest_fd, ret, errors = 0, steps = 0;

	fd = memfd_create("fuzz", MFD_CLOEXEC);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	lseek(fd, 0, SEEK_SET);
	if (send_stream_open(&s, fd) < 0 || receive_btrfs_open(&ctx, &opts) < 0)
		abort();
	do {
		ret = send_stream_next(s, &receive_apply_ops, &ctx);
		if (ret < 0 && send_stream_failed_in_callback(s) &&
		    ++errors < 20)
			ret = 0;
	} while (ret >= 0 && ret != SEND_STREAM_EOF && ++steps < 10000);
	send_stream_close(s);
	receive_ctx_release(&ctx);
	close(fd);
	if (chdir("/") < 0)
		abort();
	dest_fd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dest_fd < 0)
		abort();
	empty_dir(dest_fd);
	close(dest_fd);
	check_canary();
	return 0;
}
