/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private shape of the ipcache, shared by its files (design in
 * mg_ipcache.h and docs/ipcache.md):
 *
 *   mg_ipcache.c         lifecycle, staging, commit and RCU publication
 *   mg_ipcache_lookup.c  the readers: lookups in a data-plane copy
 *   mg_ipcache_table.c   the data-plane copies as the writer builds them:
 *                        tables, miss filter, growth, self-check
 *   mg_ipcache_map.c     prefix keys and the control side's record map
 *   mg_ipcache_walk.c    control-plane reads: get, count, walk, memory,
 *                        and the text form of prefixes
 *
 * A data-plane copy (struct mg_ipcache_view) holds, per family and prefix
 * length in use, one open-addressing hash table of masked keys, plus the
 * list of lengths in use, longest first, and a coarse miss filter per
 * family. Tables use linear probing with backward-shift deletion (no
 * tombstones), and identity 0 marks a free slot, since 0 is never a valid
 * identity. There are two copies (left-right): readers use the one
 * `active` names, the writer changes only the idle one.
 *
 * The control side keeps the committed records (prefix -> identity and
 * cluster) in an open-addressing map for get, walk and count, and the
 * staged changes as a log with at most one operation per prefix, indexed
 * by a second map.
 *
 * The hash helpers are static inline here: the lookups, the writer's
 * tables and the self-check must hash alike, and the readers' copies must
 * compile as they did in one file.
 */
#ifndef MG_IPCACHE_PRIV_H
#define MG_IPCACHE_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mg_common.h"
#include "mg_hash.h"
#include "mg_ipcache.h"

#define ID_WORLD 2
#define ID_WORLD_IPV4 9
#define ID_WORLD_IPV6 10

#define V4_LENS 33
#define V6_LENS 129

/*
 * Commit walks the staged ops in log order over tables bigger than the
 * cache; it prefetches the slots of the op this many places ahead, so
 * that the cache misses of consecutive ops overlap.
 */
#define OPS_AHEAD 8

/* Smallest data-plane table; keeps the hash shift below 64. */
#define DTAB_MIN_CAP 16u
/* Grow when the load would exceed 7/10. */
#define LOAD_NUM 7
#define LOAD_DEN 10

/*
 * Miss filter (see mg_ipcache_table.c): IPv4 one bit per /16; IPv6 2^F6_BITS
 * bits indexed by a hash of the first 32 bits, and prefixes shorter than
 * F6_WIDE make the IPv6 filter pass everything (they would cover 2^16
 * /32s or more: a large part of the bitmap, and that many count updates
 * per change). Every prefix therefore sets at most 2^16 bits.
 */
#define F4_BITS 16
#define F6_BITS 19
#define F6_WIDE 16
#define F4_WORDS ((1u << F4_BITS) / 64)
#define F6_WORDS ((1u << F6_BITS) / 64)

#define HASH_C1 0x9e3779b97f4a7c15ull
#define HASH_C2 0xc2b2ae3d27d4eb4full

/* Data-plane entries: the masked key in network order and its identity. */
struct e4 {
	uint32_t key;
	uint32_t id; /* 0 = free slot */
};

struct e6 {
	uint8_t key[16];
	uint32_t id; /* 0 = free slot */
};

/* One exact-match table (one prefix length of one family). */
struct dtab {
	void *e;        /* struct e4[cap] or struct e6[cap]; NULL when unused */
	uint32_t mask;  /* cap - 1 */
	uint32_t shift; /* 64 - log2(cap): the hash keeps the product's top bits */
	uint32_t count;
	uint32_t cap;
};

struct mg_ipcache_view {
	uint32_t world4, world6;
	uint32_t f6_all;         /* an IPv6 prefix shorter than F6_WIDE is present */
	uint8_t n4, n6;          /* lengths in use */
	uint8_t order4[V4_LENS]; /* lengths in use, longest first */
	uint8_t order6[V6_LENS];
	uint32_t mask4[V4_LENS]; /* network-order masks, read as native words */
	uint64_t mask6[V6_LENS][2];
	struct dtab t4[V4_LENS];
	struct dtab t6[V6_LENS];
	/* Miss filters: bit b set iff the bucket's count (struct mg_ipcache) is non-zero. */
	uint64_t f4[F4_WORDS] MG_CACHE_ALIGNED;
	uint64_t f6[F6_WORDS];
} MG_CACHE_ALIGNED;

/* Control-plane key and record. */
struct pkey {
	uint8_t family;
	uint8_t plen;
	uint8_t addr[16];
};

struct rec {
	struct pkey k; /* k.family 0 = free slot */
	uint32_t val;  /* record: identity; staged index: log position */
	uint32_t val2; /* record: cluster id */
};

/* Open-addressing map of struct rec, keyed by struct pkey. */
struct cmap {
	struct rec *r;
	size_t cap; /* power of two */
	size_t count;
};

/*
 * A staged operation: k and the new identity (0 = delete) and cluster,
 * and k's hash (ipc_pkey_hash), so that commit neither hashes it again nor
 * waits for its record's slot (it prefetches the slots a few ops ahead).
 */
struct op {
	struct pkey k;
	uint32_t id;
	uint32_t cluster_id;
	uint32_t h;
};

/* New table arrays for one copy, allocated before a commit publishes anything. */
struct grow {
	void *e4[V4_LENS];
	uint32_t cap4[V4_LENS];
	void *e6[V6_LENS];
	uint32_t cap6[V6_LENS];
};

struct mg_ipcache {
	/* Read by the workers: keep it on its own line. */
	struct mg_ipcache_view *active MG_CACHE_ALIGNED;
	struct mg_ipcache_view *views[2] MG_CACHE_ALIGNED;
	unsigned active_idx;
	struct rte_rcu_qsbr *qsbr;
	uint32_t host_cap_hint; /* first capacity of the /32 and /128 tables */
	struct cmap records;
	struct cmap staged; /* prefix -> index in ops */
	struct op *ops;
	size_t n_ops, cap_ops;
	struct grow *grow; /* [2]: commit scratch, kept to spare 2 KB of stack */
	/*
	 * Miss-filter counts: prefixes overlapping each bucket, and IPv6
	 * prefixes shorter than F6_WIDE. They follow the copy the batch is
	 * applied to first (at prepare); finish, which applies the same batch
	 * to the other copy, sets that copy's bits from them.
	 */
	uint32_t *fcnt4; /* [1 << F4_BITS] */
	uint32_t *fcnt6; /* [1 << F6_BITS] */
	uint32_t fwide6;
	/* Between commit_prepare and commit_finish: the idle copy holds the
	 * batch, the ops log must not change. */
	bool prepared;
};

/*
 * ---- hashing, shared by the readers and the writer ----
 *
 * The data-plane tables keep a hash of their own rather than mg_hash.h's
 * (which the control-side map uses): every packet pays one lookup per
 * prefix length in use, so the key is one 32-bit word (or two 64-bit
 * ones) through one 64-bit multiply whose top bits are the slot (the
 * table's shift), with the bytes swapped so that dense pod ranges spread
 * (below). This form was measured on the pipeline benchmark; it stays
 * until the shared hash is shown to cost the same there.
 */

static inline uint64_t
load64(const uint8_t *p)
{
	uint64_t x;

	memcpy(&x, p, sizeof(x));
	return x;
}

/*
 * Multiplicative hashing keeps the top bits of key * C: it spreads keys
 * that differ in their LOW bits. Addresses are loaded in network order,
 * which on little-endian puts the fastest-changing byte (pods .1, .2, ...)
 * at the top of the word, where it barely moves the product's top bits:
 * dense ranges crowded into long probe runs (5.7 probes per hit at 100k
 * pod addresses). Byte-swapped, consecutive addresses land one slot apart
 * of a well spread sequence (1.0 probes per hit).
 */
static inline uint32_t
hash4(uint32_t key, uint32_t shift)
{
	return (uint32_t)(((uint64_t)__builtin_bswap32(key) * HASH_C1) >> shift);
}

static inline uint32_t
hash6(uint64_t a, uint64_t b, uint32_t shift)
{
	return (uint32_t)(((__builtin_bswap64(a) * HASH_C2 ^ __builtin_bswap64(b)) * HASH_C1) >>
	                  shift);
}

/* Filter bucket of the first 32 bits of an IPv6 address, as a host-order number. */
static inline uint32_t
f6_bucket(uint32_t top)
{
	return (uint32_t)(((uint64_t)top * HASH_C1) >> (64 - F6_BITS));
}

static inline bool
bit_test(const uint64_t *m, uint32_t b)
{
	return (m[b >> 6] >> (b & 63)) & 1;
}

/* ---- prefix keys and the control-side map (mg_ipcache_map.c) ---- */

/* Number of prefix lengths of @family (33, 129), 0 for another family. */
unsigned ipc_family_lens(uint8_t family);

/* Mask @addr to @plen bits into @k. 0 or -EINVAL. */
int ipc_pkey_make(struct pkey *k, uint8_t family, const uint8_t *addr, uint8_t plen);

/* An empty map sized for @entries records. 0 or -ENOMEM. */
int ipc_cmap_init(struct cmap *m, size_t entries);

/*
 * The hash of @k that the maps probe with (the low bits of the slot). The
 * writer computes it once per staged change and passes it to the _h forms,
 * which take it instead of hashing @k again.
 */
uint32_t ipc_pkey_hash(const struct pkey *k);

/* The record of @k, or NULL. */
struct rec *ipc_cmap_find(const struct cmap *m, const struct pkey *k);
struct rec *ipc_cmap_find_h(const struct cmap *m, const struct pkey *k, uint32_t h);

/* Prefetch the first slot that a key of hash @h probes. */
void ipc_cmap_prefetch(const struct cmap *m, uint32_t h);

/* Make room for @entries records in total. 0 or -ENOMEM. */
int ipc_cmap_reserve(struct cmap *m, size_t entries);

/* Insert or overwrite; the caller has reserved room. */
void ipc_cmap_set(struct cmap *m, const struct pkey *k, uint32_t val, uint32_t val2);
void ipc_cmap_set_h(struct cmap *m, const struct pkey *k, uint32_t h, uint32_t val, uint32_t val2);

/* Remove @r, a record of @m. */
void ipc_cmap_del(struct cmap *m, struct rec *r);

/* Empty @m, giving back the room of an unusually big batch. */
void ipc_cmap_clear(struct cmap *m);

/* ---- the data-plane copies, writer side (mg_ipcache_table.c) ---- */

/* Zeroed data-plane memory (2 MB pages for big tables); NULL when out of memory. */
void *ipc_dp_alloc(size_t size);
void ipc_dp_free(void *p);

/* A new empty copy, or NULL. */
struct mg_ipcache_view *ipc_view_create(bool split_world);
void ipc_view_free(struct mg_ipcache_view *v);

/* Bytes of copy @v, its tables included. */
size_t ipc_view_memory(const struct mg_ipcache_view *v);

/*
 * New table arrays for copy @v, big enough for the puts of the batch
 * (@puts4 / @puts6: puts per prefix length). 0 or -ENOMEM (@g empty).
 */
int ipc_grow_prepare(const struct mg_ipcache *ipc, const struct mg_ipcache_view *v,
                     const uint32_t *puts4, const uint32_t *puts6, struct grow *g);
void ipc_grow_free(struct grow *g);

/* Install the arrays of @g into the (idle) copy @v; @g is left empty. */
void ipc_grow_install(struct mg_ipcache_view *v, struct grow *g);

/*
 * Apply the staged batch to the idle copy @v; @first: it is the first
 * copy to get it, which moves the miss-filter counts.
 */
void ipc_view_apply(struct mg_ipcache *ipc, struct mg_ipcache_view *v, bool first);

#endif /* MG_IPCACHE_PRIV_H */
