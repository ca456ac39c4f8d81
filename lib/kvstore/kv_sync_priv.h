/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private shape of the gateway's sync client (mg_kv_sync.h): the state of
 * a cluster and of the client, and the functions its files share. The
 * protocol and its invariants are described in mg_kv_sync.h and
 * docs/kvstore.md; the files split it by job:
 *
 *   mg_kv_sync.c         public API: create, initial, poll, rebind,
 *                        request_resync, reconfigure, stats
 *   mg_kv_sync_tail.c    the connection (backoff, fail-static on loss) and
 *                        tailing the logs (XREAD)
 *   mg_kv_sync_decode.c  keys, values and log entries into validated records
 *   mg_kv_sync_apply.c   records into the identity table and the ipcache:
 *                        conflicts, base layer, the changed list, repair
 *   mg_kv_sync_ports.c   named ports of synced entries given to identities
 *   mg_kv_sync_full.c    full sync: probe, SCAN + MGET, replay, guarded diff
 *   mg_kv_sync_verify.c  verification and the lifecycle of a cluster: stale,
 *                        removal marker, config checks
 *   kv_rmap.c            the record map every copy is kept in
 *   kv_strs.c            the reader sink the full sync's MGET replies go through
 *
 * Functions shared between those files carry the kvs_ prefix. Everything
 * runs on the caller's control thread.
 */
#ifndef MG_KV_SYNC_PRIV_H
#define MG_KV_SYNC_PRIV_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "kv_rmap.h"
#include "mg_common.h"
#include "mg_kv_sync.h"

/* One configured cluster: its config, its place in its log, its live copy. */
struct cl {
	char name[MG_KV_CLUSTER_NAME_MAX + 1];
	bool local;
	unsigned want_id; /* the id the gateway expects, 0: any */
	unsigned cid;
	enum mg_kv_scope scope;
	bool present, synced, refused, need_resync;
	bool removing;      /* the removal marker is there */
	bool removed;       /* removed by its marker: holds nothing */
	uint64_t remove_at; /* monotonic ms of the removal, with removing */
	/* Stale: the copy is kept as it is while it may be out of date. */
	enum mg_kv_stale_reason stale;
	uint64_t stale_since; /* Unix time (s) */
	enum mg_kv_resync_cause cause;
	char cfg_key[MG_KV_KEY_MAX], log_key[MG_KV_KEY_MAX], epoch_key[MG_KV_KEY_MAX];
	char removed_key[MG_KV_KEY_MAX];
	/* The replicator's heartbeat: its key, its last value, and whether it
	 * says the copy may be out of date (too old, or unparsable). */
	char hb_key[MG_KV_KEY_MAX];
	char hb_raw[64];
	bool hb_stale;
	char cfg[256]; /* the cluster config as last applied, "" when none */
	/* The config as read by the last verification (vraw), decoded (v*),
	 * and refused (cfg_why says why) when it cannot be used. */
	char vraw[256];
	unsigned vid;
	bool vcached, vcanaries;
	bool cfg_ok;
	char cfg_why[160];
	char epoch[128];
	char last_id[48];
	/* Log entries accounted for up to last_id (XINFO entries-added at the
	 * noted id, plus every entry replayed or tailed since): more entries
	 * removed from the log than that means an unread one was trimmed. */
	uint64_t consumed;
	char why[160]; /* why the last sync attempt did not finish */
	struct rmap live;
	struct mg_kv_sync_stats st;
};

/* Named ports per identity (mg_kv_sync_ports.c has the rule). */
struct npref {
	struct mg_named_port np;
	uint32_t refs;
};

struct npid {
	uint32_t id;
	size_t n, cap; /* v: ports the entries name, sorted (name, proto, port) */
	struct npref *v;
	size_t n_app; /* app: what this client put into the table, sorted */
	struct mg_named_port *app;
};

/* The client: connection, clusters, and the batch being built. */
struct mg_kv_sync {
	struct mg_kv_sync_params p;
	char *url, *user, *password;
	char *urlbuf; /* the URL in its parsed form; u points into it */
	struct mg_kv_url u;
	struct mg_identity_table *ids;
	struct mg_ipcache *ipc;
	enum mg_cluster_mode mode;
	redisContext *ctx;
	size_t n;
	struct cl *c;
	size_t *order; /* conflict priority: local first, then lowest cluster id */
	char replid[64];
	uint64_t next_connect_ms, next_verify_ms, backoff_ms;
	unsigned rnd;
	bool was_connected;
	uint32_t **changed;
	size_t *n_changed, cap_changed;
	/* Keys removed from the live copies by the batch being built (since
	 * the last poll/initial/rebind began): what a discarded batch would
	 * leave behind in the tables. Kept for the repair when the caller
	 * asks for a resync after a failed publish (mg_kv_sync_request_resync). */
	struct rkey *gone;
	size_t n_gone, cap_gone;
	bool repair; /* re-stage every live entry and the gone keys at the next poll */
	/* How many clusters hold each prefix (records' identity field), kept
	 * while there are several: the rule is a prefix held by one cluster,
	 * and then neither its winner nor a conflict needs a walk over every
	 * cluster's copy (with 255 clusters that walk was most of a start). */
	struct rmap owners;
	bool track_owners;
	struct npid *npids; /* named ports per identity, sorted by id */
	size_t n_npids, cap_npids;
};

/* A Redis key and value, validated: the record they make. */
struct decoded {
	struct rkey k;
	uint32_t identity;
	uint8_t n_np; /* an ipcache entry's named ports (owned) */
	struct mg_named_port *np;
};

/* What XINFO STREAM says of a log. */
struct sinfo {
	char last[48], maxdel[48];
	uint64_t added, length;
};

static inline uint64_t
now_ms(void)
{
	return mg_time_ns() / 1000000u;
}

static inline void
sleep_ms(uint64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static inline uint64_t
wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec;
}

/*
 * The copy is followed through the log: not stale, or stale only for
 * its heartbeat (what Redis has is still applied; the replicator just has
 * not heard from the cluster).
 */
static inline bool
kvs_tailed(const struct cl *c)
{
	return c->synced && !c->need_resync &&
	       (c->stale == MG_KV_STALE_NONE || c->stale == MG_KV_STALE_HEARTBEAT);
}

/* ---- mg_kv_sync_tail.c: the connection and the tail ---- */

/* Drop the connection, keep the tables (fail-static), schedule a reconnect. */
void kvs_disconnect(struct mg_kv_sync *s);
/* A reply, or NULL after a connection error (then disconnected). */
redisReply *kvs_cmd(struct mg_kv_sync *s, int argc, const char **argv);
/* Connect when due (backoff); verify right after. 0, -ENOTCONN, -ENOMEM. */
int kvs_ensure_connected(struct mg_kv_sync *s);
/* XREAD BLOCK over the synced clusters' logs, apply the batch: entries applied, or < 0. */
int kvs_tail(struct mg_kv_sync *s);

/* ---- mg_kv_sync_decode.c: validation ---- */

/* A key of @c's layout into d->k: 0, or -ENOENT (not a key the client syncs). */
int kvs_key_decode(const struct cl *c, const char *key, struct decoded *d);
/* Validate a value for d->k, counting rejections: 1 accepted, 0 skipped, -ENOMEM. */
int kvs_decode_value(struct mg_kv_sync *s, struct cl *c, const char *key, const char *val,
                     size_t len, struct decoded *d);
/* A reply's string as a new NUL-terminated string (NULL: out of memory). */
char *kvs_reply_dup(const redisReply *r);
/* One log entry into map @m (a shadow), or into the tables when @m is NULL. */
int kvs_log_entry_to_shadow(struct mg_kv_sync *s, struct cl *c, struct rmap *m,
                            const redisReply *fields);

/* ---- mg_kv_sync_apply.c: applying to the tables ---- */

/* Note identity @id as changed in this call's list. 0 or -ENOMEM. */
int kvs_changed_push(struct mg_kv_sync *s, uint32_t id);
/* Sort the changed list, each id once (end of a call). */
void kvs_changed_dedupe(struct mg_kv_sync *s);
/* Count the prefix owners anew (the cluster list changed). 0 or -ENOMEM. */
int kvs_owners_rebuild(struct mg_kv_sync *s);
/* Stage the winner of prefix @k (or the base layer's entry, or a delete). */
int kvs_ip_recompute(struct mg_kv_sync *s, const struct rkey *k, const struct cl *hint);
/* Apply a validated put to @c's live copy and the tables (takes @value and d->np). */
int kvs_apply_put(struct mg_kv_sync *s, struct cl *c, struct decoded *d, char *value);
/* Apply record @r, new in @c's live copy, to the tables (it leaves the copy when refused). */
int kvs_apply_new(struct mg_kv_sync *s, struct cl *c, struct rec *r);
/* Apply a delete of @k to @c's live copy and the tables. */
int kvs_apply_del(struct mg_kv_sync *s, struct cl *c, const struct rkey *k);
/* Begin a batch; after a discarded one, re-stage what it may have lost first. */
int kvs_batch_begin(struct mg_kv_sync *s);
/* The conflict order (s->order): local first, then lowest cluster id, then config order. */
void kvs_sort_order(struct mg_kv_sync *s);

/* ---- mg_kv_sync_ports.c: named ports ---- */

/* Make the table's named ports of identity e->id match its entries'. */
int kvs_np_apply(struct mg_kv_sync *s, struct npid *e);
/* An entry of @c naming ports @np of identity @id came (@delta 1) or went (-1). */
int kvs_np_ref(struct mg_kv_sync *s, struct cl *c, uint32_t id, const struct mg_named_port *np,
               size_t n, int delta);
/* Identity @id was (re)put into the table: give it its named ports. */
int kvs_np_refresh(struct mg_kv_sync *s, uint32_t id);
void kvs_np_free(struct mg_kv_sync *s);
/* The same named ports, in the same order. */
bool kvs_np_list_eq(const struct mg_named_port *a, size_t na, const struct mg_named_port *b,
                    size_t nb);

/* ---- mg_kv_sync_full.c: full sync ---- */

/* An XINFO STREAM reply into @si ("0-0" and zeros when there is no stream). */
void kvs_stream_info_parse(const redisReply *r, struct sinfo *si);
/* Resync every cluster that needs it (or is not synced yet), together. */
int kvs_resync_due(struct mg_kv_sync *s);

/* ---- mg_kv_sync_verify.c: verification and lifecycle ---- */

/* @c's copy may be out of date for reason @r (said once per episode); kept as it is. */
void kvs_stale_set(struct cl *c, enum mg_kv_stale_reason r);
void kvs_stale_clear(struct cl *c);
/* A full resync of @c is due, counted under @cause (once until it is done). */
void kvs_mark(struct cl *c, enum mg_kv_resync_cause cause);
/* Remove everything @c holds, as deletions of the batch; it is tailed no more. */
int kvs_remove_state(struct mg_kv_sync *s, struct cl *c);
/* Verify every cluster in one pipelined round trip. 0, -ENOTCONN, -ENOMEM. */
int kvs_verify(struct mg_kv_sync *s);

#endif /* MG_KV_SYNC_PRIV_H */
