/**
 * @file steps/04_standard_cublas/kernel.cuh
 * @brief Step 04's own device code: the softmax between the two GEMMs, and
 * the causal NaN fix-up after the second.
 *
 * Standard attention on the GPU, the way a framework's "math" path does it:
 *
 *     S = scale · Q Kᵀ      cuBLAS SGEMM, written to device memory
 *     P = softmax(S)        softmax_rows_kernel: one warp per row, shuffle reductions
 *     O = P V               cuBLAS SGEMM, reading P back from device memory
 *
 * The GEMMs are cuBLAS's; the sequence is in launch.cu (forward04).
 */
#ifndef ATTN_STEP04_KERNEL_CUH
#define ATTN_STEP04_KERNEL_CUH

#include "device/convert.cuh"
#include "device/softmax.cuh"
#include "device/visibility.cuh"
#include "device/warp.cuh"

/** Threads per block of the softmax and fix-up kernels: 8 warps, 8 rows. */
#define SOFTMAX_THREADS 256
/** Threads per warp: one warp owns one row of S. */
#define WARP 32

/**
 * Row-wise softmax of S into P (both of type T), and the row's LSE.
 *   s:   [R, Sk]  scaled scores, R = B·Hq·Sq rows (row r = (b·Hq + h)·Sq + i)
 *   p:   [R, Sk]  probabilities; 0 at every masked position (GEMM 2 reads all Sk)
 *   lse: [R]      m_i + ln(l_i); -inf for a row that sees no key
 * One warp per row: lane t handles columns t, t+32, t+64, … (consecutive
 * lanes read consecutive floats: each warp-wide load is one 128-byte line).
 *
 * Two passes over the row instead of the textbook three (max, sum, write):
 * pass 1 keeps, per lane, a running max m and a running sum l rescaled when
 * m grows — step 02's online softmax — and the 32 lanes merge them with
 * warp shuffles. That saves one full read of S (4·Sq·Sk bytes per head),
 * the largest of the softmax's costs.
 *
 * NaN: fmaxf() ignores a NaN, but exp(NaN - m) is NaN, so exactly the rows
 * whose visible scores hold a NaN get NaN; masked scores are never read.
 * A score of -inf counts as masked: softmax_guard keeps exp(-inf - (-inf))
 * out of a lane that has seen only -inf, and a row that has (l_i = 0)
 * gets P = 0 and LSE = -inf, as one that sees no key.
 */
template <typename T>
static __global__ void softmax_rows_kernel(const T *__restrict__ s, T *__restrict__ p,
                                           float *__restrict__ lse, size_t rows,
                                           int sq, int sk, int causal)
{
    const int lane = threadIdx.x % WARP;
    const size_t r = (size_t)blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    if (r >= rows)
        return; /* whole warp leaves together: r is uniform across the warp */

    const int i = (int)(r % (size_t)sq);
    const int n = keys_visible(i, sq, sk, causal);
    const T *s_row = s + r * (size_t)sk; /* size_t: R·Sk passes 2^31 at long N */
    T *p_row = p + r * (size_t)sk;

    /* Pass 1: per-lane online max and sum over the visible keys j < n. */
    float m = -INFINITY, l = 0.0f;
    for (int j = lane; j < n; j += WARP) {
        float x = to_f32(s_row[j]);
        float m_new = fmaxf(m, x);
        l = rescale_sum(l, m, m_new) + expf(x - softmax_guard(m_new));
        m = m_new;
    }
    /* Merge the 32 lanes: the row max m_i, then each lane's sum re-expressed
     * against it and summed. Every lane ends with m_i and l_i. */
    const float m_row = warp_allreduce_max<WARP>(m);
    l = warp_allreduce_sum<WARP>(rescale_sum(l, m, m_row));
    m = m_row;

    /* Pass 2: the row of P, exp(S_ij - m_i) / l_i where visible, else 0.
     * l_i = 0: every visible score is -inf, a masked row: P = 0, LSE = -inf. */
    for (int j = lane; j < sk; j += WARP)
        p_row[j] = from_f32<T>((j < n && l != 0.0f) ? expf(to_f32(s_row[j]) - m) / l : 0.0f);
    if (lane == 0)
        lse[r] = (n == 0 || l == 0.0f) ? -INFINITY : m + logf(l);
}

/**
 * Causal only: undo NaN that GEMM 2 brings into rows that never see it.
 *   p: [R, Sk], v: [B, Hkv, Sk, D], o: [R, D], all of type T
 * O = P V sums over ALL Sk keys, masked ones with P_ij = 0, and 0 · NaN =
 * NaN: a NaN in V row j would reach rows that do not see key j. So a row
 * with masked keys that came out NaN is recomputed over its visible keys
 * only (a plain loop: the rare case, not speed). One warp per row; rows
 * without NaN read their D values and leave (about 1% of step 04's time).
 */
template <typename T>
static __global__ void causal_nan_fixup_kernel(const T *__restrict__ p, const T *__restrict__ v,
                                               T *__restrict__ o, size_t rows,
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

    T *o_row = o + r * (size_t)d;
    int has_nan = 0;
    for (int c = lane; c < d; c += WARP)
        has_nan |= isnan(to_f32(o_row[c]));
    if (!__any_sync(0xffffffffu, has_nan))
        return;

    const size_t bh = r / (size_t)sq;            /* b·Hq + h */
    const size_t b = bh / (size_t)hq, h = bh % (size_t)hq;
    const size_t kv_head = b * hkv + h / (size_t)(hq / hkv);
    const T *p_row = p + r * (size_t)sk;
    const T *v_head = v + kv_head * (size_t)sk * d;
    for (int c = lane; c < d; c += WARP) {
        float acc = 0.0f;
        for (int j = 0; j < n; j++)
            acc += to_f32(p_row[j]) * to_f32(v_head[(size_t)j * d + c]);
        o_row[c] = from_f32<T>(acc);
    }
}

#endif /* ATTN_STEP04_KERNEL_CUH */
