/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/gateway's insides, shared by its files: the state one load builds
 * (struct gw_state) and the gateway around it. Not a public header.
 */
#ifndef MG_GW_PRIV_H
#define MG_GW_PRIV_H

#include "mg_gateway.h"

/* Everything one load builds from the config; a reload builds a new one. */
struct gw_state {
	struct mg_config *cfg;
	struct mg_identity_table *ids;
	struct mg_policy_set *set;
	struct mg_ipcache *ipc;
	/* static entries only (no readers): what shows again when the synced
	 * entry of the same prefix goes (the sync client's base layer) */
	struct mg_ipcache *base;
	struct mg_policy *policy; /* compiled, until taken or published */
	/* CIDR identities: kept across reloads so a prefix keeps its number */
	struct mg_cidr_ids *cidr;
	uint64_t revision; /* of the policy: 1 at start, +1 per reload */
};

struct mg_gateway {
	struct gw_state st;
	struct mg_gateway_params p;
	/* The policy the readers use: st.policy until it is taken, then the
	 * last one published (owned by the readers' side). */
	const struct mg_policy *running;
	struct mg_kv_sync *kv;
	struct mg_gateway_stats stats;
	struct gw_reload *rl; /* the reload under way, or NULL */
};

/* A reload's work on its own thread (mg_gateway_reload.c). */
struct gw_reload;

/* Wait for the reload under way, if any, and drop it (the gateway's end). */
void gw_reload_cancel(struct mg_gateway *gw);

void gw_state_free(struct gw_state *st);

/*
 * Load everything @p st->cfg names into fresh tables of @p st (the live
 * ipcache with @p p's qsbr when @p p->qsbr is to be used: a reload's new
 * tables have no readers yet and pass NULL). With @p kv (a reload), the sync client puts all
 * it holds into the new tables before the CIDR identities, so the new
 * state is the static part plus the synced entries; kv then points at
 * them. 0, or negative errno with @p err filled.
 */
int gw_state_load(struct gw_state *st, const struct mg_gateway_params *p, struct mg_kv_sync *kv,
                  struct mg_error *err);

/*
 * The two halves of gw_state_load. The static half reads only the config
 * and its files into fresh tables of @p st (a reload runs it on its own
 * thread); the rest, on the thread that owns the gateway, adds the synced
 * entries from @p kv (when not NULL) and the policies' CIDR identities.
 */
int gw_state_load_static(struct gw_state *st, const struct mg_gateway_params *p,
                         struct mg_error *err);
int gw_state_load_rest(struct gw_state *st, struct mg_kv_sync *kv, struct mg_error *err);

/* The compile's parameters for @p st (its config and revision). */
void gw_policy_params(const struct gw_state *st, struct mg_policy_params *pp);

/* Compile @p st's policy over its identities (its revision). 0 or -errno, @p err filled. */
int gw_state_compile(struct gw_state *st, struct mg_error *err);

/*
 * Publish what is staged in the live ipcache with @p policy (NULL: the
 * running one stays): through the callback, or, without readers, by a
 * commit here. On success @p policy is the readers' (or the gateway's).
 * Changes published (>= 0), or negative errno (nothing went live).
 */
int gw_publish(struct mg_gateway *gw, struct mg_policy *policy);

/* The sync client's base layer: the gateway's own entry for a prefix. */
int gw_kv_base(void *arg, const struct mg_ipcache_entry *prefix, struct mg_ipcache_entry *out);

/* After a good reload: the new kvstore settings to the sync client. */
void gw_kv_reconfigure(struct mg_gateway *gw, const struct mg_config *old);

#endif /* MG_GW_PRIV_H */
