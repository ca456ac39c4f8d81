/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The glue every CUnit test program shares. Each test prints one line,
 * "PASS: suite/test" or "FAIL: suite/test: file:line: condition", which
 * the suite runner (scripts/test.sh) counts; the program exits non-zero
 * when any test failed.
 *
 * Use:  static CU_TestInfo tests[] = {{"name", fn}, ..., CU_TEST_INFO_NULL};
 *       MG_TEST_MAIN("suite", tests)
 * or, for several suites, build a CU_SuiteInfo array and MG_TEST_MAIN_SUITES(suites).
 */
#ifndef MG_TEST_H
#define MG_TEST_H

#include <CUnit/CUnit.h>
#include <CUnit/TestRun.h>
#include <stdio.h>
#include <stdlib.h>

static void
mg_test_complete(const CU_pTest test, const CU_pSuite suite, const CU_pFailureRecord fail)
{
	if (fail == NULL) {
		printf("PASS: %s/%s\n", suite->pName, test->pName);
		return;
	}
	for (CU_pFailureRecord f = fail; f != NULL; f = f->pNext)
		printf("FAIL: %s/%s: %s:%u: %s\n", suite->pName, test->pName,
		       f->strFileName ? f->strFileName : "?", f->uiLineNumber,
		       f->strCondition ? f->strCondition : "?");
}

static inline int
mg_test_run(CU_SuiteInfo *suites)
{
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	if (CU_register_suites(suites) != CUE_SUCCESS) {
		fprintf(stderr, "CU_register_suites: %s\n", CU_get_error_msg());
		return 2;
	}
	CU_set_test_complete_handler(mg_test_complete);
	CU_run_all_tests();
	failed = CU_get_number_of_tests_failed() + CU_get_number_of_suites_failed();
	if (CU_get_number_of_suites_failed())
		printf("FAIL: %u suite(s) failed to initialise\n",
		       CU_get_number_of_suites_failed());
	CU_cleanup_registry();
	return failed ? 1 : 0;
}

#define MG_TEST_MAIN_SUITES(suites)         \
	int main(void)                      \
	{                                   \
		return mg_test_run(suites); \
	}

#define MG_TEST_MAIN(name, tests)                                               \
	int main(void)                                                          \
	{                                                                       \
		CU_SuiteInfo suites[] = {{name, NULL, NULL, NULL, NULL, tests}, \
		                         CU_SUITE_INFO_NULL};                   \
		return mg_test_run(suites);                                     \
	}

#endif /* MG_TEST_H */
