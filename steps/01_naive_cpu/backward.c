/**
 * @file steps/01_naive_cpu/backward.c
 * @brief Step 01's standard backward on the CPU: P, dP and dS materialized.
 *
 * The gradients of step 01's forward, the textbook way: P is rebuilt from
 * S with a softmax, and every N×N matrix of the chain rule is stored
 * (3·Sq·Sk floats per head). It is the fp32 baseline the backward step
 * (07) is measured against, as step 01's forward is for the forward steps.
 */
#include "common.h"

#include <math.h>
#include <string.h>

/** max that propagates NaN: a NaN score must poison its row (fmaxf drops it) */
static float nan_maxf(float a, float b) { return (isnan(a) || a > b) ? a : b; }

/*
 * Standard backward, everything materialized. With dO the upstream gradient:
 *     dV = Pᵀ dO,   dP = dO Vᵀ,   δ_i = Σ_j P_ij dP_ij,
 *     dS = P ∘ (dP − δ),   dQ = scale · dS K,   dK = scale · dSᵀ Q.
 * q, dout, dq: [B, Hq, Sq, D]; k, v, dk, dv: [B, Hkv, Sk, D]. K/V heads
 * shared by several query heads (GQA/MQA) sum their gradients.
 */
int attn01_backward(const attn_problem *p, const float *q, const float *k,
                    const float *v, const float *dout, float *dq, float *dk,
                    float *dv)
{
    /* an invalid problem or a NULL tensor: exit 2 (attn_last_error() says why) */
    if (attn_entry_check(p, (const void *const[]){q, k, v, dout, dq, dk, dv}, 7))
        return ATTN_EXIT_BAD_INPUT;
    const int Sq = p->seqlen_q, Sk = p->seqlen_k, D = p->head_dim;
    const float scale = attn_scale(p);
    float *P = attn_alloc((size_t)Sq * Sk * sizeof *P);
    float *dP = attn_alloc((size_t)Sq * Sk * sizeof *dP);
    float *dS = attn_alloc((size_t)Sq * Sk * sizeof *dS);
    int *keys = attn_alloc((size_t)Sq * sizeof *keys); /* keys each row uses */
    if (!P || !dP || !dS || !keys) {
        attn_free(P), attn_free(dP), attn_free(dS), attn_free(keys);
        return ATTN_EXIT_RESOURCE;
    }
    memset(dk, 0, attn_kv_elems(p) * sizeof *dk);
    memset(dv, 0, attn_kv_elems(p) * sizeof *dv);
    for (int b = 0; b < p->batch; b++)
        for (int h = 0; h < p->heads_q; h++) {
            size_t bh = (size_t)b * p->heads_q + h;
            size_t kvh = (size_t)b * p->heads_kv + attn_kv_head(p, h);
            const float *Q = q + bh * Sq * D, *dO = dout + bh * Sq * D;
            const float *K = k + kvh * Sk * D, *V = v + kvh * Sk * D;
            float *dQ = dq + bh * Sq * D, *dK = dk + kvh * Sk * D, *dV = dv + kvh * Sk * D;
            /* recompute P exactly as the forward did */
            for (int i = 0; i < Sq; i++) {
                int nk = attn_keys_visible(p, i);
                float *Pi = P + (size_t)i * Sk, m = -INFINITY, l = 0;
                for (int j = 0; j < nk; j++) {
                    float acc = 0;
                    for (int d = 0; d < D; d++)
                        acc += Q[(size_t)i * D + d] * K[(size_t)j * D + d];
                    Pi[j] = acc * scale;
                    m = nan_maxf(m, Pi[j]);
                }
                /* every visible score -inf: a masked row (O = 0), like one
                 * that sees no key: zero dQ, nothing into dK and dV */
                keys[i] = nk = m == -INFINITY ? 0 : nk;
                for (int j = 0; j < nk; j++)
                    l += (Pi[j] = expf(Pi[j] - m));
                for (int j = 0; j < nk; j++)
                    Pi[j] /= l;
            }
            /* dP = dO Vᵀ, δ, dS = P ∘ (dP − δ) */
            for (int i = 0; i < Sq; i++) {
                int nk = keys[i];
                float *Pi = P + (size_t)i * Sk, *dPi = dP + (size_t)i * Sk;
                float *dSi = dS + (size_t)i * Sk, delta = 0;
                for (int j = 0; j < nk; j++) {
                    float acc = 0;
                    for (int d = 0; d < D; d++)
                        acc += dO[(size_t)i * D + d] * V[(size_t)j * D + d];
                    dPi[j] = acc;
                    delta += Pi[j] * acc;
                }
                for (int j = 0; j < nk; j++)
                    dSi[j] = Pi[j] * (dPi[j] - delta);
            }
            /* dQ = scale · dS K;  dK += scale · dSᵀ Q;  dV += Pᵀ dO */
            for (int i = 0; i < Sq; i++) {
                int nk = keys[i];
                float *dQi = dQ + (size_t)i * D;
                memset(dQi, 0, (size_t)D * sizeof *dQi);
                for (int j = 0; j < nk; j++) {
                    float ds = dS[(size_t)i * Sk + j] * scale, pij = P[(size_t)i * Sk + j];
                    for (int d = 0; d < D; d++) {
                        dQi[d] += ds * K[(size_t)j * D + d];
                        dK[(size_t)j * D + d] += ds * Q[(size_t)i * D + d];
                        dV[(size_t)j * D + d] += pij * dO[(size_t)i * D + d];
                    }
                }
            }
        }
    attn_free(P), attn_free(dP), attn_free(dS), attn_free(keys);
    return 0;
}
