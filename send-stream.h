/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The send stream parser.  It reads a stream from a file descriptor,
 * validates every byte of it and turns each command into one call of a
 * callback table.  It never touches the filesystem and never prints:
 * errors come back as a negative errno plus a message from
 * send_stream_error().
 */
#ifndef SEND_STREAM_H
#define SEND_STREAM_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "send-frame.h"

struct send_timespec {
	uint64_t sec;
	uint32_t nsec;
};

struct send_encoded_write {
	uint64_t offset;
	uint64_t unencoded_file_len;
	uint64_t unencoded_len;
	uint64_t unencoded_offset;
	uint32_t compression;
	uint32_t encryption;
	const void *data;
	size_t len;
};

struct send_verity {
	uint8_t algorithm;
	uint32_t block_size;
	const void *salt;
	size_t salt_len;
	const void *sig;
	size_t sig_len;
};

/*
 * One slot per command of protocol v1-v3.  Strings are NUL-terminated and
 * valid until the callback returns; so are data pointers.  A callback
 * returns 0 or a negative errno.  A NULL slot does nothing.
 */
struct send_stream_ops {
	int (*subvol)(const char *path, const uint8_t *uuid, uint64_t ctransid,
		      void *user);
	int (*snapshot)(const char *path, const uint8_t *uuid,
			uint64_t ctransid, const uint8_t *parent_uuid,
			uint64_t parent_ctransid, void *user);
	int (*mkfile)(const char *path, void *user);
	int (*mkdir)(const char *path, void *user);
	int (*mknod)(const char *path, uint64_t mode, uint64_t rdev,
		     void *user);
	int (*mkfifo)(const char *path, void *user);
	int (*mksock)(const char *path, void *user);
	int (*symlink)(const char *path, const char *target, void *user);
	int (*rename)(const char *from, const char *to, void *user);
	/* target: the existing file, relative to the subvolume. */
	int (*link)(const char *path, const char *target, void *user);
	int (*unlink)(const char *path, void *user);
	int (*rmdir)(const char *path, void *user);
	int (*write)(const char *path, const void *data, uint64_t offset,
		     size_t len, void *user);
	int (*clone)(const char *path, uint64_t offset, uint64_t len,
		     const uint8_t *clone_uuid, uint64_t clone_ctransid,
		     const char *clone_path, uint64_t clone_offset,
		     void *user);
	int (*set_xattr)(const char *path, const char *name, const void *data,
			 size_t len, void *user);
	int (*remove_xattr)(const char *path, const char *name, void *user);
	int (*truncate)(const char *path, uint64_t size, void *user);
	int (*chmod)(const char *path, uint64_t mode, void *user);
	int (*chown)(const char *path, uint64_t uid, uint64_t gid, void *user);
	int (*utimes)(const char *path, const struct send_timespec *atime,
		      const struct send_timespec *mtime,
		      const struct send_timespec *ctime, void *user);
	int (*update_extent)(const char *path, uint64_t offset, uint64_t len,
			     void *user);
	int (*end)(void *user);
	int (*fallocate)(const char *path, uint32_t mode, uint64_t offset,
			 uint64_t len, void *user);
	int (*fileattr)(const char *path, uint64_t attr, void *user);
	int (*encoded_write)(const char *path,
			     const struct send_encoded_write *ew, void *user);
	int (*enable_verity)(const char *path, const struct send_verity *v,
			     void *user);
};

/* What send_stream_next() found. */
enum send_stream_event {
	SEND_STREAM_CMD = 0,	/* a command was decoded and applied */
	SEND_STREAM_END = 1,	/* an END command was decoded and applied */
	SEND_STREAM_EOF = 2,	/* clean end of input at a stream boundary */
	SEND_STREAM_STOPPED = 3,	/* send_stream_run(): a hook stopped it */
};

struct send_stream;

/* Start reading from fd; nothing is read until send_stream_next(). */
int send_stream_open(struct send_stream **ret, int fd);
void send_stream_close(struct send_stream *s);

/* Read with fn (as read(2), on user) instead of from the fd. */
typedef ssize_t (*send_stream_read_fn)(void *user, void *buf, size_t len);
void send_stream_set_reader(struct send_stream *s, send_stream_read_fn fn,
			    void *user);

/*
 * Read, validate and dispatch the next command, reading a stream header
 * first where one is due (at the start and after END, so that several
 * concatenated streams parse as one input).  Returns an enum
 * send_stream_event or a negative errno.  send_stream_failed_in_callback()
 * tells whether a negative return came from a callback (the stream itself
 * is still in sync and the next command may be read) or from the stream
 * (it cannot be read further).
 */
int send_stream_next(struct send_stream *s, const struct send_stream_ops *ops,
		     void *user);
int send_stream_failed_in_callback(const struct send_stream *s);

/*
 * How send_stream_run() drives the parser: what ends the loop besides the
 * end of the input and a broken stream, and what a failed callback does.
 * Each hook is given data and returns true to stop the loop, false to go
 * on.  Every hook may be NULL: a NULL before or after never stops, a NULL
 * callback_failed always does.
 */
struct send_stream_loop {
	bool stop_at_end;	/* stop after an END command */
	void *data;
	/* Before each command. */
	bool (*before)(struct send_stream *s, void *data);
	/* A callback failed with err; the stream is still in sync. */
	bool (*callback_failed)(struct send_stream *s, int err, void *data);
	/* After each command read and not stopped at. */
	bool (*after)(struct send_stream *s, void *data);
};

/*
 * Read and dispatch commands to ops (with user) until the input ends (SEND_STREAM_EOF), an
 * END with stop_at_end (SEND_STREAM_END), a hook stops (SEND_STREAM_STOPPED)
 * or an error (a negative errno; send_stream_failed_in_callback() tells a
 * callback's from the stream's, whose message is send_stream_error()).
 */
int send_stream_run(struct send_stream *s, const struct send_stream_ops *ops,
		    void *user, const struct send_stream_loop *loop);

/* The message for the last error, naming command, attribute and offset. */
const char *send_stream_error(const struct send_stream *s);

/* Protocol version of the current stream; 0 before its header is read. */
uint32_t send_stream_version(const struct send_stream *s);
/* Input offset of the start of the last command read. */
uint64_t send_stream_cmd_offset(const struct send_stream *s);
/* Input offset just past everything consumed so far. */
uint64_t send_stream_offset(const struct send_stream *s);
/* Commands decoded so far, over all concatenated streams. */
uint64_t send_stream_cmd_count(const struct send_stream *s);
/* Type of the last command read (0 if none or unknown). */
unsigned int send_stream_cmd_type(const struct send_stream *s);
/* Stream headers read so far. */
unsigned int send_stream_header_count(const struct send_stream *s);

/* The position just after the last command consumed. */
void send_stream_position(const struct send_stream *s,
			  struct send_stream_pos *pos);

/*
 * Look at the next len bytes of input without consuming them: 0 with
 * *data set, 1 when the input ends first, or a negative errno.
 */
int send_stream_peek(struct send_stream *s, const void **data, size_t len);
/* Consume len bytes that send_stream_peek() returned. */
void send_stream_skip(struct send_stream *s, size_t len);
/*
 * Go on mid-stream: the input continues a subvolume's stream right after
 * the command that left it at pos (no stream header is read first).
 * Offsets and command numbers in messages are those of the whole stream.
 */
void send_stream_resume_at(struct send_stream *s,
			   const struct send_stream_pos *pos);
/*
 * A sender stopped while the kernel sends (SIGSTOP, a debugger, a freezer)
 * makes the kernel send the subvolume's whole stream again after the bytes
 * it had already written, which may end inside a command (btrfs-progs
 * issue #719).  The parser recognises the repeat where the broken command
 * is, checks it against what it has dispatched and goes on in it, or fails
 * naming the restart when it differs.  Offsets stay input offsets; stream
 * positions (send_stream_position()) are those of the stream without the
 * repeat.
 */
struct send_stream_restart {
	uint64_t offset;	/* input offset where the stream starts again */
	uint64_t skipped;	/* input bytes passed over because of it */
};

typedef void (*send_stream_restart_fn)(const struct send_stream_restart *r,
				       void *user);

/* Call hook once for each restart repaired. */
void send_stream_set_restart_hook(struct send_stream *s,
				  send_stream_restart_fn hook, void *user);
/*
 * With *flag set by a signal handler, a read interrupted by the signal
 * (EINTR) fails with -EINTR instead of being restarted.
 */
void send_stream_set_interrupt(struct send_stream *s,
			       volatile sig_atomic_t *flag);
/*
 * The PATH attribute of the last command decoded, not NUL-terminated, or
 * NULL if it had none; valid until the next send_stream_next().
 */
const char *send_stream_cmd_path(const struct send_stream *s, size_t *len);
/*
 * Whether a receiver may apply cmd again after it failed (for a reason
 * that may pass, a full disk): same result, no state kept.
 */
bool send_cmd_is_repeatable(unsigned int cmd);

#endif
