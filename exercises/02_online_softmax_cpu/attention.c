/**
 * @file exercises/02_online_softmax_cpu/attention.c
 * @brief Exercise 02 (fill in the TODOs; README.md beside this file): online
 * softmax, one streaming pass per query row.
 *
 * This is steps/02_online_softmax_cpu/attention.c with the online update
 * removed. Each query row streams over the keys once, keeping a running max
 * m, a running sum l and an output accumulator acc (O_i, not yet divided by
 * l) that is rescaled by exp(m_old − m_new) whenever the max grows
 * (notes/02_online_softmax_cpu.md proves the rescaling exact). Extra memory:
 * one row of D floats, whatever N is.
 *
 * Grade:    make exercise EX=02    (step 02's own suite: against step 01 and
 *                                    the float64 oracle)
 * Solution: steps/02_online_softmax_cpu/attention.c
 *
 * As handed out it compiles without warnings and fails the suite: nothing
 * writes O or LSE, so every check sees the poisoned outputs.
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
    (void)nan_maxf; /* TODO: delete once TODO(2.1) uses it */
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
            (void)V, (void)O, (void)L; /* TODO: delete once the TODOs below use them */

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
                    /* TODO(2.1): m_new = the running max including s, with nan_maxf
                     * (above: a max that keeps a NaN) — ~1 line */
                    /* TODO(2.2): corr = exp(m - m_new), the factor that moves l and acc
                     * from the old max to the new one (0 on the first key: m = -inf),
                     * and pj = exp(s - m_new), this key's weight. While m_new is
                     * still -inf, subtract 0 instead (-inf - -inf is NaN) — ~3 lines */
                    /* TODO(2.3): l = corr·l + pj; acc[d] = corr·acc[d] + pj·V[j][d] for
                     * every d; then m = m_new — ~4 lines */
                    (void)s, (void)m, (void)l; /* TODO: delete once 2.1-2.3 are done */
                }
                /* TODO(2.4): normalize once, at the end: O[i][d] = acc[d] / l, and
                 * LSE[i] = m + ln(l); a row that ends with l = 0 (it saw no key, or
                 * every score it saw was -inf) gets O = 0 and LSE = -inf, never 0/0 — ~4 lines */
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
