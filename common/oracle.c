/**
 * @file oracle.c
 * @brief The float64 oracle every step is checked against, its backward,
 * and the fp32 naive baseline that scales the correctness rule.
 *
 * Straightforward on purpose: one query row at a time, the textbook
 * formulas in double precision. NaN propagation is made explicit (a plain
 * fmax() would drop a NaN score), so a NaN in an input reaches exactly the
 * rows that read it.
 */
#include "common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/** max that propagates NaN (fmax() does not) */
static double nan_max(double a, double b) { return (isnan(a) || a > b) ? a : b; }
/** nan_max() in float */
static float nan_maxf(float a, float b) { return (isnan(a) || a > b) ? a : b; }

void attn_row_offsets(const attn_problem *p, int64_t r, int *h_out, int *i_out,
                      size_t *q_off, size_t *kv_off)
{
    int i = (int)(r % p->seqlen_q);
    int64_t bh = r / p->seqlen_q;
    int h = (int)(bh % p->heads_q), b = (int)(bh / p->heads_q);
    int hk = attn_kv_head(p, h);
    *h_out = h;
    *i_out = i;
    *q_off = (size_t)r * p->head_dim;
    *kv_off = ((size_t)b * p->heads_kv + hk) * p->seqlen_k * p->head_dim;
}

void attn_oracle_forward(const attn_problem *p, const float *q, const float *k,
                         const float *v, const int64_t *rows, size_t n_rows,
                         double *o_ref, double *lse_ref)
{
    const int D = p->head_dim, Sk = p->seqlen_k;
    const double scale = attn_scale(p);
    double *s = malloc((size_t)Sk * sizeof *s);
    for (size_t n = 0; n < n_rows; n++) {
        int64_t r = rows ? rows[n] : (int64_t)n;
        int h, i;
        size_t qo, kvo;
        attn_row_offsets(p, r, &h, &i, &qo, &kvo);
        (void)h;
        int nk = attn_keys_visible(p, i);
        double *o = o_ref + n * D;
        memset(o, 0, (size_t)D * sizeof *o);
        /* a row that sees no key, or whose every visible score is -inf (a
         * score of -inf is a mask): O = 0, LSE = -inf (notes/design.md) */
        if (nk == 0) {
            lse_ref[n] = -INFINITY;
            continue;
        }
        double m = -INFINITY;
        for (int j = 0; j < nk; j++) {
            double acc = 0;
            for (int d = 0; d < D; d++)
                acc += (double)q[qo + d] * k[kvo + (size_t)j * D + d];
            s[j] = acc * scale;
            m = nan_max(m, s[j]);
        }
        if (m == -INFINITY) { /* every visible score is -inf: masked, the same */
            lse_ref[n] = -INFINITY;
            continue;
        }
        double l = 0;
        for (int j = 0; j < nk; j++) {
            double e = exp(s[j] - m);
            l += e;
            for (int d = 0; d < D; d++)
                o[d] += e * v[kvo + (size_t)j * D + d];
        }
        for (int d = 0; d < D; d++)
            o[d] /= l;
        lse_ref[n] = m + log(l);
    }
    free(s);
}

void attn_oracle_backward(const attn_problem *p, const float *q, const float *k,
                          const float *v, const float *dout, double *dq,
                          double *dk, double *dv)
{
    attn_oracle_backward_given(p, q, k, v, dout, NULL, NULL, dq, dk, dv);
}

void attn_oracle_backward_given(const attn_problem *p, const float *q, const float *k,
                                const float *v, const float *dout, const float *o,
                                const float *lse, double *dq, double *dk, double *dv)
{
    const int D = p->head_dim, Sk = p->seqlen_k;
    const double scale = attn_scale(p);
    const size_t rows = attn_lse_elems(p);
    memset(dq, 0, attn_q_elems(p) * sizeof *dq);
    memset(dk, 0, attn_kv_elems(p) * sizeof *dk);
    memset(dv, 0, attn_kv_elems(p) * sizeof *dv);
    double *P = malloc((size_t)Sk * sizeof *P), *dP = malloc((size_t)Sk * sizeof *dP);
    for (size_t r = 0; r < rows; r++) {
        int h, i;
        size_t qo, kvo;
        attn_row_offsets(p, (int64_t)r, &h, &i, &qo, &kvo);
        int nk = attn_keys_visible(p, i);
        if (nk == 0)
            continue; /* O = 0 does not depend on anything: zero gradient */
        double m = -INFINITY, l = 0;
        for (int j = 0; j < nk; j++) {
            double acc = 0;
            for (int d = 0; d < D; d++)
                acc += (double)q[qo + d] * k[kvo + (size_t)j * D + d];
            P[j] = acc * scale;
            m = nan_max(m, P[j]);
        }
        if (m == -INFINITY)
            continue; /* every visible score -inf: masked, O = 0, the same */
        for (int j = 0; j < nk; j++)
            l += exp(P[j] - m);
        double delta = 0; /* rowsum(P ∘ dP) = rowsum(dO ∘ O) */
        for (int j = 0; j < nk; j++) {
            double acc = 0;
            for (int d = 0; d < D; d++)
                acc += (double)dout[qo + d] * v[kvo + (size_t)j * D + d];
            dP[j] = acc;
            const double p_exact = exp(P[j] - m) / l;
            delta += p_exact * acc;
            /* P[j] held S_ij; now P_ij: exact, or rebuilt from the given LSE */
            P[j] = lse ? exp(P[j] - (double)lse[r]) : p_exact;
        }
        if (o) { /* δ from the given O, as a recomputing backward takes it */
            delta = 0;
            for (int d = 0; d < D; d++)
                delta += (double)dout[qo + d] * o[qo + d];
        }
        for (int j = 0; j < nk; j++) {
            double ds = P[j] * (dP[j] - delta);
            for (int d = 0; d < D; d++) {
                size_t kj = kvo + (size_t)j * D + d;
                dq[qo + d] += scale * ds * k[kj];
                dk[kj] += scale * ds * q[qo + d];
                dv[kj] += P[j] * dout[qo + d];
            }
        }
    }
    free(P);
    free(dP);
}

void attn_oracle_delta_bound(const attn_problem *p, const float *q, const float *k,
                             const float *v, const float *dout, const float *o,
                             const float *lse, double *bq, double *bk)
{
    const int D = p->head_dim;
    const double scale = fabs((double)attn_scale(p));
    const size_t rows = attn_lse_elems(p);
    memset(bq, 0, attn_q_elems(p) * sizeof *bq);
    memset(bk, 0, attn_kv_elems(p) * sizeof *bk);
    for (size_t r = 0; r < rows; r++) {
        int h, i;
        size_t qo, kvo;
        attn_row_offsets(p, (int64_t)r, &h, &i, &qo, &kvo);
        const int nk = lse[r] == -INFINITY ? 0 : attn_keys_visible(p, i); /* masked row */
        double a = 0; /* Σ_d |dO_id · O_id|: what δ_i's rounding scales with */
        for (int d = 0; d < D; d++)
            a += fabs((double)dout[qo + d] * o[qo + d]);
        for (int j = 0; j < nk; j++) {
            const float *kj = k + kvo + (size_t)j * D, *vj = v + kvo + (size_t)j * D;
            double s = 0, A = 0; /* S_ij; Σ_d |dO_id · V_jd|: what dP_ij's rounding scales with */
            for (int d = 0; d < D; d++) {
                s += (double)q[qo + d] * kj[d];
                A += fabs((double)dout[qo + d] * vj[d]);
            }
            const double w = scale * exp(s * attn_scale(p) - (double)lse[r]) * (A + a);
            for (int d = 0; d < D; d++) {
                bq[qo + d] += w * fabs((double)kj[d]);
                bk[kvo + (size_t)j * D + d] += w * fabs((double)q[qo + d]);
            }
        }
    }
}

void attn_naive_fp32_rows(const attn_problem *p, const float *q, const float *k,
                          const float *v, const int64_t *rows, size_t n_rows,
                          float *o_rows, float *lse_rows)
{
    const int D = p->head_dim, Sk = p->seqlen_k;
    const float scale = attn_scale(p);
    float *s = malloc((size_t)Sk * sizeof *s);
    for (size_t n = 0; n < n_rows; n++) {
        int64_t r = rows ? rows[n] : (int64_t)n;
        int h, i;
        size_t qo, kvo;
        attn_row_offsets(p, r, &h, &i, &qo, &kvo);
        int nk = attn_keys_visible(p, i);
        float *o = o_rows + n * D;
        memset(o, 0, (size_t)D * sizeof *o);
        if (nk == 0) {
            lse_rows[n] = -INFINITY;
            continue;
        }
        float m = -INFINITY;
        for (int j = 0; j < nk; j++) {
            float acc = 0;
            for (int d = 0; d < D; d++)
                acc += q[qo + d] * k[kvo + (size_t)j * D + d];
            s[j] = acc * scale;
            m = nan_maxf(m, s[j]);
        }
        if (m == -INFINITY) { /* every visible score -inf: masked */
            lse_rows[n] = -INFINITY;
            continue;
        }
        float l = 0;
        for (int j = 0; j < nk; j++)
            l += (s[j] = expf(s[j] - m));
        for (int j = 0; j < nk; j++)
            for (int d = 0; d < D; d++)
                o[d] += s[j] / l * v[kvo + (size_t)j * D + d];
        /* cppcheck-suppress invalidFunctionArg ; nk >= 1 here, so l >= exp(0) = 1 (or NaN) */
        lse_rows[n] = m + logf(l);
    }
    free(s);
}
