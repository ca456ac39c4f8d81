/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `meshgatectl policy validate`: check CiliumNetworkPolicy and
 * CiliumClusterwideNetworkPolicy files offline, with the daemon's own
 * loader, before they reach a gateway. Every problem is one line,
 * "file:line:column: message" for errors and "file:line:column: warning:
 * message" for allow rules a layer-4 gateway skips (L7 rules, toFQDNs...):
 * the format compilers use, so editors and CI annotate the right place.
 * Warnings alone do not fail the check: the policy loads, it only allows
 * less than in Cilium.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

struct validate_ctx {
	enum ctl_output out;
	unsigned errors, warnings;
	json_t *problems; /* JSON output: the list being built */
};

static void
report(const struct mg_policy_problem *p, void *arg)
{
	struct validate_ctx *v = arg;
	const char *file = p->file ? p->file : "";

	if (p->warning)
		v->warnings++;
	else
		v->errors++;
	if (v->out == CTL_OUT_JSON) {
		json_array_append_new(v->problems,
		                      json_pack("{s:s, s:i, s:i, s:s, s:s}", "file", file, "line",
		                                (int)p->line, "column", (int)p->col, "severity",
		                                p->warning ? "warning" : "error", "message",
		                                p->msg ? p->msg : ""));
		return;
	}
	if (p->line > 0)
		printf("%s:%u:%u: %s%s\n", file, p->line, p->col, p->warning ? "warning: " : "",
		       p->msg);
	else if (file[0] != '\0')
		printf("%s: %s%s\n", file, p->warning ? "warning: " : "", p->msg);
	else /* the message carries its own position */
		printf("%s%s\n", p->warning ? "warning: " : "", p->msg);
}

int
ctl_policy_validate(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"cluster", required_argument, NULL, 'c'},
	        {"output", required_argument, NULL, 'o'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct validate_ctx v = {.out = ctl_default_output};
	const char *cmd = argv[0], *cluster = "default";
	struct mg_policy_set *set = NULL;
	json_t *paths = NULL;
	int o, i, rc, ret = CTL_EXIT_OK;

	opterr = 0;
	optind = 1;
	while ((o = getopt_long(argc, argv, ":c:o:h", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			if (optarg[0] == '\0')
				return ctl_usage_error(cmd, "--cluster: empty name");
			cluster = optarg;
			break;
		case 'o':
			if (ctl_output_parse(optarg, &v.out) < 0)
				return ctl_usage_error(cmd, "-o: unknown format '%s' (text, json)",
				                       optarg);
			break;
		case 'h':
			ctl_print_usage(cmd, stdout);
			return CTL_EXIT_OK;
		case ':':
			return ctl_usage_error(cmd, "%s needs a value", argv[optind - 1]);
		default:
			return ctl_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return ctl_usage_error(cmd, "no file or directory given");

	set = mg_policy_set_create();
	if (v.out == CTL_OUT_JSON) {
		v.problems = json_array();
		paths = json_array();
	}
	if (set == NULL || (v.out == CTL_OUT_JSON && (v.problems == NULL || paths == NULL))) {
		fprintf(stderr, "meshgatectl %s: out of memory\n", cmd);
		ret = CTL_EXIT_INTERNAL;
		goto out;
	}
	for (i = optind; i < argc; i++) {
		unsigned before = v.errors;

		/* One set for every path: what loaded cleanly stays, so a
		 * policy defined twice across files is caught too. */
		rc = mg_policy_set_check_path(set, cluster, argv[i], report, &v);
		if (rc < 0 && v.errors == before) {
			/* Unreadable and not reported: say so ourselves. */
			struct mg_policy_problem p = {.file = argv[i], .msg = strerror(-rc)};

			report(&p, &v);
		}
		if (paths != NULL)
			json_array_append_new(paths, json_string(argv[i]));
	}
	if (v.errors > 0)
		ret = CTL_EXIT_FAIL;
	if (v.out == CTL_OUT_JSON) {
		json_t *doc = json_pack("{s:b, s:s, s:o, s:i, s:i, s:i, s:i, s:O}", "valid",
		                        v.errors == 0, "cluster", cluster, "paths", paths, "errors",
		                        (int)v.errors, "warnings", (int)v.warnings, "policies",
		                        (int)mg_policy_set_count(set), "rules",
		                        (int)mg_policy_set_rules(set), "problems", v.problems);

		paths = NULL; /* stolen by "o" */
		if (doc == NULL) {
			fprintf(stderr, "meshgatectl %s: out of memory\n", cmd);
			ret = CTL_EXIT_INTERNAL;
			goto out;
		}
		json_dumpf(doc, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(doc);
	} else {
		fprintf(stderr, "%s: %u error%s, %u warning%s; %zu polic%s loaded\n",
		        v.errors ? "invalid" : "valid", v.errors, v.errors == 1 ? "" : "s",
		        v.warnings, v.warnings == 1 ? "" : "s", mg_policy_set_count(set),
		        mg_policy_set_count(set) == 1 ? "y" : "ies");
	}
out:
	json_decref(paths);
	json_decref(v.problems);
	if (set != NULL)
		mg_policy_set_free(set);
	return ret;
}
