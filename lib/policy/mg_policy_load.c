/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Policy loader, documents and files: CiliumNetworkPolicy /
 * CiliumClusterwideNetworkPolicy YAML (single documents, multi-document
 * streams, `kind: List`) into the rule AST of policy_priv.h. This file
 * reads paths and buffers, walks documents and List items, parses each
 * object's metadata and hands its rules to mg_policy_load_rule.c (entries),
 * which uses mg_policy_load_peer.c (selectors, entities, CIDRs: the L3
 * part) and mg_policy_load_port.c (toPorts, icmps: the L4 part). Every
 * error names the field and its file:line:column. The rule of the module
 * is never to widen access: an allow rule holding what a layer-4 gateway
 * cannot enforce (L7 rules, toFQDNs, ...) is kept but allows nothing, with
 * a warning; anything whose omission would allow more than Cilium does (a
 * deny rule's pol_unenforceable content, fromRequires, authentication) refuses
 * the policy. Keys Cilium does not know are "unknown key" errors (the one
 * key check of lib/common). A load is a transaction: on error the set is
 * truncated back to where it was. The check mode (mg_policy_set_check_path)
 * runs one transaction per document instead and reports every problem.
 */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mg_yaml.h"
#include "policy_priv.h"

static int parse_doc(struct loader *L, const struct mg_yaml_node *doc, bool in_list);
static int doc_tx(struct loader *L, const struct mg_yaml_node *doc, bool in_list);

/* ---- YAML helpers the loader's files share ---- */

/* Field paths for messages; truncating a very long one is harmless. */
void
pol_pathf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

/* The key node of @p key in mapping @p map (for positions), or @p map itself. */
const struct mg_yaml_node *
pol_key_node(const struct mg_yaml_node *map, const char *key)
{
	size_t i;

	if (map != NULL && map->type == MG_YAML_MAP)
		for (i = 0; i < map->n; i++)
			if (map->pairs[i].key->type == MG_YAML_SCALAR &&
			    streq(map->pairs[i].key->str, key))
				return map->pairs[i].key;
	return map;
}

/* A sequence, or absent / null (then *n == 0). */
int
pol_get_seq(const struct mg_yaml_node *n, const char *what, size_t max, size_t *count,
            struct mg_error *err)
{
	int rc = mg_yaml_seq(n, what, true, err);

	if (rc)
		return rc;
	*count = (n != NULL && n->type == MG_YAML_SEQ) ? n->n : 0;
	if (*count > max)
		return mg_yaml_error(err, n, "%s: more than %zu items", what, max);
	return 0;
}

/* Is @p n present with content (not null, not an empty sequence or mapping)? */
bool
pol_has_content(const struct mg_yaml_node *n)
{
	if (n == NULL || mg_yaml_is_null(n))
		return false;
	if (n->type == MG_YAML_SEQ || n->type == MG_YAML_MAP)
		return n->n > 0;
	return true;
}

/* ---- documents ---- */

static void
policy_clear(struct policy_obj *p)
{
	free(p->name);
	free(p->ns);
	free(p->cluster);
	free(p->file);
	memset(p, 0, sizeof(*p));
}

static int
parse_metadata(const struct mg_yaml_node *md, const char **name, const char **ns,
               struct mg_error *err)
{
	static const char *const ok[] = {"name",
	                                 "namespace",
	                                 "labels",
	                                 "annotations",
	                                 "uid",
	                                 "resourceVersion",
	                                 "creationTimestamp",
	                                 "deletionTimestamp",
	                                 "deletionGracePeriodSeconds",
	                                 "generation",
	                                 "generateName",
	                                 "managedFields",
	                                 "finalizers",
	                                 "ownerReferences",
	                                 "selfLink",
	                                 NULL};
	const struct mg_yaml_node *n;
	int rc;

	rc = mg_yaml_check_map(md, "metadata", ok, err);
	if (rc)
		return rc;
	n = mg_yaml_get(md, "name");
	if (n == NULL)
		return mg_yaml_error(err, md, "metadata.name is required");
	rc = mg_yaml_str(n, "metadata.name", name, err);
	if (rc)
		return rc;
	if ((*name)[0] == '\0' || strlen(*name) >= sizeof(((struct mg_policy_decision *)0)->name))
		return mg_yaml_error(err, n, "metadata.name: must have 1 to 127 characters");
	n = mg_yaml_get(md, "namespace");
	*ns = NULL;
	if (!mg_yaml_is_null(n)) {
		rc = mg_yaml_str(n, "metadata.namespace", ns, err);
		if (rc)
			return rc;
		if ((*ns)[0] == '\0' || strlen(*ns) >= sizeof(((struct mg_policy_decision *)0)->ns))
			return mg_yaml_error(err, n,
			                     "metadata.namespace: must have 1 to 63 characters");
	}
	return 0;
}

static int
parse_policy(struct loader *L, const struct mg_yaml_node *doc, bool ccnp)
{
	static const char *const ok[] = {"apiVersion", "kind",   "metadata", "spec",
	                                 "specs",      "status", NULL};
	struct mg_policy_set *s = L->s;
	const struct mg_yaml_node *av, *md, *spec, *specs;
	const char *str, *name, *ns;
	struct policy_obj *p;
	char w[32];
	size_t i, nspecs;
	unsigned index = 0;
	uint32_t pidx;
	int rc;

	rc = mg_yaml_check_map(doc, ccnp ? "CiliumClusterwideNetworkPolicy" : "CiliumNetworkPolicy",
	                       ok, L->err);
	if (rc)
		return rc;
	av = mg_yaml_get(doc, "apiVersion");
	if (av == NULL)
		return mg_yaml_error(L->err, doc, "apiVersion is required");
	rc = mg_yaml_str(av, "apiVersion", &str, L->err);
	if (rc)
		return rc;
	if (!streq(str, "cilium.io/v2"))
		return mg_yaml_error(L->err, av, "apiVersion: expected cilium.io/v2, got '%s'",
		                     str);
	md = mg_yaml_get(doc, "metadata");
	if (md == NULL)
		return mg_yaml_error(L->err, doc, "metadata is required");
	rc = parse_metadata(md, &name, &ns, L->err);
	if (rc)
		return rc;
	spec = mg_yaml_get(doc, "spec");
	specs = mg_yaml_get(doc, "specs");
	rc = pol_get_seq(specs, "specs", POL_MAX_RULES, &nspecs, L->err);
	if (rc)
		return rc;
	if (mg_yaml_is_null(spec) && nspecs == 0)
		return mg_yaml_error(L->err, doc, "policy '%s' has neither spec nor specs", name);
	if (s->npol >= POL_MAX_POLICIES)
		return mg_yaml_error(L->err, doc, "too many policies (limit %u)", POL_MAX_POLICIES);
	if (mg_grow(&s->pol, &s->cappol, s->npol, sizeof(*s->pol), 16))
		goto oom;
	pidx = (uint32_t)s->npol;
	p = &s->pol[s->npol++];
	memset(p, 0, sizeof(*p));
	p->ccnp = ccnp;
	p->line = doc->line;
	if ((p->name = strdup(name)) == NULL || (p->cluster = strdup(L->cluster)) == NULL ||
	    (p->file = strdup(doc->file ? doc->file : "")) == NULL)
		goto oom;
	/* a CCNP has no namespace; a namespace written on one is ignored */
	if (!ccnp && (p->ns = strdup(ns ? ns : "default")) == NULL)
		goto oom;
	if (!mg_yaml_is_null(spec)) {
		rc = pol_parse_rule(L, pidx, index++, spec, "spec");
		if (rc)
			return rc;
	}
	for (i = 0; i < nspecs; i++) {
		pol_pathf(w, sizeof(w), "specs[%zu]", i);
		rc = pol_parse_rule(L, pidx, index++, specs->items[i], w);
		if (rc)
			return rc;
	}
	L->loaded++;
	return 0;
oom:
	mg_error_set(L->err, NULL, 0, 0, "out of memory");
	return -ENOMEM;
}

static int
parse_doc(struct loader *L, const struct mg_yaml_node *doc, bool in_list)
{
	static const char *const list_ok[] = {"apiVersion", "kind", "items", "metadata", NULL};
	const struct mg_yaml_node *k, *items;
	const char *kind;
	size_t i, n;
	int rc;

	if (mg_yaml_is_null(doc))
		return 0; /* an empty document (a stray "---") */
	rc = mg_yaml_map(doc, in_list ? "items[]" : "document", L->err);
	if (rc)
		return rc;
	k = mg_yaml_get(doc, "kind");
	if (k == NULL)
		return mg_yaml_error(L->err, doc, "kind is required");
	rc = mg_yaml_str(k, "kind", &kind, L->err);
	if (rc)
		return rc;
	if (streq(kind, "CiliumNetworkPolicy"))
		return parse_policy(L, doc, false);
	if (streq(kind, "CiliumClusterwideNetworkPolicy"))
		return parse_policy(L, doc, true);
	if (!streq(kind, "List"))
		return mg_yaml_error(L->err, k,
		                     "kind: '%s' is not a policy (expected CiliumNetworkPolicy, "
		                     "CiliumClusterwideNetworkPolicy or List)",
		                     kind);
	if (in_list)
		return mg_yaml_error(L->err, k, "kind: a List inside a List");
	rc = mg_yaml_check_map(doc, "List", list_ok, L->err);
	if (rc)
		return rc;
	items = mg_yaml_get(doc, "items");
	rc = pol_get_seq(items, "items", POL_MAX_POLICIES, &n, L->err);
	if (rc)
		return rc;
	for (i = 0; i < n; i++) {
		rc = L->report ? doc_tx(L, items->items[i], true)
		               : parse_doc(L, items->items[i], true);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- the set ---- */

struct mg_policy_set *
mg_policy_set_create(void)
{
	struct mg_policy_set *s = calloc(1, sizeof(*s));

	if (s == NULL)
		errno = ENOMEM;
	return s;
}

/* Lengths of the set's arrays: a load rolls back to them. */
struct mark {
	size_t npol, nrules, nsel, nwarn;
};

static struct mark
set_mark(const struct mg_policy_set *s)
{
	struct mark m = {s->npol, s->nrules, s->nsel, s->nwarn};

	return m;
}

/* Free everything past the given lengths (rollback of a failed load, or free). */
static void
truncate_set(struct mg_policy_set *s, struct mark m)
{
	while (s->nrules > m.nrules)
		pol_rule_clear(&s->rules[--s->nrules]);
	while (s->npol > m.npol)
		policy_clear(&s->pol[--s->npol]);
	while (s->nsel > m.nsel)
		pol_sel_free(s->sel[--s->nsel]);
	while (s->nwarn > m.nwarn) {
		s->nwarn--;
		free(s->warn[s->nwarn].file);
		free(s->warn[s->nwarn].msg);
	}
}

void
mg_policy_set_free(struct mg_policy_set *s)
{
	struct mark zero = {0, 0, 0, 0};

	if (s == NULL)
		return;
	truncate_set(s, zero);
	free(s->rules);
	free(s->pol);
	free(s->sel);
	free(s->warn);
	free(s);
}

size_t
mg_policy_set_count(const struct mg_policy_set *s)
{
	return s ? s->npol : 0;
}

size_t
mg_policy_set_rules(const struct mg_policy_set *s)
{
	return s ? s->nrules : 0;
}

/*
 * Split "file:line:col: message" (what mg_yaml_error and friends write)
 * into a problem; a message without a position keeps @p file, and loses
 * its own "file: " prefix (what an I/O or size error of the file starts
 * with), so that the file is named once.
 */
static void
report_error(struct loader *L, const char *file, const char *text)
{
	struct mg_policy_problem pr = {.warning = false, .file = file, .msg = text};
	size_t flen = strlen(file);
	char *copy = strdup(text);
	size_t i;

	if (flen > 0 && strncmp(text, file, flen) == 0 && strncmp(text + flen, ": ", 2) == 0)
		pr.msg = text + flen + 2;
	if (copy != NULL) {
		for (i = 0; copy[i] != '\0'; i++) {
			unsigned line, col;
			int used = 0;

			if (copy[i] != ':' ||
			    sscanf(copy + i, ":%u:%u: %n", &line, &col, &used) != 2 || used == 0)
				continue;
			copy[i] = '\0';
			pr.file = copy;
			pr.line = line;
			pr.col = col;
			pr.msg = copy + i + used;
			break;
		}
	}
	L->errors++;
	L->report(&pr, L->arg);
	free(copy);
}

/* Check mode: one document (or List item) as its own transaction. */
static int
doc_tx(struct loader *L, const struct mg_yaml_node *doc, bool in_list)
{
	struct mark m = set_mark(L->s);
	int loaded = L->loaded;
	int rc = parse_doc(L, doc, in_list);

	if (rc == 0)
		return 0;
	truncate_set(L->s, m);
	L->loaded = loaded;
	if (rc == -ENOMEM)
		return rc; /* out of memory ends the check */
	report_error(L, doc && doc->file ? doc->file : "", L->err->msg);
	return 0;
}

static int
load_yaml(struct loader *L, struct mg_yaml_file *f)
{
	size_t i;
	int rc;

	for (i = 0; i < f->ndocs; i++) {
		rc = L->report ? doc_tx(L, f->docs[i], false) : parse_doc(L, f->docs[i], false);
		if (rc)
			return rc;
	}
	return 0;
}

static int
check_args(struct mg_policy_set *s, const char *cluster, struct mg_error *err)
{
	if (s == NULL || cluster == NULL || cluster[0] == '\0' || strlen(cluster) >= 64) {
		mg_error_set(err, NULL, 0, 0,
		             "policy: a set and a cluster name (1-63 bytes) are "
		             "required");
		return mg_errno_set(EINVAL);
	}
	return 0;
}

static int
finish(struct loader *L, struct mark m, int rc)
{
	if (rc) {
		truncate_set(L->s, m);
		return mg_errno_set(-rc);
	}
	if (L->loaded > 0 || L->s->nsel != m.nsel)
		L->s->gen++;
	return L->loaded;
}

int
mg_policy_set_load_buf(struct mg_policy_set *s, const char *cluster, const char *name,
                       const void *buf, size_t len, struct mg_error *err)
{
	struct loader L = {.s = s, .cluster = cluster, .err = err};
	struct mg_yaml_file *f;
	struct mark m;
	int rc;

	rc = check_args(s, cluster, err);
	if (rc)
		return rc;
	m = set_mark(s);
	f = mg_yaml_load_buf(name ? name : "<buffer>", buf, len, err);
	if (f == NULL)
		return mg_errno_set(errno ? errno : EINVAL);
	rc = load_yaml(&L, f);
	mg_yaml_free(f);
	return finish(&L, m, rc);
}

static bool
wanted_name(const char *n)
{
	static const char *const ext[] = {".yaml", ".yml", ".json"};
	size_t len = strlen(n), i;

	if (n[0] == '.')
		return false;
	for (i = 0; i < MG_ARRAY_SIZE(ext); i++) {
		size_t el = strlen(ext[i]);

		if (len > el && strcmp(n + len - el, ext[i]) == 0)
			return true;
	}
	return false;
}

static int
load_one_file(struct loader *L, const char *path)
{
	struct mg_yaml_file *f = mg_yaml_load_file(path, L->err);
	int rc;

	if (f == NULL) {
		rc = -(errno ? errno : EINVAL);
		if (L->report == NULL || rc == -ENOMEM)
			return rc;
		/* check mode: a file that does not parse is one problem; go on */
		report_error(L, path, L->err->msg);
		return 0;
	}
	rc = load_yaml(L, f);
	mg_yaml_free(f);
	return rc;
}

/* Load @p path (a file, or a directory's policy files in name order). */
static int
load_path(struct loader *L, const char *path)
{
	struct mg_error *err = L->err;
	struct dirent **names = NULL;
	struct stat st;
	int rc, n = 0, i;

	if (path == NULL || stat(path, &st) != 0) {
		rc = errno ? errno : EINVAL;
		mg_error_set(err, NULL, 0, 0, "%s: %s", path ? path : "(null)", strerror(rc));
		return -rc;
	}
	if (!S_ISDIR(st.st_mode))
		return load_one_file(L, path);
	n = scandir(path, &names, NULL, alphasort);
	if (n < 0) {
		rc = errno;
		mg_error_set(err, NULL, 0, 0, "%s: %s", path, strerror(rc));
		return -rc;
	}
	rc = 0;
	for (i = 0; i < n; i++) {
		char *full = NULL;

		if (rc == 0 && wanted_name(names[i]->d_name)) {
			size_t plen = strlen(path);
			/* "policies/" + "a.yaml", not "policies//a.yaml", in messages */
			const char *sep = plen > 0 && path[plen - 1] == '/' ? "" : "/";

			if (asprintf(&full, "%s%s%s", path, sep, names[i]->d_name) < 0) {
				mg_error_set(err, NULL, 0, 0, "out of memory");
				rc = -ENOMEM;
			} else if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
				rc = load_one_file(L, full);
			}
			free(full);
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int
mg_policy_set_load_path(struct mg_policy_set *s, const char *cluster, const char *path,
                        struct mg_error *err)
{
	struct loader L = {.s = s, .cluster = cluster, .err = err};
	struct mark m;
	int rc;

	rc = check_args(s, cluster, err);
	if (rc)
		return rc;
	m = set_mark(s);
	rc = load_path(&L, path);
	return finish(&L, m, rc);
}

static void
warning_problem(const struct pol_warning *w, struct mg_policy_problem *pr)
{
	pr->warning = true;
	pr->file = w->file;
	pr->line = w->line;
	pr->col = w->col;
	pr->msg = w->msg;
}

int
mg_policy_set_check_path(struct mg_policy_set *s, const char *cluster, const char *path,
                         void (*report)(const struct mg_policy_problem *, void *), void *arg)
{
	struct mg_error err = {{0}};
	struct loader L = {.cluster = cluster, .err = &err, .report = report, .arg = arg};
	struct mg_policy_set *scratch = NULL;
	struct mark m;
	size_t i;
	int rc;

	if (report == NULL)
		return mg_errno_set(EINVAL);
	if (s == NULL) {
		scratch = s = mg_policy_set_create();
		if (s == NULL)
			return -ENOMEM;
	}
	L.s = s;
	rc = check_args(s, cluster, &err);
	if (rc == 0) {
		m = set_mark(s);
		rc = load_path(&L, path);
		if (rc == 0) {
			if (L.loaded > 0 || s->nsel != m.nsel)
				s->gen++;
			for (i = m.nwarn; i < s->nwarn; i++) {
				struct mg_policy_problem pr;

				warning_problem(&s->warn[i], &pr);
				report(&pr, arg);
			}
			rc = L.errors;
		} else {
			/* the path cannot be read at all (or memory ran out) */
			truncate_set(s, m);
			report_error(&L, path ? path : "", err.msg);
		}
	} else {
		report_error(&L, path ? path : "", err.msg);
	}
	mg_policy_set_free(scratch);
	return rc;
}

size_t
mg_policy_set_warnings(const struct mg_policy_set *s,
                       void (*fn)(const struct mg_policy_problem *, void *), void *arg)
{
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; fn != NULL && i < s->nwarn; i++) {
		struct mg_policy_problem pr;

		warning_problem(&s->warn[i], &pr);
		fn(&pr, arg);
	}
	return s->nwarn;
}
