// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* pktrace: process-aware TCP packet tracer. Data flows capture -> decode -> enrich -> output. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "capture.h"
#include "decode.h"
#include "enrich.h"
#include "filter.h"
#include "filter_bpf.h"
#include "hold.h"
#include "opts.h"
#include "order.h"
#include "owners.h"
#include "output.h"
#include "readfile.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define POLL_MS 100
/* While records come: the fast rings wake nobody, so the reader comes back well before they
 * fill (2 MiB each by default: 16 384 records, 20 ms of 800 000 packets a second on a CPU) and
 * their records spill into the BPF ring buffers, which cost the kernel side more. Not sooner:
 * each pass costs the reader a wakeup and its caches, warm again. */
#define BUSY_POLL_MS 20
#define IFNAME_CACHE 64

struct app {
	struct opts opts;
	struct capture *capture;
	struct enrich enrich;
	struct output out;   /* events as text (-F, -o): unless -w is given alone */
	struct output pcap;  /* -w: the packets as pcapng */
	int text_on;
	int pcap_on;
	uint64_t packets_made; /* packets handed to the pcapng output */
	struct hold *hold; /* packets of passive connections until a task takes them */
	struct order *order; /* records sorted by timestamp before they are written */
	uint64_t events_late; /* events written after one with a later timestamp */
	struct pkt_event ev; /* reused for every record: no per-event allocation */
	int batch;           /* records handled in this poll */
	int draining;        /* the final drain: no batch limit */
	uint64_t boot_to_real_ns;
	uint64_t decode_errors[DECODE__MAX];
	struct ifname_slot {
		uint32_t ifindex;
		char name[IF_NAMESIZE];
	} ifnames[IFNAME_CACHE]; /* fallback when the kernel gave no name */
	int out_err;
	uint64_t bad_claims; /* claim records that did not hold a connection */
	uint64_t partial_events[DECODE__MAX]; /* written without TCP fields, by reason */
	uint64_t opts_malformed;              /* events written with a malformed TCP option */
	uint64_t flows_out_of_scope; /* held flow begins let out to an untraced owner */
	uint64_t flows_unselected;            /* flow records of the flow event not selected */
	uint64_t packets_unselected;          /* packet records of no selected event's kind */
	uint64_t records_out;                 /* records whose events all went to the output */
	uint64_t events_made;                 /* events handed to the output (flushed or not) */
	uint64_t records_past_count;          /* records that came after -c COUNT was reached */
	int count_done;                       /* -c COUNT events made: stop */
	struct filter filter;                 /* the expression, when one was given */
	int has_filter;
	uint64_t filter_rejected_dev;         /* device-path records the filter rejected here */
	struct owners *owners;                /* owner definitions, for the packet records */
	struct pkt_record *wire_rec;          /* a packet record made whole (decode_wire) */
	uint64_t owner_rotations, owner_forced; /* rotations of the owners; ones not yet safe */
	uint64_t retried_id, retried_ts;      /* the packet record left for the next pass */
};

#define ORDER_CAPACITY 16384 /* records the reorder stage holds: 45 ms at 360 000 a second */
#define BATCH_MAX 4096 /* records handled before the loop looks at signals and the command */
/* Owner definitions kept per generation; a new one once the current holds half of that and no
 * record still names the older one's. */
#define OWNERS_PER_GEN 16384

/* Signals that stop pktrace cleanly (tcpdump stops on SIGHUP too); SIGUSR1 asks for counts. */
static const int stop_sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
static volatile sig_atomic_t stop_signal; /* last stop signal received */
static volatile sig_atomic_t first_stop;  /* the first one, which the messages name */
static volatile sig_atomic_t progress_wanted; /* SIGUSR1: print the counts so far */
static unsigned long long ignored_at_start; /* bit n: signal n was ignored when pktrace began */
/* Every signal pktrace handles; the command gets the caller's dispositions of them back. */
static const int handled_sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM};
static volatile sig_atomic_t give_up;     /* stop now: no command to wait for, or a second signal */
static volatile sig_atomic_t signals_seen;
static volatile pid_t command_pid;        /* the command's relay, until it has exited */
static volatile sig_atomic_t command_started;
static int relay_fd = -1; /* pktrace's end of the relay's control pipe (non-blocking) */

/* One byte to the relay: a signal number to pass on to the command. Async-signal-safe. */
static void relay_send(int sig)
{
	unsigned char b = (unsigned char)sig;

	if (relay_fd >= 0 && write(relay_fd, &b, 1) != 1) {
		/* The relay is gone or its pipe is full: it has exited or is killing the command. */
	}
}

/* Once stopping, SIGALRM every 100 ms makes any blocked write() return so the flag is seen. */
static void watchdog_start(void)
{
	struct itimerval it = {.it_interval = {0, 100000}, .it_value = {0, 100000}};

	setitimer(ITIMER_REAL, &it, NULL);
}

static void on_alarm(int sig)
{
	(void)sig;
}

static void on_signal(int sig)
{
	int saved = errno;

	stop_signal = sig;
	if (!first_stop)
		first_stop = sig;
	/* With a command, the first signal goes to it and tracing goes on until it exits. */
	if (++signals_seen < 2 && command_pid > 0) {
		if (command_started)
			relay_send(sig);
	} else {
		give_up = 1;
		watchdog_start();
	}
	errno = saved;
}

static void on_progress(int sig)
{
	(void)sig;
	progress_wanted = 1;
}

static void stop_sigset(sigset_t *set)
{
	sigemptyset(set);
	for (size_t i = 0; i < ARRAY_SIZE(stop_sigs); i++)
		sigaddset(set, stop_sigs[i]);
}

/*
 * No SA_RESTART: a stop signal interrupts a blocked read() or write() so the flag is seen.
 * SIGHUP and SIGQUIT ignored at start (nohup, a background job) stay ignored. SIGUSR2 (tcpdump:
 * flush the file) has nothing to do: the outputs are flushed at every poll.
 */
static void signals_install(void)
{
	struct sigaction sa = {.sa_handler = on_signal}, old;

	for (size_t i = 0; i < ARRAY_SIZE(handled_sigs); i++)
		if (!sigaction(handled_sigs[i], NULL, &old) && old.sa_handler == SIG_IGN)
			ignored_at_start |= 1ULL << handled_sigs[i];
	for (size_t i = 0; i < ARRAY_SIZE(stop_sigs); i++) {
		if (stop_sigs[i] != SIGINT && stop_sigs[i] != SIGTERM &&
		    (ignored_at_start >> stop_sigs[i] & 1))
			continue;
		sigaction(stop_sigs[i], &sa, NULL);
	}
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	/* These two must not cut a read of -r short: restarted. */
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR2, &sa, NULL);
	sa.sa_handler = on_progress;
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN); /* a closed pipe shows up as EPIPE from write() */
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* What -c counts: events written, or packets when -w goes alone. */
static uint64_t count_made(const struct app *app)
{
	return app->text_on ? app->events_made : app->packets_made;
}

/* Events that reached the output (with -w alone, the packets written). */
static uint64_t events_written(const struct app *app)
{
	return app->text_on ? app->out.events_written : app->pcap.events_written;
}

/* Write one decoded packet: each selected event as text, the packet once to the pcapng file. */
static int emit_packet(struct app *app, struct pkt_event *e, event_mask selected,
		       const struct pkt_bytes *b)
{
	/* A text line is the packet, not one of its events: one line, the transport's if any
	 * (the pcapng comment still names them all). */
	event_mask lines = app->opts.format == OUTPUT_TEXT ? selected & -selected : selected;
	int err;

	for (int id = 0; app->text_on && id < EVENT__COUNT; id++) {
		if (!(lines & EVENT_BIT(id)))
			continue;
		if (app->opts.count && app->events_made >= app->opts.count)
			break;
		e->event = id;
		/* Made, written or not: one the output failed on is counted as not written. */
		app->events_made++;
		err = output_event(&app->out, e);
		if (err) {
			/* This packet's other events are lost with it (as many as -c leaves). */
			app->events_made += (uint64_t)__builtin_popcountll(lines >> id >> 1);
			if (app->opts.count && app->events_made > app->opts.count)
				app->events_made = app->opts.count;
			app->packets_made += app->pcap_on;
			/* Its events count as made and not written: the record is accounted for. */
			app->records_out++;
			app->out_err = -err;
			return err;
		}
	}
	if (app->pcap_on) {
		app->packets_made++;
		err = output_packet(&app->pcap, e, selected, b);
		if (err) {
			/* Accounted for: with -w alone the packet counts as made and not written;
			 * with text too, its events were written (the file's own report says what
			 * it lacks). */
			app->records_out++;
			app->out_err = -err;
			return err;
		}
	}
	if (app->opts.count && count_made(app) >= app->opts.count)
		app->count_done = 1;
	app->records_out++;
	if (e->hdr.l4_error)
		app->partial_events[e->hdr.l4_error < DECODE__MAX ? e->hdr.l4_error : 0]++;
	if (e->hdr.opts.malformed)
		app->opts_malformed++;
	return 0;
}

/* Only for records without a name from the kernel; ifindex is pktrace's own namespace's. */
static const char *ifname_fallback(struct app *app, uint32_t ifindex)
{
	struct ifname_slot *slot = &app->ifnames[ifindex % IFNAME_CACHE];

	if (slot->ifindex != ifindex || !slot->name[0]) {
		slot->ifindex = ifindex;
		if (!if_indextoname(ifindex, slot->name))
			snprintf(slot->name, IF_NAMESIZE, "if%u", ifindex);
	}
	return slot->name;
}

/* -c: whether this record comes after the last event asked for (then it is only counted). */
static int past_count(struct app *app)
{
	if (!app->opts.count || count_made(app) < app->opts.count)
		return 0;
	app->count_done = 1;
	app->records_past_count++;
	return 1;
}

/* Decode, enrich and write one packet record; owner replaces the record's own when set. */
static int emit_record(void *ctx, const struct pkt_record *rec, size_t size,
		       const struct pkt_owner *owner)
{
	struct app *app = ctx;
	struct pkt_event *e = &app->ev;
	struct pkt_bytes b;
	event_mask selected;
	uint32_t ifindex;
	uint64_t uts_key;
	int err;

	if (past_count(app))
		return 0;
	err = decode_record(rec, size, app->boot_to_real_ns, e, &ifindex, &uts_key);
	if (err) {
		app->decode_errors[-err > 0 && -err < DECODE__MAX ? -err : 0]++;
		return 0;
	}
	/* One packet, one event per selected kind it is (its IP event, its transport's). */
	selected = decode_packet_events(e) & app->opts.events;
	if (!selected) {
		app->packets_unselected++;
		return 0;
	}
	if (owner)
		decode_owner(owner, e, &uts_key);
	if (!e->ifname[0])
		snprintf(e->ifname, sizeof(e->ifname), "%s", ifname_fallback(app, ifindex));
	enrich_process(&app->enrich, &e->proc, uts_key);
	pkt_bytes_of_record(rec, size, &b);
	return emit_packet(app, e, selected, &b);
}

/* Decode, enrich and write one flow record; owner: not NULL for a begin the hold let out to
 * the task that took the connection. */
static int emit_flow(struct app *app, const struct pkt_record *rec, size_t size,
		     const struct pkt_owner *owner)
{
	struct pkt_event *e = &app->ev;
	uint64_t uts_key;
	int err;

	if (past_count(app))
		return 0;
	err = decode_flow_record(rec, size, app->boot_to_real_ns, e, &uts_key);
	if (err) {
		app->decode_errors[DECODE_BAD_RECORD]++;
		return 0;
	}
	/* A flow whose events were not selected (one of the two): decoded, not written. */
	if (!(app->opts.events & EVENT_BIT(e->event))) {
		app->flows_unselected++;
		return 0;
	}
	if (owner) {
		/* A held begin let out to a task outside the scope (or, nobody taking the
		 * connection, to the listener's owner outside it): not written, counted. */
		if (!owner->traced) {
			app->flows_out_of_scope++;
			return 0;
		}
		decode_owner(owner, e, &uts_key);
	}
	enrich_process(&app->enrich, &e->proc, uts_key);
	/* A flow is no packet: a pcapng file has no place for it. */
	if (app->text_on) {
		err = output_event(&app->out, e);
		if (err) {
			app->out_err = -err;
			return err;
		}
		app->events_made++;
	}
	app->records_out++;
	if (app->opts.count && app->text_on && app->events_made >= app->opts.count)
		app->count_done = 1;
	return 0;
}

/* The stage released a record: write its events, counting them when they come late. */
static int order_release(void *ctx, const struct pkt_record *rec, size_t size,
			 const struct pkt_owner *owner, int late)
{
	struct app *app = ctx;
	uint64_t before = count_made(app);
	int err;

	if (rec->kind == PKT_REC_FLOW)
		err = emit_flow(app, rec, size, owner);
	else
		err = emit_record(app, rec, size, owner);
	if (late)
		app->events_late += count_made(app) - before;
	return err;
}

/* The hold released a packet (with its original timestamp): it joins the stage. */
static int order_held(void *ctx, const struct pkt_record *rec, size_t size,
		      const struct pkt_owner *owner)
{
	struct app *app = ctx;

	return order__push(app->order, rec, size, owner);
}

/* Later events wait behind the oldest held packet, up to --order-hold, so that it joins the
 * reorder stage in time when its connection is taken. */
static void order_barrier_update(struct app *app, uint64_t now_ns)
{
	uint64_t b = UINT64_MAX;

	if (app->opts.order_hold_us && app->opts.order_window_us)
		b = hold__order_barrier(app->hold, now_ns, app->opts.order_hold_us * 1000);
	order__set_barrier(app->order, b);
}

/* A packet of a connection no task has taken yet: into the hold, keyed by its connection. */
static int hold_record(struct app *app, const struct pkt_record *rec, size_t size)
{
	struct pkt_headers *h = &app->ev.hdr;
	struct pkt_conn c = {};
	enum hold_pkt what = HOLD_PKT_OTHER;
	int egress = rec->direction == PKT_EGRESS, alen, err;

	/* A packet without a TCP header is held too (ports 0): it goes out with the hold's owner. */
	err = decode_record_headers(rec, size, h);
	if (err) {
		app->decode_errors[-err > 0 && -err < DECODE__MAX ? -err : 0]++;
		return 0;
	}
	alen = h->family == AF_INET6 ? 16 : 4;
	c.netns = rec->netns;
	c.family = h->family == AF_INET6 ? 6 : 4;
	c.lport = egress ? h->src_port : h->dst_port;
	c.rport = egress ? h->dst_port : h->src_port;
	memcpy(c.laddr, egress ? h->src_addr : h->dst_addr, alen);
	memcpy(c.raddr, egress ? h->dst_addr : h->src_addr, alen);
	if (h->flags & TCP_FLAG_RST)
		what = HOLD_PKT_RST;
	else if ((h->flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN)
		what = HOLD_PKT_SYN;
	else if ((h->flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_ACK && !egress)
		what = HOLD_PKT_ACK_IN;
	return hold__packet(app->hold, rec, size, &c, what);
}

/* Start a new generation of owner definitions: the kernel side sends new ones for sockets
 * whose definition is older than now, so the generation after the next can drop these. */
static void owners_rotate(struct app *app)
{
	owners__rotate(app->owners);
	capture__owner_floor(app->capture, capture__owner_seq(app->capture) + 1);
	app->owner_rotations++;
}

/* An owner definition: kept for the packet records that name it. */
static void owner_def(struct app *app, const void *data, size_t size)
{
	const struct pkt_owner_def *d = data;
	int err;

	if (size < sizeof(*d) || !d->id) {
		app->decode_errors[DECODE_BAD_RECORD]++;
		return;
	}
	if (owners__current(app->owners) >= OWNERS_PER_GEN / 2 &&
	    capture__owner_floor_passed(app->capture))
		owners_rotate(app);
	err = owners__put(app->owners, d->id, &d->owner, d->ifname);
	if (err == -ENOSPC) {
		/* Not yet safe, but full: records naming the dropped ones are counted, not lost
		 * silently (decode error "owner definition missing"). */
		app->owner_forced++;
		owners_rotate(app);
		owners__put(app->owners, d->id, &d->owner, d->ifname);
	}
}

/* A packet record names a definition not (yet) held. The definition may be in another CPU's
 * ring buffer, written after this pass began: the record comes again in the next pass, once;
 * missing then, it is counted and dropped. */
static int owner_missing(struct app *app, const struct pkt_wire *w)
{
	if (w->owner_id != app->retried_id || w->ts_ns != app->retried_ts) {
		app->retried_id = w->owner_id;
		app->retried_ts = w->ts_ns;
		return CAPTURE_AGAIN;
	}
	app->decode_errors[DECODE_NO_OWNER]++;
	return 0;
}

static int on_record(void *ctx, const void *data, size_t size)
{
	const struct pkt_record *rec = data;
	struct pkt_record *slot = NULL;
	struct app *app = ctx;
	int err = 0, e;

	/* What is known to come in order needs no wait in the stage; unless held packets may come
	 * back within the window with nothing holding later events back for them (--order-hold
	 * shorter than --order-window): the window alone then sorts them in. */
	if (app->opts.order_hold_us >= app->opts.order_window_us)
		order__set_safe(app->order, capture__safe_ns(app->capture));
	/* Every record has its kind at the same place; packets come without their owner. */
	if (size >= offsetof(struct pkt_record, kind) + 1) {
		uint8_t kind = ((const struct pkt_record *)data)->kind;

		if (kind == PKT_REC_OWNER) {
			owner_def(app, data, size);
			return 0;
		}
		if (kind == PKT_REC_PACKET) {
			const struct pkt_wire *w = data;
			const struct owner_entry *oe;
			long n = -DECODE_BAD_RECORD;

			if (size >= offsetof(struct pkt_wire, hdr)) {
				size_t len = decode_wire_len(size);

				oe = owners__get(app->owners, w->owner_id);
				if (!oe)
					return owner_missing(app, w);
				/* Most packets go to the reorder stage as they are: made in its slot,
				 * not copied there. The slot has room for len bytes, the room
				 * decode_wire is given: it cannot fail on a slot taken. */
				if (!(w->flags & PKT_F_HELD) &&
				    !(app->has_filter && (w->flags & PKT_F_DEVICE)))
					slot = order__slot(app->order, w->ts_ns, len, &err);
				n = decode_wire(data, size, &oe->owner, oe->ifname,
						slot ? slot : app->wire_rec,
						slot ? len : sizeof(*app->wire_rec));
			}
			if (n < 0) {
				app->decode_errors[DECODE_BAD_RECORD]++;
				return err;
			}
			rec = slot ? slot : app->wire_rec;
			size = (size_t)n;
		}
	}
	if (size < offsetof(struct pkt_record, hdr) || size > sizeof(*rec)) {
		app->decode_errors[DECODE_BAD_RECORD]++;
		return 0;
	}
	/* Seen at the device, no socket hook (timewait, kernel replies): no filter program ran,
	 * so libpcap matches the headers the record holds (rare packets). */
	if (app->has_filter && rec->kind == PKT_REC_PACKET && (rec->flags & PKT_F_DEVICE)) {
		size_t room = size - offsetof(struct pkt_record, hdr);

		if (!filter_match(&app->filter, rec->direction, rec->hdr,
				  rec->hdr_len < room ? rec->hdr_len : room, rec->pkt_len)) {
			app->filter_rejected_dev++;
			return 0;
		}
	}
	if (rec->kind == PKT_REC_FLOW && (rec->flags & PKT_FLOW_HELD) &&
	    size >= offsetof(struct pkt_record, hdr) + sizeof(struct pkt_flow)) {
		/* A passive connection's begin waits with its packets for the task that takes
		 * it, whose event it then is. */
		err = hold__packet(app->hold, rec, size,
				   &((const struct pkt_flow *)(const void *)rec->hdr)->conn,
				   HOLD_PKT_ESTABLISHED);
		order_barrier_update(app, order__newest(app->order));
	} else if (rec->kind == PKT_REC_FLOW) {
		err = order__push(app->order, rec, size, NULL);
	} else if (rec->kind == PKT_REC_CLAIM) {
		err = hold__claim(app->hold, rec, size);
		if (err == -EINVAL) {
			app->bad_claims++;
			err = 0;
		}
		order_barrier_update(app, order__newest(app->order));
	} else if (rec->flags & PKT_F_HELD) {
		err = hold_record(app, rec, size);
		order_barrier_update(app, order__newest(app->order));
	} else {
		e = slot ? order__commit(app->order, size, NULL) :
			   order__push(app->order, rec, size, NULL);
		if (!err)
			err = e;
	}
	if (err)
		return err;
	/* A reader slower than the traffic must still see signals: end the poll after a batch. */
	if (!app->draining && (++app->batch >= BATCH_MAX || app->count_done))
		return -EAGAIN;
	return 0;
}

/* -w: what reached the file, and what did not. */
static void pcap_summary(const struct app *app)
{
	if (!app->pcap_on)
		return;
	/* Worded without "written": that line is the events' (the tests read the last one). */
	fprintf(stderr, "pktrace:   pcapng %s: %llu packets in the file, %llu that did not get "
			"there, %u interfaces described%s\n",
		strcmp(app->opts.write_path, "-") ? app->opts.write_path : "to standard output",
		(unsigned long long)app->pcap.events_written,
		(unsigned long long)(app->packets_made - app->pcap.events_written),
		app->pcap.png.n, app->pcap.png.overflow ? " (the last, 'other', stands for more)" : "");
}

/* Worded without "written", like pcap_summary: the tests read the events' line by that word. */
static void order_summary(const struct app *app)
{
	const struct order_stats *os = order__stats(app->order);

	if (!os->late && !os->early && !order__window_ns(app->order))
		return;
	fprintf(stderr, "pktrace:   events out of timestamp order: %llu (later than the %llu us "
			"reorder window allowed, by up to %llu us; in the output all the same); "
			"%llu records let out early for lack of room, %llu waiting at the most, "
			"%llu of %llu written without waiting (known to be in order)\n",
		(unsigned long long)app->events_late,
		(unsigned long long)(order__window_ns(app->order) / 1000),
		(unsigned long long)((os->max_late_ns + 999) / 1000), (unsigned long long)os->early,
		(unsigned long long)os->max_held, (unsigned long long)os->direct,
		(unsigned long long)os->pushed);
}

static void print_summary(struct app *app)
{
	uint64_t st[STAT__MAX] = {}, decoded_bad = 0, unwritten = 0, lost, records, accounted;
	uint64_t skipped, covered;
	char which[256];
	/* With -w alone the packets written are the events. */
	uint64_t written = events_written(app);
	uint64_t made = count_made(app);
	uint64_t bad_records = app->decode_errors[DECODE_BAD_RECORD];
	const struct hold_stats *hs = hold__stats(app->hold);
	int i;

	if (capture__stats(app->capture, st))
		fprintf(stderr, "pktrace: cannot read the kernel counters: %s\n", strerror(errno));
	for (i = 1; i < DECODE__MAX; i++)
		if (i != DECODE_BAD_RECORD)
			decoded_bad += app->decode_errors[i];
	/* Records the kernel submitted that never reached the output (it failed first), and
	 * events handed to the output that never reached the file. */
	records = st[STAT_EVENTS] + st[STAT_DEV_EVENTS] + st[STAT_FLOWS];
	accounted = app->records_out + decoded_bad + bad_records + hs->out_of_scope +
		    app->flows_unselected + app->flows_out_of_scope + app->packets_unselected +
		    app->records_past_count +
		    app->filter_rejected_dev;
	if (records > accounted)
		unwritten = records - accounted;
	if (made > written)
		unwritten += made - written;
	lost = st[STAT_LOST_RINGBUF] + st[STAT_FLOWS_LOST] + decoded_bad + bad_records + unwritten;
	fprintf(stderr,
		"pktrace: %llu events written, %llu packets seen (%llu out of scope, %llu "
		"without a known owner), %llu events lost (%llu ring buffer full, %llu decode "
		"errors, %llu malformed records, %llu not written)\n",
		(unsigned long long)written,
		(unsigned long long)(st[STAT_PACKETS] + st[STAT_DEV_EVENTS] +
				     st[STAT_DEV_OUT_OF_SCOPE] + st[STAT_DEV_NO_OWNER]),
		(unsigned long long)(st[STAT_OUT_OF_SCOPE] + st[STAT_DEV_OUT_OF_SCOPE] +
				     hs->out_of_scope),
		(unsigned long long)(st[STAT_NO_OWNER] + st[STAT_DEV_NO_OWNER]),
		(unsigned long long)lost,
		(unsigned long long)(st[STAT_LOST_RINGBUF] + st[STAT_FLOWS_LOST]),
		(unsigned long long)decoded_bad, (unsigned long long)bad_records,
		(unsigned long long)unwritten);
	if (app->has_filter)
		fprintf(stderr, "pktrace:   packets the filter rejected: %llu (%llu in the socket hooks, "
				"before any other work; %llu seen only at the device, matched in user "
				"space)\n",
			(unsigned long long)(st[STAT_FILTER_REJECTED] + app->filter_rejected_dev),
			(unsigned long long)st[STAT_FILTER_REJECTED],
			(unsigned long long)app->filter_rejected_dev);
	if (hs->held) {
		/* Still held: the output failed before the hold was let out (in "not written"). */
		uint64_t still = hs->held - hs->taken - hs->waited_out - hs->early;

		fprintf(stderr, "pktrace:   accepted connections: %llu packets held until a process "
				"took the connection: %llu went to that process, %llu to the acceptor or "
				"the listener's owner (closed, reset, or not taken within %gs), %llu "
				"early for lack of room%s",
			(unsigned long long)hs->held, (unsigned long long)hs->taken,
			(unsigned long long)hs->waited_out, app->opts.hold_time,
			(unsigned long long)hs->early, still ? ", " : "");
		if (still)
			fprintf(stderr, "%llu still held when the output failed (not written)",
				(unsigned long long)still);
		fprintf(stderr, "; of all these, %llu not written (their owner is out of scope)\n",
			(unsigned long long)hs->out_of_scope);
		if (hs->queued)
			fprintf(stderr, "pktrace:   accepted connections still waiting for accept() "
					"after %gs (handshake complete, nobody took them), held on until a "
					"process did: %llu\n",
				app->opts.hold_time, (unsigned long long)hs->queued);
	}
	if (st[STAT_OWNER_CHANGED])
		fprintf(stderr, "pktrace:   sockets taken over by another process or thread (or "
				"after exec or a change of user): %llu\n",
			(unsigned long long)st[STAT_OWNER_CHANGED]);
	if (st[STAT_DEV_EVENTS])
		fprintf(stderr, "pktrace:   packets seen only at the device (timewait sockets, "
				"kernel replies, packet-socket frames): %llu\n",
			(unsigned long long)st[STAT_DEV_EVENTS]);
	if (st[STAT_CLAIMS_LOST] || app->bad_claims)
		fprintf(stderr, "pktrace:   connection hand-overs lost (ring buffer full) or "
				"malformed: %llu (their packets went to the acceptor or the listener's "
				"owner)\n", (unsigned long long)(st[STAT_CLAIMS_LOST] + app->bad_claims));
	skipped = capture__skipped_runs(app->capture, which, sizeof(which), &covered);
	if (covered)
		fprintf(stderr, "pktrace:   state changes the kernel skipped for one state program "
				"(it was running on that CPU) and the other did: %llu\n",
			(unsigned long long)covered);
	if (skipped)
		fprintf(stderr, "pktrace:   program runs the kernel skipped (the same program was "
				"already running on that CPU): %llu (%s); pktrace records owners where "
				"this cannot happen, but a packet or hand-over seen only there is "
				"missing\n",
			(unsigned long long)skipped, which);
	if (st[STAT_FLOWS] || st[STAT_FLOWS_LOST])
		fprintf(stderr, "pktrace:   flow records: %llu (%llu lost, ring buffer full; %llu "
				"begins of accepted connections not written: the task that took the "
				"connection, or the listener's owner, is out of scope)\n",
			(unsigned long long)st[STAT_FLOWS], (unsigned long long)st[STAT_FLOWS_LOST],
			(unsigned long long)app->flows_out_of_scope);
	if (st[STAT_CLOSES_LATE])
		fprintf(stderr, "pktrace:   connection closes the kernel ran no state program for "
				"(a softirq on a thread where it runs none), handled when the process "
				"next used or closed the socket: %llu (their flow ends carry that time)\n",
			(unsigned long long)st[STAT_CLOSES_LATE]);
	if (st[STAT_CLOSES_UNSEEN])
		fprintf(stderr, "pktrace:   connection closes the kernel ran no state program for, "
				"found only when the socket connected again: %llu (their flow ends "
				"are lost)\n",
			(unsigned long long)st[STAT_CLOSES_UNSEEN]);
	if (st[STAT_GONE_FULL])
		fprintf(stderr, "pktrace:   closed connections not remembered (table full): %llu\n",
			(unsigned long long)st[STAT_GONE_FULL]);
	if (app->owner_forced)
		fprintf(stderr, "pktrace:   owner table renewed before the ring buffers had moved on: "
				"%llu of %llu times (events naming an owner it let go are counted as "
				"'owner definition missing')\n", (unsigned long long)app->owner_forced,
			(unsigned long long)app->owner_rotations);
	for (i = 1; i < DECODE__MAX; i++)
		if (app->decode_errors[i] && i != DECODE_BAD_RECORD)
			fprintf(stderr, "pktrace:   decode error '%s': %llu\n", decode_strerror(-i),
				(unsigned long long)app->decode_errors[i]);
	for (i = 1; i < DECODE__MAX; i++)
		if (app->partial_events[i])
			fprintf(stderr, "pktrace:   packets written without transport fields, '%s': "
					"%llu\n",
				decode_strerror(-i), (unsigned long long)app->partial_events[i]);
	if (app->opts_malformed)
		fprintf(stderr, "pktrace:   events with a malformed TCP option (not used): %llu\n",
			(unsigned long long)app->opts_malformed);
	if (st[STAT_NO_L4])
		fprintf(stderr, "pktrace:   packets whose transport header the kernel side could not "
				"reach (later fragments, unknown headers), handed on with their IP header "
				"(written if an event selected takes them: see 'written without transport "
				"fields'): %llu\n", (unsigned long long)st[STAT_NO_L4]);
	if (st[STAT_ICMP_ERRORS] || st[STAT_ICMP_NO_OWNER])
		fprintf(stderr, "pktrace:   ICMP errors no socket receives: %llu given to the socket "
				"they quote, %llu quoting no known socket\n",
			(unsigned long long)st[STAT_ICMP_ERRORS],
			(unsigned long long)st[STAT_ICMP_NO_OWNER]);
	order_summary(app);
	if (app->records_past_count)
		fprintf(stderr, "pktrace:   records after the %llu events of -c, not written: %llu\n",
			app->opts.count, (unsigned long long)app->records_past_count);
	if (app->packets_unselected)
		fprintf(stderr, "pktrace:   packets of no selected event (the kernel traces their "
				"sockets for another event): %llu\n",
			(unsigned long long)app->packets_unselected);
	if (st[STAT_FOLLOW_FULL])
		fprintf(stderr, "pktrace:   processes of the command not followed (scope table full): "
				"%llu\n", (unsigned long long)st[STAT_FOLLOW_FULL]);
	if (st[STAT_EXISTING_FULL])
		fprintf(stderr, "pktrace:   sockets older than pktrace left without an owner (table "
				"full): %llu\n", (unsigned long long)st[STAT_EXISTING_FULL]);
	if (st[STAT_HDR_TRUNCATED])
		fprintf(stderr, "pktrace:   packets with headers over %d bytes: %llu\n",
			PKT_HDR_MAX, (unsigned long long)st[STAT_HDR_TRUNCATED]);
	pcap_summary(app);
}

/* SIGUSR1: the counts so far, one line (the summary's own wait for the end of the run). */
static void print_progress(struct app *app)
{
	uint64_t st[STAT__MAX] = {};

	progress_wanted = 0;
	if (capture__stats(app->capture, st))
		return;
	fprintf(stderr, "pktrace: so far, %llu events written, %llu packets seen, %llu events lost "
			"to a full ring buffer\n",
		(unsigned long long)events_written(app),
		(unsigned long long)(st[STAT_PACKETS] + st[STAT_DEV_EVENTS] +
				     st[STAT_DEV_OUT_OF_SCOPE] + st[STAT_DEV_NO_OWNER]),
		(unsigned long long)(st[STAT_LOST_RINGBUF] + st[STAT_FLOWS_LOST]));
}

static void on_child(int sig)
{
	(void)sig;
}

#define RELAY_TERMED 1024 /* leftovers sent SIGTERM once each; more get SIGKILL only */

/*
 * Send sig to each child of the relay (the command's orphans), but not to one in
 * done[0..*n_done) (then each one signalled is added); how many children there were.
 */
static int relay_signal_children(int sig, pid_t *done, int *n_done)
{
	char path[64], buf[4096];
	char *p, *end;
	ssize_t n;
	int fd, count = 0;

	while (waitpid(-1, NULL, WNOHANG) > 0)
		; /* the ones already gone */
	snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	for (p = buf;; p = end) {
		pid_t child = (pid_t)strtol(p, &end, 10);
		int i = 0;

		if (end == p)
			break;
		count++;
		while (done && i < *n_done && done[i] != child)
			i++;
		if (done && (i < *n_done || *n_done == RELAY_TERMED))
			continue;
		kill(child, sig);
		if (done)
			done[(*n_done)++] = child;
	}
	return count;
}

/*
 * The command has ended: what it left running ends too, SIGTERM (once each) then SIGKILL
 * 0.25 s later, so that the command and its descendants never outlive pktrace's trace.
 */
static void relay_end_descendants(void)
{
	struct timespec tick = {0, 10000000};
	pid_t termed[RELAY_TERMED];
	int i, n = 0;

	for (i = 0; i < 25 && relay_signal_children(SIGTERM, termed, &n); i++)
		nanosleep(&tick, NULL);
	for (i = 0; i < 100 && relay_signal_children(SIGKILL, NULL, NULL); i++)
		nanosleep(&tick, NULL);
}

/*
 * The relay: a child that keeps the caller's identity while pktrace drops its own, so signals
 * still reach the command. It starts COMMAND on 'g', passes on each signal number pktrace
 * writes, kills the command if pktrace goes away, and ends with the command's status.
 */
static void relay_run(int ctl, char **argv, const sigset_t *orig_mask)
{
	struct sigaction sa = {.sa_handler = on_child};
	struct pollfd pfd = {.fd = ctl, .events = POLLIN};
	struct rlimit no_core = {0, 0};
	sigset_t chld, waiting;
	unsigned char b;
	pid_t pid;
	int st, sig;

	/* The stop signals are blocked here; a stop before 'g' means the command never runs. */
	if (read(ctl, &b, 1) != 1 || b != 'g')
		_exit(127);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	/* What the command leaves behind (daemons, background jobs) is reparented here. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "pktrace: cannot start the command: %s\n", strerror(errno));
		_exit(127);
	}
	if (pid == 0) {
		/* pktrace's handlers go; a signal the caller ignored is ignored again. */
		for (size_t i = 0; i < ARRAY_SIZE(handled_sigs); i++)
			signal(handled_sigs[i], ignored_at_start >> handled_sigs[i] & 1 ? SIG_IGN :
											     SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		sigprocmask(SIG_SETMASK, orig_mask, NULL);
		execvp(argv[0], argv);
		st = errno;
		fprintf(stderr, "pktrace: cannot run '%s': %s\n", argv[0], strerror(st));
		/* The shell's statuses: found but not runnable 126, not found 127. */
		_exit(st == ENOENT || st == ENOTDIR ? 127 : 126);
	}
	/* A Ctrl-C (or a hangup) reaches the whole process group: only the command and pktrace
	 * act on it. */
	for (size_t i = 0; i < ARRAY_SIZE(stop_sigs); i++)
		signal(stop_sigs[i], SIG_IGN);
	signal(SIGUSR1, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
	waiting = *orig_mask; /* SIGCHLD stays blocked except inside ppoll() */
	sigdelset(&waiting, SIGCHLD);
	for (;;) {
		pid_t r;
		int s, done = 0;

		/* The command, and the orphans reparented here meanwhile (no zombies pile up). */
		while ((r = waitpid(-1, &s, WNOHANG)) > 0)
			if (r == pid)
				st = s, done = 1;
		if (done)
			break;
		if (ppoll(&pfd, 1, NULL, &waiting) <= 0)
			continue;
		switch (read(ctl, &b, 1)) {
		case 1:
			kill(pid, b);
			break;
		case 0: /* pktrace is gone: the command does not outlive it */
			kill(pid, SIGKILL);
			pfd.fd = -1;
			break;
		default:
			if (errno != EINTR)
				pfd.fd = -1;
		}
	}
	relay_end_descendants();
	if (WIFSIGNALED(st)) {
		/* Die of the same signal so that pktrace reports the command's status as it is. */
		sig = WTERMSIG(st);
		setrlimit(RLIMIT_CORE, &no_core);
		signal(sig, SIG_DFL);
		sigemptyset(&waiting);
		sigaddset(&waiting, sig);
		sigprocmask(SIG_UNBLOCK, &waiting, NULL);
		raise(sig);
		_exit(128 + sig);
	}
	_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
}

/* Fork the relay, which starts COMMAND once tracing is in place (see relay_run). */
static pid_t command_start(char **argv)
{
	sigset_t stop, old;
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		return -1;
	/* A stop signal between fork and exec must not run pktrace's handler in the child. */
	stop_sigset(&stop);
	sigaddset(&stop, SIGUSR1);
	sigaddset(&stop, SIGUSR2);
	sigprocmask(SIG_BLOCK, &stop, &old);
	pid = fork();
	if (pid == 0) {
		close(p[1]);
		relay_run(p[0], argv, &old);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(p[0]);
	if (pid < 0) {
		close(p[1]);
		return -1;
	}
	/* The signal handler writes here: it must never block. */
	fcntl(p[1], F_SETFL, O_NONBLOCK);
	relay_fd = p[1];
	return pid;
}

/* Wait for the relay until deadline (CLOCK_MONOTONIC ns); 1 when it has exited. */
static int command_wait(pid_t pid, int *wstatus, uint64_t deadline)
{
	struct timespec ts = {0, 10000000};

	for (;;) {
		pid_t r = waitpid(pid, wstatus, WNOHANG);

		if (r == pid || (r < 0 && errno == ECHILD))
			return 1;
		if (clock_ns(CLOCK_MONOTONIC) >= deadline)
			return 0;
		nanosleep(&ts, NULL);
	}
}

/*
 * pktrace stops before the command has ended (second signal, write error): pass sig on, give
 * the command a quarter of a second, then kill it. Returns the wait status, or -1.
 */
static int command_end(pid_t pid, int sig)
{
	int wstatus = 0;

	if (command_started)
		relay_send(sig);
	else
		close(relay_fd), relay_fd = -1; /* never started: the relay exits 127 */
	if (command_wait(pid, &wstatus, clock_ns(CLOCK_MONOTONIC) + 250000000ULL))
		return wstatus;
	relay_send(SIGKILL);
	if (command_wait(pid, &wstatus, clock_ns(CLOCK_MONOTONIC) + 1500000000ULL))
		return wstatus;
	fprintf(stderr, "pktrace: the command (relay pid %d) has not ended after SIGKILL; "
			"leaving it\n", (int)pid);
	return -1;
}

/* Who pktrace becomes once loaded (-Z); looked up before anything is loaded. */
struct run_as {
	int keep_root; /* -Z root (or another uid-0 name): nothing is dropped */
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t *groups;
	char name[64];
};

/* Returns 0, or prints one line and returns the exit status (2: the -Z user is unknown). */
static int run_as_lookup(struct run_as *ra, const char *user, int given)
{
	struct passwd *pw;
	int n = 0;

	memset(ra, 0, sizeof(*ra));
	errno = 0;
	pw = getpwnam(user);
	if (!pw) {
		if (given)
			fprintf(stderr, "pktrace: -Z '%s': no such user (name an existing user, or "
					"-Z root to keep root)\n", user);
		else
			fprintf(stderr, "pktrace: the user pktrace runs as after loading, '%s', does "
					"not exist: name an unprivileged user with -Z USER (or keep root "
					"with -Z root)\n", user);
		return given ? 2 : 1;
	}
	snprintf(ra->name, sizeof(ra->name), "%s", pw->pw_name);
	ra->uid = pw->pw_uid;
	ra->gid = pw->pw_gid;
	if (ra->uid == 0) {
		ra->keep_root = 1;
		return 0;
	}
	/* The user's supplementary groups, as login would set them (none for nobody). */
	getgrouplist(pw->pw_name, pw->pw_gid, NULL, &n);
	ra->groups = calloc(n > 0 ? n : 1, sizeof(gid_t));
	if (!ra->groups || getgrouplist(pw->pw_name, pw->pw_gid, ra->groups, &n) < 0) {
		fprintf(stderr, "pktrace: cannot read the groups of user '%s'\n", user);
		return 1;
	}
	ra->ngroups = n;
	return 0;
}

static int cap_last_cap(void)
{
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "r");
	int last = CAP_LAST_CAP;

	if (f) {
		if (fscanf(f, "%d", &last) != 1)
			last = CAP_LAST_CAP;
		fclose(f);
	}
	return last;
}

/* Every capability set empty: effective, permitted, inheritable, ambient. */
static int caps_clear(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2] = {};

	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
		return -errno;
	return syscall(SYS_capset, &hdr, data) ? -errno : 0;
}

static int caps_all_clear(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2] = {};
	int i;

	if (syscall(SYS_capget, &hdr, data))
		return 0;
	for (i = 0; i < 2; i++)
		if (data[i].effective || data[i].permitted || data[i].inheritable)
			return 0;
	return 1;
}

/*
 * Become ra's user with no capability left, as tcpdump -Z does: everything pktrace needs from
 * here on (ring buffer, map lookups, link fds, /proc and cgroup reads) works on the fds it holds.
 * Prints one line on failure.
 */
static int privileges_drop(const struct run_as *ra)
{
	const char *step;
	uid_t r, e, s;
	int cap, last = cap_last_cap();

	if (ra->keep_root)
		return 0;
	/* The bounding set needs CAP_SETPCAP: empty it while pktrace still has it. */
	step = "empty the capability bounding set";
	for (cap = 0; cap <= last; cap++)
		if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1 &&
		    prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) && errno != EINVAL)
			goto fail;
	step = "set the supplementary groups";
	if (setgroups(ra->ngroups, ra->groups))
		goto fail;
	step = "set the group id";
	if (setresgid(ra->gid, ra->gid, ra->gid))
		goto fail;
	step = "set the user id";
	if (setresuid(ra->uid, ra->uid, ra->uid))
		goto fail;
	step = "clear the capability sets";
	errno = -caps_clear();
	if (errno)
		goto fail;
	step = "set no_new_privs";
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		goto fail;
	/* Not dumpable: no other process of this user may ptrace pktrace and take its BPF fds. */
	step = "clear the dumpable flag";
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0))
		goto fail;
	step = "verify the drop";
	errno = EPERM;
	if (getresuid(&r, &e, &s) || r != ra->uid || e != ra->uid || s != ra->uid ||
	    getegid() != ra->gid || !setuid(0) || !caps_all_clear())
		goto fail;
	return 0;
fail:
	fprintf(stderr, "pktrace: cannot drop privileges to user '%s': cannot %s: %s (or keep "
			"root with -Z root)\n", ra->name, step, strerror(errno));
	return -1;
}

/* -o, opened as the user pktrace now runs as; one line on failure. */
static int output_start1(struct output *out, const char *path, enum output_format format,
			 const struct run_as *ra)
{
	struct timespec tick = {0, 100000000};
	struct stat st;
	int err = output_open(out, path, format);

	if (err == -ENXIO && !stat(path, &st) && S_ISFIFO(st.st_mode)) {
		/* A FIFO with no reader yet: say so, and wait for one (a stop signal ends it). */
		fprintf(stderr, "pktrace: waiting for a reader of the FIFO '%s'\n", path);
		while (err == -ENXIO && !stop_signal) {
			nanosleep(&tick, NULL);
			err = output_open(out, path, format);
		}
		if (err == -ENXIO && stop_signal) {
			fprintf(stderr, "pktrace: stopped while waiting for a reader of '%s'\n", path);
			return err;
		}
	}
	if (!err)
		return 0;
	if (err == -ELOOP)
		fprintf(stderr, "pktrace: cannot open '%s' for writing: it is a symbolic link, which "
				"pktrace never follows (name the file itself)\n", path);
	else if ((err == -EACCES || err == -EPERM || err == -EROFS) && ra && !ra->keep_root)
		fprintf(stderr, "pktrace: cannot open '%s' for writing as user '%s': %s (pktrace "
				"opens -o and -w files after giving up root: pick a place that user can write, "
				"another user with -Z USER, or keep root with -Z root)\n",
			path, ra->name, strerror(-err));
	else
		fprintf(stderr, "pktrace: cannot open '%s' for writing: %s\n", path,
			strerror(-err));
	return err;
}

/* -i, -Q, --once into the capture's settings; -i names an interface of pktrace's own network
 * namespace, as for tcpdump. Prints one line and returns the exit status on failure. */
static int capture_habits(struct capture_config *cfg, const struct opts *o)
{
	struct stat st;

	cfg->directions = (o->directions & OPTS_DIR_IN ? 1u << PKT_INGRESS : 0) |
			  (o->directions & OPTS_DIR_OUT ? 1u << PKT_EGRESS : 0);
	cfg->once = o->once;
	cfg->snaplen = o->snaplen;
	if (!o->interface)
		return 0;
	cfg->if_index = if_nametoindex(o->interface);
	if (!cfg->if_index) {
		fprintf(stderr, "pktrace: -i '%s': no such interface in pktrace's network namespace "
				"(see 'ip link'; -i any: every interface)\n", o->interface);
		return 2;
	}
	if (stat("/proc/self/ns/net", &st)) {
		fprintf(stderr, "pktrace: -i: cannot read pktrace's network namespace: %s\n",
			strerror(errno));
		return 1;
	}
	cfg->if_netns = (unsigned int)st.st_ino;
	return 0;
}

/* Whether -i's interface has gone away (a veth deleted, or the end of its peer's namespace),
 * looked up at most once a second: tcpdump ends then, and pktrace would go on showing nothing. */
static int interface_gone(unsigned int ifindex, uint64_t now_ns, uint64_t *due_ns)
{
	char name[IF_NAMESIZE];

	if (!ifindex || now_ns < *due_ns)
		return 0;
	*due_ns = now_ns + 1000000000ULL;
	return !if_indextoname(ifindex, name) && errno == ENXIO;
}

/* The text output (unless -w goes alone) and the pcapng file (-w). */
static int output_start(struct app *app, const struct run_as *ra)
{
	const struct opts *o = &app->opts;

	app->text_on = !o->write_path || o->text_given;
	app->pcap_on = !!o->write_path;
	if (app->text_on && output_start1(&app->out, o->output_path, o->format, ra))
		return -1;
	if (app->pcap_on && output_start1(&app->pcap, o->write_path, OUTPUT_PCAPNG, ra))
		return -1;
	app->out.cancel = &give_up;
	app->pcap.cancel = &give_up;
	return 0;
}

/* Each output that has not failed takes what waits for it, also after the other failed (so that
 * the summary counts what is in each file). */
static void outputs_flush(struct app *app)
{
	int err = 0, err2 = 0;

	if (app->text_on && app->out.len && !app->out.err)
		err = output_flush(&app->out);
	if (app->pcap_on && app->pcap.len && !app->pcap.err)
		err2 = output_flush(&app->pcap);
	if ((err || err2) && !app->out_err)
		app->out_err = -(err ? err : err2);
}

/* Say why an output stopped or failed to close; 1 when that is a failure of the run. */
static int outputs_report(struct app *app)
{
	struct output *outs[2] = {&app->out, &app->pcap};
	const char *paths[2] = {app->opts.output_path, app->opts.write_path};
	int on[2] = {app->text_on, app->pcap_on}, failed = 0, err;

	for (int i = 0; i < 2; i++) {
		const char *path = paths[i] && strcmp(paths[i], "-") ? paths[i] : "standard output";

		if (!on[i])
			continue;
		err = outs[i]->err;
		if (err == ECANCELED) {
			/* Asked to stop: what the reader did not take in time is counted. */
			fprintf(stderr, "pktrace: stopped without waiting for the reader of %s, which "
					"took nothing more within %.2f s (see 'not written' above)\n",
				path, OUTPUT_CANCEL_GRACE_NS / 1e9);
		} else if (err) {
			fprintf(stderr, "pktrace: stopped: cannot write %s to %s: %s\n",
				i ? "packets" : "events", path, strerror(err));
			failed = 1;
		}
		err = output_close(outs[i]);
		if (err && !outs[i]->err) {
			fprintf(stderr, "pktrace: cannot write %s to %s: %s\n",
				i ? "packets" : "events", path, strerror(-err));
			failed = 1;
		}
	}
	return failed;
}

struct read_ctx {
	struct app *app;
	struct readfile *rf;
};

static void read_progress(struct app *app, const struct readfile *rf)
{
	progress_wanted = 0;
	fprintf(stderr, "pktrace: so far, %llu events written from %llu packets read\n",
		(unsigned long long)events_written(app), (unsigned long long)rf->st.packets);
}

/* -r from a pipe that has nothing more yet: what came so far goes out (a live writer). */
static int read_wait(void *ctx)
{
	struct read_ctx *r = ctx;

	outputs_flush(r->app);
	if (progress_wanted)
		read_progress(r->app, r->rf);
	return stop_signal != 0;
}

/* -r: a capture file's events, through the printers live capture uses; no BPF, no root. */
static int read_run(struct app *app)
{
	const char *path = app->opts.read_path;
	struct readfile rf;
	struct pkt_bytes b;
	event_mask selected;
	uint64_t out_of_scope = 0, filtered = 0;
	struct read_ctx wait_ctx = {app, &rf};
	int ret = 0, failed;

	signals_install();
	ret = readfile_open(&rf, path);
	if (ret && stop_signal) {
		/* Stopped while the open waited (a FIFO's writer, the file's first bytes). */
		fprintf(stderr, "pktrace: stopped by signal %d (%s) before the input began; 0 events "
				"written from 0 packets read\n", (int)first_stop, strsignal(first_stop));
		readfile_close(&rf);
		return 0;
	}
	if (ret) {
		fprintf(stderr, "pktrace: -r '%s': %s\n", path, rf.err);
		readfile_close(&rf);
		return 1;
	}
	if (output_start(app, NULL)) {
		readfile_close(&rf);
		return 1;
	}
	readfile_on_wait(&rf, read_wait, &wait_ctx);
	/* A pipe is read as it comes: -c or a stop signal ends the reading. */
	while (!app->out_err && !app->count_done && !stop_signal &&
	       (ret = readfile_next(&rf, &app->ev, &b)) == 1) {
		if (progress_wanted)
			read_progress(app, &rf);
		/* The same events per packet as live: its IP event and its transport's. */
		selected = decode_packet_events(&app->ev) & app->opts.events;
		if (!selected)
			app->packets_unselected++;
		else if (app->has_filter &&
			 !filter_match(&app->filter, app->ev.egress ? PKT_EGRESS : PKT_INGRESS, b.data,
				       b.len, app->ev.packet_len))
			filtered++;
		else if (!scope_match(&app->opts.scope, app->ev.proc.pid, app->ev.proc.comm,
				      app->ev.proc.uid))
			out_of_scope++;
		else
			emit_packet(app, &app->ev, selected, &b);
	}
	if (ret < 0 && stop_signal)
		ret = 0; /* the read a stop signal interrupted */
	outputs_flush(app);
	if (stop_signal)
		fprintf(stderr, "pktrace: stopped by signal %d (%s) before the end of the input\n",
			(int)first_stop, strsignal(first_stop));
	fprintf(stderr, "pktrace: %llu events written from %llu packets read (%llu with no IP "
			"header after the link header, %llu decode errors, %llu of no selected "
			"event, %llu the filter rejected, %llu out of scope, %llu without pktrace's "
			"process comment)\n",
		(unsigned long long)events_written(app),
		(unsigned long long)rf.st.packets, (unsigned long long)rf.st.link_errors,
		(unsigned long long)rf.st.decode_errors,
		(unsigned long long)app->packets_unselected, (unsigned long long)filtered,
		(unsigned long long)out_of_scope, (unsigned long long)rf.st.no_comment);
	if (count_made(app) > events_written(app))
		fprintf(stderr, "pktrace:   events lost, not written (the output failed): %llu\n",
			(unsigned long long)(count_made(app) - events_written(app)));
	if (rf.walk && rf.walk->malformed)
		fprintf(stderr, "pktrace:   malformed pcapng blocks: %llu (no interface, direction or "
				"process from there on)\n", (unsigned long long)rf.walk->malformed);
	pcap_summary(app);
	if (ret < 0)
		fprintf(stderr, "pktrace: -r '%s': stopped after %llu packets: %s\n", path,
			(unsigned long long)rf.st.packets, rf.err);
	failed = outputs_report(app);
	readfile_close(&rf);
	return failed || ret < 0 ? 1 : 0;
}

/* The expression, compiled for both hooks; 0, or prints one line and returns 2. */
static int filter_start(struct app *app)
{
	char err[1024];
	const char *hint = "";

	if (!app->opts.filter_expr)
		return 0;
	if (!(app->opts.events & event_packet_events())) {
		fprintf(stderr, "pktrace: filter '%s': a filter selects packets, and no packet event is "
				"selected (add one with -e, e.g. -e net_packet_tcp; flow events are not "
				"filtered)\n", filter_short(app->opts.filter_expr));
		return 2;
	}
	if (filter_compile(&app->filter, app->opts.filter_expr, err, sizeof(err))) {
		/* tcpdump's habits meet pktrace's: options come first, a command after -- */
		if (strstr(err, "syntax error") || strstr(err, "unknown host"))
			hint = app->opts.filter_expr[0] && strstr(app->opts.filter_expr, " -") ?
				       " (options go before the expression)" :
				       " (a command to run goes after --)";
		fprintf(stderr, "pktrace: %s%s\n", err, hint);
		return 2;
	}
	app->has_filter = 1;
	/* -Q keeps one direction, and the expression's inbound/outbound rules all of it out. */
	for (int d = 0; d < 2; d++) {
		unsigned int only = d == PKT_INGRESS ? OPTS_DIR_IN : OPTS_DIR_OUT;

		if (app->opts.directions == only && app->filter.rejects_all[d]) {
			fprintf(stderr, "pktrace: filter '%s' with -Q %s: no packet can match (-Q "
					"keeps only %s packets, and the expression says %s)\n",
				filter_short(app->opts.filter_expr), d == PKT_INGRESS ? "in" : "out",
				d == PKT_INGRESS ? "received" : "sent",
				d == PKT_INGRESS ? "outbound" : "inbound");
			return 2;
		}
	}
	/* What cannot be translated is refused here too, before anything is loaded. */
	for (int d = 0; d < 2; d++) {
		struct filter_target t = {-1, STAT_FILTER_REJECTED, -1, 0, 0};
		struct bpf_insn *insns;
		size_t n;

		if (filter_to_ebpf(&app->filter.dir[d], &t, &insns, &n, err, sizeof(err))) {
			fprintf(stderr, "pktrace: filter '%s': %s\n",
				filter_short(app->opts.filter_expr), err);
			return 2;
		}
		free(insns);
	}
	return 0;
}

/* --dump-filter: libpcap's program and its translation, per hook; needs no privilege. */
static int filter_dump(struct app *app)
{
	static const char *const dir_name[2] = {"ingress (inbound)", "egress (outbound)"};
	struct filter_target t = {-1, STAT_FILTER_REJECTED, -1, 0, 0};
	char err[256];

	for (int d = 0; d < 2; d++) {
		struct bpf_insn *insns;
		size_t n;

		printf("; %s: classic BPF from libpcap, %u instructions\n", dir_name[d],
		       app->filter.dir[d].len);
		filter_dump_cbpf(&app->filter, d, stdout);
		if (filter_to_ebpf(&app->filter.dir[d], &t, &insns, &n, err, sizeof(err))) {
			fprintf(stderr, "pktrace: filter '%s': %s\n",
				filter_short(app->opts.filter_expr), err);
			return 2;
		}
		printf("; %s: eBPF, %zu instructions (map fds filled in at load)\n", dir_name[d], n);
		filter_dump_ebpf(insns, n, stdout);
		free(insns);
	}
	return fflush(stdout) ? 1 : 0;
}

static int exit_status(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return 128 + WTERMSIG(wstatus);
	return 1;
}

/* The reader runs as SCHED_BATCH: its fair share of the CPU, as before (so it never falls
 * behind for want of it, unlike SCHED_IDLE), but its timer's wakeup does not preempt the task
 * running on the CPU, a traced process in the middle of its work: on the bench's ping-pong the
 * traced traffic slowed 1.22 times instead of 1.25 (bench/changes.md). What it forks (none
 * after this) would go back to the default policy. An optimization only: a refusal is ignored. */
static void reader_sched(void)
{
	struct sched_param sp = {.sched_priority = 0};

	(void)sched_setscheduler(0, SCHED_BATCH | SCHED_RESET_ON_FORK, &sp);
}

int main(int argc, char **argv)
{
	static struct app app; /* large (output buffer): not on the stack */
	struct capture_config cfg = {};
	uint64_t if_due_ns = 0; /* the next look at -i's interface */
	int if_gone = 0;
	struct hold_config hold_cfg = {};
	struct order_config order_cfg = {};
	struct run_as run_as;
	int status = 0, failed = 0, err, n = 0, wstatus;
	int order_poll_ms;
	pid_t child = 0;

	switch (opts_parse(&app.opts, argc, argv, stdout, stderr)) {
	case OPTS_RUN:
		break;
	case OPTS_EXIT:
		return 0;
	default:
		return 2;
	}
	if (opts_check_files(&app.opts, stderr))
		return 2;
	if (filter_start(&app))
		return 2;
	if (app.opts.dump_filter)
		return filter_dump(&app);
	if (app.opts.read_path)
		return read_run(&app);
	err = run_as_lookup(&run_as, app.opts.user, app.opts.user_given);
	if (err)
		return err;
	signals_install();

	if (app.opts.command) {
		/* Forked before the drop: the command keeps the caller's identity. */
		child = command_start(app.opts.command);
		if (child < 0) {
			fprintf(stderr, "pktrace: cannot start the command: %s\n", strerror(errno));
			return 1;
		}
		command_pid = child;
	}

	hold_cfg.wait_ns = (uint64_t)(app.opts.hold_time * 1e9);
	hold_cfg.max_packets = app.opts.hold_packets;
	hold_cfg.max_bytes = app.opts.hold_bytes;
	if (app.opts.snaplen)
		hold_cfg.max_record = offsetof(struct pkt_record, snap) + app.opts.snaplen;
	app.hold = hold__new(&hold_cfg, order_held, &app);
	if (!app.hold) {
		fprintf(stderr, "pktrace: cannot allocate the hold for %lu packets: %s\n",
			app.opts.hold_packets, strerror(errno));
		goto early_exit;
	}
	order_cfg.window_ns = app.opts.order_window_us * 1000;
	order_poll_ms = (int)(app.opts.order_window_us / 1000) + 1;
	if (order_poll_ms > POLL_MS)
		order_poll_ms = POLL_MS;
	order_cfg.capacity = ORDER_CAPACITY;
	order_cfg.max_record = hold_cfg.max_record;
	app.order = order__new(&order_cfg, order_release, &app);
	if (!app.order) {
		fprintf(stderr, "pktrace: cannot allocate the reorder stage for %d records: %s\n",
			ORDER_CAPACITY, strerror(errno));
		goto early_exit;
	}
	app.owners = owners__new(OWNERS_PER_GEN);
	app.wire_rec = malloc(sizeof(*app.wire_rec));
	if (!app.owners || !app.wire_rec) {
		fprintf(stderr, "pktrace: cannot allocate the owner table for %d owners: %s\n",
			OWNERS_PER_GEN, strerror(ENOMEM));
		goto early_exit;
	}
	cfg.scope = &app.opts.scope;
	cfg.follow_pid = child;
	cfg.ringbuf_bytes = app.opts.ringbuf_bytes;
	cfg.packet_events = !!(app.opts.events & event_packet_events());
	cfg.sock_protos = event_socks_of(app.opts.events);
	/* ICMP errors are ICMP and IP packets: each of those events shows them. */
	cfg.icmp_errors = !!(app.opts.events &
			     (EVENT_BIT(EVENT_NET_PACKET_ICMP) | EVENT_BIT(EVENT_NET_PACKET_ICMPV6) |
			      EVENT_BIT(EVENT_NET_PACKET_IPV4) | EVENT_BIT(EVENT_NET_PACKET_IPV6)));
	cfg.flow_events = !!(app.opts.events & (EVENT_BIT(EVENT_NET_FLOW_TCP_BEGIN) |
						EVENT_BIT(EVENT_NET_FLOW_TCP_END)));
	err = capture_habits(&cfg, &app.opts);
	if (err) {
		status = err;
		goto early_exit_status;
	}
	cfg.filter = app.has_filter ? &app.filter : NULL;
	cfg.on_record = on_record;
	cfg.ctx = &app;
	cfg.stopping = &stop_signal;
	app.capture = capture__open(&cfg);
	if (!app.capture && stop_signal)
		goto stopped_loading;
	if (!app.capture)
		goto early_exit;
	err = enrich_init(&app.enrich, capture__uts_name, app.capture);
	if (err)
		fprintf(stderr, "pktrace: cannot read this host's name or UTS namespace: %s\n",
			strerror(-err));
	err = enrich_cgroup_root(&app.enrich, capture__cgroup_path(app.capture));
	if (err)
		fprintf(stderr, "pktrace: cannot open the cgroup v2 root (container ids come from "
				"/proc only): %s\n", strerror(-err));
	app.boot_to_real_ns = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_BOOTTIME);
	/* Loaded and attached: nothing from here on needs root (-Z). */
	if (privileges_drop(&run_as) || output_start(&app, &run_as))
		goto early_exit;
	if (stop_signal) {
stopped_loading:
		/* Stopped while loading: the command never runs untraced. */
		fprintf(stderr, "pktrace: stopped by signal %d (%s) while loading, before tracing "
				"anything%s\n", (int)first_stop, strsignal(first_stop),
			child > 0 ? "; the command was not run" : "");
		status = 128 + stop_signal;
		goto early_exit_status;
	}
	reader_sched();
	{
		char names[256];

		event_names_of(app.opts.events, names, sizeof(names));
		fprintf(stderr, "pktrace: ready, tracing %s%s (Ctrl-C to stop)\n", names,
			child > 0 ? " of the command" : "");
	}
	if (child > 0) {
		sigset_t stops, old;

		/* A signal that came before the command started is passed on once it has. */
		stop_sigset(&stops);
		sigprocmask(SIG_BLOCK, &stops, &old);
		if (write(relay_fd, "g", 1) != 1)
			fprintf(stderr, "pktrace: cannot start the command: %s\n", strerror(errno));
		command_started = 1;
		if (stop_signal && !give_up)
			relay_send(stop_signal);
		sigprocmask(SIG_SETMASK, &old, NULL);
	}

	while (!give_up && !app.out_err && !app.count_done) {
		/* A pass that ended on a full batch left records in the rings: no wait (the
		 * kernel side wakes the reader only as its backlog grows). One that had records:
		 * back after BUSY_POLL_MS, what waits in the stage then goes out, known to be in
		 * order or its window up. Records wait in the stage, or packets for their claim,
		 * after an idle pass: back once the window is up. */
		int timeout = app.batch >= BATCH_MAX ? 0 :
			      n > 0 ? BUSY_POLL_MS :
			      order__pending(app.order) || hold__pending(app.hold) ? order_poll_ms :
										   POLL_MS;

		app.batch = 0;
		n = capture__poll(app.capture, timeout);
		if (n < 0 && n != -EAGAIN && !app.out_err) {
			fprintf(stderr, "pktrace: reading the ring buffer failed: %s\n", strerror(-n));
			status = 1;
			break;
		}
		if (!app.out_err) {
			uint64_t now = clock_ns(CLOCK_BOOTTIME);

			capture__tend(app.capture, now);
			if (interface_gone(cfg.if_index, now, &if_due_ns)) {
				fprintf(stderr, "pktrace: -i '%s': the interface is gone (deleted); "
						"stopping\n", app.opts.interface);
				if_gone = 1;
				break;
			}
			err = hold__expire(app.hold, now);
			/* The wait behind held packets is measured in the traffic's time: a reader
			 * behind the kernel has not seen their claims yet. Idle, it has caught up. */
			order_barrier_update(&app, n == 0 ? now : order__newest(app.order));
			/* Idle: nothing more can come before what waits (but held packets); else what
			 * the clock passed. */
			if (!err)
				err = order__expire(app.order, n == 0 ? UINT64_MAX : now);
			if (err && !app.out_err)
				app.out_err = -err;
		}
		outputs_flush(&app);
		if (progress_wanted)
			print_progress(&app);
		if (child > 0 && waitpid(child, &wstatus, WNOHANG) == child) {
			status = exit_status(wstatus);
			child = 0;
			command_pid = 0;
			break;
		}
	}
	/* Detach first, so the drain ends and every record the kernel counted is handled. */
	capture__detach(app.capture);
	if (!app.out_err) {
		app.draining = 1;
		capture__drain(app.capture);
		/* Nothing stays held at exit: what waits goes out with its provisional owner. */
		if (!app.out_err) {
			err = hold__flush(app.hold);
			if (!err)
				err = order__flush(app.order);
			if (err && !app.out_err)
				app.out_err = -err;
		}
		outputs_flush(&app);
	}
	print_summary(&app);
	failed = outputs_report(&app);
	capture__destroy(app.capture);
	enrich_close(&app.enrich);
	hold__free(app.hold);
	order__free(app.order);
	owners__free(app.owners);
	free(app.wire_rec);
	if (child > 0) {
		/* pktrace stopped before the command ended (second signal, write error): end it too. */
		wstatus = command_end(child, stop_signal ? stop_signal : SIGTERM);
		status = wstatus >= 0 ? exit_status(wstatus) : 1;
		/* -c ended the trace, as it ends tcpdump: that is success, whatever the command. */
		if (app.count_done && !stop_signal)
			status = 0;
	}
	if (relay_fd >= 0)
		close(relay_fd);
	free(run_as.groups);
	return failed || if_gone ? 1 : status;

early_exit:
	status = 1;
early_exit_status:
	if (child > 0) {
		close(relay_fd); /* the relay exits 127 without running the command */
		relay_fd = -1;
		waitpid(child, NULL, 0);
	}
	capture__destroy(app.capture);
	if (app.capture)
		enrich_close(&app.enrich);
	hold__free(app.hold);
	order__free(app.order);
	owners__free(app.owners);
	free(app.wire_rec);
	output_close(&app.out);
	output_close(&app.pcap);
	free(run_as.groups);
	return status;
}
