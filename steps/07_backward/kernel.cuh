/**
 * @file steps/07_backward/kernel.cuh
 * @brief Step 07's idea: the FlashAttention-2 backward — P rebuilt from Q, K and
 * the forward's LSE, grid over (K/V block, batch·Hkv), no N×N buffer.
 *
 * **What this step adds over step 06.** Gradients. The forward (step 06)
 * saved O and LSE but not P; this kernel rebuilds P block by block from
 * Q, K and LSE — more FLOPs, far fewer bytes (notes/07_backward.md):
 *
 *     δ_i = rowsum(dO_i ∘ O_i)              delta_kernel, one warp per row
 *     grid over (K/V block j, batch·Hkv):   bwd_kv_kernel
 *         K_j, V_j → shared memory; dK_j = dV_j = 0 in registers
 *         for each query head of this K/V head (GQA), each Q block i:
 *             Q_i, dO_i, LSE_i, δ_i → shared memory
 *             S_ij  = scale · Q_i K_jᵀ      recomputed
 *             P_ij  = exp(S_ij − LSE_i)     recomputed: no max, no sum
 *             dP_ij = dO_i V_jᵀ
 *             dS_ij = P_ij ∘ (dP_ij − δ_i)
 *             dV_j += P_ijᵀ dO_i,  dK_j += dS_ijᵀ Q_i   (registers)
 *             dQ_i += scale · dS_ij K_j     atomicAdd to device memory
 *         dK_j = scale · dK_j, dV_j → device memory, once
 *
 * The loop order is the forward's turned inside out: a block owns a K/V
 * block, so dK_j and dV_j stay in registers for the whole loop and need no
 * atomics. The launch (tiles, shared memory, the two modes, the entry
 * point) is in launch.cu; the same algorithm on the CPU is
 * backward_cpu.c.
 */
#ifndef ATTN_STEP07_KERNEL_CUH
#define ATTN_STEP07_KERNEL_CUH

#include "device/tiles.cuh"
#include "device/visibility.cuh"
#include "device/warp.cuh"

#define NT 256       /**< threads per block: 16 × 16 */
#define BR 32        /**< Br: rows of a Q block */

/** The row stride of a shared tile of head dim D, in floats: D + 4.
 * Tiles [R][D + 4] (load_tile(), common/device/tiles.cuh) with scalar
 * loads: consecutive threads read consecutive floats of a row (coalesced).
 * The +4 pad keeps rows 16-byte aligned for float4 reads and shifts each
 * row by 4 banks, so 8 consecutive rows read with float4 at one column
 * cover all 32 banks. */
#define LD_TILE(D) ((D) + 4)

/**
 * δ_i = rowsum(dO_i ∘ O_i), one warp per row.
 *   o, dout: [R, d] (R = B·Hq·Sq rows)   delta: [R]
 * Equal to rowsum(P_i ∘ dP_i) (notes/07): one dot product of length D per
 * row instead of one of length Sk.
 */
static __global__ void delta_kernel(const float *__restrict__ o, const float *__restrict__ dout,
                                    float *__restrict__ delta, size_t rows, int d)
{
    const size_t row = (size_t)blockIdx.x * (NT / 32) + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (row >= rows)
        return; /* whole warps leave together: the shuffles below see full warps */
    float acc = 0.0f;
    for (int c = lane; c < d; c += 32)
        acc += o[row * d + c] * dout[row * d + c];
    acc = warp_allreduce_sum<32>(acc);
    if (lane == 0)
        delta[row] = acc;
}

/**
 * The thread layout of the three products that write D-wide rows (dV_j and
 * dK_j, dQ_i): TXC threads across the head dim, each owning CC float4
 * column groups 4·tx + 64·cc; TY = 256 / TXC threads down the rows.
 *   D = 32:  TXC = 8,  CC = 1, TY = 32     D = 64:  TXC = 16, CC = 1, TY = 16
 *   D = 128: TXC = 16, CC = 2, TY = 16
 * A float4 column group read by the TXC threads of a row is contiguous
 * (conflict-free); the rows a warp's threads own are 2 (or 4) broadcasts.
 */
template <int D>
struct Cols {
    static constexpr int TXC = D / 4 < 16 ? D / 4 : 16; /**< threads across the head dim */
    static constexpr int CC = D / (4 * TXC);             /**< float4 column groups per thread */
    static constexpr int TY = NT / TXC;                  /**< threads down the rows */
    /** Rows of a K/V block in bwd_kv_kernel. */
    static constexpr int BC_KV = 64;
    /** Rows of a K/V block in dq_kernel: 64, but 32 at D = 128, where its
     *  shared memory then fits two blocks per SM instead of one (notes/07,
     *  "What limits it": the dQ kernel gains 25%; the main kernel, tried the
     *  same way, does not). */
    static constexpr int BC_DQ = D == 128 ? 32 : 64;
    /** dq_kernel's minimum blocks per SM (__launch_bounds__): 2 at D = 128
     *  (at most 128 registers a thread); 0, no minimum, elsewhere. */
    static constexpr int MIN_BLOCKS_DQ = D == 128 ? 2 : 0;
};

/**
 * The shared middle of both kernels: with Q_i, dO_i, LSE_i, δ_i, K_j, V_j in
 * shared memory, write P_ij and dS_ij = P_ij ∘ (dP_ij − δ_i), transposed,
 * to PsT, dSsT.
 *   Qs, dOs: [BR][D+4]   Ks, Vs: [BC][D+4]   lse_s, delta_s: [BR]
 *   PsT, dSsT: [BC][BR+4] (key-major: the dV/dK loop reads 4 rows of one key
 *   as a float4; PsT may be NULL: dq_kernel needs dS only)
 * Thread (ty, tx) = (tid / 16, tid % 16) owns rows ty + 16a (a < 2) and
 * keys tx + 16b (b < NB = BC / 16): per 4 head-dim columns, 2 + 2 broadcast
 * float4 reads of Q and dO and NB + NB conflict-free float4 reads of K and
 * V feed 16·NB FMAs (NB = 4: 64 FMAs per 12 reads; NB = 2: 32 per 8).
 * A (row, key) the row does not see, a row past Sq, a row with LSE = −inf:
 * P = dS = 0, chosen, not multiplied (0 · NaN would be NaN).
 */
template <int D, int BC>
static __device__ __forceinline__ void compute_p_ds(const float *Qs, const float *dOs,
                                                    const float *Ks, const float *Vs,
                                                    const float *lse_s, const float *delta_s,
                                                    float *PsT, float *dSsT, int i0, int j0,
                                                    int sq, int sk, int causal, float scale)
{
    constexpr int LD = D + 4, LDT = BR + 4, NB = BC / 16; /* keys per thread */
    const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
    float s[2][NB], dp[2][NB];
#pragma unroll
    for (int a = 0; a < 2; a++)
#pragma unroll
        for (int b = 0; b < NB; b++)
            s[a][b] = dp[a][b] = 0.0f;
#pragma unroll 2
    for (int kk = 0; kk < D; kk += 4) {
        float4 qa[2], oa[2], kb[NB], vb[NB];
#pragma unroll
        for (int a = 0; a < 2; a++) {
            qa[a] = *reinterpret_cast<const float4 *>(Qs + (ty + 16 * a) * LD + kk);
            oa[a] = *reinterpret_cast<const float4 *>(dOs + (ty + 16 * a) * LD + kk);
        }
#pragma unroll
        for (int b = 0; b < NB; b++) {
            kb[b] = *reinterpret_cast<const float4 *>(Ks + (tx + 16 * b) * LD + kk);
            vb[b] = *reinterpret_cast<const float4 *>(Vs + (tx + 16 * b) * LD + kk);
        }
#pragma unroll
        for (int a = 0; a < 2; a++)
#pragma unroll
            for (int b = 0; b < NB; b++) {
                /* S_ij = Q_i K_jᵀ and dP_ij = dO_i V_jᵀ, 4 columns at a time */
                s[a][b] = fmaf(qa[a].x, kb[b].x, s[a][b]);
                s[a][b] = fmaf(qa[a].y, kb[b].y, s[a][b]);
                s[a][b] = fmaf(qa[a].z, kb[b].z, s[a][b]);
                s[a][b] = fmaf(qa[a].w, kb[b].w, s[a][b]);
                dp[a][b] = fmaf(oa[a].x, vb[b].x, dp[a][b]);
                dp[a][b] = fmaf(oa[a].y, vb[b].y, dp[a][b]);
                dp[a][b] = fmaf(oa[a].z, vb[b].z, dp[a][b]);
                dp[a][b] = fmaf(oa[a].w, vb[b].w, dp[a][b]);
            }
    }
#pragma unroll
    for (int a = 0; a < 2; a++) {
        const int r = ty + 16 * a, row = i0 + r;
        const float l = lse_s[r], dl = delta_s[r];
        const int nvis = row < sq ? keys_visible(row, sq, sk, causal) : 0;
#pragma unroll
        for (int b = 0; b < NB; b++) {
            const int c = tx + 16 * b;
            const bool vis = j0 + c < nvis && l != -INFINITY;
            /* the recomputation: P_ij = exp(S_ij − LSE_i) */
            const float pv = vis ? expf(s[a][b] * scale - l) : 0.0f;
            const float ds = vis ? pv * (dp[a][b] - dl) : 0.0f;
            if (PsT)
                PsT[c * LDT + r] = pv;
            dSsT[c * LDT + r] = ds;
        }
    }
}

/**
 * acc[a][cc] += Σ_c dS_ij[r][c] · K_j[c][cols]: this thread's part of
 * dS_ij K_j, rows r = RA·ty + a (a < RA = BR/TY, adjacent, so one float2
 * or scalar read of dSsT gives all of them), columns 4·tx + 64·cc .. +3.
 * Per key: one dS read and CC float4 reads of K_j feed 4·RA·CC FMAs.
 * MASKED (a causal block the diagonal crosses): a key the row does not see
 * is skipped, not multiplied by its dS = 0 (0 · NaN is NaN: a NaN row of K
 * must not reach the dQ rows that do not see it).
 */
template <int D, int BC, bool MASKED>
static __device__ __forceinline__ void ds_times_k(const float *dSsT, const float *Ks,
                                                  float4 (&acc)[BR / Cols<D>::TY][Cols<D>::CC],
                                                  int i0, int j0, int sq, int sk)
{
    constexpr int LD = D + 4, LDT = BR + 4, TXC = Cols<D>::TXC, CC = Cols<D>::CC;
    constexpr int RA = BR / Cols<D>::TY;
    const int ty = threadIdx.x / TXC, tx = threadIdx.x % TXC;
    int nvis[RA]; /* keys of this block each of the thread's rows sees (MASKED only) */
#pragma unroll
    for (int a = 0; a < RA; a++) {
        const int row = i0 + RA * ty + a;
        nvis[a] = MASKED ? (row < sq ? keys_visible(row, sq, sk, 1) - j0 : 0) : BC;
    }
#pragma unroll 4
    for (int kc = 0; kc < BC; kc++) {
        float ds[RA];
        if (RA == 2) {
            const float2 x = *reinterpret_cast<const float2 *>(dSsT + kc * LDT + 2 * ty);
            ds[0] = x.x;
            ds[RA - 1] = x.y;
        } else {
            ds[0] = dSsT[kc * LDT + ty];
        }
#pragma unroll
        for (int cc = 0; cc < CC; cc++) {
            const float4 kv = *reinterpret_cast<const float4 *>(Ks + kc * LD + 4 * tx + 64 * cc);
#pragma unroll
            for (int a = 0; a < RA; a++) {
                if (MASKED && kc >= nvis[a])
                    continue;
                acc[a][cc].x = fmaf(ds[a], kv.x, acc[a][cc].x);
                acc[a][cc].y = fmaf(ds[a], kv.y, acc[a][cc].y);
                acc[a][cc].z = fmaf(ds[a], kv.z, acc[a][cc].z);
                acc[a][cc].w = fmaf(ds[a], kv.w, acc[a][cc].w);
            }
        }
    }
}

/** Does the causal diagonal cross the (Q block i0, K/V block j0) tile, so
 * that some row of it does not see some key of it? The first row sees the
 * fewest keys. (Rows past Sq and keys past Sk are zero tiles: no NaN.) */
static __device__ __forceinline__ bool tile_masked(int i0, int j0, int bc, int sq, int sk,
                                                   int causal)
{
    return causal && keys_visible(i0, sq, sk, 1) < min(j0 + bc, sk);
}

/** dS_ij K_j for one tile, into acc: the MASKED loop where the diagonal
 * crosses the tile, the plain one elsewhere. */
template <int D, int BC>
static __device__ __forceinline__ void ds_times_k_tile(const float *dSsT, const float *Ks,
                                                       float4 (&acc)[BR / Cols<D>::TY][Cols<D>::CC],
                                                       int i0, int j0, int sq, int sk, int causal)
{
    if (tile_masked(i0, j0, BC, sq, sk, causal))
        ds_times_k<D, BC, true>(dSsT, Ks, acc, i0, j0, sq, sk);
    else
        ds_times_k<D, BC, false>(dSsT, Ks, acc, i0, j0, sq, sk);
}

/** One float4 of a D-wide output row, columns col .. col+3 (< d), times
 * scale; atomically (dQ pieces) or plainly. */
template <bool ATOMIC>
static __device__ __forceinline__ void store4(float *row, int col, int d, float4 x, float scale)
{
    const float e[4] = {x.x * scale, x.y * scale, x.z * scale, x.w * scale};
#pragma unroll
    for (int t = 0; t < 4; t++)
        if (col + t < d) {
            if (ATOMIC)
                atomicAdd(row + col + t, e[t]);
            else
                row[col + t] = e[t];
        }
}

/**
 * dV_j += P_ijᵀ dO_i, dK_j += dS_ijᵀ Q_i, 4 query rows at a time: per key,
 * one float4 of P_ijᵀ and one of dS_ijᵀ (4 rows; broadcast), per row CC
 * float4 of dO_i and of Q_i (contiguous): 2·KA + 8·CC float4 reads feed
 * 32·KA·CC FMAs. Thread (ty, tx) owns keys ty + TY·a (a < KA), columns
 * 4·tx + 64·cc .. +3. MASKED (a causal tile the diagonal crosses): a row
 * that does not see the key is skipped, not multiplied by its P = dS = 0,
 * so a NaN row of Q reaches only the dK rows of keys it sees.
 */
template <int D, int BC, bool MASKED>
static __device__ __forceinline__ void
accumulate_dk_dv(const float *PsT, const float *dSsT, const float *Qs, const float *dOs,
                 float4 (&dk_acc)[BC / Cols<D>::TY][Cols<D>::CC],
                 float4 (&dv_acc)[BC / Cols<D>::TY][Cols<D>::CC], int i0, int j0, int sq, int sk)
{
    constexpr int LD = D + 4, LDT = BR + 4;
    constexpr int TXC = Cols<D>::TXC, CC = Cols<D>::CC, TY = Cols<D>::TY, KA = BC / TY;
    const int ty = threadIdx.x / TXC, tx = threadIdx.x % TXC;
#pragma unroll 1
    for (int r = 0; r < BR; r += 4) {
        int nvis[4]; /* keys of this block that rows r .. r+3 see (MASKED only) */
#pragma unroll
        for (int rr = 0; rr < 4; rr++) {
            const int row = i0 + r + rr;
            nvis[rr] = MASKED ? (row < sq ? keys_visible(row, sq, sk, 1) - j0 : 0) : BC;
        }
        float4 pr[KA], dsr[KA];
#pragma unroll
        for (int a = 0; a < KA; a++) {
            pr[a] = *reinterpret_cast<const float4 *>(PsT + (ty + TY * a) * LDT + r);
            dsr[a] = *reinterpret_cast<const float4 *>(dSsT + (ty + TY * a) * LDT + r);
        }
#pragma unroll
        for (int rr = 0; rr < 4; rr++) {
#pragma unroll
            for (int cc = 0; cc < CC; cc++) {
                const int off = (r + rr) * LD + 4 * tx + 64 * cc;
                const float4 o4 = *reinterpret_cast<const float4 *>(dOs + off);
                const float4 q4 = *reinterpret_cast<const float4 *>(Qs + off);
#pragma unroll
                for (int a = 0; a < KA; a++) {
                    if (MASKED && ty + TY * a >= nvis[rr])
                        continue;
                    const float p = rr == 0 ? pr[a].x : rr == 1 ? pr[a].y : rr == 2 ? pr[a].z : pr[a].w;
                    const float ds = rr == 0 ? dsr[a].x : rr == 1 ? dsr[a].y : rr == 2 ? dsr[a].z : dsr[a].w;
                    dv_acc[a][cc].x = fmaf(p, o4.x, dv_acc[a][cc].x);
                    dv_acc[a][cc].y = fmaf(p, o4.y, dv_acc[a][cc].y);
                    dv_acc[a][cc].z = fmaf(p, o4.z, dv_acc[a][cc].z);
                    dv_acc[a][cc].w = fmaf(p, o4.w, dv_acc[a][cc].w);
                    dk_acc[a][cc].x = fmaf(ds, q4.x, dk_acc[a][cc].x);
                    dk_acc[a][cc].y = fmaf(ds, q4.y, dk_acc[a][cc].y);
                    dk_acc[a][cc].z = fmaf(ds, q4.z, dk_acc[a][cc].z);
                    dk_acc[a][cc].w = fmaf(ds, q4.w, dk_acc[a][cc].w);
                }
            }
        }
    }
}

/** This thread's rows of dQ_i (rows RA·ty + a of the Q block at i0, the
 * layout of ds_times_k()) times scale, into dq ([B·Hq·Sq, d]) at the rows of
 * head bh: atomically (a K/V block's piece) or plainly (the whole sum). */
template <int D, bool ATOMIC>
static __device__ __forceinline__ void
store_dq_rows(float *dq, size_t bh, const float4 (&acc)[BR / Cols<D>::TY][Cols<D>::CC], int i0,
              int sq, int d, float scale)
{
    constexpr int TXC = Cols<D>::TXC, CC = Cols<D>::CC, RA = BR / Cols<D>::TY;
    const int ty = threadIdx.x / TXC, tx = threadIdx.x % TXC;
#pragma unroll
    for (int a = 0; a < RA; a++) {
        const int row = i0 + RA * ty + a;
        if (row >= sq)
            continue;
#pragma unroll
        for (int cc = 0; cc < CC; cc++)
            store4<ATOMIC>(dq + (bh * sq + row) * d, 4 * tx + 64 * cc, d, acc[a][cc], scale);
    }
}

/**
 * The main backward kernel: one block per (K/V block j, batch·Hkv head),
 * flattened: blockIdx.x = bhk · Tc + j.
 *   q, dout, dq: [B, Hq, Sq, d]   k, v, dk, dv: [B, Hkv, Sk, d]
 *   lse, delta: [B, Hq, Sq]
 * DQ_ATOMIC: add this block's dQ_i pieces with atomicAdd (dq zeroed first);
 * otherwise dq_kernel computes dQ and this kernel leaves it alone.
 * Shared memory (floats): K_j, V_j [BC][D+4]; Q_i, dO_i [BR][D+4];
 * P_ijᵀ, dS_ijᵀ [BC][BR+4]; LSE_i, δ_i [BR].
 */
template <int D, bool DQ_ATOMIC>
static __global__ void __launch_bounds__(NT)
bwd_kv_kernel(const float *__restrict__ q, const float *__restrict__ k,
              const float *__restrict__ v, const float *__restrict__ dout,
              const float *__restrict__ lse, const float *__restrict__ delta,
              float *__restrict__ dq, float *__restrict__ dk, float *__restrict__ dv, int hq,
              int hkv, int sq, int sk, int d, int causal, float scale, int tc)
{
    constexpr int LD = D + 4, LDT = BR + 4;
    constexpr int TXC = Cols<D>::TXC, CC = Cols<D>::CC, TY = Cols<D>::TY, BC = Cols<D>::BC_KV;
    constexpr int KA = BC / TY, RA = BR / TY; /* keys (dK, dV) and rows (dQ) per thread */
    extern __shared__ float4 smem4[]; /* float4: 16-byte aligned */
    float *smem = reinterpret_cast<float *>(smem4);
    float *Ks = smem, *Vs = Ks + BC * LD, *Qs = Vs + BC * LD, *dOs = Qs + BR * LD;
    float *PsT = dOs + BR * LD, *dSsT = PsT + BC * LDT, *lse_s = dSsT + BC * LDT;
    float *delta_s = lse_s + BR;

    const int ty = threadIdx.x / TXC, tx = threadIdx.x % TXC;
    const int j = blockIdx.x % tc, bhk = blockIdx.x / tc;
    const int b = bhk / hkv, hk = bhk % hkv, g = hq / hkv;
    const int j0 = j * BC;
    const float *k_bh = k + (size_t)bhk * sk * d, *v_bh = v + (size_t)bhk * sk * d;

    load_tile<BC, D, LD_TILE(D), NT>(Ks, k_bh, j0, sk, d, 0);
    load_tile<BC, D, LD_TILE(D), NT>(Vs, v_bh, j0, sk, d, 0);

    /* dK_j, dV_j: thread owns keys ty + TY·a (a < KA), columns 4·tx + 64·cc .. +3 */
    float4 dk_acc[KA][CC], dv_acc[KA][CC];
#pragma unroll
    for (int a = 0; a < KA; a++)
#pragma unroll
        for (int cc = 0; cc < CC; cc++)
            dk_acc[a][cc] = dv_acc[a][cc] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);

    /* Causal: the first query row that sees key j0 is j0 + Sq − Sk; Q blocks
     * before it are fully masked for this K/V block and never visited. */
    const int first_row = causal ? max(0, j0 + sq - sk) : 0;
    for (int t = 0; t < g; t++) { /* GQA: every query head of this K/V head, in order */
        const size_t bh = (size_t)b * hq + (size_t)hk * g + t;
        const float *q_bh = q + bh * sq * d, *do_bh = dout + bh * sq * d;
        for (int i0 = first_row / BR * BR; i0 < sq; i0 += BR) {
            __syncthreads(); /* every thread is done with the previous Q_i, dO_i, P_ij, dS_ij */
            load_tile<BR, D, LD_TILE(D), NT>(Qs, q_bh, i0, sq, d, 0);
            load_tile<BR, D, LD_TILE(D), NT>(dOs, do_bh, i0, sq, d, 0);
            if (threadIdx.x < BR) {
                const int row = i0 + threadIdx.x;
                lse_s[threadIdx.x] = row < sq ? lse[bh * sq + row] : -INFINITY;
                delta_s[threadIdx.x] = row < sq ? delta[bh * sq + row] : 0.0f;
            }
            /* Q_i, dO_i, LSE_i, δ_i (and, the first time, K_j, V_j) are in shared memory.
             * A row with LSE = −inf (it sees no key, or every score it sees is
             * −inf: a masked row) has P = dS = 0, and adds nothing to dK_j:
             * its row of Q_i is zeroed, so that dS · Q cannot be 0 · (−inf) =
             * NaN. Only a block that holds such a row pays the second barrier. */
            const bool masked_row = threadIdx.x < BR && i0 + (int)threadIdx.x < sq &&
                                    lse_s[threadIdx.x] == -INFINITY;
            if (__syncthreads_or(masked_row)) {
                for (int e = threadIdx.x; e < BR * D; e += NT)
                    if (lse_s[e / D] == -INFINITY)
                        Qs[(e / D) * LD + e % D] = 0.0f;
                __syncthreads();
            }
            compute_p_ds<D, BC>(Qs, dOs, Ks, Vs, lse_s, delta_s, PsT, dSsT, i0, j0, sq, sk,
                                causal, scale);
            __syncthreads(); /* P_ij and dS_ij are complete: every thread reads all of them below */

            if (tile_masked(i0, j0, BC, sq, sk, causal))
                accumulate_dk_dv<D, BC, true>(PsT, dSsT, Qs, dOs, dk_acc, dv_acc, i0, j0, sq, sk);
            else
                accumulate_dk_dv<D, BC, false>(PsT, dSsT, Qs, dOs, dk_acc, dv_acc, i0, j0, sq, sk);

            if (DQ_ATOMIC) {
                /* dQ_i += scale · dS_ij K_j: one atomicAdd per element per K/V block */
                float4 acc[RA][CC] = {};
                ds_times_k_tile<D, BC>(dSsT, Ks, acc, i0, j0, sq, sk, causal);
                store_dq_rows<D, true>(dq, bh, acc, i0, sq, d, scale);
            }
        }
    }

    /* dK_j = scale · Σ dS_ijᵀ Q_i, dV_j: written once, no atomics (a K/V
     * block that no query row sees writes zeros). */
#pragma unroll
    for (int a = 0; a < KA; a++) {
        const int key = j0 + ty + TY * a;
        if (key >= sk)
            continue;
#pragma unroll
        for (int cc = 0; cc < CC; cc++) {
            store4<false>(dk + ((size_t)bhk * sk + key) * d, 4 * tx + 64 * cc, d, dk_acc[a][cc],
                          scale);
            store4<false>(dv + ((size_t)bhk * sk + key) * d, 4 * tx + 64 * cc, d, dv_acc[a][cc],
                          1.0f);
        }
    }
}

/**
 * Deterministic dQ: one block per (Q block i, batch·Hq head), flattened:
 * blockIdx.x = bh · Tr + i. Walks K/V blocks j in order, recomputing
 * S_ij, P_ij, dP_ij, dS_ij, and sums dQ_i = scale · Σ_j dS_ij K_j in
 * registers: the same order on every run, so the same bits.
 *   q, dout, dq: [B, Hq, Sq, d]   k, v: [B, Hkv, Sk, d]   lse, delta: [B, Hq, Sq]
 * Shared memory: the same layout as bwd_kv_kernel (P_ijᵀ unused).
 */
template <int D>
static __global__ void __launch_bounds__(NT, Cols<D>::MIN_BLOCKS_DQ)
dq_kernel(const float *__restrict__ q, const float *__restrict__ k, const float *__restrict__ v,
          const float *__restrict__ dout, const float *__restrict__ lse,
          const float *__restrict__ delta, float *__restrict__ dq, int hq, int hkv, int sq,
          int sk, int d, int causal, float scale, int tr)
{
    constexpr int LD = D + 4, LDT = BR + 4;
    constexpr int CC = Cols<D>::CC, RA = BR / Cols<D>::TY, BC = Cols<D>::BC_DQ;
    extern __shared__ float4 smem4[]; /* float4: 16-byte aligned */
    float *smem = reinterpret_cast<float *>(smem4);
    float *Ks = smem, *Vs = Ks + BC * LD, *Qs = Vs + BC * LD, *dOs = Qs + BR * LD;
    float *dSsT = dOs + BR * LD + BC * LDT, *lse_s = dSsT + BC * LDT;
    float *delta_s = lse_s + BR;

    const int i = blockIdx.x % tr, bh = blockIdx.x / tr;
    const int b = bh / hq, h = bh % hq, hk = h / (hq / hkv);
    const int i0 = i * BR;
    const size_t bhk = (size_t)b * hkv + hk;
    const float *k_bh = k + bhk * sk * d, *v_bh = v + bhk * sk * d;

    load_tile<BR, D, LD_TILE(D), NT>(Qs, q + (size_t)bh * sq * d, i0, sq, d, 0);
    load_tile<BR, D, LD_TILE(D), NT>(dOs, dout + (size_t)bh * sq * d, i0, sq, d, 0);
    if (threadIdx.x < BR) {
        const int row = i0 + threadIdx.x;
        lse_s[threadIdx.x] = row < sq ? lse[(size_t)bh * sq + row] : -INFINITY;
        delta_s[threadIdx.x] = row < sq ? delta[(size_t)bh * sq + row] : 0.0f;
    }
    /* Causal: K/V blocks past the last key the block's last row sees are skipped. */
    const int last_row = min(i0 + BR, sq) - 1;
    const int n_keys = keys_visible(last_row, sq, sk, causal);

    float4 acc[RA][CC] = {};

    for (int j0 = 0; j0 < n_keys; j0 += BC) {
        __syncthreads(); /* every thread is done reading the previous K_j and dS_ij */
        load_tile<BC, D, LD_TILE(D), NT>(Ks, k_bh, j0, sk, d, 0);
        load_tile<BC, D, LD_TILE(D), NT>(Vs, v_bh, j0, sk, d, 0);
        __syncthreads(); /* K_j, V_j (and, the first time, Q_i, dO_i, LSE_i, δ_i) are in shared memory */
        compute_p_ds<D, BC>(Qs, dOs, Ks, Vs, lse_s, delta_s, NULL, dSsT, i0, j0, sq, sk, causal,
                            scale);
        __syncthreads(); /* dS_ij is complete: every thread reads whole rows of it below */
        ds_times_k_tile<D, BC>(dSsT, Ks, acc, i0, j0, sq, sk, causal);
    }
    /* every element written: rows that see no key get 0 */
    store_dq_rows<D, false>(dq, (size_t)bh, acc, i0, sq, d, scale);
}

#endif /* ATTN_STEP07_KERNEL_CUH */
