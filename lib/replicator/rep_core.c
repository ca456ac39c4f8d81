/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The writer's turn (mg_replicator_tick): the clustermesh directory (a file
 * added starts a cluster, a file changed restarts its source, a file gone
 * drains the cluster), the sources' messages into the copies, each value
 * checked as the gateways check it and passed through the filter, and the
 * resulting puts and deletes queued to Redis when this replica holds the
 * lease. A standby keeps its copies warm, so a takeover only diffs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mg_hash.h"
#include "rep_filter.h"
#include "rep_priv.h"

/* Messages handled per cluster and turn: the turn stays short. */
#define TURN_MSGS 64

static const char *const refuse_names[REP_R_COUNT] = {"parse", "range", "cluster", "key", "size"};

const char *
rep_refuse_name(enum rep_refuse_reason r)
{
	return r < REP_R_COUNT ? refuse_names[r] : "?";
}

int
rep_redis_key(const struct rep_cluster *cl, int prefix, const char *k, char *buf, size_t size)
{
	int n = prefix == REP_IDS
	                ? snprintf(buf, size, "%s/%s/id/%s", MG_KV_CACHE_IDENTITIES, cl->name, k)
	                : snprintf(buf, size, "%s/%s/%s", MG_KV_CACHE_IP, cl->name, k);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : n;
}

void
rep_cluster_free(struct rep_cluster *cl)
{
	if (cl == NULL)
		return;
	rep_src_stop(cl->src);
	for (int p = 0; p < REP_NPREFIX; p++)
		rep_map_clear(&cl->map[p]);
	free(cl);
}

static void
refusal(struct rep_cluster *cl, enum rep_refuse_reason r, int p, const char *key, const char *why)
{
	struct rep_refusal *f = &cl->refusals[cl->refusal_next];
	cl->refused[r]++;
	rep_redis_key(cl, p, key, f->key, sizeof(f->key));
	snprintf(f->why, sizeof(f->why), "%.159s", why);
	f->at = rep_wall_ms();
	cl->refusal_next = (cl->refusal_next + 1) % REP_REFUSALS_KEPT;
	if (cl->n_refusals < REP_REFUSALS_KEPT)
		cl->n_refusals++;
	MG_WARN("replicator: %s: not written: %s: %s", cl->name, f->key, why);
}

/* The identity's filter decision (its labels decoded again: only with a filter). */
static bool
identity_kept(struct mg_replicator *r, const struct rep_ent *e)
{
	struct mg_labels ls = MG_LABELS_INIT;
	struct mg_error err = {{0}};
	if (r->filter == NULL)
		return true;
	if (mg_kv_identity_value_decode(e->val, e->vlen, &ls, &err) < 0)
		return false;
	bool kept = mg_rep_filter_identity(r->filter, e->id, &ls);
	mg_labels_clear(&ls);
	return kept;
}

/* Whether a valid ipcache entry passes the filter: its identity was kept. */
static bool
ip_kept(const struct mg_replicator *r, const struct rep_cluster *cl, uint32_t id)
{
	char k[16];
	if (r->filter == NULL || mg_identity_is_reserved(id))
		return true;
	snprintf(k, sizeof(k), "%u", id);
	const struct rep_ent *ie = rep_map_get(&cl->map[REP_IDS], k, strlen(k));
	return ie != NULL && ie->kept;
}

/* May this replica write the cluster's data now? */
static bool
writable(const struct mg_replicator *r, const struct rep_cluster *cl)
{
	/* Also while a full resync is pending: each change is etcd's truth when
	 * it arrives; the diff at the end of the list fixes the rest. */
	return r->holder && r->w != NULL && cl->cfg_ok && !cl->draining;
}

static void
queue_change(struct mg_replicator *r, struct rep_cluster *cl, int p, struct rep_ent *e, bool put)
{
	char key[MG_KV_KEY_MAX];
	struct mg_error err = {{0}};
	if (!writable(r, cl) || rep_redis_key(cl, p, e->key, key, sizeof(key)) < 0)
		return;
	if (!cl->probed && rep_probe_fresh(r, cl) < 0)
		return;
	int rc = mg_kv_writer_set_cluster(r->w, cl->name, &err);
	if (rc == 0)
		rc = mg_kv_writer_set_unlogged(r->w, cl->bulk && put, &err);
	if (rc == 0)
		rc = put ? mg_kv_writer_queue_put(r->w, key, e->val, NULL, &err)
		         : mg_kv_writer_queue_del(r->w, key, NULL, &err);
	if (rc < 0) {
		rep_redis_lost(r, rc, &err);
		return;
	}
	e->sent = put;
	if (put)
		cl->puts++;
	else
		cl->dels++;
}

/* Decide whether @p e (new or changed) is written. */
static void
judge(struct mg_replicator *r, struct rep_cluster *cl, int p, struct rep_ent *e)
{
	char why[REP_WHY_MAX];
	struct rep_check_ctx ck;
	uint32_t id = 0;
	rep_check_ctx_init(&ck, r->c, cl->name, cl->cfg.id);
	int rc = rep_check(&ck, p, e->key, e->klen, e->val, e->vlen, &id, why, sizeof(why));
	e->id = id;
	bool kept = rc == 0 && (p == REP_IDS ? identity_kept(r, e) : ip_kept(r, cl, id));
	if (rc == REP_V_ID_ZERO)
		cl->id_zero++;
	else if (rc > 0)
		refusal(cl, (enum rep_refuse_reason)(rc - 1), p, e->key, why);
	else if (!kept)
		cl->filtered++;
	e->valid = rc == 0;
	e->kept = kept;
}

/* An identity's filter decision changed: its ipcache entries follow it. */
static void
refilter_ips(struct mg_replicator *r, struct rep_cluster *cl, uint32_t id)
{
	size_t i = 0;
	struct rep_ent *e;
	if (r->filter == NULL)
		return;
	while ((e = rep_map_next(&cl->map[REP_IP], &i)) != NULL) {
		if (!e->valid || e->id != id)
			continue;
		bool kept = ip_kept(r, cl, id);
		if (kept != (bool)e->kept) {
			e->kept = kept;
			queue_change(r, cl, REP_IP, e, kept);
		}
	}
}

static void
put_one(struct mg_replicator *r, struct rep_cluster *cl, int p, const struct rep_kv *kv,
        uint32_t gen)
{
	bool changed;
	struct rep_ent *old = rep_map_get(&cl->map[p], kv->key, kv->klen);
	bool was_kept = old != NULL && old->kept;
	struct rep_ent *e =
	        rep_map_put(&cl->map[p], kv->key, kv->klen, kv->val, kv->vlen, &changed);
	if (e == NULL) {
		MG_ERR("replicator: %s: out of memory", cl->name);
		return;
	}
	e->gen = gen;
	if (!changed)
		return;
	judge(r, cl, p, e);
	if (e->kept)
		queue_change(r, cl, p, e, true);
	else if (was_kept)
		queue_change(r, cl, p, e, false);
	if (p == REP_IDS && was_kept != (bool)e->kept)
		refilter_ips(r, cl, e->id);
}

static void
del_one(struct mg_replicator *r, struct rep_cluster *cl, int p, struct rep_ent *e)
{
	bool was_kept = e->kept;
	uint32_t id = e->id;
	if (was_kept)
		queue_change(r, cl, p, e, false);
	rep_map_del(&cl->map[p], e);
	if (p == REP_IDS && was_kept)
		refilter_ips(r, cl, id);
}

/* The end of a list: what it did not see again is gone. */
static void
sweep(struct mg_replicator *r, struct rep_cluster *cl, int p)
{
	size_t i = 0, n = 0, cap = 0;
	char **gone = NULL;
	struct rep_ent *e;
	while ((e = rep_map_next(&cl->map[p], &i)) != NULL) {
		if (e->gen == cl->gen[p])
			continue;
		if (mg_grow(&gone, &cap, n, sizeof(*gone), 64) < 0 ||
		    (gone[n] = strdup(e->key)) == NULL) {
			MG_ERR("replicator: %s: out of memory", cl->name);
			break;
		}
		n++;
	}
	for (size_t j = 0; j < n; j++) {
		e = rep_map_get(&cl->map[p], gone[j], strlen(gone[j]));
		if (e != NULL)
			del_one(r, cl, p, e);
		free(gone[j]);
	}
	free(gone);
}

/* The cluster config the source read: refused when another cluster has its id. */
static void
on_config(struct mg_replicator *r, struct rep_cluster *cl, const struct rep_msg *m)
{
	bool id_changed = cl->have_cfg && cl->cfg.id != m->cfg.id;
	cl->have_cfg = m->have_cfg;
	cl->cfg = m->cfg;
	cl->cached_prefixes = m->cached_prefixes;
	cl->cfg_ok = true;
	cl->cfg_why[0] = '\0';
	for (size_t i = 0; i < r->n_cl; i++) {
		const struct rep_cluster *o = r->cl[i];
		if (o != cl && o->cfg_ok && !o->draining && o->cfg.id == cl->cfg.id) {
			snprintf(cl->cfg_why, sizeof(cl->cfg_why),
			         "cluster id %u is cluster %s's already: refused", cl->cfg.id,
			         o->name);
			cl->cfg_ok = false;
		}
	}
	if (!cl->cfg_ok) {
		MG_ERR("replicator: %s: %s", cl->name, cl->cfg_why);
		return;
	}
	if (id_changed) {
		/* A new id changes every identity's validity: judge them all again. */
		for (int p = 0; p < REP_NPREFIX; p++)
			for (size_t i = 0; i < cl->map[p].mask + 1 && cl->map[p].slots; i++)
				if (cl->map[p].slots[i].key != NULL)
					judge(r, cl, p, &cl->map[p].slots[i]);
		cl->need_full = true;
	}
	/* Before the first full write of this tenure, that write brings the config. */
	if (r->holder && r->w != NULL && !cl->draining && cl->config_written)
		rep_write_config(r, cl);
}

static void
apply(struct mg_replicator *r, struct rep_cluster *cl, struct rep_msg *m)
{
	int p = m->prefix;
	switch (m->kind) {
	case REP_M_CONFIG:
		on_config(r, cl, m);
		break;
	case REP_M_LIST_BEGIN:
		cl->gen[p] = m->gen;
		cl->listing[p] = true;
		break;
	case REP_M_KVS:
		for (size_t i = 0; i < m->n; i++)
			put_one(r, cl, p, &m->kv[i], m->gen);
		break;
	case REP_M_LIST_END:
		sweep(r, cl, p);
		cl->listing[p] = false;
		cl->listed[p] = true;
		if (cl->listed[REP_IDS] && cl->listed[REP_IP] && !cl->listing[REP_IDS] &&
		    !cl->listing[REP_IP]) {
			cl->synced = true;
			cl->resyncs++;
		}
		break;
	case REP_M_EVENTS:
		cl->events += m->n;
		for (size_t i = 0; i < m->n; i++) {
			const struct rep_kv *kv = &m->kv[i];
			if (kv->val != NULL) {
				put_one(r, cl, p, kv, cl->gen[p]);
				continue;
			}
			struct rep_ent *e = rep_map_get(&cl->map[p], kv->key, kv->klen);
			if (e != NULL)
				del_one(r, cl, p, e);
		}
		break;
	case REP_M_HEARTBEAT:
		if (r->holder && r->w != NULL && cl->cfg_ok && !cl->draining)
			rep_write_heartbeat(r, cl);
		break;
	case REP_M_RESET:
		break;
	}
}

/* ---- the clustermesh directory ---- */

static struct rep_cluster *
find(struct mg_replicator *r, const char *name)
{
	for (size_t i = 0; i < r->n_cl; i++)
		if (strcmp(r->cl[i]->name, name) == 0)
			return r->cl[i];
	return NULL;
}

/* What a config file and the certificates it names look like now. */
static uint64_t
file_sig(const char *path, const struct mg_rep_etcd_config *e)
{
	char buf[65536];
	uint64_t h = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n;
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			h = mg_hash_bytes(buf, (size_t)n, h + 1);
		close(fd);
	}
	const char *files[3] = {e->ca_file, e->cert_file, e->key_file};
	for (int i = 0; i < 3; i++) {
		struct stat st;
		if (files[i] == NULL || stat(files[i], &st) < 0)
			continue;
		uint64_t v[4] = {(uint64_t)st.st_mtim.tv_sec, (uint64_t)st.st_mtim.tv_nsec,
		                 (uint64_t)st.st_size, (uint64_t)st.st_ino};
		h = mg_hash_bytes(v, sizeof(v), h + 1);
	}
	return h;
}

static void
start_source(struct mg_replicator *r, struct rep_cluster *cl, const struct mg_rep_etcd_config *e)
{
	struct mg_error err = {{0}};
	rep_src_stop(cl->src);
	cl->src = rep_src_start(r, e, &err);
	if (cl->src == NULL)
		MG_ERR("replicator: %s", err.msg);
	for (int p = 0; p < REP_NPREFIX; p++)
		cl->listing[p] = false;
}

static void
add_or_update(struct mg_replicator *r, const char *name, const char *path,
              const struct mg_rep_etcd_config *e)
{
	struct rep_cluster *cl = find(r, name);
	uint64_t sig = file_sig(path, e);
	if (cl == NULL) {
		if (mg_grow(&r->cl, &r->cap_cl, r->n_cl, sizeof(*r->cl), 8) < 0 ||
		    (cl = calloc(1, sizeof(*cl))) == NULL) {
			MG_ERR("replicator: %s: out of memory", name);
			return;
		}
		snprintf(cl->name, sizeof(cl->name), "%.32s", name);
		for (int p = 0; p < REP_NPREFIX; p++)
			rep_map_init(&cl->map[p]);
		r->cl[r->n_cl++] = cl;
		MG_INFO("replicator: cluster %s added (%s)", name, path);
	} else if (cl->draining) {
		MG_INFO("replicator: cluster %s is back: its drain is canceled", name);
		rep_undrain(r, cl);
	} else if (cl->file_sig == sig && cl->src != NULL) {
		cl->present = true;
		return;
	} else {
		MG_INFO("replicator: cluster %s: %s changed: reconnecting", name, path);
	}
	cl->present = true;
	cl->file_sig = sig;
	snprintf(cl->file, sizeof(cl->file), "%.511s", path);
	start_source(r, cl, e);
}

static void
scan_dir(struct mg_replicator *r)
{
	const struct mg_rep_config *c = r->c;
	DIR *d = opendir(c->config_dir);
	struct dirent *de;
	if (d == NULL) {
		/* A directory that went away is not a reason to forget every cluster. */
		snprintf(r->dir_error, sizeof(r->dir_error), "%s: %s", c->config_dir,
		         strerror(errno));
		return;
	}
	r->dir_error[0] = '\0';
	for (size_t i = 0; i < r->n_cl; i++)
		r->cl[i]->present = false;
	r->n_files = 0;
	while ((de = readdir(d)) != NULL) {
		char path[1024];
		struct stat st;
		struct mg_rep_etcd_config e;
		struct mg_error err = {{0}};
		/* hidden files: the ..data links of a mounted Kubernetes secret */
		if (de->d_name[0] == '.' || !mg_kv_cluster_name_valid(de->d_name))
			continue;
		if (strcmp(de->d_name, c->cluster_name) == 0)
			continue; /* our own cluster, as Cilium skips it */
		snprintf(path, sizeof(path), "%s/%s", c->config_dir, de->d_name);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (1 << 20))
			continue;
		int rc = mg_rep_etcd_config_load(path, de->d_name, c->config_dir, &e, &err);
		rep_file_note(r, de->d_name, rc, err.msg);
		if (rc < 0) {
			/* A broken file keeps the cluster as it was: a typo must not drain it. */
			struct rep_cluster *cl = find(r, de->d_name);
			if (cl != NULL)
				cl->present = true;
			continue;
		}
		if (rc == 1)
			add_or_update(r, de->d_name, path, &e);
		mg_rep_etcd_config_clear(&e);
	}
	closedir(d);
	for (size_t i = 0; i < r->n_cl; i++) {
		struct rep_cluster *cl = r->cl[i];
		if (!cl->present && !cl->draining) {
			MG_INFO("replicator: cluster %s: its config file is gone: draining",
			        cl->name);
			rep_src_stop(cl->src);
			cl->src = NULL;
			cl->draining = true;
			cl->drain_at = rep_now_ms() + c->drain_grace_ms;
			if (r->holder && r->w != NULL)
				rep_drain_start(r, cl);
		}
	}
}

/* ---- the turn ---- */

static size_t
take_messages(struct mg_replicator *r, struct rep_cluster *cl)
{
	struct rep_msg *m;
	size_t n = 0;
	while (n < TURN_MSGS && cl->src != NULL && (m = rep_src_take(cl->src)) != NULL) {
		apply(r, cl, m);
		rep_msg_free(m);
		n++;
	}
	return n;
}

static void
remove_cluster(struct mg_replicator *r, size_t i)
{
	rep_cluster_free(r->cl[i]);
	memmove(&r->cl[i], &r->cl[i + 1], (r->n_cl - i - 1) * sizeof(*r->cl));
	r->n_cl--;
}

static void
cluster_turn(struct mg_replicator *r, size_t *i, size_t *msgs)
{
	struct rep_cluster *cl = r->cl[*i];
	if (cl->draining) {
		if (rep_now_ms() >= cl->drain_at && r->holder && r->w != NULL &&
		    rep_drain_finish(r, cl) == 0) {
			MG_INFO("replicator: cluster %s drained", cl->name);
			remove_cluster(r, *i);
			(*i)--;
		}
		return;
	}
	*msgs += take_messages(r, cl);
	if (!r->holder || r->w == NULL || !cl->cfg_ok || !cl->synced)
		return;
	if (cl->need_full || !cl->config_written) {
		if (rep_write_full(r, cl) < 0)
			return;
	}
	if (!cl->canaries_written)
		rep_write_canaries(r, cl);
}

void
rep_io_begin(void *arg)
{
	struct mg_replicator *r = arg;
	r->io_since = rep_now_ms();
	pthread_mutex_unlock(&r->lock);
}

void
rep_io_end(void *arg)
{
	struct mg_replicator *r = arg;
	pthread_mutex_lock(&r->lock);
	r->io_since = 0;
}

double
rep_io_seconds(const struct mg_replicator *r)
{
	uint64_t now = rep_now_ms();
	return r->io_since != 0 && now > r->io_since ? (double)(now - r->io_since) / 1e3 : 0.0;
}

void
mg_replicator_tick(struct mg_replicator *r)
{
	struct mg_error err = {{0}};
	pthread_mutex_lock(&r->lock);
	uint64_t now = rep_now_ms();
	if (now >= r->scan_next) {
		scan_dir(r);
		r->scan_next = now + r->c->rescan_ms;
	}
	rep_lease_tick(r);
	size_t msgs = 0;
	for (size_t i = 0; i < r->n_cl; i++)
		cluster_turn(r, &i, &msgs);
	if (r->w != NULL) {
		/* Busy: what is queued goes out, its replies are read while the
		 * next turn works. Idle: every reply read, errors seen now. */
		int rc = msgs > 0 ? mg_kv_writer_send(r->w, &err) : mg_kv_writer_flush(r->w, &err);
		if (rc < 0)
			rep_redis_lost(r, rc, &err);
	}
	rep_loss_check(r);
	pthread_mutex_unlock(&r->lock);
}

/*
 * The filter. Its policy part is dropped when the policies name world or
 * CIDR peers, or named ports for any peer: a gateway sees the address of an
 * identity not written as world, so a flow with it could take world's
 * verdict, which may allow what the whole copy denies. Never widen: then
 * only the namespace part (an explicit choice of scope) applies.
 */
static int
filter_create(struct mg_replicator *r, struct mg_error *err)
{
	struct mg_rep_filter_info info;
	r->filter = mg_rep_filter_create(r->c->filter, err);
	if (r->filter == NULL)
		return -EINVAL;
	mg_rep_filter_info(r->filter, &info);
	if (r->c->filter->n_sources == 0 || !(info.world_peers || info.named_any_peer))
		return 0;
	snprintf(r->filter_note, sizeof(r->filter_note),
	         "the filter's policies name %s: their selectors are not used (an address not "
	         "written would look like world to the gateways and could be allowed)",
	         info.world_peers ? "world or CIDR peers" : "named ports for any peer");
	MG_WARN("replicator: %s", r->filter_note);
	mg_rep_filter_free(r->filter);
	r->filter = NULL;
	struct mg_rep_filter_config ns = *r->c->filter;
	ns.sources = NULL;
	ns.n_sources = 0;
	if (ns.n_ns_include == 0 && ns.n_ns_exclude == 0)
		return 0;
	r->filter = mg_rep_filter_create(&ns, err);
	return r->filter != NULL ? 0 : -EINVAL;
}

struct mg_replicator *
mg_replicator_create(const struct mg_rep_config *c, struct mg_error *err)
{
	struct mg_replicator *r = calloc(1, sizeof(*r));
	uint8_t rnd[16];
	if (r == NULL) {
		mg_error_set(err, NULL, 0, 0, "out of memory");
		return NULL;
	}
	r->c = c;
	pthread_mutex_init(&r->lock, NULL);
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		mg_error_set(err, NULL, 0, 0, "getrandom: %s", strerror(errno));
		mg_replicator_free(r);
		return NULL;
	}
	for (int i = 0; i < 16; i++)
		snprintf(r->token + 2 * i, 3, "%02x", rnd[i]);
	if (c->filter != NULL && filter_create(r, err) < 0) {
		mg_replicator_free(r);
		return NULL;
	}
	r->started_at = rep_wall_ms();
	return r;
}

void
mg_replicator_free(struct mg_replicator *r)
{
	if (r == NULL)
		return;
	/* The lease goes through the writer, whose waits let the lock go. */
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->n_cl; i++)
		rep_src_stop(r->cl[i]->src), r->cl[i]->src = NULL;
	rep_lease_release(r);
	pthread_mutex_unlock(&r->lock);
	for (size_t i = 0; i < r->n_cl; i++)
		rep_cluster_free(r->cl[i]);
	free(r->cl);
	mg_kv_writer_close(r->w);
	if (r->filter != NULL)
		mg_rep_filter_free(r->filter);
	free(r->files);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
