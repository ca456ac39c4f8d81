/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The builder: fills a compiled policy's classes and table cells. An
 * identity is classified by evaluating its candidate selectors once (a
 * bit row), then keyed per direction and role by the row restricted to
 * the plan's positions plus, on the destination side, what its named
 * ports resolve the used names to; equal keys share a class. A new
 * subject class gets its row default (its entries without a peer field)
 * and the cells of the peer classes its rules relate to; a new peer class
 * its cells in every row. A cell accumulates the matching entries' port
 * ranges into a port set (ALLOW_ALL / DENY_ALL flags and per protocol
 * allow and deny ranges, merged), interned, each range list interned
 * again as a 65536-bit bitmap. The full compile and an incremental update
 * are the same code run from empty or from a parent's dimensions.
 */
#include <stdlib.h>
#include <string.h>

#include "policy_priv.h"

uint32_t pol_cap_classes = POL_MAX_CLASSES;
uint32_t pol_cap_cells = POL_MAX_CELLS;

void
pol_test_set_caps(uint32_t classes, uint32_t cells)
{
	pol_cap_classes = classes ? classes : POL_MAX_CLASSES;
	pol_cap_cells = cells ? cells : POL_MAX_CELLS;
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
		ni = pol_plan_name_index(pd, r->name);
		for (j = 0; ni >= 0 && j < nnp; j++)
			if (NP_NAME(np[j]) == (uint32_t)ni &&
			    (r->protos & (1u << NP_PIDX(np[j]))) &&
			    rvec_push(&a->r[deny][NP_PIDX(np[j])], NP_PORT(np[j]), NP_PORT(np[j])))
				return -ENOMEM;
	}
	return 0;
}

/* ---- classes and cells ---- */

/* An entry of a rule that applies to one subject class. */
struct active {
	const struct entry *e;
	bool deny;
};

/* A list of peer classes. */
struct pcl {
	uint32_t *v;
	size_t n, cap;
};

struct builder {
	struct mg_policy *pol;
	const struct pol_plan *pl;
	struct mg_error *err;
	struct acc acc;
	struct active *act;
	size_t nact, capact;
	uint32_t *hit; /* distinct selectors an identity matches (nhit of them) */
	size_t nhit;
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
	/* The peer classes of one direction by peer position (a class is
	 * filed under every position its key has), and on egress those with
	 * named ports: a row's candidate cells without a walk of every class. */
	struct pcl *byp;
	size_t nbyp;
	struct pcl npcls;
	int pcidx_dir;  /* the direction indexed, or -1 */
	uint32_t *seen; /* per peer class: the row that last listed it */
	size_t capseen;
	uint32_t seen_cur;
	struct pcl cand; /* a row's candidate peer classes */
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

	rc = pol_reg_intern(&pol->bmreg, &pol->nbm, v->v, v->n * sizeof(*v->v), idx, &isnew);
	if (rc || !isnew)
		return rc;
	rc = pol_shv_reserve(&pol->bm, *idx, *idx + 1);
	if (rc)
		return rc;
	bm = pol_shv_at(pol->bm, *idx);
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
	rc = pol_reg_intern(&pol->psreg, &pol->nps, b->rkey, len * sizeof(*b->rkey), &idx, &isnew);
	if (rc)
		return rc;
	if (isnew) {
		struct pol_portset *ps;

		rc = pol_shv_reserve(&pol->ps, idx, idx + 1);
		if (rc)
			return rc;
		ps = pol_shv_at(pol->ps, idx);
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
	const int32_t *pos = subject ? pd->spos : pd->ppos;
	size_t w = subject ? pd->sw : pd->pw, i;
	/* named ports resolve through the destination: subject on ingress, peer on egress */
	bool with_np = subject == (dir == MG_DIR_INGRESS);

	/* the matched selectors' positions: a few, where the signature has thousands */
	memset(b->key, 0, w * sizeof(uint64_t));
	for (i = 0; i < b->nhit; i++)
		if (pos[b->hit[i]] >= 0)
			bit_set(b->key, (size_t)pos[b->hit[i]]);
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
		int ni = pol_plan_name_index(pd, np->name);
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
	if (idx < pol_cap_classes)
		return 0;
	mg_error_set(b->err, NULL, 0, 0, "policy compile: more than %u %s classes for %s",
	             pol_cap_classes, role, pol_section_names[dir]);
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
	b->nhit = 0;
	/* the selectors without an anchor, then those filed under a label of ours */
	if (++b->stamp_cur == 0) {
		memset(b->stamp, 0, (pl->nd ? pl->nd : 1) * sizeof(*b->stamp));
		b->stamp_cur = 1;
	}
	for (i = 0; i < pl->nalways; i++) {
		d = pl->always[i];
		if (pol_sel_match(pl->drep[d], ls, pl->p.default_local_cluster))
			b->hit[b->nhit++] = (uint32_t)d;
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
		a = pol_itab_find(&pl->anchors, b->lkey, kl + vl + 1);
		for (size_t j = 0; a >= 0 && j < pl->cand[a].n; j++) {
			d = pl->cand[a].v[j];
			if (b->stamp[d] == b->stamp_cur)
				continue;
			b->stamp[d] = b->stamp_cur;
			if (pol_sel_match(pl->drep[d], ls, pl->p.default_local_cluster))
				b->hit[b->nhit++] = (uint32_t)d;
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
		rc = pol_reg_intern(&t->sreg, &t->nsc, b->key, len * sizeof(uint64_t), &idx,
		                    &isnew);
		if (rc)
			return oom(b);
		rc = class_limit(b, idx, "subject", dir);
		if (rc)
			return rc;
		cls[CLS_SUB(dir)] = (uint16_t)idx;
		len = make_key(b, dir, false, nnp[dir]);
		rc = pol_reg_intern(&t->preg, &t->npc, b->key, len * sizeof(uint64_t), &idx,
		                    &isnew);
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

static int
pcl_push(struct pcl *l, uint32_t pc)
{
	if (mg_grow(&l->v, &l->cap, l->n, sizeof(*l->v), 8))
		return -ENOMEM;
	l->v[l->n++] = pc;
	return 0;
}

static void
pcidx_free(struct builder *b)
{
	for (size_t p = 0; p < b->nbyp; p++)
		free(b->byp[p].v);
	free(b->byp);
	b->byp = NULL;
	b->nbyp = 0;
	b->npcls.n = 0;
	b->pcidx_dir = -1;
}

/* File direction @p dir's peer classes under their positions (once per extend). */
static int
pcidx_build(struct builder *b, unsigned dir)
{
	const struct plan_dir *pd = &b->pl->dir[dir];
	const struct pol_dirtab *t = &b->pol->dir[dir];
	uint32_t pc;

	if (b->pcidx_dir == (int)dir)
		return 0;
	pcidx_free(b);
	b->byp = calloc(pd->np ? pd->np : 1, sizeof(*b->byp));
	if (b->byp == NULL)
		return -ENOMEM;
	b->nbyp = pd->np;
	if (t->npc > b->capseen) {
		uint32_t *v = realloc(b->seen, t->npc * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		memset(v + b->capseen, 0, (t->npc - b->capseen) * sizeof(*v));
		b->seen = v;
		b->capseen = t->npc;
	}
	for (pc = 0; pc < t->npc; pc++) {
		const uint64_t *psig = t->preg->t.keys[pc].data;
		size_t npnp;

		for (size_t w = 0; w < pd->pw; w++)
			for (uint64_t m = psig[w]; m != 0; m &= m - 1)
				if (pcl_push(&b->byp[w * 64 + (size_t)__builtin_ctzll(m)], pc))
					return -ENOMEM;
		(void)key_np(&t->preg->t, pc, pd->pw, &npnp);
		if (dir == MG_DIR_EGRESS && npnp > 0 && pcl_push(&b->npcls, pc))
			return -ENOMEM;
	}
	b->pcidx_dir = (int)dir;
	return 0;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int
cand_add(struct builder *b, uint32_t pc, uint32_t pc0, uint32_t pc1)
{
	if (pc < pc0 || pc >= pc1 || b->seen[pc] == b->seen_cur)
		return 0;
	b->seen[pc] = b->seen_cur;
	return pcl_push(&b->cand, pc);
}

/*
 * The peer classes in [pc0, pc1) whose cell in the row of the active
 * entries may differ from the row's default, in order: those some entry
 * with a peer field selects (through the index, not a walk of every
 * class) and, on egress, those whose named ports may resolve a name.
 */
static int
row_candidates(struct builder *b, unsigned dir, uint32_t pc0, uint32_t pc1)
{
	const struct plan_dir *pd = &b->pl->dir[dir];
	size_t i, k, j;

	b->cand.n = 0;
	if (pc1 - pc0 <= 64) {
		/* a few new classes (an update): look at each */
		const struct pol_dirtab *t = &b->pol->dir[dir];

		for (uint32_t pc = pc0; pc < pc1; pc++) {
			const uint64_t *psig = t->preg->t.keys[pc].data;
			bool cand = false;
			size_t npnp;

			(void)key_np(&t->preg->t, pc, pd->pw, &npnp);
			if (dir == MG_DIR_EGRESS && npnp > 0)
				cand = true;
			for (i = 0; !cand && i < b->nact; i++)
				cand = b->act[i].e->has_l3 &&
				       entry_selects_class(pd, b->pl->dsel, b->act[i].e, psig);
			if (cand && pcl_push(&b->cand, pc))
				return -ENOMEM;
		}
		return 0;
	}
	if (pcidx_build(b, dir))
		return -ENOMEM;
	if (++b->seen_cur == 0) {
		memset(b->seen, 0, b->capseen * sizeof(*b->seen));
		b->seen_cur = 1;
	}
	for (j = 0; j < b->npcls.n; j++)
		if (cand_add(b, b->npcls.v[j], pc0, pc1))
			return -ENOMEM;
	for (i = 0; i < b->nact; i++) {
		const struct entry *e = b->act[i].e;

		if (e->skipped || !e->has_l3)
			continue;
		for (k = 0; k < e->npeers; k++) {
			int32_t p = pd->ppos[b->pl->dsel[e->peers[k]]];

			for (j = 0; p >= 0 && j < b->byp[p].n; j++)
				if (cand_add(b, b->byp[p].v[j], pc0, pc1))
					return -ENOMEM;
		}
	}
	if (b->cand.n > 1)
		qsort(b->cand.v, b->cand.n, sizeof(*b->cand.v), cmp_u32);
	return 0;
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
	uint32_t def = *(const uint32_t *)pol_shv_at(t->rdef, sc);
	const uint64_t *snp, *pnp;
	size_t nsnp, npnp, i, c;
	uint32_t pc, idx;
	int rc;

	snp = key_np(&t->sreg->t, sc, pd->sw, &nsnp);
	if (row_candidates(b, dir, pc0, pc1))
		return -ENOMEM;
	for (c = 0; c < b->cand.n; c++) {
		const uint64_t *psig, *np;
		size_t nnp;

		pc = b->cand.v[c];
		psig = t->preg->t.keys[pc].data;
		pnp = key_np(&t->preg->t, pc, pd->pw, &npnp);
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
		if (idx != def && (rc = pol_cells_put_cell(&t->cells, sc, pc, idx)) != 0)
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
	rc = pol_cells_reserve(&t->cells, osc, opc, t->nsc, t->npc);
	if (rc == 0)
		rc = pol_shv_reserve(&t->enf, osc, t->nsc);
	if (rc == 0)
		rc = pol_shv_reserve(&t->rdef, osc, t->nsc);
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

			*(uint8_t *)pol_shv_at(t->enf, sc) = enf;
			rc = row_default(b, dir, sc, &def);
			if (rc)
				return rc == -ENOMEM ? oom(b) : rc;
			*(uint32_t *)pol_shv_at(t->rdef, sc) = def;
		}
		rc = fill_row(b, dir, sc, from, t->npc);
		if (rc == -E2BIG) {
			mg_error_set(b->err, NULL, 0, 0,
			             "policy compile: more than %u distinct cells for %s "
			             "(%u subject x %u peer classes)",
			             pol_cap_cells, pol_section_names[dir], t->nsc, t->npc);
			return rc;
		}
		if (rc)
			return rc == -ENOMEM ? oom(b) : rc;
	}
	return 0;
}

static void
builder_free(struct builder *b)
{
	acc_free(&b->acc);
	free(b->act);
	free(b->hit);
	free(b->key);
	free(b->np);
	free(b->rkey);
	free(b->stamp);
	free(b->lkey);
	pcidx_free(b);
	free(b->npcls.v);
	free(b->seen);
	free(b->cand.v);
}

static int
builder_init(struct builder *b, struct mg_policy *pol, struct mg_error *err)
{
	memset(b, 0, sizeof(*b));
	b->pol = pol;
	b->pl = pol->plan;
	b->err = err;
	/* each distinct selector is tried at most once per identity (stamps) */
	b->hit = calloc(b->pl->nd ? b->pl->nd : 1, sizeof(*b->hit));
	b->keycap = 1;
	b->key = calloc(1, sizeof(uint64_t));
	b->npcap = 1;
	b->np = calloc(2, sizeof(uint64_t));
	b->stamp = calloc(b->pl->nd ? b->pl->nd : 1, sizeof(*b->stamp));
	b->pcidx_dir = -1;
	if (b->hit == NULL || b->key == NULL || b->np == NULL || b->stamp == NULL)
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
		return pol_map_remove(b->pol->map, id) ? oom(b) : 0;
	rc = classify(b, ident, cls);
	if (rc)
		return rc;
	return pol_map_insert(&b->pol->map, id, cls) ? oom(b) : 0;
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
	return pol_map_insert(&w->b->pol->map, e->id, cls) ? oom(w->b) : 0;
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

int
pol_build_all(struct mg_policy *pol, const struct mg_identity_table *ids, struct mg_error *err)
{
	static const uint32_t zero[2] = {0, 0};
	struct walk_ctx w;
	struct builder b;
	struct rvec none = {0};
	uint32_t idx;
	int rc;

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
	return rc;
}

int
pol_build_update(struct mg_policy *pol, const struct mg_identity_table *ids, const uint32_t *idv,
                 size_t n, const uint32_t osc[2], const uint32_t opc[2], struct mg_error *err)
{
	struct builder b;
	size_t i;
	int rc;

	rc = builder_init(&b, pol, err);
	for (i = 0; rc == 0 && i < n; i++)
		rc = apply_one(&b, ids, idv[i]);
	if (rc == 0)
		rc = extend_all(&b, osc, opc);
	builder_free(&b);
	return rc;
}
