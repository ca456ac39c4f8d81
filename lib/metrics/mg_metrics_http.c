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
 * libmicrohttpd bounds only idle time, and every byte resets it: clients
 * that trickle a header line now and then would hold every slot for ever
 * and no scrape would get in. So this file keeps its own table of the
 * connections, filled and emptied from libmicrohttpd's connection
 * notifications, with the state of each: waiting for a request head
 * (since its accept or the end of its previous exchange) or busy with an
 * exchange (since its head arrived, seen by the access handler; back to
 * waiting when libmicrohttpd reports the request completed). A watchdog
 * thread cuts a connection whose current state has lasted longer than the
 * timeout (a kept-alive one that has received nothing since its last
 * exchange is merely idle: closed, not counted); a newcomer that finds the table full, or its peer address
 * holding half of it, has the connection that has waited longest for a
 * request cut instead of being turned away (one in a long exchange comes
 * next; a young exchange, a scrape being answered, is never cut). Peers
 * are told apart by address alone, and a scraper may share its address
 * with the slow clients (loopback): eviction, not a per-address refusal,
 * is what lets it in.
 *
 * A connection is cut with shutdown(2) on its socket, never close(2):
 * libmicrohttpd sees the end of the stream, closes the connection in its
 * own time and then tells us (MHD_CONNECTION_NOTIFY_CLOSED, which it
 * calls before it closes the descriptor). The table's lock is held from
 * the check that the connection is still in the table to the shutdown,
 * and the notification takes that lock, so the descriptor cannot have
 * been closed and reused under us.
 *
 * A scrape is whatever the program's render callback appends (the
 * gateway's is render_snapshot: its collect callback, then
 * mg_metrics_render), on libmicrohttpd's thread; the program makes it
 * thread-safe. Nothing here touches the data path.
 */
#include "mg_metrics.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <linux/tcp.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define NS_PER_MS 1000000ull
/* An exchange younger than this is not cut to make room: a scrape being answered. */
#define BUSY_GRACE_NS 1000000000ull
/*
 * libmicrohttpd's own connection limit is above ours: it counts a
 * newcomer before we see it, and a connection we cut until its loop has
 * closed it. At its limit it stops accepting for a moment (it does not
 * refuse), so the slack only has to cover a few loop iterations.
 */
#define MHD_SLACK 32
/*
 * Send buffer of a connection: a scrape fits (the kernel doubles it), and
 * a client that never reads holds no more (the default grows to MiBs).
 */
#define SNDBUF_BYTES (256 * 1024)
/* Pending connections the kernel queues while libmicrohttpd catches up. */
#define LISTEN_BACKLOG 128
/* libmicrohttpd's messages shown per window; the rest are counted. */
#define LOG_BURST 10
#define LOG_WINDOW_NS 10000000000ull

/* One connection libmicrohttpd serves; a slot of the table while used. */
struct conn {
	bool used;
	bool cut;  /* shut down by us; libmicrohttpd has yet to close it */
	bool busy; /* its request head arrived: in an exchange */
	bool kept; /* an exchange ended on it, and rx_mark was read then */
	int fd;
	uint64_t since;       /* ns: start of the current state (accept, head, end of exchange) */
	uint64_t rx_mark;     /* bytes the kernel had received when its last exchange ended */
	struct in6_addr peer; /* IPv4 as v4-mapped */
};

struct mg_metrics_http {
	struct MHD_Daemon *mhd;
	mg_metrics_render_fn render; /* a scrape's families */
	void *arg;
	bool own_families;             /* append the endpoint's own after render's */
	mg_metrics_collect_fn collect; /* the gateway's snapshot (render_snapshot) */
	void *collect_arg;
	uint16_t port;
	unsigned max_conn; /* slots */
	unsigned max_peer; /* slots one peer address may hold */
	uint64_t timeout_ns;

	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t wake;  /* the watchdog's sleep; signalled to stop it */
	pthread_t watchdog;
	bool watchdog_started;
	bool stopping;
	unsigned n_conns; /* entries of conns: libmicrohttpd's limit */
	struct conn *conns;
	uint64_t cut[MG_METRICS_HTTP_CUT_N];

	pthread_mutex_t log_lock; /* guards the log window (mhd_log) */
	uint64_t log_start;
	unsigned log_shown;
	uint64_t log_left_out;
};

static const char *const cut_labels[MG_METRICS_HTTP_CUT_N] = {
        [MG_METRICS_HTTP_CUT_REQUEST_TIMEOUT] = "request_timeout",
        [MG_METRICS_HTTP_CUT_RESPONSE_TIMEOUT] = "response_timeout",
        [MG_METRICS_HTTP_CUT_EVICTED] = "evicted",
        [MG_METRICS_HTTP_CUT_REFUSED] = "refused",
};

const char *
mg_metrics_http_cut_label(unsigned r)
{
	return r < MG_METRICS_HTTP_CUT_N ? cut_labels[r] : NULL;
}

int
mg_metrics_parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len,
                        struct mg_error *err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC};
	struct addrinfo *res = NULL;
	struct mg_hostport hp;
	const char *why;
	int rc;

	memset(ss, 0, sizeof(*ss));
	if (mg_hostport_parse(listen, 0, &hp, &why) != 0) {
		mg_error_set(err, NULL, 0, 0,
		             "metrics listen '%s': %s (expected host:port, [v6]:port or :port)",
		             listen ? listen : "", why);
		return mg_errno_set(EINVAL);
	}
	if (hp.host[0] == '\0') {
		/* Every address: dual-stack IPv6 (mg_metrics_http_start falls back to IPv4). */
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_any;
		a->sin6_port = htons(hp.port);
		*len = sizeof(*a);
		return 0;
	}
	rc = getaddrinfo(hp.host, NULL, &hints, &res);
	if (rc != 0 || res == NULL || res->ai_addrlen > sizeof(*ss) ||
	    (res->ai_family != AF_INET && res->ai_family != AF_INET6)) {
		mg_error_set(err, NULL, 0, 0, "metrics listen '%s': cannot resolve '%s': %s",
		             listen, hp.host, rc != 0 ? gai_strerror(rc) : "no address");
		if (res != NULL)
			freeaddrinfo(res);
		return mg_errno_set(EINVAL);
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(hp.port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(hp.port);
	return 0;
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
	if (bind(fd, (struct sockaddr *)ss, len) != 0 || listen(fd, LISTEN_BACKLOG) != 0)
		goto err;
	return fd;
err:
	e = errno;
	close(fd);
	return -e;
}

/*
 * libmicrohttpd's messages, at most LOG_BURST per LOG_WINDOW_NS: each cut
 * connection makes one ("closed by remote side"), and a flood of slow
 * clients must not become a flood of log lines.
 */
static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct mg_metrics_http *h = cls;
	uint64_t now = mg_time_ns(), left_out = 0;
	char line[512];
	bool show;

	pthread_mutex_lock(&h->log_lock);
	if (now - h->log_start >= LOG_WINDOW_NS) {
		left_out = h->log_left_out;
		h->log_start = now;
		h->log_shown = 0;
		h->log_left_out = 0;
	}
	show = h->log_shown < LOG_BURST;
	if (show)
		h->log_shown++;
	else
		h->log_left_out++;
	pthread_mutex_unlock(&h->log_lock);
	if (left_out > 0)
		MG_WARN("metrics http: %" PRIu64 " more messages left out (at most %u per %u s)",
		        left_out, LOG_BURST, (unsigned)(LOG_WINDOW_NS / 1000000000ull));
	if (!show)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	MG_WARN("metrics http: %s", line);
}

/* ---- the connection table ---- */

/* The peer address of @p c, IPv4 as v4-mapped IPv6 (a dual-stack socket may show either). */
static void
peer_of(struct MHD_Connection *c, struct in6_addr *out)
{
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;

	memset(out, 0, sizeof(*out));
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET6) {
		*out = ((const struct sockaddr_in6 *)sa)->sin6_addr;
	} else if (sa->sa_family == AF_INET) {
		out->s6_addr[10] = 0xff;
		out->s6_addr[11] = 0xff;
		memcpy(&out->s6_addr[12], &((const struct sockaddr_in *)sa)->sin_addr, 4);
	}
}

/* Our entry for @p c, or NULL (not tracked). libmicrohttpd's thread. */
static struct conn *
conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci != NULL ? ci->socket_context : NULL;
}

/*
 * Cut @p e for @p why. h->lock held, and @p e in the table: libmicrohttpd
 * has not closed its descriptor (it tells us first, under the same lock).
 * SHUT_RDWR wakes its loop with the end of the stream; it closes the
 * connection there.
 */
static void
cut(struct mg_metrics_http *h, struct conn *e, enum mg_metrics_http_cut why)
{
	/*
	 * Linger 0: libmicrohttpd's close() then resets the connection and
	 * drops what the client left unread, instead of leaving the kernel
	 * an orphan socket that keeps its buffers while the client never
	 * opens its window.
	 */
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	(void)setsockopt(e->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	(void)shutdown(e->fd, SHUT_RDWR);
	e->cut = true;
	h->cut[why]++;
}

/* Bytes received on TCP socket @p fd so far (TCP_INFO), or false. */
static bool
rx_bytes(int fd, uint64_t *out)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
	    len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received))
		return false;
	*out = ti.tcpi_bytes_received;
	return true;
}

/*
 * A kept-alive connection that has received nothing since its last
 * exchange ended: it is idle, not slow, and closing it is no cut (a
 * scraper keeps its connection between scrapes further apart than the
 * timeout). h->lock held.
 */
static bool
idle(const struct conn *e)
{
	uint64_t rx;

	return !e->busy && e->kept && rx_bytes(e->fd, &rx) && rx == e->rx_mark;
}

/*
 * The end of a request head is in @p fd's receive queue, not yet read by
 * libmicrohttpd: the request has arrived, it just has not been parsed (a
 * newcomer accepted in the same loop iteration as its elders). Peeking
 * takes nothing from the queue. h->lock held, on libmicrohttpd's thread.
 */
static bool
head_waiting(int fd)
{
	char buf[4096];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);

	return n > 0 && (memmem(buf, (size_t)n, "\r\n\r\n", 4) != NULL ||
	                 memmem(buf, (size_t)n, "\n\n", 2) != NULL);
}

/*
 * The connection to cut so that @p skip can have a slot: among live ones
 * (of @p peer only, when not NULL), the one waiting longest for a request
 * head (unless the head is there, unparsed); else the one longest in an
 * exchange, if that has run for BUSY_GRACE_NS; else none. h->lock held.
 */
static struct conn *
victim(struct mg_metrics_http *h, const struct conn *skip, const struct in6_addr *peer,
       uint64_t now)
{
	struct conn *best = NULL;
	int best_rank = 2;

	for (unsigned i = 0; i < h->n_conns; i++) {
		struct conn *e = &h->conns[i];
		int rank;

		if (!e->used || e->cut || e == skip ||
		    (peer != NULL && memcmp(&e->peer, peer, sizeof(*peer)) != 0))
			continue;
		if (!e->busy && !head_waiting(e->fd))
			rank = 0;
		else if (e->busy && now - e->since >= BUSY_GRACE_NS)
			rank = 1;
		else
			continue;
		if (rank < best_rank || (rank == best_rank && e->since < best->since)) {
			best = e;
			best_rank = rank;
		}
	}
	return best;
}

/*
 * MHD_OPTION_NOTIFY_CONNECTION, on libmicrohttpd's thread: a connection
 * starts (make room for it, or refuse it) or is about to be closed
 * (forget it: its descriptor is closed after we return).
 */
static void
on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
              enum MHD_ConnectionNotificationCode toe)
{
	struct mg_metrics_http *h = cls;
	const union MHD_ConnectionInfo *ci;
	struct conn *e = NULL, *v = NULL;
	unsigned live = 0, mine = 0;
	uint64_t now = mg_time_ns();

	pthread_mutex_lock(&h->lock);
	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		e = *socket_context;
		if (e != NULL)
			memset(e, 0, sizeof(*e));
		*socket_context = NULL;
		goto out;
	}
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	for (unsigned i = 0; i < h->n_conns && e == NULL; i++)
		if (!h->conns[i].used)
			e = &h->conns[i];
	if (ci == NULL || e == NULL) {
		/* Cannot happen (the table is libmicrohttpd's limit): untracked, closed at once. */
		if (ci != NULL)
			(void)shutdown(ci->connect_fd, SHUT_RDWR);
		h->cut[MG_METRICS_HTTP_CUT_REFUSED]++;
		goto out;
	}
	*e = (struct conn){.used = true, .fd = ci->connect_fd, .since = now};
	peer_of(c, &e->peer);
	/* A client that does not read is stuck in its exchange, not buffered by megabytes. */
	(void)setsockopt(e->fd, SOL_SOCKET, SO_SNDBUF, &(int){SNDBUF_BYTES}, sizeof(int));
	*socket_context = e;
	for (unsigned i = 0; i < h->n_conns; i++) {
		const struct conn *o = &h->conns[i];

		if (o == e || !o->used || o->cut)
			continue;
		live++;
		if (memcmp(&o->peer, &e->peer, sizeof(e->peer)) == 0)
			mine++;
	}
	/* Its peer's own oldest first: one address cannot push the others out. */
	if (mine >= h->max_peer)
		v = victim(h, e, &e->peer, now);
	else if (live >= h->max_conn)
		v = victim(h, e, NULL, now);
	else
		goto out;
	if (v != NULL)
		cut(h, v, MG_METRICS_HTTP_CUT_EVICTED);
	else
		cut(h, e, MG_METRICS_HTTP_CUT_REFUSED);
out:
	pthread_mutex_unlock(&h->lock);
}

/* The head of @p c's request arrived (first call of the access handler): an exchange starts. */
static void
exchange_starts(struct mg_metrics_http *h, struct MHD_Connection *c)
{
	struct conn *e = conn_of(c);

	if (e == NULL)
		return;
	pthread_mutex_lock(&h->lock);
	e->busy = true;
	e->since = mg_time_ns();
	pthread_mutex_unlock(&h->lock);
}

/* MHD_OPTION_NOTIFY_COMPLETED: the exchange is over; the connection waits for the next request. */
static void
on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
	struct mg_metrics_http *h = cls;
	struct conn *e = conn_of(c);

	(void)con_cls;
	(void)toe;
	if (e == NULL)
		return;
	pthread_mutex_lock(&h->lock);
	e->busy = false;
	e->since = mg_time_ns();
	e->kept = rx_bytes(e->fd, &e->rx_mark);
	pthread_mutex_unlock(&h->lock);
}

/*
 * The watchdog: cut every connection whose state (waiting for a head, or
 * in an exchange) has lasted timeout_ns, then sleep until the next one
 * can be due. States only ever start later than this pass, so the next
 * deadline is at most a timeout away. An idle kept-alive connection is
 * closed instead, gracefully and uncounted, as libmicrohttpd's own idle
 * timeout would.
 */
static void *
watchdog_main(void *arg)
{
	struct mg_metrics_http *h = arg;

	pthread_mutex_lock(&h->lock);
	while (!h->stopping) {
		uint64_t now = mg_time_ns(), next = now + h->timeout_ns;
		struct timespec ts;

		for (unsigned i = 0; i < h->n_conns; i++) {
			struct conn *e = &h->conns[i];
			uint64_t due;

			if (!e->used || e->cut)
				continue;
			due = e->since + h->timeout_ns;
			if (due <= now && idle(e)) {
				(void)shutdown(e->fd, SHUT_RDWR);
				e->cut = true;
			} else if (due <= now) {
				cut(h, e,
				    e->busy ? MG_METRICS_HTTP_CUT_RESPONSE_TIMEOUT
				            : MG_METRICS_HTTP_CUT_REQUEST_TIMEOUT);
			} else if (due < next)
				next = due;
		}
		ts.tv_sec = (time_t)(next / 1000000000ull);
		ts.tv_nsec = (long)(next % 1000000000ull);
		(void)pthread_cond_timedwait(&h->wake, &h->lock, &ts);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

void
mg_metrics_snapshot_set_http(struct mg_metrics_snapshot *s, struct mg_metrics_http *h)
{
	if (h == NULL)
		return;
	pthread_mutex_lock(&h->lock);
	memcpy(s->http_cut, h->cut, sizeof(s->http_cut));
	pthread_mutex_unlock(&h->lock);
}

/* ---- requests ---- */

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

/*
 * The renderer of mg_metrics_http_start(): the gateway's snapshot, with
 * the endpoint's figures in it (also when the daemon's collect leaves
 * them out), rendered by mg_metrics_render(). @p arg is the endpoint.
 */
static int
render_snapshot(void *arg, struct mg_metrics_buf *b)
{
	struct mg_metrics_http *h = arg;
	struct mg_metrics_snapshot *snap;
	int rc;

	snap = calloc(1, sizeof(*snap));
	if (snap == NULL) {
		b->err = ENOMEM;
		return -ENOMEM;
	}
	rc = h->collect(h->collect_arg, snap);
	mg_metrics_snapshot_set_http(snap, h);
	if (rc == 0)
		rc = mg_metrics_render(snap, b);
	free(snap);
	return rc;
}

static enum MHD_Result
serve_metrics(struct mg_metrics_http *h, struct MHD_Connection *c)
{
	struct mg_metrics_buf b;
	struct MHD_Response *r;
	enum MHD_Result ret;
	uint64_t cut[MG_METRICS_HTTP_CUT_N];
	int rc;

	mg_metrics_buf_init(&b);
	rc = h->render(h->arg, &b);
	if (rc == 0 && h->own_families) {
		pthread_mutex_lock(&h->lock);
		memcpy(cut, h->cut, sizeof(cut));
		pthread_mutex_unlock(&h->lock);
		mg_metrics_write_http_cut(&b, cut);
	}
	if (rc != 0 || b.err != 0) {
		bool oom = b.err != 0;

		mg_metrics_buf_free(&b);
		return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE,
		                  oom ? "out of memory\n" : "metrics unavailable\n", NULL);
	}
	/* libmicrohttpd takes the buffer and free()s it (an empty render has none). */
	r = b.data != NULL ? MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_FREE)
	                   : MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
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
	if (*con_cls == NULL)
		exchange_starts(h, c);
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

/* Free @p h once no thread of it runs (NULL is fine). */
static void
http_free(struct mg_metrics_http *h)
{
	if (h == NULL)
		return;
	pthread_cond_destroy(&h->wake);
	pthread_mutex_destroy(&h->lock);
	pthread_mutex_destroy(&h->log_lock);
	free(h->conns);
	free(h);
}

/* A new endpoint with its table, lock and condition (on the monotonic clock), or NULL. */
static struct mg_metrics_http *
http_new(const struct mg_metrics_http_params *p)
{
	struct mg_metrics_http *h = calloc(1, sizeof(*h));
	pthread_condattr_t ca;
	unsigned max_conn =
	        p != NULL && p->max_connections ? p->max_connections : MG_METRICS_HTTP_MAX_CONN;
	uint64_t timeout_ms =
	        p != NULL && p->timeout_ms ? p->timeout_ms : MG_METRICS_HTTP_TIMEOUT_S * 1000ull;

	if (h == NULL)
		return NULL;
	h->max_conn = max_conn;
	h->max_peer = max_conn / 2 > 0 ? max_conn / 2 : 1;
	h->timeout_ns = timeout_ms * NS_PER_MS;
	h->n_conns = max_conn + MHD_SLACK;
	h->conns = calloc(h->n_conns, sizeof(*h->conns));
	if (h->conns == NULL) {
		free(h);
		return NULL;
	}
	pthread_mutex_init(&h->lock, NULL);
	pthread_mutex_init(&h->log_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->wake, &ca);
	pthread_condattr_destroy(&ca);
	return h;
}

/* Stop and join the watchdog, if it runs. */
static void
watchdog_stop(struct mg_metrics_http *h)
{
	if (!h->watchdog_started)
		return;
	pthread_mutex_lock(&h->lock);
	h->stopping = true;
	pthread_cond_signal(&h->wake);
	pthread_mutex_unlock(&h->lock);
	pthread_join(h->watchdog, NULL);
	h->watchdog_started = false;
}

/*
 * Both starts: with @p render (and its @p arg), each scrape is its text
 * and the endpoint's own family; with @p collect instead, the gateway's
 * snapshot rendered whole (render_snapshot).
 */
static struct mg_metrics_http *
http_start(const char *listen, const struct mg_metrics_http_params *p, mg_metrics_render_fn render,
           mg_metrics_collect_fn collect, void *arg, struct mg_error *err)
{
	struct mg_metrics_http *h = NULL;
	struct sockaddr_storage ss;
	socklen_t len;
	unsigned flags, idle_s;
	int fd = -1, rc;

	if (render == NULL && collect == NULL) {
		mg_error_set(err, NULL, 0, 0, "metrics: no render function");
		rc = -EINVAL;
		goto err;
	}
	rc = mg_metrics_parse_listen(listen, &ss, &len, err);
	if (rc != 0)
		goto err;
	h = http_new(p);
	if (h == NULL) {
		rc = -ENOMEM;
		mg_error_set(err, NULL, 0, 0, "metrics: out of memory");
		goto err;
	}
	if (render != NULL) {
		h->render = render;
		h->arg = arg;
		h->own_families = true;
	} else {
		h->render = render_snapshot;
		h->arg = h;
		h->collect = collect;
		h->collect_arg = arg;
	}
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
	/*
	 * libmicrohttpd's idle timeout is a backstop only: the watchdog cuts
	 * any state at timeout_ns, idle or not, and counts it.
	 */
	idle_s = (unsigned)((h->timeout_ns + 999999999ull) / 1000000000ull) + 2;
	/* The logger first, so that libmicrohttpd uses it for every message. */
	h->mhd = MHD_start_daemon(
	        flags, h->port, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
	        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, h->n_conns,
	        MHD_OPTION_CONNECTION_TIMEOUT, idle_s, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
	        h, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_END);
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
	rc = pthread_create(&h->watchdog, NULL, watchdog_main, h);
	if (rc != 0) {
		rc = -rc;
		mg_error_set(err, NULL, 0, 0, "metrics: watchdog thread: %s", strerror(-rc));
		goto err;
	}
	pthread_setname_np(h->watchdog, "mg-metrics-wd");
	h->watchdog_started = true;
	return h;
err:
	if (fd >= 0)
		close(fd);
	if (h != NULL && h->mhd != NULL)
		MHD_stop_daemon(h->mhd);
	http_free(h);
	errno = -rc;
	return NULL;
}

struct mg_metrics_http *
mg_metrics_http_start(const char *listen, const struct mg_metrics_http_params *p,
                      mg_metrics_collect_fn collect, void *arg, struct mg_error *err)
{
	if (collect == NULL) {
		mg_error_set(err, NULL, 0, 0, "metrics: no collect function");
		errno = EINVAL;
		return NULL;
	}
	return http_start(listen, p, NULL, collect, arg, err);
}

struct mg_metrics_http *
mg_metrics_http_start_render(const char *listen, const struct mg_metrics_http_params *p,
                             mg_metrics_render_fn render, void *arg, struct mg_error *err)
{
	if (render == NULL) {
		mg_error_set(err, NULL, 0, 0, "metrics: no render function");
		errno = EINVAL;
		return NULL;
	}
	return http_start(listen, p, render, NULL, arg, err);
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
	watchdog_stop(h);
	/* Connections still open are reset when closed, as cut ones are: no orphan keeps buffers. */
	pthread_mutex_lock(&h->lock);
	for (unsigned i = 0; i < h->n_conns; i++)
		if (h->conns[i].used)
			(void)setsockopt(h->conns[i].fd, SOL_SOCKET, SO_LINGER,
			                 &(struct linger){.l_onoff = 1, .l_linger = 0},
			                 sizeof(struct linger));
	pthread_mutex_unlock(&h->lock);
	/*
	 * Joins the polling thread, closes every connection (each notified,
	 * so the table empties) and the listening socket it was given.
	 */
	MHD_stop_daemon(h->mhd);
	http_free(h);
}
