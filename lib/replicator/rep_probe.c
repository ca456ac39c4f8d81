/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The probe's network steps before TLS, and the run that chains them
 * (rep_probe.h says why the probe exists). The endpoint is parsed here;
 * DNS runs getaddrinfo in a detached thread, because getaddrinfo has no
 * timeout of its own and cannot be interrupted: the caller waits on a
 * condition until its deadline, and whichever of the two lets go of the
 * shared request last frees it. TCP is a non-blocking connect per
 * address, polled until the step's deadline, so a refused port, an
 * unreachable network and a silent firewall come back as different
 * errors within the bound.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mg_common.h"
#include "rep_probe.h"
#include "rep_probe_int.h"

void
rep_fmt(char *out, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(out, size, fmt, ap);
	va_end(ap);
}

uint64_t
rep_now_us(void)
{
	return mg_time_ns() / 1000u;
}

int
rep_ms_left(uint64_t deadline_us)
{
	uint64_t now = rep_now_us();

	if (now >= deadline_us)
		return 0;
	return (int)((deadline_us - now + 999u) / 1000u);
}

/* ---- the endpoint ---- */

/* "https://host:port[/...]" into p->host, p->port, p->tls; -EINVAL with p->error. */
static int
parse_endpoint(const char *ep, bool have_tls_files, struct mg_rep_probe *p)
{
	const char *s = ep, *host, *end, *colon = NULL;
	size_t hlen;

	if (ep == NULL || *ep == '\0') {
		snprintf(p->error, sizeof(p->error), "endpoint: none given");
		return -EINVAL;
	}
	snprintf(p->endpoint, sizeof(p->endpoint), "%s", ep);
	if (strncmp(s, "https://", 8) == 0) {
		p->tls = true;
		s += 8;
	} else if (strncmp(s, "http://", 7) == 0) {
		s += 7;
	} else if (strstr(s, "://") != NULL) {
		snprintf(p->error, sizeof(p->error),
		         "endpoint %s: the scheme must be https:// or http://", ep);
		return -EINVAL;
	} else {
		p->tls = have_tls_files; /* as etcd's client: TLS when TLS files are configured */
	}
	end = s + strcspn(s, "/?#");
	if (*s == '[') {
		host = s + 1;
		hlen = strcspn(host, "]");
		if (host + hlen >= end) {
			snprintf(p->error, sizeof(p->error),
			         "endpoint %s: no ']' after the IPv6 address", ep);
			return -EINVAL;
		}
		colon = host + hlen + 1 < end && host[hlen + 1] == ':' ? host + hlen + 1 : NULL;
		if (colon == NULL && host + hlen + 1 != end)
			goto bad;
	} else {
		host = s;
		colon = memchr(s, ':', (size_t)(end - s));
		hlen = (size_t)((colon != NULL ? colon : end) - host);
	}
	if (hlen == 0 || hlen >= sizeof(p->host))
		goto bad;
	memcpy(p->host, host, hlen);
	p->host[hlen] = '\0';
	p->port = MG_REP_PROBE_DEFAULT_PORT;
	if (colon != NULL) {
		char *stop;
		unsigned long port = strtoul(colon + 1, &stop, 10);

		if (stop != end || stop == colon + 1 || port == 0 || port > 65535)
			goto bad;
		p->port = (unsigned)port;
	}
	return 0;
bad:
	snprintf(p->error, sizeof(p->error), "endpoint %s: not scheme://host:port", ep);
	return -EINVAL;
}

/* ---- DNS ---- */

/* A lookup shared by the caller and its thread; freed by the last one to let go. */
struct lookup {
	pthread_mutex_t lock;
	pthread_cond_t done_cv;
	int refs;
	bool done;
	int rc;
	struct addrinfo *res;
	char host[256];
};

static void
lookup_put(struct lookup *l)
{
	bool last;

	pthread_mutex_lock(&l->lock);
	last = --l->refs == 0;
	pthread_mutex_unlock(&l->lock);
	if (!last)
		return;
	if (l->res != NULL)
		freeaddrinfo(l->res);
	pthread_cond_destroy(&l->done_cv);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

static void *
lookup_main(void *arg)
{
	struct lookup *l = arg;
	struct addrinfo hints = {
	        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(l->host, NULL, &hints, &res);

	pthread_mutex_lock(&l->lock);
	l->rc = rc;
	l->res = res;
	l->done = true;
	pthread_cond_signal(&l->done_cv);
	pthread_mutex_unlock(&l->lock);
	lookup_put(l);
	return NULL;
}

/* A getaddrinfo error as a negative errno and words. */
static int
gai_errno(int rc, int sys_errno, char *msg, size_t size)
{
	switch (rc) {
	case EAI_NONAME:
#ifdef EAI_NODATA
	case EAI_NODATA:
#endif
		snprintf(msg, size, "no such host (%s)", gai_strerror(rc));
		return -ENOENT;
	case EAI_AGAIN:
		snprintf(msg, size, "no answer from the resolver (%s)", gai_strerror(rc));
		return -EAGAIN;
	case EAI_SYSTEM:
		snprintf(msg, size, "lookup failed: %s", strerror(sys_errno));
		return sys_errno > 0 ? -sys_errno : -EIO;
	default:
		snprintf(msg, size, "lookup failed: %s", gai_strerror(rc));
		return -EIO;
	}
}

/* Keep the addresses of @p res in @p p (numeric) and @p ss (for connect), up to the maximum. */
static void
keep_addrs(struct mg_rep_probe *p, const struct addrinfo *res, struct sockaddr_storage *ss,
           socklen_t *lens)
{
	for (const struct addrinfo *a = res; a != NULL && p->n_addrs < MG_REP_PROBE_MAX_ADDRS;
	     a = a->ai_next) {
		size_t i = p->n_addrs;
		const void *ip;

		if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
		    a->ai_addrlen > sizeof(*ss))
			continue;
		memcpy(&ss[i], a->ai_addr, a->ai_addrlen);
		lens[i] = (socklen_t)a->ai_addrlen;
		if (a->ai_family == AF_INET) {
			((struct sockaddr_in *)&ss[i])->sin_port = htons((uint16_t)p->port);
			ip = &((const struct sockaddr_in *)a->ai_addr)->sin_addr;
		} else {
			((struct sockaddr_in6 *)&ss[i])->sin6_port = htons((uint16_t)p->port);
			ip = &((const struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
		}
		if (inet_ntop(a->ai_family, ip, p->addrs[i], sizeof(p->addrs[i])) == NULL)
			continue;
		p->n_addrs++;
	}
}

/* Wait for @p l until @p deadline_us; true when it is done (l->lock held by the caller). */
static bool
lookup_wait(struct lookup *l, uint64_t deadline_us)
{
	struct timespec ts = {.tv_sec = (time_t)(deadline_us / 1000000u),
	                      .tv_nsec = (long)(deadline_us % 1000000u) * 1000};

	while (!l->done)
		if (pthread_cond_timedwait(&l->done_cv, &l->lock, &ts) == ETIMEDOUT)
			break;
	return l->done;
}

static int
step_dns(struct mg_rep_probe *p, unsigned timeout_ms, struct sockaddr_storage *ss, socklen_t *lens)
{
	uint64_t start = rep_now_us();
	struct lookup *l;
	pthread_condattr_t ca;
	pthread_t t;
	int rc;

	p->dns_ran = true;
	l = calloc(1, sizeof(*l));
	if (l == NULL) {
		snprintf(p->dns_error, sizeof(p->dns_error), "out of memory");
		return p->dns_rc = -ENOMEM;
	}
	snprintf(l->host, sizeof(l->host), "%s", p->host);
	l->refs = 2;
	pthread_mutex_init(&l->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->done_cv, &ca);
	pthread_condattr_destroy(&ca);
	rc = pthread_create(&t, NULL, lookup_main, l);
	if (rc != 0) {
		l->refs = 1;
		lookup_put(l);
		snprintf(p->dns_error, sizeof(p->dns_error), "lookup thread: %s", strerror(rc));
		return p->dns_rc = -rc;
	}
	pthread_detach(t);
	pthread_mutex_lock(&l->lock);
	if (!lookup_wait(l, start + (uint64_t)timeout_ms * 1000u)) {
		snprintf(p->dns_error, sizeof(p->dns_error), "no answer within %u ms", timeout_ms);
		rc = -ETIMEDOUT;
	} else if (l->rc != 0) {
		rc = gai_errno(l->rc, errno, p->dns_error, sizeof(p->dns_error));
	} else {
		keep_addrs(p, l->res, ss, lens);
		rc = 0;
		if (p->n_addrs == 0) {
			snprintf(p->dns_error, sizeof(p->dns_error), "no IPv4 or IPv6 address");
			rc = -ENOENT;
		}
	}
	pthread_mutex_unlock(&l->lock);
	lookup_put(l);
	p->dns_us = rep_now_us() - start;
	return p->dns_rc = rc;
}

/* ---- TCP ---- */

static const char *
connect_words(int e)
{
	switch (e) {
	case ECONNREFUSED:
		return "connection refused (nothing listens there, or a firewall rejects it)";
	case EHOSTUNREACH:
		return "no route to host";
	case ENETUNREACH:
		return "network unreachable";
	default:
		return strerror(e);
	}
}

/* One connect to @p sa until @p deadline_us: the socket, or a negative errno. */
static int
connect_one(const struct sockaddr_storage *sa, socklen_t len, uint64_t deadline_us)
{
	struct pollfd pfd;
	int fd, e = 0, n;
	socklen_t elen = sizeof(e);

	fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)sa, len) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		e = errno;
		close(fd);
		return -e;
	}
	pfd = (struct pollfd){.fd = fd, .events = POLLOUT};
	do
		n = poll(&pfd, 1, rep_ms_left(deadline_us));
	while (n < 0 && errno == EINTR);
	if (n == 0) {
		close(fd);
		return -ETIMEDOUT;
	}
	if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) != 0)
		e = n < 0 ? errno : EIO;
	if (e != 0) {
		close(fd);
		return -e;
	}
	return fd;
}

static void
format_addr(char *out, size_t size, const char *ip, unsigned port)
{
	if (strchr(ip, ':') != NULL)
		snprintf(out, size, "[%s]:%u", ip, port);
	else
		snprintf(out, size, "%s:%u", ip, port);
}

/* Connect to the first address that answers; the socket or a negative errno. */
static int
step_tcp(struct mg_rep_probe *p, unsigned timeout_ms, const struct sockaddr_storage *ss,
         const socklen_t *lens)
{
	uint64_t start = rep_now_us(), deadline = start + (uint64_t)timeout_ms * 1000u;
	size_t used = 0;
	int rc = -EHOSTUNREACH;

	p->tcp_ran = true;
	for (size_t i = 0; i < p->n_addrs; i++) {
		format_addr(p->tcp_addr, sizeof(p->tcp_addr), p->addrs[i], p->port);
		rc = connect_one(&ss[i], lens[i], deadline);
		if (rc >= 0)
			break;
		if (used < sizeof(p->tcp_error)) {
			int n;

			if (rc == -ETIMEDOUT)
				n = snprintf(p->tcp_error + used, sizeof(p->tcp_error) - used,
				             "%s%s: no answer within %u ms (a firewall dropping "
				             "packets, or the host is down)",
				             used ? "; " : "", p->tcp_addr, timeout_ms);
			else
				n = snprintf(p->tcp_error + used, sizeof(p->tcp_error) - used,
				             "%s%s: %s", used ? "; " : "", p->tcp_addr,
				             connect_words(-rc));
			used += n > 0 ? (size_t)n : 0;
		}
		if (rep_ms_left(deadline) == 0)
			break;
	}
	p->tcp_us = rep_now_us() - start;
	if (rc >= 0) {
		p->tcp_error[0] = '\0';
		p->tcp_rc = 0;
	} else {
		p->tcp_rc = rc;
	}
	return rc;
}

/* ---- the run ---- */

/* Record the first failure: its errno and "<step>: <words>". */
static int
fail(struct mg_rep_probe *p, const char *step, int rc, const char *words)
{
	if (p->rc == 0) {
		p->rc = rc;
		snprintf(p->error, sizeof(p->error), "%s: %s", step, words);
	}
	return rc;
}

static bool
set(const char *s)
{
	return s != NULL && *s != '\0';
}

int
mg_rep_probe_run(const struct mg_rep_probe_opts *o, struct mg_rep_probe *p)
{
	struct sockaddr_storage ss[MG_REP_PROBE_MAX_ADDRS];
	socklen_t lens[MG_REP_PROBE_MAX_ADDRS];
	unsigned timeout_ms;
	int rc, files_rc = 0, fd;

	memset(p, 0, sizeof(*p));
	if (o == NULL)
		return fail(p, "endpoint", -EINVAL, "no options");
	timeout_ms = o->timeout_ms ? o->timeout_ms : MG_REP_PROBE_TIMEOUT_MS;
	rc = parse_endpoint(o->endpoint, set(o->ca_file) || set(o->cert_file) || set(o->key_file),
	                    p);
	if (rc != 0) {
		p->rc = rc;
		return rc;
	}
	/* The files first: their problems are worth showing even when the network fails. */
	if (p->tls)
		files_rc = rep_probe_files(o, p);
	rc = step_dns(p, timeout_ms, ss, lens);
	if (rc != 0) {
		char words[sizeof(p->host) + sizeof(p->dns_error) + 2];

		snprintf(words, sizeof(words), "%s: %s", p->host, p->dns_error);
		return fail(p, "dns", rc, words);
	}
	fd = step_tcp(p, timeout_ms, ss, lens);
	if (fd < 0)
		return fail(p, "tcp", fd, p->tcp_error);
	if (p->tls) {
		p->tls_ran = true;
		if (files_rc != 0)
			rc = p->tls_rc = files_rc; /* tls_error names the file */
		else
			rc = p->tls_rc = rep_probe_tls(o, fd, timeout_ms, p);
		if (rc != 0)
			fail(p, "tls", rc, p->tls_error);
	}
	close(fd);
	return p->rc;
}
