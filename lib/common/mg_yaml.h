/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A YAML document tree that remembers where every node came from, so that
 * every loader of outside input (config, policies, manifests) can report
 * "file:line:column: message". Built from libyaml's event stream.
 *
 * Deliberate limits, each an error with its position: aliases and anchors
 * (Kubernetes manifests never need them, and they allow exponential
 * documents), nesting deeper than MG_YAML_MAX_DEPTH, files larger than
 * MG_YAML_MAX_BYTES, and a mapping with two equal scalar keys at any level
 * ("file:line:col: duplicate key 'app' (first at line 4)", at the second
 * key; "app" and app are the same key, k8s:app and app are not). So every
 * mapping of a tree has distinct scalar keys, and no loader can read one
 * value of a key and miss another.
 */
#ifndef MG_YAML_H
#define MG_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_common.h"

#define MG_YAML_MAX_DEPTH 64
#define MG_YAML_MAX_BYTES (64u << 20)

enum mg_yaml_type {
	MG_YAML_SCALAR,
	MG_YAML_SEQ,
	MG_YAML_MAP,
};

struct mg_yaml_node;

/** One key/value pair of a mapping, in document order. */
struct mg_yaml_pair {
	struct mg_yaml_node *key;
	struct mg_yaml_node *value;
};

struct mg_yaml_node {
	enum mg_yaml_type type;
	unsigned line;    /**< 1-based */
	unsigned col;     /**< 1-based */
	const char *file; /**< the file's name as given to the loader */
	/* MG_YAML_SCALAR */
	char *str;  /**< NUL-terminated value */
	size_t len; /**< its length (may contain NUL bytes before len) */
	bool plain; /**< written without quotes (so "null" is a string, null is not) */
	/* MG_YAML_SEQ: items; MG_YAML_MAP: pairs */
	size_t n;
	struct mg_yaml_node **items;
	struct mg_yaml_pair *pairs;
};

/** All documents of one stream. Empty documents are skipped. */
struct mg_yaml_file {
	char *name;
	size_t ndocs;
	struct mg_yaml_node **docs;
};

/**
 * Parse the file at @p path.
 * @return the documents, or NULL with errno set and @p err filled:
 *   EINVAL for syntax errors, aliases, nesting and duplicate keys
 *   ("path:line:col: ..."), EFBIG for a file over MG_YAML_MAX_BYTES,
 *   ENOMEM, or the errno of the failed open or read ("path: ...").
 */
struct mg_yaml_file *mg_yaml_load_file(const char *path, struct mg_error *err);

/** Parse @p len bytes at @p buf; @p name is used in messages. Same returns as above. */
struct mg_yaml_file *mg_yaml_load_buf(const char *name, const void *buf, size_t len,
                                      struct mg_error *err);

/** Free what a loader returned. NULL is fine. */
void mg_yaml_free(struct mg_yaml_file *f);

/** Value of @p key in map @p map, or NULL (also when @p map is not a map). */
const struct mg_yaml_node *mg_yaml_get(const struct mg_yaml_node *map, const char *key);

/** True for a plain scalar null: empty, `~`, `null`, `Null`, `NULL`. */
bool mg_yaml_is_null(const struct mg_yaml_node *n);

/**
 * Check that @p map is a mapping whose keys are all in the NULL-terminated
 * list @p allowed, and that every key is a scalar. (That no key is there
 * twice, the tree builder already made sure.) The one key check of every
 * loader: mg_yaml_check_keys() with no unsupported keys.
 * @p what names the map in messages ("datapath", "toPorts[0]").
 * @return 0, or -EINVAL with @p err set at the offending key:
 *   "<what>: expected a mapping", "<what>: keys must be scalars",
 *   "<what>: unknown key 'k'".
 */
int mg_yaml_check_map(const struct mg_yaml_node *map, const char *what, const char *const *allowed,
                      struct mg_error *err);

/**
 * mg_yaml_check_map(), where the NULL-terminated list @p unsupported (NULL:
 * none) names keys the format has but this reader refuses. Every key is
 * checked for being known (in @p allowed or @p unsupported) first, so a
 * misspelt key is reported before an unsupported one; then the first key
 * of @p unsupported that @p map holds is "<what>: key 'k' is not supported",
 * at that key.
 */
int mg_yaml_check_keys(const struct mg_yaml_node *map, const char *what, const char *const *allowed,
                       const char *const *unsupported, struct mg_error *err);

/** Set @p err at @p n's position: "file:line:col: <fmt>". Returns -EINVAL. */
int mg_yaml_error(struct mg_error *err, const struct mg_yaml_node *n, const char *fmt, ...)
        MG_PRINTF(3, 4);

/** @p n must be a scalar; store its string in @p out. Returns 0 or -EINVAL with @p err set. */
int mg_yaml_str(const struct mg_yaml_node *n, const char *what, const char **out,
                struct mg_error *err);

/** @p n must be an integer scalar within [min, max] (decimal, or 0x hex). */
int mg_yaml_u64(const struct mg_yaml_node *n, const char *what, uint64_t min, uint64_t max,
                uint64_t *out, struct mg_error *err);

/** @p n must be a plain boolean scalar: true/false (also True/TRUE/False/FALSE). */
int mg_yaml_bool(const struct mg_yaml_node *n, const char *what, bool *out, struct mg_error *err);

/** @p n must be a sequence (a NULL or null node counts as an empty one when @p null_ok). */
int mg_yaml_seq(const struct mg_yaml_node *n, const char *what, bool null_ok, struct mg_error *err);

/** @p n must be a mapping. */
int mg_yaml_map(const struct mg_yaml_node *n, const char *what, struct mg_error *err);

#endif /* MG_YAML_H */
