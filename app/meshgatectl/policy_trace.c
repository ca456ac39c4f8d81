/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `meshgatectl policy trace --config FILE`: the verdict the daemon would
 * give a flow, and why, computed offline from the daemon's own config.
 *
 * The inputs are loaded as the daemon loads them (offline.c). Addresses
 * resolve through the ipcache by longest prefix, a miss giving the world
 * identity, exactly as in the data path. The explanation comes from
 * mg_policy_trace(), a rule-by-rule evaluation of the policy set; the
 * compiled tables the workers use answer the same question through
 * mg_policy_verdict(). The two are independent implementations of one
 * semantics, so the tool checks them against each other on every flow and
 * fails loudly (exit 3) when they disagree: that is a bug in the engine,
 * and a trace that hid it would explain a verdict the gateway does not
 * give.
 *
 * Batch mode (--flows FILE) traces many flows on one loaded state; each
 * line of FILE holds the flow options of one trace. The conformance suite
 * uses it so that a case with ten flows costs one process.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctl.h"
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

/* ---- flows ---- */

/** One end of a flow as given: an address or an identity. */
struct end {
	const char *text;
	bool is_ip;
	uint8_t family; /* MG_AF_INET / MG_AF_INET6 when is_ip */
	uint8_t addr[16];
	uint32_t id;     /* given (id:N) or resolved */
	char prefix[64]; /* the ipcache prefix that matched, "" on a miss */
	bool known;      /* in the identity table */
};

struct flow {
	struct end src, dst;
	const char *proto_text;
	uint8_t proto;
	bool has_dport, has_icmp;
	const char *dport_text, *icmp_text;
	uint16_t port; /* destination port, or ICMP type */
};

/* Parse "10.0.0.1", "fd00::1", "id:65600" or "id:world". */
static int
end_parse(const char *s, struct end *e, char *why, size_t whysize)
{
	memset(e, 0, sizeof(*e));
	e->text = s;
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
	switch (p) {
	case MG_IPPROTO_TCP:
		return "tcp";
	case MG_IPPROTO_UDP:
		return "udp";
	case MG_IPPROTO_SCTP:
		return "sctp";
	case MG_IPPROTO_ICMP:
		return "icmp";
	case MG_IPPROTO_ICMPV6:
		return "icmpv6";
	}
	return NULL;
}

/* Check a fully parsed flow's options against each other. */
static int
flow_finish(struct flow *f, char *why, size_t whysize)
{
	char *end;
	unsigned long v;

	if (f->src.text == NULL || f->dst.text == NULL || f->proto_text == NULL) {
		snprintf(why, whysize, "%s is required",
		         f->src.text == NULL   ? "--src"
		         : f->dst.text == NULL ? "--dst"
		                               : "--proto");
		return -EINVAL;
	}
	if (end_parse(f->src.text, &f->src, why, whysize) < 0 ||
	    end_parse(f->dst.text, &f->dst, why, whysize) < 0)
		return -EINVAL;
	if (proto_parse(f->proto_text, &f->proto) < 0) {
		snprintf(why, whysize,
		         "--proto '%s': unknown protocol (tcp, udp, sctp, icmp, icmpv6 or a "
		         "number 0-255)",
		         f->proto_text);
		return -EINVAL;
	}
	if (f->src.is_ip && f->dst.is_ip && f->src.family != f->dst.family) {
		snprintf(why, whysize, "--src %s and --dst %s are of different IP families",
		         f->src.text, f->dst.text);
		return -EINVAL;
	}
	if (proto_is_icmp(f->proto)) {
		uint8_t fam = f->proto == MG_IPPROTO_ICMP ? MG_AF_INET : MG_AF_INET6;
		const struct end *ip = f->src.is_ip ? &f->src : f->dst.is_ip ? &f->dst : NULL;
		int rc;

		if (f->has_dport) {
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
		if (!f->has_icmp) {
			/* the common question: may it ping? */
			f->port = f->proto == MG_IPPROTO_ICMP ? 8 : 128;
			return 0;
		}
		rc = icmp_type_parse(f->proto, f->icmp_text, &f->port);
		if (rc < 0) {
			snprintf(why, whysize,
			         rc == -ENOENT
			                 ? "--icmp-type '%s': unknown %s type name"
			                 : "--icmp-type '%s': not a %s type (0-255 or a name)",
			         f->icmp_text, f->proto == MG_IPPROTO_ICMP ? "ICMP" : "ICMPv6");
			return -EINVAL;
		}
		return 0;
	}
	if (f->has_icmp) {
		snprintf(why, whysize, "--icmp-type applies to icmp and icmpv6 only");
		return -EINVAL;
	}
	if (!proto_has_ports(f->proto)) {
		if (f->has_dport) {
			snprintf(why, whysize, "--dport applies to tcp, udp and sctp only");
			return -EINVAL;
		}
		f->port = 0;
		return 0;
	}
	if (!f->has_dport) {
		snprintf(why, whysize, "--dport is required with --proto %s", proto_name(f->proto));
		return -EINVAL;
	}
	errno = 0;
	v = strtoul(f->dport_text, &end, 10);
	if (f->dport_text[0] < '0' || f->dport_text[0] > '9' || errno != 0 || *end != '\0' ||
	    v > 65535) {
		snprintf(why, whysize, "--dport '%s': not a port number (0-65535)", f->dport_text);
		return -EINVAL;
	}
	f->port = (uint16_t)v;
	return 0;
}

/* ---- options ---- */

struct trace_opts {
	const char *config;
	const char *flows;
	enum ctl_output out;
	bool help;
};

enum opt_id {
	OPT_CONFIG,
	OPT_FLOWS,
	OPT_OUTPUT,
	OPT_HELP,
	OPT_SRC,
	OPT_DST,
	OPT_PROTO,
	OPT_DPORT,
	OPT_ICMP,
};

static const struct {
	const char *name;
	enum opt_id id;
	bool arg;
	bool flow; /* allowed on a line of --flows */
} opt_table[] = {
        {"--config", OPT_CONFIG, true, false}, {"-c", OPT_CONFIG, true, false},
        {"--flows", OPT_FLOWS, true, false},   {"--output", OPT_OUTPUT, true, false},
        {"-o", OPT_OUTPUT, true, false},       {"--help", OPT_HELP, false, false},
        {"-h", OPT_HELP, false, false},        {"--src", OPT_SRC, true, true},
        {"--dst", OPT_DST, true, true},        {"--proto", OPT_PROTO, true, true},
        {"-p", OPT_PROTO, true, true},         {"--dport", OPT_DPORT, true, true},
        {"--icmp-type", OPT_ICMP, true, true},
};

/*
 * Parse options "--name value" or "--name=value". Used for the command
 * line (@p o not NULL) and for the lines of --flows (@p o NULL: flow
 * options only). A hand-written loop rather than getopt, because the same
 * parser runs again on every line of a flows file.
 */
static int
parse_opts(int argc, char **argv, struct trace_opts *o, struct flow *f, char *why, size_t whysize)
{
	int i;

	memset(f, 0, sizeof(*f));
	for (i = 0; i < argc; i++) {
		const char *a = argv[i], *val = NULL, *eq = NULL;
		size_t k, n = sizeof(opt_table) / sizeof(opt_table[0]), len = strlen(a);

		if (strncmp(a, "--", 2) == 0 && (eq = strchr(a, '=')) != NULL)
			len = (size_t)(eq - a);
		for (k = 0; k < n; k++)
			if (strlen(opt_table[k].name) == len &&
			    strncmp(opt_table[k].name, a, len) == 0)
				break;
		if (k == n || (o == NULL && !opt_table[k].flow)) {
			snprintf(why, whysize,
			         a[0] == '-' ? "unknown option '%s'" : "unexpected argument '%s'",
			         a);
			return -EINVAL;
		}
		if (opt_table[k].arg) {
			if (eq != NULL) {
				val = eq + 1;
			} else if (i + 1 < argc) {
				val = argv[++i];
			} else {
				snprintf(why, whysize, "%s needs a value", opt_table[k].name);
				return -EINVAL;
			}
		} else if (eq != NULL) {
			snprintf(why, whysize, "%.*s takes no value", (int)len, a);
			return -EINVAL;
		}
		switch (opt_table[k].id) {
		case OPT_CONFIG:
			o->config = val;
			break;
		case OPT_FLOWS:
			o->flows = val;
			break;
		case OPT_OUTPUT:
			if (ctl_output_parse(val, &o->out) < 0) {
				snprintf(why, whysize, "-o: unknown format '%s' (text, json)", val);
				return -EINVAL;
			}
			break;
		case OPT_HELP:
			o->help = true;
			break;
		case OPT_SRC:
			f->src.text = val;
			break;
		case OPT_DST:
			f->dst.text = val;
			break;
		case OPT_PROTO:
			f->proto_text = val;
			break;
		case OPT_DPORT:
			f->has_dport = true;
			f->dport_text = val;
			break;
		case OPT_ICMP:
			f->has_icmp = true;
			f->icmp_text = val;
			break;
		}
	}
	return 0;
}

/* ---- tracing ---- */

/* Resolve an address to its identity and the prefix that decided it. */
static void
resolve(const struct ctl_state *st, struct end *e)
{
	const struct mg_ipcache_view *v;
	struct mg_ipcache_entry ent;
	unsigned max, plen;

	if (!e->is_ip)
		return;
	v = mg_ipcache_reader(st->ipc);
	e->id = mg_ipcache_lookup(v, e->family, e->addr);
	/* Which prefix matched: the longest committed one covering the address. */
	max = e->family == MG_AF_INET ? 32 : 128;
	for (plen = max + 1; plen-- > 0;) {
		uint8_t a[16] = {0};
		unsigned b;

		memcpy(a, e->addr, (plen + 7) / 8);
		if (plen % 8)
			a[plen / 8] &= (uint8_t)(0xff << (8 - plen % 8));
		for (b = (plen + 7) / 8; b < 16; b++)
			a[b] = 0;
		if (mg_ipcache_get(st->ipc, e->family, a, (uint8_t)plen, &ent) == 0) {
			if (ent.identity == e->id)
				mg_ipcache_prefix_str(&ent, e->prefix, sizeof(e->prefix));
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
end_json(const struct ctl_state *st, const struct end *e)
{
	const struct mg_identity *id = mg_identity_table_get(st->ids, e->id);
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
	                 e->is_ip ? e->text : NULL, "prefix",
	                 e->is_ip && e->prefix[0] ? e->prefix : NULL, "named_ports", ports);
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
	return json_pack("{s:b, s:b, s:b, s:s, s:o}", "allowed", d->allowed, "enforced",
	                 d->enforced, "by_deny_rule", d->by_deny_rule, "reason", reason(d), "rule",
	                 rule);
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

static void
print_flow_desc(const struct flow *f, FILE *out)
{
	const char *pn = proto_name(f->proto);

	if (proto_has_ports(f->proto))
		fprintf(out, "%s dport %u", pn, f->port);
	else if (proto_is_icmp(f->proto)) {
		const char *tn = icmp_type_name(f->proto, f->port);

		fprintf(out, "%s type %u%s%s%s", pn, f->port, tn ? " (" : "", tn ? tn : "",
		        tn ? ")" : "");
	} else
		fprintf(out, "ip protocol %u", f->proto);
}

static void
print_end_text(const struct ctl_state *st, const char *what, const struct end *e, FILE *out)
{
	const struct mg_identity *id = mg_identity_table_get(st->ids, e->id);
	const char *rname = mg_identity_reserved_name(e->id);
	char buf[1024];
	size_t i;

	fprintf(out, "%-12s ", what);
	if (e->is_ip)
		fprintf(out, "%s -> ", e->text);
	fprintf(out, "identity %u", e->id);
	if (rname != NULL)
		fprintf(out, " (%s)", rname);
	if (e->is_ip)
		fprintf(out, e->prefix[0] ? " [ipcache %s]" : " [no ipcache entry: world]",
		        e->prefix);
	if (id == NULL)
		fprintf(out, " [unknown identity: evaluated without labels]");
	fputc('\n', out);
	for (i = 0; id != NULL && i < id->labels.n; i++) {
		label_str(&id->labels.v[i], buf, sizeof(buf));
		fprintf(out, "%-12s   %s\n", "", buf);
	}
	for (i = 0; id != NULL && i < id->n_named_ports; i++)
		fprintf(out, "%-12s   named port %s: %s %u\n", "", id->named_ports[i].name,
		        l4_name(id->named_ports[i].proto), id->named_ports[i].port);
}

static void
print_decision_text(const struct ctl_state *st, const char *dir, const char *whose, uint32_t id,
                    const struct mg_policy_decision *d, FILE *out)
{
	fprintf(out, "%-7s (of %s %u): %s", dir, whose, id, d->allowed ? "allowed" : "DENIED");
	if (d->name[0] != '\0') {
		fprintf(out, " by %s rule: %s %s%s%s (cluster %s), spec rule %u, %s[%u], %s:%u",
		        d->by_deny_rule ? "deny" : "allow",
		        d->ns[0] ? "CiliumNetworkPolicy" : "CiliumClusterwideNetworkPolicy", d->ns,
		        d->ns[0] ? "/" : "", d->name, d->cluster, d->rule_index,
		        d->section ? d->section : "?", d->entry_index, d->file, d->line);
		if (!d->enforced && d->allowed)
			fprintf(out, " (the direction is not default deny)");
	} else if (d->allowed) {
		if (st->params.enforcement == MG_ENFORCE_NEVER)
			fprintf(out, ": enforcement never");
		else
			fprintf(out, ": no policy selects it for %s (open)", dir);
	} else {
		if (st->params.enforcement == MG_ENFORCE_ALWAYS && !d->enforced)
			fprintf(out, ": default deny (enforcement always)");
		else
			fprintf(out, ": default deny (a rule selects it for %s; none allows this)",
			        dir);
	}
	fputc('\n', out);
}

/*
 * Trace one flow and print it. @return CTL_EXIT_OK, or CTL_EXIT_INTERNAL
 * when the compiled tables disagree with the trace.
 */
static int
trace_one(const struct ctl_state *st, struct flow *f, enum ctl_output out, bool batch,
          const char *cmd)
{
	struct mg_policy_trace tr;
	enum mg_verdict compiled;
	int rc;

	resolve(st, &f->src);
	resolve(st, &f->dst);
	f->src.known = mg_identity_table_get(st->ids, f->src.id) != NULL;
	f->dst.known = mg_identity_table_get(st->ids, f->dst.id) != NULL;
	rc = mg_policy_trace(st->set, st->ids, &st->params, f->src.id, f->dst.id, f->proto, f->port,
	                     &tr);
	if (rc < 0 && rc != -ENOENT) {
		fprintf(stderr, "meshgatectl %s: trace failed: %s\n", cmd, strerror(-rc));
		return CTL_EXIT_INTERNAL;
	}
	compiled = mg_policy_verdict(st->policy, f->src.id, f->dst.id, f->proto, f->port);

	if (out == CTL_OUT_JSON) {
		json_t *doc = json_pack(
		        "{s:s, s:s?, s:o, s:o, s:s, s:i, s:o?, s:o?, s:s?, s:o, s:o, s:s}",
		        "verdict", verdict_name(tr.verdict), "denied_by", verdict_side(tr.verdict),
		        "src", end_json(st, &f->src), "dst", end_json(st, &f->dst), "proto",
		        proto_name(f->proto) ? proto_name(f->proto) : "other", "ip_proto",
		        (int)f->proto, "dport",
		        proto_has_ports(f->proto) ? json_integer(f->port) : NULL, "icmp_type",
		        proto_is_icmp(f->proto) ? json_integer(f->port) : NULL, "icmp_type_name",
		        proto_is_icmp(f->proto) ? icmp_type_name(f->proto, f->port) : NULL,
		        "egress", decision_json(&tr.egress), "ingress", decision_json(&tr.ingress),
		        "enforcement", mg_enforcement_name(st->params.enforcement));

		if (doc == NULL) {
			fprintf(stderr, "meshgatectl %s: cannot build the JSON output\n", cmd);
			return CTL_EXIT_INTERNAL;
		}
		json_dumpf(doc, stdout, batch ? JSON_COMPACT : JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(doc);
	} else {
		print_end_text(st, "source:", &f->src, stdout);
		print_end_text(st, "destination:", &f->dst, stdout);
		fprintf(stdout, "%-12s ", "flow:");
		print_flow_desc(f, stdout);
		fputc('\n', stdout);
		print_decision_text(st, "egress", "source", f->src.id, &tr.egress, stdout);
		print_decision_text(st, "ingress", "destination", f->dst.id, &tr.ingress, stdout);
		fprintf(stdout, "%-12s %s",
		        "verdict:", tr.verdict == MG_VERDICT_ALLOW ? "ALLOWED" : "DENIED");
		if (verdict_side(tr.verdict) != NULL)
			fprintf(stdout, " (by %s)", verdict_side(tr.verdict));
		fputc('\n', stdout);
	}
	fflush(stdout);
	if (compiled != tr.verdict) {
		fprintf(stderr,
		        "meshgatectl %s: INTERNAL ERROR: the compiled policy says %s%s%s but the "
		        "trace says %s%s%s for %s -> %s ",
		        cmd, verdict_name(compiled), verdict_side(compiled) ? " by " : "",
		        verdict_side(compiled) ? verdict_side(compiled) : "",
		        verdict_name(tr.verdict), verdict_side(tr.verdict) ? " by " : "",
		        verdict_side(tr.verdict) ? verdict_side(tr.verdict) : "", f->src.text,
		        f->dst.text);
		print_flow_desc(f, stderr);
		fprintf(stderr, " (a policy engine bug; please report it)\n");
		return CTL_EXIT_INTERNAL;
	}
	return CTL_EXIT_OK;
}

#define MAX_LINE_ARGS 32

/* Split @p line in place into whitespace-separated words. */
static int
split_words(char *line, char **argv, int max)
{
	int n = 0;
	char *p = line;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (*p == '\0' || *p == '#')
			return n;
		if (n == max)
			return -E2BIG;
		argv[n++] = p;
		while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
			p++;
		if (*p != '\0')
			*p++ = '\0';
	}
}

static int
trace_batch(const struct ctl_state *st, const char *path, enum ctl_output out, const char *cmd)
{
	FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	int ret = CTL_EXIT_OK, rc, n;
	char *line = NULL, *argv[MAX_LINE_ARGS];
	size_t cap = 0;
	unsigned lineno = 0;
	char why[512];
	struct flow f;

	if (in == NULL) {
		fprintf(stderr, "meshgatectl %s: --flows %s: %s\n", cmd, path, strerror(errno));
		return CTL_EXIT_USAGE;
	}
	while (getline(&line, &cap, in) >= 0) {
		lineno++;
		n = split_words(line, argv, MAX_LINE_ARGS);
		if (n == 0)
			continue;
		if (n < 0) {
			fprintf(stderr, "meshgatectl %s: %s:%u: too many words\n", cmd, path,
			        lineno);
			ret = CTL_EXIT_USAGE;
			break;
		}
		if (parse_opts(n, argv, NULL, &f, why, sizeof(why)) < 0 ||
		    flow_finish(&f, why, sizeof(why)) < 0) {
			fprintf(stderr, "meshgatectl %s: %s:%u: %s\n", cmd, path, lineno, why);
			ret = CTL_EXIT_USAGE;
			break;
		}
		if (out == CTL_OUT_TEXT && lineno > 1)
			fputc('\n', stdout);
		rc = trace_one(st, &f, out, true, cmd);
		if (rc != CTL_EXIT_OK)
			ret = rc; /* go on: report every disagreement */
	}
	free(line);
	if (in != stdin)
		fclose(in);
	return ret;
}

int
ctl_policy_trace(int argc, char **argv)
{
	const char *cmd = argv[0];
	struct trace_opts o = {.out = CTL_OUT_TEXT};
	struct mg_error err = {{0}};
	struct ctl_state st;
	char why[512];
	struct flow f;
	int rc, ret;

	if (parse_opts(argc - 1, argv + 1, &o, &f, why, sizeof(why)) < 0)
		return ctl_usage_error(cmd, "%s", why);
	if (o.help) {
		ctl_print_usage(cmd, stdout);
		return CTL_EXIT_OK;
	}
	if (o.config == NULL)
		return ctl_usage_error(cmd, "--config FILE is required (asking the running daemon "
		                            "is not available yet)");
	if (o.flows != NULL) {
		if (f.src.text || f.dst.text || f.proto_text || f.has_dport || f.has_icmp)
			return ctl_usage_error(cmd, "--flows replaces --src, --dst, --proto, "
			                            "--dport and --icmp-type");
	} else if (flow_finish(&f, why, sizeof(why)) < 0) {
		return ctl_usage_error(cmd, "%s", why);
	}

	rc = ctl_state_load(&st, o.config, &err);
	if (rc < 0) {
		fprintf(stderr, "meshgatectl %s: %s\n", cmd, err.msg[0] ? err.msg : strerror(-rc));
		return CTL_EXIT_FAIL;
	}
	if (o.flows != NULL)
		ret = trace_batch(&st, o.flows, o.out, cmd);
	else
		ret = trace_one(&st, &f, o.out, false, cmd);
	ctl_state_free(&st);
	return ret;
}
