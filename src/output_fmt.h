/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Text helpers shared by the printers (internal to the output layer). */
#ifndef PKTRACE_OUTPUT_FMT_H
#define PKTRACE_OUTPUT_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence at s (Unicode table 3-7), or 0 if there is none. */
size_t utf8_len(const unsigned char *s, size_t n);
/* The code point of the well-formed sequence of length l (from utf8_len) at s. */
uint32_t utf8_cp(const unsigned char *s, size_t l);
/*
 * Unicode format characters (category Cf: bidi controls, zero-width characters, tags, ...) and
 * the line and paragraph separators: invisible, yet they reorder, hide or break a line.
 */
bool is_format_char(uint32_t cp);
/* Dotted-quad text of a (network order) into buf (at least 16 bytes: it may write one past
 * the text); returns its length. */
size_t fmt_ipv4(char *buf, const uint8_t *a);

/*
 * An IP protocol's name as Tracee writes it (gopacket's IPProtocol names: "TCP", "UDP",
 * "ICMPv4", "ICMPv6", "IPv6HopByHop", "IPSecESP", ...), or, where gopacket says
 * "UnknownIPProtocol", its number in decimal into buf (at least 4 bytes). Returns the name.
 */
const char *fmt_ip_proto(uint8_t proto, char *buf);
/*
 * An ICMP (family AF_INET) or ICMPv6 type and code as Tracee writes them (gopacket's TypeCode
 * names): "EchoRequest", "DestinationUnreachable(Port)", "TimeExceeded(Code: 9)", and "3(7)"
 * for a type it does not name. buf holds at least 64 bytes; returns the length.
 */
size_t fmt_icmp_typecode(char *buf, int family, uint8_t type, uint8_t code);

/* Lines built unchecked where there is room for the longest one (see line_start). */
struct line {
	char *p;
	/* Columns a wide value pushed the line right by; later padding absorbs it to realign. */
	size_t debt;
};

/*
 * Short copies inline, eight bytes a step then byte by byte: a libc call per column costs more
 * than the column itself.
 */
static inline void line_mem(struct line *l, const char *s, size_t n)
{
	for (; n >= 8; n -= 8, s += 8, l->p += 8)
		memcpy(l->p, s, 8);
	while (n--)
		*l->p++ = *s++;
}

static inline void line_spaces(struct line *l, size_t n)
{
	for (; n >= 8; n -= 8, l->p += 8)
		memcpy(l->p, "        ", 8);
	while (n--)
		*l->p++ = ' ';
}

/*
 * Where a line is built: straight in dst when it has room for the longest line (max), else in
 * the caller's local buffer, copied out by line_end only if it fits.
 */
static inline char *line_start(char *dst, size_t cap, char *local, size_t max)
{
	return cap >= max ? dst : local;
}

/* The line's length, once it is in dst; 0 when it does not fit in cap (dst untouched). */
static inline size_t line_end(char *dst, size_t cap, const char *start, const struct line *l)
{
	size_t n = (size_t)(l->p - start);

	if (start == dst)
		return n;
	if (n > cap)
		return 0;
	memcpy(dst, start, n);
	return n;
}

/* The padding a column of cols characters gets to reach width, less what earlier ones owe. */
static inline size_t line_pad(struct line *l, size_t width, size_t cols)
{
	size_t pad;

	if (cols >= width) {
		l->debt += cols - width;
		return 0;
	}
	pad = width - cols;
	if (pad > l->debt) {
		pad -= l->debt;
		l->debt = 0;
		return pad;
	}
	l->debt -= pad;
	return 0;
}

/* Left pad for a right-aligned column, right pad for a left-aligned one; sep adds one space. */
static inline void line_col(struct line *l, const char *s, size_t n, size_t width, size_t cols,
			   bool right, bool sep)
{
	size_t pad = line_pad(l, width, cols);

	if (right)
		line_spaces(l, pad);
	line_mem(l, s, n);
	if (!right && sep)
		line_spaces(l, pad);
	if (sep)
		*l->p++ = ' ';
}

/* "00" "01" .. "99": two digits per division, half the dependent multiplies of one per digit. */
extern const char dec_pairs[200];

/* How many decimal digits v has, from its bit length: no division loop. */
static inline size_t dec_len(uint64_t v)
{
	static const uint64_t pow10[20] = {
		1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
		100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL,
		10000000000000ULL, 100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
		100000000000000000ULL, 1000000000000000000ULL, 10000000000000000000ULL,
	};
	/* v | 1 has as many digits as v, and 0 gets one; 1233 / 4096 is just above log10(2). */
	uint64_t w = v | 1;
	size_t t = ((size_t)(64 - __builtin_clzll(w)) * 1233) >> 12;

	return t + (w >= pow10[t]);
}

/* The decimal digits of v, ending just before end (back to front, two at a time). */
static inline void dec_put(char *end, uint64_t v)
{
	uint32_t s, r;

	while (v > UINT32_MAX) {
		r = (uint32_t)(v % 100);
		v /= 100;
		end -= 2;
		end[0] = dec_pairs[2 * r];
		end[1] = dec_pairs[2 * r + 1];
	}
	/* 32-bit divisions from here on: most values (ports, seq, pid) start here. */
	s = (uint32_t)v;
	while (s >= 100) {
		r = s % 100;
		s /= 100;
		end -= 2;
		end[0] = dec_pairs[2 * r];
		end[1] = dec_pairs[2 * r + 1];
	}
	if (s >= 10) {
		end[-2] = dec_pairs[2 * s];
		end[-1] = dec_pairs[2 * s + 1];
	} else {
		end[-1] = (char)('0' + s);
	}
}

/* Decimal digits of v into buf (at least 20 bytes), no NUL; returns their number. */
static inline size_t fmt_u64(char *buf, uint64_t v)
{
	size_t n = dec_len(v);

	dec_put(buf + n, v);
	return n;
}

/* A left-aligned column whose n bytes (cols characters) were just written in place at l->p. */
static inline void line_col_here(struct line *l, size_t n, size_t width, size_t cols, bool sep)
{
	l->p += n;
	line_spaces(l, line_pad(l, width, cols));
	if (sep)
		*l->p++ = ' ';
}

/* A right-aligned number, its digits made in place. */
static inline void line_num(struct line *l, uint64_t v, size_t width, bool sep)
{
	size_t n = dec_len(v);

	line_spaces(l, line_pad(l, width, n));
	l->p += n;
	dec_put(l->p, v);
	if (sep)
		*l->p++ = ' ';
}

/* Whether two short strings are equal: a byte loop costs less than the call to strcmp. */
static inline bool same_str(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

/* A string literal: its length known, no scan for its end. */
#define line_lit(l, s) line_mem((l), (s), sizeof(s) - 1)

static inline void line_str(struct line *l, const char *s)
{
	while (*s)
		*l->p++ = *s++;
}

static inline void line_u(struct line *l, uint64_t v)
{
	l->p += fmt_u64(l->p, v);
}

/*
 * Copy comm for a terminal as ps does: control and format characters and ill-formed UTF-8
 * become '?' (out holds n bytes). Returns the byte length; *cols gets the number of characters.
 */
size_t sanitize_comm(char *out, const char *comm, size_t n, size_t *cols);
/* tcpdump's [S.], [none] for no flag; buf holds at least 12 bytes. Returns the length. */
size_t fmt_flags(char *buf, uint16_t flags);
/* HH:MM:SS.uuuuuu (15 bytes, no NUL) in local time, like tcpdump. */
void fmt_time(char *buf, uint64_t ts_ns);
/* tcpdump's " options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7]", in wire order. */
struct tcp_opts;
bool line_tcp_opts(struct line *l, const struct tcp_opts *o, uint16_t flags);
/*
 * Text made from a process's fields (and a 64-bit extra key the printer chooses), kept per
 * thread id: an owner's packets come many at a time, and the same fields (the names compared
 * by content, as a slot behind a pointer may be reused) give the same bytes. One cache per
 * printer, per thread.
 */
#define PROC_TEXT_SLOTS 64 /* power of two */
#define PROC_NAME_MAX 64   /* a host name or container id longer than this is never kept */
#define PROC_TEXT_MAX 512

struct pkt_process;
struct proc_text {
	uint32_t pid, tid, ppid, uid;
	uint64_t cgroup_id, extra;
	char comm[17];
	char hostname[PROC_NAME_MAX + 1];
	char container_id[PROC_NAME_MAX + 1];
	size_t len; /* 0: empty */
	char text[PROC_TEXT_MAX];
};

struct proc_text_cache {
	struct proc_text slot[PROC_TEXT_SLOTS];
};

/* The text kept for p and extra; NULL: none. */
const struct proc_text *proc_text_get(struct proc_text_cache *c, const struct pkt_process *p,
				      uint64_t extra);
/* Keep text[0..n) for p and extra (not kept when too long, or its names are). */
void proc_text_put(struct proc_text_cache *c, const struct pkt_process *p, uint64_t extra,
		   const char *text, size_t n);

/*
 * Text a printer made from a TCP packet's headers (not its process, time or direction), kept
 * for the last two packets: on loopback a packet is two events in a row or nearly (the
 * sender's egress, the receiver's ingress) that print the same there. Only the common shape:
 * no extension headers, and no options or NOP NOP timestamps (the table prints their order).
 * The key is every header field any printer shows, the interface and length, and an extra word
 * the printer chooses; the text is two parts (a printer puts what differs between them).
 */
#define PKT_TEXT_MAX 1024

struct pkt_event;
struct pkt_text_key {
	uint8_t src[16], dst[16];
	uint32_t family, packet_len, seq, ack, ts_val, ts_ecr;
	uint16_t sport, dport, flags, window, checksum, urgent;
	uint8_t data_offset, opts_present, order_n; /* order_n: none, or NOP NOP TS */
	char ifname[18];
	uint64_t extra;
};

struct pkt_text {
	struct pkt_text_key key;
	uint16_t len_a, len_b; /* text[0..len_a), then len_b more; len_a 0: empty */
	char text[PKT_TEXT_MAX];
};

/*
 * Cold after PKT_TEXT_COLD look-ups in a row found nothing: then, of the packets of the shape
 * kept, one in PKT_TEXT_PROBE is a probe, looked up and kept with the two after it (a pair's
 * halves may have one packet between them, as the two slots allow), and the rest are neither;
 * a look-up that finds its text makes it warm again. Traffic of one event per packet (the other
 * side untraced, or on an interface of another name) then pays for 3 keys and copies in 10
 * packets instead of every one.
 */
#define PKT_TEXT_COLD 32
#define PKT_TEXT_PROBE 8 /* power of two */
_Static_assert(PKT_TEXT_COLD >= 3 && !(PKT_TEXT_PROBE & (PKT_TEXT_PROBE - 1)),
	       "a probe's window is 3 look-ups; probes by a mask");

struct pkt_text_cache {
	struct pkt_text slot[2];
	unsigned int next;
	unsigned int misses;  /* look-ups in a row that found nothing, up to PKT_TEXT_COLD */
	unsigned int skipped; /* packets passed over while cold, ever (the probes' count) */
};

/* e's key (false: not a packet of the shape kept, or c is cold and e is no probe). */
bool pkt_text_key_of(struct pkt_text_cache *c, const struct pkt_event *e, uint64_t extra,
		     struct pkt_text_key *k);
/* The text kept for k; NULL: none. */
const struct pkt_text *pkt_text_get(struct pkt_text_cache *c, const struct pkt_text_key *k);
/* Keep a[0..na) and b[0..nb) for k, over the older slot (not kept when too long). */
void pkt_text_put(struct pkt_text_cache *c, const struct pkt_text_key *k, const char *a,
		  size_t na, const char *b, size_t nb);

/* 1023B, 1.5KiB, 12.0MiB; 850ns, 120us, 12.3ms, 1.50s. */
int fmt_bytes(char *buf, size_t cap, uint64_t v);
int fmt_duration(char *buf, size_t cap, uint64_t ns);

#endif /* PKTRACE_OUTPUT_FMT_H */
