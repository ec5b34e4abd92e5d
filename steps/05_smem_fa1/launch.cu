/**
 * @file steps/05_smem_fa1/launch.cu
 * @brief Step 05: the FlashAttention-1 kernel — K/V tiles in shared memory,
 * O, l and m in device memory (the paper's Algorithm 1, as written); its
 * launch and entry point.
 *
 * **What this step adds over step 04.** S and P are never materialized:
 * step 03's tiled algorithm (the paper's Algorithm 1) moved onto the GPU,
 * K/V tiles in shared memory; the kernel, the idea, is in kernel.cuh. This
 * file is its plumbing: the tile choice, the shared-memory budget, the
 * launch, the entry point attn05_forward() and the step's descriptor.
 *
 * Extra memory is 2·B·Hq·Sq floats (m and l in the workspace): O(N), where
 * step 04 needs O(N²). The price is what Algorithm 1 pays: O, l and m go
 * through device memory on every outer iteration (Tc round trips of O), and
 * the grid has only B·Hq blocks. At B = 1, Hq = 32 that is 32 blocks on an
 * H100's 132 SMs: three quarters of the chip idles. notes/05_smem_fa1.md
 * has the numbers; step 06 fixes both (grid over Q blocks too, O in
 * registers).
 *
 * **Run it.**
 *
 *     make && build/bin/05_smem_fa1 --heads 8 --seq 1023 --dim 64 --causal
 *     build/bin/05_smem_fa1 --batch 4 --heads 33 --seq 4096 --dim 64 --bench --no-check
 *
 * **Limits.** fp32 on CUDA cores. Head dims up to 128: 32, 64 and 128 are
 * compiled tile widths, any other D ≤ 128 runs in the next one up with the
 * columns past D zero-filled; D > 128 is refused (exit 2). Causal masking
 * saves no work here: fully masked (Q_i, K_j) blocks are computed and
 * masked like the others (step 06 skips them). Shared memory: 164.5 KB per
 * block at D = 128 (Br = 128); where the device offers less (A100: 163 KB)
 * the kernel runs with Br = 64, and where even that does not fit (64 KB
 * devices at D > 64) the forward returns exit 3 with the sizes.
 */
#include <stdint.h>

#include "common.h"
#include "cuda_check.h"
#include "kernel.cuh"

/** m and l: 2·B·Hq·Sq floats (Algorithm 1 keeps them in HBM). */
extern "C" size_t attn05_workspace_bytes(const attn_problem *p)
{
    return 2 * (size_t)p->batch * p->heads_q * p->seqlen_q * sizeof(float);
}

/** What step 05 refuses: head dims over 128 (its widest tile). */
static int supports05(const attn_problem *p, char *msg, size_t msg_len)
{
    if (p->head_dim < 1 || p->head_dim > 128) {
        snprintf(msg, msg_len, "--dim %d: step 05 supports head dims 1..128",
                 p->head_dim);
        return ATTN_EXIT_BAD_INPUT;
    }
    return 0;
}

/** Shared memory of fa1_kernel<D, BR>, in bytes. */
static size_t smem05(int D, int br)
{
    return (size_t)(BC * (D + 4) + BC * D + 2 * br * (D + 4)) * sizeof(float);
}

/** Launch fa1_kernel<D, BR>: raise its shared-memory limit past the default
 * 48 KB, one block per (batch, head). */
template <int D, int BR>
static int launch05(const attn_problem *p, const float *q, const float *k,
                    const float *v, float *o, float *lse, float *ws,
                    cudaStream_t stream, int vec)
{
    const size_t smem = smem05(D, BR);
    const size_t rows = (size_t)p->batch * p->heads_q * p->seqlen_q;
    CUDA_CHECK(cudaFuncSetAttribute(fa1_kernel<D, BR>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    fa1_kernel<D, BR><<<p->batch * p->heads_q, BR, smem, stream>>>(
        q, k, v, o, lse, ws, ws + rows, p->heads_q, p->heads_kv, p->seqlen_q,
        p->seqlen_k, p->head_dim, p->causal, attn_scale(p), vec);
    CUDA_CHECK_LAUNCH();
    return 0;
}

/** Br = 128 threads where the device's shared memory allows, else 64; where
 * neither fits, ATTN_EXIT_RESOURCE with the sizes. */
template <int D>
static int launch05_br(const attn_problem *p, const float *q, const float *k,
                       const float *v, float *o, float *lse, float *ws,
                       cudaStream_t stream, int vec)
{
    int dev = 0, optin = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    if (smem05(D, 128) <= (size_t)optin)
        return launch05<D, 128>(p, q, k, v, o, lse, ws, stream, vec);
    if (smem05(D, 64) <= (size_t)optin)
        return launch05<D, 64>(p, q, k, v, o, lse, ws, stream, vec);
    return attn_set_error(ATTN_EXIT_RESOURCE,
                          "step 05 needs %zu bytes of shared memory per block at D = %d; "
                          "this device offers %d", smem05(D, 64), D, optin);
}

/*
 * q: [B, Hq, Sq, D], k, v: [B, Hkv, Sk, D], o: [B, Hq, Sq, D], lse: [B, Hq, Sq]
 * workspace: m [B, Hq, Sq] then l [B, Hq, Sq] (attn05_workspace_bytes()).
 */
extern "C" int attn05_forward(const attn_problem *p, const float *q,
                              const float *k, const float *v, float *o,
                              float *lse, void *workspace,
                              struct CUstream_st *stream)
{
    const int d = p->head_dim;
    /* float4 loads need d % 4 == 0 and 16-byte aligned tensors (cudaMalloc's
     * are; a library caller's offset pointer may not be). */
    const int vec = d % 4 == 0 &&
                    (((uintptr_t)q | (uintptr_t)k | (uintptr_t)v | (uintptr_t)o) & 15) == 0;
    float *ws = (float *)workspace;
    if (d < 1 || d > 128)
        return ATTN_EXIT_BAD_INPUT;
    if (d <= 32)
        return launch05_br<32>(p, q, k, v, o, lse, ws, stream, vec);
    if (d <= 64)
        return launch05_br<64>(p, q, k, v, o, lse, ws, stream, vec);
    return launch05_br<128>(p, q, k, v, o, lse, ws, stream, vec);
}

/** Step 05's descriptor: what the driver and the test suites run. */
extern "C" const attn_step attn05_step = {
    "05", "smem_fa1", 1, NULL, attn05_forward, attn05_workspace_bytes,
    supports05, attn_gpu_run, {1u << ATTN_F32, 0, 1, 128, NULL}, NULL,
    ATTN_KIND_FORWARD, NULL, NULL, NULL};

#ifdef ATTN_STEP_MAIN
int main(int argc, char **argv) { return attn_step_main(argc, argv, &attn05_step); }
#endif
