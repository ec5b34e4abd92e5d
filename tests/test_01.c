/**
 * @file test_01.c
 * @brief Step 01 (naive CPU attention): the conformance table against the
 * float64 oracle, its own accuracy claim, its O(N²) memory, its backward.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "conformance.h"
#include "suites.h"

START_TEST(conformance)
{
    CONF_LOOP_BODY(&attn01_step, NULL, 1000);
}
END_TEST

/* The correctness rule (notes/design.md): step 01 reaches rel_l2 <= 1e-5 when scaled logits stay within ±10. */
static const attn_problem ACCURACY[] = {
    {1, 2, 2, 64, 64, 64, 0, 0}, {2, 4, 1, 100, 37, 32, 1, 0},
    {1, 2, 1, 300, 300, 128, 1, 0}, {1, 1, 1, 17, 500, 256, 0, 0},
    {1, 3, 3, 50, 70, 7, 0, 0.5f},
};

START_TEST(accuracy)
{
    attn_problem p = ACCURACY[_i];
    size_t qn = attn_q_elems(&p), kvn = attn_kv_elems(&p), ln = attn_lse_elems(&p);
    float *q = malloc(qn * 4), *k = malloc(kvn * 4), *v = malloc(kvn * 4);
    float *o = malloc(qn * 4), *lse = malloc(ln * 4);
    double *o_ref = malloc(qn * 8), *lse_ref = malloc(ln * 8);
    attn_fill_normal(q, qn, 77 + _i, ATTN_STREAM_Q);
    attn_fill_normal(k, kvn, 77 + _i, ATTN_STREAM_K);
    attn_fill_normal(v, kvn, 77 + _i, ATTN_STREAM_V);
    ck_assert_int_eq(attn01_forward(&p, q, k, v, o, lse), 0);
    attn_oracle_forward(&p, q, k, v, NULL, ln, o_ref, lse_ref);
    attn_err e = attn_compare(o, o_ref, qn);
    ck_assert_msg(e.rel_l2 <= 1e-5, "rel_l2 %.3g on %s", e.rel_l2, conf_describe(&p, CONF_RANDOM));
    ck_assert_double_le(attn_lse_err(lse, lse_ref, ln), ATTN_LSE_TOL);
    free(q), free(k), free(v), free(o), free(lse), free(o_ref), free(lse_ref);
}
END_TEST

static size_t extra_bytes(const attn_step *s, int n)
{
    attn_problem p = {1, 1, 1, n, n, 64, 0, 0};
    size_t qn = attn_q_elems(&p);
    float *x = malloc(qn * 4 * 4), *lse = malloc((size_t)n * 4);
    attn_fill_normal(x, qn * 3, 5, ATTN_STREAM_Q);
    attn_run_stats st;
    char msg[256];
    ck_assert_int_eq(s->run(s, &p, ATTN_F32, ATTN_LAYOUT_BHSD, x, x + qn, x + 2 * qn, x + 3 * qn, lse, NULL, &st, msg, sizeof msg), 0);
    free(x), free(lse);
    return st.extra_bytes;
}

/* S and P: 2·N²·4 bytes, so 4× the length means 16× the memory. */
START_TEST(memory_quadratic)
{
    size_t a = extra_bytes(&attn01_step, 256), b = extra_bytes(&attn01_step, 1024);
    ck_assert_uint_ge(a, 2u * 256 * 256 * 4);
    ck_assert_uint_ge(b, 2u * 1024 * 1024 * 4);
    double r = (double)b / a;
    ck_assert_msg(r > 15 && r < 17, "extra_bytes grew %.2fx from N=256 to 1024, expected ~16x", r);
}
END_TEST

/* An allocation failure inside the step is exit code 3, not a crash. */
START_TEST(out_of_memory)
{
    attn_problem p = {1, 1, 1, 64, 64, 32, 0, 0};
    float *x = malloc(64 * 32 * 4 * 4 + 64 * 4);
    attn_fill_normal(x, 64 * 32 * 4, 3, ATTN_STREAM_Q);
    attn_mem_fail_after(1); /* S is allocated, P is not */
    int rc = attn01_forward(&p, x, x, x, x + 64 * 32 * 3, x + 64 * 32 * 4);
    attn_mem_fail_after(-1);
    ck_assert_int_eq(rc, ATTN_EXIT_RESOURCE);
    ck_assert_uint_eq(attn_mem_failed_bytes(), 64u * 64 * 4);
    free(x);
}
END_TEST

/* The standard backward against the float64 oracle's backward. */
static const attn_problem BACKWARD[] = {
    {1, 2, 2, 31, 31, 32, 0, 0},  {2, 4, 2, 113, 203, 64, 1, 0}, {1, 4, 1, 203, 113, 32, 1, 0},
    {1, 2, 2, 64, 64, 128, 1, 0}, {1, 8, 1, 1, 203, 64, 0, 0},   {1, 2, 1, 40, 17, 16, 1, 0.3f},
};

START_TEST(backward)
{
    attn_problem p = BACKWARD[_i];
    size_t qn = attn_q_elems(&p), kvn = attn_kv_elems(&p);
    float *q = malloc(qn * 4), *k = malloc(kvn * 4), *v = malloc(kvn * 4), *dout = malloc(qn * 4);
    float *dq = malloc(qn * 4), *dk = malloc(kvn * 4), *dv = malloc(kvn * 4);
    double *rq = malloc(qn * 8), *rk = malloc(kvn * 8), *rv = malloc(kvn * 8);
    attn_fill_normal(q, qn, 900 + _i, ATTN_STREAM_Q);
    attn_fill_normal(k, kvn, 900 + _i, ATTN_STREAM_K);
    attn_fill_normal(v, kvn, 900 + _i, ATTN_STREAM_V);
    attn_fill_normal(dout, qn, 900 + _i, ATTN_STREAM_DO);
    for (size_t i = 0; i < qn; i++)
        dq[i] = ATTN_POISON;
    for (size_t i = 0; i < kvn; i++)
        dk[i] = dv[i] = ATTN_POISON;
    ck_assert_int_eq(attn01_backward(&p, q, k, v, dout, dq, dk, dv), 0);
    attn_oracle_backward(&p, q, k, v, dout, rq, rk, rv);
    attn_err eq = attn_compare(dq, rq, qn), ek = attn_compare(dk, rk, kvn), ev = attn_compare(dv, rv, kvn);
    ck_assert_msg(eq.rel_l2 < 1e-5 && ek.rel_l2 < 1e-5 && ev.rel_l2 < 1e-5,
                  "rel_l2 dq %.3g dk %.3g dv %.3g on %s", eq.rel_l2, ek.rel_l2, ev.rel_l2,
                  conf_describe(&p, CONF_RANDOM));
    ck_assert(eq.nan_count + ek.nan_count + ev.nan_count == 0);
    free(q), free(k), free(v), free(dout), free(dq), free(dk), free(dv), free(rq), free(rk), free(rv);
}
END_TEST

Suite *suite_step01(void)
{
    Suite *s = suite_create("step01");
    TCase *tc = tcase_create("conformance");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, conformance, 0, CONF_LOOP_COUNT);
    suite_add_tcase(s, tc);
    tc = tcase_create("properties");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, accuracy, 0, (int)(sizeof ACCURACY / sizeof ACCURACY[0]));
    tcase_add_test(tc, memory_quadratic);
    tcase_add_test(tc, out_of_memory);
    tcase_add_loop_test(tc, backward, 0, (int)(sizeof BACKWARD / sizeof BACKWARD[0]));
    suite_add_tcase(s, tc);
    return s;
}
