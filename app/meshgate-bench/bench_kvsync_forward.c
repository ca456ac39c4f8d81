/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Updates while forwarding: the data path (EAL, one worker lcore, two
 * net_pcap ports replaying crafted frames) forwards while writers change
 * ipcache entries through the Function library and the main lcore runs the
 * daemon's sync step, lib/gateway's mg_gateway_sync_tick (a poll of the
 * sync client, then its batch and the policy derived for the identities
 * it changed published with mg_datapath_publish); then a backlog the
 * client catches up on. The EAL, the gateway and the data path are set up
 * here for --latency-while-forwarding too, as the daemon sets them up.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_malloc.h>

#include "bench_kvsync_priv.h"
#include "mg_config.h"
#include "mg_pkt.h"

/* ---- updates while forwarding ---- */

/*
 * `--updates-while-forwarding`: the data path (EAL, one worker lcore,
 * two net_pcap ports replaying crafted TCP SYNs endlessly) forwards while
 * writer threads change ipcache entries through the Function library at a
 * fixed rate (one connection per writer, lib/kvstore's batch API: FCALL
 * mg_batch of --batch changes, several calls in flight; --batch 0 is the
 * old way, pipelined FCALL mg_put), and the
 * main lcore's tick (every ~10 ms) runs mg_gateway_sync_tick, the
 * daemon's step: the batch and the policy derived for the identities it
 * changed go out with mg_datapath_publish. Measured: the
 * updates applied per second (log entries the sync client applied, then
 * published) and the frames handled per second, first without updates,
 * then with them. The frames come from test IPs whose identity the
 * updates flip between the client (allowed) and a filler (denied), so
 * every publication changes verdicts the worker computes.
 */

struct fwd_writer {
	unsigned port;
	unsigned rate;       /* puts per second of this writer */
	unsigned batch;      /* changes per FCALL mg_batch; 0: single FCALL mg_put */
	uint32_t first, n;   /* fill entries first .. first + n - 1 */
	char **keys, **vals; /* per entry: key; value 2i: client, 2i+1: a filler */
	uint64_t limit;      /* puts to write, then stop (0: until told) */
	uint64_t seq;        /* puts sent so far: a restart goes on where it stopped */
	atomic_int stop, done;
	_Atomic uint64_t written;
	int rc;
	pthread_t th;
};

/*
 * Key and value of put number @p seq of writer @p w, which goes round its
 * entries: round 0 moves each to the client, round 1 to a filler, ...:
 * every put changes the value.
 */
static void
fwd_put_of(const struct fwd_writer *w, uint64_t seq, const char **key, const char **val)
{
	uint32_t k = (uint32_t)(seq % w->n);
	unsigned v = (unsigned)((seq / w->n) % 2);

	*key = w->keys[w->first + k];
	*val = w->vals[2 * (w->first + k) + v];
}

/*
 * A writer as meshgatectl's are: lib/kvstore's batch API, each change
 * queued, sent in FCALL mg_batch calls of w->batch changes with up to
 * MG_KV_WRITER_PIPELINE calls in flight. Whenever it is ahead of its rate
 * it flushes (so the count is exact) and sleeps.
 */
static void *
fwd_writer_batch_main(struct fwd_writer *w)
{
	struct mg_kv_writer_opts o = {.cluster = CLUSTER,
	                              .single_cluster = true, /* the bench's Redis holds one */
	                              .maxlen = (unsigned)atoi(MAXLEN),
	                              .timeout_ms = 60000,
	                              .batch = w->batch};
	struct mg_kv_batch_counts c = {0};
	struct mg_error err = {0};
	struct mg_kv_writer *kw;
	uint64_t t0 = mg_time_ns(), seq = w->seq, first = w->seq, end = w->seq + w->limit;
	uint64_t base = atomic_load(&w->written);
	char url[64];

	snprintf(url, sizeof(url), "redis://127.0.0.1:%u/0", w->port);
	o.url = url;
	kw = mg_kv_writer_open(&o, &err);
	if (kw == NULL) {
		fprintf(stderr, "kvsync: writer: %s\n", err.msg);
		w->rc = -EIO;
		goto out;
	}
	while (!atomic_load(&w->stop) && (w->limit == 0 || seq < end)) {
		uint64_t due = t0 + (seq - first) * 1000000000ull / w->rate;
		unsigned i, nb = w->batch;

		if (mg_time_ns() < due) {
			struct timespec ts = {.tv_nsec = 100000};

			if (mg_kv_writer_flush(kw, &err) < 0)
				break;
			atomic_store(&w->written, base + c.written);
			nanosleep(&ts, NULL);
			continue;
		}
		if (w->limit != 0 && end - seq < nb)
			nb = (unsigned)(end - seq);
		for (i = 0; i < nb; i++, seq++) {
			const char *key, *val;

			fwd_put_of(w, seq, &key, &val);
			if (mg_kv_writer_queue_put(kw, key, val, &c, &err) < 0)
				goto done;
		}
		atomic_store(&w->written, base + c.written);
	}
done:
	if (err.msg[0] == '\0')
		mg_kv_writer_flush(kw, &err);
	if (err.msg[0] != '\0') {
		fprintf(stderr, "kvsync: writer: %s\n", err.msg);
		w->rc = -EIO;
	}
	atomic_store(&w->written, base + c.written);
	mg_kv_writer_close(kw);
out:
	w->seq = seq;
	atomic_store(&w->done, 1);
	return NULL;
}

static void *
fwd_writer_main(void *arg)
{
	struct fwd_writer *w = arg;
	redisContext *c;

	if (w->batch != 0)
		return fwd_writer_batch_main(w);
	c = kvsync_connect_port(w->port);
	char logk[MG_KV_KEY_MAX];
	uint64_t t0 = mg_time_ns(), seq = w->seq, first = w->seq, end = w->seq + w->limit;

	if (c == NULL || mg_kv_log_key(logk, sizeof(logk), CLUSTER) < 0) {
		w->rc = -EIO;
		redisFree(c);
		return NULL;
	}
	while (!atomic_load(&w->stop) && (w->limit == 0 || seq < end)) {
		uint64_t due = t0 + (seq - first) * 1000000000ull / w->rate;
		unsigned i, ok = 0, nb = FWD_BATCH;

		if (mg_time_ns() < due) {
			struct timespec ts = {.tv_nsec = 100000};

			nanosleep(&ts, NULL);
			continue;
		}
		if (w->limit != 0 && end - seq < nb)
			nb = (unsigned)(end - seq);
		for (i = 0; i < nb; i++, seq++) {
			const char *key, *val;

			fwd_put_of(w, seq, &key, &val);
			redisAppendCommand(c, "FCALL mg_put 2 %s %s %s %s", key, logk, val, MAXLEN);
		}
		for (i = 0; i < nb; i++) {
			redisReply *r = NULL;

			if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL) {
				w->rc = -EIO;
				goto out;
			}
			ok += r->type == REDIS_REPLY_INTEGER && r->integer == 1;
			freeReplyObject(r);
		}
		atomic_fetch_add(&w->written, ok);
	}
out:
	redisFree(c);
	w->seq = seq;
	atomic_store(&w->done, 1);
	return NULL;
}

static uint16_t
fwd_csum(const uint8_t *p, unsigned n)
{
	uint32_t s = 0;

	for (unsigned i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* pcap of @p n TCP SYNs from test slots 0 .. n-1's IPs to the server, port 8080. */
static int
fwd_pcap(const char *path, uint32_t n)
{
	static const uint8_t l2[14] = {0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00};
	struct {
		uint32_t magic;
		uint16_t major, minor;
		int32_t zone;
		uint32_t sigfigs, snaplen, linktype;
	} gh = {0xa1b2c3d4, 2, 4, 0, 0, 65535, 1};
	FILE *f = fopen(path, "wb");

	if (f == NULL)
		return -errno;
	fwrite(&gh, sizeof(gh), 1, f);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t rh[4] = {0, 0, 64, 64};
		uint8_t fr[64] = {0}, *ip = fr + 14, *tcp = fr + 34;
		struct mg_kv_ip_pair src, dst;
		uint16_t c;

		kvsync_entry_of(slot_entry(i), &src);
		kvsync_entry_of(0, &dst);
		memcpy(fr, l2, sizeof(l2));
		ip[0] = 0x45;
		ip[3] = 50;
		ip[8] = 64;
		ip[9] = MG_IPPROTO_TCP;
		memcpy(ip + 12, src.prefix.addr, 4);
		memcpy(ip + 16, dst.prefix.addr, 4);
		c = fwd_csum(ip, 20);
		ip[10] = (uint8_t)(c >> 8);
		ip[11] = (uint8_t)c;
		tcp[0] = 0xc0;
		tcp[1] = (uint8_t)i;
		tcp[2] = 8080 >> 8;
		tcp[3] = 8080 & 0xff;
		tcp[12] = 0x50;
		tcp[13] = 0x02; /* SYN */
		tcp[14] = 0xff;
		tcp[15] = 0xff;
		fwrite(rh, sizeof(rh), 1, f);
		fwrite(fr, sizeof(fr), 1, f);
	}
	return fclose(f) == 0 ? 0 : -errno;
}

/* One measured window: counters, time, updates applied/written/published. */
struct fwd_mark {
	struct mg_dp_counters c;
	uint64_t t, applied, written, published, publishes;
};

struct fwd_run {
	struct mg_gateway *gw;
	const struct kvsync_pub *pub; /* publications: counts and times */
	struct fwd_writer *w;
	unsigned nw, secs;
	int phase, rc;
	bool hold;    /* no ticks: the writers build a backlog */
	bool running; /* writer threads started, not joined */
	uint64_t next, applied, backlog;
	uint64_t backlog_t0, backlog_w0; /* when the backlog's writing began */
	/* baseline start/end, updates start/end, catch-up start/end */
	struct fwd_mark m[6];
};

static uint64_t
fwd_written(const struct fwd_run *k)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < k->nw; i++)
		n += atomic_load(&k->w[i].written);
	return n;
}

static void
fwd_mark(struct mg_datapath *dp, struct fwd_run *k, struct fwd_mark *m)
{
	mg_datapath_counters(dp, &m->c);
	m->t = mg_time_ns();
	m->applied = k->applied;
	m->written = fwd_written(k);
	m->published = k->pub->published;
	m->publishes = k->pub->publishes;
}

static int
fwd_writers_start(struct fwd_run *k, uint64_t total)
{
	for (unsigned i = 0; i < k->nw; i++) {
		struct fwd_writer *w = &k->w[i];

		atomic_store(&w->stop, 0);
		atomic_store(&w->done, 0);
		w->limit = total / k->nw;
		if (total != 0)
			w->rate = 100000000; /* as fast as Redis takes them */
		if (pthread_create(&w->th, NULL, fwd_writer_main, w) != 0) {
			k->rc = -EAGAIN;
			k->nw = i;
			return -EAGAIN;
		}
	}
	k->running = true;
	return 0;
}

static void
fwd_writers_stop(struct fwd_run *k)
{
	if (!k->running)
		return;
	for (unsigned i = 0; i < k->nw; i++)
		atomic_store(&k->w[i].stop, 1);
	for (unsigned i = 0; i < k->nw; i++)
		pthread_join(k->w[i].th, NULL);
	k->running = false;
}

/*
 * After the measured phase: drain, then the catch-up: the client holds
 * off while the writers put a backlog into the log as fast as Redis takes
 * them, then it applies the backlog while the worker forwards. That shows
 * what the client and the publications sustain when the writer side is
 * not the limit (a backlog below the log's MAXLEN, so nothing is trimmed).
 */
static int
fwd_catch_up(struct mg_datapath *dp, struct fwd_run *k, uint64_t now)
{
	switch (k->phase) {
	case 4: /* draining the measured phase's updates */
		if (k->applied < fwd_written(k))
			return now >= k->next;
		k->hold = true;
		k->backlog_t0 = mg_time_ns();
		k->backlog_w0 = fwd_written(k);
		if (fwd_writers_start(k, k->backlog) < 0)
			return 1;
		k->next = now + 60000000000ull;
		break;
	case 5: /* the backlog is being written */
		for (unsigned i = 0; i < k->nw; i++)
			if (!atomic_load(&k->w[i].done))
				return now >= k->next;
		fwd_writers_stop(k);
		k->hold = false;
		fwd_mark(dp, k, &k->m[4]);
		k->next = now + 60000000000ull;
		break;
	default: /* catching up */
		if (k->applied < fwd_written(k))
			return now >= k->next;
		fwd_mark(dp, k, &k->m[5]);
		k->phase = 7;
		return 1;
	}
	k->phase++;
	return 0;
}

/*
 * Main lcore, every ~10 ms: the gateway's sync ticks (poll, then the
 * batch published), for as long as entries keep arriving (at most 50 ms:
 * mg_datapath_run sleeps 10 ms between ticks, which would otherwise cap
 * the rate at one XREAD COUNT per tick), then the phases.
 */
static int
fwd_tick(struct mg_datapath *dp, void *arg)
{
	struct fwd_run *k = arg;
	uint64_t until = mg_time_ns() + 50000000, now;

	do {
		if (k->hold)
			break;
		int n = kvsync_tick(k->gw);

		if (n < 0) {
			k->rc = n;
			return 1;
		}
		k->applied += (uint64_t)n;
		if (n == 0)
			break; /* nothing arrived within block_ms */
	} while (mg_time_ns() < until);
	now = mg_time_ns();
	if (k->phase >= 4)
		return fwd_catch_up(dp, k, now);
	if (now < k->next)
		return 0;
	switch (k->phase) {
	case 0: /* warmed up: baseline */
		fwd_mark(dp, k, &k->m[0]);
		k->next = now + k->secs * 1000000000ull;
		break;
	case 1: /* baseline done: writers on, one second to reach their rate */
		fwd_mark(dp, k, &k->m[1]);
		if (fwd_writers_start(k, 0) < 0)
			return 1;
		k->next = now + 1000000000ull;
		break;
	case 2:
		fwd_mark(dp, k, &k->m[2]);
		k->next = now + k->secs * 1000000000ull;
		break;
	default: /* measured: stop the writers, then drain what they wrote */
		fwd_mark(dp, k, &k->m[3]);
		fwd_writers_stop(k);
		k->next = now + 20000000000ull;
		break;
	}
	k->phase++;
	return 0;
}

static double
fwd_rate(uint64_t a, uint64_t b, uint64_t t0, uint64_t t1)
{
	return t1 > t0 ? (double)(b - a) / ((double)(t1 - t0) / 1e9) : 0;
}

/* The figures of a finished updates-while-forwarding run (phase 5 on). */
static void
fwd_report(const struct fwd_run *k)
{
	const struct fwd_mark *m = k->m;
	uint64_t written = fwd_written(k);
	struct mg_kv_sync_stats st;

	mg_kv_sync_stats(mg_gateway_sync(k->gw), 0, &st);
	printf("forward   without updates  %10.0f frames/s (allowed %.0f/s, denied "
	       "%.0f/s)\n",
	       fwd_rate(fwd_rx(&m[0].c), fwd_rx(&m[1].c), m[0].t, m[1].t),
	       fwd_rate(m[0].c.allowed, m[1].c.allowed, m[0].t, m[1].t),
	       fwd_rate(m[0].c.denied_ingress + m[0].c.denied_egress,
	                m[1].c.denied_ingress + m[1].c.denied_egress, m[0].t, m[1].t));
	printf("forward   with updates     %10.0f frames/s (allowed %.0f/s, denied "
	       "%.0f/s)\n",
	       fwd_rate(fwd_rx(&m[2].c), fwd_rx(&m[3].c), m[2].t, m[3].t),
	       fwd_rate(m[2].c.allowed, m[3].c.allowed, m[2].t, m[3].t),
	       fwd_rate(m[2].c.denied_ingress + m[2].c.denied_egress,
	                m[3].c.denied_ingress + m[3].c.denied_egress, m[2].t, m[3].t));
	printf("updates   written %10.0f/s  applied %10.0f/s  ipcache changes published "
	       "%10.0f/s  in %.0f publications/s (largest publish %.2f ms)\n",
	       fwd_rate(m[2].written, m[3].written, m[2].t, m[3].t),
	       fwd_rate(m[2].applied, m[3].applied, m[2].t, m[3].t),
	       fwd_rate(m[2].published, m[3].published, m[2].t, m[3].t),
	       fwd_rate(m[2].publishes, m[3].publishes, m[2].t, m[3].t),
	       (double)k->pub->max_ns / 1e6);
	printf("          after the writers stopped: written %" PRIu64 ", applied %" PRIu64
	       " (%s); resyncs %" PRIu64 "\n",
	       written, k->applied, k->applied >= written ? "all applied" : "NOT all applied",
	       st.resyncs[0] + st.resyncs[1] + st.resyncs[2] + st.resyncs[3]);
	if (k->phase != 7) {
		printf("catch-up  not finished (phase %d)\n", k->phase);
		return;
	}
	printf("catch-up  %" PRIu64 " updates written while the client held off, "
	       "in %.2f s: %10.0f updates/s written\n",
	       m[4].written - k->backlog_w0, (double)(m[4].t - k->backlog_t0) / 1e9,
	       fwd_rate(k->backlog_w0, m[4].written, k->backlog_t0, m[4].t));
	printf("catch-up  %" PRIu64 " updates applied in %.2f s: %10.0f updates/s "
	       "applied and published in %.0f publications/s, forwarding %10.0f "
	       "frames/s meanwhile (allowed %.0f/s, denied %.0f/s)\n",
	       m[5].applied - m[4].applied, (double)(m[5].t - m[4].t) / 1e9,
	       fwd_rate(m[4].applied, m[5].applied, m[4].t, m[5].t),
	       fwd_rate(m[4].publishes, m[5].publishes, m[4].t, m[5].t),
	       fwd_rate(fwd_rx(&m[4].c), fwd_rx(&m[5].c), m[4].t, m[5].t),
	       fwd_rate(m[4].c.allowed, m[5].c.allowed, m[4].t, m[5].t),
	       fwd_rate(m[4].c.denied_ingress + m[4].c.denied_egress,
	                m[5].c.denied_ingress + m[5].c.denied_egress, m[4].t, m[5].t));
}

/* The writers' keys and values (see fwd_writer), encoded before the clock starts. */
struct fwd_keys {
	uint32_t n;
	char **keys, **vals;
};

static void
fwd_keys_free(struct fwd_keys *kv)
{
	for (uint32_t i = 0; i < kv->n && kv->keys != NULL && kv->vals != NULL; i++) {
		free(kv->keys[i]);
		free(kv->vals[2 * i]);
		free(kv->vals[2 * i + 1]);
	}
	free(kv->keys);
	free(kv->vals);
}

static int
fwd_keys_make(struct fwd_keys *kv, uint32_t n)
{
	kv->n = n;
	kv->keys = calloc(n, sizeof(*kv->keys));
	kv->vals = calloc(2 * (size_t)n, sizeof(*kv->vals));
	if (kv->keys == NULL || kv->vals == NULL)
		return -ENOMEM;
	/* entry 0 is the server: the writers change 1 .. n-1 */
	for (uint32_t i = 1; i < n; i++) {
		struct mg_kv_ip_pair p;
		char key[MG_KV_KEY_MAX];

		kvsync_entry_of(i, &p);
		if (mg_kv_ip_key(key, sizeof(key), MG_KV_SCOPE_STATE, CLUSTER, &p.prefix, true) <
		            0 ||
		    (kv->keys[i] = strdup(key)) == NULL)
			return -ENOMEM;
		p.prefix.identity = ID_CLIENT;
		if ((kv->vals[2 * i] = mg_kv_ip_pair_encode(&p)) == NULL)
			return -ENOMEM;
		p.prefix.identity = ID_FILLER((i + 1) % N_FILLER);
		if ((kv->vals[2 * i + 1] = mg_kv_ip_pair_encode(&p)) == NULL)
			return -ENOMEM;
	}
	return 0;
}

/* `--updates-while-forwarding` on the started gateway and the created data path. */
static int
fwd_updates(struct mg_datapath *dp, struct mg_gateway *gw, const struct kvsync_pub *pub,
            unsigned port, const struct kvsync_fwd_opts *o)
{
	struct fwd_writer *w = calloc(o->writers, sizeof(*w));
	struct fwd_keys kv = {0};
	struct fwd_run k = {0};
	volatile int never = 0;
	int rc = w != NULL ? fwd_keys_make(&kv, o->n) : -ENOMEM;

	for (unsigned i = 0; i < o->writers && rc == 0; i++) {
		/* entry 0 is the server: writers share 1 .. n-1 */
		w[i].port = port;
		w[i].rate = o->rate / o->writers;
		w[i].batch = o->batch;
		w[i].first = 1 + (uint32_t)((uint64_t)(o->n - 1) * i / o->writers);
		w[i].n = 1 + (uint32_t)((uint64_t)(o->n - 1) * (i + 1) / o->writers) - w[i].first;
		w[i].keys = kv.keys;
		w[i].vals = kv.vals;
	}
	if (rc < 0)
		goto out;
	k.gw = gw;
	k.pub = pub;
	k.w = w;
	k.nw = o->writers;
	k.secs = o->secs;
	k.backlog = o->backlog;                /* below the log's MAXLEN */
	k.next = mg_time_ns() + 1000000000ull; /* warm-up */
	rc = mg_datapath_start(dp);
	if (rc == 0)
		mg_datapath_run(dp, &never, fwd_tick, &k);
	mg_datapath_stop(dp);
	fwd_writers_stop(&k); /* stopped early: the writers may run */
	rc = rc < 0 ? rc : k.rc;
	if (rc == 0 && k.phase < 5) {
		fprintf(stderr, "kvsync: forward: the updates were not all applied (phase %d)\n",
		        k.phase);
		rc = -ETIMEDOUT;
	}
	if (rc == 0) {
		fwd_report(&k);
		if (k.applied < fwd_written(&k))
			rc = -ETIMEDOUT;
	}
out:
	fwd_keys_free(&kv);
	free(w);
	return rc;
}

/* `--latency-while-forwarding` (bench_kvsync_latency.c) on the same setup. */
static int
fwd_latency(struct mg_datapath *dp, struct mg_gateway *gw, struct kvsync_pub *pub, unsigned port,
            unsigned secs)
{
	struct lf_run r = {.gw = gw, .pub = pub, .port = port, .secs = secs};
	volatile int never = 0;
	int rc;

	kvsync_lf_pin_redis();
	rc = mg_datapath_start(dp);
	if (rc == 0)
		mg_datapath_run(dp, &never, kvsync_lf_tick, &r);
	mg_datapath_stop(dp);
	return rc < 0 ? rc : r.rc;
}

/* The daemon's publication (mg_datapath_publish), timed and counted. */
int
kvsync_publish(void *arg, struct mg_ipcache *ipc, struct mg_policy *policy)
{
	struct kvsync_pub *p = arg;
	uint64_t t0 = mg_time_ns();
	int rc = mg_datapath_publish(p->dp, ipc, policy);

	p->last_ns = mg_time_ns();
	if (rc < 0)
		return rc;
	if (p->last_ns - t0 > p->max_ns)
		p->max_ns = p->last_ns - t0;
	p->published += (uint64_t)rc;
	p->publishes++;
	return rc;
}

/* The fill, and for --latency-while-forwarding the test IPs moved to the client. */
static int
fwd_fill(unsigned port, uint32_t n, const char *lua, size_t lua_len, bool lat)
{
	redisContext *c = kvsync_connect_port(port);
	int rc;

	if (c == NULL)
		return -ECONNREFUSED;
	rc = kvsync_fill(c, n, lua, lua_len);
	if (rc == 0 && lat)
		rc = kvsync_lf_preset(c);
	redisFree(c);
	return rc;
}

/* The EAL: lcores @p lcores, no hugepages, two net_pcap ports replaying @p pcap. */
static int
fwd_eal_init(const char *lcores, const char *pcap)
{
	static char vdev[2][256];
	char *eal_argv[16];
	int eal_argc = 0;

	for (int i = 0; i < 2; i++)
		snprintf(vdev[i], sizeof(vdev[i]), "--vdev=net_pcap%d,rx_pcap=%s,infinite_rx=1", i,
		         pcap);
	eal_argv[eal_argc++] = (char *)"meshgate-bench";
	eal_argv[eal_argc++] = (char *)"-l";
	eal_argv[eal_argc++] = (char *)lcores;
	eal_argv[eal_argc++] = (char *)"--no-huge";
	eal_argv[eal_argc++] = (char *)"-m";
	eal_argv[eal_argc++] = (char *)"512";
	eal_argv[eal_argc++] = (char *)"--no-pci";
	eal_argv[eal_argc++] = (char *)"--file-prefix";
	eal_argv[eal_argc++] = (char *)"mgbench-kvf";
	eal_argv[eal_argc++] = (char *)"--log-level=lib.eal:error";
	eal_argv[eal_argc++] = vdev[0];
	eal_argv[eal_argc++] = vdev[1];
	if (rte_eal_init(eal_argc, eal_argv) < 0) {
		fprintf(stderr, "kvsync: EAL: %s\n", rte_strerror(rte_errno));
		return -EINVAL;
	}
	return 0;
}

/*
 * The daemon's start: the gateway's initial sync and first compile, the
 * data path created with the policy it compiled, then every later batch
 * published through the gateway's callback (kvsync_publish).
 */
int
kvsync_forward_run(unsigned port, const char *lua, size_t lua_len, const struct kvsync_fwd_opts *o)
{
	char dir[] = "/tmp/mgbench-kvf.XXXXXX", pcap[128];
	struct kvsync_gw g = {0};
	struct kvsync_pub pub = {0};
	struct mg_error err = {0};
	struct rte_rcu_qsbr *qsbr;
	struct mg_policy *pol;
	int rc;

	if (mkdtemp(dir) == NULL)
		return -errno;
	snprintf(pcap, sizeof(pcap), "%s/frames.pcap", dir);
	rc = fwd_pcap(pcap, o->lat ? LF_IPS : FWD_FRAMES);
	if (rc == 0)
		rc = fwd_fill(port, o->n, lua, lua_len, o->lat);
	if (rc == 0)
		rc = fwd_eal_init(o->lcores, pcap);
	if (rc < 0)
		goto out;
	qsbr = mg_datapath_qsbr_create();
	rc = qsbr != NULL ? kvsync_gateway_open(&g, port, 1, qsbr) : -ENOMEM;
	if (rc < 0)
		goto eal;
	pol = mg_gateway_take_policy(g.gw);
	pub.dp = mg_datapath_create(mg_gateway_config(g.gw), mg_gateway_ipcache(g.gw), pol, qsbr,
	                            &err);
	if (pub.dp == NULL) {
		mg_gateway_return_policy(g.gw, pol);
		fprintf(stderr, "kvsync: data path: %s\n", err.msg);
		rc = -EIO;
		goto eal;
	}
	mg_gateway_set_publish(g.gw, kvsync_publish, &pub);
	if (o->lat)
		rc = fwd_latency(pub.dp, g.gw, &pub, port, o->secs);
	else
		rc = fwd_updates(pub.dp, g.gw, &pub, port, o);
	mg_datapath_free(pub.dp);
eal:
	kvsync_gateway_close(&g); /* after the data path, which reads its tables */
	rte_free(qsbr);
	rte_eal_cleanup();
out:
	unlink(pcap);
	rmdir(dir);
	return rc;
}
