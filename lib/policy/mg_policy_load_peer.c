/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Policy loader, the L3 part: LabelSelectors (matchLabels,
 * matchExpressions) for rule subjects and endpoint peers, entities, and
 * CIDR rules (fromCIDR/toCIDR, fromCIDRSet/toCIDRSet). Each becomes
 * selectors appended to the set: endpoint selectors scoped to the policy's
 * namespace and cluster (mg_policy_select.c), entities selectors over
 * reserved labels and CIDR rules selectors over cidr: labels, never
 * scoped. CIDR rules also record their prefixes for mg_cidr_ids_sync.
 * The same functions serve ingress and egress, allow and deny entries.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mg_yaml.h"
#include "policy_priv.h"

/* ---- selectors ---- */

/* Split "source:key" (first ':' only); "any" and no source mean any source. */
static int
split_key(const struct mg_yaml_node *n, const char *what, const char *full, char **source,
          const char **key, struct mg_error *err)
{
	const char *c = strchr(full, ':');

	*source = NULL;
	*key = full;
	if (c != NULL) {
		if (c != full && !(c - full == 3 && strncmp(full, "any", 3) == 0)) {
			*source = strndup(full, (size_t)(c - full));
			if (*source == NULL)
				return -ENOMEM;
		}
		*key = c + 1;
	}
	if (**key == '\0') {
		free(*source);
		*source = NULL;
		return mg_yaml_error(err, n, "%s: empty label key", what);
	}
	return 0;
}

static int
add_req_at(struct selector *sel, const struct mg_yaml_node *at, const char *what, const char *full,
           enum sel_op op, const char *const *vals, size_t nvals, struct mg_error *err)
{
	char *source;
	const char *key;
	int rc;

	rc = split_key(at, what, full, &source, &key, err);
	if (rc)
		return rc;
	rc = pol_sel_add_req(sel, source, key, op, vals, nvals);
	free(source);
	if (rc == -E2BIG)
		return mg_yaml_error(err, at, "%s: too many requirements or values (limit %u)",
		                     what, POL_MAX_REQS);
	if (rc == -ENOMEM)
		mg_error_set(err, NULL, 0, 0, "out of memory");
	return rc;
}

static int
parse_expression(struct selector *sel, const struct mg_yaml_node *n, const char *what,
                 struct mg_error *err)
{
	static const char *const ok[] = {"key", "operator", "values", NULL};
	const struct mg_yaml_node *k = mg_yaml_get(n, "key"), *op = mg_yaml_get(n, "operator");
	const struct mg_yaml_node *vn = mg_yaml_get(n, "values");
	const char *key, *ops, **vals = NULL;
	char vwhat[PATH_LEN + 16];
	enum sel_op o;
	size_t nv, i;
	int rc;

	rc = mg_yaml_check_map(n, what, ok, err);
	if (rc)
		return rc;
	if (k == NULL)
		return mg_yaml_error(err, n, "%s: key is required", what);
	if (op == NULL)
		return mg_yaml_error(err, n, "%s: operator is required", what);
	pol_pathf(vwhat, sizeof(vwhat), "%s.key", what);
	rc = mg_yaml_str(k, vwhat, &key, err);
	if (rc)
		return rc;
	pol_pathf(vwhat, sizeof(vwhat), "%s.operator", what);
	rc = mg_yaml_str(op, vwhat, &ops, err);
	if (rc)
		return rc;
	if (streq(ops, "In"))
		o = SEL_IN;
	else if (streq(ops, "NotIn"))
		o = SEL_NOTIN;
	else if (streq(ops, "Exists"))
		o = SEL_EXISTS;
	else if (streq(ops, "DoesNotExist"))
		o = SEL_DNE;
	else
		return mg_yaml_error(err, op,
		                     "%s: unknown operator '%s' (expected In, NotIn, Exists or "
		                     "DoesNotExist)",
		                     vwhat, ops);
	pol_pathf(vwhat, sizeof(vwhat), "%s.values", what);
	rc = pol_get_seq(vn, vwhat, POL_MAX_VALUES, &nv, err);
	if (rc)
		return rc;
	if ((o == SEL_IN || o == SEL_NOTIN) && nv == 0)
		return mg_yaml_error(err, vn ? vn : n, "%s: %s needs at least one value", vwhat,
		                     ops);
	if ((o == SEL_EXISTS || o == SEL_DNE) && nv > 0)
		return mg_yaml_error(err, vn, "%s: %s takes no values", vwhat, ops);
	if (nv > 0) {
		vals = calloc(nv, sizeof(*vals));
		if (vals == NULL) {
			mg_error_set(err, NULL, 0, 0, "out of memory");
			return -ENOMEM;
		}
		for (i = 0; i < nv; i++) {
			rc = mg_yaml_str(vn->items[i], vwhat, &vals[i], err);
			if (rc)
				goto out;
		}
	}
	rc = add_req_at(sel, k, what, key, o, vals, nv, err);
out:
	free(vals);
	return rc;
}

/*
 * Parse a LabelSelector at @p n (NULL or null: the empty selector) into a
 * new selector, not yet scoped.
 */
static int
parse_selector(const struct mg_yaml_node *n, const char *what, struct selector **out,
               struct mg_error *err)
{
	static const char *const ok[] = {"matchLabels", "matchExpressions", NULL};
	const struct mg_yaml_node *ml, *me;
	char w[PATH_LEN + 32];
	struct selector *sel;
	size_t i, ne;
	int rc;

	*out = NULL;
	sel = calloc(1, sizeof(*sel));
	if (sel == NULL) {
		mg_error_set(err, NULL, 0, 0, "out of memory");
		return -ENOMEM;
	}
	if (mg_yaml_is_null(n))
		goto done;
	rc = mg_yaml_check_map(n, what, ok, err);
	if (rc)
		goto err;
	ml = mg_yaml_get(n, "matchLabels");
	me = mg_yaml_get(n, "matchExpressions");
	pol_pathf(w, sizeof(w), "%s.matchLabels", what);
	if (!mg_yaml_is_null(ml)) {
		rc = mg_yaml_map(ml, w, err);
		if (rc)
			goto err;
		for (i = 0; i < ml->n; i++) {
			const struct mg_yaml_node *k = ml->pairs[i].key, *v = ml->pairs[i].value;
			const char *ks, *vs;

			rc = mg_yaml_str(k, w, &ks, err);
			if (rc)
				goto err;
			pol_pathf(w, sizeof(w), "%s.matchLabels.%s", what, ks);
			rc = mg_yaml_str(v, w, &vs, err);
			if (rc)
				goto err;
			rc = add_req_at(sel, k, w, ks, SEL_IN, &vs, 1, err);
			if (rc)
				goto err;
			pol_pathf(w, sizeof(w), "%s.matchLabels", what);
		}
	}
	pol_pathf(w, sizeof(w), "%s.matchExpressions", what);
	rc = pol_get_seq(me, w, POL_MAX_REQS, &ne, err);
	if (rc)
		goto err;
	for (i = 0; i < ne; i++) {
		pol_pathf(w, sizeof(w), "%s.matchExpressions[%zu]", what, i);
		rc = parse_expression(sel, me->items[i], w, err);
		if (rc)
			goto err;
	}
done:
	*out = sel;
	return 0;
err:
	pol_sel_free(sel);
	return rc;
}

enum sel_scope {
	SCOPE_SUBJECT, /* endpointSelector */
	SCOPE_PEER,    /* from/toEndpoints */
	SCOPE_NONE,    /* entities and CIDRs: reserved and cidr labels, never scoped */
};

/* Scope @p sel, build its canonical form and append it to the set. */
static int
add_selector(struct loader *L, struct selector *sel, enum sel_scope scope,
             const struct policy_obj *p, const struct mg_yaml_node *at, uint32_t *idx)
{
	struct mg_policy_set *s = L->s;
	int rc;

	if (s->nsel >= POL_MAX_SELECTORS) {
		pol_sel_free(sel);
		return mg_yaml_error(L->err, at, "too many selectors in the policy set (limit %u)",
		                     POL_MAX_SELECTORS);
	}
	if (scope == SCOPE_SUBJECT) {
		rc = pol_sel_scope_subject(sel, p);
	} else if (scope == SCOPE_PEER) {
		rc = pol_sel_scope_peer(sel, p);
	} else {
		sel->cl = SELC_NONE;
		sel->cluster = p->cluster;
		rc = 0;
	}
	if (rc == 0)
		rc = pol_sel_finish(sel);
	if (rc == 0)
		rc = mg_grow(&s->sel, &s->capsel, s->nsel, sizeof(*s->sel), 64);
	if (rc) {
		pol_sel_free(sel);
		if (rc == -E2BIG)
			return mg_yaml_error(L->err, at, "selector has too many requirements");
		mg_error_set(L->err, NULL, 0, 0, "out of memory");
		return rc;
	}
	*idx = (uint32_t)s->nsel;
	s->sel[s->nsel++] = sel;
	return 0;
}

/*
 * The subject of a rule: the selector at @p n, its endpointSelector scoped
 * to the policy's namespace and cluster, or with @p node its nodeSelector,
 * not scoped; appended to the set as *@p idx.
 */
int
pol_parse_subject(struct loader *L, const struct policy_obj *p, const struct mg_yaml_node *n,
                  bool node, const char *what, uint32_t *idx)
{
	struct selector *sel;
	int rc;

	rc = parse_selector(n, what, &sel, L->err);
	if (rc)
		return rc;
	return add_selector(L, sel, node ? SCOPE_NONE : SCOPE_SUBJECT, p, n, idx);
}

/* ---- peers: endpoints, entities, CIDRs ---- */

static int
add_entry_peer(struct loader *L, struct entry *e, struct selector *sel, bool scope,
               const struct policy_obj *p, const struct mg_yaml_node *at)
{
	uint32_t *v, idx = 0; /* set by add_selector on success; 0 quiets -O3 */
	int rc;

	if (e->npeers >= POL_MAX_PEERS) {
		pol_sel_free(sel);
		return mg_yaml_error(L->err, at, "more than %u peers in one entry", POL_MAX_PEERS);
	}
	rc = add_selector(L, sel, scope ? SCOPE_PEER : SCOPE_NONE, p, at, &idx);
	if (rc)
		return rc;
	v = realloc(e->peers, (e->npeers + 1) * sizeof(*v));
	if (v == NULL) {
		mg_error_set(L->err, NULL, 0, 0, "out of memory");
		return -ENOMEM;
	}
	e->peers = v;
	e->peers[e->npeers++] = idx;
	return 0;
}

/* A new unscoped selector with one requirement (NULL: none yet). */
static struct selector *
sel_new(const char *source, const char *key, enum sel_op op, const char *val)
{
	struct selector *sel = calloc(1, sizeof(*sel));

	if (sel == NULL)
		return NULL;
	if (key != NULL &&
	    pol_sel_add_req(sel, source, key, op, val ? &val : NULL, val ? 1 : 0) != 0) {
		pol_sel_free(sel);
		return NULL;
	}
	return sel;
}

/* Add unscoped selector @p sel (NULL: its allocation failed) as a peer of @p e. */
static int
add_unscoped_peer(struct loader *L, struct entry *e, struct selector *sel,
                  const struct policy_obj *p, const struct mg_yaml_node *at)
{
	if (sel == NULL) {
		mg_error_set(L->err, NULL, 0, 0, "out of memory");
		return -ENOMEM;
	}
	return add_entry_peer(L, e, sel, false, p, at);
}

static int
add_reserved_peer(struct loader *L, struct entry *e, const char *name, const struct policy_obj *p,
                  const struct mg_yaml_node *at)
{
	return add_unscoped_peer(L, e, sel_new("reserved", name, SEL_EXISTS, NULL), p, at);
}

/* One item of fromEndpoints / toEndpoints: a LabelSelector, scoped as a peer. */
static int
endpoint_item(struct loader *L, struct entry *e, const struct policy_obj *p,
              const struct mg_yaml_node *it, const char *what)
{
	struct selector *sel;
	int rc;

	rc = parse_selector(it, what, &sel, L->err);
	if (rc)
		return rc;
	return add_entry_peer(L, e, sel, true, p, it);
}

/*
 * Entities (pkg/policy/api/entity.go): selectors over reserved labels,
 * never scoped to a namespace or cluster. `cluster` adds the pods of the
 * policy's own cluster; `all` is the empty selector; `none` adds nothing.
 */
static int
entity_item(struct loader *L, struct entry *e, const struct policy_obj *p,
            const struct mg_yaml_node *it, const char *what)
{
	static const char *const simple[] = {
	        "host", "remote-node", "kube-apiserver", "ingress",    "health",
	        "init", "unmanaged",   "world-ipv4",     "world-ipv6", NULL};
	static const char *const cluster[] = {"host",      "remote-node",    "init",    "health",
	                                      "unmanaged", "kube-apiserver", "ingress", NULL};
	const char *name;
	size_t k;
	int rc;

	rc = mg_yaml_str(it, what, &name, L->err);
	if (rc)
		return rc;
	if (in_list(name, simple))
		return add_reserved_peer(L, e, name, p, it);
	if (streq(name, "world")) {
		rc = add_reserved_peer(L, e, "world", p, it);
		if (rc == 0)
			rc = add_reserved_peer(L, e, "world-ipv4", p, it);
		if (rc == 0)
			rc = add_reserved_peer(L, e, "world-ipv6", p, it);
		return rc;
	}
	if (streq(name, "cluster")) {
		for (k = 0; rc == 0 && cluster[k] != NULL; k++)
			rc = add_reserved_peer(L, e, cluster[k], p, it);
		if (rc)
			return rc;
		return add_unscoped_peer(L, e, sel_new("k8s", POL_CLUSTER_KEY, SEL_IN, p->cluster),
		                         p, it);
	}
	if (streq(name, "all"))
		return add_unscoped_peer(L, e, sel_new(NULL, NULL, SEL_IN, NULL), p, it);
	if (!streq(name, "none"))
		return mg_yaml_error(L->err, it,
		                     "%s: unsupported entity '%s' (expected host, "
		                     "remote-node, kube-apiserver, ingress, health, init, "
		                     "unmanaged, world, world-ipv4, world-ipv6, cluster, all "
		                     "or none)",
		                     what, name);
	return 0;
}

static int
add_prefix(struct loader *L, struct entry *e, const struct pol_prefix *pf,
           const struct mg_yaml_node *at)
{
	struct pol_prefix *v;

	if (pf->plen == 0)
		return 0; /* the world identities stand for /0: no CIDR identity */
	if (e->nprefixes >= POL_MAX_PREFIXES)
		return mg_yaml_error(L->err, at, "more than %u CIDR prefixes in one entry",
		                     POL_MAX_PREFIXES);
	v = realloc(e->prefixes, (e->nprefixes + 1) * sizeof(*v));
	if (v == NULL) {
		mg_error_set(L->err, NULL, 0, 0, "out of memory");
		return -ENOMEM;
	}
	e->prefixes = v;
	e->prefixes[e->nprefixes++] = *pf;
	return 0;
}

static int
parse_prefix_at(struct loader *L, const struct mg_yaml_node *n, const char *what,
                struct pol_prefix *pf)
{
	const char *str;
	int rc = mg_yaml_str(n, what, &str, L->err);

	if (rc)
		return rc;
	if (pol_prefix_parse(str, pf) != 0)
		return mg_yaml_error(L->err, n, "%s: '%s' is not an IP address or CIDR prefix",
		                     what, str);
	return 0;
}

/*
 * The selector of one CIDR rule: identities labelled cidr:<prefix> and
 * none of cidr:<except>. A /0 prefix means the family's world: every
 * identity labelled reserved:world but not the other family's world label
 * (identity 2, 9 or 10, and the family's CIDR identities). An except that
 * covers the whole prefix leaves nothing to select (*none).
 */
static struct selector *
cidr_selector(const struct pol_prefix *pf, const struct pol_prefix *exc, size_t nexc, bool *none)
{
	char key[INET6_ADDRSTRLEN * 2 + 8];
	struct selector *sel;
	size_t i;
	int rc;

	*none = false;
	for (i = 0; i < nexc; i++)
		if (exc[i].plen <= pf->plen) {
			*none = true;
			return NULL;
		}
	if (pf->plen == 0) {
		sel = sel_new("reserved", "world", SEL_EXISTS, NULL);
		rc = sel ? pol_sel_add_req(sel, "reserved",
		                           pf->family == AF_INET ? "world-ipv6" : "world-ipv4",
		                           SEL_DNE, NULL, 0)
		         : -ENOMEM;
	} else {
		pol_prefix_label(pf, key, sizeof(key));
		sel = sel_new("cidr", key, SEL_EXISTS, NULL);
		rc = sel ? 0 : -ENOMEM;
	}
	for (i = 0; rc == 0 && i < nexc; i++) {
		pol_prefix_label(&exc[i], key, sizeof(key));
		rc = pol_sel_add_req(sel, "cidr", key, SEL_DNE, NULL, 0);
	}
	if (rc) {
		pol_sel_free(sel);
		return NULL;
	}
	return sel;
}

static int
add_cidr_peer(struct loader *L, struct entry *e, const struct policy_obj *p,
              const struct pol_prefix *pf, const struct pol_prefix *exc, size_t nexc,
              const struct mg_yaml_node *at)
{
	struct selector *sel;
	bool none;
	size_t i;
	int rc;

	sel = cidr_selector(pf, exc, nexc, &none);
	if (none)
		return 0;
	rc = add_unscoped_peer(L, e, sel, p, at);
	if (rc == 0)
		rc = add_prefix(L, e, pf, at);
	for (i = 0; rc == 0 && i < nexc; i++)
		rc = add_prefix(L, e, &exc[i], at);
	return rc;
}

/* One item of fromCIDR / toCIDR: an address or a prefix. */
static int
cidr_item(struct loader *L, struct entry *e, const struct policy_obj *p,
          const struct mg_yaml_node *it, const char *what)
{
	struct pol_prefix pf;
	int rc;

	rc = parse_prefix_at(L, it, what, &pf);
	if (rc)
		return rc;
	return add_cidr_peer(L, e, p, &pf, NULL, 0, it);
}

/* A CIDRRule's cidr or except: <address>/<length> only (unlike fromCIDR). */
static int
parse_cidr_rule_prefix(struct loader *L, const struct mg_yaml_node *n, const char *what,
                       struct pol_prefix *pf)
{
	int rc = parse_prefix_at(L, n, what, pf);

	if (rc == 0 && strchr(n->str, '/') == NULL)
		rc = mg_yaml_error(L->err, n, "%s: '%s' is not a CIDR prefix", what, n->str);
	return rc;
}

/* One item of fromCIDRSet / toCIDRSet: a CIDRRule (cidr and its excepts). */
static int
cidr_set_item(struct loader *L, struct entry *e, const struct policy_obj *p,
              const struct mg_yaml_node *it, const char *what)
{
	static const char *const ok[] = {"cidr", "except", NULL};
	/* CIDR groups: Cilium resolves them from CiliumCIDRGroup objects */
	static const char *const unsup[] = {"cidrGroupRef", "cidrGroupSelector", NULL};
	const struct mg_yaml_node *cn, *xn;
	struct pol_prefix pf, *exc;
	char w[PATH_LEN + 96];
	size_t j, nx;
	int rc;

	rc = mg_yaml_check_keys(it, what, ok, unsup, L->err);
	if (rc)
		return rc;
	cn = mg_yaml_get(it, "cidr");
	if (mg_yaml_is_null(cn))
		return mg_yaml_error(L->err, cn ? cn : it, "%s.cidr is required", what);
	pol_pathf(w, sizeof(w), "%s.cidr", what);
	rc = parse_cidr_rule_prefix(L, cn, w, &pf);
	if (rc)
		return rc;
	xn = mg_yaml_get(it, "except");
	pol_pathf(w, sizeof(w), "%s.except", what);
	rc = pol_get_seq(xn, w, POL_MAX_EXCEPTS, &nx, L->err);
	if (rc)
		return rc;
	exc = calloc(nx ? nx : 1, sizeof(*exc));
	if (exc == NULL) {
		mg_error_set(L->err, NULL, 0, 0, "out of memory");
		return -ENOMEM;
	}
	for (j = 0; j < nx && rc == 0; j++) {
		pol_pathf(w, sizeof(w), "%s.except[%zu]", what, j);
		rc = parse_cidr_rule_prefix(L, xn->items[j], w, &exc[j]);
		if (rc == 0 && !pol_prefix_contains_addr(&pf, &exc[j]))
			rc = mg_yaml_error(L->err, xn->items[j],
			                   "%s: %s is not within the allowed prefix %s", w,
			                   xn->items[j]->str, cn->str);
	}
	if (rc == 0)
		rc = add_cidr_peer(L, e, p, &pf, exc, nx, it);
	free(exc);
	return rc;
}

/* ---- the L3 fields: lists of peers, one item function per shape ---- */

/* One function per item shape, indexed by enum pol_l3. */
static int (*const peer_items[POL_L3_N])(struct loader *L, struct entry *e,
                                         const struct policy_obj *p, const struct mg_yaml_node *it,
                                         const char *what) = {
        [POL_L3_ENDPOINTS] = endpoint_item,
        [POL_L3_ENTITIES] = entity_item,
        [POL_L3_CIDR] = cidr_item,
        [POL_L3_CIDR_SET] = cidr_set_item,
};

int
pol_parse_peers(struct loader *L, struct entry *e, const struct policy_obj *p, enum pol_l3 kind,
                const struct mg_yaml_node *n, const char *what)
{
	char w[PATH_LEN + 48];
	size_t i, count;
	int rc;

	rc = pol_get_seq(n, what, POL_MAX_PEERS, &count, L->err);
	for (i = 0; rc == 0 && i < count; i++) {
		pol_pathf(w, sizeof(w), "%s[%zu]", what, i);
		rc = peer_items[kind](L, e, p, n->items[i], w);
	}
	return rc;
}
