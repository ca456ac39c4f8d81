/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * meshgate-bench policy: the verdict timings. Single verdicts
 * (mg_policy_verdict), bulk verdicts (mg_policy_verdict_bulk, bursts of
 * BURST) and the ipcache lookup of both addresses with the verdict, each
 * block of CHUNK flows timed apart and kept at its best of the rounds; and
 * the check that the bulk and the single verdict agree on every flow.
 */
#include <stdlib.h>

#include <rte_cycles.h>

#include "bench_policy_priv.h"
#include "mg_ipcache.h"
#include "mg_pkt.h"

static unsigned
verdict_pass(const struct mg_policy *pol, const struct flow *f, unsigned n)
{
	unsigned i, allowed = 0;

	for (i = 0; i < n; i++)
		allowed += mg_policy_verdict(pol, f[i].src, f[i].dst, f[i].proto, f[i].dport) ==
		           MG_VERDICT_ALLOW;
	return allowed;
}

/* A burst of flows as mg_policy_verdict_bulk takes them. */
struct vburst {
	uint32_t ids[2 * BURST];
	uint8_t proto[BURST], out[BURST];
	uint16_t dport[BURST];
};

/* The bulk verdicts of flows [i, i + k) of @p f into @p v->out. */
static inline void
burst_verdicts(const struct mg_policy *pol, const struct flow *f, unsigned i, unsigned k,
               struct vburst *v)
{
	for (unsigned j = 0; j < k; j++) {
		v->ids[2 * j] = f[i + j].src;
		v->ids[2 * j + 1] = f[i + j].dst;
		v->proto[j] = f[i + j].proto;
		v->dport[j] = f[i + j].dport;
	}
	mg_policy_verdict_bulk(pol, v->ids, v->proto, v->dport, k, v->out);
}

/* The same verdicts by mg_policy_verdict_bulk, bursts of BURST (the gather included). */
static unsigned
verdict_pass_bulk(const struct mg_policy *pol, const struct flow *f, unsigned n)
{
	struct vburst v;
	unsigned i, j, k, allowed = 0;

	for (i = 0; i < n; i += k) {
		k = n - i < BURST ? n - i : BURST;
		burst_verdicts(pol, f, i, k, &v);
		for (j = 0; j < k; j++)
			allowed += v.out[j] == MG_VERDICT_ALLOW;
	}
	return allowed;
}

unsigned
bp_bulk_disagreements(const struct mg_policy *pol, const struct flow *f, unsigned n)
{
	struct vburst v;
	unsigned i, j, k, bad = 0;

	for (i = 0; i < n; i += k) {
		k = n - i < BURST ? n - i : BURST;
		burst_verdicts(pol, f, i, k, &v);
		for (j = 0; j < k; j++)
			bad += v.out[j] != mg_policy_verdict(pol, f[i + j].src, f[i + j].dst,
			                                     f[i + j].proto, f[i + j].dport);
	}
	return bad;
}

/*
 * Timing on a shared machine: every block of CHUNK flows is timed on its
 * own and keeps its best of the rounds, so a round that another process
 * preempts spoils one block, not the figure. The blocks still run in
 * order, so the caches hold what a continuous pass leaves in them.
 */

/* Best of @p rounds passes of @p pass (after one warm-up pass), in cycles per verdict. */
static double
verdict_cycles(unsigned (*pass)(const struct mg_policy *, const struct flow *, unsigned),
               const struct mg_policy *pol, const struct flow *f, unsigned n, unsigned rounds,
               unsigned *allowed)
{
	unsigned r, c, nc = (n + CHUNK - 1) / CHUNK;
	uint64_t t0, sum = 0, *best = malloc(nc * sizeof(*best));

	if (best == NULL)
		return -1;
	for (c = 0; c < nc; c++)
		best[c] = UINT64_MAX;
	*allowed = pass(pol, f, n);
	for (r = 0; r < rounds; r++)
		for (c = 0; c < nc; c++) {
			unsigned len = n - c * CHUNK < CHUNK ? n - c * CHUNK : CHUNK;

			t0 = rte_rdtsc_precise();
			pass(pol, f + (size_t)c * CHUNK, len);
			t0 = rte_rdtsc_precise() - t0;
			if (t0 < best[c])
				best[c] = t0;
		}
	for (c = 0; c < nc; c++)
		sum += best[c];
	free(best);
	return (double)sum / n;
}

double
bp_verdict_cycles(const struct mg_policy *pol, const struct flow *f, unsigned n, unsigned rounds,
                  unsigned *allowed)
{
	return verdict_cycles(verdict_pass, pol, f, n, rounds, allowed);
}

double
bp_verdict_bulk_cycles(const struct mg_policy *pol, const struct flow *f, unsigned n,
                       unsigned rounds, unsigned *allowed)
{
	return verdict_cycles(verdict_pass_bulk, pol, f, n, rounds, allowed);
}

/* ipcache lookups of both addresses (bulk, by bursts) then the verdict. */
static unsigned
pipeline_pass(const struct mg_ipcache_view *v, const struct mg_policy *pol, const struct flow *f,
              unsigned n, const uint8_t *const *sp, const uint8_t *const *dp, unsigned *wrong)
{
	static const uint8_t fam[BURST] = {[0 ... BURST - 1] = MG_AF_INET};
	uint32_t sid[BURST], did[BURST];
	unsigned i, j, allowed = 0;

	for (i = 0; i + BURST <= n; i += BURST) {
		mg_ipcache_lookup_bulk(v, fam, sp + i, sid, BURST);
		mg_ipcache_lookup_bulk(v, fam, dp + i, did, BURST);
		for (j = 0; j < BURST; j++) {
			allowed += mg_policy_verdict(pol, sid[j], did[j], f[i + j].proto,
			                             f[i + j].dport) == MG_VERDICT_ALLOW;
			if (wrong != NULL)
				*wrong += sid[j] != f[i + j].src || did[j] != f[i + j].dst;
		}
	}
	return allowed;
}

double
bp_pipeline_cycles(const struct mg_ipcache_view *v, const struct mg_policy *pol,
                   const struct flow *f, unsigned n, unsigned rounds, unsigned *wrong)
{
	const uint8_t **sp = calloc(n, sizeof(*sp)), **dp = calloc(n, sizeof(*dp));
	unsigned r, i, c, nc = (n + CHUNK - 1) / CHUNK;
	uint64_t t0, sum = 0, *best = malloc(nc * sizeof(*best));

	if (sp == NULL || dp == NULL || best == NULL) {
		free(sp);
		free(dp);
		free(best);
		return -1;
	}
	for (c = 0; c < nc; c++)
		best[c] = UINT64_MAX;
	for (i = 0; i < n; i++) {
		sp[i] = f[i].saddr;
		dp[i] = f[i].daddr;
	}
	*wrong = 0;
	pipeline_pass(v, pol, f, n, sp, dp, wrong);
	for (r = 0; r < rounds; r++)
		for (c = 0; c < nc; c++) {
			size_t off = (size_t)c * CHUNK;
			unsigned len = n - off < CHUNK ? (unsigned)(n - off) : CHUNK;

			t0 = rte_rdtsc_precise();
			pipeline_pass(v, pol, f + off, len, sp + off, dp + off, NULL);
			t0 = rte_rdtsc_precise() - t0;
			if (t0 < best[c])
				best[c] = t0;
		}
	for (c = 0; c < nc; c++)
		sum += best[c];
	free(sp);
	free(dp);
	free(best);
	return (double)sum / (n - n % BURST);
}
