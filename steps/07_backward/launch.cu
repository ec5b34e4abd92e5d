/**
 * @file steps/07_backward/launch.cu
 * @brief Step 07: the FlashAttention-2 backward — P rebuilt from Q, K and
 * the forward's LSE, grid over (K/V block, batch·Hkv), no N×N buffer; its
 * launch and entry point (the kernels: kernel.cuh).
 *
 * **What this step adds over step 06.** Gradients: the forward saved O and
 * LSE but not P; the kernels (kernel.cuh, the idea) rebuild P block by
 * block from Q, K and LSE — more FLOPs, far fewer bytes
 * (notes/07_backward.md). This file is their plumbing: tiles, shared
 * memory, the two dQ modes, the entry point attn07_backward() and the
 * step's descriptor.
 *
 * The loop order is the forward's turned inside out: a block owns a K/V
 * block, so dK_j and dV_j stay in registers for the whole loop and need no
 * atomics (GQA: the query heads that share a K/V head are summed inside the
 * block, in a fixed order). dQ_i receives a piece from every K/V block, so
 * it is accumulated with atomicAdd: fast, but float addition is not
 * associative and the order in which blocks arrive varies, so dQ differs in
 * the last bits from run to run. `--deterministic` computes dQ instead in a
 * second kernel (dq_kernel, grid over (Q block, batch·Hq)) that walks the
 * K/V blocks in order and recomputes S, P, dP and dS a second time: no
 * atomics, bitwise reproducible, about 40% more FLOPs.
 *
 * **Run it.**
 *
 *     make && build/bin/07_backward --heads 8 --seq 1023 --dim 64 --causal
 *     build/bin/07_backward --heads 32 --seq 4096 --dim 64 --bench --no-check
 *     build/bin/test_gpu_07            the suite: against the stored-P cuBLAS
 *                                      backward (standard_cublas.cu) and the
 *                                      float64 oracle; determinism
 *     build/bin/test_gpu_07 --bench    the trade-off table
 *
 * **Limits.** fp32 on CUDA cores, like step 06. Head dims up to 128 (tiles
 * of 32, 64, 128 columns; other D zero-padded); D > 128 is refused (exit 2).
 * Br = 32, Bc = 64 (dq_kernel: Bc = 32 at D = 128), 256 threads; every
 * product reads shared memory as float4 (S_ij, dP_ij: 5.3 FMAs per load;
 * dV_j, dK_j: 8; dQ_i: 4 at D = 64), P_ij and dS_ij are stored key-major so
 * dV/dK read 4 query rows of a key at once. Shared memory of the main
 * kernel: 45 KiB at D = 32, 69 KiB at D = 64, 117 KiB at D = 128 (sm_75's
 * 64 KiB: D <= 32 only, exit 3 above; one block per SM at D = 128 on an
 * H100; dq_kernel's 75 KiB there fits two). One atomicAdd per dQ element per
 * K/V block in the default mode. NaN in Q, K or V reaches exactly the
 * gradient entries the float64 oracle's does: masked P and dS are chosen,
 * not computed, and in the causal tiles the diagonal crosses
 * (tile_masked()) the products skip the (row, key) pairs the row does not
 * see instead of multiplying by their zero (0 · NaN = NaN). Measured on an
 * H100: notes/07_backward.md.
 */
#include "common.h"
#include "cuda_check.h"
#include "kernel.cuh"

/** δ: B·Hq·Sq floats, rounded up to 256 bytes. */
extern "C" size_t attn07_workspace_bytes(const attn_problem *p)
{
    return (attn_lse_elems(p) * sizeof(float) + 255) / 256 * 256;
}

/** What step 07 refuses: head dims over 128 (its widest tile). */
static int supports07(const attn_problem *p, char *msg, size_t msg_len)
{
    if (p->head_dim < 1 || p->head_dim > 128) {
        snprintf(msg, msg_len, "--dim %d: step 07 supports head dims 1..128", p->head_dim);
        return ATTN_EXIT_BAD_INPUT;
    }
    return 0;
}

/** Shared memory of a kernel at tile width D with K/V blocks of BC rows, in
 * bytes (both kernels use the same layout; dq_kernel leaves P_ijᵀ unused). */
template <int D, int BC>
static size_t smem07()
{
    return (size_t)(2 * BC * (D + 4) + 2 * BR * (D + 4) + 2 * BC * (BR + 4) + 2 * BR) *
           sizeof(float);
}

/** Launch step 07's kernels at tile width @p D: delta_kernel (δ into
 * @p delta), then either bwd_kv_kernel with atomic dQ (dq zeroed first), or,
 * when @p deterministic, bwd_kv_kernel without dQ followed by dq_kernel.
 * Raises the shared-memory limit of bwd_kv_kernel and dq_kernel past the
 * default 48 KB; refuses a grid of more than 2^31 − 1 blocks. */
template <int D>
static int launch07(const attn_problem *p, const float *q, const float *k, const float *v,
                    const float *o, const float *lse, const float *dout, float *dq, float *dk,
                    float *dv, int deterministic, float *delta, cudaStream_t stream)
{
    const int sq = p->seqlen_q, sk = p->seqlen_k, d = p->head_dim;
    constexpr int BC = Cols<D>::BC_KV;
    const int tc = (sk + BC - 1) / BC, tr = (sq + BR - 1) / BR;
    const size_t rows = attn_lse_elems(p), smem = smem07<D, BC>();
    const size_t smem_dq = smem07<D, Cols<D>::BC_DQ>();
    const long long kv_blocks = (long long)p->batch * p->heads_kv * tc;
    const long long q_blocks = (long long)p->batch * p->heads_q * tr;
    const float scale = attn_scale(p);
    if (kv_blocks > 0x7fffffffLL || q_blocks > 0x7fffffffLL)
        return attn_set_error(ATTN_EXIT_BAD_INPUT, "step 07 grid exceeds 2^31 - 1 blocks");
    /* preprocess: δ = rowsum(dO ∘ O) */
    delta_kernel<<<(unsigned)((rows + NT / 32 - 1) / (NT / 32)), NT, 0, stream>>>(o, dout, delta,
                                                                                rows, d);
    CUDA_CHECK_LAUNCH();
    if (deterministic) {
        CUDA_CHECK(cudaFuncSetAttribute(bwd_kv_kernel<D, false>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        bwd_kv_kernel<D, false><<<(unsigned)kv_blocks, NT, smem, stream>>>(
            q, k, v, dout, lse, delta, dq, dk, dv, p->heads_q, p->heads_kv, sq, sk, d, p->causal,
            scale, tc);
        CUDA_CHECK_LAUNCH();
        CUDA_CHECK(cudaFuncSetAttribute(dq_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        (int)smem_dq));
        dq_kernel<D><<<(unsigned)q_blocks, NT, smem_dq, stream>>>(
            q, k, v, dout, lse, delta, dq, p->heads_q, p->heads_kv, sq, sk, d, p->causal, scale,
            tr);
        CUDA_CHECK_LAUNCH();
    } else {
        CUDA_CHECK(cudaMemsetAsync(dq, 0, attn_q_elems(p) * sizeof(float), stream));
        CUDA_CHECK(cudaFuncSetAttribute(bwd_kv_kernel<D, true>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        bwd_kv_kernel<D, true><<<(unsigned)kv_blocks, NT, smem, stream>>>(
            q, k, v, dout, lse, delta, dq, dk, dv, p->heads_q, p->heads_kv, sq, sk, d, p->causal,
            scale, tc);
        CUDA_CHECK_LAUNCH();
    }
    return 0;
}

/*
 * q, o, dout, dq: [B, Hq, Sq, D]   k, v, dk, dv: [B, Hkv, Sk, D]   lse: [B, Hq, Sq]
 * workspace: δ [B, Hq, Sq] (attn07_workspace_bytes()).
 */
extern "C" int attn07_backward(const attn_problem *p, const float *q, const float *k,
                               const float *v, const float *o, const float *lse,
                               const float *dout, float *dq, float *dk, float *dv,
                               int deterministic, void *workspace, struct CUstream_st *stream)
{
    const int d = p->head_dim;
    const int D = d <= 32 ? 32 : d <= 64 ? 64 : 128;
    int dev = 0, optin = 0;
    if (d < 1 || d > 128 || !workspace)
        return ATTN_EXIT_BAD_INPUT;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    /* the main kernel's is the larger */
    const size_t smem = D == 32 ? smem07<32, 64>() : D == 64 ? smem07<64, 64>() : smem07<128, 64>();
    if (smem > (size_t)optin)
        return attn_set_error(ATTN_EXIT_RESOURCE,
                              "step 07 needs %zu bytes of shared memory per block at D = %d; "
                              "this device offers %d", smem, d, optin);
    float *delta = (float *)workspace;
    if (D == 32)
        return launch07<32>(p, q, k, v, o, lse, dout, dq, dk, dv, deterministic, delta, stream);
    if (D == 64)
        return launch07<64>(p, q, k, v, o, lse, dout, dq, dk, dv, deterministic, delta, stream);
    return launch07<128>(p, q, k, v, o, lse, dout, dq, dk, dv, deterministic, delta, stream);
}

/** Step 07's descriptor: a backward; the forward it differentiates is step 06. */
extern "C" const attn_step attn07_step = {
    "07", "backward", 1, NULL, NULL, attn07_workspace_bytes, supports07, NULL, {0, 0, 0, 0, NULL},
    NULL, ATTN_KIND_BACKWARD, &attn06_step, attn07_backward, attn_bwd_gpu_run};

#ifdef ATTN_STEP_MAIN
int main(int argc, char **argv) { return attn_step_main(argc, argv, &attn07_step); }
#endif
