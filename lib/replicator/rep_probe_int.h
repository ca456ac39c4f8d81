/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the probe's files share among themselves (not part of the API):
 * time helpers and the TLS step, which lives in rep_probe_tls.c.
 */
#ifndef REP_PROBE_INT_H
#define REP_PROBE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "mg_common.h"

#include "rep_probe.h"

/** snprintf into @p out, truncating silently (messages hold paths and names of any length). */
void rep_fmt(char *out, size_t size, const char *fmt, ...) MG_PRINTF(3, 4);

/** Monotonic microseconds. */
uint64_t rep_now_us(void);

/** Milliseconds left until @p deadline_us (0 when past), for poll(). */
int rep_ms_left(uint64_t deadline_us);

/**
 * Read and check the local files into p->ca and p->client.
 * @return 0, or the negative errno of the first problem with p->tls_error
 *   naming the file and its config key
 */
int rep_probe_files(const struct mg_rep_probe_opts *o, struct mg_rep_probe *p);

/**
 * The TLS step on connected socket @p fd (left open), the files already
 * checked by rep_probe_files(). Fills p->tls_* and p->server.
 * @return 0 or the negative errno of the failure
 */
int rep_probe_tls(const struct mg_rep_probe_opts *o, int fd, unsigned timeout_ms,
                  struct mg_rep_probe *p);

#endif /* REP_PROBE_INT_H */
