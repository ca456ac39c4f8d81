/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Write-to-effective latency: a writer thread on its own connection FCALLs
 * mg_put at a fixed rate, each put moving a test IP to another identity so
 * that it changes a verdict, and the time it takes until a worker would
 * judge by the new verdict is measured, p50 and p99 per rate. Both runs
 * sync through lib/gateway, as the daemon does: mg_gateway_sync_tick polls
 * the sync client, derives the policy for the identities a batch changed
 * and publishes them together. Alone (a gateway without a data path: it
 * commits the batch itself; the main thread then looks the verdict up in
 * the gateway's ipcache and policy), and while a worker forwards
 * (--latency-while-forwarding: each batch published with
 * mg_datapath_publish, and denies seen in the frames the worker drops).
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>

#include "bench_kvsync_priv.h"

/* ---- write-to-effective latency ---- */

struct writer {
	unsigned port;
	unsigned rate;
	uint32_t first, count; /* test slots first .. first + count - 1 */
	uint64_t *sent;        /* per slot, ns (mg_time_ns) */
	_Atomic uint32_t n_sent;
	int rc;
};

/*
 * Wait until mg_time_ns() reaches @p due: in nanosleeps of 20 us while more
 * than 100 us are left, then spinning. Returns the time it is then.
 */
static uint64_t
wait_until(uint64_t due)
{
	uint64_t now;

	while ((now = mg_time_ns()) < due) {
		struct timespec ts = {.tv_nsec = 20000};

		if (due - now > 100000)
			nanosleep(&ts, NULL);
	}
	return now;
}

/* FCALL mg_put of @p val at @p key, logged in @p logk; frees @p val. 0 or < 0. */
static int
put_logged(redisContext *c, const char *logk, const char *key, char *val)
{
	int rc = kvsync_command_ok(
	        c, redisCommand(c, "FCALL mg_put 2 %s %s %s %s", key, logk, val, MAXLEN));

	free(val);
	return rc;
}

static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	redisContext *c = kvsync_connect_port(w->port);
	char key[MG_KV_KEY_MAX], logk[MG_KV_KEY_MAX];
	uint64_t t0, due;
	uint32_t k;

	if (c == NULL || mg_kv_log_key(logk, sizeof(logk), CLUSTER) < 0) {
		w->rc = -EIO;
		redisFree(c);
		return NULL;
	}
	t0 = mg_time_ns();
	for (k = 0; k < w->count; k++) {
		uint32_t s = w->first + k;
		struct mg_kv_ip_pair p;
		char *val;
		int rc;

		due = t0 + (uint64_t)k * 1000000000ull / w->rate;
		wait_until(due);
		kvsync_entry_of(slot_entry(s), &p);
		p.prefix.identity = ID_CLIENT;
		if (kvsync_entry_kv(&p, MG_KV_SCOPE_STATE, CLUSTER, key, &val) < 0) {
			w->rc = -EINVAL;
			break;
		}
		/* The send time is published before the put, so a reader that sees the put sees it. */
		w->sent[s] = mg_time_ns();
		atomic_store_explicit(&w->n_sent, k + 1, memory_order_release);
		rc = put_logged(c, logk, key, val);
		if (rc < 0) {
			w->rc = rc;
			break;
		}
	}
	redisFree(c);
	return NULL;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static bool
allowed(const struct mg_ipcache *ipc, const struct mg_policy *pol, uint32_t s)
{
	struct mg_kv_ip_pair p;
	uint32_t src;

	kvsync_entry_of(slot_entry(s), &p);
	src = mg_ipcache_lookup(mg_ipcache_reader(ipc), p.prefix.family, p.prefix.addr);
	return mg_policy_verdict(pol, src, ID_SERVER, MG_IPPROTO_TCP, 8080) == MG_VERDICT_ALLOW;
}

/* Write-to-effective latency of @p rate puts/s, test slots from @p first on. */
static int
latency_run(unsigned port, struct mg_gateway *gw, unsigned rate, uint32_t first, uint64_t *sent)
{
	struct writer w = {.port = port, .rate = rate, .first = first, .sent = sent};
	uint64_t *lat, deadline;
	uint32_t next = 0, k;
	pthread_t th;
	int rc = 0;

	w.count = rate * LAT_SECS;
	if (first + w.count > N_SLOTS)
		return -E2BIG;
	for (k = 0; k < w.count; k++)
		if (allowed(mg_gateway_ipcache(gw), mg_gateway_policy(gw), first + k)) {
			fprintf(stderr, "kvsync: FAIL: test IP %u allowed before its update\n", k);
			return -EPROTO;
		}
	lat = calloc(w.count, sizeof(*lat));
	if (lat == NULL)
		return -ENOMEM;
	rc = pthread_create(&th, NULL, writer_main, &w);
	if (rc != 0) {
		free(lat);
		return -rc;
	}
	deadline = mg_time_ns() + (LAT_SECS + 10) * 1000000000ull;
	while (next < w.count && mg_time_ns() < deadline) {
		uint32_t n_sent;
		uint64_t now;

		/* The gateway has no publish callback: it commits the batch itself. */
		rc = kvsync_tick(gw);
		if (rc < 0)
			break;
		rc = 0;
		/* effective: the verdict a worker computes after this batch's commit */
		now = mg_time_ns();
		n_sent = atomic_load_explicit(&w.n_sent, memory_order_acquire);
		while (next < n_sent &&
		       allowed(mg_gateway_ipcache(gw), mg_gateway_policy(gw), first + next)) {
			lat[next] = now - sent[first + next];
			next++;
		}
		if (w.rc < 0)
			break;
	}
	pthread_join(th, NULL);
	if (rc == 0 && w.rc < 0)
		rc = w.rc;
	if (rc == 0 && next < w.count) {
		fprintf(stderr, "kvsync: FAIL: %u of %u updates never became effective\n",
		        w.count - next, w.count);
		rc = -ETIMEDOUT;
	}
	if (rc == 0) {
		qsort(lat, w.count, sizeof(*lat), cmp_u64);
		printf("latency   %5u updates/s  %6u updates  p50 %7.3f ms  p99 %7.3f ms  max "
		       "%7.3f "
		       "ms\n",
		       rate, w.count, (double)lat[w.count / 2] / 1e6,
		       (double)lat[(size_t)w.count * 99 / 100] / 1e6,
		       (double)lat[w.count - 1] / 1e6);
	}
	free(lat);
	return rc;
}

/* The gateway has kvstore.block_ms 5, as the cold sync's client. */
int
kvsync_latency_runs(unsigned port)
{
	struct kvsync_gw g = {0};
	uint64_t *sent = calloc(N_SLOTS, sizeof(*sent));
	int rc = sent != NULL ? kvsync_gateway_open(&g, port, 5, NULL) : -ENOMEM;

	if (rc == 0)
		rc = latency_run(port, g.gw, 1000, 0, sent);
	if (rc == 0)
		rc = latency_run(port, g.gw, 10000, 1000 * LAT_SECS, sent);
	kvsync_gateway_close(&g);
	free(sent);
	return rc;
}

/* ---- write-to-effective latency while forwarding ---- */

/*
 * `--latency-while-forwarding`: the latency above, but with the data path
 * of `--updates-while-forwarding` running (EAL, one worker lcore, two
 * net_pcap ports replaying LF_IPS TCP SYNs, one per test IP, to the
 * server's port 8080) and every batch going through the daemon's step,
 * mg_gateway_sync_tick (poll, then the batch and the policy derived for
 * the identities it changed published with mg_datapath_publish; here in a
 * tight loop on the main lcore, the daemon's control thread does the same).
 *
 * Every test IP starts allowed (client identity). A writer thread FCALLs
 * mg_put at a fixed rate; each put moves one test IP between the client
 * (allowed) and its filler identity (denied): either a deny of the next
 * test IP, or, once an earlier deny has been published and seen dropped
 * in the frames (or LF_HOLD_NS after its publication), the allow that
 * restores it, oldest first. So about half the puts deny and half allow,
 * only a few IPs are denied at any time (few drop events), and every put
 * changes a verdict. The writer notes CLOCK_MONOTONIC just before each
 * put. Two measures:
 *
 *   publish   the time the mg_datapath_publish that carried the update
 *             returned, minus the put time. Once it returns every worker
 *             has passed a quiescent point after the new snapshot, so
 *             every frame taken after it is judged by the new state: an
 *             upper bound on "a worker's verdict changes" (a worker may
 *             judge by it earlier, from the snapshot store on).
 *   frames    denies only: the worker's monitor ring records every dropped
 *             frame with its source identity and the TSC of its burst;
 *             the first drop of the test IP with the denied identity and
 *             a burst time after the put is the frame that the worker
 *             judged by the new verdict (converted to CLOCK_MONOTONIC by
 *             one TSC calibration). It includes the wait for the IP's
 *             next frame (LF_IPS frames per port apart). Allows are not
 *             seen here: forwarded frames are only sampled by the monitor.
 *
 * Every update must be applied and published (the count of log entries
 * the client applied equals the puts, and after each publication the
 * ipcache gives the updated IP its new identity), or the run fails.
 */

#define LF_HOLD_NS 5000000ull /* restore a deny not seen in frames after this */
#define LF_WARMUP_NS 1000000000ull

struct lf_upd {
	uint32_t slot;
	bool deny;
	uint64_t sent;        /* writer: CLOCK_MONOTONIC ns before the put */
	_Atomic uint64_t pub; /* control: when the publish carrying it returned */
	_Atomic uint64_t mon; /* control: first frame judged by it (denies) */
};

struct lf_writer {
	unsigned port, rate;
	uint64_t paced; /* puts at the fixed rate; then the outstanding restores */
	struct lf_upd *u;
	size_t cap;
	_Atomic uint32_t n_sent;
	atomic_int done;
	int rc;
};

static void *
lf_writer_main(void *arg)
{
	struct lf_writer *w = arg;
	redisContext *c = kvsync_connect_port(w->port);
	char logk[MG_KV_KEY_MAX];
	/* denies waiting for their restore, oldest first (writer-private) */
	uint32_t *fifo = calloc(LF_IPS, sizeof(*fifo)), head = 0, tail = 0, next_slot = 0;
	bool denied[LF_IPS] = {false};
	uint64_t t0 = mg_time_ns();
	uint32_t k = 0;

	if (c == NULL || fifo == NULL || mg_kv_log_key(logk, sizeof(logk), CLUSTER) < 0) {
		w->rc = -EIO;
		goto out;
	}
	while (k < w->cap && (k < w->paced || head != tail)) {
		uint64_t due = t0 + (uint64_t)k * 1000000000ull / w->rate, now;
		struct lf_upd *u = &w->u[k];
		char key[MG_KV_KEY_MAX], *val;
		struct mg_kv_ip_pair p;
		bool restore = false;
		int rc;

		now = wait_until(due);
		if (head != tail) {
			const struct lf_upd *d = &w->u[fifo[head % LF_IPS]];
			uint64_t pub = atomic_load_explicit(&d->pub, memory_order_acquire);

			restore =
			        pub != 0 && (atomic_load(&d->mon) != 0 || now >= pub + LF_HOLD_NS);
		}
		if (!restore &&
		    (k >= w->paced || denied[next_slot % LF_IPS] || tail - head == LF_IPS)) {
			/* past the paced part (or no IP free): wait for a restore */
			struct timespec ts = {.tv_nsec = 50000};

			nanosleep(&ts, NULL);
			if (mg_time_ns() > t0 + (w->paced / w->rate + 20) * 1000000000ull) {
				w->rc = -ETIMEDOUT;
				break;
			}
			continue;
		}
		if (restore) {
			u->slot = w->u[fifo[head++ % LF_IPS]].slot;
			u->deny = false;
			denied[u->slot] = false;
		} else {
			u->slot = next_slot++ % LF_IPS;
			u->deny = true;
			denied[u->slot] = true;
			fifo[tail++ % LF_IPS] = k;
		}
		kvsync_entry_of(slot_entry(u->slot), &p); /* the fill's value: a filler, denied */
		if (!u->deny)
			p.prefix.identity = ID_CLIENT;
		if (kvsync_entry_kv(&p, MG_KV_SCOPE_STATE, CLUSTER, key, &val) < 0) {
			w->rc = -EINVAL;
			break;
		}
		/* Published before the put: the control loop sees the put only after this. */
		u->sent = mg_time_ns();
		atomic_store_explicit(&w->n_sent, ++k, memory_order_release);
		rc = put_logged(c, logk, key, val);
		if (rc < 0) {
			w->rc = rc;
			break;
		}
	}
	if (w->rc == 0 && k >= w->cap)
		w->rc = -E2BIG;
out:
	free(fifo);
	redisFree(c);
	atomic_store(&w->done, 1);
	return NULL;
}

/* Identity of test slot @p s in the data path's ipcache now. */
static uint32_t
lf_identity(const struct mg_ipcache *ipc, uint32_t s)
{
	struct mg_kv_ip_pair p;

	kvsync_entry_of(slot_entry(s), &p);
	return mg_ipcache_lookup(mg_ipcache_reader(ipc), p.prefix.family, p.prefix.addr);
}

pid_t kvsync_lf_redis_pid;

void
kvsync_lf_pin_redis(void)
{
	cpu_set_t set;
	char path[64];
	struct dirent *d;
	unsigned n = 0;
	DIR *dir;

	if (kvsync_lf_redis_pid <= 0 || sched_getaffinity(0, sizeof(set), &set) < 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)kvsync_lf_redis_pid);
	dir = opendir(path);
	if (dir == NULL)
		return;
	while ((d = readdir(dir)) != NULL)
		if (d->d_name[0] != '.' &&
		    sched_setaffinity((pid_t)atoi(d->d_name), sizeof(set), &set) == 0)
			n++;
	closedir(dir);
	printf("  redis-server's %u thread(s) pinned to the main lcore's CPU(s) (%d CPU(s))\n", n,
	       CPU_COUNT(&set));
}

static void
lf_print(const char *what, uint64_t *v, size_t n, size_t of)
{
	if (n == 0) {
		printf("  %-34s %6zu of %6zu   (none)\n", what, n, of);
		return;
	}
	qsort(v, n, sizeof(*v), cmp_u64);
	printf("  %-34s %6zu of %6zu   p50 %7.3f ms  p99 %7.3f ms  max %7.3f ms\n", what, n, of,
	       (double)v[n / 2] / 1e6, (double)v[n * 99 / 100] / 1e6, (double)v[n - 1] / 1e6);
}

/* The control loop's state for one rate. */
struct lf_ctl {
	struct lf_run *r;
	struct mg_datapath *dp;
	struct lf_writer *w;
	uint64_t applied, seen, bad;
	uint32_t wait_deny[LF_IPS]; /* update index + 1 of a deny to spot in the frames */
};

/*
 * One sync tick: the log is applied in write order, so the entries it
 * applied are the next puts, all carried by the publication that just
 * returned (the callback noted when): note that time and check the
 * ipcache gives each updated IP its new identity. Entries applied, or < 0.
 */
static int
lf_tick(struct lf_ctl *c)
{
	struct lf_writer *w = c->w;
	uint64_t pubs = c->r->pub->publishes;
	int n = kvsync_tick(c->r->gw);

	if (n <= 0)
		return n;
	if (c->r->pub->publishes == pubs)
		return -EPROTO; /* applied, and not published */
	for (uint64_t j = c->applied; j < c->applied + (uint64_t)n && j < w->cap; j++) {
		struct lf_upd *u = &w->u[j];
		uint32_t want = u->deny ? ID_FILLER(slot_entry(u->slot) % N_FILLER) : ID_CLIENT;

		if (lf_identity(mg_gateway_ipcache(c->r->gw), u->slot) != want)
			c->bad++;
		atomic_store_explicit(&u->pub, c->r->pub->last_ns, memory_order_release);
	}
	c->applied += (uint64_t)n;
	return n;
}

/* Drain the monitor rings: the first drop of each deny's IP by its denied identity. */
static void
lf_drain(struct lf_ctl *c)
{
	static struct mg_dp_event ev[4096];
	struct lf_writer *w = c->w;
	uint32_t n_sent = atomic_load_explicit(&w->n_sent, memory_order_acquire);
	unsigned got;

	/* Register the denies to spot before reading the frames' events. */
	for (; c->seen < n_sent; c->seen++)
		c->wait_deny[w->u[c->seen].slot] = w->u[c->seen].deny ? (uint32_t)c->seen + 1 : 0;
	/* TSC -> CLOCK_MONOTONIC from a pair read now: the events are recent, so
	 * an error in the TSC rate estimate barely matters. */
	uint64_t mono1 = mg_time_ns(), tsc1 = rte_get_tsc_cycles(), khz = c->r->hz / 1000;

	while ((got = mg_datapath_monitor_drain(c->dp, ev, MG_ARRAY_SIZE(ev))) > 0)
		for (unsigned i = 0; i < got; i++) {
			uint32_t ip, s, k;
			uint64_t t;

			if (ev[i].family != MG_AF_INET)
				continue;
			memcpy(&ip, ev[i].src, 4);
			s = ntohl(ip) - ((10u << 24) | 2u);
			if (s >= LF_IPS || (k = c->wait_deny[s]) == 0 ||
			    ev[i].src_id != ID_FILLER(slot_entry(s) % N_FILLER))
				continue;
			if (ev[i].tsc <= tsc1)
				t = mono1 - (tsc1 - ev[i].tsc) * 1000000ull / khz;
			else /* drained after the pair was read */
				t = mono1 + (ev[i].tsc - tsc1) * 1000000ull / khz;
			if (t < w->u[k - 1].sent)
				continue; /* a frame of an earlier deny of this IP */
			atomic_store(&w->u[k - 1].mon, t);
			c->wait_deny[s] = 0;
		}
}

/* The three latencies of the @p n_sent puts of @p w. */
static int
lf_latencies(const struct lf_writer *w, uint32_t n_sent)
{
	uint64_t *a = calloc(n_sent, sizeof(*a)), *b = calloc(n_sent, sizeof(*b));
	uint64_t *m = calloc(n_sent, sizeof(*m));
	size_t na = 0, nb = 0, nm = 0;
	int rc = a != NULL && b != NULL && m != NULL ? 0 : -ENOMEM;

	for (uint32_t j = 0; j < n_sent && rc == 0; j++) {
		uint64_t pub = atomic_load(&w->u[j].pub), mon = atomic_load(&w->u[j].mon);

		if (pub == 0) {
			fprintf(stderr, "kvsync: FAIL: put %u never published\n", j);
			rc = -EPROTO;
			break;
		}
		a[na++] = pub - w->u[j].sent;
		if (!w->u[j].deny)
			continue;
		b[nb++] = pub - w->u[j].sent;
		if (mon != 0)
			m[nm++] = mon - w->u[j].sent;
	}
	if (rc == 0) {
		lf_print("put -> publish returned, all", a, na, n_sent);
		lf_print("put -> publish returned, denies", b, nb, nb);
		lf_print("put -> first frame dropped, denies", m, nm, nb);
	}
	free(a);
	free(b);
	free(m);
	return rc;
}

/* The control loop: sync ticks and monitor drains until every put is published. */
static int
lf_loop(struct lf_ctl *c)
{
	uint64_t deadline = mg_time_ns() + ((uint64_t)c->r->secs + 30) * 1000000000ull;

	for (;;) {
		int n = lf_tick(c);

		if (n < 0)
			return n;
		lf_drain(c);
		if (atomic_load(&c->w->done) && c->applied >= atomic_load(&c->w->n_sent))
			return 0;
		if (mg_time_ns() > deadline)
			return -ETIMEDOUT;
	}
}

/* The run's summary lines, then the latencies. */
static int
lf_report(const struct lf_ctl *c, unsigned rate, uint64_t publishes, double secs,
          const struct mg_dp_counters *c0, const struct mg_dp_counters *c1, uint64_t lost)
{
	uint32_t n_sent = atomic_load(&c->w->n_sent);
	size_t nd = 0;

	if (c->applied != n_sent || c->bad != 0) {
		fprintf(stderr,
		        "kvsync: FAIL: %u puts, %" PRIu64 " applied, %" PRIu64
		        " published with a wrong identity\n",
		        n_sent, c->applied, c->bad);
		return -EPROTO;
	}
	for (uint32_t j = 0; j < n_sent; j++)
		nd += c->w->u[j].deny;
	printf("latency+worker %5u updates/s: %u puts (%zu deny, %zu allow) in %.2f s (%.0f/s), "
	       "all %" PRIu64 " applied and published in %" PRIu64
	       " publications, ipcache checked\n",
	       rate, n_sent, nd, n_sent - nd, secs, n_sent / secs, c->applied, publishes);
	printf("  worker forwarded %.0f frames/s meanwhile (allowed %.0f/s, denied %.0f/s); "
	       "monitor events lost %" PRIu64 "\n",
	       (double)(fwd_rx(c1) - fwd_rx(c0)) / secs, (double)(c1->allowed - c0->allowed) / secs,
	       (double)(c1->denied_ingress + c1->denied_egress - c0->denied_ingress -
	                c0->denied_egress) /
	               secs,
	       lost);
	return lf_latencies(c->w, n_sent);
}

/* One rate: writer on, sync ticks + drains until every put is published. */
static int
lf_rate(struct mg_datapath *dp, struct lf_run *r, unsigned rate)
{
	struct lf_writer w = {.port = r->port, .rate = rate};
	struct lf_ctl c = {.r = r, .dp = dp, .w = &w};
	uint64_t lost0 = mg_datapath_monitor_lost(dp), pubs0 = r->pub->publishes, t_start;
	struct mg_dp_counters c0, c1;
	pthread_t th;
	int rc = 0;

	w.paced = (uint64_t)rate * r->secs;
	w.cap = w.paced + LF_IPS;
	w.u = calloc(w.cap, sizeof(*w.u));
	if (w.u == NULL)
		return -ENOMEM;
	for (uint32_t s = 0; s < LF_IPS; s++)
		if (lf_identity(mg_gateway_ipcache(r->gw), s) != ID_CLIENT) {
			fprintf(stderr, "kvsync: FAIL: test IP %u not allowed before the run\n", s);
			rc = -EPROTO;
			goto out;
		}
	mg_datapath_counters(dp, &c0);
	t_start = mg_time_ns();
	rc = pthread_create(&th, NULL, lf_writer_main, &w);
	if (rc != 0) {
		rc = -rc;
		goto out;
	}
	rc = lf_loop(&c);
	mg_datapath_counters(dp, &c1);
	pthread_join(th, NULL);
	if (rc == 0 && w.rc < 0)
		rc = w.rc;
	if (rc == 0)
		rc = lf_report(&c, rate, r->pub->publishes - pubs0,
		               (double)(mg_time_ns() - t_start) / 1e9, &c0, &c1,
		               mg_datapath_monitor_lost(dp) - lost0);
out:
	free(w.u);
	return rc;
}

int
kvsync_lf_tick(struct mg_datapath *dp, void *arg)
{
	struct lf_run *r = arg;
	uint64_t until = mg_time_ns() + LF_WARMUP_NS;

	/* warm-up: the worker forwards, the client idles */
	while (mg_time_ns() < until)
		if (kvsync_tick(r->gw) < 0)
			break;
	r->rc = mg_datapath_monitor_set(dp, MG_DP_MON_DROPS);
	r->hz = rte_get_tsc_hz();
	if (r->rc == 0)
		r->rc = lf_rate(dp, r, 1000);
	fflush(stdout);
	if (r->rc == 0)
		r->rc = lf_rate(dp, r, 10000);
	mg_datapath_monitor_set(dp, 0);
	return 1;
}

/* The test IPs start allowed: their entries move to the client before the initial sync. */
int
kvsync_lf_preset(redisContext *c)
{
	unsigned pending = 0;
	int rc = 0;

	for (uint32_t s = 0; s < LF_IPS && rc == 0; s++) {
		char key[MG_KV_KEY_MAX], *val;
		struct mg_kv_ip_pair p;

		kvsync_entry_of(slot_entry(s), &p);
		p.prefix.identity = ID_CLIENT;
		if (kvsync_entry_kv(&p, MG_KV_SCOPE_STATE, CLUSTER, key, &val) < 0) {
			rc = -EINVAL;
		} else {
			redisAppendCommand(c, "SET %s %s", key, val);
			pending++;
			free(val);
		}
	}
	if (pending > 0) {
		int r2 = kvsync_drain(c, pending);

		rc = rc < 0 ? rc : r2;
	}
	return rc;
}
