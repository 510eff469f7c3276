/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* pcapng as pktrace writes and reads it: block and option codes, the packet comment's keys. */
#ifndef PKTRACE_PCAPNG_H
#define PKTRACE_PCAPNG_H

#include <stdint.h>

#define PCAPNG_SHB 0x0A0D0D0Au
#define PCAPNG_IDB 0x00000001u
#define PCAPNG_OPB 0x00000002u /* obsolete packet block */
#define PCAPNG_SPB 0x00000003u
#define PCAPNG_EPB 0x00000006u
#define PCAPNG_BOM 0x1A2B3C4Du

#define PCAPNG_OPT_END 0
#define PCAPNG_OPT_COMMENT 1
#define PCAPNG_SHB_USERAPPL 4
#define PCAPNG_IF_NAME 2
#define PCAPNG_IF_DESCRIPTION 3
#define PCAPNG_IF_TSRESOL 9
#define PCAPNG_EPB_FLAGS 2
#define PCAPNG_EPB_INBOUND 1u  /* epb_flags bits 0-1: the direction */
#define PCAPNG_EPB_OUTBOUND 2u

/* LINKTYPE_RAW: packets begin at the IP header, as a record's hdr[] does. */
#define PCAPNG_LINKTYPE_RAW 101

/* if_description of an interface in another network namespace than pktrace's: "netns N". */
#define PCAPNG_NETNS_PREFIX "netns "

/*
 * The packet comment: one "key: value" line per field, in this order; values are escaped
 * (backslash as \\, any byte outside printable ASCII as \xHH) so a comm cannot fake a line.
 */
#define PCAPNG_KEY_PID "pid"
#define PCAPNG_KEY_TID "tid"
#define PCAPNG_KEY_PPID "ppid"
#define PCAPNG_KEY_UID "uid"
#define PCAPNG_KEY_COMM "comm"
#define PCAPNG_KEY_CONTAINER "container_id"
#define PCAPNG_KEY_HOST "hostname"
#define PCAPNG_KEY_CGROUP "cgroup_id"
#define PCAPNG_KEY_SOCK "sk_proto" /* the socket's class (pkt_record.sk_proto) */
#define PCAPNG_KEY_EVENTS "events" /* the selected events the packet was, ","-separated */

#endif /* PKTRACE_PCAPNG_H */
