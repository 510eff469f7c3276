// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Reader-side microbenchmark: synthetic ring-buffer records (IPv4 TCP with timestamps, 4
 * interfaces in 2 namespaces, 64 processes) through the reorder stage, decode_record() and
 * each output (pcapng, JSON, table, text) to /dev/null (or argv[2]); no kernel, no root. The
 * records come as from two CPUs: one in 16 is 20 us behind its neighbours, as the ring buffer
 * hands them over. Each output runs with the stage off (--order-window 0) and on (the default
 * 2 ms), on distinct packets and on loopback pairs: each packet twice in a row, the sender's
 * egress event then the receiver's ingress one (other process, same headers), as traffic
 * between two traced processes on one host comes. Prints one line per run: events, seconds,
 * events per second, out-of-order ones.
 *
 *   make bench-reader            # build/reader_bench [EVENTS] [FILE] [OUTPUT]
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decode.h"
#include "opts.h"
#include "order.h"
#include "output.h"
#include "pktrace.h"

#define RECORDS 1024 /* distinct records, cycled */
#define STEP_NS 500  /* between records: 2 M a second of traffic */
#define SKEW_NS 20000

static struct output out;
static struct pkt_record recs[RECORDS];

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* An IPv4 TCP segment with the timestamp option, as the kernel side records it: 52 bytes. */
static void make_record(struct pkt_record *r, unsigned int i)
{
	static const char *const ifs[] = {"lo", "eth0", "veth1", "lo"};
	uint8_t *h = r->hdr;

	memset(r, 0, sizeof(*r));
	r->owner.pid = 1000 + i % 64;
	r->owner.tid = r->owner.pid;
	r->owner.ppid = 1;
	r->owner.uid = 1000;
	r->owner.cgroup_id = 4242;
	snprintf(r->owner.comm, sizeof(r->owner.comm), "worker-%u", i % 64);
	r->pkt_len = 52 + (i % 3) * 100;
	r->ifindex = 1 + i % 4;
	r->direction = i & 1;
	r->l3_proto = 4;
	r->kind = PKT_REC_PACKET;
	r->netns = i % 4 == 3 ? 4026532999u : 4026531840u;
	r->sk_proto = 6;
	r->l4_proto = 6;
	snprintf(r->ifname, sizeof(r->ifname), "%s", ifs[i % 4]);
	h[0] = 0x45;
	h[2] = (uint8_t)(r->pkt_len >> 8);
	h[3] = (uint8_t)r->pkt_len;
	h[8] = 64;
	h[9] = 6;
	h[12] = 127, h[15] = 1, h[16] = 127, h[19] = 1;
	h[20] = (uint8_t)(40000 + i) >> 8, h[21] = (uint8_t)i, h[23] = 80;
	h[27] = (uint8_t)i;
	h[32] = 8 << 4;
	h[33] = 0x18;
	h[34] = 0xff;
	h[40] = 1, h[41] = 1, h[42] = 8, h[43] = 10;
	r->hdr_len = 52;
}

/* What the stage releases: decoded and written as main.c's emit_record does. */
static int write_record(void *ctx, const struct pkt_record *r, size_t size,
			const struct pkt_owner *owner, int late)
{
	enum output_format fmt = *(enum output_format *)ctx;
	struct pkt_event e;
	struct pkt_bytes b;
	uint32_t ifindex;
	uint64_t uts_key;

	(void)owner, (void)late;
	if (decode_record(r, size, 0, &e, &ifindex, &uts_key))
		abort();
	e.proc.hostname = "bench-host";
	e.proc.container_id = "";
	if (fmt == OUTPUT_PCAPNG) {
		pkt_bytes_of_record(r, offsetof(struct pkt_record, hdr) + r->hdr_len, &b);
		return output_packet(&out, &e, decode_packet_events(&e), &b);
	}
	return output_event(&out, &e);
}

/* A loopback pair: r's packet as its sender's egress event and the receiver's ingress one. */
static void make_pair(struct pkt_record *out, struct pkt_record *in, const struct pkt_record *r)
{
	/* 32 senders and 32 receivers: 64 processes, as the distinct packets have. */
	uint32_t k = (r->owner.pid - 1000) % 32;

	*out = *r;
	out->direction = PKT_EGRESS;
	out->owner.pid = 1000 + k;
	out->owner.tid = out->owner.pid;
	snprintf(out->owner.comm, sizeof(out->owner.comm), "client-%u", k);
	*in = *r;
	in->direction = PKT_INGRESS;
	in->owner.pid = 1032 + k;
	in->owner.tid = in->owner.pid;
	snprintf(in->owner.comm, sizeof(in->owner.comm), "server-%u", k);
}

static struct pkt_record pair_out[RECORDS], pair_in[RECORDS];

static void run(const char *what, enum output_format fmt, uint64_t window_us, const char *path,
		long n, int paired)
{
	struct order_config cfg = {.window_ns = window_us * 1000, .capacity = 16384};
	struct order *o = order__new(&cfg, write_record, &fmt);
	double t0, t;
	long i;

	if (!o || output_open(&out, path, fmt)) {
		perror(path);
		exit(1);
	}
	t0 = now();
	for (i = 0; i < n; i++) {
		struct pkt_record *r = !paired ? &recs[i % RECORDS] :
				       i % 2 ? &pair_in[i / 2 % RECORDS] : &pair_out[i / 2 % RECORDS];

		/* A pair is late together: both its events come from one CPU. */
		r->ts_ns = 1000000000ULL + i * STEP_NS -
			   ((paired ? i / 2 : i) % 16 == 7 ? SKEW_NS : 0);
		if (order__push(o, r, offsetof(struct pkt_record, hdr) + r->hdr_len, NULL))
			abort();
	}
	if (order__flush(o) || output_close(&out))
		abort();
	t = now() - t0;
	printf("%-7s %-8s order %-4s %ld events in %.3f s: %5.2f M events/s (%3.0f ns each), "
	       "%llu written, %llu out of order\n", what, paired ? "pairs" : "distinct",
	       window_us ? "on" : "off", n, t,
	       n / t / 1e6, t / n * 1e9, (unsigned long long)out.events_written,
	       (unsigned long long)order__stats(o)->late);
	order__free(o);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		enum output_format fmt;
	} fmts[] = {{"pcapng", OUTPUT_PCAPNG}, {"json", OUTPUT_JSON}, {"table", OUTPUT_TABLE},
		    {"text", OUTPUT_TEXT}};
	long n = argc > 1 ? atol(argv[1]) : 5000000;
	const char *path = argc > 2 ? argv[2] : "/dev/null";
	const char *only = argc > 3 ? argv[3] : NULL;
	size_t f;

	for (f = 0; only && f < sizeof(fmts) / sizeof(fmts[0]); f++)
		if (!strcmp(only, fmts[f].name))
			break;
	if (only && f == sizeof(fmts) / sizeof(fmts[0])) {
		fprintf(stderr, "reader_bench: unknown output '%s' (pcapng, json, table or text)\n",
			only);
		return 2;
	}

	for (unsigned int i = 0; i < RECORDS; i++) {
		make_record(&recs[i], i);
		make_pair(&pair_out[i], &pair_in[i], &recs[i]);
	}
	for (int round = 0; round < 3; round++)
		for (f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++) {
			if (only && strcmp(only, fmts[f].name))
				continue;
			for (int paired = 0; paired < 2; paired++) {
				run(fmts[f].name, fmts[f].fmt, 0, path, n, paired);
				run(fmts[f].name, fmts[f].fmt, OPTS_ORDER_WINDOW_US, path, n, paired);
			}
		}
	return 0;
}
