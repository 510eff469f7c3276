// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <pcap/pcap.h>

#include "filter.h"
#include "pktrace.h"

_Static_assert(sizeof(struct filter_insn) == sizeof(struct bpf_insn), "classic BPF layout");

/* Words that name the link layer, which pktrace never sees (its packets start at L3), but that
 * libpcap still compiles on DLT_RAW (ether proto, ether[0], link[0] read the IP header there). */
static const char *const link_words[] = {
	"ether", "fddi", "tr", "wlan", "link", "ppp", "slip", NULL,
};

/* The direction words, answered from the hook: libpcap on DLT_RAW compiles them to a Linux
 * ancillary load (SKF_AD_PKTTYPE) that means nothing in a cgroup_skb program. */
static const char *const dir_words[] = {"inbound", "outbound"};

static bool word_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.' || c == ':' ||
	       c == '\\';
}

char *filter_join(char *const *words, int n)
{
	size_t len = 1;
	char *s, *p;
	int i;

	for (i = 0; i < n; i++)
		len += strlen(words[i]) + 1;
	s = p = malloc(len);
	if (!s)
		return NULL;
	*p = 0;
	for (i = 0; i < n; i++)
		p += sprintf(p, i ? " %s" : "%s", words[i]);
	return s;
}

/*
 * expr with each word inbound/outbound replaced by a constant for this direction (1 = 1 when
 * it holds, 1 = 0 when not), which libpcap's optimizer folds. Sets *has_dir when one was found.
 */
static char *direction_rewrite(const char *expr, int direction, bool *has_dir)
{
	size_t len = strlen(expr), cap = len * 2 + 16, o = 0, i = 0;
	char *out = malloc(cap);

	if (!out)
		return NULL;
	while (i < len) {
		size_t n = 0;
		int w = -1;

		while (word_char(expr[i + n]))
			n++;
		if (n == 0) {
			out[o++] = expr[i++];
			continue;
		}
		for (int d = 0; d < 2; d++)
			if (strlen(dir_words[d]) == n && !strncmp(expr + i, dir_words[d], n))
				w = d;
		if (w < 0) {
			memcpy(out + o, expr + i, n);
			o += n;
		} else {
			/* inbound is the ingress hook's, outbound the egress hook's */
			const char *c = (w == 0) == (direction == PKT_INGRESS) ? "(1 = 1)" : "(1 = 0)";

			*has_dir = true;
			memcpy(out + o, c, 7);
			o += 7;
		}
		i += n;
	}
	out[o] = 0;
	return out;
}

/* The first link-layer word of expr, or NULL. */
static const char *link_word(const char *expr)
{
	const char *p = expr;

	while (*p) {
		size_t n = 0;

		while (word_char(p[n]))
			n++;
		if (n == 0) {
			p++;
			continue;
		}
		for (int i = 0; link_words[i]; i++)
			if (strlen(link_words[i]) == n && !strncmp(p, link_words[i], n))
				return link_words[i];
		p += n;
	}
	return NULL;
}

static int prog_copy(struct filter_prog *dst, const struct bpf_insn *insns, unsigned int len)
{
	dst->insns = calloc(len ? len : 1, sizeof(*dst->insns));
	if (!dst->insns)
		return -ENOMEM;
	for (unsigned int i = 0; i < len; i++) {
		dst->insns[i].code = insns[i].code;
		dst->insns[i].jt = insns[i].jt;
		dst->insns[i].jf = insns[i].jf;
		dst->insns[i].k = insns[i].k;
	}
	dst->len = len;
	return 0;
}

int filter_compile(struct filter *f, const char *expr, char *err, size_t err_len)
{
	static const struct bpf_insn reject = {BPF_RET | BPF_K, 0, 0, 0};
	char pcap_err[PCAP_ERRBUF_SIZE] = "";
	const char *word;
	bool has_dir = false;
	pcap_t *p;
	int d, rc = 0;

	memset(f, 0, sizeof(*f));
	f->expr = strdup(expr);
	if (!f->expr) {
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	word = link_word(expr);
	if (word) {
		snprintf(err, err_len, "filter '%s': '%s' needs the link layer, which pktrace does "
			 "not see (its packets start at the IP header): use ip, ip6, host, net, "
			 "port and protocol primitives", filter_short(expr), word);
		filter_free(f);
		return -EINVAL;
	}
	/* 65535: the snapshot length the programs return for a match; any non-zero value will do. */
	p = pcap_open_dead(DLT_RAW, 65535);
	if (!p) {
		snprintf(err, err_len, "cannot open libpcap's compiler");
		filter_free(f);
		return -ENOMEM;
	}
	for (d = 0; d < 2 && !rc; d++) {
		struct bpf_program prog = {};
		char *text = direction_rewrite(expr, d, &has_dir);

		if (!text) {
			rc = -ENOMEM;
			snprintf(err, err_len, "out of memory");
			break;
		}
		if (pcap_compile(p, &prog, text, 1, PCAP_NETMASK_UNKNOWN) == 0) {
			rc = prog_copy(&f->dir[d], prog.bf_insns, prog.bf_len);
			pcap_freecode(&prog);
		} else if (has_dir && strstr(pcap_geterr(p), "rejects all packets")) {
			/* e.g. 'inbound and tcp' at the egress hook */
			f->rejects_all[d] = true;
			rc = prog_copy(&f->dir[d], &reject, 1);
		} else {
			snprintf(pcap_err, sizeof(pcap_err), "%s", pcap_geterr(p));
			rc = -EINVAL;
		}
		free(text);
	}
	pcap_close(p);
	if (!rc && f->rejects_all[0] && f->rejects_all[1]) {
		snprintf(pcap_err, sizeof(pcap_err), "expression rejects all packets");
		rc = -EINVAL;
	}
	if (rc == -EINVAL) {
		/* libpcap's messages on DLT_RAW for link-layer primitives say "Raw IP", "ethernet",
		 * "link", or that nothing can match (arp, stp, ...): say why. */
		bool link = strstr(pcap_err, "Raw IP") || strstr(pcap_err, "ether") ||
			    strstr(pcap_err, "link") || strstr(pcap_err, "linktype") ||
			    strstr(pcap_err, "supported only");
		/* Link-layer words were refused above: what rejects all names a protocol that is not
		 * IP, or contradicts itself. */
		bool never = strstr(pcap_err, "rejects all");

		snprintf(err, err_len, "filter '%s': %s%s", filter_short(expr), pcap_err,
			 link ? " (pktrace sees IP packets from their IP header on: link-layer "
				"primitives such as arp, ether, vlan, mpls do not apply)" :
			 never ? " (no IP packet can match it: it names a link-layer or non-IP protocol, "
				 "such as arp, or contradicts itself, as 'tcp and udp' does)" : "");
	}
	if (rc)
		filter_free(f);
	return rc;
}

bool filter_match(const struct filter *f, int direction, const uint8_t *l3, uint32_t caplen,
		  uint32_t len)
{
	/* A copy without the jumbo header, for the rare packet that has one: static, as the
	 * reader makes no allocation per packet (one thread matches). */
	static uint8_t view[FILTER_VIEW_MAX];
	const struct filter_prog *fp = &f->dir[direction ? 1 : 0];
	struct bpf_program prog = {fp->len, (struct bpf_insn *)fp->insns};
	struct pcap_pkthdr h = {.caplen = caplen, .len = len};

	/* As the socket hooks' programs see it (filter_bpf.c, R_JUMBO): an IPv6 packet over
	 * 64 KiB without the Hop-by-Hop jumbo header its segments on the wire do not carry. */
	if (caplen >= 48 && (l3[0] & 0xf0) == 0x60 && l3[6] == 0 && l3[41] == 0 &&
	    l3[42] == 0xc2 && len >= 48) {
		h.caplen = caplen - 8 < sizeof(view) ? caplen - 8 : sizeof(view);
		h.len = len - 8;
		memcpy(view, l3, 40);
		view[6] = l3[40];
		memcpy(view + 40, l3 + 48, h.caplen - 40);
		l3 = view;
	}
	return pcap_offline_filter(&prog, &h, l3) != 0;
}

void filter_dump_cbpf(const struct filter *f, int direction, FILE *out)
{
	const struct filter_prog *fp = &f->dir[direction ? 1 : 0];

	for (unsigned int i = 0; i < fp->len; i++)
		fprintf(out, "%s\n", bpf_image((struct bpf_insn *)&fp->insns[i], i));
}

void filter_free(struct filter *f)
{
	if (!f)
		return;
	free(f->expr);
	free(f->dir[0].insns);
	free(f->dir[1].insns);
	memset(f, 0, sizeof(*f));
}

const char *filter_short(const char *expr)
{
	static char buf[128];

	if (strlen(expr) < sizeof(buf))
		return expr;
	snprintf(buf, sizeof(buf), "%.*s...", (int)sizeof(buf) - 4, expr);
	return buf;
}
