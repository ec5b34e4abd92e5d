/**
 * @file test_02.c
 * @brief Step 02 (online softmax): the conformance table against step 01
 * and the float64 oracle; no N×N buffer.
 */
#include <check.h>
#include <stdlib.h>

#include "conformance.h"
#include "suites.h"

START_TEST(conformance)
{
    CONF_LOOP_BODY(&attn02_step, &attn01_step, 2000);
}
END_TEST

/* One accumulator row of D floats, whatever the length. */
START_TEST(memory_constant)
{
    for (int n = 256; n <= 2048; n *= 8) {
        attn_problem p = {1, 1, 1, n, n, 64, 1, 0};
        size_t qn = attn_q_elems(&p);
        float *x = malloc(qn * 4 * 4 + (size_t)n * 4);
        attn_fill_normal(x, qn * 3, 9, ATTN_STREAM_Q);
        attn_run_stats st;
        char msg[256];
        ck_assert_int_eq(attn02_step.run(&attn02_step, &p, ATTN_F32, ATTN_LAYOUT_BHSD, x, x + qn, x + 2 * qn, x + 3 * qn,
                                         x + 4 * qn, NULL, &st, msg, sizeof msg), 0);
        ck_assert_uint_le(st.extra_bytes, 64 * 4);
        free(x);
    }
}
END_TEST

Suite *suite_step02(void)
{
    Suite *s = suite_create("step02");
    TCase *tc = tcase_create("conformance");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, conformance, 0, CONF_LOOP_COUNT);
    suite_add_tcase(s, tc);
    tc = tcase_create("properties");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, memory_constant);
    suite_add_tcase(s, tc);
    return s;
}
