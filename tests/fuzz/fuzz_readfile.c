// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target for -r: the input is a whole capture file (pcap or pcapng, any link type),
 * read as pktrace reads it (libpcap through the IDB filter, the pcapng walker fed by the filter), each
 * event printed as JSON and as a table line and written back as pcapng. A malformed file must end
 * in an error or fewer packets, never a crash; __builtin_trap() marks a broken invariant.
 * Build and run: make fuzz (see the Makefile); seeds in tests/fuzz/corpus_readfile.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "decode.h"
#include "output.h"
#include "readfile.h"

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_readfile: invariant failed at %s:%d: %s\n",          \
				__FILE__, __LINE__, #cond);                                        \
			__builtin_trap();                                                          \
		}                                                                                  \
	} while (0)

#define MAX_EVENTS 4096 /* libpcap reads a packet per block: the input bounds this anyway */

static char line[8192];
#define DATA_MAX 65536
static char block[DATA_MAX + 8192];
static struct pcapng_ifaces ifs;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct readfile rf = {0};
	struct pkt_event e;
	struct pkt_bytes b;
	FILE *a;
	int fd, ret, n = 0;
	size_t len;

	if (!size)
		return 0;
	memset(&e, 0, sizeof(e));
	/* A memfd, not fmemopen: the filter reads a descriptor through its own buffer, as for a
	 * file or a pipe (a stream without one takes another path). */
	fd = memfd_create("fuzz_readfile", MFD_CLOEXEC);
	CHECK(fd >= 0 && write(fd, data, size) == (ssize_t)size && !lseek(fd, 0, SEEK_SET));
	a = fdopen(fd, "rb");
	CHECK(a);
	ret = readfile_fopen(&rf, a);
	if (ret) {
		CHECK(rf.err[0]);
		readfile_close(&rf);
		return 0;
	}
	memset(&ifs, 0, sizeof(ifs));
	while ((ret = readfile_next(&rf, &e, &b)) == 1 && n++ < MAX_EVENTS) {
		CHECK(b.len <= size);
		CHECK(memchr(e.proc.comm, 0, sizeof(e.proc.comm)));
		CHECK(memchr(e.ifname, 0, sizeof(e.ifname)));
		CHECK(e.proc.hostname && e.proc.container_id);
		CHECK(strlen(e.proc.hostname) < sizeof(rf.host));
		CHECK(decode_packet_events(&e) != 0);
		for (int id = 0; id < EVENT__COUNT; id++) {
			if (!(decode_packet_events(&e) & EVENT_BIT(id)))
				continue;
			e.event = id;
			len = format_json(line, sizeof(line), &e);
			CHECK(len > 0 && line[len - 1] == '\n');
			/* The table prints TCP packets (any other event id it takes for a flow). */
			if (id != EVENT_NET_PACKET_TCP)
				continue;
			len = format_table(line, sizeof(line), &e);
			CHECK(len > 0 && line[len - 1] == '\n');
		}
		if (b.len <= DATA_MAX) {
			len = format_pcapng_packet(block, sizeof(block), &ifs, &e,
						   decode_packet_events(&e), &b);
			CHECK(len > 0 && len % 4 == 0);
		}
	}
	CHECK(ret == 1 || ret == 0 || (ret == -EIO && rf.err[0]));
	CHECK(rf.st.events <= rf.st.packets);
	readfile_close(&rf);
	return 0;
}
