/**
 * @file test_gpu.c
 * @brief GPU suites: steps 04, 05, 06 on the conformance table, each
 * against the float64 oracle and the step before it, and step 04's clean
 * exit when S and P do not fit.
 *
 * Runs without fork (CUDA state does not survive fork()), so one crashing
 * test ends the binary: the runner's output then names the last test.
 * Where there is no usable CUDA device it prints `skipped: no CUDA device`
 * and exits 0. Pick one suite or case with Check's own environment
 * variables: `CK_RUN_SUITE=step05 build/tests/test_gpu`.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"

/* Each loop test covers conf_shape_count() shapes × CONF_KIND_COUNT kinds:
 * iteration _i is shape _i / CONF_KIND_COUNT with kind _i % CONF_KIND_COUNT.
 * Seeds differ per iteration and per suite, so every check draws fresh
 * inputs (notes/design.md: never zeros, never the same draw twice). */
static void check_pair(const attn_step *step, const attn_step *prev, int i,
                       uint64_t suite_seed)
{
    attn_problem p = conf_shape(i / CONF_KIND_COUNT);
    conf_kind kind = (conf_kind)(i % CONF_KIND_COUNT);
    (void)conf_check_step(step, prev, &p, kind, suite_seed * 100003u + (uint64_t)i);
}

/* Step 04 against the oracle and step 03 (the last CPU step). */
START_TEST(test_04_vs_03)
{
    check_pair(&attn04_step, &attn03_step, _i, 4);
}
END_TEST

/* Step 05 against the oracle and step 04. */
START_TEST(test_05_vs_04)
{
    check_pair(&attn05_step, &attn04_step, _i, 5);
}
END_TEST

/* Step 06 against the oracle and step 05. */
START_TEST(test_06_vs_05)
{
    check_pair(&attn06_step, &attn05_step, _i, 6);
}
END_TEST

/* Step 04 when S and P cannot fit: B=1, Hq=2, Sq=Sk=262144 needs
 * 2·2·2^36 floats = 1 TiB of workspace, more than any GPU has. The runner
 * must return 3 with a message that says how many bytes were needed and
 * how many were free, leave the host outputs untouched, and leave the
 * device usable (a small run afterwards still works). */
START_TEST(test_04_out_of_memory)
{
    attn_problem p = {1, 2, 1, 262144, 262144, 8, 0, 0.0f};
    size_t qn = attn_q_elems(&p), kvn = attn_kv_elems(&p), ln = attn_lse_elems(&p);
    float *q = calloc(qn, sizeof *q), *k = calloc(kvn, sizeof *k);
    float *v = calloc(kvn, sizeof *v), *o = malloc(qn * sizeof *o);
    float *lse = malloc(ln * sizeof *lse);
    ck_assert(q && k && v && o && lse);
    for (size_t i = 0; i < qn; i++)
        o[i] = ATTN_POISON;
    for (size_t i = 0; i < ln; i++)
        lse[i] = ATTN_POISON;

    char msg[512] = "";
    attn_run_stats st;
    int rc = attn_gpu_run(&attn04_step, &p, ATTN_F32, ATTN_LAYOUT_BHSD, q, k, v, o, lse, NULL, &st, msg, sizeof msg);
    ck_assert_msg(rc == ATTN_EXIT_RESOURCE, "expected exit 3, got %d (%s)", rc, msg);
    ck_assert_msg(strstr(msg, "needed") && strstr(msg, "free"),
                  "message should say bytes needed and free: %s", msg);
    for (size_t i = 0; i < qn; i++)
        ck_assert_msg(o[i] == ATTN_POISON, "O[%zu] written by a failed run", i);
    for (size_t i = 0; i < ln; i++)
        ck_assert_msg(lse[i] == ATTN_POISON, "LSE[%zu] written by a failed run", i);
    free(q), free(k), free(v), free(o), free(lse);

    /* The device is still fine: a small problem runs and passes. */
    attn_problem small = {1, 2, 1, 33, 47, 64, 1, 0.0f};
    ck_assert_int_eq(conf_check_step(&attn04_step, NULL, &small, CONF_RANDOM, 7), 0);
}
END_TEST

/* Bad input through the GPU runner: exit 2, not a crash. */
START_TEST(test_04_bad_input)
{
    attn_problem p = {1, 3, 2, 16, 16, 64, 0, 0.0f}; /* Hkv does not divide Hq */
    float x[3 * 16 * 64] = {0}, o[3 * 16 * 64], lse[3 * 16];
    char msg[256] = "";
    attn_run_stats st;
    int rc = attn_gpu_run(&attn04_step, &p, ATTN_F32, ATTN_LAYOUT_BHSD, x, x, x, o, lse, NULL, &st, msg, sizeof msg);
    ck_assert_msg(rc == ATTN_EXIT_BAD_INPUT, "expected exit 2, got %d (%s)", rc, msg);
}
END_TEST

/** The test-only typed GPU step (tests/passthrough_gpu.cu) and what it saw. */
extern const attn_step attn_test_passthrough_gpu_step;
extern attn_params attn_test_passthrough_seen;

/* The GPU runner's typed path: fp16 and bf16, BHSD and BSHD. The step (O =
 * Q element by element on the device, in Q's type and strides) must be
 * handed the type and the strides asked for, and O must come back as Q
 * rounded to the type; a type the step lacks is exit 2. */
START_TEST(test_typed_runner)
{
    const attn_dtype types[2] = {ATTN_F16, ATTN_BF16};
    const attn_layout layouts[2] = {ATTN_LAYOUT_BHSD, ATTN_LAYOUT_BSHD};
    const attn_dtype t = types[_i / 2];
    const attn_layout layout = layouts[_i % 2];
    attn_problem p = {2, 4, 2, 37, 53, 72, 1, 0.0f};
    size_t qn = attn_q_elems(&p), kvn = attn_kv_elems(&p), ln = attn_lse_elems(&p);
    float *q = malloc(qn * sizeof *q), *k = malloc(kvn * sizeof *k), *v = malloc(kvn * sizeof *v);
    float *o = malloc(qn * sizeof *o), *lse = malloc(ln * sizeof *lse);
    ck_assert(q && k && v && o && lse);
    attn_fill_normal(q, qn, 21, ATTN_STREAM_Q);
    attn_fill_normal(k, kvn, 21, ATTN_STREAM_K);
    attn_fill_normal(v, kvn, 21, ATTN_STREAM_V);
    for (size_t i = 0; i < qn; i++)
        o[i] = ATTN_POISON;
    char msg[512] = "";
    attn_run_stats st;
    const attn_step *s = &attn_test_passthrough_gpu_step;
    int rc = attn_gpu_run(s, &p, t, layout, q, k, v, o, lse, NULL, &st, msg, sizeof msg);
    ck_assert_msg(rc == 0, "%s %s: exit %d (%s)", attn_dtype_name(t), layout ? "bshd" : "bhsd", rc, msg);
    const attn_params *seen = &attn_test_passthrough_seen;
    ck_assert_int_eq(seen->q.dtype, t);
    ck_assert_int_eq(seen->q.stride_h, layout == ATTN_LAYOUT_BSHD ? 72 : 37 * 72);
    ck_assert_int_eq(seen->k.stride_s, layout == ATTN_LAYOUT_BSHD ? 2 * 72 : 72);
    for (size_t i = 0; i < qn; i++)
        ck_assert_msg(o[i] == attn_round_to(q[i], t), "O[%zu] = %g, expected %g", i, (double)o[i],
                      (double)attn_round_to(q[i], t));
    for (size_t i = 0; i < ln; i++)
        ck_assert_float_eq(lse[i], 0.0f);
    rc = attn_gpu_run(s, &p, ATTN_F32, layout, q, k, v, o, lse, NULL, &st, msg, sizeof msg);
    ck_assert_msg(rc == ATTN_EXIT_BAD_INPUT && strstr(msg, "computes in fp16 bf16"), "%d %s", rc, msg);
    rc = attn_gpu_run(&attn06_step, &p, t, ATTN_LAYOUT_BHSD, q, k, v, o, lse, NULL, &st, msg, sizeof msg);
    ck_assert_msg(rc == ATTN_EXIT_BAD_INPUT && strstr(msg, "fp32 only"), "%d %s", rc, msg);
    free(q), free(k), free(v), free(o), free(lse);
}
END_TEST

static Suite *make_suite(const char *name, const char *tc_name, const TTest *test)
{
    Suite *s = suite_create(name);
    TCase *tc = tcase_create(tc_name);
    tcase_set_timeout(tc, 600); /* not enforced without fork; kept for CK_FORK=yes */
    tcase_add_loop_test(tc, test, 0, conf_shape_count() * CONF_KIND_COUNT);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *suite_04(void)
{
    Suite *s = make_suite("step04", "conformance", test_04_vs_03);
    TCase *tc = tcase_create("resources");
    tcase_add_test(tc, test_04_out_of_memory);
    tcase_add_test(tc, test_04_bad_input);
    tcase_add_loop_test(tc, test_typed_runner, 0, 4);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    char msg[256];
    if (!attn_gpu_available(msg, sizeof msg)) {
        printf("skipped: no CUDA device\n");
        return 0;
    }
    SRunner *sr = srunner_create(suite_04());
    srunner_add_suite(sr, make_suite("step05", "conformance", test_05_vs_04));
    srunner_add_suite(sr, make_suite("step06", "conformance", test_06_vs_05));
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
