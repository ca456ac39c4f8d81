/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Policy loader, rules and entries: one element of spec / specs (its
 * subject, enableDefaultDeny, log, and the four sections) and one entry of
 * a section. Each section is described by the fields Cilium's rule types
 * give it (struct section_fields), so ingress and egress, allow and deny
 * go through the same code: the entry's keys are checked against its
 * section's fields, what Cilium refuses is refused, what a layer-4 gateway
 * cannot enforce skips an allow entry (with a warning) and refuses a deny
 * one, and the L3 and L4 parts are handed to mg_policy_load_peer.c and
 * mg_policy_load_port.c, one function per shape.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_yaml.h"
#include "policy_priv.h"

/* Fields of each section, as Cilium's IngressRule, EgressRule, ...Deny types. */
struct section_fields {
	const char *endpoints, *entities, *cidr, *cidr_set;
	const char *skip[8];   /* allow: skip the rule; deny: reject */
	const char *reject[4]; /* narrow other rules in Cilium: ignoring them would widen */
};

static const struct section_fields sec_fields[SEC_N] = {
        [SEC_INGRESS] = {"fromEndpoints",
                         "fromEntities",
                         "fromCIDR",
                         "fromCIDRSet",
                         {"fromNodes", "fromGroups", NULL},
                         {"fromRequires", "authentication", NULL}},
        [SEC_EGRESS] = {"toEndpoints",
                        "toEntities",
                        "toCIDR",
                        "toCIDRSet",
                        {"toFQDNs", "toServices", "toGroups", "toNodes", NULL},
                        {"toRequires", "authentication", NULL}},
        [SEC_INGRESS_DENY] = {"fromEndpoints",
                              "fromEntities",
                              "fromCIDR",
                              "fromCIDRSet",
                              {"fromNodes", "fromGroups", "fromRequires", NULL},
                              {NULL}},
        [SEC_EGRESS_DENY] = {"toEndpoints",
                             "toEntities",
                             "toCIDR",
                             "toCIDRSet",
                             {"toServices", "toGroups", "toNodes", "toRequires", NULL},
                             {NULL}},
};

static void
entry_clear(struct entry *e)
{
	free(e->peers);
	free(e->ports);
	free(e->prefixes);
}

static int add_warning(struct loader *L, const struct mg_yaml_node *at, const char *fmt, ...)
        MG_PRINTF(3, 4);

static int
add_warning(struct loader *L, const struct mg_yaml_node *at, const char *fmt, ...)
{
	struct mg_policy_set *s = L->s;
	struct pol_warning *w;
	va_list ap;
	int n;

	if (mg_grow(&s->warn, &s->capwarn, s->nwarn, sizeof(*s->warn), 8))
		goto oom;
	w = &s->warn[s->nwarn];
	memset(w, 0, sizeof(*w));
	w->line = at->line;
	w->col = at->col;
	w->file = strdup(at->file ? at->file : "");
	va_start(ap, fmt);
	n = vasprintf(&w->msg, fmt, ap);
	va_end(ap);
	if (w->file == NULL || n < 0) {
		free(w->file);
		if (n >= 0)
			free(w->msg);
		goto oom;
	}
	s->nwarn++;
	return 0;
oom:
	mg_error_set(L->err, NULL, 0, 0, "out of memory");
	return -ENOMEM;
}

/* An allow entry holds @p at: note it (the entry is skipped); a deny entry is refused. */
int
pol_unenforceable(struct entry_ctx *c, const struct mg_yaml_node *at, const char *what)
{
	if (sec_deny(c->sec))
		return mg_yaml_error(c->L->err, at,
		                     "%s: not enforced by a layer-4 gateway, and a deny rule "
		                     "cannot be skipped without widening access",
		                     what);
	if (c->skip_at == NULL) {
		c->skip_at = at;
		pol_pathf(c->skip_what, sizeof(c->skip_what), "%s", what);
	}
	return 0;
}

/* `authentication: {mode: disabled}` asks for nothing: it narrows nothing either. */
static bool
auth_disabled(const struct mg_yaml_node *n, const char *field)
{
	const struct mg_yaml_node *a = mg_yaml_get(n, field), *m = mg_yaml_get(a, "mode");

	return streq(field, "authentication") && a->type == MG_YAML_MAP && a->n == 1 && m != NULL &&
	       m->type == MG_YAML_SCALAR && streq(m->str, "disabled");
}

static int
parse_entry(struct loader *L, const struct policy_obj *p, unsigned sec, struct entry *e,
            const struct mg_yaml_node *n, const char *what)
{
	const struct section_fields *f = &sec_fields[sec];
	const char *l3[12];
	const char *ok[24] = {NULL};
	struct entry_ctx c = {.L = L, .sec = sec, .e = e};
	const struct mg_yaml_node *tp, *ic;
	char w[PATH_LEN + 48];
	size_t nl3 = 0, nok = 0, i;
	const char *first = NULL;
	int rc;

	memset(e, 0, sizeof(*e));
	e->line = n->line;
	e->col = n->col;
	if (mg_yaml_is_null(n))
		return 0; /* like {}: selects nothing */
	/* l3[0 .. POL_L3_N): the peer fields the loader reads, in enum pol_l3's order */
	l3[nl3++] = f->endpoints;
	l3[nl3++] = f->entities;
	l3[nl3++] = f->cidr;
	l3[nl3++] = f->cidr_set;
	for (i = 0; f->skip[i] != NULL; i++)
		if (strstr(f->skip[i], "Requires") == NULL)
			l3[nl3++] = f->skip[i]; /* Requires narrows; it is not a peer */
	l3[nl3] = NULL;
	for (i = 0; i < nl3; i++)
		ok[nok++] = l3[i];
	for (i = 0; f->skip[i] != NULL; i++)
		if (!in_list(f->skip[i], ok))
			ok[nok++] = f->skip[i];
	for (i = 0; f->reject[i] != NULL; i++)
		ok[nok++] = f->reject[i];
	ok[nok++] = "toPorts";
	ok[nok++] = "icmps";
	ok[nok] = NULL;
	rc = mg_yaml_check_map(n, what, ok, L->err);
	if (rc)
		return rc;

	/* Cilium refuses an entry with two kinds of peers (rule_validation.go) */
	for (i = 0; i < nl3; i++) {
		if (!pol_has_content(mg_yaml_get(n, l3[i])))
			continue;
		if (first != NULL)
			return mg_yaml_error(L->err, pol_key_node(n, l3[i]),
			                     "%s: combining %s and %s is not supported", what,
			                     first, l3[i]);
		first = l3[i];
	}
	tp = mg_yaml_get(n, "toPorts");
	ic = mg_yaml_get(n, "icmps");
	if (pol_has_content(tp) && pol_has_content(ic))
		return mg_yaml_error(L->err, pol_key_node(n, "icmps"),
		                     "%s: the icmps block may only be present without toPorts; "
		                     "define a separate rule for toPorts",
		                     what);
	if (first != NULL && streq(first, "toServices") && pol_has_content(tp))
		return mg_yaml_error(L->err, pol_key_node(n, "toPorts"),
		                     "%s: combining toServices and toPorts is not supported", what);
	for (i = 0; f->reject[i] != NULL; i++)
		if (pol_has_content(mg_yaml_get(n, f->reject[i])) &&
		    !auth_disabled(n, f->reject[i]))
			return mg_yaml_error(L->err, pol_key_node(n, f->reject[i]),
			                     "%s.%s: not supported: in Cilium it narrows what the "
			                     "other rules allow, so ignoring it would widen access",
			                     what, f->reject[i]);
	for (i = 0; f->skip[i] != NULL; i++) {
		if (!pol_has_content(mg_yaml_get(n, f->skip[i])))
			continue;
		pol_pathf(w, sizeof(w), "%s.%s", what, f->skip[i]);
		rc = pol_unenforceable(&c, pol_key_node(n, f->skip[i]), w);
		if (rc)
			return rc;
	}

	/* null is absent; an explicit [] is an L3 part that selects nobody */
	for (i = 0; i < POL_L3_N; i++) {
		const struct mg_yaml_node *v = mg_yaml_get(n, l3[i]);

		if (v == NULL || mg_yaml_is_null(v))
			continue;
		e->has_l3 = true;
		pol_pathf(w, sizeof(w), "%s.%s", what, l3[i]);
		rc = pol_parse_peers(L, e, p, (enum pol_l3)i, v, w);
		if (rc)
			return rc;
	}
	/* a skipped peer kind (toFQDNs, ...) is an L3 part too */
	for (i = POL_L3_N; i < nl3; i++)
		if (mg_yaml_get(n, l3[i]) != NULL)
			e->has_l3 = true;
	pol_pathf(w, sizeof(w), "%s.toPorts", what);
	rc = pol_parse_to_ports(&c, tp, w);
	if (rc)
		return rc;
	pol_pathf(w, sizeof(w), "%s.icmps", what);
	rc = pol_parse_icmps(e, ic, w, L->err);
	if (rc)
		return rc;
	if (c.skip_at != NULL) {
		e->skipped = true;
		rc = add_warning(
		        L, c.skip_at,
		        "%s: not enforced by a layer-4 gateway; this allow rule is skipped",
		        c.skip_what);
	}
	return rc;
}

static void
rule_clear_entries(struct rule *r)
{
	unsigned sec;
	size_t i;

	for (sec = 0; sec < SEC_N; sec++) {
		for (i = 0; i < r->nent[sec]; i++)
			entry_clear(&r->ent[sec][i]);
		free(r->ent[sec]);
		r->ent[sec] = NULL;
		r->nent[sec] = 0;
	}
}

void
pol_rule_clear(struct rule *r)
{
	rule_clear_entries(r);
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
	rc = mg_yaml_check_map(n, what, ok, err);
	if (rc)
		return rc;
	for (d = 0; d < 2; d++) {
		const struct mg_yaml_node *v = mg_yaml_get(n, dirs[d]);
		bool b;

		if (mg_yaml_is_null(v))
			continue;
		pol_pathf(w, sizeof(w), "%s.%s", what, dirs[d]);
		rc = mg_yaml_bool(v, w, &b, err);
		if (rc)
			return rc;
		r->no_default_deny[d] = !b;
	}
	return 0;
}

/* `log: {value: <string>}` (Cilium 1.17+): a tag for policy verdict logs; no effect on verdicts. */
static int
parse_log(const struct mg_yaml_node *n, const char *what, struct mg_error *err)
{
	static const char *const ok[] = {"value", NULL};
	const struct mg_yaml_node *v;
	char w[PATH_LEN + 32];
	const char *str;
	int rc;

	if (mg_yaml_is_null(n))
		return 0;
	rc = mg_yaml_check_map(n, what, ok, err);
	if (rc)
		return rc;
	v = mg_yaml_get(n, "value");
	pol_pathf(w, sizeof(w), "%s.value", what);
	return mg_yaml_is_null(v) ? 0 : mg_yaml_str(v, w, &str, err);
}

int
pol_parse_rule(struct loader *L, uint32_t pidx, unsigned index, const struct mg_yaml_node *n,
               const char *what)
{
	static const char *const ok[] = {
	        "endpointSelector",  "nodeSelector", "ingress",     "egress",
	        "ingressDeny",       "egressDeny",   "description", "labels",
	        "enableDefaultDeny", "log",          NULL};
	struct mg_policy_set *s = L->s;
	const struct policy_obj *p = &s->pol[pidx];
	const struct mg_yaml_node *es, *ns;
	char w[PATH_LEN + 32];
	const char *str;
	struct rule *r;
	unsigned sec;
	size_t i, ne;
	int rc;

	if (s->nrules >= POL_MAX_RULES)
		return mg_yaml_error(L->err, n, "too many rules in the policy set (limit %u)",
		                     POL_MAX_RULES);
	rc = mg_yaml_check_map(n, what, ok, L->err);
	if (rc)
		return rc;
	if (mg_grow(&s->rules, &s->caprules, s->nrules, sizeof(*s->rules), 16)) {
		mg_error_set(L->err, NULL, 0, 0, "out of memory");
		return -ENOMEM;
	}
	/* the rule is counted at once so that a rollback frees what it holds */
	r = &s->rules[s->nrules++];
	memset(r, 0, sizeof(*r));
	r->pol = pidx;
	r->index = index;
	r->line = n->line;

	es = mg_yaml_get(n, "endpointSelector");
	ns = mg_yaml_get(n, "nodeSelector");
	if (mg_yaml_is_null(es) && mg_yaml_is_null(ns))
		return mg_yaml_error(L->err, n, "%s: endpointSelector is required", what);
	if (!mg_yaml_is_null(es) && !mg_yaml_is_null(ns))
		return mg_yaml_error(L->err, pol_key_node(n, "nodeSelector"),
		                     "%s: a rule cannot have both endpointSelector and "
		                     "nodeSelector",
		                     what);
	pol_pathf(w, sizeof(w), "%s.%s", what, ns ? "nodeSelector" : "endpointSelector");
	rc = pol_parse_subject(L, p, ns ? ns : es, ns != NULL, w, &r->subject);
	if (rc)
		return rc;
	pol_pathf(w, sizeof(w), "%s.description", what);
	if (mg_yaml_get(n, "description") != NULL &&
	    !mg_yaml_is_null(mg_yaml_get(n, "description"))) {
		rc = mg_yaml_str(mg_yaml_get(n, "description"), w, &str, L->err);
		if (rc)
			return rc;
	}
	pol_pathf(w, sizeof(w), "%s.labels", what);
	rc = pol_get_seq(mg_yaml_get(n, "labels"), w, SIZE_MAX, &ne, L->err);
	if (rc)
		return rc;
	pol_pathf(w, sizeof(w), "%s.log", what);
	rc = parse_log(mg_yaml_get(n, "log"), w, L->err);
	if (rc)
		return rc;
	pol_pathf(w, sizeof(w), "%s.enableDefaultDeny", what);
	rc = parse_default_deny(r, mg_yaml_get(n, "enableDefaultDeny"), w, L->err);
	if (rc)
		return rc;

	/*
	 * Cilium's rule validation (Rule.Validate) refuses a rule whose
	 * ingress, ingressDeny, egress and egressDeny are all empty or absent,
	 * whatever enableDefaultDeny says; `ingress: [{}]` is the way to select
	 * subjects and allow nothing. Cilium checks it first; here it comes
	 * after the errors of the fields present, which say more. A non-list
	 * is a type error, reported below.
	 */
	for (sec = 0; sec < SEC_N; sec++) {
		const struct mg_yaml_node *list = mg_yaml_get(n, pol_section_names[sec]);

		if (!mg_yaml_is_null(list) && (list->type != MG_YAML_SEQ || list->n > 0))
			break;
	}
	if (sec == SEC_N)
		return mg_yaml_error(
		        L->err, n,
		        "%s: a rule needs at least one of ingress, ingressDeny, egress "
		        "and egressDeny with an entry (Cilium refuses the policy; "
		        "`ingress: [{}]` selects the subjects and allows nothing)",
		        what);
	for (sec = 0; sec < SEC_N; sec++) {
		const struct mg_yaml_node *list = mg_yaml_get(n, pol_section_names[sec]);

		pol_pathf(w, sizeof(w), "%s.%s", what, pol_section_names[sec]);
		rc = pol_get_seq(list, w, POL_MAX_ENTRIES, &ne, L->err);
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
			pol_pathf(w, sizeof(w), "%s.%s[%zu]", what, pol_section_names[sec], i);
			/* counted first: parse_entry leaves partial state to free */
			r->nent[sec]++;
			rc = parse_entry(L, p, sec, &r->ent[sec][i], list->items[i], w);
			if (rc)
				return rc;
		}
	}
	if (ns != NULL) {
		/*
		 * A host firewall rule: Cilium enforces it on the selected nodes
		 * themselves. The gateway has no subject it could apply to, so the
		 * rule neither allows nor denies anything here (validated, then
		 * emptied), and what the nodes enforce is unchanged.
		 */
		rule_clear_entries(r);
		pol_pathf(w, sizeof(w), "%s.nodeSelector", what);
		return add_warning(L, pol_key_node(n, "nodeSelector"),
		                   "%s: a host firewall rule, enforced by Cilium on the selected "
		                   "nodes and not by the gateway; this rule is skipped",
		                   w);
	}
	return 0;
}
