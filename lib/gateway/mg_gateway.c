/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The gateway's state: load the config's policy sources, static
 * identities and endpoints and the policies' CIDR identities into fresh
 * tables, compile, and hand the pair (live ipcache, compiled policy) to
 * whoever reads it. The static entries are also kept in a table of their
 * own (the base layer), so that a prefix a synced entry overwrote gets
 * the gateway's own entry back when the synced one goes. Reloads
 * (mg_gateway_reload.c) and the Redis sync (mg_gateway_sync.c) build on
 * the same two steps, gw_state_load and gw_state_compile.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_priv.h"

void
gw_state_free(struct gw_state *st)
{
	mg_policy_free(st->policy);
	mg_ipcache_free(st->ipc);
	mg_ipcache_free(st->base);
	mg_policy_set_free(st->set);
	mg_identity_table_free(st->ids);
	mg_config_free(st->cfg);
	mg_cidr_ids_free(st->cidr);
	memset(st, 0, sizeof(*st));
}

static void
log_warning(const struct mg_policy_problem *p, void *arg)
{
	(void)arg;
	MG_WARN("%s:%u:%u: %s", p->file, p->line, p->col, p->msg);
}

static int
copy_entry(const struct mg_ipcache_entry *e, void *arg)
{
	return mg_ipcache_put(arg, e);
}

static int
oom(struct mg_error *err)
{
	mg_error_set(err, NULL, 0, 0, "out of memory");
	return -ENOMEM;
}

int
gw_state_load_static(struct gw_state *st, const struct mg_gateway_params *p, struct mg_error *err)
{
	struct mg_ipcache_params ip = {
	        .entries_hint = 1024,
	        .split_world = st->cfg->split_world,
	        .qsbr = p != NULL ? p->qsbr : NULL,
	};
	int rc;

	st->ids = mg_identity_table_create(st->cfg->cluster_mode);
	st->set = mg_policy_set_create();
	st->ipc = mg_ipcache_create(&ip);
	ip.qsbr = NULL; /* the base copy has no readers but this thread */
	st->base = mg_ipcache_create(&ip);
	if (st->ids == NULL || st->set == NULL || st->ipc == NULL || st->base == NULL)
		return oom(err);
	rc = mg_config_load_policies(st->cfg, st->set, err);
	if (rc == 0)
		rc = mg_config_load_static(st->cfg, st->ids, st->ipc, err);
	if (rc != 0)
		return rc < 0 ? rc : -rc;
	/* Allow rules a layer-4 gateway cannot enforce are skipped: say which. */
	if (p != NULL && p->log_skipped)
		mg_policy_set_warnings(st->set, log_warning, NULL);
	rc = mg_ipcache_commit(st->ipc);
	/* The static entries, kept apart: a synced entry hides one of the same
	 * prefix while it exists, and it comes back when the synced one goes. */
	if (rc >= 0)
		rc = mg_ipcache_walk(st->ipc, copy_entry, st->base);
	if (rc >= 0)
		rc = mg_ipcache_commit(st->base);
	if (rc < 0) {
		mg_error_set(err, NULL, 0, 0, "ipcache: %s", strerror(-rc));
		return rc;
	}
	return 0;
}

int
gw_state_load_rest(struct gw_state *st, struct mg_kv_sync *kv, struct mg_error *err)
{
	int rc;

	if (kv != NULL) {
		rc = mg_kv_sync_rebind(kv, st->ids, st->ipc, true);
		/* The client leaves them staged; these tables have no readers yet.
		 * Committed before the CIDR sync, which looks at committed entries. */
		if (rc == 0 && (rc = mg_ipcache_commit(st->ipc)) > 0)
			rc = 0;
		if (rc < 0) {
			mg_error_set(err, NULL, 0, 0, "kvstore: cannot copy the synced entries: %s",
			             strerror(-rc));
			return rc;
		}
	}
	/* Every prefix the policies name gets its CIDR identity and entry,
	 * where no endpoint or static entry holds that exact prefix. */
	if (st->cidr == NULL && (st->cidr = mg_cidr_ids_create()) == NULL)
		return oom(err);
	rc = mg_cidr_ids_sync(st->cidr, st->set, st->ids, st->ipc, NULL, NULL, err);
	if (rc == 0)
		rc = mg_ipcache_commit(st->ipc);
	if (rc < 0) {
		if (err->msg[0] == '\0')
			mg_error_set(err, NULL, 0, 0, "%s", strerror(-rc));
		return rc;
	}
	return 0;
}

int
gw_state_load(struct gw_state *st, const struct mg_gateway_params *p, struct mg_kv_sync *kv,
              struct mg_error *err)
{
	int rc = gw_state_load_static(st, p, err);

	return rc == 0 ? gw_state_load_rest(st, kv, err) : rc;
}

void
gw_policy_params(const struct gw_state *st, struct mg_policy_params *pp)
{
	memset(pp, 0, sizeof(*pp));
	pp->enforcement = st->cfg->enforcement;
	pp->default_local_cluster = st->cfg->default_local_cluster;
	pp->revision = st->revision;
}

int
gw_state_compile(struct gw_state *st, struct mg_error *err)
{
	struct mg_policy_params pp;
	struct mg_policy *pol;

	gw_policy_params(st, &pp);
	pol = mg_policy_compile(st->set, st->ids, &pp, err);
	if (pol == NULL)
		return errno ? -errno : -EINVAL;
	mg_policy_free(st->policy);
	st->policy = pol;
	return 0;
}

int
gw_publish(struct mg_gateway *gw, struct mg_policy *policy)
{
	int rc;

	if (gw->p.publish != NULL) {
		rc = gw->p.publish(gw->p.publish_arg, gw->st.ipc, policy);
		if (rc >= 0 && policy != NULL)
			gw->running = policy;
		return rc;
	}
	/* No readers: the gateway keeps the policy and commits itself. */
	rc = mg_ipcache_commit(gw->st.ipc);
	if (rc >= 0 && policy != NULL) {
		if (gw->st.policy != policy)
			mg_policy_free(gw->st.policy);
		gw->st.policy = policy;
		gw->running = policy;
	}
	return rc;
}

struct mg_gateway *
mg_gateway_create(struct mg_config *cfg, const struct mg_gateway_params *p, struct mg_error *err)
{
	struct mg_gateway *gw = calloc(1, sizeof(*gw));
	int rc;

	if (gw == NULL) {
		mg_config_free(cfg);
		oom(err);
		errno = ENOMEM;
		return NULL;
	}
	if (p != NULL)
		gw->p = *p;
	gw->st.cfg = cfg;
	gw->st.revision = 1;
	gw->stats.revision = 1;
	rc = gw_state_load(&gw->st, &gw->p, NULL, err);
	if (rc < 0) {
		mg_gateway_free(gw);
		errno = -rc;
		return NULL;
	}
	return gw;
}

void
mg_gateway_free(struct mg_gateway *gw)
{
	if (gw == NULL)
		return;
	gw_reload_cancel(gw);
	mg_kv_sync_free(gw->kv);
	gw_state_free(&gw->st);
	free(gw);
}

int
mg_gateway_compile(struct mg_gateway *gw, struct mg_error *err)
{
	int rc = gw_state_compile(&gw->st, err);

	if (rc == 0)
		gw->running = gw->st.policy;
	return rc;
}

struct mg_policy *
mg_gateway_take_policy(struct mg_gateway *gw)
{
	struct mg_policy *pol = gw->st.policy;

	gw->st.policy = NULL;
	gw->running = pol;
	return pol;
}

void
mg_gateway_return_policy(struct mg_gateway *gw, struct mg_policy *pol)
{
	gw->st.policy = pol;
	gw->running = pol;
}

void
mg_gateway_set_publish(struct mg_gateway *gw, mg_gateway_publish_fn fn, void *arg)
{
	gw->p.publish = fn;
	gw->p.publish_arg = arg;
}

const struct mg_config *
mg_gateway_config(const struct mg_gateway *gw)
{
	return gw->st.cfg;
}

struct mg_identity_table *
mg_gateway_identities(const struct mg_gateway *gw)
{
	return gw->st.ids;
}

struct mg_policy_set *
mg_gateway_policy_set(const struct mg_gateway *gw)
{
	return gw->st.set;
}

struct mg_ipcache *
mg_gateway_ipcache(const struct mg_gateway *gw)
{
	return gw->st.ipc;
}

const struct mg_policy *
mg_gateway_policy(const struct mg_gateway *gw)
{
	return gw->running;
}

struct mg_kv_sync *
mg_gateway_sync(const struct mg_gateway *gw)
{
	return gw->kv;
}

void
mg_gateway_policy_params(const struct mg_gateway *gw, struct mg_policy_params *out)
{
	gw_policy_params(&gw->st, out);
}

void
mg_gateway_stats(const struct mg_gateway *gw, struct mg_gateway_stats *out)
{
	*out = gw->stats;
	out->revision = gw->st.revision;
}

void
mg_gateway_summary(const struct mg_gateway *gw, char *buf, size_t size)
{
	const struct gw_state *st = &gw->st;

	snprintf(buf, size,
	         "%zu policies (%zu rules, %zu skipped), %zu identities (%zu for CIDRs), "
	         "%zu ipcache entries (%zu IPv4, %zu IPv6), %zu ports, enforcement %s, "
	         "policy memory %zu bytes",
	         mg_policy_set_count(st->set), mg_policy_set_rules(st->set),
	         mg_policy_set_warnings(st->set, NULL, NULL), mg_identity_table_count(st->ids),
	         st->cidr ? mg_cidr_ids_count(st->cidr) : 0, mg_ipcache_count(st->ipc, 0),
	         mg_ipcache_count(st->ipc, MG_AF_INET), mg_ipcache_count(st->ipc, MG_AF_INET6),
	         st->cfg->n_ports, mg_enforcement_name(st->cfg->enforcement),
	         mg_policy_memory(gw->running));
}

void
mg_gateway_trace_ctx(const struct mg_gateway *gw, struct mg_trace_ctx *ctx,
                     struct mg_policy_params *params)
{
	gw_policy_params(&gw->st, params);
	ctx->set = gw->st.set;
	ctx->ids = gw->st.ids;
	ctx->ipc = gw->st.ipc;
	ctx->policy = gw->running;
	ctx->params = params;
}
