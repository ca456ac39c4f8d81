/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the command areas share: errors and arguments, cluster names, and
 * the JSON of addresses, labels and identities.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

int
cmd_fail(struct mg_error *err, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return rc;
}

/* An unsigned argument; @p def when absent. -EINVAL when not a non-negative integer. */
int
cmd_arg_u64(const json_t *args, const char *key, uint64_t def, uint64_t *out, struct mg_error *err)
{
	const json_t *v = json_object_get(args, key);

	if (v == NULL || json_is_null(v)) {
		*out = def;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return cmd_fail(err, -EINVAL, "%s: a non-negative integer is expected", key);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* A string argument, or NULL when absent. -EINVAL when not a string. */
int
cmd_arg_str(const json_t *args, const char *key, const char **out, struct mg_error *err)
{
	const json_t *v = json_object_get(args, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return cmd_fail(err, -EINVAL, "%s: a string is expected", key);
	*out = json_string_value(v);
	return 0;
}

void
cmd_cluster_names_load(const struct daemon *d, struct cluster_names *cn)
{
	const struct mg_config *cfg = mg_gateway_config(d->gw);

	cn->n = 0;
	cn->v[cn->n].id = cfg->cluster_id;
	snprintf(cn->v[cn->n++].name, sizeof(cn->v[0].name), "%s", cfg->cluster_name);
	for (size_t i = 0;
	     mg_gateway_sync(d->gw) != NULL && i < mg_kv_sync_n_clusters(mg_gateway_sync(d->gw));
	     i++) {
		struct mg_kv_sync_stats ks;

		if (mg_kv_sync_stats(mg_gateway_sync(d->gw), i, &ks) == 0 && ks.present &&
		    cn->n < MG_ARRAY_SIZE(cn->v)) {
			cn->v[cn->n].id = ks.cluster_id;
			snprintf(cn->v[cn->n++].name, sizeof(cn->v[0].name), "%s", ks.name);
		}
	}
}

/* The name of cluster @p cid (the gateway's own first), or NULL. */
const char *
cmd_cluster_name(const struct cluster_names *cn, unsigned cid)
{
	for (size_t i = 0; i < cn->n; i++)
		if (cn->v[i].id == cid)
			return cn->v[i].name;
	return NULL;
}

void
cmd_addr_str(uint8_t family, const uint8_t *a, char *buf, size_t size)
{
	if (family == 0 || inet_ntop(family, a, buf, (socklen_t)size) == NULL)
		snprintf(buf, size, "-");
}

json_t *
cmd_json_str_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

json_t *
cmd_labels_json(const struct mg_labels *ls)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < ls->n; i++) {
		const struct mg_label *l = &ls->v[i];
		char buf[512];

		if (l->value[0] != '\0')
			snprintf(buf, sizeof(buf), "%s:%s=%s", l->source, l->key, l->value);
		else
			snprintf(buf, sizeof(buf), "%s:%s", l->source, l->key);
		json_array_append_new(a, json_string(buf));
	}
	return a;
}

/* A flow's protocol as the CLI spells it ("tcp"); "other" for the rest. */
const char *
cmd_proto_name(uint8_t p)
{
	const char *n = mg_pkt_proto_name(p);

	return n != NULL ? n : "other";
}

/* A named port's protocol as Kubernetes spells it (TCP, UDP, SCTP). */
static const char *
k8s_proto_name(uint8_t p)
{
	return p == 6 ? "TCP" : p == 17 ? "UDP" : p == 132 ? "SCTP" : "?";
}

json_t *
cmd_identity_json(const struct cluster_names *cn, const struct mg_identity *ident)
{
	json_t *np = json_array();

	for (size_t i = 0; np != NULL && i < ident->n_named_ports; i++)
		json_array_append_new(np, json_pack("{s:s, s:i, s:s}", "name",
		                                    ident->named_ports[i].name, "port",
		                                    (int)ident->named_ports[i].port, "protocol",
		                                    k8s_proto_name(ident->named_ports[i].proto)));
	return json_pack("{s:I, s:o, s:i, s:o, s:o}", "id", (json_int_t)ident->id, "labels",
	                 cmd_labels_json(&ident->labels), "cluster_id", (int)ident->cluster_id,
	                 "cluster", cmd_json_str_or_null(cmd_cluster_name(cn, ident->cluster_id)),
	                 "named_ports", np);
}

uint64_t
daemon_revision(const struct daemon *d)
{
	struct mg_gateway_stats st;

	mg_gateway_stats(d->gw, &st);
	return st.revision;
}
