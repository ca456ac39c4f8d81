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
 *
 * The slow part runs on a thread of the reload's own, so the owner's
 * thread keeps answering commands and applying the sync's batches: it
 * reads the config file and the policies into fresh tables (no shared
 * state: the file's path and a copy of the identities are its only
 * inputs) and compiles the new policies over that copy with the new
 * static identities laid over it. Back on the owner's thread the finish
 * copies the synced entries in and adds the CIDR identities (as before),
 * compares the identities the compile saw with the final ones, and
 * brings the few that differ (changed by the sync meanwhile, or static
 * ones the new config dropped) into the policy by an incremental update;
 * then it stages and publishes as above.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
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

struct gw_reload {
	pthread_t th;
	atomic_bool done; /* the thread has finished (release: its outputs are written) */
	bool joined;
	/* the thread's inputs */
	char *file;
	struct mg_gateway_params np;
	uint64_t revision;
	struct mg_identity_table *cids; /* a copy of the identities, then the compile's */
	/* its outputs */
	struct gw_state nst; /* config, policies, static tables */
	struct mg_policy *pol;
	int rc;
	struct mg_error err;
	uint64_t started_ns;
};

/* Put identity @p e into table @p arg (a reserved one is in every table). */
static int
copy_identity(const struct mg_identity *e, void *arg)
{
	struct mg_identity_table *t = arg;
	int rc;

	if (mg_identity_is_reserved(e->id))
		return 0;
	rc = mg_identity_table_put(t, e->id, &e->labels, e->cluster_id);
	/* an id the copy's cluster mode refuses: the finish compares and fixes */
	if (rc == -EINVAL)
		return 0;
	for (size_t i = 0; rc >= 0 && i < e->n_named_ports; i++)
		rc = mg_identity_table_add_named_port(t, e->id, e->named_ports[i].name,
		                                      e->named_ports[i].proto,
		                                      e->named_ports[i].port);
	return rc < 0 ? rc : 0;
}

static void (*test_hook)(void *arg);
static void *test_hook_arg;

void
mg_gateway_test_reload_hook(void (*fn)(void *arg), void *arg)
{
	test_hook = fn;
	test_hook_arg = arg;
}

static void *
reload_main(void *arg)
{
	struct gw_reload *rl = arg;
	struct mg_policy_params pp;
	int rc;

	rl->nst.revision = rl->revision;
	rl->nst.cfg = mg_config_load(rl->file, &rl->err);
	rc = rl->nst.cfg != NULL ? gw_state_load_static(&rl->nst, &rl->np, &rl->err) : -EINVAL;
	/* the compile's identities: the running ones, the new static ones over them */
	if (rc == 0 && (rc = mg_identity_table_walk(rl->nst.ids, copy_identity, rl->cids)) != 0)
		mg_error_set(&rl->err, NULL, 0, 0, "reload: copying the identities: %s",
		             strerror(-rc));
	if (rc == 0 && test_hook != NULL)
		test_hook(test_hook_arg);
	if (rc == 0) {
		gw_policy_params(&rl->nst, &pp);
		rl->pol = mg_policy_compile(rl->nst.set, rl->cids, &pp, &rl->err);
		if (rl->pol == NULL)
			rc = errno ? -errno : -EINVAL;
	}
	rl->rc = rc;
	atomic_store_explicit(&rl->done, true, memory_order_release);
	return NULL;
}

static void
reload_free(struct gw_reload *rl)
{
	if (rl == NULL)
		return;
	if (!rl->joined)
		pthread_join(rl->th, NULL);
	rl->nst.cidr = NULL; /* never the reload's own */
	gw_state_free(&rl->nst);
	mg_identity_table_free(rl->cids);
	mg_policy_free(rl->pol);
	free(rl->file);
	free(rl);
}

void
gw_reload_cancel(struct mg_gateway *gw)
{
	reload_free(gw->rl);
	gw->rl = NULL;
}

/* Does identity @p a carry what @p b does (labels, cluster, named ports)? */
static bool
same_identity(const struct mg_identity *a, const struct mg_identity *b)
{
	if (a->cluster_id != b->cluster_id || a->n_named_ports != b->n_named_ports ||
	    !mg_labels_equal(&a->labels, &b->labels))
		return false;
	for (size_t i = 0; i < a->n_named_ports; i++) {
		const struct mg_named_port *x = &a->named_ports[i], *y = &b->named_ports[i];

		if (x->proto != y->proto || x->port != y->port || strcmp(x->name, y->name) != 0)
			return false;
	}
	return true;
}

struct id_diff {
	const struct mg_identity_table *other;
	bool both; /* the walk of the final table: compare too */
	uint32_t *v;
	size_t n, cap;
};

static int
diff_one(const struct mg_identity *e, void *arg)
{
	struct id_diff *d = arg;
	const struct mg_identity *o = mg_identity_table_get(d->other, e->id);

	if (o != NULL && (!d->both || same_identity(o, e)))
		return 0;
	if (mg_grow(&d->v, &d->cap, d->n, sizeof(*d->v), 64))
		return -ENOMEM;
	d->v[d->n++] = e->id;
	return 0;
}

/*
 * The compiled policy, brought from the identities it was compiled over
 * to the final ones of @p nst: the ids that differ go through an
 * incremental update. Then it is nst's policy. 0 or negative errno.
 */
static int
catch_up(struct gw_reload *rl, struct gw_state *nst, struct mg_error *err)
{
	struct id_diff d = {.other = rl->cids, .both = true};
	int rc = mg_identity_table_walk(nst->ids, diff_one, &d);

	d.other = nst->ids;
	d.both = false;
	if (rc == 0)
		rc = mg_identity_table_walk(rl->cids, diff_one, &d);
	if (rc != 0) {
		free(d.v);
		mg_error_set(err, NULL, 0, 0, "reload: out of memory");
		return -ENOMEM;
	}
	if (d.n > 0) {
		struct mg_policy *pol =
		        mg_policy_update_identities(rl->pol, nst->set, nst->ids, d.v, d.n, err);

		if (pol == NULL) {
			rc = errno ? -errno : -EINVAL;
			free(d.v);
			return rc;
		}
		MG_INFO("reload: %zu identities changed while the policy compiled: updated", d.n);
		mg_policy_free(rl->pol);
		rl->pol = pol;
	}
	free(d.v);
	mg_policy_free(nst->policy);
	nst->policy = rl->pol;
	rl->pol = NULL;
	return 0;
}

/*
 * Finish reload @p rl: the synced entries and the CIDR identities, the
 * policy caught up, staged and published. 0 with @p old_cfg the replaced
 * config (the caller compares the kvstore sections, then frees it), or
 * negative errno with @p err filled and nothing changed.
 */
static int
reload_finish(struct mg_gateway *gw, struct gw_reload *rl, struct mg_error *err,
              struct mg_config **old_cfg)
{
	struct gw_state *st = &gw->st, *nst = &rl->nst;
	struct ipc_sync x = {.live = st->ipc};
	int rc = rl->rc;

	if (rc != 0) {
		*err = rl->err;
		goto fail;
	}
	/* the same CIDR identities object: a prefix keeps its number */
	nst->cidr = st->cidr;
	rc = gw_state_load_rest(nst, gw->kv, err);
	if (rc == 0)
		rc = catch_up(rl, nst, err);
	if (rc == 0) {
		x.want = nst->ipc;
		rc = mg_ipcache_walk(st->ipc, stage_removal, &x);
		if (rc == 0)
			rc = mg_ipcache_walk(nst->ipc, stage_change, &x);
		if (rc < 0)
			mg_error_set(err, NULL, 0, 0, "staging the ipcache changes: %s",
			             strerror(-rc));
	}
	if (rc != 0)
		goto fail;
	/* The new policy and the bumped generation make every tracked flow's
	 * next original-direction packet ask the new policy; the readers see
	 * the new policy and the new ipcache together or neither. */
	rc = gw_publish(gw, nst->policy);
	if (rc < 0) {
		mg_error_set(err, NULL, 0, 0, "publishing the new state failed: %s", strerror(-rc));
		goto fail;
	}
	gw->stats.last_reload_changes = (uint64_t)rc;
	if (gw->p.publish != NULL)
		nst->policy = NULL; /* the readers' now */
	else
		st->policy = NULL; /* gw_publish kept nst's policy there: it stays nst's */
	/* Keep the new inputs; the live ipcache stays the one the readers see.
	 * It now holds what nst->ipc held, synced entries included. */
	if (gw->kv != NULL)
		mg_kv_sync_rebind(gw->kv, nst->ids, st->ipc, false);
	mg_ipcache_free(nst->ipc);
	nst->ipc = st->ipc;
	st->ipc = NULL;
	st->cidr = NULL;    /* now nst's */
	*old_cfg = st->cfg; /* the caller compares the kvstore sections */
	st->cfg = NULL;
	gw_state_free(st);
	*st = *nst;
	memset(nst, 0, sizeof(*nst));
	return 0;
fail:
	/* Nothing of the new state goes live. */
	mg_ipcache_discard(st->ipc);
	if (gw->kv != NULL)
		mg_kv_sync_rebind(gw->kv, st->ids, st->ipc, false);
	nst->cidr = NULL; /* still the running state's */
	return rc < 0 ? rc : -EINVAL;
}

int
mg_gateway_reload_start(struct mg_gateway *gw, struct mg_error *err)
{
	const struct gw_state *st = &gw->st;
	struct gw_reload *rl;
	int rc;

	err->msg[0] = '\0';
	if (gw->rl != NULL)
		return -EALREADY;
	rl = calloc(1, sizeof(*rl));
	if (rl == NULL || (rl->file = strdup(st->cfg->file)) == NULL ||
	    (rl->cids = mg_identity_table_create(mg_identity_table_mode(st->ids))) == NULL ||
	    mg_identity_table_walk(st->ids, copy_identity, rl->cids) != 0) {
		if (rl != NULL)
			rl->joined = true;
		reload_free(rl);
		mg_error_set(err, NULL, 0, 0, "reload: out of memory");
		return -ENOMEM;
	}
	/* the new tables have no readers until the publication: no qsbr */
	rl->np = gw->p;
	rl->np.qsbr = NULL;
	rl->revision = st->revision + 1;
	rl->started_ns = mg_time_ns();
	MG_INFO("reload: reading %s", rl->file);
	rc = pthread_create(&rl->th, NULL, reload_main, rl);
	if (rc != 0) {
		rl->joined = true;
		reload_free(rl);
		mg_error_set(err, NULL, 0, 0, "reload: cannot start its thread: %s", strerror(rc));
		return -rc;
	}
	gw->rl = rl;
	return 0;
}

bool
mg_gateway_reload_busy(const struct mg_gateway *gw)
{
	return gw->rl != NULL;
}

/* The outcome of a finished reload: counters, the log, the sync client's settings. */
static int
reload_done(struct mg_gateway *gw, int rc, struct mg_config *old, double secs, struct mg_error *err)
{
	char summary[512];

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
	MG_INFO("reload: done in %.3f s: policy revision %" PRIu64 ", %" PRIu64
	        " ipcache change(s); %s",
	        secs, gw->st.revision, gw->stats.last_reload_changes, summary);
	if (gw->kv != NULL)
		gw_kv_reconfigure(gw, old);
	mg_config_free(old);
	return 0;
}

int
mg_gateway_reload_poll(struct mg_gateway *gw, struct mg_error *err)
{
	struct gw_reload *rl = gw->rl;
	struct mg_config *old = NULL;
	double secs;
	int rc;

	if (rl == NULL || !atomic_load_explicit(&rl->done, memory_order_acquire))
		return 0;
	err->msg[0] = '\0';
	pthread_join(rl->th, NULL);
	rl->joined = true;
	gw->rl = NULL;
	rc = reload_finish(gw, rl, err, &old);
	secs = (double)(mg_time_ns() - rl->started_ns) / 1e9;
	reload_free(rl);
	rc = reload_done(gw, rc, old, secs, err);
	return rc < 0 ? rc : 1;
}

int
mg_gateway_reload(struct mg_gateway *gw, struct mg_error *err)
{
	int rc;

	/* one under way first: its outcome is not this call's */
	if (gw->rl != NULL) {
		struct mg_error e = {{0}};

		pthread_join(gw->rl->th, NULL);
		gw->rl->joined = true;
		mg_gateway_reload_poll(gw, &e);
	}
	rc = mg_gateway_reload_start(gw, err);
	if (rc < 0)
		return rc;
	pthread_join(gw->rl->th, NULL);
	gw->rl->joined = true;
	rc = mg_gateway_reload_poll(gw, err);
	return rc < 0 ? rc : 0;
}
