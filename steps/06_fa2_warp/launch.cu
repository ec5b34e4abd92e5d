/**
 * @file steps/06_fa2_warp/launch.cu
 * @brief Step 06: the FlashAttention-2 kernel — grid over Q blocks, warps
 * own rows, O_i in registers, one normalization at the end; its launch and
 * entry point.
 *
 * **What this step adds over step 05.** The same tiles and the same online
 * softmax, reorganized the way FlashAttention-2 does it; the kernel, the
 * idea, is in kernel.cuh. This file is its plumbing: the tile choice per
 * head dim, the shared-memory budget, the launch, the entry point
 * attn06_forward() and the step's descriptor.
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
 * pipelining is step 10's lesson); other resident blocks hide part of that
 * latency. Shared memory per block: 68 KB at D = 64 (three blocks per SM),
 * 167 KB at D = 128 (one block of 8 warps); a device with less per block
 * (A100: 163 KB) runs D = 128 with 4 warps and Bc = 32 (77 KB), and one
 * with 64 KB (sm_75) gets exit 3 at D > 32.
 */
#include <stdint.h>

#include "common.h"
#include "cuda_check.h"
#include "kernel.cuh"

/** No workspace: m_i, l_i and O_i live in registers. */
extern "C" size_t attn06_workspace_bytes(const attn_problem *p)
{
    (void)p;
    return 0;
}

/** What step 06 refuses: head dims over 128 (its widest tile). */
static int supports06(const attn_problem *p, char *msg, size_t msg_len)
{
    if (p->head_dim < 1 || p->head_dim > 128) {
        snprintf(msg, msg_len, "--dim %d: step 06 supports head dims 1..128",
                 p->head_dim);
        return ATTN_EXIT_BAD_INPUT;
    }
    return 0;
}

/** Shared memory of fa2_kernel<D, BC, NW>, in bytes. */
static size_t smem06(int D, int bc, int nw)
{
    const int br = nw * WARP_ROWS;
    return (size_t)(br * (D + 4) + bc * (D + 4) + bc * D + br * (bc + 8)) * sizeof(float);
}

/** Launch fa2_kernel<D, BC, NW>: raise its shared-memory limit past the
 * default 48 KB, one block per (Q block, batch·head). */
template <int D, int BC, int NW>
static int launch06(const attn_problem *p, const float *q, const float *k,
                    const float *v, float *o, float *lse, cudaStream_t stream, int vec)
{
    const size_t smem = smem06(D, BC, NW);
    const int tr = (p->seqlen_q + NW * WARP_ROWS - 1) / (NW * WARP_ROWS);
    const long long blocks = (long long)p->batch * p->heads_q * tr;
    if (blocks > 0x7fffffffLL)
        return attn_set_error(ATTN_EXIT_BAD_INPUT, "step 06 grid of %lld blocks exceeds 2^31 - 1",
                              blocks);
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
    return attn_set_error(ATTN_EXIT_RESOURCE,
                          "step 06 needs %zu bytes of shared memory per block at D = %d; "
                          "this device offers %d",
                          smem06(d <= 32 ? 32 : d <= 64 ? 64 : 128, d <= 64 ? 64 : 32, 4), d, optin);
}

/** Step 06's descriptor: what the driver and the test suites run. */
extern "C" const attn_step attn06_step = {
    "06", "fa2_warp", 1, NULL, attn06_forward, attn06_workspace_bytes,
    supports06, attn_gpu_run, {1u << ATTN_F32, 0, 1, 128, NULL}, NULL,
    ATTN_KIND_FORWARD, NULL, NULL, NULL};

#ifdef ATTN_STEP_MAIN
int main(int argc, char **argv) { return attn_step_main(argc, argv, &attn06_step); }
#endif
