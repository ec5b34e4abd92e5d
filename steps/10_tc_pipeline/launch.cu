/**
 * @file steps/10_tc_pipeline/launch.cu
 * @brief Step 10: the `cp.async` pipeline, the complete FlashAttention-2
 * forward; its tile choice, the sm_75 path, the launch and the entry point.
 *
 * **What this step adds over step 09.** The same tensor-core kernel, with
 * K and V copied by `cp.async` into two shared-memory stages, so that the
 * next block's copies are in flight while this one is computed, and K_j
 * and V_j waited for apart; O written through shared memory in 16-byte
 * rows; head dims 96 and 256. The kernel, the idea, is in kernel.cuh; the
 * copies in common/device/cp_async.cuh, the stage bookkeeping in
 * common/device/pipeline.h. This file is its plumbing, step 09's with the
 * stages in the shared-memory size.
 *
 * **Run it.**
 *
 *     make && build/bin/10_tc_pipeline --heads 8 --seq 1023 --dim 64 --causal
 *     build/bin/10_tc_pipeline --dtype bf16 --layout bshd --heads 8 --kv-heads 2 --seq 203 --dim 96
 *     build/bin/10_tc_pipeline --batch 4 --heads 32 --seq 4096 --dim 128 --causal --bench --no-check
 *
 * **Tiles.** Each warp owns 16 query rows; Bc = 64 keys per K/V block (32
 * at D = 256); two stages of K and V (ATTN10_STAGES); the warps, so Br,
 * chosen here at run time:
 *
 * | path | D | warps | Br × Bc | stages | shared memory |
 * |---|---|---|---|---|---|
 * | sm_80+ | 32 | 4 | 64 × 64 | 2 | 20 KiB |
 * | sm_80+ | 64, 96, 128 | 8 | 128 × 64 | 2 | 48, 72, 96 KiB |
 * | sm_80+ | 256 | 8 | 128 × 32 | 2 | 128 KiB |
 * | sm_75 | 32 … 256 | 4 | 64 × 64 (× 32 at 256) | 1 | 12 … 64 KiB (each checked ≤ 64 KiB at compile time) |
 *
 * Registers per thread, spills (zero) and what each choice measured are in
 * notes/10_tc_pipeline.md.
 *
 * **Turing.** There is no `cp.async` below sm_80: the sm_75 path (chosen,
 * as in steps 08 and 09, from the ptxVersion of the code the driver
 * loaded) copies synchronously into one stage; fp16 only, bf16 exit 3.
 *
 * **Limits.** Head dims 32, 64, 96, 128 and 256 (exit 2 otherwise). A
 * masked block whose V holds ±inf or NaN takes step 08's slow path.
 */
#include <stdint.h>

#include "common.h"
#include "cuda_check.h"
#include "kernel.cuh"

/** The head dims step 10 compiles, 0-terminated (its caps). */
static const int dims10[] = {32, 64, 96, 128, 256, 0};

/** No workspace: m_i, l_i and O_i live in registers. */
extern "C" size_t attn10_workspace_bytes(const attn_problem *p)
{
    (void)p;
    return 0;
}

/** Shared memory of fa2_kernel<D, …> with @p nw warps and @p stages
 *  stages, in bytes: Q_i, then K and V per stage, in 16 bits. */
static constexpr size_t smem10(int D, int nw, int stages)
{
    return (size_t)(nw * WARP_ROWS + 2 * stages * (D == 256 ? 32 : 64)) * D * 2;
}

/** Warps per block on sm_75 (every head dim): tiles within its 64 KB. */
#define NW_SM75 4
static_assert(smem10(32, NW_SM75, 1) <= 64 * 1024 && smem10(96, NW_SM75, 1) <= 64 * 1024 &&
                  smem10(128, NW_SM75, 1) <= 64 * 1024 && smem10(256, NW_SM75, 1) <= 64 * 1024,
              "the sm_75 tiles must fit 64 KB of shared memory");
static_assert(kBc<256> == 32 && kBc<128> == 64, "smem10 mirrors kBc");

/** Warps per block on sm_80 and later, by head dim (the table in the file
 *  comment); ATTN10_NW_OVERRIDE, defined at compile time, replaces it (to
 *  measure other tiles). */
static int nw10(int D, int sm75)
{
    if (sm75)
        return NW_SM75;
#ifdef ATTN10_NW_OVERRIDE
    (void)D;
    return ATTN10_NW_OVERRIDE;
#else
    return D == 32 ? 4 : 8;
#endif
}

/** Launch fa2_kernel<D, BF16> for @p pp: the path from the code the driver
 *  loaded (its ptxVersion), then the tile, the shared-memory limit, the grid. */
template <int D, bool BF16>
static int launch10(const attn_params *pp, cudaStream_t stream)
{
    const attn_problem *p = &pp->prob;
    cudaFuncAttributes fa;
    int dev = 0, optin = 0;
    CUDA_CHECK(cudaFuncGetAttributes(&fa, fa2_kernel<D, BF16>));
    const int sm75 = fa.ptxVersion < 80; /* compute_75 code: m16n8k8, no bf16 */
    if (sm75 && BF16)
        return attn_set_error(ATTN_EXIT_RESOURCE,
                              "step 10: bf16 needs sm_80 tensor cores; the code loaded for this "
                              "device is compute_%d (fp16 only)",
                              fa.ptxVersion);
    const int nw = nw10(D, sm75);
    const size_t smem = smem10(D, nw, sm75 ? 1 : ATTN10_STAGES);
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    if (smem > (size_t)optin)
        return attn_set_error(ATTN_EXIT_RESOURCE,
                              "step 10 needs %zu bytes of shared memory per block at D = %d; "
                              "this device offers %d",
                              smem, D, optin);
    const int tr = (p->seqlen_q + nw * WARP_ROWS - 1) / (nw * WARP_ROWS);
    const long long blocks = (long long)p->batch * p->heads_q * tr;
    if (blocks > 0x7fffffffLL)
        return attn_set_error(ATTN_EXIT_BAD_INPUT, "step 10 grid of %lld blocks exceeds 2^31 - 1",
                              blocks);
    /* 16-byte loads need 8-element row strides and 16-byte aligned tensors
     * (BHSD and BSHD from cudaMalloc are; a library caller's view may not be). */
    const attn_tensor *ts[4] = {&pp->q, &pp->k, &pp->v, &pp->o};
    int vec = 1;
    for (int x = 0; x < 4; x++)
        vec = vec && ts[x]->stride_s % 8 == 0 && ts[x]->stride_h % 8 == 0 &&
              ts[x]->stride_b % 8 == 0 && ((uintptr_t)ts[x]->data & 15) == 0;
    CUDA_CHECK(cudaFuncSetAttribute(fa2_kernel<D, BF16>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    fa2_kernel<D, BF16><<<(unsigned)blocks, 32 * nw, smem, stream>>>(
        *pp, attn_scale(p) * LOG2E, vec, tr);
    CUDA_CHECK_LAUNCH();
    return 0;
}

/** Step 10's caps: fp16 and bf16, any strides, head dims 32, 64, 96, 128, 256. */
#define CAPS10 {(1u << ATTN_F16) | (1u << ATTN_BF16), ATTN_FEAT_STRIDES, 32, 256, dims10}

/**
 * Step 10's entry point: the FlashAttention-2 forward on tensor cores.
 * @p pp: Q, O [B, Hq, Sq, D] and K, V [B, Hkv, Sk, D] as device tensors by
 * their strides (BHSD, BSHD, …), fp16 or bf16, all four of one type; LSE
 * fp32 [B, Hq, Sq], contiguous. Head dims 32, 64, 96, 128, 256. @p workspace: none
 * (attn10_workspace_bytes() is 0). Launches on @p stream and returns 0, 2
 * (the problem or the descriptor is refused) or 3 (bf16 on code built for
 * compute_75, too little shared memory, a CUDA call failed), with
 * attn_last_error() set.
 */
extern "C" int attn10_forward(const attn_params *pp, void *workspace, struct CUstream_st *stream)
{
    static const attn_caps caps = CAPS10;
    char msg[256];
    int rc;
    (void)workspace;
    if (!pp)
        return attn_set_error(ATTN_EXIT_BAD_INPUT, "step 10: no attn_params");
    if ((rc = attn_params_check(pp, &caps, "10", msg, sizeof msg)))
        return attn_set_error(rc, "%s", msg);
    if (!pp->q.data || !pp->k.data || !pp->v.data || !pp->o.data || !pp->lse)
        return attn_set_error(ATTN_EXIT_BAD_INPUT, "step 10: a NULL tensor (Q, K, V, O and LSE are required)");
    const int bf16 = pp->q.dtype == ATTN_BF16;
    switch (pp->prob.head_dim) {
    case 32: return bf16 ? launch10<32, true>(pp, stream) : launch10<32, false>(pp, stream);
    case 64: return bf16 ? launch10<64, true>(pp, stream) : launch10<64, false>(pp, stream);
    case 96: return bf16 ? launch10<96, true>(pp, stream) : launch10<96, false>(pp, stream);
    case 128: return bf16 ? launch10<128, true>(pp, stream) : launch10<128, false>(pp, stream);
    default: return bf16 ? launch10<256, true>(pp, stream) : launch10<256, false>(pp, stream);
    }
}

/** Step 10's descriptor: what the driver and the test suites run. */
extern "C" const attn_step attn10_step = {
    "10", "tc_pipeline", 1, NULL, NULL, attn10_workspace_bytes, NULL, attn_gpu_run, CAPS10,
    attn10_forward, ATTN_KIND_FORWARD, NULL, NULL, NULL};

#ifdef ATTN_STEP_MAIN
int main(int argc, char **argv) { return attn_step_main(argc, argv, &attn10_step); }
#endif
