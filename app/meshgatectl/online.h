/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * meshgatectl's online output, shared by online.c (the requests),
 * online_text.c (each command's result as text) and table.c (reading
 * results defensively, aligned tables).
 */
#ifndef MG_MESHGATECTL_ONLINE_H
#define MG_MESHGATECTL_ONLINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

/*
 * An aligned table: a header row, then rows of cells; a cell holding
 * newlines spans several lines (labels one per line, as cilium-dbg shows
 * them). Columns are separated by 3 spaces; the last is not padded.
 */
#define TBL_MAX_COLS 12

struct tbl {
	size_t ncols;
	const char *head[TBL_MAX_COLS];
	char **cells; /* nrows * ncols, owned */
	size_t nrows, cap;
	bool oom;
};

/* @p v as text into @p buf ("-" when missing or null). */
const char *jtext(const json_t *v, char *buf, size_t size);
/* A field as text ("-" when missing); a few calls' results live at once. */
const char *jf(const json_t *o, const char *key);
/* An integer field, 0 when missing. */
long long jint(const json_t *o, const char *key);

void tbl_init(struct tbl *t, const char *const *head);
void tbl_row(struct tbl *t, ...);
/* Print the table, free it; the exit code (an allocation failure: internal). */
int tbl_done(struct tbl *t, FILE *f);
/* The elements of @p a joined by @p sep (objects through @p fmt_obj); a new string. */
char *join(const json_t *a, const char *sep, void (*fmt_obj)(const json_t *, char *, size_t));

/* A flow end "addr:port" (IPv6 in brackets) of @p e's fields @p a and @p p, into @p buf. */
void endpoint_str(const json_t *e, const char *a, const char *p, char *buf, size_t size);

/* Each online command's result as text (online_text.c); the exit code. */
int text_status(const json_t *r);
/* meshgate-replicator's commands (online_rep.c) */
int text_rep_status(const json_t *r);
int text_rep_troubleshoot(const json_t *r);
int text_config(const json_t *r);
int text_identity_list(const json_t *r);
int text_identity_get(const json_t *r);
int text_ip_list(const json_t *r);
int text_ip_get(const json_t *r);
int text_policy_get(const json_t *r);
int text_policy_selectors(const json_t *r);
int text_ct_list(const json_t *r);
int text_ct_flush(const json_t *r);
int text_sync_status(const json_t *r);
int text_sync_resync(const json_t *r);
int text_metrics(const json_t *r);
int text_reload(const json_t *r);

#endif /* MG_MESHGATECTL_ONLINE_H */
