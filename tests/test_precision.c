/**
 * @file test_precision.c
 * @brief common/precision.c: bf16, fp16 and fp8 e4m3 rounding tables, and
 * the naive baseline at a precision (attn_naive_rows_at()) that scales the
 * correctness rule of the reduced-precision steps: bit for bit equal to
 * attn_naive_fp32_rows() at fp32, errors against the float64 oracle at
 * fp16 / bf16 / e4m3 above fp32's and within measured bounds, rows that see
 * no key, NaN propagation.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "suites.h"

/* ---- helpers ------------------------------------------------------------- */

static uint32_t f32_bits(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    return x;
}

static float f32_from_bits(uint32_t x)
{
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* Standard-normal Q, K, V of problem p from seed, rounded to type t. */
static void fill_rounded(const attn_problem *p, uint64_t seed, attn_dtype t, float *q, float *k,
                         float *v)
{
    const size_t qn = attn_q_elems(p), kvn = attn_kv_elems(p);
    attn_fill_normal(q, qn, seed, ATTN_STREAM_Q);
    attn_fill_normal(k, kvn, seed, ATTN_STREAM_K);
    attn_fill_normal(v, kvn, seed, ATTN_STREAM_V);
    attn_round_array(q, qn, t);
    attn_round_array(k, kvn, t);
    attn_round_array(v, kvn, t);
}

/* ---- rounding tables ----------------------------------------------------- */

/* float bits -> expected bf16 bits */
static const struct {
    uint32_t in;
    uint16_t out;
} BF16_TABLE[] = {
    {0x3f800000u, 0x3f80}, /* 1: exact */
    {0xc0000000u, 0xc000}, /* -2: exact */
    {0x00000000u, 0x0000}, /* +0 */
    {0x80000000u, 0x8000}, /* -0 */
    {0x3f808000u, 0x3f80}, /* 1 + 2^-8: tie, to even (down) */
    {0x3f818000u, 0x3f82}, /* 1 + 3·2^-8: tie, to even (up) */
    {0x3f808001u, 0x3f81}, /* just above the tie: up */
    {0x3f807fffu, 0x3f80}, /* just below the tie: down */
    {0xbf818000u, 0xbf82}, /* negative tie, to even */
    {0x7f7f7fffu, 0x7f7f}, /* below the tie under the largest bf16: stays finite */
    {0x7f7f8000u, 0x7f80}, /* tie above the largest bf16 (odd): to inf */
    {0x7f7fffffu, 0x7f80}, /* FLT_MAX: overflows to inf */
    {0xff7fffffu, 0xff80}, /* -FLT_MAX: -inf */
    {0x7f800000u, 0x7f80}, /* inf */
    {0xff800000u, 0xff80}, /* -inf */
    {0x00010000u, 0x0001}, /* smallest bf16 subnormal: exact */
    {0x00008000u, 0x0000}, /* half of it: tie, to even (0) */
    {0x00018000u, 0x0002}, /* 1.5 of it: tie, to even (2) */
    {0x00008001u, 0x0001}, /* just above half: up */
    {0x00000001u, 0x0000}, /* smallest float subnormal: 0 */
    {0x807fffffu, 0x8080}, /* largest negative subnormal: up to the smallest normal */
    {0x007f0000u, 0x007f}, /* largest bf16 subnormal: exact */
};

START_TEST(bf16_table)
{
    for (size_t n = 0; n < sizeof BF16_TABLE / sizeof BF16_TABLE[0]; n++) {
        uint16_t got = attn_float_to_bf16(f32_from_bits(BF16_TABLE[n].in));
        if (got != BF16_TABLE[n].out)
            ck_abort_msg("bf16(0x%08x) = 0x%04x, want 0x%04x", BF16_TABLE[n].in, got,
                         BF16_TABLE[n].out);
    }
    /* NaN stays a quiet NaN of its sign, also a signalling one whose payload
     * lies entirely in the dropped bits (truncation would make it inf) */
    const uint32_t nans[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u, 0x7fa00000u};
    for (size_t n = 0; n < sizeof nans / sizeof nans[0]; n++) {
        uint16_t b = attn_float_to_bf16(f32_from_bits(nans[n]));
        ck_assert_msg((b & 0x7fffu) > 0x7f80u && (b & 0x0040u), "NaN 0x%08x -> 0x%04x", nans[n], b);
        ck_assert_uint_eq(b >> 15, nans[n] >> 31);
        ck_assert(isnan(attn_bf16_to_float(b)));
    }
    /* back to float: exact, and every non-NaN bf16 round-trips */
    ck_assert_float_eq(attn_bf16_to_float(0x3f80), 1.0f);
    ck_assert_float_eq(attn_bf16_to_float(0x0001), 0x1p-133f);
    ck_assert(isinf(attn_bf16_to_float(0xff80)) && attn_bf16_to_float(0xff80) < 0);
    for (uint32_t b = 0; b < 0x10000u; b++) {
        if ((b & 0x7fffu) > 0x7f80u)
            continue;
        if (attn_float_to_bf16(attn_bf16_to_float((uint16_t)b)) != b)
            ck_abort_msg("bf16 0x%04x does not round-trip", b);
        float f = attn_bf16_to_float((uint16_t)b);
        if (f32_bits(attn_round_to(f, ATTN_BF16)) != f32_bits(f))
            ck_abort_msg("attn_round_to(bf16 0x%04x, BF16) moved it", b);
    }
    /* attn_round_to(BF16) is the round trip, on arbitrary floats */
    float x[4096];
    attn_fill_normal(x, 4096, 11, ATTN_STREAM_Q);
    for (int n = 0; n < 4096; n++) {
        float f = ldexpf(x[n], (n % 300) - 150); /* normals, subnormals, overflow */
        float want = attn_bf16_to_float(attn_float_to_bf16(f));
        ck_assert_uint_eq(f32_bits(attn_round_to(f, ATTN_BF16)), f32_bits(want));
    }
}
END_TEST

START_TEST(fp16_round_trip)
{
    /* attn_round_to(F16) is npy.c's conversion there and back */
    float x[4096];
    attn_fill_normal(x, 4096, 12, ATTN_STREAM_Q);
    for (int n = 0; n < 4096; n++) {
        float f = ldexpf(x[n], (n % 48) - 30); /* normals, subnormals, overflow */
        float want = attn_half_to_float(attn_float_to_half(f));
        ck_assert_uint_eq(f32_bits(attn_round_to(f, ATTN_F16)), f32_bits(want));
    }
    /* every finite half is a fixed point */
    for (uint32_t h = 0; h < 0x10000u; h++) {
        if ((h & 0x7c00u) == 0x7c00u)
            continue;
        float f = attn_half_to_float((uint16_t)h);
        if (f32_bits(attn_round_to(f, ATTN_F16)) != f32_bits(f))
            ck_abort_msg("attn_round_to(half 0x%04x, F16) moved it", h);
    }
    ck_assert_float_eq(attn_round_to(1.0f + 0x1p-11f, ATTN_F16), 1.0f); /* tie: even */
    ck_assert_float_eq(attn_round_to(1.0f + 0x1p-10f + 0x1p-11f, ATTN_F16), 1.0f + 0x1p-9f);
    ck_assert_float_eq(attn_round_to(65504.0f, ATTN_F16), 65504.0f);
    ck_assert(isinf(attn_round_to(65520.0f, ATTN_F16)));           /* overflow */
    ck_assert_float_eq(attn_round_to(0x1p-25f, ATTN_F16), 0.0f);   /* tie: even (0) */
    ck_assert_float_eq(attn_round_to(0x1.8p-24f, ATTN_F16), 0x1p-23f);
    ck_assert(isnan(attn_round_to(NAN, ATTN_F16)));
    ck_assert(isinf(attn_round_to(-INFINITY, ATTN_F16)));

    /* fp32 is the identity, NaN bits included; an unknown type gives NaN */
    const uint32_t bits[] = {0x3f800001u, 0x00000001u, 0x7fc12345u, 0xff800000u, 0x80000000u};
    for (size_t n = 0; n < sizeof bits / sizeof bits[0]; n++)
        ck_assert_uint_eq(f32_bits(attn_round_to(f32_from_bits(bits[n]), ATTN_F32)), bits[n]);
    ck_assert(isnan(attn_round_to(1.0f, ATTN_DTYPE_COUNT)));

    /* attn_round_array() is attn_round_to() element by element */
    for (int t = 0; t < ATTN_DTYPE_COUNT; t++) {
        float a[257];
        attn_fill_normal(a, 257, 13, ATTN_STREAM_K);
        attn_round_array(a, 257, (attn_dtype)t);
        attn_fill_normal(x, 257, 13, ATTN_STREAM_K);
        for (int n = 0; n < 257; n++)
            ck_assert_uint_eq(f32_bits(a[n]), f32_bits(attn_round_to(x[n], (attn_dtype)t)));
    }
}
END_TEST

/* float -> expected e4m3 value (as a float) */
static const struct {
    float in, out;
} E4M3_TABLE[] = {
    {1.0f, 1.0f},           {-1.0f, -1.0f},      {0.0f, 0.0f},
    {1.0625f, 1.0f},        /* 1 + 2^-4: tie between 1 and 1.125, to even */
    {1.1875f, 1.25f},       /* tie between 1.125 and 1.25, to even */
    {1.07f, 1.125f},        /* nearest */
    {0.3f, 0.3125f},        /* spacing 2^-5 in [0.25, 0.5) */
    {17.0f, 16.0f},         /* tie (spacing 2 in [16, 32)), to even */
    {19.0f, 20.0f},         /* tie, to even (up) */
    {-19.0f, -20.0f},       {240.0f, 240.0f},    {256.0f, 256.0f},
    {432.0f, 448.0f},       /* tie between 416 and 448, to even */
    {447.0f, 448.0f},       {448.0f, 448.0f},    /* the largest e4m3 */
    {449.0f, 448.0f},       /* past it: saturates */
    {464.0f, 448.0f},       {1e6f, 448.0f},      {-1e6f, -448.0f},
    {INFINITY, 448.0f},     /* ±inf saturate too (SATFINITE) */
    {-INFINITY, -448.0f},   {0x1p-6f, 0x1p-6f},  /* smallest normal */
    {0x1.1p-6f, 0x1p-6f},   /* spacing 2^-9 also above the smallest normal: tie, to even */
    {0x1.3p-6f, 0x1.4p-6f}, {0x1p-9f, 0x1p-9f},  /* smallest subnormal */
    {0x7p-9f, 0x7p-9f},     /* largest subnormal */
    {0x1p-10f, 0.0f},       /* half the smallest subnormal: tie, to even (0) */
    {0x3p-10f, 0x1p-8f},    /* 1.5 · 2^-9: tie, to even (2 · 2^-9) */
    {0x1.8p-10f, 0x1p-9f},  /* above the tie: up */
    {0xfp-10f, 0x1p-6f},    /* 7.5 · 2^-9: tie, to even: 2^-6 (subnormal to normal) */
    {1e-30f, 0.0f},
};

START_TEST(e4m3_table)
{
    for (size_t n = 0; n < sizeof E4M3_TABLE / sizeof E4M3_TABLE[0]; n++) {
        float got = attn_round_to(E4M3_TABLE[n].in, ATTN_F8_E4M3);
        if (f32_bits(got) != f32_bits(E4M3_TABLE[n].out))
            ck_abort_msg("e4m3(%a) = %a, want %a", (double)E4M3_TABLE[n].in, (double)got,
                         (double)E4M3_TABLE[n].out);
    }
    ck_assert(isnan(attn_round_to(NAN, ATTN_F8_E4M3)));
    ck_assert_uint_eq(f32_bits(attn_round_to(-0.0f, ATTN_F8_E4M3)), 0x80000000u);
    /* every one of the 253 finite e4m3 magnitudes is a fixed point, and the
     * rounding is monotone */
    float prev = -1;
    for (int e = 0; e < 16; e++)
        for (int m = 0; m < 8; m++) {
            if (e == 15 && m == 7)
                continue; /* the NaN code */
            float val = e == 0 ? ldexpf((float)m, -9) : ldexpf(1.0f + (float)m / 8, e - 7);
            ck_assert_float_eq(attn_round_to(val, ATTN_F8_E4M3), val);
            ck_assert_float_eq(attn_round_to(-val, ATTN_F8_E4M3), -val);
            if (prev >= 0) { /* the midpoint below val rounds to one of its neighbours */
                float mid = (prev + val) / 2, r = attn_round_to(mid, ATTN_F8_E4M3);
                ck_assert(r == prev || r == val);
                ck_assert_float_eq(attn_round_to(nextafterf(mid, 0), ATTN_F8_E4M3), prev);
                ck_assert_float_eq(attn_round_to(nextafterf(mid, 1e9f), ATTN_F8_E4M3), val);
            }
            prev = val;
        }
}
END_TEST

/* ---- the baseline at a precision ----------------------------------------- */

/* Odd shapes, causal bottom-right both ways, GQA and MQA. */
static const attn_problem BITWISE_PROBS[] = {
    {2, 6, 2, 37, 53, 33, 1, 0},     /* causal, Sq < Sk, GQA */
    {2, 6, 3, 53, 37, 33, 1, 0},     /* causal, Sq > Sk: 16 rows see no key */
    {1, 4, 1, 31, 29, 7, 0, 0.37f},  /* MQA, explicit scale */
    {2, 4, 2, 127, 127, 64, 1, 0},
};

/* At fp32 attn_naive_rows_at() is attn_naive_fp32_rows(), bit for bit,
 * for all rows and for a list of rows. */
START_TEST(fp32_is_naive_fp32)
{
    const attn_problem *p = &BITWISE_PROBS[_i];
    const size_t qn = attn_q_elems(p), kvn = attn_kv_elems(p), ln = attn_lse_elems(p);
    const int D = p->head_dim;
    float *q = malloc(qn * 4), *k = malloc(kvn * 4), *v = malloc(kvn * 4);
    float *o1 = malloc(qn * 4), *o2 = malloc(qn * 4), *l1 = malloc(ln * 4), *l2 = malloc(ln * 4);
    ck_assert(q && k && v && o1 && o2 && l1 && l2);
    fill_rounded(p, 100 + (uint64_t)_i, ATTN_F32, q, k, v);
    attn_naive_fp32_rows(p, q, k, v, NULL, ln, o1, l1);
    attn_naive_rows_at(p, ATTN_F32, q, k, v, NULL, ln, o2, l2);
    ck_assert_msg(memcmp(o1, o2, qn * 4) == 0, "O differs from attn_naive_fp32_rows (case %d)", _i);
    ck_assert_msg(memcmp(l1, l2, ln * 4) == 0, "LSE differs from attn_naive_fp32_rows (case %d)", _i);

    /* a list of rows: the same rows of the full result (first, last, some between) */
    int64_t rows[7];
    size_t nr = 0;
    for (int64_t r = 0; r < (int64_t)ln && nr < 6; r += (int64_t)ln / 5 + 1)
        rows[nr++] = r;
    rows[nr++] = (int64_t)ln - 1;
    float *os = malloc(nr * D * 4), *ls = malloc(nr * 4), *og = malloc(nr * D * 4);
    ck_assert(os && ls && og);
    for (int t = 0; t < ATTN_DTYPE_COUNT; t++) {
        attn_naive_rows_at(p, (attn_dtype)t, q, k, v, NULL, ln, o2, l2);
        attn_naive_rows_at(p, (attn_dtype)t, q, k, v, rows, nr, os, ls);
        attn_gather_rows(o2, D, rows, nr, og);
        ck_assert(memcmp(os, og, nr * D * 4) == 0);
        for (size_t n = 0; n < nr; n++)
            ck_assert_uint_eq(f32_bits(ls[n]), f32_bits(l2[rows[n]]));
    }
    free(os), free(ls), free(og);
    free(q), free(k), free(v), free(o1), free(o2), free(l1), free(l2);
}
END_TEST

/*
 * Errors against the float64 oracle on the same rounded inputs, B = 2,
 * Hq = 4, Hkv = 2, Sq = Sk = 127, D = 64, standard-normal inputs, seed 7.
 * Measured (max_abs of O):
 *
 *   causal   fp32      fp16      bf16      fp8 e4m3
 *   off      8.6e-7    2.75e-4   2.22e-3   3.77e-2
 *   on       5.2e-7    7.9e-4    7.47e-3   1.26e-1
 *
 * (over seeds 1..5: fp16 2.6e-4..3.8e-4 off, 8.7e-4..1.0e-3 on; bf16
 * 2.3e-3..3.3e-3 off, 6.4e-3..7.9e-3 on.) Causal is larger because its
 * first rows average few rows of V: max |O| is 3.4 against 0.77. Most of
 * the error is the final rounding of O to the type: rounding the oracle's
 * O alone gives 2.4e-4 off / 7.9e-4 on (fp16), 1.9e-3 / 7.5e-3 (bf16),
 * 3.1e-2 / 1.24e-1 (e4m3); rounding P adds the rest. The bounds
 * below are about 3× the measured values (fp32: 3e-6 for both, 3.5× and
 * 5.8×); LSE does not depend on the precision (S, m and l are fp32 in every
 * case) and equals fp32's bit for bit.
 */
static const double ERR_BOUND[2][ATTN_DTYPE_COUNT] = {
    /* fp32 (the rule's fp32 range), fp16, bf16, fp8 e4m3 */
    {3e-6, 8e-4, 7e-3, 0.11},    /* non-causal */
    {3e-6, 2.4e-3, 2.2e-2, 0.38}, /* causal */
};

START_TEST(reduced_precision_errors)
{
    const int causal = _i;
    const attn_problem p = {2, 4, 2, 127, 127, 64, causal, 0};
    const size_t qn = attn_q_elems(&p), kvn = attn_kv_elems(&p), ln = attn_lse_elems(&p);
    float *q = malloc(qn * 4), *k = malloc(kvn * 4), *v = malloc(kvn * 4);
    float *o = malloc(qn * 4), *lse = malloc(ln * 4), *lse32 = malloc(ln * 4);
    double *o_ref = malloc(qn * 8), *lse_ref = malloc(ln * 8);
    ck_assert(q && k && v && o && lse && lse32 && o_ref && lse_ref);
    double err[ATTN_DTYPE_COUNT];
    for (int t = 0; t < ATTN_DTYPE_COUNT; t++) {
        fill_rounded(&p, 7, (attn_dtype)t, q, k, v);
        attn_naive_rows_at(&p, (attn_dtype)t, q, k, v, NULL, ln, o, lse);
        attn_oracle_forward(&p, q, k, v, NULL, ln, o_ref, lse_ref);
        attn_err e = attn_compare(o, o_ref, qn);
        ck_assert_uint_eq(e.nan_count + e.nan_missing + e.inf_mismatch, 0);
        err[t] = e.max_abs;
        ck_assert_msg(err[t] < ERR_BOUND[causal][t], "%s causal=%d: max_abs %.3g >= bound %.3g",
                      attn_dtype_name((attn_dtype)t), causal, err[t], ERR_BOUND[causal][t]);
        ck_assert_msg(attn_lse_err(lse, lse_ref, ln) <= ATTN_LSE_TOL, "%s: LSE",
                      attn_dtype_name((attn_dtype)t));
        /* the same inputs at fp32: the LSE is the same bits */
        attn_naive_rows_at(&p, ATTN_F32, q, k, v, NULL, ln, o, lse32);
        ck_assert_msg(memcmp(lse, lse32, ln * 4) == 0, "%s: LSE differs from fp32's",
                      attn_dtype_name((attn_dtype)t));
        /* O is stored in the type: every element representable */
        if (t != ATTN_F32) {
            attn_naive_rows_at(&p, (attn_dtype)t, q, k, v, NULL, ln, o, lse);
            for (size_t n = 0; n < qn; n++)
                ck_assert_uint_eq(f32_bits(attn_round_to(o[n], (attn_dtype)t)), f32_bits(o[n]));
        }
    }
    /* each precision costs more than the one above it (by far more than
     * fp32's own rounding) */
    ck_assert_msg(err[ATTN_F16] > 10 * err[ATTN_F32], "fp16 %.3g vs fp32 %.3g", err[ATTN_F16],
                  err[ATTN_F32]);
    ck_assert_msg(err[ATTN_BF16] > err[ATTN_F16], "bf16 %.3g vs fp16 %.3g", err[ATTN_BF16],
                  err[ATTN_F16]);
    ck_assert_msg(err[ATTN_F8_E4M3] > err[ATTN_BF16], "e4m3 %.3g vs bf16 %.3g",
                  err[ATTN_F8_E4M3], err[ATTN_BF16]);
    free(q), free(k), free(v), free(o), free(lse), free(lse32), free(o_ref), free(lse_ref);
}
END_TEST

/*
 * Causal with Sq > Sk: the first Sq − Sk rows of every head see no key and
 * get O = +0, LSE = −inf at every precision (written over poison); a NaN in
 * one K row (or V row) reaches exactly the rows that see that key: their
 * whole O row and their LSE (V: O only), nothing else. Iteration _i: type
 * _i / 3, and no NaN, NaN in K, NaN in V for _i % 3.
 */
START_TEST(masked_rows_and_nan)
{
    const attn_dtype t = (attn_dtype)(_i / 3);
    const int nan_in = _i % 3; /* 0: none, 1: K, 2: V */
    const attn_problem p = {2, 4, 2, 53, 37, 24, 1, 0};
    const int D = p.head_dim;
    const size_t qn = attn_q_elems(&p), kvn = attn_kv_elems(&p), ln = attn_lse_elems(&p);
    float *q = malloc(qn * 4), *k = malloc(kvn * 4), *v = malloc(kvn * 4);
    float *o = malloc(qn * 4), *lse = malloc(ln * 4);
    ck_assert(q && k && v && o && lse);
    fill_rounded(&p, 21 + (uint64_t)_i, t, q, k, v);
    /* NaN in key j0 of batch 1, K/V head 1 */
    const int j0 = 20, b0 = 1, hk0 = 1;
    const size_t row0 = (((size_t)b0 * p.heads_kv + hk0) * p.seqlen_k + j0) * D;
    if (nan_in)
        for (int d = 0; d < D; d++)
            (nan_in == 1 ? k : v)[row0 + d] = NAN;
    for (size_t n = 0; n < qn; n++)
        o[n] = ATTN_POISON;
    for (size_t n = 0; n < ln; n++)
        lse[n] = ATTN_POISON;
    attn_naive_rows_at(&p, t, q, k, v, NULL, ln, o, lse);

    int masked = 0, nan_rows = 0;
    for (int b = 0; b < p.batch; b++)
        for (int h = 0; h < p.heads_q; h++)
            for (int i = 0; i < p.seqlen_q; i++) {
                const size_t r = ((size_t)b * p.heads_q + h) * p.seqlen_q + i;
                const int nk = attn_keys_visible(&p, i);
                const int sees = nan_in && b == b0 && attn_kv_head(&p, h) == hk0 && nk > j0;
                const float *orow = o + r * D;
                if (nk == 0) {
                    masked++;
                    ck_assert_msg(isinf(lse[r]) && lse[r] < 0, "row %zu: LSE %g", r,
                                  (double)lse[r]);
                    for (int d = 0; d < D; d++)
                        ck_assert_uint_eq(f32_bits(orow[d]), 0);
                    continue;
                }
                nan_rows += sees;
                ck_assert_msg(isnan(lse[r]) == (sees && nan_in == 1),
                              "%s: row %zu (b %d h %d i %d): LSE %g", attn_dtype_name(t), r, b, h,
                              i, (double)lse[r]);
                if (!isnan(lse[r]))
                    ck_assert(isfinite(lse[r]) && lse[r] != ATTN_POISON);
                for (int d = 0; d < D; d++) {
                    ck_assert_msg(isnan(orow[d]) == sees, "%s: row %zu col %d: %g",
                                  attn_dtype_name(t), r, d, (double)orow[d]);
                    if (!sees)
                        ck_assert(isfinite(orow[d]) && orow[d] != ATTN_POISON);
                }
            }
    ck_assert_int_eq(masked, p.batch * p.heads_q * (p.seqlen_q - p.seqlen_k));
    /* the NaN key is seen by the rows i ≥ j0 + Sq − Sk of the two query heads on K/V head 1 */
    ck_assert_int_eq(nan_rows, nan_in ? 2 * (p.seqlen_q - (j0 + p.seqlen_q - p.seqlen_k)) : 0);
    free(q), free(k), free(v), free(o), free(lse);
}
END_TEST

Suite *suite_precision(void)
{
    Suite *s = suite_create("precision");
    TCase *tc = tcase_create("rounding");
    tcase_add_test(tc, bf16_table);
    tcase_add_test(tc, fp16_round_trip);
    tcase_add_test(tc, e4m3_table);
    suite_add_tcase(s, tc);
    tc = tcase_create("baseline");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, fp32_is_naive_fp32, 0,
                        (int)(sizeof BITWISE_PROBS / sizeof BITWISE_PROBS[0]));
    tcase_add_loop_test(tc, reduced_precision_errors, 0, 2);
    tcase_add_loop_test(tc, masked_rows_and_nan, 0, 3 * ATTN_DTYPE_COUNT);
    suite_add_tcase(s, tc);
    return s;
}
