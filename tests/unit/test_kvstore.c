/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of lib/kvstore's data model: every key kind built and parsed
 * back, Cilium-compatible IPIdentityPair and cluster-config JSON (examples
 * in the form Cilium's Go encoder writes them), and every rejection of the
 * strict decoders.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "kv_strs.h"
#include "mg_kvstore.h"
#include "mg_test.h"

static void
test_cluster_names(void)
{
	CU_ASSERT_TRUE(mg_kv_cluster_name_valid("a"));
	CU_ASSERT_TRUE(mg_kv_cluster_name_valid("cluster-1"));
	CU_ASSERT_TRUE(mg_kv_cluster_name_valid("abcdefghijklmnopqrstuvwxyz012345"));
	CU_ASSERT_FALSE(mg_kv_cluster_name_valid("abcdefghijklmnopqrstuvwxyz0123456"));
	CU_ASSERT_FALSE(mg_kv_cluster_name_valid(""));
	CU_ASSERT_FALSE(mg_kv_cluster_name_valid(NULL));
	CU_ASSERT_FALSE(mg_kv_cluster_name_valid("-a"));
	CU_ASSERT_FALSE(mg_kv_cluster_name_valid("a-"));
	CU_ASSERT_FALSE(mg_kv_cluster_name_valid("A"));
	CU_ASSERT_FALSE(mg_kv_cluster_name_valid("a/b"));
	CU_ASSERT_FALSE(mg_kv_cluster_name_valid("a_b"));
}

static void
test_identity_keys(void)
{
	char buf[MG_KV_KEY_MAX];
	uint32_t id = 0;

	CU_ASSERT_EQUAL(mg_kv_identity_key(buf, sizeof(buf), MG_KV_SCOPE_STATE, NULL, 12345), 35);
	CU_ASSERT_STRING_EQUAL(buf, "cilium/state/identities/v1/id/12345");
	CU_ASSERT_EQUAL(mg_kv_identity_key_parse(buf, MG_KV_SCOPE_STATE, NULL, &id), 0);
	CU_ASSERT_EQUAL(id, 12345);

	CU_ASSERT(mg_kv_identity_key(buf, sizeof(buf), MG_KV_SCOPE_CACHE, "east", 65536 + 7) > 0);
	CU_ASSERT_STRING_EQUAL(buf, "cilium/cache/identities/v1/east/id/65543");
	CU_ASSERT_EQUAL(mg_kv_identity_key_parse(buf, MG_KV_SCOPE_CACHE, "east", &id), 0);
	CU_ASSERT_EQUAL(id, 65543);
	/* Another cluster's cache, or the state scope, is not this key. */
	CU_ASSERT_EQUAL(mg_kv_identity_key_parse(buf, MG_KV_SCOPE_CACHE, "west", &id), -EINVAL);
	CU_ASSERT_EQUAL(mg_kv_identity_key_parse(buf, MG_KV_SCOPE_STATE, NULL, &id), -EINVAL);

	/* Local-scope maximum is accepted; 0 and above MG_ID_MAX are not. */
	CU_ASSERT(mg_kv_identity_key(buf, sizeof(buf), MG_KV_SCOPE_STATE, NULL, MG_ID_MAX) > 0);
	CU_ASSERT_EQUAL(mg_kv_identity_key(buf, sizeof(buf), MG_KV_SCOPE_STATE, NULL, 0), -EINVAL);
	CU_ASSERT_EQUAL(
	        mg_kv_identity_key(buf, sizeof(buf), MG_KV_SCOPE_STATE, NULL, MG_ID_MAX + 1),
	        -EINVAL);
	CU_ASSERT_EQUAL(mg_kv_identity_key(buf, sizeof(buf), MG_KV_SCOPE_CACHE, "Bad", 1), -EINVAL);
	CU_ASSERT_EQUAL(mg_kv_identity_key(buf, 10, MG_KV_SCOPE_STATE, NULL, 1), -ENAMETOOLONG);

	static const char *const bad[] = {
	        "cilium/state/identities/v1/id/",
	        "cilium/state/identities/v1/id/0",
	        "cilium/state/identities/v1/id/007",
	        "cilium/state/identities/v1/id/12a",
	        "cilium/state/identities/v1/id/-1",
	        "cilium/state/identities/v1/id/99999999999",
	        "cilium/state/identities/v1/id/33554432",
	        "cilium/state/identities/v1/x/5",
	        "cilium/state/identities/v1id/5",
	        "cilium/state/ip/v1/default/10.0.0.1",
	        "",
	};
	for (size_t i = 0; i < MG_ARRAY_SIZE(bad); i++)
		CU_ASSERT_EQUAL(mg_kv_identity_key_parse(bad[i], MG_KV_SCOPE_STATE, NULL, &id),
		                -EINVAL);
}

static void
test_ip_keys(void)
{
	char buf[MG_KV_KEY_MAX];
	struct mg_ipcache_entry e;
	bool host = false;

	CU_ASSERT_EQUAL(mg_kv_ip_key_parse("cilium/state/ip/v1/default/10.1.2.3", MG_KV_SCOPE_STATE,
	                                   NULL, &e, &host),
	                0);
	CU_ASSERT_EQUAL(e.family, 2);
	CU_ASSERT_EQUAL(e.plen, 32);
	CU_ASSERT_TRUE(host);
	CU_ASSERT_EQUAL(memcmp(e.addr, "\x0a\x01\x02\x03", 4), 0);
	CU_ASSERT(mg_kv_ip_key(buf, sizeof(buf), MG_KV_SCOPE_STATE, NULL, &e, true) > 0);
	CU_ASSERT_STRING_EQUAL(buf, "cilium/state/ip/v1/default/10.1.2.3");
	CU_ASSERT(mg_kv_ip_key(buf, sizeof(buf), MG_KV_SCOPE_STATE, NULL, &e, false) > 0);
	CU_ASSERT_STRING_EQUAL(buf, "cilium/state/ip/v1/default/10.1.2.3/32");
	CU_ASSERT_EQUAL(mg_kv_ip_key_parse(buf, MG_KV_SCOPE_STATE, NULL, &e, &host), 0);
	CU_ASSERT_FALSE(host);
	CU_ASSERT_EQUAL(e.plen, 32);

	CU_ASSERT_EQUAL(mg_kv_ip_key_parse("cilium/cache/ip/v1/west/fd00::/64", MG_KV_SCOPE_CACHE,
	                                   "west", &e, &host),
	                0);
	CU_ASSERT_EQUAL(e.family, 10);
	CU_ASSERT_EQUAL(e.plen, 64);
	CU_ASSERT_FALSE(host);
	CU_ASSERT(mg_kv_ip_key(buf, sizeof(buf), MG_KV_SCOPE_CACHE, "west", &e, false) > 0);
	CU_ASSERT_STRING_EQUAL(buf, "cilium/cache/ip/v1/west/fd00::/64");
	/* A /64 cannot be written as a host route. */
	CU_ASSERT_EQUAL(mg_kv_ip_key(buf, sizeof(buf), MG_KV_SCOPE_CACHE, "west", &e, true),
	                -EINVAL);
	/* Host bits set: rejected by the builder. */
	e.addr[15] = 1;
	CU_ASSERT_EQUAL(mg_kv_ip_key(buf, sizeof(buf), MG_KV_SCOPE_CACHE, "west", &e, false),
	                -EINVAL);

	static const char *const bad[] = {
	        "cilium/state/ip/v1/default/",
	        "cilium/state/ip/v1/default/10.0.0.256",
	        "cilium/state/ip/v1/default/10.0.0.1/",
	        "cilium/state/ip/v1/default/10.0.0.1/33",
	        "cilium/state/ip/v1/default/10.0.0.1/24",
	        "cilium/state/ip/v1/default/10.0.0.0/08",
	        "cilium/state/ip/v1/default/10.0.0.0/8/1",
	        "cilium/state/ip/v1/default/fd00::/129",
	        "cilium/state/ip/v1/default/fd00:::1",
	        "cilium/state/ip/v1/other/10.0.0.1",
	        "cilium/state/ip/v1/10.0.0.1",
	        "cilium/cache/ip/v1/west/10.0.0.1",
	};
	for (size_t i = 0; i < MG_ARRAY_SIZE(bad); i++)
		CU_ASSERT_EQUAL(mg_kv_ip_key_parse(bad[i], MG_KV_SCOPE_STATE, NULL, &e, &host),
		                -EINVAL);
	CU_ASSERT_EQUAL(mg_kv_ip_key_parse("cilium/cache/ip/v1/west/10.0.0.1", MG_KV_SCOPE_CACHE,
	                                   "east", &e, &host),
	                -EINVAL);
}

static void
test_other_keys(void)
{
	char buf[MG_KV_KEY_MAX];

	CU_ASSERT(mg_kv_cluster_config_key(buf, sizeof(buf), "c1") > 0);
	CU_ASSERT_STRING_EQUAL(buf, "cilium/cluster-config/c1");
	CU_ASSERT(mg_kv_synced_key(buf, sizeof(buf), "c1", MG_KV_STATE_IDENTITIES) > 0);
	CU_ASSERT_STRING_EQUAL(buf, "cilium/synced/c1/cilium/state/identities/v1");
	CU_ASSERT(mg_kv_log_key(buf, sizeof(buf), "c1") > 0);
	CU_ASSERT_STRING_EQUAL(buf, "meshgate/log/c1");
	CU_ASSERT(mg_kv_epoch_key(buf, sizeof(buf), "c1") > 0);
	CU_ASSERT_STRING_EQUAL(buf, "meshgate/epoch/c1");
	CU_ASSERT(mg_kv_removed_key(buf, sizeof(buf), "c1") > 0);
	CU_ASSERT_STRING_EQUAL(buf, "meshgate/removed/c1");
	CU_ASSERT(mg_kv_heartbeat_key(buf, sizeof(buf), "c1") > 0);
	CU_ASSERT_STRING_EQUAL(buf, "meshgate/heartbeat/c1");
	CU_ASSERT_EQUAL(mg_kv_heartbeat_key(buf, sizeof(buf), "-c1"), -EINVAL);
	CU_ASSERT_EQUAL(mg_kv_cluster_config_key(buf, sizeof(buf), "C1"), -EINVAL);
	CU_ASSERT_EQUAL(mg_kv_synced_key(buf, sizeof(buf), "c1", ""), -EINVAL);
	CU_ASSERT_EQUAL(mg_kv_log_key(buf, sizeof(buf), NULL), -EINVAL);
	CU_ASSERT_EQUAL(mg_kv_epoch_key(buf, 5, "c1"), -ENAMETOOLONG);
}

static void
test_identity_value(void)
{
	struct mg_labels ls = MG_LABELS_INIT;
	struct mg_error err;
	const char *v = "k8s:app=web;k8s:io.kubernetes.pod.namespace=default;";

	CU_ASSERT_EQUAL(mg_kv_identity_value_decode(v, strlen(v), &ls, &err), 0);
	CU_ASSERT_EQUAL(ls.n, 2);
	mg_labels_clear(&ls);
	CU_ASSERT_EQUAL(mg_kv_identity_value_decode("", 0, &ls, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "empty"));
	CU_ASSERT_EQUAL(mg_kv_identity_value_decode("k8s:a=b;\0x", 10, &ls, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "NUL"));
	CU_ASSERT_EQUAL(mg_kv_identity_value_decode("k8s:a=b;;", 9, &ls, &err), -EINVAL);
	mg_labels_clear(&ls);
}

/* What Cilium's agent writes for a pod (Go's json.Marshal of IPIdentityPair). */
static const char cilium_pod[] =
        "{\"IP\":\"10.0.1.200\",\"Mask\":null,\"HostIP\":\"172.18.0.3\",\"ID\":48861,\"Key\":0,"
        "\"Metadata\":\"cilium-global:default:wluo-mvz4t:798c2fec\",\"K8sNamespace\":\"default\","
        "\"K8sPodName\":\"wluo-mvz4t\",\"NamedPorts\":[{\"Name\":\"http\",\"Port\":80,"
        "\"Protocol\":\"TCP\"},{\"Name\":\"dns\",\"Port\":53,\"Protocol\":\"UDP\"}]}";

static void
test_ip_pair_cilium(void)
{
	struct mg_kv_ip_pair p;
	struct mg_error err;
	char *s;

	CU_ASSERT_EQUAL_FATAL(mg_kv_ip_pair_decode(cilium_pod, strlen(cilium_pod), &p, &err), 0);
	CU_ASSERT_EQUAL(p.prefix.family, 2);
	CU_ASSERT_EQUAL(p.prefix.plen, 32);
	CU_ASSERT_EQUAL(p.prefix.identity, 48861);
	CU_ASSERT_TRUE(p.host_route);
	CU_ASSERT_STRING_EQUAL(p.host_ip, "172.18.0.3");
	CU_ASSERT_STRING_EQUAL(p.k8s_namespace, "default");
	CU_ASSERT_STRING_EQUAL(p.k8s_pod_name, "wluo-mvz4t");
	CU_ASSERT_EQUAL_FATAL(p.n_named_ports, 2);
	CU_ASSERT_STRING_EQUAL(p.named_ports[0].name, "http");
	CU_ASSERT_EQUAL(p.named_ports[0].port, 80);
	CU_ASSERT_EQUAL(p.named_ports[0].proto, 6);
	CU_ASSERT_EQUAL(p.named_ports[1].proto, 17);
	/* Byte-identical re-encoding: same field order, same forms. */
	s = mg_kv_ip_pair_encode(&p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_STRING_EQUAL(s, cilium_pod);
	free(s);
	mg_kv_ip_pair_clear(&p);

	/* A CIDR entry (Go: Mask is base64 of net.CIDRMask(24, 32)). */
	static const char cidr[] = "{\"IP\":\"192.168.10.0\",\"Mask\":\"////AA==\",\"HostIP\":\"\","
	                           "\"ID\":16777217,\"Key\":0,\"Metadata\":\"\"}";
	CU_ASSERT_EQUAL_FATAL(mg_kv_ip_pair_decode(cidr, strlen(cidr), &p, &err), 0);
	CU_ASSERT_FALSE(p.host_route);
	CU_ASSERT_EQUAL(p.prefix.plen, 24);
	CU_ASSERT_EQUAL(p.prefix.identity, 16777217);
	s = mg_kv_ip_pair_encode(&p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_STRING_EQUAL(s, cidr);
	free(s);
	mg_kv_ip_pair_clear(&p);

	/* IPv6 /64, the older NamedPorts map form, unknown fields ignored. */
	static const char v6[] =
	        "{\"IP\":\"fd00:1::\",\"Mask\":\"//////////8AAAAAAAAAAA==\","
	        "\"ID\":300,\"Key\":3,\"Future\":[1,2],"
	        "\"NamedPorts\":{\"metrics\":{\"Port\":9090,\"Protocol\":\"tcp\"}}}";
	CU_ASSERT_EQUAL_FATAL(mg_kv_ip_pair_decode(v6, strlen(v6), &p, &err), 0);
	CU_ASSERT_EQUAL(p.prefix.family, 10);
	CU_ASSERT_EQUAL(p.prefix.plen, 64);
	CU_ASSERT_EQUAL(p.key, 3);
	CU_ASSERT_EQUAL_FATAL(p.n_named_ports, 1);
	CU_ASSERT_EQUAL(p.named_ports[0].port, 9090);
	s = mg_kv_ip_pair_encode(&p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_STRING_EQUAL(s, "{\"IP\":\"fd00:1::\",\"Mask\":\"//////////8AAAAAAAAAAA==\","
	                          "\"HostIP\":\"\",\"ID\":300,\"Key\":3,\"Metadata\":\"\","
	                          "\"NamedPorts\":[{\"Name\":\"metrics\",\"Port\":9090,"
	                          "\"Protocol\":\"TCP\"}]}");
	free(s);
	mg_kv_ip_pair_clear(&p);
}

static void
test_ip_pair_round_trip(void)
{
	struct mg_kv_ip_pair p, q;
	struct mg_named_port np = {"web", 6, 8080};
	struct mg_error err;
	char *s;

	for (unsigned plen = 0; plen <= 128; plen++) {
		memset(&p, 0, sizeof(p));
		p.prefix.family = 10;
		p.prefix.plen = (uint8_t)plen;
		for (unsigned i = 0; i < plen; i++)
			p.prefix.addr[i / 8] |= (uint8_t)(0x80u >> (i % 8));
		p.prefix.identity = 1000 + plen;
		p.named_ports = &np;
		p.n_named_ports = 1;
		s = mg_kv_ip_pair_encode(&p);
		CU_ASSERT_PTR_NOT_NULL_FATAL(s);
		CU_ASSERT_EQUAL_FATAL(mg_kv_ip_pair_decode(s, strlen(s), &q, &err), 0);
		CU_ASSERT_EQUAL(q.prefix.plen, plen);
		CU_ASSERT_EQUAL(memcmp(q.prefix.addr, p.prefix.addr, 16), 0);
		CU_ASSERT_EQUAL(q.prefix.identity, 1000 + plen);
		CU_ASSERT_EQUAL(q.n_named_ports, 1);
		free(s);
		mg_kv_ip_pair_clear(&q);
	}
	/* Encoder rejections. */
	memset(&p, 0, sizeof(p));
	p.prefix.family = 2;
	p.prefix.plen = 24;
	p.prefix.identity = 5;
	p.host_route = true; /* a /24 cannot be a host route */
	errno = 0;
	CU_ASSERT_PTR_NULL(mg_kv_ip_pair_encode(&p));
	CU_ASSERT_EQUAL(errno, EINVAL);
	p.host_route = false;
	p.prefix.identity = 0;
	CU_ASSERT_PTR_NULL(mg_kv_ip_pair_encode(&p));
	p.prefix.identity = 5;
	np.proto = 1;
	p.named_ports = &np;
	p.n_named_ports = 1;
	CU_ASSERT_PTR_NULL(mg_kv_ip_pair_encode(&p));
}

static void
test_ip_pair_rejects(void)
{
	static const struct {
		const char *json, *msg;
	} bad[] = {
	        {"", "invalid JSON"},
	        {"{", "invalid JSON"},
	        {"[]", "expected a JSON object"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"ID\":6}", "invalid JSON"},
	        {"{\"ID\":5}", "missing \"IP\""},
	        {"{\"IP\":5,\"ID\":5}", "\"IP\" must be a string"},
	        {"{\"IP\":\"10.0.0.300\",\"ID\":5}", "not an address"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":33554432}", "out of range"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":-1}", "out of range"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":1.5}", "must be an integer"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":\"5\"}", "must be an integer"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"Key\":256}", "out of range"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"Mask\":5}", "base64 or null"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"Mask\":\"////\"}", "bits set beyond /24"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"Mask\":\"//8=\"}", "bits set beyond /16"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"Mask\":\"!!!!AA==\"}", "base64 of at most 16"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"Mask\":\"/w=A/w==\"}", "base64 of at most 16"},
	        {"{\"IP\":\"10.0.0.0\",\"ID\":5,\"Mask\":\"/wD/AA==\"}", "not a contiguous"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"Mask\":\"////AA==\"}", "bits set beyond /24"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"HostIP\":\"node1\"}", "\"HostIP\""},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"HostIP\":7}", "\"HostIP\" must be a string"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"Metadata\":[]}", "\"Metadata\" must be a string"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"K8sPodName\":\"a\\u0000b\"}", "NUL"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"NamedPorts\":5}", "array or an object"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"NamedPorts\":[5]}", "NamedPorts[0]"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"NamedPorts\":[{\"Name\":\"a\",\"Port\":70000,"
	         "\"Protocol\":\"TCP\"}]}",
	         "Port must be"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"NamedPorts\":{\"a\":1}}", "must be an object"},
	};
	struct mg_kv_ip_pair p;
	struct mg_error err;

	for (size_t i = 0; i < MG_ARRAY_SIZE(bad); i++) {
		memset(&err, 0, sizeof(err));
		CU_ASSERT_EQUAL(mg_kv_ip_pair_decode(bad[i].json, strlen(bad[i].json), &p, &err),
		                -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, bad[i].msg));
		if (strstr(err.msg, bad[i].msg) == NULL)
			fprintf(stderr, "rejects[%zu]: %s\n", i, err.msg);
		CU_ASSERT_PTR_NULL(p.named_ports);
		CU_ASSERT_EQUAL(p.n_named_ports, 0);
	}
}

/*
 * The decoder's fast path (common shape, no jansson tree) and its jansson
 * fallback must agree: same results for the forms only the fallback
 * handles (escapes, non-ASCII, unknown fields, whitespace, other field
 * orders), same errors for the values the fast path passes on.
 */
static void
test_ip_pair_fast_path(void)
{
	static const struct {
		const char *json;
		uint32_t id;
		uint8_t plen;
		size_t nports;
		const char *meta;
	} good[] = {
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5}", 5, 32, 0, ""},
	        {" \t\r\n{ \"ID\" : 7 , \"IP\" : \"10.0.0.1\" } \n", 7, 32, 0, ""},
	        {"{\"IP\":\"10.0.0.\\u0031\",\"ID\":5}", 5, 32, 0, ""},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"Metadata\":\"caf\xc3\xa9\"}", 5, 32, 0,
	         "caf\xc3\xa9"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"Metadata\":\"a\\\"b\"}", 5, 32, 0, "a\"b"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"Metadata\":null,\"HostIP\":null}", 5, 32, 0, ""},
	        {"{\"IP\":\"10.0.0.0\",\"Mask\":\"//8AAA==\",\"ID\":16777217,\"Key\":0}", 16777217,
	         16, 0, ""},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"Other\":{\"a\":[1,2]},\"Key\":9}", 5, 32, 0, ""},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"NamedPorts\":[]}", 5, 32, 0, ""},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"NamedPorts\":null}", 5, 32, 0, ""},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"NamedPorts\":[{\"Protocol\":\"udp\","
	         "\"Port\":53,\"Name\":\"dns\"},{\"Name\":\"http\",\"Port\":80,"
	         "\"Protocol\":\"TCP\",\"Extra\":1}]}",
	         5, 32, 2, ""},
	        {"{\"IP\":\"fd00::1\",\"ID\":33554431}", 33554431, 128, 0, ""},
	};
	static const struct {
		const char *json, *msg;
	} bad[] = {
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5} x", "invalid JSON"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":05}", "invalid JSON"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,}", "invalid JSON"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"IP\":\"10.0.0.2\"}", "invalid JSON"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"Metadata\":\"a\tb\"}", "invalid JSON"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5.0}", "must be an integer"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5e1}", "must be an integer"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"Key\":null}", "must be an integer"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":99999999999}", "out of range"},
	        {"{\"IP\":null,\"ID\":5}", "missing \"IP\""},
	        {"{\"IP\":\"\",\"ID\":5}", "not an address"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"Mask\":\"\"}", "bits set beyond /0"},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"HostIP\":\"x\"}", "\"HostIP\""},
	        {"{\"IP\":\"10.0.0.1\",\"ID\":5,\"NamedPorts\":[{\"Name\":\"a\",\"Port\":\"80\","
	         "\"Protocol\":\"TCP\"}]}",
	         "Port must be"},
	};
	struct mg_kv_ip_pair p;
	struct mg_error err;

	for (size_t i = 0; i < MG_ARRAY_SIZE(good); i++) {
		int rc = mg_kv_ip_pair_decode(good[i].json, strlen(good[i].json), &p, &err);
		CU_ASSERT_EQUAL(rc, 0);
		if (rc != 0) {
			fprintf(stderr, "good[%zu]: %s\n", i, err.msg);
			continue;
		}
		CU_ASSERT_EQUAL(p.prefix.identity, good[i].id);
		CU_ASSERT_EQUAL(p.prefix.plen, good[i].plen);
		CU_ASSERT_EQUAL(p.n_named_ports, good[i].nports);
		CU_ASSERT_STRING_EQUAL(p.metadata, good[i].meta);
		mg_kv_ip_pair_clear(&p);
	}
	for (size_t i = 0; i < MG_ARRAY_SIZE(bad); i++) {
		memset(&err, 0, sizeof(err));
		CU_ASSERT_EQUAL(mg_kv_ip_pair_decode(bad[i].json, strlen(bad[i].json), &p, &err),
		                -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, bad[i].msg));
		if (strstr(err.msg, bad[i].msg) == NULL)
			fprintf(stderr, "bad[%zu]: %s\n", i, err.msg);
		CU_ASSERT_PTR_NULL(p.named_ports);
	}
	/* The fast path's named ports: sorted as given, protocols mapped. */
	static const char two[] =
	        "{\"IP\":\"10.0.0.1\",\"ID\":5,\"NamedPorts\":[{\"Name\":\"http\","
	        "\"Port\":80,\"Protocol\":\"TCP\"},{\"Name\":\"dns\",\"Port\":53,"
	        "\"Protocol\":\"SCTP\"}]}";
	CU_ASSERT_EQUAL_FATAL(mg_kv_ip_pair_decode(two, strlen(two), &p, &err), 0);
	CU_ASSERT_EQUAL_FATAL(p.n_named_ports, 2);
	CU_ASSERT_STRING_EQUAL(p.named_ports[0].name, "http");
	CU_ASSERT_EQUAL(p.named_ports[0].port, 80);
	CU_ASSERT_EQUAL(p.named_ports[1].proto, 132);
	CU_ASSERT_TRUE(p.host_route);
	mg_kv_ip_pair_clear(&p);
	/* A value that is not NUL-terminated at len (Redis replies are binary). */
	static const char padded[] = "{\"IP\":\"10.0.0.1\",\"ID\":5}GARBAGE";
	CU_ASSERT_EQUAL(mg_kv_ip_pair_decode(padded, strlen(padded) - 7, &p, &err), 0);
	CU_ASSERT_EQUAL(p.prefix.identity, 5);
	mg_kv_ip_pair_clear(&p);
}

static void
test_cluster_config(void)
{
	struct mg_kv_cluster_config c = {.id = 7, .synced_canaries = true, .cached = false};
	struct mg_error err;
	char *s;

	s = mg_kv_cluster_config_encode(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_STRING_EQUAL(s, "{\"id\":7,\"capabilities\":{\"syncedCanaries\":true,"
	                          "\"cached\":false,\"maxConnectedClusters\":255}}");
	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(mg_kv_cluster_config_decode(s, strlen(s), &c, &err), 0);
	CU_ASSERT_EQUAL(c.id, 7);
	CU_ASSERT_TRUE(c.synced_canaries);
	CU_ASSERT_FALSE(c.cached);
	CU_ASSERT_EQUAL(c.max_connected_clusters, 255);
	free(s);

	/* Cilium 1.14 form (no cached, no maxConnectedClusters) and 511 mode. */
	static const char old[] = "{\"id\":3,\"capabilities\":{\"syncedCanaries\":true}}";
	CU_ASSERT_EQUAL(mg_kv_cluster_config_decode(old, strlen(old), &c, &err), 0);
	CU_ASSERT_EQUAL(c.id, 3);
	CU_ASSERT_EQUAL(c.max_connected_clusters, 255);
	static const char m511[] = "{\"id\":400,\"capabilities\":{\"maxConnectedClusters\":511,"
	                           "\"cached\":true}}";
	CU_ASSERT_EQUAL(mg_kv_cluster_config_decode(m511, strlen(m511), &c, &err), 0);
	CU_ASSERT_EQUAL(c.id, 400);
	CU_ASSERT_TRUE(c.cached);
	s = mg_kv_cluster_config_encode(&c);
	CU_ASSERT_PTR_NOT_NULL(s);
	free(s);

	static const char *const bad[] = {
	        "{\"id\":\"1\"}",
	        "{\"id\":-1}",
	        "{\"id\":1.5}",
	        "{\"id\":4294967296}",
	        "{\"id\":true}",
	        "{\"id\":1,\"capabilities\":[]}",
	        "{\"id\":1,\"capabilities\":{\"cached\":1}}",
	        "{\"id\":1,\"capabilities\":{\"maxConnectedClusters\":true}}",
	        "null",
	        "{\"id\":1",
	};
	for (size_t i = 0; i < MG_ARRAY_SIZE(bad); i++) {
		err.msg[0] = '\0';
		CU_ASSERT_EQUAL(mg_kv_cluster_config_decode(bad[i], strlen(bad[i]), &c, &err),
		                -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "cluster config"));
	}
	c.id = 0;
	c.max_connected_clusters = 0;
	CU_ASSERT_PTR_NULL(mg_kv_cluster_config_encode(&c));
	c.id = 300;
	CU_ASSERT_PTR_NULL(mg_kv_cluster_config_encode(&c));
}

/*
 * Cluster configs as Cilium's Go decoder reads CiliumClusterConfig (every
 * field omitempty): no id (KVStoreMesh up to 1.15), an empty object,
 * capabilities or maxConnectedClusters missing or null all decode; the id
 * 0 and the range checks are the reader's (mg_kv_sync_verify.c).
 */
static void
test_cluster_config_cilium(void)
{
	static const struct {
		const char *json;
		unsigned id, max;
		bool canaries, cached;
	} good[] = {
	        {"{}", 0, 255, false, false},
	        {"{\"capabilities\":{\"syncedCanaries\":true,\"cached\":true}}", 0, 255, true,
	         true},
	        {"{\"id\":0,\"capabilities\":{\"syncedCanaries\":true}}", 0, 255, true, false},
	        {"{\"id\":null,\"capabilities\":null}", 0, 255, false, false},
	        {"{\"id\":5}", 5, 255, false, false},
	        {"{\"id\":5,\"capabilities\":{}}", 5, 255, false, false},
	        {"{\"id\":5,\"capabilities\":{\"maxConnectedClusters\":null,\"cached\":null}}", 5,
	         255, false, false},
	        {"{\"id\":5,\"capabilities\":{\"maxConnectedClusters\":0}}", 5, 255, false, false},
	        {"{\"id\":300,\"capabilities\":{\"maxConnectedClusters\":255}}", 300, 255, false,
	         false},
	        {"{\"id\":7,\"capabilities\":{\"maxConnectedClusters\":1000}}", 7, 1000, false,
	         false},
	        {"{\"id\":7,\"capabilities\":{\"serviceExportsEnabled\":true},\"x\":[1]}", 7, 255,
	         false, false},
	};
	struct mg_kv_cluster_config c;
	struct mg_error err;

	for (size_t i = 0; i < MG_ARRAY_SIZE(good); i++) {
		int rc = mg_kv_cluster_config_decode(good[i].json, strlen(good[i].json), &c, &err);
		CU_ASSERT_EQUAL(rc, 0);
		if (rc != 0) {
			fprintf(stderr, "good[%zu]: %s\n", i, err.msg);
			continue;
		}
		CU_ASSERT_EQUAL(c.id, good[i].id);
		CU_ASSERT_EQUAL(c.max_connected_clusters, good[i].max);
		CU_ASSERT_EQUAL(c.synced_canaries, good[i].canaries);
		CU_ASSERT_EQUAL(c.cached, good[i].cached);
	}
}

/* An ipcache value with ID 0 (an endpoint without identity yet) decodes; the reader skips it. */
static void
test_ip_pair_id_zero(void)
{
	static const char *const zero[] = {
	        "{\"IP\":\"10.0.0.1\",\"Mask\":null,\"HostIP\":\"172.18.0.3\",\"ID\":0,\"Key\":0,"
	        "\"Metadata\":\"\",\"K8sNamespace\":\"default\",\"K8sPodName\":\"web-1\"}",
	        "{\"IP\":\"10.0.0.1\"}",
	        "{\"IP\":\"10.0.0.1\",\"ID\":null}",
	};
	struct mg_kv_ip_pair p;
	struct mg_error err;

	for (size_t i = 0; i < MG_ARRAY_SIZE(zero); i++) {
		CU_ASSERT_EQUAL(mg_kv_ip_pair_decode(zero[i], strlen(zero[i]), &p, &err), 0);
		CU_ASSERT_EQUAL(p.prefix.identity, 0);
		CU_ASSERT_EQUAL(p.prefix.plen, 32);
		mg_kv_ip_pair_clear(&p);
	}
	/* The encoder still writes only real identities. */
	memset(&p, 0, sizeof(p));
	CU_ASSERT_EQUAL(mg_kv_ip_pair_decode(zero[0], strlen(zero[0]), &p, &err), 0);
	CU_ASSERT_PTR_NULL(mg_kv_ip_pair_encode(&p));
	mg_kv_ip_pair_clear(&p);
}

/*
 * Named ports as Cilium's agent takes them (NamedPortMap.AddPort): a bad
 * one is dropped and counted, the rest of the value is used; a wrong JSON
 * type (or a Port beyond uint16) still fails the whole value, as Go's
 * json.Unmarshal fails it.
 */
static void
test_ip_pair_named_ports_lenient(void)
{
	static const struct {
		const char *ports;
		size_t kept, dropped;
		const char *first; /* name of the first kept port, or NULL */
		uint8_t proto;
		uint16_t port;
	} cases[] = {
	        {"[{\"Name\":\"a\",\"Port\":0,\"Protocol\":\"TCP\"},"
	         "{\"Name\":\"http\",\"Port\":80,\"Protocol\":\"TCP\"}]",
	         1, 1, "http", 6, 80},
	        {"[{\"Name\":\"ping\",\"Port\":1,\"Protocol\":\"ICMP\"},"
	         "{\"Name\":\"dns\",\"Port\":53,\"Protocol\":\"udp\"}]",
	         1, 1, "dns", 17, 53},
	        {"[{\"Name\":\"x\",\"Port\":1,\"Protocol\":\"ANY\"}]", 0, 1, NULL, 0, 0},
	        {"[{\"Name\":\"x\",\"Port\":1,\"Protocol\":\"QUIC\"}]", 0, 1, NULL, 0, 0},
	        {"[{\"Name\":\"\",\"Port\":1,\"Protocol\":\"TCP\"}]", 0, 1, NULL, 0, 0},
	        {"[{\"Name\":\"123\",\"Port\":1,\"Protocol\":\"TCP\"}]", 0, 1, NULL, 0, 0},
	        {"[{\"Name\":\"a--b\",\"Port\":1,\"Protocol\":\"TCP\"}]", 0, 1, NULL, 0, 0},
	        {"[{\"Name\":\"-ab\",\"Port\":1,\"Protocol\":\"TCP\"}]", 0, 1, NULL, 0, 0},
	        {"[{\"Name\":\"abcdefghijklmnop\",\"Port\":1,\"Protocol\":\"TCP\"}]", 0, 1, NULL, 0,
	         0},
	        {"[{\"Name\":\"a_b\",\"Port\":1,\"Protocol\":\"TCP\"}]", 0, 1, NULL, 0, 0},
	        {"[null,{\"Name\":\"http\",\"Port\":80,\"Protocol\":\"TCP\"}]", 1, 1, "http", 6,
	         80},
	        {"[{\"Name\":null,\"Port\":80,\"Protocol\":\"TCP\"}]", 0, 1, NULL, 0, 0},
	        {"[{\"Port\":80,\"Protocol\":\"TCP\"}]", 0, 1, NULL, 0, 0},
	        {"[{\"Name\":\"http\",\"Protocol\":\"TCP\"}]", 0, 1, NULL, 0, 0},
	        /* "" and a missing Protocol are TCP, as in Kubernetes. */
	        {"[{\"Name\":\"http\",\"Port\":80}]", 1, 0, "http", 6, 80},
	        {"[{\"Name\":\"http\",\"Port\":80,\"Protocol\":\"\"}]", 1, 0, "http", 6, 80},
	        {"[{\"Name\":\"http\",\"Port\":80,\"Protocol\":null}]", 1, 0, "http", 6, 80},
	        /* Names are lower-cased; a later port of the same name replaces the earlier. */
	        {"[{\"Name\":\"HTTP\",\"Port\":80,\"Protocol\":\"TCP\"}]", 1, 0, "http", 6, 80},
	        {"[{\"Name\":\"a\",\"Port\":1,\"Protocol\":\"TCP\"},"
	         "{\"Name\":\"A\",\"Port\":2,\"Protocol\":\"UDP\"}]",
	         1, 1, "a", 17, 2},
	        {"{\"Http\":{\"Port\":8080},\"bad\":{\"Port\":0,\"Protocol\":\"TCP\"}}", 1, 1,
	         "http", 6, 8080},
	};
	static const char *const whole[] = {
	        "[{\"Name\":\"a\",\"Port\":70000,\"Protocol\":\"TCP\"}]",
	        "[{\"Name\":\"a\",\"Port\":-1,\"Protocol\":\"TCP\"}]",
	        "[{\"Name\":\"a\",\"Port\":80.5,\"Protocol\":\"TCP\"}]",
	        "[{\"Name\":\"a\",\"Port\":\"80\",\"Protocol\":\"TCP\"}]",
	        "[{\"Name\":7,\"Port\":80,\"Protocol\":\"TCP\"}]",
	        "[{\"Name\":\"a\",\"Port\":80,\"Protocol\":6}]",
	        "[5]",
	        "[[]]",
	};
	struct mg_kv_ip_pair p;
	struct mg_error err;
	char json[512];

	for (size_t i = 0; i < MG_ARRAY_SIZE(cases); i++) {
		snprintf(json, sizeof(json), "{\"IP\":\"10.0.0.1\",\"ID\":5,\"NamedPorts\":%s}",
		         cases[i].ports);
		int rc = mg_kv_ip_pair_decode(json, strlen(json), &p, &err);
		CU_ASSERT_EQUAL(rc, 0);
		if (rc != 0) {
			fprintf(stderr, "cases[%zu]: %s\n", i, err.msg);
			continue;
		}
		CU_ASSERT_EQUAL(p.prefix.identity, 5);
		CU_ASSERT_EQUAL(p.n_named_ports, cases[i].kept);
		CU_ASSERT_EQUAL(p.n_dropped_ports, cases[i].dropped);
		if (p.n_named_ports != cases[i].kept || p.n_dropped_ports != cases[i].dropped)
			fprintf(stderr, "cases[%zu]: kept %zu dropped %zu\n", i, p.n_named_ports,
			        p.n_dropped_ports);
		if (cases[i].first != NULL && p.n_named_ports > 0) {
			CU_ASSERT_STRING_EQUAL(p.named_ports[0].name, cases[i].first);
			CU_ASSERT_EQUAL(p.named_ports[0].proto, cases[i].proto);
			CU_ASSERT_EQUAL(p.named_ports[0].port, cases[i].port);
		}
		mg_kv_ip_pair_clear(&p);
	}
	for (size_t i = 0; i < MG_ARRAY_SIZE(whole); i++) {
		snprintf(json, sizeof(json), "{\"IP\":\"10.0.0.1\",\"ID\":5,\"NamedPorts\":%s}",
		         whole[i]);
		CU_ASSERT_EQUAL(mg_kv_ip_pair_decode(json, strlen(json), &p, &err), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "NamedPorts"));
		CU_ASSERT_PTR_NULL(p.named_ports);
	}
}

/*
 * Masks as Cilium reads them: the prefix length is Go's IPMask.Size()
 * ones of a canonical mask of any byte length (Cilium then requires
 * IP.String()/ones to be the key), so a 16-byte mask of 24 ones is /24
 * for an IPv4 address, 12 bytes of ones then ffffff00 is /120 (no IPv4
 * prefix), and the ::ffff:255.255.255.0 form is not canonical. An IPv4
 * address written IPv4-mapped is the IPv4 address (Go prints it dotted).
 */
static void
test_ip_pair_masks(void)
{
	static const struct {
		const char *ip, *mask;
		uint8_t family, plen;
	} good[] = {
	        {"10.0.0.0", "////AA==", 2, 24},
	        {"10.0.0.0", "////AAAAAAAAAAAAAAAAAA==", 2, 24}, /* 16 bytes, 24 ones */
	        {"10.0.0.0", "//8=", 2, 16},                     /* 2 bytes */
	        {"0.0.0.0", "AAAAAA==", 2, 0},
	        {"0.0.0.0", "", 2, 0}, /* Go: an empty, non-nil mask is /0 */
	        {"::ffff:10.0.0.0", "////AA==", 2, 24},
	        {"::ffff:10.0.0.1", NULL, 2, 32},
	        {"fd00::", "////AA==", 10, 24}, /* 4 bytes on IPv6: /24 */
	        {"fd00::", "//////8AAAAAAAAAAAAAAA==", 10, 40},
	        {"fd00::1", "/////////////////////w==", 10, 128},
	};
	static const struct {
		const char *ip, *mask, *msg;
	} bad[] = {
	        /* 12 bytes of ones then ffffff00: Go's Size is 120, no IPv4 key says /120. */
	        {"10.0.0.0", "/////////////////////w==", "at most 32 bits"},
	        {"10.0.0.0", "////////////////////AA==", "at most 32 bits"},
	        /* ::ffff:255.255.255.0: not canonical (Go reads it as /0). */
	        {"10.0.0.0", "AAAAAAAAAAAAAP//////AA==", "not a contiguous"},
	        {"10.0.0.0", "/wD/AA==", "not a contiguous"},
	        {"10.0.0.0", "//////////////////////////8=", "at most 16 bytes"}, /* 20 bytes */
	        {"10.0.0.1", "////AA==", "bits set beyond /24"},
	};
	struct mg_kv_ip_pair p;
	struct mg_error err;
	char json[256];

	for (size_t i = 0; i < MG_ARRAY_SIZE(good); i++) {
		if (good[i].mask != NULL)
			snprintf(json, sizeof(json), "{\"IP\":\"%s\",\"Mask\":\"%s\",\"ID\":5}",
			         good[i].ip, good[i].mask);
		else
			snprintf(json, sizeof(json), "{\"IP\":\"%s\",\"Mask\":null,\"ID\":5}",
			         good[i].ip);
		int rc = mg_kv_ip_pair_decode(json, strlen(json), &p, &err);
		CU_ASSERT_EQUAL(rc, 0);
		if (rc != 0) {
			fprintf(stderr, "good[%zu]: %s\n", i, err.msg);
			continue;
		}
		CU_ASSERT_EQUAL(p.prefix.family, good[i].family);
		CU_ASSERT_EQUAL(p.prefix.plen, good[i].plen);
		CU_ASSERT_EQUAL(p.host_route, good[i].mask == NULL);
		mg_kv_ip_pair_clear(&p);
	}
	/* The mapped form names the IPv4 address: 10.0.0.0 in the first 4 bytes. */
	snprintf(json, sizeof(json), "{\"IP\":\"::ffff:10.1.2.0\",\"Mask\":\"////AA==\",\"ID\":5}");
	CU_ASSERT_EQUAL_FATAL(mg_kv_ip_pair_decode(json, strlen(json), &p, &err), 0);
	CU_ASSERT_EQUAL(p.prefix.addr[0], 10);
	CU_ASSERT_EQUAL(p.prefix.addr[1], 1);
	CU_ASSERT_EQUAL(p.prefix.addr[2], 2);
	CU_ASSERT_EQUAL(p.prefix.addr[4], 0);
	mg_kv_ip_pair_clear(&p);
	for (size_t i = 0; i < MG_ARRAY_SIZE(bad); i++) {
		snprintf(json, sizeof(json), "{\"IP\":\"%s\",\"Mask\":\"%s\",\"ID\":5}", bad[i].ip,
		         bad[i].mask);
		memset(&err, 0, sizeof(err));
		CU_ASSERT_EQUAL(mg_kv_ip_pair_decode(json, strlen(json), &p, &err), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, bad[i].msg));
		if (strstr(err.msg, bad[i].msg) == NULL)
			fprintf(stderr, "bad[%zu]: %s\n", i, err.msg);
	}
}

/* The heartbeat's key and RFC 3339 times as Go's time.RFC3339 parses them. */
static void
test_heartbeat_time(void)
{
	static const struct {
		const char *s;
		int64_t t;
	} good[] = {
	        {"1970-01-01T00:00:00Z", 0},
	        {"2026-12-07T05:10:00Z", 1796620200},
	        {"2026-12-07T05:10:00.123456789Z", 1796620200},
	        {"2026-12-07T06:10:00+01:00", 1796620200},
	        {"2026-12-07T00:40:00-04:30", 1796620200},
	        {"2024-02-29T12:00:00Z", 1709208000},
	        {"2000-03-01T00:00:00Z", 951868800},
	};
	static const char *const bad[] = {
	        "",
	        "2026-12-07",
	        "2026-12-07 05:10:00Z",
	        "2026-12-07T05:10:00",
	        "2026-12-07T05:10:60Z",
	        "2026-12-07T24:00:00Z",
	        "2026-13-07T05:10:00Z",
	        "2026-02-29T05:10:00Z",
	        "2026-04-31T05:10:00Z",
	        "2026-12-07T05:10:00.Z",
	        "2026-12-07T05:10:00+0100",
	        "2026-12-07T05:10:00z",
	        "2026-12-07T05:10:00ZZ",
	        "garbage",
	};
	char key[MG_KV_KEY_MAX];
	int64_t t;

	CU_ASSERT_EQUAL(mg_kv_heartbeat_key(key, sizeof(key), "east"), 23);
	CU_ASSERT_STRING_EQUAL(key, "meshgate/heartbeat/east");
	CU_ASSERT_EQUAL(mg_kv_heartbeat_key(key, sizeof(key), "Bad_Name"), -EINVAL);
	CU_ASSERT_EQUAL(mg_kv_heartbeat_key(key, 8, "east"), -ENAMETOOLONG);
	for (size_t i = 0; i < MG_ARRAY_SIZE(good); i++) {
		t = -1;
		CU_ASSERT_EQUAL(mg_kv_time_parse(good[i].s, strlen(good[i].s), &t), 0);
		CU_ASSERT_EQUAL(t, good[i].t);
		if (t != good[i].t)
			fprintf(stderr, "good[%zu]: %lld\n", i, (long long)t);
	}
	for (size_t i = 0; i < MG_ARRAY_SIZE(bad); i++)
		CU_ASSERT_EQUAL(mg_kv_time_parse(bad[i], strlen(bad[i]), &t), -EINVAL);
}

/* ---- kv_strs: the MGET reply sink against hiredis's own reply objects ---- */

static uint64_t strs_rng = 0x9e3779b97f4a7c15ull;

static unsigned
strs_rand(unsigned n)
{
	strs_rng ^= strs_rng << 13;
	strs_rng ^= strs_rng >> 7;
	strs_rng ^= strs_rng << 17;
	return n ? (unsigned)(strs_rng % n) : 0;
}

struct strs_out {
	char *p;
	size_t n, cap;
};

static void
strs_put(struct strs_out *o, const void *b, size_t n)
{
	if (o->n + n + 1 > o->cap) {
		o->cap = (o->n + n + 1) * 2;
		o->p = realloc(o->p, o->cap);
		CU_ASSERT_PTR_NOT_NULL_FATAL(o->p);
	}
	memcpy(o->p + o->n, b, n);
	o->n += n;
}

static void
strs_putf(struct strs_out *o, const char *fmt, long long v)
{
	char buf[64];
	int n = snprintf(buf, sizeof(buf), fmt, v);
	strs_put(o, buf, (size_t)n);
}

/* One random RESP2 value (depth: how deep arrays may still nest). */
static void
strs_gen(struct strs_out *o, int depth, bool top)
{
	static const char bytes[] = "ab{\"IP\":1}\r\n\0$*:+-x";
	unsigned k = strs_rand(top ? 12 : 10);
	if (top && k >= 10)
		k = 9; /* mostly arrays at the top */
	switch (k) {
	case 0:
	case 1:
	case 2:
	case 3: { /* bulk string, any bytes */
		size_t n = strs_rand(4) == 0 ? strs_rand(3000) : strs_rand(40);
		strs_putf(o, "$%lld\r\n", (long long)n);
		for (size_t i = 0; i < n; i++)
			strs_put(o, &bytes[strs_rand(sizeof(bytes) - 1)], 1);
		strs_put(o, "\r\n", 2);
		break;
	}
	case 4:
		strs_put(o, "$-1\r\n", 5);
		break;
	case 5:
		strs_putf(o, ":%lld\r\n", (long long)strs_rand(100000) - 50000);
		break;
	case 6:
		strs_put(o, "+OK\r\n", 5);
		break;
	case 7:
		strs_put(o, "-ERR no\r\n", 9);
		break;
	case 8:
		strs_put(o, "*-1\r\n", 5);
		break;
	default: { /* array */
		unsigned n = depth > 0 ? strs_rand(top ? 24 : 5) : 0;
		strs_putf(o, "*%lld\r\n", (long long)n);
		for (unsigned i = 0; i < n; i++)
			strs_gen(o, depth - 1, false);
		break;
	}
	}
}

/* Damage @o: flip, drop or insert bytes, or cut it short. */
static void
strs_damage(struct strs_out *o)
{
	static const char junk[] = "*$:+-\r\n0123456789x";
	unsigned how = strs_rand(4);
	size_t at = o->n ? strs_rand((unsigned)o->n) : 0;
	if (how == 0 && o->n > 0) {
		o->p[at] = junk[strs_rand(sizeof(junk) - 1)];
	} else if (how == 1 && o->n > 0) {
		memmove(o->p + at, o->p + at + 1, o->n - at - 1);
		o->n--;
	} else if (how == 2) {
		char c = junk[strs_rand(sizeof(junk) - 1)];
		strs_put(o, "", 0);
		if (o->n + 2 > o->cap) {
			o->cap = o->n + 64;
			o->p = realloc(o->p, o->cap);
			CU_ASSERT_PTR_NOT_NULL_FATAL(o->p);
		}
		memmove(o->p + at + 1, o->p + at, o->n - at);
		o->p[at] = c;
		o->n++;
	} else {
		o->n = at;
	}
}

/*
 * The same bytes, fed in the same random pieces to a reader with hiredis's
 * own functions and to one with the sink: both succeed or fail at the same
 * point with the same error, and a completed reply gives the same strings
 * (elements 0 .. want-1 of a top-level array that are strings, byte for
 * byte), nothing for anything else.
 */
static void
test_strs_reader(void)
{
	struct strs_out o = {0};
	struct kv_strs sink;
	unsigned replies = 0, errors = 0, partial = 0;

	kv_strs_init(&sink);
	for (int round = 0; round < 20000; round++) {
		redisReader *a = redisReaderCreate(),
		            *b = redisReaderCreateWithFunctions(&kv_strs_fn);
		size_t want = strs_rand(30), fed = 0;
		void *ra = NULL, *rb = NULL;
		int ca = REDIS_OK, cb = REDIS_OK;

		CU_ASSERT_PTR_NOT_NULL_FATAL(a);
		CU_ASSERT_PTR_NOT_NULL_FATAL(b);
		b->privdata = &sink;
		CU_ASSERT_EQUAL_FATAL(kv_strs_begin(&sink, want), 0);
		o.n = 0;
		strs_gen(&o, 3, true);
		if (round % 3 == 0)
			strs_damage(&o);
		while (fed < o.n && ra == NULL && ca == REDIS_OK) {
			size_t piece = 1 + strs_rand(round % 2 ? 7 : 5000);
			if (piece > o.n - fed)
				piece = o.n - fed;
			redisReaderFeed(a, o.p + fed, piece);
			redisReaderFeed(b, o.p + fed, piece);
			fed += piece;
			ca = redisReaderGetReply(a, &ra);
			cb = redisReaderGetReply(b, &rb);
			CU_ASSERT_EQUAL_FATAL(ca, cb);
			CU_ASSERT_EQUAL_FATAL(ra == NULL, rb == NULL);
		}
		if (ca != REDIS_OK) {
			errors++;
			CU_ASSERT_STRING_EQUAL(a->errstr, b->errstr);
		} else if (ra == NULL) {
			partial++;
		} else {
			const redisReply *r = ra;
			replies++;
			CU_ASSERT_EQUAL(sink.array, r->type == REDIS_REPLY_ARRAY);
			for (size_t i = 0; i < want + 2; i++) {
				const char *str = NULL;
				size_t len = 0;
				bool is = r->type == REDIS_REPLY_ARRAY && i < r->elements &&
				          i < want && r->element[i]->type == REDIS_REPLY_STRING;
				CU_ASSERT_EQUAL_FATAL(kv_strs_get(&sink, i, &str, &len), is);
				if (is) {
					CU_ASSERT_EQUAL_FATAL(len, r->element[i]->len);
					CU_ASSERT_FATAL(memcmp(str, r->element[i]->str, len) == 0);
					CU_ASSERT_EQUAL(str[len], '\0');
				}
			}
			freeReplyObject(ra);
		}
		redisReaderFree(a);
		redisReaderFree(b);
	}
	/* Every outcome was seen many times. */
	CU_ASSERT(replies > 5000 && errors > 500 && partial > 500);
	kv_strs_free(&sink);
	free(o.p);
}

/* Redis URLs: the host:port part is lib/common's parser; user, password, db around it. */
static void
test_url(void)
{
	static const struct {
		const char *url, *host, *path, *user, *password;
		int port;
		unsigned db;
	} good[] = {
	        {"redis://127.0.0.1", "127.0.0.1", NULL, NULL, NULL, 6379, 0},
	        {"redis://redis.kube-system:6380/3", "redis.kube-system", NULL, NULL, NULL, 6380,
	         3},
	        {"redis://[::1]:7000", "::1", NULL, NULL, NULL, 7000, 0},
	        {"redis://[fd00::5]/15", "fd00::5", NULL, NULL, NULL, 6379, 15},
	        {"redis://meshgate:s3cr:t@h:1", "h", NULL, "meshgate", "s3cr:t", 1, 0},
	        {"redis://:pw@h", "h", NULL, NULL, "pw", 6379, 0},
	        {"redis://u:p@ss@[::1]:65535/", "::1", NULL, "u", "p@ss", 65535, 0},
	        {"unix:///run/redis.sock?db=2", NULL, "/run/redis.sock", NULL, NULL, 6379, 2},
	};
	static const char *const bad[] = {
	        "redis://",          "redis://:6379", "redis://h:0",
	        "redis://h:65536",   "redis://h:",    "redis://h:x",
	        "redis://::1:6379",  "redis://[::1",  "redis://[zz]:80",
	        "redis://[::1]6379", "redis://a b:1", "redis://h/16",
	        "redis://h/x",       "rediss://h",    "unix://relative",
	        "unix:///s?db=99",   "http://h:80",   "",
	};
	struct mg_error err;
	struct mg_kv_url u;
	char buf[256];
	size_t i;

	for (i = 0; i < MG_ARRAY_SIZE(good); i++) {
		snprintf(buf, sizeof(buf), "%s", good[i].url);
		memset(&err, 0, sizeof(err));
		if (mg_kv_url_parse(buf, &u, &err) != 0)
			fprintf(stderr, "%s: %s\n", good[i].url, err.msg);
		CU_ASSERT_EQUAL_FATAL(mg_kv_url_parse(strcpy(buf, good[i].url), &u, &err), 0);
#define STR_EQ(a, b) ((a) == NULL ? (b) == NULL : (b) != NULL && strcmp((a), (b)) == 0)
		CU_ASSERT_TRUE(STR_EQ(good[i].host, u.host));
		CU_ASSERT_TRUE(STR_EQ(good[i].path, u.path));
		CU_ASSERT_TRUE(STR_EQ(good[i].user, u.user));
		CU_ASSERT_TRUE(STR_EQ(good[i].password, u.password));
#undef STR_EQ
		CU_ASSERT_EQUAL(u.port, good[i].port);
		CU_ASSERT_EQUAL(u.db, good[i].db);
	}
	for (i = 0; i < MG_ARRAY_SIZE(bad); i++) {
		snprintf(buf, sizeof(buf), "%s", bad[i]);
		memset(&err, 0, sizeof(err));
		if (mg_kv_url_parse(buf, &u, &err) != -EINVAL)
			fprintf(stderr, "%s was accepted\n", bad[i]);
		CU_ASSERT_EQUAL(mg_kv_url_parse(strcpy(buf, bad[i]), &u, &err), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "bad Redis URL"));
	}
	/* the reason from the host:port parser is in the message */
	CU_ASSERT_EQUAL(mg_kv_url_parse(strcpy(buf, "redis://::1:6379"), &u, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "brackets"));
}

/*
 * docs/reliability.md, "Limits": an identity value over MG_KV_IDENTITY_VALUE_MAX
 * bytes and an ipcache value with more than MG_KV_IP_MAX_NAMED_PORTS named
 * ports are refused whole (the sync counts them as rejected), at the limit
 * they decode.
 */
static void
test_value_limits(void)
{
	struct mg_kv_ip_pair p;
	struct mg_error err = {{0}};
	struct mg_labels ls = MG_LABELS_INIT;
	size_t cap = 64 * (MG_KV_IP_MAX_NAMED_PORTS + 1) + 128, len;
	char *v = malloc(MG_KV_IDENTITY_VALUE_MAX + 2), *j = malloc(cap);
	int n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	/* "k8s:a=xxxx...;" padded to one byte over the limit */
	memset(v, 'x', MG_KV_IDENTITY_VALUE_MAX + 1);
	memcpy(v, "k8s:a=", 6);
	v[MG_KV_IDENTITY_VALUE_MAX] = ';';
	CU_ASSERT_EQUAL(mg_kv_identity_value_decode(v, MG_KV_IDENTITY_VALUE_MAX + 1, &ls, &err),
	                -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "more than a label string may have"));
	mg_labels_clear(&ls);

	for (n = MG_KV_IP_MAX_NAMED_PORTS; n <= MG_KV_IP_MAX_NAMED_PORTS + 1; n++) {
		len = (size_t)snprintf(j, cap, "{\"IP\":\"10.0.0.1\",\"ID\":300,\"NamedPorts\":[");
		for (int i = 0; i < n; i++)
			len += (size_t)snprintf(
			        j + len, cap - len,
			        "%s{\"Name\":\"p%d\",\"Port\":%d,\"Protocol\":\"TCP\"}",
			        i ? "," : "", i, 1000 + i);
		len += (size_t)snprintf(j + len, cap - len, "]}");
		memset(&err, 0, sizeof(err));
		if (n == MG_KV_IP_MAX_NAMED_PORTS) {
			CU_ASSERT_EQUAL(mg_kv_ip_pair_decode(j, len, &p, &err), 0);
			CU_ASSERT_EQUAL(p.n_named_ports, MG_KV_IP_MAX_NAMED_PORTS);
			mg_kv_ip_pair_clear(&p);
		} else {
			CU_ASSERT_EQUAL(mg_kv_ip_pair_decode(j, len, &p, &err), -EINVAL);
			CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "named ports"));
		}
	}
	free(v);
	free(j);
}

static CU_TestInfo tests[] = {
        {"cluster_names", test_cluster_names},
        {"identity_keys", test_identity_keys},
        {"ip_keys", test_ip_keys},
        {"other_keys", test_other_keys},
        {"identity_value", test_identity_value},
        {"ip_pair_cilium", test_ip_pair_cilium},
        {"ip_pair_round_trip", test_ip_pair_round_trip},
        {"ip_pair_rejects", test_ip_pair_rejects},
        {"ip_pair_fast_path", test_ip_pair_fast_path},
        {"cluster_config", test_cluster_config},
        {"cluster_config_cilium", test_cluster_config_cilium},
        {"ip_pair_id_zero", test_ip_pair_id_zero},
        {"ip_pair_named_ports_lenient", test_ip_pair_named_ports_lenient},
        {"value_limits", test_value_limits},
        {"ip_pair_masks", test_ip_pair_masks},
        {"heartbeat_time", test_heartbeat_time},
        {"url", test_url},
        {"strs_reader", test_strs_reader},
        CU_TEST_INFO_NULL,
};

MG_TEST_MAIN("kvstore", tests)
