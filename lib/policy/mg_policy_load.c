/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Policy loader: CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy YAML
 * (single documents, multi-document streams, `kind: List`) into the rule
 * AST of policy_priv.h. Every error names the field and its
 * file:line:column. Fields Cilium knows but this cut does not implement
 * are refused ("not supported yet") rather than skipped, so that a policy
 * is never enforced as something wider or narrower than written; fields
 * Cilium does not know are "unknown field" errors. A load is a
 * transaction: on error the set is truncated back to where it was.
 */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mg_yaml.h"
#include "policy_priv.h"

#define PATH_LEN 192

struct loader {
	struct mg_policy_set *s;
	const char *cluster;
	struct mg_error *err;
	int loaded; /* policies added by this load */
};

/* ---- small helpers ---- */

/* Field paths for messages; truncating a very long one is harmless. */
static void MG_PRINTF(3, 4) pathf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

static bool
streq(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

static bool
in_list(const char *k, const char *const *list)
{
	for (; list != NULL && *list != NULL; list++)
		if (streq(k, *list))
			return true;
	return false;
}

/*
 * @p map must be a mapping whose keys are in @p ok; keys in @p unsup are
 * Cilium fields this cut does not implement. Errors sit on the key.
 */
static int
check_keys(const struct mg_yaml_node *map, const char *what, const char *const *ok,
           const char *const *unsup, struct mg_error *err)
{
	size_t i, j;
	int rc;

	rc = mg_yaml_map(map, what, err);
	if (rc)
		return rc;
	for (i = 0; i < map->n; i++) {
		const struct mg_yaml_node *k = map->pairs[i].key;

		if (k->type != MG_YAML_SCALAR)
			return mg_yaml_error(err, k, "%s: keys must be scalars", what);
		if (in_list(k->str, unsup))
			return mg_yaml_error(err, k, "%s.%s: not supported yet", what, k->str);
		if (!in_list(k->str, ok))
			return mg_yaml_error(err, k, "%s.%s: unknown field", what, k->str);
		for (j = 0; j < i; j++)
			if (streq(map->pairs[j].key->str, k->str))
				return mg_yaml_error(err, k,
				                     "%s: duplicate key '%s' (first at line %u)",
				                     what, k->str, map->pairs[j].key->line);
	}
	return 0;
}

/* A sequence, or absent / null (then *n == 0). */
static int
get_seq(const struct mg_yaml_node *n, const char *what, size_t max, size_t *count,
        struct mg_error *err)
{
	int rc = mg_yaml_seq(n, what, true, err);

	if (rc)
		return rc;
	*count = (n != NULL && n->type == MG_YAML_SEQ) ? n->n : 0;
	if (*count > max)
		return mg_yaml_error(err, n, "%s: more than %zu items", what, max);
	return 0;
}

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

	rc = check_keys(n, what, ok, NULL, err);
	if (rc)
		return rc;
	if (k == NULL)
		return mg_yaml_error(err, n, "%s: key is required", what);
	if (op == NULL)
		return mg_yaml_error(err, n, "%s: operator is required", what);
	pathf(vwhat, sizeof(vwhat), "%s.key", what);
	rc = mg_yaml_str(k, vwhat, &key, err);
	if (rc)
		return rc;
	pathf(vwhat, sizeof(vwhat), "%s.operator", what);
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
	pathf(vwhat, sizeof(vwhat), "%s.values", what);
	rc = get_seq(vn, vwhat, POL_MAX_VALUES, &nv, err);
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
	rc = check_keys(n, what, ok, NULL, err);
	if (rc)
		goto err;
	ml = mg_yaml_get(n, "matchLabels");
	me = mg_yaml_get(n, "matchExpressions");
	pathf(w, sizeof(w), "%s.matchLabels", what);
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
			pathf(w, sizeof(w), "%s.matchLabels.%s", what, ks);
			rc = mg_yaml_str(v, w, &vs, err);
			if (rc)
				goto err;
			rc = add_req_at(sel, k, w, ks, SEL_IN, &vs, 1, err);
			if (rc)
				goto err;
			pathf(w, sizeof(w), "%s.matchLabels", what);
		}
	}
	pathf(w, sizeof(w), "%s.matchExpressions", what);
	rc = get_seq(me, w, POL_MAX_REQS, &ne, err);
	if (rc)
		goto err;
	for (i = 0; i < ne; i++) {
		pathf(w, sizeof(w), "%s.matchExpressions[%zu]", what, i);
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

/* Scope @p sel, build its canonical form and append it to the set. */
static int
add_selector(struct loader *L, struct selector *sel, bool subject, const struct policy_obj *p,
             const struct mg_yaml_node *at, uint32_t *idx)
{
	struct mg_policy_set *s = L->s;
	int rc;

	if (s->nsel >= POL_MAX_SELECTORS) {
		pol_sel_free(sel);
		return mg_yaml_error(L->err, at, "too many selectors in the policy set (limit %u)",
		                     POL_MAX_SELECTORS);
	}
	rc = subject ? pol_sel_scope_subject(sel, p) : pol_sel_scope_peer(sel, p);
	if (rc == 0)
		rc = pol_sel_finish(sel);
	if (rc == 0 && s->nsel == s->capsel) {
		size_t cap = s->capsel ? s->capsel * 2 : 64;
		void *v = realloc(s->sel, cap * sizeof(*s->sel));

		if (v == NULL) {
			rc = -ENOMEM;
		} else {
			s->sel = v;
			s->capsel = cap;
		}
	}
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

/* ---- ports ---- */

static int
parse_port_number(const struct mg_yaml_node *n, const char *what, unsigned *out,
                  struct mg_error *err)
{
	const char *str;
	size_t i, len;
	bool digits = true, named = true, letter = false;
	int rc;

	rc = mg_yaml_str(n, what, &str, err);
	if (rc)
		return rc;
	len = strlen(str);
	if (len == 0)
		return mg_yaml_error(err, n, "%s: expected a port number", what);
	for (i = 0; i < len; i++) {
		char c = str[i];

		if (c < '0' || c > '9')
			digits = false;
		if (c >= 'a' && c <= 'z')
			letter = true;
		else if (!((c >= '0' && c <= '9') || c == '-'))
			named = false;
	}
	if (digits) {
		unsigned long v = 0;

		for (i = 0; i < len && v <= 65535; i++)
			v = v * 10 + (unsigned long)(str[i] - '0');
		if (v > 65535)
			return mg_yaml_error(err, n, "%s: %s is out of range [0, 65535]", what,
			                     str);
		*out = (unsigned)v;
		return 0;
	}
	if (named && letter)
		return mg_yaml_error(err, n, "%s: named port '%s': not supported yet", what, str);
	return mg_yaml_error(err, n, "%s: '%s' is not a port number", what, str);
}

static int
parse_protocol(const struct mg_yaml_node *n, const char *what, uint8_t *mask, struct mg_error *err)
{
	const char *str;
	int rc;

	*mask = PMASK_ANY;
	if (mg_yaml_is_null(n))
		return 0;
	rc = mg_yaml_str(n, what, &str, err);
	if (rc)
		return rc;
	if (str[0] == '\0' || streq(str, "ANY"))
		*mask = PMASK_ANY;
	else if (streq(str, "TCP"))
		*mask = 1u << PIDX_TCP;
	else if (streq(str, "UDP"))
		*mask = 1u << PIDX_UDP;
	else if (streq(str, "SCTP"))
		*mask = 1u << PIDX_SCTP;
	else if (streq(str, "ICMP") || streq(str, "ICMPv6") || streq(str, "VRRP") ||
	         streq(str, "IGMP"))
		return mg_yaml_error(err, n, "%s: protocol %s: not supported yet", what, str);
	else
		return mg_yaml_error(err, n,
		                     "%s: unknown protocol '%s' (expected TCP, UDP, SCTP or ANY)",
		                     what, str);
	return 0;
}

static int
add_range(struct entry *e, uint8_t protos, unsigned lo, unsigned hi, const struct mg_yaml_node *at,
          const char *what, struct mg_error *err)
{
	struct port_range *v;

	if (e->nports >= POL_MAX_PORTS)
		return mg_yaml_error(err, at, "%s: more than %u ports in one entry", what,
		                     POL_MAX_PORTS);
	v = realloc(e->ports, (e->nports + 1) * sizeof(*v));
	if (v == NULL) {
		mg_error_set(err, NULL, 0, 0, "out of memory");
		return -ENOMEM;
	}
	e->ports = v;
	e->ports[e->nports].protos = protos;
	e->ports[e->nports].lo = (uint16_t)lo;
	e->ports[e->nports].hi = (uint16_t)hi;
	e->nports++;
	return 0;
}

static int
parse_port(struct entry *e, const struct mg_yaml_node *n, const char *what, struct mg_error *err)
{
	static const char *const ok[] = {"port", "endPort", "protocol", NULL};
	const struct mg_yaml_node *pn = mg_yaml_get(n, "port"), *en = mg_yaml_get(n, "endPort");
	char w[PATH_LEN + 16];
	unsigned port = 0, end = 0;
	uint8_t mask;
	uint64_t v;
	int rc;

	rc = check_keys(n, what, ok, NULL, err);
	if (rc)
		return rc;
	pathf(w, sizeof(w), "%s.port", what);
	if (!mg_yaml_is_null(pn)) {
		rc = parse_port_number(pn, w, &port, err);
		if (rc)
			return rc;
	}
	pathf(w, sizeof(w), "%s.protocol", what);
	rc = parse_protocol(mg_yaml_get(n, "protocol"), w, &mask, err);
	if (rc)
		return rc;
	pathf(w, sizeof(w), "%s.endPort", what);
	if (!mg_yaml_is_null(en)) {
		rc = mg_yaml_u64(en, w, 0, 65535, &v, err);
		if (rc)
			return rc;
		end = (unsigned)v;
		if (end != 0 && port == 0)
			return mg_yaml_error(err, en, "%s: needs a non-zero port", w);
		if (end != 0 && end < port)
			return mg_yaml_error(err, en, "%s: %u is below port %u", w, end, port);
	}
	if (port == 0)
		return add_range(e, mask, 0, 65535, n, what, err);
	return add_range(e, mask, port, end > port ? end : port, n, what, err);
}

static int
parse_to_ports(struct entry *e, const struct mg_yaml_node *n, const char *what,
               struct mg_error *err)
{
	static const char *const ok[] = {"ports", NULL};
	static const char *const unsup[] = {"rules",       "originatingTLS", "terminatingTLS",
	                                    "serverNames", "listener",       NULL};
	char w[PATH_LEN + 32];
	size_t i, j, np, npp;
	int rc;

	rc = get_seq(n, what, POL_MAX_PORTS, &np, err);
	if (rc)
		return rc;
	for (i = 0; i < np; i++) {
		const struct mg_yaml_node *pr = n->items[i], *ports;

		pathf(w, sizeof(w), "%s[%zu]", what, i);
		if (mg_yaml_is_null(pr)) {
			/* no ports: every port of TCP, UDP and SCTP */
			rc = add_range(e, PMASK_ANY, 0, 65535, pr, w, err);
			if (rc)
				return rc;
			continue;
		}
		rc = check_keys(pr, w, ok, unsup, err);
		if (rc)
			return rc;
		ports = mg_yaml_get(pr, "ports");
		pathf(w, sizeof(w), "%s[%zu].ports", what, i);
		rc = get_seq(ports, w, POL_MAX_PORTS, &npp, err);
		if (rc)
			return rc;
		if (npp == 0) {
			rc = add_range(e, PMASK_ANY, 0, 65535, pr, w, err);
			if (rc)
				return rc;
		}
		for (j = 0; j < npp; j++) {
			pathf(w, sizeof(w), "%s[%zu].ports[%zu]", what, i, j);
			rc = parse_port(e, ports->items[j], w, err);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* ---- rules ---- */

static const char *const entry_ok[SEC_N][3] = {
        [SEC_INGRESS] = {"fromEndpoints", "toPorts", NULL},
        [SEC_EGRESS] = {"toEndpoints", "toPorts", NULL},
        [SEC_INGRESS_DENY] = {"fromEndpoints", "toPorts", NULL},
        [SEC_EGRESS_DENY] = {"toEndpoints", "toPorts", NULL},
};

static const char *const entry_unsup[SEC_N][16] = {
        [SEC_INGRESS] = {"fromEntities", "fromCIDR", "fromCIDRSet", "fromRequires", "fromNodes",
                         "fromGroups", "icmps", "authentication", NULL},
        [SEC_EGRESS] = {"toEntities", "toCIDR", "toCIDRSet", "toRequires", "toNodes", "toGroups",
                        "toServices", "toFQDNs", "icmps", "authentication", NULL},
        [SEC_INGRESS_DENY] = {"fromEntities", "fromCIDR", "fromCIDRSet", "fromRequires",
                              "fromNodes", "fromGroups", "icmps", NULL},
        [SEC_EGRESS_DENY] = {"toEntities", "toCIDR", "toCIDRSet", "toRequires", "toNodes",
                             "toGroups", "toServices", "icmps", NULL},
};

static void
entry_clear(struct entry *e)
{
	free(e->peers);
	free(e->ports);
}

static int
parse_entry(struct loader *L, const struct policy_obj *p, unsigned sec, struct entry *e,
            const struct mg_yaml_node *n, const char *what)
{
	const char *l3 = sec_dir(sec) == MG_DIR_INGRESS ? "fromEndpoints" : "toEndpoints";
	const struct mg_yaml_node *peers, *tp;
	char w[PATH_LEN + 32];
	size_t i, np;
	int rc;

	memset(e, 0, sizeof(*e));
	e->line = n->line;
	e->col = n->col;
	if (mg_yaml_is_null(n))
		return 0; /* like {}: selects nothing */
	rc = check_keys(n, what, entry_ok[sec], entry_unsup[sec], L->err);
	if (rc)
		return rc;
	peers = mg_yaml_get(n, l3);
	tp = mg_yaml_get(n, "toPorts");
	pathf(w, sizeof(w), "%s.%s", what, l3);
	rc = get_seq(peers, w, POL_MAX_PEERS, &np, L->err);
	if (rc)
		return rc;
	/* null is absent; an explicit [] is an L3 part that selects nobody */
	e->has_l3 = peers != NULL && peers->type == MG_YAML_SEQ;
	if (np > 0) {
		e->peers = calloc(np, sizeof(*e->peers));
		if (e->peers == NULL) {
			mg_error_set(L->err, NULL, 0, 0, "out of memory");
			return -ENOMEM;
		}
	}
	for (i = 0; i < np; i++) {
		struct selector *sel;

		pathf(w, sizeof(w), "%s.%s[%zu]", what, l3, i);
		rc = parse_selector(peers->items[i], w, &sel, L->err);
		if (rc)
			return rc;
		rc = add_selector(L, sel, false, p, peers->items[i], &e->peers[i]);
		if (rc)
			return rc;
		e->npeers++;
	}
	pathf(w, sizeof(w), "%s.toPorts", what);
	return parse_to_ports(e, tp, w, L->err);
}

static void
rule_clear(struct rule *r)
{
	unsigned sec;
	size_t i;

	for (sec = 0; sec < SEC_N; sec++) {
		for (i = 0; i < r->nent[sec]; i++)
			entry_clear(&r->ent[sec][i]);
		free(r->ent[sec]);
	}
	memset(r, 0, sizeof(*r));
}

static int
parse_default_deny(struct rule *r, const struct mg_yaml_node *n, const char *what,
                   struct mg_error *err)
{
	static const char *const ok[] = {"ingress", "egress", NULL};
	static const char *const dirs[2] = {"ingress", "egress"};
	char w[PATH_LEN + 32];
	unsigned d;
	int rc;

	if (mg_yaml_is_null(n))
		return 0;
	rc = check_keys(n, what, ok, NULL, err);
	if (rc)
		return rc;
	for (d = 0; d < 2; d++) {
		const struct mg_yaml_node *v = mg_yaml_get(n, dirs[d]);
		bool b;

		if (mg_yaml_is_null(v))
			continue;
		pathf(w, sizeof(w), "%s.%s", what, dirs[d]);
		rc = mg_yaml_bool(v, w, &b, err);
		if (rc)
			return rc;
		r->no_default_deny[d] = !b;
	}
	return 0;
}

static int
parse_rule(struct loader *L, uint32_t pidx, unsigned index, const struct mg_yaml_node *n,
           const char *what)
{
	static const char *const ok[] = {"endpointSelector", "ingress",           "egress",
	                                 "ingressDeny",      "egressDeny",        "description",
	                                 "labels",           "enableDefaultDeny", NULL};
	static const char *const unsup[] = {"nodeSelector", "log", NULL};
	struct mg_policy_set *s = L->s;
	const struct policy_obj *p = &s->pol[pidx];
	const struct mg_yaml_node *es;
	char w[PATH_LEN + 32];
	struct selector *sel;
	const char *str;
	struct rule *r;
	unsigned sec;
	size_t i, ne;
	int rc;

	if (s->nrules >= POL_MAX_RULES)
		return mg_yaml_error(L->err, n, "too many rules in the policy set (limit %u)",
		                     POL_MAX_RULES);
	rc = check_keys(n, what, ok, unsup, L->err);
	if (rc)
		return rc;
	if (s->nrules == s->caprules) {
		size_t cap = s->caprules ? s->caprules * 2 : 16;
		void *v = realloc(s->rules, cap * sizeof(*s->rules));

		if (v == NULL) {
			mg_error_set(L->err, NULL, 0, 0, "out of memory");
			return -ENOMEM;
		}
		s->rules = v;
		s->caprules = cap;
	}
	/* the rule is counted at once so that a rollback frees what it holds */
	r = &s->rules[s->nrules++];
	memset(r, 0, sizeof(*r));
	r->pol = pidx;
	r->index = index;
	r->line = n->line;

	es = mg_yaml_get(n, "endpointSelector");
	if (es == NULL)
		return mg_yaml_error(L->err, n, "%s: endpointSelector is required", what);
	pathf(w, sizeof(w), "%s.endpointSelector", what);
	rc = parse_selector(es, w, &sel, L->err);
	if (rc)
		return rc;
	rc = add_selector(L, sel, true, p, es, &r->subject);
	if (rc)
		return rc;
	pathf(w, sizeof(w), "%s.description", what);
	if (mg_yaml_get(n, "description") != NULL &&
	    !mg_yaml_is_null(mg_yaml_get(n, "description"))) {
		rc = mg_yaml_str(mg_yaml_get(n, "description"), w, &str, L->err);
		if (rc)
			return rc;
	}
	pathf(w, sizeof(w), "%s.labels", what);
	rc = get_seq(mg_yaml_get(n, "labels"), w, SIZE_MAX, &ne, L->err);
	if (rc)
		return rc;
	pathf(w, sizeof(w), "%s.enableDefaultDeny", what);
	rc = parse_default_deny(r, mg_yaml_get(n, "enableDefaultDeny"), w, L->err);
	if (rc)
		return rc;

	for (sec = 0; sec < SEC_N; sec++) {
		const struct mg_yaml_node *list = mg_yaml_get(n, pol_section_names[sec]);

		pathf(w, sizeof(w), "%s.%s", what, pol_section_names[sec]);
		rc = get_seq(list, w, POL_MAX_ENTRIES, &ne, L->err);
		if (rc)
			return rc;
		if (ne == 0)
			continue;
		r->ent[sec] = calloc(ne, sizeof(*r->ent[sec]));
		if (r->ent[sec] == NULL) {
			mg_error_set(L->err, NULL, 0, 0, "out of memory");
			return -ENOMEM;
		}
		for (i = 0; i < ne; i++) {
			pathf(w, sizeof(w), "%s.%s[%zu]", what, pol_section_names[sec], i);
			/* counted first: parse_entry leaves partial state to free */
			r->nent[sec]++;
			rc = parse_entry(L, p, sec, &r->ent[sec][i], list->items[i], w);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* ---- documents ---- */

static void
policy_clear(struct policy_obj *p)
{
	free(p->name);
	free(p->ns);
	free(p->cluster);
	free(p->file);
	memset(p, 0, sizeof(*p));
}

static int
parse_metadata(const struct mg_yaml_node *md, const char **name, const char **ns,
               struct mg_error *err)
{
	static const char *const ok[] = {"name",
	                                 "namespace",
	                                 "labels",
	                                 "annotations",
	                                 "uid",
	                                 "resourceVersion",
	                                 "creationTimestamp",
	                                 "deletionTimestamp",
	                                 "deletionGracePeriodSeconds",
	                                 "generation",
	                                 "generateName",
	                                 "managedFields",
	                                 "finalizers",
	                                 "ownerReferences",
	                                 "selfLink",
	                                 NULL};
	const struct mg_yaml_node *n;
	int rc;

	rc = check_keys(md, "metadata", ok, NULL, err);
	if (rc)
		return rc;
	n = mg_yaml_get(md, "name");
	if (n == NULL)
		return mg_yaml_error(err, md, "metadata.name is required");
	rc = mg_yaml_str(n, "metadata.name", name, err);
	if (rc)
		return rc;
	if ((*name)[0] == '\0' || strlen(*name) >= sizeof(((struct mg_policy_decision *)0)->name))
		return mg_yaml_error(err, n, "metadata.name: must have 1 to 127 characters");
	n = mg_yaml_get(md, "namespace");
	*ns = NULL;
	if (!mg_yaml_is_null(n)) {
		rc = mg_yaml_str(n, "metadata.namespace", ns, err);
		if (rc)
			return rc;
		if ((*ns)[0] == '\0' || strlen(*ns) >= sizeof(((struct mg_policy_decision *)0)->ns))
			return mg_yaml_error(err, n,
			                     "metadata.namespace: must have 1 to 63 characters");
	}
	return 0;
}

static int
parse_policy(struct loader *L, const struct mg_yaml_node *doc, bool ccnp)
{
	static const char *const ok[] = {"apiVersion", "kind",   "metadata", "spec",
	                                 "specs",      "status", NULL};
	struct mg_policy_set *s = L->s;
	const struct mg_yaml_node *av, *md, *spec, *specs;
	const char *str, *name, *ns;
	struct policy_obj *p;
	char w[32];
	size_t i, nspecs;
	unsigned index = 0;
	uint32_t pidx;
	int rc;

	rc = check_keys(doc, ccnp ? "CiliumClusterwideNetworkPolicy" : "CiliumNetworkPolicy", ok,
	                NULL, L->err);
	if (rc)
		return rc;
	av = mg_yaml_get(doc, "apiVersion");
	if (av == NULL)
		return mg_yaml_error(L->err, doc, "apiVersion is required");
	rc = mg_yaml_str(av, "apiVersion", &str, L->err);
	if (rc)
		return rc;
	if (!streq(str, "cilium.io/v2"))
		return mg_yaml_error(L->err, av, "apiVersion: expected cilium.io/v2, got '%s'",
		                     str);
	md = mg_yaml_get(doc, "metadata");
	if (md == NULL)
		return mg_yaml_error(L->err, doc, "metadata is required");
	rc = parse_metadata(md, &name, &ns, L->err);
	if (rc)
		return rc;
	spec = mg_yaml_get(doc, "spec");
	specs = mg_yaml_get(doc, "specs");
	rc = get_seq(specs, "specs", POL_MAX_RULES, &nspecs, L->err);
	if (rc)
		return rc;
	if (mg_yaml_is_null(spec) && nspecs == 0)
		return mg_yaml_error(L->err, doc, "policy '%s' has neither spec nor specs", name);
	if (s->npol >= POL_MAX_POLICIES)
		return mg_yaml_error(L->err, doc, "too many policies (limit %u)", POL_MAX_POLICIES);
	if (s->npol == s->cappol) {
		size_t cap = s->cappol ? s->cappol * 2 : 16;
		void *v = realloc(s->pol, cap * sizeof(*s->pol));

		if (v == NULL)
			goto oom;
		s->pol = v;
		s->cappol = cap;
	}
	pidx = (uint32_t)s->npol;
	p = &s->pol[s->npol++];
	memset(p, 0, sizeof(*p));
	p->ccnp = ccnp;
	p->line = doc->line;
	if ((p->name = strdup(name)) == NULL || (p->cluster = strdup(L->cluster)) == NULL ||
	    (p->file = strdup(doc->file ? doc->file : "")) == NULL)
		goto oom;
	/* a CCNP has no namespace; a namespace written on one is ignored */
	if (!ccnp && (p->ns = strdup(ns ? ns : "default")) == NULL)
		goto oom;
	if (!mg_yaml_is_null(spec)) {
		rc = parse_rule(L, pidx, index++, spec, "spec");
		if (rc)
			return rc;
	}
	for (i = 0; i < nspecs; i++) {
		pathf(w, sizeof(w), "specs[%zu]", i);
		rc = parse_rule(L, pidx, index++, specs->items[i], w);
		if (rc)
			return rc;
	}
	L->loaded++;
	return 0;
oom:
	mg_error_set(L->err, NULL, 0, 0, "out of memory");
	return -ENOMEM;
}

static int
parse_doc(struct loader *L, const struct mg_yaml_node *doc, bool in_list)
{
	static const char *const list_ok[] = {"apiVersion", "kind", "items", "metadata", NULL};
	const struct mg_yaml_node *k, *items;
	const char *kind;
	size_t i, n;
	int rc;

	if (mg_yaml_is_null(doc))
		return 0; /* an empty document (a stray "---") */
	rc = mg_yaml_map(doc, in_list ? "items[]" : "document", L->err);
	if (rc)
		return rc;
	k = mg_yaml_get(doc, "kind");
	if (k == NULL)
		return mg_yaml_error(L->err, doc, "kind is required");
	rc = mg_yaml_str(k, "kind", &kind, L->err);
	if (rc)
		return rc;
	if (streq(kind, "CiliumNetworkPolicy"))
		return parse_policy(L, doc, false);
	if (streq(kind, "CiliumClusterwideNetworkPolicy"))
		return parse_policy(L, doc, true);
	if (!streq(kind, "List"))
		return mg_yaml_error(L->err, k,
		                     "kind: '%s' is not a policy (expected CiliumNetworkPolicy, "
		                     "CiliumClusterwideNetworkPolicy or List)",
		                     kind);
	if (in_list)
		return mg_yaml_error(L->err, k, "kind: a List inside a List");
	rc = check_keys(doc, "List", list_ok, NULL, L->err);
	if (rc)
		return rc;
	items = mg_yaml_get(doc, "items");
	rc = get_seq(items, "items", POL_MAX_POLICIES, &n, L->err);
	if (rc)
		return rc;
	for (i = 0; i < n; i++) {
		rc = parse_doc(L, items->items[i], true);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- the set ---- */

struct mg_policy_set *
mg_policy_set_create(void)
{
	struct mg_policy_set *s = calloc(1, sizeof(*s));

	if (s == NULL)
		errno = ENOMEM;
	return s;
}

/* Free everything past the given lengths (rollback of a failed load, or free). */
static void
truncate_set(struct mg_policy_set *s, size_t npol, size_t nrules, size_t nsel)
{
	while (s->nrules > nrules)
		rule_clear(&s->rules[--s->nrules]);
	while (s->npol > npol)
		policy_clear(&s->pol[--s->npol]);
	while (s->nsel > nsel)
		pol_sel_free(s->sel[--s->nsel]);
}

void
mg_policy_set_free(struct mg_policy_set *s)
{
	if (s == NULL)
		return;
	truncate_set(s, 0, 0, 0);
	free(s->rules);
	free(s->pol);
	free(s->sel);
	free(s);
}

size_t
mg_policy_set_count(const struct mg_policy_set *s)
{
	return s ? s->npol : 0;
}

size_t
mg_policy_set_rules(const struct mg_policy_set *s)
{
	return s ? s->nrules : 0;
}

static int
load_yaml(struct loader *L, struct mg_yaml_file *f)
{
	size_t i;
	int rc;

	for (i = 0; i < f->ndocs; i++) {
		rc = parse_doc(L, f->docs[i], false);
		if (rc)
			return rc;
	}
	return 0;
}

static int
check_args(struct mg_policy_set *s, const char *cluster, struct mg_error *err)
{
	if (s == NULL || cluster == NULL || cluster[0] == '\0' || strlen(cluster) >= 64) {
		mg_error_set(err, NULL, 0, 0,
		             "policy: a set and a cluster name (1-63 bytes) are "
		             "required");
		return mg_errno_set(EINVAL);
	}
	return 0;
}

static int
finish(struct loader *L, size_t npol, size_t nrules, size_t nsel, int rc)
{
	if (rc) {
		truncate_set(L->s, npol, nrules, nsel);
		return mg_errno_set(-rc);
	}
	return L->loaded;
}

int
mg_policy_set_load_buf(struct mg_policy_set *s, const char *cluster, const char *name,
                       const void *buf, size_t len, struct mg_error *err)
{
	struct loader L = {.s = s, .cluster = cluster, .err = err};
	struct mg_yaml_file *f;
	size_t npol, nrules, nsel;
	int rc;

	rc = check_args(s, cluster, err);
	if (rc)
		return rc;
	npol = s->npol;
	nrules = s->nrules;
	nsel = s->nsel;
	f = mg_yaml_load_buf(name ? name : "<buffer>", buf, len, err);
	if (f == NULL)
		return mg_errno_set(errno ? errno : EINVAL);
	rc = load_yaml(&L, f);
	mg_yaml_free(f);
	return finish(&L, npol, nrules, nsel, rc);
}

static bool
wanted_name(const char *n)
{
	static const char *const ext[] = {".yaml", ".yml", ".json"};
	size_t len = strlen(n), i;

	if (n[0] == '.')
		return false;
	for (i = 0; i < MG_ARRAY_SIZE(ext); i++) {
		size_t el = strlen(ext[i]);

		if (len > el && strcmp(n + len - el, ext[i]) == 0)
			return true;
	}
	return false;
}

static int
load_one_file(struct loader *L, const char *path)
{
	struct mg_yaml_file *f = mg_yaml_load_file(path, L->err);
	int rc;

	if (f == NULL)
		return -(errno ? errno : EINVAL);
	rc = load_yaml(L, f);
	mg_yaml_free(f);
	return rc;
}

int
mg_policy_set_load_path(struct mg_policy_set *s, const char *cluster, const char *path,
                        struct mg_error *err)
{
	struct loader L = {.s = s, .cluster = cluster, .err = err};
	struct dirent **names = NULL;
	size_t npol, nrules, nsel;
	struct stat st;
	int rc, n = 0, i;

	rc = check_args(s, cluster, err);
	if (rc)
		return rc;
	if (path == NULL || stat(path, &st) != 0) {
		rc = errno ? errno : EINVAL;
		mg_error_set(err, NULL, 0, 0, "%s: %s", path ? path : "(null)", strerror(rc));
		return mg_errno_set(rc);
	}
	npol = s->npol;
	nrules = s->nrules;
	nsel = s->nsel;
	if (!S_ISDIR(st.st_mode))
		return finish(&L, npol, nrules, nsel, load_one_file(&L, path));
	n = scandir(path, &names, NULL, alphasort);
	if (n < 0) {
		rc = errno;
		mg_error_set(err, NULL, 0, 0, "%s: %s", path, strerror(rc));
		return mg_errno_set(rc);
	}
	rc = 0;
	for (i = 0; i < n; i++) {
		char *full = NULL;

		if (rc == 0 && wanted_name(names[i]->d_name)) {
			size_t plen = strlen(path);
			/* "policies/" + "a.yaml", not "policies//a.yaml", in messages */
			const char *sep = plen > 0 && path[plen - 1] == '/' ? "" : "/";

			if (asprintf(&full, "%s%s%s", path, sep, names[i]->d_name) < 0) {
				mg_error_set(err, NULL, 0, 0, "out of memory");
				rc = -ENOMEM;
			} else if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
				rc = load_one_file(&L, full);
			}
			free(full);
		}
		free(names[i]);
	}
	free(names);
	return finish(&L, npol, nrules, nsel, rc);
}
