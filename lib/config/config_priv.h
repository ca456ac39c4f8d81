/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private shape of the config loader, shared by its files:
 *
 *   mg_config.c           the loader core: the document, the top level,
 *                         defaults, shared value readers, freeing, and
 *                         loading what the config names
 *   mg_config_datapath.c  eal and datapath (ports and their peers)
 *   mg_config_policy.c    cluster, policy, identities, ipcache
 *   mg_config_services.c  kvstore, control, metrics, conntrack
 *   mg_manifest.c         CiliumIdentity and CiliumEndpoint manifests
 *
 * Each section parser reads its part of the YAML tree into struct
 * mg_config and reports the first error with its position; the keys it
 * accepts are listed next to it (cfg_keys_*) and gathered by
 * mg_config_keys() so that a test can hold the docs against them.
 */
#ifndef MG_CONFIG_PRIV_H
#define MG_CONFIG_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_config.h"
#include "mg_yaml.h"

/* Parsing state: the config being filled and where errors go. */
struct ctx {
	struct mg_config *c;
	struct mg_error *err;
	const char *file;
};

/* ---- the keys of each mapping (NULL-terminated) ---- */

extern const char *const cfg_keys_datapath_ports[];
extern const char *const cfg_keys_datapath[];
extern const char *const cfg_keys_cluster[];
extern const char *const cfg_keys_policy_sources[];
extern const char *const cfg_keys_policy[];
extern const char *const cfg_keys_identities[];
extern const char *const cfg_keys_ipcache_entries[];
extern const char *const cfg_keys_ipcache[];
extern const char *const cfg_keys_kvstore[];
extern const char *const cfg_keys_control[];
extern const char *const cfg_keys_metrics[];
extern const char *const cfg_keys_conntrack[];
extern const char *const cfg_keys_conntrack_timeouts[];

/* ---- value readers shared by the sections (mg_config.c) ---- */

/* Report running out of memory; returns -ENOMEM. */
int cfg_oom(struct ctx *x);

/* A copy of @p s, or NULL (reported). */
char *cfg_dup_str(struct ctx *x, const char *s);

/* @p rel joined to the config's folder, or a copy of @p rel when absolute; NULL (reported). */
char *cfg_resolve(struct ctx *x, const char *rel);

/* The error of a required key @p key missing from @p parent. */
int cfg_missing(struct ctx *x, const struct mg_yaml_node *parent, const char *what,
                const char *key);

/* An RFC 1123 DNS label, as Cilium requires of cluster names. */
bool cfg_valid_dns_label(const char *s);

/* An optional unsigned key of @p map within [min, max]; @p out keeps its default when absent. */
int cfg_get_uint(struct ctx *x, const struct mg_yaml_node *map, const char *key, const char *what,
                 uint64_t min, uint64_t max, unsigned *out);

/* An optional boolean key of @p map; @p out keeps its default when absent. */
int cfg_get_bool(struct ctx *x, const struct mg_yaml_node *map, const char *key, const char *what,
                 bool *out);

/*
 * A list of strings (@p n may be absent or null when @p null_ok), copied
 * into a new array; resolved against the config folder when @p paths.
 */
int cfg_get_str_list(struct ctx *x, const struct mg_yaml_node *n, const char *what, bool null_ok,
                     bool paths, size_t *count, char ***out);

/* ---- the sections, in the order the loader reads them ---- */

/* mg_config_datapath.c */
int cfg_parse_eal(struct ctx *x, const struct mg_yaml_node *root);
int cfg_parse_datapath(struct ctx *x, const struct mg_yaml_node *root);

/* mg_config_policy.c; cluster first: policy sources default to its name */
int cfg_parse_cluster(struct ctx *x, const struct mg_yaml_node *root);
int cfg_parse_policy(struct ctx *x, const struct mg_yaml_node *root);
int cfg_parse_identities(struct ctx *x, const struct mg_yaml_node *root);
int cfg_parse_ipcache(struct ctx *x, const struct mg_yaml_node *root);

/* mg_config_services.c */
int cfg_parse_kvstore(struct ctx *x, const struct mg_yaml_node *root);
int cfg_parse_control(struct ctx *x, const struct mg_yaml_node *root);
int cfg_parse_metrics(struct ctx *x, const struct mg_yaml_node *root);
int cfg_parse_conntrack(struct ctx *x, const struct mg_yaml_node *root);

#endif /* MG_CONFIG_PRIV_H */
