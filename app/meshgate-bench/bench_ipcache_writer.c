/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `meshgate-bench ipcache --writer`: how many updates per second the
 * ipcache's single writer applies (staged with mg_ipcache_put/del and
 * published with mg_ipcache_commit) while reader threads keep looking up,
 * as the workers do while the sync client applies a backlog. It measures
 * the ipcache alone: no Redis, no decoding, no policy.
 *
 * Table: --entries in all, half IPv4 host routes (10.0.0.0 + i, /32), half
 * IPv6 (fd00:10:244::/96 + i, /128), the project's usual workload. The
 * updates draw a prefix uniformly from a universe of entries + 1/20 more:
 * a present one is moved to another identity (95 %) or deleted (5 %), an
 * absent one is put back with a new identity; so about 90 % moves, 5 %
 * new puts and 5 % deletes, and the table keeps its size. Every --batch
 * updates are committed (the sync client commits each XREAD's batch of up
 * to 1000); each batch size runs for --seconds.
 *
 * Readers (--readers, default 1): threads registered with the RCU QSBR
 * variable the ipcache was created with, like workers: take the view
 * (mg_ipcache_reader), look up a burst of 32 addresses drawn from the
 * universe (mg_ipcache_lookup_bulk), report a quiescent state, again.
 * Each result must be a host identity or world (anything else fails the
 * run). Their lookups/s are given with the writer idle and while it
 * writes. Like the data path's lcores, the writer is pinned to the first
 * CPU the process may use and reader i to the (i+1)-th (wrapping), unless
 * --no-pin: a reader that shares a CPU with the writer reports its
 * quiescent states only when the scheduler runs it, and the grace periods
 * then measure the scheduler.
 *
 * Figures per batch size: updates and commits per second of wall time,
 * the largest commit, and where the writer's time went: staging (put/del)
 * and commit (mg_ipcache_commit: both copies, the records and the grace
 * period), in ns per update, as wall time and as the writer thread's CPU
 * time. On a shared machine the CPU time is the steadier figure: it leaves
 * out the time the writer was preempted (and the time it yielded waiting
 * for a reader), so it is what the writer's code costs.
 *
 * After each batch size the writer checks the table against a model of
 * what it staged: mg_ipcache_count, the lookup of every prefix of the
 * universe in the published copy, mg_ipcache_get of a sample, and
 * mg_ipcache_verify (both copies agree with the records). A failed check
 * fails the run.
 */
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_pause.h>
#include <rte_rcu_qsbr.h>

#include "bench_ipcache.h"
#include "mg_common.h"
#include "mg_ipcache.h"
#include "mg_pkt.h"

#define W_BURST 32
#define W_ADDRS 65536u               /* addresses each reader cycles through */
#define W_ID_BASE ((1u << 16) + 256) /* cluster 1, first local identity */
#define W_IDS 4000u                  /* identities the host routes move between */
#define W_MAX_READERS 16u

struct wctx {
	struct mg_ipcache *ipc;
	struct rte_rcu_qsbr *q;
	uint32_t universe; /* prefixes 0 .. universe-1: even IPv4, odd IPv6 */
	uint32_t *model;   /* identity staged for each prefix, 0 = absent */
	uint32_t present;
	uint64_t rng;
	bool stop; /* atomic */
};

struct wreader {
	pthread_t th;
	unsigned tid;
	int cpu; /* -1: not pinned */
	struct wctx *c;
	uint64_t lookups; /* atomic: written by the reader, sampled by the writer */
	uint64_t bad;     /* atomic */
};

static uint64_t
wrng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Prefix @i of the universe: family and host address (network order). */
static uint8_t
w_prefix(uint32_t i, uint8_t *a)
{
	uint32_t h = i / 2;

	memset(a, 0, 16);
	if (i % 2 == 0) {
		uint32_t be = __builtin_bswap32((10u << 24) + h);

		memcpy(a, &be, 4);
		return MG_AF_INET;
	}
	a[0] = 0xfd;
	a[3] = 0x10;
	a[4] = 0x02;
	a[5] = 0x44;
	a[12] = (uint8_t)(h >> 24);
	a[13] = (uint8_t)(h >> 16);
	a[14] = (uint8_t)(h >> 8);
	a[15] = (uint8_t)h;
	return MG_AF_INET6;
}

static bool
w_id_ok(uint32_t id)
{
	return (id >= W_ID_BASE && id < W_ID_BASE + W_IDS) || id == 9 || id == 10;
}

static void *
w_reader_main(void *arg)
{
	struct wreader *r = arg;
	struct wctx *c = r->c;
	uint8_t(*a)[16] = calloc(W_ADDRS, 16);
	const uint8_t **p = calloc(W_ADDRS, sizeof(*p));
	uint8_t *fam = calloc(W_ADDRS, 1);
	uint64_t s = 0x2545f4914f6cdd1dull * (r->tid + 1), n = 0, bad = 0;
	uint32_t ids[W_BURST];

	if (a == NULL || p == NULL || fam == NULL) {
		__atomic_store_n(&r->bad, UINT64_MAX, __ATOMIC_RELAXED);
		goto out;
	}
	for (unsigned i = 0; i < W_ADDRS; i++) {
		fam[i] = w_prefix((uint32_t)(wrng(&s) % c->universe), a[i]);
		p[i] = a[i];
	}
	if (r->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(r->cpu, &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	rte_rcu_qsbr_thread_register(c->q, r->tid);
	rte_rcu_qsbr_thread_online(c->q, r->tid);
	for (unsigned i = 0; !__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE);
	     i = (i + W_BURST) % W_ADDRS) {
		const struct mg_ipcache_view *v = mg_ipcache_reader(c->ipc);

		mg_ipcache_lookup_bulk(v, fam + i, p + i, ids, W_BURST);
		for (unsigned j = 0; j < W_BURST; j++)
			bad += !w_id_ok(ids[j]);
		/* Done with v, as a worker is at the end of its loop. */
		rte_rcu_qsbr_quiescent(c->q, r->tid);
		n += W_BURST;
		__atomic_store_n(&r->lookups, n, __ATOMIC_RELAXED);
	}
	rte_rcu_qsbr_thread_offline(c->q, r->tid);
	rte_rcu_qsbr_thread_unregister(c->q, r->tid);
	__atomic_store_n(&r->bad, bad, __ATOMIC_RELAXED);
out:
	free(a);
	free(p);
	free(fam);
	return NULL;
}

/* CPU time of the calling thread, ns. */
static uint64_t
w_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t
w_lookups(const struct wreader *rd, unsigned n)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < n; i++)
		sum += __atomic_load_n(&rd[i].lookups, __ATOMIC_RELAXED);
	return sum;
}

/* Stage one update (see the top comment) and record it in the model. 0 or -1. */
static int
w_update(struct wctx *c, uint64_t *moves, uint64_t *news, uint64_t *dels)
{
	uint64_t x = wrng(&c->rng);
	uint32_t i = (uint32_t)(x % c->universe);
	uint32_t old = c->model[i];
	struct mg_ipcache_entry e = {.cluster_id = 1};

	e.family = w_prefix(i, e.addr);
	e.plen = e.family == MG_AF_INET ? 32 : 128;
	if (old != 0 && (x >> 32) % 100 < 5) {
		if (mg_ipcache_del(c->ipc, e.family, e.addr, e.plen) != 0)
			return -1;
		c->model[i] = 0;
		c->present--;
		(*dels)++;
		return 0;
	}
	if (old != 0) {
		e.identity = W_ID_BASE +
		             (old - W_ID_BASE + 1 + (uint32_t)(x >> 40) % (W_IDS - 1)) % W_IDS;
		(*moves)++;
	} else {
		e.identity = W_ID_BASE + (uint32_t)(x >> 40) % W_IDS;
		c->present++;
		(*news)++;
	}
	if (mg_ipcache_put(c->ipc, &e) != 0)
		return -1;
	c->model[i] = e.identity;
	return 0;
}

/* The committed table against the model; the number of mismatches. */
static uint64_t
w_check(struct wctx *c)
{
	const struct mg_ipcache_view *v = mg_ipcache_reader(c->ipc);
	uint64_t bad = 0;
	uint64_t s = 0x9e3779b97f4a7c15ull;

	if (mg_ipcache_count(c->ipc, 0) != c->present)
		bad++;
	for (uint32_t i = 0; i < c->universe; i++) {
		uint8_t a[16], f = w_prefix(i, a);
		uint32_t want = c->model[i] != 0 ? c->model[i] : f == MG_AF_INET ? 9 : 10;

		bad += mg_ipcache_lookup(v, f, a) != want;
	}
	for (unsigned k = 0; k < 10000; k++) {
		uint32_t i = (uint32_t)(wrng(&s) % c->universe);
		struct mg_ipcache_entry e;
		uint8_t a[16], f = w_prefix(i, a);
		int rc = mg_ipcache_get(c->ipc, f, a, f == MG_AF_INET ? 32 : 128, &e);

		if (c->model[i] == 0)
			bad += rc != -ENOENT;
		else
			bad += rc != 0 || e.identity != c->model[i] || e.cluster_id != 1;
	}
	bad += mg_ipcache_verify(c->ipc) != 0;
	return bad;
}

struct wopts {
	double seconds;
	unsigned readers;
	const char *batches;
	bool pin;
	unsigned ncpu; /* CPUs the process may use at the start (pinning changes it), or 0 */
	int cpus[W_MAX_READERS + 1];
};

/*
 * The CPUs this process may run on, in order, into @cpus; their number.
 * The writer takes the first, the readers the next ones.
 */
static unsigned
w_cpus(int *cpus, unsigned max)
{
	cpu_set_t set;
	unsigned n = 0;

	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 0;
	for (int c = 0; c < CPU_SETSIZE && n < max; c++)
		if (CPU_ISSET(c, &set))
			cpus[n++] = c;
	return n;
}

static int
w_size(uint32_t entries, const struct wopts *o)
{
	struct wctx c = {.rng = 0x853c49e6748fea9bull};
	struct wreader rd[W_MAX_READERS];
	struct mg_ipcache_params ip = {.entries_hint = entries, .split_world = true};
	const int *cpus = o->cpus;
	unsigned ncpu = o->pin ? o->ncpu : 0;
	uint64_t t0, lk0, bad_read = 0;
	size_t qsz = rte_rcu_qsbr_get_memsize(o->readers);
	char *list = NULL, *save = NULL, *tok;
	unsigned started = 0;
	int rc = 1;

	memset(rd, 0, sizeof(rd));
	c.universe = entries + entries / 20;
	c.model = calloc(c.universe, sizeof(*c.model));
	qsz = (qsz + 63) & ~(size_t)63;
	c.q = aligned_alloc(64, qsz);
	if (c.model == NULL || c.q == NULL)
		goto out;
	memset(c.q, 0, qsz);
	if (rte_rcu_qsbr_init(c.q, o->readers) != 0)
		goto out;
	ip.qsbr = c.q;
	c.ipc = mg_ipcache_create(&ip);
	if (c.ipc == NULL)
		goto out;
	t0 = mg_time_ns();
	for (uint32_t i = 0; i < entries; i++) {
		struct mg_ipcache_entry e = {.cluster_id = 1};

		e.family = w_prefix(i, e.addr);
		e.plen = e.family == MG_AF_INET ? 32 : 128;
		e.identity = W_ID_BASE + i % W_IDS;
		if (mg_ipcache_put(c.ipc, &e) != 0)
			goto out;
		c.model[i] = e.identity;
	}
	c.present = entries;
	if (mg_ipcache_commit(c.ipc) < 0)
		goto out;
	printf("\nwriter    entries=%u (%u IPv4 /32 + %u IPv6 /128), universe %u; built in %.2f s, "
	       "%zu MiB (mg_ipcache_memory)\n",
	       entries, (entries + 1) / 2, entries / 2, c.universe,
	       (double)(mg_time_ns() - t0) / 1e9, mg_ipcache_memory(c.ipc) >> 20);

	if (ncpu >= 2) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpus[0], &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	for (; started < o->readers; started++) {
		rd[started].tid = started;
		rd[started].c = &c;
		rd[started].cpu = ncpu >= 2 ? cpus[1 + started % (ncpu - 1)] : -1;
		if (pthread_create(&rd[started].th, NULL, w_reader_main, &rd[started]) != 0)
			goto out;
	}
	/* The readers' pace with the writer idle. */
	while (w_lookups(rd, started) == 0)
		rte_pause();
	t0 = mg_time_ns();
	lk0 = w_lookups(rd, started);
	while (mg_time_ns() - t0 < 300ull * 1000 * 1000)
		rte_pause();
	printf("readers   %u reader thread(s), bursts of %u, %s: %.2f M lookups/s with the writer "
	       "idle\n",
	       started, W_BURST, ncpu >= 2 ? "writer and readers pinned apart" : "not pinned",
	       (double)(w_lookups(rd, started) - lk0) * 1e3 / (double)(mg_time_ns() - t0));

	list = strdup(o->batches);
	if (list == NULL)
		goto out;
	for (tok = strtok_r(list, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		unsigned batch = (unsigned)strtoul(tok, NULL, 0);
		uint64_t upd = 0, commits = 0, moves = 0, news = 0, dels = 0, bad;
		uint64_t t1, worst = 0, lk1, stage_ns = 0, commit_ns = 0, stage_cpu = 0,
		             commit_cpu = 0;

		if (batch == 0) {
			fprintf(stderr, "ipcache: --batch: %s: must be at least 1\n", tok);
			goto out;
		}
		t0 = mg_time_ns();
		lk0 = w_lookups(rd, started);
		do {
			uint64_t s0 = mg_time_ns(), u0 = w_cpu_ns(), c0, c1, u1, u2;
			int n;

			for (unsigned k = 0; k < batch; k++)
				if (w_update(&c, &moves, &news, &dels) != 0) {
					fprintf(stderr, "ipcache: staging an update failed\n");
					goto out;
				}
			c0 = mg_time_ns();
			u1 = w_cpu_ns();
			n = mg_ipcache_commit(c.ipc);
			u2 = w_cpu_ns();
			if (n < 0) {
				fprintf(stderr, "ipcache: commit: %s\n", strerror(-n));
				goto out;
			}
			c1 = mg_time_ns();
			if (c1 - c0 > worst)
				worst = c1 - c0;
			stage_ns += c0 - s0;
			commit_ns += c1 - c0;
			stage_cpu += u1 - u0;
			commit_cpu += u2 - u1;
			upd += batch;
			commits++;
			t1 = c1;
		} while ((double)(t1 - t0) < o->seconds * 1e9);
		lk1 = w_lookups(rd, started);
		bad = w_check(&c);
		printf("writer    entries=%-8u batch=%-6u %9.0f updates/s applied  %8.0f commits/s "
		       "(largest %.2f ms)  ns/update: stage %.0f commit %.0f (cpu %.0f + %.0f)  "
		       "readers %.2f M "
		       "lookups/s  [%.0f%% moves, %.0f%% new, %.0f%% deletes; %lu updates in %.2f "
		       "s]\n",
		       entries, batch, (double)upd * 1e9 / (double)(t1 - t0),
		       (double)commits * 1e9 / (double)(t1 - t0), (double)worst / 1e6,
		       (double)stage_ns / (double)upd, (double)commit_ns / (double)upd,
		       (double)stage_cpu / (double)upd, (double)commit_cpu / (double)upd,
		       (double)(lk1 - lk0) * 1e3 / (double)(t1 - t0),
		       100.0 * (double)moves / (double)upd, 100.0 * (double)news / (double)upd,
		       100.0 * (double)dels / (double)upd, (unsigned long)upd,
		       (double)(t1 - t0) / 1e9);
		printf("check     %lu mismatches (count %zu, model %u; lookups of all %u prefixes, "
		       "get of 10000, mg_ipcache_verify)\n",
		       (unsigned long)bad, mg_ipcache_count(c.ipc, 0), c.present, c.universe);
		if (bad != 0)
			goto out;
	}
	rc = 0;
out:
	__atomic_store_n(&c.stop, true, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < started; i++) {
		pthread_join(rd[i].th, NULL);
		bad_read += __atomic_load_n(&rd[i].bad, __ATOMIC_RELAXED);
	}
	if (started != 0) {
		printf("check     %lu reader results that were neither a host identity nor world\n",
		       (unsigned long)bad_read);
		if (bad_read != 0)
			rc = 1;
	}
	if (rc != 0)
		fprintf(stderr, "ipcache: writer run for %u entries FAILED\n", entries);
	free(list);
	mg_ipcache_free(c.ipc);
	free(c.q);
	free(c.model);
	return rc;
}

static void
w_usage(FILE *out)
{
	fprintf(out,
	        "usage: meshgate-bench ipcache --writer [--entries N[,N...]] [--batch N[,N...]] "
	        "[--seconds S] [--readers N] [--no-pin]\n"
	        "  --entries  table sizes, entries in all: half IPv4 /32, half IPv6 /128 "
	        "(100000,1000000)\n"
	        "  --batch    updates per commit, one run each (100,1000,10000)\n"
	        "  --seconds  length of each run (2)\n"
	        "  --readers  reader threads doing bulk lookups meanwhile, QSBR registered (1, "
	        "at most 16)\n"
	        "  --no-pin   leave the threads to the scheduler (default: the writer on the first "
	        "CPU, readers on the next ones)\n");
}

int
mg_bench_ipcache_writer(int argc, char **argv)
{
	static const struct option lopts[] = {
	        {"writer", no_argument, NULL, 'w'},
	        {"entries", required_argument, NULL, 'e'},
	        {"batch", required_argument, NULL, 'b'},
	        {"seconds", required_argument, NULL, 's'},
	        {"readers", required_argument, NULL, 'R'},
	        {"no-pin", no_argument, NULL, 'P'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct wopts o = {.seconds = 2, .readers = 1, .batches = "100,1000,10000", .pin = true};
	const char *entries = "100000,1000000";
	char *list, *save = NULL, *tok;
	int opt, rc = 0;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'w':
			break;
		case 'e':
			entries = optarg;
			break;
		case 'b':
			o.batches = optarg;
			break;
		case 's':
			o.seconds = strtod(optarg, NULL);
			break;
		case 'R':
			o.readers = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'P':
			o.pin = false;
			break;
		case 'h':
			w_usage(stdout);
			return 0;
		default:
			w_usage(stderr);
			return 2;
		}
	}
	if (!(o.seconds > 0) || o.readers == 0 || o.readers > W_MAX_READERS) {
		w_usage(stderr);
		return 2;
	}
	o.ncpu = w_cpus(o.cpus, W_MAX_READERS + 1);
	printf("writer    updates staged with mg_ipcache_put/del and published with "
	       "mg_ipcache_commit while %u reader(s) look up; %.1f s per batch size\n",
	       o.readers, o.seconds);
	list = strdup(entries);
	if (list == NULL)
		return 1;
	for (tok = strtok_r(list, ",", &save); tok != NULL && rc == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		uint32_t n = (uint32_t)strtoul(tok, NULL, 0);

		if (n < 2 || n > (1u << 24)) {
			fprintf(stderr, "ipcache: --entries: %s: 2 to 2^24\n", tok);
			rc = 2;
			break;
		}
		rc = w_size(n, &o);
	}
	free(list);
	return rc;
}
