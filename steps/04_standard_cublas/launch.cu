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
 * **Limits.** fp32 on CUDA cores by default: cuBLAS runs in its default math
 * mode, which for SGEMM means plain fp32 FMA (no TF32, no bf16x9
 * emulation). `--dtype fp16|bf16` runs the same three steps at that
 * precision (GemmEx, 16-bit operands, fp32 compute, tensor cores), S and P
 * stored in the type: the baseline step 08 is timed against. Storing S in
 * 16 bits rounds every logit (fp16: 2^-11 relative; bf16: 2^-8), so at that
 * precision step 04 does not meet the fp16/bf16 rule of the design page,
 * which holds a kernel that keeps S in fp32 (its error is reported, not
 * bounded by that rule); BHSD only.
 * Head dims 1..256. The causal mask does not save work: both GEMMs compute
 * the full Sq×Sk product (that is what standard attention costs; step 06
 * skips masked blocks). When S and P do not fit, the run exits with code 3
 * and says how many bytes it needed and how many were free (the host wrapper
 * common/gpu_host.cu allocates the workspace before anything runs). cuBLAS
 * keeps a small workspace of its own (a few MiB, made once with the handle);
 * extra_bytes counts S and P only.
 */
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

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

/**
 * One of step 04's two GEMMs, C = α · op(A) · B over the batch of K/V heads
 * (column-major, B never transposed, β = 0). fp32: cuBLAS SGEMM in its
 * default math mode (plain fp32 FMA). fp16/bf16: GemmEx with 16-bit
 * operands and C, fp32 compute (tensor cores).
 */
template <typename T>
static cublasStatus_t gemm04(cublasHandle_t h, cublasOperation_t op_a, int m, int n, int k,
                             const float *alpha, const T *a, int lda, long long stride_a,
                             const T *b, int ldb, long long stride_b, T *c, int ldc,
                             long long stride_c, int batches)
{
    const float zero = 0.0f;
    if constexpr (std::is_same<T, float>::value) {
        return cublasSgemmStridedBatched(h, op_a, CUBLAS_OP_N, m, n, k, alpha, a, lda, stride_a,
                                         b, ldb, stride_b, &zero, c, ldc, stride_c, batches);
    } else {
        const cudaDataType_t ct = std::is_same<T, __half>::value ? CUDA_R_16F : CUDA_R_16BF;
        return cublasGemmStridedBatchedEx(h, op_a, CUBLAS_OP_N, m, n, k, alpha, a, ct, lda,
                                          stride_a, b, ct, ldb, stride_b, &zero, c, ct, ldc,
                                          stride_c, batches, CUBLAS_COMPUTE_32F,
                                          CUBLAS_GEMM_DEFAULT);
    }
}

/**
 * Step 04 at element type T: GEMM, softmax, GEMM (and the causal fix-up).
 *
 * q: [B, Hq, Sq, D], k, v: [B, Hkv, Sk, D], o: [B, Hq, Sq, D], lse: [B, Hq, Sq]
 * workspace: S [B, Hq, Sq, Sk] then P [B, Hq, Sq, Sk], of element type T
 * (float, __half or __nv_bfloat16: Q, K, V and O are of that type too; LSE
 * is fp32). At 16 bits S and P use half of attn04_workspace_bytes().
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
template <typename T>
static int forward04(const attn_problem *p, const T *q, const T *k, const T *v, T *o,
                     float *lse, void *workspace, cudaStream_t stream)
{
    const int sq = p->seqlen_q, sk = p->seqlen_k, d = p->head_dim;
    const int g = p->heads_q / p->heads_kv;  /* query heads per K/V head */
    const int batches = p->batch * p->heads_kv;
    const size_t rows = (size_t)p->batch * p->heads_q * sq;
    const float scale = attn_scale(p), one = 1.0f;
    T *s = (T *)workspace;
    T *pr = s + rows * (size_t)sk;
    /* the softmax and fix-up kernels: one warp per row, 8 rows per block */
    const size_t warps_per_block = SOFTMAX_THREADS / WARP;
    const size_t blocks = (rows + warps_per_block - 1) / warps_per_block;
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
        CUDA_CHECK(cudaMemsetAsync(o, 0, rows * d * sizeof(T), stream));
        softmax_rows_kernel<T><<<(unsigned)blocks, SOFTMAX_THREADS, 0, stream>>>(
            s, pr, lse, rows, sq, sk, p->causal);
        CUDA_CHECK_LAUNCH();
        return 0;
    }

    /* GEMM 1: Sᵀ[Sk×(g·Sq)] = scale · K[Sk×D] · Qᵀ[D×(g·Sq)] (column-major),
     * per K/V head. K is [Sk, D] row-major = column-major D×Sk, so op = T. */
    CUBLAS_CHECK(gemm04<T>(h, CUBLAS_OP_T,
                           sk, g * sq, d,                   /* m, n, k */
                           &scale,
                           k, d, (long long)sk * d,         /* A = K of this K/V head */
                           q, d, (long long)g * sq * d,     /* B = its g query heads */
                           s, sk, (long long)g * sq * sk,   /* C = their rows of S */
                           batches));

    /* Softmax: one warp per row of S. */
    softmax_rows_kernel<T><<<(unsigned)blocks, SOFTMAX_THREADS, 0, stream>>>(
        s, pr, lse, rows, sq, sk, p->causal);
    CUDA_CHECK_LAUNCH();

    /* GEMM 2: Oᵀ[D×(g·Sq)] = Vᵀ[D×Sk] · Pᵀ[Sk×(g·Sq)] (column-major).
     * V is [Sk, D] row-major = column-major D×Sk already: op = N. */
    CUBLAS_CHECK(gemm04<T>(h, CUBLAS_OP_N,
                           d, g * sq, sk,                   /* m, n, k */
                           &one,
                           v, d, (long long)sk * d,         /* A = V of this K/V head */
                           pr, sk, (long long)g * sq * sk,  /* B = P rows of its g heads */
                           o, d, (long long)g * sq * d,     /* C = O rows */
                           batches));

    if (p->causal) {
        causal_nan_fixup_kernel<T><<<(unsigned)blocks, SOFTMAX_THREADS, 0, stream>>>(
            pr, v, o, rows, p->heads_q, p->heads_kv, sq, sk, d);
        CUDA_CHECK_LAUNCH();
    }
    return 0;
}

/** Step 04 in fp32 (the float entry point: the descriptor's, the benchmark's). */
extern "C" int attn04_forward(const attn_problem *p, const float *q,
                              const float *k, const float *v, float *o,
                              float *lse, void *workspace,
                              struct CUstream_st *stream)
{
    return forward04<float>(p, q, k, v, o, lse, workspace, stream);
}

/** forward04() on attn_params' tensors of type @p T (contiguous BHSD). */
template <typename T>
static int forward04_params(const attn_params *pp, void *workspace, cudaStream_t stream)
{
    return forward04<T>(&pp->prob, (const T *)pp->q.data, (const T *)pp->k.data,
                        (const T *)pp->v.data, (T *)pp->o.data, pp->lse, workspace, stream);
}

/** Step 04's caps: fp32, fp16, bf16; contiguous BHSD; head dims 1..256. */
#define CAPS04 {(1u << ATTN_F32) | (1u << ATTN_F16) | (1u << ATTN_BF16), 0, 1, 256, NULL}

/**
 * Step 04 on attn_params (`--dtype fp32|fp16|bf16`): fp32 is
 * attn04_forward(); fp16 and bf16 run the same three steps with 16-bit
 * operands and fp32 compute, S and P materialized in the type (what a
 * framework's math path does at that precision). Contiguous BHSD device
 * tensors; workspace of attn04_workspace_bytes() bytes (the 16-bit types
 * use half of it). Returns 0, 2 or 3 with attn_last_error() set.
 */
extern "C" int attn04_forward_params(const attn_params *pp, void *workspace,
                                     struct CUstream_st *stream)
{
    static const attn_caps caps = CAPS04;
    char msg[256];
    int rc;
    if ((rc = attn_params_check(pp, &caps, "04", msg, sizeof msg)))
        return attn_set_error(rc, "%s", msg);
    switch (pp->q.dtype) {
    case ATTN_F16: return forward04_params<__half>(pp, workspace, stream);
    case ATTN_BF16: return forward04_params<__nv_bfloat16>(pp, workspace, stream);
    default: return forward04_params<float>(pp, workspace, stream);
    }
}

/** Step 04's descriptor: what the driver and the test suites run. Its
 *  float entry point stays (the benchmark calls it); the runner calls the
 *  params one, which also takes fp16 and bf16. */
extern "C" const attn_step attn04_step = {
    "04", "standard_cublas", 1, NULL, attn04_forward, attn04_workspace_bytes,
    supports04, attn_gpu_run, CAPS04, attn04_forward_params,
    ATTN_KIND_FORWARD, NULL, NULL, NULL};

#ifdef ATTN_STEP_MAIN
int main(int argc, char **argv) { return attn_step_main(argc, argv, &attn04_step); }
#endif
