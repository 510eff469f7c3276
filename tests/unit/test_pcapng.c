// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* pcapng: the block writer, its round trip through -r's reader, and the reader on bad files. */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <pcap/pcap.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "decode.h"
#include "events.h"
#include "opts.h"
#include "output.h"
#include "pcapng.h"
#include "pktrace.h"
#include "readfile.h"

static struct output out; /* 1 MiB buffer: not on the stack */

/* An IPv4 TCP SYN from 10.0.0.1:1234 to 10.0.0.2:80 with an MSS option: 44 bytes. */
static const uint8_t syn4[44] = {
	0x45, 0, 0, 44, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
	0x04, 0xd2, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x60, 0x02, 0xff, 0xff, 0, 0, 0, 0,
	2, 4, 0x05, 0xb4,
};

/* An IPv6 UDP datagram from ::1 port 53 to ::1 port 9999: 48 bytes. */
static uint8_t udp6[48];

static void make_udp6(void)
{
	memset(udp6, 0, sizeof(udp6));
	udp6[0] = 0x60;
	udp6[5] = 8 + 100; /* payload length: the datagram was longer than what is kept */
	udp6[6] = 17;
	udp6[7] = 64;
	udp6[23] = 1;
	udp6[39] = 1;
	udp6[40] = 0;
	udp6[41] = 53;
	udp6[42] = 0x27;
	udp6[43] = 0x0f;
	udp6[45] = 108;
}

static char tmpl[64];

static const char *tmp_path(void)
{
	int fd;

	snprintf(tmpl, sizeof(tmpl), "/tmp/test_pcapng.XXXXXX");
	fd = mkstemp(tmpl);
	assert_true(fd >= 0);
	close(fd);
	unlink(tmpl); /* output_open creates it itself */
	return tmpl;
}

static void fill_event(struct pkt_event *e, const char *comm, const char *ifname, bool egress,
		       uint64_t ts)
{
	memset(e, 0, sizeof(*e));
	e->timestamp_ns = ts;
	e->proc.pid = 4242;
	e->proc.tid = 4243;
	e->proc.ppid = 1;
	e->proc.uid = 1000;
	e->proc.cgroup_id = 987654321012ULL;
	snprintf(e->proc.comm, sizeof(e->proc.comm), "%s", comm);
	e->proc.hostname = "web-1";
	e->proc.container_id = "3f4e8a2b9c1d";
	snprintf(e->ifname, sizeof(e->ifname), "%s", ifname);
	e->egress = egress;
	e->sk_proto = IPPROTO_TCP;
}

static void write_packet(const struct pkt_event *e, event_mask ev, const uint8_t *d, uint32_t len,
			 uint32_t orig, uint32_t netns)
{
	struct pkt_event c = *e;
	struct pkt_bytes b = {d, len, netns, NULL, 0};

	c.packet_len = orig;
	assert_int_equal(output_packet(&out, &c, ev, &b), 0);
}

/* Blocks of a written file in order: type of each, up to max. */
static size_t block_types(const char *path, uint32_t *types, size_t max)
{
	FILE *f = fopen(path, "rb");
	uint32_t h[2], trailer;
	size_t n = 0;

	assert_non_null(f);
	while (n < max && fread(h, 4, 2, f) == 2) {
		assert_true(h[1] >= 12 && h[1] % 4 == 0);
		assert_int_equal(fseek(f, h[1] - 12, SEEK_CUR), 0);
		assert_int_equal(fread(&trailer, 4, 1, f), 1);
		assert_int_equal(trailer, h[1]);
		types[n++] = h[0];
	}
	fclose(f);
	return n;
}

static void test_header_block(void **state)
{
	char buf[64];
	uint32_t v;
	size_t n = format_pcapng_header(buf, sizeof(buf));

	(void)state;
	assert_true(n >= 28 && n % 4 == 0);
	memcpy(&v, buf, 4);
	assert_int_equal(v, PCAPNG_SHB);
	memcpy(&v, buf + 4, 4);
	assert_int_equal(v, n);
	memcpy(&v, buf + n - 4, 4);
	assert_int_equal(v, n);
	memcpy(&v, buf + 8, 4);
	assert_int_equal(v, PCAPNG_BOM);
	assert_non_null(memmem(buf, n, "pktrace", 7));
	assert_int_equal(format_pcapng_header(buf, 20), 0);
}

/* Written, then read back with libpcap and the walker: every field a file holds comes back. */
static void test_round_trip(void **state)
{
	const char *path = tmp_path();
	struct pkt_event e, r;
	struct pkt_bytes b;
	struct readfile rf;
	int ret;
	uint32_t types[16];
	event_mask tcp4 = EVENT_BIT(EVENT_NET_PACKET_TCP) | EVENT_BIT(EVENT_NET_PACKET_IPV4);

	(void)state;
	make_udp6();
	assert_int_equal(output_open(&out, path, OUTPUT_PCAPNG), 0);
	/* A comm that tries to fake a line, a backslash, and UTF-8. */
	fill_event(&e, "a\nuid: 0\\\xc3\xa9", "lo", true, 1764145200123456789ULL);
	write_packet(&e, tcp4, syn4, sizeof(syn4), 44, 0);
	fill_event(&e, "nginx", "eth0", false, 1764145200123456790ULL);
	e.proc.container_id = "";
	e.sk_proto = IPPROTO_UDP;
	write_packet(&e, EVENT_BIT(EVENT_NET_PACKET_UDP), udp6, sizeof(udp6), 148, 4026532999u);
	fill_event(&e, "curl", "lo", false, 1764145200123456791ULL);
	write_packet(&e, tcp4, syn4, sizeof(syn4), 44, 0);
	assert_int_equal(output_close(&out), 0);
	assert_int_equal(out.events_written, 3);

	/* SHB, IDB lo, EPB, IDB eth0 (the other namespace), EPB, EPB: lo described once. */
	assert_int_equal(block_types(path, types, 16), 6);
	assert_int_equal(types[0], PCAPNG_SHB);
	assert_int_equal(types[1], PCAPNG_IDB);
	assert_int_equal(types[2], PCAPNG_EPB);
	assert_int_equal(types[3], PCAPNG_IDB);
	assert_int_equal(types[4], PCAPNG_EPB);
	assert_int_equal(types[5], PCAPNG_EPB);

	assert_int_equal(readfile_open(&rf, path), 0);
	assert_int_equal(readfile_next(&rf, &r, &b), 1);
	assert_int_equal(r.timestamp_ns, 1764145200123456789ULL);
	assert_string_equal(r.proc.comm, "a\nuid: 0\\\xc3\xa9");
	assert_int_equal(r.proc.pid, 4242);
	assert_int_equal(r.proc.tid, 4243);
	assert_int_equal(r.proc.ppid, 1);
	assert_int_equal(r.proc.uid, 1000);
	assert_int_equal(r.proc.cgroup_id, 987654321012ULL);
	assert_string_equal(r.proc.hostname, "web-1");
	assert_string_equal(r.proc.container_id, "3f4e8a2b9c1d");
	assert_string_equal(r.ifname, "lo");
	assert_true(r.egress);
	assert_int_equal(r.packet_len, 44);
	assert_int_equal(r.sk_proto, IPPROTO_TCP);
	assert_int_equal(b.len, sizeof(syn4));
	assert_memory_equal(b.data, syn4, sizeof(syn4));
	assert_int_equal(r.hdr.src_port, 1234);
	assert_int_equal(r.hdr.opts.mss, 1460);
	assert_int_equal(decode_packet_events(&r), tcp4);

	ret = readfile_next(&rf, &r, &b);
	if (ret != 1)
		fprintf(stderr, "readfile: %s\n", rf.err);
	assert_int_equal(ret, 1);
	assert_string_equal(r.proc.comm, "nginx");
	assert_string_equal(r.proc.container_id, "");
	assert_string_equal(r.ifname, "eth0");
	assert_int_equal(b.netns, 4026532999u);
	assert_false(r.egress);
	assert_int_equal(r.packet_len, 148);
	assert_int_equal(r.hdr.family, AF_INET6);
	assert_int_equal(r.hdr.dst_port, 9999);
	assert_int_equal(r.sk_proto, IPPROTO_UDP);

	assert_int_equal(readfile_next(&rf, &r, &b), 1);
	assert_string_equal(r.proc.comm, "curl");
	assert_string_equal(r.ifname, "lo");
	assert_false(r.egress);
	assert_int_equal(readfile_next(&rf, &r, &b), 0);
	assert_int_equal(rf.st.packets, 3);
	assert_int_equal(rf.st.no_comment, 0);
	assert_int_equal(rf.walk->malformed, 0);
	readfile_close(&rf);
	unlink(path);
}

/* More (interface, netns) pairs than the table holds: the last IDB, "other", takes the rest. */
static void test_interface_overflow(void **state)
{
	const char *path = tmp_path();
	struct pkt_event e;
	uint32_t *types = calloc(1024, sizeof(*types));
	size_t n, idbs = 0, epbs = 0;
	char name[17];

	(void)state;
	assert_int_equal(output_open(&out, path, OUTPUT_PCAPNG), 0);
	for (int i = 0; i < PCAPNG_IFACES_MAX + 40; i++) {
		snprintf(name, sizeof(name), "veth%d", i);
		fill_event(&e, "x", name, true, 1);
		write_packet(&e, 1, syn4, sizeof(syn4), 44, 0);
	}
	assert_int_equal(out.png.n, PCAPNG_IFACES_MAX);
	assert_int_equal(out.png.overflow, 41);
	assert_int_equal(output_close(&out), 0);
	n = block_types(path, types, 1024);
	for (size_t i = 0; i < n; i++) {
		idbs += types[i] == PCAPNG_IDB;
		epbs += types[i] == PCAPNG_EPB;
	}
	assert_int_equal(idbs, PCAPNG_IFACES_MAX);
	assert_int_equal(epbs, PCAPNG_IFACES_MAX + 40);
	free(types);
	unlink(path);
}

/* No room: nothing written and the interface not taken as described. */
static void test_packet_no_room(void **state)
{
	static struct pcapng_ifaces ifs;
	struct pkt_event e;
	struct pkt_bytes b = {syn4, sizeof(syn4), 0, NULL, 0};
	char buf[512];
	size_t n, cap;

	(void)state;
	fill_event(&e, "curl", "lo", true, 1);
	n = format_pcapng_packet(buf, sizeof(buf), &ifs, &e, 1, &b);
	assert_true(n > 0 && n % 4 == 0);
	memset(&ifs, 0, sizeof(ifs));
	for (cap = 0; cap < n; cap++) {
		assert_int_equal(format_pcapng_packet(buf, cap, &ifs, &e, 1, &b), 0);
		assert_int_equal(ifs.n, 0);
	}
	assert_int_equal(format_pcapng_packet(buf, n, &ifs, &e, 1, &b), n);
	assert_int_equal(ifs.n, 1);
}

static void test_comment_parse(void **state)
{
	static const char text[] = "note: hello\npid: 7\ncomm: a\\x0ab\\\\\nhostname:\n"
				   "container_id: \\xzz\nbogus line\nsk_proto: 17";
	struct pkt_event e;
	uint8_t sk = 0;
	char host[256], cid[256];

	(void)state;
	memset(&e, 0, sizeof(e));
	assert_int_equal(pcapng_comment_parse(text, strlen(text), &e, &sk, host, cid), 5);
	assert_int_equal(e.proc.pid, 7);
	assert_string_equal(e.proc.comm, "a\nb\\");
	assert_string_equal(e.proc.hostname, "");
	assert_string_equal(e.proc.container_id, "\\xzz");
	assert_int_equal(sk, 17);
	/* Someone else's comment: nothing taken. */
	assert_int_equal(pcapng_comment_parse("just a note", 11, &e, &sk, host, cid), 0);
	assert_int_equal(pcapng_comment_parse("", 0, &e, &sk, host, cid), 0);
	/* A comm longer than its field is cut, not overrun. */
	assert_int_equal(pcapng_comment_parse("comm: 0123456789abcdefghij", 26, &e, &sk, host, cid),
			 1);
	assert_string_equal(e.proc.comm, "0123456789abcdef");
	/* Numbers that are not one, or do not fit their field, read as unknown (0). */
	{
		static const char odd[] = "pid: 99999999999999999999\ntid: 12abc\nppid: 4294967296\n"
					  "uid: 4294967295\nsk_proto: 256\ncgroup_id: -1";

		assert_int_equal(pcapng_comment_parse(odd, strlen(odd), &e, &sk, host, cid), 6);
		assert_int_equal(e.proc.pid, 0);
		assert_int_equal(e.proc.tid, 0);
		assert_int_equal(e.proc.ppid, 0);
		assert_int_equal(e.proc.uid, 4294967295u);
		assert_int_equal(sk, 0);
		assert_int_equal(e.proc.cgroup_id, 0);
	}
}

/* A pcap file of another link type, as tcpdump writes it: events with no process. */
static void write_pcap(const char *path, int dlt, const uint8_t *link, size_t link_len)
{
	pcap_t *p = pcap_open_dead(dlt, 65535);
	pcap_dumper_t *d = pcap_dump_open(p, path);
	struct pcap_pkthdr h = {.ts = {1700000000, 5}};
	uint8_t frame[128];

	assert_non_null(d);
	memcpy(frame, link, link_len);
	memcpy(frame + link_len, syn4, sizeof(syn4));
	h.caplen = h.len = (bpf_u_int32)(link_len + sizeof(syn4));
	pcap_dump((u_char *)d, &h, frame);
	pcap_dump_close(d);
	pcap_close(p);
}

static void read_one(const char *path, struct pkt_event *r, int expect)
{
	struct readfile rf;
	struct pkt_bytes b;

	assert_int_equal(readfile_open(&rf, path), 0);
	assert_int_equal(readfile_next(&rf, r, &b), expect);
	if (expect == 1) {
		assert_int_equal(b.len, sizeof(syn4));
		assert_string_equal(r->proc.comm, "");
		assert_string_equal(r->proc.hostname, "");
		assert_int_equal(r->proc.pid, 0);
		assert_int_equal(rf.st.no_comment, 1);
		assert_int_equal(r->timestamp_ns, 1700000000000005000ULL);
		assert_int_equal(r->packet_len, sizeof(syn4));
	} else {
		assert_int_equal(rf.st.link_errors, 1);
	}
	readfile_close(&rf);
	unlink(path);
}

static void test_link_types(void **state)
{
	static const uint8_t eth[14] = {[12] = 0x08, [13] = 0x00};
	static const uint8_t vlan[18] = {[12] = 0x81, [13] = 0x00, [16] = 0x08, [17] = 0x00};
	static const uint8_t arp[14] = {[12] = 0x08, [13] = 0x06};
	static const uint8_t sll_out[16] = {[1] = 4, [14] = 0x08, [15] = 0x00};
	static const uint8_t sll2_in[20] = {[0] = 0x08, [1] = 0x00, [10] = 0};
	static const uint8_t sll2_out[20] = {[0] = 0x08, [1] = 0x00, [10] = 4};
	static const uint8_t null_hdr[4] = {2, 0, 0, 0};
	struct pkt_event r;

	(void)state;
	write_pcap(tmp_path(), DLT_EN10MB, eth, sizeof(eth));
	read_one(tmpl, &r, 1);
	assert_int_equal(r.hdr.dst_port, 80);
	write_pcap(tmp_path(), DLT_EN10MB, vlan, sizeof(vlan));
	read_one(tmpl, &r, 1);
	write_pcap(tmp_path(), DLT_EN10MB, arp, sizeof(arp));
	read_one(tmpl, &r, 0);
	write_pcap(tmp_path(), DLT_LINUX_SLL, sll_out, sizeof(sll_out));
	read_one(tmpl, &r, 1);
	assert_true(r.egress);
	write_pcap(tmp_path(), 276 /* DLT_LINUX_SLL2 */, sll2_in, sizeof(sll2_in));
	read_one(tmpl, &r, 1);
	assert_false(r.egress);
	write_pcap(tmp_path(), 276, sll2_out, sizeof(sll2_out));
	read_one(tmpl, &r, 1);
	assert_true(r.egress);
	write_pcap(tmp_path(), DLT_NULL, null_hdr, sizeof(null_hdr));
	read_one(tmpl, &r, 1);
	write_pcap(tmp_path(), DLT_RAW, NULL, 0);
	read_one(tmpl, &r, 1);
	assert_int_equal(r.hdr.src_port, 1234);
}

static void test_unsupported_link(void **state)
{
	const char *path;
	struct readfile rf;

	(void)state;
	path = tmp_path();
	write_pcap(path, DLT_IEEE802_11, NULL, 0);
	assert_int_equal(readfile_open(&rf, path), -EINVAL);
	assert_non_null(strstr(rf.err, "link type"));
	readfile_close(&rf);
	unlink(path);
	assert_true(readfile_open(&rf, "/nonexistent/x.pcapng") < 0);
	assert_non_null(strstr(rf.err, "cannot open"));
	readfile_close(&rf);
}

/* Write data[0..len) to path and read every packet of it; *ret: the last readfile_next's. */
static int read_all(const char *path, const uint8_t *data, long len, int *ret)
{
	struct pkt_event r;
	struct pkt_bytes b;
	struct readfile rf;
	FILE *f = fopen(path, "wb");
	int n = 0;

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
	*ret = readfile_open(&rf, path);
	if (!*ret)
		while ((*ret = readfile_next(&rf, &r, &b)) == 1)
			n++;
	readfile_close(&rf);
	return n;
}

/* A pktrace file cut anywhere, or with a block length broken: an error or fewer packets. */
static void test_damaged_files(void **state)
{
	const char *path = tmp_path();
	char cut[64];
	struct pkt_event e;
	uint8_t *data;
	long size;
	FILE *f;
	int ret, n;

	(void)state;
	assert_int_equal(output_open(&out, path, OUTPUT_PCAPNG), 0);
	for (int i = 0; i < 4; i++) {
		fill_event(&e, "curl", i & 1 ? "lo" : "eth0", i & 1, 10 + i);
		write_packet(&e, 1, syn4, sizeof(syn4), 44, 0);
	}
	assert_int_equal(output_close(&out), 0);
	f = fopen(path, "rb");
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	data = malloc(size);
	assert_int_equal(fread(data, 1, size, f), size);
	fclose(f);
	snprintf(cut, sizeof(cut), "%s.cut", path);
	assert_int_equal(read_all(cut, data, size, &ret), 4);
	assert_int_equal(ret, 0);
	for (long len = 0; len < size; len++) {
		n = read_all(cut, data, len, &ret);
		assert_true(n < 4);
		if (ret != 0 && ret != -EIO && ret != -EINVAL)
			fail_msg("cut at %ld: %d", len, ret);
		/* A file cut inside its last packet block is truncated, and libpcap says so. */
		if (len > size - 40)
			assert_int_equal(ret, -EIO);
	}
	/* Every 4-byte word set to a hostile value in turn: never a crash, at most 4 packets. */
	for (long off = 0; off + 4 <= size; off += 4) {
		static const uint32_t bad[] = {0, 3, 0xffffffffu, 13, 0x7ffffffcu};

		for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
			uint32_t saved;

			memcpy(&saved, data + off, 4);
			memcpy(data + off, &bad[k], 4);
			assert_true(read_all(cut, data, size, &ret) <= 4);
			memcpy(data + off, &saved, 4);
		}
	}
	free(data);
	unlink(cut);
	unlink(path);
}

/* A closed pipe: the error is sticky and no packet counts as written. */
static void test_closed_pipe(void **state)
{
	struct pkt_event e;
	struct pkt_bytes b = {syn4, sizeof(syn4), 0, NULL, 0};
	int p[2];

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(output_open(&out, NULL, OUTPUT_PCAPNG), 0);
	out.fd = p[1];
	close(p[0]);
	fill_event(&e, "curl", "lo", true, 1);
	assert_int_equal(output_packet(&out, &e, 1, &b), 0);
	assert_int_equal(output_flush(&out), -EPIPE);
	assert_int_equal(output_packet(&out, &e, 1, &b), -EPIPE);
	assert_int_equal(out.events_written, 0);
	close(p[1]);
	/* A text output takes no packets. */
	out.format = OUTPUT_JSON;
	out.err = 0;
	assert_int_equal(output_packet(&out, &e, 1, &b), -EINVAL);
}

/* A record's bytes: all of hdr[] but for an IPv6 chain, whose fixed header stands alone. */
#define FULL (offsetof(struct pkt_record, hdr) + PKT_HDR_MAX)

static void test_record_bytes(void **state)
{
	static struct pkt_record r;
	struct pkt_bytes b;

	(void)state;
	r.l3_proto = 4;
	r.hdr_len = 52;
	r.netns = 77;
	pkt_bytes_of_record(&r, FULL, &b);
	assert_ptr_equal(b.data, r.hdr);
	assert_int_equal(b.len, 52);
	assert_int_equal(b.netns, 77);
	assert_int_equal(b.snap_len, 0);
	r.l3_proto = 6;
	r.hdr_len = 60 + 3; /* fixed header, UDP, three types */
	pkt_bytes_of_record(&r, FULL, &b);
	assert_int_equal(b.len, 63);
	r.ext_count = 3;
	pkt_bytes_of_record(&r, FULL, &b);
	assert_int_equal(b.len, 40);
	r.hdr_len = 30; /* cut short: no more than it has */
	pkt_bytes_of_record(&r, FULL, &b);
	assert_int_equal(b.len, 30);
}

/* --snaplen: a record's payload follows its headers; only a record with snap[] room has one. */
static void test_record_bytes_snap(void **state)
{
	static struct pkt_record r;
	const size_t snap_at = offsetof(struct pkt_record, snap);
	struct pkt_bytes b;

	(void)state;
	r.l3_proto = 4;
	r.hdr_len = 52;
	r.snap_len = 100;
	pkt_bytes_of_record(&r, snap_at + 100, &b);
	assert_int_equal(b.len, 52);
	assert_ptr_equal(b.snap, r.snap);
	assert_int_equal(b.snap_len, 100);
	/* The two smaller sizes end before snap_len: whatever lies there is not read. */
	pkt_bytes_of_record(&r, FULL, &b);
	assert_int_equal(b.snap_len, 0);
	pkt_bytes_of_record(&r, offsetof(struct pkt_record, hdr) + PKT_HDR_SMALL, &b);
	assert_int_equal(b.snap_len, 0);
	/* More than the record holds: none of it. */
	pkt_bytes_of_record(&r, snap_at + 99, &b);
	assert_int_equal(b.snap_len, 0);
	/* An IPv6 chain: the fixed header alone, no payload after it. */
	r.l3_proto = 6;
	r.ext_count = 1;
	r.hdr_len = 60 + 1;
	pkt_bytes_of_record(&r, snap_at + 100, &b);
	assert_int_equal(b.len, 40);
	assert_int_equal(b.snap_len, 0);
}

static enum opts_result parse(struct opts *o, char *err, size_t cap, int argc, ...);

/* --snaplen: the payload follows the headers in the block; captured length is both, the original
 * length the packet's; read back, the bytes are one run and the headers still decode. */
static void test_round_trip_snap(void **state)
{
	const char *path = tmp_path();
	static const uint8_t get[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	uint8_t want[sizeof(syn4) + sizeof(get)];
	struct pkt_bytes b = {syn4, sizeof(syn4), 0, get, 0};
	struct pkt_event e, r;
	struct readfile rf;
	event_mask tcp4 = EVENT_BIT(EVENT_NET_PACKET_TCP);

	(void)state;
	memcpy(want, syn4, sizeof(syn4));
	memcpy(want + sizeof(syn4), get, sizeof(get));
	assert_int_equal(output_open(&out, path, OUTPUT_PCAPNG), 0);
	fill_event(&e, "curl", "lo", true, 1764145200123456789ULL);
	for (uint32_t n = 1; n <= 3; n++) { /* 1 to 3 bytes: the block's padding varies */
		b.snap_len = n;
		e.packet_len = 1000;
		assert_int_equal(output_packet(&out, &e, tcp4, &b), 0);
	}
	b.snap_len = sizeof(get); /* the whole packet kept: original length no less */
	e.packet_len = sizeof(want);
	assert_int_equal(output_packet(&out, &e, tcp4, &b), 0);
	assert_int_equal(output_close(&out), 0);

	assert_int_equal(readfile_open(&rf, path), 0);
	for (uint32_t n = 1; n <= 3; n++) {
		assert_int_equal(readfile_next(&rf, &r, &b), 1);
		assert_int_equal(b.len, sizeof(syn4) + n);
		assert_memory_equal(b.data, want, b.len);
		assert_int_equal(r.packet_len, 1000);
		assert_int_equal(r.hdr.src_port, 1234);
		assert_int_equal(r.hdr.opts.mss, 1460);
		assert_int_equal(r.hdr.l4_error, 0);
	}
	assert_int_equal(readfile_next(&rf, &r, &b), 1);
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(b.data, want, sizeof(want));
	assert_int_equal(r.packet_len, sizeof(want));
	assert_int_equal(readfile_next(&rf, &r, &b), 0);
	readfile_close(&rf);
	unlink(path);
}

/* --snaplen: tcpdump's -s, 0 and large values mean the most; only with -w, not with -r. */
static void test_options_snaplen(void **state)
{
	static struct opts o;
	char err[512];

	(void)state;
	assert_int_equal(parse(&o, err, sizeof(err), 3, "-w", "x.pcapng"), OPTS_RUN);
	assert_int_equal(o.snaplen, 0);
	assert_int_equal(parse(&o, err, sizeof(err), 5, "-w", "x", "--snaplen", "200"), OPTS_RUN);
	assert_int_equal(o.snaplen, 200);
	assert_int_equal(parse(&o, err, sizeof(err), 4, "-w", "x", "--snaplen=0"), OPTS_RUN);
	assert_int_equal(o.snaplen, PKT_SNAP_MAX);
	assert_int_equal(parse(&o, err, sizeof(err), 4, "-w", "x", "--snaplen=262144"), OPTS_RUN);
	assert_int_equal(o.snaplen, PKT_SNAP_MAX);
	assert_int_equal(parse(&o, err, sizeof(err), 4, "-w", "x", "--snaplen=1"), OPTS_RUN);
	assert_int_equal(o.snaplen, 1);
	assert_int_equal(parse(&o, err, sizeof(err), 4, "-w", "x", "--snaplen=262145"), OPTS_ERROR);
	assert_non_null(strstr(err, "--snaplen '262145': want bytes from 0 to 262144"));
	assert_int_equal(parse(&o, err, sizeof(err), 4, "-w", "x", "--snaplen=-1"), OPTS_ERROR);
	assert_int_equal(parse(&o, err, sizeof(err), 4, "-w", "x", "--snaplen=1x"), OPTS_ERROR);
	assert_int_equal(parse(&o, err, sizeof(err), 3, "--snaplen", "200"), OPTS_ERROR);
	assert_non_null(strstr(err, "add -w FILE"));
	assert_int_equal(parse(&o, err, sizeof(err), 5, "-r", "x", "--snaplen", "200"), OPTS_ERROR);
	assert_non_null(strstr(err, "not to -r"));
	/* -s stays the scope, as before. */
	assert_int_equal(parse(&o, err, sizeof(err), 5, "-w", "x", "-s", "comm=a"), OPTS_RUN);
	assert_int_equal(o.snaplen, 0);
}

static enum opts_result parse(struct opts *o, char *err, size_t cap, int argc, ...)
{
	char *argv[16] = {"pktrace"};
	FILE *ef = fmemopen(err, cap, "w");
	enum opts_result r;
	va_list ap;

	va_start(ap, argc);
	for (int i = 1; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	memset(err, 0, cap);
	r = opts_parse(o, argc, argv, stdout, ef);
	if (r == OPTS_RUN)
		r = opts_check_files(o, ef);
	fclose(ef);
	return r;
}

/* -w and -r on the command line, and what they leave to -F and -o. */
static void test_options(void **state)
{
	static struct opts o;
	char err[512];

	(void)state;
	assert_int_equal(parse(&o, err, sizeof(err), 3, "-w", "x.pcapng"), OPTS_RUN);
	assert_string_equal(o.write_path, "x.pcapng");
	assert_false(o.text_given);
	assert_int_equal(parse(&o, err, sizeof(err), 4, "--write=-", "-o", "e.json"), OPTS_RUN);
	assert_string_equal(o.write_path, "-");
	assert_true(o.text_given);
	assert_int_equal(parse(&o, err, sizeof(err), 5, "-w", "-", "-F", "json"), OPTS_ERROR);
	assert_non_null(strstr(err, "-w - writes pcapng to standard output"));
	assert_int_equal(parse(&o, err, sizeof(err), 3, "-w", ""), OPTS_ERROR);
	assert_non_null(strstr(err, "empty file name"));
	assert_int_equal(parse(&o, err, sizeof(err), 5, "-r", "in.pcap", "-e", "network_events"),
			 OPTS_RUN);
	assert_string_equal(o.read_path, "in.pcap");
	assert_int_equal(parse(&o, err, sizeof(err), 5, "-r", "in.pcap", "--", "curl"),
			 OPTS_ERROR);
	assert_non_null(strstr(err, "no command"));
	assert_int_equal(parse(&o, err, sizeof(err), 2, "-r"), OPTS_ERROR);
	assert_non_null(strstr(err, "needs an argument"));
}

/* -s on a file's processes: as the kernel side applies it. */
static void test_scope_match(void **state)
{
	struct scope s = {0};
	char err[128];

	(void)state;
	assert_true(scope_match(&s, 1, "x", 0));
	assert_int_equal(scope_parse(&s, "comm=curl,nginx", err, sizeof(err)), 0);
	assert_int_equal(scope_parse(&s, "uid=33", err, sizeof(err)), 0);
	assert_true(scope_match(&s, 7, "nginx", 33));
	assert_false(scope_match(&s, 7, "nginx", 0));
	assert_false(scope_match(&s, 7, "", 33));
	assert_int_equal(scope_parse(&s, "pid=7", err, sizeof(err)), 0);
	assert_true(scope_match(&s, 7, "curl", 33));
	assert_false(scope_match(&s, 8, "curl", 33));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_block),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_interface_overflow),
		cmocka_unit_test(test_packet_no_room),
		cmocka_unit_test(test_comment_parse),
		cmocka_unit_test(test_link_types),
		cmocka_unit_test(test_unsupported_link),
		cmocka_unit_test(test_damaged_files),
		cmocka_unit_test(test_closed_pipe),
		cmocka_unit_test(test_record_bytes),
		cmocka_unit_test(test_record_bytes_snap),
		cmocka_unit_test(test_round_trip_snap),
		cmocka_unit_test(test_options_snaplen),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_scope_match),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
