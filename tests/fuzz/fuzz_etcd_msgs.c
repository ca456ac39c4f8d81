/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target of lib/etcd's decoding of what an etcd server (a
 * remote cluster's clustermesh-apiserver) sends the replicator: the first
 * input byte picks the message, even a RangeResponse (a page of a Range),
 * odd a WatchResponse; the rest is its protobuf encoding, unpacked by
 * protobuf-c as etcd_unpack() does and turned into the public struct by
 * etcd_range_take() / etcd_watch_resp_take(). Besides surviving any input
 * under ASan/UBSan without a leak: the struct holds exactly the message's
 * entries, every key and value a readable (pointer, length) with empty
 * ones pointing at an empty string, the cancel reason a string, and a
 * decoded message packs again into bytes that decode to the same packing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                          \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
			        #cond);                                                      \
			abort();                                                             \
		}                                                                            \
	} while (0)

static volatile uint8_t sink;

static void
check_kv(const struct mg_etcd_kv *kv, const Mgetcd__KeyValue *m)
{
	CHECK(kv->key != NULL && kv->value != NULL);
	CHECK(kv->key_len == (m ? m->key.len : 0) && kv->value_len == (m ? m->value.len : 0));
	/* every byte readable (ASan watches) */
	for (size_t i = 0; i < kv->key_len; i++)
		sink ^= (uint8_t)kv->key[i];
	for (size_t i = 0; i < kv->value_len; i++)
		sink ^= (uint8_t)kv->value[i];
	if (kv->key_len == 0)
		CHECK(kv->key[0] == '\0');
	if (kv->value_len == 0)
		CHECK(kv->value[0] == '\0');
}

/*
 * pack(m) unpacks again to a message that packs to the same bytes. Not
 * for a message with unknown fields (in it or in a message it holds): protobuf-c keeps them as they came,
 * field number 0 included, which it then packs but refuses to unpack
 * (lib/etcd never packs a received message, so that is no bug of ours).
 */
static bool
has_unknown(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	if (m->n_unknown_fields > 0)
		return true;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)m;
		ProtobufCMessage *const *v;
		size_t n = 1;

		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			memcpy(&n, base + f->quantifier_offset, sizeof(n));
			memcpy(&v, base + f->offset, sizeof(v));
		} else {
			v = (ProtobufCMessage *const *)(const void *)(base + f->offset);
		}
		for (size_t j = 0; j < n; j++)
			if (v[j] != NULL && has_unknown(v[j]))
				return true;
	}
	return false;
}

static void
check_repack(const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m), n2;
	uint8_t *a, *b;
	ProtobufCMessage *again;

	if (has_unknown(m))
		return;
	a = malloc(n ? n : 1);

	CHECK(a != NULL);
	CHECK(protobuf_c_message_pack(m, a) == n);
	again = protobuf_c_message_unpack(m->descriptor, NULL, n, a);
	CHECK(again != NULL);
	n2 = protobuf_c_message_get_packed_size(again);
	CHECK(n2 == n);
	b = malloc(n ? n : 1);
	CHECK(b != NULL);
	CHECK(protobuf_c_message_pack(again, b) == n && memcmp(a, b, n) == 0);
	protobuf_c_message_free_unpacked(again, NULL);
	free(a);
	free(b);
}

static void
range(const uint8_t *p, size_t n)
{
	Mgetcd__RangeResponse *r = (Mgetcd__RangeResponse *)protobuf_c_message_unpack(
	        &mgetcd__range_response__descriptor, NULL, n, p);
	struct mg_etcd_range out;

	if (r == NULL)
		return;
	check_repack(&r->base);
	CHECK(etcd_range_take(r, &out) == 0);
	CHECK(out.priv == r && out.n == r->n_kvs && out.more == r->more && out.count == r->count);
	CHECK(out.hdr.revision == (r->header ? r->header->revision : 0));
	for (size_t i = 0; i < out.n; i++)
		check_kv(&out.kvs[i], r->kvs[i]);
	mg_etcd_range_free(&out);
	CHECK(out.priv == NULL && out.kvs == NULL);
}

static void
watch(const uint8_t *p, size_t n)
{
	Mgetcd__WatchResponse *r = (Mgetcd__WatchResponse *)protobuf_c_message_unpack(
	        &mgetcd__watch_response__descriptor, NULL, n, p);
	struct mg_etcd_watch_resp out;

	if (r == NULL)
		return;
	check_repack(&r->base);
	CHECK(etcd_watch_resp_take(r, &out) == 0);
	CHECK(out.priv == r && out.n == r->n_events && out.watch_id == r->watch_id);
	CHECK(out.created == r->created && out.canceled == r->canceled);
	CHECK(out.compact_revision == r->compact_revision);
	CHECK(memchr(out.cancel_reason, '\0', sizeof(out.cancel_reason)) != NULL);
	for (size_t i = 0; i < out.n; i++) {
		CHECK(out.events[i].type == MG_ETCD_PUT || out.events[i].type == MG_ETCD_DELETE);
		check_kv(&out.events[i].kv, r->events[i]->kv);
	}
	mg_etcd_watch_resp_free(&out);
	CHECK(out.priv == NULL && out.events == NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1)
		watch(data + 1, size - 1);
	else
		range(data + 1, size - 1);
	return 0;
}
