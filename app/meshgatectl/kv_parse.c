/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * meshgatectl kv import's reading: CiliumIdentity and CiliumEndpoint
 * manifests as kubectl prints them (one document, several, a kind: List),
 * every file checked completely before anything connects, and what the
 * gateways would refuse refused here already (an identity outside the
 * cluster's range, a cluster label naming another cluster, an address
 * given twice).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "kv.h"

int
kv_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (s[0] < '0' || s[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* ---- import: parsing ---- */

void
kv_input_free(struct kv_input *in)
{
	size_t i;

	for (i = 0; i < in->n_ids; i++)
		free(in->ids[i].labels);
	for (i = 0; i < in->n_ips; i++)
		mg_kv_ip_pair_clear(&in->ips[i].p);
	free(in->ids);
	free(in->ips);
	free(in->keys);
	memset(in, 0, sizeof(*in));
}

/* An optional scalar string field; "" when absent or null. */
static int
kv_opt_str(const struct mg_yaml_node *map, const char *key, const char **out, struct mg_error *err)
{
	const struct mg_yaml_node *n = mg_yaml_get(map, key);

	*out = "";
	if (n == NULL || mg_yaml_is_null(n))
		return 0;
	return mg_yaml_str(n, key, out, err);
}

/* May the cluster being written hold identity @id (as an endpoint's when @ip)? */
static bool
kv_in_range(const struct kv_input *in, uint32_t id, bool ip)
{
	uint32_t first, last;

	if (mg_identity_is_reserved(id))
		return ip;
	if (mg_identity_is_local_scope(id))
		return false;
	mg_identity_cluster_range(in->cluster_id, in->mode, &first, &last);
	return id >= first && id <= last;
}

static int
kv_range_error(const struct kv_input *in, const struct mg_yaml_node *n, uint32_t id,
               struct mg_error *err)
{
	uint32_t first, last;

	mg_identity_cluster_range(in->cluster_id, in->mode, &first, &last);
	return mg_yaml_error(err, n,
	                     "identity %u is not cluster %s's: cluster id %u holds %u-%u (the "
	                     "gateways would refuse it; is --cluster-id right?)",
	                     id, in->cluster, in->cluster_id, first, last);
}

/*
 * What the gateways check of an identity, checked before anything is
 * written: its number lies in the cluster's range, and its cluster label
 * (k8s:io.cilium.k8s.policy.cluster), which Cilium sets on every pod
 * identity, names this cluster. Without the label a gateway that reads
 * the cluster as a remote one refuses the identity, as Cilium does: said
 * as a warning.
 */
static int
kv_check_identity(struct kv_input *in, const struct mg_yaml_node *name, uint32_t id,
                  const struct mg_labels *ls, struct mg_error *err)
{
	bool found = false;

	if (!kv_in_range(in, id, false))
		return kv_range_error(in, name, id, err);
	for (size_t i = 0; i < ls->n; i++) {
		const struct mg_label *l = &ls->v[i];

		if (strcmp(l->key, MG_LABEL_POLICY_CLUSTER) != 0)
			continue;
		if (strcmp(l->source, "k8s") != 0 || strcmp(l->value, in->cluster) != 0)
			return mg_yaml_error(
			        err, name,
			        "identity %u: its label %s:%s=%s names another cluster "
			        "than %s",
			        id, l->source, l->key, l->value, in->cluster);
		found = true;
	}
	if (!found)
		fprintf(stderr,
		        "%s:%u:%u: warning: identity %u has no k8s:%s label: gateways that read "
		        "%s as a remote cluster refuse it\n",
		        name->file, name->line, name->col, id, MG_LABEL_POLICY_CLUSTER,
		        in->cluster);
	return 0;
}

static int
kv_parse_identity(struct kv_input *in, const struct mg_yaml_node *doc, struct mg_error *err)
{
	const struct mg_yaml_node *meta, *name, *sl;
	struct mg_labels ls = MG_LABELS_INIT;
	struct kv_ident *ki;
	const char *s, *ks, *vs;
	unsigned long id;
	char *labels = NULL, *lbl;
	size_t i;
	int rc;

	meta = mg_yaml_get(doc, "metadata");
	if (meta == NULL)
		return mg_yaml_error(err, doc, "CiliumIdentity without metadata");
	name = mg_yaml_get(meta, "name");
	if (name == NULL)
		return mg_yaml_error(err, meta, "CiliumIdentity without metadata.name");
	if ((rc = mg_yaml_str(name, "metadata.name", &s, err)) < 0)
		return rc;
	if (kv_ulong(s, 1, MG_ID_MAX, &id) < 0 || (s[0] == '0'))
		return mg_yaml_error(err, name, "metadata.name '%s' is not an identity (1-%u)", s,
		                     MG_ID_MAX);
	sl = mg_yaml_get(doc, "security-labels");
	if (sl == NULL)
		return mg_yaml_error(err, doc, "CiliumIdentity %lu without security-labels", id);
	if ((rc = mg_yaml_map(sl, "security-labels", err)) < 0)
		return rc;
	if (sl->n == 0)
		return mg_yaml_error(err, sl, "CiliumIdentity %lu: security-labels is empty", id);
	for (i = 0; i < sl->n; i++) {
		if ((rc = mg_yaml_str(sl->pairs[i].key, "label", &ks, err)) < 0 ||
		    (rc = mg_yaml_str(sl->pairs[i].value, "label value", &vs, err)) < 0)
			goto out;
		if (asprintf(&lbl, "%s=%s", ks, vs) < 0) {
			rc = -ENOMEM;
			goto out;
		}
		rc = mg_labels_add_str(&ls, lbl);
		free(lbl);
		if (rc < 0) {
			mg_yaml_error(err, sl->pairs[i].key, "bad label '%s'", ks);
			goto out;
		}
	}
	if ((rc = kv_check_identity(in, name, (uint32_t)id, &ls, err)) < 0)
		goto out;
	labels = mg_labels_format(&ls);
	if (labels == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < in->n_ids; i++) {
		if (in->ids[i].id != id)
			continue;
		if (strcmp(in->ids[i].labels, labels) != 0)
			rc = mg_yaml_error(err, name,
			                   "identity %lu appears twice with other labels", id);
		else
			rc = 0;
		goto out;
	}
	if ((rc = mg_grow(&in->ids, &in->cap_ids, in->n_ids, sizeof(*in->ids), 64)) < 0)
		goto out;
	ki = &in->ids[in->n_ids++];
	ki->id = (uint32_t)id;
	ki->labels = labels;
	labels = NULL;
	mg_kv_identity_key(ki->key, sizeof(ki->key), in->scope, in->cluster, ki->id);
	rc = 0;
out:
	if (rc == -ENOMEM)
		mg_error_set(err, NULL, 0, 0, "out of memory");
	free(labels);
	mg_labels_clear(&ls);
	return rc;
}

static int
kv_parse_ports(const struct mg_yaml_node *seq, struct mg_kv_ip_pair *p, struct mg_error *err)
{
	static const char *const allowed[] = {"name", "port", "protocol", NULL};
	const struct mg_yaml_node *it;
	struct mg_named_port *np;
	const char *s;
	uint64_t port;
	size_t i;
	int rc;

	if ((rc = mg_yaml_seq(seq, "named-ports", true, err)) < 0)
		return rc;
	if (seq == NULL || mg_yaml_is_null(seq) || seq->n == 0)
		return 0;
	if (seq->n > MG_KV_IP_MAX_NAMED_PORTS)
		return mg_yaml_error(err, seq, "more than %d named ports",
		                     MG_KV_IP_MAX_NAMED_PORTS);
	p->named_ports = calloc(seq->n, sizeof(*p->named_ports));
	if (p->named_ports == NULL) {
		mg_error_set(err, NULL, 0, 0, "out of memory");
		return -ENOMEM;
	}
	for (i = 0; i < seq->n; i++) {
		it = seq->items[i];
		np = &p->named_ports[p->n_named_ports++];
		if ((rc = mg_yaml_check_map(it, "named-ports[]", allowed, err)) < 0)
			return rc;
		if (mg_yaml_get(it, "name") == NULL)
			return mg_yaml_error(err, it, "named port without name");
		if ((rc = mg_yaml_str(mg_yaml_get(it, "name"), "name", &s, err)) < 0)
			return rc;
		if (s[0] == '\0' || strlen(s) >= sizeof(np->name))
			return mg_yaml_error(err, mg_yaml_get(it, "name"), "bad port name '%s'", s);
		snprintf(np->name, sizeof(np->name), "%s", s);
		if (mg_yaml_get(it, "port") == NULL)
			return mg_yaml_error(err, it, "named port '%s' without port", s);
		if ((rc = mg_yaml_u64(mg_yaml_get(it, "port"), "port", 1, 65535, &port, err)) < 0)
			return rc;
		np->port = (uint16_t)port;
		np->proto = KV_PROTO_TCP;
		if (mg_yaml_get(it, "protocol") != NULL) {
			if ((rc = mg_yaml_str(mg_yaml_get(it, "protocol"), "protocol", &s, err)) <
			    0)
				return rc;
			if (mg_kv_proto_parse(s, &np->proto) < 0)
				return mg_yaml_error(err, mg_yaml_get(it, "protocol"),
				                     "bad protocol '%s' (TCP, UDP or SCTP)", s);
		}
	}
	return 0;
}

static int
kv_add_addr(struct kv_input *in, const struct mg_yaml_node *n, uint32_t id, const char *node,
            const char *ns, const char *pod, const struct mg_yaml_node *ports, struct mg_error *err)
{
	struct kv_ip *ip;
	const char *s;
	int rc;

	if ((rc = mg_yaml_str(n, "address", &s, err)) < 0)
		return rc;
	if ((rc = mg_grow(&in->ips, &in->cap_ips, in->n_ips, sizeof(*in->ips), 64)) < 0) {
		mg_error_set(err, NULL, 0, 0, "out of memory");
		return rc;
	}
	ip = &in->ips[in->n_ips];
	memset(ip, 0, sizeof(*ip));
	if (strchr(s, '/') != NULL || mg_ipcache_parse_prefix(s, &ip->p.prefix) < 0)
		return mg_yaml_error(err, n, "bad address '%s'", s);
	ip->p.prefix.identity = id;
	ip->p.host_route = true;
	snprintf(ip->where, sizeof(ip->where), "%s:%u:%u", n->file, n->line, n->col);
	if (strlen(ns) >= sizeof(ip->p.k8s_namespace) || strlen(pod) >= sizeof(ip->p.k8s_pod_name))
		return mg_yaml_error(err, n, "namespace or pod name too long");
	snprintf(ip->p.host_ip, sizeof(ip->p.host_ip), "%s", node);
	snprintf(ip->p.k8s_namespace, sizeof(ip->p.k8s_namespace), "%s", ns);
	snprintf(ip->p.k8s_pod_name, sizeof(ip->p.k8s_pod_name), "%s", pod);
	rc = kv_parse_ports(ports, &ip->p, err);
	if (rc < 0) {
		mg_kv_ip_pair_clear(&ip->p);
		return rc;
	}
	mg_kv_ip_key(ip->key, sizeof(ip->key), in->scope, in->cluster, &ip->p.prefix, true);
	snprintf(ip->addr, sizeof(ip->addr), "%s", s);
	in->n_ips++; /* an address given twice is found once all is read (kv_check_dups) */
	return 0;
}

static int
kv_parse_endpoint(struct kv_input *in, const struct mg_yaml_node *doc, struct mg_error *err)
{
	const struct mg_yaml_node *meta, *st, *ident, *net, *addr, *it, *v;
	const char *ns = "", *pod = "", *node = "";
	unsigned char buf[16];
	uint64_t id;
	size_t i, k;
	int rc;

	meta = mg_yaml_get(doc, "metadata");
	if (meta != NULL && ((rc = kv_opt_str(meta, "namespace", &ns, err)) < 0 ||
	                     (rc = kv_opt_str(meta, "name", &pod, err)) < 0))
		return rc;
	st = mg_yaml_get(doc, "status");
	ident = mg_yaml_get(st, "identity");
	net = mg_yaml_get(st, "networking");
	addr = mg_yaml_get(net, "addressing");
	if (st == NULL || ident == NULL || mg_yaml_get(ident, "id") == NULL || addr == NULL) {
		/* An endpoint still being created: nothing to write yet. */
		fprintf(stderr,
		        "%s:%u:%u: warning: CiliumEndpoint %s/%s has no identity or "
		        "address yet; skipped\n",
		        doc->file, doc->line, doc->col, ns, pod);
		in->skipped++;
		return 0;
	}
	if ((rc = mg_yaml_u64(mg_yaml_get(ident, "id"), "status.identity.id", 1, MG_ID_MAX, &id,
	                      err)) < 0)
		return rc;
	if (!kv_in_range(in, (uint32_t)id, true))
		return kv_range_error(in, mg_yaml_get(ident, "id"), (uint32_t)id, err);
	if ((rc = kv_opt_str(net, "node", &node, err)) < 0)
		return rc;
	if (node[0] != '\0' && inet_pton(AF_INET, node, buf) != 1 &&
	    inet_pton(AF_INET6, node, buf) != 1)
		return mg_yaml_error(err, mg_yaml_get(net, "node"), "bad node address '%s'", node);
	if ((rc = mg_yaml_seq(addr, "status.networking.addressing", false, err)) < 0)
		return rc;
	for (i = 0; i < addr->n; i++) {
		it = addr->items[i];
		if ((rc = mg_yaml_map(it, "addressing[]", err)) < 0)
			return rc;
		for (k = 0; k < 2; k++) {
			v = mg_yaml_get(it, k == 0 ? "ipv4" : "ipv6");
			if (v == NULL || mg_yaml_is_null(v))
				continue;
			rc = kv_add_addr(in, v, (uint32_t)id, node, ns, pod,
			                 mg_yaml_get(st, "named-ports"), err);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

int
kv_parse_doc(struct kv_input *in, const struct mg_yaml_node *doc, bool in_list,
             struct mg_error *err)
{
	const struct mg_yaml_node *kind, *items;
	const char *k;
	size_t i;
	int rc;

	if ((rc = mg_yaml_map(doc, "manifest", err)) < 0)
		return rc;
	kind = mg_yaml_get(doc, "kind");
	if (kind == NULL)
		return mg_yaml_error(err, doc, "manifest without kind");
	if ((rc = mg_yaml_str(kind, "kind", &k, err)) < 0)
		return rc;
	if (strcmp(k, "CiliumIdentity") == 0)
		return kv_parse_identity(in, doc, err);
	if (strcmp(k, "CiliumEndpoint") == 0)
		return kv_parse_endpoint(in, doc, err);
	if (strcmp(k, "List") == 0 && !in_list) {
		items = mg_yaml_get(doc, "items");
		if ((rc = mg_yaml_seq(items, "items", true, err)) < 0)
			return rc;
		for (i = 0; items != NULL && !mg_yaml_is_null(items) && i < items->n; i++)
			if ((rc = kv_parse_doc(in, items->items[i], true, err)) < 0)
				return rc;
		return 0;
	}
	return mg_yaml_error(err, kind,
	                     "unsupported kind '%s' (want CiliumIdentity, "
	                     "CiliumEndpoint or List)",
	                     k);
}

static int
kv_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

bool
kv_keep(const char *key, void *arg)
{
	const struct kv_input *in = arg;

	return bsearch(&key, in->keys, in->n_keys, sizeof(*in->keys), kv_cmp_str) != NULL;
}

static int
kv_ip_cmp(const void *a, const void *b)
{
	const struct kv_ip *x = *(const struct kv_ip *const *)a,
	                   *y = *(const struct kv_ip *const *)b;
	int c = strcmp(x->key, y->key);

	/* equal keys: input order, so the later one is reported */
	return c != 0 ? c : (x < y ? -1 : x > y);
}

/*
 * An address given twice (by two endpoints, or twice by one) is an error
 * at its second place, naming the first: sorted, not pairwise, so a dump
 * of many endpoints costs n log n. 0, -EINVAL (@p err set), -ENOMEM.
 */
int
kv_check_dups(struct kv_input *in, struct mg_error *err)
{
	struct kv_ip **v;
	int rc = 0;

	if (in->n_ips < 2)
		return 0;
	v = malloc(in->n_ips * sizeof(*v));
	if (v == NULL) {
		mg_error_set(err, NULL, 0, 0, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < in->n_ips; i++)
		v[i] = &in->ips[i];
	qsort(v, in->n_ips, sizeof(*v), kv_ip_cmp);
	for (size_t i = 1; i < in->n_ips && rc == 0; i++)
		if (strcmp(v[i]->key, v[i - 1]->key) == 0) {
			mg_error_set(err, NULL, 0, 0, "%s: address %s already given at %s",
			             v[i]->where, v[i]->addr, v[i - 1]->where);
			rc = -EINVAL;
		}
	free(v);
	return rc;
}

int
kv_index_keys(struct kv_input *in)
{
	size_t i, n = 0;

	in->keys = calloc(in->n_ids + in->n_ips + 1, sizeof(*in->keys));
	if (in->keys == NULL)
		return -ENOMEM;
	for (i = 0; i < in->n_ids; i++)
		in->keys[n++] = in->ids[i].key;
	for (i = 0; i < in->n_ips; i++)
		in->keys[n++] = in->ips[i].key;
	in->n_keys = n;
	qsort(in->keys, n, sizeof(*in->keys), kv_cmp_str);
	return 0;
}
