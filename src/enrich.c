// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "enrich.h"

#define PROBE_SLOTS 4
#define CGROUP_READ_SIZE 4096

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
static int read_container_id(const struct enrich *en, uint32_t pid,
			     char out[CONTAINER_ID_LEN + 1])
{
	char path[256], buf[CGROUP_READ_SIZE];
	ssize_t n;
	int fd;

	out[0] = '\0';
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

int enrich_cgroup_root(struct enrich *en, const char *path)
{
	if (en->cgroup_root_fd >= 0)
		close(en->cgroup_root_fd);
	en->cgroup_root_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return en->cgroup_root_fd < 0 ? -errno : 0;
}

void enrich_close(struct enrich *en)
{
	if (en->cgroup_root_fd >= 0)
		close(en->cgroup_root_fd);
	en->cgroup_root_fd = -1;
}

/* kernfs file handles are the 64-bit cgroup id (FILEID_KERNFS), so the cgroup needs no live pid. */
static int container_id_by_cgroup(const struct enrich *en, uint64_t cgroup_id,
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
	if (en->cgroup_root_fd < 0)
		return -ENOENT;
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
	if (hit)
		return s->value;
	/* A failed read (the owner and its cgroup are gone) is cached too: no open() per packet. */
	if (container_id_by_cgroup(en, cgroup_id, id) && read_container_id(en, pid, id))
		id[0] = '\0';
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
