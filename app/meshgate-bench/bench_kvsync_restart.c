/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `meshgate-bench kvsync --restart DAEMON`: the real daemon's start, from
 * exec to its "ready" line, in front of a Redis holding cluster-a with N
 * entries (what a restart after a crash costs). The bench fills Redis once
 * per size, writes a config (two net_null ports, one lcore: the main lcore
 * forwards, so nothing polls before "ready"; cluster-a's policy; the
 * kvstore section), then starts the daemon --runs times, reads its standard
 * error line by line and notes when each milestone line arrived:
 *
 *   sync      "kvstore: initial sync of" -> "synced: N entries" (the sync,
 *             the ipcache commit)
 *   ready     exec -> "info: ready: " (EAL, config, sync, the policy
 *             compile, the ports, the control socket)
 *
 * plus the daemon's peak resident memory (VmHWM) at "ready". Each run ends
 * with SIGTERM. Figures come from here; no test times anything.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_kvsync_priv.h"

#define RS_POLICY "policy.yaml"
#define RS_CONFIG "meshgate.yaml"

static const char rs_policy[] = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
                                "metadata: {name: server, namespace: bench}\n"
                                "spec:\n"
                                "  endpointSelector: {matchLabels: {app: server}}\n"
                                "  ingress:\n"
                                "  - fromEndpoints: [{matchLabels: {app: client}}]\n"
                                "    toPorts: [{ports: [{port: \"8080\", protocol: TCP}]}]\n";

static int
rs_write(const char *dir, unsigned port)
{
	char path[96];
	FILE *f;

	snprintf(path, sizeof(path), "%s/" RS_POLICY, dir);
	f = fopen(path, "w");
	if (f == NULL)
		return -errno;
	fputs(rs_policy, f);
	if (fclose(f) != 0)
		return -errno;
	snprintf(path, sizeof(path), "%s/" RS_CONFIG, dir);
	f = fopen(path, "w");
	if (f == NULL)
		return -errno;
	fprintf(f,
	        "version: 1\n"
	        "eal: [\"-l\", \"0\", \"--no-huge\", \"-m\", \"256\", \"--no-pci\", "
	        "\"--no-telemetry\", \"--file-prefix\", \"mgbench-restart-%d\", "
	        "\"--vdev=net_null0\", \"--vdev=net_null1\"]\n"
	        "datapath:\n  mode: wire\n  mbufs: 8191\n  ports:\n"
	        "    - {name: a, device: net_null0, peer: b}\n"
	        "    - {name: b, device: net_null1, peer: a}\n"
	        "cluster: {name: " CLUSTER ", id: %u}\n"
	        "policy:\n  sources: [{path: " RS_POLICY "}]\n"
	        "control:\n  socket: %s/meshgate.sock\n"
	        "kvstore:\n  redis: \"redis://127.0.0.1:%u\"\n  clusters: [" CLUSTER "]\n"
	        "  sync_timeout: 300\n",
	        (int)getpid(), CLUSTER_ID, dir, port);
	return fclose(f) != 0 ? -errno : 0;
}

static void
rs_remove(const char *dir)
{
	char path[96];

	snprintf(path, sizeof(path), "%s/" RS_CONFIG, dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/" RS_POLICY, dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/meshgate.sock", dir);
	unlink(path);
	rmdir(dir);
}

/* kB of the process's peak resident set, or 0. */
static unsigned long
rs_vmhwm(pid_t pid)
{
	char path[64], line[256];
	unsigned long kb = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmHWM: %lu kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

struct rs_times {
	double sync_begin, synced, ready; /* seconds after exec; < 0: never seen */
	unsigned long hwm_kb;
};

/* One start of @p daemon on @p config; 0 when it got ready, < 0 otherwise. */
static int
rs_one(const char *daemon, const char *config, struct rs_times *t)
{
	int fds[2], status;
	char *line = NULL;
	size_t cap = 0;
	uint64_t t0;
	pid_t pid;
	FILE *in;

	t->sync_begin = t->synced = t->ready = -1;
	t->hwm_kb = 0;
	if (pipe(fds) != 0)
		return -errno;
	fflush(NULL); /* the child's freopen would flush our buffer again */
	t0 = mg_time_ns();
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		dup2(fds[1], 2);
		if (freopen("/dev/null", "w", stdout) == NULL)
			_exit(127);
		close(fds[0]);
		close(fds[1]);
		execl(daemon, daemon, "-c", config, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	in = fdopen(fds[0], "r");
	if (in == NULL) {
		close(fds[0]);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -ENOMEM;
	}
	while (getline(&line, &cap, in) > 0) {
		double at = (double)(mg_time_ns() - t0) / 1e9;

		if (t->sync_begin < 0 && strstr(line, "kvstore: initial sync of") != NULL)
			t->sync_begin = at;
		else if (t->synced < 0 && strstr(line, " synced: ") != NULL)
			t->synced = at;
		else if (t->ready < 0 && strstr(line, "info: ready: ") != NULL) {
			t->ready = at;
			t->hwm_kb = rs_vmhwm(pid);
			kill(pid, SIGTERM);
		} else if (t->ready < 0 && strstr(line, "error") != NULL) {
			fputs(line, stderr);
		}
	}
	free(line);
	fclose(in);
	waitpid(pid, &status, 0);
	return t->ready >= 0 ? 0 : -EIO;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The restarts for one size (Redis already filled). */
static int
rs_size(const char *daemon, const char *config, uint32_t n, unsigned runs)
{
	double ready[16], sync[16];
	struct rs_times t;
	unsigned i;
	int rc;

	for (i = 0; i < runs; i++) {
		rc = rs_one(daemon, config, &t);
		if (rc < 0) {
			fprintf(stderr, "kvsync: restart: the daemon did not get ready\n");
			return rc;
		}
		ready[i] = t.ready;
		sync[i] = t.synced >= 0 && t.sync_begin >= 0 ? t.synced - t.sync_begin : -1;
		printf("  run %u: %8" PRIu32 " entries: start->ready %.3f s (sync %.3f s, after "
		       "the sync %.3f s), peak RSS %lu MB\n",
		       i + 1, n, t.ready, sync[i], t.synced >= 0 ? t.ready - t.synced : -1,
		       t.hwm_kb / 1024);
		fflush(stdout);
	}
	qsort(ready, runs, sizeof(ready[0]), cmp_double);
	qsort(sync, runs, sizeof(sync[0]), cmp_double);
	printf("restart %8" PRIu32 " entries: start->ready median %.3f s (min %.3f, max %.3f), "
	       "sync median %.3f s, %u runs\n",
	       n, ready[runs / 2], ready[0], ready[runs - 1], sync[runs / 2], runs);
	fflush(stdout);
	return 0;
}

int
kvsync_restart_run(unsigned port, const char *daemon, const char *entries, unsigned runs,
                   const char *lua, size_t lua_len)
{
	char dir[] = "/tmp/mgbench-restart.XXXXXX", config[96];
	char *list, *save = NULL, *tok;
	redisContext *c;
	int rc;

	if (runs == 0 || runs > 16 || access(daemon, X_OK) != 0) {
		fprintf(stderr,
		        "kvsync: --restart needs an executable daemon and 1 to 16 --runs\n");
		return -EINVAL;
	}
	if (mkdtemp(dir) == NULL)
		return -errno;
	rc = rs_write(dir, port);
	snprintf(config, sizeof(config), "%s/" RS_CONFIG, dir);
	printf("restart: %s -c <config>: two net_null ports, one lcore, cluster %s from Redis; "
	       "times from exec to each log line\n",
	       daemon, CLUSTER);
	list = strdup(entries);
	if (list == NULL)
		rc = -ENOMEM;
	for (tok = list && rc == 0 ? strtok_r(list, ",", &save) : NULL; tok && rc == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		uint32_t n = (uint32_t)strtoul(tok, NULL, 0);

		c = kvsync_connect_port(port);
		if (c == NULL) {
			rc = -ECONNREFUSED;
			break;
		}
		rc = kvsync_fill(c, n, lua, lua_len);
		redisFree(c);
		if (rc == 0)
			rc = rs_size(daemon, config, n, runs);
	}
	free(list);
	rs_remove(dir);
	return rc;
}
