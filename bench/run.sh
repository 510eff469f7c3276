#!/usr/bin/env bash
# pktrace benchmark: the same loopback TCP traffic (bench/tcpflood.c) with no tracer, with
# tcpdump, with pktrace in several configurations (packet events, once per wire packet, flow
# events only, all network events, ...) and with the bench's own empty BPF programs on the
# owner programs' hooks (floor: what the BPF statistics count for a program that does nothing)
# and on all six hooks pktrace runs on per packet (floor-hooks: what any tracer on those hooks
# costs); prints the results and writes them to bench/results.md, with the ns per run of every
# pktrace BPF program (kernel BPF statistics), the owner programs' cost above the floor and
# flow-only against packet events.
# What is measured and how to read it: bench/README.md. Run as root:
#   sudo make bench            (or: make pktrace && sudo bench/run.sh)
# Knobs (environment): BENCH_CONNS (8), BENCH_MSGS per connection (25000), BENCH_SIZE bytes
# (100), BENCH_SECONDS traffic cap per run (20), BENCH_PORT (47400), BENCH_ROUNDS minimum
# rounds (4), BENCH_MAX_ROUNDS (6), BENCH_BUDGET seconds after which no new round starts (600),
# BENCH_VERDICT_ROUNDS (12: verdict rounds of the rate targets' configurations, after those),
# BENCH_VERDICT_CONFIGS (those configurations, or a space-separated subset of them),
# BENCH_RESULTS (bench/results.md).
# No timing is asserted anywhere: the script fails only if the traffic itself cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=${BENCH_CONNS:-8}
MSGS=${BENCH_MSGS:-25000}
SIZE=${BENCH_SIZE:-100}
LIMIT=${BENCH_SECONDS:-20}
PORT=${BENCH_PORT:-47400}
ROUNDS=${BENCH_ROUNDS:-4}
MAX_ROUNDS=${BENCH_MAX_ROUNDS:-6}
BUDGET=${BENCH_BUDGET:-600}
QUIET_PCT=10 # a run is quiet if other processes and the hypervisor took at most this % of the CPUs
RESULTS=${BENCH_RESULTS:-bench/results.md}
SETTLE=1 # s between the traffic's end and SIGINT: tcpdump hands over packets every 1 s at worst
FLOOD=build/tcpflood
SYSCOST=build/syscost # ns per getppid(): what a tracer adds to every system call of the host
WORK=build/bench
RAW=$WORK/runs.tsv
VRAW=$WORK/verdict.tsv # the verdict rounds' rows
VROUNDS=${BENCH_VERDICT_ROUNDS:-12}
HZ=$(getconf CLK_TCK)
NCPU=$(nproc)

CONFIGS=(baseline tcpdump pktrace-json-scoped pktrace-json-once pktrace-pcapng-scoped pktrace-pcapng-snaplen
	pktrace-flows-scoped pktrace-allevents-scoped pktrace-table-all pktrace-nomatch
	pktrace-filter-reject floor floor-hooks)
PKTRACE_CONFIGS=(pktrace-json-scoped pktrace-json-once pktrace-pcapng-scoped pktrace-pcapng-snaplen
	pktrace-flows-scoped pktrace-allevents-scoped pktrace-table-all pktrace-nomatch
	pktrace-filter-reject)
# Flow-only against packet events: the same scope and output, only -e differs.
PACKETS_CFG=pktrace-json-scoped
ONCE_CFG=pktrace-json-once
FLOWS_CFG=pktrace-flows-scoped
ALL_CFG=pktrace-allevents-scoped
# The configurations judged against tcpdump (the others against no tracer).
against_tcpdump() { case $1 in tcpdump | "$PACKETS_CFG" | "$ONCE_CFG") return 0 ;; esac; return 1; }
# What the rate targets compare: judged from verdict rounds of these alone (table_verdict).
VERDICT_CONFIGS=(tcpdump pktrace-json-scoped pktrace-json-once pktrace-flows-scoped pktrace-filter-reject
	floor-hooks)
# BENCH_VERDICT_CONFIGS: some of them only, for many rounds of the targets one wants decided.
if [ -n "${BENCH_VERDICT_CONFIGS:-}" ]; then
	read -r -a vwant <<<"$BENCH_VERDICT_CONFIGS"
	for cfg in "${vwant[@]}"; do
		why=""
		[[ " ${VERDICT_CONFIGS[*]} " == *" $cfg "* ]] || why="is not one of: ${VERDICT_CONFIGS[*]}"
		[ "$(printf '%s\n' "${vwant[@]}" | grep -cx -- "$cfg")" = 1 ] || why="is named twice"
		# tcpdump and the JSON runs are judged against one another: neither is any use alone.
		case $cfg in
		tcpdump) [[ " ${vwant[*]} " == *" pktrace-json-"* ]] || why="needs pktrace-json-scoped or pktrace-json-once" ;;
		pktrace-json-*) [[ " ${vwant[*]} " == *" tcpdump "* ]] || why="needs tcpdump" ;;
		esac
		if [ -n "$why" ]; then
			printf 'bench: BENCH_VERDICT_CONFIGS: %s %s\n' "$cfg" "$why" >&2
			exit 2
		fi
	done
	VERDICT_CONFIGS=("${vwant[@]}")
fi
# floor: bench/floor.c holding bench/floor.bpf.c's empty programs on owner_send's and
# owner_recv's hooks; it watches this script's pid ($$) and detaches if the script is gone.
# floor-hooks: the same with empty programs on the socket and device hooks too, the cgroup_skb
# ones on the cgroup v2 root, as pktrace's.
FLOOR_NAMES="floor_send floor_recv floor_skb_in floor_skb_eg floor_dev_in floor_dev_eg"
CGROUP2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
declare -A CMD=(
	[baseline]=""
	[tcpdump]="tcpdump -i lo -B 8192 -w /dev/null tcp port $PORT"
	[pktrace-json-scoped]="./pktrace -F json -o /dev/null -s comm=flood-cli,flood-srv"
	# One event per wire packet, as tcpdump writes one packet: the sender's, at egress.
	[pktrace-json-once]="./pktrace -F json -o /dev/null -s comm=flood-cli,flood-srv --once"
	# -w against tcpdump -w: the same packets to a pcapng file, with the process in each.
	[pktrace-pcapng-scoped]="./pktrace -w /dev/null -s comm=flood-cli,flood-srv"
	# The same with the payload (--snaplen): the extra cost of the third record size.
	[pktrace-pcapng-snaplen]="./pktrace -w /dev/null -s comm=flood-cli,flood-srv --snaplen 1500"
	[pktrace-flows-scoped]="./pktrace -e flows -F json -o /dev/null -s comm=flood-cli,flood-srv"
	[pktrace-allevents-scoped]="./pktrace -e network_events -F json -o /dev/null -s comm=flood-cli,flood-srv"
	[pktrace-table-all]="./pktrace -F table -o /dev/null"
	[pktrace-nomatch]="./pktrace -F json -o /dev/null -s comm=nomatch"
	[pktrace-filter-reject]="./pktrace -F json -o /dev/null tcp port 1"
	[floor]="build/bench/floor -w $$ build/bench/floor.bpf.o"
	[floor-hooks]="build/bench/floor -w $$ -a $CGROUP2 build/bench/floor.bpf.o"
)
READY='pktrace: ready|listening on|floor: ready' # each tracer's line on stderr once it is attached

say() { printf 'bench: %s\n' "$*" >&2; }
die() {
	say "$*"
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "needs root (tcpdump and pktrace): run 'make bench' (as root, or it asks sudo)"
command -v tcpdump >/dev/null || die "tcpdump is missing: apt-get install tcpdump"
command -v gcc >/dev/null || die "gcc is missing: apt-get install gcc"
[ -x ./pktrace ] || die "./pktrace is missing: run 'make pktrace' (make bench does)"
HAVE_BPFTOOL=1
command -v bpftool >/dev/null || HAVE_BPFTOOL=0
command -v jq >/dev/null || HAVE_BPFTOOL=0 # bpftool's JSON is read with jq
# Sockets in TIME-WAIT from an earlier run are harmless (the server sets SO_REUSEADDR).
if ss -Htan "( sport = :$PORT or dport = :$PORT )" | grep -qv '^TIME-WAIT'; then
	die "port $PORT is in use on this host: set BENCH_PORT to a free port"
fi

mkdir -p "$WORK"
gcc -std=gnu11 -O2 -Wall -Wextra -Werror -o "$FLOOD" bench/tcpflood.c
gcc -std=gnu11 -O2 -Wall -Wextra -Werror -o "$SYSCOST" bench/syscost.c

# The floor reference: built here against build/vmlinux.h (made by `make pktrace`). Without it
# (no clang, no libbpf headers, no bpftool/jq to read the statistics) the bench runs without the
# floor configuration, and the owner programs' cost is then not judged against the goal.
FLOOR_WHY=""
BPF_ARCH=$(uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
if [ "$HAVE_BPFTOOL" = 0 ]; then
	FLOOR_WHY="bpftool or jq is missing"
elif ! command -v clang >/dev/null; then
	FLOOR_WHY="clang is missing"
elif [ ! -s build/vmlinux.h ]; then
	FLOOR_WHY="build/vmlinux.h is missing (make pktrace makes it)"
elif ! clang -g -O2 -target bpf -D__TARGET_ARCH_"$BPF_ARCH" -Wall -Wextra -Wno-unused-parameter \
	-Ibuild -c bench/floor.bpf.c -o "$WORK/floor.bpf.o" ||
	! read -r -a LIBBPF_LIBS <<<"$(pkg-config --libs libbpf 2>/dev/null || echo -lbpf -lelf -lz)" ||
	! gcc -std=gnu11 -O2 -Wall -Wextra -Werror -o "$WORK/floor" bench/floor.c "${LIBBPF_LIBS[@]}"; then
	FLOOR_WHY="bench/floor.bpf.c or bench/floor.c did not build"
elif [ -z "$CGROUP2" ]; then
	FLOOR_WHY="no cgroup v2 mount (pktrace needs one too)"
fi
if [ -n "$FLOOR_WHY" ]; then
	say "no floor reference: $FLOOR_WHY"
	read -r -a CONFIGS <<<"$(printf '%s\n' "${CONFIGS[@]}" | grep -v '^floor' | tr '\n' ' ')"
	read -r -a VERDICT_CONFIGS <<<"$(printf '%s\n' "${VERDICT_CONFIGS[@]}" | grep -v '^floor' | tr '\n' ' ')"
fi

# The host-wide switch of the kernel's BPF statistics (kernel.bpf_stats_enabled, left on by a
# profiling session) adds two clock reads to every BPF program run, the runs "without the
# statistics" included: off for the bench (the -S runs take them by file descriptor), restored.
STATS_SYSCTL=/proc/sys/kernel/bpf_stats_enabled
STATS_WAS=0
[ -n "${BENCH_REPORT_ONLY:-}" ] || STATS_WAS=$(cat "$STATS_SYSCTL" 2>/dev/null || echo 0)
restore_stats() {
	[ "$STATS_WAS" = 0 ] || echo "$STATS_WAS" >"$STATS_SYSCTL" ||
		say "could not restore kernel.bpf_stats_enabled=$STATS_WAS"
}

# The running tracer, for the cleanup trap: only processes this script started are signalled.
TRACER_PID=""
TRACER_SUB=""
cleanup() {
	if [ -n "$TRACER_PID" ] && kill -0 "$TRACER_PID" 2>/dev/null; then
		kill -INT "$TRACER_PID" 2>/dev/null || true
		sleep 1
		kill -KILL "$TRACER_PID" 2>/dev/null || true
	fi
	restore_stats
}
trap cleanup EXIT
# Interrupted or terminated: exit, so that the EXIT trap stops the tracer (and with it detaches
# its programs: neither pktrace nor the floor loader pins anything).
trap 'exit 130' INT
trap 'exit 143' TERM
if [ "$STATS_WAS" != 0 ]; then
	say "kernel.bpf_stats_enabled is $STATS_WAS: set to 0 for the bench, restored at its end"
	echo 0 >"$STATS_SYSCTL" || die "cannot set kernel.bpf_stats_enabled to 0"
fi

kv() { # kv KEY LINE: the value of KEY=value in LINE, NA if absent
	local k=$1 w
	local -a words
	shift
	read -r -a words <<<"$*"
	for w in "${words[@]}"; do
		if [ "${w%%=*}" = "$k" ]; then
			printf '%s' "${w#*=}"
			return
		fi
	done
	printf 'NA'
}

calc() { # calc 'EXPR' VAR=VALUE...: awk arithmetic, NA if any value is NA or empty
	local expr=$1 a
	local -a args=()
	shift
	for a in "$@"; do
		case ${a#*=} in NA | "") {
			echo NA
			return
		} ;;
		esac
		args+=(-v "$a")
	done
	awk "${args[@]}" "BEGIN { $expr }"
}

ticks() { # user+system clock ticks of PID, from /proc/PID/stat
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || {
		echo NA
		return
	}
	local -a f
	read -r -a f <<<"${s##*) }"
	echo $((f[11] + f[12])) # utime, stime: fields 14 and 15 of the whole line
}

host_busy() { # "busy steal": clock ticks of all CPUs so far, busy (user nice system irq
	# softirq) and stolen by the hypervisor
	awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8, $9 + 0; exit }' /proc/stat
}

irq_work() { # IRQ-work interrupts taken so far, all CPUs (how BPF ring-buffer wakeups arrive)
	awk -v n="$NCPU" '/IRQ work interrupts/ { for (i = 2; i <= n + 1; i++) s += $i; print s + 0; f = 1 }
		END { if (!f) print "NA" }' /proc/interrupts
}

# pktrace's BPF programs, by name: the global functions of its object's BTF (one per program).
# Programs of these names that this run's tracer did not load belong to another pktrace.
# A filter expression's programs are generated at run time (src/filter_bpf.c): named here.
PROG_NAMES=$( { bpftool btf dump file build/pktrace.bpf.o 2>/dev/null || true; } |
	sed -n "s/^\[[0-9]*\] FUNC '\([A-Za-z0-9_]*\)' .*linkage=global$/\1/p" | tr '\n' ' ')
[ "$HAVE_BPFTOOL" = 0 ] || [ -n "$PROG_NAMES" ] ||
	die "no BPF program names in build/pktrace.bpf.o (bpftool btf dump): run 'make pktrace'"
PROG_NAMES="$PROG_NAMES filter_ingress filter_egress"

progs() { # "id type name run_time_ns run_cnt" of every loaded program named as one of pktrace's
	# or of the floor's
	[ "$HAVE_BPFTOOL" = 1 ] || return 0
	# bpftool's JSON gives the full name (from BTF); run_time_ns and run_cnt are absent or null
	# while the kernel's statistics have counted nothing.
	bpftool -j prog show 2>/dev/null | jq -r '.[] | "\(.id) \(.type) \(.name // "?") \(.run_time_ns // 0) \(.run_cnt // 0)"' |
		awk -v names="$PROG_NAMES $FLOOR_NAMES" 'BEGIN { n = split(names, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
			want[$3]'
}

bpf_snap() { # bpf_snap "IDS": "name ns runs" for each of these programs
	[ -n "$1" ] || return 0
	progs | awk -v ids="$1" 'BEGIN { n = split(ids, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
		want[$1] { print $3, $4, $5 }'
}

bpf_fields() { # bpf_fields BEFORE AFTER: the raw row's BPF fields from two bpf_snap outputs:
	# bpf_ns/bpf_runs (the cgroup_skb programs, as in earlier results), bpfall_ns/bpfall_runs
	# (every program) and ns.NAME/runs.NAME per program, over the traffic
	awk -v before="$1" -v after="$2" 'BEGIN {
		n = split(before, b, "\n"); for (i = 1; i <= n; i++) { split(b[i], f, " "); if (f[1] != "") { ns0[f[1]] += f[2]; c0[f[1]] += f[3] } }
		n = split(after, b, "\n"); for (i = 1; i <= n; i++) { split(b[i], f, " "); if (f[1] != "") { ns1[f[1]] += f[2]; c1[f[1]] += f[3]; order[++k] = f[1] } }
		if (!k) { printf "bpf_ns=NA bpf_runs=NA bpfall_ns=NA bpfall_runs=NA"; exit }
		for (i = 1; i <= k; i++) {
			p = order[i]; dn = ns1[p] - ns0[p]; dc = c1[p] - c0[p]
			all_ns += dn; all_c += dc
			# with a filter, its programs are attached to the socket hooks instead (and run
			# the capture programs by tail call, inside their own run time)
			if (p == "capture_ingress" || p == "capture_egress" || p == "filter_ingress" ||
			    p == "filter_egress") { sk_ns += dn; sk_c += dc }
			per = per sprintf(" ns.%s=%d runs.%s=%d", p, dn, p, dc)
		}
		printf "bpf_ns=%d bpf_runs=%d bpfall_ns=%d bpfall_runs=%d%s", sk_ns, sk_c, all_ns, all_c, per
	}'
}

others_count() { # others_count "IDS": how many loaded pktrace programs are not among IDS
	progs | awk -v ids="$1" -v floor="$FLOOR_NAMES" 'BEGIN { n = split(ids, a, " "); for (i = 1; i <= n; i++) mine[a[i]] = 1
			n = split(floor, a, " "); for (i = 1; i <= n; i++) fl[a[i]] = 1 }
		!mine[$1] && !fl[$3] { c++ } END { print c + 0 }'
}

# Start "$@" as a tracer inside a subshell that waits for it and then records, with `times`,
# the CPU it used over its whole life (getrusage of the subshell's only child).
start_tracer() {
	local tag=$1 _
	shift
	rm -f "$WORK/$tag".{err,pid,times,rc}
	(
		"$@" 2>"$WORK/$tag.err" &
		p=$!
		echo "$p" >"$WORK/$tag.pid"
		rc=0
		wait "$p" || rc=$?
		echo "$rc" >"$WORK/$tag.rc"
		times >"$WORK/$tag.times"
	) &
	TRACER_SUB=$!
	for _ in $(seq 1 400); do
		[ -s "$WORK/$tag.pid" ] && grep -qE "$READY" "$WORK/$tag.err" 2>/dev/null && break
		kill -0 "$TRACER_SUB" 2>/dev/null || break
		sleep 0.05
	done
	if ! grep -qE "$READY" "$WORK/$tag.err" 2>/dev/null; then
		say "tracer '$*' did not become ready within 20 s; its stderr:"
		cat "$WORK/$tag.err" >&2 || true
		[ ! -s "$WORK/$tag.pid" ] || kill -KILL "$(cat "$WORK/$tag.pid")" 2>/dev/null || true
		wait "$TRACER_SUB" 2>/dev/null || true
		return 1
	fi
	TRACER_PID=$(cat "$WORK/$tag.pid")
}

# Stop the tracer with SIGINT; 1 if it did not exit within 20 s (it is then killed).
stop_tracer() {
	local _
	kill -INT "$TRACER_PID"
	for _ in $(seq 1 400); do
		kill -0 "$TRACER_SUB" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$TRACER_SUB" 2>/dev/null; then
		say "tracer pid $TRACER_PID did not exit 20 s after SIGINT: killing it"
		kill -KILL "$TRACER_PID" 2>/dev/null || true
		wait "$TRACER_SUB" 2>/dev/null || true
		TRACER_PID=""
		return 1
	fi
	wait "$TRACER_SUB" 2>/dev/null || true
	TRACER_PID=""
}

children_cpu() { # seconds of user+system CPU of the subshell's children, from its `times`
	sed -n 2p "$1" | awk '{
		t = 0
		for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] }
		printf "%.3f", t }'
}

# The kernel's BPF statistics cost every program run two clock reads (pktrace runs six programs
# per wire packet, tcpdump's filter two): they are on only in a run of its own, STATS=1, which
# gives the per-program numbers; rates and CPU come from the run without them (STATS=0).
STATS=0
flood() {
	local s=""
	[ "$STATS" = 0 ] || s=-S
	timeout -s KILL $((LIMIT + 60)) "$FLOOD" $s -c "$CONNS" -n "$MSGS" -s "$SIZE" -t "$LIMIT" -p "$PORT"
}

# One measured run of configuration $1 in round $2; appends one row to $RAW.
run_one() {
	local cfg=$1 round=$2 tag="${TAG_PFX:-}$1.$2" out status=ok rc=NA
	local ready_ticks=NA traffic_ticks=NA tracer_cpu=NA startup_cpu=NA tracer_traffic_cpu=NA
	local captured=NA lost=NA seen=NA mine="" b0 b1 bpf0 bpf1 others0 others1 sum iw0 iw1 steal
	local -a cmd
	read -r -a cmd <<<"${CMD[$cfg]}"
	if [ -n "${CMD[$cfg]}" ]; then
		if ! start_tracer "$tag" "${cmd[@]}"; then
			printf '%s\t%s\tstatus=no-start\n' "$round" "$cfg" >>"$RAW"
			return 0
		fi
		ready_ticks=$(ticks "$TRACER_PID")
		# The tracer's own programs: those it holds a file descriptor of (program or link:
		# /proc/PID/fdinfo's prog_id), among pktrace's names. Another pktrace started meanwhile
		# (a test run, say) has programs of the same names: they are not counted as this run's.
		mine=$(progs | awk -v held="$(awk '$1 == "prog_id:" { printf "%s ", $2 }' /proc/"$TRACER_PID"/fdinfo/* 2>/dev/null)" \
			'BEGIN { n = split(held, a, " "); for (i = 1; i <= n; i++) h[a[i]] = 1 } h[$1] { printf "%s ", $1 }')
		progs >>"$WORK/progs.txt" # for the programs' types in the results
	fi
	others0=$(others_count "$mine")
	bpf0=$(bpf_snap "$mine")
	iw0=$(irq_work)
	b0=$(host_busy)
	out=$(flood) || die "tcpflood failed in run $cfg (round $round)"
	b1=$(host_busy)
	iw1=$(irq_work)
	bpf1=$(bpf_snap "$mine")
	others1=$(others_count "$mine")
	# Every system call of the host, with the tracer still attached (not in the statistics run).
	if [ "$STATS" = 0 ]; then
		out+=" $("$SYSCOST" || echo syscall_ns=NA)"
	fi
	if [ -n "${CMD[$cfg]}" ]; then
		traffic_ticks=$(ticks "$TRACER_PID")
		sleep "$SETTLE"
		stop_tracer || status=hung
		rc=$(cat "$WORK/$tag.rc" 2>/dev/null || echo NA)
		[ "$rc" = 0 ] || [ "$status" = hung ] || status="exit-$rc"
		if [ -s "$WORK/$tag.times" ]; then
			tracer_cpu=$(calc 'printf "%.3f", t - r / hz' t="$(children_cpu "$WORK/$tag.times")" r="$ready_ticks" hz="$HZ")
		fi
		startup_cpu=$(calc 'printf "%.2f", r / hz' r="$ready_ticks" hz="$HZ")
		tracer_traffic_cpu=$(calc 'printf "%.2f", (s - r) / hz' s="$traffic_ticks" r="$ready_ticks" hz="$HZ")
		case $cfg in
		tcpdump)
			captured=$(sed -n 's/^\([0-9]*\) packets captured.*/\1/p' "$WORK/$tag.err")
			lost=$(sed -n 's/^\([0-9]*\) packets dropped by kernel.*/\1/p' "$WORK/$tag.err")
			seen=$(sed -n 's/^\([0-9]*\) packets received by filter.*/\1/p' "$WORK/$tag.err")
			;;
		floor | floor-hooks) # no capture; it says so once its programs are detached
			grep -q '^floor: detached' "$WORK/$tag.err" || [ "$status" != ok ] || status=no-summary
			;;
		*)
			sum=$(grep 'events written' "$WORK/$tag.err" || true)
			captured=$(sed -n 's/^pktrace: \([0-9]*\) events written.*/\1/p' <<<"$sum")
			lost=$(sed -n 's/.* \([0-9]*\) events lost.*/\1/p' <<<"$sum")
			seen=$(sed -n 's/.* \([0-9]*\) packets seen.*/\1/p' <<<"$sum")
			[ -n "$sum" ] || [ "$status" != ok ] || status=no-summary
			;;
		esac
		: "${captured:=NA}" "${lost:=NA}" "${seen:=NA}"
	fi
	# CPU the rest of the host used while the traffic ran: a noise indicator.
	local other
	other=$(calc 'printf "%.2f", (b1 - b0) / hz - cli - srv - (t == "NA" ? 0 : t)' \
		b1="${b1% *}" b0="${b0% *}" hz="$HZ" cli="$(kv cli_cpu_s "$out")" srv="$(kv srv_cpu_s "$out")" \
		t="${tracer_traffic_cpu/NA/0}")
	steal=$(calc 'printf "%.2f", (b - a) / hz' b="${b1#* }" a="${b0#* }" hz="$HZ")
	# Interference: the share of the CPUs that other processes and the hypervisor took.
	local interf quiet
	interf=$(calc 'printf "%.1f", 100 * (o + st) / (e * n)' o="$other" st="$steal" \
		e="$(kv elapsed_s "$out")" n="$NCPU")
	quiet=$(calc 'print (i <= q) ? 1 : 0' i="$interf" q="$QUIET_PCT")
	printf '%s\t%s\tstatus=%s stats=%s pair=%s %s tracer_cpu_s=%s startup_cpu_s=%s tracer_traffic_cpu_s=%s captured=%s lost=%s seen=%s rc=%s %s other_cpu_s=%s steal_s=%s interference_pct=%s quiet=%s other_pktrace_progs=%s irq_work=%s\n' \
		"$round" "$cfg" "$status" "$STATS" "${PAIR:-none}" "$out" "$tracer_cpu" "$startup_cpu" "$tracer_traffic_cpu" \
		"$captured" "$lost" "$seen" "$rc" \
		"$(bpf_fields "$bpf0" "$bpf1")" \
		"$other" "$steal" "$interf" "$quiet" "$((others0 > others1 ? others0 : others1))" "$(calc 'print b - a' b="$iw1" a="$iw0")" >>"$RAW"
	say "$(printf '%-20s round %s%s%s: %6s msg/s, tracer CPU %5s s, captured %7s, lost %s, %s, interference %s %%' \
		"$cfg" "$round" "$([ "$STATS" = 0 ] || echo ' (BPF statistics)')" "${PAIR:+ (before $PAIR)}" "$(kv rate_msg_s "$out")" "$tracer_cpu" "$captured" "$lost" "$status" "$interf")"
}

wait_quiet() { # wait up to 3 s for a 0.5 s window in which the host is (nearly) idle
	local _ a b
	for _ in 1 2 3 4 5 6; do
		a=$(host_busy)
		sleep 0.5
		b=$(host_busy)
		if [ "$(calc 'print (b1 + s1 - b0 - s0 <= hz * 0.5 * n * q / 100) ? 1 : 0' b1="${b% *}" \
			s1="${b#* }" b0="${a% *}" s0="${a#* }" hz="$HZ" n="$NCPU" q="$QUIET_PCT")" = 1 ]; then
			return 0
		fi
	done
	return 1
}

baseline_for() { # baseline_for CFG ROUND: the untraced run paired with CFG's in ROUND
	PAIR=$1
	wait_quiet || true
	run_one baseline "$2"
	PAIR=""
}

quiet_runs() { # quiet_runs CFG: how many of CFG's runs completed on a quiet host
	grep -P "^[0-9]+\t$1\t" "$RAW" | grep 'status=ok stats=0 ' | grep -c ' quiet=1' || true
}

if [ -n "${BENCH_REPORT_ONLY:-}" ]; then
	# The report again from the last run's rows (after a change to the report itself).
	[ -s "$RAW" ] || die "BENCH_REPORT_ONLY: no rows in $RAW to report from"
	[ -f "$VRAW" ] || : >"$VRAW" # a run from before the verdict rounds
	done_rounds=$(cut -f1 "$RAW" | sort -n | tail -1)
	elapsed=$(cat "$WORK/elapsed" 2>/dev/null || echo NA)
else
: >"$RAW"
: >"$VRAW"
: >"$WORK/progs.txt"
say "traffic: $CONNS connections x $MSGS messages of $SIZE bytes (ping-pong on 127.0.0.1:$PORT), at most $LIMIT s per run"
say "warm-up run (not measured)"
"$FLOOD" -c "$CONNS" -n 2000 -s "$SIZE" -t 5 -p "$PORT" >/dev/null
start=$SECONDS
done_rounds=0
round=0
# At least ROUNDS rounds; more (up to MAX_ROUNDS) while a configuration has fewer than 2 runs
# on a quiet host; never a round that would end past the budget.
while :; do
	round=$((round + 1))
	rstart=$SECONDS
	for cfg in "${CONFIGS[@]}"; do
		for STATS in 0 1; do
			# Its own baseline right before it: the host's speed drifts by more than most
			# tracers cost (seen: ±15 % within minutes), so each slowdown is taken against
			# its neighbour, and the baselines' spread measures the noise.
			if [ "$STATS" = 0 ] && [ "$cfg" != baseline ]; then
				baseline_for "$cfg" "$round"
			fi
			wait_quiet || true
			run_one "$cfg" "$round"
		done
	done
	done_rounds=$round
	[ "$round" -lt "$MAX_ROUNDS" ] || break
	if [ "$round" -ge "$ROUNDS" ]; then
		short=""
		for cfg in "${CONFIGS[@]}"; do
			[ "$(quiet_runs "$cfg")" -ge 2 ] || short+=" $cfg"
		done
		[ -n "$short" ] || break
	fi
	if [ $((SECONDS - start + SECONDS - rstart)) -gt "$BUDGET" ]; then
		say "stopping after $round round(s): another one would pass the ${BUDGET} s budget"
		break
	fi
	[ "$round" -lt "$ROUNDS" ] || say "another round: fewer than 2 quiet runs of:$short"
done
# Verdict rounds: only the configurations the rate targets compare, no statistics runs, the
# order turned by one each round; their rows go to $VRAW, their files are named v<cfg>.<round>.*
# (the main rounds' are <cfg>.<round>.*). Many short runs make a verdict possible where the
# host's speed swings between runs.
# - tcpdump and the JSON runs, compared with one another, run back to back with no untraced
#   run: under the same host the ratio of their rates is the ratio of their slowdowns, without
#   the noise of two untraced runs (which here made the spread of that ratio 1.6 times wider).
#   The order turns by one each round and runs backwards every other n rounds (n: how many
#   they are), so that over 2n rounds each comes right after each other one equally often.
# - The others, judged against no tracer, each beside its own untraced run; every other round
#   the traced run goes first, so that a steady difference between a pair's first and second
#   slot does not move every slowdown one way.
RAW_MAIN=$RAW
RAW=$VRAW
STATS=0
TAG_PFX=v
VREL=() VNOISE=()
for cfg in "${VERDICT_CONFIGS[@]}"; do
	if against_tcpdump "$cfg"; then VREL+=("$cfg"); else VNOISE+=("$cfg"); fi
done
for ((vr = 1; vr <= VROUNDS; vr++)); do
	n=${#VREL[@]}
	for ((i = 0; i < n; i++)); do
		j=$(((i + vr) % n))
		(((vr - 1) / n % 2 == 0)) || j=$((n - 1 - j))
		wait_quiet || true
		run_one "${VREL[j]}" "$vr"
	done
	n=${#VNOISE[@]}
	for ((i = 0; i < n; i++)); do
		cfg=${VNOISE[$(((i + vr) % n))]}
		((vr % 2 == 0)) || baseline_for "$cfg" "$vr"
		wait_quiet || true
		run_one "$cfg" "$vr"
		((vr % 2)) || baseline_for "$cfg" "$vr"
	done
done
TAG_PFX=""
RAW=$RAW_MAIN
elapsed=$((SECONDS - start))
echo "$elapsed" >"$WORK/elapsed"
fi

# ---- Reduce: medians over each configuration's quiet runs (all its runs if none was quiet). --
DER=$WORK/derived.tsv
awk -F'\t' '
function num(x) { return x != "" && x != "NA" }
{
	delete v
	n = split($3, w, " ")
	for (i = 1; i <= n; i++) { p = index(w[i], "="); if (p) v[substr(w[i], 1, p - 1)] = substr(w[i], p + 1) }
	if (v["status"] != "ok") next
	wire = v["wire_pkts"]; tr = v["tracer_cpu_s"]; cap = v["captured"]
	out = sprintf("quiet=%s pair=%s stats=%d rate=%d wire=%d captured=%s lost=%s tracer_cpu=%s traffic_cpu=%.3f",
		v["quiet"], v["pair"] == "" ? "none" : v["pair"], v["stats"], v["rate_msg_s"], wire, cap, v["lost"], tr, v["cli_cpu_s"] + v["srv_cpu_s"])
	out = out sprintf(" traffic_us_wire=%.3f irq_work=%s other_cpu=%s steal=%s interference=%s",
		(v["cli_cpu_s"] + v["srv_cpu_s"]) / wire * 1e6, v["irq_work"], v["other_cpu_s"], v["steal_s"],
		v["interference_pct"])
	if (num(tr)) {
		out = out sprintf(" tr_us_wire=%.3f", tr / wire * 1e6)
		out = out (num(cap) && cap > 0 ? sprintf(" tr_us_event=%.3f", tr / cap * 1e6) : " tr_us_event=NA")
	} else out = out " tr_us_wire=NA tr_us_event=NA"
	if (num(v["bpf_runs"]) && v["bpf_runs"] > 0)
		out = out sprintf(" bpf_runs_wire=%.2f bpf_ns_run=%.0f bpf_us_wire=%.3f", v["bpf_runs"] / wire,
			v["bpf_ns"] / v["bpf_runs"], v["bpf_ns"] / wire / 1e3)
	else out = out " bpf_runs_wire=NA bpf_ns_run=NA bpf_us_wire=NA"
	out = out " syscall_ns=" (num(v["syscall_ns"]) ? v["syscall_ns"] : "NA")
	out = out (num(v["bpfall_ns"]) ? sprintf(" bpfall_us_wire=%.3f", v["bpfall_ns"] / wire / 1e3) : " bpfall_us_wire=NA")
	# Per program: ns per run and runs per wire packet (nothing for a program that did not run).
	for (k in v) if (substr(k, 1, 3) == "ns.") {
		p = substr(k, 4); c = v["runs." p]
		if (c > 0) out = out sprintf(" nsrun.%s=%.1f rpw.%s=%.3f", p, v[k] / c, p, c / wire)
	}
	print $1 "\t" $2 "\t" out
}' "$RAW" >"$DER"

rows() { grep -P "^[0-9]+\t$1\t" "${2:-$RAW}" || true; } # rows CFG [FILE]
used() { # used CFG STATS: CFG's derived rows with the statistics on (1) or off (0) that the
	# tables use: the quiet ones, or all of them if none
	local r
	r=$(grep -P "^[0-9]+\t$1\t" "$DER" | grep -P " stats=$2 " | grep -P '\tquiet=1 ' || true)
	[ -n "$r" ] || r=$(grep -P "^[0-9]+\t$1\t" "$DER" | grep -P " stats=$2 " || true)
	[ -z "$r" ] || printf '%s\n' "$r"
}
vals() { # vals CFG KEY: the numeric values of KEY over the runs used, sorted: the BPF programs'
	# from the runs with the statistics on, everything else from those without
	local want=0
	case $2 in bpf* | nsrun* | rpw*) want=1 ;; esac
	used "$1" "$want" | grep -oP "(?<=[\t ])$2=[^ ]*" | cut -d= -f2 | grep -v '^NA$' | sort -g || true
}
med() { # med CFG KEY: median over the runs used (the lower middle for an even count), NA if none
	vals "$1" "$2" | awk '{ r[NR] = $0 } END { print NR ? r[int((NR + 1) / 2)] : "NA" }'
}
maxv() { vals "$1" "$2" | awk '{ m = $0 } END { print NR ? m : "NA" }'; }
range_of() { vals "$1" rate | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "%s-%s", lo, hi; else printf "NA" }'; }
used_of() { # "Q of N" quiet runs used, or "all N (none quiet)"
	local q n
	q=$(grep -P "^[0-9]+\t$1\t" "$DER" | grep -P ' stats=0 ' | grep -cP '\tquiet=1 ' || true)
	n=$(grep -P "^[0-9]+\t$1\t" "$DER" | grep -cP ' stats=0 ' || true)
	if [ "$q" -gt 0 ]; then echo "$q of $n"; else echo "all $n, none quiet"; fi
}

for cfg in "${CONFIGS[@]}"; do
	[ "$(med "$cfg" rate)" != NA ] || die "no completed run of $cfg: see $RAW and $WORK/*.err"
done

paired() { # paired CFG KEY div|sub: the median over CFG's runs without the statistics of its
	# baseline neighbour's KEY over its own (div) or of its KEY minus the neighbour's (sub); the
	# quiet pairs (both runs quiet), or all pairs if none is. NA if no pair.
	local v
	v=$(awk -F'\t' -v cfg="$1" -v key="$2" -v op="$3" '
	function get(line, k) { return match(line, "(^|[ \t])" k "=[^ ]*") ? substr(line, RSTART, RLENGTH) : "" }
	function val(line, k,   f) { f = get(line, k); sub(/^[ \t]/, "", f); sub(/^[^=]*=/, "", f); return f == "" ? "NA" : f }
	$3 !~ / stats=0 / { next }
	$2 == "baseline" && val($3, "pair") == cfg { b[$1] = $3 }
	$2 == cfg { c[$1] = $3 }
	END {
		for (r in c) if (r in b) {
			x = val(b[r], key); y = val(c[r], key)
			if (x == "NA" || y == "NA" || (op == "div" && y <= 0)) continue
			print (val(c[r], "quiet") == 1 && val(b[r], "quiet") == 1) ? 1 : 0, op == "div" ? x / y : y - x
		}
	}' "$DER")
	if grep -q '^1 ' <<<"$v"; then v=$(grep '^1 ' <<<"$v"); fi
	cut -d' ' -f2 <<<"$v" | grep . | sort -g | awk '{ r[NR] = $0 } END { if (NR) printf "%.2f\n", r[int((NR + 1) / 2)]; else print "NA" }'
}

# The noise of a paired slowdown: what pairing two untraced runs gives. Each baseline run
# against the next one (the neighbours of two configurations in a row), quiet runs only; the
# 90th percentile of those ratios. NA with fewer than 5 such pairs.
null_noise() {
	awk -F'\t' '
	$3 !~ / stats=0 / || $2 != "baseline" || $3 !~ /^quiet=1 / { next }
	{ match($3, / rate=[0-9]+/); r = substr($3, RSTART + 6, RLENGTH - 6) + 0 }
	prev_round == $1 && prev > 0 && r > 0 { print prev / r }
	{ prev = r; prev_round = $1 }' "$DER" | sort -g |
		awk '{ r[NR] = $0 } END { if (NR < 5) print "NA"; else printf "%.2f\n", r[int(0.9 * NR + 0.5)] }'
}

# Derived, each against its own baseline neighbours (paired): slowdown and the traffic's extra
# CPU; tracer CPU from the configuration's own medians.
declare -A D
for cfg in "${CONFIGS[@]}"; do
	if [ "$cfg" = baseline ]; then
		D[$cfg]="slowdown=1.00 traffic_delta=0.00 total=NA"
		continue
	fi
	d=$(paired "$cfg" traffic_us_wire sub)
	D[$cfg]="slowdown=$(paired "$cfg" rate div)"
	D[$cfg]+=" traffic_delta=$d"
	D[$cfg]+=" total=$(calc 'printf "%.2f", t + d' t="$(med "$cfg" tr_us_wire)" d="$d")"
done
NOISE=$(null_noise)

ratio() { # A / B with 2 decimals; NA when either is NA or not positive (noise swamped it)
	calc 'if (a <= 0 || b <= 0) print "NA"; else printf "%.2f", a / b' a="$1" b="$2"
}

table_commands() {
	local cfg c
	for cfg in "${CONFIGS[@]}"; do
		c=${CMD[$cfg]:-(none)}
		c=${c//-w $$ /-w PID } # the floor loader watches this script: its pid changes every run
		# shellcheck disable=SC2016 # the backquotes are Markdown
		printf '| %s | `%s` |\n' "$cfg" "$c"
	done
}

table_main() {
	printf '| run | runs used | msg/s (range) | slowdown | wire packets | captured | lost (max) | tracer CPU s | tracer µs / wire packet | tracer µs / captured event |\n'
	printf '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n'
	local cfg
	for cfg in "${CONFIGS[@]}"; do
		printf '| %s | %s | %s (%s) | %s | %s | %s | %s | %s | %s | %s |\n' "$cfg" "$(used_of "$cfg")" \
			"$(med "$cfg" rate)" "$(range_of "$cfg")" "$(kv slowdown "${D[$cfg]}")" \
			"$(med "$cfg" wire)" "$(med "$cfg" captured)" "$(maxv "$cfg" lost)" \
			"$(med "$cfg" tracer_cpu)" "$(med "$cfg" tr_us_wire)" "$(med "$cfg" tr_us_event)"
	done
}

table_kernel() {
	printf '| run | traffic CPU µs / wire packet | traffic Δ µs / wire packet | cgroup_skb runs / wire packet | cgroup_skb ns / run | cgroup_skb µs / wire packet | all BPF programs µs / wire packet | total extra CPU µs / wire packet | ns per system call (Δ) | IRQ-work interrupts | interference %% |\n'
	printf '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n'
	local cfg
	for cfg in "${CONFIGS[@]}"; do
		printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s (%s) | %s | %s |\n' "$cfg" \
			"$(med "$cfg" traffic_us_wire)" "$(kv traffic_delta "${D[$cfg]}")" \
			"$(med "$cfg" bpf_runs_wire)" "$(med "$cfg" bpf_ns_run)" "$(med "$cfg" bpf_us_wire)" \
			"$(med "$cfg" bpfall_us_wire)" \
			"$(kv total "${D[$cfg]}")" "$(med "$cfg" syscall_ns)" "$(paired "$cfg" syscall_ns sub)" \
			"$(med "$cfg" irq_work)" "$(med "$cfg" interference)"
	done
}

prog_type() { # the type of a program named $1 in the raw rows' runs, from the last listing
	awk -v p="$1" '$3 == p { t = $2 } END { print t ? t : "?" }' "$WORK/progs.txt" 2>/dev/null || echo "?"
}

table_progs() { # every pktrace program: ns per run and runs per wire packet, per configuration
	local cfg p line sep t unloaded=
	line='| program | type |'
	sep='| --- | --- |'
	for cfg in "${PKTRACE_CONFIGS[@]}"; do
		line+=" ${cfg#pktrace-} ns / run | ${cfg#pktrace-} runs / wire packet |"
		sep+=' --- | --- |'
	done
	printf '%s\n%s\n' "$line" "$sep"
	for p in $PROG_NAMES; do
		t=$(prog_type "$p")
		if [ "$t" = "?" ]; then # loaded by no configuration (a program for options none uses)
			unloaded+=" $p"
			continue
		fi
		line="| $p | $t |"
		for cfg in "${PKTRACE_CONFIGS[@]}"; do
			line+=" $(med "$cfg" "nsrun\\.$p" | sed 's/^NA$/-/') | $(med "$cfg" "rpw\\.$p" | sed 's/^NA$/-/') |"
		done
		printf '%s\n' "$line"
	done
	[ -z "$unloaded" ] || printf '\nNot loaded by any of these configurations:%s.\n' "$unloaded"
}

SENDRECV_TARGET=50 # ns per send or receive for a socket whose owner does not change (the issue's goal)
krange() { # krange CFG KEY: "lo-hi" of KEY over the runs used, NA if none
	vals "$1" "$2" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "%s-%s", lo, hi; else printf "NA" }'
}
floor_line() { # the floor reference: the empty programs' ns per run on the owner programs' hooks
	if [ -n "$FLOOR_WHY" ]; then
		echo "- floor: not measured ($FLOOR_WHY)"
		return
	fi
	printf -- '- floor (runs used: %s): floor_send %s ns per run (range %s, %s runs per wire packet), floor_recv %s ns per run (range %s, %s runs per wire packet)\n' \
		"$(used_of floor)" "$(med floor 'nsrun\.floor_send')" "$(krange floor 'nsrun\.floor_send')" \
		"$(med floor 'rpw\.floor_send')" "$(med floor 'nsrun\.floor_recv')" \
		"$(krange floor 'nsrun\.floor_recv')" "$(med floor 'rpw\.floor_recv')"
}
sendrecv() { # the owner programs' cost per send/receive call above the floor, against the target
	local cfg s r fs fr es er
	fs=$(med floor 'nsrun\.floor_send') fr=$(med floor 'nsrun\.floor_recv')
	printf '| pktrace run | owner_send ns / run | owner_recv ns / run | owner runs / wire packet (send, recv) | floor_send ns / run | floor_recv ns / run | extra ns per send | extra ns per receive | against the ~%s ns goal |\n' "$SENDRECV_TARGET"
	printf '| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n'
	for cfg in "${PKTRACE_CONFIGS[@]}"; do
		s=$(med "$cfg" 'nsrun\.owner_send') r=$(med "$cfg" 'nsrun\.owner_recv')
		es=$(calc 'printf "%.1f", s - f' s="$s" f="$fs") er=$(calc 'printf "%.1f", r - f' r="$r" f="$fr")
		printf '| %s | %s | %s | %s, %s | %s | %s | %s | %s | %s |\n' "$cfg" "$s" "$r" \
			"$(med "$cfg" 'rpw\.owner_send')" "$(med "$cfg" 'rpw\.owner_recv')" "$fs" "$fr" "$es" "$er" \
			"$(calc 'if (s <= t && r <= t) print "within"; else print "ABOVE"' s="$es" r="$er" t="$SENDRECV_TARGET" |
				sed 's/^NA$/not judged: no floor/')"
	done
}

# The six hooks pktrace runs on per packet: "what hook|floor-hooks program|pktrace's program
# (|the filter's, attached there instead when there is a filter)".
HOOKS=("socket ingress (cgroup_skb/ingress)|floor_skb_in|capture_ingress|filter_ingress"
	"socket egress (cgroup_skb/egress)|floor_skb_eg|capture_egress|filter_egress"
	"device ingress (tp_btf/netif_receive_skb)|floor_dev_in|capture_dev_ingress"
	"device egress (tp_btf/net_dev_queue)|floor_dev_eg|capture_dev_egress"
	"send (tp_btf/sock_send_length)|floor_send|owner_send"
	"receive (tp_btf/sock_recv_length)|floor_recv|owner_recv")
HOOK_CFGS=(pktrace-json-scoped pktrace-nomatch pktrace-filter-reject)
hooks_floor() { # per hook: the empty program's ns per run and pktrace's above it
	local h cfg line sep f p q fl
	local -a a
	if [ -n "$FLOOR_WHY" ]; then
		echo "(not measured: $FLOOR_WHY)"
		return
	fi
	line='| hook | empty program (floor-hooks) ns / run |'
	sep='| --- | --- |'
	for cfg in "${HOOK_CFGS[@]}"; do
		line+=" ${cfg#pktrace-}: program | ns / run | above the floor |"
		sep+=' --- | --- | --- |'
	done
	printf '%s\n%s\n' "$line" "$sep"
	for h in "${HOOKS[@]}"; do
		IFS='|' read -r -a a <<<"$h"
		fl=$(med floor-hooks "nsrun\\.${a[1]}")
		line="| ${a[0]} | $fl |"
		for cfg in "${HOOK_CFGS[@]}"; do
			p=${a[2]}
			q=$(med "$cfg" "nsrun\\.$p")
			if [ "$q" = NA ] && [ -n "${a[3]:-}" ]; then
				p=${a[3]}
				q=$(med "$cfg" "nsrun\\.$p")
			fi
			f=$(calc 'printf "%.1f", q - f' q="$q" f="$fl")
			line+=" $p | $q | $f |"
		done
		printf '%s\n' "$line"
	done
	printf '\n- slowdown with empty programs on all six hooks (floor-hooks): %s; on the send and receive hooks only (floor): %s\n' \
		"$(kv slowdown "${D[floor-hooks]}")" "$(kv slowdown "${D[floor]}")"
	printf -- '- pktrace on the same hooks: a filter rejecting every packet %s, a scope that matches nothing %s, -e flows (send and receive hooks only) %s\n' \
		"$(kv slowdown "${D[pktrace-filter-reject]}")" "$(kv slowdown "${D[pktrace-nomatch]}")" \
		"$(kv slowdown "${D[$FLOWS_CFG]}")"
}

floor_bound() { # the "within noise" targets against the empty programs' slowdowns
	if [ -n "$FLOOR_WHY" ]; then
		echo "(The hooks' floor was not measured: $FLOOR_WHY.)"
		return
	fi
	printf 'The two "within noise" rows against what the hooks alone cost: empty programs on the send\n'
	# shellcheck disable=SC2016 # the backquotes are Markdown
	printf 'and receive hooks (all that `-e flows` attaches) slowed this traffic %s, on all six hooks %s\n' \
		"$(kv slowdown "${D[floor]}")" "$(kv slowdown "${D[floor-hooks]}")"
	printf '(the hooks'"'"' floor, above).\n'
}

table_ratios() {
	printf '| pktrace run | tracer CPU per wire packet | tracer CPU per captured event | total extra CPU per wire packet | slowdown |\n'
	printf '| --- | --- | --- | --- | --- |\n'
	local cfg ev
	for cfg in "${PKTRACE_CONFIGS[@]}"; do
		ev=$(ratio "$(med "$cfg" tr_us_event)" "$(med tcpdump tr_us_event)")
		[ "$cfg" != "$FLOWS_CFG" ] || ev="- (flow events, not packets)"
		printf '| %s / tcpdump | %s | %s | %s | %s |\n' "$cfg" \
			"$(ratio "$(med "$cfg" tr_us_wire)" "$(med tcpdump tr_us_wire)")" "$ev" \
			"$(ratio "$(kv total "${D[$cfg]}")" "$(kv total "${D[tcpdump]}")")" \
			"$(ratio "$(kv slowdown "${D[$cfg]}")" "$(kv slowdown "${D[tcpdump]}")")"
	done
}

# The per-packet cost targets, each against this run's numbers. "Within noise" of no tracer: a
# slowdown no larger than two untraced runs in a row show (null_noise).
# Why the rate-based targets cannot be judged from this run, or nothing. A tracer cannot speed
# the traffic up: a slowdown under what two untraced runs in a row show the other way
# (1 / null_noise), or untraced runs in a row that differ by more than 1.25 times, says the
# host's own speed changed during the run (steal that the interference measure does not see).
rates_unjudged() {
	local cfg spread others
	spread=$(calc 'print n' n="$NOISE")
	[ "$spread" != NA ] || spread=0
	# Another pktrace's programs run on this traffic in every configuration, the baseline too.
	others=$(grep -c 'other_pktrace_progs=[1-9]' "$RAW" 2>/dev/null || true)
	# The floor runs too: empty programs cannot speed the traffic up either.
	for cfg in "${CONFIGS[@]}"; do
		if [ "$cfg" != baseline ]; then
			echo "$cfg $(kv slowdown "${D[$cfg]:-}")"
		fi
	done | awk -v spread="$spread" -v others="${others:-0}" '
		$2 != "NA" && $2 + 0 < (spread + 0 > 1.05 ? 1 / spread : 0.95) { low = low (low ? ", " : "") $1 " " $2 }
		END {
			if (others + 0 > 0) why = "another pktrace was loaded in " others " runs"
			if (low) why = why (why ? "; " : "") "a speed-up beyond the noise: " low
			if (spread + 0 > 1.25) why = why (why ? "; " : "") "untraced runs in a row differ by " spread " times"
			print why
		}'
}

table_targets() {
	local noise j t jo to unjudged once_s once_t lost
	noise=$NOISE
	j=$(ratio "$(kv slowdown "${D[pktrace-json-scoped]}")" "$(kv slowdown "${D[tcpdump]}")")
	t=$(ratio "$(kv total "${D[pktrace-json-scoped]}")" "$(kv total "${D[tcpdump]}")")
	# The same two with --once: one event per wire packet, as tcpdump writes one packet.
	jo=$(ratio "$(kv slowdown "${D[pktrace-json-once]:-}")" "$(kv slowdown "${D[tcpdump]}")")
	to=$(ratio "$(kv total "${D[pktrace-json-once]:-}")" "$(kv total "${D[tcpdump]}")")
	once_s="slowdown of JSON-traced traffic with --once (one event per wire packet) / tcpdump's, at most 1.00"
	once_t="total extra CPU per wire packet, JSON with --once / tcpdump, at most 1.00"
	unjudged=$(rates_unjudged)
	# A ratio of a few rounds' medians said "met" where 24 rounds of pairs put the median at 1.15:
	# with verdict rounds, those judge the rates (table_verdict).
	[ ! -s "$VRAW" ] || unjudged="from a few rounds' medians; the verdict rounds below judge it if they ran it${unjudged:+; $unjudged}"
	printf '| target | measured | met |\n| --- | --- | --- |\n'
	if [ -n "$unjudged" ]; then
		printf '| %s | %s | not judged (%s) |\n' \
			"slowdown of JSON-traced traffic / tcpdump's, at most 1.00" "$j" "$unjudged" \
			"total extra CPU per wire packet, JSON / tcpdump, at most 1.00" "$t" "$unjudged" \
			"$once_s" "$jo" "$unjudged" "$once_t" "$to" "$unjudged"
	else
		target_row "slowdown of JSON-traced traffic / tcpdump's, at most 1.00" "$j" 1.00
		target_row "total extra CPU per wire packet, JSON / tcpdump, at most 1.00" "$t" 1.00
		target_row "$once_s" "$jo" 1.00
		target_row "$once_t" "$to" 1.00
	fi
	target_row "cgroup_skb ns per traced run (pktrace-json-scoped), at most 300" "$(med pktrace-json-scoped bpf_ns_run)" 300
	target_row "cgroup_skb ns per out-of-scope run (pktrace-nomatch), at most 110" "$(med pktrace-nomatch bpf_ns_run)" 110
	target_row "cgroup_skb ns per filtered-out run (pktrace-filter-reject), at most 110" "$(med pktrace-filter-reject bpf_ns_run)" 110
	if [ -n "$unjudged" ]; then
		printf '| %s | %s | not judged (%s) |\n' \
			"slowdown with -e flows, within noise ($noise)" "$(kv slowdown "${D[$FLOWS_CFG]}")" "$unjudged" \
			"slowdown with a filter rejecting every packet, within noise ($noise)" "$(kv slowdown "${D[pktrace-filter-reject]}")" "$unjudged"
	else
		target_row "slowdown with -e flows, within noise ($noise)" "$(kv slowdown "${D[$FLOWS_CFG]}")" "$noise"
		target_row "slowdown with a filter rejecting every packet, within noise ($noise)" "$(kv slowdown "${D[pktrace-filter-reject]}")" "$noise"
	fi
	# The verdict rounds' JSON runs too.
	lost=$( {
		maxv pktrace-json-scoped lost
		echo
		rows pktrace-json-scoped "$VRAW" | grep -oP '(?<= )lost=\K[0-9]+' || true
	} | grep -E '^[0-9]+$' | sort -n | tail -1)
	target_row "events lost by JSON-traced traffic (the most in a run), 0" "${lost:-NA}" 0
}

# The rate targets judged from many runs: every quiet run of the verdict rounds and of the main
# rounds' runs without the statistics. Per round: a slowdown (a quiet baseline neighbour's rate
# over the run's), pktrace's slowdown over tcpdump's in the same round (tcpdump's rate over
# pktrace's: the untraced rate cancels out, and with it two untraced runs' noise), and
# pktrace's total extra CPU per wire packet minus tcpdump's (their tracer plus traffic CPU per
# wire packet, the one minus the other): a difference, as a ratio of two small differences
# would swing.
# Each row: the median over the rounds and its distribution-free 95 % interval (order
# statistics: the median lies between the k-th smallest and the k-th largest of n values with
# at least 95 % probability, whatever the distribution; none under 6 rounds). "At most": met
# when the interval's top is at most the limit, not met when its bottom is above it, undecided
# otherwise. "Within noise of no tracer": not met when the bottom is above 1.00 (a cost is
# shown), met when the interval lies at or under 1.02 (no cost above 2 %), undecided otherwise.
table_verdict() {
	awk -F'\t' -v json="$PACKETS_CFG" -v once="$ONCE_CFG" -v flows="$FLOWS_CFG" -v vfile="$VRAW" \
		-v reject=pktrace-filter-reject '
	function val(k,   i) { for (i = 1; i <= nw; i++) if (index(w[i], k "=") == 1) return substr(w[i], length(k) + 2); return "" }
	function add(name, x) { cnt[name]++; xs[name, cnt[name]] = x }
	{
		nw = split($3, w, " ")
		# another pktrace'"'"'s programs on the traffic: the run is left out
		if (val("status") != "ok" || val("stats") != "0" || val("quiet") != "1" ||
		    val("other_pktrace_progs") + 0 > 0) next
		r = FILENAME ":" $1; wire = val("wire_pkts") + 0
		if (wire <= 0) next
		# the main rounds run tcpdump and JSON runs apart, each beside its untraced run: they
		# count for the slowdowns against no tracer only
		if (FILENAME == vfile) verdict[r] = 1
		cpu = (val("cli_cpu_s") + val("srv_cpu_s")) / wire * 1e6
		if ($2 == "baseline") { brate[r, val("pair")] = val("rate_msg_s"); next }
		rate[r, $2] = val("rate_msg_s"); tcpu[r, $2] = cpu
		if (val("tracer_cpu_s") ~ /^[0-9.]+$/) tr[r, $2] = val("tracer_cpu_s") / wire * 1e6
		rounds[r] = 1
	}
	function slow(r, c) { return ((r, c) in rate && (r, c) in brate && rate[r, c] + 0 > 0) ? brate[r, c] / rate[r, c] : "" }
	# c against tcpdump in the same round: the ratio of their slowdowns is that of the rates
	# (the untraced rate cancels out), the difference of their extra CPU that of their CPU.
	function rel(r, c) { return (r in verdict && (r, c) in rate && (r, "tcpdump") in rate && rate[r, c] + 0 > 0) ? rate[r, "tcpdump"] / rate[r, c] : "" }
	function cpu_diff(r, c) { return (r in verdict && (r, c) in tr && (r, "tcpdump") in tr) ? tr[r, c] + tcpu[r, c] - tr[r, "tcpdump"] - tcpu[r, "tcpdump"] : "" }
	function row(name, text, kind, lim,   n, i, j, t, k, p, c, lo, hi, med, met) {
		n = cnt[name]
		for (i = 1; i <= n; i++) v[i] = xs[name, i]
		for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
		# k: the largest with P(Binomial(n, 1/2) <= k - 1) <= 0.025
		k = 0; p = 0; c = 1
		for (j = 0; j < n; j++) { p += c / 2 ^ n; if (p > 0.025) break; k = j + 1; c = c * (n - j) / (j + 1) }
		med = n ? (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2) : "NA"
		if (!k) { printf "| %s | %d | %s | NA (%s) | NA |\n", text, n, n ? sprintf("%.3f", med) : "NA", n ? "fewer than 6 rounds" : "not measured"; return }
		lo = v[k]; hi = v[n - k + 1]
		if (lo > lim) met = kind == "noise" ? "no: a cost is shown" : "no"
		else if (kind == "noise") met = hi <= lim + 0.02 ? "yes" : "undecided"
		else met = hi <= lim ? "yes" : "undecided"
		printf "| %s | %d | %.3f | %.3f to %.3f | %s |\n", text, n, med, lo, hi, met
	}
	END {
		for (r in rounds) {
			if ((a = rel(r, json)) != "") add("js", a)
			if ((a = cpu_diff(r, json)) != "") add("jt", a)
			if ((a = rel(r, once)) != "") add("os", a)
			if ((a = cpu_diff(r, once)) != "") add("ot", a)
			if ((a = slow(r, flows)) != "") add("fl", a)
			if ((a = slow(r, reject)) != "") add("rj", a)
			if ((a = slow(r, "floor-hooks")) != "") add("fh", a)
		}
		printf "| target | rounds | median | 95 %% interval | met |\n| --- | --- | --- | --- | --- |\n"
		row("js", "slowdown of JSON-traced traffic / tcpdump'"'"'s, at most 1.00", "max", 1)
		row("jt", "total extra CPU per wire packet, JSON minus tcpdump (µs), at most 0", "max", 0)
		row("os", "the same with --once (one event per wire packet): slowdown / tcpdump'"'"'s, at most 1.00", "max", 1)
		row("ot", "the same with --once: total extra CPU per wire packet minus tcpdump'"'"'s (µs), at most 0", "max", 0)
		row("fl", "slowdown with -e flows, within noise of no tracer", "noise", 1)
		row("rj", "slowdown with a filter rejecting every packet, within noise of no tracer", "noise", 1)
		row("fh", "(reference) slowdown with empty programs on the six hooks (floor-hooks)", "noise", 1)
	}' "$RAW" "$VRAW"
}

verdict_section() { # the verdict rounds' text and table; a line when none ran
	if [ "$done_vrounds" = 0 ]; then
		echo "No verdict rounds ran (\`BENCH_VERDICT_ROUNDS=0\`): the table above judges the rates"
		echo "from the rounds' medians, or withholds its verdict when the host is noisy."
		return
	fi
	local ran="" others="" cfg
	for cfg in "${VERDICT_CONFIGS[@]}"; do # those that ran, in their order
		grep -qP "^[0-9]+\t$cfg\t" "$VRAW" || continue
		ran+="${ran:+ }$cfg"
		against_tcpdump "$cfg" || others=1
	done
	cat <<EOF
The host's speed can swing between two untraced runs by more than any tracer costs, so the
table above withholds its verdict on the rates. This one judges them from many short runs
instead: after the rounds above, $done_vrounds verdict rounds run only the configurations these
targets compare ($ran), without the statistics. tcpdump and the JSON runs run back to back
with no untraced run, in an order that turns by one each round and runs backwards every other
few rounds (each comes right after each other one equally often). Per verdict round, JSON's
slowdown over tcpdump's is tcpdump's rate over JSON's (the untraced rate they would each be
divided by cancels out, and with it two untraced runs' noise), and its total extra CPU per
wire packet minus tcpdump's is the difference of their CPU (tracer and traffic) per wire
packet; the same for \`--once\`.$([ -z "$others" ] || printf '%s' " The others run each beside its own untraced run (right before
it, right after it every other round), and their rows are each slowdown against it, over the
rounds above too.") Only quiet runs count; runs during which another pktrace's programs
were loaded are left out. A row gives the median over the rounds and the interval that holds
the median with at least 95 % probability whatever the spread (order statistics; none under 6
rounds). "At most": met when the interval's top is at most the limit, not met when its bottom
is above it, undecided otherwise (more rounds narrow it: \`BENCH_VERDICT_ROUNDS\`, and
\`BENCH_VERDICT_CONFIGS\` to run only some; decide the rounds before the run: running again
until a verdict shows makes a wrong one likelier). "Within noise of no tracer": not met when
the bottom is above 1.00 (a cost is shown), met when the whole interval is at most 1.02 (no
cost above 2 %), undecided otherwise.

$(table_verdict)
EOF
}

target_row() { # target_row TEXT VALUE LIMIT
	printf '| %s | %s | %s |\n' "$1" "$2" "$(calc 'print (v == "NA" || l == "NA") ? "NA" : (v + 0 <= l + 0) ? "yes" : "no"' v="$2" l="$3")"
}

# expected_events ERR WIRE: "EXP SLACK", the events a pktrace run of this traffic should write
# (from the event names on its ready line in ERR) and how many more its teardown may add. Each
# TCP packet event (net_packet_tcp, net_packet_ipv4) is written twice per wire packet (egress
# and ingress socket), each flow event once per connection side; other events see none of it.
expected_events() {
	sed -n 's/^pktrace: ready, tracing \([^ ]*\).*/\1/p' "$1" 2>/dev/null | tr ',' '\n' |
		awk -v wire="$2" -v conns="$CONNS" '
			/^net_packet_(tcp|ipv4)$/ { k++ }
			/^net_flow_tcp_(begin|end)$/ { f++ }
			END { print 2 * wire * k + 2 * conns * f, 8 * conns * k }'
}

events_of() { # events_of CFG: the -e argument of CFG's command (pktrace's default without one)
	local -a w
	local i
	read -r -a w <<<"${CMD[$1]}"
	for ((i = 0; i + 1 < ${#w[@]}; i++)); do
		[ "${w[i]}" != -e ] || {
			echo "${w[i + 1]}"
			return
		}
	done
	echo net_packet_tcp
}

table_flows() { # flow-only, packet events and all events side by side: same scope, same output
	local cfg
	printf '| pktrace run | -e | msg/s | slowdown vs baseline | captured | traffic Δ µs / wire packet | all BPF programs µs / wire packet | tracer µs / wire packet | total extra CPU µs / wire packet |\n'
	printf '| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n'
	for cfg in "$PACKETS_CFG" "$FLOWS_CFG" "$ALL_CFG"; do
		printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$cfg" "$(events_of "$cfg")" \
			"$(med "$cfg" rate)" "$(kv slowdown "${D[$cfg]}")" "$(med "$cfg" captured)" \
			"$(kv traffic_delta "${D[$cfg]}")" "$(med "$cfg" bpfall_us_wire)" \
			"$(med "$cfg" tr_us_wire)" "$(kv total "${D[$cfg]}")"
	done
}

flows_line() { # flow-only against the packet-event run and the baseline: slowdowns and ratios
	local fs ps r t
	fs=$(kv slowdown "${D[$FLOWS_CFG]}") ps=$(kv slowdown "${D[$PACKETS_CFG]}")
	r=$(ratio "$fs" "$ps")
	printf -- '- slowdown vs baseline: flow-only %s, packet events %s, all events %s\n' "$fs" "$ps" \
		"$(kv slowdown "${D[$ALL_CFG]}")"
	t=$(ratio "$(kv total "${D[$FLOWS_CFG]}")" "$(kv total "${D[$PACKETS_CFG]}")")
	[ "$t" != NA ] || t="NA (flow-only's is not above the noise)"
	printf -- '- flow-only / packet events: slowdown %s, total extra CPU per wire packet %s; %s\n' "$r" "$t" \
		"$(calc 'print (r < 1) ? "flow-only tracing costs the traffic less than packet events" : "flow-only tracing does NOT cost the traffic less than packet events here"' r="$r" |
			sed 's/^NA$/not compared/')"
}

# Counts that look wrong, and noise worth knowing about: stated, never asserted on timing.
checks() {
	local cfg r round st wire cap lost got exp slack seen n=0 file pfx what
	for file in "$RAW" "$VRAW"; do
		pfx="" what=round
		[ "$file" = "$RAW" ] || pfx=v what="verdict round"
		for cfg in "${CONFIGS[@]}"; do
			while IFS= read -r r; do
				round=${r%%$'\t'*}
				st=$(kv status "$r") wire=$(kv wire_pkts "$r") cap=$(kv captured "$r") lost=$(kv lost "$r")
				if [ "$st" != ok ]; then
					echo "- $cfg, $what $round: $st (its stderr: $WORK/$pfx$cfg.$round.err)"
					n=$((n + 1))
					continue
				fi
				if [ "$(kv timed_out "$r")" = 1 ]; then
					echo "- $cfg, $what $round: the traffic hit the ${LIMIT} s cap: fewer messages than the others"
					n=$((n + 1))
				fi
				[ "$cfg" != baseline ] || continue
				if [ "${cfg#floor}" != "$cfg" ]; then
					# floor: about 2 runs per wire packet (a send and a receive each); floor-hooks
					# about 6 (and the sockets' and devices' both ways). Run counts exist only in
					# the runs with the BPF statistics on.
					[ "$(kv stats "$r")" = 1 ] || continue
					got=$(kv bpfall_runs "$r")
					exp=2
					[ "$cfg" = floor ] || exp=6
					if [ "$got" = NA ] || [ "$got" -lt $(((exp - 1) * wire)) ]; then
						echo "- $cfg, $what $round: its programs ran $got times, expected about $((exp * wire)) ($wire wire packets)"
						n=$((n + 1))
					fi
					continue
				fi
				if [ "$lost" != NA ] && [ "$lost" != 0 ]; then
					echo "- $cfg, $what $round: $lost lost ($cap captured; $wire wire packets)"
					n=$((n + 1))
				fi
				# The FIN/ACK teardown (up to 4 wire packets per connection) is not in wire_pkts:
				# up to 8 events per connection more for each packet event.
				slack=$((8 * CONNS))
				case $cfg in
				tcpdump) exp=$wire ;;
				pktrace-nomatch | pktrace-filter-reject) exp=0 ;;
				*)
					read -r exp slack < <(expected_events "$WORK/$pfx$cfg.$round.err" "$wire")
					# --once: the sender's event only, one per wire packet
					[ "$cfg" != pktrace-json-once ] || exp=$((exp / 2))
					;;
				esac
				if [ "$cap" = NA ]; then
					echo "- $cfg, $what $round: no capture count in its summary"
					n=$((n + 1))
					continue
				fi
				seen=$(kv seen "$r")
				if [ "$slack" = 0 ] && [ "$seen" != NA ] && [ "$seen" != 0 ]; then
					echo "- $cfg, $what $round: no packet event selected, yet $seen packets seen (packet programs attached)"
					n=$((n + 1))
				fi
				# pktrace-table-all also writes the events of every other TCP user of the host.
				got=$((cap + ${lost/NA/0}))
				if [ "$got" -lt "$exp" ] ||
					{ [ "$cfg" != pktrace-table-all ] && [ $((got - exp)) -gt "$slack" ]; }; then
					echo "- $cfg, $what $round: captured $cap + lost $lost, expected about $exp ($wire wire packets)"
					n=$((n + 1))
				fi
			done < <(rows "$cfg" "$file")
		done
	done
	got=$(progs | awk -v floor="$FLOOR_NAMES" 'BEGIN { n = split(floor, a, " "); for (i = 1; i <= n; i++) fl[a[i]] = 1 }
		fl[$3] { printf " %s (id %s)", $3, $1 }')
	if [ -n "$got" ]; then
		echo "- floor programs still loaded after the runs:$got"
		n=$((n + 1))
	fi
	[ "$n" -gt 0 ] || echo "- none: every tracer started, stopped on SIGINT with its summary and lost nothing; every count matches the wire packets"
}

share() { # share KEY: "min-max % (median M %)" of KEY seconds over the runs' traffic CPU time
	awk -v key="$1" -v n="$NCPU" '{
		for (i = 3; i <= NF; i++) {
			split($i, a, "=")
			if (a[1] == key) x = a[2]
			if (a[1] == "elapsed_s") e = a[2]
		}
		if (x != "NA" && e > 0) printf "%.1f\n", 100 * x / (e * n)
	}' "$RAW" "$VRAW" | sort -g | awk '{ r[NR] = $1 } END {
		if (NR) printf "%s to %s %% (median %s %%)", r[1], r[NR], r[int((NR + 1) / 2)]; else printf "NA" }'
}

noise() { # over the rounds' runs and the verdict rounds'
	local total progs
	total=$(cat "$RAW" "$VRAW" | grep -c .)
	progs=$(cat "$RAW" "$VRAW" | grep -c 'other_pktrace_progs=[1-9]' || true)
	echo "- $(cat "$RAW" "$VRAW" | grep -c ' quiet=1' || true) of $total runs were quiet (interference at most $QUIET_PCT %)."
	echo "- Other processes used $(share other_cpu_s) of the $NCPU CPUs while the traffic ran"
	echo "  (other_cpu_s in the raw rows); the hypervisor stole $(share steal_s) (steal_s)."
	if [ "$progs" -gt 0 ]; then
		echo "- In $progs of $total runs, programs of another pktrace (the same names, not loaded by"
		echo "  this run's tracer) were loaded: their host-wide hooks ran on this traffic too."
	else
		echo "- No other pktrace's programs were loaded during any run."
	fi
}

now=$(date -u '+%Y-%m-%d %H:%M UTC')
if [ -n "${BENCH_REPORT_ONLY:-}" ]; then
	now="$now (the report; the runs: $(cat "$WORK/when" 2>/dev/null || date -u -r "$RAW" "+%Y-%m-%d %H:%M UTC"))"
else
	echo "$now" >"$WORK/when"
fi
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if git status --porcelain -- src Makefile 2>/dev/null | grep -q .; then
	commit="$commit (src/ or the Makefile had uncommitted changes)"
fi
benv=$(env | { grep '^BENCH_' || true; } | sort | tr '\n' ' ' | sed 's/ $//')
benv=${benv:+these variables set: $benv}
if [ -n "${BENCH_REPORT_ONLY:-}" ]; then # what the runs were made with
	commit=$(sed -n 1p "$WORK/made-with" 2>/dev/null || echo "$commit (not recorded)")
	benv=$(sed -n 2p "$WORK/made-with" 2>/dev/null || echo "$benv")
else
	printf '%s\n%s\n%s\n' "$commit" "$benv" "$STATS_WAS" >"$WORK/made-with"
fi
stats_was=$(sed -n 3p "$WORK/made-with" 2>/dev/null)
stats_line="the host-wide switch kernel.bpf_stats_enabled: ${stats_was:-not recorded}"
[ "${stats_was:-0}" = 0 ] || stats_line="$stats_line before the bench, 0 during its runs"
benv=${benv:-no BENCH_* variables set}
done_vrounds=$(cut -f1 "$VRAW" | sort -n | tail -1)
done_vrounds=${done_vrounds:-0}
tcpdump_ver=$(tcpdump --version 2>&1 | head -2 | tr '\n' ' ' | sed 's/ *$//')

{
	cat <<EOF
# pktrace benchmark results

- Date: $now
- Machine: $NCPU cores ($cpu_model), kernel $(uname -r)
- pktrace: commit $commit; $tcpdump_ver
- Command: \`sudo make bench\` (the same as \`make pktrace && sudo bench/run.sh\`), from the
  repository's root, with $benv
- Traffic: \`$FLOOD [-S] -c $CONNS -n $MSGS -s $SIZE -t $LIMIT -p $PORT\`: $CONNS loopback
  connections, $MSGS ping-pong messages of $SIZE bytes on each, TCP_NODELAY, one message in
  flight per connection
- Rounds: $done_rounds, each running every configuration twice in the order below, then
  $done_vrounds verdict rounds ($elapsed s in all); a round runs them first without the kernel's BPF statistics (rates, slowdown, CPU, counts: what a user
  sees), then with them (\`-S\`: the BPF programs' ns per run and runs per packet only; they
  add two clock reads to every program run, and pktrace runs six programs per wire packet;
  $stats_line). A run is *quiet* when other processes and the hypervisor took at most $QUIET_PCT % of
  the CPUs during its traffic; every number below is the median over a configuration's quiet
  runs (over all its runs if none was quiet: "runs used" says which). Each run without the
  statistics has an untraced (baseline) run right before it: slowdown and traffic Δ are the
  medians of each run against that neighbour (the host's speed drifts by more than most
  tracers cost), and the baseline row sums up all of them.

| run | tracer command |
| --- | --- |
$(table_commands)

## Traffic rate, tracer CPU, packets

$(table_main)

## Kernel side

$(table_kernel)

## BPF programs

Every pktrace program, from the kernel's BPF statistics over the traffic (\`run_time_ns /
run_cnt\`, the medians over the runs used); "-": it did not run. The owner programs run on
every send and receive of the host, the cgroup_skb programs on every packet of a socket, the
device programs on every packet of every device. The statistics are on only while the messages
flow (after the connections are set up, until the last echo), so the programs that run once
per connection (owner_sock_create, owner_peername*, conn_state) or per process count only other
activity of the host.

$(table_progs)

### Extra cost per send or receive call

For a socket whose owner does not change, owner_send and owner_recv run once per send and
receive call. Their ns per run above includes what the kernel's BPF statistics count for any
program: the call into it and the statistics' own clock reads. The **floor** run measures that
with the same traffic and the same hooks (tp_btf sock_send_length, sock_recv_length) and only
empty programs attached (\`bench/floor.bpf.c\`, loaded by \`bench/floor.c\`); pktrace's **extra
cost per send or receive** is owner_send or owner_recv minus the floor program on its hook (the
difference of the medians), judged against the goal of about $SENDRECV_TARGET ns. Neither number includes
the tracepoint's own dispatch to the program, outside the statistics, the same for any program.

$(floor_line)

$(sendrecv)

### The hooks' floor

What the kernel's BPF statistics count on each hook pktrace runs on per packet for an empty
program (the **floor-hooks** run: \`bench/floor.bpf.c\`'s six programs, the same traffic, no
pktrace), and pktrace's program on that hook above it: its own work. With a filter, the
filter's program takes the socket hooks (and calls the capture program inside its own run
time). The slowdowns below say how much of a run's cost any tracer on these hooks pays.

$(hooks_floor)

## Ratios pktrace / tcpdump

Above 1: pktrace costs more than tcpdump for the same traffic. NA: a value was not positive
(no cost measurable above the noise).

$(table_ratios)

## Targets

The per-packet cost this benchmark holds pktrace to. Every run without the statistics has an
untraced (baseline) run right before it, and its slowdown is the median over the rounds of its
neighbour's msg/s over its own (traffic Δ likewise: its CPU per wire packet minus its
neighbour's). "Within noise": a slowdown no larger than two untraced runs in a row show, the
90th percentile of each baseline run's msg/s over the next one's: $NOISE here.

$(table_targets)

$(floor_bound)

### The rate targets from verdict rounds

$(verdict_section)

## Changes, before and after

From \`bench/changes.md\` (kept by hand: what each change to the hot path measured when it
was made, and how).

$(cat bench/changes.md 2>/dev/null || echo "(no bench/changes.md)")

## Flow-only against packet events

The same scope (\`-s comm=flood-cli,flood-srv\`) and output (JSON to /dev/null); only \`-e\`
differs. With \`-e flows\` pktrace attaches no packet program (cgroup_skb, device tracepoints):
on this traffic it writes one begin and one end per connection side, from the socket state
changes, and its cost per packet is the owner programs' on every send and receive. Slowdown
below: each run's median msg/s against the baseline's; the ratio is flow-only's slowdown over
the packet-event run's (below 1: flow-only costs the traffic less).

$(table_flows)

$(flows_line)

## Anomalies

$(checks)

## Noise

$(noise)

## How to read this

bench/README.md describes every column. In short:

- **wire packets**: the run's TCP segments, each counted once, from \`TCP_INFO\`
  (\`segs_out + segs_in\`) of the client's sockets once the last echo is back: handshakes
  and data; each message is two wire packets (the request and its echo, ACKs riding on the
  next segment). The FIN/ACK teardown, a few packets per connection, comes after this count.
- **captured**: tcpdump's "packets captured"; pktrace's "events written". tcpdump shows each
  wire packet once (on \`lo\` the kernel hands it both copies of every packet, which its
  "packets received by filter" counts, and libpcap drops the outgoing one); pktrace emits an
  event per packet **per socket**, as it leaves the sending socket (egress) and as it
  reaches the receiving one (ingress), so on loopback **2 events per wire packet** (1 in the
  json-once run: \`--once\` writes the sender's only). Hence two
  normalizations: per wire packet (the same denominator for both tools: the cost of tracing
  this traffic) and per captured event (the cost of one record).
- **tracer CPU**: user+system CPU of the tracer process from "ready" to exit (whole-life
  CPU from getrusage, via bash's \`times\`, minus the CPU it had used when it printed its
  ready line, from \`/proc/PID/stat\`): start-up (BPF loading) excluded, the final drain
  included.
- **traffic CPU**: client's plus server's CPU (getrusage) per wire packet. On loopback the
  kernel work of both tools runs in the traffic's own context: pktrace's cgroup_skb programs
  and tcpdump's copy of each packet into its AF_PACKET ring run in the sending process
  (ingress in the softirq its send runs). **Δ** is the difference with the baseline: that
  in-kernel cost plus side effects (cache, scheduling). **BPF**: run time and count of
  pktrace's programs, from the kernel's BPF statistics (on only while the traffic runs): the
  two cgroup_skb programs (as in earlier results), all programs together, and each program
  alone (ns per run, runs per wire packet). **floor**: the same traffic with only the bench's
  empty programs on owner_send's and owner_recv's hooks: the ns per run the statistics show for
  a program that does nothing, subtracted from the owner programs' to give pktrace's extra cost
  per send or receive. **floor-hooks**: empty programs on all six of pktrace's per-packet hooks
  (the hooks' floor). **total extra CPU** = tracer CPU + traffic Δ, per wire packet: what tracing
  costs the machine.
- **slowdown** = the neighbouring baseline run's msg/s / the run's msg/s, median over the
  rounds. The client and the server keep the CPUs busy, so
  the tracer's CPU competes with the traffic.
- **flow-only** (\`-e flows\`) writes 4 events per connection (begin and end, on both sides)
  where the packet-event run writes 2 per wire packet: its per-captured-event numbers are per
  flow event, not comparable with a packet's. **all events** (\`-e network_events\`): every
  event pktrace has, packets and flows.
- **ns per system call**: \`build/syscost\` (bench/syscost.c, the best of 7 rounds of 200 000
  \`getppid()\`) run right after the traffic, the tracer still attached; **(Δ)** against the
  untraced neighbour. A tracer that enabled a system-call tracepoint would slow every system
  call of the host (about 50 ns each here); pktrace uses none, so its Δ is noise.
- **IRQ-work interrupts**: taken by all CPUs during the traffic (\`/proc/interrupts\`); the
  baseline shows the host's background rate. A BPF ring-buffer wakeup of the reader arrives
  as one; pktrace requests one each time the records waiting pass another eighth of its ring
  buffer (1 MiB of the default 8 MiB).
- **interference**: the share of the CPUs that other processes (non-idle host CPU time minus
  the traffic's and the tracer's) and the hypervisor (steal) took during the traffic.

## All runs

Raw rows (\`$RAW\`), one per run:

\`\`\`
$(cat "$RAW")
\`\`\`

The verdict rounds' rows (\`$VRAW\`):

\`\`\`
$(cat "$VRAW")
\`\`\`
EOF
} >"$RESULTS"

echo
echo "== pktrace benchmark: $CONNS x $MSGS messages of $SIZE bytes on 127.0.0.1, $done_rounds round(s), medians over quiet runs"
table_main
echo
table_kernel
echo
echo "== BPF programs: ns per run, runs per wire packet"
table_progs
echo
echo "== extra cost per send/receive call: owner_send, owner_recv minus the empty programs' ns per run on the same hooks (floor); goal about $SENDRECV_TARGET ns"
floor_line
sendrecv
echo
echo "== the hooks' floor: empty programs on pktrace's six hooks (floor-hooks), pktrace's programs above them"
hooks_floor
echo
echo "== ratios pktrace / tcpdump"
table_ratios
echo
echo "== targets"
table_targets
echo
echo "== the rate targets from verdict rounds (median over rounds, its 95 % interval)"
if [ "$done_vrounds" = 0 ]; then echo "none: no verdict rounds ran"; else table_verdict; fi
echo
echo "== flow-only against packet events (same scope and output, only -e differs)"
table_flows
flows_line
echo
echo "== anomalies"
checks
echo
echo "== noise"
noise
echo
echo "written to $RESULTS (raw rows: $RAW)"
