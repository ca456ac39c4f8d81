/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The compiled policy's life: mg_policy_compile() builds one from the rule
 * AST and the identity table, mg_policy_update_identities() derives the
 * next generation from one, mg_policy_free() drops one. This file
 * allocates or shares the blocks, has the builder fill them, and
 * publishes the result (the data path's pointers, the memory count). The
 * compiled shape's lookup cost does not depend on the number of rules or
 * identities:
 *
 *   1. plan (per compile, immutable; mg_policy_plan.c): the distinct
 *      selectors (after scoping), per direction the subject and peer
 *      selectors that matter, the rules per subject selector, and the port
 *      names rules use;
 *   2. classes (mg_policy_build.c): an identity's subject class in
 *      direction d is the set of d's subject selectors it matches (plus, on
 *      ingress, what its named ports resolve the used names to); its peer
 *      class likewise (named ports on egress, where the peer is the
 *      destination). Equal keys, equal class;
 *   3. per direction a table [subject class][peer class] -> port set
 *      (mg_policy_build.c fills it; mg_policy_cow.c stores it), where a
 *      port set holds flags for "every protocol allowed / denied" (L3-only
 *      entries) and, per TCP/UDP/SCTP/ICMP/ICMPv6, an allow and a deny
 *      bitmap of 65536 bits, interned (mg_policy_intern.c) so equal
 *      bitmaps share memory;
 *   4. identity -> classes through a two-level hash map (directory of
 *      small open-addressing leaves; mg_policy_idmap.c).
 *
 * mg_policy_verdict.c reads all this per packet.
 *
 * Incremental updates (mg_policy_update_identities) classify only the
 * changed identities and fill only the cells of classes that did not exist.
 * A compiled object never changes once published: the new object shares
 * the old one's blocks by reference count and writes only where the old
 * one never reads (table cells and vector slots past the old one's
 * dimensions, leaves and the directory copied on write). Each shared block
 * remembers how far its newest user filled it (its claim); extending it in
 * place is allowed only to the object whose dimensions equal that claim,
 * so two objects derived from the same parent never write the same slot.
 * The full compile is the same machinery run from empty. See
 * docs/policy-engine.md.
 */
#include <stdlib.h>

#include "policy_priv.h"

uint64_t
mg_policy_revision(const struct mg_policy *pol)
{
	return pol ? pol->revision : 0;
}

size_t
mg_policy_memory(const struct mg_policy *pol)
{
	return pol ? pol->memory : 0;
}

void
mg_policy_free(struct mg_policy *pol)
{
	unsigned d;

	if (pol == NULL)
		return;
	for (d = 0; d < 2; d++) {
		pol_cells_put(pol->dir[d].cells);
		pol_shv_put(pol->dir[d].enf);
		pol_shv_put(pol->dir[d].rdef);
		pol_reg_put(pol->dir[d].sreg);
		pol_reg_put(pol->dir[d].preg);
	}
	pol_map_put(pol->map);
	pol_plan_put(pol->plan);
	pol_shv_put(pol->ps);
	pol_shv_put(pol->bm);
	pol_reg_put(pol->psreg);
	pol_reg_put(pol->bmreg);
	free(pol);
}

static void
finalize(struct mg_policy *pol)
{
	size_t mem = sizeof(*pol);
	unsigned d;

	pol->shift = 64 - pol->map->bits;
	pol->leaves = pol->map->leaf;
	pol->psv = (const struct pol_portset *)pol->ps->data;
	pol->bmv = pol->bm->data;
	mem += pol->map->bytes + pol->plan->bytes;
	mem += pol->ps->cap * pol->ps->esz + pol->bm->cap * pol->bm->esz;
	mem += pol_itab_bytes(&pol->psreg->t) + pol_itab_bytes(&pol->bmreg->t);
	for (d = 0; d < 2; d++) {
		struct pol_dirtab *t = &pol->dir[d];

		t->cellv = t->cells->s;
		t->cmask = t->cells->mask;
		t->rdefv = (const uint32_t *)t->rdef->data;
		t->enfv = (const uint8_t *)t->enf->data;
		mem += (t->cells->mask + 1) * sizeof(uint64_t) + t->enf->cap +
		       t->rdef->cap * sizeof(uint32_t) + pol_itab_bytes(&t->sreg->t) +
		       pol_itab_bytes(&t->preg->t);
	}
	pol->memory = mem;
}

static struct mg_policy *
never_policy(uint64_t revision)
{
	struct mg_policy *pol = calloc(1, sizeof(*pol));

	if (pol == NULL)
		return NULL;
	pol->revision = revision;
	pol->never = true;
	pol->memory = sizeof(*pol);
	return pol;
}

struct mg_policy *
mg_policy_compile(const struct mg_policy_set *s, const struct mg_identity_table *ids,
                  const struct mg_policy_params *p, struct mg_error *err)
{
	struct mg_policy *pol;
	unsigned d;
	int rc;

	if (s == NULL || ids == NULL || p == NULL) {
		mg_error_set(err, NULL, 0, 0, "policy compile: missing argument");
		errno = EINVAL;
		return NULL;
	}
	if (p->enforcement == MG_ENFORCE_NEVER) {
		/* nothing is enforced: no tables at all */
		pol = never_policy(p->revision);
		if (pol == NULL) {
			mg_error_set(err, NULL, 0, 0, "policy compile: out of memory");
			errno = ENOMEM;
		}
		return pol;
	}
	pol = calloc(1, sizeof(*pol));
	if (pol == NULL) {
		mg_error_set(err, NULL, 0, 0, "policy compile: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	pol->revision = p->revision;
	pol->plan = pol_plan_build(s, p);
	pol->map = pol_map_new(mg_identity_table_count(ids));
	pol->ps = pol_shv_new(sizeof(struct pol_portset), 16);
	pol->bm = pol_shv_new(BM_WORDS * sizeof(uint64_t), 4);
	pol->psreg = pol_reg_new();
	pol->bmreg = pol_reg_new();
	for (d = 0; d < 2; d++) {
		pol->dir[d].enf = pol_shv_new(1, 16);
		pol->dir[d].rdef = pol_shv_new(sizeof(uint32_t), 16);
		pol->dir[d].cells = pol_cells_new(64);
		pol->dir[d].sreg = pol_reg_new();
		pol->dir[d].preg = pol_reg_new();
	}
	if (pol->plan == NULL || pol->map == NULL || pol->ps == NULL || pol->bm == NULL ||
	    pol->psreg == NULL || pol->bmreg == NULL || pol->dir[0].enf == NULL ||
	    pol->dir[1].enf == NULL || pol->dir[0].rdef == NULL || pol->dir[1].rdef == NULL ||
	    pol->dir[0].cells == NULL || pol->dir[1].cells == NULL || pol->dir[0].sreg == NULL ||
	    pol->dir[0].preg == NULL || pol->dir[1].sreg == NULL || pol->dir[1].preg == NULL) {
		mg_policy_free(pol);
		mg_error_set(err, NULL, 0, 0, "policy compile: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	rc = pol_build_all(pol, ids, err);
	if (rc) {
		mg_policy_free(pol);
		errno = -rc;
		return NULL;
	}
	finalize(pol);
	return pol;
}

struct mg_policy *
mg_policy_update_identities(const struct mg_policy *old, const struct mg_policy_set *s,
                            const struct mg_identity_table *ids, const uint32_t *idv, size_t n,
                            struct mg_error *err)
{
	struct mg_policy *pol;
	uint32_t osc[2], opc[2];
	unsigned d;
	int rc;

	if (old == NULL || s == NULL || ids == NULL || (idv == NULL && n > 0)) {
		mg_error_set(err, NULL, 0, 0, "policy update: missing argument");
		errno = EINVAL;
		return NULL;
	}
	if (old->never) {
		pol = never_policy(old->revision);
		if (pol == NULL) {
			mg_error_set(err, NULL, 0, 0, "policy update: out of memory");
			errno = ENOMEM;
		}
		return pol;
	}
	if (old->plan->s != s || old->plan->gen != s->gen) {
		mg_error_set(err, NULL, 0, 0,
		             "policy update: the policy set is not the one compiled; compile "
		             "again");
		errno = EINVAL;
		return NULL;
	}
	pol = malloc(sizeof(*pol));
	if (pol == NULL)
		goto oom;
	/* share everything; what changes is copied or extended past old's view */
	*pol = *old;
	pol->map = pol_map_clone(old->map);
	if (pol->map == NULL) {
		free(pol);
		goto oom;
	}
	pol->plan->refs++;
	pol->ps->refs++;
	pol->bm->refs++;
	pol->psreg->refs++;
	pol->bmreg->refs++;
	for (d = 0; d < 2; d++) {
		pol->dir[d].cells->refs++;
		pol->dir[d].enf->refs++;
		pol->dir[d].rdef->refs++;
		pol->dir[d].sreg->refs++;
		pol->dir[d].preg->refs++;
		osc[d] = old->dir[d].nsc;
		opc[d] = old->dir[d].npc;
	}
	rc = pol_build_update(pol, ids, idv, n, osc, opc, err);
	if (rc) {
		mg_policy_free(pol);
		errno = -rc;
		return NULL;
	}
	finalize(pol);
	return pol;
oom:
	mg_error_set(err, NULL, 0, 0, "policy update: out of memory");
	errno = ENOMEM;
	return NULL;
}
