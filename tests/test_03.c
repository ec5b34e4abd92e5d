/**
 * @file test_03.c
 * @brief Step 03 (tiled FlashAttention on the CPU): the conformance table
 * against step 02 and the float64 oracle; O(N) memory.
 */
#include <check.h>
#include <stdlib.h>

#include "conformance.h"
#include "suites.h"

START_TEST(conformance)
{
    CONF_LOOP_BODY(&attn03_step, &attn02_step, 3000);
}
END_TEST

static size_t extra_bytes(int n)
{
    attn_problem p = {1, 1, 1, n, n, 64, 1, 0};
    size_t qn = attn_q_elems(&p);
    float *x = malloc(qn * 4 * 4 + (size_t)n * 4);
    attn_fill_normal(x, qn * 3, 11, ATTN_STREAM_Q);
    attn_run_stats st;
    char msg[256];
    ck_assert_int_eq(attn03_step.run(&attn03_step, &p, ATTN_F32, ATTN_LAYOUT_BHSD, x, x + qn, x + 2 * qn, x + 3 * qn,
                                     x + 4 * qn, NULL, &st, msg, sizeof msg), 0);
    free(x);
    return st.extra_bytes;
}

/* Tiles plus m and ℓ for one head: at most 1 MiB at N = 4096, and linear. */
START_TEST(memory_linear)
{
    size_t a = extra_bytes(1024), b = extra_bytes(4096);
    ck_assert_uint_le(b, 1u << 20);
    ck_assert_msg(b <= 4 * a, "extra_bytes grew from %zu to %zu (more than 4x)", a, b);
    ck_assert_uint_ge(b, 2u * 4096 * 4); /* m and ℓ are there */
}
END_TEST

Suite *suite_step03(void)
{
    Suite *s = suite_create("step03");
    TCase *tc = tcase_create("conformance");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, conformance, 0, CONF_LOOP_COUNT);
    suite_add_tcase(s, tc);
    tc = tcase_create("properties");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, memory_linear);
    suite_add_tcase(s, tc);
    return s;
}
