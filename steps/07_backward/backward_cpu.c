/**
 * @file steps/07_backward/backward_cpu.c
 * @brief Step 07 on the CPU: the FlashAttention-2 backward, tiled like
 * step 03, P rebuilt from Q, K and the saved LSE.
 *
 * The same algorithm as the kernels in kernel.cuh, written as plain loops
 * so that CI (no GPU) runs it and a learner can step through it:
 *
 *     δ_i = rowsum(dO_i ∘ O_i)                    one float per query row
 *     for each K/V head, for each K/V block j:    dK_j = dV_j = 0 (on "chip")
 *         for each query head h sharing it (GQA), for each Q block i:
 *             S_ij  = scale · Q_i K_jᵀ            recomputed, never stored
 *             P_ij  = exp(S_ij − LSE_i)           recomputed from the LSE
 *             dV_j += P_ijᵀ dO_i
 *             dP_ij = dO_i V_jᵀ
 *             dS_ij = P_ij ∘ (dP_ij − δ_i)
 *             dK_j += scale · dS_ijᵀ Q_i
 *             dQ_i += scale · dS_ij K_j           straight to main memory
 *         write dK_j, dV_j once
 *
 * Extra memory: the tiles and δ for the query heads of one K/V head: O(N),
 * against step 01's three N×N matrices (P, dP, dS).
 *
 * Limits: single-threaded fp32. Rows that see no key (LSE = −inf) give
 * zero gradient rows. A NaN in Q, K or V reaches exactly the gradient
 * entries the float64 oracle's does (masked products are skipped, never
 * multiplied by zero); the suite checks it. P is rebuilt from an fp32 LSE:
 * at logits of magnitude 1e4 it carries that LSE's rounding (notes/07).
 */
#include "common.h"

#include <math.h>
#include <string.h>

#define Br 32 /**< rows of a Q block */
#define Bc 32 /**< rows of a K/V block */

/*
 * q, o, dout, dq: [B, Hq, Sq, D]   k, v, dk, dv: [B, Hkv, Sk, D]
 * lse: [B, Hq, Sq] (the forward's, natural log, scale included)
 */
int attn07_backward_cpu(const attn_problem *p, const float *q, const float *k,
                        const float *v, const float *o, const float *lse,
                        const float *dout, float *dq, float *dk, float *dv)
{
    /* an invalid problem or a NULL tensor: exit 2 (attn_last_error() says why) */
    if (attn_entry_check(p, (const void *const[]){q, k, v, o, lse, dout, dq, dk, dv}, 9))
        return ATTN_EXIT_BAD_INPUT;
    const int Sq = p->seqlen_q, Sk = p->seqlen_k, D = p->head_dim;
    const int g = p->heads_q / p->heads_kv; /* query heads per K/V head */
    const int Tr = (Sq + Br - 1) / Br, Tc = (Sk + Bc - 1) / Bc;
    const float scale = attn_scale(p);
    /* "on-chip" tiles: K_j twice (transposed for S_ij, row-major for dQ_i),
     * V_j transposed (for dP_ij), the dK_j, dV_j accumulators, one row of
     * P_ij and dS_ij; δ for the g query heads of one K/V head in "HBM". */
    float *KjT = attn_alloc((size_t)D * Bc * sizeof *KjT);
    float *Kj = attn_alloc((size_t)Bc * D * sizeof *Kj);
    float *VjT = attn_alloc((size_t)D * Bc * sizeof *VjT);
    float *dKj = attn_alloc((size_t)Bc * D * sizeof *dKj);
    float *dVj = attn_alloc((size_t)Bc * D * sizeof *dVj);
    float *Pr = attn_alloc((size_t)Bc * sizeof *Pr);
    float *dSr = attn_alloc((size_t)Bc * sizeof *dSr);
    float *delta = attn_alloc((size_t)g * Sq * sizeof *delta);
    int rc = 0;
    if (!KjT || !Kj || !VjT || !dKj || !dVj || !Pr || !dSr || !delta) {
        rc = ATTN_EXIT_RESOURCE;
        goto out;
    }
    /* dQ is accumulated over K/V blocks: start from zero */
    memset(dq, 0, attn_q_elems(p) * sizeof *dq);

    for (int b = 0; b < p->batch; b++)
        for (int hk = 0; hk < p->heads_kv; hk++) {
            size_t kvh = (size_t)b * p->heads_kv + hk;
            const float *K = k + kvh * Sk * D, *V = v + kvh * Sk * D;
            /* preprocess: δ_i = rowsum(dO_i ∘ O_i) for the g query heads
             * h = hk·g + t (the heads that read this K/V head, attn_kv_head) */
            for (int t = 0; t < g; t++) {
                size_t bh = (size_t)b * p->heads_q + (size_t)hk * g + t;
                for (int i = 0; i < Sq; i++) {
                    const float *Oi = o + (bh * Sq + i) * D, *dOi = dout + (bh * Sq + i) * D;
                    float acc = 0;
                    for (int d = 0; d < D; d++)
                        acc += dOi[d] * Oi[d];
                    delta[(size_t)t * Sq + i] = acc;
                }
            }
            for (int j = 0; j < Tc; j++) { /* outer loop: K/V blocks */
                int j0 = j * Bc, bc = Sk - j0 < Bc ? Sk - j0 : Bc;
                /* load K_j (both layouts), V_jᵀ; zero dK_j, dV_j */
                memcpy(Kj, K + (size_t)j0 * D, (size_t)bc * D * sizeof *Kj);
                for (int c = 0; c < bc; c++)
                    for (int d = 0; d < D; d++) {
                        KjT[(size_t)d * Bc + c] = K[(size_t)(j0 + c) * D + d];
                        VjT[(size_t)d * Bc + c] = V[(size_t)(j0 + c) * D + d];
                    }
                memset(dKj, 0, (size_t)Bc * D * sizeof *dKj);
                memset(dVj, 0, (size_t)Bc * D * sizeof *dVj);
                for (int t = 0; t < g; t++) { /* GQA: every query head of this K/V head */
                    size_t bh = (size_t)b * p->heads_q + (size_t)hk * g + t;
                    const float *Q = q + bh * Sq * D, *dO = dout + bh * Sq * D;
                    const float *L = lse + bh * Sq, *dl = delta + (size_t)t * Sq;
                    float *dQ = dq + bh * Sq * D;
                    for (int i = 0; i < Tr; i++) { /* inner loop: Q blocks */
                        int i0 = i * Br, br = Sq - i0 < Br ? Sq - i0 : Br;
                        if (attn_keys_visible(p, i0 + br - 1) <= j0)
                            continue; /* causal: no row of Q_i sees K_j */
                        for (int r = 0; r < br; r++) {
                            /* keys of this block row i0 + r sees (a prefix) */
                            int nk = attn_keys_visible(p, i0 + r) - j0;
                            nk = nk < 0 ? 0 : (nk > bc ? bc : nk);
                            float lse_r = L[i0 + r];
                            if (nk == 0 || lse_r == -INFINITY)
                                continue; /* sees no key here: adds nothing */
                            const float *Qr = Q + (size_t)(i0 + r) * D;
                            const float *dOr = dO + (size_t)(i0 + r) * D;
                            /* S_ij = scale · Q_i K_jᵀ and dP_ij = dO_i V_jᵀ, one row,
                             * nk dot products at once (unit stride: vectorizes) */
                            for (int c = 0; c < nk; c++)
                                Pr[c] = dSr[c] = 0;
                            for (int d = 0; d < D; d++) {
                                float qd = Qr[d], dod = dOr[d];
                                for (int c = 0; c < nk; c++) {
                                    Pr[c] += qd * KjT[(size_t)d * Bc + c];
                                    dSr[c] += dod * VjT[(size_t)d * Bc + c];
                                }
                            }
                            /* the recomputation: P_ij = exp(S_ij − LSE_i), no max,
                             * no sum — the forward's LSE already holds both;
                             * then dS_ij = P_ij ∘ (dP_ij − δ_i) */
                            for (int c = 0; c < nk; c++) {
                                Pr[c] = expf(Pr[c] * scale - lse_r);
                                dSr[c] = Pr[c] * (dSr[c] - dl[i0 + r]) * scale;
                            }
                            /* dV_j += P_ijᵀ dO_i, dK_j += scale · dS_ijᵀ Q_i
                             * (scale already folded into dSr) */
                            for (int c = 0; c < nk; c++) {
                                float pc = Pr[c], ds = dSr[c];
                                float *dVc = dVj + (size_t)c * D, *dKc = dKj + (size_t)c * D;
                                for (int d = 0; d < D; d++) {
                                    dVc[d] += pc * dOr[d];
                                    dKc[d] += ds * Qr[d];
                                }
                            }
                            /* dQ_i += scale · dS_ij K_j, in main memory (the kernel's atomicAdd) */
                            float *dQr = dQ + (size_t)(i0 + r) * D;
                            for (int c = 0; c < nk; c++) {
                                float ds = dSr[c];
                                const float *Kc = Kj + (size_t)c * D;
                                for (int d = 0; d < D; d++)
                                    dQr[d] += ds * Kc[d];
                            }
                        }
                    }
                }
                /* write dK_j, dV_j once (a block no query row sees writes zeros) */
                memcpy(dk + (kvh * Sk + j0) * D, dKj, (size_t)bc * D * sizeof *dKj);
                memcpy(dv + (kvh * Sk + j0) * D, dVj, (size_t)bc * D * sizeof *dVj);
            }
        }
out:
    attn_free(KjT), attn_free(Kj), attn_free(VjT), attn_free(dKj), attn_free(dVj);
    attn_free(Pr), attn_free(dSr), attn_free(delta);
    return rc;
}
