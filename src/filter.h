/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Filters: tcpdump's expression language, compiled by libpcap to classic BPF per direction. */
#ifndef PKTRACE_FILTER_H
#define PKTRACE_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* One classic BPF instruction, laid out as libpcap's struct bpf_insn and struct sock_filter. */
struct filter_insn {
	uint16_t code;
	uint8_t jt;
	uint8_t jf;
	uint32_t k;
};

struct filter_prog {
	struct filter_insn *insns;
	unsigned int len;
};

/* An expression compiled once per hook direction (enum pkt_direction indexes dir[]). */
struct filter {
	char *expr;
	struct filter_prog dir[2];
	bool rejects_all[2]; /* the direction can never match (an inbound/outbound word) */
};

/* The words of a command line joined with spaces, as tcpdump does; NULL when out of memory. */
char *filter_join(char *const *words, int n);
/* Compile expr for both directions. 0, or -EINVAL with a one-line reason in err. */
int filter_compile(struct filter *f, const char *expr, char *err, size_t err_len);
/* The most of a packet filter_match copies, to see it without a jumbo header. */
#define FILTER_VIEW_MAX (256 * 1024)
/* libpcap's own verdict (pcap_offline_filter) on an IP packet of len bytes, caplen of them in l3;
 * an IPv6 packet over 64 KiB as its segments on the wire are: without the Hop-by-Hop jumbo header
 * the kernel adds at the hooks (BIG TCP), as the socket hooks' translated programs see it. */
bool filter_match(const struct filter *f, int direction, const uint8_t *l3, uint32_t caplen,
		  uint32_t len);
/* The classic BPF of one direction, as tcpdump -d prints it. */
void filter_dump_cbpf(const struct filter *f, int direction, FILE *out);
void filter_free(struct filter *f);
/* expr cut to a length fit for a one-line message ("..." at the end when cut); a static buffer. */
const char *filter_short(const char *expr);

#endif /* PKTRACE_FILTER_H */
