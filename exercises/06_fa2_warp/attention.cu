/**
 * @file exercises/06_fa2_warp/attention.cu
 * @brief Exercise 06 (fill in the TODOs; README.md beside this file): the FlashAttention-2 kernel — grid over Q blocks, warps
 * own rows, O_i in registers, one normalization at the end.
 *
 * **What this step adds over step 05.** The same tiles and the same online
 * softmax, reorganized the way FlashAttention-2 does it:
 *
 *     grid over (Q block i, batch·head)   B·Hq·Tr blocks instead of B·Hq
 *     Q_i → shared memory, once
 *     for j in 0..Tc_i-1:                 one loop, over K/V blocks only
 *         K_j, V_j → shared memory
 *         S_ij = Q_i K_jᵀ                 each warp owns 16 rows of Q_i;
 *                                         each thread a 4×(Bc/8) tile of S_ij
 *         m_i = max(m_i, rowmax(S_ij))    __shfl_xor_sync across the 8 lanes of a row
 *         P_ij = exp(S_ij - m_i)
 *         l_i = e^{m_old - m_i} l_i + rowsum(P_ij)
 *         O_i = e^{m_old - m_i} O_i + P_ij V_j    O_i in registers, never divided here
 *     O_i = O_i / l_i,  lse_i = m_i + ln(l_i)     once, at the end
 *
 * The loop swap is the big one: a block owns one Q block, so O_i, l_i and
 * m_i stay in registers for the whole row (no device-memory round trip per
 * K/V block as in step 05), and the grid has B·Hq·Tr blocks (2048 at B = 1,
 * Hq = 32, N = 4096, D = 64) instead of 32: every SM gets work. Causal
 * blocks that lie wholly above the diagonal are never visited (Tc_i stops at
 * the last key the block's last row sees), which halves causal work, and
 * the block order is reversed so the longest Q blocks start first.
 *
 * The speed comes from register blocking, as in a register-tiled SGEMM:
 * each thread computes a 4×8 tile of S_ij (Bc = 64) and a 4×(D/8) tile of
 * O_i, so every float4 read from shared memory feeds 16 to 64 FMAs; rows and
 * keys are interleaved across lanes (thread rows rg + 4·t, keys g + 8·u) and
 * rows padded, so those float4 reads are free of bank conflicts. On an H100
 * that is 35 TFLOP/s at D = 64 and 38 at D = 128 (N = 4096, about 55% of
 * the fp32 peak), 10-12x step 05: notes/06_fa2_warp.md has the measurements.
 *
 * **Run it.**
 *
 *     make && build/bin/06_fa2_warp --heads 8 --seq 1023 --dim 64 --causal
 *     build/bin/06_fa2_warp --batch 1 --heads 32 --seq 4096 --dim 64 --causal --bench
 *
 * **Limits.** fp32 on CUDA cores (no tensor cores, no TF32: that is step
 * 08). Head dims up to 128: 32, 64 and 128 are compiled tile widths, any
 * other D ≤ 128 runs in the next one up with the columns past D
 * zero-filled; D > 128 is refused (exit 2). No copy/compute overlap: K_j,
 * V_j are loaded by the whole block between two barriers (cp.async
 * pipelining is step 08's lesson); other resident blocks hide part of that
 * latency. Shared memory per block: 68 KB at D = 64 (three blocks per SM),
 * 167 KB at D = 128 (one block of 8 warps); a device with less per block
 * (A100: 163 KB) runs D = 128 with 4 warps and Bc = 32 (77 KB), and one
 * with 64 KB (sm_75) gets exit 3 at D > 32.
 */
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "common.h"
#include "cuda_check.h"

/** Rows per thread: lane = 8·rg + g owns rows rg, rg+4, rg+8, rg+12 of its warp's 16. */
#define TM 4
/** Query rows per warp. A block of NW warps owns Br = 16·NW rows of Q. */
#define WARP_ROWS (4 * TM)
#define FULL_MASK 0xffffffffu
#define LOG2E 1.4426950408889634f

/* Keys query row i sees, in 0..Sk (causal is aligned bottom-right). The
 * device twin of attn_keys_visible(). */
static __device__ __forceinline__ int keys_visible(int i, int sq, int sk, int causal)
{
    if (!causal)
        return sk;
    long long n = (long long)i + sk - sq + 1;
    return n < 0 ? 0 : (n > sk ? sk : (int)n);
}

/*
 * Copy rows [row0, row0 + R) of a row-major [n, d] matrix into a shared
 * tile [R][LD], zero-filling rows >= n and columns >= d (up to D). Zeros
 * matter: a zero column adds nothing to Q·Kᵀ, a zero V row nothing to P·V,
 * so tails and padded head dims need no special case in the math.
 * vec: d % 4 == 0 and 16-byte aligned pointers → one float4 per thread
 * and loop trip; consecutive threads read consecutive 16 bytes (coalesced).
 */
template <int R, int D, int LD, int NT>
static __device__ __forceinline__ void load_tile(float *tile, const float *src,
                                                 int row0, int n, int d, int vec)
{
    if (vec) {
#pragma unroll
        for (int it = 0; it < (R * D / 4 + NT - 1) / NT; it++) {
            const int idx = it * NT + threadIdx.x;
            if ((R * D / 4) % NT != 0 && idx >= R * D / 4)
                break;
            const int r = idx / (D / 4), c = idx % (D / 4) * 4;
            float4 x = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (row0 + r < n && c < d)
                x = *reinterpret_cast<const float4 *>(src + (size_t)(row0 + r) * d + c);
            *reinterpret_cast<float4 *>(tile + r * LD + c) = x;
        }
    } else {
        for (int idx = threadIdx.x; idx < R * D; idx += NT) {
            const int r = idx / D, c = idx % D;
            tile[r * LD + c] = (row0 + r < n && c < d) ? src[(size_t)(row0 + r) * d + c] : 0.0f;
        }
    }
}

/*
 * One K/V block for this thread's 4 rows: S_ij, the online softmax, O_i += P_ij V_j.
 *   Qs: [Br][D+4] Q_i   Ks: [Bc][D+4] K_j   Vs: [Bc][D] V_j   Ps: [Br][Bc+8] P_ij
 *   m_i, l_i: [TM] this thread's rows   o_i: [TM][D/8] its tile of O_i
 * Thread (warp w, lane 8·rg + g) owns rows r_t = 16w + rg + 4t (t < 4), keys
 * g + 8u (u < Bc/8) of S_ij, and columns 32u + 4g .. +3 (u < D/32) of O_i.
 * MASKED: the block has keys some of these rows must not see (causal
 * diagonal, or keys past Sk); full blocks skip every mask test.
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

    /* S_ij = Q_i K_jᵀ: a 4 × TN tile per thread. Per 4 head-dim columns:
     * 4 float4 of Q (one per row) and TN float4 of K feed 16·TN FMAs.
     * Bank conflicts: the 4 rows of one t are 4 consecutive rows of Q_i,
     * the 8 keys of one u are 8 consecutive rows of K_j; a row stride of
     * D + 4 floats shifts each by 4 banks, so a warp's float4 reads cover
     * 32 distinct banks. */
    float s[TM][TN];
#pragma unroll
    for (int t = 0; t < TM; t++)
#pragma unroll
        for (int u = 0; u < TN; u++)
            s[t][u] = 0.0f;
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
        /* m_i = max(m_i, rowmax(S_ij)): first over this thread's TN keys,
         * then across the 8 lanes that share the row (lanes 8·rg .. 8·rg+7:
         * xor 1, 2, 4 stays inside them). After the butterfly all 8 hold it.
         * Masked scores are replaced, not computed with: a NaN key row must
         * not reach rows that do not see it. fmaxf() drops a NaN, but a
         * visible NaN still reaches P_ij, l_i and O_i through exp. */
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
         * max over the 8 lanes that share the row (__shfl_xor_sync) — ~3 lines */
        /* A max of -inf means "no key yet": subtract 0 instead, so masked
         * scores give exp(-inf) = 0, never exp(-inf - (-inf)) = NaN. */
        const float m_use = (mx == -INFINITY) ? 0.0f : mx;
        /* exp(x) as exp2f(x · log2 e): one MUFU.EX2 and a multiply, where
         * expf() adds range reduction. The difference s - m is taken first
         * (exact when s is near m), so large logits round as in step 01. */
        /* TODO(6.2): alpha = e^{m_old - m_new}, with exp2f (see above) — ~1 line */
        const float alpha = 1.0f;
        m_i[t] = mx;

        /* P_ij = exp(S_ij - m_i) into this warp's rows of Ps, for P_ij V_j
         * below, where each thread needs whole rows. l_i stays a per-thread
         * partial sum over its own keys: alpha is the same in all 8 lanes of
         * a row, so the partial sums rescale alike, and the one shuffle sum
         * waits until the end (FA2: fewer non-matmul operations). */
        float ls = 0.0f;
#pragma unroll
        for (int u = 0; u < TN; u++) {
            const float pv = exp2f((s[t][u] - m_use) * LOG2E);
            ls += pv;
            Ps[(r_w + 4 * t) * LDP + g + 8 * u] = pv;
        }
        /* TODO(6.3): l_i = e^{m_old - m_new} l_i + rowsum (this thread's part),
         * and rescale this thread's O_i row by alpha — no division by l here
         * (that waits for the end) — ~4 lines */
        (void)ls, (void)alpha;
    }
    __syncwarp(); /* this warp's rows of P_ij are in Ps before its lanes read each other's keys */

    /* O_i += P_ij V_j: per 4 keys, 4 float4 of P (one per row) and 4·TD
     * float4 of V feed 64·TD FMAs. The 8 lanes of a row read V columns
     * 4g .. 4g+3 (+32u): 128 contiguous bytes, no conflict, no pad. */
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
                /* MASKED: P = 0 is not enough, 0 · NaN = NaN: a NaN in a V
                 * row this query does not see must stay out. */
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

/*
 * The FlashAttention-2 forward, one thread block per (Q block, batch·head).
 *   q: [B, Hq, Sq, d]   k, v: [B, Hkv, Sk, d]   o: [B, Hq, Sq, d]
 *   lse: [B, Hq, Sq]
 * D: the tile's head dim (32, 64, 128), d <= D the problem's. NW warps of
 * 16 rows each: Br = 16·NW query rows, 32·NW threads.
 * blockIdx.x = bh · Tr + i: consecutive blocks share a head, so the blocks
 * resident at one time read the same K/V from L2.
 *
 * Shared memory (floats): Q_i [Br][D+4], K_j [Bc][D+4], V_j [Bc][D],
 * P_ij [Br][Bc+8] (see block_step for why those pads).
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

    /* Causal: K/V blocks past the last key the block's last row sees are
     * fully masked for every row: never load them. */
    /* TODO(6.5): Tc = the number of K/V blocks this Q block must visit:
     * all of them without causal, up to the last key its last row sees
     * with it (keys_visible) — ~2 lines */
    const int Tc = 0;

    /* Q_i to shared memory, once for the whole loop. */
    load_tile<BR, D, LDQ, NT>(Qs, q_bh, row0, sq, d, vec);

    /* m_i, l_i, O_i in registers for the block's whole life. */
    float m_i[TM], l_i[TM], o_i[TM][D / 8];
#pragma unroll
    for (int t = 0; t < TM; t++) {
        m_i[t] = -INFINITY;
        l_i[t] = 0.0f;
#pragma unroll
        for (int e = 0; e < D / 8; e++)
            o_i[t][e] = 0.0f;
    }

    for (int j = 0; j < Tc; j++) { /* the one loop: over K/V blocks */
        load_tile<BC, D, LDK, NT>(Ks, k_bh, j * BC, sk, d, vec);
        load_tile<BC, D, LDV, NT>(Vs, v_bh, j * BC, sk, d, vec);
        __syncthreads(); /* K_j, V_j (and, on the first pass, Q_i) are complete in shared memory */
        /* Masked if some (row, key) of the block is not visible: keys past
         * Sk, or causal keys beyond what the block's first row sees. */
        const int masked = (j + 1) * BC > sk ||
                           (causal && (j + 1) * BC > keys_visible(row0, sq, sk, causal));
        if (masked)
            block_step<D, BC, true>(Qs, Ks, Vs, Ps, m_i, l_i, o_i, warp, rg, g, row0, j * BC,
                                    sq, sk, causal, scale);
        else
            block_step<D, BC, false>(Qs, Ks, Vs, Ps, m_i, l_i, o_i, warp, rg, g, row0, j * BC,
                                     sq, sk, causal, scale);
        __syncthreads(); /* all warps are done with K_j, V_j, P_ij before the next pass overwrites them */
    }

    /* The end of the row: l_i = sum of the 8 lanes' partial sums, then the
     * one normalization O_i / l_i and lse_i = m_i + ln(l_i). A row that saw
     * no key has l_i = 0 and O_i = 0: O = 0, LSE = -inf. NaN l gives NaN. */
#pragma unroll
    for (int t = 0; t < TM; t++) {
        /* TODO(6.6): l = the row's l_i, summed over its 8 lanes; inv = 1 / l,
         * or 0 for a row that saw no key (l == 0) — ~5 lines */
        float l = l_i[t];
        const float inv = 1.0f;
        const int row = row0 + warp * WARP_ROWS + rg + 4 * t;
        if (row >= sq)
            continue;
        float *o_row = o_bh + (size_t)row * d;
#pragma unroll
        for (int u = 0; u < D / 32; u++) {
            const int c = 32 * u + 4 * g;
            const float4 x = make_float4(o_i[t][4 * u] * inv, o_i[t][4 * u + 1] * inv,
                                         o_i[t][4 * u + 2] * inv, o_i[t][4 * u + 3] * inv);
            if (vec) {
                if (c < d)
                    *reinterpret_cast<float4 *>(o_row + c) = x;
            } else {
                if (c < d) o_row[c] = x.x;
                if (c + 1 < d) o_row[c + 1] = x.y;
                if (c + 2 < d) o_row[c + 2] = x.z;
                if (c + 3 < d) o_row[c + 3] = x.w;
            }
        }
        if (g == 0)
            lse[(size_t)bh * sq + row] = (l == 0.0f) ? -INFINITY : m_i[t] + logf(l);
    }
}

/** No workspace: m_i, l_i and O_i live in registers. */
extern "C" size_t attn06_workspace_bytes(const attn_problem *p)
{
    (void)p;
    return 0;
}

/* What step 06 refuses: head dims over 128 (its widest tile). */
static int supports06(const attn_problem *p, char *msg, size_t msg_len)
{
    if (p->head_dim < 1 || p->head_dim > 128) {
        snprintf(msg, msg_len, "--dim %d: step 06 supports head dims 1..128",
                 p->head_dim);
        return ATTN_EXIT_BAD_INPUT;
    }
    return 0;
}

/* Shared memory of fa2_kernel<D, BC, NW>, in bytes. */
static size_t smem06(int D, int bc, int nw)
{
    const int br = nw * WARP_ROWS;
    return (size_t)(br * (D + 4) + bc * (D + 4) + bc * D + br * (bc + 8)) * sizeof(float);
}

/* Launch fa2_kernel<D, BC, NW>: raise its shared-memory limit past the
 * default 48 KB, one block per (Q block, batch·head). */
template <int D, int BC, int NW>
static int launch06(const attn_problem *p, const float *q, const float *k,
                    const float *v, float *o, float *lse, cudaStream_t stream, int vec)
{
    const size_t smem = smem06(D, BC, NW);
    const int tr = (p->seqlen_q + NW * WARP_ROWS - 1) / (NW * WARP_ROWS);
    const long long blocks = (long long)p->batch * p->heads_q * tr;
    if (blocks > 0x7fffffffLL) {
        fprintf(stderr, "error: step 06 grid of %lld blocks exceeds 2^31 - 1\n", blocks);
        return ATTN_EXIT_BAD_INPUT;
    }
    CUDA_CHECK(cudaFuncSetAttribute(fa2_kernel<D, BC, NW>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    fa2_kernel<D, BC, NW><<<(unsigned)blocks, 32 * NW, smem, stream>>>(
        q, k, v, o, lse, p->heads_q, p->heads_kv, p->seqlen_q, p->seqlen_k,
        p->head_dim, p->causal, attn_scale(p), vec, tr);
    CUDA_CHECK_LAUNCH();
    return 0;
}

/*
 * q: [B, Hq, Sq, D], k, v: [B, Hkv, Sk, D], o: [B, Hq, Sq, D], lse: [B, Hq, Sq]
 * workspace: none (attn06_workspace_bytes() is 0).
 *
 * Tile per head dim (H100, B = 1, Hq = 32, N = 4096, notes/06_fa2_warp.md):
 *   D <= 64:  4 warps, Br = 64, Bc = 64: 68 KB, 168 registers, 3 blocks/SM.
 *             8 warps (Br = 128) measured 9% slower: 188 registers x 256
 *             threads leave room for one block per SM.
 *   D = 128:  8 warps, Br = 128, Bc = 64: 167 KB, one block per SM, 37.8
 *             TFLOP/s; 4 warps with Bc = 32 (77 KB, two blocks) gave 32.2.
 *             Devices with less shared memory per block (A100: 163 KB) get
 *             the 4-warp tile.
 */
extern "C" int attn06_forward(const attn_problem *p, const float *q,
                              const float *k, const float *v, float *o,
                              float *lse, void *workspace,
                              struct CUstream_st *stream)
{
    const int d = p->head_dim;
    /* float4 loads need d % 4 == 0 and 16-byte aligned tensors (cudaMalloc's
     * are; a library caller's offset pointer may not be). */
    const int vec = d % 4 == 0 &&
                    (((uintptr_t)q | (uintptr_t)k | (uintptr_t)v | (uintptr_t)o) & 15) == 0;
    int dev = 0, optin = 0;
    (void)workspace;
    if (d < 1 || d > 128)
        return ATTN_EXIT_BAD_INPUT;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    if (d <= 32 && smem06(32, 64, 4) <= (size_t)optin)
        return launch06<32, 64, 4>(p, q, k, v, o, lse, stream, vec);
    if (d <= 64 && smem06(64, 64, 4) <= (size_t)optin)
        return launch06<64, 64, 4>(p, q, k, v, o, lse, stream, vec);
    if (d > 64 && smem06(128, 64, 8) <= (size_t)optin)
        return launch06<128, 64, 8>(p, q, k, v, o, lse, stream, vec);
    if (d > 64 && smem06(128, 32, 4) <= (size_t)optin)
        return launch06<128, 32, 4>(p, q, k, v, o, lse, stream, vec);
    fprintf(stderr, "error: step 06 needs %zu bytes of shared memory per block at D = %d; "
                    "this device offers %d\n",
            smem06(d <= 32 ? 32 : d <= 64 ? 64 : 128, d <= 64 ? 64 : 32, 4), d, optin);
    return ATTN_EXIT_RESOURCE;
}

/** Step 06's descriptor: what the driver and the test suites run. */
extern "C" const attn_step attn06_step = {
    "06", "fa2_warp", 1, NULL, attn06_forward, attn06_workspace_bytes,
    supports06, attn_gpu_run};

#ifdef ATTN_STEP_MAIN
int main(int argc, char **argv) { return attn_step_main(argc, argv, &attn06_step); }
#endif
