/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Policy compiler, incremental identity updates, and the data-path
 * verdict. The compiler turns the rule AST and the identity table into
 * tables whose lookup cost does not depend on the number of rules or
 * identities:
 *
 *   1. plan (per compile, immutable): the distinct selectors (after
 *      scoping), per direction the subject and peer selectors that matter,
 *      the rules per subject selector, and the port names rules use;
 *   2. classes: an identity's subject class in direction d is the set of
 *      d's subject selectors it matches (plus, on ingress, what its named
 *      ports resolve the used names to); its peer class likewise (named
 *      ports on egress, where the peer is the destination). Equal keys,
 *      equal class;
 *   3. per direction a table [subject class][peer class] -> port set, where
 *      a port set holds flags for "every protocol allowed / denied"
 *      (L3-only entries) and, per TCP/UDP/SCTP/ICMP/ICMPv6, an allow and a
 *      deny bitmap of 65536 bits, interned so equal bitmaps share memory;
 *   4. identity -> classes through a two-level hash map (directory of
 *      small open-addressing leaves).
 *
 * Incremental updates (mg_policy_update_identities) classify only the
 * changed identities and fill only the cells of classes that did not exist.
 * A compiled object never changes once published: the new object shares
 * the old one's blocks by reference count and writes only where the old
 * one never reads (table cells and vector slots past the old one's
 * dimensions, leaves and the directory copied on write). Each shared block
 * remembers how far its newest user filled it (its claim); extending it in
 * place is allowed only to the object whose dimensions equal that claim,
 * so two objects derived from the same parent never write the same slot.
 * The full compile is the same machinery run from empty. See
 * docs/policy-engine.md.
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

/* Identity map: a leaf holds about LEAF_AVG identities before the directory doubles. */
#define MAP_MIN_BITS 4
#define LEAF_MIN_CAP 8
#define LEAF_AVG 8

/* ---- shared blocks ---- */

struct pol_slot {
	uint32_t key; /* identity + 1; 0: empty */
	uint16_t cls[4];
};

struct pol_leaf {
	unsigned refs;
	uint32_t mask; /* slots - 1 */
	uint32_t n;
	struct pol_slot s[];
};

struct pol_idmap {
	unsigned refs;
	unsigned bits;
	size_t count;
	size_t bytes; /* the directory and the leaves it names */
	struct pol_leaf *leaf[];
};

/* An append-only vector shared between compiled objects. */
struct shv {
	unsigned refs;
	size_t claim; /* length of its newest writer */
	size_t cap;   /* elements */
	size_t esz;
	uint64_t data[];
};

/*
 * A direction's table, sparse: (subject class, peer class) -> port set,
 * stored only where it differs from the row's default (what the subject's
 * entries without a peer field give every peer). Open addressing over
 * 64-bit slots, (sc << 16 | pc) << 32 | port set, each written with one
 * store: a worker reading a table that a newer object is extending in
 * place never sees half a cell, only keys it does not look for.
 */
#define CELL_EMPTY UINT64_MAX
struct pol_cells {
	unsigned refs;
	uint32_t claim_sc, claim_pc;
	size_t n, mask;
	uint64_t s[];
};

struct pol_portset {
	uint32_t flags;
	uint32_t allow[PIDX_N]; /* bitmap indices; 0 is the empty bitmap */
	uint32_t deny[PIDX_N];
};

/* ---- interning: byte strings -> dense indices (control plane) ---- */

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
	size_t bytes; /* of the keys' data */
};

/* An interning table shared between compiled objects (claim: t.n). */
struct pol_reg {
	unsigned refs;
	struct itab t;
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
		key = ""; /* an empty key may come with a NULL pointer */
	h = hash_bytes(key, len);

	if ((t->n + 1) * 2 > t->cap && itab_grow(t) != 0)
		return -ENOMEM;
	for (j = h & (t->cap - 1); t->slot[j] != 0; j = (j + 1) & (t->cap - 1)) {
		const struct ikey *k = &t->keys[t->slot[j] - 1];

		if (k->h == h && k->len == len && memcmp(k->data, key, len) == 0) {
			*idx = t->slot[j] - 1;
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
	t->bytes += len;
	*idx = (uint32_t)t->n++;
	*isnew = true;
	return 0;
}

/* Index of @p key, or -1. */
static int64_t
itab_find(const struct itab *t, const void *key, size_t len)
{
	uint64_t h;
	size_t j;

	if (t->cap == 0)
		return -1;
	h = hash_bytes(key, len);
	for (j = h & (t->cap - 1); t->slot[j] != 0; j = (j + 1) & (t->cap - 1)) {
		const struct ikey *k = &t->keys[t->slot[j] - 1];

		if (k->h == h && k->len == len && memcmp(k->data, key, len) == 0)
			return t->slot[j] - 1;
	}
	return -1;
}

static size_t
itab_bytes(const struct itab *t)
{
	return t->cap * sizeof(uint32_t) + t->kcap * sizeof(struct ikey) + t->bytes;
}

static struct pol_reg *
reg_new(void)
{
	struct pol_reg *r = calloc(1, sizeof(*r));

	if (r != NULL)
		r->refs = 1;
	return r;
}

static void
reg_put(struct pol_reg *r)
{
	if (r != NULL && --r->refs == 0) {
		itab_free(&r->t);
		free(r);
	}
}

/*
 * Intern @p key in *@p reg, of which the caller's object uses the first
 * *@p count entries. A table another object has appended to since is
 * copied (its first *count entries) before this one appends.
 */
static int
reg_intern(struct pol_reg **reg, uint32_t *count, const void *key, size_t len, uint32_t *idx,
           bool *isnew)
{
	struct pol_reg *r = *reg;
	int rc;

	if (r->t.n != *count) {
		struct pol_reg *c = reg_new();
		uint32_t i, j;
		bool nw;

		if (c == NULL)
			return -ENOMEM;
		for (i = 0; i < *count; i++) {
			rc = itab_intern(&c->t, r->t.keys[i].data, r->t.keys[i].len, &j, &nw);
			if (rc) {
				reg_put(c);
				return rc;
			}
		}
		reg_put(r);
		*reg = r = c;
	}
	rc = itab_intern(&r->t, key, len, idx, isnew);
	if (rc == 0 && *isnew)
		(*count)++;
	return rc;
}

/* ---- shared vectors and tables ---- */

static struct shv *
shv_new(size_t esz, size_t cap)
{
	struct shv *v = calloc(1, sizeof(*v) + esz * cap);

	if (v == NULL)
		return NULL;
	v->refs = 1;
	v->cap = cap;
	v->esz = esz;
	return v;
}

static void
shv_put(struct shv *v)
{
	if (v != NULL && --v->refs == 0)
		free(v);
}

static inline void *
shv_at(struct shv *v, size_t i)
{
	return (unsigned char *)v->data + i * v->esz;
}

/* Make elements [len, need) of *@p v writable for an object of length @p len. */
static int
shv_reserve(struct shv **v, size_t len, size_t need)
{
	struct shv *o = *v, *n;
	size_t cap;

	if ((o->claim == len || o->refs == 1) && need <= o->cap) {
		o->claim = need;
		return 0;
	}
	cap = o->cap * 2 > need ? o->cap * 2 : need;
	if (cap < 16)
		cap = 16;
	n = shv_new(o->esz, cap);
	if (n == NULL)
		return -ENOMEM;
	memcpy(n->data, o->data, len * o->esz);
	n->claim = need;
	shv_put(o);
	*v = n;
	return 0;
}

static void
cells_put(struct pol_cells *c)
{
	if (c != NULL && --c->refs == 0)
		free(c);
}

static inline size_t
cell_slot(uint32_t key, size_t mask)
{
	uint64_t h = (uint64_t)key * 0x9e3779b97f4a7c15ull;

	return (size_t)(h >> 32 ^ h) & mask;
}

static struct pol_cells *
cells_new(size_t slots)
{
	struct pol_cells *c = malloc(sizeof(*c) + slots * sizeof(uint64_t));

	if (c == NULL)
		return NULL;
	c->refs = 1;
	c->claim_sc = c->claim_pc = 0;
	c->n = 0;
	c->mask = slots - 1;
	memset(c->s, 0xff, slots * sizeof(uint64_t));
	return c;
}

/* Insert into a table of our own or one we extend in place (no resize). */
static void
cells_place(struct pol_cells *c, uint64_t v)
{
	size_t i = cell_slot((uint32_t)(v >> 32), c->mask);

	while (c->s[i] != CELL_EMPTY)
		i = (i + 1) & c->mask;
	__atomic_store_n(&c->s[i], v, __ATOMIC_RELAXED);
	c->n++;
}

/* A copy of @p o's cells of classes below (sc, pc), with room for @p extra more. */
static struct pol_cells *
cells_copy(const struct pol_cells *o, uint32_t sc, uint32_t pc, size_t extra)
{
	size_t need = (o ? o->n : 0) + extra, slots = 64, i;
	struct pol_cells *c;

	while (slots < 2 * need + 2)
		slots *= 2;
	c = cells_new(slots);
	for (i = 0; c != NULL && o != NULL && i <= o->mask; i++) {
		uint64_t v = o->s[i];
		uint32_t k = (uint32_t)(v >> 32);

		if (v != CELL_EMPTY && (k >> 16) < sc && (k & 0xffff) < pc)
			cells_place(c, v);
	}
	return c;
}

/* Make the cells outside [osc x opc] but inside [nsc x npc] writable. */
static int
cells_reserve(struct pol_cells **cp, uint32_t osc, uint32_t opc, uint32_t nsc, uint32_t npc)
{
	struct pol_cells *o = *cp, *n;

	if (o != NULL && (o->refs == 1 || (o->claim_sc == osc && o->claim_pc == opc))) {
		o->claim_sc = nsc;
		o->claim_pc = npc;
		return 0;
	}
	/* another object extended the shared table since: ours is a copy */
	n = cells_copy(o, osc, opc, 0);
	if (n == NULL)
		return -ENOMEM;
	n->claim_sc = nsc;
	n->claim_pc = npc;
	cells_put(o);
	*cp = n;
	return 0;
}

/* Set cell (sc, pc) of a table cells_reserve() made writable; it grows by copying. */
static int
cells_put_cell(struct pol_cells **cp, uint32_t sc, uint32_t pc, uint32_t ps)
{
	struct pol_cells *c = *cp, *n;

	if ((c->n + 1) * 2 > c->mask + 1) {
		if (c->n >= POL_MAX_CELLS)
			return -E2BIG;
		/* never resized in place: an older object may still read this one */
		n = cells_copy(c, UINT32_MAX, UINT32_MAX, c->n + 1);
		if (n == NULL)
			return -ENOMEM;
		n->claim_sc = c->claim_sc;
		n->claim_pc = c->claim_pc;
		cells_put(c);
		*cp = c = n;
	}
	cells_place(c, ((uint64_t)(sc << 16 | pc) << 32) | ps);
	return 0;
}

/* ---- the plan ---- */

typedef char pname_t[POL_PORT_NAME_MAX + 1];

struct plan_dir {
	/* positions of distinct selectors in this direction's signatures, or -1 */
	int32_t *spos, *ppos;
	uint32_t *slist, *plist; /* position -> distinct selector */
	size_t ns, np;
	size_t sw, pw;       /* signature words */
	uint32_t **rules_at; /* subject position -> rule indices */
	size_t *nrules_at;
	size_t nnames; /* port names the direction's rules use, sorted */
	pname_t *names;
};

struct plan_cand {
	uint32_t *v;
	size_t n, cap;
};

struct pol_plan {
	unsigned refs;
	const struct mg_policy_set *s;
	uint64_t gen;
	struct mg_policy_params p;
	size_t nd;
	uint32_t *dsel;               /* set selector -> distinct selector */
	const struct selector **drep; /* distinct -> a representative */
	struct plan_dir dir[2];
	/*
	 * The selector index: every distinct selector with an In requirement
	 * is filed under that requirement's "key=value" pairs (its anchors);
	 * an identity can only match the selectors filed under its own labels,
	 * plus those without any In requirement (`always`). Classifying an
	 * identity then costs its candidates, not every selector.
	 */
	struct itab anchors;
	struct plan_cand *cand; /* per anchor */
	uint32_t *always;
	size_t nalways;
	size_t bytes;
};

struct pol_dirtab {
	uint32_t nsc, npc;
	struct pol_cells *cells;
	struct shv *enf;  /* uint8_t per subject class */
	struct shv *rdef; /* uint32_t per subject class: the row's default port set */
	struct pol_reg *sreg, *preg;
	/* for the data path */
	const uint64_t *cellv;
	size_t cmask;
	const uint32_t *rdefv;
	const uint8_t *enfv;
};

struct mg_policy {
	uint64_t revision;
	size_t memory;
	bool never;
	struct pol_plan *plan;
	struct pol_idmap *map;
	unsigned shift;                 /* 32 - map->bits */
	struct pol_leaf *const *leaves; /* map->leaf */
	struct pol_slot nolabels;       /* classes of unknown identities */
	struct pol_dirtab dir[2];
	uint32_t nps;
	struct shv *ps; /* struct pol_portset */
	struct pol_reg *psreg;
	const struct pol_portset *psv;
	uint32_t nbm;
	struct shv *bm; /* BM_WORDS words each */
	struct pol_reg *bmreg;
	const uint64_t *bmv;
};

/* ---- the data path ---- */

static inline uint32_t
id_hash(uint32_t key)
{
	uint32_t h = key * 0x9e3779b1u;

	/* the top bits pick the leaf, the mixed low bits the slot in it */
	return h ^ (h >> 16);
}

static inline const struct pol_slot *
slot_find(const struct mg_policy *pol, uint32_t id)
{
	uint32_t key = id + 1, h = id_hash(key), i;
	const struct pol_leaf *l = pol->leaves[h >> pol->shift];

	if (l != NULL)
		for (i = h & l->mask;; i = (i + 1) & l->mask) {
			if (l->s[i].key == key)
				return &l->s[i];
			if (l->s[i].key == 0)
				break;
		}
	return &pol->nolabels;
}

static inline bool
bm_test(const struct mg_policy *pol, uint32_t bm, uint16_t port)
{
	return (pol->bmv[(size_t)bm * BM_WORDS + (port >> 6)] >> (port & 63)) & 1u;
}

static inline uint32_t
cell_get(const struct pol_dirtab *d, uint16_t sc, uint16_t pc)
{
	uint32_t key = (uint32_t)sc << 16 | pc;
	size_t i = cell_slot(key, d->cmask);

	for (;;) {
		uint64_t v = __atomic_load_n(&d->cellv[i], __ATOMIC_RELAXED);

		if ((uint32_t)(v >> 32) == key)
			return (uint32_t)v;
		if (v == CELL_EMPTY)
			return d->rdefv[sc];
		i = (i + 1) & d->cmask;
	}
}

static inline bool
dir_allows(const struct mg_policy *pol, unsigned dir, uint16_t sc, uint16_t pc, int pi,
           uint16_t port)
{
	const struct pol_dirtab *d = &pol->dir[dir];
	const struct pol_portset *ps = &pol->psv[cell_get(d, sc, pc)];

	if (ps->flags & PS_DENY_ALL)
		return false;
	if (pi >= 0 && bm_test(pol, ps->deny[pi], port))
		return false;
	if (!d->enfv[sc] || (ps->flags & PS_ALLOW_ALL))
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

/* ---- freeing ---- */

static void
leaf_put(struct pol_leaf *l)
{
	if (l != NULL && --l->refs == 0)
		free(l);
}

static void
map_put(struct pol_idmap *m)
{
	size_t i;

	if (m == NULL || --m->refs != 0)
		return;
	for (i = 0; i < (size_t)1 << m->bits; i++)
		leaf_put(m->leaf[i]);
	free(m);
}

static void
plan_put(struct pol_plan *pl)
{
	size_t i;
	unsigned d;

	if (pl == NULL || --pl->refs != 0)
		return;
	for (d = 0; d < 2; d++) {
		struct plan_dir *pd = &pl->dir[d];

		if (pd->rules_at)
			for (i = 0; i < pd->ns; i++)
				free(pd->rules_at[i]);
		free(pd->rules_at);
		free(pd->nrules_at);
		free(pd->spos);
		free(pd->ppos);
		free(pd->slist);
		free(pd->plist);
		free(pd->names);
	}
	for (i = 0; pl->cand != NULL && i < pl->anchors.n; i++)
		free(pl->cand[i].v);
	free(pl->cand);
	itab_free(&pl->anchors);
	free(pl->always);
	free(pl->dsel);
	free(pl->drep);
	free(pl);
}

void
mg_policy_free(struct mg_policy *pol)
{
	unsigned d;

	if (pol == NULL)
		return;
	for (d = 0; d < 2; d++) {
		cells_put(pol->dir[d].cells);
		shv_put(pol->dir[d].enf);
		shv_put(pol->dir[d].rdef);
		reg_put(pol->dir[d].sreg);
		reg_put(pol->dir[d].preg);
	}
	map_put(pol->map);
	plan_put(pol->plan);
	shv_put(pol->ps);
	shv_put(pol->bm);
	reg_put(pol->psreg);
	reg_put(pol->bmreg);
	free(pol);
}

/* ---- bits ---- */

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

/* ---- building the plan ---- */

static bool
rule_in_dir(const struct rule *r, unsigned dir)
{
	return r->nent[dir] + r->nent[dir + 2] > 0;
}

static void
add_pos(int32_t *pos, uint32_t *list, size_t *n, uint32_t d)
{
	if (pos[d] < 0) {
		pos[d] = (int32_t)*n;
		list[(*n)++] = d;
	}
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(*(const pname_t *)a, *(const pname_t *)b);
}

static int
plan_dir_build(struct pol_plan *pl, unsigned dir)
{
	const struct mg_policy_set *s = pl->s;
	struct plan_dir *pd = &pl->dir[dir];
	size_t nd = pl->nd ? pl->nd : 1, i, j, k, q, cap = 0;
	unsigned sec;

	pd->spos = malloc(nd * sizeof(*pd->spos));
	pd->ppos = malloc(nd * sizeof(*pd->ppos));
	pd->slist = malloc(nd * sizeof(*pd->slist));
	pd->plist = malloc(nd * sizeof(*pd->plist));
	if (!pd->spos || !pd->ppos || !pd->slist || !pd->plist)
		return -ENOMEM;
	memset(pd->spos, 0xff, nd * sizeof(*pd->spos));
	memset(pd->ppos, 0xff, nd * sizeof(*pd->ppos));
	for (i = 0; i < s->nrules; i++) {
		const struct rule *r = &s->rules[i];

		if (!rule_in_dir(r, dir))
			continue;
		add_pos(pd->spos, pd->slist, &pd->ns, pl->dsel[r->subject]);
		for (sec = dir; sec < SEC_N; sec += 2)
			for (j = 0; j < r->nent[sec]; j++) {
				const struct entry *e = &r->ent[sec][j];

				for (k = 0; k < e->npeers; k++)
					add_pos(pd->ppos, pd->plist, &pd->np,
					        pl->dsel[e->peers[k]]);
				for (k = 0; k < e->nports; k++) {
					if (e->ports[k].name[0] == '\0')
						continue;
					for (q = 0; q < pd->nnames; q++)
						if (strcmp(pd->names[q], e->ports[k].name) == 0)
							break;
					if (q < pd->nnames)
						continue;
					if (pd->nnames == cap) {
						void *v;

						cap = cap ? cap * 2 : 8;
						v = realloc(pd->names, cap * sizeof(*pd->names));
						if (v == NULL)
							return -ENOMEM;
						pd->names = v;
					}
					memcpy(pd->names[pd->nnames++], e->ports[k].name,
					       sizeof(pname_t));
				}
			}
	}
	if (pd->nnames > 1)
		qsort(pd->names, pd->nnames, sizeof(*pd->names), cmp_name);
	pd->sw = (pd->ns + 63) / 64;
	pd->pw = (pd->np + 63) / 64;
	pd->rules_at = calloc(pd->ns ? pd->ns : 1, sizeof(*pd->rules_at));
	pd->nrules_at = calloc(pd->ns ? pd->ns : 1, sizeof(*pd->nrules_at));
	if (pd->rules_at == NULL || pd->nrules_at == NULL)
		return -ENOMEM;
	for (i = 0; i < s->nrules; i++) {
		const struct rule *r = &s->rules[i];
		int32_t p;
		void *v;

		if (!rule_in_dir(r, dir))
			continue;
		p = pd->spos[pl->dsel[r->subject]];
		v = realloc(pd->rules_at[p], (pd->nrules_at[p] + 1) * sizeof(uint32_t));
		if (v == NULL)
			return -ENOMEM;
		pd->rules_at[p] = v;
		pd->rules_at[p][pd->nrules_at[p]++] = (uint32_t)i;
		pl->bytes += sizeof(uint32_t);
	}
	pl->bytes +=
	        nd * 16 + pd->ns * (sizeof(void *) + sizeof(size_t)) + pd->nnames * sizeof(pname_t);
	return 0;
}

static int
cand_push(struct plan_cand *c, uint32_t d)
{
	if (mg_grow(&c->v, &c->cap, c->n, sizeof(*c->v), 4))
		return -ENOMEM;
	c->v[c->n++] = d;
	return 0;
}

/* File every distinct selector under the values of one In requirement. */
static int
plan_index(struct pol_plan *pl)
{
	size_t d, i, capcand = 0;
	char *key = NULL;
	size_t keycap = 0;

	pl->always = calloc(pl->nd ? pl->nd : 1, sizeof(*pl->always));
	if (pl->always == NULL)
		return -ENOMEM;
	for (d = 0; d < pl->nd; d++) {
		const struct selector *sel = pl->drep[d];
		const struct sel_req *best = NULL;

		/* the In requirement with the fewest values narrows the most */
		for (i = 0; i < sel->nreq; i++)
			if (sel->req[i].op == SEL_IN && sel->req[i].nvals > 0 &&
			    (best == NULL || sel->req[i].nvals < best->nvals))
				best = &sel->req[i];
		if (best == NULL) {
			pl->always[pl->nalways++] = (uint32_t)d;
			continue;
		}
		for (i = 0; i < best->nvals; i++) {
			size_t kl = strlen(best->key), vl = strlen(best->vals[i]);
			uint32_t a;
			bool isnew;

			if (kl + vl + 1 > keycap) {
				char *k = realloc(key, kl + vl + 1);

				if (k == NULL)
					goto oom;
				key = k;
				keycap = kl + vl + 1;
			}
			memcpy(key, best->key, kl);
			key[kl] = '\0';
			memcpy(key + kl + 1, best->vals[i], vl);
			if (itab_intern(&pl->anchors, key, kl + vl + 1, &a, &isnew))
				goto oom;
			if (a >= capcand) {
				size_t cap = capcand ? 2 * capcand : 64;
				struct plan_cand *c = realloc(pl->cand, cap * sizeof(*c));

				if (c == NULL)
					goto oom;
				memset(c + capcand, 0, (cap - capcand) * sizeof(*c));
				pl->cand = c;
				capcand = cap;
			}
			/* a selector listing a value twice is filed once */
			if ((pl->cand[a].n == 0 || pl->cand[a].v[pl->cand[a].n - 1] != d) &&
			    cand_push(&pl->cand[a], (uint32_t)d))
				goto oom;
			pl->bytes += sizeof(uint32_t);
		}
	}
	free(key);
	pl->bytes += itab_bytes(&pl->anchors) + capcand * sizeof(struct plan_cand) +
	             pl->nd * sizeof(uint32_t);
	return 0;
oom:
	free(key);
	return -ENOMEM;
}

static struct pol_plan *
plan_build(const struct mg_policy_set *s, const struct mg_policy_params *p)
{
	struct pol_plan *pl = calloc(1, sizeof(*pl));
	struct itab canon = {0};
	size_t i;
	int rc = 0;

	if (pl == NULL)
		return NULL;
	pl->refs = 1;
	pl->s = s;
	pl->gen = s->gen;
	pl->p = *p;
	pl->dsel = calloc(s->nsel ? s->nsel : 1, sizeof(*pl->dsel));
	pl->drep = calloc(s->nsel ? s->nsel : 1, sizeof(*pl->drep));
	if (pl->dsel == NULL || pl->drep == NULL)
		goto err;
	for (i = 0; i < s->nsel && rc == 0; i++) {
		const struct selector *sel = s->sel[i];
		size_t len = strlen(sel->canon);
		char *key = malloc(len + 80);
		bool isnew;
		uint32_t idx;

		if (key == NULL)
			goto err;
		memcpy(key, sel->canon, len);
		/* the cluster scope in force is part of what the selector means */
		if (pol_sel_cluster_active(sel, p->default_local_cluster))
			len += (size_t)snprintf(
			        key + len, 80, "|C%c%zu:%s", sel->cl == SELC_EQ ? 'Q' : 'E',
			        strlen(sel->cluster), sel->cl == SELC_EQ ? sel->cluster : "");
		rc = itab_intern(&canon, key, len, &idx, &isnew);
		free(key);
		if (rc == 0) {
			pl->dsel[i] = idx;
			if (isnew)
				pl->drep[idx] = sel;
		}
	}
	pl->nd = canon.n;
	itab_free(&canon);
	if (rc)
		goto err;
	pl->bytes = sizeof(*pl) + s->nsel * (sizeof(uint32_t) + sizeof(void *));
	if (plan_index(pl) || plan_dir_build(pl, MG_DIR_INGRESS) ||
	    plan_dir_build(pl, MG_DIR_EGRESS))
		goto err;
	return pl;
err:
	itab_free(&canon);
	plan_put(pl);
	return NULL;
}

/* ---- the identity map ---- */

static struct pol_leaf *
leaf_new(uint32_t cap)
{
	struct pol_leaf *l = calloc(1, sizeof(*l) + cap * sizeof(struct pol_slot));

	if (l != NULL) {
		l->refs = 1;
		l->mask = cap - 1;
	}
	return l;
}

static size_t
leaf_bytes(const struct pol_leaf *l)
{
	return l ? sizeof(*l) + (size_t)(l->mask + 1) * sizeof(struct pol_slot) : 0;
}

static void
leaf_place(struct pol_leaf *l, const struct pol_slot *sl)
{
	uint32_t i = id_hash(sl->key) & l->mask;

	while (l->s[i].key != 0)
		i = (i + 1) & l->mask;
	l->s[i] = *sl;
	l->n++;
}

/* A private copy of @p o with @p cap slots (a power of two above 2 * n). */
static struct pol_leaf *
leaf_copy(const struct pol_leaf *o, uint32_t cap)
{
	struct pol_leaf *l = leaf_new(cap);
	uint32_t i;

	if (l == NULL)
		return NULL;
	for (i = 0; o != NULL && i <= o->mask; i++)
		if (o->s[i].key != 0)
			leaf_place(l, &o->s[i]);
	return l;
}

static struct pol_idmap *
map_new(unsigned bits)
{
	size_t n = (size_t)1 << bits;
	struct pol_idmap *m = calloc(1, sizeof(*m) + n * sizeof(m->leaf[0]));

	if (m != NULL) {
		m->refs = 1;
		m->bits = bits;
		m->bytes = sizeof(*m) + n * sizeof(m->leaf[0]);
	}
	return m;
}

/* A private directory naming the same (shared) leaves. */
static struct pol_idmap *
map_clone(const struct pol_idmap *o)
{
	struct pol_idmap *m = map_new(o->bits);
	size_t i;

	if (m == NULL)
		return NULL;
	for (i = 0; i < (size_t)1 << o->bits; i++) {
		m->leaf[i] = o->leaf[i];
		if (m->leaf[i] != NULL)
			m->leaf[i]->refs++;
	}
	m->count = o->count;
	m->bytes = o->bytes;
	return m;
}

/* Replace leaf @p i of private map @p m. */
static void
map_set_leaf(struct pol_idmap *m, size_t i, struct pol_leaf *l)
{
	m->bytes -= leaf_bytes(m->leaf[i]);
	leaf_put(m->leaf[i]);
	m->leaf[i] = l;
	m->bytes += leaf_bytes(l);
}

/* Double the directory: every leaf splits in two (amortised by doubling). */
static int
map_grow(struct pol_idmap **mp)
{
	struct pol_idmap *o = *mp, *m = map_new(o->bits + 1);
	size_t i;
	uint32_t j;

	if (m == NULL)
		return -ENOMEM;
	for (i = 0; i < (size_t)1 << o->bits; i++) {
		const struct pol_leaf *l = o->leaf[i];

		for (j = 0; l != NULL && j <= l->mask; j++) {
			const struct pol_slot *sl = &l->s[j];
			size_t li;
			struct pol_leaf *t;

			if (sl->key == 0)
				continue;
			li = id_hash(sl->key) >> (32 - m->bits);
			t = m->leaf[li];
			if (t == NULL || (t->n + 1) * 2 > t->mask + 1) {
				t = leaf_copy(t, t ? (t->mask + 1) * 2 : LEAF_MIN_CAP);
				if (t == NULL) {
					map_put(m);
					return -ENOMEM;
				}
				map_set_leaf(m, li, t);
			}
			leaf_place(t, sl);
		}
	}
	m->count = o->count;
	map_put(o);
	*mp = m;
	return 0;
}

/* Index of @p key in leaf @p l, or -1. */
static int32_t
leaf_find(const struct pol_leaf *l, uint32_t key)
{
	uint32_t i;

	if (l == NULL)
		return -1;
	for (i = id_hash(key) & l->mask;; i = (i + 1) & l->mask) {
		if (l->s[i].key == key)
			return (int32_t)i;
		if (l->s[i].key == 0)
			return -1;
	}
}

/* Make leaf @p li of private map @p m private too, with room for one more slot. */
static int
map_own_leaf(struct pol_idmap *m, size_t li, bool grow)
{
	struct pol_leaf *l = m->leaf[li];
	uint32_t cap = l ? l->mask + 1 : LEAF_MIN_CAP;

	if (grow && l != NULL && (l->n + 1) * 2 > cap)
		cap *= 2;
	if (l != NULL && l->refs == 1 && cap == l->mask + 1)
		return 0;
	l = leaf_copy(l, cap);
	if (l == NULL)
		return -ENOMEM;
	map_set_leaf(m, li, l);
	return 0;
}

static int
map_insert(struct pol_idmap **mp, uint32_t id, const uint16_t cls[4])
{
	struct pol_idmap *m = *mp;
	struct pol_slot sl = {.key = id + 1};
	size_t li = id_hash(sl.key) >> (32 - m->bits);
	int32_t at = leaf_find(m->leaf[li], sl.key);

	memcpy(sl.cls, cls, sizeof(sl.cls));
	if (map_own_leaf(m, li, at < 0) != 0)
		return -ENOMEM;
	if (at >= 0) {
		/* the copy kept the capacity, but not necessarily the position */
		m->leaf[li]->s[leaf_find(m->leaf[li], sl.key)] = sl;
		return 0;
	}
	leaf_place(m->leaf[li], &sl);
	m->count++;
	if (m->count > ((size_t)LEAF_AVG << m->bits))
		return map_grow(mp);
	return 0;
}

static int
map_remove(struct pol_idmap *m, uint32_t id)
{
	uint32_t key = id + 1, hole, i;
	size_t li = id_hash(key) >> (32 - m->bits);
	struct pol_leaf *l;
	int32_t at;

	if (leaf_find(m->leaf[li], key) < 0)
		return 0;
	if (map_own_leaf(m, li, false) != 0)
		return -ENOMEM;
	l = m->leaf[li];
	at = leaf_find(l, key);
	/* backward-shift deletion inside the leaf: no tombstones */
	hole = (uint32_t)at;
	for (i = (hole + 1) & l->mask; l->s[i].key != 0; i = (i + 1) & l->mask) {
		uint32_t home = id_hash(l->s[i].key) & l->mask;

		if (((i - home) & l->mask) >= ((i - hole) & l->mask)) {
			l->s[hole] = l->s[i];
			hole = i;
		}
	}
	memset(&l->s[hole], 0, sizeof(l->s[hole]));
	l->n--;
	m->count--;
	return 0;
}

/* ---- port set accumulation ---- */

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

static int
rvec_push(struct rvec *v, uint32_t lo, uint32_t hi)
{
	if (mg_grow(&v->v, &v->cap, v->n, sizeof(*v->v), 16))
		return -ENOMEM;
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

/*
 * Named-port resolutions in class keys: one 64-bit word per (used name,
 * protocol, port) the identity's named ports give: name index << 32 |
 * protocol index << 16 | port, sorted.
 */
#define NP_WORD(name, pi, port) (((uint64_t)(name) << 32) | ((uint64_t)(pi) << 16) | (port))
#define NP_NAME(w) ((uint32_t)((w) >> 32))
#define NP_PIDX(w) ((unsigned)(((w) >> 16) & 0xffu))
#define NP_PORT(w) ((uint16_t)((w)&0xffffu))

static int
name_index(const struct plan_dir *pd, const char *name)
{
	const pname_t *f = bsearch(name, pd->names, pd->nnames, sizeof(*pd->names), cmp_name);

	return f ? (int)(f - pd->names) : -1;
}

/* Add entry @p e (its ports resolved through @p np[0..nnp)) to the accumulator. */
static int
acc_add(struct acc *a, const struct plan_dir *pd, const struct entry *e, bool deny,
        const uint64_t *np, size_t nnp)
{
	size_t i, j;
	unsigned pi;

	if (e->nports == 0) {
		a->flags |= deny ? PS_DENY_ALL : PS_ALLOW_ALL;
		return 0;
	}
	for (i = 0; i < e->nports; i++) {
		const struct port_range *r = &e->ports[i];
		int ni;

		if (r->name[0] == '\0') {
			for (pi = 0; pi < PIDX_N; pi++)
				if ((r->protos & (1u << pi)) &&
				    rvec_push(&a->r[deny][pi], r->lo, r->hi) != 0)
					return -ENOMEM;
			continue;
		}
		/* a name the destination does not have allows (or denies) nothing */
		ni = name_index(pd, r->name);
		for (j = 0; ni >= 0 && j < nnp; j++)
			if (NP_NAME(np[j]) == (uint32_t)ni &&
			    (r->protos & (1u << NP_PIDX(np[j]))) &&
			    rvec_push(&a->r[deny][NP_PIDX(np[j])], NP_PORT(np[j]), NP_PORT(np[j])))
				return -ENOMEM;
	}
	return 0;
}

/* ---- building and extending a compiled object ---- */

/* An entry of a rule that applies to one subject class. */
struct active {
	const struct entry *e;
	bool deny;
};

struct builder {
	struct mg_policy *pol;
	const struct pol_plan *pl;
	struct mg_error *err;
	struct acc acc;
	struct active *act;
	size_t nact, capact;
	uint64_t *row; /* distinct selectors an identity matches */
	uint64_t *key; /* a class key being built */
	size_t keycap; /* words */
	uint64_t *np;  /* named-port words of an identity, per direction */
	size_t npcap;
	uint32_t *rkey; /* a port set key */
	size_t rkeycap;
	uint32_t *stamp; /* per distinct selector: last classify that tried it */
	uint32_t stamp_cur;
	char *lkey; /* a label as an anchor key */
	size_t lkeycap;
};

static int
oom(struct builder *b)
{
	mg_error_set(b->err, NULL, 0, 0, "policy compile: out of memory");
	return -ENOMEM;
}

static int
intern_bitmap(struct builder *b, const struct rvec *v, uint32_t *idx)
{
	struct mg_policy *pol = b->pol;
	bool isnew;
	uint64_t *bm;
	size_t i;
	uint32_t p;
	int rc;

	rc = reg_intern(&pol->bmreg, &pol->nbm, v->v, v->n * sizeof(*v->v), idx, &isnew);
	if (rc || !isnew)
		return rc;
	rc = shv_reserve(&pol->bm, *idx, *idx + 1);
	if (rc)
		return rc;
	bm = shv_at(pol->bm, *idx);
	memset(bm, 0, BM_WORDS * sizeof(uint64_t));
	for (i = 0; i < v->n; i++)
		for (p = v->v[i].lo; p <= v->v[i].hi; p++)
			bm[p >> 6] |= 1ull << (p & 63);
	return 0;
}

/* Turn the accumulator into a port set index (interned). */
static int
acc_intern(struct builder *b, uint32_t *out)
{
	struct acc *a = &b->acc;
	struct mg_policy *pol = b->pol;
	size_t len = 1, k, pi, i;
	uint32_t idx;
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
	if (len > b->rkeycap) {
		void *v = realloc(b->rkey, len * 2 * sizeof(*b->rkey));

		if (v == NULL)
			return -ENOMEM;
		b->rkey = v;
		b->rkeycap = len * 2;
	}
	len = 0;
	b->rkey[len++] = a->flags;
	for (k = 0; k < 2; k++)
		for (pi = 0; pi < PIDX_N; pi++) {
			b->rkey[len++] = (uint32_t)a->r[k][pi].n;
			for (i = 0; i < a->r[k][pi].n; i++) {
				b->rkey[len++] = a->r[k][pi].v[i].lo;
				b->rkey[len++] = a->r[k][pi].v[i].hi;
			}
		}
	rc = reg_intern(&pol->psreg, &pol->nps, b->rkey, len * sizeof(*b->rkey), &idx, &isnew);
	if (rc)
		return rc;
	if (isnew) {
		struct pol_portset *ps;

		rc = shv_reserve(&pol->ps, idx, idx + 1);
		if (rc)
			return rc;
		ps = shv_at(pol->ps, idx);
		memset(ps, 0, sizeof(*ps));
		ps->flags = a->flags;
		for (pi = 0; pi < PIDX_N; pi++) {
			rc = intern_bitmap(b, &a->r[0][pi], &ps->allow[pi]);
			if (rc == 0)
				rc = intern_bitmap(b, &a->r[1][pi], &ps->deny[pi]);
			if (rc)
				return rc;
			/* the bitmap vector may have moved; the port set did not */
		}
	}
	*out = idx;
	return 0;
}

/* Class key of direction @p dir for the current identity: signature + named ports. */
static size_t
make_key(struct builder *b, unsigned dir, bool subject, size_t nnp)
{
	const struct plan_dir *pd = &b->pl->dir[dir];
	const uint32_t *list = subject ? pd->slist : pd->plist;
	size_t n = subject ? pd->ns : pd->np, w = subject ? pd->sw : pd->pw, p;
	/* named ports resolve through the destination: subject on ingress, peer on egress */
	bool with_np = subject == (dir == MG_DIR_INGRESS);

	memset(b->key, 0, w * sizeof(uint64_t));
	for (p = 0; p < n; p++)
		if (bit(b->row, list[p]))
			bit_set(b->key, p);
	if (!with_np)
		return w;
	memcpy(b->key + w, b->np + dir * b->npcap, nnp * sizeof(uint64_t));
	return w + nnp;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Named-port words of identity @p ident for direction @p dir; returns their count. */
static size_t
make_np(struct builder *b, unsigned dir, const struct mg_identity *ident)
{
	const struct plan_dir *pd = &b->pl->dir[dir];
	uint64_t *out = b->np + dir * b->npcap;
	size_t i, n = 0, o;

	if (ident == NULL || pd->nnames == 0)
		return 0;
	for (i = 0; i < ident->n_named_ports; i++) {
		const struct mg_named_port *np = &ident->named_ports[i];
		int ni = name_index(pd, np->name);
		int pi = pol_proto_index(np->proto);

		if (ni < 0 || pi < 0 || pi > PIDX_SCTP)
			continue;
		out[n++] = NP_WORD(ni, pi, np->port);
	}
	if (n < 2)
		return n;
	qsort(out, n, sizeof(*out), cmp_u64);
	for (i = 1, o = 0; i < n; i++)
		if (out[i] != out[o])
			out[++o] = out[i];
	n = o + 1;
	/*
	 * A name the identity's endpoints give two port numbers (for one
	 * protocol) resolves to neither, as Cilium's named-port lookup refuses
	 * duplicates: the sorted words of one (name, protocol) are adjacent.
	 */
	for (i = 0, o = 0; i < n;) {
		size_t j = i + 1;

		while (j < n && out[j] >> 16 == out[i] >> 16)
			j++;
		if (j == i + 1)
			out[o++] = out[i];
		i = j;
	}
	return o;
}

static int
class_limit(struct builder *b, uint32_t idx, const char *role, unsigned dir)
{
	if (idx < POL_MAX_CLASSES)
		return 0;
	mg_error_set(b->err, NULL, 0, 0, "policy compile: more than %u %s classes for %s",
	             POL_MAX_CLASSES, role, pol_section_names[dir]);
	return -E2BIG;
}

/* The four classes of identity @p ident (NULL: no labels, no named ports). */
static int
classify(struct builder *b, const struct mg_identity *ident, uint16_t cls[4])
{
	static const struct mg_labels empty = MG_LABELS_INIT;
	const struct pol_plan *pl = b->pl;
	const struct mg_labels *ls = ident ? &ident->labels : &empty;
	struct mg_policy *pol = b->pol;
	size_t d, i, need, nnp[2];
	unsigned dir;
	int rc;

	/* scratch sized for this identity's named ports */
	need = ident ? ident->n_named_ports : 0;
	if (need > b->npcap) {
		void *v = realloc(b->np, 2 * need * sizeof(*b->np));

		if (v == NULL)
			return oom(b);
		b->np = v;
		b->npcap = need;
	}
	for (dir = 0; dir < 2; dir++) {
		size_t w = pl->dir[dir].sw > pl->dir[dir].pw ? pl->dir[dir].sw : pl->dir[dir].pw;

		if (w + need > b->keycap) {
			void *v = realloc(b->key, (w + need) * sizeof(*b->key));

			if (v == NULL)
				return oom(b);
			b->key = v;
			b->keycap = w + need;
		}
	}
	memset(b->row, 0, ((pl->nd + 63) / 64 + 1) * sizeof(uint64_t));
	/* the selectors without an anchor, then those filed under a label of ours */
	if (++b->stamp_cur == 0) {
		memset(b->stamp, 0, (pl->nd ? pl->nd : 1) * sizeof(*b->stamp));
		b->stamp_cur = 1;
	}
	for (i = 0; i < pl->nalways; i++) {
		d = pl->always[i];
		if (pol_sel_match(pl->drep[d], ls, pl->p.default_local_cluster))
			bit_set(b->row, d);
	}
	for (i = 0; i < ls->n; i++) {
		const struct mg_label *l = &ls->v[i];
		size_t kl = strlen(l->key), vl = strlen(l->value);
		int64_t a;

		if (kl + vl + 1 > b->lkeycap) {
			char *k = realloc(b->lkey, kl + vl + 1);

			if (k == NULL)
				return oom(b);
			b->lkey = k;
			b->lkeycap = kl + vl + 1;
		}
		memcpy(b->lkey, l->key, kl);
		b->lkey[kl] = '\0';
		memcpy(b->lkey + kl + 1, l->value, vl);
		a = itab_find(&pl->anchors, b->lkey, kl + vl + 1);
		for (size_t j = 0; a >= 0 && j < pl->cand[a].n; j++) {
			d = pl->cand[a].v[j];
			if (b->stamp[d] == b->stamp_cur)
				continue;
			b->stamp[d] = b->stamp_cur;
			if (pol_sel_match(pl->drep[d], ls, pl->p.default_local_cluster))
				bit_set(b->row, d);
		}
	}
	for (dir = 0; dir < 2; dir++)
		nnp[dir] = make_np(b, dir, ident);
	for (dir = 0; dir < 2; dir++) {
		struct pol_dirtab *t = &pol->dir[dir];
		uint32_t idx;
		bool isnew;
		size_t len;

		len = make_key(b, dir, true, nnp[dir]);
		rc = reg_intern(&t->sreg, &t->nsc, b->key, len * sizeof(uint64_t), &idx, &isnew);
		if (rc)
			return oom(b);
		rc = class_limit(b, idx, "subject", dir);
		if (rc)
			return rc;
		cls[CLS_SUB(dir)] = (uint16_t)idx;
		len = make_key(b, dir, false, nnp[dir]);
		rc = reg_intern(&t->preg, &t->npc, b->key, len * sizeof(uint64_t), &idx, &isnew);
		if (rc)
			return oom(b);
		rc = class_limit(b, idx, "peer", dir);
		if (rc)
			return rc;
		cls[CLS_PEER(dir)] = (uint16_t)idx;
	}
	return 0;
}

static int
push_active(struct builder *b, const struct entry *e, bool deny)
{
	if (mg_grow(&b->act, &b->capact, b->nact, sizeof(*b->act), 64))
		return -ENOMEM;
	b->act[b->nact].e = e;
	b->act[b->nact].deny = deny;
	b->nact++;
	return 0;
}

/* The entries of every rule selecting subject class @p sc; whether it is enforced. */
static int
collect_active(struct builder *b, unsigned dir, uint32_t sc, bool *enforced)
{
	const struct plan_dir *pd = &b->pl->dir[dir];
	const struct mg_policy_set *s = b->pl->s;
	const uint64_t *ssig = b->pol->dir[dir].sreg->t.keys[sc].data;
	size_t i, j, k;
	unsigned sec;

	*enforced = b->pl->p.enforcement == MG_ENFORCE_ALWAYS;
	b->nact = 0;
	for (i = 0; i < pd->ns; i++) {
		if (!bit(ssig, i))
			continue;
		for (j = 0; j < pd->nrules_at[i]; j++) {
			const struct rule *r = &s->rules[pd->rules_at[i][j]];

			if (!r->no_default_deny[dir])
				*enforced = true;
			for (sec = dir; sec < SEC_N; sec += 2)
				for (k = 0; k < r->nent[sec]; k++)
					if (push_active(b, &r->ent[sec][k], sec_deny(sec)))
						return -ENOMEM;
		}
	}
	return 0;
}

static bool
entry_selects_class(const struct plan_dir *pd, const uint32_t *dsel, const struct entry *e,
                    const uint64_t *psig)
{
	size_t i;

	if (e->skipped)
		return false;
	if (!e->has_l3)
		return e->nports > 0;
	for (i = 0; i < e->npeers; i++) {
		int32_t p = pd->ppos[dsel[e->peers[i]]];

		if (p >= 0 && bit(psig, (size_t)p))
			return true;
	}
	return false;
}

/* Named-port words stored after the signature in a class key. */
static const uint64_t *
key_np(const struct itab *t, uint32_t cls, size_t sigw, size_t *n)
{
	const struct ikey *k = &t->keys[cls];

	*n = k->len / sizeof(uint64_t) - sigw;
	return (const uint64_t *)k->data + sigw;
}

/* The row default of subject class @p sc: its entries without a peer field,
 * which apply to every peer class (named ports on egress: peers without any). */
static int
row_default(struct builder *b, unsigned dir, uint32_t sc, uint32_t *idx)
{
	const struct plan_dir *pd = &b->pl->dir[dir];
	const struct pol_dirtab *t = &b->pol->dir[dir];
	const uint64_t *snp;
	size_t nsnp, i;

	snp = key_np(&t->sreg->t, sc, pd->sw, &nsnp);
	acc_reset(&b->acc);
	for (i = 0; i < b->nact; i++) {
		const struct entry *e = b->act[i].e;

		if (!e->skipped && !e->has_l3 && e->nports > 0 &&
		    acc_add(&b->acc, pd, e, b->act[i].deny, dir == MG_DIR_INGRESS ? snp : NULL,
		            dir == MG_DIR_INGRESS ? nsnp : 0))
			return -ENOMEM;
	}
	return acc_intern(b, idx);
}

/*
 * Fill the cells of subject class @p sc for peer classes [pc0, pc1): only
 * a peer class that some entry with a peer field selects (or, on egress,
 * one whose named ports may resolve a name) can differ from the row's
 * default, and only a cell that does differ is stored.
 */
static int
fill_row(struct builder *b, unsigned dir, uint32_t sc, uint32_t pc0, uint32_t pc1)
{
	const struct plan_dir *pd = &b->pl->dir[dir];
	struct pol_dirtab *t = &b->pol->dir[dir];
	uint32_t def = *(const uint32_t *)shv_at(t->rdef, sc);
	const uint64_t *snp, *pnp;
	size_t nsnp, npnp, i;
	uint32_t pc, idx;
	int rc;

	snp = key_np(&t->sreg->t, sc, pd->sw, &nsnp);
	for (pc = pc0; pc < pc1; pc++) {
		const uint64_t *psig = t->preg->t.keys[pc].data;
		const uint64_t *np;
		bool cand = false;
		size_t nnp;

		pnp = key_np(&t->preg->t, pc, pd->pw, &npnp);
		if (dir == MG_DIR_EGRESS && npnp > 0)
			cand = true;
		for (i = 0; !cand && i < b->nact; i++)
			cand = b->act[i].e->has_l3 &&
			       entry_selects_class(pd, b->pl->dsel, b->act[i].e, psig);
		if (!cand)
			continue;
		np = dir == MG_DIR_INGRESS ? snp : pnp;
		nnp = dir == MG_DIR_INGRESS ? nsnp : npnp;
		acc_reset(&b->acc);
		for (i = 0; i < b->nact; i++)
			if (entry_selects_class(pd, b->pl->dsel, b->act[i].e, psig) &&
			    acc_add(&b->acc, pd, b->act[i].e, b->act[i].deny, np, nnp))
				return -ENOMEM;
		rc = acc_intern(b, &idx);
		if (rc)
			return rc;
		if (idx != def && (rc = cells_put_cell(&t->cells, sc, pc, idx)) != 0)
			return rc;
	}
	return 0;
}

/* Give direction @p dir the cells of classes that did not exist in (osc, opc). */
static int
extend_dir(struct builder *b, unsigned dir, uint32_t osc, uint32_t opc)
{
	struct pol_dirtab *t = &b->pol->dir[dir];
	uint32_t sc;
	bool enf;
	int rc;

	if (t->nsc == osc && t->npc == opc)
		return 0;
	rc = cells_reserve(&t->cells, osc, opc, t->nsc, t->npc);
	if (rc == 0)
		rc = shv_reserve(&t->enf, osc, t->nsc);
	if (rc == 0)
		rc = shv_reserve(&t->rdef, osc, t->nsc);
	if (rc)
		return oom(b);
	for (sc = 0; sc < t->nsc; sc++) {
		uint32_t from = sc < osc ? opc : 0;

		if (from >= t->npc)
			continue;
		if (collect_active(b, dir, sc, &enf))
			return oom(b);
		if (sc >= osc) {
			uint32_t def;

			*(uint8_t *)shv_at(t->enf, sc) = enf;
			rc = row_default(b, dir, sc, &def);
			if (rc)
				return rc == -ENOMEM ? oom(b) : rc;
			*(uint32_t *)shv_at(t->rdef, sc) = def;
		}
		rc = fill_row(b, dir, sc, from, t->npc);
		if (rc == -E2BIG) {
			mg_error_set(b->err, NULL, 0, 0,
			             "policy compile: more than %u distinct cells for %s "
			             "(%u subject x %u peer classes)",
			             POL_MAX_CELLS, pol_section_names[dir], t->nsc, t->npc);
			return rc;
		}
		if (rc)
			return rc == -ENOMEM ? oom(b) : rc;
	}
	return 0;
}

static void
finalize(struct mg_policy *pol)
{
	size_t mem = sizeof(*pol);
	unsigned d;

	pol->shift = 32 - pol->map->bits;
	pol->leaves = pol->map->leaf;
	pol->psv = (const struct pol_portset *)pol->ps->data;
	pol->bmv = pol->bm->data;
	mem += pol->map->bytes + pol->plan->bytes;
	mem += pol->ps->cap * pol->ps->esz + pol->bm->cap * pol->bm->esz;
	mem += itab_bytes(&pol->psreg->t) + itab_bytes(&pol->bmreg->t);
	for (d = 0; d < 2; d++) {
		struct pol_dirtab *t = &pol->dir[d];

		t->cellv = t->cells->s;
		t->cmask = t->cells->mask;
		t->rdefv = (const uint32_t *)t->rdef->data;
		t->enfv = (const uint8_t *)t->enf->data;
		mem += (t->cells->mask + 1) * sizeof(uint64_t) + t->enf->cap +
		       t->rdef->cap * sizeof(uint32_t) + itab_bytes(&t->sreg->t) +
		       itab_bytes(&t->preg->t);
	}
	pol->memory = mem;
}

static void
builder_free(struct builder *b)
{
	acc_free(&b->acc);
	free(b->act);
	free(b->row);
	free(b->key);
	free(b->np);
	free(b->rkey);
	free(b->stamp);
	free(b->lkey);
}

static int
builder_init(struct builder *b, struct mg_policy *pol, struct mg_error *err)
{
	memset(b, 0, sizeof(*b));
	b->pol = pol;
	b->pl = pol->plan;
	b->err = err;
	b->row = calloc((b->pl->nd + 63) / 64 + 1, sizeof(uint64_t));
	b->keycap = 1;
	b->key = calloc(1, sizeof(uint64_t));
	b->npcap = 1;
	b->np = calloc(2, sizeof(uint64_t));
	b->stamp = calloc(b->pl->nd ? b->pl->nd : 1, sizeof(*b->stamp));
	if (b->row == NULL || b->key == NULL || b->np == NULL || b->stamp == NULL)
		return oom(b);
	return 0;
}

/* Classify one identity (or drop it when @p ids no longer holds it). */
static int
apply_one(struct builder *b, const struct mg_identity_table *ids, uint32_t id)
{
	const struct mg_identity *ident = mg_identity_table_get(ids, id);
	uint16_t cls[4];
	int rc;

	if (ident == NULL)
		return map_remove(b->pol->map, id) ? oom(b) : 0;
	rc = classify(b, ident, cls);
	if (rc)
		return rc;
	return map_insert(&b->pol->map, id, cls) ? oom(b) : 0;
}

struct walk_ctx {
	struct builder *b;
	const struct mg_identity_table *ids;
};

static int
walk_one(const struct mg_identity *e, void *arg)
{
	struct walk_ctx *w = arg;
	uint16_t cls[4];
	int rc = classify(w->b, e, cls);

	if (rc)
		return rc;
	return map_insert(&w->b->pol->map, e->id, cls) ? oom(w->b) : 0;
}

static int
extend_all(struct builder *b, const uint32_t osc[2], const uint32_t opc[2])
{
	unsigned d;
	int rc;

	for (d = 0; d < 2; d++) {
		rc = extend_dir(b, d, osc[d], opc[d]);
		if (rc)
			return rc;
	}
	return 0;
}

static struct mg_policy *
never_policy(uint64_t revision)
{
	struct mg_policy *pol = calloc(1, sizeof(*pol));

	if (pol == NULL)
		return NULL;
	pol->revision = revision;
	pol->never = true;
	pol->memory = sizeof(*pol);
	return pol;
}

struct mg_policy *
mg_policy_compile(const struct mg_policy_set *s, const struct mg_identity_table *ids,
                  const struct mg_policy_params *p, struct mg_error *err)
{
	static const uint32_t zero[2] = {0, 0};
	struct walk_ctx w;
	struct mg_policy *pol;
	struct builder b;
	unsigned bits = MAP_MIN_BITS, d;
	struct rvec none = {0};
	uint32_t idx;
	int rc;

	if (s == NULL || ids == NULL || p == NULL) {
		mg_error_set(err, NULL, 0, 0, "policy compile: missing argument");
		errno = EINVAL;
		return NULL;
	}
	if (p->enforcement == MG_ENFORCE_NEVER) {
		/* nothing is enforced: no tables at all */
		pol = never_policy(p->revision);
		if (pol == NULL) {
			mg_error_set(err, NULL, 0, 0, "policy compile: out of memory");
			errno = ENOMEM;
		}
		return pol;
	}
	pol = calloc(1, sizeof(*pol));
	if (pol == NULL) {
		mg_error_set(err, NULL, 0, 0, "policy compile: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	pol->revision = p->revision;
	while (((size_t)LEAF_AVG << bits) < mg_identity_table_count(ids))
		bits++;
	pol->plan = plan_build(s, p);
	pol->map = map_new(bits);
	pol->ps = shv_new(sizeof(struct pol_portset), 16);
	pol->bm = shv_new(BM_WORDS * sizeof(uint64_t), 4);
	pol->psreg = reg_new();
	pol->bmreg = reg_new();
	for (d = 0; d < 2; d++) {
		pol->dir[d].enf = shv_new(1, 16);
		pol->dir[d].rdef = shv_new(sizeof(uint32_t), 16);
		pol->dir[d].cells = cells_new(64);
		pol->dir[d].sreg = reg_new();
		pol->dir[d].preg = reg_new();
	}
	if (pol->plan == NULL || pol->map == NULL || pol->ps == NULL || pol->bm == NULL ||
	    pol->psreg == NULL || pol->bmreg == NULL || pol->dir[0].enf == NULL ||
	    pol->dir[1].enf == NULL || pol->dir[0].rdef == NULL || pol->dir[1].rdef == NULL ||
	    pol->dir[0].cells == NULL || pol->dir[1].cells == NULL || pol->dir[0].sreg == NULL ||
	    pol->dir[0].preg == NULL || pol->dir[1].sreg == NULL || pol->dir[1].preg == NULL) {
		mg_policy_free(pol);
		mg_error_set(err, NULL, 0, 0, "policy compile: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	rc = builder_init(&b, pol, err);
	/* bitmap 0 is the empty one, whatever port set comes first */
	if (rc == 0 && intern_bitmap(&b, &none, &idx) != 0)
		rc = oom(&b);
	/* the classes of every identity the table does not hold: no labels */
	if (rc == 0)
		rc = classify(&b, NULL, pol->nolabels.cls);
	if (rc == 0) {
		w.b = &b;
		w.ids = ids;
		rc = mg_identity_table_walk(ids, walk_one, &w);
	}
	if (rc == 0)
		rc = extend_all(&b, zero, zero);
	builder_free(&b);
	if (rc) {
		mg_policy_free(pol);
		errno = -rc;
		return NULL;
	}
	finalize(pol);
	return pol;
}

struct mg_policy *
mg_policy_update_identities(const struct mg_policy *old, const struct mg_policy_set *s,
                            const struct mg_identity_table *ids, const uint32_t *idv, size_t n,
                            struct mg_error *err)
{
	struct mg_policy *pol;
	struct builder b;
	uint32_t osc[2], opc[2];
	unsigned d;
	size_t i;
	int rc;

	if (old == NULL || s == NULL || ids == NULL || (idv == NULL && n > 0)) {
		mg_error_set(err, NULL, 0, 0, "policy update: missing argument");
		errno = EINVAL;
		return NULL;
	}
	if (old->never) {
		pol = never_policy(old->revision);
		if (pol == NULL) {
			mg_error_set(err, NULL, 0, 0, "policy update: out of memory");
			errno = ENOMEM;
		}
		return pol;
	}
	if (old->plan->s != s || old->plan->gen != s->gen) {
		mg_error_set(err, NULL, 0, 0,
		             "policy update: the policy set is not the one compiled; compile "
		             "again");
		errno = EINVAL;
		return NULL;
	}
	pol = malloc(sizeof(*pol));
	if (pol == NULL)
		goto oom;
	/* share everything; what changes is copied or extended past old's view */
	*pol = *old;
	pol->map = map_clone(old->map);
	if (pol->map == NULL) {
		free(pol);
		goto oom;
	}
	pol->plan->refs++;
	pol->ps->refs++;
	pol->bm->refs++;
	pol->psreg->refs++;
	pol->bmreg->refs++;
	for (d = 0; d < 2; d++) {
		pol->dir[d].cells->refs++;
		pol->dir[d].enf->refs++;
		pol->dir[d].rdef->refs++;
		pol->dir[d].sreg->refs++;
		pol->dir[d].preg->refs++;
		osc[d] = old->dir[d].nsc;
		opc[d] = old->dir[d].npc;
	}
	rc = builder_init(&b, pol, err);
	for (i = 0; rc == 0 && i < n; i++)
		rc = apply_one(&b, ids, idv[i]);
	if (rc == 0)
		rc = extend_all(&b, osc, opc);
	builder_free(&b);
	if (rc) {
		mg_policy_free(pol);
		errno = -rc;
		return NULL;
	}
	finalize(pol);
	return pol;
oom:
	mg_error_set(err, NULL, 0, 0, "policy update: out of memory");
	errno = ENOMEM;
	return NULL;
}
