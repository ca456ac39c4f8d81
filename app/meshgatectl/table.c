/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The online commands' text output's tools: reading a result's fields
 * defensively (a field the daemon left out prints as "-" rather than
 * crashing the tool) and aligned tables with a header row, cells that
 * span several lines.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "online.h"

/* ---- reading results ---- */

/* A scalar as text: strings as they are, numbers, yes/no, "-" for null or absent. */
const char *
jtext(const json_t *v, char *buf, size_t size)
{
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v))
		snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, size, "%.3f", json_real_value(v));
	else if (json_is_true(v))
		snprintf(buf, size, "yes");
	else if (json_is_false(v))
		snprintf(buf, size, "no");
	else
		snprintf(buf, size, "-");
	return buf;
}

/* Field @p key of @p o as text, in a rotating set of buffers so that a
 * printf may use several at once. */
const char *
jf(const json_t *o, const char *key)
{
	static char bufs[8][64];
	static unsigned next;
	char *b = bufs[next++ % 8];

	return jtext(json_object_get(o, key), b, 64);
}

long long
jint(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* ---- tables ---- */

void
tbl_init(struct tbl *t, const char *const *head)
{
	memset(t, 0, sizeof(*t));
	while (t->ncols < TBL_MAX_COLS && head[t->ncols] != NULL) {
		t->head[t->ncols] = head[t->ncols];
		t->ncols++;
	}
}

/* Add a row of t->ncols cells (NULL cells print as "-"). */
void
tbl_row(struct tbl *t, ...)
{
	size_t i, cap, need;
	char **cells;
	va_list ap;

	if (t->oom)
		return;
	need = (t->nrows + 1) * t->ncols;
	if (need > t->cap) {
		cap = t->cap ? t->cap : t->ncols * 16;
		while (cap < need)
			cap *= 2;
		cells = realloc(t->cells, cap * sizeof(*cells));
		if (cells == NULL) {
			t->oom = true;
			return;
		}
		t->cells = cells;
		t->cap = cap;
	}
	va_start(ap, t);
	for (i = 0; i < t->ncols; i++) {
		const char *s = va_arg(ap, const char *);
		char *c = strdup(s != NULL ? s : "-");

		if (c == NULL)
			t->oom = true;
		t->cells[t->nrows * t->ncols + i] = c;
	}
	va_end(ap);
	t->nrows++;
}

/* Length of line @p k of cell @p s (0 when the cell has fewer lines), and its start. */
static size_t
cell_line(const char *s, size_t k, const char **start)
{
	const char *nl;

	*start = "";
	if (s == NULL)
		return 0;
	while (k-- > 0) {
		s = strchr(s, '\n');
		if (s == NULL)
			return 0;
		s++;
	}
	*start = s;
	nl = strchr(s, '\n');
	return nl != NULL ? (size_t)(nl - s) : strlen(s);
}

static size_t
cell_nlines(const char *s)
{
	size_t n = 1;

	while (s != NULL && (s = strchr(s, '\n')) != NULL) {
		n++;
		s++;
	}
	return n;
}

static void
tbl_print(struct tbl *t, FILE *f)
{
	size_t w[TBL_MAX_COLS], r, c, k, n, len;
	const char *start;

	for (c = 0; c < t->ncols; c++)
		w[c] = strlen(t->head[c]);
	for (r = 0; r < t->nrows; r++)
		for (c = 0; c < t->ncols; c++)
			for (k = 0; k < cell_nlines(t->cells[r * t->ncols + c]); k++) {
				len = cell_line(t->cells[r * t->ncols + c], k, &start);
				if (len > w[c])
					w[c] = len;
			}
	for (c = 0; c < t->ncols; c++)
		if (c + 1 < t->ncols)
			fprintf(f, "%-*s   ", (int)w[c], t->head[c]);
		else
			fprintf(f, "%s\n", t->head[c]);
	for (r = 0; r < t->nrows; r++) {
		n = 1;
		for (c = 0; c < t->ncols; c++)
			if (cell_nlines(t->cells[r * t->ncols + c]) > n)
				n = cell_nlines(t->cells[r * t->ncols + c]);
		for (k = 0; k < n; k++) {
			size_t last = 0;

			/* no trailing blanks: stop after the last non-empty cell */
			for (c = 0; c < t->ncols; c++)
				if (cell_line(t->cells[r * t->ncols + c], k, &start) > 0)
					last = c;
			for (c = 0; c <= last; c++) {
				len = cell_line(t->cells[r * t->ncols + c], k, &start);
				if (c < last)
					fprintf(f, "%.*s%*s   ", (int)len, start, (int)(w[c] - len),
					        "");
				else
					fprintf(f, "%.*s", (int)len, start);
			}
			fputc('\n', f);
		}
	}
}

static void
tbl_free(struct tbl *t)
{
	size_t i;

	for (i = 0; t->cells != NULL && i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

/* Print and free @p t. @return CTL_EXIT_OK, or CTL_EXIT_INTERNAL when out of memory. */
int
tbl_done(struct tbl *t, FILE *f)
{
	bool oom = t->oom;

	if (!oom)
		tbl_print(t, f);
	tbl_free(t);
	if (oom)
		fprintf(stderr, "meshgatectl: out of memory\n");
	return oom ? CTL_EXIT_INTERNAL : CTL_EXIT_OK;
}

/*
 * The elements of array @p a joined by @p sep into a new string: strings
 * as they are, objects by @p fmt_obj (or "?"). NULL when out of memory.
 */
char *
join(const json_t *a, const char *sep, void (*fmt_obj)(const json_t *, char *, size_t))
{
	char *s = NULL, buf[512];
	size_t len = 0, i;
	const json_t *v;
	FILE *m = open_memstream(&s, &len);

	if (m == NULL)
		return NULL;
	json_array_foreach(a, i, v)
	{
		if (json_is_object(v) && fmt_obj != NULL)
			fmt_obj(v, buf, sizeof(buf));
		else
			jtext(v, buf, sizeof(buf));
		fprintf(m, "%s%s", i ? sep : "", json_is_string(v) ? json_string_value(v) : buf);
	}
	if (fclose(m) != 0) {
		free(s);
		return NULL;
	}
	return s;
}
