/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shared parts of `meshgate-bench kvsync` (bench_kvsync.c says what it
 * measures): the test data (cluster "cluster-a", its identities and
 * entries), the redis-server the bench starts, and the measurements, one
 * file each:
 *
 *   bench_kvsync.c          the driver: options, the redis-server, the runs
 *   bench_kvsync_util.c     redis-server start/stop, the fill, redis-benchmark,
 *                           the gateway (lib/gateway) the latency and
 *                           forwarding runs sync through
 *   bench_kvsync_cold.c     cold sync of one cluster, a start in front of
 *                           many clusters (the sync client alone)
 *   bench_kvsync_latency.c  write-to-effective latency, alone and while a
 *                           worker forwards
 *   bench_kvsync_forward.c  updates while forwarding, and the data path both
 *                           forwarding runs use
 *   bench_kvsync_restart.c  the real daemon's start to "ready" (--restart)
 */
#ifndef BENCH_KVSYNC_PRIV_H
#define BENCH_KVSYNC_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

#include "mg_datapath.h"
#include "mg_gateway.h"
#include "mg_identity.h"
#include "mg_ipcache.h"
#include "mg_kv_sync.h"
#include "mg_kvstore.h"
#include "mg_policy.h"

#define CLUSTER "cluster-a"
#define CLUSTER_ID 1u
#define N_FILLER 300u   /* filler identities besides server and client */
#define PIPE_CHUNK 2000 /* commands in flight per pipelined round */
#define N_SLOTS 32768u  /* test IPs: the first IPv4 entries of the fill */
#define LAT_SECS 2
#define LAT_FWD_SECS 3 /* --latency-while-forwarding: seconds per rate */
/* The log's MAXLEN ~: room for the catch-up's backlog on top of what the
 * measured phase wrote, so the client's position is never trimmed. */
#define MAXLEN "2000000"

/* Identity number @p local of the cluster's own range. */
static inline uint32_t
ident(unsigned local)
{
	return (CLUSTER_ID << 16) | (MG_ID_MIN_CLUSTER_LOCAL + local);
}

#define ID_SERVER ident(0)
#define ID_CLIENT ident(1)
#define ID_FILLER(i) ident(2 + (i))

/* Test slot s: fill entry 2 * (s + 1) (IPv4; entry 0 is the server). */
static inline uint32_t
slot_entry(uint32_t s)
{
	return 2 * (s + 1);
}

/* --updates-while-forwarding: frames in the pcap, FCALLs per writer round (--batch 0). */
#define FWD_FRAMES 4096
#define FWD_BATCH 256 /* FCALLs in flight per writer round */

/* --latency-while-forwarding: test IPs, one frame each in the pcap. */
#define LF_IPS 1024

/*
 * XREAD COUNT of the gateway's sync client: lib/kvstore's default, which
 * the daemon uses (there is no kvstore key for it; docs/performance.md,
 * "Updates while forwarding", says why).
 */
#define KV_READ_COUNT 1000

/* Frames the two ports received. */
static inline uint64_t
fwd_rx(const struct mg_dp_counters *c)
{
	return c->rx_pkts[0] + c->rx_pkts[1];
}

/* ---- bench_kvsync_util.c ---- */

struct server {
	pid_t pid;
	char dir[64];
	unsigned port;
};

/* Entry @p i of the fill: even i IPv4 10.x.y.z, odd i IPv6 fd00::i. */
void kvsync_entry_of(uint32_t i, struct mg_kv_ip_pair *p);
/* A connection to 127.0.0.1:@p port (30 s timeouts), or NULL. */
redisContext *kvsync_connect_port(unsigned port);
/* Start /usr/bin/redis-server on a free loopback port, without persistence. */
int kvsync_server_start(struct server *s);
void kvsync_server_stop(struct server *s);
/* Read @p n pending replies; -EPROTO on an error reply. */
int kvsync_drain(redisContext *c, unsigned n);
/* 0, or -EIO / -EPROTO (said on stderr) for a failed or error reply, which is freed. */
int kvsync_command_ok(redisContext *c, redisReply *r);
/* FLUSHDB, then FUNCTION LOAD REPLACE of @p lua. 0 or < 0. */
int kvsync_fill_begin(redisContext *c, const char *lua, size_t lua_len);
/* Key (MG_KV_KEY_MAX bytes at @p key) and JSON value (new string) of host route @p p of
 * @p cluster in layout @p scope. 0 or -EINVAL (nothing to free). */
int kvsync_entry_kv(const struct mg_kv_ip_pair *p, enum mg_kv_scope scope, const char *cluster,
                    char *key, char **val);
/* SET host route @p p as kvsync_entry_kv builds it, pipelined: every PIPE_CHUNK commands
 * (*@p pending counts them) the replies are read. 0 or < 0. */
int kvsync_fill_entry(redisContext *c, const struct mg_kv_ip_pair *p, enum mg_kv_scope scope,
                      const char *cluster, unsigned *pending);
/* Cluster @p name's config @p cc through mg_put (creating its log and epoch), then the
 * canaries of its layout, set to @p now. 0 or < 0. */
int kvsync_fill_config(redisContext *c, const char *name, const struct mg_kv_cluster_config *cc,
                       const char *now);
/* Flush, then write cluster-a: its identities, @p n entries, config, log, epoch, canaries. */
int kvsync_fill(redisContext *c, uint32_t n, const char *lua, size_t lua_len);
/* redis-benchmark's pipelined GET rate on the server (0 when it cannot run). */
double kvsync_redis_benchmark_get(unsigned port, uint32_t n);

/*
 * The gateway the latency and forwarding runs sync through, set up as the
 * daemon sets its own up: its config (in a temporary folder) names the Redis at
 * the bench's port, cluster-a, and the server's ingress policy (client to
 * server TCP 8080 allowed, the fillers denied).
 */
struct kvsync_gw {
	char dir[32];
	struct mg_gateway *gw;
};

/*
 * Write the config, load it, create the gateway (@p qsbr: the data path's
 * RCU, or NULL without one) and start it: the initial sync of cluster-a
 * (kvstore.sync_timeout 120 s; the run fails unless it finished) and the
 * first compile. kvstore.block_ms is @p block_ms. 0, or < 0 said on
 * stderr; kvsync_gateway_close() in both cases.
 */
int kvsync_gateway_open(struct kvsync_gw *g, unsigned port, unsigned block_ms,
                        struct rte_rcu_qsbr *qsbr);
/* Free the gateway (after the data path that reads its tables), remove the config. */
void kvsync_gateway_close(struct kvsync_gw *g);
/*
 * One mg_gateway_sync_tick: the log entries applied and published (>= 0),
 * or < 0: the poll failed, or a batch could not be published.
 */
int kvsync_tick(struct mg_gateway *gw);

/* ---- bench_kvsync_cold.c ---- */

/* Fill @p n entries, the cold sync, then (@p with_latency) the latency runs. */
int kvsync_run_size(unsigned port, uint32_t n, const char *lua, size_t lua_len, bool with_latency);
/* A gateway's start in front of @p ncl clusters of @p per entries each. */
int kvsync_multi_run(unsigned port, unsigned ncl, uint32_t per, const char *lua, size_t lua_len);

/* ---- bench_kvsync_latency.c ---- */

/* Write-to-effective latency at 1k and 10k puts/s through a gateway started on the fill. */
int kvsync_latency_runs(unsigned port);

/*
 * The data path's publication as the gateway calls it (kvsync_publish,
 * bench_kvsync_forward.c), with the figures the runs report.
 */
struct kvsync_pub {
	struct mg_datapath *dp;
	uint64_t publishes, published; /* successful publications, ipcache changes they carried */
	uint64_t max_ns;               /* the longest mg_datapath_publish */
	uint64_t last_ns;              /* when the last one returned */
};

struct lf_run {
	struct mg_gateway *gw;
	struct kvsync_pub *pub;
	unsigned port, secs;
	uint64_t hz;
	int rc;
};

/*
 * The redis-server this bench started (0: --redis-port): pinned to the
 * main lcore's CPU for --latency-while-forwarding, so Redis, the writer
 * and the control loop share one vCPU and the worker has the other.
 */
extern pid_t kvsync_lf_redis_pid;

/* Pin kvsync_lf_redis_pid's threads to the calling thread's CPUs. */
void kvsync_lf_pin_redis(void);
/* The main lcore's run of --latency-while-forwarding (an lf_run as @p arg). */
int kvsync_lf_tick(struct mg_datapath *dp, void *arg);
/* Move the test IPs to the client identity before the initial sync. */
int kvsync_lf_preset(redisContext *c);

/* ---- bench_kvsync_forward.c ---- */

struct kvsync_fwd_opts {
	uint32_t n; /* entries of the fill */
	unsigned secs, rate, writers, batch, backlog;
	const char *lcores;
	bool lat; /* --latency-while-forwarding */
};

/* lib/gateway's publish callback: mg_datapath_publish, timed and counted (@p arg: a kvsync_pub). */
int kvsync_publish(void *arg, struct mg_ipcache *ipc, struct mg_policy *policy);
/* The data path runs: updates while forwarding, or (@p o->lat) latency while forwarding. */
int kvsync_forward_run(unsigned port, const char *lua, size_t lua_len,
                       const struct kvsync_fwd_opts *o);

/* ---- bench_kvsync_restart.c ---- */

/* --restart: the daemon binary @p daemon started @p runs times per size of @p entries. */
int kvsync_restart_run(unsigned port, const char *daemon, const char *entries, unsigned runs,
                       const char *lua, size_t lua_len);

#endif /* BENCH_KVSYNC_PRIV_H */
