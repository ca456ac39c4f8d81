/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The DPDK layer of the data path: one mempool, every configured port
 * opened by device name and started with one rx and one tx queue per
 * worker, and the worker loop (rx burst -> mg_dp_classify -> tx to the
 * peer port or free). Start-up is staged as in Gatekeeper: allocate,
 * configure ports, then launch. Nothing is drained from the receive
 * queues before the workers start, so the first frames of a port are
 * judged like every other.
 */
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mg_config.h"
#include "mg_datapath.h"
#include "mg_dp_kstats.h"

#define MAX_WORKERS RTE_MAX_LCORE
#define MBUF_CACHE 256
#define TX_RETRIES 8
/* Conntrack slots examined per loop iteration: expiry is spread over the
 * loop, never a sweep of the whole table. */
#define CT_EXPIRE_BUDGET 16

/* Toeplitz key for which hash(a, b) == hash(b, a): both directions of a
 * flow land on the same queue, so per-worker state needs no sharing. */
static uint8_t sym_rss_key[40] = {
        0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
        0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
        0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
};

const uint8_t *
mg_datapath_rss_key(unsigned *len)
{
	*len = sizeof(sym_rss_key);
	return sym_rss_key;
}

struct dp_port {
	char name[MG_CONFIG_NAME_MAX];
	uint16_t port_id;
	unsigned peer; /* index in mg_datapath.ports */
	uint16_t nb_queues;
	bool started;
	struct mg_dp_port_hw hw_last; /* the driver's counters when the port stopped */
	/* net_af_packet: the driver's sockets, whose kernel drops count as rx_missed */
	int ksocks[MG_DP_MAX_KSOCKS];
	unsigned n_ksocks;
	uint64_t kdrops; /* accumulated: reading them resets the kernel's count */
};

static int port_hw_read(const struct dp_port *p, struct mg_dp_port_hw *out);

struct dp_worker {
	struct mg_dp_counters cnt; /* first: cache aligned */
	struct mg_ct *ct;          /* this worker's flows; touched by no other thread */
	struct mg_datapath *dp;
	unsigned index; /* queue index on every port */
	unsigned lcore;
	struct mg_dp_mon *mon;  /* event ring: this worker produces, the control thread drains */
	struct mg_dp_mbox mbox; /* conntrack requests, served between bursts */
};

/*
 * What a worker reads once per loop iteration: the ipcache copy, the
 * policy and the generation, published together by one pointer store, so
 * a worker never pairs a view with a policy that was not published with
 * it. Two slots: the one the workers may read and the one the next
 * publication fills; a slot is rewritten only after the grace period that
 * followed its replacement.
 */
struct dp_snap {
	const struct mg_ipcache_view *view; /* NULL: no ipcache, all world */
	struct mg_policy *policy;
	uint32_t gen; /* bumped on every publication */
};

struct mg_datapath {
	struct dp_worker *workers; /* rte_zmalloc'd, one per forwarding lcore */
	unsigned nb_workers;
	bool main_forwards; /* no worker lcores: the main lcore forwards */
	struct dp_port ports[MG_DP_MAX_PORTS];
	unsigned nb_ports;
	unsigned burst;
	bool non_ip_drop;
	bool split_world;
	struct rte_mempool *pool;
	struct mg_ipcache *ipc;
	struct dp_snap *snap; /* what the workers read (__atomic_load_n) */
	struct dp_snap slots[2];
	struct rte_rcu_qsbr *qsbr;
	volatile int stop;
	bool launched;
	/* monitor: set by the control thread, read by workers once per burst */
	uint32_t mon_mask;          /* MG_DP_MON_*; 0: no events */
	unsigned mon_next;          /* first worker of the next drain (fairness) */
	uint64_t mon_tsc0, mon_ns0; /* TSC and CLOCK_REALTIME at arming */
};

struct rte_rcu_qsbr *
mg_datapath_qsbr_create(void)
{
	size_t sz = rte_rcu_qsbr_get_memsize(RTE_MAX_LCORE);
	struct rte_rcu_qsbr *v;

	v = rte_zmalloc("mg_qsbr", sz, RTE_CACHE_LINE_SIZE);
	if (v == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	if (rte_rcu_qsbr_init(v, RTE_MAX_LCORE) != 0) {
		rte_free(v);
		errno = EINVAL;
		return NULL;
	}
	return v;
}

static int
port_setup(struct mg_datapath *dp, struct dp_port *p, const struct mg_config *cfg,
           const char *device, struct mg_error *err)
{
	struct rte_eth_conf conf = {0};
	struct rte_eth_dev_info info;
	uint16_t nq, rxd = (uint16_t)cfg->rx_desc, txd = (uint16_t)cfg->tx_desc, q;
	int rc, socket;

	rc = rte_eth_dev_get_port_by_name(device, &p->port_id);
	if (rc != 0) {
		mg_error_set(
		        err, NULL, 0, 0,
		        "port %s: no DPDK device named '%s' (check eal --vdev / PCI allow list)",
		        p->name, device);
		return -ENODEV;
	}
	rc = rte_eth_dev_info_get(p->port_id, &info);
	if (rc != 0) {
		mg_error_set(err, NULL, 0, 0, "port %s: cannot read device info: %s", p->name,
		             rte_strerror(-rc));
		return rc;
	}
	nq = (uint16_t)RTE_MAX(dp->nb_workers, 1u);
	if (nq > info.max_rx_queues || nq > info.max_tx_queues) {
		mg_error_set(err, NULL, 0, 0,
		             "port %s: %u workers need %u queues but %s offers %u rx / %u tx",
		             p->name, nq, nq, device, info.max_rx_queues, info.max_tx_queues);
		return -EINVAL;
	}
	p->nb_queues = nq;
	if (nq > 1) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_key = sym_rss_key;
		conf.rx_adv_conf.rss_conf.rss_key_len = sizeof(sym_rss_key);
		conf.rx_adv_conf.rss_conf.rss_hf =
		        (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) &
		        info.flow_type_rss_offloads;
		if (conf.rx_adv_conf.rss_conf.rss_hf == 0)
			conf.rxmode.mq_mode = RTE_ETH_MQ_RX_NONE;
		if (info.hash_key_size != 0 && info.hash_key_size != sizeof(sym_rss_key))
			conf.rx_adv_conf.rss_conf.rss_key = NULL;
	}
	rc = rte_eth_dev_configure(p->port_id, nq, nq, &conf);
	if (rc != 0) {
		mg_error_set(err, NULL, 0, 0, "port %s: configure: %s", p->name, rte_strerror(-rc));
		return rc;
	}
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(p->port_id, &rxd, &txd);
	if (rc != 0) {
		mg_error_set(err, NULL, 0, 0, "port %s: descriptors: %s", p->name,
		             rte_strerror(-rc));
		return rc;
	}
	socket = rte_eth_dev_socket_id(p->port_id);
	if (socket < 0)
		socket = (int)rte_socket_id();
	for (q = 0; q < nq; q++) {
		rc = rte_eth_rx_queue_setup(p->port_id, q, rxd, (unsigned)socket, NULL, dp->pool);
		if (rc == 0)
			rc = rte_eth_tx_queue_setup(p->port_id, q, txd, (unsigned)socket, NULL);
		if (rc != 0) {
			mg_error_set(err, NULL, 0, 0, "port %s: queue %u setup: %s", p->name, q,
			             rte_strerror(-rc));
			return rc;
		}
	}
	/* A bump in the wire must see every frame, whatever its MAC. */
	rc = rte_eth_promiscuous_enable(p->port_id);
	if (rc != 0 && rc != -ENOTSUP)
		MG_WARN("port %s: cannot enable promiscuous mode: %s", p->name, rte_strerror(-rc));
	rc = rte_eth_dev_start(p->port_id);
	if (rc != 0) {
		mg_error_set(err, NULL, 0, 0, "port %s: start: %s", p->name, rte_strerror(-rc));
		return rc;
	}
	p->started = true;
	if (strcmp(info.driver_name, "net_af_packet") == 0)
		p->n_ksocks = mg_dp_packet_socks((int)info.if_index, p->ksocks, MG_DP_MAX_KSOCKS);
	return 0;
}

struct mg_datapath *
mg_datapath_create(const struct mg_config *cfg, struct mg_ipcache *ipc, struct mg_policy *policy,
                   struct rte_rcu_qsbr *qsbr, struct mg_error *err)
{
	struct mg_datapath *dp;
	unsigned i, lcore, nmbufs;
	int rc = -EINVAL;

	if (cfg->n_ports == 0 || cfg->n_ports > MG_DP_MAX_PORTS) {
		mg_error_set(err, NULL, 0, 0, "datapath: %zu ports (1 to %u supported)",
		             cfg->n_ports, MG_DP_MAX_PORTS);
		errno = EINVAL;
		return NULL;
	}
	dp = calloc(1, sizeof(*dp));
	if (dp == NULL) {
		mg_error_set(err, NULL, 0, 0, "datapath: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	dp->ipc = ipc;
	dp->slots[0].view = ipc != NULL ? mg_ipcache_reader(ipc) : NULL;
	dp->slots[0].policy = policy;
	dp->snap = &dp->slots[0];
	dp->qsbr = qsbr;
	dp->burst = RTE_MIN(cfg->burst, (unsigned)MG_DP_MAX_BURST);
	dp->non_ip_drop = cfg->non_ip == MG_NON_IP_DROP;
	dp->split_world = cfg->split_world;
	dp->nb_workers = rte_lcore_count() - 1;
	dp->main_forwards = dp->nb_workers == 0;
	if (dp->main_forwards)
		dp->nb_workers = 1;

	dp->workers = rte_zmalloc("mg_workers", dp->nb_workers * sizeof(*dp->workers),
	                          RTE_CACHE_LINE_SIZE);
	if (dp->workers == NULL) {
		mg_error_set(err, NULL, 0, 0, "datapath: out of memory for %u workers",
		             dp->nb_workers);
		rc = -ENOMEM;
		goto err;
	}
	i = 0;
	if (dp->main_forwards) {
		dp->workers[0].lcore = rte_get_main_lcore();
	} else {
		RTE_LCORE_FOREACH_WORKER(lcore)
		{
			dp->workers[i].lcore = lcore;
			i++;
		}
	}
	for (i = 0; i < dp->nb_workers; i++) {
		struct mg_ct_params cp = cfg->ct;

		dp->workers[i].dp = dp;
		dp->workers[i].index = i;
		mg_dp_mbox_init(&dp->workers[i].mbox);
		dp->workers[i].mon =
		        rte_zmalloc("mg_monitor", sizeof(struct mg_dp_mon), RTE_CACHE_LINE_SIZE);
		if (dp->workers[i].mon == NULL) {
			mg_error_set(err, NULL, 0, 0, "datapath: out of memory for event rings");
			rc = -ENOMEM;
			goto err;
		}
		mg_dp_mon_init(dp->workers[i].mon, i);
		cp.hz = rte_get_tsc_hz();
		dp->workers[i].ct = mg_ct_create(&cp);
		if (dp->workers[i].ct == NULL) {
			rc = -errno;
			mg_error_set(
			        err, NULL, 0, 0,
			        "conntrack: cannot create a table of %u entries for worker %u: %s",
			        cp.max_entries, i, strerror(errno));
			goto err;
		}
	}

	nmbufs = cfg->mbufs;
	if (nmbufs < cfg->n_ports * dp->nb_workers * (cfg->rx_desc + cfg->tx_desc) +
	                     dp->nb_workers * (MBUF_CACHE + dp->burst))
		MG_WARN("datapath: %u mbufs may be too few for %zu ports x %u queues x %u+%u "
		        "descriptors; raise datapath.mbufs",
		        nmbufs, cfg->n_ports, dp->nb_workers, cfg->rx_desc, cfg->tx_desc);
	dp->pool = rte_pktmbuf_pool_create("mg_mbufs", nmbufs, MBUF_CACHE, 0,
	                                   RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	if (dp->pool == NULL) {
		mg_error_set(err, NULL, 0, 0,
		             "datapath: cannot create a pool of %u mbufs: %s (eal -m too small?)",
		             nmbufs, rte_strerror(rte_errno));
		rc = -ENOMEM;
		goto err;
	}

	dp->nb_ports = (unsigned)cfg->n_ports;
	for (i = 0; i < dp->nb_ports; i++) {
		snprintf(dp->ports[i].name, sizeof(dp->ports[i].name), "%s", cfg->ports[i].name);
		dp->ports[i].peer = cfg->ports[i].peer_index;
	}
	for (i = 0; i < dp->nb_ports; i++) {
		rc = port_setup(dp, &dp->ports[i], cfg, cfg->ports[i].device, err);
		if (rc != 0)
			goto err;
	}
	return dp;
err:
	dp->slots[0].policy = NULL; /* the caller keeps ownership on failure */
	mg_datapath_stop(dp);
	mg_datapath_free(dp);
	errno = -rc;
	return NULL;
}

/* Send @p n mbufs on (port, queue); free and count what the queue refuses. */
static inline void
tx_flush(struct dp_worker *w, const struct dp_port *out, unsigned out_idx, unsigned in_idx,
         struct rte_mbuf **m, unsigned n)
{
	unsigned sent = 0, tries = 0, i;
	uint64_t bytes = 0;

	/* Counted before the transmit: a sent mbuf is the driver's (it may
	 * already be back in its pool), an unsent one is still ours. */
	for (i = 0; i < n; i++)
		bytes += rte_pktmbuf_pkt_len(m[i]);
	while (sent < n && tries++ < TX_RETRIES)
		sent += rte_eth_tx_burst(out->port_id, (uint16_t)w->index, m + sent,
		                         (uint16_t)(n - sent));
	for (i = sent; i < n; i++)
		bytes -= rte_pktmbuf_pkt_len(m[i]);
	w->cnt.tx_bytes[out_idx] += bytes;
	w->cnt.tx_pkts[out_idx] += sent;
	if (MG_UNLIKELY(sent < n)) {
		w->cnt.drops[MG_DROP_TX_FULL] += n - sent;
		w->cnt.port_drops[in_idx] += n - sent;
		rte_pktmbuf_free_bulk(m + sent, n - sent);
	}
}

/*
 * The worker's event ring for this burst, or NULL: one relaxed load when
 * no monitor is active. Relaxed is enough: the ring itself is published
 * by its own head/tail, the mask only says whether to fill it.
 */
static inline struct mg_dp_mon *
monitor_arm(struct dp_worker *w)
{
	uint32_t mask = __atomic_load_n(&w->dp->mon_mask, __ATOMIC_RELAXED);

	if (MG_LIKELY(mask == 0))
		return NULL;
	mg_dp_mon_arm(w->mon, mask, MG_DP_MON_ONE_IN_DEFAULT);
	return w->mon;
}

/* A conntrack request of the control thread, served between bursts (the
 * table's entry pointers of the last burst are no longer held). */
static inline void
worker_mailbox(struct dp_worker *w)
{
	if (MG_UNLIKELY(mg_dp_mbox_pending(&w->mbox)))
		mg_dp_mbox_serve(&w->mbox, w->ct, w->index, rte_rdtsc(), rte_get_tsc_hz());
}

/* One pass over every port this worker polls. Returns frames received. */
static inline unsigned
worker_poll(struct dp_worker *w)
{
	struct mg_datapath *dp = w->dp;
	struct rte_mbuf *rx[MG_DP_MAX_BURST], *fwd[MG_DP_MAX_BURST], *drop[MG_DP_MAX_BURST];
	const uint8_t *data[MG_DP_MAX_BURST];
	uint32_t len[MG_DP_MAX_BURST];
	uint8_t reasons[MG_DP_MAX_BURST];
	const struct dp_snap *snap;
	struct mg_dp_env env;
	unsigned p, i, n, nf, nd, total = 0;

	/* One load: the view, the policy and the generation belong together
	 * (mg_datapath_publish). Held until this iteration's quiescent report. */
	snap = __atomic_load_n(&dp->snap, __ATOMIC_ACQUIRE);
	env.gen = snap->gen;
	env.ipc = snap->view;
	env.policy = snap->policy;
	env.ct = w->ct;
	env.now = rte_rdtsc();
	env.non_ip_drop = dp->non_ip_drop;
	env.split_world = dp->split_world;

	for (p = 0; p < dp->nb_ports; p++) {
		const struct dp_port *in = &dp->ports[p];

		if (w->index >= in->nb_queues)
			continue;
		n = rte_eth_rx_burst(in->port_id, (uint16_t)w->index, rx, (uint16_t)dp->burst);
		if (n == 0)
			continue;
		total += n;
		for (i = 0; i < n; i++) {
			rte_prefetch0(rte_pktmbuf_mtod(rx[i], void *));
			data[i] = rte_pktmbuf_mtod(rx[i], const uint8_t *);
			/* Only the first segment is parsed: frames up to the
			 * mbuf data room are contiguous. */
			len[i] = rte_pktmbuf_data_len(rx[i]);
		}
		env.zone = (uint8_t)RTE_MIN(p, in->peer);
		env.mon = monitor_arm(w);
		mg_dp_classify(&env, p, data, len, n, reasons, &w->cnt);
		/* Bytes of multi-segment frames count in full. */
		for (i = 0, nf = 0, nd = 0; i < n; i++) {
			if (MG_UNLIKELY(rx[i]->nb_segs > 1))
				w->cnt.rx_bytes[p] += rte_pktmbuf_pkt_len(rx[i]) - len[i];
			if (reasons[i] == MG_DROP_NONE)
				fwd[nf++] = rx[i];
			else
				drop[nd++] = rx[i];
		}
		if (nd != 0)
			rte_pktmbuf_free_bulk(drop, nd);
		if (nf != 0)
			tx_flush(w, &dp->ports[in->peer], in->peer, p, fwd, nf);
	}
	mg_ct_expire(w->ct, env.now, CT_EXPIRE_BUDGET);
	return total;
}

static int
worker_main(void *arg)
{
	struct dp_worker *w = arg;
	struct mg_datapath *dp = w->dp;

	if (dp->qsbr != NULL) {
		rte_rcu_qsbr_thread_register(dp->qsbr, w->lcore);
		rte_rcu_qsbr_thread_online(dp->qsbr, w->lcore);
	}
	while (!__atomic_load_n(&dp->stop, __ATOMIC_RELAXED)) {
		w->cnt.loops++;
		worker_mailbox(w);
		if (worker_poll(w) != 0)
			w->cnt.busy_loops++;
		if (dp->qsbr != NULL)
			rte_rcu_qsbr_quiescent(dp->qsbr, w->lcore);
	}
	if (dp->qsbr != NULL) {
		rte_rcu_qsbr_thread_offline(dp->qsbr, w->lcore);
		rte_rcu_qsbr_thread_unregister(dp->qsbr, w->lcore);
	}
	return 0;
}

int
mg_datapath_start(struct mg_datapath *dp)
{
	unsigned i;
	int rc;

	if (dp->main_forwards)
		return 0;
	for (i = 0; i < dp->nb_workers; i++) {
		rc = rte_eal_remote_launch(worker_main, &dp->workers[i], dp->workers[i].lcore);
		if (rc != 0) {
			__atomic_store_n(&dp->stop, 1, __ATOMIC_RELAXED);
			rte_eal_mp_wait_lcore();
			return rc;
		}
	}
	dp->launched = true;
	return 0;
}

void
mg_datapath_run(struct mg_datapath *dp, volatile int *stop,
                int (*tick)(struct mg_datapath *, void *), void *arg)
{
	uint64_t hz = rte_get_tsc_hz(), next = rte_get_tsc_cycles() + hz / 100;
	struct dp_worker *w = &dp->workers[0];
	int rc;

	if (dp->main_forwards && dp->qsbr != NULL) {
		rte_rcu_qsbr_thread_register(dp->qsbr, w->lcore);
		rte_rcu_qsbr_thread_online(dp->qsbr, w->lcore);
	}
	while (!*stop) {
		if (dp->main_forwards) {
			w->cnt.loops++;
			worker_mailbox(w);
			if (worker_poll(w) != 0)
				w->cnt.busy_loops++;
			if (dp->qsbr != NULL)
				rte_rcu_qsbr_quiescent(dp->qsbr, w->lcore);
			if (rte_get_tsc_cycles() < next)
				continue;
			next = rte_get_tsc_cycles() + hz / 100;
		} else {
			usleep(10000);
		}
		if (tick == NULL)
			continue;
		/* The control work in tick may wait for a grace period: the
		 * forwarding main lcore must not count as a reader meanwhile. */
		if (dp->main_forwards && dp->qsbr != NULL)
			rte_rcu_qsbr_thread_offline(dp->qsbr, w->lcore);
		rc = tick(dp, arg);
		if (dp->main_forwards && dp->qsbr != NULL)
			rte_rcu_qsbr_thread_online(dp->qsbr, w->lcore);
		if (rc != 0)
			break;
	}
	if (dp->main_forwards && dp->qsbr != NULL) {
		rte_rcu_qsbr_thread_offline(dp->qsbr, w->lcore);
		rte_rcu_qsbr_thread_unregister(dp->qsbr, w->lcore);
	}
}

void
mg_datapath_stop(struct mg_datapath *dp)
{
	unsigned i;
	int rc;

	if (dp == NULL)
		return;
	__atomic_store_n(&dp->stop, 1, __ATOMIC_RELEASE);
	if (dp->launched) {
		rte_eal_mp_wait_lcore();
		dp->launched = false;
	}
	for (i = 0; i < dp->nb_ports; i++) {
		if (!dp->ports[i].started)
			continue;
		(void)port_hw_read(&dp->ports[i], &dp->ports[i].hw_last);
		rc = rte_eth_dev_stop(dp->ports[i].port_id);
		if (rc != 0)
			MG_WARN("port %s: stop: %s", dp->ports[i].name, rte_strerror(-rc));
		/* Closing flushes what pcap and af_packet ports still buffer. */
		rte_eth_dev_close(dp->ports[i].port_id);
		dp->ports[i].started = false;
	}
}

/*
 * Wait until no worker can still hold what was published before the call:
 * the ipcache's wait, which also serves its commits (the same readers).
 * The caller is not a registered reader (a forwarding main lcore runs
 * tick() offline).
 */
static void
dp_grace_period(struct mg_datapath *dp)
{
	mg_ipcache_grace_period(dp->qsbr);
}

int
mg_datapath_publish(struct mg_datapath *dp, struct mg_ipcache *ipc, struct mg_policy *policy)
{
	struct dp_snap *cur = dp->snap;
	struct dp_snap *next = &dp->slots[cur == &dp->slots[0] ? 1 : 0];
	const struct mg_ipcache_view *view = cur->view;
	struct mg_policy *old_policy = NULL;
	int rc = 0;

	if (ipc != NULL && ipc != dp->ipc)
		return -EINVAL;
	if (ipc != NULL && mg_ipcache_pending(ipc) != 0) {
		/* Everything that can fail happens here, before anything is published. */
		view = mg_ipcache_commit_prepare(ipc);
		if (view == NULL)
			return -errno;
	} else {
		ipc = NULL; /* nothing to finish */
	}
	/* @next was replaced by @cur after a grace period: no worker reads it. */
	next->view = view;
	next->policy = policy != NULL ? policy : cur->policy;
	next->gen = cur->gen + 1;
	if (policy != NULL && policy != cur->policy)
		old_policy = cur->policy;
	__atomic_store_n(&dp->snap, next, __ATOMIC_RELEASE);
	/*
	 * After one grace period no worker holds @cur, its view or its policy.
	 * The ipcache's finish waits for it (same QSBR variable, see
	 * mg_datapath_create) before it rewrites the old copy; without a
	 * batch we wait ourselves.
	 */
	if (ipc != NULL)
		rc = mg_ipcache_commit_finish(ipc);
	else
		dp_grace_period(dp);
	mg_policy_free(old_policy);
	return rc;
}

const struct mg_policy *
mg_datapath_policy(const struct mg_datapath *dp)
{
	return dp->snap->policy;
}

void
mg_datapath_ct_stats(const struct mg_datapath *dp, struct mg_ct_stats *out)
{
	struct mg_ct_stats s;
	unsigned i;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < dp->nb_workers; i++) {
		/* Plain reads of a worker's 64-bit counters: maybe a little old,
		 * never torn. */
		mg_ct_stats_get(dp->workers[i].ct, &s);
		out->entries += s.entries;
		out->frags += s.frags;
		out->created += s.created;
		out->expired += s.expired;
		out->full += s.full;
	}
}

struct mg_ct *
mg_datapath_worker_ct(struct mg_datapath *dp, unsigned w)
{
	return w < dp->nb_workers ? dp->workers[w].ct : NULL;
}

size_t
mg_datapath_ct_memory(const struct mg_datapath *dp)
{
	size_t m = 0;
	unsigned i;

	for (i = 0; i < dp->nb_workers; i++)
		m += mg_ct_memory(dp->workers[i].ct);
	return m;
}

void
mg_datapath_counters(const struct mg_datapath *dp, struct mg_dp_counters *out)
{
	unsigned i;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < dp->nb_workers; i++)
		mg_dp_counters_add(out, &dp->workers[i].cnt);
}

unsigned
mg_datapath_nb_ports(const struct mg_datapath *dp)
{
	return dp->nb_ports;
}

const char *
mg_datapath_port_name(const struct mg_datapath *dp, unsigned i)
{
	return i < dp->nb_ports ? dp->ports[i].name : NULL;
}

static int
port_hw_read(const struct dp_port *p, struct mg_dp_port_hw *out)
{
	struct rte_eth_stats st;
	int rc;

	memset(out, 0, sizeof(*out));
	/* Safe beside the workers: the drivers read their own counters. */
	rc = rte_eth_stats_get(p->port_id, &st);
	if (rc != 0)
		return rc;
	/* Several threads may read: each adds what its read reset. */
	out->rx_missed = st.imissed + __atomic_add_fetch((uint64_t *)&p->kdrops,
	                                                 mg_dp_packet_drops(p->ksocks, p->n_ksocks),
	                                                 __ATOMIC_RELAXED);
	out->rx_nombuf = st.rx_nombuf;
	out->rx_errors = st.ierrors;
	out->tx_errors = st.oerrors;
	return 0;
}

int
mg_datapath_port_hw(const struct mg_datapath *dp, unsigned i, struct mg_dp_port_hw *out)
{
	if (i >= dp->nb_ports) {
		memset(out, 0, sizeof(*out));
		return -EINVAL;
	}
	if (!dp->ports[i].started) {
		*out = dp->ports[i].hw_last; /* the final stats are written after the stop */
		return 0;
	}
	return port_hw_read(&dp->ports[i], out);
}

unsigned
mg_datapath_nb_workers(const struct mg_datapath *dp)
{
	return dp->nb_workers;
}

int
mg_datapath_worker_counters(const struct mg_datapath *dp, unsigned w, unsigned *lcore,
                            struct mg_dp_counters *out)
{
	if (w >= dp->nb_workers)
		return -EINVAL;
	if (lcore != NULL)
		*lcore = dp->workers[w].lcore;
	/* Plain reads of the worker's own counters: at most a burst old. */
	memset(out, 0, sizeof(*out));
	mg_dp_counters_add(out, &dp->workers[w].cnt);
	return 0;
}

/* ---- monitor ---- */

int
mg_datapath_monitor_set(struct mg_datapath *dp, unsigned mask)
{
	struct mg_dp_event scratch[32];
	struct timespec ts;
	unsigned i, got, n;

	if (mask & ~MG_DP_MON_ALL)
		return -EINVAL;
	if (mask != 0 && __atomic_load_n(&dp->mon_mask, __ATOMIC_RELAXED) == 0) {
		/* A new session: what an earlier one left in the rings is stale.
		 * At most a ring's worth each: the workers may still be adding. */
		for (i = 0; i < dp->nb_workers; i++)
			for (n = 0; n < MG_DP_MON_RING; n += got) {
				got = mg_dp_mon_pop(dp->workers[i].mon, scratch,
				                    MG_ARRAY_SIZE(scratch));
				if (got == 0)
					break;
			}
		clock_gettime(CLOCK_REALTIME, &ts);
		dp->mon_tsc0 = rte_get_tsc_cycles();
		dp->mon_ns0 = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	}
	__atomic_store_n(&dp->mon_mask, (uint32_t)mask, __ATOMIC_RELAXED);
	return 0;
}

/* TSC ticks since arming -> CLOCK_REALTIME ns (seconds and remainder
 * apart, so the product never overflows). */
static uint64_t
tsc_to_ns(const struct mg_datapath *dp, uint64_t tsc, uint64_t hz)
{
	uint64_t d = tsc >= dp->mon_tsc0 ? tsc - dp->mon_tsc0 : dp->mon_tsc0 - tsc;
	uint64_t dns = d / hz * 1000000000ull + d % hz * 1000000000ull / hz;

	return tsc >= dp->mon_tsc0 ? dp->mon_ns0 + dns : dp->mon_ns0 - dns;
}

unsigned
mg_datapath_monitor_drain(struct mg_datapath *dp, struct mg_dp_event *out, unsigned max)
{
	uint64_t hz = rte_get_tsc_hz();
	unsigned k, n = 0;

	/* Start one worker further each call: a busy first ring cannot
	 * starve the others of the caller's buffer. */
	for (k = 0; k < dp->nb_workers && n < max; k++)
		n += mg_dp_mon_pop(dp->workers[(dp->mon_next + k) % dp->nb_workers].mon, out + n,
		                   max - n);
	dp->mon_next = (dp->mon_next + 1) % dp->nb_workers;
	for (k = 0; k < n; k++)
		out[k].ns = tsc_to_ns(dp, out[k].tsc, hz);
	return n;
}

uint64_t
mg_datapath_monitor_lost(const struct mg_datapath *dp)
{
	uint64_t lost = 0;
	unsigned i;

	for (i = 0; i < dp->nb_workers; i++)
		lost += mg_dp_mon_lost(dp->workers[i].mon);
	return lost;
}

/* ---- conntrack requests ---- */

/*
 * May the calling thread touch the tables itself? Yes when nobody
 * forwards concurrently: no worker lcore is running (before start, after
 * stop), or the caller is the forwarding main lcore itself (tick()).
 */
static bool
ct_direct(const struct mg_datapath *dp)
{
	if (dp->launched)
		return false;
	return !dp->main_forwards || rte_lcore_id() == dp->workers[0].lcore;
}

static int
ct_request(struct mg_datapath *dp, enum mg_dp_ct_op op, struct mg_dp_ct_entry *out, size_t max,
           size_t *n, uint64_t *total)
{
	bool direct = ct_direct(dp);
	uint64_t hz = rte_get_tsc_hz(), res;
	size_t got;
	unsigned i;
	int rc = 0;

	*n = 0;
	*total = 0;
	for (i = 0; i < dp->nb_workers; i++) {
		struct dp_worker *w = &dp->workers[i];
		struct mg_dp_ct_entry *o = out != NULL ? out + *n : NULL;

		if (direct) {
			res = mg_dp_ct_exec(w->ct, op, i, rte_rdtsc(), hz, o, max - *n, &got);
		} else {
			rc = mg_dp_mbox_call(&w->mbox, op, o, max - *n, MG_DP_MBOX_TIMEOUT_MS, &got,
			                     &res);
			if (rc != 0) {
				MG_WARN("conntrack: worker %u did not answer: %s", i,
				        strerror(-rc));
				break;
			}
		}
		*n += got;
		*total += res;
	}
	return rc;
}

int
mg_datapath_ct_list(struct mg_datapath *dp, struct mg_dp_ct_entry *out, size_t max, size_t *n,
                    uint64_t *total)
{
	size_t nn;
	uint64_t tt;
	int rc = ct_request(dp, MG_DP_CT_LIST, out, out != NULL ? max : 0, &nn, &tt);

	if (n != NULL)
		*n = nn;
	if (total != NULL)
		*total = tt;
	return rc;
}

int
mg_datapath_ct_flush(struct mg_datapath *dp, uint64_t *flushed)
{
	size_t nn;
	uint64_t tt;
	int rc = ct_request(dp, MG_DP_CT_FLUSH, NULL, 0, &nn, &tt);

	if (flushed != NULL)
		*flushed = tt;
	return rc;
}

void
mg_datapath_free(struct mg_datapath *dp)
{
	unsigned i;

	if (dp == NULL)
		return;
	mg_policy_free(dp->snap->policy);
	rte_mempool_free(dp->pool);
	for (i = 0; dp->workers != NULL && i < dp->nb_workers; i++) {
		mg_ct_free(dp->workers[i].ct);
		rte_free(dp->workers[i].mon);
	}
	rte_free(dp->workers);
	free(dp);
}
