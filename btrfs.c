// SPDX-License-Identifier: GPL-2.0-only
/*
 * The btrfs multiplexer: global options, then one command from the table.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "utils.h"

#define PROJECT_VERSION "0.1.0"
/* btrfs-progs' binary, for the commands this btrfs hands on to it. */
#ifndef BTRFS_PROGS_PATH
#define BTRFS_PROGS_PATH "/usr/bin/btrfs"
#endif
/* Scripts such as btrbk look for this token to learn the feature level. */
#define PROGS_COMPAT "btrfs-progs v6.2"

static int cmd_help_run(int argc, char **argv);
static int cmd_version_run(int argc, char **argv);

static const struct command cmd_help = {
	.name = "help",
	.run = cmd_help_run,
	.usage = "usage: btrfs help [<command>]\n"
		 "\n"
		 "    Display help information, for all commands or one.\n",
	.summary = "btrfs help [<command>]\n        Display help information",
};

static const struct command cmd_version = {
	.name = "version",
	.run = cmd_version_run,
	.usage = "usage: btrfs version\n"
		 "\n"
		 "    Display the version.\n",
	.summary = "btrfs version\n        Display the version",
};

static const struct command *const commands[] = {
	&cmd_receive,
	&cmd_send,
	&cmd_help,
	&cmd_version,
};

#define NR_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char global_usage[] =
	"usage: btrfs [global] <command> [<args>]\n"
	"\n"
	"Global options:\n"
	"  --format <format> output of receive --dump, send and receive --progress:\n"
	"                    text (default) or json\n"
	"  -v|--verbose      increase verbosity of the subcommand\n"
	"  -q|--quiet        print only errors\n"
	"\n"
	"Options for the main command only:\n"
	"  --help            print condensed help for all subcommands\n"
	"  --version         print version string\n";

static void print_overview(FILE *out)
{
	size_t i;

	fputs(global_usage, out);
	fputc('\n', out);
	for (i = 0; i < NR_COMMANDS; i++)
		fprintf(out, "    %s\n\n", commands[i]->summary);
	fputs("Use --help as an argument for information on a specific command.\n",
	      out);
}

/* btrfs-progs' other command groups: handed on, never reimplemented. */
static const char *const progs_commands[] = {
	"balance", "check", "device", "filesystem", "inspect-internal",
	"property", "qgroup", "quota", "replace", "rescue", "restore",
	"scrub", "subvolume",
};

static bool is_progs_command(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(progs_commands) / sizeof(progs_commands[0]); i++)
		if (!strcmp(progs_commands[i], name))
			return true;
	return false;
}

static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return !stat(a, &sa) && !stat(b, &sb) && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/*
 * Installed ahead of btrfs-progs, this btrfs runs btrfs-progs for what it
 * does not implement, with the whole command line (global options too).
 * BTRFS_PROGS overrides where it is.
 */
static int hand_off(const char *name, char **argv)
{
	const char *progs = getenv("BTRFS_PROGS");

	if (!progs || !*progs)
		progs = BTRFS_PROGS_PATH;
	if (access(progs, X_OK) || same_file(progs, "/proc/self/exe")) {
		error("'%s' is a btrfs-progs command, and btrfs-progs was not found at %s (set BTRFS_PROGS to its binary)",
		      name, progs);
		return 1;
	}
	execv(progs, argv);
	error("cannot run %s: %m", progs);
	return 1;
}

static const struct command *find_command(const char *name)
{
	size_t i;

	for (i = 0; i < NR_COMMANDS; i++)
		if (!strcmp(commands[i]->name, name))
			return commands[i];
	return NULL;
}

int print_usage(const struct command *cmd, int status)
{
	fputs(cmd->usage, status ? stderr : stdout);
	return status;
}

int usage_error(const struct command *cmd, const char *fmt, const char *arg)
{
	fprintf(stderr, "btrfs %s: ", cmd->name);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'btrfs %s --help' for more information\n",
		cmd->name);
	return 1;
}

int option_error(const struct command *cmd, int c, char **argv)
{
	char opt[3] = { '-', (char)optopt, '\0' };

	if (c == ':')
		return usage_error(cmd, "option '%s' requires an argument",
				   argv[optind - 1]);
	if (optopt)
		return usage_error(cmd, "invalid option '%s'", opt);
	return usage_error(cmd, "unrecognized option '%s'", argv[optind - 1]);
}

static int cmd_help_run(int argc, char **argv)
{
	const struct command *cmd;

	if (argc < 2) {
		print_overview(stdout);
		return 0;
	}
	cmd = find_command(argv[1]);
	if (!cmd) {
		fprintf(stderr, "btrfs: unknown command '%s'\n", argv[1]);
		print_overview(stderr);
		return 1;
	}
	return print_usage(cmd, 0);
}

static int cmd_version_run(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("%s (btrfs-send-receive %s)\n", PROGS_COMPAT, PROJECT_VERSION);
	return 0;
}

/* Global options stop at the first word that is not one. */
static int parse_global_options(int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "help", no_argument, NULL, 'H' },
		{ "version", no_argument, NULL, 'V' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "format", required_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+vq", long_options, NULL)) != -1) {
		switch (c) {
		case 'F':
			if (!strcmp(optarg, "text")) {
				output_format = OUTPUT_TEXT;
			} else if (!strcmp(optarg, "json")) {
				output_format = OUTPUT_JSON;
			} else {
				fprintf(stderr, "btrfs: unknown format '%s', use text or json\n",
					optarg);
				exit(1);
			}
			break;
		case 'v':
			verbosity++;
			break;
		case 'q':
			verbosity = 0;
			break;
		case 'H':
			print_overview(stdout);
			exit(0);
		case 'V':
			exit(cmd_version_run(0, NULL));
		default:
			if (optopt)
				fprintf(stderr, "btrfs: invalid option '-%c'\n",
					optopt);
			else
				fprintf(stderr, "btrfs: unrecognized option '%s'\n",
					argv[optind - 1]);
			fputs(global_usage, stderr);
			exit(1);
		}
	}
	return optind;
}

int main(int argc, char **argv)
{
	const struct command *cmd;
	int first;

	first = parse_global_options(argc, argv);
	if (first >= argc) {
		print_overview(stderr);
		return 1;
	}
	cmd = find_command(argv[first]);
	if (!cmd && is_progs_command(argv[first]))
		return hand_off(argv[first], argv);
	if (!cmd) {
		fprintf(stderr, "btrfs: unknown command '%s'\n", argv[first]);
		fputs(global_usage, stderr);
		return 1;
	}
	/*
	 * Each command parses its own options from a fresh start; 0 also
	 * drops the stop-at-first-argument mode of the global parse, so that
	 * options may follow arguments as in btrfs-progs.
	 */
	optind = 0;
	return cmd->run(argc - first, argv + first);
}
