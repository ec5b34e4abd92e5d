/**
 * @file steps/02_online_softmax_cpu/attention.c
 * @brief Step 02: online softmax, one streaming pass per query row.
 *
 * What it adds over step 01: no N×N buffer. Each query row streams over
 * the keys once, keeping a running max m, a running sum l and an output
 * accumulator O_i that is rescaled by exp(m_old − m_new) whenever the max
 * grows (notes/02 proves the rescaling exact). Extra memory: one row of D
 * floats, whatever N is.
 *
 * Run:   build/bin/02_online_softmax_cpu --seq 1024 --dim 64 --heads 4 --causal
 * Limits: single-threaded fp32; every key is read once per query row, so
 * K and V stream through the cache Sq times (step 03 tiles to reuse them).
 */
#include "common.h"

#include <math.h>
#include <string.h>

/** max that propagates NaN: a NaN score must poison its row (fmaxf drops it) */
static float nan_maxf(float a, float b) { return (isnan(a) || a > b) ? a : b; }

/* q: [B, Hq, Sq, D]; k, v: [B, Hkv, Sk, D]; o: [B, Hq, Sq, D]; lse: [B, Hq, Sq] */
int attn02_forward(const attn_problem *p, const float *q, const float *k,
                   const float *v, float *o, float *lse)
{
    /* an invalid problem or a NULL tensor: exit 2 (attn_last_error() says why) */
    if (attn_entry_check(p, (const void *const[]){q, k, v, o, lse}, 5))
        return ATTN_EXIT_BAD_INPUT;
    const int Sq = p->seqlen_q, Sk = p->seqlen_k, D = p->head_dim;
    const float scale = attn_scale(p);
    (void)Sk;
    float *acc = attn_alloc((size_t)D * sizeof *acc); /* O_i, unnormalized */
    if (!acc)
        return ATTN_EXIT_RESOURCE;
    for (int b = 0; b < p->batch; b++)
        for (int h = 0; h < p->heads_q; h++) {
            size_t bh = (size_t)b * p->heads_q + h;
            const float *Q = q + bh * Sq * D;
            const float *K = k + ((size_t)b * p->heads_kv + attn_kv_head(p, h)) * Sk * D;
            const float *V = v + ((size_t)b * p->heads_kv + attn_kv_head(p, h)) * Sk * D;
            float *O = o + bh * Sq * D, *L = lse + bh * Sq;

            for (int i = 0; i < Sq; i++) {
                int nk = attn_keys_visible(p, i); /* keys 0..nk-1; the rest are masked */
                float m = -INFINITY, l = 0;       /* running max and sum */
                memset(acc, 0, (size_t)D * sizeof *acc);
                for (int j = 0; j < nk; j++) {
                    float s = 0;
                    for (int d = 0; d < D; d++)
                        s += Q[(size_t)i * D + d] * K[(size_t)j * D + d];
                    s *= scale;
                    /* the online update: rescale what we have to the new max */
                    float m_new = nan_maxf(m, s);
                    /* FlashAttention-2's guard: while every score so far is -inf
                     * (an Inf in K), m_new is -inf and m - m_new would be
                     * -inf + inf = NaN; subtract 0 instead: the weights are 0 */
                    float m_ref = m_new == -INFINITY ? 0.0f : m_new;
                    float corr = expf(m - m_ref); /* exp(-inf) = 0 on the first key */
                    float pj = expf(s - m_ref);
                    l = l * corr + pj;
                    for (int d = 0; d < D; d++)
                        acc[d] = acc[d] * corr + pj * V[(size_t)j * D + d];
                    m = m_new;
                }
                float *Oi = O + (size_t)i * D;
                for (int d = 0; d < D; d++)
                    Oi[d] = l != 0 ? acc[d] / l : 0.0f; /* normalize once, at the end */
                /* no key, or every score -inf (l = 0): O = 0, LSE = -inf */
                L[i] = l != 0 ? m + logf(l) : -INFINITY;
            }
        }
    attn_free(acc);
    return 0;
}

/** Step 02's descriptor: what the driver and the test suites run. */
const attn_step attn02_step = {"02", "online_softmax_cpu", 0, attn02_forward, NULL, NULL,
                               NULL, attn_cpu_run,
                               {1u << ATTN_F32, 0, 1, 256, NULL}, NULL,
                               ATTN_KIND_FORWARD, NULL, NULL, NULL};

#ifdef ATTN_STEP_MAIN
int main(int argc, char **argv) { return attn_step_main(argc, argv, &attn02_step); }
#endif
