/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The replicator's copy of one etcd prefix of a remote cluster: key (the
 * part after the prefix) -> value, as raw bytes, with what validation
 * made of it. Linear probing over 2^k slots, removal by backward shift,
 * keys hashed with a per-map random seed (a remote etcd chooses the keys).
 * One thread uses a map at a time.
 */
#ifndef REP_MAP_H
#define REP_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rep_ent {
	char *key; /**< NUL-terminated, owned (the value follows it in one block) */
	char *val; /**< NUL-terminated (values are text), owned with key */
	uint32_t klen, vlen;
	uint64_t hash;
	uint32_t id;   /**< the identity of an ipcache value, the id of an identity key */
	uint32_t gen;  /**< the list generation that last saw the key */
	uint8_t valid; /**< passed validation */
	uint8_t kept;  /**< passed the filter too: written to Redis */
	uint8_t seen;  /**< scratch of a full resync: Redis holds the key */
	uint8_t sent;  /**< put to Redis in this tenure, no Redis error since */
};

struct rep_map {
	struct rep_ent *slots; /**< key NULL: free */
	size_t mask, n;
	uint64_t seed;
	size_t bytes; /**< keys and values held */
};

void rep_map_init(struct rep_map *m);
void rep_map_clear(struct rep_map *m);

/** The entry of @p key, or NULL. */
struct rep_ent *rep_map_get(const struct rep_map *m, const char *key, size_t klen);

/**
 * Set @p key to @p val: the entry (new or existing), or NULL (no memory).
 * *@p changed is true when the key is new or its value differs (then
 * valid/kept/id are reset to 0 for the caller to fill).
 */
struct rep_ent *rep_map_put(struct rep_map *m, const char *key, size_t klen, const char *val,
                            size_t vlen, bool *changed);

/** Remove @p e (a pointer from this map); entries may move. */
void rep_map_del(struct rep_map *m, struct rep_ent *e);

/** Iterate: start with *@p i = 0; NULL at the end. Removing the returned entry is not allowed. */
struct rep_ent *rep_map_next(const struct rep_map *m, size_t *i);

#endif /* REP_MAP_H */
