/**
 * @file tcsuite.c
 * @brief The GPU suite every tensor-core forward step passes (steps 08,
 * 09, …; tcsuite.h): the conformance table in fp16 and bf16, BHSD and
 * BSHD, each case against the float64 oracle (the fp16/bf16 rule of
 * notes/design.md, scaled by the precision-emulating baseline on the same
 * rounded inputs) and against the step before it on the same rounded
 * inputs; strides no layout flag makes (odd, and a base that is not
 * 16-byte aligned) through the entry point itself, equal bit for bit to
 * the BHSD run; an infinity in a V row that only some rows see; the
 * refusals (exit 2). Head dims the step has beyond the table's 32, 64 and
 * 128 (step 10's 96 and 256) run the table's D = 128 cases at that dim.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcsuite.h"

/* The four CUDA runtime calls the strided test needs, declared here: the
 * suites are C, built without the CUDA headers, and link the runtime.
 * (cudaError_t and cudaMemcpyKind are enums: int on this ABI.) */
int cudaMalloc(void **ptr, size_t bytes);
int cudaFree(void *ptr);
int cudaMemcpy(void *dst, const void *src, size_t bytes, int kind);
int cudaDeviceSynchronize(void);
#define H2D 1 /* cudaMemcpyHostToDevice */
#define D2H 2 /* cudaMemcpyDeviceToHost */

#define REQUIRE(cond, ...)             \
    do {                               \
        if (!(cond))                   \
            ck_abort_msg(__VA_ARGS__); \
    } while (0)

/* The step under test, the step it is compared with, the seeds' base. */
static const attn_step *tc_step, *tc_prev;
static uint64_t tc_seed;

static const attn_dtype TYPES[2] = {ATTN_F16, ATTN_BF16};
static const attn_layout LAYOUTS[2] = {ATTN_LAYOUT_BHSD, ATTN_LAYOUT_BSHD};
static const char *COMBO[4] = {"fp16 bhsd", "fp16 bshd", "bf16 bhsd", "bf16 bshd"};

/* Worst error / allowed error, and worst LSE error, per type and layout. */
static double worst[4], worst_lse[4], worst_prev[4];
static int runs[4];

/* Case _i of the table at combination c (type c / 2, layout c % 2). */
static void tc_check(int i, int c)
{
    attn_problem p;
    conf_kind kind;
    conf_case(i, &p, &kind);
    const uint64_t seed = tc_seed + 1000u * (uint64_t)c + (uint64_t)i;
    if (conf_check_step_at(tc_step, tc_prev, &p, kind, seed, TYPES[c / 2],
                           LAYOUTS[c % 2]))
        return;
    const conf_result *r = conf_last();
    worst[c] = fmax(worst[c], r->max_abs / r->allowed);
    worst_lse[c] = fmax(worst_lse[c], r->lse_err);
    worst_prev[c] = fmax(worst_prev[c], r->vs_prev);
    runs[c]++;
}

/* The step's head dims outside the table's 32, 64, 128 (step 10: 96, 256),
 * and the table's cases at D = 128, which each of them runs in its place. */
static int x_dims[8], n_x_dims, x_cases[256], n_x_cases;

/* Case _i of those at type t: head dim x_dims[_i / (2·n)], layout
 * (_i / n) % 2, the table's D = 128 case x_cases[_i % n] at that dim;
 * checked as tc_check() checks the table. */
static void tc_check_xdim(int i, int t)
{
    attn_problem p;
    conf_kind kind;
    const int n = n_x_cases, c = 2 * t + (i / n) % 2;
    conf_case(x_cases[i % n], &p, &kind);
    p.head_dim = x_dims[i / (2 * n)];
    const uint64_t seed = tc_seed + 7000u + 1000u * (uint64_t)c + (uint64_t)i;
    /* the prior step where it has this head dim (step 09 lacks 96 and 256):
     * else the float64 oracle alone */
    int prev_has = 0;
    for (int x = 0; tc_prev->caps.head_dims && tc_prev->caps.head_dims[x]; x++)
        prev_has = prev_has || tc_prev->caps.head_dims[x] == p.head_dim;
    if (conf_check_step_at(tc_step, prev_has ? tc_prev : NULL, &p, kind, seed, TYPES[t],
                           LAYOUTS[c % 2]))
        return;
    const conf_result *r = conf_last();
    worst[c] = fmax(worst[c], r->max_abs / r->allowed);
    worst_lse[c] = fmax(worst_lse[c], r->lse_err);
    worst_prev[c] = fmax(worst_prev[c], r->vs_prev);
    runs[c]++;
}

START_TEST(test_xdims_fp16) { tc_check_xdim(_i, 0); }
END_TEST
START_TEST(test_xdims_bf16) { tc_check_xdim(_i, 1); }
END_TEST

START_TEST(test_fp16_bhsd) { tc_check(_i, 0); }
END_TEST
START_TEST(test_fp16_bshd) { tc_check(_i, 1); }
END_TEST
START_TEST(test_bf16_bhsd) { tc_check(_i, 2); }
END_TEST
START_TEST(test_bf16_bshd) { tc_check(_i, 3); }
END_TEST

/* 1 when two floats have the same bits (NaN payloads and the sign of 0 included). */
static int same_bits(float a, float b)
{
    uint32_t x, y;
    memcpy(&x, &a, sizeof x);
    memcpy(&y, &b, sizeof y);
    return x == y;
}

/* Run the step through the GPU runner; its exit code, the message in msg. */
static int tc_run(const attn_problem *p, attn_dtype t, attn_layout layout, const float *q,
                  const float *k, const float *v, float *o, float *lse, char *msg, size_t n)
{
    attn_run_stats st;
    for (size_t i = 0; i < attn_q_elems(p); i++)
        o[i] = ATTN_POISON;
    for (size_t i = 0; i < attn_lse_elems(p); i++)
        lse[i] = ATTN_POISON;
    return tc_step->run(tc_step, p, t, layout, q, k, v, o, lse, NULL, &st, msg, n);
}

/* What the step refuses, with exit 2 and a message naming what it allows:
 * head dims outside its set (of 16, 48, 96, 256: those it lacks); fp32. */
START_TEST(test_refusals)
{
    static const int bad_dims[] = {16, 48, 96, 256};
    const int *dims = tc_step->caps.head_dims;
    char msg[512], want[64] = "";
    ck_assert(dims);
    for (int x = 0; dims[x]; x++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", x ? ", " : "", dims[x]);
    for (int x = 0; x < 4; x++) {
        int has = 0;
        for (int y = 0; dims[y]; y++)
            has = has || dims[y] == bad_dims[x];
        if (has)
            continue;
        attn_problem p = {1, 2, 2, 17, 17, bad_dims[x], 0, 0.0f};
        size_t qn = attn_q_elems(&p), ln = attn_lse_elems(&p);
        float *q = calloc(qn, 4), *o = malloc(qn * 4), *lse = malloc(ln * 4);
        ck_assert(q && o && lse);
        int rc = tc_run(&p, ATTN_F16, ATTN_LAYOUT_BHSD, q, q, q, o, lse, msg, sizeof msg);
        ck_assert_msg(rc == ATTN_EXIT_BAD_INPUT && strstr(msg, want),
                      "D = %d: exit %d (%s), a message naming %s expected", bad_dims[x], rc, msg,
                      want);
        free(q), free(o), free(lse);
    }
    attn_problem p = {1, 2, 2, 17, 17, 64, 0, 0.0f};
    size_t qn = attn_q_elems(&p), ln = attn_lse_elems(&p);
    float *q = calloc(qn, 4), *o = malloc(qn * 4), *lse = malloc(ln * 4);
    ck_assert(q && o && lse);
    int rc = tc_run(&p, ATTN_F32, ATTN_LAYOUT_BHSD, q, q, q, o, lse, msg, sizeof msg);
    ck_assert_msg(rc == ATTN_EXIT_BAD_INPUT && strstr(msg, "fp16 bf16"), "fp32: exit %d (%s)", rc,
                  msg);
    free(q), free(o), free(lse);
}
END_TEST

/* x as the raw bits of type t. */
static uint16_t to_bits(float x, attn_dtype t)
{
    return t == ATTN_BF16 ? attn_float_to_bf16(x) : attn_float_to_half(x);
}

/* Raw bits of type t as a float. */
static float from_bits(uint16_t b, attn_dtype t)
{
    return t == ATTN_BF16 ? attn_bf16_to_float(b) : attn_half_to_float(b);
}

/* A [B, H, S, D] float array into a buffer of 16-bit elements at offset
 * off, by the tensor's strides (elements between them keep the fill). */
static void scatter(uint16_t *dst, size_t off, const attn_tensor *tt, const float *src, int B,
                    int H, int S, int D, attn_dtype t)
{
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int s = 0; s < S; s++)
                for (int d = 0; d < D; d++)
                    dst[off + b * tt->stride_b + h * tt->stride_h + s * tt->stride_s + d] =
                        to_bits(src[(((size_t)b * H + h) * S + s) * D + d], t);
}

/* Strides no layout flag makes, through the step's entry point itself: row
 * strides that are odd and every tensor 1 element past a 16-byte boundary,
 * so the kernel takes its element-by-element loads and stores. The result
 * must equal the runner's BHSD result bit for bit (the arithmetic is the
 * same; only the width of the memory accesses differs), and the padding
 * between rows of O must be left alone. */
START_TEST(test_odd_strides)
{
    const attn_dtype t = TYPES[_i];
    attn_problem p = {2, 4, 2, 77, 131, 64, 1, 0.0f};
    const int B = p.batch, HQ = p.heads_q, HK = p.heads_kv, SQ = p.seqlen_q, SK = p.seqlen_k;
    const int D = p.head_dim;
    size_t qn = attn_q_elems(&p), kvn = attn_kv_elems(&p), ln = attn_lse_elems(&p);
    float *q = malloc(qn * 4), *k = malloc(kvn * 4), *v = malloc(kvn * 4);
    float *o_ref = malloc(qn * 4), *lse_ref = malloc(ln * 4), *lse = malloc(ln * 4);
    ck_assert(q && k && v && o_ref && lse_ref && lse);
    attn_fill_normal(q, qn, 808, ATTN_STREAM_Q);
    attn_fill_normal(k, kvn, 808, ATTN_STREAM_K);
    attn_fill_normal(v, kvn, 808, ATTN_STREAM_V);
    char msg[512];
    int rc = tc_run(&p, t, ATTN_LAYOUT_BHSD, q, k, v, o_ref, lse_ref, msg, sizeof msg);
    ck_assert_msg(rc == 0, "BHSD run: exit %d (%s)", rc, msg);

    /* BSHD-like, padded: head stride D + 3, row stride H·(D + 3) + 5, batch
     * stride S·row + 7 (all odd), one element of offset */
    attn_params pp;
    attn_tensor *ts[4];
    const int heads[4] = {HQ, HK, HK, HQ}, seqs[4] = {SQ, SK, SK, SQ};
    size_t total[4];
    uint16_t *h_buf[4];
    void *d_buf[4] = {NULL, NULL, NULL, NULL};
    float *d_lse = NULL;
    attn_params_init(&pp, &p, t, NULL, NULL, NULL, NULL, NULL);
    ts[0] = &pp.q, ts[1] = &pp.k, ts[2] = &pp.v, ts[3] = &pp.o;
    for (int x = 0; x < 4; x++) {
        ts[x]->stride_h = D + 3;
        ts[x]->stride_s = (int64_t)heads[x] * (D + 3) + 5;
        ts[x]->stride_b = (int64_t)seqs[x] * ts[x]->stride_s + 7;
        total[x] = 1 + (size_t)B * ts[x]->stride_b;
        h_buf[x] = malloc(total[x] * 2);
        ck_assert(h_buf[x]);
        for (size_t e = 0; e < total[x]; e++)
            h_buf[x][e] = 0x7bffu; /* fp16 65504 / a bf16 NaN: padding, never read */
        ck_assert_int_eq(cudaMalloc(&d_buf[x], total[x] * 2), 0);
    }
    ck_assert_int_eq(cudaMalloc((void **)&d_lse, ln * 4), 0);
    scatter(h_buf[0], 1, ts[0], q, B, HQ, SQ, D, t);
    scatter(h_buf[1], 1, ts[1], k, B, HK, SK, D, t);
    scatter(h_buf[2], 1, ts[2], v, B, HK, SK, D, t);
    for (int x = 0; x < 4; x++) {
        ck_assert_int_eq(cudaMemcpy(d_buf[x], h_buf[x], total[x] * 2, H2D), 0);
        ts[x]->data = (uint16_t *)d_buf[x] + 1;
    }
    pp.lse = d_lse;
    rc = tc_step->params_forward(&pp, NULL, NULL);
    ck_assert_msg(rc == 0, "step %s forward: exit %d (%s)", tc_step->id, rc, attn_last_error());
    ck_assert_int_eq(cudaDeviceSynchronize(), 0);
    uint16_t *h_o = malloc(total[3] * 2);
    ck_assert(h_o);
    ck_assert_int_eq(cudaMemcpy(h_o, d_buf[3], total[3] * 2, D2H), 0);
    ck_assert_int_eq(cudaMemcpy(lse, d_lse, ln * 4, D2H), 0);
    size_t written = 0;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < HQ; h++)
            for (int s = 0; s < SQ; s++)
                for (int d = 0; d < D; d++) {
                    size_t at = 1 + b * pp.o.stride_b + h * pp.o.stride_h + s * pp.o.stride_s + d;
                    float want = o_ref[(((size_t)b * HQ + h) * SQ + s) * D + d];
                    float got = from_bits(h_o[at], t);
                    REQUIRE(same_bits(got, want),
                            "%s O[%d][%d][%d][%d] = %g, BHSD run %g", attn_dtype_name(t), b, h, s,
                            d, (double)got, (double)want);
                    h_o[at] = 0x7bffu; /* mark as seen */
                    written++;
                }
    for (size_t e = 0; e < total[3]; e++)
        REQUIRE(h_o[e] == 0x7bffu, "element %zu of O's buffer outside the tensor was written", e);
    ck_assert_uint_eq(written, qn);
    for (size_t r = 0; r < ln; r++)
        REQUIRE(same_bits(lse[r], lse_ref[r]), "LSE[%zu] = %g, BHSD run %g", r,
                (double)lse[r], (double)lse_ref[r]);
    for (int x = 0; x < 4; x++)
        cudaFree(d_buf[x]), free(h_buf[x]);
    cudaFree(d_lse);
    free(h_o), free(q), free(k), free(v), free(o_ref), free(lse_ref), free(lse);
}
END_TEST

/* An infinity in one V element (batch 0, K/V head 0, key 100, column 5),
 * causal, Sq = Sk = 203: the rows that see key 100 (i >= 100) get +inf in
 * column 5, and every other element equals, bit for bit, the run with a 0
 * there. Key 100 is in the diagonal block of the first Q block (the masked
 * path: the value stored as 0 in shared memory and added back to the rows
 * that see it) and in a full block of the later ones (the mma itself). */
START_TEST(test_inf_in_v)
{
    const attn_dtype t = TYPES[_i];
    attn_problem p = {1, 2, 1, 203, 203, 64, 1, 0.0f};
    const int D = p.head_dim, S = p.seqlen_q;
    size_t qn = attn_q_elems(&p), kvn = attn_kv_elems(&p), ln = attn_lse_elems(&p);
    float *q = malloc(qn * 4), *k = malloc(kvn * 4), *v = malloc(kvn * 4);
    float *o = malloc(qn * 4), *o0 = malloc(qn * 4), *lse = malloc(ln * 4), *lse0 = malloc(ln * 4);
    ck_assert(q && k && v && o && o0 && lse && lse0);
    attn_fill_normal(q, qn, 809, ATTN_STREAM_Q);
    attn_fill_normal(k, kvn, 809, ATTN_STREAM_K);
    attn_fill_normal(v, kvn, 809, ATTN_STREAM_V);
    char msg[512];
    v[100 * D + 5] = 0.0f;
    int rc = tc_run(&p, t, ATTN_LAYOUT_BHSD, q, k, v, o0, lse0, msg, sizeof msg);
    ck_assert_msg(rc == 0, "exit %d (%s)", rc, msg);
    v[100 * D + 5] = INFINITY;
    rc = tc_run(&p, t, ATTN_LAYOUT_BHSD, q, k, v, o, lse, msg, sizeof msg);
    ck_assert_msg(rc == 0, "exit %d (%s)", rc, msg);
    for (size_t e = 0; e < qn; e++) {
        const int i = (int)(e / D % S), d = (int)(e % D);
        if (i >= 100 && d == 5)
            REQUIRE(isinf(o[e]) && o[e] > 0, "%s row %d col 5: %g, +inf expected",
                    attn_dtype_name(t), i, (double)o[e]);
        else
            REQUIRE(same_bits(o[e], o0[e]), "%s row %d col %d: %g, %g without the inf",
                    attn_dtype_name(t), i, d, (double)o[e], (double)o0[e]);
    }
    for (size_t r = 0; r < ln; r++) /* V does not enter the LSE */
        REQUIRE(same_bits(lse[r], lse0[r]), "LSE[%zu] = %g, %g without the inf", r,
                (double)lse[r], (double)lse0[r]);
    free(q), free(k), free(v), free(o), free(o0), free(lse), free(lse0);
}
END_TEST

Suite *tc_suite(const char *name, const attn_step *step, const attn_step *prev, uint64_t seed)
{
    tc_step = step, tc_prev = prev, tc_seed = seed;
    Suite *s = suite_create(name);
    const TTest *tests[4] = {test_fp16_bhsd, test_fp16_bshd, test_bf16_bhsd, test_bf16_bshd};
    const char *names[4] = {"fp16_bhsd", "fp16_bshd", "bf16_bhsd", "bf16_bshd"};
    for (int c = 0; c < 4; c++) {
        TCase *tc = tcase_create(names[c]);
        tcase_set_timeout(tc, 600); /* not enforced without fork; kept for CK_FORK=yes */
        tcase_add_loop_test(tc, tests[c], 0, conf_case_count());
        suite_add_tcase(s, tc);
    }
    /* head dims the table lacks: xdims_fp16, xdims_bf16 (both layouts each) */
    n_x_dims = n_x_cases = 0;
    for (int x = 0; step->caps.head_dims && step->caps.head_dims[x] && n_x_dims < 8; x++) {
        const int d = step->caps.head_dims[x];
        if (d != 32 && d != 64 && d != 128)
            x_dims[n_x_dims++] = d;
    }
    for (int i = 0; i < conf_case_count() && n_x_cases < 256; i++) {
        attn_problem p;
        conf_kind kind;
        conf_case(i, &p, &kind);
        if (p.head_dim == 128)
            x_cases[n_x_cases++] = i;
    }
    if (n_x_dims) {
        const TTest *xt[2] = {test_xdims_fp16, test_xdims_bf16};
        const char *xn[2] = {"xdims_fp16", "xdims_bf16"};
        for (int t = 0; t < 2; t++) {
            TCase *tc = tcase_create(xn[t]);
            tcase_add_loop_test(tc, xt[t], 0, 2 * n_x_dims * n_x_cases);
            suite_add_tcase(s, tc);
        }
    }
    TCase *tc = tcase_create("special");
    tcase_add_test(tc, test_refusals);
    tcase_add_loop_test(tc, test_odd_strides, 0, 2);
    tcase_add_loop_test(tc, test_inf_in_v, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

void tc_summary(void)
{
    for (int c = 0; c < 4; c++)
        if (runs[c])
            printf("summary %s: %d cases, worst max_abs_err / allowed %.3f, worst lse_err %.2e, "
                   "worst |O_%s - O_%s| %.2e\n",
                   COMBO[c], runs[c], worst[c], worst_lse[c], tc_step->id, tc_prev->id,
                   worst_prev[c]);
}

/* ---- --bench ------------------------------------------------------------- */

/* Parse "a,b,c" into at most n ints; the count. */
static int parse_list(const char *s, int *out, int n)
{
    int c = 0;
    while (s && *s && c < n) {
        out[c++] = (int)strtol(s, NULL, 10);
        s = strchr(s, ',');
        if (s)
            s++;
    }
    return c;
}

int tc_bench(int argc, char **argv, const attn_step *const *steps, const attn_dtype *types,
             int n_steps)
{
    int ns[8] = {512, 1024, 2048, 4096, 8192, 16384}, n_ns = 6;
    int ds[4] = {64, 128}, n_ds = 2;
    if (argc > 2)
        n_ns = parse_list(argv[2], ns, 8);
    if (argc > 3)
        n_ds = parse_list(argv[3], ds, 4);
    attn_bench_opts bo = {1, 10, 250.0};
    const int total_rows = 16384, H = 32;
    printf("bench: B = %d / N, Hq = Hkv = %d, Sq = Sk = N; ms median of up to %d runs after %d "
           "warm-up, L2 flushed; TFLOP/s by 4·B·Hq·N²·D (halved when causal)\n",
           total_rows, H, bo.iters, bo.warmup);
    printf("%-4s %-6s %-3s %-6s %-3s %-5s %10s %9s\n", "D", "N", "B", "causal", "stp", "dtype",
           "ms", "TFLOP/s");
    for (int di = 0; di < n_ds; di++) {
        const int D = ds[di];
        const size_t n = (size_t)total_rows * H * D;
        float *q = malloc(n * 4), *k = malloc(n * 4), *v = malloc(n * 4), *o = malloc(n * 4);
        float *lse = malloc((size_t)total_rows * H * 4);
        if (!q || !k || !v || !o || !lse) {
            fprintf(stderr, "bench: out of host memory\n");
            free(q), free(k), free(v), free(o), free(lse);
            return 3;
        }
        attn_fill_normal(q, n, 2026, ATTN_STREAM_Q);
        attn_fill_normal(k, n, 2026, ATTN_STREAM_K);
        attn_fill_normal(v, n, 2026, ATTN_STREAM_V);
        for (int ni = 0; ni < n_ns; ni++)
            for (int causal = 0; causal < 2; causal++) {
                const int N = ns[ni];
                attn_problem p = {total_rows / N, H, H, N, N, D, causal, 0.0f};
                for (int x = 0; x < n_steps; x++) {
                    char msg[512] = "";
                    attn_run_stats st;
                    if (attn_step_takes(steps[x], types[x], ATTN_LAYOUT_BHSD, msg, sizeof msg))
                        continue;
                    int rc = steps[x]->run(steps[x], &p, types[x], ATTN_LAYOUT_BHSD, q, k, v, o,
                                           lse, &bo, &st, msg, sizeof msg);
                    if (rc)
                        printf("%-4d %-6d %-3d %-6d %-3s %-5s  exit %d: %s\n", D, N, p.batch,
                               causal, steps[x]->id, attn_dtype_name(types[x]), rc, msg);
                    else
                        printf("%-4d %-6d %-3d %-6d %-3s %-5s %10.3f %9.1f\n", D, N, p.batch,
                               causal, steps[x]->id, attn_dtype_name(types[x]), st.ms,
                               attn_flops_forward(&p) / (st.ms * 1e-3) / 1e12);
                    fflush(stdout);
                }
            }
        free(q), free(k), free(v), free(o), free(lse);
    }
    return 0;
}
