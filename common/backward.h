/**
 * @file backward.h
 * @brief The plumbing of backward steps (step 07): a backward step's
 * descriptor, its GPU runner and its step program.
 *
 * The forward steps' descriptor (attn_step in common.h) runs a forward; a
 * backward step runs the forward it differentiates (for O and LSE) and then
 * its backward. Kept apart from common.h so that the forward plumbing does
 * not change.
 */
#ifndef ATTN_BACKWARD_H
#define ATTN_BACKWARD_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A GPU backward (device pointers): attn07_backward's signature. */
typedef int (*attn_gpu_backward_fn)(const attn_problem *p, const float *q, const float *k,
                                    const float *v, const float *o, const float *lse,
                                    const float *dout, float *dq, float *dk, float *dv,
                                    int deterministic, void *workspace,
                                    struct CUstream_st *stream);

/** What a backward run measured. */
typedef struct {
    double ms_bwd;        /**< median of the timed backward runs (or the one run) */
    double ms_fwd_bwd;    /**< median of timed forward + backward runs (0 without bench) */
    int runs;             /**< timed backward runs */
    size_t extra_bytes;   /**< the backward's device workspace */
} attn_bwd_stats;

struct attn_bwd_step;

/** Runs a backward step on host arrays (attn_bwd_gpu_run). */
typedef int (*attn_bwd_runner)(const struct attn_bwd_step *step, const attn_problem *p,
                               const float *q, const float *k, const float *v,
                               const float *dout, float *o, float *lse, float *dq, float *dk,
                               float *dv, int deterministic, const attn_bench_opts *bench,
                               attn_bwd_stats *st, char *msg, size_t msg_len);

/** A backward step: its number, name, the forward it differentiates. */
typedef struct attn_bwd_step {
    const char *id;                          /**< "07" */
    const char *name;                        /**< "backward" */
    const attn_step *forward;                /**< gives O and LSE (step 06) */
    attn_gpu_backward_fn gpu_backward;       /**< the backward, device pointers */
    size_t (*workspace_bytes)(const attn_problem *p); /**< its device workspace */
    /** Shapes the step refuses (NULL: none): 0, or 2 with a message. */
    int (*supports)(const attn_problem *p, char *msg, size_t msg_len);
    /** attn_bwd_gpu_run: a pointer, so driver_bwd.c links without CUDA */
    attn_bwd_runner run;
} attn_bwd_step;

/**
 * Run a GPU backward step on host arrays (common/gpu_bwd_host.cu): copy
 * Q, K, V, dO in, run step->forward for O and LSE, then the backward; copy
 * O, LSE, dQ, dK, dV out. Outputs are poisoned on the device and the
 * workspace filled with NaN first. With @p bench, times forward + backward
 * and the backward alone (CUDA events, median, capped by bench->max_ms).
 * Returns 0, 2 (refused shape) or 3 (no device, out of memory) with a
 * one-line message in @p msg.
 */
int attn_bwd_gpu_run(const attn_bwd_step *step, const attn_problem *p, const float *q,
                     const float *k, const float *v, const float *dout, float *o,
                     float *lse, float *dq, float *dk, float *dv, int deterministic,
                     const attn_bench_opts *bench, attn_bwd_stats *st, char *msg,
                     size_t msg_len);

/**
 * The step program of a backward step (common/driver_bwd.c): the shared
 * flags plus --do, --dq, --dk, --dv, --deterministic; checks dQ, dK, dV
 * against the float64 oracle's backward with the gradient rule of
 * notes/design.md (factor 3, scaled by an fp32 standard backward on the same inputs). Returns the
 * exit code.
 */
int attn_bwd_step_main(int argc, char **argv, const attn_bwd_step *step);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_BACKWARD_H */
