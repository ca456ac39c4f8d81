/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Loaders of the static inputs a config may name: CiliumIdentity and
 * CiliumEndpoint manifests, exactly as `kubectl get -o yaml` prints them
 * (one object, a multi-document stream, or a `kind: List`). Using Cilium's
 * own object format means an operator can seed a gateway from a live
 * cluster with kubectl and nothing else.
 *
 * The strictness differs from the config's on purpose: the fields meshgate
 * reads are checked hard (type, range, an address that does not parse is
 * an error with its position), while the bookkeeping Kubernetes and Cilium
 * add (metadata.labels, uid, resourceVersion, status.state, ...) is
 * ignored, so that real objects load unedited. An endpoint that has no
 * identity or no address yet is normal in a live cluster (a pod still
 * starting) and is skipped with a warning rather than failing the load.
 *
 * Each loader validates the whole file before it changes the table or the
 * ipcache, so a file with an error adds nothing (short of running out of
 * memory half-way through applying it).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mg_config.h"
#include "mg_yaml.h"

/* The ipcache's family numbers are Linux's AF_ values (mg_pkt.h: 2 and 10). */
_Static_assert(AF_INET == 2 && AF_INET6 == 10, "family numbers");

#define CILIUM_API "cilium.io/v2"

typedef int (*object_fn)(const struct mg_yaml_node *obj, void *arg, struct mg_error *err);

static int
check_string(const struct mg_yaml_node *map, const char *key, const char *want, const char *what,
             struct mg_error *err)
{
	const struct mg_yaml_node *n = mg_yaml_get(map, key);
	const char *s;
	int rc;

	if (n == NULL)
		return mg_yaml_error(err, map, "%s: missing required key '%s'", what, key);
	rc = mg_yaml_str(n, key, &s, err);
	if (rc)
		return rc;
	if (strcmp(s, want) != 0)
		return mg_yaml_error(err, n, "%s: expected '%s', got '%s'", key, want, s);
	return 0;
}

/* One object of kind @p kind: check its apiVersion and kind, then hand it to @p fn. */
static int
handle_object(const struct mg_yaml_node *obj, const char *kind, object_fn fn, void *arg,
              struct mg_error *err)
{
	const struct mg_yaml_node *k;
	const char *s;
	int rc;

	rc = mg_yaml_map(obj, kind, err);
	if (rc)
		return rc;
	k = mg_yaml_get(obj, "kind");
	if (k == NULL)
		return mg_yaml_error(err, obj, "%s: missing required key 'kind'", kind);
	rc = mg_yaml_str(k, "kind", &s, err);
	if (rc)
		return rc;
	if (strcmp(s, kind) != 0)
		return mg_yaml_error(err, k, "kind: unexpected kind '%s' (this file must hold %s)",
		                     s, kind);
	rc = check_string(obj, "apiVersion", CILIUM_API, kind, err);
	if (rc)
		return rc;
	return fn(obj, arg, err);
}

/* Every object of @p f: plain documents, or the items of `kind: List` documents. */
static int
walk_objects(const struct mg_yaml_file *f, const char *kind, object_fn fn, void *arg,
             struct mg_error *err)
{
	static const char *const list_keys[] = {"apiVersion", "kind", "metadata", "items", NULL};
	size_t d, i;
	int rc;

	for (d = 0; d < f->ndocs; d++) {
		const struct mg_yaml_node *doc = f->docs[d], *k, *items;

		if (mg_yaml_is_null(doc))
			continue;
		rc = mg_yaml_map(doc, "document", err);
		if (rc)
			return rc;
		k = mg_yaml_get(doc, "kind");
		if (k == NULL || k->type != MG_YAML_SCALAR || strcmp(k->str, "List") != 0) {
			rc = handle_object(doc, kind, fn, arg, err);
			if (rc)
				return rc;
			continue;
		}
		rc = mg_yaml_check_map(doc, "List", list_keys, err);
		if (rc == 0)
			rc = check_string(doc, "apiVersion", "v1", "List", err);
		if (rc)
			return rc;
		items = mg_yaml_get(doc, "items");
		rc = mg_yaml_seq(items, "items", true, err);
		if (rc)
			return rc;
		for (i = 0; items != NULL && items->type == MG_YAML_SEQ && i < items->n; i++) {
			rc = handle_object(items->items[i], kind, fn, arg, err);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* metadata: a mapping; its name a string. Every other metadata key is ignored. */
static int
get_metadata(const struct mg_yaml_node *obj, const char *kind, const char **name, const char **ns,
             const struct mg_yaml_node **name_node, struct mg_error *err)
{
	const struct mg_yaml_node *md = mg_yaml_get(obj, "metadata"), *n;
	int rc;

	if (md == NULL)
		return mg_yaml_error(err, obj, "%s: missing required key 'metadata'", kind);
	rc = mg_yaml_map(md, "metadata", err);
	if (rc)
		return rc;
	n = mg_yaml_get(md, "name");
	if (n == NULL)
		return mg_yaml_error(err, md, "metadata: missing required key 'name'");
	rc = mg_yaml_str(n, "metadata.name", name, err);
	if (rc)
		return rc;
	*name_node = n;
	if (ns != NULL) {
		*ns = "";
		n = mg_yaml_get(md, "namespace");
		if (n != NULL && !mg_yaml_is_null(n)) {
			rc = mg_yaml_str(n, "metadata.namespace", ns, err);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* ---- CiliumIdentity ---- */

struct pending_identity {
	uint32_t id;
	unsigned line, col;
	struct mg_labels labels;
};

struct identity_batch {
	size_t n, cap;
	struct pending_identity *v;
};

static void
identity_batch_free(struct identity_batch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		mg_labels_clear(&b->v[i].labels);
	free(b->v);
}

/* A decimal identity number without sign, spaces or leading zeros. */
static bool
parse_decimal_id(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0'))
		return false;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

static int
identity_object(const struct mg_yaml_node *obj, void *arg, struct mg_error *err)
{
	static const char *const keys[] = {"apiVersion", "kind", "metadata", "security-labels",
	                                   NULL};
	struct identity_batch *b = arg;
	struct pending_identity *p;
	const struct mg_yaml_node *name_node, *sl;
	const char *name;
	uint64_t id;
	size_t i;
	int rc;

	rc = mg_yaml_check_map(obj, "CiliumIdentity", keys, err);
	if (rc == 0)
		rc = get_metadata(obj, "CiliumIdentity", &name, NULL, &name_node, err);
	if (rc)
		return rc;
	if (!parse_decimal_id(name, &id))
		return mg_yaml_error(err, name_node,
		                     "metadata.name: '%s' is not an identity number", name);
	if (id < MG_ID_MIN_CLUSTER_LOCAL || id > MG_ID_MAX)
		return mg_yaml_error(err, name_node,
		                     "metadata.name: identity %llu is out of range [%u, %u] "
		                     "(reserved identities cannot be defined)",
		                     (unsigned long long)id, MG_ID_MIN_CLUSTER_LOCAL, MG_ID_MAX);
	for (i = 0; i < b->n; i++)
		if (b->v[i].id == id)
			return mg_yaml_error(err, name_node,
			                     "metadata.name: identity %llu is defined twice (first "
			                     "at line %u)",
			                     (unsigned long long)id, b->v[i].line);

	sl = mg_yaml_get(obj, "security-labels");
	if (sl != NULL && !mg_yaml_is_null(sl)) {
		rc = mg_yaml_map(sl, "security-labels", err);
		if (rc)
			return rc;
	}
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		void *v = realloc(b->v, cap * sizeof(*b->v));

		if (v == NULL)
			goto nomem;
		b->v = v;
		b->cap = cap;
	}
	p = &b->v[b->n++];
	p->id = (uint32_t)id;
	p->line = name_node->line;
	p->col = name_node->col;
	p->labels = (struct mg_labels)MG_LABELS_INIT;

	for (i = 0; sl != NULL && sl->type == MG_YAML_MAP && i < sl->n; i++) {
		const struct mg_yaml_node *k = sl->pairs[i].key, *v = sl->pairs[i].value;
		const char *ks, *vs = "", *colon;
		char *source;

		/* two equal labels never get here: the YAML tree builder refuses them */
		rc = mg_yaml_str(k, "security-labels", &ks, err);
		if (rc)
			return rc;
		if (!mg_yaml_is_null(v)) {
			rc = mg_yaml_str(v, "security-labels value", &vs, err);
			if (rc)
				return rc;
		}
		/* "k8s:io.kubernetes.pod.namespace": only the first ':' splits */
		colon = strchr(ks, ':');
		source = colon != NULL ? strndup(ks, (size_t)(colon - ks)) : NULL;
		if (colon != NULL && source == NULL)
			goto nomem;
		rc = mg_labels_add(&p->labels, source, colon != NULL ? colon + 1 : ks, vs);
		free(source);
		if (rc == -ENOMEM)
			goto nomem;
		if (rc)
			return mg_yaml_error(err, k, "security-labels: '%s' is not a valid label",
			                     ks);
	}
	return 0;
nomem:
	mg_error_set(err, obj->file, obj->line, obj->col, "out of memory");
	return -ENOMEM;
}

static int
load_identities(struct mg_yaml_file *f, struct mg_identity_table *t, struct mg_error *err)
{
	struct identity_batch b = {0};
	enum mg_cluster_mode mode = mg_identity_table_mode(t);
	size_t i;
	int rc;

	if (f == NULL)
		return -errno;
	rc = walk_objects(f, "CiliumIdentity", identity_object, &b, err);
	if (rc)
		goto out;
	for (i = 0; i < b.n; i++) {
		const struct pending_identity *p = &b.v[i];

		rc = mg_identity_table_put(t, p->id, &p->labels, mg_identity_cluster(p->id, mode));
		if (rc < 0) {
			mg_error_set(err, f->name, p->line, p->col, "cannot add identity %u: %s",
			             p->id, strerror(-rc));
			goto out;
		}
		if (rc == 1)
			MG_WARN("%s:%u:%u: identity %u replaces an identity with other labels",
			        f->name, p->line, p->col, p->id);
	}
	rc = (int)b.n;
out:
	identity_batch_free(&b);
	mg_yaml_free(f);
	return rc < 0 ? mg_errno_set(-rc) : rc;
}

int
mg_config_load_identities(const char *path, struct mg_identity_table *t, struct mg_error *err)
{
	return load_identities(mg_yaml_load_file(path, err), t, err);
}

int
mg_config_load_identities_buf(const char *name, const void *buf, size_t len,
                              struct mg_identity_table *t, struct mg_error *err)
{
	return load_identities(mg_yaml_load_buf(name, buf, len, err), t, err);
}

/* ---- CiliumEndpoint ---- */

/* A named port of an endpoint, for its identity (status.named-ports). */
struct endpoint_port {
	uint32_t id;
	struct mg_named_port np;
	const struct mg_yaml_node *at;
};

struct endpoint_batch {
	size_t n, cap;
	struct mg_ipcache_entry *v;
	unsigned cluster_id;
	bool want_ports; /* an identity table was given */
	size_t nports, capports;
	struct endpoint_port *ports;
};

static int
batch_add_port(struct endpoint_batch *b, const struct endpoint_port *p)
{
	if (b->nports == b->capports) {
		size_t cap = b->capports ? b->capports * 2 : 16;
		void *v = realloc(b->ports, cap * sizeof(*b->ports));

		if (v == NULL)
			return -ENOMEM;
		b->ports = v;
		b->capports = cap;
	}
	b->ports[b->nports++] = *p;
	return 0;
}

/*
 * status.named-ports: [{name, port, protocol}] (Cilium's NamedPorts, the
 * container ports that have a name). Protocol TCP (default), UDP or SCTP.
 */
static int
endpoint_named_ports(struct endpoint_batch *b, const struct mg_yaml_node *st, uint32_t id,
                     struct mg_error *err)
{
	static const char *const keys[] = {"name", "port", "protocol", NULL};
	const struct mg_yaml_node *list = mg_yaml_get(st, "named-ports");
	char what[64];
	size_t i;
	int rc;

	rc = mg_yaml_seq(list, "status.named-ports", true, err);
	if (rc || list == NULL || list->type != MG_YAML_SEQ)
		return rc;
	for (i = 0; i < list->n; i++) {
		const struct mg_yaml_node *it = list->items[i], *n;
		struct endpoint_port p = {.id = id, .at = it};
		const char *str;
		uint64_t port;

		snprintf(what, sizeof(what), "status.named-ports[%zu]", i);
		rc = mg_yaml_check_map(it, what, keys, err);
		if (rc)
			return rc;
		n = mg_yaml_get(it, "name");
		snprintf(what, sizeof(what), "status.named-ports[%zu].name", i);
		if (n == NULL)
			return mg_yaml_error(err, it, "%s is required", what);
		rc = mg_yaml_str(n, what, &str, err);
		if (rc)
			return rc;
		if (str[0] == '\0' || strlen(str) > 15)
			return mg_yaml_error(
			        err, n, "%s: '%s' is not a port name (1-15 characters)", what, str);
		snprintf(p.np.name, sizeof(p.np.name), "%s", str);
		n = mg_yaml_get(it, "port");
		snprintf(what, sizeof(what), "status.named-ports[%zu].port", i);
		if (n == NULL)
			return mg_yaml_error(err, it, "%s is required", what);
		rc = mg_yaml_u64(n, what, 1, 65535, &port, err);
		if (rc)
			return rc;
		p.np.port = (uint16_t)port;
		p.np.proto = 6;
		n = mg_yaml_get(it, "protocol");
		snprintf(what, sizeof(what), "status.named-ports[%zu].protocol", i);
		if (n != NULL && !mg_yaml_is_null(n)) {
			rc = mg_yaml_str(n, what, &str, err);
			if (rc)
				return rc;
			if (strcmp(str, "UDP") == 0)
				p.np.proto = 17;
			else if (strcmp(str, "SCTP") == 0)
				p.np.proto = 132;
			else if (strcmp(str, "TCP") != 0 && str[0] != '\0')
				return mg_yaml_error(
				        err, n,
				        "%s: unknown protocol '%s' (expected TCP, UDP or "
				        "SCTP)",
				        what, str);
		}
		if (b->want_ports && batch_add_port(b, &p) != 0) {
			mg_error_set(err, it->file, it->line, it->col, "out of memory");
			return -ENOMEM;
		}
	}
	return 0;
}

static int
batch_add(struct endpoint_batch *b, const struct mg_ipcache_entry *e)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		void *v = realloc(b->v, cap * sizeof(*b->v));

		if (v == NULL)
			return -ENOMEM;
		b->v = v;
		b->cap = cap;
	}
	b->v[b->n++] = *e;
	return 0;
}

/* One address of an addressing entry: absent and null are fine, garbage is not. */
static int
endpoint_address(struct endpoint_batch *b, const struct mg_yaml_node *a, const char *key,
                 int family, uint32_t id, unsigned *added, struct mg_error *err)
{
	const struct mg_yaml_node *n = mg_yaml_get(a, key);
	struct mg_ipcache_entry e = {0};
	char what[40];
	const char *s;
	int rc;

	if (n == NULL || mg_yaml_is_null(n))
		return 0;
	snprintf(what, sizeof(what), "addressing.%s", key);
	rc = mg_yaml_str(n, what, &s, err);
	if (rc)
		return rc;
	if (inet_pton(family, s, e.addr) != 1)
		return mg_yaml_error(err, n, "%s: '%s' is not an %s address", what, s,
		                     family == AF_INET ? "IPv4" : "IPv6");
	e.family = (uint8_t)family;
	e.plen = family == AF_INET ? 32 : 128;
	e.identity = id;
	e.cluster_id = b->cluster_id;
	if (batch_add(b, &e) != 0) {
		mg_error_set(err, n->file, n->line, n->col, "out of memory");
		return -ENOMEM;
	}
	(*added)++;
	return 0;
}

static int
endpoint_object(const struct mg_yaml_node *obj, void *arg, struct mg_error *err)
{
	static const char *const keys[] = {"apiVersion", "kind", "metadata", "status", NULL};
	struct endpoint_batch *b = arg;
	const struct mg_yaml_node *name_node, *st, *ident, *idn, *net, *addr;
	const char *name, *ns;
	unsigned added = 0;
	uint64_t id = 0;
	size_t i;
	int rc;

	rc = mg_yaml_check_map(obj, "CiliumEndpoint", keys, err);
	if (rc == 0)
		rc = get_metadata(obj, "CiliumEndpoint", &name, &ns, &name_node, err);
	if (rc)
		return rc;

	st = mg_yaml_get(obj, "status");
	if (st != NULL && !mg_yaml_is_null(st)) {
		rc = mg_yaml_map(st, "status", err);
		if (rc)
			return rc;
	}
	ident = mg_yaml_get(st, "identity");
	if (ident != NULL && !mg_yaml_is_null(ident)) {
		rc = mg_yaml_map(ident, "status.identity", err);
		if (rc)
			return rc;
	}
	idn = mg_yaml_get(ident, "id");
	if (idn != NULL && !mg_yaml_is_null(idn)) {
		rc = mg_yaml_u64(idn, "status.identity.id", 0, MG_ID_MAX, &id, err);
		if (rc)
			return rc;
	}
	net = mg_yaml_get(st, "networking");
	if (net != NULL && !mg_yaml_is_null(net)) {
		rc = mg_yaml_map(net, "status.networking", err);
		if (rc)
			return rc;
	}
	addr = mg_yaml_get(net, "addressing");
	rc = mg_yaml_seq(addr, "status.networking.addressing", true, err);
	if (rc)
		return rc;

	/* A pod still starting has no identity yet: skip it, say so. */
	if (id != 0) {
		rc = endpoint_named_ports(b, st, (uint32_t)id, err);
		if (rc)
			return rc;
	}
	if (id == 0) {
		MG_WARN("%s:%u:%u: CiliumEndpoint %s%s%s has no identity yet; skipped",
		        name_node->file, name_node->line, name_node->col, ns, ns[0] ? "/" : "",
		        name);
		return 0;
	}
	for (i = 0; addr != NULL && addr->type == MG_YAML_SEQ && i < addr->n; i++) {
		const struct mg_yaml_node *a = addr->items[i];

		rc = mg_yaml_map(a, "status.networking.addressing[]", err);
		if (rc == 0)
			rc = endpoint_address(b, a, "ipv4", AF_INET, (uint32_t)id, &added, err);
		if (rc == 0)
			rc = endpoint_address(b, a, "ipv6", AF_INET6, (uint32_t)id, &added, err);
		if (rc)
			return rc;
	}
	if (added == 0)
		MG_WARN("%s:%u:%u: CiliumEndpoint %s%s%s has no address yet; skipped",
		        name_node->file, name_node->line, name_node->col, ns, ns[0] ? "/" : "",
		        name);
	return 0;
}

static int
load_endpoints(struct mg_yaml_file *f, struct mg_ipcache *ipc, struct mg_identity_table *t,
               unsigned cluster_id, struct mg_error *err)
{
	struct endpoint_batch b = {.cluster_id = cluster_id, .want_ports = t != NULL};
	char buf[64];
	size_t i;
	int rc;

	if (f == NULL)
		return -errno;
	rc = walk_objects(f, "CiliumEndpoint", endpoint_object, &b, err);
	if (rc)
		goto out;
	for (i = 0; i < b.n; i++) {
		rc = mg_ipcache_put(ipc, &b.v[i]);
		if (rc < 0) {
			mg_error_set(err, NULL, 0, 0, "%s: cannot stage %s: %s", f->name,
			             mg_ipcache_prefix_str(&b.v[i], buf, sizeof(buf)),
			             strerror(-rc));
			goto out;
		}
	}
	/* named ports belong to the identity (their union over its endpoints) */
	for (i = 0; i < b.nports; i++) {
		const struct endpoint_port *p = &b.ports[i];

		rc = mg_identity_table_add_named_port(t, p->id, p->np.name, p->np.proto,
		                                      p->np.port);
		if (rc == -ENOENT) {
			MG_WARN("%s:%u:%u: named port %s of identity %u: the identity is not "
			        "known; ignored",
			        p->at->file, p->at->line, p->at->col, p->np.name, p->id);
		} else if (rc < 0) {
			mg_error_set(err, p->at->file, p->at->line, p->at->col,
			             "cannot add named port %s: %s", p->np.name, strerror(-rc));
			goto out;
		}
	}
	rc = (int)b.n;
out:
	free(b.v);
	free(b.ports);
	mg_yaml_free(f);
	return rc < 0 ? mg_errno_set(-rc) : rc;
}

int
mg_config_load_endpoints(const char *path, struct mg_ipcache *ipc, unsigned cluster_id,
                         struct mg_error *err)
{
	return load_endpoints(mg_yaml_load_file(path, err), ipc, NULL, cluster_id, err);
}

int
mg_config_load_endpoints_buf(const char *name, const void *buf, size_t len, struct mg_ipcache *ipc,
                             unsigned cluster_id, struct mg_error *err)
{
	return load_endpoints(mg_yaml_load_buf(name, buf, len, err), ipc, NULL, cluster_id, err);
}

int
mg_config_load_endpoints_ids(const char *path, struct mg_ipcache *ipc, struct mg_identity_table *t,
                             unsigned cluster_id, struct mg_error *err)
{
	return load_endpoints(mg_yaml_load_file(path, err), ipc, t, cluster_id, err);
}

int
mg_config_load_endpoints_ids_buf(const char *name, const void *buf, size_t len,
                                 struct mg_ipcache *ipc, struct mg_identity_table *t,
                                 unsigned cluster_id, struct mg_error *err)
{
	return load_endpoints(mg_yaml_load_buf(name, buf, len, err), ipc, t, cluster_id, err);
}
