/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Identity values: Cilium's label string, as its SortedList writes it
 * ("source:key=value;" per label). The decoder is strict where
 * mg_labels_parse() is lenient, because the string comes from another
 * process over the network: a bare word or 10 MB of garbage must be
 * refused with a message, never read as one "unspec:" label that a policy
 * might then select.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kv_model_priv.h"

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

int
mg_kv_cluster_label_check(const char *cluster, bool local, const struct mg_labels *ls, char *why,
                          size_t size)
{
	bool found = false;

	for (size_t i = 0; i < ls->n; i++) {
		const struct mg_label *l = &ls->v[i];
		if (strcmp(l->key, MG_LABEL_POLICY_CLUSTER) != 0)
			continue;
		if (strcmp(l->source, "k8s") != 0) {
			snprintf(why, size, "cluster label with source '%.32s', not 'k8s'",
			         l->source);
			return -EXDEV;
		}
		if (strcmp(l->value, cluster) != 0) {
			snprintf(why, size, "cluster label names cluster '%.64s'", l->value);
			return -EXDEV;
		}
		found = true;
	}
	if (!found && !local) {
		snprintf(why, size, "no %s label", MG_LABEL_POLICY_CLUSTER);
		return -EXDEV;
	}
	return 0;
}
