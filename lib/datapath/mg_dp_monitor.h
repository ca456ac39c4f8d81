/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What `meshgatectl monitor` and `meshgatectl ct` need from the workers,
 * without stopping them or sharing a lock with them:
 *
 *  - Event rings. Each worker owns one single-producer/single-consumer
 *    ring of struct mg_dp_event. mg_dp_classify() fills it (when the
 *    env's monitor is set) with every drop and a 1-in-N sample of the
 *    frames it forwards; the control thread drains it. A full ring never
 *    blocks the worker: the event is counted as lost.
 *
 *  - A conntrack mailbox. Each worker's table is touched by that worker
 *    only, so a control-thread request to list or flush it is posted to
 *    the worker's mailbox and performed by the worker at the top of its
 *    loop, between bursts; the control thread waits (bounded) for the
 *    acknowledgement.
 *
 * Both are plain C with GCC __atomic builtins (the C11 memory model): no
 * EAL, so the unit tests drive them from plain threads.
 */
#ifndef MG_DP_MONITOR_H
#define MG_DP_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_common.h"
#include "mg_ct.h"

/** Monitor mask bits: what the workers record. 0: nothing, at no cost. */
#define MG_DP_MON_DROPS 0x1u    /**< every dropped frame (while its ring has room) */
#define MG_DP_MON_VERDICTS 0x2u /**< 1 in N forwarded frames */
#define MG_DP_MON_ALL (MG_DP_MON_DROPS | MG_DP_MON_VERDICTS)

/**
 * N of the workers' forwarded-frame sample. One event per 64 frames keeps
 * a worker forwarding 10 Mpps at ~150k events/s, which one drain every
 * 10 ms of a ring of MG_DP_MON_RING events still keeps up with; drops are
 * not sampled (they are what an operator looks for).
 */
#define MG_DP_MON_ONE_IN_DEFAULT 64

/** Events per worker ring (a power of two). */
#define MG_DP_MON_RING 2048

/** Who settled a frame's fate. */
enum mg_dp_event_by {
	MG_DP_BY_PARSER,         /**< parser or frame class: malformed, ARP, ND, non-IP */
	MG_DP_BY_CONNTRACK,      /**< tracked flow, related ICMP error, fragment, table full */
	MG_DP_BY_POLICY,         /**< policy allowed: source egress and destination ingress */
	MG_DP_BY_POLICY_EGRESS,  /**< policy denied: the source's egress */
	MG_DP_BY_POLICY_INGRESS, /**< policy denied: the destination's ingress */
};

/** Name of an enum mg_dp_event_by value ("policy-egress"), or "unknown". */
const char *mg_dp_event_by_name(unsigned by);

/**
 * One frame's fate. Layer-3/4 fields are those the parser got to: zero
 * (family 0) for non-IP frames and for frames malformed before their
 * addresses; ports are 0 without a layer-4 header.
 */
struct mg_dp_event {
	uint64_t tsc;    /**< the worker's clock at the burst (env->now: TSC ticks) */
	uint64_t ns;     /**< CLOCK_REALTIME ns; set by mg_datapath_monitor_drain, else 0 */
	uint8_t src[16]; /**< network order; IPv4 in the first 4 bytes */
	uint8_t dst[16];
	uint32_t src_id; /**< identities (0 when the frame is not IP) */
	uint32_t dst_id;
	uint32_t len;   /**< frame length (first segment) */
	uint16_t sport; /**< TCP/UDP/SCTP ports; ICMP echo identifier in sport */
	uint16_t dport;
	uint16_t worker;   /**< worker index */
	uint8_t in_port;   /**< port index (config order) */
	uint8_t reason;    /**< enum mg_drop_reason; MG_DROP_NONE: forwarded */
	uint8_t by;        /**< enum mg_dp_event_by */
	uint8_t family;    /**< MG_AF_INET, MG_AF_INET6, or 0 */
	uint8_t proto;     /**< IP protocol */
	uint8_t icmp_type; /**< ICMP/ICMPv6 type and code */
	uint8_t icmp_code;
	uint8_t cls; /**< enum mg_pkt_class (when the frame parsed) */
};

/**
 * A worker's event ring and its sampling state. Producer fields and
 * consumer fields sit on separate cache lines; the producer rereads the
 * consumer's index only when its cached copy says the ring is full.
 */
struct mg_dp_mon {
	/* Producer (worker) side. */
	uint32_t head;       /**< next slot to fill; published with release */
	uint32_t tail_cache; /**< last tail seen by the producer */
	uint32_t mask;       /**< MG_DP_MON_* recorded in the current burst */
	uint32_t one_in;     /**< N of the forwarded-frame sample */
	uint32_t countdown;  /**< forwarded frames until the next sample */
	uint16_t worker;
	uint64_t lost; /**< events dropped: ring full (read by the consumer) */
	/* Consumer (control thread) side. */
	uint32_t tail MG_CACHE_ALIGNED; /**< next slot to read; published with release */
	struct mg_dp_event ev[MG_DP_MON_RING] MG_CACHE_ALIGNED;
};

/** Empty ring of worker @p worker; samples 1 in MG_DP_MON_ONE_IN_DEFAULT, records nothing. */
void mg_dp_mon_init(struct mg_dp_mon *m, unsigned worker);

/** Set what the next bursts record (producer side: the worker, per burst). */
static inline void
mg_dp_mon_arm(struct mg_dp_mon *m, uint32_t mask, uint32_t one_in)
{
	m->mask = mask;
	if (one_in != m->one_in) {
		m->one_in = one_in == 0 ? 1 : one_in;
		m->countdown = m->one_in;
	}
}

/**
 * Producer: a free slot to fill, or NULL (and one more lost event) when
 * the ring is full. mg_dp_mon_commit() publishes it.
 */
static inline struct mg_dp_event *
mg_dp_mon_slot(struct mg_dp_mon *m)
{
	if (MG_UNLIKELY(m->head - m->tail_cache >= MG_DP_MON_RING)) {
		m->tail_cache = __atomic_load_n(&m->tail, __ATOMIC_ACQUIRE);
		if (m->head - m->tail_cache >= MG_DP_MON_RING) {
			__atomic_store_n(&m->lost, m->lost + 1, __ATOMIC_RELAXED);
			return NULL;
		}
	}
	return &m->ev[m->head & (MG_DP_MON_RING - 1)];
}

static inline void
mg_dp_mon_commit(struct mg_dp_mon *m)
{
	__atomic_store_n(&m->head, m->head + 1, __ATOMIC_RELEASE);
}

/** Producer: copy @p ev in. False (counted as lost) when the ring is full. */
bool mg_dp_mon_push(struct mg_dp_mon *m, const struct mg_dp_event *ev);

/** Consumer: move up to @p max events, oldest first, to @p out. Returns how many. */
unsigned mg_dp_mon_pop(struct mg_dp_mon *m, struct mg_dp_event *out, unsigned max);

/** Consumer: events lost so far because the ring was full. */
uint64_t mg_dp_mon_lost(const struct mg_dp_mon *m);

/* ---- conntrack mailbox ---- */

/** One conntrack entry as listed for the control thread. */
struct mg_dp_ct_entry {
	struct mg_ct_key key;
	uint64_t remaining_ms; /**< lifetime left */
	uint32_t gen;          /**< generation the original direction was last checked at */
	uint16_t worker;       /**< whose table */
	uint8_t state;         /**< enum mg_ct_state */
	uint8_t orig_b;        /**< 1 when the flow was opened from endpoint b */
	uint8_t fin;           /**< FIN bits, as in struct mg_ct_entry */
};

enum mg_dp_ct_op {
	MG_DP_CT_LIST = 1, /**< copy up to max live entries out; result = live entries */
	MG_DP_CT_FLUSH,    /**< remove every entry; result = live entries removed */
};

/** States of a mailbox. Only the transitions below happen. */
enum mg_dp_mbox_state {
	MG_DP_MBOX_IDLE,   /**< control: may post */
	MG_DP_MBOX_POSTED, /**< control -> worker (take it) or control -> IDLE (withdraw) */
	MG_DP_MBOX_BUSY,   /**< worker: serving; nobody else touches the request */
	MG_DP_MBOX_DONE,   /**< worker -> control: result ready */
};

/** A worker's mailbox: one request at a time, from one control thread. */
struct mg_dp_mbox {
	uint32_t state; /**< enum mg_dp_mbox_state */
	uint32_t op;    /**< enum mg_dp_ct_op */
	struct mg_dp_ct_entry *out;
	size_t max;
	size_t written;
	uint64_t result;
};

/** Bounded wait of mg_dp_mbox_call() used by the data path. */
#define MG_DP_MBOX_TIMEOUT_MS 1000

void mg_dp_mbox_init(struct mg_dp_mbox *mb);

/** Worker: is a request waiting? One relaxed load: call it once per loop. */
static inline bool
mg_dp_mbox_pending(const struct mg_dp_mbox *mb)
{
	return __atomic_load_n(&mb->state, __ATOMIC_RELAXED) == MG_DP_MBOX_POSTED;
}

/**
 * Worker: take a posted request, perform it on @p ct (the caller's own
 * table) and acknowledge it. @p now / @p hz: the table's clock.
 * @return true when a request was served.
 */
bool mg_dp_mbox_serve(struct mg_dp_mbox *mb, struct mg_ct *ct, unsigned worker, uint64_t now,
                      uint64_t hz);

/**
 * Control thread: post @p op, wait up to @p timeout_ms for the worker to
 * serve it, collect the result. A request the worker has not taken by
 * then is withdrawn (-ETIMEDOUT; the worker will never touch @p out);
 * one it is serving is waited for, so @p out is never written after this
 * returns.
 * @param out, max   LIST: where the entries go
 * @param written    out (may be NULL): entries written to @p out
 * @param result     out (may be NULL): see enum mg_dp_ct_op
 * @return 0, -ETIMEDOUT, -EINVAL (bad op), -EBUSY (a request is pending:
 *   concurrent control threads)
 */
int mg_dp_mbox_call(struct mg_dp_mbox *mb, enum mg_dp_ct_op op, struct mg_dp_ct_entry *out,
                    size_t max, unsigned timeout_ms, size_t *written, uint64_t *result);

/**
 * Perform @p op on @p ct directly (what mg_dp_mbox_serve does for the
 * worker): for a table no worker is using. Returns the result of @p op;
 * @p written gets the number of entries copied to @p out.
 */
uint64_t mg_dp_ct_exec(struct mg_ct *ct, enum mg_dp_ct_op op, unsigned worker, uint64_t now,
                       uint64_t hz, struct mg_dp_ct_entry *out, size_t max, size_t *written);

#endif /* MG_DP_MONITOR_H */
