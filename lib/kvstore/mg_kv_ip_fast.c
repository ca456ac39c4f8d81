/* SPDX-License-Identifier: BSD-3-Clause */
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
#include <errno.h>
#include <string.h>

#include "kv_model_priv.h"

/* The scanner's position in the value. */
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
	/* Anything the slow path would drop, lower-case or default is its job. */
	if (!kv_lit(s, '}') || seen != 7 || port < 1 || port > 65535 || !mg_port_name_valid(name) ||
	    proto[0] == '\0' || mg_kv_proto_parse(proto, &pr) < 0 ||
	    p->n_named_ports >= MG_KV_IP_MAX_NAMED_PORTS)
		return 0;
	for (size_t i = 0; name[i]; i++)
		if (name[i] >= 'A' && name[i] <= 'Z')
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
int
kvm_ip_pair_fast(const char *json, size_t len, struct mg_kv_ip_pair *p)
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
	if (kvm_parse_value_addr(ip, &p->prefix) < 0)
		goto slow;
	if (!mask_null) {
		uint8_t m[16];
		unsigned alen = p->prefix.family == KV_AF_INET ? 4 : 16, plen = 0;
		int mn = kvm_b64_decode(mask, m, sizeof(m));

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
	if (!kvm_prefix_valid(&p->prefix))
		goto slow;
	if (p->host_ip[0]) {
		struct mg_ipcache_entry h;

		if (kvm_parse_addr(p->host_ip, &h) < 0)
			goto slow;
	}
	p->prefix.identity = (uint32_t)id;
	p->key = (uint8_t)key;
	return 1;
slow:
	mg_kv_ip_pair_clear(p);
	return rc;
}
