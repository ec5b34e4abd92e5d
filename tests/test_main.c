/**
 * @file test_main.c
 * @brief The CPU test runner: every CPU suite, one Check summary.
 *
 * Pick one suite or case with Check's own variables:
 * `CK_RUN_SUITE=step02 build/bin/test_cpu`, `CK_RUN_CASE=npy ...`.
 */
#include <check.h>
#include <stdlib.h>

#include "suites.h"

int main(void)
{
    SRunner *sr = srunner_create(suite_npy());
    srunner_add_suite(sr, suite_cli());
    srunner_add_suite(sr, suite_program());
    srunner_add_suite(sr, suite_oracle());
    srunner_add_suite(sr, suite_metrics());
    srunner_add_suite(sr, suite_step01());
    srunner_add_suite(sr, suite_step02());
    srunner_add_suite(sr, suite_step03());
    srunner_add_suite(sr, suite_step07());
    srunner_add_suite(sr, suite_step08());
    srunner_add_suite(sr, suite_step09());
    srunner_add_suite(sr, suite_step10());
    srunner_add_suite(sr, suite_precision());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
