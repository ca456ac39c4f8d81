/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Policy loader: CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy YAML
 * (single documents, multi-document streams, `kind: List`) into the rule
 * AST of policy_priv.h: selectors, entities, CIDR rules, ports (numbers,
 * ranges, names), ICMP types. Every error names the field and its
 * file:line:column. The rule of the module is never to widen access: an
 * allow rule holding what a layer-4 gateway cannot enforce (L7 rules,
 * toFQDNs, ...) is kept but allows nothing, with a warning; anything whose
 * omission would allow more than Cilium does (a deny rule's unenforceable
 * content, fromRequires, authentication) refuses the policy. Fields Cilium
 * does not know are "unknown key" errors. A load is a transaction: on
 * error the set is truncated back to where it was. The check mode
 * (mg_policy_set_check_path) runs one transaction per document instead and
 * reports every problem.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "mg_yaml.h"
#include "policy_priv.h"

#define PATH_LEN 192

struct loader {
	struct mg_policy_set *s;
	const char *cluster;
	struct mg_error *err;
	int loaded; /* policies added by this load */
	/* check mode (mg_policy_set_check_path): go on past a bad document */
	void (*report)(const struct mg_policy_problem *, void *);
	void *arg;
	int errors;
};

static int parse_doc(struct loader *L, const struct mg_yaml_node *doc, bool in_list);
static int doc_tx(struct loader *L, const struct mg_yaml_node *doc, bool in_list);

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

/* The key node of @p key in mapping @p map (for positions), or @p map itself. */
static const struct mg_yaml_node *
key_node(const struct mg_yaml_node *map, const char *key)
{
	size_t i;

	if (map != NULL && map->type == MG_YAML_MAP)
		for (i = 0; i < map->n; i++)
			if (map->pairs[i].key->type == MG_YAML_SCALAR &&
			    streq(map->pairs[i].key->str, key))
				return map->pairs[i].key;
	return map;
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

	rc = mg_yaml_check_map(n, what, ok, err);
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
	rc = mg_yaml_check_map(n, what, ok, err);
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

/*
 * Cilium's test for a port name (pkg/iana): 1 to 15 characters of
 * [a-zA-Z0-9-], at least one letter, no '-' at either end, no "--".
 */
static bool
is_svc_name(const char *s)
{
	size_t n = strlen(s), i;
	bool letter = false;

	if (n == 0 || n > POL_PORT_NAME_MAX || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
			letter = true;
		else if (c == '-' && s[i + 1] == '-')
			return false;
		else if (!((c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	return letter;
}

/*
 * A port: a number (as Go's strconv.ParseUint with base 0, which Cilium
 * uses: a leading 0 means octal) or a name, which Cilium lower-cases.
 * @p name receives the name, or "" for a number in *out.
 */
static int
parse_port_number(const struct mg_yaml_node *n, const char *what, unsigned *out, char *name,
                  struct mg_error *err)
{
	const char *str;
	unsigned base = 10;
	unsigned long v = 0;
	size_t i, len;
	int rc;

	name[0] = '\0';
	rc = mg_yaml_str(n, what, &str, err);
	if (rc)
		return rc;
	len = strlen(str);
	if (len == 0)
		return mg_yaml_error(err, n, "%s: expected a port number or name", what);
	if (is_svc_name(str)) {
		for (i = 0; i <= len; i++)
			name[i] = (char)((str[i] >= 'A' && str[i] <= 'Z') ? str[i] - 'A' + 'a'
			                                                  : str[i]);
		*out = 0;
		return 0;
	}
	if (len > 1 && str[0] == '0')
		base = 8;
	for (i = 0; i < len; i++) {
		if (str[i] < '0' || str[i] >= (char)('0' + base))
			return mg_yaml_error(err, n, "%s: '%s' is not a port number or name", what,
			                     str);
		if (v <= 65535)
			v = v * base + (unsigned long)(str[i] - '0');
	}
	if (v > 65535)
		return mg_yaml_error(err, n, "%s: %s is out of range [0, 65535]", what, str);
	*out = (unsigned)v;
	return 0;
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
	else if (streq(str, "ICMP") || streq(str, "ICMPv6"))
		/* Cilium allows these in toPorts only for its own generated rules */
		return mg_yaml_error(err, n,
		                     "%s: protocol %s is not accepted in toPorts (use icmps for "
		                     "ICMP types)",
		                     what, str);
	else if (streq(str, "VRRP") || streq(str, "IGMP"))
		/*
		 * Cilium takes these (port empty or 0) only when its agent runs with
		 * --enable-extended-ip-protocols (PortProtocol.Validate); without
		 * it the policy is refused. The gateway has no such option, and its
		 * ANY covers TCP, UDP and SCTP only.
		 */
		return mg_yaml_error(
		        err, n,
		        "%s: protocol %s is accepted by Cilium only when its agent runs "
		        "with --enable-extended-ip-protocols; meshgate does not enforce "
		        "it",
		        what, str);
	else
		return mg_yaml_error(err, n,
		                     "%s: unknown protocol '%s' (expected TCP, UDP, SCTP or ANY)",
		                     what, str);
	return 0;
}

static int
add_range(struct entry *e, uint8_t protos, unsigned lo, unsigned hi, const char *name,
          const struct mg_yaml_node *at, const char *what, struct mg_error *err)
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
	v = &e->ports[e->nports];
	memset(v, 0, sizeof(*v));
	v->protos = protos;
	v->lo = (uint16_t)lo;
	v->hi = (uint16_t)hi;
	if (name != NULL)
		snprintf(v->name, sizeof(v->name), "%s", name);
	e->nports++;
	return 0;
}

static int
parse_port(struct entry *e, const struct mg_yaml_node *n, const char *what, struct mg_error *err)
{
	static const char *const ok[] = {"port", "endPort", "protocol", NULL};
	const struct mg_yaml_node *pn = mg_yaml_get(n, "port"), *en = mg_yaml_get(n, "endPort");
	char w[PATH_LEN + 16], name[POL_PORT_NAME_MAX + 1] = "";
	unsigned port = 0, end = 0;
	uint8_t mask;
	uint64_t v;
	int rc;

	rc = mg_yaml_check_map(n, what, ok, err);
	if (rc)
		return rc;
	pathf(w, sizeof(w), "%s.port", what);
	if (!mg_yaml_is_null(pn)) {
		rc = parse_port_number(pn, w, &port, name, err);
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
		if (end != 0 && name[0] != '\0')
			return mg_yaml_error(err, en, "%s: a range cannot start at a named port",
			                     w);
		if (end != 0 && port == 0)
			return mg_yaml_error(err, en, "%s: needs a non-zero port", w);
		if (end != 0 && end < port)
			return mg_yaml_error(err, en, "%s: %u is below port %u", w, end, port);
	}
	if (name[0] != '\0')
		return add_range(e, mask, 0, 0, name, n, what, err);
	if (port == 0)
		return add_range(e, mask, 0, 65535, NULL, n, what, err);
	return add_range(e, mask, port, end > port ? end : port, NULL, n, what, err);
}

/* What the loader does with a field it cannot enforce. */
enum unenforceable {
	UNE_SKIP,   /* in an allow rule: skip the rule, warn */
	UNE_REJECT, /* refuse the policy */
};

struct entry_ctx {
	struct loader *L;
	unsigned sec;
	struct entry *e;
	const struct mg_yaml_node *skip_at; /* first unenforceable field seen */
	char skip_what[PATH_LEN + 64];
};

/* An allow entry holds @p at: note it (the entry is skipped); a deny entry is refused. */
static int
unenforceable(struct entry_ctx *c, const struct mg_yaml_node *at, const char *what)
{
	if (sec_deny(c->sec))
		return mg_yaml_error(c->L->err, at,
		                     "%s: not enforced by a layer-4 gateway, and a deny rule "
		                     "cannot be skipped without widening access",
		                     what);
	if (c->skip_at == NULL) {
		c->skip_at = at;
		pathf(c->skip_what, sizeof(c->skip_what), "%s", what);
	}
	return 0;
}

/* Is @p n present with content (not null, not an empty sequence or mapping)? */
static bool
has_content(const struct mg_yaml_node *n)
{
	if (n == NULL || mg_yaml_is_null(n))
		return false;
	if (n->type == MG_YAML_SEQ || n->type == MG_YAML_MAP)
		return n->n > 0;
	return true;
}

/* A non-empty list under `rules` (Cilium's L7Rules.Len() counts its items). */
static bool
l7_list(const struct mg_yaml_node *rules, const char *key)
{
	const struct mg_yaml_node *v = mg_yaml_get(rules, key);

	return v != NULL && v->type == MG_YAML_SEQ && v->n > 0;
}

/*
 * What Cilium's PortRule validation refuses about the L7 `rules` of one
 * toPorts item @p pr of an allow entry, whose ports are already checked
 * (an allow entry with L7 rules is skipped, but a policy Cilium refuses
 * must not load here either). Rules without items are no L7 rules; with
 * items: DNS rules on ingress; two kinds of rules side by side; other L7
 * rules (http, kafka, l7) on a port whose protocol is not TCP (absent and
 * ANY included). DNS rules may sit on any protocol.
 */
static int
check_l7_rules(struct entry_ctx *c, const struct mg_yaml_node *pr, const char *what)
{
	static const char *const kinds[] = {"http", "kafka", "dns"};
	const struct mg_yaml_node *rules = mg_yaml_get(pr, "rules"), *ports;
	struct mg_error *err = c->L->err;
	unsigned nkinds = 0;
	bool dns, other;
	size_t j;

	if (mg_yaml_is_null(rules))
		return 0;
	if (rules->type != MG_YAML_MAP)
		return mg_yaml_error(err, rules, "%s.rules: expected a mapping", what);
	dns = l7_list(rules, "dns");
	other = l7_list(rules, "http") || l7_list(rules, "kafka") || l7_list(rules, "l7");
	if (!dns && !other)
		return 0;
	if (dns && c->sec == SEC_INGRESS)
		return mg_yaml_error(err, key_node(rules, "dns"),
		                     "%s.rules.dns: DNS rules are not allowed on ingress (Cilium "
		                     "refuses the policy)",
		                     what);
	/* Cilium counts a kind that is there at all, even as an empty list */
	for (j = 0; j < MG_ARRAY_SIZE(kinds); j++)
		if (!mg_yaml_is_null(mg_yaml_get(rules, kinds[j])))
			nkinds++;
	if (has_content(mg_yaml_get(rules, "l7proto")))
		nkinds++;
	if (nkinds > 1)
		return mg_yaml_error(
		        err, rules,
		        "%s.rules: multiple L7 protocol rule types in one rule (Cilium "
		        "refuses the policy)",
		        what);
	if (dns)
		return 0;
	ports = mg_yaml_get(pr, "ports");
	for (j = 0; ports != NULL && ports->type == MG_YAML_SEQ && j < ports->n; j++) {
		const struct mg_yaml_node *pp = ports->items[j];
		const struct mg_yaml_node *proto = mg_yaml_get(pp, "protocol");
		const char *name = "ANY";

		if (proto != NULL && proto->type == MG_YAML_SCALAR && !mg_yaml_is_null(proto) &&
		    proto->str[0] != '\0')
			name = proto->str;
		if (!streq(name, "TCP"))
			return mg_yaml_error(
			        err, proto != NULL ? proto : pp,
			        "%s.ports[%zu]: L7 rules can only apply to TCP (not %s), "
			        "except for DNS rules (Cilium refuses the policy)",
			        what, j, name);
	}
	return 0;
}

static int
parse_to_ports(struct entry_ctx *c, const struct mg_yaml_node *n, const char *what)
{
	static const char *const ok_allow[] = {
	        "ports",          "rules",       "listener", "originatingTLS",
	        "terminatingTLS", "serverNames", NULL};
	static const char *const ok_deny[] = {"ports", NULL};
	static const char *const l7[] = {"rules",          "listener",    "originatingTLS",
	                                 "terminatingTLS", "serverNames", NULL};
	struct mg_error *err = c->L->err;
	struct entry *e = c->e;
	char w[PATH_LEN + 64];
	size_t i, j, k, np, npp;
	int rc;

	rc = get_seq(n, what, POL_MAX_PORTS, &np, err);
	if (rc)
		return rc;
	for (i = 0; i < np; i++) {
		const struct mg_yaml_node *pr = n->items[i], *ports;

		pathf(w, sizeof(w), "%s[%zu]", what, i);
		if (mg_yaml_is_null(pr)) {
			/* no ports: every port of TCP, UDP and SCTP */
			rc = add_range(e, PMASK_ANY, 0, 65535, NULL, pr, w, err);
			if (rc)
				return rc;
			continue;
		}
		rc = mg_yaml_check_map(pr, w, ok_allow, err);
		if (rc)
			return rc;
		for (k = 0; l7[k] != NULL; k++) {
			const struct mg_yaml_node *f = mg_yaml_get(pr, l7[k]);

			if (!has_content(f))
				continue;
			pathf(w, sizeof(w), "%s[%zu].%s", what, i, l7[k]);
			rc = unenforceable(c, key_node(pr, l7[k]), w);
			if (rc)
				return rc;
		}
		if (sec_deny(c->sec)) {
			/* a deny port rule has nothing but ports in Cilium */
			pathf(w, sizeof(w), "%s[%zu]", what, i);
			rc = mg_yaml_check_map(pr, w, ok_deny, err);
			if (rc)
				return rc;
		}
		ports = mg_yaml_get(pr, "ports");
		pathf(w, sizeof(w), "%s[%zu].ports", what, i);
		rc = get_seq(ports, w, POL_MAX_PORTS, &npp, err);
		if (rc)
			return rc;
		if (npp == 0) {
			rc = add_range(e, PMASK_ANY, 0, 65535, NULL, pr, w, err);
			if (rc)
				return rc;
		}
		for (j = 0; j < npp; j++) {
			pathf(w, sizeof(w), "%s[%zu].ports[%zu]", what, i, j);
			rc = parse_port(e, ports->items[j], w, err);
			if (rc)
				return rc;
		}
		if (!sec_deny(c->sec)) {
			pathf(w, sizeof(w), "%s[%zu]", what, i);
			rc = check_l7_rules(c, pr, w);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* ---- ICMP ---- */

struct icmp_name {
	const char *name;
	uint8_t type;
};

/* The names Cilium accepts per family (pkg/policy/api/icmp.go). */
static const struct icmp_name icmp4_names[] = {
        {"EchoReply", 0},
        {"DestinationUnreachable", 3},
        {"Redirect", 5},
        {"EchoRequest", 8}, /* first: the name mg_policy_icmp_name gives 8 */
        {"Echo", 8},
        {"RouterAdvertisement", 9},
        {"RouterSelection", 10},
        {"TimeExceeded", 11},
        {"ParameterProblem", 12},
        {"Timestamp", 13},
        {"TimestampReply", 14},
        {"Photuris", 40},
        {"ExtendedEchoRequest", 42},
        {"ExtendedEchoReply", 43},
        {NULL, 0},
};

static const struct icmp_name icmp6_names[] = {
        {"DestinationUnreachable", 1},
        {"PacketTooBig", 2},
        {"TimeExceeded", 3},
        {"ParameterProblem", 4},
        {"EchoRequest", 128},
        {"EchoReply", 129},
        {"MulticastListenerQuery", 130},
        {"MulticastListenerReport", 131},
        {"MulticastListenerDone", 132},
        {"RouterSolicitation", 133},
        {"RouterAdvertisement", 134},
        {"NeighborSolicitation", 135},
        {"NeighborAdvertisement", 136},
        {"RedirectMessage", 137},
        {"RouterRenumbering", 138},
        {"ICMPNodeInformationQuery", 139},
        {"ICMPNodeInformationResponse", 140},
        {"InverseNeighborDiscoverySolicitation", 141},
        {"InverseNeighborDiscoveryAdvertisement", 142},
        {"HomeAgentAddressDiscoveryRequest", 144},
        {"HomeAgentAddressDiscoveryReply", 145},
        {"MobilePrefixSolicitation", 146},
        {"MobilePrefixAdvertisement", 147},
        {"DuplicateAddressRequestCodeSuffix", 157},
        {"DuplicateAddressConfirmationCodeSuffix", 158},
        {"ExtendedEchoRequest", 160},
        {"ExtendedEchoReply", 161},
        {NULL, 0},
};

static int
icmp_lookup(const struct icmp_name *names, const char *name, bool nocase, uint8_t *type)
{
	for (; names->name != NULL; names++)
		if (nocase ? strcasecmp(names->name, name) == 0 : strcmp(names->name, name) == 0) {
			*type = names->type;
			return 0;
		}
	return -ENOENT;
}

int
mg_policy_icmp_type(uint8_t family, const char *name, bool nocase, uint8_t *type)
{
	return icmp_lookup(family == AF_INET6 ? icmp6_names : icmp4_names, name, nocase, type);
}

const char *
mg_policy_icmp_name(uint8_t family, uint8_t type)
{
	const struct icmp_name *t = family == AF_INET6 ? icmp6_names : icmp4_names;

	for (; t->name != NULL; t++)
		if (t->type == type)
			return t->name;
	return NULL;
}

#define POL_MAX_ICMP_FIELDS 40 /* Cilium's maxICMPFields */

static int
parse_icmp_field(struct entry *e, const struct mg_yaml_node *n, const char *what,
                 struct mg_error *err)
{
	static const char *const ok[] = {"family", "type", NULL};
	const struct mg_yaml_node *fn = mg_yaml_get(n, "family"), *tn = mg_yaml_get(n, "type");
	const struct icmp_name *names = icmp4_names;
	const char *fam = "IPv4", *ts;
	char w[PATH_LEN + 16];
	unsigned pidx = PIDX_ICMP;
	unsigned long v = 0;
	size_t i, len;
	int rc;

	rc = mg_yaml_check_map(n, what, ok, err);
	if (rc)
		return rc;
	pathf(w, sizeof(w), "%s.family", what);
	if (!mg_yaml_is_null(fn)) {
		rc = mg_yaml_str(fn, w, &fam, err);
		if (rc)
			return rc;
		if (streq(fam, "IPv6")) {
			names = icmp6_names;
			pidx = PIDX_ICMPV6;
		} else if (!streq(fam, "IPv4") && fam[0] != '\0') {
			return mg_yaml_error(
			        err, fn, "%s: wrong family '%s' (expected IPv4 or IPv6)", w, fam);
		}
		if (fam[0] == '\0')
			fam = "IPv4";
	}
	pathf(w, sizeof(w), "%s.type", what);
	if (mg_yaml_is_null(tn))
		return mg_yaml_error(err, tn ? tn : n, "%s: an ICMP type is required", w);
	rc = mg_yaml_str(tn, w, &ts, err);
	if (rc)
		return rc;
	len = strlen(ts);
	if (len > 0 && len <= 3 && strspn(ts, "0123456789") == len) {
		for (i = 0; i < len; i++)
			v = v * 10 + (unsigned long)(ts[i] - '0');
		if (v > 255)
			return mg_yaml_error(err, tn, "%s: %s is out of range [0, 255]", w, ts);
	} else {
		uint8_t t;

		if (icmp_lookup(names, ts, false, &t) != 0)
			return mg_yaml_error(err, tn, "%s: ICMP type '%s' not found in %s", w, ts,
			                     fam);
		v = t;
	}
	return add_range(e, (uint8_t)(1u << pidx), (unsigned)v, (unsigned)v, NULL, n, what, err);
}

static int
parse_icmps(struct entry *e, const struct mg_yaml_node *n, const char *what, struct mg_error *err)
{
	static const char *const ok[] = {"fields", NULL};
	char w[PATH_LEN + 48];
	size_t i, j, ni, nf;
	int rc;

	rc = get_seq(n, what, POL_MAX_PORTS, &ni, err);
	if (rc)
		return rc;
	for (i = 0; i < ni; i++) {
		const struct mg_yaml_node *it = n->items[i], *fields;

		pathf(w, sizeof(w), "%s[%zu]", what, i);
		if (!mg_yaml_is_null(it)) {
			rc = mg_yaml_check_map(it, w, ok, err);
			if (rc)
				return rc;
		}
		fields = mg_yaml_get(it, "fields");
		pathf(w, sizeof(w), "%s[%zu].fields", what, i);
		rc = get_seq(fields, w, POL_MAX_ICMP_FIELDS, &nf, err);
		if (rc)
			return rc;
		if (nf == 0) {
			/* Cilium treats an icmps item without fields as a port rule without ports */
			rc = add_range(e, PMASK_ANY, 0, 65535, NULL, it, w, err);
			if (rc)
				return rc;
		}
		for (j = 0; j < nf; j++) {
			pathf(w, sizeof(w), "%s[%zu].fields[%zu]", what, i, j);
			rc = parse_icmp_field(e, fields->items[j], w, err);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* ---- L3 peers: endpoints, entities, CIDRs ---- */

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

static int
add_reserved_peer(struct loader *L, struct entry *e, const char *name, const struct policy_obj *p,
                  const struct mg_yaml_node *at)
{
	struct selector *sel = sel_new("reserved", name, SEL_EXISTS, NULL);

	if (sel == NULL) {
		mg_error_set(L->err, NULL, 0, 0, "out of memory");
		return -ENOMEM;
	}
	return add_entry_peer(L, e, sel, false, p, at);
}

/*
 * Entities (pkg/policy/api/entity.go): selectors over reserved labels,
 * never scoped to a namespace or cluster. `cluster` adds the pods of the
 * policy's own cluster; `all` is the empty selector; `none` adds nothing.
 */
static int
parse_entities(struct loader *L, struct entry *e, const struct policy_obj *p,
               const struct mg_yaml_node *n, const char *what)
{
	static const char *const simple[] = {
	        "host", "remote-node", "kube-apiserver", "ingress",    "health",
	        "init", "unmanaged",   "world-ipv4",     "world-ipv6", NULL};
	static const char *const cluster[] = {"host",      "remote-node",    "init",    "health",
	                                      "unmanaged", "kube-apiserver", "ingress", NULL};
	char w[PATH_LEN + 48];
	size_t i, k, ne;
	int rc;

	rc = get_seq(n, what, POL_MAX_PEERS, &ne, L->err);
	if (rc)
		return rc;
	for (i = 0; i < ne; i++) {
		const struct mg_yaml_node *it = n->items[i];
		const char *name;

		pathf(w, sizeof(w), "%s[%zu]", what, i);
		rc = mg_yaml_str(it, w, &name, L->err);
		if (rc)
			return rc;
		if (in_list(name, simple)) {
			rc = add_reserved_peer(L, e, name, p, it);
		} else if (streq(name, "world")) {
			rc = add_reserved_peer(L, e, "world", p, it);
			if (rc == 0)
				rc = add_reserved_peer(L, e, "world-ipv4", p, it);
			if (rc == 0)
				rc = add_reserved_peer(L, e, "world-ipv6", p, it);
		} else if (streq(name, "cluster")) {
			struct selector *sel;

			for (k = 0; rc == 0 && cluster[k] != NULL; k++)
				rc = add_reserved_peer(L, e, cluster[k], p, it);
			if (rc)
				return rc;
			sel = sel_new("k8s", POL_CLUSTER_KEY, SEL_IN, p->cluster);
			if (sel == NULL) {
				mg_error_set(L->err, NULL, 0, 0, "out of memory");
				return -ENOMEM;
			}
			rc = add_entry_peer(L, e, sel, false, p, it);
		} else if (streq(name, "all")) {
			struct selector *sel = sel_new(NULL, NULL, SEL_IN, NULL);

			if (sel == NULL) {
				mg_error_set(L->err, NULL, 0, 0, "out of memory");
				return -ENOMEM;
			}
			rc = add_entry_peer(L, e, sel, false, p, it);
		} else if (!streq(name, "none")) {
			return mg_yaml_error(
			        L->err, it,
			        "%s: unsupported entity '%s' (expected host, "
			        "remote-node, kube-apiserver, ingress, health, init, "
			        "unmanaged, world, world-ipv4, world-ipv6, cluster, all "
			        "or none)",
			        w, name);
		}
		if (rc)
			return rc;
	}
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
	if (sel == NULL) {
		mg_error_set(L->err, NULL, 0, 0, "out of memory");
		return -ENOMEM;
	}
	rc = add_entry_peer(L, e, sel, false, p, at);
	if (rc == 0)
		rc = add_prefix(L, e, pf, at);
	for (i = 0; rc == 0 && i < nexc; i++)
		rc = add_prefix(L, e, &exc[i], at);
	return rc;
}

static int
parse_cidrs(struct loader *L, struct entry *e, const struct policy_obj *p,
            const struct mg_yaml_node *n, const char *what)
{
	char w[PATH_LEN + 48];
	size_t i, nc;
	int rc;

	rc = get_seq(n, what, POL_MAX_PEERS, &nc, L->err);
	if (rc)
		return rc;
	for (i = 0; i < nc; i++) {
		struct pol_prefix pf;

		pathf(w, sizeof(w), "%s[%zu]", what, i);
		rc = parse_prefix_at(L, n->items[i], w, &pf);
		if (rc == 0)
			rc = add_cidr_peer(L, e, p, &pf, NULL, 0, n->items[i]);
		if (rc)
			return rc;
	}
	return 0;
}

static int
parse_cidr_set(struct loader *L, struct entry *e, const struct policy_obj *p,
               const struct mg_yaml_node *n, const char *what)
{
	static const char *const ok[] = {"cidr", "except", NULL};
	/* CIDR groups: Cilium resolves them from CiliumCIDRGroup objects */
	static const char *const unsup[] = {"cidrGroupRef", "cidrGroupSelector", NULL};
	struct pol_prefix *exc = NULL;
	char w[PATH_LEN + 64];
	size_t i, j, nc, nx;
	int rc = 0;

	rc = get_seq(n, what, POL_MAX_PEERS, &nc, L->err);
	if (rc)
		return rc;
	for (i = 0; i < nc && rc == 0; i++) {
		const struct mg_yaml_node *it = n->items[i], *cn, *xn;
		struct pol_prefix pf;

		pathf(w, sizeof(w), "%s[%zu]", what, i);
		rc = mg_yaml_check_keys(it, w, ok, unsup, L->err);
		if (rc)
			break;
		cn = mg_yaml_get(it, "cidr");
		if (mg_yaml_is_null(cn)) {
			rc = mg_yaml_error(L->err, cn ? cn : it, "%s.cidr is required", w);
			break;
		}
		pathf(w, sizeof(w), "%s[%zu].cidr", what, i);
		rc = parse_prefix_at(L, cn, w, &pf);
		if (rc)
			break;
		if (strchr(cn->str, '/') == NULL) {
			/* a CIDRRule takes <address>/<length> only (unlike fromCIDR) */
			rc = mg_yaml_error(L->err, cn, "%s: '%s' is not a CIDR prefix", w, cn->str);
			break;
		}
		xn = mg_yaml_get(it, "except");
		pathf(w, sizeof(w), "%s[%zu].except", what, i);
		rc = get_seq(xn, w, POL_MAX_PREFIXES, &nx, L->err);
		if (rc)
			break;
		free(exc);
		exc = calloc(nx ? nx : 1, sizeof(*exc));
		if (exc == NULL) {
			mg_error_set(L->err, NULL, 0, 0, "out of memory");
			rc = -ENOMEM;
			break;
		}
		for (j = 0; j < nx && rc == 0; j++) {
			pathf(w, sizeof(w), "%s[%zu].except[%zu]", what, i, j);
			rc = parse_prefix_at(L, xn->items[j], w, &exc[j]);
			if (rc == 0 && strchr(xn->items[j]->str, '/') == NULL)
				rc = mg_yaml_error(L->err, xn->items[j],
				                   "%s: '%s' is not a CIDR prefix", w,
				                   xn->items[j]->str);
			if (rc == 0 && !pol_prefix_contains_addr(&pf, &exc[j]))
				rc = mg_yaml_error(L->err, xn->items[j],
				                   "%s: %s is not within the allowed prefix %s", w,
				                   xn->items[j]->str, cn->str);
		}
		if (rc == 0)
			rc = add_cidr_peer(L, e, p, &pf, exc, nx, it);
	}
	free(exc);
	return rc;
}

/* ---- rules ---- */

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

	if (s->nwarn == s->capwarn) {
		size_t cap = s->capwarn ? s->capwarn * 2 : 8;
		void *v = realloc(s->warn, cap * sizeof(*s->warn));

		if (v == NULL)
			goto oom;
		s->warn = v;
		s->capwarn = cap;
	}
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
	size_t nl3 = 0, nok = 0, i, j;
	const char *first = NULL;
	int rc;

	memset(e, 0, sizeof(*e));
	e->line = n->line;
	e->col = n->col;
	if (mg_yaml_is_null(n))
		return 0; /* like {}: selects nothing */
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
		if (!has_content(mg_yaml_get(n, l3[i])))
			continue;
		if (first != NULL)
			return mg_yaml_error(L->err, key_node(n, l3[i]),
			                     "%s: combining %s and %s is not supported", what,
			                     first, l3[i]);
		first = l3[i];
	}
	tp = mg_yaml_get(n, "toPorts");
	ic = mg_yaml_get(n, "icmps");
	if (has_content(tp) && has_content(ic))
		return mg_yaml_error(L->err, key_node(n, "icmps"),
		                     "%s: the icmps block may only be present without toPorts; "
		                     "define a separate rule for toPorts",
		                     what);
	if (first != NULL && streq(first, "toServices") && has_content(tp))
		return mg_yaml_error(L->err, key_node(n, "toPorts"),
		                     "%s: combining toServices and toPorts is not supported", what);
	for (i = 0; f->reject[i] != NULL; i++)
		if (has_content(mg_yaml_get(n, f->reject[i])) && !auth_disabled(n, f->reject[i]))
			return mg_yaml_error(L->err, key_node(n, f->reject[i]),
			                     "%s.%s: not supported: in Cilium it narrows what the "
			                     "other rules allow, so ignoring it would widen access",
			                     what, f->reject[i]);
	for (i = 0; f->skip[i] != NULL; i++) {
		if (!has_content(mg_yaml_get(n, f->skip[i])))
			continue;
		pathf(w, sizeof(w), "%s.%s", what, f->skip[i]);
		rc = unenforceable(&c, key_node(n, f->skip[i]), w);
		if (rc)
			return rc;
	}

	/* null is absent; an explicit [] is an L3 part that selects nobody */
	for (i = 0; i < 4; i++) {
		const struct mg_yaml_node *v = mg_yaml_get(n, l3[i]);

		if (v == NULL || mg_yaml_is_null(v))
			continue;
		e->has_l3 = true;
		pathf(w, sizeof(w), "%s.%s", what, l3[i]);
		if (i == 0) {
			size_t np;

			rc = get_seq(v, w, POL_MAX_PEERS, &np, L->err);
			for (j = 0; rc == 0 && j < np; j++) {
				struct selector *sel;

				pathf(w, sizeof(w), "%s.%s[%zu]", what, l3[i], j);
				rc = parse_selector(v->items[j], w, &sel, L->err);
				if (rc == 0)
					rc = add_entry_peer(L, e, sel, true, p, v->items[j]);
			}
		} else if (i == 1) {
			rc = parse_entities(L, e, p, v, w);
		} else if (i == 2) {
			rc = parse_cidrs(L, e, p, v, w);
		} else {
			rc = parse_cidr_set(L, e, p, v, w);
		}
		if (rc)
			return rc;
	}
	/* a skipped peer kind (toFQDNs, ...) is an L3 part too */
	for (i = 4; i < nl3; i++)
		if (mg_yaml_get(n, l3[i]) != NULL)
			e->has_l3 = true;
	pathf(w, sizeof(w), "%s.toPorts", what);
	rc = parse_to_ports(&c, tp, w);
	if (rc)
		return rc;
	pathf(w, sizeof(w), "%s.icmps", what);
	rc = parse_icmps(e, ic, w, L->err);
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

static void
rule_clear(struct rule *r)
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
		pathf(w, sizeof(w), "%s.%s", what, dirs[d]);
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
	pathf(w, sizeof(w), "%s.value", what);
	return mg_yaml_is_null(v) ? 0 : mg_yaml_str(v, w, &str, err);
}

static int
parse_rule(struct loader *L, uint32_t pidx, unsigned index, const struct mg_yaml_node *n,
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
	struct selector *sel;
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
	ns = mg_yaml_get(n, "nodeSelector");
	if (mg_yaml_is_null(es) && mg_yaml_is_null(ns))
		return mg_yaml_error(L->err, n, "%s: endpointSelector is required", what);
	if (!mg_yaml_is_null(es) && !mg_yaml_is_null(ns))
		return mg_yaml_error(L->err, key_node(n, "nodeSelector"),
		                     "%s: a rule cannot have both endpointSelector and "
		                     "nodeSelector",
		                     what);
	pathf(w, sizeof(w), "%s.%s", what, ns ? "nodeSelector" : "endpointSelector");
	rc = parse_selector(ns ? ns : es, w, &sel, L->err);
	if (rc)
		return rc;
	rc = add_selector(L, sel, ns ? SCOPE_NONE : SCOPE_SUBJECT, p, ns ? ns : es, &r->subject);
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
	pathf(w, sizeof(w), "%s.log", what);
	rc = parse_log(mg_yaml_get(n, "log"), w, L->err);
	if (rc)
		return rc;
	pathf(w, sizeof(w), "%s.enableDefaultDeny", what);
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
	if (ns != NULL) {
		/*
		 * A host firewall rule: Cilium enforces it on the selected nodes
		 * themselves. The gateway has no subject it could apply to, so the
		 * rule neither allows nor denies anything here (validated, then
		 * emptied), and what the nodes enforce is unchanged.
		 */
		rule_clear_entries(r);
		pathf(w, sizeof(w), "%s.nodeSelector", what);
		return add_warning(L, key_node(n, "nodeSelector"),
		                   "%s: a host firewall rule, enforced by Cilium on the selected "
		                   "nodes and not by the gateway; this rule is skipped",
		                   w);
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

	rc = mg_yaml_check_map(md, "metadata", ok, err);
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

	rc = mg_yaml_check_map(doc, ccnp ? "CiliumClusterwideNetworkPolicy" : "CiliumNetworkPolicy",
	                       ok, L->err);
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
	rc = mg_yaml_check_map(doc, "List", list_ok, L->err);
	if (rc)
		return rc;
	items = mg_yaml_get(doc, "items");
	rc = get_seq(items, "items", POL_MAX_POLICIES, &n, L->err);
	if (rc)
		return rc;
	for (i = 0; i < n; i++) {
		rc = L->report ? doc_tx(L, items->items[i], true)
		               : parse_doc(L, items->items[i], true);
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

/* Lengths of the set's arrays: a load rolls back to them. */
struct mark {
	size_t npol, nrules, nsel, nwarn;
};

static struct mark
set_mark(const struct mg_policy_set *s)
{
	struct mark m = {s->npol, s->nrules, s->nsel, s->nwarn};

	return m;
}

/* Free everything past the given lengths (rollback of a failed load, or free). */
static void
truncate_set(struct mg_policy_set *s, struct mark m)
{
	while (s->nrules > m.nrules)
		rule_clear(&s->rules[--s->nrules]);
	while (s->npol > m.npol)
		policy_clear(&s->pol[--s->npol]);
	while (s->nsel > m.nsel)
		pol_sel_free(s->sel[--s->nsel]);
	while (s->nwarn > m.nwarn) {
		s->nwarn--;
		free(s->warn[s->nwarn].file);
		free(s->warn[s->nwarn].msg);
	}
}

void
mg_policy_set_free(struct mg_policy_set *s)
{
	struct mark zero = {0, 0, 0, 0};

	if (s == NULL)
		return;
	truncate_set(s, zero);
	free(s->rules);
	free(s->pol);
	free(s->sel);
	free(s->warn);
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

/*
 * Split "file:line:col: message" (what mg_yaml_error and friends write)
 * into a problem; a message without a position keeps @p file, and loses
 * its own "file: " prefix (what an I/O or size error of the file starts
 * with), so that the file is named once.
 */
static void
report_error(struct loader *L, const char *file, const char *text)
{
	struct mg_policy_problem pr = {.warning = false, .file = file, .msg = text};
	size_t flen = strlen(file);
	char *copy = strdup(text);
	size_t i;

	if (flen > 0 && strncmp(text, file, flen) == 0 && strncmp(text + flen, ": ", 2) == 0)
		pr.msg = text + flen + 2;
	if (copy != NULL) {
		for (i = 0; copy[i] != '\0'; i++) {
			unsigned line, col;
			int used = 0;

			if (copy[i] != ':' ||
			    sscanf(copy + i, ":%u:%u: %n", &line, &col, &used) != 2 || used == 0)
				continue;
			copy[i] = '\0';
			pr.file = copy;
			pr.line = line;
			pr.col = col;
			pr.msg = copy + i + used;
			break;
		}
	}
	L->errors++;
	L->report(&pr, L->arg);
	free(copy);
}

/* Check mode: one document (or List item) as its own transaction. */
static int
doc_tx(struct loader *L, const struct mg_yaml_node *doc, bool in_list)
{
	struct mark m = set_mark(L->s);
	int loaded = L->loaded;
	int rc = parse_doc(L, doc, in_list);

	if (rc == 0)
		return 0;
	truncate_set(L->s, m);
	L->loaded = loaded;
	if (rc == -ENOMEM)
		return rc; /* out of memory ends the check */
	report_error(L, doc && doc->file ? doc->file : "", L->err->msg);
	return 0;
}

static int
load_yaml(struct loader *L, struct mg_yaml_file *f)
{
	size_t i;
	int rc;

	for (i = 0; i < f->ndocs; i++) {
		rc = L->report ? doc_tx(L, f->docs[i], false) : parse_doc(L, f->docs[i], false);
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
finish(struct loader *L, struct mark m, int rc)
{
	if (rc) {
		truncate_set(L->s, m);
		return mg_errno_set(-rc);
	}
	if (L->loaded > 0 || L->s->nsel != m.nsel)
		L->s->gen++;
	return L->loaded;
}

int
mg_policy_set_load_buf(struct mg_policy_set *s, const char *cluster, const char *name,
                       const void *buf, size_t len, struct mg_error *err)
{
	struct loader L = {.s = s, .cluster = cluster, .err = err};
	struct mg_yaml_file *f;
	struct mark m;
	int rc;

	rc = check_args(s, cluster, err);
	if (rc)
		return rc;
	m = set_mark(s);
	f = mg_yaml_load_buf(name ? name : "<buffer>", buf, len, err);
	if (f == NULL)
		return mg_errno_set(errno ? errno : EINVAL);
	rc = load_yaml(&L, f);
	mg_yaml_free(f);
	return finish(&L, m, rc);
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

	if (f == NULL) {
		rc = -(errno ? errno : EINVAL);
		if (L->report == NULL || rc == -ENOMEM)
			return rc;
		/* check mode: a file that does not parse is one problem; go on */
		report_error(L, path, L->err->msg);
		return 0;
	}
	rc = load_yaml(L, f);
	mg_yaml_free(f);
	return rc;
}

/* Load @p path (a file, or a directory's policy files in name order). */
static int
load_path(struct loader *L, const char *path)
{
	struct mg_error *err = L->err;
	struct dirent **names = NULL;
	struct stat st;
	int rc, n = 0, i;

	if (path == NULL || stat(path, &st) != 0) {
		rc = errno ? errno : EINVAL;
		mg_error_set(err, NULL, 0, 0, "%s: %s", path ? path : "(null)", strerror(rc));
		return -rc;
	}
	if (!S_ISDIR(st.st_mode))
		return load_one_file(L, path);
	n = scandir(path, &names, NULL, alphasort);
	if (n < 0) {
		rc = errno;
		mg_error_set(err, NULL, 0, 0, "%s: %s", path, strerror(rc));
		return -rc;
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
				rc = load_one_file(L, full);
			}
			free(full);
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int
mg_policy_set_load_path(struct mg_policy_set *s, const char *cluster, const char *path,
                        struct mg_error *err)
{
	struct loader L = {.s = s, .cluster = cluster, .err = err};
	struct mark m;
	int rc;

	rc = check_args(s, cluster, err);
	if (rc)
		return rc;
	m = set_mark(s);
	rc = load_path(&L, path);
	return finish(&L, m, rc);
}

static void
warning_problem(const struct pol_warning *w, struct mg_policy_problem *pr)
{
	pr->warning = true;
	pr->file = w->file;
	pr->line = w->line;
	pr->col = w->col;
	pr->msg = w->msg;
}

int
mg_policy_set_check_path(struct mg_policy_set *s, const char *cluster, const char *path,
                         void (*report)(const struct mg_policy_problem *, void *), void *arg)
{
	struct mg_error err = {{0}};
	struct loader L = {.cluster = cluster, .err = &err, .report = report, .arg = arg};
	struct mg_policy_set *scratch = NULL;
	struct mark m;
	size_t i;
	int rc;

	if (report == NULL)
		return mg_errno_set(EINVAL);
	if (s == NULL) {
		scratch = s = mg_policy_set_create();
		if (s == NULL)
			return -ENOMEM;
	}
	L.s = s;
	rc = check_args(s, cluster, &err);
	if (rc == 0) {
		m = set_mark(s);
		rc = load_path(&L, path);
		if (rc == 0) {
			if (L.loaded > 0 || s->nsel != m.nsel)
				s->gen++;
			for (i = m.nwarn; i < s->nwarn; i++) {
				struct mg_policy_problem pr;

				warning_problem(&s->warn[i], &pr);
				report(&pr, arg);
			}
			rc = L.errors;
		} else {
			/* the path cannot be read at all (or memory ran out) */
			truncate_set(s, m);
			report_error(&L, path ? path : "", err.msg);
		}
	} else {
		report_error(&L, path ? path : "", err.msg);
	}
	mg_policy_set_free(scratch);
	return rc;
}

size_t
mg_policy_set_warnings(const struct mg_policy_set *s,
                       void (*fn)(const struct mg_policy_problem *, void *), void *arg)
{
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; fn != NULL && i < s->nwarn; i++) {
		struct mg_policy_problem pr;

		warning_problem(&s->warn[i], &pr);
		fn(&pr, arg);
	}
	return s->nwarn;
}
