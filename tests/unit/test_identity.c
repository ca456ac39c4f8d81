/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of lib/identity: label sets and Cilium's label-string format,
 * reserved identities, the cluster-id layouts, and the identity table.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mg_identity.h"
#include "mg_test.h"

static void
test_labels_add_sorted(void)
{
	struct mg_labels ls = MG_LABELS_INIT;
	char *s;

	CU_ASSERT_EQUAL(mg_labels_add(&ls, "k8s", "zone", "a"), 0);
	CU_ASSERT_EQUAL(mg_labels_add(&ls, "k8s", "app", "web"), 0);
	CU_ASSERT_EQUAL(mg_labels_add(&ls, "container", "x", ""), 0);
	CU_ASSERT_EQUAL(mg_labels_add(&ls, NULL, "plain", "1"), 0);
	CU_ASSERT_EQUAL(ls.n, 4);
	/* Sorted by (source, key). */
	CU_ASSERT_STRING_EQUAL(ls.v[0].source, "container");
	CU_ASSERT_STRING_EQUAL(ls.v[1].key, "app");
	CU_ASSERT_STRING_EQUAL(ls.v[2].key, "zone");
	CU_ASSERT_STRING_EQUAL(ls.v[3].source, "unspec");

	/* Same source and key: replaced, not duplicated. */
	CU_ASSERT_EQUAL(mg_labels_add(&ls, "k8s", "app", "db"), 0);
	CU_ASSERT_EQUAL(ls.n, 4);
	CU_ASSERT_STRING_EQUAL(ls.v[1].value, "db");
	/* Same key, other source: a separate label. */
	CU_ASSERT_EQUAL(mg_labels_add(&ls, "", "app", "u"), 0);
	CU_ASSERT_EQUAL(ls.n, 5);

	s = mg_labels_format(&ls);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_STRING_EQUAL(s,
	                       "container:x=;k8s:app=db;k8s:zone=a;unspec:app=u;unspec:plain=1;");
	free(s);

	CU_ASSERT_EQUAL(mg_labels_add(&ls, "k8s", "", "v"), -EINVAL);
	CU_ASSERT_EQUAL(mg_labels_add(&ls, "k8s", NULL, "v"), -EINVAL);
	CU_ASSERT_EQUAL(mg_labels_add(&ls, "k8s", "a;b", "v"), -EINVAL);
	CU_ASSERT_EQUAL(mg_labels_add(&ls, "k:8s", "a", "v"), -EINVAL);
	CU_ASSERT_EQUAL(mg_labels_add(&ls, "k8s", "a", "v;w"), -EINVAL);
	CU_ASSERT_EQUAL(ls.n, 5);
	mg_labels_clear(&ls);
	CU_ASSERT_EQUAL(ls.n, 0);
	CU_ASSERT_PTR_NULL(ls.v);
}

static void
test_labels_add_str(void)
{
	struct mg_labels ls = MG_LABELS_INIT;
	const struct mg_label *l;

	CU_ASSERT_EQUAL(mg_labels_add_str(&ls, "k8s:io.kubernetes.pod.namespace=x"), 0);
	l = mg_labels_find(&ls, "k8s", "io.kubernetes.pod.namespace");
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	CU_ASSERT_STRING_EQUAL(l->value, "x");

	/* Only the first '=' splits: the value keeps the rest. */
	CU_ASSERT_EQUAL(mg_labels_add_str(&ls, "k8s:app.kubernetes.io/name=a=b"), 0);
	l = mg_labels_find(&ls, "k8s", "app.kubernetes.io/name");
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	CU_ASSERT_STRING_EQUAL(l->value, "a=b");

	/* No ':' before the first '=': no source. */
	CU_ASSERT_EQUAL(mg_labels_add_str(&ls, "role=a:b"), 0);
	l = mg_labels_find(&ls, "unspec", "role");
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	CU_ASSERT_STRING_EQUAL(l->value, "a:b");

	/* No '=': empty value. */
	CU_ASSERT_EQUAL(mg_labels_add_str(&ls, "reserved:host"), 0);
	l = mg_labels_find(&ls, "reserved", "host");
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	CU_ASSERT_STRING_EQUAL(l->value, "");

	CU_ASSERT_EQUAL(mg_labels_add_str(&ls, "bare"), 0);
	CU_ASSERT_PTR_NOT_NULL(mg_labels_find(&ls, "unspec", "bare"));

	CU_ASSERT_EQUAL(mg_labels_add_str(&ls, ""), -EINVAL);
	CU_ASSERT_EQUAL(mg_labels_add_str(&ls, "k8s:"), -EINVAL);
	CU_ASSERT_EQUAL(mg_labels_add_str(&ls, "k8s:=v"), -EINVAL);
	CU_ASSERT_EQUAL(mg_labels_add_str(&ls, "=v"), -EINVAL);
	CU_ASSERT_EQUAL(mg_labels_add_str(&ls, ":a=b"), -EINVAL);
	CU_ASSERT_EQUAL(ls.n, 5);
	mg_labels_clear(&ls);
}

static void
roundtrip(const char *in, const char *expect)
{
	struct mg_labels ls = MG_LABELS_INIT, again = MG_LABELS_INIT;
	struct mg_error err = {{0}};
	char *s, *s2;

	CU_ASSERT_EQUAL_FATAL(mg_labels_parse(&ls, in, &err), 0);
	s = mg_labels_format(&ls);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_STRING_EQUAL(s, expect);
	CU_ASSERT_EQUAL(mg_labels_parse(&again, s, &err), 0);
	CU_ASSERT_TRUE(mg_labels_equal(&ls, &again));
	s2 = mg_labels_format(&again);
	CU_ASSERT_STRING_EQUAL(s2, s);
	free(s);
	free(s2);
	mg_labels_clear(&ls);
	mg_labels_clear(&again);
}

static void
test_labels_parse_format(void)
{
	roundtrip("k8s:app=web;k8s:io.kubernetes.pod.namespace=default;",
	          "k8s:app=web;k8s:io.kubernetes.pod.namespace=default;");
	/* Final ';' optional, input order irrelevant. */
	roundtrip("k8s:zone=b;k8s:app=web", "k8s:app=web;k8s:zone=b;");
	roundtrip("k8s:app.kubernetes.io/name=a=b;", "k8s:app.kubernetes.io/name=a=b;");
	roundtrip("reserved:host;", "reserved:host=;");
	roundtrip("reserved:world=;cidr:10.0.0.0/8=;", "cidr:10.0.0.0/8=;reserved:world=;");
	roundtrip("x=y", "unspec:x=y;");
	roundtrip("", "");
	/* Duplicates collapse, the last one wins. */
	roundtrip("k8s:a=1;k8s:a=2;", "k8s:a=2;");
}

static void
test_labels_parse_errors(void)
{
	static const char *const bad[] = {
	        ";", "k8s:a=b;;k8s:c=d", ";k8s:a=b", "k8s:=x;", "k8s:a=b;=c;", ":a=b",
	};

	for (size_t i = 0; i < MG_ARRAY_SIZE(bad); i++) {
		struct mg_labels ls = MG_LABELS_INIT;
		struct mg_error err = {{0}};

		CU_ASSERT_EQUAL(mg_labels_parse(&ls, bad[i], &err), -EINVAL);
		CU_ASSERT_EQUAL(ls.n, 0);
		CU_ASSERT_PTR_NULL(ls.v);
		CU_ASSERT(strlen(err.msg) > 0);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "entry"));
	}
	{
		struct mg_labels ls = MG_LABELS_INIT;
		struct mg_error err = {{0}};

		CU_ASSERT_EQUAL(mg_labels_parse(&ls, "k8s:a=b;;", &err), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "entry 2 is empty"));
		/* The set must be empty on entry. */
		CU_ASSERT_EQUAL(mg_labels_add(&ls, "k8s", "x", "y"), 0);
		CU_ASSERT_EQUAL(mg_labels_parse(&ls, "k8s:a=b", &err), -EINVAL);
		mg_labels_clear(&ls);
	}
}

static void
test_labels_find_copy_equal(void)
{
	struct mg_labels ls = MG_LABELS_INIT, cp = MG_LABELS_INIT;
	struct mg_error err = {{0}};
	const struct mg_label *l;

	CU_ASSERT_EQUAL_FATAL(mg_labels_parse(&ls, "k8s:app=web;container:app=c;k8s:tier=1", &err),
	                      0);
	l = mg_labels_find(&ls, "k8s", "app");
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	CU_ASSERT_STRING_EQUAL(l->value, "web");
	l = mg_labels_find(&ls, "container", "app");
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	CU_ASSERT_STRING_EQUAL(l->value, "c");
	/* "any" and NULL match every source; the first in sort order wins. */
	l = mg_labels_find(&ls, "any", "app");
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	CU_ASSERT_STRING_EQUAL(l->source, "container");
	l = mg_labels_find(&ls, NULL, "tier");
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	CU_ASSERT_STRING_EQUAL(l->value, "1");
	CU_ASSERT_PTR_NULL(mg_labels_find(&ls, "reserved", "app"));
	CU_ASSERT_PTR_NULL(mg_labels_find(&ls, "any", "nope"));

	CU_ASSERT_EQUAL(mg_labels_copy(&cp, &ls), 0);
	CU_ASSERT_TRUE(mg_labels_equal(&cp, &ls));
	CU_ASSERT_PTR_NOT_EQUAL(cp.v[0].key, ls.v[0].key);
	CU_ASSERT_EQUAL(mg_labels_add(&cp, "k8s", "tier", "2"), 0);
	CU_ASSERT_FALSE(mg_labels_equal(&cp, &ls));
	mg_labels_clear(&cp);
	CU_ASSERT_FALSE(mg_labels_equal(&cp, &ls));
	mg_labels_clear(&ls);
	CU_ASSERT_TRUE(mg_labels_equal(&cp, &ls));
}

static void
test_reserved(void)
{
	static const char *const names[] = {
	        NULL,          "host",           "world",   "unmanaged",  "health",     "init",
	        "remote-node", "kube-apiserver", "ingress", "world-ipv4", "world-ipv6",
	};
	struct mg_labels ls = MG_LABELS_INIT;

	for (uint32_t id = 1; id <= MG_ID_RESERVED_MAX; id++) {
		CU_ASSERT_TRUE(mg_identity_is_reserved(id));
		CU_ASSERT_STRING_EQUAL(mg_identity_reserved_name(id), names[id]);
		CU_ASSERT_EQUAL(mg_identity_reserved_by_name(names[id]), id);
	}
	CU_ASSERT_FALSE(mg_identity_is_reserved(0));
	CU_ASSERT_FALSE(mg_identity_is_reserved(11));
	CU_ASSERT_PTR_NULL(mg_identity_reserved_name(0));
	CU_ASSERT_PTR_NULL(mg_identity_reserved_name(256));
	CU_ASSERT_EQUAL(mg_identity_reserved_by_name("nope"), 0);
	CU_ASSERT_EQUAL(mg_identity_reserved_by_name(NULL), 0);

	CU_ASSERT_EQUAL(mg_labels_reserved(&ls, MG_ID_HOST), 0);
	CU_ASSERT_EQUAL(ls.n, 1);
	CU_ASSERT_PTR_NOT_NULL(mg_labels_find(&ls, "reserved", "host"));
	mg_labels_clear(&ls);

	CU_ASSERT_EQUAL(mg_labels_reserved(&ls, MG_ID_WORLD_IPV6), 0);
	CU_ASSERT_EQUAL(ls.n, 2);
	CU_ASSERT_PTR_NOT_NULL(mg_labels_find(&ls, "reserved", "world-ipv6"));
	CU_ASSERT_PTR_NOT_NULL(mg_labels_find(&ls, "reserved", "world"));
	mg_labels_clear(&ls);

	CU_ASSERT_EQUAL(mg_labels_reserved(&ls, MG_ID_KUBE_APISERVER), 0);
	CU_ASSERT_EQUAL(ls.n, 1);
	CU_ASSERT_PTR_NOT_NULL(mg_labels_find(&ls, "reserved", "kube-apiserver"));
	mg_labels_clear(&ls);

	CU_ASSERT_EQUAL(mg_labels_reserved(&ls, 256), -EINVAL);
	CU_ASSERT_EQUAL(ls.n, 0);
}

static void
test_cluster_bits(void)
{
	uint32_t first, last;

	CU_ASSERT_EQUAL(mg_identity_cluster_shift(MG_CLUSTER_MODE_255), 16);
	CU_ASSERT_EQUAL(mg_identity_cluster_shift(MG_CLUSTER_MODE_511), 15);

	mg_identity_cluster_range(3, MG_CLUSTER_MODE_255, &first, &last);
	CU_ASSERT_EQUAL(first, 0x30000);
	CU_ASSERT_EQUAL(last, 0x3ffff);
	mg_identity_cluster_range(3, MG_CLUSTER_MODE_511, &first, &last);
	CU_ASSERT_EQUAL(first, 0x18000);
	CU_ASSERT_EQUAL(last, 0x1ffff);
	mg_identity_cluster_range(255, MG_CLUSTER_MODE_255, &first, &last);
	CU_ASSERT_EQUAL(first, 0xff0000);
	CU_ASSERT_EQUAL(last, 0xffffff);
	mg_identity_cluster_range(511, MG_CLUSTER_MODE_511, &first, &last);
	CU_ASSERT_EQUAL(first, 0xff8000);
	CU_ASSERT_EQUAL(last, 0xffffff);
	mg_identity_cluster_range(0, MG_CLUSTER_MODE_255, &first, &last);
	CU_ASSERT_EQUAL(first, 0);
	CU_ASSERT_EQUAL(last, 0);
	mg_identity_cluster_range(256, MG_CLUSTER_MODE_255, &first, &last);
	CU_ASSERT_EQUAL(first | last, 0);
	mg_identity_cluster_range(512, MG_CLUSTER_MODE_511, &first, &last);
	CU_ASSERT_EQUAL(first | last, 0);

	CU_ASSERT_EQUAL(mg_identity_cluster(0x30000, MG_CLUSTER_MODE_255), 3);
	CU_ASSERT_EQUAL(mg_identity_cluster(0x3ffff, MG_CLUSTER_MODE_255), 3);
	CU_ASSERT_EQUAL(mg_identity_cluster(0x30000, MG_CLUSTER_MODE_511), 6);
	CU_ASSERT_EQUAL(mg_identity_cluster(0x18000, MG_CLUSTER_MODE_511), 3);
	CU_ASSERT_EQUAL(mg_identity_cluster(0x1ffff, MG_CLUSTER_MODE_511), 3);
	CU_ASSERT_EQUAL(mg_identity_cluster(0xff8000, MG_CLUSTER_MODE_511), 511);
	/* Cluster 0's own pods: 256..0xffff in 255 mode. */
	CU_ASSERT_EQUAL(mg_identity_cluster(256, MG_CLUSTER_MODE_255), 0);
	CU_ASSERT_EQUAL(mg_identity_cluster(MG_ID_WORLD, MG_CLUSTER_MODE_255), 0);
	CU_ASSERT_EQUAL(mg_identity_cluster(255, MG_CLUSTER_MODE_511), 0);
	CU_ASSERT_EQUAL(mg_identity_cluster(MG_ID_LOCAL_SCOPE | 0x30001, MG_CLUSTER_MODE_255), 0);
}

static void
test_local_scope(void)
{
	CU_ASSERT_TRUE(mg_identity_is_local_scope(MG_ID_LOCAL_SCOPE));
	CU_ASSERT_TRUE(mg_identity_is_local_scope(MG_ID_LOCAL_SCOPE | 5));
	CU_ASSERT_TRUE(mg_identity_is_local_scope(MG_ID_MAX));
	CU_ASSERT_FALSE(mg_identity_is_local_scope(0xffffff));
	CU_ASSERT_FALSE(mg_identity_is_local_scope(MG_ID_HOST));
	CU_ASSERT_FALSE(mg_identity_is_reserved(MG_ID_LOCAL_SCOPE | 1));
}

struct walk_state {
	uint32_t last;
	size_t n;
	bool ordered;
	uint32_t stop_at;
};

static int
walk_cb(const struct mg_identity *e, void *arg)
{
	struct walk_state *w = arg;

	if (w->n > 0 && e->id <= w->last)
		w->ordered = false;
	w->last = e->id;
	w->n++;
	return w->stop_at != 0 && e->id == w->stop_at ? 42 : 0;
}

static void
test_table_basic(void)
{
	struct mg_identity_table *t = mg_identity_table_create(MG_CLUSTER_MODE_511);
	struct mg_labels a = MG_LABELS_INIT, b = MG_LABELS_INIT;
	struct mg_error err = {{0}};
	const struct mg_identity *e;
	struct walk_state w = {0, 0, true, 0};

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(mg_identity_table_mode(t), MG_CLUSTER_MODE_511);
	CU_ASSERT_EQUAL(mg_identity_table_count(t), 10);
	e = mg_identity_table_get(t, MG_ID_WORLD_IPV4);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_PTR_NOT_NULL(mg_labels_find(&e->labels, "reserved", "world"));
	CU_ASSERT_PTR_NOT_NULL(mg_labels_find(&e->labels, "reserved", "world-ipv4"));
	CU_ASSERT_PTR_NULL(mg_identity_table_get(t, 0));
	CU_ASSERT_PTR_NULL(mg_identity_table_get(t, 11));

	CU_ASSERT_EQUAL_FATAL(mg_labels_parse(&a, "k8s:app=web;", &err), 0);
	CU_ASSERT_EQUAL_FATAL(mg_labels_parse(&b, "k8s:app=db;", &err), 0);
	CU_ASSERT_EQUAL(mg_identity_table_put(t, 0x18005, &a, 3), 0);
	CU_ASSERT_EQUAL(mg_identity_table_put(t, 300, &b, 0), 0);
	CU_ASSERT_EQUAL(mg_identity_table_count(t), 12);
	e = mg_identity_table_get(t, 0x18005);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->id, 0x18005);
	CU_ASSERT_EQUAL(e->cluster_id, 3);
	CU_ASSERT_TRUE(mg_labels_equal(&e->labels, &a));
	/* The table holds a copy. */
	CU_ASSERT_PTR_NOT_EQUAL(e->labels.v, a.v);

	/* Same labels: 0; different labels: 1. */
	CU_ASSERT_EQUAL(mg_identity_table_put(t, 0x18005, &a, 3), 0);
	CU_ASSERT_EQUAL(mg_identity_table_put(t, 0x18005, &b, 3), 1);
	e = mg_identity_table_get(t, 0x18005);
	CU_ASSERT_TRUE(mg_labels_equal(&e->labels, &b));
	CU_ASSERT_EQUAL(mg_identity_table_count(t), 12);

	/* Invalid ids. */
	CU_ASSERT_EQUAL(mg_identity_table_put(t, 0, &a, 0), -EINVAL);
	CU_ASSERT_EQUAL(mg_identity_table_put(t, MG_ID_HOST, &a, 0), -EINVAL);
	CU_ASSERT_EQUAL(mg_identity_table_put(t, MG_ID_WORLD_IPV6, &a, 0), -EINVAL);
	CU_ASSERT_EQUAL(mg_identity_table_put(t, MG_ID_MAX + 1, &a, 0), -EINVAL);
	CU_ASSERT_EQUAL(mg_identity_table_put(t, MG_ID_LOCAL_SCOPE | 1, &a, 0), 0);
	CU_ASSERT_EQUAL(mg_identity_table_count(t), 13);

	/* Reserved identities stay. */
	CU_ASSERT_EQUAL(mg_identity_table_del(t, MG_ID_HOST), -EPERM);
	CU_ASSERT_EQUAL(mg_identity_table_del(t, MG_ID_WORLD), -EPERM);
	CU_ASSERT_EQUAL(mg_identity_table_del(t, 301), -ENOENT);
	CU_ASSERT_EQUAL(mg_identity_table_del(t, 0), -ENOENT);
	CU_ASSERT_EQUAL(mg_identity_table_del(t, 300), 0);
	CU_ASSERT_EQUAL(mg_identity_table_del(t, 300), -ENOENT);
	CU_ASSERT_PTR_NULL(mg_identity_table_get(t, 300));
	CU_ASSERT_EQUAL(mg_identity_table_count(t), 12);

	CU_ASSERT_EQUAL(mg_identity_table_walk(t, walk_cb, &w), 0);
	CU_ASSERT_EQUAL(w.n, 12);
	CU_ASSERT_TRUE(w.ordered);
	CU_ASSERT_EQUAL(w.last, MG_ID_LOCAL_SCOPE | 1);

	/* Early stop returns the callback's value. */
	w = (struct walk_state){0, 0, true, MG_ID_INGRESS};
	CU_ASSERT_EQUAL(mg_identity_table_walk(t, walk_cb, &w), 42);
	CU_ASSERT_EQUAL(w.n, 8);

	mg_labels_clear(&a);
	mg_labels_clear(&b);
	mg_identity_table_free(t);
	CU_ASSERT_PTR_NULL(mg_identity_table_create((enum mg_cluster_mode)7));
}

static void
test_table_100k(void)
{
	struct mg_identity_table *t = mg_identity_table_create(MG_CLUSTER_MODE_255);
	struct walk_state w = {0, 0, true, 0};
	const uint32_t n = 100000;
	char buf[32];
	bool ok = true;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (uint32_t i = 0; i < n && ok; i++) {
		struct mg_labels ls = MG_LABELS_INIT;
		/* Spread over clusters 1..9 and local ids to mix the hash input. */
		uint32_t id = ((i % 9 + 1) << 16) | (i / 9 + 256);

		snprintf(buf, sizeof(buf), "%u", id);
		ok = mg_labels_add(&ls, "k8s", "app", buf) == 0 &&
		     mg_identity_table_put(t, id, &ls, i % 9 + 1) == 0;
		mg_labels_clear(&ls);
	}
	CU_ASSERT_TRUE(ok);
	CU_ASSERT_EQUAL(mg_identity_table_count(t), n + 10);
	for (uint32_t i = 0; i < n && ok; i++) {
		uint32_t id = ((i % 9 + 1) << 16) | (i / 9 + 256);
		const struct mg_identity *e = mg_identity_table_get(t, id);
		const struct mg_label *l;

		snprintf(buf, sizeof(buf), "%u", id);
		ok = e != NULL && e->id == id && e->cluster_id == i % 9 + 1 &&
		     (l = mg_labels_find(&e->labels, "k8s", "app")) != NULL &&
		     strcmp(l->value, buf) == 0 &&
		     mg_identity_cluster(id, MG_CLUSTER_MODE_255) == i % 9 + 1;
	}
	CU_ASSERT_TRUE(ok);
	CU_ASSERT_EQUAL(mg_identity_table_walk(t, walk_cb, &w), 0);
	CU_ASSERT_EQUAL(w.n, n + 10);
	CU_ASSERT_TRUE(w.ordered);
	/* Delete every other one; the rest must still be found (backward shift). */
	for (uint32_t i = 0; i < n && ok; i += 2)
		ok = mg_identity_table_del(t, ((i % 9 + 1) << 16) | (i / 9 + 256)) == 0;
	CU_ASSERT_TRUE(ok);
	CU_ASSERT_EQUAL(mg_identity_table_count(t), n / 2 + 10);
	for (uint32_t i = 0; i < n && ok; i++) {
		const struct mg_identity *e =
		        mg_identity_table_get(t, ((i % 9 + 1) << 16) | (i / 9 + 256));

		ok = (i % 2 == 0) == (e == NULL);
	}
	CU_ASSERT_TRUE(ok);
	mg_identity_table_free(t);
}

/* Named ports: sorted, deduplicated, kept across label changes, freed with the identity. */
static void
test_named_ports(void)
{
	struct mg_identity_table *t = mg_identity_table_create(MG_CLUSTER_MODE_255);
	struct mg_labels ls = MG_LABELS_INIT, ls2 = MG_LABELS_INIT;
	const struct mg_identity *e;
	uint32_t id = (1u << 16) + 300;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(mg_labels_add_str(&ls, "k8s:app=web"), 0);
	CU_ASSERT_EQUAL(mg_labels_add_str(&ls2, "k8s:app=db"), 0);
	CU_ASSERT_EQUAL(mg_identity_table_put(t, id, &ls, 1), 0);
	/* no such identity */
	CU_ASSERT_EQUAL(mg_identity_table_add_named_port(t, id + 1, "http", 6, 80), -ENOENT);
	CU_ASSERT_EQUAL(mg_identity_table_add_named_port(t, 0, "http", 6, 80), -ENOENT);
	/* bad arguments */
	CU_ASSERT_EQUAL(mg_identity_table_add_named_port(t, id, "", 6, 80), -EINVAL);
	CU_ASSERT_EQUAL(mg_identity_table_add_named_port(t, id, NULL, 6, 80), -EINVAL);
	CU_ASSERT_EQUAL(mg_identity_table_add_named_port(t, id, "a-name-too-long-x", 6, 80),
	                -EINVAL);
	CU_ASSERT_EQUAL(mg_identity_table_add_named_port(t, id, "http", 1, 80), -EINVAL);
	CU_ASSERT_EQUAL(mg_identity_table_add_named_port(t, id, "http", 6, 0), -EINVAL);
	/* added, kept sorted by (name, protocol, port), duplicates reported */
	CU_ASSERT_EQUAL(mg_identity_table_add_named_port(t, id, "http", 6, 8080), 0);
	CU_ASSERT_EQUAL(mg_identity_table_add_named_port(t, id, "dns", 17, 53), 0);
	CU_ASSERT_EQUAL(mg_identity_table_add_named_port(t, id, "http", 6, 80), 0);
	CU_ASSERT_EQUAL(mg_identity_table_add_named_port(t, id, "dns", 6, 53), 0);
	CU_ASSERT_EQUAL(mg_identity_table_add_named_port(t, id, "http", 6, 80), 1);
	CU_ASSERT_EQUAL(mg_identity_table_add_named_port(t, id, "sctp-x", 132, 9), 0);
	e = mg_identity_table_get(t, id);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL_FATAL(e->n_named_ports, 5);
	CU_ASSERT_STRING_EQUAL(e->named_ports[0].name, "dns");
	CU_ASSERT_EQUAL(e->named_ports[0].proto, 6);
	CU_ASSERT_EQUAL(e->named_ports[1].proto, 17);
	CU_ASSERT_STRING_EQUAL(e->named_ports[2].name, "http");
	CU_ASSERT_EQUAL(e->named_ports[2].port, 80);
	CU_ASSERT_EQUAL(e->named_ports[3].port, 8080);
	CU_ASSERT_STRING_EQUAL(e->named_ports[4].name, "sctp-x");
	/* new labels keep the named ports */
	CU_ASSERT_EQUAL(mg_identity_table_put(t, id, &ls2, 1), 1);
	e = mg_identity_table_get(t, id);
	CU_ASSERT_EQUAL(e->n_named_ports, 5);
	/* reserved identities may have them too (a host's ports) */
	CU_ASSERT_EQUAL(mg_identity_table_add_named_port(t, MG_ID_HOST, "ssh", 6, 22), 0);
	CU_ASSERT_EQUAL(mg_identity_table_get(t, MG_ID_HOST)->n_named_ports, 1);
	/* removing the identity frees them (checked under ASan); a new one starts empty */
	CU_ASSERT_EQUAL(mg_identity_table_del(t, id), 0);
	CU_ASSERT_EQUAL(mg_identity_table_put(t, id, &ls, 1), 0);
	CU_ASSERT_EQUAL(mg_identity_table_get(t, id)->n_named_ports, 0);
	CU_ASSERT_EQUAL(mg_identity_table_add_named_port(t, id, "http", 6, 80), 0);
	mg_labels_clear(&ls);
	mg_labels_clear(&ls2);
	mg_identity_table_free(t);
}

static CU_TestInfo tests[] = {
        {"labels_add_sorted", test_labels_add_sorted},
        {"labels_add_str", test_labels_add_str},
        {"labels_parse_format", test_labels_parse_format},
        {"labels_parse_errors", test_labels_parse_errors},
        {"labels_find_copy_equal", test_labels_find_copy_equal},
        {"reserved", test_reserved},
        {"cluster_bits", test_cluster_bits},
        {"local_scope", test_local_scope},
        {"table_basic", test_table_basic},
        {"table_100k", test_table_100k},
        {"named_ports", test_named_ports},
        CU_TEST_INFO_NULL,
};

MG_TEST_MAIN("identity", tests)
