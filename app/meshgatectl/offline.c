/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The offline state of meshgatectl's --config commands: the same inputs
 * the daemon builds at start (config, policy sources, static identities
 * and endpoints, ipcache.entries, the gateway's CIDR identities), loaded
 * in the same order, so that `policy trace --config` answers what the
 * daemon started on that config would do. No DPDK: the ipcache is used
 * without readers (no QSBR), which the ipcache allows for offline tools.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

void
ctl_state_free(struct ctl_state *st)
{
	/* Not every destructor documents NULL as fine: check each. */
	if (st->policy != NULL)
		mg_policy_free(st->policy);
	if (st->cidr != NULL)
		mg_cidr_ids_free(st->cidr);
	if (st->ipc != NULL)
		mg_ipcache_free(st->ipc);
	if (st->set != NULL)
		mg_policy_set_free(st->set);
	if (st->ids != NULL)
		mg_identity_table_free(st->ids);
	mg_config_free(st->cfg);
	memset(st, 0, sizeof(*st));
}

int
ctl_state_load(struct ctl_state *st, const char *config_path, struct mg_error *err)
{
	struct mg_ipcache_params ip = {.entries_hint = 1024};
	int rc;

	memset(st, 0, sizeof(*st));
	st->cfg = mg_config_load(config_path, err);
	if (st->cfg == NULL)
		return -errno;
	ip.split_world = st->cfg->split_world;
	st->params.enforcement = st->cfg->enforcement;
	st->params.default_local_cluster = st->cfg->default_local_cluster;
	st->params.revision = 1;

	st->ids = mg_identity_table_create(st->cfg->cluster_mode);
	st->set = mg_policy_set_create();
	st->ipc = mg_ipcache_create(&ip);
	st->cidr = mg_cidr_ids_create();
	if (st->ids == NULL || st->set == NULL || st->ipc == NULL || st->cidr == NULL) {
		rc = -ENOMEM;
		mg_error_set(err, NULL, 0, 0, "out of memory");
		goto err;
	}
	rc = mg_config_load_policies(st->cfg, st->set, err);
	if (rc < 0)
		goto err;
	rc = mg_config_load_static(st->cfg, st->ids, st->ipc, err);
	if (rc < 0)
		goto err;
	/* Commit the static entries first: CIDR identities never replace an
	 * exact entry another source owns, and that is judged on what is
	 * committed. */
	rc = mg_ipcache_commit(st->ipc);
	if (rc < 0) {
		mg_error_set(err, NULL, 0, 0, "ipcache: %s", strerror(-rc));
		goto err;
	}
	rc = mg_cidr_ids_sync(st->cidr, st->set, st->ids, st->ipc, NULL, NULL, err);
	if (rc < 0)
		goto err;
	rc = mg_ipcache_commit(st->ipc);
	if (rc < 0) {
		mg_error_set(err, NULL, 0, 0, "ipcache: %s", strerror(-rc));
		goto err;
	}
	st->policy = mg_policy_compile(st->set, st->ids, &st->params, err);
	if (st->policy == NULL) {
		rc = errno ? -errno : -EINVAL;
		goto err;
	}
	return 0;
err:
	ctl_state_free(st);
	return rc;
}
