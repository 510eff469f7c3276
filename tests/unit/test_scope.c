// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "scope.h"

static struct scope s;
static char err[256];

static int setup(void **state)
{
	memset(&s, 0, sizeof(s));
	memset(err, 'X', sizeof(err));
	err[sizeof(err) - 1] = '\0';
	return 0;
}

static int parse(const char *expr)
{
	return scope_parse(&s, expr, err, sizeof(err));
}

/* Expect a rejection whose message mentions word, on one line, and leaves s untouched. */
static void expect_error(const char *expr, const char *word)
{
	struct scope before = s;

	assert_int_equal(parse(expr), -EINVAL);
	if (!strstr(err, word))
		fail_msg("'%s': error '%s' lacks '%s'", expr, err, word);
	assert_null(strchr(err, '\n'));
	assert_memory_equal(&before, &s, sizeof(s));
}

static void test_single_pid(void **state)
{
	assert_int_equal(parse("pid=42"), 0);
	assert_int_equal(s.n_pids, 1);
	assert_int_equal(s.pids[0], 42);
	assert_int_equal(s.n_comms, 0);
	assert_int_equal(s.n_uids, 0);
}

static void test_pid_list_and_bounds(void **state)
{
	assert_int_equal(parse("pid=1,2,4194304"), 0);
	assert_int_equal(s.n_pids, 3);
	assert_int_equal(s.pids[0], 1);
	assert_int_equal(s.pids[1], 2);
	assert_int_equal(s.pids[2], 4194304);
}

static void test_comm_list(void **state)
{
	assert_int_equal(parse("comm=nginx,curl"), 0);
	assert_int_equal(s.n_comms, 2);
	assert_string_equal(s.comms[0], "nginx");
	assert_string_equal(s.comms[1], "curl");
}

static void test_comm_15_bytes(void **state)
{
	assert_int_equal(parse("comm=abcdefghijklmno"), 0);
	assert_string_equal(s.comms[0], "abcdefghijklmno");
}

static void test_comm_odd_chars(void **state)
{
	/* Only ',' separates: everything else, '=' included, is part of the name. */
	assert_int_equal(parse("comm=kworker/0:1,a=b"), 0);
	assert_int_equal(s.n_comms, 2);
	assert_string_equal(s.comms[0], "kworker/0:1");
	assert_string_equal(s.comms[1], "a=b");
}

static void test_uid_bounds(void **state)
{
	assert_int_equal(parse("uid=0,1000,4294967294"), 0);
	assert_int_equal(s.n_uids, 3);
	assert_int_equal(s.uids[0], 0);
	assert_int_equal(s.uids[1], 1000);
	assert_int_equal(s.uids[2], 4294967294U);
}

static void test_accumulates(void **state)
{
	assert_int_equal(parse("pid=1"), 0);
	assert_int_equal(parse("pid=2,3"), 0);
	assert_int_equal(parse("comm=sshd"), 0);
	assert_int_equal(parse("uid=0"), 0);
	assert_int_equal(parse("comm=bash"), 0);
	assert_int_equal(s.n_pids, 3);
	assert_int_equal(s.pids[2], 3);
	assert_int_equal(s.n_comms, 2);
	assert_string_equal(s.comms[1], "bash");
	assert_int_equal(s.n_uids, 1);
}

static void test_duplicates_ok(void **state)
{
	assert_int_equal(parse("pid=7,7"), 0);
	assert_int_equal(parse("pid=7"), 0);
	assert_int_equal(parse("comm=a,a"), 0);
	assert_int_equal(s.n_pids, 1);
	assert_int_equal(s.n_comms, 1);
}

static void test_max_values(void **state)
{
	char expr[1024];
	size_t len;
	int i;

	len = (size_t)snprintf(expr, sizeof(expr), "pid=");
	for (i = 1; i <= SCOPE_MAX_VALUES; i++)
		len += (size_t)snprintf(expr + len, sizeof(expr) - len, "%s%d", i > 1 ? "," : "",
					i);
	assert_int_equal(parse(expr), 0);
	assert_int_equal(s.n_pids, SCOPE_MAX_VALUES);
	/* A duplicate does not need a new slot. */
	assert_int_equal(parse("pid=1"), 0);
	expect_error("pid=100000", "too many");
}

static void test_max_values_across_calls_comm(void **state)
{
	char expr[32];
	int i;

	for (i = 0; i < SCOPE_MAX_VALUES; i++) {
		snprintf(expr, sizeof(expr), "comm=c%d", i);
		assert_int_equal(parse(expr), 0);
	}
	expect_error("comm=another", "too many");
}

static void test_missing_equals(void **state)
{
	expect_error("pid", "'='");
	expect_error("nginx", "'='");
	expect_error("", "empty");
}

static void test_unknown_key(void **state)
{
	expect_error("gid=3", "'gid'");
	expect_error("gid=3", "pid, comm, uid");
	expect_error("PID=3", "unknown key");
	expect_error("=3", "unknown key");
	expect_error("pid =3", "unknown key");
}

static void test_empty_values(void **state)
{
	expect_error("pid=", "no value");
	expect_error("comm=", "no value");
	expect_error("pid=1,,2", "empty value");
	expect_error("pid=1,", "empty value");
	expect_error("uid=,0", "empty value");
	expect_error("comm=a,,b", "empty value");
}

static void test_bad_numbers(void **state)
{
	expect_error("pid=x", "not a number");
	expect_error("pid=12a", "not a number");
	expect_error("pid= 1", "not a number");
	expect_error("pid=+1", "not a number");
	expect_error("pid=0x10", "not a number");
	expect_error("uid=root", "not a number");
	expect_error("pid=-1", "negative");
	expect_error("uid=-5", "negative");
	expect_error("pid=-", "not a number");
}

static void test_out_of_range(void **state)
{
	expect_error("pid=0", "out of range");
	expect_error("pid=4194305", "out of range");
	expect_error("pid=99999999999999999999999999", "out of range");
	expect_error("uid=4294967295", "out of range");
	expect_error("uid=18446744073709551616", "out of range");
	expect_error("pid=99999999999999999999x", "not a number");
}

static void test_comm_too_long(void **state)
{
	expect_error("comm=abcdefghijklmnop", "truncates");
	expect_error("comm=abcdefghijklmnop", "15");
	expect_error("comm=ok,abcdefghijklmnop", "abcdefghijklmno'");
}

static void test_error_leaves_scope_alone(void **state)
{
	assert_int_equal(parse("pid=1"), 0);
	/* The good value before the bad one must not be half-applied. */
	expect_error("pid=2,x", "not a number");
	assert_int_equal(s.n_pids, 1);
}

static void test_small_err_buffer(void **state)
{
	char small[8];

	assert_int_equal(scope_parse(&s, "bogus=1", small, sizeof(small)), -EINVAL);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_int_equal(scope_parse(&s, "bogus=1", NULL, 0), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_single_pid, setup),
		cmocka_unit_test_setup(test_pid_list_and_bounds, setup),
		cmocka_unit_test_setup(test_comm_list, setup),
		cmocka_unit_test_setup(test_comm_15_bytes, setup),
		cmocka_unit_test_setup(test_comm_odd_chars, setup),
		cmocka_unit_test_setup(test_uid_bounds, setup),
		cmocka_unit_test_setup(test_accumulates, setup),
		cmocka_unit_test_setup(test_duplicates_ok, setup),
		cmocka_unit_test_setup(test_max_values, setup),
		cmocka_unit_test_setup(test_max_values_across_calls_comm, setup),
		cmocka_unit_test_setup(test_missing_equals, setup),
		cmocka_unit_test_setup(test_unknown_key, setup),
		cmocka_unit_test_setup(test_empty_values, setup),
		cmocka_unit_test_setup(test_bad_numbers, setup),
		cmocka_unit_test_setup(test_out_of_range, setup),
		cmocka_unit_test_setup(test_comm_too_long, setup),
		cmocka_unit_test_setup(test_error_leaves_scope_alone, setup),
		cmocka_unit_test_setup(test_small_err_buffer, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
