// SPDX-License-Identifier: GPL-2.0-only
/*
 * btrfs send: resolve the subvolumes named on the command line, then let
 * the kernel write one stream per subvolume (BTRFS_IOC_SEND) into a pipe
 * while a thread moves the pipe's bytes to stdout or the -f file.
 *
 * The order of the checks and the text of the messages follow btrfs-progs
 * 6.2, so that scripts written against it read the same thing.
 */
#include <btrfsutil.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/btrfs.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "changes-snap.h"
#include "commands.h"
#include "paths.h"
#include "mounts.h"
#include "progress.h"
#include "progress-json.h"
#include "progress-tty.h"
#include "resume.h"
#include "send-estimate.h"
#include "send-prefetch.h"
#include "send-pump.h"
#include "send-stream.h"
#include "subvol-lookup.h"
#include "utils.h"

#define SYSFS_SEND_STREAM_VERSION "/sys/fs/btrfs/features/send_stream_version"

/*
 * How much one splice may move: a v1 command is at most 64 KiB; from v2
 * on the kernel's buffer holds 16 KiB plus the largest compressed extent.
 */
#define SEND_CHUNK_V1 (64 * 1024)
#define SEND_CHUNK_V2 (16 * 1024 + 128 * 1024)

struct send_opts {
	const char *outname;
	char *parent;			/* realpath of -p */
	char **clone_paths;		/* realpaths of -c, in order */
	size_t nr_clone_paths;
	uint64_t flags;			/* NO_FILE_DATA, COMPRESSED */
	uint32_t proto;
	bool proto_set;
	bool omit_between;		/* -e */
	bool resume;			/* --resume: token holds the token */
	struct resume_token token;
	bool progress;
	bool estimate;
	bool changes;			/* --changes: list, send nothing */
	bool file_type;			/* --file-type: with a type column */
};

struct send_ctx {
	int out_fd;
	char *root_path;		/* mount root of the first <subvol> */
	char **subvols;			/* realpaths of the <subvol>s */
	int nr_subvols;
	/* Handed to the kernel: -c sources, then -p, then sent ones. */
	__u64 *clones;
	size_t nr_clones;
	size_t alloc_clones;
	uint64_t parent_id;
	uint32_t proto;
	size_t chunk;
	/* --estimate: the no-data pass adds up here instead of sending. */
	struct send_estimate *est;
	/* --changes: the no-data pass is listed instead of sent. */
	const struct send_opts *changes;
	FILE *changes_out;
	/* --progress: over all subvolumes, or NULL. */
	struct send_pump_progress *progress;
	bool sigpipe_ignored;		/* when send started */
	int exit_status;		/* on failure, if not 1 */
};


static const char send_usage[] =
	"usage: btrfs send [-ve] [-p <parent>] [-c <clone-src>] [-f <outfile>] <subvol> [<subvol>...]\n"
	"\n"
	"    Send the subvolume(s) to stdout.\n"
	"\n"
	"    Writes a stream from which 'btrfs receive' recreates each <subvol>.\n"
	"    Every <subvol> must be a read-only subvolume, such as a snapshot\n"
	"    taken with 'btrfs subvolume snapshot -r', and all must be on the\n"
	"    same mounted filesystem. Without -p and -c the whole subvolume is\n"
	"    sent. With '-p <parent>' only what differs from <parent> is sent,\n"
	"    and the receiver must hold <parent> already. Clone sources ('-c')\n"
	"    are snapshots the receiver may copy data from instead of getting\n"
	"    it in the stream: name only snapshots that exist, unchanged, on\n"
	"    both sides. With -c but no -p, send picks a parent among the clone\n"
	"    sources: the origin of <subvol> if given, else the snapshot of the\n"
	"    same origin closest to it in transaction id.\n"
	"\n"
	"    -e                  with several <subvol>, write one stream without\n"
	"                        END commands between the subvolumes\n"
	"    -p <parent>         send the differences from the read-only snapshot\n"
	"                        <parent>\n"
	"    -c <clone-src>      let the receiver clone data from this read-only\n"
	"                        snapshot; may be repeated (-i is an alias)\n"
	"    -f <outfile>        write the stream to <outfile>, not to stdout\n"
	"    --no-data           send metadata only: the stream shows what changed\n"
	"                        but carries no file data, so it cannot be received\n"
	"    --proto N           use stream protocol version N; 0 means the highest\n"
	"                        the kernel supports (default: 1)\n"
	"    --compressed-data   send compressed extents as they are stored, without\n"
	"                        decompressing them; needs protocol 2 or later, and\n"
	"                        means --proto 2 unless --proto is given\n"
	"    --resume TOKEN      continue an interrupted transfer: with the same\n"
	"                        arguments as the first send, and the TOKEN of\n"
	"                        'btrfs receive --resume-token', regenerate the\n"
	"                        stream, check that what the receiver applied is\n"
	"                        its prefix, and send only the rest\n"
	"    --estimate          write no stream: print the estimated size of the\n"
	"                        stream these arguments would send, and of its file\n"
	"                        data; with -q only the stream's size in bytes\n"
	"    --progress          show a status line on stderr (bytes, rate, time,\n"
	"                        commands, path) and a summary at the end; with\n"
	"                        --estimate also percent and ETA\n"
	"    --changes           send nothing: print what changed from the parent\n"
	"                        to each <subvol>, one line each, as 'zfs diff -H'\n"
	"                        (- removed, + added, R renamed, M modified);\n"
	"                        without -p and -c everything is new\n"
	"    --file-type         with --changes, a column with each file's type\n"
	"    -q|--quiet          print only errors\n"
	"    -v|--verbose        print more; repeat for more still\n"
	"\n"
	"    Global options:\n"
	"    -v|--verbose        increase output verbosity\n"
	"    -q|--quiet          print only errors\n";

static int send_run(int argc, char **argv);

const struct command cmd_send = {
	.name = "send",
	.run = send_run,
	.usage = send_usage,
	.summary = "btrfs send [-ve] [-p <parent>] [-c <clone-src>] [-f <outfile>] <subvol> [<subvol>...]\n"
		   "        Send the subvolume(s) to stdout.",
};

enum {
	OPT_NO_DATA = 256,
	OPT_PROTO,
	OPT_COMPRESSED_DATA,
	OPT_RESUME,
	OPT_ESTIMATE,
	OPT_PROGRESS,
	OPT_CHANGES,
	OPT_FILE_TYPE,
	OPT_HELP,
};

static void send_opts_free(struct send_opts *o)
{
	size_t i;

	free(o->parent);
	for (i = 0; i < o->nr_clone_paths; i++)
		free(o->clone_paths[i]);
	free(o->clone_paths);
}

static void send_ctx_free(struct send_ctx *s)
{
	int i;

	free(s->root_path);
	for (i = 0; i < s->nr_subvols; i++)
		free(s->subvols[i]);
	free(s->subvols);
	free(s->clones);
}

static int add_clone(struct send_ctx *s, uint64_t root_id)
{
	__u64 *c;
	size_t n;

	if (s->nr_clones == s->alloc_clones) {
		n = s->alloc_clones ? 2 * s->alloc_clones : 8;
		c = realloc(s->clones, n * sizeof(*c));
		if (!c) {
			error("cannot add clone source: %s", strerror(ENOMEM));
			return -ENOMEM;
		}
		s->clones = c;
		s->alloc_clones = n;
	}
	s->clones[s->nr_clones++] = root_id;
	return 0;
}

/* Like btrfs-progs: base 0, "-" refused, ULLONG_MAX taken as overflow. */
static int parse_proto(const char *arg, uint32_t *proto)
{
	unsigned long long v;
	char *end;

	v = strtoull(arg, &end, 0);
	if (*end) {
		error("%s is not a valid numeric value", arg);
		return -EINVAL;
	}
	if (arg[0] == '-') {
		error("%s: negative value is invalid", arg);
		return -EINVAL;
	}
	if (v == ULLONG_MAX) {
		error("%s is too large", arg);
		return -ERANGE;
	}
	if (v > UINT32_MAX) {
		error("protocol version number too big %llu", v);
		return -ERANGE;
	}
	*proto = v;
	return 0;
}

/*
 * The mount point of the mount that holds path: 0 with *root set, 1 when
 * that mount is not btrfs, or a negative errno.
 */
static int find_mount_root(const char *path, char **root)
{
	struct mount_point mp;
	int ret;

	ret = mount_point_find(path, &mp);
	if (ret)
		return ret;
	if (!mp.is_btrfs) {
		mount_point_free(&mp);
		return 1;
	}
	*root = mp.dir;
	free(mp.fs_root);
	return 0;
}

/*
 * 1 if path is a read-only subvolume, 0 if a writable one, else a negative
 * errno with an ERROR line.  Only directories and regular files are
 * opened: opening a FIFO would block, a device could have side effects.
 */
static int subvol_is_read_only(const char *path)
{
	enum btrfs_util_error err;
	struct stat st;
	bool ro;
	int ret;
	int fd;

	if (stat(path, &st) < 0) {
		ret = -errno;
		goto fail;
	}
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		goto fail;
	}
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto fail;
	}
	err = btrfs_util_get_subvolume_read_only_fd(fd, &ro);
	ret = err ? -errno : 0;
	close(fd);
	if (!err)
		return ro;
	if (!ret)
		ret = -EINVAL;
fail:
	error("failed to get flags for subvolume %s: %s", path, strerror(-ret));
	return ret;
}

static int subvol_root_id(const char *path, uint64_t *id)
{
	return btrfs_util_subvolume_id(path, id) ? -(errno ? errno : EINVAL)
						 : 0;
}

static int get_fsid(const char *path, uint8_t *fsid)
{
	struct btrfs_ioctl_fs_info_args args;
	int ret = 0;
	int fd;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	memset(&args, 0, sizeof(args));
	if (ioctl(fd, BTRFS_IOC_FS_INFO, &args) < 0)
		ret = -errno;
	else
		memcpy(fsid, args.fsid, BTRFS_FSID_SIZE);
	close(fd);
	return ret;
}

/*
 * The parent and the clone sources are found by root id on the
 * filesystem of the first <subvol>: one elsewhere would name the wrong
 * subvolume.
 */
static int check_same_filesystem(const char *root, const char *path)
{
	uint8_t fa[BTRFS_FSID_SIZE];
	uint8_t fb[BTRFS_FSID_SIZE];
	int ret;

	ret = get_fsid(root, fa);
	if (!ret)
		ret = get_fsid(path, fb);
	if (ret < 0) {
		error("cannot get the filesystem of %s: %s", path,
		      strerror(-ret));
		return ret;
	}
	if (memcmp(fa, fb, sizeof(fa))) {
		error("all subvolumes must be from the same filesystem");
		return -EXDEV;
	}
	return 0;
}

static int add_clone_path(struct send_opts *o, const char *arg)
{
	char **paths;
	char *real;
	char *root = NULL;
	int ret;

	real = realpath(arg, NULL);
	if (!real) {
		ret = -errno;
		error("realpath %s failed: %s", arg, strerror(-ret));
		return ret;
	}
	ret = find_mount_root(real, &root);
	if (ret < 0) {
		error("failed to determine mount point for %s: %s", real,
		      strerror(-ret));
		goto fail;
	}
	if (ret > 0) {
		error("%s doesn't belong to btrfs mount point", real);
		ret = -EINVAL;
		goto fail;
	}
	free(root);
	ret = subvol_is_read_only(real);
	if (ret < 0)
		goto fail;
	if (!ret) {
		error("cloned subvolume %s is not read-only", real);
		ret = -EINVAL;
		goto fail;
	}
	paths = realloc(o->clone_paths,
			(o->nr_clone_paths + 1) * sizeof(*paths));
	if (!paths) {
		error("cannot add clone source: %s", strerror(ENOMEM));
		ret = -ENOMEM;
		goto fail;
	}
	o->clone_paths = paths;
	o->clone_paths[o->nr_clone_paths++] = real;
	return 0;
fail:
	free(real);
	return ret;
}

static int set_parent_path(struct send_opts *o, const char *arg)
{
	int ret;

	if (o->parent) {
		error("you cannot have more than one parent (-p)");
		return -EINVAL;
	}
	o->parent = realpath(arg, NULL);
	if (!o->parent) {
		ret = -errno;
		error("realpath %s failed: %s", arg, strerror(-ret));
		return ret;
	}
	ret = subvol_is_read_only(o->parent);
	if (ret < 0)
		return ret;
	if (!ret) {
		error("parent subvolume %s is not read-only", o->parent);
		return -EINVAL;
	}
	return 0;
}

static int parse_token(const char *arg, struct send_opts *o)
{
	const char *why;

	if (resume_token_decode(arg, &o->token, &why) < 0) {
		error("invalid resume token: %s", why);
		return -EINVAL;
	}
	o->resume = true;
	return 0;
}

/*
 * One option of getopt_long(), -p and -c checked as they come, in order:
 * 0 to go on, or 1 when there is nothing more to do (*status is 1 unless
 * set otherwise).
 */
static int take_option(int c, char **argv, struct send_opts *o, int *status)
{
	switch (c) {
	case 'v':
		verbosity++;
		break;
	case 'q':
		verbosity = 0;
		break;
	case 'e':
		o->omit_between = true;
		break;
	case 'c':
	case 'i':
		/* btrfs-progs 6.2 refuses -i; here it is -c's alias. */
		if (add_clone_path(o, optarg))
			return 1;
		break;
	case 'f':
		o->outname = optarg;
		break;
	case 'p':
		if (set_parent_path(o, optarg))
			return 1;
		break;
	case OPT_NO_DATA:
		o->flags |= BTRFS_SEND_FLAG_NO_FILE_DATA;
		break;
	case OPT_PROTO:
		if (parse_proto(optarg, &o->proto))
			return 1;
		o->proto_set = true;
		break;
	case OPT_COMPRESSED_DATA:
		o->flags |= BTRFS_SEND_FLAG_COMPRESSED;
		break;
	case OPT_RESUME:
		if (parse_token(optarg, o))
			return 1;
		break;
	case OPT_ESTIMATE:
		o->estimate = true;
		break;
	case OPT_PROGRESS:
		o->progress = true;
		break;
	case OPT_CHANGES:
		o->changes = true;
		break;
	case OPT_FILE_TYPE:
		o->file_type = true;
		break;
	case OPT_HELP:
		*status = print_usage(&cmd_send, 0);
		return 1;
	default:
		option_error(&cmd_send, c, argv);
		return 1;
	}
	return 0;
}

/* --changes sends nothing: what only a stream needs has no place. */
static int check_changes_options(const struct send_opts *o, int *status)
{
	const char *other = o->estimate ? "--estimate" :
			    o->resume ? "--resume" :
			    o->progress ? "--progress" : NULL;

	if (o->file_type && !o->changes) {
		*status = usage_error(&cmd_send, "%s",
				      "--file-type needs --changes");
		return 1;
	}
	if (o->changes && other) {
		*status = usage_error(&cmd_send, "%s cannot be used with --changes",
				      other);
		return 1;
	}
	return 0;
}

/*
 * Options.  Returns 0 to go on, or 1 with *status set when there is
 * nothing more to do.
 */
static int parse_options(int argc, char **argv, struct send_opts *o,
			 int *status)
{
	static const struct option long_options[] = {
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "no-data", no_argument, NULL, OPT_NO_DATA },
		{ "proto", required_argument, NULL, OPT_PROTO },
		{ "compressed-data", no_argument, NULL, OPT_COMPRESSED_DATA },
		{ "resume", required_argument, NULL, OPT_RESUME },
		{ "estimate", no_argument, NULL, OPT_ESTIMATE },
		{ "progress", no_argument, NULL, OPT_PROGRESS },
		{ "changes", no_argument, NULL, OPT_CHANGES },
		{ "file-type", no_argument, NULL, OPT_FILE_TYPE },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	*status = 1;
	opterr = 0;
	/*
	 * 0, not 1: glibc then forgets the '+' of the global options' scan,
	 * so options may follow <subvol> as in btrfs-progs.
	 */
	optind = 0;
	while ((c = getopt_long(argc, argv, ":ec:i:f:p:qv", long_options,
				NULL)) != -1) {
		if (take_option(c, argv, o, status))
			return 1;
	}
	if (o->estimate && o->resume) {
		*status = usage_error(&cmd_send, "%s",
				      "--resume cannot be used with --estimate");
		return 1;
	}
	if (check_changes_options(o, status))
		return 1;
	if (output_format == OUTPUT_JSON && !o->progress && !o->changes) {
		error("--format json is supported by send only with --progress");
		return 1;
	}
	if (optind >= argc) {
		fprintf(stderr,
			"btrfs send: not enough arguments: %d but at least 1 expected\n",
			argc - optind);
		return 1;
	}
	*status = 0;
	return 0;
}

/*
 * Truncate an existing file without re-creating it (root may be able to
 * write to a file it could not create, on NFS for example); create it
 * with mode 0600 only when it does not exist.
 */
static int open_output(const char *name)
{
	int fd;

	fd = open(name, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		fd = open(name, O_WRONLY | O_TRUNC | O_CREAT | O_CLOEXEC,
			  0600);
	if (fd < 0) {
		fd = -errno;
		error("cannot create '%s': %s", name, strerror(-fd));
	}
	return fd;
}

/* The first <subvol> fixes the mount all others must share. */
static int resolve_root(struct send_ctx *s, const char *arg)
{
	char *real;
	int ret;

	real = realpath(arg, NULL);
	if (!real) {
		error("unable to resolve %s", arg);
		return -ENOENT;
	}
	ret = find_mount_root(real, &s->root_path);
	if (ret < 0)
		error("failed to determine mount point for %s: %s", real,
		      strerror(-ret));
	else if (ret > 0)
		error("%s doesn't belong to btrfs mount point", real);
	free(real);
	return ret ? -EINVAL : 0;
}

/*
 * Root ids of the parent and of the clone sources, which must all be on
 * the filesystem of the first <subvol>; the parent is also a clone
 * source, after the -c ones.
 */
static int resolve_sources(struct send_ctx *s, const struct send_opts *o)
{
	uint64_t id;
	size_t i;
	int ret;

	for (i = 0; i < o->nr_clone_paths; i++) {
		ret = check_same_filesystem(s->root_path, o->clone_paths[i]);
		if (ret < 0)
			return ret;
		ret = subvol_root_id(o->clone_paths[i], &id);
		if (ret < 0) {
			error("cannot resolve rootid for %s", o->clone_paths[i]);
			return ret;
		}
		ret = add_clone(s, id);
		if (ret < 0)
			return ret;
	}
	if (!o->parent)
		return 0;
	if (!path_is_under(o->parent, s->root_path)) {
		error("not on mount point: %s", s->root_path);
		return -EINVAL;
	}
	ret = check_same_filesystem(s->root_path, o->parent);
	if (ret < 0)
		return ret;
	ret = subvol_root_id(o->parent, &s->parent_id);
	if (ret < 0) {
		error("could not resolve rootid for %s", o->parent);
		return ret;
	}
	return add_clone(s, s->parent_id);
}

static int check_subvols(struct send_ctx *s, int argc, char **argv)
{
	char *root;
	char *real;
	int i;
	int ret;

	s->subvols = calloc(argc, sizeof(*s->subvols));
	if (!s->subvols) {
		error("not enough memory");
		return -ENOMEM;
	}
	s->nr_subvols = argc;
	for (i = 0; i < argc; i++) {
		real = realpath(argv[i], NULL);
		if (!real) {
			error("unable to resolve %s", argv[i]);
			return -ENOENT;
		}
		s->subvols[i] = real;
		ret = find_mount_root(real, &root);
		if (ret < 0) {
			error("failed to determine mount point for %s: %s",
			      real, strerror(-ret));
			return ret;
		}
		if (ret > 0) {
			error("%s does not belong to btrfs mount point", real);
			return -EINVAL;
		}
		ret = strcmp(root, s->root_path);
		free(root);
		if (ret) {
			error("all subvolumes must be from the same filesystem");
			return -EINVAL;
		}
		ret = subvol_is_read_only(real);
		if (ret < 0)
			return ret;
		if (!ret) {
			error("subvolume %s is not read-only", real);
			return -EINVAL;
		}
	}
	return 0;
}

/* The highest protocol the kernel offers; 1 when it does not say. */
static uint32_t kernel_proto(void)
{
	unsigned int v = 0;
	FILE *f;

	f = fopen(SYSFS_SEND_STREAM_VERSION, "r");
	if (!f)
		return 1;
	if (fscanf(f, "%u", &v) != 1 || v < 1)
		v = 1;
	fclose(f);
	return v;
}

/*
 * Settle the protocol and the flags every ioctl shares.  A kernel that
 * only knows protocol 1 also predates the VERSION flag, and would refuse
 * it as unknown.
 */
static int setup_protocol(struct send_ctx *s, struct send_opts *o)
{
	uint32_t supported;

	if ((o->flags & BTRFS_SEND_FLAG_NO_FILE_DATA) && verbosity >= 2)
		fprintf(stderr, "Mode NO_FILE_DATA enabled\n");
	if (o->flags & BTRFS_SEND_FLAG_COMPRESSED) {
		if (!o->proto_set) {
			o->proto = 2;
		} else if (o->proto == 1) {
			error("--compressed-data requires protocol version >= 2 (requested 1)");
			return -EINVAL;
		}
	}
	supported = kernel_proto();
	if (verbosity >= 2)
		fprintf(stderr, "Protocol version requested: %u (supported %u)\n",
			o->proto, supported);
	if (supported > 1) {
		/* Version 0 is passed on: the kernel picks its highest. */
		o->flags |= BTRFS_SEND_FLAG_VERSION;
		s->proto = o->proto;
	} else if (o->proto > 1) {
		error("protocol version %u requested but the kernel supports only 1",
		      o->proto);
		return -EPROTO;
	}
	s->chunk = (o->proto ? o->proto : supported) >= 2 ? SEND_CHUNK_V2
							   : SEND_CHUNK_V1;
	return 0;
}

/*
 * Choose the parent among the clone sources when -p is absent: the
 * subvolume's origin (the one it was snapshotted from) if it is a clone
 * source, else the clone source snapshotted from the same origin whose
 * ctransid is closest to the origin's, the first one on a tie.
 */
static int find_good_parent(struct send_ctx *s, uint64_t root_id,
			    uint64_t *parent_id)
{
	struct subvol_info sv, origin, c;
	uint64_t best = 0, best_diff = UINT64_MAX, diff, *ids = NULL;
	ssize_t n;
	size_t i;
	int fd, ret;

	fd = open(s->root_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = subvol_get(fd, root_id, &sv);
	if (ret < 0)
		goto out;
	n = uuid_is_null(sv.parent_uuid) ? 0 :
	    subvol_ids_by_uuid(fd, sv.parent_uuid, false, &ids);
	ret = n < 0 ? n : n == 0 ? -ENOENT : subvol_get(fd, ids[0], &origin);
	if (ret < 0)
		goto out;
	for (i = 0; i < s->nr_clones; i++) {
		if (s->clones[i] == origin.root_id) {
			best = origin.root_id;
			goto out;
		}
	}
	for (i = 0; i < s->nr_clones; i++) {
		if (subvol_get(fd, s->clones[i], &c) < 0 ||
		    memcmp(c.parent_uuid, origin.uuid, 16))
			continue;
		diff = c.ctransid > origin.ctransid ?
		       c.ctransid - origin.ctransid :
		       origin.ctransid - c.ctransid;
		if (diff < best_diff) {
			best_diff = diff;
			best = c.root_id;
		}
	}
out:
	free(ids);
	close(fd);
	if (ret < 0)
		return ret;
	if (!best)
		return -ENOENT;
	*parent_id = best;
	return 0;
}

/*
 * --estimate and --changes: the kernel's no-data stream, read whole by a
 * thread (consume, on in) while the ioctl writes it.
 */
struct nodata_reader {
	int in;
	uint64_t flags;
	int (*consume)(struct nodata_reader *r);
	void *arg;
	int err;
	char msg[256];			/* what could not be read */
};

static void *nodata_run(void *arg)
{
	struct nodata_reader *r = arg;

	r->err = r->consume(r);
	close(r->in);
	return NULL;
}

static int consume_estimate(struct nodata_reader *r)
{
	return send_estimate_stream(r->arg, r->in,
			r->flags & BTRFS_SEND_FLAG_OMIT_STREAM_HEADER,
			r->flags & BTRFS_SEND_FLAG_OMIT_END_CMD,
			r->msg, sizeof(r->msg));
}

/* The model of --changes, from the stream of one subvolume. */
static int consume_changes(struct nodata_reader *r)
{
	static const struct send_stream_loop loop = { .stop_at_end = true };
	struct send_stream *s;
	int ret;

	ret = send_stream_open(&s, r->in);
	if (ret < 0) {
		snprintf(r->msg, sizeof(r->msg), "%s", strerror(-ret));
		return ret;
	}
	ret = send_stream_run(s, &changes_ops, r->arg, &loop);
	if (ret < 0)
		snprintf(r->msg, sizeof(r->msg), "%s", send_stream_error(s));
	send_stream_close(s);
	return ret < 0 ? ret : 0;
}

static void init_send_args(const struct send_ctx *s,
			   struct btrfs_ioctl_send_args *args, uint64_t flags,
			   int send_fd)
{
	memset(args, 0, sizeof(*args));
	args->send_fd = send_fd;
	args->clone_sources = s->clones;
	args->clone_sources_count = s->nr_clones;
	args->parent_root = s->parent_id;
	args->flags = flags;
	args->version = s->proto;
}

/* The ioctl's own error, or 0. */
static int run_send_ioctl(int subvol_fd, struct btrfs_ioctl_send_args *args)
{
	if (ioctl(subvol_fd, BTRFS_IOC_SEND, args) < 0)
		return -errno;
	if (verbosity >= 2)
		fprintf(stderr, "BTRFS_IOC_SEND returned 0\n");
	if (verbosity >= 4)
		fprintf(stderr, "joining genl thread\n");
	return 0;
}

static int open_pipe(int pipefd[2])
{
	int ret;

	if (pipe2(pipefd, O_CLOEXEC) == 0) {
		/* Fewer, larger reads for the pump; the default where refused. */
		pipe_grow(pipefd[1], STREAM_PIPE_SIZE);
		return 0;
	}
	ret = -errno;
	error("pipe failed: %s", strerror(-ret));
	return ret;
}

/* The thread that reads what the kernel writes into the pipe. */
static int start_pipe_reader(pthread_t *thread, void *(*body)(void *),
			     void *arg, int pipefd[2])
{
	int ret = pthread_create(thread, NULL, body, arg);

	if (!ret)
		return 0;
	error("thread setup failed: %s", strerror(ret));
	close(pipefd[0]);
	close(pipefd[1]);
	return -ret;
}

/*
 * The kernel's no-data stream of the subvolume at fd, whole, into r; what
 * -e leaves out is taken off by the consumer.
 */
static int nodata_pass(struct send_ctx *s, int fd, uint64_t flags,
		       struct nodata_reader *r)
{
	struct btrfs_ioctl_send_args args;
	pthread_t thread;
	int pipefd[2];
	int ioctl_err;
	int ret;

	r->flags = flags;
	flags &= ~(BTRFS_SEND_FLAG_OMIT_STREAM_HEADER |
		   BTRFS_SEND_FLAG_OMIT_END_CMD);
	flags |= BTRFS_SEND_FLAG_NO_FILE_DATA;
	ret = open_pipe(pipefd);
	if (ret < 0)
		return ret;
	r->in = pipefd[0];
	ret = start_pipe_reader(&thread, nodata_run, r, pipefd);
	if (ret < 0)
		return ret;
	init_send_args(s, &args, flags, pipefd[1]);
	ioctl_err = run_send_ioctl(fd, &args);
	close(pipefd[1]);
	pthread_join(thread, NULL);
	return r->err ?: ioctl_err;
}

static int estimate_one(struct send_ctx *s, int fd, const char *path,
			uint64_t flags)
{
	struct nodata_reader r = {
		.consume = consume_estimate,
		.arg = s->est,
	};
	int ret;

	s->est->subvol_fd = fd;
	ret = nodata_pass(s, fd, flags, &r);
	if (r.err)
		error("cannot estimate the stream of %s: %s", path, r.msg);
	return ret;
}

/*
 * One run of the ioctl into a new pipe, read by the pump; a restarted
 * ioctl fails with EBADF (see send-pump.h).
 */
static int pump_attempt(struct send_ctx *s, int fd, uint64_t flags,
			struct send_pump *pump, int *ioctl_err)
{
	struct btrfs_ioctl_send_args args;
	pthread_t thread;
	int pipefd[2];
	int ret;

	ret = open_pipe(pipefd);
	if (ret < 0)
		return ret;
	init_send_args(s, &args, flags, pipefd[1]);
	pump->in = pipefd[0];
	pump->write_end = pipefd[1];
	pump->send_fd = &args.send_fd;
	ret = start_pipe_reader(&thread, send_pump_attempt, pump, pipefd);
	if (ret < 0)
		return ret;
	*ioctl_err = run_send_ioctl(fd, &args);
	/* The pump sees the end of the stream once this is closed. */
	send_pump_release(pump);
	pthread_join(thread, NULL);
	return 0;
}

/*
 * As btrfs-progs: a reader that goes away ends send by SIGPIPE, unless
 * SIGPIPE was ignored when it started; a copy of the stream that fails
 * exits with its errno as the status.
 */
static void stream_copy_failed(struct send_ctx *s, int err)
{
	if (err == -EPIPE && !s->sigpipe_ignored) {
		signal(SIGPIPE, SIG_DFL);
		raise(SIGPIPE);
	}
	error("failed to read stream from kernel: %s", strerror(-err));
	s->exit_status = -err;
}

static void report_send_error(struct send_ctx *s, const struct send_pump *pump,
			      const char *path, uint64_t flags, int ret,
			      int ioctl_err)
{
	if (ret == -ESTALE && pump->frame_due) {
		error("cannot resume: the stream of %s differs from the one the receiver applied (%s); nothing was sent",
		      path, pump->msg);
	} else if (ret == -ESTALE) {
		error("the kernel restarted the send of %s after a stop, and the new stream differs from what was written (%s)",
		      path, pump->msg);
	} else if (ret == -EIO && pump->msg[0]) {
		error("the stream of %s from the kernel is damaged (%s)",
		      path, pump->msg);
	} else if (ret) {
		stream_copy_failed(s, ret);
	} else if (ioctl_err) {
		error("send ioctl failed with %d: %s", ioctl_err,
		      strerror(-ioctl_err));
		if (ioctl_err == -EINVAL &&
		    (flags & (BTRFS_SEND_FLAG_OMIT_END_CMD |
			      BTRFS_SEND_FLAG_OMIT_STREAM_HEADER)))
			fprintf(stderr, "Try upgrading your kernel or don't use -e.\n");
	}
}

/*
 * The prefetcher for the subvolume open at fd (see send-prefetch.h), or
 * NULL.  To measure what it does, BTRFS_SEND_PREFETCH=0 turns it off and
 * BTRFS_SEND_PREFETCH=count says on stderr how many reads it started
 * (-vvv is btrfs-progs' output, which stays as it is).
 */
static struct send_prefetch *start_prefetch(struct send_ctx *s, int fd,
					    struct send_pump *pump)
{
	struct btrfs_util_subvolume_info info;
	const char *env = getenv("BTRFS_SEND_PREFETCH");
	uint64_t min_transid = 0;

	if ((env && !strcmp(env, "0")) || mechanism_off("prefetch"))
		return NULL;
	/* Of an incremental, only the leaves changed since the parent. */
	if (s->parent_id) {
		if (btrfs_util_subvolume_info(s->root_path, s->parent_id, &info))
			return NULL;
		min_transid = info.ctransid;
	}
	return send_prefetch_start(fd, min_transid, &pump->kernel_pos);
}

static void stop_prefetch(struct send_prefetch *pf, const char *path)
{
	const char *env = getenv("BTRFS_SEND_PREFETCH");
	uint64_t reads;

	send_prefetch_stop(pf, &reads);
	if (pf && env && !strcmp(env, "count"))
		fprintf(stderr, "prefetch of %s: %llu readaheads\n", path,
			(unsigned long long)reads);
}

/* Consecutive restarts seen only in the content, with nothing written. */
#define MAX_CONTENT_RESTARTS	8

/*
 * The real send of one subvolume: attempts until one is not restarted,
 * each checked against what the output holds already.
 */
static int pump_one(struct send_ctx *s, int fd, const char *path,
		    uint64_t flags, const struct resume_token *resume)
{
	unsigned char frame[RESUME_FRAME_LEN];
	unsigned int content_restarts = 0;
	struct send_prefetch *pf;
	struct send_pump pump;
	uint64_t before;
	int ioctl_err = 0;
	int ret;

	if (resume)
		resume_frame_encode(resume, frame);
	ret = send_pump_init(&pump, s->out_fd, s->chunk,
			     flags & BTRFS_SEND_FLAG_OMIT_STREAM_HEADER,
			     flags & BTRFS_SEND_FLAG_OMIT_END_CMD,
			     resume ? &resume->pos : NULL, frame);
	if (ret < 0) {
		error("not enough memory");
		return ret;
	}
	pump.progress = s->progress;
	pf = start_prefetch(s, fd, &pump);
	for (;;) {
		before = pump.written;
		ret = pump_attempt(s, fd, flags, &pump, &ioctl_err);
		if (ret < 0 || pump.err || !send_pump_restarted(&pump, ioctl_err))
			break;
		content_restarts = pump.restart_seen && pump.written == before ?
				   content_restarts + 1 : 0;
		if (content_restarts > MAX_CONTENT_RESTARTS)
			break;
		if (verbosity >= 2)
			status_line_printf(stderr, "the kernel restarted the send of %s after a stop: sending again, %llu bytes checked and skipped\n",
					   path, (unsigned long long)pump.written);
	}
	stop_prefetch(pf, path);
	if (!ret)
		ret = send_pump_finish(&pump, ioctl_err);
	report_send_error(s, &pump, path, flags, ret, ioctl_err);
	send_pump_free(&pump);
	return ret ?: ioctl_err;
}

/* The path of the subvolume root_id among those named: -p, -c, sent. */
static const char *source_path(const struct send_ctx *s, uint64_t root_id)
{
	const struct send_opts *o = s->changes;
	uint64_t id;
	size_t i;
	int j;

	if (o->parent)
		return o->parent;
	for (i = 0; i < o->nr_clone_paths; i++) {
		if (!subvol_root_id(o->clone_paths[i], &id) && id == root_id)
			return o->clone_paths[i];
	}
	for (j = 0; j < s->nr_subvols; j++) {
		if (!subvol_root_id(s->subvols[j], &id) && id == root_id)
			return s->subvols[j];
	}
	return NULL;
}

/* The list of what changed from the parent to path. */
static int list_changes(struct send_ctx *s, struct changes *c,
			const char *path)
{
	struct changes_snapshots snaps = { .after = path };
	const struct change_print p = {
		.out = s->changes_out,
		.json = output_format == OUTPUT_JSON,
		.file_type = s->changes->file_type,
		.prefix = path,
	};
	struct change_list list = { 0 };
	int ret;

	if (s->parent_id) {
		snaps.before = source_path(s, s->parent_id);
		if (!snaps.before) {
			error("cannot find the parent of %s", path);
			return -ENOENT;
		}
	}
	ret = changes_take(c, snaps.before ? changes_refine_snapshots : NULL,
			   &snaps, &list);
	if (ret < 0)
		error("cannot list the changes of %s: %s", path, strerror(-ret));
	else
		ret = change_list_print(&list, &p);
	if (!ret && verbosity >= 2)
		change_list_summary(&list, stderr);
	change_list_free(&list);
	return ret;
}

/* --changes: the kernel's no-data stream into the model, then the list. */
static int changes_one(struct send_ctx *s, int fd, const char *path,
		       uint64_t flags)
{
	struct nodata_reader r = { .consume = consume_changes };
	struct changes *c;
	int ret;

	c = changes_new();
	if (!c) {
		error("not enough memory");
		return -ENOMEM;
	}
	r.arg = c;
	ret = nodata_pass(s, fd, flags, &r);
	if (r.err)
		error("cannot read the stream of %s: %s", path, r.msg);
	if (!ret)
		ret = list_changes(s, c, path);
	changes_free(c);
	return ret;
}

static int send_one(struct send_ctx *s, const char *path, uint64_t flags,
		    const struct resume_token *resume)
{
	int ret;
	int fd;

	fd = open(path, O_RDONLY | O_NOATIME | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		error("cannot open %s: %s", path, strerror(-ret));
		return ret;
	}
	if (s->est)
		ret = estimate_one(s, fd, path, flags);
	else if (s->changes)
		ret = changes_one(s, fd, path, flags);
	else
		ret = pump_one(s, fd, path, flags, resume);
	close(fd);
	return ret;
}

static bool resume_is_for(struct send_ctx *s, const struct send_opts *o,
			  int i)
{
	struct btrfs_util_subvolume_info info;

	return !btrfs_util_subvolume_info(s->subvols[i], 0, &info) &&
	       !memcmp(info.uuid, o->token.uuid, 16) &&
	       info.ctransid == o->token.ctransid;
}

/*
 * --resume: 1 when subvolume i is the token's, with the same parent and
 * the same stream options; 0 when it is another subvolume; a negative
 * errno when it is the token's but something differs.
 */
static int resume_matches(struct send_ctx *s, const struct send_opts *o,
			  int i, uint64_t flags)
{
	const struct resume_token *t = &o->token;
	struct btrfs_util_subvolume_info info = { 0 };
	uint32_t proto = s->proto ? s->proto : kernel_proto();
	const char *why = NULL;

	if (!resume_is_for(s, o, i))
		return 0;
	if (s->parent_id &&
	    btrfs_util_subvolume_info(s->root_path, s->parent_id, &info)) {
		error("cannot read the parent of %s", s->subvols[i]);
		return -EIO;
	}
	if (memcmp(info.uuid, t->parent_uuid, 16) ||
	    (s->parent_id ? info.ctransid : 0) != t->parent_ctransid)
		why = "another parent (-p or the one chosen among -c)";
	else if (proto != t->pos.version)
		why = "another protocol version (--proto)";
	else if (!!(flags & BTRFS_SEND_FLAG_OMIT_STREAM_HEADER) !=
		 !!(t->flags & RESUME_FLAG_HEADERLESS))
		why = "another position among the subvolumes sent with -e";
	else if ((t->flags & RESUME_FLAG_NO_DATA) &&
		 !(flags & BTRFS_SEND_FLAG_NO_FILE_DATA))
		why = "the transfer was sent with --no-data";
	else if ((t->flags & RESUME_FLAG_COMPRESSED) &&
		 !(flags & BTRFS_SEND_FLAG_COMPRESSED))
		why = "the transfer was sent with --compressed-data";
	if (why) {
		error("cannot resume %s with these arguments: %s",
		      s->subvols[i], why);
		return -EINVAL;
	}
	if (verbosity >= 2)
		fprintf(stderr, "resuming %s at stream offset %llu\n",
			s->subvols[i], (unsigned long long)t->pos.offset);
	return 1;
}

/*
 * With -c and no -p each subvolume gets its own parent, and once sent is
 * a clone source for the ones after it; with -p all share that parent.
 */
static int send_all(struct send_ctx *s, const struct send_opts *o,
		    char **argv)
{
	bool auto_parent = o->nr_clone_paths && !o->parent;
	const struct resume_token *resume;
	bool resumed = false;
	uint64_t root_id = 0;
	uint64_t flags;
	int i;
	int ret;

	for (i = 0; i < s->nr_subvols; i++) {
		if (verbosity >= 1 && !s->est && !s->changes &&
		    (!o->resume || resumed || resume_is_for(s, o, i))) {
			status_line_printf(stderr, "At subvol %s\n", argv[i]);
		}
		if (auto_parent) {
			ret = subvol_root_id(s->subvols[i], &root_id);
			if (ret < 0) {
				error("cannot resolve rootid for %s",
				      s->subvols[i]);
				return ret;
			}
			ret = find_good_parent(s, root_id, &s->parent_id);
			if (ret < 0) {
				error("parent determination failed for %llu",
				      (unsigned long long)root_id);
				return ret;
			}
		}
		flags = o->flags;
		if (o->omit_between && i > 0)
			flags |= BTRFS_SEND_FLAG_OMIT_STREAM_HEADER;
		if (o->omit_between && i < s->nr_subvols - 1)
			flags |= BTRFS_SEND_FLAG_OMIT_END_CMD;
		resume = NULL;
		if (o->resume && !resumed) {
			ret = resume_matches(s, o, i, flags);
			if (ret < 0)
				return ret;
			resumed = ret;
			if (resumed)
				resume = &o->token;
			if (resumed && s->progress)
				progress_skip_begin(s->progress->prog);
		}
		if (!o->resume || resumed) {
			ret = send_one(s, s->subvols[i], flags, resume);
			if (ret < 0)
				return ret;
		}
		if (auto_parent) {
			ret = add_clone(s, root_id);
			if (ret < 0)
				return ret;
		}
	}
	if (o->resume && !resumed) {
		error("cannot resume: the token is for a subvolume that is not among those to send");
		return -ENOENT;
	}
	return 0;
}

/*
 * The dry run of --estimate: every subvolume sent as with a real send,
 * but in no-data mode and into the estimate.  The clone sources and the
 * parent are as they were before, for the real send that may follow.
 */
static int estimate_all(struct send_ctx *s, const struct send_opts *o,
			char **argv, struct send_estimate *est)
{
	size_t nr_clones = s->nr_clones;
	uint64_t parent_id = s->parent_id;
	int ret;

	est->no_data = o->flags & BTRFS_SEND_FLAG_NO_FILE_DATA;
	est->compressed = o->flags & BTRFS_SEND_FLAG_COMPRESSED;
	s->est = est;
	ret = send_all(s, o, argv);
	s->est = NULL;
	s->nr_clones = nr_clones;
	s->parent_id = parent_id;
	return ret;
}

static void print_estimate(const struct send_estimate *e)
{
	char size[32];

	if (verbosity == 0) {
		printf("%llu\n", (unsigned long long)e->stream_bytes);
		return;
	}
	progress_pretty_size(size, sizeof(size), e->stream_bytes);
	printf("Estimated stream size: %llu bytes (%s)\n",
	       (unsigned long long)e->stream_bytes, size);
	progress_pretty_size(size, sizeof(size), e->data_bytes);
	printf("File data: %llu bytes (%s)\n",
	       (unsigned long long)e->data_bytes, size);
}

/* The real send, with --progress: one status line over all subvolumes. */
static int send_with_progress(struct send_ctx *s, const struct send_opts *o,
			      char **argv, struct progress *prog)
{
	struct send_pump_progress shown = { .prog = prog };
	int ret;

	s->progress = &shown;
	ret = send_all(s, o, argv);
	progress_finish(prog, shown.moved, shown.cmds);
	s->progress = NULL;
	return ret;
}

static void start_progress(struct progress *prog)
{
	progress_init(prog, output_format == OUTPUT_JSON ?
		      &progress_json_view : &progress_tty_view,
		      "send", "Sent", 0);
}

static int exit_status(const struct send_ctx *s, int ret)
{
	if (ret < 0)
		return s->exit_status ? s->exit_status : 1;
	return 0;
}

/* The filesystem, the parent and clone sources, the subvolumes, --proto. */
static int prepare_send(struct send_ctx *s, struct send_opts *o,
			char **subvols, int nr_subvols)
{
	int ret;

	ret = resolve_root(s, subvols[0]);
	if (ret < 0)
		return ret;
	ret = resolve_sources(s, o);
	if (ret < 0)
		return ret;
	ret = check_subvols(s, nr_subvols, subvols);
	if (ret < 0)
		return ret;
	return setup_protocol(s, o);
}

/* --changes: each list printed to stdout or -f FILE; no stream. */
static int send_changes(struct send_ctx *s, const struct send_opts *o,
			char **argv)
{
	int ret;

	s->changes = o;
	s->changes_out = stdout;
	if (o->outname) {
		s->changes_out = fdopen(s->out_fd, "w");
		if (!s->changes_out) {
			ret = -errno;
			error("cannot open '%s': %m", o->outname);
			return ret;
		}
		/* fclose() below closes it. */
		s->out_fd = -1;
	}
	ret = send_all(s, o, argv);
	if ((fflush(s->changes_out) || ferror(s->changes_out)) && !ret) {
		ret = -EIO;
		error("cannot write the list of changes: %m");
	}
	if (o->outname && fclose(s->changes_out) && !ret) {
		ret = -errno;
		error("cannot close '%s': %s", o->outname, strerror(-ret));
	}
	return ret;
}

static int changes_run(struct send_opts *o, char **subvols, int nr_subvols)
{
	struct send_ctx s = { .out_fd = -1 };
	int ret;

	if (o->outname) {
		s.out_fd = open_output(o->outname);
		if (s.out_fd < 0) {
			ret = s.out_fd;
			goto out;
		}
	}
	ret = prepare_send(&s, o, subvols, nr_subvols);
	if (!ret)
		ret = send_changes(&s, o, subvols);
out:
	if (s.out_fd >= 0)
		close(s.out_fd);
	send_ctx_free(&s);
	return exit_status(&s, ret);
}

static int send_run(int argc, char **argv)
{
	struct send_opts o = { .proto = 1 };
	struct send_ctx s = { .out_fd = STDOUT_FILENO };
	struct send_estimate est = { 0 };
	struct progress prog;
	bool dry_run;
	char **subvols;
	int nr_subvols;
	int status;
	int ret;

	if (parse_options(argc, argv, &o, &status)) {
		send_opts_free(&o);
		return status;
	}
	subvols = argv + optind;
	nr_subvols = argc - optind;
	if (o.changes) {
		status = changes_run(&o, subvols, nr_subvols);
		send_opts_free(&o);
		return status;
	}
	/* Early, for the JSON summary of a send that fails before it starts. */
	if (o.progress)
		start_progress(&prog);
	/* --estimate alone writes no stream, and touches no -f file. */
	dry_run = o.estimate && !o.progress;

	if (dry_run) {
		o.outname = NULL;
	} else if (o.outname) {
		s.out_fd = open_output(o.outname);
		if (s.out_fd < 0) {
			ret = s.out_fd;
			goto out;
		}
	}
	if (!dry_run && isatty(s.out_fd)) {
		error("not dumping send stream into a terminal, redirect it into a file");
		ret = -EINVAL;
		goto out;
	}
	if (!dry_run)
		pipe_grow(s.out_fd, STREAM_PIPE_SIZE);
	ret = prepare_send(&s, &o, subvols, nr_subvols);
	if (ret < 0)
		goto out;

	/* A reader that goes away is reported by send_one. */
	s.sigpipe_ignored = signal(SIGPIPE, SIG_IGN) == SIG_IGN;
	if (o.estimate) {
		ret = estimate_all(&s, &o, subvols, &est);
		if (ret < 0)
			goto out;
		if (dry_run) {
			print_estimate(&est);
			if (fflush(stdout) < 0) {
				ret = -errno;
				error("cannot write the estimate: %m");
			}
			goto out;
		}
	}
	if (o.progress) {
		progress_set_total(&prog, est.stream_bytes);
		ret = send_with_progress(&s, &o, subvols, &prog);
	} else
		ret = send_all(&s, &o, subvols);
out:
	if (o.outname && s.out_fd >= 0 && close(s.out_fd) < 0 && !ret) {
		ret = -errno;
		error("cannot close '%s': %s", o.outname, strerror(-ret));
	}
	send_ctx_free(&s);
	send_opts_free(&o);
	status = exit_status(&s, ret);
	if (o.progress)
		progress_done(&prog, status);
	return status;
}
