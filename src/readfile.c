// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* -r: libpcap reads the packets; a bounded pcapng walker beside it reads what libpcap hides. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pcapng.h"
#include "readfile.h"

/* Link types libpcap may report besides its DLT_ names (LINKTYPE_ values it maps). */
#ifndef DLT_IPV4
#define DLT_IPV4 228
#endif
#ifndef DLT_IPV6
#define DLT_IPV6 229
#endif
#ifndef DLT_LINUX_SLL2
#define DLT_LINUX_SLL2 276
#endif
#define SLL_OUTGOING 4 /* PACKET_OUTGOING */

static uint32_t w32(const struct pcapng_walk *w, uint32_t v)
{
	return w->swap ? __builtin_bswap32(v) : v;
}

static uint16_t w16(const struct pcapng_walk *w, uint16_t v)
{
	return w->swap ? __builtin_bswap16(v) : v;
}

/* The walker reads one whole block from memory: w->p, w->n bytes left of it. */
static int rd(struct pcapng_walk *w, void *dst, size_t n)
{
	if (n > w->n)
		return -1;
	memcpy(dst, w->p, n);
	w->p += n;
	w->n -= n;
	return 0;
}

static int skip(struct pcapng_walk *w, size_t n)
{
	if (n > w->n)
		return -1;
	w->p += n;
	w->n -= n;
	return 0;
}

static void walk_fail(struct pcapng_walk *w)
{
	if (!w->active)
		return;
	w->active = 0;
	w->malformed++;
}

/* The options of a block: `left` bytes up to the trailer. Keeps flags, comments, names. */
static int walk_options(struct pcapng_walk *w, size_t left, uint32_t type)
{
	uint16_t h[2], code, len;
	size_t padded, room;
	char desc[64];

	while (left >= 4) {
		if (rd(w, h, 4))
			return -1;
		left -= 4;
		code = w16(w, h[0]);
		len = w16(w, h[1]);
		padded = ((size_t)len + 3) & ~(size_t)3;
		if (code == PCAPNG_OPT_END)
			break;
		if (padded > left)
			return -1;
		left -= padded;
		if (code == PCAPNG_OPT_COMMENT && type != PCAPNG_IDB) {
			/* Several comments: one after another, a line apart, up to the bound. */
			room = PCAPNG_COMMENT_MAX - w->comment_len;
			if (w->comment_len && room)
				w->comment[w->comment_len++] = '\n', room--;
			if (len <= room) {
				if (rd(w, w->comment + w->comment_len, len))
					return -1;
				w->comment_len += len;
				padded -= len;
			}
		} else if (code == PCAPNG_EPB_FLAGS && type != PCAPNG_IDB && len == 4) {
			if (rd(w, &w->epb_flags, 4))
				return -1;
			w->epb_flags = w32(w, w->epb_flags);
			padded -= 4;
		} else if (type == PCAPNG_IDB && w->n_ifaces < PCAPNG_READ_IFACES &&
			   (code == PCAPNG_IF_NAME || code == PCAPNG_IF_DESCRIPTION) &&
			   len < sizeof(desc)) {
			if (rd(w, desc, len))
				return -1;
			desc[len] = '\0';
			padded -= len;
			if (code == PCAPNG_IF_NAME)
				snprintf(w->ifs[w->n_ifaces].name, sizeof(w->ifs[0].name), "%.16s",
					 desc);
			else if (!strncmp(desc, PCAPNG_NETNS_PREFIX,
					  sizeof(PCAPNG_NETNS_PREFIX) - 1))
				w->ifs[w->n_ifaces].netns = (uint32_t)strtoul(
				    desc + sizeof(PCAPNG_NETNS_PREFIX) - 1, NULL, 10);
		}
		if (skip(w, padded))
			return -1;
	}
	return skip(w, left);
}

/* One block whose type and length are read: its body up to the trailer. 1: a packet block. */
static int walk_body(struct pcapng_walk *w, uint32_t type, size_t body)
{
	uint32_t f[5], bom;
	size_t fixed, data;

	w->comment_len = 0;
	w->epb_flags = 0;
	w->iface = 0;
	switch (type) {
	case PCAPNG_SHB:
		if (body < 16 || rd(w, &bom, 4))
			return -1;
		if (bom != PCAPNG_BOM && bom != __builtin_bswap32(PCAPNG_BOM))
			return -1;
		w->swap = bom != PCAPNG_BOM;
		w->n_ifaces = 0; /* a new section: interfaces are numbered again */
		return skip(w, body - 4) ? -1 : 0;
	case PCAPNG_IDB:
		if (body < 8 || skip(w, 8))
			return -1;
		if (w->n_ifaces < PCAPNG_READ_IFACES)
			memset(&w->ifs[w->n_ifaces], 0, sizeof(w->ifs[0]));
		if (walk_options(w, body - 8, type))
			return -1;
		if (w->n_ifaces < PCAPNG_READ_IFACES)
			w->n_ifaces++;
		return 0;
	case PCAPNG_EPB:
	case PCAPNG_OPB:
		fixed = 20;
		if (body < fixed || rd(w, f, fixed))
			return -1;
		w->iface = type == PCAPNG_EPB ? w32(w, f[0]) : w16(w, (uint16_t)f[0]);
		data = ((size_t)w32(w, f[3]) + 3) & ~(size_t)3;
		if (data > body - fixed || skip(w, data))
			return -1;
		return walk_options(w, body - fixed - data, type) ? -1 : 1;
	case PCAPNG_SPB:
		return skip(w, body) ? -1 : 1;
	default:
		return skip(w, body) ? -1 : 0;
	}
}

int pcapng_walk_block(struct pcapng_walk *w, const uint8_t *blk, size_t len)
{
	uint32_t type, blen, bom, trailer;
	int ret;

	if (!w->active)
		return 0;
	w->p = blk;
	w->n = len;
	if (len < 12)
		goto bad;
	memcpy(&type, blk, 4);
	if (type == PCAPNG_SHB) {
		/* The length's order is the new section's, told by the BOM that follows. */
		if (len < 16)
			goto bad;
		memcpy(&bom, blk + 8, 4);
		w->swap = bom != PCAPNG_BOM;
	}
	memcpy(&blen, blk + 4, 4);
	if (w32(w, blen) != len || len % 4 || len > PCAPNG_BLOCK_MAX)
		goto bad;
	skip(w, 8);
	ret = walk_body(w, w32(w, type), len - 12);
	if (ret < 0 || rd(w, &trailer, 4) || w32(w, trailer) != len)
		goto bad;
	w->packet_blocks += ret == 1;
	return ret;
bad:
	walk_fail(w);
	return -1;
}

/* Undo the writer's escapes (\\ and \xHH) of src[0..n) into dst (cap bytes, NUL-terminated). */
static void unescape(char *dst, size_t cap, const char *src, size_t n)
{
	size_t o = 0, i = 0;
	unsigned int v;

	while (i < n && o + 1 < cap) {
		if (src[i] == '\\' && i + 1 < n && src[i + 1] == '\\') {
			dst[o++] = '\\';
			i += 2;
		} else if (src[i] == '\\' && i + 3 < n && src[i + 1] == 'x' &&
			   sscanf(src + i + 2, "%2x", &v) == 1 && v) {
			dst[o++] = (char)v;
			i += 4;
		} else {
			dst[o++] = src[i++];
		}
	}
	dst[o] = '\0';
}

/* A comment's decimal value of at most max: all digits, no sign, no overflow; else 0 (the
 * field reads as unknown, not as some other number). */
static uint64_t num(const char *s, size_t n, uint64_t max)
{
	uint64_t v = 0;

	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (max - (uint64_t)(s[i] - '0')) / 10)
			return 0;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	return v;
}

int pcapng_comment_parse(const char *text, size_t len, struct pkt_event *e, uint8_t *sk_proto,
			 char *host, char *cid)
{
	const char *p = text, *end = text + len, *nl, *colon, *v;
	struct pkt_process *pr = &e->proc;
	int found = 0;
	size_t klen, vlen;

	for (; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		colon = memchr(p, ':', (size_t)(nl - p));
		if (!colon || colon + 1 >= nl || colon[1] != ' ') {
			if (colon && colon + 1 == nl)
				v = nl; /* "key:" with nothing after it */
			else
				continue;
		} else {
			v = colon + 2;
		}
		klen = (size_t)(colon - p);
		vlen = (size_t)(nl - v);
#define KEY(k) (klen == sizeof(k) - 1 && !memcmp(p, k, klen) && ++found)
		if (KEY(PCAPNG_KEY_PID))
			pr->pid = (uint32_t)num(v, vlen, UINT32_MAX);
		else if (KEY(PCAPNG_KEY_TID))
			pr->tid = (uint32_t)num(v, vlen, UINT32_MAX);
		else if (KEY(PCAPNG_KEY_PPID))
			pr->ppid = (uint32_t)num(v, vlen, UINT32_MAX);
		else if (KEY(PCAPNG_KEY_UID))
			pr->uid = (uint32_t)num(v, vlen, UINT32_MAX);
		else if (KEY(PCAPNG_KEY_CGROUP))
			pr->cgroup_id = num(v, vlen, UINT64_MAX);
		else if (KEY(PCAPNG_KEY_SOCK))
			*sk_proto = (uint8_t)num(v, vlen, UINT8_MAX);
		else if (KEY(PCAPNG_KEY_COMM))
			unescape(pr->comm, sizeof(pr->comm), v, vlen);
		else if (KEY(PCAPNG_KEY_HOST))
			unescape(host, 256, v, vlen), pr->hostname = host;
		else if (KEY(PCAPNG_KEY_CONTAINER))
			unescape(cid, 256, v, vlen), pr->container_id = cid;
#undef KEY
		if (nl == end)
			break;
	}
	return found;
}

/*
 * libpcap 1.10 maps a pcapng file's first LINKTYPE_RAW (101) to DLT_RAW (12), then refuses a
 * second interface of the same type ("an interface has a type 101 different from the type of
 * the first interface"): pktrace's files have one interface per (device, netns). So libpcap
 * reads through this filter, which hands blocks on whole with an IDB's 101 written as 12.
 * Each whole block also goes to the walker, as libpcap asks for it: one stream, so pipes work.
 */
struct idb_fix {
	FILE *f;
	int fd;     /* f's descriptor, read through in[] (-1: a stream without one, read by fread) */
	int stream; /* a pipe, FIFO or socket: data comes as the writer sends it */
	int err;    /* errno of a failed read */
	int (*on_wait)(void *ctx); /* called while a read waits for the writer; nonzero: stop */
	void *wait_ctx;
	uint8_t in[65536];
	size_t in_off, in_len;
	uint64_t blocks;      /* pcapng blocks read whole */
	uint64_t block_bytes; /* their bytes */
	uint64_t bytes_in;    /* all bytes read */
	int eof;         /* the input has ended */
	struct pcapng_walk *walk;
	int mode; /* 0: not started, 1: pcapng blocks, 2: bytes passed on as they are */
	int swap;
	uint8_t *blk;
	size_t len, off, cap;
};

static int fix_room(struct idb_fix *x, size_t n)
{
	uint8_t *b;

	if (n <= x->cap)
		return 0;
	b = realloc(x->blk, n);
	if (!b)
		return -1;
	x->blk = b;
	x->cap = n;
	return 0;
}

/* Up to n bytes: what the input has now, with one read() when in[] is empty; 0: end or error. */
static size_t in_some(struct idb_fix *x, uint8_t *dst, size_t n)
{
	struct pollfd pfd = {.fd = x->fd, .events = POLLIN};
	ssize_t r;

	if (x->fd < 0) {
		n = fread(dst, 1, n, x->f);
		x->eof |= !n && feof(x->f);
		x->bytes_in += n;
		return n;
	}
	if (x->in_off == x->in_len) {
		if (x->err)
			return 0;
		/* The writer is slow (a live capture): what came so far goes out while the read
		 * waits, and a signal is seen at once (poll() is never restarted). */
		while (x->stream && x->on_wait && poll(&pfd, 1, 0) == 0) {
			if (x->on_wait(x->wait_ctx)) {
				x->err = EINTR;
				return 0;
			}
			poll(&pfd, 1, 100); /* bounded: a signal just before it is seen */
		}
		r = read(x->fd, x->in, sizeof(x->in));
		if (r < 0)
			x->err = errno;
		x->eof |= r == 0;
		x->in_off = 0;
		x->in_len = r > 0 ? (size_t)r : 0;
	}
	n = n < x->in_len - x->in_off ? n : x->in_len - x->in_off;
	memcpy(dst, x->in + x->in_off, n);
	x->in_off += n;
	x->bytes_in += n;
	return n;
}

/* n bytes, fewer only at the end of the input or on an error. */
static size_t in_all(struct idb_fix *x, uint8_t *dst, size_t n)
{
	size_t done = 0, k;

	while (done < n && (k = in_some(x, dst + done, n - done)))
		done += k;
	return done;
}

/* The next block into blk (or, once anything looks wrong, the next raw bytes). */
static void fix_fill(struct idb_fix *x)
{
	uint32_t type, len, bom;
	uint16_t lt;

	x->off = x->len = 0;
	if (fix_room(x, 65536)) {
		x->err = ENOMEM;
		return;
	}
	if (x->mode == 0) {
		x->len = in_all(x, x->blk, 4);
		memcpy(&type, x->blk, 4);
		x->mode = x->len == 4 && type == PCAPNG_SHB ? 1 : 2;
		if (x->mode == 2)
			return;
		x->walk->active = 1;
		x->len += in_all(x, x->blk + 4, 4);
	} else if (x->mode == 1) {
		x->len = in_all(x, x->blk, 8);
	}
	if (x->mode == 2 || x->len < 8) {
		x->len += in_some(x, x->blk + x->len, 65536 - x->len);
		if (x->mode == 1 && x->len)
			pcapng_walk_block(x->walk, x->blk, 0); /* bytes after a block's end: malformed */
		x->mode = 2;
		return;
	}
	memcpy(&type, x->blk, 4);
	memcpy(&len, x->blk + 4, 4);
	if (type == PCAPNG_SHB) {
		x->len += in_all(x, x->blk + 8, 4);
		memcpy(&bom, x->blk + 8, 4);
		x->swap = bom != PCAPNG_BOM;
	}
	if (x->swap)
		type = __builtin_bswap32(type), len = __builtin_bswap32(len);
	if (len < 12 || len > PCAPNG_BLOCK_MAX || len < x->len || fix_room(x, len)) {
		pcapng_walk_block(x->walk, x->blk, 0);
		x->mode = 2; /* libpcap says what is wrong with it */
		return;
	}
	x->len += in_all(x, x->blk + x->len, len - x->len);
	/* A short block is the file's end (libpcap reports it truncated), or a stop. */
	if (x->len == len) {
		x->blocks++;
		x->block_bytes += len;
		pcapng_walk_block(x->walk, x->blk, len);
	} else if (!x->err) {
		pcapng_walk_block(x->walk, x->blk, 0);
	}
	if (type == PCAPNG_IDB && x->len >= 10) {
		memcpy(&lt, x->blk + 8, 2);
		if ((x->swap ? __builtin_bswap16(lt) : lt) == PCAPNG_LINKTYPE_RAW) {
			lt = DLT_RAW;
			lt = x->swap ? __builtin_bswap16(lt) : lt;
			memcpy(x->blk + 8, &lt, 2);
		}
	}
}

static ssize_t fix_read(void *cookie, char *buf, size_t size)
{
	struct idb_fix *x = cookie;
	size_t done = 0, n;

	/* One block at most per call: the FILE's buffer never holds the next block, so the walker
	 * never runs ahead of the packet libpcap returns (it reads a pcapng block exactly). */
	while (done < size) {
		if (x->off == x->len) {
			if (done)
				break;
			fix_fill(x);
			if (!x->len) {
				if (!done && (x->err || (x->fd < 0 && ferror(x->f))))
					return -1; /* libpcap gives the read error */
				break;
			}
		}
		n = x->len - x->off < size - done ? x->len - x->off : size - done;
		memcpy(buf + done, x->blk + x->off, n);
		x->off += n;
		done += n;
	}
	return (ssize_t)done;
}

static int fix_close(void *cookie)
{
	struct idb_fix *x = cookie;
	int ret = fclose(x->f);

	free(x->blk);
	free(x);
	return ret;
}

/* f behind the IDB filter, blocks to w; f is closed with the result (or now, on failure). */
static FILE *idb_fix_open(FILE *f, struct pcapng_walk *w, struct idb_fix **fix)
{
	struct stat st;
	cookie_io_functions_t io = {.read = fix_read, .close = fix_close};
	struct idb_fix *x = calloc(1, sizeof(*x));
	FILE *r = x ? fopencookie(x, "rb", io) : NULL;

	if (!r) {
		free(x);
		fclose(f);
		return NULL;
	}
	/* Buffered (unbuffered, glibc calls a cookie stream once per byte); fix_read never gives
	 * more than the rest of one block. */
	setvbuf(r, NULL, _IOFBF, 65536);
	x->f = f;
	x->fd = fileno(f);
	x->stream = x->fd >= 0 && !fstat(x->fd, &st) && !S_ISREG(st.st_mode);
	x->walk = w;
	*fix = x;
	return r;
}

static int link_supported(int dlt)
{
	switch (dlt) {
	case DLT_RAW:
	case DLT_IPV4:
	case DLT_IPV6:
	case DLT_EN10MB:
	case DLT_LINUX_SLL:
	case DLT_LINUX_SLL2:
	case DLT_NULL:
	case DLT_LOOP:
		return 1;
	}
	return 0;
}

int readfile_fopen(struct readfile *rf, FILE *fp)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	pcap_t *p;

	rf->pcap = NULL;
	memset(&rf->st, 0, sizeof(rf->st));
	rf->err[0] = '\0';
	rf->walk = calloc(1, sizeof(*rf->walk));
	fp = rf->walk ? idb_fix_open(fp, rf->walk, &rf->fix) : (fclose(fp), NULL);
	if (!fp) {
		snprintf(rf->err, sizeof(rf->err), "out of memory");
		return -ENOMEM;
	}
	p = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_NANO, errbuf);
	if (!p && rf->fix->blocks == 1 && rf->fix->eof && !rf->fix->err &&
	    rf->fix->bytes_in == rf->fix->block_bytes) {
		/* A section header and nothing else (pktrace -w before its first packet, whose
		 * interface comes with it): an empty capture, which libpcap refuses. */
		fclose(fp);
		rf->fix = NULL;
		rf->empty = 1;
		return 0;
	}
	if (!p) {
		snprintf(rf->err, sizeof(rf->err), "not a pcap or pcapng file libpcap can read: %s",
			 errbuf);
		fclose(fp);
		rf->fix = NULL;
		return -EINVAL;
	}
	rf->pcap = p;
	rf->dlt = pcap_datalink(p);
	if (!link_supported(rf->dlt)) {
		snprintf(rf->err, sizeof(rf->err),
			 "link type %s (%d) is not one pktrace decodes "
			 "(raw IP, Ethernet, Linux cooked v1/v2, BSD loopback)",
			 pcap_datalink_val_to_name(rf->dlt) ? pcap_datalink_val_to_name(rf->dlt)
							    : "unknown",
			 rf->dlt);
		return -EINVAL;
	}
	return 0;
}

/* A file, a pipe or a FIFO: read once, as it comes (so -c and a stop end it early). */
int readfile_open(struct readfile *rf, const char *path)
{
	struct stat st;
	FILE *f;
	int fd, err;

	memset(rf, 0, sizeof(*rf));
	fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : dup(STDIN_FILENO);
	if (fd >= 0 && !fstat(fd, &st) && S_ISDIR(st.st_mode)) {
		close(fd);
		fd = -1;
		errno = EISDIR;
	}
	f = fd >= 0 ? fdopen(fd, "rb") : NULL;
	if (!f) {
		err = errno ? errno : EIO;
		snprintf(rf->err, sizeof(rf->err), "cannot open: %s", strerror(err));
		if (fd >= 0)
			close(fd);
		return -err;
	}
	return readfile_fopen(rf, f);
}

/* Where the IP header starts in a frame of the file's link type; -1: not IP, or too short. */
static int link_strip(const struct readfile *rf, const uint8_t *d, size_t n, int *egress)
{
	size_t off, i;
	uint16_t type;

	switch (rf->dlt) {
	case DLT_RAW:
	case DLT_IPV4:
	case DLT_IPV6:
		return 0;
	case DLT_NULL:
	case DLT_LOOP:
		/* The address family's number varies by system; the IP version nibble tells. */
		return n >= 4 ? 4 : -1;
	case DLT_LINUX_SLL:
		if (n < 16)
			return -1;
		*egress = (d[0] << 8 | d[1]) == SLL_OUTGOING;
		type = (uint16_t)(d[14] << 8 | d[15]);
		return type == 0x0800 || type == 0x86dd ? 16 : -1;
	case DLT_LINUX_SLL2:
		if (n < 20)
			return -1;
		*egress = d[10] == SLL_OUTGOING;
		type = (uint16_t)(d[0] << 8 | d[1]);
		return type == 0x0800 || type == 0x86dd ? 20 : -1;
	case DLT_EN10MB:
		off = 12;
		/* Up to three VLAN tags (802.1Q, 802.1ad, and 0x9100 of older QinQ) before the
		 * type. */
		for (i = 0; i < 4; i++) {
			if (n < off + 2)
				return -1;
			type = (uint16_t)(d[off] << 8 | d[off + 1]);
			if (type != 0x8100 && type != 0x88a8 && type != 0x9100)
				break;
			off += 4;
		}
		return type == 0x0800 || type == 0x86dd ? (int)off + 2 : -1;
	}
	return -1;
}

/* The IP packet's own length, from its header's length field (n bytes captured from the IP
 * header on); 0: not known (too short, or 0 as TSO on the capturing host or an IPv6 jumbogram
 * writes it). */
static uint32_t ip_length(const uint8_t *p, size_t n)
{
	if (n >= 4 && p[0] >> 4 == 4)
		return (uint32_t)(p[2] << 8 | p[3]);
	if (n >= 6 && p[0] >> 4 == 6 && (p[4] | p[5]))
		return 40u + (uint32_t)(p[4] << 8 | p[5]);
	return 0;
}

int readfile_next(struct readfile *rf, struct pkt_event *e, struct pkt_bytes *b)
{
	struct pcap_pkthdr *ph;
	const u_char *d;
	struct pcapng_walk *w = rf->walk;
	int ret, off, egress, has_meta;
	uint32_t cap = 0, wire = 0, ip;
	uint8_t sk_proto;

	if (rf->empty)
		return 0;
	for (;;) {
		ret = pcap_next_ex(rf->pcap, &ph, &d);
		if (ret == PCAP_ERROR_BREAK)
			return 0;
		if (ret != 1) {
			snprintf(rf->err, sizeof(rf->err), "%s", pcap_geterr(rf->pcap));
			return -EIO;
		}
		rf->st.packets++;
		/* The walker has just read this packet's block: else it gave up on the file. */
		has_meta = w->active && w->packet_blocks == rf->st.packets;
		if (w->active && !has_meta)
			walk_fail(w);
		egress = 0;
		off = link_strip(rf, d, ph->caplen, &egress);
		if (off < 0) {
			rf->st.link_errors++;
			continue;
		}
		cap = ph->caplen - (uint32_t)off;
		wire = ph->len > (bpf_u_int32)off ? ph->len - (uint32_t)off : 0;
		/* A frame's trailer (Ethernet padding to 60 bytes, a frame check sequence) is not
		 * the packet's: the IP length ends it, as the kernel's length does live. */
		ip = off ? ip_length(d + off, cap) : 0;
		if (ip && ip < wire) {
			wire = ip;
			cap = cap < ip ? cap : ip;
		}
		/* Only a packet the snapshot length cut may have its TCP header cut. */
		if ((cap < wire ? decode_headers_snap : decode_headers)(d + off, cap, &e->hdr) < 0) {
			rf->st.decode_errors++;
			continue;
		}
		break;
	}
	memset(&e->proc, 0, sizeof(e->proc));
	e->proc.hostname = "";
	e->proc.container_id = "";
	e->event = EVENT_NET_PACKET_TCP;
	e->timestamp_ns = (uint64_t)ph->ts.tv_sec * 1000000000ULL + (uint64_t)ph->ts.tv_usec;
	e->packet_len = wire;
	e->ifname[0] = '\0';
	e->egress = egress;
	sk_proto = e->hdr.protocol;
	b->data = d + off;
	b->len = cap;
	b->netns = 0;
	b->snap = NULL;
	b->snap_len = 0;
	if (has_meta) {
		if (w->iface < w->n_ifaces) {
			snprintf(e->ifname, sizeof(e->ifname), "%s", w->ifs[w->iface].name);
			b->netns = w->ifs[w->iface].netns;
		}
		if (w->epb_flags & 3)
			e->egress = (w->epb_flags & 3) == PCAPNG_EPB_OUTBOUND;
	}
	if (!has_meta ||
	    !pcapng_comment_parse(w->comment, w->comment_len, e, &sk_proto, rf->host, rf->cid))
		rf->st.no_comment++;
	e->sk_proto = sk_proto;
	rf->st.events++;
	return 1;
}

void readfile_on_wait(struct readfile *rf, int (*fn)(void *ctx), void *ctx)
{
	if (rf->fix) {
		rf->fix->on_wait = fn;
		rf->fix->wait_ctx = ctx;
	}
}

void readfile_close(struct readfile *rf)
{
	if (rf->pcap)
		pcap_close(rf->pcap);
	free(rf->walk);
	rf->pcap = NULL;
	rf->walk = NULL;
	rf->fix = NULL;
}
