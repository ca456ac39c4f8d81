/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "mg_hash.h"
#include "rep_map.h"

void
rep_map_init(struct rep_map *m)
{
	memset(m, 0, sizeof(*m));
	if (getrandom(&m->seed, sizeof(m->seed), GRND_NONBLOCK) != sizeof(m->seed))
		m->seed = (uint64_t)(uintptr_t)m ^ 0x9e3779b97f4a7c15ull;
}

void
rep_map_clear(struct rep_map *m)
{
	for (size_t i = 0; m->slots != NULL && i <= m->mask; i++)
		free(m->slots[i].key);
	free(m->slots);
	uint64_t seed = m->seed;
	memset(m, 0, sizeof(*m));
	m->seed = seed;
}

struct rep_ent *
rep_map_get(const struct rep_map *m, const char *key, size_t klen)
{
	if (m->slots == NULL)
		return NULL;
	uint64_t h = mg_hash_bytes(key, klen, m->seed);
	for (size_t i = mg_probe_home(h, m->mask);; i = mg_probe_next(i, m->mask)) {
		struct rep_ent *e = &m->slots[i];
		if (e->key == NULL)
			return NULL;
		if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
			return e;
	}
}

static int
grow(struct rep_map *m)
{
	size_t cap = mg_probe_capacity(m->n + 1, 64);
	if (cap == 0)
		return -ENOMEM;
	if (m->slots != NULL && cap <= m->mask + 1)
		return 0;
	struct rep_ent *s = calloc(cap, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	for (size_t i = 0; m->slots != NULL && i <= m->mask; i++) {
		if (m->slots[i].key == NULL)
			continue;
		size_t j = mg_probe_home(m->slots[i].hash, cap - 1);
		while (s[j].key != NULL)
			j = mg_probe_next(j, cap - 1);
		s[j] = m->slots[i];
	}
	free(m->slots);
	m->slots = s;
	m->mask = cap - 1;
	return 0;
}

/* One block: key, NUL, value, NUL. */
static char *
block(const char *key, size_t klen, const char *val, size_t vlen)
{
	char *b = malloc(klen + vlen + 2);
	if (b == NULL)
		return NULL;
	memcpy(b, key, klen);
	b[klen] = '\0';
	memcpy(b + klen + 1, val, vlen);
	b[klen + 1 + vlen] = '\0';
	return b;
}

struct rep_ent *
rep_map_put(struct rep_map *m, const char *key, size_t klen, const char *val, size_t vlen,
            bool *changed)
{
	struct rep_ent *e = rep_map_get(m, key, klen);
	*changed = false;
	if (e != NULL && e->vlen == vlen && memcmp(e->val, val, vlen) == 0)
		return e;
	char *b = block(key, klen, val, vlen);
	if (b == NULL)
		return NULL;
	if (e == NULL) {
		if (grow(m) < 0) {
			free(b);
			return NULL;
		}
		uint64_t h = mg_hash_bytes(key, klen, m->seed);
		size_t i = mg_probe_home(h, m->mask);
		while (m->slots[i].key != NULL)
			i = mg_probe_next(i, m->mask);
		e = &m->slots[i];
		memset(e, 0, sizeof(*e));
		e->hash = h;
		m->n++;
	} else {
		m->bytes -= e->klen + e->vlen;
		free(e->key);
	}
	e->key = b;
	e->val = b + klen + 1;
	e->klen = (uint32_t)klen;
	e->vlen = (uint32_t)vlen;
	e->valid = e->kept = e->sent = 0;
	e->id = 0;
	m->bytes += klen + vlen;
	*changed = true;
	return e;
}

void
rep_map_del(struct rep_map *m, struct rep_ent *e)
{
	size_t hole = (size_t)(e - m->slots);
	m->bytes -= e->klen + e->vlen;
	free(e->key);
	memset(e, 0, sizeof(*e));
	m->n--;
	for (size_t j = mg_probe_next(hole, m->mask); m->slots[j].key != NULL;
	     j = mg_probe_next(j, m->mask)) {
		size_t home = mg_probe_home(m->slots[j].hash, m->mask);
		if (!mg_probe_may_fill(home, hole, j, m->mask))
			continue;
		m->slots[hole] = m->slots[j];
		memset(&m->slots[j], 0, sizeof(m->slots[j]));
		hole = j;
	}
}

struct rep_ent *
rep_map_next(const struct rep_map *m, size_t *i)
{
	for (; m->slots != NULL && *i <= m->mask; (*i)++) {
		if (m->slots[*i].key != NULL)
			return &m->slots[(*i)++];
	}
	return NULL;
}
