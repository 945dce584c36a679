// SPDX-License-Identifier: GPL-2.0-only
/*
 * The pump between the kernel's send ioctl and the output, and its repair
 * of a restarted ioctl.  See send-pump.h.
 *
 * The pump follows the stream a unit at a time (the stream header, then
 * each command).  A unit that the output already holds, from an earlier
 * attempt or from the receiver's token, is checked and dropped; a unit
 * that may still hide a restart (one that begins before verify_end) is
 * read whole and its CRC checked before it is written; any later unit is
 * written as it comes, its large payloads spliced without a copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "resume.h"
#include "send-frame.h"
#include "send-pump.h"
#include "send.h"
#include "utils.h"

/* Payloads this large are spliced past the pump, not copied. */
#define SPLICE_MIN	(16 * 1024)
/*
 * Past verify_end, after a large payload, read this much at most, so that
 * the next large payload is spliced rather than read; after small ones,
 * read as much as the buffer takes.
 */
#define FAST_READ	(4 * 1024)
/* The buffer when the output takes no splice: reads and writes this big. */
#define COPY_BUFFER	(1024 * 1024)
/*
 * The kernel writes each command into the pipe on its own.  A pump that
 * reads each as it comes is woken once per command and wakes the reader
 * of its output as often: on a stream of small files, seconds of CPU on
 * both sides.  So after a read that found less than SMALL_READ and
 * emptied the pipe, the pump naps GATHER_NS, and the next read takes what
 * gathered meanwhile (the kernel fills 1 MiB of pipe in that time only
 * at a rate at which the reads are large and no nap is taken).
 */
#define SMALL_READ	(64 * 1024)
#define GATHER_NS	(1000 * 1000)

/* What a step of the pump met, beyond 0 and a negative errno. */
#define PUMP_EOF	1	/* the attempt's pipe ended */
#define PUMP_RESTART	2	/* the content shows a restarted stream */

/* After EAGAIN: data to read yet?  Then the output is full; wait for it. */
static int wait_ready(struct send_pump *p)
{
	struct pollfd pfd = { .fd = p->in, .events = POLLIN };
	int pending = 0;

	if (ioctl(p->in, FIONREAD, &pending) == 0 && pending > 0)
		return wait_writable(p->out);
	while (poll(&pfd, 1, -1) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

int send_pump_init(struct send_pump *p, int out, size_t chunk,
		   bool headerless, bool no_end,
		   const struct send_stream_pos *resume,
		   const unsigned char *frame)
{
	struct stat st;

	memset(p, 0, sizeof(*p));
	p->out = out;
	p->chunk = chunk;
	p->no_end = no_end;
	/*
	 * Into a file, splice saves no copy (the page cache is written
	 * either way) but costs a write per payload: large reads and writes
	 * are cheaper.  Into a pipe it moves pages without a copy.
	 */
	p->can_splice = fstat(out, &st) < 0 || !S_ISREG(st.st_mode);
	p->size = p->can_splice ? 2 * chunk : COPY_BUFFER;
	if (p->size < 2 * chunk)
		p->size = 2 * chunk;
	p->write_end = -1;
	p->in = -1;
	p->at.pos.headerless = headerless;
	p->at.max_len = chunk - BTRFS_SEND_CMD_HEADER_LEN;
	p->at.one_subvol = true;
	if (resume) {
		p->done = *resume;
		p->written = resume->offset;
		p->frame = frame;
		p->frame_due = true;
	}
	/* Twice the largest unit: one always fits after a compaction. */
	p->buf = malloc(p->size);
	return p->buf ? 0 : -ENOMEM;
}

void send_pump_free(struct send_pump *p)
{
	free(p->buf);
	p->buf = NULL;
}

void send_pump_release(struct send_pump *p)
{
	int fd = __atomic_exchange_n(&p->write_end, -1, __ATOMIC_SEQ_CST);

	if (fd >= 0)
		close(fd);
}

bool send_pump_restarted(const struct send_pump *p, int ioctl_err)
{
	return p->restart_seen || (p->disarmed && ioctl_err == -EBADF);
}

/*
 * The kernel holds the pipe now that it has written to it: a restarted
 * ioctl reads its arguments again and fails on the fd taken out of them.
 * A restart before this point wrote at most what was read and what is
 * still in the pipe; units that begin there are checked by content.
 */
static void disarm(struct send_pump *p, uint64_t read_total)
{
	int pending = 0;

	__atomic_store_n(p->send_fd, -1, __ATOMIC_SEQ_CST);
	send_pump_release(p);
	if (ioctl(p->in, FIONREAD, &pending) < 0)
		pending = 0;
	p->verify_end = read_total + pending;
	p->disarmed = true;
}

/* Bytes written: for --progress. */
static void moved(struct send_pump *p, size_t n)
{
	struct send_pump_progress *pp = p->progress;

	if (!pp)
		return;
	pp->moved += n;
	progress_note(pp->prog, pp->moved, pp->cmds);
	if (progress_due(pp->prog))
		progress_show(pp->prog, pp->moved, pp->cmds, pp->path,
			      pp->path_len);
}

/*
 * A command starts to go out: for --progress, count it and show its path
 * if the start of its payload is at hand.
 */
static void command_out(struct send_pump *p, size_t hlen, size_t ulen)
{
	struct send_pump_progress *pp = p->progress;
	const unsigned char *payload = p->buf + p->start + hlen;
	const char *path;
	size_t len;

	if (!pp || hlen != BTRFS_SEND_CMD_HEADER_LEN)
		return;
	pp->cmds++;
	if (!send_frame_first_path(payload, p->end - p->start - hlen,
				   ulen - hlen, &path, &len))
		return;
	if (len > sizeof(pp->path))
		len = sizeof(pp->path);
	memcpy(pp->path, path, len);
	pp->path_len = len;
}

/*
 * A command of the prefix a resumed send passes over: for --progress,
 * how far the kernel's stream is on its way to where the output goes on.
 */
static void prefix_passed(struct send_pump *p)
{
	struct send_pump_progress *pp = p->progress;

	if (pp && progress_due(pp->prog))
		progress_show(pp->prog, p->at.pos.offset, p->at.pos.cmds,
			      NULL, 0);
}

/* Write what was queued, and show it to --progress. */
static int flush(struct send_pump *p)
{
	const unsigned char *from = p->buf + p->start - p->queued;
	int ret;

	if (!p->queued)
		return 0;
	ret = write_all(p->out, from, p->queued);
	if (ret < 0)
		return ret;
	moved(p, p->queued);
	p->queued = 0;
	return 0;
}

static ssize_t read_some(int fd, unsigned char *buf, size_t len)
{
	ssize_t n;

	do
		n = read(fd, buf, len);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* What the pipe holds, up to len, after a nap if the last read found little. */
static ssize_t read_gathered(struct send_pump *p, unsigned char *buf,
			     size_t len)
{
	static const struct timespec nap = { .tv_nsec = GATHER_NS };
	static int off = -1;
	ssize_t n;

	if (off < 0)
		off = mechanism_off("gather");
	if (p->drained && !off)
		nanosleep(&nap, NULL);
	n = read_some(p->in, buf, len);
	p->drained = n >= 0 && (size_t)n < len && n < SMALL_READ;
	return n;
}

/* Make need bytes readable at buf + start: 0, PUMP_EOF or an errno. */
static int buffer_at_least(struct send_pump *p, size_t need, size_t most)
{
	size_t size = p->size;
	ssize_t n;
	int ret;

	while (p->end - p->start < need) {
		ret = flush(p);
		if (ret < 0)
			return ret;
		if (size - p->start < need || p->start == p->end) {
			memmove(p->buf, p->buf + p->start, p->end - p->start);
			p->end -= p->start;
			p->start = 0;
		}
		n = size - p->end;
		if ((size_t)n > most && need - (p->end - p->start) <= most)
			n = most;
		n = read_gathered(p, p->buf + p->end, n);
		if (n < 0)
			return n;
		if (n == 0)
			return PUMP_EOF;
		p->end += n;
		if (!p->disarmed)
			disarm(p, p->in_off + (p->end - p->start));
	}
	return 0;
}

/* Take n bytes: to write them (queue) or to drop them. */
static int consume(struct send_pump *p, size_t n, bool keep)
{
	int ret;

	if (keep) {
		p->queued += n;
		p->written += n;
	} else {
		ret = flush(p);
		if (ret < 0)
			return ret;
	}
	p->start += n;
	p->in_off += n;
	atomic_store_explicit(&p->kernel_pos, p->in_off, memory_order_relaxed);
	return 0;
}

/*
 * The next unit's header, checked for what the kernel can write at this
 * point: 0, PUMP_EOF, or -EBADMSG.
 */
static int read_unit_header(struct send_pump *p, size_t *hlen, size_t *ulen)
{
	struct send_frame_cmd c;
	uint32_t version;
	int ret;

	*hlen = send_frame_header_due(&p->at) ? BTRFS_SEND_STREAM_HEADER_LEN :
						BTRFS_SEND_CMD_HEADER_LEN;
	ret = buffer_at_least(p, *hlen,
			      p->in_off >= p->verify_end && p->can_splice &&
			      p->large_payload ? FAST_READ : SIZE_MAX);
	if (ret)
		return ret;
	if (*hlen == BTRFS_SEND_STREAM_HEADER_LEN) {
		*ulen = *hlen;
		return send_frame_stream_header(p->buf + p->start, &version) ?
		       0 : -EBADMSG;
	}
	if (send_frame_check(&p->at, p->buf + p->start, false, &c))
		return -EBADMSG;
	*ulen = (size_t)c.len + BTRFS_SEND_CMD_HEADER_LEN;
	return 0;
}

static int mismatch(struct send_pump *p, const char *what, uint64_t offset)
{
	snprintf(p->msg, sizeof(p->msg), "%s at stream offset %llu", what,
		 (unsigned long long)offset);
	return -ESTALE;
}

static int damaged(struct send_pump *p, const char *what)
{
	snprintf(p->msg, sizeof(p->msg), "%s at stream offset %llu", what,
		 (unsigned long long)p->at.pos.offset);
	return -EIO;
}

/*
 * At the boundary where the output's last whole command ends: this
 * attempt must have sent the same commands up to here.  With --resume the
 * frame goes out here, before the first byte of the rest.
 */
static int check_done(struct send_pump *p)
{
	int ret = send_frame_replay(&p->at.pos, 0, &p->done);

	if (ret)
		return mismatch(p, ret == SEND_FRAME_OTHER_CMDS ?
				"another number of commands" : "other content",
				p->at.pos.offset);
	if (!p->frame_due || p->written != p->done.offset)
		return 0;
	ret = flush(p);
	if (ret < 0)
		return ret;
	ret = write_all(p->out, p->frame, RESUME_FRAME_LEN);
	if (ret < 0)
		return ret;
	p->frame_due = false;
	if (p->progress)
		progress_skip_end(p->progress->prog, p->done.offset,
				  p->done.cmds, 0);
	return 0;
}

/* A whole unit, read and checked: to drop (replayed) or to write. */
static int take_checked(struct send_pump *p, size_t hlen, size_t ulen,
			size_t drop)
{
	struct send_frame next = p->at;
	struct send_frame_cmd c;
	int ret;

	ret = buffer_at_least(p, ulen, SIZE_MAX);
	if (ret)
		return ret;
	if (hlen == BTRFS_SEND_CMD_HEADER_LEN &&
	    send_frame_check(&p->at, p->buf + p->start, true, &c))
		return p->at.pos.offset <= p->verify_end ? PUMP_RESTART :
			damaged(p, "a command that fails its checksum");
	send_frame_advance(&next, p->buf + p->start, hlen);
	if (drop && drop != ulen && memcmp(p->buf + p->start, p->cut_hdr, hlen))
		return mismatch(p, "another command", p->at.pos.offset);
	if (!drop)
		command_out(p, hlen, ulen);
	if (drop == ulen)
		ret = consume(p, ulen, false);
	else
		ret = consume(p, drop, false) ?: consume(p, ulen - drop, true);
	if (ret)
		return ret;
	p->at = next;
	if (drop != ulen)
		p->done = next.pos;
	else if (p->frame_due)
		prefix_passed(p);
	return 0;
}

/* A unit past verify_end: written as it comes, large payloads spliced. */
static ssize_t splice_some(struct send_pump *p, size_t n)
{
	ssize_t moved;
	int ret;

	for (;;) {
		moved = splice(p->in, NULL, p->out, NULL, n, SPLICE_F_MORE);
		if (moved >= 0)
			return moved;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		ret = wait_ready(p);
		if (ret < 0)
			return ret;
	}
}

/* How much of a payload may be spliced now. */
static size_t splice_room(const struct send_pump *p, size_t left)
{
	if (!p->can_splice || left < SPLICE_MIN)
		return 0;
	return left < p->chunk ? left : p->chunk;
}

static int splice_payload(struct send_pump *p, size_t n, size_t *left)
{
	ssize_t got;

	got = splice_some(p, n);
	if (got == -EINVAL) {
		/* The output refuses splice (O_APPEND): nothing moved, copy. */
		p->can_splice = false;
		return 0;
	}
	if (got < 0)
		return got;
	if (got == 0)
		return PUMP_EOF;
	p->written += got;
	p->in_off += got;
	atomic_store_explicit(&p->kernel_pos, p->in_off, memory_order_relaxed);
	*left -= got;
	moved(p, got);
	return 0;
}

static int take_fast(struct send_pump *p, size_t hlen, size_t ulen)
{
	struct send_frame next = p->at;
	size_t left = ulen, n;
	int ret;

	send_frame_advance(&next, p->buf + p->start, hlen);
	command_out(p, hlen, ulen);
	memcpy(p->cut_hdr, p->buf + p->start, hlen);
	p->large_payload = ulen - hlen >= SPLICE_MIN;
	while (left) {
		n = p->end - p->start;
		if (n) {
			n = n < left ? n : left;
			ret = consume(p, n, true);
			left -= n;
			continue;
		}
		ret = flush(p);
		if (ret < 0)
			return ret;
		n = splice_room(p, left);
		if (n)
			ret = splice_payload(p, n, &left);
		else
			ret = buffer_at_least(p, 1,
					      !p->can_splice ? SIZE_MAX :
					      left < FAST_READ ? left :
					      FAST_READ);
		if (ret)
			return ret;
	}
	p->at = next;
	p->done = next.pos;
	return 0;
}

/* Which part of the unit at p->at the output holds already. */
static int take_unit(struct send_pump *p, size_t hlen, size_t ulen)
{
	int verdict = send_frame_replay(&p->at.pos, ulen, &p->done);
	uint64_t start = p->at.pos.offset;

	if (verdict == SEND_FRAME_TAKEN)
		return take_checked(p, hlen, ulen, ulen);
	if (verdict == SEND_FRAME_ACROSS)
		return mismatch(p, "no command boundary", p->done.offset);
	if (start < p->written)
		return take_checked(p, hlen, ulen, p->written - start);
	if (start <= p->verify_end)
		return take_checked(p, hlen, ulen, 0);
	return take_fast(p, hlen, ulen);
}

/* Read and throw away the rest of a restarted attempt's pipe. */
static int drain(struct send_pump *p)
{
	int ret = flush(p);

	p->restart_seen = true;
	while (!ret) {
		p->start = p->end = 0;
		ret = buffer_at_least(p, 1, SIZE_MAX);
	}
	return ret < 0 ? ret : 0;
}

static int pump_units(struct send_pump *p)
{
	size_t hlen, ulen;
	int ret;

	for (;;) {
		if (p->at.pos.offset == p->done.offset) {
			ret = check_done(p);
			if (ret < 0)
				return ret;
		}
		ret = read_unit_header(p, &hlen, &ulen);
		if (ret == -EBADMSG)
			ret = p->at.pos.offset <= p->verify_end ? PUMP_RESTART :
				damaged(p, "an impossible command header");
		if (!ret)
			ret = take_unit(p, hlen, ulen);
		if (ret == PUMP_RESTART)
			return drain(p);
		if (ret == PUMP_EOF)
			break;
		if (ret < 0)
			return ret;
	}
	ret = flush(p);
	if (ret < 0)
		return ret;
	p->ended = p->start == p->end && p->at.pos.offset == p->written &&
		   p->written == p->done.offset && !p->frame_due &&
		   (p->at.pos.ended || (p->no_end && p->at.pos.cmds));
	return 0;
}

void *send_pump_attempt(void *arg)
{
	struct send_pump *p = arg;

	send_frame_restart(&p->at);
	p->start = p->end = p->queued = 0;
	p->in_off = 0;
	atomic_store(&p->kernel_pos, 0);
	p->verify_end = 0;
	p->disarmed = false;
	p->restart_seen = false;
	p->ended = false;
	/* A stalled line says whether the kernel or the output is slow. */
	if (p->progress)
		progress_watch(p->progress->prog, p->in, "the kernel", p->out);
	p->err = pump_units(p);
	if (p->progress)
		progress_watch(p->progress->prog, -1, NULL, p->out);
	/*
	 * Closing the read end makes the kernel's next write into the pipe
	 * fail, which ends the ioctl when we stop early.
	 */
	close(p->in);
	p->in = -1;
	return NULL;
}

int send_pump_finish(struct send_pump *p, int ioctl_err)
{
	if (p->err)
		return p->err;
	if (ioctl_err)
		return 0;
	if (p->at.pos.offset < p->done.offset || p->frame_due)
		return mismatch(p, "the stream ends before the offset already written",
				p->at.pos.offset);
	if (!p->ended)
		return damaged(p, "the stream ends inside a command");
	return 0;
}
