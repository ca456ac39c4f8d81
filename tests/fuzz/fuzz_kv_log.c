/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target of the gateway's sync client reading a cluster's change
 * log (an XREAD entry, fields op/key/value, written by the replicator or
 * by whoever can write the site Redis) into a resync's shadow map:
 * kvs_log_entry_to_shadow() of lib/kvstore/mg_kv_sync_decode.c, with the
 * key parsers, the value decoders and the cluster checks behind it.
 *
 * Input: byte 0 says the cluster (bit 0 local, bit 1 cache scope, bit 2
 * 511 clusters), byte 1 its id; the rest is a sequence of entries split at
 * 0x1e, each a field list split at 0x1f, as hiredis hands them over (a
 * NUL-terminated string each; a field of the single byte 0x1d is a nil
 * reply instead, and an entry starting with 0x1c a string reply instead
 * of an array). Besides surviving any input under ASan/UBSan without a
 * leak: each entry gives 0 (nothing else fails without ENOMEM); after a
 * del of a key of this cluster the map does not hold it; after a put it
 * with a value it holds the key exactly when no rejection was counted, with a valid
 * record (an identity record its id and its label string, an ipcache
 * record a non-zero identity and at most MG_KV_IP_MAX_NAMED_PORTS ports).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_sync_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                          \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
			        #cond);                                                      \
			abort();                                                             \
		}                                                                            \
	} while (0)

#define MAX_FIELDS 16

static uint64_t
rejections(const struct cl *c)
{
	return c->st.rejected_parse + c->st.rejected_range + c->st.rejected_cluster +
	       c->st.skipped_no_identity;
}

/* The reply hiredis would make of one entry [p, end); elements point into @p buf. */
static void
make_entry(const uint8_t *p, const uint8_t *end, redisReply *arr, redisReply *el, redisReply **els,
           char *buf)
{
	memset(arr, 0, sizeof(*arr));
	arr->type = REDIS_REPLY_ARRAY;
	arr->element = els;
	if (p < end && *p == 0x1c) {
		arr->type = REDIS_REPLY_STRING;
		arr->str = buf;
		buf[0] = '\0';
		p++;
	}
	while (p <= end && arr->elements < MAX_FIELDS) {
		const uint8_t *q = memchr(p, 0x1f, (size_t)(end - p));
		size_t n = (size_t)((q ? q : end) - p);
		redisReply *r = &el[arr->elements];

		memset(r, 0, sizeof(*r));
		if (n == 1 && *p == 0x1d) {
			r->type = REDIS_REPLY_NIL;
		} else {
			r->type = REDIS_REPLY_STRING;
			memcpy(buf, p, n);
			buf[n] = '\0';
			r->str = buf;
			r->len = n;
			buf += n + 1;
		}
		els[arr->elements++] = r;
		if (q == NULL)
			break;
		p = q + 1;
	}
}

/* What the entry asks: its op, key and whether it has a value (the last of each). */
static void
entry_op(const redisReply *arr, const char **op, const char **key, bool *val)
{
	*op = *key = NULL;
	*val = false;
	if (arr->type != REDIS_REPLY_ARRAY)
		return;
	for (size_t i = 0; i + 1 < arr->elements; i += 2) {
		const redisReply *f = arr->element[i], *v = arr->element[i + 1];

		if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
			continue;
		if (strcmp(f->str, "op") == 0)
			*op = v->str;
		else if (strcmp(f->str, "key") == 0)
			*key = v->str;
		else if (strcmp(f->str, "value") == 0)
			*val = true;
	}
}

static void
check_entry(struct mg_kv_sync *s, struct cl *c, struct rmap *m, const redisReply *arr)
{
	const char *op, *key;
	uint64_t before = rejections(c);
	struct decoded d;
	struct rec *r;
	bool val;

	CHECK(kvs_log_entry_to_shadow(s, c, m, arr) == 0);
	entry_op(arr, &op, &key, &val);
	if (op == NULL || key == NULL || kvs_key_decode(c, key, &d) != 0)
		return;
	r = rmap_find(m, &d.k);
	if (strcmp(op, "del") == 0) {
		CHECK(r == NULL);
		return;
	}
	/* a malformed entry (no value) is counted and changes nothing */
	if (strcmp(op, "put") != 0 || !val)
		return;
	CHECK((r != NULL) == (rejections(c) == before));
	if (r == NULL)
		return;
	CHECK(r->identity != 0);
	if (d.k.kind == REC_IDENTITY)
		CHECK(r->identity == d.k.id && r->value != NULL && r->n_np == 0);
	else
		CHECK(r->value == NULL && r->n_np <= MG_KV_IP_MAX_NAMED_PORTS &&
		      (r->n_np == 0) == (r->np == NULL));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mg_kv_sync s;
	static struct cl c;
	redisReply arr, el[MAX_FIELDS], *els[MAX_FIELDS];
	struct rmap m = {0};
	const uint8_t *p, *end = data + size;
	char *buf;

	if (size < 2)
		return 0;
	mg_log_set_level(MG_LOG_ERR);
	memset(&s, 0, sizeof(s));
	memset(&c, 0, sizeof(c));
	s.mode = (data[0] & 4) ? MG_CLUSTER_MODE_511 : MG_CLUSTER_MODE_255;
	c.local = (data[0] & 1) != 0;
	c.scope = (data[0] & 2) ? MG_KV_SCOPE_CACHE : MG_KV_SCOPE_STATE;
	c.cid = 1 + data[1] % (unsigned)s.mode;
	snprintf(c.name, sizeof(c.name), "%s", c.local ? "site" : "cluster-2");
	/* room for every field's bytes and NULs */
	buf = malloc(size + MAX_FIELDS + 1);
	CHECK(buf != NULL);
	for (p = data + 2; p <= end;) {
		const uint8_t *q = memchr(p, 0x1e, (size_t)(end - p));

		make_entry(p, q ? q : end, &arr, el, els, buf);
		check_entry(&s, &c, &m, &arr);
		if (q == NULL)
			break;
		p = q + 1;
	}
	rmap_clear(&m);
	free(buf);
	return 0;
}
