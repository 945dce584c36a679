// SPDX-License-Identifier: GPL-2.0-only
/*
 * btrfs receive: options, the input, and the loop that feeds the parser's
 * commands to a callback table (the dump table for --dump).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <btrfsutil.h>
#include <limits.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "changes.h"
#include "commands.h"
#include "progress.h"
#include "progress-json.h"
#include "progress-tty.h"
#include "receive-btrfs.h"
#include "receive-dir.h"
#include "receive-dump.h"
#include "receive-resume.h"
#include "send-stream.h"
#include "utils.h"

struct receive_opts {
	const char *file;
	const char *dest;
	const char *root_mount;
	const char *to_dir;
	uint64_t max_errors;
	bool honor_end;
	bool chroot;
	bool force_decompress;
	bool dump;
	bool changes;			/* --changes: list what changed */
	bool file_type;			/* --file-type: with a type column */
	bool resume;
	const char *resume_token;	/* DEST/NAME */
	const char *abort;		/* DEST/NAME */
	bool progress;
	uint64_t expected_size;		/* 0: not given */
};

static const char receive_usage[] =
	"usage: btrfs receive [options] <mount>\n"
	"       btrfs receive [options] --to-dir <dir>\n"
	"       btrfs receive --dump [options]\n"
	"       btrfs receive --changes [options]\n"
	"       btrfs receive --resume-token <mount>/<name>\n"
	"       btrfs receive --abort <mount>/<name>\n"
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
	"    --changes             print what the stream changes, one line each,\n"
	"                          as 'zfs diff -H', and apply nothing\n"
	"    --file-type           with --changes, a column with each file's type\n"
	"    --to-dir DIR          receive onto any filesystem: subvolumes become\n"
	"                          directories under DIR (instead of <mount>)\n"
	"    --progress            show a status line on stderr (bytes, rate,\n"
	"                          time, commands, path; percent and ETA when\n"
	"                          the size is known) and a summary at the end\n"
	"    --expected-size N     the stream's size for --progress when it\n"
	"                          comes from a pipe (k, M, G, T suffixes), e.g.\n"
	"                          from 'btrfs send --estimate -q'\n"
	"    --resume              the input is the whole stream of an interrupted\n"
	"                          receive: check and skip what was applied, apply\n"
	"                          the rest (a continuation from 'btrfs send\n"
	"                          --resume' is recognized without this option)\n"
	"    --resume-token <mount>/<name>\n"
	"                          print the token with which 'btrfs send --resume'\n"
	"                          continues the interrupted receive of <name>\n"
	"    --abort <mount>/<name>\n"
	"                          delete the partial subvolume <name> of an\n"
	"                          interrupted receive and its resume state\n"
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
	OPT_CHANGES,
	OPT_FILE_TYPE,
	OPT_RESUME,
	OPT_RESUME_TOKEN,
	OPT_ABORT,
	OPT_TO_DIR,
	OPT_PROGRESS,
	OPT_EXPECTED_SIZE,
	OPT_HELP,
};

/* --to-dir DIR stands for <mount>; -m names a btrfs mount, meaningless. */
static int check_to_dir_options(const struct receive_opts *o, int argc,
				char **argv, int *status)
{
	if (optind != argc) {
		*status = usage_error(&cmd_receive, "--to-dir takes no <mount>: '%s'",
				      argv[optind]);
		return 1;
	}
	if (o->root_mount) {
		*status = usage_error(&cmd_receive, "%s cannot be used with --to-dir",
				      "-m");
		return 1;
	}
	return 0;
}

/*
 * One option of getopt_long(): 0 to go on, or 1 with *status set when
 * there is nothing more to do.
 */
static int take_option(int c, char **argv, struct receive_opts *o,
		       int *status)
{
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
	case OPT_CHANGES:
		o->changes = true;
		break;
	case OPT_FILE_TYPE:
		o->file_type = true;
		break;
	case OPT_RESUME:
		o->resume = true;
		break;
	case OPT_RESUME_TOKEN:
		o->resume_token = optarg;
		break;
	case OPT_ABORT:
		o->abort = optarg;
		break;
	case OPT_TO_DIR:
		o->to_dir = optarg;
		break;
	case OPT_PROGRESS:
		o->progress = true;
		break;
	case OPT_EXPECTED_SIZE:
		if (parse_size(optarg, &o->expected_size)) {
			error("invalid value for --expected-size: %s",
			      optarg);
			*status = 1;
			return 1;
		}
		break;
	case OPT_HELP:
		*status = print_usage(&cmd_receive, 0);
		return 1;
	default:
		*status = option_error(&cmd_receive, c, argv);
		return 1;
	}
	return 0;
}

/* --dump or --changes: the options that print the stream, apply nothing. */
static const char *print_action(const struct receive_opts *o)
{
	return o->changes ? "--changes" : o->dump ? "--dump" : NULL;
}

/* The options of a printing action: 0 to go on, or 1 with *status set. */
static int check_print_action(int argc, char **argv,
			      const struct receive_opts *o, int *status)
{
	const char *action = print_action(o);
	char msg[64];

	if (o->dump && o->changes) {
		*status = usage_error(&cmd_receive, "%s",
				      "--changes cannot be used with --dump");
		return 1;
	}
	if (o->resume) {
		*status = usage_error(&cmd_receive,
				      "--resume cannot be used with %s", action);
		return 1;
	}
	if (o->to_dir) {
		*status = usage_error(&cmd_receive, "%s cannot be used with --to-dir",
				      action);
		return 1;
	}
	if (optind != argc) {
		snprintf(msg, sizeof(msg), "%s takes no <mount>: '%%s'", action);
		*status = usage_error(&cmd_receive, msg, argv[optind]);
		return 1;
	}
	return 0;
}

/*
 * Which action the options ask for, and whether the arguments fit it:
 * 0 to go on, or 1 with *status set.
 */
static int check_action(int argc, char **argv, struct receive_opts *o,
			int *status)
{
	if (o->resume_token || o->abort) {
		if (optind != argc || (o->resume_token && o->abort) ||
		    print_action(o) || o->resume || o->to_dir) {
			*status = usage_error(&cmd_receive, "%s",
				"--resume-token and --abort take one <mount>/<name> and no other action");
			return 1;
		}
		return 0;
	}
	if (o->file_type && !o->changes) {
		*status = usage_error(&cmd_receive, "%s",
				      "--file-type needs --changes");
		return 1;
	}
	if (print_action(o))
		return check_print_action(argc, argv, o, status);
	if (o->to_dir && o->resume) {
		*status = usage_error(&cmd_receive, "%s",
				      "--resume cannot be used with --to-dir");
		return 1;
	}
	if (o->to_dir)
		return check_to_dir_options(o, argc, argv, status);
	if (optind + 1 != argc) {
		*status = usage_error(&cmd_receive, "%s",
				     optind == argc ?
				    "missing <mount>" : "too many arguments");
		return 1;
	}
	o->dest = argv[optind];
	return 0;
}

/*
 * --format json where receive writes JSON: the dump, the progress lines.
 * Anywhere else it would be ignored in silence.
 */
static int check_format(const struct receive_opts *o, int *status)
{
	if (output_format != OUTPUT_JSON)
		return 0;
	if ((print_action(o) || o->progress) && !o->resume_token && !o->abort)
		return 0;
	error("--format json is supported by receive only with --dump or --progress");
	*status = 1;
	return 1;
}

/* Returns 0 to go on, or 1 with *status set when there is nothing to do. */
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
		{ "changes", no_argument, NULL, OPT_CHANGES },
		{ "file-type", no_argument, NULL, OPT_FILE_TYPE },
		{ "resume", no_argument, NULL, OPT_RESUME },
		{ "resume-token", required_argument, NULL, OPT_RESUME_TOKEN },
		{ "abort", required_argument, NULL, OPT_ABORT },
		{ "to-dir", required_argument, NULL, OPT_TO_DIR },
		{ "progress", no_argument, NULL, OPT_PROGRESS },
		{ "expected-size", required_argument, NULL, OPT_EXPECTED_SIZE },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":CeE:f:m:qv", long_options,
				NULL)) != -1) {
		if (take_option(c, argv, o, status))
			return 1;
	}
	return check_action(argc, argv, o, status) ?: check_format(o, status);
}

static int open_input(const struct receive_opts *o)
{
	int fd;

	if (!o->file) {
		pipe_grow(STDIN_FILENO, STREAM_PIPE_SIZE);
		return STDIN_FILENO;
	}
	fd = open(o->file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		error("cannot open %s: %m", o->file);
		return -errno;
	}
	return fd;
}

/* The total for --progress: --expected-size, else what a file has left. */
static uint64_t input_size(const struct receive_opts *o, int fd)
{
	struct stat st;
	off_t pos;

	if (o->expected_size)
		return o->expected_size;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	pos = lseek(fd, 0, SEEK_CUR);
	if (pos < 0 || pos > st.st_size)
		return 0;
	return st.st_size - pos;
}

/* After each command: the status line, when one is due. */
static inline void progress_tick(struct progress *p, struct send_stream *s)
{
	const char *path;
	size_t len = 0;

	uint64_t bytes, cmds;

	if (!p)
		return;
	bytes = send_stream_offset(s) - p->skip_bytes;
	cmds = send_stream_cmd_count(s) - p->skip_cmds;
	progress_note(p, bytes, cmds);
	if (!progress_due(p))
		return;
	path = send_stream_cmd_path(s, &len);
	progress_show(p, bytes, cmds, path, len);
}

/* After a resume, the figures count from where it took up the stream. */
static void progress_end(struct progress *p, struct send_stream *s)
{
	if (p)
		progress_finish(p, send_stream_offset(s) - p->skip_bytes,
				send_stream_cmd_count(s) - p->skip_cmds);
}

/* A loop hook: the status line after each command. */
static bool tick(struct send_stream *s, void *data)
{
	progress_tick(data, s);
	return false;
}

/* The parser skipped a stream sent again after a stopped sender. */
static void warn_restart(const struct send_stream_restart *r, void *user)
{
	(void)user;
	warning("the stream restarts at offset %llu (the sender was stopped and the kernel sent the subvolume again, btrfs-progs issue #719): %llu bytes repeated, checked and skipped",
		(unsigned long long)r->offset, (unsigned long long)r->skipped);
}

static int open_parser(struct send_stream **s, int fd)
{
	int ret = send_stream_open(s, fd);

	if (ret < 0)
		error("cannot set up the stream parser: %s", strerror(-ret));
	return ret;
}

/*
 * Feed every command of the input to ops, for what only prints: the
 * dumps and --changes.  Unlike btrfs-progs 6.2, which stops after the
 * first, every stream of a concatenated input is read; -e stops at the
 * first END command.  *parser, if given, is the parser while it runs.
 */
static int read_to_print(const struct receive_opts *o, int fd,
			 struct progress *prog, const struct send_stream_ops *ops,
			 void *user, const struct send_stream **parser)
{
	const struct send_stream_loop loop = {
		.stop_at_end = o->honor_end,
		.data = prog,
		.after = tick,
	};
	struct send_stream *s;
	int ret;

	ret = open_parser(&s, fd);
	if (ret < 0)
		return ret;
	if (parser)
		*parser = s;
	send_stream_set_restart_hook(s, warn_restart, NULL);
	ret = send_stream_run(s, ops, user, &loop);
	if (ret < 0) {
		error("%s", send_stream_error(s));
		goto out;
	}
	ret = 0;
	if (send_stream_header_count(s) == 0) {
		error("no send stream in the input: it is empty");
		ret = -ENODATA;
	}
out:
	progress_end(prog, s);
	send_stream_close(s);
	return ret;
}

/* What was printed reached stdout, or say what could not be written. */
static int flush_output(const char *what, int ret)
{
	if (fflush(stdout) || ferror(stdout)) {
		error("cannot write the %s: %m", what);
		if (!ret)
			ret = -EIO;
	}
	return ret;
}

static int dump_stream(const struct receive_opts *o, int fd,
		       struct progress *prog)
{
	static char outbuf[64 * 1024];
	const struct send_stream_ops *ops = output_format == OUTPUT_JSON ?
					    &dump_json_ops : &dump_ops;
	struct dump_ctx ctx;
	int ret;

	setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
	dump_ctx_init(&ctx, stdout);
	ret = read_to_print(o, fd, prog, ops, &ctx, &ctx.stream);
	return flush_output("dump", ret);
}

/* --changes: the list of each subvolume as its stream ends. */
static int print_changes(struct changes *c, void *arg)
{
	const struct change_print *p = arg;
	struct change_list list = { 0 };
	int ret;

	ret = changes_take(c, NULL, NULL, &list);
	if (!ret)
		ret = change_list_print(&list, p);
	if (!ret && verbosity >= 2)
		change_list_summary(&list, stderr);
	change_list_free(&list);
	return ret;
}

static int changes_stream(const struct receive_opts *o, int fd,
			  struct progress *prog)
{
	static char outbuf[64 * 1024];
	const struct change_print p = {
		.out = stdout,
		.json = output_format == OUTPUT_JSON,
		.file_type = o->file_type,
		.prefix = "",
	};
	struct changes *c;
	int ret;

	c = changes_new();
	if (!c) {
		error("not enough memory");
		return -ENOMEM;
	}
	setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
	changes_set_subvol_hook(c, print_changes, (void *)&p);
	ret = read_to_print(o, fd, prog, &changes_ops, c, NULL);
	if (!ret && changes_started(c)) {
		ret = print_changes(c, (void *)&p);
		if (ret)
			error("cannot list the changes: %s", strerror(-ret));
	}
	changes_free(c);
	return flush_output("list of changes", ret);
}

/* SIGINT and SIGTERM stop the receive between two commands. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
	stop_signal = sig;
}

static void catch_stop_signals(void)
{
	struct sigaction sa = { .sa_handler = on_stop_signal };

	/* No SA_RESTART: a blocked read returns EINTR and the loop stops. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/*
 * The directory cache of the applier holds up to half the fds allowed:
 * the usual soft limit of 1024 would keep it small.
 */
#define RECEIVE_FD_LIMIT	4096

static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < RECEIVE_FD_LIMIT) {
		rl.rlim_cur = rl.rlim_max < RECEIVE_FD_LIMIT ?
			      rl.rlim_max : RECEIVE_FD_LIMIT;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

struct apply_loop {
	const struct receive_opts *o;
	struct receive_ctx *ctx;
	struct progress *prog;
	struct receive_stop stop;
};

static bool apply_before(struct send_stream *s, void *data)
{
	struct apply_loop *l = data;

	if (stop_signal) {
		error("stopped by signal %d", (int)stop_signal);
		l->stop.stream_broken = true;
		return true;
	}
	send_stream_position(s, &l->stop.before);
	return false;
}

/*
 * A failed command counts against --max-errors and keeps its subvolume
 * from being marked received.
 */
static bool apply_failed(struct send_stream *s, int err, void *data)
{
	struct apply_loop *l = data;
	bool stop;

	if (verbosity >= 2)
		status_line_printf(stderr, "%s\n", send_stream_error(s));
	l->ctx->cur.failed = true;
	l->stop.errors++;
	stop = l->o->max_errors && l->stop.errors >= l->o->max_errors;
	l->stop.retry_last = stop &&
			     resume_retry_is_safe(send_stream_cmd_type(s), err);
	return stop;
}

static bool tick_apply(struct send_stream *s, void *data)
{
	struct apply_loop *l = data;

	return tick(s, l->prog);
}

/* A broken stream stops everything at once. */
static void run_apply_loop(struct send_stream *s, struct apply_loop *l)
{
	const struct send_stream_loop loop = {
		.stop_at_end = l->o->honor_end,
		.data = l,
		.before = apply_before,
		.callback_failed = apply_failed,
		.after = tick_apply,
	};
	int ret;

	ret = send_stream_run(s, &receive_apply_ops, l->ctx, &loop);
	if (ret < 0 && !send_stream_failed_in_callback(s)) {
		error("%s", send_stream_error(s));
		l->stop.stream_broken = true;
	}
}

/*
 * Apply every command, and then either mark the last subvolume received
 * or leave what a resume needs.
 */
static int apply_stream(const struct receive_opts *o, int fd,
			struct receive_ctx *ctx, struct progress *prog)
{
	struct apply_loop l = { .o = o, .ctx = ctx, .prog = prog };
	struct resume_marks *marks = NULL;
	struct send_stream *s;
	int ret;

	if (ctx->dest_ops->resume_marks)
		marks = ctx->dest_ops->resume_marks(ctx);
	ret = open_parser(&s, fd);
	if (ret < 0)
		return ret;
	catch_stop_signals();
	send_stream_set_interrupt(s, &stop_signal);
	send_stream_set_restart_hook(s, warn_restart, NULL);
	ret = resume_take_up(s, ctx, marks, o->resume, prog);
	if (ret < 0) {
		send_stream_close(s);
		return ret;
	}
	run_apply_loop(s, &l);
	if (!l.stop.stream_broken && !l.stop.errors &&
	    send_stream_header_count(s) == 0) {
		error("empty stream is not considered valid");
		l.stop.stream_broken = true;
	}
	/* The summary first: the resume hint must not land on the status line. */
	progress_end(prog, s);
	resume_after_stop(s, ctx, marks, &l.stop, o->dest);
	send_stream_close(s);
	/*
	 * The last subvolume is complete if the stream was whole to its end
	 * and none of its own commands failed (receive_close_subvol checks).
	 */
	ret = receive_close_subvol(ctx, !l.stop.stream_broken);
	if (l.stop.stream_broken || l.stop.errors || ret < 0)
		return -EIO;
	return 0;
}

/* Set up ctx for --to-dir or a btrfs <mount>. */
static int open_destination(const struct receive_opts *o,
			    struct receive_ctx *ctx)
{
	const struct receive_btrfs_opts bo = {
		.dest = o->dest,
		.root_mount = o->root_mount,
		.chroot = o->chroot,
		.force_decompress = o->force_decompress,
	};

	if (o->to_dir)
		return receive_dir_open(ctx, o->to_dir, o->chroot);
	return receive_btrfs_open(ctx, &bo);
}

/* Closing a subvolume: its changes and marks go to disk. */
static void say_syncing(void *prog, bool begin)
{
	progress_syncing(prog, begin);
}

static int receive_run(int argc, char **argv)
{
	struct receive_opts o = { .max_errors = 1 };
	struct receive_ctx ctx;
	struct progress prog;
	struct progress *progp = NULL;
	int status = 0;
	int fd, ret;

	if (parse_options(argc, argv, &o, &status))
		return status;
	if (o.resume_token)
		return resume_print_token(o.resume_token) < 0 ? 1 : 0;
	if (o.abort)
		return resume_abort(o.abort) < 0 ? 1 : 0;
	fd = open_input(&o);
	if (fd < 0)
		return 1;
	if (o.progress)
		progress_init(&prog, output_format == OUTPUT_JSON ?
			      &progress_json_view : &progress_tty_view,
			      "receive", "Received", input_size(&o, fd));
	if (!print_action(&o))
		raise_fd_limit();
	if (o.progress) {
		progress_watch(&prog, fd, "the input", -1);
		progp = &prog;
	}
	if (o.dump) {
		ret = dump_stream(&o, fd, progp);
	} else if (o.changes) {
		ret = changes_stream(&o, fd, progp);
	} else {
		ret = open_destination(&o, &ctx);
		if (ret >= 0) {
			if (progp) {
				ctx.closing = say_syncing;
				ctx.closing_data = progp;
			}
			ret = apply_stream(&o, fd, &ctx, progp);
			receive_ctx_release(&ctx);
		}
	}
	status = ret < 0 ? 1 : 0;
	if (progp)
		progress_done(progp, status);
	return status;
}
