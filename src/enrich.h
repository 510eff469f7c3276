/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Enrichment: host name and container id of an event's process, cached. */
#ifndef PKTRACE_ENRICH_H
#define PKTRACE_ENRICH_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

#define ENRICH_CACHE_SLOTS 1024 /* power of two */
#define CONTAINER_ID_LEN 64

/* Looks up a node name by the key the kernel side gave it; returns 0 or -errno. */
typedef int (*uts_lookup_fn)(void *ctx, uint64_t uts_key, char *name, size_t len);

struct enrich_slot {
	uint64_t key; /* cgroup id or UTS key; 0: empty */
	char value[CONTAINER_ID_LEN + 1];
};

struct enrich {
	char host_name[65];
	uint32_t host_uts_inum; /* pktrace's own UTS namespace */
	uts_lookup_fn uts_lookup;
	void *uts_ctx;
	const char *proc_root; /* "/proc"; tests may point it elsewhere */
	int cgroup_root_fd;    /* the cgroup v2 mount, to turn a cgroup id into its path; -1: none */
	struct enrich_slot containers[ENRICH_CACHE_SLOTS];
	struct enrich_slot hosts[ENRICH_CACHE_SLOTS];
};

/* Learn pktrace's own host name and UTS namespace. Return 0 or -errno. */
int enrich_init(struct enrich *en, uts_lookup_fn lookup, void *ctx);

/* Resolve cgroup ids through the cgroup v2 mount at path. Return 0 or -errno. */
int enrich_cgroup_root(struct enrich *en, const char *path);
void enrich_close(struct enrich *en);

/*
 * Set p->hostname and p->container_id (pointers into the cache, valid until the slot is
 * reused). A cache miss resolves the cgroup id to its path (the owner may be gone by then),
 * else reads /proc/<pid>/cgroup; hits cost no syscall.
 */
void enrich_process(struct enrich *en, struct pkt_process *p, uint64_t uts_key);

/*
 * Find a container id (64 hex digits of a docker, containerd, cri-o or podman scope) in the
 * text of a /proc/<pid>/cgroup file or a cgroup path. Copies it to out and returns 0, or
 * returns -ENOENT and sets out to "".
 */
int container_id_from_cgroup(const char *text, char out[CONTAINER_ID_LEN + 1]);

#endif /* PKTRACE_ENRICH_H */
