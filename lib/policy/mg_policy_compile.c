/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Policy compiler and the data-path verdict. The compiler turns the rule
 * AST and the identity table into tables whose lookup cost does not depend
 * on the number of rules or identities:
 *
 *   1. selector cache: every distinct selector (after scoping) is evaluated
 *      once per identity, giving a bit matrix identity x selector;
 *   2. classes: per direction, identities with the same set of matching
 *      subject selectors share a subject class, and identities with the
 *      same set of matching peer selectors share a peer class;
 *   3. per direction a table [subject class][peer class] -> port set, where
 *      port sets are interned: flags for "every protocol allowed / denied"
 *      (L3-only entries) and, per TCP/UDP/SCTP, an allow and a deny bitmap
 *      of 65536 bits, themselves interned so equal bitmaps share memory;
 *   4. identity -> (classes) through an open-addressing hash table.
 *
 * The result is immutable: workers read it concurrently without locks, and
 * a reload builds a new one. See docs/policy-engine.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_priv.h"

#define BM_WORDS (65536 / 64)
#define PS_ALLOW_ALL 1u
#define PS_DENY_ALL 2u

/* Indices of the per-identity classes in struct pol_slot. */
#define CLS_SUB(dir) (dir)
#define CLS_PEER(dir) (2 + (dir))

struct pol_slot {
	uint32_t key; /* identity + 1; 0: empty */
	uint16_t cls[4];
};

struct pol_portset {
	uint32_t flags;
	uint32_t allow[PIDX_N]; /* bitmap indices; 0 is the empty bitmap */
	uint32_t deny[PIDX_N];
};

struct pol_dir {
	uint32_t nsc, npc;
	uint8_t *enforced; /* per subject class */
	uint32_t *cells;   /* nsc * npc port set indices */
};

struct mg_policy {
	uint64_t revision;
	size_t memory;
	bool never;
	uint32_t mask; /* slots - 1 */
	struct pol_slot *slots;
	struct pol_slot nolabels; /* classes of unknown identities */
	struct pol_dir dir[2];
	uint32_t nps;
	struct pol_portset *ps;
	uint32_t nbm;
	uint64_t *bm; /* nbm * BM_WORDS */
};

/* ---- the data path ---- */

static inline const struct pol_slot *
slot_find(const struct mg_policy *pol, uint32_t id)
{
	uint32_t key = id + 1, i = (key * 0x9e3779b1u) & pol->mask;

	for (;;) {
		const struct pol_slot *sl = &pol->slots[i];

		if (sl->key == key)
			return sl;
		if (sl->key == 0)
			return &pol->nolabels;
		i = (i + 1) & pol->mask;
	}
}

static inline bool
bm_test(const struct mg_policy *pol, uint32_t bm, uint16_t port)
{
	return (pol->bm[(size_t)bm * BM_WORDS + (port >> 6)] >> (port & 63)) & 1u;
}

static inline bool
dir_allows(const struct mg_policy *pol, unsigned dir, uint16_t sc, uint16_t pc, int pi,
           uint16_t port)
{
	const struct pol_dir *d = &pol->dir[dir];
	const struct pol_portset *ps = &pol->ps[d->cells[(size_t)sc * d->npc + pc]];

	if (ps->flags & PS_DENY_ALL)
		return false;
	if (pi >= 0 && bm_test(pol, ps->deny[pi], port))
		return false;
	if (!d->enforced[sc] || (ps->flags & PS_ALLOW_ALL))
		return true;
	return pi >= 0 && bm_test(pol, ps->allow[pi], port);
}

enum mg_verdict
mg_policy_verdict(const struct mg_policy *pol, uint32_t src, uint32_t dst, uint8_t proto,
                  uint16_t dport)
{
	const struct pol_slot *s, *d;
	int pi;

	if (pol->never)
		return MG_VERDICT_ALLOW;
	s = slot_find(pol, src);
	d = slot_find(pol, dst);
	pi = pol_proto_index(proto);
	if (!dir_allows(pol, MG_DIR_EGRESS, s->cls[CLS_SUB(MG_DIR_EGRESS)],
	                d->cls[CLS_PEER(MG_DIR_EGRESS)], pi, dport))
		return MG_VERDICT_DENY_EGRESS;
	if (!dir_allows(pol, MG_DIR_INGRESS, d->cls[CLS_SUB(MG_DIR_INGRESS)],
	                s->cls[CLS_PEER(MG_DIR_INGRESS)], pi, dport))
		return MG_VERDICT_DENY_INGRESS;
	return MG_VERDICT_ALLOW;
}

uint64_t
mg_policy_revision(const struct mg_policy *pol)
{
	return pol ? pol->revision : 0;
}

size_t
mg_policy_memory(const struct mg_policy *pol)
{
	return pol ? pol->memory : 0;
}

void
mg_policy_free(struct mg_policy *pol)
{
	unsigned d;

	if (pol == NULL)
		return;
	for (d = 0; d < 2; d++) {
		free(pol->dir[d].enforced);
		free(pol->dir[d].cells);
	}
	free(pol->slots);
	free(pol->ps);
	free(pol->bm);
	free(pol);
}

/* ---- interning: byte strings -> dense indices ---- */

struct ikey {
	uint64_t h;
	size_t len;
	void *data;
};

struct itab {
	uint32_t *slot; /* index + 1; 0 empty */
	size_t cap;     /* power of two */
	size_t n;
	struct ikey *keys;
	size_t kcap;
};

static uint64_t
hash_bytes(const void *p, size_t len)
{
	const unsigned char *c = p;
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= c[i];
		h *= 0x100000001b3ull;
	}
	return h ^ (h >> 29);
}

static void
itab_free(struct itab *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		free(t->keys[i].data);
	free(t->keys);
	free(t->slot);
	memset(t, 0, sizeof(*t));
}

static int
itab_grow(struct itab *t)
{
	size_t cap = t->cap ? t->cap * 2 : 64, i, j;
	uint32_t *slot = calloc(cap, sizeof(*slot));

	if (slot == NULL)
		return -ENOMEM;
	for (i = 0; i < t->n; i++) {
		j = t->keys[i].h & (cap - 1);
		while (slot[j] != 0)
			j = (j + 1) & (cap - 1);
		slot[j] = (uint32_t)i + 1;
	}
	free(t->slot);
	t->slot = slot;
	t->cap = cap;
	return 0;
}

/* Index of @p key, added if new (*isnew then true). 0 or -ENOMEM. */
static int
itab_intern(struct itab *t, const void *key, size_t len, uint32_t *idx, bool *isnew)
{
	uint64_t h;
	size_t j;

	if (len == 0)
		key = ""; /* an empty range list may come with a NULL pointer */
	h = hash_bytes(key, len);

	if ((t->n + 1) * 2 > t->cap && itab_grow(t) != 0)
		return -ENOMEM;
	for (j = h & (t->cap - 1); t->slot[j] != 0; j = (j + 1) & (t->cap - 1)) {
		const struct ikey *k = &t->keys[t->slot[j] - 1];

		if (k->h == h && k->len == len && memcmp(k->data, key, len) == 0) {
			*idx = t->slot[j] - 1;
			if (isnew)
				*isnew = false;
			return 0;
		}
	}
	if (t->n == t->kcap) {
		size_t kcap = t->kcap ? t->kcap * 2 : 64;
		void *v = realloc(t->keys, kcap * sizeof(*t->keys));

		if (v == NULL)
			return -ENOMEM;
		t->keys = v;
		t->kcap = kcap;
	}
	t->keys[t->n].data = malloc(len ? len : 1);
	if (t->keys[t->n].data == NULL)
		return -ENOMEM;
	memcpy(t->keys[t->n].data, key, len);
	t->keys[t->n].h = h;
	t->keys[t->n].len = len;
	t->slot[j] = (uint32_t)t->n + 1;
	*idx = (uint32_t)t->n++;
	if (isnew)
		*isnew = true;
	return 0;
}

/* ---- compile state ---- */

struct ident {
	uint32_t id;
	const struct mg_labels *ls;
};

struct range {
	uint32_t lo, hi;
};

struct rvec {
	struct range *v;
	size_t n, cap;
};

/* What one (subject class, peer class) cell accumulates. */
struct acc {
	uint32_t flags;
	struct rvec r[2][PIDX_N]; /* [0]: allow, [1]: deny */
};

struct compiler {
	const struct mg_policy_set *s;
	const struct mg_policy_params *p;
	struct mg_error *err;
	struct mg_policy *pol;

	size_t nid; /* identities, plus one for "no labels" at index nid - 1 */
	struct ident *ids;

	uint32_t *dsel; /* set selector -> distinct selector */
	size_t nd;
	const struct selector **drep; /* distinct -> a representative */
	size_t words;                 /* per identity row of the match matrix */
	uint64_t *match;              /* nid x words */

	struct itab portsets, bitmaps;
	struct acc acc;
	size_t ps_cap;
};

static inline bool
bit(const uint64_t *row, size_t i)
{
	return (row[i >> 6] >> (i & 63)) & 1u;
}

static inline void
bit_set(uint64_t *row, size_t i)
{
	row[i >> 6] |= 1ull << (i & 63);
}

static int
collect_ident(const struct mg_identity *e, void *arg)
{
	struct compiler *c = arg;

	c->ids[c->nid].id = e->id;
	c->ids[c->nid].ls = &e->labels;
	c->nid++;
	return 0;
}

static int
oom(struct compiler *c)
{
	mg_error_set(c->err, NULL, 0, 0, "policy compile: out of memory");
	return -ENOMEM;
}

/* Steps 1 and 2 of the header comment: distinct selectors and the match matrix. */
static int
build_selector_cache(struct compiler *c, const struct mg_labels *empty)
{
	const struct mg_policy_set *s = c->s;
	bool dlc = c->p->default_local_cluster;
	struct itab canon = {0};
	size_t i, d, total;
	int rc = 0;

	c->dsel = calloc(s->nsel ? s->nsel : 1, sizeof(*c->dsel));
	c->drep = calloc(s->nsel ? s->nsel : 1, sizeof(*c->drep));
	if (c->dsel == NULL || c->drep == NULL)
		return oom(c);
	for (i = 0; i < s->nsel; i++) {
		const struct selector *sel = s->sel[i];
		size_t len = strlen(sel->canon);
		char *key = malloc(len + 80);
		bool isnew;
		uint32_t idx;

		if (key == NULL) {
			rc = -ENOMEM;
			break;
		}
		memcpy(key, sel->canon, len);
		/* the cluster scope in force is part of what the selector means */
		if (pol_sel_cluster_active(sel, dlc))
			len += (size_t)snprintf(
			        key + len, 80, "|C%c%zu:%s", sel->cl == SELC_EQ ? 'Q' : 'E',
			        strlen(sel->cluster), sel->cl == SELC_EQ ? sel->cluster : "");
		rc = itab_intern(&canon, key, len, &idx, &isnew);
		free(key);
		if (rc)
			break;
		c->dsel[i] = idx;
		if (isnew)
			c->drep[idx] = sel;
	}
	c->nd = canon.n;
	itab_free(&canon);
	if (rc)
		return oom(c);

	c->words = (c->nd + 63) / 64;
	total = c->nid * (c->words ? c->words : 1);
	c->match = calloc(total ? total : 1, sizeof(*c->match));
	if (c->match == NULL)
		return oom(c);
	for (i = 0; i < c->nid; i++) {
		const struct mg_labels *ls = c->ids[i].ls ? c->ids[i].ls : empty;
		uint64_t *row = c->match + i * c->words;

		for (d = 0; d < c->nd; d++)
			if (pol_sel_match(c->drep[d], ls, dlc))
				bit_set(row, d);
	}
	return 0;
}

/* ---- port set accumulation ---- */

static int
rvec_push(struct rvec *v, uint32_t lo, uint32_t hi)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 16;
		void *p = realloc(v->v, cap * sizeof(*v->v));

		if (p == NULL)
			return -ENOMEM;
		v->v = p;
		v->cap = cap;
	}
	v->v[v->n].lo = lo;
	v->v[v->n].hi = hi;
	v->n++;
	return 0;
}

static int
cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return x->hi < y->hi ? -1 : x->hi > y->hi;
}

/* Sort and merge overlapping or adjacent ranges: one canonical form per port set. */
static void
rvec_normalize(struct rvec *v)
{
	size_t i, o = 0;

	if (v->n < 2)
		return;
	qsort(v->v, v->n, sizeof(*v->v), cmp_range);
	for (i = 1; i < v->n; i++) {
		if (v->v[i].lo <= v->v[o].hi + 1) {
			if (v->v[i].hi > v->v[o].hi)
				v->v[o].hi = v->v[i].hi;
		} else {
			v->v[++o] = v->v[i];
		}
	}
	v->n = o + 1;
}

static int
acc_add(struct acc *a, const struct entry *e, bool deny)
{
	size_t i;
	unsigned pi;

	if (e->nports == 0) {
		a->flags |= deny ? PS_DENY_ALL : PS_ALLOW_ALL;
		return 0;
	}
	for (i = 0; i < e->nports; i++)
		for (pi = 0; pi < PIDX_N; pi++)
			if ((e->ports[i].protos & (1u << pi)) &&
			    rvec_push(&a->r[deny][pi], e->ports[i].lo, e->ports[i].hi) != 0)
				return -ENOMEM;
	return 0;
}

/* Intern one range list as a bitmap; the empty list is bitmap 0. */
static int
intern_bitmap(struct compiler *c, const struct rvec *v, uint32_t *idx)
{
	struct mg_policy *pol = c->pol;
	bool isnew;
	size_t i;
	uint32_t p;
	int rc;

	rc = itab_intern(&c->bitmaps, v->v, v->n * sizeof(*v->v), idx, &isnew);
	if (rc || !isnew)
		return rc;
	if (*idx >= pol->nbm) {
		size_t n = pol->nbm ? pol->nbm * 2 : 4;
		uint64_t *bm = realloc(pol->bm, n * BM_WORDS * sizeof(*bm));

		if (bm == NULL)
			return -ENOMEM;
		pol->bm = bm;
		pol->nbm = (uint32_t)n;
	}
	memset(pol->bm + (size_t)*idx * BM_WORDS, 0, BM_WORDS * sizeof(uint64_t));
	for (i = 0; i < v->n; i++)
		for (p = v->v[i].lo; p <= v->v[i].hi; p++)
			pol->bm[(size_t)*idx * BM_WORDS + (p >> 6)] |= 1ull << (p & 63);
	return 0;
}

/* Turn the accumulator into a port set index (interned). */
static int
acc_intern(struct compiler *c, uint32_t *out)
{
	struct acc *a = &c->acc;
	struct mg_policy *pol = c->pol;
	uint32_t *key, idx;
	size_t len = 1, k, pi, i;
	bool isnew;
	int rc;

	/* what a flag makes irrelevant is dropped, so equal behaviour interns equal */
	if (a->flags & PS_DENY_ALL) {
		a->flags = PS_DENY_ALL;
		for (k = 0; k < 2; k++)
			for (pi = 0; pi < PIDX_N; pi++)
				a->r[k][pi].n = 0;
	} else if (a->flags & PS_ALLOW_ALL) {
		for (pi = 0; pi < PIDX_N; pi++)
			a->r[0][pi].n = 0;
	}
	for (k = 0; k < 2; k++)
		for (pi = 0; pi < PIDX_N; pi++) {
			rvec_normalize(&a->r[k][pi]);
			len += 1 + 2 * a->r[k][pi].n;
		}
	key = malloc(len * sizeof(*key));
	if (key == NULL)
		return -ENOMEM;
	len = 0;
	key[len++] = a->flags;
	for (k = 0; k < 2; k++)
		for (pi = 0; pi < PIDX_N; pi++) {
			key[len++] = (uint32_t)a->r[k][pi].n;
			for (i = 0; i < a->r[k][pi].n; i++) {
				key[len++] = a->r[k][pi].v[i].lo;
				key[len++] = a->r[k][pi].v[i].hi;
			}
		}
	rc = itab_intern(&c->portsets, key, len * sizeof(*key), &idx, &isnew);
	free(key);
	if (rc)
		return rc;
	if (isnew) {
		struct pol_portset *ps;

		if (idx >= c->ps_cap) {
			size_t n = c->ps_cap ? c->ps_cap * 2 : 16;
			void *v = realloc(pol->ps, n * sizeof(*pol->ps));

			if (v == NULL)
				return -ENOMEM;
			pol->ps = v;
			c->ps_cap = n;
		}
		ps = &pol->ps[idx];
		memset(ps, 0, sizeof(*ps));
		ps->flags = a->flags;
		for (pi = 0; pi < PIDX_N; pi++) {
			rc = intern_bitmap(c, &a->r[0][pi], &ps->allow[pi]);
			if (rc == 0)
				rc = intern_bitmap(c, &a->r[1][pi], &ps->deny[pi]);
			if (rc)
				return rc;
		}
		pol->nps = idx + 1;
	}
	*out = idx;
	return 0;
}

static void
acc_reset(struct acc *a)
{
	size_t k, pi;

	a->flags = 0;
	for (k = 0; k < 2; k++)
		for (pi = 0; pi < PIDX_N; pi++)
			a->r[k][pi].n = 0;
}

static void
acc_free(struct acc *a)
{
	size_t k, pi;

	for (k = 0; k < 2; k++)
		for (pi = 0; pi < PIDX_N; pi++)
			free(a->r[k][pi].v);
}

/* ---- classes and tables of one direction ---- */

/* An entry of a rule that applies to one subject class. */
struct active {
	const struct entry *e;
	bool deny;
};

struct dirstate {
	/* positions of distinct selectors in this direction's signatures, or -1 */
	int32_t *spos, *ppos;
	uint32_t *slist, *plist; /* position -> distinct selector */
	size_t ns, np;
	uint32_t **rules_at; /* subject position -> rule indices */
	size_t *nrules_at;
	uint16_t *sub, *peer; /* identity -> class */
	uint32_t nsc, npc;
	uint64_t *srep, *prep; /* class -> signature */
	size_t sw, pw;         /* signature words */
	struct active *act;
	size_t nact, capact;
};

static void
dirstate_free(struct dirstate *ds)
{
	size_t i;

	if (ds->rules_at)
		for (i = 0; i < ds->ns; i++)
			free(ds->rules_at[i]);
	free(ds->rules_at);
	free(ds->nrules_at);
	free(ds->spos);
	free(ds->ppos);
	free(ds->slist);
	free(ds->plist);
	free(ds->sub);
	free(ds->peer);
	free(ds->srep);
	free(ds->prep);
	free(ds->act);
}

static bool
rule_in_dir(const struct rule *r, unsigned dir)
{
	return r->nent[dir] + r->nent[dir + 2] > 0;
}

static int
add_pos(int32_t *pos, uint32_t *list, size_t *n, uint32_t d)
{
	if (pos[d] < 0) {
		pos[d] = (int32_t)*n;
		list[(*n)++] = d;
	}
	return pos[d];
}

/*
 * Give every identity a class from its signature (the bits of the match
 * matrix at the positions of @p list). Returns the class count, or -errno.
 */
static int
make_classes(struct compiler *c, const uint32_t *list, size_t n, uint16_t *cls, uint64_t **rep,
             size_t *wout, const char *role, unsigned dir)
{
	size_t w = (n + 63) / 64, i, p;
	struct itab t = {0};
	uint64_t *sig;
	uint32_t idx;
	bool isnew;
	int rc = 0;

	*wout = w;
	sig = calloc(w ? w : 1, sizeof(*sig));
	*rep = NULL;
	if (sig == NULL)
		return -ENOMEM;
	for (i = 0; i < c->nid; i++) {
		const uint64_t *row = c->match + i * c->words;

		memset(sig, 0, (w ? w : 1) * sizeof(*sig));
		for (p = 0; p < n; p++)
			if (bit(row, list[p]))
				bit_set(sig, p);
		rc = itab_intern(&t, sig, w * sizeof(*sig), &idx, &isnew);
		if (rc)
			goto out;
		if (idx >= POL_MAX_CLASSES) {
			mg_error_set(c->err, NULL, 0, 0,
			             "policy compile: more than %u %s classes for %s",
			             POL_MAX_CLASSES, role, pol_section_names[dir]);
			rc = -E2BIG;
			goto out;
		}
		cls[i] = (uint16_t)idx;
	}
	*rep = calloc(t.n * (w ? w : 1), sizeof(**rep));
	if (*rep == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < t.n; i++)
		memcpy(*rep + i * w, t.keys[i].data, w * sizeof(uint64_t));
	rc = (int)t.n;
out:
	itab_free(&t);
	free(sig);
	return rc;
}

static bool
entry_selects_class(const struct compiler *c, const struct dirstate *ds, const struct entry *e,
                    const uint64_t *psig)
{
	size_t i;

	if (!e->has_l3)
		return e->nports > 0;
	for (i = 0; i < e->npeers; i++) {
		int32_t p = ds->ppos[c->dsel[e->peers[i]]];

		if (p >= 0 && bit(psig, (size_t)p))
			return true;
	}
	return false;
}

static int
push_active(struct dirstate *ds, const struct entry *e, bool deny)
{
	if (ds->nact == ds->capact) {
		size_t cap = ds->capact ? ds->capact * 2 : 64;
		void *v = realloc(ds->act, cap * sizeof(*ds->act));

		if (v == NULL)
			return -ENOMEM;
		ds->act = v;
		ds->capact = cap;
	}
	ds->act[ds->nact].e = e;
	ds->act[ds->nact].deny = deny;
	ds->nact++;
	return 0;
}

static int
compile_dir(struct compiler *c, unsigned dir, struct dirstate *ds)
{
	const struct mg_policy_set *s = c->s;
	struct pol_dir *pd = &c->pol->dir[dir];
	size_t i, j, k, sc, pc;
	unsigned sec;
	int rc;

	ds->spos = malloc((c->nd ? c->nd : 1) * sizeof(*ds->spos));
	ds->ppos = malloc((c->nd ? c->nd : 1) * sizeof(*ds->ppos));
	ds->slist = malloc((c->nd ? c->nd : 1) * sizeof(*ds->slist));
	ds->plist = malloc((c->nd ? c->nd : 1) * sizeof(*ds->plist));
	ds->sub = malloc(c->nid * sizeof(*ds->sub));
	ds->peer = malloc(c->nid * sizeof(*ds->peer));
	if (!ds->spos || !ds->ppos || !ds->slist || !ds->plist || !ds->sub || !ds->peer)
		return -ENOMEM;
	memset(ds->spos, 0xff, (c->nd ? c->nd : 1) * sizeof(*ds->spos));
	memset(ds->ppos, 0xff, (c->nd ? c->nd : 1) * sizeof(*ds->ppos));

	/* the selectors that matter in this direction */
	for (i = 0; i < s->nrules; i++) {
		const struct rule *r = &s->rules[i];

		if (!rule_in_dir(r, dir))
			continue;
		add_pos(ds->spos, ds->slist, &ds->ns, c->dsel[r->subject]);
		for (sec = dir; sec < SEC_N; sec += 2)
			for (j = 0; j < r->nent[sec]; j++)
				for (k = 0; k < r->ent[sec][j].npeers; k++)
					add_pos(ds->ppos, ds->plist, &ds->np,
					        c->dsel[r->ent[sec][j].peers[k]]);
	}
	ds->rules_at = calloc(ds->ns ? ds->ns : 1, sizeof(*ds->rules_at));
	ds->nrules_at = calloc(ds->ns ? ds->ns : 1, sizeof(*ds->nrules_at));
	if (ds->rules_at == NULL || ds->nrules_at == NULL)
		return -ENOMEM;
	for (i = 0; i < s->nrules; i++) {
		const struct rule *r = &s->rules[i];
		int32_t p;
		void *v;

		if (!rule_in_dir(r, dir))
			continue;
		p = ds->spos[c->dsel[r->subject]];
		v = realloc(ds->rules_at[p], (ds->nrules_at[p] + 1) * sizeof(uint32_t));
		if (v == NULL)
			return -ENOMEM;
		ds->rules_at[p] = v;
		ds->rules_at[p][ds->nrules_at[p]++] = (uint32_t)i;
	}

	rc = make_classes(c, ds->slist, ds->ns, ds->sub, &ds->srep, &ds->sw, "subject", dir);
	if (rc < 0)
		return rc;
	ds->nsc = (uint32_t)rc;
	rc = make_classes(c, ds->plist, ds->np, ds->peer, &ds->prep, &ds->pw, "peer", dir);
	if (rc < 0)
		return rc;
	ds->npc = (uint32_t)rc;
	if ((uint64_t)ds->nsc * ds->npc > POL_MAX_CELLS) {
		mg_error_set(c->err, NULL, 0, 0,
		             "policy compile: %u subject x %u peer classes for %s exceed %u cells",
		             ds->nsc, ds->npc, pol_section_names[dir], POL_MAX_CELLS);
		return -E2BIG;
	}

	pd->nsc = ds->nsc;
	pd->npc = ds->npc;
	pd->enforced = calloc(ds->nsc, 1);
	pd->cells = malloc((size_t)ds->nsc * ds->npc * sizeof(*pd->cells));
	if (pd->enforced == NULL || pd->cells == NULL)
		return -ENOMEM;

	for (sc = 0; sc < ds->nsc; sc++) {
		const uint64_t *ssig = ds->srep + sc * ds->sw;
		bool enforced = c->p->enforcement == MG_ENFORCE_ALWAYS;

		/* the entries of every rule selecting this class, deny and allow */
		ds->nact = 0;
		for (i = 0; i < ds->ns; i++) {
			if (!bit(ssig, i))
				continue;
			for (j = 0; j < ds->nrules_at[i]; j++) {
				const struct rule *r = &s->rules[ds->rules_at[i][j]];

				if (!r->no_default_deny[dir])
					enforced = true;
				for (sec = dir; sec < SEC_N; sec += 2)
					for (k = 0; k < r->nent[sec]; k++)
						if (push_active(ds, &r->ent[sec][k], sec_deny(sec)))
							return -ENOMEM;
			}
		}
		pd->enforced[sc] = enforced;
		for (pc = 0; pc < ds->npc; pc++) {
			const uint64_t *psig = ds->prep + pc * ds->pw;
			uint32_t idx;

			acc_reset(&c->acc);
			for (i = 0; i < ds->nact; i++)
				if (entry_selects_class(c, ds, ds->act[i].e, psig) &&
				    acc_add(&c->acc, ds->act[i].e, ds->act[i].deny))
					return -ENOMEM;
			rc = acc_intern(c, &idx);
			if (rc)
				return rc;
			pd->cells[sc * ds->npc + pc] = idx;
		}
	}
	return 0;
}

/* Step 4: identity -> classes. */
static int
build_slots(struct compiler *c, struct dirstate ds[2])
{
	struct mg_policy *pol = c->pol;
	size_t cap = 16, i;
	unsigned d;

	while (cap < c->nid * 2)
		cap *= 2;
	pol->slots = calloc(cap, sizeof(*pol->slots));
	if (pol->slots == NULL)
		return -ENOMEM;
	pol->mask = (uint32_t)cap - 1;
	for (i = 0; i < c->nid; i++) {
		struct pol_slot *sl;
		uint32_t key = c->ids[i].id + 1, j;

		if (i == c->nid - 1) {
			sl = &pol->nolabels;
		} else {
			j = (key * 0x9e3779b1u) & pol->mask;
			while (pol->slots[j].key != 0)
				j = (j + 1) & pol->mask;
			sl = &pol->slots[j];
			sl->key = key;
		}
		for (d = 0; d < 2; d++) {
			sl->cls[CLS_SUB(d)] = ds[d].sub[i];
			sl->cls[CLS_PEER(d)] = ds[d].peer[i];
		}
	}
	return 0;
}

struct mg_policy *
mg_policy_compile(const struct mg_policy_set *s, const struct mg_identity_table *ids,
                  const struct mg_policy_params *p, struct mg_error *err)
{
	struct compiler c = {.s = s, .p = p, .err = err};
	struct dirstate ds[2];
	struct mg_labels empty = MG_LABELS_INIT;
	size_t n;
	unsigned d;
	int rc = 0;

	memset(ds, 0, sizeof(ds));
	if (s == NULL || ids == NULL || p == NULL) {
		mg_error_set(err, NULL, 0, 0, "policy compile: missing argument");
		errno = EINVAL;
		return NULL;
	}
	c.pol = calloc(1, sizeof(*c.pol));
	if (c.pol == NULL) {
		rc = oom(&c);
		goto err;
	}
	c.pol->revision = p->revision;
	if (p->enforcement == MG_ENFORCE_NEVER) {
		/* nothing is enforced: no tables at all */
		c.pol->never = true;
		c.pol->memory = sizeof(*c.pol);
		return c.pol;
	}

	n = mg_identity_table_count(ids);
	c.ids = calloc(n + 1, sizeof(*c.ids));
	if (c.ids == NULL) {
		rc = oom(&c);
		goto err;
	}
	mg_identity_table_walk(ids, collect_ident, &c);
	/* the last row stands for every identity the table does not hold */
	c.ids[c.nid].id = 0;
	c.ids[c.nid].ls = &empty;
	c.nid++;

	rc = build_selector_cache(&c, &empty);
	if (rc)
		goto err;
	/* bitmap 0 is the empty one, whatever port set comes first */
	{
		struct rvec none = {0};
		uint32_t idx;

		rc = intern_bitmap(&c, &none, &idx);
		if (rc)
			goto fail;
	}
	for (d = 0; d < 2; d++) {
		rc = compile_dir(&c, d, &ds[d]);
		if (rc)
			goto fail;
	}
	rc = build_slots(&c, ds);
	if (rc)
		goto fail;

	/* right-size the port sets and bitmaps now that their counts are final */
	c.pol->nbm = (uint32_t)c.bitmaps.n;
	{
		void *v = realloc(c.pol->bm, (size_t)c.pol->nbm * BM_WORDS * sizeof(uint64_t));

		if (v != NULL)
			c.pol->bm = v;
		v = realloc(c.pol->ps, (size_t)(c.pol->nps ? c.pol->nps : 1) * sizeof(*c.pol->ps));
		if (v != NULL)
			c.pol->ps = v;
	}
	c.pol->memory = sizeof(*c.pol) + (size_t)(c.pol->mask + 1) * sizeof(struct pol_slot) +
	                (size_t)c.pol->nps * sizeof(struct pol_portset) +
	                (size_t)c.pol->nbm * BM_WORDS * sizeof(uint64_t);
	for (d = 0; d < 2; d++)
		c.pol->memory += c.pol->dir[d].nsc +
		                 (size_t)c.pol->dir[d].nsc * c.pol->dir[d].npc * sizeof(uint32_t);
	goto out;
fail:
	if (rc == -ENOMEM)
		oom(&c);
err:
	mg_policy_free(c.pol);
	c.pol = NULL;
out:
	for (d = 0; d < 2; d++)
		dirstate_free(&ds[d]);
	itab_free(&c.portsets);
	itab_free(&c.bitmaps);
	acc_free(&c.acc);
	free(c.ids);
	free(c.dsel);
	free(c.drep);
	free(c.match);
	if (c.pol == NULL)
		errno = -rc;
	return c.pol;
}
