// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * What one system call costs on this host right now: getppid() (no work of its own) in a tight
 * loop, the best of 7 rounds of 200 000. bench/run.sh runs it while each tracer is attached: a
 * tracer that enables a system-call tracepoint puts every task of the host on the slow entry
 * and exit path, and this shows it. Prints syscall_ns=NS.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(void)
{
	const long n = 200000;
	double best = 0;

	for (int r = 0; r < 7; r++) {
		double t0 = now_ns(), t;

		for (long i = 0; i < n; i++)
			syscall(SYS_getppid); /* not getppid(): no libc caching, ever */
		t = (now_ns() - t0) / n;
		if (!r || t < best)
			best = t;
	}
	printf("syscall_ns=%.1f\n", best);
	return 0;
}
