/**
 * @file conformance.c
 * @brief The shared conformance table and the check every suite runs on it.
 */
#include "conformance.h"

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* (Sq, Sk) pairs: single rows, odd lengths, Sq < Sk and Sq > Sk, near-powers of two */
static const int SEQ[][2] = {{1, 1},     {1, 203},   {31, 31},     {113, 203},
                             {203, 113}, {256, 512}, {1023, 1024}, {1024, 1023}};
static const int DIMS[] = {32, 64, 128};
/* (Hq, Hkv): MHA, GQA, MQA; the largest shapes use fewer heads to keep time down */
static const int HEADS_SMALL[][2] = {{8, 8}, {8, 2}, {8, 1}};
static const int HEADS_LARGE[][2] = {{1, 1}, {4, 2}, {2, 1}};
#define N_SEQ ((int)(sizeof SEQ / sizeof SEQ[0]))
#define LARGE(sq, sk) ((long)(sq) * (sk) >= 256L * 512)
/* oracle rows checked for large shapes (every row's NaN/poison state is checked) */
#define SAMPLE_ROWS 96

int conf_shape_count(void) { return N_SEQ * 3 * 2 * 3; }

attn_problem conf_shape(int i)
{
    int h = i % 3, c = (i / 3) % 2, d = (i / 6) % 3, s = i / 18;
    int sq = SEQ[s][0], sk = SEQ[s][1];
    const int(*heads)[2] = LARGE(sq, sk) ? HEADS_LARGE : HEADS_SMALL;
    /* batch 2 on the small shapes, so batch strides are exercised too */
    attn_problem p = {LARGE(sq, sk) ? 1 : 2, heads[h][0], heads[h][1], sq, sk, DIMS[d], c, 0.0f};
    return p;
}

/* Is case c (shape c / CONF_KIND_COUNT, kind c % CONF_KIND_COUNT) run? */
static int case_runs(int c)
{
    attn_problem p = conf_shape(c / CONF_KIND_COUNT);
    return c % CONF_KIND_COUNT == CONF_RANDOM ||
           (!LARGE(p.seqlen_q, p.seqlen_k) && p.head_dim <= 64);
}

int conf_case_count(void)
{
    int n = 0;
    for (int c = 0; c < conf_shape_count() * CONF_KIND_COUNT; c++)
        n += case_runs(c);
    return n;
}

void conf_case(int i, attn_problem *p, conf_kind *kind)
{
    for (int c = 0; c < conf_shape_count() * CONF_KIND_COUNT; c++)
        if (case_runs(c) && i-- == 0) {
            *p = conf_shape(c / CONF_KIND_COUNT);
            *kind = (conf_kind)(c % CONF_KIND_COUNT);
            return;
        }
    ck_abort_msg("conformance case out of range");
}

const char *conf_describe(const attn_problem *p, conf_kind kind)
{
    static const char *kinds[] = {
        "random",
        "large-logits (scores up to 1e4: exp without the max subtracted overflows)",
        "nan-q (one row of Q is NaN: only its own O row and LSE may be NaN)",
        "nan-k (one row of K is NaN: every row that sees that key is NaN, no other)",
        "nan-v (one row of V is NaN: O of the rows that see that key, not their LSE)",
        /* one literal, continued: not two array elements */
        "neg-inf-q (one row of Q holds -inf and K's first column is positive: every score of " /* NOLINT(bugprone-suspicious-missing-comma) */
        "that row is -inf, so it is masked: O = 0, LSE = -inf, never NaN)"};
    static char buf[384];
    const int no_key = p->causal && p->seqlen_q > p->seqlen_k ? p->seqlen_q - p->seqlen_k : 0;
    char heads[48], mask[80];
    if (p->heads_kv == p->heads_q)
        snprintf(heads, sizeof heads, "MHA");
    else
        snprintf(heads, sizeof heads, "%s, %d query heads per K/V head",
                 p->heads_kv == 1 ? "MQA" : "GQA", p->heads_q / p->heads_kv);
    if (!p->causal)
        snprintf(mask, sizeof mask, "not causal");
    else if (no_key)
        snprintf(mask, sizeof mask, "causal (bottom-right: the first %d rows see no key)", no_key);
    else
        snprintf(mask, sizeof mask, "causal");
    snprintf(buf, sizeof buf, "B=%d Hq=%d Hkv=%d Sq=%d Sk=%d D=%d causal=%d scale=%g %s [%s; %s]",
             p->batch, p->heads_q, p->heads_kv, p->seqlen_q, p->seqlen_k, p->head_dim,
             p->causal, (double)p->softmax_scale, kinds[kind], heads, mask);
    return buf;
}

/* The row of Q, K or V that a NaN kind poisons (or CONF_NEG_INF_Q makes
 * -inf): batch 0, head 0, middle row. */
static int nan_row(const attn_problem *p, conf_kind kind)
{
    return kind == CONF_NAN_Q || kind == CONF_NEG_INF_Q ? p->seqlen_q / 2 : p->seqlen_k / 2;
}

/* Does query row r = (b·Hq + h)·Sq + i read the poisoned row? */
static int row_reads_nan(const attn_problem *p, conf_kind kind, int64_t r)
{
    int i = (int)(r % p->seqlen_q);
    int64_t bh = r / p->seqlen_q;
    int h = (int)(bh % p->heads_q), b = (int)(bh / p->heads_q);
    int nk = attn_keys_visible(p, i);
    if (b != 0 || nk == 0)
        return 0; /* a row that sees no key reads nothing: O = 0 */
    if (kind == CONF_NAN_Q)
        return h == 0 && i == nan_row(p, kind);
    if (kind == CONF_NAN_K || kind == CONF_NAN_V)
        return attn_kv_head(p, h) == 0 && nan_row(p, kind) < nk;
    return 0;
}

int conf_row_masked(const attn_problem *p, conf_kind kind, int64_t r)
{
    const int i = (int)(r % p->seqlen_q);
    if (attn_keys_visible(p, i) == 0)
        return 1;
    /* CONF_NEG_INF_Q: batch 0, head 0, the middle row (r < Sq: b = h = 0) */
    return kind == CONF_NEG_INF_Q && r == nan_row(p, kind);
}

static int64_t *sample_rows(const attn_problem *p, uint64_t seed, size_t *n)
{
    size_t total = attn_lse_elems(p);
    double macs = 2.0 * total * p->seqlen_k * p->head_dim;
    if (macs <= 4e7 || total <= SAMPLE_ROWS) {
        *n = total;
        return NULL;
    }
    int64_t *rows = malloc(SAMPLE_ROWS * sizeof *rows);
    ck_assert_ptr_nonnull(rows);
    uint64_t x = seed * 2654435761u + 7;
    /* first and last rows of the first head, the last row overall, the NaN row */
    rows[0] = 0;
    rows[1] = p->seqlen_q - 1;
    rows[2] = (int64_t)total - 1;
    rows[3] = p->seqlen_q / 2;
    for (int i = 4; i < SAMPLE_ROWS; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        rows[i] = (int64_t)(x % total);
    }
    *n = SAMPLE_ROWS;
    return rows;
}

/* Run a step on host arrays at type t in layout, outputs poisoned first;
 * 1 when it has no CUDA device to run on. */
static int run_step(const attn_step *s, const attn_problem *p, const float *q, const float *k,
                    const float *v, float *o, float *lse, conf_kind kind, attn_dtype t,
                    attn_layout layout)
{
    char msg[512] = "";
    attn_run_stats st;
    for (size_t i = 0; i < attn_q_elems(p); i++)
        o[i] = ATTN_POISON; /* an element the step forgets to write fails below */
    for (size_t i = 0; i < attn_lse_elems(p); i++)
        lse[i] = ATTN_POISON;
    int rc = s->run(s, p, t, layout, q, k, v, o, lse, NULL, &st, msg, sizeof msg);
    if (rc == ATTN_EXIT_RESOURCE && strstr(msg, "no CUDA device"))
        return 1;
    ck_assert_msg(rc == 0, "step %s failed (%d: %s) on %s %s %s", s->id, rc, msg,
                  conf_describe(p, kind), attn_dtype_name(t), layout ? "bshd" : "bhsd");
    return 0;
}

/* Check asserts through a syscall per passing assertion (it records the
 * last location); per-element checks only call it when they fail. */
#define REQUIRE(cond, ...)                \
    do {                                  \
        if (!(cond))                      \
            ck_abort_msg(__VA_ARGS__);    \
    } while (0)

/* Every row: written, NaN exactly where the inputs say, no-key rows zero. */
static void check_every_row(const attn_step *s, const attn_problem *p, conf_kind kind,
                            const float *o, const float *lse, float poison)
{
    const int D = p->head_dim;
    const size_t rows = attn_lse_elems(p);
    char at[96];
    for (size_t r = 0; r < rows; r++) {
        int want_nan = row_reads_nan(p, kind, (int64_t)r);
        int masked = conf_row_masked(p, kind, (int64_t)r);
        for (int d = 0; d < D; d++) {
            float x = o[r * D + d];
            REQUIRE(x != poison, "step %s left O[row %zu][%d] (%s) unwritten on %s", s->id,
                    r, d, attn_where(p, 0, D, r * D + d, at, sizeof at), conf_describe(p, kind));
            REQUIRE((isnan(x) != 0) == want_nan,
                    "step %s: O[row %zu][%d] (%s) = %g, NaN expected: %s, on %s", s->id, r, d,
                    attn_where(p, 0, D, r * D + d, at, sizeof at), (double)x,
                    want_nan ? "yes" : "no", conf_describe(p, kind));
            REQUIRE(!isinf(x), "step %s: O[row %zu][%d] (%s) is inf on %s", s->id, r, d,
                    attn_where(p, 0, D, r * D + d, at, sizeof at), conf_describe(p, kind));
            if (masked)
                REQUIRE(x == 0.0f, "step %s: row %zu is masked (no key, or every score -inf) "
                        "but O = %g on %s", s->id, r, (double)x, conf_describe(p, kind));
        }
        float l = lse[r];
        REQUIRE(l != ATTN_POISON, "step %s left LSE[%zu] (%s) unwritten on %s", s->id, r,
                attn_where(p, 0, 1, r, at, sizeof at), conf_describe(p, kind));
        int lse_nan = want_nan && kind != CONF_NAN_V; /* V does not enter the LSE */
        REQUIRE((isnan(l) != 0) == lse_nan, "step %s: LSE[%zu] (%s) = %g, NaN expected: %s, on %s",
                s->id, r, attn_where(p, 0, 1, r, at, sizeof at), (double)l,
                lse_nan ? "yes" : "no", conf_describe(p, kind));
        if (masked)
            REQUIRE(isinf(l) && l < 0, "step %s: row %zu (%s) is masked (no key, or every score "
                    "-inf) but LSE = %g on %s",
                    s->id, r, attn_where(p, 0, 1, r, at, sizeof at), (double)l,
                    conf_describe(p, kind));
        else if (!lse_nan)
            REQUIRE(isfinite(l), "step %s: LSE[%zu] (%s) = %g, a finite value expected, on %s",
                    s->id, r, attn_where(p, 0, 1, r, at, sizeof at), (double)l,
                    conf_describe(p, kind));
    }
}

double conf_grad_scale(const attn_problem *p, const double *dq, const double *dk,
                       const double *dv)
{
    const size_t qn = attn_q_elems(p), kvn = attn_kv_elems(p);
    double m = 1.0;
    for (size_t i = 0; i < qn; i++)
        m = isnan(dq[i]) ? m : fmax(m, fabs(dq[i]));
    for (size_t i = 0; i < kvn; i++) {
        m = isnan(dk[i]) ? m : fmax(m, fabs(dk[i]));
        m = isnan(dv[i]) ? m : fmax(m, fabs(dv[i]));
    }
    return m;
}

void conf_delta_allowance(const attn_problem *p, const float *q, const float *k,
                          const float *v, const float *dout, const float *o, const float *lse,
                          double out[2])
{
    const size_t qn = attn_q_elems(p), kvn = attn_kv_elems(p);
    double *bq = malloc(qn * sizeof *bq), *bk = malloc(kvn * sizeof *bk);
    ck_assert(bq && bk);
    attn_oracle_delta_bound(p, q, k, v, dout, o, lse, bq, bk);
    const double gamma = p->head_dim * 0x1p-24; /* a length-D fp32 dot product's relative bound */
    out[0] = out[1] = 0;
    for (size_t i = 0; i < qn; i++)
        out[0] = isnan(bq[i]) ? out[0] : fmax(out[0], gamma * bq[i]);
    for (size_t i = 0; i < kvn; i++)
        out[1] = isnan(bk[i]) ? out[1] : fmax(out[1], gamma * bk[i]);
    free(bq), free(bk);
}

void conf_fill_inputs(attn_problem *p, conf_kind kind, uint64_t seed, float *q, float *k,
                      float *v)
{
    const int D = p->head_dim;
    const size_t qn = attn_q_elems(p), kvn = attn_kv_elems(p);
    /* fresh random inputs for every check, never zeros */
    attn_fill_normal(q, qn, seed, ATTN_STREAM_Q);
    attn_fill_normal(k, kvn, seed, ATTN_STREAM_K);
    attn_fill_normal(v, kvn, seed, ATTN_STREAM_V);
    if (kind == CONF_LARGE_LOGITS) {
        /* Logits of magnitude 1e4, both signs, that every step computes
         * exactly: small integers in Q and K (so every partial sum of q·k
         * is an integer below 2^24, whatever the summation order), scale 1,
         * and one coordinate that adds ±1e4 to a whole row. A step that
         * exponentiates without subtracting the max overflows; one that
         * loses precision in s − m (e.g. s·log2e − m·log2e in fp32, an
         * error of ~1e-3 at 1e4) fails the rule against the baseline. */
        p->softmax_scale = 1.0f;
        for (size_t i = 0; i < qn; i++)
            q[i] = fminf(12.0f, fmaxf(-12.0f, rintf(4.0f * q[i])));
        for (size_t i = 0; i < kvn; i++)
            k[i] = fminf(12.0f, fmaxf(-12.0f, rintf(4.0f * k[i])));
        for (size_t r = 0; r < qn / D; r++)
            q[r * D] = (r % 2) ? -100.0f : 100.0f;
        for (size_t r = 0; r < kvn / D; r++)
            k[r * D] = 100.0f;
    }
    if (kind == CONF_NAN_Q)
        for (int d = 0; d < D; d++)
            q[(size_t)nan_row(p, kind) * D + d] = NAN;
    if (kind == CONF_NAN_K || kind == CONF_NAN_V)
        for (int d = 0; d < D; d++)
            (kind == CONF_NAN_K ? k : v)[(size_t)nan_row(p, kind) * D + d] = NAN;
    if (kind == CONF_NEG_INF_Q) {
        /* -inf times a positive k_j0, plus finite terms: every score of the
         * row is -inf (at any precision; 0.25 is exact in fp16 and bf16) */
        for (size_t r = 0; r < kvn / D; r++)
            k[r * D] = fabsf(k[r * D]) + 0.25f;
        q[(size_t)nan_row(p, kind) * D] = -INFINITY;
    }
}

/* conf_set_s_rounding(): the unit roundoff of a stored S, 0 for none. */
static double s_roundoff;
/* what s_rounding_allowance() found for the LSE (relative error bound) */
static double s_lse_allowance;

void conf_set_s_rounding(double u) { s_roundoff = u; }

/* max over the checked rows and the keys they see of |scale · q_i · k_j|
 * (NaN skipped), and max |V|: what rounding a stored S can cost. */
static double s_rounding_allowance(const attn_problem *p, const float *q, const float *k,
                                   const float *v, const int64_t *rows, size_t n)
{
    const int D = p->head_dim;
    const double scale = attn_scale(p);
    double smax = 0.0, vmax = 0.0;
    for (size_t x = 0; x < attn_kv_elems(p); x++)
        vmax = isnan(v[x]) ? vmax : fmax(vmax, fabs((double)v[x]));
    for (size_t x = 0; x < n; x++) {
        const int64_t r = rows ? rows[x] : (int64_t)x;
        int h, i;
        size_t q_off, kv_off;
        attn_row_offsets(p, r, &h, &i, &q_off, &kv_off);
        const int nk = attn_keys_visible(p, i);
        for (int j = 0; j < nk; j++) {
            double dot = 0.0;
            for (int d = 0; d < D; d++)
                dot += (double)q[q_off + d] * k[kv_off + (size_t)j * D + d];
            smax = isnan(dot) ? smax : fmax(smax, fabs(scale * dot));
        }
    }
    s_lse_allowance = s_roundoff * smax; /* the LSE moves by at most u·Smax */
    return expm1(2.0 * s_roundoff * smax) * vmax;
}

/* What the last conf_check_step_at() measured (conf_last()). */
static conf_result last_result;

const conf_result *conf_last(void) { return &last_result; }

int conf_check_step(const attn_step *step, const attn_step *prev, const attn_problem *p0,
                    conf_kind kind, uint64_t seed)
{
    return conf_check_step_at(step, prev, p0, kind, seed, attn_step_default_dtype(step),
                              ATTN_LAYOUT_BHSD);
}

int conf_check_step_at(const attn_step *step, const attn_step *prev, const attn_problem *p0,
                       conf_kind kind, uint64_t seed, attn_dtype t, attn_layout layout)
{
    attn_problem p = *p0;
    const int D = p.head_dim;
    const size_t qn = attn_q_elems(&p), kvn = attn_kv_elems(&p), ln = attn_lse_elems(&p);
    float *q = malloc(qn * 4), *k = malloc(kvn * 4), *v = malloc(kvn * 4);
    float *o = malloc(qn * 4), *lse = malloc(ln * 4);
    ck_assert(q && k && v && o && lse);
    conf_fill_inputs(&p, kind, seed, q, k, v);
    /* fp16/bf16: the inputs rounded once; the step, the oracle, the
     * baseline and the prior step all see these values */
    attn_round_array(q, qn, t);
    attn_round_array(k, kvn, t);
    attn_round_array(v, kvn, t);

    int skipped = run_step(step, &p, q, k, v, o, lse, kind, t, layout);
    if (skipped)
        goto out;
    /* O comes back through type t: an unwritten element reads as the
     * poison rounded to t */
    check_every_row(step, &p, kind, o, lse, attn_round_to(ATTN_POISON, t));

    /* against the float64 oracle, scaled by the naive baseline's error at
     * precision t (at fp32 that is attn_naive_fp32_rows(), bit for bit) */
    size_t n;
    int64_t *rows = sample_rows(&p, seed, &n);
    double *o_ref = malloc(n * D * sizeof *o_ref), *lse_ref = malloc(n * sizeof *lse_ref);
    float *o_got = malloc(n * D * 4), *lse_got = malloc(n * 4);
    ck_assert(o_ref && lse_ref && o_got && lse_got);
    attn_oracle_forward(&p, q, k, v, rows, n, o_ref, lse_ref);
    /* the rule the step programs apply too (attn_forward_rule(), notes/design.md) */
    attn_fwd_rule rule;
    ck_assert_int_eq(attn_forward_rule(&p, t, q, k, v, rows, n, o_ref, lse_ref, &rule), 0);
    if (rows) {
        attn_gather_rows(o, D, rows, n, o_got);
        attn_gather_rows(lse, 1, rows, n, lse_got);
    } else {
        memcpy(o_got, o, n * D * 4);
        memcpy(lse_got, lse, n * 4);
    }
    attn_err e = attn_compare(o_got, o_ref, n * D);
    double lse_err = attn_lse_err(lse_got, lse_ref, n);
    double atol = rule.atol;
    s_lse_allowance = 0.0;
    if (s_roundoff > 0.0)
        atol += s_rounding_allowance(&p, q, k, v, rows, n);
    /* the rule's LSE tolerance (relative to the baseline: at logits of 1e4
     * the fp32 rounding of S dominates), plus a stored S's allowance */
    double lse_tol = rule.lse_tol + s_lse_allowance;
    last_result.max_abs = e.max_abs;
    last_result.allowed = 2.0 * rule.baseline + atol;
    last_result.rule = rule.allowed;
    last_result.lse_err = lse_err;
    last_result.vs_prev = -1.0;
    if (!attn_rule_ok(&e, rule.baseline, 2.0, atol)) {
        /* where: the worst element (or the first NaN/inf mismatch), mapped
         * back through the sampled rows */
        const size_t at_i = e.first_bad != SIZE_MAX ? e.first_bad : e.worst_at;
        char at[96] = "nowhere";
        double got = 0, want = 0;
        if (at_i != SIZE_MAX) {
            const size_t row = rows ? (size_t)rows[at_i / D] : at_i / D;
            attn_where(&p, 0, D, row * D + at_i % D, at, sizeof at);
            got = o_got[at_i], want = o_ref[at_i];
        }
        ck_abort_msg("step %s %s %s: max_abs_err %.3g > 2 x %.3g + %g (nan %zu/%zu, inf %zu) "
                     "on %s; worst at %s: got %.9g, expected %.9g",
                     step->id, attn_dtype_name(t), layout ? "bshd" : "bhsd", e.max_abs,
                     rule.baseline, atol, e.nan_count, e.nan_missing, e.inf_mismatch,
                     conf_describe(&p, kind), at, got, want);
    }
    ck_assert_msg(lse_err <= lse_tol, "step %s %s %s: lse_err %.3g > %.3g on %s", step->id,
                  attn_dtype_name(t), layout ? "bshd" : "bhsd", lse_err, lse_tol,
                  conf_describe(&p, kind));

    /* against the prior step, at this type where it takes it (else at its
     * own first type) and BHSD, on the same rounded inputs: both within
     * their bounds, so within the sum */
    if (prev) {
        char why[256];
        const attn_dtype tp = attn_step_takes(prev, t, ATTN_LAYOUT_BHSD, why, sizeof why) == 0
                                  ? t
                                  : attn_step_default_dtype(prev);
        float *o_prev = malloc(qn * 4), *lse_prev = malloc(ln * 4);
        ck_assert(o_prev && lse_prev);
        if (run_step(prev, &p, q, k, v, o_prev, lse_prev, kind, tp, ATTN_LAYOUT_BHSD) == 0) {
            attn_err d = attn_compare_f32(o, o_prev, qn);
            ck_assert_msg(!d.nan_count && !d.nan_missing && !d.inf_mismatch,
                          "step %s and step %s disagree on NaN/inf on %s", step->id, prev->id,
                          conf_describe(&p, kind));
            double bound = (2.0 * rule.baseline + atol);
            if (tp == t) {
                bound *= 2;
            } else {
                /* the prior step's own allowance, from the rule at its type */
                attn_fwd_rule rule_p;
                ck_assert_int_eq(attn_forward_rule(&p, tp, q, k, v, rows, n, o_ref, lse_ref,
                                                   &rule_p), 0);
                bound += rule_p.allowed;
            }
            /* the baseline error is measured on the sampled rows: allow the
             * unsampled rows the same again */
            if (rows)
                bound *= 2;
            /* and a 16-bit output is rounded on every row, the row of the
             * largest |O| too, which the sampled rows may miss: one ulp of
             * the type there (2^-10 or 2^-7 of its power of two) */
            if (t != ATTN_F32) {
                double omax = 0.0;
                for (size_t x = 0; x < qn; x++)
                    if (isfinite(o_prev[x]) && fabsf(o_prev[x]) > omax)
                        omax = fabsf(o_prev[x]);
                if (omax > 0.0)
                    bound += ldexp(1.0, ilogb(omax) - (t == ATTN_BF16 ? 7 : 10));
            }
            last_result.vs_prev = d.max_abs;
            ck_assert_msg(d.max_abs <= bound,
                          "|O_%s - O_%s| = %.3g > %.3g on %s %s", step->id, prev->id, d.max_abs,
                          bound, conf_describe(&p, kind), attn_dtype_name(t));
        }
        free(o_prev), free(lse_prev);
    }
    free(rows), free(o_ref), free(lse_ref), free(o_got), free(lse_got);
out:
    free(q), free(k), free(v), free(o), free(lse);
    return skipped;
}
