/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control commands, one area per file (cmd_<area>.c), each with its
 * table registered with lib/ctl by control.c (docs/ctl-protocol.md lists
 * every command): adding a command is an entry in its area's table and
 * its handler there, plus its line in the protocol document. What the
 * areas share is here (cmd_util.c): arguments, errors, and the JSON of
 * labels, identities and cluster names.
 */
#ifndef MG_COMMANDS_H
#define MG_COMMANDS_H

#include <jansson.h>

#include "daemon.h"
#include "mg_ctl.h"
#include "mg_kv_sync.h"
#include "mg_metrics.h"
#include "mg_pkt.h"

/* One area's commands (handlers get the struct daemon as their arg). */
struct cmd_area {
	const char *name;
	const struct mg_ctl_command *cmds;
	size_t n;
};

extern const struct cmd_area cmd_area_status, cmd_area_config, cmd_area_identity, cmd_area_ip,
        cmd_area_policy, cmd_area_ct, cmd_area_sync, cmd_area_monitor, cmd_area_metrics,
        cmd_area_reload;

/* Listings stop at the request's "limit" (default 10000): a 1M-entry table
 * would otherwise hold the control thread and the reply buffer for seconds. */
#define LIST_LIMIT_DEFAULT 10000
#define LIST_LIMIT_MAX 1000000

/* The monitor stream's kinds (the mask subscribers give). */
#define MON_DROP 1u
#define MON_VERDICT 2u

/* Fill @p err with the message and return @p rc. */
int cmd_fail(struct mg_error *err, int rc, const char *fmt, ...) MG_PRINTF(3, 4);

/* An unsigned argument; @p def when absent. -EINVAL when not a non-negative integer. */
int cmd_arg_u64(const json_t *args, const char *key, uint64_t def, uint64_t *out,
                struct mg_error *err);

/* A string argument, or NULL when absent. -EINVAL when not a string. */
int cmd_arg_str(const json_t *args, const char *key, const char **out, struct mg_error *err);

/*
 * Cluster numbers and names (the gateway's own, the synced ones), read once
 * per command or snapshot refresh: listings and the identities-by-cluster
 * count name a cluster per entry, and asking the sync client every time
 * would copy its statistics once per identity.
 */
struct cluster_names {
	size_t n;
	struct {
		unsigned id;
		char name[MG_CONFIG_NAME_MAX + 1]; /* >= MG_KV_CLUSTER_NAME_MAX + 1 */
	} v[MG_KV_SYNC_MAX_CLUSTERS + 1];
};

void cmd_cluster_names_load(const struct daemon *d, struct cluster_names *cn);

/* The name of cluster @p cid (the gateway's own first), or NULL. */
const char *cmd_cluster_name(const struct cluster_names *cn, unsigned cid);

void cmd_addr_str(uint8_t family, const uint8_t *a, char *buf, size_t size);
json_t *cmd_json_str_or_null(const char *s);
json_t *cmd_labels_json(const struct mg_labels *ls);
/* A flow's protocol as the CLI spells it ("tcp"); "other" for the rest. */
const char *cmd_proto_name(uint8_t p);
json_t *cmd_identity_json(const struct cluster_names *cn, const struct mg_identity *ident);

/* The policy revision now. */
uint64_t daemon_revision(const struct daemon *d);

#endif /* MG_COMMANDS_H */
