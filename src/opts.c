// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "filter.h"
#include "opts.h"
#include "pktrace.h"

#define PKTRACE_VERSION "0.1.0"

static const char usage[] =
	"Usage: pktrace [OPTIONS] [EXPRESSION] [-- COMMAND [ARG...]]\n"
	"Trace TCP packets together with the process that sent or received them.\n"
	"EXPRESSION is a tcpdump (pcap-filter) expression, evaluated in the kernel; it sees\n"
	"packets from their IP header on (no link layer); inbound and outbound name the hook.\n"
	"\n"
	"  -e, --events LIST      events and sets of events to emit, comma-separated, repeatable\n"
	"                         (default net_packet_tcp); --list shows them\n"
	"      --list             print the events, their sets, arguments and kernel hooks, and\n"
	"                         exit; as JSON with -F json\n"
	"  -F, --format FMT       table (default), text (tcpdump's line with the process in\n"
	"                         front) or json\n"
	"  -i, --interface IFACE  only packets on IFACE of pktrace's network namespace (any: all)\n"
	"  -Q, --direction DIR    in, out or inout (default): packets received, sent or both\n"
	"  -c, --count N          exit after N events are written\n"
	"      --once             a loopback packet once, at egress, not again at ingress\n"
	"  -n                     accepted for tcpdump's sake: names are never resolved\n"
	"  -o, --output FILE      write events to FILE instead of stdout\n"
	"  -s, --scope EXPR       which processes to trace; repeatable; keys: pid=N[,N..]\n"
	"                         comm=NAME[,NAME..] (the thread's or its process's name)\n"
	"                         uid=N[,N..]; values of one key are ORed, different keys ANDed\n"
	"      --hold-time SEC    how long packets of an accepted connection wait for the process\n"
	"                         that takes it before they go out with the acceptor or the\n"
	"                         listener's owner (default 2, at most 60); one whose handshake\n"
	"                         completed waits on for accept(), up to 120 s\n"
	"      --hold-packets N   packets held at once at most (default 65536)\n"
	"      --hold-bytes N     bytes held at once at most, suffix k or M (default 32M)\n"
	"      --order-window USEC  hold events up to USEC microseconds to write them in timestamp\n"
	"                         order (default 2000, at most 1000000; 0: as the kernel hands\n"
	"                         them over)\n"
	"      --order-hold USEC  how long later events wait, to stay in order, behind a packet\n"
	"                         of an accepted connection that no process has taken yet\n"
	"                         (default 50000, at most 2000000; 0: they do not wait)\n"
	"  -w, --write FILE       write the packets as pcapng to FILE ('-': stdout), with each\n"
	"                         packet's process as its comment; events are printed too only\n"
	"                         with -F or -o\n"
	"      --snaplen N        -w keeps N bytes of each packet, headers included, so the\n"
	"                         payload shows (tcpdump's -s); 0 or more than 4096: 4096, the\n"
	"                         most pktrace keeps; headers are kept whole (default: headers only)\n"
	"  -r, --read FILE        print the events of a pcap or pcapng file ('-': stdin) instead of\n"
	"                         tracing (no root needed); process fields from pktrace's comments\n"
	"  -B, --buffer-size KIB  kernel ring buffers in KiB, split between the CPUs, each rounded\n"
	"                         up to a power of two (default 8192, but at least 1024 a CPU;\n"
	"                         from 64 to 1048576); packet events add half as much\n"
	"                         again (64 KiB to 2 MiB a CPU) for the common packet records\n"
	"  -Z, --relinquish-privileges USER\n"
	"                         after loading, run as USER with no capabilities (default\n"
	"                         nobody); -o FILE is opened as USER; -Z root keeps root\n"
	"      --dump-filter      print EXPRESSION's classic BPF (libpcap's) and the eBPF it is\n"
	"                         translated to, per direction, and exit\n"
	"  -- COMMAND [ARG...]    start COMMAND, trace it and every process it forks from its\n"
	"                         first packet on; exit when it exits, after draining, with its\n"
	"                         exit status (126: it cannot be run, 127: not found)\n"
	"  -h, --help             show this help and exit\n"
	"  -V, --version          show the version and exit\n"
	"\n"
	"Examples:\n"
	"  pktrace -s comm=nginx,curl -s uid=33 -F json -o packets.json\n"
	"  pktrace -s comm=nginx 'tcp port 80 and not host 10.0.0.1'\n"
	"  pktrace -e network_events 'udp or icmp' -- dig example.com\n"
	"  pktrace -- curl -s https://example.com/\n"
	"  pktrace -Z \"$SUDO_USER\" -o ~/packets.txt   # a file the calling user owns\n";

/* Long-only options: values outside the range of short option characters. */
enum {
	OPT_HOLD_TIME = 0x100,
	OPT_HOLD_PACKETS,
	OPT_HOLD_BYTES,
	OPT_LIST,
	OPT_ONCE,
	OPT_DUMP_FILTER,
	OPT_ORDER_WINDOW,
	OPT_ORDER_HOLD,
	OPT_SNAPLEN,
};

static const struct option long_opts[] = {
	{ "events", required_argument, NULL, 'e' },
	{ "format", required_argument, NULL, 'F' },
	{ "output", required_argument, NULL, 'o' },
	{ "write", required_argument, NULL, 'w' },
	{ "read", required_argument, NULL, 'r' },
	{ "scope", required_argument, NULL, 's' },
	{ "hold-time", required_argument, NULL, OPT_HOLD_TIME },
	{ "hold-packets", required_argument, NULL, OPT_HOLD_PACKETS },
	{ "hold-bytes", required_argument, NULL, OPT_HOLD_BYTES },
	{ "order-window", required_argument, NULL, OPT_ORDER_WINDOW },
	{ "order-hold", required_argument, NULL, OPT_ORDER_HOLD },
	{ "buffer-size", required_argument, NULL, 'B' },
	{ "relinquish-privileges", required_argument, NULL, 'Z' },
	{ "list", no_argument, NULL, OPT_LIST },
	{ "interface", required_argument, NULL, 'i' },
	{ "direction", required_argument, NULL, 'Q' },
	{ "count", required_argument, NULL, 'c' },
	{ "once", no_argument, NULL, OPT_ONCE },
	{ "dump-filter", no_argument, NULL, OPT_DUMP_FILTER },
	{ "snaplen", required_argument, NULL, OPT_SNAPLEN },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* '+': stop at the first non-option so the command's own options are left alone. */
static const char short_opts[] = "+:e:F:o:s:B:Z:i:Q:c:w:r:nhV";

__attribute__((format(printf, 2, 3)))
static enum opts_result error(FILE *err, const char *fmt, ...)
{
	va_list ap;

	fputs("pktrace: ", err);
	va_start(ap, fmt);
	vfprintf(err, fmt, ap);
	va_end(ap);
	fputc('\n', err);
	fflush(err);
	return OPTS_ERROR;
}

/* -e LIST: event and set names from the catalogue; the first -e replaces the default. */
static enum opts_result parse_events(struct opts *o, const char *list, FILE *err)
{
	const struct event_def *ev;
	const struct event_set_def *set;
	const char *v = list, *end;
	char known[256];
	event_mask members;
	size_t len;

	if (!o->events_given) {
		o->events = 0;
		o->events_given = 1;
	}
	event_known_names(known, sizeof(known));
	for (;;) {
		end = strchr(v, ',');
		len = end ? (size_t)(end - v) : strlen(v);
		if (len == 0)
			return error(err, "-e '%s': empty event name (known: %s)", list, known);
		if ((ev = event_by_name(v, len))) {
			o->events |= EVENT_BIT(ev->id);
		} else if ((set = event_set_by_name(v, len))) {
			members = event_set_members(set->bit);
			if (!members)
				return error(err, "-e '%s': set '%s' has no event yet (%s: %s "
					     "are not implemented yet); see --list", list, set->name,
					     set->what, set->pending ? set->pending : "none");
			o->events |= members;
		} else {
			return error(err, "unknown event '%.*s' (known: %s)", (int)len, v, known);
		}
		if (!end)
			break;
		v = end + 1;
	}
	return OPTS_RUN;
}

/* A count with an optional k/M suffix, within [min, max]; -1 when it is not one. */
static long long parse_count(const char *s, long long min, long long max)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || v < 0)
		return -1;
	if (*end == 'k' || *end == 'K') {
		if (v > max / 1024)
			return -1;
		v *= 1024, end++;
	} else if (*end == 'M' || *end == 'm') {
		if (v > max / (1024 * 1024))
			return -1;
		v *= 1024 * 1024, end++;
	}
	if (*end || v < min || v > max)
		return -1;
	return v;
}

/* Microseconds from 0 to max: digits only, no k or M suffix as for counts; -1: not that. */
static int parse_us(const char *s, long long max, unsigned long long *v)
{
	long long n = s[strspn(s, "0123456789")] ? -1 : parse_count(s, 0, max);

	if (n < 0)
		return -1;
	*v = (unsigned long long)n;
	return 0;
}

/* -B: KiB as tcpdump takes it, rounded up to the power of two the ring buffer needs. */
static int parse_ringbuf(struct opts *o, const char *s)
{
	unsigned long long kib, bytes = 1;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	kib = strtoull(s, &end, 10);
	if (errno || *end || kib < OPTS_RINGBUF_MIN_KIB || kib > OPTS_RINGBUF_MAX_KIB)
		return -1;
	while (bytes < kib * 1024)
		bytes <<= 1;
	o->ringbuf_bytes = bytes;
	return 0;
}

/* -w and -r: where capture files go and come from, and what they leave to -F and -o. */
static enum opts_result parse_file_opt(struct opts *o, int c, const char *arg, FILE *err)
{
	if (!*arg)
		return error(err, "-%c: empty file name ('-' for %s)", c,
			     c == 'w' ? "standard output" : "standard input");
	if (c == 'w')
		o->write_path = arg;
	else
		o->read_path = arg;
	return OPTS_RUN;
}

/* The directory a path is in, made absolute, and its last name: for a file not there yet. */
static int canonical(const char *path, char *out, size_t len)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX], real[PATH_MAX];

	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) + 1 : 1, slash ? path : ".");
	if (!realpath(dir, real))
		return -1;
	return snprintf(out, len, "%s/%s", real, slash ? slash + 1 : path) >= (int)len ? -1 : 0;
}

/* What a file option names: "-" is the standard stream (fd), anything else a path. */
static int file_stat(const char *path, int fd, struct stat *st)
{
	return strcmp(path, "-") ? stat(path, st) : fstat(fd, st);
}

/*
 * Whether two file options are one file ("-": the standard stream a_fd or b_fd): by device and
 * inode when both exist (a standard stream only as a regular file, `-r - < F -w F`; two paths
 * as anything but a character device, which /dev/null twice is), else by canonical path.
 */
static int same_file(const char *a, int a_fd, const char *b, int b_fd)
{
	struct stat sa, sb;
	char ca[PATH_MAX + 256], cb[PATH_MAX + 256];
	bool stream;

	if (!a || !b)
		return 0;
	stream = !strcmp(a, "-") || !strcmp(b, "-");
	if (!file_stat(a, a_fd, &sa) && !file_stat(b, b_fd, &sb))
		return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino &&
		       (stream ? S_ISREG(sa.st_mode) : !S_ISCHR(sa.st_mode));
	if (!strcmp(a, "-") || !strcmp(b, "-"))
		return 0;
	return !strcmp(a, b) ||
	       (!canonical(a, ca, sizeof(ca)) && !canonical(b, cb, sizeof(cb)) && !strcmp(ca, cb));
}

enum opts_result opts_check_files(const struct opts *o, FILE *err)
{
	int text_stdout = !o->output_path || !strcmp(o->output_path, "-");

	if (o->write_path && !strcmp(o->write_path, "-") && o->text_given && text_stdout)
		return error(err, "-w - writes pcapng to standard output: send the events "
			     "elsewhere with -o FILE");
	if (o->live_only && o->read_path)
		return error(err, "%s applies to live capture, not to -r", o->live_only);
	if (o->snaplen && !o->write_path)
		return error(err, "--snaplen sets what -w keeps of a packet: add -w FILE");
	if (o->read_path && o->command)
		return error(err, "-r reads a file: no command to run ('%s')", o->command[0]);
	/* Opening an output truncates it: never the file being read, nor the other output. */
	if (same_file(o->read_path, STDIN_FILENO, o->write_path, STDOUT_FILENO) ||
	    same_file(o->read_path, STDIN_FILENO, o->output_path, STDOUT_FILENO) ||
	    (o->read_path && !o->output_path && (!o->write_path || o->text_given) &&
	     same_file(o->read_path, STDIN_FILENO, "-", STDOUT_FILENO)))
		return error(err, "-r '%s' is also an output: it would be overwritten while read",
			     o->read_path);
	if (o->text_given && !o->output_path && same_file(o->write_path, STDOUT_FILENO, "-",
							  STDOUT_FILENO))
		return error(err, "-w '%s' is also standard output, where the events go: give them "
			     "their own file with -o", o->write_path);
	if (same_file(o->write_path, STDOUT_FILENO, o->output_path, STDOUT_FILENO))
		return error(err, "-w and -o name the same file '%s': give each its own",
			     o->write_path);
	return OPTS_RUN;
}

/* Name the option getopt complained about: the long form when that is what was typed. */
static const char *typed_option(char **argv, int idx, int optopt, char *buf, size_t len)
{
	const char *arg = idx > 0 ? argv[idx] : NULL;

	if (arg && arg[0] == '-' && arg[1] == '-') {
		snprintf(buf, len, "%.*s", (int)strcspn(arg, "="), arg);
		return buf;
	}
	snprintf(buf, len, "-%c", optopt);
	return buf;
}

enum opts_result opts_parse(struct opts *o, int argc, char **argv, FILE *out, FILE *err)
{
	char scope_err[256], name[64];
	int c, before, end, list = 0;

	memset(o, 0, sizeof(*o));
	o->format = OUTPUT_TABLE;
	o->events = EVENT_BIT(EVENT_NET_PACKET_TCP);
	o->hold_time = 2.0;
	o->hold_packets = 65536;
	o->hold_bytes = 32 * 1024 * 1024;
	o->order_window_us = OPTS_ORDER_WINDOW_US;
	o->order_hold_us = OPTS_ORDER_HOLD_US;
	o->user = OPTS_DEFAULT_USER;
	o->directions = OPTS_DIR_IN | OPTS_DIR_OUT;
	if (argc < 1)
		return OPTS_RUN;

	/* 0, not 1: glibc then also forgets its state inside grouped short options. */
	optind = 0;
	opterr = 0;
	for (;;) {
		/* After optind = 0 glibc starts at 1; used below to tell "--" from a positional. */
		before = optind ? optind : 1;
		c = getopt_long(argc, argv, short_opts, long_opts, NULL);
		if (c == -1)
			break;
		switch (c) {
		case 'e':
			if (parse_events(o, optarg, err) != OPTS_RUN)
				return OPTS_ERROR;
			break;
		case 'F':
			o->text_given = 1;
			if (!strcmp(optarg, "table"))
				o->format = OUTPUT_TABLE;
			else if (!strcmp(optarg, "json"))
				o->format = OUTPUT_JSON;
			else if (!strcmp(optarg, "text"))
				o->format = OUTPUT_TEXT;
			else
				return error(err, "-F: unknown format '%s' (use table, text or json)",
					     optarg);
			break;
		case 'i':
			o->live_only = "-i";
			if (!*optarg || strlen(optarg) >= 16)
				return error(err, "-i '%s': want an interface name (any: all)", optarg);
			o->interface = strcmp(optarg, "any") ? optarg : NULL;
			break;
		case 'Q':
			o->live_only = "-Q";
			o->directions = !strcmp(optarg, "in")    ? OPTS_DIR_IN :
					!strcmp(optarg, "out")   ? OPTS_DIR_OUT :
					!strcmp(optarg, "inout") ? OPTS_DIR_IN | OPTS_DIR_OUT : 0;
			if (!o->directions)
				return error(err, "-Q '%s': want in, out or inout", optarg);
			break;
		case 'c': {
			long long v = parse_count(optarg, 1, 1LL << 62);

			if (v < 0)
				return error(err, "-c '%s': want a count of events, at least 1", optarg);
			o->count = (unsigned long long)v;
			break;
		}
		case 'n':
			break;
		case OPT_ONCE:
			o->live_only = "--once";
			o->once = 1;
			break;
		case OPT_SNAPLEN: {
			long long v = parse_count(optarg, 0, 262144);

			o->live_only = "--snaplen";
			if (v < 0)
				return error(err, "--snaplen '%s': want bytes from 0 to 262144 (0: the "
					     "most, %d)", optarg, PKT_SNAP_MAX);
			o->snaplen = v && v < PKT_SNAP_MAX ? (unsigned int)v : PKT_SNAP_MAX;
			break;
		}
		case 'o':
			if (!*optarg)
				return error(err, "-o: empty file name");
			o->output_path = optarg;
			o->text_given = 1;
			break;
		case 's':
			if (scope_parse(&o->scope, optarg, scope_err, sizeof(scope_err)))
				return error(err, "-s '%s': %s", optarg, scope_err);
			break;
		case OPT_HOLD_TIME: {
			char *end;

			o->live_only = "--hold-time";
			errno = 0;
			o->hold_time = strtod(optarg, &end);
			if (errno || end == optarg || *end || !isfinite(o->hold_time) ||
			    o->hold_time < 0 || o->hold_time > 60)
				return error(err, "--hold-time '%s': want seconds from 0 to 60", optarg);
			break;
		}
		case OPT_ORDER_WINDOW:
			o->live_only = "--order-window";
			if (parse_us(optarg, 1000000, &o->order_window_us))
				return error(err, "--order-window '%s': want microseconds from 0 to "
					     "1000000", optarg);
			break;
		case OPT_ORDER_HOLD:
			o->live_only = "--order-hold";
			if (parse_us(optarg, 2000000, &o->order_hold_us))
				return error(err, "--order-hold '%s': want microseconds from 0 to "
					     "2000000", optarg);
			break;
		case OPT_HOLD_PACKETS: {
			long long v = parse_count(optarg, 1, 1 << 24);

			o->live_only = "--hold-packets";
			if (v < 0)
				return error(err, "--hold-packets '%s': want a count from 1 to 16M",
					     optarg);
			o->hold_packets = v;
			break;
		}
		case 'B':
			o->live_only = "-B";
			if (parse_ringbuf(o, optarg) != 0)
				return error(err, "-B '%s': want a ring buffer size in KiB from %llu "
					     "to %llu (rounded up to a power of two)", optarg,
					     OPTS_RINGBUF_MIN_KIB, OPTS_RINGBUF_MAX_KIB);
			break;
		case 'Z':
			o->live_only = "-Z";
			if (!*optarg)
				return error(err, "-Z: empty user name (-Z root keeps root)");
			o->user = optarg;
			o->user_given = 1;
			break;
		case OPT_HOLD_BYTES: {
			long long v = parse_count(optarg, 4096, 1LL << 32);

			o->live_only = "--hold-bytes";
			if (v < 0)
				return error(err, "--hold-bytes '%s': want bytes from 4k to 4096M",
					     optarg);
			o->hold_bytes = v;
			break;
		}
		case 'w':
		case 'r':
			if (parse_file_opt(o, c, optarg, err) != OPTS_RUN)
				return OPTS_ERROR;
			break;
		case OPT_LIST:
			list = 1;
			break;
		case OPT_DUMP_FILTER:
			o->dump_filter = 1;
			break;
		case 'h':
			fputs(usage, out);
			fflush(out);
			return OPTS_EXIT;
		case 'V':
			fputs("pktrace " PKTRACE_VERSION "\n", out);
			fflush(out);
			return OPTS_EXIT;
		case ':':
			return error(err, "option '%s' needs an argument",
				     typed_option(argv, optind - 1, optopt, name, sizeof(name)));
		case '?':
		default:
			/* A known option with optopt set here was given "--help=x"-style. */
			if (optopt == 'h' || optopt == 'V' || optopt == OPT_LIST || optopt == OPT_ONCE ||
			    optopt == OPT_DUMP_FILTER)
				return error(err, "option '%s' takes no argument",
					     typed_option(argv, optind - 1, optopt, name,
							  sizeof(name)));
			if (optopt)
				return error(err, "unknown option '-%c' (see --help)", optopt);
			return error(err, "unknown option '%s' (see --help)",
				     typed_option(argv, optind - 1, optopt, name, sizeof(name)));
		}
	}

	if (list) {
		/* After the loop: -F may follow --list. Nothing is traced, so a command is a mistake. */
		if (optind < argc)
			return error(err, "--list takes no command or argument ('%s')", argv[optind]);
		events_list(out, o->format == OUTPUT_JSON);
		return OPTS_EXIT;
	}
	if (optind >= argc) {
		if (optind > before)
			return error(err, "no command after --");
		return o->dump_filter ? error(err, "--dump-filter needs an expression") : OPTS_RUN;
	}
	/* getopt stepped over a "--" only if it advanced optind on its final call. */
	if (optind > before) {
		o->command = &argv[optind];
		return o->dump_filter ? error(err, "--dump-filter needs an expression") : OPTS_RUN;
	}
	/* Words up to a "--" are the filter expression, joined as tcpdump joins them. */
	for (end = optind; end < argc && strcmp(argv[end], "--"); end++)
		;
	if (end < argc && end + 1 >= argc)
		return error(err, "no command after --");
	o->filter_expr = filter_join(&argv[optind], end - optind);
	if (!o->filter_expr)
		return error(err, "out of memory");
	if (!o->filter_expr[strspn(o->filter_expr, " \t\n")]) {
		/* an empty expression, as tcpdump takes it: no filter */
		free(o->filter_expr);
		o->filter_expr = NULL;
	}
	if (end < argc)
		o->command = &argv[end + 1];
	return OPTS_RUN;
}
