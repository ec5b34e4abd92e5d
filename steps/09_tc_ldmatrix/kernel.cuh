/**
 * @file steps/09_tc_ldmatrix/kernel.cuh
 * @brief Step 09's idea: step 08's tensor-core kernel with its operand
 * fragments loaded by `ldmatrix` (`.trans` for V) from shared tiles whose
 * 16-byte chunks are XOR-swizzled by row, so that neither the copies into
 * them nor the `ldmatrix` reads conflict on banks.
 *
 * One `ldmatrix.x4` fills the B fragments of two mma, where step 08 made
 * 2 (K) or 4 (V) shared loads per mma from tiles padded to D + 8 columns;
 * the tiles are D wide now, swizzled (common/device/swizzle.h). The loop
 * is step 08's:
 *
 *     grid over (Q block i, batch·head)   as in step 06
 *     Q_i → shared memory → registers, once: the A fragments of Q_i
 *     for j in 0..Tc_i-1:
 *         K_j, V_j → shared memory          16-bit elements now
 *         S_ij = Q_i K_jᵀ                   mma.sync: per warp 16 rows × Bc keys,
 *                                           Bc/8 accumulator tiles of 16×8
 *         m_new = max(m_i, rowmax(S_ij))    over the 4 lanes that share a fragment row
 *         P_ij = 2^((S_ij - m_new)·c)       base 2, c = scale·log2 e: the scale folded in
 *         l_i = 2^((m_i - m_new)·c) l_i + rowsum(P_ij)
 *         O_i = 2^((m_i - m_new)·c) O_i + P_ij V_j    mma.sync, A = P_ij straight from
 *                                                 the S accumulators, rounded to fp16/bf16
 *         m_i = m_new
 *     O_i = O_i / l_i,  lse_i = (m_i·c + log2 l_i)·ln 2     once, at the end
 *
 * S_ij is never multiplied by the scale on its own: c carries it into the
 * exponent. The LSE is turned back into the natural log, the contract of
 * every step. The fragment layouts are in common/device/mma.cuh;
 * notes/08_tc_mma.md draws them.
 *
 * The launch (tile choice, shared memory, the sm_75 path, the entry point)
 * is in launch.cu.
 */
#ifndef ATTN_STEP09_KERNEL_CUH
#define ATTN_STEP09_KERNEL_CUH

#include "attn.h"
#include "device/ldmatrix.cuh"
#include "device/mma.cuh"
#include "device/softmax.cuh"
#include "device/visibility.cuh"
#include "device/warp.cuh"

/** Query rows per warp: the M of one m16n8k16. A block of NW warps owns Br = 16·NW rows. */
#define WARP_ROWS 16
/** Keys per K/V block: Bc/8 accumulator tiles of S per warp, Bc/16 k-steps of PV. */
#define BC 64
/** log2(e): exp(x) = exp2(x·log2 e), and exp2f is one MUFU instruction. */
#define LOG2E 1.4426950408889634f
/** ln(2): the LSE back from the log2 domain. */
#define LN2 0.6931471805599453f

/**
 * One K/V block for this warp's 16 rows: S_ij on tensor cores, the online
 * softmax on its fragments, O_i += P_ij V_j on tensor cores.
 *   q_f: the A fragments of this warp's rows of Q_i, D/16 k-steps
 *   Ks: [Bc][D] K_j   Vs: [Bc][D] V_j   (16-bit elements, swizzled_tile<D>)
 *   m_i, l_i: [2] the lane's two rows (g and g + 8 of the warp's 16); m_i
 *             the max of the raw scores; l_i partial, over the lane's own keys
 *   o_i: [D/8][4] the lane's part of O_i: D/8 accumulator tiles of 16×8
 * Lane 4g + t holds, of every 16×8 accumulator tile (S or O), rows g and
 * g + 8 and columns 2t, 2t + 1: element 2h + e is row g + 8h, column 2t + e.
 * MASKED: the block has keys some of these rows must not see (causal
 * diagonal, or keys past Sk); full blocks skip every mask test.
 */
template <int D, bool BF16, bool MASKED>
static __device__ __forceinline__ void block_step(
    const uint32_t (&q_f)[D / 16][4], const uint16_t *Ks, const uint16_t *Vs, float (&m_i)[2],
    float (&l_i)[2], float (&o_i)[D / 8][4], int warp, int g, int t, int row0, int col0, int sq,
    int sk, int causal, float scale_log2)
{
    constexpr int NS = BC / 8; /* accumulator tiles of S per warp */
    using Tile = swizzled_tile<D>;
    const int lane = 4 * g + t;
    const int r_w = warp * WARP_ROWS + g; /* the lane's first row in the block; rows r_w + 8h */
    int n_vis[2]; /* MASKED: keys row r_w + 8h sees (it sees key c when c < n_vis) */
#pragma unroll
    for (int h = 0; h < 2; h++)
        n_vis[h] = MASKED ? keys_visible(row0 + r_w + 8 * h, sq, sk, causal) : sk;

    /* S_ij = Q_i K_jᵀ on tensor cores. For k-step kk (head-dim columns
     * 16kk .. 16kk + 15) and key tile n (keys 8n .. 8n + 7) the B fragment
     * is Kᵀ: b[0] = K[8n + g][16kk + 2t, +1], b[1] 8 columns on: two 8×8
     * matrices of K as `ldmatrix` delivers them. One x4 loads key tiles n,
     * n + 1: lane l points at key 8n + l % 8 + 8·(l / 16), column
     * 16kk + 8·(l / 8 % 2). */
    float s[NS][4];
#pragma unroll
    for (int n = 0; n < NS; n++)
#pragma unroll
        for (int e = 0; e < 4; e++)
            s[n][e] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)
#pragma unroll
        for (int n = 0; n < NS; n += 2) {
            uint32_t b[4];
            ldmatrix_x4<false>(b, Ks + Tile::at(8 * n + lane % 8 + 8 * (lane / 16),
                                                16 * kk + 8 * (lane / 8 % 2)));
            mma_m16n8k16<BF16>(s[n], q_f[kk], {b[0], b[1]});
            mma_m16n8k16<BF16>(s[n + 1], q_f[kk], {b[2], b[3]});
        }

#pragma unroll
    for (int h = 0; h < 2; h++) {
        /* m_new = max(m_i, rowmax(S_ij)), on the raw scores (the scale
         * is > 0, so the max commutes with it): first over the lane's 2·NS
         * keys of row g + 8h, then across the 4 lanes of the row's group
         * (4g .. 4g + 3: xor 2, 1 stays inside them). Masked scores are
         * replaced, not computed with: a NaN key row must not reach rows
         * that do not see it. */
        float mx = m_i[h];
#pragma unroll
        for (int n = 0; n < NS; n++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const float x = s[n][2 * h + e];
                mx = fmaxf(mx, MASKED && col0 + 8 * n + 2 * t + e >= n_vis[h] ? -INFINITY : x);
            }
        mx = warp_allreduce_max<4>(mx);
        const float m_use = softmax_guard(mx);
        const float alpha = exp2f((m_i[h] - m_use) * scale_log2); /* e^{scale·(m_i - m_new)}; 0 from -inf */
        m_i[h] = mx;

        /* P_ij = e^{scale·(S_ij - m_new)} = 2^{(S_ij - m_new)·c}, c = scale·log2 e:
         * the scale folded into log2 e, one multiply and one MUFU.EX2. The
         * difference is taken first, so the row's max gets exactly 2^0 = 1
         * and logits of 1e4 keep their precision (an FFMA S·c − m_new·c
         * leaves the rounding of m_new·c, up to 5e-4 at 1e4, in every P).
         * P stays in the S registers: they are the next product's A. */
        float ls = 0.0f;
#pragma unroll
        for (int n = 0; n < NS; n++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const bool vis = !MASKED || col0 + 8 * n + 2 * t + e < n_vis[h];
                const float p = vis ? exp2f((s[n][2 * h + e] - m_use) * scale_log2) : 0.0f;
                s[n][2 * h + e] = p;
                ls += p;
            }
        l_i[h] = alpha * l_i[h] + ls; /* l_i sums the unrounded P */
#pragma unroll
        for (int n = 0; n < D / 8; n++) {
            o_i[n][2 * h] *= alpha;
            o_i[n][2 * h + 1] *= alpha;
        }
    }

    /* O_i += P_ij V_j on tensor cores, P_ij never leaving registers. The A
     * fragment of keys 16kk .. 16kk + 15 is two S tiles side by side:
     *   a[0] = P[g][16kk + 2t, +1]      = tile 2kk,     elements 0, 1
     *   a[1] = P[g + 8][16kk + 2t, +1]  = tile 2kk,     elements 2, 3
     *   a[2] = P[g][16kk + 8 + 2t, +1]  = tile 2kk + 1, elements 0, 1
     *   a[3] = P[g + 8][16kk + 8 + 2t, +1] = tile 2kk + 1, elements 2, 3
     * the accumulator's (row, column) for each lane is exactly the A
     * operand's, so the only work is rounding two floats into one register.
     * B is V: b[0] = V[16kk + 2t, +1][8n + g], b[1] 8 keys on: 8×8
     * matrices of V transposed, as `ldmatrix.trans` delivers them. One x4
     * loads column tiles n, n + 1: lane l points at key 16kk + l % 8 +
     * 8·(l / 8 % 2), column 8n + 8·(l / 16). */
#pragma unroll
    for (int kk = 0; kk < BC / 16; kk++) {
        const uint32_t a[4] = {pack2<BF16>(s[2 * kk][0], s[2 * kk][1]),
                               pack2<BF16>(s[2 * kk][2], s[2 * kk][3]),
                               pack2<BF16>(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                               pack2<BF16>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
        for (int n = 0; n < D / 8; n += 2) {
            uint32_t b[4];
            ldmatrix_x4<true>(b, Vs + Tile::at(16 * kk + lane % 8 + 8 * (lane / 8 % 2),
                                               8 * n + 8 * (lane / 16)));
            mma_m16n8k16<BF16>(o_i[n], a, {b[0], b[1]});
            mma_m16n8k16<BF16>(o_i[n + 1], a, {b[2], b[3]});
        }
    }
}

/**
 * The rare path of a masked block whose V_j held ±inf or NaN. Such values
 * were stored as 0 in shared memory (load_tile16's sanitize): on a tensor
 * core a masked key's P = 0 still meets its V, and 0 · NaN is NaN. Here
 * they are added back, from device memory, to the rows that see their key
 * and to no other: a NaN in V row j reaches exactly the O rows that see
 * key j. An infinity is added as it is (as if its P were > 0).
 */
template <int D, bool BF16>
static __device__ __forceinline__ void add_nonfinite_v(float (&o_i)[D / 8][4], const uint16_t *v_bh,
                                                    int64_t v_ss, int r_w, int t, int row0,
                                                    int col0, int sq, int sk, int causal)
{
    for (int c = 0; c < BC && col0 + c < sk; c++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            if (col0 + c >= keys_visible(row0 + r_w + 8 * h, sq, sk, causal))
                continue;
#pragma unroll
            for (int n = 0; n < D / 8; n++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const uint16_t x = v_bh[(int64_t)(col0 + c) * v_ss + 8 * n + 2 * t + e];
                    if (bits_nonfinite<BF16>(x))
                        o_i[n][2 * h + e] += bits_to_float<BF16>(x);
                }
        }
}

/**
 * The FlashAttention-2 forward on tensor cores, one thread block per
 * (Q block, batch·head). Tensors, types and strides come from @p pp (BHSD
 * or BSHD alike; LSE fp32 [B, Hq, Sq]). @p D: the head dim (32, 64, 128);
 * @p BF16: the element type (0: fp16, 1: bf16). blockDim.x / 32 warps of 16
 * rows each: Br = 16·NW, chosen at run time (launch.cu).
 * blockIdx.x = bh · Tr + i (causal: bh · Tr + Tr − 1 − i, the longest Q
 * blocks first), as in step 06. @p scale_log2 = scale · log2 e. @p vec:
 * every row stride a multiple of 8 elements and every tensor 16-byte
 * aligned (16-byte loads, 32-bit stores).
 *
 * Shared memory (16-bit elements, swizzled_tile<D>, no padding): Q_i
 * [Br][D], K_j [Bc][D], V_j [Bc][D]. No P_ij buffer: P stays in registers.
 */
template <int D, bool BF16>
static __global__ void __launch_bounds__(256, 1)
fa2_kernel(const attn_params pp, float scale_log2, int vec, int tr)
{
    using Tile = swizzled_tile<D>;
    const int nt = blockDim.x, nw = nt / 32, br = nw * WARP_ROWS; /* threads, warps, query rows */
    extern __shared__ uint4 smem_u4[]; /* uint4: 16-byte aligned */
    uint16_t *Qs = reinterpret_cast<uint16_t *>(smem_u4);
    uint16_t *Ks = Qs + br * D;
    uint16_t *Vs = Ks + BC * D;

    const int hq = pp.prob.heads_q, hkv = pp.prob.heads_kv;
    const int sq = pp.prob.seqlen_q, sk = pp.prob.seqlen_k, causal = pp.prob.causal;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int g = lane / 4, t = lane % 4;
    const int bh = blockIdx.x / tr, b = bh / hq, h = bh % hq;
    const int i = causal ? tr - 1 - blockIdx.x % tr : blockIdx.x % tr;
    const int hk = h / (hq / hkv); /* MQA/GQA: the K/V head this head reads */
    /* Where this head's rows live, by the strides of the descriptor. */
    const uint16_t *q_bh = static_cast<const uint16_t *>(pp.q.data) + b * pp.q.stride_b + h * pp.q.stride_h;
    const uint16_t *k_bh = static_cast<const uint16_t *>(pp.k.data) + b * pp.k.stride_b + hk * pp.k.stride_h;
    const uint16_t *v_bh = static_cast<const uint16_t *>(pp.v.data) + b * pp.v.stride_b + hk * pp.v.stride_h;
    uint16_t *o_bh = static_cast<uint16_t *>(pp.o.data) + b * pp.o.stride_b + h * pp.o.stride_h;
    const int row0 = i * br;

    const int last_row = (row0 + br < sq ? row0 + br : sq) - 1;
    const int Tc = (keys_visible(last_row, sq, sk, causal) + BC - 1) / BC;

    /* Q_i to shared memory, then once into registers as A fragments:
     * q_f[kk] = rows r_w, r_w + 8 of head-dim columns 16kk .. 16kk + 15,
     * one x4: lane l points at row l % 16, columns 16kk + 8·(l / 16). */
    load_tile16<BF16, D, Tile>(Qs, q_bh, pp.q.stride_s, br, row0, sq, vec, false, tid, nt);
    __syncthreads();
    uint32_t q_f[D / 16][4];
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)
        ldmatrix_x4<false>(q_f[kk],
                           Qs + Tile::at(warp * WARP_ROWS + lane % 16, 16 * kk + 8 * (lane / 16)));

    /* m_i, l_i, O_i in registers for the block's whole life: fp32. */
    float m_i[2], l_i[2], o_i[D / 8][4];
#pragma unroll
    for (int r = 0; r < 2; r++) {
        m_i[r] = -INFINITY;
        l_i[r] = 0.0f;
    }
#pragma unroll
    for (int n = 0; n < D / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++)
            o_i[n][e] = 0.0f;

    for (int j = 0; j < Tc; j++) { /* the one loop: over K/V blocks */
        const int masked = (j + 1) * BC > sk ||
                           (causal && (j + 1) * BC > keys_visible(row0, sq, sk, causal));
        load_tile16<BF16, D, Tile>(Ks, k_bh, pp.k.stride_s, BC, j * BC, sk, vec, false, tid, nt);
        const bool bad =
            load_tile16<BF16, D, Tile>(Vs, v_bh, pp.v.stride_s, BC, j * BC, sk, vec, masked, tid, nt);
        /* K_j, V_j complete in shared memory; and did any masked V hold inf or NaN? */
        const int v_bad = __syncthreads_or(bad);
        if (masked) {
            block_step<D, BF16, true>(q_f, Ks, Vs, m_i, l_i, o_i, warp, g, t, row0, j * BC, sq,
                                      sk, causal, scale_log2);
            if (v_bad)
                add_nonfinite_v<D, BF16>(o_i, v_bh, pp.v.stride_s, warp * WARP_ROWS + g, t, row0,
                                         j * BC, sq, sk, causal);
        } else {
            block_step<D, BF16, false>(q_f, Ks, Vs, m_i, l_i, o_i, warp, g, t, row0, j * BC, sq,
                                       sk, causal, scale_log2);
        }
        __syncthreads(); /* all warps are done with K_j, V_j before the next pass overwrites them */
    }

    /* The end of the row: l_i summed over the row's 4 lanes, O_i / l_i
     * rounded to the output type, lse_i = (m_i·c + log2 l_i)·ln 2. A row that
     * saw no key has l_i = 0 and O_i = 0: O = 0, LSE = -inf. */
#pragma unroll
    for (int hh = 0; hh < 2; hh++) {
        const float l = warp_allreduce_sum<4>(l_i[hh]);
        const float inv = (l == 0.0f) ? 0.0f : 1.0f / l;
        const int row = row0 + warp * WARP_ROWS + g + 8 * hh;
        if (row >= sq)
            continue;
        uint16_t *o_row = o_bh + (int64_t)row * pp.o.stride_s;
#pragma unroll
        for (int n = 0; n < D / 8; n++) {
            const uint32_t x = pack2<BF16>(o_i[n][2 * hh] * inv, o_i[n][2 * hh + 1] * inv);
            if (vec) {
                *reinterpret_cast<uint32_t *>(o_row + 8 * n + 2 * t) = x;
            } else {
                o_row[8 * n + 2 * t] = (uint16_t)(x & 0xffffu);
                o_row[8 * n + 2 * t + 1] = (uint16_t)(x >> 16);
            }
        }
        if (t == 0)
            pp.lse[(size_t)bh * sq + row] = (l == 0.0f) ? -INFINITY : (m_i[hh] * scale_log2 + log2f(l)) * LN2;
    }
}

#endif /* ATTN_STEP09_KERNEL_CUH */
