/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private shape of the policy module: the rule AST the loader builds
 * (mg_policy_load*.c), the selector evaluation both the compiler and the
 * trace share (mg_policy_select.c), the limits that keep hostile input
 * bounded, and the compiled policy with the blocks the compiler's files
 * share. See docs/policy-engine.md.
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
#include <string.h>

#include "mg_hash.h"
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
#define POL_MAX_PREFIXES 1024u              /* CIDR prefixes per entry (cidr and except) */
#define POL_MAX_EXCEPTS (POL_MAX_REQS - 1u) /* except per CIDR rule: one requirement each */
#define POL_PORT_NAME_MAX 15                /* IANA service name */

/*
 * The compiled policy's size caps in force: POL_MAX_CLASSES and
 * POL_MAX_CELLS, lowered only by the unit tests (pol_test_set_caps()) to
 * reach them with small sets; the compile reads them, nothing writes them.
 */
extern uint32_t pol_cap_classes, pol_cap_cells;
void pol_test_set_caps(uint32_t classes, uint32_t cells);

/*
 * mg_policy_verdict_bulk() runs its prefetching passes only for a compiled
 * policy of at least this many bytes (its tables no longer stay in the
 * cache: 100k identities take about 40 MiB); a smaller one is judged flow
 * by flow, which costs less when nothing misses (meshgate-bench pipeline
 * and policy). Lowered by the unit tests (pol_test_set_bulk_min()).
 */
#define POL_BULK_MIN_BYTES (8u << 20)
extern size_t pol_bulk_min_bytes;
void pol_test_set_bulk_min(size_t bytes);

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

/* ---- mg_policy_prefix.c, for mg_policy_cidr.c and the loader ---- */

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

/* ================= the loader ================= */

/*
 * What the loader's files share: mg_policy_load.c (documents, files, the
 * set, YAML helpers), mg_policy_load_rule.c (rules and entries),
 * mg_policy_load_peer.c (the L3 part: selectors, entities, CIDRs) and
 * mg_policy_load_port.c (the L4 part: toPorts, icmps).
 */

struct mg_yaml_node;

#define PATH_LEN 192 /* room for a field path in messages */

/** One load (of a path or a buffer) into a set. */
struct loader {
	struct mg_policy_set *s;
	const char *cluster;
	struct mg_error *err;
	int loaded; /* policies added by this load */
	/* check mode (mg_policy_set_check_path): go on past a bad document */
	void (*report)(const struct mg_policy_problem *, void *);
	void *arg;
	int errors;
};

/** The entry being parsed, and the first field of it a layer-4 gateway cannot enforce. */
struct entry_ctx {
	struct loader *L;
	unsigned sec;
	struct entry *e;
	const struct mg_yaml_node *skip_at; /* first unenforceable field seen */
	char skip_what[PATH_LEN + 64];
};

static inline bool
streq(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

/** Is @p k in the NULL-terminated @p list (NULL: empty)? */
static inline bool
in_list(const char *k, const char *const *list)
{
	for (; list != NULL && *list != NULL; list++)
		if (streq(k, *list))
			return true;
	return false;
}

/* ---- mg_policy_load.c ---- */

/** Format a field path for messages into @p buf; a very long one is truncated. */
void pol_pathf(char *buf, size_t size, const char *fmt, ...) MG_PRINTF(3, 4);

/** The key node of @p key in mapping @p map (for positions), or @p map itself. */
const struct mg_yaml_node *pol_key_node(const struct mg_yaml_node *map, const char *key);

/**
 * @p n must be a sequence of at most @p max items, or absent / null (then
 * *@p count is 0). 0 or -EINVAL with @p err set.
 */
int pol_get_seq(const struct mg_yaml_node *n, const char *what, size_t max, size_t *count,
                struct mg_error *err);

/** Is @p n present with content (not null, not an empty sequence or mapping)? */
bool pol_has_content(const struct mg_yaml_node *n);

/* ---- mg_policy_load_rule.c ---- */

/**
 * Parse rule @p n (element @p index of spec + specs of policy @p pidx) and
 * append it to the set; @p what is its path ("spec", "specs[1]"). The rule
 * is counted at once, so a rollback frees what it holds. 0 or a negative
 * errno with L->err set.
 */
int pol_parse_rule(struct loader *L, uint32_t pidx, unsigned index, const struct mg_yaml_node *n,
                   const char *what);

/** Free what rule @p r holds and zero it. */
void pol_rule_clear(struct rule *r);

/**
 * Entry @p c holds @p at, which a layer-4 gateway cannot enforce: an allow
 * entry notes it (and is skipped), a deny entry is refused (-EINVAL).
 */
int pol_unenforceable(struct entry_ctx *c, const struct mg_yaml_node *at, const char *what);

/* ---- mg_policy_load_peer.c: the L3 part ---- */

/**
 * The subject of a rule (endpointSelector, or with @p node nodeSelector)
 * at @p n, appended to the set as *@p idx. 0 or a negative errno.
 */
int pol_parse_subject(struct loader *L, const struct policy_obj *p, const struct mg_yaml_node *n,
                      bool node, const char *what, uint32_t *idx);

/* The L3 fields of an entry, in the order of struct section_fields. */
enum pol_l3 {
	POL_L3_ENDPOINTS, /* fromEndpoints / toEndpoints */
	POL_L3_ENTITIES,  /* fromEntities / toEntities */
	POL_L3_CIDR,      /* fromCIDR / toCIDR */
	POL_L3_CIDR_SET,  /* fromCIDRSet / toCIDRSet */
	POL_L3_N
};

/**
 * Add the peers of the L3 field @p kind at @p n (a list; absent or null:
 * none) to entry @p e of policy @p p. Ingress and egress, allow and deny
 * entries alike. 0 or a negative errno with L->err set.
 */
int pol_parse_peers(struct loader *L, struct entry *e, const struct policy_obj *p, enum pol_l3 kind,
                    const struct mg_yaml_node *n, const char *what);

/* ---- mg_policy_load_port.c: the L4 part ---- */

/** toPorts of entry c->e, whose section decides what is allowed in it. 0 or a negative errno. */
int pol_parse_to_ports(struct entry_ctx *c, const struct mg_yaml_node *n, const char *what);

/** icmps of entry @p e. 0 or a negative errno with @p err set. */
int pol_parse_icmps(struct entry *e, const struct mg_yaml_node *n, const char *what,
                    struct mg_error *err);

/* ================= the compiled policy ================= */

/*
 * struct mg_policy and the blocks it is made of, shared by the files of
 * the compiler: interning (mg_policy_intern.c), copy-on-write vectors and
 * cell tables (mg_policy_cow.c), the identity map (mg_policy_idmap.c), the
 * plan (mg_policy_plan.c), the builder (mg_policy_build.c), the object's
 * life (mg_policy_compile.c) and the verdict (mg_policy_verdict.c). Every
 * block is reference counted; see mg_policy_compile.c for how objects of
 * two generations share them without either writing where the other reads.
 */

#define BM_WORDS (65536 / 64)
#define PS_ALLOW_ALL 1u
#define PS_DENY_ALL 2u

/* Indices of the per-identity classes in struct pol_slot. */
#define CLS_SUB(dir) (dir)
#define CLS_PEER(dir) (2 + (dir))

/* ---- mg_policy_intern.c: byte strings -> dense indices (control plane) ---- */

struct ikey {
	uint64_t h;
	size_t len;
	void *data;
};

struct itab {
	uint32_t *slot; /* index + 1; 0 empty */
	size_t cap;     /* power of two */
	size_t n;
	struct ikey *keys;
	size_t kcap;
	size_t bytes; /* of the keys' data */
};

/* An interning table shared between compiled objects (claim: t.n). */
struct pol_reg {
	unsigned refs;
	struct itab t;
};

/** Free @p t's keys and slots; @p t is left empty. */
void pol_itab_free(struct itab *t);

/** Index of @p key in @p t, added if new (*@p isnew then true). 0 or -ENOMEM. */
int pol_itab_intern(struct itab *t, const void *key, size_t len, uint32_t *idx, bool *isnew);

/** Index of @p key in @p t, or -1. */
int64_t pol_itab_find(const struct itab *t, const void *key, size_t len);

/** Bytes @p t holds (slots, keys and the keys' data). */
size_t pol_itab_bytes(const struct itab *t);

/** A new empty shared table (one reference), or NULL. */
struct pol_reg *pol_reg_new(void);

/** Drop a reference to @p r (NULL is fine). */
void pol_reg_put(struct pol_reg *r);

/**
 * Intern @p key in *@p reg, of which the caller's object uses the first
 * *@p count entries; a new key bumps *@p count. A table another object has
 * appended to since is copied (its first *count entries) before this one
 * appends, and *@p reg then names the copy. 0 or -ENOMEM.
 */
int pol_reg_intern(struct pol_reg **reg, uint32_t *count, const void *key, size_t len,
                   uint32_t *idx, bool *isnew);

/* ---- mg_policy_cow.c: append-only vectors and cell tables, shared ---- */

/* An append-only vector shared between compiled objects. */
struct shv {
	unsigned refs;
	size_t claim; /* length of its newest writer */
	size_t cap;   /* elements */
	size_t esz;
	uint64_t data[];
};

/*
 * A direction's table, sparse: (subject class, peer class) -> port set,
 * stored only where it differs from the row's default (what the subject's
 * entries without a peer field give every peer). Open addressing over
 * 64-bit slots, (sc << 16 | pc) << 32 | port set, each written with one
 * store: a worker reading a table that a newer object is extending in
 * place never sees half a cell, only keys it does not look for.
 */
#define CELL_EMPTY UINT64_MAX
struct pol_cells {
	unsigned refs;
	uint32_t claim_sc, claim_pc;
	size_t n, mask;
	uint64_t s[];
};

/** A vector of @p cap elements of @p esz bytes (one reference, nothing claimed), or NULL. */
struct shv *pol_shv_new(size_t esz, size_t cap);

/** Drop a reference to @p v (NULL is fine). */
void pol_shv_put(struct shv *v);

/** Element @p i of @p v. */
static inline void *
pol_shv_at(struct shv *v, size_t i)
{
	return (unsigned char *)v->data + i * v->esz;
}

/**
 * Make elements [@p len, @p need) of *@p v writable for an object whose
 * length is @p len: in place when that object is the newest writer (or
 * the only holder) and there is room, else in a copy. 0 or -ENOMEM.
 */
int pol_shv_reserve(struct shv **v, size_t len, size_t need);

/** Home slot of cell key @p key in a table of @p mask + 1 slots (data path too). */
static inline size_t
pol_cell_slot(uint32_t key, size_t mask)
{
	return mg_probe_home(mg_hash_u64(key), mask);
}

/** An empty table of @p slots slots (a power of two), one reference, or NULL. */
struct pol_cells *pol_cells_new(size_t slots);

/** Drop a reference to @p c (NULL is fine). */
void pol_cells_put(struct pol_cells *c);

/**
 * Make the cells outside [@p osc x @p opc] but inside [@p nsc x @p npc] of
 * *@p cp writable for an object of dimensions (osc, opc): in place when
 * its claim is (osc, opc) or it has one holder, else in a copy. 0 or -ENOMEM.
 */
int pol_cells_reserve(struct pol_cells **cp, uint32_t osc, uint32_t opc, uint32_t nsc,
                      uint32_t npc);

/**
 * Set cell (@p sc, @p pc) to port set @p ps in a table pol_cells_reserve()
 * made writable; a full table is copied into a larger one, never resized in
 * place. 0, -ENOMEM, or -E2BIG past POL_MAX_CELLS cells.
 */
int pol_cells_put_cell(struct pol_cells **cp, uint32_t sc, uint32_t pc, uint32_t ps);

/* ---- mg_policy_idmap.c: identity -> its four classes ---- */

struct pol_slot {
	uint32_t key; /* identity + 1; 0: empty */
	uint16_t cls[4];
};

struct pol_leaf {
	unsigned refs;
	uint32_t mask; /* slots - 1 */
	uint32_t n;
	struct pol_slot s[];
};

struct pol_idmap {
	unsigned refs;
	unsigned bits;
	size_t count;
	size_t bytes; /* the directory and the leaves it names */
	struct pol_leaf *leaf[];
};

/**
 * Hash of an identity's key (identity + 1), for the map and the data path's
 * lookup: the top bits pick the leaf (h >> (64 - bits)), the low bits the
 * slot in it (mg_probe_home).
 */
static inline uint64_t
pol_id_hash(uint32_t key)
{
	return mg_hash_u64(key);
}

/** The leaf of hash @p h in a directory of 2^@p bits leaves. */
static inline size_t
pol_leaf_of(uint64_t h, unsigned bits)
{
	return (size_t)(h >> (64 - bits));
}

/** An empty map with a directory sized for @p count identities (one reference), or NULL. */
struct pol_idmap *pol_map_new(size_t count);

/** A private directory naming the same (shared) leaves as @p o, or NULL. */
struct pol_idmap *pol_map_clone(const struct pol_idmap *o);

/** Drop a reference to @p m and, with its last one, to its leaves (NULL is fine). */
void pol_map_put(struct pol_idmap *m);

/**
 * Set the classes of identity @p id in private map *@p mp; shared leaves
 * are copied first, and the directory may double (*@p mp then changes).
 * 0 or -ENOMEM.
 */
int pol_map_insert(struct pol_idmap **mp, uint32_t id, const uint16_t cls[4]);

/** Remove identity @p id from private map @p m (absent: nothing). 0 or -ENOMEM. */
int pol_map_remove(struct pol_idmap *m, uint32_t id);

/* ---- mg_policy_plan.c: what a compile evaluates (immutable) ---- */

typedef char pname_t[POL_PORT_NAME_MAX + 1];

struct plan_dir {
	/* positions of distinct selectors in this direction's signatures, or -1 */
	int32_t *spos, *ppos;
	uint32_t *slist, *plist; /* position -> distinct selector */
	size_t ns, np;
	size_t sw, pw;       /* signature words */
	uint32_t **rules_at; /* subject position -> rule indices */
	size_t *nrules_at;
	size_t nnames; /* port names the direction's rules use, sorted */
	pname_t *names;
};

struct plan_cand {
	uint32_t *v;
	size_t n, cap;
};

struct pol_plan {
	unsigned refs;
	const struct mg_policy_set *s;
	uint64_t gen;
	struct mg_policy_params p;
	size_t nd;
	uint32_t *dsel;               /* set selector -> distinct selector */
	const struct selector **drep; /* distinct -> a representative */
	struct plan_dir dir[2];
	/*
	 * The selector index: every distinct selector with an In requirement
	 * is filed under that requirement's "key=value" pairs (its anchors);
	 * an identity can only match the selectors filed under its own labels,
	 * plus those without any In requirement (`always`). Classifying an
	 * identity then costs its candidates, not every selector.
	 */
	struct itab anchors;
	struct plan_cand *cand; /* per anchor */
	uint32_t *always;
	size_t nalways;
	size_t bytes;
};

/** The plan of set @p s under @p p (one reference), or NULL: out of memory. */
struct pol_plan *pol_plan_build(const struct mg_policy_set *s, const struct mg_policy_params *p);

/** Drop a reference to @p pl (NULL is fine). */
void pol_plan_put(struct pol_plan *pl);

/** Index of port name @p name among those direction @p pd uses, or -1. */
int pol_plan_name_index(const struct plan_dir *pd, const char *name);

/* ---- the compiled object ---- */

struct pol_portset {
	uint32_t flags;
	uint32_t allow[PIDX_N]; /* bitmap indices; 0 is the empty bitmap */
	uint32_t deny[PIDX_N];
};

struct pol_dirtab {
	uint32_t nsc, npc;
	struct pol_cells *cells;
	struct shv *enf;  /* uint8_t per subject class */
	struct shv *rdef; /* uint32_t per subject class: the row's default port set */
	struct pol_reg *sreg, *preg;
	/* for the data path */
	const uint64_t *cellv;
	size_t cmask;
	const uint32_t *rdefv;
	const uint8_t *enfv;
};

struct mg_policy {
	uint64_t revision;
	size_t memory;
	bool never;
	struct pol_plan *plan;
	struct pol_idmap *map;
	unsigned shift;                 /* 64 - map->bits */
	struct pol_leaf *const *leaves; /* map->leaf */
	struct pol_slot nolabels;       /* classes of unknown identities */
	struct pol_dirtab dir[2];
	uint32_t nps;
	struct shv *ps; /* struct pol_portset */
	struct pol_reg *psreg;
	const struct pol_portset *psv;
	uint32_t nbm;
	struct shv *bm; /* BM_WORDS words each */
	struct pol_reg *bmreg;
	const uint64_t *bmv;
};

/* ---- mg_policy_build.c: classes and table cells ---- */

/**
 * Fill a new object @p pol (allocated, its blocks empty): the classes of
 * identities unknown to it (no labels), of every identity of @p ids, and
 * every cell. 0 or a negative errno with @p err set.
 */
int pol_build_all(struct mg_policy *pol, const struct mg_identity_table *ids, struct mg_error *err);

/**
 * Bring @p pol, which shares its blocks with a parent of dimensions
 * @p osc x @p opc per direction, up to date for the identities @p idv[0..n)
 * of @p ids: each is classified again or dropped, and the classes that did
 * not exist get their cells. 0 or a negative errno with @p err set.
 */
int pol_build_update(struct mg_policy *pol, const struct mg_identity_table *ids,
                     const uint32_t *idv, size_t n, const uint32_t osc[2], const uint32_t opc[2],
                     struct mg_error *err);

#endif /* MG_POLICY_PRIV_H */
