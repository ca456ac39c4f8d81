/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control-path log and error formatting. Kept trivial on purpose: one
 * line per message on stderr, which systemd's journal and the tests read.
 */
#include "mg_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
