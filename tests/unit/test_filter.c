// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Filters: the expression's compilation and errors, and the translator checked against
 * libpcap's own evaluator. The differential test loads every translated program into the
 * kernel and runs it on each packet with BPF_PROG_TEST_RUN: it needs root and BPF, and fails
 * (never skips) without them, since CI runs it as root.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <bpf/libbpf.h>
#include <bpf/bpf.h>

#include "filter.h"
#include "filter_bpf.h"
#include "pktrace.h"

#define ETH_LEN 14
#define PKT_MAX 400

static char err[512];

static void expect_compile_error(const char *expr, const char *word)
{
	struct filter f;

	assert_int_equal(filter_compile(&f, expr, err, sizeof(err)), -EINVAL);
	if (!strstr(err, word))
		fail_msg("'%s': error '%s' lacks '%s'", expr, err, word);
	assert_null(strchr(err, '\n'));
}

static void test_join(void **state)
{
	char *words[] = {"tcp", "port", "80", "and", "not", "host 10.0.0.1"};
	char *s = filter_join(words, 6);

	assert_string_equal(s, "tcp port 80 and not host 10.0.0.1");
	free(s);
	s = filter_join(words, 0);
	assert_string_equal(s, "");
	free(s);
}

static void test_link_layer_errors(void **state)
{
	expect_compile_error("arp", "link-layer");
	expect_compile_error("ether host 1:2:3:4:5:6", "link layer");
	expect_compile_error("vlan and tcp", "link-layer");
	expect_compile_error("mpls", "link-layer");
	expect_compile_error("tcp and ether[0] = 1", "'ether' needs the link layer");
	expect_compile_error("link[0] = 0x45", "'link' needs the link layer");
	expect_compile_error("ether proto \\ip", "'ether'");
	expect_compile_error("broadcast", "link-layer");
	expect_compile_error("tcp port", "syntax error");
	expect_compile_error("len / 0 = 1", "division by zero");
	/* a host name that merely contains a link word is no link word */
	expect_compile_error("host ether-box.invalid", "unknown host");
}

/* A classic program's first instruction for a direction. */
static const struct filter_insn *first(const struct filter *f, int d)
{
	return &f->dir[d].insns[0];
}

static void test_directions(void **state)
{
	struct filter f;

	/* inbound is the ingress hook's: a constant there, never libpcap's ancillary load */
	assert_int_equal(filter_compile(&f, "inbound", err, sizeof(err)), 0);
	assert_int_equal(f.dir[PKT_INGRESS].len, 1);
	assert_int_equal(first(&f, PKT_INGRESS)->code, 0x06); /* ret #k */
	assert_int_not_equal(first(&f, PKT_INGRESS)->k, 0);
	assert_true(f.rejects_all[PKT_EGRESS]);
	assert_false(f.rejects_all[PKT_INGRESS]);
	filter_free(&f);
	assert_int_equal(filter_compile(&f, "outbound and tcp", err, sizeof(err)), 0);
	assert_true(f.rejects_all[PKT_INGRESS]);
	assert_false(f.rejects_all[PKT_EGRESS]);
	assert_true(f.dir[PKT_EGRESS].len > 3);
	filter_free(&f);
	assert_int_equal(filter_compile(&f, "not inbound or udp", err, sizeof(err)), 0);
	assert_false(f.rejects_all[PKT_INGRESS]);
	assert_false(f.rejects_all[PKT_EGRESS]);
	filter_free(&f);
	expect_compile_error("inbound and outbound", "rejects all packets");
}

static void test_translate_errors(void **state)
{
	struct filter_target t = {.stats_fd = -1, .progs_fd = -1};
	struct filter_insn anc[] = {{0x30, 0, 0, 0xfffff004}, {0x16, 0, 0, 0}}; /* ldb [type] */
	struct filter_insn out[] = {{0x15, 5, 0, 1}, {0x06, 0, 0, 0}};   /* jeq past the end */
	struct filter_insn back[] = {{0x06, 0, 0, 1}, {0x05, 0, 0, (uint32_t)-2}}; /* ja back */
	struct filter_insn noret[] = {{0x00, 0, 0, 1}};                  /* ld #1, then? */
	struct filter_insn mem[] = {{0x60, 0, 0, 16}, {0x16, 0, 0, 0}};  /* ld M[16] */
	struct filter_prog p;
	struct bpf_insn *insns;
	size_t n;
	struct filter f;

	p = (struct filter_prog){anc, 2};
	assert_int_equal(filter_to_ebpf(&p, &t, &insns, &n, err, sizeof(err)), -EOPNOTSUPP);
	assert_non_null(strstr(err, "ancillary"));
	p = (struct filter_prog){out, 2};
	assert_int_equal(filter_to_ebpf(&p, &t, &insns, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "out of the program"));
	p = (struct filter_prog){back, 2};
	assert_int_equal(filter_to_ebpf(&p, &t, &insns, &n, err, sizeof(err)), -EOPNOTSUPP);
	assert_non_null(strstr(err, "backward"));
	p = (struct filter_prog){noret, 1};
	assert_int_equal(filter_to_ebpf(&p, &t, &insns, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "return"));
	p = (struct filter_prog){mem, 2};
	assert_int_equal(filter_to_ebpf(&p, &t, &insns, &n, err, sizeof(err)), -EINVAL);
	p = (struct filter_prog){NULL, 0};
	assert_int_equal(filter_to_ebpf(&p, &t, &insns, &n, err, sizeof(err)), -E2BIG);
	/* protochain compiles to a loop */
	assert_int_equal(filter_compile(&f, "ip6 protochain 6", err, sizeof(err)), 0);
	assert_int_equal(filter_to_ebpf(&f.dir[0], &t, &insns, &n, err, sizeof(err)), -EOPNOTSUPP);
	filter_free(&f);
}

/* ---- The differential test: kernel verdicts against pcap_offline_filter. ---- */

static unsigned int seed;

static unsigned int rnd(unsigned int n)
{
	return n ? (unsigned int)rand_r(&seed) % n : 0;
}

static const char *const v4[] = {"10.0.0.1", "10.0.0.2", "127.0.0.1", "192.168.1.5",
				  "172.16.0.9", "224.0.0.1"};
static const uint8_t v4b[][4] = {{10, 0, 0, 1},    {10, 0, 0, 2},   {127, 0, 0, 1},
				 {192, 168, 1, 5}, {172, 16, 0, 9}, {224, 0, 0, 1}};
static const char *const v6[] = {"::1", "fd00::1", "fd00::2", "fe80::1", "2001:db8::5",
				  "ff02::1"};
static const uint8_t v6b[][16] = {
	{[15] = 1},
	{0xfd, 0, [15] = 1},
	{0xfd, 0, [15] = 2},
	{0xfe, 0x80, [15] = 1},
	{0x20, 0x01, 0x0d, 0xb8, [15] = 5},
	{0xff, 0x02, [15] = 1},
};
static const unsigned int ports[] = {80, 443, 22, 53, 8080, 1, 47400, 1000, 2000};
static const uint8_t tcp_flags[] = {0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14, 0x01, 0xff};

#define PICK(a) (a)[rnd(sizeof(a) / sizeof((a)[0]))]

static void put16(uint8_t *p, unsigned int v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static unsigned int port(void)
{
	return rnd(5) ? PICK(ports) : rnd(65536);
}

/* The transport header and payload at p; returns its length. */
static unsigned int build_l4(uint8_t *p, unsigned int proto, unsigned int room)
{
	unsigned int n = 0, pay = rnd(4) ? rnd(100) : rnd(250);

	switch (proto) {
	case 6: {
		unsigned int opt = rnd(3) ? 0 : 4 * rnd(6);

		n = 20 + opt;
		for (unsigned int i = 0; i < n; i++)
			p[i] = rnd(256);
		put16(p, port());
		put16(p + 2, port());
		p[12] = (n / 4) << 4;
		p[13] = rnd(5) ? PICK(tcp_flags) : rnd(256);
		break;
	}
	case 17:
		n = 8;
		put16(p, port());
		put16(p + 2, port());
		put16(p + 4, 8 + pay);
		p[6] = p[7] = 0;
		break;
	case 1:
	case 58:
		n = 8;
		for (unsigned int i = 0; i < n; i++)
			p[i] = rnd(256);
		if (rnd(4)) {
			static const uint8_t t4[] = {0, 8, 3, 11}, t6[] = {128, 129, 1, 135};

			p[0] = proto == 1 ? PICK(t4) : PICK(t6);
		}
		break;
	}
	if (n + pay > room)
		pay = room > n ? room - n : 0;
	for (unsigned int i = 0; i < pay; i++)
		p[n + i] = rnd(3) ? rnd(256) : (unsigned char)"GET /HTTP"[rnd(9)];
	return n + pay;
}

/* A random IP packet (sometimes truncated, fragmented, or garbage) at p; returns its length. */
static unsigned int build_packet(uint8_t *p)
{
	static const unsigned int protos[] = {6, 6, 17, 17, 1, 58, 47};
	unsigned int proto = PICK(protos), len, hl;
	int jumbo;

	memset(p, 0, PKT_MAX);
	if (rnd(30) == 0) {
		len = 1 + rnd(80);
		for (unsigned int i = 0; i < len; i++)
			p[i] = rnd(256);
		return len;
	}
	if (rnd(2)) {
		hl = rnd(6) ? 20 : 20 + 4 * (1 + rnd(3));
		p[0] = 0x40 | hl / 4;
		p[1] = rnd(4) ? 0 : rnd(256);
		p[8] = 64;
		p[9] = proto == 58 ? 1 : proto;
		memcpy(p + 12, PICK(v4b), 4);
		memcpy(p + 16, PICK(v4b), 4);
		if (rnd(10) == 0)
			put16(p + 6, rnd(2) ? 0x2000 : rnd(0x2000)); /* MF, or a later fragment */
		len = hl + build_l4(p + hl, p[9], PKT_MAX - hl);
		put16(p + 2, len);
	} else {
		hl = 40;
		p[0] = 0x60;
		p[6] = proto == 1 ? 58 : proto;
		p[7] = 64;
		memcpy(p + 8, PICK(v6b), 16);
		memcpy(p + 24, PICK(v6b), 16);
		if (rnd(6) == 0) {
			/* one extension header: hop-by-hop options or a fragment header */
			p[40] = p[6];
			p[6] = rnd(2) ? 0 : 44;
			hl = 48;
		}
		/* half the hop-by-hop headers are a BIG TCP jumbo one (payload length 0) */
		jumbo = hl == 48 && p[6] == 0 && rnd(2);
		if (jumbo)
			p[42] = 0xc2, p[43] = 4;
		len = hl + build_l4(p + hl, p[hl == 48 ? 40 : 6], PKT_MAX - hl);
		put16(p + 4, jumbo ? 0 : len - 40);
	}
	if (rnd(10) == 0)
		len = 1 + rnd(len);
	return len;
}

static const char *host_word(void)
{
	return rnd(2) ? PICK(v4) : PICK(v6);
}

/* A random primitive of tcpdump's language, into buf. */
static void primitive(char *buf, size_t len)
{
	static const char *const dirs[] = {"", "src ", "dst "};
	static const char *const protos[] = {"tcp", "udp", "icmp", "icmp6", "ip", "ip6",
					     "ip proto 47", "ip6 proto 17"};
	static const char *const nets[] = {"10.0.0.0/8", "127.0.0.0/8", "192.168.0.0/16",
					   "fd00::/16", "fe80::/10", "224.0.0.0/4"};
	static const char *const relops[] = {"=", "!=", ">", "<", ">=", "<="};
	static const char *const payload[] = {
		"tcp[20] = 0x47",
		"tcp[tcpflags] & tcp-syn != 0",
		"tcp[tcpflags] & (tcp-syn|tcp-ack) = tcp-syn",
		"tcp[tcpflags] & (tcp-rst|tcp-fin) != 0",
		"tcp[13] = 0x12",
		"udp[8:2] = 0x4745",
		"udp[4:2] > 50",
		"ip[1] & 0xfc = 0",
		"ip[6:2] & 0x1fff != 0",
		"ip[2:2] - ((ip[0] & 0xf) << 2) > 40",
		"ip[0] << (ip[1] & 7) > 100",
		"(ip[2:2] / 3) % 5 = 1",
		"ip[8] ^ 0x40 = 0",
		"ip6[6] = 17",
		"ip6[40:4] != 0",
		"icmp[icmptype] = icmp-echo",
		"icmp[icmptype] != icmp-echoreply",
		"icmp6[icmp6type] = icmp6-echo",
		"tcp[((tcp[12] & 0xf0) >> 2):4] = 0x47455420",
		"ip[9] * 3 + ip[8] / 7 = 40",
		"len - 20 > 50",
		"-ip[0] & 0xff > 180",
		"ip[3] >> ip[1] = 0",
		"udp[0:2] | udp[2:2] = 0x1f90",
		"tcp[len - 60:2] != 0",
	};

	switch (rnd(11)) {
	case 0:
		snprintf(buf, len, "%s", PICK(protos));
		break;
	case 1:
		snprintf(buf, len, "%shost %s", PICK(dirs), host_word());
		break;
	case 2:
		snprintf(buf, len, "%snet %s", PICK(dirs), PICK(nets));
		break;
	case 3:
		snprintf(buf, len, "%s%sport %u", rnd(2) ? "" : rnd(2) ? "tcp " : "udp ",
			 PICK(dirs), port());
		break;
	case 4:
		snprintf(buf, len, "%sportrange %u-%u", PICK(dirs), 20 + rnd(100),
			 100 + rnd(50000));
		break;
	case 5:
		snprintf(buf, len, "len %s %u", PICK(relops), rnd(300));
		break;
	case 6:
		snprintf(buf, len, "%s %u", rnd(2) ? "greater" : "less", rnd(300));
		break;
	case 7:
	case 8:
		snprintf(buf, len, "%s", PICK(payload));
		break;
	case 9:
		snprintf(buf, len, "%s", rnd(2) ? "inbound" : "outbound");
		break;
	default:
		if (rnd(2))
			snprintf(buf, len, "ip host %s", PICK(v4));
		else
			snprintf(buf, len, "ip6 host %s", PICK(v6));
	}
}

/* A random expression of primitives joined with and/or/not, depth levels deep. */
static void expression(char *buf, size_t len, int depth)
{
	char a[512], b[512];

	if (depth <= 0 || rnd(3) == 0) {
		primitive(buf, len);
		return;
	}
	expression(a, sizeof(a), depth - 1);
	switch (rnd(4)) {
	case 0:
		snprintf(buf, len, "not (%s)", a);
		break;
	case 1:
		expression(b, sizeof(b), depth - 1);
		snprintf(buf, len, "(%s) or (%s)", a, b);
		break;
	default:
		expression(b, sizeof(b), depth - 1);
		snprintf(buf, len, "%s and %s", a, b);
	}
}

/* Many primitives joined: programs over 400 instructions, translated without the shared
 * reject block (each failed load rejects in place). */
static void long_expression(char *buf, size_t len)
{
	size_t o = 0;

	for (int i = 0; i < 60 && o + 600 < len; i++) {
		char p[512];

		expression(p, sizeof(p), 1);
		o += snprintf(buf + o, len - o, "%s(%s)", i ? (rnd(3) ? " or " : " and ") : "", p);
	}
}

struct kernel {
	int stats_fd;
	int progs_fd[2];  /* per direction: slot 0 holds a program returning 0 (the match) */
	int marker_fd[2];
	int rejected_fd;  /* egress slot 1 (the bookkeeping of a rejected packet): returns 3 */
};

static const enum bpf_attach_type attach_of[2] = {BPF_CGROUP_INET_INGRESS,
						  BPF_CGROUP_INET_EGRESS};

static int load(const struct bpf_insn *insns, size_t n, int d, char *log, size_t log_len)
{
	LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = attach_of[d],
		    .log_buf = log, .log_size = log_len, .log_level = log ? 1 : 0);

	return bpf_prog_load(BPF_PROG_TYPE_CGROUP_SKB, "filter_test", "Dual BSD/GPL", insns, n,
			     &o);
}

static void kernel_open(struct kernel *k)
{
	static const struct bpf_insn ret0[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
		{.code = BPF_JMP | BPF_EXIT},
	};
	static const struct bpf_insn ret3[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 3},
		{.code = BPF_JMP | BPF_EXIT},
	};
	__u32 zero = 0, one = 1;

	if (geteuid() != 0)
		fail_msg("the differential filter test loads BPF programs: run it as root");
	k->stats_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "filter_stats", 4,
				     sizeof(struct pkt_cpu_stats), libbpf_num_possible_cpus(), NULL);
	assert_true(k->stats_fd >= 0);
	for (int d = 0; d < 2; d++) {
		k->progs_fd[d] = bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, "filter_progs", 4, 4, 2,
						NULL);
		k->marker_fd[d] = load(ret0, 2, d, NULL, 0);
		if (k->progs_fd[d] < 0 || k->marker_fd[d] < 0)
			fail_msg("cannot create the test's BPF map or program: %s", strerror(errno));
		assert_int_equal(bpf_map_update_elem(k->progs_fd[d], &zero, &k->marker_fd[d], 0), 0);
	}
	k->rejected_fd = load(ret3, 2, PKT_EGRESS, NULL, 0);
	assert_true(k->rejected_fd >= 0);
	assert_int_equal(bpf_map_update_elem(k->progs_fd[PKT_EGRESS], &one, &k->rejected_fd, 0), 0);
}

static void kernel_close(struct kernel *k)
{
	close(k->stats_fd);
	close(k->rejected_fd);
	for (int d = 0; d < 2; d++) {
		close(k->progs_fd[d]);
		close(k->marker_fd[d]);
	}
}

static uint64_t rejects_counted(const struct kernel *k)
{
	struct pkt_cpu_stats s;
	uint64_t sum = 0;

	for (__u32 cpu = 0; cpu < (__u32)libbpf_num_possible_cpus(); cpu++) {
		assert_int_equal(bpf_map_lookup_elem(k->stats_fd, &cpu, &s), 0);
		sum += s.v[STAT_FILTER_REJECTED];
	}
	return sum;
}

/*
 * What tcpdump's filter sees of packet p: an IPv6 packet with a BIG TCP jumbo Hop-by-Hop
 * header (the hooks see it, the wire's segments do not carry it) without that header, its next
 * header in the IPv6 header; any other as it is. The length of the view, in out.
 */
static unsigned int wire_view(const uint8_t *p, unsigned int len, uint8_t *out)
{
	if (len >= 48 && (p[0] & 0xf0) == 0x60 && p[6] == 0 && p[41] == 0 && p[42] == 0xc2) {
		memcpy(out, p, 40);
		out[6] = p[40];
		memcpy(out + 40, p + 48, len - 48);
		return len - 8;
	}
	memcpy(out, p, len);
	return len;
}

/* What the program returned on the L3 packet: 0 a match (the tail call ran the marker), 1 a
 * reject, 3 a reject handed to the bookkeeping program (egress). */
static int kernel_retval(int prog_fd, const uint8_t *l3, unsigned int len)
{
	uint8_t data[ETH_LEN + PKT_MAX] = {};
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = data, .data_size_in = ETH_LEN + len);
	int rc;

	/* test_run pulls an Ethernet header: the program sees data from L3, as on the hook */
	/* the kernel refuses an IP packet shorter than its header: a neutral type then, which
	 * the filter program never reads */
	if (len >= 40 && (l3[0] >> 4) == 6)
		data[12] = 0x86, data[13] = 0xdd;
	else if (len >= 20 && (l3[0] >> 4) == 4)
		data[12] = 0x08, data[13] = 0x00;
	else
		data[12] = 0x88, data[13] = 0xb5;
	memcpy(data + ETH_LEN, l3, len);
	rc = bpf_prog_test_run_opts(prog_fd, &o);
	if (rc)
		fail_msg("BPF_PROG_TEST_RUN failed on %u bytes (%02x): %s", len, len ? l3[0] : 0,
			 strerror(errno));
	if (o.retval != 0 && o.retval != 1 && o.retval != 3)
		fail_msg("the filter program returned %u", o.retval);
	return o.retval;
}

/* The kernel's verdict on the L3 packet: 1 match, 0 not. */
static int kernel_verdict(int prog_fd, const uint8_t *l3, unsigned int len)
{
	return kernel_retval(prog_fd, l3, len) == 0;
}

static void hex(const uint8_t *p, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		fprintf(stderr, "%02x", p[i]);
	fputc('\n', stderr);
}

/* Translate and load both directions of f; 0, or -1 after printing why. */
static int load_filter(const struct kernel *k, const struct filter *f, int fds[2])
{
	static char log[1 << 20];

	for (int d = 0; d < 2; d++) {
		/* egress as with ICMP errors tracked: a miss goes on to slot 1 */
		struct filter_target t = {k->stats_fd, STAT_FILTER_REJECTED, k->progs_fd[d], 0,
					  d == PKT_EGRESS};
		struct bpf_insn *insns;
		size_t n;

		if (filter_to_ebpf(&f->dir[d], &t, &insns, &n, err, sizeof(err))) {
			fprintf(stderr, "'%.300s': %s\n", f->expr, err);
			return -1;
		}
		log[0] = 0;
		fds[d] = load(insns, n, d, NULL, 0);
		if (fds[d] < 0) {
			load(insns, n, d, log, sizeof(log));
			fprintf(stderr, "'%.300s' (%zu insns): the verifier refused it:\n%s\n", f->expr,
				n, log + (strlen(log) > 4000 ? strlen(log) - 4000 : 0));
			free(insns);
			return -1;
		}
		free(insns);
	}
	return 0;
}

#define EXPRESSIONS 600
#define PACKETS 48

static void test_differential(void **state)
{
	static uint8_t pkts[PACKETS][PKT_MAX], view[PKT_MAX];
	unsigned int lens[PACKETS], compiled = 0, runs = 0, matches = 0, long_progs = 0;
	unsigned int vlen, jumbos = 0;
	uint64_t rejects_before, rejects = 0;
	const char *env = getenv("PKTRACE_FILTER_SEED");
	unsigned int start_seed = env ? strtoul(env, NULL, 0) : (unsigned int)time(NULL);
	struct kernel k;
	static char expr[1 << 16];

	seed = start_seed;
	fprintf(stderr, "filter differential test: seed %u (PKTRACE_FILTER_SEED=%u repeats it)\n",
		start_seed, start_seed);
	kernel_open(&k);
	rejects_before = rejects_counted(&k);
	for (int e = 0; e < EXPRESSIONS; e++) {
		struct filter f;
		int fds[2];

		if (e % 10 == 9)
			long_expression(expr, sizeof(expr));
		else
			expression(expr, sizeof(expr), 3);
		if (filter_compile(&f, expr, err, sizeof(err))) {
			if (getenv("PKTRACE_FILTER_VERBOSE"))
				fprintf(stderr, "%.300s\n", err);
			continue; /* rejects all packets, or the like: libpcap's call */
		}
		compiled++;
		long_progs += f.dir[0].len >= 400;
		if (load_filter(&k, &f, fds))
			fail_msg("'%s' could not be translated and loaded (seed %u)", expr, start_seed);
		for (int i = 0; i < PACKETS; i++) {
			lens[i] = build_packet(pkts[i]);
			vlen = wire_view(pkts[i], lens[i], view);
			jumbos += vlen != lens[i];
			for (int d = 0; d < 2; d++) {
				int want = filter_match(&f, d, view, vlen, vlen);
				int r = kernel_retval(fds[d], pkts[i], lens[i]), got = r == 0;

				/* every egress miss, counted, reaches the bookkeeping program */
				if (!got && r != (d == PKT_EGRESS ? 3 : 1))
					fail_msg("'%.300s' %s: a miss returned %d (seed %u)", expr,
						 d ? "egress" : "ingress", r, start_seed);

				runs++;
				matches += want;
				rejects += !got;
				if (got != want) {
					fprintf(stderr, "'%.2000s' %s: kernel %d, libpcap %d on %u bytes: ",
						expr, d ? "egress" : "ingress", got, want, lens[i]);
					hex(pkts[i], lens[i]);
					filter_dump_cbpf(&f, d, stderr);
					fail_msg("verdicts differ (seed %u)", start_seed);
				}
			}
		}
		close(fds[0]);
		close(fds[1]);
		filter_free(&f);
	}
	fprintf(stderr, "filter differential test: %u expressions compiled of %d (%u of over 400 "
		"instructions), %u runs, %u matches, %u jumbo packets\n", compiled, EXPRESSIONS,
		long_progs, runs, matches, jumbos);
	assert_true(long_progs >= 5);
	assert_true(jumbos > 100);
	/* A test that cannot fail is worse than none: both verdicts must have been seen. */
	assert_true(compiled > EXPRESSIONS / 2);
	assert_true(matches > runs / 20);
	assert_true(matches < runs - runs / 20);
	assert_int_equal(rejects_counted(&k) - rejects_before, rejects);
	kernel_close(&k);
}

/* Programs near libpcap's size limit: many hosts ORed, long chains of payload tests. */
static void test_large_programs(void **state)
{
	static char expr[1 << 16];
	struct kernel k;
	struct filter f;
	size_t o = 0;
	int fds[2];
	uint8_t pkt[60] = {0x45, 0, 0, 60, [8] = 64, [9] = 6, [12] = 10, 0, 0, 1,
			   [16] = 10, 9, 9, 9, [33] = 0x02};

	kernel_open(&k);
	for (int i = 0; i < 300; i++)
		o += snprintf(expr + o, sizeof(expr) - o, "%shost 10.%d.%d.%d or tcp[%d] = %d",
			      i ? " or " : "", i / 250, i % 250, i % 7 + 1, i % 40, i % 256);
	assert_int_equal(filter_compile(&f, expr, err, sizeof(err)), 0);
	fprintf(stderr, "large program: %u classic instructions\n", f.dir[0].len);
	assert_true(f.dir[0].len > 1000);
	assert_int_equal(load_filter(&k, &f, fds), 0);
	for (int d = 0; d < 2; d++)
		assert_int_equal(kernel_verdict(fds[d], pkt, sizeof(pkt)),
				 filter_match(&f, d, pkt, sizeof(pkt), sizeof(pkt)));
	pkt[19] = 1; /* 10.9.9.1... not listed; 10.0.9.x is: */
	memcpy(pkt + 12, (uint8_t[]){10, 0, 9, 3}, 4);
	for (int d = 0; d < 2; d++) {
		assert_int_equal(kernel_verdict(fds[d], pkt, sizeof(pkt)), 1);
		assert_true(filter_match(&f, d, pkt, sizeof(pkt), sizeof(pkt)));
	}
	/* No host listed, no TCP byte equal to what its test asks: a miss, which at egress goes
	 * on to the bookkeeping program through the one tail call of the program's end. */
	memcpy(pkt + 12, (uint8_t[]){10, 250, 250, 250, 10, 251, 251, 251}, 8);
	memset(pkt + 20, 0xfe, 40);
	pkt[20 + 254 % 40] = 0xfd;
	for (int d = 0; d < 2; d++) {
		assert_false(filter_match(&f, d, pkt, sizeof(pkt), sizeof(pkt)));
		assert_int_equal(kernel_retval(fds[d], pkt, sizeof(pkt)), d == PKT_EGRESS ? 3 : 1);
		close(fds[d]);
	}
	filter_free(&f);
	kernel_close(&k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_join),
		cmocka_unit_test(test_link_layer_errors),
		cmocka_unit_test(test_directions),
		cmocka_unit_test(test_translate_errors),
		cmocka_unit_test(test_large_programs),
		cmocka_unit_test(test_differential),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
