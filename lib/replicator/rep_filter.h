/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * meshgate-replicator's relevant-only filter: which of a remote cluster's
 * identities (and so which of its ipcache entries) are worth writing into
 * the site Redis. Private to lib/replicator; see docs/replicator-filter.md.
 *
 * Two optional parts, both of which an identity must pass:
 *  - namespaces: `include` (only these; none given: all) and `exclude`
 *    (never these; it wins over everything, policies included). The
 *    namespace is the identity's k8s:io.kubernetes.pod.namespace label; an
 *    identity without one is not subject to this part.
 *  - policy: the CNP / CCNP files the gateways enforce (the same sources,
 *    clusters and default_local_cluster as their `policy:` section). An
 *    identity passes when at least one selector of those policies can
 *    select it: rule subjects, endpoint peers after implicit namespace and
 *    cluster scoping, entities (`all` and `cluster` keep every identity of
 *    the clusters they cover), CIDR rules (which select no pod identity),
 *    of allow and deny sections alike (an identity only a deny rule
 *    selects must reach the gateways, or they would let it through).
 * Reserved identities (below 256) and local-scope ones always pass.
 *
 * Why dropping the others keeps the gateways' verdicts: an identity no
 * selector selects gets the classes every such identity gets, so the
 * compiled policy cannot tell it from another unselected identity, and
 * the verdicts between the identities that are written do not depend on
 * it. What changes is what the gateways see for a dropped identity's
 * addresses: no ipcache entry, so `world` (or the CIDR identity of a
 * prefix a policy names). That is the same verdict as before unless the
 * policies select world or CIDR peers, or have named ports without an
 * L3 peer: mg_rep_filter_info() says so (world_peers, named_any_peer)
 * and the replicator must warn about it at start.
 *
 * How the replicator core uses it (the ipcache part is the core's):
 *  1. At start (and whenever the filter's config or policy files change,
 *     after which every remote cluster is listed again): parse the
 *     `filter:` section, create the filter, log mg_rep_filter_info().
 *  2. Identity put (cilium/state/identities/v1/id/<ID>): parse the label
 *     string, ask mg_rep_filter_identity() once; remember the answer per
 *     identity (Cilium identities never change their labels); write the
 *     identity only when it passes. A delete of an identity is written
 *     when it was written.
 *  3. Ipcache put: an entry whose identity is exempt
 *     (mg_rep_filter_id_exempt()) is written as without a filter; else it
 *     is written when its identity was kept, dropped when it was not, and
 *     held (latest value per key) while the identity is not known yet: the
 *     two prefixes are watched apart, so an entry may come first. A held
 *     entry is written or dropped when its identity arrives, and forgotten
 *     when the entry is deleted. An entry that moves from a kept identity
 *     to a dropped one is deleted from Redis (it was written before).
 *     Ipcache deletes are written when the entry was written.
 */
#ifndef MG_REP_FILTER_H
#define MG_REP_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_common.h"
#include "mg_identity.h"
#include "mg_yaml.h"

/** One policy source: a CNP / CCNP file or directory, and the cluster whose policy it is. */
struct mg_rep_filter_source {
	char *cluster;
	char *path; /**< resolved against the config's directory */
};

/** The `filter:` section of the replicator's config. Zeroed: no filter. */
struct mg_rep_filter_config {
	char **ns_include; /**< namespaces whose identities are written (none: all) */
	size_t n_ns_include;
	char **ns_exclude; /**< namespaces never written; exclude wins */
	size_t n_ns_exclude;
	struct mg_rep_filter_source *sources; /**< none: no policy part */
	size_t n_sources;
	bool default_local_cluster; /**< as the gateways' policy.default_local_cluster */
};

/**
 * Parse the `filter:` map @p map (NULL or null: no filter; *@p out is
 * zeroed and default_local_cluster true):
 *
 *     filter:
 *       namespaces: {include: [prod, shop], exclude: [kube-system]}
 *       policy:
 *         default_local_cluster: true     # default true
 *         sources: [{cluster: site, path: policies/}]
 *
 * Relative paths are resolved against @p base_dir (the config file's
 * directory). Errors, with "file:line:col: filter...." in @p err: unknown
 * or duplicate keys, wrong types, a namespace that is not an RFC 1123
 * label, one listed twice or both included and excluded, an empty
 * include list, a policy part without sources, a source without cluster
 * or path, an invalid cluster name, an empty path.
 * @return 0, or -EINVAL / -ENOMEM (then *@p out holds nothing).
 */
int mg_rep_filter_config_parse(const struct mg_yaml_node *map, const char *base_dir,
                               struct mg_rep_filter_config *out, struct mg_error *err);

/** Free what @p c holds and reset it to the empty config (no filter). */
void mg_rep_filter_config_clear(struct mg_rep_filter_config *c);

struct mg_rep_filter;

/**
 * A filter for config @p c (NULL: none, everything passes). Loads the
 * policy sources once and indexes their selectors.
 * @return the filter, or NULL with errno set and @p err filled: a policy
 *   file's error ("file:line:col: ..."), sources holding no policy at all
 *   (the filter would drop every identity: surely a wrong path), ENOMEM.
 */
struct mg_rep_filter *mg_rep_filter_create(const struct mg_rep_filter_config *c,
                                           struct mg_error *err);

void mg_rep_filter_free(struct mg_rep_filter *f);

/** false: the config asks for no filtering, every identity passes. */
bool mg_rep_filter_active(const struct mg_rep_filter *f);

/**
 * Is identity @p id with labels @p ls to be written? Reserved and
 * local-scope identities always are. Cost: a namespace lookup and the
 * selectors that can match these labels (mg_policy_matcher_any), no
 * allocation for ordinary labels. Thread-safe; counts its answers.
 */
bool mg_rep_filter_identity(struct mg_rep_filter *f, uint32_t id, const struct mg_labels *ls);

/**
 * Identities the filter never decides on: 0 (an endpoint without an
 * identity yet), the reserved range below 256 (host, remote-node, world,
 * ...) and local-scope identities. Ipcache entries with such an identity
 * are written as without a filter, never held.
 */
static inline bool
mg_rep_filter_id_exempt(uint32_t id)
{
	return id < MG_ID_MIN_CLUSTER_LOCAL || mg_identity_is_local_scope(id);
}

/** What the filter holds, for the replicator's start-up log and status. */
struct mg_rep_filter_info {
	size_t policies;  /**< CNP + CCNP objects loaded */
	size_t rules;     /**< their spec / specs elements */
	size_t selectors; /**< distinct selectors */
	/** A selector selects every identity (entity `all`): the policy part keeps everything. */
	bool keeps_all;
	/**
	 * Some selector selects world or CIDR identities: a gateway sees a
	 * dropped identity's address as world (or a CIDR identity), so flows
	 * with it may take world's verdict instead of an unselected pod's.
	 */
	bool world_peers;
	/** Some entry has a named port and no L3 peer: a dropped identity's named ports are lost. */
	bool named_any_peer;
};

void mg_rep_filter_info(const struct mg_rep_filter *f, struct mg_rep_filter_info *out);

/** Answers given so far by mg_rep_filter_identity() (one per call, not per identity). */
struct mg_rep_filter_stats {
	uint64_t identities_kept;
	uint64_t identities_filtered;   /**< both reasons below */
	uint64_t filtered_by_namespace; /**< namespace not included, or excluded */
	uint64_t filtered_by_policy;    /**< no selector selects it */
};

void mg_rep_filter_stats(const struct mg_rep_filter *f, struct mg_rep_filter_stats *out);

#endif /* MG_REP_FILTER_H */
