/**
 * @file test_metrics.c
 * @brief Suite metrics: the error metrics and the pass rule, the seeded
 * inputs, the host memory accounting, the problem's rules.
 */
#include <check.h>
#include <string.h>
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

/* The CPU entry points refuse what the driver would refuse, with exit 2 and
 * a message in attn_last_error(), instead of crashing or computing NaN:
 * Hkv = 0 (a division by zero), Hkv not dividing Hq (reads past K), a
 * negative length or head dim, a NaN or negative scale, a NULL tensor; and
 * attn_problem_validate() takes a NULL problem and a NULL message buffer. */
START_TEST(entry_points_refuse)
{
    static const attn_problem BAD[] = {
        {1, 4, 0, 8, 8, 16, 0, 0},  {1, 3, 2, 8, 8, 16, 0, 0},   {1, 4, 4, -8, 8, 16, 0, 0},
        {1, 4, 4, 8, -1, 16, 0, 0}, {1, 4, 4, 8, 8, -16, 0, 0},  {-1, 4, 4, 8, 8, 16, 0, 0},
        {1, 4, 4, 8, 8, 16, 0, -1}, {1, 4, 4, 8, 8, 16, 0, NAN},
    };
    static float buf[6][4 * 8 * 16];
    float *q = buf[0], *k = buf[1], *v = buf[2], *o = buf[3], *lse = buf[4], *g = buf[5];
    for (size_t c = 0; c < sizeof BAD / sizeof BAD[0]; c++) {
        const attn_problem *p = &BAD[c];
        attn_clear_error();
        ck_assert_int_eq(attn01_forward(p, q, k, v, o, lse), ATTN_EXIT_BAD_INPUT);
        ck_assert_msg(attn_last_error()[0] != '\0', "case %zu: no message", c);
        ck_assert_int_eq(attn02_forward(p, q, k, v, o, lse), ATTN_EXIT_BAD_INPUT);
        ck_assert_int_eq(attn03_forward(p, q, k, v, o, lse), ATTN_EXIT_BAD_INPUT);
        ck_assert_int_eq(attn01_backward(p, q, k, v, g, o, g, g), ATTN_EXIT_BAD_INPUT);
        ck_assert_int_eq(attn07_backward_cpu(p, q, k, v, o, lse, g, o, g, g), ATTN_EXIT_BAD_INPUT);
        ck_assert_int_eq(attn_problem_validate(p, NULL, 0), ATTN_EXIT_BAD_INPUT);
    }
    const attn_problem ok = {1, 4, 2, 8, 8, 16, 1, 0};
    ck_assert_int_eq(attn01_forward(&ok, q, NULL, v, o, lse), ATTN_EXIT_BAD_INPUT);
    ck_assert_msg(strstr(attn_last_error(), "NULL") != NULL, "%s", attn_last_error());
    ck_assert_int_eq(attn03_forward(&ok, q, k, v, o, NULL), ATTN_EXIT_BAD_INPUT);
    ck_assert_int_eq(attn_problem_validate(NULL, NULL, 0), ATTN_EXIT_BAD_INPUT);
    ck_assert_int_eq(attn02_forward(&ok, q, k, v, o, lse), 0);
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
    tcase_add_test(tc, entry_points_refuse);
    suite_add_tcase(s, tc);
    return s;
}
