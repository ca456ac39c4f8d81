/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The Watch stream: one bidirectional gRPC call with its own completion
 * queue, driven only from the caller's thread. Three kinds of operation
 * are outstanding on it, each with its own tag: at most one send (the
 * initial metadata, then one request at a time), always one receive (a
 * response, re-armed after each), and the final status, asked for at the
 * start and delivered when the stream ends. pump() takes one event off the
 * queue and records it; the public functions pump until what they wait
 * for has happened or their deadline passed. Once the stream has ended,
 * its error sticks: the caller closes it and opens another.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_priv.h"

#define WATCH_PATH "/etcdserverpb.Watch/Watch"

struct mg_etcd_watch {
	struct mg_etcd *e;
	grpc_completion_queue *cq;
	grpc_call *call;
	grpc_metadata md_send[1];
	grpc_metadata_array md_recv, md_trail;
	grpc_byte_buffer *sending, *received;
	grpc_status_code status;
	grpc_slice details;
	bool send_busy, recv_busy, recv_ready, status_done;
	unsigned ch_gen;     /* the channel it runs on */
	int end_rc;          /* <0 once the stream has ended */
	int end_status;      /* gRPC status then (-1: local) */
	struct mg_error end; /* and why */
	unsigned long seq0;  /* gRPC's error log count at open */
	char tag_send, tag_recv, tag_status;
};

/* Takes one event (or none until @p deadline: -ETIMEDOUT). */
static int
pump(struct mg_etcd_watch *w, gpr_timespec deadline)
{
	grpc_event ev = grpc_completion_queue_next(w->cq, deadline, NULL);

	if (ev.type != GRPC_OP_COMPLETE)
		return -ETIMEDOUT;
	if (ev.tag == &w->tag_send) {
		w->send_busy = false;
		if (w->sending) {
			grpc_byte_buffer_destroy(w->sending);
			w->sending = NULL;
		}
	} else if (ev.tag == &w->tag_recv) {
		w->recv_busy = false;
		w->recv_ready = true;
	} else if (ev.tag == &w->tag_status) {
		w->status_done = true;
	}
	return 0;
}

static int
arm_recv(struct mg_etcd_watch *w, bool with_md)
{
	grpc_op ops[2];
	size_t n = 0;

	memset(ops, 0, sizeof(ops));
	if (with_md) {
		ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
		ops[n++].data.recv_initial_metadata.recv_initial_metadata = &w->md_recv;
	}
	ops[n].op = GRPC_OP_RECV_MESSAGE;
	ops[n++].data.recv_message.recv_message = &w->received;
	if (grpc_call_start_batch(w->call, ops, n, &w->tag_recv, NULL) != GRPC_CALL_OK)
		return -EIO;
	w->recv_busy = true;
	return 0;
}

/* The stream has ended (a receive without message, or a failed send):
 * wait briefly for its status and make it the sticky error. */
static int
ended(struct mg_etcd_watch *w, struct mg_error *err)
{
	gpr_timespec deadline = etcd_deadline(w->e->timeout_ms);
	char text[400];

	if (w->end_rc < 0)
		goto out;
	while (!w->status_done && pump(w, deadline) == 0)
		;
	if (!w->status_done) {
		/* No status: end it ourselves. */
		grpc_call_cancel(w->call, NULL);
		w->status = GRPC_STATUS_CANCELLED;
	}
	size_t n = GRPC_SLICE_LENGTH(w->details);
	if (n >= sizeof(text))
		n = sizeof(text) - 1;
	memcpy(text, GRPC_SLICE_START_PTR(w->details), n);
	text[n] = '\0';
	if (w->status == GRPC_STATUS_OK)
		snprintf(text, sizeof(text), "the server ended the stream");
	if (w->status == GRPC_STATUS_UNAVAILABLE && etcd_log_seq() != w->seq0) {
		char last[256];
		mg_etcd_grpc_last_log(last, sizeof(last));
		size_t used = strlen(text);
		snprintf(text + used, sizeof(text) - used, "; gRPC log: %s", last);
	}
	/* A stream etcd ends with OK is as unexpected as a lost one. */
	grpc_status_code code = w->status == GRPC_STATUS_OK ? GRPC_STATUS_UNAVAILABLE : w->status;
	w->end_rc = etcd_status_fail(w->e, w->ch_gen, "Watch", code, text, &w->end);
	w->end_status = (int)code;
	/* Whatever the status, the connection is suspect. */
	etcd_channel_drop(w->e, w->ch_gen);
out:
	w->e->last_status = w->end_status;
	if (err)
		*err = w->end;
	return w->end_rc;
}

int
mg_etcd_watch_open(struct mg_etcd *e, struct mg_etcd_watch **wp, struct mg_error *err)
{
	struct mg_etcd_watch *w;
	grpc_op op;
	int rc;

	*wp = NULL;
	unsigned long seq0 = etcd_log_seq();
	rc = etcd_channel_ready(e, "Watch", true, seq0, err);
	if (rc < 0)
		return rc;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return etcd_local_fail(e, "Watch", -ENOMEM, err, "out of memory");
	w->e = e;
	w->seq0 = seq0;
	w->ch_gen = e->ch_gen;
	w->status_done = true; /* until its batch is started */
	w->details = grpc_empty_slice();
	grpc_metadata_array_init(&w->md_recv);
	grpc_metadata_array_init(&w->md_trail);
	w->cq = grpc_completion_queue_create_for_next(NULL);
	if (w->cq)
		w->call = grpc_channel_create_call(e->ch, NULL, GRPC_PROPAGATE_DEFAULTS, w->cq,
		                                   grpc_slice_from_static_string(WATCH_PATH), NULL,
		                                   gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	if (w->call == NULL) {
		rc = etcd_local_fail(e, "Watch", -ENOMEM, err, "cannot make a gRPC call");
		goto fail;
	}
	e->n_watches++;
	/* As etcd's own client: watchers end when the member loses its leader. */
	w->md_send[0].key = grpc_slice_from_static_string("hasleader");
	w->md_send[0].value = grpc_slice_from_static_string("true");
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	op.data.recv_status_on_client.trailing_metadata = &w->md_trail;
	op.data.recv_status_on_client.status = &w->status;
	op.data.recv_status_on_client.status_details = &w->details;
	w->status_done = false;
	if (grpc_call_start_batch(w->call, &op, 1, &w->tag_status, NULL) != GRPC_CALL_OK) {
		w->status_done = true;
		goto batch;
	}
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_INITIAL_METADATA;
	op.data.send_initial_metadata.count = 1;
	op.data.send_initial_metadata.metadata = w->md_send;
	if (grpc_call_start_batch(w->call, &op, 1, &w->tag_send, NULL) != GRPC_CALL_OK)
		goto batch;
	w->send_busy = true;
	if (arm_recv(w, true) < 0)
		goto batch;
	*wp = w;
	return 0;
batch:
	rc = etcd_local_fail(e, "Watch", -EIO, err, "grpc_call_start_batch failed");
fail:
	mg_etcd_watch_close(w);
	return rc;
}

/* Sends one request: waits for the previous send, then for this one. */
static int
send_req(struct mg_etcd_watch *w, const Mgetcd__WatchRequest *req, struct mg_error *err)
{
	gpr_timespec deadline = etcd_deadline(w->e->timeout_ms);
	grpc_op op;

	if (w->end_rc < 0)
		return ended(w, err);
	while (w->send_busy && !w->status_done)
		if (pump(w, deadline) < 0)
			goto late;
	if (w->status_done)
		return ended(w, err);
	w->sending = etcd_pack(&req->base);
	if (w->sending == NULL)
		return etcd_local_fail(w->e, "Watch", -ENOMEM, err, "cannot encode the request");
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_MESSAGE;
	op.data.send_message.send_message = w->sending;
	if (grpc_call_start_batch(w->call, &op, 1, &w->tag_send, NULL) != GRPC_CALL_OK) {
		grpc_byte_buffer_destroy(w->sending);
		w->sending = NULL;
		return etcd_local_fail(w->e, "Watch", -EIO, err, "grpc_call_start_batch failed");
	}
	w->send_busy = true;
	while (w->send_busy && !w->status_done)
		if (pump(w, deadline) < 0)
			goto late;
	if (w->status_done)
		return ended(w, err);
	return 0;
late:
	w->e->last_status = GRPC_STATUS_DEADLINE_EXCEEDED;
	mg_error_set(err, NULL, 0, 0,
	             "etcd Watch: DEADLINE_EXCEEDED: request not sent within %u ms",
	             w->e->timeout_ms);
	return -ETIMEDOUT;
}

int
mg_etcd_watch_create(struct mg_etcd_watch *w, const char *key, size_t klen, const char *end,
                     size_t elen, int64_t start_revision, bool progress_notify, bool prev_kv,
                     struct mg_error *err)
{
	Mgetcd__WatchRequest req = MGETCD__WATCH_REQUEST__INIT;
	Mgetcd__WatchCreateRequest c = MGETCD__WATCH_CREATE_REQUEST__INIT;

	if (key == NULL || klen == 0 || (end == NULL && elen) || start_revision < 0)
		return etcd_local_fail(w->e, "Watch", -EINVAL, err, "bad arguments");
	c.key.data = (uint8_t *)(uintptr_t)key;
	c.key.len = klen;
	c.range_end.data = (uint8_t *)(uintptr_t)end;
	c.range_end.len = elen;
	c.start_revision = start_revision;
	c.progress_notify = progress_notify;
	c.prev_kv = prev_kv;
	req.request_union_case = MGETCD__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
	req.create_request = &c;
	return send_req(w, &req, err);
}

int
mg_etcd_watch_cancel(struct mg_etcd_watch *w, int64_t watch_id, struct mg_error *err)
{
	Mgetcd__WatchRequest req = MGETCD__WATCH_REQUEST__INIT;
	Mgetcd__WatchCancelRequest c = MGETCD__WATCH_CANCEL_REQUEST__INIT;

	c.watch_id = watch_id;
	req.request_union_case = MGETCD__WATCH_REQUEST__REQUEST_UNION_CANCEL_REQUEST;
	req.cancel_request = &c;
	return send_req(w, &req, err);
}

int
mg_etcd_watch_progress(struct mg_etcd_watch *w, struct mg_error *err)
{
	Mgetcd__WatchRequest req = MGETCD__WATCH_REQUEST__INIT;
	Mgetcd__WatchProgressRequest p = MGETCD__WATCH_PROGRESS_REQUEST__INIT;

	req.request_union_case = MGETCD__WATCH_REQUEST__REQUEST_UNION_PROGRESS_REQUEST;
	req.progress_request = &p;
	return send_req(w, &req, err);
}

/* The received message into @p out; the next receive armed. */
static int
take(struct mg_etcd_watch *w, struct mg_etcd_watch_resp *out, struct mg_error *err)
{
	Mgetcd__WatchResponse *r = (Mgetcd__WatchResponse *)etcd_unpack(
	        w->received, &mgetcd__watch_response__descriptor);

	grpc_byte_buffer_destroy(w->received);
	w->received = NULL;
	w->recv_ready = false;
	if (r == NULL || etcd_watch_resp_take(r, out) < 0) {
		int rc = r ? -ENOMEM : -EBADMSG;
		if (r)
			protobuf_c_message_free_unpacked(&r->base, NULL);
		grpc_call_cancel(w->call, NULL);
		w->end_rc = etcd_local_fail(w->e, "Watch", rc, &w->end,
		                            r ? "out of memory" : "a response does not decode");
		w->end_status = -1;
		if (err)
			*err = w->end;
		return w->end_rc;
	}
	w->e->last_status = GRPC_STATUS_OK;
	if (arm_recv(w, false) < 0)
		w->recv_busy = false; /* the stream is over: the status will say why */
	return 0;
}

int
mg_etcd_watch_next(struct mg_etcd_watch *w, unsigned timeout_ms, struct mg_etcd_watch_resp *out,
                   struct mg_error *err)
{
	gpr_timespec deadline = etcd_deadline(timeout_ms);

	memset(out, 0, sizeof(*out));
	if (w->end_rc < 0)
		return ended(w, err);
	for (;;) {
		if (w->recv_ready) {
			if (w->received)
				return take(w, out, err);
			return ended(w, err);
		}
		if (!w->recv_busy && w->status_done)
			return ended(w, err);
		if (pump(w, deadline) < 0) {
			mg_error_set(err, NULL, 0, 0, "etcd Watch: no response within %u ms",
			             timeout_ms);
			return -ETIMEDOUT;
		}
	}
}

void
mg_etcd_watch_resp_free(struct mg_etcd_watch_resp *r)
{
	if (r == NULL)
		return;
	free(r->events);
	if (r->priv)
		protobuf_c_message_free_unpacked(r->priv, NULL);
	memset(r, 0, sizeof(*r));
}

void
mg_etcd_watch_close(struct mg_etcd_watch *w)
{
	if (w == NULL)
		return;
	if (w->call) {
		grpc_call_cancel(w->call, NULL);
		/* Cancelling completes every outstanding operation. */
		while (w->send_busy || w->recv_busy || !w->status_done)
			pump(w, gpr_inf_future(GPR_CLOCK_REALTIME));
		grpc_call_unref(w->call);
		w->e->n_watches--;
	}
	if (w->cq) {
		grpc_completion_queue_shutdown(w->cq);
		while (grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
		               .type != GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(w->cq);
	}
	if (w->sending)
		grpc_byte_buffer_destroy(w->sending);
	if (w->received)
		grpc_byte_buffer_destroy(w->received);
	grpc_slice_unref(w->details);
	grpc_metadata_array_destroy(&w->md_recv);
	grpc_metadata_array_destroy(&w->md_trail);
	free(w);
}
