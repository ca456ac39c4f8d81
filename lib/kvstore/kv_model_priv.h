/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private helpers of the Redis data model (mg_kvstore.h), shared by its
 * files: mg_kv_keys.c (key builders and parsers), mg_kv_labels.c (identity
 * values), mg_kv_ip_pair.c (IPIdentityPair, jansson) and its fast path
 * mg_kv_ip_fast.c, mg_kv_cluster_config.c, and mg_kv_codec.c (base64,
 * protocol names, strict JSON fields). All of them are pure C over strings.
 * Every value they read comes from another process over the network,
 * possibly an older or newer Cilium, possibly garbage, so each decoder
 * checks types and ranges and says precisely what is wrong. The helpers
 * shared between the files carry the kvm_ prefix.
 */
#ifndef MG_KV_MODEL_PRIV_H
#define MG_KV_MODEL_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "mg_kvstore.h"

/* mg_pkt.h's family numbers, which mg_ipcache_entry uses. */
#define KV_AF_INET 2
#define KV_AF_INET6 10

static inline bool
kvm_id_valid(uint32_t id)
{
	return id != 0 && id <= MG_ID_MAX;
}

static inline bool
kvm_full_len(const struct mg_ipcache_entry *e)
{
	return e->plen == (e->family == KV_AF_INET ? 32 : 128);
}

/* ---- mg_kv_keys.c ---- */

/* family valid, plen in range, host bits zero */
bool kvm_prefix_valid(const struct mg_ipcache_entry *e);
/* Parse an address literal of either family into e (plen = full). */
int kvm_parse_addr(const char *s, struct mg_ipcache_entry *e);
/* As kvm_parse_addr for an IP inside a value: an IPv4-mapped IPv6 literal
 * (::ffff:a.b.c.d) is the IPv4 address, as Go's net.IP prints it. */
int kvm_parse_value_addr(const char *s, struct mg_ipcache_entry *e);

/* ---- mg_kv_codec.c ---- */

/* Padded base64 of @n bytes into @out (4 * ((n + 2) / 3) + 1 bytes). */
void kvm_b64_encode(const uint8_t *in, size_t n, char *out);
/* Decode padded base64 into out (at most cap bytes). Length or -EINVAL. */
int kvm_b64_decode(const char *s, uint8_t *out, size_t cap);
/* Prefix length of a mask of @n bytes as Go's IPMask.Size reads it (its
 * leading ones, when all ones come first) into *@plen: 0, or -EINVAL when
 * not canonical or longer than @family's address. */
int kvm_mask_len(const uint8_t *m, size_t n, uint8_t family, uint8_t *plen);
/* Load JSON text strictly: one value, an object, no duplicate keys. */
json_t *kvm_load_object(const char *what, const char *text, size_t len, struct mg_error *err);
/* Integer field in [min, max]; a missing one is an error when @required. */
int kvm_get_int(json_t *o, const char *what, const char *field, json_int_t min, json_int_t max,
                bool required, json_int_t *out, struct mg_error *err);

/* ---- mg_kv_ip_fast.c ---- */

/* 1 decoded into zeroed @p p, 0 leave it to the jansson path (p cleared), -ENOMEM. */
int kvm_ip_pair_fast(const char *json, size_t len, struct mg_kv_ip_pair *p);

#endif /* MG_KV_MODEL_PRIV_H */
