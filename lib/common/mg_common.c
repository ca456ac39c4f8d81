/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control-path log and error formatting, kept trivial on purpose (one
 * line per message on stderr, which systemd's journal and the tests read),
 * and the small parsers every module shares (host:port).
 */
#include "mg_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>

static enum mg_log_level log_level = MG_LOG_INFO;

void
mg_log_set_level(enum mg_log_level level)
{
	log_level = level;
}

void
mg_log(enum mg_log_level level, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};
	char line[1024];
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "meshgate: %s: %s\n", names[level], line);
}

void
mg_error_set(struct mg_error *err, const char *file, unsigned line, unsigned col, const char *fmt,
             ...)
{
	size_t off = 0;
	va_list ap;

	if (err == NULL)
		return;
	if (file != NULL)
		off = (size_t)snprintf(err->msg, sizeof(err->msg), "%s:%u:%u: ", file, line, col);
	if (off >= sizeof(err->msg))
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg + off, sizeof(err->msg) - off, fmt, ap);
	va_end(ap);
}

void
mg_error_prefix(struct mg_error *err, const char *prefix)
{
	char tmp[sizeof(err->msg)];

	if (err == NULL || err->msg[0] == '\0')
		return;
	snprintf(tmp, sizeof(tmp), "%s%s", prefix, err->msg);
	memcpy(err->msg, tmp, sizeof(err->msg));
}

int
mg_grow(void *vp, size_t *cap, size_t n, size_t esz, size_t min)
{
	void **v = vp, *p;
	size_t c;

	if (n < *cap)
		return 0;
	c = *cap ? *cap * 2 : min;
	p = realloc(*v, c * esz);
	if (p == NULL)
		return -ENOMEM;
	*v = p;
	*cap = c;
	return 0;
}

uint64_t
mg_time_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int
port_parse(const char *s, uint16_t *port)
{
	unsigned long v = 0;

	if (*s == '\0' || strlen(s) > 5)
		return -EINVAL;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*s - '0');
	}
	if (v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int
mg_hostport_parse(const char *s, unsigned flags, struct mg_hostport *hp, const char **why)
{
	const char *host = s, *port = NULL, *p;
	size_t hl;

	memset(hp, 0, sizeof(*hp));
	*why = NULL;
	if (s == NULL || *s == '\0') {
		*why = "it is empty";
		return -EINVAL;
	}
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		struct in6_addr a;

		if (rb == NULL) {
			*why = "the '[' of an IPv6 address has no ']'";
			return -EINVAL;
		}
		host = s + 1;
		hl = (size_t)(rb - host);
		if (rb[1] == ':')
			port = rb + 2;
		else if (rb[1] != '\0') {
			*why = "an IPv6 address in brackets is followed by ':port'";
			return -EINVAL;
		}
		if (hl == 0 || hl >= INET6_ADDRSTRLEN) {
			*why = "the brackets do not hold an IPv6 address";
			return -EINVAL;
		}
		memcpy(hp->host, host, hl);
		hp->host[hl] = '\0';
		if (inet_pton(AF_INET6, hp->host, &a) != 1) {
			*why = "the brackets do not hold an IPv6 address";
			return -EINVAL;
		}
		hp->bracketed = true;
	} else {
		p = strchr(s, ':');
		if (p != NULL && strchr(p + 1, ':') != NULL) {
			*why = "put an IPv6 address in brackets, as [::1]:9470";
			return -EINVAL;
		}
		hl = p != NULL ? (size_t)(p - s) : strlen(s);
		port = p != NULL ? p + 1 : NULL;
		if (hl >= sizeof(hp->host)) {
			*why = "the host name is longer than 255 bytes";
			return -EINVAL;
		}
		memcpy(hp->host, s, hl);
		hp->host[hl] = '\0';
		for (p = hp->host; *p != '\0'; p++)
			if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '[' || *p == ']' ||
			    *p == '/' || *p == '@') {
				*why = "the host holds a character no address or name has";
				return -EINVAL;
			}
	}
	if (hp->host[0] == '\0' && (flags & MG_HOSTPORT_HOST_REQUIRED)) {
		*why = "the host is missing";
		return -EINVAL;
	}
	if (port == NULL) {
		if (!(flags & MG_HOSTPORT_PORT_OPTIONAL) || hp->host[0] == '\0') {
			*why = "the ':port' is missing";
			return -EINVAL;
		}
		return 0;
	}
	if (port_parse(port, &hp->port) != 0) {
		*why = "the port is not a number from 0 to 65535";
		return -EINVAL;
	}
	hp->has_port = true;
	return 0;
}
