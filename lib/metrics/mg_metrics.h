/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/metrics: the gateway's figures for the outside world, in two forms
 * that carry the same numbers under the same names (docs/metrics.md):
 *  - Prometheus text (exposition format 0.0.4) served over HTTP at
 *    /metrics by libmicrohttpd's own polling thread (and a watchdog
 *    thread that cuts slow clients);
 *  - DPDK telemetry commands under /meshgate/ (dpdk-telemetry.py), and the
 *    same dicts as JSON for the control socket.
 *
 * The module never reads live state. The daemon fills a plain
 * struct mg_metrics_snapshot in a collect callback that this module calls
 * from the HTTP thread or a telemetry thread; the daemon makes that
 * callback thread-safe (e.g. by copying a snapshot its control thread
 * refreshes under a mutex). The snapshot has fixed-size arrays only, so it
 * is copyable with memcpy and needs no allocation; it is big (tens of KiB)
 * and is kept on the heap, never on a thread's stack.
 *
 * Labels are bounded: reason, direction, port, cluster, result, cause,
 * family, worker. Never an IP address or an identity.
 */
#ifndef MG_METRICS_H
#define MG_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <jansson.h>

#include "mg_common.h"
#include "mg_ct.h"
#include "mg_datapath.h"
#include "mg_drop.h"
#include "mg_kv_sync.h"

#define MG_METRICS_MAX_PORTS MG_DP_MAX_PORTS
/* Cilium's largest mesh (maxConnectedClusters 511) and the gateway's own. */
#define MG_METRICS_MAX_CLUSTERS 512
#define MG_METRICS_MAX_WORKERS 128
/** Longest port or cluster name, NUL included (MG_CONFIG_NAME_MAX). */
#define MG_METRICS_NAME_MAX 64
#define MG_METRICS_VERSION_MAX 32
/** Default slots of the HTTP endpoint (metrics.max_connections). */
#define MG_METRICS_HTTP_MAX_CONN 16
/** Default seconds for a request's head, and again for its answer (metrics.request_timeout). */
#define MG_METRICS_HTTP_TIMEOUT_S 5

/** Why the HTTP endpoint cut a connection (label reason of meshgate_metrics_http_connections_cut_total). */
enum mg_metrics_http_cut {
	/** its request's line and headers had not arrived in time */
	MG_METRICS_HTTP_CUT_REQUEST_TIMEOUT,
	/** its request arrived, but the exchange (body, response) did not end in time */
	MG_METRICS_HTTP_CUT_RESPONSE_TIMEOUT,
	/** closed to give its slot to a newcomer: the oldest one still waiting for a request */
	MG_METRICS_HTTP_CUT_EVICTED,
	/** a newcomer closed at once: no slot, and none could be freed */
	MG_METRICS_HTTP_CUT_REFUSED,
	MG_METRICS_HTTP_CUT_N,
};

/* ---- the snapshot ---- */

struct mg_metrics_port {
	char name[MG_METRICS_NAME_MAX];
	uint64_t rx_packets;
	uint64_t rx_bytes;
	uint64_t tx_packets;
	uint64_t tx_bytes;
	uint64_t dropped; /**< received on the port and not forwarded */
	/* the port driver's counters (mg_dp_port_hw): lost before a worker saw them */
	uint64_t rx_missed; /**< no room in the receive ring: the worker fell behind */
	uint64_t rx_nombuf; /**< no receive buffer: the mbuf pool ran dry */
	uint64_t rx_errors;
	uint64_t tx_errors;
};

struct mg_metrics_verdicts {
	uint64_t allowed;          /**< IP packets the policy allowed */
	uint64_t denied_egress;    /**< denied by the source's egress policy */
	uint64_t denied_ingress;   /**< denied by the destination's ingress policy */
	uint64_t ct_tracked;       /**< passed by conntrack without a policy lookup */
	uint64_t ct_rechecked;     /**< tracked packets judged again after a change */
	uint64_t ct_related;       /**< ICMP errors passed as related to a flow */
	uint64_t fragments_passed; /**< non-first fragments passed after their first */
	uint64_t arp_passed;
	uint64_t nd_passed;
	uint64_t non_ip_passed;
};

struct mg_metrics_identities {
	char cluster[MG_METRICS_NAME_MAX];
	uint64_t count;
};

struct mg_metrics_policy {
	uint64_t policies; /**< policy documents loaded */
	uint64_t rules;    /**< rules compiled from them */
	uint64_t revision; /**< bumped on every policy change */
	uint64_t reloads_ok;
	uint64_t reloads_failed;
};

struct mg_metrics_conntrack {
	uint64_t entries;   /**< live flow entries (gauge) */
	uint64_t fragments; /**< live fragment records (gauge) */
	uint64_t memory_bytes;
	uint64_t created;
	uint64_t expired;
	uint64_t full;           /**< inserts refused: table full */
	uint64_t fragments_full; /**< fragment records refused: table full */
};

struct mg_metrics_kvstore {
	char cluster[MG_METRICS_NAME_MAX];
	bool connected;
	bool synced;
	uint64_t entries; /**< identities + ipcache entries held (gauge) */
	uint64_t events;
	uint64_t resyncs[MG_KV_RESYNC_N];
	uint64_t full_syncs;
	uint64_t lag_ms;
	uint64_t rejected_range;
	uint64_t rejected_parse;
	uint64_t rejected_cluster;
	uint64_t rejected_heartbeat;  /**< heartbeat values that did not parse */
	uint64_t skipped_no_identity; /**< ipcache values with ID 0, not applied */
	uint64_t named_ports_dropped; /**< NamedPorts entries dropped from used values */
	uint64_t heartbeat_at;        /**< Unix time of the replicator's heartbeat, 0: none */
	uint64_t conflicts;
	uint64_t mass_delete_refusals;
	uint64_t disconnects;
	uint64_t removals;     /**< removals by the cluster's marker carried out */
	bool stale;            /**< the state is kept as it was, maybe out of date */
	bool removing;         /**< the removal marker is there */
	bool removed;          /**< removed by its marker */
	uint64_t stale_since;  /**< Unix time it became stale, 0 when not */
	uint64_t removal_at;   /**< Unix time its state goes, 0 when no removal is due */
	unsigned stale_reason; /**< enum mg_kv_stale_reason */
};

/** The control socket (lib/ctl's figures) and the drop monitor. */
struct mg_metrics_control {
	uint64_t clients;           /**< connections open now (gauge) */
	uint64_t accepted;          /**< connections accepted, refused ones included */
	uint64_t requests;          /**< request lines handled */
	uint64_t errors;            /**< error replies, denied ones included */
	uint64_t denied;            /**< commands that change state refused (EPERM) */
	uint64_t refused_busy;      /**< connections refused: max_clients or the admin reserve */
	uint64_t closed_idle;       /**< closed by the idle timeout */
	uint64_t closed_slow;       /**< closed by the idle timeout with replies unread */
	uint64_t closed_oversize;   /**< closed for a request over max_request_bytes */
	uint64_t closed_stuck;      /**< subscribers closed: read none of their waiting output */
	uint64_t monitor_events;    /**< monitor events handed to subscribers */
	uint64_t monitor_dropped;   /**< monitor events a slow subscriber lost */
	uint64_t monitor_ring_lost; /**< events the workers' rings could not hold */
};

struct mg_metrics_worker {
	unsigned lcore; /**< EAL lcore id (documentation only: the label is the index) */
	uint64_t loops;
	uint64_t busy_loops; /**< loop iterations that received something */
	/** busy_loops / loops over the last sampling interval (mg_metrics_worker_update), 0..1. */
	double busy_ratio;
};

struct mg_metrics_snapshot {
	char version[MG_METRICS_VERSION_MAX];
	uint64_t uptime_seconds;

	unsigned n_ports;
	struct mg_metrics_port ports[MG_METRICS_MAX_PORTS];

	struct mg_metrics_verdicts verdicts;
	uint64_t drops[MG_DROP__MAX]; /**< [MG_DROP_NONE] is ignored */

	uint64_t ipcache_ipv4; /**< ipcache entries (prefixes) by family */
	uint64_t ipcache_ipv6;

	unsigned n_identity_clusters;
	struct mg_metrics_identities identities[MG_METRICS_MAX_CLUSTERS];

	struct mg_metrics_policy policy;
	struct mg_metrics_conntrack conntrack;

	unsigned n_kvstore;
	struct mg_metrics_kvstore kvstore[MG_METRICS_MAX_CLUSTERS];

	unsigned n_workers;
	struct mg_metrics_worker workers[MG_METRICS_MAX_WORKERS];

	struct mg_metrics_control control;

	/** Connections the /metrics endpoint cut, by reason (mg_metrics_snapshot_set_http). */
	uint64_t http_cut[MG_METRICS_HTTP_CUT_N];
};

/**
 * Fill a snapshot. Called from the HTTP thread and from telemetry
 * threads, possibly at the same time: it must be thread-safe and must not
 * block for long. @p out is zeroed before the call.
 * @return 0, or a negative errno (HTTP answers 503, telemetry an error).
 */
typedef int (*mg_metrics_collect_fn)(void *arg, struct mg_metrics_snapshot *out);

/**
 * Copy the data path's summed counters into @p s: verdicts, passes, drops
 * and the figures of ports 0..@p n_ports-1 (names are left as they are).
 * Sets s->n_ports to min(@p n_ports, MG_METRICS_MAX_PORTS).
 */
void mg_metrics_snapshot_set_counters(struct mg_metrics_snapshot *s, const struct mg_dp_counters *c,
                                      unsigned n_ports);

/** Copy conntrack figures (summed over workers) and the tables' memory into @p s. */
void mg_metrics_snapshot_set_ct(struct mg_metrics_snapshot *s, const struct mg_ct_stats *ct,
                                size_t memory);

/**
 * Append one kvstore cluster's figures to @p s.
 * @return 0, or -ENOSPC when MG_METRICS_MAX_CLUSTERS are there already.
 */
int mg_metrics_snapshot_add_kvstore(struct mg_metrics_snapshot *s,
                                    const struct mg_kv_sync_stats *st);

/**
 * Move worker @p w to new loop counts, computing busy_ratio over the
 * interval since the previous update (0 when no loop ran). The daemon
 * keeps one struct per worker, updates it every second or so and copies
 * it into the snapshots.
 */
void mg_metrics_worker_update(struct mg_metrics_worker *w, uint64_t loops, uint64_t busy_loops);

/* ---- Prometheus text ---- */

/** A growable text buffer; errors are sticky (err), so writers need no checks. */
struct mg_metrics_buf {
	char *data; /**< NUL-terminated while len < cap; malloc'd */
	size_t len;
	size_t cap;
	int err; /**< 0 or a positive errno (ENOMEM) once a write failed */
};

enum mg_metrics_type {
	MG_METRICS_COUNTER,
	MG_METRICS_GAUGE,
	MG_METRICS_HISTOGRAM,
};

void mg_metrics_buf_init(struct mg_metrics_buf *b);
void mg_metrics_buf_free(struct mg_metrics_buf *b);

/** Append raw text. */
void mg_metrics_buf_append(struct mg_metrics_buf *b, const char *s, size_t n);

/**
 * "# HELP name help" and "# TYPE name counter|gauge|histogram": call once per family,
 * before its samples. @p help is escaped (backslash, newline).
 */
void mg_metrics_write_family(struct mg_metrics_buf *b, const char *name, enum mg_metrics_type type,
                             const char *help);

/**
 * One sample line: name{k="v",...} value. @p labels is NULL or a
 * NULL-terminated list of name, value pairs; values are escaped
 * (backslash, double quote, newline).
 */
void mg_metrics_write_u64(struct mg_metrics_buf *b, const char *name, const char *const *labels,
                          uint64_t v);

/** As mg_metrics_write_u64(); NaN and infinities as NaN, +Inf, -Inf. */
void mg_metrics_write_double(struct mg_metrics_buf *b, const char *name, const char *const *labels,
                             double v);

/**
 * The samples of one histogram series (exposition format 0.0.4), after
 * its family line (MG_METRICS_HISTOGRAM): name_bucket{labels...,le="b"}
 * for each bound, cumulative, then le="+Inf" (= @p count), name_sum and
 * name_count. @p labels as in mg_metrics_write_u64() (no "le" in it).
 * @param bounds  @p n finite upper bounds, strictly ascending
 * @param counts  @p n observations per bucket, not cumulative: counts[i]
 *   fell in (bounds[i-1], bounds[i]]; those above the last bound are
 *   @p count minus their sum
 * @param sum    the sum of every observation
 * @param count  every observation, the +Inf bucket included
 */
void mg_metrics_write_histogram(struct mg_metrics_buf *b, const char *name,
                                const char *const *labels, const double *bounds,
                                const uint64_t *counts, size_t n, double sum, uint64_t count);

/**
 * The endpoint's own family, meshgate_metrics_http_connections_cut_total,
 * with one sample per reason of @p cut (MG_METRICS_HTTP_CUT_N entries).
 */
void mg_metrics_write_http_cut(struct mg_metrics_buf *b, const uint64_t *cut);

/**
 * Append every meshgate_* family of @p s to @p b (HELP, TYPE, samples).
 * Every drop reason is present, zeros included.
 * @return 0, or -ENOMEM (b->err is set).
 */
int mg_metrics_render(const struct mg_metrics_snapshot *s, struct mg_metrics_buf *b);

/** Label direction of drop reason @p r: "egress", "ingress" (policy reasons) or "none". */
const char *mg_metrics_drop_direction(unsigned r);

/* ---- HTTP endpoint ---- */

struct mg_metrics_http;

/**
 * Parse a listen address: "host:port", "[v6]:port" or ":port" (every
 * address: IPv6 dual-stack, or IPv4 when the host has no IPv6). host is
 * a numeric address or a name resolved with getaddrinfo (first result).
 * Port 0 picks a free port.
 * @return 0, or -EINVAL with @p err filled.
 */
int mg_metrics_parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len,
                            struct mg_error *err);

/** Limits of the HTTP endpoint; a zero field takes its default. */
struct mg_metrics_http_params {
	/** Connections served at once (MG_METRICS_HTTP_MAX_CONN); one peer address holds half at most. */
	unsigned max_connections;
	/**
	 * Milliseconds a connection gets for a request's line and headers,
	 * from its accept or the end of its previous exchange; and as long
	 * again, from there, for the rest of the exchange (body, response).
	 * A kept-alive connection that receives nothing after an exchange
	 * is idle: closed at its deadline too, but not counted as cut.
	 * Default MG_METRICS_HTTP_TIMEOUT_S seconds.
	 */
	unsigned timeout_ms;
};

/**
 * Serve GET/HEAD /metrics on @p listen from libmicrohttpd's internal
 * polling thread, which calls @p collect for every scrape (on a heap
 * snapshot) and adds the endpoint's own figures to it
 * (mg_metrics_snapshot_set_http). Other paths: 404; other methods: 405.
 *
 * Slow clients cannot hold the endpoint: a watchdog thread cuts a
 * connection whose request head, or whose exchange, takes longer than
 * @p p->timeout_ms; a newcomer that finds every slot taken (or its peer
 * address holding half of them) takes the slot of the connection that
 * has waited longest for a request (one whose head is queued, unparsed,
 * counts as arrived), else of the oldest exchange running for a second
 * or more, and is refused only when every slot is in a younger exchange.
 * So a scrape gets through even when slow clients from its own address
 * fill the table. Cut connections are reset (nothing left in kernel
 * buffers); each cut is counted by reason.
 * @param p  limits, or NULL for the defaults
 * @return the endpoint, or NULL with errno set (EINVAL for a bad address,
 *   the bind/listen errno such as EADDRINUSE, ENOMEM, or a thread's
 *   error) and @p err filled.
 */
struct mg_metrics_http *mg_metrics_http_start(const char *listen,
                                              const struct mg_metrics_http_params *p,
                                              mg_metrics_collect_fn collect, void *arg,
                                              struct mg_error *err);

/**
 * Append a program's own families to @p b for one scrape (Prometheus
 * text, through mg_metrics_write_family() and friends). Called from the
 * endpoint's thread: it must be thread-safe and must not block for long.
 * @return 0, or a negative errno: the scrape is answered 503 ("out of
 *   memory" when b->err is set, "metrics unavailable" otherwise).
 */
typedef int (*mg_metrics_render_fn)(void *arg, struct mg_metrics_buf *b);

/**
 * The same endpoint as mg_metrics_http_start() for a program other than
 * the gateway (meshgate-replicator): each scrape is what @p render
 * appends, followed by the endpoint's own family
 * (mg_metrics_write_http_cut()), so @p render must not write it.
 * Limits, slow-client handling, errors and return as
 * mg_metrics_http_start().
 */
struct mg_metrics_http *mg_metrics_http_start_render(const char *listen,
                                                     const struct mg_metrics_http_params *p,
                                                     mg_metrics_render_fn render, void *arg,
                                                     struct mg_error *err);

/**
 * Copy the connections @p h has cut into s->http_cut (thread-safe; any
 * thread). A NULL @p h leaves @p s as it is.
 */
void mg_metrics_snapshot_set_http(struct mg_metrics_snapshot *s, struct mg_metrics_http *h);

/** Label of cut reason @p r ("request_timeout", ...), or NULL when out of range. */
const char *mg_metrics_http_cut_label(unsigned r);

/** The TCP port the endpoint listens on (the one picked for port 0). */
uint16_t mg_metrics_http_port(const struct mg_metrics_http *h);

/** Stop the threads, close every connection and the socket, free @p h (NULL is fine). */
void mg_metrics_http_stop(struct mg_metrics_http *h);

/* ---- DPDK telemetry and JSON ---- */

struct rte_tel_data;

/**
 * The telemetry commands ("/meshgate/info", ...), NULL-terminated. Each
 * returns a dict; /meshgate/ports, /meshgate/kvstore and /meshgate/workers
 * take an optional parameter (a port name, a cluster name, a worker index)
 * that narrows the answer to that one entry.
 */
const char *const *mg_metrics_telemetry_commands(void);

/**
 * Register every command with rte_telemetry_register_cmd, to be answered
 * from @p collect. Telemetry callbacks have no user argument, so the
 * provider is kept in a static: register once per process (before or
 * after rte_eal_init; telemetry must not be disabled with --no-telemetry).
 * @return 0, -EEXIST when already registered, or rte_telemetry's error.
 */
int mg_metrics_telemetry_register(mg_metrics_collect_fn collect, void *arg);

/**
 * Fill @p d with the dict of telemetry command @p cmd for @p s, as the
 * registered callback does (the unit tests call it without a socket).
 * @param params  the command's parameter, or NULL / ""
 * @return 0, -ENOENT for an unknown command or a parameter naming
 *   nothing, or rte_telemetry's error (-EINVAL, -E2BIG).
 */
int mg_metrics_telemetry_fill(const char *cmd, const char *params,
                              const struct mg_metrics_snapshot *s, struct rte_tel_data *d);

/**
 * The same dict as a new JSON object (for the control socket and tests).
 * @return the object, or NULL with errno set (ENOENT as above, ENOMEM).
 */
json_t *mg_metrics_json(const char *cmd, const char *params, const struct mg_metrics_snapshot *s);

#endif /* MG_METRICS_H */
