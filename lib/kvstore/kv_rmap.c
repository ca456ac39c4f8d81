/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The record map of the sync client (kv_rmap.h): a fixed-size key of three
 * 64-bit words hashed and probed as every table of the project is
 * (mg_hash.h), deletions as tombstones that the next resize drops: a
 * record never moves between resizes, whatever is deleted around it.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kv_rmap.h"
#include "mg_hash.h"

/* The key is three 64-bit words, hashed with lib/common's mg_hash_words. */
static uint64_t
rkey_hash(const struct rkey *k)
{
	_Static_assert(sizeof(*k) == 24, "rkey is three words");
	return mg_hash_words(k, 3);
}

struct rec *
rmap_find(const struct rmap *m, const struct rkey *k)
{
	if (m->cap == 0)
		return NULL;
	for (size_t i = mg_probe_home(rkey_hash(k), m->cap - 1);;
	     i = mg_probe_next(i, m->cap - 1)) {
		struct rec *r = &m->v[i];
		if (r->st == 0)
			return NULL;
		if (r->st == 1 && memcmp(&r->k, k, sizeof(*k)) == 0)
			return r;
	}
}

/*
 * A large map's slots are cache and TLB misses: a caller that knows its
 * next keys asks for their slots a few records ahead.
 */
void
rmap_prefetch(const struct rmap *m, const struct rkey *k)
{
	if (m->cap != 0)
		__builtin_prefetch(&m->v[mg_probe_home(rkey_hash(k), m->cap - 1)], 1);
}

/*
 * A table of a million records is 100 MB that every find and put reaches
 * at random: with 4 KiB pages each access is a TLB miss (a costly one in a
 * virtual machine) and the first touch of each page a fault. Large tables
 * ask for transparent huge pages (where the system leaves that to
 * madvise); only a hint, a refusal changes nothing.
 */
#define RMAP_HUGE_MIN ((size_t)8 << 20)

static void
rmap_advise(void *p, size_t bytes)
{
	const uintptr_t huge = (uintptr_t)2 << 20;
	uintptr_t b = ((uintptr_t)p + huge - 1) & ~(huge - 1);
	uintptr_t e = ((uintptr_t)p + bytes) & ~(huge - 1);

	if (bytes >= RMAP_HUGE_MIN && e > b)
		(void)madvise((void *)b, e - b, MADV_HUGEPAGE);
}

static int
rmap_resize(struct rmap *m, size_t cap)
{
	struct rec *nv = calloc(cap, sizeof(*nv));
	if (nv == NULL)
		return -ENOMEM;
	rmap_advise(nv, cap * sizeof(*nv));
	for (size_t i = 0; i < m->cap; i++) {
		if (m->v[i].st != 1)
			continue;
		size_t j = mg_probe_home(rkey_hash(&m->v[i].k), cap - 1);
		while (nv[j].st != 0)
			j = mg_probe_next(j, cap - 1);
		nv[j] = m->v[i];
	}
	free(m->v);
	m->v = nv;
	m->cap = cap;
	m->tomb = 0;
	return 0;
}

/*
 * Room for @n more records without a resize on the way (0 or -ENOMEM).
 * Sized as rmap_put grows (load <= 1/2), so a map filled from another
 * one's slot order is never smaller than it: copying a linear-probing
 * table in slot order into a smaller one with the same hash piles the
 * keys into long runs.
 */
int
rmap_reserve(struct rmap *m, size_t n)
{
	size_t cap = m->cap ? m->cap : 64;
	while ((m->n + n + 1) * 2 > cap)
		cap *= 2;
	return cap == m->cap ? 0 : rmap_resize(m, cap);
}

/* Insert or replace; takes ownership of @value and @np (freed on failure too). */
int
rmap_put(struct rmap *m, const struct rkey *k, uint32_t identity, char *value,
         struct mg_named_port *np, uint8_t n_np)
{
	struct rec *r = rmap_find(m, k);
	if (r != NULL) {
		free(r->value);
		free(r->np);
		r->value = value;
		r->np = np;
		r->n_np = n_np;
		r->identity = identity;
		return 0;
	}
	if ((m->n + m->tomb + 1) * 4 > m->cap * 3) {
		size_t cap = m->cap ? m->cap : 64;
		while ((m->n + 1) * 2 > cap)
			cap *= 2;
		if (rmap_resize(m, cap) < 0) {
			free(value);
			free(np);
			return -ENOMEM;
		}
	}
	size_t i = mg_probe_home(rkey_hash(k), m->cap - 1);
	while (m->v[i].st == 1)
		i = mg_probe_next(i, m->cap - 1);
	if (m->v[i].st == 2)
		m->tomb--;
	m->v[i].k = *k;
	m->v[i].st = 1;
	m->v[i].identity = identity;
	m->v[i].value = value;
	m->v[i].np = np;
	m->v[i].n_np = n_np;
	m->n++;
	return 0;
}

void
rmap_del(struct rmap *m, const struct rkey *k)
{
	struct rec *r = rmap_find(m, k);
	if (r == NULL)
		return;
	free(r->value);
	free(r->np);
	r->value = NULL;
	r->np = NULL;
	r->n_np = 0;
	r->st = 2;
	m->n--;
	m->tomb++;
}

void
rmap_clear(struct rmap *m)
{
	for (size_t i = 0; i < m->cap; i++) {
		free(m->v[i].value);
		free(m->v[i].np);
	}
	free(m->v);
	memset(m, 0, sizeof(*m));
}
