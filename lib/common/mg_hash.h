/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The one hash function and the one probing scheme of meshgate's tables.
 *
 * Every open-addressing table of the project (identities, the ipcache's
 * control-side records, conntrack, the policy's identity cells and string
 * interning, the sync client's reverse map, the YAML builder's key set)
 * hashes with these functions and probes the same way: a power-of-two
 * array of slots, linear probing from mg_probe_home(), kept under a load
 * of at most 0.7 (mg_probe_capacity() sizes for 1/2) so that probe runs
 * stay short and a probe always ends at a free slot. Removal is the table's
 * choice: by backward shift (mg_probe_may_fill(), no tombstones: conntrack,
 * identities) or by tombstones swept on resize (the sync client's map).
 *
 * The hash is built on one primitive, a 64x64 -> 128-bit multiply folded to
 * 64 bits (mg_hash_mum): every input bit reaches every output bit in one
 * multiply instruction, so the low bits that select a slot are as good as
 * the high ones, and keys that differ in a few bits (pod addresses of one
 * range, consecutive identities) do not crowd into runs of slots.
 *
 * Not for untrusted keys where an adversary picks collisions, unless a
 * random seed is mixed in (mg_hash_bytes's @p seed; the YAML builder does).
 */
#ifndef MG_HASH_H
#define MG_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Odd 64-bit constants with about half their bits set. */
#define MG_HASH_K0 0xa0761d6478bd642fULL
#define MG_HASH_K1 0xe7037ed1a0b428dbULL
#define MG_HASH_K2 0x8ebc6af09c88c6e3ULL
#define MG_HASH_K3 0x589965cc75374cc3ULL

/** @a times @p b as 128 bits, the two halves xor-ed together. */
static inline uint64_t
mg_hash_mum(uint64_t a, uint64_t b)
{
	__uint128_t r = (__uint128_t)a * b;

	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/** Hash of one 64-bit value (an identity, a cluster id, a packed key). */
static inline uint64_t
mg_hash_u64(uint64_t x)
{
	return mg_hash_mum(x ^ MG_HASH_K0, MG_HASH_K1);
}

/**
 * Hash of a fixed-size key of @p nwords 64-bit words at @p key (any
 * alignment; padding must be zeroed by the caller). Meant for keys whose
 * size is a compile-time constant: the loop then unrolls to one multiply per
 * two words, which is what the data path can afford.
 */
static inline uint64_t
mg_hash_words(const void *key, size_t nwords)
{
	const unsigned char *p = key;
	uint64_t h = MG_HASH_K3, a, b;
	size_t i;

	for (i = 0; i + 2 <= nwords; i += 2) {
		memcpy(&a, p + 8 * i, 8);
		memcpy(&b, p + 8 * i + 8, 8);
		h = mg_hash_mum(h ^ a ^ MG_HASH_K0, b ^ MG_HASH_K1);
	}
	if (i < nwords) {
		memcpy(&a, p + 8 * i, 8);
		h = mg_hash_mum(h ^ a ^ MG_HASH_K2, MG_HASH_K3);
	}
	return mg_hash_mum(h ^ (uint64_t)nwords, MG_HASH_K2);
}

/**
 * Hash of @p len bytes at @p p (strings, variable-length keys), with a
 * @p seed (0 when collisions chosen by an adversary do not matter). Keys
 * of different lengths hash differently even when one is a prefix of the
 * other padded with zeros.
 */
uint64_t mg_hash_bytes(const void *p, size_t len, uint64_t seed);

/* ---- linear probing over 2^k slots ---- */

/** First slot to look at for hash @p h in a table of @p mask + 1 slots. */
static inline size_t
mg_probe_home(uint64_t h, size_t mask)
{
	return (size_t)h & mask;
}

/** The slot after @p i, wrapping. */
static inline size_t
mg_probe_next(size_t i, size_t mask)
{
	return (i + 1) & mask;
}

/**
 * Removal by backward shift: walking the run after a freed slot @p hole,
 * may the entry at slot @p j, whose home is @p home, move into the hole?
 * Yes when its home is not in (hole, j]: it is then at least as far from
 * home as the hole is from j, and stays reachable from its home.
 */
static inline bool
mg_probe_may_fill(size_t home, size_t hole, size_t j, size_t mask)
{
	return ((j - home) & mask) >= ((j - hole) & mask);
}

/**
 * Slots for @p n entries at most half full: the smallest power of two
 * >= max(@p min, 2 * @p n) (@p min a power of two). 0 when that overflows.
 */
size_t mg_probe_capacity(size_t n, size_t min);

#endif /* MG_HASH_H */
