/**
 * @file gpu_host.h
 * @brief Host-side helpers the GPU runners share (gpu_host.cu, the forward;
 * gpu_bwd_host.cu, the backward): the error macro, device allocation,
 * poisoning, the L2 flush buffer. nvcc only; plumbing, not a lesson.
 */
#ifndef ATTN_GPU_HOST_H
#define ATTN_GPU_HOST_H

#include <cuda_runtime.h>
#include <stdio.h>

#include "common.h"

/**
 * A runner's check of a CUDA call: on failure, fill `msg` (of `msg_len`)
 * with the call's text and CUDA's message, clear the (non-sticky) error so
 * later launch checks do not see it, set `rc` = 3 and jump to `done`.
 */
#define HOST_TRY(call)                                                        \
    do {                                                                      \
        cudaError_t e_ = (call);                                              \
        if (e_ != cudaSuccess) {                                              \
            (void)cudaGetLastError();                                         \
            snprintf(msg, msg_len, "CUDA error: %s failed at %s:%d: %s",      \
                     #call, __FILE__, __LINE__, cudaGetErrorString(e_));      \
            rc = ATTN_EXIT_RESOURCE;                                          \
            goto done;                                                        \
        }                                                                     \
    } while (0)

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

#endif /* ATTN_GPU_HOST_H */
