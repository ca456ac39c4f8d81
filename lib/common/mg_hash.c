/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The out-of-line parts of mg_hash.h: variable-length keys and capacity.
 */
#include "mg_hash.h"

uint64_t
mg_hash_bytes(const void *p, size_t len, uint64_t seed)
{
	const unsigned char *c = p;
	uint64_t h = seed ^ MG_HASH_K3 ^ mg_hash_mum((uint64_t)len ^ MG_HASH_K2, MG_HASH_K1);
	uint64_t a, b;
	size_t i = 0;

	for (; i + 16 <= len; i += 16) {
		memcpy(&a, c + i, 8);
		memcpy(&b, c + i + 8, 8);
		h = mg_hash_mum(h ^ a ^ MG_HASH_K0, b ^ MG_HASH_K1);
	}
	if (i < len) {
		unsigned char tail[16] = {0};

		memcpy(tail, c + i, len - i);
		memcpy(&a, tail, 8);
		memcpy(&b, tail + 8, 8);
		h = mg_hash_mum(h ^ a ^ MG_HASH_K2, b ^ MG_HASH_K3);
	}
	return mg_hash_mum(h ^ MG_HASH_K0, MG_HASH_K2);
}

size_t
mg_probe_capacity(size_t n, size_t min)
{
	size_t cap = min ? min : 1;

	if (n > SIZE_MAX / 4)
		return 0;
	while (cap < 2 * n)
		cap *= 2;
	return cap;
}
