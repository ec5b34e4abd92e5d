/**
 * @file steps/08_tc_mma/launch.cu
 * @brief Step 08: tensor cores with `mma.sync` (fp16/bf16 operands, fp32
 * accumulators); its tile choice, the sm_75 path, the launch and the entry
 * point.
 *
 * **What this step adds over step 06.** The same FlashAttention-2 loop,
 * with both products on tensor cores: `mma.sync.aligned.m16n8k16` for
 * S = QKᵀ and O += PV, the online softmax on the accumulator fragments
 * (the row max and sum over the 4 lanes that share a fragment row), base 2
 * with the scale folded into log2 e, and P rounded to fp16/bf16 in
 * registers and used as the A operand of the second product, never through
 * shared memory. The kernel, the idea, is in kernel.cuh; the fragment
 * wrappers in common/device/mma.cuh. This file is its plumbing.
 *
 * It is also the first step on the descriptor of typed, strided tensors
 * (attn_params): fp16 or bf16 in and out, LSE fp32, BHSD or BSHD by the
 * strides, no copy.
 *
 * **Run it.**
 *
 *     make && build/bin/08_tc_mma --heads 8 --seq 1023 --dim 64 --causal
 *     build/bin/08_tc_mma --dtype bf16 --layout bshd --heads 8 --kv-heads 2 --seq 203 --dim 128
 *     build/bin/08_tc_mma --batch 4 --heads 32 --seq 4096 --dim 128 --causal --bench --no-check
 *
 * **Tiles.** Bc = 64 keys per K/V block; each warp owns 16 query rows;
 * the number of warps, so Br, is chosen here at run time (one kernel per
 * head dim and type, whatever the warps):
 *
 * | path | D | warps | Br × Bc | shared memory |
 * |---|---|---|---|---|
 * | sm_80+ | 32, 64, 128 | 4 | 64 × 64 | 15, 27, 51 KiB |
 * | sm_75 | 32, 64, 128 | 4 | 64 × 64 | 15, 27, 51 KiB (each checked ≤ 64 KiB at compile time) |
 *
 * The two rows are one tile today. On the H200, 8 warps (Br = 128)
 * measured slower at D = 64 and 10-11% faster at D = 128, where it needs
 * 68 KiB (more than sm_75 has); that faster tile is not yet the committed
 * one, because the suite has not run with it (notes/08_tc_mma.md, how the
 * tile was chosen). The rows are kept apart because the sm_75 one is a
 * limit (64 KiB) and the other a measurement.
 *
 * Registers per thread and spills (zero) are in notes/08_tc_mma.md, from
 * `-Xptxas -v`.
 *
 * **Turing.** sm_75 has fp16 tensor cores but no m16n8k16 and no bf16:
 * there the fp16 kernel runs two m16n8k8 per product (mma.cuh), and bf16 is
 * exit 3. Which code the driver loaded decides, not the device: the host
 * asks cudaFuncGetAttributes() for the kernel's ptxVersion, and code from
 * compute_75 PTX (a Turing build, or that PTX JIT-compiled on a later GPU)
 * takes the sm_75 tiles and refuses bf16. So does a GPU newer than every
 * architecture the build names (no SASS fits; the compute_75 PTX is JIT-
 * compiled): build for it to get the m16n8k16 path there.
 *
 * **Limits.** Head dims 32, 64 and 128 only (exit 2 otherwise). Operands
 * reach registers by plain 32-bit and 16-bit shared-memory loads (ldmatrix
 * is step 09); K_j and V_j are loaded between two barriers (cp.async
 * pipelining is step 10). A masked block whose V holds ±inf or NaN takes a
 * slow path that adds those values to the rows that see them (an infinity
 * as if its P were positive).
 */
#include <stdint.h>

#include "common.h"
#include "cuda_check.h"
#include "kernel.cuh"

/** The head dims step 08 compiles, 0-terminated (its caps). */
static const int dims08[] = {32, 64, 128, 0};

/** No workspace: m_i, l_i and O_i live in registers. */
extern "C" size_t attn08_workspace_bytes(const attn_problem *p)
{
    (void)p;
    return 0;
}

/** Shared memory of fa2_kernel<D, …> with @p nw warps, in bytes: Q_i, K_j, V_j in 16 bits. */
static constexpr size_t smem08(int D, int nw)
{
    return (size_t)(nw * WARP_ROWS + 2 * BC) * (D + 8) * 2;
}

/** Warps per block on sm_75 (every head dim): tiles within its 64 KB. */
#define NW_SM75 4
static_assert(smem08(32, NW_SM75) <= 64 * 1024 && smem08(64, NW_SM75) <= 64 * 1024 &&
                  smem08(128, NW_SM75) <= 64 * 1024,
              "the sm_75 tiles must fit 64 KB of shared memory");

/** Warps per block on sm_80 and later, by head dim (the table in the file
 *  comment); ATTN08_NW_OVERRIDE, defined at compile time, replaces it (to
 *  measure other tiles, notes/08_tc_mma.md). */
static int nw08(int D, int sm75)
{
    (void)D;
    if (sm75)
        return NW_SM75;
#ifdef ATTN08_NW_OVERRIDE
    return ATTN08_NW_OVERRIDE;
#else
    return 4;
#endif
}

/** Launch fa2_kernel<D, BF16> for @p pp: the path from the code the driver
 *  loaded (its ptxVersion), then the tile, the shared-memory limit, the grid. */
template <int D, bool BF16>
static int launch08(const attn_params *pp, cudaStream_t stream)
{
    const attn_problem *p = &pp->prob;
    cudaFuncAttributes fa;
    int dev = 0, optin = 0;
    CUDA_CHECK(cudaFuncGetAttributes(&fa, fa2_kernel<D, BF16>));
    const int sm75 = fa.ptxVersion < 80; /* compute_75 code: m16n8k8, no bf16 */
    if (sm75 && BF16)
        return attn_set_error(ATTN_EXIT_RESOURCE,
                              "step 08: bf16 needs sm_80 tensor cores; the code loaded for this "
                              "device is compute_%d (fp16 only)",
                              fa.ptxVersion);
    const int nw = nw08(D, sm75);
    const size_t smem = smem08(D, nw);
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    if (smem > (size_t)optin)
        return attn_set_error(ATTN_EXIT_RESOURCE,
                              "step 08 needs %zu bytes of shared memory per block at D = %d; "
                              "this device offers %d",
                              smem, D, optin);
    const int tr = (p->seqlen_q + nw * WARP_ROWS - 1) / (nw * WARP_ROWS);
    const long long blocks = (long long)p->batch * p->heads_q * tr;
    if (blocks > 0x7fffffffLL)
        return attn_set_error(ATTN_EXIT_BAD_INPUT, "step 08 grid of %lld blocks exceeds 2^31 - 1",
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

/** Step 08's caps: fp16 and bf16, any strides, head dims 32, 64, 128. */
#define CAPS08 {(1u << ATTN_F16) | (1u << ATTN_BF16), ATTN_FEAT_STRIDES, 32, 128, dims08}

/**
 * Step 08's entry point: the FlashAttention-2 forward on tensor cores.
 * @p pp: Q, O [B, Hq, Sq, D] and K, V [B, Hkv, Sk, D] as device tensors by
 * their strides (BHSD, BSHD, …), fp16 or bf16, all four of one type; LSE
 * fp32 [B, Hq, Sq], contiguous. Head dims 32, 64, 128. @p workspace: none
 * (attn08_workspace_bytes() is 0). Launches on @p stream and returns 0, 2
 * (the problem or the descriptor is refused) or 3 (bf16 on code built for
 * compute_75, too little shared memory, a CUDA call failed), with
 * attn_last_error() set.
 */
extern "C" int attn08_forward(const attn_params *pp, void *workspace, struct CUstream_st *stream)
{
    static const attn_caps caps = CAPS08;
    char msg[256];
    int rc;
    (void)workspace;
    if (!pp)
        return attn_set_error(ATTN_EXIT_BAD_INPUT, "step 08: no attn_params");
    if ((rc = attn_params_check(pp, &caps, "08", msg, sizeof msg)))
        return attn_set_error(rc, "%s", msg);
    if (!pp->q.data || !pp->k.data || !pp->v.data || !pp->o.data || !pp->lse)
        return attn_set_error(ATTN_EXIT_BAD_INPUT, "step 08: a NULL tensor (Q, K, V, O and LSE are required)");
    const int bf16 = pp->q.dtype == ATTN_BF16;
    switch (pp->prob.head_dim) {
    case 32: return bf16 ? launch08<32, true>(pp, stream) : launch08<32, false>(pp, stream);
    case 64: return bf16 ? launch08<64, true>(pp, stream) : launch08<64, false>(pp, stream);
    default: return bf16 ? launch08<128, true>(pp, stream) : launch08<128, false>(pp, stream);
    }
}

/** Step 08's descriptor: what the driver and the test suites run. */
extern "C" const attn_step attn08_step = {
    "08", "tc_mma", 1, NULL, NULL, attn08_workspace_bytes, NULL, attn_gpu_run, CAPS08,
    attn08_forward, ATTN_KIND_FORWARD, NULL, NULL, NULL};

#ifdef ATTN_STEP_MAIN
int main(int argc, char **argv) { return attn_step_main(argc, argv, &attn08_step); }
#endif
