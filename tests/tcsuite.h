/**
 * @file tcsuite.h
 * @brief The GPU suite every tensor-core forward step passes (tcsuite.c),
 * built for one step and the step it is compared with: test_gpu_08.c runs
 * it for step 08 against step 06, test_gpu_09.c for step 09 against 08,
 * test_gpu_10.c for step 10 against 09.
 */
#ifndef ATTN_TCSUITE_H
#define ATTN_TCSUITE_H

#include <check.h>
#include <stdint.h>

#include "conformance.h"

/**
 * The suite @p name for @p step against @p prev: test cases fp16_bhsd,
 * fp16_bshd, bf16_bhsd, bf16_bshd (the conformance table, seeds from
 * @p seed), xdims_fp16 and xdims_bf16 (when the step takes head dims
 * beyond the table's: its D = 128 cases at each, both layouts) and
 * special. One step per process: the suite keeps them in file-scope state.
 */
Suite *tc_suite(const char *name, const attn_step *step, const attn_step *prev, uint64_t seed);
/** One line per type and layout that ran: the worst errors seen. */
void tc_summary(void);
/**
 * `--bench [N,N,…] [D,D,…]` (@p argv[2], @p argv[3]): for each D, N and
 * causal, B = 16384 / N, Hq = Hkv = 32, Sq = Sk = N, each of the
 * @p n_steps steps @p steps in type @p types (one line each: ms, TFLOP/s).
 * One input draw per D, shared by every N (B·N is constant); each run is
 * the step's runner with --bench's discipline (warm-up, median, L2
 * flushed). Returns 0, or 3 when host memory runs out.
 */
int tc_bench(int argc, char **argv, const attn_step *const *steps, const attn_dtype *types,
             int n_steps);

#endif /* ATTN_TCSUITE_H */
