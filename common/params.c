/**
 * @file params.c
 * @brief Element types, tensors with strides, and the checks of
 * attn_params against a step's capabilities (attn.h).
 */
#include "common.h"

#include <math.h>
#include <string.h>

/** The `--dtype` names, by attn_dtype. */
static const char *const dtype_names[ATTN_DTYPE_COUNT] = {"fp32", "fp16", "bf16", "fp8e4m3"};
/** Bytes per element, by attn_dtype. */
static const size_t dtype_sizes[ATTN_DTYPE_COUNT] = {4, 2, 2, 1};

size_t attn_dtype_size(attn_dtype t)
{
    return (unsigned)t < ATTN_DTYPE_COUNT ? dtype_sizes[t] : 0;
}

const char *attn_dtype_name(attn_dtype t)
{
    return (unsigned)t < ATTN_DTYPE_COUNT ? dtype_names[t] : "?";
}

int attn_dtype_parse(const char *name)
{
    for (int t = 0; name && t < ATTN_DTYPE_COUNT; t++)
        if (!strcmp(name, dtype_names[t]))
            return t;
    return -1;
}

void attn_tensor_strides(attn_tensor *t, attn_layout layout, int heads, int seq, int dim)
{
    if (layout == ATTN_LAYOUT_BSHD) {
        t->stride_h = dim;
        t->stride_s = (int64_t)heads * dim;
    } else {
        t->stride_s = dim;
        t->stride_h = (int64_t)seq * dim;
    }
    t->stride_b = (int64_t)heads * seq * dim;
}

/** A contiguous BHSD tensor at @p data. */
static attn_tensor bhsd(void *data, attn_dtype dtype, int heads, int seq, int dim)
{
    attn_tensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.dtype = dtype;
    attn_tensor_strides(&t, ATTN_LAYOUT_BHSD, heads, seq, dim);
    return t;
}

void attn_params_init(attn_params *pp, const attn_problem *p, attn_dtype dtype, const void *q,
                      const void *k, const void *v, void *o, float *lse)
{
    memset(pp, 0, sizeof *pp);
    pp->struct_size = (uint32_t)sizeof *pp;
    pp->version = ATTN_PARAMS_VERSION;
    pp->prob = *p;
    /* one struct serves inputs and outputs alike: the step reads Q, K, V only */
    pp->q = bhsd((void *)q, dtype, p->heads_q, p->seqlen_q, p->head_dim);
    pp->k = bhsd((void *)k, dtype, p->heads_kv, p->seqlen_k, p->head_dim);
    pp->v = bhsd((void *)v, dtype, p->heads_kv, p->seqlen_k, p->head_dim);
    pp->o = bhsd(o, dtype, p->heads_q, p->seqlen_q, p->head_dim);
    pp->lse = lse;
    pp->window_left = pp->window_right = -1;
}

/** 1 when @p t is contiguous BHSD for @p heads heads of @p seq rows. */
static int is_bhsd(const attn_tensor *t, int heads, int seq, int dim)
{
    return t->stride_s == dim && t->stride_h == (int64_t)seq * dim &&
           t->stride_b == (int64_t)heads * seq * dim;
}

/** Strides that keep every element of a [B, H, S, D] tensor inside one object
 *  and distinct rows apart: each stride ≥ 0 and no two (h, s) rows overlap
 *  within a batch (checked loosely: stride_s ≥ D or stride_h ≥ D). */
static int strides_ok(const attn_tensor *t, int dim)
{
    return t->stride_b >= 0 && t->stride_h >= 0 && t->stride_s >= 0 &&
           (t->stride_s >= dim || t->stride_h >= dim);
}

int attn_params_check(const attn_params *pp, const attn_caps *caps, const char *step_id,
                      char *msg, size_t msg_len)
{
    char dummy[8];
    if (!msg || msg_len == 0)
        msg = dummy, msg_len = sizeof dummy;
    if (!pp || !caps) {
        snprintf(msg, msg_len, "step %s: no parameters", step_id ? step_id : "?");
        return ATTN_EXIT_BAD_INPUT;
    }
    if (pp->struct_size != sizeof *pp || pp->version != ATTN_PARAMS_VERSION) {
        snprintf(msg, msg_len, "attn_params of size %u, version %u: this library has size %zu, version %d",
                 pp->struct_size, pp->version, sizeof *pp, ATTN_PARAMS_VERSION);
        return ATTN_EXIT_BAD_INPUT;
    }
    int rc = attn_problem_validate(&pp->prob, msg, msg_len);
    if (rc)
        return rc;
    const attn_problem *p = &pp->prob;
    const attn_tensor *ts[4] = {&pp->q, &pp->k, &pp->v, &pp->o};
    const char *names[4] = {"Q", "K", "V", "O"};
    for (int i = 0; i < 4; i++) {
        const attn_tensor *t = ts[i];
        if (!(caps->dtypes & (1u << t->dtype)) || (unsigned)t->dtype >= ATTN_DTYPE_COUNT) {
            char allowed[64] = "";
            for (int d = 0; d < ATTN_DTYPE_COUNT; d++)
                if (caps->dtypes & (1u << d)) {
                    strncat(allowed, allowed[0] ? ", " : "", sizeof allowed - strlen(allowed) - 1);
                    strncat(allowed, attn_dtype_name((attn_dtype)d), sizeof allowed - strlen(allowed) - 1);
                }
            snprintf(msg, msg_len, "--dtype %s: step %s computes in %s", attn_dtype_name(t->dtype),
                     step_id, allowed[0] ? allowed : "no type");
            return ATTN_EXIT_BAD_INPUT;
        }
        if (t->dtype != pp->q.dtype) {
            snprintf(msg, msg_len, "step %s: %s is %s but Q is %s (one type for Q, K, V, O)", step_id,
                     names[i], attn_dtype_name(t->dtype), attn_dtype_name(pp->q.dtype));
            return ATTN_EXIT_BAD_INPUT;
        }
        const int heads = (i == 1 || i == 2) ? p->heads_kv : p->heads_q;
        const int seq = (i == 1 || i == 2) ? p->seqlen_k : p->seqlen_q;
        if (!strides_ok(t, p->head_dim)) {
            snprintf(msg, msg_len, "step %s: %s strides (%lld, %lld, %lld) overlap rows", step_id,
                     names[i], (long long)t->stride_b, (long long)t->stride_h, (long long)t->stride_s);
            return ATTN_EXIT_BAD_INPUT;
        }
        if (!(caps->features & ATTN_FEAT_STRIDES) && !is_bhsd(t, heads, seq, p->head_dim)) {
            snprintf(msg, msg_len, "--layout: step %s takes contiguous BHSD tensors only (%s is not)",
                     step_id, names[i]);
            return ATTN_EXIT_BAD_INPUT;
        }
    }
    const int d = p->head_dim;
    int dim_ok = d >= caps->min_head_dim && d <= caps->max_head_dim;
    if (dim_ok && caps->head_dims) {
        dim_ok = 0;
        for (const int *h = caps->head_dims; *h; h++)
            dim_ok |= *h == d;
    }
    if (!dim_ok) {
        if (caps->head_dims) {
            char list[64] = "";
            for (const int *h = caps->head_dims; *h; h++) {
                char one[16];
                snprintf(one, sizeof one, "%s%d", list[0] ? ", " : "", *h);
                strncat(list, one, sizeof list - strlen(list) - 1);
            }
            snprintf(msg, msg_len, "--dim %d: step %s supports head dims %s", d, step_id, list);
        } else {
            snprintf(msg, msg_len, "--dim %d: step %s supports head dims %d..%d", d, step_id,
                     caps->min_head_dim, caps->max_head_dim);
        }
        return ATTN_EXIT_BAD_INPUT;
    }
    /* the features: each refused by name where the step lacks it */
    struct {
        int used;
        unsigned feat;
        const char *what;
    } f[] = {
        {pp->window_left >= 0 || pp->window_right >= 0, ATTN_FEAT_WINDOW, "a sliding window"},
        {pp->alibi_slopes != NULL, ATTN_FEAT_ALIBI, "ALiBi"},
        {pp->softcap != 0.0f, ATTN_FEAT_SOFTCAP, "softcap"},
        {pp->dropout_p != 0.0f, ATTN_FEAT_DROPOUT, "dropout"},
        {pp->cu_seqlens_q != NULL || pp->cu_seqlens_k != NULL, ATTN_FEAT_VARLEN, "variable lengths"},
        {pp->cache_seqlens != NULL, ATTN_FEAT_KVCACHE, "a KV cache"},
        {pp->block_table != NULL, ATTN_FEAT_PAGED, "a paged KV cache"},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].used && !(caps->features & f[i].feat)) {
            snprintf(msg, msg_len, "step %s does not support %s", step_id, f[i].what);
            return ATTN_EXIT_BAD_INPUT;
        }
    if (!(pp->softcap >= 0.0f) || isinf(pp->softcap)) {
        snprintf(msg, msg_len, "--softcap %g: expected a finite value >= 0", (double)pp->softcap);
        return ATTN_EXIT_BAD_INPUT;
    }
    if (!(pp->dropout_p >= 0.0f && pp->dropout_p < 1.0f)) {
        snprintf(msg, msg_len, "--dropout %g: expected 0 <= p < 1", (double)pp->dropout_p);
        return ATTN_EXIT_BAD_INPUT;
    }
    if ((pp->block_table && (pp->page_size < 1 || pp->max_blocks < 1))) {
        snprintf(msg, msg_len, "step %s: a block table needs page_size >= 1 and max_blocks >= 1 (got %d, %d)",
                 step_id, pp->page_size, pp->max_blocks);
        return ATTN_EXIT_BAD_INPUT;
    }
    return 0;
}

/** Element offset of (b, h, s, 0) in @p layout for a [B, H, S, D] tensor. */
static size_t layout_offset(attn_layout layout, int H, int S, int D, int b, int h, int s)
{
    if (layout == ATTN_LAYOUT_BSHD)
        return (((size_t)b * S + s) * H + h) * D;
    return (((size_t)b * H + h) * S + s) * D;
}

int attn_to_typed(void *dst, attn_dtype t, attn_layout layout, const float *src, int B, int H,
                  int S, int D)
{
    if (t != ATTN_F32 && t != ATTN_F16 && t != ATTN_BF16)
        return attn_set_error(ATTN_EXIT_BAD_INPUT, "no host conversion to %s", attn_dtype_name(t));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int s = 0; s < S; s++) {
                const float *x = src + layout_offset(ATTN_LAYOUT_BHSD, H, S, D, b, h, s);
                const size_t o = layout_offset(layout, H, S, D, b, h, s);
                for (int d = 0; d < D; d++) {
                    if (t == ATTN_F32)
                        ((float *)dst)[o + d] = x[d];
                    else if (t == ATTN_F16)
                        ((uint16_t *)dst)[o + d] = attn_float_to_half(x[d]);
                    else
                        ((uint16_t *)dst)[o + d] = attn_float_to_bf16(x[d]);
                }
            }
    return 0;
}

int attn_from_typed(float *dst, const void *src, attn_dtype t, attn_layout layout, int B, int H,
                    int S, int D)
{
    if (t != ATTN_F32 && t != ATTN_F16 && t != ATTN_BF16)
        return attn_set_error(ATTN_EXIT_BAD_INPUT, "no host conversion from %s", attn_dtype_name(t));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int s = 0; s < S; s++) {
                float *x = dst + layout_offset(ATTN_LAYOUT_BHSD, H, S, D, b, h, s);
                const size_t o = layout_offset(layout, H, S, D, b, h, s);
                for (int d = 0; d < D; d++) {
                    if (t == ATTN_F32)
                        x[d] = ((const float *)src)[o + d];
                    else if (t == ATTN_F16)
                        x[d] = attn_half_to_float(((const uint16_t *)src)[o + d]);
                    else
                        x[d] = attn_bf16_to_float(((const uint16_t *)src)[o + d]);
                }
            }
    return 0;
}
