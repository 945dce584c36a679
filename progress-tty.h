/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The text view (progress-tty.c): on a terminal, a line redrawn in
 * place, kept alive by a thread of its own during a stall, its fields
 * fitted to the terminal's width, on a row of its own when a send and a
 * receive draw on the same terminal; elsewhere, plain lines.
 */
#ifndef PROGRESS_TTY_H
#define PROGRESS_TTY_H

#include "progress.h"

extern const struct progress_view progress_tty_view;

#endif
