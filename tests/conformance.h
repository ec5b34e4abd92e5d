/**
 * @file conformance.h
 * @brief The conformance table every step's suite runs, and its checks.
 *
 * One table of shapes (notes/design.md, "The conformance table"): (Sq, Sk) pairs with odd
 * lengths, head dims 32/64/128, causal on and off, MHA/GQA/MQA, plus the
 * special inputs (rows that see no key, logits of magnitude 1e4, NaN in one
 * row of Q, K or V, a row whose every score is −inf). A suite registers loop tests over the table with
 * tcase_add_loop_test() and calls conf_check_step() in each iteration.
 */
#ifndef ATTN_CONFORMANCE_H
#define ATTN_CONFORMANCE_H

#include "common.h"

/** Input kinds the table is run with. */
typedef enum {
    CONF_RANDOM = 0,   /**< standard normal Q, K, V, default scale */
    CONF_LARGE_LOGITS, /**< scale chosen so |logits| reach about 1e4 */
    CONF_NAN_Q,        /**< one row of Q is NaN */
    CONF_NAN_K,        /**< one row of K is NaN */
    CONF_NAN_V,        /**< one row of V is NaN */
    CONF_NEG_INF_Q,    /**< one row of Q has a −inf that makes every score of its row −inf */
    CONF_KIND_COUNT
} conf_kind;

/**
 * The gradient rule for a recomputing backward (step 07) on the large-logit
 * inputs. The reference is the float64 backward given the forward's O and
 * LSE (attn_oracle_backward_given), not the exact one. With M =
 * conf_grad_scale() of the exact oracle's gradients (the largest entry, at
 * least 1), dV is held to the usual rule against it (3 × step 01's error +
 * 1e-6 · M), and dQ and dK to the same plus the allowance this function
 * returns: D · 2^-24 times the largest entry of attn_oracle_delta_bound().
 *
 * Why. Step 01 computes S exactly here (integer inputs), so its error is
 * tiny, and two things a recomputing backward does by design are not.
 * (1) It inherits the forward's rounding: P = exp(S − LSE) with an fp32 LSE
 * whose last bit is 2^-10 at |LSE| ≈ 1e4, so P is off by up to 5e-4
 * relative; against the exact oracle that makes its gradient errors up to
 * 171 × (dQ), 1237 × (dK) and 7205 × (dV) step 01's over these cases
 * (notes/07). No backward can undo that; the reference given the forward's
 * O and LSE takes it out. (2) δ = rowsum(dO ∘ O) does not cancel the
 * rounding of dP = dO Vᵀ in Σ_j dS_ij the way step 01's δ = rowsum(P ∘ dP)
 * does (that cancels the P-weighted mean of dP's rounding, row by row); the
 * ±100 coordinate of Q and K multiplies what is left by 100 in dQ and dK (up
 * to 18 × step 01's error on the CPU). attn_oracle_delta_bound() bounds,
 * to first order, all of dP's and δ's rounding as it reaches dQ and dK —
 * more than the part step 01 cancels, so it is loose: a worst case (D ·
 * 2^-24 per dot product, magnitudes added). The measured errors stay under
 * 0.05 of the limit; the allowance is at most 2e-4 (dQ) and 2.2e-3 (dK) of
 * M where Sq > 1, and up to 1.5% and 4.8% on the single-row shapes (Sq = 1),
 * whose gradients are small. dV has neither effect (it is Pᵀ dO), so it
 * keeps the strict rule and is the check that catches a P rebuilt with lost
 * precision (an exp2 with log2 e folded into S and LSE separately is off by
 * ~1e-3 relative: as a mutation of the CPU version it fails 48 of the 60
 * large-logit cases, every one with more than one key).
 *
 * Returns the allowances for dQ (out[0]) and dK (out[1]).
 */
void conf_delta_allowance(const attn_problem *p, const float *q, const float *k,
                          const float *v, const float *dout, const float *o, const float *lse,
                          double out[2]);

/** max(1, max |x|) over the non-NaN entries of the three gradients. */
double conf_grad_scale(const attn_problem *p, const double *dq, const double *dk,
                       const double *dv);

/**
 * Is query row @p r (= (b·Hq + h)·Sq + i) masked whole for inputs of kind
 * @p kind: it sees no key, or (CONF_NEG_INF_Q) every score it sees is −inf?
 * Such a row has O = 0 and LSE = −inf, and in the backward dQ = 0 and no
 * part in dK or dV (notes/design.md, "Fully masked rows").
 */
int conf_row_masked(const attn_problem *p, conf_kind kind, int64_t r);

/** Number of entries in the shape table. */
int conf_shape_count(void);
/** Entry @p i of the shape table (batch 1 or 2; fewer heads for big shapes). */
attn_problem conf_shape(int i);
/**
 * The cases a step suite runs: every shape of the table with random
 * inputs, and the special kinds (large logits, NaN rows) on the shapes
 * that are not large, at head dims 32 and 64 (what they test does not
 * depend on D; this keeps `make test` within a few minutes on two cores).
 */
int conf_case_count(void);
/** Case @p i of conf_case_count(): its problem and input kind. */
void conf_case(int i, attn_problem *p, conf_kind *kind);

/** A short description of a problem for failure messages. */
const char *conf_describe(const attn_problem *p, conf_kind kind);

/**
 * The inputs of a case: standard-normal Q, K, V from @p seed, then what
 * @p kind does to them (large logits: Q and K rounded to integers in
 * [−12, 12], then the first coordinate set to ±100 in Q (the sign
 * alternating by row) and 100 in K, so every logit is ±1e4 plus a small
 * integer, computed exactly; p->softmax_scale set to 1. NaN kinds: one row
 * of Q, K or V made NaN, batch 0, head 0, the middle row. −inf in Q: the
 * first coordinate of every K row made positive, |k| + 0.25, and that of
 * the same middle row of Q made −inf, so every score of that row is −inf:
 * a row masked by its scores, O = 0 and LSE = −inf, never NaN).
 */
void conf_fill_inputs(attn_problem *p, conf_kind kind, uint64_t seed, float *q, float *k,
                      float *v);

/**
 * Run @p step (and @p prev, when not NULL) on fresh random inputs of kind
 * @p kind for problem @p p (seed from @p seed), and assert with Check:
 *  - every output element was written (outputs are poisoned first);
 *  - O passes the correctness rule against the float64 oracle (baseline:
 *    the fp32 naive rows), LSE within ATTN_LSE_TOL;
 *  - NaN appears exactly in the rows the oracle says, nowhere else;
 *  - rows that see no key, or whose every score is −inf, have O = 0 and
 *    LSE = -inf (conf_row_masked());
 *  - |O_step - O_prev| is bounded by the sum of their two allowed errors.
 * Returns 0 when it ran, or 1 when the step's runner reported "no CUDA
 * device" (the caller then skips). Large problems compare sampled rows.
 */
int conf_check_step(const attn_step *step, const attn_step *prev,
                    const attn_problem *p, conf_kind kind, uint64_t seed);

/**
 * conf_check_step() at element type @p t and layout @p layout (steps 08
 * on; conf_check_step() is this at the step's first type and BHSD). The
 * inputs are rounded to @p t first, and the oracle, the baseline and
 * @p prev all see the rounded values. The rule is the one of @p t
 * (notes/design.md): max_abs_err ≤ 2 × that of attn_naive_rows_at() at
 * @p t + 1e-4 (1e-6 at fp32), LSE within max(1e-3, 2 × the baseline's)
 * (1e-5 at fp32). @p prev runs at its own first type, in BHSD, and the
 * bound on |O − O_prev| is the sum of the two steps' allowances. An
 * element left unwritten reads as ATTN_POISON rounded to @p t.
 */
/**
 * For a step that stores the scaled logits S in a 16-bit type (step 04 at
 * fp16/bf16, whose S goes through device memory): @p u is that type's unit
 * roundoff (2^-11 fp16, 2^-8 bf16), and conf_check_step_at() then allows,
 * on top of its rule, (e^{2u·Smax} − 1) · max|V|, Smax the largest
 * |scale · q_i · k_j| a checked row sees: a relative error u in every
 * logit moves every P by at most that factor; the LSE tolerance gets u·Smax
 * more (the LSE moves by at most that). 0 (the default) turns it off.
 * The rule of the design page is for kernels that keep S in fp32; this is
 * what storing S costs, not a looser rule for them.
 */
void conf_set_s_rounding(double u);

/** What one check measured: the numbers behind its verdict. */
typedef struct {
    double max_abs; /**< max |O − O_oracle| of the step */
    double allowed; /**< what was allowed: the rule, plus conf_set_s_rounding()'s allowance */
    double rule;    /**< the rule alone: 2 × the baseline's + 1e-4 (1e-6 at fp32) */
    double lse_err; /**< LSE error, relative (attn_lse_err()) */
    double vs_prev; /**< max |O − O_prev|, or −1 when no prior step ran */
} conf_result;

/** The numbers of the last conf_check_step() / conf_check_step_at() that
 *  got as far as comparing (a skipped run leaves them as they were). */
const conf_result *conf_last(void);

int conf_check_step_at(const attn_step *step, const attn_step *prev, const attn_problem *p,
                       conf_kind kind, uint64_t seed, attn_dtype t, attn_layout layout);

#endif /* ATTN_CONFORMANCE_H */
