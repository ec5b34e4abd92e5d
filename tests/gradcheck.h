/**
 * @file gradcheck.h
 * @brief The one gradient check of the backward suites (tests/test_07.c on
 * the CPU, tests/test_gpu_07.c on the GPU): every element written, NaN
 * exactly where the float64 oracle has it, zero dQ rows for rows that see
 * no key, and the gradient rule (notes/design.md).
 *
 * The rule: for each of dQ, dK, dV, max_abs_err ≤ 3 × the error of step
 * 01's standard backward on the same inputs + 1e-6 · M, M =
 * conf_grad_scale() of the oracle's gradients (the floor scales with the
 * gradient: where step 01 is exact, e.g. one visible key, a recomputing
 * backward still rounds P = exp(S − LSE) with the forward's LSE). With
 * large logits, a recomputing backward is held against the oracle given
 * its forward's O and LSE, with conf_delta_allowance() added for dQ and dK
 * (conformance.h says why).
 */
#ifndef ATTN_TESTS_GRADCHECK_H
#define ATTN_TESTS_GRADCHECK_H

#include "conformance.h"

/** What one backward case is checked against: made once, for every variant. */
typedef struct {
    attn_problem p;          /**< the problem */
    conf_kind kind;          /**< its inputs' kind */
    double *ref[3];          /**< the float64 oracle's dQ, dK, dV */
    double *given[3];        /**< large logits: the oracle given the forward's O and LSE */
    float *base[3];          /**< step 01's standard backward: the rule's scale */
    double base_err[3];      /**< its max_abs_err against ref */
    double allow[3];         /**< large logits: the δ allowance (dQ, dK; 0 for dV) */
    double scale;            /**< M: conf_grad_scale() of ref */
} grad_refs;

/**
 * Make the references of one case: the inputs @p q, @p k, @p v, @p dout and
 * the forward's @p o and @p lse that the backwards under test differentiate.
 */
void grad_refs_make(grad_refs *r, const attn_problem *p, conf_kind kind, const float *q,
                    const float *k, const float *v, const float *dout, const float *o,
                    const float *lse);
/** Free what grad_refs_make() allocated. */
void grad_refs_free(grad_refs *r);

/**
 * Check one backward's @p dq, @p dk, @p dv (ck_assert on failure, naming
 * @p variant and @p what). @p recompute: a backward that rebuilds P from
 * its forward's O and LSE (step 07; held to the given oracle with large
 * logits); 0: one that rebuilds P with a softmax (stored-P; the exact
 * oracle, and not held to NaN confinement). Returns the worst ratio of
 * error to allowed error over dQ, dK, dV; @p allowed (may be NULL) gets the
 * three allowed errors.
 */
double grad_check(const grad_refs *r, const float *dq, const float *dk, const float *dv,
                  int recompute, const char *variant, const char *what, double allowed[3]);

#endif /* ATTN_TESTS_GRADCHECK_H */
