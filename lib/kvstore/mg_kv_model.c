/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The Redis data model: builders and parsers of Cilium's kvstore keys and
 * strict codecs of their values (label strings, IPIdentityPair JSON,
 * cluster config JSON). Every value here comes from another process over
 * the network, possibly an older or newer Cilium, possibly garbage, so
 * each decoder checks types and ranges and says precisely what is wrong;
 * unknown JSON fields are ignored, as Cilium's Go decoder ignores them, so
 * that a newer writer does not break an older reader. The key builders and
 * parsers are exact inverses, which the unit tests check by round trip.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mg_kvstore.h"

/* mg_pkt.h's family numbers, which mg_ipcache_entry uses. */
#define KV_AF_INET 2
#define KV_AF_INET6 10

bool
mg_kv_cluster_name_valid(const char *name)
{
	size_t n;

	if (name == NULL)
		return false;
	n = strlen(name);
	if (n == 0 || n > MG_KV_CLUSTER_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	return name[0] != '-' && name[n - 1] != '-';
}

/* snprintf into buf: the length, or -ENAMETOOLONG when it did not fit. */
static int MG_PRINTF(3, 4) kv_fmt(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= size)
		return -ENAMETOOLONG;
	return n;
}

static bool
kv_id_valid(uint32_t id)
{
	return id != 0 && id <= MG_ID_MAX;
}

int
mg_kv_identity_key(char *buf, size_t size, enum mg_kv_scope scope, const char *cluster, uint32_t id)
{
	if (!kv_id_valid(id))
		return -EINVAL;
	if (scope == MG_KV_SCOPE_STATE)
		return kv_fmt(buf, size, MG_KV_STATE_IDENTITIES "/id/%u", id);
	if (!mg_kv_cluster_name_valid(cluster))
		return -EINVAL;
	return kv_fmt(buf, size, MG_KV_CACHE_IDENTITIES "/%s/id/%u", cluster, id);
}

static bool
kv_full_len(const struct mg_ipcache_entry *e)
{
	return e->plen == (e->family == KV_AF_INET ? 32 : 128);
}

/* family valid, plen in range, host bits zero */
static bool
kv_prefix_valid(const struct mg_ipcache_entry *e)
{
	unsigned bits, alen;

	if (e->family == KV_AF_INET)
		alen = 4;
	else if (e->family == KV_AF_INET6)
		alen = 16;
	else
		return false;
	bits = alen * 8;
	if (e->plen > bits)
		return false;
	for (unsigned i = e->plen; i < bits; i++)
		if (e->addr[i / 8] & (0x80u >> (i % 8)))
			return false;
	return true;
}

int
mg_kv_ip_key(char *buf, size_t size, enum mg_kv_scope scope, const char *cluster,
             const struct mg_ipcache_entry *e, bool host_route)
{
	char addr[INET6_ADDRSTRLEN];
	char pfx[MG_KV_KEY_MAX];
	int n;

	if (!kv_prefix_valid(e) || (host_route && !kv_full_len(e)))
		return -EINVAL;
	if (inet_ntop(e->family == KV_AF_INET ? AF_INET : AF_INET6, e->addr, addr, sizeof(addr)) ==
	    NULL)
		return -EINVAL;
	if (scope == MG_KV_SCOPE_STATE) {
		n = kv_fmt(pfx, sizeof(pfx), MG_KV_STATE_IP "/" MG_KV_IP_NAMESPACE);
	} else {
		if (!mg_kv_cluster_name_valid(cluster))
			return -EINVAL;
		n = kv_fmt(pfx, sizeof(pfx), MG_KV_CACHE_IP "/%s", cluster);
	}
	if (n < 0)
		return n;
	if (host_route)
		return kv_fmt(buf, size, "%s/%s", pfx, addr);
	return kv_fmt(buf, size, "%s/%s/%u", pfx, addr, e->plen);
}

int
mg_kv_cluster_config_key(char *buf, size_t size, const char *cluster)
{
	if (!mg_kv_cluster_name_valid(cluster))
		return -EINVAL;
	return kv_fmt(buf, size, MG_KV_CLUSTER_CONFIG "/%s", cluster);
}

int
mg_kv_synced_key(char *buf, size_t size, const char *cluster, const char *prefix)
{
	if (!mg_kv_cluster_name_valid(cluster) || prefix == NULL || prefix[0] == '\0')
		return -EINVAL;
	return kv_fmt(buf, size, MG_KV_SYNCED "/%s/%s", cluster, prefix);
}

int
mg_kv_log_key(char *buf, size_t size, const char *cluster)
{
	if (!mg_kv_cluster_name_valid(cluster))
		return -EINVAL;
	return kv_fmt(buf, size, MG_KV_LOG "/%s", cluster);
}

int
mg_kv_epoch_key(char *buf, size_t size, const char *cluster)
{
	if (!mg_kv_cluster_name_valid(cluster))
		return -EINVAL;
	return kv_fmt(buf, size, MG_KV_EPOCH "/%s", cluster);
}

int
mg_kv_removed_key(char *buf, size_t size, const char *cluster)
{
	if (!mg_kv_cluster_name_valid(cluster))
		return -EINVAL;
	return kv_fmt(buf, size, MG_KV_REMOVED "/%s", cluster);
}

/*
 * Strip "<base>/" (and, for the cache scope, "<cluster>/") from key.
 * Returns the rest or NULL.
 */
static const char *
kv_strip(const char *key, const char *base, enum mg_kv_scope scope, const char *cluster)
{
	size_t n = strlen(base);

	if (key == NULL || strncmp(key, base, n) != 0 || key[n] != '/')
		return NULL;
	key += n + 1;
	if (scope == MG_KV_SCOPE_STATE)
		return key;
	if (!mg_kv_cluster_name_valid(cluster))
		return NULL;
	n = strlen(cluster);
	if (strncmp(key, cluster, n) != 0 || key[n] != '/')
		return NULL;
	return key + n + 1;
}

/* Canonical decimal: digits only, no leading zero, fits the limit. */
static int
kv_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0'))
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > max)
			return -EINVAL;
	}
	*out = v;
	return 0;
}

int
mg_kv_identity_key_parse(const char *key, enum mg_kv_scope scope, const char *cluster, uint32_t *id)
{
	const char *rest;
	uint64_t v;

	rest = kv_strip(
	        key, scope == MG_KV_SCOPE_STATE ? MG_KV_STATE_IDENTITIES : MG_KV_CACHE_IDENTITIES,
	        scope, cluster);
	if (rest == NULL || strncmp(rest, "id/", 3) != 0)
		return -EINVAL;
	if (kv_parse_uint(rest + 3, MG_ID_MAX, &v) < 0 || v == 0)
		return -EINVAL;
	*id = (uint32_t)v;
	return 0;
}

/* Parse an address literal of either family into e (plen = full). */
static int
kv_parse_addr(const char *s, struct mg_ipcache_entry *e)
{
	memset(e->addr, 0, sizeof(e->addr));
	if (strchr(s, ':') == NULL) {
		if (inet_pton(AF_INET, s, e->addr) != 1)
			return -EINVAL;
		e->family = KV_AF_INET;
		e->plen = 32;
	} else {
		if (inet_pton(AF_INET6, s, e->addr) != 1)
			return -EINVAL;
		e->family = KV_AF_INET6;
		e->plen = 128;
	}
	return 0;
}

int
mg_kv_ip_key_parse(const char *key, enum mg_kv_scope scope, const char *cluster,
                   struct mg_ipcache_entry *e, bool *host_route)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *rest, *slash;
	struct mg_ipcache_entry t;
	uint64_t plen;
	size_t n;

	if (scope == MG_KV_SCOPE_STATE) {
		rest = kv_strip(key, MG_KV_STATE_IP, scope, NULL);
		if (rest == NULL || strncmp(rest, MG_KV_IP_NAMESPACE "/", 8) != 0)
			return -EINVAL;
		rest += 8;
	} else {
		rest = kv_strip(key, MG_KV_CACHE_IP, scope, cluster);
		if (rest == NULL)
			return -EINVAL;
	}
	slash = strchr(rest, '/');
	n = slash ? (size_t)(slash - rest) : strlen(rest);
	if (n == 0 || n >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, rest, n);
	addr[n] = '\0';
	memset(&t, 0, sizeof(t));
	if (kv_parse_addr(addr, &t) < 0)
		return -EINVAL;
	if (slash) {
		if (kv_parse_uint(slash + 1, t.plen, &plen) < 0)
			return -EINVAL;
		t.plen = (uint8_t)plen;
		if (!kv_prefix_valid(&t))
			return -EINVAL;
	}
	e->family = t.family;
	e->plen = t.plen;
	memcpy(e->addr, t.addr, sizeof(e->addr));
	*host_route = slash == NULL;
	return 0;
}

/* ---- identity values ---- */

int
mg_kv_identity_value_decode(const char *val, size_t len, struct mg_labels *ls, struct mg_error *err)
{
	const char *p = val, *end = val + len;
	unsigned entry = 0;
	char buf[MG_KV_LABEL_SOURCE_MAX + 2 * MG_KV_LABEL_PART_MAX + 3];
	int rc;

	if (len == 0) {
		mg_error_set(err, NULL, 0, 0, "identity value: empty label string");
		return -EINVAL;
	}
	if (len > MG_KV_IDENTITY_VALUE_MAX) {
		mg_error_set(err, NULL, 0, 0,
		             "identity value: %zu bytes, more than a label string may have (%d)",
		             len, MG_KV_IDENTITY_VALUE_MAX);
		return -EINVAL;
	}
	if (memchr(val, '\0', len) != NULL) {
		mg_error_set(err, NULL, 0, 0, "identity value: NUL byte in label string");
		return -EINVAL;
	}
	if (val[len - 1] != ';') {
		mg_error_set(err, NULL, 0, 0,
		             "identity value: not a label string (source:key=value; entries, each "
		             "ending in ';')");
		return -EINVAL;
	}
	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *colon = memchr(p, ':', (size_t)(semi - p));
		const char *eq = colon ? memchr(colon, '=', (size_t)(semi - colon)) : NULL;
		size_t slen = colon ? (size_t)(colon - p) : 0;

		entry++;
		/* The source ends at the first ':' (a key may hold more). */
		if (colon == NULL || eq == NULL || slen == 0 || eq == colon + 1 ||
		    memchr(p, '=', slen) != NULL) {
			mg_error_set(err, NULL, 0, 0,
			             "identity value: entry %u \"%.*s\" is not a label "
			             "(source:key=value)",
			             entry, (int)((size_t)(semi - p) < 80 ? semi - p : 80), p);
			goto inval;
		}
		if (slen > MG_KV_LABEL_SOURCE_MAX ||
		    (size_t)(eq - colon - 1) > MG_KV_LABEL_PART_MAX ||
		    (size_t)(semi - eq - 1) > MG_KV_LABEL_PART_MAX) {
			mg_error_set(err, NULL, 0, 0,
			             "identity value: entry %u is too long (source at most %d, key "
			             "and value at most %d characters)",
			             entry, MG_KV_LABEL_SOURCE_MAX, MG_KV_LABEL_PART_MAX);
			goto inval;
		}
		memcpy(buf, p, (size_t)(semi - p));
		buf[colon - p] = '\0';
		buf[eq - p] = '\0';
		buf[semi - p] = '\0';
		size_t before = ls->n;
		rc = mg_labels_add(ls, buf, buf + (colon - p) + 1, buf + (eq - p) + 1);
		if (rc == -ENOMEM) {
			mg_labels_clear(ls);
			return rc;
		}
		if (rc < 0) {
			mg_error_set(err, NULL, 0, 0,
			             "identity value: entry %u \"%.*s\" is not a valid label",
			             entry, (int)((size_t)(semi - p) < 80 ? semi - p : 80), p);
			goto inval;
		}
		if (ls->n == before) {
			mg_error_set(err, NULL, 0, 0, "identity value: label %s:%s appears twice",
			             buf, buf + (colon - p) + 1);
			goto inval;
		}
		p = semi + 1;
	}
	return 0;
inval:
	mg_labels_clear(ls);
	return -EINVAL;
}

/* ---- base64 (RFC 4648, with padding: Go's encoding/json for []byte) ---- */

static const char b64_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void
kv_b64_encode(const uint8_t *in, size_t n, char *out)
{
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64_alpha[v >> 18 & 63];
		out[o++] = b64_alpha[v >> 12 & 63];
		out[o++] = b64_alpha[v >> 6 & 63];
		out[o++] = b64_alpha[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
		out[o++] = b64_alpha[v >> 18 & 63];
		out[o++] = b64_alpha[v >> 12 & 63];
		out[o++] = i + 1 < n ? b64_alpha[v >> 6 & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
}

static int
kv_b64_val(char c)
{
	const char *p = c ? strchr(b64_alpha, c) : NULL;
	return p ? (int)(p - b64_alpha) : -1;
}

/* Decode padded base64 into out (at most cap bytes). Length or -EINVAL. */
static int
kv_b64_decode(const char *s, uint8_t *out, size_t cap)
{
	size_t n = strlen(s), o = 0;

	if (n % 4 != 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i += 4) {
		int a = kv_b64_val(s[i]), b = kv_b64_val(s[i + 1]);
		int c = kv_b64_val(s[i + 2]), d = kv_b64_val(s[i + 3]);
		bool last = i + 4 == n;
		uint32_t v;

		if (a < 0 || b < 0)
			return -EINVAL;
		if (c < 0 && !(last && s[i + 2] == '=' && s[i + 3] == '='))
			return -EINVAL;
		if (d < 0 && !(last && s[i + 3] == '='))
			return -EINVAL;
		v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)(c < 0 ? 0 : c) << 6 |
		    (uint32_t)(d < 0 ? 0 : d);
		if (o + (c < 0 ? 1 : d < 0 ? 2 : 3) > cap)
			return -EINVAL;
		out[o++] = (uint8_t)(v >> 16);
		if (c >= 0)
			out[o++] = (uint8_t)(v >> 8);
		if (d >= 0)
			out[o++] = (uint8_t)v;
	}
	return (int)o;
}

/* ---- IPIdentityPair ---- */

void
mg_kv_ip_pair_clear(struct mg_kv_ip_pair *p)
{
	free(p->named_ports);
	memset(p, 0, sizeof(*p));
}

static const char *
kv_proto_name(uint8_t proto)
{
	switch (proto) {
	case 6:
		return "TCP";
	case 17:
		return "UDP";
	case 132:
		return "SCTP";
	default:
		return NULL;
	}
}

static int
kv_proto_parse(const char *s, uint8_t *proto)
{
	if (strcasecmp(s, "TCP") == 0)
		*proto = 6;
	else if (strcasecmp(s, "UDP") == 0)
		*proto = 17;
	else if (strcasecmp(s, "SCTP") == 0)
		*proto = 132;
	else
		return -EINVAL;
	return 0;
}

/* Set a string field; json_object_set_new steals v even on failure. */
static int
kv_set(json_t *o, const char *k, json_t *v)
{
	return v != NULL && json_object_set_new(o, k, v) == 0 ? 0 : -ENOMEM;
}

char *
mg_kv_ip_pair_encode(const struct mg_kv_ip_pair *p)
{
	char addr[INET6_ADDRSTRLEN], mask64[32];
	uint8_t mask[16];
	unsigned alen;
	json_t *o = NULL, *ports;
	char *s = NULL;
	int rc = -ENOMEM;

	if (!kv_prefix_valid(&p->prefix) || (p->host_route && !kv_full_len(&p->prefix)) ||
	    !kv_id_valid(p->prefix.identity)) {
		rc = -EINVAL;
		goto err;
	}
	alen = p->prefix.family == KV_AF_INET ? 4 : 16;
	if (inet_ntop(alen == 4 ? AF_INET : AF_INET6, p->prefix.addr, addr, sizeof(addr)) == NULL) {
		rc = -EINVAL;
		goto err;
	}
	memset(mask, 0, sizeof(mask));
	for (unsigned i = 0; i < p->prefix.plen; i++)
		mask[i / 8] |= (uint8_t)(0x80u >> (i % 8));
	kv_b64_encode(mask, alen, mask64);

	o = json_object();
	if (o == NULL)
		goto err;
	if (kv_set(o, "IP", json_string(addr)) < 0 ||
	    kv_set(o, "Mask", p->host_route ? json_null() : json_string(mask64)) < 0 ||
	    kv_set(o, "HostIP", json_string(p->host_ip)) < 0 ||
	    kv_set(o, "ID", json_integer(p->prefix.identity)) < 0 ||
	    kv_set(o, "Key", json_integer(p->key)) < 0 ||
	    kv_set(o, "Metadata", json_string(p->metadata)) < 0)
		goto err;
	if (p->k8s_namespace[0] && kv_set(o, "K8sNamespace", json_string(p->k8s_namespace)) < 0)
		goto err;
	if (p->k8s_pod_name[0] && kv_set(o, "K8sPodName", json_string(p->k8s_pod_name)) < 0)
		goto err;
	if (p->n_named_ports > 0) {
		ports = json_array();
		if (kv_set(o, "NamedPorts", ports) < 0)
			goto err;
		for (size_t i = 0; i < p->n_named_ports; i++) {
			const struct mg_named_port *np = &p->named_ports[i];
			const char *pn = kv_proto_name(np->proto);
			json_t *e;

			if (pn == NULL || np->name[0] == '\0') {
				rc = -EINVAL;
				goto err;
			}
			e = json_pack("{s:s, s:i, s:s}", "Name", np->name, "Port", (int)np->port,
			              "Protocol", pn);
			if (e == NULL || json_array_append_new(ports, e) < 0)
				goto err;
		}
	}
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (s == NULL)
		goto err;
	json_decref(o);
	return s;
err:
	json_decref(o);
	errno = -rc;
	return NULL;
}

/* Load JSON text strictly: one value, an object, no duplicate keys. */
static json_t *
kv_load_object(const char *what, const char *text, size_t len, struct mg_error *err)
{
	json_error_t je;
	json_t *o;

	o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (o == NULL) {
		mg_error_set(err, NULL, 0, 0, "%s: invalid JSON at line %d column %d: %s", what,
		             je.line, je.column, je.text);
		return NULL;
	}
	if (!json_is_object(o)) {
		mg_error_set(err, NULL, 0, 0, "%s: expected a JSON object", what);
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Optional string field into buf: -EINVAL (err set) for a wrong type or length. */
static int
kv_get_str(json_t *o, const char *field, char *buf, size_t size, bool required,
           struct mg_error *err)
{
	json_t *v = json_object_get(o, field);

	buf[0] = '\0';
	if (v == NULL || json_is_null(v)) {
		if (!required)
			return 0;
		mg_error_set(err, NULL, 0, 0, "IPIdentityPair: missing \"%s\"", field);
		return -EINVAL;
	}
	if (!json_is_string(v)) {
		mg_error_set(err, NULL, 0, 0, "IPIdentityPair: \"%s\" must be a string", field);
		return -EINVAL;
	}
	if (json_string_length(v) >= size ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		mg_error_set(err, NULL, 0, 0,
		             "IPIdentityPair: \"%s\" is too long or contains a NUL byte", field);
		return -EINVAL;
	}
	memcpy(buf, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

/* Integer field in [min, max]. */
static int
kv_get_int(json_t *o, const char *what, const char *field, json_int_t min, json_int_t max,
           bool required, json_int_t *out, struct mg_error *err)
{
	json_t *v = json_object_get(o, field);

	if (v == NULL) {
		if (!required)
			return 0;
		mg_error_set(err, NULL, 0, 0, "%s: missing \"%s\"", what, field);
		return -EINVAL;
	}
	if (!json_is_integer(v)) {
		mg_error_set(err, NULL, 0, 0, "%s: \"%s\" must be an integer", what, field);
		return -EINVAL;
	}
	if (json_integer_value(v) < min || json_integer_value(v) > max) {
		mg_error_set(err, NULL, 0, 0, "%s: \"%s\" %lld out of range %lld-%lld", what, field,
		             (long long)json_integer_value(v), (long long)min, (long long)max);
		return -EINVAL;
	}
	*out = json_integer_value(v);
	return 0;
}

static int
kv_add_port(struct mg_kv_ip_pair *p, size_t *cap, const char *name, json_t *port, json_t *proto,
            struct mg_error *err)
{
	struct mg_named_port *np;
	int rc;

	if (p->n_named_ports >= MG_KV_IP_MAX_NAMED_PORTS) {
		mg_error_set(err, NULL, 0, 0, "IPIdentityPair: more than %d named ports",
		             MG_KV_IP_MAX_NAMED_PORTS);
		return -EINVAL;
	}
	if (name[0] == '\0' || strlen(name) >= sizeof(np->name)) {
		mg_error_set(err, NULL, 0, 0, "IPIdentityPair: named port name empty or too long");
		return -EINVAL;
	}
	if (!json_is_integer(port) || json_integer_value(port) < 1 ||
	    json_integer_value(port) > 65535) {
		mg_error_set(err, NULL, 0, 0,
		             "IPIdentityPair: named port \"%s\": Port must be an integer 1-65535",
		             name);
		return -EINVAL;
	}
	rc = mg_grow(&p->named_ports, cap, p->n_named_ports, sizeof(*np), 4);
	if (rc < 0)
		return rc;
	np = &p->named_ports[p->n_named_ports];
	memset(np, 0, sizeof(*np));
	if (!json_is_string(proto) || kv_proto_parse(json_string_value(proto), &np->proto) < 0) {
		mg_error_set(err, NULL, 0, 0,
		             "IPIdentityPair: named port \"%s\": Protocol must be TCP, UDP or SCTP",
		             name);
		return -EINVAL;
	}
	for (size_t i = 0; i < p->n_named_ports; i++) {
		if (strcmp(p->named_ports[i].name, name) == 0) {
			mg_error_set(err, NULL, 0, 0, "IPIdentityPair: duplicate named port \"%s\"",
			             name);
			return -EINVAL;
		}
	}
	strcpy(np->name, name);
	np->port = (uint16_t)json_integer_value(port);
	p->n_named_ports++;
	return 0;
}

static int
kv_decode_ports(json_t *o, struct mg_kv_ip_pair *p, struct mg_error *err)
{
	json_t *v = json_object_get(o, "NamedPorts"), *e;
	const char *name;
	size_t cap = 0, i;
	int rc;

	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_array(v)) {
		json_array_foreach(v, i, e)
		{
			json_t *jn = json_object_get(e, "Name");
			if (!json_is_object(e) || !json_is_string(jn)) {
				mg_error_set(
				        err, NULL, 0, 0,
				        "IPIdentityPair: NamedPorts[%zu] must be an object with a "
				        "string \"Name\"",
				        i);
				return -EINVAL;
			}
			rc = kv_add_port(p, &cap, json_string_value(jn), json_object_get(e, "Port"),
			                 json_object_get(e, "Protocol"), err);
			if (rc < 0)
				return rc;
		}
		return 0;
	}
	if (json_is_object(v)) {
		json_object_foreach(v, name, e)
		{
			if (!json_is_object(e)) {
				mg_error_set(err, NULL, 0, 0,
				             "IPIdentityPair: NamedPorts \"%s\" must be an object",
				             name);
				return -EINVAL;
			}
			rc = kv_add_port(p, &cap, name, json_object_get(e, "Port"),
			                 json_object_get(e, "Protocol"), err);
			if (rc < 0)
				return rc;
		}
		return 0;
	}
	mg_error_set(err, NULL, 0, 0, "IPIdentityPair: NamedPorts must be an array or an object");
	return -EINVAL;
}

/* Mask: null or base64 of a contiguous mask as long as the address. */
static int
kv_decode_mask(json_t *o, struct mg_kv_ip_pair *p, struct mg_error *err)
{
	json_t *v = json_object_get(o, "Mask");
	unsigned alen = p->prefix.family == KV_AF_INET ? 4 : 16, plen = 0;
	uint8_t mask[16];
	bool zero = false;
	int n;

	if (v == NULL || json_is_null(v)) {
		p->host_route = true;
		return 0;
	}
	if (!json_is_string(v)) {
		mg_error_set(err, NULL, 0, 0, "IPIdentityPair: \"Mask\" must be base64 or null");
		return -EINVAL;
	}
	n = kv_b64_decode(json_string_value(v), mask, sizeof(mask));
	if (n < 0 || (unsigned)n != alen) {
		mg_error_set(err, NULL, 0, 0,
		             "IPIdentityPair: \"Mask\" must be base64 of %u bytes for this address",
		             alen);
		return -EINVAL;
	}
	for (unsigned i = 0; i < alen * 8; i++) {
		bool bit = mask[i / 8] & (0x80u >> (i % 8));
		if (bit && zero) {
			mg_error_set(err, NULL, 0, 0, "IPIdentityPair: \"Mask\" is not contiguous");
			return -EINVAL;
		}
		if (bit)
			plen++;
		else
			zero = true;
	}
	p->prefix.plen = (uint8_t)plen;
	p->host_route = false;
	return 0;
}

/*
 * Fast path of mg_kv_ip_pair_decode for the common shape: one object whose
 * keys are the known fields, each at most once, strings without escapes,
 * control or non-ASCII bytes, integers as plain digits, NamedPorts null or
 * an array of {Name, Port, Protocol}. It allocates nothing but the named
 * ports, where jansson builds a tree per value (most of a cold sync's CPU
 * time). It accepts a value only when the jansson path would accept it
 * with the same result; anything else (an unknown field, an escape, a
 * duplicate key, an invalid value...) returns 0 and the jansson path
 * decides, so that the strictness and every error message stay those of
 * the jansson path.
 */
struct kv_scan {
	const char *p, *end;
};

static void
kv_ws(struct kv_scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static bool
kv_lit(struct kv_scan *s, char c)
{
	kv_ws(s);
	if (s->p < s->end && *s->p == c) {
		s->p++;
		return true;
	}
	return false;
}

static bool
kv_str(struct kv_scan *s, const char **str, size_t *n)
{
	const char *b;

	kv_ws(s);
	if (s->p >= s->end || *s->p != '"')
		return false;
	b = ++s->p;
	for (; s->p < s->end; s->p++) {
		unsigned char c = (unsigned char)*s->p;

		if (c == '"') {
			*str = b;
			*n = (size_t)(s->p - b);
			s->p++;
			return true;
		}
		if (c < 0x20 || c >= 0x80 || c == '\\')
			return false;
	}
	return false;
}

/* Plain digits, no leading zero, at most 10 of them, not followed by a fraction. */
static bool
kv_uint(struct kv_scan *s, uint64_t *v)
{
	const char *b;
	uint64_t x = 0;

	kv_ws(s);
	b = s->p;
	while (s->p < s->end && *s->p >= '0' && *s->p <= '9' && s->p - b < 11)
		x = x * 10 + (uint64_t)(*s->p++ - '0');
	if (s->p == b || s->p - b > 10 || (s->p - b > 1 && *b == '0'))
		return false;
	if (s->p < s->end &&
	    (*s->p == '.' || *s->p == 'e' || *s->p == 'E' || (*s->p >= '0' && *s->p <= '9')))
		return false;
	*v = x;
	return true;
}

static bool
kv_null(struct kv_scan *s)
{
	kv_ws(s);
	if (s->end - s->p >= 4 && memcmp(s->p, "null", 4) == 0) {
		s->p += 4;
		return true;
	}
	return false;
}

/* A string or null into buf (NUL-terminated, shorter than size). */
static bool
kv_str_or_null(struct kv_scan *s, char *buf, size_t size)
{
	const char *v;
	size_t n;

	if (kv_null(s)) {
		buf[0] = '\0';
		return true;
	}
	if (!kv_str(s, &v, &n) || n >= size)
		return false;
	memcpy(buf, v, n);
	buf[n] = '\0';
	return true;
}

static bool
kv_key_is(const char *k, size_t n, const char *want)
{
	return strlen(want) == n && memcmp(k, want, n) == 0;
}

/* One {Name, Port, Protocol} object of NamedPorts; 1 added, 0 slow path, -ENOMEM. */
static int
kv_fast_port(struct kv_scan *s, struct mg_kv_ip_pair *p, size_t *cap)
{
	char name[sizeof(p->named_ports->name)] = "", proto[8] = "";
	unsigned seen = 0;
	uint64_t port = 0;
	uint8_t pr;

	if (!kv_lit(s, '{'))
		return 0;
	do {
		const char *k;
		size_t n;
		unsigned bit;

		if (!kv_str(s, &k, &n) || !kv_lit(s, ':'))
			return 0;
		if (kv_key_is(k, n, "Name")) {
			bit = 1;
			if (!kv_str_or_null(s, name, sizeof(name)) || name[0] == '\0')
				return 0;
		} else if (kv_key_is(k, n, "Port")) {
			bit = 2;
			if (!kv_uint(s, &port))
				return 0;
		} else if (kv_key_is(k, n, "Protocol")) {
			bit = 4;
			if (!kv_str_or_null(s, proto, sizeof(proto)))
				return 0;
		} else {
			return 0;
		}
		if (seen & bit)
			return 0;
		seen |= bit;
	} while (kv_lit(s, ','));
	if (!kv_lit(s, '}') || seen != 7 || port < 1 || port > 65535 ||
	    kv_proto_parse(proto, &pr) < 0 || p->n_named_ports >= MG_KV_IP_MAX_NAMED_PORTS)
		return 0;
	for (size_t i = 0; i < p->n_named_ports; i++)
		if (strcmp(p->named_ports[i].name, name) == 0)
			return 0;
	if (mg_grow(&p->named_ports, cap, p->n_named_ports, sizeof(*p->named_ports), 4) < 0)
		return -ENOMEM;
	memset(&p->named_ports[p->n_named_ports], 0, sizeof(*p->named_ports));
	strcpy(p->named_ports[p->n_named_ports].name, name);
	p->named_ports[p->n_named_ports].proto = pr;
	p->named_ports[p->n_named_ports].port = (uint16_t)port;
	p->n_named_ports++;
	return 1;
}

/* NamedPorts: null or an array of port objects. 1, 0 slow path, -ENOMEM. */
static int
kv_fast_ports(struct kv_scan *s, struct mg_kv_ip_pair *p)
{
	size_t cap = 0;
	int rc;

	if (kv_null(s))
		return 1;
	if (!kv_lit(s, '['))
		return 0;
	if (kv_lit(s, ']'))
		return 1;
	do {
		if ((rc = kv_fast_port(s, p, &cap)) <= 0)
			return rc;
	} while (kv_lit(s, ','));
	return kv_lit(s, ']') ? 1 : 0;
}

enum {
	KV_F_IP = 1 << 0,
	KV_F_MASK = 1 << 1,
	KV_F_HOSTIP = 1 << 2,
	KV_F_ID = 1 << 3,
	KV_F_KEY = 1 << 4,
	KV_F_META = 1 << 5,
	KV_F_NS = 1 << 6,
	KV_F_POD = 1 << 7,
	KV_F_PORTS = 1 << 8,
};

/* 1 decoded into zeroed @p p, 0 leave it to the jansson path (p cleared), -ENOMEM. */
static int
kv_ip_pair_fast(const char *json, size_t len, struct mg_kv_ip_pair *p)
{
	struct kv_scan s = {json, json + len};
	char ip[64] = "", mask[32] = "";
	unsigned seen = 0;
	uint64_t id = 0, key = 0;
	bool mask_null = true;
	int rc = 0;

	if (!kv_lit(&s, '{'))
		return 0;
	do {
		const char *k;
		size_t n;
		unsigned bit;
		bool ok;

		if (!kv_str(&s, &k, &n) || !kv_lit(&s, ':'))
			goto slow;
		if (kv_key_is(k, n, "IP")) {
			bit = KV_F_IP;
			ok = kv_str_or_null(&s, ip, sizeof(ip)) && ip[0] != '\0';
		} else if (kv_key_is(k, n, "Mask")) {
			bit = KV_F_MASK;
			mask_null = kv_null(&s);
			ok = mask_null || kv_str_or_null(&s, mask, sizeof(mask));
		} else if (kv_key_is(k, n, "HostIP")) {
			bit = KV_F_HOSTIP;
			ok = kv_str_or_null(&s, p->host_ip, sizeof(p->host_ip));
		} else if (kv_key_is(k, n, "ID")) {
			bit = KV_F_ID;
			ok = kv_uint(&s, &id);
		} else if (kv_key_is(k, n, "Key")) {
			bit = KV_F_KEY;
			ok = kv_uint(&s, &key);
		} else if (kv_key_is(k, n, "Metadata")) {
			bit = KV_F_META;
			ok = kv_str_or_null(&s, p->metadata, sizeof(p->metadata));
		} else if (kv_key_is(k, n, "K8sNamespace")) {
			bit = KV_F_NS;
			ok = kv_str_or_null(&s, p->k8s_namespace, sizeof(p->k8s_namespace));
		} else if (kv_key_is(k, n, "K8sPodName")) {
			bit = KV_F_POD;
			ok = kv_str_or_null(&s, p->k8s_pod_name, sizeof(p->k8s_pod_name));
		} else if (kv_key_is(k, n, "NamedPorts")) {
			bit = KV_F_PORTS;
			rc = kv_fast_ports(&s, p);
			if (rc < 0)
				goto slow;
			ok = rc == 1;
			rc = 0;
		} else {
			goto slow; /* unknown fields are skipped by the jansson path */
		}
		if (!ok || (seen & bit))
			goto slow;
		seen |= bit;
	} while (kv_lit(&s, ','));
	if (!kv_lit(&s, '}'))
		goto slow;
	kv_ws(&s);
	if (s.p != s.end || !(seen & KV_F_IP) || !(seen & KV_F_ID) || id < 1 || id > MG_ID_MAX ||
	    key > 255)
		goto slow;
	if (kv_parse_addr(ip, &p->prefix) < 0)
		goto slow;
	if (!mask_null) {
		uint8_t m[16];
		unsigned alen = p->prefix.family == KV_AF_INET ? 4 : 16, plen = 0;
		int mn = kv_b64_decode(mask, m, sizeof(m));

		if (mn < 0 || (unsigned)mn != alen)
			goto slow;
		for (unsigned i = 0; i < alen * 8; i++) {
			bool bit = m[i / 8] & (0x80u >> (i % 8));

			if (bit && plen != i)
				goto slow; /* not contiguous */
			plen += bit;
		}
		p->prefix.plen = (uint8_t)plen;
	}
	p->host_route = mask_null;
	if (!kv_prefix_valid(&p->prefix))
		goto slow;
	if (p->host_ip[0]) {
		struct mg_ipcache_entry h;

		if (kv_parse_addr(p->host_ip, &h) < 0)
			goto slow;
	}
	p->prefix.identity = (uint32_t)id;
	p->key = (uint8_t)key;
	return 1;
slow:
	mg_kv_ip_pair_clear(p);
	return rc;
}

int
mg_kv_ip_pair_decode(const char *json, size_t len, struct mg_kv_ip_pair *p, struct mg_error *err)
{
	char ip[64];
	json_int_t id = 0, key = 0;
	json_t *o;
	int rc = -EINVAL;

	memset(p, 0, sizeof(*p));
	rc = kv_ip_pair_fast(json, len, p);
	if (rc != 0)
		return rc == 1 ? 0 : rc;
	rc = -EINVAL;
	o = kv_load_object("IPIdentityPair", json, len, err);
	if (o == NULL)
		return -EINVAL;
	if (kv_get_str(o, "IP", ip, sizeof(ip), true, err) < 0)
		goto err;
	if (kv_parse_addr(ip, &p->prefix) < 0) {
		mg_error_set(err, NULL, 0, 0, "IPIdentityPair: \"IP\" \"%s\" is not an address",
		             ip);
		goto err;
	}
	if (kv_decode_mask(o, p, err) < 0)
		goto err;
	if (!kv_prefix_valid(&p->prefix)) {
		mg_error_set(err, NULL, 0, 0, "IPIdentityPair: \"IP\" %s has bits set beyond /%u",
		             ip, p->prefix.plen);
		goto err;
	}
	if (kv_get_str(o, "HostIP", p->host_ip, sizeof(p->host_ip), false, err) < 0)
		goto err;
	if (p->host_ip[0]) {
		struct mg_ipcache_entry h;
		if (kv_parse_addr(p->host_ip, &h) < 0) {
			mg_error_set(err, NULL, 0, 0,
			             "IPIdentityPair: \"HostIP\" \"%s\" is not an address",
			             p->host_ip);
			goto err;
		}
	}
	if (kv_get_int(o, "IPIdentityPair", "ID", 1, MG_ID_MAX, true, &id, err) < 0 ||
	    kv_get_int(o, "IPIdentityPair", "Key", 0, 255, false, &key, err) < 0)
		goto err;
	p->prefix.identity = (uint32_t)id;
	p->key = (uint8_t)key;
	if (kv_get_str(o, "Metadata", p->metadata, sizeof(p->metadata), false, err) < 0 ||
	    kv_get_str(o, "K8sNamespace", p->k8s_namespace, sizeof(p->k8s_namespace), false, err) <
	            0 ||
	    kv_get_str(o, "K8sPodName", p->k8s_pod_name, sizeof(p->k8s_pod_name), false, err) < 0)
		goto err;
	rc = kv_decode_ports(o, p, err);
	if (rc < 0)
		goto err;
	json_decref(o);
	return 0;
err:
	json_decref(o);
	mg_kv_ip_pair_clear(p);
	return rc;
}

/* ---- cluster config ---- */

static bool
kv_cluster_config_valid(const struct mg_kv_cluster_config *c)
{
	unsigned max = c->max_connected_clusters ? c->max_connected_clusters : 255;
	return (max == 255 || max == 511) && c->id >= 1 && c->id <= max;
}

char *
mg_kv_cluster_config_encode(const struct mg_kv_cluster_config *c)
{
	json_t *o;
	char *s;

	if (!kv_cluster_config_valid(c)) {
		errno = EINVAL;
		return NULL;
	}
	o = json_pack("{s:i, s:{s:b, s:b, s:i}}", "id", (int)c->id, "capabilities",
	              "syncedCanaries", (int)c->synced_canaries, "cached", (int)c->cached,
	              "maxConnectedClusters",
	              (int)(c->max_connected_clusters ? c->max_connected_clusters : 255));
	if (o == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (s == NULL)
		errno = ENOMEM;
	return s;
}

static int
kv_get_bool(json_t *o, const char *field, bool *out, struct mg_error *err)
{
	json_t *v = json_object_get(o, field);

	*out = false;
	if (v == NULL)
		return 0;
	if (!json_is_boolean(v)) {
		mg_error_set(err, NULL, 0, 0, "cluster config: \"%s\" must be a boolean", field);
		return -EINVAL;
	}
	*out = json_is_true(v);
	return 0;
}

int
mg_kv_cluster_config_decode(const char *json, size_t len, struct mg_kv_cluster_config *c,
                            struct mg_error *err)
{
	json_int_t id = 0, max = 255;
	json_t *o, *caps;
	int rc = -EINVAL;

	memset(c, 0, sizeof(*c));
	o = kv_load_object("cluster config", json, len, err);
	if (o == NULL)
		return -EINVAL;
	caps = json_object_get(o, "capabilities");
	if (caps != NULL && !json_is_null(caps)) {
		if (!json_is_object(caps)) {
			mg_error_set(err, NULL, 0, 0,
			             "cluster config: \"capabilities\" must be an object");
			goto err;
		}
		if (kv_get_bool(caps, "syncedCanaries", &c->synced_canaries, err) < 0 ||
		    kv_get_bool(caps, "cached", &c->cached, err) < 0 ||
		    kv_get_int(caps, "cluster config", "maxConnectedClusters", 0, 511, false, &max,
		               err) < 0)
			goto err;
		if (max == 0)
			max = 255;
		if (max != 255 && max != 511) {
			mg_error_set(err, NULL, 0, 0,
			             "cluster config: maxConnectedClusters must be 255 or 511");
			goto err;
		}
	}
	if (kv_get_int(o, "cluster config", "id", 1, max, true, &id, err) < 0)
		goto err;
	c->id = (unsigned)id;
	c->max_connected_clusters = (unsigned)max;
	rc = 0;
err:
	json_decref(o);
	return rc;
}
