// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "enrich.h"

#define PROBE_SLOTS 4
#define CGROUP_READ_SIZE 4096
#define RESCAN_MIN_NS 100000000ULL  /* at most ten walks of the cgroup tree a second */
#define RESCAN_COST_FACTOR 20       /* and at most 1/20 of the time spent walking */
#define NEGATIVE_TTL_NS 1000000000ULL
#define INDEX_MIN_CAP 256
#define INDEX_MAX_ENTRIES (1U << 22) /* far above any real tree; bounds the memory */
#define WALK_MAX_DEPTH 64            /* open directories at once, at most */

_Static_assert((ENRICH_CACHE_SLOTS & (ENRICH_CACHE_SLOTS - 1)) == 0,
	       "ENRICH_CACHE_SLOTS must be a power of two");

static int is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* The characters that may surround an id inside a cgroup path component. */
static int is_bound(char c)
{
	return c == '\0' || c == '\n' || c == '/' || c == '-' || c == '.' || c == ':';
}

int container_id_from_cgroup(const char *text, char out[CONTAINER_ID_LEN + 1])
{
	const char *p = text, *found = NULL;

	out[0] = '\0';
	if (!text)
		return -ENOENT;
	while (*p) {
		const char *start = p;

		if (!is_hex(*p)) {
			p++;
			continue;
		}
		while (is_hex(*p))
			p++;
		/* Keep the last one: with nesting the innermost container is the process's own. */
		if (p - start == CONTAINER_ID_LEN && (start == text || is_bound(start[-1])) &&
		    is_bound(*p))
			found = start;
	}
	if (!found)
		return -ENOENT;
	memcpy(out, found, CONTAINER_ID_LEN);
	out[CONTAINER_ID_LEN] = '\0';
	return 0;
}

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int enrich_init(struct enrich *en, uts_lookup_fn lookup, void *ctx)
{
	struct utsname uts;
	struct stat st;
	int ret = 0;

	memset(en, 0, sizeof(*en));
	en->uts_lookup = lookup;
	en->uts_ctx = ctx;
	en->proc_root = "/proc";
	en->cgroup_root_fd = -1;
	en->cgroup_handles = 1;
	en->rescan_min_ns = RESCAN_MIN_NS;
	en->negative_ttl_ns = NEGATIVE_TTL_NS;
	en->clock_ns = monotonic_ns;

	if (gethostname(en->host_name, sizeof(en->host_name) - 1)) {
		if (uname(&uts) == 0) {
			snprintf(en->host_name, sizeof(en->host_name), "%s", uts.nodename);
		} else {
			ret = -errno;
			snprintf(en->host_name, sizeof(en->host_name), "unknown");
		}
	}
	en->host_name[sizeof(en->host_name) - 1] = '\0';

	if (stat("/proc/self/ns/uts", &st) == 0)
		en->host_uts_inum = (uint32_t)st.st_ino;
	else if (!ret)
		ret = -errno;
	return ret;
}

/* Fibonacci hashing spreads near-sequential keys (cgroup ids, UTS inodes) evenly. */
static size_t slot_hash(uint64_t key)
{
	return (size_t)((key * 0x9e3779b97f4a7c15ULL) >> (64 - __builtin_ctz(ENRICH_CACHE_SLOTS)));
}

/*
 * Find key in a few slots from its home. Returns the slot and sets *hit, or returns the slot
 * to fill: the first empty one, else the home slot, whose old entry is evicted.
 */
static struct enrich_slot *slot_find(struct enrich_slot *slots, uint64_t key, int *hit)
{
	size_t home = slot_hash(key), i;
	struct enrich_slot *empty = NULL;

	for (i = 0; i < PROBE_SLOTS; i++) {
		struct enrich_slot *s = &slots[(home + i) & (ENRICH_CACHE_SLOTS - 1)];

		if (s->key == key) {
			*hit = 1;
			return s;
		}
		if (!s->key && !empty)
			empty = s;
	}
	*hit = 0;
	return empty ? empty : &slots[home];
}

/* One read into a stack buffer: /proc/<pid>/cgroup fits in 4 KiB on any sane system. */
static int read_container_id(struct enrich *en, uint32_t pid, char out[CONTAINER_ID_LEN + 1])
{
	char path[256], buf[CGROUP_READ_SIZE];
	ssize_t n;
	int fd;

	out[0] = '\0';
	en->stats.proc_reads++;
	snprintf(path, sizeof(path), "%s/%u/cgroup", en->proc_root ? en->proc_root : "/proc",
		 pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	close(fd);
	buf[n] = '\0';
	if ((size_t)n == sizeof(buf) - 1) {
		/* A full buffer may end inside an id; a cut id must not pass for a whole one. */
		char *nl = strrchr(buf, '\n');

		if (nl)
			nl[1] = '\0';
		else
			buf[0] = '\0';
	}
	container_id_from_cgroup(buf, out);
	return 0;
}

static void index_free(struct cgroup_index *ix)
{
	free(ix->ents);
	free(ix->ids);
	memset(ix, 0, sizeof(*ix));
}

int enrich_cgroup_root(struct enrich *en, const char *path)
{
	if (en->cgroup_root_fd >= 0)
		close(en->cgroup_root_fd);
	index_free(&en->cgroups); /* another tree */
	en->cgroup_root_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return en->cgroup_root_fd < 0 ? -errno : 0;
}

void enrich_close(struct enrich *en)
{
	if (en->cgroup_root_fd >= 0)
		close(en->cgroup_root_fd);
	en->cgroup_root_fd = -1;
	index_free(&en->cgroups);
}

/* The entry of ino, or the empty one where it would go. ix->cap must be nonzero. */
static struct cgroup_ent *index_slot(struct cgroup_ent *ents, size_t cap, uint64_t ino)
{
	size_t i = (size_t)((ino * 0x9e3779b97f4a7c15ULL) >> 32) & (cap - 1);

	while (ents[i].ino && ents[i].ino != ino)
		i = (i + 1) & (cap - 1);
	return &ents[i];
}

/* Returns 0 and the container id (maybe "") of cgroup ino, or -ENOENT. */
static int index_lookup(const struct cgroup_index *ix, uint64_t ino, char out[CONTAINER_ID_LEN + 1])
{
	const struct cgroup_ent *e;

	out[0] = '\0';
	if (!ix->cap || !ino)
		return -ENOENT;
	e = index_slot(ix->ents, ix->cap, ino);
	if (!e->ino)
		return -ENOENT;
	if (e->cid)
		memcpy(out, ix->ids[e->cid - 1], CONTAINER_ID_LEN + 1);
	return 0;
}

static int index_add(struct cgroup_index *ix, uint64_t ino, uint32_t cid)
{
	struct cgroup_ent *e;

	if (!ino)
		return 0;
	if ((ix->count + 1) * 2 > ix->cap) {
		size_t cap = ix->cap ? ix->cap * 2 : INDEX_MIN_CAP, i;
		struct cgroup_ent *ents;

		if (ix->count >= INDEX_MAX_ENTRIES)
			return -E2BIG;
		ents = calloc(cap, sizeof(*ents));
		if (!ents)
			return -ENOMEM;
		for (i = 0; i < ix->cap; i++)
			if (ix->ents[i].ino)
				*index_slot(ents, cap, ix->ents[i].ino) = ix->ents[i];
		free(ix->ents);
		ix->ents = ents;
		ix->cap = cap;
	}
	e = index_slot(ix->ents, ix->cap, ino);
	if (!e->ino)
		ix->count++;
	e->ino = ino;
	e->cid = cid;
	return 0;
}

/* Returns the 1-based index of a new container id, or 0 when out of memory. */
static uint32_t index_add_id(struct cgroup_index *ix, const char id[CONTAINER_ID_LEN + 1])
{
	if (ix->nids == ix->ids_cap) {
		size_t cap = ix->ids_cap ? ix->ids_cap * 2 : 64;
		char(*ids)[CONTAINER_ID_LEN + 1];

		if (ix->nids >= INDEX_MAX_ENTRIES)
			return 0;
		ids = realloc(ix->ids, cap * sizeof(*ids));
		if (!ids)
			return 0;
		ix->ids = ids;
		ix->ids_cap = cap;
	}
	memcpy(ix->ids[ix->nids], id, CONTAINER_ID_LEN + 1);
	return (uint32_t)++ix->nids;
}

/*
 * Index the subdirectories of dfd (which this takes over), depth-first. cid is the container
 * of dfd's path: the last id in a path is in its deepest component that has one, so a child
 * inherits its parent's unless its own name carries one. Directories that cannot be opened
 * (not readable by pktrace's user, removed meanwhile) are left out with what is below them.
 */
static void index_dir(struct cgroup_index *ix, int dfd, uint32_t cid, unsigned int depth)
{
	char id[CONTAINER_ID_LEN + 1];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int fd;

	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	while ((de = readdir(d))) {
		uint32_t child = cid;

		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue; /* the controllers' files */
		if (de->d_name[0] == '.' &&
		    (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		/* The inode of the directory itself: d_ino may differ under some file systems. */
		if (fstat(fd, &st)) {
			close(fd);
			continue;
		}
		if (!container_id_from_cgroup(de->d_name, id)) {
			child = index_add_id(ix, id);
			if (!child)
				child = cid;
		}
		if (index_add(ix, st.st_ino, child)) {
			close(fd);
			break; /* out of memory: the rest stays out of the index */
		}
		if (depth + 1 < WALK_MAX_DEPTH)
			index_dir(ix, fd, child, depth + 1);
		else
			close(fd);
	}
	closedir(d);
}

/* Walk the whole tree again: cgroups removed since drop out, new ones come in. */
static void index_scan(struct enrich *en, uint64_t now)
{
	struct cgroup_index *ix = &en->cgroups;
	uint64_t took, wait;
	struct stat st;
	int fd;

	if (ix->ents)
		memset(ix->ents, 0, ix->cap * sizeof(*ix->ents));
	ix->count = 0;
	ix->nids = 0;
	en->stats.scans++;
	/* A fresh descriptor each time: a directory stream reads its entries once. */
	fd = openat(en->cgroup_root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		if (!fstat(fd, &st))
			index_add(ix, st.st_ino, 0); /* the root cgroup */
		index_dir(ix, fd, 0, 0);
	}
	took = en->clock_ns() - now;
	if (took > UINT64_MAX / RESCAN_COST_FACTOR)
		took = UINT64_MAX / RESCAN_COST_FACTOR;
	ix->last_scan_ns = took;
	wait = took * RESCAN_COST_FACTOR;
	if (wait < en->rescan_min_ns)
		wait = en->rescan_min_ns;
	ix->next_scan_ns = now + wait;
	if (!ix->next_scan_ns)
		ix->next_scan_ns = 1; /* 0 means never walked */
}

/* kernfs file handles are the 64-bit cgroup id (FILEID_KERNFS), so the cgroup needs no live pid. */
static int container_id_by_handle(struct enrich *en, uint64_t cgroup_id,
				  char out[CONTAINER_ID_LEN + 1])
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h = {.fh = {.handle_bytes = sizeof(uint64_t), .handle_type = 0xfe}};
	char link[64], path[4096];
	ssize_t n;
	int fd;

	out[0] = '\0';
	en->stats.handles++;
	memcpy(h.fh.f_handle, &cgroup_id, sizeof(cgroup_id));
	fd = open_by_handle_at(en->cgroup_root_fd, &h.fh, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	path[n] = '\0';
	container_id_from_cgroup(path, out);
	return 0;
}

/*
 * Resolve a cgroup id not in the cache. Returns when the answer is to be asked again:
 * 0 for never (the cgroup was found, and its id is never reused), else a time.
 */
static uint64_t resolve_container(struct enrich *en, uint32_t pid, uint64_t cgroup_id,
				  char id[CONTAINER_ID_LEN + 1])
{
	struct cgroup_index *ix = &en->cgroups;
	uint64_t now, expires;
	int err;

	if (en->cgroup_root_fd < 0) {
		/* Nothing better will come: the owner's /proc entry, once. */
		if (read_container_id(en, pid, id))
			id[0] = '\0';
		return 0;
	}
	if (en->cgroup_handles) {
		err = container_id_by_handle(en, cgroup_id, id);
		if (!err)
			return 0;
		/* Not allowed (pktrace dropped root) or not supported: never again. */
		if (err == -EPERM || err == -EACCES || err == -EOPNOTSUPP || err == -ENOSYS)
			en->cgroup_handles = 0;
	}
	if (!index_lookup(ix, cgroup_id, id))
		return 0;
	now = en->clock_ns();
	if (now >= ix->next_scan_ns) {
		index_scan(en, now);
		if (!index_lookup(ix, cgroup_id, id))
			return 0;
		/* Not in a tree walked just now: gone already, or out of pktrace's sight. */
		expires = now + en->negative_ttl_ns;
	} else {
		/* Maybe newer than the last walk: ask again once another walk is allowed. */
		expires = ix->next_scan_ns;
	}
	/* The owner may still be alive to say where it is. */
	if (read_container_id(en, pid, id))
		id[0] = '\0';
	return expires ? expires : 1;
}

static const char *container_of(struct enrich *en, uint32_t pid, uint64_t cgroup_id)
{
	/* Without a cgroup id there is no cache key; pktrace is single-threaded. */
	static char uncached[CONTAINER_ID_LEN + 1];
	struct enrich_slot *s;
	char id[CONTAINER_ID_LEN + 1];
	int hit;

	if (!pid)
		return ""; /* a socket whose owner is unknown */
	if (!cgroup_id) {
		if (read_container_id(en, pid, uncached))
			return "";
		return uncached;
	}
	s = slot_find(en->containers, cgroup_id, &hit);
	if (hit && (!s->expires_ns || en->clock_ns() < s->expires_ns))
		return s->value;
	/* A miss is cached too (for a while): no walk or open() per packet. */
	s->expires_ns = resolve_container(en, pid, cgroup_id, id);
	s->key = cgroup_id;
	memcpy(s->value, id, sizeof(s->value));
	return s->value;
}

/* uts_key names a UTS namespace together with its node name (a new key after sethostname),
 * so a cached name is never stale and a reused namespace never inherits one. */
static const char *hostname_of(struct enrich *en, uint64_t uts_key)
{
	struct enrich_slot *s;
	char name[CONTAINER_ID_LEN + 1];
	int hit;

	if (!uts_key || !en->uts_lookup)
		return en->host_name;
	s = slot_find(en->hosts, uts_key, &hit);
	if (hit)
		return s->value;
	/* A failure is cached as the host name: a lookup may scan /proc, not once per packet. */
	name[0] = '\0';
	if (en->uts_lookup(en->uts_ctx, uts_key, name, sizeof(name)) || !name[0])
		snprintf(name, sizeof(name), "%s", en->host_name);
	name[sizeof(name) - 1] = '\0';
	s->key = uts_key;
	memcpy(s->value, name, sizeof(s->value));
	return s->value;
}

void enrich_process(struct enrich *en, struct pkt_process *p, uint64_t uts_key)
{
	p->hostname = hostname_of(en, uts_key);
	p->container_id = container_of(en, p->pid, p->cgroup_id);
}
