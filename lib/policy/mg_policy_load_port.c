/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Policy loader, the L4 part: toPorts (port rules: ports as numbers,
 * ranges or names, protocols, and the L7 fields a layer-4 gateway cannot
 * enforce) and icmps (ICMP and ICMPv6 types, by number or by Cilium's
 * names). Both become port ranges of the entry: ICMP and ICMPv6 are two
 * more port protocols whose port is the message type, as in Cilium. One
 * function per shape (a toPorts list, one port, an icmps list, one ICMP
 * field), shared by ingress and egress, allow and deny entries; what
 * differs for deny entries (no L7 fields, nothing to skip) is decided by
 * the entry's section.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "mg_yaml.h"
#include "policy_priv.h"

/* ---- ports ---- */

/*
 * A port: a number (as Go's strconv.ParseUint with base 0, which Cilium
 * uses: a leading 0 means octal) or a name, which Cilium lower-cases.
 * @p name receives the name, or "" for a number in *out.
 */
static int
parse_port_number(const struct mg_yaml_node *n, const char *what, unsigned *out, char *name,
                  struct mg_error *err)
{
	const char *str;
	unsigned base = 10;
	unsigned long v = 0;
	size_t i, len;
	int rc;

	name[0] = '\0';
	rc = mg_yaml_str(n, what, &str, err);
	if (rc)
		return rc;
	len = strlen(str);
	if (len == 0)
		return mg_yaml_error(err, n, "%s: expected a port number or name", what);
	if (mg_port_name_valid(str)) {
		for (i = 0; i <= len; i++)
			name[i] = (char)((str[i] >= 'A' && str[i] <= 'Z') ? str[i] - 'A' + 'a'
			                                                  : str[i]);
		*out = 0;
		return 0;
	}
	if (len > 1 && str[0] == '0')
		base = 8;
	for (i = 0; i < len; i++) {
		if (str[i] < '0' || str[i] >= (char)('0' + base))
			return mg_yaml_error(err, n, "%s: '%s' is not a port number or name", what,
			                     str);
		if (v <= 65535)
			v = v * base + (unsigned long)(str[i] - '0');
	}
	if (v > 65535)
		return mg_yaml_error(err, n, "%s: %s is out of range [0, 65535]", what, str);
	*out = (unsigned)v;
	return 0;
}

static int
parse_protocol(const struct mg_yaml_node *n, const char *what, uint8_t *mask, struct mg_error *err)
{
	const char *str;
	int rc;

	*mask = PMASK_ANY;
	if (mg_yaml_is_null(n))
		return 0;
	rc = mg_yaml_str(n, what, &str, err);
	if (rc)
		return rc;
	if (str[0] == '\0' || streq(str, "ANY"))
		*mask = PMASK_ANY;
	else if (streq(str, "TCP"))
		*mask = 1u << PIDX_TCP;
	else if (streq(str, "UDP"))
		*mask = 1u << PIDX_UDP;
	else if (streq(str, "SCTP"))
		*mask = 1u << PIDX_SCTP;
	else if (streq(str, "ICMP") || streq(str, "ICMPv6"))
		/* Cilium allows these in toPorts only for its own generated rules */
		return mg_yaml_error(err, n,
		                     "%s: protocol %s is not accepted in toPorts (use icmps for "
		                     "ICMP types)",
		                     what, str);
	else if (streq(str, "VRRP") || streq(str, "IGMP"))
		/*
		 * Cilium takes these (port empty or 0) only when its agent runs with
		 * --enable-extended-ip-protocols (PortProtocol.Validate); without
		 * it the policy is refused. The gateway has no such option, and its
		 * ANY covers TCP, UDP and SCTP only.
		 */
		return mg_yaml_error(
		        err, n,
		        "%s: protocol %s is accepted by Cilium only when its agent runs "
		        "with --enable-extended-ip-protocols; meshgate does not enforce "
		        "it",
		        what, str);
	else
		return mg_yaml_error(err, n,
		                     "%s: unknown protocol '%s' (expected TCP, UDP, SCTP or ANY)",
		                     what, str);
	return 0;
}

static int
add_range(struct entry *e, uint8_t protos, unsigned lo, unsigned hi, const char *name,
          const struct mg_yaml_node *at, const char *what, struct mg_error *err)
{
	struct port_range *v;

	if (e->nports >= POL_MAX_PORTS)
		return mg_yaml_error(err, at, "%s: more than %u ports in one entry", what,
		                     POL_MAX_PORTS);
	v = realloc(e->ports, (e->nports + 1) * sizeof(*v));
	if (v == NULL) {
		mg_error_set(err, NULL, 0, 0, "out of memory");
		return -ENOMEM;
	}
	e->ports = v;
	v = &e->ports[e->nports];
	memset(v, 0, sizeof(*v));
	v->protos = protos;
	v->lo = (uint16_t)lo;
	v->hi = (uint16_t)hi;
	if (name != NULL)
		snprintf(v->name, sizeof(v->name), "%s", name);
	e->nports++;
	return 0;
}

static int
parse_port(struct entry *e, const struct mg_yaml_node *n, const char *what, struct mg_error *err)
{
	static const char *const ok[] = {"port", "endPort", "protocol", NULL};
	const struct mg_yaml_node *pn = mg_yaml_get(n, "port"), *en = mg_yaml_get(n, "endPort");
	char w[PATH_LEN + 16], name[POL_PORT_NAME_MAX + 1] = "";
	unsigned port = 0, end = 0;
	uint8_t mask;
	uint64_t v;
	int rc;

	rc = mg_yaml_check_map(n, what, ok, err);
	if (rc)
		return rc;
	pol_pathf(w, sizeof(w), "%s.port", what);
	if (!mg_yaml_is_null(pn)) {
		rc = parse_port_number(pn, w, &port, name, err);
		if (rc)
			return rc;
	}
	pol_pathf(w, sizeof(w), "%s.protocol", what);
	rc = parse_protocol(mg_yaml_get(n, "protocol"), w, &mask, err);
	if (rc)
		return rc;
	pol_pathf(w, sizeof(w), "%s.endPort", what);
	if (!mg_yaml_is_null(en)) {
		rc = mg_yaml_u64(en, w, 0, 65535, &v, err);
		if (rc)
			return rc;
		end = (unsigned)v;
		if (end != 0 && name[0] != '\0')
			return mg_yaml_error(err, en, "%s: a range cannot start at a named port",
			                     w);
		if (end != 0 && port == 0)
			return mg_yaml_error(err, en, "%s: needs a non-zero port", w);
		if (end != 0 && end < port)
			return mg_yaml_error(err, en, "%s: %u is below port %u", w, end, port);
	}
	if (name[0] != '\0')
		return add_range(e, mask, 0, 0, name, n, what, err);
	if (port == 0)
		return add_range(e, mask, 0, 65535, NULL, n, what, err);
	return add_range(e, mask, port, end > port ? end : port, NULL, n, what, err);
}

/*
 * The list @p key of port rule @p it (at path @p what): "ports" of a
 * toPorts item, "fields" of an icmps item, each element parsed by @p one.
 * None at all stands for every port of TCP, UDP and SCTP, as Cilium reads
 * a port rule without ports and an icmps item without fields.
 */
static int
parse_port_items(struct entry *e, const struct mg_yaml_node *it, const char *what, const char *key,
                 size_t max,
                 int (*one)(struct entry *, const struct mg_yaml_node *, const char *,
                            struct mg_error *),
                 struct mg_error *err)
{
	const struct mg_yaml_node *list = mg_yaml_get(it, key);
	char w[PATH_LEN + 96];
	size_t i, n;
	int rc;

	pol_pathf(w, sizeof(w), "%s.%s", what, key);
	rc = pol_get_seq(list, w, max, &n, err);
	if (rc)
		return rc;
	if (n == 0)
		return add_range(e, PMASK_ANY, 0, 65535, NULL, it, w, err);
	for (i = 0; i < n; i++) {
		pol_pathf(w, sizeof(w), "%s.%s[%zu]", what, key, i);
		rc = one(e, list->items[i], w, err);
		if (rc)
			return rc;
	}
	return 0;
}

/* A non-empty list under `rules` (Cilium's L7Rules.Len() counts its items). */
static bool
l7_list(const struct mg_yaml_node *rules, const char *key)
{
	const struct mg_yaml_node *v = mg_yaml_get(rules, key);

	return v != NULL && v->type == MG_YAML_SEQ && v->n > 0;
}

/*
 * What Cilium's PortRule validation refuses about the L7 `rules` of one
 * toPorts item @p pr of an allow entry, whose ports are already checked
 * (an allow entry with L7 rules is skipped, but a policy Cilium refuses
 * must not load here either). Rules without items are no L7 rules; with
 * items: DNS rules on ingress; two kinds of rules side by side; other L7
 * rules (http, kafka, l7) on a port whose protocol is not TCP (absent and
 * ANY included). DNS rules may sit on any protocol.
 */
static int
check_l7_rules(struct entry_ctx *c, const struct mg_yaml_node *pr, const char *what)
{
	static const char *const kinds[] = {"http", "kafka", "dns"};
	const struct mg_yaml_node *rules = mg_yaml_get(pr, "rules"), *ports;
	struct mg_error *err = c->L->err;
	unsigned nkinds = 0;
	bool dns, other;
	size_t j;

	if (mg_yaml_is_null(rules))
		return 0;
	if (rules->type != MG_YAML_MAP)
		return mg_yaml_error(err, rules, "%s.rules: expected a mapping", what);
	dns = l7_list(rules, "dns");
	other = l7_list(rules, "http") || l7_list(rules, "kafka") || l7_list(rules, "l7");
	if (!dns && !other)
		return 0;
	if (dns && c->sec == SEC_INGRESS)
		return mg_yaml_error(err, pol_key_node(rules, "dns"),
		                     "%s.rules.dns: DNS rules are not allowed on ingress (Cilium "
		                     "refuses the policy)",
		                     what);
	/* Cilium counts a kind that is there at all, even as an empty list */
	for (j = 0; j < MG_ARRAY_SIZE(kinds); j++)
		if (!mg_yaml_is_null(mg_yaml_get(rules, kinds[j])))
			nkinds++;
	if (pol_has_content(mg_yaml_get(rules, "l7proto")))
		nkinds++;
	if (nkinds > 1)
		return mg_yaml_error(
		        err, rules,
		        "%s.rules: multiple L7 protocol rule types in one rule (Cilium "
		        "refuses the policy)",
		        what);
	if (dns)
		return 0;
	ports = mg_yaml_get(pr, "ports");
	for (j = 0; ports != NULL && ports->type == MG_YAML_SEQ && j < ports->n; j++) {
		const struct mg_yaml_node *pp = ports->items[j];
		const struct mg_yaml_node *proto = mg_yaml_get(pp, "protocol");
		const char *name = "ANY";

		if (proto != NULL && proto->type == MG_YAML_SCALAR && !mg_yaml_is_null(proto) &&
		    proto->str[0] != '\0')
			name = proto->str;
		if (!streq(name, "TCP"))
			return mg_yaml_error(
			        err, proto != NULL ? proto : pp,
			        "%s.ports[%zu]: L7 rules can only apply to TCP (not %s), "
			        "except for DNS rules (Cilium refuses the policy)",
			        what, j, name);
	}
	return 0;
}

int
pol_parse_to_ports(struct entry_ctx *c, const struct mg_yaml_node *n, const char *what)
{
	static const char *const ok_allow[] = {
	        "ports",          "rules",       "listener", "originatingTLS",
	        "terminatingTLS", "serverNames", NULL};
	static const char *const ok_deny[] = {"ports", NULL};
	static const char *const l7[] = {"rules",          "listener",    "originatingTLS",
	                                 "terminatingTLS", "serverNames", NULL};
	struct mg_error *err = c->L->err;
	struct entry *e = c->e;
	char w[PATH_LEN + 64], f[PATH_LEN + 96];
	size_t i, k, np;
	int rc;

	rc = pol_get_seq(n, what, POL_MAX_PORTS, &np, err);
	if (rc)
		return rc;
	for (i = 0; i < np; i++) {
		const struct mg_yaml_node *pr = n->items[i];

		pol_pathf(w, sizeof(w), "%s[%zu]", what, i);
		if (mg_yaml_is_null(pr)) {
			/* no ports: every port of TCP, UDP and SCTP */
			rc = add_range(e, PMASK_ANY, 0, 65535, NULL, pr, w, err);
			if (rc)
				return rc;
			continue;
		}
		rc = mg_yaml_check_map(pr, w, ok_allow, err);
		if (rc)
			return rc;
		for (k = 0; l7[k] != NULL; k++) {
			if (!pol_has_content(mg_yaml_get(pr, l7[k])))
				continue;
			pol_pathf(f, sizeof(f), "%s.%s", w, l7[k]);
			rc = pol_unenforceable(c, pol_key_node(pr, l7[k]), f);
			if (rc)
				return rc;
		}
		/* a deny port rule has nothing but ports in Cilium */
		if (sec_deny(c->sec) && (rc = mg_yaml_check_map(pr, w, ok_deny, err)) != 0)
			return rc;
		rc = parse_port_items(e, pr, w, "ports", POL_MAX_PORTS, parse_port, err);
		if (rc == 0 && !sec_deny(c->sec))
			rc = check_l7_rules(c, pr, w);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- ICMP ---- */

struct icmp_name {
	const char *name;
	uint8_t type;
};

/* The names Cilium accepts per family (pkg/policy/api/icmp.go). */
static const struct icmp_name icmp4_names[] = {
        {"EchoReply", 0},
        {"DestinationUnreachable", 3},
        {"Redirect", 5},
        {"EchoRequest", 8}, /* first: the name mg_policy_icmp_name gives 8 */
        {"Echo", 8},
        {"RouterAdvertisement", 9},
        {"RouterSelection", 10},
        {"TimeExceeded", 11},
        {"ParameterProblem", 12},
        {"Timestamp", 13},
        {"TimestampReply", 14},
        {"Photuris", 40},
        {"ExtendedEchoRequest", 42},
        {"ExtendedEchoReply", 43},
        {NULL, 0},
};

static const struct icmp_name icmp6_names[] = {
        {"DestinationUnreachable", 1},
        {"PacketTooBig", 2},
        {"TimeExceeded", 3},
        {"ParameterProblem", 4},
        {"EchoRequest", 128},
        {"EchoReply", 129},
        {"MulticastListenerQuery", 130},
        {"MulticastListenerReport", 131},
        {"MulticastListenerDone", 132},
        {"RouterSolicitation", 133},
        {"RouterAdvertisement", 134},
        {"NeighborSolicitation", 135},
        {"NeighborAdvertisement", 136},
        {"RedirectMessage", 137},
        {"RouterRenumbering", 138},
        {"ICMPNodeInformationQuery", 139},
        {"ICMPNodeInformationResponse", 140},
        {"InverseNeighborDiscoverySolicitation", 141},
        {"InverseNeighborDiscoveryAdvertisement", 142},
        {"HomeAgentAddressDiscoveryRequest", 144},
        {"HomeAgentAddressDiscoveryReply", 145},
        {"MobilePrefixSolicitation", 146},
        {"MobilePrefixAdvertisement", 147},
        {"DuplicateAddressRequestCodeSuffix", 157},
        {"DuplicateAddressConfirmationCodeSuffix", 158},
        {"ExtendedEchoRequest", 160},
        {"ExtendedEchoReply", 161},
        {NULL, 0},
};

static int
icmp_lookup(const struct icmp_name *names, const char *name, bool nocase, uint8_t *type)
{
	for (; names->name != NULL; names++)
		if (nocase ? strcasecmp(names->name, name) == 0 : strcmp(names->name, name) == 0) {
			*type = names->type;
			return 0;
		}
	return -ENOENT;
}

int
mg_policy_icmp_type(uint8_t family, const char *name, bool nocase, uint8_t *type)
{
	return icmp_lookup(family == AF_INET6 ? icmp6_names : icmp4_names, name, nocase, type);
}

const char *
mg_policy_icmp_name(uint8_t family, uint8_t type)
{
	const struct icmp_name *t = family == AF_INET6 ? icmp6_names : icmp4_names;

	for (; t->name != NULL; t++)
		if (t->type == type)
			return t->name;
	return NULL;
}

#define POL_MAX_ICMP_FIELDS 40 /* Cilium's maxICMPFields */

static int
parse_icmp_field(struct entry *e, const struct mg_yaml_node *n, const char *what,
                 struct mg_error *err)
{
	static const char *const ok[] = {"family", "type", NULL};
	const struct mg_yaml_node *fn = mg_yaml_get(n, "family"), *tn = mg_yaml_get(n, "type");
	const struct icmp_name *names = icmp4_names;
	const char *fam = "IPv4", *ts;
	char w[PATH_LEN + 16];
	unsigned pidx = PIDX_ICMP;
	unsigned long v = 0;
	size_t i, len;
	int rc;

	rc = mg_yaml_check_map(n, what, ok, err);
	if (rc)
		return rc;
	pol_pathf(w, sizeof(w), "%s.family", what);
	if (!mg_yaml_is_null(fn)) {
		rc = mg_yaml_str(fn, w, &fam, err);
		if (rc)
			return rc;
		if (streq(fam, "IPv6")) {
			names = icmp6_names;
			pidx = PIDX_ICMPV6;
		} else if (!streq(fam, "IPv4") && fam[0] != '\0') {
			return mg_yaml_error(
			        err, fn, "%s: wrong family '%s' (expected IPv4 or IPv6)", w, fam);
		}
		if (fam[0] == '\0')
			fam = "IPv4";
	}
	pol_pathf(w, sizeof(w), "%s.type", what);
	if (mg_yaml_is_null(tn))
		return mg_yaml_error(err, tn ? tn : n, "%s: an ICMP type is required", w);
	rc = mg_yaml_str(tn, w, &ts, err);
	if (rc)
		return rc;
	len = strlen(ts);
	if (len > 0 && len <= 3 && strspn(ts, "0123456789") == len) {
		for (i = 0; i < len; i++)
			v = v * 10 + (unsigned long)(ts[i] - '0');
		if (v > 255)
			return mg_yaml_error(err, tn, "%s: %s is out of range [0, 255]", w, ts);
	} else {
		uint8_t t;

		if (icmp_lookup(names, ts, false, &t) != 0)
			return mg_yaml_error(err, tn, "%s: ICMP type '%s' not found in %s", w, ts,
			                     fam);
		v = t;
	}
	return add_range(e, (uint8_t)(1u << pidx), (unsigned)v, (unsigned)v, NULL, n, what, err);
}

int
pol_parse_icmps(struct entry *e, const struct mg_yaml_node *n, const char *what,
                struct mg_error *err)
{
	static const char *const ok[] = {"fields", NULL};
	char w[PATH_LEN + 48];
	size_t i, ni;
	int rc;

	rc = pol_get_seq(n, what, POL_MAX_PORTS, &ni, err);
	if (rc)
		return rc;
	for (i = 0; i < ni; i++) {
		const struct mg_yaml_node *it = n->items[i];

		pol_pathf(w, sizeof(w), "%s[%zu]", what, i);
		if (!mg_yaml_is_null(it)) {
			rc = mg_yaml_check_map(it, w, ok, err);
			if (rc)
				return rc;
		}
		rc = parse_port_items(e, it, w, "fields", POL_MAX_ICMP_FIELDS, parse_icmp_field,
		                      err);
		if (rc)
			return rc;
	}
	return 0;
}
