/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * meshgate-replicator: copies every remote cluster's clustermesh-apiserver
 * etcd into the site Redis the gateways read (docs/replicator.md).
 *
 *   meshgate-replicator -c FILE [--check-config] [-v]
 *
 * `--check-config` loads the config, the clusters' etcd config files and
 * the filter's policies, prints what it found and "config OK", and exits
 * 0 (1 on an error). Otherwise it runs until SIGINT/SIGTERM: the control
 * socket (meshgatectl --socket PATH replicator status|troubleshoot) on
 * this thread, the writer's turn on its own, the metrics endpoint on its
 * own. The writer waits for Redis without the replicator's lock, so a hung
 * Redis never keeps status or /metrics from answering.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mg_ctl.h"
#include "mg_kvstore.h"
#include "mg_metrics.h"
#include "mg_replicator.h"

static volatile sig_atomic_t stop;

/* The writer's thread: a turn every 5 ms until told to stop. */
struct writer {
	struct mg_replicator *r;
	atomic_bool stop;
};

static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
		struct timespec ts = {0, 5 * 1000000};
		mg_replicator_tick(w->r);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* Start it with the stop signals blocked: they go to the control thread. */
static int
writer_start(struct writer *w, pthread_t *th)
{
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	int rc = pthread_create(th, NULL, writer_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: meshgate-replicator -c FILE [--check-config] [-v]\n"
	           "  -c, --config FILE   meshgate-replicator.yaml\n"
	           "      --check-config  load the config and the clusters' etcd configs, print "
	           "'config OK', exit\n"
	           "  -v, --verbose       debug logs\n"
	           "  -V, --version       print the version\n"
	           "  -h, --help          this text\n");
}

/* The clusters' config files, as --check-config shows them. */
static int
check_dir(const struct mg_rep_config *c)
{
	DIR *d = opendir(c->config_dir);
	struct dirent *de;
	int bad = 0, n = 0;
	if (d == NULL) {
		fprintf(stderr, "clustermesh.config_dir: %s: %s\n", c->config_dir, strerror(errno));
		return 1;
	}
	while ((de = readdir(d)) != NULL) {
		char path[1024];
		struct mg_rep_etcd_config e;
		struct mg_error err = {{0}};
		struct stat st;
		/* the files the daemon reads (rep_core.c's scan), no others */
		if (de->d_name[0] == '.' || !mg_kv_cluster_name_valid(de->d_name) ||
		    strcmp(de->d_name, c->cluster_name) == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", c->config_dir, de->d_name);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (1 << 20))
			continue;
		int rc = mg_rep_etcd_config_load(path, de->d_name, c->config_dir, &e, &err);
		if (rc < 0) {
			fprintf(stderr, "%s\n", err.msg);
			bad++;
		} else if (rc == 1) {
			printf("cluster %s: %s (%zu endpoint%s)\n", e.name, e.endpoints[0],
			       e.n_endpoints, e.n_endpoints == 1 ? "" : "s");
			n++;
			mg_rep_etcd_config_clear(&e);
		}
	}
	closedir(d);
	printf("%d cluster%s in %s\n", n, n == 1 ? "" : "s", c->config_dir);
	return bad ? 1 : 0;
}

static int
run(const struct mg_rep_config *c)
{
	struct mg_error err = {{0}};
	struct mg_replicator *r = mg_replicator_create(c, &err);
	struct mg_ctl_server *srv = NULL;
	struct mg_metrics_http *h = NULL;
	int rc = 1;
	if (r == NULL) {
		fprintf(stderr, "meshgate-replicator: %s\n", err.msg);
		return 1;
	}
	if (c->control_socket != NULL) {
		struct mg_ctl_params cp = {
		        .path = c->control_socket,
		        .group = c->control_group,
		        .admin_group = c->control_admin_group,
		        .max_clients = c->control_max_clients,
		        .admin_reserve = c->control_max_clients > 2 ? 2 : 0,
		        .max_request = MG_CTL_DEFAULT_MAX_REQUEST,
		        .idle_ms = MG_CTL_DEFAULT_IDLE_MS,
		        .max_output = MG_CTL_DEFAULT_MAX_OUTPUT,
		};
		srv = mg_ctl_server_create(&cp, &err);
		if (srv == NULL || mg_replicator_register(r, srv, &err) < 0) {
			fprintf(stderr, "meshgate-replicator: control socket: %s\n", err.msg);
			goto out;
		}
	}
	if (c->metrics_listen != NULL) {
		h = mg_metrics_http_start_render(c->metrics_listen, NULL, mg_replicator_metrics, r,
		                                 &err);
		if (h == NULL) {
			fprintf(stderr, "meshgate-replicator: metrics: %s\n", err.msg);
			goto out;
		}
	}
	struct writer w = {.r = r};
	pthread_t th;
	int e = writer_start(&w, &th);
	if (e != 0) {
		fprintf(stderr, "meshgate-replicator: writer thread: %s\n", strerror(e));
		goto out;
	}
	MG_INFO("meshgate-replicator %s: cluster %s (id %u), clusters in %s, Redis %s", MG_VERSION,
	        c->cluster_name, c->cluster_id, c->config_dir, c->redis);
	while (!stop) {
		if (srv != NULL)
			mg_ctl_server_poll(srv, 50);
		else {
			struct timespec ts = {0, 50 * 1000000};
			nanosleep(&ts, NULL);
		}
	}
	MG_INFO("meshgate-replicator: stopping");
	atomic_store(&w.stop, true);
	pthread_join(th, NULL);
	rc = 0;
out:
	mg_metrics_http_stop(h);
	mg_ctl_server_free(srv);
	mg_replicator_free(r);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"config", required_argument, NULL, 'c'}, {"check-config", no_argument, NULL, 'C'},
	        {"verbose", no_argument, NULL, 'v'},      {"version", no_argument, NULL, 'V'},
	        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
	const char *file = NULL;
	bool check = false;
	int opt;
	while ((opt = getopt_long(argc, argv, "c:vVh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			file = optarg;
			break;
		case 'C':
			check = true;
			break;
		case 'v':
			mg_log_set_level(MG_LOG_DEBUG);
			break;
		case 'V':
			printf("meshgate-replicator %s\n", MG_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (file == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	struct mg_error err = {{0}};
	struct mg_rep_config *c = mg_rep_config_load(file, &err);
	if (c == NULL) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	/* The Function library: the installed one, else the build tree's (as meshgatectl). */
	if (c->functions == NULL) {
		const char *f = access(MG_FUNCTIONS_INSTALLED, R_OK) == 0 ? MG_FUNCTIONS_INSTALLED
		                                                          : MG_FUNCTIONS_SOURCE;
		c->functions = strdup(f);
	}
	int rc;
	if (check) {
		rc = check_dir(c);
		if (rc == 0 && c->filter != NULL) {
			struct mg_replicator *r = mg_replicator_create(c, &err);
			if (r == NULL) {
				fprintf(stderr, "%s\n", err.msg);
				rc = 1;
			}
			mg_replicator_free(r);
		}
		if (rc == 0)
			printf("config OK\n");
	} else {
		signal(SIGINT, on_signal);
		signal(SIGTERM, on_signal);
		signal(SIGPIPE, SIG_IGN);
		rc = run(c);
	}
	mg_rep_config_free(c);
	return rc;
}
