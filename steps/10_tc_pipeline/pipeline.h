/**
 * @file steps/10_tc_pipeline/pipeline.h
 * @brief Step 10's pipeline bookkeeping (pipeline.c), declared for the CPU
 * test that replays the loop with it (tests/test_10.c) and for exercise 10.
 */
#ifndef ATTN_STEP10_PIPELINE_H
#define ATTN_STEP10_PIPELINE_H

#ifdef __cplusplus
extern "C" {
#endif

/**
 * The K/V block that iteration @p j of a pipeline of @p stages stages
 * (S ≥ 1) issues; past the last block it is issued as two empty groups.
 */
int attn10_pipe_issue_block(int j, int stages);

/** The shared-memory stage (0 .. @p stages − 1) that block @p b is copied into. */
int attn10_pipe_stage(int b, int stages);

/** The N of the `cp.async.wait_group N` that iteration j waits with for K_j. */
int attn10_pipe_wait_k(int stages);

/** The N of the `cp.async.wait_group N` that iteration j waits with for V_j. */
int attn10_pipe_wait_v(int stages);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_STEP10_PIPELINE_H */
