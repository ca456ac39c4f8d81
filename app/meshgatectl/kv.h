/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * meshgatectl kv's input: the CiliumIdentity and CiliumEndpoint manifests
 * read by kv_parse.c for kv.c, which writes them.
 */
#ifndef MG_MESHGATECTL_KV_H
#define MG_MESHGATECTL_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_kvstore.h"
#include "mg_yaml.h"

#define KV_PROTO_TCP 6
#define KV_PROTO_UDP 17
#define KV_PROTO_SCTP 132

struct kv_ident {
	uint32_t id;
	char *labels; /* canonical label string */
	char key[MG_KV_KEY_MAX];
};

struct kv_ip {
	struct mg_kv_ip_pair p;
	char key[MG_KV_KEY_MAX];
	char where[300]; /* file:line:col of the address, for duplicates */
	char addr[64];   /* as written */
};

struct kv_input {
	size_t n_ids, cap_ids;
	struct kv_ident *ids;
	size_t n_ips, cap_ips;
	struct kv_ip *ips;
	size_t skipped;
	/* The cluster the input is written for: its layout (keys) and its
	 * range and name (checks: what the gateways would refuse is refused
	 * before anything is written). */
	enum mg_kv_scope scope;
	const char *cluster;
	unsigned cluster_id;
	enum mg_cluster_mode mode;
	/* Every key of the input, sorted, for --prune. */
	size_t n_keys;
	char **keys;
};

/* A decimal number in [@p min, @p max] into @p out. 0 or -EINVAL. */
int kv_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out);

void kv_input_free(struct kv_input *in);

/*
 * One manifest document into @p in: a CiliumIdentity, a CiliumEndpoint
 * or (unless @p in_list) a kind: List of them, checked as the gateways
 * would check them. 0, or negative errno with @p err ("file:line:col: ...").
 */
int kv_parse_doc(struct kv_input *in, const struct mg_yaml_node *doc, bool in_list,
                 struct mg_error *err);

/* An address given twice: an error at its second place, naming the first. */
int kv_check_dups(struct kv_input *in, struct mg_error *err);

/* Index every key of the input for --prune (kv_keep). 0 or -ENOMEM. */
int kv_index_keys(struct kv_input *in);

/* Whether --prune keeps @p key (the input names it); @p arg is the kv_input. */
bool kv_keep(const char *key, void *arg);

#endif /* MG_MESHGATECTL_KV_H */
