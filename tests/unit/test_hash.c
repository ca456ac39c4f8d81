/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The shared hash and probing helpers (lib/common/mg_hash.h): keys that
 * differ a little land far apart, every input bit moves the output, lengths
 * and seeds count, and a table built on the probing helpers with
 * backward-shift removal keeps every key reachable through any churn, even
 * when every key hashes to a handful of slots.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_hash.h"
#include "mg_test.h"

#define BUCKETS 1024

/*
 * Chi-square of @p n hashes spread over BUCKETS by their low bits (the bits
 * mg_probe_home uses). For a uniform hash its mean is BUCKETS - 1 with a
 * standard deviation of about sqrt(2 * BUCKETS) = 45: 1300 is 6 deviations
 * out. A hash that keeps consecutive keys in consecutive slots or drops
 * high input bits scores in the tens of thousands.
 */
static double
chi2(const uint64_t *h, size_t n)
{
	static unsigned count[BUCKETS];
	double e = (double)n / BUCKETS, x = 0;
	size_t i;

	memset(count, 0, sizeof(count));
	for (i = 0; i < n; i++)
		count[mg_probe_home(h[i], BUCKETS - 1)]++;
	for (i = 0; i < BUCKETS; i++)
		x += (count[i] - e) * (count[i] - e) / e;
	return x;
}

static void
test_spread(void)
{
	enum {
		N = 1 << 17
	};
	uint64_t *h = calloc(N, sizeof(*h));
	struct {
		uint8_t a[16], b[16];
		uint16_t pa, pb;
		uint8_t fam, proto, zone, kind;
	} key;
	size_t i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	/* consecutive identities */
	for (i = 0; i < N; i++)
		h[i] = mg_hash_u64(0x10000 + i);
	CU_ASSERT_TRUE(chi2(h, N) < 1300);
	/* identities of 255 clusters, local parts stepping by 256 */
	for (i = 0; i < N; i++)
		h[i] = mg_hash_u64(((i % 255 + 1) << 16) | ((i / 255) << 8));
	CU_ASSERT_TRUE(chi2(h, N) < 1300);
	/* flows of one pod range: only the last address bytes and a port change */
	memset(&key, 0, sizeof(key));
	key.fam = 2;
	key.proto = 6;
	key.a[0] = 10;
	key.b[0] = 10;
	key.pb = 443;
	for (i = 0; i < N; i++) {
		key.a[3] = (uint8_t)i;
		key.a[2] = (uint8_t)(i >> 8);
		key.pa = (uint16_t)(32768 + (i >> 16));
		h[i] = mg_hash_words(&key, sizeof(key) / 8);
	}
	CU_ASSERT_TRUE(chi2(h, N) < 1300);
	/* short strings */
	for (i = 0; i < N; i++) {
		char s[32];
		int len = snprintf(s, sizeof(s), "k8s:app=a%zu", i);

		h[i] = mg_hash_bytes(s, (size_t)len, 0);
	}
	CU_ASSERT_TRUE(chi2(h, N) < 1300);
	/* the same low bytes at every length */
	for (i = 0; i < N; i++) {
		uint8_t buf[64] = {0};

		memcpy(buf, &i, sizeof(i));
		h[i] = mg_hash_bytes(buf, 8 + i % 57, 0);
	}
	CU_ASSERT_TRUE(chi2(h, N) < 1300);
	free(h);
}

/* Flipping one input bit flips about half the output bits, for every bit. */
static void
test_avalanche(void)
{
	uint8_t key[40];
	uint64_t seed = 0x243f6a8885a308d3ull;
	unsigned bit, r, worst_low = 64, worst_high = 0;

	for (bit = 0; bit < 8 * sizeof(key); bit++) {
		unsigned flips = 0;

		for (r = 0; r < 64; r++) {
			uint64_t a, b;

			for (size_t i = 0; i < sizeof(key); i++) {
				seed = seed * 6364136223846793005ull + 1442695040888963407ull;
				key[i] = (uint8_t)(seed >> 56);
			}
			a = mg_hash_words(key, 5);
			key[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			b = mg_hash_words(key, 5);
			flips += (unsigned)__builtin_popcountll(a ^ b);
			a = mg_hash_bytes(key, sizeof(key), 7);
			key[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			b = mg_hash_bytes(key, sizeof(key), 7);
			flips += (unsigned)__builtin_popcountll(a ^ b);
		}
		/* mean over 128 pairs: 32 expected, standard error about 0.35 */
		flips /= 128;
		if (flips < worst_low)
			worst_low = flips;
		if (flips > worst_high)
			worst_high = flips;
	}
	CU_ASSERT_TRUE(worst_low >= 28);
	CU_ASSERT_TRUE(worst_high <= 36);
	for (bit = 0; bit < 64; bit++)
		CU_ASSERT_TRUE(__builtin_popcountll(mg_hash_u64(1ull << bit) ^ mg_hash_u64(0)) >=
		               12);
}

static void
test_lengths_and_seeds(void)
{
	static const char zeros[32];
	uint64_t h[33];
	unsigned i, j;

	/* zero-filled keys of every length up to 32: all distinct */
	for (i = 0; i <= 32; i++)
		h[i] = mg_hash_bytes(zeros, i, 0);
	for (i = 0; i <= 32; i++)
		for (j = 0; j < i; j++)
			CU_ASSERT_NOT_EQUAL(h[i], h[j]);
	CU_ASSERT_EQUAL(mg_hash_bytes(NULL, 0, 0), mg_hash_bytes("", 0, 0));
	CU_ASSERT_EQUAL(mg_hash_bytes("prometheus", 10, 0), mg_hash_bytes("prometheus", 10, 0));
	CU_ASSERT_NOT_EQUAL(mg_hash_bytes("prometheus", 10, 0), mg_hash_bytes("prometheus", 10, 1));
	CU_ASSERT_NOT_EQUAL(mg_hash_bytes("a", 1, 0), mg_hash_bytes("a\0", 2, 0));
	/* word keys: the word count counts too */
	CU_ASSERT_NOT_EQUAL(mg_hash_words(zeros, 2), mg_hash_words(zeros, 3));
	CU_ASSERT_NOT_EQUAL(mg_hash_words(zeros, 1), mg_hash_words(zeros, 2));
}

static void
test_capacity(void)
{
	CU_ASSERT_EQUAL(mg_probe_capacity(0, 64), 64);
	CU_ASSERT_EQUAL(mg_probe_capacity(32, 64), 64);
	CU_ASSERT_EQUAL(mg_probe_capacity(33, 64), 128);
	CU_ASSERT_EQUAL(mg_probe_capacity(1000, 2), 2048);
	CU_ASSERT_EQUAL(mg_probe_capacity(1u << 20, 2), 1u << 21);
	CU_ASSERT_EQUAL(mg_probe_capacity(SIZE_MAX / 2, 2), 0);
	CU_ASSERT_EQUAL(mg_probe_next(63, 63), 0);
	CU_ASSERT_EQUAL(mg_probe_next(5, 63), 6);
}

/* ---- a table on the helpers, backward-shift removal ---- */

#define TCAP 256
#define TMASK (TCAP - 1)

static uint32_t slot[TCAP]; /* 0 = free */
static unsigned hash_bits;  /* the table hashes into 2^hash_bits homes only */

static size_t
home(uint32_t k)
{
	/* a crowded hash: homes 250..255 and 0.. so runs wrap the end */
	return mg_probe_home(250 + (mg_hash_u64(k) & ((1u << hash_bits) - 1)), TMASK);
}

static bool
t_find(uint32_t k)
{
	for (size_t i = home(k);; i = mg_probe_next(i, TMASK)) {
		if (slot[i] == k)
			return true;
		if (slot[i] == 0)
			return false;
	}
}

static void
t_put(uint32_t k)
{
	size_t i = home(k);

	while (slot[i] != 0)
		i = mg_probe_next(i, TMASK);
	slot[i] = k;
}

static void
t_del(uint32_t k)
{
	size_t hole = home(k), i;

	while (slot[hole] != k)
		hole = mg_probe_next(hole, TMASK);
	for (i = mg_probe_next(hole, TMASK); slot[i] != 0; i = mg_probe_next(i, TMASK))
		if (mg_probe_may_fill(home(slot[i]), hole, i, TMASK)) {
			slot[hole] = slot[i];
			hole = i;
		}
	slot[hole] = 0;
}

static void
test_backward_shift(void)
{
	static bool in[1000];
	uint64_t seed = 42;
	unsigned bits, step, k, n, lost = 0, ghosts = 0;

	for (bits = 0; bits <= 6; bits += 2) {
		memset(slot, 0, sizeof(slot));
		memset(in, 0, sizeof(in));
		hash_bits = bits;
		n = 0;
		for (step = 0; step < 20000; step++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			k = 1 + (unsigned)(seed >> 33) % 999;
			if (in[k]) {
				t_del(k);
				in[k] = false;
				n--;
			} else if (n < TCAP / 2) {
				t_put(k);
				in[k] = true;
				n++;
			}
			if (step % 97 == 0)
				for (k = 1; k < 1000; k++) {
					lost += in[k] && !t_find(k);
					ghosts += !in[k] && t_find(k);
				}
		}
	}
	CU_ASSERT_EQUAL(lost, 0);
	CU_ASSERT_EQUAL(ghosts, 0);
}

static CU_TestInfo tests[] = {
        {"spread", test_spread},
        {"avalanche", test_avalanche},
        {"lengths_and_seeds", test_lengths_and_seeds},
        {"capacity", test_capacity},
        {"backward_shift", test_backward_shift},
        CU_TEST_INFO_NULL,
};

MG_TEST_MAIN("hash", tests)
