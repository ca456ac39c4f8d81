/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private shape of the replicator (mg_replicator.h). The files split it by
 * job:
 *
 *   rep_config.c   the YAML config and the clusters' etcd config files
 *   rep_source.c   one thread per remote cluster: etcd config, canaries,
 *                  paged list, watch, heartbeat, rate limit, backoff
 *   rep_core.c     the writer's turn: directory scan, messages of the
 *                  sources into the copies, validation, the filter
 *   rep_redis.c    Redis: lease and fencing, full resync by diff, drain,
 *                  loss detection
 *   rep_status.c   status, control commands, metrics
 *   rep_map.c      the copies
 *
 * Functions shared between the files carry the rep_ prefix.
 */
#ifndef REP_PRIV_H
#define REP_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_kvstore.h"
#include "mg_replicator.h"
#include "rep_map.h"

struct mg_rep_filter;

/* The two prefixes copied. */
enum {
	REP_IDS,
	REP_IP,
	REP_NPREFIX
};

/* What a cluster's source thread is doing. */
enum rep_state {
	REP_ST_CONNECTING,
	REP_ST_WAIT_CONFIG,
	REP_ST_WAIT_CANARIES,
	REP_ST_LISTING,
	REP_ST_WATCHING,
	REP_ST_BACKOFF,
	REP_ST_REFUSED, /* the cluster config cannot be used: retried slowly */
	REP_ST_STOPPED,
	REP_ST_COUNT
};

/* Why a source reconnected or relisted. */
enum rep_cause {
	REP_C_CONNECT,    /* connection, TLS, unreachable */
	REP_C_PERMISSION, /* etcd refused the read */
	REP_C_CONFIG,     /* cluster config missing, bad, refused, changed */
	REP_C_LIST,       /* a list failed half-way */
	REP_C_WATCH,      /* the watch ended or was canceled */
	REP_C_COMPACTED,  /* the watch's revision was compacted */
	REP_C_CLUSTER_ID, /* etcd's cluster id changed: a new etcd */
	REP_C_HEARTBEAT,  /* no heartbeat for etcd.heartbeat_timeout */
	REP_C_TIMEOUT,    /* a request timed out */
	REP_C_LIMIT,      /* more entries than limits.max_entries */
	REP_C_COUNT
};

/* Calls whose rate-limiter waits are measured. */
enum rep_call {
	REP_CALL_STATUS,
	REP_CALL_RANGE,
	REP_CALL_WATCH,
	REP_CALL_COUNT
};

#define REP_HIST_BUCKETS 12
extern const double rep_hist_bounds[REP_HIST_BUCKETS]; /* seconds */

/* Messages from a source thread to the writer. */
enum rep_msg_kind {
	REP_M_CONFIG,     /* cfg/raw: the cluster config read (or none) */
	REP_M_LIST_BEGIN, /* prefix: a new list starts (generation gen) */
	REP_M_KVS,        /* prefix: keys listed */
	REP_M_LIST_END,   /* prefix: the list is complete */
	REP_M_EVENTS,     /* prefix: watch events */
	REP_M_HEARTBEAT,  /* the remote heartbeat changed */
	REP_M_RESET,      /* the source starts over: nothing synced until the next LIST_END */
};

struct rep_kv {
	char *key; /* after the prefix; NUL-terminated; value follows in the same block */
	char *val; /* NULL for a delete */
	uint32_t klen, vlen;
};

struct rep_msg {
	struct rep_msg *next;
	enum rep_msg_kind kind;
	int prefix;
	uint32_t gen;
	size_t n;
	struct rep_kv *kv;
	size_t bytes;
	/* REP_M_CONFIG */
	bool have_cfg;
	struct mg_kv_cluster_config cfg;
	bool cached_prefixes; /* the source reads the remote's cilium/cache/... forms */
};

/* Counters and state of a source, written by its thread under src->mu. */
struct rep_src_stats {
	enum rep_state state;
	char error[512];     /* the last failure, "" after a full sync */
	char version[32];    /* etcd version */
	uint64_t cluster_id; /* etcd cluster id pinned */
	int64_t revision;    /* last revision seen */
	uint64_t connected_at, synced_at, last_event_at, last_heartbeat_at; /* Unix ms */
	uint64_t failures[REP_C_COUNT];
	uint64_t reconnects[REP_C_COUNT];
	uint64_t lists, pages, keys_listed, events;
	uint64_t wait_count[REP_CALL_COUNT], wait_hist[REP_CALL_COUNT][REP_HIST_BUCKETS + 1];
	double wait_sum[REP_CALL_COUNT];
	uint64_t rate_waits; /* calls that had to wait */
	bool bootstrap;      /* at the bootstrap rate */
	/* the queue to the writer (limits.queue_bytes): now, at most, waits */
	uint64_t queue_bytes, queue_peak, queue_waits;
	double queue_wait_sum; /* seconds the reader waited for room */
};

struct rep_src {
	struct mg_replicator *r;
	char name[MG_REP_NAME_MAX];
	struct mg_rep_etcd_config ecfg; /* own copy */
	pthread_t th;
	bool started;
	atomic_bool stop;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* the queue has room again */
	struct rep_msg *head, *tail;
	size_t qbytes;
	struct rep_src_stats st;
	/* thread-private */
	uint32_t gen;
	double tokens;
	uint64_t tokens_at;
	unsigned backoff_n;
};

/* A value refused: listed by `replicator status`. */
struct rep_refusal {
	char key[MG_KV_KEY_MAX];
	char why[160];
	uint64_t at; /* Unix ms */
};
#define REP_REFUSALS_KEPT 16

enum rep_refuse_reason {
	REP_R_PARSE,
	REP_R_RANGE,
	REP_R_CLUSTER,
	REP_R_KEY,
	REP_R_SIZE,
	REP_R_COUNT
};

/* A file of the clustermesh directory, as the last scan saw it. */
struct rep_file {
	char name[MG_REP_NAME_MAX];
	int rc; /* 1 a cluster config, 0 ignored, < 0 broken */
	char why[256];
};

/* One remote cluster on the writer's side. */
struct rep_cluster {
	char name[MG_REP_NAME_MAX];
	char file[512];
	uint64_t file_sig;   /* what the config file (and its certificates) looked like */
	struct rep_src *src; /* NULL while draining */
	bool present;        /* seen in the last directory scan */
	/* the cluster config read from its etcd */
	bool have_cfg, cfg_ok;
	struct mg_kv_cluster_config cfg;
	char cfg_why[256];
	bool cached_prefixes;
	/* the copies and their list state */
	struct rep_map map[REP_NPREFIX];
	uint32_t gen[REP_NPREFIX];
	bool listing[REP_NPREFIX], listed[REP_NPREFIX];
	bool synced; /* both listed since the last reset: canaries may be written */
	bool canaries_written;
	bool config_written; /* this holder wrote the config into Redis */
	bool need_full;      /* write every kept entry and diff Redis (takeover, loss) */
	bool probed;         /* redis_fresh is known for this tenure */
	bool redis_fresh;    /* Redis held nothing of the cluster when the tenure began */
	bool bulk;           /* fresh and no config yet: puts go unlogged (no reader yet) */
	/* drain */
	bool draining;
	bool drain_marked; /* marker set, config deleted */
	uint64_t drain_at; /* monotonic ms when the data goes */
	uint64_t heartbeat_written;
	/* counters */
	uint64_t puts, dels, events, resyncs;
	uint64_t refused[REP_R_COUNT];
	uint64_t filtered, id_zero;
	struct rep_refusal refusals[REP_REFUSALS_KEPT];
	unsigned n_refusals, refusal_next;
};

struct mg_replicator {
	const struct mg_rep_config *c;
	/* Held by the tick, status and metrics; the tick lets it go while it
	 * waits for Redis (rep_io_begin / rep_io_end), so a hung Redis never
	 * keeps status or /metrics waiting. Only the tick changes what it
	 * guards, and never across a wait. */
	pthread_mutex_t lock;
	uint64_t io_since; /* monotonic ms: the writer waits for Redis since; 0: not waiting */
	struct rep_cluster **cl;
	size_t n_cl, cap_cl;
	struct mg_rep_filter *filter;
	char filter_note[256]; /* why the filter's policy part is not used, or "" */
	/* Redis */
	struct mg_kv_writer *w;
	char token[40];
	char prev_token[40]; /* the last tenure's: seen as the holder, it is not another replica */
	bool holder;
	bool lease_gone; /* the lease was just found not ours: free at once means the key vanished */
	char holder_token[64];
	int64_t holder_pttl;
	uint64_t lease_since; /* monotonic ms: holder since */
	uint64_t lease_next, lease_renewed_at, check_next, scan_next, redis_retry_at;
	unsigned redis_backoff;
	char redis_error[512];
	/* counters */
	uint64_t lease_acquired, lease_renewals, lease_lost, lease_expired, takeovers;
	uint64_t redis_errors, redis_reconnects, losses, fenced;
	uint64_t started_at;
	/* the last directory scan */
	char dir_error[512];
	struct rep_file *files;
	size_t n_files, cap_files;
};

/* rep_check.c: would a gateway take this value? */
#define REP_WHY_MAX 200
#define REP_V_ID_ZERO (-1)
struct rep_check_ctx {
	const char *cluster;
	unsigned cid;
	enum mg_cluster_mode mode;
	size_t max_value;
};
void rep_check_ctx_init(struct rep_check_ctx *ck, const struct mg_rep_config *c,
                        const char *cluster, unsigned cid);
/* 0 valid, REP_V_ID_ZERO (skipped), or a refusal reason + 1 with @p why set; *@p id filled. */
int rep_check(const struct rep_check_ctx *ck, int prefix, const char *key, size_t klen,
              const char *val, size_t vlen, uint32_t *id, char *why, size_t size);

/* rep_source.c */
struct rep_src *rep_src_start(struct mg_replicator *r, const struct mg_rep_etcd_config *e,
                              struct mg_error *err);
void rep_src_stop(struct rep_src *s);
struct rep_msg *rep_src_take(struct rep_src *s);
void rep_msg_free(struct rep_msg *m);
const char *rep_state_name(enum rep_state s);
const char *rep_cause_name(enum rep_cause c);
const char *rep_call_name(enum rep_call c);

/* rep_core.c */
uint64_t rep_now_ms(void);  /* monotonic */
uint64_t rep_wall_ms(void); /* Unix */
void rep_cluster_free(struct rep_cluster *cl);
const char *rep_refuse_name(enum rep_refuse_reason r);
/* The writer's hooks around a wait for Redis (mg_kv_writer_opts). */
void rep_io_begin(void *arg);
void rep_io_end(void *arg);
/* Seconds the writer has waited for Redis in its current call; 0 when it is
 * not waiting. r->lock held. */
double rep_io_seconds(const struct mg_replicator *r);
int rep_redis_key(const struct rep_cluster *cl, int prefix, const char *k, char *buf, size_t size);

void rep_file_note(struct mg_replicator *r, const char *name, int rc, const char *why);

/* rep_troubleshoot.c */
int rep_cmd_troubleshoot(void *arg, struct mg_ctl_conn *conn, const json_t *args, json_t **result,
                         struct mg_error *err);

/* rep_redis.c */
void rep_lease_release(struct mg_replicator *r);
bool rep_redis_ready(struct mg_replicator *r);
void rep_redis_lost(struct mg_replicator *r, int rc, const struct mg_error *err);
void rep_lease_tick(struct mg_replicator *r);
void rep_loss_check(struct mg_replicator *r);
int rep_probe_fresh(struct mg_replicator *r, struct rep_cluster *cl);
void rep_tenure_reset(struct mg_replicator *r);
int rep_probe_fresh(struct mg_replicator *r, struct rep_cluster *cl);
void rep_tenure_reset(struct mg_replicator *r);
int rep_write_full(struct mg_replicator *r, struct rep_cluster *cl);
int rep_write_config(struct mg_replicator *r, struct rep_cluster *cl);
int rep_write_canaries(struct mg_replicator *r, struct rep_cluster *cl);
int rep_write_heartbeat(struct mg_replicator *r, struct rep_cluster *cl);
int rep_drain_start(struct mg_replicator *r, struct rep_cluster *cl);
int rep_drain_finish(struct mg_replicator *r, struct rep_cluster *cl);
int rep_undrain(struct mg_replicator *r, struct rep_cluster *cl);

#endif /* REP_PRIV_H */
