/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The writer's lease and fence (mg_kvstore.h, "lease and fencing"), and
 * its plain (unlogged) keys. Replicas of a writer share one Redis lease:
 * a key holding the writing replica's random token, with a TTL its holder
 * renews. Holding it is not what keeps a paused replica from writing after
 * it lost it; the fence is: with a fence set, every write goes through a
 * Function library call that Redis runs only when the lease still holds
 * the writer's token, checked in the same atomic step as the write. So
 * the lease needs no clock agreement between replicas: Redis' own expiry
 * decides when it lapsed, and a refused write is -ESTALE with nothing
 * written. The plain writes (canaries, heartbeats, the removal marker,
 * deleting a drained cluster's log and epoch) are fenced the same way.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "kv_writer_priv.h"

int
mg_kv_token_new(char *buf, size_t size)
{
	uint8_t rnd[MG_KV_TOKEN_LEN / 2];

	if (size < MG_KV_TOKEN_LEN + 1)
		return -EINVAL;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		if (errno == 0)
			errno = EIO;
		return -EIO;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(buf + 2 * i, 3, "%02x", rnd[i]);
	return 0;
}

/* A lease key and token the calls accept. */
static int
kv_lease_args(const char *lease_key, const char *token, struct mg_error *err)
{
	if (lease_key == NULL || lease_key[0] == '\0' || strlen(lease_key) >= MG_KV_KEY_MAX) {
		mg_error_set(err, NULL, 0, 0, "lease key: must be 1-%d characters",
		             MG_KV_KEY_MAX - 1);
		return -EINVAL;
	}
	if (token == NULL || token[0] == '\0' || strlen(token) > MG_KV_TOKEN_MAX) {
		mg_error_set(err, NULL, 0, 0, "lease token: must be 1-%d characters",
		             MG_KV_TOKEN_MAX);
		return -EINVAL;
	}
	return 0;
}

int
mg_kv_writer_set_fence(struct mg_kv_writer *w, const char *lease_key, const char *token,
                       struct mg_error *err)
{
	int rc;

	if (token != NULL) {
		rc = kv_lease_args(lease_key, token, err);
		if (rc < 0)
			return rc;
	}
	/* What was queued goes out under the fence it was queued under. */
	rc = mg_kv_writer_flush(w, err);
	if (rc < 0)
		return rc;
	if (token == NULL) {
		w->fenced = false;
		w->lease[0] = w->lease_token[0] = '\0';
		return 0;
	}
	snprintf(w->lease, sizeof(w->lease), "%s", lease_key);
	snprintf(w->lease_token, sizeof(w->lease_token), "%s", token);
	w->fenced = true;
	return 0;
}

/* An integer reply @p r of @p what in [lo, hi]: its value, or -EPROTO. Frees @p r. */
static int
kv_int_reply(redisReply *r, const char *what, long long lo, long long hi, struct mg_error *err)
{
	int rc = -EPROTO;

	if (r->type == REDIS_REPLY_INTEGER && r->integer >= lo && r->integer <= hi)
		rc = (int)r->integer;
	else
		mg_error_set(err, NULL, 0, 0, "redis %s: unexpected reply", what);
	freeReplyObject(r);
	return rc;
}

int
mg_kv_lease_acquire(struct mg_kv_writer *w, const char *lease_key, const char *token,
                    unsigned ttl_ms, char *holder, size_t holder_size, int64_t *pttl_ms,
                    struct mg_error *err)
{
	const char *what = "FCALL mg_lease_acquire";
	char ttl[16];
	const char *argv[6] = {"FCALL", "mg_lease_acquire", "1", lease_key, token, ttl};
	const redisReply *e;
	redisReply *r;
	int rc = kv_lease_args(lease_key, token, err);

	if (rc < 0)
		return rc;
	if (ttl_ms == 0) {
		mg_error_set(err, NULL, 0, 0, "lease TTL: must be at least 1 ms");
		return -EINVAL;
	}
	snprintf(ttl, sizeof(ttl), "%u", ttl_ms);
	r = kvw_cmd(w, what, &rc, err, 6, argv);
	if (r == NULL)
		return rc;
	/* {1 or 0, holder, pttl} */
	e = r->type == REDIS_REPLY_ARRAY && r->elements == 3 ? r->element[0] : NULL;
	if (e == NULL || e->type != REDIS_REPLY_INTEGER || (e->integer != 0 && e->integer != 1) ||
	    r->element[1]->type != REDIS_REPLY_STRING ||
	    r->element[2]->type != REDIS_REPLY_INTEGER) {
		mg_error_set(err, NULL, 0, 0, "redis %s: unexpected reply", what);
		freeReplyObject(r);
		return -EPROTO;
	}
	rc = (int)e->integer;
	if (holder != NULL && holder_size != 0)
		snprintf(holder, holder_size, "%s", r->element[1]->str);
	if (pttl_ms != NULL)
		*pttl_ms = r->element[2]->integer;
	freeReplyObject(r);
	return rc;
}

int
mg_kv_lease_renew(struct mg_kv_writer *w, const char *lease_key, const char *token, unsigned ttl_ms,
                  struct mg_error *err)
{
	char ttl[16];
	const char *argv[6] = {"FCALL", "mg_lease_renew", "1", lease_key, token, ttl};
	redisReply *r;
	int rc = kv_lease_args(lease_key, token, err);

	if (rc < 0)
		return rc;
	if (ttl_ms == 0) {
		mg_error_set(err, NULL, 0, 0, "lease TTL: must be at least 1 ms");
		return -EINVAL;
	}
	snprintf(ttl, sizeof(ttl), "%u", ttl_ms);
	r = kvw_cmd(w, "FCALL mg_lease_renew", &rc, err, 6, argv);
	return r == NULL ? rc : kv_int_reply(r, "FCALL mg_lease_renew", 0, 1, err);
}

int
mg_kv_lease_release(struct mg_kv_writer *w, const char *lease_key, const char *token,
                    struct mg_error *err)
{
	const char *argv[5] = {"FCALL", "mg_lease_release", "1", lease_key, token};
	redisReply *r;
	int rc = kv_lease_args(lease_key, token, err);

	if (rc < 0)
		return rc;
	r = kvw_cmd(w, "FCALL mg_lease_release", &rc, err, 5, argv);
	return r == NULL ? rc : kv_int_reply(r, "FCALL mg_lease_release", 0, 1, err);
}

int
mg_kv_writer_set_plain(struct mg_kv_writer *w, const char *key, const char *value, unsigned px_ms,
                       struct mg_error *err)
{
	const char *argv[8] = {"SET", key, value, "PX", NULL};
	char px[16];
	redisReply *r;
	int rc = 0;

	snprintf(px, sizeof(px), "%u", px_ms);
	argv[4] = px;
	if (!w->fenced)
		return kvw_cmd_ok(w, "SET", err, px_ms != 0 ? 5 : 3, argv);
	/* FCALL mg_fset 2 lease key ltoken px value */
	argv[0] = "FCALL";
	argv[1] = "mg_fset";
	argv[2] = "2";
	argv[3] = w->lease;
	argv[4] = key;
	argv[5] = w->lease_token;
	argv[6] = px;
	argv[7] = value;
	r = kvw_cmd(w, "FCALL mg_fset", &rc, err, 8, argv);
	if (r == NULL)
		return rc;
	rc = kv_int_reply(r, "FCALL mg_fset", 1, 1, err);
	return rc < 0 ? rc : 0;
}

/* One DEL / mg_fdel call of @p n <= MG_KV_BATCH_MAX keys in @p argv (room for n + 5). */
static int
kv_del_call(struct mg_kv_writer *w, const char *const *keys, size_t n, const char **argv,
            struct mg_error *err)
{
	const char *what = w->fenced ? "FCALL mg_fdel" : "DEL";
	char nkeys[16];
	redisReply *r;
	size_t a = 0;
	int rc = 0;

	if (w->fenced) {
		/* FCALL mg_fdel <1+N> lease key1..keyN ltoken */
		snprintf(nkeys, sizeof(nkeys), "%zu", 1 + n);
		argv[a++] = "FCALL";
		argv[a++] = "mg_fdel";
		argv[a++] = nkeys;
		argv[a++] = w->lease;
	} else {
		argv[a++] = "DEL";
	}
	for (size_t i = 0; i < n; i++)
		argv[a++] = keys[i];
	if (w->fenced)
		argv[a++] = w->lease_token;
	r = kvw_cmd(w, what, &rc, err, (int)a, argv);
	return r == NULL ? rc : kv_int_reply(r, what, 0, (long long)n, err);
}

int
mg_kv_writer_del_plain(struct mg_kv_writer *w, const char *const *keys, size_t n,
                       struct mg_error *err)
{
	size_t chunk = n < MG_KV_BATCH_MAX ? n : MG_KV_BATCH_MAX;
	const char **argv;
	int rc = 0, total = 0;

	if (n == 0)
		return mg_kv_writer_flush(w, err);
	for (size_t i = 0; i < n; i++) {
		if (keys[i] == NULL) {
			mg_error_set(err, NULL, 0, 0, "del_plain: key %zu is NULL", i);
			return -EINVAL;
		}
	}
	argv = calloc(chunk + 5, sizeof(*argv));
	if (argv == NULL) {
		mg_error_set(err, NULL, 0, 0, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i += chunk) {
		rc = kv_del_call(w, keys + i, n - i < chunk ? n - i : chunk, argv, err);
		if (rc < 0)
			break;
		total += rc;
	}
	free(argv);
	return rc < 0 ? rc : total;
}

int
mg_kv_writer_epoch_create(struct mg_kv_writer *w, struct mg_error *err)
{
	const char *argv[7];
	int rc = 0;
	if (w->fenced) {
		/* FCALL mg_fepoch 2 lease epoch ltoken token */
		const char *a[] = {"FCALL",  "mg_fepoch",    "2",     w->lease,
		                   w->epoch, w->lease_token, w->token};
		memcpy(argv, a, sizeof(a));
	} else {
		const char *a[] = {"FCALL", "mg_epoch", "1", w->epoch, w->token};
		memcpy(argv, a, sizeof(a));
	}
	redisReply *r = kvw_cmd(w, w->fenced ? "FCALL mg_fepoch" : "FCALL mg_epoch", &rc, err,
	                        w->fenced ? 7 : 5, argv);
	if (r == NULL)
		return rc;
	rc = r->type == REDIS_REPLY_STRING ? 0 : -EPROTO;
	if (rc < 0)
		mg_error_set(err, NULL, 0, 0, "FCALL mg_epoch: unexpected reply");
	freeReplyObject(r);
	return rc;
}
