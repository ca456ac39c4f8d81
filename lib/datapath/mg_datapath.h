/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The data path: port setup, the worker loop and the per-burst pipeline
 * (parse -> conntrack -> ipcache -> policy -> counters -> tx / drop).
 *
 * Two layers, as every module here:
 *  - mg_dp_classify(): the pipeline over plain byte buffers. No EAL, no
 *    mbuf; unit-tested on its own and used by the benchmark to count
 *    cycles per packet.
 *  - struct mg_datapath: DPDK ports, queues, mempool and worker lcores
 *    around it (mg_datapath.c).
 *
 * Threading: the control thread owns struct mg_datapath. Workers read one
 * snapshot {ipcache view, compiled policy, generation} with one atomic
 * pointer load per loop iteration, and report an RCU quiescent state
 * once per loop iteration. mg_datapath_publish() replaces the snapshot:
 * an ipcache batch (split commit, see mg_ipcache.h), a new policy, or
 * both, go out as one step, so a worker never pairs a view with a policy
 * that was not published with it (docs/architecture.md, "Updates"); the
 * old policy is freed after a grace period. Counters are per worker,
 * plain uint64_t, summed by readers (a reader may see a count a few
 * packets old, never a torn one on 64-bit targets).
 */
#ifndef MG_DATAPATH_H
#define MG_DATAPATH_H

#include <stdbool.h>
#include <stdint.h>

#include "mg_common.h"
#include "mg_ct.h"
#include "mg_dp_monitor.h"
#include "mg_drop.h"
#include "mg_ipcache.h"
#include "mg_pkt.h"
#include "mg_policy.h"

#define MG_DP_MAX_PORTS 16
#define MG_DP_MAX_BURST 256

/** Per-worker counters. One cache-aligned block per worker. */
struct mg_dp_counters {
	uint64_t rx_pkts[MG_DP_MAX_PORTS];
	uint64_t rx_bytes[MG_DP_MAX_PORTS];
	uint64_t tx_pkts[MG_DP_MAX_PORTS];
	uint64_t tx_bytes[MG_DP_MAX_PORTS];
	uint64_t port_drops[MG_DP_MAX_PORTS]; /**< dropped after arriving on this port */
	uint64_t allowed;                     /**< IP packets the policy allowed */
	uint64_t denied_egress;
	uint64_t denied_ingress;
	uint64_t arp;          /**< ARP frames passed */
	uint64_t nd;           /**< IPv6 neighbour discovery passed */
	uint64_t non_ip;       /**< other non-IP frames passed (non_ip: forward) */
	uint64_t ct_tracked;   /**< passed by conntrack without a policy lookup */
	uint64_t ct_rechecked; /**< original-direction packets re-checked after a change */
	uint64_t ct_related;   /**< ICMP errors passed as related to a tracked flow */
	uint64_t frag_passed;  /**< non-first fragments passed after their first */
	uint64_t drops[MG_DROP__MAX];
	uint64_t busy_loops; /**< loop iterations that received something */
	uint64_t loops;
} MG_CACHE_ALIGNED;

/** Add @p src into @p dst, field by field. */
void mg_dp_counters_add(struct mg_dp_counters *dst, const struct mg_dp_counters *src);

/** What the pipeline needs for one burst. */
struct mg_dp_env {
	const struct mg_ipcache_view *ipc; /**< NULL: every address is world */
	const struct mg_policy *policy;    /**< NULL: everything allowed */
	struct mg_ct *ct;                  /**< the worker's table; NULL: stateless */
	uint64_t now;                      /**< conntrack clock (the ct table's hz) */
	uint32_t gen;                      /**< policy/ipcache generation */
	uint8_t zone;                      /**< conntrack zone of the port pair */
	bool non_ip_drop;                  /**< datapath.non_ip: drop */
	bool split_world;                  /**< identity of a miss when ipc is NULL */
	struct mg_dp_mon *mon; /**< NULL: no monitor; else record events per mon->mask */
};

/**
 * Classify up to MG_DP_MAX_BURST frames that arrived on port @p in_port.
 * @param reasons  out: MG_DROP_NONE to forward frame i, else why it is dropped
 * Counts rx, verdicts, passes and drops in @p c (tx is counted by the caller).
 * Allocation-free; the work is staged (parse all, conntrack all, ipcache
 * for what conntrack did not settle, decide all) so lookups are batched.
 *
 * With a conntrack table: replies of tracked flows pass without a policy
 * lookup, the original direction is re-checked only when env->gen moved,
 * a new flow gets an entry when the policy allows it, ICMP errors pass
 * only when their quoted packet belongs to a tracked flow, and non-first
 * fragments follow their first fragment.
 *
 * With env->mon (a worker's event ring, armed with a mask): an event for
 * every dropped frame (MG_DP_MON_DROPS) and for 1 in mon->one_in
 * forwarded frames (MG_DP_MON_VERDICTS), carrying the identities the
 * policy stage used; a full ring counts the event as lost. With
 * env->mon NULL the only cost is that test, once per burst.
 */
void mg_dp_classify(const struct mg_dp_env *env, unsigned in_port, const uint8_t *const *data,
                    const uint32_t *len, unsigned n, uint8_t *reasons, struct mg_dp_counters *c);

/* ---- the DPDK layer ---- */

/**
 * The RSS key ports with several queues are configured with (@p len set to
 * its length): a Toeplitz key under which a flow's two directions hash
 * alike, so both reach the same worker and its conntrack table.
 */
const uint8_t *mg_datapath_rss_key(unsigned *len);

struct mg_config;
struct mg_datapath;

/**
 * Open and start every port of @p cfg (after rte_eal_init), create the
 * mempool and the per-worker state. Workers are the EAL's worker lcores;
 * with none, the main lcore forwards (mg_datapath_run).
 * @param ipc     the ipcache, created with @p qsbr. While the data path
 *                exists its changes are published only through
 *                mg_datapath_publish (a plain mg_ipcache_commit would
 *                rewrite the copy the workers' snapshot still names)
 * @param policy  compiled policy; ownership passes to the data path
 * @return the data path, or NULL with errno set and @p err filled.
 */
struct mg_datapath *mg_datapath_create(const struct mg_config *cfg, struct mg_ipcache *ipc,
                                       struct mg_policy *policy, struct rte_rcu_qsbr *qsbr,
                                       struct mg_error *err);

/** The RCU variable to pass to mg_ipcache_create: sized for every lcore. NULL + errno. */
struct rte_rcu_qsbr *mg_datapath_qsbr_create(void);

/** Start the workers (no-op when the main lcore forwards). 0 or negative errno. */
int mg_datapath_start(struct mg_datapath *dp);

/**
 * Main-lcore loop: forwards when there are no workers, else sleeps and
 * runs @p tick every ~10 ms. Returns once @p stop becomes non-zero or
 * @p tick returns non-zero.
 */
void mg_datapath_run(struct mg_datapath *dp, volatile int *stop,
                     int (*tick)(struct mg_datapath *, void *), void *arg);

/** Stop workers, wait for them, stop and close the ports. */
void mg_datapath_stop(struct mg_datapath *dp);

/**
 * Publish the staged changes of @p ipc and/or @p policy to the workers as
 * ONE step, and bump the generation, so the original direction of every
 * tracked flow is re-checked.
 *
 * Steps: prepare the ipcache commit (when @p ipc has staged changes: the
 * only step that can fail), fill the spare snapshot with the new view (or
 * the current one), the new policy (or the current one) and generation+1,
 * store it with one atomic store, wait a grace period, free the old
 * policy, finish the ipcache commit (its other copy and records).
 *
 * What a worker can observe: in one loop iteration either the old
 * snapshot (old view, old policy, old generation) or the new one, never
 * a mix; once this returns, no worker uses the old one any more, and
 * mg_ipcache_reader(@p ipc) returns the new view.
 *
 * @param ipc     NULL or the data path's ipcache (-EINVAL for another one)
 * @param policy  NULL to keep the current policy; else ownership passes to
 *                the data path on success (the old one is freed)
 * @return the number of ipcache changes published (>= 0), or negative
 *   errno from mg_ipcache_commit_prepare (-ENOMEM): then nothing changed,
 *   the caller still owns @p policy and the ipcache changes stay staged
 *   (the caller discards or retries them).
 */
int mg_datapath_publish(struct mg_datapath *dp, struct mg_ipcache *ipc, struct mg_policy *policy);

/** The policy the workers use now (control thread only). */
const struct mg_policy *mg_datapath_policy(const struct mg_datapath *dp);

/** Conntrack figures summed over the workers. */
void mg_datapath_ct_stats(const struct mg_datapath *dp, struct mg_ct_stats *out);

/**
 * Worker @p w's conntrack table, for the control thread to fill before
 * mg_datapath_start() (benchmarks, state restored at start). NULL when
 * @p w is out of range.
 */
struct mg_ct *mg_datapath_worker_ct(struct mg_datapath *dp, unsigned w);

/** Bytes of memory of every worker's conntrack table. */
size_t mg_datapath_ct_memory(const struct mg_datapath *dp);

/** Sum of every worker's counters into @p out. */
void mg_datapath_counters(const struct mg_datapath *dp, struct mg_dp_counters *out);

/** Number of ports, and the name of port @p i (config order; counters use the same index). */
unsigned mg_datapath_nb_ports(const struct mg_datapath *dp);
const char *mg_datapath_port_name(const struct mg_datapath *dp, unsigned i);

/**
 * What the port's driver counted (rte_eth_stats_get): frames lost before
 * any worker saw them. rx_missed: frames the port had to drop because its
 * receive ring was full (the worker did not poll fast enough: overload);
 * rx_nombuf: receive buffers the driver could not allocate (the mbuf pool
 * ran dry); rx_errors / tx_errors: frames the device received in error or
 * failed to send. Zero where the driver does not count one.
 */
struct mg_dp_port_hw {
	uint64_t rx_missed;
	uint64_t rx_nombuf;
	uint64_t rx_errors;
	uint64_t tx_errors;
};

/** Port @p i's driver counters into @p out (zeroed when it has none). 0 or negative errno. */
int mg_datapath_port_hw(const struct mg_datapath *dp, unsigned i, struct mg_dp_port_hw *out);

/** Number of lcores forwarding. */
unsigned mg_datapath_nb_workers(const struct mg_datapath *dp);

/**
 * Counters of worker @p w alone (its loop and busy-loop counts feed the
 * busy ratio); @p lcore (may be NULL) gets its lcore id. 0 or -EINVAL.
 */
int mg_datapath_worker_counters(const struct mg_datapath *dp, unsigned w, unsigned *lcore,
                                struct mg_dp_counters *out);

/* ---- monitor events (see mg_dp_monitor.h) ---- */

/**
 * What the workers record from now on: MG_DP_MON_DROPS and/or
 * MG_DP_MON_VERDICTS; 0 stops recording (events already in the rings can
 * still be drained). Turning a monitor on discards what an earlier
 * session left in the rings. 0, or -EINVAL for unknown bits.
 */
int mg_datapath_monitor_set(struct mg_datapath *dp, unsigned mask);

/**
 * Move up to @p max events from the workers' rings to @p out (each
 * worker's oldest first; the first worker drained rotates between calls)
 * with their ns field set. Call often enough (~every 10 ms) that the
 * rings (MG_DP_MON_RING events each) do not fill up. Control thread only.
 */
unsigned mg_datapath_monitor_drain(struct mg_datapath *dp, struct mg_dp_event *out, unsigned max);

/** Events lost so far because a worker's ring was full, summed over the workers. */
uint64_t mg_datapath_monitor_lost(const struct mg_datapath *dp);

/* ---- conntrack, served by the workers ---- */

/**
 * List up to @p max live conntrack entries of every worker into @p out
 * (worker 0's first). Each running worker copies its own table at the
 * top of its loop on request (mg_dp_mbox_call, MG_DP_MBOX_TIMEOUT_MS per
 * worker); with no worker running, or from the forwarding main lcore's
 * tick(), the tables are read directly.
 * @param n      out (may be NULL): entries written
 * @param total  out (may be NULL): live entries over all workers (may be > max)
 * @return 0, or -ETIMEDOUT when a worker did not answer (@p n and
 *   @p total then cover the workers before it).
 */
int mg_datapath_ct_list(struct mg_datapath *dp, struct mg_dp_ct_entry *out, size_t max, size_t *n,
                        uint64_t *total);

/**
 * Remove every conntrack entry (and fragment record) of every worker, the
 * same way. @p flushed (may be NULL) gets the live entries removed.
 * 0 or -ETIMEDOUT.
 */
int mg_datapath_ct_flush(struct mg_datapath *dp, uint64_t *flushed);

/** Free everything (after mg_datapath_stop), the policy included. */
void mg_datapath_free(struct mg_datapath *dp);

#endif /* MG_DATAPATH_H */
