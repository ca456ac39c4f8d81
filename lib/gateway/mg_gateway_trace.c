/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The policy trace of one flow as a JSON document, shared by meshgatectl
 * (`policy trace --config`, offline) and the daemon (the `policy.trace`
 * control command), so that both explain a verdict with the same words
 * and the same fields. meshgatectl's text output is printed from this
 * document too (app/meshgatectl/policy_trace.c), which makes the offline
 * and the online text identical by construction.
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
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mg_gateway.h"
#include "mg_pkt.h"

/* ---- ICMP type names: the policy module's, so a trace speaks the words of the policy ---- */

static uint8_t
icmp_family(uint8_t proto)
{
	return proto == MG_IPPROTO_ICMP ? MG_AF_INET : MG_AF_INET6;
}

static const char *
icmp_type_name(uint8_t proto, uint16_t type)
{
	return type > 255 ? NULL : mg_policy_icmp_name(icmp_family(proto), (uint8_t)type);
}

/* Number or name (case-insensitive, as a convenience on the command line). */
static int
icmp_type_parse(uint8_t proto, const char *s, uint16_t *out)
{
	char *end;
	unsigned long v;
	uint8_t t;

	if (s[0] >= '0' && s[0] <= '9') {
		errno = 0;
		v = strtoul(s, &end, 10);
		if (errno != 0 || *end != '\0' || v > 255)
			return -EINVAL;
		*out = (uint16_t)v;
		return 0;
	}
	if (mg_policy_icmp_type(icmp_family(proto), s, true, &t) != 0)
		return -ENOENT;
	*out = t;
	return 0;
}

/* ---- protocols ---- */

static int
proto_parse(const char *s, uint8_t *out)
{
	static const struct {
		const char *name;
		uint8_t proto;
	} names[] = {
	        {"tcp", MG_IPPROTO_TCP},       {"udp", MG_IPPROTO_UDP},
	        {"sctp", MG_IPPROTO_SCTP},     {"icmp", MG_IPPROTO_ICMP},
	        {"icmpv6", MG_IPPROTO_ICMPV6}, {"icmp6", MG_IPPROTO_ICMPV6},
	};
	unsigned long v;
	char *end;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(s, names[i].name) == 0) {
			*out = names[i].proto;
			return 0;
		}
	if (s[0] < '0' || s[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > 255)
		return -EINVAL;
	*out = (uint8_t)v;
	return 0;
}

static bool
proto_has_ports(uint8_t p)
{
	return p == MG_IPPROTO_TCP || p == MG_IPPROTO_UDP || p == MG_IPPROTO_SCTP;
}

static bool
proto_is_icmp(uint8_t p)
{
	return p == MG_IPPROTO_ICMP || p == MG_IPPROTO_ICMPV6;
}

static const char *
proto_name(uint8_t p)
{
	return mg_pkt_proto_name(p);
}

/* ---- parsing a flow ---- */

/* Parse "10.0.0.1", "fd00::1", "id:65600" or "id:world". */
static int
end_parse(const char *s, struct mg_trace_end *e, char *why, size_t whysize)
{
	memset(e, 0, sizeof(*e));
	if (strlen(s) >= sizeof(e->text)) {
		snprintf(why, whysize, "'%s': not an IPv4 or IPv6 address, nor id:N", s);
		return -EINVAL;
	}
	strcpy(e->text, s);
	if (strncmp(s, "id:", 3) == 0) {
		const char *v = s + 3;
		char *end;
		unsigned long n;

		if (*v >= '0' && *v <= '9') {
			errno = 0;
			n = strtoul(v, &end, 10);
			if (errno != 0 || *end != '\0' || n == 0 || n > MG_ID_MAX) {
				snprintf(why, whysize, "'%s': identity must be 1 to %u", s,
				         MG_ID_MAX);
				return -EINVAL;
			}
			e->id = (uint32_t)n;
			return 0;
		}
		e->id = mg_identity_reserved_by_name(v);
		if (e->id == 0) {
			snprintf(why, whysize, "'%s': not an identity number or reserved name", s);
			return -EINVAL;
		}
		return 0;
	}
	e->is_ip = true;
	if (inet_pton(AF_INET, s, e->addr) == 1) {
		e->family = MG_AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, e->addr) == 1) {
		e->family = MG_AF_INET6;
		return 0;
	}
	snprintf(why, whysize, "'%s': not an IPv4 or IPv6 address, nor id:N", s);
	return -EINVAL;
}

int
mg_trace_flow_parse(const struct mg_trace_req *req, struct mg_trace_flow *f, char *why,
                    size_t whysize)
{
	char *end;
	unsigned long v;

	memset(f, 0, sizeof(*f));
	if (req->src == NULL || req->dst == NULL || req->proto == NULL) {
		snprintf(why, whysize, "%s is required",
		         req->src == NULL   ? "--src"
		         : req->dst == NULL ? "--dst"
		                            : "--proto");
		return -EINVAL;
	}
	if (end_parse(req->src, &f->src, why, whysize) < 0 ||
	    end_parse(req->dst, &f->dst, why, whysize) < 0)
		return -EINVAL;
	if (proto_parse(req->proto, &f->proto) < 0) {
		snprintf(why, whysize,
		         "--proto '%s': unknown protocol (tcp, udp, sctp, icmp, icmpv6 or a "
		         "number 0-255)",
		         req->proto);
		return -EINVAL;
	}
	if (f->src.is_ip && f->dst.is_ip && f->src.family != f->dst.family) {
		snprintf(why, whysize, "--src %s and --dst %s are of different IP families",
		         f->src.text, f->dst.text);
		return -EINVAL;
	}
	if (proto_is_icmp(f->proto)) {
		uint8_t fam = icmp_family(f->proto);
		const struct mg_trace_end *ip = f->src.is_ip   ? &f->src
		                                : f->dst.is_ip ? &f->dst
		                                               : NULL;
		int rc;

		if (req->dport != NULL) {
			snprintf(why, whysize,
			         "--dport does not apply to %s; give the type with --icmp-type",
			         proto_name(f->proto));
			return -EINVAL;
		}
		if (ip != NULL && ip->family != fam) {
			snprintf(why, whysize, "--proto %s needs %s addresses (use %s)",
			         proto_name(f->proto), fam == MG_AF_INET ? "IPv4" : "IPv6",
			         fam == MG_AF_INET ? "icmpv6" : "icmp");
			return -EINVAL;
		}
		if (req->icmp_type == NULL) {
			/* the common question: may it ping? */
			f->port = f->proto == MG_IPPROTO_ICMP ? 8 : 128;
			return 0;
		}
		rc = icmp_type_parse(f->proto, req->icmp_type, &f->port);
		if (rc < 0) {
			snprintf(why, whysize,
			         rc == -ENOENT
			                 ? "--icmp-type '%s': unknown %s type name"
			                 : "--icmp-type '%s': not a %s type (0-255 or a name)",
			         req->icmp_type, f->proto == MG_IPPROTO_ICMP ? "ICMP" : "ICMPv6");
			return -EINVAL;
		}
		return 0;
	}
	if (req->icmp_type != NULL) {
		snprintf(why, whysize, "--icmp-type applies to icmp and icmpv6 only");
		return -EINVAL;
	}
	if (!proto_has_ports(f->proto)) {
		if (req->dport != NULL) {
			snprintf(why, whysize, "--dport applies to tcp, udp and sctp only");
			return -EINVAL;
		}
		f->port = 0;
		return 0;
	}
	if (req->dport == NULL) {
		snprintf(why, whysize, "--dport is required with --proto %s", proto_name(f->proto));
		return -EINVAL;
	}
	errno = 0;
	v = strtoul(req->dport, &end, 10);
	if (req->dport[0] < '0' || req->dport[0] > '9' || errno != 0 || *end != '\0' || v > 65535) {
		snprintf(why, whysize, "--dport '%s': not a port number (0-65535)", req->dport);
		return -EINVAL;
	}
	f->port = (uint16_t)v;
	return 0;
}

/*
 * One member of the policy.trace arguments as text: strings as they are,
 * non-negative integers printed into @p buf (numbers are what a client
 * naturally sends for ports and types).
 */
static int
arg_text(const json_t *args, const char *key, bool number_ok, const char **out, char *buf,
         size_t size, char *why, size_t whysize)
{
	const json_t *v = json_object_get(args, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_string(v)) {
		*out = json_string_value(v);
		return 0;
	}
	if (number_ok && json_is_integer(v)) {
		snprintf(buf, size, "%lld", (long long)json_integer_value(v));
		*out = buf;
		return 0;
	}
	snprintf(why, whysize, "%s: must be a %s", key,
	         number_ok ? "string or a number" : "string");
	return -EINVAL;
}

int
mg_trace_flow_from_json(const json_t *args, struct mg_trace_flow *flow, char *why, size_t whysize)
{
	static const char *const keys[] = {"src", "dst", "proto", "dport", "icmp_type"};
	char pbuf[32], dbuf[32], ibuf[32];
	struct mg_trace_req req;
	const char *key;
	json_t *val;
	size_t i;

	if (!json_is_object(args)) {
		snprintf(why, whysize, "the arguments must be an object");
		return -EINVAL;
	}
	json_object_foreach((json_t *)args, key, val)
	{
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (strcmp(key, keys[i]) == 0)
				break;
		if (i == sizeof(keys) / sizeof(keys[0])) {
			snprintf(why, whysize,
			         "unknown argument '%s' (src, dst, proto, dport, icmp_type)", key);
			return -EINVAL;
		}
	}
	if (arg_text(args, "src", false, &req.src, NULL, 0, why, whysize) < 0 ||
	    arg_text(args, "dst", false, &req.dst, NULL, 0, why, whysize) < 0 ||
	    arg_text(args, "proto", true, &req.proto, pbuf, sizeof(pbuf), why, whysize) < 0 ||
	    arg_text(args, "dport", true, &req.dport, dbuf, sizeof(dbuf), why, whysize) < 0 ||
	    arg_text(args, "icmp_type", true, &req.icmp_type, ibuf, sizeof(ibuf), why, whysize) < 0)
		return -EINVAL;
	return mg_trace_flow_parse(&req, flow, why, whysize);
}

json_t *
mg_trace_flow_to_json(const struct mg_trace_flow *flow)
{
	const char *pn = proto_name(flow->proto);
	json_t *args;

	args = json_pack("{s:s, s:s}", "src", flow->src.text, "dst", flow->dst.text);
	if (args == NULL)
		goto err;
	if (json_object_set_new(args, "proto", pn ? json_string(pn) : json_integer(flow->proto)) <
	    0)
		goto err;
	if (proto_has_ports(flow->proto) &&
	    json_object_set_new(args, "dport", json_integer(flow->port)) < 0)
		goto err;
	if (proto_is_icmp(flow->proto) &&
	    json_object_set_new(args, "icmp_type", json_integer(flow->port)) < 0)
		goto err;
	return args;
err:
	json_decref(args);
	errno = ENOMEM;
	return NULL;
}

/* ---- tracing ---- */

/*
 * Resolve an address to its identity, and find the prefix that decided
 * it: the longest committed one covering the address ("" on a miss).
 */
static void
resolve(const struct mg_trace_ctx *ctx, struct mg_trace_end *e, char *prefix, size_t size)
{
	const struct mg_ipcache_view *v;
	struct mg_ipcache_entry ent;
	unsigned max, plen;

	prefix[0] = '\0';
	if (!e->is_ip)
		return;
	v = mg_ipcache_reader(ctx->ipc);
	e->id = mg_ipcache_lookup(v, e->family, e->addr);
	max = e->family == MG_AF_INET ? 32 : 128;
	for (plen = max + 1; plen-- > 0;) {
		uint8_t a[16] = {0};
		unsigned b;

		memcpy(a, e->addr, (plen + 7) / 8);
		if (plen % 8)
			a[plen / 8] &= (uint8_t)(0xff << (8 - plen % 8));
		for (b = (plen + 7) / 8; b < 16; b++)
			a[b] = 0;
		if (mg_ipcache_get(ctx->ipc, e->family, a, (uint8_t)plen, &ent) == 0) {
			if (ent.identity == e->id)
				mg_ipcache_prefix_str(&ent, prefix, (unsigned)size);
			break;
		}
	}
}

static const char *
reason(const struct mg_policy_decision *d)
{
	if (d->by_deny_rule)
		return "deny-rule";
	if (d->name[0] != '\0')
		return d->allowed ? "allow-rule" : "deny-rule";
	if (!d->allowed)
		return "default-deny";
	return "open";
}

static void
label_str(const struct mg_label *l, char *buf, size_t size)
{
	if (l->value != NULL && l->value[0] != '\0')
		snprintf(buf, size, "%s:%s=%s", l->source, l->key, l->value);
	else
		snprintf(buf, size, "%s:%s", l->source, l->key);
}

/* Protocol of a named port, as CiliumEndpoint manifests spell it. */
static const char *
l4_name(uint8_t p)
{
	return p == MG_IPPROTO_TCP ? "TCP" : p == MG_IPPROTO_UDP ? "UDP" : "SCTP";
}

static json_t *
end_json(const struct mg_trace_ctx *ctx, const struct mg_trace_end *e, const char *prefix)
{
	const struct mg_identity *id = mg_identity_table_get(ctx->ids, e->id);
	json_t *labels = json_array(), *ports;
	const char *rname = mg_identity_reserved_name(e->id);
	char buf[1024];
	size_t i;

	if (labels == NULL)
		return NULL;
	for (i = 0; id != NULL && i < id->labels.n; i++) {
		label_str(&id->labels.v[i], buf, sizeof(buf));
		json_array_append_new(labels, json_string(buf));
	}
	ports = json_array();
	for (i = 0; ports != NULL && id != NULL && i < id->n_named_ports; i++)
		json_array_append_new(ports,
		                      json_pack("{s:s, s:i, s:s}", "name", id->named_ports[i].name,
		                                "port", (int)id->named_ports[i].port, "protocol",
		                                l4_name(id->named_ports[i].proto)));
	return json_pack("{s:I, s:o, s:b, s:s?, s:s?, s:s?, s:o?}", "identity", (json_int_t)e->id,
	                 "labels", labels, "known", id != NULL, "reserved", rname, "ip",
	                 e->is_ip ? e->text : NULL, "prefix", e->is_ip && prefix[0] ? prefix : NULL,
	                 "named_ports", ports);
}

static json_t *
decision_json(const struct mg_policy_decision *d)
{
	json_t *rule = json_null();

	if (d->name[0] != '\0')
		rule = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:i, s:s}", "name", d->name,
		                 "namespace", d->ns, "cluster", d->cluster, "section",
		                 d->section ? d->section : "", "rule_index", (int)d->rule_index,
		                 "entry_index", (int)d->entry_index, "file", d->file, "line",
		                 (int)d->line, "kind",
		                 d->ns[0] ? "CiliumNetworkPolicy"
		                          : "CiliumClusterwideNetworkPolicy");
	return json_pack("{s:b, s:b, s:b, s:b, s:s, s:o}", "allowed", d->allowed, "enforced",
	                 d->enforced, "selected", d->selected, "by_deny_rule", d->by_deny_rule,
	                 "reason", reason(d), "rule", rule);
}

static const char *
verdict_name(enum mg_verdict v)
{
	return v == MG_VERDICT_ALLOW ? "allowed" : "denied";
}

static const char *
verdict_side(enum mg_verdict v)
{
	return v == MG_VERDICT_DENY_EGRESS    ? "egress"
	       : v == MG_VERDICT_DENY_INGRESS ? "ingress"
	                                      : NULL;
}

/* "tcp dport 80", "icmp type 8 (EchoRequest)", "ip protocol 47". */
static void
flow_desc(uint8_t proto, uint16_t port, char *buf, size_t size)
{
	const char *pn = proto_name(proto), *tn;

	if (proto_has_ports(proto)) {
		snprintf(buf, size, "%s dport %u", pn, port);
	} else if (proto_is_icmp(proto)) {
		tn = icmp_type_name(proto, port);
		snprintf(buf, size, "%s type %u%s%s%s", pn, port, tn ? " (" : "", tn ? tn : "",
		         tn ? ")" : "");
	} else {
		snprintf(buf, size, "ip protocol %u", proto);
	}
}

int
mg_trace_json(const struct mg_trace_ctx *ctx, const struct mg_trace_flow *flow, json_t **out,
              char *why, size_t whysize)
{
	char sprefix[64], dprefix[64], desc[128];
	struct mg_trace_flow f = *flow;
	struct mg_policy_trace tr;
	enum mg_verdict compiled;
	json_t *doc;
	int rc;

	*out = NULL;
	resolve(ctx, &f.src, sprefix, sizeof(sprefix));
	resolve(ctx, &f.dst, dprefix, sizeof(dprefix));
	rc = mg_policy_trace(ctx->set, ctx->ids, ctx->params, f.src.id, f.dst.id, f.proto, f.port,
	                     &tr);
	if (rc < 0 && rc != -ENOENT) {
		snprintf(why, whysize, "trace failed: %s", strerror(-rc));
		return rc;
	}
	compiled = mg_policy_verdict(ctx->policy, f.src.id, f.dst.id, f.proto, f.port);

	doc = json_pack(
	        "{s:s, s:s?, s:o, s:o, s:s, s:i, s:o?, s:o?, s:s?, s:o, s:o, s:s}", "verdict",
	        verdict_name(tr.verdict), "denied_by", verdict_side(tr.verdict), "src",
	        end_json(ctx, &f.src, sprefix), "dst", end_json(ctx, &f.dst, dprefix), "proto",
	        proto_name(f.proto) ? proto_name(f.proto) : "other", "ip_proto", (int)f.proto,
	        "dport", proto_has_ports(f.proto) ? json_integer(f.port) : NULL, "icmp_type",
	        proto_is_icmp(f.proto) ? json_integer(f.port) : NULL, "icmp_type_name",
	        proto_is_icmp(f.proto) ? icmp_type_name(f.proto, f.port) : NULL, "egress",
	        decision_json(&tr.egress), "ingress", decision_json(&tr.ingress), "enforcement",
	        mg_enforcement_name(ctx->params->enforcement));
	if (doc == NULL) {
		snprintf(why, whysize, "cannot build the JSON output");
		return -ENOMEM;
	}
	*out = doc;
	if (compiled != tr.verdict) {
		flow_desc(f.proto, f.port, desc, sizeof(desc));
		snprintf(
		        why, whysize,
		        "INTERNAL ERROR: the compiled policy says %s%s%s but the trace says %s%s%s "
		        "for %s -> %s %s (a policy engine bug; please report it)",
		        verdict_name(compiled), verdict_side(compiled) ? " by " : "",
		        verdict_side(compiled) ? verdict_side(compiled) : "",
		        verdict_name(tr.verdict), verdict_side(tr.verdict) ? " by " : "",
		        verdict_side(tr.verdict) ? verdict_side(tr.verdict) : "", f.src.text,
		        f.dst.text, desc);
		return -EPROTO;
	}
	return 0;
}
