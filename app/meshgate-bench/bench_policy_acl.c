/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `meshgate-bench policy`, the acl part: the workload's policy on a smaller
 * instance expanded to per-address 5-tuple rules and run through
 * dpdk-test-acl (a child process with its own EAL), next to meshgate's
 * compile, memory and ipcache + verdict cycles, with a check that both
 * classify every flow alike.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_policy_priv.h"
#include "mg_pkt.h"

/*
 * Expand the compiled policy to 5-tuple rules: for every ordered pair of
 * identities and each of TCP and UDP, ask the verdict once per elementary
 * port interval, merge adjacent allowed intervals, and emit one rule per
 * (source address, destination address, port range, protocol); a pair
 * allowed on every port of both protocols becomes one any-protocol rule. A
 * final catch-all rule is the default deny. Returns the allow rules.
 */
static long
acl_rules_write(FILE *out, const struct mg_policy *pol, const uint32_t *idv, unsigned n,
                unsigned *any_rules)
{
	static const uint8_t protos[2] = {MG_IPPROTO_TCP, MG_IPPROTO_UDP};
	long rules = 0;
	unsigned a, b, pi, e;

	*any_rules = 0;
	for (a = 0; a < n; a++) {
		uint32_t sa = bp_addr_of(idv[a]);

		for (b = 0; b < n; b++) {
			uint32_t da = bp_addr_of(idv[b]);
			bool ok[2][N_INTERVALS], all = true;
			char s[20], d[20];

			for (pi = 0; pi < 2; pi++)
				for (e = 0; e < N_INTERVALS; e++) {
					ok[pi][e] = mg_policy_verdict(
					                    pol, idv[a], idv[b], protos[pi],
					                    bp_port_starts[e]) == MG_VERDICT_ALLOW;
					all = all && ok[pi][e];
				}
			snprintf(s, sizeof(s), "%u.%u.%u.%u", sa >> 24, (sa >> 16) & 255,
			         (sa >> 8) & 255, sa & 255);
			snprintf(d, sizeof(d), "%u.%u.%u.%u", da >> 24, (da >> 16) & 255,
			         (da >> 8) & 255, da & 255);
			if (all) {
				fprintf(out, "@%s/32 %s/32 0 : 65535 0 : 65535 0x00/0x00\n", s, d);
				rules++;
				(*any_rules)++;
				continue;
			}
			for (pi = 0; pi < 2; pi++)
				for (e = 0; e < N_INTERVALS; e++) {
					unsigned last = e;

					if (!ok[pi][e])
						continue;
					while (last + 1 < N_INTERVALS && ok[pi][last + 1])
						last++;
					fprintf(out, "@%s/32 %s/32 0 : 65535 %u : %u %u/0xff\n", s,
					        d, bp_port_starts[e],
					        last + 1 < N_INTERVALS
					                ? bp_port_starts[last + 1] - 1u
					                : 65535u,
					        protos[pi]);
					rules++;
					e = last;
				}
		}
	}
	fprintf(out, "@0.0.0.0/0 0.0.0.0/0 0 : 65535 0 : 65535 0x00/0x00\n");
	return ferror(out) ? -EIO : rules;
}

struct acl_result {
	bool ran;           /* the program started and printed its summary */
	int build_rc;       /* rte_acl_build's return */
	double wall;        /* seconds, whole process */
	double cycles;      /* classify cycles per packet */
	size_t runtime_mem; /* bytes of the runtime structures */
	size_t build_mem;   /* bytes the build phase consumed */
	int alg;
	unsigned tries;
	char why[256]; /* last error line */
};

static const char *
acl_alg_name(int alg)
{
	/* enum rte_acl_classify_alg of DPDK 22.11 */
	static const char *const names[] = {"default", "scalar",  "sse",       "avx2",
	                                    "neon",    "altivec", "avx512x16", "avx512x32"};

	return alg >= 0 && alg < (int)(sizeof(names) / sizeof(names[0])) ? names[alg] : "?";
}

/*
 * One run of dpdk-test-acl. With @p results, every classify result is
 * stored there (verbose level 2, one iteration).
 */
static void
acl_run(const struct opts *o, const char *rules, unsigned nrules, const char *trace,
        unsigned ntrace, unsigned iter, uint32_t *results, struct acl_result *r)
{
	char cmd[2048], line[512];
	uint64_t t0;
	FILE *p;

	memset(r, 0, sizeof(*r));
	r->build_rc = -1;
	r->alg = -1;
	snprintf(cmd, sizeof(cmd),
	         "%s --no-huge -m 4096 --no-pci -l 0 --file-prefix mgbench-acl "
	         "--log-level=lib.eal:error --log-level=lib.acl:debug -- --rulesf=%s "
	         "--rulenum=%u%s%s --tracenum=%u --iter=%u --verbose=%u 2>&1 </dev/null",
	         o->test_acl, rules, nrules + 1, trace ? " --tracef=" : "", trace ? trace : "",
	         ntrace ? ntrace : 1, iter, results ? 2 : 0);
	t0 = mg_time_ns();
	p = popen(cmd, "r");
	if (p == NULL) {
		snprintf(r->why, sizeof(r->why), "popen: %s", strerror(errno));
		return;
	}
	while (fgets(line, sizeof(line), p) != NULL) {
		unsigned u, v, res;
		unsigned long long x;
		char *s;

		if (results != NULL &&
		    sscanf(line, "ipv4_5tuple: %u, category: %u, result: %u", &u, &v, &res) == 3) {
			if (u >= 1 && u <= ntrace && v == 0)
				results[u - 1] = res;
			continue;
		}
		if (sscanf(line, "rte_acl_build(%u) finished with %d", &u, &r->build_rc) == 2)
			continue;
		if (sscanf(line, " alg=%d", &r->alg) == 1 ||
		    sscanf(line, " num_tries=%u", &r->tries) == 1)
			continue;
		if (sscanf(line, "total: %llu bytes", &x) == 1) {
			r->runtime_mem = (size_t)x;
			continue;
		}
		if (sscanf(line, "memory consumed: %llu", &x) == 1) {
			r->build_mem = (size_t)x;
			continue;
		}
		s = strstr(line, " cycles/pkt");
		if (strncmp(line, "search_ip5tuples ", 17) == 0 && s != NULL) {
			while (s > line && s[-1] != ' ')
				s--;
			r->cycles = strtod(s, NULL);
			r->ran = true;
			continue;
		}
		if (strstr(line, "rror") != NULL || strstr(line, "ause:") != NULL ||
		    strstr(line, "ailed") != NULL || strstr(line, "not found") != NULL) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(r->why, sizeof(r->why), "%.200s", line);
		}
	}
	{
		int st = pclose(p);

		if (st != 0 && r->why[0] == '\0')
			snprintf(r->why, sizeof(r->why), "exit status %d", st);
	}
	r->wall = bp_secs_since(t0);
}

static int
collect_id(const struct mg_identity *e, void *arg)
{
	uint32_t **v = arg;

	if (!mg_identity_is_reserved(e->id))
		*(*v)++ = e->id;
	return 0;
}

int
bp_bench_acl(const struct opts *o, unsigned acl_identities)
{
	char dir[] = "/tmp/mgbench-acl.XXXXXX", rules[300], trace[300];
	const char *d = o->keep_dir;
	char t[2][32];
	struct mg_ipcache_params ip = {.split_world = true};
	struct mg_error err = {{0}};
	struct mg_ipcache *ipc = NULL;
	struct mg_policy_set *s = NULL;
	struct acl_result base, build, run, check;
	struct compiled cp = {0};
	struct world w;
	struct flow *flows = NULL;
	uint32_t *idv = NULL, *res = NULL, *cur;
	unsigned n, i, any, agree = 0, wrong_ids = 0, allowed;
	size_t yaml;
	double load, ours, ours_ipc, ours_best_build;
	long nrules;
	FILE *f;
	int rc;

	if (d == NULL) {
		if (mkdtemp(dir) == NULL)
			return -errno;
		d = dir;
	} else {
		mkdir(d, 0755);
	}
	snprintf(rules, sizeof(rules), "%s/policy-%u.rules", d, acl_identities);
	snprintf(trace, sizeof(trace), "%s/flows-%u.trace", d, acl_identities);
	rc = bp_world_build(&w, acl_identities);
	if (rc != 0)
		goto out_dir;
	s = bp_policies_load((acl_identities + VERSIONS - 1) / VERSIONS, &load, &yaml, &err);
	if (s == NULL || bp_compile_timed(s, w.ids, &cp, &err) != 0) {
		printf("acl       policy: %s\n", err.msg);
		rc = -EINVAL;
		goto out;
	}
	n = (unsigned)mg_identity_table_count(w.ids);
	idv = calloc(n, sizeof(*idv));
	flows = bp_flows_build(&w, o->flows);
	res = calloc(o->flows, sizeof(*res));
	ip.entries_hint = n;
	ipc = mg_ipcache_create(&ip);
	if (idv == NULL || flows == NULL || res == NULL || ipc == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	cur = idv;
	mg_identity_table_walk(w.ids, collect_id, &cur);
	n = (unsigned)(cur - idv);
	for (i = 0; i < n; i++) {
		struct mg_ipcache_entry e = {.family = MG_AF_INET, .plen = 32};
		uint32_t be = __builtin_bswap32(bp_addr_of(idv[i]));

		memcpy(e.addr, &be, 4);
		e.identity = idv[i];
		e.cluster_id = idv[i] >> 16;
		rc = mg_ipcache_put(ipc, &e);
		if (rc < 0)
			goto out;
	}
	rc = mg_ipcache_commit(ipc);
	if (rc < 0)
		goto out;

	f = fopen(rules, "w");
	if (f == NULL) {
		rc = -errno;
		goto out;
	}
	nrules = acl_rules_write(f, cp.pol, idv, n, &any);
	if (fclose(f) != 0 || nrules < 0) {
		rc = -EIO;
		goto out;
	}
	f = fopen(trace, "w");
	if (f == NULL) {
		rc = -errno;
		goto out;
	}
	for (i = 0; i < o->flows; i++)
		fprintf(f, "%u %u %u %u %u\n", bp_addr_of(flows[i].src), bp_addr_of(flows[i].dst),
		        flows[i].sport, flows[i].dport, flows[i].proto);
	if (fclose(f) != 0) {
		rc = -EIO;
		goto out;
	}
	printf("\nacl       the same kind of policy, smaller: %zu rules over %u identities (one "
	       "IPv4 address each), expanded to %ld allow rules + 1 default deny (%u pairs open "
	       "on every port: one any-protocol rule each; the rest one rule per address "
	       "pair, protocol and port range)\n",
	       mg_policy_set_rules(s), n, nrules, any);
	ours = bp_verdict_cycles(cp.pol, flows, o->flows, o->rounds, &allowed);
	ours_ipc = bp_pipeline_cycles(mg_ipcache_reader(ipc), cp.pol, flows, o->flows, o->rounds,
	                              &wrong_ids);
	/* our compile, best of three, to set against the ACL build */
	ours_best_build = cp.secs;
	for (i = 0; i < 2; i++) {
		struct compiled again;

		if (bp_compile_timed(s, w.ids, &again, &err) == 0) {
			if (again.secs < ours_best_build)
				ours_best_build = again.secs;
			mg_policy_free(again.pol);
		}
	}
	printf("meshgate  compile %s (best of 3; YAML load %s), policy %zu KiB\n",
	       bp_fmt_secs(t[0], sizeof(t[0]), ours_best_build),
	       bp_fmt_secs(t[1], sizeof(t[1]), load), mg_policy_memory(cp.pol) / 1024);
	printf("meshgate  verdict only %.1f cycles/packet, ipcache + verdict %.1f cycles/packet  "
	       "(ipcache bulk lookups by bursts of %u; blocks of %u flows, best of %u rounds "
	       "each; allowed %.0f%%)\n",
	       ours, ours_ipc, BURST, CHUNK, o->rounds, 100.0 * allowed / o->flows);
	fflush(stdout);

	/* the start-up cost of the program: one rule, no trace */
	{
		char one[320];
		FILE *g;

		snprintf(one, sizeof(one), "%s/one.rules", d);
		g = fopen(one, "w");
		if (g == NULL) {
			rc = -errno;
			goto out;
		}
		fprintf(g, "@0.0.0.0/0 0.0.0.0/0 0 : 65535 0 : 65535 0x00/0x00\n");
		fclose(g);
		acl_run(o, one, 1, NULL, 0, 1, NULL, &base);
		if (o->keep_dir == NULL)
			unlink(one);
	}
	if (!base.ran) {
		printf("acl       dpdk-test-acl (%s) did not run: %s\n", o->test_acl,
		       base.why[0] ? base.why : "no summary line in its output");
		goto done;
	}
	acl_run(o, rules, (unsigned)nrules, NULL, 0, 1, NULL, &build);
	if (!build.ran || build.build_rc != 0) {
		printf("acl       dpdk-test-acl could not build the %ld rules (rte_acl_build %d): "
		       "%s\n",
		       nrules + 1, build.build_rc, build.why);
		goto done;
	}
	acl_run(o, rules, (unsigned)nrules, trace, o->flows, o->acl_iter, NULL, &run);
	acl_run(o, rules, (unsigned)nrules, trace, o->flows, 1, res, &check);
	if (check.ran)
		for (i = 0; i < o->flows; i++) {
			bool acl_allows = res[i] < (uint32_t)nrules;
			bool we_allow = mg_policy_verdict(cp.pol, flows[i].src, flows[i].dst,
			                                  flows[i].proto,
			                                  flows[i].dport) == MG_VERDICT_ALLOW;

			agree += acl_allows == we_allow;
		}
	printf("acl       dpdk-test-acl: build %s (process time %.2f s minus %.2f s for a "
	       "one-rule run), runtime %zu KiB (build phase %zu MiB), %u trie(s), alg %s\n",
	       bp_fmt_secs(t[0], sizeof(t[0]), build.wall - base.wall), build.wall, base.wall,
	       build.runtime_mem / 1024, build.build_mem >> 20, build.tries,
	       acl_alg_name(build.alg));
	printf("acl       dpdk-test-acl: classify %.1f cycles/packet  (%u flows, %u iterations, "
	       "256 per call, mean)\n",
	       run.cycles, o->flows, o->acl_iter);
	printf("check     dpdk-test-acl and meshgate agree on %u of %u flows; ipcache gave the "
	       "flow's identities for all but %u\n",
	       agree, check.ran ? o->flows : 0, wrong_ids);
done:
	rc = 0;
out:
	if (rc != 0)
		printf("acl       error: %s\n", err.msg[0] ? err.msg : strerror(-rc));
	fflush(stdout);
	mg_ipcache_free(ipc);
	mg_policy_free(cp.pol);
	mg_policy_set_free(s);
	free(flows);
	free(idv);
	free(res);
	bp_world_free(&w);
out_dir:
	if (o->keep_dir == NULL) {
		unlink(rules);
		unlink(trace);
		rmdir(dir);
	}
	return rc;
}
