/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `meshgate-bench replicator`: what meshgate-replicator (lib/replicator)
 * costs and buys, against real etcd 3.4 servers run as Cilium's
 * clustermesh-apiserver runs its etcd (tests/etcd/etcd_env.sh: TLS, client
 * certificates, auth; the replicator reads as user remote) and a
 * redis-server, all started here. The replicator runs in this process
 * through its public API (mg_rep_config_load_buf, mg_replicator_create and
 * a thread calling mg_replicator_tick every --tick-ms, 5 as the daemon's
 * loop), with the daemon's defaults except etcd.page_size (--page) and
 * etcd.heartbeat_timeout 0 (the bench writes cilium/.heartbeat once).
 *
 *   copy     N keys of cluster "cluster-b" (id 2) under the two prefixes
 *            the replicator copies (a fifth identities, at most 50000 as
 *            the cluster's range holds 65280, the rest ip entries), written
 *            in Cilium's formats as root in txns of 128 puts, with the
 *            cluster config (syncedCanaries) and the canaries. A fresh
 *            replicator on a flushed Redis: the time from its creation to
 *            both canaries in Redis (EXISTS polled every 2 ms) gives
 *            entries/s, next to a bare paged list of the same keys over
 *            the same gRPC client (lib/etcd, user remote, the same page
 *            size, pinned to one revision) and their ratio (goal >= 0.5).
 *   latency  etcd put -> the gateway's verdict changed (bench_replicator_lat.c).
 *   fan-out  m etcd clusters, n gateway sync clients (bench_replicator_fan.c).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_kvsync_priv.h"
#include "bench_replicator.h"
#include "bench_replicator_priv.h"

struct opts {
	bool quick, latency, fanout;
	char *keys;
	unsigned page, page_alt, tick_ms, threads;
	struct rb_fan_opts fan;
	unsigned lat_secs, lat_10k_ms;
};

static void
usage(FILE *out)
{
	fprintf(out, "usage: meshgate-bench replicator [--quick] [--keys N[,N...]] [--page N]\n"
	             "         [--page-alt N] [--tick-ms MS] [--load-threads N] [--no-latency]\n"
	             "         [--no-fanout] [--clusters M] [--gateways N] [--fan-keys N]\n"
	             "         [--fan-rate R] [--fan-secs S]\n"
	             "  --keys        keys per copy run (default 100000,1000000; --quick 10000)\n"
	             "  --page        etcd.page_size of the replicator and the bare list (1000)\n"
	             "  --page-alt    the copy again with this page size (5000; 0: none)\n"
	             "  --tick-ms     sleep between mg_replicator_tick calls (5, the daemon's)\n"
	             "  --clusters, --gateways, --fan-keys, --fan-rate, --fan-secs\n"
	             "                fan-out: 5 etcd clusters of 2000 keys, 20 sync clients,\n"
	             "                100 updates/s per cluster for 5 s\n");
}

static int
parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {{"quick", no_argument, NULL, 'q'},
	                                   {"keys", required_argument, NULL, 'k'},
	                                   {"page", required_argument, NULL, 'p'},
	                                   {"page-alt", required_argument, NULL, 'P'},
	                                   {"tick-ms", required_argument, NULL, 't'},
	                                   {"load-threads", required_argument, NULL, 'T'},
	                                   {"no-latency", no_argument, NULL, 'L'},
	                                   {"no-fanout", no_argument, NULL, 'F'},
	                                   {"clusters", required_argument, NULL, 'm'},
	                                   {"gateways", required_argument, NULL, 'n'},
	                                   {"fan-keys", required_argument, NULL, 'K'},
	                                   {"fan-rate", required_argument, NULL, 'r'},
	                                   {"fan-secs", required_argument, NULL, 's'},
	                                   {"help", no_argument, NULL, 'h'},
	                                   {NULL, 0, NULL, 0}};
	int opt;

	*o = (struct opts){.latency = true,
	                   .fanout = true,
	                   .page = 1000,
	                   .page_alt = 5000,
	                   .tick_ms = 5,
	                   .threads = 4,
	                   .lat_secs = 2,
	                   .lat_10k_ms = 2000};
	o->fan = (struct rb_fan_opts){
	        .clusters = 5, .gateways = 20, .keys = 2000, .rate = 100, .secs = 5};
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--quick") == 0) {
			/* smaller defaults; options given still apply */
			o->quick = true;
			o->keys = "10000";
			o->page_alt = 0;
			o->lat_secs = 1;
			o->lat_10k_ms = 500;
			o->fan.keys = 500;
			o->fan.secs = 1;
		}
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		unsigned long v = optarg ? strtoul(optarg, NULL, 0) : 0;

		switch (opt) {
		case 'q':
			break;
		case 'k':
			o->keys = optarg;
			break;
		case 'p':
			o->page = (unsigned)v;
			break;
		case 'P':
			o->page_alt = (unsigned)v;
			break;
		case 't':
			o->tick_ms = (unsigned)v;
			break;
		case 'T':
			o->threads = (unsigned)v;
			break;
		case 'L':
			o->latency = false;
			break;
		case 'F':
			o->fanout = false;
			break;
		case 'm':
			o->fan.clusters = (unsigned)v;
			break;
		case 'n':
			o->fan.gateways = (unsigned)v;
			break;
		case 'K':
			o->fan.keys = (uint32_t)v;
			break;
		case 'r':
			o->fan.rate = (unsigned)v;
			break;
		case 's':
			o->fan.secs = (unsigned)v;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (o->page == 0 || o->page > 100000 || o->fan.clusters == 0 || o->fan.clusters > 16 ||
	    o->fan.gateways == 0 || o->fan.gateways > 200 || o->fan.keys < 10 || o->threads == 0) {
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

/* MemAvailable in MiB (0 when unknown). */
static uint64_t
mem_available_mib(void)
{
	char line[256];
	uint64_t kb = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "MemAvailable: %" SCNu64 " kB", &kb) == 1)
			break;
	fclose(f);
	return kb / 1024;
}

/* A rough footprint: etcd, Redis, the replicator's copy, the gateway: 4 KiB per key. */
#define BYTES_PER_KEY 4096ull

static long long
redis_int(redisContext *c, const char *cmd)
{
	redisReply *r = redisCommand(c, cmd);
	long long v = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;

	freeReplyObject(r);
	return v;
}

/* The replicator's counters of cluster @p name: puts written, entries kept. */
static void
rep_counts(struct mg_replicator *r, const char *name, long long *puts, long long *entries)
{
	json_t *st = mg_replicator_status(r), *cl;
	size_t i;

	*puts = *entries = -1;
	json_array_foreach(json_object_get(st, "clusters"), i, cl)
	{
		if (strcmp(json_string_value(json_object_get(cl, "name")) ?: "", name) != 0)
			continue;
		json_t *en = json_object_get(cl, "entries");
		*puts = json_integer_value(json_object_get(cl, "puts"));
		*entries = json_integer_value(json_object_get(en, "identities")) +
		           json_integer_value(json_object_get(en, "ip"));
	}
	json_decref(st);
}

static void
print_list(const char *what, const struct rb_list *l, unsigned page)
{
	printf("  %-34s %8" PRIu64 " keys in %7.3f s = %9.0f entries/s  (page %u, %" PRIu64
	       " pages)\n",
	       what, l->keys, l->secs, (double)l->keys / l->secs, page, l->pages);
}

/*
 * One page size: the bare list, then a fresh replicator on a flushed Redis
 * until both canaries are there. The replicator keeps running (@p x).
 */
static int
copy_page(const struct opts *o, const struct rb_etcd *e, const struct rb_data *d,
          const char *meshdir, unsigned port, redisContext *mon, unsigned page, struct rb_rep *x)
{
	uint64_t n = (uint64_t)d->n_ids + d->n_ips;
	struct rb_list bare;
	long long puts, entries, dbsize;
	double t_keys, secs, ratio;
	int rc = rb_bare_list(e, page, &bare);

	if (rc == 0 && redis_int(mon, "FLUSHALL") == -1 && mon->err)
		rc = -EIO;
	rc = rc ?: rb_rep_start(x, meshdir, port, page, o->tick_ms);
	if (rc < 0)
		return rc;
	/* n entries, the config, the lease, the log and the epoch: all written */
	secs = rb_wait_canaries(mon, d->name, x->t0, n >= 500000 ? 1800 : 300, (long long)n + 4,
	                        &t_keys);
	if (secs < 0) {
		fprintf(stderr, "replicator: FAIL: the canaries of %s never came\n", d->name);
		return -ETIMEDOUT;
	}
	rep_counts(x->r, d->name, &puts, &entries);
	dbsize = redis_int(mon, "DBSIZE");
	ratio = ((double)n / secs) / ((double)bare.keys / bare.secs);
	printf(" etcd.page_size %u:\n", page);
	print_list("bare paged list (lib/etcd)", &bare, page);
	printf("  %-34s %8" PRIu64 " keys in %7.3f s = %9.0f entries/s  (creation -> both "
	       "canaries in Redis)\n",
	       "replicator initial copy", n, secs, (double)n / secs);
	printf("  %-34s every entry in Redis at %.3f s, the canaries %.3f s later (the diff "
	       "against Redis before them)\n",
	       "", t_keys, secs - t_keys);
	printf("  ratio copy / bare list: %.2f (goal >= 0.5: %s)\n", ratio,
	       ratio >= 0.5 ? "met" : "NOT met");
	printf("  replicator: %lld entries in its copy, %lld puts queued to Redis; Redis holds "
	       "%lld keys\n",
	       entries, puts, dbsize);
	if (entries != (long long)n || dbsize < (long long)n) {
		fprintf(stderr, "replicator: FAIL: copy incomplete\n");
		rc = -EPROTO;
	}
	return rc;
}

/* One size: each page size in turn, the latency with the first (@p with_latency). */
static int
copy_run(const struct opts *o, const struct rb_etcd *e, const struct rb_data *d,
         const char *meshdir, struct server *redis, redisContext *mon, bool with_latency)
{
	unsigned pages[2] = {o->page, o->page_alt};
	int rc = 0;

	printf("copy %u keys (%u identities + %u ip entries):\n", d->n_ids + d->n_ips, d->n_ids,
	       d->n_ips);
	for (int i = 0; i < 2 && rc == 0; i++) {
		struct rb_rep x = {0};

		if (pages[i] == 0)
			continue;
		rc = copy_page(o, e, d, meshdir, redis->port, mon, pages[i], &x);
		if (rc == 0 && i == 0 && with_latency) {
			struct rb_lat_opts lo = {.secs_1k = o->lat_secs,
			                         .secs_10k_ms = o->lat_10k_ms,
			                         .redis_port = redis->port};

			rc = rb_latency(e, d, &lo);
		}
		rb_rep_stop(&x);
	}
	return rc;
}

/* The copy runs on one etcd: loaded up to each size in turn. */
static int
copy_runs(const struct opts *o, const char *base, struct server *redis, redisContext *mon)
{
	char meshdir[160], cmd[1024];
	struct rb_etcd e;
	struct rb_data d = {.name = RB_CLUSTER, .cid = RB_CLUSTER_ID};
	char *list = strdup(o->keys ? o->keys : "100000,1000000"), *save = NULL, *tok;
	uint64_t avail = mem_available_mib();
	bool first = true;
	int rc;

	snprintf(meshdir, sizeof(meshdir), "%s/mesh", base);
	rc = list != NULL ? rb_etcd_start_many(&e, 1, base, RB_CLUSTER) : -ENOMEM;
	if (rc == 0) {
		snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp '%s' '%s/%s'", meshdir, e.config,
		         meshdir, RB_CLUSTER);
		rc = system(cmd) == 0 ? 0 : -EIO;
	}
	for (tok = strtok_r(list, ",", &save); tok != NULL && rc == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		uint64_t n = strtoull(tok, NULL, 0), need = n * BYTES_PER_KEY >> 20;
		uint32_t id0 = d.n_ids, ip0 = d.n_ips;

		if (avail > 0 && need > avail) {
			uint64_t fit = (avail << 20) / BYTES_PER_KEY / 100000 * 100000;

			printf("NOTE: %" PRIu64 " keys need about %" PRIu64 " MiB, %" PRIu64
			       " MiB available: scaled down to %" PRIu64 " keys\n",
			       n, need, avail, fit);
			n = fit;
		}
		if (n < (uint64_t)d.n_ids + d.n_ips + 10) {
			printf("NOTE: %s keys skipped (not above the previous size)\n", tok);
			continue;
		}
		d.n_ids = (uint32_t)(n / 5 < 50000 ? n / 5 : 50000);
		d.n_ids = d.n_ids > id0 ? d.n_ids : id0;
		d.n_ips = (uint32_t)(n - d.n_ids);
		rc = rb_load(&e, &d, id0, ip0, o->threads, true);
		if (rc == 0)
			rc = copy_run(o, &e, &d, meshdir, redis, mon, first && o->latency);
		first = false;
	}
	rb_etcd_stop(&e);
	free(list);
	return rc;
}

int
mg_bench_replicator(int argc, char **argv)
{
	struct opts o;
	struct server redis = {0};
	char base[64] = "/tmp/mg-bench-rep-XXXXXX", cmd[160];
	redisContext *mon = NULL;
	uint64_t t0 = mg_time_ns();
	int rc = parse(argc, argv, &o);

	if (rc < 0)
		return 2;
	if (mkdtemp(base) == NULL) {
		perror("replicator: mkdtemp");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("replicator: etcd 3.4 (tests/etcd/etcd_env.sh: TLS, client certificates, auth), "
	       "redis-server, the replicator in this process (tick every %u ms)%s\n",
	       o.tick_ms, o.quick ? "; --quick" : "");
	rc = kvsync_server_start(&redis);
	mon = rc == 0 ? kvsync_connect_port(redis.port) : NULL;
	if (mon == NULL) {
		fprintf(stderr, "replicator: redis-server did not start\n");
		rc = -EIO;
	}
	if (rc == 0) {
		redisReply *r = redisCommand(mon, "CLIENT SETNAME bench-monitor");

		freeReplyObject(r);
		rc = copy_runs(&o, base, &redis, mon);
	}
	if (rc == 0 && o.fanout) {
		o.fan.base = base;
		o.fan.redis_port = redis.port;
		o.fan.redis_pid = redis.pid;
		o.fan.tick_ms = o.tick_ms;
		o.fan.mon = mon;
		rc = redis_int(mon, "FLUSHALL") == -1 && mon->err ? -EIO : rb_fanout(&o.fan);
	}
	redisFree(mon);
	kvsync_server_stop(&redis);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd) != 0)
		fprintf(stderr, "replicator: could not remove %s\n", base);
	printf("replicator: %s in %.1f s\n", rc == 0 ? "done" : "FAILED",
	       (double)(mg_time_ns() - t0) / 1e9);
	return rc == 0 ? 0 : 1;
}
