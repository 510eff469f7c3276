/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Text helpers shared by the printers (internal to the output layer). */
#ifndef PKTRACE_OUTPUT_FMT_H
#define PKTRACE_OUTPUT_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the well-formed UTF-8 sequence at s (Unicode table 3-7), or 0 if there is none. */
size_t utf8_len(const unsigned char *s, size_t n);
/* The code point of the well-formed sequence of length l (from utf8_len) at s. */
uint32_t utf8_cp(const unsigned char *s, size_t l);
/*
 * Unicode format characters (category Cf: bidi controls, zero-width characters, tags, ...) and
 * the line and paragraph separators: invisible, yet they reorder, hide or break a line.
 */
bool is_format_char(uint32_t cp);
/* Dotted-quad text of a (network order) into buf (at least 15 bytes); returns its length. */
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

#endif /* PKTRACE_OUTPUT_FMT_H */
