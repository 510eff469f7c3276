// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The bench's floor loader: loads empty programs from an object (bench/floor.bpf.c, built by
 * bench/run.sh), attaches them, says "floor: ready" on stderr and holds them until SIGINT or
 * SIGTERM, or until the process given with -w (bench/run.sh) is gone.
 *   floor [-w PID] [-a CGROUP] OBJECT
 * Without -a only floor_send and floor_recv (owner_send's and owner_recv's hooks); with it
 * every program, the cgroup_skb ones on the cgroup v2 directory CGROUP.
 * Nothing is pinned: the programs and their links live only in this process's file
 * descriptors, so however it ends (even SIGKILL) the kernel detaches and frees them. */
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINKS 8

static int quiet_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_DEBUG ? 0 : vfprintf(stderr, fmt, ap);
}

int main(int argc, char **argv)
{
	struct bpf_link *links[MAX_LINKS];
	struct bpf_program *prog;
	struct bpf_object *obj;
	struct timespec second = {1, 0};
	sigset_t set;
	const char *cgroup = NULL;
	pid_t watch = 0;
	int n = 0, i, opt, err, rc = 0, cgroup_fd = -1;

	while ((opt = getopt(argc, argv, "w:a:h")) != -1) {
		switch (opt) {
		case 'w':
			watch = (pid_t)atoi(optarg);
			break;
		case 'a':
			cgroup = optarg;
			break;
		default:
			fprintf(stderr, "usage: %s [-w PID] [-a CGROUP] OBJECT\n", argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: %s [-w PID] [-a CGROUP] OBJECT\n", argv[0]);
		return 2;
	}
	if (cgroup) {
		cgroup_fd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cgroup_fd < 0) {
			fprintf(stderr, "floor: cannot open the cgroup %s: %s\n", cgroup, strerror(errno));
			return 1;
		}
	}
	/* Block the stop signals before anything is attached: they are taken by sigtimedwait. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	libbpf_set_print(quiet_libbpf);

	obj = bpf_object__open_file(argv[optind], NULL);
	if (!obj) {
		fprintf(stderr, "floor: cannot open %s: %s\n", argv[optind], strerror(errno));
		rc = 1;
		goto out_fd;
	}
	/* Without -a the packet hooks' programs are not even loaded. */
	bpf_object__for_each_program(prog, obj) {
		if (!cgroup && strcmp(bpf_program__name(prog), "floor_send") &&
		    strcmp(bpf_program__name(prog), "floor_recv"))
			bpf_program__set_autoload(prog, false);
	}
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "floor: cannot load %s: %s\n", argv[optind], strerror(-err));
		bpf_object__close(obj);
		rc = 1;
		goto out_fd;
	}
	bpf_object__for_each_program(prog, obj) {
		if (n == MAX_LINKS) {
			fprintf(stderr, "floor: more than %d programs\n", MAX_LINKS);
			rc = 1;
			goto out;
		}
		if (!bpf_program__autoload(prog))
			continue;
		if (bpf_program__type(prog) == BPF_PROG_TYPE_CGROUP_SKB)
			links[n] = bpf_program__attach_cgroup(prog, cgroup_fd);
		else
			links[n] = bpf_program__attach(prog);
		if (!links[n]) {
			fprintf(stderr, "floor: cannot attach %s: %s\n", bpf_program__name(prog), strerror(errno));
			rc = 1;
			goto out;
		}
		n++;
	}
	fprintf(stderr, "floor: ready, %d empty programs attached\n", n);
	for (;;) {
		if (sigtimedwait(&set, NULL, &second) > 0)
			break;
		if (watch > 0 && kill(watch, 0) == -1 && errno == ESRCH) {
			fprintf(stderr, "floor: process %d is gone\n", (int)watch);
			break;
		}
	}
out:
	for (i = 0; i < n; i++)
		bpf_link__destroy(links[i]);
	bpf_object__close(obj);
	if (!rc)
		fprintf(stderr, "floor: detached %d programs\n", n);
out_fd:
	if (cgroup_fd >= 0)
		close(cgroup_fd);
	return rc;
}
