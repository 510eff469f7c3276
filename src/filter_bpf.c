// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Hand-written because no packaged library converts classic BPF to eBPF (the kernel's
 * bpf_convert_filter is not exported; cbpfc and elibpcap are Go). Read, not copied: the
 * kernel's bpf_convert_filter and xdp-tools' unmerged filterc.
 *
 * The program: A in r7, X in r8, the context in r6, M[] on the stack. A packet load reads the
 * linear data directly, or goes through bpf_skb_load_bytes past it (cgroup_skb data starts at
 * the IP header, as DLT_RAW's do); a failed load rejects, as libpcap does for a load past the
 * end. Classic BPF jumps only forward, so the result has no loop and the verifier accepts
 * whatever libpcap compiles. A miss is counted, then at egress with ICMP errors tracked handed
 * to the bookkeeping program (filter_target.reject_slot).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>

#include "filter_bpf.h"

#define R_A BPF_REG_7
#define R_X BPF_REG_8
#define R_CTX BPF_REG_6
/* 8 for an IPv6 packet over 64 KiB (BIG TCP: a Hop-by-Hop header with only the jumbo payload
 * option, which the kernel adds at the hooks and the segments on the wire do not carry), else
 * 0: the filter sees the packet without that header, as tcpdump sees its segments. */
#define R_JUMBO BPF_REG_9
#define JUMBO_LEN 8
#define LOAD_BUF (-8)              /* where bpf_skb_load_bytes writes, 4 bytes at most */
#define STAT_KEY (-12)             /* the key of the reject counter */
#define JUMBO_NH (-16)             /* the Hop-by-Hop header's next header, with R_JUMBO */
#define JUMBO_OFF (-88)            /* an indirect load's offset, for the next-header patch */
#define MEM_SLOT(k) (-80 + 4 * (int)(k)) /* M[0..15]: -80 .. -20 */
/* libpcap does not stop at the kernel's 4096 (BPF_MAXINSNS); eBPF takes a million. */
#define CBPF_MAX 65536
#define LONG_JUMP 8192 /* jumps over more become gotol */
#define SKF_AD_START 0xfffff000U   /* Linux ancillary loads start here (SKF_AD_OFF) */

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), \
					       .off = (o), .imm = (i)})

struct emit {
	struct bpf_insn *insns;
	size_t n, cap;
	int failed;
	/* Jumps to classic BPF targets, resolved once every target's start is known. */
	struct fixup {
		size_t at;
		unsigned int target;
	} *fix;
	size_t nfix, capfix;
	/* The classic index of one shared reject block after the program, which the failed
	 * loads jump to; 0: the program is too long for that, each failure rejects in place. */
	unsigned int shared_reject;
	int shared_used; /* the verifier refuses an unreachable block */
	/* With a reject slot: the classic index of the one block after the program that
	 * tail-calls it, which every reject jumps to once counted (the kernel takes at most 1024
	 * tail calls by constant key in a program: one per in-place reject would not do). */
	unsigned int book;
	int book_used;
};

/* Room for one more element in *arr (cap of them, n used); 0, or -ENOMEM. */
static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
	size_t want = *cap ? *cap * 2 : 256;
	void *p;

	if (n < *cap)
		return 0;
	p = realloc(*arr, want * size);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = want;
	return 0;
}

static void put(struct emit *e, struct bpf_insn insn)
{
	if (grow((void **)&e->insns, &e->cap, e->n, sizeof(*e->insns))) {
		e->failed = -ENOMEM;
		return;
	}
	e->insns[e->n++] = insn;
}

/* A jump (conditional or not) whose offset is the start of classic instruction target. */
static void put_jump(struct emit *e, struct bpf_insn insn, unsigned int target)
{
	if (grow((void **)&e->fix, &e->capfix, e->nfix, sizeof(*e->fix))) {
		e->failed = -ENOMEM;
		return;
	}
	e->fix[e->nfix].at = e->n;
	e->fix[e->nfix++].target = target;
	put(e, insn);
}

static void put_map_fd(struct emit *e, int reg, int fd)
{
	put(e, INSN(BPF_LD | BPF_DW | BPF_IMM, reg, BPF_PSEUDO_MAP_FD, 0, fd));
	put(e, INSN(0, 0, 0, 0, 0));
}

/* The packet is not wanted: count it, and let it go (pktrace never drops traffic). */
static void put_reject(struct emit *e, const struct filter_target *t)
{
	int16_t at = (int16_t)(t->reject_stat * sizeof(__u64));

	put(e, INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_get_smp_processor_id));
	put(e, INSN(BPF_STX | BPF_MEM | BPF_W, BPF_REG_10, BPF_REG_0, STAT_KEY, 0));
	put_map_fd(e, BPF_REG_1, t->stats_fd);
	put(e, INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0));
	put(e, INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, STAT_KEY));
	put(e, INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem));
	put(e, INSN(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_0, 0, 3, 0));
	/* this CPU's counters: no other writer */
	put(e, INSN(BPF_LDX | BPF_MEM | BPF_DW, BPF_REG_1, BPF_REG_0, at, 0));
	put(e, INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_1, 0, 0, 1));
	put(e, INSN(BPF_STX | BPF_MEM | BPF_DW, BPF_REG_0, BPF_REG_1, at, 0));
	if (t->reject_slot) {
		e->book_used = 1;
		put_jump(e, INSN(BPF_JMP | BPF_JA, 0, 0, 0, 0), e->book);
		return;
	}
	put(e, INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1));
	put(e, INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
}
/* put_reject's instructions */
#define REJECT_LEN(t) ((t)->reject_slot ? 12 : 13)

/* A rejected packet's bookkeeping program; should the tail call fail, let the packet go. */
static void put_book(struct emit *e, const struct filter_target *t)
{
	put(e, INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, R_CTX, 0, 0));
	put_map_fd(e, BPF_REG_2, t->progs_fd);
	put(e, INSN(BPF_ALU | BPF_MOV | BPF_K, BPF_REG_3, 0, 0, t->reject_slot));
	put(e, INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_tail_call));
	put(e, INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1));
	put(e, INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
}

/* The packet is wanted: on to the capture program; should the tail call fail, let it go. */
static void put_accept(struct emit *e, const struct filter_target *t)
{
	put(e, INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, R_CTX, 0, 0));
	put_map_fd(e, BPF_REG_2, t->progs_fd);
	put(e, INSN(BPF_ALU | BPF_MOV | BPF_K, BPF_REG_3, 0, 0, t->accept_slot));
	put(e, INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_tail_call));
	put(e, INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1));
	put(e, INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
}
#define ACCEPT_LEN 7

/* Reject when reg <op> imm holds (op one of JNE, JGT, JEQ); 64-bit compare unless jmp32. */
static void put_reject_if(struct emit *e, const struct filter_target *t, int cls, int op, int reg,
			  int32_t imm)
{
	int inverse = op == BPF_JNE ? BPF_JEQ : op == BPF_JGT ? BPF_JLE : BPF_JNE;

	if (e->shared_reject) {
		e->shared_used = 1;
		put_jump(e, INSN(cls | op | BPF_K, reg, 0, 0, imm), e->shared_reject);
		return;
	}
	put(e, INSN(cls | inverse | BPF_K, reg, 0, REJECT_LEN(t), imm));
	put_reject(e, t);
}

/* dst = size bytes of the packet at offset r2, big-endian, through bpf_skb_load_bytes (which
 * also reaches paged data); a failed load rejects. */
static void put_load_helper(struct emit *e, const struct filter_target *t, int dst, int size)
{
	int bytes = size == BPF_W ? 4 : size == BPF_H ? 2 : 1;

	put(e, INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, R_CTX, 0, 0));
	put(e, INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_3, BPF_REG_10, 0, 0));
	put(e, INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_3, 0, 0, LOAD_BUF));
	put(e, INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_4, 0, 0, bytes));
	put(e, INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_skb_load_bytes));
	put_reject_if(e, t, BPF_JMP, BPF_JNE, BPF_REG_0, 0);
	put(e, INSN(BPF_LDX | BPF_MEM | size, dst, BPF_REG_10, LOAD_BUF, 0));
	if (bytes > 1)
		put(e, INSN(BPF_ALU | BPF_END | BPF_TO_BE, dst, 0, 0, bytes * 8));
}

/* Point the local jump at index at to the next instruction to be emitted. */
static void land(struct emit *e, size_t at)
{
	if (!e->failed)
		e->insns[at].off = (int16_t)(e->n - at - 1);
}

/*
 * dst = size bytes of the packet at k (+ X when ind), big-endian. Read directly from the
 * linear data when they lie within it (a few instructions: what most headers take), else
 * through the helper; the offset as libpcap computes it, without 32-bit wrap-around, and one
 * past what the helper takes (INT_MAX) rejects, as it is past any packet.
 */
/*
 * A jumbo packet (R_JUMBO) seen without its Hop-by-Hop header: an offset past the IPv6 header
 * moves past the removed one (put_load); a load that covers the next-header byte (6) gets the
 * removed header's next header in it, here. The offset is k, or (ind) saved at JUMBO_OFF.
 */
static void put_jumbo_patch(struct emit *e, int dst, int bytes, uint32_t k, int ind)
{
	size_t skip[3];
	int nskip = 0;

	if (!ind && (k > 6 || k + bytes - 1 < 6))
		return;
	skip[nskip++] = e->n;
	put(e, INSN(BPF_JMP | BPF_JEQ | BPF_K, R_JUMBO, 0, 0, 0));
	if (ind) {
		/* r0 = the bit shift of byte 6 in the big-endian value, if the load covers it */
		put(e, INSN(BPF_LDX | BPF_MEM | BPF_DW, BPF_REG_0, BPF_REG_10, JUMBO_OFF, 0));
		skip[nskip++] = e->n;
		put(e, INSN(BPF_JMP | BPF_JGT | BPF_K, BPF_REG_0, 0, 0, 6));
		put(e, INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_0, 0, 0, bytes - 1));
		skip[nskip++] = e->n;
		put(e, INSN(BPF_JMP | BPF_JLT | BPF_K, BPF_REG_0, 0, 0, 6));
		put(e, INSN(BPF_ALU64 | BPF_SUB | BPF_K, BPF_REG_0, 0, 0, 6));
		put(e, INSN(BPF_ALU64 | BPF_LSH | BPF_K, BPF_REG_0, 0, 0, 3));
	} else {
		put(e, INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, (k + bytes - 1 - 6) * 8));
	}
	put(e, INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_3, 0, 0, 0xff));
	put(e, INSN(BPF_ALU64 | BPF_LSH | BPF_X, BPF_REG_3, BPF_REG_0, 0, 0));
	put(e, INSN(BPF_ALU64 | BPF_XOR | BPF_K, BPF_REG_3, 0, 0, -1));
	put(e, INSN(BPF_ALU64 | BPF_AND | BPF_X, dst, BPF_REG_3, 0, 0));
	put(e, INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_3, BPF_REG_10, JUMBO_NH, 0));
	put(e, INSN(BPF_ALU64 | BPF_LSH | BPF_X, BPF_REG_3, BPF_REG_0, 0, 0));
	put(e, INSN(BPF_ALU64 | BPF_OR | BPF_X, dst, BPF_REG_3, 0, 0));
	for (int i = 0; i < nskip; i++)
		land(e, skip[i]);
}

static void put_load(struct emit *e, const struct filter_target *t, int dst, int size,
		     uint32_t k, int ind)
{
	int bytes = size == BPF_W ? 4 : size == BPF_H ? 2 : 1;
	size_t slow[2], done;
	int nslow = 0;

	put(e, INSN(BPF_ALU | BPF_MOV | BPF_K, BPF_REG_2, 0, 0, (int32_t)k));
	if (ind) {
		put(e, INSN(BPF_ALU64 | BPF_ADD | BPF_X, BPF_REG_2, R_X, 0, 0));
		put(e, INSN(BPF_STX | BPF_MEM | BPF_DW, BPF_REG_10, BPF_REG_2, JUMBO_OFF, 0));
		put(e, INSN(BPF_JMP | BPF_JLT | BPF_K, BPF_REG_2, 0, 1, 40));
		put(e, INSN(BPF_ALU64 | BPF_ADD | BPF_X, BPF_REG_2, R_JUMBO, 0, 0));
		/* the verifier takes a packet offset it knows to be below 64 KiB */
		slow[nslow++] = e->n;
		put(e, INSN(BPF_JMP | BPF_JGT | BPF_K, BPF_REG_2, 0, 0, 0xffff - bytes));
	} else {
		if (k >= 40)
			put(e, INSN(BPF_ALU64 | BPF_ADD | BPF_X, BPF_REG_2, R_JUMBO, 0, 0));
		if ((uint64_t)k + JUMBO_LEN + bytes > 0xffff) {
			put_load_helper(e, t, dst, size);
			return;
		}
	}
	put(e, INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_1, R_CTX, offsetof(struct __sk_buff, data),
		    0));
	put(e, INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_3, R_CTX,
		    offsetof(struct __sk_buff, data_end), 0));
	put(e, INSN(BPF_ALU64 | BPF_ADD | BPF_X, BPF_REG_1, BPF_REG_2, 0, 0));
	put(e, INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_4, BPF_REG_1, 0, 0));
	put(e, INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_4, 0, 0, bytes));
	slow[nslow++] = e->n;
	put(e, INSN(BPF_JMP | BPF_JGT | BPF_X, BPF_REG_4, BPF_REG_3, 0, 0));
	put(e, INSN(BPF_LDX | BPF_MEM | size, dst, BPF_REG_1, 0, 0));
	if (bytes > 1)
		put(e, INSN(BPF_ALU | BPF_END | BPF_TO_BE, dst, 0, 0, bytes * 8));
	done = e->n;
	put(e, INSN(BPF_JMP | BPF_JA, 0, 0, 0, 0));
	for (int i = 0; i < nslow; i++)
		land(e, slow[i]);
	if (ind)
		put_reject_if(e, t, BPF_JMP, BPF_JGT, BPF_REG_2, 0x7fffffff);
	put_load_helper(e, t, dst, size);
	land(e, done);
	put_jumbo_patch(e, dst, bytes, k, ind);
}

/* R_JUMBO and JUMBO_NH: an IPv6 header whose next header is a Hop-by-Hop header of 8 bytes
 * starting with the jumbo payload option (RFC 2675), both in the linear data. */
static void put_jumbo_check(struct emit *e)
{
	size_t no[6];
	int nno = 0;

	put(e, INSN(BPF_ALU64 | BPF_MOV | BPF_K, R_JUMBO, 0, 0, 0));
	put(e, INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_1, R_CTX, offsetof(struct __sk_buff, data),
		    0));
	put(e, INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_3, R_CTX,
		    offsetof(struct __sk_buff, data_end), 0));
	put(e, INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_4, BPF_REG_1, 0, 0));
	put(e, INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_4, 0, 0, 40 + JUMBO_LEN));
	no[nno++] = e->n;
	put(e, INSN(BPF_JMP | BPF_JGT | BPF_X, BPF_REG_4, BPF_REG_3, 0, 0));
	/* byte 6 first: an IPv4 header's flags byte is rarely 0 (DF) */
	put(e, INSN(BPF_LDX | BPF_MEM | BPF_B, BPF_REG_0, BPF_REG_1, 6, 0));
	no[nno++] = e->n;
	put(e, INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_0, 0, 0, 0));
	put(e, INSN(BPF_LDX | BPF_MEM | BPF_B, BPF_REG_0, BPF_REG_1, 0, 0));
	put(e, INSN(BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_0, 0, 0, 0xf0));
	no[nno++] = e->n;
	put(e, INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_0, 0, 0, 0x60));
	put(e, INSN(BPF_LDX | BPF_MEM | BPF_B, BPF_REG_0, BPF_REG_1, 41, 0));
	no[nno++] = e->n;
	put(e, INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_0, 0, 0, 0));
	put(e, INSN(BPF_LDX | BPF_MEM | BPF_B, BPF_REG_0, BPF_REG_1, 42, 0));
	no[nno++] = e->n;
	put(e, INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_0, 0, 0, 0xc2));
	put(e, INSN(BPF_LDX | BPF_MEM | BPF_B, BPF_REG_0, BPF_REG_1, 40, 0));
	put(e, INSN(BPF_STX | BPF_MEM | BPF_W, BPF_REG_10, BPF_REG_0, JUMBO_NH, 0));
	put(e, INSN(BPF_ALU64 | BPF_MOV | BPF_K, R_JUMBO, 0, 0, JUMBO_LEN));
	for (int i = 0; i < nno; i++)
		land(e, no[i]);
}

static int jump_op(int op, int invert)
{
	switch (op) {
	case BPF_JEQ:
		return invert ? BPF_JNE : BPF_JEQ;
	case BPF_JGT:
		return invert ? BPF_JLE : BPF_JGT;
	case BPF_JGE:
		return invert ? BPF_JLT : BPF_JGE;
	}
	return -1;
}

/* A conditional jump: to jt when it holds, to jf when not (32-bit unsigned compares). */
static void put_cond(struct emit *e, const struct filter_insn *c, unsigned int i)
{
	int op = BPF_OP(c->code), src = BPF_SRC(c->code);
	unsigned int t = i + 1 + c->jt, f = i + 1 + c->jf;
	int32_t imm = src == BPF_K ? (int32_t)c->k : 0;
	int sreg = src == BPF_X ? R_X : 0;

	if (t == f) {
		put_jump(e, INSN(BPF_JMP | BPF_JA, 0, 0, 0, 0), t);
		return;
	}
	if (c->jt == 0 && op == BPF_JSET) {
		/* no inverse of jset: test A & K (or X) == 0 in r2 */
		put(e, INSN(BPF_ALU | BPF_MOV | BPF_X, BPF_REG_2, R_A, 0, 0));
		put(e, INSN(BPF_ALU | BPF_AND | src, BPF_REG_2, sreg, 0, imm));
		put_jump(e, INSN(BPF_JMP32 | BPF_JEQ | BPF_K, BPF_REG_2, 0, 0, 0), f);
		return;
	}
	if (c->jt == 0) {
		put_jump(e, INSN(BPF_JMP32 | jump_op(op, 1) | src, R_A, sreg, 0, imm), f);
		return;
	}
	put_jump(e, INSN(BPF_JMP32 | op | src, R_A, sreg, 0, imm), t);
	if (c->jf)
		put_jump(e, INSN(BPF_JMP | BPF_JA, 0, 0, 0, 0), f);
}

static int put_alu(struct emit *e, const struct filter_target *t, const struct filter_insn *c)
{
	int op = BPF_OP(c->code), src = BPF_SRC(c->code);

	switch (op) {
	case BPF_ADD:
	case BPF_SUB:
	case BPF_MUL:
	case BPF_OR:
	case BPF_AND:
	case BPF_XOR:
		break;
	case BPF_DIV:
	case BPF_MOD:
		if (src == BPF_K && c->k == 0)
			return -EINVAL; /* libpcap refuses it ("division by zero") */
		if (src == BPF_X) {
			/* libpcap rejects on a zero divisor */
			put_reject_if(e, t, BPF_JMP32, BPF_JEQ, R_X, 0);
		}
		break;
	case BPF_LSH:
	case BPF_RSH:
		/* A shift by 32 or more gives 0 in libpcap (found by the differential test) */
		if (src == BPF_K && c->k >= 32) {
			put(e, INSN(BPF_ALU | BPF_MOV | BPF_K, R_A, 0, 0, 0));
		} else if (src == BPF_K) {
			put(e, INSN(BPF_ALU | op | BPF_K, R_A, 0, 0, c->k));
		} else {
			put(e, INSN(BPF_JMP32 | BPF_JLT | BPF_K, R_X, 0, 2, 32));
			put(e, INSN(BPF_ALU | BPF_MOV | BPF_K, R_A, 0, 0, 0));
			put(e, INSN(BPF_JMP | BPF_JA, 0, 0, 1, 0));
			put(e, INSN(BPF_ALU | op | BPF_X, R_A, R_X, 0, 0));
		}
		return 0;
	case BPF_NEG:
		put(e, INSN(BPF_ALU | BPF_NEG, R_A, 0, 0, 0));
		return 0;
	default:
		return -EINVAL;
	}
	put(e, INSN(BPF_ALU | op | src, R_A, src == BPF_X ? R_X : 0, 0,
		    src == BPF_K ? (int32_t)c->k : 0));
	return 0;
}

/* A packet load at constant offset k or X + k; libpcap's loads past the end reject. */
static int put_packet_load(struct emit *e, const struct filter_target *t, int dst, int size,
			   uint32_t k, int ind)
{
	int bytes = size == BPF_W ? 4 : size == BPF_H ? 2 : 1;

	if (!ind && k >= SKF_AD_START)
		return -EOPNOTSUPP;
	if (!ind && (uint64_t)k + bytes > 0x7fffffff) {
		put_reject(e, t);
		return 0;
	}
	put_load(e, t, dst, size, k, ind);
	return 0;
}

static int put_insn(struct emit *e, const struct filter_target *t, const struct filter_insn *c,
		    unsigned int i)
{
	int size = BPF_SIZE(c->code), mode = BPF_MODE(c->code);
	int reg = BPF_CLASS(c->code) == BPF_LD ? R_A : R_X;

	switch (BPF_CLASS(c->code)) {
	case BPF_LD:
	case BPF_LDX:
		switch (mode) {
		case BPF_ABS:
		case BPF_IND:
			if (reg != R_A || (size != BPF_W && size != BPF_H && size != BPF_B))
				return -EINVAL;
			return put_packet_load(e, t, R_A, size, c->k, mode == BPF_IND);
		case BPF_MSH:
			if (reg != R_X || size != BPF_B)
				return -EINVAL;
			if (put_packet_load(e, t, R_X, BPF_B, c->k, 0))
				return -EOPNOTSUPP;
			put(e, INSN(BPF_ALU | BPF_AND | BPF_K, R_X, 0, 0, 0xf));
			put(e, INSN(BPF_ALU | BPF_LSH | BPF_K, R_X, 0, 0, 2));
			return 0;
		case BPF_IMM:
			put(e, INSN(BPF_ALU | BPF_MOV | BPF_K, reg, 0, 0, (int32_t)c->k));
			return 0;
		case BPF_LEN:
			/* __sk_buff.len: the IP packet's length at the hook, DLT_RAW's wire length */
			put(e, INSN(BPF_LDX | BPF_MEM | BPF_W, reg, R_CTX,
				    offsetof(struct __sk_buff, len), 0));
			put(e, INSN(BPF_ALU | BPF_SUB | BPF_X, reg, R_JUMBO, 0, 0));
			return 0;
		case BPF_MEM:
			if (c->k >= BPF_MEMWORDS)
				return -EINVAL;
			put(e, INSN(BPF_LDX | BPF_MEM | BPF_W, reg, BPF_REG_10, MEM_SLOT(c->k), 0));
			return 0;
		}
		return -EINVAL;
	case BPF_ST:
	case BPF_STX:
		if (c->k >= BPF_MEMWORDS)
			return -EINVAL;
		put(e, INSN(BPF_STX | BPF_MEM | BPF_W, BPF_REG_10,
			    BPF_CLASS(c->code) == BPF_ST ? R_A : R_X, MEM_SLOT(c->k), 0));
		return 0;
	case BPF_ALU:
		return put_alu(e, t, c);
	case BPF_JMP:
		if (BPF_OP(c->code) == BPF_JA) {
			put_jump(e, INSN(BPF_JMP | BPF_JA, 0, 0, 0, 0), i + 1 + c->k);
			return 0;
		}
		if (jump_op(BPF_OP(c->code), 0) < 0 && BPF_OP(c->code) != BPF_JSET)
			return -EINVAL;
		put_cond(e, c, i);
		return 0;
	case BPF_RET:
		if (BPF_RVAL(c->code) == BPF_K) {
			if (c->k)
				put_accept(e, t);
			else
				put_reject(e, t);
			return 0;
		}
		if (BPF_RVAL(c->code) != BPF_A)
			return -EINVAL;
		put(e, INSN(BPF_JMP32 | BPF_JEQ | BPF_K, R_A, 0, ACCEPT_LEN, 0));
		put_accept(e, t);
		put_reject(e, t);
		return 0;
	case BPF_MISC:
		if (BPF_MISCOP(c->code) == BPF_TAX)
			put(e, INSN(BPF_ALU | BPF_MOV | BPF_X, R_X, R_A, 0, 0));
		else if (BPF_MISCOP(c->code) == BPF_TXA)
			put(e, INSN(BPF_ALU | BPF_MOV | BPF_X, R_A, R_X, 0, 0));
		else
			return -EINVAL;
		return 0;
	}
	return -EINVAL;
}

/* Jumps stay inside the program and end on an instruction; it ends with a return. */
static int validate(const struct filter_prog *p, char *err, size_t err_len)
{
	if (p->len == 0 || p->len > CBPF_MAX) {
		snprintf(err, err_len, "the classic BPF program has %u instructions (1 to %d)",
			 p->len, CBPF_MAX);
		return -E2BIG;
	}
	for (unsigned int i = 0; i < p->len; i++) {
		const struct filter_insn *c = &p->insns[i];
		uint64_t far = 0;

		if (BPF_CLASS(c->code) != BPF_JMP)
			continue;
		if (BPF_OP(c->code) == BPF_JA && (int32_t)c->k < 0) {
			/* libpcap's protochain walks the IPv6 header chain in a loop */
			snprintf(err, err_len, "classic BPF instruction %u jumps backward (a loop, as "
				 "'protochain' makes): not supported; use 'proto' or 'tcp', 'udp'...", i);
			return -EOPNOTSUPP;
		}
		if (BPF_OP(c->code) == BPF_JA)
			far = (uint64_t)i + 1 + c->k;
		else
			far = (uint64_t)i + 1 + (c->jt > c->jf ? c->jt : c->jf);
		if (far >= p->len) {
			snprintf(err, err_len, "classic BPF instruction %u jumps out of the program", i);
			return -EINVAL;
		}
	}
	if (BPF_CLASS(p->insns[p->len - 1].code) != BPF_RET) {
		snprintf(err, err_len, "the classic BPF program does not end with a return");
		return -EINVAL;
	}
	return 0;
}

int filter_to_ebpf(const struct filter_prog *p, const struct filter_target *t,
		   struct bpf_insn **insns, size_t *n, char *err, size_t err_len)
{
	struct emit e = {};
	size_t *start = NULL;
	uint16_t used = 0; /* M[] words the program reads or writes */
	unsigned int i;
	int rc;

	*insns = NULL;
	*n = 0;
	rc = validate(p, err, err_len);
	if (rc)
		return rc;
	/* A cBPF instruction becomes at most ~25 eBPF ones: the shared block is then always
	 * within a conditional jump's reach, with room for the verifier's rewrites. */
	if (p->len < 400)
		e.shared_reject = p->len;
	e.book = p->len + 1;
	start = calloc(p->len + 2, sizeof(*start));
	if (!start)
		goto nomem;
	for (i = 0; i < p->len; i++) {
		int cls = BPF_CLASS(p->insns[i].code), mode = BPF_MODE(p->insns[i].code);

		if (((cls == BPF_LD || cls == BPF_LDX) && mode == BPF_MEM) || cls == BPF_ST ||
		    cls == BPF_STX)
			used |= 1u << (p->insns[i].k & 15);
	}
	/* A and X start at 0; so does M[], which classic BPF checkers make sure is written
	 * before it is read, but the eBPF verifier cannot know. */
	put(&e, INSN(BPF_ALU64 | BPF_MOV | BPF_X, R_CTX, BPF_REG_1, 0, 0));
	put(&e, INSN(BPF_ALU64 | BPF_MOV | BPF_K, R_A, 0, 0, 0));
	put(&e, INSN(BPF_ALU64 | BPF_MOV | BPF_K, R_X, 0, 0, 0));
	put_jumbo_check(&e);
	for (i = 0; i < BPF_MEMWORDS; i++)
		if (used & (1u << i))
			put(&e, INSN(BPF_ST | BPF_MEM | BPF_W, BPF_REG_10, 0, MEM_SLOT(i), 0));
	for (i = 0; i < p->len; i++) {
		start[i] = e.n;
		rc = put_insn(&e, t, &p->insns[i], i);
		if (rc == -EOPNOTSUPP) {
			snprintf(err, err_len, "classic BPF instruction %u loads Linux ancillary data "
				 "(offset 0x%x), which a cgroup_skb program has not", i,
				 p->insns[i].k);
			goto fail;
		}
		if (rc) {
			snprintf(err, err_len, "classic BPF instruction %u (code 0x%02x) is not "
				 "valid or not supported", i, p->insns[i].code);
			goto fail;
		}
		if (e.failed)
			goto nomem;
	}
	start[p->len] = e.n;
	if (e.shared_used)
		put_reject(&e, t);
	start[p->len + 1] = e.n;
	if (e.book_used)
		put_book(&e, t);
	if (e.failed)
		goto nomem;
	for (i = 0; i < e.nfix; i++) {
		long off = (long)start[e.fix[i].target] - (long)e.fix[i].at - 1;

		if (off > LONG_JUMP && e.insns[e.fix[i].at].code == (BPF_JMP | BPF_JA)) {
			/* gotol (a 32-bit offset); with room, since the verifier's own rewrites (map
			 * lookups inlined) lengthen the jumps that cross them */
			e.insns[e.fix[i].at].code = BPF_JMP32 | BPF_JA;
			e.insns[e.fix[i].at].imm = (int32_t)off;
			continue;
		}
		if (off < 0 || off > INT16_MAX) {
			snprintf(err, err_len, "a jump of the translated program is too long "
				 "(%ld instructions)", off);
			rc = -E2BIG;
			goto fail;
		}
		e.insns[e.fix[i].at].off = (int16_t)off;
	}
	free(start);
	free(e.fix);
	*insns = e.insns;
	*n = e.n;
	return 0;
nomem:
	snprintf(err, err_len, "out of memory");
	rc = -ENOMEM;
fail:
	free(start);
	free(e.fix);
	free(e.insns);
	return rc ? rc : -EINVAL;
}

void filter_dump_ebpf(const struct bpf_insn *insns, size_t n, FILE *out)
{
	for (size_t i = 0; i < n; i++)
		fprintf(out, "(%04zu) code 0x%02x dst r%u src r%u off %6d imm %d\n", i,
			insns[i].code, insns[i].dst_reg, insns[i].src_reg, insns[i].off,
			insns[i].imm);
}
