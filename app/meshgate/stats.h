/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The daemon's final counters (stats.c): printed at exit, and written as
 * JSON with --stats-file.
 */
#ifndef MG_STATS_H
#define MG_STATS_H

#include <stdio.h>

#include "mg_datapath.h"
#include "mg_gateway.h"

/* The counters as a table on @p out. */
void stats_print(const struct mg_datapath *dp, const struct mg_dp_counters *c, FILE *out);

/* The counters as JSON at @p path (written whole, then renamed). 0 or -errno. */
int stats_write(const char *path, const struct mg_datapath *dp, const struct mg_dp_counters *c,
                const struct mg_gateway *gw);

#endif /* MG_STATS_H */
