/**
 * @file test_oracle.c
 * @brief Suite oracle: the float64 oracle on hand-computed cases, its
 * backward given a forward's O and LSE, and against finite differences.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "common.h"
#include "suites.h"

/* ---- the oracle ---------------------------------------------------------- */

/* By hand: q = 1, keys 0 and ln 2 (scale 1), so weights 1/3 and 2/3;
 * values 3 and 6, so O = 1 + 4 = 5 and LSE = ln(1 + 2) = ln 3. */
START_TEST(oracle_by_hand)
{
    attn_problem p = {1, 1, 1, 1, 2, 1, 0, 1.0f};
    float q[1] = {1}, k[2] = {0, 0.69314718f}, v[2] = {3, 6};
    double o, lse;
    attn_oracle_forward(&p, q, k, v, NULL, 1, &o, &lse);
    ck_assert_double_eq_tol(o, 5.0, 1e-7);
    ck_assert_double_eq_tol(lse, log(3.0), 1e-7);
    /* causal, Sq = 2 > Sk = 1: bottom-right, so row 0 sees no key, row 1 sees key 0 */
    attn_problem c = {1, 1, 1, 2, 1, 1, 1, 1.0f};
    float q2[2] = {1, 2};
    double o2[2], lse2[2];
    attn_oracle_forward(&c, q2, k, v, NULL, 2, o2, lse2);
    ck_assert_double_eq(o2[0], 0.0);
    ck_assert(isinf(lse2[0]) && lse2[0] < 0);
    ck_assert_double_eq_tol(o2[1], 3.0, 1e-12);
    ck_assert_double_eq_tol(lse2[1], 0.0, 1e-12);
    /* the same with the bottom-right rule: Sq = 2, Sk = 3 → row 0 sees keys 0, 1 */
    attn_problem c3 = {1, 1, 1, 2, 3, 1, 1, 1.0f};
    ck_assert_int_eq(attn_keys_visible(&c3, 0), 2);
    ck_assert_int_eq(attn_keys_visible(&c3, 1), 3);
    /* NaN: propagates through the max (fmax would drop it) */
    float kn[2] = {NAN, 0};
    attn_oracle_forward(&p, q, kn, v, NULL, 1, &o, &lse);
    ck_assert(isnan(o) && isnan(lse));
}
END_TEST

/* The oracle's backward against central finite differences of
 * L = Σ O ∘ dO, with every input perturbed in turn. */
/* The backward given a forward's O and LSE (what a recomputing backward
 * computes): with the exact O and LSE it is the exact backward; raising
 * LSE_i by c scales P's row i, so dS's row i and dQ_i, by exp(-c) and leaves
 * every other row of dQ alone; the δ bound is zero exactly where a row sees
 * no key, and positive elsewhere. */
START_TEST(oracle_backward_given)
{
    attn_problem p = {1, 2, 1, 5, 3, 4, 1, 0}; /* causal, Sq > Sk: rows 0, 1 see no key */
    const size_t qn = attn_q_elems(&p), kvn = attn_kv_elems(&p), ln = attn_lse_elems(&p);
    float q[40] = {0}, k[12] = {0}, v[12] = {0}, dout[40] = {0}, of[40] = {0}, lf[10] = {0};
    double o[40] = {0}, lse[10] = {0}, e[64] = {0}, g[64] = {0}, bq[40] = {0}, bk[12] = {0};
    attn_fill_normal(q, qn, 5, ATTN_STREAM_Q);
    attn_fill_normal(k, kvn, 5, ATTN_STREAM_K);
    attn_fill_normal(v, kvn, 5, ATTN_STREAM_V);
    attn_fill_normal(dout, qn, 5, ATTN_STREAM_DO);
    attn_oracle_forward(&p, q, k, v, NULL, ln, o, lse);
    for (size_t i = 0; i < qn; i++)
        of[i] = (float)o[i];
    for (size_t i = 0; i < ln; i++)
        lf[i] = (float)lse[i];
    attn_oracle_backward(&p, q, k, v, dout, e, e + qn, e + qn + kvn);
    attn_oracle_backward_given(&p, q, k, v, dout, of, lf, g, g + qn, g + qn + kvn);
    for (size_t i = 0; i < qn + 2 * kvn; i++) /* only the float rounding of O and LSE */
        ck_assert_msg(fabs(g[i] - e[i]) <= 1e-6 * (1 + fabs(e[i])), "entry %zu: %g vs %g", i,
                      g[i], e[i]);
    const int row = 7; /* head 1, query 2: sees one key */
    lf[row] += 0.25f;
    attn_oracle_backward_given(&p, q, k, v, dout, NULL, lf, g, g + qn, g + qn + kvn);
    lf[row] -= 0.25f;
    double ex[64] = {0};
    attn_oracle_backward_given(&p, q, k, v, dout, NULL, lf, ex, ex + qn, ex + qn + kvn);
    for (size_t r = 0; r < ln; r++)
        for (int d = 0; d < p.head_dim; d++) {
            size_t i = r * p.head_dim + d;
            double want = r == (size_t)row ? ex[i] * exp(-0.25) : ex[i];
            ck_assert_msg(fabs(g[i] - want) <= 1e-12 * (1 + fabs(want)), "dQ[%zu][%d]: %g, want %g",
                          r, d, g[i], want);
        }
    attn_oracle_delta_bound(&p, q, k, v, dout, of, lf, bq, bk);
    for (size_t r = 0; r < ln; r++)
        for (int d = 0; d < p.head_dim; d++) {
            int sees = attn_keys_visible(&p, (int)(r % p.seqlen_q)) > 0;
            double b = bq[r * p.head_dim + d];
            ck_assert_msg(sees ? b > 0 : b == 0, "delta bound of dQ[%zu][%d] = %g", r, d, b);
        }
    for (size_t i = 0; i < kvn; i++)
        ck_assert_msg(bk[i] > 0, "delta bound of dK[%zu] = %g", i, bk[i]);
}
END_TEST

START_TEST(oracle_backward_finite_differences)
{
    static const attn_problem P[] = {{1, 2, 1, 3, 4, 3, 1, 0.7f}, {1, 2, 2, 4, 3, 2, 0, 0}};
    attn_problem p = P[_i];
    size_t qn = attn_q_elems(&p), kvn = attn_kv_elems(&p), ln = attn_lse_elems(&p);
    float *x = malloc((qn * 2 + kvn * 2) * 4);
    float *q = x, *k = q + qn, *v = k + kvn, *dout = v + kvn;
    attn_fill_normal(q, qn, 3 + _i, ATTN_STREAM_Q);
    attn_fill_normal(k, kvn, 3 + _i, ATTN_STREAM_K);
    attn_fill_normal(v, kvn, 3 + _i, ATTN_STREAM_V);
    attn_fill_normal(dout, qn, 3 + _i, ATTN_STREAM_DO);
    double *g = malloc((qn + 2 * kvn) * 8), *o = malloc(qn * 8), *lse = malloc(ln * 8);
    attn_oracle_backward(&p, q, k, v, dout, g, g + qn, g + qn + kvn);
    for (size_t t = 0; t < qn + 2 * kvn; t++) {
        float *xt = x + t, saved = *xt, h = 1e-2f;
        double L[2];
        for (int s = 0; s < 2; s++) {
            *xt = saved + (s ? -h : h);
            attn_oracle_forward(&p, q, k, v, NULL, ln, o, lse);
            L[s] = 0;
            for (size_t i = 0; i < qn; i++)
                L[s] += o[i] * dout[i];
        }
        double step = (double)(saved + h) - (double)(saved - h);
        *xt = saved;
        double fd = (L[0] - L[1]) / step;
        ck_assert_msg(fabs(fd - g[t]) <= 2e-3 * (1 + fabs(g[t])), "input %zu: analytic %.6g, finite difference %.6g",
                      t, g[t], fd);
    }
    free(x), free(g), free(o), free(lse);
}
END_TEST

Suite *suite_oracle(void)
{
    Suite *s = suite_create("oracle");
    TCase *tc = tcase_create("oracle");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, oracle_by_hand);
    tcase_add_loop_test(tc, oracle_backward_finite_differences, 0, 2);
    tcase_add_test(tc, oracle_backward_given);
    suite_add_tcase(s, tc);
    return s;
}
