/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Scope: which processes are traced, from -s expressions. */
#ifndef PKTRACE_SCOPE_H
#define PKTRACE_SCOPE_H

#include <stddef.h>
#include <stdint.h>

#define SCOPE_MAX_VALUES 64
#define SCOPE_COMM_LEN 16 /* the kernel's TASK_COMM_LEN, NUL included */

/* Values of one key are ORed, different keys are ANDed; a key with no values matches all. */
struct scope {
	uint32_t pids[SCOPE_MAX_VALUES];
	int n_pids;
	char comms[SCOPE_MAX_VALUES][SCOPE_COMM_LEN];
	int n_comms;
	uint32_t uids[SCOPE_MAX_VALUES];
	int n_uids;
};

/*
 * Add one expression such as "pid=1,2", "comm=nginx" or "uid=0" to s (repeatable).
 * Return 0, or -EINVAL with a one-line reason in err.
 */
int scope_parse(struct scope *s, const char *expr, char *err, size_t errlen);
/* Whether a process is in scope, as the kernel side decides it (-r applies -s with it). */
int scope_match(const struct scope *s, uint32_t pid, const char *comm, uint32_t uid);

#endif /* PKTRACE_SCOPE_H */
