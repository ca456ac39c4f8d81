/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The concurrent proof of the ipcache's update protocol: reader threads
 * registered with an RCU QSBR variable (allocated here, no EAL) look up
 * while the writer commits batches, and must never see a half-applied
 * batch or go back in time.
 *
 * Every batch g sets the K prefixes of set A to identity 1000 + g, and
 * either adds the K prefixes of set B with that same identity (g odd) or
 * removes them (g even), plus unrelated churn that makes tables grow and
 * rehash. So in any one view: all of A agree on one g, and B is all
 * present with 1000 + g or all absent, according to g's parity. A reader
 * also checks that g never decreases and is never older than the last
 * commit that had returned before it took the view.
 *
 * Misses too: a few of B's prefixes are short (an IPv4 /12 over 16 /16s,
 * an IPv6 /20 over 4096 /32s, an IPv6 /12 that makes the IPv6 miss filter
 * pass everything), and B's host routes are alone in their /16 and /32,
 * so every batch sets or clears miss-filter bits; and a set W of
 * addresses in no prefix (some in buckets that A or B keep set, some just
 * outside B's short prefixes, some far away) must always resolve to the
 * exact world identity of their family, one by one and in bulk.
 *
 * The pair test checks the split commit the data path builds on: readers
 * load ONE snapshot {view, policy} (a fake policy: the set of identities
 * it knows) while the writer adds hosts with brand-new identities and
 * removes old ones, and every identity a view maps an address to must be
 * known to the policy published with it. The same checker run against the
 * old order (commit the view, then store the policy) must catch it.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <rte_rcu_qsbr.h>

#include "mg_ipcache.h"
#include "mg_test.h"

#define READERS 2
#define K 32 /* prefixes per set */
#define GEN_BASE 1000u
#define RUN_NS (3ull * 1000 * 1000 * 1000)
#define MAX_BATCHES 200000u

static struct rte_rcu_qsbr *
qsbr_new(unsigned threads)
{
	size_t sz = rte_rcu_qsbr_get_memsize(threads);
	struct rte_rcu_qsbr *q;

	sz = (sz + 63) & ~(size_t)63;
	q = aligned_alloc(64, sz);
	if (q == NULL)
		return NULL;
	memset(q, 0, sz);
	if (rte_rcu_qsbr_init(q, threads) != 0) {
		free(q);
		return NULL;
	}
	return q;
}

/*
 * The prefixes of the sets and an address inside each. A: v4 host routes,
 * v4 /24s, v6 host routes, v6 /64s, a quarter each; B: the same kinds
 * elsewhere. Lookups hit exactly one entry, or world.
 */
struct probe {
	struct mg_ipcache_entry e;
	uint8_t addr[16];
};

static struct probe set_a[K], set_b[K];

/* Addresses in no prefix, ever (set W). */
static const char *const world_addrs[] = {
        "100.64.1.1", "11.32.0.1",    "11.15.255.255", "10.0.255.255",
        "10.1.200.1", "10.101.200.1", "2001:db8::1",   "fd00:ffff::1",
        "fd01::ffff", "2a00:1000::1", "2bff:ffff::1",  "fd65:1::5",
};
#define N_WORLD (sizeof(world_addrs) / sizeof(world_addrs[0]))
static uint8_t world_a[N_WORLD][16], world_fam[N_WORLD];

static void
make_probe(struct probe *p, unsigned set, unsigned i)
{
	memset(p, 0, sizeof(*p));
	switch (i % 4) {
	case 0:
		p->e.family = AF_INET;
		p->e.plen = 32;
		p->e.addr[0] = 10;
		p->e.addr[1] = (uint8_t)set;
		p->e.addr[3] = (uint8_t)i;
		memcpy(p->addr, p->e.addr, 4);
		break;
	case 1:
		p->e.family = AF_INET;
		p->e.plen = 24;
		p->e.addr[0] = 10;
		p->e.addr[1] = (uint8_t)(100 + set);
		p->e.addr[2] = (uint8_t)i;
		memcpy(p->addr, p->e.addr, 4);
		p->addr[3] = 77;
		break;
	case 2:
		p->e.family = AF_INET6;
		p->e.plen = 128;
		p->e.addr[0] = 0xfd;
		p->e.addr[1] = (uint8_t)set;
		p->e.addr[15] = (uint8_t)i;
		memcpy(p->addr, p->e.addr, 16);
		break;
	default:
		p->e.family = AF_INET6;
		p->e.plen = 64;
		p->e.addr[0] = 0xfd;
		p->e.addr[1] = (uint8_t)(100 + set);
		p->e.addr[7] = (uint8_t)i;
		memcpy(p->addr, p->e.addr, 8);
		p->addr[15] = 5;
		break;
	}
	if (set != 1)
		return;
	/* B's short prefixes (see the top comment); their probes stay inside. */
	if (i == 1) { /* 11.16.0.0/12 */
		p->e.addr[0] = 11;
		p->e.addr[1] = 16;
		p->e.addr[2] = 0;
		p->e.plen = 12;
		memcpy(p->addr, (const uint8_t[4]){11, 31, 1, 77}, 4);
	} else if (i == 3 || i == 7) { /* 2a00::/20, 3000::/12 */
		memset(p->e.addr, 0, 16);
		memset(p->addr, 0, 16);
		p->e.addr[0] = i == 3 ? 0x2a : 0x30;
		p->e.plen = i == 3 ? 20 : 12;
		memcpy(p->addr, p->e.addr, 2);
		p->addr[2] = 0x0f; /* 2a00:fff:... and 3000:fff:... */
		p->addr[3] = 0xff;
		p->addr[15] = 5;
	}
}

static void
make_world(void)
{
	for (unsigned i = 0; i < N_WORLD; i++) {
		memset(world_a[i], 0, 16);
		if (inet_pton(AF_INET, world_addrs[i], world_a[i]) == 1)
			world_fam[i] = AF_INET;
		else if (inet_pton(AF_INET6, world_addrs[i], world_a[i]) == 1)
			world_fam[i] = AF_INET6;
		else
			abort();
	}
}

struct shared {
	struct mg_ipcache *ipc;
	struct rte_rcu_qsbr *q;
	uint32_t committed; /* last generation whose commit returned (atomic) */
	bool stop;          /* atomic */
};

struct reader {
	pthread_t th;
	unsigned tid;
	struct shared *sh;
	uint64_t views, lookups, torn, stale, bad_value, bad_world;
	uint32_t first_gen, last_gen;
	unsigned gens_seen;
};

static bool
is_world(uint32_t id)
{
	return id == 9 || id == 10;
}

static void *
reader_main(void *arg)
{
	struct reader *r = arg;
	struct shared *sh = r->sh;
	const uint8_t *ptrs[K], *wptrs[N_WORLD];
	uint8_t fams[K];
	uint32_t ids[K], wids[N_WORLD];

	for (unsigned i = 0; i < K; i++) {
		ptrs[i] = set_b[i].addr;
		fams[i] = set_b[i].e.family;
	}
	for (unsigned i = 0; i < N_WORLD; i++)
		wptrs[i] = world_a[i];
	rte_rcu_qsbr_thread_register(sh->q, r->tid);
	rte_rcu_qsbr_thread_online(sh->q, r->tid);
	while (!__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE)) {
		uint32_t floor = __atomic_load_n(&sh->committed, __ATOMIC_ACQUIRE);
		const struct mg_ipcache_view *v = mg_ipcache_reader(sh->ipc);
		uint32_t a0 = mg_ipcache_lookup(v, set_a[0].e.family, set_a[0].addr);
		uint32_t g = a0 - GEN_BASE;
		bool torn = false;

		/* Set A one by one, set B in bulk: both paths must agree. */
		for (unsigned i = 1; i < K; i++)
			if (mg_ipcache_lookup(v, set_a[i].e.family, set_a[i].addr) != a0)
				torn = true;
		mg_ipcache_lookup_bulk(v, fams, ptrs, ids, K);
		for (unsigned i = 0; i < K; i++) {
			bool want_present = g % 2 == 1;

			if (want_present ? ids[i] != a0 : !is_world(ids[i]))
				torn = true;
		}
		/* W: world, of the right family, single and bulk, whatever the batch. */
		mg_ipcache_lookup_bulk(v, world_fam, wptrs, wids, N_WORLD);
		for (unsigned i = 0; i < N_WORLD; i++) {
			uint32_t want = world_fam[i] == AF_INET ? 9 : 10;

			if (wids[i] != want ||
			    mg_ipcache_lookup(v, world_fam[i], world_a[i]) != want)
				r->bad_world++;
		}
		r->lookups += 2 * K + 2 * N_WORLD;
		r->views++;
		if (a0 < GEN_BASE || a0 > GEN_BASE + MAX_BATCHES)
			r->bad_value++;
		else if (torn)
			r->torn++;
		if (g < floor || g < r->last_gen)
			r->stale++;
		if (r->views == 1)
			r->first_gen = g;
		if (g != r->last_gen)
			r->gens_seen++;
		r->last_gen = g;
		/* Done with v: from here on the writer may rewrite it. */
		rte_rcu_qsbr_quiescent(sh->q, r->tid);
		/*
		 * The test may run on fewer cores than threads; a real worker
		 * owns its core. Yield now and then so the writer gets to run.
		 */
		if (r->views % 64 == 0)
			sched_yield();
	}
	rte_rcu_qsbr_thread_offline(sh->q, r->tid);
	rte_rcu_qsbr_thread_unregister(sh->q, r->tid);
	return NULL;
}

static int
stage_batch(struct mg_ipcache *ipc, uint32_t g, uint64_t *churn_rng)
{
	for (unsigned i = 0; i < K; i++) {
		struct mg_ipcache_entry e = set_a[i].e;

		e.identity = GEN_BASE + g;
		if (mg_ipcache_put(ipc, &e) != 0)
			return -1;
		e = set_b[i].e;
		if (g % 2 == 1) {
			e.identity = GEN_BASE + g;
			if (mg_ipcache_put(ipc, &e) != 0)
				return -1;
		} else if (g > 0 && mg_ipcache_del(ipc, e.family, e.addr, e.plen) != 0) {
			return -1;
		}
	}
	/*
	 * Churn: random host routes from 16k addresses per family come and go
	 * (about half of them live in the steady state), so tables grow and
	 * shift entries on delete while the readers run.
	 */
	for (unsigned i = 0; i < 64; i++) {
		struct mg_ipcache_entry e;
		uint64_t x;

		*churn_rng ^= *churn_rng << 13;
		*churn_rng ^= *churn_rng >> 7;
		*churn_rng ^= *churn_rng << 17;
		x = *churn_rng;
		memset(&e, 0, sizeof(e));
		e.family = x & 1 ? AF_INET : AF_INET6;
		e.plen = e.family == AF_INET ? 32 : 128;
		e.addr[0] = e.family == AF_INET ? 172 : 0xfc;
		e.addr[1] = (uint8_t)(16 | ((x >> 8) & 0x03));
		e.addr[2] = (uint8_t)(x >> 16) & 0x3f;
		e.addr[3] = (uint8_t)(x >> 24) & 0x3f;
		e.identity = 500000 + (uint32_t)(x >> 40);
		if (x & 2) {
			if (mg_ipcache_put(ipc, &e) != 0)
				return -1;
		} else {
			int rc = mg_ipcache_del(ipc, e.family, e.addr, e.plen);

			if (rc != 0 && rc != -ENOENT)
				return -1;
		}
	}
	return 0;
}

static void
test_concurrent_batches(void)
{
	struct shared sh;
	struct reader rd[READERS];
	struct mg_ipcache_params p = {0, true, NULL};
	uint64_t churn = 0x9e3779b97f4a7c15ull, t0;
	uint32_t g;
	bool ok = true;

	memset(&sh, 0, sizeof(sh));
	memset(rd, 0, sizeof(rd));
	for (unsigned i = 0; i < K; i++) {
		make_probe(&set_a[i], 0, i);
		make_probe(&set_b[i], 1, i);
	}
	make_world();
	sh.q = qsbr_new(READERS);
	CU_ASSERT_PTR_NOT_NULL_FATAL(sh.q);
	p.qsbr = sh.q;
	sh.ipc = mg_ipcache_create(&p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(sh.ipc);
	/* Generation 0 is committed before any reader starts. */
	CU_ASSERT_EQUAL_FATAL(stage_batch(sh.ipc, 0, &churn), 0);
	CU_ASSERT_FATAL(mg_ipcache_commit(sh.ipc) > 0);

	for (unsigned i = 0; i < READERS; i++) {
		rd[i].tid = i;
		rd[i].sh = &sh;
		CU_ASSERT_EQUAL_FATAL(pthread_create(&rd[i].th, NULL, reader_main, &rd[i]), 0);
	}
	t0 = mg_time_ns();
	for (g = 1; g < MAX_BATCHES && mg_time_ns() - t0 < RUN_NS && ok; g++) {
		ok = stage_batch(sh.ipc, g, &churn) == 0 && mg_ipcache_commit(sh.ipc) > 0;
		__atomic_store_n(&sh.committed, g, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&sh.stop, true, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < READERS; i++)
		pthread_join(rd[i].th, NULL);

	CU_ASSERT_TRUE(ok);
	/* Both copies hold the same entries and miss filters, matching the records. */
	CU_ASSERT_EQUAL(mg_ipcache_verify(sh.ipc), 0);
	printf("# stress: %u batches (%.0f per s), %zu entries at the end\n", g - 1,
	       (double)(g - 1) * 1e9 / (double)(mg_time_ns() - t0), mg_ipcache_count(sh.ipc, 0));
	CU_ASSERT(g > 50);
	for (unsigned i = 0; i < READERS; i++) {
		printf("# reader %u: %lu views, %lu lookups, generations %u..%u (%u distinct), "
		       "torn %lu, stale %lu, bad %lu, wrong world %lu\n",
		       i, (unsigned long)rd[i].views, (unsigned long)rd[i].lookups, rd[i].first_gen,
		       rd[i].last_gen, rd[i].gens_seen, (unsigned long)rd[i].torn,
		       (unsigned long)rd[i].stale, (unsigned long)rd[i].bad_value,
		       (unsigned long)rd[i].bad_world);
		CU_ASSERT_EQUAL(rd[i].torn, 0);
		CU_ASSERT_EQUAL(rd[i].stale, 0);
		CU_ASSERT_EQUAL(rd[i].bad_value, 0);
		CU_ASSERT_EQUAL(rd[i].bad_world, 0);
		CU_ASSERT(rd[i].lookups > 10000);
		CU_ASSERT(rd[i].gens_seen > 10);
		CU_ASSERT(rd[i].last_gen > rd[i].first_gen);
	}
	mg_ipcache_free(sh.ipc);
	free(sh.q);
}

/* A reader that holds its view must hold up the commit: the grace period is real. */
struct holder {
	struct rte_rcu_qsbr *q;
	struct mg_ipcache *ipc;
	uint32_t seen;
	int ready;       /* atomic */
	int commit_done; /* atomic */
};

static void *
holder_main(void *arg)
{
	struct holder *h = arg;
	const struct mg_ipcache_view *v;
	uint8_t a[4] = {10, 0, 0, 1};
	struct timespec ts = {0, 300 * 1000 * 1000};

	rte_rcu_qsbr_thread_register(h->q, 0);
	rte_rcu_qsbr_thread_online(h->q, 0);
	v = mg_ipcache_reader(h->ipc);
	__atomic_store_n(&h->ready, 1, __ATOMIC_RELEASE);
	nanosleep(&ts, NULL);
	/* The writer has published a new copy, but this view is untouched. */
	h->seen = mg_ipcache_lookup(v, AF_INET, a);
	rte_rcu_qsbr_quiescent(h->q, 0);
	/*
	 * Stay registered until the commit is over, so that the writer sees
	 * the quiescent report rather than the unregistration (which happens
	 * inside librte_rcu, where ThreadSanitizer cannot see its barrier).
	 */
	while (!__atomic_load_n(&h->commit_done, __ATOMIC_ACQUIRE))
		usleep(1000);
	rte_rcu_qsbr_thread_offline(h->q, 0);
	rte_rcu_qsbr_thread_unregister(h->q, 0);
	return NULL;
}

static void
test_commit_waits_for_readers(void)
{
	struct holder h;
	struct mg_ipcache_params p = {0, false, NULL};
	struct mg_ipcache_entry e;
	uint8_t a[4] = {10, 0, 0, 1};
	pthread_t th;
	uint64_t t0, waited;

	memset(&h, 0, sizeof(h));
	h.q = qsbr_new(1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h.q);
	p.qsbr = h.q;
	h.ipc = mg_ipcache_create(&p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h.ipc);
	memset(&e, 0, sizeof(e));
	CU_ASSERT_EQUAL(mg_ipcache_parse_prefix("10.0.0.0/8", &e), 0);
	e.identity = 111;
	CU_ASSERT_EQUAL(mg_ipcache_put(h.ipc, &e), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(h.ipc), 1);

	CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, holder_main, &h), 0);
	while (!__atomic_load_n(&h.ready, __ATOMIC_ACQUIRE))
		usleep(1000);
	e.identity = 222;
	CU_ASSERT_EQUAL(mg_ipcache_put(h.ipc, &e), 0);
	t0 = mg_time_ns();
	CU_ASSERT_EQUAL(mg_ipcache_commit(h.ipc), 1);
	waited = mg_time_ns() - t0;
	__atomic_store_n(&h.commit_done, 1, __ATOMIC_RELEASE);
	/* New readers see the new value as soon as commit returns... */
	CU_ASSERT_EQUAL(mg_ipcache_lookup(mg_ipcache_reader(h.ipc), AF_INET, a), 222);
	pthread_join(th, NULL);
	/* ...and the commit waited for the reader holding the old copy, which stayed intact. */
	CU_ASSERT(waited > 200ull * 1000 * 1000);
	CU_ASSERT_EQUAL(h.seen, 111);
	mg_ipcache_free(h.ipc);
	free(h.q);
}

/* ---- {view, policy} snapshots: the data path's publication protocol ---- */

#define PAIR_LIVE 8          /* rounds whose hosts a view holds */
#define PAIR_HOSTS 4         /* host routes each round adds */
#define PAIR_ID_BASE 100000u /* round r's hosts get identity PAIR_ID_BASE + r */
#define POL_ALIVE 0x600dcafeu
#define POL_DEAD 0xdeadbeefu

/* A stand-in for a compiled policy: the identities it knows. */
struct fake_policy {
	uint32_t magic; /* POL_ALIVE until freed */
	unsigned n;
	uint32_t ids[PAIR_LIVE];
};

struct pair {
	const struct mg_ipcache_view *view;
	struct fake_policy *pol;
};

struct pair_shared {
	struct mg_ipcache *ipc;
	struct rte_rcu_qsbr *q;
	bool broken;             /* the old order: view and policy published apart */
	struct pair slots[2];    /* correct order: the snapshot slots */
	struct pair *cur;        /* correct order: what readers load (atomic) */
	struct fake_policy *pol; /* broken order: the policy pointer (atomic) */
	uint32_t round;          /* highest round that may be published (atomic) */
	bool stop;               /* atomic */
};

struct pair_reader {
	pthread_t th;
	unsigned tid;
	struct pair_shared *sh;
	uint64_t views, checked, unknown, freed;
};

static void
pair_addr(uint32_t round, unsigned i, uint8_t *a)
{
	uint32_t idx = (round * PAIR_HOSTS + i) & 0xffff;

	a[0] = 10;
	a[1] = 200;
	a[2] = (uint8_t)(idx >> 8);
	a[3] = (uint8_t)idx;
}

static bool
pol_knows(const struct fake_policy *pol, uint32_t id)
{
	for (unsigned i = 0; i < pol->n; i++)
		if (pol->ids[i] == id)
			return true;
	return false;
}

/* The policy that goes with round @r's view: the identities of its live hosts. */
static struct fake_policy *
pol_new(uint32_t r)
{
	struct fake_policy *pol = calloc(1, sizeof(*pol));

	if (pol == NULL)
		return NULL;
	pol->magic = POL_ALIVE;
	for (uint32_t k = r >= PAIR_LIVE - 1 ? r - (PAIR_LIVE - 1) : 0; k <= r; k++)
		pol->ids[pol->n++] = PAIR_ID_BASE + k;
	return pol;
}

static void
pol_free(struct fake_policy *pol)
{
	if (pol == NULL)
		return;
	pol->magic = POL_DEAD;
	free(pol);
}

static void
wait_grace(struct rte_rcu_qsbr *q)
{
	uint64_t token = rte_rcu_qsbr_start(q);

	while (rte_rcu_qsbr_check(q, token, false) == 0)
		sched_yield();
}

static void *
pair_reader_main(void *arg)
{
	struct pair_reader *r = arg;
	struct pair_shared *sh = r->sh;
	uint8_t a[4];

	rte_rcu_qsbr_thread_register(sh->q, r->tid);
	rte_rcu_qsbr_thread_online(sh->q, r->tid);
	while (!__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE)) {
		uint32_t top = __atomic_load_n(&sh->round, __ATOMIC_ACQUIRE) + 2;
		uint32_t low = top > PAIR_LIVE + 4 ? top - PAIR_LIVE - 4 : 0;
		const struct mg_ipcache_view *v;
		const struct fake_policy *pol;

		if (!sh->broken) {
			/* One load: the view and the policy published together. */
			const struct pair *p = __atomic_load_n(&sh->cur, __ATOMIC_ACQUIRE);

			v = p->view;
			pol = p->pol;
		} else {
			v = mg_ipcache_reader(sh->ipc);
			pol = __atomic_load_n(&sh->pol, __ATOMIC_ACQUIRE);
		}
		if (pol->magic != POL_ALIVE)
			r->freed++;
		for (uint32_t k = low; k <= top; k++) {
			for (unsigned i = 0; i < PAIR_HOSTS; i++) {
				uint32_t id;

				pair_addr(k, i, a);
				id = mg_ipcache_lookup(v, AF_INET, a);
				if (is_world(id))
					continue;
				r->checked++;
				if (!pol_knows(pol, id)) /* read by the writer: atomic */
					__atomic_add_fetch(&r->unknown, 1, __ATOMIC_RELAXED);
			}
		}
		r->views++;
		rte_rcu_qsbr_quiescent(sh->q, r->tid);
		if (r->views % 64 == 0)
			sched_yield();
	}
	rte_rcu_qsbr_thread_offline(sh->q, r->tid);
	rte_rcu_qsbr_thread_unregister(sh->q, r->tid);
	return NULL;
}

/* Round @r's batch: add its hosts with a brand-new identity, remove the oldest round's. */
static int
pair_stage(struct mg_ipcache *ipc, uint32_t r)
{
	struct mg_ipcache_entry e;

	memset(&e, 0, sizeof(e));
	e.family = AF_INET;
	e.plen = 32;
	for (unsigned i = 0; i < PAIR_HOSTS; i++) {
		pair_addr(r, i, e.addr);
		e.identity = PAIR_ID_BASE + r;
		if (mg_ipcache_put(ipc, &e) != 0)
			return -1;
		if (r >= PAIR_LIVE) {
			pair_addr(r - PAIR_LIVE, i, e.addr);
			if (mg_ipcache_del(ipc, AF_INET, e.addr, 32) != 0)
				return -1;
		}
	}
	return 0;
}

/* Publish round @r: the view and its policy, in the order @sh->broken says. */
static int
pair_publish(struct pair_shared *sh, uint32_t r)
{
	struct fake_policy *pol, *old;

	if (pair_stage(sh->ipc, r) != 0 || (pol = pol_new(r)) == NULL)
		return -1;
	__atomic_store_n(&sh->round, r, __ATOMIC_RELEASE);
	if (!sh->broken) {
		/* As mg_datapath_publish: prepare, one snapshot store, finish (grace), free. */
		struct pair *cur = sh->cur, *next = &sh->slots[cur == &sh->slots[0] ? 1 : 0];
		const struct mg_ipcache_view *v = mg_ipcache_commit_prepare(sh->ipc);

		if (v == NULL) {
			pol_free(pol);
			return -1;
		}
		next->view = v;
		next->pol = pol;
		old = cur->pol;
		__atomic_store_n(&sh->cur, next, __ATOMIC_RELEASE);
		if (mg_ipcache_commit_finish(sh->ipc) <= 0)
			return -1;
		pol_free(old);
		return 0;
	}
	/* The old daemon order: commit the view (its own grace period), then the policy. */
	if (mg_ipcache_commit(sh->ipc) <= 0) {
		pol_free(pol);
		return -1;
	}
	old = __atomic_exchange_n(&sh->pol, pol, __ATOMIC_ACQ_REL);
	wait_grace(sh->q);
	pol_free(old);
	return 0;
}

/*
 * Run the writer for up to @run_ns (or until a reader saw an unknown
 * identity, with @stop_on_unknown); sum the readers' findings into @out.
 */
static uint32_t
pair_run(bool broken, uint64_t run_ns, bool stop_on_unknown, struct pair_reader *out)
{
	struct mg_ipcache_params p = {0, true, NULL};
	struct pair_reader rd[READERS];
	struct pair_shared sh;
	uint32_t r = 0;
	uint64_t t0;
	bool ok = true;

	memset(&sh, 0, sizeof(sh));
	memset(rd, 0, sizeof(rd));
	memset(out, 0, sizeof(*out));
	sh.broken = broken;
	sh.q = qsbr_new(READERS);
	CU_ASSERT_PTR_NOT_NULL_FATAL(sh.q);
	p.qsbr = sh.q;
	sh.ipc = mg_ipcache_create(&p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(sh.ipc);
	/* Round 0 is published before any reader starts. */
	CU_ASSERT_EQUAL_FATAL(pair_stage(sh.ipc, 0), 0);
	CU_ASSERT_FATAL(mg_ipcache_commit(sh.ipc) > 0);
	sh.slots[0].view = mg_ipcache_reader(sh.ipc);
	sh.slots[0].pol = pol_new(0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(sh.slots[0].pol);
	sh.cur = &sh.slots[0];
	sh.pol = sh.slots[0].pol;

	for (unsigned i = 0; i < READERS; i++) {
		rd[i].tid = i;
		rd[i].sh = &sh;
		CU_ASSERT_EQUAL_FATAL(pthread_create(&rd[i].th, NULL, pair_reader_main, &rd[i]), 0);
	}
	t0 = mg_time_ns();
	while (ok && mg_time_ns() - t0 < run_ns) {
		uint64_t unknown = 0;

		ok = pair_publish(&sh, ++r) == 0;
		for (unsigned i = 0; i < READERS; i++)
			unknown += __atomic_load_n(&rd[i].unknown, __ATOMIC_RELAXED);
		if (stop_on_unknown && unknown > 0)
			break;
	}
	__atomic_store_n(&sh.stop, true, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < READERS; i++) {
		pthread_join(rd[i].th, NULL);
		out->views += rd[i].views;
		out->checked += rd[i].checked;
		out->unknown += rd[i].unknown;
		out->freed += rd[i].freed;
	}
	CU_ASSERT_TRUE(ok);
	pol_free(broken ? sh.pol : sh.cur->pol);
	mg_ipcache_free(sh.ipc);
	free(sh.q);
	printf("# pairs (%s order): %u rounds, %lu views, %lu identities checked, %lu unknown, "
	       "%lu freed policies seen\n",
	       broken ? "broken" : "one-snapshot", r, (unsigned long)out->views,
	       (unsigned long)out->checked, (unsigned long)out->unknown, (unsigned long)out->freed);
	return r;
}

/* The split commit + one snapshot: a view never names an identity its policy lacks. */
static void
test_view_policy_pairs(void)
{
	struct pair_reader sum;
	uint32_t rounds = pair_run(false, 2ull * 1000 * 1000 * 1000, false, &sum);

	CU_ASSERT(rounds > 50);
	CU_ASSERT(sum.checked > 10000);
	CU_ASSERT_EQUAL(sum.unknown, 0);
	CU_ASSERT_EQUAL(sum.freed, 0);
}

/*
 * The checker is real: with the view committed before the policy is
 * stored (the daemon's order before mg_datapath_publish), readers catch
 * a view paired with a policy that lacks its identities.
 */
static void
test_broken_order_detected(void)
{
	struct pair_reader sum;

	pair_run(true, 10ull * 1000 * 1000 * 1000, true, &sum);
	CU_ASSERT(sum.unknown > 0);
	CU_ASSERT_EQUAL(sum.freed, 0);
}

static CU_TestInfo tests[] = {
        {"commit_waits_for_readers", test_commit_waits_for_readers},
        {"concurrent_batches", test_concurrent_batches},
        {"view_policy_pairs", test_view_policy_pairs},
        {"broken_order_detected", test_broken_order_detected},
        CU_TEST_INFO_NULL,
};

MG_TEST_MAIN("ipcache_stress", tests)
