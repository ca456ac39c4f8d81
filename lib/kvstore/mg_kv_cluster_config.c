/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The cluster config (cilium/cluster-config/<cluster>): the cluster id and
 * the capabilities that tell a reader where the data is (cached) and
 * whether to wait for canaries. Missing capabilities read as Cilium 1.14
 * and older wrote them (false, 255 clusters); anything else out of range
 * is refused, since the id decides identity ranges and conflict order.
 */
#include <errno.h>
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
		    kv_get_bool(caps, "cached", &c->cached, err) < 0 ||
		    kvm_get_int(caps, "cluster config", "maxConnectedClusters", 0, 511, false, &max,
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
	if (kvm_get_int(o, "cluster config", "id", 1, max, true, &id, err) < 0)
		goto err;
	c->id = (unsigned)id;
	c->max_connected_clusters = (unsigned)max;
	rc = 0;
err:
	json_decref(o);
	return rc;
}
