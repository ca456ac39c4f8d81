/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shared parts of `meshgate-bench replicator` (bench_replicator.c says what
 * it measures), one file each:
 *
 *   bench_replicator.c       the driver: options, processes, the initial copy
 *   bench_replicator_etcd.c  etcd servers (tests/etcd/etcd_env.sh), Cilium's
 *                            data written into them, the bare paged list,
 *                            the in-process replicator
 *   bench_replicator_lat.c   etcd put -> the gateway's verdict changed
 *   bench_replicator_fan.c   fan-out: m etcd clusters, n gateway sync clients
 */
#ifndef BENCH_REPLICATOR_PRIV_H
#define BENCH_REPLICATOR_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

#include "mg_common.h"
#include "mg_etcd.h"
#include "mg_replicator.h"

#define RB_CLUSTER "cluster-b" /* the remote cluster of the copy and latency runs */
#define RB_CLUSTER_ID 2u
#define RB_NS "bench"
#define RB_TXN_MAX 128 /* etcd's --max-txn-ops */

/* Identity @p i of cluster @p cid: 0 server, 1 client, 2.. fillers. */
static inline uint32_t
rb_ident(unsigned cid, uint32_t i)
{
	return ((uint32_t)cid << 16) | (256u + i);
}

/* ---- bench_replicator_etcd.c ---- */

/* One etcd started by tests/etcd/etcd_env.sh. */
struct rb_etcd {
	char dir[128];
	char name[MG_REP_NAME_MAX];
	char endpoint[64];
	unsigned port;
	char ca[192], root_cert[192], root_key[192], remote_cert[192], remote_key[192];
	char config[192]; /* the clustermesh config file for user remote */
	bool started;
};

/*
 * Start @p n etcds at once in @p base/etcd-NAME: NAME is @p prefix when @p n
 * is 1, else prefix1 .. prefixN. 0 or < 0 (said on stderr); stop each in
 * any case.
 */
int rb_etcd_start_many(struct rb_etcd *e, unsigned n, const char *base, const char *prefix);
void rb_etcd_stop(struct rb_etcd *e);
/* A client of @p e as root (@p root) or as remote, as the replicator connects. */
struct mg_etcd *rb_etcd_open(const struct rb_etcd *e, bool root, struct mg_error *err);

/* What one cluster's etcd holds. */
struct rb_data {
	const char *name;
	unsigned cid;
	uint32_t n_ids; /* identities 0 .. n_ids - 1 */
	uint32_t n_ips; /* ip entries 0 .. n_ips - 1 */
};

/* Address of ip entry @p i (i < 2^20 - 1), host order: 10.0.0.0 + cid << 20 + i + 1. */
uint32_t rb_ip_addr(const struct rb_data *d, uint32_t i);
void rb_ip_str(const struct rb_data *d, uint32_t i, char *buf, size_t size);
/* The identity ip entry @p i starts with: a filler. */
uint32_t rb_ip_ident(const struct rb_data *d, uint32_t i);
/* Key and IPIdentityPair JSON of ip entry @p i with identity @p id. */
void rb_ip_kv(const struct rb_data *d, uint32_t i, uint32_t id, char *key, size_t ksize, char *val,
              size_t vsize);

/*
 * Write identities [@p id0, d->n_ids) and ip entries [@p ip0, d->n_ips) in
 * txns of 128 puts as root, from @p threads threads with a client each.
 * Then (@p meta) the cluster config, .has-cluster-config, the heartbeat
 * and the two synced canaries. Prints the load rate. 0 or < 0.
 */
int rb_load(const struct rb_etcd *e, const struct rb_data *d, uint32_t id0, uint32_t ip0,
            unsigned threads, bool meta);

/* A bare paged list of both prefixes pinned to one revision, as remote. */
struct rb_list {
	uint64_t keys, pages;
	double secs;
};
int rb_bare_list(const struct rb_etcd *e, unsigned page, struct rb_list *out);

/* The replicator, in this process: mg_replicator_tick in a thread. */
struct rb_rep {
	struct mg_rep_config *c;
	struct mg_replicator *r;
	pthread_t th;
	bool started;
	atomic_bool stop;
	unsigned tick_ms;
	_Atomic uint64_t ticks;
	uint64_t t0; /* mg_time_ns at its creation */
};

/*
 * A replicator for the cluster files in @p meshdir, writing to the Redis
 * at @p redis_port, with etcd.page_size @p page (heartbeat_timeout 0: the
 * bench writes no heartbeat), ticking every @p tick_ms as the daemon's
 * loop does. 0 or < 0 (said on stderr).
 */
int rb_rep_start(struct rb_rep *x, const char *meshdir, unsigned redis_port, unsigned page,
                 unsigned tick_ms);
void rb_rep_stop(struct rb_rep *x);

/*
 * Wait until both canaries of @p name are in Redis: seconds since @p t0,
 * or < 0. With @p t_keys, also when Redis first held @p want_keys keys
 * (DBSIZE; -1 when it never did before the canaries).
 */
double rb_wait_canaries(redisContext *c, const char *name, uint64_t t0, unsigned timeout_s,
                        long long want_keys, double *t_keys);

/* Nanoseconds now (CLOCK_MONOTONIC), and a wait until @p due. */
uint64_t rb_wait_until(uint64_t due);

/* p-th permille of @p v (sorted here), in ms. */
double rb_pct_ms(uint64_t *v, size_t n, unsigned permille);

/* ---- bench_replicator_lat.c ---- */

struct rb_lat_opts {
	unsigned secs_1k, secs_10k_ms; /* run lengths: 1k/s for secs_1k s, 10k/s for ms */
	unsigned redis_port;
	bool goal_ok; /* out: p99 at 1k/s under 50 ms */
};
/* put -> verdict at 1k and 10k/s on cluster @p d (synced by a running replicator). */
int rb_latency(const struct rb_etcd *e, const struct rb_data *d, struct rb_lat_opts *o);

/* ---- bench_replicator_fan.c ---- */

struct rb_fan_opts {
	unsigned clusters, gateways;
	uint32_t keys;    /* per cluster */
	unsigned rate;    /* updates/s per cluster */
	unsigned secs;    /* of the steady load */
	unsigned tick_ms; /* the replicator's loop */
	const char *base; /* folder for the etcds */
	unsigned redis_port;
	pid_t redis_pid;
	redisContext *mon; /* the bench's own connection, named bench-monitor */
};
int rb_fanout(const struct rb_fan_opts *o);

#endif /* BENCH_REPLICATOR_PRIV_H */
