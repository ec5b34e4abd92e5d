/**
 * @file test_metrics.c
 * @brief Suite metrics: the error metrics and the pass rule, the seeded
 * inputs, the host memory accounting, the problem's rules.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "common.h"
#include "suites.h"

/* ---- metrics, inputs, validation ---------------------------------------- */

START_TEST(metrics)
{
    float x[5] = {1.0f, 2.5f, NAN, -INFINITY, 4.0f};
    double ref[5] = {1.0, 2.0, NAN, -INFINITY, 4.0};
    attn_err e = attn_compare(x, ref, 5);
    ck_assert_double_eq_tol(e.max_abs, 0.5, 1e-12);
    ck_assert_double_eq_tol(e.rel_l2, 0.5 / sqrt(1 + 4 + 16), 1e-12);
    ck_assert_uint_eq(e.nan_count + e.nan_missing + e.inf_mismatch, 0);
    ck_assert(attn_rule_ok(&e, 0.25, 2, 1e-6));
    ck_assert(!attn_rule_ok(&e, 0.2, 2, 1e-6));
    ref[2] = 1.0; /* NaN where the reference has none: fails the rule */
    e = attn_compare(x, ref, 5);
    ck_assert_uint_eq(e.nan_count, 1);
    ck_assert(!attn_rule_ok(&e, 1.0, 2, 1e-6));
    x[2] = 1.0f, ref[2] = NAN; /* a NaN the step lost */
    e = attn_compare(x, ref, 5);
    ck_assert_uint_eq(e.nan_missing, 1);
    x[3] = 7.0f; /* a finite value where -inf belongs */
    e = attn_compare(x, ref, 5);
    ck_assert_uint_eq(e.inf_mismatch, 1);
    float l[3] = {-INFINITY, 2.0f, 1.0f};
    double lr[3] = {-INFINITY, 2.0, 1.0 + 1e-6};
    ck_assert_double_le(attn_lse_err(l, lr, 3), 1e-6);
    lr[0] = 0;
    ck_assert(isinf(attn_lse_err(l, lr, 3)));
    double med[5] = {5, 1, 4, 2, 3};
    ck_assert_double_eq(attn_median(med, 5), 3);
    ck_assert_double_eq(attn_median(med, 4), 2.5);
}
END_TEST

START_TEST(inputs_seeded)
{
    enum { N = 100001 };
    float *a = malloc(N * 4), *b = malloc(N * 4), *c = malloc(N * 4);
    attn_fill_normal(a, N, 42, ATTN_STREAM_Q);
    attn_fill_normal(b, N, 42, ATTN_STREAM_Q);
    attn_fill_normal(c, N, 42, ATTN_STREAM_K);
    ck_assert_mem_eq(a, b, N * 4);
    double mean = 0, var = 0;
    int same = 0;
    for (int i = 0; i < N; i++) {
        mean += a[i];
        same += a[i] == c[i];
        ck_assert(isfinite(a[i]) && a[i] != 0.0f);
    }
    mean /= N;
    for (int i = 0; i < N; i++)
        var += (a[i] - mean) * (a[i] - mean);
    var /= N;
    ck_assert_double_lt(fabs(mean), 0.02);
    ck_assert_double_lt(fabs(var - 1), 0.02);
    ck_assert_int_lt(same, 10);
    /* a prefix is the same whatever the length asked for */
    attn_fill_normal(b, 1001, 42, ATTN_STREAM_Q);
    ck_assert_mem_eq(a, b, 1001 * 4);
    free(a), free(b), free(c);
}
END_TEST

START_TEST(memory_accounting)
{
    attn_mem_reset_peak();
    void *a = attn_alloc(1000), *b = attn_alloc(500);
    attn_free(a);
    void *c = attn_alloc(200);
    ck_assert_uint_eq(attn_mem_peak(), 1500);
    attn_free(b), attn_free(c);
    attn_mem_fail_after(0);
    ck_assert_ptr_null(attn_alloc(12345));
    ck_assert_uint_eq(attn_mem_failed_bytes(), 12345);
    attn_mem_fail_after(-1);
    ck_assert_ptr_null(attn_calloc((size_t)-1 / 2, 4)); /* overflow refused */
    void *d = attn_alloc(8);
    ck_assert_ptr_nonnull(d);
    attn_free(d);
}
END_TEST

START_TEST(problem_rules)
{
    attn_problem p = {1, 8, 2, 10, 20, 64, 1, 0};
    char msg[256];
    ck_assert_int_eq(attn_problem_validate(&p, msg, sizeof msg), 0);
    ck_assert_float_eq(attn_scale(&p), 0.125f);
    ck_assert_int_eq(attn_kv_head(&p, 3), 0);
    ck_assert_int_eq(attn_kv_head(&p, 4), 1);
    ck_assert_int_eq(attn_keys_visible(&p, 0), 11); /* bottom-right: j <= i + 10 */
    ck_assert_int_eq(attn_keys_visible(&p, 9), 20);
    ck_assert_double_eq(attn_flops_forward(&p), 4.0 * 8 * 10 * 20 * 64 / 2);
    p.seqlen_q = 30;
    ck_assert_int_eq(attn_keys_visible(&p, 5), 0);
    ck_assert_int_eq(attn_keys_visible(&p, 10), 1);
    p.softmax_scale = -1;
    ck_assert_int_eq(attn_problem_validate(&p, msg, sizeof msg), ATTN_EXIT_BAD_INPUT);
    p.softmax_scale = 0, p.heads_kv = 3;
    ck_assert_int_eq(attn_problem_validate(&p, msg, sizeof msg), ATTN_EXIT_BAD_INPUT);
}
END_TEST

Suite *suite_metrics(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_test(tc, metrics);
    tcase_add_test(tc, inputs_seeded);
    tcase_add_test(tc, memory_accounting);
    tcase_add_test(tc, problem_rules);
    suite_add_tcase(s, tc);
    return s;
}
