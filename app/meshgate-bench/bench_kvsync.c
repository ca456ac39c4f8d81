/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `meshgate-bench kvsync`: what the Redis sync client (lib/kvstore,
 * mg_kv_sync.h) costs, measured against one local redis-server.
 *
 *   cold sync   N ipcache entries (half IPv4 /32, half IPv6 /128) and a few
 *               hundred identities of cluster "cluster-a" (id 1) are
 *               written with pipelined SETs in exactly the key layout and
 *               JSON the writer produces (the mg_kv model encoders); the
 *               cluster config, canaries, epoch and log are created through
 *               the Function library as the writer does. Then a fresh
 *               identity table and ipcache are filled by mg_kv_sync_initial;
 *               its wall time gives entries/s, shown next to
 *               redis-benchmark's pipelined GET rate on the same server (the
 *               ratio says how close the sync gets to what Redis can serve).
 *               The ipcache count must equal N, or the run fails.
 *   latency     a writer thread on its own connection FCALLs mg_put to move
 *               test IPs to another identity at a fixed rate, noting the
 *               send time of each put; the main thread runs the daemon's
 *               sync step on a gateway started on the same data
 *               (lib/gateway's mg_gateway_sync_tick: a poll of the sync
 *               client, the policy derived for the identities the batch
 *               changed, one ipcache commit: the gateway has no data path)
 *               and after each tick computes the verdict a worker would
 *               compute now (mg_ipcache_lookup of the test IP in the
 *               gateway's ipcache, then mg_policy_verdict of its policy
 *               towards a server). The time it first sees the new verdict
 *               is "effective"; latency = effective - sent, p50 and p99 per
 *               rate.
 *
 * Each put goes to a test IP not touched before, whose identity moves from
 * a filler identity (denied by the server's ingress policy) to the client
 * identity (allowed), so every update changes a verdict and none hides
 * another inside one batch. The log is applied in write order, so updates
 * are confirmed in order.
 *
 *   --updates-while-forwarding
 *               the data path forwards crafted frames (EAL, one worker,
 *               net_pcap ports) while writers (lib/kvstore's batch API:
 *               FCALL mg_batch, pipelined) change ipcache entries at a
 *               fixed rate and the main lcore runs the daemon's sync step:
 *               each batch goes through lib/gateway (mg_gateway_sync_tick:
 *               the batch and the policy derived for the identities it
 *               changed, published with mg_datapath_publish); then a
 *               backlog the client catches up on. Described in
 *               bench_kvsync_forward.c.
 *
 *   --latency-while-forwarding
 *               the latency above with that data path running: puts at 1k
 *               and 10k/s, each batch going through lib/gateway
 *               (mg_gateway_sync_tick, published with mg_datapath_publish);
 *               latency to the publish's return and, for denies, to the
 *               first frame the worker drops by the new verdict (monitor
 *               ring). Described in bench_kvsync_latency.c.
 *
 * The gateway of these runs is set up as the daemon sets its own up
 * (mg_config_load, mg_gateway_create, mg_gateway_start, the data path
 * created with the policy the start compiled): its config names the
 * bench's Redis (kvstore.block_ms 1 with a data path, 5 without) and the
 * server's policy. Its sync client reads with the daemon's XREAD COUNT
 * (1000; there is no kvstore key for it).
 *
 * The bench starts its own redis-server (no persistence, temporary
 * directory, free loopback port) unless --redis-port names one; the data
 * is then written into that server's database 0, which is flushed first.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_kvsync.h"
#include "bench_kvsync_priv.h"

#ifndef MG_FUNCTIONS_DEFAULT
#define MG_FUNCTIONS_DEFAULT "conf/redis/meshgate.lua"
#endif

static void
usage(FILE *out)
{
	fprintf(out,
	        "usage: meshgate-bench kvsync [--redis-port P] [--entries N[,N...]] "
	        "[--functions meshgate.lua] [--no-latency]\n"
	        "  The first form: the cold sync of each size (and, after the first size,\n"
	        "  the latency runs unless --no-latency).\n"
	        "       meshgate-bench kvsync --updates-while-forwarding [--entries N] "
	        "[--seconds S] [--update-rate R] [--writers W] [--lcores L] [--batch B] "
	        "[--backlog K]\n"
	        "  The second form forwards crafted frames through the data path (EAL, net_pcap\n"
	        "  ports, L = main,worker lcores, default 0,1) while W writer connections\n"
	        "  (default 2) put R updates per second (default 150000) in total, in FCALL\n"
	        "  mg_batch calls of B changes (default 256; 0: one FCALL mg_put each),\n"
	        "  applied as the daemon applies them (XREAD COUNT 1000): each batch goes\n"
	        "  through lib/gateway (mg_gateway_sync_tick, the policy derived for the\n"
	        "  identities it changed, published with mg_datapath_publish). Then the\n"
	        "  client holds off while the writers put\n"
	        "  K updates (default 1200000, at most 1500000) into the log as fast as Redis\n"
	        "  takes them, and catches up on them while the worker forwards.\n"
	        "       meshgate-bench kvsync --clusters C [--entries-per-cluster N]\n"
	        "  The fourth form is a gateway's start in front of a mesh: C clusters (at\n"
	        "  most 255) of N entries each (default 1000) in the per-cluster layout of one\n"
	        "  Redis, the initial sync of all of them, then full resyncs of all of them.\n"
	        "       meshgate-bench kvsync --latency-while-forwarding [--entries N] "
	        "[--seconds S] [--lcores L]\n"
	        "  The third form measures write-to-effective latency at 1k and 10k puts/s\n"
	        "  (S seconds each, default 3) while a worker forwards, every batch going\n"
	        "  through lib/gateway and published with mg_datapath_publish (see\n"
	        "  bench_kvsync.c).\n"
	        "       meshgate-bench kvsync --restart MESHGATE [--entries N[,N...]] [--runs R]\n"
	        "  The fifth form starts the real daemon binary MESHGATE R times (default 3)\n"
	        "  in front of cluster-a with N entries (default 100000,1000000) and times\n"
	        "  exec -> \"ready\" (bench_kvsync_restart.c).\n"
	        "  Without --redis-port, starts /usr/bin/redis-server on a free loopback port.\n"
	        "  With it, FLUSHES database 0 of that server.\n");
}

static char *
read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*len = (size_t)n;
	}
	fclose(f);
	return buf;
}

/* --updates-while-forwarding or (@p o->lat) --latency-while-forwarding. */
static int
run_forward(unsigned port, const char *lua, size_t lua_len, const struct kvsync_fwd_opts *o)
{
	int rc;

	if (o->n < 2 * (FWD_FRAMES + 1)) {
		fprintf(stderr, "kvsync: --entries must be >= %u\n", 2 * (FWD_FRAMES + 1));
		return -EINVAL;
	}
	if (o->lat) {
		printf("latency+worker %" PRIu32 " entries, %u s per rate, lcores %s (main: "
		       "poll + mg_datapath_publish, then the monitor drain; one worker), "
		       "%u "
		       "test IPs in the frames\n"
		       "  one update = one FCALL mg_put moving a test IP between the "
		       "client "
		       "(allowed) and a filler (denied) identity\n",
		       o->n, o->secs, o->lcores, LF_IPS);
		fflush(stdout);
		rc = kvsync_forward_run(port, lua, lua_len, o);
		if (rc < 0)
			fprintf(stderr, "kvsync: latency while forwarding: %s\n", strerror(-rc));
		return rc;
	}
	printf("forward   %" PRIu32 " entries, %u s per phase, %u writer connection(s) at "
	       "%u updates/s in total, lcores %s\n",
	       o->n, o->secs, o->writers, o->rate, o->lcores);
	if (o->batch != 0)
		printf("          writers: FCALL mg_batch of %u changes, up to %u calls in "
		       "flight per connection; sync client: XREAD COUNT %u\n",
		       o->batch, MG_KV_WRITER_PIPELINE, KV_READ_COUNT);
	else
		printf("          writers: FCALL mg_put, pipelined rounds of %u; sync "
		       "client: "
		       "XREAD COUNT %u\n",
		       FWD_BATCH, KV_READ_COUNT);
	fflush(stdout);
	rc = kvsync_forward_run(port, lua, lua_len, o);
	if (rc < 0)
		fprintf(stderr, "kvsync: forward: %s\n", strerror(-rc));
	return rc;
}

/* The cold sync of each size of @p entries; the latency runs after the first. */
static int
run_sizes(unsigned port, const char *entries, const char *lua, size_t lua_len, bool latency)
{
	char *list = strdup(entries), *save = NULL, *tok;
	int rc = list != NULL ? 0 : -ENOMEM;

	for (tok = list ? strtok_r(list, ",", &save) : NULL; tok && rc == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		uint32_t n = (uint32_t)strtoul(tok, NULL, 0);

		if (n < 2 * (N_SLOTS + 1)) {
			fprintf(stderr, "kvsync: --entries: each size must be >= %u\n",
			        2 * (N_SLOTS + 1));
			rc = -EINVAL;
			break;
		}
		/* latency on the first size's data: the sync's tail cost barely depends on N */
		rc = kvsync_run_size(port, n, lua, lua_len, latency && tok == list);
		fflush(stdout);
	}
	free(list);
	return rc;
}

int
mg_bench_kvsync(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"redis-port", required_argument, NULL, 'p'},
	        {"entries", required_argument, NULL, 'e'},
	        {"functions", required_argument, NULL, 'f'},
	        {"updates-while-forwarding", no_argument, NULL, 'u'},
	        {"latency-while-forwarding", no_argument, NULL, 'L'},
	        {"seconds", required_argument, NULL, 's'},
	        {"update-rate", required_argument, NULL, 'r'},
	        {"writers", required_argument, NULL, 'w'},
	        {"lcores", required_argument, NULL, 'l'},
	        {"batch", required_argument, NULL, 'b'},
	        {"backlog", required_argument, NULL, 'k'},
	        {"clusters", required_argument, NULL, 'C'},
	        {"entries-per-cluster", required_argument, NULL, 'P'},
	        {"restart", required_argument, NULL, 'R'},
	        {"runs", required_argument, NULL, 'n'},
	        {"no-latency", no_argument, NULL, 'N'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct kvsync_fwd_opts o = {.secs = 5,
	                            .rate = 150000,
	                            .writers = 2,
	                            .batch = MG_KV_WRITER_BATCH_DEFAULT,
	                            .backlog = 1200000,
	                            .lcores = "0,1"};
	const char *entries = NULL, *functions = MG_FUNCTIONS_DEFAULT, *daemon = NULL;
	unsigned nclusters = 0, per_cluster = 1000, runs = 3;
	bool forward = false, secs_set = false, latency = true;
	struct server srv = {0};
	unsigned port = 0;
	char *lua = NULL;
	size_t lua_len = 0;
	int opt, rc = 0;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			port = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'e':
			entries = optarg;
			break;
		case 'f':
			functions = optarg;
			break;
		case 'u':
			forward = true;
			break;
		case 'L':
			forward = o.lat = true;
			break;
		case 's':
			o.secs = (unsigned)strtoul(optarg, NULL, 0);
			secs_set = true;
			break;
		case 'r':
			o.rate = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'w':
			o.writers = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'l':
			o.lcores = optarg;
			break;
		case 'b':
			o.batch = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'k':
			o.backlog = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'C':
			nclusters = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'P':
			per_cluster = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'R':
			daemon = optarg;
			break;
		case 'n':
			runs = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'N':
			latency = false;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (o.lat && !secs_set)
		o.secs = LAT_FWD_SECS;
	if (entries == NULL)
		entries = forward ? "100000" : "100000,1000000";
	if (forward && (o.secs == 0 || o.rate == 0 || o.writers == 0 || o.writers > 16 ||
	                o.batch > MG_KV_BATCH_MAX || o.backlog == 0 || o.backlog > 1500000)) {
		usage(stderr);
		return 2;
	}
	lua = read_all(functions, &lua_len);
	if (lua == NULL) {
		fprintf(stderr, "kvsync: cannot read %s (--functions)\n", functions);
		return 1;
	}
	if (port == 0) {
		rc = kvsync_server_start(&srv);
		if (rc < 0) {
			fprintf(stderr, "kvsync: cannot start redis-server: %s\n", strerror(-rc));
			goto out;
		}
		port = srv.port;
		kvsync_lf_redis_pid = srv.pid;
	}
	printf("kvsync: redis-server 127.0.0.1:%u; cluster %s (id %u); entries half IPv4 /32, "
	       "half IPv6 /128\n"
	       "  effective = the first mg_kv_sync_poll return (batch committed) after which "
	       "mg_ipcache_lookup + mg_policy_verdict give the new verdict\n",
	       port, CLUSTER, CLUSTER_ID);
	fflush(stdout);
	if (nclusters > 0) {
		if (per_cluster == 0 || per_cluster > 65000) {
			fprintf(stderr, "kvsync: --entries-per-cluster: 1 to 65000\n");
			rc = -EINVAL;
			goto out;
		}
		rc = kvsync_multi_run(port, nclusters, per_cluster, lua, lua_len);
		goto out;
	}
	if (daemon != NULL) {
		rc = kvsync_restart_run(port, daemon, entries, runs, lua, lua_len);
		goto out;
	}
	if (forward) {
		o.n = (uint32_t)strtoul(entries, NULL, 0);
		rc = run_forward(port, lua, lua_len, &o);
	} else {
		rc = run_sizes(port, entries, lua, lua_len, latency);
	}
out:
	free(lua);
	kvsync_server_stop(&srv);
	return rc == 0 ? 0 : 1;
}
