/**
 * @file compare.c
 * @brief Error metrics (max abs, relative L2, NaN counts) and the
 * correctness rule.
 */
#include "common.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

attn_err attn_compare(const float *x, const double *ref, size_t n)
{
    attn_err e = {0};
    e.worst_at = e.first_bad = SIZE_MAX;
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double a = x[i], b = ref[i];
        const int bad = isnan(b) ? !isnan(a) : isnan(a) || ((isinf(a) || isinf(b)) && a != b);
        if (bad && e.first_bad == SIZE_MAX)
            e.first_bad = i;
        if (isnan(b)) {
            e.nan_missing += !isnan(a);
            continue;
        }
        if (isnan(a)) {
            e.nan_count++;
            continue;
        }
        if (isinf(a) || isinf(b)) {
            e.inf_mismatch += (a != b);
            continue;
        }
        double d = fabs(a - b);
        if (d > e.max_abs || e.worst_at == SIZE_MAX)
            e.max_abs = d, e.worst_at = i;
        num += d * d;
        den += b * b;
        e.n++;
    }
    e.rel_l2 = den > 0 ? sqrt(num / den) : sqrt(num);
    return e;
}

attn_err attn_compare_f32(const float *x, const float *ref, size_t n)
{
    attn_err e = {0};
    e.worst_at = e.first_bad = SIZE_MAX;
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double a = x[i], b = ref[i];
        if (e.first_bad == SIZE_MAX &&
            (!isnan(a) != !isnan(b) || ((isinf(a) || isinf(b)) && !isnan(a) && !isnan(b) && a != b)))
            e.first_bad = i;
        if (isnan(a) || isnan(b)) {
            e.nan_count += isnan(a) && !isnan(b);
            e.nan_missing += isnan(b) && !isnan(a);
            continue;
        }
        if (isinf(a) || isinf(b)) {
            e.inf_mismatch += (a != b);
            continue;
        }
        double d = fabs(a - b);
        if (d > e.max_abs || e.worst_at == SIZE_MAX)
            e.max_abs = d, e.worst_at = i;
        num += d * d;
        den += b * b;
        e.n++;
    }
    e.rel_l2 = den > 0 ? sqrt(num / den) : sqrt(num);
    return e;
}

const char *attn_where(const attn_problem *p, int kv, int cols, size_t idx, char *buf, size_t n)
{
    const size_t heads = (size_t)(kv ? p->heads_kv : p->heads_q);
    const size_t seq = (size_t)(kv ? p->seqlen_k : p->seqlen_q), c = cols > 0 ? (size_t)cols : 1;
    const size_t col = idx % c, row = idx / c % seq, h = idx / c / seq % heads;
    const size_t b = idx / c / seq / heads;
    if (c > 1)
        snprintf(buf, n, "batch %zu, %s head %zu, row %zu, column %zu", b, kv ? "K/V" : "query",
                 h, row, col);
    else
        snprintf(buf, n, "batch %zu, %s head %zu, row %zu", b, kv ? "K/V" : "query", h, row);
    return buf;
}

double attn_lse_err(const float *lse, const double *ref, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double a = lse[i], b = ref[i];
        double err;
        if (isnan(a) || isnan(b))
            err = (isnan(a) && isnan(b)) ? 0 : INFINITY;
        else if (isinf(a) || isinf(b))
            err = (a == b) ? 0 : INFINITY; /* equal infinities: no error */
        else
            err = fabs(a - b) / (1 + fabs(b));
        if (err > worst)
            worst = err;
    }
    return worst;
}

int attn_rule_ok(const attn_err *e, double baseline_max_abs, double factor, double atol)
{
    if (e->nan_count || e->nan_missing || e->inf_mismatch)
        return 0;
    return e->max_abs <= factor * baseline_max_abs + atol;
}

int attn_forward_rule(const attn_problem *p, attn_dtype t, const float *q, const float *k,
                      const float *v, const int64_t *rows, size_t n_rows, const double *o_ref,
                      const double *lse_ref, attn_fwd_rule *r)
{
    const size_t n = n_rows * (size_t)p->head_dim;
    float *o = malloc((n ? n : 1) * sizeof *o), *lse = malloc((n_rows ? n_rows : 1) * sizeof *lse);
    if (!o || !lse) {
        free(o), free(lse);
        return ATTN_EXIT_RESOURCE;
    }
    *r = (attn_fwd_rule){0};
    for (int ord = 0; ord < ATTN_ORDER_COUNT; ord++) {
        attn_naive_rows_order(p, t, (attn_order)ord, q, k, v, rows, n_rows, o, lse);
        const double e = attn_compare(o, o_ref, n).max_abs, le = attn_lse_err(lse, lse_ref, n_rows);
        if (ord == ATTN_ORDER_FORWARD)
            r->baseline_fwd = e;
        r->baseline = fmax(r->baseline, e);
        r->lse_baseline = fmax(r->lse_baseline, le);
    }
    double omax = 1.0; /* the floor scales with the output: an ulp of O */
    for (size_t i = 0; i < n; i++)
        omax = isfinite(o_ref[i]) ? fmax(omax, fabs(o_ref[i])) : omax;
    r->atol = (t == ATTN_F32 ? 1e-6 : 1e-4) * omax;
    r->allowed = 2.0 * r->baseline + r->atol;
    r->lse_tol = fmax(t == ATTN_F32 ? ATTN_LSE_TOL : 1e-3, 2.0 * r->lse_baseline);
    free(o), free(lse);
    return 0;
}

int attn_forward_ok(const attn_fwd_rule *r, const attn_err *e, double lse_err)
{
    return attn_rule_ok(e, r->baseline, 2.0, r->atol) && lse_err <= r->lse_tol;
}

void attn_gather_rows(const float *src, int d, const int64_t *rows, size_t n_rows,
                      float *dst)
{
    for (size_t r = 0; r < n_rows; r++)
        for (int j = 0; j < d; j++)
            dst[r * d + j] = src[(size_t)rows[r] * d + j];
}
