/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/etcd: a minimal, blocking etcd v3 client over gRPC core's C API and
 * protobuf-c, for meshgate-replicator (docs/etcd-client.md). It speaks the
 * part of etcd's API a reader of Cilium's clustermesh-apiserver needs and a
 * test needs to feed one: Range (paged, pinned to a revision), Put,
 * DeleteRange, Txn of puts, Compact, Maintenance.Status, and Watch (one
 * bidirectional stream carrying several watchers).
 *
 * Threading: an mg_etcd and the watches opened on it are used by one
 * thread at a time; different mg_etcd objects may be used by different
 * threads at once (the replicator runs one thread per remote cluster).
 * Each object has its own channel, connection and completion queues; no
 * call ever waits longer than its deadline.
 *
 * Errors: functions return 0 or a negative errno, and fill @p err with
 * "etcd <Method>: <STATUS_NAME>: <details>". A gRPC status maps to:
 *   DEADLINE_EXCEEDED                  -ETIMEDOUT
 *   PERMISSION_DENIED, UNAUTHENTICATED -EACCES
 *   OUT_OF_RANGE (compacted revision)  -ERANGE
 *   RESOURCE_EXHAUSTED (message size)  -EMSGSIZE
 *   UNAVAILABLE (no connection)        -ECONNREFUSED
 *   INVALID_ARGUMENT (e.g. too many
 *   operations in one txn)             -EINVAL
 *   anything else                      -EIO
 * and local failures to -EINVAL (bad argument), -ENOMEM, -EBADMSG (a
 * response that does not decode). The caller must treat every failure of
 * a call that reached etcd as retryable: a killed etcd ends a watch with
 * INTERNAL or UNAVAILABLE, not with a status naming the cause.
 */
#ifndef MG_ETCD_H
#define MG_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_common.h"

#define MG_ETCD_TIMEOUT_MS_DEFAULT 15000
#define MG_ETCD_CONNECT_TIMEOUT_MS_DEFAULT 5000
#define MG_ETCD_KEEPALIVE_MS_DEFAULT 15000         /* Cilium's */
#define MG_ETCD_KEEPALIVE_TIMEOUT_MS_DEFAULT 25000 /* Cilium's */
#define MG_ETCD_MAX_RECV_DEFAULT (256u << 20)
#define MG_ETCD_MAX_ENDPOINTS 16

/** How to reach one etcd cluster. Zero fields take the defaults above. */
struct mg_etcd_opts {
	/**
	 * "https://host:port" or "http://host:port" (all of one scheme),
	 * host an IPv4 address, a bracketed IPv6 address or a DNS name. One
	 * connection at a time, to one endpoint: after a failure that looks
	 * like the endpoint's (UNAVAILABLE, DEADLINE_EXCEEDED, a watch stream
	 * that ended), the next call opens a new channel to the next endpoint
	 * in the list, round robin.
	 */
	const char *const *endpoints;
	size_t n_endpoints;
	/** PEM files for https: the CA that signed the server (NULL: the
	 * system's roots), the client certificate and its key (both or none). */
	const char *ca_file, *cert_file, *key_file;
	unsigned timeout_ms;         /**< deadline of each unary call */
	unsigned connect_timeout_ms; /**< longest wait for a connection (TCP + TLS) */
	unsigned keepalive_ms;       /**< HTTP/2 ping period while calls are open */
	unsigned keepalive_timeout_ms;
	size_t max_recv; /**< largest response message; gRPC's own 4 MiB fails large pages */
};

struct mg_etcd;

/**
 * Check @p o, read the PEM files and make the channel to the first
 * endpoint; it connects on the first call. Initialises gRPC (counted: the
 * last mg_etcd_close() shuts it down). NULL with errno set and @p err
 * filled: EINVAL (bad endpoint, mixed schemes, cert without key), ENOENT
 * and the like (a PEM file), ENOMEM.
 */
struct mg_etcd *mg_etcd_open(const struct mg_etcd_opts *o, struct mg_error *err);

/** Close the channel. Every watch of @p e must be closed first. NULL is a no-op. */
void mg_etcd_close(struct mg_etcd *e);

/**
 * The gRPC status code (0 OK ... 16 UNAUTHENTICATED) of the last call made
 * on @p e or its watches, or -1 when it failed before reaching gRPC.
 */
int mg_etcd_last_status(const struct mg_etcd *e);

/** "OK", "CANCELLED", ... "UNAUTHENTICATED" for a gRPC status code; "LOCAL" for -1. */
const char *mg_etcd_status_name(int code);

/** The endpoint (as given) that the current or next connection uses. */
const char *mg_etcd_endpoint(const struct mg_etcd *e);

/**
 * Copy gRPC's last error log line (gRPC logs the reason of TLS and
 * connection failures only there) into @p buf; "" when none. Process-wide:
 * it may come from another mg_etcd's channel.
 */
void mg_etcd_grpc_last_log(char *buf, size_t size);

/**
 * The end of the range of keys starting with @p prefix ("cilium/" ->
 * "cilium0"): the prefix with its last byte below 0xff incremented and
 * what follows it dropped. A prefix of only 0xff bytes (or an empty one)
 * has no end: "\0", every key from the prefix on. Writes no NUL.
 * @return the end's length, or -ENAMETOOLONG when @p size is too small.
 */
int mg_etcd_prefix_end(const char *prefix, size_t len, char *out, size_t size);

/** From the header of every response. */
struct mg_etcd_header {
	uint64_t cluster_id; /**< changes when etcd was re-created: resync */
	uint64_t member_id;
	int64_t revision; /**< store revision the response reflects */
};

/** A key and its value; key and value point into the response (not NUL-terminated). */
struct mg_etcd_kv {
	const char *key;
	size_t key_len;
	const char *value; /**< empty for keys-only ranges and deletes */
	size_t value_len;
	int64_t create_revision, mod_revision, version; /**< version 0: deleted */
	int64_t lease;
};

/** A Range response. Free with mg_etcd_range_free(). */
struct mg_etcd_range {
	struct mg_etcd_header hdr;
	struct mg_etcd_kv *kvs; /**< sorted by key */
	size_t n;
	bool more;     /**< more keys in the range than @p limit */
	int64_t count; /**< keys in the whole range */
	void *priv;
};

#define MG_ETCD_RANGE_KEYS_ONLY 0x1u
#define MG_ETCD_RANGE_COUNT_ONLY 0x2u
#define MG_ETCD_RANGE_SERIALIZABLE 0x4u /**< the member's own view, no quorum read */

/**
 * Range [@p key, @p end) (only @p key when @p end_len is 0; end "\0" is
 * every key from @p key on) at @p revision (0: the newest), at most
 * @p limit keys (0: all). To page through a prefix pinned to one revision,
 * ask the first page at revision 0, the next ones at that page's
 * hdr.revision, each starting at the last key + "\0", while more is true.
 * 0; -ERANGE when @p revision is compacted; -EACCES (not allowed);
 * -EMSGSIZE (response above max_recv); see the errors at the top.
 */
int mg_etcd_range(struct mg_etcd *e, const char *key, size_t key_len, const char *end,
                  size_t end_len, int64_t revision, int64_t limit, unsigned flags,
                  struct mg_etcd_range *out, struct mg_error *err);

/** Free what mg_etcd_range() filled (its kvs stay valid until then). Zeroes @p r. */
void mg_etcd_range_free(struct mg_etcd_range *r);

/** Put @p key = @p val. @p hdr (optional) gets the response header. 0 or <0 as above. */
int mg_etcd_put(struct mg_etcd *e, const char *key, size_t key_len, const char *val, size_t val_len,
                struct mg_etcd_header *hdr, struct mg_error *err);

/**
 * Delete [@p key, @p end) (only @p key when @p end_len is 0). *@p deleted
 * (optional) gets the number of keys deleted.
 */
int mg_etcd_delete(struct mg_etcd *e, const char *key, size_t key_len, const char *end,
                   size_t end_len, int64_t *deleted, struct mg_etcd_header *hdr,
                   struct mg_error *err);

/**
 * @p n puts in one Txn without conditions (one revision, one watch
 * response): keys are C strings, values @p vlens bytes each. etcd refuses
 * more than its --max-txn-ops (128 by default) with -EINVAL, and a request
 * above --max-request-bytes (1.5 MiB) with -EMSGSIZE. For tests and
 * benchmarks that load many keys.
 */
int mg_etcd_txn_put(struct mg_etcd *e, size_t n, const char *const *keys, const char *const *vals,
                    const size_t *vlens, struct mg_etcd_header *hdr, struct mg_error *err);

/** Compact the history up to @p rev; @p physical waits until it is on disk. */
int mg_etcd_compact(struct mg_etcd *e, int64_t rev, bool physical, struct mg_error *err);

/** Maintenance.Status of the member @p e is connected to. */
struct mg_etcd_status {
	struct mg_etcd_header hdr;
	char version[32]; /**< the server's version, "3.4.23" */
	int64_t db_size;
	uint64_t leader; /**< member id of the leader, 0 when none */
};
int mg_etcd_status(struct mg_etcd *e, struct mg_etcd_status *st, struct mg_error *err);

/* ---- Watch ---- */

/**
 * One Watch stream (one gRPC call) carrying any number of watchers, each
 * named by the watch_id etcd gives it. Requests go out in order and etcd
 * answers creates in order, so the n-th `created` response belongs to the
 * n-th create. etcd never ends the stream itself, not even when it
 * cancels a watcher (compacted start revision, permission denied): those
 * arrive in-band as a `canceled` response.
 */
struct mg_etcd_watch;

/**
 * Open a Watch stream on @p e's connection (connecting first, within the
 * connect timeout). 0, or <0 as above (the connection failed).
 */
int mg_etcd_watch_open(struct mg_etcd *e, struct mg_etcd_watch **w, struct mg_error *err);

/**
 * Ask for a watcher of [@p key, @p end) (only @p key when @p elen is 0)
 * from @p start_revision (0: from now on; a compacted one gets `created`
 * then `canceled` with compact_revision). @p progress_notify: etcd sends
 * empty responses now and then (every 10 min on 3.4) with the current
 * revision; @p prev_kv: events carry the previous value (not exposed
 * here, costs etcd a read). Returns once the request is sent (within the
 * unary timeout); the `created` response comes through _next. A range the
 * user may not read gets one response with both `created` and `canceled`,
 * watch_id -1 and a cancel_reason saying "permission denied".
 * 0, -ETIMEDOUT, or the stream's end (status in @p err).
 */
int mg_etcd_watch_create(struct mg_etcd_watch *w, const char *key, size_t klen, const char *end,
                         size_t elen, int64_t start_revision, bool progress_notify, bool prev_kv,
                         struct mg_error *err);

/** Ask etcd to cancel watcher @p watch_id; its `canceled` response comes through _next. */
int mg_etcd_watch_cancel(struct mg_etcd_watch *w, int64_t watch_id, struct mg_error *err);

/**
 * Ask for a progress response (3.4+): a response without events whose
 * hdr.revision every watcher of the stream has caught up with; watch_id
 * is -1 on 3.4.
 */
int mg_etcd_watch_progress(struct mg_etcd_watch *w, struct mg_error *err);

enum mg_etcd_event_type {
	MG_ETCD_PUT,
	MG_ETCD_DELETE, /**< kv.value empty, kv.version 0, kv.mod_revision the delete's */
};

struct mg_etcd_event {
	enum mg_etcd_event_type type;
	struct mg_etcd_kv kv;
};

/** One response of the stream. Free with mg_etcd_watch_resp_free(). */
struct mg_etcd_watch_resp {
	/** hdr.revision is 0 in the `canceled` response to a compacted start: do not use it. */
	struct mg_etcd_header hdr;
	int64_t watch_id;
	bool created;
	bool canceled;
	int64_t compact_revision; /**< >0: the start revision was compacted, from here on */
	char cancel_reason[256];  /**< etcd's words ("permission denied"), truncated */
	struct mg_etcd_event *events;
	size_t n;
	void *priv;
};

/**
 * Wait up to @p timeout_ms for the next response of any watcher of @p w.
 * 0: *@p out filled; -ETIMEDOUT: none came (the stream is still fine);
 * any other <0: the stream ended (etcd gone, connection lost, keepalive
 * timeout), with its status in @p err; every later call returns the same.
 * Close it and open a new one.
 */
int mg_etcd_watch_next(struct mg_etcd_watch *w, unsigned timeout_ms, struct mg_etcd_watch_resp *out,
                       struct mg_error *err);

/** Free what mg_etcd_watch_next() filled. Zeroes @p r. */
void mg_etcd_watch_resp_free(struct mg_etcd_watch_resp *r);

/** Cancel the stream's call and free it (etcd never ends a stream itself). NULL: no-op. */
void mg_etcd_watch_close(struct mg_etcd_watch *w);

#endif /* MG_ETCD_H */
