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

#include "commands.h"
#include "progress.h"
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
	}
	if (o->resume_token || o->abort) {
		if (optind != argc || (o->resume_token && o->abort) ||
		    o->dump || o->resume || o->to_dir) {
			*status = usage_error(&cmd_receive, "%s",
				"--resume-token and --abort take one <mount>/<name> and no other action");
			return 1;
		}
		return 0;
	}
	if (o->dump && o->resume) {
		*status = usage_error(&cmd_receive, "%s",
				      "--resume cannot be used with --dump");
		return 1;
	}
	if (o->to_dir && o->resume) {
		*status = usage_error(&cmd_receive, "%s",
				      "--resume cannot be used with --to-dir");
		return 1;
	}
	if (o->dump && o->to_dir) {
		*status = usage_error(&cmd_receive, "%s cannot be used with --to-dir",
				      "--dump");
		return 1;
	}
	if (o->dump) {
		if (optind != argc) {
			*status = usage_error(&cmd_receive, "--dump takes no <mount>: '%s'",
					    argv[optind]);
			return 1;
		}
		return 0;
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
	/* Read once, front to back: a larger readahead window pays. */
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
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

	if (!p || !progress_due(p))
		return;
	path = send_stream_cmd_path(s, &len);
	progress_show(p, send_stream_offset(s), send_stream_cmd_count(s),
		      path, len);
}

static void progress_end(struct progress *p, struct send_stream *s)
{
	if (p)
		progress_finish(p, send_stream_offset(s),
				send_stream_cmd_count(s));
}

/* The parser skipped a stream sent again after a stopped sender. */
static void warn_restart(const struct send_stream_restart *r, void *user)
{
	(void)user;
	warning("the stream restarts at offset %llu (the sender was stopped and the kernel sent the subvolume again, btrfs-progs issue #719): %llu bytes repeated, checked and skipped",
		(unsigned long long)r->offset, (unsigned long long)r->skipped);
}

/*
 * Unlike btrfs-progs 6.2, which stops after the first, every stream of a
 * concatenated input is dumped; -e stops at the first END command.
 */
static int dump_stream(const struct receive_opts *o, int fd,
		       struct progress *prog)
{
	static char outbuf[64 * 1024];
	struct send_stream *s;
	struct dump_ctx ctx;
	int ret;

	const struct send_stream_ops *ops = output_format == OUTPUT_JSON ?
					    &dump_json_ops : &dump_ops;

	setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
	dump_ctx_init(&ctx, stdout);
	ret = send_stream_open(&s, fd);
	if (ret < 0) {
		error("cannot set up the stream parser: %s", strerror(-ret));
		return ret;
	}
	ctx.stream = s;
	send_stream_set_restart_hook(s, warn_restart, NULL);
	for (;;) {
		ret = send_stream_next(s, ops, &ctx);
		if (ret == SEND_STREAM_EOF || (ret == SEND_STREAM_END &&
					       o->honor_end))
			break;
		if (ret < 0) {
			error("%s", send_stream_error(s));
			goto out;
		}
		progress_tick(prog, s);
	}
	ret = 0;
	if (send_stream_header_count(s) == 0) {
		error("no send stream in the input: it is empty");
		ret = -ENODATA;
	}
out:
	progress_end(prog, s);
	send_stream_close(s);
	if (fflush(stdout) || ferror(stdout)) {
		error("cannot write the dump: %m");
		if (!ret)
			ret = -EIO;
	}
	return ret;
}

/* Where the destination's filesystem is mounted, and what it mounts. */
struct mount_point {
	char *dir;		/* the mount point */
	char *fs_root;		/* its path from the top level, no leading / */
};

static void mount_point_free(struct mount_point *mp)
{
	free(mp->dir);
	free(mp->fs_root);
	mp->dir = mp->fs_root = NULL;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape_mountinfo(char *s)
{
	char *d = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*d++ = (s[1] - '0') << 6 | (s[2] - '0') << 3 |
			       (s[3] - '0');
			s += 4;
		} else {
			*d++ = *s++;
		}
	}
	*d = '\0';
}

static bool path_is_under_mount(const char *path, const char *dir)
{
	size_t len = strlen(dir);

	if (!strcmp(dir, "/"))
		return true;
	return !strncmp(path, dir, len) && (path[len] == '/' || !path[len]);
}

/* The btrfs mount whose mount point is the longest prefix of path. */
static int find_mount_point(const char *path, struct mount_point *mp)
{
	char root[PATH_MAX], dir[PATH_MAX], fstype[64];
	char *line = NULL;
	size_t size = 0;
	size_t best = 0;
	char *sep;
	FILE *f;

	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	while (getline(&line, &size, f) > 0) {
		sep = strstr(line, " - ");
		if (!sep || sscanf(sep, " - %63s", fstype) != 1 ||
		    strcmp(fstype, "btrfs"))
			continue;
		if (sscanf(line, "%*s %*s %*s %4095s %4095s", root, dir) != 2)
			continue;
		unescape_mountinfo(root);
		unescape_mountinfo(dir);
		if (!path_is_under_mount(path, dir) || strlen(dir) < best)
			continue;
		best = strlen(dir);
		mount_point_free(mp);
		mp->dir = strdup(dir);
		mp->fs_root = strdup(root + strspn(root, "/"));
	}
	free(line);
	fclose(f);
	if (!mp->dir || !mp->fs_root) {
		mount_point_free(mp);
		return -ENOENT;
	}
	return 0;
}

/* -m ROOTMOUNT: trust it, and ask btrfs what it mounts when /proc cannot. */
static int mount_point_from_option(const char *root_mount,
				   struct mount_point *mp)
{
	enum btrfs_util_error err;
	char real[PATH_MAX];
	uint64_t id;
	char *path;

	if (!realpath(root_mount, real)) {
		error("cannot resolve root mount %s: %m", root_mount);
		return -errno;
	}
	if (!find_mount_point(real, mp) && !strcmp(mp->dir, real))
		return 0;
	mount_point_free(mp);
	err = btrfs_util_subvolume_id(real, &id);
	if (!err)
		err = btrfs_util_subvolume_path(real, id, &path);
	if (err) {
		error("cannot tell which subvolume %s is: %s", real,
		      btrfs_util_strerror(err));
		return -EINVAL;
	}
	mp->dir = strdup(real);
	mp->fs_root = path;
	return mp->dir ? 0 : -ENOMEM;
}

static char *join_path(const char *a, const char *b)
{
	char *out;

	while (*b == '/')
		b++;
	if (asprintf(&out, "%s%s%s", a, *a && *b ? "/" : "", b) < 0)
		return NULL;
	return out;
}

/* Set up ctx for the destination: fds, chroot, the anchor for lookups. */
static int open_destination(const struct receive_opts *o,
			    struct receive_ctx *ctx)
{
	struct mount_point mp = { 0 };
	char real_dest[PATH_MAX];
	char *anchor_path = NULL;
	struct statfs sfs;
	int dest_fd = -1, anchor_fd = -1;
	int ret;

	if (!realpath(o->dest, real_dest)) {
		ret = -errno;
		error("realpath(%s) failed: %m", o->dest);
		return ret;
	}
	ret = statfs(real_dest, &sfs);
	if (ret < 0 || sfs.f_type != BTRFS_SUPER_MAGIC) {
		error("%s doesn't belong to btrfs mount point", real_dest);
		/* Ours, after btrfs-progs' line: not an ERROR. */
		if (!ret)
			fprintf(stderr,
				"HINT: to receive onto a filesystem that is not btrfs, use 'btrfs receive --to-dir %s'\n",
				o->dest);
		return -EINVAL;
	}
	ret = o->root_mount ? mount_point_from_option(o->root_mount, &mp) :
			      find_mount_point(real_dest, &mp);
	if (ret < 0) {
		if (!o->root_mount)
			error("cannot find the mount point of %s, use -m", o->dest);
		return ret;
	}
	if (!path_is_under_mount(real_dest, mp.dir)) {
		error("%s is not under the root mount %s", real_dest, mp.dir);
		ret = -EINVAL;
		goto out;
	}
	if (o->chroot) {
		anchor_path = join_path(mp.fs_root, real_dest +
					(strcmp(mp.dir, "/") ? strlen(mp.dir) : 0));
		if (!anchor_path || chroot(real_dest) < 0 || chdir("/") < 0) {
			ret = -errno;
			error("cannot chroot to %s: %m", real_dest);
			goto out;
		}
		if (verbosity >= 1)
			fprintf(stderr, "Chroot to %s\n", real_dest);
		dest_fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		anchor_fd = dest_fd < 0 ? -1 : fcntl(dest_fd, F_DUPFD_CLOEXEC, 0);
	} else {
		anchor_path = strdup(mp.fs_root);
		dest_fd = open(real_dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		anchor_fd = open(mp.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (dest_fd < 0 || anchor_fd < 0 || !anchor_path) {
		ret = -errno;
		error("cannot open destination %s: %m", o->dest);
		if (dest_fd >= 0)
			close(dest_fd);
		if (anchor_fd >= 0)
			close(anchor_fd);
		goto out;
	}
	receive_ctx_init(ctx, dest_fd, anchor_fd, anchor_path,
			 o->force_decompress);
	ret = 0;
out:
	free(anchor_path);
	mount_point_free(&mp);
	return ret;
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
 * Commands whose applying again after a failure gives the same result,
 * and which leave no state in struct receive_ctx behind, failed for a
 * reason that may pass (a full disk); a refused path never does.
 */
static bool retry_is_safe(unsigned int cmd, int err)
{
	if (err != -ENOSPC && err != -EDQUOT && err != -EIO && err != -ENOMEM)
		return false;
	switch (cmd) {
	case BTRFS_SEND_C_WRITE:
	case BTRFS_SEND_C_CLONE:
	case BTRFS_SEND_C_TRUNCATE:
	case BTRFS_SEND_C_CHMOD:
	case BTRFS_SEND_C_UTIMES:
	case BTRFS_SEND_C_FALLOCATE:
	case BTRFS_SEND_C_ENCODED_WRITE:
	case BTRFS_SEND_C_UPDATE_EXTENT:
		return true;
	}
	return false;
}

/* How the apply loop ended, for the resume state. */
struct apply_end {
	bool stream_broken;
	uint64_t errors;
	bool retry_last;	/* the last command failed; it may be retried */
	struct send_stream_pos before;	/* the position before it */
};

/*
 * After a stop that leaves the current subvolume incomplete: save where
 * it stopped when that is safe, else make sure no old state offers it.
 */
static void save_resume_state(const struct receive_opts *o,
			      struct send_stream *s, struct receive_ctx *ctx,
			      const struct apply_end *end)
{
	struct send_stream_pos pos;

	if (!ctx->cur.active || o->to_dir)
		return;
	if (end->retry_last && end->errors == 1) {
		resume_save(ctx, &end->before, o->dest);
	} else if (end->stream_broken && !ctx->cur.failed) {
		send_stream_position(s, &pos);
		resume_save(ctx, &pos, o->dest);
	} else if (ctx->cur.has_record) {
		resume_mark_failed(ctx);
	}
}

/*
 * The directory cache of the applier holds up to half the fds allowed:
 * the usual soft limit of 1024 would keep it small.
 */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= 4096)
		return;
	rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
	setrlimit(RLIMIT_NOFILE, &rl);
}

/*
 * Apply every command.  A failed command counts against --max-errors and
 * keeps its subvolume from being marked received; a broken stream stops
 * everything at once.
 */
static int apply_stream(const struct receive_opts *o, int fd,
			struct receive_ctx *ctx,
			const struct send_stream_ops *ops, struct progress *prog)
{
	struct apply_end end = { 0 };
	struct send_stream *s;
	int ret;

	ret = send_stream_open(&s, fd);
	if (ret < 0) {
		error("cannot set up the stream parser: %s", strerror(-ret));
		return ret;
	}
	catch_stop_signals();
	send_stream_set_interrupt(s, &stop_signal);
	send_stream_set_restart_hook(s, warn_restart, NULL);
	/* Resume state is kept for btrfs destinations only. */
	ret = o->to_dir ? 0 : resume_take_up(s, ctx, o->resume);
	if (ret < 0) {
		send_stream_close(s);
		return ret;
	}
	for (;;) {
		if (stop_signal) {
			error("stopped by signal %d", (int)stop_signal);
			end.stream_broken = true;
			break;
		}
		send_stream_position(s, &end.before);
		ret = send_stream_next(s, ops, ctx);
		if (ret == SEND_STREAM_EOF)
			break;
		if (ret >= 0)
			progress_tick(prog, s);
		if (ret == SEND_STREAM_END) {
			if (o->honor_end)
				break;
			continue;
		}
		if (ret >= 0)
			continue;
		if (!send_stream_failed_in_callback(s)) {
			error("%s", send_stream_error(s));
			end.stream_broken = true;
			break;
		}
		if (verbosity >= 2)
			fprintf(stderr, "%s\n", send_stream_error(s));
		ctx->cur.failed = true;
		end.errors++;
		end.retry_last = retry_is_safe(send_stream_cmd_type(s), ret);
		if (o->max_errors && end.errors >= o->max_errors)
			break;
		end.retry_last = false;
	}
	if (!end.stream_broken && !end.errors &&
	    send_stream_header_count(s) == 0) {
		error("empty stream is not considered valid");
		end.stream_broken = true;
	}
	/* The summary first: the resume hint must not land on the status line. */
	progress_end(prog, s);
	save_resume_state(o, s, ctx, &end);
	send_stream_close(s);
	/*
	 * The last subvolume is complete if the stream was whole to its end
	 * and none of its own commands failed (receive_close_subvol checks).
	 */
	ret = receive_close_subvol(ctx, !end.stream_broken);
	if (end.stream_broken || end.errors || ret < 0)
		return -EIO;
	return 0;
}

static int receive_run(int argc, char **argv)
{
	struct receive_opts o = { .max_errors = 1 };
	struct receive_ctx ctx;
	struct progress prog;
	struct progress *progp = NULL;
	int status = 0;
	int fd;
	int ret;

	if (parse_options(argc, argv, &o, &status))
		return status;
	if (o.resume_token)
		return resume_print_token(o.resume_token) < 0 ? 1 : 0;
	if (o.abort)
		return resume_abort(o.abort) < 0 ? 1 : 0;
	fd = open_input(&o);
	if (fd < 0)
		return 1;
	if (o.progress) {
		progress_init(&prog, "Received", input_size(&o, fd));
		progp = &prog;
	}
	if (o.dump) {
		ret = dump_stream(&o, fd, progp);
	} else if (o.to_dir) {
		raise_fd_limit();
		ret = receive_dir_open(&ctx, o.to_dir, o.chroot);
		if (ret >= 0) {
			ret = apply_stream(&o, fd, &ctx, receive_dir_ops(), progp);
			receive_dir_release(&ctx);
			close(ctx.dest_fd);
			close(ctx.anchor_fd);
		}
	} else {
		raise_fd_limit();
		ret = open_destination(&o, &ctx);
		if (ret >= 0) {
			ctx.reserve_record = resume_reserve;
			ret = apply_stream(&o, fd, &ctx, &receive_btrfs_ops, progp);
			receive_ctx_release(&ctx);
			close(ctx.dest_fd);
			close(ctx.anchor_fd);
		}
	}
	if (fd != STDIN_FILENO)
		close(fd);
	return ret < 0 ? 1 : 0;
}
