/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The replicator's relevant-only filter: decides, once per identity it
 * copies, whether the gateways need that identity at all. The policy part
 * loads the gateways' policy sources once and asks lib/policy's matcher
 * whether any selector can select the identity's labels; the namespace
 * part is a sorted-list lookup. Both are read-only after creation, so
 * decisions need no lock; only the counters are written (relaxed atomics).
 * The reasoning behind what is kept is in rep_filter.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mg_policy.h"
#include "rep_filter.h"

#define NS_KEY "io.kubernetes.pod.namespace"

struct mg_rep_filter {
	bool active;
	char **inc, **exc; /* sorted copies of the namespace lists */
	size_t n_inc, n_exc;
	struct mg_policy_set *set; /* NULL: no policy part */
	struct mg_policy_matcher *m;
	struct mg_rep_filter_info info;
	uint64_t kept, by_ns, by_policy; /* __atomic, relaxed */
};

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
copy_sorted(char *const *v, size_t n, char ***out)
{
	*out = calloc(n ? n : 1, sizeof(**out));
	if (*out == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		(*out)[i] = strdup(v[i]);
		if ((*out)[i] == NULL)
			return -ENOMEM;
	}
	qsort(*out, n, sizeof(**out), cmp_str);
	return 0;
}

static void
free_list(char **v, size_t n)
{
	for (size_t i = 0; v != NULL && i < n; i++)
		free(v[i]);
	free(v);
}

static int
load_policies(struct mg_rep_filter *f, const struct mg_rep_filter_config *c, struct mg_error *err)
{
	struct mg_policy_matcher_info mi;
	int rc;

	f->set = mg_policy_set_create();
	if (f->set == NULL)
		goto oom;
	for (size_t i = 0; i < c->n_sources; i++) {
		rc = mg_policy_set_load_path(f->set, c->sources[i].cluster, c->sources[i].path,
		                             err);
		if (rc < 0)
			return rc;
	}
	f->info.policies = mg_policy_set_count(f->set);
	f->info.rules = mg_policy_set_rules(f->set);
	if (f->info.policies == 0) {
		mg_error_set(err, NULL, 0, 0,
		             "filter.policy.sources: no policy in %s%s: the filter would drop "
		             "every identity",
		             c->sources[0].path,
		             c->n_sources > 1 ? " (nor in the other sources)" : "");
		return -ENOENT;
	}
	f->m = mg_policy_matcher_create(f->set, c->default_local_cluster);
	if (f->m == NULL)
		goto oom;
	mg_policy_matcher_info(f->m, &mi);
	f->info.selectors = mi.selectors;
	f->info.keeps_all = mi.all;
	f->info.world_peers = mi.world;
	f->info.named_any_peer = mi.named_any_peer;
	return 0;
oom:
	mg_error_set(err, NULL, 0, 0, "out of memory");
	return -ENOMEM;
}

struct mg_rep_filter *
mg_rep_filter_create(const struct mg_rep_filter_config *c, struct mg_error *err)
{
	struct mg_rep_filter *f = calloc(1, sizeof(*f));
	int rc = 0;

	if (f == NULL) {
		mg_error_set(err, NULL, 0, 0, "out of memory");
		return NULL;
	}
	if (c == NULL)
		return f;
	f->active = c->n_ns_include + c->n_ns_exclude + c->n_sources > 0;
	f->n_inc = c->n_ns_include;
	f->n_exc = c->n_ns_exclude;
	if (copy_sorted(c->ns_include, c->n_ns_include, &f->inc) ||
	    copy_sorted(c->ns_exclude, c->n_ns_exclude, &f->exc)) {
		mg_error_set(err, NULL, 0, 0, "out of memory");
		rc = -ENOMEM;
	}
	if (rc == 0 && c->n_sources > 0)
		rc = load_policies(f, c, err);
	if (rc) {
		mg_rep_filter_free(f);
		errno = -rc;
		return NULL;
	}
	return f;
}

void
mg_rep_filter_free(struct mg_rep_filter *f)
{
	if (f == NULL)
		return;
	free_list(f->inc, f->n_inc);
	free_list(f->exc, f->n_exc);
	mg_policy_matcher_free(f->m);
	mg_policy_set_free(f->set);
	free(f);
}

bool
mg_rep_filter_active(const struct mg_rep_filter *f)
{
	return f != NULL && f->active;
}

static bool
in_sorted(char *const *v, size_t n, const char *s)
{
	return n > 0 && bsearch(&s, v, n, sizeof(*v), cmp_str) != NULL;
}

/* Does the namespace part let labels @p ls through? */
static bool
ns_pass(const struct mg_rep_filter *f, const struct mg_labels *ls)
{
	const struct mg_label *l;

	if (f->n_inc + f->n_exc == 0)
		return true;
	l = mg_labels_find(ls, "k8s", NS_KEY);
	if (l == NULL)
		return true; /* not a pod identity: not this part's to drop */
	if (in_sorted(f->exc, f->n_exc, l->value))
		return false;
	return f->n_inc == 0 || in_sorted(f->inc, f->n_inc, l->value);
}

static bool
count(uint64_t *c, bool ret)
{
	__atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
	return ret;
}

bool
mg_rep_filter_identity(struct mg_rep_filter *f, uint32_t id, const struct mg_labels *ls)
{
	if (f == NULL || !f->active)
		return true;
	if (mg_rep_filter_id_exempt(id))
		return count(&f->kept, true);
	if (!ns_pass(f, ls))
		return count(&f->by_ns, false);
	if (f->m != NULL && !mg_policy_matcher_any(f->m, ls))
		return count(&f->by_policy, false);
	return count(&f->kept, true);
}

void
mg_rep_filter_info(const struct mg_rep_filter *f, struct mg_rep_filter_info *out)
{
	memset(out, 0, sizeof(*out));
	if (f != NULL)
		*out = f->info;
}

void
mg_rep_filter_stats(const struct mg_rep_filter *f, struct mg_rep_filter_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (f == NULL)
		return;
	out->identities_kept = __atomic_load_n(&f->kept, __ATOMIC_RELAXED);
	out->filtered_by_namespace = __atomic_load_n(&f->by_ns, __ATOMIC_RELAXED);
	out->filtered_by_policy = __atomic_load_n(&f->by_policy, __ATOMIC_RELAXED);
	out->identities_filtered = out->filtered_by_namespace + out->filtered_by_policy;
}
