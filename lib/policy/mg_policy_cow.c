/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The copy-on-write blocks compiled policies share: append-only vectors
 * (struct shv: the per-class arrays, port sets, bitmaps) and the sparse
 * cell tables of each direction (struct pol_cells). A compiled object is
 * immutable once published, yet an update must not copy every table. So
 * each block remembers the dimensions of its newest writer (its claim):
 * the object whose dimensions equal the claim extends the block in place,
 * writing only past what its parent reads; anyone else copies first.
 * Cells are single 64-bit stores, so a worker probing a table being
 * extended never sees half a cell, and a full table is copied into a
 * larger one rather than resized under its readers.
 */
#include <stdlib.h>
#include <string.h>

#include "policy_priv.h"

struct shv *
pol_shv_new(size_t esz, size_t cap)
{
	struct shv *v = calloc(1, sizeof(*v) + esz * cap);

	if (v == NULL)
		return NULL;
	v->refs = 1;
	v->cap = cap;
	v->esz = esz;
	return v;
}

void
pol_shv_put(struct shv *v)
{
	if (v != NULL && --v->refs == 0)
		free(v);
}

/* Make elements [len, need) of *@p v writable for an object of length @p len. */
int
pol_shv_reserve(struct shv **v, size_t len, size_t need)
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
	n = pol_shv_new(o->esz, cap);
	if (n == NULL)
		return -ENOMEM;
	memcpy(n->data, o->data, len * o->esz);
	n->claim = need;
	pol_shv_put(o);
	*v = n;
	return 0;
}

void
pol_cells_put(struct pol_cells *c)
{
	if (c != NULL && --c->refs == 0)
		free(c);
}

struct pol_cells *
pol_cells_new(size_t slots)
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
	size_t i = pol_cell_slot((uint32_t)(v >> 32), c->mask);

	while (c->s[i] != CELL_EMPTY)
		i = mg_probe_next(i, c->mask);
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
	c = pol_cells_new(slots);
	for (i = 0; c != NULL && o != NULL && i <= o->mask; i++) {
		uint64_t v = o->s[i];
		uint32_t k = (uint32_t)(v >> 32);

		if (v != CELL_EMPTY && (k >> 16) < sc && (k & 0xffff) < pc)
			cells_place(c, v);
	}
	return c;
}

/* Make the cells outside [osc x opc] but inside [nsc x npc] writable. */
int
pol_cells_reserve(struct pol_cells **cp, uint32_t osc, uint32_t opc, uint32_t nsc, uint32_t npc)
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
	pol_cells_put(o);
	*cp = n;
	return 0;
}

/* Set cell (sc, pc) of a table pol_cells_reserve() made writable; it grows by copying. */
int
pol_cells_put_cell(struct pol_cells **cp, uint32_t sc, uint32_t pc, uint32_t ps)
{
	struct pol_cells *c = *cp, *n;

	if ((c->n + 1) * 2 > c->mask + 1) {
		if (c->n >= pol_cap_cells)
			return -E2BIG;
		/* never resized in place: an older object may still read this one */
		n = cells_copy(c, UINT32_MAX, UINT32_MAX, c->n + 1);
		if (n == NULL)
			return -ENOMEM;
		n->claim_sc = c->claim_sc;
		n->claim_pc = c->claim_pc;
		pol_cells_put(c);
		*cp = c = n;
	}
	cells_place(c, ((uint64_t)(sc << 16 | pc) << 32) | ps);
	return 0;
}
