/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Policy trace: the verdict for one flow computed straight from the rule
 * AST, rule by rule, recording which rule decided each direction. It is
 * deliberately a second, naive implementation of the semantics (no
 * classes, no tables): `meshgatectl policy trace` uses it to explain, and
 * the unit tests compare it with the compiled tables over grids of flows.
 * Skipped allow entries (L7, toFQDNs, ...) never decide: they match no
 * peer, but their rule still switches its subjects to default deny. A
 * direction that rules select only with enableDefaultDeny false stays
 * open, and the decision says it was selected (so the trace need not
 * claim that no policy selects it). Also the enforcement mode names.
 */
#include <stdio.h>
#include <string.h>

#include "policy_priv.h"

int
mg_enforcement_parse(const char *s, enum mg_enforcement *out)
{
	if (s == NULL)
		return -EINVAL;
	if (strcmp(s, "default") == 0)
		*out = MG_ENFORCE_DEFAULT;
	else if (strcmp(s, "always") == 0)
		*out = MG_ENFORCE_ALWAYS;
	else if (strcmp(s, "never") == 0)
		*out = MG_ENFORCE_NEVER;
	else
		return -EINVAL;
	return 0;
}

const char *
mg_enforcement_name(enum mg_enforcement e)
{
	switch (e) {
	case MG_ENFORCE_DEFAULT:
		return "default";
	case MG_ENFORCE_ALWAYS:
		return "always";
	case MG_ENFORCE_NEVER:
		return "never";
	}
	return "?";
}

static void
describe(const struct mg_policy_set *s, const struct rule *r, unsigned sec, size_t idx,
         struct mg_policy_decision *d)
{
	const struct policy_obj *p = &s->pol[r->pol];

	snprintf(d->name, sizeof(d->name), "%s", p->name);
	snprintf(d->ns, sizeof(d->ns), "%s", p->ns ? p->ns : "");
	snprintf(d->cluster, sizeof(d->cluster), "%s", p->cluster);
	snprintf(d->file, sizeof(d->file), "%s", p->file);
	d->rule_index = r->index;
	d->entry_index = (unsigned)idx;
	d->section = pol_section_names[sec];
	d->line = r->ent[sec][idx].line;
}

/*
 * Evaluate one direction: @p subj is the subject, @p peer the peer. Named
 * ports resolve through the packet's destination: the subject on ingress,
 * the peer on egress.
 */
static void
eval_dir(const struct mg_policy_set *s, const struct mg_policy_params *p, unsigned dir,
         const struct mg_identity *subj_id, const struct mg_identity *peer_id, uint8_t proto,
         uint16_t port, struct mg_policy_decision *d)
{
	static const struct mg_labels empty = MG_LABELS_INIT;
	const struct mg_labels *subj = subj_id ? &subj_id->labels : &empty;
	const struct mg_labels *peer = peer_id ? &peer_id->labels : &empty;
	const struct mg_identity *dst = dir == MG_DIR_INGRESS ? subj_id : peer_id;
	const struct rule *allow_r = NULL, *deny_r = NULL;
	size_t allow_i = 0, deny_i = 0, i, k;
	bool dlc = p->default_local_cluster;
	bool enforced = p->enforcement == MG_ENFORCE_ALWAYS, selected = false;

	memset(d, 0, sizeof(*d));
	if (p->enforcement == MG_ENFORCE_NEVER) {
		d->allowed = true;
		return;
	}
	for (i = 0; i < s->nrules; i++) {
		const struct rule *r = &s->rules[i];
		unsigned as = dir, ds = dir + 2;

		if (r->nent[as] + r->nent[ds] == 0)
			continue;
		if (!pol_sel_match(s->sel[r->subject], subj, dlc))
			continue;
		selected = true;
		if (!r->no_default_deny[dir])
			enforced = true;
		for (k = 0; deny_r == NULL && k < r->nent[ds]; k++)
			if (pol_entry_peer_match(s, &r->ent[ds][k], peer, dlc) &&
			    pol_entry_l4_match(&r->ent[ds][k], proto, port, dst)) {
				deny_r = r;
				deny_i = k;
			}
		for (k = 0; allow_r == NULL && k < r->nent[as]; k++)
			if (pol_entry_peer_match(s, &r->ent[as][k], peer, dlc) &&
			    pol_entry_l4_match(&r->ent[as][k], proto, port, dst)) {
				allow_r = r;
				allow_i = k;
			}
	}
	d->enforced = enforced;
	d->selected = selected;
	if (deny_r != NULL) {
		d->by_deny_rule = true;
		describe(s, deny_r, dir + 2, deny_i, d);
		return;
	}
	if (allow_r != NULL) {
		/* named even when the direction is open: it is what would allow */
		d->allowed = true;
		describe(s, allow_r, dir, allow_i, d);
		return;
	}
	d->allowed = !enforced;
}

int
mg_policy_trace(const struct mg_policy_set *s, const struct mg_identity_table *ids,
                const struct mg_policy_params *p, uint32_t src, uint32_t dst, uint8_t proto,
                uint16_t dport, struct mg_policy_trace *out)
{
	const struct mg_identity *si, *di;

	if (s == NULL || ids == NULL || p == NULL || out == NULL)
		return -EINVAL;
	si = mg_identity_table_get(ids, src);
	di = mg_identity_table_get(ids, dst);
	memset(out, 0, sizeof(*out));
	eval_dir(s, p, MG_DIR_EGRESS, si, di, proto, dport, &out->egress);
	eval_dir(s, p, MG_DIR_INGRESS, di, si, proto, dport, &out->ingress);
	if (!out->egress.allowed)
		out->verdict = MG_VERDICT_DENY_EGRESS;
	else if (!out->ingress.allowed)
		out->verdict = MG_VERDICT_DENY_INGRESS;
	else
		out->verdict = MG_VERDICT_ALLOW;
	return si != NULL && di != NULL ? 0 : -ENOENT;
}
