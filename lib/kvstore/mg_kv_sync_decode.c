/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Validation: what the sync client reads from Redis (keys, values, log
 * entries) turned into records, or refused. Values go through the data
 * model's strict decoders, then through the checks Cilium's validators make
 * on remote clusters (identity ranges, local-scope identities, the cluster
 * label), for every cluster, the local one included. A refused value is
 * counted by reason and skipped; nothing is ever half applied, and a
 * refused put from the log also drops what the key held before, since the
 * key no longer holds a valid value.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "kv_sync_priv.h"

/* 0 key of @c's kind, -ENOENT not a key we sync (ignored). */
int
kvs_key_decode(const struct cl *c, const char *key, struct decoded *d)
{
	memset(d, 0, sizeof(*d));
	uint32_t id;
	if (mg_kv_identity_key_parse(key, c->scope, c->name, &id) == 0) {
		d->k.kind = REC_IDENTITY;
		d->k.id = id;
		return 0;
	}
	struct mg_ipcache_entry e;
	bool host_route;
	memset(&e, 0, sizeof(e));
	if (mg_kv_ip_key_parse(key, c->scope, c->name, &e, &host_route) == 0) {
		d->k.kind = REC_IP;
		d->k.family = e.family;
		d->k.plen = e.plen;
		memcpy(d->k.addr, e.addr, sizeof(d->k.addr));
		return 0;
	}
	return -ENOENT;
}

/*
 * May cluster @c hold identity @id (as an ipcache entry's ID when @ip)?
 * Reserved identities always; local-scope identities (bit 24, the CIDR
 * identities an agent allocates for itself) only as the local cluster's
 * ipcache entries: they mean nothing outside the cluster that made them
 * and are never stored as identity keys; everything else within the
 * cluster's range, as Cilium's validators of remote clusters check it,
 * for the local cluster too.
 */
static bool
in_range(const struct mg_kv_sync *s, const struct cl *c, uint32_t id, bool ip)
{
	uint32_t first, last;

	if (mg_identity_is_reserved(id))
		return ip;
	if (mg_identity_is_local_scope(id))
		return ip && c->local;
	mg_identity_cluster_range(c->cid, s->mode, &first, &last);
	return first != 0 && id >= first && id <= last;
}

/* 0 valid (d->identity set), -EINVAL unparsable, -ERANGE out of range,
 * -EXDEV another cluster's identity (@why says why), -ENOENT an ipcache
 * entry with ID 0, -ENOMEM. */
static int
value_check(struct mg_kv_sync *s, struct cl *c, struct decoded *d, const char *val, size_t len,
            char *why, size_t size)
{
	struct mg_error err;
	if (d->k.kind == REC_IDENTITY) {
		struct mg_labels ls = MG_LABELS_INIT;
		int rc = mg_kv_identity_value_decode(val, len, &ls, &err);
		if (rc == 0 && !in_range(s, c, d->k.id, false))
			rc = -ERANGE;
		if (rc == 0)
			rc = mg_kv_cluster_label_check(c->name, c->local, &ls, why, size);
		mg_labels_clear(&ls);
		if (rc < 0)
			return rc == -ENOMEM || rc == -ERANGE || rc == -EXDEV ? rc : -EINVAL;
		d->identity = d->k.id;
		return 0;
	}
	/* The decoder sets every field: no memset of its 900 bytes per value. */
	struct mg_kv_ip_pair pair;
	int rc = mg_kv_ip_pair_decode(val, len, &pair, &err);
	if (rc < 0)
		return rc == -ENOMEM ? rc : -EINVAL;
	uint32_t id = pair.prefix.identity;
	if (id == 0) {
		/* An endpoint without an identity yet: nothing to map it to. */
		mg_kv_ip_pair_clear(&pair);
		return -ENOENT;
	}
	bool same = pair.prefix.family == d->k.family && pair.prefix.plen == d->k.plen &&
	            memcmp(pair.prefix.addr, d->k.addr, sizeof(d->k.addr)) == 0;
	if (!c->local && id == MG_ID_HOST)
		id = MG_ID_REMOTE_NODE;
	if (!same || !in_range(s, c, id, true)) {
		mg_kv_ip_pair_clear(&pair);
		return same ? -ERANGE : -EINVAL;
	}
	d->identity = id;
	c->st.named_ports_dropped += pair.n_dropped_ports;
	/* The named ports go with the record (at most MG_KV_IP_MAX_NAMED_PORTS). */
	d->np = pair.named_ports; /* the pair owns nothing else */
	d->n_np = (uint8_t)pair.n_named_ports;
	return 0;
}

/* Validate the value of a decoded key; counts rejections. 1 accepted, 0 skipped, -ENOMEM. */
int
kvs_decode_value(struct mg_kv_sync *s, struct cl *c, const char *key, const char *val, size_t len,
                 struct decoded *d)
{
	char why[128] = "";
	int rc = value_check(s, c, d, val, len, why, sizeof(why));
	if (rc == -ENOMEM)
		return rc;
	if (rc == -EXDEV) {
		c->st.rejected_cluster++;
		MG_WARN("kv sync: %s: rejected %s: %s", c->name, key, why);
		return 0;
	}
	if (rc == -EINVAL) {
		c->st.rejected_parse++;
		MG_WARN("kv sync: %s: rejected unparsable value of %s", c->name, key);
		return 0;
	}
	if (rc == -ENOENT) {
		/*
		 * ID 0: Cilium's agent upserts it over the address's previous
		 * mapping (IPIdentityWatcher.OnUpdate lets IDs below 256
		 * through), so the old identity no longer applies to the
		 * address; the gateway has no identity 0 and drops the key's
		 * entry instead (the caller does, as for a rejected value).
		 */
		c->st.skipped_no_identity++;
		MG_DEBUG("kv sync: %s: skipped %s: ID 0 (no identity yet)", c->name, key);
		return 0;
	}
	if (rc == -ERANGE) {
		c->st.rejected_range++;
		MG_WARN("kv sync: %s: rejected %s: identity outside cluster %u's range", c->name,
		        key, c->cid);
		return 0;
	}
	return 1;
}

/* Key and value; 1 accepted (d->np owned by the caller), 0 skipped, -ENOMEM. */
static int
decode_entry(struct mg_kv_sync *s, struct cl *c, const char *key, const char *val, size_t len,
             struct decoded *d)
{
	if (kvs_key_decode(c, key, d) < 0)
		return 0;
	return kvs_decode_value(s, c, key, val, len, d);
}

char *
kvs_reply_dup(const redisReply *r)
{
	char *v = malloc(r->len + 1);
	if (v != NULL) {
		memcpy(v, r->str, r->len);
		v[r->len] = '\0';
	}
	return v;
}

/* Apply one log entry (fields op/key/value) to map @m, validating. */
int
kvs_log_entry_to_shadow(struct mg_kv_sync *s, struct cl *c, struct rmap *m,
                        const redisReply *fields)
{
	const char *op = NULL, *key = NULL;
	const redisReply *val = NULL;
	if (fields->type != REDIS_REPLY_ARRAY)
		return 0;
	for (size_t i = 0; i + 1 < fields->elements; i += 2) {
		const redisReply *f = fields->element[i], *v = fields->element[i + 1];
		if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
			continue;
		if (strcmp(f->str, "op") == 0)
			op = v->str;
		else if (strcmp(f->str, "key") == 0)
			key = v->str;
		else if (strcmp(f->str, "value") == 0)
			val = v;
	}
	if (op == NULL || key == NULL) {
		c->st.rejected_parse++;
		return 0;
	}
	struct decoded d;
	if (strcmp(op, "del") == 0) {
		if (kvs_key_decode(c, key, &d) == 0) {
			if (m != NULL)
				rmap_del(m, &d.k);
			else
				return kvs_apply_del(s, c, &d.k);
		}
		return 0;
	}
	if (strcmp(op, "put") != 0 || val == NULL) {
		c->st.rejected_parse++;
		return 0;
	}
	int rc = decode_entry(s, c, key, val->str, val->len, &d);
	if (rc <= 0) {
		/* A rejected put replaces what the key held: drop the old value. */
		if (rc == 0 && kvs_key_decode(c, key, &d) == 0) {
			if (m != NULL)
				rmap_del(m, &d.k);
			else
				return kvs_apply_del(s, c, &d.k);
		}
		return rc;
	}
	char *v = NULL;
	if (d.k.kind == REC_IDENTITY && (v = kvs_reply_dup(val)) == NULL) {
		free(d.np);
		return -ENOMEM;
	}
	return m != NULL ? rmap_put(m, &d.k, d.identity, v, d.np, d.n_np)
	                 : kvs_apply_put(s, c, &d, v);
}
