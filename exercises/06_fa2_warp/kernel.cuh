/**
 * @file exercises/06_fa2_warp/kernel.cuh
 * @brief Exercise 06 (fill in the TODOs; README.md beside this file): the FlashAttention-2 kernel — grid over Q blocks,
 * warps own rows, O_i in registers, one normalization at the end.
 *
 * The same tiles and the same online softmax as step 05, reorganized the
 * way FlashAttention-2 does it:
 *
 *     grid over (Q block i, batch·head)   B·Hq·Tr blocks instead of B·Hq
 *     Q_i → shared memory, once
 *     for j in 0..Tc_i-1:                 one loop, over K/V blocks only
 *         K_j, V_j → shared memory
 *         S_ij = Q_i K_jᵀ                 each warp owns 16 rows of Q_i;
 *                                         each thread a 4×(Bc/8) tile of S_ij
 *         m_new = max(m_i, rowmax(S_ij))  __shfl_xor_sync across the 8 lanes of a row
 *         P_ij = exp(S_ij - m_new)
 *         l_i = e^{m_i - m_new} l_i + rowsum(P_ij)    e^{m_i - m_new}: the rescale factor
 *         O_i = e^{m_i - m_new} O_i + P_ij V_j    O_i in registers, never divided here
 *         m_i = m_new
 *     O_i = O_i / l_i,  lse_i = m_i + ln(l_i)     once, at the end
 *
 * The launch (tile choice, shared memory, the entry point) is in launch.cu.
 */
#ifndef ATTN_STEP06_KERNEL_CUH
#define ATTN_STEP06_KERNEL_CUH

#include "device/softmax.cuh"
#include "device/tiles.cuh"
#include "device/visibility.cuh"
#include "device/warp.cuh"

/** Rows per thread: lane = 8·rg + g owns rows rg, rg+4, rg+8, rg+12 of its warp's 16. */
#define TM 4
/** Query rows per warp. A block of NW warps owns Br = 16·NW rows of Q. */
#define WARP_ROWS (4 * TM)
/** log2(e): exp(x) = exp2(x·log2 e), and exp2f is one MUFU instruction. */
#define LOG2E 1.4426950408889634f

/**
 * One K/V block for this thread's 4 rows: S_ij, the online softmax, O_i += P_ij V_j.
 *   Qs: [Br][D+4] Q_i   Ks: [Bc][D+4] K_j   Vs: [Bc][D] V_j   Ps: [Br][Bc+8] P_ij
 *   m_i, l_i: [TM] its rows (l_i: a partial sum over its own keys)   o_i: its tile of O_i
 * Thread (warp w, lane 8·rg + g) owns rows r_t = 16w + rg + 4t (t < 4), keys
 * g + 8u (u < Bc/8) of S_ij, and columns 32u + 4g .. +3 (u < D/32) of O_i.
 * MASKED: some (row, key) of the block is not visible; full blocks skip the tests.
 */
template <int D, int BC, bool MASKED>
static __device__ __forceinline__ void block_step(
    const float *Qs, const float *Ks, const float *Vs, float *Ps, float (&m_i)[TM],
    float (&l_i)[TM], float (&o_i)[TM][D / 8], int warp, int rg, int g, int row0,
    int col0, int sq, int sk, int causal, float scale)
{
    constexpr int LDQ = D + 4, LDK = D + 4, LDV = D, LDP = BC + 8;
    constexpr int TN = BC / 8; /* keys per thread */
    constexpr int TD = D / 32; /* float4 columns of O_i per thread */
    const int r_w = warp * WARP_ROWS + rg; /* this thread's first row in the block; rows r_w + 4t */
    int n_vis[TM]; /* MASKED: keys row r_w + 4t sees (it sees key c when c < n_vis) */
#pragma unroll
    for (int t = 0; t < TM; t++)
        n_vis[t] = MASKED ? keys_visible(row0 + r_w + 4 * t, sq, sk, causal) : sk;

    /* S_ij = Q_i K_jᵀ: a 4 × TN tile per thread (register blocking: 4 float4
     * of Q and TN of K feed 16·TN FMAs). Row stride D + 4: no bank conflicts. */
    float s[TM][TN] = {};
#pragma unroll 4
    for (int kk = 0; kk < D; kk += 4) {
        float4 qv[TM];
#pragma unroll
        for (int t = 0; t < TM; t++)
            qv[t] = *reinterpret_cast<const float4 *>(Qs + (r_w + 4 * t) * LDQ + kk);
#pragma unroll
        for (int u = 0; u < TN; u++) {
            const float4 kv = *reinterpret_cast<const float4 *>(Ks + (g + 8 * u) * LDK + kk);
#pragma unroll
            for (int t = 0; t < TM; t++) {
                s[t][u] = fmaf(qv[t].x, kv.x, s[t][u]);
                s[t][u] = fmaf(qv[t].y, kv.y, s[t][u]);
                s[t][u] = fmaf(qv[t].z, kv.z, s[t][u]);
                s[t][u] = fmaf(qv[t].w, kv.w, s[t][u]);
            }
        }
    }

#pragma unroll
    for (int t = 0; t < TM; t++) {
        /* m_new = max(m_i, rowmax(S_ij)): over this thread's TN keys, then
         * across the 8 lanes that share the row. Masked scores are replaced,
         * never used: a NaN must reach only the rows that see it. */
        float mx = m_i[t];
#pragma unroll
        for (int u = 0; u < TN; u++) {
            float x = s[t][u] * scale;
            if (MASKED && col0 + g + 8 * u >= n_vis[t])
                x = -INFINITY;
            s[t][u] = x;
            mx = fmaxf(mx, x);
        }
        /* TODO(6.1): mx is this thread's max over its own keys; make it the
         * max over the 8 lanes that share the row (warp_allreduce_max<LANES>,
         * device/warp.cuh) — ~1 line */
        const float m_use = softmax_guard(mx); /* the -inf guard */
        /* exp(x) as exp2f(x · log2 e): one MUFU.EX2 (notes/06); s - m first. */
        /* TODO(6.2): alpha = e^{m_i - m_new}, the rescale factor (m_i[t] is
         * still the old max here), with exp2f (see above) — ~1 line */
        const float alpha = 1.0f;
        m_i[t] = mx;

        /* P_ij = exp(S_ij - m_new) into Ps, for P_ij V_j. l_i stays a partial
         * sum of this lane's keys: one shuffle sum at the end, not per block. */
        float ls = 0.0f;
#pragma unroll
        for (int u = 0; u < TN; u++) {
            const float pv = exp2f((s[t][u] - m_use) * LOG2E);
            ls += pv;
            Ps[(r_w + 4 * t) * LDP + g + 8 * u] = pv;
        }
        /* TODO(6.3): l_i = e^{m_i - m_new} l_i + rowsum (this thread's part),
         * and rescale this thread's O_i row by alpha — no division by l here
         * (that waits for the end) — ~4 lines */
        (void)ls, (void)alpha;
    }
    __syncwarp(); /* this warp's rows of P_ij are in Ps before its lanes read each other's keys */

    /* O_i += P_ij V_j: per 4 keys, 4 float4 of P and 4·TD float4 of V feed
     * 64·TD FMAs. A row's 8 lanes read 128 contiguous bytes of V: no pad. */
#pragma unroll 2
    for (int c = 0; c < BC; c += 4) {
        float4 pv[TM];
#pragma unroll
        for (int t = 0; t < TM; t++)
            pv[t] = *reinterpret_cast<const float4 *>(Ps + (r_w + 4 * t) * LDP + c);
#pragma unroll
        for (int cc = 0; cc < 4; cc++) {
            float4 vv[TD];
#pragma unroll
            for (int u = 0; u < TD; u++)
                vv[u] = *reinterpret_cast<const float4 *>(Vs + (c + cc) * LDV + 32 * u + 4 * g);
#pragma unroll
            for (int t = 0; t < TM; t++) {
                const float p = cc == 0 ? pv[t].x : cc == 1 ? pv[t].y : cc == 2 ? pv[t].z : pv[t].w;
                /* MASKED: P = 0 is not enough, 0 · NaN = NaN. */
                if (MASKED && col0 + c + cc >= n_vis[t])
                    continue;
#pragma unroll
                for (int u = 0; u < TD; u++) {
                    o_i[t][4 * u + 0] = fmaf(p, vv[u].x, o_i[t][4 * u + 0]);
                    o_i[t][4 * u + 1] = fmaf(p, vv[u].y, o_i[t][4 * u + 1]);
                    o_i[t][4 * u + 2] = fmaf(p, vv[u].z, o_i[t][4 * u + 2]);
                    o_i[t][4 * u + 3] = fmaf(p, vv[u].w, o_i[t][4 * u + 3]);
                }
            }
        }
    }
}

/**
 * The FlashAttention-2 forward, one thread block per (Q block, batch·head).
 *   q: [B, Hq, Sq, d]   k, v: [B, Hkv, Sk, d]   o: [B, Hq, Sq, d]
 *   lse: [B, Hq, Sq]
 * @p D: the tile's head dim (32, 64, 128), @p d <= D the problem's; @p NW
 * warps of 16 rows, Br = 16·NW. Consecutive blocks share a head (K/V in L2).
 * Shared memory (floats): Q_i [Br][D+4], K_j [Bc][D+4], V_j [Bc][D],
 * P_ij [Br][Bc+8].
 */
template <int D, int BC, int NW>
static __global__ void __launch_bounds__(32 * NW)
fa2_kernel(const float *__restrict__ q, const float *__restrict__ k,
           const float *__restrict__ v, float *__restrict__ o,
           float *__restrict__ lse, int hq, int hkv, int sq, int sk, int d,
           int causal, float scale, int vec, int tr)
{
    constexpr int BR = NW * WARP_ROWS, NT = 32 * NW; /* query rows, threads */
    constexpr int LDQ = D + 4, LDK = D + 4, LDV = D;
    extern __shared__ float4 smem_f4[]; /* float4: 16-byte aligned */
    float *Qs = reinterpret_cast<float *>(smem_f4);
    float *Ks = Qs + BR * LDQ;
    float *Vs = Ks + BC * LDK;
    float *Ps = Vs + BC * LDV;

    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int rg = lane / 8, g = lane % 8;
    /* TODO(6.4): the grid is (Q block, batch·head) flattened: blockIdx.x =
     * bh · Tr + i. Which head bh and which Q block i is this? For causal,
     * take the Q blocks in reverse order (the longest first) — ~3 lines */
    const int bh = 0, i = 0;
    const int b = bh / hq, h = bh % hq;
    const int hk = h / (hq / hkv); /* MQA/GQA: the K/V head this head reads */
    const float *q_bh = q + (size_t)bh * sq * d;
    const float *k_bh = k + ((size_t)b * hkv + hk) * sk * d;
    const float *v_bh = v + ((size_t)b * hkv + hk) * sk * d;
    float *o_bh = o + (size_t)bh * sq * d;
    const int row0 = i * BR;

    /* Causal: K/V blocks past what the block's last row sees are never loaded. */
    /* TODO(6.5): Tc = the number of K/V blocks this Q block must visit:
     * all of them without causal, up to the last key its last row sees
     * with it (keys_visible) — ~2 lines */
    const int Tc = 0;

    /* Q_i to shared memory, once for the whole loop. */
    load_tile<BR, D, LDQ, NT>(Qs, q_bh, row0, sq, d, vec);

    /* m_i, l_i, O_i in registers for the block's whole life. */
    float m_i[TM], l_i[TM] = {}, o_i[TM][D / 8] = {};
#pragma unroll
    for (int t = 0; t < TM; t++)
        m_i[t] = -INFINITY;

    for (int j = 0; j < Tc; j++) { /* the one loop: over K/V blocks */
        load_tile<BC, D, LDK, NT>(Ks, k_bh, j * BC, sk, d, vec);
        load_tile<BC, D, LDV, NT>(Vs, v_bh, j * BC, sk, d, vec);
        __syncthreads(); /* K_j, V_j (and Q_i) are complete in shared memory */
        /* Masked or not, once per block: does its first row see all of K_j? */
        if ((j + 1) * BC > keys_visible(row0, sq, sk, causal))
            block_step<D, BC, true>(Qs, Ks, Vs, Ps, m_i, l_i, o_i, warp, rg, g, row0, j * BC,
                                    sq, sk, causal, scale);
        else
            block_step<D, BC, false>(Qs, Ks, Vs, Ps, m_i, l_i, o_i, warp, rg, g, row0, j * BC,
                                     sq, sk, causal, scale);
        __syncthreads(); /* all reads done before the next loads overwrite the tiles */
    }

    /* The end: l_i = the sum of the row's 8 partial sums; O_i / l_i once, via
     * shared memory (Q_i's) for coalesced stores. No key: O = 0, LSE = -inf. */
    __syncthreads(); /* every warp is done reading Q_i (also when Tc = 0) */
    float *Os = Qs;
#pragma unroll
    for (int t = 0; t < TM; t++) {
        /* TODO(6.6): l = the row's l_i, summed over its 8 lanes
         * (warp_allreduce_sum<LANES>, device/warp.cuh); inv = 1 / l, or 0
         * for a row that saw no key (l == 0) — ~2 lines */
        const float l = l_i[t];
        const float inv = 1.0f;
        const int r = warp * WARP_ROWS + rg + 4 * t;
#pragma unroll
        for (int u = 0; u < D / 32; u++)
            *reinterpret_cast<float4 *>(Os + r * LDQ + 32 * u + 4 * g) =
                make_float4(o_i[t][4 * u] * inv, o_i[t][4 * u + 1] * inv,
                            o_i[t][4 * u + 2] * inv, o_i[t][4 * u + 3] * inv);
        if (g == 0 && row0 + r < sq)
            lse[(size_t)bh * sq + row0 + r] = (l == 0.0f) ? -INFINITY : m_i[t] + logf(l);
    }
    __syncthreads(); /* every row of O_i is in Os before the write-back reads it */
    store_tile<BR, D, LDQ, NT>(o_bh, Os, row0, sq, d, vec);
}

#endif /* ATTN_STEP06_KERNEL_CUH */
