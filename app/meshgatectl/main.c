/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * meshgatectl: the command-line tool of the meshgate gateway. This file
 * holds the command table and the dispatch; each command lives in its own
 * file. A command is named by one or more words ("policy trace"); the
 * longest registered prefix of the arguments picks it, so commands that
 * talk to the daemon's control socket (status, identity, ip, ct, ...; see
 * online.c) are table rows without touching the dispatch. Every command prints
 * human-readable text by default and one JSON document with `-o json`.
 *
 * Options that apply to every command may come before its name
 * (`meshgatectl --socket PATH -o json status`): --socket names the
 * daemon's control socket, -o the output format; the command's own
 * options of the same name win.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

#ifndef MG_VERSION
#define MG_VERSION "unknown"
#endif

#define ONLINE(w1, w2, u, s)                                                          \
	{                                                                             \
		.words = {w1, w2, NULL}, .usage = u, .summary = s, .run = ctl_online, \
		.daemon = true,                                                       \
	}

static const struct ctl_cmd commands[] = {
        ONLINE("status", NULL, "status [-o text|json]",
               "the daemon's state: ports, workers, policy, reloads, ipcache, conntrack"),
        ONLINE("config", "show", "config show [-o text|json]",
               "the running config, every key, defaults filled"),
        ONLINE("identity", "list", "identity list [--cluster NAME] [-o text|json]",
               "the identities the daemon knows, with their labels"),
        ONLINE("identity", "get", "identity get ID [-o text|json]",
               "one identity: labels, cluster, named ports"),
        ONLINE("ip", "list", "ip list [--family ipv4|ipv6] [--cluster NAME] [-o text|json]",
               "the ipcache: prefix to identity"),
        ONLINE("ip", "get", "ip get IP|PREFIX [-o text|json]",
               "the identity of an address (longest prefix) or of an exact prefix"),
        ONLINE("policy", "get", "policy get [-o text|json]",
               "the loaded policies, their revision and the skipped rules"),
        ONLINE("policy", "selectors", "policy selectors [-o text|json]",
               "each selector of the policies and the identities it selects"),
        ONLINE("ct", "list", "ct list [--limit N] [-o text|json]",
               "connection tracking entries (default at most 1000)"),
        ONLINE("ct", "flush", "ct flush [-o text|json]",
               "empty the connection tracking tables (root or the admin group)"),
        ONLINE("sync", "status", "sync status [-o text|json]",
               "kvstore sync state of each remote cluster"),
        ONLINE("sync", "resync", "sync resync [-o text|json]",
               "ask for a full resync of every cluster (root or the admin group)"),
        ONLINE("replicator", "status", "replicator status [-o text|json]",
               "meshgate-replicator: clusters, lease, Redis (--socket of the replicator)"),
        ONLINE("replicator", "troubleshoot",
               "replicator troubleshoot [--cluster NAME] [-o text|json]",
               "meshgate-replicator: config files, DNS, TCP, TLS, certificates, etcd access"),
        ONLINE("monitor", NULL, "monitor [--type drop|verdict|all] [-o text|json]",
               "print drop and verdict events live, one per line, until interrupted"),
        ONLINE("metrics", NULL, "metrics [--format prometheus|json] [-o text|json]",
               "the daemon's metrics, Prometheus text or JSON"),
        ONLINE("reload", NULL, "reload [-o text|json]",
               "reload the config, policies and static entries (root or the admin group)"),
        {
                .words = {"policy", "validate", NULL},
                .usage = "policy validate [--cluster NAME] [-o text|json] FILE|DIR...",
                .summary = "check policy files offline: errors and skipped rules with "
                           "file:line:column",
                .run = ctl_policy_validate,
        },
        {
                .words = {"policy", "trace", NULL},
                .usage =
                        "policy trace [--socket PATH | --config FILE] --src IP|id:N --dst IP|id:N\n"
                        "                    --proto tcp|udp|sctp|icmp|icmpv6|N\n"
                        "                    [--dport N | --icmp-type T] [-o text|json]\n"
                        "       meshgatectl policy trace [--socket PATH | --config FILE] "
                        "--flows FILE [-o text|json]",
                .summary = "explain the verdict for a flow: asks the daemon, or offline "
                           "with --config",
                .run = ctl_policy_trace,
        },
        {
                .words = {"kv", "import", NULL},
                .usage =
                        "kv import --cluster NAME --cluster-id N [--max-connected-clusters "
                        "255|511]\n"
                        "                    [--prune] [REDIS OPTIONS] [-o text|json] FILE...\n"
                        "       REDIS OPTIONS: [--redis URL] [--user NAME] [--password-file FILE]\n"
                        "                      [--functions PATH] [--maxlen N] [--single-cluster]",
                .summary = "write CiliumIdentity/CiliumEndpoint manifests into the site Redis, "
                           "per cluster",
                .run = ctl_kv_import,
        },
        {
                .words = {"kv", "put-ip", NULL},
                .usage = "kv put-ip --cluster NAME --ip PREFIX --identity N [--host-ip IP]\n"
                         "                    [--namespace NS] [--pod NAME] "
                         "[--named-port name:port/proto]... [REDIS OPTIONS]",
                .summary = "write one ipcache entry into a cluster's Redis",
                .run = ctl_kv_put_ip,
        },
        {
                .words = {"kv", "del-ip", NULL},
                .usage = "kv del-ip --cluster NAME --ip PREFIX [REDIS OPTIONS]",
                .summary = "delete one ipcache entry from a cluster's Redis",
                .run = ctl_kv_del_ip,
        },
        {
                .words = {"kv", "put-identity", NULL},
                .usage = "kv put-identity --cluster NAME --id N --labels 'k8s:a=b;...' "
                         "[REDIS OPTIONS]",
                .summary = "write one identity into a cluster's Redis",
                .run = ctl_kv_put_identity,
        },
        {
                .words = {"kv", "del-identity", NULL},
                .usage = "kv del-identity --cluster NAME --id N [REDIS OPTIONS]",
                .summary = "delete one identity from a cluster's Redis",
                .run = ctl_kv_del_identity,
        },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static size_t
cmd_nwords(const struct ctl_cmd *c)
{
	size_t n = 0;

	while (n < 3 && c->words[n] != NULL)
		n++;
	return n;
}

static void
cmd_name(const struct ctl_cmd *c, char *buf, size_t size)
{
	size_t i, off = 0;

	buf[0] = '\0';
	for (i = 0; i < cmd_nwords(c) && off < size; i++)
		off += (size_t)snprintf(buf + off, size - off, "%s%s", i ? " " : "", c->words[i]);
}

int
ctl_output_parse(const char *s, enum ctl_output *out)
{
	if (strcmp(s, "json") == 0)
		*out = CTL_OUT_JSON;
	else if (strcmp(s, "text") == 0 || strcmp(s, "human") == 0)
		*out = CTL_OUT_TEXT;
	else
		return -EINVAL;
	return 0;
}

void
ctl_print_usage(const char *name, FILE *f)
{
	char buf[64];
	size_t i;

	for (i = 0; i < N_COMMANDS; i++) {
		cmd_name(&commands[i], buf, sizeof(buf));
		if (strcmp(buf, name) == 0)
			fprintf(f, "usage: meshgatectl %s\n", commands[i].usage);
	}
}

int
ctl_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "meshgatectl %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	ctl_print_usage(cmd, stderr);
	return CTL_EXIT_USAGE;
}

static void
print_help(FILE *f)
{
	char buf[64];
	size_t i;
	int pass;

	fprintf(f, "usage: meshgatectl [--socket PATH] [-o text|json] COMMAND [ARGS...]\n"
	           "       meshgatectl help [COMMAND] | --help | --version\n");
	for (pass = 0; pass < 2; pass++) {
		fprintf(f,
		        pass == 0
		                ? "\nOnline commands (ask the running daemon over its control "
		                  "socket):\n"
		                : "\nOffline commands (read files or Redis; no daemon needed):\n");
		for (i = 0; i < N_COMMANDS; i++) {
			cmd_name(&commands[i], buf, sizeof(buf));
			/* policy trace is both: online, or offline with --config */
			if (commands[i].daemon != (pass == 0) && strcmp(buf, "policy trace") != 0)
				continue;
			if (pass == 0 && strcmp(buf, "policy trace") == 0) {
				fprintf(f, "  %-18s %s\n", buf, "explain the verdict for a flow");
				continue;
			}
			fprintf(f, "  %-18s %s\n", buf,
			        pass == 1 && strcmp(buf, "policy trace") == 0
			                ? "explain the verdict for a flow, offline with --config "
			                  "FILE"
			                : commands[i].summary);
		}
	}
	fprintf(f, "\nEvery command takes -o json for one JSON document instead of text.\n"
	           "The control socket is --socket PATH, else $MESHGATE_SOCKET, "
	           "else\n" CTL_DEFAULT_SOCKET ".\n"
	           "'meshgatectl help COMMAND' shows a command's usage; docs/cli.md is the\n"
	           "reference. Exit status: 0 success, 1 invalid input (policy or config) or\n"
	           "the daemon unreachable or refusing the request, 2 usage error, 3 internal\n"
	           "or Redis error.\n");
}

/* The command whose words are the longest prefix of @p argv, or NULL. */
static const struct ctl_cmd *
find_cmd(int argc, char **argv, size_t *nwords)
{
	const struct ctl_cmd *best = NULL;
	size_t i, k, n;

	for (i = 0; i < N_COMMANDS; i++) {
		n = cmd_nwords(&commands[i]);
		if ((size_t)argc < n)
			continue;
		for (k = 0; k < n; k++)
			if (strcmp(argv[k], commands[i].words[k]) != 0)
				break;
		if (k == n && (best == NULL || n > *nwords)) {
			best = &commands[i];
			*nwords = n;
		}
	}
	return best;
}

/* Commands that start with @p word, for "meshgatectl policy" alone. */
static bool
print_group(const char *word, FILE *f)
{
	bool any = false;
	char buf[64];
	size_t i;

	for (i = 0; i < N_COMMANDS; i++) {
		if (strcmp(commands[i].words[0], word) != 0)
			continue;
		if (!any)
			fprintf(f, "meshgatectl %s commands:\n", word);
		any = true;
		cmd_name(&commands[i], buf, sizeof(buf));
		fprintf(f, "  %-18s %s\n", buf, commands[i].summary);
	}
	return any;
}

int
main(int argc, char **argv)
{
	const struct ctl_cmd *c;
	size_t nwords = 0;
	char name[64];

	/* Options for every command, before its name. */
	while (argc > 1 && argv[1][0] == '-') {
		const char *a = argv[1], *val;
		int used = 2;

		if (strncmp(a, "--socket=", 9) == 0 || strncmp(a, "--output=", 9) == 0) {
			val = a + 9;
			used = 1;
		} else if (strcmp(a, "--socket") == 0 || strcmp(a, "-o") == 0 ||
		           strcmp(a, "--output") == 0) {
			if (argc < 3) {
				fprintf(stderr, "meshgatectl: %s needs a value\n", a);
				return CTL_EXIT_USAGE;
			}
			val = argv[2];
		} else {
			break;
		}
		if (a[2] == 's') {
			ctl_global_socket = val;
		} else if (ctl_output_parse(val, &ctl_default_output) < 0) {
			fprintf(stderr, "meshgatectl: -o: unknown format '%s' (text, json)\n", val);
			return CTL_EXIT_USAGE;
		}
		argv[used] = argv[0];
		argv += used;
		argc -= used;
	}
	if (argc < 2) {
		print_help(stderr);
		return CTL_EXIT_USAGE;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		if (argc > 2 && strcmp(argv[1], "help") == 0) {
			c = find_cmd(argc - 2, argv + 2, &nwords);
			if (c != NULL) {
				cmd_name(c, name, sizeof(name));
				ctl_print_usage(name, stdout);
				return CTL_EXIT_OK;
			}
			if (print_group(argv[2], stdout))
				return CTL_EXIT_OK;
			fprintf(stderr, "meshgatectl: unknown command '%s'\n", argv[2]);
			return CTL_EXIT_USAGE;
		}
		print_help(stdout);
		return CTL_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("meshgatectl %s\n", MG_VERSION);
		return CTL_EXIT_OK;
	}
	c = find_cmd(argc - 1, argv + 1, &nwords);
	if (c == NULL) {
		if (argv[1][0] != '-' && print_group(argv[1], stderr)) {
			fprintf(stderr, "meshgatectl %s: missing subcommand\n", argv[1]);
			return CTL_EXIT_USAGE;
		}
		fprintf(stderr, "meshgatectl: unknown command '%s' (see meshgatectl help)\n",
		        argv[1]);
		return CTL_EXIT_USAGE;
	}
	cmd_name(c, name, sizeof(name));
	/* The command sees its own name as argv[0], then its arguments. */
	argv[nwords] = name;
	return c->run(argc - (int)nwords, argv + nwords);
}
