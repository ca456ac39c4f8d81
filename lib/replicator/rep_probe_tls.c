/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The probe's TLS step, with OpenSSL: the local files checked one by one
 * (so an error names the file and its config key, where OpenSSL alone
 * would only say "no start line"), then a handshake on the connected
 * socket as gRPC makes it (TLS 1.2 or later, SNI for a host name, ALPN
 * h2, our client certificate).
 *
 * The server's chain is verified against trusted-ca-file, but a failure
 * does not stop the handshake: the verify callback records the first
 * error and lets it go on, so that one probe also learns whether the
 * server accepts our certificate, and shows the server's certificate
 * either way. The probe never sends application data. The host name is
 * checked separately (X509_check_host / X509_check_ip_asc), so a wrong
 * name and an unknown CA are told apart.
 *
 * With TLS 1.3 the client's handshake ends before the server has looked
 * at the client certificate; a server that refuses it sends its alert
 * afterwards. So a short read follows the handshake: an alert there is
 * the refusal; data, or silence until the window closes, is acceptance
 * (a gRPC server says nothing before the client's HTTP/2 preface).
 */
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "rep_probe.h"
#include "rep_probe_int.h"

/* How long the read after the handshake waits for a refusal, at most. */
#define REFUSAL_WINDOW_MS 300

/* ---- certificates ---- */

static void
asn1_time_rfc3339(const ASN1_TIME *t, char *out, size_t size)
{
	struct tm tm;

	out[0] = '\0';
	if (t != NULL && ASN1_TIME_to_tm(t, &tm) == 1)
		strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
append(char *out, size_t size, const char *fmt, const char *v)
{
	size_t used = strlen(out);

	if (used < size)
		rep_fmt(out + used, size - used, fmt, v);
}

/* The subject alternative names of @p x as "DNS:a, IP:1.2.3.4". */
static void
alt_names(X509 *x, char *out, size_t size)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	char ip[INET6_ADDRSTRLEN];

	out[0] = '\0';
	for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
		const char *sep = out[0] ? ", " : "";

		if (g->type == GEN_DNS) {
			append(out, size, "%s", sep);
			append(out, size, "DNS:%s",
			       (const char *)ASN1_STRING_get0_data(g->d.dNSName));
		} else if (g->type == GEN_IPADD) {
			int len = ASN1_STRING_length(g->d.iPAddress);
			int af = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;

			if (af == 0 || inet_ntop(af, ASN1_STRING_get0_data(g->d.iPAddress), ip,
			                         sizeof(ip)) == NULL)
				continue;
			append(out, size, "%s", sep);
			append(out, size, "IP:%s", ip);
		}
	}
	GENERAL_NAMES_free(names);
}

static void
cert_info(X509 *x, struct mg_rep_cert_info *ci)
{
	ci->present = true;
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, ci->subject_cn,
	                              sizeof(ci->subject_cn)) < 0)
		ci->subject_cn[0] = '\0';
	if (X509_NAME_get_text_by_NID(X509_get_issuer_name(x), NID_commonName, ci->issuer_cn,
	                              sizeof(ci->issuer_cn)) < 0)
		ci->issuer_cn[0] = '\0';
	alt_names(x, ci->names, sizeof(ci->names));
	asn1_time_rfc3339(X509_get0_notBefore(x), ci->not_before, sizeof(ci->not_before));
	asn1_time_rfc3339(X509_get0_notAfter(x), ci->not_after, sizeof(ci->not_after));
	ci->not_yet_valid = X509_cmp_current_time(X509_get0_notBefore(x)) > 0;
	ci->expired = X509_cmp_current_time(X509_get0_notAfter(x)) < 0;
}

/* ---- the local files ---- */

/* Never prompt for a passphrase: an encrypted key is an error. */
static int
no_passphrase(char *buf, int size, int rw, void *u)
{
	(void)buf;
	(void)size;
	(void)rw;
	(void)u;
	return 0;
}

/* The first certificate of PEM file @p path (config key @p key), or NULL with ci->error. */
static X509 *
read_cert(const char *key, const char *path, struct mg_rep_cert_info *ci, int *rc)
{
	FILE *f = fopen(path, "r");
	X509 *x;

	if (f == NULL) {
		*rc = -errno;
		rep_fmt(ci->error, sizeof(ci->error), "%s %s: %s", key, path, strerror(errno));
		return NULL;
	}
	x = PEM_read_X509(f, NULL, no_passphrase, NULL);
	fclose(f);
	ERR_clear_error();
	if (x == NULL) {
		*rc = -EINVAL;
		rep_fmt(ci->error, sizeof(ci->error), "%s %s: no PEM certificate in it", key, path);
		return NULL;
	}
	cert_info(x, ci);
	return x;
}

/* Check key-file against the certificate @p cert (NULL: not readable, checked alone). */
static int
check_key(const struct mg_rep_probe_opts *o, X509 *cert, struct mg_rep_cert_info *ci)
{
	FILE *f = fopen(o->key_file, "r");
	EVP_PKEY *k;
	int rc = 0;

	if (f == NULL) {
		rc = -errno;
		rep_fmt(ci->error, sizeof(ci->error), "key-file %s: %s", o->key_file,
		        strerror(errno));
		return rc;
	}
	k = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
	fclose(f);
	ERR_clear_error();
	if (k == NULL) {
		rep_fmt(ci->error, sizeof(ci->error),
		        "key-file %s: no PEM private key in it (or an encrypted one)", o->key_file);
		return -EINVAL;
	}
	if (cert != NULL && X509_check_private_key(cert, k) != 1) {
		rep_fmt(ci->error, sizeof(ci->error),
		        "key-file %s does not match the certificate of cert-file %s", o->key_file,
		        o->cert_file);
		rc = -EINVAL;
	}
	ERR_clear_error();
	EVP_PKEY_free(k);
	return rc;
}

int
rep_probe_files(const struct mg_rep_probe_opts *o, struct mg_rep_probe *p)
{
	bool has_cert = o->cert_file != NULL && *o->cert_file != '\0';
	bool has_key = o->key_file != NULL && *o->key_file != '\0';
	int rc = 0, crc = 0;
	X509 *x = NULL;

	if (o->ca_file != NULL && *o->ca_file != '\0') {
		x = read_cert("trusted-ca-file", o->ca_file, &p->ca, &rc);
		X509_free(x);
		x = NULL;
	}
	if (has_cert != has_key) {
		rep_fmt(p->client.error, sizeof(p->client.error), "%s is set but %s is not",
		        has_cert ? "cert-file" : "key-file", has_cert ? "key-file" : "cert-file");
		crc = -EINVAL;
	} else if (has_cert) {
		x = read_cert("cert-file", o->cert_file, &p->client, &crc);
		if (x != NULL || crc == 0)
			crc = check_key(o, x, &p->client);
		X509_free(x);
	}
	if (rc == 0)
		rc = crc;
	if (rc != 0)
		rep_fmt(p->tls_error, sizeof(p->tls_error), "%s",
		        p->ca.error[0] ? p->ca.error : p->client.error);
	return rc;
}

/* ---- the handshake ---- */

struct verify_state {
	int err; /* the first verification error, X509_V_OK when none */
	int depth;
};

static int verify_idx = -1;
static pthread_once_t verify_once = PTHREAD_ONCE_INIT;

static void
verify_idx_init(void)
{
	verify_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* Record the first error and go on (the header comment says why). */
static int
keep_going(int ok, X509_STORE_CTX *ctx)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(ctx, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct verify_state *st = ssl != NULL ? SSL_get_ex_data(ssl, verify_idx) : NULL;

	if (!ok && st != NULL && st->err == X509_V_OK) {
		st->err = X509_STORE_CTX_get_error(ctx);
		st->depth = X509_STORE_CTX_get_error_depth(ctx);
	}
	return 1;
}

/* A context with the files loaded; NULL with p->tls_error. */
static SSL_CTX *
make_ctx(const struct mg_rep_probe_opts *o, struct mg_rep_probe *p)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	const char *what = "TLS context";

	if (ctx == NULL)
		goto err;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, keep_going);
	what = "trusted-ca-file";
	if (o->ca_file != NULL && *o->ca_file != '\0'
	            ? SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1
	            : SSL_CTX_set_default_verify_paths(ctx) != 1)
		goto err;
	if (o->cert_file != NULL && *o->cert_file != '\0') {
		what = "cert-file";
		if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1)
			goto err;
		what = "key-file";
		if (SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1)
			goto err;
	}
	return ctx;
err:
	rep_fmt(p->tls_error, sizeof(p->tls_error), "%s: %s", what,
	        ERR_reason_error_string(ERR_peek_last_error()) ?: "cannot be loaded");
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}

/* An alert about our certificate: the words after "sslv3 alert " and friends, else NULL. */
static const char *
cert_alert(unsigned long e)
{
	static const char *const prefixes[] = {"sslv3 alert ", "tlsv13 alert ", "tlsv1 alert "};
	const char *s;

	switch (ERR_GET_REASON(e)) {
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
	case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
	case SSL_R_TLSV1_ALERT_DECRYPT_ERROR:
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
		break;
	default:
		return NULL;
	}
	s = ERR_reason_error_string(e);
	if (s == NULL)
		return "bad certificate";
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (strncmp(s, prefixes[i], strlen(prefixes[i])) == 0)
			return s + strlen(prefixes[i]);
	return s;
}

/* Why our certificate may have been refused: a hint for the message, or "". */
static void
refusal_hint(const struct mg_rep_probe *p, char *out, size_t size)
{
	out[0] = '\0';
	if (!p->client.present)
		rep_fmt(out, size,
		        "; no cert-file is set and the server wants a client certificate");
	else if (p->client.expired)
		rep_fmt(out, size, "; cert-file's certificate expired at %s", p->client.not_after);
	else if (p->client.not_yet_valid)
		rep_fmt(out, size, "; cert-file's certificate is valid only from %s",
		        p->client.not_before);
	else if (p->ca.present && strcmp(p->client.issuer_cn, p->ca.subject_cn) != 0)
		rep_fmt(out, size, "; cert-file is issued by CN=%s, not by trusted-ca-file's CN=%s",
		        p->client.issuer_cn, p->ca.subject_cn);
}

/*
 * A failed SSL call (@p ret, its SSL_get_error @p e) in words into
 * p->tls_error; @p during: in the handshake (else in the read after it).
 */
static int
describe_failure(SSL *ssl, int ret, int e, bool during, struct mg_rep_probe *p)
{
	unsigned long err = ERR_peek_last_error();
	const char *alert = err != 0 ? cert_alert(err) : NULL;
	char hint[320];
	int rc;

	(void)ssl;
	if (alert != NULL) {
		refusal_hint(p, hint, sizeof(hint));
		rep_fmt(p->tls_error, sizeof(p->tls_error),
		        "server refused our client certificate (alert %s)%s", alert, hint);
		rc = -EACCES;
	} else if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && err == 0 && ret == 0) ||
	           (e == SSL_ERROR_SYSCALL && err == 0 &&
	            (errno == ECONNRESET || errno == EPIPE))) {
		rep_fmt(p->tls_error, sizeof(p->tls_error), "server closed the connection %s",
		        during ? "during the handshake (not a TLS server, or it refused us)"
		               : "right after the handshake (it may have refused our certificate)");
		rc = -ECONNRESET;
	} else if (e == SSL_ERROR_SYSCALL && err == 0) {
		rep_fmt(p->tls_error, sizeof(p->tls_error), "%s", strerror(errno));
		rc = errno ? -errno : -EIO;
	} else if (ERR_GET_REASON(err) == SSL_R_WRONG_VERSION_NUMBER ||
	           ERR_GET_REASON(err) == SSL_R_PACKET_LENGTH_TOO_LONG) {
		rep_fmt(p->tls_error, sizeof(p->tls_error),
		        "the server does not answer TLS (%s); a plain-HTTP etcd needs an http:// "
		        "endpoint",
		        ERR_reason_error_string(err) ?: "not TLS");
		rc = -EPROTO;
	} else {
		rep_fmt(p->tls_error, sizeof(p->tls_error), "handshake failed: %s",
		        ERR_reason_error_string(err) ?: "unknown error");
		rc = -EPROTO;
	}
	ERR_clear_error();
	return rc;
}

/* Wait for @p fd as SSL wants (@p e) until @p deadline_us; false on timeout. */
static bool
wait_io(int fd, int e, uint64_t deadline_us)
{
	struct pollfd pfd = {.fd = fd, .events = e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN};
	int n;

	do
		n = poll(&pfd, 1, rep_ms_left(deadline_us));
	while (n < 0 && errno == EINTR);
	return n > 0;
}

/* The handshake until @p deadline_us: 0, or a negative errno with p->tls_error. */
static int
handshake(SSL *ssl, int fd, uint64_t deadline_us, unsigned timeout_ms, struct mg_rep_probe *p)
{
	for (;;) {
		int ret, e;

		ERR_clear_error();
		errno = 0;
		ret = SSL_connect(ssl);
		if (ret == 1)
			return 0;
		e = SSL_get_error(ssl, ret);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return describe_failure(ssl, ret, e, true, p);
		if (!wait_io(fd, e, deadline_us)) {
			rep_fmt(p->tls_error, sizeof(p->tls_error),
			        "no TLS answer within %u ms (is it a TLS server?)", timeout_ms);
			return -ETIMEDOUT;
		}
	}
}

/* After the handshake: an alert within the window is a refusal; data or silence, acceptance. */
static int
read_refusal(SSL *ssl, int fd, uint64_t deadline_us, struct mg_rep_probe *p)
{
	char buf[256];

	for (;;) {
		int ret, e;

		ERR_clear_error();
		errno = 0;
		ret = SSL_read(ssl, buf, sizeof(buf));
		if (ret > 0)
			return 0;
		e = SSL_get_error(ssl, ret);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return describe_failure(ssl, ret, e, false, p);
		if (!wait_io(fd, e, deadline_us))
			return 0;
	}
}

/* The server's certificate: its chain (@p st) and its name; 0 or -EKEYREJECTED. */
static int
check_server(SSL *ssl, const struct verify_state *st, const struct mg_rep_probe_opts *o,
             struct mg_rep_probe *p)
{
	X509 *x = SSL_get1_peer_certificate(ssl);
	struct in6_addr ip6;
	bool is_ip =
	        inet_pton(AF_INET, p->host, &ip6) == 1 || inet_pton(AF_INET6, p->host, &ip6) == 1;
	bool trust_err;

	if (x == NULL) {
		rep_fmt(p->tls_error, sizeof(p->tls_error), "the server sent no certificate");
		return -EKEYREJECTED;
	}
	cert_info(x, &p->server);
	p->server_name_ok = is_ip ? X509_check_ip_asc(x, p->host, 0) == 1
	                          : X509_check_host(x, p->host, 0, 0, NULL) == 1;
	X509_free(x);
	ERR_clear_error();
	if (st->err != X509_V_OK) {
		trust_err = st->err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
		            st->err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
		            st->err == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
		            st->err == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
		            st->err == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE ||
		            st->err == X509_V_ERR_CERT_SIGNATURE_FAILURE;
		rep_fmt(p->tls_error, sizeof(p->tls_error), "server certificate %s%s: %s%s",
		        trust_err ? "not trusted by " : "rejected",
		        trust_err ? (o->ca_file != NULL && *o->ca_file != '\0' ? "trusted-ca-file"
		                                                               : "the system's CAs")
		                  : "",
		        X509_verify_cert_error_string(st->err),
		        st->depth > 0 && !trust_err ? " (a CA certificate of its chain)" : "");
		return -EKEYREJECTED;
	}
	if (!p->server_name_ok) {
		rep_fmt(p->tls_error, sizeof(p->tls_error),
		        "server certificate is not valid for %s %s (its names: %s)",
		        is_ip ? "IP address" : "host", p->host,
		        p->server.names[0] ? p->server.names : "none");
		return -EKEYREJECTED;
	}
	return 0;
}

/*
 * OpenSSL writes with write(2): a server that hangs up mid-handshake would
 * raise SIGPIPE, which kills a process that has not ignored it. SIGPIPE is
 * sent to the writing thread, so blocking it here for the step, then
 * taking the one we caused (if none was pending before), leaves the
 * process's signal handling as it was.
 */
static bool
pipe_block(sigset_t *old)
{
	sigset_t pipe, pending;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, old);
	sigpending(&pending);
	return sigismember(&pending, SIGPIPE) == 1;
}

static void
pipe_restore(const sigset_t *old, bool was_pending)
{
	sigset_t pipe, pending;
	struct timespec zero = {0, 0};

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	sigpending(&pending);
	if (!was_pending && sigismember(&pending, SIGPIPE) == 1)
		while (sigtimedwait(&pipe, NULL, &zero) < 0 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

static int tls_step(const struct mg_rep_probe_opts *o, int fd, unsigned timeout_ms,
                    struct mg_rep_probe *p);

int
rep_probe_tls(const struct mg_rep_probe_opts *o, int fd, unsigned timeout_ms,
              struct mg_rep_probe *p)
{
	sigset_t old;
	bool was_pending = pipe_block(&old);
	int rc = tls_step(o, fd, timeout_ms, p);

	pipe_restore(&old, was_pending);
	return rc;
}

static int
tls_step(const struct mg_rep_probe_opts *o, int fd, unsigned timeout_ms, struct mg_rep_probe *p)
{
	uint64_t start = rep_now_us(), deadline = start + (uint64_t)timeout_ms * 1000u;
	struct verify_state st = {.err = X509_V_OK};
	struct in6_addr ip6;
	SSL_CTX *ctx;
	SSL *ssl = NULL;
	int rc, hrc, window;

	pthread_once(&verify_once, verify_idx_init);
	ctx = make_ctx(o, p);
	if (ctx == NULL)
		return -EINVAL;
	ssl = SSL_new(ctx);
	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 || SSL_set_ex_data(ssl, verify_idx, &st) != 1) {
		rep_fmt(p->tls_error, sizeof(p->tls_error), "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	/* As gRPC: SNI for a name (never for an address), ALPN h2. */
	if (inet_pton(AF_INET, p->host, &ip6) != 1 && inet_pton(AF_INET6, p->host, &ip6) != 1)
		SSL_set_tlsext_host_name(ssl, p->host);
	SSL_set_alpn_protos(ssl, (const unsigned char *)"\x02h2", 3);
	hrc = handshake(ssl, fd, deadline, timeout_ms, p);
	if (hrc != 0 && (hrc == -ETIMEDOUT || st.err == X509_V_OK)) {
		rc = hrc;
		goto out;
	}
	rep_fmt(p->tls_version, sizeof(p->tls_version), "%s", SSL_get_version(ssl));
	if (hrc == 0)
		rep_fmt(p->tls_cipher, sizeof(p->tls_cipher), "%s", SSL_get_cipher_name(ssl));
	/* The server's problem first: a gRPC client gives up there, before the server judges us. */
	rc = check_server(ssl, &st, o, p);
	if (rc != 0 || hrc != 0) {
		rc = rc ? rc : hrc;
		goto out;
	}
	window = rep_ms_left(deadline);
	if (window > REFUSAL_WINDOW_MS)
		window = REFUSAL_WINDOW_MS;
	rc = read_refusal(ssl, fd, rep_now_us() + (uint64_t)window * 1000u, p);
	p->client_accepted = rc == 0;
out:
	p->tls_us = rep_now_us() - start;
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}
