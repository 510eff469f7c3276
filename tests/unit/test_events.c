// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The event catalogue: --list (table and JSON) names every event in it, and the JSON printer's
 * event and argument names are the catalogue's, checked on what format_json really prints for
 * packets decoded from raw bytes.
 */
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "decode.h"
#include "events.h"
#include "output.h"

static char *list_text;

static int teardown(void **state)
{
	free(list_text);
	list_text = NULL;
	return 0;
}

static void list(bool json)
{
	size_t len;
	FILE *f;

	free(list_text);
	f = open_memstream(&list_text, &len);
	assert_non_null(f);
	assert_int_equal(events_list(f, json), 0);
	fclose(f);
}

static void test_catalogue_is_consistent(void **state)
{
	unsigned int all_sets = 0, all_deps = 0;
	size_t i, j;

	for (i = 0; i < event_sets_n; i++)
		all_sets |= event_sets[i].bit;
	for (i = 0; i < event_deps_n; i++) {
		all_deps |= event_deps[i].bit;
		for (j = 0; j < 6 && event_deps[i].hooks[j]; j++)
			assert_non_null(event_deps[i].programs[j]);
	}
	assert_true(EVENT__COUNT <= 64);
	for (i = 0; i < EVENT__COUNT; i++) {
		const struct event_def *e = &events[i];

		assert_int_equal(e->id, i);
		assert_non_null(e->name);
		assert_ptr_equal(event_by_name(e->name, strlen(e->name)), e);
		assert_null(event_set_by_name(e->name, strlen(e->name)));
		/* Every event is a network event, in known sets, needing known hooks. */
		assert_true(e->sets & EVSET_NETWORK_EVENTS);
		assert_int_equal(e->sets & ~all_sets, 0);
		assert_int_not_equal(e->deps, 0);
		assert_int_equal(e->deps & ~all_deps, 0);
		assert_true(e->n_args >= 1 && e->n_args <= EVENT_MAX_ARGS);
		for (j = 0; j < e->n_args; j++) {
			assert_non_null(e->args[j].name);
			assert_non_null(e->args[j].type);
		}
	}
	for (i = 0; i < event_sets_n; i++)
		assert_ptr_equal(event_set_by_name(event_sets[i].name, strlen(event_sets[i].name)),
				 &event_sets[i]);
	assert_int_equal(event_set_members(EVSET_NETWORK_EVENTS), EVENT_BIT(EVENT__COUNT) - 1);
}

static void test_list_table_names_every_event(void **state)
{
	char want[128];
	size_t i, j;

	list(false);
	assert_int_equal(strncmp(list_text, "EVENT ", 6), 0);
	for (i = 0; i < EVENT__COUNT; i++) {
		/* The event starts a line, followed by its first set. */
		snprintf(want, sizeof(want), "\n%s ", events[i].name);
		if (!strstr(list_text, want))
			fail_msg("--list lacks a line for %s:\n%s", events[i].name, list_text);
		for (j = 0; j < events[i].n_args; j++) {
			snprintf(want, sizeof(want), "%s: %s", events[i].args[j].name,
				 events[i].args[j].type);
			if (!strstr(list_text, want))
				fail_msg("--list lacks '%s':\n%s", want, list_text);
		}
	}
	for (i = 0; i < event_sets_n; i++)
		assert_non_null(strstr(list_text, event_sets[i].name));
	for (i = 0; i < event_deps_n; i++)
		assert_non_null(strstr(list_text, event_deps[i].hooks[0]));
}

static void test_list_json_names_every_event(void **state)
{
	char want[256], *line, *nl;
	size_t i, j, n = 0;

	list(true);
	for (line = list_text; *line; line = nl + 1, n++) {
		nl = strchr(line, '\n');
		assert_non_null(nl);
		assert_true(n < EVENT__COUNT);
		*nl = '\0';
		/* One object per line, in catalogue order. */
		assert_int_equal(line[0], '{');
		assert_int_equal(nl[-1], '}');
		snprintf(want, sizeof(want), "{\"id\":%zu,\"name\":\"%s\",\"sets\":[", n,
			 events[n].name);
		if (strncmp(line, want, strlen(want)))
			fail_msg("line %zu '%s' does not start with '%s'", n, line, want);
		for (j = 0; j < events[n].n_args; j++) {
			snprintf(want, sizeof(want), "{\"name\":\"%s\",\"type\":\"%s\",\"optional\":%s",
				 events[n].args[j].name, events[n].args[j].type,
				 events[n].args[j].when ? "true" : "false");
			if (!strstr(line, want))
				fail_msg("line %zu lacks '%s'", n, want);
		}
		assert_non_null(strstr(line, ",\"depends_on\":[{\"name\":"));
	}
	assert_int_equal(n, EVENT__COUNT);
	list(true); /* the walk above cut the text at each newline */
	for (i = 0; i < EVENT__COUNT; i++)
		assert_non_null(strstr(list_text, events[i].name));
}

/* --- What the JSON printer emits --- */

struct arg_seen {
	char name[32];
	char type[48];
};

/* Copy the JSON string at s (after its opening quote) into dst; the byte after its end. */
static const char *copy_str(const char *s, char *dst, size_t cap)
{
	size_t n = strcspn(s, "\"");

	assert_true(n < cap);
	memcpy(dst, s, n);
	dst[n] = '\0';
	return s + n + 1;
}

/* eventName and the name/type of each top-level entry of "args"; returns how many. */
static size_t printed_args(const char *line, char *event, size_t event_cap, struct arg_seen *seen,
			   size_t max)
{
	static const char ev_key[] = "\"eventName\":\"", args_key[] = ",\"args\":[";
	const char *p = strstr(line, ev_key), *q;
	int depth = 0;
	size_t n = 0;
	bool in_str = false;

	assert_non_null(p);
	copy_str(p + strlen(ev_key), event, event_cap);
	p = strstr(line, args_key);
	assert_non_null(p);
	for (p += strlen(args_key); *p; p++) {
		if (in_str) {
			if (*p == '\\')
				p++;
			else if (*p == '"')
				in_str = false;
			continue;
		}
		if (*p == '"') {
			in_str = true;
		} else if (*p == '{' || *p == '[') {
			if (depth++ == 0 && *p == '{') {
				/* An args entry: {"name":"...","type":"...","value":...} */
				assert_true(n < max);
				assert_int_equal(strncmp(p, "{\"name\":\"", 9), 0);
				q = copy_str(p + 9, seen[n].name, sizeof(seen[n].name));
				assert_int_equal(strncmp(q, ",\"type\":\"", 9), 0);
				copy_str(q + 9, seen[n].type, sizeof(seen[n].type));
				n++;
			}
		} else if (*p == '}' || *p == ']') {
			if (depth-- == 0)
				break; /* the end of "args" */
		}
	}
	return n;
}

/*
 * The printed args are catalogue args of the printed event, with their catalogue types, in
 * catalogue order; every arg the catalogue has as always present is there; and the args named
 * in must_have are there. Returns the bitmask of catalogue args printed.
 */
static unsigned int check_printed(const struct pkt_headers *h, enum event_id id,
				  const char *const *must_have)
{
	static struct pkt_event e;
	const struct event_def *def;
	struct arg_seen seen[EVENT_MAX_ARGS + 1];
	char line[8192], event[64];
	unsigned int printed = 0;
	size_t n, i, at = 0, len;

	memset(&e, 0, sizeof(e));
	e.timestamp_ns = 1764145200123456789ULL;
	e.proc.pid = e.proc.tid = 4242;
	e.proc.hostname = "host";
	e.proc.container_id = "";
	strcpy(e.proc.comm, "curl");
	strcpy(e.ifname, "lo");
	e.packet_len = 60;
	e.event = id;
	e.hdr = *h;
	len = format_json(line, sizeof(line) - 1, &e);
	assert_true(len > 0);
	line[len] = '\0';

	n = printed_args(line, event, sizeof(event), seen, EVENT_MAX_ARGS + 1);
	def = event_by_name(event, strlen(event));
	if (!def)
		fail_msg("the printer emits event '%s', which the catalogue lacks", event);
	if (def != &events[id])
		fail_msg("asked for %s, the printer emits %s", events[id].name, event);
	for (i = 0; i < n; i++) {
		while (at < def->n_args && strcmp(def->args[at].name, seen[i].name))
			at++;
		if (at == def->n_args)
			fail_msg("%s: printed arg '%s' is not in the catalogue (or out of its order)",
				 def->name, seen[i].name);
		assert_string_equal(seen[i].type, def->args[at].type);
		printed |= 1u << at;
	}
	for (i = 0; i < def->n_args; i++)
		if (!def->args[i].when && !(printed & 1u << i))
			fail_msg("%s: always-present arg '%s' not printed", def->name,
				 def->args[i].name);
	for (; must_have && *must_have; must_have++) {
		for (i = 0; i < n && strcmp(seen[i].name, *must_have); i++)
			;
		if (i == n)
			fail_msg("%s: arg '%s' not printed: %s", def->name, *must_have, line);
	}
	return printed;
}

static void decode(const uint8_t *pkt, size_t len, struct pkt_headers *h)
{
	memset(h, 0, sizeof(*h));
	decode_headers(pkt, len, h);
}

/* IPv4 10.0.0.1 -> 10.0.0.2, TCP 40000 -> 80, with opt_words 32-bit words of options. */
static size_t tcp4(uint8_t *p, const uint8_t *opts, size_t opt_words, uint8_t flags)
{
	size_t tcp_len = 20 + 4 * opt_words, len = 20 + tcp_len;

	memset(p, 0, len);
	p[0] = 0x45;
	p[2] = len >> 8, p[3] = len & 0xff;
	p[8] = 64;
	p[9] = 6;
	p[12] = 10, p[15] = 1;
	p[16] = 10, p[19] = 2;
	p[20] = 40000 >> 8, p[21] = 40000 & 0xff;
	p[23] = 80;
	p[24 + 3] = 1;             /* seq 1 */
	p[32] = (uint8_t)(tcp_len / 4) << 4;
	p[33] = flags;
	p[34] = 0xff, p[35] = 0xff; /* window */
	memcpy(p + 40, opts, 4 * opt_words);
	return len;
}

static void test_json_args_are_the_catalogue(void **state)
{
	static const uint8_t syn_opts[] = {
		2, 4, 0x05, 0xb4,             /* MSS 1460 */
		4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, /* SACK permitted, timestamps */
		1, 3, 3, 7,                   /* NOP, window scale 7 */
	};
	static const char *const tcp_args[] = { EVENT_ARG_METADATA, EVENT_ARG_PROTO_TCP, NULL };
	static const char *const with_opts[] = { EVENT_ARG_METADATA, EVENT_ARG_PROTO_TCP,
						 EVENT_ARG_TCP_OPTIONS, NULL };
	static const char *const meta_only[] = { EVENT_ARG_METADATA, NULL };
	static const char *const udp_args[] = { EVENT_ARG_METADATA, EVENT_ARG_PROTO_UDP, NULL };
	const struct event_def *tcp = &events[EVENT_NET_PACKET_TCP];
	struct pkt_headers h;
	uint8_t pkt[128];
	unsigned int printed;
	size_t len;

	/* A plain ACK: metadata and proto_tcp, nothing else. */
	len = tcp4(pkt, NULL, 0, 0x10);
	decode(pkt, len, &h);
	assert_int_equal(h.l4_error, 0);
	printed = check_printed(&h, EVENT_NET_PACKET_TCP, tcp_args);
	for (size_t i = 0; i < tcp->n_args; i++)
		if (!strcmp(tcp->args[i].name, EVENT_ARG_TCP_OPTIONS))
			assert_false(printed & 1u << i);

	/* A SYN with options: tcp_options too, named and typed as in the catalogue. */
	len = tcp4(pkt, syn_opts, sizeof(syn_opts) / 4, 0x02);
	decode(pkt, len, &h);
	assert_int_equal(h.l4_error, 0);
	check_printed(&h, EVENT_NET_PACKET_TCP, with_opts);

	/* A UDP packet: metadata and proto_udp. */
	len = tcp4(pkt, NULL, 0, 0);
	pkt[9] = 17;
	decode(pkt, len, &h);
	assert_int_equal(h.l4_error, 0);
	check_printed(&h, EVENT_NET_PACKET_UDP, udp_args);

	/* No transport header (UDP cut after 4 bytes): the metadata alone. */
	decode(pkt, 24, &h);
	assert_int_equal(h.l4_error, DECODE_TRUNCATED_L4);
	printed = check_printed(&h, EVENT_NET_PACKET_UDP, meta_only);
	assert_int_equal(printed, 1u << 0);
	printed = check_printed(&h, EVENT_NET_PACKET_TCP, meta_only);
	assert_int_equal(printed, 1u << 0);
}

/* A synthetic packet of each packet event's kind: IPv4 for TCP, UDP and ICMP (and IPv4),
 * IPv6 for ICMPv6 (and IPv6). Returns its length. */
static size_t packet_of(uint8_t *p, enum event_id id)
{
	size_t len;

	len = tcp4(p, NULL, 0, 0x10);
	switch (id) {
	case EVENT_NET_PACKET_UDP:
		p[9] = IPPROTO_UDP;
		break;
	case EVENT_NET_PACKET_ICMP:
		p[9] = IPPROTO_ICMP;
		p[20] = 8; /* echo request */
		break;
	case EVENT_NET_PACKET_ICMPV6:
	case EVENT_NET_PACKET_IPV6:
		/* The same transport bytes after a 40-byte IPv6 header. */
		memmove(p + 40, p + 20, len - 20);
		memset(p, 0, 40);
		p[0] = 0x60;
		p[5] = (uint8_t)(len - 20);
		p[6] = id == EVENT_NET_PACKET_ICMPV6 ? IPPROTO_ICMPV6 : IPPROTO_TCP;
		p[7] = 64;
		p[23] = 1;
		p[39] = 2;
		if (id == EVENT_NET_PACKET_ICMPV6)
			p[40] = 128;
		len += 20;
		break;
	default:
		break;
	}
	return len;
}

/* Every packet event has its printer branch: a packet of its kind prints as that event, with
 * the metadata and the event's own protocol arg (named and typed as the catalogue says). */
static void test_every_packet_event_printed(void **state)
{
	event_mask packets = event_packet_events(), got;
	const char *must[3] = { EVENT_ARG_METADATA, NULL, NULL };
	struct pkt_event e;
	uint8_t pkt[128];
	size_t len, n = 0;

	for (int id = 0; id < EVENT__COUNT; id++) {
		bool flow = id == EVENT_NET_FLOW_TCP_BEGIN || id == EVENT_NET_FLOW_TCP_END;

		/* Every event is a packet event or a flow event. */
		assert_true(!(packets & EVENT_BIT(id)) == flow);
		if (flow)
			continue;
		n++;
		len = packet_of(pkt, id);
		memset(&e, 0, sizeof(e));
		decode(pkt, len, &e.hdr);
		assert_int_equal(e.hdr.l4_error, 0);
		got = decode_packet_events(&e);
		if (!(got & EVENT_BIT(id)))
			fail_msg("a packet built for %s gives events %#llx", events[id].name,
				 (unsigned long long)got);
		assert_true(events[id].n_args >= 2);
		must[1] = events[id].args[1].name;
		check_printed(&e.hdr, id, must);
	}
	assert_int_equal(n, EVENT__COUNT - 2); /* all but the two flow events */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_catalogue_is_consistent),
		cmocka_unit_test_teardown(test_list_table_names_every_event, teardown),
		cmocka_unit_test_teardown(test_list_json_names_every_event, teardown),
		cmocka_unit_test(test_json_args_are_the_catalogue),
		cmocka_unit_test(test_every_packet_event_printed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
