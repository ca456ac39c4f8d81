/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fan-out: m etcd clusters (tests/etcd/etcd_env.sh, each with its own
 * cluster config and data) copied by one replicator into one Redis, read
 * by n gateway sync clients (lib/kvstore's mg_kv_sync, as each gateway
 * runs one: its own identity table, ipcache and Redis connection, all m
 * clusters, block_ms 100, a thread each). Once all are synced, the
 * connections each server holds are counted from /proc/net/tcp (a socket
 * of this process, which runs the replicator and the clients, or of
 * another) and Redis's CLIENT LIST. Then Redis's load: commands per second
 * (INFO commandstats, INFO stats) and redis-server's CPU time
 * (/proc/PID/stat) over an idle window and over a window of steady
 * updates (--fan-rate puts per second into each etcd, each changing one
 * ip entry's identity); every client must have applied every update.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_kvsync_priv.h"
#include "bench_replicator_priv.h"

#define FAN_CID0 10u /* cluster ids 10, 11, ... */

struct fan_gw {
	const struct rb_fan_opts *o;
	const char *const *names;
	atomic_bool *stop;
	_Atomic int synced;
	_Atomic uint64_t events;
	int rc;
	char why[256];
	pthread_t th;
};

static int
fan_gw_loop(struct fan_gw *g, struct mg_kv_sync *s, struct mg_ipcache *ipc)
{
	struct mg_error err = {0};
	uint32_t *changed = NULL;
	size_t n_changed = 0;
	int rc = mg_kv_sync_initial(s, 120000, &changed, &n_changed, &err);

	if (rc < 0) {
		snprintf(g->why, sizeof(g->why), "%.255s", err.msg);
		free(changed);
		return rc;
	}
	if (mg_ipcache_commit(ipc) < 0)
		rc = -ENOMEM;
	free(changed);
	atomic_store(&g->synced, 1);
	while (rc == 0 && !atomic_load(g->stop)) {
		changed = NULL;
		n_changed = 0;
		int n = mg_kv_sync_poll(s, &changed, &n_changed);

		free(changed);
		if (n > 0)
			atomic_fetch_add(&g->events, (uint64_t)n);
		if (mg_ipcache_pending(ipc) > 0 && mg_ipcache_commit(ipc) < 0)
			rc = -ENOMEM;
		if (n < 0 && n != -ENOTCONN)
			rc = n;
	}
	return rc;
}

static void *
fan_gw_main(void *arg)
{
	struct fan_gw *g = arg;
	struct mg_kv_sync_cluster_params cl[16];
	struct mg_ipcache_params ip = {.entries_hint = g->o->keys * g->o->clusters,
	                               .split_world = true};
	struct mg_identity_table *ids = mg_identity_table_create(MG_CLUSTER_MODE_255);
	struct mg_ipcache *ipc = mg_ipcache_create(&ip);
	struct mg_error err = {0};
	char url[64];
	struct mg_kv_sync *s = NULL;

	snprintf(url, sizeof(url), "redis://127.0.0.1:%u", g->o->redis_port);
	for (unsigned i = 0; i < g->o->clusters; i++)
		cl[i] = (struct mg_kv_sync_cluster_params){.name = g->names[i]};
	struct mg_kv_sync_params p = {
	        .url = url, .n_clusters = g->o->clusters, .clusters = cl, .block_ms = 100};
	if (ids != NULL && ipc != NULL)
		s = mg_kv_sync_create(&p, ids, ipc, &err);
	if (s == NULL) {
		snprintf(g->why, sizeof(g->why), "%.255s", err.msg[0] ? err.msg : "out of memory");
		g->rc = -ENOMEM;
	} else {
		g->rc = fan_gw_loop(g, s, ipc);
	}
	if (g->rc < 0)
		atomic_store(&g->synced, -1);
	mg_kv_sync_free(s);
	mg_ipcache_free(ipc);
	mg_identity_table_free(ids);
	return NULL;
}

/* ---- connections ---- */

/* Is socket inode @p ino one of this process's? */
static bool
own_socket(unsigned long ino)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	char path[300], link[64], want[40];
	bool found = false;

	if (d == NULL)
		return false;
	snprintf(want, sizeof(want), "socket:[%lu]", ino);
	while (!found && (de = readdir(d)) != NULL) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = '\0';
			found = strcmp(link, want) == 0;
		}
	}
	closedir(d);
	return found;
}

/*
 * Established connections to 127.0.0.1:@p port, by whose client socket it
 * is (/proc/net/tcp and tcp6: gRPC connects from a dual-stack socket).
 */
static void
count_conns(unsigned port, unsigned *ours, unsigned *others)
{
	static const char *const files[2] = {"/proc/net/tcp", "/proc/net/tcp6"};
	char line[512];

	*ours = *others = 0;
	for (int i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "r");

		while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
			unsigned rport, st;
			unsigned long ino;

			if (sscanf(line,
			           " %*u: %*[0-9A-Fa-f]:%*x %*[0-9A-Fa-f]:%x %x %*x:%*x %*x:%*x "
			           "%*x "
			           "%*u %*u %lu",
			           &rport, &st, &ino) != 3 ||
			    st != 1 || rport != port)
				continue;
			if (own_socket(ino))
				(*ours)++;
			else
				(*others)++;
		}
		if (f != NULL)
			fclose(f);
	}
}

/* Redis's clients, less the bench's monitor; how many last ran XREAD. */
static void
redis_clients(redisContext *c, unsigned *total, unsigned *xread)
{
	redisReply *r = redisCommand(c, "CLIENT LIST");

	*total = *xread = 0;
	if (r == NULL || r->type != REDIS_REPLY_STRING) {
		freeReplyObject(r);
		return;
	}
	for (char *line = r->str, *nl; line != NULL && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl != NULL)
			*nl = '\0';
		if (strstr(line, " name=bench-monitor ") != NULL || strstr(line, "id=") != line)
			continue;
		(*total)++;
		*xread += strstr(line, " cmd=xread") != NULL;
	}
	freeReplyObject(r);
}

/* ---- Redis's load ---- */

#define MAX_CMDS 64

struct rload {
	uint64_t t_ns, cpu_ticks, commands;
	unsigned n;
	char name[MAX_CMDS][32];
	uint64_t calls[MAX_CMDS], usec[MAX_CMDS];
};

static uint64_t
proc_cpu_ticks(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long ut = 0, stt = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), f) != NULL) {
		char *p = strrchr(buf, ')');

		if (p == NULL ||
		    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
		           &stt) != 2)
			ut = stt = 0;
	}
	fclose(f);
	return ut + stt;
}

static int
rload_take(redisContext *c, pid_t pid, struct rload *l)
{
	redisReply *r = redisCommand(c, "INFO commandstats");
	redisReply *s = redisCommand(c, "INFO stats");
	int rc =
	        r && s && r->type == REDIS_REPLY_STRING && s->type == REDIS_REPLY_STRING ? 0 : -EIO;

	memset(l, 0, sizeof(*l));
	l->t_ns = mg_time_ns();
	l->cpu_ticks = proc_cpu_ticks(pid);
	for (char *p = rc == 0 ? strstr(r->str, "cmdstat_") : NULL; p && l->n < MAX_CMDS;
	     p = strstr(p + 1, "cmdstat_")) {
		unsigned long long calls, usec;

		if (sscanf(p, "cmdstat_%31[^:]:calls=%llu,usec=%llu", l->name[l->n], &calls,
		           &usec) == 3) {
			l->calls[l->n] = calls;
			l->usec[l->n++] = usec;
		}
	}
	char *tc = rc == 0 ? strstr(s->str, "total_commands_processed:") : NULL;
	if (tc != NULL)
		l->commands = strtoull(tc + 25, NULL, 10);
	freeReplyObject(r);
	freeReplyObject(s);
	return rc;
}

static void
rload_print(const char *what, const struct rload *a, const struct rload *b)
{
	double secs = (double)(b->t_ns - a->t_ns) / 1e9;
	double cpu = (double)(b->cpu_ticks - a->cpu_ticks) / (double)sysconf(_SC_CLK_TCK);

	printf("  Redis %-28s %8.0f commands/s, redis-server CPU %5.1f %% of one core\n", what,
	       (double)(b->commands - a->commands) / secs, 100 * cpu / secs);
	printf("    ");
	for (unsigned i = 0; i < b->n; i++) {
		uint64_t c0 = 0, u0 = 0;

		for (unsigned j = 0; j < a->n; j++)
			if (strcmp(a->name[j], b->name[i]) == 0)
				c0 = a->calls[j], u0 = a->usec[j];
		if (b->calls[i] - c0 < secs) /* under 1/s */
			continue;
		printf(" %s %.0f/s (%.0f us)", b->name[i], (double)(b->calls[i] - c0) / secs,
		       (double)(b->usec[i] - u0) / (double)(b->calls[i] - c0));
	}
	printf("\n");
}

/* ---- steady updates ---- */

struct fan_writer {
	const struct rb_etcd *e;
	struct rb_data d;
	unsigned rate, secs;
	uint64_t puts;
	int rc;
	struct mg_error err;
	pthread_t th;
};

static void *
fan_writer_main(void *arg)
{
	struct fan_writer *w = arg;
	struct mg_etcd *c = rb_etcd_open(w->e, true, &w->err);
	uint64_t t0 = mg_time_ns(), n = (uint64_t)w->rate * w->secs;
	char key[96], val[400];

	w->rc = c != NULL ? 0 : -EIO;
	for (uint64_t k = 0; k < n && w->rc == 0; k++) {
		uint32_t slot = (uint32_t)(k % w->d.n_ips), round = (uint32_t)(k / w->d.n_ips);
		uint32_t id = rb_ident(w->d.cid, 2 + (slot + round + 1) % (w->d.n_ids - 2));

		rb_wait_until(t0 + k * 1000000000ull / w->rate);
		rb_ip_kv(&w->d, slot, id, key, sizeof(key), val, sizeof(val));
		w->rc = mg_etcd_put(c, key, strlen(key), val, strlen(val), NULL, &w->err);
		w->puts += w->rc == 0;
	}
	mg_etcd_close(c);
	return NULL;
}

/* ---- the run ---- */

static int
fan_setup(const struct rb_fan_opts *o, struct rb_etcd *e, struct rb_data *d, char *meshdir,
          size_t size)
{
	char cmd[1024];
	int rc;

	snprintf(meshdir, size, "%s/fanmesh", o->base);
	rc = rb_etcd_start_many(e, o->clusters, o->base, "cluster-f");
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", meshdir);
	if (rc == 0 && system(cmd) != 0)
		rc = -EIO;
	for (unsigned i = 0; i < o->clusters && rc == 0; i++) {
		d[i] = (struct rb_data){.name = e[i].name, .cid = FAN_CID0 + i};
		d[i].n_ids = o->keys / 5 > 3 ? o->keys / 5 : 3;
		d[i].n_ips = o->keys - d[i].n_ids;
		rc = rb_load(&e[i], &d[i], 0, 0, 1, true);
		snprintf(cmd, sizeof(cmd), "cp '%s' '%s/%s'", e[i].config, meshdir, e[i].name);
		if (rc == 0 && system(cmd) != 0)
			rc = -EIO;
	}
	return rc;
}

static int
fan_wait_gateways(const struct rb_fan_opts *o, struct fan_gw *g, uint64_t t0)
{
	uint64_t deadline = mg_time_ns() + 180000000000ull;
	unsigned ok = 0;

	while (ok < o->gateways && mg_time_ns() < deadline) {
		struct timespec ts = {.tv_nsec = 5000000};

		ok = 0;
		for (unsigned i = 0; i < o->gateways; i++) {
			int s = atomic_load(&g[i].synced);

			if (s < 0) {
				fprintf(stderr, "replicator: FAIL: sync client %u: %s\n", i,
				        g[i].why);
				return -EIO;
			}
			ok += s == 1;
		}
		nanosleep(&ts, NULL);
	}
	if (ok < o->gateways) {
		fprintf(stderr, "replicator: FAIL: %u of %u sync clients synced\n", ok,
		        o->gateways);
		return -ETIMEDOUT;
	}
	printf("  all %u sync clients synced %.2f s after they started\n", o->gateways,
	       (double)(mg_time_ns() - t0) / 1e9);
	return 0;
}

static void
fan_conns(const struct rb_fan_opts *o, const struct rb_etcd *e, redisContext *mon)
{
	unsigned ours, others, sum = 0, total, xread;

	for (unsigned i = 0; i < o->clusters; i++) {
		count_conns(e[i].port, &ours, &others);
		sum += ours;
		printf("  etcd %-10s port %5u: %u connection(s) from the replicator's process, %u "
		       "other(s) (etcd's own gRPC gateway dials itself)\n",
		       e[i].name, e[i].port, ours, others);
	}
	count_conns(o->redis_port, &ours, &others);
	redis_clients(mon, &total, &xread);
	printf("  Redis: CLIENT LIST %u clients besides the bench's monitor (%u last ran XREAD: "
	       "the sync clients); /proc/net/tcp: %u from this process, %u others\n",
	       total, xread, ours - 1, others);
	printf("  connections: %u on the etcds (m = %u), %u on Redis (n + 1 = %u): m + n + 1 = %u; "
	       "every gateway to every etcd (Cilium without KVStoreMesh): m x n = %u\n",
	       sum, o->clusters, total, o->gateways + 1, sum + total, o->clusters * o->gateways);
}

/* The steady load: writers on, then wait until every client applied every update. */
static int
fan_load(const struct rb_fan_opts *o, const struct rb_etcd *e, const struct rb_data *d,
         struct fan_gw *g, redisContext *mon)
{
	struct fan_writer w[16];
	struct rload a, b;
	uint64_t ev0[200], want = (uint64_t)o->clusters * o->rate * o->secs, deadline;
	int rc = 0;

	for (unsigned i = 0; i < o->gateways; i++)
		ev0[i] = atomic_load(&g[i].events);
	rload_take(mon, o->redis_pid, &a);
	for (unsigned i = 0; i < o->clusters; i++) {
		w[i] = (struct fan_writer){.e = &e[i], .d = d[i], .rate = o->rate, .secs = o->secs};
		if (pthread_create(&w[i].th, NULL, fan_writer_main, &w[i]) != 0)
			return -EAGAIN;
	}
	for (unsigned i = 0; i < o->clusters; i++) {
		pthread_join(w[i].th, NULL);
		if (w[i].rc < 0) {
			fprintf(stderr, "replicator: writer %s: %s\n", e[i].name, w[i].err.msg);
			rc = w[i].rc;
		}
	}
	rload_take(mon, o->redis_pid, &b);
	rload_print("under updates:", &a, &b);
	deadline = mg_time_ns() + 20000000000ull;
	for (unsigned i = 0; i < o->gateways && rc == 0; i++) {
		while (atomic_load(&g[i].events) - ev0[i] < want && mg_time_ns() < deadline)
			usleep(2000);
		if (atomic_load(&g[i].events) - ev0[i] < want) {
			fprintf(stderr,
			        "replicator: FAIL: sync client %u applied %" PRIu64 " of %" PRIu64
			        " updates\n",
			        i, atomic_load(&g[i].events) - ev0[i], want);
			rc = -ETIMEDOUT;
		}
	}
	if (rc == 0)
		printf("  every one of the %u sync clients applied all %" PRIu64 " updates (%u/s "
		       "into each of %u etcds for %u s)\n",
		       o->gateways, want, o->rate, o->clusters, o->secs);
	return rc;
}

int
rb_fanout(const struct rb_fan_opts *o)
{
	struct rb_etcd e[16];
	struct rb_data d[16];
	const char *names[16];
	struct fan_gw g[200];
	struct rb_rep x = {0};
	char meshdir[160];
	atomic_bool stop;
	redisContext *mon = o->mon;
	struct rload a, b;
	unsigned started = 0;
	int rc = mon != NULL ? 0 : -EIO;

	printf("fan-out: %u etcd clusters x %u keys, one replicator, %u gateway sync clients "
	       "(lib/kvstore mg_kv_sync, all %u clusters, block_ms 100, a thread and a Redis "
	       "connection each)\n",
	       o->clusters, o->keys, o->gateways, o->clusters);
	memset(e, 0, sizeof(e));
	atomic_init(&stop, false);
	rc = rc ?: fan_setup(o, e, d, meshdir, sizeof(meshdir));
	rc = rc ?: rb_rep_start(&x, meshdir, o->redis_port, 1000, o->tick_ms);
	for (unsigned i = 0; i < o->clusters && rc == 0; i++) {
		names[i] = e[i].name;
		if (rb_wait_canaries(mon, e[i].name, x.t0, 120, 0, NULL) < 0)
			rc = -ETIMEDOUT;
	}
	if (rc == 0)
		printf("  replicator: all %u clusters in Redis %.2f s after its creation\n",
		       o->clusters, (double)(mg_time_ns() - x.t0) / 1e9);
	uint64_t tg = mg_time_ns();
	for (; started < o->gateways && rc == 0; started++) {
		g[started] = (struct fan_gw){.o = o, .names = names, .stop = &stop};
		if (pthread_create(&g[started].th, NULL, fan_gw_main, &g[started]) != 0)
			rc = -EAGAIN;
	}
	rc = rc ?: fan_wait_gateways(o, g, tg);
	if (rc == 0) {
		fan_conns(o, e, mon);
		rload_take(mon, o->redis_pid, &a);
		sleep(o->secs);
		rload_take(mon, o->redis_pid, &b);
		rload_print("idle (no update):", &a, &b);
		rc = fan_load(o, e, d, g, mon);
	}
	atomic_store(&stop, true);
	for (unsigned i = 0; i < started; i++)
		pthread_join(g[i].th, NULL);
	if (x.r != NULL)
		rb_rep_stop(&x);
	for (unsigned i = 0; i < o->clusters; i++)
		rb_etcd_stop(&e[i]);
	return rc;
}
