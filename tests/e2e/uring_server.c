// SPDX-License-Identifier: GPL-2.0
/*
 * io_uring echo server for the pktrace end-to-end tests (t_uring.py).
 *
 *   uring_server NAME WORKER_NAME PORT COUNT [DELAY_MS]
 *
 * The parent renames itself NAME (prctl) before creating any socket, listens
 * on 127.0.0.1:PORT (it owns the listener and keeps it open), and forks a
 * worker named WORKER_NAME. The worker accepts COUNT connections one after
 * another with IORING_OP_ACCEPT (no accept syscall), waits DELAY_MS, and
 * echoes each one upper-cased with IORING_OP_RECV / IORING_OP_SEND until EOF;
 * then shutdown(SHUT_WR), waits until the kernel reports the connection
 * closed, close(). Prints "PID <pid>", "LISTENING <port>", "WORKER <pid>",
 * "ACCEPTED <fd>", "FIRSTIO <epoch>", "EOF <bytes>", "DONE", then waits for EOF
 * on stdin. The parent exits with the worker's status.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_S 20

static struct io_uring ring;

static void die(const char *what, int err)
{
	fprintf(stderr, "uring_server: %s: %s\n", what, strerror(err));
	exit(1);
}

/* Submit the prepared SQE, wait for its completion, return its result. */
static int run_one(const char *what)
{
	struct __kernel_timespec ts = { .tv_sec = TIMEOUT_S };
	struct io_uring_cqe *cqe;
	int ret;

	ret = io_uring_submit(&ring);
	if (ret != 1)
		die("io_uring_submit", ret < 0 ? -ret : EIO);
	ret = io_uring_wait_cqe_timeout(&ring, &cqe, &ts);
	if (ret < 0)
		die(what, -ret);
	ret = cqe->res;
	io_uring_cqe_seen(&ring, cqe);
	if (ret < 0)
		die(what, -ret);
	return ret;
}

static struct io_uring_sqe *sqe_get(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

	if (!sqe)
		die("io_uring_get_sqe", EBUSY);
	return sqe;
}

static long long serve(int fd)
{
	char buf[65536];
	long long total = 0;
	int n, off, i, ret;

	for (;;) {
		io_uring_prep_recv(sqe_get(), fd, buf, sizeof(buf), 0);
		n = run_one("recv");
		if (n == 0)
			return total;
		for (i = 0; i < n; i++)
			buf[i] = toupper((unsigned char)buf[i]);
		for (off = 0; off < n; off += ret) {
			io_uring_prep_send(sqe_get(), fd, buf + off, n - off, 0);
			ret = run_one("send");
			if (ret == 0)
				die("send", EPIPE);
		}
		total += n;
	}
}

static void finish(int fd)
{
	struct tcp_info ti;
	socklen_t len;
	int i;

	if (shutdown(fd, SHUT_WR) < 0)
		die("shutdown", errno);
	for (i = 0; i < TIMEOUT_S * 200; i++) {
		len = sizeof(ti);
		if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
			die("getsockopt(TCP_INFO)", errno);
		if (ti.tcpi_state == TCP_CLOSE)
			break;
		usleep(5000);
	}
	if (ti.tcpi_state != TCP_CLOSE)
		die("waiting for TCP_CLOSE", ETIMEDOUT);
	if (close(fd) < 0)
		die("close", errno);
}

static int worker(int lfd, int count, int delay_ms)
{
	struct timeval tv;
	int fd, i, ret;
	char c;

	ret = io_uring_queue_init(8, &ring, 0);
	if (ret < 0)
		die("io_uring_queue_init", -ret);
	for (i = 0; i < count; i++) {
		io_uring_prep_accept(sqe_get(), lfd, NULL, NULL, 0);
		fd = run_one("accept");
		printf("ACCEPTED %d\n", fd);
		if (delay_ms)
			usleep(delay_ms * 1000);
		gettimeofday(&tv, NULL);
		printf("FIRSTIO %lld.%06ld\n", (long long)tv.tv_sec, (long)tv.tv_usec);
		printf("EOF %lld\n", serve(fd));
		finish(fd);
	}
	io_uring_queue_exit(&ring);
	printf("DONE\n");
	/* Stay alive (threads listable) until the test closes stdin. */
	while (read(0, &c, 1) > 0)
		;
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	socklen_t alen = sizeof(addr);
	int lfd, count, delay_ms, one = 1, status;
	pid_t pid;

	if (argc < 5 || argc > 6) {
		fprintf(stderr, "usage: uring_server NAME WORKER_NAME PORT COUNT [DELAY_MS]\n");
		return 2;
	}
	count = atoi(argv[4]);
	delay_ms = argc == 6 ? atoi(argv[5]) : 0;
	setvbuf(stdout, NULL, _IONBF, 0);
	if (prctl(PR_SET_NAME, argv[1], 0, 0, 0) < 0)
		die("prctl(PR_SET_NAME)", errno);
	printf("PID %d\n", getpid());

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0)
		die("socket", errno);
	if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		die("setsockopt(SO_REUSEADDR)", errno);
	addr.sin_port = htons(atoi(argv[3]));
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		die("bind", errno);
	if (listen(lfd, 8) < 0)
		die("listen", errno);
	if (getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0)
		die("getsockname", errno);
	printf("LISTENING %d\n", ntohs(addr.sin_port));

	pid = fork();
	if (pid < 0)
		die("fork", errno);
	if (pid == 0) {
		if (prctl(PR_SET_NAME, argv[2], 0, 0, 0) < 0)
			die("prctl(PR_SET_NAME)", errno);
		printf("WORKER %d\n", getpid());
		return worker(lfd, count, delay_ms);
	}
	/* The parent keeps the listener open until the worker is done. */
	if (waitpid(pid, &status, 0) < 0)
		die("waitpid", errno);
	if (close(lfd) < 0)
		die("close", errno);
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "uring_server: worker failed (status 0x%x)\n", status);
		return 1;
	}
	return 0;
}
