/**
 * @file steps/10_tc_pipeline/kernel.cuh
 * @brief Step 10's idea: step 09's kernel with its K/V copies in flight
 * while the tensor cores work. `cp.async` copies device memory straight
 * into the swizzled shared tiles (no registers, no waiting at the copy);
 * K and V live in S stages (two by default), so K_{j+1} and V_{j+1} arrive
 * while block j is computed, and K_j and V_j are waited for apart: S_ij
 * starts as soon as K_j has landed, V_j is needed only for P_ij V_j. O_i
 * leaves through shared memory in 16-byte rows.
 *
 *     grid over (Q block i, batch·head)   as in step 06
 *     Q_i, blocks 0 .. S−2 → in flight   cp.async; Q_i its own group
 *     for j in 0..Tc_i-1:
 *         wait K_j; barrier                  (common/device/pipeline.h counts the groups)
 *         block j+S−1 → in flight            into the stage block j−1 freed
 *         S_ij = Q_i K_jᵀ                   mma.sync, as in step 09
 *         m_new, P_ij, l_i, rescale O_i     the online softmax, as in step 09
 *         wait V_j; barrier
 *         O_i = O_i + P_ij V_j              mma.sync, P_ij from the S registers
 *     O_i / l_i → shared memory → 16-byte stores;  lse_i as in step 09
 *
 * Tails are copies with a source size of 0: the rows past Sk arrive as
 * zeros. Turing (sm_75) has no `cp.async`: there the same calls copy
 * synchronously and the pipeline has one stage (common/device/cp_async.cuh).
 *
 * The launch (tile choice, shared memory, the sm_75 path, the entry point)
 * is in launch.cu; notes/10_tc_pipeline.md draws the pipeline as a timeline.
 */
#ifndef ATTN_STEP10_KERNEL_CUH
#define ATTN_STEP10_KERNEL_CUH

#include "attn.h"
#include "device/cp_async.cuh"
#include "device/ldmatrix.cuh"
#include "device/mma.cuh"
#include "device/pipeline.h"
#include "device/softmax.cuh"
#include "device/visibility.cuh"
#include "device/warp.cuh"

/** Query rows per warp: the M of one m16n8k16. A block of NW warps owns Br = 16·NW rows. */
#define WARP_ROWS 16
/** Keys per K/V block: Bc/8 accumulator tiles of S per warp, Bc/16 k-steps of PV;
 *  32 at D = 256, where two stages of 64 keys would take 128 KiB. */
template <int D> constexpr int kBc = D == 256 ? 32 : 64;
#ifndef ATTN10_STAGES
#define ATTN10_STAGES 2 /**< stages of the copy pipeline on sm_80+; 1..4 to measure */
#endif
#if ATTN_HAVE_CP_ASYNC
#define STAGES ATTN10_STAGES /**< the stages this code runs (sm_75: 1, no cp.async) */
#else
#define STAGES 1 /**< the stages this code runs (sm_75: 1, no cp.async) */
#endif
/* Q_i's fragments stay in registers up to ATTN10_QREG_MAX_D; above it they
 * are read from shared memory at each k-step (registers for O_i instead):
 * at D = 256 they would take 64 registers of 255. */
#ifndef ATTN10_QREG_MAX_D
#if ATTN_HAVE_CP_ASYNC
#define ATTN10_QREG_MAX_D 128 /**< Q's fragments in registers up to this D (sm_80+) */
#else
#define ATTN10_QREG_MAX_D 64 /**< Q's fragments in registers up to this D (sm_75) */
#endif
#endif
#ifdef ATTN10_ONE_WAIT
#define ATTN10_K_WAIT (pipe_wait_k(STAGES) - 1) /**< the wait for K_j: for V_j too (a measurement build) */
#else
#define ATTN10_K_WAIT pipe_wait_k(STAGES) /**< the wait for K_j (pipeline.h) */
#endif
/** log2(e): exp(x) = exp2(x·log2 e), and exp2f is one MUFU instruction. */
#define LOG2E 1.4426950408889634f
/** ln(2): the LSE back from the log2 domain. */
#define LN2 0.6931471805599453f
#ifdef ATTN10_EXPF
#define EXP2(x) expf((x) * LN2) /**< 2^x through expf: what -DATTN10_EXPF measures */
#else
#define EXP2(x) exp2f(x) /**< 2^x: one MUFU.EX2 */
#endif

/**
 * One K/V block for this warp's 16 rows: S_ij on tensor cores, the online
 * softmax on its fragments, O_i += P_ij V_j on tensor cores.
 *   q_f: the A fragments of this warp's rows of Q_i, D/16 k-steps, when
 *        D ≤ ATTN10_QREG_MAX_D; above it they come from Qs [Br][D] (Q_i)
 *   Ks: [Bc][D] K_j   Vs: [Bc][D] V_j   (16-bit elements, swizzled_tile<D>)
 *   m_i, l_i: [2] the lane's two rows (g and g + 8 of the warp's 16); m_i
 *             the max of the raw scores; l_i partial, over the lane's own keys
 *   o_i: [D/8][4] the lane's part of O_i: D/8 accumulator tiles of 16×8
 * Lane 4g + t holds, of every 16×8 accumulator tile (S or O), rows g and
 * g + 8 and columns 2t, 2t + 1: element 2h + e is row g + 8h, column 2t + e.
 * MASKED: the block has keys some of these rows must not see (causal
 * diagonal, or keys past Sk); full blocks skip every mask test.
 * wait_v(): called between the softmax and P_ij V_j, it waits for V_j;
 * what it returns (did a masked V_j hold inf or NaN?), block_step returns.
 */
template <int D, bool BF16, bool MASKED, class WaitV>
static __device__ __forceinline__ int block_step(
    const uint32_t (&q_f)[D / 16][4], const uint16_t *Qs, const uint16_t *Ks, const uint16_t *Vs,
    float (&m_i)[2], float (&l_i)[2], float (&o_i)[D / 8][4], int warp, int g, int t, int row0,
    int col0, int sq, int sk, int causal, float scale_log2, WaitV &&wait_v)
{
    constexpr int BC = kBc<D>, NS = BC / 8; /* accumulator tiles of S per warp */
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
    for (int kk = 0; kk < D / 16; kk++) {
        uint32_t a[4]; /* Q_i's A fragment of k-step kk: kept, or read again (as in the kernel) */
        if constexpr (D <= ATTN10_QREG_MAX_D)
            memcpy(a, q_f[kk], sizeof a);
        else
            ldmatrix_x4<false>(a, Qs + Tile::at(warp * WARP_ROWS + lane % 16, 16 * kk + 8 * (lane / 16)));
#pragma unroll
        for (int n = 0; n < NS; n += 2) {
            uint32_t b[4];
            ldmatrix_x4<false>(b, Ks + Tile::at(8 * n + lane % 8 + 8 * (lane / 16),
                                                16 * kk + 8 * (lane / 8 % 2)));
            mma_m16n8k16<BF16>(s[n], a, {b[0], b[1]});
            mma_m16n8k16<BF16>(s[n + 1], a, {b[2], b[3]});
        }
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
        const float alpha = EXP2((m_i[h] - m_use) * scale_log2); /* e^{scale·(m_i - m_new)}; 0 from -inf */
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
                const float p = vis ? EXP2((s[n][2 * h + e] - m_use) * scale_log2) : 0.0f;
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

    const int v_bad = wait_v(); /* V_j has landed */

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
    return v_bad;
}

/**
 * The rare path of a masked block whose V_j held ±inf or NaN. Such values
 * were set to 0 in shared memory (sanitize_tile16): on a tensor
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
    for (int c = 0; c < kBc<D> && col0 + c < sk; c++)
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
 * or BSHD alike; LSE fp32 [B, Hq, Sq]). @p D: the head dim (32 … 256);
 * @p BF16: the element type (0: fp16, 1: bf16). blockDim.x / 32 warps of 16
 * rows each: Br = 16·NW, chosen at run time (launch.cu).
 * blockIdx.x = bh · Tr + i (causal: bh · Tr + Tr − 1 − i, the longest Q
 * blocks first), as in step 06. @p scale_log2 = scale · log2 e. @p vec:
 * every row stride a multiple of 8 elements and every tensor 16-byte
 * aligned (`cp.async` and 16-byte stores; else synchronous copies and
 * 16-bit stores).
 *
 * Shared memory (16-bit elements, swizzled_tile<D>, no padding): Q_i
 * [Br][D] (O_i on the way out), then STAGES × (K [Bc][D], V [Bc][D]).
 */
template <int D, bool BF16>
static __global__ void __launch_bounds__(256, 1)
fa2_kernel(const attn_params pp, float scale_log2, int vec, int tr)
{
    using Tile = swizzled_tile<D>;
    const int nt = blockDim.x, nw = nt / 32, br = nw * WARP_ROWS; /* threads, warps, query rows */
    extern __shared__ uint4 smem_u4[]; /* uint4: 16-byte aligned */
    uint16_t *Qs = reinterpret_cast<uint16_t *>(smem_u4);
    constexpr int BC = kBc<D>;
    uint16_t *const KVs = Qs + br * D; /* stage s: K at KVs + 2s·Bc·D, V Bc·D on */

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
#ifdef ATTN10_NO_SKIP /* a measurement build: every block, the masked ones computed as zeros */
    const int Tc = (sk + BC - 1) / BC;
    (void)last_row;
#else
    const int Tc = (keys_visible(last_row, sq, sk, causal) + BC - 1) / BC;
#endif

    /* Block kb's K and V into stage pipe_stage(kb), one group each; past
     * the last block, two empty groups (pipeline.h). Without 16-byte
     * alignment, synchronous copies into the same places. */
    auto issue = [&](int kb) {
        uint16_t *Ks = KVs + 2 * pipe_stage(kb, STAGES) * BC * D;
        if (kb < Tc && vec)
            copy_tile_async<D, Tile>(Ks, k_bh, pp.k.stride_s, BC, kb * BC, sk, tid, nt);
        else if (kb < Tc)
            load_tile16<BF16, D, Tile>(Ks, k_bh, pp.k.stride_s, BC, kb * BC, sk, 0, false, tid, nt);
        cp_async_commit();
        if (kb < Tc && vec)
            copy_tile_async<D, Tile>(Ks + BC * D, v_bh, pp.v.stride_s, BC, kb * BC, sk, tid, nt);
        else if (kb < Tc)
            load_tile16<BF16, D, Tile>(Ks + BC * D, v_bh, pp.v.stride_s, BC, kb * BC, sk, 0, false, tid, nt);
        cp_async_commit();
    };

    /* Q_i to shared memory (its own group), blocks 0 .. STAGES − 2 in
     * flight behind it; then, D ≤ ATTN10_QREG_MAX_D, Q_i once into
     * registers as A fragments: q_f[kk] = rows r_w, r_w + 8 of head-dim
     * columns 16kk .. 16kk + 15, one x4: lane l points at row l % 16,
     * columns 16kk + 8·(l / 16). */
    if (vec)
        copy_tile_async<D, Tile>(Qs, q_bh, pp.q.stride_s, br, row0, sq, tid, nt);
    else
        load_tile16<BF16, D, Tile>(Qs, q_bh, pp.q.stride_s, br, row0, sq, 0, false, tid, nt);
    cp_async_commit();
    for (int kb = 0; kb < STAGES - 1; kb++)
        issue(kb);
    cp_async_wait<2 * (STAGES - 1)>();
    __syncthreads();
    uint32_t q_f[D / 16][4];
    if constexpr (D <= ATTN10_QREG_MAX_D)
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++)
            ldmatrix_x4<false>(q_f[kk], Qs + Tile::at(warp * WARP_ROWS + lane % 16, 16 * kk + 8 * (lane / 16)));

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
        uint16_t *Ks = KVs + 2 * pipe_stage(j, STAGES) * BC * D, *Vs = Ks + BC * D;
        if (STAGES == 1) { /* nothing in flight: copy block j now, once all are done with j − 1 */
            __syncthreads();
            issue(j);
        }
        cp_async_wait<ATTN10_K_WAIT>(); /* this thread's copies of K_j have landed */
        __syncthreads();                 /* everyone's; and all warps are done with block j − 1 */
        if (STAGES > 1)
            issue(pipe_issue_block(j, STAGES)); /* into the stage block j − 1 freed */
        /* Between the softmax and P_ij V_j: V_j landed, visible to all, and
         * (masked blocks only) cleared of inf and NaN, which a masked key's
         * P = 0 would turn into NaN on a tensor core. */
        auto wait_v = [&] {
            cp_async_wait<pipe_wait_v(STAGES)>();
            const bool bad = masked && sanitize_tile16<BF16, D, Tile>(Vs, BC, tid, nt);
            return __syncthreads_or(bad);
        };
        if (masked) {
            const int v_bad = block_step<D, BF16, true>(q_f, Qs, Ks, Vs, m_i, l_i, o_i, warp, g, t,
                                                        row0, j * BC, sq, sk, causal, scale_log2, wait_v);
            if (v_bad)
                add_nonfinite_v<D, BF16>(o_i, v_bh, pp.v.stride_s, warp * WARP_ROWS + g, t, row0,
                                         j * BC, sq, sk, causal);
        } else {
            block_step<D, BF16, false>(q_f, Qs, Ks, Vs, m_i, l_i, o_i, warp, g, t, row0, j * BC, sq,
                                       sk, causal, scale_log2, wait_v);
        }
    }

    /* The end of the row: l_i summed over the row's 4 lanes, O_i / l_i
     * rounded to the output type into the warp's own rows of Q_i's tile
     * (no other warp reads them; this one has), lse_i = (m_i·c + log2 l_i)·ln 2. A row
     * that saw no key has l_i = 0 and O_i = 0: O = 0, LSE = -inf. */
    __syncwarp();
#pragma unroll
    for (int hh = 0; hh < 2; hh++) {
        const float l = warp_allreduce_sum<4>(l_i[hh]);
        const float inv = (l == 0.0f) ? 0.0f : 1.0f / l;
        const int row = row0 + warp * WARP_ROWS + g + 8 * hh;
#pragma unroll
        for (int n = 0; n < D / 8; n++)
            *reinterpret_cast<uint32_t *>(Qs + Tile::at(warp * WARP_ROWS + g + 8 * hh, 8 * n + 2 * t)) =
                pack2<BF16>(o_i[n][2 * hh] * inv, o_i[n][2 * hh + 1] * inv);
        if (row >= sq)
            continue;
        if (t == 0)
            pp.lse[(size_t)bh * sq + row] = (l == 0.0f) ? -INFINITY : (m_i[hh] * scale_log2 + log2f(l)) * LN2;
    }
    /* The warp's 16 rows of O_i out, a row's 16-byte chunks by consecutive
     * lanes: whole 32-byte sectors, where the fragments wrote 4 bytes a lane. */
    __syncwarp();
    for (int c = lane; c < WARP_ROWS * (D / 8); c += 32) {
        const int r = warp * WARP_ROWS + c / (D / 8), col = c % (D / 8) * 8;
        if (row0 + r >= sq)
            break;
        const uint16_t *src = Qs + Tile::at(r, col);
        uint16_t *dst = o_bh + (int64_t)(row0 + r) * pp.o.stride_s + col;
        if (vec)
            *reinterpret_cast<uint4 *>(dst) = *reinterpret_cast<const uint4 *>(src);
        else
            for (int e = 0; e < 8; e++)
                dst[e] = src[e];
    }
}

#endif /* ATTN_STEP10_KERNEL_CUH */
