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

/*
 * The forward rule (attn_forward_rule(), the one the step programs and the
 * suites apply) at logits of magnitude 30: Q and K standard normal ×
 * sqrt(30), V standard normal, D = 64, causal, 4 heads, N = 256, default
 * scale, so a logit is about N(0, 30²) and the fp32 rounding of S, which
 * depends on the summation order, dominates the error. Correct kernels
 * with other summation orders than step 01's pass: steps 02 and 03, and
 * m30_reordered() below (an online softmax over the keys backwards, q·k
 * as eight strided partial sums: no order the rule's baseline uses). Wrong
 * ones fail: the scale missing, the first key dropped, every P biased by
 * 2^-14 (6e-5) relative, as a softmax whose l_i is off by that much.
 */
enum { M30_H = 4, M30_N = 256, M30_D = 64 };

/** A correct forward in a summation order of its own (see above). */
static void m30_reordered(const attn_problem *p, const float *q, const float *k, const float *v,
                          float *o, float *lse)
{
    const int D = p->head_dim;
    const float scale = attn_scale(p);
    for (int64_t r = 0; r < (int64_t)attn_lse_elems(p); r++) {
        int h, i;
        size_t qo, kvo;
        attn_row_offsets(p, r, &h, &i, &qo, &kvo);
        float m = -INFINITY, l = 0, acc[M30_D] = {0};
        for (int j = attn_keys_visible(p, i) - 1; j >= 0; j--) {
            float part[8] = {0};
            for (int d = 0; d < D; d++)
                part[d % 8] += q[qo + d] * k[kvo + (size_t)j * D + d];
            const float s = (((part[0] + part[4]) + (part[1] + part[5])) +
                             ((part[2] + part[6]) + (part[3] + part[7]))) * scale;
            const float m_new = fmaxf(m, s), corr = expf(m - m_new), pj = expf(s - m_new);
            l = l * corr + pj;
            for (int d = 0; d < D; d++)
                acc[d] = acc[d] * corr + pj * v[kvo + (size_t)j * D + d];
            m = m_new;
        }
        for (int d = 0; d < D; d++)
            o[qo + d] = acc[d] / l;
        lse[r] = m + logf(l);
    }
}

/** the check of one result against the rule; prints its numbers */
static int m30_passes(const attn_problem *p, const attn_fwd_rule *r, const double *o_ref,
                      const double *lse_ref, const float *o, const float *lse, const char *what)
{
    const size_t qn = attn_q_elems(p), ln = attn_lse_elems(p);
    attn_err e = attn_compare(o, o_ref, qn);
    double le = attn_lse_err(lse, lse_ref, ln);
    printf("rule at magnitude 30: %-34s max_abs_err %.3g (%.2f x step 01's %.3g; allowed %.3g = "
           "2 x %.3g + %.3g), lse_err %.3g (allowed %.3g)\n",
           what, e.max_abs, e.max_abs / r->baseline_fwd, r->baseline_fwd, r->allowed, r->baseline,
           r->atol, le, r->lse_tol);
    return attn_forward_ok(r, &e, le);
}

START_TEST(rule_magnitude_30)
{
    attn_problem p = {1, M30_H, M30_H, M30_N, M30_N, M30_D, 1, 0};
    const size_t qn = attn_q_elems(&p), ln = attn_lse_elems(&p);
    float *q = malloc(qn * 4), *k = malloc(qn * 4), *v = malloc(qn * 4);
    float *o = malloc(qn * 4), *lse = malloc(ln * 4);
    double *o_ref = malloc(qn * 8), *lse_ref = malloc(ln * 8);
    ck_assert(q && k && v && o && lse && o_ref && lse_ref);
    const uint64_t seed = 30 + (uint64_t)_i;
    attn_fill_normal(q, qn, seed, ATTN_STREAM_Q);
    attn_fill_normal(k, qn, seed, ATTN_STREAM_K);
    attn_fill_normal(v, qn, seed, ATTN_STREAM_V);
    for (size_t i = 0; i < qn; i++)
        q[i] *= sqrtf(30.0f), k[i] *= sqrtf(30.0f);
    attn_oracle_forward(&p, q, k, v, NULL, ln, o_ref, lse_ref);
    attn_fwd_rule r;
    ck_assert_int_eq(attn_forward_rule(&p, ATTN_F32, q, k, v, NULL, ln, o_ref, lse_ref, &r), 0);

    /* correct, in other summation orders */
    ck_assert_int_eq(attn02_forward(&p, q, k, v, o, lse), 0);
    ck_assert_msg(m30_passes(&p, &r, o_ref, lse_ref, o, lse, "step 02 (correct)"),
                  "step 02 fails the rule at magnitude 30 (seed %d)", (int)seed);
    ck_assert_int_eq(attn03_forward(&p, q, k, v, o, lse), 0);
    ck_assert_msg(m30_passes(&p, &r, o_ref, lse_ref, o, lse, "step 03 (correct)"),
                  "step 03 fails the rule at magnitude 30 (seed %d)", (int)seed);
    m30_reordered(&p, q, k, v, o, lse);
    ck_assert_msg(m30_passes(&p, &r, o_ref, lse_ref, o, lse, "reordered (correct)"),
                  "the reordered forward fails the rule at magnitude 30 (seed %d)", (int)seed);

    /* wrong: the scale missing (1 instead of 1/sqrt(D)) */
    attn_problem wrong = p;
    wrong.softmax_scale = 1.0f;
    ck_assert_int_eq(attn03_forward(&wrong, q, k, v, o, lse), 0);
    ck_assert(!m30_passes(&p, &r, o_ref, lse_ref, o, lse, "mutant: scale missing"));
    /* wrong: the first key dropped (K and V from row 1, one key fewer:
     * bottom-right causal, row i then sees keys 1..i) */
    wrong = p;
    wrong.seqlen_k = M30_N - 1;
    ck_assert_int_eq(attn02_forward(&wrong, q, k + M30_D, v + M30_D, o, lse), 0);
    ck_assert(!m30_passes(&p, &r, o_ref, lse_ref, o, lse, "mutant: first key dropped"));
    /* wrong: every P_ij biased by 2^-14 (about 6e-5) relative, as a
     * softmax whose l_i is off by that much */
    ck_assert_int_eq(attn01_forward(&p, q, k, v, o, lse), 0);
    for (size_t i = 0; i < qn; i++)
        o[i] *= 1.0f + 0x1p-14f;
    ck_assert(!m30_passes(&p, &r, o_ref, lse_ref, o, lse, "mutant: P biased by 2^-14"));
    free(q), free(k), free(v), free(o), free(lse), free(o_ref), free(lse_ref);
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
    tcase_add_loop_test(tc, rule_magnitude_30, 0, 3);
    suite_add_tcase(s, tc);
    return s;
}
