/**
 * @file driver_bwd.c
 * @brief The step program of a backward step: flags → inputs (Q, K, V, dO)
 * → forward + backward (and timing) → check dQ, dK, dV against the float64
 * oracle → outputs → `result:` line.
 *
 * The backward twin of driver.c. The check follows the gradient
 * rule: max_abs_err ≤ 3 × the error of an fp32 standard backward (step 01's
 * formulas, row by row) on the same inputs + 1e-6, for each of dQ, dK, dV.
 * dK and dV need every query row, so the oracle cannot sample rows as the
 * forward check does: past 2e9 multiply-adds it checks the query heads of
 * the first K/V head of batch 0 (a prefix of every tensor; `checked_heads=`
 * on the result line), and past 1.6e10 even for those it does not check
 * (`checked_heads=0`, with a notice; the GPU suite covers the algorithm).
 */
#define _POSIX_C_SOURCE 200809L
#include "backward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/** What the gradient check found. */
typedef struct {
    attn_err e[3];          /**< dQ, dK, dV against the oracle */
    double base[3];         /**< the fp32 baseline's max_abs_err */
    int checked_heads;      /**< query heads compared (0: not checked) */
    int nan_finite_inputs;  /**< NaN/inf in a gradient with finite inputs */
    int ok;                 /**< every gradient within the rule */
} bwd_check;

/** The gradient check against the float64 oracle's backward under the gradient rule. */
static int run_check(const attn_problem *p0, const float *q, const float *k, const float *v,
                     const float *dout, const float *dq, const float *dk, const float *dv,
                     bwd_check *cr, char *msg, size_t n)
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
    float *bq = malloc(qn * 4), *bk = malloc(kvn * 4), *bv = malloc(kvn * 4);
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

int attn_bwd_step_main(int argc, char **argv, const attn_bwd_step *step)
{
    char msg[512] = "";
    attn_opts opt;
    int rc = attn_parse_args(argc, argv, &opt, stdout, msg, sizeof msg);
    if (rc == 1)
        return 0;
    attn_array aq = {0}, ak = {0}, av = {0}, ado = {0}, aprev = {0};
    float *q = NULL, *k = NULL, *v = NULL, *dout = NULL, *o = NULL, *lse = NULL;
    float *dq = NULL, *dk = NULL, *dv = NULL;
    attn_problem *p = &opt.prob;
    attn_outputs outs;
    attn_outputs_init(&outs);
    if (rc)
        goto fail;
    rc = ATTN_EXIT_BAD_INPUT;
    if (strcmp(opt.dtype, "fp32") != 0) {
        snprintf(msg, sizeof msg, "--dtype %s: step %s computes in fp32 only", opt.dtype, step->id);
        goto fail;
    }
    if (opt.q_path) {
        if ((rc = attn_read_input("--q", opt.q_path, &aq, msg, sizeof msg)) ||
            (rc = attn_read_input("--k", opt.k_path, &ak, msg, sizeof msg)) ||
            (rc = attn_read_input("--v", opt.v_path, &av, msg, sizeof msg)) ||
            (rc = attn_problem_from_files(&opt, &aq, &ak, &av, msg, sizeof msg)))
            goto fail;
    }
    if (opt.do_path) {
        if ((rc = attn_read_input("--do", opt.do_path, &ado, msg, sizeof msg)))
            goto fail;
        rc = ATTN_EXIT_BAD_INPUT;
        if (ado.shape[0] != p->batch || ado.shape[1] != p->heads_q ||
            ado.shape[2] != p->seqlen_q || ado.shape[3] != p->head_dim) {
            snprintf(msg, sizeof msg, "--do %s: shape does not match O [%d, %d, %d, %d]",
                     opt.do_path, p->batch, p->heads_q, p->seqlen_q, p->head_dim);
            goto fail;
        }
    }
    if ((step->forward->supports && (rc = step->forward->supports(p, msg, sizeof msg))) ||
        (step->supports && (rc = step->supports(p, msg, sizeof msg))))
        goto fail;
    if (opt.prev_path) {
        if ((rc = attn_npy_read(opt.prev_path, &aprev, msg, sizeof msg)))
            goto fail;
        rc = ATTN_EXIT_BAD_INPUT;
        if (!(aprev.rank == 4 && aprev.shape[0] == p->batch && aprev.shape[1] == p->heads_q &&
              aprev.shape[2] == p->seqlen_q && aprev.shape[3] == p->head_dim)) {
            snprintf(msg, sizeof msg, "--prev %s: shape does not match O [%d, %d, %d, %d]",
                     opt.prev_path, p->batch, p->heads_q, p->seqlen_q, p->head_dim);
            goto fail;
        }
    }
    /* the outputs: writable, five distinct files, none of them an input */
    {
        static const char *const in_flags[5] = {"--q", "--k", "--v", "--do", "--prev"};
        const char *in_paths[5] = {opt.q_path, opt.k_path, opt.v_path, opt.do_path, opt.prev_path};
        if ((rc = attn_outputs_add(&outs, "--out", opt.out_path, msg, sizeof msg)) ||
            (rc = attn_outputs_add(&outs, "--lse", opt.lse_path, msg, sizeof msg)) ||
            (rc = attn_outputs_add(&outs, "--dq", opt.dq_path, msg, sizeof msg)) ||
            (rc = attn_outputs_add(&outs, "--dk", opt.dk_path, msg, sizeof msg)) ||
            (rc = attn_outputs_add(&outs, "--dv", opt.dv_path, msg, sizeof msg)) ||
            (rc = attn_outputs_not_inputs(&outs, in_flags, in_paths, 5, msg, sizeof msg)))
            goto fail;
    }

    size_t qn = attn_q_elems(p), kvn = attn_kv_elems(p), ln = attn_lse_elems(p);
    attn_take_qkv(p, opt.q_path != NULL, opt.seed, &aq, &ak, &av, &q, &k, &v);
    if (opt.do_path) {
        dout = ado.data;
        ado.data = NULL;
    } else {
        dout = attn_alloc(qn * 4);
    }
    o = attn_alloc(qn * 4), lse = attn_alloc(ln * 4);
    dq = attn_alloc(qn * 4), dk = attn_alloc(kvn * 4), dv = attn_alloc(kvn * 4);
    if (!q || !k || !v || !dout || !o || !lse || !dq || !dk || !dv) {
        rc = ATTN_EXIT_RESOURCE;
        snprintf(msg, sizeof msg, "out of host memory: needed %zu bytes for inputs and outputs",
                 (5 * qn + 4 * kvn + ln) * sizeof(float));
        goto fail;
    }
    if (!opt.do_path)
        attn_fill_normal(dout, qn, opt.seed, ATTN_STREAM_DO);

    attn_bench_opts bo = {opt.warmup, opt.iters, 1000.0};
    attn_bwd_stats st = {0};
    rc = step->run(step, p, q, k, v, dout, o, lse, dq, dk, dv, opt.deterministic,
                   opt.bench ? &bo : NULL, &st, msg, sizeof msg);
    if (rc)
        goto fail;

    bwd_check cr = {0};
    if (opt.check && (rc = run_check(p, q, k, v, dout, dq, dk, dv, &cr, msg, sizeof msg)))
        goto fail;
    int pass = !opt.check || cr.ok;
    double vs_prev = -1;
    if (aprev.data) {
        attn_err e = attn_compare_f32(o, aprev.data, qn);
        vs_prev = (e.nan_count || e.nan_missing || e.inf_mismatch) ? INFINITY : e.max_abs;
    }
    /* outputs: written also on FAIL, for debugging */
    int64_t qshape[4] = {p->batch, p->heads_q, p->seqlen_q, p->head_dim};
    int64_t kvshape[4] = {p->batch, p->heads_kv, p->seqlen_k, p->head_dim};
    const char *paths[5] = {opt.out_path, opt.lse_path, opt.dq_path, opt.dk_path, opt.dv_path};
    const float *data[5] = {o, lse, dq, dk, dv};
    const int ranks[5] = {4, 3, 4, 4, 4};
    const int64_t *shapes[5] = {qshape, qshape, qshape, kvshape, kvshape};
    /* all or none: every output to its temporary, then all renamed */
    for (int f = 0; f < 5; f++)
        if ((rc = attn_outputs_write(&outs, paths[f], data[f], ranks[f], shapes[f], 0, msg,
                                     sizeof msg)))
            goto fail;
    if ((rc = attn_outputs_commit(&outs, msg, sizeof msg)))
        goto fail;

    printf("step %s (%s): forward by step %s, backward %s; %s\n", step->id, step->name,
           step->forward->id, opt.deterministic ? "deterministic" : "with atomic dQ",
           !opt.check ? "not checked (--no-check)"
           : !cr.checked_heads ? "not checked: too large for the float64 oracle (use --no-check)"
           : cr.checked_heads < p->batch * p->heads_q
               ? "checked the first K/V head's query heads against the float64 oracle"
               : "checked every gradient against the float64 oracle");
    if (opt.check && !cr.ok) {
        if (cr.nan_finite_inputs)
            printf("  NaN or inf in a gradient with finite inputs\n");
        for (int t = 0; t < 3 && cr.checked_heads; t++)
            printf("  rule %s: max_abs_err %.3g <= 3 x %.3g + 1e-6 (nan %zu, missing %zu)\n",
                   t == 0 ? "dQ" : t == 1 ? "dK" : "dV", cr.e[t].max_abs, cr.base[t],
                   cr.e[t].nan_count, cr.e[t].nan_missing);
    }
    double fl = attn_flops_forward(p);
    printf("result: step=%s device=gpu dtype=fp32 B=%d Hq=%d Hkv=%d Sq=%d Sk=%d D=%d causal=%d "
           "scale=%.6g deterministic=%d ms=%.4f tflops=%.4f extra_bytes=%zu",
           step->id, p->batch, p->heads_q, p->heads_kv, p->seqlen_q, p->seqlen_k, p->head_dim,
           p->causal, (double)attn_scale(p), opt.deterministic, st.ms_bwd,
           st.ms_bwd > 0 ? 2.5 * fl / (st.ms_bwd * 1e-3) * 1e-12 : 0.0, st.extra_bytes);
    if (opt.bench)
        printf(" runs=%d ms_fwd_bwd=%.4f tflops_fwd_bwd=%.4f", st.runs, st.ms_fwd_bwd,
               st.ms_fwd_bwd > 0 ? 3.5 * fl / (st.ms_fwd_bwd * 1e-3) * 1e-12 : 0.0);
    if (opt.check && cr.checked_heads) {
        double mx = 0, rl = 0;
        for (int t = 0; t < 3; t++)
            mx = fmax(mx, cr.e[t].max_abs), rl = fmax(rl, cr.e[t].rel_l2);
        printf(" max_abs_err=%.3e rel_l2_err=%.3e dq_err=%.3e dk_err=%.3e dv_err=%.3e", mx, rl,
               cr.e[0].max_abs, cr.e[1].max_abs, cr.e[2].max_abs);
        if (cr.checked_heads < p->batch * p->heads_q)
            printf(" checked_heads=%d", cr.checked_heads);
    } else if (opt.check) {
        printf(" checked_heads=0");
    }
    if (aprev.data)
        printf(" vs_prev_max_abs=%.3e", vs_prev);
    printf("\n%s\n", pass ? "PASS" : "FAIL");
    rc = pass ? ATTN_EXIT_PASS : ATTN_EXIT_FAIL;
    goto done;

fail:
    attn_outputs_discard(&outs);
    attn_print_error(stderr, msg);
done:
    attn_free(q), attn_free(k), attn_free(v), attn_free(dout), attn_free(o), attn_free(lse);
    attn_free(dq), attn_free(dk), attn_free(dv);
    attn_array_free(&aq), attn_array_free(&ak), attn_array_free(&av), attn_array_free(&ado);
    attn_array_free(&aprev);
    return rc;
}
