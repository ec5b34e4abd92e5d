/**
 * @file suites.h
 * @brief The CPU suites test_main.c runs, one per file.
 */
#ifndef ATTN_SUITES_H
#define ATTN_SUITES_H

#include <check.h>

Suite *suite_npy(void);
Suite *suite_cli(void);
Suite *suite_program(void);
Suite *suite_oracle(void);
Suite *suite_metrics(void);
Suite *suite_step01(void);
Suite *suite_step02(void);
Suite *suite_step03(void);
Suite *suite_step07(void);
Suite *suite_step08(void);
Suite *suite_step09(void);
Suite *suite_step10(void);
Suite *suite_precision(void);

/*
 * The conformance loop shared by the step suites: iteration _i runs case
 * _i of the table (conformance.h: conf_case) on fresh inputs.
 */
#define CONF_LOOP_COUNT conf_case_count()
#define CONF_LOOP_BODY(step, prev, seed_base)                                  \
    do {                                                                       \
        attn_problem p_;                                                       \
        conf_kind kind_;                                                       \
        conf_case(_i, &p_, &kind_);                                            \
        conf_check_step((step), (prev), &p_, kind_, (seed_base) + (uint64_t)_i); \
    } while (0)

#endif
