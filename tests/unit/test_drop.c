/* SPDX-License-Identifier: BSD-3-Clause */
/* The drop-reason table: labels are unique, snake_case, and every reason has a description. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_drop.h"
#include "mg_test.h"

static void
test_labels_unique(void)
{
	unsigned i, j;

	for (i = 0; i < MG_DROP__MAX; i++) {
		const char *l = mg_drop_label(i);

		CU_ASSERT_PTR_NOT_NULL_FATAL(l);
		CU_ASSERT_TRUE(strlen(l) > 0);
		for (const char *c = l; *c; c++)
			CU_ASSERT_TRUE(islower((unsigned char)*c) || isdigit((unsigned char)*c) ||
			               *c == '_');
		CU_ASSERT_TRUE(strlen(mg_drop_desc(i)) > 0);
		for (j = 0; j < i; j++)
			CU_ASSERT_NOT_EQUAL(strcmp(l, mg_drop_label(j)), 0);
	}
	CU_ASSERT_STRING_EQUAL(mg_drop_label(MG_DROP__MAX), "unknown");
	CU_ASSERT_STRING_EQUAL(mg_drop_label(MG_DROP_IP4_IHL), "ipv4_bad_ihl");
}

/* docs/metrics.md lists every reason. */
static void
test_documented(void)
{
	char path[4096], *doc;
	size_t n;
	FILE *f;
	unsigned i;

	snprintf(path, sizeof(path), "%s/docs/metrics.md", MG_SOURCE_ROOT);
	f = fopen(path, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	doc = calloc(1, 1 << 20);
	CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
	n = fread(doc, 1, (1 << 20) - 1, f);
	fclose(f);
	CU_ASSERT_TRUE(n > 0);
	for (i = 1; i < MG_DROP__MAX; i++) {
		char needle[128];

		snprintf(needle, sizeof(needle), "| `%s` |", mg_drop_label(i));
		if (strstr(doc, needle) == NULL)
			fprintf(stderr, "docs/metrics.md does not list %s\n", mg_drop_label(i));
		CU_ASSERT_PTR_NOT_NULL(strstr(doc, needle));
	}
	free(doc);
}

static CU_TestInfo tests[] = {
        {"labels_unique", test_labels_unique},
        {"documented", test_documented},
        CU_TEST_INFO_NULL,
};

MG_TEST_MAIN("drop", tests)
