/**
 * @file common.h
 * @brief The plumbing every step program and test suite shares.
 *
 * Host memory with byte accounting, the seeded input generator, .npy I/O,
 * the float64 oracle, error metrics and the correctness rule, the
 * command-line parser, timers, and the step-program driver. None of this is
 * an idea of FlashAttention; it lives here so that `make diff` between two
 * steps shows only the idea.
 */
#ifndef ATTN_COMMON_H
#define ATTN_COMMON_H

#include "attn.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the library's last error (error.c) ------------------------------- */

/**
 * Record a failure: format the one-line message attn_last_error() returns
 * (printf-style, no newline) and return @p code, so that a failing entry
 * point reads `return attn_set_error(ATTN_EXIT_RESOURCE, "...", ...);`.
 */
int attn_set_error(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/** Write "error: MSG" and a newline to @p f, as one line: control
 *  characters in @p msg (from a flag value, a file name) as \\xNN. */
void attn_print_error(FILE *f, const char *msg);
/** Rewrite the control characters of @p msg (of @p len bytes) as \\xNN, in
 *  place (truncated to fit): a message stays one line. */
void attn_escape_controls(char *msg, size_t len);
/** Forget the last error (attn_last_error() returns "" again). */
void attn_clear_error(void);
/**
 * The check every CPU entry point makes first: the problem valid
 * (attn_problem_validate()) and none of its @p n_ptrs tensor arguments
 * @p ptrs NULL. 0, or ATTN_EXIT_BAD_INPUT with the last error set.
 */
int attn_entry_check(const attn_problem *p, const void *const *ptrs, int n_ptrs);

/* ---- host memory with byte accounting (mem.c) ------------------------- */

/**
 * Allocate @p bytes of host memory, counted toward the current and peak
 * totals that `extra_bytes` reports. Returns NULL on failure (and adds the
 * failed request to attn_mem_failed_bytes()). Free with attn_free().
 */
void *attn_alloc(size_t bytes);
/** attn_alloc(), zero-filled. */
void *attn_calloc(size_t count, size_t size);
/** Free memory from attn_alloc() / attn_calloc(); NULL is ignored. */
void attn_free(void *ptr);
/**
 * Bytes attn_alloc() may still hand out: the room under RLIMIT_AS and
 * RLIMIT_DATA, and the memory available (MemAvailable) when the budget was
 * last taken, or ATTN_MEM_LIMIT bytes from the environment in place of the
 * latter (0: no such limit). A request over it fails at once, so a problem
 * larger than memory is exit 3 with the bytes, never a kill by the OOM
 * killer minutes later.
 */
size_t attn_mem_available(void);
/** attn_mem_available() when the first request counted by
 *  attn_mem_failed_bytes() was refused: the "M available" of an exit-3
 *  message. */
size_t attn_mem_available_at_failure(void);
/**
 * Reset the peak to the current total (call before the region to measure),
 * and the failed bytes to 0; take the memory budget again.
 */
void attn_mem_reset_peak(void);
/** Peak tracked bytes since the last reset, minus the total at that reset. */
size_t attn_mem_peak(void);
/**
 * Bytes of the requests attn_alloc() could not satisfy since the last
 * attn_mem_reset_peak() or attn_mem_fail_after() (0 if none): what the
 * region needed on top of what it got ("needed N bytes" in exit-3 messages).
 */
size_t attn_mem_failed_bytes(void);
/**
 * Fault injection for the tests: the next @p n allocations succeed, then
 * every one fails until attn_mem_fail_after(-1) turns injection off.
 * Arming it (@p n >= 0) also resets attn_mem_failed_bytes() to 0.
 */
void attn_mem_fail_after(long n);

/* ---- seeded inputs (rng.c) --------------------------------------------- */

/** Which tensor a stream of random numbers fills; each has its own stream. */
enum { ATTN_STREAM_Q = 0, ATTN_STREAM_K = 1, ATTN_STREAM_V = 2, ATTN_STREAM_DO = 3 };

/**
 * Fill @p x[0..n) with standard-normal floats. Element i depends only on
 * (seed, stream, i): every step, CPU or GPU, sees bit-identical inputs.
 */
void attn_fill_normal(float *x, size_t n, uint64_t seed, int stream);

/* ---- .npy files (npy.c) ------------------------------------------------ */

/** A rank-1..4 float32 array read from or written to a .npy file. */
typedef struct {
    int rank;          /**< 1..4 */
    int64_t shape[4];  /**< C order */
    float *data;       /**< attn_alloc()'d, float32 (float16 files converted) */
    int was_fp16;      /**< 1 when the file held float16 */
} attn_array;

/**
 * Read a .npy file (versions 1.0 and 2.0; '<f4' or '<f2'; C order).
 * Returns 0, or ATTN_EXIT_BAD_INPUT with a one-line message naming the file
 * and the problem (wrong dtype, Fortran order, big-endian, truncated…), or
 * ATTN_EXIT_RESOURCE when the data cannot be allocated.
 */
int attn_npy_read(const char *path, attn_array *out, char *msg, size_t msg_len);
/**
 * attn_npy_read() without the data: the header, the shape, the type and the
 * file's size checked (a FIFO or a directory refused at once, a file whose
 * size does not match its header refused before anything is read), rank
 * and shape in @p out, out->data NULL. The step programs peek at all their
 * inputs before they read one.
 */
int attn_npy_peek(const char *path, attn_array *out, char *msg, size_t msg_len);
/** Parse a .npy image held in memory (what attn_npy_read() does after reading). */
int attn_npy_parse(const unsigned char *buf, size_t len, const char *name,
                   attn_array *out, char *msg, size_t msg_len);
/**
 * Write a float32 array as .npy version 1.0 (float16 when @p as_fp16).
 * Writes to a temporary name beside @p path and renames, so a failure
 * leaves no partial file. Returns 0 or ATTN_EXIT_BAD_INPUT with a message.
 */
int attn_npy_write(const char *path, const float *data, int rank,
                   const int64_t *shape, int as_fp16, char *msg, size_t msg_len);
/** Write the .npy image of @p data to the open stream @p fp (@p path only
 *  names it in messages). 0, 2, or 3 when the disk is full. */
int attn_npy_write_stream(FILE *fp, const char *path, const float *data, int rank,
                          const int64_t *shape, int as_fp16, char *msg, size_t msg_len);
/** Free an array's data. */
void attn_array_free(attn_array *a);

/** IEEE half <-> float conversions (round to nearest even). */
float attn_half_to_float(uint16_t h);
/** @copydoc attn_half_to_float */
uint16_t attn_float_to_half(float f);

/* ---- the float64 oracle (oracle.c) ------------------------------------- */

/**
 * Float64 attention for the listed rows. @p rows holds indices into the
 * B·Hq·Sq query rows (row r = (b·Hq + h)·Sq + i); NULL with @p n_rows =
 * B·Hq·Sq means every row. Writes o_ref[n_rows·D] and lse_ref[n_rows].
 * NaN in an input propagates exactly to the rows that read it; a row that
 * sees no key gets O = 0 and LSE = -inf.
 */
void attn_oracle_forward(const attn_problem *p, const float *q, const float *k,
                         const float *v, const int64_t *rows, size_t n_rows,
                         double *o_ref, double *lse_ref);
/**
 * Float64 backward: dq ([B,Hq,Sq,D]), dk and dv ([B,Hkv,Sk,D]) from the
 * upstream gradient @p dout. K/V heads shared by several query heads sum
 * their gradients.
 */
void attn_oracle_backward(const attn_problem *p, const float *q, const float *k,
                          const float *v, const float *dout, double *dq,
                          double *dk, double *dv);
/**
 * The float64 backward that a recomputing backward (step 07) computes from
 * the forward outputs it is handed: P_ij = exp(S_ij − lse_i) with the given
 * @p lse ([B, Hq, Sq]) instead of the exact softmax, and δ_i = rowsum(dO_i ∘
 * o_i) with the given @p o ([B, Hq, Sq, D]) instead of the exact
 * rowsum(P ∘ dP); either may be NULL (exact). With both NULL it is
 * attn_oracle_backward(). Why it exists: the forward's O and LSE are fp32
 * numbers, and their rounding passes into the gradients — P inherits the
 * LSE's absolute error as a relative error (its last bit is 2^-10 at
 * |LSE| ≈ 1e4), and every dS inherits δ's. This reference separates what
 * the backward inherits from what its own arithmetic adds.
 */
void attn_oracle_backward_given(const attn_problem *p, const float *q, const float *k,
                                const float *v, const float *dout, const float *o,
                                const float *lse, double *dq, double *dk, double *dv);

/**
 * What a recomputing backward's δ costs in precision, per gradient entry:
 *   bq[i][d] = |scale| · Σ_j P_ij (A_ij + a_i) |K_jd|,
 *   bk[j][d] = |scale| · Σ_i P_ij (A_ij + a_i) |Q_id|,
 * with P_ij = exp(S_ij − lse_i), A_ij = Σ_d |dO_id V_jd| and a_i =
 * Σ_d |dO_id O_id| (float64; @p o and @p lse the forward's); Σ_i in bk runs
 * over the rows of every query head that shares the K/V head (GQA/MQA). A
 * dot product of length D computed in fp32 is off by at most about
 * D · 2^-24 times the sum of its terms' magnitudes, so D · 2^-24 · bq
 * bounds, to first order, what the roundings of dP_ij = dO_i·V_j and
 * δ_i = dO_i·O_i add to dQ; likewise bk for dK. It bounds all of that
 * rounding, which is more than the part a recomputing backward has and
 * step 01 does not (step 01's δ = rowsum(P ∘ dP) comes from the same rounded
 * dP and cancels its P-weighted mean in Σ_j dS_ij; δ from O cannot): a
 * loose allowance, not an estimate. Masked pairs and rows that see no key
 * add nothing.
 */
void attn_oracle_delta_bound(const attn_problem *p, const float *q, const float *k,
                             const float *v, const float *dout, const float *o,
                             const float *lse, double *bq, double *bk);

/**
 * Where query row @p r (r = (b·Hq + h)·Sq + i) lives: its head @p h_out and
 * position @p i_out, the offset of its D values in Q and O, and the offset
 * of the K/V head it reads (GQA/MQA) in K and V. The oracle and the
 * baselines walk rows with it.
 */
void attn_row_offsets(const attn_problem *p, int64_t r, int *h_out, int *i_out,
                      size_t *q_off, size_t *kv_off);

/**
 * The fp32 naive baseline the correctness rule scales with: the same rows
 * as attn_oracle_forward(), computed like step 01 (fp32 scores, fp32 sums).
 */
void attn_naive_fp32_rows(const attn_problem *p, const float *q, const float *k,
                          const float *v, const int64_t *rows, size_t n_rows,
                          float *o_rows, float *lse_rows);

/* ---- reduced precision (precision.c) ---------------------------------- */

/**
 * float -> bfloat16 bits, round to nearest even. NaN stays a (quiet) NaN of
 * the same sign, ±inf stays ±inf, finite values past the largest bf16 round
 * to ±inf, float subnormals round to bf16 subnormals (or 0, or the smallest
 * normal).
 */
uint16_t attn_float_to_bf16(float f);
/** bfloat16 bits -> float (exact: the bits become the float's top half). */
float attn_bf16_to_float(uint16_t b);

/**
 * @p x rounded to element type @p t and back to float: ATTN_F32 returns
 * @p x; ATTN_F16 and ATTN_BF16 round to nearest even (overflow to ±inf,
 * NaN stays NaN); ATTN_F8_E4M3 rounds to nearest even e4m3 (e4m3fn: max
 * 448, subnormals down to 2^-9) and saturates: |x| > 448 and ±inf give
 * ±448, as FlashAttention-3's fp8 conversion does; NaN stays NaN. No
 * descale is applied. An unknown type gives NaN.
 */
float attn_round_to(float x, attn_dtype t);
/** attn_round_to() on @p x[0..n) in place. */
void attn_round_array(float *x, size_t n, attn_dtype t);

/**
 * The naive baseline the correctness rule of the reduced-precision steps
 * (08 on) scales with: the listed rows (the convention of
 * attn_naive_fp32_rows(): indices into the B·Hq·Sq query rows, NULL with
 * @p n_rows = B·Hq·Sq for all; causal bottom-right; GQA) computed as a
 * tensor-core kernel at precision @p t would. @p q, @p k, @p v are used as
 * given: round them to @p t first (attn_round_array()). S = QKᵀ summed in
 * fp32 (products of @p t values are exact in fp32), scaled, softmax in fp32;
 * P = exp(S − m) rounded to @p t before the PV product; O = Σ_j P_ij V_j in
 * fp32, divided by the fp32 row sum of the unrounded P, rounded to @p t.
 * LSE = m + ln l in fp32 (the same as at fp32). A row that sees no key gets
 * O = 0, LSE = -inf; NaN propagates as in attn_naive_fp32_rows(). With
 * @p t = ATTN_F32 the result equals attn_naive_fp32_rows() bit for bit.
 * Writes o_rows[n_rows·D] and lse_rows[n_rows] (all NaN if its one scratch
 * row of Sk floats cannot be allocated).
 */
void attn_naive_rows_at(const attn_problem *p, attn_dtype t, const float *q, const float *k,
                        const float *v, const int64_t *rows, size_t n_rows, float *o_rows,
                        float *lse_rows);

/** Summation orders of the naive baseline (attn_naive_rows_order()). */
typedef enum {
    ATTN_ORDER_FORWARD = 0, /**< d = 0..D−1 in each q·k, keys 0..n−1 in ℓ and O: step 01's */
    ATTN_ORDER_REVERSE,     /**< both backwards */
    ATTN_ORDER_BLOCKED,     /**< q·k as four interleaved partial sums (a float4 loop); keys
                                 in blocks of 32, the last block first */
    ATTN_ORDER_COUNT
} attn_order;

/**
 * attn_naive_rows_at() with the sums taken in order @p order: the same
 * formula, the same types, another rounding. ATTN_ORDER_FORWARD is
 * attn_naive_rows_at() itself. The spread of these errors against the
 * oracle is what a correct kernel's summation order may cost: the
 * correctness rule takes the largest (attn_forward_rule()).
 */
void attn_naive_rows_order(const attn_problem *p, attn_dtype t, attn_order order, const float *q,
                           const float *k, const float *v, const int64_t *rows, size_t n_rows,
                           float *o_rows, float *lse_rows);

/* ---- error metrics and the correctness rule (compare.c) --------------- */

/** Errors of a float32 result against a float64 reference. */
typedef struct {
    double max_abs;     /**< max |x - ref| over elements where both are finite */
    double rel_l2;      /**< ||x - ref||₂ / ||ref||₂ over the same elements */
    size_t nan_count;   /**< NaN in x where ref is not NaN */
    size_t nan_missing; /**< ref NaN where x is not NaN */
    size_t inf_mismatch;/**< an infinity in one that the other does not share */
    size_t n;           /**< elements compared */
    size_t worst_at;    /**< index of the max_abs element (SIZE_MAX: none) */
    size_t first_bad;   /**< index of the first NaN or inf mismatch (SIZE_MAX: none) */
} attn_err;

/** Compare @p x with @p ref element by element (NaN- and ±inf-aware). */
attn_err attn_compare(const float *x, const double *ref, size_t n);
/** Compare two float32 results (a step against the prior step). */
attn_err attn_compare_f32(const float *x, const float *ref, size_t n);
/**
 * Where element @p idx of a tensor of @p p lies, in words a student can
 * look up: "batch b, head h, row i, column d". @p kv: a K/V-shaped tensor
 * ([B, Hkv, Sk, D]); else Q/O-shaped ([B, Hq, Sq, D]). @p cols: D, or 1
 * for LSE ([B, Hq, Sq]; no column then). Returns @p buf.
 */
const char *attn_where(const attn_problem *p, int kv, int cols, size_t idx, char *buf, size_t n);
/** Max over elements of |lse - ref| / (1 + |ref|); -inf == -inf is 0. */
double attn_lse_err(const float *lse, const double *ref, size_t n);

/**
 * the correctness rule (notes/design.md): @p e passes when NaN-ness matches, infinities match,
 * and e.max_abs <= factor · @p baseline_max_abs + @p atol.
 * (fp32 forward: factor 2, atol 1e-6; gradients: factor 3.)
 */
int attn_rule_ok(const attn_err *e, double baseline_max_abs, double factor,
                 double atol);
/** LSE tolerance of fp32 steps. */
#define ATTN_LSE_TOL 1e-5

/**
 * The forward correctness rule (notes/design.md, "The correctness rule"),
 * one for the step programs (driver.c) and the suites (conformance.c):
 * what attn_forward_rule() measured and allows.
 */
typedef struct {
    double baseline;     /**< max over the attn_order orders of the naive rows' max_abs_err */
    double baseline_fwd; /**< that of ATTN_ORDER_FORWARD alone (step 01's order) */
    double atol;         /**< 1e-6 (16-bit: 1e-4) × max(1, max |O_ref|) */
    double allowed;      /**< 2 × baseline + atol: max_abs_err(O) must not exceed it */
    double lse_baseline; /**< max over the orders of the naive rows' LSE error */
    double lse_tol;      /**< max(1e-5 (16-bit: 1e-3), 2 × lse_baseline) */
} attn_fwd_rule;

/**
 * Measure the rule on the listed rows (attn_naive_fp32_rows()'s
 * convention) of a problem at type @p t: the naive baseline in every
 * summation order (attn_naive_rows_order()) against the oracle's
 * @p o_ref, @p lse_ref (n_rows·D and n_rows), into @p r. Returns 0, or
 * ATTN_EXIT_RESOURCE when the scratch rows cannot be allocated.
 */
int attn_forward_rule(const attn_problem *p, attn_dtype t, const float *q, const float *k,
                      const float *v, const int64_t *rows, size_t n_rows, const double *o_ref,
                      const double *lse_ref, attn_fwd_rule *r);

/** Does a result with O error @p e and LSE error @p lse_err pass rule @p r? */
int attn_forward_ok(const attn_fwd_rule *r, const attn_err *e, double lse_err);

/** Gather rows of a [B·Hq·Sq, D] array: dst[r·D..] = src[rows[r]·D..]. */
void attn_gather_rows(const float *src, int d, const int64_t *rows,
                      size_t n_rows, float *dst);

/* ---- timing (timer.c) -------------------------------------------------- */

/** Monotonic wall clock in milliseconds. */
double attn_now_ms(void);
/** Median of @p n values (sorts @p v in place). */
double attn_median(double *v, int n);

/* ---- command line (cli.c) ---------------------------------------------- */

/** Everything a step program's flags say. */
typedef struct {
    attn_problem prob;     /**< shape, mask, scale */
    uint64_t seed;         /**< --seed */
    const char *q_path;    /**< --q */
    const char *k_path;    /**< --k */
    const char *v_path;    /**< --v */
    const char *do_path;   /**< --do */
    const char *out_path;  /**< --out */
    const char *lse_path;  /**< --lse */
    const char *prev_path; /**< --prev */
    const char *dq_path;   /**< --dq */
    const char *dk_path;   /**< --dk */
    const char *dv_path;   /**< --dv */
    const char *dtype;     /**< --dtype: "fp32", "fp16", "bf16"; NULL: the step's first type */
    attn_layout layout;    /**< --layout: BHSD (default) or BSHD */
    int deterministic;     /**< --deterministic */
    int deterministic_given; /**< --deterministic given at all (=0 too) */
    int check;             /**< --check (1, default) / --no-check (0) */
    int bench;             /**< --bench */
    int warmup;            /**< --warmup W */
    int iters;             /**< --iters I */
    int shape_given[8];    /**< which shape flags were given (for --q agreement) */
} attn_opts;

/** Indices into attn_opts.shape_given. */
enum { ATTN_SG_BATCH, ATTN_SG_HEADS, ATTN_SG_KV_HEADS, ATTN_SG_SEQ,
       ATTN_SG_SEQ_K, ATTN_SG_DIM, ATTN_SG_COUNT };

/**
 * Parse the shared flags. Returns 0, 1 for --help (usage already printed to
 * @p help_out), or ATTN_EXIT_BAD_INPUT with a one-line message in @p msg.
 * Validates the problem when no input files are given.
 */
int attn_parse_args(int argc, char **argv, attn_opts *o, FILE *help_out,
                    char *msg, size_t msg_len);
/** Print the usage text. */
void attn_print_usage(FILE *f, const char *prog);

/* ---- steps and the driver (driver.c) ----------------------------------- */

/** How long a timed run may go: warm-up runs, then up to iters, capped by time. */
typedef struct {
    int warmup;         /**< untimed runs first */
    int iters;          /**< timed runs at most */
    double max_ms;      /**< stop timing once this much time was spent */
} attn_bench_opts;

/** What a run measured. */
typedef struct {
    double ms;            /**< median of the timed runs (or the one run) */
    int runs;             /**< timed runs */
    size_t extra_bytes;   /**< peak bytes beyond inputs and outputs */
} attn_run_stats;

/** What a backward run measured. */
typedef struct {
    double ms_bwd;        /**< median of the timed backward runs (or the one run) */
    double ms_fwd_bwd;    /**< median of timed forward + backward runs (0 without bench) */
    int runs;             /**< timed backward runs */
    size_t extra_bytes;   /**< the backward's device workspace */
} attn_bwd_stats;

/** What a step computes: the driver, the suites and the bench read it. */
typedef enum {
    ATTN_KIND_FORWARD = 0, /**< O and LSE from Q, K, V (steps 01–06, 08 on) */
    ATTN_KIND_BACKWARD = 1 /**< dQ, dK, dV from Q, K, V, dO and its forward's O, LSE (07) */
} attn_kind;

struct attn_step;

/**
 * Run @p step on host arrays (float, BHSD) at element type @p t in layout
 * @p layout: copies in and out where the step is on the GPU, converts to
 * and from @p t and @p layout for a step with a params forward (a float
 * step takes fp32 BHSD only), times only the step itself. @p bench NULL:
 * one run. Returns 0, ATTN_EXIT_BAD_INPUT (the step refuses the shape, the
 * type or the layout) or ATTN_EXIT_RESOURCE, with a one-line message in
 * @p msg.
 */
typedef int (*attn_runner)(const struct attn_step *step, const attn_problem *p, attn_dtype t,
                           attn_layout layout, const float *q, const float *k, const float *v,
                           float *o, float *lse, const attn_bench_opts *bench,
                           attn_run_stats *st, char *msg, size_t msg_len);

/** A CPU step's forward (host pointers). */
typedef int (*attn_cpu_forward_fn)(const attn_problem *p, const float *q,
                                   const float *k, const float *v, float *o,
                                   float *lse);
/** A GPU step's forward (device pointers, workspace, stream). */
typedef int (*attn_gpu_forward_fn)(const attn_problem *p, const float *q,
                                   const float *k, const float *v, float *o,
                                   float *lse, void *workspace,
                                   struct CUstream_st *stream);

/**
 * A forward on attn_params (steps 08 on): host pointers for a CPU step;
 * device pointers, a device workspace and a stream for a GPU step. Returns
 * 0, 2 or 3 with attn_last_error() set.
 */
typedef int (*attn_params_forward_fn)(const attn_params *pp, void *workspace,
                                      struct CUstream_st *stream);

/** A GPU backward (device pointers): attn07_backward's signature. */
typedef int (*attn_gpu_backward_fn)(const attn_problem *p, const float *q, const float *k,
                                    const float *v, const float *o, const float *lse,
                                    const float *dout, float *dq, float *dk, float *dv,
                                    int deterministic, void *workspace,
                                    struct CUstream_st *stream);

/**
 * Run a backward step on host arrays (float, BHSD): its forward
 * (step->forward) for O and LSE unless @p given_forward, then the backward.
 * @p given_forward = 1: @p o and @p lse are inputs, the forward's outputs
 * the caller already has (a suite that checks several backwards of one
 * forward runs it once); 0: they are outputs. Returns 0, 2 or 3 with a
 * one-line message in @p msg.
 */
typedef int (*attn_bwd_runner)(const struct attn_step *step, const attn_problem *p,
                               const float *q, const float *k, const float *v,
                               const float *dout, float *o, float *lse, float *dq, float *dk,
                               float *dv, int deterministic, int given_forward,
                               const attn_bench_opts *bench, attn_bwd_stats *st, char *msg,
                               size_t msg_len);

/**
 * What a step program is: its number, name, device, what it computes and
 * its entry points. One descriptor for every kind of step: the driver
 * (attn_step_main), the suites, the tour and the bench read it.
 */
typedef struct attn_step {
    const char *id;                       /**< "06" */
    const char *name;                     /**< "fa2_warp" */
    int on_gpu;                           /**< 1 for GPU steps */
    attn_cpu_forward_fn cpu_forward;      /**< CPU steps */
    attn_gpu_forward_fn gpu_forward;      /**< GPU steps */
    size_t (*workspace_bytes)(const attn_problem *p); /**< GPU steps */
    /** Shapes the step refuses (NULL: none): 0, or 2 with a message. */
    int (*supports)(const attn_problem *p, char *msg, size_t msg_len);
    attn_runner run;                      /**< attn_cpu_run or attn_gpu_run */
    /** What it takes: dtypes, features, head dims. dtypes = 0 means fp32
     *  only, contiguous BHSD, the head dims supports() allows (steps 01–07,
     *  whose entry points take float pointers). */
    attn_caps caps;
    /** Steps 08 on: the forward on typed, strided tensors (then cpu_forward /
     *  gpu_forward are NULL); the runner converts the driver's float arrays
     *  to caps' dtype and layout and back. */
    attn_params_forward_fn params_forward;
    /** What it computes (zero: a forward). */
    attn_kind kind;
    /** A backward step: the forward it differentiates, which gives O and LSE. */
    const struct attn_step *forward;
    /** A backward step: the backward on the GPU. */
    attn_gpu_backward_fn gpu_backward;
    /** A backward step's runner (attn_bwd_gpu_run). */
    attn_bwd_runner run_backward;
} attn_step;

/*
 * Each step file defines its descriptor (outside any conditional) and,
 * when ATTN_STEP_MAIN is defined, a one-line main() that calls
 * attn_step_main() with it. The test suites link the descriptors of the
 * steps they compare.
 */
extern const attn_step attn01_step; /**< step 01: naive CPU attention */
extern const attn_step attn02_step; /**< step 02: online softmax on the CPU */
extern const attn_step attn03_step; /**< step 03: tiled FlashAttention on the CPU */
extern const attn_step attn04_step; /**< step 04: standard attention with cuBLAS */
extern const attn_step attn05_step; /**< step 05: FlashAttention-1 kernel */
extern const attn_step attn06_step; /**< step 06: FlashAttention-2 kernel */
extern const attn_step attn07_step; /**< step 07: the backward with recomputation (GPU) */
extern const attn_step attn08_step; /**< step 08: tensor cores, mma.sync (fp16/bf16) */
extern const attn_step attn09_step; /**< step 09: ldmatrix from swizzled shared tiles */
extern const attn_step attn10_step; /**< step 10: the cp.async pipeline, the full FA2 forward */
/** Step 07's baseline: the stored-P standard backward with cuBLAS. */
extern const attn_step attn07_standard_step;

/** Runner for CPU steps (driver.c): an attn_runner. */
int attn_cpu_run(const attn_step *step, const attn_problem *p, attn_dtype t, attn_layout layout,
                 const float *q, const float *k, const float *v, float *o, float *lse,
                 const attn_bench_opts *bench, attn_run_stats *st, char *msg, size_t msg_len);
/** Runner for GPU steps (gpu_host.cu; only in binaries built with nvcc): an attn_runner. */
int attn_gpu_run(const attn_step *step, const attn_problem *p, attn_dtype t, attn_layout layout,
                 const float *q, const float *k, const float *v, float *o, float *lse,
                 const attn_bench_opts *bench, attn_run_stats *st, char *msg, size_t msg_len);
/**
 * Does @p step take element type @p t in layout @p layout? A float step
 * (steps 01–07) takes fp32 BHSD only; a step with a params forward what its
 * caps say. 0, or ATTN_EXIT_BAD_INPUT with a one-line message.
 */
int attn_step_takes(const attn_step *step, attn_dtype t, attn_layout layout, char *msg,
                    size_t msg_len);
/** The first (lowest) element type @p step takes: fp32 for the float steps. */
attn_dtype attn_step_default_dtype(const attn_step *step);
/** 1 when a usable CUDA device is present (gpu_host.cu). */
int attn_gpu_available(char *msg, size_t msg_len);

/** Runner for GPU backward steps (gpu_bwd_host.cu): an attn_bwd_runner. */
int attn_bwd_gpu_run(const attn_step *step, const attn_problem *p, const float *q,
                     const float *k, const float *v, const float *dout, float *o, float *lse,
                     float *dq, float *dk, float *dv, int deterministic, int given_forward,
                     const attn_bench_opts *bench, attn_bwd_stats *st, char *msg,
                     size_t msg_len);

/**
 * The whole step program, for every kind of step: parse flags, make or
 * read inputs, run (and time) the step, check against the oracle, write
 * outputs, print the `result:` line and PASS/FAIL. A backward step also
 * takes --do and writes --dq, --dk, --dv. Returns the exit code.
 */
int attn_step_main(int argc, char **argv, const attn_step *step);

/** What the program's gradient check found (gradcheck.c). */
typedef struct {
    attn_err e[3];          /**< dQ, dK, dV against the oracle */
    double base[3];         /**< the fp32 baseline's max_abs_err */
    int checked_heads;      /**< query heads compared (0: not checked) */
    int nan_finite_inputs;  /**< NaN/inf in a gradient with finite inputs */
    int ok;                 /**< every gradient within the rule */
} attn_grad_check;

/**
 * The step program's check of a backward (gradcheck.c): dQ, dK, dV against
 * the float64 oracle's backward, under the gradient rule (max_abs_err ≤ 3 ×
 * an fp32 standard backward's + 1e-6). Past 2e9 multiply-adds only the
 * query heads of the first K/V head of batch 0 (a prefix of every tensor),
 * past 1.6e10 none (checked_heads = 0). 0, or 3 with a message.
 */
int attn_check_gradients(const attn_problem *p, const float *q, const float *k, const float *v,
                         const float *dout, const float *dq, const float *dk, const float *dv,
                         attn_grad_check *cr, char *msg, size_t n);

/**
 * Read one rank-4 float32 input file for flag @p flag (the input rules of notes/design.md:
 * rank 4, float32, every dimension 1..2^24). Returns 0, 2 or 3 with a
 * one-line message.
 */
int attn_read_input(const char *flag, const char *path, attn_array *a, char *msg, size_t n);
/**
 * attn_read_input()'s checks on the header alone (attn_npy_peek()): rank
 * 4, every dimension 1..2^24, float16 only when @p allow_fp16; @p a gets
 * the shape and no data. 0, 2 or 3 with a one-line message.
 */
int attn_peek_input(const char *flag, const char *path, attn_array *a, int allow_fp16,
                    char *msg, size_t n);
/** The data of a file attn_peek_input() accepted into @p a (2 if the file
 *  changed in between). */
int attn_read_peeked(const char *flag, const char *path, attn_array *a, char *msg, size_t n);
/** attn_read_input(), also taking float16 files when @p allow_fp16 (the
 *  step computes in a 16-bit type); their values arrive as floats. */
int attn_read_input_typed(const char *flag, const char *path, attn_array *a, int allow_fp16,
                          char *msg, size_t n);
/**
 * Take the problem's shape from the Q, K, V files; shape flags given as
 * well must agree. Returns 0 or 2 with a one-line message.
 */
int attn_problem_from_files(attn_opts *o, const attn_array *q, const attn_array *k,
                            const attn_array *v, char *msg, size_t n);
/** 1 when every one of @p n values is finite. */
int attn_all_finite(const float *x, size_t n);
/**
 * Q, K, V of a run into *q, *k, *v: the arrays read from the files when
 * @p from_files (their data moves to the caller and is cleared in @p aq,
 * @p ak, @p av), or fresh draws of the seeded generator (@p seed). A NULL
 * in *q, *k or *v means host memory ran out; the caller frees all three.
 */
void attn_take_qkv(const attn_problem *p, int from_files, uint64_t seed, attn_array *aq,
                   attn_array *ak, attn_array *av, float **q, float **k, float **v);

/**
 * Copy a float [B, H, S, D] BHSD array @p src into @p dst as type @p t
 * (fp32, fp16 or bf16, rounded to nearest even) laid out as @p layout. 0,
 * or 2 with attn_last_error() set for a type with no host conversion.
 */
int attn_to_typed(void *dst, attn_dtype t, attn_layout layout, const float *src, int B, int H,
                  int S, int D);
/**
 * The runners' typed run, set up: @p pp describes the problem with Q, K,
 * V, O at @p tq, @p tk, @p tv, @p to (the step's memory: device or host)
 * of type @p t in @p layout, LSE at @p lse, checked against @p step's caps;
 * the float BHSD arrays @p q, @p k, @p v, @p o are converted into the host
 * buffers @p hq, @p hk, @p hv, @p ho (the same as tq … for a CPU step).
 * 0, or 2 with a one-line message.
 */
int attn_typed_setup(attn_params *pp, const attn_step *step, const attn_problem *p,
                     attn_dtype t, attn_layout layout, const float *q, const float *k,
                     const float *v, const float *o, void *hq, void *hk, void *hv, void *ho,
                     void *tq, void *tk, void *tv, void *to, float *lse, char *msg,
                     size_t msg_len);
/** The reverse of attn_to_typed(): @p src of type @p t in @p layout to float BHSD. */
int attn_from_typed(float *dst, const void *src, attn_dtype t, attn_layout layout, int B, int H,
                    int S, int D);

/* ---- output files, all or none (outputs.c) ------------------------------ */

/** Most output files one program writes (O, LSE, dQ, dK, dV, …). */
#define ATTN_MAX_OUTPUTS 8

/** A program's outputs: declared and probed before the run, written to
 *  temporaries after it, renamed into place only when all are written. */
typedef struct {
    int n; /**< outputs declared */
    /** one output */
    struct {
        const char *flag;  /**< the flag that names it (for messages) */
        const char *path;  /**< where it goes */
        char tmp[4096];    /**< its temporary while written ("" when none) */
    } f[ATTN_MAX_OUTPUTS]; /**< the outputs, in the order declared */
} attn_outputs;

/** An empty set. */
void attn_outputs_init(attn_outputs *s);
/**
 * 1 when a rename over a file owned by @p file_uid in a directory of mode
 * @p dir_mode owned by @p dir_uid is refused to a process of effective uid
 * @p euid: the sticky bit (as on /tmp) lets only the file's owner, the
 * directory's owner or root replace it. attn_outputs_add() refuses such a
 * path before the run.
 */
int attn_sticky_blocks(unsigned dir_mode, unsigned dir_uid, unsigned file_uid, unsigned euid);
/**
 * Declare output @p path for @p flag (NULL: none): refuses, with exit 2, a
 * path that is not a regular file, a place where no file can be created (a
 * probe file is made there with mkstemp and removed), and a path that is
 * the same file as an output declared before (o.npy and ./o.npy).
 */
int attn_outputs_add(attn_outputs *s, const char *flag, const char *path, char *msg, size_t n);
/** Refuse (exit 2) an output that is the same file as one of the @p n_in
 *  inputs (NULL paths skipped). */
int attn_outputs_not_inputs(const attn_outputs *s, const char *const *in_flags,
                            const char *const *in_paths, int n_in, char *msg, size_t n);
/**
 * Write the declared output at @p path (the same pointer given to
 * attn_outputs_add(); NULL or undeclared: nothing) to a fresh temporary
 * beside it. 0, 2, or 3 when the disk is full.
 */
int attn_outputs_write(attn_outputs *s, const char *path, const float *data, int rank,
                       const int64_t *shape, int as_fp16, char *msg, size_t n);
/** Rename every written temporary into place. 0; or 2, and every
 *  temporary removed, when a rename fails. */
int attn_outputs_commit(attn_outputs *s, char *msg, size_t n);
/** Remove every temporary (after a failure: nothing is left behind). */
void attn_outputs_discard(attn_outputs *s);

/** Value used to poison outputs before a run, so unwritten elements fail. */
#define ATTN_POISON 12345.678f

#ifdef __cplusplus
}
#endif

#endif /* ATTN_COMMON_H */
