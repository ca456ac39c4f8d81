/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the positioned YAML tree (lib/common/mg_yaml.c). */
#include <string.h>

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

	f = load("a: 1\nb: 2\na: 3\n", &err);
	CU_ASSERT_EQUAL(mg_yaml_check_map(f->docs[0], "top", allowed, &err), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err.msg, "t.yaml:3:1: top: duplicate key 'a' (first at line 1)");
	mg_yaml_free(f);
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

static CU_TestInfo tests[] = {
        {"positions", test_positions},
        {"multi_doc", test_multi_doc},
        {"syntax_error", test_syntax_error},
        {"alias_refused", test_alias_refused},
        {"depth_capped", test_depth_capped},
        {"check_map", test_check_map},
        {"scalars", test_scalars},
        {"missing_file", test_missing_file},
        CU_TEST_INFO_NULL,
};

MG_TEST_MAIN("yaml", tests)
