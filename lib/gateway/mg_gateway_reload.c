/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Reload: read the config file again and everything it names into a new
 * state off to the side (the synced entries copied in), compile it, stage
 * in the LIVE ipcache exactly the difference to the new one, and publish
 * that with the new policy as one step. The readers see the old pair or
 * the new pair, never a mix; tracked flows are re-checked against the new
 * policy on their next packet (the publication bumps the generation). On
 * any error nothing of the new state goes live: the staged changes are
 * discarded and the sync client points back at the running tables.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_priv.h"

/* Staging that makes the live ipcache hold exactly the entries of another. */
struct ipc_sync {
	struct mg_ipcache *live;
	struct mg_ipcache *want;
	int rc;
};

static int
stage_removal(const struct mg_ipcache_entry *e, void *arg)
{
	struct ipc_sync *x = arg;
	struct mg_ipcache_entry w;

	if (mg_ipcache_get(x->want, e->family, e->addr, e->plen, &w) == 0)
		return 0;
	/* Only stages: the walk over committed entries is not disturbed. */
	x->rc = mg_ipcache_del(x->live, e->family, e->addr, e->plen);
	return x->rc;
}

static int
stage_change(const struct mg_ipcache_entry *e, void *arg)
{
	struct ipc_sync *x = arg;
	struct mg_ipcache_entry cur;

	if (mg_ipcache_get(x->live, e->family, e->addr, e->plen, &cur) == 0 &&
	    cur.identity == e->identity && cur.cluster_id == e->cluster_id)
		return 0;
	x->rc = mg_ipcache_put(x->live, e);
	return x->rc;
}

/*
 * Build, check and publish the new state. 0 with @p old_cfg the
 * replaced config (the caller compares the kvstore sections, then frees
 * it), or negative errno with @p err filled and nothing changed.
 */
static int
reload(struct mg_gateway *gw, struct mg_error *err, struct mg_config **old_cfg)
{
	struct gw_state *st = &gw->st, nst = {0};
	struct ipc_sync x = {.live = st->ipc};
	/* the new tables have no readers until the publication: no qsbr */
	struct mg_gateway_params np = gw->p;
	int rc;

	MG_INFO("reload: reading %s", st->cfg->file);
	nst.revision = st->revision + 1;
	/* the same CIDR identities object: a prefix keeps its number */
	nst.cidr = st->cidr;
	nst.cfg = mg_config_load(st->cfg->file, err);
	if (nst.cfg == NULL) {
		nst.cidr = NULL;
		return -EINVAL;
	}
	np.qsbr = NULL;
	rc = gw_state_load(&nst, &np, gw->kv, err);
	if (rc == 0)
		rc = gw_state_compile(&nst, err);
	if (rc == 0) {
		x.want = nst.ipc;
		rc = mg_ipcache_walk(st->ipc, stage_removal, &x);
		if (rc == 0)
			rc = mg_ipcache_walk(nst.ipc, stage_change, &x);
		if (rc < 0)
			mg_error_set(err, NULL, 0, 0, "staging the ipcache changes: %s",
			             strerror(-rc));
	}
	if (rc != 0)
		goto fail;
	/* The new policy and the bumped generation make every tracked flow's
	 * next original-direction packet ask the new policy; the readers see
	 * the new policy and the new ipcache together or neither. */
	rc = gw_publish(gw, nst.policy);
	if (rc < 0) {
		mg_error_set(err, NULL, 0, 0, "publishing the new state failed: %s", strerror(-rc));
		goto fail;
	}
	gw->stats.last_reload_changes = (uint64_t)rc;
	if (gw->p.publish != NULL)
		nst.policy = NULL; /* the readers' now */
	else
		st->policy = NULL; /* gw_publish kept nst.policy there: it stays nst's */
	/* Keep the new inputs; the live ipcache stays the one the readers see.
	 * It now holds what nst.ipc held, synced entries included. */
	if (gw->kv != NULL)
		mg_kv_sync_rebind(gw->kv, nst.ids, st->ipc, false);
	mg_ipcache_free(nst.ipc);
	nst.ipc = st->ipc;
	st->ipc = NULL;
	st->cidr = NULL;    /* now nst's */
	*old_cfg = st->cfg; /* the caller compares the kvstore sections */
	st->cfg = NULL;
	gw_state_free(st);
	*st = nst;
	return 0;
fail:
	/* Nothing of the new state goes live. */
	mg_ipcache_discard(st->ipc);
	if (gw->kv != NULL)
		mg_kv_sync_rebind(gw->kv, st->ids, st->ipc, false);
	nst.cidr = NULL; /* still the running state's */
	gw_state_free(&nst);
	return rc < 0 ? rc : -EINVAL;
}

int
mg_gateway_reload(struct mg_gateway *gw, struct mg_error *err)
{
	struct mg_config *old = NULL;
	char summary[512];
	int rc;

	err->msg[0] = '\0';
	rc = reload(gw, err, &old);
	if (rc < 0) {
		gw->stats.reloads_failed++;
		if (err->msg[0] == '\0')
			mg_error_set(err, NULL, 0, 0, "%s", strerror(-rc));
		snprintf(gw->stats.last_error, sizeof(gw->stats.last_error), "%s", err->msg);
		return rc;
	}
	gw->stats.reloads_ok++;
	gw->stats.last_error[0] = '\0';
	mg_gateway_summary(gw, summary, sizeof(summary));
	MG_INFO("reload: done: policy revision %" PRIu64 ", %" PRIu64 " ipcache change(s); %s",
	        gw->st.revision, gw->stats.last_reload_changes, summary);
	if (gw->kv != NULL)
		gw_kv_reconfigure(gw, old);
	mg_config_free(old);
	return 0;
}
