/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The Redis data model's keys: builders and parsers of every key kind of
 * Cilium's kvstore layout (identities and ipcache entries in the
 * single-cluster state layout and the per-cluster cache layout, cluster
 * configs, canaries) and of meshgate's own (log, epoch, removal marker).
 * The builders and the parsers are exact inverses, which the unit tests
 * check by round trip, and the parsers accept only the canonical form
 * (decimal without leading zeros, addresses without host bits), so that a
 * key names one thing in exactly one way.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kv_model_priv.h"

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

int
mg_kv_identity_key(char *buf, size_t size, enum mg_kv_scope scope, const char *cluster, uint32_t id)
{
	if (!kvm_id_valid(id))
		return -EINVAL;
	if (scope == MG_KV_SCOPE_STATE)
		return kv_fmt(buf, size, MG_KV_STATE_IDENTITIES "/id/%u", id);
	if (!mg_kv_cluster_name_valid(cluster))
		return -EINVAL;
	return kv_fmt(buf, size, MG_KV_CACHE_IDENTITIES "/%s/id/%u", cluster, id);
}

/* family valid, plen in range, host bits zero */
bool
kvm_prefix_valid(const struct mg_ipcache_entry *e)
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

	if (!kvm_prefix_valid(e) || (host_route && !kvm_full_len(e)))
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

int
mg_kv_heartbeat_key(char *buf, size_t size, const char *cluster)
{
	if (!mg_kv_cluster_name_valid(cluster))
		return -EINVAL;
	return kv_fmt(buf, size, MG_KV_HEARTBEAT "/%s", cluster);
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
int
kvm_parse_addr(const char *s, struct mg_ipcache_entry *e)
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
kvm_parse_value_addr(const char *s, struct mg_ipcache_entry *e)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (kvm_parse_addr(s, e) < 0)
		return -EINVAL;
	if (e->family == KV_AF_INET6 && memcmp(e->addr, mapped, sizeof(mapped)) == 0) {
		memmove(e->addr, e->addr + 12, 4);
		memset(e->addr + 4, 0, 12);
		e->family = KV_AF_INET;
		e->plen = 32;
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
	if (kvm_parse_addr(addr, &t) < 0)
		return -EINVAL;
	if (slash) {
		if (kv_parse_uint(slash + 1, t.plen, &plen) < 0)
			return -EINVAL;
		t.plen = (uint8_t)plen;
		if (!kvm_prefix_valid(&t))
			return -EINVAL;
	}
	e->family = t.family;
	e->plen = t.plen;
	memcpy(e->addr, t.addr, sizeof(e->addr));
	*host_route = slash == NULL;
	return 0;
}
