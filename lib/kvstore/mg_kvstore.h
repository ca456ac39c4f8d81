/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/kvstore: the Redis data model (Cilium's kvstore key layout and JSON
 * values, stored in Redis instead of etcd) and the writer; the gateway's
 * sync client has its own header, mg_kv_sync.h. The data model is pure C
 * over strings: key builders and parsers for every key kind, and strict
 * encoders/decoders for the values, so that the writer tools, the
 * replicator and the gateway agree on one format and garbage read from
 * Redis is rejected with a clear message, never trusted.
 *
 * Keys (see docs/kvstore.md):
 *   cilium/state/identities/v1/id/<ID>             label string
 *   cilium/state/ip/v1/default/<IP>[/<len>]        IPIdentityPair JSON
 *   cilium/cache/identities/v1/<cluster>/id/<ID>   replicated copy
 *   cilium/cache/ip/v1/<cluster>/<IP>[/<len>]      replicated copy
 *   cilium/cluster-config/<cluster>                cluster config JSON
 *   cilium/synced/<cluster>/<prefix>               RFC 3339 canary
 *   meshgate/log/<cluster>                         change stream
 *   meshgate/epoch/<cluster>                       random token
 *   meshgate/removed/<cluster>                     removal marker (RFC 3339)
 *   meshgate/heartbeat/<cluster>                   replicator's heartbeat (RFC 3339)
 *   meshgate/replicator/lease                      the writing replica's token (TTL)
 */
#ifndef MG_KVSTORE_H
#define MG_KVSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_common.h"
#include "mg_identity.h"
#include "mg_ipcache.h"

#define MG_KV_STATE_IDENTITIES "cilium/state/identities/v1"
#define MG_KV_STATE_IP "cilium/state/ip/v1"
#define MG_KV_CACHE_IDENTITIES "cilium/cache/identities/v1"
#define MG_KV_CACHE_IP "cilium/cache/ip/v1"
#define MG_KV_CLUSTER_CONFIG "cilium/cluster-config"
#define MG_KV_SYNCED "cilium/synced"
#define MG_KV_LOG "meshgate/log"
#define MG_KV_EPOCH "meshgate/epoch"
/* A cluster being drained: its state goes after the readers' grace period. */
#define MG_KV_REMOVED "meshgate/removed"
/* The replicator's heartbeat of a cluster it copies: an RFC 3339 time. */
#define MG_KV_HEARTBEAT "meshgate/heartbeat"
/* The replicators' lease: the token of the one replica that writes (docs/kvstore.md). */
#define MG_KV_LEASE_KEY "meshgate/replicator/lease"
/** Cilium's only ipcache address space name in the state prefix. */
#define MG_KV_IP_NAMESPACE "default"

/** Large enough for every key this module builds. */
#define MG_KV_KEY_MAX 256
/** Cilium's limit on cluster names (lower-case alnum and '-'). */
#define MG_KV_CLUSTER_NAME_MAX 32
/** Cilium's default and the only supported maxConnectedClusters values. */
#define MG_KV_MAX_CONNECTED_DEFAULT 255

/**
 * Which copy of a cluster's data a key names: the cluster's own state
 * (written by that cluster's writers; the cluster name is not part of the
 * key) or the replicated cache under the site Redis (the name is).
 */
enum mg_kv_scope {
	MG_KV_SCOPE_STATE,
	MG_KV_SCOPE_CACHE,
};

/** true when @p name is a valid cluster name: 1-32 of [a-z0-9-], alnum at both ends. */
bool mg_kv_cluster_name_valid(const char *name);

/*
 * Key builders: write the key into @p buf of @p size bytes. @p cluster is
 * required for the cache scope and the per-cluster keys and ignored for
 * the state scope. Return the key's length, or -EINVAL (bad cluster name,
 * id or prefix) / -ENAMETOOLONG (buffer too small).
 */
int mg_kv_identity_key(char *buf, size_t size, enum mg_kv_scope scope, const char *cluster,
                       uint32_t id);
/**
 * Key of a prefix: "<IP>" when @p host_route (plen must then be 32/128),
 * "<IP>/<len>" otherwise (also for /32 and /128: Cilium writes both forms).
 */
int mg_kv_ip_key(char *buf, size_t size, enum mg_kv_scope scope, const char *cluster,
                 const struct mg_ipcache_entry *e, bool host_route);
int mg_kv_cluster_config_key(char *buf, size_t size, const char *cluster);
/** Canary for @p prefix, e.g. MG_KV_STATE_IDENTITIES. */
int mg_kv_synced_key(char *buf, size_t size, const char *cluster, const char *prefix);
int mg_kv_log_key(char *buf, size_t size, const char *cluster);
int mg_kv_epoch_key(char *buf, size_t size, const char *cluster);
/** meshgate/removed/<cluster>: the removal marker (docs/kvstore.md, "Lifecycle"). */
int mg_kv_removed_key(char *buf, size_t size, const char *cluster);
/** meshgate/heartbeat/<cluster>: RFC 3339 UTC time the replicator last heard from
 *  the cluster (docs/kvstore.md, "Heartbeat"). */
int mg_kv_heartbeat_key(char *buf, size_t size, const char *cluster);

/**
 * Parse an RFC 3339 time of @p len bytes as Go's time.RFC3339 reads it
 * (what Cilium's canaries and heartbeats and the replicator write):
 * YYYY-MM-DDTHH:MM:SS, optional fraction of seconds, then Z or +hh:mm /
 * -hh:mm; fields in range (no leap second 60). *@p unix_s: seconds since
 * the epoch (fraction dropped). 0 or -EINVAL.
 */
int mg_kv_time_parse(const char *s, size_t len, int64_t *unix_s);

/*
 * Key parsers: the inverse of the builders. @p cluster as above. Return 0,
 * or -EINVAL when @p key is not of that kind (wrong prefix, other cluster,
 * bad number, bad address, host bits set).
 */
int mg_kv_identity_key_parse(const char *key, enum mg_kv_scope scope, const char *cluster,
                             uint32_t *id);
/** Fills family/addr/plen of @p e; *@p host_route tells which form the key had. */
int mg_kv_ip_key_parse(const char *key, enum mg_kv_scope scope, const char *cluster,
                       struct mg_ipcache_entry *e, bool *host_route);

/* ---- identity values ---- */

/**
 * Decode an identity value (Cilium's label string, as its SortedList
 * writes it) into empty @p ls. Strict, unlike mg_labels_parse(): at most
 * MG_KV_IDENTITY_VALUE_MAX bytes, at least one label, and every label
 * "source:key=value;" with a source of at most MG_KV_LABEL_SOURCE_MAX
 * characters and a key and a value of at most MG_KV_LABEL_PART_MAX each,
 * each label once, no NUL byte. Anything else (a bare word, a missing
 * ';', a label without source or '=') is not a label string.
 * 0, -EINVAL with @p err set, -ENOMEM.
 */
#define MG_KV_IDENTITY_VALUE_MAX 65536
#define MG_KV_LABEL_SOURCE_MAX 64
#define MG_KV_LABEL_PART_MAX 1024
int mg_kv_identity_value_decode(const char *val, size_t len, struct mg_labels *ls,
                                struct mg_error *err);

/**
 * The cluster label of an identity of cluster @p cluster, as Cilium's
 * clusterNameValidator checks remote identities: k8s:io.cilium.k8s.policy.
 * cluster must name @p cluster with source k8s, and a remote identity
 * (not @p local) must have it. 0, or -EXDEV with @p why set.
 */
int mg_kv_cluster_label_check(const char *cluster, bool local, const struct mg_labels *ls,
                              char *why, size_t size);

/* ---- ipcache values: Cilium's IPIdentityPair ---- */

#define MG_KV_IP_MAX_NAMED_PORTS 64

/** One decoded IPIdentityPair. Clear with mg_kv_ip_pair_clear(). */
struct mg_kv_ip_pair {
	/** IP and Mask: family, addr (host bits zero), plen; identity = ID. */
	struct mg_ipcache_entry prefix;
	/** Mask was null: the key is "<IP>" and the prefix a host route. */
	bool host_route;
	/** Node hosting the address ("" when none), as text. */
	char host_ip[48];
	/** Encryption key index (Cilium's Key, 0-255). */
	uint8_t key;
	char metadata[256];
	char k8s_namespace[256];
	char k8s_pod_name[256];
	size_t n_named_ports;
	struct mg_named_port *named_ports;
	/** NamedPorts entries dropped by the decoder (see mg_kv_ip_pair_decode). */
	size_t n_dropped_ports;
};

/** Free the named ports of @p p and zero it. */
void mg_kv_ip_pair_clear(struct mg_kv_ip_pair *p);

/**
 * Encode @p p as Cilium's JSON (fields in Cilium's order, Mask as base64
 * or null, K8s fields and NamedPorts omitted when empty). New string
 * (free()), or NULL with errno set (EINVAL for a bad pair, ENOMEM).
 */
char *mg_kv_ip_pair_encode(const struct mg_kv_ip_pair *p);

/** "TCP", "UDP" or "SCTP" of a protocol number (as Cilium's NamedPorts write them), or NULL. */
const char *mg_kv_proto_name(uint8_t proto);

/** A protocol name of NamedPorts (TCP, UDP, SCTP; any case) into its number. 0 or -EINVAL. */
int mg_kv_proto_parse(const char *s, uint8_t *proto);

/**
 * Decode Cilium's JSON of @p len bytes into zeroed @p p, as Cilium's agent
 * reads it (docs/kvstore.md, "ipcache entry"). Strict where Go's
 * json.Unmarshal fails the whole value: types, ID 0..MG_ID_MAX (0: an
 * endpoint without identity yet, which a reader skips), Key 0..255, a
 * named port's Port 0..65535; IP must be an address (::ffff:a.b.c.d is
 * the IPv4 address) without host bits beyond Mask, Mask null or a
 * canonical base64 mask (its leading ones are the length, whatever its
 * byte length, as Go's IPMask.Size). A NamedPorts entry Cilium's agent
 * would not use (not an IANA service name, port 0, a protocol other than
 * TCP/UDP/SCTP; "" is TCP) is dropped and counted in n_dropped_ports; names
 * are lower-cased and a later entry of the same name replaces the earlier
 * one (also counted). NamedPorts may also be the older map name ->
 * {Port, Protocol}. Unknown fields are ignored, as Cilium's own decoder
 * does, for forward compatibility.
 * 0, -EINVAL with @p err set (p cleared), -ENOMEM.
 */
int mg_kv_ip_pair_decode(const char *json, size_t len, struct mg_kv_ip_pair *p,
                         struct mg_error *err);

/* ---- cluster config ---- */

struct mg_kv_cluster_config {
	/** As written; 0 when absent (KVStoreMesh up to 1.15 wrote none). The
	 *  encoder wants 1..255 (1..511 with maxConnectedClusters 511); a
	 *  reader refuses 0 as Cilium does (docs/kvstore.md, "Cluster config"). */
	unsigned id;
	bool synced_canaries;
	bool cached;
	/** As written (a uint32); absent or 0 decodes as 255. The encoder wants 255 or 511. */
	unsigned max_connected_clusters;
};

/** Encode as {"id":N,"capabilities":{...}}. New string or NULL + errno. */
char *mg_kv_cluster_config_encode(const struct mg_kv_cluster_config *c);

/**
 * Decode as Go's json.Unmarshal decodes Cilium's CiliumClusterConfig:
 * strict types (numbers are uint32, booleans booleans), every field
 * optional (null reads as absent), unknown fields ignored. Values are not
 * range-checked beyond uint32: id 0 (absent) and the id's fit to
 * maxConnectedClusters are the reader's checks. 0 or -EINVAL/-ENOMEM.
 */
int mg_kv_cluster_config_decode(const char *json, size_t len, struct mg_kv_cluster_config *c,
                                struct mg_error *err);

/* ==== writer (mg_kv_writer*.c): hiredis, synchronous ==== */

/*
 * A writer is one connection to a cluster's Redis. Every key change goes
 * through the Function library (FCALL mg_put / mg_del), so the key and its
 * log entry change together and unchanged values write nothing. Functions
 * returning int give 0 or a negative errno with @p err set: -EINVAL bad
 * argument or bad URL, -EACCES AUTH refused or unsafe password file,
 * -EIO/-ETIMEDOUT/-ECONNREFUSED connection trouble, -EPROTO an error reply,
 * -ESTALE a fenced write refused because the writer's lease is lost
 * (mg_kv_writer_set_fence(): nothing of that call was written).
 */
#define MG_KV_WRITER_URL_DEFAULT "redis://127.0.0.1:6379/0"
#define MG_KV_WRITER_MAXLEN_DEFAULT 100000u
#define MG_KV_WRITER_TIMEOUT_MS_DEFAULT 5000u
/** mg_batch's bound on the changes of one call (conf/redis/meshgate.lua). */
#define MG_KV_BATCH_MAX 1000u
/** Changes per FCALL mg_batch when the options leave it 0. */
#define MG_KV_WRITER_BATCH_DEFAULT 256u
/** mg_batch calls in flight at most (sent, reply not read yet). */
#define MG_KV_WRITER_PIPELINE 8u

struct mg_kv_writer_opts {
	/** redis://[user[:password]@]host[:port][/db] or unix:///path[?db=N]. */
	const char *url;
	const char *user;          /**< ACL user, overrides the URL's; NULL: none */
	const char *password;      /**< overrides the URL's; NULL: none */
	const char *password_file; /**< read the password here (mode & 077 must be 0) */
	const char *functions;     /**< meshgate.lua to FUNCTION LOAD REPLACE; NULL: skip */
	const char *cluster;       /**< cluster whose keys are written (required) */
	/**
	 * false (the default): the per-cluster layout, cilium/cache/{identities,
	 * ip}/v1/<cluster>/..., with a cluster config that says cached, so one
	 * Redis holds many clusters. true: Cilium's single-cluster layout,
	 * cilium/state/..., whose keys do not name the cluster: only for a
	 * Redis that holds this one cluster alone (mg_kv_writer_check_layout).
	 */
	bool single_cluster;
	unsigned maxlen;     /**< log MAXLEN ~; 0: the default */
	unsigned timeout_ms; /**< connect and command timeout; 0: the default */
	unsigned batch;      /**< changes per mg_batch call, 1..MG_KV_BATCH_MAX; 0: default */
	/**
	 * Called around every wait for Redis (the connect, a command, a reply,
	 * a send) with @p io_arg, begin before and end after: a caller that
	 * holds a lock its readers take releases it there, so a hung Redis
	 * stalls the writer alone. Between two waits the writer runs under
	 * the caller's lock as usual. NULL: none.
	 */
	void (*io_begin)(void *io_arg);
	void (*io_end)(void *io_arg);
	void *io_arg;
};

/** A Redis URL's parts; the strings point into the parsed string. */
struct mg_kv_url {
	char *host; /**< NULL for a unix socket */
	int port;   /**< 6379 when not given */
	char *path; /**< unix socket path, or NULL */
	char *user;
	char *password;
	unsigned db;
};

/**
 * Parse @p s, modified in place: redis://[user[:password]@]host[:port][/db]
 * (an IPv6 host in brackets) or unix:///path[?db=N], db 0-15.
 * 0, or -EINVAL with @p err set.
 */
int mg_kv_url_parse(char *s, struct mg_kv_url *u, struct mg_error *err);

struct mg_kv_writer;

/** Connect, AUTH, SELECT, load the functions. NULL with errno and @p err set. */
struct mg_kv_writer *mg_kv_writer_open(const struct mg_kv_writer_opts *o, struct mg_error *err);

void mg_kv_writer_close(struct mg_kv_writer *w);

/**
 * Write cluster @p cluster's keys and log from now on (what is queued is
 * flushed first; unlogged puts are off again). The epoch token is drawn anew, so a log this writer
 * finds missing later gets an epoch no reader has seen. 0 or < 0.
 */
int mg_kv_writer_set_cluster(struct mg_kv_writer *w, const char *cluster, struct mg_error *err);

/**
 * Unlogged puts (@p on): queued puts go out as plain SETs (FCALL mg_fset
 * when fenced, MSET otherwise) with no log entry and no epoch renewal;
 * deletes are refused (-EINVAL). Only for a cluster no reader tails yet:
 * its data written before its cluster config, which readers wait for and
 * then read with a full scan. What is queued is flushed at each switch.
 */
int mg_kv_writer_set_unlogged(struct mg_kv_writer *w, bool on, struct mg_error *err);

/**
 * Create the cluster's epoch unless it exists (FCALL mg_epoch / mg_fepoch
 * with the writer's token), so that the cluster reads as written-to before
 * its log exists. 0 or < 0.
 */
int mg_kv_writer_epoch_create(struct mg_kv_writer *w, struct mg_error *err);

/** 1 when @p key exists, 0 when not, or < 0 (after flushing what is queued). */
int mg_kv_writer_exists(struct mg_kv_writer *w, const char *key, struct mg_error *err);

/**
 * Read a password from @p path: the first line, without its newline. The
 * file must be a regular file that neither group nor others can read.
 */
int mg_kv_password_file_read(const char *path, char *buf, size_t size, struct mg_error *err);

/**
 * Check that the writer's layout fits this Redis before writing: refuse
 * (-EEXIST, @p err says why and what to do) the single-cluster layout when
 * another cluster's config says it holds that layout already, and either
 * layout when this cluster's own config says the other one. 0, -EEXIST,
 * or another negative errno (Redis errors).
 */
int mg_kv_writer_check_layout(struct mg_kv_writer *w, struct mg_error *err);

/** Put @p value at @p key through mg_put: 1 written, 0 unchanged, or < 0. */
int mg_kv_writer_put(struct mg_kv_writer *w, const char *key, const char *value,
                     struct mg_error *err);
/** Delete @p key through mg_del: 1 deleted, 0 it did not exist, or < 0. */
int mg_kv_writer_del(struct mg_kv_writer *w, const char *key, struct mg_error *err);

/**
 * State identity @p id with label string @p labels ("source:key=value"
 * entries separated by ';', a missing source read as "unspec"), written
 * in Cilium's canonical form, which must pass mg_kv_identity_value_decode:
 * 1, 0 or < 0 as above.
 */
int mg_kv_writer_put_identity(struct mg_kv_writer *w, uint32_t id, const char *labels,
                              struct mg_error *err);
int mg_kv_writer_del_identity(struct mg_kv_writer *w, uint32_t id, struct mg_error *err);
/** Ipcache entry of @p p (key form from p->host_route), in the writer's layout: 1, 0 or < 0. */
int mg_kv_writer_put_ip(struct mg_kv_writer *w, const struct mg_kv_ip_pair *p,
                        struct mg_error *err);
int mg_kv_writer_del_ip(struct mg_kv_writer *w, const struct mg_ipcache_entry *e, bool host_route,
                        struct mg_error *err);

/*
 * Batches: changes are queued and sent as FCALL mg_batch calls of
 * opts.batch changes each, up to MG_KV_WRITER_PIPELINE calls in flight on
 * the connection, so Redis pays the function call and the round trip once
 * per batch instead of once per change. The log gets one entry per change
 * that writes, exactly as with mg_put/mg_del, in queue order; a batch is
 * applied atomically (all of it or, on an error reply, none of it).
 *
 * Each queued change names a counter pair that gets +1 written or +1
 * unchanged when its batch's reply arrives (NULL: not counted); it must
 * stay valid until mg_kv_writer_flush() returned. Queue calls may send a
 * full batch and read an older batch's reply, so they fail like the
 * single calls do; mg_kv_writer_flush() sends the partial batch and reads
 * every outstanding reply. After an error the changes still queued are
 * dropped and the replies in flight are read (and counted) when the
 * connection allows: the counters then hold exactly what Redis applied.
 * Every other writer call flushes first, so calls keep their order.
 */
struct mg_kv_batch_counts {
	uint64_t written;   /**< changes that wrote (and logged) */
	uint64_t unchanged; /**< puts of the value already there, dels of absent keys */
};

/** Queue mg_put of @p value at @p key. 0 or < 0. */
int mg_kv_writer_queue_put(struct mg_kv_writer *w, const char *key, const char *value,
                           struct mg_kv_batch_counts *c, struct mg_error *err);
/** Queue mg_del of @p key. 0 or < 0. */
int mg_kv_writer_queue_del(struct mg_kv_writer *w, const char *key, struct mg_kv_batch_counts *c,
                           struct mg_error *err);
/** As mg_kv_writer_put_identity(), queued. 0 or < 0 (-EINVAL: nothing queued). */
int mg_kv_writer_queue_identity(struct mg_kv_writer *w, uint32_t id, const char *labels,
                                struct mg_kv_batch_counts *c, struct mg_error *err);
/** As mg_kv_writer_put_ip(), queued. 0 or < 0 (-EINVAL: nothing queued). */
int mg_kv_writer_queue_ip(struct mg_kv_writer *w, const struct mg_kv_ip_pair *p,
                          struct mg_kv_batch_counts *c, struct mg_error *err);
/**
 * Send what is queued without waiting for the replies in flight (a reply
 * is read only when the ring of MG_KV_WRITER_PIPELINE calls is full): the
 * changes reach Redis now while the caller goes on; mg_kv_writer_flush()
 * later reads the replies and reports their errors. 0 or < 0.
 */
int mg_kv_writer_send(struct mg_kv_writer *w, struct mg_error *err);
/** Send what is queued and wait for every reply. 0 or < 0 (the first error). */
int mg_kv_writer_flush(struct mg_kv_writer *w, struct mg_error *err);

/** cilium/cluster-config/<cluster> through mg_put: 1, 0 or < 0. */
int mg_kv_writer_cluster_config(struct mg_kv_writer *w, const struct mg_kv_cluster_config *c,
                                struct mg_error *err);

/**
 * The canaries cilium/synced/<cluster>/<prefix> for the identities and ip
 * prefixes of the writer's layout, set to the current time (RFC 3339, UTC)
 * with mg_kv_writer_set_plain() (fenced when the writer is). Not logged: a
 * canary says "a full copy was written", it is not data.
 */
int mg_kv_writer_canaries(struct mg_kv_writer *w, struct mg_error *err);

/**
 * SCAN the cluster's identity and ip keys (in the writer's layout) and
 * delete (mg_del, in batches) each one for which @p keep returns false. Keys under those prefixes that do
 * not parse as identity/ip keys are left alone.
 * @return the number deleted, or < 0.
 */
int mg_kv_writer_prune(struct mg_kv_writer *w, bool (*keep)(const char *key, void *arg), void *arg,
                       struct mg_error *err);

/**
 * Read every string key whose name starts with @p match_prefix with its
 * value: SCAN MATCH <prefix>* COUNT 1000 (glob characters of the prefix
 * escaped), then one MGET per SCAN page, and @p fn(@p arg, key, klen,
 * val, vlen) for each key that holds a string (keys of other types, and
 * keys deleted between the SCAN and the MGET, are skipped). @p fn returns
 * 0 to go on, < 0 to stop (returned as it is); it may call the writer's
 * other functions (queued changes are flushed before the next SCAN/MGET).
 * As SCAN guarantees: every key that exists for the whole walk is
 * reported at least once, a key may be reported twice (SCAN returned it
 * twice, e.g. while the keyspace was rehashed: callers that count must
 * tolerate it), keys created or deleted meanwhile may or may not be.
 * The key and value are binary-safe and NUL-terminated, valid only during
 * the call. 0 or < 0.
 */
int mg_kv_writer_scan_values(struct mg_kv_writer *w, const char *match_prefix,
                             int (*fn)(void *arg, const char *key, size_t klen, const char *val,
                                       size_t vlen),
                             void *arg, struct mg_error *err);

/*
 * ---- lease and fencing (mg_kv_lease.c; docs/kvstore.md, "Lease and fencing") ----
 *
 * Several replicas of a writer (meshgate-replicator) run; exactly one of
 * them writes: the one whose token is the value of the lease key (usually
 * MG_KV_LEASE_KEY), a string with a TTL. The holder renews it at a third
 * of the TTL; the others try to acquire it at the same pace and take over
 * once it lapsed. Fencing makes that safe against a holder that was paused
 * or cut off longer than the TTL: once mg_kv_writer_set_fence() set the
 * lease key and token on a writer, every write it issues (put, del, the
 * queue and its batches, cluster_config, canaries, prune, set_plain,
 * del_plain) goes through the fenced functions, which Redis refuses,
 * atomically with the write, unless the lease holds that token at that
 * moment. A refused call writes nothing and returns -ESTALE; queued
 * changes are dropped and the calls in flight read and counted, as after
 * any error (see "Batches"). A token names one tenure: after losing the
 * lease, draw a new one before acquiring again.
 *
 * The lease calls flush the writer's queue first, like every other call,
 * and return that flush's error, if any, without having run.
 */

/** Length of a token of mg_kv_token_new() (hex of 16 random bytes). */
#define MG_KV_TOKEN_LEN 32
/** Longest lease token the lease and fence calls accept. */
#define MG_KV_TOKEN_MAX 128

/**
 * Draw a random token (MG_KV_TOKEN_LEN hex characters, getrandom) into
 * @p buf of @p size >= MG_KV_TOKEN_LEN + 1 bytes: a lease token or an
 * epoch. 0, -EINVAL (buffer too small), -EIO (no random bytes; errno says why).
 */
int mg_kv_token_new(char *buf, size_t size);

/**
 * Fence every later write of @p w with the lease @p lease_key holding
 * @p token (both copied), or, with @p token NULL, write unfenced again (as
 * meshgatectl kv does). Flushes the queue first: on a flush error that
 * error is returned and the fence is unchanged. 0, -EINVAL (empty key or
 * token, token longer than MG_KV_TOKEN_MAX, key longer than MG_KV_KEY_MAX),
 * or the flush's error.
 */
int mg_kv_writer_set_fence(struct mg_kv_writer *w, const char *lease_key, const char *token,
                           struct mg_error *err);

/**
 * Acquire the lease @p lease_key for @p token with a TTL of @p ttl_ms
 * (FCALL mg_lease_acquire: SET NX PX, or a renewal when it holds @p token
 * already). @return 1 held by @p token now; 0 held by another token, then
 * written to @p holder (of @p holder_size bytes, truncated; NULL: not
 * wanted) with its remaining TTL in *@p pttl_ms (-1: it has none, set by
 * hand; NULL: not wanted); < 0 error. On 1, @p holder is @p token and
 * *@p pttl_ms @p ttl_ms.
 */
int mg_kv_lease_acquire(struct mg_kv_writer *w, const char *lease_key, const char *token,
                        unsigned ttl_ms, char *holder, size_t holder_size, int64_t *pttl_ms,
                        struct mg_error *err);
/**
 * Renew the lease for @p ttl_ms more if it holds @p token (FCALL
 * mg_lease_renew). 1 renewed, 0 lost (lapsed or held by another: stop
 * writing, the fenced writes are refused anyway), < 0 error (the lease
 * may still be held: retry before a third of the TTL is left).
 */
int mg_kv_lease_renew(struct mg_kv_writer *w, const char *lease_key, const char *token,
                      unsigned ttl_ms, struct mg_error *err);
/** Delete the lease if it holds @p token (FCALL mg_lease_release): 1, 0 not held, < 0. */
int mg_kv_lease_release(struct mg_kv_writer *w, const char *lease_key, const char *token,
                        struct mg_error *err);

/**
 * SET @p key to @p value with PX @p px_ms (0: no expiry), not logged: for
 * canaries, heartbeats, the removal marker. Through FCALL mg_fset when the
 * writer is fenced, a plain SET otherwise. 0 or < 0 (-ESTALE: lease lost,
 * nothing written).
 */
int mg_kv_writer_set_plain(struct mg_kv_writer *w, const char *key, const char *value,
                           unsigned px_ms, struct mg_error *err);
/**
 * DEL the @p n keys @p keys, not logged: for canaries, a log stream, an
 * epoch, the removal marker. Through FCALL mg_fdel when the writer is
 * fenced, a plain DEL otherwise, in calls of at most MG_KV_BATCH_MAX keys
 * (each call atomic; a refusal of a later call leaves the earlier ones
 * done). @return how many of the keys existed, or < 0 (-ESTALE: lease
 * lost).
 */
int mg_kv_writer_del_plain(struct mg_kv_writer *w, const char *const *keys, size_t n,
                           struct mg_error *err);

/** The current time as RFC 3339 in UTC ("2026-01-02T03:04:05Z") into @p buf: its length, or < 0. */
int mg_kv_time_now(char *buf, size_t size);

#endif /* MG_KVSTORE_H */
