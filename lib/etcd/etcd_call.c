/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One blocking unary gRPC call, and the protobuf-c codec both kinds of
 * call use. A unary call is one batch of all six operations on the
 * client's pluck queue with the call's deadline, so it always ends, with
 * the server's answer or a status; the connection is made (or found
 * broken) first, within the connect timeout, so that a dead endpoint costs
 * the connect timeout rather than the call timeout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>

#include "etcd_priv.h"

grpc_byte_buffer *
etcd_pack(const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	grpc_slice s = grpc_slice_malloc(n);
	size_t w = protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(s));
	grpc_byte_buffer *bb = NULL;

	if (w == n)
		bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return bb;
}

ProtobufCMessage *
etcd_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *desc)
{
	grpc_byte_buffer_reader r;
	ProtobufCMessage *m;

	if (!grpc_byte_buffer_reader_init(&r, bb))
		return NULL;
	grpc_slice s = grpc_byte_buffer_reader_readall(&r);
	grpc_byte_buffer_reader_destroy(&r);
	m = protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
	grpc_slice_unref(s);
	return m;
}

void
etcd_header_get(const Mgetcd__ResponseHeader *h, struct mg_etcd_header *out)
{
	if (out == NULL)
		return;
	memset(out, 0, sizeof(*out));
	if (h == NULL)
		return;
	out->cluster_id = h->cluster_id;
	out->member_id = h->member_id;
	out->revision = h->revision;
}

void
etcd_kv_get(const Mgetcd__KeyValue *kv, struct mg_etcd_kv *out)
{
	static const char empty[1];

	memset(out, 0, sizeof(*out));
	out->key = out->value = empty;
	if (kv == NULL)
		return;
	if (kv->key.len) {
		out->key = (const char *)kv->key.data;
		out->key_len = kv->key.len;
	}
	if (kv->value.len) {
		out->value = (const char *)kv->value.data;
		out->value_len = kv->value.len;
	}
	out->create_revision = kv->create_revision;
	out->mod_revision = kv->mod_revision;
	out->version = kv->version;
	out->lease = kv->lease;
}

int
etcd_range_take(Mgetcd__RangeResponse *r, struct mg_etcd_range *out)
{
	memset(out, 0, sizeof(*out));
	if (r->n_kvs) {
		out->kvs = calloc(r->n_kvs, sizeof(*out->kvs));
		if (out->kvs == NULL)
			return -ENOMEM;
	}
	for (size_t i = 0; i < r->n_kvs; i++)
		etcd_kv_get(r->kvs[i], &out->kvs[i]);
	etcd_header_get(r->header, &out->hdr);
	out->n = r->n_kvs;
	out->more = r->more;
	out->count = r->count;
	out->priv = r;
	return 0;
}

int
etcd_watch_resp_take(Mgetcd__WatchResponse *r, struct mg_etcd_watch_resp *out)
{
	memset(out, 0, sizeof(*out));
	if (r->n_events && !(out->events = calloc(r->n_events, sizeof(*out->events))))
		return -ENOMEM;
	etcd_header_get(r->header, &out->hdr);
	out->watch_id = r->watch_id;
	out->created = r->created;
	out->canceled = r->canceled;
	out->compact_revision = r->compact_revision;
	snprintf(out->cancel_reason, sizeof(out->cancel_reason), "%s",
	         r->cancel_reason ? r->cancel_reason : "");
	for (size_t i = 0; i < r->n_events; i++) {
		const Mgetcd__Event *ev = r->events[i];
		out->events[i].type = ev->type == MGETCD__EVENT__EVENT_TYPE__DELETE ? MG_ETCD_DELETE
		                                                                    : MG_ETCD_PUT;
		etcd_kv_get(ev->kv, &out->events[i].kv);
	}
	out->n = r->n_events;
	out->priv = r;
	return 0;
}

/* The status details (and gRPC's last error line, when one came during
 * the call and the status does not say much) as one string. */
static void
details_text(grpc_slice d, unsigned long seq0, grpc_status_code code, char *buf, size_t size)
{
	size_t n = GRPC_SLICE_LENGTH(d);

	if (n >= size)
		n = size - 1;
	memcpy(buf, GRPC_SLICE_START_PTR(d), n);
	buf[n] = '\0';
	if ((code == GRPC_STATUS_UNAVAILABLE || code == GRPC_STATUS_DEADLINE_EXCEEDED) &&
	    etcd_log_seq() != seq0) {
		char last[256];
		mg_etcd_grpc_last_log(last, sizeof(last));
		size_t used = strlen(buf);
		snprintf(buf + used, size - used, "%sgRPC log: %s", used ? "; " : "", last);
	}
}

int
etcd_unary(struct mg_etcd *e, const char *path, const char *method, const ProtobufCMessage *req,
           const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **resp, struct mg_error *err)
{
	grpc_metadata_array md_init, md_trail;
	grpc_byte_buffer *out = NULL, *in = NULL;
	grpc_status_code status = GRPC_STATUS_UNKNOWN;
	grpc_slice details = grpc_empty_slice();
	grpc_op ops[6];
	char text[400];
	int rc;

	*resp = NULL;
	unsigned long seq0 = etcd_log_seq();
	rc = etcd_channel_ready(e, method, false, seq0, err);
	if (rc < 0)
		return rc;
	unsigned gen = e->ch_gen;
	out = etcd_pack(req);
	if (out == NULL)
		return etcd_local_fail(e, method, -ENOMEM, err, "cannot encode the request");
	grpc_call *call = grpc_channel_create_call(e->ch, NULL, GRPC_PROPAGATE_DEFAULTS, e->cq,
	                                           grpc_slice_from_static_string(path), NULL,
	                                           etcd_deadline(e->timeout_ms), NULL);
	if (call == NULL) {
		grpc_byte_buffer_destroy(out);
		return etcd_local_fail(e, method, -ENOMEM, err, "cannot make a gRPC call");
	}
	grpc_metadata_array_init(&md_init);
	grpc_metadata_array_init(&md_trail);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = out;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &md_init;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &in;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &md_trail;
	ops[5].data.recv_status_on_client.status = &status;
	ops[5].data.recv_status_on_client.status_details = &details;
	if (grpc_call_start_batch(call, ops, MG_ARRAY_SIZE(ops), &etcd_tag_call, NULL) !=
	    GRPC_CALL_OK) {
		rc = etcd_local_fail(e, method, -EIO, err, "grpc_call_start_batch failed");
		goto out;
	}
	/* The call's deadline bounds this wait. */
	grpc_completion_queue_pluck(e->cq, &etcd_tag_call, gpr_inf_future(GPR_CLOCK_REALTIME),
	                            NULL);
	if (status != GRPC_STATUS_OK) {
		details_text(details, seq0, status, text, sizeof(text));
		rc = etcd_status_fail(e, gen, method, status, text, err);
		goto out;
	}
	if (in == NULL) {
		rc = etcd_local_fail(e, method, -EBADMSG, err, "OK without a response message");
		goto out;
	}
	*resp = etcd_unpack(in, rdesc);
	if (*resp == NULL) {
		rc = etcd_local_fail(e, method, -EBADMSG, err, "the response does not decode");
		goto out;
	}
	e->last_status = GRPC_STATUS_OK;
	rc = 0;
out:
	if (in)
		grpc_byte_buffer_destroy(in);
	grpc_byte_buffer_destroy(out);
	grpc_slice_unref(details);
	grpc_metadata_array_destroy(&md_init);
	grpc_metadata_array_destroy(&md_trail);
	grpc_call_unref(call);
	return rc;
}
