/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `meshgate-bench ipcache`: what one ipcache lookup costs as the table
 * grows from 1k to 1M entries, and what DPDK's own longest-prefix-match
 * tables cost on the same prefixes. It exists to check the ipcache's
 * promise, "one hash probe per host route, whatever the size", apart from
 * the rest of the pipeline: the hot set shows what a lookup costs while
 * its buckets stay in cache (flat, if the promise holds), the uniform set
 * what it costs when they are wherever the table puts them.
 *
 * Table, for N entries per family (one ipcache holds both families):
 *   IPv4  N host routes 10.0.0.0 + i (/32, dense like pod CIDRs),
 *         256 /24 (172.16.k.0/24), 16 /16 (172.32+k.0.0/16);
 *   IPv6  N host routes fd00:10:244::/96 + i (/128),
 *         256 /64 (fd00:20:0:k::/64), 16 /48 (fd00:30:k::/48).
 * So three prefix lengths per family: a host hit searches one table, a
 * miss all three.
 *
 * Address sets, each looked up in bursts of 32 (mg_ipcache_lookup_bulk)
 * and one by one (mg_ipcache_lookup), best of several rounds, TSC cycles
 * per lookup:
 *   hot      the same --hot (4096) host addresses, drawn once at random
 *            from the table, every round: a gateway with a few thousand
 *            active flows;
 *   uniform  --uniform (262144) host addresses drawn uniformly from the
 *            whole table: with a big table nearly every lookup misses the
 *            nearer caches;
 *   miss     as many random addresses in no prefix (100.64.0.0/10,
 *            2001:db8::/32): every length probed, result world. (A
 *            narrower range, such as 2^17 addresses, would hash onto few
 *            cache lines and look cheaper than misses are.)
 * Every result is checked against the expected identity (untimed pass);
 * any mismatch fails the run.
 *
 * DPDK, on the same prefixes and the same address sets: rte_lpm (IPv4;
 * its rule table is scanned linearly per depth on add, so building it is
 * quadratic in the /32 count and it is skipped above --lpm-max), rte_fib
 * (DIR24_8) and rte_fib6 (TRIE), bulk lookups of 32 (rte_lpm also one by
 * one). They need the EAL: `-l 0 --no-pci --file-prefix mgbench<pid>
 * --log-level=1`, plus `--no-huge -m 2048` when the machine has no free
 * hugepages. Then DPDK's tables are on 4 KB pages: the EAL's memory is a
 * memfd, which transparent huge pages cover only when the machine enables
 * them for shmem, whereas the ipcache's big tables are madvise(MADV_
 * HUGEPAGE)d anonymous memory (the "thp" figures say what each side got).
 * rte_fib6's trie took about 13 tbl8 groups per /128 host route, so it is
 * built only up to --fib6-max.
 * --no-dpdk skips all of it.
 *
 * `ipcache --writer` measures the other side, updates applied per second
 * while readers look up: bench_ipcache_writer.c.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_fib.h>
#include <rte_fib6.h>
/* rte_lpm_lookup_bulk() is inline and sizes a local array by its argument. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wvla"
#include <rte_lpm.h>
#pragma GCC diagnostic pop

#include "bench_ipcache.h"
#include "mg_common.h"
#include "mg_ipcache.h"
#include "mg_pkt.h"

#define BURST 32
#define N_P1 256                   /* /24 (IPv4) and /64 (IPv6) prefixes */
#define N_P2 16                    /* /16 (IPv4) and /48 (IPv6) prefixes */
#define ID_BASE ((1u << 16) + 256) /* cluster 1, first local identity */
#define ID_HOSTS 4000              /* host routes share this many identities */
#define ID_WORLD4 9                /* split_world: world-ipv4 */
#define ID_WORLD6 10               /* split_world: world-ipv6 */

enum {
	SET_HOT,
	SET_UNIFORM,
	SET_MISS,
	N_SETS
};
static const char *const set_name[N_SETS] = {"hot", "uniform", "miss"};

/* One set of addresses of one family, with what each must resolve to. */
struct aset {
	unsigned n; /* a multiple of BURST */
	uint8_t family;
	uint8_t (*a)[16];  /* addresses, network order (IPv4: first 4 bytes) */
	const uint8_t **p; /* p[i] = a[i], as mg_ipcache_lookup_bulk wants them */
	uint32_t *ip4;     /* IPv4 in host order, as rte_lpm / rte_fib want them */
	uint32_t *expect;  /* identity */
};

struct dpdk_tabs {
	struct rte_lpm *lpm;
	struct rte_fib *fib;
	struct rte_fib6 *fib6;
};

static uint64_t rng_state = 0x853c49e6748fea9bull;
static volatile uint64_t sink; /* keeps timed results alive */

static uint64_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static uint32_t
host_id(uint32_t i)
{
	return ID_BASE + i % ID_HOSTS;
}

/* Host route @i of @family, network order. */
static void
host_addr(uint8_t family, uint32_t i, uint8_t *a)
{
	memset(a, 0, 16);
	if (family == MG_AF_INET) {
		uint32_t be = __builtin_bswap32((10u << 24) + i);

		memcpy(a, &be, 4);
		return;
	}
	a[0] = 0xfd;
	a[3] = 0x10;
	a[4] = 0x02;
	a[5] = 0x44;
	a[12] = (uint8_t)(i >> 24);
	a[13] = (uint8_t)(i >> 16);
	a[14] = (uint8_t)(i >> 8);
	a[15] = (uint8_t)i;
}

/* Shorter prefix @k of kind @kind (1: /24 or /64, 2: /16 or /48). */
static void
short_prefix(uint8_t family, unsigned kind, unsigned k, uint8_t *a, uint8_t *plen, uint32_t *id)
{
	memset(a, 0, 16);
	if (family == MG_AF_INET) {
		a[0] = 172;
		a[1] = (uint8_t)(kind == 1 ? 16 : 32 + k);
		a[2] = (uint8_t)(kind == 1 ? k : 0);
		*plen = kind == 1 ? 24 : 16;
	} else {
		a[0] = 0xfd;
		a[3] = kind == 1 ? 0x20 : 0x30;
		if (kind == 1)
			a[7] = (uint8_t)k;
		else
			a[5] = (uint8_t)k;
		*plen = kind == 1 ? 64 : 48;
	}
	*id = ID_BASE + ID_HOSTS + (kind == 1 ? 0 : N_P1) + k;
}

static uint32_t
ip4_host(const uint8_t *a)
{
	uint32_t be;

	memcpy(&be, a, 4);
	return __builtin_bswap32(be);
}

/* AnonHugePages of this process, bytes (0 when unknown). */
static size_t
thp_bytes(void)
{
	char line[256];
	size_t kb = 0;
	FILE *f = fopen("/proc/self/smaps_rollup", "r");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "AnonHugePages: %zu kB", &kb) == 1)
			break;
	fclose(f);
	return kb * 1024;
}

/* ---- address sets ---- */

static void
aset_free(struct aset *s)
{
	free(s->a);
	free(s->p);
	free(s->ip4);
	free(s->expect);
	memset(s, 0, sizeof(*s));
}

static int
aset_make(struct aset *s, uint8_t family, unsigned kind, unsigned n, uint32_t entries)
{
	memset(s, 0, sizeof(*s));
	s->n = n;
	s->family = family;
	s->a = calloc(n, 16);
	s->p = calloc(n, sizeof(*s->p));
	s->ip4 = calloc(n, sizeof(*s->ip4));
	s->expect = calloc(n, sizeof(*s->expect));
	if (s->a == NULL || s->p == NULL || s->ip4 == NULL || s->expect == NULL) {
		aset_free(s);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++) {
		uint8_t *a = s->a[i];

		if (kind == SET_MISS) {
			uint64_t r = rng();

			memset(a, 0, 16);
			if (family == MG_AF_INET) {
				uint32_t be = __builtin_bswap32((100u << 24 | 64u << 16) +
				                                (uint32_t)(r & 0x3fffff));

				memcpy(a, &be, 4);
			} else {
				uint64_t r2 = rng();

				a[0] = 0x20;
				a[1] = 0x01;
				a[2] = 0x0d;
				a[3] = 0xb8;
				memcpy(a + 4, &r, 8);
				memcpy(a + 12, &r2, 4);
			}
			s->expect[i] = family == MG_AF_INET ? ID_WORLD4 : ID_WORLD6;
		} else {
			uint32_t h = (uint32_t)(rng() % entries);

			host_addr(family, h, a);
			s->expect[i] = host_id(h);
		}
		s->p[i] = a;
		s->ip4[i] = ip4_host(a);
	}
	return 0;
}

/* ---- the ipcache ---- */

static struct mg_ipcache *
ipcache_build(uint32_t entries)
{
	struct mg_ipcache_params ip = {.entries_hint = entries, .split_world = true};
	struct mg_ipcache *ipc = mg_ipcache_create(&ip);
	static const uint8_t fams[2] = {MG_AF_INET, MG_AF_INET6};

	if (ipc == NULL)
		return NULL;
	for (unsigned f = 0; f < 2; f++) {
		struct mg_ipcache_entry e = {.family = fams[f], .cluster_id = 1};

		for (uint32_t i = 0; i < entries; i++) {
			host_addr(fams[f], i, e.addr);
			e.plen = fams[f] == MG_AF_INET ? 32 : 128;
			e.identity = host_id(i);
			if (mg_ipcache_put(ipc, &e) < 0)
				goto err;
		}
		for (unsigned kind = 1; kind <= 2; kind++)
			for (unsigned k = 0; k < (kind == 1 ? N_P1 : N_P2); k++) {
				short_prefix(fams[f], kind, k, e.addr, &e.plen, &e.identity);
				if (mg_ipcache_put(ipc, &e) < 0)
					goto err;
			}
	}
	if (mg_ipcache_commit(ipc) < 0)
		goto err;
	return ipc;
err:
	mg_ipcache_free(ipc);
	return NULL;
}

/* Best-of-@rounds cycles per lookup of @s through the ipcache. */
static double
time_ipcache(const struct mg_ipcache_view *v, const struct aset *s, bool bulk, unsigned rounds)
{
	uint8_t fam[BURST];
	uint32_t ids[BURST];
	uint64_t best = UINT64_MAX, acc = 0;

	memset(fam, s->family, sizeof(fam));
	for (unsigned r = 0; r < rounds; r++) {
		uint64_t t0 = rte_rdtsc_precise(), t1;

		if (bulk) {
			for (unsigned i = 0; i < s->n; i += BURST) {
				mg_ipcache_lookup_bulk(v, fam, s->p + i, ids, BURST);
				acc += ids[BURST - 1];
			}
		} else {
			for (unsigned i = 0; i < s->n; i++)
				acc += mg_ipcache_lookup(v, s->family, s->p[i]);
		}
		t1 = rte_rdtsc_precise();
		if (t1 - t0 < best)
			best = t1 - t0;
	}
	sink += acc;
	return (double)best / s->n;
}

static unsigned
check_ipcache(const struct mg_ipcache_view *v, const struct aset *s)
{
	unsigned bad = 0;
	uint8_t fam[BURST];
	uint32_t ids[BURST];

	memset(fam, s->family, sizeof(fam));
	for (unsigned i = 0; i < s->n; i += BURST) {
		mg_ipcache_lookup_bulk(v, fam, s->p + i, ids, BURST);
		for (unsigned j = 0; j < BURST; j++)
			bad += ids[j] != s->expect[i + j] ||
			       mg_ipcache_lookup(v, s->family, s->p[i + j]) != s->expect[i + j];
	}
	return bad;
}

/* ---- DPDK ---- */

static bool
have_hugepages(void)
{
	char line[256];
	unsigned long freep = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	if (f == NULL)
		return false;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "HugePages_Free: %lu", &freep) == 1)
			break;
	fclose(f);
	return freep >= 512; /* 1 GB of 2 MB pages */
}

static int
eal_start(void)
{
	char prefix[64];
	char *argv[16];
	int argc = 0;
	bool huge = have_hugepages();

	snprintf(prefix, sizeof(prefix), "--file-prefix=mgbench%ld", (long)getpid());
	argv[argc++] = (char *)"meshgate-bench";
	argv[argc++] = (char *)"-l";
	argv[argc++] = (char *)"0";
	if (!huge) {
		argv[argc++] = (char *)"--no-huge";
		argv[argc++] = (char *)"-m";
		argv[argc++] = (char *)"2048";
	}
	argv[argc++] = (char *)"--no-pci";
	argv[argc++] = prefix;
	argv[argc++] = (char *)"--log-level=1";
	argv[argc] = NULL;
	if (rte_eal_init(argc, argv) < 0) {
		fprintf(stderr, "ipcache: EAL: %s\n", rte_strerror(rte_errno));
		return -1;
	}
	printf("dpdk      EAL %s\n",
	       huge ? "on hugepages"
	            : "--no-huge -m 2048: DPDK's tables are on 4 KB pages (the EAL's memory is a "
	              "memfd, which transparent huge pages cover only with shmem_enabled)");
	return 0;
}

static void
dpdk_free(struct dpdk_tabs *d)
{
	rte_lpm_free(d->lpm);
	rte_fib_free(d->fib);
	rte_fib6_free(d->fib6);
	memset(d, 0, sizeof(*d));
}

/* Add every prefix of @family to one DPDK table through @add; false when one fails. */
static bool
dpdk_fill(uint8_t family, uint32_t entries, void *tab,
          int (*add)(void *tab, const uint8_t *a, uint8_t plen, uint32_t id))
{
	uint8_t a[16], plen;
	uint32_t id;

	for (uint32_t i = 0; i < entries; i++) {
		host_addr(family, i, a);
		if (add(tab, a, family == MG_AF_INET ? 32 : 128, host_id(i)) < 0)
			return false;
	}
	for (unsigned kind = 1; kind <= 2; kind++)
		for (unsigned k = 0; k < (kind == 1 ? N_P1 : N_P2); k++) {
			short_prefix(family, kind, k, a, &plen, &id);
			if (add(tab, a, plen, id) < 0)
				return false;
		}
	return true;
}

static int
add_lpm(void *tab, const uint8_t *a, uint8_t plen, uint32_t id)
{
	return rte_lpm_add(tab, ip4_host(a), plen, id);
}

static int
add_fib(void *tab, const uint8_t *a, uint8_t plen, uint32_t id)
{
	return rte_fib_add(tab, ip4_host(a), plen, id);
}

static int
add_fib6(void *tab, const uint8_t *a, uint8_t plen, uint32_t id)
{
	return rte_fib6_add(tab, a, plen, id);
}

/*
 * The same prefixes in rte_lpm (when @with_lpm), rte_fib and rte_fib6
 * (when @with_fib6); a table that fails stays NULL. @secs gets each
 * one's build time.
 */
static void
dpdk_build(struct dpdk_tabs *d, uint32_t entries, bool with_lpm, bool with_fib6, double secs[3])
{
	struct rte_lpm_config lc = {.max_rules = entries + N_P1 + N_P2,
	                            .number_tbl8s = entries / 256 + 1024};
	struct rte_fib_conf fc = {
	        .type = RTE_FIB_DIR24_8,
	        .default_nh = ID_WORLD4,
	        .max_routes = (int)(entries + N_P1 + N_P2),
	        .dir24_8 = {.nh_sz = RTE_FIB_DIR24_8_4B, .num_tbl8 = entries / 256 + 1024}};
	/* The trie took about 13 tbl8 groups per /128 host route of this table. */
	struct rte_fib6_conf f6 = {
	        .type = RTE_FIB6_TRIE,
	        .default_nh = ID_WORLD6,
	        .max_routes = (int)(entries + N_P1 + N_P2),
	        .trie = {.nh_sz = RTE_FIB6_TRIE_4B, .num_tbl8 = entries * 14 + 16384}};
	uint64_t t = mg_time_ns();

	memset(d, 0, sizeof(*d));
	d->lpm = with_lpm ? rte_lpm_create("mgbench_lpm", SOCKET_ID_ANY, &lc) : NULL;
	if (d->lpm != NULL && !dpdk_fill(MG_AF_INET, entries, d->lpm, add_lpm)) {
		rte_lpm_free(d->lpm);
		d->lpm = NULL;
	}
	secs[0] = (double)(mg_time_ns() - t) / 1e9;
	t = mg_time_ns();
	d->fib = rte_fib_create("mgbench_fib", SOCKET_ID_ANY, &fc);
	if (d->fib != NULL && !dpdk_fill(MG_AF_INET, entries, d->fib, add_fib)) {
		rte_fib_free(d->fib);
		d->fib = NULL;
	}
	secs[1] = (double)(mg_time_ns() - t) / 1e9;
	t = mg_time_ns();
	d->fib6 = with_fib6 ? rte_fib6_create("mgbench_fib6", SOCKET_ID_ANY, &f6) : NULL;
	if (d->fib6 != NULL && !dpdk_fill(MG_AF_INET6, entries, d->fib6, add_fib6)) {
		rte_fib6_free(d->fib6);
		d->fib6 = NULL;
	}
	secs[2] = (double)(mg_time_ns() - t) / 1e9;
}

/* rte_lpm reports a miss as a lookup without the success flag: that is world. */
static uint32_t
lpm_id(uint32_t nh)
{
	return nh & RTE_LPM_LOOKUP_SUCCESS ? nh & 0xffffff : ID_WORLD4;
}

static double
time_lpm(struct rte_lpm *lpm, const struct aset *s, bool bulk, unsigned rounds)
{
	uint32_t nh[BURST];
	uint64_t best = UINT64_MAX, acc = 0;

	for (unsigned r = 0; r < rounds; r++) {
		uint64_t t0 = rte_rdtsc_precise(), t1;

		if (bulk) {
			for (unsigned i = 0; i < s->n; i += BURST) {
				rte_lpm_lookup_bulk(lpm, s->ip4 + i, nh, BURST);
				acc += nh[BURST - 1];
			}
		} else {
			for (unsigned i = 0; i < s->n; i++) {
				nh[0] = 0;
				rte_lpm_lookup(lpm, s->ip4[i], &nh[0]);
				acc += nh[0];
			}
		}
		t1 = rte_rdtsc_precise();
		if (t1 - t0 < best)
			best = t1 - t0;
	}
	sink += acc;
	return (double)best / s->n;
}

/* rte_fib / rte_fib6 bulk lookups (the only form they have). */
static double
time_fib(const struct dpdk_tabs *d, const struct aset *s, unsigned rounds)
{
	uint64_t nh[BURST];
	uint64_t best = UINT64_MAX, acc = 0;

	for (unsigned r = 0; r < rounds; r++) {
		uint64_t t0 = rte_rdtsc_precise(), t1;

		for (unsigned i = 0; i < s->n; i += BURST) {
			if (s->family == MG_AF_INET)
				rte_fib_lookup_bulk(d->fib, s->ip4 + i, nh, BURST);
			else
				rte_fib6_lookup_bulk(d->fib6, s->a + i, nh, BURST);
			acc += nh[BURST - 1];
		}
		t1 = rte_rdtsc_precise();
		if (t1 - t0 < best)
			best = t1 - t0;
	}
	sink += acc;
	return (double)best / s->n;
}

/* Mismatches of every DPDK table present against @s's expected identities. */
static unsigned
check_dpdk(const struct dpdk_tabs *d, const struct aset *s)
{
	unsigned bad = 0;

	for (unsigned i = 0; i < s->n; i += BURST) {
		uint32_t nh[BURST];
		uint64_t nh64[BURST];

		if (s->family == MG_AF_INET && d->lpm != NULL) {
			rte_lpm_lookup_bulk(d->lpm, s->ip4 + i, nh, BURST);
			for (unsigned j = 0; j < BURST; j++)
				bad += lpm_id(nh[j]) != s->expect[i + j];
		}
		if (s->family == MG_AF_INET && d->fib != NULL) {
			rte_fib_lookup_bulk(d->fib, s->ip4 + i, nh64, BURST);
			for (unsigned j = 0; j < BURST; j++)
				bad += nh64[j] != s->expect[i + j];
		}
		if (s->family == MG_AF_INET6 && d->fib6 != NULL) {
			rte_fib6_lookup_bulk(d->fib6, s->a + i, nh64, BURST);
			for (unsigned j = 0; j < BURST; j++)
				bad += nh64[j] != s->expect[i + j];
		}
	}
	return bad;
}

/* ---- driver ---- */

struct opts {
	unsigned hot, uniform, rounds;
	uint32_t lpm_max, fib6_max;
	bool dpdk;
};

static int
bench_size(uint32_t entries, const struct opts *o)
{
	static const uint8_t fams[2] = {MG_AF_INET, MG_AF_INET6};
	struct aset sets[2][N_SETS];
	struct dpdk_tabs d = {0};
	struct mg_ipcache *ipc;
	const struct mg_ipcache_view *v;
	size_t thp0 = thp_bytes(), thp_ipc, thp_dpdk = 0;
	uint64_t n0 = mg_time_ns(), n1;
	double dsecs[3] = {0};
	unsigned bad = 0;
	int rc = 0;

	memset(sets, 0, sizeof(sets));
	ipc = ipcache_build(entries);
	if (ipc == NULL) {
		fprintf(stderr, "ipcache: building %u entries: %s\n", entries, strerror(errno));
		return 1;
	}
	n1 = mg_time_ns();
	thp_ipc = thp_bytes() - thp0;
	v = mg_ipcache_reader(ipc);
	for (unsigned f = 0; f < 2 && rc == 0; f++)
		for (unsigned k = 0; k < N_SETS && rc == 0; k++)
			rc = aset_make(&sets[f][k], fams[f], k, k == SET_HOT ? o->hot : o->uniform,
			               entries);
	if (rc != 0) {
		fprintf(stderr, "ipcache: %s\n", strerror(-rc));
		goto out;
	}
	if (o->dpdk) {
		size_t t = thp_bytes();

		dpdk_build(&d, entries, entries <= o->lpm_max, entries <= o->fib6_max, dsecs);
		thp_dpdk = thp_bytes() - t;
	}
	printf("\nipcache   entries=%u per family: ipv4 %u /32 + %u /24 + %u /16, ipv6 %u /128 + "
	       "%u "
	       "/64 + %u /48; built in %.2f s, %zu MiB (mg_ipcache_memory), thp %zu MiB\n",
	       entries, entries, N_P1, N_P2, entries, N_P1, N_P2, (double)(n1 - n0) / 1e9,
	       mg_ipcache_memory(ipc) >> 20, thp_ipc >> 20);
	if (o->dpdk) {
		const char *lpm = d.lpm != NULL          ? "built"
		                  : entries > o->lpm_max ? "skipped"
		                                         : "FAILED";
		const char *fib = d.fib != NULL ? "built" : "FAILED";
		const char *fib6 = d.fib6 != NULL          ? "built"
		                   : entries > o->fib6_max ? "skipped"
		                                           : "FAILED";

		printf("dpdk      rte_lpm %s in %.2f s, rte_fib %s in %.2f s, rte_fib6 %s in %.2f "
		       "s; "
		       "thp %zu MiB\n",
		       lpm, dsecs[0], fib, dsecs[1], fib6, dsecs[2], thp_dpdk >> 20);
	}
	for (unsigned f = 0; f < 2; f++)
		for (unsigned k = 0; k < N_SETS; k++) {
			const struct aset *s = &sets[f][k];
			unsigned rounds = k == SET_HOT ? o->rounds * 20 : o->rounds;
			char dp[160] = "";

			bad += check_ipcache(v, s);
			if (o->dpdk)
				bad += check_dpdk(&d, s);
			if (f == 0 && d.lpm != NULL)
				snprintf(dp, sizeof(dp), " | rte_lpm bulk %6.1f single %6.1f",
				         time_lpm(d.lpm, s, true, rounds),
				         time_lpm(d.lpm, s, false, rounds));
			else if (f == 0 && o->dpdk)
				snprintf(dp, sizeof(dp), " | rte_lpm      -             -   ");
			if (f == 0 && d.fib != NULL)
				snprintf(dp + strlen(dp), sizeof(dp) - strlen(dp),
				         " | rte_fib bulk %6.1f", time_fib(&d, s, rounds));
			if (f == 1 && d.fib6 != NULL)
				snprintf(dp + strlen(dp), sizeof(dp) - strlen(dp),
				         " | rte_fib6 bulk %6.1f", time_fib(&d, s, rounds));
			printf("ipcache   %s entries=%-8u %-7s %6u addrs  bulk %6.1f single "
			       "%6.1f%s  "
			       "cycles/lookup\n",
			       f == 0 ? "ipv4" : "ipv6", entries, set_name[k], s->n,
			       time_ipcache(v, s, true, rounds), time_ipcache(v, s, false, rounds),
			       dp);
		}
	printf("check     %u wrong results (ipcache bulk and single%s vs expected)\n", bad,
	       o->dpdk ? ", rte_lpm, rte_fib, rte_fib6" : "");
	if (bad != 0)
		rc = 1;
out:
	for (unsigned f = 0; f < 2; f++)
		for (unsigned k = 0; k < N_SETS; k++)
			aset_free(&sets[f][k]);
	dpdk_free(&d);
	mg_ipcache_free(ipc);
	return rc;
}

static void
usage(FILE *out)
{
	fprintf(out,
	        "usage: meshgate-bench ipcache [--entries N[,N...]] [--hot N] [--uniform N] "
	        "[--rounds N] [--lpm-max N] [--fib6-max N] [--no-dpdk]\n"
	        "  --entries  table sizes, entries per family (1000,10000,100000,1000000)\n"
	        "  --hot      addresses of the hot set, the same every round (4096)\n"
	        "  --uniform  addresses per round drawn uniformly from the table, and misses "
	        "(262144)\n"
	        "  --rounds   best of N rounds (10; the hot set gets 20 x N)\n"
	        "  --lpm-max  build rte_lpm only up to N entries (100000): its add is O(N) per "
	        "rule\n"
	        "  --fib6-max build rte_fib6 only up to N entries (10000): its trie takes about 13 "
	        "tbl8 groups per /128 here\n"
	        "  --no-dpdk  no EAL, no rte_lpm/rte_fib/rte_fib6\n"
	        "       meshgate-bench ipcache --writer [--entries N[,N...]] [--batch N[,N...]] "
	        "[--seconds S] [--readers N] [--no-pin]\n"
	        "  updates/s the writer applies while readers look up (ipcache --writer --help)\n");
}

int
mg_bench_ipcache(int argc, char **argv)
{
	static const struct option lopts[] = {
	        {"entries", required_argument, NULL, 'e'},
	        {"hot", required_argument, NULL, 'H'},
	        {"uniform", required_argument, NULL, 'u'},
	        {"rounds", required_argument, NULL, 'r'},
	        {"lpm-max", required_argument, NULL, 'L'},
	        {"fib6-max", required_argument, NULL, 'F'},
	        {"no-dpdk", no_argument, NULL, 'n'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct opts o = {.hot = 4096,
	                 .uniform = 262144,
	                 .rounds = 10,
	                 .lpm_max = 100000,
	                 .fib6_max = 10000,
	                 .dpdk = true};
	const char *entries = "1000,10000,100000,1000000";
	char *list, *save = NULL, *tok;
	int opt, rc = 0;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--writer") == 0)
			return mg_bench_ipcache_writer(argc, argv);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'e':
			entries = optarg;
			break;
		case 'H':
			o.hot = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'u':
			o.uniform = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'r':
			o.rounds = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'L':
			o.lpm_max = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'F':
			o.fib6_max = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'n':
			o.dpdk = false;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	/* Whole bursts only, so every timed call is a full burst of 32. */
	o.hot -= o.hot % BURST;
	o.uniform -= o.uniform % BURST;
	if (o.hot == 0 || o.uniform == 0 || o.rounds == 0) {
		usage(stderr);
		return 2;
	}
	if (o.dpdk && eal_start() < 0)
		return 1;
	printf("ipcache   lookups in bursts of %u (bulk) and one by one (single), TSC cycles, best "
	       "of %u rounds (hot: %u); hot = %u host addresses drawn once, uniform = %u drawn "
	       "from the whole table, miss = %u in no prefix\n",
	       BURST, o.rounds, o.rounds * 20, o.hot, o.uniform, o.uniform);
	list = strdup(entries);
	if (list == NULL)
		return 1;
	for (tok = strtok_r(list, ",", &save); tok != NULL && rc == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		uint32_t n = (uint32_t)strtoul(tok, NULL, 0);

		if (n == 0 || n > (1u << 24)) {
			fprintf(stderr, "ipcache: --entries: %s: 1 to 2^24\n", tok);
			rc = 2;
			break;
		}
		rc = bench_size(n, &o);
	}
	free(list);
	if (o.dpdk)
		rte_eal_cleanup();
	return rc;
}
