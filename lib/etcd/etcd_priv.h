/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the files of lib/etcd share: the client object, the channel's
 * life (mg_etcd.c), the unary call and the message codec (etcd_call.c),
 * used by the KV/Maintenance methods (mg_etcd_kv.c) and the watch stream
 * (mg_etcd_watch.c).
 */
#ifndef ETCD_PRIV_H
#define ETCD_PRIV_H

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#include "etcd.pb-c.h"
#include "mg_etcd.h"

struct mg_etcd {
	char *endpoints[MG_ETCD_MAX_ENDPOINTS]; /* as given */
	char *targets[MG_ETCD_MAX_ENDPOINTS];   /* gRPC target names */
	size_t n_endpoints;
	size_t cur; /* endpoint of the channel */
	bool tls;
	char *ca_pem, *cert_pem, *key_pem;
	unsigned timeout_ms, connect_timeout_ms, keepalive_ms, keepalive_timeout_ms;
	size_t max_recv;
	grpc_channel *ch;          /* NULL: made by the next call */
	unsigned ch_gen;           /* counts the channels made */
	grpc_completion_queue *cq; /* pluck queue of the unary calls */
	int last_status;
	unsigned n_watches;
};

/* Tags of the calls: any distinct addresses. */
extern char etcd_tag_call, etcd_tag_conn;

/** gRPC deadline @p ms from now. */
gpr_timespec etcd_deadline(unsigned ms);

/**
 * The channel of @p e, made if needed, and connected (or failed) within
 * the connect timeout. A failed connection is an error only when
 * @p need_ready (a stream); a unary call gets gRPC's reason itself.
 * @p seq0: etcd_log_seq() at the start of the operation. 0, or <0 with
 * @p err set ("etcd <method>: ...").
 */
int etcd_channel_ready(struct mg_etcd *e, const char *method, bool need_ready, unsigned long seq0,
                       struct mg_error *err);

/**
 * Forget channel number @p gen (if still current) after a failure that
 * looks like the endpoint's: the next call makes a new one, to the next
 * endpoint.
 */
void etcd_channel_drop(struct mg_etcd *e, unsigned gen);

/**
 * Record @p code (and @p details) as the result of @p method on channel
 * number @p gen: sets e->last_status, fills @p err, drops the channel on
 * connection-like statuses. Returns the errno (0 for OK).
 */
int etcd_status_fail(struct mg_etcd *e, unsigned gen, const char *method, grpc_status_code code,
                     const char *details, struct mg_error *err);

/** A local failure (-EINVAL, -ENOMEM, -EBADMSG): last_status -1, @p err filled. */
int etcd_local_fail(struct mg_etcd *e, const char *method, int rc, struct mg_error *err,
                    const char *what);

/** gRPC's process-wide count of error log lines, to tell whether one is new. */
unsigned long etcd_log_seq(void);

/** @p m packed into a new byte buffer, NULL when out of memory. */
grpc_byte_buffer *etcd_pack(const ProtobufCMessage *m);

/** @p bb unpacked as @p desc, NULL when it does not decode. */
ProtobufCMessage *etcd_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *desc);

/**
 * One unary call of @p path ("/etcdserverpb.KV/Range"), @p method its short
 * name for messages. *@p resp: the decoded response (free with
 * protobuf_c_message_free_unpacked). 0 or <0 as in mg_etcd.h.
 */
int etcd_unary(struct mg_etcd *e, const char *path, const char *method, const ProtobufCMessage *req,
               const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **resp,
               struct mg_error *err);

void etcd_header_get(const Mgetcd__ResponseHeader *h, struct mg_etcd_header *out);
void etcd_kv_get(const Mgetcd__KeyValue *kv, struct mg_etcd_kv *out);

/*
 * The decoded messages as the public structs (no I/O, so the fuzz target
 * tests/fuzz/fuzz_etcd_msgs.c drives them too). On success @p out points
 * into @p r and owns it (out->priv); on failure (-ENOMEM) @p out is empty
 * and @p r stays the caller's.
 */
int etcd_range_take(Mgetcd__RangeResponse *r, struct mg_etcd_range *out);
int etcd_watch_resp_take(Mgetcd__WatchResponse *r, struct mg_etcd_watch_resp *out);

#endif /* ETCD_PRIV_H */
