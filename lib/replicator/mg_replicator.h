/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/replicator: meshgate-replicator, the KVStoreMesh of a gateway fleet
 * (docs/replicator.md). It watches every remote cluster's
 * clustermesh-apiserver etcd once and writes what it sees into the site
 * Redis, in the cache layout the gateways' sync client reads:
 *
 *   etcd cilium/state/identities/v1/id/<ID>  -> cilium/cache/identities/v1/<name>/id/<ID>
 *   etcd cilium/state/ip/v1/default/<IP>     -> cilium/cache/ip/v1/<name>/<IP>
 *   cilium/cluster-config/<name> (cached, syncedCanaries), canaries after the data,
 *   meshgate/heartbeat/<name>, meshgate/removed/<name> while a cluster drains.
 *
 * Threads: one per remote cluster drives its etcd connection (lib/etcd:
 * config, canaries, paged list pinned to one revision, watch) and hands
 * what it reads to the caller's thread through a bounded queue; the
 * caller's thread (mg_replicator_tick) owns the Redis connection, the
 * lease and every write. Several replicas may run: one holds the lease
 * meshgate/replicator/lease and writes, fenced by its token.
 */
#ifndef MG_REPLICATOR_H
#define MG_REPLICATOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_common.h"
#include "mg_ctl.h"
#include "mg_identity.h"
#include "mg_metrics.h"

#define MG_REP_LEASE_KEY "meshgate/replicator/lease"
#define MG_REP_NAME_MAX 33 /**< cluster names: 32 characters and the NUL */

struct mg_rep_filter_config;

/** meshgate-replicator.yaml (conf/meshgate-replicator.yaml documents every key). */
struct mg_rep_config {
	char *file, *dir;
	char cluster_name[MG_REP_NAME_MAX];
	unsigned cluster_id;
	enum mg_cluster_mode cluster_mode; /**< cluster.max_connected_clusters 255 | 511 */

	char *config_dir;   /**< clustermesh.config_dir, resolved */
	unsigned rescan_ms; /**< clustermesh.rescan_interval (2 s) */

	char *redis;               /**< redis URL */
	char *redis_user;          /**< redis_auth.user, or NULL */
	char *redis_password_file; /**< redis_auth.password_file, resolved, or NULL */
	char *functions;           /**< redis_functions: meshgate.lua to load, or NULL */
	unsigned redis_timeout_ms; /**< redis_timeout (5 s) */

	/* etcd: per remote cluster */
	unsigned page_size;            /**< etcd.page_size (5000) */
	double qps;                    /**< etcd.qps (20) */
	double bootstrap_qps;          /**< etcd.bootstrap_qps (10000) */
	unsigned timeout_ms;           /**< etcd.timeout (15 s): one request */
	unsigned connect_timeout_ms;   /**< etcd.connect_timeout (5 s) */
	unsigned heartbeat_ms;         /**< etcd.heartbeat_timeout (120 s) */
	unsigned config_timeout_ms;    /**< etcd.config_timeout (180 s) */
	unsigned keepalive_ms;         /**< etcd.keepalive (15 s) */
	unsigned keepalive_timeout_ms; /**< etcd.keepalive_timeout (25 s) */
	unsigned backoff_min_ms;       /**< etcd.backoff_min (1 s) */
	unsigned backoff_max_ms;       /**< etcd.backoff_max (60 s) */
	size_t max_entries;            /**< limits.max_entries per cluster (4M) */
	size_t max_value_bytes;        /**< limits.max_value_bytes (65536) */
	size_t queue_bytes;            /**< limits.queue_bytes per cluster (64 MiB) */

	/* Redis side */
	unsigned lease_ttl_ms;   /**< lease.ttl (15 s), renewed at a third */
	unsigned drain_grace_ms; /**< drain.grace (180 s) */
	unsigned batch;          /**< writer.batch (256) */
	unsigned log_maxlen;     /**< writer.log_maxlen (100000) */
	unsigned check_ms;       /**< writer.check_interval (2 s): Redis loss detection */

	char *control_socket;
	char *control_group, *control_admin_group;
	unsigned control_max_clients;
	char *metrics_listen; /**< or NULL */

	struct mg_rep_filter_config *filter; /**< NULL: every identity is written */
};

/** Load and validate @p path; NULL with errno and @p err set ("file:line:col: ..."). */
struct mg_rep_config *mg_rep_config_load(const char *path, struct mg_error *err);
struct mg_rep_config *mg_rep_config_load_buf(const char *name, const char *dir, const void *buf,
                                             size_t len, struct mg_error *err);
void mg_rep_config_free(struct mg_rep_config *c);

/** One remote cluster's etcd config file, as Cilium's clustermesh secret mounts it. */
struct mg_rep_etcd_config {
	char name[MG_REP_NAME_MAX];
	char *file;
	size_t n_endpoints;
	char **endpoints;
	char *ca_file, *cert_file, *key_file; /**< resolved against the directory, or NULL */
};

/**
 * Read @p path (cluster @p name, relative paths against @p dir): 1 a cluster
 * config, 0 not one (not a YAML map with `endpoints`: ignored, as Cilium
 * does), or < 0 with @p err set (a map with endpoints but bad keys).
 */
int mg_rep_etcd_config_load(const char *path, const char *name, const char *dir,
                            struct mg_rep_etcd_config *out, struct mg_error *err);
void mg_rep_etcd_config_clear(struct mg_rep_etcd_config *c);

struct mg_replicator;

/** Create (no connection yet: the first tick connects). NULL with @p err set. */
struct mg_replicator *mg_replicator_create(const struct mg_rep_config *c, struct mg_error *err);

/** Stop every cluster's thread, release the lease when held, free. NULL is fine. */
void mg_replicator_free(struct mg_replicator *r);

/**
 * One turn of the writer: the lease, the clustermesh directory, what the
 * clusters' threads read, Redis loss checks, drains. Call it often (every
 * few milliseconds: it bounds the put -> Redis latency); it does not block
 * longer than one Redis round trip per batch.
 */
void mg_replicator_tick(struct mg_replicator *r);

/** The control socket commands (replicator.status, replicator.troubleshoot). */
int mg_replicator_register(struct mg_replicator *r, struct mg_ctl_server *srv,
                           struct mg_error *err);

/** Status as `replicator status -o json` prints it: a new reference. */
json_t *mg_replicator_status(struct mg_replicator *r);

/** Prometheus text of the meshgate_replicator_* families (any thread). */
int mg_replicator_metrics(void *r, struct mg_metrics_buf *b);

#endif /* MG_REPLICATOR_H */
