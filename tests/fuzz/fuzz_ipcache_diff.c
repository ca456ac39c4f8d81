/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Differential libFuzzer target of lib/ipcache. The input is a sequence of
 * operations (stage a put of an IPv4 or IPv6 prefix with an identity, stage
 * a delete, commit, split commit, discard, look an address up, read one
 * prefix back, count) applied both to the ipcache and to a naive reference:
 * two lists of prefixes (staged and committed), longest-prefix match by
 * scanning. Return codes, every lookup (through the reader's view, which
 * sees committed entries only), get and count must agree; at the end the
 * walk must list exactly the reference's committed set. Addresses come from
 * a small space so that prefixes nest and collide. A disagreement aborts.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_ipcache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                          \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
			        #cond);                                                      \
			abort();                                                             \
		}                                                                            \
	} while (0)

#define AF4 2
#define AF6 10
#define MAX_REF 128

struct rd {
	const uint8_t *p;
	size_t n;
};

static unsigned
take(struct rd *r, unsigned m)
{
	unsigned v;

	if (r->n == 0)
		return 0;
	v = *r->p++;
	r->n--;
	return v % m;
}

struct pfx {
	uint8_t family, plen;
	uint8_t addr[16];
	uint32_t identity;
};

struct ref {
	unsigned n;
	struct pfx e[MAX_REF];
};

static void
mask(uint8_t *a, unsigned plen, unsigned bytes)
{
	unsigned i;

	for (i = 0; i < 16; i++) {
		if (i >= bytes || i * 8 >= plen)
			a[i] = 0;
		else if (plen < (i + 1) * 8)
			a[i] &= (uint8_t)(0xff << ((i + 1) * 8 - plen));
	}
}

static bool
covers(const struct pfx *p, uint8_t family, const uint8_t *addr)
{
	uint8_t a[16];

	if (p->family != family)
		return false;
	memcpy(a, addr, 16);
	mask(a, p->plen, family == AF4 ? 4 : 16);
	return memcmp(a, p->addr, 16) == 0;
}

static int
find(const struct ref *r, uint8_t family, const uint8_t *addr, uint8_t plen)
{
	unsigned i;

	for (i = 0; i < r->n; i++)
		if (r->e[i].family == family && r->e[i].plen == plen &&
		    memcmp(r->e[i].addr, addr, 16) == 0)
			return (int)i;
	return -1;
}

static uint32_t
ref_lookup(const struct ref *r, uint8_t family, const uint8_t *addr, bool split)
{
	int best = -1;
	unsigned i;

	for (i = 0; i < r->n; i++)
		if (covers(&r->e[i], family, addr) && (best < 0 || r->e[i].plen > r->e[best].plen))
			best = (int)i;
	if (best >= 0)
		return r->e[best].identity;
	return split ? (family == AF4 ? 9 : 10) : 2;
}

static unsigned
ref_count(const struct ref *r, uint8_t family)
{
	unsigned i, n = 0;

	for (i = 0; i < r->n; i++)
		n += family == 0 || r->e[i].family == family;
	return n;
}

/* An address of a small space: few distinct bytes, at a few positions. */
static void
gen_addr(struct rd *r, uint8_t family, uint8_t *a)
{
	static const uint8_t b4[] = {10, 192, 0, 255, 1, 128, 168, 2};
	static const uint8_t b6[] = {0x20, 0xfd, 0, 0xff, 1, 0x80, 0x0d, 0xb8};

	memset(a, 0, 16);
	if (family == AF4) {
		a[0] = b4[take(r, 8)];
		a[1] = b4[take(r, 8)];
		a[2] = b4[take(r, 8)];
		a[3] = b4[take(r, 8)];
	} else {
		a[0] = b6[take(r, 8)];
		a[1] = b6[take(r, 8)];
		a[7] = b6[take(r, 8)];
		a[8] = b6[take(r, 8)];
		a[15] = b6[take(r, 8)];
	}
}

static uint8_t
gen_plen(struct rd *r, uint8_t family)
{
	static const uint8_t l4[] = {0, 1, 8, 9, 16, 23, 24, 31, 32, 32};
	static const uint8_t l6[] = {0, 7, 8, 16, 60, 64, 65, 120, 127, 128};

	return family == AF4 ? l4[take(r, 10)] : l6[take(r, 10)];
}

struct walk_ctx {
	const struct ref *ref;
	unsigned seen;
};

static int
walk_one(const struct mg_ipcache_entry *e, void *arg)
{
	struct walk_ctx *w = arg;
	int i = find(w->ref, e->family, e->addr, e->plen);

	CHECK(i >= 0);
	CHECK(w->ref->e[i].identity == e->identity);
	w->seen++;
	return 0;
}

static void
check_lookup(const struct mg_ipcache *ipc, const struct ref *com, uint8_t family,
             const uint8_t *addr, bool split)
{
	uint32_t got = mg_ipcache_lookup(mg_ipcache_reader(ipc), family, addr);
	uint32_t want = ref_lookup(com, family, addr, split);
	const uint8_t *addrs[1] = {addr};
	uint32_t bulk = 0;

	if (got != want) {
		char buf[64];
		struct mg_ipcache_entry e = {.family = family, .plen = family == AF4 ? 32 : 128};

		memcpy(e.addr, addr, 16);
		fprintf(stderr, "ipcache_diff: lookup %s: gateway %u, reference %u\n",
		        mg_ipcache_prefix_str(&e, buf, sizeof(buf)), got, want);
		abort();
	}
	mg_ipcache_lookup_bulk(mg_ipcache_reader(ipc), &family, addrs, &bulk, 1);
	CHECK(bulk == want);
	/* may_match may only say no for a miss */
	if (!mg_ipcache_may_match(mg_ipcache_reader(ipc), family, addr))
		CHECK(want == (split ? (family == AF4 ? 9u : 10u) : 2u));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ref staged, com;
	struct rd r = {data, size};
	struct mg_ipcache_params p = {0};
	struct mg_ipcache *ipc;
	struct walk_ctx w;
	unsigned commits = 0;
	bool split;

	if (size > 4096)
		return 0;
	split = take(&r, 2) == 1;
	p.entries_hint = 1 + take(&r, 64);
	p.split_world = split;
	ipc = mg_ipcache_create(&p);
	CHECK(ipc != NULL);
	staged.n = com.n = 0;
	while (r.n > 0) {
		uint8_t family = take(&r, 2) ? AF6 : AF4;
		unsigned op = take(&r, 10);
		uint8_t addr[16];
		int rc, i;

		/* a commit rewrites both copies' miss filters: a few per input */
		if ((op == 4 || op == 5) && ++commits > 8)
			op = 9;
		switch (op) {
		case 0:
		case 1:
		case 2: { /* put */
			struct mg_ipcache_entry e = {0};

			e.family = family;
			gen_addr(&r, family, e.addr);
			e.plen = gen_plen(&r, family);
			e.identity = take(&r, 8) == 0 ? 0 : 100 + take(&r, 16);
			e.cluster_id = 0;
			memcpy(addr, e.addr, 16);
			mask(addr, e.plen, family == AF4 ? 4 : 16);
			i = find(&staged, family, addr, e.plen);
			if (e.identity != 0 && i < 0 && staged.n == MAX_REF)
				break;
			rc = mg_ipcache_put(ipc, &e);
			if (e.identity == 0) {
				CHECK(rc == -EINVAL);
				break;
			}
			CHECK(rc == 0);
			if (i < 0) {
				i = (int)staged.n++;
				staged.e[i].family = family;
				staged.e[i].plen = e.plen;
				memcpy(staged.e[i].addr, addr, 16);
			}
			staged.e[i].identity = e.identity;
			break;
		}
		case 3: { /* delete: one of the staged prefixes, or any */
			uint8_t plen;

			if (staged.n > 0 && take(&r, 2)) {
				const struct pfx *x = &staged.e[take(&r, staged.n)];

				family = x->family;
				memcpy(addr, x->addr, 16);
				plen = x->plen;
			} else {
				gen_addr(&r, family, addr);
				plen = gen_plen(&r, family);
				mask(addr, plen, family == AF4 ? 4 : 16);
			}
			i = find(&staged, family, addr, plen);
			rc = mg_ipcache_del(ipc, family, addr, plen);
			CHECK(rc == (i >= 0 ? 0 : -ENOENT));
			if (i >= 0)
				staged.e[i] = staged.e[--staged.n];
			break;
		}
		case 4: /* commit */
			rc = mg_ipcache_commit(ipc);
			CHECK(rc >= 0);
			CHECK(mg_ipcache_pending(ipc) == 0);
			com = staged;
			break;
		case 5: /* split commit */
			CHECK(mg_ipcache_commit_prepare(ipc) != NULL);
			CHECK(mg_ipcache_commit_finish(ipc) >= 0);
			CHECK(mg_ipcache_pending(ipc) == 0);
			com = staged;
			break;
		case 6: /* discard */
			mg_ipcache_discard(ipc);
			CHECK(mg_ipcache_pending(ipc) == 0);
			staged = com;
			break;
		case 7: { /* get an exact committed prefix */
			struct mg_ipcache_entry e;
			uint8_t plen;

			if (com.n > 0 && take(&r, 2)) {
				const struct pfx *x = &com.e[take(&r, com.n)];

				family = x->family;
				memcpy(addr, x->addr, 16);
				plen = x->plen;
			} else {
				gen_addr(&r, family, addr);
				plen = gen_plen(&r, family);
				mask(addr, plen, family == AF4 ? 4 : 16);
			}
			i = find(&com, family, addr, plen);
			rc = mg_ipcache_get(ipc, family, addr, plen, &e);
			CHECK(rc == (i >= 0 ? 0 : -ENOENT));
			if (i >= 0)
				CHECK(e.identity == com.e[i].identity && e.plen == plen &&
				      e.family == family && memcmp(e.addr, addr, 16) == 0);
			break;
		}
		case 8: /* count */
			CHECK(mg_ipcache_count(ipc, 0) == ref_count(&com, 0));
			CHECK(mg_ipcache_count(ipc, AF4) == ref_count(&com, AF4));
			CHECK(mg_ipcache_count(ipc, AF6) == ref_count(&com, AF6));
			break;
		default: /* lookup */
			gen_addr(&r, family, addr);
			check_lookup(ipc, &com, family, addr, split);
			break;
		}
	}
	CHECK(mg_ipcache_commit(ipc) >= 0);
	com = staged;
	/* the self-check walks both copies' whole miss filters (2^16 + 2^19
	 * bits): on one input in eight, which keeps libFuzzer fast */
	if ((size & 7) == 0)
		CHECK(mg_ipcache_verify(ipc) == 0);
	w.ref = &com;
	w.seen = 0;
	CHECK(mg_ipcache_walk(ipc, walk_one, &w) == 0);
	CHECK(w.seen == com.n);
	CHECK(mg_ipcache_count(ipc, 0) == com.n);
	for (unsigned i = 0; i < com.n; i++) {
		uint8_t a[16];

		memcpy(a, com.e[i].addr, 16);
		check_lookup(ipc, &com, com.e[i].family, a, split);
		a[com.e[i].family == AF4 ? 3 : 15] |= 1;
		check_lookup(ipc, &com, com.e[i].family, a, split);
	}
	mg_ipcache_free(ipc);
	return 0;
}
