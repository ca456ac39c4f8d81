/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/gateway: the gateway's state as a library. It pairs what the data
 * path reads (the live ipcache and the compiled policy) with what they
 * are built from (the config, its policy sources, identities and
 * endpoints, the CIDR identities of the policies, and the Redis sync of
 * every configured cluster), and keeps them consistent through every
 * change:
 *
 *  - load: the config and everything it names, into fresh tables;
 *  - start: the first compile, after the initial Redis sync when the
 *    config has a kvstore section (bounded by kvstore.sync_timeout;
 *    nothing is published before: the caller starts its ports after);
 *  - reload: read and check everything again off to the side, stage the
 *    difference to the live ipcache, compile, and hand the new policy and
 *    the staged changes over as ONE publication; on any error the running
 *    state stays and the error is returned;
 *  - sync tick: one poll of the Redis sync client; its batch and the
 *    policy derived for the identities it changed go out as ONE
 *    publication (an ipcache-only batch keeps the running policy).
 *
 * Publication goes through a callback the caller gives (the daemon's is
 * mg_datapath_publish), so this library has no DPDK dependency and runs
 * in unit tests and in the offline tools. Without a callback (no readers:
 * --check-config, meshgatectl, tests) it commits the ipcache and keeps
 * the policy itself.
 *
 * Threading: one thread (the daemon's control thread) calls everything;
 * the readers only ever see what a publication handed over.
 */
#ifndef MG_GATEWAY_H
#define MG_GATEWAY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_common.h"
#include "mg_config.h"
#include "mg_identity.h"
#include "mg_ipcache.h"
#include "mg_kv_sync.h"
#include "mg_policy.h"

struct rte_rcu_qsbr;
struct mg_gateway;

/**
 * Hand the readers the changes staged in @p ipc (the live ipcache) and,
 * unless NULL, @p policy, as one step (the daemon: mg_datapath_publish).
 * @return the number of ipcache changes published (>= 0): @p policy is
 *   the callee's then; or a negative errno: nothing went live, @p policy
 *   is still the caller's and the staged changes are still staged.
 */
typedef int (*mg_gateway_publish_fn)(void *arg, struct mg_ipcache *ipc, struct mg_policy *policy);

struct mg_gateway_params {
	/** The readers' RCU for the live ipcache (mg_ipcache_params.qsbr), or NULL. */
	struct rte_rcu_qsbr *qsbr;
	/** How changes reach the readers; NULL: no readers (commit here). */
	mg_gateway_publish_fn publish;
	void *publish_arg;
	/** Log the rules each load skips (a layer-4 gateway cannot enforce them). */
	bool log_skipped;
};

/**
 * Load the gateway's state from @p cfg (taken, freed with the gateway, or
 * at once on failure): policy sources, static identities and endpoints,
 * the CIDR identities of the policies. Nothing is compiled yet.
 * @return the gateway, or NULL with errno set and @p err filled (the
 *   first problem, "file:line:col: ..." where it has a position).
 */
struct mg_gateway *mg_gateway_create(struct mg_config *cfg, const struct mg_gateway_params *p,
                                     struct mg_error *err);

void mg_gateway_free(struct mg_gateway *gw);

/**
 * Compile the policy over the identities loaded so far (no Redis).
 * @return 0, or negative errno with @p err filled.
 */
int mg_gateway_compile(struct mg_gateway *gw, struct mg_error *err);

/**
 * The start: with a kvstore section, create the sync client and run the
 * initial sync of every configured cluster, bounded by
 * kvstore.sync_timeout (a timeout is logged and not an error: the missing
 * clusters come later), committing what came; then compile (as
 * mg_gateway_compile). Without one, just compile.
 * @return 0, or negative errno with @p err filled (the sync client could
 *   not be created, the password file is refused, the compile failed).
 */
int mg_gateway_start(struct mg_gateway *gw, struct mg_error *err);

/**
 * Hand the compiled policy over (to the data path's creation). The
 * gateway keeps reading it as the running policy; from now on it
 * publishes through the callback, which must be set
 * (mg_gateway_set_publish) before the next reload or sync tick.
 */
struct mg_policy *mg_gateway_take_policy(struct mg_gateway *gw);

/**
 * Give back the policy mg_gateway_take_policy() handed over, when its
 * taker failed and kept ownership (the data path's creation did): the
 * gateway owns and frees it again.
 */
void mg_gateway_return_policy(struct mg_gateway *gw, struct mg_policy *pol);

/** Set (or change) the publication callback. */
void mg_gateway_set_publish(struct mg_gateway *gw, mg_gateway_publish_fn fn, void *arg);

/**
 * Reload: read the config file again and everything it names, compile,
 * stage the difference to the live ipcache (synced entries kept), and
 * publish the new policy with it as one step. After a good reload the
 * kvstore section's cluster list, removal_grace and max_delete_share go
 * to the sync client (a cluster that left loses its state in one more
 * publication); its connection settings take effect at the next start
 * (logged). On any error nothing changes and @p err says why.
 * mg_gateway_reload_start() and mg_gateway_reload_poll() run it, waiting.
 * @return 0, or negative errno.
 */
int mg_gateway_reload(struct mg_gateway *gw, struct mg_error *err);

/**
 * Start a reload in the background: the config file and its policies are
 * read and the policy compiled on a thread of the reload's own, over a
 * copy of the identities taken now, while the caller goes on (commands,
 * sync ticks). The new state is finished and published by
 * mg_gateway_reload_poll() on the caller's thread, with the identities
 * that changed meanwhile brought in by an incremental update, so no
 * change is lost and the readers never see a policy older than the
 * identities they map to.
 * @return 0 (started), -EALREADY (one is under way: poll it first),
 *   or negative errno with @p err filled (nothing started).
 */
int mg_gateway_reload_start(struct mg_gateway *gw, struct mg_error *err);

/**
 * Finish the background reload once its thread is done: 0 while it runs
 * (or none was started), 1 when it finished and the new state is
 * published, or negative errno with @p err filled when it failed (nothing
 * changed). Call it from the thread that owns the gateway, every turn.
 */
int mg_gateway_reload_poll(struct mg_gateway *gw, struct mg_error *err);

/** Is a background reload under way (started, not yet finished by a poll)? */
bool mg_gateway_reload_busy(const struct mg_gateway *gw);

/**
 * Tests only: @p fn(@p arg) runs on a background reload's thread once it
 * has read the files, before it compiles, so a test can hold it there
 * while the sync goes on (NULL: none). Not for production use.
 */
void mg_gateway_test_reload_hook(void (*fn)(void *arg), void *arg);

/**
 * One poll of the sync client (it waits at most kvstore.block_ms, capped
 * at 10 ms), then the publication of its batch with the policy derived
 * for the identities it changed. A batch that cannot be published is
 * discarded, counted (sync_failures) and repaired by a resync.
 * @return log entries applied (>= 0), -ENOTCONN while Redis is away
 *   (the last state is kept), or another negative errno. 0 without sync.
 */
int mg_gateway_sync_tick(struct mg_gateway *gw);

/** Ask for a full resync of every cluster (operator). -ENOTSUP without sync. */
int mg_gateway_request_resync(struct mg_gateway *gw);

/* ---- what the state is now (borrowed; valid until the next reload or tick) ---- */

const struct mg_config *mg_gateway_config(const struct mg_gateway *gw);
struct mg_identity_table *mg_gateway_identities(const struct mg_gateway *gw);
struct mg_policy_set *mg_gateway_policy_set(const struct mg_gateway *gw);
/** The live ipcache (the one the readers see). */
struct mg_ipcache *mg_gateway_ipcache(const struct mg_gateway *gw);
/** The running policy: the compiled one, or the last one published. */
const struct mg_policy *mg_gateway_policy(const struct mg_gateway *gw);
/** The Redis sync client, or NULL without a kvstore section (or before the start). */
struct mg_kv_sync *mg_gateway_sync(const struct mg_gateway *gw);
/** The parameters the policy was compiled with (enforcement, revision ...). */
void mg_gateway_policy_params(const struct mg_gateway *gw, struct mg_policy_params *out);

struct mg_gateway_stats {
	uint64_t revision; /**< of the policy: 1 at start, +1 per good reload */
	uint64_t reloads_ok;
	uint64_t reloads_failed;
	uint64_t last_reload_changes; /**< ipcache entries the last good reload changed */
	uint64_t sync_failures;       /**< sync batches that could not be published */
	char last_error[512];         /**< of the last failed reload, "" after a good one */
};

void mg_gateway_stats(const struct mg_gateway *gw, struct mg_gateway_stats *out);

/**
 * One line that sums the state up: policies, rules, identities, ipcache
 * entries by family, ports, enforcement, policy memory. Into @p buf.
 */
void mg_gateway_summary(const struct mg_gateway *gw, char *buf, size_t size);

/* ==== the policy trace of one flow, as a JSON document ==== */

/*
 * What `meshgatectl policy trace -o json` prints and what the daemon
 * answers to the `policy.trace` control command: one encoder for both,
 * so the offline and the online trace can never drift apart.
 *
 * Addresses resolve through the ipcache by longest prefix, a miss giving
 * the world identity, exactly as in the data path. The explanation comes
 * from mg_policy_trace(), a rule-by-rule evaluation of the policy set; the
 * compiled tables the workers use answer the same question through
 * mg_policy_verdict(). The two are independent implementations of one
 * semantics, so every trace checks one against the other and reports a
 * disagreement (-EPROTO): a trace that hid it would explain a verdict the
 * gateway does not give.
 */

/** Longest text of a flow end ("fd00::1", "id:world-ipv4"), NUL included. */
#define MG_TRACE_TEXT_MAX 64

/**
 * What a trace reads: the state the data path was built from. Every
 * pointer is borrowed for the duration of one call. The ipcache is read
 * through mg_ipcache_reader() and mg_ipcache_get(), so the call must not
 * run concurrently with an ipcache commit (in the daemon: on the thread
 * that commits).
 */
struct mg_trace_ctx {
	const struct mg_policy_set *set;
	const struct mg_identity_table *ids;
	const struct mg_ipcache *ipc;
	const struct mg_policy *policy; /**< the compiled policy the workers use */
	const struct mg_policy_params *params;
};

/** The trace context of @p gw's current state (@p params: storage for its parameters). */
void mg_gateway_trace_ctx(const struct mg_gateway *gw, struct mg_trace_ctx *ctx,
                          struct mg_policy_params *params);

/**
 * A flow as a user gives it, in words: the command line's --src, --dst,
 * --proto, --dport and --icmp-type. @c dport and @c icmp_type are NULL
 * when not given.
 */
struct mg_trace_req {
	const char *src;   /**< "10.0.0.1", "fd00::1", "id:65600", "id:host" */
	const char *dst;   /**< same forms */
	const char *proto; /**< "tcp", "udp", "sctp", "icmp", "icmpv6", "icmp6", "0".."255" */
	const char *dport; /**< "0".."65535"; tcp, udp and sctp only (then required) */
	const char *
	        icmp_type; /**< "0".."255" or a type name; icmp/icmpv6 only (default echo request) */
};

/** One end of a parsed flow. */
struct mg_trace_end {
	char text[MG_TRACE_TEXT_MAX];
	bool is_ip;
	uint8_t family; /**< MG_AF_INET / MG_AF_INET6 when is_ip */
	uint8_t addr[16];
	uint32_t id; /**< given (id:N), or 0 until resolved */
};

/** A checked flow, self-contained (no pointer into the request). */
struct mg_trace_flow {
	struct mg_trace_end src, dst;
	uint8_t proto;
	uint16_t port; /**< destination port, or ICMP type, or 0 */
};

/**
 * Check @p req and fill @p flow. Every option is checked against the
 * others (families, ports only with port protocols, ...).
 * @return 0, or -EINVAL with the reason in @p why ("--dport '70000': not
 *   a port number (0-65535)": the messages name the command-line options).
 */
int mg_trace_flow_parse(const struct mg_trace_req *req, struct mg_trace_flow *flow, char *why,
                        size_t whysize);

/**
 * The same from the arguments of the `policy.trace` control command:
 * {"src": S, "dst": S, "proto": S or N, "dport"?: N or S, "icmp_type"?: N
 * or S}; unknown keys are refused.
 * @return 0, or -EINVAL with the reason in @p why.
 */
int mg_trace_flow_from_json(const json_t *args, struct mg_trace_flow *flow, char *why,
                            size_t whysize);

/**
 * The JSON arguments of `policy.trace` for @p flow (what the client sends:
 * src and dst as given, proto by name or number, dport / icmp_type as
 * numbers). @return a new object, or NULL with errno set.
 */
json_t *mg_trace_flow_to_json(const struct mg_trace_flow *flow);

/**
 * Trace @p flow on @p ctx: resolve both ends through the ipcache, explain
 * each direction with mg_policy_trace(), and check the verdict against
 * the compiled policy. @p *out gets the trace document (a new reference)
 * whenever the return value is 0 or -EPROTO.
 * @return 0;
 *   -EPROTO: the compiled policy and the trace disagree (a policy engine
 *     bug): @p *out is the trace, @p why says "INTERNAL ERROR: ...";
 *   -ENOMEM, or the error of mg_policy_trace(), with @p why set.
 */
int mg_trace_json(const struct mg_trace_ctx *ctx, const struct mg_trace_flow *flow, json_t **out,
                  char *why, size_t whysize);

#endif /* MG_GATEWAY_H */
