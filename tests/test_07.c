/**
 * @file test_07.c
 * @brief Step 07 on the CPU (attn07_backward_cpu): the conformance shapes
 * against the float64 oracle's backward (the suites' one gradient check,
 * gradcheck.h) and against step 01 itself; rows that see
 * no key; O(N) memory; exit 3 when memory runs out.
 *
 * The forward O and LSE the backward takes come from step 03 on even cases
 * and from the float64 oracle rounded to float on odd ones, so both "a real
 * fp32 forward" and "an exact forward" feed it. Every conformance kind runs:
 * random inputs on every shape; a NaN row of Q, K or V (gradients NaN
 * exactly where the oracle's are) and logits of magnitude 1e4 (against the
 * oracle given the forward's O and LSE, conformance.h says why) on the
 * smaller shapes.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "suites.h"

/* The conformance cases with random inputs (the backward's table). The
 * largest shapes (Sq·Sk ≥ 1023·1024) are sampled: only their D = 64 entries
 * run, which keeps the suite near 20 s on two cores (the float64 oracle and
 * step 01's backward are the slow part, not step 07). */
static int n_cases;
static int cases[512];

static void build_cases(void)
{
    if (n_cases)
        return;
    for (int i = 0; i < conf_case_count(); i++) {
        attn_problem p;
        conf_kind kind;
        conf_case(i, &p, &kind);
        if ((long)p.seqlen_q * p.seqlen_k >= 1023L * 1024 && p.head_dim != 64)
            continue;
        if (n_cases < (int)(sizeof cases / sizeof cases[0]))
            cases[n_cases++] = i;
    }
}

static int case_count(void)
{
    build_cases();
    return n_cases;
}

/* One backward check on problem p, inputs of the given kind from seed. */
static void check_backward(const attn_problem *pp, conf_kind kind, uint64_t seed,
                           int oracle_forward)
{
    attn_problem p = *pp;
    const size_t qn = attn_q_elems(&p), kvn = attn_kv_elems(&p), ln = attn_lse_elems(&p);
    float *q = malloc(qn * 4), *k = malloc(kvn * 4), *v = malloc(kvn * 4), *dout = malloc(qn * 4);
    float *o = malloc(qn * 4), *lse = malloc(ln * 4);
    float *dq = malloc(qn * 4), *dk = malloc(kvn * 4), *dv = malloc(kvn * 4);
    ck_assert(q && k && v && dout && o && lse && dq && dk && dv);
    conf_fill_inputs(&p, kind, seed, q, k, v);
    attn_fill_normal(dout, qn, seed, ATTN_STREAM_DO);
    const char *what = conf_describe(&p, kind);

    /* the forward the backward differentiates */
    if (oracle_forward) {
        double *o_ref = malloc(qn * 8), *lse_ref = malloc(ln * 8);
        ck_assert(o_ref && lse_ref);
        attn_oracle_forward(&p, q, k, v, NULL, ln, o_ref, lse_ref);
        for (size_t i = 0; i < qn; i++)
            o[i] = (float)o_ref[i];
        for (size_t i = 0; i < ln; i++)
            lse[i] = (float)lse_ref[i];
        free(o_ref), free(lse_ref);
    } else {
        ck_assert_int_eq(attn03_forward(&p, q, k, v, o, lse), 0);
    }

    /* step 07, on poisoned outputs */
    for (size_t i = 0; i < qn; i++)
        dq[i] = ATTN_POISON;
    for (size_t i = 0; i < kvn; i++)
        dk[i] = dv[i] = ATTN_POISON;
    ck_assert_int_eq(attn07_backward_cpu(&p, q, k, v, o, lse, dout, dq, dk, dv), 0);

    /* the suites' one gradient check (gradcheck.h): against the float64
     * oracle, scaled by step 01's standard backward */
    grad_refs r;
    grad_refs_make(&r, &p, kind, q, k, v, dout, o, lse);
    char variant[64];
    snprintf(variant, sizeof variant, "07 CPU (forward: %s)", oracle_forward ? "oracle" : "step 03");
    double allowed[3];
    grad_check(&r, dq, dk, dv, 1, variant, what, allowed);

    /* against step 01 (not with large logits: step 01 does not inherit the
     * forward's rounding, so there is no common bound): both within their
     * bounds, so within the sum */
    const float *got[3] = {dq, dk, dv};
    const size_t n[3] = {qn, kvn, kvn};
    static const char *names[3] = {"dQ", "dK", "dV"};
    for (int t = 0; t < 3 && kind != CONF_LARGE_LOGITS; t++) {
        attn_err d = attn_compare_f32(got[t], r.base[t], n[t]);
        double bound = allowed[t] + r.base_err[t];
        ck_assert_msg(d.max_abs <= bound && !d.nan_count && !d.nan_missing,
                      "|%s_07 - %s_01| = %.3g > %.3g on %s", names[t], names[t], d.max_abs,
                      bound, what);
    }
    grad_refs_free(&r);
    free(q), free(k), free(v), free(dout), free(o), free(lse), free(dq), free(dk), free(dv);
}

START_TEST(conformance)
{
    attn_problem p;
    conf_kind kind;
    build_cases();
    conf_case(cases[_i], &p, &kind);
    check_backward(&p, kind, 7000 + (uint64_t)_i, _i % 2);
}
END_TEST

/* Shapes the table does not have: odd head dims (CPU steps take 1..256),
 * an explicit scale, Sq much larger than Sk under causal (most rows see no
 * key), and a single key. */
static const attn_problem EXTRA[] = {
    {1, 3, 3, 50, 70, 7, 0, 0.5f}, {2, 4, 2, 77, 5, 16, 1, 0},  {1, 2, 1, 1, 1, 1, 1, 0},
    {1, 2, 2, 33, 65, 256, 1, 0},  {1, 6, 3, 40, 40, 48, 1, 0.2f},
};

START_TEST(extra_shapes)
{
    check_backward(&EXTRA[_i], CONF_RANDOM, 7500 + (uint64_t)_i, _i % 2);
}
END_TEST

static size_t extra_bytes(int n)
{
    attn_problem p = {1, 1, 1, n, n, 64, 1, 0};
    size_t qn = attn_q_elems(&p);
    float *x = malloc(qn * 4 * 8 + (size_t)n * 4);
    ck_assert_ptr_nonnull(x);
    attn_fill_normal(x, qn * 8 + n, 13, ATTN_STREAM_Q);
    float *q = x, *k = x + qn, *v = x + 2 * qn, *o = x + 3 * qn, *dout = x + 4 * qn;
    float *dq = x + 5 * qn, *dk = x + 6 * qn, *dv = x + 7 * qn, *lse = x + 8 * qn;
    ck_assert_int_eq(attn03_forward(&p, q, k, v, o, lse), 0);
    attn_mem_reset_peak();
    ck_assert_int_eq(attn07_backward_cpu(&p, q, k, v, o, lse, dout, dq, dk, dv), 0);
    size_t b = attn_mem_peak();
    free(x);
    return b;
}

/* Tiles plus δ: linear in N, and well under one N×N matrix. */
START_TEST(memory_linear)
{
    size_t a = extra_bytes(512), b = extra_bytes(2048);
    ck_assert_uint_ge(b, 2048u * 4); /* δ is there */
    ck_assert_msg(b <= 4 * a, "extra_bytes grew from %zu to %zu (more than 4x)", a, b);
    ck_assert_uint_le(b, 2048u * 2048 * 4 / 16);
}
END_TEST

/* An allocation failure inside the step is exit code 3, not a crash. */
START_TEST(out_of_memory)
{
    attn_problem p = {1, 1, 1, 64, 64, 32, 0, 0};
    float *x = calloc(64 * 32 * 8 + 64, 4);
    ck_assert_ptr_nonnull(x);
    attn_mem_fail_after(3);
    int rc = attn07_backward_cpu(&p, x, x, x, x, x + 64 * 32 * 8, x, x + 64 * 32 * 5,
                                 x + 64 * 32 * 6, x + 64 * 32 * 7);
    attn_mem_fail_after(-1);
    ck_assert_int_eq(rc, ATTN_EXIT_RESOURCE);
    free(x);
}
END_TEST

Suite *suite_step07(void)
{
    Suite *s = suite_create("step07");
    TCase *tc = tcase_create("conformance");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, conformance, 0, case_count());
    suite_add_tcase(s, tc);
    tc = tcase_create("properties");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, extra_shapes, 0, (int)(sizeof EXTRA / sizeof EXTRA[0]));
    tcase_add_test(tc, memory_linear);
    tcase_add_test(tc, out_of_memory);
    suite_add_tcase(s, tc);
    return s;
}
