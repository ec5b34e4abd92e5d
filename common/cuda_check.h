/**
 * @file cuda_check.h
 * @brief One error macro for CUDA calls, one for cuBLAS, one after launches.
 *
 * Compiled only by nvcc. Each records the failing call's own text, the
 * file, the line and the library's message as the library's last error
 * (attn_last_error(); nothing is printed) and makes the enclosing function
 * return ATTN_EXIT_RESOURCE (3), so a step program exits cleanly instead of
 * crashing (notes/design.md: never a crash).
 */
#ifndef ATTN_CUDA_CHECK_H
#define ATTN_CUDA_CHECK_H

#include <cuda_runtime.h>

#include "common.h"

/** Check a CUDA runtime call; on error record it and return 3. */
#define CUDA_CHECK(call)                                                      \
    do {                                                                      \
        cudaError_t err_ = (call);                                            \
        if (err_ != cudaSuccess)                                              \
            return attn_set_error(ATTN_EXIT_RESOURCE, "%s failed at %s:%d: %s", \
                                  #call, __FILE__, __LINE__,                  \
                                  cudaGetErrorString(err_));                  \
    } while (0)

/** Check the last kernel launch (configuration errors show up here). */
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

/** Check a cuBLAS call; on error record it and return 3. */
#define CUBLAS_CHECK(call)                                                    \
    do {                                                                      \
        int st_ = (int)(call);                                                \
        if (st_ != 0)                                                         \
            return attn_set_error(ATTN_EXIT_RESOURCE,                         \
                                  "%s failed at %s:%d: cuBLAS status %d",     \
                                  #call, __FILE__, __LINE__, st_);            \
    } while (0)

/** cuBLAS's handle type, without its header (steps that use it include it). */
typedef struct cublasContext *attn_cublas_t;

/**
 * The one cuBLAS handle of the process (steps 04 and 07's baseline): made on
 * first use and kept, since creating one costs about as much as a whole
 * forward at small N; default math mode, so SGEMM is true fp32 on CUDA
 * cores (TF32 would need CUBLAS_TF32_TENSOR_OP_MATH, which no step asks
 * for). Not thread-safe, like the step programs. 0, or 3 with the last
 * error set. (gpu_host.cu)
 */
int attn_cublas_handle(attn_cublas_t *out);

#endif /* ATTN_CUDA_CHECK_H */
