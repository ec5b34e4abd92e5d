/**
 * @file attn.h
 * @brief The one problem, the one signature: what every step shares.
 *
 * Everything a user of the library needs is declared here: the problem
 * description (attn_problem), its validation and sizes, and the entry point
 * of every step (`attnNN_forward`, and `attn01_backward`).
 *
 * Layout everywhere: contiguous [batch, heads, seq, head_dim] (BHSD),
 * row-major, fp32. Q and O have heads_q heads, K and V heads_kv heads;
 * query head h reads K/V head h / (heads_q / heads_kv).
 *
 * CPU steps take host pointers. GPU steps take device pointers, a device
 * workspace of attnNN_workspace_bytes() bytes (NULL when that is 0) and a
 * CUDA stream (NULL: the default stream); they launch asynchronously.
 *
 * Every entry point returns 0 on success, ATTN_EXIT_BAD_INPUT (2) when the
 * problem is invalid for that step, or ATTN_EXIT_RESOURCE (3) when memory
 * runs out or a CUDA call fails. Entry points never print: on failure they
 * leave a one-line message that attn_last_error() returns.
 */
#ifndef ATTN_H
#define ATTN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Exit codes of every step program (notes/design.md). */
enum {
    ATTN_EXIT_PASS = 0,      /**< ran, and the check (if any) passed */
    ATTN_EXIT_FAIL = 1,      /**< ran, and the check failed */
    ATTN_EXIT_BAD_INPUT = 2, /**< invalid flag, shape or file: nothing written */
    ATTN_EXIT_RESOURCE = 3   /**< out of memory or no CUDA device */
};

/**
 * The message of the last failed library call on this thread: one line,
 * no newline, "" when none has failed. Valid until the thread's next
 * failing call.
 */
const char *attn_last_error(void);

/** Largest head dimension any step accepts (CPU steps: 1..256). */
#define ATTN_MAX_HEAD_DIM 256

/** One attention problem: shapes, mask and scale. */
typedef struct {
    int batch;           /**< B */
    int heads_q;         /**< Hq: heads of Q and O */
    int heads_kv;        /**< Hkv: heads of K and V; divides heads_q */
    int seqlen_q;        /**< Sq: query rows */
    int seqlen_k;        /**< Sk: key/value rows */
    int head_dim;        /**< D */
    int causal;          /**< mask aligned bottom-right when seqlen_q != seqlen_k */
    float softmax_scale; /**< 0 means 1/sqrt(head_dim) */
} attn_problem;

/* ---- the descriptor of every step from 08 on ---------------------------- */

/** Element types of tensors. fp32 accumulation and softmax everywhere. */
typedef enum {
    ATTN_F32 = 0,     /**< IEEE binary32 */
    ATTN_F16 = 1,     /**< IEEE binary16 (tensor cores from sm_75) */
    ATTN_BF16 = 2,    /**< bfloat16 (tensor cores from sm_80) */
    ATTN_F8_E4M3 = 3, /**< fp8 e4m3 with a per-tensor descale (Hopper steps) */
    ATTN_DTYPE_COUNT  /**< number of element types */
} attn_dtype;

/** Bytes of one element of @p t (0 for an unknown type). */
size_t attn_dtype_size(attn_dtype t);
/** "fp32", "fp16", "bf16", "fp8e4m3" (the `--dtype` and `result:` names); "?" if unknown. */
const char *attn_dtype_name(attn_dtype t);
/** The type named @p name (as attn_dtype_name() writes it); -1 if none. */
int attn_dtype_parse(const char *name);

/**
 * One tensor in memory: where, of which element type, and how to walk it.
 * Strides are in elements; the head dim is always contiguous (stride 1).
 * BHSD ([batch, heads, seq, dim], contiguous) has stride_s = D,
 * stride_h = S·D, stride_b = H·S·D; BSHD ([batch, seq, heads, dim],
 * FlashAttention's and PyTorch's layout) has stride_h = D, stride_s = H·D,
 * stride_b = S·H·D: the same call serves both without a copy.
 */
typedef struct {
    void *data;             /**< host or device memory, as the step says */
    attn_dtype dtype;       /**< element type */
    int64_t stride_b;       /**< elements between batches */
    int64_t stride_h;       /**< elements between heads */
    int64_t stride_s;       /**< elements between rows of the sequence */
    const float *descale;   /**< ATTN_F8_E4M3: the factor that turns stored
                                 values back into real ones (one per tensor);
                                 NULL otherwise */
} attn_tensor;

/** Tensor layouts the step programs offer (`--layout`). */
typedef enum {
    ATTN_LAYOUT_BHSD = 0, /**< [batch, heads, seq, dim] */
    ATTN_LAYOUT_BSHD = 1  /**< [batch, seq, heads, dim] */
} attn_layout;

/** Features a step may support beyond the plain problem (attn_params). */
enum {
    ATTN_FEAT_STRIDES = 1u << 0,  /**< any strides (BSHD) rather than contiguous BHSD */
    ATTN_FEAT_WINDOW = 1u << 1,   /**< sliding window (window_left / window_right) */
    ATTN_FEAT_ALIBI = 1u << 2,    /**< ALiBi slopes */
    ATTN_FEAT_SOFTCAP = 1u << 3,  /**< logit soft-capping */
    ATTN_FEAT_DROPOUT = 1u << 4,  /**< attention dropout (Philox, mask never stored) */
    ATTN_FEAT_VARLEN = 1u << 5,   /**< packed variable-length batches (cu_seqlens) */
    ATTN_FEAT_KVCACHE = 1u << 6,  /**< a KV cache with per-sequence lengths */
    ATTN_FEAT_PAGED = 1u << 7     /**< a paged KV cache (block table) */
};

/** The version of attn_params this header describes; a caller checks it. */
#define ATTN_PARAMS_VERSION 1

/**
 * Everything one attention call needs, for every step from 08 on: the
 * problem, the tensors with their types and strides, and the features the
 * later steps add (masks, dropout, variable lengths, the KV cache). Fields a
 * step does not support must hold their neutral value (attn_params_init()
 * sets them); attn_params_check() refuses the rest, naming the step's limits.
 * Outside callers (the Python bridge) check struct_size and version.
 */
typedef struct {
    uint32_t struct_size;     /**< sizeof(attn_params), set by attn_params_init() */
    uint32_t version;         /**< ATTN_PARAMS_VERSION */
    attn_problem prob;        /**< shapes, causal, softmax scale */
    attn_tensor q;            /**< [B, Hq, Sq, D] (by its strides) */
    attn_tensor k;            /**< [B, Hkv, Sk, D] */
    attn_tensor v;            /**< [B, Hkv, Sk, D] */
    attn_tensor o;            /**< [B, Hq, Sq, D], written */
    float *lse;               /**< [B, Hq, Sq] fp32, contiguous, written; may be NULL
                                   where the step says so */
    /* masks (steps 10 on) */
    int window_left;          /**< keys j ≥ i' − window_left are seen (i' = i + Sk − Sq); −1: no limit */
    int window_right;         /**< keys j ≤ i' + window_right; −1: no limit (causal: 0) */
    const float *alibi_slopes;/**< [Hq] (or [B, Hq] with alibi_batch_stride); NULL: none */
    int64_t alibi_batch_stride; /**< 0: the same slopes for every batch */
    float softcap;            /**< scores become softcap·tanh(s / softcap); 0: none */
    /* dropout (step 11 on) */
    float dropout_p;          /**< probability of dropping; 0: none */
    uint64_t dropout_seed;    /**< Philox key */
    uint64_t dropout_offset;  /**< Philox counter offset (a fresh one per call) */
    /* variable lengths (packed batches) */
    const int32_t *cu_seqlens_q; /**< [B + 1] row offsets of each sequence; NULL: fixed lengths */
    const int32_t *cu_seqlens_k; /**< [B + 1] likewise for K/V */
    /* KV cache (step 12) */
    const int32_t *cache_seqlens; /**< [B] valid keys per sequence; NULL: Sk for all */
    const int32_t *block_table;   /**< [B, max_blocks] page indices; NULL: contiguous cache */
    int max_blocks;               /**< columns of block_table */
    int page_size;                /**< rows per page of a paged cache */
} attn_params;

/**
 * A problem's attn_params with every feature off: contiguous BHSD tensors of
 * type @p dtype at @p q, @p k, @p v, @p o (strides from the shape), @p lse,
 * windows −1, no ALiBi, softcap 0, no dropout, fixed lengths, no cache.
 */
void attn_params_init(attn_params *pp, const attn_problem *p, attn_dtype dtype, const void *q,
                      const void *k, const void *v, void *o, float *lse);

/** Strides of a contiguous tensor of @p heads heads and @p seq rows in @p layout. */
void attn_tensor_strides(attn_tensor *t, attn_layout layout, int heads, int seq, int dim);

/**
 * What a step can do: checked by attn_params_check() before anything runs.
 * A step's descriptor holds one; the driver, the suites, the tour and the
 * bench read it.
 */
typedef struct {
    uint32_t dtypes;      /**< bit (1 << attn_dtype) for each type it takes */
    uint32_t features;    /**< ATTN_FEAT_* it supports */
    int min_head_dim;     /**< smallest D */
    int max_head_dim;     /**< largest D */
    const int *head_dims; /**< exact set of D, 0-terminated; NULL: every D in range */
} attn_caps;

/**
 * Check @p pp against the problem rules (attn_problem_validate()) and a
 * step's @p caps: 0, or ATTN_EXIT_BAD_INPUT with a one-line message naming
 * step @p step_id, the value refused and what the step allows.
 */
int attn_params_check(const attn_params *pp, const attn_caps *caps, const char *step_id,
                      char *msg, size_t msg_len);

/**
 * Check a problem for validity. Returns 0, or ATTN_EXIT_BAD_INPUT with a
 * one-line message (naming the flag and the allowed range) in @p msg.
 * Refuses sizes whose element counts overflow 32-bit indexing.
 */
int attn_problem_validate(const attn_problem *p, char *msg, size_t msg_len);

/** The softmax scale in use: p->softmax_scale, or 1/sqrt(D) when that is 0. */
float attn_scale(const attn_problem *p);

/** Elements of Q and O: B·Hq·Sq·D. */
size_t attn_q_elems(const attn_problem *p);
/** Elements of K and of V: B·Hkv·Sk·D. */
size_t attn_kv_elems(const attn_problem *p);
/** Elements of LSE: B·Hq·Sq. */
size_t attn_lse_elems(const attn_problem *p);

/** The K/V head that query head @p hq reads (MQA/GQA). */
int attn_kv_head(const attn_problem *p, int hq);

/**
 * Number of keys query row @p i sees: keys 0 .. n-1. Without causal masking
 * this is seqlen_k; with it (bottom-right) it is clamp(i + Sk - Sq + 1, 0, Sk).
 * A row with 0 keys gets O = 0 and LSE = -inf.
 */
int attn_keys_visible(const attn_problem *p, int i);

/** Forward FLOPs, FlashAttention convention: 4·B·Hq·Sq·Sk·D, halved when causal. */
double attn_flops_forward(const attn_problem *p);

/* ---- CPU steps: host pointers ------------------------------------------ */

/** Step 01: standard attention, S and P materialized (O(N²) memory). */
int attn01_forward(const attn_problem *p, const float *q, const float *k,
                   const float *v, float *o, float *lse);
/**
 * Step 01's standard backward: P, dP and dS materialized. @p dout is dL/dO
 * ([B, Hq, Sq, D]); writes dq ([B, Hq, Sq, D]), dk and dv ([B, Hkv, Sk, D]).
 */
int attn01_backward(const attn_problem *p, const float *q, const float *k,
                    const float *v, const float *dout, float *dq, float *dk,
                    float *dv);
/** Step 02: one streaming pass per row with online softmax; no N×N buffer. */
int attn02_forward(const attn_problem *p, const float *q, const float *k,
                   const float *v, float *o, float *lse);
/** Step 03: tiled FlashAttention (Algorithm 1) on the CPU. */
int attn03_forward(const attn_problem *p, const float *q, const float *k,
                   const float *v, float *o, float *lse);

/* ---- GPU steps: device pointers ---------------------------------------- */

struct CUstream_st; /* = cudaStream_t, without pulling CUDA headers into C */

/** Device workspace step 04 needs: S and P, 2·B·Hq·Sq·Sk floats. */
size_t attn04_workspace_bytes(const attn_problem *p);
/** Step 04: cuBLAS GEMM, softmax kernel, GEMM; S and P in @p workspace. */
int attn04_forward(const attn_problem *p, const float *q, const float *k,
                   const float *v, float *o, float *lse, void *workspace,
                   struct CUstream_st *stream);

/** Device workspace step 05 needs: m and l, 2·B·Hq·Sq floats. */
size_t attn05_workspace_bytes(const attn_problem *p);
/** Step 05: FlashAttention-1 kernel, K/V tiles in shared memory. */
int attn05_forward(const attn_problem *p, const float *q, const float *k,
                   const float *v, float *o, float *lse, void *workspace,
                   struct CUstream_st *stream);

/** Device workspace step 06 needs: none (0). */
size_t attn06_workspace_bytes(const attn_problem *p);
/** Step 06: FlashAttention-2 kernel, warps own rows, O in registers. */
int attn06_forward(const attn_problem *p, const float *q, const float *k,
                   const float *v, float *o, float *lse, void *workspace,
                   struct CUstream_st *stream);

/** Step 04 on attn_params: --dtype fp32 | fp16 | bf16 (16-bit operands, fp32
 *  compute, S and P stored in the type); contiguous BHSD device tensors. */
int attn04_forward_params(const attn_params *pp, void *workspace, struct CUstream_st *stream);

/* ---- steps 08 on: attn_params ------------------------------------------- */

/** Device workspace step 08 needs: none (0). */
size_t attn08_workspace_bytes(const attn_problem *p);
/** Step 08: the FlashAttention-2 forward on tensor cores (mma.sync), fp16 or
 *  bf16 device tensors by their strides, LSE fp32; head dims 32, 64, 128. */
int attn08_forward(const attn_params *pp, void *workspace, struct CUstream_st *stream);
/** Device workspace step 09 needs: none (0). */
size_t attn09_workspace_bytes(const attn_problem *p);
/** Step 09: step 08 with operands loaded by ldmatrix from swizzled shared
 *  tiles; the same tensors, types and head dims. */
int attn09_forward(const attn_params *pp, void *workspace, struct CUstream_st *stream);
/** Device workspace step 10 needs: none (0). */
size_t attn10_workspace_bytes(const attn_problem *p);
/** Step 10: step 09 with its K/V copies in a cp.async pipeline, the full
 *  FlashAttention-2 forward; the same tensors and types, head dims 32, 64,
 *  96, 128, 256. */
int attn10_forward(const attn_params *pp, void *workspace, struct CUstream_st *stream);

/* ---- step 07: backward with recomputation ------------------------------ */

/**
 * Step 07 on the CPU: the FlashAttention-2 backward, tiled like step 03,
 * P rebuilt from Q, K and the forward's @p lse (host pointers).
 * q, o, dout, dq: [B, Hq, Sq, D]; k, v, dk, dv: [B, Hkv, Sk, D];
 * lse: [B, Hq, Sq]. K/V heads shared by several query heads (GQA/MQA) sum
 * their gradients; rows that see no key get zero gradient rows.
 */
int attn07_backward_cpu(const attn_problem *p, const float *q, const float *k,
                        const float *v, const float *o, const float *lse,
                        const float *dout, float *dq, float *dk, float *dv);

/** Device workspace step 07 needs: δ, B·Hq·Sq floats (O(N), no N×N buffer). */
size_t attn07_workspace_bytes(const attn_problem *p);
/**
 * Step 07: the FlashAttention-2 backward kernel on the GPU (fp32, CUDA
 * cores); device pointers, shapes as attn07_backward_cpu(). @p o and
 * @p lse are the forward's (step 06). Grid over (K/V block, batch·Hkv).
 * @p deterministic = 0: dQ accumulated with atomicAdd (fast, not bitwise
 * reproducible: float addition order varies between runs); 1: dQ in a
 * second kernel over (Q block, batch·Hq), no atomics, bitwise reproducible.
 * dK and dV never use atomics. Head dims 1..128.
 */
int attn07_backward(const attn_problem *p, const float *q, const float *k,
                    const float *v, const float *o, const float *lse,
                    const float *dout, float *dq, float *dk, float *dv,
                    int deterministic, void *workspace, struct CUstream_st *stream);

/** Device workspace of the stored-P backward: P and dP/dS, 2·B·Hq·Sq·Sk floats. */
size_t attn07_standard_workspace_bytes(const attn_problem *p);
/**
 * Step 07's baseline: the standard backward on the GPU with cuBLAS, P and
 * dP (then dS, in place) materialized in @p workspace. P is rebuilt from S
 * with a softmax (as the standard forward, step 04, would have stored it);
 * @p o, @p lse and @p deterministic are unused (same signature as
 * attn07_backward, so the two are interchangeable). Head dims 1..256.
 */
int attn07_standard_backward(const attn_problem *p, const float *q, const float *k,
                             const float *v, const float *o, const float *lse,
                             const float *dout, float *dq, float *dk, float *dv,
                             int deterministic, void *workspace,
                             struct CUstream_st *stream);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_H */
