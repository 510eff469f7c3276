// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Buffered writer: events are formatted into one big buffer that is written out in few writes. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "output.h"
#include "pcapng.h"

/* Room kept free before formatting an event: far above the longest line (about 1.3 KiB). */
#define OUTPUT_LOW_WATER 4096

int output_open(struct output *o, const char *path, enum output_format format)
{
	/* The 1 MiB buffer is left uninitialized: only buf[0..len) is ever read. */
	o->fd = -1;
	o->owns_fd = 0;
	o->format = format;
	o->header_done = 0;
	o->header_owed = 0;
	o->err = 0;
	o->len = 0;
	o->events_pending = 0;
	o->events_written = 0;
	o->cancel = NULL;
	o->cancel_ns = 0;
	memset(&o->png, 0, sizeof(o->png));
	o->packet = NULL;
	if (format == OUTPUT_PCAPNG) {
		struct stat st;

		if (!stat("/proc/self/ns/net", &st))
			o->png.host_netns = (uint32_t)st.st_ino;
		/* The section header goes first even if no packet follows: an empty capture opens. */
		o->len = format_pcapng_header(o->buf, OUTPUT_BUF_SIZE);
	}

	/* localtime_r need not read TZ by itself (POSIX); do it once here, not per event. */
	if (format == OUTPUT_TABLE || format == OUTPUT_TEXT)
		tzset();

	if (!path || strcmp(path, "-") == 0) {
		o->fd = STDOUT_FILENO;
		return 0;
	}
	/* O_NOFOLLOW: a link planted where the file should be must not redirect the output.
	 * O_NONBLOCK: a FIFO nobody reads yet is -ENXIO, not a wait; writes then block again. */
	o->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK,
		     0600);
	if (o->fd < 0 || fcntl(o->fd, F_SETFL, fcntl(o->fd, F_GETFL) & ~O_NONBLOCK)) {
		int err = errno;

		if (o->fd >= 0)
			close(o->fd);
		o->fd = -1;
		o->err = err;
		return -err;
	}
	o->owns_fd = 1;
	return 0;
}

static size_t format_one(struct output *o, const struct pkt_event *e)
{
	char *dst = o->buf + o->len;
	size_t cap = OUTPUT_BUF_SIZE - o->len;

	if (o->format == OUTPUT_PCAPNG)
		return o->packet ? format_pcapng_packet(dst, cap, &o->png, e, o->packet_events,
							o->packet) : 0;
	if (o->format == OUTPUT_JSON)
		return format_json(dst, cap, e);
	if (o->format == OUTPUT_TEXT)
		return format_text(dst, cap, e);
	return format_table(dst, cap, e);
}

int output_event(struct output *o, const struct pkt_event *e)
{
	size_t n;
	int ret;

	if (o->err)
		return -o->err;
	if (OUTPUT_BUF_SIZE - o->len < OUTPUT_LOW_WATER) {
		ret = output_flush(o);
		if (ret)
			return ret;
	}
	if (o->format == OUTPUT_TABLE && !o->header_done) {
		n = format_table_header(o->buf + o->len, OUTPUT_BUF_SIZE - o->len);
		if (!n)
			return -ENOBUFS;
		o->len += n;
		o->header_done = 1;
		o->header_owed = 1;
	}
	n = format_one(o, e);
	if (!n) {
		/* Only a huge hostname or container id gets here: retry in an empty buffer. */
		ret = output_flush(o);
		if (ret)
			return ret;
		n = format_one(o, e);
		if (!n)
			return -EMSGSIZE;
	}
	o->len += n;
	o->events_pending++;
	return 0;
}

int output_packet(struct output *o, const struct pkt_event *e, uint64_t events,
		  const struct pkt_bytes *b)
{
	int ret;

	if (o->format != OUTPUT_PCAPNG)
		return -EINVAL;
	o->packet = b;
	o->packet_events = events;
	ret = output_event(o, e);
	o->packet = NULL;
	return ret;
}

/* After a stop request the reader gets a short grace; then whatever is left is given up. */
static int cancel_due(struct output *o)
{
	struct timespec ts;
	uint64_t now;

	if (!o->cancel || !*o->cancel)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	if (!o->cancel_ns)
		o->cancel_ns = now;
	return now - o->cancel_ns >= OUTPUT_CANCEL_GRACE_NS;
}

/* Wait until a non-blocking fd (an inherited stdout, say) can take more, or a cancel is due. */
static int wait_writable(struct output *o)
{
	struct pollfd pfd = {.fd = o->fd, .events = POLLOUT};
	int n;

	for (;;) {
		if (cancel_due(o))
			return -ECANCELED;
		n = poll(&pfd, 1, 50);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

/* pcapng: the packet blocks wholly among the first off bytes (blocks are whole in buf). */
static uint64_t count_packet_blocks(const char *buf, size_t off)
{
	uint32_t type, len;
	uint64_t n = 0;
	size_t at = 0;

	while (off - at >= 12) {
		memcpy(&type, buf + at, 4);
		memcpy(&len, buf + at + 4, 4);
		if (len < 12 || len > off - at)
			break;
		n += type == PCAPNG_EPB;
		at += len;
	}
	return n;
}

/* A flush cut short: the whole lines among the first off bytes are events that got out. */
static void count_lines_out(struct output *o, size_t off)
{
	const char *p = o->buf, *end = o->buf + off;
	uint64_t lines = 0;

	if (o->format == OUTPUT_PCAPNG)
		p = end, lines = count_packet_blocks(o->buf, off);
	while (p < end && (p = memchr(p, '\n', (size_t)(end - p)))) {
		lines++;
		p++;
	}
	if (lines && o->header_owed) {
		lines--;
		o->header_owed = 0;
	}
	if (lines > o->events_pending)
		lines = o->events_pending;
	o->events_written += lines;
	o->events_pending -= lines;
}

int output_flush(struct output *o)
{
	size_t off = 0;
	ssize_t n;
	int err = 0;

	if (o->err)
		return -o->err;
	while (off < o->len) {
		n = write(o->fd, o->buf + off, o->len - off);
		if (n > 0) {
			off += (size_t)n;
			/* A reader that takes a trickle must not hold a stop either. */
			if (off < o->len && cancel_due(o)) {
				err = ECANCELED;
				break;
			}
			continue;
		}
		if (n == 0) {
			/* write() of a non-zero count never returns 0 on Linux; do not spin. */
			err = EIO;
			break;
		}
		if (errno == EINTR) {
			/* A stalled reader must not keep pktrace from stopping on a signal. */
			if (cancel_due(o)) {
				err = ECANCELED;
				break;
			}
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			err = -wait_writable(o);
			if (err)
				break;
			continue;
		}
		err = errno;
		break;
	}
	/* Keep what was not written at the front so len always counts the bytes still owed. */
	if (off < o->len) {
		count_lines_out(o, off);
		memmove(o->buf, o->buf + off, o->len - off);
	}
	o->len -= off;
	if (err) {
		o->err = err;
		return -err;
	}
	o->events_written += o->events_pending;
	o->events_pending = 0;
	o->header_owed = 0;
	return 0;
}

int output_close(struct output *o)
{
	int ret = output_flush(o);

	if (o->owns_fd && o->fd >= 0) {
		/* close() reports deferred write errors (NFS); keep the first error. */
		/* Linux closes the fd even when close() fails with EINTR: not an error for us. */
		if (close(o->fd) && errno != EINTR && !ret)
			ret = -errno;
	}
	o->fd = -1;
	o->owns_fd = 0;
	return ret;
}
