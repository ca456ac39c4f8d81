/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private shape of the policy module: the rule AST the loader builds
 * (mg_policy_load.c), the selector evaluation both the compiler and the
 * trace share (mg_policy_select.c), and the limits that keep hostile input
 * bounded. See docs/policy-engine.md.
 *
 * Ownership: a struct mg_policy_set owns four growing arrays (policies,
 * rules, selectors, warnings). Rules name their policy and their selectors
 * by index, so a failed load rolls back by truncating the arrays to their
 * earlier lengths.
 */
#ifndef MG_POLICY_PRIV_H
#define MG_POLICY_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_identity.h"
#include "mg_policy.h"

/* IP protocol numbers (kept here so the module does not depend on lib/pkt). */
#define POL_PROTO_ICMP 1
#define POL_PROTO_TCP 6
#define POL_PROTO_UDP 17
#define POL_PROTO_ICMPV6 58
#define POL_PROTO_SCTP 132

/*
 * Index of a "port protocol" in port masks and tables; -1 for the others.
 * ICMP and ICMPv6 are port protocols whose "port" is the message type, as
 * in Cilium (icmps fields become port rules of protocol ICMP / ICMPv6).
 */
enum {
	PIDX_TCP,
	PIDX_UDP,
	PIDX_SCTP,
	PIDX_ICMP,
	PIDX_ICMPV6,
	PIDX_N
};
/* What `protocol: ANY` (or none) covers: TCP, UDP and SCTP, never ICMP. */
#define PMASK_ANY ((1u << PIDX_TCP) | (1u << PIDX_UDP) | (1u << PIDX_SCTP))

static inline int
pol_proto_index(uint8_t proto)
{
	switch (proto) {
	case POL_PROTO_TCP:
		return PIDX_TCP;
	case POL_PROTO_UDP:
		return PIDX_UDP;
	case POL_PROTO_SCTP:
		return PIDX_SCTP;
	case POL_PROTO_ICMP:
		return PIDX_ICMP;
	case POL_PROTO_ICMPV6:
		return PIDX_ICMPV6;
	default:
		return -1;
	}
}

/* Limits on hostile or runaway input; each is an error when exceeded. */
#define POL_MAX_POLICIES 65536u
#define POL_MAX_RULES 65536u
#define POL_MAX_SELECTORS 65536u
#define POL_MAX_ENTRIES 4096u  /* per section of one rule */
#define POL_MAX_PEERS 1024u    /* selectors per entry */
#define POL_MAX_PORTS 1024u    /* port ranges per entry */
#define POL_MAX_REQS 256u      /* requirements per selector */
#define POL_MAX_VALUES 1024u   /* values per In / NotIn requirement */
#define POL_MAX_CLASSES 65535u /* classes per role and direction (uint16_t) */
#define POL_MAX_CELLS (1u << 24)
#define POL_MAX_PREFIXES 1024u /* CIDR prefixes per entry (cidr and except) */
#define POL_PORT_NAME_MAX 15   /* IANA service name */

/* Well-known label keys (source "k8s"). */
#define POL_NS_KEY "io.kubernetes.pod.namespace"
#define POL_CLUSTER_KEY "io.cilium.k8s.policy.cluster"

/* Rule sections. The direction is the low bit, so it equals enum mg_direction. */
enum pol_section {
	SEC_INGRESS = 0,
	SEC_EGRESS = 1,
	SEC_INGRESS_DENY = 2,
	SEC_EGRESS_DENY = 3,
	SEC_N
};

static inline unsigned
sec_dir(unsigned s)
{
	return s & 1u;
}

static inline bool
sec_deny(unsigned s)
{
	return s >= SEC_INGRESS_DENY;
}

extern const char *const pol_section_names[SEC_N];

enum sel_op {
	SEL_IN,
	SEL_NOTIN,
	SEL_EXISTS,
	SEL_DNE
};

/** One requirement of a LabelSelector (matchLabels k: v is In [v]). */
struct sel_req {
	char *source; /* NULL: any source */
	char *key;
	enum sel_op op;
	size_t nvals;
	char **vals;
};

/** How a selector is tied to a cluster, beyond its own requirements. */
enum sel_cluster {
	SELC_NONE,   /* not scoped (names the cluster itself, or reserved:) */
	SELC_EXISTS, /* the cluster label must exist */
	SELC_EQ,     /* the cluster label must equal the policy's cluster */
};

/**
 * A LabelSelector after implicit scoping. The namespace scope is a plain
 * requirement added at load time; the cluster scope is kept apart because
 * for peers it depends on the compile parameter default_local_cluster.
 */
struct selector {
	size_t nreq;
	struct sel_req *req;
	enum sel_cluster cl;
	bool cl_always;      /* subjects: scoped whatever the parameter says */
	const char *cluster; /* the policy's cluster (owned by the policy) */
	char *canon;         /* canonical encoding of req[], for interning */
};

/**
 * One port range of a toPorts entry, or one ICMP type of an icmps entry:
 * protocols (PMASK bits) x [lo, hi]. A named port (`port: http`) has
 * name[0] != '\0' and lo = hi = 0; it resolves through the destination's
 * named ports (struct mg_identity.named_ports) for the protocols given.
 */
struct port_range {
	uint8_t protos;
	uint16_t lo, hi;
	char name[POL_PORT_NAME_MAX + 1];
};

/** A CIDR prefix a rule names (fromCIDR, toCIDRSet cidr or except, ...). */
struct pol_prefix {
	uint8_t family; /* AF_INET / AF_INET6 */
	uint8_t plen;
	uint8_t addr[16]; /* network order, host bits zero */
};

/** One item of ingress / egress / ingressDeny / egressDeny. */
struct entry {
	unsigned line, col;
	/*
	 * An L3 field (from/toEndpoints, from/toEntities, from/toCIDR,
	 * from/toCIDRSet) is present, maybe empty: then only the peers of
	 * peers[] match. Without one, the entry matches any peer if it has
	 * ports (toPorts / icmps only), none if not ({}).
	 */
	bool has_l3;
	/*
	 * An allow entry holding what a layer-4 gateway cannot enforce (L7
	 * rules, toFQDNs, ...): it allows nothing, but still counts as an
	 * entry of its section for default deny. Never set on deny entries
	 * (those are refused instead).
	 */
	bool skipped;
	size_t npeers; /* selectors (indices into the set's selectors) */
	uint32_t *peers;
	size_t nports; /* > 0: L4-restricted; 0: all protocols */
	struct port_range *ports;
	size_t nprefixes; /* every prefix named, for mg_cidr_ids_sync */
	struct pol_prefix *prefixes;
};

/** One element of spec / specs. */
struct rule {
	uint32_t pol;   /* index of its policy */
	unsigned index; /* position in spec + specs */
	unsigned line;
	uint32_t subject;        /* selector index */
	bool no_default_deny[2]; /* enableDefaultDeny.<dir>: false */
	size_t nent[SEC_N];
	struct entry *ent[SEC_N];
};

/** One CNP or CCNP object. */
struct policy_obj {
	char *name;
	char *ns; /* NULL for a CCNP */
	char *cluster;
	char *file;
	unsigned line;
	bool ccnp;
};

/** A warning kept in the set (a skipped allow rule). */
struct pol_warning {
	char *file;
	unsigned line, col;
	char *msg;
};

struct mg_policy_set {
	size_t npol, cappol;
	struct policy_obj *pol;
	size_t nrules, caprules;
	struct rule *rules;
	size_t nsel, capsel;
	struct selector **sel;
	size_t nwarn, capwarn;
	struct pol_warning *warn;
	/* bumped by every change, so that a compiled policy can tell it is stale */
	uint64_t gen;
};

/* ---- mg_policy_select.c ---- */

/** Does @p s select an identity with labels @p ls? @p dlc: default_local_cluster. */
bool pol_sel_match(const struct selector *s, const struct mg_labels *ls, bool dlc);

/** Is the cluster scope of @p s in force under @p dlc? */
static inline bool
pol_sel_cluster_active(const struct selector *s, bool dlc)
{
	return s->cl != SELC_NONE && (s->cl_always || dlc);
}

/** Add implicit namespace / cluster scoping to a subject (endpointSelector). */
int pol_sel_scope_subject(struct selector *s, const struct policy_obj *p);

/** Add implicit namespace / cluster scoping to a peer (from/toEndpoints). */
int pol_sel_scope_peer(struct selector *s, const struct policy_obj *p);

/** Build s->canon. 0 or -ENOMEM. */
int pol_sel_finish(struct selector *s);

/** Free a selector and its strings. */
void pol_sel_free(struct selector *s);

/** Append a requirement (copies strings). 0 or -ENOMEM / -E2BIG. */
int pol_sel_add_req(struct selector *s, const char *source, const char *key, enum sel_op op,
                    const char *const *vals, size_t nvals);

/* ---- shared by compile and trace ---- */

/** Does entry @p e select a peer with labels @p ls? */
bool pol_entry_peer_match(const struct mg_policy_set *s, const struct entry *e,
                          const struct mg_labels *ls, bool dlc);

/**
 * Does entry @p e let protocol @p proto to port @p port through (L4 part)?
 * Named ports resolve through @p dst, the destination identity (NULL: it
 * has none).
 */
bool pol_entry_l4_match(const struct entry *e, uint8_t proto, uint16_t port,
                        const struct mg_identity *dst);

/** Does port range @p r hold a named port @p np (name and protocol)? */
bool pol_named_port_match(const struct port_range *r, const struct mg_named_port *np);

/* ---- mg_policy_cidr.c / mg_policy_load.c ---- */

/** Cilium's label key of a prefix: "10.0.0.0/8", "fd00--0/64" (':' as '-'). */
void pol_prefix_label(const struct pol_prefix *p, char *buf, size_t size);

/** Parse "10.0.0.0/8", "10.1.2.3" or "fd00::/64" (host bits are cleared). 0 or -EINVAL. */
int pol_prefix_parse(const char *s, struct pol_prefix *out);

/** @p p shortened to @p plen bits (host bits cleared); @p plen >= p->plen copies it. */
void pol_prefix_truncate(const struct pol_prefix *p, unsigned plen, struct pol_prefix *out);

/** Total order on prefixes (family, length, address). */
int pol_prefix_cmp(const struct pol_prefix *a, const struct pol_prefix *b);

/** Does @p outer contain @p inner's address (Cilium's check for except)? */
bool pol_prefix_contains_addr(const struct pol_prefix *outer, const struct pol_prefix *inner);

#endif /* MG_POLICY_PRIV_H */
