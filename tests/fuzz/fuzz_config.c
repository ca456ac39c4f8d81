/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target of lib/config: every input goes through the three
 * parsers of operator-supplied YAML, the meshgate.yaml loader
 * (mg_config_load_buf) and the CiliumIdentity and CiliumEndpoint manifest
 * loaders. Besides surviving any input under ASan/UBSan without a leak,
 * the results must be consistent: a refused input comes with an error
 * message and no object; an accepted config satisfies every rule the
 * loader promises (port count, symmetric peers, cluster id within the
 * cluster mode, values in range); an accepted manifest file adds exactly
 * what it reports. A broken invariant aborts, which libFuzzer and the
 * corpus replay both report.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                          \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
			        #cond);                                                      \
			abort();                                                             \
		}                                                                            \
	} while (0)

static void
check_config(const struct mg_config *c)
{
	size_t i;

	CHECK(c->version == 1);
	CHECK(c->n_eal >= 1);
	for (i = 0; i < c->n_eal; i++)
		CHECK(c->eal[i] != NULL);
	CHECK(c->n_ports >= 1 && c->n_ports <= MG_CONFIG_MAX_PORTS);
	for (i = 0; i < c->n_ports; i++) {
		const struct mg_config_port *p = &c->ports[i];

		CHECK(p->peer_index < c->n_ports && p->peer_index != i);
		CHECK(c->ports[p->peer_index].peer_index == i);
		CHECK(strcmp(c->ports[p->peer_index].name, p->peer) == 0);
		CHECK(mg_config_port_index(c, p->name) == (int)i);
	}
	CHECK(c->burst >= 1 && c->burst <= 256);
	CHECK(c->rx_desc >= 64 && c->rx_desc <= 16384 && (c->rx_desc & (c->rx_desc - 1)) == 0);
	CHECK(c->tx_desc >= 64 && c->tx_desc <= 16384 && (c->tx_desc & (c->tx_desc - 1)) == 0);
	CHECK(c->mbufs >= 1023 && c->mbufs <= 1048575);
	CHECK(c->cluster_mode == MG_CLUSTER_MODE_255 || c->cluster_mode == MG_CLUSTER_MODE_511);
	CHECK(c->cluster_id >= 1 && c->cluster_id <= (unsigned)c->cluster_mode);
	CHECK(c->cluster_name[0] != '\0');
	for (i = 0; i < c->n_sources; i++)
		CHECK(c->sources[i].path != NULL && c->sources[i].cluster[0] != '\0');
	for (i = 0; i < c->n_entries; i++)
		CHECK(c->entries[i].e.identity >= 1 && c->entries[i].e.identity <= MG_ID_MAX);
	CHECK(c->control_socket != NULL && c->metrics_listen != NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mg_ipcache_params ip = {.entries_hint = 16, .split_world = true, .qsbr = NULL};
	struct mg_error err = {{0}};
	struct mg_identity_table *t;
	struct mg_ipcache *ipc;
	struct mg_config *c;
	size_t before;
	int rc;

	/* Skipped endpoints warn; thousands of inputs need no such lines. */
	mg_log_set_level(MG_LOG_ERR);

	c = mg_config_load_buf("fuzz.yaml", data, size, &err);
	if (c != NULL)
		check_config(c);
	else
		CHECK(err.msg[0] != '\0');
	mg_config_free(c);

	t = mg_identity_table_create(MG_CLUSTER_MODE_255);
	CHECK(t != NULL);
	before = mg_identity_table_count(t);
	err.msg[0] = '\0';
	rc = mg_config_load_identities_buf("ids.yaml", data, size, t, &err);
	if (rc >= 0)
		CHECK(mg_identity_table_count(t) == before + (size_t)rc);
	else
		CHECK(err.msg[0] != '\0' && mg_identity_table_count(t) == before);
	mg_identity_table_free(t);

	ipc = mg_ipcache_create(&ip);
	CHECK(ipc != NULL);
	err.msg[0] = '\0';
	rc = mg_config_load_endpoints_buf("eps.yaml", data, size, ipc, 1, &err);
	if (rc >= 0) {
		/* the same address twice is one change */
		CHECK(mg_ipcache_pending(ipc) <= (size_t)rc);
		CHECK(mg_ipcache_commit(ipc) >= 0);
		CHECK(mg_ipcache_count(ipc, 0) <= (size_t)rc);
	} else {
		CHECK(err.msg[0] != '\0' && mg_ipcache_pending(ipc) == 0);
	}
	mg_ipcache_free(ipc);
	return 0;
}
