/**
 * @file steps/07_backward/standard_cublas.cu
 * @brief Step 07's baseline: the standard (stored-P) backward on the GPU
 * with cuBLAS — P, dP and dS materialized, O(N²) device memory.
 *
 * What a framework's "math" attention does for the backward, and what the
 * recomputing kernel (kernel.cuh) is verified against and timed beside:
 *
 *     S  = scale · Q Kᵀ               GEMM        → workspace (then P, in place)
 *     P  = softmax(S)                 our kernel  (the standard forward stores this)
 *     dV = Pᵀ dO                      GEMM
 *     dP = dO Vᵀ                      GEMM        → workspace
 *     dS = P ∘ (dP − rowsum(P ∘ dP))  our kernel, dS over dP in place
 *     dQ = scale · dS K               GEMM
 *     dK = scale · dSᵀ Q              GEMM
 *
 * Workspace: 2·B·Hq·Sq·Sk floats (P and dP/dS): 64 GiB at B = 1, Hq = 32,
 * N = 16384; the recomputing backward needs B·Hq·Sq floats. The standard
 * forward would have stored P; this baseline rebuilds it from S at the start
 * (one GEMM and one softmax), so its time includes that (the table in
 * notes/07 says so). GQA/MQA: the g query heads of a K/V head are stacked
 * into one (g·Sq)-row matrix, as in step 04, so dK and dV sum over them
 * inside the GEMM. Default math mode: fp32 on CUDA cores, no TF32.
 */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>

#include "common.h"
#include "cuda_check.h"
#include "device/visibility.cuh"
#include "device/warp.cuh"

#define THREADS 256 /**< 8 warps, one row each */
#define WARP 32     /**< threads per warp */

/**
 * P = softmax(S) in place, one warp per row; masked keys get P = 0 and a
 * row that sees no key is all zeros.
 *   s: [R, Sk], R = B·Hq·Sq rows (row r = (b·Hq + h)·Sq + i)
 * Three passes over the row (max, sum, write): the plain textbook version.
 */
static __global__ void softmax_kernel(float *s, size_t rows, int sq, int sk, int causal)
{
    const size_t r = (size_t)blockIdx.x * (THREADS / WARP) + threadIdx.x / WARP;
    const int lane = threadIdx.x % WARP;
    if (r >= rows)
        return; /* whole warps leave together */
    float *row = s + r * sk;
    const int n = keys_visible((int)(r % sq), sq, sk, causal);
    float m = -INFINITY, l = 0.0f;
    for (int j = lane; j < n; j += WARP)
        m = fmaxf(m, row[j]);
    m = warp_allreduce_max<WARP>(m);
    for (int j = lane; j < n; j += WARP)
        l += expf(row[j] - m);
    l = warp_allreduce_sum<WARP>(l);
    for (int j = lane; j < sk; j += WARP)
        row[j] = j < n ? expf(row[j] - m) / l : 0.0f;
}

/**
 * dS = P ∘ (dP − δ), δ = rowsum(P ∘ dP), written over dP; one warp per row.
 *   pr, ds: [R, Sk]   masked keys: dS = 0 (chosen, not multiplied)
 */
static __global__ void ds_kernel(const float *pr, float *ds, size_t rows, int sq, int sk,
                                 int causal)
{
    const size_t r = (size_t)blockIdx.x * (THREADS / WARP) + threadIdx.x / WARP;
    const int lane = threadIdx.x % WARP;
    if (r >= rows)
        return;
    const float *p = pr + r * sk;
    float *x = ds + r * sk;
    const int n = keys_visible((int)(r % sq), sq, sk, causal);
    float delta = 0.0f;
    for (int j = lane; j < n; j += WARP)
        delta += p[j] * x[j];
    delta = warp_allreduce_sum<WARP>(delta);
    for (int j = lane; j < sk; j += WARP)
        x[j] = j < n ? p[j] * (x[j] - delta) : 0.0f;
}

/** The two row kernels over all R rows, a warp each. (tests/emu07 defines
 * LAUNCH_ROWS as a host loop, to run this file's call sequence on a CPU.) */
#ifndef LAUNCH_ROWS
#define LAUNCH_ROWS(kernel, blocks, stream) kernel<<<(blocks), THREADS, 0, (stream)>>>
#endif

/** P and dP/dS: 2·B·Hq·Sq·Sk floats. */
extern "C" size_t attn07_standard_workspace_bytes(const attn_problem *p)
{
    return 2 * (size_t)p->batch * (size_t)p->heads_q * (size_t)p->seqlen_q *
           (size_t)p->seqlen_k * sizeof(float);
}

/** What the stored-P baseline refuses: head dims outside 1..256 (the
 * validator knows the rest). */
static int supports07_standard(const attn_problem *p, char *msg, size_t msg_len)
{
    if (p->head_dim < 1 || p->head_dim > 256) {
        snprintf(msg, msg_len, "--dim %d: the stored-P backward supports head dims 1..256",
                 p->head_dim);
        return ATTN_EXIT_BAD_INPUT;
    }
    return 0;
}

/*
 * q, dout, dq: [B, Hq, Sq, D]   k, v, dk, dv: [B, Hkv, Sk, D]
 * workspace: P [B, Hq, Sq, Sk], then dP/dS [B, Hq, Sq, Sk]
 *
 * cuBLAS is column-major: a row-major X[m][n] is the column-major Xᵀ. Per
 * K/V head, with the g query heads stacked (n = g·Sq rows):
 *   Sᵀ  [Sk×n] = K [Sk×D]·Qᵀ [D×n]        (K: op T, Q: op N)
 *   dVᵀ [D×Sk] = dOᵀ [D×n]·P [n×Sk]        (dO: op N, Pᵀ stored: op T)
 *   dPᵀ [Sk×n] = V [Sk×D]·dOᵀ [D×n]        (as S)
 *   dQᵀ [D×n]  = Kᵀ [D×Sk]·dSᵀ [Sk×n]      (both op N)
 *   dKᵀ [D×Sk] = Qᵀ [D×n]·dS [n×Sk]        (as dV)
 */
extern "C" int attn07_standard_backward(const attn_problem *p, const float *q, const float *k,
                                        const float *v, const float *o, const float *lse,
                                        const float *dout, float *dq, float *dk, float *dv,
                                        int deterministic, void *workspace,
                                        struct CUstream_st *stream)
{
    const int sq = p->seqlen_q, sk = p->seqlen_k, d = p->head_dim;
    const int g = p->heads_q / p->heads_kv, n = g * sq, batches = p->batch * p->heads_kv;
    const size_t rows = attn_lse_elems(p);
    const float scale = attn_scale(p), one = 1.0f, zero = 0.0f;
    const long long sQ = (long long)n * d, sKV = (long long)sk * d, sP = (long long)n * sk;
    float *pr = (float *)workspace, *ds = pr + rows * (size_t)sk;
    const unsigned row_blocks = (unsigned)((rows + THREADS / WARP - 1) / (THREADS / WARP));
    cublasHandle_t h;
    (void)o, (void)lse, (void)deterministic;
    if (!workspace)
        return ATTN_EXIT_BAD_INPUT;
    if (attn_cublas_handle(&h))
        return ATTN_EXIT_RESOURCE;
    CUBLAS_CHECK(cublasSetStream(h, stream));

    /* S = scale · Q Kᵀ into the P buffer, then P = softmax(S) in place */
    CUBLAS_CHECK(cublasSgemmStridedBatched(h, CUBLAS_OP_T, CUBLAS_OP_N, sk, n, d, &scale, k, d,
                                           sKV, q, d, sQ, &zero, pr, sk, sP, batches));
    LAUNCH_ROWS(softmax_kernel, row_blocks, stream)(pr, rows, sq, sk, p->causal);
    CUDA_CHECK_LAUNCH();
    /* dV = Pᵀ dO */
    CUBLAS_CHECK(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_T, d, sk, n, &one, dout, d,
                                           sQ, pr, sk, sP, &zero, dv, d, sKV, batches));
    /* dP = dO Vᵀ */
    CUBLAS_CHECK(cublasSgemmStridedBatched(h, CUBLAS_OP_T, CUBLAS_OP_N, sk, n, d, &one, v, d,
                                           sKV, dout, d, sQ, &zero, ds, sk, sP, batches));
    /* dS = P ∘ (dP − δ), over dP */
    LAUNCH_ROWS(ds_kernel, row_blocks, stream)(pr, ds, rows, sq, sk, p->causal);
    CUDA_CHECK_LAUNCH();
    /* dQ = scale · dS K */
    CUBLAS_CHECK(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, d, n, sk, &scale, k, d,
                                           sKV, ds, sk, sP, &zero, dq, d, sQ, batches));
    /* dK = scale · dSᵀ Q */
    CUBLAS_CHECK(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_T, d, sk, n, &scale, q, d,
                                           sQ, ds, sk, sP, &zero, dk, d, sKV, batches));
    return 0;
}

/** The baseline as a backward step (for the GPU suite and comparisons). */
extern "C" const attn_step attn07_standard_step = {
    "07s", "standard_backward", 1, NULL, NULL, attn07_standard_workspace_bytes,
    supports07_standard, NULL, {0, 0, 0, 0, NULL}, NULL, ATTN_KIND_BACKWARD, &attn06_step,
    attn07_standard_backward, attn_bwd_gpu_run};
