/**
 * @file steps/04_standard_cublas/launch.cu
 * @brief Step 04: standard attention on the GPU — GEMM, softmax, GEMM.
 *
 * **What this step adds over step 03.** Nothing algorithmic: it goes back
 * to step 01's standard attention and moves it to the GPU, the way a
 * framework's "math" path does it:
 *
 *     S = scale · Q Kᵀ      cuBLAS SGEMM, written to device memory
 *     P = softmax(S)        our kernel (kernel.cuh): one warp per row, shuffle reductions
 *     O = P V               cuBLAS SGEMM, reading P back from device memory
 *
 * S and P are B·Hq·Sq·Sk floats each: O(N²) memory, and O(N²) bytes that
 * cross HBM five times (GEMM 1 writes S, the softmax reads it twice and
 * writes P, GEMM 2 reads P). That is the baseline FlashAttention is measured
 * against, and the reason it exists: at B = 1, Hq = 32, N = 16384 S and P
 * take 64 GiB, and at N = 32768 they no longer fit in an 80 GB H100.
 * Measured on an H100 (notes/04): 6.09 ms at N = 4096, D = 64 (22.6
 * TFLOP/s), a third of it in the softmax, which computes almost nothing and
 * streams 6.4 GB.
 *
 * **Run it.**
 *
 *     make && build/bin/04_standard_cublas --heads 32 --seq 4096 --dim 64 --causal
 *     build/bin/04_standard_cublas --heads 32 --seq 4096 --dim 128 --bench --no-check
 *
 * **Limits.** fp32 only, on CUDA cores: cuBLAS runs in its default math mode,
 * which for SGEMM means plain fp32 FMA (no TF32, no bf16x9 emulation).
 * Head dims 1..256. The causal mask does not save work: both GEMMs compute
 * the full Sq×Sk product (that is what standard attention costs; step 06
 * skips masked blocks). When S and P do not fit, the run exits with code 3
 * and says how many bytes it needed and how many were free (the host wrapper
 * common/gpu_host.cu allocates the workspace before anything runs). cuBLAS
 * keeps a small workspace of its own (a few MiB, made once with the handle);
 * extra_bytes counts S and P only.
 */
#include <cublas_v2.h>

#include "common.h"
#include "cuda_check.h"
#include "kernel.cuh"

/** S and P: 2·B·Hq·Sq·Sk floats, in size_t (this exceeds 2^32 at long N). */
extern "C" size_t attn04_workspace_bytes(const attn_problem *p)
{
    return 2 * (size_t)p->batch * (size_t)p->heads_q * (size_t)p->seqlen_q *
           (size_t)p->seqlen_k * sizeof(float);
}

/** What step 04 refuses: head dims over 256 (the validator knows the rest). */
static int supports04(const attn_problem *p, char *msg, size_t msg_len)
{
    if (p->head_dim < 1 || p->head_dim > 256) {
        snprintf(msg, msg_len, "--dim %d: step 04 supports head dims 1..256",
                 p->head_dim);
        return ATTN_EXIT_BAD_INPUT;
    }
    return 0;
}

/*
 * q: [B, Hq, Sq, D], k, v: [B, Hkv, Sk, D], o: [B, Hq, Sq, D], lse: [B, Hq, Sq]
 * workspace: S [B, Hq, Sq, Sk] then P [B, Hq, Sq, Sk]
 *
 * cuBLAS is column-major; our tensors are row-major. A row-major X[m][n] is
 * the column-major matrix Xᵀ, so every product is written transposed:
 *   S = Q Kᵀ  (row-major Sq×Sk)  ⇔  Sᵀ = K Qᵀ   (column-major Sk×Sq)
 *   O = P V   (row-major Sq×D)   ⇔  Oᵀ = Vᵀ Pᵀ  (column-major D×Sq)
 *
 * MQA/GQA without pointer arrays: the g = Hq/Hkv query heads that share a
 * K/V head are neighbours in Q ([B, Hq, …] with h = kv·g + t), and so are
 * their rows of S, P and O. Stacked, they are one (g·Sq)×D matrix that
 * multiplies the same K: so each GEMM is a strided batch over the B·Hkv
 * K/V heads with n = g·Sq query rows. For MHA (g = 1) it is the usual batch
 * over B·Hq heads; for MQA it is B GEMMs of Hq·Sq rows — bigger GEMMs, and
 * K/V are read once per group instead of once per query head.
 */
extern "C" int attn04_forward(const attn_problem *p, const float *q,
                              const float *k, const float *v, float *o,
                              float *lse, void *workspace,
                              struct CUstream_st *stream)
{
    const int sq = p->seqlen_q, sk = p->seqlen_k, d = p->head_dim;
    const int g = p->heads_q / p->heads_kv;  /* query heads per K/V head */
    const int batches = p->batch * p->heads_kv;
    const size_t rows = (size_t)p->batch * p->heads_q * sq;
    const float scale = attn_scale(p), one = 1.0f, zero = 0.0f;
    float *s = (float *)workspace;
    float *pr = s + rows * (size_t)sk;
    cublasHandle_t h;

    if (rows == 0)
        return 0;
    if (attn_cublas_handle(&h))
        return ATTN_EXIT_RESOURCE;
    CUBLAS_CHECK(cublasSetStream(h, stream));

    if (sk == 0) {
        /* No keys at all (the validator may already refuse this): every row
         * sees none. O = 0; the softmax kernel writes LSE = -inf for n = 0.
         * The GEMMs would be k = 0 or m = 0 products: skip them. */
        CUDA_CHECK(cudaMemsetAsync(o, 0, rows * d * sizeof(float), stream));
        const size_t blocks = (rows + SOFTMAX_THREADS / WARP - 1) / (SOFTMAX_THREADS / WARP);
        softmax_rows_kernel<<<(unsigned)blocks, SOFTMAX_THREADS, 0, stream>>>(
            s, pr, lse, rows, sq, sk, p->causal);
        CUDA_CHECK_LAUNCH();
        return 0;
    }

    /* GEMM 1: Sᵀ[Sk×(g·Sq)] = scale · K[Sk×D] · Qᵀ[D×(g·Sq)] (column-major),
     * per K/V head. K is [Sk, D] row-major = column-major D×Sk, so op = T. */
    CUBLAS_CHECK(cublasSgemmStridedBatched(
        h, CUBLAS_OP_T, CUBLAS_OP_N,
        sk, g * sq, d,                          /* m, n, k */
        &scale,
        k, d, (long long)sk * d,                /* A = K of this K/V head */
        q, d, (long long)g * sq * d,            /* B = its g query heads */
        &zero,
        s, sk, (long long)g * sq * sk,          /* C = their rows of S */
        batches));

    /* Softmax: one warp per row of S, 8 rows per block. */
    {
        const size_t warps_per_block = SOFTMAX_THREADS / WARP;
        const size_t blocks = (rows + warps_per_block - 1) / warps_per_block;
        softmax_rows_kernel<<<(unsigned)blocks, SOFTMAX_THREADS, 0, stream>>>(
            s, pr, lse, rows, sq, sk, p->causal);
        CUDA_CHECK_LAUNCH();
    }

    /* GEMM 2: Oᵀ[D×(g·Sq)] = Vᵀ[D×Sk] · Pᵀ[Sk×(g·Sq)] (column-major).
     * V is [Sk, D] row-major = column-major D×Sk already: op = N. */
    CUBLAS_CHECK(cublasSgemmStridedBatched(
        h, CUBLAS_OP_N, CUBLAS_OP_N,
        d, g * sq, sk,                          /* m, n, k */
        &one,
        v, d, (long long)sk * d,                /* A = V of this K/V head */
        pr, sk, (long long)g * sq * sk,         /* B = P rows of its g heads */
        &zero,
        o, d, (long long)g * sq * d,            /* C = O rows */
        batches));

    if (p->causal) {
        const size_t warps_per_block = SOFTMAX_THREADS / WARP;
        const size_t blocks = (rows + warps_per_block - 1) / warps_per_block;
        causal_nan_fixup_kernel<<<(unsigned)blocks, SOFTMAX_THREADS, 0, stream>>>(
            pr, v, o, rows, p->heads_q, p->heads_kv, sq, sk, d);
        CUDA_CHECK_LAUNCH();
    }
    return 0;
}

/** Step 04's descriptor: what the driver and the test suites run. */
extern "C" const attn_step attn04_step = {
    "04", "standard_cublas", 1, NULL, attn04_forward, attn04_workspace_bytes,
    supports04, attn_gpu_run, {1u << ATTN_F32, 0, 1, 256, NULL}, NULL,
    ATTN_KIND_FORWARD, NULL, NULL, NULL};

#ifdef ATTN_STEP_MAIN
int main(int argc, char **argv) { return attn_step_main(argc, argv, &attn04_step); }
#endif
