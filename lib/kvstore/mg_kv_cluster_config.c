/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The cluster config (cilium/cluster-config/<cluster>): the cluster id and
 * the capabilities that tell a reader where the data is (cached) and
 * whether to wait for canaries. Decoded as Go's json.Unmarshal decodes
 * Cilium's CiliumClusterConfig (every field omitempty): a missing id reads
 * as 0 (KVStoreMesh up to 1.15 wrote configs without one), missing
 * capabilities as false and maxConnectedClusters as 255, the numbers as
 * uint32. Whether such a config is usable (id 0 is not, an id beyond the
 * gateway's maxConnectedClusters is not) is the reader's decision, as it
 * is Cilium's (ValidateRemoteConfig, ReserveClusterID): see
 * mg_kv_sync_verify.c and docs/kvstore.md.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "kv_model_priv.h"

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
	if (v == NULL || json_is_null(v))
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
	json_t *jid;
	json_t *o, *caps;
	int rc = -EINVAL;

	memset(c, 0, sizeof(*c));
	o = kvm_load_object("cluster config", json, len, err);
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
		    kv_get_bool(caps, "cached", &c->cached, err) < 0)
			goto err;
		if (!json_is_null(json_object_get(caps, "maxConnectedClusters")) &&
		    kvm_get_int(caps, "cluster config", "maxConnectedClusters", 0, UINT32_MAX,
		                false, &max, err) < 0)
			goto err;
		if (max == 0)
			max = 255;
	}
	/* Go: a missing or null id leaves 0; the reader refuses it. */
	jid = json_object_get(o, "id");
	if (jid != NULL && !json_is_null(jid) &&
	    kvm_get_int(o, "cluster config", "id", 0, UINT32_MAX, false, &id, err) < 0)
		goto err;
	c->id = (unsigned)id;
	c->max_connected_clusters = (unsigned)max;
	rc = 0;
err:
	json_decref(o);
	return rc;
}
