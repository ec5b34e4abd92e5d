/**
 * @file steps/09_tc_ldmatrix/launch.cu
 * @brief Step 09: `ldmatrix` and swizzled shared-memory tiles; its tile
 * choice, the sm_75 path, the launch and the entry point.
 *
 * **What this step adds over step 08.** The same tensor-core kernel, with
 * every operand fragment (Q's A, K's and V's B) loaded by `ldmatrix.x4`
 * (`.trans` for V) instead of 2 to 4 plain shared loads per mma, from
 * shared tiles without padding whose 16-byte chunks are XOR-swizzled by
 * row (common/device/swizzle.h), so that neither the 16-byte copies into
 * them nor the `ldmatrix` reads conflict on banks. The kernel, the idea,
 * is in kernel.cuh; `ldmatrix` and the swizzled tile in
 * common/device/ldmatrix.cuh. This file is its plumbing, step 08's with
 * the shared-memory size of unpadded tiles.
 *
 * **Run it.**
 *
 *     make && build/bin/09_tc_ldmatrix --heads 8 --seq 1023 --dim 64 --causal
 *     build/bin/09_tc_ldmatrix --dtype bf16 --layout bshd --heads 8 --kv-heads 2 --seq 203 --dim 128
 *     build/bin/09_tc_ldmatrix --batch 4 --heads 32 --seq 4096 --dim 128 --causal --bench --no-check
 *
 * **Tiles.** Bc = 64 keys per K/V block; each warp owns 16 query rows;
 * the number of warps, so Br, is chosen here at run time (one kernel per
 * head dim and type, whatever the warps):
 *
 * | path | D | warps | Br × Bc | shared memory |
 * |---|---|---|---|---|
 * | sm_80+ | 32, 64 | 4 | 64 × 64 | 12, 24 KiB |
 * | sm_80+ | 128 | 8 | 128 × 64 | 64 KiB |
 * | sm_75 | 32, 64, 128 | 4 | 64 × 64 | 12, 24, 48 KiB (each checked ≤ 64 KiB at compile time) |
 *
 * D = 128 takes 8 warps: without step 08's padding a 128-row tile is
 * 64 KiB (step 08's was 68), and on the H200 it is 18% faster than 4 warps
 * (notes/09_tc_ldmatrix.md, Tiles); at D ≤ 64 8 warps measured slower.
 *
 * Registers per thread and spills (zero) are in notes/09_tc_ldmatrix.md,
 * from `-Xptxas -v`.
 *
 * **Turing.** `ldmatrix` exists from sm_75: the sm_75 path is step 08's
 * (two m16n8k8 per product, fp16 only, bf16 exit 3), chosen the same way,
 * from the ptxVersion of the code the driver loaded.
 *
 * **Limits.** Head dims 32, 64 and 128 only (exit 2 otherwise). K_j and
 * V_j are loaded between two barriers (cp.async pipelining is step 10). A
 * masked block whose V holds ±inf or NaN takes step 08's slow path.
 */
#include <stdint.h>

#include "common.h"
#include "cuda_check.h"
#include "kernel.cuh"

/** The head dims step 09 compiles, 0-terminated (its caps). */
static const int dims09[] = {32, 64, 128, 0};

/** No workspace: m_i, l_i and O_i live in registers. */
extern "C" size_t attn09_workspace_bytes(const attn_problem *p)
{
    (void)p;
    return 0;
}

/** Shared memory of fa2_kernel<D, …> with @p nw warps, in bytes: Q_i, K_j, V_j in 16 bits. */
static constexpr size_t smem09(int D, int nw)
{
    return (size_t)(nw * WARP_ROWS + 2 * BC) * D * 2;
}

/** Warps per block on sm_75 (every head dim): tiles within its 64 KB. */
#define NW_SM75 4
static_assert(smem09(32, NW_SM75) <= 64 * 1024 && smem09(64, NW_SM75) <= 64 * 1024 &&
                  smem09(128, NW_SM75) <= 64 * 1024,
              "the sm_75 tiles must fit 64 KB of shared memory");

/** Warps per block on sm_80 and later, by head dim (the table in the file
 *  comment); ATTN09_NW_OVERRIDE, defined at compile time, replaces it (to
 *  measure other tiles). */
static int nw09(int D, int sm75)
{
    if (sm75)
        return NW_SM75;
#ifdef ATTN09_NW_OVERRIDE
    (void)D;
    return ATTN09_NW_OVERRIDE;
#else
    return D == 128 ? 8 : 4;
#endif
}
static_assert(smem09(128, 8) <= 64 * 1024, "8 warps at D = 128: 64 KiB, what the swizzle frees");

/** Launch fa2_kernel<D, BF16> for @p pp: the path from the code the driver
 *  loaded (its ptxVersion), then the tile, the shared-memory limit, the grid. */
template <int D, bool BF16>
static int launch09(const attn_params *pp, cudaStream_t stream)
{
    const attn_problem *p = &pp->prob;
    cudaFuncAttributes fa;
    int dev = 0, optin = 0;
    CUDA_CHECK(cudaFuncGetAttributes(&fa, fa2_kernel<D, BF16>));
    const int sm75 = fa.ptxVersion < 80; /* compute_75 code: m16n8k8, no bf16 */
    if (sm75 && BF16)
        return attn_set_error(ATTN_EXIT_RESOURCE,
                              "step 09: bf16 needs sm_80 tensor cores; the code loaded for this "
                              "device is compute_%d (fp16 only)",
                              fa.ptxVersion);
    const int nw = nw09(D, sm75);
    const size_t smem = smem09(D, nw);
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    if (smem > (size_t)optin)
        return attn_set_error(ATTN_EXIT_RESOURCE,
                              "step 09 needs %zu bytes of shared memory per block at D = %d; "
                              "this device offers %d",
                              smem, D, optin);
    const int tr = (p->seqlen_q + nw * WARP_ROWS - 1) / (nw * WARP_ROWS);
    const long long blocks = (long long)p->batch * p->heads_q * tr;
    if (blocks > 0x7fffffffLL)
        return attn_set_error(ATTN_EXIT_BAD_INPUT, "step 09 grid of %lld blocks exceeds 2^31 - 1",
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

/** Step 09's caps: fp16 and bf16, any strides, head dims 32, 64, 128. */
#define CAPS09 {(1u << ATTN_F16) | (1u << ATTN_BF16), ATTN_FEAT_STRIDES, 32, 128, dims09}

/**
 * Step 09's entry point: the FlashAttention-2 forward on tensor cores.
 * @p pp: Q, O [B, Hq, Sq, D] and K, V [B, Hkv, Sk, D] as device tensors by
 * their strides (BHSD, BSHD, …), fp16 or bf16, all four of one type; LSE
 * fp32 [B, Hq, Sq], contiguous. Head dims 32, 64, 128. @p workspace: none
 * (attn09_workspace_bytes() is 0). Launches on @p stream and returns 0, 2
 * (the problem or the descriptor is refused) or 3 (bf16 on code built for
 * compute_75, too little shared memory, a CUDA call failed), with
 * attn_last_error() set.
 */
extern "C" int attn09_forward(const attn_params *pp, void *workspace, struct CUstream_st *stream)
{
    static const attn_caps caps = CAPS09;
    char msg[256];
    int rc;
    (void)workspace;
    if (!pp)
        return attn_set_error(ATTN_EXIT_BAD_INPUT, "step 09: no attn_params");
    if ((rc = attn_params_check(pp, &caps, "09", msg, sizeof msg)))
        return attn_set_error(rc, "%s", msg);
    if (!pp->q.data || !pp->k.data || !pp->v.data || !pp->o.data || !pp->lse)
        return attn_set_error(ATTN_EXIT_BAD_INPUT, "step 09: a NULL tensor (Q, K, V, O and LSE are required)");
    const int bf16 = pp->q.dtype == ATTN_BF16;
    switch (pp->prob.head_dim) {
    case 32: return bf16 ? launch09<32, true>(pp, stream) : launch09<32, false>(pp, stream);
    case 64: return bf16 ? launch09<64, true>(pp, stream) : launch09<64, false>(pp, stream);
    default: return bf16 ? launch09<128, true>(pp, stream) : launch09<128, false>(pp, stream);
    }
}

/** Step 09's descriptor: what the driver and the test suites run. */
extern "C" const attn_step attn09_step = {
    "09", "tc_ldmatrix", 1, NULL, NULL, attn09_workspace_bytes, NULL, attn_gpu_run, CAPS09,
    attn09_forward, ATTN_KIND_FORWARD, NULL, NULL, NULL};

#ifdef ATTN_STEP_MAIN
int main(int argc, char **argv) { return attn_step_main(argc, argv, &attn09_step); }
#endif
