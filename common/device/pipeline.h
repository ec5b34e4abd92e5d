/**
 * @file device/pipeline.h
 * @brief The bookkeeping of step 10's copy pipeline: which K/V block the
 * loop issues at iteration j, into which shared-memory stage, and how many
 * copy groups may still be in flight when it waits for K_j, then for V_j.
 *
 * The pipeline has S stages (S K/V slot pairs in shared memory, S ≥ 1).
 * Every block b is issued as two `cp.async` groups, K_b then V_b, into
 * stage b mod S; a block past the last is issued as two empty groups, so
 * that the count below never depends on where the loop is. Before the loop:
 * one group of Q, then blocks 0 .. S − 2. Iteration j, with S ≥ 2:
 *
 *     wait until K_j has landed        wait_group pipe_wait_k(S)
 *     barrier                          K_j visible to all; all are done with block j − 1
 *     issue block j + S − 1            into stage (j − 1) mod S, the one block j − 1 freed
 *     S_ij = Q_i K_jᵀ, softmax         while V_j and the next blocks are in flight
 *     wait until V_j has landed        wait_group pipe_wait_v(S)
 *     barrier                          V_j visible to all
 *     O_i += P_ij V_j
 *
 * With S = 1 nothing can be in flight while a block is computed: iteration
 * j starts with a barrier (all are done with block j − 1) and issues block
 * j itself, then waits as above.
 *
 * Plain C, host and device: the CPU test of exercise 10 replays the loop
 * with these functions and checks every wait and every overwrite.
 */
#ifndef ATTN_DEVICE_PIPELINE_H
#define ATTN_DEVICE_PIPELINE_H

/** How the functions below are declared: constexpr host and device
 *  functions in CUDA (the kernel's waits take them as template arguments),
 *  constexpr in C++, plain static inline in C. */
#ifdef __CUDACC__
#define ATTN_PIPE_FN static __host__ __device__ constexpr inline
#elif defined(__cplusplus)
#define ATTN_PIPE_FN static constexpr inline
#else
#define ATTN_PIPE_FN static inline
#endif

/** The block iteration @p j of an @p stages-deep pipeline issues (it may be
 *  past the last block: two empty groups then). */
ATTN_PIPE_FN int pipe_issue_block(int j, int stages)
{
    return stages == 1 ? j : j + stages - 1;
}

/** The stage (0 .. @p stages − 1) block @p b lives in. */
ATTN_PIPE_FN int pipe_stage(int b, int stages)
{
    return b % stages;
}

/** Groups that may still be in flight when iteration j waits for K_j: the
 *  groups committed after K_j's (V_j's, and the later blocks' already issued). */
ATTN_PIPE_FN int pipe_wait_k(int stages)
{
    return stages == 1 ? 1 : 2 * stages - 3;
}

/** Groups that may still be in flight when iteration j waits for V_j. */
ATTN_PIPE_FN int pipe_wait_v(int stages)
{
    return 2 * stages - 2;
}

#endif /* ATTN_DEVICE_PIPELINE_H */
