/**
 * @file cuda_check.h
 * @brief One error macro for CUDA calls, one for cuBLAS, one after launches.
 *
 * Compiled only by nvcc. Each prints the failing call's own text, the file,
 * the line and the library's message, and makes the enclosing function
 * return ATTN_EXIT_RESOURCE (3), so a step program exits cleanly instead of
 * crashing (DESIGN.md: never a crash).
 */
#ifndef ATTN_CUDA_CHECK_H
#define ATTN_CUDA_CHECK_H

#include <cuda_runtime.h>
#include <stdio.h>

#include "attn.h"

/** Check a CUDA runtime call; on error print it and return 3. */
#define CUDA_CHECK(call)                                                     \
    do {                                                                     \
        cudaError_t err_ = (call);                                           \
        if (err_ != cudaSuccess) {                                           \
            fprintf(stderr, "error: %s failed at %s:%d: %s\n", #call,        \
                    __FILE__, __LINE__, cudaGetErrorString(err_));           \
            return ATTN_EXIT_RESOURCE;                                       \
        }                                                                    \
    } while (0)

/** Check the last kernel launch (configuration errors show up here). */
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

/** Check a cuBLAS call; on error print it and return 3. */
#define CUBLAS_CHECK(call)                                                   \
    do {                                                                     \
        int st_ = (int)(call);                                               \
        if (st_ != 0) {                                                      \
            fprintf(stderr, "error: %s failed at %s:%d: cuBLAS status %d\n", \
                    #call, __FILE__, __LINE__, st_);                         \
            return ATTN_EXIT_RESOURCE;                                       \
        }                                                                    \
    } while (0)

#endif /* ATTN_CUDA_CHECK_H */
