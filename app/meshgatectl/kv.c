/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * meshgatectl kv: write a cluster's identities and ipcache entries into
 * its Redis (docs/kvstore.md) with the writer of lib/kvstore. `kv import`
 * reads CiliumIdentity and CiliumEndpoint manifests as kubectl prints
 * them, checks every file completely before connecting (an invalid input
 * writes nothing), then writes each entry through the Function library
 * (queued into FCALL mg_batch calls of 256 changes, pipelined, one log
 * entry per change as with mg_put), the cluster config and the canaries, and with --prune deletes the
 * cluster's state keys the input does not name. put-ip, del-ip,
 * put-identity and del-identity make single changes through the same
 * functions. Exit codes: 0 ok, 1 bad input, 2 usage, 3 Redis error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl.h"
#include "kv.h"
#include "mg_kvstore.h"
#include "mg_yaml.h"

#ifndef MG_FUNCTIONS_INSTALLED
#define MG_FUNCTIONS_INSTALLED "/usr/local/share/meshgate/meshgate.lua"
#endif
#ifndef MG_FUNCTIONS_SOURCE
#define MG_FUNCTIONS_SOURCE "conf/redis/meshgate.lua"
#endif

/* Options every kv command shares. */
struct kv_opts {
	struct mg_kv_writer_opts w;
	unsigned long cluster_id;
	unsigned long max_connected; /* 255 or 511 */
	enum ctl_output out;
	bool prune;
	/* put-ip / del-ip / put-identity / del-identity */
	const char *ip, *host_ip, *ns, *pod, *labels;
	unsigned long id;
	size_t n_ports;
	struct mg_named_port ports[MG_KV_IP_MAX_NAMED_PORTS];
};

enum {
	OPT_REDIS = 256,
	OPT_USER,
	OPT_PASSWORD_FILE,
	OPT_CLUSTER,
	OPT_CLUSTER_ID,
	OPT_FUNCTIONS,
	OPT_MAXLEN,
	OPT_PRUNE,
	OPT_IP,
	OPT_IDENTITY,
	OPT_HOST_IP,
	OPT_NAMESPACE,
	OPT_POD,
	OPT_NAMED_PORT,
	OPT_ID,
	OPT_LABELS,
	OPT_SINGLE_CLUSTER,
	OPT_MAX_CONNECTED,
	OPT_HELP,
};

static const struct option kv_longopts[] = {
        {"redis", required_argument, NULL, OPT_REDIS},
        {"user", required_argument, NULL, OPT_USER},
        {"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
        {"cluster", required_argument, NULL, OPT_CLUSTER},
        {"cluster-id", required_argument, NULL, OPT_CLUSTER_ID},
        {"functions", required_argument, NULL, OPT_FUNCTIONS},
        {"maxlen", required_argument, NULL, OPT_MAXLEN},
        {"prune", no_argument, NULL, OPT_PRUNE},
        {"ip", required_argument, NULL, OPT_IP},
        {"identity", required_argument, NULL, OPT_IDENTITY},
        {"host-ip", required_argument, NULL, OPT_HOST_IP},
        {"namespace", required_argument, NULL, OPT_NAMESPACE},
        {"pod", required_argument, NULL, OPT_POD},
        {"named-port", required_argument, NULL, OPT_NAMED_PORT},
        {"id", required_argument, NULL, OPT_ID},
        {"labels", required_argument, NULL, OPT_LABELS},
        {"single-cluster", no_argument, NULL, OPT_SINGLE_CLUSTER},
        {"max-connected-clusters", required_argument, NULL, OPT_MAX_CONNECTED},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
};

/* "name:port/proto" (proto defaults to tcp). */
static int
kv_named_port_parse(const char *s, struct mg_named_port *np)
{
	char buf[128], *colon, *slash;
	unsigned long port;

	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
		return -EINVAL;
	colon = strrchr(buf, ':');
	if (colon == NULL || colon == buf || (size_t)(colon - buf) >= sizeof(np->name))
		return -EINVAL;
	*colon = '\0';
	slash = strchr(colon + 1, '/');
	np->proto = KV_PROTO_TCP;
	if (slash != NULL) {
		*slash = '\0';
		if (mg_kv_proto_parse(slash + 1, &np->proto) < 0)
			return -EINVAL;
	}
	if (kv_ulong(colon + 1, 1, 65535, &port) < 0)
		return -EINVAL;
	np->port = (uint16_t)port;
	/* Length checked above: the name fits with its NUL. */
	memcpy(np->name, buf, (size_t)(colon - buf) + 1);
	return 0;
}

/* Parse argv; positional arguments are left at argv[optind..]. */
static int
kv_parse_opts(int argc, char **argv, struct kv_opts *o, int *first_arg)
{
	const char *cmd = argv[0];
	unsigned long v;
	int c;

	memset(o, 0, sizeof(*o));
	o->out = ctl_default_output;
	o->w.url = MG_KV_WRITER_URL_DEFAULT;
	o->max_connected = MG_KV_MAX_CONNECTED_DEFAULT;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:", kv_longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			if (ctl_output_parse(optarg, &o->out) < 0)
				return ctl_usage_error(cmd, "bad output format '%s'", optarg);
			break;
		case OPT_REDIS:
			o->w.url = optarg;
			break;
		case OPT_USER:
			o->w.user = optarg;
			break;
		case OPT_PASSWORD_FILE:
			o->w.password_file = optarg;
			break;
		case OPT_CLUSTER:
			if (!mg_kv_cluster_name_valid(optarg))
				return ctl_usage_error(cmd,
				                       "bad cluster name '%s' (1-32 of a-z, 0-9, "
				                       "'-', alnum at both ends)",
				                       optarg);
			o->w.cluster = optarg;
			break;
		case OPT_CLUSTER_ID:
			if (kv_ulong(optarg, 1, 511, &o->cluster_id) < 0)
				return ctl_usage_error(cmd, "bad --cluster-id '%s' (1-511)",
				                       optarg);
			break;
		case OPT_MAX_CONNECTED:
			if (kv_ulong(optarg, 255, 511, &o->max_connected) < 0 ||
			    (o->max_connected != 255 && o->max_connected != 511))
				return ctl_usage_error(
				        cmd, "bad --max-connected-clusters '%s' (255 or 511)",
				        optarg);
			break;
		case OPT_SINGLE_CLUSTER:
			o->w.single_cluster = true;
			break;
		case OPT_FUNCTIONS:
			o->w.functions = optarg;
			break;
		case OPT_MAXLEN:
			if (kv_ulong(optarg, 1, 1000000000, &v) < 0)
				return ctl_usage_error(cmd, "bad --maxlen '%s'", optarg);
			o->w.maxlen = (unsigned)v;
			break;
		case OPT_PRUNE:
			o->prune = true;
			break;
		case OPT_IP:
			o->ip = optarg;
			break;
		case OPT_IDENTITY:
		case OPT_ID:
			if (kv_ulong(optarg, 1, MG_ID_MAX, &o->id) < 0)
				return ctl_usage_error(cmd, "bad identity '%s' (1-%u)", optarg,
				                       MG_ID_MAX);
			break;
		case OPT_HOST_IP:
			o->host_ip = optarg;
			break;
		case OPT_NAMESPACE:
			o->ns = optarg;
			break;
		case OPT_POD:
			o->pod = optarg;
			break;
		case OPT_NAMED_PORT:
			if (o->n_ports == MG_KV_IP_MAX_NAMED_PORTS)
				return ctl_usage_error(cmd, "too many --named-port");
			if (kv_named_port_parse(optarg, &o->ports[o->n_ports]) < 0)
				return ctl_usage_error(
				        cmd, "bad --named-port '%s' (name:port[/tcp|udp|sctp])",
				        optarg);
			o->n_ports++;
			break;
		case OPT_LABELS:
			o->labels = optarg;
			break;
		case OPT_HELP:
			ctl_print_usage(cmd, stdout);
			*first_arg = -1;
			return CTL_EXIT_OK;
		case ':':
			return ctl_usage_error(cmd, "option %s needs an argument",
			                       argv[optind - 1]);
		default:
			return ctl_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (o->w.cluster == NULL)
		return ctl_usage_error(cmd, "--cluster NAME is required");
	if (o->cluster_id > o->max_connected)
		return ctl_usage_error(
		        cmd,
		        "--cluster-id %lu needs --max-connected-clusters 511 (Cilium's "
		        "maxConnectedClusters)",
		        o->cluster_id);
	if (o->w.functions == NULL) {
		if (access(MG_FUNCTIONS_INSTALLED, R_OK) == 0)
			o->w.functions = MG_FUNCTIONS_INSTALLED;
		else if (access(MG_FUNCTIONS_SOURCE, R_OK) == 0)
			o->w.functions = MG_FUNCTIONS_SOURCE;
		else
			return ctl_usage_error(cmd,
			                       "meshgate.lua not found; give --functions PATH");
	}
	*first_arg = optind;
	return CTL_EXIT_OK;
}

/* Map a writer error to the exit code: bad input 1, else Redis 3. */
static int
kv_fail(const char *cmd, int rc, const struct mg_error *err)
{
	fprintf(stderr, "meshgatectl %s: %s\n", cmd, err->msg);
	return rc == -EINVAL ? CTL_EXIT_FAIL : CTL_EXIT_INTERNAL;
}

static struct mg_kv_writer *
kv_open(const char *cmd, const struct kv_opts *o, int *code)
{
	struct mg_kv_writer_opts wo = o->w;
	struct mg_error err = {{0}};
	struct mg_kv_writer *w;
	char pw[512];

	/* An unsafe or missing password file is bad input (exit 1), found
	 * before anything connects. */
	if (wo.password_file != NULL) {
		if (mg_kv_password_file_read(wo.password_file, pw, sizeof(pw), &err) < 0) {
			fprintf(stderr, "meshgatectl %s: %s\n", cmd, err.msg);
			*code = CTL_EXIT_FAIL;
			return NULL;
		}
		wo.password = pw;
		wo.password_file = NULL;
	}
	w = mg_kv_writer_open(&wo, &err);
	explicit_bzero(pw, sizeof(pw));
	if (w == NULL) {
		fprintf(stderr, "meshgatectl %s: %s\n", cmd, err.msg);
		/* A bad URL or password file is the caller's input; the rest is Redis. */
		*code = errno == EINVAL && strncmp(err.msg, "redis", 5) != 0 ? CTL_EXIT_FAIL
		                                                             : CTL_EXIT_INTERNAL;
		return NULL;
	}
	/* The layout must fit what this Redis holds: never two clusters in the
	 * single-cluster layout, never one cluster in both. */
	int rc = mg_kv_writer_check_layout(w, &err);
	if (rc < 0) {
		fprintf(stderr, "meshgatectl %s: %s\n", cmd, err.msg);
		fprintf(stderr, "meshgatectl %s: nothing written\n", cmd);
		mg_kv_writer_close(w);
		*code = rc == -EEXIST ? CTL_EXIT_FAIL : CTL_EXIT_INTERNAL;
		return NULL;
	}
	return w;
}

/* ---- import: writing ---- */

struct kv_counts {
	size_t id_written, id_same, ip_written, ip_same;
	int pruned;
	bool config_written;
};

static void
kv_summary(const struct kv_opts *o, const struct kv_input *in, const struct kv_counts *c,
           bool complete)
{
	json_t *j;

	if (o->out == CTL_OUT_JSON) {
		j = json_pack("{s:b,s:{s:I,s:I,s:I},s:{s:I,s:I,s:I},s:i,s:I,s:b}", "complete",
		              complete, "identities", "total", (json_int_t)in->n_ids, "written",
		              (json_int_t)c->id_written, "unchanged", (json_int_t)c->id_same, "ips",
		              "total", (json_int_t)in->n_ips, "written", (json_int_t)c->ip_written,
		              "unchanged", (json_int_t)c->ip_same, "pruned", c->pruned,
		              "skipped_endpoints", (json_int_t)in->skipped,
		              "cluster_config_written", c->config_written);
		if (j != NULL) {
			json_dumpf(j, stdout, JSON_INDENT(2));
			fputc('\n', stdout);
			json_decref(j);
		}
		return;
	}
	printf("%s%zu identities (%zu written, %zu unchanged), %zu ips (%zu written, %zu "
	       "unchanged), %d pruned\n",
	       complete ? "" : "INCOMPLETE: ", in->n_ids, c->id_written, c->id_same, in->n_ips,
	       c->ip_written, c->ip_same, c->pruned);
}

static int
kv_import_write(struct mg_kv_writer *w, const struct kv_opts *o, struct kv_input *in,
                struct kv_counts *c, struct mg_error *err)
{
	struct mg_kv_cluster_config cc = {.id = (unsigned)o->cluster_id,
	                                  .synced_canaries = true,
	                                  .cached = !o->w.single_cluster,
	                                  .max_connected_clusters = (unsigned)o->max_connected};
	struct mg_kv_batch_counts idc = {0}, ipc = {0};
	struct mg_error scratch;
	size_t i;
	int rc = 0;

	/* Queued and sent as FCALL mg_batch calls, several in flight: each
	 * change still gets its own log entry, and the counters say what Redis
	 * applied, also when something fails half-way. */
	for (i = 0; i < in->n_ids && rc == 0; i++)
		rc = mg_kv_writer_queue_identity(w, in->ids[i].id, in->ids[i].labels, &idc, err);
	for (i = 0; i < in->n_ips && rc == 0; i++)
		rc = mg_kv_writer_queue_ip(w, &in->ips[i].p, &ipc, err);
	if (rc == 0)
		rc = mg_kv_writer_flush(w, err);
	else
		mg_kv_writer_flush(w, &scratch); /* what was queued before the error */
	c->id_written = (size_t)idc.written;
	c->id_same = (size_t)idc.unchanged;
	c->ip_written = (size_t)ipc.written;
	c->ip_same = (size_t)ipc.unchanged;
	if (rc < 0)
		return rc;
	if (o->prune) {
		rc = mg_kv_writer_prune(w, kv_keep, in, err);
		if (rc < 0)
			return rc;
		c->pruned = rc;
	}
	rc = mg_kv_writer_cluster_config(w, &cc, err);
	if (rc < 0)
		return rc;
	c->config_written = rc == 1;
	return mg_kv_writer_canaries(w, err);
}

int
ctl_kv_import(int argc, char **argv)
{
	struct mg_error err = {{0}};
	struct kv_input in = {0};
	struct kv_counts c = {0};
	struct mg_yaml_file *f;
	struct mg_kv_writer *w;
	struct kv_opts o;
	int rc, first, i, code = CTL_EXIT_OK;
	size_t d;

	code = kv_parse_opts(argc, argv, &o, &first);
	if (code != CTL_EXIT_OK || first < 0)
		return code;
	if (o.cluster_id == 0)
		return ctl_usage_error(argv[0], "--cluster-id N is required");
	if (first >= argc)
		return ctl_usage_error(argv[0], "no input FILE");
	in.scope = o.w.single_cluster ? MG_KV_SCOPE_STATE : MG_KV_SCOPE_CACHE;
	in.cluster = o.w.cluster;
	in.cluster_id = (unsigned)o.cluster_id;
	in.mode = o.max_connected == 511 ? MG_CLUSTER_MODE_511 : MG_CLUSTER_MODE_255;
	/* Everything is parsed before connecting: bad input writes nothing. */
	for (i = first; i < argc; i++) {
		f = mg_yaml_load_file(argv[i], &err);
		if (f == NULL) {
			code = CTL_EXIT_FAIL;
			goto out;
		}
		for (d = 0, rc = 0; d < f->ndocs && rc == 0; d++)
			rc = kv_parse_doc(&in, f->docs[d], false, &err);
		mg_yaml_free(f);
		if (rc < 0) {
			code = CTL_EXIT_FAIL;
			goto out;
		}
	}
	if (kv_check_dups(&in, &err) < 0) {
		code = CTL_EXIT_FAIL;
		goto out;
	}
	if (kv_index_keys(&in) < 0) {
		mg_error_set(&err, NULL, 0, 0, "out of memory");
		code = CTL_EXIT_INTERNAL;
		goto out;
	}
	w = kv_open(argv[0], &o, &code);
	if (w == NULL)
		goto done;
	rc = kv_import_write(w, &o, &in, &c, &err);
	mg_kv_writer_close(w);
	kv_summary(&o, &in, &c, rc == 0);
	if (rc < 0)
		code = kv_fail(argv[0], rc, &err);
	goto done;
out:
	fprintf(stderr, "meshgatectl %s: %s\n", argv[0], err.msg);
	fprintf(stderr, "meshgatectl %s: nothing written\n", argv[0]);
done:
	kv_input_free(&in);
	return code;
}

/* ---- single changes ---- */

static int
kv_report(const struct kv_opts *o, const char *what, const char *key, int rc)
{
	static const char *const put_words[] = {"unchanged", "written"};
	static const char *const del_words[] = {"not present", "deleted"};
	const char *word = (strncmp(what, "put", 3) == 0 ? put_words : del_words)[rc];

	if (o->out == CTL_OUT_JSON)
		printf("{\"key\": \"%s\", \"result\": \"%s\"}\n", key, word);
	else
		printf("%s: %s\n", key, word);
	return CTL_EXIT_OK;
}

/* Shared by the four single-change commands. */
static int
kv_single(int argc, char **argv, int which)
{
	struct mg_error err = {{0}};
	struct mg_kv_ip_pair p;
	struct mg_kv_writer *w;
	struct kv_opts o;
	char key[MG_KV_KEY_MAX];
	int rc, first, code;

	memset(&p, 0, sizeof(p));
	code = kv_parse_opts(argc, argv, &o, &first);
	if (code != CTL_EXIT_OK || first < 0)
		return code;
	if (first < argc)
		return ctl_usage_error(argv[0], "unexpected argument '%s'", argv[first]);
	if (which <= 1) { /* put-ip, del-ip */
		if (o.ip == NULL)
			return ctl_usage_error(argv[0], "--ip PREFIX is required");
		if (mg_ipcache_parse_prefix(o.ip, &p.prefix) < 0)
			return ctl_usage_error(argv[0], "bad --ip '%s'", o.ip);
		p.host_route = strchr(o.ip, '/') == NULL;
		mg_kv_ip_key(key, sizeof(key),
		             o.w.single_cluster ? MG_KV_SCOPE_STATE : MG_KV_SCOPE_CACHE,
		             o.w.cluster, &p.prefix, p.host_route);
	} else if (o.id == 0) {
		return ctl_usage_error(argv[0], "--id N is required");
	} else {
		mg_kv_identity_key(key, sizeof(key),
		                   o.w.single_cluster ? MG_KV_SCOPE_STATE : MG_KV_SCOPE_CACHE,
		                   o.w.cluster, (uint32_t)o.id);
	}
	if (which == 0) {
		if (o.id == 0)
			return ctl_usage_error(argv[0], "--identity N is required");
		p.prefix.identity = (uint32_t)o.id;
		if (o.host_ip != NULL) {
			unsigned char b[16];

			if (inet_pton(AF_INET, o.host_ip, b) != 1 &&
			    inet_pton(AF_INET6, o.host_ip, b) != 1)
				return ctl_usage_error(argv[0], "bad --host-ip '%s'", o.host_ip);
			snprintf(p.host_ip, sizeof(p.host_ip), "%s", o.host_ip);
		}
		snprintf(p.k8s_namespace, sizeof(p.k8s_namespace), "%s", o.ns ? o.ns : "");
		snprintf(p.k8s_pod_name, sizeof(p.k8s_pod_name), "%s", o.pod ? o.pod : "");
		/* Borrowed array: p is not cleared with mg_kv_ip_pair_clear(). */
		p.n_named_ports = o.n_ports;
		p.named_ports = o.n_ports ? o.ports : NULL;
	}
	if (which == 2 && o.labels == NULL)
		return ctl_usage_error(argv[0], "--labels 'source:key=value;...' is required");
	w = kv_open(argv[0], &o, &code);
	if (w == NULL)
		return code;
	switch (which) {
	case 0:
		rc = mg_kv_writer_put_ip(w, &p, &err);
		break;
	case 1:
		rc = mg_kv_writer_del_ip(w, &p.prefix, p.host_route, &err);
		break;
	case 2:
		rc = mg_kv_writer_put_identity(w, (uint32_t)o.id, o.labels, &err);
		break;
	default:
		rc = mg_kv_writer_del_identity(w, (uint32_t)o.id, &err);
		break;
	}
	mg_kv_writer_close(w);
	if (rc < 0)
		return kv_fail(argv[0], rc, &err);
	return kv_report(&o, which == 0 || which == 2 ? "put" : "del", key, rc);
}

int
ctl_kv_put_ip(int argc, char **argv)
{
	return kv_single(argc, argv, 0);
}

int
ctl_kv_del_ip(int argc, char **argv)
{
	return kv_single(argc, argv, 1);
}

int
ctl_kv_put_identity(int argc, char **argv)
{
	return kv_single(argc, argv, 2);
}

int
ctl_kv_del_identity(int argc, char **argv)
{
	return kv_single(argc, argv, 3);
}
