/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target of lib/kvstore's data model: what the sync client and
 * the tools read from Redis, written by Cilium's agents, KVStoreMesh or the
 * replicator. The first input byte picks the decoder, the rest is its
 * input: 0 an identity value (Cilium's label string), 1 an ipcache value
 * (IPIdentityPair JSON), 2 a cluster config (CiliumClusterConfig JSON), 3 an
 * RFC 3339 time, 4 an identity key, 5 an ipcache key (both scopes).
 * Besides surviving any input under ASan/UBSan without a leak, every
 * accepted value must survive a round trip: encoded (or formatted) again,
 * it decodes to the same thing, and a key parsed and built again parses to
 * the same identity or prefix. A refused value comes with a message.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h> /* AF_INET, AF_INET6: the families mg_pkt.h numbers alike */

#include "mg_kvstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                          \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
			        #cond);                                                      \
			abort();                                                             \
		}                                                                            \
	} while (0)

static void
identity_value(const char *s, size_t n)
{
	struct mg_labels ls = MG_LABELS_INIT, again = MG_LABELS_INIT;
	struct mg_error err = {{0}};
	char *text;
	int rc;

	rc = mg_kv_identity_value_decode(s, n, &ls, &err);
	if (rc < 0) {
		CHECK(rc == -ENOMEM || (rc == -EINVAL && err.msg[0] != '\0'));
		CHECK(ls.n == 0);
		mg_labels_clear(&ls);
		return;
	}
	CHECK(ls.n >= 1);
	/* Cilium's canonical form of what was read reads back the same */
	text = mg_labels_format(&ls);
	CHECK(text != NULL);
	CHECK(mg_kv_identity_value_decode(text, strlen(text), &again, &err) == 0);
	CHECK(mg_labels_equal(&ls, &again));
	free(text);
	mg_labels_clear(&again);
	mg_labels_clear(&ls);
}

static void
check_same_pair(const struct mg_kv_ip_pair *a, const struct mg_kv_ip_pair *b)
{
	CHECK(a->prefix.family == b->prefix.family && a->prefix.plen == b->prefix.plen);
	CHECK(memcmp(a->prefix.addr, b->prefix.addr, sizeof(a->prefix.addr)) == 0);
	CHECK(a->prefix.identity == b->prefix.identity);
	CHECK(a->host_route == b->host_route && a->key == b->key);
	CHECK(strcmp(a->host_ip, b->host_ip) == 0);
	CHECK(strcmp(a->metadata, b->metadata) == 0);
	CHECK(strcmp(a->k8s_namespace, b->k8s_namespace) == 0);
	CHECK(strcmp(a->k8s_pod_name, b->k8s_pod_name) == 0);
	CHECK(a->n_named_ports == b->n_named_ports && b->n_dropped_ports == 0);
	for (size_t i = 0; i < a->n_named_ports; i++) {
		CHECK(strcmp(a->named_ports[i].name, b->named_ports[i].name) == 0);
		CHECK(a->named_ports[i].proto == b->named_ports[i].proto);
		CHECK(a->named_ports[i].port == b->named_ports[i].port);
	}
}

static void
ip_value(const char *s, size_t n)
{
	struct mg_kv_ip_pair p, q;
	struct mg_error err = {{0}};
	char *json;
	int rc;

	memset(&p, 0, sizeof(p));
	rc = mg_kv_ip_pair_decode(s, n, &p, &err);
	if (rc < 0) {
		CHECK(rc == -ENOMEM || (rc == -EINVAL && err.msg[0] != '\0'));
		CHECK(p.named_ports == NULL && p.n_named_ports == 0);
		return;
	}
	CHECK(p.prefix.family == AF_INET || p.prefix.family == AF_INET6);
	CHECK(p.prefix.plen <= (p.prefix.family == AF_INET ? 32 : 128));
	CHECK(p.prefix.identity <= MG_ID_MAX);
	CHECK(p.n_named_ports <= MG_KV_IP_MAX_NAMED_PORTS);
	json = mg_kv_ip_pair_encode(&p);
	if (p.prefix.identity == 0) {
		/* read (and skipped by a reader), never written */
		CHECK(json == NULL && errno == EINVAL);
		mg_kv_ip_pair_clear(&p);
		return;
	}
	CHECK(json != NULL);
	memset(&q, 0, sizeof(q));
	CHECK(mg_kv_ip_pair_decode(json, strlen(json), &q, &err) == 0);
	check_same_pair(&p, &q);
	free(json);
	mg_kv_ip_pair_clear(&q);
	mg_kv_ip_pair_clear(&p);
}

static void
cluster_config(const char *s, size_t n)
{
	struct mg_kv_cluster_config c, d;
	struct mg_error err = {{0}};
	char *json;
	int rc;

	memset(&c, 0, sizeof(c));
	rc = mg_kv_cluster_config_decode(s, n, &c, &err);
	if (rc < 0) {
		CHECK(rc == -ENOMEM || (rc == -EINVAL && err.msg[0] != '\0'));
		return;
	}
	/* the encoder takes what a reader accepts: a valid id for its mode */
	json = mg_kv_cluster_config_encode(&c);
	if (c.id == 0 || (c.max_connected_clusters != 255 && c.max_connected_clusters != 511) ||
	    c.id > c.max_connected_clusters) {
		free(json);
		return;
	}
	CHECK(json != NULL);
	memset(&d, 0, sizeof(d));
	CHECK(mg_kv_cluster_config_decode(json, strlen(json), &d, &err) == 0);
	CHECK(c.id == d.id && c.synced_canaries == d.synced_canaries && c.cached == d.cached);
	CHECK(c.max_connected_clusters == d.max_connected_clusters);
	free(json);
}

static void
time_value(const char *s, size_t n)
{
	int64_t t = 0;

	if (mg_kv_time_parse(s, n, &t) == 0) {
		/* years 0000-9999, offsets within a day */
		CHECK(t >= -62167219200LL - 86400 && t <= 253402300799LL + 86400);
	}
}

static void
keys(const char *s, enum mg_kv_scope scope)
{
	static const char *const clusters[] = {"cluster-1", "default", "c"};
	char buf[MG_KV_KEY_MAX];

	for (size_t i = 0; i < sizeof(clusters) / sizeof(clusters[0]); i++) {
		struct mg_ipcache_entry e, f;
		bool host, host2;
		uint32_t id, id2;

		if (mg_kv_identity_key_parse(s, scope, clusters[i], &id) == 0) {
			CHECK(mg_kv_identity_key(buf, sizeof(buf), scope, clusters[i], id) > 0);
			CHECK(mg_kv_identity_key_parse(buf, scope, clusters[i], &id2) == 0);
			CHECK(id == id2);
		}
		memset(&e, 0, sizeof(e));
		if (mg_kv_ip_key_parse(s, scope, clusters[i], &e, &host) == 0) {
			CHECK(e.family == AF_INET || e.family == AF_INET6);
			CHECK(e.plen <= (e.family == AF_INET ? 32 : 128));
			CHECK(!host || e.plen == (e.family == AF_INET ? 32 : 128));
			CHECK(mg_kv_ip_key(buf, sizeof(buf), scope, clusters[i], &e, host) > 0);
			memset(&f, 0, sizeof(f));
			CHECK(mg_kv_ip_key_parse(buf, scope, clusters[i], &f, &host2) == 0);
			CHECK(host == host2 && e.family == f.family && e.plen == f.plen);
			CHECK(memcmp(e.addr, f.addr, sizeof(e.addr)) == 0);
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data + 1;
	size_t n = size ? size - 1 : 0;
	char *z;

	if (size == 0)
		return 0;
	switch (data[0] % 6) {
	case 0:
		identity_value(s, n);
		break;
	case 1:
		ip_value(s, n);
		break;
	case 2:
		cluster_config(s, n);
		break;
	case 3:
		time_value(s, n);
		break;
	default:
		/* keys are C strings: the input up to its first NUL */
		z = strndup(s, n);
		CHECK(z != NULL);
		keys(z, data[0] % 6 == 4 ? MG_KV_SCOPE_STATE : MG_KV_SCOPE_CACHE);
		free(z);
		break;
	}
	return 0;
}
