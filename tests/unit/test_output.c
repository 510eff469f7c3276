// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Output layer: JSON and table golden files, JSON validity, bounds, and the buffered writer. */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "decode.h"
#include "events.h"
#include "output.h"
#include "output_fmt.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* Events in the golden files. */
#define GOLDEN_N 15

/* The brief's example line, verbatim: event 0 below must print exactly this. */
static const char example_json[] =
	"{\"timestamp\":1764145200123456789,\"eventName\":\"net_packet_tcp\",\"processId\":4242,"
	"\"threadId\":4242,\"parentProcessId\":4100,\"userId\":1000,\"processName\":\"curl\","
	"\"hostName\":\"web-1\",\"cgroupId\":1234,\"containerId\":\"\",\"args\":[{\"name\":"
	"\"metadata\",\"type\":\"trace.PacketMetadata\",\"value\":{\"src_ip\":\"127.0.0.1\","
	"\"dst_ip\":\"127.0.0.1\",\"src_port\":41234,\"dst_port\":8080,\"protocol\":6,"
	"\"packet_len\":60,\"iface\":\"lo\",\"direction\":\"egress\"}},{\"name\":\"proto_tcp\","
	"\"type\":\"trace.ProtoTCP\",\"value\":{\"srcPort\":41234,\"dstPort\":8080,"
	"\"seq\":3512345678,\"ack\":0,\"dataOffset\":10,\"FIN\":false,\"SYN\":true,\"RST\":false,"
	"\"PSH\":false,\"ACK\":false,\"URG\":false,\"ECE\":false,\"CWR\":false,\"NS\":false,"
	"\"window\":65495,\"checksum\":65072,\"urgent\":0}}]}\n";

static const char container_a[] =
	"3f4e8a2b9c1d0e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f";

#define ALL_FLAGS                                                                                  \
	(TCP_FLAG_FIN | TCP_FLAG_SYN | TCP_FLAG_RST | TCP_FLAG_PSH | TCP_FLAG_ACK | TCP_FLAG_URG | \
	 TCP_FLAG_ECE | TCP_FLAG_CWR | TCP_FLAG_NS)

static void set_addr(struct pkt_headers *h, int family, const char *src, const char *dst)
{
	h->family = family;
	assert_int_equal(inet_pton(family, src, h->src_addr), 1);
	assert_int_equal(inet_pton(family, dst, h->dst_addr), 1);
}

/* Options as the decoder makes them from these bytes (a multiple of 4, at most 40). */
static void set_opts(struct pkt_headers *h, const uint8_t *opt, size_t n)
{
	uint8_t pkt[100] = {0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6};
	struct pkt_headers d;

	assert_true(n % 4 == 0 && n <= 40);
	pkt[20 + 12] = (uint8_t)((5 + n / 4) << 4);
	memcpy(pkt + 40, opt, n);
	assert_int_equal(decode_headers(pkt, 40 + n, &d), 0);
	assert_int_equal(d.l4_error, 0);
	h->opts = d.opts;
	h->data_offset = (uint8_t)(5 + n / 4);
}

/* The fixed events of the golden files; each one says what it covers. */
static size_t golden_events(struct pkt_event *ev, size_t max)
{
	struct pkt_event *e;
	size_t n = 0;

	assert_true(max >= GOLDEN_N);
	memset(ev, 0, max * sizeof(*ev));

	/* 0: IPv4 SYN, the brief's example. */
	e = &ev[n++];
	e->timestamp_ns = 1764145200123456789ull;
	e->proc = (struct pkt_process){.pid = 4242, .tid = 4242, .ppid = 4100, .uid = 1000,
				       .cgroup_id = 1234, .comm = "curl", .hostname = "web-1",
				       .container_id = ""};
	strcpy(e->ifname, "lo");
	e->egress = true;
	e->packet_len = 60;
	set_addr(&e->hdr, AF_INET, "127.0.0.1", "127.0.0.1");
	e->hdr.protocol = 6;
	e->hdr.src_port = 41234;
	e->hdr.dst_port = 8080;
	e->hdr.seq = 3512345678u;
	e->hdr.ack = 0;
	e->hdr.data_offset = 10;
	e->hdr.flags = TCP_FLAG_SYN;
	e->hdr.window = 65495;
	e->hdr.checksum = 65072;
	e->hdr.urgent = 0;

	/* 1: IPv6 SYN-ACK, two full-length addresses, in a container. */
	e = &ev[n++];
	e->timestamp_ns = 1764145200124000001ull;
	e->proc = (struct pkt_process){.pid = 1337, .tid = 1338, .ppid = 1, .uid = 101,
				       .cgroup_id = 98765, .comm = "nginx", .hostname = "web-1",
				       .container_id = container_a};
	strcpy(e->ifname, "eth0");
	e->egress = true;
	e->packet_len = 80;
	set_addr(&e->hdr, AF_INET6, "2001:db8:85a3:1234:5678:8a2e:370:7334",
		 "fd12:3456:789a:bcde:f012:3456:789a:bcde");
	e->hdr.protocol = 6;
	e->hdr.src_port = 443;
	e->hdr.dst_port = 51234;
	e->hdr.seq = 1000;
	e->hdr.ack = 2000;
	e->hdr.data_offset = 10;
	e->hdr.flags = TCP_FLAG_SYN | TCP_FLAG_ACK;
	e->hdr.window = 64800;
	e->hdr.checksum = 0xbeef;
	e->hdr.urgent = 0;

	/* 2: IPv4 FIN+PSH+ACK, ingress, with payload. */
	e = &ev[n++];
	e->timestamp_ns = 1764145201000000000ull;
	e->proc = (struct pkt_process){.pid = 777, .tid = 780, .ppid = 700, .uid = 999,
				       .cgroup_id = 4321, .comm = "postgres", .hostname = "db-2",
				       .container_id = ""};
	strcpy(e->ifname, "ens3");
	e->egress = false;
	e->packet_len = 1500;
	set_addr(&e->hdr, AF_INET, "10.1.2.3", "192.168.100.200");
	e->hdr.protocol = 6;
	e->hdr.src_port = 5432;
	e->hdr.dst_port = 60000;
	e->hdr.seq = 4294967295u;
	e->hdr.ack = 1;
	e->hdr.data_offset = 8;
	e->hdr.flags = TCP_FLAG_FIN | TCP_FLAG_PSH | TCP_FLAG_ACK;
	e->hdr.window = 501;
	e->hdr.checksum = 1;
	e->hdr.urgent = 0;

	/* 3: all nine flags, IPv4-mapped IPv6 destination. */
	e = &ev[n++];
	e->timestamp_ns = 1764145259999999999ull;
	e->proc = (struct pkt_process){.pid = 5, .tid = 5, .ppid = 2, .uid = 0, .cgroup_id = 1,
				       .comm = "x", .hostname = "h", .container_id = ""};
	strcpy(e->ifname, "veth1a2b3c4");
	e->egress = false;
	e->packet_len = 61;
	set_addr(&e->hdr, AF_INET6, "::1", "::ffff:192.0.2.1");
	e->hdr.protocol = 6;
	e->hdr.src_port = 1;
	e->hdr.dst_port = 65535;
	e->hdr.seq = 7;
	e->hdr.ack = 8;
	e->hdr.data_offset = 5;
	e->hdr.flags = ALL_FLAGS;
	e->hdr.window = 0;
	e->hdr.checksum = 65535;
	e->hdr.urgent = 1;

	/* 4: hostile comm (quote, backslash, newline, 0xff), UTF-8 hostname; RST. */
	e = &ev[n++];
	e->timestamp_ns = 1764145260000001000ull;
	e->proc = (struct pkt_process){.pid = 31337, .tid = 31337, .ppid = 1, .uid = 65534,
				       .cgroup_id = 2, .comm = "a\"b\\c\nd\xff",
				       .hostname = "h\xc3\xa9llo", .container_id = ""};
	strcpy(e->ifname, "wl\x1b[0m");
	e->egress = true;
	e->packet_len = 40;
	set_addr(&e->hdr, AF_INET, "0.0.0.0", "255.255.255.255");
	e->hdr.protocol = 6;
	e->hdr.src_port = 0;
	e->hdr.dst_port = 80;
	e->hdr.seq = 0;
	e->hdr.ack = 0;
	e->hdr.data_offset = 5;
	e->hdr.flags = TCP_FLAG_RST;
	e->hdr.window = 0;
	e->hdr.checksum = 0;
	e->hdr.urgent = 0;

	/* 5: pure ACK, extreme numbers, a 16-byte comm, RFC 5952 compression, GSO length. */
	e = &ev[n++];
	e->timestamp_ns = 18446744073709551615ull;
	e->proc = (struct pkt_process){.pid = 4194304, .tid = 4294967295u, .ppid = 4294967295u,
				       .uid = 4294967295u, .cgroup_id = 18446744073709551615ull,
				       .comm = "0123456789abcdef", .hostname = "h",
				       .container_id = ""};
	strcpy(e->ifname, "0123456789abcdef");
	e->egress = false;
	e->packet_len = 4294967295u;
	set_addr(&e->hdr, AF_INET6, "2001:db8:0:0:1:0:0:1", "fe80::1:0:0:0");
	e->hdr.protocol = 6;
	e->hdr.src_port = 65535;
	e->hdr.dst_port = 65535;
	e->hdr.seq = 4294967295u;
	e->hdr.ack = 4294967295u;
	e->hdr.data_offset = 15;
	e->hdr.flags = TCP_FLAG_ACK;
	e->hdr.window = 65535;
	e->hdr.checksum = 65535;
	e->hdr.urgent = 65535;

	/* 6: RST+ACK. */
	e = &ev[n++];
	e->timestamp_ns = 1764145200500000000ull;
	e->proc = (struct pkt_process){.pid = 4242, .tid = 4242, .ppid = 4100, .uid = 1000,
				       .cgroup_id = 1234, .comm = "curl", .hostname = "web-1",
				       .container_id = ""};
	strcpy(e->ifname, "lo");
	e->egress = false;
	e->packet_len = 40;
	set_addr(&e->hdr, AF_INET, "127.0.0.1", "127.0.0.1");
	e->hdr.protocol = 6;
	e->hdr.src_port = 8080;
	e->hdr.dst_port = 41234;
	e->hdr.seq = 0;
	e->hdr.ack = 3512345679u;
	e->hdr.data_offset = 5;
	e->hdr.flags = TCP_FLAG_RST | TCP_FLAG_ACK;
	e->hdr.window = 0;
	e->hdr.checksum = 0xfe28;
	e->hdr.urgent = 0;

	/* 7: no flags at all, C1 control (CSI) and a valid 4-byte character in comm. */
	e = &ev[n++];
	e->timestamp_ns = 1764145200999999000ull;
	e->proc = (struct pkt_process){.pid = 1, .tid = 1, .ppid = 0, .uid = 0, .cgroup_id = 1,
				       .comm = "s\xc2\x9b\xf0\x9f\x98\x80t", .hostname = "h",
				       .container_id = ""};
	strcpy(e->ifname, "lo");
	e->egress = true;
	e->packet_len = 40;
	set_addr(&e->hdr, AF_INET, "1.2.3.4", "5.6.7.8");
	e->hdr.protocol = 6;
	e->hdr.src_port = 1234;
	e->hdr.dst_port = 5678;
	e->hdr.seq = 42;
	e->hdr.ack = 0;
	e->hdr.data_offset = 5;
	e->hdr.flags = 0;
	e->hdr.window = 1024;
	e->hdr.checksum = 0x1234;
	e->hdr.urgent = 0;

	/* 8: IPv6 data behind nine extension headers (the evasion of issue 8): the chain shown. */
	e = &ev[n++];
	e->timestamp_ns = 1764145202000000000ull;
	e->proc = (struct pkt_process){.pid = 1337, .tid = 1338, .ppid = 1, .uid = 101,
				       .cgroup_id = 98765, .comm = "nginx", .hostname = "web-1",
				       .container_id = ""};
	strcpy(e->ifname, "eth0");
	e->egress = false;
	e->packet_len = 1292;
	set_addr(&e->hdr, AF_INET6, "2001:db8::66", "2001:db8::1");
	e->hdr.protocol = 6;
	e->hdr.src_port = 40000;
	e->hdr.dst_port = 443;
	e->hdr.seq = 123456789;
	e->hdr.ack = 987654321;
	e->hdr.data_offset = 8;
	e->hdr.flags = TCP_FLAG_PSH | TCP_FLAG_ACK;
	e->hdr.window = 502;
	e->hdr.checksum = 0x4242;
	e->hdr.urgent = 0;
	e->hdr.ext_count = 9;
	e->hdr.ext_len = 72;
	e->hdr.ext_types_n = 9;
	memcpy(e->hdr.ext_types, (const uint8_t[]){0, 60, 60, 43, 60, 60, 60, 44, 60}, 9);

	/* 9: no TCP header the kernel could reach, behind a chain ending in ESP. */
	e = &ev[n++];
	e->timestamp_ns = 1764145202000500000ull;
	e->proc = ev[n - 2].proc;
	strcpy(e->ifname, "eth0");
	e->egress = false;
	e->packet_len = 1400;
	set_addr(&e->hdr, AF_INET6, "2001:db8::66", "2001:db8::1");
	e->hdr.protocol = 255;
	e->hdr.l4_error = DECODE_NO_L4;
	e->hdr.ext_count = 2;
	e->hdr.ext_len = 16;
	e->hdr.ext_types_n = 2;
	memcpy(e->hdr.ext_types, (const uint8_t[]){0, 60}, 2);

	/* 10: an IPv4 later fragment: no chain, no TCP header, the reason named. */
	e = &ev[n++];
	e->timestamp_ns = 1764145202001000000ull;
	e->proc = ev[0].proc;
	strcpy(e->ifname, "lo");
	e->egress = true;
	e->packet_len = 548;
	set_addr(&e->hdr, AF_INET, "10.0.0.1", "10.0.0.2");
	e->hdr.protocol = 6;
	e->hdr.l4_error = DECODE_FRAGMENT;

	/* 11: a chain past the kernel's count (255 or more) and its 64 listed types; RLO and
	 * zero-width characters in comm and host name. */
	e = &ev[n++];
	e->timestamp_ns = 1764145202002000000ull;
	e->proc = (struct pkt_process){.pid = 666, .tid = 666, .ppid = 1, .uid = 1000,
				       .cgroup_id = 3, .comm = "ab\xe2\x80\xae" "cd\xe2\x80\x8b" "x",
				       .hostname = "h\xe2\x81\xa6i\xef\xbb\xbf\xf3\xa0\x80\x81",
				       .container_id = ""};
	strcpy(e->ifname, "eth0");
	e->egress = false;
	e->packet_len = 65535;
	set_addr(&e->hdr, AF_INET6, "2001:db8::66", "2001:db8::1");
	e->hdr.protocol = 6;
	e->hdr.src_port = 40001;
	e->hdr.dst_port = 443;
	e->hdr.seq = 1;
	e->hdr.ack = 2;
	e->hdr.data_offset = 5;
	e->hdr.flags = TCP_FLAG_ACK;
	e->hdr.window = 3;
	e->hdr.checksum = 4;
	e->hdr.ext_count = 255;
	e->hdr.ext_len = 2400;
	e->hdr.ext_types_n = EVENT_EXT_TYPES;
	memset(e->hdr.ext_types, 60, EVENT_EXT_TYPES);

	/* 12: Linux's SYN options (MSS, SACK permitted, timestamps, window scale) and a TFO cookie. */
	e = &ev[n++];
	*e = ev[0];
	e->timestamp_ns += 1000;
	e->packet_len = 72;
	set_opts(&e->hdr, (const uint8_t[]){2, 4, 0xff, 0xd7, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2,
					    1, 3, 3, 7, 34, 10, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4,
					    1, 1},
		 32);

	/* 13: an IPv6 data packet with timestamps and four SACK blocks (edges at their limits). */
	e = &ev[n++];
	*e = ev[1];
	e->egress = false;
	e->hdr.flags = TCP_FLAG_ACK;
	e->packet_len = 100;
	set_opts(&e->hdr, (const uint8_t[]){1, 1, 5, 34, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
					    0, 0, 0x10, 0, 0, 0, 0x20, 0, 0, 0, 0x30, 0, 0, 0, 0x40,
					    0, 0x80, 0, 0, 0, 0x80, 0, 0, 1, 1, 1, 1, 0},
		 40);

	/* 14: an MPTCP DSS without fields, unknown kinds (an MD5 too short for its signature, a 254
	 * that is no TFO), a cookie request, then a bad length. */
	e = &ev[n++];
	*e = ev[2];
	set_opts(&e->hdr, (const uint8_t[]){30, 4, 0x20, 0, 19, 2, 254, 4, 0x12, 0x34, 34, 2, 1, 9,
					    1, 0},
		 16);

	assert_int_equal(n, GOLDEN_N);
	return n;
}

/* Big enough for thousands of lines; tests format into it and compare. */
static char fmt_buf[16 << 20];

static size_t format_all_json(char *dst, size_t cap, const struct pkt_event *ev, size_t n)
{
	size_t len = 0, i, k;

	for (i = 0; i < n; i++) {
		k = format_json(dst + len, cap - len, &ev[i]);
		assert_true(k > 0);
		len += k;
	}
	return len;
}

static size_t format_all_table(char *dst, size_t cap, const struct pkt_event *ev, size_t n)
{
	size_t len = format_table_header(dst, cap), i, k;

	assert_true(len > 0);
	for (i = 0; i < n; i++) {
		k = format_table(dst + len, cap - len, &ev[i]);
		assert_true(k > 0);
		len += k;
	}
	return len;
}

static char *read_whole(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long sz;

	if (!f)
		return NULL;
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	sz = ftell(f);
	assert_true(sz >= 0);
	rewind(f);
	buf = malloc((size_t)sz + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)sz, f), (size_t)sz);
	buf[sz] = '\0';
	fclose(f);
	*len = (size_t)sz;
	return buf;
}

static void write_whole(const char *path, const char *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Compare with the golden file; UPDATE_GOLDEN=1 rewrites it (then read the diff by hand). */
static void check_golden(const char *name, const char *got, size_t len)
{
	const char *dir = getenv("GOLDEN_DIR");
	char path[4096];
	size_t glen;
	char *want;

	snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "tests/golden", name);
	if (getenv("UPDATE_GOLDEN"))
		write_whole(path, got, len);
	want = read_whole(path, &glen);
	if (!want)
		fail_msg("cannot read golden file %s (run from the repo root or set GOLDEN_DIR)",
			 path);
	if (glen != len || memcmp(want, got, len) != 0) {
		fprintf(stderr, "--- want %s\n%.*s--- got\n%.*s", path, (int)glen, want, (int)len,
			got);
		fail_msg("output differs from %s", path);
	}
	free(want);
}

static void test_json_example(void **state)
{
	struct pkt_event ev[GOLDEN_N];
	char buf[2048];
	size_t n;

	(void)state;
	golden_events(ev, ARRAY_SIZE(ev));
	n = format_json(buf, sizeof(buf), &ev[0]);
	assert_int_equal(n, strlen(example_json));
	assert_memory_equal(buf, example_json, n);
}

/* The process fields are kept per thread id: a name changed behind the same pointer (an enrich
 * cache slot reused), or any other field, must show in the next line, never the kept text. */
static void test_json_process_kept(void **state)
{
	struct pkt_event ev[GOLDEN_N];
	char buf[2048], host[16] = "web-1";
	size_t n;

	(void)state;
	golden_events(ev, ARRAY_SIZE(ev));
	ev[0].proc.hostname = host;
	n = format_json(buf, sizeof(buf), &ev[0]);
	assert_int_equal(n, strlen(example_json));
	assert_memory_equal(buf, example_json, n);
	strcpy(host, "web-2");
	n = format_json(buf, sizeof(buf) - 1, &ev[0]);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "\"hostName\":\"web-2\""));
	strcpy(ev[0].proc.comm, "wget");
	ev[0].proc.uid = 0;
	n = format_json(buf, sizeof(buf) - 1, &ev[0]);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "\"userId\":0,\"processName\":\"wget\",\"hostName\":\"web-2\""));
	/* And back: the first line again, byte for byte. */
	strcpy(host, "web-1");
	strcpy(ev[0].proc.comm, "curl");
	ev[0].proc.uid = 1000;
	n = format_json(buf, sizeof(buf), &ev[0]);
	assert_int_equal(n, strlen(example_json));
	assert_memory_equal(buf, example_json, n);
}

/* One line of e in buf, as a string: its length. */
static size_t line_of(size_t (*fmt)(char *, size_t, const struct pkt_event *), char *buf,
		      size_t cap, const struct pkt_event *e)
{
	size_t n = fmt(buf, cap - 1, e);

	buf[n] = '\0';
	return n;
}

static const uint8_t nop_nop_ts[] = {1, 1, 8, 10, 0, 0, 0, 111, 0, 0, 0, 222};

/* A TCP event of the shape whose text is kept: the golden one, NOP NOP TS options. */
static void kept_shape_event(struct pkt_event *e)
{
	struct pkt_event ev[GOLDEN_N];

	golden_events(ev, ARRAY_SIZE(ev));
	*e = ev[0];
	e->event = EVENT_NET_PACKET_TCP;
	e->hdr.l4_error = 0;
	e->hdr.ext_count = 0;
	set_opts(&e->hdr, nop_nop_ts, sizeof(nop_nop_ts));
}

/* A loopback packet's second event reuses the first one's text from SOURCE on (table) or its
 * args (JSON): any header field that differs, the options' order included, must show. */
static void test_packet_text_kept(void **state)
{
	static const uint8_t ts_nop_nop[] = {8, 10, 0, 0, 0, 111, 0, 0, 0, 222, 1, 1};
	struct pkt_event e;
	char a[2048], b[2048];
	size_t na;

	(void)state;
	kept_shape_event(&e);
	e.egress = true;
	line_of(format_table, a, sizeof(a), &e);
	assert_non_null(strstr(a, "options [nop,nop,TS val 111 ecr 222]"));
	e.egress = false;
	line_of(format_table, b, sizeof(b), &e);
	assert_string_equal(strstr(a, "options"), strstr(b, "options"));
	/* The same fields, the options in another order: not the kept text. */
	set_opts(&e.hdr, ts_nop_nop, sizeof(ts_nop_nop));
	line_of(format_table, b, sizeof(b), &e);
	assert_non_null(strstr(b, "options [TS val 111 ecr 222,nop,nop]"));
	/* Back to the kept order, another window: the new one shows. */
	set_opts(&e.hdr, nop_nop_ts, sizeof(nop_nop_ts));
	e.hdr.window = 4321;
	line_of(format_table, b, sizeof(b), &e);
	assert_non_null(strstr(b, " 4321 "));
	/* JSON: the second event is the first one's but the direction; another seq shows. */
	e.egress = true;
	na = line_of(format_json, a, sizeof(a), &e);
	e.egress = false;
	assert_int_equal(line_of(format_json, b, sizeof(b), &e), na + 1);
	assert_non_null(strstr(b, "\"direction\":\"ingress\""));
	e.hdr.seq = 987654321;
	line_of(format_json, b, sizeof(b), &e);
	assert_non_null(strstr(b, "\"seq\":987654321"));
}

/* PKT_TEXT_COLD distinct packets, each looked up and kept: c is cold after them. */
static void text_go_cold(struct pkt_text_cache *c, struct pkt_event *e)
{
	struct pkt_text_key k;

	for (int i = 0; i < PKT_TEXT_COLD; i++) {
		e->hdr.seq = 100000u + (uint32_t)i;
		assert_true(pkt_text_key_of(c, e, 0, &k));
		assert_null(pkt_text_get(c, &k));
		pkt_text_put(c, &k, "x", 1, NULL, 0);
	}
}

/* Distinct packets make the kept text go cold: after PKT_TEXT_COLD look-ups in a row found
 * nothing, only a probe (one packet in PKT_TEXT_PROBE of those passed over) and the two packets
 * after it are looked up; a pair found that way makes it warm again. The lines never change
 * with it. */
static void test_packet_text_cold(void **state)
{
	struct pkt_text_cache c = {0};
	struct pkt_text_key k;
	struct pkt_event e;
	char a[2048], b[2048], want[2048], *d;
	int i, looked = 0, n = 8 * (PKT_TEXT_PROBE + 2);

	(void)state;
	kept_shape_event(&e);
	text_go_cold(&c, &e);
	for (i = 0; i < n; i++) {
		e.hdr.seq = (uint32_t)(1000 + i);
		if (!pkt_text_key_of(&c, &e, 0, &k))
			continue;
		looked++;
		assert_null(pkt_text_get(&c, &k));
		pkt_text_put(&c, &k, "x", 1, NULL, 0);
	}
	/* Each probe and the two packets after it: 3 in every PKT_TEXT_PROBE + 2. */
	assert_int_equal(looked, 3 * n / (PKT_TEXT_PROBE + 2));
	/* Cold still: the next probe, then its pair's second event is found. */
	for (i = 0; i < PKT_TEXT_PROBE && !pkt_text_key_of(&c, &e, 0, &k); i++)
		e.hdr.seq++;
	assert_true(i < PKT_TEXT_PROBE);
	assert_null(pkt_text_get(&c, &k));
	pkt_text_put(&c, &k, "x", 1, NULL, 0);
	assert_true(pkt_text_key_of(&c, &e, 0, &k));
	assert_non_null(pkt_text_get(&c, &k));
	/* Warm: every packet looked up again. */
	for (i = 0; i < PKT_TEXT_COLD - 1; i++) {
		e.hdr.seq += 7;
		assert_true(pkt_text_key_of(&c, &e, 0, &k));
		assert_null(pkt_text_get(&c, &k));
	}

	/* The JSON printer's own: cold after distinct packets, and then each pair's ingress line is
	 * its egress line but the direction, whether the egress one was kept or not. */
	for (i = 0; i < 4 * PKT_TEXT_COLD; i++) {
		e.hdr.seq = 5000u + (uint32_t)i;
		line_of(format_json, a, sizeof(a), &e);
	}
	for (i = 0; i < 2 * PKT_TEXT_PROBE; i++) {
		e.hdr.seq = 9000u + (uint32_t)i;
		e.egress = true;
		line_of(format_json, a, sizeof(a), &e);
		e.egress = false;
		line_of(format_json, b, sizeof(b), &e);
		d = strstr(a, "\"direction\":\"egress\"");
		assert_non_null(d);
		snprintf(want, sizeof(want), "%.*s\"direction\":\"ingress\"%s", (int)(d - a), a,
			 d + strlen("\"direction\":\"egress\""));
		assert_string_equal(b, want);
	}
}

/* Cold, then pairs whose halves have another packet between them (A B A' B', as two
 * connections' records interleave): a probe's window takes them in, and nearly every second
 * half is found from then on. */
static void test_packet_text_cold_separated(void **state)
{
	struct pkt_text_cache c = {0};
	struct pkt_text_key k;
	struct pkt_event e;
	int i, hits = 0, n = 64 * PKT_TEXT_PROBE;

	(void)state;
	kept_shape_event(&e);
	text_go_cold(&c, &e);
	for (i = 0; i < n; i++) {
		e.hdr.seq = 1000u + 2u * (uint32_t)(i / 4) + (uint32_t)(i & 1);
		if (!pkt_text_key_of(&c, &e, 0, &k))
			continue;
		if (pkt_text_get(&c, &k))
			hits++;
		else
			pkt_text_put(&c, &k, "x", 1, NULL, 0);
	}
	/* n / 2 second halves; the ones before the first probe's window and in it are lost. */
	assert_true(hits >= n / 2 - 2 * (PKT_TEXT_PROBE + 2));
}

/* The experimental TFO option (kind 254, magic 0xF989) says so in JSON, as in the table and
 * text ("exp-tfo"); kind 34 does not. */
static void test_json_tfo_experimental(void **state)
{
	static const uint8_t exp[] = {254, 8, 0xf9, 0x89, 0xde, 0xad, 0xbe, 0xef, 1, 1, 1, 1};
	static const uint8_t std[] = {34, 6, 0xde, 0xad, 0xbe, 0xef, 1, 1};
	struct pkt_event e;
	char b[2048];

	(void)state;
	kept_shape_event(&e);
	set_opts(&e.hdr, exp, sizeof(exp));
	assert_true(e.hdr.opts.tfo_exp);
	line_of(format_json, b, sizeof(b), &e);
	assert_non_null(strstr(b, "\"tfo_cookie\":\"deadbeef\",\"tfo_experimental\":true}"));
	line_of(format_table, b, sizeof(b), &e);
	assert_non_null(strstr(b, "exp-tfo cookie deadbeef"));
	set_opts(&e.hdr, std, sizeof(std));
	assert_false(e.hdr.opts.tfo_exp);
	line_of(format_json, b, sizeof(b), &e);
	assert_non_null(strstr(b, "\"tfo_cookie\":\"deadbeef\"}"));
	assert_null(strstr(b, "tfo_experimental"));
}

static void test_json_golden(void **state)
{
	struct pkt_event ev[GOLDEN_N];
	size_t n = golden_events(ev, ARRAY_SIZE(ev));
	size_t len = format_all_json(fmt_buf, sizeof(fmt_buf), ev, n);

	(void)state;
	check_golden("events.json", fmt_buf, len);
}

static void test_table_golden(void **state)
{
	struct pkt_event ev[GOLDEN_N];
	size_t n = golden_events(ev, ARRAY_SIZE(ev));
	size_t len = format_all_table(fmt_buf, sizeof(fmt_buf), ev, n);

	(void)state;
	check_golden("events.table", fmt_buf, len);
}

/* Every line must be exactly one line: a newline only at the very end. */
static void test_one_line_each(void **state)
{
	struct pkt_event ev[GOLDEN_N];
	size_t n = golden_events(ev, ARRAY_SIZE(ev)), i, k;
	char buf[2048];

	(void)state;
	for (i = 0; i < n; i++) {
		k = format_json(buf, sizeof(buf), &ev[i]);
		assert_true(k > 0 && buf[k - 1] == '\n');
		assert_null(memchr(buf, '\n', k - 1));
		k = format_table(buf, sizeof(buf), &ev[i]);
		assert_true(k > 0 && buf[k - 1] == '\n');
		assert_null(memchr(buf, '\n', k - 1));
		/* No trailing blanks on table lines. */
		assert_true(k < 2 || buf[k - 2] != ' ');
	}
	k = format_table_header(buf, sizeof(buf));
	assert_true(k > 0 && buf[k - 1] == '\n');
	assert_null(memchr(buf, '\n', k - 1));
}

/*
 * The independent JSON check: Python parses every line (strict UTF-8 first), checks the key
 * names and their order, and compares every value against the raw event fields the C side
 * wrote to a sidecar file; strings must decode to the raw bytes, ill-formed bytes as U+00XX.
 */
static const char json_checker[] =
	"import ipaddress, json, sys\n"
	"TOP = ['timestamp', 'eventName', 'processId', 'threadId', 'parentProcessId', 'userId',\n"
	"       'processName', 'hostName', 'cgroupId', 'containerId', 'args']\n"
	"META = ['src_ip', 'dst_ip', 'src_port', 'dst_port', 'protocol', 'packet_len', 'iface',\n"
	"        'direction']\n"
	"TCP = ['srcPort', 'dstPort', 'seq', 'ack', 'dataOffset', 'FIN', 'SYN', 'RST', 'PSH',\n"
	"       'ACK', 'URG', 'ECE', 'CWR', 'NS', 'window', 'checksum', 'urgent']\n"
	"def s(h):\n"
	"    b = bytes.fromhex(h[1:])\n"
	"    t = b.decode('utf-8', 'surrogateescape')\n"
	"    return ''.join(chr(ord(c) - 0xdc00) if 0xdc80 <= ord(c) <= 0xdcff else c for c in t)\n"
	"def ip(fam, h):\n"
	"    return ipaddress.ip_address(bytes.fromhex(h[1:])[:4 if fam == 2 else 16])\n"
	"text = open(sys.argv[1], 'rb').read().decode('utf-8')\n"
	"raw = open(sys.argv[2]).read().splitlines()\n"
	"lines = text.split('\\n')\n"
	"assert lines[-1] == '', 'no newline at the end'\n"
	"lines = lines[:-1]\n"
	"assert len(lines) == len(raw), (len(lines), len(raw))\n"
	"for l, r in zip(lines, raw):\n"
	"    o = json.loads(l)\n"
	"    r = r.split()\n"
	"    num = lambda i: int(r[i])\n"
	"    assert list(o) == TOP, list(o)\n"
	"    assert o['eventName'] == 'net_packet_tcp'\n"
	"    assert [o['timestamp'], o['processId'], o['threadId'], o['parentProcessId'],\n"
	"            o['userId'], o['cgroupId']] == [num(i) for i in range(6)], l\n"
	"    assert o['processName'] == s(r[6]), (o['processName'], r[6])\n"
	"    assert o['hostName'] == s(r[7]), (o['hostName'], r[7])\n"
	"    assert o['containerId'] == s(r[8]), (o['containerId'], r[8])\n"
	"    a = o['args']\n"
	"    ec, el, types, err = num(25), num(26), list(bytes.fromhex(r[27][1:])), s(r[28])\n"
	"    pres, shown, bad, mss, ws, tv, te, sn = [num(i) for i in range(29, 37)]\n"
	"    sack = [[num(37 + 2 * i), num(38 + 2 * i)] for i in range(sn)]\n"
	"    cookie, unk = r[37 + 2 * sn][1:], bytes.fromhex(r[38 + 2 * sn][1:])\n"
	"    udata = bytes.fromhex(r[39 + 2 * sn][1:])\n"
	"    exp = num(40 + 2 * sn)\n"
	"    assert len(a) == (1 if err else 3 if shown else 2), l\n"
	"    assert list(a[0]) == ['name', 'type', 'value']\n"
	"    assert a[0]['name'] == 'metadata' and a[0]['type'] == 'trace.PacketMetadata'\n"
	"    m = a[0]['value']\n"
	"    want = META + (['ipv6_ext'] if ec else []) + (['decode_error'] if err else [])\n"
	"    assert list(m) == want, list(m)\n"
	"    if ec:\n"
	"        assert m['ipv6_ext'] == {'count': ec, 'length': el, 'types': types}, l\n"
	"        assert list(m['ipv6_ext']) == ['count', 'length', 'types']\n"
	"    if err:\n"
	"        assert m['decode_error'] == err and m['src_port'] == m['dst_port'] == 0, l\n"
	"        continue\n"
	"    assert list(a[1]) == list(a[0])\n"
	"    assert a[1]['name'] == 'proto_tcp' and a[1]['type'] == 'trace.ProtoTCP'\n"
	"    t = a[1]['value']\n"
	"    assert list(t) == TCP, list(t)\n"
	"    fam = num(10)\n"
	"    assert ipaddress.ip_address(m['src_ip']) == ip(fam, r[11]), l\n"
	"    assert ipaddress.ip_address(m['dst_ip']) == ip(fam, r[12]), l\n"
	"    assert m['iface'] == s(r[9]), (m['iface'], r[9])\n"
	"    assert [m['src_port'], m['dst_port'], m['protocol'], m['packet_len']] == \\\n"
	"        [num(13), num(14), num(15), num(16)], l\n"
	"    assert m['direction'] == ('egress' if num(17) else 'ingress')\n"
	"    assert [t['srcPort'], t['dstPort'], t['seq'], t['ack'], t['dataOffset']] == \\\n"
	"        [num(13), num(14), num(18), num(19), num(20)], l\n"
	"    fl = num(21)\n"
	"    names = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR', 'NS']\n"
	"    for i, k in enumerate(names):\n"
	"        assert t[k] is bool(fl & (1 << i)), (k, l)\n"
	"    assert [t['window'], t['checksum'], t['urgent']] == [num(22), num(23), num(24)], l\n"
	"    if not shown:\n"
	"        continue\n"
	"    assert list(a[2]) == list(a[0])\n"
	"    assert a[2]['name'] == 'tcp_options' and a[2]['type'] == 'trace.TCPOptions'\n"
	"    want = {}\n"
	"    if pres & 1: want['mss'] = mss\n"
	"    if pres & 2: want['wscale'] = ws\n"
	"    if pres & 4: want['sack_permitted'] = True\n"
	"    if pres & 8: want['sack_blocks'] = sack\n"
	"    if pres & 16: want['ts_val'], want['ts_ecr'] = tv, te\n"
	"    if pres & 32: want['tfo_cookie'] = cookie\n"
	"    if pres & 32 and exp: want['tfo_experimental'] = True\n"
	"    if unk:\n"
	"        want['unknown'], off = [], 0\n"
	"        for i in range(0, len(unk), 2):\n"
	"            n = unk[i + 1] - 2\n"
	"            want['unknown'].append({'kind': unk[i], 'length': unk[i + 1],\n"
	"                                    'data': udata[off:off + n].hex()})\n"
	"            off += n\n"
	"    if bad: want['malformed'] = True\n"
	"    o = a[2]['value']\n"
	"    assert o == want and list(o) == list(want), (o, want)\n"
	"    for k in ('sack_permitted', 'malformed'):\n"
	"        assert o.get(k, True) is True, l\n"
	"print(len(lines))\n";

static void put_hex(FILE *f, const void *p, size_t n)
{
	const unsigned char *u = p;
	size_t i;

	fputs(" x", f);
	for (i = 0; i < n; i++)
		fprintf(f, "%02x", u[i]);
}

/* The options as numbers for the checker: it rebuilds the tcp_options value from them. */
static void write_raw_opts(FILE *f, const struct tcp_opts *o)
{
	uint8_t u[2 * TCP_OPTS_UNKNOWN_MAX];
	size_t i;

	fprintf(f, " %u %d %u %u %u %u %u %u", o->present, tcp_opts_shown(o), o->malformed, o->mss,
		o->wscale, o->ts_val, o->ts_ecr, o->sack_n);
	for (i = 0; i < o->sack_n; i++)
		fprintf(f, " %u %u", o->sack[i][0], o->sack[i][1]);
	put_hex(f, o->tfo_cookie, o->tfo_len);
	for (i = 0; i < o->unknown_n; i++) {
		u[2 * i] = o->unknown[i].kind;
		u[2 * i + 1] = o->unknown[i].len;
	}
	put_hex(f, u, 2 * o->unknown_n);
	put_hex(f, o->unknown_data, o->unknown_used); /* their data, one after the other */
	fprintf(f, " %d", o->tfo_exp);
}

static void write_raw(FILE *f, const struct pkt_event *e)
{
	const struct pkt_process *p = &e->proc;
	const struct pkt_headers *h = &e->hdr;

	fprintf(f, "%llu %u %u %u %u %llu", (unsigned long long)e->timestamp_ns, p->pid, p->tid,
		p->ppid, p->uid, (unsigned long long)p->cgroup_id);
	put_hex(f, p->comm, strnlen(p->comm, sizeof(p->comm)));
	put_hex(f, p->hostname, strlen(p->hostname));
	put_hex(f, p->container_id, strlen(p->container_id));
	put_hex(f, e->ifname, strnlen(e->ifname, sizeof(e->ifname)));
	fprintf(f, " %d", h->family == AF_INET ? 2 : 10);
	put_hex(f, h->src_addr, 16);
	put_hex(f, h->dst_addr, 16);
	fprintf(f, " %u %u %u %u %d %u %u %u %u %u %u %u", h->src_port, h->dst_port, h->protocol,
		e->packet_len, e->egress, h->seq, h->ack, h->data_offset, h->flags, h->window,
		h->checksum, h->urgent);
	fprintf(f, " %u %u", h->ext_count, h->ext_len);
	put_hex(f, h->ext_types, h->ext_count ? h->ext_types_n : 0);
	put_hex(f, h->l4_error ? decode_strerror(h->l4_error) : "",
		h->l4_error ? strlen(decode_strerror(h->l4_error)) : 0);
	write_raw_opts(f, h->l4_error ? &(struct tcp_opts){0} : &h->opts);
	fputc('\n', f);
}

/* Run the checker on these events; returns the number of lines Python validated. */
static long python_check(const struct pkt_event *ev, size_t n)
{
	char dir[] = "/tmp/pktrace-test-XXXXXX";
	char jpath[64], rpath[64], spath[64], cmd[256], out[64] = "";
	size_t len = 0, i, k;
	FILE *f, *p;
	int status;

	assert_non_null(mkdtemp(dir));
	snprintf(jpath, sizeof(jpath), "%s/out.json", dir);
	snprintf(rpath, sizeof(rpath), "%s/raw.txt", dir);
	snprintf(spath, sizeof(spath), "%s/check.py", dir);
	write_whole(spath, json_checker, sizeof(json_checker) - 1);
	f = fopen(rpath, "w");
	assert_non_null(f);
	for (i = 0; i < n; i++) {
		k = format_json(fmt_buf + len, sizeof(fmt_buf) - len, &ev[i]);
		assert_true(k > 0);
		len += k;
		write_raw(f, &ev[i]);
	}
	assert_int_equal(fclose(f), 0);
	write_whole(jpath, fmt_buf, len);

	snprintf(cmd, sizeof(cmd), "python3 %s %s %s", spath, jpath, rpath);
	p = popen(cmd, "r");
	assert_non_null(p);
	if (!fgets(out, sizeof(out), p))
		out[0] = '\0';
	status = pclose(p);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("python JSON check failed (status %d); files kept in %s", status, dir);
	unlink(jpath);
	unlink(rpath);
	unlink(spath);
	rmdir(dir);
	return strtol(out, NULL, 10);
}

static void test_json_parses_golden(void **state)
{
	struct pkt_event ev[GOLDEN_N];
	size_t n = golden_events(ev, ARRAY_SIZE(ev));

	(void)state;
	assert_int_equal(python_check(ev, n), (long)n);
}

/* Byte strings that trip up UTF-8 handling; each becomes a hostname, a comm and an iface. */
static const char *const nasty[] = {
	"",
	"\xc0\xaf",                 /* overlong '/' */
	"\xe0\x80\xaf",             /* overlong, 3 bytes */
	"\xed\xa0\x80",             /* UTF-16 surrogate */
	"\xf4\x90\x80\x80",         /* past U+10FFFF */
	"\xf5\x80\x80\x80",         /* invalid lead byte */
	"ab\xe2\x82",               /* truncated at the end */
	"\xe2\x82\x41",             /* truncated before ASCII */
	"\x80\xbf",                 /* lone continuation bytes */
	"\xf0\x9f\x98\x80",         /* valid U+1F600 */
	"\xef\xbb\xbf\xe2\x80\xa8", /* BOM, U+2028 */
	"\x7f\x1b[31m\t\r\x01\x1f", /* DEL and C0 controls */
	"\"\\/\"\\\\",              /* quotes and backslashes */
	"\xc2\x80\xc2\x9f\xc3\xbf", /* C1 controls, U+00FF */
	"\xe2\x80\xae\xe2\x81\xa6\xd8\x9c", /* RLO, LRI, ALM: bidi controls */
	"\xe2\x80\x8b\xe2\x81\xa0\xc2\xad", /* zero-width space, word joiner, soft hyphen */
	"\xf3\xa0\x80\x81\xf3\xa0\x81\xbf", /* tags U+E0001, U+E007F */
};

static void fill_random(char *s, size_t n, unsigned int *seed)
{
	size_t i;

	for (i = 0; i < n; i++) {
		int r = rand_r(seed);

		/* Mostly high bytes and controls, where the bugs are; NUL ends the string early. */
		s[i] = (char)(r % 4 == 0 ? 0x20 + r / 4 % 0x60 : r / 4 % 256);
	}
}

static void check_caps(size_t (*fmt)(char *, size_t, const struct pkt_event *),
		       const struct pkt_event *e);

enum { FUZZ_N = 3000 };
static struct pkt_event fuzz_ev[FUZZ_N];
static char fuzz_hosts[FUZZ_N][80], fuzz_conts[FUZZ_N][80];

/* The golden events, then hostile strings and random bytes in every field; fixed seed. */
static struct pkt_event *fuzz_events(void)
{
	struct pkt_event *ev = fuzz_ev;
	char(*hosts)[80] = fuzz_hosts, (*conts)[80] = fuzz_conts;
	unsigned int seed = 12345;
	size_t i;

	golden_events(ev, GOLDEN_N);
	for (i = GOLDEN_N; i < FUZZ_N; i++) {
		struct pkt_event *e = &ev[i];
		size_t k = i % ARRAY_SIZE(nasty), nn = ARRAY_SIZE(nasty);

		memset(e, 0, sizeof(*e));
		e->timestamp_ns = ((uint64_t)rand_r(&seed) << 33) ^ (uint64_t)rand_r(&seed);
		e->proc.pid = (uint32_t)rand_r(&seed);
		e->proc.tid = (uint32_t)rand_r(&seed) * 2u;
		e->proc.ppid = (uint32_t)rand_r(&seed);
		e->proc.uid = (uint32_t)rand_r(&seed) * 3u;
		e->proc.cgroup_id = ((uint64_t)rand_r(&seed) << 40) ^ (uint64_t)rand_r(&seed);
		if (i % 2) {
			fill_random(e->proc.comm, sizeof(e->proc.comm), &seed);
			fill_random(e->ifname, sizeof(e->ifname), &seed);
			fill_random(hosts[i], sizeof(hosts[i]) - 1, &seed);
			fill_random(conts[i], sizeof(conts[i]) - 1, &seed);
		} else {
			/* comm and ifname may fill all 17 bytes: no NUL then. */
			strncpy(e->proc.comm, nasty[k], sizeof(e->proc.comm));
			strncpy(e->ifname, nasty[(k + 3) % nn], sizeof(e->ifname));
			snprintf(hosts[i], sizeof(hosts[i]), "%s%s", nasty[(k + 5) % nn], nasty[k]);
			snprintf(conts[i], sizeof(conts[i]), "%s", nasty[(k + 7) % nn]);
		}
		e->proc.hostname = hosts[i];
		e->proc.container_id = conts[i];
		e->egress = rand_r(&seed) & 1;
		e->packet_len = (uint32_t)rand_r(&seed);
		e->hdr.family = rand_r(&seed) & 1 ? AF_INET : AF_INET6;
		fill_random((char *)e->hdr.src_addr, 16, &seed);
		fill_random((char *)e->hdr.dst_addr, 16, &seed);
		if (i % 5 == 0)
			memset(e->hdr.src_addr, 0, 12);
		e->hdr.protocol = 6;
		e->hdr.src_port = (uint16_t)rand_r(&seed);
		e->hdr.dst_port = (uint16_t)rand_r(&seed);
		e->hdr.seq = (uint32_t)rand_r(&seed) * 2u;
		e->hdr.ack = (uint32_t)rand_r(&seed) * 2u;
		e->hdr.data_offset = (uint8_t)(rand_r(&seed) % 16);
		e->hdr.flags = (uint16_t)(rand_r(&seed) & 0x1ff);
		e->hdr.window = (uint16_t)rand_r(&seed);
		e->hdr.checksum = (uint16_t)rand_r(&seed);
		e->hdr.urgent = (uint16_t)rand_r(&seed);
		/* Options decoded from random bytes: any mix, malformed ones included. */
		if (i % 3 == 0) {
			uint8_t ob[40];
			size_t j, on = 4 * (size_t)(rand_r(&seed) % 11);

			for (j = 0; j < on; j++)
				ob[j] = (uint8_t)(rand_r(&seed) % 4 ? rand_r(&seed) % 40
								    : rand_r(&seed));
			set_opts(&e->hdr, ob, on);
		}
		/* Some behind an IPv6 chain, some without a TCP header, as the decoder gives them. */
		if (i % 7 == 0) {
			e->hdr.ext_count = (uint8_t)(1 + rand_r(&seed) % 255);
			e->hdr.ext_len = (uint32_t)rand_r(&seed) >> (rand_r(&seed) % 32);
			e->hdr.ext_types_n = (uint8_t)(e->hdr.ext_count < EVENT_EXT_TYPES
							       ? e->hdr.ext_count
							       : EVENT_EXT_TYPES);
			fill_random((char *)e->hdr.ext_types, EVENT_EXT_TYPES, &seed);
		}
		if (i % 11 == 0) {
			static const uint8_t why[] = {DECODE_TRUNCATED_L4, DECODE_FRAGMENT,
						      DECODE_TRUNCATED_TCP, DECODE_BAD_DATA_OFFSET,
						      DECODE_NO_L4, DECODE_TRUNCATED_IP};

			e->hdr.l4_error = why[rand_r(&seed) % sizeof(why)];
			e->hdr.protocol = (uint8_t)rand_r(&seed);
			e->hdr.src_port = e->hdr.dst_port = 0;
			e->hdr.seq = e->hdr.ack = e->hdr.window = e->hdr.checksum = e->hdr.urgent = 0;
			e->hdr.flags = e->hdr.data_offset = 0;
			memset(&e->hdr.opts, 0, sizeof(e->hdr.opts));
		}
	}
	return ev;
}

static void test_json_parses_fuzz(void **state)
{
	(void)state;
	assert_int_equal(python_check(fuzz_events(), FUZZ_N), FUZZ_N);
}

/* Table lines are for terminals: no control bytes (C0, DEL, C1) and valid UTF-8 only. */
static void check_table_lines(const struct pkt_event *ev, size_t n)
{
	char path[128], cmd[512];
	size_t len = 0, i, k, j;
	const unsigned char *u;

	for (i = 0; i < n; i++) {
		k = format_table(fmt_buf + len, sizeof(fmt_buf) - len, &ev[i]);
		assert_true(k > 0);
		u = (const unsigned char *)fmt_buf + len;
		assert_int_equal(u[k - 1], '\n');
		for (j = 0; j + 1 < k; j++) {
			assert_true(u[j] >= 0x20 && u[j] != 0x7f);
			assert_false(u[j] == 0xc2 && u[j + 1] >= 0x80 && u[j + 1] <= 0x9f);
		}
		len += k;
	}
	snprintf(path, sizeof(path), "/tmp/pktrace-test-%d-fuzz.table", (int)getpid());
	write_whole(path, fmt_buf, len);
	/* Python's own table of category Cf: no format character may reach a terminal. */
	snprintf(cmd, sizeof(cmd), "python3 -c 'import sys, unicodedata as u; t = open(sys.argv[1], "
		 "\"rb\").read().decode(\"utf-8\"); sys.exit(any(u.category(c) in (\"Cf\", "
		 "\"Zl\", \"Zp\") for c in t))' %s",
		 path);
	assert_int_equal(system(cmd), 0);
	unlink(path);
}

static void test_table_fuzz(void **state)
{
	(void)state;
	check_table_lines(fuzz_events(), FUZZ_N);
}

/* UTF-8 of code point cp into b; returns its length. */
static size_t put_utf8(char *b, uint32_t cp)
{
	if (cp < 0x80) {
		b[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6);
		b[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		b[0] = (char)(0xe0 | cp >> 12);
		b[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	b[0] = (char)(0xf0 | cp >> 18);
	b[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	b[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	b[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * Bidi controls, zero-width and other format characters in comm: '?' in the table, \uXXXX (a
 * surrogate pair past the BMP) in JSON. Their neighbours that are not format characters pass.
 */
static void test_format_chars_replaced(void **state)
{
	static const uint32_t format[] = {
		0x200e, 0x200f, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068,
		0x2069, 0x061c, 0x200b, 0x200c, 0x200d, 0x2060, 0xfeff, 0x00ad, 0x0600, 0x06dd,
		0x070f, 0x180e, 0x2061, 0x2064, 0x206a, 0x206f, 0xfff9, 0xfffb, 0x2028, 0x2029,
		0x110bd, 0x13430, 0x1bca0, 0x1d173, 0x1d17a, 0xe0001, 0xe0020, 0xe007f,
	};
	static const uint32_t plain[] = {
		0x00e9, 0x00ac, 0x00ae, 0x200a, 0x2010, 0x2027, 0x202f, 0x2065, 0x2070, 0xfefe,
		0xfff8, 0xfffc, 0x1f600, 0x1d172, 0x1d17b, 0xe0002, 0xe0080,
	};
	struct pkt_event ev[GOLDEN_N];
	char line[2048], want[64], ch[4];
	size_t i, k, n;
	uint32_t cp;

	(void)state;
	golden_events(ev, ARRAY_SIZE(ev));
	for (i = 0; i < ARRAY_SIZE(format) + ARRAY_SIZE(plain); i++) {
		bool is_fmt = i < ARRAY_SIZE(format);

		cp = is_fmt ? format[i] : plain[i - ARRAY_SIZE(format)];
		n = put_utf8(ch, cp);
		memset(ev[0].proc.comm, 0, sizeof(ev[0].proc.comm));
		snprintf(ev[0].proc.comm, sizeof(ev[0].proc.comm), "a%.*sb", (int)n, ch);

		k = format_table(line, sizeof(line) - 1, &ev[0]);
		assert_true(k > 0);
		line[k] = '\0';
		if (is_fmt)
			snprintf(want, sizeof(want), " a?b ");
		else
			snprintf(want, sizeof(want), " a%.*sb ", (int)n, ch);
		if (!strstr(line, want))
			fail_msg("U+%04X: table line %s lacks '%s'", cp, line, want);
		if (is_fmt)
			assert_null(memmem(line, k, ch, n));

		k = format_json(line, sizeof(line) - 1, &ev[0]);
		assert_true(k > 0);
		line[k] = '\0';
		if (!is_fmt)
			snprintf(want, sizeof(want), "\"processName\":\"a%.*sb\"", (int)n, ch);
		else if (cp < 0x10000)
			snprintf(want, sizeof(want), "\"processName\":\"a\\u%04xb\"", cp);
		else
			snprintf(want, sizeof(want), "\"processName\":\"a\\u%04x\\u%04xb\"",
				 0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + ((cp - 0x10000) & 0x3ff));
		if (!strstr(line, want))
			fail_msg("U+%04X: JSON line %s lacks '%s'", cp, line, want);
	}
	/* And the JSON still parses to the original characters (python_check decodes them). */
	assert_int_equal(python_check(ev, GOLDEN_N), GOLDEN_N);
}

static void check_addrs(const struct pkt_event *e)
{
	char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN], want[160], line[4096];
	size_t k;

	assert_non_null(inet_ntop(e->hdr.family, e->hdr.src_addr, a, sizeof(a)));
	assert_non_null(inet_ntop(e->hdr.family, e->hdr.dst_addr, b, sizeof(b)));
	k = format_json(line, sizeof(line) - 1, e);
	assert_true(k > 0);
	line[k] = '\0';
	snprintf(want, sizeof(want), "\"src_ip\":\"%s\",\"dst_ip\":\"%s\",", a, b);
	if (!strstr(line, want))
		fail_msg("%s not in %s", want, line);
	k = format_table(line, sizeof(line) - 1, e);
	assert_true(k > 0);
	line[k] = '\0';
	if (e->hdr.l4_error)
		snprintf(want, sizeof(want), " %s ", a); /* no port without a TCP header */
	else if (e->hdr.family == AF_INET)
		snprintf(want, sizeof(want), " %s.%u ", a, e->hdr.src_port);
	else
		snprintf(want, sizeof(want), " [%s]:%u ", a, e->hdr.src_port);
	if (!strstr(line, want))
		fail_msg("%s not in %s", want, line);
}

/* Addresses print exactly as inet_ntop prints them, in both formats. */
static void test_addresses_match_inet_ntop(void **state)
{
	struct pkt_event *ev = fuzz_events();
	struct pkt_event e = ev[0];
	size_t i;
	int v;

	(void)state;
	for (i = 0; i < FUZZ_N; i++)
		check_addrs(&ev[i]);
	for (v = 0; v < 256; v++) {
		e.hdr.family = AF_INET;
		memset(e.hdr.src_addr, v, 4);
		e.hdr.src_addr[1] = (uint8_t)(255 - v);
		memset(e.hdr.dst_addr, 255 - v, 4);
		check_addrs(&e);
	}
}

/* Bounds hold for the hostile lines too, JSON ones being the longest. */
static void test_cap_too_small_fuzz(void **state)
{
	struct pkt_event *ev = fuzz_events();
	size_t i;

	(void)state;
	for (i = GOLDEN_N; i < FUZZ_N; i += 97) {
		check_caps(format_json, &ev[i]);
		check_caps(format_table, &ev[i]);
	}
}

/* Every cap short of the line's length returns 0 and leaves the bytes past cap alone. */
static void check_caps(size_t (*fmt)(char *, size_t, const struct pkt_event *),
		       const struct pkt_event *e)
{
	char full[4096], buf[4096 + 16];
	size_t need = fmt(full, sizeof(full), e), cap, i;

	assert_true(need > 0 && need < sizeof(full));
	for (cap = 0; cap <= need; cap++) {
		memset(buf, 0xa5, sizeof(buf));
		if (cap < need) {
			assert_int_equal(fmt(buf, cap, e), 0);
		} else {
			assert_int_equal(fmt(buf, cap, e), need);
			assert_memory_equal(buf, full, need);
		}
		for (i = cap; i < sizeof(buf); i++)
			assert_int_equal((unsigned char)buf[i], 0xa5);
	}
}

static void test_cap_too_small(void **state)
{
	struct pkt_event ev[GOLDEN_N];
	size_t n = golden_events(ev, ARRAY_SIZE(ev)), i, cap, need;
	char full[256], buf[256];

	(void)state;
	for (i = 0; i < n; i++) {
		check_caps(format_json, &ev[i]);
		check_caps(format_table, &ev[i]);
	}
	need = format_table_header(full, sizeof(full));
	assert_true(need > 0);
	for (cap = 0; cap < need; cap++) {
		memset(buf, 0xa5, sizeof(buf));
		assert_int_equal(format_table_header(buf, cap), 0);
		for (i = cap; i < sizeof(buf); i++)
			assert_int_equal((unsigned char)buf[i], 0xa5);
	}
	assert_int_equal(format_table_header(buf, need), need);
}

/* Every field at its longest: nothing is cut, and the line keeps its shape. */
static void test_table_longest_line(void **state)
{
	struct pkt_event ev[GOLDEN_N];
	struct pkt_event *e = &ev[5];
	char line[1024];
	size_t k;

	(void)state;
	golden_events(ev, ARRAY_SIZE(ev));
	memset(e->proc.comm, 'c', sizeof(e->proc.comm));
	e->proc.pid = 4294967295u;
	e->hdr.flags = ALL_FLAGS;
	set_addr(&e->hdr, AF_INET6, "1111:2222:3333:4444:5555:6666:7777:8888",
		 "aaaa:bbbb:cccc:dddd:eeee:ffff:1234:5678");
	k = format_table(line, sizeof(line) - 1, e);
	assert_true(k > 0);
	line[k] = '\0';
	assert_string_equal(line, "05:04:33.709551 ccccccccccccccccc 4294967295 in "
				  "[1111:2222:3333:4444:5555:6666:7777:8888]:65535 "
				  "[aaaa:bbbb:cccc:dddd:eeee:ffff:1234:5678]:65535 [FSRP.UEWN] "
				  "4294967295 4294967295 65535 4294967295\n");
}

/* A golden event with every field at its longest and forty bytes of options: one option (its
 * kind, length and data: len bytes) over and over (kept raw: unknown kinds, printed as tcpdump
 * walks them). */
static struct pkt_event *longest_options_event(struct pkt_event ev[GOLDEN_N], const uint8_t *one,
					       size_t len)
{
	struct pkt_event *e = &ev[5];
	uint8_t opt[40];
	size_t i;

	golden_events(ev, GOLDEN_N);
	memset(e->proc.comm, 'c', sizeof(e->proc.comm));
	e->proc.pid = 4294967295u;
	e->hdr.flags = ALL_FLAGS;
	set_addr(&e->hdr, AF_INET6, "1111:2222:3333:4444:5555:6666:7777:8888",
		 "aaaa:bbbb:cccc:dddd:eeee:ffff:1234:5678");
	e->hdr.ext_count = 255;
	e->hdr.ext_len = 4294967295u;
	for (i = 0; i < 40; i++)
		opt[i] = one[i % len];
	set_opts(&e->hdr, opt, sizeof(opt));
	assert_int_equal(e->hdr.opts.unknown_n, 40 / len);
	assert_int_equal(e->hdr.opts.raw_len, 40);
	return e;
}

/* The longest options: twenty unknown kinds of 255 (6 columns per byte). */
static void test_table_longest_options(void **state)
{
	struct pkt_event ev[GOLDEN_N];
	static const uint8_t unknown[] = { 255, 2 };
	struct pkt_event *e = longest_options_event(ev, unknown, sizeof(unknown));
	char line[1024], want[512];
	size_t k, i, w;

	(void)state;
	k = format_table(line, sizeof(line) - 1, e);
	assert_true(k > 0);
	line[k] = '\0';
	w = (size_t)snprintf(want, sizeof(want), " ext:255+/4294967295B options [");
	for (i = 0; i < 20; i++)
		w += (size_t)snprintf(want + w, sizeof(want) - w, "%sunknown-255", i ? "," : "");
	snprintf(want + w, sizeof(want) - w, "]\n");
	assert_true(k > strlen(want));
	assert_string_equal(line + k - strlen(want), want);
	/* Within the 390 bytes the comment at TABLE_LINE_MAX allows for options (newline apart). */
	assert_int_equal(strlen(want) - strlen(" ext:255+/4294967295B") - 1, 250);
}

/* The widest option texts tcpdump has, each over forty bytes after every other field at its
 * longest: twenty empty TCP-AO options ("tcp-ao (invalid)", 8.5 columns per
 * option byte) and ten MP_CAPABLE ones of an unknown version on a SYN ("mptcp 4 capable Unknown
 * Version (15)", 9.25): the table's whole line within TABLE_LINE_MAX (768), the options within
 * the 390 bytes its comment counts, and the text's line within TEXT_LINE_MAX (1024). */
static void test_longest_options_named(void **state)
{
	static const uint8_t ao[] = { 29, 2 }, mptcp[] = { 30, 4, 0x0f, 0 };
	static const struct {
		const uint8_t *opt;
		size_t len;
		const char *text;
		size_t want_len;
	} c[] = {
		{ ao, sizeof(ao), "tcp-ao (invalid)", 350 },
		{ mptcp, sizeof(mptcp), "mptcp 4 capable Unknown Version (15)", 380 },
	};
	struct pkt_event ev[GOLDEN_N];
	char line[2048], want[512];
	size_t j, k, i, w;

	(void)state;
	for (j = 0; j < ARRAY_SIZE(c); j++) {
		struct pkt_event *e = longest_options_event(ev, c[j].opt, c[j].len);

		w = (size_t)snprintf(want, sizeof(want), " options [");
		for (i = 0; i < 40 / c[j].len; i++)
			w += (size_t)snprintf(want + w, sizeof(want) - w, "%s%s", i ? "," : "",
					      c[j].text);
		snprintf(want + w, sizeof(want) - w, "]\n");
		assert_int_equal(strlen(want) - 1, c[j].want_len);
		k = format_table(line, sizeof(line) - 1, e);
		assert_true(k > strlen(want) && k < 768);
		line[k] = '\0';
		assert_string_equal(line + k - strlen(want), want);
		k = format_text(line, sizeof(line) - 1, e);
		assert_true(k > 0 && k < 1024);
		line[k] = '\0';
		want[strlen(want) - 1] = '\0'; /* the text goes on */
		assert_non_null(strstr(line, want));
	}
}

/* A long IPv6 address widens its column and is printed whole. */
static void test_table_never_truncates(void **state)
{
	struct pkt_event ev[GOLDEN_N];
	char line[512];
	size_t k;

	(void)state;
	golden_events(ev, ARRAY_SIZE(ev));
	set_addr(&ev[1].hdr, AF_INET6, "1234:5678:9abc:def0:1234:5678:9abc:def0",
		 "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe");
	k = format_table(line, sizeof(line) - 1, &ev[1]);
	assert_true(k > 0);
	line[k] = '\0';
	assert_non_null(strstr(line, " [1234:5678:9abc:def0:1234:5678:9abc:def0]:443 "
				     "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe]:51234 [S.] "));
}

static struct output out_obj;

static char *tmp_path(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "/tmp/pktrace-test-%d-%s", (int)getpid(), name);
	return buf;
}

/* The writer on an fd the test made (a pipe end): output_open never follows a /proc link. */
static void open_on_fd(struct output *o, int fd, enum output_format fmt)
{
	assert_int_equal(output_open(o, NULL, fmt), 0);
	o->fd = fd;
	o->owns_fd = 1;
}

static off_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* Events reach the file only in big writes and all of them arrive, in order, byte for byte. */
static void check_roundtrip(enum output_format fmt)
{
	struct output *o = &out_obj;
	struct pkt_event ev[GOLDEN_N];
	size_t n = golden_events(ev, ARRAY_SIZE(ev)), len = 0, k, i, flushes = 0, flen;
	char path[128];
	char *got;

	tmp_path(path, sizeof(path), fmt == OUTPUT_JSON ? "rt.json" : "rt.table");
	assert_int_equal(output_open(o, path, fmt), 0);
	assert_int_equal(o->owns_fd, 1);
	if (fmt == OUTPUT_TABLE) {
		len = format_table_header(fmt_buf, sizeof(fmt_buf));
		assert_true(len > 0);
	}
	for (i = 0; len < 5 * OUTPUT_BUF_SIZE / 2; i++) {
		const struct pkt_event *e = &ev[i % n];
		size_t before = o->len;

		k = fmt == OUTPUT_JSON ? format_json(fmt_buf + len, sizeof(fmt_buf) - len, e)
				       : format_table(fmt_buf + len, sizeof(fmt_buf) - len, e);
		assert_true(k > 0);
		len += k;
		assert_int_equal(output_event(o, e), 0);
		if (o->len < before) {
			flushes++;
			/* A flush happens only with less than 4 KiB of room left. */
			assert_true(OUTPUT_BUF_SIZE - before < 4096);
		}
		/* What is in the file plus what is buffered is everything so far. */
		assert_int_equal((size_t)file_size(path) + o->len, len);
	}
	assert_int_equal(flushes, 2);
	assert_int_equal(output_close(o), 0);
	got = read_whole(path, &flen);
	assert_non_null(got);
	assert_int_equal(flen, len);
	assert_memory_equal(got, fmt_buf, len);
	free(got);
	unlink(path);
}

static void test_writer_json(void **state)
{
	(void)state;
	check_roundtrip(OUTPUT_JSON);
}

static void test_writer_table(void **state)
{
	(void)state;
	check_roundtrip(OUTPUT_TABLE);
}

/* The table header is written once, before the first event, and not at all without events. */
static void test_writer_header_once(void **state)
{
	struct output *o = &out_obj;
	struct pkt_event ev[GOLDEN_N];
	char path[128], hdr[256];
	size_t hlen = format_table_header(hdr, sizeof(hdr)), flen;
	char *got;

	(void)state;
	golden_events(ev, ARRAY_SIZE(ev));
	tmp_path(path, sizeof(path), "hdr.table");
	assert_int_equal(output_open(o, path, OUTPUT_TABLE), 0);
	assert_int_equal(output_close(o), 0);
	assert_int_equal(file_size(path), 0);

	assert_int_equal(output_open(o, path, OUTPUT_TABLE), 0);
	assert_int_equal(output_event(o, &ev[0]), 0);
	assert_int_equal(output_flush(o), 0);
	assert_int_equal(output_event(o, &ev[1]), 0);
	assert_int_equal(output_close(o), 0);
	got = read_whole(path, &flen);
	assert_non_null(got);
	assert_true(flen > hlen);
	assert_memory_equal(got, hdr, hlen);
	assert_null(strstr(got + hlen, "COMM"));
	free(got);
	unlink(path);
}

static void test_flush_epipe(void **state)
{
	struct output *o = &out_obj;
	struct pkt_event ev[GOLDEN_N];
	int p[2];
	size_t len;

	(void)state;
	golden_events(ev, ARRAY_SIZE(ev));
	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(pipe(p), 0);
	open_on_fd(o, p[1], OUTPUT_JSON);
	close(p[0]);
	assert_int_equal(output_event(o, &ev[0]), 0);
	len = o->len;
	assert_int_equal(output_flush(o), -EPIPE);
	assert_int_equal(o->err, EPIPE);
	/* Nothing went out, so nothing is dropped from the count of bytes owed. */
	assert_int_equal(o->len, len);
	/* The error is sticky. */
	assert_int_equal(output_event(o, &ev[1]), -EPIPE);
	assert_int_equal(output_flush(o), -EPIPE);
	assert_int_equal(output_close(o), -EPIPE);
}

static void test_flush_enospc(void **state)
{
	struct output *o = &out_obj;
	struct pkt_event ev[GOLDEN_N];

	(void)state;
	golden_events(ev, ARRAY_SIZE(ev));
	assert_int_equal(output_open(o, "/dev/full", OUTPUT_TABLE), 0);
	assert_int_equal(output_event(o, &ev[0]), 0);
	assert_int_equal(output_flush(o), -ENOSPC);
	assert_int_equal(o->err, ENOSPC);
	/* Nothing reached the file, so nothing counts as written: the summary reports it lost. */
	assert_int_equal(o->events_written, 0);
	assert_int_equal(o->events_pending, 1);
	assert_int_equal(output_close(o), -ENOSPC);
}

/* events_written counts only events whose bytes reached the file. */
static void test_events_written_counted(void **state)
{
	struct pkt_event ev[GOLDEN_N];
	struct output *o = &out_obj;
	char path[128];

	(void)state;
	golden_events(ev, ARRAY_SIZE(ev));
	tmp_path(path, sizeof(path), "count");
	assert_int_equal(output_open(o, path, OUTPUT_JSON), 0);
	assert_int_equal(output_event(o, &ev[0]), 0);
	assert_int_equal(output_event(o, &ev[1]), 0);
	assert_int_equal(o->events_written, 0);
	assert_int_equal(output_flush(o), 0);
	assert_int_equal(o->events_written, 2);
	assert_int_equal(output_event(o, &ev[2]), 0);
	assert_int_equal(output_close(o), 0);
	assert_int_equal(o->events_written, 3);
	unlink(path);
}

/* A write that gets part way, then fails: the unwritten tail is kept and counted, not lost. */
static void test_flush_partial_then_error(void **state)
{
	struct output *o = &out_obj;
	struct rlimit old, lim;
	char path[128];
	char *got;
	size_t flen, i;

	(void)state;
	/* A file size limit makes write() stop at the limit, then fail with EFBIG. */
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	tmp_path(path, sizeof(path), "fsize");
	assert_int_equal(output_open(o, path, OUTPUT_JSON), 0);
	for (i = 0; i < 5000; i++)
		o->buf[i] = (char)('a' + i % 26);
	o->len = 5000;
	lim = old;
	lim.rlim_cur = 1000;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(output_flush(o), -EFBIG);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(o->err, EFBIG);
	assert_int_equal(o->len, 4000);
	for (i = 0; i < 4000; i++)
		assert_int_equal(o->buf[i], (char)('a' + (i + 1000) % 26));
	assert_int_equal(output_close(o), -EFBIG);
	got = read_whole(path, &flen);
	assert_non_null(got);
	assert_int_equal(flen, 1000);
	free(got);
	unlink(path);
}

static void test_open_errors(void **state)
{
	struct output *o = &out_obj;
	char path[128];
	int fd;

	(void)state;
	assert_int_equal(output_open(o, "/nonexistent-pktrace-dir/out.json", OUTPUT_JSON),
			 -ENOENT);
	assert_int_equal(output_open(o, "/", OUTPUT_JSON), -EISDIR);
	/* Root ignores file modes, so EACCES is only observable as another user. */
	if (geteuid() != 0) {
		tmp_path(path, sizeof(path), "ro");
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0444);
		assert_true(fd >= 0);
		close(fd);
		assert_int_equal(output_open(o, path, OUTPUT_JSON), -EACCES);
		unlink(path);
	}
}

static void test_open_stdout(void **state)
{
	struct output *o = &out_obj;

	(void)state;
	assert_int_equal(output_open(o, NULL, OUTPUT_JSON), 0);
	assert_int_equal(o->fd, STDOUT_FILENO);
	assert_int_equal(o->owns_fd, 0);
	assert_int_equal(output_close(o), 0);
	assert_int_equal(output_open(o, "-", OUTPUT_TABLE), 0);
	assert_int_equal(o->fd, STDOUT_FILENO);
	assert_int_equal(o->owns_fd, 0);
	assert_int_equal(output_close(o), 0);
	/* stdout is not ours to close. */
	assert_true(fcntl(STDOUT_FILENO, F_GETFD) >= 0);
}

struct reader {
	int fd;
	size_t skip; /* bytes put in the pipe before the flush */
	char *buf;
	size_t len;
	size_t cap;
};

/* Starts late, so the writer first blocks on a full pipe, then reads in small slow steps. */
static void *reader_main(void *arg)
{
	struct reader *r = arg;
	char junk[4096];
	size_t want;
	ssize_t n;

	usleep(30000);
	while (r->skip) {
		n = read(r->fd, junk, r->skip < sizeof(junk) ? r->skip : sizeof(junk));
		if (n <= 0)
			return NULL;
		r->skip -= (size_t)n;
	}
	for (;;) {
		want = r->cap - r->len < 3000 ? r->cap - r->len : 3000;
		n = read(r->fd, r->buf + r->len, want);
		if (n <= 0)
			break;
		r->len += (size_t)n;
		usleep(20);
	}
	return NULL;
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

static void fill_pattern(struct output *o)
{
	size_t i;

	for (i = 0; i < OUTPUT_BUF_SIZE; i++)
		o->buf[i] = (char)(i * 7 + i / 251);
	o->len = OUTPUT_BUF_SIZE;
}

/* Fill the pipe so the flush's first write cannot make progress; return the bytes put in. */
static size_t fill_pipe(int fd)
{
	char junk[4096];
	size_t total = 0;
	ssize_t n;
	int fl = fcntl(fd, F_GETFL);

	memset(junk, 'j', sizeof(junk));
	assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
	for (;;) {
		n = write(fd, junk, sizeof(junk));
		if (n < 0) {
			assert_int_equal(errno, EAGAIN);
			break;
		}
		total += (size_t)n;
	}
	assert_int_equal(fcntl(fd, F_SETFL, fl), 0);
	return total;
}

/*
 * Flush a full buffer into a full pipe whose reader starts late. With the timer (no
 * SA_RESTART) the first write() fails with EINTR and later ones return short counts; with
 * O_NONBLOCK the first write() fails with EAGAIN. Either way every byte must arrive in order.
 */
static void pipe_flush(bool nonblock, bool interrupt)
{
	struct output *o = &out_obj;
	struct reader r = {.cap = OUTPUT_BUF_SIZE + 1};
	struct itimerval it = {.it_interval = {0, 2000}, .it_value = {0, 5000}};
	struct itimerval off = {{0, 0}, {0, 0}};
	struct sigaction sa = {.sa_handler = on_alarm};
	sigset_t set, old;
	pthread_t tid;
	int p[2];

	r.buf = malloc(r.cap);
	assert_non_null(r.buf);
	assert_int_equal(pipe(p), 0);
	r.fd = p[0];
	open_on_fd(o, p[1], OUTPUT_JSON);
	r.skip = fill_pipe(p[1]);
	if (nonblock)
		assert_int_equal(fcntl(o->fd, F_SETFL, O_NONBLOCK), 0);
	fill_pattern(o);

	/* The timer must interrupt the writer, so the reader thread blocks SIGALRM. */
	sigemptyset(&set);
	sigaddset(&set, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	assert_int_equal(pthread_create(&tid, NULL, reader_main, &r), 0);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (interrupt) {
		sigemptyset(&sa.sa_mask);
		assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
		alarms = 0;
		assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
	}
	assert_int_equal(output_flush(o), 0);
	if (interrupt) {
		setitimer(ITIMER_REAL, &off, NULL);
		signal(SIGALRM, SIG_DFL);
		assert_true(alarms > 0);
	}
	assert_int_equal(o->len, 0);
	assert_int_equal(output_close(o), 0);
	assert_int_equal(pthread_join(tid, NULL), 0);
	close(p[0]);
	fill_pattern(o);
	assert_int_equal(r.len, OUTPUT_BUF_SIZE);
	assert_memory_equal(r.buf, o->buf, OUTPUT_BUF_SIZE);
	free(r.buf);
}

/* A failed assertion longjmps out of pipe_flush: do not leave the timer to hit later tests. */
static int stop_timer(void **state)
{
	struct itimerval off = {{0, 0}, {0, 0}};

	(void)state;
	setitimer(ITIMER_REAL, &off, NULL);
	signal(SIGALRM, SIG_DFL);
	return 0;
}

static void test_flush_interrupted(void **state)
{
	(void)state;
	pipe_flush(false, true);
}

static void test_flush_nonblocking(void **state)
{
	(void)state;
	pipe_flush(true, false);
}

/* A flush cut short counts as written exactly the events whose whole line got out. */
static void test_partial_flush_counts_whole_lines(void **state)
{
	struct output *o = &out_obj;
	struct pkt_event ev[GOLDEN_N];
	struct rlimit old, lim;
	char path[128];
	char *got;
	size_t flen, i, lines = 0;
	int fmt;

	(void)state;
	golden_events(ev, ARRAY_SIZE(ev));
	for (fmt = OUTPUT_TABLE; fmt <= OUTPUT_JSON; fmt++) {
		signal(SIGXFSZ, SIG_IGN);
		assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
		tmp_path(path, sizeof(path), "lines");
		assert_int_equal(output_open(o, path, (enum output_format)fmt), 0);
		for (i = 0; i < 40; i++)
			assert_int_equal(output_event(o, &ev[i % ARRAY_SIZE(ev)]), 0);
		lim = old;
		lim.rlim_cur = o->len / 2 + 7; /* mid-line */
		assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
		assert_int_equal(output_flush(o), -EFBIG);
		assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
		signal(SIGXFSZ, SIG_DFL);
		got = read_whole(path, &flen);
		assert_non_null(got);
		for (lines = 0, i = 0; i < flen; i++)
			lines += got[i] == '\n';
		if (fmt == OUTPUT_TABLE)
			lines--; /* the header */
		assert_true(lines > 0 && lines < 40);
		assert_int_equal(o->events_written, lines);
		assert_int_equal(o->events_pending, 40 - lines);
		assert_int_equal(output_close(o), -EFBIG);
		free(got);
		unlink(path);
	}
}

/* A symbolic link where the file should be is never followed; its target stays as it was. */
static void test_open_no_follow(void **state)
{
	struct output *o = &out_obj;
	char target[128], link[128], buf[16] = {};
	int fd;

	(void)state;
	tmp_path(target, sizeof(target), "target");
	tmp_path(link, sizeof(link), "link");
	fd = open(target, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "precious", 8), 8);
	close(fd);
	unlink(link);
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(output_open(o, link, OUTPUT_JSON), -ELOOP);
	assert_int_equal(o->fd, -1);
	assert_int_equal(file_size(target), 8);
	fd = open(target, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), 8);
	close(fd);
	assert_string_equal(buf, "precious");
	/* A dangling link is not followed into creating its target either. */
	unlink(target);
	assert_int_equal(output_open(o, link, OUTPUT_JSON), -ELOOP);
	assert_int_equal(access(target, F_OK), -1);
	unlink(link);
}

/* New files are 0600 (whatever the umask lets through); an existing file is truncated. */
static void test_open_mode(void **state)
{
	struct output *o = &out_obj;
	struct stat st;
	char path[128];
	mode_t old = umask(0);
	int fd;

	(void)state;
	tmp_path(path, sizeof(path), "mode");
	unlink(path);
	assert_int_equal(output_open(o, path, OUTPUT_JSON), 0);
	umask(old);
	assert_int_equal(output_close(o), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "old", 3), 3);
	close(fd);
	assert_int_equal(output_open(o, path, OUTPUT_JSON), 0);
	assert_int_equal(output_close(o), 0);
	assert_int_equal(file_size(path), 0);
	unlink(path);
}

/*
 * A stop asked for while the reader takes nothing: the flush gives up with ECANCELED about
 * OUTPUT_CANCEL_GRACE_NS after it first sees the cancel (a timer keeps interrupting write()),
 * keeps the bytes owed, and the error is sticky. Blocking and non-blocking fds alike.
 */
static void stalled_cancel(bool nonblock)
{
	struct output *o = &out_obj;
	struct itimerval it = {.it_interval = {0, 20000}, .it_value = {0, 20000}};
	struct itimerval off = {{0, 0}, {0, 0}};
	struct sigaction sa = {.sa_handler = on_alarm};
	static volatile sig_atomic_t cancel;
	struct timespec t0, t1;
	double took;
	int p[2];

	assert_int_equal(pipe(p), 0);
	open_on_fd(o, p[1], OUTPUT_JSON);
	fill_pipe(p[1]);
	if (nonblock)
		assert_int_equal(fcntl(o->fd, F_SETFL, O_NONBLOCK), 0);
	fill_pattern(o);
	cancel = 1;
	o->cancel = &cancel;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
	assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(output_flush(o), -ECANCELED);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	setitimer(ITIMER_REAL, &off, NULL);
	signal(SIGALRM, SIG_DFL);
	took = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(took >= OUTPUT_CANCEL_GRACE_NS / 1e9 - 0.001);
	assert_true(took < OUTPUT_CANCEL_GRACE_NS / 1e9 + 0.2);
	assert_int_equal(o->len, OUTPUT_BUF_SIZE);
	assert_int_equal(o->events_written, 0);
	assert_int_equal(output_flush(o), -ECANCELED);
	assert_int_equal(output_close(o), -ECANCELED);
	close(p[0]);
}

static void test_flush_cancel_blocking(void **state)
{
	(void)state;
	stalled_cancel(false);
}

static void test_flush_cancel_nonblocking(void **state)
{
	(void)state;
	stalled_cancel(true);
}

/* --- Flow events: the golden files flows.json and flows.table --- */

#define FLOW_GOLDEN_N 5

static void flow_event(struct pkt_event *e, bool end, bool outgoing, int family)
{
	memset(e, 0, sizeof(*e));
	e->event = end ? EVENT_NET_FLOW_TCP_END : EVENT_NET_FLOW_TCP_BEGIN;
	e->timestamp_ns = 1700000000123456789ULL;
	e->proc.pid = 4242;
	e->proc.tid = 4243;
	e->proc.ppid = 1;
	e->proc.uid = 1000;
	e->proc.cgroup_id = 77;
	strcpy(e->proc.comm, "curl");
	e->proc.hostname = "host";
	e->proc.container_id = "";
	e->flow.end = end;
	e->flow.outgoing = outgoing;
	e->flow.family = family;
	if (family == AF_INET) {
		inet_pton(AF_INET, "10.0.0.1", e->flow.src_addr);
		inet_pton(AF_INET, "93.184.216.34", e->flow.dst_addr);
	} else {
		inet_pton(AF_INET6, "2001:db8::1", e->flow.src_addr);
		inet_pton(AF_INET6, "fe80::2", e->flow.dst_addr);
	}
	e->flow.src_port = 40000;
	e->flow.dst_port = 443;
}

static size_t flow_golden_events(struct pkt_event *ev)
{
	/* 0: an outgoing begin */
	flow_event(&ev[0], false, true, AF_INET);
	/* 1: its end, closed with FINs, local first: small numbers */
	flow_event(&ev[1], true, true, AF_INET);
	ev[1].flow.begin_seen = true;
	ev[1].flow.duration_ns = 850;
	ev[1].flow.bytes_sent = 100;
	ev[1].flow.bytes_received = 1023;
	ev[1].flow.segs_sent = 6;
	ev[1].flow.segs_received = 5;
	ev[1].flow.data_segs_sent = 1;
	ev[1].flow.data_segs_received = 1;
	ev[1].flow.srtt_us = 45;
	ev[1].flow.min_rtt_us = 30;
	ev[1].flow.close_reason = FLOW_CLOSE_FIN;
	ev[1].flow.closed_first = FLOW_CLOSER_LOCAL;
	/* 2: an incoming IPv6 begin */
	flow_event(&ev[2], false, false, AF_INET6);
	/* 3: an incoming end whose begin was not seen, reset by the peer, with retransmits */
	flow_event(&ev[3], true, false, AF_INET6);
	ev[3].flow.bytes_sent = 1536;
	ev[3].flow.bytes_received = 12u << 20;
	ev[3].flow.segs_sent = 9000;
	ev[3].flow.segs_received = 12000;
	ev[3].flow.retrans_segs = 12;
	ev[3].flow.retrans_bytes = 17376;
	ev[3].flow.srtt_us = 12345;
	ev[3].flow.min_rtt_us = 9000;
	ev[3].flow.delivered_ce = 4;
	ev[3].flow.close_reason = FLOW_CLOSE_RST_RECEIVED;
	/* 4: the largest values: long durations, terabytes, a timeout, the peer closed first */
	flow_event(&ev[4], true, true, AF_INET);
	ev[4].flow.begin_seen = true;
	ev[4].flow.duration_ns = UINT64_MAX;
	ev[4].flow.bytes_sent = UINT64_MAX;
	ev[4].flow.bytes_received = 5ULL << 40;
	ev[4].flow.segs_sent = UINT32_MAX;
	ev[4].flow.segs_received = UINT32_MAX;
	ev[4].flow.data_segs_sent = UINT32_MAX;
	ev[4].flow.data_segs_received = UINT32_MAX;
	ev[4].flow.retrans_segs = UINT32_MAX;
	ev[4].flow.retrans_bytes = UINT64_MAX;
	ev[4].flow.srtt_us = UINT32_MAX;
	ev[4].flow.min_rtt_us = UINT32_MAX;
	ev[4].flow.delivered_ce = UINT32_MAX;
	ev[4].flow.close_reason = FLOW_CLOSE_TIMEOUT;
	ev[4].flow.closed_first = FLOW_CLOSER_REMOTE;
	return FLOW_GOLDEN_N;
}

static void test_flow_golden(void **state)
{
	struct pkt_event ev[FLOW_GOLDEN_N];
	size_t n = flow_golden_events(ev);

	(void)state;
	check_golden("flows.json", fmt_buf, format_all_json(fmt_buf, sizeof(fmt_buf), ev, n));
	check_golden("flows.table", fmt_buf, format_all_table(fmt_buf, sizeof(fmt_buf), ev, n));
}

/* Each flow line is one line, fits a cap of its own length, and nothing at one byte less. */
static void test_flow_lines_bounded(void **state)
{
	struct pkt_event ev[FLOW_GOLDEN_N];
	char buf[4096], small[4096];
	size_t n = flow_golden_events(ev), i, len;

	(void)state;
	for (i = 0; i < n; i++) {
		size_t (*fmt[2])(char *, size_t, const struct pkt_event *) = { format_json,
									      format_table };

		for (int k = 0; k < 2; k++) {
			len = fmt[k](buf, sizeof(buf), &ev[i]);
			assert_true(len > 0 && (k == 0 || len < 768)); /* TABLE_LINE_MAX */
			assert_int_equal(buf[len - 1], '\n');
			assert_null(memchr(buf, '\n', len - 1));
			assert_int_equal(fmt[k](small, len, &ev[i]), len);
			assert_int_equal(fmt[k](small, len - 1, &ev[i]), 0);
		}
	}
}

/* --- The UDP, ICMP, ICMPv6, IPv4 and IPv6 events --- */

#define PROTO_GOLDEN_N 14

/* A packet event of kind id from family's addresses; the IP header fields as a kernel sends. */
static void proto_event(struct pkt_event *e, enum event_id id, int family, const char *src,
			const char *dst, uint8_t protocol)
{
	memset(e, 0, sizeof(*e));
	e->event = id;
	e->timestamp_ns = 1764145203000000000ull;
	e->proc = (struct pkt_process){.pid = 4242, .tid = 4243, .ppid = 4100, .uid = 1000,
				       .cgroup_id = 1234, .comm = "curl", .hostname = "web-1",
				       .container_id = ""};
	strcpy(e->ifname, "eth0");
	e->egress = true;
	e->sk_proto = protocol;
	set_addr(&e->hdr, family, src, dst);
	e->hdr.protocol = protocol;
	e->hdr.next_header = protocol;
	e->hdr.ip_version = family == AF_INET6 ? 6 : 4;
	e->hdr.ttl = 64;
	if (family == AF_INET) {
		e->hdr.ihl = 5;
		e->hdr.ip_flags = 2; /* DF */
	}
}

/* The IP header lengths of a packet of packet_len bytes. */
static void proto_len(struct pkt_event *e, uint32_t packet_len)
{
	e->packet_len = packet_len;
	e->hdr.ip_len = (uint16_t)(e->hdr.family == AF_INET6 ? packet_len - 40 : packet_len);
}

static size_t proto_golden_events(struct pkt_event *ev)
{
	struct pkt_event *e;
	size_t n = 0;

	/* 0: a DNS query over IPv4 (UDP), then 1: the same packet as an IPv4 event. */
	e = &ev[n++];
	proto_event(e, EVENT_NET_PACKET_UDP, AF_INET, "10.0.0.1", "8.8.8.8", IPPROTO_UDP);
	proto_len(e, 68);
	e->hdr.ip_id = 0xb1e6;
	e->hdr.ip_checksum = 0x1c46;
	e->hdr.src_port = 53124;
	e->hdr.dst_port = 53;
	e->hdr.udp_len = 48;
	e->hdr.checksum = 0xabcd;
	ev[n] = *e;
	ev[n++].event = EVENT_NET_PACKET_IPV4;

	/* 2: the answer over IPv6 behind a hop-by-hop header, ingress, with a flow label and
	 * traffic class; then 3: its IPv6 event, whose next header is the hop-by-hop one. */
	e = &ev[n++];
	proto_event(e, EVENT_NET_PACKET_UDP, AF_INET6, "2001:4860:4860::8888", "2001:db8::1",
		    IPPROTO_UDP);
	e->egress = false;
	proto_len(e, 40 + 8 + 8 + 1232);
	e->hdr.tos = 0xb8;
	e->hdr.flow_label = 0xfedcb;
	e->hdr.ttl = 255;
	e->hdr.next_header = IPPROTO_HOPOPTS;
	e->hdr.ext_count = 1;
	e->hdr.ext_len = 8;
	e->hdr.ext_types_n = 1;
	e->hdr.src_port = 53;
	e->hdr.dst_port = 65535;
	e->hdr.udp_len = 1240;
	e->hdr.checksum = 0;
	ev[n] = *e;
	ev[n++].event = EVENT_NET_PACKET_IPV6;

	/* 4: ping (an echo request), 5: the kernel's port unreachable quoting a UDP packet. */
	e = &ev[n++];
	proto_event(e, EVENT_NET_PACKET_ICMP, AF_INET, "192.168.1.10", "1.1.1.1", IPPROTO_ICMP);
	strcpy(e->proc.comm, "ping");
	proto_len(e, 84);
	e->hdr.icmp_type = 8;
	e->hdr.checksum = 0xf7ff;
	e->hdr.icmp_id = 0x0b0c;
	e->hdr.icmp_seq = 1;
	e = &ev[n++];
	proto_event(e, EVENT_NET_PACKET_ICMP, AF_INET, "127.0.0.1", "127.0.0.1", IPPROTO_ICMP);
	e->egress = false;
	strcpy(e->ifname, "lo");
	proto_len(e, 96);
	e->hdr.tos = 0xc0;
	e->hdr.ip_flags = 0;
	e->hdr.ip_id = 0x8e3a;
	e->hdr.icmp_type = 3;
	e->hdr.icmp_code = 3;
	e->hdr.checksum = 0xfc8a;

	/* 6: an ICMPv6 echo reply, 7: an ICMPv6 port unreachable, 8: a type gopacket does not
	 * name, with a hostile comm. */
	e = &ev[n++];
	proto_event(e, EVENT_NET_PACKET_ICMPV6, AF_INET6, "2606:4700:4700::1111", "2001:db8::1",
		    IPPROTO_ICMPV6);
	strcpy(e->proc.comm, "ping");
	e->egress = false;
	proto_len(e, 104);
	e->hdr.ttl = 57;
	e->hdr.icmp_type = 129;
	e->hdr.checksum = 0x8001;
	e->hdr.icmp_id = 7;
	e->hdr.icmp_seq = 65535;
	e = &ev[n++];
	proto_event(e, EVENT_NET_PACKET_ICMPV6, AF_INET6, "::1", "::1", IPPROTO_ICMPV6);
	strcpy(e->ifname, "lo");
	proto_len(e, 40 + 8 + 48);
	e->hdr.icmp_type = 1;
	e->hdr.icmp_code = 4;
	e->hdr.checksum = 0x1234;
	e = &ev[n++];
	proto_event(e, EVENT_NET_PACKET_ICMP, AF_INET, "10.9.8.7", "10.0.0.1", IPPROTO_ICMP);
	strcpy(e->proc.comm, "a\"b\\c\nd\xff");
	proto_len(e, 28);
	e->hdr.icmp_type = 200;
	e->hdr.icmp_code = 1;
	e->hdr.checksum = 65535;
	e->hdr.icmp_id = 0xffff;
	e->hdr.icmp_seq = 0xffff;

	/* 9: a later IPv4 fragment of a UDP datagram (more fragments follow): an IPv4 event with
	 * every IP field, and 10: its UDP event without a header. */
	e = &ev[n++];
	proto_event(e, EVENT_NET_PACKET_IPV4, AF_INET, "10.0.0.1", "10.0.0.2", IPPROTO_UDP);
	proto_len(e, 1500);
	e->hdr.tos = 0xff;
	e->hdr.ip_id = 65535;
	e->hdr.ip_flags = 1; /* MF */
	e->hdr.frag_off = 185;
	e->hdr.ttl = 255;
	e->hdr.ip_checksum = 0xffff;
	e->hdr.l4_error = DECODE_FRAGMENT;
	ev[n] = *e;
	ev[n++].event = EVENT_NET_PACKET_UDP;

	/* 11: a UDP header cut short (raw socket), 12: IPv6 with no next header, 13: IPv6 with
	 * an unnamed protocol behind an unwalked chain, unknown (255). */
	e = &ev[n++];
	proto_event(e, EVENT_NET_PACKET_UDP, AF_INET6, "fe80::1", "ff02::fb", IPPROTO_UDP);
	e->sk_proto = IPPROTO_RAW;
	proto_len(e, 44);
	e->hdr.l4_error = DECODE_TRUNCATED_L4;
	e = &ev[n++];
	proto_event(e, EVENT_NET_PACKET_IPV6, AF_INET6, "2001:db8::2", "2001:db8::3",
		    IPPROTO_NONE);
	proto_len(e, 40);
	e->hdr.tos = 1;
	e->hdr.flow_label = 1;
	e->hdr.ttl = 0;
	e = &ev[n++];
	proto_event(e, EVENT_NET_PACKET_IPV6, AF_INET6, "2001:db8::2", "2001:db8::3", 255);
	proto_len(e, 40 + 2400 + 100);
	e->hdr.next_header = IPPROTO_DSTOPTS;
	e->hdr.l4_error = DECODE_NO_L4;
	e->hdr.ext_count = 255;
	e->hdr.ext_len = 2400;
	e->hdr.ext_types_n = EVENT_EXT_TYPES;
	memset(e->hdr.ext_types, IPPROTO_DSTOPTS, EVENT_EXT_TYPES);

	assert_int_equal(n, PROTO_GOLDEN_N);
	return n;
}

/* The arg after the metadata, from its opening brace to the end of its value. */
static void assert_proto_arg(const struct pkt_event *e, const char *event, const char *want)
{
	char line[8192], head[128];
	size_t len = format_json(line, sizeof(line) - 1, e);
	const char *at;

	assert_true(len > 0);
	line[len] = '\0';
	snprintf(head, sizeof(head), ",\"eventName\":\"%s\",", event);
	if (!strstr(line, head))
		fail_msg("not %s: %s", event, line);
	at = strstr(line, "}},{\"name\":\"");
	if (!at)
		fail_msg("no arg after the metadata: %s", line);
	at += 3;
	if (strcmp(at, want))
		fail_msg("got  %swant %s", at, want);
}

/* Each new event's arg, exact: the names and types Tracee gives them (trace.ProtoUDP, ...). */
static void test_proto_json_args(void **state)
{
	static const struct {
		size_t i;
		const char *event, *want;
	} args[] = {
		{ 0, "net_packet_udp",
		  "{\"name\":\"proto_udp\",\"type\":\"trace.ProtoUDP\",\"value\":{\"srcPort\":"
		  "53124,\"dstPort\":53,\"length\":48,\"checksum\":43981}}]}\n" },
		{ 1, "net_packet_ipv4",
		  "{\"name\":\"proto_ipv4\",\"type\":\"trace.ProtoIPv4\",\"value\":{\"version\":"
		  "4,\"IHL\":5,\"TOS\":0,\"length\":68,\"id\":45542,\"flags\":2,\"fragOffset\":0,"
		  "\"TTL\":64,\"protocol\":\"UDP\",\"checksum\":7238,\"srcIP\":\"10.0.0.1\","
		  "\"dstIP\":\"8.8.8.8\"}}]}\n" },
		{ 3, "net_packet_ipv6",
		  "{\"name\":\"proto_ipv6\",\"type\":\"trace.ProtoIPv6\",\"value\":{\"version\":"
		  "6,\"trafficClass\":184,\"flowLabel\":1043915,\"length\":1248,\"nextHeader\":"
		  "\"IPv6HopByHop\",\"hopLimit\":255,\"srcIP\":\"2001:4860:4860::8888\","
		  "\"dstIP\":\"2001:db8::1\"}}]}\n" },
		{ 4, "net_packet_icmp",
		  "{\"name\":\"proto_icmp\",\"type\":\"trace.ProtoICMP\",\"value\":{\"typeCode\":"
		  "\"EchoRequest\",\"checksum\":63487,\"id\":2828,\"seq\":1}}]}\n" },
		{ 5, "net_packet_icmp",
		  "{\"name\":\"proto_icmp\",\"type\":\"trace.ProtoICMP\",\"value\":{\"typeCode\":"
		  "\"DestinationUnreachable(Port)\",\"checksum\":64650,\"id\":0,\"seq\":0}}]}\n" },
		{ 6, "net_packet_icmpv6",
		  "{\"name\":\"proto_icmpv6\",\"type\":\"trace.ProtoICMPv6\",\"value\":"
		  "{\"typeCode\":\"EchoReply\",\"checksum\":32769}}]}\n" },
		{ 7, "net_packet_icmpv6",
		  "{\"name\":\"proto_icmpv6\",\"type\":\"trace.ProtoICMPv6\",\"value\":"
		  "{\"typeCode\":\"DestinationUnreachable(PortUnreachable)\",\"checksum\":4660}}"
		  "]}\n" },
		{ 8, "net_packet_icmp",
		  "{\"name\":\"proto_icmp\",\"type\":\"trace.ProtoICMP\",\"value\":{\"typeCode\":"
		  "\"200(1)\",\"checksum\":65535,\"id\":65535,\"seq\":65535}}]}\n" },
		/* The IP events show their header even when the transport's could not be read. */
		{ 9, "net_packet_ipv4",
		  "{\"name\":\"proto_ipv4\",\"type\":\"trace.ProtoIPv4\",\"value\":{\"version\":"
		  "4,\"IHL\":5,\"TOS\":255,\"length\":1500,\"id\":65535,\"flags\":1,"
		  "\"fragOffset\":185,\"TTL\":255,\"protocol\":\"UDP\",\"checksum\":65535,"
		  "\"srcIP\":\"10.0.0.1\",\"dstIP\":\"10.0.0.2\"}}]}\n" },
		{ 12, "net_packet_ipv6",
		  "{\"name\":\"proto_ipv6\",\"type\":\"trace.ProtoIPv6\",\"value\":{\"version\":"
		  "6,\"trafficClass\":1,\"flowLabel\":1,\"length\":0,\"nextHeader\":"
		  "\"NoNextHeader\",\"hopLimit\":0,\"srcIP\":\"2001:db8::2\",\"dstIP\":"
		  "\"2001:db8::3\"}}]}\n" },
	};
	struct pkt_event ev[PROTO_GOLDEN_N];

	(void)state;
	proto_golden_events(ev);
	for (size_t k = 0; k < ARRAY_SIZE(args); k++)
		assert_proto_arg(&ev[args[k].i], args[k].event, args[k].want);
}

/* A transport event without its header: the metadata and why, nothing else. */
static void test_proto_json_partial(void **state)
{
	struct pkt_event ev[PROTO_GOLDEN_N];
	char line[8192];
	size_t len;

	(void)state;
	proto_golden_events(ev);
	len = format_json(line, sizeof(line) - 1, &ev[10]);
	assert_true(len > 0);
	line[len] = '\0';
	assert_non_null(strstr(line, "\"eventName\":\"net_packet_udp\""));
	assert_non_null(strstr(line, ",\"protocol\":17,"));
	assert_non_null(strstr(line, ",\"decode_error\":\"non-first fragment\"}}]}\n"));
	assert_null(strstr(line, "proto_udp"));
	len = format_json(line, sizeof(line) - 1, &ev[11]);
	assert_true(len > 0);
	line[len] = '\0';
	assert_non_null(strstr(line, ",\"decode_error\":\"truncated transport header\"}}]}\n"));
	assert_null(strstr(line, "proto_udp"));
}

/* The golden lines of the new events; every line parses as JSON. */
static void test_proto_golden(void **state)
{
	struct pkt_event ev[PROTO_GOLDEN_N];
	size_t n = proto_golden_events(ev);
	size_t len = format_all_json(fmt_buf, sizeof(fmt_buf), ev, n);
	char cmd[256];

	(void)state;
	check_golden("protos.json", fmt_buf, len);
	check_golden("protos.table", fmt_buf, format_all_table(fmt_buf, sizeof(fmt_buf), ev, n));
	len = format_all_json(fmt_buf, sizeof(fmt_buf), ev, n);
	write_whole("/tmp/pktrace-protos.json", fmt_buf, len);
	snprintf(cmd, sizeof(cmd), "python3 -c 'import json,sys\n"
		 "n=0\n"
		 "for l in open(sys.argv[1]): json.loads(l); n+=1\n"
		 "sys.exit(n!=%d)' /tmp/pktrace-protos.json", PROTO_GOLDEN_N);
	assert_int_equal(system(cmd), 0);
	unlink("/tmp/pktrace-protos.json");
}

/* The new lines keep the table's columns: the marker under FLAGS where the endpoints fit
 * their columns, the length's last digit under LEN's where the detail fits its span. */
static void test_proto_table_columns(void **state)
{
	struct pkt_event ev[PROTO_GOLDEN_N];
	char hdr[256], line[640];
	size_t n = proto_golden_events(ev), i, flags_at, len_end, k;

	(void)state;
	k = format_table_header(hdr, sizeof(hdr));
	hdr[k] = '\0';
	flags_at = (size_t)(strstr(hdr, "FLAGS") - hdr);
	len_end = k - 1;
	for (i = 0; i < n; i++) {
		k = format_table(line, sizeof(line) - 1, &ev[i]);
		assert_true(k > 0 && line[k - 1] == '\n');
		line[k] = '\0';
		/* 2 and 3: IPv6 endpoints wider than their columns; 7: a 39-byte type name. */
		if (i != 2 && i != 3 && i != 7 && (line[flags_at - 1] != ' ' || line[flags_at] == ' '))
			fail_msg("line %zu: the marker is not under FLAGS:\n%s%s", i, hdr, line);
		if (i != 7 && (line[len_end - 1] < '0' || line[len_end - 1] > '9' ||
			       (line[len_end] != ' ' && line[len_end] != '\n')))
			fail_msg("line %zu: the length does not end under LEN:\n%s%s", i, hdr, line);
	}
}

/* The fuzz events made UDP, ICMP, ICMPv6, IPv4 and IPv6 events with random header fields. */
static struct pkt_event *proto_fuzz_events(void)
{
	static const enum event_id kinds[] = { EVENT_NET_PACKET_UDP, EVENT_NET_PACKET_ICMP,
					       EVENT_NET_PACKET_ICMPV6, EVENT_NET_PACKET_IPV4,
					       EVENT_NET_PACKET_IPV6 };
	static struct pkt_event ev[FUZZ_N];
	unsigned int seed = 54321;
	size_t i;

	memcpy(ev, fuzz_events(), sizeof(ev));
	for (i = 0; i < FUZZ_N; i++) {
		struct pkt_headers *h = &ev[i].hdr;
		uint8_t *b = (uint8_t *)&h->ip_version;

		ev[i].event = kinds[i % ARRAY_SIZE(kinds)];
		/* Every IP, UDP and ICMP field at once, at random. */
		for (size_t k = 0; k < offsetof(struct pkt_headers, seq) -
					       offsetof(struct pkt_headers, ip_version); k++)
			b[k] = (uint8_t)rand_r(&seed);
		if (i % 4 == 0)
			h->icmp_type = (uint8_t)(h->icmp_type % 20);
		if (i % 6 == 0)
			h->protocol = IPPROTO_RAW;
		h->l4_error = i % 11 == 0 ? DECODE_FRAGMENT : 0;
	}
	return ev;
}

/* Random header fields keep both printers' lines whole: JSON that parses, table lines without
 * control bytes, bounded, and nothing written at a cap short of the line. */
static void test_proto_fuzz(void **state)
{
	struct pkt_event *ev = proto_fuzz_events();
	char path[128], cmd[512];
	size_t len = 0, i, k;

	(void)state;
	check_table_lines(ev, FUZZ_N);
	for (i = 0; i < FUZZ_N; i++) {
		k = format_table(fmt_buf, sizeof(fmt_buf), &ev[i]);
		assert_true(k > 0 && k < 640);
	}
	for (i = 0; i < FUZZ_N; i++) {
		k = format_json(fmt_buf + len, sizeof(fmt_buf) - len, &ev[i]);
		assert_true(k > 0);
		len += k;
	}
	snprintf(path, sizeof(path), "/tmp/pktrace-test-%d-protos.json", (int)getpid());
	write_whole(path, fmt_buf, len);
	snprintf(cmd, sizeof(cmd), "python3 -c 'import json, sys\n"
		 "names = [\"udp\", \"icmp\", \"icmpv6\", \"ipv4\", \"ipv6\"]\n"
		 "for i, l in enumerate(open(sys.argv[1], encoding=\"utf-8\")):\n"
		 "    j = json.loads(l)\n"
		 "    assert j[\"eventName\"] == \"net_packet_\" + names[i %% 5], (i, l)\n"
		 "    assert len(j[\"args\"]) in (1, 2), l\n"
		 "sys.exit(i + 1 != %d)' %s", FUZZ_N, path);
	assert_int_equal(system(cmd), 0);
	unlink(path);
	for (i = 0; i < FUZZ_N; i += 97) {
		check_caps(format_json, &ev[i]);
		check_caps(format_table, &ev[i]);
	}
}

/* gopacket's names, as Tracee writes them. */
static void test_fmt_names(void **state)
{
	static const struct {
		int family;
		uint8_t type, code;
		const char *want;
	} tc[] = {
		{ AF_INET, 3, 3, "DestinationUnreachable(Port)" },
		{ AF_INET, 3, 4, "DestinationUnreachable(FragmentationNeeded)" },
		{ AF_INET, 3, 15, "DestinationUnreachable(PrecedenceCutoff)" },
		{ AF_INET, 3, 16, "DestinationUnreachable(Code: 16)" },
		{ AF_INET, 8, 0, "EchoRequest" },
		{ AF_INET, 0, 0, "EchoReply" },
		{ AF_INET, 8, 5, "EchoRequest(Code: 5)" },
		{ AF_INET, 11, 0, "TimeExceeded(TTLExceeded)" },
		{ AF_INET, 5, 3, "Redirect(TOS+Host)" },
		{ AF_INET, 18, 0, "AddressMaskReply" },
		{ AF_INET, 1, 0, "1(0)" },
		{ AF_INET, 19, 0, "19(0)" },
		{ AF_INET, 128, 0, "128(0)" },
		{ AF_INET, 200, 1, "200(1)" },
		{ AF_INET, 255, 255, "255(255)" },
		{ AF_INET6, 1, 4, "DestinationUnreachable(PortUnreachable)" },
		{ AF_INET6, 1, 0, "DestinationUnreachable(NoRouteToDst)" },
		{ AF_INET6, 1, 7, "DestinationUnreachable(Code: 7)" },
		{ AF_INET6, 2, 0, "PacketTooBig" },
		{ AF_INET6, 3, 1, "TimeExceeded(FragmentReassemblyTimeExceeded)" },
		{ AF_INET6, 4, 2, "ParameterProblem(UnrecognizedIPv6Option)" },
		{ AF_INET6, 128, 0, "EchoRequest" },
		{ AF_INET6, 129, 0, "EchoReply" },
		{ AF_INET6, 129, 1, "EchoReply(Code: 1)" },
		{ AF_INET6, 135, 0, "NeighborSolicitation" },
		{ AF_INET6, 137, 0, "Redirect" },
		{ AF_INET6, 8, 0, "8(0)" },
		{ AF_INET6, 0, 0, "0(0)" },
		{ AF_INET6, 138, 0, "138(0)" },
		{ AF_INET6, 200, 1, "200(1)" },
		{ AF_INET6, 255, 255, "255(255)" },
	};
	static const struct {
		uint8_t proto;
		const char *want;
	} pr[] = {
		{ 0, "IPv6HopByHop" }, { 1, "ICMPv4" }, { 2, "IGMP" }, { 4, "IPv4" }, { 6, "TCP" },
		{ 17, "UDP" }, { 27, "RUDP" }, { 41, "IPv6" }, { 43, "IPv6Routing" },
		{ 44, "IPv6Fragment" }, { 47, "GRE" }, { 50, "IPSecESP" }, { 51, "IPSecAH" },
		{ 58, "ICMPv6" }, { 59, "NoNextHeader" }, { 60, "IPv6Destination" }, { 89, "OSPF" },
		{ 94, "IPv4" }, { 97, "EtherIP" }, { 112, "VRRP" }, { 132, "SCTP" },
		{ 136, "UDPLite" }, { 137, "MPLS" },
		/* gopacket says "UnknownIPProtocol"; pktrace keeps the number. */
		{ 3, "3" }, { 99, "99" }, { 103, "103" }, { 255, "255" },
	};
	char buf[64], num[4];
	size_t i, n;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(tc); i++) {
		memset(buf, 'x', sizeof(buf));
		n = fmt_icmp_typecode(buf, tc[i].family, tc[i].type, tc[i].code);
		if (n != strlen(tc[i].want) || strcmp(buf, tc[i].want))
			fail_msg("%d %u/%u: got '%s' (%zu), want '%s'", tc[i].family, tc[i].type,
				 tc[i].code, buf, n, tc[i].want);
	}
	for (i = 0; i < ARRAY_SIZE(pr); i++)
		assert_string_equal(fmt_ip_proto(pr[i].proto, num), pr[i].want);
	/* Every type and code fits the buffer, printably. */
	for (i = 0; i < 2 * 256 * 256; i++) {
		n = fmt_icmp_typecode(buf, i & 1 ? AF_INET6 : AF_INET, (uint8_t)(i >> 9),
				      (uint8_t)(i >> 1));
		assert_true(n > 0 && n < sizeof(buf));
		assert_int_equal(strlen(buf), n);
	}
}

/* --- The text format (-F text): the golden files events.text and flows.text --- */

#define TEXT_EXTRA_N 10

/* The golden events with what tcpdump's lengths need (IP header and total lengths), then UDP,
 * ICMP, ICMPv6 and other protocols, and names that try to break the columns. */
static size_t text_events(struct pkt_event *ev, size_t max)
{
	size_t n = golden_events(ev, max), i, icmp;
	struct pkt_event *e;

	assert_true(max >= GOLDEN_N + TEXT_EXTRA_N);
	for (i = 0; i < n; i++) {
		e = &ev[i];
		if (e->hdr.family == AF_INET && !e->hdr.ihl) {
			e->hdr.ihl = 5;
			e->hdr.ip_len = (uint16_t)e->packet_len;
		} else if (e->hdr.family == AF_INET6 && !e->hdr.ip_len) {
			e->hdr.ip_len = (uint16_t)(e->packet_len - 40);
		}
	}
	/* UDP over IPv4 and IPv6: tcpdump's "UDP, length N" is the UDP length less 8. */
	e = &ev[n++];
	*e = ev[0];
	e->event = EVENT_NET_PACKET_UDP;
	e->hdr.protocol = IPPROTO_UDP;
	e->hdr.udp_len = 13;
	e->hdr.ip_len = 33;
	e->packet_len = 33;
	e = &ev[n++];
	*e = ev[1];
	e->event = EVENT_NET_PACKET_UDP;
	e->hdr.protocol = IPPROTO_UDP;
	e->hdr.src_port = 53;
	e->hdr.udp_len = 8;
	e->hdr.ip_len = 8;
	/* ICMP echo request, port unreachable, an unknown type; ICMPv6 echo reply, unreachable. */
	icmp = n;
	e = &ev[n++];
	*e = ev[0];
	e->event = EVENT_NET_PACKET_ICMP;
	e->hdr.protocol = IPPROTO_ICMP;
	e->hdr.icmp_type = 8;
	e->hdr.icmp_id = 360;
	e->hdr.icmp_seq = 1;
	e->hdr.ip_len = 84;
	e = &ev[n++];
	*e = ev[icmp];
	e->hdr.icmp_type = 3;
	e->hdr.icmp_code = 3;
	e->hdr.ip_len = 61;
	e = &ev[n++];
	*e = ev[icmp];
	e->hdr.icmp_type = 42;
	e = &ev[n++];
	*e = ev[1];
	icmp = n - 1;
	e->event = EVENT_NET_PACKET_ICMPV6;
	e->hdr.protocol = IPPROTO_ICMPV6;
	e->hdr.icmp_type = 129;
	e->hdr.icmp_id = 362;
	e->hdr.icmp_seq = 65535;
	e->hdr.ip_len = 64;
	e = &ev[n++];
	*e = ev[icmp];
	e->hdr.icmp_type = 1;
	e->hdr.icmp_code = 4;
	e->hdr.ip_len = 62;
	/* An IPv4 event of a protocol without a printer of its own (GRE). */
	e = &ev[n++];
	*e = ev[0];
	e->event = EVENT_NET_PACKET_IPV4;
	e->hdr.protocol = 47;
	e->hdr.ip_len = 100;
	/* Names that must not move the columns: 15 wide characters, controls, a long ifname. */
	e = &ev[n++];
	*e = ev[0];
	strcpy(e->proc.comm, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\x1b[1m");
	e->proc.pid = 4194304;
	strcpy(e->ifname, "veth-long-name0");
	e = &ev[n++];
	*e = ev[0];
	strcpy(e->proc.comm, "\xe2\x80\xae" "abc\xff");
	e->proc.pid = 1;
	e->ifname[0] = 0;
	return n;
}

static size_t format_all_text(char *dst, size_t cap, const struct pkt_event *ev, size_t n)
{
	size_t len = 0, i, k;

	for (i = 0; i < n; i++) {
		k = format_text(dst + len, cap - len, &ev[i]);
		assert_true(k > 0);
		len += k;
	}
	return len;
}

/* ICMP and ICMPv6 in tcpdump's words (4.99.3, checked against its lines for packets written
 * by scapy), less the quoted packet's addresses and ports, which a record does not carry. */
static void test_text_icmp_words(void **state)
{
	static const struct {
		bool v6;
		uint8_t type, code;
		uint16_t id, seq;
		const char *words;
	} cases[] = {
		{false, 3, 4, 0, 1400, "ICMP unreachable - need to frag (mtu 1400), length"},
		{false, 3, 4, 0, 0, "ICMP unreachable - need to frag, length"},
		{false, 3, 10, 0, 0, "ICMP host unreachable - admin prohibited, length"},
		{false, 3, 13, 0, 0, "ICMP host unreachable - admin prohibited filter, length"},
		{false, 3, 15, 0, 0, "ICMP host unreachable - precedence cutoff, length"},
		{false, 13, 0, 5, 6, "ICMP time stamp query id 5 seq 6, length"},
		{false, 11, 1, 0, 0, "ICMP ip reassembly time exceeded, length"},
		{true, 1, 0, 0, 0, "ICMP6, destination unreachable, unreachable route, length"},
		{true, 1, 1, 0, 0, "ICMP6, destination unreachable, unreachable prohibited, length"},
		{true, 1, 6, 0, 0, "ICMP6, destination unreachable, unknown unreach code (6), length"},
		{true, 2, 0, 0, 1280, "ICMP6, packet too big, mtu 1280, length"},
		{true, 3, 0, 0, 0, "ICMP6, time exceeded in-transit, length"},
		{true, 3, 1, 0, 0, "ICMP6, time exceeded in-transit (reassembly), length"},
		{true, 4, 1, 0, 6, "ICMP6, parameter problem, next header - octet 6, length"},
		{true, 4, 3, 0, 6, "ICMP6, parameter problem, incomplete header chain - octet 6, length"},
	};
	struct pkt_event ev[GOLDEN_N + TEXT_EXTRA_N];
	char line[1024];

	(void)state;
	text_events(ev, ARRAY_SIZE(ev));
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct pkt_event e = ev[cases[i].v6 ? 1 : 0];
		size_t k;

		e.event = cases[i].v6 ? EVENT_NET_PACKET_ICMPV6 : EVENT_NET_PACKET_ICMP;
		e.hdr.protocol = cases[i].v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
		e.hdr.icmp_type = cases[i].type;
		e.hdr.icmp_code = cases[i].code;
		e.hdr.icmp_id = cases[i].id;
		e.hdr.icmp_seq = cases[i].seq;
		e.hdr.ip_len = 56;
		k = format_text(line, sizeof(line) - 1, &e);
		assert_true(k > 0);
		line[k] = 0;
		if (!strstr(line, cases[i].words))
			fail_msg("type %u code %u: want '%s' in '%s'", cases[i].type, cases[i].code,
				 cases[i].words, line);
	}
}

static void test_text_golden(void **state)
{
	struct pkt_event ev[GOLDEN_N + TEXT_EXTRA_N], fl[FLOW_GOLDEN_N];
	size_t n = text_events(ev, ARRAY_SIZE(ev)), nf = flow_golden_events(fl);

	(void)state;
	check_golden("events.text", fmt_buf, format_all_text(fmt_buf, sizeof(fmt_buf), ev, n));
	check_golden("flows.text", fmt_buf, format_all_text(fmt_buf, sizeof(fmt_buf), fl, nf));
}

/* The brief's example, with tcpdump's padding of the interface and direction columns. */
static void test_text_example(void **state)
{
	static const uint8_t opt[] = {2, 4, 0xff, 0xd7, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2,
				      1, 3, 3, 7};
	static const char want[] =
		"12:00:00.000001 nginx[1234]               lo    In  IP 127.0.0.1.80 > "
		"127.0.0.1.40000: Flags [S.], seq 1, ack 2, win 65483, options [mss 65495,sackOK,"
		"TS val 1 ecr 2,nop,wscale 7], length 0\n";
	struct pkt_event e = {0};
	char buf[1024];
	size_t n;

	(void)state;
	e.timestamp_ns = 1764138600000001000ull;
	e.proc = (struct pkt_process){.pid = 1234, .comm = "nginx", .hostname = "",
				      .container_id = ""};
	strcpy(e.ifname, "lo");
	set_addr(&e.hdr, AF_INET, "127.0.0.1", "127.0.0.1");
	e.hdr.protocol = IPPROTO_TCP;
	e.hdr.ihl = 5;
	e.hdr.ip_len = 60;
	e.hdr.src_port = 80;
	e.hdr.dst_port = 40000;
	e.hdr.seq = 1;
	e.hdr.ack = 2;
	e.hdr.flags = TCP_FLAG_SYN | TCP_FLAG_ACK;
	e.hdr.window = 65483;
	set_opts(&e.hdr, opt, sizeof(opt));
	e.packet_len = 60;
	n = format_text(buf, sizeof(buf), &e);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(buf, want, n);
}

/* tcpdump's payload length: IPv4 total length less both headers; IPv6 payload length less the
 * extension headers and TCP's; seq start:end with a payload; an ack only with ACK. */
static void test_text_payload_length(void **state)
{
	struct pkt_event e = {0};
	char buf[1024];

	(void)state;
	e.proc = (struct pkt_process){.pid = 1, .comm = "x", .hostname = "", .container_id = ""};
	set_addr(&e.hdr, AF_INET, "10.0.0.1", "10.0.0.2");
	e.hdr.protocol = IPPROTO_TCP;
	e.hdr.ihl = 6;
	e.hdr.ip_len = 156;
	e.hdr.data_offset = 8;
	e.hdr.seq = 4294967290u;
	e.hdr.flags = TCP_FLAG_PSH;
	e.packet_len = 156;
	buf[format_text(buf, sizeof(buf) - 1, &e)] = 0;
	assert_non_null(strstr(buf, "Flags [P], seq 4294967290:94, win 0, length 100\n"));
	set_addr(&e.hdr, AF_INET6, "::1", "2001:db8::1");
	e.hdr.ip_len = 132;
	e.hdr.ext_len = 16;
	e.hdr.ext_count = 2;
	e.hdr.data_offset = 5;
	e.hdr.flags = TCP_FLAG_ACK;
	e.hdr.ack = 7;
	buf[format_text(buf, sizeof(buf) - 1, &e)] = 0;
	assert_non_null(strstr(buf, " IP6 ::1.0 > 2001:db8::1.0: Flags [.], seq 4294967290:90, ack 7,"
				    " win 0, length 96\n"));
	/* Headers longer than the packet claims: length 0, as no payload. */
	e.hdr.ip_len = 10;
	buf[format_text(buf, sizeof(buf) - 1, &e)] = 0;
	assert_non_null(strstr(buf, "Flags [.], ack 7, win 0, length 0\n"));
}

/* Display columns (code points) before the first byte of needle's line position n. */
static size_t display_cols(const char *s, size_t n)
{
	size_t cols = 0, i;

	for (i = 0; i < n; i++)
		cols += ((unsigned char)s[i] & 0xc0) != 0x80;
	return cols;
}

/* The interface column starts at the same display column whatever the name before it. */
static void test_text_columns_aligned(void **state)
{
	struct pkt_event ev[GOLDEN_N + TEXT_EXTRA_N];
	size_t n = text_events(ev, ARRAY_SIZE(ev)), i, len, col = 0;
	char buf[1024];
	const char *p;

	(void)state;
	for (i = 0; i < n; i++) {
		len = format_text(buf, sizeof(buf), &ev[i]);
		assert_true(len > 0 && buf[len - 1] == '\n');
		assert_null(memchr(buf, '\n', len - 1));
		for (p = buf; p < buf + len; p++)
			assert_true((unsigned char)*p >= 0x20 || *p == '\n');
		/* The process column ends at "] " (the pid's bracket), then padding. */
		p = strstr(buf, "] ");
		assert_non_null(p);
		while (*++p == ' ')
			;
		if (!col)
			col = display_cols(buf, (size_t)(p - buf));
		assert_int_equal(display_cols(buf, (size_t)(p - buf)), col);
		/* Exactly as long as it says: no byte fewer fits. */
		assert_int_equal(format_text(fmt_buf, len - 1, &ev[i]), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_example),
		cmocka_unit_test(test_json_process_kept),
		cmocka_unit_test(test_packet_text_kept),
		cmocka_unit_test(test_packet_text_cold),
		cmocka_unit_test(test_packet_text_cold_separated),
		cmocka_unit_test(test_json_tfo_experimental),
		cmocka_unit_test(test_json_golden),
		cmocka_unit_test(test_table_golden),
		cmocka_unit_test(test_flow_golden),
		cmocka_unit_test(test_proto_json_args),
		cmocka_unit_test(test_proto_json_partial),
		cmocka_unit_test(test_proto_golden),
		cmocka_unit_test(test_proto_table_columns),
		cmocka_unit_test(test_proto_fuzz),
		cmocka_unit_test(test_fmt_names),
		cmocka_unit_test(test_text_golden),
		cmocka_unit_test(test_text_icmp_words),
		cmocka_unit_test(test_text_example),
		cmocka_unit_test(test_text_payload_length),
		cmocka_unit_test(test_text_columns_aligned),
		cmocka_unit_test(test_flow_lines_bounded),
		cmocka_unit_test(test_one_line_each),
		cmocka_unit_test(test_json_parses_golden),
		cmocka_unit_test(test_json_parses_fuzz),
		cmocka_unit_test(test_table_fuzz),
		cmocka_unit_test(test_format_chars_replaced),
		cmocka_unit_test(test_addresses_match_inet_ntop),
		cmocka_unit_test(test_cap_too_small),
		cmocka_unit_test(test_cap_too_small_fuzz),
		cmocka_unit_test(test_table_never_truncates),
		cmocka_unit_test(test_table_longest_line),
		cmocka_unit_test(test_table_longest_options),
		cmocka_unit_test(test_longest_options_named),
		cmocka_unit_test(test_writer_json),
		cmocka_unit_test(test_writer_table),
		cmocka_unit_test(test_writer_header_once),
		cmocka_unit_test(test_flush_epipe),
		cmocka_unit_test(test_flush_enospc),
		cmocka_unit_test(test_flush_partial_then_error),
		cmocka_unit_test(test_events_written_counted),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_open_stdout),
		cmocka_unit_test_teardown(test_flush_interrupted, stop_timer),
		cmocka_unit_test(test_flush_nonblocking),
		cmocka_unit_test(test_partial_flush_counts_whole_lines),
		cmocka_unit_test(test_open_no_follow),
		cmocka_unit_test(test_open_mode),
		cmocka_unit_test_teardown(test_flush_cancel_blocking, stop_timer),
		cmocka_unit_test_teardown(test_flush_cancel_nonblocking, stop_timer),
	};

	/* The table prints local time: pin a zone with a half-hour offset, no tzdata needed. */
	setenv("TZ", "XST-5:30", 1);
	tzset();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
