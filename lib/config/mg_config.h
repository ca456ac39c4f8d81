/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The gateway's YAML configuration (conf/meshgate.yaml documents every
 * key, docs/configuration.md is the reference) and the static inputs it
 * names: CiliumIdentity and CiliumEndpoint manifests and `ipcache.entries`.
 *
 * Loading is strict: unknown keys, duplicate keys, wrong types and
 * out-of-range values are errors with "file:line:column: message".
 * Relative paths are resolved against the config file's folder and
 * stored absolute (or as given when already absolute).
 */
#ifndef MG_CONFIG_H
#define MG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_common.h"
#include "mg_ct.h"
#include "mg_identity.h"
#include "mg_ipcache.h"
#include "mg_policy.h"

#define MG_CONFIG_MAX_PORTS 16
#define MG_CONFIG_NAME_MAX 64

enum mg_non_ip {
	MG_NON_IP_FORWARD,
	MG_NON_IP_DROP,
};

struct mg_config_port {
	char name[MG_CONFIG_NAME_MAX];
	char device[256]; /**< DPDK device name (net_pcap0) or PCI address */
	char peer[MG_CONFIG_NAME_MAX];
	unsigned peer_index; /**< index of the peer in mg_config.ports */
};

struct mg_config_policy_source {
	char cluster[MG_CONFIG_NAME_MAX];
	char *path; /**< resolved */
};

struct mg_config_ipcache_entry {
	struct mg_ipcache_entry e; /**< family, addr, plen, identity */
	unsigned line, col;
};

struct mg_config {
	char *file; /**< the config file as given */
	char *dir;  /**< its folder, for relative paths */
	unsigned version;

	/* eal: arguments for rte_eal_init (argv[0] not included) */
	size_t n_eal;
	char **eal;

	/* datapath */
	size_t n_ports;
	struct mg_config_port ports[MG_CONFIG_MAX_PORTS];
	enum mg_non_ip non_ip;
	unsigned burst;   /**< datapath.burst, default 32 */
	unsigned rx_desc; /**< datapath.rx_desc, default 1024 */
	unsigned tx_desc; /**< datapath.tx_desc, default 1024 */
	unsigned mbufs;   /**< datapath.mbufs, default 8191 */

	/* cluster */
	char cluster_name[MG_CONFIG_NAME_MAX];
	unsigned cluster_id;
	enum mg_cluster_mode cluster_mode; /**< cluster.max_connected_clusters: 255 | 511 */

	/* policy */
	enum mg_enforcement enforcement;
	bool default_local_cluster;
	size_t n_sources;
	struct mg_config_policy_source *sources;

	/* identities / ipcache */
	size_t n_identity_files;
	char **identity_files;
	size_t n_endpoint_files;
	char **endpoint_files;
	size_t n_entries;
	struct mg_config_ipcache_entry *entries;
	bool split_world; /**< ipcache.split_world, default true */

	/* kvstore (used from the Redis sync on) */
	char *kv_redis;
	size_t n_kv_clusters;
	char **kv_clusters;
	char *kv_user;                /**< ACL user, or NULL */
	char *kv_password_file;       /**< resolved path, or NULL (no AUTH) */
	unsigned kv_sync_timeout;     /**< seconds the start waits for the initial sync (60) */
	unsigned kv_max_delete_share; /**< percent of a cluster a resync may delete (50) */
	unsigned kv_block_ms;         /**< XREAD BLOCK per poll (100) */
	/** Seconds a cluster's removal marker must stay before its state goes (180). */
	unsigned kv_removal_grace;
	/** Seconds a replicator heartbeat may be old before its cluster is stale; 0: off (180). */
	unsigned kv_heartbeat_timeout;

	/* conntrack: per worker lcore; hz is set by the data path */
	struct mg_ct_params ct;

	/* control socket (lib/ctl, docs/ctl-protocol.md) */
	char *control_socket;
	char *control_group;           /**< group of the socket (who may connect), or NULL */
	char *control_admin_group;     /**< group allowed mutating commands besides root, or NULL */
	unsigned control_max_clients;  /**< control.max_clients (16) */
	unsigned control_reserve;      /**< control.admin_reserve (2): of max_clients, for admins */
	unsigned control_max_request;  /**< control.max_request_bytes (65536) */
	unsigned control_idle_timeout; /**< control.idle_timeout, seconds (60) */
	unsigned control_max_output;   /**< control.max_output_bytes (1048576) */

	/* metrics */
	char *metrics_listen;
	unsigned metrics_max_connections; /**< metrics.max_connections (16) */
	unsigned metrics_request_timeout; /**< metrics.request_timeout, seconds (5) */
};

/**
 * Load and validate the config file at @p path.
 * @return the config, or NULL with errno set and @p err filled.
 */
struct mg_config *mg_config_load(const char *path, struct mg_error *err);

/**
 * As mg_config_load(), from @p len bytes at @p buf. @p name stands for the
 * file: it appears in messages and its folder (the working directory when
 * it has none) resolves relative paths. For tests, fuzzing and configs
 * received over the control socket.
 */
struct mg_config *mg_config_load_buf(const char *name, const void *buf, size_t len,
                                     struct mg_error *err);

/** Free @p c and everything it holds. NULL is fine. */
void mg_config_free(struct mg_config *c);

/** The keys of one mapping of the config file ("" is the top level). */
struct mg_config_section {
	const char *name;        /**< dotted path: "datapath", "datapath.ports[]", ... */
	const char *const *keys; /**< NULL-terminated */
};

/** Every mapping the loader reads and its keys, ending with {NULL, NULL}. */
const struct mg_config_section *mg_config_keys(void);

/** Index of the port called @p name, or -1. */
int mg_config_port_index(const struct mg_config *c, const char *name);

/* ---- static identities and endpoints ---- */

/**
 * Load CiliumIdentity manifests from @p path (one document, several, or a
 * `kind: List`) into @p t. The identity's number is metadata.name; its
 * labels are security-labels. Other kinds in the file are errors. The
 * file is validated whole first: a file with an error adds nothing.
 * @return number of identities loaded, or a negative errno with @p err set.
 */
int mg_config_load_identities(const char *path, struct mg_identity_table *t, struct mg_error *err);

/** As mg_config_load_identities(), from memory; @p name stands for the file in messages. */
int mg_config_load_identities_buf(const char *name, const void *buf, size_t len,
                                  struct mg_identity_table *t, struct mg_error *err);

/**
 * Load CiliumEndpoint manifests from @p path into @p ipc as staged host
 * routes (/32 and /128 of every status.networking.addressing entry, with
 * status.identity.id). The caller commits. Endpoints without an identity
 * or an address yet are skipped with a warning; a file with an error
 * stages nothing.
 * @return number of addresses staged, or a negative errno with @p err set.
 */
int mg_config_load_endpoints(const char *path, struct mg_ipcache *ipc, unsigned cluster_id,
                             struct mg_error *err);

/** As mg_config_load_endpoints(), from memory; @p name stands for the file in messages. */
int mg_config_load_endpoints_buf(const char *name, const void *buf, size_t len,
                                 struct mg_ipcache *ipc, unsigned cluster_id, struct mg_error *err);

/**
 * As mg_config_load_endpoints(), and the endpoints' named ports
 * (status.named-ports: [{name, port, protocol}]) go to their identity in
 * @p t (mg_identity_table_add_named_port), for named ports in policies.
 * Named ports of an identity @p t does not hold are ignored with a warning.
 */
int mg_config_load_endpoints_ids(const char *path, struct mg_ipcache *ipc,
                                 struct mg_identity_table *t, unsigned cluster_id,
                                 struct mg_error *err);

/** As mg_config_load_endpoints_ids(), from memory. */
int mg_config_load_endpoints_ids_buf(const char *name, const void *buf, size_t len,
                                     struct mg_ipcache *ipc, struct mg_identity_table *t,
                                     unsigned cluster_id, struct mg_error *err);

/**
 * Everything static the config names: identity files into @p t, endpoint
 * files and ipcache.entries into @p ipc (staged; the caller commits), the
 * endpoints' named ports into @p t.
 * @return 0 or a negative errno with @p err set.
 */
int mg_config_load_static(const struct mg_config *c, struct mg_identity_table *t,
                          struct mg_ipcache *ipc, struct mg_error *err);

/**
 * Load every policy source of @p c into @p s.
 * @return 0 or a negative errno with @p err set.
 */
int mg_config_load_policies(const struct mg_config *c, struct mg_policy_set *s,
                            struct mg_error *err);

#endif /* MG_CONFIG_H */
