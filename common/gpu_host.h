/**
 * @file gpu_host.h
 * @brief Host-side helpers the GPU runners share (gpu_host.cu, the forward;
 * gpu_bwd_host.cu, the backward): the error check, device allocation,
 * poisoning, the L2 flush buffer. nvcc only; plumbing, not a lesson.
 */
#ifndef ATTN_GPU_HOST_H
#define ATTN_GPU_HOST_H

#include <cuda_runtime.h>
#include <stdio.h>

#include "common.h"

/**
 * A runner's check of a CUDA call: 0 when @p e is cudaSuccess; otherwise
 * a one-line message in @p msg (of @p msg_len bytes) with the call's text
 * @p what, its place and CUDA's message, the (non-sticky) error cleared so
 * later launch checks do not see it, and ATTN_EXIT_RESOURCE (3).
 */
int attn_cuda_msg(cudaError_t e, const char *what, const char *file, int line, char *msg,
                  size_t msg_len);

/** attn_cuda_msg() of a call, with the call's own text:
 *  `if ((rc = HOST_CALL(cudaMemcpy(...), msg, msg_len))) goto done;` */
#define HOST_CALL(call, msg, msg_len) \
    attn_cuda_msg((call), #call, __FILE__, __LINE__, (msg), (msg_len))

/** cudaMalloc of @p bytes (NULL and success for 0); a failure is cleared. */
cudaError_t attn_dev_alloc(void **ptr, size_t bytes);

/** x[0..n) = value on @p s (poisoning outputs before a run). */
cudaError_t attn_dev_fill(float *x, size_t n, float value, cudaStream_t s);

/**
 * The L2 flush buffer of a timed run: 2 × L2 bytes when the run's tensors
 * (@p tensor_bytes) would fit in L2 and so be found cached by the next run;
 * *flush_bytes = 0 (no flush) otherwise or when it does not fit. Writing it
 * before each timed run evicts them. Not the step's memory: not counted.
 */
cudaError_t attn_l2_flush_alloc(size_t tensor_bytes, void **flush, size_t *flush_bytes);

/**
 * What timing a step needs beyond the step itself: a stream, two events,
 * the L2 flush buffer (with --bench), room for the timings. The runners'
 * one timing discipline: CUDA events around the step alone, warm-up first,
 * median of up to bench->iters runs capped by bench->max_ms, L2 flushed
 * before each timed run when the tensors would otherwise stay cached.
 */
typedef struct {
    cudaStream_t stream;  /**< every copy, fill and run goes here */
    cudaEvent_t ev0;      /**< recorded before each timed run */
    cudaEvent_t ev1;      /**< recorded after each timed run */
    void *flush;          /**< L2 flush buffer, or NULL */
    size_t flush_bytes;   /**< 0: no flush (no --bench, or it did not fit) */
    double *times;        /**< the timed runs' milliseconds */
    int iters;            /**< room in times: bench->iters, 1 without --bench */
} attn_gpu_timer;

/** One run of a step on @p stream; returns the step's exit code and, when
 *  it is not 0, has written the message. */
typedef int (*attn_gpu_run_fn)(void *ctx, cudaStream_t stream);

/** Create the stream and events; with @p bench also the timings' room and
 *  the L2 flush buffer (tensors of @p tensor_bytes). 0, or 3 with @p msg. */
int attn_timer_open(attn_gpu_timer *t, const attn_bench_opts *bench, size_t tensor_bytes,
                    char *msg, size_t msg_len);

/** Wait for the stream, destroy what attn_timer_open() made (errors
 *  ignored: after a sticky fault every call fails, and rc already says 3). */
void attn_timer_close(attn_gpu_timer *t);

/** Warm-up: up to bench->warmup runs of @p fn, each waited for, stopping
 *  once bench->max_ms of wall time passed. 0, the step's code, or 3. */
int attn_timer_warm_up(attn_gpu_timer *t, const attn_bench_opts *bench, attn_gpu_run_fn fn,
                       void *ctx, char *msg, size_t msg_len);

/** Timed runs of @p fn: up to t->iters, the L2 flushed before each when
 *  t->flush_bytes, stopping once @p max_ms (0: no cap) of timed runs were
 *  spent; *ms = their median, *runs = how many. 0, the step's code, or 3. */
int attn_timer_run(attn_gpu_timer *t, double max_ms, attn_gpu_run_fn fn, void *ctx, double *ms,
                   int *runs, char *msg, size_t msg_len);

#endif /* ATTN_GPU_HOST_H */
