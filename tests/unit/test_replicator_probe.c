/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of lib/replicator's endpoint probe (rep_probe.h) against
 * servers on 127.0.0.1 that the test runs itself. The certificates are
 * made at start with OpenSSL's API in a mkdtemp() folder: two CAs, a
 * server certificate (CN etcd, names localhost and 127.0.0.1) and one
 * valid for another name only, client certificates from each CA and an
 * expired one. A TLS server in a thread requires a client certificate
 * from the first CA, as clustermesh-apiserver's etcd does. Each failure
 * the troubleshoot command must tell apart is provoked once: unknown
 * server CA, our certificate refused (unknown CA, expired), a wrong
 * server name, a closed port, a name that does not resolve (.invalid),
 * a server that accepts TCP and never answers, a server that is not TLS,
 * and the local files (missing, not PEM, key of another certificate).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "mg_common.h"
#include "mg_test.h"
#include "rep_probe.h"

#define DAY (24L * 3600)

static char dir[64];

static char *
path(const char *name)
{
	static char bufs[8][128];
	static unsigned next;
	char *b = bufs[next++ % 8];

	snprintf(b, sizeof(bufs[0]), "%s/%s", dir, name);
	return b;
}

/* ---- certificates, made with the API ---- */

static void
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (e == NULL)
		abort();
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
}

/*
 * A certificate for @p cn valid from now + @p from_s to now + @p to_s,
 * signed by @p issuer (NULL: self-signed CA), with @p san (NULL: none).
 * Its key and certificate are written to <name>.key and <name>.pem.
 */
static void
make_cert(const char *name, const char *cn, const char *issuer_name, long from_s, long to_s,
          const char *san)
{
	static long serial = 1;
	EVP_PKEY *key = EVP_EC_gen("P-256"), *ikey = key;
	X509 *x = X509_new(), *issuer = NULL;
	char file[64];
	FILE *f;

	if (issuer_name != NULL) {
		snprintf(file, sizeof(file), "%s.pem", issuer_name);
		f = fopen(path(file), "r");
		issuer = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
		snprintf(file, sizeof(file), "%s.key", issuer_name);
		f = fopen(path(file), "r");
		ikey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
	}
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), from_s);
	X509_gmtime_adj(X509_getm_notAfter(x), to_s);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                           (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(issuer != NULL ? issuer : x));
	if (issuer == NULL) {
		add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
		add_ext(x, issuer, NID_ext_key_usage, "serverAuth,clientAuth");
		if (san != NULL)
			add_ext(x, issuer, NID_subject_alt_name, san);
	}
	if (X509_sign(x, ikey, EVP_sha256()) == 0)
		abort();
	snprintf(file, sizeof(file), "%s.pem", name);
	f = fopen(path(file), "w");
	PEM_write_X509(f, x);
	fclose(f);
	snprintf(file, sizeof(file), "%s.key", name);
	f = fopen(path(file), "w");
	PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	X509_free(x);
	X509_free(issuer);
	if (ikey != key)
		EVP_PKEY_free(ikey);
	EVP_PKEY_free(key);
}

static int
suite_init(void)
{
	FILE *f;

	snprintf(dir, sizeof(dir), "/tmp/mg-probe.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	make_cert("ca1", "ca1", NULL, -DAY, 3650 * DAY, NULL);
	make_cert("ca2", "ca2", NULL, -DAY, 3650 * DAY, NULL);
	make_cert("server", "etcd", "ca1", -DAY, 365 * DAY, "DNS:localhost,IP:127.0.0.1");
	make_cert("server_other", "etcd", "ca1", -DAY, 365 * DAY, "DNS:etcd.example");
	make_cert("client", "remote", "ca1", -DAY, 365 * DAY, NULL);
	make_cert("client_ca2", "remote", "ca2", -DAY, 365 * DAY, NULL);
	make_cert("client_expired", "remote", "ca1", -2 * DAY, -DAY, NULL);
	f = fopen(path("notpem.txt"), "w");
	if (f == NULL)
		return -1;
	fputs("not a certificate\n", f);
	fclose(f);
	return 0;
}

static int
suite_clean(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- servers in a thread ---- */

enum server_mode {
	SERVE_TLS,    /* TLS, client certificate from ca1 required; says "x" after the handshake */
	SERVE_SILENT, /* listens, never accepts: TCP connects, TLS never answers */
	SERVE_HTTP,   /* answers an HTTP error to anything, as a plain-HTTP server would */
};

struct server {
	enum server_mode mode;
	int lfd;
	uint16_t port;
	SSL_CTX *ctx;
	pthread_t thread;
	atomic_bool stop;
	atomic_int handshakes_ok;
};

static void
serve_one(struct server *s, int fd)
{
	struct timeval tv = {.tv_sec = 3};
	char buf[256];
	SSL *ssl;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (s->mode == SERVE_HTTP) {
		const char *r = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n";

		(void)!read(fd, buf, sizeof(buf));
		(void)!write(fd, r, strlen(r));
		return;
	}
	ssl = SSL_new(s->ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) == 1) {
		atomic_fetch_add(&s->handshakes_ok, 1);
		SSL_write(ssl, "x", 1);
		while (SSL_read(ssl, buf, sizeof(buf)) > 0)
			;
	}
	SSL_free(ssl);
	ERR_clear_error();
}

static void *
server_main(void *arg)
{
	struct server *s = arg;
	sigset_t pipe;

	/* A client that left: SSL_write's EPIPE, not a signal (it is thread-directed). */
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, NULL);
	while (!atomic_load(&s->stop)) {
		struct pollfd pfd = {.fd = s->lfd, .events = POLLIN};
		int fd;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		serve_one(s, fd);
		close(fd);
	}
	return NULL;
}

/* A server on 127.0.0.1, port picked by the kernel; @p cert: "server" or "server_other". */
static struct server *
server_start(enum server_mode mode, const char *cert)
{
	struct server *s = calloc(1, sizeof(*s));
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	char file[64];

	s->mode = mode;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(s->lfd, 16) != 0 || getsockname(s->lfd, (struct sockaddr *)&a, &len) != 0)
		abort();
	s->port = ntohs(a.sin_port);
	if (mode == SERVE_SILENT)
		return s;
	if (mode == SERVE_TLS) {
		s->ctx = SSL_CTX_new(TLS_server_method());
		snprintf(file, sizeof(file), "%s.pem", cert);
		SSL_CTX_use_certificate_file(s->ctx, path(file), SSL_FILETYPE_PEM);
		snprintf(file, sizeof(file), "%s.key", cert);
		SSL_CTX_use_PrivateKey_file(s->ctx, path(file), SSL_FILETYPE_PEM);
		SSL_CTX_load_verify_locations(s->ctx, path("ca1.pem"), NULL);
		SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
		/* As etcd: the certificate file alone, no chain built from the CA store. */
		SSL_CTX_set_mode(s->ctx, SSL_MODE_NO_AUTO_CHAIN);
	}
	if (pthread_create(&s->thread, NULL, server_main, s) != 0)
		abort();
	return s;
}

static void
server_stop(struct server *s)
{
	atomic_store(&s->stop, true);
	if (s->mode != SERVE_SILENT)
		pthread_join(s->thread, NULL);
	close(s->lfd);
	SSL_CTX_free(s->ctx);
	free(s);
}

/* ---- helpers ---- */

static uint64_t
now_ms(void)
{
	return mg_time_ns() / 1000000u;
}

/* Probe https://@p host:@p port with ca1, the given client pair (NULLs: none). */
static int
probe(struct mg_rep_probe *p, const char *scheme_host, unsigned port, const char *ca,
      const char *cert, const char *key, unsigned timeout_ms)
{
	char ep[256], text[4096];
	struct mg_rep_probe_opts o = {.endpoint = ep, .timeout_ms = timeout_ms};
	int rc, n;

	snprintf(ep, sizeof(ep), "%s:%u", scheme_host, port);
	o.ca_file = ca != NULL ? path(ca) : NULL;
	o.cert_file = cert != NULL ? path(cert) : NULL;
	o.key_file = key != NULL ? path(key) : NULL;
	rc = mg_rep_probe_run(&o, p);
	n = mg_rep_probe_text(p, text, sizeof(text));
	CU_ASSERT_TRUE(n > 0 && (size_t)n < sizeof(text));
	if (getenv("MG_TEST_VERBOSE") != NULL)
		printf("%s -> %d\n%s", ep, rc, text);
	CU_ASSERT_EQUAL(rc, p->rc);
	return rc;
}

static bool
has(const char *hay, const char *needle)
{
	bool ok = strstr(hay, needle) != NULL;

	if (!ok)
		printf("  (expected \"%s\" in \"%s\")\n", needle, hay);
	return ok;
}

/* ---- the tests ---- */

static void
test_all_good(void)
{
	struct server *s = server_start(SERVE_TLS, "server");
	struct mg_rep_probe p;
	char text[4096];
	json_t *j;

	CU_ASSERT_EQUAL(probe(&p, "https://127.0.0.1", s->port, "ca1.pem", "client.pem",
	                      "client.key", 3000),
	                0);
	CU_ASSERT_STRING_EQUAL(p.error, "");
	CU_ASSERT_TRUE(p.tls && p.dns_ran && p.tcp_ran && p.tls_ran);
	CU_ASSERT_EQUAL(p.n_addrs, 1);
	CU_ASSERT_STRING_EQUAL(p.addrs[0], "127.0.0.1");
	CU_ASSERT_STRING_EQUAL(p.tls_version, "TLSv1.3");
	CU_ASSERT_TRUE(p.server_name_ok && p.client_accepted);
	CU_ASSERT_STRING_EQUAL(p.server.subject_cn, "etcd");
	CU_ASSERT_STRING_EQUAL(p.server.issuer_cn, "ca1");
	CU_ASSERT_STRING_EQUAL(p.server.names, "DNS:localhost, IP:127.0.0.1");
	CU_ASSERT_STRING_EQUAL(p.client.subject_cn, "remote");
	CU_ASSERT_STRING_EQUAL(p.ca.subject_cn, "ca1");
	CU_ASSERT_FALSE(p.client.expired || p.server.expired || p.ca.expired);
	CU_ASSERT_EQUAL(strlen(p.server.not_after), 20); /* 2026-01-02T03:04:05Z */
	CU_ASSERT_EQUAL(p.server.not_after[19], 'Z');
	CU_ASSERT_TRUE(p.tls_us > 0 && p.tcp_us > 0);
	CU_ASSERT_TRUE(atomic_load(&s->handshakes_ok) == 1);

	mg_rep_probe_text(&p, text, sizeof(text));
	CU_ASSERT_TRUE(has(text, "  dns: 127.0.0.1 ("));
	CU_ASSERT_TRUE(has(text, "  tcp: connected to 127.0.0.1:"));
	CU_ASSERT_TRUE(has(text, "  tls: TLSv1.3 ("));
	CU_ASSERT_TRUE(has(text, "server certificate CN=etcd valid until "));
	CU_ASSERT_TRUE(has(text, "; client certificate CN=remote valid until "));
	CU_ASSERT_FALSE(strstr(text, "error:") != NULL);

	j = mg_rep_probe_json(&p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	CU_ASSERT_TRUE(json_is_true(json_object_get(j, "ok")));
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "scheme")), "https");
	CU_ASSERT_STRING_EQUAL(
	        json_string_value(json_object_get(json_object_get(j, "tls"), "version")),
	        "TLSv1.3");
	CU_ASSERT_STRING_EQUAL(
	        json_string_value(json_object_get(
	                json_object_get(json_object_get(j, "certificates"), "client"),
	                "subject_cn")),
	        "remote");
	CU_ASSERT_TRUE(json_is_null(json_object_get(j, "error")) ||
	               json_object_get(j, "error") == NULL);
	json_decref(j);

	/* A host name: resolved locally, checked against the DNS name. */
	CU_ASSERT_EQUAL(probe(&p, "https://localhost", s->port, "ca1.pem", "client.pem",
	                      "client.key", 3000),
	                0);
	CU_ASSERT_TRUE(p.server_name_ok);
	CU_ASSERT_TRUE(has(p.tcp_addr, "127.0.0.1:"));
	server_stop(s);
}

static void
test_server_untrusted(void)
{
	struct server *s = server_start(SERVE_TLS, "server");
	struct mg_rep_probe p;

	CU_ASSERT_EQUAL(probe(&p, "https://127.0.0.1", s->port, "ca2.pem", "client.pem",
	                      "client.key", 3000),
	                -EKEYREJECTED);
	CU_ASSERT_TRUE(has(p.tls_error, "server certificate not trusted by trusted-ca-file: "
	                                "unable to get local issuer certificate"));
	CU_ASSERT_TRUE(has(p.error, "tls: server certificate not trusted"));
	CU_ASSERT_STRING_EQUAL(p.server.subject_cn, "etcd"); /* shown all the same */
	CU_ASSERT_STRING_EQUAL(p.ca.subject_cn, "ca2");
	server_stop(s);
}

static void
test_client_unknown_ca(void)
{
	struct server *s = server_start(SERVE_TLS, "server");
	struct mg_rep_probe p;

	CU_ASSERT_EQUAL(probe(&p, "https://127.0.0.1", s->port, "ca1.pem", "client_ca2.pem",
	                      "client_ca2.key", 3000),
	                -EACCES);
	CU_ASSERT_TRUE(
	        has(p.tls_error, "server refused our client certificate (alert unknown ca)"));
	CU_ASSERT_TRUE(has(p.tls_error, "cert-file is issued by CN=ca2, not by trusted-ca-file's "
	                                "CN=ca1"));
	CU_ASSERT_FALSE(p.client_accepted);
	CU_ASSERT_TRUE(p.server_name_ok); /* the server's side was fine */
	CU_ASSERT_EQUAL(atomic_load(&s->handshakes_ok), 0);
	server_stop(s);
}

static void
test_client_expired(void)
{
	struct server *s = server_start(SERVE_TLS, "server");
	struct mg_rep_probe p;
	char text[4096];

	CU_ASSERT_EQUAL(probe(&p, "https://127.0.0.1", s->port, "ca1.pem", "client_expired.pem",
	                      "client_expired.key", 3000),
	                -EACCES);
	CU_ASSERT_TRUE(p.client.expired);
	CU_ASSERT_FALSE(p.client.not_yet_valid);
	CU_ASSERT_TRUE(has(p.tls_error, "server refused our client certificate (alert "
	                                "certificate expired)"));
	CU_ASSERT_TRUE(has(p.tls_error, "cert-file's certificate expired at "));
	mg_rep_probe_text(&p, text, sizeof(text));
	CU_ASSERT_TRUE(has(text, "(EXPIRED)"));
	server_stop(s);
}

static void
test_wrong_name(void)
{
	struct server *s = server_start(SERVE_TLS, "server_other");
	struct mg_rep_probe p;

	CU_ASSERT_EQUAL(probe(&p, "https://127.0.0.1", s->port, "ca1.pem", "client.pem",
	                      "client.key", 3000),
	                -EKEYREJECTED);
	CU_ASSERT_FALSE(p.server_name_ok);
	CU_ASSERT_TRUE(has(p.tls_error, "not valid for IP address 127.0.0.1 (its names: "
	                                "DNS:etcd.example)"));
	server_stop(s);
}

static void
test_refused(void)
{
	struct server *s = server_start(SERVE_SILENT, NULL);
	unsigned port = s->port;
	struct mg_rep_probe p;
	uint64_t t0;

	server_stop(s); /* the port is closed now */
	t0 = now_ms();
	CU_ASSERT_EQUAL(
	        probe(&p, "https://127.0.0.1", port, "ca1.pem", "client.pem", "client.key", 3000),
	        -ECONNREFUSED);
	CU_ASSERT_TRUE(now_ms() - t0 < 1000);
	CU_ASSERT_TRUE(has(p.tcp_error, "connection refused"));
	CU_ASSERT_TRUE(has(p.error, "tcp: 127.0.0.1:"));
	CU_ASSERT_FALSE(p.tls_ran);
	/* The files were read all the same. */
	CU_ASSERT_STRING_EQUAL(p.client.subject_cn, "remote");
}

static void
test_dns_invalid(void)
{
	struct mg_rep_probe p;
	uint64_t t0 = now_ms();
	json_t *j;

	CU_ASSERT_NOT_EQUAL(
	        probe(&p, "https://meshgate-probe.invalid", 2379, "ca1.pem", NULL, NULL, 2000), 0);
	CU_ASSERT_TRUE(now_ms() - t0 < 3000);
	CU_ASSERT_TRUE(p.dns_ran);
	CU_ASSERT_NOT_EQUAL(p.dns_rc, 0);
	CU_ASSERT_EQUAL(p.rc, p.dns_rc);
	CU_ASSERT_FALSE(p.tcp_ran || p.tls_ran);
	CU_ASSERT_EQUAL(p.n_addrs, 0);
	CU_ASSERT_TRUE(has(p.error, "dns: "));
	j = mg_rep_probe_json(&p);
	CU_ASSERT_TRUE(json_is_false(json_object_get(json_object_get(j, "dns"), "ok")));
	CU_ASSERT_TRUE(json_is_null(json_object_get(j, "tcp")));
	json_decref(j);
}

static void
test_tls_timeout(void)
{
	struct server *s = server_start(SERVE_SILENT, NULL);
	struct mg_rep_probe p;
	uint64_t t0 = now_ms(), dt;

	CU_ASSERT_EQUAL(
	        probe(&p, "https://127.0.0.1", s->port, "ca1.pem", "client.pem", "client.key", 400),
	        -ETIMEDOUT);
	dt = now_ms() - t0;
	CU_ASSERT_TRUE(dt >= 350 && dt < 1200);
	CU_ASSERT_EQUAL(p.tcp_rc, 0);
	CU_ASSERT_TRUE(has(p.tls_error, "no TLS answer within 400 ms"));
	server_stop(s);
}

static void
test_not_tls(void)
{
	struct server *s = server_start(SERVE_HTTP, NULL);
	struct mg_rep_probe p;

	CU_ASSERT_EQUAL(probe(&p, "https://127.0.0.1", s->port, "ca1.pem", "client.pem",
	                      "client.key", 2000),
	                -EPROTO);
	CU_ASSERT_TRUE(has(p.tls_error, "does not answer TLS"));
	server_stop(s);
}

static void
test_plain_http(void)
{
	struct server *s = server_start(SERVE_SILENT, NULL);
	struct mg_rep_probe p;
	char text[4096];
	json_t *j;

	CU_ASSERT_EQUAL(probe(&p, "http://127.0.0.1", s->port, NULL, NULL, NULL, 1000), 0);
	CU_ASSERT_FALSE(p.tls || p.tls_ran);
	CU_ASSERT_TRUE(p.tcp_ran && p.tcp_rc == 0);
	mg_rep_probe_text(&p, text, sizeof(text));
	CU_ASSERT_TRUE(has(text, "  tls: not used (http:// endpoint)\n"));
	j = mg_rep_probe_json(&p);
	CU_ASSERT_TRUE(json_is_null(json_object_get(j, "tls")));
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "scheme")), "http");
	json_decref(j);
	server_stop(s);
}

static void
test_files(void)
{
	struct server *s = server_start(SERVE_TLS, "server");
	struct mg_rep_probe p;

	CU_ASSERT_EQUAL(probe(&p, "https://127.0.0.1", s->port, "missing.pem", "client.pem",
	                      "client.key", 2000),
	                -ENOENT);
	CU_ASSERT_TRUE(has(p.tls_error, "trusted-ca-file "));
	CU_ASSERT_TRUE(has(p.tls_error, "missing.pem: No such file or directory"));
	CU_ASSERT_TRUE(has(p.ca.error, "trusted-ca-file"));
	CU_ASSERT_TRUE(p.tcp_ran && p.tcp_rc == 0); /* the network steps ran */

	CU_ASSERT_EQUAL(probe(&p, "https://127.0.0.1", s->port, "ca1.pem", "notpem.txt",
	                      "client.key", 2000),
	                -EINVAL);
	CU_ASSERT_TRUE(has(p.tls_error, "cert-file "));
	CU_ASSERT_TRUE(has(p.tls_error, "notpem.txt: no PEM certificate in it"));

	CU_ASSERT_EQUAL(probe(&p, "https://127.0.0.1", s->port, "ca1.pem", "client.pem",
	                      "notpem.txt", 2000),
	                -EINVAL);
	CU_ASSERT_TRUE(has(p.tls_error, "key-file "));
	CU_ASSERT_TRUE(has(p.tls_error, "notpem.txt: no PEM private key"));

	CU_ASSERT_EQUAL(probe(&p, "https://127.0.0.1", s->port, "ca1.pem", "client.pem",
	                      "client_ca2.key", 2000),
	                -EINVAL);
	CU_ASSERT_TRUE(has(p.tls_error, "client_ca2.key does not match the certificate of "
	                                "cert-file "));

	CU_ASSERT_EQUAL(
	        probe(&p, "https://127.0.0.1", s->port, "ca1.pem", "client.pem", NULL, 2000),
	        -EINVAL);
	CU_ASSERT_TRUE(has(p.tls_error, "cert-file is set but key-file is not"));

	/* No client certificate at all: the server wants one. */
	CU_ASSERT_EQUAL(probe(&p, "https://127.0.0.1", s->port, "ca1.pem", NULL, NULL, 2000),
	                -EACCES);
	CU_ASSERT_TRUE(has(p.tls_error, "server refused our client certificate (alert "));
	CU_ASSERT_TRUE(has(p.tls_error, "no cert-file is set"));
	server_stop(s);
}

static void
test_endpoints(void)
{
	static const char *const bad[] = {
	        "",           "ftp://h:1",      "https://[::1", "https://h:99999",
	        "https://:1", "https://h:12x3", "https://h:",
	};
	struct mg_rep_probe_opts o = {.timeout_ms = 500};
	struct mg_rep_probe p;
	char small[16];
	int n;

	for (size_t i = 0; i < MG_ARRAY_SIZE(bad); i++) {
		o.endpoint = bad[i];
		CU_ASSERT_EQUAL(mg_rep_probe_run(&o, &p), -EINVAL);
		CU_ASSERT_FALSE(p.dns_ran);
		CU_ASSERT_TRUE(has(p.error, "endpoint"));
	}
	CU_ASSERT_EQUAL(mg_rep_probe_run(NULL, &p), -EINVAL);

	/* No scheme and no TLS files: http, etcd's port. */
	o.endpoint = "meshgate-probe.invalid";
	mg_rep_probe_run(&o, &p);
	CU_ASSERT_FALSE(p.tls);
	CU_ASSERT_EQUAL(p.port, 2379);
	CU_ASSERT_STRING_EQUAL(p.host, "meshgate-probe.invalid");

	/* An IPv6 literal with a path after it. */
	o.endpoint = "http://[::1]:1/x";
	mg_rep_probe_run(&o, &p);
	CU_ASSERT_STRING_EQUAL(p.host, "::1");
	CU_ASSERT_EQUAL(p.port, 1);
	CU_ASSERT_TRUE(p.dns_ran);

	/* Text: snprintf's contract. */
	n = mg_rep_probe_text(&p, small, sizeof(small));
	CU_ASSERT_TRUE(n > (int)sizeof(small));
	CU_ASSERT_EQUAL(strlen(small), sizeof(small) - 1);
	CU_ASSERT_EQUAL(mg_rep_probe_text(&p, NULL, 0), n);
	CU_ASSERT_EQUAL(mg_rep_probe_text(NULL, small, sizeof(small)), -EINVAL);
}

static CU_TestInfo tests[] = {
        {"all_good", test_all_good},
        {"server_untrusted", test_server_untrusted},
        {"client_unknown_ca", test_client_unknown_ca},
        {"client_expired", test_client_expired},
        {"wrong_name", test_wrong_name},
        {"refused", test_refused},
        {"dns_invalid", test_dns_invalid},
        {"tls_timeout", test_tls_timeout},
        {"not_tls", test_not_tls},
        {"plain_http", test_plain_http},
        {"files", test_files},
        {"endpoints", test_endpoints},
        CU_TEST_INFO_NULL,
};

int
main(void)
{
	CU_SuiteInfo suites[] = {{"replicator_probe", suite_init, suite_clean, NULL, NULL, tests},
	                         CU_SUITE_INFO_NULL};

	return mg_test_run(suites);
}
