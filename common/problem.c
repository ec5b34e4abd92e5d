/**
 * @file problem.c
 * @brief attn_problem: validation, sizes, the causal rule, FLOP counts.
 */
#include "common.h"


#include <math.h>
#include <stdio.h>

int attn_problem_validate(const attn_problem *p, char *msg, size_t msg_len)
{
    char none[8];
    if (!msg || msg_len == 0) /* a caller that wants the code only */
        msg = none, msg_len = sizeof none;
    if (!p) {
        snprintf(msg, msg_len, "no problem (NULL)");
        return ATTN_EXIT_BAD_INPUT;
    }
    /* Each check names the flag and the allowed range (notes/design.md). */
    if (p->batch < 1 || p->batch > 65535) {
        snprintf(msg, msg_len, "--batch must be in 1..65535 (got %d)", p->batch);
        return ATTN_EXIT_BAD_INPUT;
    }
    if (p->heads_q < 1 || p->heads_q > 65535) {
        snprintf(msg, msg_len, "--heads must be in 1..65535 (got %d)", p->heads_q);
        return ATTN_EXIT_BAD_INPUT;
    }
    if (p->heads_kv < 1 || p->heads_kv > p->heads_q || p->heads_q % p->heads_kv != 0) {
        snprintf(msg, msg_len,
                 "--kv-heads must divide --heads (%d) and be at least 1 (got %d)",
                 p->heads_q, p->heads_kv);
        return ATTN_EXIT_BAD_INPUT;
    }
    if (p->seqlen_q < 1 || p->seqlen_q > (1 << 24)) {
        snprintf(msg, msg_len, "--seq must be in 1..16777216 (got %d)", p->seqlen_q);
        return ATTN_EXIT_BAD_INPUT;
    }
    if (p->seqlen_k < 1 || p->seqlen_k > (1 << 24)) {
        snprintf(msg, msg_len, "--seq-k must be in 1..16777216 (got %d)", p->seqlen_k);
        return ATTN_EXIT_BAD_INPUT;
    }
    if (p->head_dim < 1 || p->head_dim > ATTN_MAX_HEAD_DIM) {
        snprintf(msg, msg_len, "--dim must be in 1..%d (got %d)", ATTN_MAX_HEAD_DIM,
                 p->head_dim);
        return ATTN_EXIT_BAD_INPUT;
    }
    if (p->causal != 0 && p->causal != 1) {
        snprintf(msg, msg_len, "causal must be 0 or 1 (got %d)", p->causal);
        return ATTN_EXIT_BAD_INPUT;
    }
    if (!(p->softmax_scale >= 0.0f) || isinf(p->softmax_scale)) {
        snprintf(msg, msg_len, "--scale must be a finite number >= 0 (0: 1/sqrt(dim)) (got %g)",
                 (double)p->softmax_scale);
        return ATTN_EXIT_BAD_INPUT;
    }
    /* Kernels index tensors with 32-bit ints within a head and 64-bit
     * offsets across heads; refuse what overflows either, before any
     * allocation. */
    const double lim = 2147483647.0;
    double q = (double)p->batch * p->heads_q * p->seqlen_q * p->head_dim;
    double kv = (double)p->batch * p->heads_kv * p->seqlen_k * p->head_dim;
    if (q > lim || kv > lim) {
        snprintf(msg, msg_len,
                 "problem too large: Q has %.0f and K/V %.0f elements, at most %.0f each",
                 q, kv, lim);
        return ATTN_EXIT_BAD_INPUT;
    }
    return 0;
}

float attn_scale(const attn_problem *p)
{
    return p->softmax_scale != 0.0f ? p->softmax_scale
                                     : 1.0f / sqrtf((float)p->head_dim);
}

size_t attn_q_elems(const attn_problem *p)
{
    return (size_t)p->batch * p->heads_q * p->seqlen_q * p->head_dim;
}

size_t attn_kv_elems(const attn_problem *p)
{
    return (size_t)p->batch * p->heads_kv * p->seqlen_k * p->head_dim;
}

size_t attn_lse_elems(const attn_problem *p)
{
    return (size_t)p->batch * p->heads_q * p->seqlen_q;
}

int attn_kv_head(const attn_problem *p, int hq)
{
    return hq / (p->heads_q / p->heads_kv);
}

int attn_keys_visible(const attn_problem *p, int i)
{
    if (!p->causal)
        return p->seqlen_k;
    long n = (long)i + p->seqlen_k - p->seqlen_q + 1; /* bottom-right */
    return n < 0 ? 0 : (n > p->seqlen_k ? p->seqlen_k : (int)n);
}

double attn_flops_forward(const attn_problem *p)
{
    double f = 4.0 * p->batch * p->heads_q * (double)p->seqlen_q * p->seqlen_k * p->head_dim;
    return p->causal ? f / 2 : f;
}

int attn_entry_check(const attn_problem *p, const void *const *ptrs, int n_ptrs)
{
    char msg[256];
    int rc = attn_problem_validate(p, msg, sizeof msg);
    if (rc)
        return attn_set_error(rc, "%s", msg);
    for (int i = 0; i < n_ptrs; i++)
        if (!ptrs[i])
            return attn_set_error(ATTN_EXIT_BAD_INPUT, "tensor argument %d is NULL", i + 1);
    return 0;
}
