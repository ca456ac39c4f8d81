/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Cilium's IPIdentityPair, the value of an ipcache key: encoded as Go's
 * JSON writes it (fields in Cilium's order, Mask base64 or null, empty K8s
 * fields and NamedPorts omitted) and decoded strictly with jansson: types,
 * ranges, an address without bits beyond a contiguous mask, duplicate keys,
 * each refused with a message naming the field; a named port Cilium's
 * agent would not use is dropped and counted, the rest kept. Unknown
 * fields are ignored, as Cilium's Go decoder ignores them, so that a newer
 * writer does not break an older reader. Values of the common shape take
 * the fast path of mg_kv_ip_fast.c first, which gives the same results.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_model_priv.h"

void
mg_kv_ip_pair_clear(struct mg_kv_ip_pair *p)
{
	free(p->named_ports);
	memset(p, 0, sizeof(*p));
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

	if (!kvm_prefix_valid(&p->prefix) || (p->host_route && !kvm_full_len(&p->prefix)) ||
	    !kvm_id_valid(p->prefix.identity)) {
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
	kvm_b64_encode(mask, alen, mask64);

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
			const char *pn = mg_kv_proto_name(np->proto);
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

/*
 * A NamedPorts entry's fields, decoded as Go decodes Cilium's NamedPort
 * {Name string, Port uint16, Protocol string}: a wrong type (a number for
 * Name, a string or 70000 for Port) fails json.Unmarshal, and with it the
 * whole value; null or a missing field is the zero value. -EINVAL (err
 * set) or 0.
 */
static int
kv_port_fields(const char *where, json_t *jn, json_t *port, json_t *proto, const char **name,
               json_int_t *num, const char **pr, struct mg_error *err)
{
	*name = "";
	*num = 0;
	*pr = "";
	if (jn != NULL && !json_is_null(jn)) {
		if (!json_is_string(jn)) {
			mg_error_set(err, NULL, 0, 0, "IPIdentityPair: %s: Name must be a string",
			             where);
			return -EINVAL;
		}
		/* A NUL inside is no IANA service name: dropped, as Go's check would. */
		*name = strlen(json_string_value(jn)) == json_string_length(jn)
		                ? json_string_value(jn)
		                : "-";
	}
	if (port != NULL && !json_is_null(port)) {
		if (!json_is_integer(port) || json_integer_value(port) < 0 ||
		    json_integer_value(port) > 65535) {
			mg_error_set(err, NULL, 0, 0,
			             "IPIdentityPair: %s: Port must be an integer 0-65535", where);
			return -EINVAL;
		}
		*num = json_integer_value(port);
	}
	if (proto != NULL && !json_is_null(proto)) {
		if (!json_is_string(proto)) {
			mg_error_set(err, NULL, 0, 0,
			             "IPIdentityPair: %s: Protocol must be a string", where);
			return -EINVAL;
		}
		*pr = strlen(json_string_value(proto)) == json_string_length(proto)
		              ? json_string_value(proto)
		              : "?";
	}
	return 0;
}

/*
 * Add one named port as Cilium's agent does (NamedPortMap.AddPort): a name
 * that is not an IANA service name, port 0, or a protocol other than TCP,
 * UDP or SCTP ("" is TCP, as in Kubernetes) drops this port only, and
 * counts it; the name is lower-cased; a later port of the same name
 * replaces the earlier one (Cilium's map), which counts as dropped.
 */
static int
kv_add_port(struct mg_kv_ip_pair *p, size_t *cap, const char *name, json_int_t port,
            const char *proto, struct mg_error *err)
{
	struct mg_named_port np;
	int rc;

	memset(&np, 0, sizeof(np));
	if (!mg_port_name_valid(name) || port == 0 ||
	    (proto[0] == '\0' ? (np.proto = 6, 0) : mg_kv_proto_parse(proto, &np.proto)) < 0) {
		p->n_dropped_ports++;
		return 0;
	}
	for (size_t i = 0; name[i]; i++)
		np.name[i] =
		        (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]);
	np.port = (uint16_t)port;
	for (size_t i = 0; i < p->n_named_ports; i++) {
		if (strcmp(p->named_ports[i].name, np.name) == 0) {
			p->named_ports[i] = np;
			p->n_dropped_ports++;
			return 0;
		}
	}
	if (p->n_named_ports >= MG_KV_IP_MAX_NAMED_PORTS) {
		mg_error_set(err, NULL, 0, 0, "IPIdentityPair: more than %d named ports",
		             MG_KV_IP_MAX_NAMED_PORTS);
		return -EINVAL;
	}
	rc = mg_grow(&p->named_ports, cap, p->n_named_ports, sizeof(np), 4);
	if (rc < 0)
		return rc;
	p->named_ports[p->n_named_ports++] = np;
	return 0;
}

static int
kv_decode_ports(json_t *o, struct mg_kv_ip_pair *p, struct mg_error *err)
{
	json_t *v = json_object_get(o, "NamedPorts"), *e;
	const char *name, *nm, *pr;
	char where[96];
	json_int_t num;
	size_t cap = 0, i;
	int rc;

	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_array(v)) {
		json_array_foreach(v, i, e)
		{
			snprintf(where, sizeof(where), "NamedPorts[%zu]", i);
			if (json_is_null(e)) {
				p->n_dropped_ports++; /* Go: a zero NamedPort, no name */
				continue;
			}
			if (!json_is_object(e)) {
				mg_error_set(err, NULL, 0, 0,
				             "IPIdentityPair: %s must be an object", where);
				return -EINVAL;
			}
			rc = kv_port_fields(where, json_object_get(e, "Name"),
			                    json_object_get(e, "Port"),
			                    json_object_get(e, "Protocol"), &nm, &num, &pr, err);
			if (rc == 0)
				rc = kv_add_port(p, &cap, nm, num, pr, err);
			if (rc < 0)
				return rc;
		}
		return 0;
	}
	if (json_is_object(v)) {
		json_object_foreach(v, name, e)
		{
			snprintf(where, sizeof(where), "NamedPorts \"%.64s\"", name);
			if (!json_is_object(e)) {
				mg_error_set(err, NULL, 0, 0,
				             "IPIdentityPair: %s must be an object", where);
				return -EINVAL;
			}
			rc = kv_port_fields(where, NULL, json_object_get(e, "Port"),
			                    json_object_get(e, "Protocol"), &nm, &num, &pr, err);
			if (rc == 0)
				rc = kv_add_port(p, &cap, name, num, pr, err);
			if (rc < 0)
				return rc;
		}
		return 0;
	}
	mg_error_set(err, NULL, 0, 0, "IPIdentityPair: NamedPorts must be an array or an object");
	return -EINVAL;
}

/*
 * Mask: null (a host route) or base64 of a mask. Cilium names the prefix
 * IP.String() + "/" + ones of Go's IPMask.Size(), and refuses a value whose
 * prefix is not its key: so the length of a canonical mask is its leading
 * ones whatever its byte length (a 16-byte mask of 24 ones is /24 for an
 * IPv4 address; ::ffff:255.255.255.0 style masks are not canonical, and
 * 12 bytes of ones then ffffff00 is /120, which no IPv4 key names). A mask
 * that is not canonical, longer than 16 bytes or longer than the address
 * is refused (Go would read a non-canonical mask as /0).
 */
static int
kv_decode_mask(json_t *o, struct mg_kv_ip_pair *p, struct mg_error *err)
{
	json_t *v = json_object_get(o, "Mask");
	uint8_t mask[16];
	int n;

	if (v == NULL || json_is_null(v)) {
		p->host_route = true;
		return 0;
	}
	if (!json_is_string(v)) {
		mg_error_set(err, NULL, 0, 0, "IPIdentityPair: \"Mask\" must be base64 or null");
		return -EINVAL;
	}
	n = kvm_b64_decode(json_string_value(v), mask, sizeof(mask));
	if (n < 0) {
		mg_error_set(err, NULL, 0, 0,
		             "IPIdentityPair: \"Mask\" must be base64 of at most 16 bytes");
		return -EINVAL;
	}
	if (kvm_mask_len(mask, (size_t)n, p->prefix.family, &p->prefix.plen) < 0) {
		mg_error_set(err, NULL, 0, 0,
		             "IPIdentityPair: \"Mask\" is not a contiguous mask of at most %u bits",
		             p->prefix.family == KV_AF_INET ? 32u : 128u);
		return -EINVAL;
	}
	p->host_route = false;
	return 0;
}

int
mg_kv_ip_pair_decode(const char *json, size_t len, struct mg_kv_ip_pair *p, struct mg_error *err)
{
	char ip[64];
	json_int_t id = 0, key = 0;
	json_t *o;
	int rc = -EINVAL;

	memset(p, 0, sizeof(*p));
	rc = kvm_ip_pair_fast(json, len, p);
	if (rc != 0)
		return rc == 1 ? 0 : rc;
	rc = -EINVAL;
	o = kvm_load_object("IPIdentityPair", json, len, err);
	if (o == NULL)
		return -EINVAL;
	if (kv_get_str(o, "IP", ip, sizeof(ip), true, err) < 0)
		goto err;
	if (kvm_parse_value_addr(ip, &p->prefix) < 0) {
		mg_error_set(err, NULL, 0, 0, "IPIdentityPair: \"IP\" \"%s\" is not an address",
		             ip);
		goto err;
	}
	if (kv_decode_mask(o, p, err) < 0)
		goto err;
	if (!kvm_prefix_valid(&p->prefix)) {
		mg_error_set(err, NULL, 0, 0, "IPIdentityPair: \"IP\" %s has bits set beyond /%u",
		             ip, p->prefix.plen);
		goto err;
	}
	if (kv_get_str(o, "HostIP", p->host_ip, sizeof(p->host_ip), false, err) < 0)
		goto err;
	if (p->host_ip[0]) {
		struct mg_ipcache_entry h;
		if (kvm_parse_addr(p->host_ip, &h) < 0) {
			mg_error_set(err, NULL, 0, 0,
			             "IPIdentityPair: \"HostIP\" \"%s\" is not an address",
			             p->host_ip);
			goto err;
		}
	}
	/* ID 0 (or none: Go leaves 0): an endpoint without an identity yet; the reader skips it. */
	if ((!json_is_null(json_object_get(o, "ID")) &&
	     kvm_get_int(o, "IPIdentityPair", "ID", 0, MG_ID_MAX, false, &id, err) < 0) ||
	    kvm_get_int(o, "IPIdentityPair", "Key", 0, 255, false, &key, err) < 0)
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
