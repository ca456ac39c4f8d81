/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The ipcache's data-plane copies as the writer builds them. A copy is
 * only ever changed while it is idle (no reader can be on it), so its
 * tables may grow, rehash and be freed freely; every allocation a batch
 * needs is made before anything is published (ipc_grow_prepare), so
 * applying the batch (ipc_view_apply) cannot fail.
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
 * the copy's tables (ipc_view_apply, same ops in the same order), so
 * readers see them change with the batch: never, as the copy is idle then.
 *
 * mg_ipcache_verify() checks both copies against the records and counts.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "ipcache_priv.h"

/* Data-plane allocations from this size up go to (transparent) huge pages. */
#define DP_HUGE (2u << 20)

/* ---- memory for data-plane tables (one place to switch to rte_malloc) ---- */

void *
ipc_dp_alloc(size_t size)
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

void
ipc_dp_free(void *p)
{
	free(p);
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
		     slot_id(family, dtab_slot(&nt, family, j)) != 0;
		     j = (uint32_t)mg_probe_next(j, nt.mask))
			;
		memcpy(dtab_slot(&nt, family, j), src, esize);
	}
	ipc_dp_free(t->e);
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
	for (i = dtab_home_key(t, k);; i = (uint32_t)mg_probe_next(i, t->mask)) {
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
	/* Backward-shift deletion, as in ipc_cmap_del. */
	t->count--;
	{
		uint32_t hole = i;
		size_t esize = dtab_esize(family);

		for (i = (uint32_t)mg_probe_next(hole, t->mask);
		     slot_id(family, dtab_slot(t, family, i)) != 0;
		     i = (uint32_t)mg_probe_next(i, t->mask)) {
			uint32_t home = dtab_home(t, family, dtab_slot(t, family, i));

			if (mg_probe_may_fill(home, hole, i, t->mask)) {
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

/*
 * Free the tables of @t[0 .. @lens) that became empty and list the
 * lengths still in use, longest first, in @order. @return their number.
 */
static uint8_t
refresh_lengths(struct dtab *t, unsigned lens, uint8_t *order)
{
	uint8_t n = 0;

	for (int l = (int)lens - 1; l >= 0; l--) {
		if (t[l].e != NULL && t[l].count == 0) {
			ipc_dp_free(t[l].e);
			memset(&t[l], 0, sizeof(t[l]));
		}
		if (t[l].e != NULL)
			order[n++] = (uint8_t)l;
	}
	return n;
}

/* Rebuild the lists of lengths in use, freeing tables that became empty. */
static void
view_refresh(struct mg_ipcache_view *v)
{
	v->n4 = refresh_lengths(v->t4, V4_LENS, v->order4);
	v->n6 = refresh_lengths(v->t6, V6_LENS, v->order6);
}

struct mg_ipcache_view *
ipc_view_create(bool split_world)
{
	struct mg_ipcache_view *v = ipc_dp_alloc(sizeof(*v));

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

void
ipc_view_free(struct mg_ipcache_view *v)
{
	if (v == NULL)
		return;
	for (unsigned l = 0; l < V4_LENS; l++)
		ipc_dp_free(v->t4[l].e);
	for (unsigned l = 0; l < V6_LENS; l++)
		ipc_dp_free(v->t6[l].e);
	ipc_dp_free(v);
}

size_t
ipc_view_memory(const struct mg_ipcache_view *v)
{
	size_t bytes = sizeof(*v);

	for (unsigned l = 0; l < V4_LENS; l++)
		bytes += (size_t)v->t4[l].cap * sizeof(struct e4);
	for (unsigned l = 0; l < V6_LENS; l++)
		bytes += (size_t)v->t6[l].cap * sizeof(struct e6);
	return bytes;
}

/* ---- a batch: growth before it is published, then its application ---- */

void
ipc_grow_free(struct grow *g)
{
	for (unsigned l = 0; l < V4_LENS; l++)
		ipc_dp_free(g->e4[l]);
	for (unsigned l = 0; l < V6_LENS; l++)
		ipc_dp_free(g->e6[l]);
	memset(g, 0, sizeof(*g));
}

/*
 * A new array for table @t when @puts more keys will not fit in it (or
 * it does not exist yet: @first_cap slots at least), into *@e and *@cap;
 * nothing when it has room. 0, or -ENOMEM (a table past 2^31 slots too).
 */
static int
grow_table(const struct dtab *t, uint32_t puts, uint32_t first_cap, size_t esize, void **e,
           uint32_t *cap)
{
	uint32_t c;

	if (puts == 0)
		return 0;
	c = dtab_target_cap(t, (size_t)t->count + puts, first_cap);
	if (c == 0 && t->e == NULL)
		return -ENOMEM;
	if (c != 0) {
		*cap = c;
		*e = ipc_dp_alloc((size_t)c * esize);
		if (*e == NULL)
			return -ENOMEM;
	}
	return 0;
}

/*
 * New table arrays for one copy, big enough for the puts of the batch.
 * Only the allocation happens here; dtab_install() moves the entries in
 * later, when the copy is idle.
 */
int
ipc_grow_prepare(const struct mg_ipcache *ipc, const struct mg_ipcache_view *v,
                 const uint32_t *puts4, const uint32_t *puts6, struct grow *g)
{
	memset(g, 0, sizeof(*g));
	for (unsigned l = 0; l < V4_LENS; l++)
		if (grow_table(&v->t4[l], puts4[l], l == 32 ? ipc->host_cap_hint : DTAB_MIN_CAP,
		               sizeof(struct e4), &g->e4[l], &g->cap4[l]) < 0)
			goto err;
	for (unsigned l = 0; l < V6_LENS; l++)
		if (grow_table(&v->t6[l], puts6[l], l == 128 ? ipc->host_cap_hint : DTAB_MIN_CAP,
		               sizeof(struct e6), &g->e6[l], &g->cap6[l]) < 0)
			goto err;
	return 0;
err:
	ipc_grow_free(g);
	return -ENOMEM;
}

/* Install the arrays of @g into the (idle) copy @v; @g is left empty. */
void
ipc_grow_install(struct mg_ipcache_view *v, struct grow *g)
{
	for (unsigned l = 0; l < V4_LENS; l++)
		if (g->e4[l] != NULL)
			dtab_install(&v->t4[l], AF_INET, g->e4[l], g->cap4[l]);
	for (unsigned l = 0; l < V6_LENS; l++)
		if (g->e6[l] != NULL)
			dtab_install(&v->t6[l], AF_INET6, g->e6[l], g->cap6[l]);
	memset(g, 0, sizeof(*g));
}

/* Prefetch the slot where @o's probe starts in copy @v (nothing when its table does not exist). */
static inline void
op_prefetch(struct mg_ipcache_view *v, const struct op *o)
{
	const struct dtab *t = view_tab(v, o->k.family, o->k.plen);

	if (t->e != NULL)
		__builtin_prefetch(dtab_slot(t, o->k.family, dtab_home_key(t, &o->k)), 1);
}

/*
 * Apply the batch to the idle copy @v; @first: it is the first copy to get
 * it (see filt_apply). Ops are applied in log order; the slot of the op
 * OPS_AHEAD places ahead is prefetched, so that on tables larger than the
 * cache the misses overlap rather than queue (the order of the applies,
 * hence the copy's content, does not change).
 */
void
ipc_view_apply(struct mg_ipcache *ipc, struct mg_ipcache_view *v, bool first)
{
	for (size_t i = 0; i < ipc->n_ops && i < OPS_AHEAD; i++)
		op_prefetch(v, &ipc->ops[i]);
	for (size_t i = 0; i < ipc->n_ops; i++) {
		const struct op *o = &ipc->ops[i];

		if (i + OPS_AHEAD < ipc->n_ops)
			op_prefetch(v, &ipc->ops[i + OPS_AHEAD]);
		int delta = dtab_apply(view_tab(v, o->k.family, o->k.plen), &o->k, o->id);

		if (delta != 0)
			filt_apply(ipc, v, &o->k, delta, first);
	}
	view_refresh(v);
}

/* ---- self-check (tests, debugging) ---- */

/* Identity of exactly @k in @t, 0 when absent. */
static uint32_t
dtab_find(const struct dtab *t, const struct pkey *k)
{
	if (t->e == NULL)
		return 0;
	for (uint32_t i = dtab_home_key(t, k);; i = (uint32_t)mg_probe_next(i, t->mask)) {
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
