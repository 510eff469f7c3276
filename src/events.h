/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The event catalogue: the one place an event is defined. -e, --list, the JSON argument names
 * and (later) the kernel hooks to enable are all read from events[]. Adding an event: one
 * enum event_id value, one row in events[] (src/events.c), and the code that emits it.
 */
#ifndef PKTRACE_EVENTS_H
#define PKTRACE_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Every event the code can emit. EVENT__COUNT stays below 64: a selection is a uint64_t. */
enum event_id {
	EVENT_NET_PACKET_TCP,
	EVENT_NET_FLOW_TCP_BEGIN,
	EVENT_NET_FLOW_TCP_END,
	EVENT_NET_PACKET_UDP,
	EVENT_NET_PACKET_ICMP,
	EVENT_NET_PACKET_ICMPV6,
	EVENT_NET_PACKET_IPV4,
	EVENT_NET_PACKET_IPV6,
	EVENT__COUNT,
};

/* A selection of events: bit (1 << enum event_id) per event. */
typedef uint64_t event_mask;
#define EVENT_BIT(id) ((event_mask)1 << (id))

/* Sets an event belongs to (bits of event_def.sets); names in event_sets[]. */
enum event_set {
	EVSET_NETWORK_EVENTS = 1 << 0, /* every network event */
	EVSET_FLOWS = 1 << 1,          /* flow events: a TCP connection's begin and end */
};

/* Kernel hooks an event needs (bits of event_def.deps); hooks and programs in event_deps[]. */
enum event_dep {
	EVDEP_SOCKET_OWNER = 1 << 0,  /* who owns a socket: creation, accept, send/recv, start-up */
	EVDEP_CONN_STATE = 1 << 1,    /* TCP state changes: the owner of a closing connection */
	EVDEP_SCOPE_FOLLOW = 1 << 2,  /* fork/exit: scope follows children */
	EVDEP_CGROUP_SKB = 1 << 3,    /* packets of full sockets */
	EVDEP_DEVICE_PATH = 1 << 4,   /* packets no socket hook sees (timewait, kernel replies) */
};

/* Argument names, as Tracee spells them: the JSON printer's "name" of each args[] entry. */
#define EVENT_ARG_METADATA "metadata"
#define EVENT_ARG_PROTO_TCP "proto_tcp"
#define EVENT_ARG_TCP_OPTIONS "tcp_options"
#define EVENT_ARG_PROTO_UDP "proto_udp"
#define EVENT_ARG_PROTO_ICMP "proto_icmp"
#define EVENT_ARG_PROTO_ICMPV6 "proto_icmpv6"
#define EVENT_ARG_PROTO_IPV4 "proto_ipv4"
#define EVENT_ARG_PROTO_IPV6 "proto_ipv6"
#define EVENT_ARG_CONN_DIRECTION "conn_direction"
#define EVENT_ARG_SRC "src"
#define EVENT_ARG_DST "dst"
#define EVENT_ARG_SRC_PORT "src_port"
#define EVENT_ARG_DST_PORT "dst_port"
#define EVENT_ARG_SUMMARY "summary"

struct event_arg {
	const char *name;
	const char *type;  /* Tracee's Go type: the JSON printer's "type" */
	const char *when;  /* NULL: always present; else when it is (and only then) */
};

#define EVENT_MAX_ARGS 8

struct event_def {
	enum event_id id;
	const char *name;
	unsigned int sets;  /* enum event_set bits */
	unsigned int deps;  /* enum event_dep bits */
	unsigned int socks; /* enum pkt_sock_class bits: the sockets whose packets it needs */
	size_t n_args;
	struct event_arg args[EVENT_MAX_ARGS]; /* in the order the JSON printer emits them */
};

struct event_set_def {
	unsigned int bit;
	const char *name;
	const char *what;
	const char *pending; /* NULL, or the events of the set that are not implemented yet */
};

struct event_dep_def {
	unsigned int bit;
	const char *name;
	const char *hooks[6];    /* BPF section names; NULL-terminated */
	const char *programs[6]; /* their programs in the skeleton, same order */
};

extern const struct event_def events[EVENT__COUNT];
extern const struct event_set_def event_sets[];
extern const size_t event_sets_n;
extern const struct event_dep_def event_deps[];
extern const size_t event_deps_n;

/* The event called name[0..len), or NULL. */
const struct event_def *event_by_name(const char *name, size_t len);
/* The set called name[0..len), or NULL. */
const struct event_set_def *event_set_by_name(const char *name, size_t len);
/* The events of a set (0 when it has none yet). */
event_mask event_set_members(unsigned int set_bit);
/* Every event's and set's name, ", "-separated, into buf: for error messages. */
void event_known_names(char *buf, size_t cap);
/* The union of the deps of the selected events. */
unsigned int event_deps_of(event_mask selected);
/* The union of the socket classes (enum pkt_sock_class) the selected events need. */
unsigned int event_socks_of(event_mask selected);
/* The packet events (every event with a socket class). */
event_mask event_packet_events(void);
/* The selected events' names, ","-separated, into buf. */
void event_names_of(event_mask selected, char *buf, size_t cap);

/* --list: the catalogue as a table, or (json) one JSON object per event per line. 0 or -1. */
int events_list(FILE *out, bool json);

#endif /* PKTRACE_EVENTS_H */
