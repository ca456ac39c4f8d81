/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The `config.show` command: the running config, every key with its
 * effective value (defaults filled in), as the loader understood it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

static json_t *
str_array(char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

/* The running config, every key with its effective value (defaults filled). */
static json_t *
config_json(const struct mg_config *c)
{
	json_t *ports = json_array(), *sources = json_array(), *entries = json_array();
	json_t *root;

	for (size_t i = 0; ports != NULL && i < c->n_ports; i++)
		json_array_append_new(ports, json_pack("{s:s, s:s, s:s}", "name", c->ports[i].name,
		                                       "device", c->ports[i].device, "peer",
		                                       c->ports[i].peer));
	for (size_t i = 0; sources != NULL && i < c->n_sources; i++)
		json_array_append_new(sources,
		                      json_pack("{s:s, s:s}", "cluster", c->sources[i].cluster,
		                                "path", c->sources[i].path));
	for (size_t i = 0; entries != NULL && i < c->n_entries; i++) {
		char pfx[64];

		mg_ipcache_prefix_str(&c->entries[i].e, pfx, sizeof(pfx));
		json_array_append_new(entries, json_pack("{s:s, s:I}", "prefix", pfx, "identity",
		                                         (json_int_t)c->entries[i].e.identity));
	}
	root = json_pack("{s:i, s:o, s:{s:s, s:o, s:s, s:i, s:i, s:i, s:i}, s:{s:s, s:i, s:i}, "
	                 "s:{s:s, s:b, s:o}, s:{s:o}, s:{s:o, s:o, s:b}}",
	                 "version", (int)c->version, "eal", str_array(c->eal, c->n_eal), "datapath",
	                 "mode", "wire", "ports", ports, "non_ip",
	                 c->non_ip == MG_NON_IP_DROP ? "drop" : "forward", "burst", (int)c->burst,
	                 "rx_desc", (int)c->rx_desc, "tx_desc", (int)c->tx_desc, "mbufs",
	                 (int)c->mbufs, "cluster", "name", c->cluster_name, "id",
	                 (int)c->cluster_id, "max_connected_clusters",
	                 c->cluster_mode == MG_CLUSTER_MODE_511 ? 511 : 255, "policy",
	                 "enforcement", mg_enforcement_name(c->enforcement),
	                 "default_local_cluster", c->default_local_cluster, "sources", sources,
	                 "identities", "files", str_array(c->identity_files, c->n_identity_files),
	                 "ipcache", "files", str_array(c->endpoint_files, c->n_endpoint_files),
	                 "entries", entries, "split_world", c->split_world);
	if (root == NULL)
		return NULL;
	if (c->kv_redis != NULL)
		json_object_set_new(
		        root, "kvstore",
		        json_pack("{s:s, s:o, s:o, s:o, s:i, s:i, s:i}", "redis", c->kv_redis,
		                  "clusters", str_array(c->kv_clusters, c->n_kv_clusters), "user",
		                  cmd_json_str_or_null(c->kv_user), "password_file",
		                  cmd_json_str_or_null(c->kv_password_file), "sync_timeout",
		                  (int)c->kv_sync_timeout, "max_delete_share",
		                  (int)c->kv_max_delete_share, "block_ms", (int)c->kv_block_ms));
	json_object_set_new(root, "conntrack",
	                    json_pack("{s:I, s:I, s:b, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}}",
	                              "max_entries", (json_int_t)c->ct.max_entries, "max_fragments",
	                              (json_int_t)c->ct.max_frags, "tcp_pickup", c->ct.tcp_pickup,
	                              "timeouts", "tcp_syn", (json_int_t)c->ct.timeouts.tcp_syn,
	                              "tcp_established", (json_int_t)c->ct.timeouts.tcp_established,
	                              "tcp_fin", (json_int_t)c->ct.timeouts.tcp_fin, "tcp_close",
	                              (json_int_t)c->ct.timeouts.tcp_close, "udp",
	                              (json_int_t)c->ct.timeouts.udp, "icmp",
	                              (json_int_t)c->ct.timeouts.icmp, "other",
	                              (json_int_t)c->ct.timeouts.other, "fragment",
	                              (json_int_t)c->ct.timeouts.fragment));
	json_object_set_new(root, "control",
	                    json_pack("{s:o, s:o, s:o, s:i, s:i, s:I, s:i, s:I}", "socket",
	                              cmd_json_str_or_null(c->control_socket), "group",
	                              cmd_json_str_or_null(c->control_group), "admin_group",
	                              cmd_json_str_or_null(c->control_admin_group), "max_clients",
	                              (int)c->control_max_clients, "admin_reserve",
	                              (int)c->control_reserve, "max_request_bytes",
	                              (json_int_t)c->control_max_request, "idle_timeout",
	                              (int)c->control_idle_timeout, "max_output_bytes",
	                              (json_int_t)c->control_max_output));
	json_object_set_new(root, "metrics",
	                    json_pack("{s:o}", "listen", cmd_json_str_or_null(c->metrics_listen)));
	return root;
}

static int
cmd_config_show(void *arg, struct mg_ctl_conn *conn, const json_t *args, json_t **result,
                struct mg_error *err)
{
	struct daemon *d = arg;

	(void)conn;
	(void)args;
	(void)err;
	*result = json_pack("{s:s, s:o}", "file", mg_gateway_config(d->gw)->file, "config",
	                    config_json(mg_gateway_config(d->gw)));
	return *result != NULL ? 0 : -ENOMEM;
}

static const struct mg_ctl_command cmds[] = {
        {"config.show", "the running config, defaults filled in", false, cmd_config_show, NULL},
};

const struct cmd_area cmd_area_config = {"config", cmds, MG_ARRAY_SIZE(cmds)};
