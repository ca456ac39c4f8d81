/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The unary methods: KV's Range, Put, DeleteRange, Txn (puts only) and
 * Compact, and Maintenance's Status. Each builds its request on the stack
 * (protobuf-c messages point at the caller's bytes, nothing is copied),
 * makes one call and turns the decoded response into the public structs;
 * a Range response is kept alive in `priv` so that its keys and values
 * are not copied either.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_priv.h"

#define KV_PATH(m) "/etcdserverpb.KV/" m

static ProtobufCBinaryData
bytes(const char *p, size_t n)
{
	ProtobufCBinaryData b = {n, (uint8_t *)(uintptr_t)p};
	return b;
}

int
mg_etcd_range(struct mg_etcd *e, const char *key, size_t key_len, const char *end, size_t end_len,
              int64_t revision, int64_t limit, unsigned flags, struct mg_etcd_range *out,
              struct mg_error *err)
{
	Mgetcd__RangeRequest req = MGETCD__RANGE_REQUEST__INIT;
	ProtobufCMessage *m;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((key == NULL && key_len) || (end == NULL && end_len) || revision < 0 || limit < 0)
		return etcd_local_fail(e, "Range", -EINVAL, err, "bad arguments");
	req.key = bytes(key, key_len);
	req.range_end = bytes(end, end_len);
	req.revision = revision;
	req.limit = limit;
	req.keys_only = (flags & MG_ETCD_RANGE_KEYS_ONLY) != 0;
	req.count_only = (flags & MG_ETCD_RANGE_COUNT_ONLY) != 0;
	req.serializable = (flags & MG_ETCD_RANGE_SERIALIZABLE) != 0;
	rc = etcd_unary(e, KV_PATH("Range"), "Range", &req.base,
	                &mgetcd__range_response__descriptor, &m, err);
	if (rc < 0)
		return rc;
	if (etcd_range_take((Mgetcd__RangeResponse *)m, out) < 0) {
		protobuf_c_message_free_unpacked(m, NULL);
		return etcd_local_fail(e, "Range", -ENOMEM, err, "out of memory");
	}
	return 0;
}

void
mg_etcd_range_free(struct mg_etcd_range *r)
{
	if (r == NULL)
		return;
	free(r->kvs);
	if (r->priv)
		protobuf_c_message_free_unpacked(r->priv, NULL);
	memset(r, 0, sizeof(*r));
}

int
mg_etcd_put(struct mg_etcd *e, const char *key, size_t key_len, const char *val, size_t val_len,
            struct mg_etcd_header *hdr, struct mg_error *err)
{
	Mgetcd__PutRequest req = MGETCD__PUT_REQUEST__INIT;
	ProtobufCMessage *m;
	int rc;

	if (key == NULL || key_len == 0 || (val == NULL && val_len))
		return etcd_local_fail(e, "Put", -EINVAL, err, "bad arguments");
	req.key = bytes(key, key_len);
	req.value = bytes(val, val_len);
	rc = etcd_unary(e, KV_PATH("Put"), "Put", &req.base, &mgetcd__put_response__descriptor, &m,
	                err);
	if (rc < 0)
		return rc;
	etcd_header_get(((Mgetcd__PutResponse *)m)->header, hdr);
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}

int
mg_etcd_delete(struct mg_etcd *e, const char *key, size_t key_len, const char *end, size_t end_len,
               int64_t *deleted, struct mg_etcd_header *hdr, struct mg_error *err)
{
	Mgetcd__DeleteRangeRequest req = MGETCD__DELETE_RANGE_REQUEST__INIT;
	ProtobufCMessage *m;
	int rc;

	if (key == NULL || key_len == 0 || (end == NULL && end_len))
		return etcd_local_fail(e, "DeleteRange", -EINVAL, err, "bad arguments");
	req.key = bytes(key, key_len);
	req.range_end = bytes(end, end_len);
	rc = etcd_unary(e, KV_PATH("DeleteRange"), "DeleteRange", &req.base,
	                &mgetcd__delete_range_response__descriptor, &m, err);
	if (rc < 0)
		return rc;
	Mgetcd__DeleteRangeResponse *r = (Mgetcd__DeleteRangeResponse *)m;
	etcd_header_get(r->header, hdr);
	if (deleted)
		*deleted = r->deleted;
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}

int
mg_etcd_txn_put(struct mg_etcd *e, size_t n, const char *const *keys, const char *const *vals,
                const size_t *vlens, struct mg_etcd_header *hdr, struct mg_error *err)
{
	Mgetcd__TxnRequest req = MGETCD__TXN_REQUEST__INIT;
	Mgetcd__RequestOp *ops = NULL, **opp = NULL;
	Mgetcd__PutRequest *puts = NULL;
	ProtobufCMessage *m = NULL;
	int rc;

	if (n == 0 || keys == NULL || vals == NULL || vlens == NULL)
		return etcd_local_fail(e, "Txn", -EINVAL, err, "bad arguments");
	ops = calloc(n, sizeof(*ops));
	opp = calloc(n, sizeof(*opp));
	puts = calloc(n, sizeof(*puts));
	if (ops == NULL || opp == NULL || puts == NULL) {
		rc = etcd_local_fail(e, "Txn", -ENOMEM, err, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (keys[i] == NULL || keys[i][0] == '\0' || (vals[i] == NULL && vlens[i])) {
			rc = etcd_local_fail(e, "Txn", -EINVAL, err, "bad arguments");
			goto out;
		}
		mgetcd__put_request__init(&puts[i]);
		puts[i].key = bytes(keys[i], strlen(keys[i]));
		puts[i].value = bytes(vals[i], vlens[i]);
		mgetcd__request_op__init(&ops[i]);
		ops[i].request_case = MGETCD__REQUEST_OP__REQUEST_REQUEST_PUT;
		ops[i].request_put = &puts[i];
		opp[i] = &ops[i];
	}
	req.n_success = n;
	req.success = opp;
	rc = etcd_unary(e, KV_PATH("Txn"), "Txn", &req.base, &mgetcd__txn_response__descriptor, &m,
	                err);
	if (rc == 0) {
		etcd_header_get(((Mgetcd__TxnResponse *)m)->header, hdr);
		protobuf_c_message_free_unpacked(m, NULL);
	}
out:
	free(ops);
	free(opp);
	free(puts);
	return rc;
}

int
mg_etcd_compact(struct mg_etcd *e, int64_t rev, bool physical, struct mg_error *err)
{
	Mgetcd__CompactionRequest req = MGETCD__COMPACTION_REQUEST__INIT;
	ProtobufCMessage *m;
	int rc;

	if (rev <= 0)
		return etcd_local_fail(e, "Compact", -EINVAL, err, "bad revision");
	req.revision = rev;
	req.physical = physical;
	rc = etcd_unary(e, KV_PATH("Compact"), "Compact", &req.base,
	                &mgetcd__compaction_response__descriptor, &m, err);
	if (rc == 0)
		protobuf_c_message_free_unpacked(m, NULL);
	return rc;
}

int
mg_etcd_status(struct mg_etcd *e, struct mg_etcd_status *st, struct mg_error *err)
{
	Mgetcd__StatusRequest req = MGETCD__STATUS_REQUEST__INIT;
	ProtobufCMessage *m;
	int rc;

	memset(st, 0, sizeof(*st));
	rc = etcd_unary(e, "/etcdserverpb.Maintenance/Status", "Status", &req.base,
	                &mgetcd__status_response__descriptor, &m, err);
	if (rc < 0)
		return rc;
	Mgetcd__StatusResponse *r = (Mgetcd__StatusResponse *)m;
	etcd_header_get(r->header, &st->hdr);
	snprintf(st->version, sizeof(st->version), "%s", r->version ? r->version : "");
	st->db_size = r->db_size;
	st->leader = r->leader;
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}
