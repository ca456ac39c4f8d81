/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The etcd client's object and its channel: options and endpoints checked
 * once, PEM files read once, one gRPC channel at a time to one endpoint
 * (made lazily, dropped after a failure that looks like the endpoint's so
 * that the next call moves to the next endpoint with a fresh connection
 * and no gRPC backoff state), the wait for a connection bounded by the
 * connect timeout, gRPC statuses mapped to errno values, and gRPC's own
 * log kept quiet but its last error line kept, since that is the only
 * place gRPC says why a TLS handshake failed.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc_security.h>
#include <grpc/support/log.h>

#include "etcd_priv.h"

char etcd_tag_call, etcd_tag_conn;

/* ---- gRPC's log ---- */

static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_last[512];
static unsigned long log_n;
static bool log_debug;

static void
log_capture(gpr_log_func_args *a)
{
	if (log_debug)
		fprintf(stderr, "grpc %s %s:%d: %s\n", gpr_log_severity_string(a->severity),
		        a->file, a->line, a->message);
	if (a->severity != GPR_LOG_SEVERITY_ERROR)
		return;
	pthread_mutex_lock(&log_lock);
	snprintf(log_last, sizeof(log_last), "%s", a->message);
	log_n++;
	pthread_mutex_unlock(&log_lock);
}

/* MG_ETCD_DEBUG=1 prints every gRPC log line; otherwise errors are only kept. */
static void
log_setup(void)
{
	const char *d = getenv("MG_ETCD_DEBUG");

	log_debug = d != NULL && *d != '\0' && strcmp(d, "0") != 0;
	gpr_set_log_function(log_capture);
	gpr_set_log_verbosity(log_debug ? GPR_LOG_SEVERITY_DEBUG : GPR_LOG_SEVERITY_ERROR);
}

unsigned long
etcd_log_seq(void)
{
	pthread_mutex_lock(&log_lock);
	unsigned long n = log_n;
	pthread_mutex_unlock(&log_lock);
	return n;
}

void
mg_etcd_grpc_last_log(char *buf, size_t size)
{
	if (size == 0)
		return;
	pthread_mutex_lock(&log_lock);
	snprintf(buf, size, "%s", log_last);
	pthread_mutex_unlock(&log_lock);
}

/* ---- statuses ---- */

static const char *const status_names[] = {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
};

const char *
mg_etcd_status_name(int code)
{
	if (code == -1)
		return "LOCAL";
	if (code < 0 || (size_t)code >= MG_ARRAY_SIZE(status_names))
		return "UNKNOWN_STATUS";
	return status_names[code];
}

static int
status_errno(grpc_status_code code)
{
	switch (code) {
	case GRPC_STATUS_OK:
		return 0;
	case GRPC_STATUS_DEADLINE_EXCEEDED:
		return -ETIMEDOUT;
	case GRPC_STATUS_PERMISSION_DENIED:
	case GRPC_STATUS_UNAUTHENTICATED:
		return -EACCES;
	case GRPC_STATUS_OUT_OF_RANGE:
		return -ERANGE;
	case GRPC_STATUS_RESOURCE_EXHAUSTED:
		return -EMSGSIZE;
	case GRPC_STATUS_UNAVAILABLE:
		return -ECONNREFUSED;
	case GRPC_STATUS_INVALID_ARGUMENT:
		return -EINVAL;
	default:
		return -EIO;
	}
}

int
etcd_status_fail(struct mg_etcd *e, unsigned gen, const char *method, grpc_status_code code,
                 const char *details, struct mg_error *err)
{
	e->last_status = (int)code;
	if (code == GRPC_STATUS_OK)
		return 0;
	mg_error_set(err, NULL, 0, 0, "etcd %s: %s: %s", method, mg_etcd_status_name((int)code),
	             details && *details ? details : "(no details)");
	/* A connection that failed, or a server that did not answer in
	 * time: the next call starts afresh, on the next endpoint. */
	if (code == GRPC_STATUS_UNAVAILABLE || code == GRPC_STATUS_DEADLINE_EXCEEDED)
		etcd_channel_drop(e, gen);
	return status_errno(code);
}

int
etcd_local_fail(struct mg_etcd *e, const char *method, int rc, struct mg_error *err,
                const char *what)
{
	e->last_status = -1;
	mg_error_set(err, NULL, 0, 0, "etcd %s: %s", method, what);
	return rc;
}

int
mg_etcd_last_status(const struct mg_etcd *e)
{
	return e->last_status;
}

const char *
mg_etcd_endpoint(const struct mg_etcd *e)
{
	return e->endpoints[e->cur];
}

gpr_timespec
etcd_deadline(unsigned ms)
{
	return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
	                    gpr_time_from_millis((int64_t)ms, GPR_TIMESPAN));
}

/* ---- prefix ---- */

int
mg_etcd_prefix_end(const char *prefix, size_t len, char *out, size_t size)
{
	for (size_t i = len; i-- > 0;) {
		if ((unsigned char)prefix[i] == 0xff)
			continue;
		if (i + 1 > size)
			return -ENAMETOOLONG;
		memcpy(out, prefix, i);
		out[i] = (char)((unsigned char)prefix[i] + 1);
		return (int)(i + 1);
	}
	if (size < 1)
		return -ENAMETOOLONG;
	out[0] = '\0';
	return 1;
}

/* ---- options ---- */

/* "https://host:port" -> gRPC target; *tls tells the scheme. */
static int
endpoint_target(const char *ep, bool *tls, char **target, struct mg_error *err)
{
	struct mg_hostport hp;
	const char *why = NULL, *rest;
	char buf[300], t[320];
	struct in_addr a4;

	if (strncmp(ep, "https://", 8) == 0) {
		*tls = true;
		rest = ep + 8;
	} else if (strncmp(ep, "http://", 7) == 0) {
		*tls = false;
		rest = ep + 7;
	} else {
		mg_error_set(err, NULL, 0, 0, "etcd: endpoint '%s': not http:// or https://", ep);
		return -EINVAL;
	}
	size_t n = strlen(rest);
	if (n > 0 && rest[n - 1] == '/')
		n--;
	if (n >= sizeof(buf)) {
		mg_error_set(err, NULL, 0, 0, "etcd: endpoint '%s': too long", ep);
		return -EINVAL;
	}
	memcpy(buf, rest, n);
	buf[n] = '\0';
	if (mg_hostport_parse(buf, MG_HOSTPORT_HOST_REQUIRED, &hp, &why) < 0 || hp.port == 0) {
		mg_error_set(err, NULL, 0, 0, "etcd: endpoint '%s': %s", ep, why ? why : "no port");
		return -EINVAL;
	}
	if (hp.bracketed)
		snprintf(t, sizeof(t), "ipv6:[%s]:%u", hp.host, hp.port);
	else if (inet_pton(AF_INET, hp.host, &a4) == 1)
		snprintf(t, sizeof(t), "ipv4:%s:%u", hp.host, hp.port);
	else
		snprintf(t, sizeof(t), "dns:///%s:%u", hp.host, hp.port);
	*target = strdup(t);
	return *target ? 0 : -ENOMEM;
}

/* The whole of a PEM file, NUL-terminated (at most 1 MiB). */
static int
read_pem(const char *path, char **out, struct mg_error *err)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		int rc = -errno;
		mg_error_set(err, NULL, 0, 0, "etcd: %s: %s", path, strerror(-rc));
		return rc;
	}
	size_t cap = 1 << 20, n;
	char *buf = malloc(cap + 1);
	if (buf == NULL) {
		fclose(f);
		return -ENOMEM;
	}
	n = fread(buf, 1, cap + 1, f);
	int bad = ferror(f);
	fclose(f);
	if (bad || n > cap || n == 0) {
		free(buf);
		mg_error_set(err, NULL, 0, 0, "etcd: %s: %s", path,
		             bad ? "read error"
		             : n ? "larger than 1 MiB"
		                 : "empty");
		return -EINVAL;
	}
	buf[n] = '\0';
	*out = buf;
	return 0;
}

static int
opts_check(struct mg_etcd *e, const struct mg_etcd_opts *o, struct mg_error *err)
{
	int rc;

	if (o->n_endpoints == 0 || o->n_endpoints > MG_ETCD_MAX_ENDPOINTS || !o->endpoints) {
		mg_error_set(err, NULL, 0, 0, "etcd: 1 to %d endpoints, not %zu",
		             MG_ETCD_MAX_ENDPOINTS, o->n_endpoints);
		return -EINVAL;
	}
	for (size_t i = 0; i < o->n_endpoints; i++) {
		bool tls;
		if (o->endpoints[i] == NULL)
			return -EINVAL;
		rc = endpoint_target(o->endpoints[i], &tls, &e->targets[i], err);
		if (rc < 0)
			return rc;
		e->endpoints[i] = strdup(o->endpoints[i]);
		if (e->endpoints[i] == NULL)
			return -ENOMEM;
		e->n_endpoints++;
		if (i > 0 && tls != e->tls) {
			mg_error_set(err, NULL, 0, 0, "etcd: endpoints mix http:// and https://");
			return -EINVAL;
		}
		e->tls = tls;
	}
	if ((o->cert_file == NULL) != (o->key_file == NULL)) {
		mg_error_set(err, NULL, 0, 0, "etcd: a client certificate needs its key");
		return -EINVAL;
	}
	if (e->tls && o->ca_file && (rc = read_pem(o->ca_file, &e->ca_pem, err)) < 0)
		return rc;
	if (e->tls && o->cert_file && (rc = read_pem(o->cert_file, &e->cert_pem, err)) < 0)
		return rc;
	if (e->tls && o->key_file && (rc = read_pem(o->key_file, &e->key_pem, err)) < 0)
		return rc;
	e->timeout_ms = o->timeout_ms ? o->timeout_ms : MG_ETCD_TIMEOUT_MS_DEFAULT;
	e->connect_timeout_ms =
	        o->connect_timeout_ms ? o->connect_timeout_ms : MG_ETCD_CONNECT_TIMEOUT_MS_DEFAULT;
	e->keepalive_ms = o->keepalive_ms ? o->keepalive_ms : MG_ETCD_KEEPALIVE_MS_DEFAULT;
	e->keepalive_timeout_ms = o->keepalive_timeout_ms ? o->keepalive_timeout_ms
	                                                  : MG_ETCD_KEEPALIVE_TIMEOUT_MS_DEFAULT;
	e->max_recv = o->max_recv ? o->max_recv : MG_ETCD_MAX_RECV_DEFAULT;
	if (e->max_recv > INT_MAX)
		e->max_recv = INT_MAX;
	return 0;
}

static void
free_fields(struct mg_etcd *e)
{
	for (size_t i = 0; i < MG_ETCD_MAX_ENDPOINTS; i++) {
		free(e->endpoints[i]);
		free(e->targets[i]);
	}
	free(e->ca_pem);
	free(e->cert_pem);
	if (e->key_pem) {
		explicit_bzero(e->key_pem, strlen(e->key_pem));
		free(e->key_pem);
	}
}

/* ---- channel ---- */

static grpc_arg
int_arg(const char *key, int v)
{
	grpc_arg a;

	memset(&a, 0, sizeof(a));
	a.type = GRPC_ARG_INTEGER;
	a.key = (char *)key;
	a.value.integer = v;
	return a;
}

static int
channel_make(struct mg_etcd *e)
{
	/*
	 * Keepalive pings only while a call is open: etcd's server refuses
	 * pings without streams (GOAWAY too_many_pings). Pings go on without
	 * data frames (an idle watch), and no faster than keepalive_ms.
	 * Reconnection backoff is short and bounded (the caller backs off).
	 * gRPC's connect deadline (the "min reconnect backoff") is a second
	 * past ours, so that a hung handshake ends in our DEADLINE_EXCEEDED
	 * with a clear message, not in a race between the two. No proxy from the
	 * environment, no retries behind the caller's back, and a subchannel
	 * pool of its own: two mg_etcd never share a connection.
	 */
	grpc_arg args[] = {
	        int_arg(GRPC_ARG_KEEPALIVE_TIME_MS, (int)e->keepalive_ms),
	        int_arg(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, (int)e->keepalive_timeout_ms),
	        int_arg(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0),
	        int_arg(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0),
	        int_arg(GRPC_ARG_HTTP2_MIN_SENT_PING_INTERVAL_WITHOUT_DATA_MS,
	                (int)e->keepalive_ms),
	        int_arg(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, (int)e->max_recv),
	        int_arg(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, (int)e->connect_timeout_ms + 1000),
	        int_arg(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 500),
	        int_arg(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000),
	        int_arg(GRPC_ARG_ENABLE_RETRIES, 0),
	        int_arg(GRPC_ARG_ENABLE_HTTP_PROXY, 0),
	        int_arg(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1),
	};
	grpc_channel_args ca = {MG_ARRAY_SIZE(args), args};
	grpc_channel_credentials *creds;

	if (e->tls) {
		grpc_ssl_pem_key_cert_pair pair = {e->key_pem, e->cert_pem};
		creds = grpc_ssl_credentials_create(e->ca_pem, e->cert_pem ? &pair : NULL, NULL,
		                                    NULL);
	} else {
		creds = grpc_insecure_credentials_create();
	}
	if (creds == NULL)
		return -ENOMEM;
	e->ch = grpc_channel_create(e->targets[e->cur], creds, &ca);
	e->ch_gen++;
	grpc_channel_credentials_release(creds);
	return e->ch ? 0 : -ENOMEM;
}

void
etcd_channel_drop(struct mg_etcd *e, unsigned gen)
{
	if (e->ch == NULL || e->ch_gen != gen)
		return;
	/* Calls still open on it (a watch) keep what they need. */
	grpc_channel_destroy(e->ch);
	e->ch = NULL;
	e->cur = (e->cur + 1) % e->n_endpoints;
}

int
etcd_channel_ready(struct mg_etcd *e, const char *method, bool need_ready, unsigned long seq0,
                   struct mg_error *err)
{
	char msg[400];

	if (e->ch == NULL && channel_make(e) < 0)
		return etcd_local_fail(e, method, -ENOMEM, err, "cannot make a gRPC channel");
	gpr_timespec deadline = etcd_deadline(e->connect_timeout_ms);
	for (;;) {
		grpc_connectivity_state st = grpc_channel_check_connectivity_state(e->ch, 1);
		if (st == GRPC_CHANNEL_READY)
			return 0;
		/* A failed channel fails a unary call at once, with gRPC's
		 * reason in the status details; a stream would only fail
		 * later, so it is failed here. */
		if (st == GRPC_CHANNEL_TRANSIENT_FAILURE && !need_ready)
			return 0;
		if (st == GRPC_CHANNEL_TRANSIENT_FAILURE) {
			int n = snprintf(msg, sizeof(msg), "no connection to %s",
			                 e->endpoints[e->cur]);
			if (etcd_log_seq() != seq0 && n > 0 && (size_t)n < sizeof(msg)) {
				char last[256];
				mg_etcd_grpc_last_log(last, sizeof(last));
				snprintf(msg + n, sizeof(msg) - (size_t)n, "; gRPC log: %s", last);
			}
			return etcd_status_fail(e, e->ch_gen, method, GRPC_STATUS_UNAVAILABLE, msg,
			                        err);
		}
		if (st == GRPC_CHANNEL_SHUTDOWN)
			break;
		if (gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), deadline) >= 0)
			break;
		grpc_channel_watch_connectivity_state(e->ch, st, deadline, e->cq, &etcd_tag_conn);
		grpc_completion_queue_pluck(e->cq, &etcd_tag_conn,
		                            gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	}
	snprintf(msg, sizeof(msg), "no connection to %s within %u ms (connect timeout)",
	         e->endpoints[e->cur], e->connect_timeout_ms);
	return etcd_status_fail(e, e->ch_gen, method, GRPC_STATUS_DEADLINE_EXCEEDED, msg, err);
}

/* ---- open / close ---- */

struct mg_etcd *
mg_etcd_open(const struct mg_etcd_opts *o, struct mg_error *err)
{
	struct mg_etcd *e;
	int rc;

	if (o == NULL) {
		errno = EINVAL;
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	rc = opts_check(e, o, err);
	if (rc < 0) {
		if (rc == -ENOMEM)
			mg_error_set(err, NULL, 0, 0, "etcd: out of memory");
		free_fields(e);
		free(e);
		errno = -rc;
		return NULL;
	}
	pthread_once(&log_once, log_setup);
	grpc_init();
	e->cq = grpc_completion_queue_create_for_pluck(NULL);
	if (e->cq == NULL || channel_make(e) < 0) {
		if (e->cq)
			grpc_completion_queue_destroy(e->cq);
		grpc_shutdown();
		free_fields(e);
		free(e);
		mg_error_set(err, NULL, 0, 0, "etcd: cannot make a gRPC channel");
		errno = ENOMEM;
		return NULL;
	}
	return e;
}

void
mg_etcd_close(struct mg_etcd *e)
{
	if (e == NULL)
		return;
	if (e->n_watches)
		MG_ERR("etcd: %u watch(es) still open at close", e->n_watches);
	if (e->ch)
		grpc_channel_destroy(e->ch);
	grpc_completion_queue_shutdown(e->cq);
	while (grpc_completion_queue_pluck(e->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
	               .type != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(e->cq);
	free_fields(e);
	free(e);
	grpc_shutdown();
}
