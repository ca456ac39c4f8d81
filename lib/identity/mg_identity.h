/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Security identities as Cilium numbers and labels them.
 *
 * Numbers: 24 significant bits. Reserved identities 1-10 (below). Cluster
 * identities carry the cluster id above a 16-bit local part (255-cluster
 * mode) or a 15-bit one (511-cluster mode). Local-scope identities (CIDR
 * identities allocated by a node, here by the gateway) have bit 24 set.
 *
 * Labels: "source:key=value". A label set is kept sorted by (source, key)
 * and formats as Cilium's kvstore label string: every label followed by
 * ';' ("k8s:app=web;k8s:io.kubernetes.pod.namespace=default;").
 *
 * The identity table (id -> labels) is a control-plane object; the data
 * path only ever sees numbers.
 */
#ifndef MG_IDENTITY_H
#define MG_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_common.h"

/* Reserved identities. */
#define MG_ID_UNKNOWN 0
#define MG_ID_HOST 1
#define MG_ID_WORLD 2
#define MG_ID_UNMANAGED 3
#define MG_ID_HEALTH 4
#define MG_ID_INIT 5
#define MG_ID_REMOTE_NODE 6
#define MG_ID_KUBE_APISERVER 7
#define MG_ID_INGRESS 8
#define MG_ID_WORLD_IPV4 9
#define MG_ID_WORLD_IPV6 10
#define MG_ID_RESERVED_MAX 10
/** First identity a cluster allocates for its pods (Cilium: 256). */
#define MG_ID_MIN_CLUSTER_LOCAL 256
/** Bit that marks a local-scope (CIDR) identity. */
#define MG_ID_LOCAL_SCOPE (1u << 24)
/** Largest valid identity (24 bits plus the local-scope bit). */
#define MG_ID_MAX ((1u << 24) | 0xffffffu)

/** Cluster-id layout: how many clusters a mesh can hold. */
enum mg_cluster_mode {
	MG_CLUSTER_MODE_255 = 255, /**< cluster id in bits 16-23, ids 1..255 */
	MG_CLUSTER_MODE_511 = 511, /**< cluster id in bits 15-23, ids 1..511 */
};

/** Number of local-part bits in @p mode (16 or 15). */
unsigned mg_identity_cluster_shift(enum mg_cluster_mode mode);

/** Cluster id of @p id (0 for reserved and local-scope identities). */
unsigned mg_identity_cluster(uint32_t id, enum mg_cluster_mode mode);

/** First and last identity of cluster @p cluster_id in @p mode (both 0 when invalid). */
void mg_identity_cluster_range(unsigned cluster_id, enum mg_cluster_mode mode, uint32_t *first,
                               uint32_t *last);

static inline bool
mg_identity_is_reserved(uint32_t id)
{
	return id >= 1 && id <= MG_ID_RESERVED_MAX;
}

static inline bool
mg_identity_is_local_scope(uint32_t id)
{
	return (id & MG_ID_LOCAL_SCOPE) != 0;
}

/** Name of a reserved identity ("host", "world-ipv4"), or NULL. */
const char *mg_identity_reserved_name(uint32_t id);

/** Reserved identity called @p name, or 0. */
uint32_t mg_identity_reserved_by_name(const char *name);

/* ---- labels ---- */

/** Key of the label naming an identity's cluster (source k8s), as Cilium sets it. */
#define MG_LABEL_POLICY_CLUSTER "io.cilium.k8s.policy.cluster"

/** One label. Strings are owned by the label set. */
struct mg_label {
	char *source; /**< "k8s", "reserved", "cidr", "unspec", ... */
	char *key;
	char *value; /**< "" when the label has no value */
};

/** A sorted, duplicate-free set of labels. */
struct mg_labels {
	size_t n;
	struct mg_label *v;
};

/** Empty set. */
#define MG_LABELS_INIT  \
	{               \
		0, NULL \
	}

/** Free the strings of @p ls and reset it to empty. */
void mg_labels_clear(struct mg_labels *ls);

/**
 * Add "source:key=value" to @p ls (replacing a label with the same source
 * and key). A NULL or empty @p source means "unspec".
 * @return 0, -EINVAL for an empty key, -ENOMEM.
 */
int mg_labels_add(struct mg_labels *ls, const char *source, const char *key, const char *value);

/**
 * Parse one label "source:key=value" (source defaults to "unspec", value
 * to "") and add it. The key may itself contain ':' after the source
 * ("k8s:io.kubernetes.pod.namespace=x"); only the first ':' splits.
 * Returns as mg_labels_add.
 */
int mg_labels_add_str(struct mg_labels *ls, const char *label);

/**
 * Parse Cilium's label string ("k8s:a=b;k8s:c=d;", final ';' optional;
 * empty entries are errors) into @p ls, which must be empty.
 * @return 0 or -EINVAL (with @p err set) / -ENOMEM.
 */
int mg_labels_parse(struct mg_labels *ls, const char *str, struct mg_error *err);

/** Format @p ls as Cilium's label string into a new string (free()). NULL on ENOMEM. */
char *mg_labels_format(const struct mg_labels *ls);

/** Copy @p src into empty @p dst. 0 or -ENOMEM. */
int mg_labels_copy(struct mg_labels *dst, const struct mg_labels *src);

/** True if both sets hold the same labels. */
bool mg_labels_equal(const struct mg_labels *a, const struct mg_labels *b);

/**
 * Find the label with @p key. @p source NULL or "any" matches any source
 * (Cilium's "any:" prefix); otherwise the source must be equal.
 * @return the label, or NULL.
 */
const struct mg_label *mg_labels_find(const struct mg_labels *ls, const char *source,
                                      const char *key);

/** Labels of a reserved identity: {"reserved:<name>"}, plus for world-ipv4/ipv6 "reserved:world". */
int mg_labels_reserved(struct mg_labels *ls, uint32_t id);

/* ---- the identity table ---- */

struct mg_identity_table;

/** One identity and its labels, as the table stores it. */
/** A named container port (CiliumEndpoint status named-ports / ipcache NamedPorts). */
struct mg_named_port {
	char name[64]; /**< IANA_SVC_NAME: lower case, at most 15 characters in Kubernetes */
	uint8_t proto; /**< MG_IPPROTO_TCP / UDP / SCTP numbers (6, 17, 132) */
	uint16_t port;
};

/** Longest port name: an IANA service name. */
#define MG_PORT_NAME_MAX 15

/**
 * Cilium's test for a port name (pkg/iana IsSvcName): 1 to 15 characters
 * of [a-zA-Z0-9-], at least one letter, no '-' at either end, no "--".
 */
bool mg_port_name_valid(const char *s);

struct mg_identity {
	uint32_t id;
	struct mg_labels labels;
	unsigned cluster_id; /**< cluster the identity came from (0: local/reserved/unknown) */
	/** Named ports of the identity's endpoints (their union), sorted, no duplicates. */
	size_t n_named_ports;
	struct mg_named_port *named_ports;
};

/** New table holding the reserved identities 1-10 with their labels. NULL + errno. */
struct mg_identity_table *mg_identity_table_create(enum mg_cluster_mode mode);

void mg_identity_table_free(struct mg_identity_table *t);

/**
 * Insert or replace identity @p id with a copy of @p labels.
 * @return 0, 1 when an existing entry was replaced with different labels,
 *   -EINVAL (id 0, a reserved id, or above MG_ID_MAX), -ENOMEM.
 */
int mg_identity_table_put(struct mg_identity_table *t, uint32_t id, const struct mg_labels *labels,
                          unsigned cluster_id);

/**
 * Add a named port of one of identity @p id's endpoints (kept until the
 * identity is removed; replacing the labels keeps them).
 * @return 0, 1 when it was already known, -ENOENT (no such identity),
 *   -EINVAL (empty or overlong name, protocol not TCP/UDP/SCTP, port 0), -ENOMEM.
 */
int mg_identity_table_add_named_port(struct mg_identity_table *t, uint32_t id, const char *name,
                                     uint8_t proto, uint16_t port);

/** Remove @p id. 0, or -ENOENT; reserved identities cannot be removed (-EPERM). */
int mg_identity_table_del(struct mg_identity_table *t, uint32_t id);

/** The entry for @p id, or NULL. Valid until the next put/del of that id. */
const struct mg_identity *mg_identity_table_get(const struct mg_identity_table *t, uint32_t id);

/** Number of identities (reserved ones included). */
size_t mg_identity_table_count(const struct mg_identity_table *t);

/**
 * Call @p fn for every identity, in increasing id order; stop early and
 * return its value when it returns non-zero.
 */
int mg_identity_table_walk(const struct mg_identity_table *t,
                           int (*fn)(const struct mg_identity *, void *), void *arg);

enum mg_cluster_mode mg_identity_table_mode(const struct mg_identity_table *t);

#endif /* MG_IDENTITY_H */
