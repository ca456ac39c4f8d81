/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Builds an mg_yaml tree from libyaml's event stream. Events rather than
 * libyaml's document API so that aliases can be refused where they appear
 * and the nesting depth is bounded while parsing, before any memory is
 * spent on a hostile input. The builder also refuses a mapping with two
 * equal scalar keys, at whatever level, as soon as the second key is
 * read: a loader that reads the first value and never sees the second
 * would silently apply half of what the file says (two matchLabels keys
 * ANDed into a selector that matches nothing, say). Keys are compared as
 * the strings they spell, whatever their quoting. Small mappings are
 * searched linearly; from MAP_LINEAR_MAX pairs on, a mapping gets an
 * open-addressing hash table of its keys (seeded per load, so a crafted
 * file cannot count on collisions), which keeps a mapping of a million
 * keys linear.
 */
#include "mg_yaml.h"
#include "mg_hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <yaml.h>

/* Up to this many pairs, a mapping's keys are searched linearly. */
#define MAP_LINEAR_MAX 16

/* The keys of one open mapping: pair index + 1 per slot, 0 = empty. */
struct keyset {
	uint32_t *slot;
	size_t cap; /* a power of two; 0 while the mapping is searched linearly */
	size_t used;
};

struct builder {
	struct mg_yaml_node *stack[MG_YAML_MAX_DEPTH];
	struct mg_yaml_node *pending_key[MG_YAML_MAX_DEPTH];
	struct keyset keys[MG_YAML_MAX_DEPTH];
	size_t cap[MG_YAML_MAX_DEPTH]; /* room in the open container's items or pairs */
	size_t doccap;
	unsigned depth;
	const char *name;
	uint64_t seed;
};

static void
node_free(struct mg_yaml_node *n)
{
	size_t i;

	if (n == NULL)
		return;
	if (n->type == MG_YAML_SEQ)
		for (i = 0; i < n->n; i++)
			node_free(n->items[i]);
	if (n->type == MG_YAML_MAP)
		for (i = 0; i < n->n; i++) {
			node_free(n->pairs[i].key);
			node_free(n->pairs[i].value);
		}
	free(n->items);
	free(n->pairs);
	free(n->str);
	free(n);
}

void
mg_yaml_free(struct mg_yaml_file *f)
{
	size_t i;

	if (f == NULL)
		return;
	for (i = 0; i < f->ndocs; i++)
		node_free(f->docs[i]);
	free(f->docs);
	free(f->name);
	free(f);
}

static struct mg_yaml_node *
node_new(enum mg_yaml_type type, const yaml_mark_t *m, const char *file)
{
	struct mg_yaml_node *n = calloc(1, sizeof(*n));

	if (n == NULL)
		return NULL;
	n->type = type;
	n->line = (unsigned)m->line + 1;
	n->col = (unsigned)m->column + 1;
	n->file = file;
	return n;
}

static uint64_t
key_hash(const struct builder *b, const struct mg_yaml_node *k)
{
	return mg_hash_bytes(k->str, k->len, b->seed);
}

static bool
key_equal(const struct mg_yaml_node *a, const struct mg_yaml_node *b)
{
	return a->type == MG_YAML_SCALAR && b->type == MG_YAML_SCALAR && a->len == b->len &&
	       memcmp(a->str, b->str, a->len) == 0;
}

/* Put pair @p idx of @p map into @p ks (which has room). */
static void
keyset_put(const struct builder *b, struct keyset *ks, const struct mg_yaml_node *map, size_t idx)
{
	size_t i = mg_probe_home(key_hash(b, map->pairs[idx].key), ks->cap - 1);

	while (ks->slot[i] != 0)
		i = mg_probe_next(i, ks->cap - 1);
	ks->slot[i] = (uint32_t)idx + 1;
	ks->used++;
}

/*
 * Pair @p idx of @p map (the newest) has a scalar key: index it once the
 * mapping is too large for a linear search, growing the table at half
 * full. A table that cannot grow only costs speed: the mapping goes back
 * to linear search.
 */
static void
keyset_add(const struct builder *b, struct keyset *ks, const struct mg_yaml_node *map, size_t idx)
{
	size_t cap, i;
	uint32_t *slot;

	if (map->n <= MAP_LINEAR_MAX)
		return;
	if (ks->cap != 0 && (ks->used + 1) * 2 <= ks->cap) {
		keyset_put(b, ks, map, idx);
		return;
	}
	cap = ks->cap ? ks->cap * 2 : 4 * MAP_LINEAR_MAX;
	slot = calloc(cap, sizeof(*slot));
	free(ks->slot);
	ks->slot = slot;
	ks->cap = slot != NULL ? cap : 0;
	ks->used = 0;
	for (i = 0; slot != NULL && i < map->n; i++)
		if (map->pairs[i].key->type == MG_YAML_SCALAR)
			keyset_put(b, ks, map, i);
}

static void
keyset_clear(struct keyset *ks)
{
	free(ks->slot);
	memset(ks, 0, sizeof(*ks));
}

/* The earlier key of @p map equal to scalar @p k, or NULL. */
static const struct mg_yaml_node *
key_seen(const struct builder *b, const struct keyset *ks, const struct mg_yaml_node *map,
         const struct mg_yaml_node *k)
{
	size_t i;

	if (ks->cap == 0) {
		for (i = 0; i < map->n; i++)
			if (key_equal(map->pairs[i].key, k))
				return map->pairs[i].key;
		return NULL;
	}
	for (i = mg_probe_home(key_hash(b, k), ks->cap - 1); ks->slot[i] != 0;
	     i = mg_probe_next(i, ks->cap - 1))
		if (key_equal(map->pairs[ks->slot[i] - 1].key, k))
			return map->pairs[ks->slot[i] - 1].key;
	return NULL;
}

/*
 * Attach @p child to the container on top of the stack, or make it a
 * document. A mapping key equal to an earlier key of its mapping is an
 * error (-EINVAL, @p err set) and is not attached.
 */
static int
attach(struct builder *b, struct mg_yaml_file *f, struct mg_yaml_node *child, struct mg_error *err)
{
	struct mg_yaml_node *top;

	if (b->depth == 0) {
		if (mg_grow(&f->docs, &b->doccap, f->ndocs, sizeof(*f->docs), 4) != 0)
			return -ENOMEM;
		f->docs[f->ndocs++] = child;
		return 0;
	}
	top = b->stack[b->depth - 1];
	if (top->type == MG_YAML_SEQ) {
		if (mg_grow(&top->items, &b->cap[b->depth - 1], top->n, sizeof(*top->items), 4) !=
		    0)
			return -ENOMEM;
		top->items[top->n++] = child;
		return 0;
	}
	if (b->pending_key[b->depth - 1] == NULL) {
		const struct mg_yaml_node *first;

		if (child->type == MG_YAML_SCALAR &&
		    (first = key_seen(b, &b->keys[b->depth - 1], top, child)) != NULL) {
			mg_error_set(err, child->file, child->line, child->col,
			             "duplicate key '%.100s' (first at line %u)", child->str,
			             first->line);
			return -EINVAL;
		}
		b->pending_key[b->depth - 1] = child;
		return 0;
	}
	if (mg_grow(&top->pairs, &b->cap[b->depth - 1], top->n, sizeof(*top->pairs), 4) != 0)
		return -ENOMEM;
	top->pairs[top->n].key = b->pending_key[b->depth - 1];
	top->pairs[top->n].value = child;
	top->n++;
	b->pending_key[b->depth - 1] = NULL;
	if (top->pairs[top->n - 1].key->type == MG_YAML_SCALAR)
		keyset_add(b, &b->keys[b->depth - 1], top, top->n - 1);
	return 0;
}

struct mg_yaml_file *
mg_yaml_load_buf(const char *name, const void *buf, size_t len, struct mg_error *err)
{
	struct builder b = {.depth = 0};
	struct mg_yaml_file *f;
	struct mg_yaml_node *n;
	yaml_parser_t parser;
	yaml_event_t ev;
	int done = 0, rc = 0;

	if (len > MG_YAML_MAX_BYTES) {
		mg_error_set(err, NULL, 0, 0, "%s: larger than %u bytes", name, MG_YAML_MAX_BYTES);
		errno = EFBIG;
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL || (f->name = strdup(name)) == NULL) {
		free(f);
		mg_error_set(err, NULL, 0, 0, "%s: out of memory", name);
		errno = ENOMEM;
		return NULL;
	}
	b.name = f->name;
	if (getrandom(&b.seed, sizeof(b.seed), GRND_NONBLOCK) != (ssize_t)sizeof(b.seed))
		b.seed = (uint64_t)(uintptr_t)&b ^ ((uint64_t)len << 17); /* early boot */
	if (!yaml_parser_initialize(&parser)) {
		mg_yaml_free(f);
		mg_error_set(err, NULL, 0, 0, "%s: cannot initialise the YAML parser", name);
		errno = ENOMEM;
		return NULL;
	}
	yaml_parser_set_input_string(&parser, buf, len);

	while (!done && rc == 0) {
		if (!yaml_parser_parse(&parser, &ev)) {
			mg_error_set(err, f->name, (unsigned)parser.problem_mark.line + 1,
			             (unsigned)parser.problem_mark.column + 1,
			             "YAML syntax error: %s%s%s",
			             parser.problem ? parser.problem : "unknown",
			             parser.context ? " " : "",
			             parser.context ? parser.context : "");
			rc = -EINVAL;
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_ALIAS_EVENT:
			mg_error_set(err, f->name, (unsigned)ev.start_mark.line + 1,
			             (unsigned)ev.start_mark.column + 1,
			             "YAML aliases are not supported");
			rc = -EINVAL;
			break;
		case YAML_SCALAR_EVENT:
			n = node_new(MG_YAML_SCALAR, &ev.start_mark, f->name);
			if (n == NULL || (n->str = malloc(ev.data.scalar.length + 1)) == NULL) {
				node_free(n);
				rc = -ENOMEM;
				break;
			}
			memcpy(n->str, ev.data.scalar.value, ev.data.scalar.length);
			n->str[ev.data.scalar.length] = '\0';
			n->len = ev.data.scalar.length;
			n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
			rc = attach(&b, f, n, err);
			if (rc)
				node_free(n);
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (b.depth >= MG_YAML_MAX_DEPTH) {
				mg_error_set(err, f->name, (unsigned)ev.start_mark.line + 1,
				             (unsigned)ev.start_mark.column + 1,
				             "nesting deeper than %d levels", MG_YAML_MAX_DEPTH);
				rc = -EINVAL;
				break;
			}
			n = node_new(ev.type == YAML_SEQUENCE_START_EVENT ? MG_YAML_SEQ
			                                                  : MG_YAML_MAP,
			             &ev.start_mark, f->name);
			if (n == NULL) {
				rc = -ENOMEM;
				break;
			}
			rc = attach(&b, f, n, err);
			if (rc) {
				node_free(n);
				break;
			}
			b.pending_key[b.depth] = NULL;
			b.cap[b.depth] = 0;
			b.stack[b.depth++] = n;
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			if (b.depth > 0)
				keyset_clear(&b.keys[--b.depth]);
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	/* A mapping key whose value never came (only on error) is not attached. */
	while (b.depth > 0) {
		b.depth--;
		node_free(b.pending_key[b.depth]);
		keyset_clear(&b.keys[b.depth]);
	}
	yaml_parser_delete(&parser);
	if (rc) {
		if (rc == -ENOMEM)
			mg_error_set(err, NULL, 0, 0, "%s: out of memory", name);
		mg_yaml_free(f);
		errno = -rc;
		return NULL;
	}
	return f;
}

struct mg_yaml_file *
mg_yaml_load_file(const char *path, struct mg_error *err)
{
	struct mg_yaml_file *f;
	char *buf = NULL;
	size_t len = 0, cap = 0, r;
	FILE *fp;
	int e;

	fp = fopen(path, "rb");
	if (fp == NULL) {
		e = errno;
		mg_error_set(err, NULL, 0, 0, "%s: %s", path, strerror(e));
		errno = e;
		return NULL;
	}
	for (;;) {
		if (len == cap) {
			char *p;

			if (cap >= MG_YAML_MAX_BYTES + 1)
				break;
			cap = cap ? cap * 2 : 65536;
			p = realloc(buf, cap);
			if (p == NULL) {
				free(buf);
				fclose(fp);
				mg_error_set(err, NULL, 0, 0, "%s: out of memory", path);
				errno = ENOMEM;
				return NULL;
			}
			buf = p;
		}
		r = fread(buf + len, 1, cap - len, fp);
		len += r;
		if (r == 0)
			break;
	}
	e = ferror(fp) ? EIO : 0;
	fclose(fp);
	if (e) {
		free(buf);
		mg_error_set(err, NULL, 0, 0, "%s: read error", path);
		errno = e;
		return NULL;
	}
	f = mg_yaml_load_buf(path, buf ? buf : "", len, err);
	free(buf);
	return f;
}

const struct mg_yaml_node *
mg_yaml_get(const struct mg_yaml_node *map, const char *key)
{
	size_t i;

	if (map == NULL || map->type != MG_YAML_MAP)
		return NULL;
	for (i = 0; i < map->n; i++) {
		const struct mg_yaml_node *k = map->pairs[i].key;

		if (k->type == MG_YAML_SCALAR && strcmp(k->str, key) == 0)
			return map->pairs[i].value;
	}
	return NULL;
}

bool
mg_yaml_is_null(const struct mg_yaml_node *n)
{
	if (n == NULL)
		return true;
	if (n->type != MG_YAML_SCALAR || !n->plain)
		return false;
	return n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
	       strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0;
}

int
mg_yaml_error(struct mg_error *err, const struct mg_yaml_node *n, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n != NULL)
		mg_error_set(err, n->file, n->line, n->col, "%s", msg);
	else
		mg_error_set(err, NULL, 0, 0, "%s", msg);
	return -EINVAL;
}

static bool
listed(const char *k, const char *const *list)
{
	for (; list != NULL && *list != NULL; list++)
		if (strcmp(*list, k) == 0)
			return true;
	return false;
}

int
mg_yaml_check_keys(const struct mg_yaml_node *map, const char *what, const char *const *allowed,
                   const char *const *unsupported, struct mg_error *err)
{
	size_t i;
	int rc;

	rc = mg_yaml_map(map, what, err);
	if (rc)
		return rc;
	for (i = 0; i < map->n; i++) {
		const struct mg_yaml_node *k = map->pairs[i].key;

		if (k->type != MG_YAML_SCALAR)
			return mg_yaml_error(err, k, "%s: keys must be scalars", what);
		if (!listed(k->str, allowed) && !listed(k->str, unsupported))
			return mg_yaml_error(err, k, "%s: unknown key '%s'", what, k->str);
	}
	for (; unsupported != NULL && *unsupported != NULL; unsupported++)
		for (i = 0; i < map->n; i++)
			if (strcmp(map->pairs[i].key->str, *unsupported) == 0)
				return mg_yaml_error(err, map->pairs[i].key,
				                     "%s: key '%s' is not supported", what,
				                     *unsupported);
	return 0;
}

int
mg_yaml_check_map(const struct mg_yaml_node *map, const char *what, const char *const *allowed,
                  struct mg_error *err)
{
	return mg_yaml_check_keys(map, what, allowed, NULL, err);
}

int
mg_yaml_str(const struct mg_yaml_node *n, const char *what, const char **out, struct mg_error *err)
{
	if (n == NULL || n->type != MG_YAML_SCALAR || mg_yaml_is_null(n))
		return mg_yaml_error(err, n, "%s: expected a string", what);
	if (strlen(n->str) != n->len)
		return mg_yaml_error(err, n, "%s: string contains a NUL byte", what);
	*out = n->str;
	return 0;
}

int
mg_yaml_u64(const struct mg_yaml_node *n, const char *what, uint64_t min, uint64_t max,
            uint64_t *out, struct mg_error *err)
{
	unsigned long long v;
	char *end;

	if (n == NULL || n->type != MG_YAML_SCALAR || n->len == 0 || n->str[0] == '-' ||
	    n->str[0] == '+' || n->str[0] == ' ')
		return mg_yaml_error(err, n, "%s: expected an integer", what);
	errno = 0;
	v = strtoull(n->str, &end, 0);
	if (errno != 0 || *end != '\0' || end != n->str + n->len)
		return mg_yaml_error(err, n, "%s: expected an integer, got '%s'", what, n->str);
	if (v < min || v > max)
		return mg_yaml_error(err, n, "%s: %llu is out of range [%llu, %llu]", what, v,
		                     (unsigned long long)min, (unsigned long long)max);
	*out = v;
	return 0;
}

int
mg_yaml_bool(const struct mg_yaml_node *n, const char *what, bool *out, struct mg_error *err)
{
	if (n != NULL && n->type == MG_YAML_SCALAR && n->plain) {
		if (strcmp(n->str, "true") == 0 || strcmp(n->str, "True") == 0 ||
		    strcmp(n->str, "TRUE") == 0) {
			*out = true;
			return 0;
		}
		if (strcmp(n->str, "false") == 0 || strcmp(n->str, "False") == 0 ||
		    strcmp(n->str, "FALSE") == 0) {
			*out = false;
			return 0;
		}
	}
	return mg_yaml_error(err, n, "%s: expected true or false", what);
}

int
mg_yaml_seq(const struct mg_yaml_node *n, const char *what, bool null_ok, struct mg_error *err)
{
	if (n != NULL && n->type == MG_YAML_SEQ)
		return 0;
	if (null_ok && mg_yaml_is_null(n))
		return 0;
	return mg_yaml_error(err, n, "%s: expected a list", what);
}

int
mg_yaml_map(const struct mg_yaml_node *n, const char *what, struct mg_error *err)
{
	if (n != NULL && n->type == MG_YAML_MAP)
		return 0;
	return mg_yaml_error(err, n, "%s: expected a mapping", what);
}
