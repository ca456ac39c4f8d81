/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Would a gateway take this value? The checks of the gateways' sync client
 * (docs/kvstore.md), as Cilium's validators of remote clusters make them:
 * the key must be an identity id or an address of the cluster's cache
 * layout; an identity must be a label string in the cluster's range with
 * its k8s:io.cilium.k8s.policy.cluster label naming the cluster; an
 * ipcache entry an IPIdentityPair whose IP and Mask are its key and whose
 * ID is reserved or in the cluster's range (ID 0: an endpoint without an
 * identity yet, skipped). Pure (no state but its context): the writer
 * runs it on each new or changed value, and on every value again when the
 * cluster's id changes.
 */
#include <stdio.h>
#include <string.h>

#include "rep_priv.h"

void
rep_check_ctx_init(struct rep_check_ctx *ck, const struct mg_rep_config *c, const char *cluster,
                   unsigned cid)
{
	ck->cluster = cluster;
	ck->cid = cid;
	ck->mode = c->cluster_mode;
	ck->max_value = c->max_value_bytes;
}

static bool
in_range(const struct rep_check_ctx *ck, uint32_t id)
{
	uint32_t first, last;
	mg_identity_cluster_range(ck->cid, ck->mode, &first, &last);
	return first != 0 && id >= first && id <= last;
}

static int
check_identity(const struct rep_check_ctx *ck, const char *k, const char *val, size_t vlen,
               uint32_t *idp, char *why, size_t size)
{
	char key[MG_KV_KEY_MAX];
	struct mg_labels ls = MG_LABELS_INIT;
	struct mg_error err = {{0}};
	uint32_t id;
	snprintf(key, sizeof(key), "%s/%s/id/%s", MG_KV_CACHE_IDENTITIES, ck->cluster, k);
	if (mg_kv_identity_key_parse(key, MG_KV_SCOPE_CACHE, ck->cluster, &id) < 0) {
		snprintf(why, size, "not an identity key");
		return REP_R_KEY + 1;
	}
	*idp = id;
	if (mg_kv_identity_value_decode(val, vlen, &ls, &err) < 0) {
		snprintf(why, size, "%.*s", (int)size - 1, err.msg);
		return REP_R_PARSE + 1;
	}
	int rc = 0;
	if (!in_range(ck, id)) {
		snprintf(why, size, "identity %u is outside cluster %u's range", id, ck->cid);
		rc = REP_R_RANGE + 1;
	} else if (mg_kv_cluster_label_check(ck->cluster, false, &ls, why, size) < 0) {
		rc = REP_R_CLUSTER + 1;
	}
	mg_labels_clear(&ls);
	return rc;
}

static int
check_ip(const struct rep_check_ctx *ck, const char *k, const char *val, size_t vlen, uint32_t *idp,
         char *why, size_t size)
{
	char key[MG_KV_KEY_MAX];
	struct mg_ipcache_entry e;
	struct mg_kv_ip_pair pair;
	struct mg_error err = {{0}};
	bool host;
	snprintf(key, sizeof(key), "%s/%s/%s", MG_KV_CACHE_IP, ck->cluster, k);
	if (mg_kv_ip_key_parse(key, MG_KV_SCOPE_CACHE, ck->cluster, &e, &host) < 0) {
		snprintf(why, size, "not an address key");
		return REP_R_KEY + 1;
	}
	memset(&pair, 0, sizeof(pair));
	if (mg_kv_ip_pair_decode(val, vlen, &pair, &err) < 0) {
		snprintf(why, size, "%.*s", (int)size - 1, err.msg);
		return REP_R_PARSE + 1;
	}
	uint32_t id = pair.prefix.identity;
	bool same = pair.prefix.family == e.family && pair.prefix.plen == e.plen &&
	            memcmp(pair.prefix.addr, e.addr, sizeof(e.addr)) == 0;
	mg_kv_ip_pair_clear(&pair);
	*idp = id;
	if (id == 0)
		return REP_V_ID_ZERO; /* an endpoint without identity yet: skipped, as gateways do */
	if (!same) {
		snprintf(why, size, "the value's IP and Mask are not its key's address");
		return REP_R_KEY + 1;
	}
	if (!mg_identity_is_reserved(id) && !in_range(ck, id)) {
		snprintf(why, size, "identity %u is outside cluster %u's range", id, ck->cid);
		return REP_R_RANGE + 1;
	}
	return 0;
}

int
rep_check(const struct rep_check_ctx *ck, int prefix, const char *key, size_t klen, const char *val,
          size_t vlen, uint32_t *id, char *why, size_t size)
{
	*id = 0;
	why[0] = '\0';
	if (vlen > ck->max_value) {
		snprintf(why, size, "value of %zu bytes (limits.max_value_bytes %zu)", vlen,
		         ck->max_value);
		return REP_R_SIZE + 1;
	}
	if (klen >= MG_KV_KEY_MAX / 2) {
		snprintf(why, size, "key of %zu bytes", klen);
		return REP_R_KEY + 1;
	}
	return prefix == REP_IDS ? check_identity(ck, key, val, vlen, id, why, size)
	                         : check_ip(ck, key, val, vlen, id, why, size);
}
