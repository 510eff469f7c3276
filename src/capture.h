/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Capture: loads the kernel side, attaches it, and hands ring-buffer records to a callback. */
#ifndef PKTRACE_CAPTURE_H
#define PKTRACE_CAPTURE_H

#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include "filter.h"
#include "pktrace.h"
#include "scope.h"

struct capture;

/* Called once per ring-buffer record; a negative return stops the current poll, and so does
 * CAPTURE_AGAIN, which hands this record over again at the next poll. */
typedef int (*capture_record_fn)(void *ctx, const void *data, size_t size);
#define CAPTURE_AGAIN 1

struct capture_config {
	const struct scope *scope;
	pid_t follow_pid; /* > 0: trace this process and everything it forks */
	unsigned long long ringbuf_bytes; /* a power of two; 0: the BPF object's default */
	int packet_events; /* a packet event is selected: attach and run the packet programs */
	int flow_events;   /* a flow event is selected: conn_state writes flow records */
	unsigned int sock_protos; /* enum pkt_sock_class: sockets whose packets are emitted */
	int icmp_errors;   /* emit the kernel's ICMP errors for the (UDP) sockets they quote */
	unsigned int if_index; /* -i: only packets on this interface of network namespace if_netns */
	unsigned int if_netns; /* (an inode number); if_index 0: any interface */
	unsigned int directions; /* -Q: bits 1 << enum pkt_direction; 0: both */
	int once;          /* --once: a loopback packet emitted at egress is not at ingress */
	/* Packets the expression rejects go no further than its program in the socket hooks;
	 * NULL: every packet goes on to the capture programs. */
	const struct filter *filter;
	unsigned int snaplen; /* --snaplen: bytes of a packet to keep in all; 0: headers only */
	capture_record_fn on_record;
	void *ctx;
	/* Non-zero once a stop signal came: a failure it caused (the verifier gives up when a
	 * signal is pending) is not reported; the caller says why it stopped. May be NULL. */
	const volatile sig_atomic_t *stopping;
};

/*
 * Check the prerequisites, load and attach the programs, and attribute existing sockets.
 * Returns NULL with errno set after printing one line that says what is missing.
 */
struct capture *capture__open(const struct capture_config *cfg);
/* Wait up to timeout_ms for records and hand them over. Returns records seen or -errno. */
int capture__poll(struct capture *c, int timeout_ms);
/* From on_record: no record not handed over yet is stamped before this (rings__safe_ns). */
uint64_t capture__safe_ns(const struct capture *c);
/* Upkeep between polls (now_ns: CLOCK_BOOTTIME): keeps the kernel side's summary of the
 * closed connections it remembers from filling up with ones it has let go. */
void capture__tend(struct capture *c, uint64_t now_ns);
/* Detach the packet programs: no record is added after this. */
void capture__detach(struct capture *c);
/* Hand over every record already in the rings without waiting (a few passes). */
int capture__drain(struct capture *c);
/* Owner definitions (pktrace.h): the last id the kernel side handed out; make it send new ones
 * for sockets whose definition has an id below floor; and whether every record in the ring
 * buffers when capture__owner_floor was last called has been handed over since. */
uint64_t capture__owner_seq(struct capture *c);
void capture__owner_floor(struct capture *c, uint64_t floor);
int capture__owner_floor_passed(struct capture *c);
/* Sum the kernel's per-CPU counters into out (enum pkt_stat). */
int capture__stats(struct capture *c, uint64_t out[STAT__MAX]);
/* Runs of pktrace's programs the kernel skipped because the same program was already running
 * on that CPU (a softirq interrupting it), but for those another program does the work of
 * (*covered: the state changes one state program did for the other): what they would have
 * seen is missing. which (if not NULL) gets each such program's name and count, "name N". */
uint64_t capture__skipped_runs(struct capture *c, char *which, size_t len, uint64_t *covered);
/* uts_lookup_fn for enrich: node name of a UTS namespace seen by the kernel side. */
int capture__uts_name(void *c, uint64_t uts_key, char *name, size_t len);
/* The cgroup v2 mount the programs are attached to. */
const char *capture__cgroup_path(const struct capture *c);
void capture__destroy(struct capture *c);

#endif /* PKTRACE_CAPTURE_H */
