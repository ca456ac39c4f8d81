/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The probe's result for people and for programs: text lines in the
 * spirit of Cilium's `troubleshoot clustermesh` (one line per step, then
 * the certificates with their validity), and the same facts as JSON for
 * `troubleshoot -o json`. Only formatting: nothing here probes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rep_probe.h"

/* ---- JSON ---- */

static json_t *
cert_json(const struct mg_rep_cert_info *c)
{
	if (!c->present && c->error[0] == '\0')
		return json_null();
	if (!c->present)
		return json_pack("{s:b,s:s}", "present", 0, "error", c->error);
	return json_pack("{s:b,s:s,s:s,s:s,s:s,s:s,s:b,s:b,s:s?}", "present", 1, "subject_cn",
	                 c->subject_cn, "issuer_cn", c->issuer_cn, "names", c->names, "not_before",
	                 c->not_before, "not_after", c->not_after, "expired", c->expired,
	                 "not_yet_valid", c->not_yet_valid, "error", c->error[0] ? c->error : NULL);
}

static json_t *
dns_json(const struct mg_rep_probe *p)
{
	json_t *addrs;

	if (!p->dns_ran)
		return json_null();
	addrs = json_array();
	for (size_t i = 0; addrs != NULL && i < p->n_addrs; i++)
		json_array_append_new(addrs, json_string(p->addrs[i]));
	return json_pack("{s:b,s:s?,s:o*,s:I}", "ok", p->dns_rc == 0, "error",
	                 p->dns_rc ? p->dns_error : NULL, "addresses", addrs, "duration_us",
	                 (json_int_t)p->dns_us);
}

static json_t *
tcp_json(const struct mg_rep_probe *p)
{
	if (!p->tcp_ran)
		return json_null();
	return json_pack("{s:b,s:s?,s:s,s:I}", "ok", p->tcp_rc == 0, "error",
	                 p->tcp_rc ? p->tcp_error : NULL, "address", p->tcp_addr, "duration_us",
	                 (json_int_t)p->tcp_us);
}

static json_t *
tls_json(const struct mg_rep_probe *p)
{
	if (!p->tls_ran)
		return json_null();
	return json_pack("{s:b,s:s?,s:s?,s:s?,s:b,s:b,s:I}", "ok", p->tls_rc == 0, "error",
	                 p->tls_rc ? p->tls_error : NULL, "version",
	                 p->tls_version[0] ? p->tls_version : NULL, "cipher",
	                 p->tls_cipher[0] ? p->tls_cipher : NULL, "server_name_ok",
	                 p->server_name_ok, "client_accepted", p->client_accepted, "duration_us",
	                 (json_int_t)p->tls_us);
}

json_t *
mg_rep_probe_json(const struct mg_rep_probe *p)
{
	return json_pack("{s:s,s:s,s:i,s:s,s:b,s:s?,s:o*,s:o*,s:o*,s:{s:o*,s:o*,s:o*}}", "endpoint",
	                 p->endpoint, "host", p->host, "port", (int)p->port, "scheme",
	                 p->tls ? "https" : "http", "ok", p->rc == 0, "error",
	                 p->rc ? p->error : NULL, "dns", dns_json(p), "tcp", tcp_json(p), "tls",
	                 tls_json(p), "certificates", "trusted_ca", cert_json(&p->ca), "client",
	                 cert_json(&p->client), "server", cert_json(&p->server));
}

/* ---- text ---- */

/* A growing line buffer with snprintf's contract: len counts what did not fit too. */
struct out {
	char *buf;
	size_t size;
	size_t len;
};

static void __attribute__((format(printf, 2, 3))) put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->len < o->size ? o->buf + o->len : NULL,
	              o->len < o->size ? o->size - o->len : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += (size_t)n;
}

static void
put_ms(struct out *o, uint64_t us)
{
	put(o, " (%.1f ms)\n", (double)us / 1000.0);
}

/* "CN=x valid until T" or "CN=x EXPIRED at T" or "CN=x not valid before T". */
static void
put_validity(struct out *o, const struct mg_rep_cert_info *c)
{
	if (c->expired)
		put(o, "CN=%s EXPIRED at %s", c->subject_cn, c->not_after);
	else if (c->not_yet_valid)
		put(o, "CN=%s not valid before %s", c->subject_cn, c->not_before);
	else
		put(o, "CN=%s valid until %s", c->subject_cn, c->not_after);
}

static void
put_cert(struct out *o, const char *what, const struct mg_rep_cert_info *c)
{
	if (!c->present && c->error[0] == '\0')
		return;
	if (!c->present) {
		put(o, "  %s: %s\n", what, c->error);
		return;
	}
	put(o, "  %s: CN=%s, issued by CN=%s, valid %s to %s%s%s", what, c->subject_cn,
	    c->issuer_cn, c->not_before, c->not_after,
	    c->expired         ? " (EXPIRED)"
	    : c->not_yet_valid ? " (NOT YET VALID)"
	                       : "",
	    c->names[0] ? ", names " : "");
	put(o, "%s\n", c->names);
	if (c->error[0])
		put(o, "    %s\n", c->error);
}

static void
put_tls(struct out *o, const struct mg_rep_probe *p)
{
	if (!p->tls) {
		put(o, "  tls: not used (http:// endpoint)\n");
		return;
	}
	if (!p->tls_ran)
		return;
	if (p->tls_rc != 0) {
		put(o, "  tls: FAILED: %s", p->tls_error);
		put_ms(o, p->tls_us);
		return;
	}
	put(o, "  tls: %s", p->tls_version);
	if (p->tls_cipher[0])
		put(o, " (%s)", p->tls_cipher);
	put(o, ", server certificate ");
	put_validity(o, &p->server);
	if (p->client.present) {
		put(o, "; client certificate ");
		put_validity(o, &p->client);
	}
	put_ms(o, p->tls_us);
}

int
mg_rep_probe_text(const struct mg_rep_probe *p, char *buf, size_t size)
{
	struct out o = {.buf = buf, .size = size};

	if (p == NULL || (buf == NULL && size != 0))
		return -EINVAL;
	if (size > 0)
		buf[0] = '\0';
	put(&o, "  endpoint: %s\n", p->endpoint[0] ? p->endpoint : "(none)");
	if (p->dns_ran && p->dns_rc != 0) {
		put(&o, "  dns: FAILED: %s: %s", p->host, p->dns_error);
		put_ms(&o, p->dns_us);
	} else if (p->dns_ran) {
		put(&o, "  dns:");
		for (size_t i = 0; i < p->n_addrs; i++)
			put(&o, "%s %s", i ? "," : "", p->addrs[i]);
		put_ms(&o, p->dns_us);
	}
	if (p->tcp_ran && p->tcp_rc != 0) {
		put(&o, "  tcp: FAILED: %s", p->tcp_error);
		put_ms(&o, p->tcp_us);
	} else if (p->tcp_ran) {
		put(&o, "  tcp: connected to %s", p->tcp_addr);
		put_ms(&o, p->tcp_us);
	}
	if (p->dns_ran)
		put_tls(&o, p);
	put_cert(&o, "trusted-ca-file", &p->ca);
	put_cert(&o, "cert-file", &p->client);
	put_cert(&o, "server certificate", &p->server);
	if (p->rc != 0)
		put(&o, "  error: %s\n", p->error);
	return o.len > (size_t)INT32_MAX ? -EINVAL : (int)o.len;
}
