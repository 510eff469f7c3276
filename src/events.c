// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The event catalogue (see events.h) and what is derived from it: lookups and --list. */
#include <string.h>

#include "events.h"
#include "pktrace.h"

const struct event_set_def event_sets[] = {
	{ EVSET_NETWORK_EVENTS, "network_events", "every network event", NULL },
	{ EVSET_FLOWS, "flows", "flow events", NULL },
};
const size_t event_sets_n = sizeof(event_sets) / sizeof(event_sets[0]);

/* Hook and program names as in src/pktrace.bpf.c and the skeleton capture.c attaches. */
const struct event_dep_def event_deps[] = {
	{ EVDEP_SOCKET_OWNER, "socket_owner",
	  { "cgroup/sock_create", "cgroup/getpeername4", "cgroup/getpeername6",
	    "tp_btf/sock_send_length",
	    "tp_btf/sock_recv_length", "iter/task_file" },
	  { "owner_sock_create", "owner_peername4", "owner_peername6", "owner_send", "owner_recv",
	    "owner_existing" } },
	{ EVDEP_CONN_STATE, "conn_state", { "tp_btf/inet_sock_set_state" }, { "conn_state" } },
	{ EVDEP_SCOPE_FOLLOW, "scope_follow",
	  { "tp_btf/sched_process_fork", "tp_btf/sched_process_exit" },
	  { "scope_follow_fork", "scope_forget_exit" } },
	{ EVDEP_CGROUP_SKB, "cgroup_skb", { "cgroup_skb/ingress", "cgroup_skb/egress" },
	  { "capture_ingress", "capture_egress" } },
	{ EVDEP_DEVICE_PATH, "device_path", { "tp_btf/netif_receive_skb", "tp_btf/net_dev_queue" },
	  { "capture_dev_ingress", "capture_dev_egress" } },
};
const size_t event_deps_n = sizeof(event_deps) / sizeof(event_deps[0]);

/* What every packet event needs: who owns each socket, packets at the socket and the device. */
#define PACKET_DEPS                                                                                \
	(EVDEP_SOCKET_OWNER | EVDEP_CONN_STATE | EVDEP_SCOPE_FOLLOW | EVDEP_CGROUP_SKB |           \
	 EVDEP_DEVICE_PATH)

#define PKT_SOCK_ALL (PKT_SOCK_TCP | PKT_SOCK_UDP | PKT_SOCK_ICMP | PKT_SOCK_RAW)

/* A packet event with one protocol arg after the metadata. */
#define PACKET_EVENT(id_, name_, socks_, arg_, type_, when_)                                      \
	[id_] = { .id = id_,                                                                       \
		  .name = name_,                                                                   \
		  .sets = EVSET_NETWORK_EVENTS,                                                    \
		  .deps = PACKET_DEPS,                                                             \
		  .socks = socks_,                                                                 \
		  .n_args = 2,                                                                     \
		  .args = { { EVENT_ARG_METADATA, "trace.PacketMetadata", NULL },                  \
			    { arg_, type_, when_ } } }

/* The args both flow events share; the end event adds its summary. */
#define FLOW_ARGS                                                                                  \
	{ EVENT_ARG_CONN_DIRECTION, "string", NULL }, { EVENT_ARG_SRC, "string", NULL },           \
		{ EVENT_ARG_DST, "string", NULL }, { EVENT_ARG_SRC_PORT, "u16", NULL },            \
		{ EVENT_ARG_DST_PORT, "u16", NULL }

/* The catalogue. Designated by id, so a row can never sit at another event's index. */
const struct event_def events[EVENT__COUNT] = {
	[EVENT_NET_PACKET_TCP] = {
		.id = EVENT_NET_PACKET_TCP,
		.name = "net_packet_tcp",
		.sets = EVSET_NETWORK_EVENTS,
		.deps = PACKET_DEPS,
		.socks = PKT_SOCK_TCP | PKT_SOCK_RAW,
		.n_args = 3,
		.args = {
			{ EVENT_ARG_METADATA, "trace.PacketMetadata", NULL },
			{ EVENT_ARG_PROTO_TCP, "trace.ProtoTCP",
			  "a TCP header was read" },
			{ EVENT_ARG_TCP_OPTIONS, "trace.TCPOptions", "the TCP header has options" },
		},
	},
	/* No iface: a flow is read from its socket, which names no device. */
	[EVENT_NET_FLOW_TCP_BEGIN] = {
		.id = EVENT_NET_FLOW_TCP_BEGIN,
		.name = "net_flow_tcp_begin",
		.sets = EVSET_NETWORK_EVENTS | EVSET_FLOWS,
		.deps = EVDEP_SOCKET_OWNER | EVDEP_CONN_STATE | EVDEP_SCOPE_FOLLOW,
		.n_args = 5,
		.args = { FLOW_ARGS },
	},
	[EVENT_NET_FLOW_TCP_END] = {
		.id = EVENT_NET_FLOW_TCP_END,
		.name = "net_flow_tcp_end",
		.sets = EVSET_NETWORK_EVENTS | EVSET_FLOWS,
		.deps = EVDEP_SOCKET_OWNER | EVDEP_CONN_STATE | EVDEP_SCOPE_FOLLOW,
		.n_args = 6,
		.args = { FLOW_ARGS, { EVENT_ARG_SUMMARY, "trace.FlowSummary", NULL } },
	},
	PACKET_EVENT(EVENT_NET_PACKET_UDP, "net_packet_udp", PKT_SOCK_UDP | PKT_SOCK_RAW,
		     EVENT_ARG_PROTO_UDP, "trace.ProtoUDP", "a UDP header was read"),
	/* ICMP errors the kernel sends or receives are the quoted socket's: their owner's. */
	PACKET_EVENT(EVENT_NET_PACKET_ICMP, "net_packet_icmp", PKT_SOCK_ICMP | PKT_SOCK_RAW,
		     EVENT_ARG_PROTO_ICMP, "trace.ProtoICMP", "an ICMP header was read"),
	PACKET_EVENT(EVENT_NET_PACKET_ICMPV6, "net_packet_icmpv6", PKT_SOCK_ICMP | PKT_SOCK_RAW,
		     EVENT_ARG_PROTO_ICMPV6, "trace.ProtoICMPv6", "an ICMPv6 header was read"),
	PACKET_EVENT(EVENT_NET_PACKET_IPV4, "net_packet_ipv4", PKT_SOCK_ALL, EVENT_ARG_PROTO_IPV4,
		     "trace.ProtoIPv4", NULL),
	PACKET_EVENT(EVENT_NET_PACKET_IPV6, "net_packet_ipv6", PKT_SOCK_ALL, EVENT_ARG_PROTO_IPV6,
		     "trace.ProtoIPv6", NULL),
};

static bool name_is(const char *name, const char *s, size_t len)
{
	return strlen(name) == len && !memcmp(name, s, len);
}

const struct event_def *event_by_name(const char *name, size_t len)
{
	for (size_t i = 0; i < EVENT__COUNT; i++)
		if (name_is(events[i].name, name, len))
			return &events[i];
	return NULL;
}

const struct event_set_def *event_set_by_name(const char *name, size_t len)
{
	for (size_t i = 0; i < event_sets_n; i++)
		if (name_is(event_sets[i].name, name, len))
			return &event_sets[i];
	return NULL;
}

event_mask event_set_members(unsigned int set_bit)
{
	event_mask m = 0;

	for (size_t i = 0; i < EVENT__COUNT; i++)
		if (events[i].sets & set_bit)
			m |= EVENT_BIT(i);
	return m;
}

static void append(char *buf, size_t cap, const char *sep, const char *s)
{
	size_t n = strlen(buf);

	if (n + 1 >= cap)
		return;
	snprintf(buf + n, cap - n, "%s%s", n ? sep : "", s);
}

void event_known_names(char *buf, size_t cap)
{
	if (!cap)
		return;
	buf[0] = '\0';
	for (size_t i = 0; i < EVENT__COUNT; i++)
		append(buf, cap, ", ", events[i].name);
	for (size_t i = 0; i < event_sets_n; i++)
		append(buf, cap, ", ", event_sets[i].name);
}

unsigned int event_deps_of(event_mask selected)
{
	unsigned int deps = 0;

	for (size_t i = 0; i < EVENT__COUNT; i++)
		if (selected & EVENT_BIT(i))
			deps |= events[i].deps;
	return deps;
}

unsigned int event_socks_of(event_mask selected)
{
	unsigned int socks = 0;

	for (size_t i = 0; i < EVENT__COUNT; i++)
		if (selected & EVENT_BIT(i))
			socks |= events[i].socks;
	return socks;
}

event_mask event_packet_events(void)
{
	event_mask m = 0;

	for (size_t i = 0; i < EVENT__COUNT; i++)
		if (events[i].socks)
			m |= EVENT_BIT(i);
	return m;
}

void event_names_of(event_mask selected, char *buf, size_t cap)
{
	if (!cap)
		return;
	buf[0] = '\0';
	for (size_t i = 0; i < EVENT__COUNT; i++)
		if (selected & EVENT_BIT(i))
			append(buf, cap, ",", events[i].name);
}

/* The text of line `line` of an event's cell in column col of the table; NULL past its end. */
enum { COL_EVENT, COL_SETS, COL_ARGS, COL_DEPS, COL__N };

static const char *cell_line(const struct event_def *e, int col, size_t line, char *buf,
			     size_t cap)
{
	size_t k = 0, i;

	switch (col) {
	case COL_EVENT:
		return line == 0 ? e->name : NULL;
	case COL_SETS:
		for (i = 0; i < event_sets_n; i++)
			if ((e->sets & event_sets[i].bit) && k++ == line)
				return event_sets[i].name;
		return NULL;
	case COL_ARGS:
		if (line >= e->n_args)
			return NULL;
		snprintf(buf, cap, "%s: %s%s%s%s", e->args[line].name, e->args[line].type,
			 e->args[line].when ? " (if " : "",
			 e->args[line].when ? e->args[line].when : "",
			 e->args[line].when ? ")" : "");
		return buf;
	case COL_DEPS:
		for (i = 0; i < event_deps_n; i++)
			if ((e->deps & event_deps[i].bit) && k++ == line)
				return event_deps[i].name;
		return NULL;
	}
	return NULL;
}

static int list_table(FILE *out)
{
	static const char *const head[COL__N] = { "EVENT", "SETS", "ARGS", "DEPENDS ON" };
	size_t width[COL__N], line, more, i;
	char buf[256];
	const char *s;
	int col;

	for (col = 0; col < COL__N; col++)
		width[col] = strlen(head[col]);
	for (i = 0; i < EVENT__COUNT; i++)
		for (col = 0; col < COL__N; col++)
			for (line = 0; (s = cell_line(&events[i], col, line, buf, sizeof(buf)));
			     line++)
				if (strlen(s) > width[col])
					width[col] = strlen(s);
	fprintf(out, "%-*s  %-*s  %-*s  %s\n", (int)width[0], head[0], (int)width[1], head[1],
		(int)width[2], head[2], head[3]);
	for (i = 0; i < EVENT__COUNT; i++) {
		for (line = 0;; line++) {
			more = 0;
			for (col = 0; col < COL__N; col++)
				more += cell_line(&events[i], col, line, buf, sizeof(buf)) != NULL;
			if (!more)
				break;
			for (col = 0; col < COL__N; col++) {
				s = cell_line(&events[i], col, line, buf, sizeof(buf));
				if (col == COL__N - 1)
					fprintf(out, "%s\n", s ? s : "");
				else
					fprintf(out, "%-*s  ", (int)width[col], s ? s : "");
			}
		}
	}
	fputs("\nSETS\n", out);
	for (i = 0; i < event_sets_n; i++) {
		event_names_of(event_set_members(event_sets[i].bit), buf, sizeof(buf));
		fprintf(out, "%-*s  %s: %s", (int)width[0], event_sets[i].name, event_sets[i].what,
			buf[0] ? buf : "none yet");
		if (event_sets[i].pending)
			fprintf(out, " (%s: not implemented yet)", event_sets[i].pending);
		fputc('\n', out);
	}
	fputs("\nDEPENDENCIES (kernel hooks)\n", out);
	for (i = 0; i < event_deps_n; i++) {
		buf[0] = '\0';
		for (line = 0; line < 6 && event_deps[i].hooks[line]; line++)
			append(buf, sizeof(buf), ", ", event_deps[i].hooks[line]);
		fprintf(out, "%-*s  %s\n", (int)width[0], event_deps[i].name, buf);
	}
	return 0;
}

/* Catalogue strings are plain ASCII; escape quote and backslash anyway. */
static void json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

static void json_str_array(FILE *out, const char *const *v, size_t max)
{
	fputc('[', out);
	for (size_t n = 0; n < max && v[n]; n++) {
		if (n)
			fputc(',', out);
		json_str(out, v[n]);
	}
	fputc(']', out);
}

static int list_json(FILE *out)
{
	for (size_t i = 0; i < EVENT__COUNT; i++) {
		const struct event_def *e = &events[i];
		size_t k, n = 0;

		fprintf(out, "{\"id\":%d,\"name\":", (int)e->id);
		json_str(out, e->name);
		fputs(",\"sets\":[", out);
		for (k = 0; k < event_sets_n; k++) {
			if (!(e->sets & event_sets[k].bit))
				continue;
			if (n++)
				fputc(',', out);
			json_str(out, event_sets[k].name);
		}
		fputs("],\"args\":[", out);
		for (k = 0; k < e->n_args; k++) {
			fputs(k ? ",{\"name\":" : "{\"name\":", out);
			json_str(out, e->args[k].name);
			fputs(",\"type\":", out);
			json_str(out, e->args[k].type);
			fprintf(out, ",\"optional\":%s", e->args[k].when ? "true" : "false");
			if (e->args[k].when) {
				fputs(",\"when\":", out);
				json_str(out, e->args[k].when);
			}
			fputc('}', out);
		}
		fputs("],\"depends_on\":[", out);
		for (k = 0, n = 0; k < event_deps_n; k++) {
			if (!(e->deps & event_deps[k].bit))
				continue;
			fputs(n++ ? ",{\"name\":" : "{\"name\":", out);
			json_str(out, event_deps[k].name);
			fputs(",\"hooks\":", out);
			json_str_array(out, event_deps[k].hooks, 6);
			fputs(",\"programs\":", out);
			json_str_array(out, event_deps[k].programs, 6);
			fputc('}', out);
		}
		fputs("]}\n", out);
	}
	return 0;
}

int events_list(FILE *out, bool json)
{
	if (json)
		list_json(out);
	else
		list_table(out);
	return fflush(out) || ferror(out) ? -1 : 0;
}
