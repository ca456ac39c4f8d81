/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The gateway's sync client: full sync (cluster config, canaries, epoch,
 * log position, SCAN + pipelined MGET, log replay) into a per-cluster
 * shadow copy, a guarded diff-and-publish into the identity table and the
 * ipcache, then tailing every cluster's log with XREAD BLOCK. The protocol,
 * its invariants and the threading model are described in mg_kv_sync.h;
 * this file keeps one invariant above all: the tables only ever change
 * through a complete, validated step (a published resync or a whole XREAD
 * batch staged for the caller's one publication), so a lost connection or
 * a bad value can never leave half of something applied.
 */
#include "mg_kv_sync.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "mg_common.h"

/* ---- a small open-addressing map of records, one per cluster ---- */

enum {
	REC_IDENTITY = 1,
	REC_IP = 2
};

/* Fixed-size key without padding so memcmp/hash over it is well defined. */
struct rkey {
	uint8_t kind, family, plen, pad;
	uint8_t addr[16];
	uint32_t id;
};

struct rec {
	struct rkey k;
	uint8_t st;        /* 0 empty, 1 used, 2 deleted */
	uint8_t n_np;      /* named ports of an ipcache entry */
	uint32_t identity; /* identity id, or the ipcache entry's (validated) id */
	/* Identity records: the raw label string (rebind decodes it again; a
	 * re-put with the same string is no change). Ipcache records keep no
	 * string: what reaches the tables is the identity and the named ports,
	 * so those are what tells a real change from a re-put, and a cold sync
	 * of a million entries allocates nothing per entry but named ports. */
	char *value;
	struct mg_named_port *np;
};

struct rmap {
	struct rec *v;
	size_t cap, n, tomb;
};

/* The key is three 64-bit words; one multiply-xorshift mix per word. */
static uint64_t
rkey_hash(const struct rkey *k)
{
	uint64_t w[3], h;
	_Static_assert(sizeof(*k) == sizeof(w), "rkey is three words");
	memcpy(w, k, sizeof(w));
	h = w[0] * 0x9e3779b97f4a7c15ull ^ w[1] * 0xc2b2ae3d27d4eb4full ^
	    w[2] * 0x165667b19e3779f9ull;
	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ull;
	return h ^ (h >> 29);
}

static struct rec *
rmap_find(const struct rmap *m, const struct rkey *k)
{
	if (m->cap == 0)
		return NULL;
	for (size_t i = rkey_hash(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		struct rec *r = &m->v[i];
		if (r->st == 0)
			return NULL;
		if (r->st == 1 && memcmp(&r->k, k, sizeof(*k)) == 0)
			return r;
	}
}

static int
rmap_resize(struct rmap *m, size_t cap)
{
	struct rec *nv = calloc(cap, sizeof(*nv));
	if (nv == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		if (m->v[i].st != 1)
			continue;
		size_t j = rkey_hash(&m->v[i].k) & (cap - 1);
		while (nv[j].st != 0)
			j = (j + 1) & (cap - 1);
		nv[j] = m->v[i];
	}
	free(m->v);
	m->v = nv;
	m->cap = cap;
	m->tomb = 0;
	return 0;
}

/*
 * Room for @n more records without a resize on the way (0 or -ENOMEM).
 * Sized as rmap_put grows (load <= 1/2), so a map filled from another
 * one's slot order is never smaller than it: copying a linear-probing
 * table in slot order into a smaller one with the same hash piles the
 * keys into long runs.
 */
static int
rmap_reserve(struct rmap *m, size_t n)
{
	size_t cap = m->cap ? m->cap : 64;
	while ((m->n + n + 1) * 2 > cap)
		cap *= 2;
	return cap == m->cap ? 0 : rmap_resize(m, cap);
}

/* Insert or replace; takes ownership of @value and @np (freed on failure too). */
static int
rmap_put(struct rmap *m, const struct rkey *k, uint32_t identity, char *value,
         struct mg_named_port *np, uint8_t n_np)
{
	struct rec *r = rmap_find(m, k);
	if (r != NULL) {
		free(r->value);
		free(r->np);
		r->value = value;
		r->np = np;
		r->n_np = n_np;
		r->identity = identity;
		return 0;
	}
	if ((m->n + m->tomb + 1) * 4 > m->cap * 3) {
		size_t cap = m->cap ? m->cap : 64;
		while ((m->n + 1) * 2 > cap)
			cap *= 2;
		if (rmap_resize(m, cap) < 0) {
			free(value);
			free(np);
			return -ENOMEM;
		}
	}
	size_t i = rkey_hash(k) & (m->cap - 1);
	while (m->v[i].st == 1)
		i = (i + 1) & (m->cap - 1);
	if (m->v[i].st == 2)
		m->tomb--;
	m->v[i].k = *k;
	m->v[i].st = 1;
	m->v[i].identity = identity;
	m->v[i].value = value;
	m->v[i].np = np;
	m->v[i].n_np = n_np;
	m->n++;
	return 0;
}

static void
rmap_del(struct rmap *m, const struct rkey *k)
{
	struct rec *r = rmap_find(m, k);
	if (r == NULL)
		return;
	free(r->value);
	free(r->np);
	r->value = NULL;
	r->np = NULL;
	r->n_np = 0;
	r->st = 2;
	m->n--;
	m->tomb++;
}

static void
rmap_clear(struct rmap *m)
{
	for (size_t i = 0; i < m->cap; i++) {
		free(m->v[i].value);
		free(m->v[i].np);
	}
	free(m->v);
	memset(m, 0, sizeof(*m));
}

/* ---- state ---- */

struct cl {
	char name[MG_KV_CLUSTER_NAME_MAX + 1];
	bool local;
	unsigned want_id; /* the id the gateway expects, 0: any */
	unsigned cid;
	enum mg_kv_scope scope;
	bool present, synced, refused, need_resync;
	bool removing;      /* the removal marker is there */
	bool removed;       /* removed by its marker: holds nothing */
	uint64_t remove_at; /* monotonic ms of the removal, with removing */
	/* Stale: the copy is kept as it is while it may be out of date. */
	enum mg_kv_stale_reason stale;
	uint64_t stale_since; /* Unix time (s) */
	enum mg_kv_resync_cause cause;
	char cfg_key[MG_KV_KEY_MAX], log_key[MG_KV_KEY_MAX], epoch_key[MG_KV_KEY_MAX];
	char removed_key[MG_KV_KEY_MAX];
	char cfg[256]; /* the cluster config as last applied, "" when none */
	/* The config as read by the last verification (vraw), decoded (v*),
	 * and refused (cfg_why says why) when it cannot be used. */
	char vraw[256];
	unsigned vid;
	bool vcached, vcanaries;
	bool cfg_ok;
	char cfg_why[160];
	char epoch[128];
	char last_id[48];
	/* Log entries accounted for up to last_id (XINFO entries-added at the
	 * noted id, plus every entry replayed or tailed since): more entries
	 * removed from the log than that means an unread one was trimmed. */
	uint64_t consumed;
	char why[160]; /* why the last sync attempt did not finish */
	struct rmap live;
	struct mg_kv_sync_stats st;
};

struct mg_kv_sync {
	struct mg_kv_sync_params p;
	char *url, *user, *password;
	char *urlbuf; /* the URL in its parsed form; u points into it */
	struct mg_kv_url u;
	struct mg_identity_table *ids;
	struct mg_ipcache *ipc;
	enum mg_cluster_mode mode;
	redisContext *ctx;
	size_t n;
	struct cl *c;
	size_t *order; /* conflict priority: local first, then lowest cluster id */
	char replid[64];
	uint64_t next_connect_ms, next_verify_ms, backoff_ms;
	unsigned rnd;
	bool was_connected;
	uint32_t **changed;
	size_t *n_changed, cap_changed;
	/* Keys removed from the live copies by the batch being built (since
	 * the last poll/initial/rebind began): what a discarded batch would
	 * leave behind in the tables. Kept for the repair when the caller
	 * asks for a resync after a failed publish (mg_kv_sync_request_resync). */
	struct rkey *gone;
	size_t n_gone, cap_gone;
	bool repair; /* re-stage every live entry and the gone keys at the next poll */
	/* How many clusters hold each prefix (records' identity field), kept
	 * while there are several: the rule is a prefix held by one cluster,
	 * and then neither its winner nor a conflict needs a walk over every
	 * cluster's copy (with 255 clusters that walk was most of a start). */
	struct rmap owners;
	bool track_owners;
	struct npid *npids; /* named ports per identity, sorted by id */
	size_t n_npids, cap_npids;
};

static uint64_t
now_ms(void)
{
	return mg_time_ns() / 1000000u;
}

static void
sleep_ms(uint64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

const char *
mg_kv_resync_cause_name(enum mg_kv_resync_cause c)
{
	static const char *const names[] = {"epoch",  "trimmed",  "replid", "reconnect",
	                                    "config", "operator", "repair"};
	_Static_assert(MG_ARRAY_SIZE(names) == MG_KV_RESYNC_N, "a name per cause");
	return (unsigned)c < MG_KV_RESYNC_N ? names[c] : "?";
}

const char *
mg_kv_stale_reason_name(enum mg_kv_stale_reason r)
{
	static const char *const names[] = {"",
	                                    "disconnected",
	                                    "config-missing",
	                                    "config-refused",
	                                    "canaries-missing",
	                                    "mass-delete-refused"};
	_Static_assert(MG_ARRAY_SIZE(names) == MG_KV_STALE_N, "a name per reason");
	return (unsigned)r < MG_KV_STALE_N ? names[r] : "?";
}

static uint64_t
wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec;
}

/*
 * The cluster's copy may be out of date (fail-static): say so once per
 * episode and per reason; the copy is left as it is. Only a cluster that
 * holds a copy (synced) can be stale; one that never synced just is not
 * synced yet (c->why says why).
 */
static void
stale_set(struct cl *c, enum mg_kv_stale_reason r)
{
	if (!c->synced || c->stale == r)
		return;
	if (c->stale == MG_KV_STALE_NONE)
		c->stale_since = wall_s();
	c->stale = r;
	if (r == MG_KV_STALE_DISCONNECTED)
		return; /* one line for the connection, not one per cluster */
	MG_WARN("kv sync: %s: %s: keeping the last state (%zu entries) until it is resolved",
	        c->name, c->why[0] ? c->why : mg_kv_stale_reason_name(r), c->live.n);
}

static void
stale_clear(struct cl *c)
{
	if (c->stale == MG_KV_STALE_NONE)
		return;
	if (c->stale != MG_KV_STALE_DISCONNECTED)
		MG_INFO("kv sync: %s: up to date again after %" PRIu64 " s stale (%s)", c->name,
		        wall_s() - c->stale_since, mg_kv_stale_reason_name(c->stale));
	c->stale = MG_KV_STALE_NONE;
	c->stale_since = 0;
}

/* Stream ids "ms-seq"; "0-0" when none. Returns false for garbage. */
static bool
id_parse(const char *s, uint64_t *ms, uint64_t *seq)
{
	char *end;
	errno = 0;
	*ms = strtoull(s, &end, 10);
	if (errno || *end != '-')
		return false;
	*seq = strtoull(end + 1, &end, 10);
	return errno == 0 && *end == '\0';
}

static int
id_cmp(const char *a, const char *b)
{
	uint64_t am = 0, as = 0, bm = 0, bs = 0;
	id_parse(a, &am, &as);
	id_parse(b, &bm, &bs);
	if (am != bm)
		return am < bm ? -1 : 1;
	return as < bs ? -1 : as > bs;
}

static int
changed_push(struct mg_kv_sync *s, uint32_t id)
{
	if (s->changed == NULL)
		return 0;
	if (*s->n_changed > 0 && *s->changed != NULL && (*s->changed)[*s->n_changed - 1] == id)
		return 0; /* the common repeat, before the sort at the end of the call */
	if (*s->n_changed == s->cap_changed || *s->changed == NULL) {
		size_t cap = *s->n_changed < 16 ? 32 : *s->n_changed * 2;
		uint32_t *nv = realloc(*s->changed, cap * sizeof(*nv));
		if (nv == NULL)
			return -ENOMEM;
		*s->changed = nv;
		s->cap_changed = cap;
	}
	(*s->changed)[(*s->n_changed)++] = id;
	return 0;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * End of a poll/initial: sort the changed list and drop duplicates (an
 * identity changes several times in one batch: labels, named ports, a
 * delete and a re-add), so that the caller recompiles each one once.
 */
static void
changed_dedupe(struct mg_kv_sync *s)
{
	if (s->changed == NULL || *s->changed == NULL || *s->n_changed < 2)
		return;
	uint32_t *v = *s->changed;
	size_t n = *s->n_changed, o = 0;
	qsort(v, n, sizeof(*v), cmp_u32);
	for (size_t i = 1; i < n; i++)
		if (v[i] != v[o])
			v[++o] = v[i];
	*s->n_changed = o + 1;
}

/* ---- named ports of synced ipcache entries ---- */

/*
 * An IPIdentityPair's NamedPorts are its endpoint's named container ports.
 * As Cilium does, an identity gets the union of the named ports of all
 * its entries (every cluster's live copy counts, not only each prefix's
 * winner): each (name, protocol, port) is reference counted per identity.
 * Strict on conflicts: while the entries give one name two port numbers
 * for the same protocol, that name (for that protocol) is left out of the
 * identity, so that a policy port "http" never opens a port an endpoint
 * did not mean; the conflict is counted (named_port_conflicts) on the
 * cluster whose entry created it and resolves itself when the entries
 * agree again. Reserved identities get no named ports from Redis.
 * What the client added to the identity table is noted (app), so that it
 * can take back a port when the last entry naming it goes; named ports the
 * table got elsewhere (CiliumEndpoint files) are kept. The table cannot
 * remove one named port, so taking one back re-creates the identity with
 * the same labels and the remaining ports (the id is in the changed list).
 */
struct npref {
	struct mg_named_port np;
	uint32_t refs;
};

struct npid {
	uint32_t id;
	size_t n, cap; /* v: ports the entries name, sorted (name, proto, port) */
	struct npref *v;
	size_t n_app; /* app: what this client put into the table, sorted */
	struct mg_named_port *app;
};

static int
np_cmp(const struct mg_named_port *a, const struct mg_named_port *b)
{
	int c = strcmp(a->name, b->name);
	if (c != 0)
		return c;
	if (a->proto != b->proto)
		return a->proto < b->proto ? -1 : 1;
	return a->port < b->port ? -1 : a->port > b->port;
}

static bool
np_in(const struct mg_named_port *v, size_t n, const struct mg_named_port *p)
{
	for (size_t i = 0; i < n; i++)
		if (np_cmp(&v[i], p) == 0)
			return true;
	return false;
}

/* Index of identity @id in s->npids, or where it would go (*found false). */
static size_t
npid_pos(const struct mg_kv_sync *s, uint32_t id, bool *found)
{
	size_t lo = 0, hi = s->n_npids;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (s->npids[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < s->n_npids && s->npids[lo].id == id;
	return lo;
}

/* Make the table's named ports of @e->id match the entries (see above). */
static int
np_apply(struct mg_kv_sync *s, struct npid *e)
{
	const struct mg_identity *ident = mg_identity_table_get(s->ids, e->id);
	struct mg_named_port *eff = NULL, *keep = NULL;
	struct mg_labels ls = MG_LABELS_INIT;
	size_t n_eff = 0, n_keep = 0;
	bool add = false, drop = false;
	int rc = 0;

	if (ident == NULL) { /* nothing of ours is in the table; re-added with the identity */
		e->n_app = 0;
		return 0;
	}
	if (e->n > 0 && (eff = malloc(e->n * sizeof(*eff))) == NULL)
		return -ENOMEM;
	/* The union, without the (name, protocol) pairs given two port numbers. */
	for (size_t i = 0; i < e->n;) {
		size_t j = i + 1;
		while (j < e->n && strcmp(e->v[j].np.name, e->v[i].np.name) == 0 &&
		       e->v[j].np.proto == e->v[i].np.proto)
			j++;
		if (j == i + 1)
			eff[n_eff++] = e->v[i].np;
		i = j;
	}
	for (size_t i = 0; i < n_eff && !add; i++)
		add = !np_in(ident->named_ports, ident->n_named_ports, &eff[i]);
	for (size_t i = 0; i < e->n_app && !drop; i++)
		drop = !np_in(eff, n_eff, &e->app[i]) &&
		       np_in(ident->named_ports, ident->n_named_ports, &e->app[i]);
	if (drop) {
		unsigned cid = ident->cluster_id;
		if (ident->n_named_ports > 0 &&
		    (keep = malloc(ident->n_named_ports * sizeof(*keep))) == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < ident->n_named_ports; i++)
			if (!np_in(e->app, e->n_app, &ident->named_ports[i]) ||
			    np_in(eff, n_eff, &ident->named_ports[i]))
				keep[n_keep++] = ident->named_ports[i];
		if ((rc = mg_labels_copy(&ls, &ident->labels)) < 0)
			goto out;
		ident = NULL;
		if ((rc = mg_identity_table_del(s->ids, e->id)) < 0 ||
		    (rc = mg_identity_table_put(s->ids, e->id, &ls, cid)) < 0)
			goto out;
		for (size_t i = 0; i < n_keep && rc >= 0; i++)
			rc = mg_identity_table_add_named_port(s->ids, e->id, keep[i].name,
			                                      keep[i].proto, keep[i].port);
		if (rc < 0)
			goto out;
	}
	for (size_t i = 0; (add || drop) && i < n_eff && rc >= 0; i++)
		rc = mg_identity_table_add_named_port(s->ids, e->id, eff[i].name, eff[i].proto,
		                                      eff[i].port);
	if (rc < 0)
		goto out;
	free(e->app);
	e->app = eff;
	e->n_app = n_eff;
	eff = NULL;
	rc = add || drop ? changed_push(s, e->id) : 0;
out:
	mg_labels_clear(&ls);
	free(eff);
	free(keep);
	return rc;
}

/* An entry of cluster @c naming ports @np of identity @id came (@delta 1) or went (-1). */
static int
np_ref(struct mg_kv_sync *s, struct cl *c, uint32_t id, const struct mg_named_port *np, size_t n,
       int delta)
{
	bool found;
	size_t pos;
	struct npid *e;

	if (n == 0 || mg_identity_is_reserved(id))
		return 0;
	pos = npid_pos(s, id, &found);
	if (!found) {
		if (delta < 0)
			return 0;
		if (mg_grow(&s->npids, &s->cap_npids, s->n_npids, sizeof(*s->npids), 16) < 0)
			return -ENOMEM;
		memmove(&s->npids[pos + 1], &s->npids[pos], (s->n_npids - pos) * sizeof(*s->npids));
		memset(&s->npids[pos], 0, sizeof(*s->npids));
		s->npids[pos].id = id;
		s->n_npids++;
	}
	e = &s->npids[pos];
	for (size_t k = 0; k < n; k++) {
		size_t i = 0;
		int cmp = 1;
		/* Names the table refuses (over 15 characters, Kubernetes' limit)
		 * are skipped the same way when the entry comes and when it goes. */
		if (strnlen(np[k].name, 16) > 15)
			continue;
		while (i < e->n && (cmp = np_cmp(&e->v[i].np, &np[k])) < 0)
			i++;
		if (cmp == 0) {
			if (delta > 0)
				e->v[i].refs++;
			else if (--e->v[i].refs == 0) {
				memmove(&e->v[i], &e->v[i + 1], (e->n - i - 1) * sizeof(*e->v));
				e->n--;
			}
			continue;
		}
		if (delta < 0)
			continue;
		if (mg_grow(&e->v, &e->cap, e->n, sizeof(*e->v), 4) < 0)
			return -ENOMEM;
		for (size_t j = 0; j < e->n; j++)
			if (strcmp(e->v[j].np.name, np[k].name) == 0 &&
			    e->v[j].np.proto == np[k].proto) {
				c->st.named_port_conflicts++;
				MG_WARN("kv sync: %s: identity %u: named port %s is both %u and "
				        "%u: "
				        "left out while they disagree",
				        c->name, id, np[k].name, e->v[j].np.port, np[k].port);
				break;
			}
		memmove(&e->v[i + 1], &e->v[i], (e->n - i) * sizeof(*e->v));
		e->v[i].np = np[k];
		e->v[i].refs = 1;
		e->n++;
	}
	int rc = np_apply(s, e);
	if (rc == 0 && e->n == 0 && e->n_app == 0) {
		free(e->v);
		free(e->app);
		memmove(e, e + 1, (s->n_npids - pos - 1) * sizeof(*e));
		s->n_npids--;
	}
	return rc;
}

/* After identity @id was (re)put into the table: give it its named ports. */
static int
np_refresh(struct mg_kv_sync *s, uint32_t id)
{
	bool found;
	size_t pos = npid_pos(s, id, &found);
	return found ? np_apply(s, &s->npids[pos]) : 0;
}

static void
np_free(struct mg_kv_sync *s)
{
	for (size_t i = 0; i < s->n_npids; i++) {
		free(s->npids[i].v);
		free(s->npids[i].app);
	}
	free(s->npids);
	s->npids = NULL;
	s->n_npids = s->cap_npids = 0;
}

/* ---- redis ---- */

static void
disconnect(struct mg_kv_sync *s)
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
		if (c->stale == MG_KV_STALE_NONE)
			stale_set(c, MG_KV_STALE_DISCONNECTED);
		if (!c->synced && !c->removed && !c->need_resync) {
			c->need_resync = true;
			c->cause = MG_KV_RESYNC_RECONNECT;
		}
	}
	s->next_connect_ms = now_ms();
}

/* A reply, or NULL after a connection error (then disconnected). */
static redisReply *
cmd(struct mg_kv_sync *s, int argc, const char **argv)
{
	if (s->ctx == NULL)
		return NULL;
	redisReply *r = redisCommandArgv(s->ctx, argc, argv, NULL);
	if (r == NULL)
		disconnect(s);
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
		redisReply *r = cmd(s, s->user ? 3 : 2, argv);
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

/* ---- validation: Redis key + value -> record ---- */

struct decoded {
	struct rkey k;
	uint32_t identity;
	uint8_t n_np; /* an ipcache entry's named ports (owned) */
	struct mg_named_port *np;
};

/* 0 key of @c's kind, -ENOENT not a key we sync (ignored). */
static int
key_decode(const struct cl *c, const char *key, struct decoded *d)
{
	memset(d, 0, sizeof(*d));
	uint32_t id;
	if (mg_kv_identity_key_parse(key, c->scope, c->name, &id) == 0) {
		d->k.kind = REC_IDENTITY;
		d->k.id = id;
		return 0;
	}
	struct mg_ipcache_entry e;
	bool host_route;
	memset(&e, 0, sizeof(e));
	if (mg_kv_ip_key_parse(key, c->scope, c->name, &e, &host_route) == 0) {
		d->k.kind = REC_IP;
		d->k.family = e.family;
		d->k.plen = e.plen;
		memcpy(d->k.addr, e.addr, sizeof(d->k.addr));
		return 0;
	}
	return -ENOENT;
}

/*
 * May cluster @c hold identity @id (as an ipcache entry's ID when @ip)?
 * Reserved identities always; local-scope identities (bit 24, the CIDR
 * identities an agent allocates for itself) only as the local cluster's
 * ipcache entries: they mean nothing outside the cluster that made them
 * and are never stored as identity keys; everything else within the
 * cluster's range, as Cilium's validators of remote clusters check it,
 * for the local cluster too.
 */
static bool
in_range(const struct mg_kv_sync *s, const struct cl *c, uint32_t id, bool ip)
{
	uint32_t first, last;

	if (mg_identity_is_reserved(id))
		return ip;
	if (mg_identity_is_local_scope(id))
		return ip && c->local;
	mg_identity_cluster_range(c->cid, s->mode, &first, &last);
	return first != 0 && id >= first && id <= last;
}

/*
 * The cluster label of an identity (k8s:io.cilium.k8s.policy.cluster), as
 * Cilium's clusterNameValidator checks remote identities: it must name
 * the cluster whose key holds it, with source k8s; a remote identity must
 * have it. 0 fine, -EXDEV refused (@why says why).
 */
static int
cluster_label_check(const struct cl *c, const struct mg_labels *ls, char *why, size_t size)
{
	bool found = false;

	for (size_t i = 0; i < ls->n; i++) {
		const struct mg_label *l = &ls->v[i];
		if (strcmp(l->key, MG_LABEL_POLICY_CLUSTER) != 0)
			continue;
		if (strcmp(l->source, "k8s") != 0) {
			snprintf(why, size, "cluster label with source '%.32s', not 'k8s'",
			         l->source);
			return -EXDEV;
		}
		if (strcmp(l->value, c->name) != 0) {
			snprintf(why, size, "cluster label names cluster '%.64s'", l->value);
			return -EXDEV;
		}
		found = true;
	}
	if (!found && !c->local) {
		snprintf(why, size, "no %s label", MG_LABEL_POLICY_CLUSTER);
		return -EXDEV;
	}
	return 0;
}

/* 0 valid (d->identity set), -EINVAL unparsable, -ERANGE out of range,
 * -EXDEV another cluster's identity (@why says why), -ENOMEM. */
static int
value_check(struct mg_kv_sync *s, struct cl *c, struct decoded *d, const char *val, size_t len,
            char *why, size_t size)
{
	struct mg_error err;
	if (d->k.kind == REC_IDENTITY) {
		struct mg_labels ls = MG_LABELS_INIT;
		int rc = mg_kv_identity_value_decode(val, len, &ls, &err);
		if (rc == 0 && !in_range(s, c, d->k.id, false))
			rc = -ERANGE;
		if (rc == 0)
			rc = cluster_label_check(c, &ls, why, size);
		mg_labels_clear(&ls);
		if (rc < 0)
			return rc == -ENOMEM || rc == -ERANGE || rc == -EXDEV ? rc : -EINVAL;
		d->identity = d->k.id;
		return 0;
	}
	struct mg_kv_ip_pair pair;
	memset(&pair, 0, sizeof(pair));
	int rc = mg_kv_ip_pair_decode(val, len, &pair, &err);
	if (rc < 0)
		return rc == -ENOMEM ? rc : -EINVAL;
	uint32_t id = pair.prefix.identity;
	bool same = pair.prefix.family == d->k.family && pair.prefix.plen == d->k.plen &&
	            memcmp(pair.prefix.addr, d->k.addr, sizeof(d->k.addr)) == 0;
	if (!c->local && id == MG_ID_HOST)
		id = MG_ID_REMOTE_NODE;
	if (!same || !in_range(s, c, id, true)) {
		mg_kv_ip_pair_clear(&pair);
		return same ? -ERANGE : -EINVAL;
	}
	d->identity = id;
	/* The named ports go with the record (at most MG_KV_IP_MAX_NAMED_PORTS). */
	d->np = pair.named_ports;
	d->n_np = (uint8_t)pair.n_named_ports;
	pair.named_ports = NULL;
	pair.n_named_ports = 0;
	mg_kv_ip_pair_clear(&pair);
	return 0;
}

/* Validate the value of a decoded key; counts rejections. 1 accepted, 0 skipped, -ENOMEM. */
static int
decode_value(struct mg_kv_sync *s, struct cl *c, const char *key, const char *val, size_t len,
             struct decoded *d)
{
	char why[128] = "";
	int rc = value_check(s, c, d, val, len, why, sizeof(why));
	if (rc == -ENOMEM)
		return rc;
	if (rc == -EXDEV) {
		c->st.rejected_cluster++;
		MG_WARN("kv sync: %s: rejected %s: %s", c->name, key, why);
		return 0;
	}
	if (rc == -EINVAL) {
		c->st.rejected_parse++;
		MG_WARN("kv sync: %s: rejected unparsable value of %s", c->name, key);
		return 0;
	}
	if (rc == -ERANGE) {
		c->st.rejected_range++;
		MG_WARN("kv sync: %s: rejected %s: identity outside cluster %u's range", c->name,
		        key, c->cid);
		return 0;
	}
	return 1;
}

/* Key and value; 1 accepted (d->np owned by the caller), 0 skipped, -ENOMEM. */
static int
decode_entry(struct mg_kv_sync *s, struct cl *c, const char *key, const char *val, size_t len,
             struct decoded *d)
{
	if (key_decode(c, key, d) < 0)
		return 0;
	return decode_value(s, c, key, val, len, d);
}

/* ---- applying to the tables ---- */

/* Clusters holding prefix @k (UINT32_MAX: not counted, one cluster only). */
static uint32_t
owners_count(const struct mg_kv_sync *s, const struct rkey *k)
{
	const struct rec *r;

	if (!s->track_owners)
		return UINT32_MAX;
	r = rmap_find(&s->owners, k);
	return r != NULL ? r->identity : 0;
}

/* One more (@delta 1) or one fewer (-1) cluster holds prefix @k. 0 or -ENOMEM. */
static int
owners_add(struct mg_kv_sync *s, const struct rkey *k, int delta)
{
	struct rec *r;

	if (!s->track_owners)
		return 0;
	r = rmap_find(&s->owners, k);
	if (r == NULL)
		return delta > 0 ? rmap_put(&s->owners, k, 1, NULL, NULL, 0) : 0;
	if (delta > 0)
		r->identity++;
	else if (--r->identity == 0)
		rmap_del(&s->owners, k);
	return 0;
}

/* Count the owners anew (the cluster list changed). 0 or -ENOMEM. */
static int
owners_rebuild(struct mg_kv_sync *s)
{
	int rc = 0;

	rmap_clear(&s->owners);
	s->track_owners = s->n > 1;
	for (size_t i = 0; s->track_owners && i < s->n && rc == 0; i++) {
		const struct rmap *m = &s->c[i].live;
		for (size_t j = 0; j < m->cap && rc == 0; j++)
			if (m->v[j].st == 1 && m->v[j].k.kind == REC_IP)
				rc = owners_add(s, &m->v[j].k, 1);
	}
	if (rc < 0) { /* counts incomplete: fall back to the walks */
		rmap_clear(&s->owners);
		s->track_owners = false;
	}
	return rc;
}

/*
 * Put the winner for prefix @k into the ipcache, or delete it. @hint: a
 * cluster that holds @k (or NULL): when it is the only one, it wins
 * without a walk over the clusters.
 */
static int
ip_recompute(struct mg_kv_sync *s, const struct rkey *k, const struct cl *hint)
{
	uint32_t owners = owners_count(s, k);
	const struct rec *r = NULL;
	const struct cl *c = NULL;

	if (owners == 1 && hint != NULL && (r = rmap_find(&hint->live, k)) != NULL)
		c = hint;
	for (size_t i = 0; c == NULL && owners != 0 && i < s->n; i++) {
		const struct cl *o = &s->c[s->order[i]];
		if ((r = rmap_find(&o->live, k)) != NULL)
			c = o;
	}
	if (c != NULL) {
		struct mg_ipcache_entry e;
		memset(&e, 0, sizeof(e));
		e.family = k->family;
		e.plen = k->plen;
		memcpy(e.addr, k->addr, sizeof(e.addr));
		e.identity = r->identity;
		e.cluster_id = c->cid;
		return mg_ipcache_put(s->ipc, &e);
	}
	/* No cluster holds it: the daemon's own entry for it, if any (base layer). */
	if (s->p.base != NULL) {
		struct mg_ipcache_entry pfx, own;
		memset(&pfx, 0, sizeof(pfx));
		memset(&own, 0, sizeof(own));
		pfx.family = k->family;
		pfx.plen = k->plen;
		memcpy(pfx.addr, k->addr, sizeof(pfx.addr));
		int b = s->p.base(s->p.base_arg, &pfx, &own);
		if (b < 0)
			return b;
		if (b == 1) {
			own.family = pfx.family;
			own.plen = pfx.plen;
			memcpy(own.addr, pfx.addr, sizeof(own.addr));
			return mg_ipcache_put(s->ipc, &own);
		}
	}
	int rc = mg_ipcache_del(s->ipc, k->family, k->addr, k->plen);
	return rc == -ENOENT ? 0 : rc;
}

static bool
np_list_eq(const struct mg_named_port *a, size_t na, const struct mg_named_port *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (np_cmp(&a[i], &b[i]) != 0)
			return false;
	return true;
}

/* Apply a validated put (takes @value, an identity's label string, and d->np). */
static int
apply_put(struct mg_kv_sync *s, struct cl *c, struct decoded *d, char *value)
{
	const struct rec *old = rmap_find(&c->live, &d->k);
	if (d->k.kind == REC_IDENTITY) {
		if (old != NULL && old->value != NULL && value != NULL &&
		    strcmp(old->value, value) == 0) {
			free(value);
			return 0;
		}
		struct mg_labels ls = MG_LABELS_INIT;
		struct mg_error err;
		int rc = mg_kv_identity_value_decode(value, strlen(value), &ls, &err);
		if (rc == 0)
			rc = mg_identity_table_put(s->ids, d->k.id, &ls, c->cid);
		mg_labels_clear(&ls);
		if (rc < 0) {
			free(value);
			return rc;
		}
		rc = rmap_put(&c->live, &d->k, d->identity, value, NULL, 0);
		if (rc == 0)
			rc = changed_push(s, d->k.id);
		return rc < 0 ? rc : np_refresh(s, d->k.id);
	}
	free(value); /* ipcache records keep no string */
	if (old != NULL && old->identity == d->identity &&
	    np_list_eq(old->np, old->n_np, d->np, d->n_np)) {
		free(d->np);
		d->np = NULL;
		return 0;
	}
	if (old == NULL && owners_count(s, &d->k) > 0 && s->n > 1) {
		for (size_t i = 0; i < s->n; i++) {
			if (&s->c[i] != c && rmap_find(&s->c[i].live, &d->k) != NULL) {
				c->st.conflicts++;
				MG_WARN("kv sync: %s: prefix also held by cluster %s", c->name,
				        s->c[i].name);
				break;
			}
		}
	}
	/* The new entry's ports first, so that ports both name never drop to 0. */
	int rc = np_ref(s, c, d->identity, d->np, d->n_np, 1);
	if (rc == 0 && old != NULL)
		rc = np_ref(s, c, old->identity, old->np, old->n_np, -1);
	if (rc < 0) {
		free(d->np);
		d->np = NULL;
		return rc;
	}
	rc = rmap_put(&c->live, &d->k, d->identity, NULL, d->np, d->n_np);
	d->np = NULL;
	if (rc == 0 && old == NULL)
		rc = owners_add(s, &d->k, 1);
	return rc < 0 ? rc : ip_recompute(s, &d->k, c);
}

static int
apply_del(struct mg_kv_sync *s, struct cl *c, const struct rkey *k)
{
	if (rmap_find(&c->live, k) == NULL)
		return 0;
	if (mg_grow(&s->gone, &s->cap_gone, s->n_gone, sizeof(*s->gone), 64) < 0)
		return -ENOMEM;
	s->gone[s->n_gone++] = *k;
	const struct rec *was = rmap_find(&c->live, k);
	int nrc = np_ref(s, c, was->identity, was->np, was->n_np, -1);
	if (nrc < 0)
		return nrc;
	rmap_del(&c->live, k);
	if (k->kind == REC_IP) {
		owners_add(s, k, -1);
		return ip_recompute(s, k, NULL);
	}
	const struct mg_identity *ident = mg_identity_table_get(s->ids, k->id);
	if (ident != NULL && ident->cluster_id == c->cid) {
		int rc = mg_identity_table_del(s->ids, k->id);
		if (rc < 0 && rc != -ENOENT)
			return rc;
	}
	return changed_push(s, k->id);
}

/*
 * The client never commits the ipcache: each call leaves its batch staged
 * for the caller to publish (with the policy derived from it) or discard.
 * A new batch begins at every poll and initial; after a discarded one
 * (request_resync), first re-stage everything the tables may have lost:
 * every live prefix's winner, every identity (the caller's policy update
 * failed: all ids go into the changed list), and the keys the discarded
 * batch removed.
 */
static int
batch_begin(struct mg_kv_sync *s)
{
	int rc = 0;

	if (!s->repair) {
		s->n_gone = 0;
		return 0;
	}
	for (size_t i = 0; i < s->n && rc == 0; i++) {
		const struct cl *c = &s->c[i];
		for (size_t j = 0; j < c->live.cap && rc == 0; j++) {
			const struct rec *r = &c->live.v[j];
			if (r->st != 1)
				continue;
			if (r->k.kind == REC_IP)
				rc = ip_recompute(s, &r->k, c);
			else
				rc = changed_push(s, r->k.id);
		}
	}
	for (size_t i = 0; i < s->n_gone && rc == 0; i++)
		rc = s->gone[i].kind == REC_IP ? ip_recompute(s, &s->gone[i], NULL)
		                               : changed_push(s, s->gone[i].id);
	/* The gone keys stay noted until a batch after this one begins
	 * without a repair: this batch may be discarded too. */
	if (rc == 0)
		s->repair = false;
	return rc;
}

static void sort_order(struct mg_kv_sync *s);

/* ---- full sync of one cluster ---- */

static char *
reply_dup(const redisReply *r)
{
	char *v = malloc(r->len + 1);
	if (v != NULL) {
		memcpy(v, r->str, r->len);
		v[r->len] = '\0';
	}
	return v;
}

/* Apply one log entry (fields op/key/value) to map @m, validating. */
static int
log_entry_to_shadow(struct mg_kv_sync *s, struct cl *c, struct rmap *m, const redisReply *fields)
{
	const char *op = NULL, *key = NULL;
	const redisReply *val = NULL;
	if (fields->type != REDIS_REPLY_ARRAY)
		return 0;
	for (size_t i = 0; i + 1 < fields->elements; i += 2) {
		const redisReply *f = fields->element[i], *v = fields->element[i + 1];
		if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
			continue;
		if (strcmp(f->str, "op") == 0)
			op = v->str;
		else if (strcmp(f->str, "key") == 0)
			key = v->str;
		else if (strcmp(f->str, "value") == 0)
			val = v;
	}
	if (op == NULL || key == NULL) {
		c->st.rejected_parse++;
		return 0;
	}
	struct decoded d;
	if (strcmp(op, "del") == 0) {
		if (key_decode(c, key, &d) == 0) {
			if (m != NULL)
				rmap_del(m, &d.k);
			else
				return apply_del(s, c, &d.k);
		}
		return 0;
	}
	if (strcmp(op, "put") != 0 || val == NULL) {
		c->st.rejected_parse++;
		return 0;
	}
	int rc = decode_entry(s, c, key, val->str, val->len, &d);
	if (rc <= 0) {
		/* A rejected put replaces what the key held: drop the old value. */
		if (rc == 0 && key_decode(c, key, &d) == 0) {
			if (m != NULL)
				rmap_del(m, &d.k);
			else
				return apply_del(s, c, &d.k);
		}
		return rc;
	}
	char *v = NULL;
	if (d.k.kind == REC_IDENTITY && (v = reply_dup(val)) == NULL) {
		free(d.np);
		return -ENOMEM;
	}
	return m != NULL ? rmap_put(m, &d.k, d.identity, v, d.np, d.n_np) : apply_put(s, c, &d, v);
}

struct sinfo {
	char last[48], maxdel[48];
	uint64_t added, length;
};

/* An XINFO STREAM reply into @si ("0-0" and zeros when there is no stream). */
static void
stream_info_parse(const redisReply *r, struct sinfo *si)
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
		return key_decode(t[0].c, key, d) == 0 ? 0 : -1;
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
			return key_decode(t[mid].c, key, d) == 0 ? (int)mid : -1;
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
	int rc = 0;

	snprintf(count, sizeof(count), "%d", SCAN_COUNT);
	const char *scan_argv[6] = {"SCAN", cursor, "MATCH", pattern, "COUNT", count};
	if (mg_grow(&q, &capq, tail, sizeof(*q), 64) < 0)
		return -ENOMEM;
	redisAppendCommandArgv(s->ctx, 6, scan_argv, NULL);
	q[tail++] = (struct sreq){NULL, 0, 0};
	while (head < tail) {
		struct sreq rq = q[head++];
		void *rv = NULL;
		if (redisGetReply(s->ctx, &rv) != REDIS_OK || rv == NULL) {
			/* Nothing more comes on this connection: free what waits. */
			for (size_t i = head - 1; i < tail; i++)
				if (q[i].b != NULL && --q[i].b->left == 0)
					sbatch_free(q[i].b);
			disconnect(s);
			rc = -ENOTCONN;
			break;
		}
		redisReply *r = rv;
		if (rq.b != NULL) { /* MGET */
			for (size_t i = 0;
			     rc == 0 && r->type == REDIS_REPLY_ARRAY && i < r->elements && i < rq.n;
			     i++) {
				const redisReply *v = r->element[i];
				struct decoded d = rq.b->d[rq.off + i];
				const struct scan_target *t = &tg[rq.b->t[rq.off + i]];
				if (v->type != REDIS_REPLY_STRING)
					continue; /* deleted since the SCAN: the log has it */
				int dr = decode_value(s, t->c, rq.b->keys[rq.off + i], v->str,
				                      v->len, &d);
				if (dr < 0) {
					rc = dr;
				} else if (dr > 0) {
					char *val = NULL;
					if (d.k.kind == REC_IDENTITY &&
					    (val = reply_dup(v)) == NULL) {
						free(d.np);
						rc = -ENOMEM;
					} else {
						rc = rmap_put(t->shadow, &d.k, d.identity, val,
						              d.np, d.n_np);
					}
				}
			}
			freeReplyObject(r);
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
		redisReply *r = cmd(s, 6, argv);
		if (r == NULL)
			return -ENOTCONN;
		size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
		for (size_t i = 0; i < n; i++) {
			const redisReply *e = r->element[i];
			if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
				continue;
			int rc = log_entry_to_shadow(s, c, shadow, e->element[1]);
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

/* ---- full sync of clusters ---- */

/* One cluster's part of a resync. */
struct rjob {
	struct cl *c;
	struct rmap shadow;
	char epoch[128];
	struct sinfo si;
	unsigned old_cid;
	enum mg_kv_scope old_scope;
	int rc; /* 0 while it goes on; -EAGAIN (c->why says why), -ENOTCONN, -ENOMEM */
};

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
		stale_set(c, MG_KV_STALE_NO_CONFIG);
		j->rc = -EAGAIN;
		return;
	}
	if (!c->cfg_ok) {
		snprintf(c->why, sizeof(c->why), "%s", c->cfg_why);
		stale_set(c, MG_KV_STALE_BAD_CONFIG);
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
			disconnect(s);
			rc = -ENOTCONN;
			break;
		}
		int at = 0;
		if (c->vcanaries) {
			for (int k = 0; k < 2 && j->rc == 0; k++)
				if (r[k]->type != REDIS_REPLY_INTEGER || r[k]->integer != 1) {
					snprintf(c->why, sizeof(c->why), "waiting for %.100s",
					         ckeys[i][k]);
					stale_set(c, MG_KV_STALE_CANARIES);
					j->rc = -EAGAIN;
				}
			at = 2;
		}
		if (r[at]->type == REDIS_REPLY_STRING)
			snprintf(j->epoch, sizeof(j->epoch), "%.*s", (int)r[at]->len, r[at]->str);
		stream_info_parse(r[at + 1], &j->si);
		for (int k = 0; k < want; k++)
			freeReplyObject(r[k]);
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
	int rc;

	/* The publish below adds most of the shadow to the live copy. */
	size_t more = j->shadow.n > c->live.n ? j->shadow.n - c->live.n : 0;
	if ((rc = rmap_reserve(&c->live, more)) < 0)
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
		/* said once per episode (stale_set); retried at every verification */
		c->refused = true;
		stale_set(c, MG_KV_STALE_REFUSED);
		rc = -EAGAIN;
		goto out;
	}
	/* Apply as one step: identity puts, ipcache puts/dels staged, identity deletions. */
	sort_order(s);
	for (size_t i = 0; i < j->shadow.cap; i++) {
		struct rec *r = &j->shadow.v[i];
		if (r->st != 1)
			continue;
		struct decoded d = {r->k, r->identity, r->n_np, r->np};
		rc = apply_put(s, c, &d, r->value);
		r->value = NULL;
		r->np = NULL;
		r->n_np = 0;
		if (rc < 0)
			goto applied;
	}
	for (size_t i = 0; i < ndel; i++)
		if ((rc = apply_del(s, c, &dels[i])) < 0)
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
	stale_clear(c);
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

/*
 * Remove everything cluster @c holds (its marker's grace period ended,
 * or it left the configuration): each entry goes as a deletion of the
 * batch, so the prefixes fall back to the next cluster or the base layer
 * and the identities leave the table. The cluster is tailed no more.
 */
static int
remove_state(struct mg_kv_sync *s, struct cl *c)
{
	int rc = 0;

	for (size_t i = 0; i < c->live.cap && rc == 0; i++) {
		const struct rec *r = &c->live.v[i];
		if (r->st == 1) {
			struct rkey k = r->k;
			rc = apply_del(s, c, &k);
		}
	}
	if (rc < 0)
		return rc;
	rmap_clear(&c->live);
	c->synced = false;
	c->need_resync = false;
	c->refused = false;
	c->cfg[0] = '\0';
	c->epoch[0] = '\0';
	snprintf(c->last_id, sizeof(c->last_id), "0-0");
	c->consumed = 0;
	stale_clear(c);
	return 0;
}

/* ---- verification ---- */

static void
mark(struct cl *c, enum mg_kv_resync_cause cause)
{
	if (c->need_resync)
		return;
	c->need_resync = true;
	c->cause = cause;
	c->st.resyncs[cause]++;
}

/*
 * Decode the config @c->vraw read by the verification into c->v*: the
 * checks of one cluster alone (decodes, expected id, the identity
 * table's mode). The checks across clusters come after.
 */
static void
config_check(const struct mg_kv_sync *s, struct cl *c)
{
	struct mg_kv_cluster_config cfg;
	struct mg_error err = {{0}};
	unsigned mode_max = s->mode == MG_CLUSTER_MODE_511 ? 511 : 255;

	c->cfg_ok = false;
	if (mg_kv_cluster_config_decode(c->vraw, strlen(c->vraw), &cfg, &err) < 0) {
		snprintf(c->cfg_why, sizeof(c->cfg_why), "bad cluster config: %.120s", err.msg);
		return;
	}
	c->vid = cfg.id;
	c->vcached = cfg.cached;
	c->vcanaries = cfg.synced_canaries;
	if (c->want_id != 0 && cfg.id != c->want_id) {
		snprintf(c->cfg_why, sizeof(c->cfg_why),
		         "cluster config says id %u, the gateway's configuration %u", cfg.id,
		         c->want_id);
		return;
	}
	if (cfg.max_connected_clusters != mode_max) {
		snprintf(c->cfg_why, sizeof(c->cfg_why),
		         "cluster config says maxConnectedClusters %u, the gateway runs with %u",
		         cfg.max_connected_clusters, mode_max);
		return;
	}
	c->cfg_ok = true;
	c->cfg_why[0] = '\0';
}

/*
 * Checks across the configured clusters, on the configs just read: two
 * clusters with one id (the ranges and the conflict order would mix them
 * up: the later one in configuration order is refused, as Cilium refuses
 * a duplicate id), and more than one cluster on the single-cluster layout
 * (cilium/state/... holds one cluster's keys, whose names do not say
 * which: every such cluster is refused until the data is fixed).
 */
static void
config_cross_check(struct mg_kv_sync *s)
{
	size_t nstate = 0;

	for (size_t i = 0; i < s->n; i++) {
		struct cl *c = &s->c[i];
		if (!c->present || !c->cfg_ok)
			continue;
		for (size_t j = 0; j < i; j++) {
			const struct cl *o = &s->c[j];
			if (o->present && o->cfg_ok && o->vid == c->vid) {
				snprintf(c->cfg_why, sizeof(c->cfg_why),
				         "cluster id %u is cluster %s's already", c->vid, o->name);
				c->cfg_ok = false;
				break;
			}
		}
		if (c->cfg_ok && !c->vcached)
			nstate++;
	}
	if (nstate < 2)
		return;
	for (size_t i = 0; i < s->n; i++) {
		struct cl *c = &s->c[i];
		if (c->present && c->cfg_ok && !c->vcached) {
			snprintf(c->cfg_why, sizeof(c->cfg_why),
			         "%zu configured clusters read the single-cluster layout "
			         "(cilium/state/...) of this Redis; at most one may",
			         nstate);
			c->cfg_ok = false;
		}
	}
}

/* What a pipelined verification reads per cluster, in this order. */
enum {
	V_CFG,
	V_EPOCH,
	V_XINFO,
	V_MARKER,
	V_N
};

/*
 * The removal marker of @c is (@marker) or is not there: start, carry out
 * or cancel a removal. -ENOMEM, else 0.
 */
static int
marker_check(struct mg_kv_sync *s, struct cl *c, bool marker)
{
	uint64_t t = now_ms();

	if (!marker) {
		if (c->removing) {
			c->removing = false;
			MG_INFO("kv sync: %s: removal marker %s gone before its grace period "
			        "ended: the cluster stays",
			        c->name, c->removed_key);
		}
		return 0;
	}
	if (c->removed)
		return 0;
	if (!c->removing) {
		c->removing = true;
		/* Nothing held yet: nothing to wait for. */
		c->remove_at = c->synced || c->live.n > 0 ? t + s->p.removal_grace_ms : t;
		c->st.removal_at = wall_s() + (c->remove_at - t + 999) / 1000;
		if (c->remove_at > t)
			MG_WARN("kv sync: %s: removal marker %s: the cluster's state (%zu "
			        "entries) is removed in %u s unless the marker goes",
			        c->name, c->removed_key, c->live.n,
			        (unsigned)((c->remove_at - t + 999) / 1000));
	}
	if (t < c->remove_at)
		return 0;
	MG_WARN("kv sync: %s: removal marker %s: removing the cluster's state (%zu entries)",
	        c->name, c->removed_key, c->live.n);
	int rc = remove_state(s, c);
	if (rc < 0)
		return rc;
	c->removing = false;
	c->removed = true;
	c->st.removal_at = 0;
	c->st.removals++;
	snprintf(c->why, sizeof(c->why), "removed by its marker %.100s", c->removed_key);
	return 0;
}

/* One cluster's part of a verification: @r holds its V_N replies. */
static int
verify_cluster(struct mg_kv_sync *s, struct cl *c, redisReply **r)
{
	struct sinfo si;
	int rc;

	rc = marker_check(s, c, r[V_MARKER]->type == REDIS_REPLY_INTEGER && r[V_MARKER]->integer);
	if (rc < 0)
		return rc;
	if (c->removed) {
		/* The marker is gone and the cluster is back: sync it anew. */
		if (!c->removing && c->present && c->cfg_ok &&
		    !(r[V_MARKER]->type == REDIS_REPLY_INTEGER && r[V_MARKER]->integer))
			mark(c, MG_KV_RESYNC_CONFIG);
		return 0;
	}
	if (!c->present) {
		snprintf(c->why, sizeof(c->why), "cluster config %.100s is missing", c->cfg_key);
		stale_set(c, MG_KV_STALE_NO_CONFIG);
		return 0;
	}
	if (!c->cfg_ok) {
		snprintf(c->why, sizeof(c->why), "%s", c->cfg_why);
		stale_set(c, MG_KV_STALE_BAD_CONFIG);
		return 0;
	}
	if (!c->synced)
		return 0; /* the next resync_due tries */
	if (c->stale == MG_KV_STALE_NO_CONFIG || c->stale == MG_KV_STALE_BAD_CONFIG ||
	    strcmp(c->vraw, c->cfg) != 0) {
		/* The config came back, or changed (a new id, the other layout). */
		mark(c, MG_KV_RESYNC_CONFIG);
		return 0;
	}
	if (c->need_resync)
		return 0;
	const char *epoch = r[V_EPOCH]->type == REDIS_REPLY_STRING ? r[V_EPOCH]->str : "";
	stream_info_parse(r[V_XINFO], &si);
	/*
	 * Trimming removes entries from the front: entries-added minus
	 * length is how many were removed, and more removed than we have
	 * read means one we never read is gone. XDEL of an unread entry
	 * shows as max-deleted-entry-id beyond our position.
	 */
	if (strcmp(epoch, c->epoch) != 0)
		mark(c, MG_KV_RESYNC_EPOCH);
	else if (id_cmp(si.maxdel, c->last_id) > 0 || si.added - si.length > c->consumed)
		mark(c, MG_KV_RESYNC_TRIMMED);
	uint64_t lm = 0, ls = 0, om = 0, os = 0;
	if (id_parse(si.last, &lm, &ls) && id_parse(c->last_id, &om, &os))
		c->st.lag_ms = lm > om ? lm - om : 0;
	if (!c->need_resync && c->stale == MG_KV_STALE_DISCONNECTED)
		stale_clear(c); /* reconnected, and nothing was missed */
	return 0;
}

/*
 * Verify every cluster in one pipelined round trip: the server's
 * replication id, then per cluster its config, epoch, log and removal
 * marker. Marks the resyncs due, starts or carries out removals, and
 * flags stale clusters. 0, -ENOTCONN, -ENOMEM.
 */
static int
verify(struct mg_kv_sync *s)
{
	redisReply **rep = NULL, *info = NULL;
	size_t nrep = 0;
	int rc = 0;

	if (s->ctx == NULL)
		return -ENOTCONN;
	if (s->n > 0 && (rep = calloc(s->n * V_N, sizeof(*rep))) == NULL)
		return -ENOMEM;
	{
		const char *argv[2] = {"INFO", "replication"};
		redisAppendCommandArgv(s->ctx, 2, argv, NULL);
	}
	for (size_t i = 0; i < s->n; i++) {
		struct cl *c = &s->c[i];
		const char *a0[2] = {"GET", c->cfg_key}, *a1[2] = {"GET", c->epoch_key};
		const char *a2[3] = {"XINFO", "STREAM", c->log_key};
		const char *a3[2] = {"EXISTS", c->removed_key};
		redisAppendCommandArgv(s->ctx, 2, a0, NULL);
		redisAppendCommandArgv(s->ctx, 2, a1, NULL);
		redisAppendCommandArgv(s->ctx, 3, a2, NULL);
		redisAppendCommandArgv(s->ctx, 2, a3, NULL);
	}
	if (redisGetReply(s->ctx, (void **)&info) != REDIS_OK)
		goto lost;
	for (nrep = 0; nrep < s->n * V_N; nrep++)
		if (redisGetReply(s->ctx, (void **)&rep[nrep]) != REDIS_OK)
			goto lost;

	if (info->type == REDIS_REPLY_STRING) {
		const char *p = strstr(info->str, "master_replid:");
		if (p != NULL) {
			char id[64];
			size_t l = strcspn(p + 14, "\r\n");
			snprintf(id, sizeof(id), "%.*s", (int)(l < 63 ? l : 63), p + 14);
			if (s->replid[0] && strcmp(id, s->replid) != 0)
				for (size_t i = 0; i < s->n; i++)
					if (s->c[i].synced)
						mark(&s->c[i], MG_KV_RESYNC_REPLID);
			snprintf(s->replid, sizeof(s->replid), "%s", id);
		}
	}
	for (size_t i = 0; i < s->n; i++) {
		struct cl *c = &s->c[i];
		const redisReply *cfg = rep[i * V_N + V_CFG];
		c->present = cfg->type == REDIS_REPLY_STRING;
		if (c->present) {
			snprintf(c->vraw, sizeof(c->vraw), "%.*s", (int)cfg->len, cfg->str);
			if (cfg->len >= sizeof(c->vraw)) {
				c->cfg_ok = false;
				snprintf(c->cfg_why, sizeof(c->cfg_why),
				         "bad cluster config: %zu bytes", (size_t)cfg->len);
			} else {
				config_check(s, c);
			}
		} else {
			c->vraw[0] = '\0';
			c->cfg_ok = false;
		}
	}
	config_cross_check(s);
	for (size_t i = 0; i < s->n && rc == 0; i++)
		rc = verify_cluster(s, &s->c[i], &rep[i * V_N]);
	goto out;
lost:
	disconnect(s);
	rc = -ENOTCONN;
out:
	if (info != NULL)
		freeReplyObject(info);
	for (size_t i = 0; i < nrep; i++)
		freeReplyObject(rep[i]);
	free(rep);
	return rc;
}

/* Resync every cluster that needs it (or is not synced yet), together. */
static int
resync_due(struct mg_kv_sync *s)
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

static int
ensure_connected(struct mg_kv_sync *s)
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

/* ---- public API ---- */

/*
 * The cluster list of @p p: valid names, each once, at most one local
 * cluster, at most MG_KV_SYNC_MAX_CLUSTERS (@p min: 1 at creation, 0 for
 * a reload that drops every cluster). 0, or -EINVAL with @p err set.
 */
static int
clusters_check(const struct mg_kv_sync_params *p, size_t min, struct mg_error *err)
{
	size_t nlocal = 0;

	if (p->n_clusters < min || p->n_clusters > MG_KV_SYNC_MAX_CLUSTERS ||
	    (p->n_clusters > 0 && p->clusters == NULL)) {
		mg_error_set(err, NULL, 0, 0, "kv sync: %zu clusters (%zu to %d)", p->n_clusters,
		             min, MG_KV_SYNC_MAX_CLUSTERS);
		return -EINVAL;
	}
	for (size_t i = 0; i < p->n_clusters; i++) {
		const struct mg_kv_sync_cluster_params *cp = &p->clusters[i];
		if (cp->name == NULL || !mg_kv_cluster_name_valid(cp->name)) {
			mg_error_set(err, NULL, 0, 0, "kv sync: bad cluster name \"%s\"",
			             cp->name ? cp->name : "");
			return -EINVAL;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(p->clusters[j].name, cp->name) == 0) {
				mg_error_set(err, NULL, 0, 0, "kv sync: cluster %s listed twice",
				             cp->name);
				return -EINVAL;
			}
		nlocal += cp->local;
	}
	if (nlocal > 1) {
		mg_error_set(err, NULL, 0, 0, "kv sync: more than one local cluster");
		return -EINVAL;
	}
	if (p->max_delete_share < 0 || p->max_delete_share > 1) {
		mg_error_set(err, NULL, 0, 0, "kv sync: max_delete_share %g is not within 0..1",
		             p->max_delete_share);
		return -EINVAL;
	}
	return 0;
}

/* A new cluster entry (not synced); names were checked. */
static void
cl_init(struct cl *c, const struct mg_kv_sync_cluster_params *cp)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", cp->name);
	snprintf(c->st.name, sizeof(c->st.name), "%s", cp->name);
	c->local = cp->local;
	c->want_id = cp->id;
	snprintf(c->last_id, sizeof(c->last_id), "0-0");
	snprintf(c->why, sizeof(c->why), "not connected");
	mg_kv_cluster_config_key(c->cfg_key, sizeof(c->cfg_key), c->name);
	mg_kv_log_key(c->log_key, sizeof(c->log_key), c->name);
	mg_kv_epoch_key(c->epoch_key, sizeof(c->epoch_key), c->name);
	mg_kv_removed_key(c->removed_key, sizeof(c->removed_key), c->name);
}

struct mg_kv_sync *
mg_kv_sync_create(const struct mg_kv_sync_params *p, struct mg_identity_table *ids,
                  struct mg_ipcache *ipc, struct mg_error *err)
{
	struct mg_kv_sync *s = NULL;
	if (p == NULL || ids == NULL || ipc == NULL || p->url == NULL) {
		mg_error_set(err, NULL, 0, 0, "kv sync: bad parameters");
		goto inval;
	}
	if (clusters_check(p, 1, err) < 0)
		goto inval;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		goto nomem;
	s->p = *p;
	s->p.block_ms = p->block_ms ? p->block_ms : 100;
	s->p.connect_ms = p->connect_ms ? p->connect_ms : 2000;
	s->p.command_ms = p->command_ms ? p->command_ms : s->p.block_ms + 2000;
	if (s->p.command_ms <= s->p.block_ms)
		s->p.command_ms = s->p.block_ms + 1000;
	s->p.verify_ms = p->verify_ms ? p->verify_ms : 1000;
	s->p.backoff_max_ms = p->backoff_max_ms ? p->backoff_max_ms : 5000;
	s->p.max_delete_share = p->max_delete_share > 0 ? p->max_delete_share : 0.5;
	s->p.read_count = p->read_count ? p->read_count : 1000;
	s->p.clusters = NULL;
	s->ids = ids;
	s->ipc = ipc;
	s->mode = mg_identity_table_mode(ids);
	s->backoff_ms = 100;
	s->rnd = (unsigned)mg_time_ns();
	s->url = strdup(p->url);
	s->user = p->user ? strdup(p->user) : NULL;
	s->password = p->password ? strdup(p->password) : NULL;
	s->n = p->n_clusters;
	s->c = calloc(s->n, sizeof(*s->c));
	s->order = calloc(s->n, sizeof(*s->order));
	if (s->url == NULL || (p->user && !s->user) || (p->password && !s->password) ||
	    s->c == NULL || s->order == NULL)
		goto nomem;
	/* The URL forms of the config (redis://..., unix:///...) and the short
	 * ones (host:port, unix:/path), parsed once by the writer's parser. */
	{
		const char *scheme = "", *rest = p->url;

		if (strncmp(rest, "unix:/", 6) == 0 && strncmp(rest, "unix://", 7) != 0) {
			scheme = "unix://";
			rest += 5;
		} else if (strstr(rest, "://") == NULL) {
			scheme = "redis://";
		}
		if (asprintf(&s->urlbuf, "%s%s", scheme, rest) < 0) {
			s->urlbuf = NULL;
			goto nomem;
		}
	}
	if (mg_kv_url_parse(s->urlbuf, &s->u, err) < 0)
		goto inval;
	if (s->u.db != 0) {
		mg_error_set(err, NULL, 0, 0,
		             "kv sync: '%s': only database 0 holds the clusters' state", p->url);
		goto inval;
	}
	if (s->user == NULL && s->u.user != NULL && (s->user = strdup(s->u.user)) == NULL)
		goto nomem;
	if ((s->password == NULL || s->password[0] == '\0') && s->u.password != NULL) {
		free(s->password);
		if ((s->password = strdup(s->u.password)) == NULL)
			goto nomem;
	}
	for (size_t i = 0; i < s->n; i++) {
		cl_init(&s->c[i], &p->clusters[i]);
		s->order[i] = i;
	}
	s->track_owners = s->n > 1;
	return s;
inval:
	mg_kv_sync_free(s);
	errno = EINVAL;
	return NULL;
nomem:
	mg_kv_sync_free(s);
	mg_error_set(err, NULL, 0, 0, "kv sync: out of memory");
	errno = ENOMEM;
	return NULL;
}

void
mg_kv_sync_free(struct mg_kv_sync *s)
{
	if (s == NULL)
		return;
	if (s->ctx)
		redisFree(s->ctx);
	for (size_t i = 0; s->c && i < s->n; i++)
		rmap_clear(&s->c[i].live);
	free(s->c);
	rmap_clear(&s->owners);
	free(s->gone);
	np_free(s);
	free(s->order);
	free(s->url);
	free(s->urlbuf);
	free(s->user);
	free(s->password);
	free(s);
}

/* Conflict order: local first, then lowest cluster id, then config order. */
static void
sort_order(struct mg_kv_sync *s)
{
	for (size_t i = 1; i < s->n; i++) {
		size_t v = s->order[i], j = i;
		for (; j > 0; j--) {
			const struct cl *a = &s->c[s->order[j - 1]], *b = &s->c[v];
			bool before =
			        (b->local && !a->local) ||
			        (b->local == a->local &&
			         (b->cid < a->cid || (b->cid == a->cid && v < s->order[j - 1])));
			if (!before)
				break;
			s->order[j] = s->order[j - 1];
		}
		s->order[j] = v;
	}
}

static void
update_stats(struct mg_kv_sync *s)
{
	sort_order(s);
	for (size_t i = 0; i < s->n; i++) {
		struct cl *c = &s->c[i];
		c->st.cluster_id = c->cid;
		c->st.connected = s->ctx != NULL;
		c->st.present = c->present;
		c->st.synced = c->synced;
		c->st.refused = c->refused;
		c->st.stale = c->stale != MG_KV_STALE_NONE;
		c->st.stale_reason = c->stale;
		c->st.stale_since = c->stale_since;
		c->st.removing = c->removing;
		if (!c->removing)
			c->st.removal_at = 0;
		c->st.removed = c->removed;
		c->st.entries = c->live.n;
		if (s->ctx == NULL && !c->synced && !c->removed)
			snprintf(c->st.why, sizeof(c->st.why), "not connected");
		else
			snprintf(c->st.why, sizeof(c->st.why), "%s", c->why);
		snprintf(c->st.last_id, sizeof(c->st.last_id), "%s", c->last_id);
	}
}

bool
mg_kv_sync_all_synced(const struct mg_kv_sync *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (!s->c[i].synced && !s->c[i].removed)
			return false;
	return true;
}

int
mg_kv_sync_initial(struct mg_kv_sync *s, unsigned timeout_ms, uint32_t **changed, size_t *n_changed,
                   struct mg_error *err)
{
	uint64_t deadline = now_ms() + timeout_ms, wait = 50;
	int rc = 0;
	s->changed = changed;
	s->n_changed = n_changed;
	s->cap_changed = changed && *changed ? *n_changed : 0;
	if ((rc = batch_begin(s)) < 0)
		goto done;
	for (;;) {
		s->next_connect_ms = 0;
		rc = ensure_connected(s);
		if (rc == 0) {
			sort_order(s);
			rc = verify(s);
			if (rc == 0)
				rc = resync_due(s);
		}
		update_stats(s);
		if (rc == -ENOMEM)
			break;
		if (mg_kv_sync_all_synced(s)) {
			rc = 0;
			break;
		}
		uint64_t t = now_ms();
		if (t >= deadline) {
			size_t off = 0;
			char msg[sizeof(err->msg)];
			msg[0] = '\0';
			for (size_t i = 0; i < s->n && off < sizeof(msg); i++)
				if (!s->c[i].synced && !s->c[i].removed)
					off += (size_t)snprintf(
					        msg + off, sizeof(msg) - off, "%s%s: %s",
					        off ? "; " : "", s->c[i].name,
					        s->ctx ? s->c[i].why : "not connected");
			mg_error_set(err, NULL, 0, 0, "kv sync: not synced: %s", msg);
			rc = -ETIMEDOUT;
			break;
		}
		sleep_ms(wait < deadline - t ? wait : deadline - t);
		wait = wait * 2 > 1000 ? 1000 : wait * 2;
	}
done:
	s->next_verify_ms = now_ms() + s->p.verify_ms;
	changed_dedupe(s);
	s->changed = NULL;
	return rc;
}

int
mg_kv_sync_rebind(struct mg_kv_sync *s, struct mg_identity_table *ids, struct mg_ipcache *ipc,
                  bool publish)
{
	int rc = 0;

	s->ids = ids;
	s->ipc = ipc;
	if (!publish)
		return 0;
	/* Identities first: an ipcache entry never names one the table lacks. */
	for (size_t i = 0; i < s->n && rc == 0; i++) {
		struct cl *c = &s->c[i];
		for (size_t j = 0; j < c->live.cap && rc == 0; j++) {
			const struct rec *r = &c->live.v[j];
			if (r->st != 1 || r->k.kind != REC_IDENTITY)
				continue;
			struct mg_labels ls = MG_LABELS_INIT;
			struct mg_error err;
			rc = mg_kv_identity_value_decode(r->value, strlen(r->value), &ls, &err);
			if (rc == 0)
				rc = mg_identity_table_put(ids, r->k.id, &ls, c->cid);
			mg_labels_clear(&ls);
		}
	}
	/* Their named ports from the synced entries: the new table has none yet. */
	for (size_t i = 0; i < s->n_npids && rc == 0; i++)
		rc = np_apply(s, &s->npids[i]);
	/* ip_recompute picks the winner; a prefix two clusters hold is put twice, same value. */
	for (size_t i = 0; i < s->n && rc == 0; i++) {
		struct cl *c = &s->c[i];
		for (size_t j = 0; j < c->live.cap && rc == 0; j++) {
			const struct rec *r = &c->live.v[j];
			if (r->st == 1 && r->k.kind == REC_IP)
				rc = ip_recompute(s, &r->k, c);
		}
	}
	/* Left staged for the caller's commit or publish. */
	if (rc < 0)
		mg_ipcache_discard(ipc);
	return rc;
}

void
mg_kv_sync_request_resync(struct mg_kv_sync *s, enum mg_kv_resync_cause cause)
{
	if ((unsigned)cause >= MG_KV_RESYNC_N)
		cause = MG_KV_RESYNC_OPERATOR;
	for (size_t i = 0; i < s->n; i++) {
		struct cl *c = &s->c[i];
		if (c->removed)
			continue; /* back when its marker goes, not before */
		if (!c->need_resync)
			c->st.resyncs[cause]++;
		c->need_resync = true;
		c->cause = cause;
	}
	s->next_verify_ms = 0;
	/* The last batch may have been discarded: re-stage what it changed. */
	s->repair = true;
}

int
mg_kv_sync_reconfigure(struct mg_kv_sync *s, const struct mg_kv_sync_params *p, uint32_t **changed,
                       size_t *n_changed, struct mg_error *err)
{
	struct cl *nc = NULL;
	size_t *norder = NULL;
	int rc;

	if (p == NULL)
		return -EINVAL;
	if ((rc = clusters_check(p, 0, err)) < 0)
		return rc;
	if (p->n_clusters > 0 && ((nc = calloc(p->n_clusters, sizeof(*nc))) == NULL ||
	                          (norder = calloc(p->n_clusters, sizeof(*norder))) == NULL)) {
		free(nc);
		mg_error_set(err, NULL, 0, 0, "kv sync: out of memory");
		return -ENOMEM;
	}
	s->changed = changed;
	s->n_changed = n_changed;
	s->cap_changed = changed && *changed ? *n_changed : 0;
	if ((rc = batch_begin(s)) < 0)
		goto out;
	/* Clusters that left: everything they held goes, in this batch. */
	for (size_t i = 0; i < s->n; i++) {
		struct cl *c = &s->c[i];
		bool stays = false;
		for (size_t j = 0; j < p->n_clusters && !stays; j++)
			stays = strcmp(p->clusters[j].name, c->name) == 0;
		if (stays)
			continue;
		MG_INFO("kv sync: %s left the configuration: removing its state (%zu entries)",
		        c->name, c->live.n);
		if ((rc = remove_state(s, c)) < 0) {
			mg_error_set(err, NULL, 0, 0, "kv sync: removing cluster %s: %s", c->name,
			             strerror(-rc));
			goto out;
		}
	}
	/* The new list: kept clusters move over with their copies. */
	for (size_t j = 0; j < p->n_clusters; j++) {
		const struct mg_kv_sync_cluster_params *cp = &p->clusters[j];
		struct cl *old = NULL;
		for (size_t i = 0; i < s->n && old == NULL; i++)
			if (strcmp(s->c[i].name, cp->name) == 0)
				old = &s->c[i];
		norder[j] = j;
		if (old == NULL) {
			cl_init(&nc[j], cp);
			continue;
		}
		nc[j] = *old;
		memset(&old->live, 0, sizeof(old->live));
		if (nc[j].local != cp->local || nc[j].want_id != cp->id) {
			nc[j].local = cp->local;
			nc[j].want_id = cp->id;
			if (nc[j].synced)
				mark(&nc[j], MG_KV_RESYNC_CONFIG);
		}
	}
	for (size_t i = 0; i < s->n; i++)
		rmap_clear(&s->c[i].live);
	free(s->c);
	free(s->order);
	s->c = nc;
	s->order = norder;
	s->n = p->n_clusters;
	nc = NULL;
	norder = NULL;
	s->p.max_delete_share = p->max_delete_share > 0 ? p->max_delete_share : 0.5;
	s->p.removal_grace_ms = p->removal_grace_ms;
	s->next_verify_ms = 0; /* new clusters start at the next poll */
	sort_order(s);
	owners_rebuild(s); /* on failure it falls back to walking the clusters */
	update_stats(s);
	rc = 0;
out:
	free(nc);
	free(norder);
	changed_dedupe(s);
	s->changed = NULL;
	return rc;
}

/* XREAD BLOCK over the synced clusters' logs and apply the batch. */
static int
tail(struct mg_kv_sync *s)
{
	const char **argv = NULL;
	size_t *idx = NULL, m = 0;
	char count[16], block[16];
	int argc = 0, applied = 0;

	for (size_t i = 0; i < s->n; i++) {
		const struct cl *c = &s->c[i];
		if (c->synced && !c->need_resync && c->stale == MG_KV_STALE_NONE)
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
		if (c->synced && !c->need_resync && c->stale == MG_KV_STALE_NONE)
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
	redisReply *r = cmd(s, argc, argv);
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
			rc = log_entry_to_shadow(s, c, NULL, e->element[1]);
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

int
mg_kv_sync_poll(struct mg_kv_sync *s, uint32_t **changed, size_t *n_changed)
{
	int rc;
	s->changed = changed;
	s->n_changed = n_changed;
	s->cap_changed = changed && *changed ? *n_changed : 0;
	if ((rc = batch_begin(s)) < 0)
		goto out;
	rc = ensure_connected(s);
	if (rc == -ENOTCONN) {
		uint64_t t = now_ms(), w = s->next_connect_ms > t ? s->next_connect_ms - t : 0;
		sleep_ms(w < s->p.block_ms ? w : s->p.block_ms);
		goto out;
	}
	if (rc < 0)
		goto out;
	if (now_ms() >= s->next_verify_ms) {
		sort_order(s);
		if ((rc = verify(s)) < 0)
			goto out;
		if ((rc = resync_due(s)) < 0)
			goto out;
		s->next_verify_ms = now_ms() + s->p.verify_ms;
	}
	sort_order(s);
	rc = tail(s);
out:
	update_stats(s);
	changed_dedupe(s);
	s->changed = NULL;
	return rc == -ENOTCONN && s->ctx == NULL ? -ENOTCONN : rc;
}

size_t
mg_kv_sync_n_clusters(const struct mg_kv_sync *s)
{
	return s->n;
}

int
mg_kv_sync_stats(const struct mg_kv_sync *s, size_t i, struct mg_kv_sync_stats *out)
{
	if (i >= s->n)
		return -EINVAL;
	*out = s->c[i].st;
	return 0;
}
