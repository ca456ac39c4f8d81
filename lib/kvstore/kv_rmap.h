/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The sync client's record map (private to lib/kvstore): an open-addressing
 * table of fixed-size keys (linear probing, tombstones, load at most 3/4,
 * grown to load 1/2). Each cluster's live copy is one, each resync's shadow
 * another, and one more counts the clusters that hold each prefix. Hash
 * and probing are lib/common's (mg_hash.h); the users walk the slots
 * (v[0..cap), st 1 = used) in slot order.
 */
#ifndef MG_KV_RMAP_H
#define MG_KV_RMAP_H

#include <stddef.h>
#include <stdint.h>

#include "mg_identity.h"

enum {
	REC_IDENTITY = 1,
	REC_IP = 2
};

/* Fixed-size key without padding so memcmp/hash over it is well defined. */
struct rkey {
	uint8_t kind, family, plen, pad;
	uint8_t addr[16];
	uint32_t id;
};

struct rec {
	struct rkey k;
	uint8_t st;        /* 0 empty, 1 used, 2 deleted */
	uint8_t n_np;      /* named ports of an ipcache entry */
	uint32_t identity; /* identity id, or the ipcache entry's (validated) id */
	/* Identity records: the raw label string (rebind decodes it again; a
	 * re-put with the same string is no change). Ipcache records keep no
	 * string: what reaches the tables is the identity and the named ports,
	 * so those are what tells a real change from a re-put, and a cold sync
	 * of a million entries allocates nothing per entry but named ports. */
	char *value;
	struct mg_named_port *np;
};

struct rmap {
	struct rec *v;
	size_t cap, n, tomb;
};

/* The record of @k, or NULL. */
struct rec *rmap_find(const struct rmap *m, const struct rkey *k);
/* Start loading the slot where a find or put of @k begins (a hint, no effect otherwise). */
void rmap_prefetch(const struct rmap *m, const struct rkey *k);
/* Room for @n more records without a resize on the way (see kv_rmap.c). */
int rmap_reserve(struct rmap *m, size_t n);
/* Insert or replace; takes ownership of @value and @np (freed on failure too). */
int rmap_put(struct rmap *m, const struct rkey *k, uint32_t identity, char *value,
             struct mg_named_port *np, uint8_t n_np);
void rmap_del(struct rmap *m, const struct rkey *k);
/* Free every record and the table; @m is empty after it. */
void rmap_clear(struct rmap *m);

#endif /* MG_KV_RMAP_H */
