/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One thread per remote cluster, as Cilium's remote-cluster client works
 * (pkg/clustermesh/common, pkg/kvstore/store): connect and pin etcd's
 * cluster id; read the cluster config (required when
 * cilium/.has-cluster-config exists); wait for the synced canaries when
 * the config announces them; list each prefix in pages pinned to one
 * revision; watch from the next revision, with the heartbeat and the
 * config. Any error, a compacted revision, a new etcd cluster id or a
 * silent heartbeat ends the session: the thread backs off (exponential,
 * with jitter) and starts over, and the list that follows deletes, on the
 * writer's side, what it no longer sees. Requests go through a token
 * bucket (bootstrap rate until the first complete copy, then the regular
 * rate) one at a time: at most one request in flight besides the watch.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "mg_etcd.h"
#include "rep_priv.h"

#define KEY_HAS_CONFIG "cilium/.has-cluster-config"
#define KEY_HEARTBEAT "cilium/.heartbeat"
#define KEY_CONFIG "cilium/cluster-config/"
#define KEY_SYNCED "cilium/synced/"

const double rep_hist_bounds[REP_HIST_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                  0.1,   0.25,   0.5,   1,    2.5,   5};

static const char *const state_names[REP_ST_COUNT] = {
        "connecting", "waiting-config", "waiting-canaries", "listing",
        "watching",   "backoff",        "refused",          "stopped"};
static const char *const cause_names[REP_C_COUNT] = {
        "connect",   "permission", "config",    "list",    "watch",
        "compacted", "cluster_id", "heartbeat", "timeout", "limit"};
static const char *const call_names[REP_CALL_COUNT] = {"status", "range", "watch"};

const char *
rep_state_name(enum rep_state s)
{
	return s < REP_ST_COUNT ? state_names[s] : "?";
}

const char *
rep_cause_name(enum rep_cause c)
{
	return c < REP_C_COUNT ? cause_names[c] : "?";
}

const char *
rep_call_name(enum rep_call c)
{
	return c < REP_CALL_COUNT ? call_names[c] : "?";
}

/* The ranges one session reads, in the remote's own or its cached form. */
struct ranges {
	char prefix[REP_NPREFIX][MG_KV_KEY_MAX];
	char canary[REP_NPREFIX][MG_KV_KEY_MAX];
	char config[MG_KV_KEY_MAX];
};

static void
ranges_init(struct ranges *g, const char *name, bool cached)
{
	if (cached) {
		snprintf(g->prefix[REP_IDS], MG_KV_KEY_MAX, "%s/%s/id/", MG_KV_CACHE_IDENTITIES,
		         name);
		snprintf(g->prefix[REP_IP], MG_KV_KEY_MAX, "%s/%s/", MG_KV_CACHE_IP, name);
	} else {
		snprintf(g->prefix[REP_IDS], MG_KV_KEY_MAX, "%s/id/", MG_KV_STATE_IDENTITIES);
		snprintf(g->prefix[REP_IP], MG_KV_KEY_MAX, "%s/%s/", MG_KV_STATE_IP,
		         MG_KV_IP_NAMESPACE);
	}
	const char *base[REP_NPREFIX] = {cached ? MG_KV_CACHE_IDENTITIES : MG_KV_STATE_IDENTITIES,
	                                 cached ? MG_KV_CACHE_IP : MG_KV_STATE_IP};
	for (int p = 0; p < REP_NPREFIX; p++)
		snprintf(g->canary[p], MG_KV_KEY_MAX, "%s%s/%s", KEY_SYNCED, name, base[p]);
	snprintf(g->config, sizeof(g->config), "%s%s", KEY_CONFIG, name);
}

uint64_t
rep_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
rep_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool
stopping(struct rep_src *s)
{
	return atomic_load_explicit(&s->stop, memory_order_relaxed);
}

/* Sleep @p ms, waking for a stop: 0, or -ECANCELED. */
static int
nap(struct rep_src *s, uint64_t ms)
{
	uint64_t end = rep_now_ms() + ms;
	while (!stopping(s)) {
		uint64_t now = rep_now_ms();
		if (now >= end)
			return 0;
		uint64_t d = end - now < 50 ? end - now : 50;
		struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)d * 1000000};
		nanosleep(&ts, NULL);
	}
	return -ECANCELED;
}

static void
set_state(struct rep_src *s, enum rep_state st)
{
	pthread_mutex_lock(&s->mu);
	s->st.state = st;
	pthread_mutex_unlock(&s->mu);
}

/*
 * Record a failure of @p cause. The steps of a session return 0 (done),
 * -ECANCELED (the thread is told to stop) or what this returns: 1 + cause.
 */
static int MG_PRINTF(3, 4) fail(struct rep_src *s, enum rep_cause cause, const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&s->mu);
	s->st.failures[cause]++;
	va_start(ap, fmt);
	vsnprintf(s->st.error, sizeof(s->st.error), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&s->mu);
	MG_WARN("replicator: %s: %s", s->name, s->st.error);
	return (int)cause + 1;
}

/* The cause of a failed etcd call. */
static enum rep_cause
cause_of(int rc)
{
	switch (rc) {
	case -EACCES:
		return REP_C_PERMISSION;
	case -ETIMEDOUT:
		return REP_C_TIMEOUT;
	case -ERANGE:
		return REP_C_COMPACTED;
	default:
		return REP_C_CONNECT;
	}
}

/* Queue @p m for the writer, waiting while the queue is full. */
static int
post(struct rep_src *s, struct rep_msg *m)
{
	size_t limit = s->r->c->queue_bytes;
	uint64_t t0 = 0;
	pthread_mutex_lock(&s->mu);
	if (s->qbytes > limit) {
		/* back-pressure: the reader waits for the writer, nothing is dropped */
		s->st.queue_waits++;
		t0 = mg_time_ns();
	}
	while (s->qbytes > limit && !stopping(s)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&s->cv, &s->mu, &ts);
	}
	m->next = NULL;
	if (s->tail != NULL)
		s->tail->next = m;
	else
		s->head = m;
	s->tail = m;
	s->qbytes += m->bytes + sizeof(*m);
	s->st.queue_bytes = s->qbytes;
	if (s->qbytes > s->st.queue_peak)
		s->st.queue_peak = s->qbytes;
	if (t0 != 0)
		s->st.queue_wait_sum += (double)(mg_time_ns() - t0) / 1e9;
	pthread_mutex_unlock(&s->mu);
	if (stopping(s))
		return -ECANCELED;
	return 0;
}

struct rep_msg *
rep_src_take(struct rep_src *s)
{
	pthread_mutex_lock(&s->mu);
	struct rep_msg *m = s->head;
	if (m != NULL) {
		s->head = m->next;
		if (s->head == NULL)
			s->tail = NULL;
		s->qbytes -= m->bytes + sizeof(*m);
		s->st.queue_bytes = s->qbytes;
		pthread_cond_signal(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	return m;
}

void
rep_msg_free(struct rep_msg *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++)
		free(m->kv[i].key);
	free(m->kv);
	free(m);
}

static struct rep_msg *
msg_new(enum rep_msg_kind kind, int prefix, uint32_t gen, size_t n)
{
	struct rep_msg *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->kind = kind;
	m->prefix = prefix;
	m->gen = gen;
	if (n > 0) {
		m->kv = calloc(n, sizeof(*m->kv));
		if (m->kv == NULL) {
			free(m);
			return NULL;
		}
	}
	return m;
}

/* Add key (after @p skip bytes of prefix) and value (NULL: a delete) to @p m. */
static int
msg_add(struct rep_msg *m, const char *key, size_t klen, size_t skip, const char *val, size_t vlen)
{
	struct rep_kv *kv = &m->kv[m->n];
	klen -= skip;
	char *b = malloc(klen + 1 + (val != NULL ? vlen + 1 : 0));
	if (b == NULL)
		return -ENOMEM;
	memcpy(b, key + skip, klen);
	b[klen] = '\0';
	kv->key = b;
	kv->klen = (uint32_t)klen;
	if (val != NULL) {
		kv->val = b + klen + 1;
		memcpy(kv->val, val, vlen);
		kv->val[vlen] = '\0';
		kv->vlen = (uint32_t)vlen;
	}
	m->n++;
	m->bytes += klen + vlen + 2 + sizeof(*kv);
	return 0;
}

static int
post_simple(struct rep_src *s, enum rep_msg_kind kind, int prefix)
{
	struct rep_msg *m = msg_new(kind, prefix, s->gen, 0);
	if (m == NULL)
		return -ENOMEM;
	return post(s, m);
}

/* ---- rate limit ---- */

static void
hist_add(struct rep_src *s, enum rep_call call, double secs)
{
	unsigned b = 0;
	while (b < REP_HIST_BUCKETS && secs > rep_hist_bounds[b])
		b++;
	pthread_mutex_lock(&s->mu);
	s->st.wait_count[call]++;
	s->st.wait_hist[call][b]++;
	s->st.wait_sum[call] += secs;
	if (secs > 0)
		s->st.rate_waits++;
	pthread_mutex_unlock(&s->mu);
}

/* Take a token of the bucket (burst: one second's worth), waiting for it. */
static int
rate_wait(struct rep_src *s, enum rep_call call)
{
	const struct mg_rep_config *c = s->r->c;
	double qps = s->st.bootstrap ? c->bootstrap_qps : c->qps;
	double burst = qps < 1 ? 1 : qps;
	uint64_t t0 = mg_time_ns(), now = t0;
	for (;;) {
		double el = (double)(now - s->tokens_at) / 1e9;
		s->tokens = s->tokens + el * qps;
		if (s->tokens > burst)
			s->tokens = burst;
		s->tokens_at = now;
		if (s->tokens >= 1) {
			s->tokens -= 1;
			break;
		}
		uint64_t need_ms = (uint64_t)((1 - s->tokens) / qps * 1000) + 1;
		if (nap(s, need_ms) < 0)
			return -ECANCELED;
		now = mg_time_ns();
	}
	hist_add(s, call, (double)(now - t0) / 1e9);
	return 0;
}

/* ---- the steps of a session ---- */

struct session {
	struct rep_src *s;
	struct mg_etcd *e;
	struct ranges g;
	uint64_t cluster_id;
	int64_t rev;
	int64_t count_rest; /* keys of the prefixes after the first, counted before the list */
	bool have_cfg;
	struct mg_kv_cluster_config cfg;
	char cfg_raw[1024];
};

/* A header from a response: a new etcd cluster id ends the session. */
static int
check_header(struct session *x, const struct mg_etcd_header *h)
{
	if (h->cluster_id == 0 || x->cluster_id == 0 || h->cluster_id == x->cluster_id)
		return 0;
	return fail(x->s, REP_C_CLUSTER_ID,
	            "etcd cluster id changed from %016llx to %016llx (a new etcd): resyncing",
	            (unsigned long long)x->cluster_id, (unsigned long long)h->cluster_id);
}

static int
step_connect(struct session *x)
{
	struct mg_etcd_status st;
	struct mg_error err = {{0}};
	set_state(x->s, REP_ST_CONNECTING);
	if (rate_wait(x->s, REP_CALL_STATUS) < 0)
		return -ECANCELED;
	int rc = mg_etcd_status(x->e, &st, &err);
	if (rc < 0)
		return fail(x->s, cause_of(rc), "%s", err.msg);
	x->cluster_id = st.hdr.cluster_id;
	pthread_mutex_lock(&x->s->mu);
	snprintf(x->s->st.version, sizeof(x->s->st.version), "%s", st.version);
	x->s->st.cluster_id = st.hdr.cluster_id;
	x->s->st.revision = st.hdr.revision;
	x->s->st.connected_at = rep_wall_ms();
	pthread_mutex_unlock(&x->s->mu);
	return 0;
}

/* Read one key: *@p found, its value into @p buf (NUL-terminated) when found. */
static int
get_key(struct session *x, const char *key, char *buf, size_t size, bool *found)
{
	struct mg_etcd_range r;
	struct mg_error err = {{0}};
	*found = false;
	if (rate_wait(x->s, REP_CALL_RANGE) < 0)
		return -ECANCELED;
	int rc = mg_etcd_range(x->e, key, strlen(key), NULL, 0, 0, 1, 0, &r, &err);
	if (rc < 0)
		return fail(x->s, cause_of(rc), "reading %s: %s", key, err.msg);
	rc = check_header(x, &r.hdr);
	if (rc == 0 && r.n > 0) {
		*found = true;
		size_t n = r.kvs[0].value_len < size - 1 ? r.kvs[0].value_len : size - 1;
		memcpy(buf, r.kvs[0].value, n);
		buf[n] = '\0';
	}
	mg_etcd_range_free(&r);
	return rc;
}

static int
step_config(struct session *x)
{
	struct rep_src *s = x->s;
	const struct mg_rep_config *c = s->r->c;
	uint64_t deadline = rep_now_ms() + c->config_timeout_ms;
	char key[MG_KV_KEY_MAX], tmp[64];
	bool found, required;
	int rc;

	set_state(s, REP_ST_WAIT_CONFIG);
	snprintf(key, sizeof(key), "%s%s", KEY_CONFIG, s->name);
	for (;;) {
		rc = get_key(x, key, x->cfg_raw, sizeof(x->cfg_raw), &found);
		if (rc || found)
			break;
		rc = get_key(x, KEY_HAS_CONFIG, tmp, sizeof(tmp), &required);
		if (rc || !required)
			break;
		if (rep_now_ms() > deadline)
			return fail(s, REP_C_CONFIG,
			            "no %s after %u s, and %s says the cluster has one", key,
			            c->config_timeout_ms / 1000, KEY_HAS_CONFIG);
		if (nap(s, 1000) < 0)
			return -ECANCELED;
	}
	if (rc)
		return rc;
	if (!found)
		return fail(s, REP_C_CONFIG,
		            "no %s (nor %s): the cluster predates Cilium 1.14's cluster config, "
		            "and without its cluster id its identities cannot be checked: refused",
		            key, KEY_HAS_CONFIG);
	x->have_cfg = found;
	memset(&x->cfg, 0, sizeof(x->cfg));
	if (found) {
		struct mg_error err = {{0}};
		if (mg_kv_cluster_config_decode(x->cfg_raw, strlen(x->cfg_raw), &x->cfg, &err) < 0)
			return fail(s, REP_C_CONFIG, "%s: %s", key, err.msg);
		unsigned max = x->cfg.max_connected_clusters ? x->cfg.max_connected_clusters : 255;
		if (x->cfg.id == 0)
			return fail(s, REP_C_CONFIG, "%s has no cluster id (or 0): refused", key);
		if (x->cfg.id == c->cluster_id)
			return fail(s, REP_C_CONFIG,
			            "%s: cluster id %u is this site's own (cluster.id): refused",
			            key, x->cfg.id);
		unsigned ours = c->cluster_mode == MG_CLUSTER_MODE_511 ? 511 : 255;
		if (x->cfg.id > ours || max != ours)
			return fail(
			        s, REP_C_CONFIG,
			        "%s: cluster id %u with maxConnectedClusters %u does not fit this "
			        "site's %u: refused",
			        key, x->cfg.id, max, ours);
	}
	ranges_init(&x->g, s->name, found && x->cfg.cached);
	struct rep_msg *m = msg_new(REP_M_CONFIG, 0, s->gen, 0);
	if (m == NULL)
		return fail(s, REP_C_CONFIG, "out of memory");
	m->have_cfg = found;
	m->cfg = x->cfg;
	m->cached_prefixes = found && x->cfg.cached;
	return post(s, m);
}

static int
step_canaries(struct session *x)
{
	char tmp[128];
	bool found[REP_NPREFIX] = {false, false};
	if (!x->have_cfg || !x->cfg.synced_canaries)
		return 0;
	set_state(x->s, REP_ST_WAIT_CANARIES);
	for (;;) {
		for (int p = 0; p < REP_NPREFIX; p++) {
			int rc = found[p] ? 0
			                  : get_key(x, x->g.canary[p], tmp, sizeof(tmp), &found[p]);
			if (rc)
				return rc;
		}
		if (found[REP_IDS] && found[REP_IP])
			return 0;
		if (nap(x->s, 1000) < 0)
			return -ECANCELED;
	}
}

/* Hand one page to the writer. */
static int
post_page(struct session *x, int p, const struct mg_etcd_range *r, size_t skip)
{
	struct rep_msg *m = msg_new(REP_M_KVS, p, x->s->gen, r->n);
	if (m == NULL)
		return fail(x->s, REP_C_LIST, "out of memory");
	for (size_t i = 0; i < r->n; i++) {
		const struct mg_etcd_kv *kv = &r->kvs[i];
		if (kv->key_len < skip || kv->key_len - skip >= MG_KV_KEY_MAX)
			continue; /* not under the prefix, or a key no Redis key can hold */
		if (msg_add(m, kv->key, kv->key_len, skip, kv->value, kv->value_len) < 0) {
			rep_msg_free(m);
			return fail(x->s, REP_C_LIST, "out of memory");
		}
	}
	return post(x->s, m);
}

static int
list_prefix(struct session *x, int p, size_t *total)
{
	struct rep_src *s = x->s;
	const char *prefix = x->g.prefix[p];
	size_t plen = strlen(prefix);
	char end[MG_KV_KEY_MAX];
	size_t slen = plen, cap = plen + 1;
	char *start = malloc(cap);
	int rc;

	if (start == NULL)
		return fail(s, REP_C_LIST, "out of memory");
	memcpy(start, prefix, plen);
	rc = 0;
	if (mg_etcd_prefix_end(prefix, plen, end, sizeof(end)) < 0)
		rc = fail(s, REP_C_LIST, "bad prefix %s", prefix);
	for (bool more = true, first = true; rc == 0 && more; first = false) {
		struct mg_etcd_range r;
		struct mg_error err = {{0}};
		if (rate_wait(s, REP_CALL_RANGE) < 0) {
			rc = -ECANCELED;
			break;
		}
		rc = mg_etcd_range(x->e, start, slen, end, strlen(end), x->rev, s->r->c->page_size,
		                   0, &r, &err);
		if (rc < 0) {
			enum rep_cause cause = cause_of(rc);
			rc = fail(s, cause == REP_C_CONNECT ? REP_C_LIST : cause, "listing %s: %s",
			          prefix, err.msg);
			break;
		}
		rc = check_header(x, &r.hdr);
		if (rc == 0 && x->rev == 0)
			x->rev = r.hdr.revision;
		/* the first prefix's first page counts it (the others were counted) */
		if (rc == 0 && first && p == 0 &&
		    r.count + x->count_rest > (int64_t)s->r->c->max_entries)
			rc = fail(s, REP_C_LIMIT,
			          "%" PRId64 " keys at revision %" PRId64
			          ", more than limits.max_entries (%zu): refused",
			          r.count + x->count_rest, x->rev, s->r->c->max_entries);
		*total += r.n;
		if (rc == 0 && *total > s->r->c->max_entries)
			rc = fail(s, REP_C_LIMIT,
			          "more than limits.max_entries (%zu) keys listed: refused",
			          s->r->c->max_entries);
		if (rc == 0 && first)
			rc = post_simple(s, REP_M_LIST_BEGIN, p);
		if (rc == 0)
			rc = post_page(x, p, &r, plen);
		more = r.more && r.n > 0;
		if (more) {
			const struct mg_etcd_kv *last = &r.kvs[r.n - 1];
			if (last->key_len + 1 > cap) {
				char *ns = realloc(start, last->key_len + 1);
				if (ns == NULL) {
					rc = fail(s, REP_C_LIST, "out of memory");
					more = false;
				} else {
					start = ns;
					cap = last->key_len + 1;
				}
			}
			if (more) {
				memcpy(start, last->key, last->key_len);
				slen = last->key_len;
				start[slen++] = '\0';
			}
		}
		pthread_mutex_lock(&s->mu);
		s->st.pages++;
		s->st.keys_listed += r.n;
		pthread_mutex_unlock(&s->mu);
		mg_etcd_range_free(&r);
	}
	free(start);
	return rc ?: post_simple(s, REP_M_LIST_END, p);
}

/*
 * Count the keys of the prefixes after the first (count-only ranges,
 * pinning the listing's revision): with the first prefix's own count, in
 * its first page, a cluster above limits.max_entries is refused before
 * anything of it is posted to the writer, so it leaves nothing in Redis.
 * One request more per list, not one per prefix.
 */
static int
count_prefixes(struct session *x)
{
	struct rep_src *s = x->s;

	x->count_rest = 0;
	for (int p = 1; p < REP_NPREFIX; p++) {
		const char *prefix = x->g.prefix[p];
		size_t plen = strlen(prefix);
		char end[MG_KV_KEY_MAX];
		struct mg_etcd_range r;
		struct mg_error err = {{0}};
		int rc;

		if (mg_etcd_prefix_end(prefix, plen, end, sizeof(end)) < 0)
			return fail(s, REP_C_LIST, "bad prefix %s", prefix);
		if (rate_wait(s, REP_CALL_RANGE) < 0)
			return -ECANCELED;
		rc = mg_etcd_range(x->e, prefix, plen, end, strlen(end), x->rev, 0,
		                   MG_ETCD_RANGE_COUNT_ONLY, &r, &err);
		if (rc < 0) {
			enum rep_cause cause = cause_of(rc);
			return fail(s, cause == REP_C_CONNECT ? REP_C_LIST : cause,
			            "counting %s: %s", prefix, err.msg);
		}
		rc = check_header(x, &r.hdr);
		if (rc == 0 && x->rev == 0)
			x->rev = r.hdr.revision;
		x->count_rest += r.count;
		mg_etcd_range_free(&r);
		if (rc)
			return rc;
	}
	return 0;
}

static int
step_list(struct session *x)
{
	size_t total = 0;
	int rc;
	set_state(x->s, REP_ST_LISTING);
	x->s->gen++;
	x->rev = 0;
	pthread_mutex_lock(&x->s->mu);
	x->s->st.lists++;
	pthread_mutex_unlock(&x->s->mu);
	rc = count_prefixes(x);
	if (rc)
		return rc;
	for (int p = 0; p < REP_NPREFIX; p++) {
		rc = list_prefix(x, p, &total);
		if (rc)
			return rc;
	}
	return 0;
}

/* Watchers of a session's stream, in creation order. */
enum {
	W_IDS,
	W_IP,
	W_HEARTBEAT,
	W_CONFIG,
	W_COUNT
};

static int
watch_create(struct session *x, struct mg_etcd_watch *w)
{
	char end[MG_KV_KEY_MAX], cfg[MG_KV_KEY_MAX];
	struct mg_error err = {{0}};
	snprintf(cfg, sizeof(cfg), "%s%s", KEY_CONFIG, x->s->name);
	for (int i = 0; i < W_COUNT; i++) {
		const char *key = i == W_HEARTBEAT ? KEY_HEARTBEAT
		                  : i == W_CONFIG  ? cfg
		                                   : x->g.prefix[i];
		size_t elen = 0;
		if (i < W_HEARTBEAT) {
			if (mg_etcd_prefix_end(key, strlen(key), end, sizeof(end)) < 0)
				return fail(x->s, REP_C_WATCH, "bad prefix %s", key);
			elen = strlen(end);
		}
		if (rate_wait(x->s, REP_CALL_WATCH) < 0)
			return -ECANCELED;
		int rc = mg_etcd_watch_create(w, key, strlen(key), elen ? end : NULL, elen,
		                              x->rev + 1, false, false, &err);
		if (rc < 0)
			return fail(x->s,
			            cause_of(rc) == REP_C_CONNECT ? REP_C_WATCH : cause_of(rc),
			            "watching %s: %s", key, err.msg);
	}
	return 0;
}

static int
post_events(struct session *x, int p, const struct mg_etcd_watch_resp *resp)
{
	size_t skip = strlen(x->g.prefix[p]);
	struct rep_msg *m = msg_new(REP_M_EVENTS, p, x->s->gen, resp->n);
	if (m == NULL)
		return fail(x->s, REP_C_WATCH, "out of memory");
	for (size_t i = 0; i < resp->n; i++) {
		const struct mg_etcd_event *ev = &resp->events[i];
		if (ev->kv.key_len < skip || ev->kv.key_len - skip >= MG_KV_KEY_MAX)
			continue;
		bool put = ev->type == MG_ETCD_PUT;
		if (msg_add(m, ev->kv.key, ev->kv.key_len, skip, put ? ev->kv.value : NULL,
		            put ? ev->kv.value_len : 0) < 0) {
			rep_msg_free(m);
			return fail(x->s, REP_C_WATCH, "out of memory");
		}
	}
	return post(x->s, m);
}

/* One response of the watch stream. */
static int
on_watch(struct session *x, const struct mg_etcd_watch_resp *resp, int64_t *wids, int *n_created,
         uint64_t *last_hb)
{
	struct rep_src *s = x->s;
	int rc = check_header(x, &resp->hdr);
	if (rc)
		return rc;
	if (resp->created && *n_created < W_COUNT)
		wids[(*n_created)++] = resp->watch_id;
	if (resp->canceled) {
		if (resp->compact_revision > 0)
			return fail(s, REP_C_COMPACTED,
			            "watch from revision %lld: compacted up to %lld: listing again",
			            (long long)x->rev + 1, (long long)resp->compact_revision);
		bool perm = strstr(resp->cancel_reason, "permission") != NULL;
		return fail(s, perm ? REP_C_PERMISSION : REP_C_WATCH, "watch canceled by etcd: %s",
		            resp->cancel_reason[0] ? resp->cancel_reason : "no reason given");
	}
	int which = -1;
	for (int i = 0; i < *n_created; i++)
		if (wids[i] == resp->watch_id)
			which = i;
	if (resp->n == 0 || which < 0)
		return 0;
	pthread_mutex_lock(&s->mu);
	s->st.events += resp->n;
	s->st.last_event_at = rep_wall_ms();
	if (resp->hdr.revision > s->st.revision)
		s->st.revision = resp->hdr.revision;
	pthread_mutex_unlock(&s->mu);
	if (which == W_IDS || which == W_IP)
		return post_events(x, which == W_IDS ? REP_IDS : REP_IP, resp);
	if (which == W_HEARTBEAT) {
		*last_hb = rep_now_ms();
		pthread_mutex_lock(&s->mu);
		s->st.last_heartbeat_at = rep_wall_ms();
		pthread_mutex_unlock(&s->mu);
		return post_simple(s, REP_M_HEARTBEAT, 0);
	}
	/* The cluster config changed: read it again from the start. */
	const struct mg_etcd_event *ev = &resp->events[resp->n - 1];
	if (ev->type == MG_ETCD_PUT && ev->kv.value_len == strlen(x->cfg_raw) &&
	    memcmp(ev->kv.value, x->cfg_raw, ev->kv.value_len) == 0)
		return 0; /* re-written unchanged (it is leased: every 5 minutes) */
	return fail(s, REP_C_CONFIG, "the cluster config changed: reconnecting");
}

static int
step_watch(struct session *x)
{
	struct rep_src *s = x->s;
	struct mg_etcd_watch *w = NULL;
	struct mg_error err = {{0}};
	int64_t wids[W_COUNT];
	int n_created = 0, rc;
	uint64_t last_hb = rep_now_ms();
	unsigned hb = s->r->c->heartbeat_ms;

	rc = mg_etcd_watch_open(x->e, &w, &err);
	if (rc < 0)
		return fail(s, REP_C_WATCH, "opening the watch: %s", err.msg);
	rc = watch_create(x, w);
	if (rc == 0) {
		set_state(s, REP_ST_WATCHING);
		pthread_mutex_lock(&s->mu);
		s->st.synced_at = rep_wall_ms();
		s->st.bootstrap = false;
		s->st.error[0] = '\0';
		pthread_mutex_unlock(&s->mu);
	}
	while (rc == 0) {
		struct mg_etcd_watch_resp resp;
		if (stopping(s)) {
			rc = -ECANCELED;
			break;
		}
		if (hb > 0 && rep_now_ms() - last_hb > hb) {
			rc = fail(s, REP_C_HEARTBEAT, "no heartbeat (%s) for %u s: reconnecting",
			          KEY_HEARTBEAT, hb / 1000);
			break;
		}
		rc = mg_etcd_watch_next(w, 200, &resp, &err);
		if (rc == -ETIMEDOUT) {
			rc = 0;
			continue;
		}
		if (rc < 0) {
			rc = fail(s, cause_of(rc) == REP_C_CONNECT ? REP_C_WATCH : cause_of(rc),
			          "watch ended: %s", err.msg);
			break;
		}
		rc = on_watch(x, &resp, wids, &n_created, &last_hb);
		mg_etcd_watch_resp_free(&resp);
	}
	mg_etcd_watch_close(w);
	return rc;
}

static int
session_run(struct session *x)
{
	int rc = step_connect(x);
	rc = rc ?: step_config(x);
	rc = rc ?: step_canaries(x);
	rc = rc ?: step_list(x);
	return rc ?: step_watch(x);
}

static struct mg_etcd *
open_etcd(struct rep_src *s, struct mg_error *err)
{
	const struct mg_rep_config *c = s->r->c;
	struct mg_etcd_opts o = {
	        .endpoints = (const char *const *)s->ecfg.endpoints,
	        .n_endpoints = s->ecfg.n_endpoints,
	        .ca_file = s->ecfg.ca_file,
	        .cert_file = s->ecfg.cert_file,
	        .key_file = s->ecfg.key_file,
	        .timeout_ms = c->timeout_ms,
	        .connect_timeout_ms = c->connect_timeout_ms,
	        .keepalive_ms = c->keepalive_ms,
	        .keepalive_timeout_ms = c->keepalive_timeout_ms,
	};
	return mg_etcd_open(&o, err);
}

static uint64_t
backoff_ms(struct rep_src *s)
{
	const struct mg_rep_config *c = s->r->c;
	unsigned n = s->backoff_n < 20 ? s->backoff_n : 20;
	uint64_t d = (uint64_t)c->backoff_min_ms << n;
	if (d > c->backoff_max_ms)
		d = c->backoff_max_ms;
	uint32_t rnd = 0;
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
		rnd = (uint32_t)mg_time_ns();
	s->backoff_n++;
	/* jitter: between half and one and a half of the delay */
	return d / 2 + (d * (rnd % 1024)) / 1024;
}

static void *
src_main(void *arg)
{
	struct rep_src *s = arg;
	while (!stopping(s)) {
		struct mg_error err = {{0}};
		struct session x = {.s = s};
		uint64_t t0 = rep_now_ms();
		int rc;
		x.e = open_etcd(s, &err);
		if (x.e == NULL) {
			rc = fail(s, REP_C_CONNECT, "%s", err.msg);
		} else {
			rc = session_run(&x);
			mg_etcd_close(x.e);
		}
		if (rc == -ECANCELED || stopping(s))
			break;
		enum rep_cause cause = rc > 0 ? (enum rep_cause)(rc - 1) : REP_C_CONNECT;
		if (rep_now_ms() - t0 > 30000)
			s->backoff_n = 0; /* a session that lasted: start the backoff over */
		pthread_mutex_lock(&s->mu);
		s->st.reconnects[cause]++;
		s->st.state = cause == REP_C_CONFIG ? REP_ST_REFUSED : REP_ST_BACKOFF;
		pthread_mutex_unlock(&s->mu);
		nap(s, backoff_ms(s));
	}
	set_state(s, REP_ST_STOPPED);
	return NULL;
}

struct rep_src *
rep_src_start(struct mg_replicator *r, const struct mg_rep_etcd_config *e, struct mg_error *err)
{
	struct rep_src *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		mg_error_set(err, NULL, 0, 0, "out of memory");
		return NULL;
	}
	s->r = r;
	snprintf(s->name, sizeof(s->name), "%s", e->name);
	s->ecfg.n_endpoints = e->n_endpoints;
	s->ecfg.endpoints = calloc(e->n_endpoints, sizeof(char *));
	bool ok = s->ecfg.endpoints != NULL;
	for (size_t i = 0; ok && i < e->n_endpoints; i++)
		ok = (s->ecfg.endpoints[i] = strdup(e->endpoints[i])) != NULL;
	s->ecfg.ca_file = e->ca_file ? strdup(e->ca_file) : NULL;
	s->ecfg.cert_file = e->cert_file ? strdup(e->cert_file) : NULL;
	s->ecfg.key_file = e->key_file ? strdup(e->key_file) : NULL;
	s->st.bootstrap = true;
	s->tokens = 1;
	s->tokens_at = mg_time_ns();
	atomic_init(&s->stop, false);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	int rc = ok ? pthread_create(&s->th, NULL, src_main, s) : ENOMEM;
	if (rc != 0) {
		mg_error_set(err, NULL, 0, 0, "%s: cannot start its thread: %s", e->name,
		             strerror(rc));
		s->started = false;
		rep_src_stop(s);
		return NULL;
	}
	s->started = true;
	return s;
}

void
rep_src_stop(struct rep_src *s)
{
	if (s == NULL)
		return;
	atomic_store(&s->stop, true);
	pthread_mutex_lock(&s->mu);
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	if (s->started)
		pthread_join(s->th, NULL);
	for (struct rep_msg *m = s->head, *next; m != NULL; m = next) {
		next = m->next;
		rep_msg_free(m);
	}
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	mg_rep_etcd_config_clear(&s->ecfg);
	free(s);
}
