/**
 * @file steps/05_smem_fa1/kernel.cuh
 * @brief Step 05's idea: the FlashAttention-1 kernel — K/V tiles in shared
 * memory, O, l and m in device memory (the paper's Algorithm 1, as written).
 *
 * Step 04 writes S and P, O(N²) floats, to device memory; this kernel never
 * does. It is step 03's tiled algorithm moved onto the GPU, line for line:
 *
 *     one thread block per (batch, head)
 *     for j in 0..Tc-1:                 outer loop: K_j, V_j  (Bc rows) → shared memory
 *         for i in 0..Tr-1:             inner loop: Q_i, O_i  (Br rows) → shared memory,
 *                                                   l_i, m_i            → registers
 *             S_ij = Q_i K_jᵀ           one thread per query row: its Bc scores in registers
 *             m~_ij, P~_ij, l~_ij       row max, exp, row sum
 *             m_i_new, l_i_new          online softmax (step 02's rescaling)
 *             O_i ← diag(l_i_new)⁻¹ (diag(l_i) e^{m_i - m_i_new} O_i + e^{m~_ij - m_i_new} P~_ij V_j)
 *             O_i, l_i, m_i → device memory
 *     lse_i = m_i + ln(l_i)
 *
 * The launch (tile choice, shared memory, the entry point) is in launch.cu.
 */
#ifndef ATTN_STEP05_KERNEL_CUH
#define ATTN_STEP05_KERNEL_CUH

#include "device/softmax.cuh"
#include "device/tiles.cuh"
#include "device/visibility.cuh"

/** Keys per K/V block: one thread holds a row of S_ij, Bc floats. */
#define BC 32

/**
 * Algorithm 1, line 12, for this thread's row:
 *   O_i ← c_old · O_i + c_new · P~_ij V_j
 * o_row: [D] the row in shared memory, p: [Bc] P~_ij, vs: [Bc][D] V_j.
 * MASKED: only keys c < n_vis enter the sum. p = 0 is not enough, since
 * 0 · NaN = NaN would leak a NaN V row into a query that does not see it.
 */
template <int D, bool MASKED>
static __device__ __forceinline__ void update_o_row(float *o_row, const float (&p)[BC],
                                                    const float *vs, int n_vis,
                                                    float c_old, float c_new)
{
#pragma unroll 2
    for (int dd = 0; dd < D; dd += 4) {
        float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
        for (int c = 0; c < BC; c++) {
            if (MASKED && c >= n_vis)
                continue;
            /* every thread reads the same V_j element: a broadcast */
            const float4 vv = *reinterpret_cast<const float4 *>(vs + c * D + dd);
            acc.x = fmaf(p[c], vv.x, acc.x);
            acc.y = fmaf(p[c], vv.y, acc.y);
            acc.z = fmaf(p[c], vv.z, acc.z);
            acc.w = fmaf(p[c], vv.w, acc.w);
        }
        float4 *op = reinterpret_cast<float4 *>(o_row + dd);
        float4 ov = *op;
        ov.x = c_old * ov.x + c_new * acc.x;
        ov.y = c_old * ov.y + c_new * acc.y;
        ov.z = c_old * ov.z + c_new * acc.z;
        ov.w = c_old * ov.w + c_new * acc.w;
        *op = ov;
    }
}

/**
 * The FlashAttention-1 forward, one thread block per (batch, head).
 *   q: [B, Hq, Sq, d]   k, v: [B, Hkv, Sk, d]   o: [B, Hq, Sq, d]
 *   lse: [B, Hq, Sq]    m_hbm, l_hbm: [B, Hq, Sq] (the workspace)
 * @p D: the tile's head dim (32, 64, 128), @p d <= D the problem's.
 * @p BR (Br) query rows per inner step, one thread per row (blockDim.x = BR).
 *
 * Shared memory (floats): K_j [Bc][D+4], V_j [Bc][D], Q_i [Br][D+4],
 * O_i [Br][D+4]. The +4 pad keeps thread t's row t of Q_i and O_i off its
 * neighbours' banks; K_j and V_j are read by broadcast (notes/05).
 */
template <int D, int BR>
static __global__ void __launch_bounds__(BR)
fa1_kernel(const float *__restrict__ q, const float *__restrict__ k,
           const float *__restrict__ v, float *__restrict__ o,
           float *__restrict__ lse, float *__restrict__ m_hbm,
           float *__restrict__ l_hbm, int hq, int hkv, int sq, int sk, int d,
           int causal, float scale, int vec)
{
    constexpr int LDK = D + 4, LDV = D, LDQ = D + 4;
    extern __shared__ float4 smem_f4[]; /* float4: 16-byte aligned */
    float *Ks = reinterpret_cast<float *>(smem_f4); /* the outer loop's tiles first */
    float *Vs = Ks + BC * LDK;
    float *Qs = Vs + BC * LDV;
    float *Os = Qs + BR * LDQ;

    const int tid = threadIdx.x;
    const int bh = blockIdx.x, b = bh / hq, h = bh % hq;
    const int hk = h / (hq / hkv); /* MQA/GQA: the K/V head this head reads */
    const float *q_bh = q + (size_t)bh * sq * d;
    const float *k_bh = k + ((size_t)b * hkv + hk) * sk * d;
    const float *v_bh = v + ((size_t)b * hkv + hk) * sk * d;
    float *o_bh = o + (size_t)bh * sq * d;
    float *m_bh = m_hbm + (size_t)bh * sq, *l_bh = l_hbm + (size_t)bh * sq;
    const int Tr = (sq + BR - 1) / BR, Tc = (sk + BC - 1) / BC;

    /* Line 2: O = 0, l = 0, m = -inf in device memory (row r: thread r % Br). */
    for (size_t idx = tid; idx < (size_t)sq * d; idx += BR)
        o_bh[idx] = 0.0f;
    for (int r = tid; r < sq; r += BR) {
        l_bh[r] = 0.0f;
        m_bh[r] = -INFINITY;
    }
    __syncthreads(); /* O = 0 is in device memory before any thread loads O_i */

    for (int j = 0; j < Tc; j++) { /* line 5: outer loop over K/V blocks */
        /* Line 6: K_j, V_j to shared memory (rows past Sk are zeros). */
        load_tile<BC, D, LDK, BR>(Ks, k_bh, j * BC, sk, d, vec);
        load_tile<BC, D, LDV, BR>(Vs, v_bh, j * BC, sk, d, vec);

        for (int i = 0; i < Tr; i++) { /* line 7: inner loop over Q blocks */
            /* Line 8: Q_i, O_i to shared memory; this row's l_i, m_i to registers. */
            load_tile<BR, D, LDQ, BR>(Qs, q_bh, i * BR, sq, d, vec);
            load_tile<BR, D, LDQ, BR>(Os, o_bh, i * BR, sq, d, vec);
            const int row = i * BR + tid;
            float m_i = -INFINITY, l_i = 0.0f;
            if (row < sq) {
                m_i = m_bh[row];
                l_i = l_bh[row];
            }
            __syncthreads(); /* K_j, V_j, Q_i, O_i tiles are complete in shared memory */

            /* Line 9: S_ij = Q_i K_jᵀ, this thread's row: Bc dot products of
             * length D, a float4 of Q and of K_j per step (4 FMAs a load). */
            float s[BC] = {};
#pragma unroll 4
            for (int kk = 0; kk < D; kk += 4) {
                const float4 qv = *reinterpret_cast<const float4 *>(Qs + tid * LDQ + kk);
#pragma unroll
                for (int c = 0; c < BC; c++) {
                    const float4 kv = *reinterpret_cast<const float4 *>(Ks + c * LDK + kk);
                    s[c] = fmaf(qv.x, kv.x, s[c]);
                    s[c] = fmaf(qv.y, kv.y, s[c]);
                    s[c] = fmaf(qv.z, kv.z, s[c]);
                    s[c] = fmaf(qv.w, kv.w, s[c]);
                }
            }

            /* Keys of K_j this row sees: c < n_vis (<= 0: none, >= Bc: all). */
            const int n_vis = keys_visible(row, sq, sk, causal) - j * BC;

            /* Line 10: m~_ij = rowmax(S_ij), P~_ij = exp(S_ij - m~_ij),
             * l~_ij = rowsum(P~_ij). Masked scores are replaced, never used:
             * a NaN must reach only the rows that see it. */
            float m_t = -INFINITY;
#pragma unroll
            for (int c = 0; c < BC; c++) {
                s[c] = (c < n_vis) ? s[c] * scale : -INFINITY;
                m_t = fmaxf(m_t, s[c]);
            }
            float l_t = 0.0f;
#pragma unroll
            for (int c = 0; c < BC; c++) {
                s[c] = (c < n_vis) ? expf(s[c] - softmax_guard(m_t)) : 0.0f; /* s now holds P~_ij */
                l_t += s[c];
            }

            /* Line 11: m_new = max(m_i, m~), l_new = alpha l_i + beta l~, with
             * the rescale factor alpha = e^{m_i - m_new}; the -inf guard makes
             * it 0 while no key is seen, never exp(-inf - (-inf)) = NaN. */
            const float m_new = fmaxf(m_i, m_t);
            const float alpha = expf(m_i - softmax_guard(m_new));
            const float beta = expf(m_t - softmax_guard(m_new));
            const float l_new = alpha * l_i + beta * l_t;

            /* Line 12: rescale and accumulate O_i, divided by l_new on every
             * pass (FA2 defers it to the end). Divided, not multiplied by 1 /
             * l_new: when K_j adds nothing to a row the factor is then exactly
             * 1 and O_i does not drift (notes/05). No key yet: l_new = 0, O_i = 0. */
            const float c_old = (l_new == 0.0f) ? 0.0f : (l_i * alpha) / l_new;
            const float c_new = (l_new == 0.0f) ? 0.0f : beta / l_new;
            /* Masked or not is chosen once per block (does its first row see
             * all of K_j?), so every thread takes the same path (notes/05). */
            if ((j + 1) * BC > keys_visible(i * BR, sq, sk, causal))
                update_o_row<D, true>(Os + tid * LDQ, s, Vs, n_vis, c_old, c_new);
            else
                update_o_row<D, false>(Os + tid * LDQ, s, Vs, n_vis, c_old, c_new);

            /* Line 13: l_i, m_i back to device memory. */
            if (row < sq) {
                m_bh[row] = m_new;
                l_bh[row] = l_new;
            }
            __syncthreads(); /* every row of O_i is updated in Os before the write-back reads it */
            store_tile<BR, D, LDQ, BR>(o_bh, Os, i * BR, sq, d, vec); /* line 13: O_i */
            __syncthreads(); /* all reads done before the next loads overwrite the tiles */
        }
    }

    /* lse_i = m_i + ln(l_i), for the backward. This thread wrote rows
     * tid + i·Br itself: no barrier needed. */
    for (int r = tid; r < sq; r += BR) {
        const float l = l_bh[r];
        lse[(size_t)bh * sq + r] = (l == 0.0f) ? -INFINITY : m_bh[r] + logf(l);
    }
}

#endif /* ATTN_STEP05_KERNEL_CUH */
