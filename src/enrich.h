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
	uint64_t expires_ns; /* container ids not found in the cgroup tree: retry after; 0: never */
	char value[CONTAINER_ID_LEN + 1];
};

/* One cgroup directory: its inode number (the cgroup id) and its container, if any. */
struct cgroup_ent {
	uint64_t ino; /* 0: empty */
	uint32_t cid; /* 1-based index into cgroup_index.ids; 0: no container in its path */
};

/*
 * The cgroup v2 tree as seen by walking the mount (which any user may read): cgroup id ->
 * container id of its path. Built on the first miss, rebuilt when an id is not found, at most
 * once per rescan_min_ns (or 20 times the last walk's duration, if longer).
 */
struct cgroup_index {
	struct cgroup_ent *ents; /* open addressing, cap a power of two, at most half full */
	size_t cap, count;
	char (*ids)[CONTAINER_ID_LEN + 1];
	size_t nids, ids_cap;
	uint64_t next_scan_ns; /* no walk before this; 0: never walked */
	uint64_t last_scan_ns; /* how long the last walk took */
};

struct enrich_stats {
	uint64_t scans;      /* walks of the cgroup tree */
	uint64_t proc_reads; /* /proc/<pid>/cgroup files opened */
	uint64_t handles;    /* open_by_handle_at calls */
};

struct enrich {
	char host_name[65];
	uint32_t host_uts_inum; /* pktrace's own UTS namespace */
	uts_lookup_fn uts_lookup;
	void *uts_ctx;
	const char *proc_root; /* "/proc"; tests may point it elsewhere */
	int cgroup_root_fd;    /* the cgroup v2 mount, to turn a cgroup id into its path; -1: none */
	int cgroup_handles;    /* try open_by_handle_at first (needs CAP_DAC_READ_SEARCH): 1/0 */
	uint64_t rescan_min_ns;   /* 100 ms */
	uint64_t negative_ttl_ns; /* how long an id missing from a fresh walk stays cached: 1 s */
	uint64_t (*clock_ns)(void); /* CLOCK_MONOTONIC; tests may stop time */
	struct cgroup_index cgroups;
	struct enrich_stats stats;
	struct enrich_slot containers[ENRICH_CACHE_SLOTS];
	struct enrich_slot hosts[ENRICH_CACHE_SLOTS];
};

/* Learn pktrace's own host name and UTS namespace. Return 0 or -errno. */
int enrich_init(struct enrich *en, uts_lookup_fn lookup, void *ctx);

/*
 * Resolve cgroup ids through the cgroup v2 mount at path; opened now (before pktrace drops
 * root), walked later as needed. Return 0 or -errno.
 */
int enrich_cgroup_root(struct enrich *en, const char *path);
/* Close the cgroup root and free the index; en may be initialised again. */
void enrich_close(struct enrich *en);

/*
 * Set p->hostname and p->container_id (pointers into the cache, valid until the slot is
 * reused). A cache miss resolves the cgroup id: by file handle while pktrace may (root), else
 * through the index of the cgroup v2 tree (walked again when the id is new, rate-limited), and
 * only for a cgroup not in the tree (gone, or not readable) from /proc/<pid>/cgroup, cached
 * for negative_ttl_ns. Hits cost no syscall and no allocation.
 */
void enrich_process(struct enrich *en, struct pkt_process *p, uint64_t uts_key);

/*
 * Find a container id (64 hex digits of a docker, containerd, cri-o or podman scope) in the
 * text of a /proc/<pid>/cgroup file or a cgroup path. Copies it to out and returns 0, or
 * returns -ENOENT and sets out to "".
 */
int container_id_from_cgroup(const char *text, char out[CONTAINER_ID_LEN + 1]);

#endif /* PKTRACE_ENRICH_H */
