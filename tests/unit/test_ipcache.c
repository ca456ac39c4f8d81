/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of lib/ipcache, single-threaded: longest-prefix match for both
 * families, staging and commit, control-plane reads, the prefix parser, a
 * randomized comparison against a naive LPM, many small batches against a
 * model of the staging rules, a million host routes, and
 * the miss filter (bits set and cleared per /16 and hashed IPv6 /32, short
 * prefixes over many buckets, checked on both copies and by
 * mg_ipcache_verify). The concurrent proof is test_ipcache_stress.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mg_ipcache.h"
#include "mg_test.h"

static struct mg_ipcache_entry
pfx(const char *s, uint32_t id)
{
	struct mg_ipcache_entry e;

	memset(&e, 0, sizeof(e));
	if (mg_ipcache_parse_prefix(s, &e) != 0) {
		fprintf(stderr, "bad test prefix %s\n", s);
		abort();
	}
	e.identity = id;
	return e;
}

static int
put(struct mg_ipcache *ipc, const char *s, uint32_t id)
{
	struct mg_ipcache_entry e = pfx(s, id);

	return mg_ipcache_put(ipc, &e);
}

static int
del(struct mg_ipcache *ipc, const char *s)
{
	struct mg_ipcache_entry e = pfx(s, 0);

	return mg_ipcache_del(ipc, e.family, e.addr, e.plen);
}

/* Lookup of a textual address ("10.1.2.3", "fd00::1"). */
static uint32_t
look(const struct mg_ipcache *ipc, const char *a)
{
	uint8_t buf[16];

	if (inet_pton(AF_INET, a, buf) == 1)
		return mg_ipcache_lookup(mg_ipcache_reader(ipc), AF_INET, buf);
	if (inet_pton(AF_INET6, a, buf) == 1)
		return mg_ipcache_lookup(mg_ipcache_reader(ipc), AF_INET6, buf);
	abort();
}

static struct mg_ipcache *
make(bool split_world, uint32_t hint)
{
	struct mg_ipcache_params p = {hint, split_world, NULL};

	return mg_ipcache_create(&p);
}

static void
test_lpm_v4(void)
{
	struct mg_ipcache *ipc = make(true, 0);

	CU_ASSERT_PTR_NOT_NULL_FATAL(ipc);
	CU_ASSERT_EQUAL(look(ipc, "10.1.2.3"), 9);
	CU_ASSERT_EQUAL(put(ipc, "10.0.0.0/8", 100), 0);
	CU_ASSERT_EQUAL(put(ipc, "10.1.2.0/24", 200), 0);
	CU_ASSERT_EQUAL(put(ipc, "10.1.2.3", 300), 0);
	CU_ASSERT_EQUAL(put(ipc, "10.1.0.0/17", 170), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 4);
	CU_ASSERT_EQUAL(look(ipc, "10.1.2.3"), 300);
	CU_ASSERT_EQUAL(look(ipc, "10.1.2.4"), 200);
	CU_ASSERT_EQUAL(look(ipc, "10.1.3.4"), 170);
	CU_ASSERT_EQUAL(look(ipc, "10.1.128.1"), 100);
	CU_ASSERT_EQUAL(look(ipc, "10.200.0.1"), 100);
	CU_ASSERT_EQUAL(look(ipc, "11.0.0.1"), 9);
	CU_ASSERT_EQUAL(look(ipc, "9.255.255.255"), 9);
	/* A default route replaces world. */
	CU_ASSERT_EQUAL(put(ipc, "0.0.0.0/0", 50), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 1);
	CU_ASSERT_EQUAL(look(ipc, "11.0.0.1"), 50);
	CU_ASSERT_EQUAL(look(ipc, "10.1.2.3"), 300);
	/* Remove the most specific ones: the next longer match shows through. */
	CU_ASSERT_EQUAL(del(ipc, "10.1.2.3/32"), 0);
	CU_ASSERT_EQUAL(del(ipc, "10.1.2.0/24"), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 2);
	CU_ASSERT_EQUAL(look(ipc, "10.1.2.3"), 170);
	CU_ASSERT_EQUAL(del(ipc, "0.0.0.0/0"), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 1);
	CU_ASSERT_EQUAL(look(ipc, "11.0.0.1"), 9);
	mg_ipcache_free(ipc);
}

static void
test_world_default(void)
{
	struct mg_ipcache *split = make(true, 0), *plain = make(false, 0);

	CU_ASSERT_PTR_NOT_NULL_FATAL(split);
	CU_ASSERT_PTR_NOT_NULL_FATAL(plain);
	CU_ASSERT_EQUAL(look(split, "1.2.3.4"), 9);
	CU_ASSERT_EQUAL(look(split, "2001:db8::1"), 10);
	CU_ASSERT_EQUAL(look(plain, "1.2.3.4"), 2);
	CU_ASSERT_EQUAL(look(plain, "2001:db8::1"), 2);
	/* Still world after entries of the other family appear. */
	CU_ASSERT_EQUAL(put(split, "2001:db8::/32", 77), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(split), 1);
	CU_ASSERT_EQUAL(look(split, "1.2.3.4"), 9);
	CU_ASSERT_EQUAL(look(split, "2001:db9::1"), 10);
	CU_ASSERT_EQUAL(look(split, "2001:db8::1"), 77);
	/* mg_ipcache_create(NULL): defaults. */
	mg_ipcache_free(plain);
	plain = mg_ipcache_create(NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(plain);
	CU_ASSERT_EQUAL(look(plain, "1.2.3.4"), 2);
	mg_ipcache_free(plain);
	mg_ipcache_free(split);
}

static void
test_lpm_mixed(void)
{
	struct mg_ipcache *ipc = make(true, 0);

	CU_ASSERT_PTR_NOT_NULL_FATAL(ipc);
	CU_ASSERT_EQUAL(put(ipc, "fd00::/16", 16), 0);
	CU_ASSERT_EQUAL(put(ipc, "fd00:1::/64", 64), 0);
	CU_ASSERT_EQUAL(put(ipc, "fd00:1::1", 128), 0);
	CU_ASSERT_EQUAL(put(ipc, "fd00:1::8000:0:0:0/65", 65), 0);
	CU_ASSERT_EQUAL(put(ipc, "fd00:1::2/127", 127), 0);
	CU_ASSERT_EQUAL(put(ipc, "10.0.0.0/8", 8), 0);
	CU_ASSERT_EQUAL(put(ipc, "::ffff:10.0.0.0/104", 104), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 7);
	CU_ASSERT_EQUAL(look(ipc, "fd00:1::1"), 128);
	CU_ASSERT_EQUAL(look(ipc, "fd00:1::2"), 127);
	CU_ASSERT_EQUAL(look(ipc, "fd00:1::3"), 127);
	CU_ASSERT_EQUAL(look(ipc, "fd00:1::4"), 64);
	CU_ASSERT_EQUAL(look(ipc, "fd00:1::8000:0:0:1"), 65);
	CU_ASSERT_EQUAL(look(ipc, "fd00:1:0:0:7fff::1"), 64);
	CU_ASSERT_EQUAL(look(ipc, "fd00:2::1"), 16);
	CU_ASSERT_EQUAL(look(ipc, "fd01::1"), 10);
	/* The families do not mix: v4-mapped v6 is a v6 address. */
	CU_ASSERT_EQUAL(look(ipc, "10.0.0.1"), 8);
	CU_ASSERT_EQUAL(look(ipc, "::ffff:10.0.0.1"), 104);
	CU_ASSERT_EQUAL(look(ipc, "::ffff:11.0.0.1"), 10);
	CU_ASSERT_EQUAL(mg_ipcache_count(ipc, AF_INET), 1);
	CU_ASSERT_EQUAL(mg_ipcache_count(ipc, AF_INET6), 6);
	CU_ASSERT_EQUAL(mg_ipcache_count(ipc, 0), 7);
	mg_ipcache_free(ipc);
}

static void
test_staging(void)
{
	struct mg_ipcache *ipc = make(false, 0);
	struct mg_ipcache_entry e = pfx("10.0.0.0/8", 5), out;

	CU_ASSERT_PTR_NOT_NULL_FATAL(ipc);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 0);

	/* Staged changes are invisible to readers and to get/count/walk. */
	CU_ASSERT_EQUAL(mg_ipcache_put(ipc, &e), 0);
	CU_ASSERT_EQUAL(mg_ipcache_pending(ipc), 1);
	CU_ASSERT_EQUAL(look(ipc, "10.0.0.1"), 2);
	CU_ASSERT_EQUAL(mg_ipcache_get(ipc, AF_INET, e.addr, 8, &out), -ENOENT);
	CU_ASSERT_EQUAL(mg_ipcache_count(ipc, 0), 0);
	/* A second change to a staged prefix rewrites the staged operation. */
	e.identity = 6;
	CU_ASSERT_EQUAL(mg_ipcache_put(ipc, &e), 0);
	CU_ASSERT_EQUAL(mg_ipcache_pending(ipc), 1);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 1);
	CU_ASSERT_EQUAL(mg_ipcache_pending(ipc), 0);
	CU_ASSERT_EQUAL(look(ipc, "10.0.0.1"), 6);

	/* Putting what is committed already stages nothing. */
	CU_ASSERT_EQUAL(mg_ipcache_put(ipc, &e), 0);
	CU_ASSERT_EQUAL(mg_ipcache_pending(ipc), 0);
	/* A changed cluster id is a change. */
	e.cluster_id = 4;
	CU_ASSERT_EQUAL(mg_ipcache_put(ipc, &e), 0);
	CU_ASSERT_EQUAL(mg_ipcache_pending(ipc), 1);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 1);
	CU_ASSERT_EQUAL(mg_ipcache_get(ipc, AF_INET, e.addr, 8, &out), 0);
	CU_ASSERT_EQUAL(out.cluster_id, 4);

	/* Delete: absent -> ENOENT, considering staged operations. */
	CU_ASSERT_EQUAL(del(ipc, "10.0.0.0/9"), -ENOENT);
	CU_ASSERT_EQUAL(del(ipc, "11.0.0.0/8"), -ENOENT);
	CU_ASSERT_EQUAL(del(ipc, "10.0.0.0/8"), 0);
	CU_ASSERT_EQUAL(del(ipc, "10.0.0.0/8"), -ENOENT); /* already staged */
	CU_ASSERT_EQUAL(look(ipc, "10.0.0.1"), 6);        /* not committed */
	CU_ASSERT_EQUAL(mg_ipcache_pending(ipc), 1);
	/* put after a staged delete brings it back. */
	CU_ASSERT_EQUAL(put(ipc, "10.0.0.0/8", 7), 0);
	CU_ASSERT_EQUAL(mg_ipcache_pending(ipc), 1);
	/* and deleting it again turns it back into a removal of the committed entry */
	CU_ASSERT_EQUAL(del(ipc, "10.0.0.0/8"), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 1);
	CU_ASSERT_EQUAL(look(ipc, "10.0.0.1"), 2);
	CU_ASSERT_EQUAL(mg_ipcache_count(ipc, 0), 0);

	/* A staged put of a new prefix that is deleted before commit vanishes. */
	CU_ASSERT_EQUAL(put(ipc, "1.0.0.0/8", 1000), 0);
	CU_ASSERT_EQUAL(put(ipc, "2.0.0.0/8", 2000), 0);
	CU_ASSERT_EQUAL(put(ipc, "3.0.0.0/8", 3000), 0);
	CU_ASSERT_EQUAL(del(ipc, "1.0.0.0/8"), 0);
	CU_ASSERT_EQUAL(mg_ipcache_pending(ipc), 2);
	CU_ASSERT_EQUAL(del(ipc, "1.0.0.0/8"), -ENOENT);
	/* The moved operation is still indexed correctly. */
	CU_ASSERT_EQUAL(put(ipc, "3.0.0.0/8", 3001), 0);
	CU_ASSERT_EQUAL(mg_ipcache_pending(ipc), 2);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 2);
	CU_ASSERT_EQUAL(look(ipc, "1.0.0.1"), 2);
	CU_ASSERT_EQUAL(look(ipc, "2.0.0.1"), 2000);
	CU_ASSERT_EQUAL(look(ipc, "3.0.0.1"), 3001);

	/* Invalid input. */
	e = pfx("10.0.0.0/8", 0);
	CU_ASSERT_EQUAL(mg_ipcache_put(ipc, &e), -EINVAL);
	e.identity = 5;
	e.plen = 33;
	CU_ASSERT_EQUAL(mg_ipcache_put(ipc, &e), -EINVAL);
	e.family = 7;
	e.plen = 8;
	CU_ASSERT_EQUAL(mg_ipcache_put(ipc, &e), -EINVAL);
	CU_ASSERT_EQUAL(mg_ipcache_put(ipc, NULL), -EINVAL);
	CU_ASSERT_EQUAL(mg_ipcache_del(ipc, AF_INET6, e.addr, 129), -EINVAL);
	CU_ASSERT_EQUAL(mg_ipcache_pending(ipc), 0);
	mg_ipcache_free(ipc);
}

struct walk_acc {
	size_t n, v4, v6;
	uint64_t id_sum;
	bool masked;
	size_t stop_after;
};

static int
walk_cb(const struct mg_ipcache_entry *e, void *arg)
{
	struct walk_acc *w = arg;
	unsigned bytes = e->family == AF_INET ? 4 : 16;

	w->n++;
	w->v4 += e->family == AF_INET;
	w->v6 += e->family == AF_INET6;
	w->id_sum += e->identity;
	/* Host bits are zero in every record. */
	for (unsigned b = e->plen; b < bytes * 8; b++)
		if (e->addr[b / 8] & (0x80 >> (b % 8)))
			w->masked = false;
	return w->stop_after != 0 && w->n == w->stop_after ? -7 : 0;
}

static void
test_get_walk_count(void)
{
	struct mg_ipcache *ipc = make(true, 100);
	struct mg_ipcache_entry e = pfx("10.1.2.3/32", 0), out;
	struct walk_acc w = {0, 0, 0, 0, true, 0};
	uint8_t host[16];

	CU_ASSERT_PTR_NOT_NULL_FATAL(ipc);
	e = pfx("192.168.7.0/24", 42);
	e.cluster_id = 9;
	CU_ASSERT_EQUAL(mg_ipcache_put(ipc, &e), 0);
	CU_ASSERT_EQUAL(put(ipc, "fd00::1", 43), 0);
	CU_ASSERT_EQUAL(put(ipc, "fd00::/8", 44), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 3);

	/* get masks the host bits of its argument. */
	CU_ASSERT_EQUAL(inet_pton(AF_INET, "192.168.7.99", host), 1);
	CU_ASSERT_EQUAL(mg_ipcache_get(ipc, AF_INET, host, 24, &out), 0);
	CU_ASSERT_EQUAL(out.identity, 42);
	CU_ASSERT_EQUAL(out.cluster_id, 9);
	CU_ASSERT_EQUAL(out.family, AF_INET);
	CU_ASSERT_EQUAL(out.plen, 24);
	CU_ASSERT_EQUAL(out.addr[3], 0);
	CU_ASSERT_EQUAL(mg_ipcache_get(ipc, AF_INET, host, 25, &out), -ENOENT);
	CU_ASSERT_EQUAL(mg_ipcache_get(ipc, AF_INET, host, 40, &out), -EINVAL);
	e = pfx("fd00::1", 0);
	CU_ASSERT_EQUAL(mg_ipcache_get(ipc, AF_INET6, e.addr, 128, &out), 0);
	CU_ASSERT_EQUAL(out.identity, 43);

	CU_ASSERT_EQUAL(mg_ipcache_count(ipc, 0), 3);
	CU_ASSERT_EQUAL(mg_ipcache_count(ipc, AF_INET), 1);
	CU_ASSERT_EQUAL(mg_ipcache_count(ipc, AF_INET6), 2);
	CU_ASSERT_EQUAL(mg_ipcache_walk(ipc, walk_cb, &w), 0);
	CU_ASSERT_EQUAL(w.n, 3);
	CU_ASSERT_EQUAL(w.v4, 1);
	CU_ASSERT_EQUAL(w.v6, 2);
	CU_ASSERT_EQUAL(w.id_sum, 42 + 43 + 44);
	CU_ASSERT_TRUE(w.masked);
	w = (struct walk_acc){0, 0, 0, 0, true, 2};
	CU_ASSERT_EQUAL(mg_ipcache_walk(ipc, walk_cb, &w), -7);
	CU_ASSERT_EQUAL(w.n, 2);
	CU_ASSERT(mg_ipcache_memory(ipc) > 0);
	mg_ipcache_free(ipc);
}

static void
check_parse(const char *in, int rc, const char *out)
{
	struct mg_ipcache_entry e;
	char buf[64];

	memset(&e, 0, sizeof(e));
	CU_ASSERT_EQUAL(mg_ipcache_parse_prefix(in, &e), rc);
	if (rc != 0 || out == NULL)
		return;
	CU_ASSERT_STRING_EQUAL(mg_ipcache_prefix_str(&e, buf, sizeof(buf)), out);
	if (strcmp(buf, out) != 0)
		fprintf(stderr, "parse %s -> %s, expected %s\n", in, buf, out);
}

static void
test_parse_format(void)
{
	struct mg_ipcache_entry e;
	char small[8];

	check_parse("10.0.0.0/8", 0, "10.0.0.0/8");
	check_parse("10.1.2.3", 0, "10.1.2.3/32");
	check_parse("0.0.0.0/0", 0, "0.0.0.0/0");
	check_parse("10.1.2.3/8", 0, "10.0.0.0/8"); /* host bits cleared */
	check_parse("10.1.2.255/31", 0, "10.1.2.254/31");
	check_parse("fd00::/64", 0, "fd00::/64");
	check_parse("fd00::1", 0, "fd00::1/128");
	check_parse("fd00::1/0", 0, "::/0");
	check_parse("fd00:1:2:3:4:5:6:7/127", 0, "fd00:1:2:3:4:5:6:6/127");
	check_parse("fd00:ffff::/17", 0, "fd00:8000::/17");
	check_parse("::ffff:1.2.3.4", 0, "::ffff:1.2.3.4/128");

	check_parse("", -EINVAL, NULL);
	check_parse("/8", -EINVAL, NULL);
	check_parse("10.0.0.0/", -EINVAL, NULL);
	check_parse("10.0.0.0/33", -EINVAL, NULL);
	check_parse("10.0.0.0/-1", -EINVAL, NULL);
	check_parse("10.0.0.0/+8", -EINVAL, NULL);
	check_parse("10.0.0.0/ 8", -EINVAL, NULL);
	check_parse("10.0.0.0/8x", -EINVAL, NULL);
	check_parse("10.0.0.0/0008", -EINVAL, NULL);
	check_parse("10.0.0/8", -EINVAL, NULL);
	check_parse("10.0.0.256", -EINVAL, NULL);
	check_parse("fd00::/129", -EINVAL, NULL);
	check_parse("fd00:::1", -EINVAL, NULL);
	check_parse("hello", -EINVAL, NULL);
	check_parse("10.0.0.0/8/8", -EINVAL, NULL);
	check_parse("10.0.0.1 ", -EINVAL, NULL);
	CU_ASSERT_EQUAL(mg_ipcache_parse_prefix(NULL, &e), -EINVAL);

	/* Truncation is safe. */
	CU_ASSERT_EQUAL(mg_ipcache_parse_prefix("192.168.100.100", &e), 0);
	mg_ipcache_prefix_str(&e, small, sizeof(small));
	CU_ASSERT_EQUAL(strlen(small), sizeof(small) - 1);
}

/* ---- randomized comparison against a naive LPM ---- */

struct ref {
	uint8_t family, plen;
	uint8_t addr[16];
	uint32_t id;
	bool live;
};

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t
rnd(void)
{
	/* xorshift64*: reproducible, so a failure can be replayed. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/*
 * The reference LPM, a different algorithm from the one under test: per
 * family and length, a sorted array of the live prefixes, searched with
 * bsearch() from the longest length down.
 */
struct kv {
	uint8_t addr[16];
	uint32_t id;
};

struct refidx {
	struct kv *v[2][129];
	size_t n[2][129];
};

static int
kv_cmp(const void *a, const void *b)
{
	return memcmp(((const struct kv *)a)->addr, ((const struct kv *)b)->addr, 16);
}

static void
refidx_free(struct refidx *x)
{
	for (unsigned f = 0; f < 2; f++)
		for (unsigned l = 0; l < 129; l++)
			free(x->v[f][l]);
	memset(x, 0, sizeof(*x));
}

static void
refidx_build(struct refidx *x, const struct ref *refs, size_t n)
{
	refidx_free(x);
	for (size_t i = 0; i < n; i++)
		if (refs[i].live)
			x->n[refs[i].family == AF_INET6][refs[i].plen]++;
	for (unsigned f = 0; f < 2; f++)
		for (unsigned l = 0; l < 129; l++) {
			x->v[f][l] = calloc(x->n[f][l] + 1, sizeof(struct kv));
			if (x->v[f][l] == NULL)
				abort();
			x->n[f][l] = 0;
		}
	for (size_t i = 0; i < n; i++) {
		const struct ref *r = &refs[i];
		unsigned f = r->family == AF_INET6;
		struct kv *kv;

		if (!r->live)
			continue;
		kv = &x->v[f][r->plen][x->n[f][r->plen]++];
		memcpy(kv->addr, r->addr, 16);
		kv->id = r->id;
	}
	for (unsigned f = 0; f < 2; f++)
		for (unsigned l = 0; l < 129; l++)
			qsort(x->v[f][l], x->n[f][l], sizeof(struct kv), kv_cmp);
}

static uint32_t
ref_lookup(const struct refidx *x, uint8_t family, const uint8_t *a)
{
	unsigned f = family == AF_INET6;

	for (int l = f ? 128 : 32; l >= 0; l--) {
		struct kv key;
		const struct kv *hit;

		memset(&key, 0, sizeof(key));
		memcpy(key.addr, a, (unsigned)l / 8);
		if (l % 8)
			key.addr[l / 8] = (uint8_t)(a[l / 8] & (0xff00 >> (l % 8)));
		hit = bsearch(&key, x->v[f][l], x->n[f][l], sizeof(struct kv), kv_cmp);
		if (hit != NULL)
			return hit->id;
	}
	return family == AF_INET ? 9 : 10;
}

/* Sanity check of the reference itself against a linear scan, on a few addresses. */
static bool
covers(const struct ref *r, uint8_t family, const uint8_t *a)
{
	unsigned full = r->plen / 8, rest = r->plen % 8;

	if (r->family != family)
		return false;
	for (unsigned i = 0; i < full; i++)
		if (r->addr[i] != a[i])
			return false;
	return rest == 0 || ((r->addr[full] ^ a[full]) & (0xff00 >> rest) & 0xff) == 0;
}

static uint32_t
scan_lookup(const struct ref *refs, size_t n, uint8_t family, const uint8_t *a)
{
	int best = -1;
	uint32_t id = family == AF_INET ? 9 : 10;

	for (size_t i = 0; i < n; i++)
		if (refs[i].live && (int)refs[i].plen > best && covers(&refs[i], family, a)) {
			best = refs[i].plen;
			id = refs[i].id;
		}
	return id;
}

static void
random_addr(const struct ref *refs, size_t n, uint8_t *fam, uint8_t *a)
{
	/* Mostly addresses inside some prefix (random host bits), some anywhere. */
	const struct ref *r = &refs[rnd() % n];
	uint64_t x = rnd(), y = rnd();

	*fam = r->family;
	memcpy(a, &x, 8);
	memcpy(a + 8, &y, 8);
	if (rnd() % 8 == 0)
		return;
	for (unsigned b = 0; b < r->plen; b++) {
		uint8_t bit = (uint8_t)(0x80 >> (b % 8));

		a[b / 8] = (uint8_t)((a[b / 8] & ~bit) | (r->addr[b / 8] & bit));
	}
}

static void
random_prefix(struct ref *r)
{
	uint64_t x = rnd(), y = rnd();

	memset(r, 0, sizeof(*r));
	r->family = rnd() % 2 ? AF_INET : AF_INET6;
	memcpy(r->addr, &x, 8);
	memcpy(r->addr + 8, &y, 8);
	/* Keep the space small so that prefixes nest: 10.0.0.0/12 and fd00::/24 with random tails. */
	if (r->family == AF_INET) {
		r->addr[0] = 10;
		r->addr[1] &= 0x0f;
		r->plen = (uint8_t)(rnd() % 4 == 0 ? 32 : 8 + rnd() % 25);
		memset(r->addr + 4, 0, 12);
	} else {
		r->addr[0] = 0xfd;
		r->addr[1] = 0;
		r->addr[2] &= 0x0f;
		r->plen = (uint8_t)(rnd() % 4 == 0 ? 128 : 8 + rnd() % 121);
	}
	for (unsigned b = r->plen; b < 128; b++)
		r->addr[b / 8] &= (uint8_t) ~(0x80 >> (b % 8));
	r->id = 1000 + (uint32_t)(rnd() % 100000);
	r->live = true;
}

static size_t
compare_view(const struct mg_ipcache_view *v, const struct ref *refs, size_t n, unsigned count,
             void (*gen)(const struct ref *, size_t, uint8_t *, uint8_t *))
{
	struct refidx x;
	size_t bad = 0;

	memset(&x, 0, sizeof(x));
	refidx_build(&x, refs, n);
	for (unsigned i = 0; i < count; i++) {
		uint8_t a[16], fam;
		uint32_t got, want;

		gen(refs, n, &fam, a);
		got = mg_ipcache_lookup(v, fam, a);
		want = ref_lookup(&x, fam, a);
		/* Every 500th: check the reference against a linear scan too. */
		if (i % 500 == 0 && want != scan_lookup(refs, n, fam, a)) {
			fprintf(stderr, "reference LPM disagrees with the scan\n");
			bad++;
		}
		if (got != want && bad++ < 5)
			fprintf(stderr, "lookup mismatch: family %u got %u want %u\n", fam, got,
			        want);
	}
	refidx_free(&x);
	return bad;
}

static size_t
compare_lookups(const struct mg_ipcache *ipc, const struct ref *refs, size_t n, unsigned count)
{
	return compare_view(mg_ipcache_reader(ipc), refs, n, count, random_addr);
}

static void
test_random_vs_naive(void)
{
	enum {
		N = 5000,
		LOOKUPS = 100000
	};
	struct mg_ipcache *ipc = make(true, 0);
	struct ref *refs = calloc(N, sizeof(*refs));
	size_t live = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(ipc);
	CU_ASSERT_PTR_NOT_NULL_FATAL(refs);
	for (size_t i = 0; i < N; i++) {
		struct mg_ipcache_entry e;

		random_prefix(&refs[i]);
		/* A duplicate prefix replaces the earlier one: mirror that in the reference. */
		for (size_t j = 0; j < i; j++)
			if (refs[j].live && refs[j].family == refs[i].family &&
			    refs[j].plen == refs[i].plen && !memcmp(refs[j].addr, refs[i].addr, 16))
				refs[j].live = false;
		memset(&e, 0, sizeof(e));
		e.family = refs[i].family;
		e.plen = refs[i].plen;
		memcpy(e.addr, refs[i].addr, 16);
		e.identity = refs[i].id;
		CU_ASSERT_EQUAL_FATAL(mg_ipcache_put(ipc, &e), 0);
	}
	for (size_t i = 0; i < N; i++)
		live += refs[i].live;
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), (int)live);
	CU_ASSERT_EQUAL(mg_ipcache_count(ipc, 0), live);
	CU_ASSERT_EQUAL(mg_ipcache_verify(ipc), 0);
	CU_ASSERT_EQUAL(compare_lookups(ipc, refs, N, LOOKUPS / 2), 0);

	/* Delete a third, change a third, in two batches. */
	for (size_t i = 0; i < N; i++) {
		if (!refs[i].live)
			continue;
		if (i % 3 == 0) {
			CU_ASSERT_EQUAL(
			        mg_ipcache_del(ipc, refs[i].family, refs[i].addr, refs[i].plen), 0);
			refs[i].live = false;
			live--;
		} else if (i % 3 == 1) {
			struct mg_ipcache_entry e;

			memset(&e, 0, sizeof(e));
			e.family = refs[i].family;
			e.plen = refs[i].plen;
			memcpy(e.addr, refs[i].addr, 16);
			e.identity = refs[i].id = 200000 + (uint32_t)i;
			CU_ASSERT_EQUAL(mg_ipcache_put(ipc, &e), 0);
		}
		if (i == N / 2)
			CU_ASSERT(mg_ipcache_commit(ipc) > 0);
	}
	CU_ASSERT(mg_ipcache_commit(ipc) > 0);
	CU_ASSERT_EQUAL(mg_ipcache_count(ipc, 0), live);
	CU_ASSERT_EQUAL(mg_ipcache_verify(ipc), 0);
	CU_ASSERT_EQUAL(compare_lookups(ipc, refs, N, LOOKUPS / 2), 0);

	/* Delete everything: only world is left. */
	for (size_t i = 0; i < N; i++)
		if (refs[i].live)
			CU_ASSERT_EQUAL(
			        mg_ipcache_del(ipc, refs[i].family, refs[i].addr, refs[i].plen), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), (int)live);
	CU_ASSERT_EQUAL(mg_ipcache_count(ipc, 0), 0);
	CU_ASSERT_EQUAL(mg_ipcache_verify(ipc), 0);
	CU_ASSERT_FALSE(mg_ipcache_may_match(mg_ipcache_reader(ipc), AF_INET,
	                                     (const uint8_t[4]){10, 0, 0, 1}));
	CU_ASSERT_EQUAL(look(ipc, "10.0.0.1"), 9);
	CU_ASSERT_EQUAL(look(ipc, "fd00::1"), 10);
	free(refs);
	mg_ipcache_free(ipc);
}

/*
 * ---- many small batches against a model of the staging rules ----
 *
 * The writer's path as the sync client drives it: batches of 1 to a few
 * hundred puts and deletes (now and then a big one), committed one after
 * the other, over tables that start empty and grow. A model keeps what is
 * committed and what is staged per prefix, with the staging rules of
 * mg_ipcache.h (a put of what is committed stages nothing; a second change
 * to a staged prefix rewrites it; a delete of a prefix that is only staged
 * forgets it), and every return value, the pending count, the commit's
 * count, and after each commit every prefix's get and lookup must agree
 * with it. The staged log keeps each prefix's hash for the commit, and
 * the commit prefetches and probes with it; a stale or wrong hash (a log
 * entry moved, a map rehashed) shows up here as a record get cannot find
 * or a count that drifts.
 */
enum {
	CH_N = 2000, /* prefixes: 4 disjoint kinds, see ch_prefix() */
	CH_BATCHES = 400,
	CH_NONE = UINT32_MAX /* model: nothing staged */
};

/* Prefix @i (kind i % 4: v4 /32, v4 /24, v6 /128, v6 /64) and an address inside it. */
static void
ch_prefix(uint32_t i, struct mg_ipcache_entry *e, uint8_t *inside)
{
	uint32_t k = i / 4;

	memset(e, 0, sizeof(*e));
	memset(inside, 0, 16);
	switch (i % 4) {
	case 0:
		e->family = AF_INET;
		e->plen = 32;
		e->addr[0] = 10;
		e->addr[1] = 1;
		e->addr[2] = (uint8_t)(k >> 8);
		e->addr[3] = (uint8_t)k;
		memcpy(inside, e->addr, 4);
		break;
	case 1:
		e->family = AF_INET;
		e->plen = 24;
		e->addr[0] = 10;
		e->addr[1] = (uint8_t)(2 + (k >> 8));
		e->addr[2] = (uint8_t)k;
		memcpy(inside, e->addr, 4);
		inside[3] = 99;
		break;
	case 2:
		e->family = AF_INET6;
		e->plen = 128;
		e->addr[0] = 0xfd;
		e->addr[3] = 1;
		e->addr[14] = (uint8_t)(k >> 8);
		e->addr[15] = (uint8_t)k;
		memcpy(inside, e->addr, 16);
		break;
	default:
		e->family = AF_INET6;
		e->plen = 64;
		e->addr[0] = 0xfd;
		e->addr[3] = 2;
		e->addr[6] = (uint8_t)(k >> 8);
		e->addr[7] = (uint8_t)k;
		memcpy(inside, e->addr, 8);
		inside[15] = 7;
		break;
	}
}

struct ch_model {
	uint32_t id[CH_N], cl[CH_N];   /* committed; id 0 = absent */
	uint32_t sid[CH_N], scl[CH_N]; /* staged: CH_NONE, 0 (delete) or the put */
	size_t pending, live;
};

/* Expected return of a put, and the model after it. */
static int
ch_model_put(struct ch_model *m, uint32_t i, uint32_t id, uint32_t cl)
{
	if (m->sid[i] == CH_NONE && m->id[i] == id && m->cl[i] == cl)
		return 0; /* committed as asked: nothing staged */
	if (m->sid[i] == CH_NONE)
		m->pending++;
	m->sid[i] = id;
	m->scl[i] = cl;
	return 0;
}

static int
ch_model_del(struct ch_model *m, uint32_t i)
{
	if (m->sid[i] == 0)
		return -ENOENT; /* already staged for removal */
	if (m->sid[i] != CH_NONE) {
		if (m->id[i] != 0) {
			m->sid[i] = 0;
		} else {
			m->sid[i] = CH_NONE; /* only staged: forgotten */
			m->pending--;
		}
		return 0;
	}
	if (m->id[i] == 0)
		return -ENOENT;
	m->sid[i] = 0;
	m->pending++;
	return 0;
}

static void
ch_model_commit(struct ch_model *m)
{
	for (uint32_t i = 0; i < CH_N; i++) {
		if (m->sid[i] == CH_NONE)
			continue;
		m->live += (m->sid[i] != 0) - (m->id[i] != 0);
		m->id[i] = m->sid[i];
		m->cl[i] = m->scl[i];
		m->sid[i] = CH_NONE;
	}
	m->pending = 0;
}

/* Disagreements between the committed table and the model. */
static unsigned
ch_check(const struct mg_ipcache *ipc, const struct ch_model *m)
{
	const struct mg_ipcache_view *v = mg_ipcache_reader(ipc);
	unsigned bad = mg_ipcache_count(ipc, 0) != m->live;

	for (uint32_t i = 0; i < CH_N; i++) {
		struct mg_ipcache_entry e, got;
		uint8_t a[16];
		int rc;
		uint32_t want;

		ch_prefix(i, &e, a);
		rc = mg_ipcache_get(ipc, e.family, e.addr, e.plen, &got);
		want = m->id[i] != 0 ? m->id[i] : e.family == AF_INET ? 9 : 10;
		if (m->id[i] == 0
		            ? rc != -ENOENT
		            : rc != 0 || got.identity != m->id[i] || got.cluster_id != m->cl[i])
			bad++;
		if (mg_ipcache_lookup(v, e.family, a) != want)
			bad++;
	}
	return bad;
}

static void
test_small_batches_vs_model(void)
{
	struct mg_ipcache *ipc = make(true, 0);
	struct ch_model *m = calloc(1, sizeof(*m));
	unsigned bad_rc = 0, bad_pending = 0, bad_commit = 0, bad_table = 0, bad_verify = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(ipc);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	for (uint32_t i = 0; i < CH_N; i++)
		m->sid[i] = CH_NONE;
	for (unsigned b = 0; b < CH_BATCHES; b++) {
		/* Mostly small batches, every 16th a big one (the staged index grows). */
		unsigned n = b % 16 == 15 ? 1500 : 1 + (unsigned)(rnd() % 200);
		int rc;

		for (unsigned k = 0; k < n; k++) {
			uint64_t x = rnd();
			/* A hot quarter of the prefixes takes half the changes: repeats in a batch. */
			uint32_t i = (uint32_t)((x & 1 ? x >> 8 : (x >> 8) % (CH_N / 4)) % CH_N);
			struct mg_ipcache_entry e;
			uint8_t a[16];
			int want, got;

			ch_prefix(i, &e, a);
			if ((x >> 40) % 3 == 0) {
				want = ch_model_del(m, i);
				got = mg_ipcache_del(ipc, e.family, e.addr, e.plen);
			} else {
				/* Few identities and clusters: some puts repeat what is there. */
				e.identity = 1000 + (uint32_t)((x >> 44) % 4);
				e.cluster_id = (unsigned)((x >> 50) % 2);
				want = ch_model_put(m, i, e.identity, e.cluster_id);
				got = mg_ipcache_put(ipc, &e);
			}
			bad_rc += got != want;
			bad_pending += mg_ipcache_pending(ipc) != m->pending;
		}
		rc = mg_ipcache_commit(ipc);
		bad_commit += rc != (int)m->pending;
		ch_model_commit(m);
		bad_table += ch_check(ipc, m);
		if (b % 25 == 0 || b == CH_BATCHES - 1)
			bad_verify += mg_ipcache_verify(ipc) != 0;
	}
	CU_ASSERT_EQUAL(bad_rc, 0);
	CU_ASSERT_EQUAL(bad_pending, 0);
	CU_ASSERT_EQUAL(bad_commit, 0);
	CU_ASSERT_EQUAL(bad_table, 0);
	CU_ASSERT_EQUAL(bad_verify, 0);
	/* The run covered growth from empty and a table of some size. */
	CU_ASSERT(m->live > CH_N / 4);
	free(m);
	mg_ipcache_free(ipc);
}

/* ---- the miss filter ---- */

/* mg_ipcache_may_match on the active copy, for a textual address. */
static bool
may(const struct mg_ipcache *ipc, const char *a)
{
	uint8_t buf[16];

	if (inet_pton(AF_INET, a, buf) == 1)
		return mg_ipcache_may_match(mg_ipcache_reader(ipc), AF_INET, buf);
	if (inet_pton(AF_INET6, a, buf) == 1)
		return mg_ipcache_may_match(mg_ipcache_reader(ipc), AF_INET6, buf);
	abort();
}

/*
 * Expected filter answers and lookups for a few addresses, checked on
 * BOTH copies: on the active one, then (after a commit that only toggles
 * an unrelated host route, @toggle, in a family the case does not use) on
 * the other one, which got the same batch after the grace period. Then
 * the invariants of both copies (mg_ipcache_verify). Returns the number
 * of disagreements.
 */
struct fcase {
	const char *addr;
	bool may;
	uint32_t id;
};

static unsigned
check_cases(struct mg_ipcache *ipc, const char *toggle, const struct fcase *c, size_t n)
{
	unsigned bad = 0;

	for (unsigned copy = 0; copy < 2; copy++) {
		for (size_t i = 0; i < n; i++) {
			if (may(ipc, c[i].addr) != c[i].may || look(ipc, c[i].addr) != c[i].id) {
				fprintf(stderr,
				        "copy %u: %s: may_match %d (want %d), id %u (want %u)\n",
				        copy, c[i].addr, may(ipc, c[i].addr), c[i].may,
				        look(ipc, c[i].addr), c[i].id);
				bad++;
			}
		}
		if (copy == 0) {
			/* Put or remove the toggle: either way the other copy becomes active. */
			if (del(ipc, toggle) == -ENOENT && put(ipc, toggle, 4242) != 0)
				bad++;
			if (mg_ipcache_commit(ipc) != 1)
				bad++;
		}
	}
	if (mg_ipcache_verify(ipc) != 0)
		bad++;
	return bad;
}

#define CHECK(ipc, toggle, ...)                                                               \
	do {                                                                                  \
		const struct fcase c_[] = {__VA_ARGS__};                                      \
		CU_ASSERT_EQUAL(check_cases(ipc, toggle, c_, sizeof(c_) / sizeof(c_[0])), 0); \
	} while (0)

static void
test_filter_v4(void)
{
	struct mg_ipcache *ipc = make(true, 0);
	const char *tg = "fd99::1"; /* toggled in the other family */

	CU_ASSERT_PTR_NOT_NULL_FATAL(ipc);
	CHECK(ipc, tg, {"10.5.1.2", false, 9}, {"0.0.0.0", false, 9},
	      {"255.255.255.255", false, 9});

	/* A host route sets its /16 only: same /16 passes (and misses), neighbours do not. */
	CU_ASSERT_EQUAL(put(ipc, "10.5.1.2", 100), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 1);
	CHECK(ipc, tg, {"10.5.1.2", true, 100}, {"10.5.0.0", true, 9}, {"10.5.255.255", true, 9},
	      {"10.4.255.255", false, 9}, {"10.6.0.0", false, 9}, {"11.5.1.2", false, 9});

	/* A /12 sets the 16 /16s it covers, exactly. */
	CU_ASSERT_EQUAL(put(ipc, "172.16.0.0/12", 120), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 1);
	CHECK(ipc, tg, {"172.16.0.0", true, 120}, {"172.31.255.255", true, 120},
	      {"172.24.1.1", true, 120}, {"172.15.255.255", false, 9}, {"172.32.0.0", false, 9});

	/* A second prefix in 10.5/16; removing one of them keeps the bit. */
	CU_ASSERT_EQUAL(put(ipc, "10.5.3.0/24", 124), 0);
	CU_ASSERT_EQUAL(put(ipc, "10.5.128.0/17", 117), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 2);
	CU_ASSERT_EQUAL(del(ipc, "10.5.1.2"), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 1);
	CHECK(ipc, tg, {"10.5.1.2", true, 9}, {"10.5.3.7", true, 124}, {"10.5.200.1", true, 117});
	CU_ASSERT_EQUAL(del(ipc, "10.5.3.0/24"), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 1);
	CHECK(ipc, tg, {"10.5.3.7", true, 9}, {"10.5.200.1", true, 117});
	/* The last prefix of the /16 goes: so does its bit, in both copies. */
	CU_ASSERT_EQUAL(del(ipc, "10.5.128.0/17"), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 1);
	CHECK(ipc, tg, {"10.5.200.1", false, 9}, {"10.5.3.7", false, 9}, {"172.20.0.1", true, 120});

	/* Nested short prefixes share buckets: /8 over /12, and a host route inside. */
	CU_ASSERT_EQUAL(put(ipc, "172.0.0.0/8", 108), 0);
	CU_ASSERT_EQUAL(put(ipc, "172.17.0.9", 132), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 2);
	CHECK(ipc, tg, {"172.0.0.1", true, 108}, {"172.255.0.1", true, 108},
	      {"172.17.0.9", true, 132}, {"172.17.0.8", true, 120}, {"173.0.0.0", false, 9});
	CU_ASSERT_EQUAL(del(ipc, "172.16.0.0/12"), 0);
	CU_ASSERT_EQUAL(del(ipc, "172.0.0.0/8"), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 2);
	CHECK(ipc, tg, {"172.17.0.9", true, 132}, {"172.17.0.8", true, 9}, {"172.18.0.1", false, 9},
	      {"172.0.0.1", false, 9}, {"172.31.0.1", false, 9});

	/* /1 covers 32768 buckets, /0 all of them; both come and go. */
	CU_ASSERT_EQUAL(put(ipc, "128.0.0.0/1", 1), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 1);
	CHECK(ipc, tg, {"200.1.1.1", true, 1}, {"128.0.0.0", true, 1},
	      {"127.255.255.255", false, 9}, {"172.17.0.9", true, 132});
	CU_ASSERT_EQUAL(put(ipc, "0.0.0.0/0", 50), 0);
	CU_ASSERT_EQUAL(del(ipc, "128.0.0.0/1"), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 2);
	CHECK(ipc, tg, {"1.2.3.4", true, 50}, {"200.1.1.1", true, 50}, {"172.17.0.9", true, 132});
	CU_ASSERT_EQUAL(del(ipc, "0.0.0.0/0"), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 1);
	CHECK(ipc, tg, {"1.2.3.4", false, 9}, {"200.1.1.1", false, 9}, {"172.17.0.9", true, 132});

	/* A put and a delete of the same /16 in one batch, and a replace (no count change). */
	CU_ASSERT_EQUAL(put(ipc, "10.7.0.1", 71), 0);
	CU_ASSERT_EQUAL(del(ipc, "172.17.0.9"), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 2);
	CU_ASSERT_EQUAL(put(ipc, "10.7.0.1", 72), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 1);
	CHECK(ipc, tg, {"10.7.0.1", true, 72}, {"172.17.0.9", false, 9});
	CU_ASSERT_EQUAL(del(ipc, "10.7.0.1"), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 1);
	CHECK(ipc, tg, {"10.7.0.1", false, 9});
	mg_ipcache_free(ipc);
}

static void
test_filter_v6(void)
{
	struct mg_ipcache *ipc = make(true, 0);
	const char *tg = "192.0.2.1"; /* toggled in the other family */

	CU_ASSERT_PTR_NOT_NULL_FATAL(ipc);
	CHECK(ipc, tg, {"fd00:10:244::1", false, 10}, {"::", false, 10});

	/* Host route and /64 in the same /32: one bucket, counted twice. */
	CU_ASSERT_EQUAL(put(ipc, "fd00:10:244::1", 128), 0);
	CU_ASSERT_EQUAL(put(ipc, "fd00:10:245::/64", 64), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 2);
	CHECK(ipc, tg, {"fd00:10:244::1", true, 128}, {"fd00:10:245::9", true, 64},
	      {"fd00:10:ffff::1", true, 10}, {"fd00:11::1", false, 10}, {"fd00:f::1", false, 10},
	      {"2001:db8::1", false, 10});
	CU_ASSERT_EQUAL(del(ipc, "fd00:10:244::1"), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 1);
	CHECK(ipc, tg, {"fd00:10:244::1", true, 10}, {"fd00:10:245::9", true, 64});
	CU_ASSERT_EQUAL(del(ipc, "fd00:10:245::/64"), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 1);
	CHECK(ipc, tg, {"fd00:10:245::9", false, 10});

	/* A /29 sets its 8 /32s; a /20 its 4096. */
	CU_ASSERT_EQUAL(put(ipc, "2001:db8::/29", 29), 0);
	CU_ASSERT_EQUAL(put(ipc, "2400::/20", 20), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 2);
	CHECK(ipc, tg, {"2001:db8::1", true, 29}, {"2001:dbf:ffff::1", true, 29},
	      {"2001:dc0::1", false, 10}, {"2001:db7:ffff::1", false, 10}, {"2400::1", true, 20},
	      {"2400:fff:ffff::1", true, 20}, {"2400:1000::1", false, 10});

	/* Shorter than /16: the IPv6 filter passes everything while one is present. */
	CU_ASSERT_EQUAL(put(ipc, "3000::/12", 12), 0);
	CU_ASSERT_EQUAL(put(ipc, "::/0", 1), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 2);
	CHECK(ipc, tg, {"3000:1::1", true, 12}, {"2001:dc0::1", true, 1}, {"fd00::1", true, 1},
	      {"2001:db8::1", true, 29});
	CU_ASSERT_EQUAL(del(ipc, "::/0"), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 1);
	CHECK(ipc, tg, {"3000:1::1", true, 12}, {"2001:dc0::1", true, 10}, {"fd00::1", true, 10});
	CU_ASSERT_EQUAL(del(ipc, "3000::/12"), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 1);
	CHECK(ipc, tg, {"3000:1::1", false, 10}, {"2001:dc0::1", false, 10}, {"fd00::1", false, 10},
	      {"2001:db9::1", true, 29});
	/* /16: the shortest one that still sets bits (65536 of them). */
	CU_ASSERT_EQUAL(put(ipc, "fc00::/16", 16), 0);
	CU_ASSERT_EQUAL(del(ipc, "2400::/20"), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 2);
	CHECK(ipc, tg, {"fc00:ffff::1", true, 16}, {"fc00::1", true, 16}, {"2400::1", false, 10},
	      {"fc01::1", false, 10});
	CU_ASSERT_EQUAL(del(ipc, "fc00::/16"), 0);
	CU_ASSERT_EQUAL(del(ipc, "2001:db8::/29"), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 2);
	CHECK(ipc, tg, {"fc00:ffff::1", false, 10}, {"2001:db8::1", false, 10});
	mg_ipcache_free(ipc);
}

/*
 * Random prefixes of every length (IPv4 /0-/32 and IPv6 /0-/128, in a
 * small space so that buckets are shared), put and removed over many
 * commits; after each, lookups of addresses near the prefixes (so that
 * many fall just outside them: filter misses and walk misses) agree with
 * the reference LPM on both copies, and mg_ipcache_verify() holds.
 */
static void
near_addr(const struct ref *refs, size_t n, uint8_t *fam, uint8_t *a)
{
	const struct ref *r;
	unsigned keep;

	for (;;) {
		r = &refs[rnd() % n];
		if (r->live || rnd() % 4 == 0)
			break;
	}
	random_addr(refs, n, fam, a);
	*fam = r->family;
	/* Keep a random number of the prefix's leading bits (up to all, then beyond). */
	keep = (unsigned)(rnd() % (r->plen + 9u));
	if (keep > r->plen)
		keep = r->plen;
	for (unsigned b = 0; b < keep; b++) {
		uint8_t bit = (uint8_t)(0x80 >> (b % 8));

		a[b / 8] = (uint8_t)((a[b / 8] & ~bit) | (r->addr[b / 8] & bit));
	}
}

static void
filt_prefix(struct ref *r)
{
	uint64_t x = rnd(), y = rnd();

	memset(r, 0, sizeof(*r));
	r->family = rnd() % 2 ? AF_INET : AF_INET6;
	memcpy(r->addr, &x, 8);
	memcpy(r->addr + 8, &y, 8);
	if (r->family == AF_INET) {
		static const uint8_t lens[] = {0, 1, 4, 8, 12, 15, 16, 17, 20, 24, 28, 31, 32};

		r->addr[0] = (uint8_t)(10 + rnd() % 2);
		r->addr[1] &= 0x07;
		r->plen = rnd() % 2 ? 32 : lens[rnd() % sizeof(lens)];
		memset(r->addr + 4, 0, 12);
	} else {
		static const uint8_t lens[] = {0, 8, 15, 16, 20, 24, 31, 32, 33, 48, 64, 96, 127};

		r->addr[0] = 0xfd;
		r->addr[1] = (uint8_t)(rnd() % 2);
		r->addr[2] = 0;
		r->addr[3] &= 0x07;
		r->plen = rnd() % 2 ? 128 : lens[rnd() % sizeof(lens)];
	}
	for (unsigned b = r->plen; b < 128; b++)
		r->addr[b / 8] &= (uint8_t) ~(0x80 >> (b % 8));
	r->id = 1000 + (uint32_t)(rnd() % 100000);
	r->live = false;
}

static void
test_filter_random(void)
{
	enum {
		N = 600,
		ROUNDS = 40,
		LOOKUPS = 3000
	};
	struct mg_ipcache *ipc = make(true, 0);
	struct ref *refs = calloc(N, sizeof(*refs));
	size_t bad = 0;
	unsigned verify_bad = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(ipc);
	CU_ASSERT_PTR_NOT_NULL_FATAL(refs);
	/* Distinct prefixes: the reference has one slot per prefix. */
	for (size_t i = 0; i < N; i++) {
		bool dup;

		do {
			filt_prefix(&refs[i]);
			dup = false;
			for (size_t j = 0; j < i; j++)
				if (refs[j].family == refs[i].family &&
				    refs[j].plen == refs[i].plen &&
				    !memcmp(refs[j].addr, refs[i].addr, 16))
					dup = true;
		} while (dup);
	}
	for (unsigned round = 0; round < ROUNDS; round++) {
		/* Flip about a tenth of the prefixes; the wide ones rarely (they cost 2^16 each). */
		for (size_t i = 0; i < N; i++) {
			struct ref *r = &refs[i];

			if (rnd() % 10 != 0 || (r->plen < 12 && rnd() % 4 != 0))
				continue;
			if (r->live) {
				CU_ASSERT_EQUAL(mg_ipcache_del(ipc, r->family, r->addr, r->plen),
				                0);
			} else {
				struct mg_ipcache_entry e;

				memset(&e, 0, sizeof(e));
				e.family = r->family;
				e.plen = r->plen;
				memcpy(e.addr, r->addr, 16);
				e.identity = r->id;
				CU_ASSERT_EQUAL(mg_ipcache_put(ipc, &e), 0);
			}
			r->live = !r->live;
		}
		CU_ASSERT(mg_ipcache_commit(ipc) >= 0);
		verify_bad += mg_ipcache_verify(ipc) != 0;
		/* The active copy, then the other one (a commit of a prefix no address hits). */
		bad += compare_view(mg_ipcache_reader(ipc), refs, N, LOOKUPS, near_addr);
		CU_ASSERT_EQUAL(put(ipc, "192.0.2.1", 7 + round), 0);
		CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 1);
		bad += compare_view(mg_ipcache_reader(ipc), refs, N, LOOKUPS, near_addr);
		CU_ASSERT_EQUAL(del(ipc, "192.0.2.1"), 0);
		CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 1);
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(verify_bad, 0);
	free(refs);
	mg_ipcache_free(ipc);
}

static void
test_bulk(void)
{
	enum {
		N = 1000,
		B = 37
	};
	struct mg_ipcache *ipc = make(false, 0);
	static uint8_t addrs[N][16];
	const uint8_t *ptrs[N];
	uint8_t fams[N];
	uint32_t ids[N];
	bool same = true;

	CU_ASSERT_PTR_NOT_NULL_FATAL(ipc);
	for (unsigned i = 0; i < N; i++) {
		struct mg_ipcache_entry e;

		memset(&e, 0, sizeof(e));
		e.family = i % 3 ? AF_INET : AF_INET6;
		e.plen = e.family == AF_INET ? 32 : 128;
		e.addr[0] = e.family == AF_INET ? 10 : 0xfd;
		e.addr[e.family == AF_INET ? 2 : 14] = (uint8_t)(i >> 8);
		e.addr[e.family == AF_INET ? 3 : 15] = (uint8_t)i;
		e.identity = 5000 + i;
		if (i % 2)
			CU_ASSERT_EQUAL(mg_ipcache_put(ipc, &e), 0);
		memcpy(addrs[i], e.addr, 16);
		fams[i] = e.family;
		ptrs[i] = addrs[i];
	}
	CU_ASSERT_EQUAL(put(ipc, "10.0.0.0/16", 77), 0);
	CU_ASSERT(mg_ipcache_commit(ipc) > 0);
	/* Odd burst sizes exercise the prefetch tail. */
	for (unsigned off = 0; off < N; off += B) {
		unsigned n = off + B <= N ? B : N - off;

		mg_ipcache_lookup_bulk(mg_ipcache_reader(ipc), fams + off, ptrs + off, ids + off,
		                       n);
	}
	for (unsigned i = 0; i < N; i++)
		if (ids[i] != mg_ipcache_lookup(mg_ipcache_reader(ipc), fams[i], ptrs[i]) ||
		    (i % 2 && ids[i] != 5000 + i))
			same = false;
	CU_ASSERT_TRUE(same);
	CU_ASSERT_EQUAL(ids[3], 5003);
	CU_ASSERT_EQUAL(ids[4], 77); /* v4, not inserted: the /16 */
	CU_ASSERT_EQUAL(ids[0], 2);  /* v6, not inserted: world */
	mg_ipcache_lookup_bulk(mg_ipcache_reader(ipc), fams, ptrs, ids, 0);
	mg_ipcache_free(ipc);
}

static void
host_addr(uint32_t i, uint8_t *a)
{
	/* Spread over 10.0.0.0/8 with a stride so that keys are not consecutive. */
	uint32_t x = 0x0a000000u | ((i * 2654435761u) & 0x00ffffffu);

	x = htonl(x);
	memcpy(a, &x, 4);
}

/* Mean ns per lookup over bursts of 32 random host routes among the first @n. */
static double
time_lookups(const struct mg_ipcache *ipc, uint32_t n, uint32_t *sum)
{
	enum {
		BURST = 32,
		ADDRS = 1 << 16,
		ROUNDS = 8
	};
	const struct mg_ipcache_view *v = mg_ipcache_reader(ipc);
	static uint8_t addr[ADDRS][4];
	static const uint8_t *ptrs[ADDRS];
	static uint8_t fams[ADDRS];
	uint32_t ids[BURST];
	uint32_t total = 0;
	uint64_t t0;

	for (unsigned i = 0; i < ADDRS; i++) {
		host_addr((uint32_t)(rnd() % n), addr[i]);
		ptrs[i] = addr[i];
		fams[i] = AF_INET;
	}
	t0 = mg_time_ns();
	for (unsigned r = 0; r < ROUNDS; r++)
		for (unsigned i = 0; i < ADDRS; i += BURST) {
			mg_ipcache_lookup_bulk(v, fams + i, ptrs + i, ids, BURST);
			for (unsigned j = 0; j < BURST; j++)
				total += ids[j];
		}
	*sum = total;
	return (double)(mg_time_ns() - t0) / ((double)ROUNDS * ADDRS);
}

static void
test_million_hosts(void)
{
	const uint32_t n = 1000000;
	struct mg_ipcache *ipc = make(true, n);
	const struct mg_ipcache_view *v;
	uint64_t t0, t_put, t_commit;
	uint8_t a[4];
	size_t bad = 0;
	uint32_t sum;
	double ns1k, ns1m;

	CU_ASSERT_PTR_NOT_NULL_FATAL(ipc);

	/* 1k entries first, for the flat-cost comparison. */
	for (uint32_t i = 0; i < 1000; i++) {
		struct mg_ipcache_entry e;

		memset(&e, 0, sizeof(e));
		e.family = AF_INET;
		e.plen = 32;
		host_addr(i, e.addr);
		e.identity = 256 + i;
		CU_ASSERT_EQUAL_FATAL(mg_ipcache_put(ipc, &e), 0);
	}
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 1000);
	ns1k = time_lookups(ipc, 1000, &sum);

	t0 = mg_time_ns();
	for (uint32_t i = 1000; i < n; i++) {
		struct mg_ipcache_entry e;

		memset(&e, 0, sizeof(e));
		e.family = AF_INET;
		e.plen = 32;
		host_addr(i, e.addr);
		e.identity = 256 + i;
		if (mg_ipcache_put(ipc, &e) != 0)
			bad++;
	}
	t_put = mg_time_ns() - t0;
	CU_ASSERT_EQUAL(bad, 0);
	t0 = mg_time_ns();
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), (int)(n - 1000));
	t_commit = mg_time_ns() - t0;
	CU_ASSERT_EQUAL(mg_ipcache_count(ipc, AF_INET), n);

	v = mg_ipcache_reader(ipc);
	for (uint32_t i = 0; i < n; i++) {
		host_addr(i, a);
		if (mg_ipcache_lookup(v, AF_INET, a) != 256 + i)
			bad++;
	}
	CU_ASSERT_EQUAL(bad, 0);
	/* 11.0.0.0/8 holds nothing. */
	a[0] = 11;
	CU_ASSERT_EQUAL(mg_ipcache_lookup(v, AF_INET, a), 9);
	ns1m = time_lookups(ipc, n, &sum);
	CU_ASSERT(mg_ipcache_memory(ipc) > n * 8);

	/* Batches of 1000 changes into the full table: the steady-state update cost. */
	t0 = mg_time_ns();
	for (uint32_t b = 0; b < 20; b++) {
		for (uint32_t i = 0; i < 1000; i++) {
			struct mg_ipcache_entry e;

			memset(&e, 0, sizeof(e));
			e.family = AF_INET;
			e.plen = 32;
			host_addr(b * 1000 + i, e.addr);
			e.identity = 900000 + b;
			mg_ipcache_put(ipc, &e);
		}
		CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 1000);
	}
	printf("# perf: lookup %.1f ns at 1k host routes, %.1f ns at 1M (bursts of 32); "
	       "1M puts %.0f ns each, one 999k commit %.0f ns/entry; "
	       "batches of 1000: %.0f ns per update (put+commit); memory %.1f MB (%.1f B/entry)\n",
	       ns1k, ns1m, (double)t_put / (n - 1000), (double)t_commit / (n - 1000),
	       (double)(mg_time_ns() - t0) / 20000.0, mg_ipcache_memory(ipc) / 1e6,
	       (double)mg_ipcache_memory(ipc) / n);
	host_addr(19999, a);
	CU_ASSERT_EQUAL(mg_ipcache_lookup(mg_ipcache_reader(ipc), AF_INET, a), 900019);
	(void)sum;
	mg_ipcache_free(ipc);
}

/*
 * The split commit: prepare returns the updated copy without publishing
 * it (mg_ipcache_reader and the records still give the old state), the
 * staging calls are refused until finish, and finish publishes exactly
 * what a plain commit would have.
 */
static void
test_split_commit(void)
{
	struct mg_ipcache *ipc = make(true, 0);
	const struct mg_ipcache_view *before, *prep, *again;
	struct mg_ipcache_entry e;
	uint8_t a[4] = {10, 1, 2, 3};

	CU_ASSERT_PTR_NOT_NULL_FATAL(ipc);
	CU_ASSERT_EQUAL(put(ipc, "10.0.0.0/8", 100), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 1);
	before = mg_ipcache_reader(ipc);

	/* Nothing staged: the active copy, and finish has nothing to do. */
	CU_ASSERT_PTR_EQUAL(mg_ipcache_commit_prepare(ipc), before);
	CU_ASSERT_EQUAL(mg_ipcache_commit_finish(ipc), 0);
	CU_ASSERT_PTR_EQUAL(mg_ipcache_reader(ipc), before);

	CU_ASSERT_EQUAL(put(ipc, "10.1.2.3", 300), 0);
	CU_ASSERT_EQUAL(del(ipc, "10.0.0.0/8"), 0);
	CU_ASSERT_EQUAL(put(ipc, "fd00::/64", 600), 0);
	prep = mg_ipcache_commit_prepare(ipc);
	CU_ASSERT_PTR_NOT_NULL_FATAL(prep);
	CU_ASSERT_PTR_NOT_EQUAL(prep, before);
	/* The prepared copy has the batch; the published one does not. */
	CU_ASSERT_EQUAL(mg_ipcache_lookup(prep, AF_INET, a), 300);
	CU_ASSERT_EQUAL(look(ipc, "10.9.9.9"), 100);
	CU_ASSERT_EQUAL(mg_ipcache_lookup(prep, AF_INET, (const uint8_t[4]){10, 9, 9, 9}), 9);
	CU_ASSERT_EQUAL(look(ipc, "10.1.2.3"), 100);
	CU_ASSERT_PTR_EQUAL(mg_ipcache_reader(ipc), before);
	CU_ASSERT_EQUAL(mg_ipcache_get(ipc, AF_INET, a, 32, &e), -ENOENT);
	CU_ASSERT_EQUAL(mg_ipcache_count(ipc, 0), 1);
	CU_ASSERT_EQUAL(mg_ipcache_pending(ipc), 3);
	/* Until finish the batch is frozen. */
	CU_ASSERT_EQUAL(put(ipc, "10.2.0.0/16", 7), -EBUSY);
	CU_ASSERT_EQUAL(del(ipc, "10.1.2.3"), -EBUSY);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), -EBUSY);
	errno = 0;
	CU_ASSERT_PTR_NULL(mg_ipcache_commit_prepare(ipc));
	CU_ASSERT_EQUAL(errno, EBUSY);
	mg_ipcache_discard(ipc);
	CU_ASSERT_EQUAL(mg_ipcache_pending(ipc), 3);

	CU_ASSERT_EQUAL(mg_ipcache_commit_finish(ipc), 3);
	CU_ASSERT_PTR_EQUAL(mg_ipcache_reader(ipc), prep);
	CU_ASSERT_EQUAL(look(ipc, "10.1.2.3"), 300);
	CU_ASSERT_EQUAL(look(ipc, "10.9.9.9"), 9);
	CU_ASSERT_EQUAL(look(ipc, "fd00::1"), 600);
	CU_ASSERT_EQUAL(mg_ipcache_get(ipc, AF_INET, a, 32, &e), 0);
	CU_ASSERT_EQUAL(e.identity, 300);
	CU_ASSERT_EQUAL(mg_ipcache_count(ipc, 0), 2);
	CU_ASSERT_EQUAL(mg_ipcache_pending(ipc), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit_finish(ipc), 0);

	/* The other copy caught up: the next batch, prepared on it, has both. */
	CU_ASSERT_EQUAL(put(ipc, "10.1.2.4", 400), 0);
	again = mg_ipcache_commit_prepare(ipc);
	CU_ASSERT_PTR_EQUAL(again, before);
	CU_ASSERT_EQUAL(mg_ipcache_lookup(again, AF_INET, a), 300);
	CU_ASSERT_EQUAL(mg_ipcache_lookup(again, AF_INET, (const uint8_t[4]){10, 1, 2, 4}), 400);
	CU_ASSERT_EQUAL(mg_ipcache_lookup(again, AF_INET, (const uint8_t[4]){10, 9, 9, 9}), 9);
	CU_ASSERT_EQUAL(mg_ipcache_commit_finish(ipc), 1);
	CU_ASSERT_EQUAL(look(ipc, "10.1.2.4"), 400);
	/* And the staging works again after finish. */
	CU_ASSERT_EQUAL(put(ipc, "10.1.2.5", 500), 0);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 1);
	CU_ASSERT_EQUAL(look(ipc, "10.1.2.5"), 500);
	CU_ASSERT_EQUAL(look(ipc, "10.1.2.3"), 300);
	mg_ipcache_free(ipc);
}

#ifndef __SANITIZE_ADDRESS__
/* The address space the process uses now, in bytes (/proc/self/statm). */
static size_t
vm_size(void)
{
	unsigned long pages = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f != NULL) {
		if (fscanf(f, "%lu", &pages) != 1)
			pages = 0;
		fclose(f);
	}
	return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* The child of test_out_of_memory(): 0 when every check holds, else the failed check's number. */
static int
oom_child(void)
{
	struct rlimit rl = {.rlim_max = RLIM_INFINITY};
	struct mg_ipcache *ipc = make(false, 64);
	size_t staged = 0;
	char a[32];
	int rc;

	if (ipc == NULL)
		return 10;
	for (unsigned i = 0; i < 1000; i++) {
		snprintf(a, sizeof(a), "10.0.%u.%u/32", i / 250, i % 250 + 1);
		if (put(ipc, a, 100 + i) != 0)
			return 11;
	}
	if (mg_ipcache_commit(ipc) != 1000)
		return 12;
	/* 48 MiB more address space than now: the million puts below cannot all fit */
	rl.rlim_cur = vm_size() + (48u << 20);
	if (setrlimit(RLIMIT_AS, &rl) != 0)
		return 13;
	for (uint32_t i = 0; i < 2000000; i++) {
		struct mg_ipcache_entry e;

		memset(&e, 0, sizeof(e));
		e.family = AF_INET;
		e.plen = 32;
		e.addr[0] = 11;
		e.addr[1] = (uint8_t)(i >> 16);
		e.addr[2] = (uint8_t)(i >> 8);
		e.addr[3] = (uint8_t)i;
		e.identity = 5000;
		rc = mg_ipcache_put(ipc, &e);
		if (rc == -ENOMEM)
			break;
		if (rc != 0)
			return 14;
		staged++;
	}
	rc = mg_ipcache_commit(ipc);
	fprintf(stderr, "  (out_of_memory: %zu puts staged under the limit, commit %d)\n", staged,
	        rc);
	if (staged < 100000)
		return 15; /* the limit hit too early to reach the commit's own allocation */
	if (rc != -ENOMEM)
		return 16;
	/* nothing of the failed commit is visible; the published state is whole */
	if (look(ipc, "11.0.0.1") != 2) /* world */
		return 17;
	if (look(ipc, "10.0.0.1") != 100 || look(ipc, "10.0.3.250") != 1099)
		return 18;
	/* room again: the staged changes were kept and now publish */
	rl.rlim_cur = RLIM_INFINITY;
	if (setrlimit(RLIMIT_AS, &rl) != 0)
		return 19;
	rc = mg_ipcache_commit(ipc);
	if (rc < 0 || (size_t)rc != staged)
		return 20;
	if (look(ipc, "11.0.0.1") != 5000 || look(ipc, "10.0.0.1") != 100)
		return 21;
	mg_ipcache_free(ipc);
	return 0;
}

/*
 * docs/reliability.md, "Limits": the ipcache has no fixed cap, memory is
 * its limit. Past it (an address-space limit, in a child process) a
 * commit fails with -ENOMEM and publishes nothing: readers keep the
 * last state whole, the staged changes stay and publish once memory is
 * back. Not under ASan, whose shadow memory an address-space limit breaks.
 */
static void
test_out_of_memory(void)
{
	int st = 0;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0)
		_exit(oom_child());
	CU_ASSERT_EQUAL_FATAL(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fprintf(stderr, "out_of_memory: child status %#x (check %d)\n", st,
		        WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}
#endif

static CU_TestInfo tests[] = {
        {"lpm_v4", test_lpm_v4},
        {"world_default", test_world_default},
        {"lpm_mixed", test_lpm_mixed},
        {"staging", test_staging},
        {"get_walk_count", test_get_walk_count},
        {"parse_format", test_parse_format},
        {"random_vs_naive", test_random_vs_naive},
        {"small_batches_vs_model", test_small_batches_vs_model},
        {"bulk", test_bulk},
        {"million_hosts", test_million_hosts},
        {"split_commit", test_split_commit},
        {"filter_v4", test_filter_v4},
        {"filter_v6", test_filter_v6},
        {"filter_random", test_filter_random},
#ifndef __SANITIZE_ADDRESS__
        {"out_of_memory", test_out_of_memory},
#endif
        CU_TEST_INFO_NULL,
};

MG_TEST_MAIN("ipcache", tests)
