# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
OUTPUT := build
# A test build (see test below)
FAULT := $(OUTPUT)/fault
CLANG ?= clang
BPFTOOL ?= bpftool
CC ?= gcc
ARCH := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')

CFLAGS ?= -g -O2
CFLAGS += -std=gnu11 -Wall -Wextra -I$(OUTPUT) -Isrc
# BPF_PROG() names a ctx argument that simple programs do not use.
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Wextra -Wno-unused-parameter \
	-I$(OUTPUT) -Isrc
LIBBPF_LIBS := $(shell pkg-config --libs libbpf 2>/dev/null || echo -lbpf -lelf -lz)
# Filter expressions: libpcap compiles them (src/filter.c).
PCAP_LIBS := $(shell pkg-config --libs libpcap 2>/dev/null || echo -lpcap)

# Everything but the entry point and the loader: what the unit tests link against.
LIB_SRCS := decode.c hold.c order.c owners.c output.c output_fmt.c output_json.c output_table.c output_text.c scope.c opts.c \
	enrich.c events.c filter.c filter_bpf.c rings.c
LIB_OBJS := $(patsubst %.c,$(OUTPUT)/%.o,$(LIB_SRCS))
APP_OBJS := $(OUTPUT)/main.o $(OUTPUT)/capture.o
UNIT_TESTS := $(patsubst tests/unit/%.c,$(OUTPUT)/%,$(wildcard tests/unit/test_*.c))

# Capture files: -w (pcapng) and -r (libpcap, and a pcapng block walker).
LIB_OBJS += $(OUTPUT)/output_pcapng.o $(OUTPUT)/readfile.o

.PHONY: all clean test unit e2e bench demo
all: pktrace

pktrace: $(APP_OBJS) $(LIB_OBJS)
	$(CC) $(CFLAGS) $^ $(LIBBPF_LIBS) $(PCAP_LIBS) -o $@

$(OUTPUT):
	mkdir -p $@

$(OUTPUT)/vmlinux.h: | $(OUTPUT)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(OUTPUT)/pktrace.bpf.o: src/pktrace.bpf.c src/pktrace.h $(OUTPUT)/vmlinux.h | $(OUTPUT)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUTPUT)/pktrace.skel.h: $(OUTPUT)/pktrace.bpf.o
	$(BPFTOOL) gen skeleton $< > $@.tmp && mv $@.tmp $@

$(OUTPUT)/capture.o: $(OUTPUT)/pktrace.skel.h

$(OUTPUT)/%.o: src/%.c $(wildcard src/*.h) | $(OUTPUT)
	$(CC) $(CFLAGS) -c $< -o $@

$(OUTPUT)/test_%: tests/unit/test_%.c $(LIB_OBJS) $(wildcard src/*.h)
	$(CC) $(CFLAGS) -Wno-unused-parameter $< $(LIB_OBJS) -lcmocka $(LIBBPF_LIBS) $(PCAP_LIBS) -o $@

unit: $(UNIT_TESTS)
	UNIT_ONLY=1 tests/run-all $(UNIT_TESTS)

e2e: pktrace $(FAULT)/pktrace
	python3 tests/e2e/run.py

# A test build whose state programs skip the closes that carry an error, as the kernel skips
# some it makes in a softirq: the end-to-end tests check that pktrace makes up for them.
$(FAULT):
	mkdir -p $@

$(FAULT)/pktrace.bpf.o: src/pktrace.bpf.c src/pktrace.h $(OUTPUT)/vmlinux.h | $(FAULT)
	$(CLANG) $(BPF_CFLAGS) -DPKTRACE_FAULT_MISS_CLOSES -c $< -o $@

$(FAULT)/pktrace.skel.h: $(FAULT)/pktrace.bpf.o
	$(BPFTOOL) gen skeleton $< > $@.tmp && mv $@.tmp $@

$(FAULT)/capture.o: src/capture.c $(FAULT)/pktrace.skel.h $(wildcard src/*.h)
	$(CC) -I$(FAULT) $(CFLAGS) -DPKTRACE_FAULT_MISS_CLOSES -c $< -o $@

$(FAULT)/pktrace: $(OUTPUT)/main.o $(FAULT)/capture.o $(LIB_OBJS)
	$(CC) $(CFLAGS) $^ $(LIBBPF_LIBS) $(PCAP_LIBS) -o $@

# The README's test command: unit tests, then end-to-end tests with real traffic.
test: pktrace $(FAULT)/pktrace $(UNIT_TESTS) $(OUTPUT)/fuzz_decode $(OUTPUT)/fuzz_readfile
	tests/run-all $(UNIT_TESTS)

# The README's first command: a short real TCP exchange traced by pktrace.
demo:
	scripts/demo

bench: pktrace
	scripts/as-root bench/run.sh

# nginx + ab, a connection per request: what tracing costs a web server (bench/web.py).
.PHONY: bench-web
bench-web: pktrace
	scripts/as-root /usr/bin/python3 bench/web.py

# The reader alone: synthetic records through the reorder stage, decode and each output
# (pcapng, JSON, table, text) to /dev/null, the stage off and on. bench-pcapng: the same.
.PHONY: bench-reader bench-pcapng
bench-reader bench-pcapng: $(OUTPUT)/reader_bench
	$(OUTPUT)/reader_bench

# What writing one 128-byte record costs by transport (BPF ring buffer, an own ring in an
# mmapable array, perf output), on bench/run.sh's traffic: bench/ringcost.bpf.c.
.PHONY: bench-ringcost
bench-ringcost: $(OUTPUT)/ringcost $(OUTPUT)/ringcost.bpf.o $(OUTPUT)/tcpflood
	scripts/as-root $(OUTPUT)/ringcost -r 5 $(OUTPUT)/ringcost.bpf.o \
		"$$(awk '$$3 == "cgroup2" { print $$2; exit }' /proc/mounts)" -- \
		$(OUTPUT)/tcpflood -S -c 8 -n 25000 -s 100 -p 47600

$(OUTPUT)/ringcost.bpf.o: bench/ringcost.bpf.c bench/ringcost.h $(OUTPUT)/vmlinux.h | $(OUTPUT)
	$(CLANG) $(BPF_CFLAGS) -Ibench -c $< -o $@

$(OUTPUT)/ringcost: bench/ringcost.c bench/ringcost.h | $(OUTPUT)
	$(CC) $(CFLAGS) -Ibench $< $(LIBBPF_LIBS) -o $@

$(OUTPUT)/tcpflood: bench/tcpflood.c | $(OUTPUT)
	$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror $< -o $@

$(OUTPUT)/reader_bench: bench/reader_bench.c $(LIB_OBJS) $(wildcard src/*.h)
	$(CC) $(CFLAGS) $< $(LIB_OBJS) -lpcap -o $@

clean:
	rm -rf $(OUTPUT) pktrace

# Coverage-guided fuzzing of the decoder and the printers (tests/fuzz/fuzz_decode.c). Needs
# compiler-rt's fuzzer and sanitizer runtimes: Debian's libclang-rt-14-dev (clang only recommends
# it). New inputs go to build/fuzz-corpus; the committed seeds in tests/fuzz/corpus are only read.
# Inputs: a 75-byte event prefix, then a whole IP packet (long IPv6 chains need the room).
# A failure leaves its input in build/fuzz-crash-*: `build/fuzz_decode FILE` replays it.
FUZZ_TIME ?= 20
FUZZ_SRCS := tests/fuzz/fuzz_decode.c src/decode.c src/output_json.c src/output_table.c \
	src/output_text.c src/output_fmt.c src/events.c src/output_pcapng.c
FUZZ_CFLAGS := -g -O1 -std=gnu11 -Wall -Wextra -Isrc -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all

.PHONY: fuzz
fuzz: $(OUTPUT)/fuzz_decode $(OUTPUT)/fuzz_readfile
	mkdir -p $(OUTPUT)/fuzz-corpus $(OUTPUT)/fuzz-corpus-readfile
	$(OUTPUT)/fuzz_decode -max_total_time=$(FUZZ_TIME) -timeout=5 -max_len=4096 \
		-artifact_prefix=$(OUTPUT)/fuzz- $(OUTPUT)/fuzz-corpus tests/fuzz/corpus
	$(OUTPUT)/fuzz_readfile -max_total_time=$(FUZZ_TIME) -timeout=5 -max_len=8192 \
		-artifact_prefix=$(OUTPUT)/fuzz-readfile- $(OUTPUT)/fuzz-corpus-readfile \
		tests/fuzz/corpus_readfile

$(OUTPUT)/fuzz_decode: $(FUZZ_SRCS) $(wildcard src/*.h) | $(OUTPUT)
	$(CLANG) $(FUZZ_CFLAGS) $(FUZZ_SRCS) -o $@

# -r's reader: a whole capture file per input (tests/fuzz/fuzz_readfile.c); libpcap itself is
# not instrumented, pktrace's side of it is.
FUZZ_READ_SRCS := tests/fuzz/fuzz_readfile.c src/readfile.c src/decode.c src/output_json.c \
	src/output_table.c src/output_fmt.c src/output_pcapng.c src/events.c

$(OUTPUT)/fuzz_readfile: $(FUZZ_READ_SRCS) $(wildcard src/*.h) | $(OUTPUT)
	$(CLANG) $(FUZZ_CFLAGS) $(FUZZ_READ_SRCS) -lpcap -o $@
