// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "opts.h"

static struct opts o;
static char *out_text, *err_text;

/* Run opts_parse on a NULL-terminated argv; out_text and err_text get what it printed. */
#define PARSE(...) parse_argv((char *[]){ "pktrace", __VA_ARGS__, NULL })
#define PARSE_NONE() parse_argv((char *[]){ "pktrace", NULL })

static enum opts_result parse_argv(char **argv)
{
	size_t out_len, err_len;
	FILE *out, *err;
	enum opts_result r;
	int argc = 0;

	while (argv[argc])
		argc++;
	free(out_text);
	free(err_text);
	out = open_memstream(&out_text, &out_len);
	err = open_memstream(&err_text, &err_len);
	assert_non_null(out);
	assert_non_null(err);
	r = opts_parse(&o, argc, argv, out, err);
	fclose(out);
	fclose(err);
	return r;
}

static int lines(const char *text)
{
	int n = 0;

	for (; *text; text++)
		n += *text == '\n';
	return n;
}

/* Exactly one line on err, starting "pktrace: " and mentioning word; nothing on out. */
static void expect_error(enum opts_result r, const char *word)
{
	assert_int_equal(r, OPTS_ERROR);
	assert_int_equal(lines(err_text), 1);
	assert_int_equal(strlen(err_text), strcspn(err_text, "\n") + 1);
	if (strncmp(err_text, "pktrace: ", 9) || !strstr(err_text, word))
		fail_msg("error '%s' lacks 'pktrace: ' or '%s'", err_text, word);
	assert_string_equal(out_text, "");
}

static int teardown(void **state)
{
	free(out_text);
	free(err_text);
	out_text = err_text = NULL;
	return 0;
}

static void test_defaults(void **state)
{
	assert_int_equal(PARSE_NONE(), OPTS_RUN);
	assert_int_equal(o.format, OUTPUT_TABLE);
	assert_null(o.output_path);
	assert_null(o.command);
	assert_int_equal(o.events, EVENT_BIT(EVENT_NET_PACKET_TCP));
	assert_int_equal(o.events_given, 0);
	assert_int_equal(o.scope.n_pids, 0);
	assert_int_equal(o.scope.n_comms, 0);
	assert_int_equal(o.scope.n_uids, 0);
	assert_string_equal(o.user, "nobody");
	assert_int_equal(o.user_given, 0);
	assert_int_equal(o.ringbuf_bytes, 0);
	assert_string_equal(out_text, "");
	assert_string_equal(err_text, "");
}

static void test_buffer_size(void **state)
{
	assert_int_equal(PARSE("-B", "8192"), OPTS_RUN);
	assert_int_equal(o.ringbuf_bytes, 8ULL << 20);
	assert_int_equal(PARSE("--buffer-size", "64"), OPTS_RUN);
	assert_int_equal(o.ringbuf_bytes, 64ULL << 10);
	assert_int_equal(PARSE("--buffer-size=1048576"), OPTS_RUN);
	assert_int_equal(o.ringbuf_bytes, 1ULL << 30);
	/* Rounded up to the next power of two. */
	assert_int_equal(PARSE("-B", "100"), OPTS_RUN);
	assert_int_equal(o.ringbuf_bytes, 128ULL << 10);
	assert_int_equal(PARSE("-B3000"), OPTS_RUN);
	assert_int_equal(o.ringbuf_bytes, 4ULL << 20);
	assert_int_equal(PARSE("-B", "65"), OPTS_RUN);
	assert_int_equal(o.ringbuf_bytes, 128ULL << 10);
	/* -B is the ring buffer; --hold-bytes keeps its own meaning. */
	assert_int_equal(PARSE("--hold-bytes", "1M", "-B", "256"), OPTS_RUN);
	assert_int_equal(o.hold_bytes, 1 << 20);
	assert_int_equal(o.ringbuf_bytes, 256ULL << 10);
}

static void test_order_window(void **state)
{
	assert_int_equal(PARSE_NONE(), OPTS_RUN);
	assert_int_equal(o.order_window_us, OPTS_ORDER_WINDOW_US);
	assert_int_equal(PARSE("--order-window", "0"), OPTS_RUN);
	assert_int_equal(o.order_window_us, 0);
	assert_int_equal(PARSE("--order-window=1000000"), OPTS_RUN);
	assert_int_equal(o.order_window_us, 1000000);
	expect_error(PARSE("--order-window", "1000001"),
		     "--order-window '1000001': want microseconds from 0 to 1000000");
	expect_error(PARSE("--order-window", "-1"), "'-1'");
	expect_error(PARSE("--order-window", "2k"), "'2k'");
	expect_error(PARSE("--order-window", ""), "microseconds");
	assert_int_equal(PARSE_NONE(), OPTS_RUN);
	assert_int_equal(o.order_hold_us, OPTS_ORDER_HOLD_US);
	assert_int_equal(PARSE("--order-hold", "0"), OPTS_RUN);
	assert_int_equal(o.order_hold_us, 0);
	assert_int_equal(PARSE("--order-hold=2000000"), OPTS_RUN);
	assert_int_equal(o.order_hold_us, 2000000);
	expect_error(PARSE("--order-hold", "2000001"),
		     "--order-hold '2000001': want microseconds from 0 to 2000000");
	expect_error(PARSE("--order-hold", "1e3"), "'1e3'");
}

static void test_buffer_size_errors(void **state)
{
	expect_error(PARSE("-B", "63"), "-B '63': want a ring buffer size in KiB from 64 to 1048576");
	expect_error(PARSE("-B", "1048577"), "'1048577'");
	expect_error(PARSE("-B", "0"), "from 64");
	expect_error(PARSE("-B", "-8192"), "'-8192'");
	expect_error(PARSE("-B", "8M"), "'8M'");
	expect_error(PARSE("-B", ""), "KiB");
	expect_error(PARSE("-B", "99999999999999999999999"), "KiB");
	expect_error(PARSE("-B"), "'-B' needs an argument");
	expect_error(PARSE("--buffer-size"), "'--buffer-size' needs an argument");
}

static void test_user(void **state)
{
	assert_int_equal(PARSE("-Z", "daemon"), OPTS_RUN);
	assert_string_equal(o.user, "daemon");
	assert_int_equal(o.user_given, 1);
	assert_int_equal(PARSE("--relinquish-privileges", "root"), OPTS_RUN);
	assert_string_equal(o.user, "root");
	assert_int_equal(PARSE("--relinquish-privileges=www-data", "-Z", "nobody"), OPTS_RUN);
	assert_string_equal(o.user, "nobody");
	assert_int_equal(o.user_given, 1);
	/* The command's own -Z is the command's. */
	assert_int_equal(PARSE("--", "cmd", "-Z", "root"), OPTS_RUN);
	assert_string_equal(o.user, "nobody");
	assert_int_equal(o.user_given, 0);
	expect_error(PARSE("-Z", ""), "-Z: empty user name");
	expect_error(PARSE("-Z"), "'-Z' needs an argument");
	expect_error(PARSE("--relinquish-privileges"), "'--relinquish-privileges' needs");
}

/* tcpdump's habits: -i (any: all), -Q, -c with tcpdump's meaning, --once, -n accepted. */
static void test_tcpdump_habits(void **state)
{
	assert_int_equal(PARSE_NONE(), OPTS_RUN);
	assert_null(o.interface);
	assert_int_equal(o.directions, OPTS_DIR_IN | OPTS_DIR_OUT);
	assert_int_equal(o.count, 0);
	assert_int_equal(o.once, 0);
	assert_int_equal(PARSE("-n", "-i", "veth0", "-Q", "in", "-c", "5", "--once", "-F", "text"),
			 OPTS_RUN);
	assert_string_equal(o.interface, "veth0");
	assert_int_equal(o.directions, OPTS_DIR_IN);
	assert_int_equal(o.count, 5);
	assert_int_equal(o.once, 1);
	assert_int_equal(o.format, OUTPUT_TEXT);
	assert_int_equal(PARSE("-i", "any", "-Q", "out", "--count", "2k"), OPTS_RUN);
	assert_null(o.interface);
	assert_int_equal(o.directions, OPTS_DIR_OUT);
	assert_int_equal(o.count, 2048);
	assert_int_equal(PARSE("--interface=lo", "--direction", "inout", "-nc3"), OPTS_RUN);
	assert_string_equal(o.interface, "lo");
	assert_int_equal(o.directions, OPTS_DIR_IN | OPTS_DIR_OUT);
	assert_int_equal(o.count, 3);
}

static void test_tcpdump_habits_errors(void **state)
{
	expect_error(PARSE("-Q", "both"), "-Q 'both': want in, out or inout");
	expect_error(PARSE("-c", "0"), "-c '0'");
	expect_error(PARSE("-c", "-1"), "-c '-1'");
	expect_error(PARSE("-c", "x"), "-c 'x'");
	expect_error(PARSE("-i", ""), "-i ''");
	expect_error(PARSE("-i", "a-name-far-too-long"), "-i 'a-name-far-too-long'");
	expect_error(PARSE("--once=1"), "'--once' takes no argument");
}

static void test_format(void **state)
{
	assert_int_equal(PARSE("-F", "json"), OPTS_RUN);
	assert_int_equal(o.format, OUTPUT_JSON);
	assert_int_equal(PARSE("--format", "json"), OPTS_RUN);
	assert_int_equal(o.format, OUTPUT_JSON);
	assert_int_equal(PARSE("--format=table"), OPTS_RUN);
	assert_int_equal(o.format, OUTPUT_TABLE);
	assert_int_equal(PARSE("-Fjson"), OPTS_RUN);
	assert_int_equal(o.format, OUTPUT_JSON);
	assert_int_equal(PARSE("-F", "json", "-F", "table"), OPTS_RUN);
	assert_int_equal(o.format, OUTPUT_TABLE);
}

static void test_format_errors(void **state)
{
	expect_error(PARSE("-F", "xml"), "-F: unknown format 'xml' (use table, text or json)");
	expect_error(PARSE("--format=JSON"), "'JSON'");
	expect_error(PARSE("--format", ""), "unknown format");
}

static void test_output(void **state)
{
	assert_int_equal(PARSE("-o", "/tmp/x.txt"), OPTS_RUN);
	assert_string_equal(o.output_path, "/tmp/x.txt");
	assert_int_equal(PARSE("--output", "y"), OPTS_RUN);
	assert_string_equal(o.output_path, "y");
	assert_int_equal(PARSE("--output=z"), OPTS_RUN);
	assert_string_equal(o.output_path, "z");
	expect_error(PARSE("-o", ""), "empty");
}

static void test_events(void **state)
{
	event_mask tcp = EVENT_BIT(EVENT_NET_PACKET_TCP);

	assert_int_equal(PARSE("-e", "net_packet_tcp"), OPTS_RUN);
	assert_int_equal(o.events, tcp);
	assert_int_equal(o.events_given, 1);
	assert_int_equal(PARSE("--events", "net_packet_tcp,net_packet_tcp"), OPTS_RUN);
	assert_int_equal(o.events, tcp);
	assert_int_equal(PARSE("--events=net_packet_tcp"), OPTS_RUN);
	assert_int_equal(o.events, tcp);
	/* Sets, repeated -e, and events and sets mixed. */
	assert_int_equal(PARSE("-e", "network_events"), OPTS_RUN);
	assert_int_equal(o.events, event_set_members(EVSET_NETWORK_EVENTS));
	assert_true(o.events & tcp);
	assert_int_equal(PARSE("-e", "net_packet_tcp", "-e", "network_events"), OPTS_RUN);
	assert_int_equal(o.events, event_set_members(EVSET_NETWORK_EVENTS));
	assert_int_equal(PARSE("-enetwork_events,net_packet_tcp"), OPTS_RUN);
	assert_int_equal(o.events, event_set_members(EVSET_NETWORK_EVENTS));
	/* Every event and every set with members in the catalogue is accepted by name. */
	for (size_t i = 0; i < EVENT__COUNT; i++) {
		assert_int_equal(parse_argv((char *[]){ "pktrace", "-e", (char *)events[i].name,
							 NULL }), OPTS_RUN);
		assert_int_equal(o.events, EVENT_BIT(i));
	}
	for (size_t i = 0; i < event_sets_n; i++) {
		if (!event_set_members(event_sets[i].bit))
			continue;
		assert_int_equal(parse_argv((char *[]){ "pktrace", "-e",
							 (char *)event_sets[i].name, NULL }),
				 OPTS_RUN);
		assert_int_equal(o.events, event_set_members(event_sets[i].bit));
	}
}

static void test_events_errors(void **state)
{
	expect_error(PARSE("-e", "foo"),
		     "pktrace: unknown event 'foo' (known: net_packet_tcp, net_flow_tcp_begin, "
		     "net_flow_tcp_end, net_packet_udp, net_packet_icmp, net_packet_icmpv6, "
		     "net_packet_ipv4, net_packet_ipv6, network_events, flows)");
	expect_error(PARSE("-e", "net_packet_tcp,net_packet_sctp"), "'net_packet_sctp'");
	expect_error(PARSE("-e", "net_packet_tcp,"), "empty event");
	expect_error(PARSE("--events", ""), "empty event");
	expect_error(PARSE("-e", "net_packet_tcp", "-e", "Net_packet_tcp"), "'Net_packet_tcp'");
}

static void test_flows_set(void **state)
{
	event_mask flows = EVENT_BIT(EVENT_NET_FLOW_TCP_BEGIN) | EVENT_BIT(EVENT_NET_FLOW_TCP_END);

	assert_int_equal(PARSE("-e", "flows"), OPTS_RUN);
	assert_int_equal(o.events, flows);
	assert_int_equal(PARSE("-e", "net_packet_tcp,flows"), OPTS_RUN);
	assert_int_equal(o.events, flows | EVENT_BIT(EVENT_NET_PACKET_TCP));
	assert_int_equal(PARSE("-e", "net_flow_tcp_end"), OPTS_RUN);
	assert_int_equal(o.events, EVENT_BIT(EVENT_NET_FLOW_TCP_END));
	assert_int_equal(event_set_members(EVSET_FLOWS), flows);
}

static void test_list(void **state)
{
	assert_int_equal(PARSE("--list"), OPTS_EXIT);
	assert_string_equal(err_text, "");
	assert_non_null(strstr(out_text, "EVENT"));
	assert_non_null(strstr(out_text, "net_packet_tcp"));
	/* -F before or after --list; other options are ignored. */
	assert_int_equal(PARSE("--list", "-F", "json"), OPTS_EXIT);
	assert_int_equal(out_text[0], '{');
	assert_int_equal(PARSE("-F", "json", "-e", "network_events", "--list"), OPTS_EXIT);
	assert_int_equal(out_text[0], '{');
	expect_error(PARSE("--list", "--", "true"), "--list takes no command");
	expect_error(PARSE("--list", "x"), "'x'");
	expect_error(PARSE("--list=json"), "'--list' takes no argument");
}

static void test_scope(void **state)
{
	assert_int_equal(PARSE("-s", "pid=1,2", "--scope", "comm=curl", "--scope=pid=3", "-suid=0"),
			 OPTS_RUN);
	assert_int_equal(o.scope.n_pids, 3);
	assert_int_equal(o.scope.pids[0], 1);
	assert_int_equal(o.scope.pids[2], 3);
	assert_int_equal(o.scope.n_comms, 1);
	assert_string_equal(o.scope.comms[0], "curl");
	assert_int_equal(o.scope.n_uids, 1);
	assert_int_equal(o.scope.uids[0], 0);
}

static void test_scope_state_is_reset(void **state)
{
	assert_int_equal(PARSE("-s", "pid=1"), OPTS_RUN);
	assert_int_equal(PARSE("-s", "pid=2"), OPTS_RUN);
	assert_int_equal(o.scope.n_pids, 1);
	assert_int_equal(o.scope.pids[0], 2);
}

static void test_scope_errors(void **state)
{
	expect_error(PARSE("-s", "pid=x"), "pktrace: -s 'pid=x': ");
	expect_error(PARSE("-s", "pid=x"), "not a number");
	expect_error(PARSE("-s", "host=a"), "valid keys");
	expect_error(PARSE("-s", "comm=averyveryverylongname"), "truncates");
}

static void test_unknown_option(void **state)
{
	expect_error(PARSE("-x"), "unknown option '-x'");
	expect_error(PARSE("--bogus"), "unknown option '--bogus'");
	expect_error(PARSE("--bogus=1"), "'--bogus'");
	expect_error(PARSE("-F", "json", "-q"), "'-q'");
	expect_error(PARSE("--help=yes"), "'--help' takes no argument");
}

static void test_missing_argument(void **state)
{
	expect_error(PARSE("-s"), "'-s' needs an argument");
	expect_error(PARSE("--scope"), "'--scope' needs an argument");
	expect_error(PARSE("-F"), "'-F'");
	expect_error(PARSE("-F", "json", "--output"), "'--output'");
	expect_error(PARSE("-e"), "'-e'");
}

static void test_help(void **state)
{
	assert_int_equal(PARSE("--help"), OPTS_EXIT);
	assert_non_null(strstr(out_text, "pktrace [OPTIONS] [EXPRESSION] [-- COMMAND [ARG...]]"));
	assert_non_null(strstr(out_text, "--dump-filter"));
	assert_non_null(strstr(out_text, "--scope"));
	assert_non_null(strstr(out_text, "Examples"));
	assert_non_null(strstr(out_text, "--buffer-size"));
	assert_non_null(strstr(out_text, "--relinquish-privileges"));
	assert_non_null(strstr(out_text, "--snaplen N"));
	assert_non_null(strstr(out_text, "4096, the\n"));
	assert_string_equal(err_text, "");
	assert_int_equal(PARSE("-h"), OPTS_EXIT);
	assert_non_null(strstr(out_text, "--format"));
	/* Help wins over whatever follows it. */
	assert_int_equal(PARSE("-h", "-x"), OPTS_EXIT);
}

static void test_version(void **state)
{
	assert_int_equal(PARSE("--version"), OPTS_EXIT);
	assert_string_equal(out_text, "pktrace 0.1.0\n");
	assert_string_equal(err_text, "");
	assert_int_equal(PARSE("-V"), OPTS_EXIT);
	assert_string_equal(out_text, "pktrace 0.1.0\n");
}

static void test_command(void **state)
{
	assert_int_equal(PARSE("--", "cmd", "a", "b"), OPTS_RUN);
	assert_non_null(o.command);
	assert_string_equal(o.command[0], "cmd");
	assert_string_equal(o.command[1], "a");
	assert_string_equal(o.command[2], "b");
	assert_null(o.command[3]);
}

static void test_command_keeps_its_options(void **state)
{
	assert_int_equal(PARSE("-F", "json", "-s", "uid=0", "--", "curl", "-s", "--", "-o", "x"),
			 OPTS_RUN);
	assert_int_equal(o.format, OUTPUT_JSON);
	assert_null(o.output_path);
	assert_string_equal(o.command[0], "curl");
	assert_string_equal(o.command[1], "-s");
	assert_string_equal(o.command[2], "--");
	assert_string_equal(o.command[3], "-o");
	assert_string_equal(o.command[4], "x");
	assert_null(o.command[5]);
	assert_int_equal(o.scope.n_uids, 1);
}

static void test_filter_expression(void **state)
{
	/* The words after the options are a pcap-filter expression, joined as tcpdump does. */
	assert_int_equal(PARSE("tcp", "port", "80", "and", "not host 10.0.0.1"), OPTS_RUN);
	assert_string_equal(o.filter_expr, "tcp port 80 and not host 10.0.0.1");
	assert_null(o.command);
	assert_int_equal(PARSE("-s", "comm=nginx", "tcp port 80", "--", "curl", "-s"), OPTS_RUN);
	assert_string_equal(o.filter_expr, "tcp port 80");
	assert_string_equal(o.command[0], "curl");
	assert_string_equal(o.command[1], "-s");
	assert_null(o.command[2]);
	assert_int_equal(o.scope.n_comms, 1);
	/* "--" here is -o's file name, not the separator. */
	assert_int_equal(PARSE("-o", "--", "udp"), OPTS_RUN);
	assert_string_equal(o.output_path, "--");
	assert_string_equal(o.filter_expr, "udp");
	/* A command after "--" alone has no expression. */
	assert_int_equal(PARSE("--", "curl"), OPTS_RUN);
	assert_null(o.filter_expr);
	assert_int_equal(PARSE_NONE(), OPTS_RUN);
	assert_null(o.filter_expr);
	expect_error(PARSE("tcp", "--"), "no command after --");
	/* An empty expression is no filter, as with tcpdump. */
	assert_int_equal(PARSE("", " "), OPTS_RUN);
	assert_null(o.filter_expr);
}

static void test_dump_filter(void **state)
{
	assert_int_equal(PARSE("--dump-filter", "tcp"), OPTS_RUN);
	assert_true(o.dump_filter);
	assert_string_equal(o.filter_expr, "tcp");
	expect_error(PARSE("--dump-filter"), "--dump-filter needs an expression");
	expect_error(PARSE("--dump-filter", "--", "true"), "--dump-filter needs an expression");
	expect_error(PARSE("--dump-filter=x", "tcp"), "takes no argument");
}

static void test_empty_command(void **state)
{
	expect_error(PARSE("--"), "no command");
	expect_error(PARSE("-F", "json", "--"), "no command");
}

static void test_repeated_calls_after_error(void **state)
{
	/* A parse that stopped inside a group of short options must not leak into the next. */
	expect_error(PARSE("-xV"), "'-x'");
	assert_int_equal(PARSE("-F", "json"), OPTS_RUN);
	assert_int_equal(o.format, OUTPUT_JSON);
	assert_string_equal(out_text, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_defaults, teardown),
		cmocka_unit_test_teardown(test_format, teardown),
		cmocka_unit_test_teardown(test_buffer_size, teardown),
		cmocka_unit_test_teardown(test_buffer_size_errors, teardown),
		cmocka_unit_test_teardown(test_user, teardown),
		cmocka_unit_test_teardown(test_format_errors, teardown),
		cmocka_unit_test_teardown(test_tcpdump_habits, teardown),
		cmocka_unit_test_teardown(test_tcpdump_habits_errors, teardown),
		cmocka_unit_test_teardown(test_output, teardown),
		cmocka_unit_test_teardown(test_events, teardown),
		cmocka_unit_test_teardown(test_events_errors, teardown),
		cmocka_unit_test_teardown(test_list, teardown),
		cmocka_unit_test_teardown(test_scope, teardown),
		cmocka_unit_test_teardown(test_scope_state_is_reset, teardown),
		cmocka_unit_test_teardown(test_flows_set, teardown),
		cmocka_unit_test_teardown(test_scope_errors, teardown),
		cmocka_unit_test_teardown(test_unknown_option, teardown),
		cmocka_unit_test_teardown(test_missing_argument, teardown),
		cmocka_unit_test_teardown(test_help, teardown),
		cmocka_unit_test_teardown(test_version, teardown),
		cmocka_unit_test_teardown(test_command, teardown),
		cmocka_unit_test_teardown(test_command_keeps_its_options, teardown),
		cmocka_unit_test_teardown(test_filter_expression, teardown),
		cmocka_unit_test_teardown(test_dump_filter, teardown),
		cmocka_unit_test_teardown(test_order_window, teardown),
		cmocka_unit_test_teardown(test_empty_command, teardown),
		cmocka_unit_test_teardown(test_repeated_calls_after_error, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
