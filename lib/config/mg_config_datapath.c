/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The config sections the DPDK layer reads at start: `eal` (the arguments
 * given to rte_eal_init) and `datapath` (mode, non-IP frames, burst and
 * ring sizes, mbufs, and the ports). Ports are checked one by one (name,
 * device, peer), then together: every peer names another port and
 * peering is symmetric, since wire mode forwards each port to its peer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_priv.h"

const char *const cfg_keys_datapath_ports[] = {"name", "device", "peer", NULL};
const char *const cfg_keys_datapath[] = {"mode",    "ports",   "non_ip", "burst",
                                         "rx_desc", "tx_desc", "mbufs",  NULL};

/* Port names: [a-z0-9_-], 1..MG_CONFIG_NAME_MAX-1 characters. */
static bool
valid_port_name(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n >= MG_CONFIG_NAME_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-'))
			return false;
	return true;
}

int
cfg_parse_eal(struct ctx *x, const struct mg_yaml_node *root)
{
	const struct mg_yaml_node *n = mg_yaml_get(root, "eal");
	int rc;

	if (n == NULL)
		return cfg_missing(x, root, "config", "eal");
	rc = cfg_get_str_list(x, n, "eal", false, false, &x->c->n_eal, &x->c->eal);
	if (rc)
		return rc;
	if (x->c->n_eal == 0)
		return mg_yaml_error(x->err, n, "eal: must hold at least one argument");
	return 0;
}

static int
parse_port(struct ctx *x, const struct mg_yaml_node *pn, size_t i,
           const struct mg_yaml_node **peer_nodes)
{
	const char *const *keys = cfg_keys_datapath_ports;
	struct mg_config_port *p = &x->c->ports[i];
	const struct mg_yaml_node *n;
	char what[64];
	const char *s;
	size_t j;
	int rc;

	snprintf(what, sizeof(what), "datapath.ports[%zu]", i);
	rc = mg_yaml_check_map(pn, what, keys, x->err);
	if (rc)
		return rc;

	n = mg_yaml_get(pn, "name");
	if (n == NULL)
		return cfg_missing(x, pn, what, "name");
	snprintf(what, sizeof(what), "datapath.ports[%zu].name", i);
	rc = mg_yaml_str(n, what, &s, x->err);
	if (rc)
		return rc;
	if (!valid_port_name(s))
		return mg_yaml_error(x->err, n,
		                     "%s: '%s' is not a valid port name ([a-z0-9_-], 1 to %d "
		                     "characters)",
		                     what, s, MG_CONFIG_NAME_MAX - 1);
	for (j = 0; j < i; j++)
		if (strcmp(x->c->ports[j].name, s) == 0)
			return mg_yaml_error(x->err, n, "%s: duplicate port name '%s'", what, s);
	strcpy(p->name, s);

	snprintf(what, sizeof(what), "datapath.ports[%zu]", i);
	n = mg_yaml_get(pn, "device");
	if (n == NULL)
		return cfg_missing(x, pn, what, "device");
	snprintf(what, sizeof(what), "datapath.ports[%zu].device", i);
	rc = mg_yaml_str(n, what, &s, x->err);
	if (rc)
		return rc;
	if (s[0] == '\0' || strlen(s) >= sizeof(p->device))
		return mg_yaml_error(x->err, n, "%s: must be 1 to %zu characters", what,
		                     sizeof(p->device) - 1);
	for (j = 0; j < i; j++)
		if (strcmp(x->c->ports[j].device, s) == 0)
			return mg_yaml_error(x->err, n,
			                     "%s: device '%s' is already used by port '%s'", what,
			                     s, x->c->ports[j].name);
	strcpy(p->device, s);

	/* Wire mode (the only mode) forwards every port to its peer. */
	snprintf(what, sizeof(what), "datapath.ports[%zu]", i);
	n = mg_yaml_get(pn, "peer");
	if (n == NULL)
		return cfg_missing(x, pn, what, "peer");
	snprintf(what, sizeof(what), "datapath.ports[%zu].peer", i);
	rc = mg_yaml_str(n, what, &s, x->err);
	if (rc)
		return rc;
	if (!valid_port_name(s))
		return mg_yaml_error(x->err, n, "%s: '%s' is not a valid port name", what, s);
	strcpy(p->peer, s);
	peer_nodes[i] = n;
	return 0;
}

/* Every peer names another port, and peering is symmetric (A<->B). */
static int
link_peers(struct ctx *x, const struct mg_yaml_node *const *peer_nodes)
{
	struct mg_config *c = x->c;
	size_t i;
	int j;

	for (i = 0; i < c->n_ports; i++) {
		j = mg_config_port_index(c, c->ports[i].peer);
		if (j < 0)
			return mg_yaml_error(x->err, peer_nodes[i],
			                     "datapath.ports[%zu].peer: no port is called '%s'", i,
			                     c->ports[i].peer);
		if ((size_t)j == i)
			return mg_yaml_error(
			        x->err, peer_nodes[i],
			        "datapath.ports[%zu].peer: port '%s' cannot be its own "
			        "peer",
			        i, c->ports[i].name);
		c->ports[i].peer_index = (unsigned)j;
	}
	for (i = 0; i < c->n_ports; i++) {
		const struct mg_config_port *p = &c->ports[i], *q = &c->ports[p->peer_index];

		if (q->peer_index != i)
			return mg_yaml_error(
			        x->err, peer_nodes[i],
			        "datapath.ports[%zu].peer: port '%s' names '%s' as its "
			        "peer, but '%s' names '%s' (peering must be symmetric)",
			        i, p->name, q->name, q->name, q->peer);
	}
	return 0;
}

static int
check_pow2(struct ctx *x, const struct mg_yaml_node *map, const char *key, const char *what,
           unsigned v)
{
	if (v & (v - 1))
		return mg_yaml_error(x->err, mg_yaml_get(map, key), "%s: %u is not a power of two",
		                     what, v);
	return 0;
}

int
cfg_parse_datapath(struct ctx *x, const struct mg_yaml_node *root)
{
	const char *const *keys = cfg_keys_datapath;
	const struct mg_yaml_node *peer_nodes[MG_CONFIG_MAX_PORTS];
	const struct mg_yaml_node *dp = mg_yaml_get(root, "datapath"), *n;
	struct mg_config *c = x->c;
	const char *s;
	size_t i;
	int rc;

	if (dp == NULL)
		return cfg_missing(x, root, "config", "datapath");
	rc = mg_yaml_check_map(dp, "datapath", keys, x->err);
	if (rc)
		return rc;

	n = mg_yaml_get(dp, "mode");
	if (n != NULL) {
		rc = mg_yaml_str(n, "datapath.mode", &s, x->err);
		if (rc)
			return rc;
		if (strcmp(s, "wire") != 0)
			return mg_yaml_error(x->err, n,
			                     "datapath.mode: unknown mode '%s' (expected wire)", s);
	}

	n = mg_yaml_get(dp, "non_ip");
	if (n != NULL) {
		rc = mg_yaml_str(n, "datapath.non_ip", &s, x->err);
		if (rc)
			return rc;
		if (strcmp(s, "forward") == 0)
			c->non_ip = MG_NON_IP_FORWARD;
		else if (strcmp(s, "drop") == 0)
			c->non_ip = MG_NON_IP_DROP;
		else
			return mg_yaml_error(
			        x->err, n,
			        "datapath.non_ip: unknown value '%s' (expected forward "
			        "or drop)",
			        s);
	}

	rc = cfg_get_uint(x, dp, "burst", "datapath.burst", 1, 256, &c->burst);
	if (rc == 0)
		rc = cfg_get_uint(x, dp, "rx_desc", "datapath.rx_desc", 64, 16384, &c->rx_desc);
	if (rc == 0)
		rc = check_pow2(x, dp, "rx_desc", "datapath.rx_desc", c->rx_desc);
	if (rc == 0)
		rc = cfg_get_uint(x, dp, "tx_desc", "datapath.tx_desc", 64, 16384, &c->tx_desc);
	if (rc == 0)
		rc = check_pow2(x, dp, "tx_desc", "datapath.tx_desc", c->tx_desc);
	if (rc == 0)
		rc = cfg_get_uint(x, dp, "mbufs", "datapath.mbufs", 1023, 1048575, &c->mbufs);
	if (rc)
		return rc;

	n = mg_yaml_get(dp, "ports");
	if (n == NULL)
		return cfg_missing(x, dp, "datapath", "ports");
	rc = mg_yaml_seq(n, "datapath.ports", false, x->err);
	if (rc)
		return rc;
	if (n->n == 0 || n->n > MG_CONFIG_MAX_PORTS)
		return mg_yaml_error(x->err, n, "datapath.ports: expected 1 to %d ports, got %zu",
		                     MG_CONFIG_MAX_PORTS, n->n);
	for (i = 0; i < n->n; i++) {
		rc = parse_port(x, n->items[i], i, peer_nodes);
		if (rc)
			return rc;
		c->n_ports = i + 1;
	}
	return link_peers(x, peer_nodes);
}
