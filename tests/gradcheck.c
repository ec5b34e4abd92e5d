/**
 * @file gradcheck.c
 * @brief The backward suites' gradient check (gradcheck.h).
 */
#include "gradcheck.h"

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/** ck_abort_msg unless @p cond: a cheap test for loops over every element. */
#define REQUIRE(cond, ...)             \
    do {                               \
        if (!(cond))                   \
            ck_abort_msg(__VA_ARGS__); \
    } while (0)

/**
 * When @p x is close to a constant multiple of @p ref (a forgotten or extra
 * factor, e.g. the softmax scale), a phrase that says so ("dQ ≈ 0.125 ×
 * expected"); "" otherwise. The least-squares factor over finite entries,
 * and the residual after it under 1% of the error before it.
 */
static const char *ratio_hint(const char *name, const float *x, const double *ref, size_t n,
                              char *buf, size_t len)
{
    double xr = 0, rr = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i]) && isfinite(ref[i]))
            xr += x[i] * ref[i], rr += ref[i] * ref[i];
    buf[0] = '\0';
    if (rr == 0)
        return buf;
    const double a = xr / rr;
    double before = 0, after = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i]) && isfinite(ref[i])) {
            before += (x[i] - ref[i]) * (x[i] - ref[i]);
            after += (x[i] - a * ref[i]) * (x[i] - a * ref[i]);
        }
    if (fabs(a - 1) > 0.01 && fabs(a) > 0.01 && after < 1e-4 * before)
        snprintf(buf, len, "; %s ≈ %.4g × expected (a factor missing or extra?)", name, a);
    return buf;
}

void grad_refs_make(grad_refs *r, const attn_problem *p, conf_kind kind, const float *q,
                    const float *k, const float *v, const float *dout, const float *o,
                    const float *lse)
{
    const size_t qn = attn_q_elems(p), kvn = attn_kv_elems(p), n[3] = {qn, kvn, kvn};
    *r = (grad_refs){0};
    r->p = *p;
    r->kind = kind;
    for (int t = 0; t < 3; t++) {
        r->ref[t] = malloc(n[t] * sizeof(double));
        r->base[t] = malloc(n[t] * sizeof(float));
        ck_assert(r->ref[t] && r->base[t]);
    }
    attn_oracle_backward(p, q, k, v, dout, r->ref[0], r->ref[1], r->ref[2]);
    ck_assert_int_eq(attn01_backward(p, q, k, v, dout, r->base[0], r->base[1], r->base[2]), 0);
    for (int t = 0; t < 3; t++)
        r->base_err[t] = attn_compare(r->base[t], r->ref[t], n[t]).max_abs;
    r->scale = conf_grad_scale(p, r->ref[0], r->ref[1], r->ref[2]);
    if (kind == CONF_LARGE_LOGITS) {
        for (int t = 0; t < 3; t++) {
            r->given[t] = malloc(n[t] * sizeof(double));
            ck_assert(r->given[t]);
        }
        attn_oracle_backward_given(p, q, k, v, dout, o, lse, r->given[0], r->given[1],
                                   r->given[2]);
        conf_delta_allowance(p, q, k, v, dout, o, lse, r->allow);
    }
}

void grad_refs_free(grad_refs *r)
{
    for (int t = 0; t < 3; t++)
        free(r->ref[t]), free(r->given[t]), free(r->base[t]);
    *r = (grad_refs){0};
}

double grad_check(const grad_refs *r, const float *dq, const float *dk, const float *dv,
                  int recompute, const char *variant, const char *what, double allowed[3])
{
    static const char *names[3] = {"dQ", "dK", "dV"};
    const attn_problem *p = &r->p;
    const int D = p->head_dim;
    const size_t qn = attn_q_elems(p), kvn = attn_kv_elems(p), n[3] = {qn, kvn, kvn};
    const float *got[3] = {dq, dk, dv};
    const int large = r->kind == CONF_LARGE_LOGITS;
    const int nan_kind = r->kind == CONF_NAN_Q || r->kind == CONF_NAN_K || r->kind == CONF_NAN_V;
    /* a Q row of -inf: the stored-P baseline's dK = dSᵀ Q multiplies that
     * row's dS = 0 by -inf inside cuBLAS, as its masked zeros by NaN */
    const int inf_kind = r->kind == CONF_NEG_INF_Q;
    double worst = 0;
    char at[96], hint[96];
    for (int t = 0; t < 3; t++) {
        const float *x = got[t];
        const int vs_given = large && recompute;
        const double *ref = vs_given ? r->given[t] : r->ref[t];
        /* the δ allowance is a recomputing backward's; stored-P has no such residue */
        const double atol = 1e-6 * r->scale + (vs_given ? r->allow[t] : 0);
        const double limit = 3.0 * r->base_err[t] + atol;
        if (allowed)
            allowed[t] = limit;
        /* the stored-P baseline multiplies masked zeros by NaN inside cuBLAS
         * (0 · NaN = NaN); like a framework's math backward, it is not held
         * to NaN confinement */
        if ((nan_kind || inf_kind) && !recompute)
            continue;
        /* written; NaN exactly where the oracle's is; rows that see no key: zero dQ */
        for (size_t e = 0; e < n[t]; e++) {
            REQUIRE(x[e] != ATTN_POISON, "%s: %s[%zu] (%s) unwritten on %s", variant, names[t], e,
                    attn_where(p, t > 0, D, e, at, sizeof at), what);
            REQUIRE(!isinf(x[e]) && !isnan(x[e]) == !isnan(ref[e]),
                    "%s: %s[%zu] (%s) = %g, oracle %g, on %s", variant, names[t], e,
                    attn_where(p, t > 0, D, e, at, sizeof at), (double)x[e], ref[e], what);
            if (t == 0 && conf_row_masked(p, r->kind, (int64_t)(e / D)))
                REQUIRE(x[e] == 0.0f, "%s: row %zu is masked (no key, or every score -inf) but "
                        "dQ = %g on %s", variant, e / D, (double)x[e], what);
        }
        attn_err err = attn_compare(x, ref, n[t]);
        if (!attn_rule_ok(&err, r->base_err[t], 3.0, atol)) {
            /* all three gradients' errors at once, the worst element, and a
             * constant factor where there is one */
            attn_err all[3];
            for (int u = 0; u < 3; u++)
                all[u] = attn_compare(got[u], vs_given ? r->given[u] : r->ref[u], n[u]);
            const size_t w = err.worst_at;
            ck_abort_msg("%s: %s max_abs_err %.3g > 3 x %.3g + %.3g (nan %zu/%zu) on %s%s; "
                         "worst at %s: got %.9g, expected %.9g%s; max_abs_err dQ %.3g, dK %.3g, "
                         "dV %.3g",
                         variant, names[t], err.max_abs, r->base_err[t], atol, err.nan_count,
                         err.nan_missing, what,
                         vs_given ? " (against the backward given the forward's O and LSE)" : "",
                         w == SIZE_MAX ? "nowhere" : attn_where(p, t > 0, D, w, at, sizeof at),
                         w == SIZE_MAX ? 0.0 : (double)x[w], w == SIZE_MAX ? 0.0 : ref[w],
                         ratio_hint(names[t], x, ref, n[t], hint, sizeof hint), all[0].max_abs,
                         all[1].max_abs, all[2].max_abs);
        }
        worst = fmax(worst, err.max_abs / limit);
    }
    return worst;
}
