/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The identity map of a compiled policy: identity -> its four classes
 * (subject and peer, per direction), read by every verdict. A private
 * open-addressing table in two levels: a directory of 2^bits pointers
 * chosen by the top bits of the identity's hash, each to a small leaf
 * (linear probing, load at most 1/2). Two levels so that an update
 * copies the directory (8 bytes per LEAF_AVG identities) and only the
 * leaves it writes, while the older generation keeps reading the shared
 * ones. The directory doubles when identities average more than LEAF_AVG
 * per leaf. The lookup itself is in mg_policy_verdict.c.
 */
#include <stdlib.h>
#include <string.h>

#include "policy_priv.h"

/* A leaf holds about LEAF_AVG identities before the directory doubles. */
#define MAP_MIN_BITS 4
#define LEAF_MIN_CAP 8
#define LEAF_AVG 8

static void
leaf_put(struct pol_leaf *l)
{
	if (l != NULL && --l->refs == 0)
		free(l);
}

void
pol_map_put(struct pol_idmap *m)
{
	size_t i;

	if (m == NULL || --m->refs != 0)
		return;
	for (i = 0; i < (size_t)1 << m->bits; i++)
		leaf_put(m->leaf[i]);
	free(m);
}

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
	uint32_t i = (uint32_t)mg_probe_home(pol_id_hash(sl->key), l->mask);

	while (l->s[i].key != 0)
		i = (uint32_t)mg_probe_next(i, l->mask);
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

struct pol_idmap *
pol_map_new(size_t count)
{
	unsigned bits = MAP_MIN_BITS;

	while (((size_t)LEAF_AVG << bits) < count)
		bits++;
	return map_new(bits);
}

/* A private directory naming the same (shared) leaves. */
struct pol_idmap *
pol_map_clone(const struct pol_idmap *o)
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
			li = pol_leaf_of(pol_id_hash(sl->key), m->bits);
			t = m->leaf[li];
			if (t == NULL || (t->n + 1) * 2 > t->mask + 1) {
				t = leaf_copy(t, t ? (t->mask + 1) * 2 : LEAF_MIN_CAP);
				if (t == NULL) {
					pol_map_put(m);
					return -ENOMEM;
				}
				map_set_leaf(m, li, t);
			}
			leaf_place(t, sl);
		}
	}
	m->count = o->count;
	pol_map_put(o);
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
	for (i = (uint32_t)mg_probe_home(pol_id_hash(key), l->mask);;
	     i = (uint32_t)mg_probe_next(i, l->mask)) {
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

int
pol_map_insert(struct pol_idmap **mp, uint32_t id, const uint16_t cls[4])
{
	struct pol_idmap *m = *mp;
	struct pol_slot sl = {.key = id + 1};
	size_t li = pol_leaf_of(pol_id_hash(sl.key), m->bits);
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

int
pol_map_remove(struct pol_idmap *m, uint32_t id)
{
	uint32_t key = id + 1, hole, i;
	size_t li = pol_leaf_of(pol_id_hash(key), m->bits);
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
	for (i = (uint32_t)mg_probe_next(hole, l->mask); l->s[i].key != 0;
	     i = (uint32_t)mg_probe_next(i, l->mask)) {
		if (mg_probe_may_fill(mg_probe_home(pol_id_hash(l->s[i].key), l->mask), hole, i,
		                      l->mask)) {
			l->s[hole] = l->s[i];
			hole = i;
		}
	}
	memset(&l->s[hole], 0, sizeof(l->s[hole]));
	l->n--;
	m->count--;
	return 0;
}
