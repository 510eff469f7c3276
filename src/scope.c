// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "scope.h"

#define PID_MAX_LIMIT 4194304U /* the kernel's PID_MAX_LIMIT on 64-bit */
#define UID_MAX_VALID 4294967294U /* (uid_t)-1 means "no uid" to the kernel */

enum scope_key { KEY_PID, KEY_COMM, KEY_UID };

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Strict decimal: no sign, no blanks, no base prefix, so "1e3" or " 5" are not numbers. */
static int parse_u32(const char *name, const char *v, size_t len, uint32_t min, uint32_t max,
		     uint32_t *out, char *err, size_t errlen)
{
	uint64_t n = 0;
	size_t i;

	if (v[0] == '-') {
		for (i = 1; i < len && v[i] >= '0' && v[i] <= '9'; i++)
			;
		if (i > 1 && i == len)
			return fail(err, errlen, "%s '%.*s' is negative (valid: %u..%u)", name,
				    (int)len, v, min, max);
	}
	for (i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return fail(err, errlen, "%s '%.*s' is not a number", name, (int)len, v);
		n = n * 10 + (uint64_t)(v[i] - '0');
		/* Stop before n itself can overflow; anything this large is out of range. */
		if (n > max)
			break;
	}
	for (; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return fail(err, errlen, "%s '%.*s' is not a number", name, (int)len, v);
	}
	if (n < min || n > max)
		return fail(err, errlen, "%s '%.*s' is out of range (valid: %u..%u)", name,
			    (int)len, v, min, max);
	*out = (uint32_t)n;
	return 0;
}

static int add_u32(uint32_t *vals, int *n, uint32_t v, const char *name, char *err, size_t errlen)
{
	int i;

	for (i = 0; i < *n; i++) {
		if (vals[i] == v)
			return 0;
	}
	if (*n >= SCOPE_MAX_VALUES)
		return fail(err, errlen, "too many %s values (at most %d)", name, SCOPE_MAX_VALUES);
	vals[(*n)++] = v;
	return 0;
}

static int add_comm(struct scope *s, const char *v, size_t len, char *err, size_t errlen)
{
	int i;

	if (len > SCOPE_COMM_LEN - 1)
		return fail(err, errlen,
			    "comm '%.*s' is %zu bytes, but the kernel truncates comm to %d "
			    "(use '%.*s')",
			    (int)len, v, len, SCOPE_COMM_LEN - 1, SCOPE_COMM_LEN - 1, v);
	for (i = 0; i < s->n_comms; i++) {
		if (strlen(s->comms[i]) == len && memcmp(s->comms[i], v, len) == 0)
			return 0;
	}
	if (s->n_comms >= SCOPE_MAX_VALUES)
		return fail(err, errlen, "too many comm values (at most %d)", SCOPE_MAX_VALUES);
	memcpy(s->comms[s->n_comms], v, len);
	s->comms[s->n_comms][len] = '\0';
	s->n_comms++;
	return 0;
}

int scope_parse(struct scope *s, const char *expr, char *err, size_t errlen)
{
	/* Work on a copy so that a rejected expression leaves s as it was. */
	struct scope tmp = *s;
	const char *eq, *v, *end;
	enum scope_key key;
	size_t klen;
	int ret;

	if (err && errlen)
		err[0] = '\0';
	if (!expr || !*expr)
		return fail(err, errlen, "empty scope (expected pid=N, comm=NAME or uid=N)");
	eq = strchr(expr, '=');
	if (!eq)
		return fail(err, errlen, "missing '=' (expected pid=N, comm=NAME or uid=N)");
	klen = (size_t)(eq - expr);
	if (klen == 3 && !memcmp(expr, "pid", 3))
		key = KEY_PID;
	else if (klen == 4 && !memcmp(expr, "comm", 4))
		key = KEY_COMM;
	else if (klen == 3 && !memcmp(expr, "uid", 3))
		key = KEY_UID;
	else
		return fail(err, errlen, "unknown key '%.*s' (valid keys: pid, comm, uid)",
			    (int)klen, expr);

	v = eq + 1;
	if (!*v)
		return fail(err, errlen, "no value after '%.*s='", (int)klen, expr);
	for (;;) {
		uint32_t n;
		size_t len;

		end = strchr(v, ',');
		len = end ? (size_t)(end - v) : strlen(v);
		if (len == 0)
			return fail(err, errlen, "empty value in '%s'", eq + 1);
		switch (key) {
		case KEY_PID:
			ret = parse_u32("pid", v, len, 1, PID_MAX_LIMIT, &n, err, errlen);
			if (!ret)
				ret = add_u32(tmp.pids, &tmp.n_pids, n, "pid", err, errlen);
			break;
		case KEY_UID:
			ret = parse_u32("uid", v, len, 0, UID_MAX_VALID, &n, err, errlen);
			if (!ret)
				ret = add_u32(tmp.uids, &tmp.n_uids, n, "uid", err, errlen);
			break;
		case KEY_COMM:
		default:
			ret = add_comm(&tmp, v, len, err, errlen);
			break;
		}
		if (ret)
			return ret;
		if (!end)
			break;
		v = end + 1;
	}
	*s = tmp;
	return 0;
}

int scope_match(const struct scope *s, uint32_t pid, const char *comm, uint32_t uid)
{
	int i, hit;

	for (i = 0, hit = !s->n_pids; i < s->n_pids && !hit; i++)
		hit = s->pids[i] == pid;
	if (!hit)
		return 0;
	for (i = 0, hit = !s->n_comms; i < s->n_comms && !hit; i++)
		hit = !strncmp(s->comms[i], comm, SCOPE_COMM_LEN);
	if (!hit)
		return 0;
	for (i = 0, hit = !s->n_uids; i < s->n_uids && !hit; i++)
		hit = s->uids[i] == uid;
	return hit;
}
