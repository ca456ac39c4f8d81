/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The writer's batches: changes are queued (keys and values copied into one
 * arena) and sent as FCALL mg_batch calls of up to opts.batch changes, with
 * up to MG_KV_WRITER_PIPELINE calls in flight on the connection, because
 * Redis spends most of a single change's time on the function call itself,
 * not on the SET and XADD. Each change is counted as written or unchanged
 * only when its call's whole reply is known good; after an error the queue
 * is dropped and the calls in flight are read, so the counts say exactly
 * what Redis applied. A fenced writer sends mg_fbatch instead: when its
 * lease is lost, every call Redis runs from then on is refused whole, so
 * a refusal in the middle of the calls in flight leaves the earlier ones
 * applied (and counted) and the later ones refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_writer_priv.h"

/* Read the oldest call's reply and count its changes. */
static int
kv_batch_reply(struct mg_kv_writer *w, struct mg_error *err)
{
	struct kv_inflight *f = &w->inflight[w->head];
	redisReply *r = NULL;
	int rc = 0;

	kvw_io_begin(w);
	if (redisGetReply(w->c, (void **)&r) != REDIS_OK)
		r = NULL;
	kvw_io_end(w);
	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		rc = kvw_reply_error(w, r,
		                     f->plain    ? "unlogged puts"
		                     : w->fenced ? "FCALL mg_fbatch"
		                                 : "FCALL mg_batch",
		                     err);
		goto out;
	}
	if (f->plain) {
		bool ok = r->type == REDIS_REPLY_STATUS ||
		          (r->type == REDIS_REPLY_INTEGER && r->integer == (long long)f->n);
		if (!ok) {
			rc = -EPROTO;
			goto bad;
		}
		for (unsigned i = 0; i < f->n; i++)
			if (f->counts[i] != NULL)
				f->counts[i]->written++;
		freeReplyObject(r);
		goto out;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != f->n) {
		rc = -EPROTO;
		goto bad;
	}
	for (unsigned i = 0; i < f->n; i++) {
		const redisReply *e = r->element[i];

		if (e->type != REDIS_REPLY_INTEGER || (e->integer != 0 && e->integer != 1)) {
			rc = -EPROTO;
			goto bad;
		}
	}
	/* Counted only once the whole reply is known good. */
	for (unsigned i = 0; i < f->n; i++) {
		if (f->counts[i] == NULL)
			continue;
		if (r->element[i]->integer)
			f->counts[i]->written++;
		else
			f->counts[i]->unchanged++;
	}
	freeReplyObject(r);
	goto out;
bad:
	mg_error_set(err, NULL, 0, 0, "redis FCALL mg_batch: unexpected reply");
	freeReplyObject(r);
out:
	w->head = (w->head + 1) % MG_KV_WRITER_PIPELINE;
	w->n_inflight--;
	return rc;
}

/*
 * After an error: drop the queue, and read the replies in flight while the
 * connection works (an error reply leaves it usable), so the counters say
 * what Redis applied and the next command gets its own reply.
 */
static void
kv_batch_abort(struct mg_kv_writer *w)
{
	struct mg_error scratch;

	w->n_queued = 0;
	w->arena_len = 0;
	while (w->n_inflight != 0) {
		if (w->c->err != 0) {
			w->n_inflight = 0;
			break;
		}
		kv_batch_reply(w, &scratch);
	}
}

/* The arguments of FCALL mg_batch / mg_fbatch for the @p n queued changes. */
static size_t
kv_args_batch(struct mg_kv_writer *w, unsigned n, char *nkeys)
{
	size_t a = 0;
	unsigned i;

	/* Fenced: mg_fbatch, with the lease key first among the keys and
	 * its token first among the arguments. */
	snprintf(nkeys, 16, "%u", (w->fenced ? 3 : 2) + n);
	w->argv[a] = "FCALL";
	w->argvlen[a++] = 5;
	w->argv[a] = w->fenced ? "mg_fbatch" : "mg_batch";
	w->argvlen[a] = strlen(w->argv[a]);
	a++;
	w->argv[a] = nkeys;
	w->argvlen[a++] = strlen(nkeys);
	if (w->fenced) {
		w->argv[a] = w->lease;
		w->argvlen[a++] = strlen(w->lease);
	}
	w->argv[a] = w->log;
	w->argvlen[a++] = strlen(w->log);
	w->argv[a] = w->epoch;
	w->argvlen[a++] = strlen(w->epoch);
	for (i = 0; i < n; i++) {
		w->argv[a] = w->arena + w->queued[i].key;
		w->argvlen[a++] = w->queued[i].key_len;
	}
	if (w->fenced) {
		w->argv[a] = w->lease_token;
		w->argvlen[a++] = strlen(w->lease_token);
	}
	w->argv[a] = w->maxlen;
	w->argvlen[a++] = strlen(w->maxlen);
	w->argv[a] = w->token;
	w->argvlen[a++] = strlen(w->token);
	for (i = 0; i < n; i++) {
		w->argv[a] = w->queued[i].del ? "del" : "put";
		w->argvlen[a++] = 3;
		w->argv[a] = w->arena + w->queued[i].val;
		w->argvlen[a++] = w->queued[i].val_len;
	}
	return a;
}

/*
 * The arguments of an unlogged call for the @p n queued puts: FCALL mg_fset
 * (fenced: the lease key, the keys, the token, px 0, the values) or MSET.
 */
static size_t
kv_args_plain(struct mg_kv_writer *w, unsigned n, char *nkeys)
{
	size_t a = 0;
	unsigned i;

	if (!w->fenced) {
		w->argv[a] = "MSET";
		w->argvlen[a++] = 4;
		for (i = 0; i < n; i++) {
			w->argv[a] = w->arena + w->queued[i].key;
			w->argvlen[a++] = w->queued[i].key_len;
			w->argv[a] = w->arena + w->queued[i].val;
			w->argvlen[a++] = w->queued[i].val_len;
		}
		return a;
	}
	snprintf(nkeys, 16, "%u", 1 + n);
	w->argv[a] = "FCALL";
	w->argvlen[a++] = 5;
	w->argv[a] = "mg_fset";
	w->argvlen[a++] = 7;
	w->argv[a] = nkeys;
	w->argvlen[a++] = strlen(nkeys);
	w->argv[a] = w->lease;
	w->argvlen[a++] = strlen(w->lease);
	for (i = 0; i < n; i++) {
		w->argv[a] = w->arena + w->queued[i].key;
		w->argvlen[a++] = w->queued[i].key_len;
	}
	w->argv[a] = w->lease_token;
	w->argvlen[a++] = strlen(w->lease_token);
	w->argv[a] = "0";
	w->argvlen[a++] = 1;
	for (i = 0; i < n; i++) {
		w->argv[a] = w->arena + w->queued[i].val;
		w->argvlen[a++] = w->queued[i].val_len;
	}
	return a;
}

/* Send the queued changes as one mg_batch call (room in the ring first). */
static int
kv_batch_send(struct mg_kv_writer *w, struct mg_error *err)
{
	struct kv_inflight *f;
	unsigned n = w->n_queued, i;
	size_t a = 0;
	int rc, wrc = REDIS_OK, done = 0;
	char nkeys[16];

	if (w->n_inflight == MG_KV_WRITER_PIPELINE) {
		rc = kv_batch_reply(w, err);
		if (rc < 0)
			return rc;
	}
	a = w->unlogged ? kv_args_plain(w, n, nkeys) : kv_args_batch(w, n, nkeys);
	if (redisAppendCommandArgv(w->c, (int)a, w->argv, w->argvlen) != REDIS_OK)
		return kvw_reply_error(w, NULL, "FCALL mg_batch", err);
	/* Send it now, not when a reply is next read: Redis works on this
	 * call while the caller queues the next one. */
	kvw_io_begin(w);
	while (!done && wrc == REDIS_OK)
		wrc = redisBufferWrite(w->c, &done);
	kvw_io_end(w);
	if (wrc != REDIS_OK)
		return kvw_reply_error(w, NULL, "FCALL mg_batch", err);
	f = &w->inflight[(w->head + w->n_inflight) % MG_KV_WRITER_PIPELINE];
	f->n = n;
	f->plain = w->unlogged;
	for (i = 0; i < n; i++)
		f->counts[i] = w->queued[i].counts;
	w->n_inflight++;
	w->n_queued = 0;
	w->arena_len = 0;
	return 0;
}

/* Copy @p s (with its NUL) into the arena; its offset in *@p off. */
static int
kv_arena_add(struct mg_kv_writer *w, const char *s, size_t len, size_t *off)
{
	if (w->arena_len + len + 1 > w->arena_cap) {
		size_t cap = w->arena_cap ? w->arena_cap : 65536;
		char *a;

		while (cap < w->arena_len + len + 1)
			cap *= 2;
		a = realloc(w->arena, cap);
		if (a == NULL)
			return -ENOMEM;
		w->arena = a;
		w->arena_cap = cap;
	}
	memcpy(w->arena + w->arena_len, s, len + 1);
	*off = w->arena_len;
	w->arena_len += len + 1;
	return 0;
}

static int
kv_queue(struct mg_kv_writer *w, const char *key, const char *value, bool del,
         struct mg_kv_batch_counts *c, struct mg_error *err)
{
	struct kv_change *q = &w->queued[w->n_queued];
	int rc;

	if (del && w->unlogged) {
		mg_error_set(err, NULL, 0, 0, "unlogged writes are puts only");
		return -EINVAL;
	}
	q->key_len = strlen(key);
	q->val_len = strlen(value);
	if (kv_arena_add(w, key, q->key_len, &q->key) < 0 ||
	    kv_arena_add(w, value, q->val_len, &q->val) < 0) {
		mg_error_set(err, NULL, 0, 0, "out of memory");
		rc = -ENOMEM;
		goto err;
	}
	q->del = del;
	q->counts = c;
	if (++w->n_queued < w->batch)
		return 0;
	rc = kv_batch_send(w, err);
	if (rc == 0)
		return 0;
err:
	kv_batch_abort(w);
	return rc;
}

int
mg_kv_writer_queue_put(struct mg_kv_writer *w, const char *key, const char *value,
                       struct mg_kv_batch_counts *c, struct mg_error *err)
{
	return kv_queue(w, key, value, false, c, err);
}

int
mg_kv_writer_queue_del(struct mg_kv_writer *w, const char *key, struct mg_kv_batch_counts *c,
                       struct mg_error *err)
{
	return kv_queue(w, key, "", true, c, err);
}

int
mg_kv_writer_flush(struct mg_kv_writer *w, struct mg_error *err)
{
	int rc = 0;

	if (w->n_queued != 0)
		rc = kv_batch_send(w, err);
	while (rc == 0 && w->n_inflight != 0)
		rc = kv_batch_reply(w, err);
	if (rc < 0)
		kv_batch_abort(w);
	return rc;
}

int
mg_kv_writer_set_unlogged(struct mg_kv_writer *w, bool on, struct mg_error *err)
{
	if (w->unlogged == on)
		return 0;
	int rc = mg_kv_writer_flush(w, err);
	if (rc == 0)
		w->unlogged = on;
	return rc;
}

int
mg_kv_writer_send(struct mg_kv_writer *w, struct mg_error *err)
{
	int rc = 0;

	if (w->n_queued != 0)
		rc = kv_batch_send(w, err);
	if (rc < 0)
		kv_batch_abort(w);
	return rc;
}
