/**
 * @file steps/08_tc_mma/fragment.c
 * @brief Exercise 08 (fill in the TODOs; README.md beside this file):
 * which lane of a warp holds which (row, column) of the operands of
 * `mma.sync.aligned.m16n8k16` (fp16/bf16 A and B, fp32 C and D), and which
 * accumulator of S feeds which element of P's A fragment.
 *
 * In every map g = lane / 4 is the lane's group and t = lane % 4 its place
 * in the group. Element i of a fragment is 2·register + half: the two
 * 16-bit halves of A's and B's registers are elements 2r (low bits) and
 * 2r + 1; C's four floats are elements 0..3.
 */
#include "fragment.h"

void attn08_frag_a(int lane, int i, int *row, int *col)
{
    const int g = lane / 4, t = lane % 4;
    /* TODO(8.1): A is 16×16, four registers per lane. Registers 0 and 2
     * hold row g, registers 1 and 3 row g + 8; registers 0 and 1 hold
     * columns 2t and 2t + 1, registers 2 and 3 the same two columns
     * 8 further on. Set *row and *col for element i (~2 lines). */
    (void)g, (void)t, (void)i;
    *row = 0;
    *col = 0;
}

void attn08_frag_b(int lane, int i, int *row, int *col)
{
    const int g = lane / 4, t = lane % 4;
    /* TODO(8.2): B is 16×8 (k × n), two registers per lane, both in
     * column g: register 0 rows 2t and 2t + 1, register 1 the same two
     * rows 8 further on (~2 lines). */
    (void)g, (void)t, (void)i;
    *row = 0;
    *col = 0;
}

void attn08_frag_c(int lane, int i, int *row, int *col)
{
    const int g = lane / 4, t = lane % 4;
    /* TODO(8.3): C (and D) is 16×8 fp32, four floats per lane: elements 0
     * and 1 in row g, 2 and 3 in row g + 8, each pair in columns 2t and
     * 2t + 1 (~2 lines). */
    (void)g, (void)t, (void)i;
    *row = 0;
    *col = 0;
}

void attn08_p_source(int i, int *tile, int *elem)
{
    /* TODO(8.4): the A fragment of P for k-step kk (keys 16kk .. 16kk + 15)
     * is made of the accumulators of S tiles 2kk (keys 16kk .. +7) and
     * 2kk + 1 (keys 16kk + 8 .. +15), in the same lane. Which tile (0 or 1,
     * relative to 2kk) and which of its four accumulator elements is A
     * element i? Compare your answers to 8.1 and 8.3 (~2 lines). */
    (void)i;
    *tile = 0;
    *elem = 0;
}
