/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Full sync of clusters: a pipelined probe (canaries, epoch, the log's
 * position), one walk of the keyspace per layout (SCAN with each reply's
 * keys MGET right away, pipelined behind the next SCAN; one walk shared by
 * many clusters of the per-cluster layout), the log replayed from the noted
 * position into a shadow copy, then the diff against the live copy applied
 * as one step unless it would delete too much of it. A scan is not a
 * snapshot, but every change after the noted position is in the log with
 * its full value, so scan plus replay converges.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "kv_strs.h"
#include "kv_sync_priv.h"

/* An XINFO STREAM reply into @si ("0-0" and zeros when there is no stream). */
void
kvs_stream_info_parse(const redisReply *r, struct sinfo *si)
{
	si->added = si->length = 0;
	snprintf(si->last, sizeof(si->last), "0-0");
	snprintf(si->maxdel, sizeof(si->maxdel), "0-0");
	if (r->type != REDIS_REPLY_ARRAY)
		return;
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		const redisReply *f = r->element[i], *v = r->element[i + 1];
		if (f->type != REDIS_REPLY_STRING)
			continue;
		if (v->type == REDIS_REPLY_INTEGER && strcmp(f->str, "entries-added") == 0)
			si->added = (uint64_t)v->integer;
		else if (v->type == REDIS_REPLY_INTEGER && strcmp(f->str, "length") == 0)
			si->length = (uint64_t)v->integer;
		if (v->type != REDIS_REPLY_STRING)
			continue;
		if (strcmp(f->str, "last-generated-id") == 0)
			snprintf(si->last, sizeof(si->last), "%s", v->str);
		else if (strcmp(f->str, "max-deleted-entry-id") == 0)
			snprintf(si->maxdel, sizeof(si->maxdel), "%s", v->str);
	}
}

/*
 * SCAN @pattern and MGET the values into @shadow, pipelined: the keys of
 * each SCAN reply that parse as ours are MGET right away (CHUNK keys per
 * MGET), after the next SCAN, so that Redis walks the next part of the
 * keyspace and reads values while this client decodes the last batch.
 * The keys are used where hiredis put them: a SCAN reply lives until its
 * last MGET reply has been decoded, no copy per key. After an error the
 * replies still due are read and dropped, so the connection stays usable.
 */
enum {
	SCAN_COUNT = 10000, /* keys Redis visits per SCAN */
	MGET_CHUNK = 512,   /* keys per MGET */
	PREFETCH_AHEAD = 8, /* records whose shadow slot is asked for ahead of their put */
};

struct sbatch {
	redisReply *r; /* the SCAN reply holding the keys */
	const char **keys;
	struct decoded *d; /* the keys, decoded */
	uint16_t *t;       /* the target each key belongs to */
	size_t n, left;    /* keys kept, MGETs not yet read */
};

/* Where a scanned key goes: its cluster and that cluster's shadow. */
struct scan_target {
	struct cl *c;
	struct rmap *shadow;
};

/*
 * The target of @key among @nt targets sorted by cluster name (@one: the
 * only one), or -1. With several targets the keys are the per-cluster
 * layout's, cilium/cache/<identities|ip>/v1/<cluster>/...: the name is
 * looked up, then the key decoded as that cluster's.
 */
static int
scan_route(const struct scan_target *t, size_t nt, const char *key, struct decoded *d)
{
	size_t lo = 0, hi = nt;
	const char *name, *end;

	if (nt == 1)
		return kvs_key_decode(t[0].c, key, d) == 0 ? 0 : -1;
	if (strncmp(key, MG_KV_CACHE_IDENTITIES "/", sizeof(MG_KV_CACHE_IDENTITIES)) == 0)
		name = key + sizeof(MG_KV_CACHE_IDENTITIES);
	else if (strncmp(key, MG_KV_CACHE_IP "/", sizeof(MG_KV_CACHE_IP)) == 0)
		name = key + sizeof(MG_KV_CACHE_IP);
	else
		return -1;
	end = strchr(name, '/');
	if (end == NULL || end - name > MG_KV_CLUSTER_NAME_MAX)
		return -1;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int cmp = strncmp(t[mid].c->name, name, (size_t)(end - name));
		if (cmp == 0 && t[mid].c->name[end - name] != '\0')
			cmp = 1;
		if (cmp < 0)
			lo = mid + 1;
		else if (cmp > 0)
			hi = mid;
		else
			return kvs_key_decode(t[mid].c, key, d) == 0 ? (int)mid : -1;
	}
	return -1;
}

struct sreq {
	struct sbatch *b; /* NULL: a SCAN */
	size_t off, n;
};

static void
sbatch_free(struct sbatch *b)
{
	if (b == NULL)
		return;
	freeReplyObject(b->r);
	free(b->keys);
	free(b->d);
	free(b->t);
	free(b);
}

static int
scan_prefix(struct mg_kv_sync *s, const struct scan_target *tg, size_t ntg, const char *pattern)
{
	char cursor[32] = "0", count[16];
	struct sreq *q = NULL;
	size_t head = 0, tail = 0, capq = 0;
	const char *argv[MGET_CHUNK + 1];
	struct kv_strs vals; /* the MGET replies' values */
	int rc = 0;

	snprintf(count, sizeof(count), "%d", SCAN_COUNT);
	const char *scan_argv[6] = {"SCAN", cursor, "MATCH", pattern, "COUNT", count};
	kv_strs_init(&vals);
	if (mg_grow(&q, &capq, tail, sizeof(*q), 64) < 0 || kv_strs_begin(&vals, MGET_CHUNK) < 0) {
		free(q);
		kv_strs_free(&vals);
		return -ENOMEM;
	}
	redisAppendCommandArgv(s->ctx, 6, scan_argv, NULL);
	q[tail++] = (struct sreq){NULL, 0, 0};
	while (head < tail) {
		struct sreq rq = q[head++];
		redisReply *r = NULL;
		int got;
		if (rq.b != NULL) {                 /* MGET: the values straight into the sink */
			kv_strs_begin(&vals, rq.n); /* sized for MGET_CHUNK: no allocation */
			got = kv_strs_read(s->ctx, &vals);
		} else {
			void *rv = NULL;
			got = redisGetReply(s->ctx, &rv) == REDIS_OK && rv != NULL ? REDIS_OK
			                                                           : REDIS_ERR;
			r = rv;
		}
		if (got != REDIS_OK) {
			/* Nothing more comes on this connection: free what waits. */
			for (size_t i = head - 1; i < tail; i++)
				if (q[i].b != NULL && --q[i].b->left == 0)
					sbatch_free(q[i].b);
			kvs_disconnect(s);
			rc = -ENOTCONN;
			break;
		}
		if (rq.b != NULL) { /* MGET */
			for (size_t i = 0; rc == 0 && i < rq.n; i++) {
				const char *val;
				size_t len;
				struct decoded d = rq.b->d[rq.off + i];
				const struct scan_target *t = &tg[rq.b->t[rq.off + i]];
				if (i + PREFETCH_AHEAD < rq.n)
					rmap_prefetch(
					        tg[rq.b->t[rq.off + i + PREFETCH_AHEAD]].shadow,
					        &rq.b->d[rq.off + i + PREFETCH_AHEAD].k);
				if (!kv_strs_get(&vals, i, &val, &len))
					continue; /* deleted since the SCAN: the log has it */
				int dr = kvs_decode_value(s, t->c, rq.b->keys[rq.off + i], val, len,
				                          &d);
				if (dr < 0) {
					rc = dr;
				} else if (dr > 0) {
					char *dup = NULL;
					if (d.k.kind == REC_IDENTITY &&
					    (dup = malloc(len + 1)) == NULL) {
						free(d.np);
						rc = -ENOMEM;
					} else {
						if (dup != NULL) {
							memcpy(dup, val, len);
							dup[len] = '\0';
						}
						rc = rmap_put(t->shadow, &d.k, d.identity, dup,
						              d.np, d.n_np);
					}
				}
			}
			if (--rq.b->left == 0)
				sbatch_free(rq.b);
			continue;
		}
		/* SCAN */
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			rc = rc < 0 ? rc : -EPROTO;
			continue;
		}
		if (rc < 0) {
			freeReplyObject(r);
			continue;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		const redisReply *ks = r->element[1];
		struct sbatch *b = calloc(1, sizeof(*b));
		if (b == NULL || (ks->elements > 0 &&
		                  ((b->keys = malloc(ks->elements * sizeof(*b->keys))) == NULL ||
		                   (b->d = malloc(ks->elements * sizeof(*b->d))) == NULL ||
		                   (b->t = malloc(ks->elements * sizeof(*b->t))) == NULL))) {
			if (b != NULL) {
				b->r = r;
				sbatch_free(b);
			} else {
				freeReplyObject(r);
			}
			rc = -ENOMEM;
			continue;
		}
		b->r = r;
		for (size_t i = 0; i < ks->elements; i++) {
			const redisReply *k = ks->element[i];
			int ti;
			if (k->type == REDIS_REPLY_STRING &&
			    (ti = scan_route(tg, ntg, k->str, &b->d[b->n])) >= 0) {
				b->t[b->n] = (uint16_t)ti;
				b->keys[b->n++] = k->str;
			}
		}
		size_t nmget = (b->n + MGET_CHUNK - 1) / MGET_CHUNK;
		/* SCAN's COUNT is a hint: a reply may hold many more keys. */
		while (capq < tail + nmget + 1 && mg_grow(&q, &capq, capq, sizeof(*q), 64) == 0)
			;
		if (capq < tail + nmget + 1) {
			sbatch_free(b);
			rc = -ENOMEM;
			continue;
		}
		if (strcmp(cursor, "0") != 0) {
			redisAppendCommandArgv(s->ctx, 6, scan_argv, NULL);
			q[tail++] = (struct sreq){NULL, 0, 0};
		}
		b->left = nmget;
		for (size_t off = 0; off < b->n; off += MGET_CHUNK) {
			size_t m = b->n - off < MGET_CHUNK ? b->n - off : MGET_CHUNK;
			argv[0] = "MGET";
			memcpy(&argv[1], &b->keys[off], m * sizeof(*argv));
			redisAppendCommandArgv(s->ctx, (int)m + 1, argv, NULL);
			q[tail++] = (struct sreq){b, off, m};
		}
		if (nmget == 0)
			sbatch_free(b);
	}
	free(q);
	kv_strs_free(&vals);
	return rc;
}

/* Replay the log after c->last_id into @shadow, advancing @last. */
static int
replay(struct mg_kv_sync *s, struct cl *c, struct rmap *shadow, char *last, size_t size,
       uint64_t *consumed)
{
	for (;;) {
		char start[64];
		snprintf(start, sizeof(start), "(%s", last);
		const char *argv[6] = {"XRANGE", c->log_key, start, "+", "COUNT", "1000"};
		redisReply *r = kvs_cmd(s, 6, argv);
		if (r == NULL)
			return -ENOTCONN;
		size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
		for (size_t i = 0; i < n; i++) {
			const redisReply *e = r->element[i];
			if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
				continue;
			int rc = kvs_log_entry_to_shadow(s, c, shadow, e->element[1]);
			if (rc < 0) {
				freeReplyObject(r);
				return rc;
			}
			snprintf(last, size, "%s", e->element[0]->str);
			(*consumed)++;
		}
		freeReplyObject(r);
		if (n < 1000)
			return 0;
	}
}

/* One cluster's part of a resync. */
struct rjob {
	struct cl *c;
	struct rmap shadow;
	char epoch[128];
	struct sinfo si;
	unsigned old_cid;
	enum mg_kv_scope old_scope;
	size_t hint; /* records the scan is expected to find (sizes the shadow) */
	int rc;      /* 0 while it goes on; -EAGAIN (c->why says why), -ENOTCONN, -ENOMEM */
};

/* The most records a shadow is sized for before its scan (more grow it as they come). */
#define SHADOW_HINT_MAX ((size_t)1 << 24)

/* Resyncs of at least this many clusters of the per-cluster layout share one SCAN. */
#define GROUP_SCAN_MIN 4

/*
 * The checks that need no Redis: the config the last verification read
 * (a verification always comes first) must be there and usable. Sets the
 * keys and ranges the config names; rjob_restore undoes that when the
 * live copy stays.
 */
static void
rjob_prepare(struct rjob *j)
{
	struct cl *c = j->c;

	j->old_cid = c->cid;
	j->old_scope = c->scope;
	if (!c->present) {
		snprintf(c->why, sizeof(c->why), "cluster config %.100s is missing", c->cfg_key);
		kvs_stale_set(c, MG_KV_STALE_NO_CONFIG);
		j->rc = -EAGAIN;
		return;
	}
	if (!c->cfg_ok) {
		snprintf(c->why, sizeof(c->why), "%s", c->cfg_why);
		kvs_stale_set(c, MG_KV_STALE_BAD_CONFIG);
		j->rc = -EAGAIN;
		return;
	}
	c->cid = c->vid;
	c->scope = c->vcached ? MG_KV_SCOPE_CACHE : MG_KV_SCOPE_STATE;
}

static void
rjob_restore(struct rjob *j)
{
	j->c->cid = j->old_cid;
	j->c->scope = j->old_scope;
}

/* The keys of database @db in an INFO keyspace reply ("db0:keys=N,..."), 0 when not known. */
static size_t
keyspace_keys(const redisReply *r, unsigned db)
{
	char want[32];
	const char *p;

	if (r->type != REDIS_REPLY_STRING)
		return 0;
	snprintf(want, sizeof(want), "db%u:keys=", db);
	for (p = r->str; (p = strstr(p, want)) != NULL; p += strlen(want))
		if (p == r->str || p[-1] == '\n')
			return (size_t)strtoull(p + strlen(want), NULL, 10);
	return 0;
}

/*
 * One pipelined round trip for every job still going: its canaries (when
 * its config has syncedCanaries), its epoch, its log (XINFO STREAM).
 * A job whose canary is missing stops (-EAGAIN). 0, -ENOTCONN, -ENOMEM.
 */
static int
rjob_probe(struct mg_kv_sync *s, struct rjob *jobs, size_t n)
{
	char(*ckeys)[2][MG_KV_KEY_MAX] = calloc(n ? n : 1, sizeof(*ckeys));
	size_t sent = 0;
	bool state = false;
	int rc = 0;

	if (ckeys == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct rjob *j = &jobs[i];
		struct cl *c = j->c;
		if (j->rc != 0)
			continue;
		if (c->vcanaries) {
			const char *pfx[2] = {c->vcached ? MG_KV_CACHE_IDENTITIES
			                                 : MG_KV_STATE_IDENTITIES,
			                      c->vcached ? MG_KV_CACHE_IP : MG_KV_STATE_IP};
			for (int k = 0; k < 2; k++) {
				const char *argv[2] = {"EXISTS", ckeys[i][k]};
				mg_kv_synced_key(ckeys[i][k], sizeof(ckeys[i][k]), c->name, pfx[k]);
				redisAppendCommandArgv(s->ctx, 2, argv, NULL);
				sent++;
			}
		}
		const char *a0[2] = {"GET", c->epoch_key}, *a1[3] = {"XINFO", "STREAM", c->log_key};
		redisAppendCommandArgv(s->ctx, 2, a0, NULL);
		redisAppendCommandArgv(s->ctx, 3, a1, NULL);
		sent += 2;
		state |= c->scope == MG_KV_SCOPE_STATE;
	}
	/* The single-cluster layout's keyspace is that cluster's: its size
	 * sizes the shadow of a first sync (a resync has its live copy's).
	 * INFO, which the reader's ACL allows, rather than DBSIZE. */
	if (state) {
		const char *a[2] = {"INFO", "keyspace"};
		redisAppendCommandArgv(s->ctx, 2, a, NULL);
	}
	for (size_t i = 0; i < n && sent > 0; i++) {
		struct rjob *j = &jobs[i];
		struct cl *c = j->c;
		redisReply *r[4] = {NULL, NULL, NULL, NULL};
		int m = 0;
		if (j->rc != 0)
			continue;
		int want = c->vcanaries ? 4 : 2;
		for (m = 0; m < want; m++, sent--)
			if (redisGetReply(s->ctx, (void **)&r[m]) != REDIS_OK || r[m] == NULL)
				break;
		if (m < want) {
			for (int k = 0; k < m; k++)
				freeReplyObject(r[k]);
			kvs_disconnect(s);
			rc = -ENOTCONN;
			break;
		}
		int at = 0;
		if (c->vcanaries) {
			for (int k = 0; k < 2 && j->rc == 0; k++)
				if (r[k]->type != REDIS_REPLY_INTEGER || r[k]->integer != 1) {
					snprintf(c->why, sizeof(c->why), "waiting for %.100s",
					         ckeys[i][k]);
					kvs_stale_set(c, MG_KV_STALE_CANARIES);
					j->rc = -EAGAIN;
				}
			at = 2;
		}
		if (r[at]->type == REDIS_REPLY_STRING)
			snprintf(j->epoch, sizeof(j->epoch), "%.*s", (int)r[at]->len, r[at]->str);
		kvs_stream_info_parse(r[at + 1], &j->si);
		for (int k = 0; k < want; k++)
			freeReplyObject(r[k]);
	}
	if (state && rc == 0) {
		redisReply *r = NULL;
		if (redisGetReply(s->ctx, (void **)&r) != REDIS_OK || r == NULL) {
			kvs_disconnect(s);
			rc = -ENOTCONN;
		} else {
			size_t keys = keyspace_keys(r, s->u.db);
			for (size_t i = 0; i < n; i++)
				if (jobs[i].rc == 0 && jobs[i].c->scope == MG_KV_SCOPE_STATE)
					jobs[i].hint =
					        keys < SHADOW_HINT_MAX ? keys : SHADOW_HINT_MAX;
			freeReplyObject(r);
		}
	}
	free(ckeys);
	return rc;
}

/* Compare jobs by cluster name (scan_route's binary search). */
static int
target_cmp(const void *a, const void *b)
{
	return strcmp(((const struct scan_target *)a)->c->name,
	              ((const struct scan_target *)b)->c->name);
}

/*
 * SCAN the keys of every job still going into its shadow: the
 * single-cluster layout (at most one such cluster) with its own walk;
 * the per-cluster layout with one walk per cluster, or, for
 * GROUP_SCAN_MIN clusters or more, one walk of the whole cilium/cache/
 * keyspace shared by them (SCAN visits every key whatever its pattern:
 * 255 walks of a 255-cluster Redis would visit each key 255 times).
 */
static int
rjob_scan(struct mg_kv_sync *s, struct rjob *jobs, size_t n)
{
	struct scan_target *tg = calloc(n ? n : 1, sizeof(*tg));
	char pat[MG_KV_KEY_MAX + 32];
	size_t nt = 0;
	int rc = 0;

	if (tg == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct rjob *j = &jobs[i];
		if (j->rc != 0)
			continue;
		/*
		 * Sized once, not doubled all the way up while the records come:
		 * for about as many records as the live copy holds, or as the
		 * keyspace of the single-cluster layout when it holds none. Only
		 * a hint: a failure leaves the shadow to grow as it goes.
		 */
		(void)rmap_reserve(&j->shadow, j->c->live.n > j->hint ? j->c->live.n : j->hint);
		if (j->c->scope == MG_KV_SCOPE_STATE) {
			struct scan_target one = {j->c, &j->shadow};
			rc = scan_prefix(s, &one, 1, "cilium/state/i[dp]*");
		} else {
			tg[nt++] = (struct scan_target){j->c, &j->shadow};
		}
	}
	if (rc == 0 && nt >= GROUP_SCAN_MIN) {
		qsort(tg, nt, sizeof(*tg), target_cmp);
		rc = scan_prefix(s, tg, nt, "cilium/cache/i[dp]*");
	} else {
		for (size_t i = 0; i < nt && rc == 0; i++) {
			snprintf(pat, sizeof(pat), "cilium/cache/i[dp]*/v1/%s/*", tg[i].c->name);
			rc = scan_prefix(s, &tg[i], 1, pat);
		}
	}
	free(tg);
	return rc;
}

/*
 * The shadow becomes @c's live copy, which is empty: its records are
 * applied in place, in the shadow's slot order, as the copy into the live
 * copy would apply them, without copying or rehashing a record (a cold
 * sync of a million entries would otherwise build a second table of a
 * million records). After a failure the records not applied yet leave the
 * live copy, as they would never have entered it.
 */
static int
apply_moved(struct mg_kv_sync *s, struct cl *c, struct rmap *shadow)
{
	size_t i;
	int rc = 0;

	rmap_clear(&c->live);
	c->live = *shadow;
	memset(shadow, 0, sizeof(*shadow));
	for (i = 0; i < c->live.cap && rc == 0; i++)
		if (c->live.v[i].st == 1)
			rc = kvs_apply_new(s, c, &c->live.v[i]);
	for (; rc < 0 && i < c->live.cap; i++)
		if (c->live.v[i].st == 1)
			rmap_del(&c->live, &c->live.v[i].k);
	return rc;
}

/*
 * The rest of one cluster's resync once its shadow holds the scan:
 * replay the log from the noted id, diff against the live copy, refuse a
 * mass delete, apply as one step. 0, -EAGAIN (refused), -ENOTCONN, -ENOMEM.
 */
static int
rjob_finish(struct mg_kv_sync *s, struct rjob *j)
{
	struct cl *c = j->c;
	struct rkey *dels = NULL;
	size_t ndel = 0, capdel = 0;
	uint64_t consumed = j->si.added;
	/* An empty live copy (a cold sync) takes the shadow as it is. */
	bool move = c->live.n == 0;
	int rc;

	/* Otherwise the publish below adds most of the shadow to the live copy. */
	size_t more = j->shadow.n > c->live.n ? j->shadow.n - c->live.n : 0;
	if (!move && (rc = rmap_reserve(&c->live, more)) < 0)
		goto out;
	if ((rc = replay(s, c, &j->shadow, j->si.last, sizeof(j->si.last), &consumed)) < 0)
		goto out;
	/* Diff: what the live copy has and the shadow does not. */
	for (size_t i = 0; i < c->live.cap; i++) {
		const struct rec *r = &c->live.v[i];
		if (r->st != 1 || rmap_find(&j->shadow, &r->k) != NULL)
			continue;
		if (mg_grow(&dels, &capdel, ndel, sizeof(*dels), 64) < 0) {
			rc = -ENOMEM;
			goto out;
		}
		dels[ndel++] = r->k;
	}
	/* Every resync, the local cluster's too: an emptied keyspace is lost
	 * data, never a reason to open what the entries protected. */
	if (c->live.n > 0 && (double)ndel > s->p.max_delete_share * (double)c->live.n) {
		c->st.mass_delete_refusals++;
		snprintf(c->why, sizeof(c->why), "resync refused: would delete %zu of %zu entries",
		         ndel, c->live.n);
		/* said once per episode (kvs_stale_set); retried at every verification */
		c->refused = true;
		kvs_stale_set(c, MG_KV_STALE_REFUSED);
		rc = -EAGAIN;
		goto out;
	}
	/* Apply as one step: identity puts, ipcache puts/dels staged, identity deletions. */
	kvs_sort_order(s);
	if (move) {
		rc = apply_moved(s, c, &j->shadow);
		if (rc < 0)
			goto applied;
	}
	for (size_t i = 0; i < j->shadow.cap; i++) {
		struct rec *r = &j->shadow.v[i];
		if (r->st != 1)
			continue;
		struct decoded d = {r->k, r->identity, r->n_np, r->np};
		rc = kvs_apply_put(s, c, &d, r->value);
		r->value = NULL;
		r->np = NULL;
		r->n_np = 0;
		if (rc < 0)
			goto applied;
	}
	for (size_t i = 0; i < ndel; i++)
		if ((rc = kvs_apply_del(s, c, &dels[i])) < 0)
			goto applied;
	/* Staged, not committed: the caller publishes the batch. */
	c->refused = false;
	c->need_resync = false;
	c->removed = false;
	snprintf(c->cfg, sizeof(c->cfg), "%s", c->vraw);
	snprintf(c->epoch, sizeof(c->epoch), "%s", j->epoch);
	snprintf(c->last_id, sizeof(c->last_id), "%s", j->si.last);
	c->consumed = consumed;
	c->synced = true;
	c->why[0] = '\0';
	c->st.full_syncs++;
	if (c->stale != MG_KV_STALE_HEARTBEAT) /* the heartbeat's own check clears it */
		kvs_stale_clear(c);
	rc = 0;
	goto applied;
out:
	/* Nothing applied: the live copy keeps the keys and ranges it has. */
	rjob_restore(j);
applied:
	free(dels);
	return rc;
}

/*
 * Full sync of the clusters @cs: read everything into shadows and publish
 * each one's diff. -ENOTCONN and -ENOMEM stop them all; a cluster that
 * cannot sync now (-EAGAIN: c->why says why; stale when it holds a copy)
 * does not stop the others.
 */
static int
resync_group(struct mg_kv_sync *s, struct cl **cs, size_t n)
{
	struct rjob *jobs = calloc(n ? n : 1, sizeof(*jobs));
	int rc = 0;

	if (jobs == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		jobs[i].c = cs[i];
		rjob_prepare(&jobs[i]);
	}
	rc = rjob_probe(s, jobs, n);
	if (rc == 0)
		rc = rjob_scan(s, jobs, n);
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct rjob *j = &jobs[i];
		if (j->rc == 0) {
			j->rc = rjob_finish(s, j);
			if (j->rc == -ENOTCONN || j->rc == -ENOMEM)
				rc = j->rc;
		} else {
			rjob_restore(j);
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (rc != 0 && jobs[i].rc == 0)
			rjob_restore(&jobs[i]);
		rmap_clear(&jobs[i].shadow);
	}
	free(jobs);
	return rc;
}

/* Resync every cluster that needs it (or is not synced yet), together. */
int
kvs_resync_due(struct mg_kv_sync *s)
{
	struct cl **cs;
	size_t n = 0;
	int rc;

	if (s->n == 0)
		return 0;
	cs = malloc(s->n * sizeof(*cs));
	if (cs == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < s->n; i++) {
		struct cl *c = &s->c[i];
		if ((c->synced && !c->need_resync) || (c->removed && !c->need_resync))
			continue;
		cs[n++] = c;
	}
	rc = n > 0 ? resync_group(s, cs, n) : 0;
	free(cs);
	return rc;
}
