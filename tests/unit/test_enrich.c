// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <mntent.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "enrich.h"

#define ID_A "3f4e2a1b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f"
#define ID_B "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HEX_63 "3f4e2a1b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2"
#define HEX_65 ID_A "a"

static char out[CONTAINER_ID_LEN + 1];

static void expect_id(const char *text, const char *id)
{
	memset(out, 'X', sizeof(out));
	assert_int_equal(container_id_from_cgroup(text, out), 0);
	assert_string_equal(out, id);
}

static void expect_none(const char *text)
{
	memset(out, 'X', sizeof(out));
	assert_int_equal(container_id_from_cgroup(text, out), -ENOENT);
	assert_string_equal(out, "");
}

static void test_docker(void **state)
{
	expect_id("0::/system.slice/docker-" ID_A ".scope\n", ID_A);
	expect_id("12:memory:/docker/" ID_A "\n", ID_A);
	expect_id("0::/docker/" ID_A, ID_A);
}

static void test_containerd(void **state)
{
	expect_id("0::/kubepods/burstable/pod8e2c5a0f-1b2c-4d3e-9f8a-7b6c5d4e3f2a/"
		  "cri-containerd-" ID_A ".scope\n",
		  ID_A);
	expect_id("0::/kubepods.slice/kubepods-besteffort.slice/"
		  "kubepods-besteffort-pod8e2c5a0f_1b2c_4d3e_9f8a_7b6c5d4e3f2a.slice/"
		  "cri-containerd-" ID_B ".scope\n",
		  ID_B);
	expect_id("11:cpuset:/kubepods/besteffort/pod1234/" ID_A "\n", ID_A);
}

static void test_crio(void **state)
{
	expect_id("0::/kubepods.slice/kubepods-pod1.slice/crio-" ID_A ".scope\n", ID_A);
}

static void test_podman(void **state)
{
	expect_id("0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" ID_A
		  ".scope\n",
		  ID_A);
	expect_id("0::/machine.slice/libpod-" ID_A ".scope/container\n", ID_A);
}

static void test_cgroup_v1_many_lines(void **state)
{
	expect_id("12:pids:/docker/" ID_A "\n"
		  "11:memory:/docker/" ID_A "\n"
		  "1:name=systemd:/docker/" ID_A "\n"
		  "0::/\n",
		  ID_A);
}

static void test_prefers_last(void **state)
{
	expect_id("0::/docker/" ID_A "/docker/" ID_B "\n", ID_B);
	expect_id("0::/system.slice/docker-" ID_B ".scope/" HEX_65 "\n", ID_B);
}

static void test_host_lines(void **state)
{
	expect_none("0::/user.slice/user-1000.slice/session-3.scope\n");
	expect_none("0::/\n");
	expect_none("0::/init.scope\n");
	expect_none("12:memory:/user.slice\n1:name=systemd:/init.scope\n");
	expect_none("");
}

static void test_wrong_lengths(void **state)
{
	expect_none("0::/system.slice/docker-" HEX_63 ".scope\n");
	expect_none("0::/system.slice/docker-" HEX_65 ".scope\n");
	expect_none("12:memory:/docker/" HEX_63 "\n");
	expect_none("12:memory:/docker/" HEX_65 "\n");
}

static void test_not_a_whole_token(void **state)
{
	/* Glued to a non-hex letter or an unexpected separator: part of some other name. */
	expect_none("0::/system.slice/docker-" ID_A "x.scope\n");
	expect_none("0::/system.slice/dockerx" ID_A ".scope\n");
	expect_none("0::/system.slice/docker_" ID_A ".scope\n");
	/* Uppercase hex is not what any runtime writes. */
	expect_none("0::/docker/3F4E2A1B9C8D7E6F5A4B3C2D1E0F9A8B7C6D5E4F3A2B1C0D9E8F7A6B5C4D3E2F");
	/* A bare id is still a whole token. */
	expect_id(ID_A, ID_A);
}

static char proc_root[64];
static int lookups;

static int uts_stub(void *ctx, uint64_t uts_key, char *name, size_t len)
{
	lookups++;
	if (uts_key == 666)
		return -ESRCH;
	snprintf(name, len, "%s-%llu", (const char *)ctx, (unsigned long long)uts_key);
	return 0;
}

static void write_cgroup(uint32_t pid, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%u", proc_root, pid);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%u/cgroup", proc_root, pid);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void remove_pid(uint32_t pid)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%u/cgroup", proc_root, pid);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%u", proc_root, pid);
	rmdir(path);
}

static int setup_enrich(void **state)
{
	static struct enrich en; /* some 150 KiB: not for the stack */

	snprintf(proc_root, sizeof(proc_root), "/tmp/pktrace-enrich-XXXXXX");
	if (!mkdtemp(proc_root))
		return -1;
	if (enrich_init(&en, uts_stub, "ctr"))
		return -1;
	en.proc_root = proc_root;
	lookups = 0;
	*state = &en;
	return 0;
}

static int teardown_enrich(void **state)
{
	char cmd[128];

	enrich_close(*state);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", proc_root);
	return system(cmd) ? -1 : 0;
}

static struct pkt_process proc(uint32_t pid, uint64_t cgroup_id)
{
	struct pkt_process p = { .pid = pid, .tid = pid, .cgroup_id = cgroup_id };

	return p;
}

static void test_init(void **state)
{
	struct enrich *en = *state;
	char name[256] = "";
	struct stat st;

	assert_int_equal(gethostname(name, sizeof(name)), 0);
	assert_string_equal(en->host_name, name);
	assert_int_equal(stat("/proc/self/ns/uts", &st), 0);
	assert_int_equal(en->host_uts_inum, (uint32_t)st.st_ino);
	assert_ptr_equal(en->uts_ctx, "ctr");
}

static void test_container_from_proc(void **state)
{
	struct enrich *en = *state;
	struct pkt_process p = proc(100, 5000), host = proc(101, 1);

	write_cgroup(100, "0::/system.slice/docker-" ID_A ".scope\n");
	write_cgroup(101, "0::/user.slice/user-1000.slice/session-3.scope\n");
	enrich_process(en, &p, 0);
	assert_string_equal(p.container_id, ID_A);
	enrich_process(en, &host, 0);
	assert_string_equal(host.container_id, "");
}

static void test_cache_hit_does_not_reread(void **state)
{
	struct enrich *en = *state;
	struct pkt_process p = proc(100, 5000), q = proc(100, 5000);

	write_cgroup(100, "0::/system.slice/docker-" ID_A ".scope\n");
	enrich_process(en, &p, 0);
	assert_string_equal(p.container_id, ID_A);

	/* Were the file read again, q would get ID_B. */
	write_cgroup(100, "0::/system.slice/docker-" ID_B ".scope\n");
	enrich_process(en, &q, 0);
	assert_string_equal(q.container_id, ID_A);
	remove_pid(100);
	enrich_process(en, &q, 0);
	assert_string_equal(q.container_id, ID_A);

	/* Another cgroup is another key. */
	q.cgroup_id = 5001;
	write_cgroup(100, "0::/system.slice/docker-" ID_B ".scope\n");
	enrich_process(en, &q, 0);
	assert_string_equal(q.container_id, ID_B);
}

static void test_empty_id_cached(void **state)
{
	struct enrich *en = *state;
	struct pkt_process p = proc(200, 77);

	write_cgroup(200, "0::/user.slice\n");
	enrich_process(en, &p, 0);
	assert_string_equal(p.container_id, "");
	write_cgroup(200, "0::/docker/" ID_A "\n");
	enrich_process(en, &p, 0);
	assert_string_equal(p.container_id, "");
}

static void test_gone_process_cached_empty(void **state)
{
	struct enrich *en = *state;
	struct pkt_process gone = proc(300, 88), alive = proc(301, 88);

	enrich_process(en, &gone, 0);
	assert_non_null(gone.container_id);
	assert_string_equal(gone.container_id, "");
	/* The miss is cached: later packets of that cgroup cost no open(). */
	write_cgroup(301, "0::/docker/" ID_B "\n");
	enrich_process(en, &alive, 0);
	assert_string_equal(alive.container_id, "");
}

/* The cgroup v2 mount point, or NULL. */
static const char *cgroup2_mount(char *buf, size_t len)
{
	FILE *f = setmntent("/proc/self/mounts", "r");
	struct mntent *m;
	const char *found = NULL;

	while (f && (m = getmntent(f))) {
		if (!strcmp(m->mnt_type, "cgroup2")) {
			snprintf(buf, len, "%s", m->mnt_dir);
			found = buf;
			break;
		}
	}
	if (f)
		endmntent(f);
	return found;
}

/* A real cgroup, its owner long gone: the id still resolves through the cgroup v2 mount. */
static void test_container_by_cgroup_id(void **state)
{
	struct enrich *en = *state;
	char root[512], dir[1024];
	struct pkt_process p;
	struct stat st;

	if (geteuid() != 0 || !cgroup2_mount(root, sizeof(root))) {
		if (getenv("CI"))
			fail_msg("needs root and a cgroup v2 mount (CI=true: not skipped)");
		skip();
	}
	snprintf(dir, sizeof(dir), "%s/docker-" ID_B ".scope", root);
	rmdir(dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(enrich_cgroup_root(en, root), 0);
	p = proc(4194304, st.st_ino); /* above pid_max's default: no such process */
	write_cgroup(4194304, "0::/docker/" ID_A "\n"); /* /proc must not be what answers */
	enrich_process(en, &p, 0);
	rmdir(dir);
	enrich_close(en);
	assert_string_equal(p.container_id, ID_B);
}

/* A fake cgroup v2 tree under the temporary /proc, and a clock that moves only when told. */
static uint64_t fake_now;

static uint64_t fake_clock(void)
{
	return fake_now;
}

#define MS 1000000ULL

static struct enrich *tree_setup(void **state)
{
	struct enrich *en = *state;
	char root[128];

	snprintf(root, sizeof(root), "%s/cg", proc_root);
	assert_int_equal(mkdir(root, 0755), 0);
	assert_int_equal(enrich_cgroup_root(en, root), 0);
	fake_now = 1000 * MS;
	en->clock_ns = fake_clock;
	en->cgroup_handles = 0; /* the walk, not whatever a handle on this file system does */
	return en;
}

/* mkdir -p of a path below the fake root; returns its inode number (its "cgroup id"). */
static uint64_t mkcg(const char *rel)
{
	char path[1024], *p;
	struct stat st;

	snprintf(path, sizeof(path), "%s/cg/%s", proc_root, rel);
	for (p = path + strlen(proc_root) + 4; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(path, 0755);
		*p = '/';
	}
	mkdir(path, 0755);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	return st.st_ino;
}

static void rmcg(const char *rel)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/cg/%s", proc_root, rel);
	assert_int_equal(rmdir(path), 0);
}

static void touch(const char *rel)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/cg/%s", proc_root, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
}

static const char *cid_of(struct enrich *en, uint32_t pid, uint64_t cgroup_id)
{
	struct pkt_process p = proc(pid, cgroup_id);

	enrich_process(en, &p, 0);
	assert_non_null(p.container_id);
	return p.container_id;
}

#define DEAD_PID 4194304 /* above pid_max's default: its /proc entry is what the test writes */

static void test_tree_resolves_ids(void **state)
{
	struct enrich *en = tree_setup(state);
	uint64_t sys = mkcg("system.slice"), cron = mkcg("system.slice/cron.service");
	uint64_t a = mkcg("system.slice/docker-" ID_A ".scope");
	uint64_t a_inner = mkcg("system.slice/docker-" ID_A ".scope/init/deeper");
	uint64_t pod = mkcg("kubepods.slice/kubepods-besteffort.slice/"
			    "kubepods-besteffort-pod8e2c5a0f_1b2c.slice");
	uint64_t b = mkcg("kubepods.slice/kubepods-besteffort.slice/"
			  "kubepods-besteffort-pod8e2c5a0f_1b2c.slice/cri-containerd-" ID_B ".scope");
	uint64_t outer = mkcg("docker/" ID_A), nested = mkcg("docker/" ID_A "/docker/" ID_B);
	uint64_t near = mkcg("system.slice/docker-" HEX_63 ".scope");
	uint64_t user = mkcg("user.slice/user-1000.slice/session-3.scope");
	char root[128];
	struct stat st;

	touch("cgroup.procs");
	touch("system.slice/docker-" ID_A ".scope/cgroup.procs");
	/* The owners are gone; /proc, were it asked, would say otherwise. */
	write_cgroup(DEAD_PID, "0::/docker/" ID_B "\n");

	assert_string_equal(cid_of(en, DEAD_PID, a), ID_A);
	assert_string_equal(cid_of(en, DEAD_PID, a_inner), ID_A);
	assert_string_equal(cid_of(en, DEAD_PID, b), ID_B);
	assert_string_equal(cid_of(en, DEAD_PID, outer), ID_A);
	assert_string_equal(cid_of(en, DEAD_PID, nested), ID_B);
	assert_string_equal(cid_of(en, DEAD_PID, sys), "");
	assert_string_equal(cid_of(en, DEAD_PID, cron), "");
	assert_string_equal(cid_of(en, DEAD_PID, pod), "");
	assert_string_equal(cid_of(en, DEAD_PID, near), "");
	assert_string_equal(cid_of(en, DEAD_PID, user), "");
	snprintf(root, sizeof(root), "%s/cg", proc_root);
	assert_int_equal(stat(root, &st), 0);
	assert_string_equal(cid_of(en, DEAD_PID, st.st_ino), "");
	/* One walk, built on the first miss, answered all of them; /proc was never read. */
	assert_int_equal(en->stats.scans, 1);
	assert_int_equal(en->stats.proc_reads, 0);

	/* Hits: no walk, no read, whatever the time. */
	fake_now += 3600000 * MS;
	assert_string_equal(cid_of(en, DEAD_PID, a), ID_A);
	assert_string_equal(cid_of(en, DEAD_PID, sys), "");
	assert_int_equal(en->stats.scans, 1);
	assert_int_equal(en->stats.proc_reads, 0);
}

static void test_tree_with_handles_on(void **state)
{
	struct enrich *en = tree_setup(state);
	uint64_t a = mkcg("system.slice/docker-" ID_A ".scope");

	/* Not a kernfs: a handle fails (EPERM without root, ESTALE with), the walk answers. */
	en->cgroup_handles = 1;
	write_cgroup(DEAD_PID, "0::/docker/" ID_B "\n");
	assert_string_equal(cid_of(en, DEAD_PID, a), ID_A);
	assert_int_equal(en->stats.handles, 1);
	assert_int_equal(en->stats.proc_reads, 0);
	if (geteuid() != 0)
		assert_int_equal(en->cgroup_handles, 0); /* not tried again */
}

static void test_tree_rescan_on_miss(void **state)
{
	struct enrich *en = tree_setup(state);
	uint64_t a = mkcg("system.slice/docker-" ID_A ".scope"), b;

	assert_string_equal(cid_of(en, 1, a), ID_A);
	assert_int_equal(en->stats.scans, 1);

	/* A container started after the walk. */
	b = mkcg("system.slice/docker-" ID_B ".scope");
	fake_now += 150 * MS;
	assert_string_equal(cid_of(en, DEAD_PID, b), ID_B);
	assert_int_equal(en->stats.scans, 2);
	assert_int_equal(en->stats.proc_reads, 0);
}

static void test_tree_rescans_bounded(void **state)
{
	struct enrich *en = tree_setup(state);
	uint64_t a = mkcg("system.slice/docker-" ID_A ".scope"), b, i;

	assert_string_equal(cid_of(en, DEAD_PID, a), ID_A);
	assert_int_equal(en->stats.scans, 1);

	/* A burst of unknown ids right after: no walk at all, the owners' /proc answers. */
	b = mkcg("system.slice/docker-" ID_B ".scope");
	write_cgroup(DEAD_PID, "0::/docker/" ID_A "\n"); /* moved on since */
	for (i = 0; i < 50; i++)
		assert_string_equal(cid_of(en, DEAD_PID, 0x7000000000ULL + i), ID_A);
	assert_string_equal(cid_of(en, DEAD_PID, b), ID_A);
	fake_now += 99 * MS;
	assert_string_equal(cid_of(en, DEAD_PID, 0x7000000000ULL + 50), ID_A);
	assert_string_equal(cid_of(en, DEAD_PID, b), ID_A);
	assert_int_equal(en->stats.scans, 1);
	assert_int_equal(en->stats.proc_reads, 52);

	/* 100 ms after the last walk: one more, for however many misses. */
	fake_now += 1 * MS;
	write_cgroup(DEAD_PID, "0::/\n");
	for (i = 0; i < 50; i++)
		assert_string_equal(cid_of(en, DEAD_PID, 0x7100000000ULL + i), "");
	assert_int_equal(en->stats.scans, 2);
	/* b's /proc answer was held only until a walk was allowed: the walk finds it now. */
	assert_string_equal(cid_of(en, DEAD_PID, b), ID_B);
	assert_int_equal(en->stats.scans, 2);
	assert_int_equal(en->stats.proc_reads, 52 + 50);
	fake_now += 10000 * MS;
	assert_string_equal(cid_of(en, 1, b), ID_B);
	assert_int_equal(en->stats.proc_reads, 52 + 50);
	assert_int_equal(en->stats.scans, 2);
}

static void test_tree_negative_cache(void **state)
{
	struct enrich *en = tree_setup(state);
	uint64_t ghost = 0x7200000000ULL;

	mkcg("user.slice");
	/* Not in the tree after a fresh walk: /proc answers, and the answer is kept a while. */
	write_cgroup(DEAD_PID, "0::/docker/" ID_A "\n");
	assert_string_equal(cid_of(en, DEAD_PID, ghost), ID_A);
	assert_int_equal(en->stats.scans, 1);
	assert_int_equal(en->stats.proc_reads, 1);
	write_cgroup(DEAD_PID, "0::/docker/" ID_B "\n");
	fake_now += en->negative_ttl_ns - 1;
	assert_string_equal(cid_of(en, DEAD_PID, ghost), ID_A);
	assert_int_equal(en->stats.scans, 1);
	assert_int_equal(en->stats.proc_reads, 1);

	/* Then asked again: one more walk, one more read. */
	fake_now += 1;
	assert_string_equal(cid_of(en, DEAD_PID, ghost), ID_B);
	assert_int_equal(en->stats.scans, 2);
	assert_int_equal(en->stats.proc_reads, 2);

	/* An owner gone too: "" is what is kept. */
	remove_pid(DEAD_PID);
	assert_string_equal(cid_of(en, DEAD_PID, ghost + 1), "");
	assert_string_equal(cid_of(en, DEAD_PID, ghost + 1), "");
	assert_int_equal(en->stats.proc_reads, 3);
}

static void test_tree_deleted_cgroup(void **state)
{
	struct enrich *en = tree_setup(state);
	uint64_t a = mkcg("system.slice/docker-" ID_A ".scope");
	uint64_t b = mkcg("system.slice/docker-" ID_B ".scope");
	char hidden[256], moved[1024];
	struct stat st;

	/* Made now, outside the tree, so that its inode number is nobody else's (a file
	 * system other than cgroupfs reuses the numbers of removed directories). */
	snprintf(hidden, sizeof(hidden), "%s/docker-" ID_A ".scope", proc_root);
	assert_int_equal(mkdir(hidden, 0755), 0);
	assert_int_equal(stat(hidden, &st), 0);

	assert_string_equal(cid_of(en, DEAD_PID, a), ID_A);
	assert_int_equal(en->stats.scans, 1);

	/* Resolved, then removed: the answer stands (cgroup ids are never reused). */
	rmcg("system.slice/docker-" ID_A ".scope");
	fake_now += 200 * MS;
	assert_string_equal(cid_of(en, DEAD_PID, 0x7300000000ULL), ""); /* forces a walk */
	assert_int_equal(en->stats.scans, 2);
	assert_string_equal(cid_of(en, DEAD_PID, a), ID_A);

	/* Removed after a walk saw it, asked for only now: still its container's. */
	rmcg("system.slice/docker-" ID_B ".scope");
	assert_string_equal(cid_of(en, DEAD_PID, b), ID_B);
	assert_int_equal(en->stats.scans, 2);

	/* Created and removed between two walks, its owner gone: nobody can tell any more. */
	mkcg("system.slice/docker-" HEX_65);
	snprintf(moved, sizeof(moved), "%s/cg/system.slice/docker-" HEX_65 "/docker-" ID_A ".scope",
		 proc_root);
	assert_int_equal(rename(hidden, moved), 0);
	rmcg("system.slice/docker-" HEX_65 "/docker-" ID_A ".scope");
	fake_now += 200 * MS;
	assert_string_equal(cid_of(en, DEAD_PID, st.st_ino), "");
	assert_int_equal(en->stats.scans, 3);
	assert_int_equal(en->stats.proc_reads, 2);
	/* That walk dropped b too (the index holds what is there: the root, system.slice and
	 * docker-<65 hex>); the cache still knows it. */
	assert_int_equal(en->cgroups.count, 3);
	assert_string_equal(cid_of(en, DEAD_PID, b), ID_B);
	assert_int_equal(en->stats.proc_reads, 2);
}

static void test_tree_many_cgroups(void **state)
{
	struct enrich *en = tree_setup(state);
	static uint64_t ino[700];
	char name[256], want[CONTAINER_ID_LEN + 1];
	int i;

	/* More than the index's first size (and the front cache's): it grows, nothing is lost. */
	for (i = 0; i < 700; i++) {
		snprintf(want, sizeof(want), "%064x", i + 1);
		snprintf(name, sizeof(name), "machine.slice/libpod-%s.scope%s", want,
			 i % 2 ? "/container" : "");
		ino[i] = mkcg(name);
	}
	for (i = 0; i < 700; i++) {
		snprintf(want, sizeof(want), "%064x", i + 1);
		assert_string_equal(cid_of(en, DEAD_PID, ino[i]), want);
	}
	assert_int_equal(en->stats.scans, 1);
	assert_int_equal(en->stats.proc_reads, 0);
}

static void test_tree_unreadable_root(void **state)
{
	struct enrich *en = *state;
	char root[128];

	snprintf(root, sizeof(root), "%s/nowhere", proc_root);
	assert_int_equal(enrich_cgroup_root(en, root), -ENOENT);
	/* No tree: /proc, as before, kept for good. */
	write_cgroup(100, "0::/docker/" ID_A "\n");
	assert_string_equal(cid_of(en, 100, 5000), ID_A);
	assert_int_equal(en->stats.scans, 0);
}

static void test_unknown_owner_reads_nothing(void **state)
{
	struct enrich *en = *state;
	struct pkt_process p = proc(0, 0);

	write_cgroup(0, "0::/docker/" ID_A "\n");
	enrich_process(en, &p, 0);
	assert_string_equal(p.container_id, "");
}

static void test_no_cgroup_id_reads_each_time(void **state)
{
	struct enrich *en = *state;
	struct pkt_process p = proc(400, 0);

	write_cgroup(400, "0::/docker/" ID_A "\n");
	enrich_process(en, &p, 0);
	assert_string_equal(p.container_id, ID_A);
	write_cgroup(400, "0::/docker/" ID_B "\n");
	enrich_process(en, &p, 0);
	assert_string_equal(p.container_id, ID_B);
}

static void test_big_cgroup_file(void **state)
{
	struct enrich *en = *state;
	struct pkt_process p = proc(500, 99), q = proc(501, 100);
	char text[8192];
	size_t len = 0;

	/* The id straddles the 4 KiB read: only its first part is seen, which is no id. */
	while (len < 4096 - 40)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "9:x:/a/b/c/d/e/f/g\n");
	snprintf(text + len, sizeof(text) - len, "1:y:/docker/" ID_A "\n");
	write_cgroup(500, text);
	enrich_process(en, &p, 0);
	assert_string_equal(p.container_id, "");

	/* Well inside the buffer it is found. */
	write_cgroup(501, "1:y:/docker/" ID_B "\n9:x:/a\n");
	enrich_process(en, &q, 0);
	assert_string_equal(q.container_id, ID_B);
}

static void test_hostname(void **state)
{
	struct enrich *en = *state;
	struct pkt_process p = proc(600, 1);

	enrich_process(en, &p, 0);
	assert_string_equal(p.hostname, en->host_name);
	assert_int_equal(lookups, 0);

	enrich_process(en, &p, 4026532200U);
	assert_string_equal(p.hostname, "ctr-4026532200");
	assert_int_equal(lookups, 1);
	enrich_process(en, &p, 4026532200U);
	assert_string_equal(p.hostname, "ctr-4026532200");
	assert_int_equal(lookups, 1);

	enrich_process(en, &p, 4026532201U);
	assert_string_equal(p.hostname, "ctr-4026532201");
	assert_int_equal(lookups, 2);

	/* Keys are 64 bits: two that share their low half are two names. */
	enrich_process(en, &p, (1ULL << 32) | 4026532201U);
	assert_string_equal(p.hostname, "ctr-8321499497");
	assert_int_equal(lookups, 3);
}

static void test_hostname_lookup_fails(void **state)
{
	struct enrich *en = *state;
	struct pkt_process p = proc(600, 1);

	enrich_process(en, &p, 666);
	assert_string_equal(p.hostname, en->host_name);
	/* The failure is cached too: no second lookup. */
	enrich_process(en, &p, 666);
	assert_string_equal(p.hostname, en->host_name);
	assert_int_equal(lookups, 1);
}

static void test_hostname_without_lookup(void **state)
{
	struct enrich *en = *state;
	struct pkt_process p = proc(600, 1);

	en->uts_lookup = NULL;
	enrich_process(en, &p, 4026532200U);
	assert_string_equal(p.hostname, en->host_name);
}

static void test_many_keys(void **state)
{
	struct enrich *en = *state;
	struct pkt_process p = proc(700, 0);
	char want[64];
	uint32_t i;

	/* More keys than slots: evictions must never hand out another key's value. */
	for (i = 1; i <= 3 * ENRICH_CACHE_SLOTS; i++) {
		enrich_process(en, &p, 4026531840U + i);
		snprintf(want, sizeof(want), "ctr-%u", 4026531840U + i);
		assert_string_equal(p.hostname, want);
	}
	for (i = 3 * ENRICH_CACHE_SLOTS; i >= 1; i--) {
		enrich_process(en, &p, 4026531840U + i);
		snprintf(want, sizeof(want), "ctr-%u", 4026531840U + i);
		assert_string_equal(p.hostname, want);
	}
}

static void test_half_full_cache_hits(void **state)
{
	struct enrich *en = *state;
	struct pkt_process p = proc(700, 0);
	uint32_t i;

	/* Sequential inode numbers, as the kernel hands them out, must spread over the slots. */
	for (i = 1; i <= ENRICH_CACHE_SLOTS / 2; i++)
		enrich_process(en, &p, 4026531840U + i);
	assert_int_equal(lookups, ENRICH_CACHE_SLOTS / 2);
	for (i = 1; i <= ENRICH_CACHE_SLOTS / 2; i++)
		enrich_process(en, &p, 4026531840U + i);
	assert_int_equal(lookups, ENRICH_CACHE_SLOTS / 2);
}

#define WITH_PROC(fn) cmocka_unit_test_setup_teardown(fn, setup_enrich, teardown_enrich)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_docker),
		cmocka_unit_test(test_containerd),
		cmocka_unit_test(test_crio),
		cmocka_unit_test(test_podman),
		cmocka_unit_test(test_cgroup_v1_many_lines),
		cmocka_unit_test(test_prefers_last),
		cmocka_unit_test(test_host_lines),
		cmocka_unit_test(test_wrong_lengths),
		cmocka_unit_test(test_not_a_whole_token),
		WITH_PROC(test_init),
		WITH_PROC(test_container_from_proc),
		WITH_PROC(test_cache_hit_does_not_reread),
		WITH_PROC(test_empty_id_cached),
		WITH_PROC(test_gone_process_cached_empty),
		WITH_PROC(test_unknown_owner_reads_nothing),
		WITH_PROC(test_container_by_cgroup_id),
		WITH_PROC(test_tree_resolves_ids),
		WITH_PROC(test_tree_with_handles_on),
		WITH_PROC(test_tree_rescan_on_miss),
		WITH_PROC(test_tree_rescans_bounded),
		WITH_PROC(test_tree_negative_cache),
		WITH_PROC(test_tree_deleted_cgroup),
		WITH_PROC(test_tree_many_cgroups),
		WITH_PROC(test_tree_unreadable_root),
		WITH_PROC(test_no_cgroup_id_reads_each_time),
		WITH_PROC(test_big_cgroup_file),
		WITH_PROC(test_hostname),
		WITH_PROC(test_hostname_lookup_fails),
		WITH_PROC(test_hostname_without_lookup),
		WITH_PROC(test_many_keys),
		WITH_PROC(test_half_full_cache_hits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
