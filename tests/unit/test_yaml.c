/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the positioned YAML tree (lib/common/mg_yaml.c). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mg_test.h"
#include "mg_yaml.h"

static struct mg_yaml_file *
load(const char *text, struct mg_error *err)
{
	return mg_yaml_load_buf("t.yaml", text, strlen(text), err);
}

static void
test_positions(void)
{
	struct mg_error err = {{0}};
	struct mg_yaml_file *f = load("a: 1\nb:\n  - x\n  - {c: d}\n", &err);
	const struct mg_yaml_node *b, *c;

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(f->ndocs, 1);
	b = mg_yaml_get(f->docs[0], "b");
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(b->type, MG_YAML_SEQ);
	CU_ASSERT_EQUAL(b->n, 2);
	CU_ASSERT_EQUAL(b->line, 3);
	CU_ASSERT_EQUAL(b->col, 3);
	c = mg_yaml_get(b->items[1], "c");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(c->str, "d");
	CU_ASSERT_EQUAL(c->line, 4);
	CU_ASSERT_EQUAL(c->col, 9);
	mg_yaml_free(f);
}

static void
test_multi_doc(void)
{
	struct mg_error err = {{0}};
	struct mg_yaml_file *f = load("---\na: 1\n---\n---\nb: 2\n", &err);

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	/* the empty middle document is a null scalar document */
	CU_ASSERT_EQUAL(f->ndocs, 3);
	CU_ASSERT_TRUE(mg_yaml_is_null(f->docs[1]));
	mg_yaml_free(f);
}

static void
test_syntax_error(void)
{
	struct mg_error err = {{0}};
	struct mg_yaml_file *f = load("a: [1, 2\nb: 3\n", &err);

	CU_ASSERT_PTR_NULL(f);
	CU_ASSERT_EQUAL(strncmp(err.msg, "t.yaml:", 7), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "syntax error"));
}

static void
test_alias_refused(void)
{
	struct mg_error err = {{0}};
	struct mg_yaml_file *f = load("a: &x {b: 1}\nc: *x\n", &err);

	CU_ASSERT_PTR_NULL(f);
	CU_ASSERT_STRING_EQUAL(err.msg, "t.yaml:2:4: YAML aliases are not supported");
}

static void
test_depth_capped(void)
{
	struct mg_error err = {{0}};
	char deep[4 * MG_YAML_MAX_DEPTH + 8];
	struct mg_yaml_file *f;
	unsigned i;

	for (i = 0; i < MG_YAML_MAX_DEPTH + 1; i++)
		deep[i] = '[';
	deep[i] = '\0';
	f = load(deep, &err);
	CU_ASSERT_PTR_NULL(f);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "nesting deeper"));
}

static void
test_check_map(void)
{
	static const char *const allowed[] = {"a", "b", NULL};
	struct mg_error err = {{0}};
	struct mg_yaml_file *f;

	f = load("a: 1\nb: 2\n", &err);
	CU_ASSERT_EQUAL(mg_yaml_check_map(f->docs[0], "top", allowed, &err), 0);
	mg_yaml_free(f);

	f = load("a: 1\nzz: 2\n", &err);
	CU_ASSERT_EQUAL(mg_yaml_check_map(f->docs[0], "top", allowed, &err), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err.msg, "t.yaml:2:1: top: unknown key 'zz'");
	mg_yaml_free(f);

	/* a repeated key never gets this far: the tree builder refuses it */
	CU_ASSERT_PTR_NULL(load("a: 1\nb: 2\na: 3\n", &err));
}

/* Keys the format has but the reader refuses: known, so reported after a misspelt one. */
static void
test_check_keys_unsupported(void)
{
	static const char *const allowed[] = {"a", "b", NULL};
	static const char *const unsup[] = {"u", "v", NULL};
	struct mg_error err = {{0}};
	struct mg_yaml_file *f;

	f = load("a: 1\nb: 2\n", &err);
	CU_ASSERT_EQUAL(mg_yaml_check_keys(f->docs[0], "top", allowed, unsup, &err), 0);
	mg_yaml_free(f);

	f = load("a: 1\nv: 2\nu: 3\n", &err);
	CU_ASSERT_EQUAL(mg_yaml_check_keys(f->docs[0], "top", allowed, unsup, &err), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err.msg, "t.yaml:3:1: top: key 'u' is not supported");
	mg_yaml_free(f);

	f = load("u: 1\nzz: 2\n", &err);
	CU_ASSERT_EQUAL(mg_yaml_check_keys(f->docs[0], "top", allowed, unsup, &err), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err.msg, "t.yaml:2:1: top: unknown key 'zz'");
	mg_yaml_free(f);

	f = load("[u]: 1\n", &err);
	CU_ASSERT_EQUAL(mg_yaml_check_keys(f->docs[0], "top", allowed, NULL, &err), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err.msg, "t.yaml:1:1: top: keys must be scalars");
	mg_yaml_free(f);
}

/* The file must fail to load with exactly @p want (reported with the caller's line). */
static void
expect_load_error_at(int line, const char *text, const char *want)
{
	struct mg_error err = {{0}};
	struct mg_yaml_file *f;

	errno = 0;
	f = load(text, &err);
	CU_ASSERT_PTR_NULL(f);
	CU_ASSERT_EQUAL(errno, EINVAL);
	if (strcmp(err.msg, want) != 0)
		printf("test_yaml.c:%d:\n  want: %s\n  got:  %s\n", line, want, err.msg);
	CU_ASSERT_STRING_EQUAL(err.msg, want);
	mg_yaml_free(f);
}
#define EXPECT_LOAD_ERROR(text, want) expect_load_error_at(__LINE__, text, want)

static void
expect_loads_at(int line, const char *text)
{
	struct mg_error err = {{0}};
	struct mg_yaml_file *f = load(text, &err);

	if (f == NULL)
		printf("test_yaml.c:%d: unexpected error: %s\n", line, err.msg);
	CU_ASSERT_PTR_NOT_NULL(f);
	mg_yaml_free(f);
}
#define EXPECT_LOADS(text) expect_loads_at(__LINE__, text)

/* Two equal keys in one mapping, at any level, block or flow style. */
static void
test_duplicate_keys(void)
{
	/* top level, block style: at the second key, naming the first's line */
	EXPECT_LOAD_ERROR("a: 1\nb: 2\na: 3\n", "t.yaml:3:1: duplicate key 'a' (first at line 1)");
	/* nested block maps, three levels down */
	EXPECT_LOAD_ERROR("spec:\n  endpointSelector:\n    matchLabels:\n      app: db\n"
	                  "      tier: x\n      app: backend\n",
	                  "t.yaml:6:7: duplicate key 'app' (first at line 4)");
	/* a flow map */
	EXPECT_LOAD_ERROR("sel: {matchLabels: {app: db, app: backend}}\n",
	                  "t.yaml:1:30: duplicate key 'app' (first at line 1)");
	/* a block map inside a flow sequence inside a block map */
	EXPECT_LOAD_ERROR("x:\n  - [{a: 1}, {b: 1, c: 2, b: 3}]\n",
	                  "t.yaml:2:27: duplicate key 'b' (first at line 2)");
	/* a mapping in a sequence item */
	EXPECT_LOAD_ERROR("ports:\n- port: 80\n  protocol: TCP\n  port: 443\n",
	                  "t.yaml:4:3: duplicate key 'port' (first at line 2)");
	/* quoting does not make a different key */
	EXPECT_LOAD_ERROR("app: a\n\"app\": b\n",
	                  "t.yaml:2:1: duplicate key 'app' (first at line 1)");
	EXPECT_LOAD_ERROR("'app': a\napp: b\n",
	                  "t.yaml:2:1: duplicate key 'app' (first at line 1)");
	EXPECT_LOAD_ERROR("{\"a b\": 1, a b: 2}\n",
	                  "t.yaml:1:12: duplicate key 'a b' (first at line 1)");
	/* the first repeated key of the document is reported, not an inner one closed earlier */
	EXPECT_LOAD_ERROR("a: 1\na: 2\nb: {c: 1, c: 2}\n",
	                  "t.yaml:2:1: duplicate key 'a' (first at line 1)");
	EXPECT_LOAD_ERROR("b: {c: 1, c: 2}\na: 1\na: 2\n",
	                  "t.yaml:1:11: duplicate key 'c' (first at line 1)");
	/* in the second document */
	EXPECT_LOAD_ERROR("a: 1\n---\nb: 1\nb: 2\n",
	                  "t.yaml:4:1: duplicate key 'b' (first at line 3)");

	/* a source prefix makes a different key; so does case or a trailing space */
	EXPECT_LOADS("matchLabels:\n  k8s:app: db\n  app: db\n  any:app: x\n");
	EXPECT_LOADS("App: 1\napp: 2\n\"app \": 3\n");
	/* the same key in different mappings, sequence items and documents */
	EXPECT_LOADS("a: {x: 1}\nb: {x: 1}\nc:\n- x: 1\n- x: 2\n");
	EXPECT_LOADS("a: 1\n---\na: 1\n");
	/* a value equal to a key is no key */
	EXPECT_LOADS("a: a\nb: a\n");
}

/*
 * A mapping of a million keys loads in linear time (a quadratic check would
 * not finish within the test's time limit), and a repeated key at its end,
 * or one far apart from its first, is still found.
 */
static void
test_duplicate_keys_big_map(void)
{
	const size_t nkeys = 1000000;
	size_t cap = nkeys * 16 + 64, n = 0, i;
	struct mg_error err = {{0}};
	struct mg_yaml_file *f;
	char *y = malloc(cap);

	CU_ASSERT_PTR_NOT_NULL_FATAL(y);
	n += (size_t)snprintf(y + n, cap - n, "m:\n");
	for (i = 0; i < nkeys; i++)
		n += (size_t)snprintf(y + n, cap - n, "  k%zu: v\n", i);
	f = mg_yaml_load_buf("t.yaml", y, n, &err);
	if (f == NULL)
		printf("  big map: %s\n", err.msg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(mg_yaml_get(f->docs[0], "m")->n, nkeys);
	CU_ASSERT_STRING_EQUAL(mg_yaml_get(mg_yaml_get(f->docs[0], "m"), "k999999")->str, "v");
	mg_yaml_free(f);

	/* key 17 again as the last one: line 19 first, line nkeys + 2 now */
	snprintf(y + n, cap - n, "  k17: w\n");
	f = mg_yaml_load_buf("t.yaml", y, strlen(y), &err);
	CU_ASSERT_PTR_NULL(f);
	CU_ASSERT_STRING_EQUAL(err.msg, "t.yaml:1000002:3: duplicate key 'k17' (first at line 19)");
	mg_yaml_free(f);
	free(y);
}

static void
test_scalars(void)
{
	struct mg_error err = {{0}};
	struct mg_yaml_file *f = load("n: 42\nh: 0x10\nneg: -1\nbig: 99999999999999999999\n"
	                              "t: true\nq: 'true'\nnul: ~\ns: \"null\"\n",
	                              &err);
	const struct mg_yaml_node *d;
	uint64_t v = 0;
	bool b = false;
	const char *s = NULL;

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	d = f->docs[0];
	CU_ASSERT_EQUAL(mg_yaml_u64(mg_yaml_get(d, "n"), "n", 0, 100, &v, &err), 0);
	CU_ASSERT_EQUAL(v, 42);
	CU_ASSERT_EQUAL(mg_yaml_u64(mg_yaml_get(d, "h"), "h", 0, 100, &v, &err), 0);
	CU_ASSERT_EQUAL(v, 16);
	CU_ASSERT_EQUAL(mg_yaml_u64(mg_yaml_get(d, "n"), "n", 0, 10, &v, &err), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err.msg, "t.yaml:1:4: n: 42 is out of range [0, 10]");
	CU_ASSERT_EQUAL(mg_yaml_u64(mg_yaml_get(d, "neg"), "neg", 0, 10, &v, &err), -EINVAL);
	CU_ASSERT_EQUAL(mg_yaml_u64(mg_yaml_get(d, "big"), "big", 0, UINT64_MAX, &v, &err),
	                -EINVAL);
	CU_ASSERT_EQUAL(mg_yaml_bool(mg_yaml_get(d, "t"), "t", &b, &err), 0);
	CU_ASSERT_TRUE(b);
	CU_ASSERT_EQUAL(mg_yaml_bool(mg_yaml_get(d, "q"), "q", &b, &err), -EINVAL);
	CU_ASSERT_TRUE(mg_yaml_is_null(mg_yaml_get(d, "nul")));
	CU_ASSERT_FALSE(mg_yaml_is_null(mg_yaml_get(d, "s")));
	CU_ASSERT_EQUAL(mg_yaml_str(mg_yaml_get(d, "s"), "s", &s, &err), 0);
	CU_ASSERT_STRING_EQUAL(s, "null");
	CU_ASSERT_EQUAL(mg_yaml_str(mg_yaml_get(d, "nul"), "nul", &s, &err), -EINVAL);
	mg_yaml_free(f);
}

static void
test_missing_file(void)
{
	struct mg_error err = {{0}};

	CU_ASSERT_PTR_NULL(mg_yaml_load_file("/nonexistent/x.yaml", &err));
	CU_ASSERT_EQUAL(errno, ENOENT);
	CU_ASSERT_STRING_EQUAL(err.msg, "/nonexistent/x.yaml: No such file or directory");
}

/* docs/reliability.md, "Limits": a file or buffer over MG_YAML_MAX_BYTES is refused unparsed. */
static void
test_size_capped(void)
{
	char path[] = "/tmp/mg-yaml-big.XXXXXX";
	struct mg_error err = {{0}};
	static const char small[] = "a: 1\n";
	int fd;

	errno = 0;
	CU_ASSERT_PTR_NULL(
	        mg_yaml_load_buf("big.yaml", small, (size_t)MG_YAML_MAX_BYTES + 1, &err));
	CU_ASSERT_EQUAL(errno, EFBIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "big.yaml: larger than"));

	fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(ftruncate(fd, (off_t)MG_YAML_MAX_BYTES + 1), 0);
	close(fd);
	memset(&err, 0, sizeof(err));
	errno = 0;
	CU_ASSERT_PTR_NULL(mg_yaml_load_file(path, &err));
	CU_ASSERT_EQUAL(errno, EFBIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "larger than"));
	unlink(path);
}

static CU_TestInfo tests[] = {
        {"positions", test_positions},
        {"multi_doc", test_multi_doc},
        {"syntax_error", test_syntax_error},
        {"alias_refused", test_alias_refused},
        {"depth_capped", test_depth_capped},
        {"check_map", test_check_map},
        {"check_keys_unsupported", test_check_keys_unsupported},
        {"duplicate_keys", test_duplicate_keys},
        {"duplicate_keys_big_map", test_duplicate_keys_big_map},
        {"scalars", test_scalars},
        {"missing_file", test_missing_file},
        {"size_capped", test_size_capped},
        CU_TEST_INFO_NULL,
};

MG_TEST_MAIN("yaml", tests)
