/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Connection tracking: one table per worker lcore, no sharing, no locks.
 *
 * A flow is keyed by its normalised 5-tuple plus a zone (the port pair it
 * crosses): the two endpoints (address, port) are ordered so that both
 * directions of a flow give the same key, and the packet's direction
 * relative to the flow's originator comes out beside the key. An entry is
 * created only when the policy allowed a new flow; from then on packets of
 * the reply direction pass without a policy lookup while the entry lives,
 * and packets of the original direction are re-checked against the policy
 * only when the data path's generation (bumped on every policy or ipcache
 * change) differs from the one stored in the entry.
 *
 * Protocols: TCP runs a state machine (SYN_SENT, SYN_RECV, ESTABLISHED,
 * FIN_WAIT, CLOSING, TIME_WAIT, CLOSED) with a timeout per state; a TCP
 * packet without SYN (or with SYN+ACK) that belongs to no entry is not a
 * new connection unless `tcp_pickup` is set. UDP, SCTP and other
 * protocols keep one entry refreshed by traffic either way. ICMP and
 * ICMPv6 echo request/reply are tracked by (addresses, identifier); other
 * ICMP types are judged by policy packet by packet and create no entry.
 * ICMP errors are related to the flow of their inner header (the caller
 * parses it with mg_pkt_icmp_inner and looks that flow up here).
 *
 * Fragments: a second, smaller table maps (zone, source, destination,
 * protocol, IP id) to "the first fragment passed", with a short timeout,
 * so the rest of the datagram follows its first fragment's verdict.
 *
 * Table: open addressing with linear probing over 64-byte slots, sized to
 * a power of two at least twice the entry limit, deletion by backward
 * shift (no tombstones). Lookups come in bursts and prefetch their slots.
 * Expiry is incremental: every call of mg_ct_expire() examines a bounded
 * number of slots after a cursor, so there is never a full-table sweep on
 * the data path; a lookup also treats an expired entry as absent.
 *
 * Time is whatever monotonic tick the caller passes as `now` (the TSC on
 * the data path, a fake clock in tests); `hz` in the parameters converts
 * the timeouts, which are given in seconds.
 */
#ifndef MG_CT_H
#define MG_CT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_common.h"
#include "mg_pkt.h"

/** Timeouts in seconds. */
struct mg_ct_timeouts {
	uint32_t tcp_syn;         /**< SYN_SENT, SYN_RECV (default 60) */
	uint32_t tcp_established; /**< ESTABLISHED (default 21600) */
	uint32_t tcp_fin;         /**< FIN_WAIT, CLOSING (default 30) */
	uint32_t tcp_close;       /**< TIME_WAIT, CLOSED after RST (default 10) */
	uint32_t udp;             /**< UDP (default 60) */
	uint32_t icmp;            /**< ICMP/ICMPv6 echo (default 30) */
	uint32_t other;           /**< SCTP and other protocols (default 60) */
	uint32_t fragment;        /**< fragments of a datagram after its first (default 10) */
};

/** Defaults, as listed above. */
void mg_ct_timeouts_default(struct mg_ct_timeouts *t);

struct mg_ct_params {
	uint32_t max_entries; /**< flows per table (1 .. 2^26) */
	uint32_t max_frags;   /**< fragment records per table (1 .. 2^22) */
	bool tcp_pickup;      /**< a mid-stream TCP packet may open an ESTABLISHED entry */
	uint64_t hz;          /**< ticks of `now` per second */
	struct mg_ct_timeouts timeouts;
};

enum mg_ct_state {
	MG_CT_SYN_SENT = 1,
	MG_CT_SYN_RECV,
	MG_CT_ESTABLISHED,
	MG_CT_FIN_WAIT, /**< one side sent FIN */
	MG_CT_CLOSING,  /**< both sides sent FIN */
	MG_CT_TIME_WAIT,
	MG_CT_CLOSED, /**< RST seen */
	MG_CT_OPEN,   /**< non-TCP: seen in the original direction only */
	MG_CT_REPLIED /**< non-TCP: seen in both directions */
};

/** Name of a state ("established"), or "unknown". */
const char *mg_ct_state_name(unsigned s);

/** Normalised flow key: endpoint a <= endpoint b (address, then port). 40 bytes. */
struct mg_ct_key {
	uint8_t a[16];
	uint8_t b[16];
	uint16_t pa; /**< port (or ICMP echo identifier) of a */
	uint16_t pb;
	uint8_t family;
	uint8_t proto;
	uint8_t zone; /**< port pair: the lower of the two port indexes */
	uint8_t kind; /**< 0: flow; 1: fragment record (pa/pb = IP id halves) */
};

/** One entry: exactly one cache line. */
struct mg_ct_entry {
	struct mg_ct_key key;
	uint64_t expires; /**< tick after which the entry is dead */
	uint32_t gen;     /**< data path generation the original direction was last checked at */
	uint8_t state;    /**< enum mg_ct_state; 0 = free slot */
	uint8_t orig_b;   /**< 1 when the flow was opened from endpoint b */
	uint8_t fin;      /**< bit 0: originator sent FIN; bit 1: responder sent FIN */
	uint8_t pad[9];
} __attribute__((aligned(64)));

struct mg_ct;

/**
 * A new empty table. NULL with errno set: EINVAL for bad params (a limit
 * out of range, hz 0, a zero timeout), ENOMEM.
 */
struct mg_ct *mg_ct_create(const struct mg_ct_params *p);
void mg_ct_free(struct mg_ct *ct);

/**
 * Normalised key of @p k in @p zone. @p dir is set to 0 when the packet
 * travels a -> b, 1 when b -> a. For ICMP/ICMPv6 echo request and reply,
 * the identifier stands for both ports (so request and reply meet); for
 * other ICMP types and for protocols without ports, ports are 0.
 */
void mg_ct_key_make(const struct mg_flow_key *k, uint8_t zone, struct mg_ct_key *key, uint8_t *dir);

/**
 * Look up @p n keys (n <= 256); out[i] = the live entry or NULL. Expired
 * entries count as absent. Prefetches ahead. The pointers stay valid until
 * the next mg_ct_expire() or mg_ct_flush(): mg_ct_track() and
 * mg_ct_insert() never move an entry (an insert only takes a free slot, a
 * dead one, or the slot of its own key).
 */
void mg_ct_lookup_bulk(struct mg_ct *ct, const struct mg_ct_key *keys, unsigned n, uint64_t now,
                       struct mg_ct_entry **out);

/**
 * One key: the live entry or NULL (for single lookups, such as the inner
 * flow of an ICMP error). Same result as mg_ct_lookup_bulk() with n = 1.
 */
struct mg_ct_entry *mg_ct_lookup(struct mg_ct *ct, const struct mg_ct_key *key, uint64_t now);

/** What the caller must do with a packet after mg_ct_track(). */
enum mg_ct_action {
	MG_CT_PASS,        /**< tracked: forward without a policy lookup */
	MG_CT_RECHECK,     /**< tracked, original direction, generation changed: ask the
			     policy; then mg_ct_confirm() if allowed, drop if not */
	MG_CT_NEW,         /**< no entry; may open a flow: ask the policy; then
			     mg_ct_insert() if allowed */
	MG_CT_NEW_NOTRACK, /**< judge by policy, create no entry (ICMP non-echo) */
	MG_CT_INVALID,     /**< no entry and cannot open one (TCP without SYN): drop,
			     MG_DROP_CT_TCP_NOT_SYN */
};

/**
 * Advance the state of entry @p e (may be NULL: no entry) with a packet of
 * direction @p dir (as from mg_ct_key_make) carrying @p tcp_flags, and say
 * what to do with it. Refreshes the entry's timeout. A TCP SYN (without
 * ACK) from the originator on a CLOSED or TIME_WAIT entry returns
 * MG_CT_NEW: the caller re-admits it through the policy and mg_ct_insert()
 * replaces the entry. Packets that share a flow's key but are not part of
 * it return MG_CT_NEW_NOTRACK and leave the entry untouched: a SYN from
 * the responder (outside SYN_SENT, where it is a simultaneous open), an
 * echo request from the responder or an echo reply from the requester.
 * @param icmp_type  for ICMP/ICMPv6: the type (echo request 8/128 opens a flow)
 */
enum mg_ct_action mg_ct_track(struct mg_ct *ct, struct mg_ct_entry *e, uint8_t dir, uint8_t proto,
                              uint8_t tcp_flags, uint8_t icmp_type, uint32_t gen, uint64_t now);

/** The policy allowed a RECHECK packet: remember @p gen in @p e. */
static inline void
mg_ct_confirm(struct mg_ct_entry *e, uint32_t gen)
{
	e->gen = gen;
}

/**
 * Create (or replace) the entry of an allowed new flow whose first packet
 * has direction @p dir and @p tcp_flags.
 * @return the entry, or NULL when the table holds max_entries live flows
 *   (the caller drops the packet: MG_DROP_CT_FULL).
 */
struct mg_ct_entry *mg_ct_insert(struct mg_ct *ct, const struct mg_ct_key *key, uint8_t dir,
                                 uint8_t tcp_flags, uint32_t gen, uint64_t now);

/* ---- fragments ---- */

/**
 * Remember that the first fragment of datagram (@p k's family, addresses
 * and protocol, @p ip_id) passed, in @p zone.
 * @return 0, or -ENOSPC when max_frags records are live.
 */
int mg_ct_frag_add(struct mg_ct *ct, const struct mg_flow_key *k, uint32_t ip_id, uint8_t zone,
                   uint64_t now);

/** True if the first fragment of that datagram passed and its record lives. */
bool mg_ct_frag_find(struct mg_ct *ct, const struct mg_flow_key *k, uint32_t ip_id, uint8_t zone,
                     uint64_t now);

/* ---- housekeeping ---- */

/** Examine up to @p budget slots of each table after the cursors; free dead entries. Returns how many. */
unsigned mg_ct_expire(struct mg_ct *ct, uint64_t now, unsigned budget);

/** Remove every entry. */
void mg_ct_flush(struct mg_ct *ct);

struct mg_ct_stats {
	uint64_t entries; /**< live flow entries (dead ones not yet expired included) */
	uint64_t frags;   /**< fragment records */
	uint64_t created;
	uint64_t expired;   /**< removed by mg_ct_expire or replaced after dying */
	uint64_t full;      /**< inserts refused: table full */
	uint64_t frag_full; /**< mg_ct_frag_add refused: fragment table full */
};

void mg_ct_stats_get(const struct mg_ct *ct, struct mg_ct_stats *s);

/** Bytes of memory of the table (both parts). */
size_t mg_ct_memory(const struct mg_ct *ct);

/** Call @p fn for every live entry; stop and return its value when non-zero (control path). */
int mg_ct_walk(const struct mg_ct *ct, uint64_t now, int (*fn)(const struct mg_ct_entry *, void *),
               void *arg);

#endif /* MG_CT_H */
