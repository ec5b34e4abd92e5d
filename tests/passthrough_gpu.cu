/**
 * @file passthrough_gpu.cu
 * @brief A test-only GPU step on attn_params: O = Q, element by element in
 * Q's type and strides, LSE = 0. It proves what reaches a typed entry point
 * through the GPU runner (the type, the strides, the bits), not attention.
 */
#include <stdint.h>
#include <string.h>

#include "common.h"
#include "cuda_check.h"

/** The params the last call was handed (a host copy; its pointers are the device's). */
extern "C" attn_params attn_test_passthrough_seen;
attn_params attn_test_passthrough_seen;

/** One thread per element of O: copy the 2-byte (or 4-byte) element of Q at the same (b, h, s, d). */
static __global__ void passthrough_kernel(attn_params pp, size_t es)
{
    const attn_problem *p = &pp.prob;
    const size_t n = (size_t)p->batch * p->heads_q * p->seqlen_q * p->head_dim;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < n;
         e += (size_t)gridDim.x * blockDim.x) {
        const int d = (int)(e % p->head_dim);
        const size_t row = e / p->head_dim;
        const int s = (int)(row % p->seqlen_q);
        const int h = (int)(row / p->seqlen_q % p->heads_q);
        const int b = (int)(row / p->seqlen_q / p->heads_q);
        const size_t qi = b * pp.q.stride_b + h * pp.q.stride_h + s * pp.q.stride_s + d;
        const size_t oi = b * pp.o.stride_b + h * pp.o.stride_h + s * pp.o.stride_s + d;
        if (es == 2)
            ((uint16_t *)pp.o.data)[oi] = ((const uint16_t *)pp.q.data)[qi];
        else
            ((float *)pp.o.data)[oi] = ((const float *)pp.q.data)[qi];
        if (d == 0)
            pp.lse[row] = 0.0f;
    }
}

/** The step's params forward. */
static int passthrough_forward(const attn_params *pp, void *ws, struct CUstream_st *stream)
{
    (void)ws;
    attn_test_passthrough_seen = *pp;
    passthrough_kernel<<<64, 256, 0, stream>>>(*pp, attn_dtype_size(pp->q.dtype));
    CUDA_CHECK_LAUNCH();
    return 0;
}

/** The test-only GPU step: fp16 and bf16, any strides, any head dim. */
extern "C" const attn_step attn_test_passthrough_gpu_step = {
    "t16g", "passthrough_gpu", 1, NULL, NULL, NULL, NULL, attn_gpu_run,
    {(1u << ATTN_F16) | (1u << ATTN_BF16), ATTN_FEAT_STRIDES, 1, 256, NULL}, passthrough_forward,
    ATTN_KIND_FORWARD, NULL, NULL, NULL};
