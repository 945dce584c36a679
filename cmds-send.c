// SPDX-License-Identifier: GPL-2.0-only
/*
 * btrfs send: turns read-only snapshots into a stream.  Not yet
 * implemented; the command exists so that help and usage are complete.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "utils.h"

static const char send_usage[] =
	"usage: btrfs send [-ve] [-p <parent>] [-c <clone-src>] [-f <outfile>] <subvol> [<subvol>...]\n"
	"\n"
	"    Send the subvolume(s) to stdout.\n"
	"\n"
	"    Not implemented yet in this version.\n";

static int send_run(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--help"))
		return usage_exit(&cmd_send, 0);
	error("send: not implemented yet");
	return 1;
}

const struct command cmd_send = {
	.name = "send",
	.run = send_run,
	.usage = send_usage,
	.summary = "btrfs send [-ve] [-p <parent>] [-c <clone-src>] [-f <outfile>] <subvol> [<subvol>...]\n"
		   "        Send the subvolume(s) to stdout.",
};
