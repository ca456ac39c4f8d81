/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The /metrics endpoint: libmicrohttpd with its internal polling thread,
 * one request at a time, so a scrape costs one snapshot on the heap and
 * one rendered buffer, whatever the number of clients. We bind the
 * listening socket ourselves and hand it to libmicrohttpd: that way a bad
 * address or a port in use comes back as a precise errno and message
 * instead of libmicrohttpd's bare NULL, and ":port" can fall back to IPv4
 * on hosts without IPv6.
 *
 * The collect callback runs on libmicrohttpd's thread; the daemon makes it
 * thread-safe. Nothing here touches the data path.
 */
#include "mg_metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct mg_metrics_http {
	struct MHD_Daemon *mhd;
	mg_metrics_collect_fn collect;
	void *arg;
	uint16_t port;
};

int
mg_metrics_parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len,
                        struct mg_error *err)
{
	char host[256];
	const char *colon, *port_s;
	unsigned long port;
	char *end;

	memset(ss, 0, sizeof(*ss));
	if (listen == NULL || *listen == '\0')
		goto bad;
	if (listen[0] == '[') {
		const char *rb = strchr(listen, ']');

		if (rb == NULL || rb[1] != ':' || (size_t)(rb - listen - 1) >= sizeof(host))
			goto bad;
		memcpy(host, listen + 1, (size_t)(rb - listen - 1));
		host[rb - listen - 1] = '\0';
		port_s = rb + 2;
		if (host[0] == '\0')
			goto bad;
	} else {
		colon = strrchr(listen, ':');
		if (colon == NULL || (size_t)(colon - listen) >= sizeof(host))
			goto bad;
		memcpy(host, listen, (size_t)(colon - listen));
		host[colon - listen] = '\0';
		if (strchr(host, ':') != NULL) {
			mg_error_set(err, NULL, 0, 0,
			             "metrics listen '%s': put an IPv6 address in brackets, as "
			             "[::1]:9100",
			             listen);
			return mg_errno_set(EINVAL);
		}
		port_s = colon + 1;
	}
	if (*port_s < '0' || *port_s > '9')
		goto bad;
	errno = 0;
	port = strtoul(port_s, &end, 10);
	if (errno != 0 || *end != '\0' || port > 65535)
		goto bad;

	if (host[0] == '\0') {
		/* Every address: dual-stack IPv6 (mg_metrics_http_start falls back to IPv4). */
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_any;
		a->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a);
		return 0;
	}
	{
		struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC};
		struct addrinfo *res = NULL;
		int rc = getaddrinfo(host, NULL, &hints, &res);

		if (rc != 0 || res == NULL || res->ai_addrlen > sizeof(*ss)) {
			mg_error_set(err, NULL, 0, 0,
			             "metrics listen '%s': cannot resolve '%s': %s", listen, host,
			             rc != 0 ? gai_strerror(rc) : "no address");
			if (res != NULL)
				freeaddrinfo(res);
			return mg_errno_set(EINVAL);
		}
		memcpy(ss, res->ai_addr, res->ai_addrlen);
		*len = res->ai_addrlen;
		freeaddrinfo(res);
		if (ss->ss_family == AF_INET)
			((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
		else if (ss->ss_family == AF_INET6)
			((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
		else
			goto bad;
	}
	return 0;
bad:
	mg_error_set(err, NULL, 0, 0,
	             "metrics listen '%s': expected host:port, [v6]:port or :port (port 0-65535)",
	             listen ? listen : "");
	return mg_errno_set(EINVAL);
}

/* A bound, listening, close-on-exec TCP socket, or -errno. */
static int
listen_socket(struct sockaddr_storage *ss, socklen_t len)
{
	int fd, one = 1, zero = 0, e;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 && errno == EAFNOSUPPORT && ss->ss_family == AF_INET6 &&
	    memcmp(&a6->sin6_addr, &in6addr_any, sizeof(in6addr_any)) == 0) {
		/* ":port" on a host without IPv6: every IPv4 address. */
		uint16_t port = a6->sin6_port;
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;

		memset(ss, 0, sizeof(*ss));
		a4->sin_family = AF_INET;
		a4->sin_addr.s_addr = htonl(INADDR_ANY);
		a4->sin_port = port;
		len = sizeof(*a4);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	}
	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss->ss_family == AF_INET6 &&
	    memcmp(&a6->sin6_addr, &in6addr_any, sizeof(in6addr_any)) == 0)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, (struct sockaddr *)ss, len) != 0 || listen(fd, MG_METRICS_HTTP_MAX_CONN) != 0)
		goto err;
	return fd;
err:
	e = errno;
	close(fd);
	return -e;
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	MG_WARN("metrics http: %s", line);
}

static enum MHD_Result
reply_text(struct MHD_Connection *c, unsigned status, const char *text, const char *allow)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (allow != NULL)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
serve_metrics(struct mg_metrics_http *h, struct MHD_Connection *c)
{
	struct mg_metrics_snapshot *snap;
	struct mg_metrics_buf b;
	struct MHD_Response *r;
	enum MHD_Result ret;
	int rc;

	snap = calloc(1, sizeof(*snap));
	if (snap == NULL)
		return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory\n", NULL);
	rc = h->collect(h->arg, snap);
	if (rc != 0) {
		free(snap);
		return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "metrics unavailable\n", NULL);
	}
	mg_metrics_buf_init(&b);
	rc = mg_metrics_render(snap, &b);
	free(snap);
	if (rc != 0) {
		mg_metrics_buf_free(&b);
		return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory\n", NULL);
	}
	/* libmicrohttpd takes the buffer and free()s it. */
	r = MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		mg_metrics_buf_free(&b);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	static int seen; /* a marker: the request's headers were seen */
	struct mg_metrics_http *h = cls;

	(void)version;
	(void)upload_data;
	/*
	 * Errors are answered at the first call: a body, if any, is never
	 * read and libmicrohttpd closes the connection after the answer.
	 */
	if (strcmp(url, "/metrics") != 0)
		return reply_text(c, MHD_HTTP_NOT_FOUND, "not found; try /metrics\n", NULL);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n",
		                  "GET, HEAD");
	/*
	 * A scrape is answered once the request is complete (the second call),
	 * so that libmicrohttpd keeps the connection alive for the next one:
	 * a response queued at the first call makes it close the connection.
	 */
	if (*con_cls == NULL) {
		*con_cls = &seen;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0; /* a GET with a body: ignored */
		return MHD_YES;
	}
	/* For HEAD, libmicrohttpd sends the headers (Content-Length included) and no body. */
	return serve_metrics(h, c);
}

struct mg_metrics_http *
mg_metrics_http_start(const char *listen, mg_metrics_collect_fn collect, void *arg,
                      struct mg_error *err)
{
	struct mg_metrics_http *h = NULL;
	struct sockaddr_storage ss;
	socklen_t len;
	unsigned flags;
	int fd = -1, rc;

	if (collect == NULL) {
		mg_error_set(err, NULL, 0, 0, "metrics: no collect function");
		rc = -EINVAL;
		goto err;
	}
	rc = mg_metrics_parse_listen(listen, &ss, &len, err);
	if (rc != 0)
		goto err;
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		rc = -ENOMEM;
		mg_error_set(err, NULL, 0, 0, "metrics: out of memory");
		goto err;
	}
	h->collect = collect;
	h->arg = arg;
	fd = listen_socket(&ss, len);
	if (fd < 0) {
		rc = fd;
		mg_error_set(err, NULL, 0, 0, "metrics listen '%s': %s", listen, strerror(-rc));
		goto err;
	}
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
		rc = -errno;
		mg_error_set(err, NULL, 0, 0, "metrics listen '%s': getsockname: %s", listen,
		             strerror(-rc));
		goto err;
	}
	h->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                         : ((struct sockaddr_in *)&ss)->sin_port);

	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* The logger first, so that libmicrohttpd uses it for every message. */
	h->mhd = MHD_start_daemon(flags, h->port, NULL, NULL, on_request, h,
	                          MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	                          MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
	                          (unsigned)MG_METRICS_HTTP_MAX_CONN, MHD_OPTION_CONNECTION_TIMEOUT,
	                          (unsigned)MG_METRICS_HTTP_TIMEOUT_S, MHD_OPTION_END);
	/*
	 * The socket is libmicrohttpd's from now on, even on failure: whether
	 * it closes a given socket when it fails to start is not documented,
	 * and a leak on a path that ends the daemon beats a double close.
	 */
	fd = -1;
	if (h->mhd == NULL) {
		rc = errno ? -errno : -EIO;
		mg_error_set(err, NULL, 0, 0, "metrics listen '%s': libmicrohttpd did not start",
		             listen);
		goto err;
	}
	return h;
err:
	if (fd >= 0)
		close(fd);
	free(h);
	errno = -rc;
	return NULL;
}

uint16_t
mg_metrics_http_port(const struct mg_metrics_http *h)
{
	return h->port;
}

void
mg_metrics_http_stop(struct mg_metrics_http *h)
{
	if (h == NULL)
		return;
	/* Joins the polling thread and closes the listening socket it was given. */
	MHD_stop_daemon(h->mhd);
	free(h);
}
