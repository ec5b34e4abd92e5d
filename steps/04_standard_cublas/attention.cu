/**
 * @file steps/04_standard_cublas/attention.cu
 * @brief Step 04: standard attention on the GPU — GEMM, softmax, GEMM.
 *
 * **What this step adds over step 03.** Nothing algorithmic: it goes back
 * to step 01's standard attention and moves it to the GPU, the way a
 * framework's "math" path does it:
 *
 *     S = scale · Q Kᵀ      cuBLAS SGEMM, written to device memory
 *     P = softmax(S)        our kernel: one warp per row, shuffle reductions
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
#include <cuda_runtime.h>
#include <math.h>

#include "common.h"
#include "cuda_check.h"

/** Threads per block of the softmax and fix-up kernels: 8 warps, 8 rows. */
#define SOFTMAX_THREADS 256
/** Threads per warp: one warp owns one row of S. */
#define WARP 32

/* Keys row i may see: j < n (causal is aligned bottom-right, DESIGN.md).
 * The device twin of attn_keys_visible(). */
static __device__ __forceinline__ int keys_visible(int i, int sq, int sk, int causal)
{
    if (!causal)
        return sk;
    long long n = (long long)i + sk - sq + 1;
    return n < 0 ? 0 : (n > sk ? sk : (int)n);
}

/* l · exp(m - m_new): a running sum l taken against max m, re-expressed
 * against the new max m_new >= m. When m == m_new the factor is exactly 1 —
 * also when both are -inf (a lane that has seen no finite score yet), where
 * exp(-inf - (-inf)) would be NaN. A NaN in l always survives: NaN · 0 and
 * NaN · 1 are NaN, so a row that met a NaN score stays NaN through every
 * rescale and merge. */
static __device__ __forceinline__ float rescale(float l, float m, float m_new)
{
    return l * (m == m_new ? 1.0f : expf(m - m_new));
}

/*
 * Row-wise softmax of S into P, and the row's LSE.
 *   s:   [R, Sk]  scaled scores, R = B·Hq·Sq rows (row r = (b·Hq + h)·Sq + i)
 *   p:   [R, Sk]  probabilities; 0 at every masked position (GEMM 2 reads all Sk)
 *   lse: [R]      m_i + ln(l_i); -inf for a row that sees no key
 * One warp per row: lane t handles columns t, t+32, t+64, … (consecutive
 * lanes read consecutive floats: each warp-wide load is one 128-byte line).
 *
 * Two passes over the row instead of the textbook three (max, sum, write):
 * pass 1 keeps, per lane, a running max m and a running sum l rescaled when
 * m grows — step 02's online softmax — and the 32 partial (m, l) pairs are
 * merged with __shfl_xor_sync. That saves one full read of S (4·Sq·Sk bytes
 * per head), the largest of the softmax's costs.
 *
 * NaN: fmaxf() ignores a NaN, but exp(NaN - m) is NaN, so l, every P_ij of
 * the row and its LSE become NaN — exactly the rows whose visible scores
 * hold a NaN. Masked scores are never read, so a NaN key row j (which makes
 * S_ij NaN in every row, masked or not) reaches only rows that see key j.
 */
static __global__ void softmax_rows_kernel(const float *__restrict__ s,
                                    float *__restrict__ p,
                                    float *__restrict__ lse, size_t rows,
                                    int sq, int sk, int causal)
{
    const int lane = threadIdx.x % WARP;
    const size_t r = (size_t)blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    if (r >= rows)
        return; /* whole warp leaves together: r is uniform across the warp */

    const int i = (int)(r % (size_t)sq);
    const int n = keys_visible(i, sq, sk, causal);
    const float *s_row = s + r * (size_t)sk; /* size_t: R·Sk passes 2^31 at long N */
    float *p_row = p + r * (size_t)sk;

    /* Pass 1: per-lane online max and sum over the visible keys j < n. */
    float m = -INFINITY, l = 0.0f;
    for (int j = lane; j < n; j += WARP) {
        float x = s_row[j];
        float m_new = fmaxf(m, x);
        l = rescale(l, m, m_new) + expf(x - m_new);
        m = m_new;
    }
    /* Merge the 32 lanes' (m, l): a butterfly, so every lane ends with the
     * row's m_i and l_i. A lane that saw no key has (m, l) = (-inf, 0). */
    for (int off = WARP / 2; off > 0; off /= 2) {
        float m_o = __shfl_xor_sync(0xffffffffu, m, off);
        float l_o = __shfl_xor_sync(0xffffffffu, l, off);
        float m_new = fmaxf(m, m_o);
        l = rescale(l, m, m_new) + rescale(l_o, m_o, m_new);
        m = m_new;
    }

    /* Pass 2: write the whole row of P: exp(S_ij - m_i) / l_i where visible,
     * 0 where masked. A row with no key gets P = 0, so O = 0 (see fix-up). */
    for (int j = lane; j < sk; j += WARP)
        p_row[j] = (j < n) ? expf(s_row[j] - m) / l : 0.0f;
    if (lane == 0)
        lse[r] = (n == 0) ? -INFINITY : m + logf(l);
}

/*
 * Causal only: undo NaN that GEMM 2 brings into rows that never see it.
 *   p: [R, Sk], v: [B, Hkv, Sk, D], o: [R, D]
 * O = P V computes o_i = Σ_j P_ij V_j over ALL Sk keys, masked ones with
 * P_ij = 0. IEEE says 0 · NaN = NaN (and 0 · inf = NaN), so a NaN in V row j
 * would turn every row NaN, also the rows i that do not see key j. DESIGN.md
 * wants NaN exactly in the rows that read it. So: a row that has masked keys
 * (n < Sk) and came out with a NaN is recomputed here over its visible keys
 * only, o_i = Σ_{j<n} P_ij V_j. If the NaN was its own (a visible NaN), it
 * comes back; if it came from a masked key, it is gone. One warp per row;
 * rows without NaN (all of them, for finite inputs) just read their D
 * values and leave — about 1% of step 04's time at N = 4096.
 * The recompute is a plain loop, slow (O(n·D) per row, no reuse), and only
 * runs for rows with NaN: correctness of the rare case, not speed.
 */
static __global__ void causal_nan_fixup_kernel(const float *__restrict__ p,
                                        const float *__restrict__ v,
                                        float *__restrict__ o, size_t rows,
                                        int hq, int hkv, int sq, int sk, int d)
{
    const int lane = threadIdx.x % WARP;
    const size_t r = (size_t)blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    if (r >= rows)
        return;
    const int i = (int)(r % (size_t)sq);
    const int n = keys_visible(i, sq, sk, 1);
    if (n == sk)
        return; /* sees every key: any NaN in its O is genuinely its own */

    float *o_row = o + r * (size_t)d;
    int has_nan = 0;
    for (int c = lane; c < d; c += WARP)
        has_nan |= isnan(o_row[c]);
    if (!__any_sync(0xffffffffu, has_nan))
        return;

    const size_t bh = r / (size_t)sq;            /* b·Hq + h */
    const size_t b = bh / (size_t)hq, h = bh % (size_t)hq;
    const size_t kv_head = b * hkv + h / (size_t)(hq / hkv);
    const float *p_row = p + r * (size_t)sk;
    const float *v_head = v + kv_head * (size_t)sk * d;
    for (int c = lane; c < d; c += WARP) {
        float acc = 0.0f;
        for (int j = 0; j < n; j++)
            acc += p_row[j] * v_head[(size_t)j * d + c];
        o_row[c] = acc;
    }
}

/* The cuBLAS handle: made on first use and kept (creating one costs about
 * as much as a whole forward at small N). Not thread-safe, like the rest of
 * the step programs. */
static cublasHandle_t g_handle = NULL;

static int get_handle(cublasHandle_t *out)
{
    if (!g_handle) {
        CUBLAS_CHECK(cublasCreate(&g_handle));
        /* Default math: SGEMM in true fp32 on CUDA cores. (TF32 would need
         * CUBLAS_TF32_TENSOR_OP_MATH; we never ask for it.) */
        CUBLAS_CHECK(cublasSetMathMode(g_handle, CUBLAS_DEFAULT_MATH));
    }
    *out = g_handle;
    return 0;
}

/** S and P: 2·B·Hq·Sq·Sk floats, in size_t (this exceeds 2^32 at long N). */
extern "C" size_t attn04_workspace_bytes(const attn_problem *p)
{
    return 2 * (size_t)p->batch * (size_t)p->heads_q * (size_t)p->seqlen_q *
           (size_t)p->seqlen_k * sizeof(float);
}

/* What step 04 refuses: head dims over 256 (the validator knows the rest). */
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
    if (get_handle(&h))
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
    supports04, attn_gpu_run};

#ifdef ATTN_STEP_MAIN
int main(int argc, char **argv) { return attn_step_main(argc, argv, &attn04_step); }
#endif
