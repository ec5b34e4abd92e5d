/**
 * @file steps/08_tc_mma/fragment.h
 * @brief The m16n8k16 fragment maps of step 08 (fragment.c), declared for
 * the CPU test that checks them (tests/test_08.c).
 */
#ifndef ATTN_STEP08_FRAGMENT_H
#define ATTN_STEP08_FRAGMENT_H

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A (16×16, row-major, fp16/bf16): element @p i (0..7) of lane @p lane's
 * fragment, i = 2·register + half (the low 16 bits are half 0), is
 * A[*row][*col].
 */
void attn08_frag_a(int lane, int i, int *row, int *col);
/**
 * B (16×8, "col": K × N, fp16/bf16): element @p i (0..3) of lane @p lane's
 * fragment, i = 2·register + half, is B[*row][*col] (row: the k index).
 */
void attn08_frag_b(int lane, int i, int *row, int *col);
/** C and D (16×8, fp32): element @p i (0..3) of lane @p lane's accumulator
 *  is C[*row][*col]. */
void attn08_frag_c(int lane, int i, int *row, int *col);
/**
 * P's A fragment straight from S's accumulators: element @p i (0..7) of the
 * A fragment of k-step kk is element @p *elem of S tile 2·kk + @p *tile, in
 * the same lane.
 */
void attn08_p_source(int i, int *tile, int *elem);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_STEP08_FRAGMENT_H */
