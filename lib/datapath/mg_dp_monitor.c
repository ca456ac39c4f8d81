/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The workers' event rings and conntrack mailboxes (see mg_dp_monitor.h):
 * the parts that run outside mg_dp_classify. The producer side of a ring
 * is inline in the header (the pipeline fills slots in place); here are
 * the consumer, and both sides of the mailbox. The mailbox's control side
 * sleeps while it waits: it runs on the control thread only.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "mg_dp_monitor.h"

const char *
mg_dp_event_by_name(unsigned by)
{
	static const char *const names[] = {
	        [MG_DP_BY_PARSER] = "parser",
	        [MG_DP_BY_CONNTRACK] = "conntrack",
	        [MG_DP_BY_POLICY] = "policy",
	        [MG_DP_BY_POLICY_EGRESS] = "policy-egress",
	        [MG_DP_BY_POLICY_INGRESS] = "policy-ingress",
	};

	return by < MG_ARRAY_SIZE(names) ? names[by] : "unknown";
}

void
mg_dp_mon_init(struct mg_dp_mon *m, unsigned worker)
{
	m->head = 0;
	m->tail_cache = 0;
	m->tail = 0;
	m->mask = 0;
	m->one_in = MG_DP_MON_ONE_IN_DEFAULT;
	m->countdown = m->one_in;
	m->worker = (uint16_t)worker;
	m->lost = 0;
}

bool
mg_dp_mon_push(struct mg_dp_mon *m, const struct mg_dp_event *ev)
{
	struct mg_dp_event *slot = mg_dp_mon_slot(m);

	if (slot == NULL)
		return false;
	*slot = *ev;
	mg_dp_mon_commit(m);
	return true;
}

unsigned
mg_dp_mon_pop(struct mg_dp_mon *m, struct mg_dp_event *out, unsigned max)
{
	/* Acquire: the slots up to head were written before head moved. */
	uint32_t head = __atomic_load_n(&m->head, __ATOMIC_ACQUIRE);
	uint32_t tail = m->tail; /* ours: no other thread writes it */
	unsigned n = 0;

	while (n < max && tail != head) {
		out[n++] = m->ev[tail & (MG_DP_MON_RING - 1)];
		tail++;
	}
	/* Release: the producer may reuse the slots only after they were read. */
	__atomic_store_n(&m->tail, tail, __ATOMIC_RELEASE);
	return n;
}

uint64_t
mg_dp_mon_lost(const struct mg_dp_mon *m)
{
	return __atomic_load_n(&m->lost, __ATOMIC_RELAXED);
}

/* ---- conntrack mailbox ---- */

void
mg_dp_mbox_init(struct mg_dp_mbox *mb)
{
	memset(mb, 0, sizeof(*mb));
}

struct list_ctx {
	struct mg_dp_ct_entry *out;
	size_t max, written;
	uint64_t live;
	uint64_t now, hz;
	uint16_t worker;
};

static int
list_one(const struct mg_ct_entry *e, void *arg)
{
	struct list_ctx *c = arg;
	struct mg_dp_ct_entry *o;
	uint64_t left;

	c->live++;
	if (c->written >= c->max)
		return 0; /* keep counting */
	o = &c->out[c->written++];
	o->key = e->key;
	left = e->expires > c->now ? e->expires - c->now : 0;
	/* seconds and remainder apart: left * 1000 may not fit in 64 bits */
	o->remaining_ms = left / c->hz * 1000 + left % c->hz * 1000 / c->hz;
	o->gen = e->gen;
	o->worker = c->worker;
	o->state = e->state;
	o->orig_b = e->orig_b;
	o->fin = e->fin;
	return 0;
}

uint64_t
mg_dp_ct_exec(struct mg_ct *ct, enum mg_dp_ct_op op, unsigned worker, uint64_t now, uint64_t hz,
              struct mg_dp_ct_entry *out, size_t max, size_t *written)
{
	struct list_ctx c = {.out = out,
	                     .max = op == MG_DP_CT_LIST && out != NULL ? max : 0,
	                     .now = now,
	                     .hz = hz != 0 ? hz : 1,
	                     .worker = (uint16_t)worker};

	if (ct != NULL) {
		/* FLUSH counts the live entries first (dead ones awaiting expiry
		 * were already gone for every packet). */
		mg_ct_walk(ct, now, list_one, &c);
		if (op == MG_DP_CT_FLUSH)
			mg_ct_flush(ct);
	}
	if (written != NULL)
		*written = c.written;
	return c.live;
}

bool
mg_dp_mbox_serve(struct mg_dp_mbox *mb, struct mg_ct *ct, unsigned worker, uint64_t now,
                 uint64_t hz)
{
	uint32_t expect = MG_DP_MBOX_POSTED;

	/* Take it unless the control thread withdrew it meanwhile. Acquire:
	 * the request's fields were written before POSTED. */
	if (!__atomic_compare_exchange_n(&mb->state, &expect, MG_DP_MBOX_BUSY, false,
	                                 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return false;
	mb->result = mg_dp_ct_exec(ct, (enum mg_dp_ct_op)mb->op, worker, now, hz, mb->out, mb->max,
	                           &mb->written);
	/* Release: the entries and the result before DONE. */
	__atomic_store_n(&mb->state, MG_DP_MBOX_DONE, __ATOMIC_RELEASE);
	return true;
}

static void
nap(void)
{
	const struct timespec ts = {0, 50000}; /* 50 us: a worker loop is shorter */

	nanosleep(&ts, NULL);
}

int
mg_dp_mbox_call(struct mg_dp_mbox *mb, enum mg_dp_ct_op op, struct mg_dp_ct_entry *out, size_t max,
                unsigned timeout_ms, size_t *written, uint64_t *result)
{
	uint64_t deadline = mg_time_ns() / 1000000u + timeout_ms;
	uint32_t expect;

	if (op != MG_DP_CT_LIST && op != MG_DP_CT_FLUSH)
		return -EINVAL;
	if (__atomic_load_n(&mb->state, __ATOMIC_ACQUIRE) != MG_DP_MBOX_IDLE)
		return -EBUSY;
	mb->op = op;
	mb->out = out;
	mb->max = op == MG_DP_CT_LIST ? max : 0;
	mb->written = 0;
	mb->result = 0;
	/* Release: the worker sees the request's fields once it sees POSTED. */
	__atomic_store_n(&mb->state, MG_DP_MBOX_POSTED, __ATOMIC_RELEASE);

	while (__atomic_load_n(&mb->state, __ATOMIC_ACQUIRE) != MG_DP_MBOX_DONE) {
		if (mg_time_ns() / 1000000u < deadline) {
			nap();
			continue;
		}
		expect = MG_DP_MBOX_POSTED;
		if (__atomic_compare_exchange_n(&mb->state, &expect, MG_DP_MBOX_IDLE, false,
		                                __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE))
			return -ETIMEDOUT; /* withdrawn: the worker never took it */
		/* The worker is serving it: it finishes in one walk of its table,
		 * and must not write into @out after we returned. */
		while (__atomic_load_n(&mb->state, __ATOMIC_ACQUIRE) != MG_DP_MBOX_DONE)
			nap();
		break;
	}
	if (written != NULL)
		*written = mb->written;
	if (result != NULL)
		*result = mb->result;
	__atomic_store_n(&mb->state, MG_DP_MBOX_IDLE, __ATOMIC_RELEASE);
	return 0;
}
