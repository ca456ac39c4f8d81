/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The endpoint probe of meshgate-replicator's `troubleshoot` command.
 *
 * The replicator talks to each remote cluster's clustermesh-apiserver etcd
 * over gRPC with TLS client certificates, and gRPC reports every problem
 * on the way (a name that does not resolve, a refused port, a server
 * certificate from another CA, our certificate refused by the server) as
 * one status, UNAVAILABLE, with the reason only in its log. So the probe
 * walks the same path itself, one step at a time, and says which step
 * failed and why, as Cilium's `troubleshoot clustermesh` does:
 *
 *  1. the endpoint URL ("https://host:port", "http://host:port");
 *  2. DNS: the host's addresses (a literal address needs no lookup);
 *  3. TCP: a connection to the first address that answers;
 *  4. TLS (https only): the local files (trusted-ca-file, cert-file,
 *     key-file) read and checked, a handshake with SNI, the server's
 *     chain checked against trusted-ca-file and its name against the
 *     host as gRPC checks it (DNS names, IP addresses for an IP host),
 *     then a short read: with TLS 1.3 a server that refuses our client
 *     certificate says so with an alert after our handshake has ended.
 *
 * Every step has its own deadline (opts.timeout_ms); nothing blocks for
 * longer. The result holds what each step found, also after a failure,
 * and renders as text lines or as JSON.
 *
 * Error values (rc fields, and mg_rep_probe_run's return), negative errnos:
 *  -EINVAL        a malformed endpoint; a file that is not PEM; a key that
 *                 does not match its certificate; cert-file without key-file
 *  -ENOENT, -EACCES, ...  a file that cannot be opened (fopen's errno);
 *                 -ENOENT also for a host name that does not exist
 *  -EAGAIN        DNS temporary failure (no resolver answered)
 *  -ETIMEDOUT     a step did not end within timeout_ms
 *  -ECONNREFUSED, -EHOSTUNREACH, -ENETUNREACH  TCP connect errors
 *  -EPROTO        the TLS handshake failed (no TLS server, no common
 *                 version, an alert from the server during the handshake)
 *  -EKEYREJECTED  the server's certificate is not trusted by
 *                 trusted-ca-file, is expired, or is not valid for the host
 *  -EACCES        the server refused our client certificate (an alert)
 *  -ECONNRESET    the server closed the connection right after the handshake
 */
#ifndef REP_PROBE_H
#define REP_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/** Default per-step timeout (Cilium's troubleshoot uses 5 s too). */
#define MG_REP_PROBE_TIMEOUT_MS 5000
/** Port of an endpoint that names none (etcd's client port). */
#define MG_REP_PROBE_DEFAULT_PORT 2379
#define MG_REP_PROBE_MAX_ADDRS 8

struct mg_rep_probe_opts {
	/** "https://host:port", "http://host:port" ("[v6]" hosts; port defaults to 2379). */
	const char *endpoint;
	/** PEM files: trusted-ca-file, cert-file, key-file (NULL or "" when not set). */
	const char *ca_file, *cert_file, *key_file;
	/** Per step (DNS, TCP, TLS); 0 = MG_REP_PROBE_TIMEOUT_MS. */
	unsigned timeout_ms;
};

/** One certificate, as found in a file or sent by the server. */
struct mg_rep_cert_info {
	bool present;
	char subject_cn[256];
	char issuer_cn[256];
	char names[256]; /**< subject alternative names: "DNS:etcd, IP:127.0.0.1" */
	char not_before[32], not_after[32]; /**< RFC 3339, UTC */
	bool expired, not_yet_valid;
	char error[256]; /**< why the file could not be used, "" when it could */
};

struct mg_rep_probe {
	char endpoint[512];
	char host[256];
	unsigned port;
	bool tls;        /**< https */
	int rc;          /**< the first failure (as returned), 0 when every step passed */
	char error[640]; /**< "<step>: <what failed>" of the first failure, "" when none */

	/* DNS */
	bool dns_ran;
	int dns_rc;
	char dns_error[256];
	size_t n_addrs;
	char addrs[MG_REP_PROBE_MAX_ADDRS][64]; /**< numeric addresses, resolver order */
	uint64_t dns_us;

	/* TCP */
	bool tcp_ran;
	int tcp_rc;
	char tcp_error[256];
	char tcp_addr[64]; /**< "127.0.0.1:2379", "[::1]:2379": connected, or the last tried */
	uint64_t tcp_us;

	/* TLS */
	bool tls_ran;
	int tls_rc;
	char tls_error[512];
	char tls_version[32]; /**< "TLSv1.3" once a handshake ended */
	char tls_cipher[64];
	uint64_t tls_us;
	bool server_name_ok;  /**< the server's certificate is valid for host */
	bool client_accepted; /**< the server kept the connection after checking our certificate */

	/** trusted-ca-file's first certificate, our cert-file (CN = the etcd user), the server's leaf */
	struct mg_rep_cert_info ca, client, server;
};

/**
 * Probe one endpoint: endpoint, DNS, TCP, then TLS for https. A step runs
 * only when the ones before it passed; a step that ran has its *_ran flag
 * set. Each step ends within about opts->timeout_ms. The local files are
 * read even when the network steps fail, so their problems show up too.
 * The DNS lookup runs in a thread of its own that may outlive a timed-out
 * call (getaddrinfo cannot be interrupted); it frees its own state.
 * @param o    the endpoint and files
 * @param out  zeroed, then filled with what each step found
 * @return 0 when every step passed, else the negative errno of the first
 *   failure (list above), also in out->rc with out->error
 */
int mg_rep_probe_run(const struct mg_rep_probe_opts *o, struct mg_rep_probe *out);

/**
 * The result as a new JSON object (for `troubleshoot -o json`):
 * {"endpoint","host","port","scheme":"https"|"http","ok","error",
 *  "dns":{"ok","error","addresses":[...],"duration_us"},
 *  "tcp":{"ok","error","address","duration_us"},
 *  "tls":{"ok","error","version","cipher","server_name_ok",
 *         "client_accepted","duration_us"},
 *  "certificates":{"trusted_ca","client","server"}}; a step that did not
 * run (tls for http) is null, a certificate that is absent is null, one
 * whose file failed is {"present":false,"error":...}; a certificate is
 * {"present","subject_cn","issuer_cn","names","not_before","not_after",
 * "expired","not_yet_valid"}.
 * @return the object, or NULL (out of memory)
 */
json_t *mg_rep_probe_json(const struct mg_rep_probe *p);

/**
 * The result as human lines, each indented by two spaces, e.g.
 *   "  dns: 127.0.0.1 (0.1 ms)\n"
 *   "  tcp: connected to 127.0.0.1:2379 (0.2 ms)\n"
 *   "  tls: TLSv1.3, server certificate CN=etcd valid until ...; client
 *    certificate CN=remote valid until ... (1.4 ms)\n"
 * then one line per certificate, and "  error: ..." after a failure.
 * @return the length of the whole text (as snprintf: a result >= @p size
 *   means @p buf holds a truncated, NUL-terminated part), or -EINVAL
 */
int mg_rep_probe_text(const struct mg_rep_probe *p, char *buf, size_t size);

#endif /* REP_PROBE_H */
