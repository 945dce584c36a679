/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef COMMANDS_H
#define COMMANDS_H

/* A top-level command: argv[0] is the command's own name. */
struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	/* Full help, printed by "btrfs help CMD" and "btrfs CMD --help". */
	const char *usage;
	/* One line for the overview in "btrfs --help". */
	const char *summary;
};

extern const struct command cmd_send;
extern const struct command cmd_receive;

/*
 * Print a command's usage, to stdout for a status of 0 (--help), else to
 * stderr; returns status, for the caller to exit with.
 */
int print_usage(const struct command *cmd, int status);
/* "btrfs CMD: <fmt with arg>" and a pointer to --help; returns 1. */
int usage_error(const struct command *cmd, const char *fmt, const char *arg);
/* The usage error for getopt_long's ':' or '?' return c; returns 1. */
int option_error(const struct command *cmd, int c, char **argv);

#endif
