/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Cilium network policy: loading CiliumNetworkPolicy and
 * CiliumClusterwideNetworkPolicy YAML, compiling it against the known
 * identities into data-plane tables, and explaining verdicts.
 *
 * Three objects:
 *  - struct mg_policy_set: the parsed policies (rules, selectors, ports,
 *    with the file:line:column of each), grouped by the cluster of the
 *    source they came from. Control plane, mutable while loading.
 *  - struct mg_policy: the compiled, immutable verdict tables. Workers
 *    read it; a reload builds a new one and swaps the pointer (RCU).
 *  - struct mg_policy_trace: why a verdict came out as it did.
 *
 * Compiled shape (see docs/policy-engine.md): every distinct selector is
 * evaluated once per identity. Identities that match the same set of
 * subject selectors share a subject class per direction; identities that
 * match the same set of peer selectors share a peer class. A verdict is an
 * identity -> class lookup for each side, then one table cell per
 * direction (subject class x peer class) naming a port set, then a bitmap
 * test on the protocol and port. Its cost does not depend on the number of
 * rules or identities.
 *
 * Semantics: docs/policy.md (Cilium's, at layers 3 and 4). A packet from S
 * to D is allowed iff S's egress allows it and D's ingress allows it; deny
 * rules win over allow rules; default deny per direction once a rule with
 * entries in that direction selects the subject.
 */
#ifndef MG_POLICY_H
#define MG_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_common.h"
#include "mg_identity.h"

enum mg_enforcement {
	MG_ENFORCE_DEFAULT, /**< default deny per direction once selected by a rule */
	MG_ENFORCE_ALWAYS,  /**< every identity default deny in both directions */
	MG_ENFORCE_NEVER,   /**< everything allowed (still counted) */
};

/** Parse "default" / "always" / "never". 0 or -EINVAL. */
int mg_enforcement_parse(const char *s, enum mg_enforcement *out);
const char *mg_enforcement_name(enum mg_enforcement e);

enum mg_direction {
	MG_DIR_INGRESS = 0,
	MG_DIR_EGRESS = 1,
};

/* ---- loading ---- */

struct mg_policy_set;

/** New empty set. NULL + errno. */
struct mg_policy_set *mg_policy_set_create(void);
void mg_policy_set_free(struct mg_policy_set *s);

/**
 * Load policies for cluster @p cluster from @p path: a YAML file, or a
 * directory whose *.yaml, *.yml and *.json files are read in name order
 * (not recursive). Documents may be single policies, multi-document
 * streams, or `kind: List`. Documents of other kinds are errors.
 * @return number of policies loaded (>= 0), or a negative errno with @p err
 *   holding "file:line:column: message". On error nothing from @p path is
 *   added to the set.
 */
int mg_policy_set_load_path(struct mg_policy_set *s, const char *cluster, const char *path,
                            struct mg_error *err);

/** As above, from memory; @p name stands for the file name in messages. */
int mg_policy_set_load_buf(struct mg_policy_set *s, const char *cluster, const char *name,
                           const void *buf, size_t len, struct mg_error *err);

/** One problem found while loading: an error, or a warning (a skipped allow rule). */
struct mg_policy_problem {
	bool warning;
	const char *file;
	unsigned line, col;
	const char *msg; /**< without the position: "spec.ingress[0].toFQDNs: ..." */
};

/**
 * Check @p path (file or directory, as mg_policy_set_load_path) and report
 * every problem to @p report: all errors (loading goes on past an error to
 * the next document, so one bad policy does not hide the next) and all
 * warnings. For `meshgatectl policy validate`. What loaded cleanly is added
 * to @p s (NULL: a scratch set is used).
 * @return the number of errors (0: valid), or a negative errno when
 *   @p path cannot be read at all (reported too).
 */
int mg_policy_set_check_path(struct mg_policy_set *s, const char *cluster, const char *path,
                             void (*report)(const struct mg_policy_problem *, void *), void *arg);

/**
 * Call @p fn for every warning of the set: the allow rules skipped because
 * they hold what a layer-4 gateway cannot enforce (L7 rules, toFQDNs, ...).
 * @return the number of warnings.
 */
size_t mg_policy_set_warnings(const struct mg_policy_set *s,
                              void (*fn)(const struct mg_policy_problem *, void *), void *arg);

/** One loaded policy object, for listings (meshgatectl policy get). */
struct mg_policy_info {
	bool ccnp; /**< CiliumClusterwideNetworkPolicy */
	const char *name;
	const char *ns;      /**< NULL for a CCNP */
	const char *cluster; /**< the cluster whose policy it is */
	const char *file;
	unsigned line;
	size_t rules; /**< elements of spec + specs */
};

/**
 * Call @p fn for every policy of the set in load order; stops at the first
 * non-zero return and returns it, else 0.
 */
int mg_policy_set_walk(const struct mg_policy_set *s,
                       int (*fn)(const struct mg_policy_info *, void *), void *arg);

/** One distinct selector of the set and what it selects now. */
struct mg_policy_selector_info {
	const char *text;    /**< "k8s:app=web, k8s:io.kubernetes.pod.namespace=prod" */
	size_t users;        /**< rule subjects and peer entries that use it */
	size_t n_ids;        /**< identities of the table it selects */
	const uint32_t *ids; /**< sorted ascending */
};

/**
 * Call @p fn for every distinct selector of the set (subjects and
 * endpoint peers, after implicit namespace / cluster scoping) with the
 * identities of @p ids it selects under @p default_local_cluster, as the
 * compiler evaluates them. Stops at the first non-zero return of @p fn
 * and returns it; 0, or -ENOMEM.
 */
int mg_policy_set_selectors(const struct mg_policy_set *s, const struct mg_identity_table *ids,
                            bool default_local_cluster,
                            int (*fn)(const struct mg_policy_selector_info *, void *), void *arg);

/** Number of policies (CNP + CCNP objects) in the set. */
size_t mg_policy_set_count(const struct mg_policy_set *s);

/** Number of rules (entries of spec/specs) in the set. */
size_t mg_policy_set_rules(const struct mg_policy_set *s);

/**
 * The ICMP type Cilium's `icmps` accept under @p name for @p family
 * (MG_AF_INET: ICMP, MG_AF_INET6: ICMPv6; numbers as in mg_pkt.h), the
 * case ignored when @p nocase. @return 0 with *type set, or -ENOENT.
 */
int mg_policy_icmp_type(uint8_t family, const char *name, bool nocase, uint8_t *type);

/** The name Cilium gives ICMP type @p type of @p family ("EchoRequest"), or NULL. */
const char *mg_policy_icmp_name(uint8_t family, uint8_t type);

/* ---- selection: which identities the set can select at all ---- */

/**
 * A read-only index over the distinct selectors of a set (subjects and
 * endpoint peers after implicit namespace / cluster scoping, entities and
 * CIDR rules, of allow and deny entries alike), answering one question
 * cheaply: does any of them select an identity with these labels? An
 * identity no selector selects gets the same classes, and so the same
 * verdicts, as any other such identity with the same named ports: the
 * policies cannot tell it apart. (For meshgate-replicator's filter, which
 * writes only the identities the gateways' policies can tell apart.)
 */
struct mg_policy_matcher;

/** What a matcher found while it was built. */
struct mg_policy_matcher_info {
	size_t selectors; /**< distinct selectors */
	/** Some selector has no requirement and no cluster scope (entity `all`): it selects every identity. */
	bool all;
	/**
	 * Some selector selects a world identity (2, 9, 10) or CIDR identities
	 * (entities `world`, `all`, fromCIDR/toCIDR, CIDR sets). A gateway sees
	 * an address it has no ipcache entry for as such an identity.
	 */
	bool world;
	/**
	 * Some entry has a named port and no L3 field (`toPorts` alone): it
	 * applies to every peer, whose own named ports decide, selected or not.
	 */
	bool named_any_peer;
};

/**
 * The matcher of @p s under @p default_local_cluster (as the gateway
 * compiles with). It refers to @p s, which must outlive it and not change.
 * @return the matcher, or NULL with errno set (ENOMEM).
 */
struct mg_policy_matcher *mg_policy_matcher_create(const struct mg_policy_set *s,
                                                   bool default_local_cluster);

void mg_policy_matcher_free(struct mg_policy_matcher *m);

/**
 * Does some selector of the set select an identity with labels @p ls?
 * Cost: a few hash lookups on @p ls's labels (each selector is filed under
 * its namespace and one more label it requires) and the selectors filed
 * there, plus the few that require no label; not every selector.
 * Allocation-free for labels up to 512 bytes; thread-safe (the matcher is
 * not written). On an allocation failure it answers true, the safe answer
 * for a filter.
 */
bool mg_policy_matcher_any(const struct mg_policy_matcher *m, const struct mg_labels *ls);

void mg_policy_matcher_info(const struct mg_policy_matcher *m, struct mg_policy_matcher_info *out);

/* ---- compiling ---- */

struct mg_policy_params {
	enum mg_enforcement enforcement;
	/** Scope peer selectors to the policy's own cluster unless they name one. */
	bool default_local_cluster;
	uint64_t revision; /**< stored in the result; the caller counts reloads */
};

struct mg_policy;

/**
 * Compile @p s against every identity of @p ids.
 * @return the compiled policy, or NULL with errno set and @p err filled.
 */
struct mg_policy *mg_policy_compile(const struct mg_policy_set *s,
                                    const struct mg_identity_table *ids,
                                    const struct mg_policy_params *p, struct mg_error *err);

void mg_policy_free(struct mg_policy *pol);

/** Revision given in the params. */
uint64_t mg_policy_revision(const struct mg_policy *pol);

/** Bytes of memory the compiled tables use. */
size_t mg_policy_memory(const struct mg_policy *pol);

/* ---- verdicts (data path) ---- */

enum mg_verdict {
	MG_VERDICT_ALLOW = 0,
	MG_VERDICT_DENY_EGRESS,  /**< the source's egress policy denies */
	MG_VERDICT_DENY_INGRESS, /**< the destination's ingress policy denies */
};

/**
 * Verdict for a packet from identity @p src to identity @p dst.
 * @param proto  IP protocol (MG_IPPROTO_*; others match only L3-only rules)
 * @param dport  destination port for TCP/UDP/SCTP; ICMP/ICMPv6 type for
 *               MG_IPPROTO_ICMP / MG_IPPROTO_ICMPV6; ignored otherwise
 * Egress is checked first, so a packet both sides deny reports egress.
 * Identities the compiled state does not know behave as identities
 * without labels. Lock-free, allocation-free, O(1).
 */
enum mg_verdict mg_policy_verdict(const struct mg_policy *pol, uint32_t src, uint32_t dst,
                                  uint8_t proto, uint16_t dport);

/** The most flows mg_policy_verdict_bulk() takes in one call. */
#define MG_POLICY_BULK_MAX 64

/**
 * The verdicts of @p n flows (at most MG_POLICY_BULK_MAX): flow i goes
 * from identity @p ids[2i] to @p ids[2i+1] with @p proto[i] and
 * @p dport[i]; its verdict goes to @p out[i], the same as
 * mg_policy_verdict() gives. The burst's identity slots, cells and port
 * sets are fetched stage by stage, each stage prefetching what the next
 * one reads for every flow, so with tables larger than the cache the
 * burst's misses overlap instead of queueing. Lock-free, allocation-free.
 */
void mg_policy_verdict_bulk(const struct mg_policy *pol, const uint32_t *ids, const uint8_t *proto,
                            const uint16_t *dport, unsigned n, uint8_t *out);

/* ---- explaining ---- */

/** What decided one direction. */
struct mg_policy_decision {
	bool allowed;
	/**
	 * The direction is default deny: enforcement `always`, or a rule with
	 * entries in it selects the subject and does not set enableDefaultDeny
	 * to false for it. false: the direction is open.
	 */
	bool enforced;
	/**
	 * A rule with entries in this direction selects the subject, whether
	 * or not it switches it to default deny. selected && !enforced: every
	 * such rule has enableDefaultDeny false for the direction.
	 */
	bool selected;
	bool by_deny_rule; /**< denied by an explicit deny rule */
	/** The deciding rule; name[0] == '\0' when none (open, or default deny). */
	char name[128];
	char ns[64];
	char cluster[64];
	unsigned rule_index;  /**< index in spec/specs */
	unsigned entry_index; /**< index in the rule's ingress/egress/...Deny list */
	const char *section;  /**< "ingress", "egress", "ingressDeny", "egressDeny" */
	char file[256];
	unsigned line;
};

struct mg_policy_trace {
	enum mg_verdict verdict;
	struct mg_policy_decision egress;  /**< of the source */
	struct mg_policy_decision ingress; /**< of the destination */
};

/**
 * Evaluate a flow directly from the policy set's rules (no compiled
 * tables) and record what decided each direction. Slow path, for
 * `meshgatectl policy trace` and for tests that check the compiled
 * tables against it. Gives the same verdict as mg_policy_verdict().
 * @return 0, or -ENOENT if @p src / @p dst are not in @p ids (they are
 *   then evaluated as identities without labels and the trace is filled).
 */
int mg_policy_trace(const struct mg_policy_set *s, const struct mg_identity_table *ids,
                    const struct mg_policy_params *p, uint32_t src, uint32_t dst, uint8_t proto,
                    uint16_t dport, struct mg_policy_trace *out);

/* ---- incremental updates ---- */

/**
 * The compiled policy for the identities of @p ids after the identities
 * @p idv[0..n) changed: each was added or its labels or named ports changed
 * (it is in @p ids), or it was removed (it is not). Equal to compiling @p s
 * against @p ids from scratch, but derived from @p pol at the cost of the
 * changed identities only: the distinct selectors are evaluated for them
 * alone, and tables grow only when an identity needs a class that did not
 * exist. @p pol is left unchanged and valid (workers may still read it);
 * the result may share memory with it, and the two can be freed in any
 * order.
 * @return the new compiled policy, or NULL with errno set and @p err filled.
 */
struct mg_policy *mg_policy_update_identities(const struct mg_policy *pol,
                                              const struct mg_policy_set *s,
                                              const struct mg_identity_table *ids,
                                              const uint32_t *idv, size_t n, struct mg_error *err);

/* ---- CIDR identities ---- */

/**
 * The gateway's own local-scope identities for the CIDR prefixes policies
 * name (fromCIDR, toCIDR, fromCIDRSet/toCIDRSet cidr and except). Each
 * prefix gets an identity (MG_ID_LOCAL_SCOPE | n), stable for as long as
 * some policy names it, labelled with `cidr:<p>` for every prefix p that
 * covers it (itself included, down to /0), `reserved:world`, and
 * `reserved:world-ipv4` or `reserved:world-ipv6`. Selectors built from CIDR
 * rules match these labels, so they never match pod or node identities.
 */
struct mg_cidr_ids;
struct mg_ipcache;

struct mg_cidr_ids *mg_cidr_ids_create(void);
void mg_cidr_ids_free(struct mg_cidr_ids *c);

/**
 * Make @p t and @p ipc hold exactly the CIDR identities @p s needs: new
 * prefixes get an identity (put in @p t) and an ipcache entry (staged in
 * @p ipc; the caller commits), prefixes no longer named lose both. A prefix
 * whose exact ipcache entry belongs to something else (an endpoint, an
 * `ipcache.entries` item) keeps that entry: CIDR identities never replace
 * another source's. Identity numbers are not reused while a prefix lives.
 * @param changed  if not NULL, receives the identities added or removed
 *   (for mg_policy_update_identities); *n_changed is set; free() it.
 * @return 0, or a negative errno with @p err filled (nothing changed).
 */
int mg_cidr_ids_sync(struct mg_cidr_ids *c, const struct mg_policy_set *s,
                     struct mg_identity_table *t, struct mg_ipcache *ipc, uint32_t **changed,
                     size_t *n_changed, struct mg_error *err);

/** Number of CIDR identities held. */
size_t mg_cidr_ids_count(const struct mg_cidr_ids *c);

/**
 * The CIDR identity held for exactly the prefix @p addr/@p plen of
 * @p family (AF_INET / AF_INET6), whether or not its ipcache entry is in
 * place (another source may hold the prefix); 0 when the policies name no
 * such prefix.
 */
uint32_t mg_cidr_ids_lookup(const struct mg_cidr_ids *c, uint8_t family, const uint8_t *addr,
                            uint8_t plen);

#endif /* MG_POLICY_H */
