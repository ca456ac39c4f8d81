/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The policy trace as a JSON document: what `meshgatectl policy trace -o
 * json` prints and what the daemon answers to the `policy.trace` control
 * command. One file builds it for both, so the offline and the online
 * trace can never drift apart. This header and trace_json.c depend on
 * the control-plane libraries (identity, ipcache, policy) and jansson
 * only, nothing else of meshgatectl, so the daemon compiles the same
 * source file.
 */
#ifndef MG_TRACE_JSON_H
#define MG_TRACE_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_identity.h"
#include "mg_ipcache.h"
#include "mg_policy.h"

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

#endif /* MG_TRACE_JSON_H */
