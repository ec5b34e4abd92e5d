/**
 * @file test_gpu_08.c
 * @brief GPU suite of step 08, the tensor-core forward: the suite every
 * tensor-core step passes (tcsuite.c: the conformance table in fp16 and
 * bf16, BHSD and BSHD, against the float64 oracle and against step 06 on
 * the same rounded inputs; odd strides; an infinity in V; the refusals).
 * And step 04 at fp16/bf16, the standard
 * attention step 08 is timed against, over the same table: its
 * semantics, and its error reported against the rule it cannot meet.
 *
 *     build/bin/test_gpu_08                      the suite; ends with the worst error per case
 *     CK_RUN_CASE=fp16_bshd build/bin/test_gpu_08    one type and layout
 *     CK_RUN_CASE=step04_fp16 build/bin/test_gpu_08  step 04 at fp16
 *     build/bin/test_gpu_08 --bench [N,N,…] [D,D,…]  TFLOP/s of 08 (fp16, bf16) beside 06 and 04
 *
 * Runs without fork (CUDA does not survive fork()). Where there is no
 * usable CUDA device it prints `skipped: no CUDA device` and exits 0.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcsuite.h"

static const attn_dtype TYPES[2] = {ATTN_F16, ATTN_BF16};

/* Step 04 at fp16 / bf16 (S and P stored in the type), over the table in
 * BHSD: every element written, NaN exactly where the inputs put it, rows
 * that see no key O = 0 and LSE = -inf, and O within the rule plus what
 * storing S in the type can cost (conf_set_s_rounding). Its error against
 * the rule alone is reported in the summary. */
static double worst04_rule[2];
static int runs04[2];

static void check04(int i, int c)
{
    attn_problem p;
    conf_kind kind;
    conf_case(i, &p, &kind);
    conf_set_s_rounding(c ? 0x1p-8 : 0x1p-11);
    const int skipped = conf_check_step_at(&attn04_step, NULL, &p, kind, 40000u + 1000u * c + i,
                                           TYPES[c], ATTN_LAYOUT_BHSD);
    conf_set_s_rounding(0.0);
    if (skipped)
        return;
    worst04_rule[c] = fmax(worst04_rule[c], conf_last()->max_abs / conf_last()->rule);
    runs04[c]++;
}

START_TEST(test_04_fp16) { check04(_i, 0); }
END_TEST
START_TEST(test_04_bf16) { check04(_i, 1); }
END_TEST

static Suite *suite_08(void)
{
    Suite *s = tc_suite("step08", &attn08_step, &attn06_step, 80000u);
    TCase *tc = tcase_create("step04_fp16");
    tcase_add_loop_test(tc, test_04_fp16, 0, conf_case_count());
    suite_add_tcase(s, tc);
    tc = tcase_create("step04_bf16");
    tcase_add_loop_test(tc, test_04_bf16, 0, conf_case_count());
    suite_add_tcase(s, tc);
    return s;
}

/* --bench: step 08 in fp16 and bf16, step 06 (fp32), step 04 (fp32, and
 * fp16/bf16 where it takes them). */
static int bench(int argc, char **argv)
{
    const attn_step *steps[6] = {&attn08_step, &attn08_step, &attn06_step,
                                 &attn04_step, &attn04_step, &attn04_step};
    const attn_dtype types[6] = {ATTN_F16, ATTN_BF16, ATTN_F32, ATTN_F32, ATTN_F16, ATTN_BF16};
    return tc_bench(argc, argv, steps, types, 6);
}

int main(int argc, char **argv)
{
    char msg[256];
    if (!attn_gpu_available(msg, sizeof msg)) {
        printf("skipped: no CUDA device\n");
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "--bench"))
        return bench(argc, argv);
    SRunner *sr = srunner_create(suite_08());
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    tc_summary();
    for (int c = 0; c < 2; c++)
        if (runs04[c])
            printf("summary step 04 %s (S stored in the type): %d cases, worst max_abs_err / "
                   "(2 x baseline + 1e-4) %.2f\n",
                   attn_dtype_name(TYPES[c]), runs04[c], worst04_rule[c]);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
