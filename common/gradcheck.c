/**
 * @file gradcheck.c
 * @brief The step program's check of a backward: dQ, dK, dV against the
 * float64 oracle's backward under the gradient rule.
 *
 * The rule: max_abs_err ≤ 3 × the error of an fp32 standard backward (step
 * 01's formulas, row by row) on the same inputs + 1e-6, for each of dQ, dK,
 * dV. dK and dV need every query row, so the oracle cannot sample rows as
 * the forward check does: past 2e9 multiply-adds it checks the query heads
 * of the first K/V head of batch 0 (a prefix of every tensor; `checked_heads=`
 * on the result line), and past 1.6e10 even for those it does not check
 * (`checked_heads=0`, with a notice; the GPU suite covers the algorithm).
 */
#include "common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/** Past this many multiply-adds, check one K/V head group only. */
#define FULL_CHECK_MACS 2e9
/** Past this many for that group, do not check. */
#define GROUP_CHECK_MACS 1.6e10

/**
 * The fp32 baseline the rule scales with: step 01's standard backward,
 * row by row (no N×N buffer), in float.
 * q, dout, dq: [B, Hq, Sq, D]; k, v, dk, dv: [B, Hkv, Sk, D]
 */
static int naive_fp32_backward(const attn_problem *p, const float *q, const float *k,
                               const float *v, const float *dout, float *dq, float *dk, float *dv)
{
    const int Sq = p->seqlen_q, Sk = p->seqlen_k, D = p->head_dim;
    const float scale = attn_scale(p);
    float *P = malloc((size_t)Sk * sizeof *P), *dP = malloc((size_t)Sk * sizeof *dP);
    if (!P || !dP) {
        free(P), free(dP);
        return ATTN_EXIT_RESOURCE;
    }
    memset(dq, 0, attn_q_elems(p) * sizeof *dq);
    memset(dk, 0, attn_kv_elems(p) * sizeof *dk);
    memset(dv, 0, attn_kv_elems(p) * sizeof *dv);
    for (int b = 0; b < p->batch; b++)
        for (int h = 0; h < p->heads_q; h++) {
            size_t bh = (size_t)b * p->heads_q + h, kvh = (size_t)b * p->heads_kv + attn_kv_head(p, h);
            const float *K = k + kvh * Sk * D, *V = v + kvh * Sk * D;
            float *dK = dk + kvh * Sk * D, *dV = dv + kvh * Sk * D;
            for (int i = 0; i < Sq; i++) {
                const float *Qi = q + (bh * Sq + i) * D, *dOi = dout + (bh * Sq + i) * D;
                float *dQi = dq + (bh * Sq + i) * D;
                int nk = attn_keys_visible(p, i);
                float m = -INFINITY, l = 0, delta = 0;
                for (int j = 0; j < nk; j++) {
                    float acc = 0;
                    for (int d = 0; d < D; d++)
                        acc += Qi[d] * K[(size_t)j * D + d];
                    P[j] = acc * scale;
                    m = (isnan(P[j]) || P[j] > m) ? P[j] : m;
                }
                for (int j = 0; j < nk; j++)
                    l += (P[j] = expf(P[j] - m));
                for (int j = 0; j < nk; j++) {
                    float acc = 0;
                    P[j] /= l;
                    for (int d = 0; d < D; d++)
                        acc += dOi[d] * V[(size_t)j * D + d];
                    dP[j] = acc;
                    delta += P[j] * acc;
                }
                for (int j = 0; j < nk; j++) {
                    float ds = P[j] * (dP[j] - delta) * scale;
                    for (int d = 0; d < D; d++) {
                        dQi[d] += ds * K[(size_t)j * D + d];
                        dK[(size_t)j * D + d] += ds * Qi[d];
                        dV[(size_t)j * D + d] += P[j] * dOi[d];
                    }
                }
            }
        }
    free(P), free(dP);
    return 0;
}

int attn_check_gradients(const attn_problem *p0, const float *q, const float *k, const float *v,
                         const float *dout, const float *dq, const float *dk, const float *dv,
                         attn_grad_check *cr, char *msg, size_t n)
{
    attn_problem p = *p0;
    size_t qn0 = attn_q_elems(p0), kvn0 = attn_kv_elems(p0);
    cr->nan_finite_inputs = attn_all_finite(q, qn0) && attn_all_finite(k, kvn0) &&
                            attn_all_finite(v, kvn0) && attn_all_finite(dout, qn0) &&
                            !(attn_all_finite(dq, qn0) && attn_all_finite(dk, kvn0) &&
                              attn_all_finite(dv, kvn0));
    double macs = 4.0 * attn_lse_elems(&p) * p.seqlen_k * p.head_dim;
    if (macs > FULL_CHECK_MACS) {
        /* batch 0, K/V head 0 and its g query heads: a prefix of every tensor */
        p.batch = 1;
        p.heads_q /= p.heads_kv;
        p.heads_kv = 1;
        macs = 4.0 * attn_lse_elems(&p) * p.seqlen_k * p.head_dim;
    }
    cr->checked_heads = macs > GROUP_CHECK_MACS ? 0 : p.batch * p.heads_q;
    if (!cr->checked_heads) {
        cr->ok = !cr->nan_finite_inputs;
        return 0;
    }
    size_t qn = attn_q_elems(&p), kvn = attn_kv_elems(&p);
    double *rq = malloc(qn * sizeof *rq), *rk = malloc(kvn * sizeof *rk), *rv = malloc(kvn * sizeof *rv);
    float *bq = malloc(qn * sizeof *bq), *bk = malloc(kvn * sizeof *bk), *bv = malloc(kvn * sizeof *bv);
    int rc = 0;
    if (!rq || !rk || !rv || !bq || !bk || !bv) {
        snprintf(msg, n, "out of host memory for the check: needed %zu bytes",
                 (qn + 2 * kvn) * (sizeof(double) + sizeof(float)));
        rc = ATTN_EXIT_RESOURCE;
        goto out;
    }
    attn_oracle_backward(&p, q, k, v, dout, rq, rk, rv);
    if (naive_fp32_backward(&p, q, k, v, dout, bq, bk, bv)) {
        snprintf(msg, n, "out of host memory for the check");
        rc = ATTN_EXIT_RESOURCE;
        goto out;
    }
    const float *got[3] = {dq, dk, dv}, *base[3] = {bq, bk, bv};
    const double *ref[3] = {rq, rk, rv};
    const size_t cnt[3] = {qn, kvn, kvn};
    cr->ok = !cr->nan_finite_inputs;
    for (int t = 0; t < 3; t++) {
        cr->e[t] = attn_compare(got[t], ref[t], cnt[t]);
        cr->base[t] = attn_compare(base[t], ref[t], cnt[t]).max_abs;
        cr->ok = cr->ok && attn_rule_ok(&cr->e[t], cr->base[t], 3.0, 1e-6);
    }
out:
    free(rq), free(rk), free(rv), free(bq), free(bk), free(bv);
    return rc;
}
