/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The ipcache's readers: the longest-prefix lookup in one data-plane copy,
 * run by every worker on every burst. The miss filter is tested first (a
 * clear bit is world at once), then the lengths in use are probed from
 * the longest, one hash-table probe run each. The bulk form works in
 * groups, prefetching every address's host-route bucket before resolving
 * any, so that the cache misses of a group overlap. Nothing here writes,
 * allocates or waits; a reader holds a copy only until its next quiescent
 * state report.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "ipcache_priv.h"

/* Bulk lookups prefetch the host-route buckets of this many addresses at once. */
#define BULK_GROUP 16u

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

		for (uint32_t i = hash4(key, t->shift); e[i].id != 0;
		     i = (uint32_t)mg_probe_next(i, t->mask))
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

		for (uint32_t i = hash6(ka, kb, t->shift); e[i].id != 0;
		     i = (uint32_t)mg_probe_next(i, t->mask))
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
