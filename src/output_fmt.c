// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "event.h"
#include "events.h"

#include "output_fmt.h"

const char dec_pairs[200] = "0001020304050607080910111213141516171819"
			    "2021222324252627282930313233343536373839"
			    "4041424344454647484950515253545556575859"
			    "6061626364656667686970717273747576777879"
			    "8081828384858687888990919293949596979899";

size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char b = s[0];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (b < 0x80)
		return 1;
	if (b >= 0xc2 && b <= 0xdf)
		len = 2;
	else if (b >= 0xe0 && b <= 0xef)
		len = 3;
	else if (b >= 0xf0 && b <= 0xf4)
		len = 4;
	else
		return 0;
	if (b == 0xe0)
		lo = 0xa0;
	else if (b == 0xed)
		hi = 0x9f;
	else if (b == 0xf0)
		lo = 0x90;
	else if (b == 0xf4)
		hi = 0x8f;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

uint32_t utf8_cp(const unsigned char *s, size_t l)
{
	static const unsigned char lead_mask[5] = {0, 0x7f, 0x1f, 0x0f, 0x07};
	uint32_t cp = s[0] & lead_mask[l < 5 ? l : 0];
	size_t i;

	for (i = 1; i < l && i < 4; i++)
		cp = cp << 6 | (s[i] & 0x3f);
	return cp;
}

/* Category Cf as of Unicode 15.1, plus U+2028 and U+2029; sorted for the binary search. */
static const struct {
	uint32_t lo, hi;
} format_chars[] = {
	{0x00ad, 0x00ad},   {0x0600, 0x0605},   {0x061c, 0x061c},   {0x06dd, 0x06dd},
	{0x070f, 0x070f},   {0x0890, 0x0891},   {0x08e2, 0x08e2},   {0x180e, 0x180e},
	{0x200b, 0x200f},   {0x2028, 0x202e},   {0x2060, 0x2064},   {0x2066, 0x206f},
	{0xfeff, 0xfeff},   {0xfff9, 0xfffb},   {0x110bd, 0x110bd}, {0x110cd, 0x110cd},
	{0x13430, 0x1343f}, {0x1bca0, 0x1bca3}, {0x1d173, 0x1d17a}, {0xe0001, 0xe0001},
	{0xe0020, 0xe007f},
};

bool is_format_char(uint32_t cp)
{
	size_t lo = 0, hi = sizeof(format_chars) / sizeof(format_chars[0]), mid;

	if (cp < 0xad)
		return false;
	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (cp < format_chars[mid].lo)
			hi = mid;
		else if (cp > format_chars[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

/* Each octet's digits (at most three) and, in its last byte, how many: made once, at load. */
static char octet_text[256][4];

__attribute__((constructor)) static void octet_text_init(void)
{
	unsigned int v;
	char *o;
	size_t n;

	for (v = 0; v < 256; v++) {
		o = octet_text[v];
		n = 0;
		if (v >= 100)
			o[n++] = (char)('0' + v / 100);
		if (v >= 10)
			o[n++] = (char)('0' + v / 10 % 10);
		o[n++] = (char)('0' + v % 10);
		o[3] = (char)n;
	}
}

/* inet_ntop formats IPv4 through sprintf (about 200 ns); the dotted quad is simple enough.
 * Each octet is one four-byte copy from the table, its spare bytes overwritten by the next. */
size_t fmt_ipv4(char *buf, const uint8_t *a)
{
	size_t n = 0;
	int i;

	for (i = 0; i < 4; i++) {
		memcpy(buf + n, octet_text[a[i]], 4);
		n += (size_t)octet_text[a[i]][3];
		buf[n++] = '.';
	}
	return n - 1;
}

const char *fmt_ip_proto(uint8_t proto, char *buf)
{
	/* gopacket's layers/enums.go, IPProtocolMetadata: IPIP is "IPv4" too, ESP and AH are
	 * IPSec's, MPLS-in-IP is "MPLS". */
	static const char *const names[256] = {
		[0] = "IPv6HopByHop", [1] = "ICMPv4",     [2] = "IGMP",        [4] = "IPv4",
		[6] = "TCP",          [17] = "UDP",       [27] = "RUDP",       [41] = "IPv6",
		[43] = "IPv6Routing", [44] = "IPv6Fragment", [47] = "GRE",     [50] = "IPSecESP",
		[51] = "IPSecAH",     [58] = "ICMPv6",    [59] = "NoNextHeader",
		[60] = "IPv6Destination", [89] = "OSPF",  [94] = "IPv4",       [97] = "EtherIP",
		[112] = "VRRP",       [132] = "SCTP",     [136] = "UDPLite",   [137] = "MPLS",
	};

	if (names[proto])
		return names[proto];
	snprintf(buf, 4, "%u", proto);
	return buf;
}

/* A type's name and, where the type uses its code, the codes' names (NULL: codes unnamed). */
struct icmp_name {
	const char *type;
	const char *const *codes;
	size_t n_codes;
};

#define CODES(...) (const char *const[]){ __VA_ARGS__ }, \
	sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *)

static const struct icmp_name icmp4_names[] = {
	[0] = { "EchoReply", NULL, 0 },
	[3] = { "DestinationUnreachable",
		CODES("Net", "Host", "Protocol", "Port", "FragmentationNeeded",
		      "SourceRoutingFailed", "NetUnknown", "HostUnknown", "SourceIsolated",
		      "NetAdminProhibited", "HostAdminProhibited", "NetTOS", "HostTOS",
		      "CommAdminProhibited", "HostPrecedence", "PrecedenceCutoff") },
	[4] = { "SourceQuench", NULL, 0 },
	[5] = { "Redirect", CODES("Net", "Host", "TOS+Net", "TOS+Host") },
	[8] = { "EchoRequest", NULL, 0 },
	[9] = { "RouterAdvertisement", NULL, 0 },
	[10] = { "RouterSolicitation", NULL, 0 },
	[11] = { "TimeExceeded", CODES("TTLExceeded", "FragmentReassemblyTimeExceeded") },
	[12] = { "ParameterProblem", CODES("BadHeader", "MissingOption") },
	[13] = { "TimestampRequest", NULL, 0 },
	[14] = { "TimestampReply", NULL, 0 },
	[15] = { "InfoRequest", NULL, 0 },
	[16] = { "InfoReply", NULL, 0 },
	[17] = { "AddressMaskRequest", NULL, 0 },
	[18] = { "AddressMaskReply", NULL, 0 },
};

static const struct icmp_name icmp6_names[] = {
	[1] = { "DestinationUnreachable",
		CODES("NoRouteToDst", "AdminProhibited", "BeyondScopeOfSrc", "AddressUnreachable",
		      "PortUnreachable", "SrcAddressFailedPolicy", "RejectRouteToDst") },
	[2] = { "PacketTooBig", NULL, 0 },
	[3] = { "TimeExceeded", CODES("HopLimitExceeded", "FragmentReassemblyTimeExceeded") },
	[4] = { "ParameterProblem",
		CODES("ErroneousHeaderField", "UnrecognizedNextHeader", "UnrecognizedIPv6Option") },
	[128] = { "EchoRequest", NULL, 0 },
	[129] = { "EchoReply", NULL, 0 },
	[133] = { "RouterSolicitation", NULL, 0 },
	[134] = { "RouterAdvertisement", NULL, 0 },
	[135] = { "NeighborSolicitation", NULL, 0 },
	[136] = { "NeighborAdvertisement", NULL, 0 },
	[137] = { "Redirect", NULL, 0 },
};

size_t fmt_icmp_typecode(char *buf, int family, uint8_t type, uint8_t code)
{
	const struct icmp_name *tab = family == AF_INET6 ? icmp6_names : icmp4_names;
	size_t n = family == AF_INET6 ? sizeof(icmp6_names) / sizeof(icmp6_names[0])
				      : sizeof(icmp4_names) / sizeof(icmp4_names[0]);
	const struct icmp_name *t = type < n && tab[type].type ? &tab[type] : NULL;
	int len;

	if (!t)
		len = snprintf(buf, 64, "%u(%u)", type, code);
	else if (!t->codes && !code)
		len = snprintf(buf, 64, "%s", t->type);
	else if (t->codes && code < t->n_codes)
		len = snprintf(buf, 64, "%s(%s)", t->type, t->codes[code]);
	else
		len = snprintf(buf, 64, "%s(Code: %u)", t->type, code);
	return len < 0 ? 0 : (size_t)len;
}



/*
 * Copy comm for a terminal as ps does: control characters (C0, DEL, C1), format characters
 * (bidi controls, zero-width characters: see is_format_char) and ill-formed UTF-8 become '?',
 * so a hostile name can neither break the line, send escape sequences, reorder the columns on
 * screen nor hide. Returns the byte length; *cols gets the number of characters.
 */
size_t sanitize_comm(char *out, const char *comm, size_t n, size_t *cols)
{
	const unsigned char *u = (const unsigned char *)comm;
	size_t i = 0, o = 0, l, c = 0;

	/* The count stays local: stores through out could alias *cols and keep it in memory. */
	while (i < n) {
		/* Printable ASCII, what nearly every name is: copied, no decoding. */
		if (u[i] >= 0x20 && u[i] < 0x7f) {
			out[o++] = (char)u[i++];
			c++;
			continue;
		}
		l = utf8_len(u + i, n - i);
		/* U+0080..U+009F (C2 80..C2 9F) are C1 controls: CSI among them. */
		if (l == 0 || (l == 1 && (u[i] < 0x20 || u[i] == 0x7f)) ||
		    (l == 2 && u[i] == 0xc2 && u[i + 1] < 0xa0) ||
		    (l >= 2 && is_format_char(utf8_cp(u + i, l)))) {
			out[o++] = '?';
			i += l ? l : 1;
		} else {
			memcpy(out + o, u + i, l);
			o += l;
			i += l;
		}
		c++;
	}
	*cols = c;
	return o;
}

/* In tcpdump's order (print-tcp.c tcp_flag_values), with N for NS where tcpdump puts AE. */
static const struct {
	uint16_t bit;
	char ch;
} flag_chars[] = {
	{TCP_FLAG_FIN, 'F'}, {TCP_FLAG_SYN, 'S'}, {TCP_FLAG_RST, 'R'},
	{TCP_FLAG_PSH, 'P'}, {TCP_FLAG_ACK, '.'}, {TCP_FLAG_URG, 'U'},
	{TCP_FLAG_ECE, 'E'}, {TCP_FLAG_CWR, 'W'}, {TCP_FLAG_NS, 'N'},
};

size_t fmt_flags(char *buf, uint16_t flags)
{
	size_t n = 0, i;

	buf[n++] = '[';
	for (i = 0; i < sizeof(flag_chars) / sizeof(flag_chars[0]); i++)
		if (flags & flag_chars[i].bit)
			buf[n++] = flag_chars[i].ch;
	/* tcpdump prints [none] for a segment without flags. */
	if (n == 1) {
		memcpy(buf + n, "none", 4);
		n += 4;
	}
	buf[n++] = ']';
	return n;
}

/*
 * HH:MM:SS.uuuuuu in local time, like tcpdump. localtime_r is costly next to the rest of the
 * line, and an offset from UTC is whole seconds, so the last second's HH:MM:SS is reused.
 */
void fmt_time(char *buf, uint64_t ts_ns)
{
	static _Thread_local time_t last_sec = (time_t)-1;
	static _Thread_local char last_hms[8] = "??:??:??";
	time_t sec = (time_t)(ts_ns / 1000000000u);
	uint32_t usec = (uint32_t)(ts_ns % 1000000000u / 1000u);
	struct tm tm;
	int i;

	if (sec != last_sec) {
		if (localtime_r(&sec, &tm)) {
			last_hms[0] = (char)('0' + tm.tm_hour / 10);
			last_hms[1] = (char)('0' + tm.tm_hour % 10);
			last_hms[2] = ':';
			last_hms[3] = (char)('0' + tm.tm_min / 10);
			last_hms[4] = (char)('0' + tm.tm_min % 10);
			last_hms[5] = ':';
			/* tm_sec may be 60 on a leap second: still two digits. */
			last_hms[6] = (char)('0' + tm.tm_sec / 10);
			last_hms[7] = (char)('0' + tm.tm_sec % 10);
		} else {
			memcpy(last_hms, "??:??:??", 8);
		}
		last_sec = sec;
	}
	memcpy(buf, last_hms, 8);
	buf[8] = '.';
	for (i = 13; i >= 9; i -= 2) {
		buf[i] = dec_pairs[2 * (usec % 100)];
		buf[i + 1] = dec_pairs[2 * (usec % 100) + 1];
		usec /= 100;
	}
}

/* tcpdump's name of an option kind (print-tcp.c's tcp_option_values), printed before the
 * option's value; NULL: "unknown-KIND". */
static const char *tcp_opt_name(uint8_t kind)
{
	switch (kind) {
	case TCP_KIND_MSS:
		return "mss";
	case TCP_KIND_WSCALE:
		return "wscale";
	case TCP_KIND_SACK_PERM:
		return "sackOK";
	case TCP_KIND_SACK:
		return "sack";
	case 6:
		return "echo";
	case 7:
		return "echoreply";
	case TCP_KIND_TS:
		return "TS";
	case 11:
		return "cc";
	case 12:
		return "ccnew";
	case 13:
		return ""; /* tcpdump's name for it */
	case 20:
		return "scps";
	case 19:
		return "md5";
	case 28:
		return "uto";
	case 29:
		return "tcp-ao";
	case 30:
		return "mptcp";
	case TCP_KIND_TFO:
		return "tfo";
	case TCP_KIND_EXP:
		return "exp";
	}
	return NULL;
}

static void line_hex(struct line *l, const uint8_t *d, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t j;

	for (j = 0; j < n; j++) {
		*l->p++ = hex[d[j] >> 4];
		*l->p++ = hex[d[j] & 0xf];
	}
}

static uint64_t be64_at(const uint8_t *d)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | d[i];
	return v;
}

static uint32_t be32_at(const uint8_t *d)
{
	return (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
}

/* "0x" and v in hex without leading zeros, as printf's %#x would (but 0x0 for 0). */
static void line_hex_u(struct line *l, uint64_t v)
{
	static const char hex[] = "0123456789abcdef";
	int sh = 60;

	line_lit(l, "0x");
	while (sh > 0 && !(v >> sh))
		sh -= 4;
	for (; sh >= 0; sh -= 4)
		*l->p++ = hex[(v >> sh) & 0xf];
}

/* tcpdump's text for an option pktrace's decoder keeps as data (kind, n bytes of it): MD5
 * (RFC 2385; tcpdump cannot check it without the key either), the user timeout (RFC 5482, as
 * tcpdump reads it: the low bit taken for minutes) and TCP-AO (RFC 5925). False: none of these
 * at a length tcpdump reads as pktrace does (it reads a wrong-length MD5 or UTO past its end). */
static bool tcp_opt_named(struct line *l, uint8_t kind, const uint8_t *d, size_t n)
{
	unsigned int v;

	switch (kind) {
	case 19:
		if (n != 16)
			return false;
		line_lit(l, "md5 shared secret not supplied with -M, can't check - ");
		line_hex(l, d, n);
		return true;
	case 28:
		if (n != 2)
			return false;
		v = (unsigned int)d[0] << 8 | d[1];
		line_lit(l, "uto ");
		line_hex_u(l, v);
		*l->p++ = ' ';
		line_u(l, v & 1 ? (v >> 1) * 60 : v >> 1);
		return true;
	case 29:
		if (n < 2) {
			line_lit(l, "tcp-ao (invalid)");
			return true;
		}
		line_lit(l, "tcp-ao keyid ");
		line_u(l, d[0]);
		line_lit(l, " rnextkeyid ");
		line_u(l, d[1]);
		if (n > 2) {
			line_lit(l, " mac 0x");
			line_hex(l, d + 2, n - 2);
		}
		return true;
	}
	return false;
}

/* An MPTCP option (RFC 8684) as tcpdump 4.99 prints it: "mptcp LEN SUBTYPE" and the subtype's
 * fields, for the lengths (and, for some, TCP flags) at which tcpdump reads it whole. d: the n
 * bytes after kind and length (d[0]: the subtype in its high nibble). False: a form tcpdump
 * gives up on, with what it printed before it did ("mptcp" alone under 3 bytes, "mptcp LEN
 * SUBTYPE", a DSS's fields up to the one that does not fit); it then writes "[bad opt]" and
 * ends the line there. Written here: neither libpcap nor any Debian library prints MPTCP
 * options as text. */
static bool line_mptcp(struct line *l, const uint8_t *d, size_t n, uint16_t flags)
{
	static const char *const sub[] = { "capable", "join", "dss", "add-addr", "rem-addr",
					   "prio", "fail", "fast-close", "unknown" };
	const bool syn = flags & TCP_FLAG_SYN, ack = flags & TCP_FLAG_ACK;
	const size_t len = n + 2; /* tcpdump's lengths count kind and length */
	char *name_end, a[INET6_ADDRSTRLEN];
	unsigned int st, f;
	size_t i, k;

	line_lit(l, "mptcp");
	if (n < 1)
		return false;
	st = d[0] >> 4 > 8 ? 8 : d[0] >> 4;
	*l->p++ = ' ';
	line_u(l, len);
	*l->p++ = ' ';
	line_str(l, sub[st]);
	name_end = l->p;
	switch (st) {
	case 0: /* capable */
		if (!((len == 12 || len == 4) && syn) && !((len == 20 || len == 22) && ack && !syn))
			goto bad;
		if ((d[0] & 0xf) > 1) {
			line_lit(l, " Unknown Version (");
			line_u(l, d[0] & 0xf);
			*l->p++ = ')';
			return true;
		}
		line_lit(l, " v");
		line_u(l, d[0] & 0xf);
		if (d[1] & 0x80)
			line_lit(l, " csum");
		if (len == 12 || len >= 20) {
			line_lit(l, " {");
			line_hex_u(l, be64_at(d + 2));
			if (len >= 20) {
				*l->p++ = ',';
				line_hex_u(l, be64_at(d + 10));
			}
			*l->p++ = '}';
		}
		return true;
	case 1: /* join */
		if (!(len == 12 && syn) && !(len == 16 && syn && ack) && !(len == 24 && ack))
			goto bad;
		if (len != 24) {
			if (d[0] & 1)
				line_lit(l, " backup");
			line_lit(l, " id ");
			line_u(l, d[1]);
		}
		if (len == 12) {
			line_lit(l, " token ");
			line_hex_u(l, be32_at(d + 2));
			line_lit(l, " nonce ");
			line_hex_u(l, be32_at(d + 6));
		} else if (len == 16) {
			line_lit(l, " hmac ");
			line_hex_u(l, be64_at(d + 2));
			line_lit(l, " nonce ");
			line_hex_u(l, be32_at(d + 10));
		} else {
			line_lit(l, " hmac 0x");
			line_hex(l, d + 2, 20);
		}
		return true;
	case 2: /* dss: tcpdump checks each field's room only once it has named it */
		if (len < 4 || syn)
			goto bad;
		f = d[1];
		k = 2; /* the next field's offset in d */
		if (f & 0x10)
			line_lit(l, " fin");
		if (f & 0x01) { /* a data ACK, of 8 bytes with flag a */
			line_lit(l, " ack ");
			if (n < k + (f & 0x02 ? 8 : 4))
				return false;
			line_u(l, f & 0x02 ? be64_at(d + k) : be32_at(d + k));
			k += f & 0x02 ? 8 : 4;
		}
		if (f & 0x04) { /* a mapping: DSN (8 bytes with flag m), SSN, length, checksum */
			line_lit(l, " seq ");
			if (n < k + (f & 0x08 ? 8 : 4))
				return false;
			line_u(l, f & 0x08 ? be64_at(d + k) : be32_at(d + k));
			k += f & 0x08 ? 8 : 4;
			if (n < k + 4)
				return false;
			line_lit(l, " subseq ");
			line_u(l, be32_at(d + k));
			k += 4;
			if (n < k + 2)
				return false;
			line_lit(l, " len ");
			line_u(l, (unsigned int)d[k] << 8 | d[k + 1]);
			k += 2;
			if (n - k >= 2) {
				line_lit(l, " csum ");
				line_hex_u(l, (unsigned int)d[k] << 8 | d[k + 1]);
				k += 2;
			}
		}
		return k == n;
	case 3: /* add-addr: IPv4 or IPv6, a port or not, a MAC or not */
		if (len != 8 && len != 10 && len != 16 && len != 18 && len != 20 && len != 22 &&
		    len != 28 && len != 30)
			goto bad;
		switch (d[0] & 0xf) {
		case 6:
			line_lit(l, " v0-ip6");
			break;
		case 4:
			line_lit(l, " v0-ip4");
			break;
		case 1:
			line_lit(l, " v1-echo");
			break;
		case 0:
			line_lit(l, " v1");
			break;
		default:
			line_lit(l, " [bad version/echo]");
			break;
		}
		line_lit(l, " id ");
		line_u(l, d[1]);
		k = len < 20 ? 4 : 16;
		*l->p++ = ' ';
		if (!inet_ntop(k == 4 ? AF_INET : AF_INET6, d + 2, a, sizeof(a)))
			goto bad;
		line_str(l, a);
		if (len == 10 || len == 18 || len == 22 || len == 30) {
			*l->p++ = ':';
			line_u(l, (unsigned int)d[2 + k] << 8 | d[3 + k]);
		}
		if (len == 16 || len == 28 || len == 18 || len == 30) {
			line_lit(l, " hmac ");
			line_hex_u(l, be64_at(d + n - 8));
		}
		return true;
	case 4: /* rem-addr: a list of address ids */
		if (len < 4)
			goto bad;
		line_lit(l, " id");
		for (i = 1; i < n; i++) {
			*l->p++ = ' ';
			line_u(l, d[i]);
		}
		return true;
	case 5: /* prio */
		if (len != 3 && len != 4)
			goto bad;
		line_str(l, d[0] & 1 ? " backup" : " non-backup");
		if (len == 4) {
			line_lit(l, " id ");
			line_u(l, d[1]);
		}
		return true;
	case 6: /* fail */
	case 7: /* fast-close */
		if (len != 12)
			goto bad;
		if (st == 6) {
			line_lit(l, " seq ");
			line_u(l, be64_at(d + 2));
		} else {
			line_lit(l, " key ");
			line_hex_u(l, be64_at(d + 2));
		}
		return true;
	default:
		return true;
	}
bad:
	l->p = name_end;
	return false;
}

/* A TFO cookie after the option's name, as tcpdump: " cookiereq", " (invalid)" (a length odd or
 * outside 4 to 16) or " cookie HEX"; n of its len bytes at d. */
static void line_tfo(struct line *l, const uint8_t *d, size_t len, size_t n)
{
	if (!len)
		line_lit(l, " cookiereq");
	else if (len % 2 || len < 4 || len > 16)
		line_lit(l, " (invalid)");
	else {
		line_lit(l, " cookie ");
		line_hex(l, d, n);
	}
}

/* tcpdump's names of option kinds (print-tcp.c); NULL: "unknown-K". */
static const char *tcpdump_opt_name(uint8_t kind)
{
	static const char *const names[35] = {
		[0] = "eol", [1] = "nop", [2] = "mss", [3] = "wscale", [4] = "sackOK", [5] = "sack",
		[6] = "echo", [7] = "echoreply", [8] = "TS", [11] = "cc", [12] = "ccnew",
		[13] = "", [19] = "md5", [20] = "scps", [28] = "uto", [29] = "tcp-ao",
		[30] = "mptcp", [34] = "tfo",
	};

	if (kind == TCP_KIND_EXP)
		return "exp";
	return kind < 35 ? names[kind] : NULL;
}

/*
 * The options as tcpdump 4.99 walks them (print-tcp.c), for those pktrace's decoder reads
 * otherwise (a malformed one) or not at all (unknown kinds): a length below 2 or past the
 * header ends the line at "[bad opt]"; a kind of a fixed size reads that many bytes of what is
 * left of the header whatever its length says, and moves on by them, then "[len N]" when its
 * length differs. b: the n option bytes. True: the line ends here. Written here: no library
 * prints TCP options as tcpdump does.
 */
static bool line_tcp_opts_raw(struct line *l, const uint8_t *b, size_t n, uint16_t flags)
{
	size_t at = 0, hlen = n, len, datalen, i;
	const uint8_t *d;
	const char *name;
	uint8_t opt;
	bool after = false; /* an option was printed whole: a comma before the next */

	line_lit(l, " options [");
	while (hlen > 0) {
		if (after)
			*l->p++ = ',';
		opt = b[at++];
		if (opt == TCP_KIND_EOL || opt == TCP_KIND_NOP) {
			len = 1;
		} else {
			/* Past the header: tcpdump reads the payload's first byte, too short or too
			 * long for what is left either way. */
			len = at < n ? b[at] : 0;
			at++;
			if (len < 2 || len > hlen)
				goto bad;
			hlen--;
		}
		hlen--;
		d = b + at;
		datalen = 0;
		name = tcpdump_opt_name(opt);
		if (opt != 30 && opt != 19 && opt != 28 && opt != 29) {
			if (name) {
				line_str(l, name);
			} else {
				line_lit(l, "unknown-");
				line_u(l, opt);
			}
		}
		switch (opt) {
		case TCP_KIND_MSS:
		case 20: /* SCPS */
		case 28: /* UTO */
			datalen = 2;
			if (datalen > hlen) {
				if (opt == 28)
					line_lit(l, "uto");
				goto bad;
			}
			if (opt == 28) {
				tcp_opt_named(l, opt, d, 2);
			} else if (opt == 20) {
				line_lit(l, " cap ");
				line_hex(l, d, 1);
				line_lit(l, " id ");
				line_u(l, d[1]);
			} else {
				*l->p++ = ' ';
				line_u(l, (unsigned int)d[0] << 8 | d[1]);
			}
			break;
		case TCP_KIND_WSCALE:
			datalen = 1;
			if (datalen > hlen)
				goto bad;
			*l->p++ = ' ';
			line_u(l, d[0]);
			break;
		case TCP_KIND_SACK:
			datalen = len - 2;
			if (datalen % 8) {
				line_lit(l, " invalid sack");
				break;
			}
			*l->p++ = ' ';
			line_u(l, datalen / 8);
			*l->p++ = ' ';
			for (i = 0; i < datalen; i += 8) {
				*l->p++ = '{';
				line_u(l, be32_at(d + i));
				*l->p++ = ':';
				line_u(l, be32_at(d + i + 4));
				*l->p++ = '}';
			}
			break;
		case 6: /* echo, echoreply, cc, ccnew, ccecho: one 32-bit value */
		case 7:
		case 11:
		case 12:
		case 13:
			datalen = 4;
			if (datalen > hlen)
				goto bad;
			*l->p++ = ' ';
			line_u(l, be32_at(d));
			break;
		case TCP_KIND_TS:
			datalen = 8;
			if (datalen > hlen)
				goto bad;
			line_lit(l, " val ");
			line_u(l, be32_at(d));
			line_lit(l, " ecr ");
			line_u(l, be32_at(d + 4));
			break;
		case 19: /* MD5 signature: 16 bytes */
			datalen = 16;
			if (datalen > hlen) {
				line_lit(l, "md5");
				goto bad;
			}
			tcp_opt_named(l, opt, d, 16);
			break;
		case 29:
			datalen = len - 2;
			tcp_opt_named(l, opt, d, datalen);
			break;
		case 30:
			datalen = len - 2;
			if (!line_mptcp(l, d, datalen, flags))
				goto bad;
			break;
		case TCP_KIND_TFO:
			datalen = len - 2;
			*l->p++ = ' ';
			line_tfo(l, d, datalen, datalen);
			break;
		case TCP_KIND_EXP:
			datalen = len - 2;
			if (datalen < 2)
				goto bad;
			*l->p++ = '-';
			if (d[0] == 0xf9 && d[1] == 0x89) {
				line_lit(l, "tfo");
				line_tfo(l, d + 2, datalen - 2, datalen - 2);
			} else {
				line_hex(l, d, 2);
			}
			break;
		case TCP_KIND_EOL:
		case TCP_KIND_NOP:
		case TCP_KIND_SACK_PERM:
			break;
		default:
			datalen = len - 2;
			if (datalen)
				line_lit(l, " 0x");
			line_hex(l, d, datalen);
			break;
		}
		at += datalen;
		hlen -= datalen;
		datalen += opt == TCP_KIND_EOL || opt == TCP_KIND_NOP ? 1 : 2;
		if (datalen != len) {
			line_lit(l, "[len ");
			line_u(l, len);
			*l->p++ = ']';
		}
		after = true;
		if (opt == TCP_KIND_EOL)
			break;
	}
	*l->p++ = ']';
	return false;
bad:
	line_lit(l, "[bad opt]");
	if (after)
		*l->p++ = ']';
	return true;
}

/* tcpdump's options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], in wire order; flags: the
 * segment's TCP flags (what an MPTCP option may be depends on them). True: the line ends here,
 * as tcpdump's does at an MPTCP option it cannot read or an RFC 6994 experiment without room
 * for its magic ("[bad opt]", then "]" only if another option came before). */
bool line_tcp_opts(struct line *l, const struct tcp_opts *o, uint16_t flags)
{
	size_t i, j, u = 0;

	if (o->raw_len && !o->cut)
		return line_tcp_opts_raw(l, o->raw, o->raw_len < TCP_OPTS_MAX_LEN ? o->raw_len :
							    TCP_OPTS_MAX_LEN, flags);
	line_lit(l, " options [");
	for (i = 0; i < o->order_n && i < TCP_OPTS_MAX_LEN; i++) {
		if (i)
			*l->p++ = ',';
		switch (o->order[i]) {
		case TCP_KIND_EOL:
			line_lit(l, "eol");
			break;
		case TCP_KIND_NOP:
			line_lit(l, "nop");
			break;
		case TCP_KIND_MSS:
			line_lit(l, "mss ");
			line_u(l, o->mss);
			break;
		case TCP_KIND_WSCALE:
			line_lit(l, "wscale ");
			line_u(l, o->wscale);
			break;
		case TCP_KIND_SACK_PERM:
			line_lit(l, "sackOK");
			break;
		case TCP_KIND_SACK:
			line_lit(l, "sack ");
			line_u(l, o->sack_n);
			*l->p++ = ' ';
			for (j = 0; j < o->sack_n && j < TCP_OPTS_SACK_MAX; j++) {
				*l->p++ = '{';
				line_u(l, o->sack[j][0]);
				*l->p++ = ':';
				line_u(l, o->sack[j][1]);
				*l->p++ = '}';
			}
			break;
		case TCP_KIND_TS:
			line_lit(l, "TS val ");
			line_u(l, o->ts_val);
			line_lit(l, " ecr ");
			line_u(l, o->ts_ecr);
			break;
		case TCP_KIND_TFO:
			/* tcpdump's: its name, then " cookiereq", " cookie HEX" or " (invalid)"
			 * (a cookie of an odd length, or outside 4 to 16 bytes); kind 34 with a
			 * space between, the experimental form as "exp-tfo". */
			line_str(l, o->tfo_exp ? "exp-tfo" : "tfo ");
			line_tfo(l, o->tfo_cookie, o->tfo_len,
				 o->tfo_len < TCP_OPTS_COOKIE_MAX ? o->tfo_len : TCP_OPTS_COOKIE_MAX);
			break;
		default: {
			/* Unknown options are in wire order too: the next one is this one. As
			 * tcpdump: an RFC 6994 experiment (254) by its magic, any other kind with
			 * its data in hex. */
			const uint8_t *d;
			size_t n;

			if (u >= o->unknown_n || u >= TCP_OPTS_UNKNOWN_MAX) {
				line_lit(l, "unknown-");
				line_u(l, o->order[i]);
				break;
			}
			d = o->unknown_data + o->unknown[u].data;
			n = o->unknown[u].len - 2u;
			if (o->unknown[u].data + n > TCP_OPTS_MAX_LEN)
				n = 0;
			if (o->unknown[u].kind == 30) {
				if (line_mptcp(l, d, n, flags)) {
					u++;
					break;
				}
				goto give_up;
			}
			if (tcp_opt_named(l, o->unknown[u].kind, d, n)) {
				u++;
				break;
			}
			if (o->unknown[u].kind == TCP_KIND_EXP && n < 2) {
				/* No room for a magic: tcpdump gives up there. */
				line_lit(l, "exp");
				goto give_up;
			}
			if (o->unknown[u].kind == TCP_KIND_EXP) {
				line_lit(l, "exp-");
				line_hex(l, d, 2);
				u++;
				break;
			}
			line_lit(l, "unknown-");
			line_u(l, o->unknown[u++].kind);
			if (n)
				line_lit(l, " 0x");
			line_hex(l, d, n);
			break;
		}
		}
	}
	if (o->cut) {
		/* tcpdump's mark where the capture ended: after the option's name when its kind
		 * and length were captured (tcpdump prints some of a cut option's value, pktrace
		 * none), alone when they were not; no "]". */
		if (o->order_n)
			*l->p++ = ',';
		if (o->cut == TCP_CUT_IN_OPTION) {
			const char *name = tcp_opt_name(o->cut_kind);

			if (name) {
				line_str(l, name);
			} else {
				line_lit(l, "unknown-");
				line_u(l, o->cut_kind);
			}
			line_lit(l, " [|tcp]");
		} else {
			line_lit(l, " [|tcp]");
		}
		return false;
	}
	*l->p++ = ']';
	if (o->malformed)
		line_lit(l, " [bad opt]");
	return false;
give_up:
	/* tcpdump's end of the line at an option it gives up on: "]" only after another one. */
	line_lit(l, "[bad opt]");
	if (i)
		*l->p++ = ']';
	return true;
}

/* 1023B, 1.5KiB, 12.0MiB: one decimal past a KiB. */
int fmt_bytes(char *buf, size_t cap, uint64_t v)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB" };
	double d = (double)v;
	int i = -1;

	if (v < 1024)
		return snprintf(buf, cap, "%lluB", (unsigned long long)v);
	while (d >= 1024 && i < 3) {
		d /= 1024;
		i++;
	}
	return snprintf(buf, cap, "%.1f%s", d, unit[i]);
}

/* 850ns, 120us, 12.3ms, 1.50s */
int fmt_duration(char *buf, size_t cap, uint64_t ns)
{
	if (ns < 1000)
		return snprintf(buf, cap, "%lluns", (unsigned long long)ns);
	if (ns < 1000000)
		return snprintf(buf, cap, "%lluus", (unsigned long long)(ns / 1000));
	if (ns < 1000000000)
		return snprintf(buf, cap, "%.1fms", ns / 1e6);
	return snprintf(buf, cap, "%.2fs", ns / 1e9);
}

const struct proc_text *proc_text_get(struct proc_text_cache *c, const struct pkt_process *p,
				      uint64_t extra)
{
	const struct proc_text *t = &c->slot[p->tid & (PROC_TEXT_SLOTS - 1)];

	if (t->len && t->tid == p->tid && t->pid == p->pid && t->ppid == p->ppid &&
	    t->uid == p->uid && t->cgroup_id == p->cgroup_id && t->extra == extra &&
	    !memcmp(t->comm, p->comm, sizeof(t->comm)) && same_str(t->hostname, p->hostname) &&
	    same_str(t->container_id, p->container_id))
		return t;
	return NULL;
}

void proc_text_put(struct proc_text_cache *c, const struct pkt_process *p, uint64_t extra,
		   const char *text, size_t n)
{
	struct proc_text *t = &c->slot[p->tid & (PROC_TEXT_SLOTS - 1)];

	if (n > PROC_TEXT_MAX || !n || strlen(p->hostname) > PROC_NAME_MAX ||
	    strlen(p->container_id) > PROC_NAME_MAX)
		return;
	t->pid = p->pid;
	t->tid = p->tid;
	t->ppid = p->ppid;
	t->uid = p->uid;
	t->cgroup_id = p->cgroup_id;
	t->extra = extra;
	memcpy(t->comm, p->comm, sizeof(t->comm));
	strcpy(t->hostname, p->hostname);
	strcpy(t->container_id, p->container_id);
	memcpy(t->text, text, n);
	t->len = n;
}

bool pkt_text_key_of(struct pkt_text_cache *c, const struct pkt_event *e, uint64_t extra,
		     struct pkt_text_key *k)
{
	const struct pkt_headers *h = &e->hdr;
	const struct tcp_opts *o = &h->opts;

	if (e->event != EVENT_NET_PACKET_TCP || h->l4_error || h->ext_count ||
	    o->unknown_n || o->malformed || o->cut)
		return false;
	if (o->order_n && (o->order_n != 3 || o->order[0] != TCP_KIND_NOP ||
			   o->order[1] != TCP_KIND_NOP || o->order[2] != TCP_KIND_TS))
		return false;
	if (c->misses >= PKT_TEXT_COLD) {
		if (++c->skipped & (PKT_TEXT_PROBE - 1))
			return false;
		/* A probe: it and the two packets after it are looked up. */
		c->misses = PKT_TEXT_COLD - 3;
	}
	memset(k, 0, sizeof(*k));
	memcpy(k->src, h->src_addr, sizeof(k->src));
	memcpy(k->dst, h->dst_addr, sizeof(k->dst));
	k->family = (uint32_t)h->family;
	k->packet_len = e->packet_len;
	k->seq = h->seq;
	k->ack = h->ack;
	k->ts_val = o->ts_val;
	k->ts_ecr = o->ts_ecr;
	k->sport = h->src_port;
	k->dport = h->dst_port;
	k->flags = h->flags;
	k->window = h->window;
	k->checksum = h->checksum;
	k->urgent = h->urgent;
	k->data_offset = h->data_offset;
	k->opts_present = o->present;
	k->order_n = o->order_n;
	memcpy(k->ifname, e->ifname, sizeof(e->ifname));
	k->extra = extra;
	return true;
}

const struct pkt_text *pkt_text_get(struct pkt_text_cache *c, const struct pkt_text_key *k)
{
	/* seq and ack first, inline: they tell most packets apart before any call. */
	for (int i = 0; i < 2; i++)
		if (c->slot[i].len_a && c->slot[i].key.seq == k->seq &&
		    c->slot[i].key.ack == k->ack && !memcmp(&c->slot[i].key, k, sizeof(*k))) {
			c->misses = 0;
			return &c->slot[i];
		}
	c->misses += c->misses < PKT_TEXT_COLD;
	return NULL;
}

void pkt_text_put(struct pkt_text_cache *c, const struct pkt_text_key *k, const char *a,
		  size_t na, const char *b, size_t nb)
{
	struct pkt_text *t;

	if (!na || na + nb > PKT_TEXT_MAX)
		return;
	t = &c->slot[c->next++ & 1];
	t->key = *k;
	t->len_a = (uint16_t)na;
	t->len_b = (uint16_t)nb;
	memcpy(t->text, a, na);
	if (nb)
		memcpy(t->text + na, b, nb);
}
