/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The ipcache's control-side keys and map. A prefix key (struct pkey) is
 * the family, the length and the address masked to that length; the map
 * (struct cmap) is a plain open-addressing table of records keyed by it,
 * hashed and probed as every table of the project (mg_hash.h), with
 * backward-shift deletion. Two maps use it: the
 * committed records (get, walk, count) and the index of the staged log.
 * It lives apart from the data-plane tables because it serves the control
 * thread alone: no reader ever sees it, so it may rehash in place.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ipcache_priv.h"

/* The whole key (pkey_make zeroes what the length masks out). */
uint32_t
ipc_pkey_hash(const struct pkey *k)
{
	return (uint32_t)mg_hash_bytes(k, sizeof(*k), 0);
}

static size_t
pkey_hash(const struct pkey *k, size_t cap)
{
	return mg_probe_home(ipc_pkey_hash(k), cap - 1);
}

static bool
pkey_eq(const struct pkey *a, const struct pkey *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

unsigned
ipc_family_lens(uint8_t family)
{
	return family == AF_INET ? V4_LENS : family == AF_INET6 ? V6_LENS : 0;
}

/* Mask @addr to @plen bits into @k. */
int
ipc_pkey_make(struct pkey *k, uint8_t family, const uint8_t *addr, uint8_t plen)
{
	unsigned bytes = family == AF_INET ? 4 : 16;

	if (ipc_family_lens(family) == 0 || plen >= ipc_family_lens(family) || addr == NULL)
		return -EINVAL;
	memset(k, 0, sizeof(*k));
	k->family = family;
	k->plen = plen;
	memcpy(k->addr, addr, bytes);
	for (unsigned i = 0; i < bytes; i++) {
		unsigned bits = plen > i * 8 ? plen - i * 8 : 0;

		if (bits < 8)
			k->addr[i] &= (uint8_t)(0xff00u >> bits);
	}
	return 0;
}

/* ---- control-plane maps ---- */

int
ipc_cmap_init(struct cmap *m, size_t entries)
{
	size_t cap = 16;

	while (cap * LOAD_NUM < entries * LOAD_DEN)
		cap *= 2;
	m->r = calloc(cap, sizeof(*m->r));
	if (m->r == NULL)
		return -ENOMEM;
	m->cap = cap;
	m->count = 0;
	return 0;
}

struct rec *
ipc_cmap_find(const struct cmap *m, const struct pkey *k)
{
	return ipc_cmap_find_h(m, k, ipc_pkey_hash(k));
}

struct rec *
ipc_cmap_find_h(const struct cmap *m, const struct pkey *k, uint32_t h)
{
	size_t mask = m->cap - 1;

	for (size_t i = mg_probe_home(h, mask);; i = mg_probe_next(i, mask)) {
		if (m->r[i].k.family == 0)
			return NULL;
		if (pkey_eq(&m->r[i].k, k))
			return &m->r[i];
	}
}

/* Make room for @entries records in total. */
int
ipc_cmap_reserve(struct cmap *m, size_t entries)
{
	size_t cap = m->cap;
	struct rec *nr;

	while (cap * LOAD_NUM < entries * LOAD_DEN)
		cap *= 2;
	if (cap == m->cap)
		return 0;
	nr = calloc(cap, sizeof(*nr));
	if (nr == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		size_t j;

		if (m->r[i].k.family == 0)
			continue;
		for (j = pkey_hash(&m->r[i].k, cap); nr[j].k.family != 0;
		     j = mg_probe_next(j, cap - 1))
			;
		nr[j] = m->r[i];
	}
	free(m->r);
	m->r = nr;
	m->cap = cap;
	return 0;
}

/* Insert or overwrite; the caller has reserved room. */
void
ipc_cmap_set(struct cmap *m, const struct pkey *k, uint32_t val, uint32_t val2)
{
	ipc_cmap_set_h(m, k, ipc_pkey_hash(k), val, val2);
}

void
ipc_cmap_set_h(struct cmap *m, const struct pkey *k, uint32_t h, uint32_t val, uint32_t val2)
{
	size_t mask = m->cap - 1;
	size_t i;

	for (i = mg_probe_home(h, mask); m->r[i].k.family != 0; i = mg_probe_next(i, mask))
		if (pkey_eq(&m->r[i].k, k))
			break;
	if (m->r[i].k.family == 0)
		m->count++;
	m->r[i].k = *k;
	m->r[i].val = val;
	m->r[i].val2 = val2;
}

void
ipc_cmap_prefetch(const struct cmap *m, uint32_t h)
{
	__builtin_prefetch(&m->r[mg_probe_home(h, m->cap - 1)]);
}

void
ipc_cmap_del(struct cmap *m, struct rec *r)
{
	size_t mask = m->cap - 1;
	size_t hole = (size_t)(r - m->r);

	/* Backward shift: pull back every entry of the run that may move into the hole. */
	for (size_t i = mg_probe_next(hole, mask); m->r[i].k.family != 0;
	     i = mg_probe_next(i, mask)) {
		if (mg_probe_may_fill(pkey_hash(&m->r[i].k, m->cap), hole, i, mask)) {
			m->r[hole] = m->r[i];
			hole = i;
		}
	}
	memset(&m->r[hole], 0, sizeof(m->r[hole]));
	m->count--;
}

/*
 * Empty @m. Clearing costs the capacity, not the count, so a map that a
 * big batch blew up is replaced by a small one (when that allocation
 * fails the big one is simply wiped).
 */
void
ipc_cmap_clear(struct cmap *m)
{
	if (m->cap > 1024 && m->count * 8 < m->cap) {
		struct rec *small = calloc(1024, sizeof(*small));

		if (small != NULL) {
			free(m->r);
			m->r = small;
			m->cap = 1024;
			m->count = 0;
			return;
		}
	}
	if (m->count != 0)
		memset(m->r, 0, m->cap * sizeof(*m->r));
	m->count = 0;
}
