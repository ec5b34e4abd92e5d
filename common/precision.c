/**
 * @file precision.c
 * @brief Reduced precision on the CPU: bf16 and fp8 (e4m3) conversions,
 * rounding a float to an element type, and the naive baseline at a given
 * precision that scales the correctness rule of the tensor-core steps.
 *
 * From step 08 on a forward computes in fp16 or bf16 (fp8 in the Hopper
 * steps) with fp32 accumulation, and is held to max_abs_err ≤ 2 × that of
 * naive attention *at the same precision* on the same rounded inputs
 * + 1e-4 (notes/design.md). attn_naive_rows_at() is that baseline. It
 * emulates what a tensor-core kernel cannot avoid and nothing more:
 *
 * - S_ij = q_i · k_j summed in fp32 in key-dim order. The inputs are
 *   already rounded to the type, and the product of two fp16, bf16 or e4m3
 *   values is exact in fp32, so only the fp32 accumulation rounds, as in
 *   an MMA with an fp32 accumulator.
 * - S scaled, row max, exp and row sum l in fp32 (the kernels' softmax).
 * - P_ij = exp(S_ij − m) rounded to the type before the PV product: a
 *   kernel feeds P to its second tensor-core GEMM in the input type.
 * - O = Σ_j round(P_ij) · V_j accumulated in fp32, divided by the fp32 row
 *   sum l of the *unrounded* P (as FlashAttention does), then rounded to
 *   the type (O is stored in it).
 * - LSE = m + ln l in fp32.
 *
 * A baseline that stored S in fp16 (a cuBLAS GEMM with fp16 output) would
 * round the logits themselves and loosen the rule about tenfold; this one
 * keeps S in fp32, as the FlashAttention kernels do.
 */
#include "common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- conversions --------------------------------------------------------- */

uint16_t attn_float_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) /* NaN: keep sign and top payload, set quiet bit */
        return (uint16_t)((x >> 16) | 0x0040u);
    /* round to nearest even on the 16 dropped bits; a carry out of the
     * mantissa moves to the next binade, and past the largest finite value
     * to infinity, which is what IEEE rounding does. Infinities pass. */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

float attn_bf16_to_float(uint16_t b)
{
    uint32_t x = (uint32_t)b << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/** Largest finite e4m3 (e4m3fn) value: 1.75 · 2^8. */
#define E4M3_MAX 448.0f

/**
 * @p x rounded to the nearest fp8 e4m3 (OCP "e4m3fn": 4 exponent bits,
 * bias 7, 3 mantissa bits, no infinities) value, ties to even, returned as
 * a float. Normal numbers are 2^-6 … 448 (spacing 2^(e−3) in binade 2^e),
 * subnormals multiples of 2^-9. Out of range saturates: |x| > 448 and ±inf
 * give ±448 (the SATFINITE conversion FlashAttention-3 uses for its fp8
 * inputs); NaN stays NaN.
 */
static float round_e4m3(float x)
{
    if (isnan(x))
        return x;
    if (isinf(x) || fabsf(x) >= E4M3_MAX)
        return x > 0 ? E4M3_MAX : -E4M3_MAX;
    int e;
    (void)frexpf(x, &e);          /* |x| in [2^(e-1), 2^e) */
    int q = e - 1 - 3;            /* spacing of the binade: 2^(e-1-3) */
    if (q < -9)
        q = -9;                   /* subnormals (and 0): spacing 2^-9 */
    /* scaling by powers of two is exact; rintf rounds ties to even in the
     * default rounding mode. Nothing below 448 rounds past it: 448 is a
     * multiple of the top binade's spacing, 32. */
    return ldexpf(rintf(ldexpf(x, -q)), q);
}

float attn_round_to(float x, attn_dtype t)
{
    switch (t) {
    case ATTN_F32:
        return x;
    case ATTN_F16:
        return attn_half_to_float(attn_float_to_half(x));
    case ATTN_BF16:
        return attn_bf16_to_float(attn_float_to_bf16(x));
    case ATTN_F8_E4M3:
        return round_e4m3(x);
    default:
        return NAN; /* an unknown type cannot pass a check silently */
    }
}

void attn_round_array(float *x, size_t n, attn_dtype t)
{
    if (t == ATTN_F32)
        return;
    for (size_t i = 0; i < n; i++)
        x[i] = attn_round_to(x[i], t);
}

/* ---- the naive baseline at a precision ----------------------------------- */

/** max that propagates NaN (fmaxf() does not); as in oracle.c */
static float prec_nan_maxf(float a, float b) { return (isnan(a) || a > b) ? a : b; }

void attn_naive_rows_at(const attn_problem *p, attn_dtype t, const float *q, const float *k,
                        const float *v, const int64_t *rows, size_t n_rows, float *o_rows,
                        float *lse_rows)
{
    attn_naive_rows_order(p, t, ATTN_ORDER_FORWARD, q, k, v, rows, n_rows, o_rows, lse_rows);
}

/** Σ_d a[d]·b[d] in fp32, in summation order @p order (attn_naive_rows_order()) */
static float dot_order(const float *a, const float *b, int D, attn_order order)
{
    if (order == ATTN_ORDER_REVERSE) {
        float acc = 0;
        for (int d = D - 1; d >= 0; d--)
            acc += a[d] * b[d];
        return acc;
    }
    if (order == ATTN_ORDER_BLOCKED) { /* four interleaved partial sums, as a float4 loop */
        float part[4] = {0, 0, 0, 0};
        for (int d = 0; d < D; d++)
            part[d % 4] += a[d] * b[d];
        return (part[0] + part[1]) + (part[2] + part[3]);
    }
    float acc = 0;
    for (int d = 0; d < D; d++)
        acc += a[d] * b[d];
    return acc;
}

/** key j of the nk a row sees, visited as the @p x-th in order @p order:
 * forward; reverse; blocked: blocks of 32 keys, the last block first */
static int key_order(int x, int nk, attn_order order)
{
    if (order == ATTN_ORDER_REVERSE)
        return nk - 1 - x;
    if (order == ATTN_ORDER_BLOCKED) {
        const int nb = (nk + 31) / 32, last = nk - 32 * (nb - 1); /* keys in the last block */
        return x < last ? 32 * (nb - 1) + x : x - last;
    }
    return x;
}

void attn_naive_rows_order(const attn_problem *p, attn_dtype t, attn_order order, const float *q,
                           const float *k, const float *v, const int64_t *rows, size_t n_rows,
                           float *o_rows, float *lse_rows)
{
    const int D = p->head_dim, Sk = p->seqlen_k;
    const float scale = attn_scale(p);
    /* fp32: P normalized term by term, exactly as attn_naive_fp32_rows()
     * (the two agree bit for bit); reduced precision: P = exp(S − m)
     * rounded, O divided by l once at the end, as a kernel does. */
    const int late_norm = t != ATTN_F32;
    float *s = malloc((size_t)(Sk > 0 ? Sk : 1) * sizeof *s);
    if (!s) { /* no memory: every output NaN, so no check can pass on it */
        for (size_t n = 0; n < n_rows; n++) {
            lse_rows[n] = NAN;
            for (int d = 0; d < D; d++)
                o_rows[n * D + d] = NAN;
        }
        return;
    }
    for (size_t n = 0; n < n_rows; n++) {
        int64_t r = rows ? rows[n] : (int64_t)n;
        int h, i;
        size_t qo, kvo;
        attn_row_offsets(p, r, &h, &i, &qo, &kvo);
        (void)h;
        int nk = attn_keys_visible(p, i);
        float *o = o_rows + n * D;
        memset(o, 0, (size_t)D * sizeof *o);
        if (nk == 0) { /* a row that sees no key: O = 0, LSE = -inf */
            lse_rows[n] = -INFINITY;
            continue;
        }
        float m = -INFINITY;
        for (int j = 0; j < nk; j++) {
            /* the MMA: exact products, fp32 accumulation */
            const float acc = dot_order(q + qo, k + kvo + (size_t)j * D, D, order);
            s[j] = acc * scale;
            m = prec_nan_maxf(m, s[j]);
        }
        if (m == -INFINITY) { /* every visible score -inf: a masked row (design page) */
            lse_rows[n] = -INFINITY;
            continue;
        }
        float l = 0; /* the sum of the unrounded P */
        for (int x = 0; x < nk; x++) {
            const int j = key_order(x, nk, order);
            l += (s[j] = expf(s[j] - m));
        }
        for (int x = 0; x < nk; x++) {
            const int j = key_order(x, nk, order);
            /* P as the second GEMM's operand */
            const float pj = late_norm ? attn_round_to(s[j], t) : s[j] / l;
            for (int d = 0; d < D; d++)
                o[d] += pj * v[kvo + (size_t)j * D + d];
        }
        if (late_norm)
            for (int d = 0; d < D; d++)
                o[d] = attn_round_to(o[d] / l, t); /* O stored in the type */
        /* cppcheck-suppress invalidFunctionArg ; nk >= 1 here, so l >= exp(0) = 1 (or NaN) */
        lse_rows[n] = m + logf(l);
    }
    free(s);
}
