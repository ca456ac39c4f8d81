/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The ipcache's life and its updates: create and free, the staged log of
 * puts and deletes, and the commit that publishes a batch to the readers
 * (design in mg_ipcache.h and docs/ipcache.md). Left-right: there are two
 * copies and readers use the one `active` names (or the one a caller of
 * the split commit published itself). Commit = prepare (reserve room in
 * both copies, the only step that can fail; apply the batch to the idle
 * copy) + finish (make it active, wait a grace period, apply the batch to
 * the old copy, update the records). Staged changes are kept as a log
 * with at most one operation per prefix (a second change to a staged
 * prefix rewrites its operation), so the order of a batch never matters
 * and commit work is proportional to the number of distinct prefixes
 * changed.
 */
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <rte_rcu_qsbr.h>

#include "ipcache_priv.h"

/* ---- lifecycle ---- */

struct mg_ipcache *
mg_ipcache_create(const struct mg_ipcache_params *p)
{
	struct mg_ipcache_params defaults = {0, false, NULL};
	struct mg_ipcache *ipc;
	uint32_t cap = DTAB_MIN_CAP;

	if (p == NULL)
		p = &defaults;
	ipc = ipc_dp_alloc(sizeof(*ipc));
	if (ipc == NULL)
		goto err;
	ipc->qsbr = p->qsbr;
	/* Host routes dominate: start those tables big enough for half the hint each. */
	while ((uint64_t)cap * LOAD_NUM < (uint64_t)(p->entries_hint / 2) * LOAD_DEN &&
	       cap < (1u << 30))
		cap *= 2;
	ipc->host_cap_hint = cap;
	ipc->views[0] = ipc_view_create(p->split_world);
	ipc->views[1] = ipc_view_create(p->split_world);
	if (ipc->views[0] == NULL || ipc->views[1] == NULL)
		goto err;
	if (ipc_cmap_init(&ipc->records, p->entries_hint) < 0 || ipc_cmap_init(&ipc->staged, 0) < 0)
		goto err;
	ipc->grow = calloc(2, sizeof(*ipc->grow));
	ipc->fcnt4 = calloc(1u << F4_BITS, sizeof(*ipc->fcnt4));
	ipc->fcnt6 = calloc(1u << F6_BITS, sizeof(*ipc->fcnt6));
	if (ipc->grow == NULL || ipc->fcnt4 == NULL || ipc->fcnt6 == NULL)
		goto err;
	ipc->active_idx = 0;
	__atomic_store_n(&ipc->active, ipc->views[0], __ATOMIC_RELEASE);
	return ipc;
err:
	mg_ipcache_free(ipc);
	errno = ENOMEM;
	return NULL;
}

void
mg_ipcache_free(struct mg_ipcache *ipc)
{
	if (ipc == NULL)
		return;
	ipc_view_free(ipc->views[0]);
	ipc_view_free(ipc->views[1]);
	free(ipc->records.r);
	free(ipc->staged.r);
	free(ipc->ops);
	free(ipc->grow);
	free(ipc->fcnt4);
	free(ipc->fcnt6);
	ipc_dp_free(ipc);
}

/* ---- staging ---- */

static int
ops_push(struct mg_ipcache *ipc, const struct pkey *k, uint32_t h, uint32_t id, uint32_t cluster_id)
{
	if (ipc->n_ops == ipc->cap_ops) {
		size_t ncap = ipc->cap_ops ? ipc->cap_ops * 2 : 64;
		struct op *n = realloc(ipc->ops, ncap * sizeof(*n));

		if (n == NULL)
			return -ENOMEM;
		ipc->ops = n;
		ipc->cap_ops = ncap;
	}
	if (ipc_cmap_reserve(&ipc->staged, ipc->staged.count + 1) < 0)
		return -ENOMEM;
	ipc->ops[ipc->n_ops].k = *k;
	ipc->ops[ipc->n_ops].id = id;
	ipc->ops[ipc->n_ops].cluster_id = cluster_id;
	ipc->ops[ipc->n_ops].h = h;
	ipc_cmap_set_h(&ipc->staged, k, h, (uint32_t)ipc->n_ops, 0);
	ipc->n_ops++;
	return 0;
}

int
mg_ipcache_put(struct mg_ipcache *ipc, const struct mg_ipcache_entry *e)
{
	struct rec *s, *r;
	struct pkey k;
	uint32_t h;

	if (ipc->prepared)
		return mg_errno_set(EBUSY);
	if (e == NULL || e->identity == 0 || ipc_pkey_make(&k, e->family, e->addr, e->plen) < 0)
		return mg_errno_set(EINVAL);
	h = ipc_pkey_hash(&k);
	s = ipc_cmap_find_h(&ipc->staged, &k, h);
	if (s != NULL) {
		ipc->ops[s->val].id = e->identity;
		ipc->ops[s->val].cluster_id = e->cluster_id;
		return 0;
	}
	r = ipc_cmap_find_h(&ipc->records, &k, h);
	if (r != NULL && r->val == e->identity && r->val2 == e->cluster_id)
		return 0; /* already committed as asked: nothing to publish */
	if (ops_push(ipc, &k, h, e->identity, e->cluster_id) < 0)
		return mg_errno_set(ENOMEM);
	return 0;
}

int
mg_ipcache_del(struct mg_ipcache *ipc, uint8_t family, const uint8_t *addr, uint8_t plen)
{
	struct rec *s;
	struct pkey k;
	uint32_t h;

	if (ipc->prepared)
		return mg_errno_set(EBUSY);
	if (ipc_pkey_make(&k, family, addr, plen) < 0)
		return mg_errno_set(EINVAL);
	h = ipc_pkey_hash(&k);
	s = ipc_cmap_find_h(&ipc->staged, &k, h);
	if (s != NULL) {
		struct op *o = &ipc->ops[s->val];

		if (o->id == 0)
			return mg_errno_set(ENOENT); /* already staged for removal */
		if (ipc_cmap_find_h(&ipc->records, &k, h) != NULL) {
			o->id = 0; /* committed: the staged put becomes a removal */
			return 0;
		}
		/* Only staged: forget the put. Move the last op into its place. */
		{
			size_t at = s->val;

			ipc_cmap_del(&ipc->staged, s);
			ipc->n_ops--;
			if (at != ipc->n_ops) {
				ipc->ops[at] = ipc->ops[ipc->n_ops];
				ipc_cmap_find_h(&ipc->staged, &ipc->ops[at].k, ipc->ops[at].h)
				        ->val = (uint32_t)at;
			}
		}
		return 0;
	}
	if (ipc_cmap_find_h(&ipc->records, &k, h) == NULL)
		return mg_errno_set(ENOENT);
	if (ops_push(ipc, &k, h, 0, 0) < 0)
		return mg_errno_set(ENOMEM);
	return 0;
}

void
mg_ipcache_discard(struct mg_ipcache *ipc)
{
	/* A prepared batch is already in the idle copy: only finish may end it. */
	if (ipc->prepared)
		return;
	ipc->n_ops = 0;
	ipc_cmap_clear(&ipc->staged);
}

size_t
mg_ipcache_pending(const struct mg_ipcache *ipc)
{
	return ipc->n_ops;
}

/* ---- commit and publication ---- */

void
mg_ipcache_grace_period(struct rte_rcu_qsbr *q)
{
	uint64_t token;

	if (q == NULL)
		return;
	/*
	 * start + check rather than rte_rcu_qsbr_synchronize(): both are
	 * inline, so sanitizers see the acquire/release pairs they rely on.
	 * Spin briefly (readers on their own cores report within a loop
	 * iteration), then yield: the control thread may share a core with a
	 * reader (tests, small deployments), and spinning would only delay
	 * the quiescent report it waits for.
	 */
	token = rte_rcu_qsbr_start(q);
	for (unsigned spins = 0; rte_rcu_qsbr_check(q, token, false) == 0; spins++) {
		if (spins < 1000)
			rte_pause();
		else
			sched_yield();
	}
}

const struct mg_ipcache_view *
mg_ipcache_commit_prepare(struct mg_ipcache *ipc)
{
	uint32_t puts4[V4_LENS] = {0}, puts6[V6_LENS] = {0};
	struct mg_ipcache_view *idle, *old;
	struct grow *g = ipc->grow;
	size_t puts = 0, n = ipc->n_ops;

	if (ipc->prepared) {
		errno = EBUSY;
		return NULL;
	}
	if (n == 0)
		return ipc->views[ipc->active_idx];
	if (n > INT32_MAX) {
		errno = E2BIG;
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		const struct op *o = &ipc->ops[i];

		if (o->id == 0)
			continue;
		puts++;
		if (o->k.family == AF_INET)
			puts4[o->k.plen]++;
		else
			puts6[o->k.plen]++;
	}
	idle = ipc->views[ipc->active_idx ^ 1];
	old = ipc->views[ipc->active_idx];
	/*
	 * Every allocation happens here, before anything is published: after
	 * this point the commit cannot fail, so both copies always agree. The
	 * active copy's new arrays wait in g[1] until the grace period is over.
	 */
	if (ipc_cmap_reserve(&ipc->records, ipc->records.count + puts) < 0)
		goto nomem;
	if (ipc_grow_prepare(ipc, idle, puts4, puts6, &g[0]) < 0)
		goto nomem;
	if (ipc_grow_prepare(ipc, old, puts4, puts6, &g[1]) < 0) {
		ipc_grow_free(&g[0]);
		goto nomem;
	}
	/* The idle copy is no reader's: it may be rewritten freely. */
	ipc_grow_install(idle, &g[0]);
	ipc_view_apply(ipc, idle, true);
	ipc->prepared = true;
	return idle;
nomem:
	errno = ENOMEM;
	return NULL;
}

int
mg_ipcache_commit_finish(struct mg_ipcache *ipc)
{
	struct mg_ipcache_view *idle, *old;
	struct grow *g = ipc->grow;
	size_t n = ipc->n_ops;

	if (!ipc->prepared)
		return 0; /* nothing was staged at prepare */
	idle = ipc->views[ipc->active_idx ^ 1];
	old = ipc->views[ipc->active_idx];
	/*
	 * The caller may have handed the prepared copy to its readers already;
	 * from here on it is the active one for mg_ipcache_reader() too. The
	 * grace period then covers both kinds of readers of the old copy.
	 */
	__atomic_store_n(&ipc->active, idle, __ATOMIC_RELEASE);
	ipc->active_idx ^= 1;
	mg_ipcache_grace_period(ipc->qsbr);
	ipc_grow_install(old, &g[1]);
	ipc_view_apply(ipc, old, false);
	ipc->prepared = false;

	/* The records: each op's slot is prefetched OPS_AHEAD ops before it is probed. */
	for (size_t i = 0; i < n && i < OPS_AHEAD; i++)
		ipc_cmap_prefetch(&ipc->records, ipc->ops[i].h);
	for (size_t i = 0; i < n; i++) {
		const struct op *o = &ipc->ops[i];

		if (i + OPS_AHEAD < n)
			ipc_cmap_prefetch(&ipc->records, ipc->ops[i + OPS_AHEAD].h);
		if (o->id != 0) {
			ipc_cmap_set_h(&ipc->records, &o->k, o->h, o->id, o->cluster_id);
		} else {
			struct rec *r = ipc_cmap_find_h(&ipc->records, &o->k, o->h);

			if (r != NULL)
				ipc_cmap_del(&ipc->records, r);
		}
	}
	ipc->n_ops = 0;
	ipc_cmap_clear(&ipc->staged);
	if (ipc->cap_ops > 4096 && n * 8 < ipc->cap_ops) {
		/* Give back the log of an unusually big batch; failure keeps the old one. */
		struct op *small = realloc(ipc->ops, 4096 * sizeof(*small));

		if (small != NULL) {
			ipc->ops = small;
			ipc->cap_ops = 4096;
		}
	}
	return (int)n;
}

int
mg_ipcache_commit(struct mg_ipcache *ipc)
{
	/* prepare refuses a pending split commit (EBUSY) and prepares nothing
	 * for an empty batch (finish then returns 0); finish publishes the
	 * prepared copy itself (the active pointer). */
	if (mg_ipcache_commit_prepare(ipc) == NULL)
		return -errno;
	return mg_ipcache_commit_finish(ipc);
}
