/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `meshgatectl policy trace`: the verdict the gateway gives a flow, and
 * why. With --config FILE it is computed offline from the daemon's own
 * config, loaded by the daemon's own code (lib/gateway, without Redis);
 * without, the running daemon is asked over its control socket
 * (`policy.trace`) and answers from the state its workers use.
 *
 * Both ways go through lib/gateway's trace document: the offline trace builds the trace
 * document with the same function the daemon calls, and the text output
 * is printed from that document alone, so the two modes print the same
 * words and the same JSON. The trace checks the rule-by-rule explanation
 * against the compiled tables; a disagreement is a policy engine bug and
 * exits 3 after printing the trace (offline), or is the daemon's EPROTO
 * error (online, exit 3 too).
 *
 * Batch mode (--flows FILE) traces many flows on one loaded state (or one
 * daemon); each line of FILE holds the flow options of one trace. The
 * conformance suite uses it so that a case with ten flows costs one
 * process.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "mg_gateway.h"

/* ---- options ---- */

struct trace_opts {
	const char *config;
	const char *flows;
	const char *socket;
	enum ctl_output out;
	bool help;
};

enum opt_id {
	OPT_CONFIG,
	OPT_FLOWS,
	OPT_SOCKET,
	OPT_OUTPUT,
	OPT_HELP,
	OPT_SRC,
	OPT_DST,
	OPT_PROTO,
	OPT_DPORT,
	OPT_ICMP,
};

static const struct {
	const char *name;
	enum opt_id id;
	bool arg;
	bool flow; /* allowed on a line of --flows */
} opt_table[] = {
        {"--config", OPT_CONFIG, true, false}, {"-c", OPT_CONFIG, true, false},
        {"--flows", OPT_FLOWS, true, false},   {"--socket", OPT_SOCKET, true, false},
        {"--output", OPT_OUTPUT, true, false}, {"-o", OPT_OUTPUT, true, false},
        {"--help", OPT_HELP, false, false},    {"-h", OPT_HELP, false, false},
        {"--src", OPT_SRC, true, true},        {"--dst", OPT_DST, true, true},
        {"--proto", OPT_PROTO, true, true},    {"-p", OPT_PROTO, true, true},
        {"--dport", OPT_DPORT, true, true},    {"--icmp-type", OPT_ICMP, true, true},
};

/*
 * Parse options "--name value" or "--name=value". Used for the command
 * line (@p o not NULL) and for the lines of --flows (@p o NULL: flow
 * options only). A hand-written loop rather than getopt, because the same
 * parser runs again on every line of a flows file.
 */
static int
parse_opts(int argc, char **argv, struct trace_opts *o, struct mg_trace_req *f, char *why,
           size_t whysize)
{
	int i;

	memset(f, 0, sizeof(*f));
	for (i = 0; i < argc; i++) {
		const char *a = argv[i], *val = NULL, *eq = NULL;
		size_t k, n = sizeof(opt_table) / sizeof(opt_table[0]), len = strlen(a);

		if (strncmp(a, "--", 2) == 0 && (eq = strchr(a, '=')) != NULL)
			len = (size_t)(eq - a);
		for (k = 0; k < n; k++)
			if (strlen(opt_table[k].name) == len &&
			    strncmp(opt_table[k].name, a, len) == 0)
				break;
		if (k == n || (o == NULL && !opt_table[k].flow)) {
			snprintf(why, whysize,
			         a[0] == '-' ? "unknown option '%s'" : "unexpected argument '%s'",
			         a);
			return -EINVAL;
		}
		if (opt_table[k].arg) {
			if (eq != NULL) {
				val = eq + 1;
			} else if (i + 1 < argc) {
				val = argv[++i];
			} else {
				snprintf(why, whysize, "%s needs a value", opt_table[k].name);
				return -EINVAL;
			}
		} else if (eq != NULL) {
			snprintf(why, whysize, "%.*s takes no value", (int)len, a);
			return -EINVAL;
		}
		switch (opt_table[k].id) {
		case OPT_CONFIG:
			o->config = val;
			break;
		case OPT_FLOWS:
			o->flows = val;
			break;
		case OPT_SOCKET:
			o->socket = val;
			break;
		case OPT_OUTPUT:
			if (ctl_output_parse(val, &o->out) < 0) {
				snprintf(why, whysize, "-o: unknown format '%s' (text, json)", val);
				return -EINVAL;
			}
			break;
		case OPT_HELP:
			o->help = true;
			break;
		case OPT_SRC:
			f->src = val;
			break;
		case OPT_DST:
			f->dst = val;
			break;
		case OPT_PROTO:
			f->proto = val;
			break;
		case OPT_DPORT:
			f->dport = val;
			break;
		case OPT_ICMP:
			f->icmp_type = val;
			break;
		}
	}
	return 0;
}

/* ---- text output, from the trace document ---- */

static const char *
jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static long long
jint(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static void
print_flow_desc(const json_t *doc, FILE *out)
{
	const json_t *dport = json_object_get(doc, "dport");
	const json_t *itype = json_object_get(doc, "icmp_type");
	const char *tn = json_string_value(json_object_get(doc, "icmp_type_name"));

	if (json_is_integer(dport))
		fprintf(out, "%s dport %lld", jstr(doc, "proto"), json_integer_value(dport));
	else if (json_is_integer(itype))
		fprintf(out, "%s type %lld%s%s%s", jstr(doc, "proto"), json_integer_value(itype),
		        tn ? " (" : "", tn ? tn : "", tn ? ")" : "");
	else
		fprintf(out, "ip protocol %lld", jint(doc, "ip_proto"));
}

static void
print_end_text(const char *what, const json_t *e, FILE *out)
{
	const char *ip = json_string_value(json_object_get(e, "ip"));
	const char *rname = json_string_value(json_object_get(e, "reserved"));
	const char *prefix = json_string_value(json_object_get(e, "prefix"));
	const json_t *v;
	size_t i;

	fprintf(out, "%-12s ", what);
	if (ip != NULL)
		fprintf(out, "%s -> ", ip);
	fprintf(out, "identity %lld", jint(e, "identity"));
	if (rname != NULL)
		fprintf(out, " (%s)", rname);
	if (ip != NULL)
		fprintf(out, prefix ? " [ipcache %s]" : " [no ipcache entry: world]",
		        prefix ? prefix : "");
	if (!json_is_true(json_object_get(e, "known")))
		fprintf(out, " [unknown identity: evaluated without labels]");
	fputc('\n', out);
	json_array_foreach(json_object_get(e, "labels"), i, v)
	        fprintf(out, "%-12s   %s\n", "", json_string_value(v) ? json_string_value(v) : "");
	json_array_foreach(json_object_get(e, "named_ports"), i, v)
	        fprintf(out, "%-12s   named port %s: %s %lld\n", "", jstr(v, "name"),
	                jstr(v, "protocol"), jint(v, "port"));
}

static void
print_decision_text(const char *enforcement, const char *dir, const char *whose, long long id,
                    const json_t *d, FILE *out)
{
	const json_t *rule = json_object_get(d, "rule");
	bool allowed = json_is_true(json_object_get(d, "allowed"));
	bool enforced = json_is_true(json_object_get(d, "enforced"));

	fprintf(out, "%-7s (of %s %lld): %s", dir, whose, id, allowed ? "allowed" : "DENIED");
	if (json_is_object(rule)) {
		const char *ns = jstr(rule, "namespace"), *section = jstr(rule, "section");

		fprintf(out,
		        " by %s rule: %s %s%s%s (cluster %s), spec rule %lld, %s[%lld], %s:%lld",
		        json_is_true(json_object_get(d, "by_deny_rule")) ? "deny" : "allow",
		        jstr(rule, "kind"), ns, ns[0] ? "/" : "", jstr(rule, "name"),
		        jstr(rule, "cluster"), jint(rule, "rule_index"), section[0] ? section : "?",
		        jint(rule, "entry_index"), jstr(rule, "file"), jint(rule, "line"));
		if (!enforced && allowed)
			fprintf(out, " (the direction is not default deny)");
	} else if (allowed) {
		if (strcmp(enforcement, "never") == 0)
			fprintf(out, ": enforcement never");
		else if (json_is_true(json_object_get(d, "selected")))
			fprintf(out,
			        ": not default deny for %s (the rules that select it have "
			        "enableDefaultDeny %s: false) (open)",
			        dir, dir);
		else
			fprintf(out, ": no policy selects it for %s (open)", dir);
	} else {
		if (strcmp(enforcement, "always") == 0 && !enforced)
			fprintf(out, ": default deny (enforcement always)");
		else
			fprintf(out, ": default deny (a rule selects it for %s; none allows this)",
			        dir);
	}
	fputc('\n', out);
}

void
ctl_trace_print_text(const json_t *doc, FILE *out)
{
	const json_t *src = json_object_get(doc, "src"), *dst = json_object_get(doc, "dst");
	const char *enf = jstr(doc, "enforcement");
	const char *side = json_string_value(json_object_get(doc, "denied_by"));

	print_end_text("source:", src, out);
	print_end_text("destination:", dst, out);
	fprintf(out, "%-12s ", "flow:");
	print_flow_desc(doc, out);
	fputc('\n', out);
	print_decision_text(enf, "egress", "source", jint(src, "identity"),
	                    json_object_get(doc, "egress"), out);
	print_decision_text(enf, "ingress", "destination", jint(dst, "identity"),
	                    json_object_get(doc, "ingress"), out);
	fprintf(out, "%-12s %s",
	        "verdict:", strcmp(jstr(doc, "verdict"), "allowed") == 0 ? "ALLOWED" : "DENIED");
	if (side != NULL)
		fprintf(out, " (by %s)", side);
	fputc('\n', out);
}

static void
print_doc(const json_t *doc, enum ctl_output out, bool batch)
{
	if (out == CTL_OUT_JSON) {
		json_dumpf(doc, stdout, batch ? JSON_COMPACT : JSON_INDENT(2));
		fputc('\n', stdout);
	} else {
		ctl_trace_print_text(doc, stdout);
	}
	fflush(stdout);
}

/* ---- tracing ---- */

/* Where traces come from: a loaded offline state, or the daemon's socket. */
struct trace_src {
	const struct mg_gateway *gw; /* offline when not NULL */
	const char *socket;
};

/*
 * Trace one flow and print it. @return an exit code: CTL_EXIT_OK;
 * CTL_EXIT_INTERNAL when the compiled tables disagree with the trace;
 * online, CTL_EXIT_FAIL when the daemon cannot be asked or refuses.
 */
static int
trace_one(const struct trace_src *src, const struct mg_trace_flow *f, enum ctl_output out,
          bool batch, const char *cmd)
{
	json_t *doc = NULL, *args;
	struct mg_policy_params params;
	struct mg_trace_ctx ctx;
	char why[1024];
	int rc, ret;

	if (src->gw == NULL) {
		args = mg_trace_flow_to_json(f);
		if (args == NULL) {
			fprintf(stderr, "meshgatectl %s: out of memory\n", cmd);
			return CTL_EXIT_INTERNAL;
		}
		ret = ctl_call(cmd, src->socket, "policy.trace", args, &doc);
		json_decref(args);
		if (ret != CTL_EXIT_OK)
			return ret;
		print_doc(doc, out, batch);
		json_decref(doc);
		return CTL_EXIT_OK;
	}

	mg_gateway_trace_ctx(src->gw, &ctx, &params);

	rc = mg_trace_json(&ctx, f, &doc, why, sizeof(why));
	if (doc == NULL) {
		fprintf(stderr, "meshgatectl %s: %s\n", cmd, why);
		return CTL_EXIT_INTERNAL;
	}
	/* A disagreement still prints the trace: it is the evidence. */
	print_doc(doc, out, batch);
	json_decref(doc);
	if (rc < 0) {
		fprintf(stderr, "meshgatectl %s: %s\n", cmd, why);
		return CTL_EXIT_INTERNAL;
	}
	return CTL_EXIT_OK;
}

#define MAX_LINE_ARGS 32

/* Split @p line in place into whitespace-separated words. */
static int
split_words(char *line, char **argv, int max)
{
	int n = 0;
	char *p = line;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (*p == '\0' || *p == '#')
			return n;
		if (n == max)
			return -E2BIG;
		argv[n++] = p;
		while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
			p++;
		if (*p != '\0')
			*p++ = '\0';
	}
}

static int
trace_batch(const struct trace_src *src, const char *path, enum ctl_output out, const char *cmd)
{
	FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	int ret = CTL_EXIT_OK, rc, n;
	char *line = NULL, *argv[MAX_LINE_ARGS];
	size_t cap = 0;
	unsigned lineno = 0;
	char why[512];
	struct mg_trace_req req;
	struct mg_trace_flow f;

	if (in == NULL) {
		fprintf(stderr, "meshgatectl %s: --flows %s: %s\n", cmd, path, strerror(errno));
		return CTL_EXIT_USAGE;
	}
	while (getline(&line, &cap, in) >= 0) {
		lineno++;
		n = split_words(line, argv, MAX_LINE_ARGS);
		if (n == 0)
			continue;
		if (n < 0) {
			fprintf(stderr, "meshgatectl %s: %s:%u: too many words\n", cmd, path,
			        lineno);
			ret = CTL_EXIT_USAGE;
			break;
		}
		if (parse_opts(n, argv, NULL, &req, why, sizeof(why)) < 0 ||
		    mg_trace_flow_parse(&req, &f, why, sizeof(why)) < 0) {
			fprintf(stderr, "meshgatectl %s: %s:%u: %s\n", cmd, path, lineno, why);
			ret = CTL_EXIT_USAGE;
			break;
		}
		if (out == CTL_OUT_TEXT && lineno > 1)
			fputc('\n', stdout);
		rc = trace_one(src, &f, out, true, cmd);
		if (rc == CTL_EXIT_INTERNAL)
			ret = rc; /* go on: report every disagreement */
		else if (rc != CTL_EXIT_OK) {
			ret = rc; /* the daemon is gone or refuses: the next lines would too */
			break;
		}
	}
	free(line);
	if (in != stdin)
		fclose(in);
	return ret;
}

int
ctl_policy_trace(int argc, char **argv)
{
	const char *cmd = argv[0];
	struct trace_opts o = {.out = ctl_default_output};
	struct mg_error err = {{0}};
	struct trace_src src = {0};
	struct mg_trace_req req;
	struct mg_trace_flow f;
	struct mg_gateway *gw = NULL;
	char why[512];
	int rc, ret;

	if (parse_opts(argc - 1, argv + 1, &o, &req, why, sizeof(why)) < 0)
		return ctl_usage_error(cmd, "%s", why);
	if (o.help) {
		ctl_print_usage(cmd, stdout);
		return CTL_EXIT_OK;
	}
	if (o.config != NULL && o.socket != NULL)
		return ctl_usage_error(cmd, "--config (offline) and --socket (ask the daemon) "
		                            "exclude each other");
	if (o.flows != NULL) {
		if (req.src || req.dst || req.proto || req.dport || req.icmp_type)
			return ctl_usage_error(cmd, "--flows replaces --src, --dst, --proto, "
			                            "--dport and --icmp-type");
	} else if (mg_trace_flow_parse(&req, &f, why, sizeof(why)) < 0) {
		return ctl_usage_error(cmd, "%s", why);
	}

	if (o.config == NULL) {
		src.socket = ctl_socket_path(o.socket);
	} else {
		/* What the daemon builds at start on that config (lib/gateway), no Redis. */
		struct mg_config *cfg = mg_config_load(o.config, &err);

		gw = cfg != NULL ? mg_gateway_create(cfg, NULL, &err) : NULL;
		rc = gw != NULL ? mg_gateway_compile(gw, &err) : -EINVAL;
		if (rc < 0) {
			fprintf(stderr, "meshgatectl %s: %s\n", cmd,
			        err.msg[0] ? err.msg : strerror(-rc));
			mg_gateway_free(gw);
			return CTL_EXIT_FAIL;
		}
		src.gw = gw;
	}
	if (o.flows != NULL)
		ret = trace_batch(&src, o.flows, o.out, cmd);
	else
		ret = trace_one(&src, &f, o.out, false, cmd);
	mg_gateway_free(gw);
	return ret;
}
