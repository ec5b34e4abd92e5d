/**
 * @file driver.c
 * @brief The step program every step shares, forward or backward: flags →
 * inputs → run (and time) → check against the float64 oracle → outputs →
 * `result:` line.
 *
 * A step file only supplies its descriptor (attn_step) and a two-line
 * main(); everything a learner does not need to see to understand the step
 * is here.
 */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/** Past this many multiply-adds the oracle checks a sample of rows. */
#define FULL_CHECK_MACS 1e9
/** How many rows a sampled check compares. */
#define SAMPLE_ROWS 256

/** One call of a CPU step (cpu_run_timed() times it): 0, 2 or 3. */
typedef int (*cpu_call_fn)(const attn_step *step, void *ctx);

/** The arguments of a float forward (attn_cpu_run). */
typedef struct {
    const attn_problem *p; /**< the problem */
    const float *q;        /**< Q */
    const float *k;        /**< K */
    const float *v;        /**< V */
    float *o;              /**< O */
    float *lse;            /**< LSE */
} cpu_fwd_args;

/** cpu_call_fn of a float forward. */
static int call_cpu_forward(const attn_step *step, void *ctx)
{
    const cpu_fwd_args *a = ctx;
    return step->cpu_forward(a->p, a->q, a->k, a->v, a->o, a->lse);
}

/** cpu_call_fn of a params forward: ctx is the attn_params. */
static int call_params_forward(const attn_step *step, void *ctx)
{
    return step->params_forward((const attn_params *)ctx, NULL, NULL);
}

/** The CPU runners' one timing discipline: warm-up, then up to bench->iters
 *  timed calls (capped by bench->max_ms), median; extra_bytes is the peak of
 *  attn_alloc() during the calls. */
static int cpu_run_timed(const attn_step *step, cpu_call_fn call, void *ctx,
                         const attn_bench_opts *bench, attn_run_stats *st, char *msg,
                         size_t msg_len)
{
    int warmup = bench ? bench->warmup : 0, iters = bench ? bench->iters : 1;
    double *times = malloc((size_t)iters * sizeof *times), spent = 0, warm = 0;
    if (!times) {
        snprintf(msg, msg_len, "out of host memory: needed %zu bytes", (size_t)iters * sizeof *times);
        return ATTN_EXIT_RESOURCE;
    }
    attn_mem_reset_peak();
    int runs = 0;
    for (int it = 0; it < warmup + iters; it++) {
        double t0 = attn_now_ms();
        attn_clear_error();
        int rc = call(step, ctx);
        double t = attn_now_ms() - t0;
        if (rc) {
            if (rc == ATTN_EXIT_RESOURCE)
                snprintf(msg, msg_len, "step %s: out of host memory: needed %zu bytes, %zu available",
                         step->id, attn_mem_failed_bytes(), attn_mem_available_at_failure());
            else
                snprintf(msg, msg_len, "step %s refused the problem%s%s", step->id,
                         attn_last_error()[0] ? ": " : "", attn_last_error());
            free(times);
            return rc;
        }
        if (it < warmup) {
            warm += t;
            if (bench && bench->max_ms > 0 && warm >= bench->max_ms)
                it = warmup - 1; /* a slow step must not spend the budget on warm-up */
        } else {
            times[runs++] = t;
            spent += t;
            if (bench && spent >= bench->max_ms)
                break;
        }
    }
    st->extra_bytes = attn_mem_peak();
    st->runs = runs;
    st->ms = attn_median(times, runs);
    free(times);
    return 0;
}

attn_dtype attn_step_default_dtype(const attn_step *step)
{
    for (int t = 0; t < ATTN_DTYPE_COUNT; t++)
        if (step->caps.dtypes & (1u << t))
            return (attn_dtype)t;
    return ATTN_F32;
}

int attn_typed_setup(attn_params *pp, const attn_step *step, const attn_problem *p,
                     attn_dtype t, attn_layout layout, const float *q, const float *k,
                     const float *v, const float *o, void *hq, void *hk, void *hv, void *ho,
                     void *tq, void *tk, void *tv, void *to, float *lse, char *msg,
                     size_t msg_len)
{
    const int B = p->batch, Hq = p->heads_q, Hkv = p->heads_kv, D = p->head_dim;
    int rc;
    attn_params_init(pp, p, t, tq, tk, tv, to, lse);
    attn_tensor_strides(&pp->q, layout, Hq, p->seqlen_q, D);
    attn_tensor_strides(&pp->o, layout, Hq, p->seqlen_q, D);
    attn_tensor_strides(&pp->k, layout, Hkv, p->seqlen_k, D);
    attn_tensor_strides(&pp->v, layout, Hkv, p->seqlen_k, D);
    if ((rc = attn_params_check(pp, &step->caps, step->id, msg, msg_len)))
        return rc;
    if ((rc = attn_to_typed(hq, t, layout, q, B, Hq, p->seqlen_q, D)) ||
        (rc = attn_to_typed(hk, t, layout, k, B, Hkv, p->seqlen_k, D)) ||
        (rc = attn_to_typed(hv, t, layout, v, B, Hkv, p->seqlen_k, D)) ||
        (rc = attn_to_typed(ho, t, layout, o, B, Hq, p->seqlen_q, D)))
        snprintf(msg, msg_len, "%s", attn_last_error());
    return rc;
}

int attn_step_takes(const attn_step *step, attn_dtype t, attn_layout layout, char *msg,
                    size_t msg_len)
{
    if (step->params_forward) {
        if ((unsigned)t >= ATTN_DTYPE_COUNT || !(step->caps.dtypes & (1u << t))) {
            char allowed[48] = "";
            for (int d = 0; d < ATTN_DTYPE_COUNT; d++)
                if (step->caps.dtypes & (1u << d)) {
                    strncat(allowed, " ", sizeof allowed - strlen(allowed) - 1);
                    strncat(allowed, attn_dtype_name((attn_dtype)d), sizeof allowed - strlen(allowed) - 1);
                }
            snprintf(msg, msg_len, "--dtype %s: step %s computes in%s", attn_dtype_name(t), step->id,
                     allowed);
            return ATTN_EXIT_BAD_INPUT;
        }
        if (layout != ATTN_LAYOUT_BHSD && !(step->caps.features & ATTN_FEAT_STRIDES)) {
            snprintf(msg, msg_len, "--layout bshd: step %s takes contiguous BHSD tensors only",
                     step->id);
            return ATTN_EXIT_BAD_INPUT;
        }
        return 0;
    }
    if (t != ATTN_F32) {
        snprintf(msg, msg_len, "--dtype %s: step %s computes in fp32 only", attn_dtype_name(t),
                 step->id);
        return ATTN_EXIT_BAD_INPUT;
    }
    if (layout != ATTN_LAYOUT_BHSD) {
        snprintf(msg, msg_len, "--layout bshd: step %s takes contiguous BHSD tensors only", step->id);
        return ATTN_EXIT_BAD_INPUT;
    }
    return 0;
}

/** The CPU runner of a step with a params forward (attn_cpu_run()). */
static int cpu_run_typed(const attn_step *step, const attn_problem *p, attn_dtype t,
                         attn_layout layout, const float *q, const float *k, const float *v,
                         float *o, float *lse, const attn_bench_opts *bench, attn_run_stats *st,
                         char *msg, size_t msg_len);

int attn_cpu_run(const attn_step *step, const attn_problem *p, attn_dtype t, attn_layout layout,
                 const float *q, const float *k, const float *v, float *o, float *lse,
                 const attn_bench_opts *bench, attn_run_stats *st, char *msg, size_t msg_len)
{
    int rc = step->supports ? step->supports(p, msg, msg_len) : 0;
    if (rc)
        return rc;
    if (step->params_forward)
        return cpu_run_typed(step, p, t, layout, q, k, v, o, lse, bench, st, msg, msg_len);
    if ((rc = attn_step_takes(step, t, layout, msg, msg_len)))
        return rc;
    cpu_fwd_args a = {p, q, k, v, o, lse};
    return cpu_run_timed(step, call_cpu_forward, &a, bench, st, msg, msg_len);
}

static int cpu_run_typed(const attn_step *step, const attn_problem *p, attn_dtype t,
                         attn_layout layout, const float *q, const float *k, const float *v,
                         float *o, float *lse, const attn_bench_opts *bench, attn_run_stats *st,
                         char *msg, size_t msg_len)
{
    const size_t es = attn_dtype_size(t), qn = attn_q_elems(p), kvn = attn_kv_elems(p);
    attn_params pp;
    int rc;
    if (!step->params_forward) {
        snprintf(msg, msg_len, "step %s takes float tensors only", step->id);
        return ATTN_EXIT_BAD_INPUT;
    }
    /* the harness's typed copies: malloc, not attn_alloc (not the step's memory) */
    void *tq = malloc(qn * es), *tk = malloc(kvn * es), *tv = malloc(kvn * es), *to = malloc(qn * es);
    if (!tq || !tk || !tv || !to) {
        snprintf(msg, msg_len, "out of host memory: needed %zu bytes for the %s copies",
                 (2 * qn + 2 * kvn) * es, attn_dtype_name(t));
        rc = ATTN_EXIT_RESOURCE;
        goto done;
    }
    if ((rc = attn_typed_setup(&pp, step, p, t, layout, q, k, v, o, tq, tk, tv, to, tq, tk, tv,
                               to, lse, msg, msg_len)))
        goto done;
    if ((rc = cpu_run_timed(step, call_params_forward, &pp, bench, st, msg, msg_len)))
        goto done;
    rc = attn_from_typed(o, to, t, layout, p->batch, p->heads_q, p->seqlen_q, p->head_dim);
done:
    free(tq), free(tk), free(tv), free(to);
    return rc;
}

void attn_take_qkv(const attn_problem *p, int from_files, uint64_t seed, attn_array *aq,
                   attn_array *ak, attn_array *av, float **q, float **k, float **v)
{
    const size_t qn = attn_q_elems(p), kvn = attn_kv_elems(p);
    if (from_files) {
        *q = aq->data, *k = ak->data, *v = av->data;
        aq->data = ak->data = av->data = NULL;
        return;
    }
    *q = attn_alloc(qn * sizeof **q);
    *k = attn_alloc(kvn * sizeof **k);
    *v = attn_alloc(kvn * sizeof **v);
    if (*q && *k && *v) {
        attn_fill_normal(*q, qn, seed, ATTN_STREAM_Q);
        attn_fill_normal(*k, kvn, seed, ATTN_STREAM_K);
        attn_fill_normal(*v, kvn, seed, ATTN_STREAM_V);
    }
}

int attn_read_input(const char *flag, const char *path, attn_array *a, char *msg, size_t n)
{
    return attn_read_input_typed(flag, path, a, 0, msg, n);
}

int attn_read_input_typed(const char *flag, const char *path, attn_array *a, int allow_fp16,
                          char *msg, size_t n)
{
    int rc = attn_peek_input(flag, path, a, allow_fp16, msg, n);
    return rc ? rc : attn_read_peeked(flag, path, a, msg, n);
}

int attn_read_peeked(const char *flag, const char *path, attn_array *a, char *msg, size_t n)
{
    attn_array full;
    int rc = attn_npy_read(path, &full, msg, n);
    if (rc)
        return rc;
    if (full.rank != a->rank || full.was_fp16 != a->was_fp16 ||
        memcmp(full.shape, a->shape, sizeof full.shape) != 0) {
        attn_array_free(&full);
        snprintf(msg, n, "%s %s: the file changed while it was read", flag, path);
        return ATTN_EXIT_BAD_INPUT;
    }
    *a = full;
    return 0;
}

int attn_peek_input(const char *flag, const char *path, attn_array *a, int allow_fp16,
                    char *msg, size_t n)
{
    int rc = attn_npy_peek(path, a, msg, n);
    if (rc)
        return rc;
    if (a->rank != 4) {
        snprintf(msg, n, "%s %s: expected rank 4 [batch, heads, seq, dim], got rank %d",
                 flag, path, a->rank);
        return ATTN_EXIT_BAD_INPUT;
    }
    if (a->was_fp16 && !allow_fp16) {
        snprintf(msg, n, "%s %s: float16 input; this step computes in fp32 (give float32)",
                 flag, path);
        return ATTN_EXIT_BAD_INPUT;
    }
    for (int i = 0; i < 4; i++)
        if (a->shape[i] < 1 || a->shape[i] > (1 << 24)) {
            snprintf(msg, n, "%s %s: dimension %d is %lld, expected 1..16777216", flag,
                     path, i, (long long)a->shape[i]);
            return ATTN_EXIT_BAD_INPUT;
        }
    return 0;
}

int attn_problem_from_files(attn_opts *o, const attn_array *q, const attn_array *k,
                            const attn_array *v, char *msg, size_t n)
{
    attn_problem *p = &o->prob;
    for (int i = 0; i < 4; i++)
        if (k->shape[i] != v->shape[i]) {
            snprintf(msg, n, "--k and --v: shapes differ in dimension %d (%lld vs %lld)", i,
                     (long long)k->shape[i], (long long)v->shape[i]);
            return ATTN_EXIT_BAD_INPUT;
        }
    if (q->shape[0] != k->shape[0] || q->shape[3] != k->shape[3]) {
        snprintf(msg, n, "--q and --k: batch and head dim must match ([%lld,..,%lld] vs [%lld,..,%lld])",
                 (long long)q->shape[0], (long long)q->shape[3], (long long)k->shape[0],
                 (long long)k->shape[3]);
        return ATTN_EXIT_BAD_INPUT;
    }
    const int from[ATTN_SG_COUNT] = {(int)q->shape[0], (int)q->shape[1], (int)k->shape[1],
                                     (int)q->shape[2], (int)k->shape[2], (int)q->shape[3]};
    int *field[ATTN_SG_COUNT] = {&p->batch, &p->heads_q, &p->heads_kv,
                                 &p->seqlen_q, &p->seqlen_k, &p->head_dim};
    static const char *names[ATTN_SG_COUNT] = {"--batch", "--heads", "--kv-heads",
                                               "--seq", "--seq-k", "--dim"};
    for (int i = 0; i < ATTN_SG_COUNT; i++) {
        if (o->shape_given[i] && *field[i] != from[i]) {
            snprintf(msg, n, "%s %d disagrees with the input files (%d)", names[i],
                     *field[i], from[i]);
            return ATTN_EXIT_BAD_INPUT;
        }
        *field[i] = from[i];
    }
    return attn_problem_validate(p, msg, n);
}

/** Rows to check: all of them, or a fixed-seed sample when the oracle is big. */
static int64_t *choose_rows(const attn_problem *p, uint64_t seed, size_t *n_rows)
{
    size_t total = attn_lse_elems(p);
    *n_rows = total;
    double macs = 2.0 * total * p->seqlen_k * p->head_dim;
    if (macs <= FULL_CHECK_MACS) {
        *n_rows = total;
        return NULL;
    }
    size_t n = total < SAMPLE_ROWS ? total : SAMPLE_ROWS;
    int64_t *rows = malloc(n * sizeof *rows);
    if (!rows)
        return NULL; /* the check then falls back to every row */
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    rows[0] = 0;                       /* the first row ... */
    /* cppcheck-suppress knownConditionTrueFalse ; false positive (2.10): n is 1..256 */
    if (n > 1)
        rows[1] = (int64_t)total - 1;  /* ... the last row ... */
    /* cppcheck-suppress knownConditionTrueFalse ; the same false positive */
    for (size_t i = 2; i < n; i++) {  /* ... and random ones (xorshift64) */
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        rows[i] = (int64_t)(x % total);
    }
    *n_rows = n;
    return rows;
}

typedef struct {
    attn_err o;               /* O against the oracle */
    double lse_err;           /* LSE against the oracle */
    double baseline_max_abs;  /* the naive rows' error, worst summation order: the rule's scale */
    size_t checked_rows;
    int sampled;
    int nan_finite_inputs;    /* NaN in O although every input was finite */
    double atol;              /* the rule's absolute term at this precision */
    double lse_tol;           /* the LSE tolerance at this precision */
    int ok;
} check_result;

int attn_all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

/** The check against the float64 oracle (and --prev): errors, the rule, the verdict. */
static int run_check(const attn_problem *p, const attn_opts *opt, attn_dtype t, const float *q,
                     const float *k, const float *v, const float *o, const float *lse,
                     check_result *cr, char *msg, size_t n)
{
    const int D = p->head_dim;
    size_t n_rows;
    int64_t *rows = choose_rows(p, opt->seed, &n_rows);
    cr->sampled = rows != NULL;
    cr->checked_rows = n_rows;
    double *o_ref = malloc(n_rows * D * sizeof *o_ref), *lse_ref = malloc(n_rows * sizeof *lse_ref);
    float *o_got = rows ? malloc(n_rows * D * sizeof *o_got) : NULL;
    float *lse_got = rows ? malloc(n_rows * sizeof *lse_got) : NULL;
    attn_fwd_rule rule;
    int rc = 0;
    if (o_ref && lse_ref && (!rows || (o_got && lse_got))) {
        attn_oracle_forward(p, q, k, v, rows, n_rows, o_ref, lse_ref);
        /* the rule (the suites' too): naive attention at the step's
         * precision in every summation order, against the oracle */
        rc = attn_forward_rule(p, t, q, k, v, rows, n_rows, o_ref, lse_ref, &rule);
    }
    if (!o_ref || !lse_ref || (rows && (!o_got || !lse_got)) || rc) {
        snprintf(msg, n, "out of host memory for the check: needed %zu bytes",
                 n_rows * D * (sizeof(double) + 2 * sizeof(float)));
        free(rows), free(o_ref), free(lse_ref), free(o_got), free(lse_got);
        return ATTN_EXIT_RESOURCE;
    }
    if (rows) {
        attn_gather_rows(o, D, rows, n_rows, o_got);
        attn_gather_rows(lse, 1, rows, n_rows, lse_got);
    }
    cr->o = attn_compare(rows ? o_got : o, o_ref, n_rows * D);
    cr->lse_err = attn_lse_err(rows ? lse_got : lse, lse_ref, n_rows);
    cr->baseline_max_abs = rule.baseline;
    size_t qn = attn_q_elems(p), kvn = attn_kv_elems(p);
    cr->nan_finite_inputs = attn_all_finite(q, qn) && attn_all_finite(k, kvn) &&
                            attn_all_finite(v, kvn) && !attn_all_finite(o, qn);
    cr->atol = rule.atol;
    cr->lse_tol = rule.lse_tol;
    cr->ok = attn_forward_ok(&rule, &cr->o, cr->lse_err) && !cr->nan_finite_inputs;
    free(rows), free(o_ref), free(lse_ref), free(o_got), free(lse_got);
    return 0;
}

/** The forward's verdict lines (after a check that failed: why). */
static void print_forward_verdict(const attn_opts *opt, const check_result *cr)
{
    if (!opt->check || cr->ok)
        return;
    if (cr->nan_finite_inputs || cr->o.nan_count)
        printf("  NaN in O with finite inputs (or where the oracle has none): %zu\n",
               cr->o.nan_count);
    if (cr->o.nan_missing || cr->o.inf_mismatch)
        printf("  NaN/Inf mismatch against the oracle: %zu missing NaN, %zu inf\n",
               cr->o.nan_missing, cr->o.inf_mismatch);
    printf("  rule: max_abs_err %.3g <= 2 x %.3g + %g; lse_err %.3g <= %g\n", cr->o.max_abs,
           cr->baseline_max_abs, cr->atol, cr->lse_err, cr->lse_tol);
}

/** The backward's verdict lines (after a check that failed: why). */
static void print_backward_verdict(const attn_opts *opt, const attn_grad_check *cr)
{
    if (!opt->check || cr->ok)
        return;
    if (cr->nan_finite_inputs)
        printf("  NaN or inf in a gradient with finite inputs\n");
    for (int t = 0; t < 3 && cr->checked_heads; t++)
        printf("  rule %s: max_abs_err %.3g <= 3 x %.3g + 1e-6 (nan %zu, missing %zu)\n",
               t == 0 ? "dQ" : t == 1 ? "dK" : "dV", cr->e[t].max_abs, cr->base[t],
               cr->e[t].nan_count, cr->e[t].nan_missing);
}

/** The `result:` line's fields after the shape, for a forward run. */
static void print_forward_result(const attn_problem *p, const attn_opts *opt,
                                 const attn_run_stats *st, const check_result *cr)
{
    double secs = st->ms * 1e-3;
    printf(" ms=%.4f tflops=%.4f extra_bytes=%zu", st->ms,
           secs > 0 ? attn_flops_forward(p) / secs * 1e-12 : 0.0, st->extra_bytes);
    if (opt->layout == ATTN_LAYOUT_BSHD)
        printf(" layout=bshd");
    if (opt->bench)
        printf(" runs=%d", st->runs);
    if (opt->check) {
        printf(" max_abs_err=%.3e rel_l2_err=%.3e lse_err=%.3e", cr->o.max_abs, cr->o.rel_l2,
               cr->lse_err);
        if (cr->sampled)
            printf(" checked_rows=%zu", cr->checked_rows);
    }
}

/** The `result:` line's fields after the shape, for a backward run
 *  (FLOPs: 2.5 forwards for the backward, 3.5 for forward + backward). */
static void print_backward_result(const attn_problem *p, const attn_opts *opt,
                                  const attn_bwd_stats *st, const attn_grad_check *cr)
{
    double fl = attn_flops_forward(p);
    printf(" deterministic=%d ms=%.4f tflops=%.4f extra_bytes=%zu", opt->deterministic,
           st->ms_bwd, st->ms_bwd > 0 ? 2.5 * fl / (st->ms_bwd * 1e-3) * 1e-12 : 0.0,
           st->extra_bytes);
    if (opt->bench)
        printf(" runs=%d ms_fwd_bwd=%.4f tflops_fwd_bwd=%.4f", st->runs, st->ms_fwd_bwd,
               st->ms_fwd_bwd > 0 ? 3.5 * fl / (st->ms_fwd_bwd * 1e-3) * 1e-12 : 0.0);
    if (opt->check && cr->checked_heads) {
        double mx = 0, rl = 0;
        for (int t = 0; t < 3; t++)
            mx = fmax(mx, cr->e[t].max_abs), rl = fmax(rl, cr->e[t].rel_l2);
        printf(" max_abs_err=%.3e rel_l2_err=%.3e dq_err=%.3e dk_err=%.3e dv_err=%.3e", mx, rl,
               cr->e[0].max_abs, cr->e[1].max_abs, cr->e[2].max_abs);
        if (cr->checked_heads < p->batch * p->heads_q)
            printf(" checked_heads=%d", cr->checked_heads);
    } else if (opt->check) {
        printf(" checked_heads=0");
    }
}

/** 1 when @p a is a rank-4 array of shape [B, Hq, Sq, D] (O's, dO's). */
static int shaped_like_o(const attn_array *a, const attn_problem *p)
{
    return a->rank == 4 && a->shape[0] == p->batch && a->shape[1] == p->heads_q &&
           a->shape[2] == p->seqlen_q && a->shape[3] == p->head_dim;
}

int attn_step_main(int argc, char **argv, const attn_step *step)
{
    char msg[512] = "";
    attn_opts opt;
    int rc = attn_parse_args(argc, argv, &opt, stdout, msg, sizeof msg);
    if (rc == 1)
        return 0;
    /* a backward step also reads dO and writes dQ, dK, dV */
    const int bwd = step->kind == ATTN_KIND_BACKWARD;
    attn_array aq = {0}, ak = {0}, av = {0}, ado = {0}, aprev = {0};
    float *q = NULL, *k = NULL, *v = NULL, *dout = NULL, *o = NULL, *lse = NULL;
    float *dq = NULL, *dk = NULL, *dv = NULL;
    attn_problem *p = &opt.prob;
    attn_outputs outs;
    attn_outputs_init(&outs);
    if (rc)
        goto fail;
    /* the step's element type (--dtype, or the first it takes: fp32 for the
     * float steps) and layout (BHSD unless --layout) */
    const int t = opt.dtype ? attn_dtype_parse(opt.dtype) : (int)attn_step_default_dtype(step);
    const attn_dtype dt = t < 0 ? ATTN_F32 : (attn_dtype)t; /* the parser allows known names only */
    if ((rc = attn_step_takes(step, dt, opt.layout, msg, sizeof msg)))
        goto fail;
    rc = ATTN_EXIT_BAD_INPUT;
    if (!bwd && (opt.do_path || opt.dq_path || opt.dk_path || opt.dv_path || opt.deterministic_given)) {
        snprintf(msg, sizeof msg,
                 "--do/--dq/--dk/--dv/--deterministic: step %s is a forward step (backward: step 07)",
                 step->id);
        goto fail;
    }
    /* float16 files where the step computes in a 16-bit type */
    const int f16 = dt != ATTN_F32;
    if (opt.q_path) {
        /* every input's header first: shapes and types agree before any
         * data is read (a 13 GB file of the wrong shape is refused at once) */
        if ((rc = attn_peek_input("--q", opt.q_path, &aq, f16, msg, sizeof msg)) ||
            (rc = attn_peek_input("--k", opt.k_path, &ak, f16, msg, sizeof msg)) ||
            (rc = attn_peek_input("--v", opt.v_path, &av, f16, msg, sizeof msg)) ||
            (rc = attn_problem_from_files(&opt, &aq, &ak, &av, msg, sizeof msg)))
            goto fail;
    }
    if (opt.do_path) {
        if ((rc = attn_peek_input("--do", opt.do_path, &ado, f16, msg, sizeof msg)))
            goto fail;
        rc = ATTN_EXIT_BAD_INPUT;
        if (!shaped_like_o(&ado, p)) {
            snprintf(msg, sizeof msg, "--do %s: shape does not match O [%d, %d, %d, %d]",
                     opt.do_path, p->batch, p->heads_q, p->seqlen_q, p->head_dim);
            goto fail;
        }
    }
    /* a backward step runs its forward too: both must take the shape */
    if ((bwd && step->forward->supports && (rc = step->forward->supports(p, msg, sizeof msg))) ||
        (step->supports && (rc = step->supports(p, msg, sizeof msg))))
        goto fail;
    if (opt.prev_path) {
        if ((rc = attn_npy_peek(opt.prev_path, &aprev, msg, sizeof msg)))
            goto fail;
        rc = ATTN_EXIT_BAD_INPUT;
        if (aprev.was_fp16 && dt == ATTN_F32) { /* as for --q */
            snprintf(msg, sizeof msg, "--prev %s: float16 input; this step computes in fp32 (give float32)",
                     opt.prev_path);
            goto fail;
        }
        if (!shaped_like_o(&aprev, p)) {
            snprintf(msg, sizeof msg, "--prev %s: shape does not match O [%d, %d, %d, %d]",
                     opt.prev_path, p->batch, p->heads_q, p->seqlen_q, p->head_dim);
            goto fail;
        }
    }
    /* the outputs: writable, distinct files, none of them an input */
    {
        static const char *const in_flags[5] = {"--q", "--k", "--v", "--prev", "--do"};
        const char *in_paths[5] = {opt.q_path, opt.k_path, opt.v_path, opt.prev_path, opt.do_path};
        if ((rc = attn_outputs_add(&outs, "--out", opt.out_path, msg, sizeof msg)) ||
            (rc = attn_outputs_add(&outs, "--lse", opt.lse_path, msg, sizeof msg)) ||
            (bwd && ((rc = attn_outputs_add(&outs, "--dq", opt.dq_path, msg, sizeof msg)) ||
                     (rc = attn_outputs_add(&outs, "--dk", opt.dk_path, msg, sizeof msg)) ||
                     (rc = attn_outputs_add(&outs, "--dv", opt.dv_path, msg, sizeof msg)))) ||
            (rc = attn_outputs_not_inputs(&outs, in_flags, in_paths, 5, msg, sizeof msg)))
            goto fail;
    }

    /* the data of the files, now that every check has passed */
    if ((opt.q_path && ((rc = attn_read_peeked("--q", opt.q_path, &aq, msg, sizeof msg)) ||
                        (rc = attn_read_peeked("--k", opt.k_path, &ak, msg, sizeof msg)) ||
                        (rc = attn_read_peeked("--v", opt.v_path, &av, msg, sizeof msg)))) ||
        (opt.do_path && (rc = attn_read_peeked("--do", opt.do_path, &ado, msg, sizeof msg))) ||
        (opt.prev_path && (rc = attn_read_peeked("--prev", opt.prev_path, &aprev, msg, sizeof msg))))
        goto fail;

    /* inputs (from files, or the shared seeded generator) and outputs */
    size_t qn = attn_q_elems(p), kvn = attn_kv_elems(p), ln = attn_lse_elems(p);
    attn_take_qkv(p, opt.q_path != NULL, opt.seed, &aq, &ak, &av, &q, &k, &v);
    o = attn_alloc(qn * sizeof *o);
    lse = attn_alloc(ln * sizeof *lse);
    if (bwd) {
        dout = ado.data ? ado.data : attn_alloc(qn * sizeof *dout);
        ado.data = NULL; /* dout owns it now */
        dq = attn_alloc(qn * sizeof *dq);
        dk = attn_alloc(kvn * sizeof *dk);
        dv = attn_alloc(kvn * sizeof *dv);
    }
    if (!q || !k || !v || !o || !lse || (bwd && (!dout || !dq || !dk || !dv))) {
        rc = ATTN_EXIT_RESOURCE;
        snprintf(msg, sizeof msg, "out of host memory: needed %zu bytes for inputs and outputs",
                 ((bwd ? 5 : 2) * qn + (bwd ? 4 : 2) * kvn + ln) * sizeof(float));
        goto fail;
    }
    if (bwd && !opt.do_path)
        attn_fill_normal(dout, qn, opt.seed, ATTN_STREAM_DO);
    /* converted once to the step's precision: the step, the oracle and the
     * baseline all see these rounded values */
    attn_round_array(q, qn, dt);
    attn_round_array(k, kvn, dt);
    attn_round_array(v, kvn, dt);
    if (bwd)
        attn_round_array(dout, qn, dt);
    for (size_t i = 0; i < qn; i++)
        o[i] = ATTN_POISON; /* an element the step forgets to write fails the check */
    for (size_t i = 0; i < ln; i++)
        lse[i] = ATTN_POISON;

    attn_bench_opts bo = {opt.warmup, opt.iters, 1000.0};
    attn_run_stats st = {0};
    attn_bwd_stats bst = {0};
    rc = bwd ? step->run_backward(step, p, q, k, v, dout, o, lse, dq, dk, dv, opt.deterministic,
                                  0, opt.bench ? &bo : NULL, &bst, msg, sizeof msg)
             : step->run(step, p, dt, opt.layout, q, k, v, o, lse, opt.bench ? &bo : NULL, &st,
                         msg, sizeof msg);
    if (rc)
        goto fail;

    check_result cr = {0};
    attn_grad_check gr = {0};
    if (opt.check &&
        (rc = bwd ? attn_check_gradients(p, q, k, v, dout, dq, dk, dv, &gr, msg, sizeof msg)
                  : run_check(p, &opt, dt, q, k, v, o, lse, &cr, msg, sizeof msg)))
        goto fail;
    int pass = !opt.check || (bwd ? gr.ok : cr.ok);
    double vs_prev = -1;
    if (aprev.data) {
        attn_err e = attn_compare_f32(o, aprev.data, qn);
        vs_prev = (e.nan_count || e.nan_missing || e.inf_mismatch) ? INFINITY : e.max_abs;
    }
    /* outputs: written also on FAIL, for debugging (notes/design.md). O in
     * the input's type: float16 for fp16, float32 otherwise (NumPy has no
     * bf16). All or none: each to its temporary, then all renamed; on a
     * failure files already at the paths stay as they were. */
    int64_t qshape[4] = {p->batch, p->heads_q, p->seqlen_q, p->head_dim};
    int64_t kvshape[4] = {p->batch, p->heads_kv, p->seqlen_k, p->head_dim};
    if ((rc = attn_outputs_write(&outs, opt.out_path, o, 4, qshape, dt == ATTN_F16, msg, sizeof msg)) ||
        (rc = attn_outputs_write(&outs, opt.lse_path, lse, 3, qshape, 0, msg, sizeof msg)) ||
        (bwd && ((rc = attn_outputs_write(&outs, opt.dq_path, dq, 4, qshape, 0, msg, sizeof msg)) ||
                 (rc = attn_outputs_write(&outs, opt.dk_path, dk, 4, kvshape, 0, msg, sizeof msg)) ||
                 (rc = attn_outputs_write(&outs, opt.dv_path, dv, 4, kvshape, 0, msg, sizeof msg)))) ||
        (rc = attn_outputs_commit(&outs, msg, sizeof msg)))
        goto fail;

    if (bwd)
        printf("step %s (%s): forward by step %s, backward %s; %s\n", step->id, step->name,
               step->forward->id, opt.deterministic ? "deterministic" : "with atomic dQ",
               !opt.check ? "not checked (--no-check)"
               : !gr.checked_heads ? "not checked: too large for the float64 oracle (use --no-check)"
               : gr.checked_heads < p->batch * p->heads_q
                   ? "checked the first K/V head's query heads against the float64 oracle"
                   : "checked every gradient against the float64 oracle");
    else
        printf("step %s (%s): %s\n", step->id, step->name,
               opt.check ? (cr.sampled ? "checked sampled rows against the float64 oracle"
                                       : "checked every row against the float64 oracle")
                         : "not checked (--no-check)");
    if (bwd)
        print_backward_verdict(&opt, &gr);
    else
        print_forward_verdict(&opt, &cr);
    printf("result: step=%s device=%s dtype=%s B=%d Hq=%d Hkv=%d Sq=%d Sk=%d D=%d causal=%d "
           "scale=%.6g",
           step->id, step->on_gpu ? "gpu" : "cpu", attn_dtype_name(dt), p->batch, p->heads_q,
           p->heads_kv, p->seqlen_q, p->seqlen_k, p->head_dim, p->causal, (double)attn_scale(p));
    if (bwd)
        print_backward_result(p, &opt, &bst, &gr);
    else
        print_forward_result(p, &opt, &st, &cr);
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
