// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * tcpflood: loopback TCP ping-pong traffic for the pktrace benchmark.
 *
 * The process forks a server ("flood-srv") that listens on 127.0.0.1:PORT and echoes every
 * byte it reads; the parent ("flood-cli") opens CONNS connections to it with TCP_NODELAY and
 * keeps exactly one SIZE-byte message in flight on each: it sends the next message on a
 * connection only once the previous one has come back whole. Each message is therefore one
 * request segment and one reply segment on the wire (the ACKs ride on the next segment), so
 * the packet count depends on CONNS * MSGS and barely on timing.
 *
 * Bounded: MSGS per connection (default 25000, 8 connections: 200000 messages) or SECONDS of
 * traffic (default 20), whichever comes first. Only 127.0.0.1 is ever used.
 *
 * One line on stdout, key=value:
 *   messages        round trips completed (a message out and its echo back)
 *   elapsed_s       from the first send to the last echo
 *   rate_msg_s      messages / elapsed_s
 *   wire_pkts       segments on the wire, from TCP_INFO of the client sockets (segs_out +
 *                   segs_in) after the last echo: handshakes and data, not the FIN exchange
 *   cli_cpu_s, srv_cpu_s   user+system CPU of the client and of the server (getrusage)
 *   timed_out       1 if SECONDS ran out before every message was sent
 *   bpf_stats       with -S: 1 if BPF run-time statistics were on while the traffic ran (the
 *                   kernel then counts run_time_ns/run_cnt of every BPF program, as
 *                   `bpftool prog show` reports them), 0 if they could not be turned on
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/bpf.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_segs_in/out (glibc's lacks them) */
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 256
#define MAX_SIZE 65536

struct conn {
	int fd;
	long sent;  /* messages sent */
	long done;  /* messages whose echo came back whole */
	size_t got; /* bytes of the current echo received so far */
};

static void die(const char *what)
{
	fprintf(stderr, "tcpflood: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double tv_s(struct timeval tv)
{
	return tv.tv_sec + tv.tv_usec / 1e6;
}

static void nodelay(int fd)
{
	int one = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		die("setsockopt TCP_NODELAY");
}

static void write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("write");
		}
		buf += n;
		len -= (size_t)n;
	}
}

/*
 * Server: listen on 127.0.0.1:port (named first, so every socket it creates is flood-srv's),
 * send the bound port on ready_fd, accept CONNS connections, echo until every one is closed,
 * then send its CPU time on report_fd.
 */
static void server(uint16_t port, int conns, int ready_fd, int report_fd)
{
	static char buf[MAX_SIZE];
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t salen = sizeof(sa);
	struct epoll_event ev, evs[64];
	struct rusage ru;
	int ep, i, lfd, one = 1, open_conns = 0;
	double cpu;

	/* Never outlive the client, whatever happens to it. */
	if (prctl(PR_SET_NAME, "flood-srv", 0, 0, 0) || prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0))
		die("prctl");
	if (getppid() == 1)
		_exit(1);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons(port);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		die("socket");
	if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		die("setsockopt SO_REUSEADDR");
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)))
		die("bind 127.0.0.1");
	if (getsockname(lfd, (struct sockaddr *)&sa, &salen))
		die("getsockname");
	if (listen(lfd, conns))
		die("listen");
	if (write(ready_fd, &sa.sin_port, sizeof(sa.sin_port)) != sizeof(sa.sin_port))
		die("write ready");
	close(ready_fd);

	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1");
	for (i = 0; i < conns; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			die("accept");
		nodelay(fd);
		ev.events = EPOLLIN;
		ev.data.fd = fd;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev))
			die("epoll_ctl");
		open_conns++;
	}
	close(lfd);
	while (open_conns > 0) {
		int n = epoll_wait(ep, evs, 64, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			ssize_t r = read(fd, buf, sizeof(buf));

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				close(fd);
				open_conns--;
				continue;
			}
			write_all(fd, buf, (size_t)r);
		}
	}
	getrusage(RUSAGE_SELF, &ru);
	cpu = tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
	if (write(report_fd, &cpu, sizeof(cpu)) != sizeof(cpu))
		die("write report");
	_exit(0);
}

/* BPF run-time statistics, on while the returned fd is open (-1: not available). */
static int bpf_stats_enable(void)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.enable_stats.type = BPF_STATS_RUN_TIME;
	return (int)syscall(__NR_bpf, BPF_ENABLE_STATS, &attr, sizeof(attr));
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: tcpflood [-c CONNS] [-n MSGS_PER_CONN] [-s SIZE] [-t SECONDS] [-p PORT] [-S]\n"
	    "  loopback ping-pong: CONNS connections (8), MSGS_PER_CONN messages each (25000)\n"
	    "  of SIZE bytes (100), at most SECONDS (20) of traffic, server on 127.0.0.1:PORT\n"
	    "  (47400; 0: any free port); -S: BPF run-time statistics on during the traffic\n");
}

static long arg_long(const char *s, long min, long max, const char *name)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max) {
		fprintf(stderr, "tcpflood: %s must be %ld..%ld, not '%s'\n", name, min, max, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static struct conn c[MAX_CONNS];
	static char msg[MAX_SIZE], buf[MAX_SIZE];
	long conns = 8, msgs = 25000, size = 100, port = 47400, total = 0;
	double seconds = 20, t0, t1, srv_cpu = -1;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct epoll_event ev, evs[64];
	struct rusage ru;
	uint64_t wire = 0;
	int opt, ep, i, ready[2], report[2], active, timed_out = 0, status, stats = 0,
						     stats_fd = -1;
	pid_t srv;

	while ((opt = getopt(argc, argv, "c:n:s:t:p:Sh")) != -1) {
		switch (opt) {
		case 'c':
			conns = arg_long(optarg, 1, MAX_CONNS, "CONNS");
			break;
		case 'n':
			msgs = arg_long(optarg, 1, 100000000, "MSGS_PER_CONN");
			break;
		case 's':
			size = arg_long(optarg, 1, MAX_SIZE, "SIZE");
			break;
		case 't':
			seconds = (double)arg_long(optarg, 1, 3600, "SECONDS");
			break;
		case 'p':
			port = arg_long(optarg, 0, 65535, "PORT");
			break;
		case 'S':
			stats = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	/* Named before any socket exists: pktrace records the owner's comm at socket creation. */
	if (prctl(PR_SET_NAME, "flood-cli", 0, 0, 0))
		die("prctl");
	/* A safety net: never outlive the traffic budget by much, even if the peer hangs. */
	alarm((unsigned)seconds + 30);

	if (pipe2(ready, O_CLOEXEC) || pipe2(report, O_CLOEXEC))
		die("pipe");
	srv = fork();
	if (srv < 0)
		die("fork");
	if (srv == 0) {
		close(ready[0]);
		close(report[0]);
		server((uint16_t)port, (int)conns, ready[1], report[1]);
	}
	close(ready[1]);
	close(report[1]);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (read(ready[0], &sa.sin_port, sizeof(sa.sin_port)) != sizeof(sa.sin_port)) {
		fprintf(stderr, "tcpflood: the server did not start\n");
		waitpid(srv, NULL, 0);
		return 1;
	}
	close(ready[0]);

	memset(msg, 'x', (size_t)size);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1");
	for (i = 0; i < conns; i++) {
		c[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c[i].fd < 0)
			die("socket");
		nodelay(c[i].fd);
		if (connect(c[i].fd, (struct sockaddr *)&sa, sizeof(sa)))
			die("connect 127.0.0.1");
		ev.events = EPOLLIN;
		ev.data.u32 = (uint32_t)i;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev))
			die("epoll_ctl");
	}

	if (stats)
		stats_fd = bpf_stats_enable();
	t0 = now_s();
	for (i = 0; i < conns; i++) {
		write_all(c[i].fd, msg, (size_t)size);
		c[i].sent = 1;
	}
	active = (int)conns;
	while (active > 0) {
		int n = epoll_wait(ep, evs, 64, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (int k = 0; k < n; k++) {
			struct conn *cn = &c[evs[k].data.u32];
			ssize_t got = read(cn->fd, buf, (size_t)size - cn->got);

			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				fprintf(stderr, "tcpflood: the server closed a connection early\n");
				return 1;
			}
			cn->got += (size_t)got;
			if (cn->got < (size_t)size)
				continue;
			cn->got = 0;
			cn->done++;
			total++;
			if (cn->sent < msgs && !timed_out && now_s() - t0 >= seconds)
				timed_out = 1;
			if (cn->sent < msgs && !timed_out) {
				write_all(cn->fd, msg, (size_t)size);
				cn->sent++;
			} else {
				active--;
				if (epoll_ctl(ep, EPOLL_CTL_DEL, cn->fd, NULL))
					die("epoll_ctl");
			}
		}
	}
	t1 = now_s();
	if (stats_fd >= 0)
		close(stats_fd);

	for (i = 0; i < conns; i++) {
		struct tcp_info ti;
		socklen_t tilen = sizeof(ti);

		if (getsockopt(c[i].fd, IPPROTO_TCP, TCP_INFO, &ti, &tilen) == 0)
			wire += (uint64_t)ti.tcpi_segs_out + ti.tcpi_segs_in;
		close(c[i].fd);
	}
	if (read(report[0], &srv_cpu, sizeof(srv_cpu)) != sizeof(srv_cpu))
		srv_cpu = -1;
	if (waitpid(srv, &status, 0) != srv || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "tcpflood: the server failed\n");
		return 1;
	}
	getrusage(RUSAGE_SELF, &ru);
	printf("messages=%ld elapsed_s=%.6f rate_msg_s=%.0f wire_pkts=%llu conns=%ld size=%ld "
	       "cli_cpu_s=%.3f srv_cpu_s=%.3f timed_out=%d",
	       total, t1 - t0, total / (t1 - t0), (unsigned long long)wire, conns, size,
	       tv_s(ru.ru_utime) + tv_s(ru.ru_stime), srv_cpu, timed_out);
	if (stats)
		printf(" bpf_stats=%d", stats_fd >= 0);
	printf("\n");
	return 0;
}
