/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Interning for the policy compiler: byte strings (selector encodings,
 * class keys, port sets, bitmaps) to dense indices, so that equal things
 * are computed and stored once and compared as numbers. A table is open
 * addressing over indices (load at most 1/2, never shrunk) plus the keys
 * in index order. struct pol_reg shares a table between compiled
 * generations: a generation appends only when it is the table's newest
 * user, so an older generation's indices never change under it.
 * Control plane only; the data path never interns.
 */
#include <stdlib.h>
#include <string.h>

#include "policy_priv.h"

void
pol_itab_free(struct itab *t)
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
		j = mg_probe_home(t->keys[i].h, cap - 1);
		while (slot[j] != 0)
			j = mg_probe_next(j, cap - 1);
		slot[j] = (uint32_t)i + 1;
	}
	free(t->slot);
	t->slot = slot;
	t->cap = cap;
	return 0;
}

/* Index of @p key, added if new (*isnew then true). 0 or -ENOMEM. */
int
pol_itab_intern(struct itab *t, const void *key, size_t len, uint32_t *idx, bool *isnew)
{
	uint64_t h;
	size_t j;

	if (len == 0)
		key = ""; /* an empty key may come with a NULL pointer */
	h = mg_hash_bytes(key, len, 0);

	if ((t->n + 1) * 2 > t->cap && itab_grow(t) != 0)
		return -ENOMEM;
	for (j = mg_probe_home(h, t->cap - 1); t->slot[j] != 0; j = mg_probe_next(j, t->cap - 1)) {
		const struct ikey *k = &t->keys[t->slot[j] - 1];

		if (k->h == h && k->len == len && memcmp(k->data, key, len) == 0) {
			*idx = t->slot[j] - 1;
			*isnew = false;
			return 0;
		}
	}
	if (mg_grow(&t->keys, &t->kcap, t->n, sizeof(*t->keys), 64))
		return -ENOMEM;
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
int64_t
pol_itab_find(const struct itab *t, const void *key, size_t len)
{
	uint64_t h;
	size_t j;

	if (t->cap == 0)
		return -1;
	h = mg_hash_bytes(key, len, 0);
	for (j = mg_probe_home(h, t->cap - 1); t->slot[j] != 0; j = mg_probe_next(j, t->cap - 1)) {
		const struct ikey *k = &t->keys[t->slot[j] - 1];

		if (k->h == h && k->len == len && memcmp(k->data, key, len) == 0)
			return t->slot[j] - 1;
	}
	return -1;
}

size_t
pol_itab_bytes(const struct itab *t)
{
	return t->cap * sizeof(uint32_t) + t->kcap * sizeof(struct ikey) + t->bytes;
}

struct pol_reg *
pol_reg_new(void)
{
	struct pol_reg *r = calloc(1, sizeof(*r));

	if (r != NULL)
		r->refs = 1;
	return r;
}

void
pol_reg_put(struct pol_reg *r)
{
	if (r != NULL && --r->refs == 0) {
		pol_itab_free(&r->t);
		free(r);
	}
}

/*
 * Intern @p key in *@p reg, of which the caller's object uses the first
 * *@p count entries. A table another object has appended to since is
 * copied (its first *count entries) before this one appends.
 */
int
pol_reg_intern(struct pol_reg **reg, uint32_t *count, const void *key, size_t len, uint32_t *idx,
               bool *isnew)
{
	struct pol_reg *r = *reg;
	int rc;

	if (r->t.n != *count) {
		struct pol_reg *c = pol_reg_new();
		uint32_t i, j;
		bool nw;

		if (c == NULL)
			return -ENOMEM;
		for (i = 0; i < *count; i++) {
			rc = pol_itab_intern(&c->t, r->t.keys[i].data, r->t.keys[i].len, &j, &nw);
			if (rc) {
				pol_reg_put(c);
				return rc;
			}
		}
		pol_reg_put(r);
		*reg = r = c;
	}
	rc = pol_itab_intern(&r->t, key, len, idx, isnew);
	if (rc == 0 && *isnew)
		(*count)++;
	return rc;
}
