/**
 * @file steps/03_tiled_cpu/attention.c
 * @brief Step 03: tiled FlashAttention (Algorithm 1 of the paper) on the CPU.
 *
 * What it adds over step 02: tiles. Q is cut into Tr blocks of Br rows, K
 * and V into Tc blocks of Bc rows. A K/V block is loaded once and used by
 * every Q block (the outer loop of Algorithm 1), instead of streaming all
 * of K and V past every query row; the online softmax of step 02 now runs
 * a block at a time (m̃_ij, ℓ̃_ij, P̃_ij), with O_i, ℓ_i and m_i kept in
 * main memory between K/V blocks, exactly as the paper keeps them in HBM.
 * It writes LSE = m + ln(ℓ). Extra memory: the tiles, and m and ℓ for one
 * head: O(N), not O(N²).
 *
 * Run:   build/bin/03_tiled_cpu --seq 1024 --dim 64 --heads 4 --causal
 * Limits: single-threaded fp32; on a CPU "SRAM" is the L1/L2 cache, and
 * the explicit tile copies stand for the loads a GPU kernel makes.
 */
#include "common.h"

#include <math.h>
#include <string.h>

/**
 * Tile sizes. The working set of one inner iteration is Q_i (Br·D), K_j and
 * V_j (2·Bc·D) and S_ij (Br·Bc) floats: at Br = Bc = 32, D = 64 that is
 * 8 + 16 + 4 = 28 KB, inside a 32–48 KB L1 data cache; at D = 128, 52 KB,
 * inside L2. The paper picks Bc = ceil(M / 4d), Br = min(Bc, d) for an SRAM
 * of M floats; with M = 32 KB / 4 B = 8192 floats and d = 64 that gives
 * Bc = 32, Br = 32.
 */
#define Br 32 /**< rows of a Q block */
#define Bc 32 /**< rows of a K/V block */

/** max that propagates NaN: a NaN score must poison its row (fmaxf drops it) */
static float nan_maxf(float a, float b) { return (isnan(a) || a > b) ? a : b; }

/* q: [B, Hq, Sq, D]; k, v: [B, Hkv, Sk, D]; o: [B, Hq, Sq, D]; lse: [B, Hq, Sq] */
int attn03_forward(const attn_problem *p, const float *q, const float *k,
                   const float *v, float *o, float *lse)
{
    /* an invalid problem or a NULL tensor: exit 2 (attn_last_error() says why) */
    if (attn_entry_check(p, (const void *const[]){q, k, v, o, lse}, 5))
        return ATTN_EXIT_BAD_INPUT;
    const int Sq = p->seqlen_q, Sk = p->seqlen_k, D = p->head_dim;
    const int Tr = (Sq + Br - 1) / Br, Tc = (Sk + Bc - 1) / Bc;
    const float scale = attn_scale(p);
    /* "on-chip" tiles, and m, ℓ for one head in "HBM" (Algorithm 1, line 2) */
    float *Qi = attn_alloc((size_t)Br * D * sizeof *Qi);
    float *Kj = attn_alloc((size_t)Bc * D * sizeof *Kj);
    float *Vj = attn_alloc((size_t)Bc * D * sizeof *Vj);
    float *Sij = attn_alloc((size_t)Br * Bc * sizeof *Sij);
    float *m = attn_alloc((size_t)Sq * sizeof *m);
    float *l = attn_alloc((size_t)Sq * sizeof *l);
    if (!Qi || !Kj || !Vj || !Sij || !m || !l) {
        attn_free(Qi), attn_free(Kj), attn_free(Vj), attn_free(Sij), attn_free(m), attn_free(l);
        return ATTN_EXIT_RESOURCE;
    }
    for (int b = 0; b < p->batch; b++)
        for (int h = 0; h < p->heads_q; h++) {
            size_t bh = (size_t)b * p->heads_q + h;
            const float *Q = q + bh * Sq * D;
            const float *K = k + ((size_t)b * p->heads_kv + attn_kv_head(p, h)) * Sk * D;
            const float *V = v + ((size_t)b * p->heads_kv + attn_kv_head(p, h)) * Sk * D;
            float *O = o + bh * Sq * D, *L = lse + bh * Sq;

            /* line 2: O = 0, ℓ = 0, m = -inf */
            memset(O, 0, (size_t)Sq * D * sizeof *O);
            for (int i = 0; i < Sq; i++)
                l[i] = 0, m[i] = -INFINITY;

            for (int j = 0; j < Tc; j++) {            /* line 5: outer loop over K/V blocks */
                int j0 = j * Bc, bc = Sk - j0 < Bc ? Sk - j0 : Bc;
                /* line 6: load K_j, V_j. K_j goes in transposed (Kj[d][c]), so
                 * that the inner loop of S_ij below runs over keys with unit
                 * stride and vectorizes: the one layout choice a tile copy buys */
                for (int c = 0; c < bc; c++)
                    for (int d = 0; d < D; d++)
                        Kj[(size_t)d * Bc + c] = K[(size_t)(j0 + c) * D + d];
                memcpy(Vj, V + (size_t)j0 * D, (size_t)bc * D * sizeof *Vj);
                for (int i = 0; i < Tr; i++) {        /* line 7: inner loop over Q blocks */
                    int i0 = i * Br, br = Sq - i0 < Br ? Sq - i0 : Br;
                    if (attn_keys_visible(p, i0 + br - 1) <= j0)
                        continue; /* causal: no row of this Q block sees this K block */
                    memcpy(Qi, Q + (size_t)i0 * D, (size_t)br * D * sizeof *Qi); /* line 8 */
                    for (int r = 0; r < br; r++) {
                        /* keys of this block row r sees (the causal mask is a prefix) */
                        int nk = attn_keys_visible(p, i0 + r) - j0;
                        nk = nk < 0 ? 0 : (nk > bc ? bc : nk);
                        if (nk == 0)
                            continue;
                        float *s = Sij + (size_t)r * Bc;
                        /* line 9: S_ij = scale · Q_i K_jᵀ */
                        for (int c = 0; c < nk; c++)
                            s[c] = 0;
                        for (int d = 0; d < D; d++) { /* nk dot products at once */
                            float qd = Qi[(size_t)r * D + d];
                            for (int c = 0; c < nk; c++)
                                s[c] += qd * Kj[(size_t)d * Bc + c];
                        }
                        for (int c = 0; c < nk; c++)
                            s[c] *= scale;
                        /* line 10: m̃_ij = rowmax(S_ij), P̃_ij = exp(S_ij − m̃_ij), ℓ̃_ij = rowsum(P̃_ij) */
                        float mt = -INFINITY, lt = 0;
                        for (int c = 0; c < nk; c++)
                            mt = nan_maxf(mt, s[c]);
                        /* the -inf guard (step 02): a block whose scores are all -inf has mt = -inf */
                        float mt_ref = mt == -INFINITY ? 0.0f : mt;
                        for (int c = 0; c < nk; c++)
                            lt += (s[c] = expf(s[c] - mt_ref));
                        /* line 11: m_new = max(m_i, m̃_ij), ℓ_new = e^(m_i−m_new) ℓ_i + e^(m̃_ij−m_new) ℓ̃_ij */
                        float mi = m[i0 + r], m_new = nan_maxf(mt, mi);
                        float m_ref = m_new == -INFINITY ? 0.0f : m_new;
                        float a = expf(mi - m_ref), bt = expf(mt - m_ref);
                        float l_new = a * l[i0 + r] + bt * lt;
                        /* line 12: O_i = diag(ℓ_new)⁻¹ (diag(ℓ_i) e^(m_i−m_new) O_i + e^(m̃_ij−m_new) P̃_ij V_j) */
                        float *Or = O + (size_t)(i0 + r) * D, keep = l[i0 + r] * a;
                        for (int d = 0; d < D; d++)
                            Or[d] *= keep;
                        for (int c = 0; c < nk; c++) { /* row of V_j at a time: contiguous */
                            float w = bt * s[c];
                            for (int d = 0; d < D; d++)
                                Or[d] += w * Vj[(size_t)c * D + d];
                        }
                        for (int d = 0; d < D; d++)
                            Or[d] = l_new != 0 ? Or[d] / l_new : 0.0f; /* 0: every score -inf so far */
                        /* line 13: ℓ_i = ℓ_new, m_i = m_new */
                        l[i0 + r] = l_new, m[i0 + r] = m_new;
                    }
                }
            }
            /* LSE = m + ln(ℓ); a row that saw no key keeps O = 0 and gets -inf */
            for (int i = 0; i < Sq; i++)
                L[i] = l[i] > 0 || isnan(l[i]) ? m[i] + logf(l[i]) : -INFINITY;
        }
    attn_free(Qi), attn_free(Kj), attn_free(Vj), attn_free(Sij), attn_free(m), attn_free(l);
    return 0;
}

/** Step 03's descriptor: what the driver and the test suites run. */
const attn_step attn03_step = {"03", "tiled_cpu", 0, attn03_forward, NULL, NULL, NULL,
                               attn_cpu_run,
                               {1u << ATTN_F32, 0, 1, 256, NULL}, NULL,
                               ATTN_KIND_FORWARD, NULL, NULL, NULL};

#ifdef ATTN_STEP_MAIN
int main(int argc, char **argv) { return attn_step_main(argc, argv, &attn03_step); }
#endif
