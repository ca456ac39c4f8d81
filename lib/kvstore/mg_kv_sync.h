/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/kvstore: the gateway's sync client. It copies the identities and
 * ipcache entries of every configured cluster from Redis (Cilium's kvstore
 * layout, docs/kvstore.md) into the gateway's identity table and ipcache,
 * then follows the changes through each cluster's log stream.
 *
 * Protocol (per cluster; docs/kvstore.md, "Sync protocol"):
 *  1. GET cilium/cluster-config/<cluster>. With syncedCanaries, wait for
 *     cilium/synced/<cluster>/<prefix> of both prefixes before trusting a
 *     scan: mg_kv_sync_initial retries with backoff until its timeout.
 *     A config that does not decode, names another id than the one the
 *     gateway expects (params id), another maxConnectedClusters than the
 *     identity table's mode, an id another configured cluster already
 *     has, or the single-cluster layout (cilium/state/...) that another
 *     configured cluster reads already, is refused: the cluster is not
 *     synced (or stays stale, below) until it is fixed.
 *  2. Note the epoch (meshgate/epoch/<cluster>) and the log's
 *     last-generated-id (XINFO STREAM), SCAN the identity and ip prefixes
 *     in one walk of the keyspace (the cilium/cache/... ones for clusters
 *     with capabilities.cached), MGET each SCAN reply's keys right away,
 *     pipelined behind the next SCAN, into a shadow copy, then replay the log
 *     from the noted id into the shadow (XRANGE, exclusive start). The
 *     scan is not a snapshot, but every change after the noted id is in
 *     the log with its full value, so scan + replay converges on the
 *     state at the replay's end.
 *  3. Apply: diff the shadow against the cluster's live copy and apply
 *     the differences as one step: identity puts, ipcache puts/dels
 *     staged (NOT committed, see "Publishing" below), identity deletions.
 *     Every resync that would delete more than max_delete_share of a
 *     cluster's entries is refused (counted; the live copy stays, the
 *     resync is retried at the next verification), the local cluster's
 *     included.
 *  4. Tail: XREAD BLOCK on the logs of all synced clusters from their last
 *     ids; each poll applies what arrived as one batch.
 *  5. Faults: a connection error keeps the tables as they are
 *     (fail-static; stats say disconnected) and reconnects with
 *     exponential backoff and jitter. After a reconnect, and every
 *     verify_ms while connected, every cluster is verified in one
 *     pipelined round: a changed epoch, a log trimmed past the noted id
 *     (XINFO STREAM: entries-added minus length exceeds the entries this
 *     client has accounted for, or max-deleted-entry-id > noted id: an
 *     unread entry is gone), a changed cluster config, or a changed
 *     server replication id (INFO replication master_replid: a failover
 *     or restart may have lost acknowledged writes) forces a full resync,
 *     counted by cause.
 *  6. Lost data is never a removal (fail-static). A missing cluster
 *     config (DEL, FLUSHALL, a server restarted empty, a replica promoted
 *     with nothing in it) leaves the cluster's state as it is: the
 *     cluster is *stale* (stats: stale, why, since when) and no longer
 *     tailed; when the config is back it is resynced (cause "config"),
 *     under the mass-delete guard. A cluster's state goes away only when
 *     the cluster leaves the configuration (mg_kv_sync_reconfigure), or
 *     when its removal marker meshgate/removed/<cluster> has been present
 *     for removal_grace_ms (what a replicator draining the cluster
 *     writes); the marker going away before that cancels the removal.
 *     A replicator heartbeat (meshgate/heartbeat/<cluster>) older than
 *     heartbeat_timeout_ms, or unparsable, makes the cluster stale with
 *     reason heartbeat; it is still tailed (nothing is missed, so no
 *     resync is needed when the heartbeat is fresh again).
 *  7. Validation: a value the kv model decoders refuse, or whose prefix
 *     differs from its key's, is rejected and counted (parse); an
 *     identity of 256 or more outside the cluster's range
 *     (mg_identity_cluster_range) is rejected and counted (range), for
 *     identity keys and ipcache entries alike and for every cluster, the
 *     local one included; local-scope identities (bit 24: the CIDR
 *     identities of one cluster's agents) are accepted only as the local
 *     cluster's ipcache entries, never as identity keys; an identity
 *     whose k8s:io.cilium.k8s.policy.cluster label names another cluster,
 *     or a remote identity without that label, is rejected and counted
 *     (cluster), as Cilium does; a remote cluster's entry with the
 *     `host` identity (1) becomes remote-node (6). Nothing else is lost.
 *
 * Conflicts: the same prefix held by two clusters. Each cluster keeps its
 * own copy; the ipcache holds the winner: the local cluster first, then
 * the lowest cluster id (ties: configuration order). The put that creates
 * the overlap is counted on the cluster that made it. When the winner
 * deletes its entry, the next cluster's entry takes over. "<IP>" and
 * "<IP>/32" (or /128) name one prefix within a cluster.
 *
 * Base layer: when no cluster holds a prefix any more, the optional
 * params.base callback is asked for the daemon's own entry at exactly
 * that prefix (CIDR identity, static entry); it is staged instead of a
 * delete. Synced entries win over it while they exist.
 *
 * Named ports: an entry's NamedPorts go to its identity
 * (mg_identity_table_add_named_port): the union over all entries of the
 * identity in every cluster's copy, reference counted. A name given two
 * port numbers for one protocol is left out of the identity while they
 * disagree (strict; counted in named_port_conflicts). A port is taken back
 * when its last entry goes (the identity is re-created with the same
 * labels and the remaining ports; ports from elsewhere are kept).
 * Reserved identities get none. Identities whose named ports changed are
 * in the changed list. docs/kvstore.md has the details.
 *
 * Publishing. The client never commits the ipcache: mg_kv_sync_poll,
 * mg_kv_sync_initial and mg_kv_sync_rebind leave their whole batch
 * (resyncs and tailed entries alike) staged in the ipcache, so that the
 * caller can publish it together with the policy derived from it, as one
 * step for the workers (mg_datapath_publish; a plain mg_ipcache_commit
 * where no worker runs yet). The identity table, which only the control
 * plane reads, is final when the call returns: identities added, changed
 * and removed are in it (or gone from it) and their ids are in the
 * changed list. The caller must then either publish the staged batch, or
 * discard it (mg_ipcache_discard) and call mg_kv_sync_request_resync():
 * the client's copies already hold the batch, and the next poll re-stages
 * every entry it holds, the prefixes the discarded batch removed, and
 * lists every identity as changed, so that the next successful
 * publication repairs the ipcache and the policy. A call that fails
 * (-ENOMEM, -ENOTCONN) may still have staged part of a batch that its
 * copies hold: publish it as well (mg_ipcache_pending says whether).
 *
 * Threading: everything runs on one control thread (hiredis 0.14's
 * synchronous API, connect and command timeouts, TCP keepalive). No call
 * blocks longer than the timeouts given; the tables are only changed
 * through their control-path APIs, which publish atomically for readers.
 */
#ifndef MG_KV_SYNC_H
#define MG_KV_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_kvstore.h"

/* As many clusters as Cilium's mesh holds (maxConnectedClusters 511). */
#define MG_KV_SYNC_MAX_CLUSTERS 511

struct mg_kv_sync_cluster_params {
	const char *name; /**< cluster name (mg_kv_cluster_name_valid) */
	bool local;       /**< the gateway's own cluster: wins conflicts */
	/** The cluster id the gateway expects (the local cluster's cluster.id),
	 *  or 0 for whatever the cluster config says. A config with another
	 *  id is refused. */
	unsigned id;
};

struct mg_kv_sync_params {
	/** "redis://host:port", "host:port", or "unix:/path/to/socket". */
	const char *url;
	const char *user;     /**< ACL user, or NULL (legacy AUTH <password>) */
	const char *password; /**< NULL or "" for no AUTH */
	size_t n_clusters;    /**< 1 to MG_KV_SYNC_MAX_CLUSTERS */
	const struct mg_kv_sync_cluster_params *clusters;
	unsigned block_ms;       /**< XREAD BLOCK per poll (0: 100) */
	unsigned connect_ms;     /**< connect timeout (0: 2000) */
	unsigned command_ms;     /**< command timeout, > block_ms (0: block_ms + 2000) */
	unsigned verify_ms;      /**< verification interval while connected (0: 1000) */
	unsigned backoff_max_ms; /**< reconnect backoff cap (0: 5000) */
	/** Largest share (0..1] of a cluster's entries a resync may delete (0: 0.5). */
	double max_delete_share;
	/**
	 * How long a cluster's removal marker (meshgate/removed/<cluster>)
	 * must stay before the cluster's state is removed, in ms. 0: at the
	 * first verification that sees it. (The daemon's default is 3 min,
	 * kvstore.removal_grace, as Cilium's KVStoreMesh drain waits.)
	 */
	unsigned removal_grace_ms;
	/**
	 * A cluster whose replicator heartbeat (meshgate/heartbeat/<cluster>,
	 * read at every verification) is older than this many ms, or does not
	 * parse, is stale with reason heartbeat; its copy is kept and still
	 * tailed. 0: heartbeats are not checked. A cluster without the key is
	 * never stale for it. (The daemon's default is 180 s,
	 * kvstore.heartbeat_timeout.)
	 */
	unsigned heartbeat_timeout_ms;
	unsigned read_count; /**< XREAD COUNT per poll (0: 1000) */
	/**
	 * Base layer (optional): the daemon's own entry for exactly the prefix
	 * @p prefix (family, addr, plen; the rest zero), e.g. a CIDR identity
	 * of its policies or a static entry of its configuration. Consulted
	 * when no cluster holds a prefix any more (the last synced entry for
	 * it was deleted): return 1 with @p out's identity and cluster_id set
	 * (its prefix is forced to @p prefix) and that entry is staged instead
	 * of a delete; 0 (nothing of its own: the prefix is deleted) or a
	 * negative errno (the step fails). Synced entries win over the base
	 * layer while they exist. Called on the control thread only.
	 */
	int (*base)(void *arg, const struct mg_ipcache_entry *prefix, struct mg_ipcache_entry *out);
	void *base_arg;
};

enum mg_kv_resync_cause {
	MG_KV_RESYNC_EPOCH,
	MG_KV_RESYNC_TRIMMED,
	MG_KV_RESYNC_REPLID,
	MG_KV_RESYNC_RECONNECT, /**< reconnected while the cluster was not yet synced */
	MG_KV_RESYNC_CONFIG,   /**< the cluster config changed, or came back after it was missing */
	MG_KV_RESYNC_OPERATOR, /**< asked for (meshgatectl sync resync) */
	MG_KV_RESYNC_REPAIR,   /**< the caller could not publish a batch (see "Publishing") */
	MG_KV_RESYNC_N,
};

/** Name of a cause ("epoch", "trimmed", "replid", "reconnect", "config", "operator", "repair"). */
const char *mg_kv_resync_cause_name(enum mg_kv_resync_cause c);

/**
 * Why a cluster's state may be out of date (stats.stale). The state is
 * kept as it was (fail-static) while any of these holds.
 */
enum mg_kv_stale_reason {
	MG_KV_STALE_NONE,
	MG_KV_STALE_DISCONNECTED, /**< the Redis connection is down */
	MG_KV_STALE_NO_CONFIG,    /**< the cluster config key is missing (data lost?) */
	MG_KV_STALE_BAD_CONFIG,   /**< the cluster config is refused (see "Protocol" 1) */
	MG_KV_STALE_CANARIES,     /**< a resync waits for the synced canaries */
	MG_KV_STALE_REFUSED,      /**< a resync was refused by the mass-delete guard */
	/** The replicator's heartbeat is too old or does not parse: the replicator
	 *  has not heard from the cluster. Still tailed: what Redis has is applied. */
	MG_KV_STALE_HEARTBEAT,
	MG_KV_STALE_N,
};

/** Name of a reason ("", "disconnected", "config-missing", "config-refused",
 *  "canaries-missing", "mass-delete-refused", "heartbeat"). */
const char *mg_kv_stale_reason_name(enum mg_kv_stale_reason r);

struct mg_kv_sync_stats {
	char name[MG_KV_CLUSTER_NAME_MAX + 1];
	unsigned cluster_id; /**< from the cluster config, 0 until read */
	bool connected;      /**< the connection is up (same for every cluster) */
	bool present;        /**< the cluster config exists */
	bool synced;         /**< holds a full copy (initial sync done), tailed unless stale */
	bool refused;        /**< the last resync was refused (mass delete) */
	bool stale;          /**< the copy may be out of date; kept as it is */
	enum mg_kv_stale_reason stale_reason;
	uint64_t stale_since; /**< Unix time (s) the cluster became stale, 0 when not */
	bool removing;        /**< the removal marker is there; the state goes at removal_at */
	uint64_t removal_at;  /**< Unix time (s) of the removal, 0 when none is due */
	bool removed;         /**< removed by its marker: holds nothing */
	uint64_t removals;    /**< removals by marker carried out */
	char why[160];        /**< what the last sync attempt or verification found, "" when fine */
	char last_id[48];     /**< log position */
	uint64_t entries;     /**< identities + ipcache entries held for the cluster */
	uint64_t events;      /**< log entries applied while tailing */
	uint64_t resyncs[MG_KV_RESYNC_N];
	uint64_t full_syncs; /**< full syncs published (initial included) */
	uint64_t rejected_range;
	uint64_t rejected_parse;
	/** Identities whose cluster label names another cluster (or a remote one without it). */
	uint64_t rejected_cluster;
	uint64_t conflicts;
	/** A named port given two numbers (same protocol) for one identity; see "Named ports". */
	uint64_t named_port_conflicts;
	/** ipcache values with ID 0 (an endpoint without identity yet): not applied, and
	 *  the key's previous entry dropped (docs/kvstore.md, "Validation"). */
	uint64_t skipped_no_identity;
	/** NamedPorts entries dropped from values otherwise used (bad name, port 0,
	 *  unknown protocol, a later duplicate name). */
	uint64_t named_ports_dropped;
	/** Heartbeat values (meshgate/heartbeat/<cluster>) that did not parse (each
	 *  distinct value once). */
	uint64_t heartbeat_invalid;
	/** Unix time (s) of the cluster's replicator heartbeat, 0 when there is none. */
	uint64_t heartbeat_at;
	uint64_t mass_delete_refusals;
	uint64_t disconnects; /**< connection losses seen */
	uint64_t lag_ms;      /**< stream's last id time minus ours, at the last check */
};

struct mg_kv_sync;

/**
 * New sync client for @p ids and @p ipc (borrowed; used only from the
 * calling thread). Does not connect yet. NULL with errno set (EINVAL with
 * @p err filled for bad params, ENOMEM).
 */
struct mg_kv_sync *mg_kv_sync_create(const struct mg_kv_sync_params *p,
                                     struct mg_identity_table *ids, struct mg_ipcache *ipc,
                                     struct mg_error *err);

void mg_kv_sync_free(struct mg_kv_sync *s);

/**
 * Connect and fully sync every cluster, retrying (backoff) until all are
 * synced or @p timeout_ms has passed. Identities changed are appended to
 * the list as in mg_kv_sync_poll. The ipcache changes are left staged
 * (see "Publishing").
 * @return 0 when all clusters are synced, -ETIMEDOUT when some are not
 *   (@p err names them and why; what was synced is published), -ENOMEM.
 */
int mg_kv_sync_initial(struct mg_kv_sync *s, unsigned timeout_ms, uint32_t **changed,
                       size_t *n_changed, struct mg_error *err);

/**
 * One step: reconnect (when due), verify (when due) and resync what needs
 * it, then XREAD BLOCK for at most block_ms and apply what arrived as one
 * batch. The ids of identities added, changed or removed are appended to
 * *@p changed (a malloc'd array the caller frees; may be NULL on entry)
 * so that the caller can run mg_policy_update_identities; at the end of
 * the call the whole list is sorted and holds each id once. The ipcache
 * changes are left staged: the caller publishes them with the updated
 * policy, or discards them and calls mg_kv_sync_request_resync() (see
 * "Publishing").
 * @return the number of log entries applied (>= 0), -ENOTCONN when
 *   disconnected (tables kept: fail-static), -ENOMEM.
 */
int mg_kv_sync_poll(struct mg_kv_sync *s, uint32_t **changed, size_t *n_changed);

/**
 * Point the client at other tables (the daemon's reload builds new ones).
 * With @p publish, first put everything it holds into them: every
 * identity, and for every prefix the winning cluster's entry (staged and
 * left staged: the caller commits or publishes them), so that a rebuilt
 * static state keeps the synced entries. Without it, the tables are assumed to hold them already (a
 * reload that kept the live ipcache, or one that failed and went back).
 * @return 0, or negative errno from the tables (the client then points
 *   at the new tables anyway; the caller discards them).
 */
int mg_kv_sync_rebind(struct mg_kv_sync *s, struct mg_identity_table *ids, struct mg_ipcache *ipc,
                      bool publish);

/**
 * Force a full resync of every cluster at the next poll, counted under
 * @p cause (MG_KV_RESYNC_OPERATOR for an operator's command), and make
 * that poll re-stage everything the client holds (see "Publishing"):
 * call it with MG_KV_RESYNC_REPAIR after discarding a batch the caller
 * could not publish. Removed and stale clusters are resynced too (a
 * stale one only once its config is back).
 */
void mg_kv_sync_request_resync(struct mg_kv_sync *s, enum mg_kv_resync_cause cause);

/**
 * Apply a reload's settings: the cluster list, max_delete_share and
 * removal_grace_ms of @p p (the connection settings, url, user and
 * password, are the ones given at creation; the rest of @p p is
 * ignored). Clusters that left the list are removed now, as one batch
 * left staged like a poll's (their entries staged as deletions, their
 * identities gone from the table, their ids appended to *@p changed: the
 * caller publishes it with the derived policy, see "Publishing");
 * clusters that joined are synced from the next poll on; a cluster that
 * stays keeps its copy (resynced when its local flag or expected id
 * changed). Stats indices follow the new list.
 * @return 0, -EINVAL (@p err says why; nothing changed), -ENOMEM.
 */
int mg_kv_sync_reconfigure(struct mg_kv_sync *s, const struct mg_kv_sync_params *p,
                           uint32_t **changed, size_t *n_changed, struct mg_error *err);

size_t mg_kv_sync_n_clusters(const struct mg_kv_sync *s);

/** Stats of cluster @p i (configuration order). 0 or -EINVAL. */
int mg_kv_sync_stats(const struct mg_kv_sync *s, size_t i, struct mg_kv_sync_stats *out);

/** True when every cluster has finished its initial sync (or was removed by its marker). */
bool mg_kv_sync_all_synced(const struct mg_kv_sync *s);

#endif /* MG_KV_SYNC_H */
