/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Security identities: the numeric layout Cilium uses (reserved ids,
 * cluster bits, local scope), label sets with Cilium's kvstore label-string
 * format, and the control-plane table that maps an identity number to its
 * labels. Nothing here runs on the data path; the workers only ever see
 * identity numbers. Label sets are small sorted arrays (a pod has a dozen
 * labels), so binary search and memmove are cheaper than anything smarter.
 * The identity table is an open-addressing hash of pointers so that a
 * table of several hundred thousand identities costs O(1) per put/get and
 * an entry's address stays valid while other identities come and go.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_hash.h"
#include "mg_identity.h"

/* ---- numeric layout ---- */

static const char *const reserved_names[MG_ID_RESERVED_MAX + 1] = {
        [MG_ID_HOST] = "host",
        [MG_ID_WORLD] = "world",
        [MG_ID_UNMANAGED] = "unmanaged",
        [MG_ID_HEALTH] = "health",
        [MG_ID_INIT] = "init",
        [MG_ID_REMOTE_NODE] = "remote-node",
        [MG_ID_KUBE_APISERVER] = "kube-apiserver",
        [MG_ID_INGRESS] = "ingress",
        [MG_ID_WORLD_IPV4] = "world-ipv4",
        [MG_ID_WORLD_IPV6] = "world-ipv6",
};

unsigned
mg_identity_cluster_shift(enum mg_cluster_mode mode)
{
	return mode == MG_CLUSTER_MODE_511 ? 15 : 16;
}

unsigned
mg_identity_cluster(uint32_t id, enum mg_cluster_mode mode)
{
	/* Reserved and well-known ids (< 256) and CIDR identities belong to no cluster. */
	if (id < MG_ID_MIN_CLUSTER_LOCAL || mg_identity_is_local_scope(id))
		return 0;
	return (id & 0xffffffu) >> mg_identity_cluster_shift(mode);
}

void
mg_identity_cluster_range(unsigned cluster_id, enum mg_cluster_mode mode, uint32_t *first,
                          uint32_t *last)
{
	unsigned shift = mg_identity_cluster_shift(mode);
	unsigned max = mode == MG_CLUSTER_MODE_511 ? 511 : 255;

	if (cluster_id == 0 || cluster_id > max) {
		*first = 0;
		*last = 0;
		return;
	}
	*first = (uint32_t)cluster_id << shift;
	*last = *first | ((1u << shift) - 1);
}

const char *
mg_identity_reserved_name(uint32_t id)
{
	return mg_identity_is_reserved(id) ? reserved_names[id] : NULL;
}

uint32_t
mg_identity_reserved_by_name(const char *name)
{
	if (name == NULL)
		return 0;
	for (uint32_t id = 1; id <= MG_ID_RESERVED_MAX; id++)
		if (strcmp(reserved_names[id], name) == 0)
			return id;
	return 0;
}

/* ---- labels ---- */

static const char source_unspec[] = "unspec";

static int
label_cmp(const char *source_a, const char *key_a, const char *source_b, const char *key_b)
{
	int c = strcmp(source_a, source_b);

	return c != 0 ? c : strcmp(key_a, key_b);
}

/* Index of (source, key) in @ls, or -(insertion point) - 1. */
static long
labels_search(const struct mg_labels *ls, const char *source, const char *key)
{
	size_t lo = 0, hi = ls->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = label_cmp(ls->v[mid].source, ls->v[mid].key, source, key);

		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(long)lo - 1;
}

static void
label_free(struct mg_label *l)
{
	free(l->source);
	free(l->key);
	free(l->value);
}

void
mg_labels_clear(struct mg_labels *ls)
{
	for (size_t i = 0; i < ls->n; i++)
		label_free(&ls->v[i]);
	free(ls->v);
	ls->n = 0;
	ls->v = NULL;
}

/*
 * Characters that would make the label string ambiguous: ';' ends an
 * entry anywhere, ':' and '=' end the source, '=' ends the key. Values may
 * hold ':' and '=' (only the first '=' splits key from value).
 */
static bool
label_parts_valid(const char *source, const char *key, const char *value)
{
	return strpbrk(source, ":=;") == NULL && strpbrk(key, "=;") == NULL &&
	       strchr(value, ';') == NULL;
}

int
mg_labels_add(struct mg_labels *ls, const char *source, const char *key, const char *value)
{
	struct mg_label nl = {NULL, NULL, NULL};
	long pos;

	if (source == NULL || source[0] == '\0')
		source = source_unspec;
	if (value == NULL)
		value = "";
	if (key == NULL || key[0] == '\0' || !label_parts_valid(source, key, value))
		return mg_errno_set(EINVAL);

	pos = labels_search(ls, source, key);
	if (pos >= 0) {
		char *v = strdup(value);

		if (v == NULL)
			return mg_errno_set(ENOMEM);
		free(ls->v[pos].value);
		ls->v[pos].value = v;
		return 0;
	}

	nl.source = strdup(source);
	nl.key = strdup(key);
	nl.value = strdup(value);
	if (nl.source == NULL || nl.key == NULL || nl.value == NULL)
		goto err;
	{
		struct mg_label *v = realloc(ls->v, (ls->n + 1) * sizeof(*v));
		size_t at = (size_t)(-pos - 1);

		if (v == NULL)
			goto err;
		ls->v = v;
		memmove(&v[at + 1], &v[at], (ls->n - at) * sizeof(*v));
		v[at] = nl;
		ls->n++;
	}
	return 0;
err:
	label_free(&nl);
	return mg_errno_set(ENOMEM);
}

/*
 * Split one label of @len bytes at @s. The source is the text before the
 * first ':' only when that ':' comes before the first '=' ("a=b:c" is key
 * "a", value "b:c"). An explicit empty source (":a=b") is an error.
 */
static int
labels_add_n(struct mg_labels *ls, const char *s, size_t len)
{
	const char *eq = memchr(s, '=', len);
	const char *colon = memchr(s, ':', len);
	char *buf;
	char *source = NULL, *key, *value = NULL;
	int rc;

	if (colon != NULL && eq != NULL && colon > eq)
		colon = NULL;
	if (colon == s)
		return mg_errno_set(EINVAL);
	buf = strndup(s, len);
	if (buf == NULL)
		return mg_errno_set(ENOMEM);
	key = buf;
	if (colon != NULL) {
		buf[colon - s] = '\0';
		source = buf;
		key = buf + (colon - s) + 1;
	}
	if (eq != NULL) {
		buf[eq - s] = '\0';
		value = buf + (eq - s) + 1;
	}
	rc = mg_labels_add(ls, source, key, value);
	free(buf);
	return rc;
}

int
mg_labels_add_str(struct mg_labels *ls, const char *label)
{
	if (label == NULL)
		return mg_errno_set(EINVAL);
	return labels_add_n(ls, label, strlen(label));
}

int
mg_labels_parse(struct mg_labels *ls, const char *str, struct mg_error *err)
{
	const char *p = str;
	unsigned entry = 0;
	int rc;

	if (ls->n != 0 || str == NULL) {
		mg_error_set(err, NULL, 0, 0, "label string: internal error (set not empty)");
		return mg_errno_set(EINVAL);
	}
	while (*p != '\0') {
		const char *semi = strchr(p, ';');
		size_t len = semi != NULL ? (size_t)(semi - p) : strlen(p);

		entry++;
		if (len == 0) {
			mg_error_set(err, NULL, 0, 0, "label string \"%s\": entry %u is empty", str,
			             entry);
			rc = -EINVAL;
			goto err;
		}
		rc = labels_add_n(ls, p, len);
		if (rc < 0) {
			if (rc == -ENOMEM)
				mg_error_set(err, NULL, 0, 0, "label string: out of memory");
			else
				mg_error_set(err, NULL, 0, 0,
				             "label string \"%s\": entry %u \"%.*s\" is not a "
				             "valid label (source:key=value, non-empty key)",
				             str, entry, (int)len, p);
			goto err;
		}
		p += len;
		if (*p == ';')
			p++;
	}
	return 0;
err:
	mg_labels_clear(ls);
	return mg_errno_set(-rc);
}

char *
mg_labels_format(const struct mg_labels *ls)
{
	size_t len = 1, off = 0;
	char *s;

	for (size_t i = 0; i < ls->n; i++)
		len += strlen(ls->v[i].source) + strlen(ls->v[i].key) + strlen(ls->v[i].value) + 3;
	s = malloc(len);
	if (s == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	/* Cilium writes '=' even for an empty value: "reserved:host=;". */
	for (size_t i = 0; i < ls->n; i++)
		off += (size_t)snprintf(s + off, len - off, "%s:%s=%s;", ls->v[i].source,
		                        ls->v[i].key, ls->v[i].value);
	s[off] = '\0';
	return s;
}

int
mg_labels_copy(struct mg_labels *dst, const struct mg_labels *src)
{
	if (src->n == 0) {
		dst->n = 0;
		dst->v = NULL;
		return 0;
	}
	dst->v = calloc(src->n, sizeof(*dst->v));
	dst->n = 0;
	if (dst->v == NULL)
		return mg_errno_set(ENOMEM);
	for (size_t i = 0; i < src->n; i++) {
		struct mg_label *d = &dst->v[i];

		d->source = strdup(src->v[i].source);
		d->key = strdup(src->v[i].key);
		d->value = strdup(src->v[i].value);
		dst->n = i + 1; /* so that clear frees the partial label too */
		if (d->source == NULL || d->key == NULL || d->value == NULL)
			goto err;
	}
	return 0;
err:
	mg_labels_clear(dst);
	return mg_errno_set(ENOMEM);
}

bool
mg_labels_equal(const struct mg_labels *a, const struct mg_labels *b)
{
	if (a->n != b->n)
		return false;
	/* Both are sorted and duplicate-free, so equal sets are equal arrays. */
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i].source, b->v[i].source) != 0 ||
		    strcmp(a->v[i].key, b->v[i].key) != 0 ||
		    strcmp(a->v[i].value, b->v[i].value) != 0)
			return false;
	return true;
}

const struct mg_label *
mg_labels_find(const struct mg_labels *ls, const char *source, const char *key)
{
	long pos;

	if (key == NULL)
		return NULL;
	if (source == NULL || strcmp(source, "any") == 0) {
		/* Sorted by source first: the first match in source order wins. */
		for (size_t i = 0; i < ls->n; i++)
			if (strcmp(ls->v[i].key, key) == 0)
				return &ls->v[i];
		return NULL;
	}
	if (source[0] == '\0')
		source = source_unspec;
	pos = labels_search(ls, source, key);
	return pos >= 0 ? &ls->v[pos] : NULL;
}

int
mg_labels_reserved(struct mg_labels *ls, uint32_t id)
{
	const char *name = mg_identity_reserved_name(id);
	int rc;

	if (name == NULL)
		return mg_errno_set(EINVAL);
	rc = mg_labels_add(ls, "reserved", name, "");
	if (rc == 0 && (id == MG_ID_WORLD_IPV4 || id == MG_ID_WORLD_IPV6))
		rc = mg_labels_add(ls, "reserved", "world", "");
	return rc;
}

/* ---- the identity table ---- */

/*
 * Open addressing with linear probing (mg_hash.h); id 0 (never a valid
 * identity) marks a free slot. Deletion shifts the following run back, so there are no
 * tombstones and lookups stay short however the table churns. Entries are
 * separate allocations so that a pointer returned by get survives the
 * table growing.
 */
struct id_slot {
	uint32_t id;
	struct mg_identity *e;
};

struct mg_identity_table {
	struct id_slot *slots;
	size_t cap; /* power of two */
	size_t count;
	enum mg_cluster_mode mode;
};

#define TABLE_MIN_CAP 64

static size_t
id_home(uint32_t id, size_t cap)
{
	return mg_probe_home(mg_hash_u64(id), cap - 1);
}

static struct id_slot *
table_find(const struct mg_identity_table *t, uint32_t id)
{
	size_t mask = t->cap - 1;

	for (size_t i = id_home(id, t->cap);; i = mg_probe_next(i, mask)) {
		if (t->slots[i].id == id)
			return &t->slots[i];
		if (t->slots[i].id == 0)
			return NULL;
	}
}

/* Place @e in a table known to have room and not to hold its id. */
static void
table_place(struct id_slot *slots, size_t cap, struct mg_identity *e)
{
	size_t i = id_home(e->id, cap);

	while (slots[i].id != 0)
		i = mg_probe_next(i, cap - 1);
	slots[i].id = e->id;
	slots[i].e = e;
}

static int
table_grow(struct mg_identity_table *t)
{
	size_t ncap = t->cap * 2;
	struct id_slot *ns = calloc(ncap, sizeof(*ns));

	if (ns == NULL)
		return mg_errno_set(ENOMEM);
	for (size_t i = 0; i < t->cap; i++)
		if (t->slots[i].id != 0)
			table_place(ns, ncap, t->slots[i].e);
	free(t->slots);
	t->slots = ns;
	t->cap = ncap;
	return 0;
}

static void
identity_free(struct mg_identity *e)
{
	mg_labels_clear(&e->labels);
	free(e->named_ports);
	free(e);
}

static int
table_insert_new(struct mg_identity_table *t, uint32_t id, const struct mg_labels *labels,
                 unsigned cluster_id)
{
	struct mg_identity *e;
	int rc;

	/* Keep the load at or below 0.7 so probe runs stay short. */
	if ((t->count + 1) * 10 > t->cap * 7 && (rc = table_grow(t)) < 0)
		return rc;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return mg_errno_set(ENOMEM);
	e->id = id;
	e->cluster_id = cluster_id;
	rc = mg_labels_copy(&e->labels, labels);
	if (rc < 0) {
		free(e);
		return rc;
	}
	table_place(t->slots, t->cap, e);
	t->count++;
	return 0;
}

struct mg_identity_table *
mg_identity_table_create(enum mg_cluster_mode mode)
{
	struct mg_identity_table *t;

	if (mode != MG_CLUSTER_MODE_255 && mode != MG_CLUSTER_MODE_511) {
		errno = EINVAL;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		goto err;
	t->mode = mode;
	t->cap = TABLE_MIN_CAP;
	t->slots = calloc(t->cap, sizeof(*t->slots));
	if (t->slots == NULL)
		goto err;
	for (uint32_t id = 1; id <= MG_ID_RESERVED_MAX; id++) {
		struct mg_labels ls = MG_LABELS_INIT;
		int rc = mg_labels_reserved(&ls, id);

		if (rc == 0)
			rc = table_insert_new(t, id, &ls, 0);
		mg_labels_clear(&ls);
		if (rc < 0)
			goto err;
	}
	return t;
err:
	mg_identity_table_free(t);
	errno = ENOMEM;
	return NULL;
}

void
mg_identity_table_free(struct mg_identity_table *t)
{
	if (t == NULL)
		return;
	if (t->slots != NULL)
		for (size_t i = 0; i < t->cap; i++)
			if (t->slots[i].id != 0)
				identity_free(t->slots[i].e);
	free(t->slots);
	free(t);
}

int
mg_identity_table_put(struct mg_identity_table *t, uint32_t id, const struct mg_labels *labels,
                      unsigned cluster_id)
{
	struct id_slot *s;
	struct mg_labels copy;
	int rc;

	if (id == 0 || mg_identity_is_reserved(id) || id > MG_ID_MAX)
		return mg_errno_set(EINVAL);
	s = table_find(t, id);
	if (s == NULL)
		return table_insert_new(t, id, labels, cluster_id);
	s->e->cluster_id = cluster_id;
	if (mg_labels_equal(&s->e->labels, labels))
		return 0;
	/* Copy first so that a failed replace leaves the old labels intact. */
	rc = mg_labels_copy(&copy, labels);
	if (rc < 0)
		return rc;
	mg_labels_clear(&s->e->labels);
	s->e->labels = copy;
	return 1;
}

static int
named_port_cmp(const struct mg_named_port *a, const char *name, uint8_t proto, uint16_t port)
{
	int c = strcmp(a->name, name);

	if (c != 0)
		return c;
	if (a->proto != proto)
		return a->proto < proto ? -1 : 1;
	return a->port < port ? -1 : a->port > port;
}

int
mg_identity_table_add_named_port(struct mg_identity_table *t, uint32_t id, const char *name,
                                 uint8_t proto, uint16_t port)
{
	struct mg_named_port *v;
	struct id_slot *s;
	size_t lo, hi, len;

	/* Kubernetes port names are IANA service names: at most 15 characters. */
	if (name == NULL || (len = strlen(name)) == 0 || len > 15 || port == 0 ||
	    (proto != 6 && proto != 17 && proto != 132))
		return mg_errno_set(EINVAL);
	if (id == 0 || (s = table_find(t, id)) == NULL)
		return mg_errno_set(ENOENT);
	/* Sorted by (name, protocol, port): binary search for the place. */
	lo = 0;
	hi = s->e->n_named_ports;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = named_port_cmp(&s->e->named_ports[mid], name, proto, port);

		if (c == 0)
			return 1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	v = realloc(s->e->named_ports, (s->e->n_named_ports + 1) * sizeof(*v));
	if (v == NULL)
		return mg_errno_set(ENOMEM);
	memmove(&v[lo + 1], &v[lo], (s->e->n_named_ports - lo) * sizeof(*v));
	memset(&v[lo], 0, sizeof(v[lo]));
	memcpy(v[lo].name, name, len + 1);
	v[lo].proto = proto;
	v[lo].port = port;
	s->e->named_ports = v;
	s->e->n_named_ports++;
	return 0;
}

int
mg_identity_table_del(struct mg_identity_table *t, uint32_t id)
{
	size_t mask = t->cap - 1;
	struct id_slot *s;
	size_t hole, i;

	if (mg_identity_is_reserved(id))
		return mg_errno_set(EPERM);
	if (id == 0 || (s = table_find(t, id)) == NULL)
		return mg_errno_set(ENOENT);
	identity_free(s->e);
	t->count--;
	/* backward-shift deletion: no tombstones */
	hole = (size_t)(s - t->slots);
	for (i = mg_probe_next(hole, mask); t->slots[i].id != 0; i = mg_probe_next(i, mask)) {
		if (mg_probe_may_fill(id_home(t->slots[i].id, t->cap), hole, i, mask)) {
			t->slots[hole] = t->slots[i];
			hole = i;
		}
	}
	t->slots[hole].id = 0;
	t->slots[hole].e = NULL;
	return 0;
}

const struct mg_identity *
mg_identity_table_get(const struct mg_identity_table *t, uint32_t id)
{
	const struct id_slot *s;

	if (id == 0)
		return NULL;
	s = table_find(t, id);
	return s != NULL ? s->e : NULL;
}

size_t
mg_identity_table_count(const struct mg_identity_table *t)
{
	return t->count;
}

static int
id_ptr_cmp(const void *a, const void *b)
{
	uint32_t x = (*(struct mg_identity *const *)a)->id;
	uint32_t y = (*(struct mg_identity *const *)b)->id;

	return x < y ? -1 : x > y;
}

int
mg_identity_table_walk(const struct mg_identity_table *t,
                       int (*fn)(const struct mg_identity *, void *), void *arg)
{
	struct mg_identity **v;
	size_t n = 0;
	int rc = 0;

	/* Sort on demand: walks are rare (CLI, resync), puts and gets are not. */
	v = malloc((t->count ? t->count : 1) * sizeof(*v));
	if (v == NULL)
		return mg_errno_set(ENOMEM);
	for (size_t i = 0; i < t->cap; i++)
		if (t->slots[i].id != 0)
			v[n++] = t->slots[i].e;
	qsort(v, n, sizeof(*v), id_ptr_cmp);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = fn(v[i], arg);
	free(v);
	return rc;
}

enum mg_cluster_mode
mg_identity_table_mode(const struct mg_identity_table *t)
{
	return t->mode;
}

bool
mg_port_name_valid(const char *s)
{
	size_t n = strlen(s);
	bool letter = false;

	if (n == 0 || n > MG_PORT_NAME_MAX || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
			letter = true;
		else if (c == '-' && s[i + 1] == '-')
			return false;
		else if (!((c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	return letter;
}
