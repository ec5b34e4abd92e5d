/**
 * @file steps/01_naive_cpu/attention.c
 * @brief Step 01: standard attention on the CPU, S and P materialized.
 *
 * What it is: the textbook formula, one (batch, head) at a time.
 *
 *     S = scale · Q Kᵀ            [Sq, Sk]   materialized
 *     P = softmax(S) row by row   [Sq, Sk]   materialized
 *     O = P V                     [Sq, D]
 *
 * S and P are the N×N matrices FlashAttention never stores: this step's
 * extra memory is 2·Sq·Sk floats (128 MiB at N = 4096), and it grows as N².
 * Every later step is checked against the numbers this one produces.
 *
 * Beside it, backward.c: the standard backward (attn01_backward), with P,
 * dP and dS materialized, the CPU baseline step 07 is checked against.
 *
 * Run:   build/bin/01_naive_cpu --seq 1024 --dim 64 --heads 4 --causal
 * Limits: single-threaded fp32; O(N²) memory per head.
 */
#include "common.h"

#include <math.h>
#include <string.h>

/** max that propagates NaN: a NaN score must poison its row (fmaxf drops it) */
static float nan_maxf(float a, float b) { return (isnan(a) || a > b) ? a : b; }

/* q: [B, Hq, Sq, D]; k, v: [B, Hkv, Sk, D]; o: [B, Hq, Sq, D]; lse: [B, Hq, Sq] */
int attn01_forward(const attn_problem *p, const float *q, const float *k,
                   const float *v, float *o, float *lse)
{
    /* an invalid problem or a NULL tensor: exit 2 (attn_last_error() says why) */
    if (attn_entry_check(p, (const void *const[]){q, k, v, o, lse}, 5))
        return ATTN_EXIT_BAD_INPUT;
    const int Sq = p->seqlen_q, Sk = p->seqlen_k, D = p->head_dim;
    const float scale = attn_scale(p);
    /* The N×N buffers, reused for every head. */
    float *S = attn_alloc((size_t)Sq * Sk * sizeof *S);
    float *P = attn_alloc((size_t)Sq * Sk * sizeof *P);
    if (!S || !P) {
        attn_free(S), attn_free(P);
        return ATTN_EXIT_RESOURCE;
    }
    for (int b = 0; b < p->batch; b++)
        for (int h = 0; h < p->heads_q; h++) {
            size_t bh = (size_t)b * p->heads_q + h;
            const float *Q = q + bh * Sq * D;
            const float *K = k + ((size_t)b * p->heads_kv + attn_kv_head(p, h)) * Sk * D;
            const float *V = v + ((size_t)b * p->heads_kv + attn_kv_head(p, h)) * Sk * D;
            float *O = o + bh * Sq * D, *L = lse + bh * Sq;

            for (int i = 0; i < Sq; i++) {
                int nk = attn_keys_visible(p, i); /* keys 0..nk-1; the rest are masked */
                float *Si = S + (size_t)i * Sk, *Pi = P + (size_t)i * Sk;
                /* S = scale · Q Kᵀ */
                for (int j = 0; j < Sk; j++) {
                    float acc = 0;
                    for (int d = 0; d < D; d++)
                        acc += Q[(size_t)i * D + d] * K[(size_t)j * D + d];
                    Si[j] = acc * scale;
                }
                for (int j = nk; j < Sk; j++)
                    Si[j] = -INFINITY; /* causal mask */
                /* P = softmax(S): subtract the row max so exp() cannot overflow */
                float m = -INFINITY, l = 0;
                for (int j = 0; j < nk; j++)
                    m = nan_maxf(m, Si[j]);
                if (m == -INFINITY)
                    nk = 0; /* every visible score -inf: a masked row, O = 0 */
                for (int j = 0; j < nk; j++)
                    l += (Pi[j] = expf(Si[j] - m));
                for (int j = 0; j < Sk; j++)
                    Pi[j] = j < nk ? Pi[j] / l : 0.0f;
                /* O = P V (masked keys have P = 0: skip them, so a NaN in a
                 * V row a query cannot see does not reach it through 0·NaN) */
                float *Oi = O + (size_t)i * D;
                memset(Oi, 0, (size_t)D * sizeof *Oi);
                for (int j = 0; j < nk; j++)
                    for (int d = 0; d < D; d++)
                        Oi[d] += Pi[j] * V[(size_t)j * D + d];
                L[i] = nk ? m + logf(l) : -INFINITY; /* no key: O = 0, LSE = -inf */
            }
        }
    attn_free(S), attn_free(P);
    return 0;
}

/** Step 01's descriptor: what the driver and the test suites run. */
const attn_step attn01_step = {"01", "naive_cpu", 0, attn01_forward, NULL, NULL, NULL,
                               attn_cpu_run,
                               {1u << ATTN_F32, 0, 1, 256, NULL}, NULL,
                               ATTN_KIND_FORWARD, NULL, NULL, NULL};

#ifdef ATTN_STEP_MAIN
int main(int argc, char **argv) { return attn_step_main(argc, argv, &attn01_step); }
#endif
