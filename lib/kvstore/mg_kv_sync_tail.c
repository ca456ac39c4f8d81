/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The sync client's connection and its tail. One synchronous hiredis
 * connection (connect and command timeouts, TCP keepalive, AUTH) serves
 * every cluster. Losing it is never a reason to touch the tables: they stay
 * as they are (fail-static), every synced cluster is marked stale until a
 * verification after the reconnect finds nothing missed, and reconnects
 * back off exponentially with jitter so that many gateways do not hammer a
 * recovering Redis together. Once synced, clusters are followed with one
 * XREAD BLOCK over all their logs per poll, applied as one batch.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "kv_sync_priv.h"

void
kvs_disconnect(struct mg_kv_sync *s)
{
	if (s->ctx == NULL)
		return;
	MG_WARN("kv sync: connection to %s lost (%s): keeping the last state", s->url,
	        s->ctx->errstr[0] ? s->ctx->errstr : "closed");
	redisFree(s->ctx);
	s->ctx = NULL;
	for (size_t i = 0; i < s->n; i++) {
		struct cl *c = &s->c[i];
		c->st.disconnects++;
		if (c->stale == MG_KV_STALE_NONE || c->stale == MG_KV_STALE_HEARTBEAT)
			kvs_stale_set(c, MG_KV_STALE_DISCONNECTED);
		if (!c->synced && !c->removed && !c->need_resync) {
			c->need_resync = true;
			c->cause = MG_KV_RESYNC_RECONNECT;
		}
	}
	s->next_connect_ms = now_ms();
}

/* A reply, or NULL after a connection error (then disconnected). */
redisReply *
kvs_cmd(struct mg_kv_sync *s, int argc, const char **argv)
{
	if (s->ctx == NULL)
		return NULL;
	redisReply *r = redisCommandArgv(s->ctx, argc, argv, NULL);
	if (r == NULL)
		kvs_disconnect(s);
	return r;
}

static int
connect_now(struct mg_kv_sync *s)
{
	struct timeval ct = {(time_t)(s->p.connect_ms / 1000),
	                     (long)(s->p.connect_ms % 1000) * 1000};
	struct timeval tt = {(time_t)(s->p.command_ms / 1000),
	                     (long)(s->p.command_ms % 1000) * 1000};
	redisContext *ctx;

	if (s->u.path != NULL)
		ctx = redisConnectUnixWithTimeout(s->u.path, ct);
	else
		ctx = redisConnectWithTimeout(s->u.host, s->u.port, ct);
	if (ctx == NULL)
		return -ENOMEM;
	if (ctx->err) {
		MG_DEBUG("kv sync: connect %s: %s", s->url, ctx->errstr);
		redisFree(ctx);
		return -ECONNREFUSED;
	}
	redisSetTimeout(ctx, tt);
	if (s->u.path == NULL)
		redisEnableKeepAlive(ctx);
	s->ctx = ctx;
	if (s->password != NULL && s->password[0] != '\0') {
		const char *argv[3] = {"AUTH", s->user ? s->user : s->password, s->password};
		redisReply *r = kvs_cmd(s, s->user ? 3 : 2, argv);
		if (r == NULL || r->type == REDIS_REPLY_ERROR) {
			MG_WARN("kv sync: AUTH failed: %s", r ? r->str : "connection lost");
			if (r)
				freeReplyObject(r);
			redisFree(s->ctx);
			s->ctx = NULL;
			return -EACCES;
		}
		freeReplyObject(r);
	}
	return 0;
}

int
kvs_ensure_connected(struct mg_kv_sync *s)
{
	if (s->ctx != NULL)
		return 0;
	uint64_t t = now_ms();
	if (t < s->next_connect_ms)
		return -ENOTCONN;
	int rc = connect_now(s);
	if (rc < 0) {
		uint64_t b = s->backoff_ms;
		s->backoff_ms = b * 2 > s->p.backoff_max_ms ? s->p.backoff_max_ms : b * 2;
		s->next_connect_ms = t + b / 2 + (uint64_t)rand_r(&s->rnd) % (b / 2 + 1);
		return rc == -ENOMEM ? rc : -ENOTCONN;
	}
	s->backoff_ms = 100;
	s->next_verify_ms = 0; /* verify right after a (re)connect */
	return 0;
}

/* XREAD BLOCK over the synced clusters' logs and apply the batch. */
int
kvs_tail(struct mg_kv_sync *s)
{
	const char **argv = NULL;
	size_t *idx = NULL, m = 0;
	char count[16], block[16];
	int argc = 0, applied = 0;

	for (size_t i = 0; i < s->n; i++) {
		const struct cl *c = &s->c[i];
		if (kvs_tailed(c))
			m++;
	}
	if (m == 0) {
		sleep_ms(s->p.block_ms);
		return 0;
	}
	argv = malloc((6 + 2 * m) * sizeof(*argv));
	idx = malloc(m * sizeof(*idx));
	if (argv == NULL || idx == NULL) {
		free(argv);
		free(idx);
		return -ENOMEM;
	}
	m = 0;
	for (size_t i = 0; i < s->n; i++) {
		const struct cl *c = &s->c[i];
		if (kvs_tailed(c))
			idx[m++] = i;
	}
	snprintf(count, sizeof(count), "%u", s->p.read_count);
	snprintf(block, sizeof(block), "%u", s->p.block_ms);
	argv[argc++] = "XREAD";
	argv[argc++] = "COUNT";
	argv[argc++] = count;
	argv[argc++] = "BLOCK";
	argv[argc++] = block;
	argv[argc++] = "STREAMS";
	for (size_t i = 0; i < m; i++)
		argv[argc++] = s->c[idx[i]].log_key;
	for (size_t i = 0; i < m; i++)
		argv[argc++] = s->c[idx[i]].last_id;
	redisReply *r = kvs_cmd(s, argc, argv);
	free(argv);
	if (r == NULL) {
		free(idx);
		return -ENOTCONN;
	}
	int rc = 0;
	for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && rc >= 0; i++) {
		const redisReply *st = r->element[i];
		if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 ||
		    st->element[0]->type != REDIS_REPLY_STRING)
			continue;
		struct cl *c = NULL;
		for (size_t j = 0; j < m && c == NULL; j++)
			if (strcmp(s->c[idx[j]].log_key, st->element[0]->str) == 0)
				c = &s->c[idx[j]];
		if (c == NULL)
			continue;
		const redisReply *es = st->element[1];
		for (size_t k = 0; es->type == REDIS_REPLY_ARRAY && k < es->elements; k++) {
			const redisReply *e = es->element[k];
			if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
			    e->element[0]->type != REDIS_REPLY_STRING)
				continue;
			rc = kvs_log_entry_to_shadow(s, c, NULL, e->element[1]);
			if (rc < 0)
				break;
			snprintf(c->last_id, sizeof(c->last_id), "%s", e->element[0]->str);
			c->st.events++;
			c->consumed++;
			applied++;
		}
	}
	free(idx);
	freeReplyObject(r);
	return rc < 0 ? rc : applied;
}
