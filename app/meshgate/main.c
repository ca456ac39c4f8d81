/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * meshgate: the gateway daemon. Loads the config and everything it names
 * (policies, identities, endpoints), compiles the policy, initialises
 * DPDK's EAL with the config's `eal` list, opens the ports and forwards
 * until SIGINT or SIGTERM; then stops the ports cleanly, prints the final
 * counters and exits 0. `--check-config` does all the loading and
 * compiling without touching DPDK.
 *
 * With a `kvstore` section the identities and ipcache entries of the
 * configured clusters also come from Redis (lib/kvstore/mg_kv_sync.h).
 * The start is fail-closed: no port is started before every cluster's
 * initial sync is done or `kvstore.sync_timeout` has passed. Afterwards
 * the control thread polls the sync client and publishes each batch to
 * the workers as one step: the ipcache changes and the policy derived
 * from them go out in one mg_datapath_publish, so a worker never sees an
 * IP mapped to an identity its policy does not know.
 *
 * The gateway's state (tables, policy, reloads, the sync) is lib/gateway's;
 * this file keeps the arguments, the EAL, the start and the stop. Once
 * the ports run, the control thread (control.c, daemon.h) owns the
 * gateway: it serves the control socket, reloads, syncs and feeds the
 * metrics; the main lcore forwards (single-lcore mode) or waits.
 */
#include <getopt.h>
#include <inttypes.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "mg_config.h"
#include "mg_datapath.h"
#include "mg_gateway.h"
#include "notify.h"
#include "stats.h"

enum {
	EXIT_CONFIG = 1,
	EXIT_USAGE = 2,
	EXIT_RUNTIME = 3,
};

static volatile int stop_requested;
static volatile int reload_requested;

static void
on_signal(int sig)
{
	if (sig == SIGHUP)
		reload_requested = 1;
	else
		stop_requested = 1;
}

static void
usage(FILE *out)
{
	fprintf(out,
	        "usage: meshgate -c FILE [--check-config] [--stats-file PATH] [--idle-exit MS] "
	        "[-v]\n"
	        "\n"
	        "  -c, --config FILE     gateway config (see conf/meshgate.yaml)\n"
	        "      --check-config    load and compile everything, print 'config OK', exit\n"
	        "      --stats-file PATH write the final counters as JSON to PATH on exit\n"
	        "      --idle-exit MS    stop once no frame arrived for MS milliseconds\n"
	        "                        (for tests and replays of pcap files)\n"
	        "  -v, --verbose         debug logging\n"
	        "  -V, --version         print the version\n"
	        "  -h, --help            this text\n");
}

/* The data path's publication, as lib/gateway calls it. */
static int
dp_publish(void *arg, struct mg_ipcache *ipc, struct mg_policy *policy)
{
	return mg_datapath_publish(arg, ipc, policy);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"check-config", no_argument, NULL, 'C'},
	        {"stats-file", required_argument, NULL, 'S'},
	        {"idle-exit", required_argument, NULL, 'I'},
	        {"verbose", no_argument, NULL, 'v'},
	        {"version", no_argument, NULL, 'V'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *config = NULL, *stats_file = NULL;
	static struct daemon d;
	struct mg_gateway_params gp = {0};
	struct mg_error err = {{0}};
	struct mg_config *cfg;
	struct rte_rcu_qsbr *qsbr = NULL;
	struct mg_datapath *dp = NULL;
	struct mg_policy *pol;
	struct mg_dp_counters c;
	bool check = false;
	char **eal_argv = NULL, summary[512];
	int opt, rc, ret = EXIT_RUNTIME;
	size_t i;

	while ((opt = getopt_long(argc, argv, "c:vVh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'C':
			check = true;
			break;
		case 'S':
			stats_file = optarg;
			break;
		case 'I': {
			char *end;
			unsigned long ms = strtoul(optarg, &end, 10);

			if (*optarg == '\0' || *end != '\0' || ms == 0 || ms > 86400000ul) {
				fprintf(stderr,
				        "meshgate: --idle-exit: expected milliseconds, got '%s'\n",
				        optarg);
				return EXIT_USAGE;
			}
			d.idle_ns = ms * 1000000ull;
			break;
		}
		case 'v':
			mg_log_set_level(MG_LOG_DEBUG);
			break;
		case 'V':
			printf("meshgate %s\n", MG_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (config == NULL || optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}

	cfg = mg_config_load(config, &err);
	if (cfg == NULL) {
		fprintf(stderr, "%s\n", err.msg);
		return EXIT_CONFIG;
	}
	gp.log_skipped = true;
	if (check) {
		d.gw = mg_gateway_create(cfg, &gp, &err);
		rc = d.gw != NULL ? mg_gateway_compile(d.gw, &err) : -EINVAL;
		if (rc == 0) {
			mg_gateway_summary(d.gw, summary, sizeof(summary));
			printf("config OK: %s\n", summary);
		} else {
			fprintf(stderr, "%s\n", err.msg);
		}
		mg_gateway_free(d.gw);
		return rc == 0 ? 0 : EXIT_CONFIG;
	}

	eal_argv = calloc(cfg->n_eal + 2, sizeof(*eal_argv));
	if (eal_argv == NULL) {
		mg_config_free(cfg);
		return EXIT_RUNTIME;
	}
	eal_argv[0] = argv[0];
	for (i = 0; i < cfg->n_eal; i++)
		eal_argv[i + 1] = cfg->eal[i];
	/* hiredis writes with write(2): a Redis that goes away mid-write
	 * (restarted, failed over) must be an EPIPE that the kv sync
	 * handles, the initial sync included, not a signal that ends the
	 * gateway (scripts/soak.sh found it). */
	signal(SIGPIPE, SIG_IGN);
	/* rte_eal_init may permute its argv: it gets a copy. */
	rc = rte_eal_init((int)cfg->n_eal + 1, eal_argv);
	if (rc < 0) {
		MG_ERR("EAL initialisation failed: %s", rte_strerror(rte_errno));
		free(eal_argv);
		mg_config_free(cfg);
		return EXIT_RUNTIME;
	}

	qsbr = mg_datapath_qsbr_create();
	if (qsbr == NULL) {
		MG_ERR("cannot allocate the RCU state");
		mg_config_free(cfg);
		goto out;
	}
	gp.qsbr = qsbr;
	/* Fail-closed: the ports start only after the initial sync, which
	 * compiles the policy over what it brought. */
	d.gw = mg_gateway_create(cfg, &gp, &err);
	if (d.gw == NULL || mg_gateway_start(d.gw, &err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		ret = EXIT_CONFIG;
		goto out;
	}
	mg_gateway_summary(d.gw, summary, sizeof(summary));
	fprintf(stderr, "%s\n", summary);

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	pol = mg_gateway_take_policy(d.gw);
	dp = mg_datapath_create(mg_gateway_config(d.gw), mg_gateway_ipcache(d.gw), pol, qsbr, &err);
	if (dp == NULL) {
		mg_gateway_return_policy(d.gw, pol);
		MG_ERR("%s", err.msg);
		goto out;
	}
	mg_gateway_set_publish(d.gw, dp_publish, dp);
	d.dp = dp;
	d.stop = &stop_requested;
	d.reload_requested = &reload_requested;
	d.start_ns = mg_time_ns();
	rc = control_start(&d, &err);
	if (rc < 0) {
		MG_ERR("%s", err.msg[0] ? err.msg : strerror(-rc));
		ret = EXIT_CONFIG;
		goto out;
	}
	/* "ready" comes before the first frame is polled: the ports queue
	 * what arrives meanwhile, and no worker forwards before this line
	 * (tests/e2e/crash_e2e.sh holds the daemon to it). */
	MG_INFO("ready: %u ports, %u forwarding lcore(s)", mg_datapath_nb_ports(dp),
	        mg_datapath_nb_workers(dp));
	mg_notify("READY=1\nSTATUS=forwarding");
	rc = mg_datapath_start(dp);
	if (rc != 0) {
		MG_ERR("cannot start workers: %s", strerror(-rc));
		goto out;
	}
	mg_datapath_run(dp, &stop_requested, NULL, NULL);
	mg_notify("STOPPING=1");
	control_stop(&d);
	mg_datapath_stop(dp);

	mg_datapath_counters(dp, &c);
	stats_print(dp, &c, stdout);
	fflush(stdout);
	ret = 0;
	if (stats_file != NULL && (rc = stats_write(stats_file, dp, &c, d.gw)) != 0) {
		MG_ERR("%s: %s", stats_file, strerror(-rc));
		ret = EXIT_RUNTIME;
	}
out:
	stop_requested = 1;
	control_stop(&d);
	if (dp != NULL) {
		mg_datapath_stop(dp);
		mg_datapath_free(dp);
	}
	mg_gateway_free(d.gw);
	rte_free(qsbr);
	rte_eal_cleanup();
	free(eal_argv);
	return ret;
}
