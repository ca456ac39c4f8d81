/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Differential libFuzzer target of lib/policy. The input bytes drive a
 * generator: a few pod identities (app a/b/c or none, namespace x/y,
 * cluster c1/c2) and a few CNP/CCNP rules (endpointSelector with
 * matchLabels and one matchExpressions requirement, enableDefaultDeny,
 * ingress/egress allow and deny entries with from/toEndpoints, the
 * entities all/world/cluster, or none, and toPorts with numbers, ranges and
 * protocols). The rules are written out as YAML, loaded and compiled by
 * lib/policy, and mg_policy_verdict() is compared, for every pair of
 * identities (plus one the table does not know), a few protocols and a few
 * ports, with a brute-force evaluator of the same generated structures
 * written from docs/policy.md, after a full compile and again after up to
 * three identities were added, removed or relabelled and the compiled
 * policy was updated incrementally (mg_policy_update_identities): a subject selected by a rule with entries
 * in a direction is default deny there (unless the rule says
 * enableDefaultDeny false), deny wins, a flow needs the source's egress and
 * the destination's ingress, egress is reported first; subjects are
 * identities of the source cluster (and of the namespace, for a CNP); peer
 * selectors are scoped as documented. Left out of the generator: reserved
 * identities, named ports, CIDR rules, ICMP fields, L7 and skipped fields.
 * A disagreement prints the YAML and the flow, then aborts.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                          \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
			        #cond);                                                      \
			abort();                                                             \
		}                                                                            \
	} while (0)

#define MAX_IDS 6
#define MAX_RULES 4
#define MAX_ENTRIES 2
#define MAX_SELS 2
#define MAX_PORTS 2
#define UNKNOWN_ID 424242u

static const char *const apps[] = {"a", "b", "c"};
static const char *const nss[] = {"x", "y"};
static const char *const clusters[] = {"c1", "c2"};

/* Input reader: a byte modulo @p m, 0 once the input is used up. */
struct rd {
	const uint8_t *p;
	size_t n;
};

static unsigned
take(struct rd *r, unsigned m)
{
	unsigned v;

	if (r->n == 0)
		return 0;
	v = *r->p++;
	r->n--;
	return v % m;
}

struct ident {
	uint32_t id;
	int app; /* 0..2, -1: no app label */
	int ns;  /* 0..1 */
	int cl;  /* 0 (c1, the source cluster) or 1 */
};

/* One LabelSelector; -1 = requirement absent. */
struct sel {
	int app;     /* matchLabels app */
	int op;      /* matchExpressions on app: 0 In, 1 NotIn, 2 Exists, 3 DoesNotExist */
	unsigned vs; /* values of In/NotIn, bit per app (never 0) */
	int ns;      /* matchLabels namespace (positive) */
	int ns_neg;  /* namespace NotIn [ns] (negative) */
	int cl;      /* matchLabels cluster (positive) */
	int cl_neg;  /* cluster NotIn [cl] */
	bool prefix; /* spell the namespace/cluster keys with "k8s:" */
};

enum {
	PEER_NONE,
	PEER_EP,
	PEER_ENT
};
enum {
	ENT_ALL = 1,
	ENT_WORLD = 2,
	ENT_CLUSTER = 4
};

struct port {
	unsigned lo, hi;
	bool has_end;
	int proto; /* 0 absent, 1 ANY, 2 TCP, 3 UDP, 4 SCTP */
};

struct entry {
	int peer;
	unsigned nsel;
	struct sel sels[MAX_SELS];
	unsigned ents;
	unsigned nports;
	struct port ports[MAX_PORTS];
};

struct rule {
	bool ccnp;
	int ns;
	struct sel subj;
	int edd[2];       /* enableDefaultDeny per direction (0 ingress, 1 egress): -1 absent */
	unsigned n[2][2]; /* [dir][deny] */
	struct entry e[2][2][MAX_ENTRIES];
};

struct gen {
	unsigned nids;
	struct ident ids[MAX_IDS + 1]; /* the last one: unknown to the table */
	unsigned nrules;
	struct rule rules[MAX_RULES];
};

static void
gen_sel(struct rd *r, struct sel *s, bool peer)
{
	unsigned f = take(r, 256);

	memset(s, 0, sizeof(*s));
	s->app = (f & 1) ? (int)take(r, 3) : -1;
	s->op = (f & 2) ? (int)take(r, 4) : -1;
	s->vs = 1u + take(r, 7);
	s->ns = (f & 4) ? (int)take(r, 2) : -1;
	s->ns_neg = (peer && (f & 8)) ? (int)take(r, 2) : -1;
	s->cl = (f & 16) ? (int)take(r, 2) : -1;
	s->cl_neg = (peer && (f & 32)) ? (int)take(r, 2) : -1;
	s->prefix = (f & 64) != 0;
}

static void
gen_entry(struct rd *r, struct entry *e)
{
	static const unsigned lows[] = {0, 53, 80, 443, 8080};
	static const unsigned ends[] = {81, 90, 444, 8443, 65535};
	unsigned i;

	memset(e, 0, sizeof(*e));
	e->peer = (int)take(r, 3);
	if (e->peer == PEER_EP) {
		e->nsel = 1 + take(r, MAX_SELS);
		for (i = 0; i < e->nsel; i++)
			gen_sel(r, &e->sels[i], true);
	} else if (e->peer == PEER_ENT) {
		e->ents = 1 + take(r, 7);
	}
	e->nports = take(r, MAX_PORTS + 1);
	for (i = 0; i < e->nports; i++) {
		struct port *p = &e->ports[i];

		p->lo = lows[take(r, 5)];
		p->has_end = p->lo != 0 && take(r, 2);
		p->hi = p->lo == 0 ? 65535 : p->lo;
		if (p->has_end) {
			p->hi = ends[take(r, 5)];
			if (p->hi < p->lo)
				p->hi = 65535;
		}
		p->proto = (int)take(r, 5);
	}
}

static void
generate(struct rd *r, struct gen *g)
{
	unsigned i, d, k, j;

	memset(g, 0, sizeof(*g));
	g->nids = 1 + take(r, MAX_IDS);
	for (i = 0; i < MAX_IDS; i++) {
		struct ident *id = &g->ids[i];

		id->app = (int)take(r, 4) - 1;
		id->ns = (int)take(r, 2);
		id->cl = take(r, 4) == 3 ? 1 : 0;
		id->id = (id->cl ? 0x20100u : 0x10100u) + i;
		if (i >= g->nids)
			id->app = -2; /* not in the table (yet) */
	}
	g->ids[MAX_IDS].id = UNKNOWN_ID;
	g->ids[MAX_IDS].app = -2; /* no labels at all */
	g->nrules = 1 + take(r, MAX_RULES);
	for (i = 0; i < g->nrules; i++) {
		struct rule *ru = &g->rules[i];
		unsigned total = 0;

		ru->ccnp = take(r, 3) == 0;
		ru->ns = (int)take(r, 2);
		gen_sel(r, &ru->subj, false);
		ru->edd[0] = (int)take(r, 4) - 2;
		ru->edd[1] = (int)take(r, 4) - 2;
		if (ru->edd[0] < -1)
			ru->edd[0] = -1;
		if (ru->edd[1] < -1)
			ru->edd[1] = -1;
		for (d = 0; d < 2; d++)
			for (k = 0; k < 2; k++) {
				ru->n[d][k] = take(r, MAX_ENTRIES + 2);
				if (ru->n[d][k] > MAX_ENTRIES)
					ru->n[d][k] = 0;
				for (j = 0; j < ru->n[d][k]; j++)
					gen_entry(r, &ru->e[d][k][j]);
				total += ru->n[d][k];
			}
		if (total == 0)
			ru->n[0][0] = 1; /* ingress: [{}] (a zeroed entry) */
	}
}

/* ---- YAML ---- */

struct out {
	char *buf;
	size_t len, cap;
};

static void __attribute__((format(printf, 2, 3))) put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	CHECK(n >= 0 && (size_t)n < o->cap - o->len);
	o->len += (size_t)n;
}

static void
put_sel(struct out *o, const struct sel *s)
{
	const char *pre = s->prefix ? "k8s:" : "";
	unsigned i;

	put(o, "{matchLabels: {");
	if (s->app >= 0)
		put(o, "app: %s, ", apps[s->app]);
	if (s->ns >= 0)
		put(o, "%sio.kubernetes.pod.namespace: %s, ", pre, nss[s->ns]);
	if (s->cl >= 0)
		put(o, "%sio.cilium.k8s.policy.cluster: %s, ", pre, clusters[s->cl]);
	put(o, "}, matchExpressions: [");
	if (s->op >= 0) {
		static const char *const ops[] = {"In", "NotIn", "Exists", "DoesNotExist"};

		put(o, "{key: app, operator: %s", ops[s->op]);
		if (s->op <= 1) {
			put(o, ", values: [");
			for (i = 0; i < 3; i++)
				if (s->vs & (1u << i))
					put(o, "%s, ", apps[i]);
			put(o, "]");
		}
		put(o, "}, ");
	}
	if (s->ns_neg >= 0)
		put(o, "{key: %sio.kubernetes.pod.namespace, operator: NotIn, values: [%s]}, ", pre,
		    nss[s->ns_neg]);
	if (s->cl_neg >= 0)
		put(o, "{key: %sio.cilium.k8s.policy.cluster, operator: NotIn, values: [%s]}, ",
		    pre, clusters[s->cl_neg]);
	put(o, "]}");
}

static void
put_entry(struct out *o, const struct entry *e, unsigned dir)
{
	static const char *const protos[] = {NULL, "ANY", "TCP", "UDP", "SCTP"};
	static const char *const ents[] = {"all", "world", "cluster"};
	unsigned i;

	put(o, "  - {");
	if (e->peer == PEER_EP) {
		put(o, "%s: [", dir ? "toEndpoints" : "fromEndpoints");
		for (i = 0; i < e->nsel; i++) {
			put_sel(o, &e->sels[i]);
			put(o, ", ");
		}
		put(o, "], ");
	} else if (e->peer == PEER_ENT) {
		put(o, "%s: [", dir ? "toEntities" : "fromEntities");
		for (i = 0; i < 3; i++)
			if (e->ents & (1u << i))
				put(o, "%s, ", ents[i]);
		put(o, "], ");
	}
	if (e->nports) {
		put(o, "toPorts: [{ports: [");
		for (i = 0; i < e->nports; i++) {
			const struct port *p = &e->ports[i];

			put(o, "{port: \"%u\"", p->lo);
			if (p->has_end)
				put(o, ", endPort: %u", p->hi);
			if (p->proto)
				put(o, ", protocol: %s", protos[p->proto]);
			put(o, "}, ");
		}
		put(o, "]}]");
	}
	put(o, "}\n");
}

static void
to_yaml(const struct gen *g, struct out *o)
{
	static const char *const secs[2][2] = {{"ingress", "ingressDeny"},
	                                       {"egress", "egressDeny"}};
	unsigned i, d, k, j;

	for (i = 0; i < g->nrules; i++) {
		const struct rule *ru = &g->rules[i];

		put(o, "---\napiVersion: cilium.io/v2\n");
		put(o, "kind: %s\n",
		    ru->ccnp ? "CiliumClusterwideNetworkPolicy" : "CiliumNetworkPolicy");
		put(o, "metadata:\n  name: p%u\n", i);
		if (!ru->ccnp)
			put(o, "  namespace: %s\n", nss[ru->ns]);
		put(o, "spec:\n  endpointSelector: ");
		put_sel(o, &ru->subj);
		put(o, "\n");
		if (ru->edd[0] >= 0 || ru->edd[1] >= 0) {
			put(o, "  enableDefaultDeny: {");
			if (ru->edd[0] >= 0)
				put(o, "ingress: %s, ", ru->edd[0] ? "true" : "false");
			if (ru->edd[1] >= 0)
				put(o, "egress: %s, ", ru->edd[1] ? "true" : "false");
			put(o, "}\n");
		}
		for (d = 0; d < 2; d++)
			for (k = 0; k < 2; k++) {
				if (ru->n[d][k] == 0)
					continue;
				put(o, "  %s:\n", secs[d][k]);
				for (j = 0; j < ru->n[d][k]; j++)
					put_entry(o, &ru->e[d][k][j], d);
			}
	}
}

/* ---- reference evaluator ---- */

static bool
sel_raw(const struct sel *s, const struct ident *id)
{
	if (id->app == -2)
		return s->app < 0 && s->op < 0 && s->ns < 0 && s->cl < 0 && s->ns_neg < 0 &&
		       s->cl_neg < 0;
	if (s->app >= 0 && id->app != s->app)
		return false;
	if (s->ns >= 0 && id->ns != s->ns)
		return false;
	if (s->cl >= 0 && id->cl != s->cl)
		return false;
	if (s->ns_neg >= 0 && id->ns == s->ns_neg)
		return false;
	if (s->cl_neg >= 0 && id->cl == s->cl_neg)
		return false;
	switch (s->op) {
	case 0:
		return id->app >= 0 && (s->vs & (1u << id->app));
	case 1:
		return id->app < 0 || !(s->vs & (1u << id->app));
	case 2:
		return id->app >= 0;
	case 3:
		return id->app < 0;
	default:
		return true;
	}
}

static bool
subject(const struct rule *ru, const struct ident *id)
{
	if (id->app == -2 || id->cl != 0)
		return false;
	if (!ru->ccnp && id->ns != ru->ns)
		return false;
	return sel_raw(&ru->subj, id);
}

static bool
peer_sel(const struct rule *ru, const struct sel *s, const struct ident *id, bool dlc)
{
	if (!sel_raw(s, id))
		return false;
	if (id->app == -2)
		return false; /* every scoped selector needs a namespace label */
	/* namespace: positive -> as is; negative only or CCNP -> exists; else = own */
	if (s->ns < 0 && s->ns_neg < 0 && !ru->ccnp && id->ns != ru->ns)
		return false;
	/* cluster: the same with the source cluster (c1), CCNP included */
	if (dlc && s->cl < 0 && s->cl_neg < 0 && id->cl != 0)
		return false;
	return true;
}

static bool
entry_match(const struct rule *ru, const struct entry *e, const struct ident *peer, uint8_t proto,
            uint16_t port, bool dlc)
{
	unsigned i;

	if (e->peer == PEER_NONE && e->nports == 0)
		return false;
	if (e->peer == PEER_EP) {
		bool any = false;

		for (i = 0; i < e->nsel && !any; i++)
			any = peer_sel(ru, &e->sels[i], peer, dlc);
		if (!any)
			return false;
	} else if (e->peer == PEER_ENT) {
		bool any = (e->ents & ENT_ALL) != 0;

		if ((e->ents & ENT_CLUSTER) && peer->app != -2 && peer->cl == 0)
			any = true;
		if (!any)
			return false;
	}
	if (e->nports == 0)
		return true;
	for (i = 0; i < e->nports; i++) {
		const struct port *p = &e->ports[i];
		bool pm;

		switch (p->proto) {
		case 2:
			pm = proto == 6;
			break;
		case 3:
			pm = proto == 17;
			break;
		case 4:
			pm = proto == 132;
			break;
		default:
			pm = proto == 6 || proto == 17 || proto == 132;
		}
		if (pm && port >= p->lo && port <= p->hi)
			return true;
	}
	return false;
}

/* Does @p x's side of direction @p d (0 ingress, 1 egress) allow the flow with @p peer? */
static bool
side_allows(const struct gen *g, unsigned d, const struct ident *x, const struct ident *peer,
            uint8_t proto, uint16_t port, const struct mg_policy_params *pp)
{
	bool enforced = pp->enforcement == MG_ENFORCE_ALWAYS, allowed = false;
	unsigned i, j;

	for (i = 0; i < g->nrules; i++) {
		const struct rule *ru = &g->rules[i];

		if (!subject(ru, x))
			continue;
		if (ru->n[d][0] + ru->n[d][1] > 0 && ru->edd[d] != 0)
			enforced = true;
		for (j = 0; j < ru->n[d][1]; j++)
			if (entry_match(ru, &ru->e[d][1][j], peer, proto, port,
			                pp->default_local_cluster))
				return false;
		for (j = 0; j < ru->n[d][0]; j++)
			if (entry_match(ru, &ru->e[d][0][j], peer, proto, port,
			                pp->default_local_cluster))
				allowed = true;
	}
	return allowed || !enforced;
}

static enum mg_verdict
reference(const struct gen *g, const struct ident *s, const struct ident *t, uint8_t proto,
          uint16_t port, const struct mg_policy_params *pp)
{
	if (!side_allows(g, 1, s, t, proto, port, pp))
		return MG_VERDICT_DENY_EGRESS;
	if (!side_allows(g, 0, t, s, proto, port, pp))
		return MG_VERDICT_DENY_INGRESS;
	return MG_VERDICT_ALLOW;
}

static void put_ident(struct mg_identity_table *t, const struct ident *id);

static struct mg_identity_table *
make_table(const struct gen *g)
{
	struct mg_identity_table *t = mg_identity_table_create(MG_CLUSTER_MODE_255);
	unsigned i;

	CHECK(t != NULL);
	for (i = 0; i < MAX_IDS; i++)
		if (g->ids[i].app != -2)
			put_ident(t, &g->ids[i]);
	return t;
}

static void
put_ident(struct mg_identity_table *t, const struct ident *id)
{
	struct mg_labels ls = MG_LABELS_INIT;
	struct mg_error err = {{0}};
	char str[256];

	snprintf(str, sizeof(str),
	         "%s%s%sk8s:io.kubernetes.pod.namespace=%s;"
	         "k8s:io.cilium.k8s.policy.cluster=%s",
	         id->app >= 0 ? "k8s:app=" : "", id->app >= 0 ? apps[id->app] : "",
	         id->app >= 0 ? ";" : "", nss[id->ns], clusters[id->cl]);
	CHECK(mg_labels_parse(&ls, str, &err) == 0);
	CHECK(mg_identity_table_put(t, id->id, &ls, (unsigned)id->cl + 1) >= 0);
	mg_labels_clear(&ls);
}

static void
dump(const struct gen *g, const char *yaml, const struct ident *s, const struct ident *t,
     uint8_t proto, uint16_t port, const struct mg_policy_params *pp, enum mg_verdict got,
     enum mg_verdict want)
{
	unsigned i;

	fprintf(stderr, "policy_diff: disagreement\n--- identities\n");
	for (i = 0; i < MAX_IDS; i++)
		if (g->ids[i].app != -2)
			fprintf(stderr, "%u: app=%s ns=%s cluster=%s\n", g->ids[i].id,
			        g->ids[i].app >= 0 ? apps[g->ids[i].app] : "-", nss[g->ids[i].ns],
			        clusters[g->ids[i].cl]);
	fprintf(stderr, "--- policies (cluster c1)\n%s\n", yaml);
	fprintf(stderr,
	        "--- flow %u -> %u proto %u port %u, enforcement %d, default_local_cluster "
	        "%d\n--- gateway %d, reference %d\n",
	        s->id, t->id, proto, port, (int)pp->enforcement, (int)pp->default_local_cluster,
	        (int)got, (int)want);
}

/* Every flow between the generated identities (and absent or unknown ones). */
static void
compare_all(const struct gen *g, const struct mg_policy *pol, const struct mg_policy_params *pp,
            const char *yaml, const char *what)
{
	static const uint8_t protos[] = {6, 17, 132, 1, 47};
	static const uint16_t ports[] = {0, 1, 53, 80, 81, 85, 90, 91, 443, 444, 8080, 8443, 9000};
	unsigned i, j, k, l;

	for (i = 0; i <= MAX_IDS; i++)
		for (j = 0; j <= MAX_IDS; j++)
			for (k = 0; k < sizeof(protos); k++)
				for (l = 0; l < sizeof(ports) / sizeof(ports[0]); l++) {
					const struct ident *a = &g->ids[i], *b = &g->ids[j];
					enum mg_verdict got, want;

					got = mg_policy_verdict(pol, a->id, b->id, protos[k],
					                        ports[l]);
					want = reference(g, a, b, protos[k], ports[l], pp);
					if (got != want) {
						fprintf(stderr, "policy_diff: %s\n", what);
						dump(g, yaml, a, b, protos[k], ports[l], pp, got,
						     want);
						abort();
					}
				}
}

/*
 * Identity changes after the compile: each of up to three slots is added
 * (absent), removed or relabelled (present, same cluster); the policy is
 * then updated incrementally and must match the reference on the new set.
 */
static void
mutate_and_update(const struct gen *g0, struct mg_identity_table *ids,
                  const struct mg_policy_set *s, const struct mg_policy *pol,
                  const struct mg_policy_params *pp, const uint8_t *mut, const char *yaml)
{
	struct gen g = *g0;
	struct mg_error err = {{0}};
	uint32_t changed[3];
	unsigned n = 0, i, done = 0;
	struct mg_policy *upd;

	for (i = 0; i < 3; i++) {
		unsigned slot = mut[i] % MAX_IDS;
		struct ident *id = &g.ids[slot];

		if (done & (1u << slot))
			continue;
		done |= 1u << slot;
		if (id->app != -2 && (mut[i] & 0x80)) {
			CHECK(mg_identity_table_del(ids, id->id) == 0);
			id->app = -2;
		} else {
			id->app = (int)((mut[i] >> 3) % 4) - 1;
			id->ns = (mut[i] >> 5) & 1;
			put_ident(ids, id);
		}
		changed[n++] = id->id;
	}
	upd = mg_policy_update_identities(pol, s, ids, changed, n, &err);
	CHECK(upd != NULL);
	compare_all(&g, upd, pp, yaml, "after an incremental identity update");
	mg_policy_free(upd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct mg_policy_params params[] = {
	        {MG_ENFORCE_DEFAULT, true, 1},
	        {MG_ENFORCE_DEFAULT, false, 2},
	        {MG_ENFORCE_ALWAYS, true, 3},
	};
	static char yaml[1 << 16];
	struct rd r = {data, size};
	struct out o = {yaml, 0, sizeof(yaml)};
	struct mg_error err = {{0}};
	struct mg_policy_set *s;
	uint8_t mut[3];
	struct gen g;
	unsigned pi;

	if (size > 4096)
		return 0;
	generate(&r, &g);
	for (pi = 0; pi < 3; pi++)
		mut[pi] = (uint8_t)take(&r, 256);
	to_yaml(&g, &o);
	s = mg_policy_set_create();
	CHECK(s != NULL);
	if (mg_policy_set_load_buf(s, "c1", "diff.yaml", yaml, o.len, &err) < 0) {
		fprintf(stderr, "policy_diff: generated policy refused: %s\n%s\n", err.msg, yaml);
		abort();
	}
	for (pi = 0; pi < sizeof(params) / sizeof(params[0]); pi++) {
		struct mg_identity_table *ids = make_table(&g);
		struct mg_policy *pol = mg_policy_compile(s, ids, &params[pi], &err);

		CHECK(pol != NULL);
		compare_all(&g, pol, &params[pi], yaml, "after a full compile");
		mutate_and_update(&g, ids, s, pol, &params[pi], mut, yaml);
		mg_policy_free(pol);
		mg_identity_table_free(ids);
	}
	mg_policy_set_free(s);
	return 0;
}
