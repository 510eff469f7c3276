/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The command line. */
#ifndef PKTRACE_OPTS_H
#define PKTRACE_OPTS_H

#include <stdio.h>

#include "events.h"
#include "output.h"
#include "scope.h"

enum opts_result {
	OPTS_RUN = 0,  /* go on and trace */
	OPTS_EXIT = 1, /* --help, --version or --list was printed: exit 0 */
	OPTS_ERROR = 2, /* a one-line error was printed to stderr: exit 2 */
};

struct opts {
	enum output_format format;
	const char *output_path; /* NULL: stdout */
	/* Capture files (-w, -r) */
	const char *write_path; /* -w: pcapng of the packets ("-": stdout); NULL: none */
	const char *read_path;  /* -r: events from a pcap or pcapng file, no BPF; NULL: live */
	int text_given;         /* -F or -o given: with -w, events go there too */
	struct scope scope;
	char **command; /* argv after "--", NULL-terminated; NULL when none */
	event_mask events; /* selected events: EVENT_BIT(enum event_id) each; default net_packet_tcp */
	int events_given;   /* -e was on the command line: its names replace the default */
	double hold_time;        /* seconds a passive connection waits for a task to take it */
	unsigned long hold_packets; /* records held at once */
	unsigned long hold_bytes;   /* record bytes held at once */
	unsigned long long order_window_us; /* --order-window: reordering span; 0: none */
	unsigned long long order_hold_us;   /* --order-hold: events wait behind held packets */
	const char *user;           /* -Z: who pktrace runs as after loading; "root" keeps root */
	int user_given;             /* -Z was on the command line (not the default) */
	unsigned long long ringbuf_bytes; /* -B, rounded up to a power of two; 0: the default */
	/* tcpdump's habits */
	const char *interface; /* -i: only packets on this interface; NULL: any */
	unsigned int directions; /* -Q: OPTS_DIR_IN | OPTS_DIR_OUT (inout, the default) */
	unsigned long long count; /* -c: exit after this many events; 0: no limit */
	int once;                 /* --once: a loopback packet once, at egress */
	char *filter_expr; /* the words after the options (before "--"), joined; NULL: none */
	int dump_filter;   /* --dump-filter: print the filter's programs and exit */
	const char *live_only; /* the last option given that only live capture takes (-r refuses) */
	unsigned int snaplen;     /* --snaplen: bytes of a packet -w keeps, headers included
				   * (1 to PKT_SNAP_MAX); 0: the headers only */
};

#define OPTS_DIR_IN 1
#define OPTS_DIR_OUT 2

#define OPTS_DEFAULT_USER "nobody"
#define OPTS_ORDER_WINDOW_US 2000ULL
#define OPTS_ORDER_HOLD_US 50000ULL
#define OPTS_RINGBUF_MIN_KIB 64ULL
#define OPTS_RINGBUF_MAX_KIB (1ULL << 20)

/* Parse argv into *o. Help and version go to out, errors to err. */
enum opts_result opts_parse(struct opts *o, int argc, char **argv, FILE *out, FILE *err);
/* -w and -r against the rest of the command line (after opts_parse): OPTS_RUN or OPTS_ERROR. */
enum opts_result opts_check_files(const struct opts *o, FILE *err);

#endif /* PKTRACE_OPTS_H */
