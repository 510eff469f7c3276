/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Output: formats events into a large buffer and writes it in big writes. */
#ifndef PKTRACE_OUTPUT_H
#define PKTRACE_OUTPUT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

enum output_format {
	OUTPUT_TABLE = 0,
	OUTPUT_JSON,
};

#define OUTPUT_BUF_SIZE (1 << 20)

struct output {
	int fd;
	int owns_fd;
	enum output_format format;
	int header_done;
	const volatile sig_atomic_t *cancel; /* when set and non-zero, an interrupted write gives up */
	int err; /* first write error (positive errno), sticky; len then counts bytes still owed */
	uint64_t events_pending; /* events formatted into buf since the last complete flush */
	uint64_t events_written; /* events whose bytes all reached the file */
	size_t len;
	char buf[OUTPUT_BUF_SIZE];
};

/*
 * Format one event into dst (at most cap bytes, newline included, no NUL needed).
 * Return the number of bytes written, or 0 when cap is too small.
 */
size_t format_json(char *dst, size_t cap, const struct pkt_event *e);
size_t format_table(char *dst, size_t cap, const struct pkt_event *e);
size_t format_table_header(char *dst, size_t cap);

/* Open path for writing (NULL or "-": stdout). Return 0 or -errno. */
int output_open(struct output *o, const char *path, enum output_format format);
/*
 * Append one event; writes out the buffer when it is nearly full. Return 0 or -errno; after a
 * write error every later call returns the same error. -EMSGSIZE: the line exceeds the buffer.
 */
int output_event(struct output *o, const struct pkt_event *e);
/* Write out everything buffered. Return 0 or -errno (EPIPE, ENOSPC, ...). */
int output_flush(struct output *o);
/* Flush and close; return 0 or -errno. */
int output_close(struct output *o);

#endif /* PKTRACE_OUTPUT_H */
