/**
 * @file test_gpu_07.c
 * @brief GPU suite of step 07: the recomputing backward kernel (atomic and
 * deterministic dQ) and the stored-P cuBLAS backward on the conformance
 * shapes, against the float64 oracle (the suites' one gradient check,
 * gradcheck.h) and against each other; every conformance kind (random inputs on every shape; a NaN
 * row of Q, K or V and logits of magnitude 1e4 on the smaller shapes, as
 * tests/test_07.c does); determinism (20 runs bitwise equal); exit codes 2
 * and 3.
 *
 *     build/bin/test_gpu_07            the suite; ends with a summary line
 *     build/bin/test_gpu_07 --bench    the trade-off table (time, extra
 *                                      memory) against the stored-P backward
 *
 * Runs without fork (CUDA does not survive fork()). Where there is no
 * usable CUDA device it prints `skipped: no CUDA device` and exits 0.
 * `CK_RUN_CASE=determinism build/bin/test_gpu_07` runs one case.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"

#define REQUIRE(cond, ...)             \
    do {                               \
        if (!(cond))                   \
            ck_abort_msg(__VA_ARGS__); \
    } while (0)

/* Worst error / allowed error over every case, per variant (the summary). */
static double worst[3];
static int cases_run;
static const char *VARIANT[3] = {"07 atomic dQ", "07 deterministic", "stored-P cuBLAS"};

/* The conformance table: every shape at D 32/64/128 with random inputs;
 * the special kinds (large logits, NaN in Q, K or V) where the table runs
 * them (conf_case_count). */
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
        if (n_cases < (int)(sizeof cases / sizeof cases[0]))
            cases[n_cases++] = i;
    }
}

/* Run a backward step; poisoned host outputs first; asserts success.
 * given = 0: its forward (step 06) runs first and fills o, lse; 1: o, lse
 * are that forward's outputs from an earlier call, and it does not rerun. */
static void run_bwd(const attn_step *s, const attn_problem *p, const float *q,
                    const float *k, const float *v, const float *dout, float *o, float *lse,
                    float *dq, float *dk, float *dv, int det, int given, const char *what)
{
    char msg[512] = "";
    attn_bwd_stats st;
    size_t qn = attn_q_elems(p), kvn = attn_kv_elems(p);
    for (size_t i = 0; i < qn; i++)
        dq[i] = ATTN_POISON;
    for (size_t i = 0; i < kvn; i++)
        dk[i] = dv[i] = ATTN_POISON;
    int rc = s->run_backward(s, p, q, k, v, dout, o, lse, dq, dk, dv, det, given, NULL, &st, msg,
                             sizeof msg);
    ck_assert_msg(rc == 0, "step %s (deterministic=%d) failed (%d: %s) on %s", s->id, det, rc,
                  msg, what);
}

START_TEST(conformance)
{
    attn_problem p;
    conf_kind kind;
    build_cases();
    conf_case(cases[_i], &p, &kind);
    const uint64_t seed = 70000 + (uint64_t)_i;
    const size_t qn = attn_q_elems(&p), kvn = attn_kv_elems(&p), ln = attn_lse_elems(&p);
    float *q = malloc(qn * 4), *k = malloc(kvn * 4), *v = malloc(kvn * 4), *dout = malloc(qn * 4);
    float *o = malloc(qn * 4), *lse = malloc(ln * 4);
    float *g[3][3];
    ck_assert(q && k && v && dout && o && lse);
    for (int t = 0; t < 3; t++) {
        g[t][0] = malloc(qn * 4), g[t][1] = malloc(kvn * 4), g[t][2] = malloc(kvn * 4);
        ck_assert(g[t][0] && g[t][1] && g[t][2]);
    }
    conf_fill_inputs(&p, kind, seed, q, k, v); /* large logits: sets the scale to 1 */
    attn_fill_normal(dout, qn, seed, ATTN_STREAM_DO);
    const char *what = conf_describe(&p, kind);

    /* step 06's forward once, then three backwards of it */
    run_bwd(&attn07_step, &p, q, k, v, dout, o, lse, g[0][0], g[0][1], g[0][2], 0, 0, what);
    run_bwd(&attn07_step, &p, q, k, v, dout, o, lse, g[1][0], g[1][1], g[1][2], 1, 1, what);
    run_bwd(&attn07_standard_step, &p, q, k, v, dout, o, lse, g[2][0], g[2][1], g[2][2], 0, 1,
            what);

    /* the suites' one gradient check (gradcheck.h); o, lse: step 06's, the
     * forward the two kernel runs differentiated */
    grad_refs r;
    grad_refs_make(&r, &p, kind, q, k, v, dout, o, lse);
    double allowed[3];
    for (int var = 0; var < 3; var++) {
        double w = grad_check(&r, g[var][0], g[var][1], g[var][2], var < 2, VARIANT[var], what,
                              allowed);
        if (w > worst[var])
            worst[var] = w;
    }
    /* the kernel against the stored-P backward: within the sum of their
     * bounds (random inputs: the same reference) */
    static const char *names[3] = {"dQ", "dK", "dV"};
    const size_t n[3] = {qn, kvn, kvn};
    for (int t = 0; t < 3 && kind == CONF_RANDOM; t++)
        for (int var = 0; var < 2; var++) {
            attn_err d = attn_compare_f32(g[var][t], g[2][t], n[t]);
            ck_assert_msg(d.max_abs <= 2 * allowed[t], "|%s - stored-P| on %s = %.3g > %.3g on %s",
                          VARIANT[var], names[t], d.max_abs, 2 * allowed[t], what);
        }
    cases_run++;
    grad_refs_free(&r);
    for (int t = 0; t < 3; t++)
        free(g[t][0]), free(g[t][1]), free(g[t][2]);
    free(q), free(k), free(v), free(dout), free(o), free(lse);
}
END_TEST

/* Deterministic mode: 20 runs, bitwise equal dQ, dK, dV. (Atomic mode is
 * allowed to differ; how often it does is printed, not asserted.) */
static const attn_problem DET[] = {
    {1, 8, 2, 1000, 1000, 64, 1, 0}, {2, 4, 4, 777, 513, 128, 0, 0}, {1, 8, 1, 300, 1100, 32, 1, 0},
};

START_TEST(determinism)
{
    attn_problem p = DET[_i];
    const size_t qn = attn_q_elems(&p), kvn = attn_kv_elems(&p), ln = attn_lse_elems(&p);
    float *q = malloc(qn * 4), *k = malloc(kvn * 4), *v = malloc(kvn * 4), *dout = malloc(qn * 4);
    float *o = malloc(qn * 4), *lse = malloc(ln * 4);
    float *first = malloc((qn + 2 * kvn) * 4), *now = malloc((qn + 2 * kvn) * 4);
    ck_assert(q && k && v && dout && o && lse && first && now);
    attn_fill_normal(q, qn, 71 + _i, ATTN_STREAM_Q);
    attn_fill_normal(k, kvn, 71 + _i, ATTN_STREAM_K);
    attn_fill_normal(v, kvn, 71 + _i, ATTN_STREAM_V);
    attn_fill_normal(dout, qn, 71 + _i, ATTN_STREAM_DO);
    const char *what = conf_describe(&p, CONF_RANDOM);
    int atomic_differs = 0;
    for (int det = 1; det >= 0; det--)
        for (int run = 0; run < 20; run++) {
            float *x = run ? now : first;
            run_bwd(&attn07_step, &p, q, k, v, dout, o, lse, x, x + qn, x + qn + kvn, det,
                    det != 1 || run > 0, what);
            if (run && memcmp(first, now, (qn + 2 * kvn) * 4) != 0) {
                ck_assert_msg(!det, "deterministic run %d differs from run 0 on %s", run, what);
                atomic_differs++;
            }
        }
    printf("determinism: %s: deterministic mode 20/20 bitwise equal; atomic mode differed in "
           "%d of 19 reruns\n", what, atomic_differs);
    free(q), free(k), free(v), free(dout), free(o), free(lse), free(first), free(now);
}
END_TEST

/* Exit codes: D > 128 is refused (2); a stored-P workspace that cannot fit
 * is 3 with bytes needed and free, host outputs untouched. */
START_TEST(exit_codes)
{
    char msg[512] = "";
    attn_bwd_stats st;
    attn_problem bad = {1, 2, 2, 16, 16, 200, 0, 0};
    float x[2 * 16 * 200 * 2] = {0}, y[2 * 16 * 200], l[32];
    int rc = attn07_step.run_backward(&attn07_step, &bad, x, x, x, x, y, l, y, y, y, 0, 0, NULL,
                                      &st, msg, sizeof msg);
    ck_assert_msg(rc == ATTN_EXIT_BAD_INPUT, "D=200: expected 2, got %d (%s)", rc, msg);

    attn_problem big = {1, 2, 1, 262144, 262144, 8, 0, 0}; /* 1 TiB of P and dP */
    size_t qn = attn_q_elems(&big), kvn = attn_kv_elems(&big), ln = attn_lse_elems(&big);
    float *in = calloc(qn, 4), *out = malloc(qn * 4), *lse = malloc(ln * 4);
    ck_assert(in && out && lse);
    for (size_t i = 0; i < qn; i++)
        out[i] = ATTN_POISON;
    rc = attn07_standard_step.run_backward(&attn07_standard_step, &big, in, in, in, in, out, lse,
                                           out, out, out, 0, 0, NULL, &st, msg, sizeof msg);
    ck_assert_msg(rc == ATTN_EXIT_RESOURCE, "stored-P at N=262144: expected 3, got %d (%s)", rc,
                  msg);
    ck_assert_msg(strstr(msg, "needed") && strstr(msg, "free"), "message: %s", msg);
    for (size_t i = 0; i < qn; i++)
        REQUIRE(out[i] == ATTN_POISON, "output %zu written by a failed run", i);
    (void)kvn;
    free(in), free(out), free(lse);
}
END_TEST

/* The trade-off table: B = 1, Hq = 32, N in {1024, 4096, 16384}, D in
 * {64, 128}, causal off and on; forward (step 06) + backward and backward
 * alone, TFLOP/s by the FlashAttention convention (backward 2.5 x forward),
 * extra device memory; the stored-P backward beside it. */
static int bench(void)
{
    static const int NS[] = {1024, 4096, 16384}, DS[] = {64, 128};
    attn_bench_opts bo = {1, 10, 1000.0};
    printf("%-6s %-4s %-6s | %-10s %-10s %-8s %-12s | %-10s %-12s %s\n", "N", "D", "causal",
           "fwd+bwd ms", "bwd ms", "bwd TF/s", "extra bytes", "stP bwd ms", "stP extra",
           "memory ratio");
    for (int ni = 0; ni < 3; ni++)
        for (int di = 0; di < 2; di++)
            for (int c = 0; c < 2; c++) {
                attn_problem p = {1, 32, 32, NS[ni], NS[ni], DS[di], c, 0};
                size_t qn = attn_q_elems(&p), kvn = attn_kv_elems(&p), ln = attn_lse_elems(&p);
                float *buf = malloc((5 * qn + 4 * kvn + ln) * 4);
                if (!buf) {
                    printf("out of host memory\n");
                    return 3;
                }
                float *q = buf, *k = q + qn, *v = k + kvn, *dout = v + kvn, *o = dout + qn;
                float *dq = o + qn, *dk = dq + qn, *dv = dk + kvn, *lse = dv + kvn;
                attn_fill_normal(buf, 2 * qn + 2 * kvn, 9, ATTN_STREAM_Q);
                char msg[512];
                attn_bwd_stats a = {0}, s = {0};
                int rc = attn07_step.run_backward(&attn07_step, &p, q, k, v, dout, o, lse, dq, dk,
                                                  dv, 0, 0, &bo, &a, msg, sizeof msg);
                if (rc) {
                    printf("%-6d %-4d %-6d | step 07 failed: %s\n", NS[ni], DS[di], c, msg);
                    free(buf);
                    continue;
                }
                double tf = 2.5 * attn_flops_forward(&p) / (a.ms_bwd * 1e-3) * 1e-12;
                /* the stored-P backward reads neither O nor LSE: no forward rerun */
                int rs = attn07_standard_step.run_backward(&attn07_standard_step, &p, q, k, v,
                                                           dout, o, lse, dq, dk, dv, 0, 1, &bo, &s,
                                                           msg, sizeof msg);
                size_t stp = attn07_standard_workspace_bytes(&p);
                char sms[32];
                if (rs)
                    snprintf(sms, sizeof sms, "%s", rs == 3 ? "no fit" : "failed");
                else
                    snprintf(sms, sizeof sms, "%.3f", s.ms_bwd);
                printf("%-6d %-4d %-6d | %-10.3f %-10.3f %-8.2f %-12zu | %-10s %-12zu %.0fx\n",
                       NS[ni], DS[di], c, a.ms_fwd_bwd, a.ms_bwd, tf, a.extra_bytes, sms, stp,
                       (double)stp / (double)a.extra_bytes);
                free(buf);
            }
    printf("(stored-P bwd ms includes rebuilding P from S: one GEMM and a softmax; "
           "'no fit': exit 3, its bytes shown)\n");
    return 0;
}

int main(int argc, char **argv)
{
    char msg[256];
    if (!attn_gpu_available(msg, sizeof msg)) {
        printf("skipped: no CUDA device\n");
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "--bench"))
        return bench();
    build_cases();
    Suite *s = suite_create("step07_gpu");
    TCase *tc = tcase_create("conformance");
    tcase_add_loop_test(tc, conformance, 0, n_cases);
    suite_add_tcase(s, tc);
    tc = tcase_create("determinism");
    tcase_add_loop_test(tc, determinism, 0, (int)(sizeof DET / sizeof DET[0]));
    suite_add_tcase(s, tc);
    tc = tcase_create("exit_codes");
    tcase_add_test(tc, exit_codes);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    printf("summary: %d conformance cases; worst error / allowed (3 x step 01 + 1e-6 x "
           "max(1, max|dQ,dK,dV|), + the delta allowance on large logits):", cases_run);
    for (int var = 0; var < 3; var++)
        printf(" %s %.2f%s", VARIANT[var], worst[var], var < 2 ? "," : "\n");
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
