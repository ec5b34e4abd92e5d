/**
 * @file test_gpu_10.c
 * @brief GPU suite of step 10, the `cp.async` pipeline: the suite
 * every tensor-core step passes (tcsuite.c: the conformance table in fp16
 * and bf16, BHSD and BSHD, against the float64 oracle and against step 09
 * on the same rounded inputs; odd strides; an infinity in V; the
 * refusals).
 *
 *     build/bin/test_gpu_10                      the suite; ends with the worst error per case
 *     CK_RUN_CASE=bf16_bshd build/bin/test_gpu_10    one type and layout
 *     build/bin/test_gpu_10 --bench [N,N,…] [D,D,…]  TFLOP/s of 10 beside 09 (fp16, bf16)
 *
 * Runs without fork (CUDA does not survive fork()). Where there is no
 * usable CUDA device it prints `skipped: no CUDA device` and exits 0.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcsuite.h"

int main(int argc, char **argv)
{
    char msg[256];
    if (!attn_gpu_available(msg, sizeof msg)) {
        printf("skipped: no CUDA device\n");
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "--bench")) {
        const attn_step *steps[4] = {&attn10_step, &attn10_step, &attn09_step, &attn09_step};
        const attn_dtype types[4] = {ATTN_F16, ATTN_BF16, ATTN_F16, ATTN_BF16};
        return tc_bench(argc, argv, steps, types, 4);
    }
    SRunner *sr = srunner_create(tc_suite("step10", &attn10_step, &attn09_step, 100000u));
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    tc_summary();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
