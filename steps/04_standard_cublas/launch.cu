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

/* ---- fp16 and bf16: the same three steps, S and P stored in the type ---- */

/** A 16-bit element as a float (fp16). */
static __device__ __forceinline__ float to_f32(__half x) { return __half2float(x); }
/** A 16-bit element as a float (bf16). */
static __device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
/** A float rounded (to nearest even) to the 16-bit type of @p like. */
static __device__ __forceinline__ __half from_f32(float x, __half like)
{
    (void)like;
    return __float2half_rn(x);
}
/** @copydoc from_f32(float, __half) */
static __device__ __forceinline__ __nv_bfloat16 from_f32(float x, __nv_bfloat16 like)
{
    (void)like;
    return __float2bfloat16_rn(x);
}

/**
 * softmax_rows_kernel (kernel.cuh) on S and P of 16-bit type @p T: the
 * same two passes, the same merge, fp32 arithmetic; S read as stored (the
 * logits already rounded to T by GEMM 1), P rounded to T as it is written.
 */
template <typename T>
static __global__ void softmax_rows16_kernel(const T *__restrict__ s, T *__restrict__ p,
                                             float *__restrict__ lse, size_t rows, int sq,
                                             int sk, int causal)
{
    const int lane = threadIdx.x % WARP;
    const size_t r = (size_t)blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    if (r >= rows)
        return;
    const int i = (int)(r % (size_t)sq);
    const int n = keys_visible(i, sq, sk, causal);
    const T *s_row = s + r * (size_t)sk;
    T *p_row = p + r * (size_t)sk;
    float m = -INFINITY, l = 0.0f;
    for (int j = lane; j < n; j += WARP) {
        const float x = to_f32(s_row[j]);
        const float m_new = fmaxf(m, x);
        l = rescale_sum(l, m, m_new) + expf(x - m_new);
        m = m_new;
    }
    const float m_row = warp_allreduce_max<WARP>(m);
    l = warp_allreduce_sum<WARP>(rescale_sum(l, m, m_row));
    m = m_row;
    for (int j = lane; j < sk; j += WARP)
        p_row[j] = from_f32((j < n) ? expf(to_f32(s_row[j]) - m) / l : 0.0f, T());
    if (lane == 0)
        lse[r] = (n == 0) ? -INFINITY : m + logf(l);
}

/** causal_nan_fixup_kernel (kernel.cuh) on P, V and O of 16-bit type @p T. */
template <typename T>
static __global__ void causal_nan_fixup16_kernel(const T *__restrict__ p, const T *__restrict__ v,
                                                 T *__restrict__ o, size_t rows, int hq, int hkv,
                                                 int sq, int sk, int d)
{
    const int lane = threadIdx.x % WARP;
    const size_t r = (size_t)blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    if (r >= rows)
        return;
    const int i = (int)(r % (size_t)sq);
    const int n = keys_visible(i, sq, sk, 1);
    if (n == sk)
        return;
    T *o_row = o + r * (size_t)d;
    int has_nan = 0;
    for (int c = lane; c < d; c += WARP)
        has_nan |= isnan(to_f32(o_row[c]));
    if (!__any_sync(0xffffffffu, has_nan))
        return;
    const size_t bh = r / (size_t)sq;
    const size_t b = bh / (size_t)hq, h = bh % (size_t)hq;
    const size_t kv_head = b * hkv + h / (size_t)(hq / hkv);
    const T *p_row = p + r * (size_t)sk;
    const T *v_head = v + kv_head * (size_t)sk * d;
    for (int c = lane; c < d; c += WARP) {
        float acc = 0.0f;
        for (int j = 0; j < n; j++)
            acc += to_f32(p_row[j]) * to_f32(v_head[(size_t)j * d + c]);
        o_row[c] = from_f32(acc, T());
    }
}

/**
 * attn04_forward() at 16-bit type @p T (cuBLAS type @p ct): GEMM 1 and
 * GEMM 2 as cublasGemmStridedBatchedEx with T operands and fp32 compute,
 * S and P stored in T (half of the fp32 workspace is used), the softmax and
 * the causal fix-up on T. Contiguous BHSD tensors of type T; LSE fp32.
 */
template <typename T>
static int forward16(const attn_params *pp, void *workspace, cudaStream_t stream,
                     cudaDataType_t ct)
{
    const attn_problem *p = &pp->prob;
    const int sq = p->seqlen_q, sk = p->seqlen_k, d = p->head_dim;
    const int g = p->heads_q / p->heads_kv;
    const int batches = p->batch * p->heads_kv;
    const size_t rows = (size_t)p->batch * p->heads_q * sq;
    const float scale = attn_scale(p), one = 1.0f, zero = 0.0f;
    const T *q = (const T *)pp->q.data, *k = (const T *)pp->k.data, *v = (const T *)pp->v.data;
    T *o = (T *)pp->o.data, *s = (T *)workspace;
    T *pr = s + rows * (size_t)sk;
    const size_t warps_per_block = SOFTMAX_THREADS / WARP;
    const size_t blocks = (rows + warps_per_block - 1) / warps_per_block;
    cublasHandle_t h;

    if (rows == 0)
        return 0;
    if (attn_cublas_handle(&h))
        return ATTN_EXIT_RESOURCE;
    CUBLAS_CHECK(cublasSetStream(h, stream));
    if (sk == 0) {
        CUDA_CHECK(cudaMemsetAsync(o, 0, rows * d * sizeof(T), stream));
        softmax_rows16_kernel<T><<<(unsigned)blocks, SOFTMAX_THREADS, 0, stream>>>(
            s, pr, pp->lse, rows, sq, sk, p->causal);
        CUDA_CHECK_LAUNCH();
        return 0;
    }
    CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        h, CUBLAS_OP_T, CUBLAS_OP_N, sk, g * sq, d, &scale, k, ct, d, (long long)sk * d, q, ct, d,
        (long long)g * sq * d, &zero, s, ct, sk, (long long)g * sq * sk, batches,
        CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    softmax_rows16_kernel<T><<<(unsigned)blocks, SOFTMAX_THREADS, 0, stream>>>(
        s, pr, pp->lse, rows, sq, sk, p->causal);
    CUDA_CHECK_LAUNCH();
    CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        h, CUBLAS_OP_N, CUBLAS_OP_N, d, g * sq, sk, &one, v, ct, d, (long long)sk * d, pr, ct, sk,
        (long long)g * sq * sk, &zero, o, ct, d, (long long)g * sq * d, batches,
        CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    if (p->causal) {
        causal_nan_fixup16_kernel<T><<<(unsigned)blocks, SOFTMAX_THREADS, 0, stream>>>(
            pr, v, o, rows, p->heads_q, p->heads_kv, sq, sk, d);
        CUDA_CHECK_LAUNCH();
    }
    return 0;
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
    case ATTN_F16: return forward16<__half>(pp, workspace, stream, CUDA_R_16F);
    case ATTN_BF16: return forward16<__nv_bfloat16>(pp, workspace, stream, CUDA_R_16BF);
    default:
        return attn04_forward(&pp->prob, (const float *)pp->q.data, (const float *)pp->k.data,
                              (const float *)pp->v.data, (float *)pp->o.data, pp->lse, workspace,
                              stream);
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
