// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* pktrace: process-aware TCP packet tracer. Data flows capture -> decode -> enrich -> output. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "capture.h"
#include "decode.h"
#include "enrich.h"
#include "hold.h"
#include "opts.h"
#include "output.h"

#define POLL_MS 100
#define IFNAME_CACHE 64

struct app {
	struct opts opts;
	struct capture *capture;
	struct enrich enrich;
	struct output out;
	struct hold *hold; /* packets of passive connections until a task takes them */
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
};

#define BATCH_MAX 4096 /* records handled before the loop looks at signals and the command */

static volatile sig_atomic_t stop_signal; /* last stop signal received */
static volatile sig_atomic_t give_up;     /* stop now: no command to wait for, or a second signal */
static volatile sig_atomic_t signals_seen;
static volatile pid_t command_pid;

static void on_signal(int sig)
{
	stop_signal = sig;
	/* With a command, the first signal goes to it and tracing goes on until it exits. */
	if (++signals_seen >= (command_pid > 0 ? 2 : 1))
		give_up = 1;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
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

/* Decode, enrich and write one packet record; owner replaces the record's own when set. */
static int emit_record(void *ctx, const struct pkt_record *rec, size_t size,
		       const struct pkt_owner *owner)
{
	struct app *app = ctx;
	struct pkt_event *e = &app->ev;
	uint32_t ifindex, uts_inum;
	int err;

	err = decode_record(rec, size, app->boot_to_real_ns, e, &ifindex, &uts_inum);
	if (err) {
		app->decode_errors[-err > 0 && -err < DECODE__MAX ? -err : 0]++;
		return 0;
	}
	if (owner)
		decode_owner(owner, e, &uts_inum);
	if (!e->ifname[0])
		snprintf(e->ifname, sizeof(e->ifname), "%s", ifname_fallback(app, ifindex));
	enrich_process(&app->enrich, &e->proc, uts_inum);

	err = output_event(&app->out, e);
	if (err)
		app->out_err = -err;
	return err;
}

/* A packet of a connection no task has taken yet: into the hold, keyed by its connection. */
static int hold_record(struct app *app, const struct pkt_record *rec, size_t size)
{
	struct pkt_headers *h = &app->ev.hdr;
	struct pkt_conn c = {};
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
	return hold__packet(app->hold, rec, size, &c,
			    (h->flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN,
			    !!(h->flags & TCP_FLAG_RST));
}

static int on_record(void *ctx, const void *data, size_t size)
{
	const struct pkt_record *rec = data;
	struct app *app = ctx;
	int err;

	if (size < offsetof(struct pkt_record, hdr) || size > sizeof(*rec)) {
		app->decode_errors[DECODE_BAD_RECORD]++;
		return 0;
	}
	if (rec->kind == PKT_REC_CLAIM) {
		err = hold__claim(app->hold, rec, size);
		if (err == -EINVAL) {
			app->bad_claims++;
			err = 0;
		}
	} else if (rec->flags & PKT_F_HELD) {
		err = hold_record(app, rec, size);
	} else {
		err = emit_record(app, rec, size, NULL);
	}
	if (err)
		return err;
	/* A reader slower than the traffic must still see signals: end the poll after a batch. */
	if (!app->draining && ++app->batch >= BATCH_MAX)
		return -EAGAIN;
	return 0;
}

static void print_summary(struct app *app)
{
	uint64_t st[STAT__MAX] = {}, decoded_bad = 0, unwritten = 0, lost, records, accounted;
	uint64_t written = app->out.events_written;
	uint64_t bad_records = app->decode_errors[DECODE_BAD_RECORD];
	const struct hold_stats *hs = hold__stats(app->hold);
	int i;

	if (capture__stats(app->capture, st))
		fprintf(stderr, "pktrace: cannot read the kernel counters: %s\n", strerror(errno));
	for (i = 1; i < DECODE__MAX; i++)
		if (i != DECODE_BAD_RECORD)
			decoded_bad += app->decode_errors[i];
	/* Records the kernel submitted that never reached the output (it failed first). */
	records = st[STAT_EVENTS] + st[STAT_DEV_EVENTS];
	accounted = written + decoded_bad + bad_records + hs->out_of_scope;
	if (records > accounted)
		unwritten = records - accounted;
	lost = st[STAT_LOST_RINGBUF] + decoded_bad + bad_records + unwritten;
	fprintf(stderr,
		"pktrace: %llu events written, %llu TCP packets seen (%llu out of scope, %llu "
		"without a known owner), %llu events lost (%llu ring buffer full, %llu decode "
		"errors, %llu malformed records, %llu not written)\n",
		(unsigned long long)written,
		(unsigned long long)(st[STAT_PACKETS] + st[STAT_DEV_EVENTS] +
				     st[STAT_DEV_OUT_OF_SCOPE] + st[STAT_DEV_NO_OWNER]),
		(unsigned long long)(st[STAT_OUT_OF_SCOPE] + st[STAT_DEV_OUT_OF_SCOPE] +
				     hs->out_of_scope),
		(unsigned long long)(st[STAT_NO_OWNER] + st[STAT_DEV_NO_OWNER]),
		(unsigned long long)lost, (unsigned long long)st[STAT_LOST_RINGBUF],
		(unsigned long long)decoded_bad, (unsigned long long)bad_records,
		(unsigned long long)unwritten);
	if (hs->held)
		fprintf(stderr, "pktrace:   accepted connections: %llu packets held until a process "
				"took the connection: %llu went to that process, %llu to the acceptor or "
				"the listener's owner (closed, reset, or not taken within %gs), %llu "
				"early for lack of room, %llu to processes out of scope\n",
			(unsigned long long)hs->held, (unsigned long long)hs->taken,
			(unsigned long long)hs->waited_out, app->opts.hold_time,
			(unsigned long long)hs->early, (unsigned long long)hs->out_of_scope);
	if (st[STAT_OWNER_CHANGED])
		fprintf(stderr, "pktrace:   sockets taken over by another process or thread (or "
				"after exec or a change of user): %llu\n",
			(unsigned long long)st[STAT_OWNER_CHANGED]);
	if (st[STAT_DEV_EVENTS])
		fprintf(stderr, "pktrace:   packets seen only at the device (timewait sockets, "
				"kernel replies): %llu\n", (unsigned long long)st[STAT_DEV_EVENTS]);
	if (st[STAT_CLAIMS_LOST] || app->bad_claims)
		fprintf(stderr, "pktrace:   connection hand-overs lost (ring buffer full) or "
				"malformed: %llu (their packets went to the acceptor or the listener's "
				"owner)\n", (unsigned long long)(st[STAT_CLAIMS_LOST] + app->bad_claims));
	if (st[STAT_GONE_FULL])
		fprintf(stderr, "pktrace:   closed connections not remembered (table full): %llu\n",
			(unsigned long long)st[STAT_GONE_FULL]);
	for (i = 1; i < DECODE__MAX; i++)
		if (app->decode_errors[i] && i != DECODE_BAD_RECORD)
			fprintf(stderr, "pktrace:   decode error '%s': %llu\n", decode_strerror(-i),
				(unsigned long long)app->decode_errors[i]);
	if (st[STAT_NOT_TCP])
		fprintf(stderr, "pktrace:   packets of TCP sockets without a TCP header we can reach "
				"(later fragments, unknown IPv6 extension headers): %llu\n",
			(unsigned long long)st[STAT_NOT_TCP]);
	if (st[STAT_FOLLOW_FULL])
		fprintf(stderr, "pktrace:   processes of the command not followed (scope table full): "
				"%llu\n", (unsigned long long)st[STAT_FOLLOW_FULL]);
	if (st[STAT_EXISTING_FULL])
		fprintf(stderr, "pktrace:   sockets older than pktrace left without an owner (table "
				"full): %llu\n", (unsigned long long)st[STAT_EXISTING_FULL]);
	if (st[STAT_HDR_TRUNCATED])
		fprintf(stderr, "pktrace:   packets with headers over %d bytes: %llu\n",
			PKT_HDR_MAX, (unsigned long long)st[STAT_HDR_TRUNCATED]);
}

/* Fork COMMAND stopped on a pipe, so tracing is in place before its first instruction. */
static pid_t command_start(char **argv, int *release_fd)
{
	int p[2];
	pid_t pid;
	char c;

	sigset_t stop, old;

	if (pipe2(p, O_CLOEXEC))
		return -1;
	/* A stop signal between fork and exec must not run pktrace's handler in the child. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigprocmask(SIG_BLOCK, &stop, &old);
	pid = fork();
	if (pid != 0)
		sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0)
		return -1;
	if (pid == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		close(p[1]);
		if (read(p[0], &c, 1) != 1)
			_exit(127);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], argv);
		fprintf(stderr, "pktrace: cannot run '%s': %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(p[0]);
	*release_fd = p[1];
	return pid;
}

static int exit_status(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return 128 + WTERMSIG(wstatus);
	return 1;
}

int main(int argc, char **argv)
{
	static struct app app; /* large (output buffer): not on the stack */
	struct capture_config cfg = {};
	struct hold_config hold_cfg = {};
	struct sigaction sa = {.sa_handler = on_signal};
	int release_fd = -1, status = 0, forwarded = 0, failed = 0, err, n;
	pid_t child = 0;

	switch (opts_parse(&app.opts, argc, argv, stdout, stderr)) {
	case OPTS_RUN:
		break;
	case OPTS_EXIT:
		return 0;
	default:
		return 2;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN); /* a closed pipe shows up as EPIPE from write() */

	err = output_open(&app.out, app.opts.output_path, app.opts.format);
	if (err) {
		fprintf(stderr, "pktrace: cannot open '%s' for writing: %s\n",
			app.opts.output_path, strerror(-err));
		return 1;
	}
	app.out.cancel = &give_up;
	if (app.opts.command) {
		child = command_start(app.opts.command, &release_fd);
		if (child < 0) {
			fprintf(stderr, "pktrace: cannot start the command: %s\n", strerror(errno));
			return 1;
		}
		command_pid = child;
	}

	hold_cfg.wait_ns = (uint64_t)(app.opts.hold_time * 1e9);
	hold_cfg.max_packets = app.opts.hold_packets;
	hold_cfg.max_bytes = app.opts.hold_bytes;
	app.hold = hold__new(&hold_cfg, emit_record, &app);
	if (!app.hold) {
		fprintf(stderr, "pktrace: cannot allocate the hold for %lu packets: %s\n",
			app.opts.hold_packets, strerror(errno));
		output_close(&app.out);
		return 1;
	}
	cfg.scope = &app.opts.scope;
	cfg.follow_pid = child;
	cfg.on_record = on_record;
	cfg.ctx = &app;
	app.capture = capture__open(&cfg);
	if (!app.capture) {
		if (child > 0) {
			close(release_fd); /* the command exits 127 without running */
			waitpid(child, NULL, 0);
		}
		output_close(&app.out);
		return 1;
	}
	err = enrich_init(&app.enrich, capture__uts_name, app.capture);
	if (err)
		fprintf(stderr, "pktrace: cannot read this host's name or UTS namespace: %s\n",
			strerror(-err));
	err = enrich_cgroup_root(&app.enrich, capture__cgroup_path(app.capture));
	if (err)
		fprintf(stderr, "pktrace: cannot open the cgroup v2 root (container ids come from "
				"/proc only): %s\n", strerror(-err));
	app.boot_to_real_ns = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_BOOTTIME);
	if (stop_signal) {
		/* Stopped while loading: the command never runs untraced. */
		if (child > 0) {
			close(release_fd);
			waitpid(child, NULL, 0);
		}
		capture__destroy(app.capture);
		output_close(&app.out);
		return 128 + stop_signal;
	}
	fprintf(stderr, "pktrace: ready, tracing net_packet_tcp%s (Ctrl-C to stop)\n",
		child > 0 ? " of the command" : "");
	if (child > 0) {
		if (write(release_fd, "g", 1) != 1)
			fprintf(stderr, "pktrace: cannot start the command: %s\n", strerror(errno));
		close(release_fd);
	}

	while (!give_up && !app.out_err) {
		if (child > 0 && stop_signal && !forwarded) {
			kill(child, stop_signal);
			forwarded = 1;
		}
		app.batch = 0;
		n = capture__poll(app.capture, POLL_MS);
		if (n < 0 && n != -EAGAIN && !app.out_err) {
			fprintf(stderr, "pktrace: reading the ring buffer failed: %s\n", strerror(-n));
			status = 1;
			break;
		}
		if (!app.out_err) {
			err = hold__expire(app.hold, clock_ns(CLOCK_BOOTTIME));
			if (err && !app.out_err)
				app.out_err = -err;
		}
		if (!app.out_err && app.out.len) {
			err = output_flush(&app.out);
			if (err)
				app.out_err = -err;
		}
		if (child > 0 && waitpid(child, &err, WNOHANG) == child) {
			status = exit_status(err);
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
			if (err && !app.out_err)
				app.out_err = -err;
		}
		if (!app.out_err) {
			err = output_flush(&app.out);
			if (err)
				app.out_err = -err;
		}
	}
	print_summary(&app);
	if (app.out_err) {
		fprintf(stderr, "pktrace: stopped: cannot write events to %s: %s\n",
			app.opts.output_path ? app.opts.output_path : "standard output",
			strerror(app.out_err));
		failed = 1;
	}
	err = output_close(&app.out);
	if (err && !app.out_err) {
		fprintf(stderr, "pktrace: cannot write events to %s: %s\n",
			app.opts.output_path ? app.opts.output_path : "standard output",
			strerror(-err));
		failed = 1;
	}
	capture__destroy(app.capture);
	enrich_close(&app.enrich);
	hold__free(app.hold);
	if (child > 0) {
		/* pktrace stopped before the command ended (second signal, write error): end it too. */
		kill(child, stop_signal ? stop_signal : SIGTERM);
		if (waitpid(child, &err, 0) == child)
			status = exit_status(err);
	}
	return failed ? 1 : status;
}
