/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The ipcache: prefix -> identity with longest-prefix match, read by the
 * workers without locks while the control thread changes it (design in
 * mg_ipcache.h and docs/ipcache.md).
 *
 * A data-plane copy (struct mg_ipcache_view) holds, per family and prefix
 * length in use, one open-addressing hash table of masked keys, plus the
 * list of lengths in use, longest first. Lookups mask the address with each
 * length in turn and probe that length's table; host routes cost one probe.
 * Tables use linear probing with backward-shift deletion (no tombstones),
 * and identity 0 marks a free slot, since 0 is never a valid identity.
 *
 * Left-right: there are two copies and readers use the one `active` names
 * (or the one a caller of the split commit published itself). The writer
 * changes only the idle copy, so it may grow, rehash and free tables
 * freely: no reader can be on it. Commit = prepare (reserve room in both
 * copies, the only step that can fail; apply the batch to the idle copy)
 * + finish (make it active, wait a grace period, apply the batch to the
 * old copy, update the records).
 *
 * Misses. Most addresses a gateway at a cluster's edge sees are in no
 * prefix at all (world), and a miss searches every length. So each copy
 * also holds a coarse filter per family that can only say "no prefix of
 * this copy can contain the address": IPv4, one bit per /16; IPv6, one
 * bit per hash of the first 32 bits (2^19 bits), plus an "everything
 * passes" flag while a prefix shorter than /16 is present. A prefix sets
 * the bits of every /16 (IPv4) or /32 (IPv6) it overlaps. A clear bit
 * answers world at once; a set one sends the lookup down the usual walk,
 * so a stale SET bit costs time, never a wrong answer, while a bit cleared
 * too early would be a wrong answer. Control-side counts per bucket (one
 * array per family, shared by both copies) make deletions exact: a bit is
 * set iff its count is non-zero. Filter bits change only together with
 * the copy's tables (view_apply, same ops in the same order), so readers
 * see them change with the batch: never, as the copy is idle then.
 *
 * Staged changes are kept as a log with at most one operation per prefix
 * (a second change to a staged prefix rewrites its operation), indexed by
 * a small hash, so the order of a batch never matters and commit work is
 * proportional to the number of distinct prefixes changed. A control-plane
 * record map (prefix -> identity and cluster) holds the committed state for
 * get, walk and count.
 */
#include <arpa/inet.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <rte_rcu_qsbr.h>

#include "mg_ipcache.h"

#define ID_WORLD 2
#define ID_WORLD_IPV4 9
#define ID_WORLD_IPV6 10

#define V4_LENS 33
#define V6_LENS 129

/* Smallest data-plane table; keeps the hash shift below 64. */
#define DTAB_MIN_CAP 16u
/* Grow when the load would exceed 7/10. */
#define LOAD_NUM 7
#define LOAD_DEN 10
/* Bulk lookups prefetch the host-route buckets of this many addresses at once. */
#define BULK_GROUP 16u

/*
 * Miss filter (see the top comment): IPv4 one bit per /16; IPv6 2^F6_BITS
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

/* Data-plane allocations from this size up go to (transparent) huge pages. */
#define DP_HUGE (2u << 20)

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

/* A staged operation: k and the new identity (0 = delete) and cluster. */
struct op {
	struct pkey k;
	uint32_t id;
	uint32_t cluster_id;
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

/* ---- memory for data-plane tables (one place to switch to rte_malloc) ---- */

static void *
dp_alloc(size_t size)
{
	void *p = NULL;

	/*
	 * Big tables are 2 MB aligned and marked for transparent huge pages:
	 * a lookup into a table larger than the cache should not also miss
	 * the TLB (production moves this to rte_malloc's hugepages).
	 */
	if (size >= DP_HUGE) {
		size = (size + DP_HUGE - 1) & ~(DP_HUGE - 1);
		if (posix_memalign(&p, DP_HUGE, size) != 0)
			return NULL;
		madvise(p, size, MADV_HUGEPAGE);
	} else if (posix_memalign(&p, MG_CACHE_LINE, size) != 0) {
		return NULL;
	}
	memset(p, 0, size);
	return p;
}

static void
dp_free(void *p)
{
	free(p);
}

/* ---- hashing and keys ---- */

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

static size_t
pkey_hash(const struct pkey *k, size_t cap)
{
	uint64_t a = load64(k->addr), b = load64(k->addr + 8);
	uint64_t x = a ^ (b * HASH_C2) ^ ((uint64_t)k->plen << 8 | k->family);

	/* A full avalanche (the finaliser of MurmurHash3): addresses that differ
	 * in a few bytes only (pod ranges) must not crowd into runs of slots. */
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return (size_t)x & (cap - 1);
}

static bool
pkey_eq(const struct pkey *a, const struct pkey *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

static unsigned
family_lens(uint8_t family)
{
	return family == AF_INET ? V4_LENS : family == AF_INET6 ? V6_LENS : 0;
}

/* Mask @addr to @plen bits into @k. */
static int
pkey_make(struct pkey *k, uint8_t family, const uint8_t *addr, uint8_t plen)
{
	unsigned bytes = family == AF_INET ? 4 : 16;

	if (family_lens(family) == 0 || plen >= family_lens(family) || addr == NULL)
		return -EINVAL;
	memset(k, 0, sizeof(*k));
	k->family = family;
	k->plen = plen;
	memcpy(k->addr, addr, bytes);
	for (unsigned i = 0; i < bytes; i++) {
		unsigned bits = plen > i * 8 ? plen - i * 8 : 0;

		if (bits < 8)
			k->addr[i] &= (uint8_t)(0xff00u >> bits);
	}
	return 0;
}

/* ---- control-plane maps ---- */

static int
cmap_init(struct cmap *m, size_t entries)
{
	size_t cap = 16;

	while (cap * LOAD_NUM < entries * LOAD_DEN)
		cap *= 2;
	m->r = calloc(cap, sizeof(*m->r));
	if (m->r == NULL)
		return -ENOMEM;
	m->cap = cap;
	m->count = 0;
	return 0;
}

static struct rec *
cmap_find(const struct cmap *m, const struct pkey *k)
{
	size_t mask = m->cap - 1;

	for (size_t i = pkey_hash(k, m->cap);; i = (i + 1) & mask) {
		if (m->r[i].k.family == 0)
			return NULL;
		if (pkey_eq(&m->r[i].k, k))
			return &m->r[i];
	}
}

/* Make room for @entries records in total. */
static int
cmap_reserve(struct cmap *m, size_t entries)
{
	size_t cap = m->cap;
	struct rec *nr;

	while (cap * LOAD_NUM < entries * LOAD_DEN)
		cap *= 2;
	if (cap == m->cap)
		return 0;
	nr = calloc(cap, sizeof(*nr));
	if (nr == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		size_t j;

		if (m->r[i].k.family == 0)
			continue;
		for (j = pkey_hash(&m->r[i].k, cap); nr[j].k.family != 0; j = (j + 1) & (cap - 1))
			;
		nr[j] = m->r[i];
	}
	free(m->r);
	m->r = nr;
	m->cap = cap;
	return 0;
}

/* Insert or overwrite; the caller has reserved room. */
static void
cmap_set(struct cmap *m, const struct pkey *k, uint32_t val, uint32_t val2)
{
	size_t mask = m->cap - 1;
	size_t i;

	for (i = pkey_hash(k, m->cap); m->r[i].k.family != 0; i = (i + 1) & mask)
		if (pkey_eq(&m->r[i].k, k))
			break;
	if (m->r[i].k.family == 0)
		m->count++;
	m->r[i].k = *k;
	m->r[i].val = val;
	m->r[i].val2 = val2;
}

static void
cmap_del(struct cmap *m, struct rec *r)
{
	size_t mask = m->cap - 1;
	size_t hole = (size_t)(r - m->r);

	/* Backward shift: pull back every entry of the run that may move into the hole. */
	for (size_t i = (hole + 1) & mask; m->r[i].k.family != 0; i = (i + 1) & mask) {
		size_t home = pkey_hash(&m->r[i].k, m->cap);

		if (((i - home) & mask) >= ((i - hole) & mask)) {
			m->r[hole] = m->r[i];
			hole = i;
		}
	}
	memset(&m->r[hole], 0, sizeof(m->r[hole]));
	m->count--;
}

/*
 * Empty @m. Clearing costs the capacity, not the count, so a map that a
 * big batch blew up is replaced by a small one (when that allocation
 * fails the big one is simply wiped).
 */
static void
cmap_clear(struct cmap *m)
{
	if (m->cap > 1024 && m->count * 8 < m->cap) {
		struct rec *small = calloc(1024, sizeof(*small));

		if (small != NULL) {
			free(m->r);
			m->r = small;
			m->cap = 1024;
			m->count = 0;
			return;
		}
	}
	if (m->count != 0)
		memset(m->r, 0, m->cap * sizeof(*m->r));
	m->count = 0;
}

/* ---- data-plane tables (writer side, idle copy only) ---- */

static size_t
dtab_esize(uint8_t family)
{
	return family == AF_INET ? sizeof(struct e4) : sizeof(struct e6);
}

static struct dtab *
view_tab(struct mg_ipcache_view *v, uint8_t family, uint8_t plen)
{
	return family == AF_INET ? &v->t4[plen] : &v->t6[plen];
}

static uint32_t
dtab_home(const struct dtab *t, uint8_t family, const void *e)
{
	if (family == AF_INET)
		return hash4(((const struct e4 *)e)->key, t->shift);
	return hash6(load64(((const struct e6 *)e)->key), load64(((const struct e6 *)e)->key + 8),
	             t->shift);
}

static uint32_t
dtab_home_key(const struct dtab *t, const struct pkey *k)
{
	if (k->family == AF_INET) {
		uint32_t key;

		memcpy(&key, k->addr, 4);
		return hash4(key, t->shift);
	}
	return hash6(load64(k->addr), load64(k->addr + 8), t->shift);
}

static void *
dtab_slot(const struct dtab *t, uint8_t family, uint32_t i)
{
	return (char *)t->e + (size_t)i * dtab_esize(family);
}

static uint32_t
slot_id(uint8_t family, const void *e)
{
	return family == AF_INET ? ((const struct e4 *)e)->id : ((const struct e6 *)e)->id;
}

static bool
slot_key_eq(const struct pkey *k, const void *e)
{
	if (k->family == AF_INET)
		return memcmp(k->addr, &((const struct e4 *)e)->key, 4) == 0;
	return memcmp(k->addr, ((const struct e6 *)e)->key, 16) == 0;
}

/*
 * Capacity @t needs to hold @entries at the target load (@first_cap when
 * it does not exist yet); 0 when its present capacity will do or the
 * table would exceed 2^31 slots (the caller tells them apart by t->cap).
 */
static uint32_t
dtab_target_cap(const struct dtab *t, size_t entries, uint32_t first_cap)
{
	uint32_t cap = t->e != NULL ? t->cap : first_cap;

	while ((size_t)cap * LOAD_NUM < entries * LOAD_DEN) {
		if (cap >= (1u << 31))
			return 0;
		cap *= 2;
	}
	return t->e != NULL && cap == t->cap ? 0 : cap;
}

/* Move @t's entries into the zeroed array @ne of @cap slots, which @t then owns. */
static void
dtab_install(struct dtab *t, uint8_t family, void *ne, uint32_t cap)
{
	size_t esize = dtab_esize(family);
	struct dtab nt;

	nt.e = ne;
	nt.cap = cap;
	nt.mask = cap - 1;
	nt.shift = 64 - (uint32_t)__builtin_ctz(cap);
	nt.count = t->e != NULL ? t->count : 0;
	for (uint32_t i = 0; t->e != NULL && i < t->cap; i++) {
		const void *src = dtab_slot(t, family, i);
		uint32_t j;

		if (slot_id(family, src) == 0)
			continue;
		for (j = dtab_home(&nt, family, src);
		     slot_id(family, dtab_slot(&nt, family, j)) != 0; j = (j + 1) & nt.mask)
			;
		memcpy(dtab_slot(&nt, family, j), src, esize);
	}
	dp_free(t->e);
	*t = nt;
}

/*
 * Insert, replace (@id != 0) or remove (@id == 0) @k; room is reserved.
 * Returns how the set of keys changed: +1 inserted, -1 removed, 0 neither.
 */
static int
dtab_apply(struct dtab *t, const struct pkey *k, uint32_t id)
{
	uint8_t family = k->family;
	uint32_t i;
	void *e;

	if (t->e == NULL)
		return 0; /* a delete of a prefix whose length has no table */
	for (i = dtab_home_key(t, k);; i = (i + 1) & t->mask) {
		e = dtab_slot(t, family, i);
		if (slot_id(family, e) == 0 || slot_key_eq(k, e))
			break;
	}
	if (id != 0) {
		int added = slot_id(family, e) == 0;

		t->count += (uint32_t)added;
		if (family == AF_INET) {
			memcpy(&((struct e4 *)e)->key, k->addr, 4);
			((struct e4 *)e)->id = id;
		} else {
			memcpy(((struct e6 *)e)->key, k->addr, 16);
			((struct e6 *)e)->id = id;
		}
		return added;
	}
	if (slot_id(family, e) == 0)
		return 0;
	/* Backward-shift deletion, as in cmap_del. */
	t->count--;
	{
		uint32_t hole = i;
		size_t esize = dtab_esize(family);

		for (i = (hole + 1) & t->mask; slot_id(family, dtab_slot(t, family, i)) != 0;
		     i = (i + 1) & t->mask) {
			uint32_t home = dtab_home(t, family, dtab_slot(t, family, i));

			if (((i - home) & t->mask) >= ((i - hole) & t->mask)) {
				memcpy(dtab_slot(t, family, hole), dtab_slot(t, family, i), esize);
				hole = i;
			}
		}
		memset(dtab_slot(t, family, hole), 0, esize);
	}
	return -1;
}

/* ---- miss filter (writer side) ---- */

/*
 * The buckets prefix @k overlaps: @return n, and *first, such that they
 * are the buckets of the n consecutive IPv4 /16s or IPv6 /32s from
 * *first on (numbers in host order). IPv6 prefixes shorter than F6_WIDE
 * return 0: they set the "everything passes" flag instead.
 */
static uint32_t
filt_range(const struct pkey *k, uint32_t *first)
{
	uint32_t top = (uint32_t)k->addr[0] << 24 | (uint32_t)k->addr[1] << 16 |
	               (uint32_t)k->addr[2] << 8 | k->addr[3];

	if (k->family == AF_INET) {
		*first = top >> 16; /* host bits are zero: the first /16 covered */
		return k->plen >= 16 ? 1 : 1u << (16 - k->plen);
	}
	*first = top;
	if (k->plen < F6_WIDE)
		return 0;
	return k->plen >= 32 ? 1 : 1u << (32 - k->plen);
}

static uint32_t
filt_bucket(uint8_t family, uint32_t x)
{
	return family == AF_INET ? x : f6_bucket(x);
}

/*
 * Prefix @k entered (@delta +1) or left (-1) copy @v's tables: bring @v's
 * filter up to date. @count: also move the counts; true for the first
 * copy a batch is applied to (prepare), false for the second (finish),
 * whose bits are then set from counts that already hold the batch's
 * outcome, so both copies end with the same bits.
 */
static void
filt_apply(struct mg_ipcache *ipc, struct mg_ipcache_view *v, const struct pkey *k, int delta,
           bool count)
{
	uint32_t first, n = filt_range(k, &first);
	uint32_t *cnt = k->family == AF_INET ? ipc->fcnt4 : ipc->fcnt6;
	uint64_t *bits = k->family == AF_INET ? v->f4 : v->f6;

	if (k->family == AF_INET6 && n == 0) {
		if (count)
			ipc->fwide6 += (uint32_t)delta;
		v->f6_all = ipc->fwide6 != 0;
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint32_t b = filt_bucket(k->family, first + i);
		uint64_t bit = 1ull << (b & 63);

		if (count)
			cnt[b] += (uint32_t)delta;
		if (cnt[b] != 0)
			bits[b >> 6] |= bit;
		else
			bits[b >> 6] &= ~bit;
	}
}

/* Rebuild the lists of lengths in use, freeing tables that became empty. */
static void
view_refresh(struct mg_ipcache_view *v)
{
	uint8_t n = 0;

	for (int l = V4_LENS - 1; l >= 0; l--) {
		struct dtab *t = &v->t4[l];

		if (t->e != NULL && t->count == 0) {
			dp_free(t->e);
			memset(t, 0, sizeof(*t));
		}
		if (t->e != NULL)
			v->order4[n++] = (uint8_t)l;
	}
	v->n4 = n;
	n = 0;
	for (int l = V6_LENS - 1; l >= 0; l--) {
		struct dtab *t = &v->t6[l];

		if (t->e != NULL && t->count == 0) {
			dp_free(t->e);
			memset(t, 0, sizeof(*t));
		}
		if (t->e != NULL)
			v->order6[n++] = (uint8_t)l;
	}
	v->n6 = n;
}

static struct mg_ipcache_view *
view_create(bool split_world)
{
	struct mg_ipcache_view *v = dp_alloc(sizeof(*v));

	if (v == NULL)
		return NULL;
	v->world4 = split_world ? ID_WORLD_IPV4 : ID_WORLD;
	v->world6 = split_world ? ID_WORLD_IPV6 : ID_WORLD;
	for (unsigned l = 0; l < V4_LENS; l++) {
		uint8_t m[4] = {0};

		for (unsigned b = 0; b < l; b++)
			m[b / 8] |= (uint8_t)(0x80u >> (b % 8));
		memcpy(&v->mask4[l], m, 4);
	}
	for (unsigned l = 0; l < V6_LENS; l++) {
		uint8_t m[16] = {0};

		for (unsigned b = 0; b < l; b++)
			m[b / 8] |= (uint8_t)(0x80u >> (b % 8));
		memcpy(v->mask6[l], m, 16);
	}
	return v;
}

static void
view_free(struct mg_ipcache_view *v)
{
	if (v == NULL)
		return;
	for (unsigned l = 0; l < V4_LENS; l++)
		dp_free(v->t4[l].e);
	for (unsigned l = 0; l < V6_LENS; l++)
		dp_free(v->t6[l].e);
	dp_free(v);
}

static size_t
view_memory(const struct mg_ipcache_view *v)
{
	size_t bytes = sizeof(*v);

	for (unsigned l = 0; l < V4_LENS; l++)
		bytes += (size_t)v->t4[l].cap * sizeof(struct e4);
	for (unsigned l = 0; l < V6_LENS; l++)
		bytes += (size_t)v->t6[l].cap * sizeof(struct e6);
	return bytes;
}

/* ---- lifecycle ---- */

struct mg_ipcache *
mg_ipcache_create(const struct mg_ipcache_params *p)
{
	struct mg_ipcache_params defaults = {0, false, NULL};
	struct mg_ipcache *ipc;
	uint32_t cap = DTAB_MIN_CAP;

	if (p == NULL)
		p = &defaults;
	ipc = dp_alloc(sizeof(*ipc));
	if (ipc == NULL)
		goto err;
	ipc->qsbr = p->qsbr;
	/* Host routes dominate: start those tables big enough for half the hint each. */
	while ((uint64_t)cap * LOAD_NUM < (uint64_t)(p->entries_hint / 2) * LOAD_DEN &&
	       cap < (1u << 30))
		cap *= 2;
	ipc->host_cap_hint = cap;
	ipc->views[0] = view_create(p->split_world);
	ipc->views[1] = view_create(p->split_world);
	if (ipc->views[0] == NULL || ipc->views[1] == NULL)
		goto err;
	if (cmap_init(&ipc->records, p->entries_hint) < 0 || cmap_init(&ipc->staged, 0) < 0)
		goto err;
	ipc->grow = calloc(2, sizeof(*ipc->grow));
	ipc->fcnt4 = calloc(1u << F4_BITS, sizeof(*ipc->fcnt4));
	ipc->fcnt6 = calloc(1u << F6_BITS, sizeof(*ipc->fcnt6));
	if (ipc->grow == NULL || ipc->fcnt4 == NULL || ipc->fcnt6 == NULL)
		goto err;
	ipc->active_idx = 0;
	__atomic_store_n(&ipc->active, ipc->views[0], __ATOMIC_RELEASE);
	return ipc;
err:
	mg_ipcache_free(ipc);
	errno = ENOMEM;
	return NULL;
}

void
mg_ipcache_free(struct mg_ipcache *ipc)
{
	if (ipc == NULL)
		return;
	view_free(ipc->views[0]);
	view_free(ipc->views[1]);
	free(ipc->records.r);
	free(ipc->staged.r);
	free(ipc->ops);
	free(ipc->grow);
	free(ipc->fcnt4);
	free(ipc->fcnt6);
	dp_free(ipc);
}

/* ---- staging ---- */

static int
ops_push(struct mg_ipcache *ipc, const struct pkey *k, uint32_t id, uint32_t cluster_id)
{
	if (ipc->n_ops == ipc->cap_ops) {
		size_t ncap = ipc->cap_ops ? ipc->cap_ops * 2 : 64;
		struct op *n = realloc(ipc->ops, ncap * sizeof(*n));

		if (n == NULL)
			return -ENOMEM;
		ipc->ops = n;
		ipc->cap_ops = ncap;
	}
	if (cmap_reserve(&ipc->staged, ipc->staged.count + 1) < 0)
		return -ENOMEM;
	ipc->ops[ipc->n_ops].k = *k;
	ipc->ops[ipc->n_ops].id = id;
	ipc->ops[ipc->n_ops].cluster_id = cluster_id;
	cmap_set(&ipc->staged, k, (uint32_t)ipc->n_ops, 0);
	ipc->n_ops++;
	return 0;
}

int
mg_ipcache_put(struct mg_ipcache *ipc, const struct mg_ipcache_entry *e)
{
	struct rec *s, *r;
	struct pkey k;

	if (ipc->prepared)
		return mg_errno_set(EBUSY);
	if (e == NULL || e->identity == 0 || pkey_make(&k, e->family, e->addr, e->plen) < 0)
		return mg_errno_set(EINVAL);
	s = cmap_find(&ipc->staged, &k);
	if (s != NULL) {
		ipc->ops[s->val].id = e->identity;
		ipc->ops[s->val].cluster_id = e->cluster_id;
		return 0;
	}
	r = cmap_find(&ipc->records, &k);
	if (r != NULL && r->val == e->identity && r->val2 == e->cluster_id)
		return 0; /* already committed as asked: nothing to publish */
	if (ops_push(ipc, &k, e->identity, e->cluster_id) < 0)
		return mg_errno_set(ENOMEM);
	return 0;
}

int
mg_ipcache_del(struct mg_ipcache *ipc, uint8_t family, const uint8_t *addr, uint8_t plen)
{
	struct rec *s;
	struct pkey k;

	if (ipc->prepared)
		return mg_errno_set(EBUSY);
	if (pkey_make(&k, family, addr, plen) < 0)
		return mg_errno_set(EINVAL);
	s = cmap_find(&ipc->staged, &k);
	if (s != NULL) {
		struct op *o = &ipc->ops[s->val];

		if (o->id == 0)
			return mg_errno_set(ENOENT); /* already staged for removal */
		if (cmap_find(&ipc->records, &k) != NULL) {
			o->id = 0; /* committed: the staged put becomes a removal */
			return 0;
		}
		/* Only staged: forget the put. Move the last op into its place. */
		{
			size_t at = s->val;

			cmap_del(&ipc->staged, s);
			ipc->n_ops--;
			if (at != ipc->n_ops) {
				ipc->ops[at] = ipc->ops[ipc->n_ops];
				cmap_find(&ipc->staged, &ipc->ops[at].k)->val = (uint32_t)at;
			}
		}
		return 0;
	}
	if (cmap_find(&ipc->records, &k) == NULL)
		return mg_errno_set(ENOENT);
	if (ops_push(ipc, &k, 0, 0) < 0)
		return mg_errno_set(ENOMEM);
	return 0;
}

void
mg_ipcache_discard(struct mg_ipcache *ipc)
{
	/* A prepared batch is already in the idle copy: only finish may end it. */
	if (ipc->prepared)
		return;
	ipc->n_ops = 0;
	cmap_clear(&ipc->staged);
}

size_t
mg_ipcache_pending(const struct mg_ipcache *ipc)
{
	return ipc->n_ops;
}

/* ---- commit ---- */

/*
 * New table arrays for one copy, big enough for the puts of the batch.
 * Only the allocation happens here; dtab_install() moves the entries in
 * later, when the copy is idle.
 */
static void
grow_free(struct grow *g)
{
	for (unsigned l = 0; l < V4_LENS; l++)
		dp_free(g->e4[l]);
	for (unsigned l = 0; l < V6_LENS; l++)
		dp_free(g->e6[l]);
	memset(g, 0, sizeof(*g));
}

static int
grow_prepare(const struct mg_ipcache *ipc, const struct mg_ipcache_view *v, const uint32_t *puts4,
             const uint32_t *puts6, struct grow *g)
{
	memset(g, 0, sizeof(*g));
	for (unsigned l = 0; l < V4_LENS; l++) {
		const struct dtab *t = &v->t4[l];
		uint32_t cap;

		if (puts4[l] == 0)
			continue;
		cap = dtab_target_cap(t, (size_t)t->count + puts4[l],
		                      l == 32 ? ipc->host_cap_hint : DTAB_MIN_CAP);
		if (cap == 0 && t->e == NULL)
			goto err;
		if (cap != 0) {
			g->cap4[l] = cap;
			g->e4[l] = dp_alloc((size_t)cap * sizeof(struct e4));
			if (g->e4[l] == NULL)
				goto err;
		}
	}
	for (unsigned l = 0; l < V6_LENS; l++) {
		const struct dtab *t = &v->t6[l];
		uint32_t cap;

		if (puts6[l] == 0)
			continue;
		cap = dtab_target_cap(t, (size_t)t->count + puts6[l],
		                      l == 128 ? ipc->host_cap_hint : DTAB_MIN_CAP);
		if (cap == 0 && t->e == NULL)
			goto err;
		if (cap != 0) {
			g->cap6[l] = cap;
			g->e6[l] = dp_alloc((size_t)cap * sizeof(struct e6));
			if (g->e6[l] == NULL)
				goto err;
		}
	}
	return 0;
err:
	grow_free(g);
	return -ENOMEM;
}

/* Install the arrays of @g into the (idle) copy @v; @g is left empty. */
static void
grow_install(struct mg_ipcache_view *v, struct grow *g)
{
	for (unsigned l = 0; l < V4_LENS; l++)
		if (g->e4[l] != NULL)
			dtab_install(&v->t4[l], AF_INET, g->e4[l], g->cap4[l]);
	for (unsigned l = 0; l < V6_LENS; l++)
		if (g->e6[l] != NULL)
			dtab_install(&v->t6[l], AF_INET6, g->e6[l], g->cap6[l]);
	memset(g, 0, sizeof(*g));
}

/* Apply the batch to the idle copy @v; @first: it is the first copy to get it (see filt_apply). */
static void
view_apply(struct mg_ipcache *ipc, struct mg_ipcache_view *v, bool first)
{
	for (size_t i = 0; i < ipc->n_ops; i++) {
		const struct op *o = &ipc->ops[i];
		int delta = dtab_apply(view_tab(v, o->k.family, o->k.plen), &o->k, o->id);

		if (delta != 0)
			filt_apply(ipc, v, &o->k, delta, first);
	}
	view_refresh(v);
}

void
mg_ipcache_grace_period(struct rte_rcu_qsbr *q)
{
	uint64_t token;

	if (q == NULL)
		return;
	/*
	 * start + check rather than rte_rcu_qsbr_synchronize(): both are
	 * inline, so sanitizers see the acquire/release pairs they rely on.
	 * Spin briefly (readers on their own cores report within a loop
	 * iteration), then yield: the control thread may share a core with a
	 * reader (tests, small deployments), and spinning would only delay
	 * the quiescent report it waits for.
	 */
	token = rte_rcu_qsbr_start(q);
	for (unsigned spins = 0; rte_rcu_qsbr_check(q, token, false) == 0; spins++) {
		if (spins < 1000)
			rte_pause();
		else
			sched_yield();
	}
}

const struct mg_ipcache_view *
mg_ipcache_commit_prepare(struct mg_ipcache *ipc)
{
	uint32_t puts4[V4_LENS] = {0}, puts6[V6_LENS] = {0};
	struct mg_ipcache_view *idle, *old;
	struct grow *g = ipc->grow;
	size_t puts = 0, n = ipc->n_ops;

	if (ipc->prepared) {
		errno = EBUSY;
		return NULL;
	}
	if (n == 0)
		return ipc->views[ipc->active_idx];
	if (n > INT32_MAX) {
		errno = E2BIG;
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		const struct op *o = &ipc->ops[i];

		if (o->id == 0)
			continue;
		puts++;
		if (o->k.family == AF_INET)
			puts4[o->k.plen]++;
		else
			puts6[o->k.plen]++;
	}
	idle = ipc->views[ipc->active_idx ^ 1];
	old = ipc->views[ipc->active_idx];
	/*
	 * Every allocation happens here, before anything is published: after
	 * this point the commit cannot fail, so both copies always agree. The
	 * active copy's new arrays wait in g[1] until the grace period is over.
	 */
	if (cmap_reserve(&ipc->records, ipc->records.count + puts) < 0)
		goto nomem;
	if (grow_prepare(ipc, idle, puts4, puts6, &g[0]) < 0)
		goto nomem;
	if (grow_prepare(ipc, old, puts4, puts6, &g[1]) < 0) {
		grow_free(&g[0]);
		goto nomem;
	}
	/* The idle copy is no reader's: it may be rewritten freely. */
	grow_install(idle, &g[0]);
	view_apply(ipc, idle, true);
	ipc->prepared = true;
	return idle;
nomem:
	errno = ENOMEM;
	return NULL;
}

int
mg_ipcache_commit_finish(struct mg_ipcache *ipc)
{
	struct mg_ipcache_view *idle, *old;
	struct grow *g = ipc->grow;
	size_t n = ipc->n_ops;

	if (!ipc->prepared)
		return 0; /* nothing was staged at prepare */
	idle = ipc->views[ipc->active_idx ^ 1];
	old = ipc->views[ipc->active_idx];
	/*
	 * The caller may have handed the prepared copy to its readers already;
	 * from here on it is the active one for mg_ipcache_reader() too. The
	 * grace period then covers both kinds of readers of the old copy.
	 */
	__atomic_store_n(&ipc->active, idle, __ATOMIC_RELEASE);
	ipc->active_idx ^= 1;
	mg_ipcache_grace_period(ipc->qsbr);
	grow_install(old, &g[1]);
	view_apply(ipc, old, false);
	ipc->prepared = false;

	for (size_t i = 0; i < n; i++) {
		const struct op *o = &ipc->ops[i];

		if (o->id != 0) {
			cmap_set(&ipc->records, &o->k, o->id, o->cluster_id);
		} else {
			struct rec *r = cmap_find(&ipc->records, &o->k);

			if (r != NULL)
				cmap_del(&ipc->records, r);
		}
	}
	ipc->n_ops = 0;
	cmap_clear(&ipc->staged);
	if (ipc->cap_ops > 4096 && n * 8 < ipc->cap_ops) {
		/* Give back the log of an unusually big batch; failure keeps the old one. */
		struct op *small = realloc(ipc->ops, 4096 * sizeof(*small));

		if (small != NULL) {
			ipc->ops = small;
			ipc->cap_ops = 4096;
		}
	}
	return (int)n;
}

int
mg_ipcache_commit(struct mg_ipcache *ipc)
{
	/* prepare refuses a pending split commit (EBUSY) and prepares nothing
	 * for an empty batch (finish then returns 0); finish publishes the
	 * prepared copy itself (the active pointer). */
	if (mg_ipcache_commit_prepare(ipc) == NULL)
		return -errno;
	return mg_ipcache_commit_finish(ipc);
}

/* ---- control-plane reads ---- */

static void
rec_to_entry(const struct rec *r, struct mg_ipcache_entry *out)
{
	memset(out, 0, sizeof(*out));
	out->family = r->k.family;
	out->plen = r->k.plen;
	memcpy(out->addr, r->k.addr, sizeof(out->addr));
	out->identity = r->val;
	out->cluster_id = r->val2;
}

int
mg_ipcache_get(const struct mg_ipcache *ipc, uint8_t family, const uint8_t *addr, uint8_t plen,
               struct mg_ipcache_entry *out)
{
	const struct rec *r;
	struct pkey k;

	if (pkey_make(&k, family, addr, plen) < 0)
		return mg_errno_set(EINVAL);
	r = cmap_find(&ipc->records, &k);
	if (r == NULL)
		return mg_errno_set(ENOENT);
	if (out != NULL)
		rec_to_entry(r, out);
	return 0;
}

size_t
mg_ipcache_count(const struct mg_ipcache *ipc, uint8_t family)
{
	const struct mg_ipcache_view *v = ipc->views[ipc->active_idx];
	size_t n4 = 0, n6 = 0;

	if (family == 0)
		return ipc->records.count;
	/* Both copies agree after a commit; the data-plane counts are exact per family. */
	for (unsigned l = 0; l < V4_LENS; l++)
		n4 += v->t4[l].count;
	for (unsigned l = 0; l < V6_LENS; l++)
		n6 += v->t6[l].count;
	return family == AF_INET ? n4 : family == AF_INET6 ? n6 : 0;
}

int
mg_ipcache_walk(const struct mg_ipcache *ipc, int (*fn)(const struct mg_ipcache_entry *, void *),
                void *arg)
{
	struct mg_ipcache_entry e;

	for (size_t i = 0; i < ipc->records.cap; i++) {
		int rc;

		if (ipc->records.r[i].k.family == 0)
			continue;
		rec_to_entry(&ipc->records.r[i], &e);
		rc = fn(&e, arg);
		if (rc != 0)
			return rc;
	}
	return 0;
}

size_t
mg_ipcache_memory(const struct mg_ipcache *ipc)
{
	return sizeof(*ipc) + view_memory(ipc->views[0]) + view_memory(ipc->views[1]) +
	       (ipc->records.cap + ipc->staged.cap) * sizeof(struct rec) +
	       ipc->cap_ops * sizeof(struct op) +
	       ((1u << F4_BITS) + (1u << F6_BITS)) * sizeof(uint32_t);
}

/* ---- self-check (tests, debugging) ---- */

/* Identity of exactly @k in @t, 0 when absent. */
static uint32_t
dtab_find(const struct dtab *t, const struct pkey *k)
{
	if (t->e == NULL)
		return 0;
	for (uint32_t i = dtab_home_key(t, k);; i = (i + 1) & t->mask) {
		const void *e = dtab_slot(t, k->family, i);

		if (slot_id(k->family, e) == 0)
			return 0;
		if (slot_key_eq(k, e))
			return slot_id(k->family, e);
	}
}

/* Copy @v holds exactly the records, and its filter bits are the counts' (non-zero). */
static bool
view_check(const struct mg_ipcache *ipc, const struct mg_ipcache_view *v)
{
	size_t n = 0;

	for (unsigned l = 0; l < V4_LENS; l++)
		n += v->t4[l].count;
	for (unsigned l = 0; l < V6_LENS; l++)
		n += v->t6[l].count;
	if (n != ipc->records.count)
		return false;
	for (size_t i = 0; i < ipc->records.cap; i++) {
		const struct rec *r = &ipc->records.r[i];
		const struct dtab *t;

		if (r->k.family == 0)
			continue;
		t = r->k.family == AF_INET ? &v->t4[r->k.plen] : &v->t6[r->k.plen];
		if (dtab_find(t, &r->k) != r->val)
			return false;
	}
	for (uint32_t b = 0; b < (1u << F4_BITS); b++)
		if (bit_test(v->f4, b) != (ipc->fcnt4[b] != 0))
			return false;
	for (uint32_t b = 0; b < (1u << F6_BITS); b++)
		if (bit_test(v->f6, b) != (ipc->fcnt6[b] != 0))
			return false;
	return (v->f6_all != 0) == (ipc->fwide6 != 0);
}

int
mg_ipcache_verify(const struct mg_ipcache *ipc)
{
	uint32_t *c4, *c6, wide = 0;
	bool ok;

	if (ipc->prepared)
		return mg_errno_set(EBUSY);
	c4 = calloc(1u << F4_BITS, sizeof(*c4));
	c6 = calloc(1u << F6_BITS, sizeof(*c6));
	if (c4 == NULL || c6 == NULL) {
		free(c4);
		free(c6);
		return mg_errno_set(ENOMEM);
	}
	/* The counts, recomputed from the committed records. */
	for (size_t i = 0; i < ipc->records.cap; i++) {
		const struct rec *r = &ipc->records.r[i];
		uint32_t first, n;

		if (r->k.family == 0)
			continue;
		n = filt_range(&r->k, &first);
		if (r->k.family == AF_INET6 && n == 0)
			wide++;
		for (uint32_t j = 0; j < n; j++)
			(r->k.family == AF_INET ? c4 : c6)[filt_bucket(r->k.family, first + j)]++;
	}
	ok = memcmp(c4, ipc->fcnt4, (1u << F4_BITS) * sizeof(*c4)) == 0 &&
	     memcmp(c6, ipc->fcnt6, (1u << F6_BITS) * sizeof(*c6)) == 0 && wide == ipc->fwide6 &&
	     view_check(ipc, ipc->views[0]) && view_check(ipc, ipc->views[1]);
	free(c4);
	free(c6);
	return ok ? 0 : mg_errno_set(EIO);
}

/* ---- readers ---- */

const struct mg_ipcache_view *
mg_ipcache_reader(const struct mg_ipcache *ipc)
{
	return __atomic_load_n(&ipc->active, __ATOMIC_ACQUIRE);
}

/* The IPv6 filter: false when no prefix of @v can contain @addr. */
static inline bool
f6_pass(const struct mg_ipcache_view *v, const uint8_t *addr)
{
	uint32_t top;

	memcpy(&top, addr, 4);
	return v->f6_all != 0 || bit_test(v->f6, f6_bucket(ntohl(top)));
}

static inline uint32_t
lookup4(const struct mg_ipcache_view *v, const uint8_t *addr)
{
	uint32_t a;

	memcpy(&a, addr, 4);
	/* No prefix overlaps the address's /16: world without touching a table. */
	if (!bit_test(v->f4, ntohl(a) >> 16))
		return v->world4;
	for (unsigned n = 0; n < v->n4; n++) {
		unsigned l = v->order4[n];
		const struct dtab *t = &v->t4[l];
		const struct e4 *e = t->e;
		uint32_t key = a & v->mask4[l];

		for (uint32_t i = hash4(key, t->shift); e[i].id != 0; i = (i + 1) & t->mask)
			if (e[i].key == key)
				return e[i].id;
	}
	return v->world4;
}

static inline uint32_t
lookup6(const struct mg_ipcache_view *v, const uint8_t *addr)
{
	uint64_t a = load64(addr), b = load64(addr + 8);

	if (!f6_pass(v, addr))
		return v->world6;
	for (unsigned n = 0; n < v->n6; n++) {
		unsigned l = v->order6[n];
		const struct dtab *t = &v->t6[l];
		const struct e6 *e = t->e;
		uint64_t ka = a & v->mask6[l][0], kb = b & v->mask6[l][1];

		for (uint32_t i = hash6(ka, kb, t->shift); e[i].id != 0; i = (i + 1) & t->mask)
			if (load64(e[i].key) == ka && load64(e[i].key + 8) == kb)
				return e[i].id;
	}
	return v->world6;
}

uint32_t
mg_ipcache_lookup(const struct mg_ipcache_view *v, uint8_t family, const uint8_t *addr)
{
	if (MG_LIKELY(family == AF_INET))
		return lookup4(v, addr);
	if (family == AF_INET6)
		return lookup6(v, addr);
	return ID_WORLD;
}

bool
mg_ipcache_may_match(const struct mg_ipcache_view *v, uint8_t family, const uint8_t *addr)
{
	uint32_t a;

	if (family == AF_INET) {
		memcpy(&a, addr, 4);
		return bit_test(v->f4, ntohl(a) >> 16);
	}
	return family == AF_INET6 && f6_pass(v, addr);
}

/*
 * Prefetch the bucket of the longest length in use (the host routes,
 * usually), unless the filter already says world: a miss would only pull
 * in a line nobody reads.
 */
static inline void
prefetch_first(const struct mg_ipcache_view *v, uint8_t family, const uint8_t *addr)
{
	if (family == AF_INET && v->n4 != 0) {
		unsigned l = v->order4[0];
		uint32_t a;

		memcpy(&a, addr, 4);
		if (!bit_test(v->f4, ntohl(a) >> 16))
			return;
		__builtin_prefetch(
		        &((const struct e4 *)v->t4[l].e)[hash4(a & v->mask4[l], v->t4[l].shift)]);
	} else if (family == AF_INET6 && v->n6 != 0 && f6_pass(v, addr)) {
		unsigned l = v->order6[0];
		uint64_t a = load64(addr) & v->mask6[l][0], b = load64(addr + 8) & v->mask6[l][1];

		__builtin_prefetch(&((const struct e6 *)v->t6[l].e)[hash6(a, b, v->t6[l].shift)]);
	}
}

void
mg_ipcache_lookup_bulk(const struct mg_ipcache_view *v, const uint8_t *families,
                       const uint8_t *const *addrs, uint32_t *ids, unsigned n)
{
	/*
	 * Two passes per group: first issue the prefetch of every address's
	 * host-route bucket, then resolve them. With a table larger than the
	 * cache each lookup is one memory latency; this way the group's
	 * misses overlap instead of queueing.
	 */
	for (unsigned base = 0; base < n; base += BULK_GROUP) {
		unsigned end = n - base < BULK_GROUP ? n : base + BULK_GROUP;

		for (unsigned i = base; i < end; i++)
			prefetch_first(v, families[i], addrs[i]);
		for (unsigned i = base; i < end; i++)
			ids[i] = mg_ipcache_lookup(v, families[i], addrs[i]);
	}
}

/* ---- text form ---- */

int
mg_ipcache_parse_prefix(const char *s, struct mg_ipcache_entry *e)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash;
	size_t alen;
	unsigned long plen;
	struct pkey k;

	if (s == NULL || e == NULL)
		return mg_errno_set(EINVAL);
	slash = strchr(s, '/');
	alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= INET6_ADDRSTRLEN)
		return mg_errno_set(EINVAL);
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	memset(e->addr, 0, sizeof(e->addr));
	if (inet_pton(AF_INET, buf, e->addr) == 1)
		e->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, e->addr) == 1)
		e->family = AF_INET6;
	else
		return mg_errno_set(EINVAL);
	plen = e->family == AF_INET ? 32 : 128;
	if (slash != NULL) {
		const char *p = slash + 1;
		char *end;

		/* Decimal digits only: no sign, no spaces, no hex, at most 3 digits. */
		if (*p < '0' || *p > '9' || strlen(p) > 3)
			return mg_errno_set(EINVAL);
		plen = strtoul(p, &end, 10);
		if (*end != '\0' || plen >= family_lens(e->family))
			return mg_errno_set(EINVAL);
	}
	e->plen = (uint8_t)plen;
	/* Clear the host bits, as every ipcache key is stored. */
	pkey_make(&k, e->family, e->addr, e->plen);
	memcpy(e->addr, k.addr, sizeof(e->addr));
	return 0;
}

char *
mg_ipcache_prefix_str(const struct mg_ipcache_entry *e, char *buf, unsigned size)
{
	char a[INET6_ADDRSTRLEN];

	if (size == 0)
		return buf;
	if ((e->family != AF_INET && e->family != AF_INET6) ||
	    inet_ntop(e->family, e->addr, a, sizeof(a)) == NULL) {
		snprintf(buf, size, "?");
		return buf;
	}
	snprintf(buf, size, "%s/%u", a, e->plen);
	return buf;
}
