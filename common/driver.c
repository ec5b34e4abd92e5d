/**
 * @file driver.c
 * @brief The step program every step shares: flags → inputs → run (and
 * time) → check against the float64 oracle → outputs → `result:` line.
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

int attn_cpu_run(const attn_step *step, const attn_problem *p, const float *q,
                 const float *k, const float *v, float *o, float *lse,
                 const attn_bench_opts *bench, attn_run_stats *st, char *msg,
                 size_t msg_len)
{
    int rc = step->supports ? step->supports(p, msg, msg_len) : 0;
    if (rc)
        return rc;
    int warmup = bench ? bench->warmup : 0, iters = bench ? bench->iters : 1;
    double *times = malloc((size_t)iters * sizeof *times), spent = 0;
    if (!times) {
        snprintf(msg, msg_len, "out of host memory: needed %zu bytes", (size_t)iters * sizeof *times);
        return ATTN_EXIT_RESOURCE;
    }
    attn_mem_reset_peak();
    int runs = 0;
    for (int it = 0; it < warmup + iters; it++) {
        double t0 = attn_now_ms();
        rc = step->cpu_forward(p, q, k, v, o, lse);
        double t = attn_now_ms() - t0;
        if (rc) {
            if (rc == ATTN_EXIT_RESOURCE)
                snprintf(msg, msg_len, "step %s: out of host memory: needed %zu bytes",
                         step->id, attn_mem_failed_bytes());
            else
                snprintf(msg, msg_len, "step %s refused the problem", step->id);
            free(times);
            return rc;
        }
        if (it >= warmup) {
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
    int rc = attn_npy_read(path, a, msg, n);
    if (rc)
        return rc;
    if (a->rank != 4) {
        snprintf(msg, n, "%s %s: expected rank 4 [batch, heads, seq, dim], got rank %d",
                 flag, path, a->rank);
        return ATTN_EXIT_BAD_INPUT;
    }
    if (a->was_fp16) {
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

int attn_probe_writable(const char *flag, const char *path, char *msg, size_t n)
{
    struct stat st;
    if (!path)
        return 0;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        snprintf(msg, n, "%s %s: exists and is not a regular file", flag, path);
        return ATTN_EXIT_BAD_INPUT;
    }
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.probe.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        snprintf(msg, n, "%s: path too long", flag);
        return ATTN_EXIT_BAD_INPUT;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(msg, n, "%s %s: cannot write there", flag, path);
        return ATTN_EXIT_BAD_INPUT;
    }
    fclose(f);
    unlink(tmp);
    return 0;
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
    double baseline_max_abs;  /* the fp32 naive rows' error: the rule's scale */
    size_t checked_rows;
    int sampled;
    int nan_finite_inputs;    /* NaN in O although every input was finite */
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
static int run_check(const attn_problem *p, const attn_opts *opt, const float *q,
                     const float *k, const float *v, const float *o, const float *lse,
                     check_result *cr, char *msg, size_t n)
{
    const int D = p->head_dim;
    size_t n_rows;
    int64_t *rows = choose_rows(p, opt->seed, &n_rows);
    cr->sampled = rows != NULL;
    cr->checked_rows = n_rows;
    double *o_ref = malloc(n_rows * D * sizeof *o_ref), *lse_ref = malloc(n_rows * sizeof *lse_ref);
    float *o_base = malloc(n_rows * D * sizeof *o_base), *lse_base = malloc(n_rows * sizeof *lse_base);
    float *o_got = rows ? malloc(n_rows * D * sizeof *o_got) : NULL;
    float *lse_got = rows ? malloc(n_rows * sizeof *lse_got) : NULL;
    if (!o_ref || !lse_ref || !o_base || !lse_base || (rows && (!o_got || !lse_got))) {
        snprintf(msg, n, "out of host memory for the check: needed %zu bytes",
                 n_rows * D * (sizeof(double) + 2 * sizeof(float)));
        free(rows), free(o_ref), free(lse_ref), free(o_base), free(lse_base), free(o_got), free(lse_got);
        return ATTN_EXIT_RESOURCE;
    }
    attn_oracle_forward(p, q, k, v, rows, n_rows, o_ref, lse_ref);
    attn_naive_fp32_rows(p, q, k, v, rows, n_rows, o_base, lse_base);
    if (rows) {
        attn_gather_rows(o, D, rows, n_rows, o_got);
        attn_gather_rows(lse, 1, rows, n_rows, lse_got);
    }
    cr->o = attn_compare(rows ? o_got : o, o_ref, n_rows * D);
    cr->lse_err = attn_lse_err(rows ? lse_got : lse, lse_ref, n_rows);
    attn_err base = attn_compare(o_base, o_ref, n_rows * D);
    cr->baseline_max_abs = base.max_abs;
    size_t qn = attn_q_elems(p), kvn = attn_kv_elems(p);
    cr->nan_finite_inputs = attn_all_finite(q, qn) && attn_all_finite(k, kvn) &&
                            attn_all_finite(v, kvn) && !attn_all_finite(o, qn);
    cr->ok = attn_rule_ok(&cr->o, base.max_abs, 2.0, 1e-6) && cr->lse_err <= ATTN_LSE_TOL &&
             !cr->nan_finite_inputs;
    free(rows), free(o_ref), free(lse_ref), free(o_base), free(lse_base), free(o_got), free(lse_got);
    return 0;
}

int attn_step_main(int argc, char **argv, const attn_step *step)
{
    char msg[512] = "";
    attn_opts opt;
    int rc = attn_parse_args(argc, argv, &opt, stdout, msg, sizeof msg);
    if (rc == 1)
        return 0;
    attn_array aq = {0}, ak = {0}, av = {0}, aprev = {0};
    float *q = NULL, *k = NULL, *v = NULL, *o = NULL, *lse = NULL;
    attn_problem *p = &opt.prob;
    if (rc)
        goto fail;
    rc = ATTN_EXIT_BAD_INPUT;
    if (strcmp(opt.dtype, "fp32") != 0) {
        snprintf(msg, sizeof msg, "--dtype %s: step %s computes in fp32 only", opt.dtype, step->id);
        goto fail;
    }
    if (opt.do_path || opt.dq_path || opt.dk_path || opt.dv_path || opt.deterministic) {
        snprintf(msg, sizeof msg,
                 "--do/--dq/--dk/--dv/--deterministic: step %s is a forward step (backward: step 07)",
                 step->id);
        goto fail;
    }
    if (opt.q_path) {
        if ((rc = attn_read_input("--q", opt.q_path, &aq, msg, sizeof msg)) ||
            (rc = attn_read_input("--k", opt.k_path, &ak, msg, sizeof msg)) ||
            (rc = attn_read_input("--v", opt.v_path, &av, msg, sizeof msg)) ||
            (rc = attn_problem_from_files(&opt, &aq, &ak, &av, msg, sizeof msg)))
            goto fail;
    }
    if (step->supports && (rc = step->supports(p, msg, sizeof msg)))
        goto fail;
    rc = ATTN_EXIT_BAD_INPUT;
    if (opt.prev_path) {
        if ((rc = attn_npy_read(opt.prev_path, &aprev, msg, sizeof msg)))
            goto fail;
        rc = ATTN_EXIT_BAD_INPUT;
        int ok = aprev.rank == 4 && aprev.shape[0] == p->batch && aprev.shape[1] == p->heads_q &&
                 aprev.shape[2] == p->seqlen_q && aprev.shape[3] == p->head_dim;
        if (!ok) {
            snprintf(msg, sizeof msg, "--prev %s: shape does not match O [%d, %d, %d, %d]",
                     opt.prev_path, p->batch, p->heads_q, p->seqlen_q, p->head_dim);
            goto fail;
        }
    }
    if (opt.out_path && opt.lse_path && !strcmp(opt.out_path, opt.lse_path)) {
        snprintf(msg, sizeof msg, "--out and --lse name the same file (%s)", opt.out_path);
        goto fail;
    }
    if ((opt.out_path && (rc = attn_probe_writable("--out", opt.out_path, msg, sizeof msg))) ||
        (opt.lse_path && (rc = attn_probe_writable("--lse", opt.lse_path, msg, sizeof msg))))
        goto fail;

    /* inputs (from files, or the shared seeded generator) and outputs */
    size_t qn = attn_q_elems(p), kvn = attn_kv_elems(p), ln = attn_lse_elems(p);
    attn_take_qkv(p, opt.q_path != NULL, opt.seed, &aq, &ak, &av, &q, &k, &v);
    o = attn_alloc(qn * sizeof *o);
    lse = attn_alloc(ln * sizeof *lse);
    if (!q || !k || !v || !o || !lse) {
        rc = ATTN_EXIT_RESOURCE;
        snprintf(msg, sizeof msg, "out of host memory: needed %zu bytes for inputs and outputs",
                 (2 * qn + 2 * kvn + ln) * sizeof(float));
        goto fail;
    }
    for (size_t i = 0; i < qn; i++)
        o[i] = ATTN_POISON; /* an element the step forgets to write fails the check */
    for (size_t i = 0; i < ln; i++)
        lse[i] = ATTN_POISON;

    attn_bench_opts bo = {opt.warmup, opt.iters, 1000.0};
    attn_run_stats st = {0};
    rc = step->run(step, p, q, k, v, o, lse, opt.bench ? &bo : NULL, &st, msg, sizeof msg);
    if (rc)
        goto fail;

    check_result cr = {0};
    if (opt.check && (rc = run_check(p, &opt, q, k, v, o, lse, &cr, msg, sizeof msg)))
        goto fail;
    int pass = !opt.check || cr.ok;
    double vs_prev = -1;
    if (aprev.data) {
        attn_err e = attn_compare_f32(o, aprev.data, qn);
        vs_prev = (e.nan_count || e.nan_missing || e.inf_mismatch) ? INFINITY : e.max_abs;
    }
    /* outputs: written also on FAIL, for debugging (notes/design.md) */
    int64_t oshape[4] = {p->batch, p->heads_q, p->seqlen_q, p->head_dim};
    if (opt.out_path && (rc = attn_npy_write(opt.out_path, o, 4, oshape, 0, msg, sizeof msg)))
        goto fail; /* nothing written: a file already at the path stays as it was */
    if (opt.lse_path && (rc = attn_npy_write(opt.lse_path, lse, 3, oshape, 0, msg, sizeof msg))) {
        if (opt.out_path)
            unlink(opt.out_path); /* no half-written set of outputs */
        goto fail;
    }

    printf("step %s (%s): %s\n", step->id, step->name,
           opt.check ? (cr.sampled ? "checked sampled rows against the float64 oracle"
                                   : "checked every row against the float64 oracle")
                     : "not checked (--no-check)");
    if (opt.check && !cr.ok) {
        if (cr.nan_finite_inputs || cr.o.nan_count)
            printf("  NaN in O with finite inputs (or where the oracle has none): %zu\n",
                   cr.o.nan_count);
        if (cr.o.nan_missing || cr.o.inf_mismatch)
            printf("  NaN/Inf mismatch against the oracle: %zu missing NaN, %zu inf\n",
                   cr.o.nan_missing, cr.o.inf_mismatch);
        printf("  rule: max_abs_err %.3g <= 2 x %.3g + 1e-6; lse_err %.3g <= %g\n",
               cr.o.max_abs, cr.baseline_max_abs, cr.lse_err, ATTN_LSE_TOL);
    }
    double secs = st.ms * 1e-3;
    printf("result: step=%s device=%s dtype=fp32 B=%d Hq=%d Hkv=%d Sq=%d Sk=%d D=%d causal=%d "
           "scale=%.6g ms=%.4f tflops=%.4f extra_bytes=%zu",
           step->id, step->on_gpu ? "gpu" : "cpu", p->batch, p->heads_q, p->heads_kv,
           p->seqlen_q, p->seqlen_k, p->head_dim, p->causal, (double)attn_scale(p), st.ms,
           secs > 0 ? attn_flops_forward(p) / secs * 1e-12 : 0.0, st.extra_bytes);
    if (opt.bench)
        printf(" runs=%d", st.runs);
    if (opt.check) {
        printf(" max_abs_err=%.3e rel_l2_err=%.3e lse_err=%.3e", cr.o.max_abs, cr.o.rel_l2,
               cr.lse_err);
        if (cr.sampled)
            printf(" checked_rows=%zu", cr.checked_rows);
    }
    if (aprev.data)
        printf(" vs_prev_max_abs=%.3e", vs_prev);
    printf("\n%s\n", pass ? "PASS" : "FAIL");
    rc = pass ? ATTN_EXIT_PASS : ATTN_EXIT_FAIL;
    goto done;

fail:
    fprintf(stderr, "error: %s\n", msg);
done:
    attn_free(q), attn_free(k), attn_free(v), attn_free(o), attn_free(lse);
    attn_array_free(&aq), attn_array_free(&ak), attn_array_free(&av), attn_array_free(&aprev);
    return rc;
}
