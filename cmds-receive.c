// SPDX-License-Identifier: GPL-2.0-only
/*
 * btrfs receive: options, the input, and the loop that feeds the parser's
 * commands to a callback table (the dump table for --dump).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "receive-dump.h"
#include "send-stream.h"
#include "utils.h"

struct receive_opts {
	const char *file;
	const char *dest;
	const char *root_mount;
	uint64_t max_errors;
	bool honor_end;
	bool chroot;
	bool force_decompress;
	bool dump;
};

static const char receive_usage[] =
	"usage: btrfs receive [options] <mount>\n"
	"       btrfs receive --dump [options]\n"
	"\n"
	"    Receive subvolumes from a stream\n"
	"\n"
	"    Recreates under MOUNT the subvolumes that 'btrfs send' wrote into\n"
	"    the stream, then makes each read-only. It fails if a subvolume of\n"
	"    the same name exists already, or if the parent of an incremental\n"
	"    stream was changed after it was received.\n"
	"\n"
	"    -q|--quiet            print only errors\n"
	"    -f FILE               read the stream from FILE instead of stdin\n"
	"    -e                    stop after the first END command; without it\n"
	"                          receive goes on until the end of the input\n"
	"    -C|--chroot           confine the process to <mount> with chroot\n"
	"    -E|--max-errors NERR  stop after NERR failed commands (default 1,\n"
	"                          0 means no limit)\n"
	"    -m ROOTMOUNT          the mount point of the destination filesystem,\n"
	"                          when /proc is not available to find it\n"
	"    --force-decompress    write compressed data decompressed, never\n"
	"                          with encoded I/O\n"
	"    --dump                print the stream's commands, one line each,\n"
	"                          and apply nothing (no <mount> needed)\n"
	"    -v|--verbose          print more; repeat for more still\n"
	"\n"
	"    Global options:\n"
	"    -v|--verbose          increase output verbosity\n"
	"    -q|--quiet            print only errors\n";

static int receive_run(int argc, char **argv);

const struct command cmd_receive = {
	.name = "receive",
	.run = receive_run,
	.usage = receive_usage,
	.summary = "btrfs receive [options] <mount>\n"
		   "    btrfs receive --dump [options]\n"
		   "        Receive subvolumes from a stream",
};

enum {
	OPT_FORCE_DECOMPRESS = 256,
	OPT_DUMP,
	OPT_HELP,
};

static int bad_usage(const char *fmt, const char *arg)
{
	fputs("btrfs receive: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs("\nTry 'btrfs receive --help' for more information\n", stderr);
	return 1;
}

/* Returns 0 to go on, or the exit status when there is nothing to do. */
static int parse_options(int argc, char **argv, struct receive_opts *o,
			 int *status)
{
	static const struct option long_options[] = {
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "chroot", no_argument, NULL, 'C' },
		{ "max-errors", required_argument, NULL, 'E' },
		{ "force-decompress", no_argument, NULL, OPT_FORCE_DECOMPRESS },
		{ "dump", no_argument, NULL, OPT_DUMP },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":CeE:f:m:qv", long_options,
				NULL)) != -1) {
		switch (c) {
		case 'v':
			verbosity++;
			break;
		case 'q':
			verbosity = 0;
			break;
		case 'f':
			o->file = optarg;
			break;
		case 'e':
			o->honor_end = true;
			break;
		case 'C':
			o->chroot = true;
			break;
		case 'E':
			if (parse_u64(optarg, &o->max_errors)) {
				error("invalid value for --max-errors: %s",
				      optarg);
				*status = 1;
				return 1;
			}
			break;
		case 'm':
			o->root_mount = optarg;
			break;
		case OPT_FORCE_DECOMPRESS:
			o->force_decompress = true;
			break;
		case OPT_DUMP:
			o->dump = true;
			break;
		case OPT_HELP:
			*status = usage_exit(&cmd_receive, 0);
			return 1;
		case ':':
			*status = bad_usage("option '%s' requires an argument",
					    argv[optind - 1]);
			return 1;
		default:
			if (optopt) {
				char opt[3] = { '-', (char)optopt, 0 };

				*status = bad_usage("invalid option '%s'", opt);
			} else {
				*status = bad_usage("unrecognized option '%s'",
						    argv[optind - 1]);
			}
			return 1;
		}
	}
	if (o->dump) {
		if (optind != argc) {
			*status = bad_usage("--dump takes no <mount>: '%s'",
					    argv[optind]);
			return 1;
		}
		return 0;
	}
	if (optind + 1 != argc) {
		*status = bad_usage("%s", optind == argc ?
				    "missing <mount>" : "too many arguments");
		return 1;
	}
	o->dest = argv[optind];
	return 0;
}

static int open_input(const struct receive_opts *o)
{
	int fd;

	if (!o->file)
		return STDIN_FILENO;
	fd = open(o->file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		error("cannot open %s: %m", o->file);
		return -errno;
	}
	return fd;
}

/*
 * Unlike btrfs-progs 6.2, which stops after the first, every stream of a
 * concatenated input is dumped; -e stops at the first END command.
 */
static int dump_stream(const struct receive_opts *o, int fd)
{
	static char outbuf[64 * 1024];
	struct send_stream *s;
	struct dump_ctx ctx;
	int ret;

	setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
	dump_ctx_init(&ctx, stdout);
	ret = send_stream_open(&s, fd);
	if (ret < 0) {
		error("cannot set up the stream parser: %s", strerror(-ret));
		return ret;
	}
	for (;;) {
		ret = send_stream_next(s, &dump_ops, &ctx);
		if (ret == SEND_STREAM_EOF || (ret == SEND_STREAM_END &&
					       o->honor_end))
			break;
		if (ret < 0) {
			error("%s", send_stream_error(s));
			goto out;
		}
	}
	ret = 0;
	if (send_stream_header_count(s) == 0) {
		error("no send stream in the input: it is empty");
		ret = -ENODATA;
	}
out:
	send_stream_close(s);
	if (fflush(stdout) || ferror(stdout)) {
		error("cannot write the dump: %m");
		if (!ret)
			ret = -EIO;
	}
	return ret;
}

static int receive_run(int argc, char **argv)
{
	struct receive_opts o = { .max_errors = 1 };
	int status = 0;
	int fd;
	int ret;

	if (parse_options(argc, argv, &o, &status))
		return status;
	if (!o.dump) {
		error("receive: applying a stream is not implemented yet, only --dump");
		return 1;
	}
	fd = open_input(&o);
	if (fd < 0)
		return 1;
	ret = dump_stream(&o, fd);
	if (fd != STDIN_FILENO)
		close(fd);
	return ret < 0 ? 1 : 0;
}
