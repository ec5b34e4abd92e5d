/**
 * @file steps/08_tc_mma/fragment.c
 * @brief Which lane of a warp holds which (row, column) of the operands of
 * `mma.sync.aligned.m16n8k16` (fp16/bf16 A and B, fp32 C and D), and which
 * accumulator of S feeds which element of P's A fragment: step 08's index
 * arithmetic, as plain C that a CPU test checks.
 *
 * The kernel (kernel.cuh) does this arithmetic inline, in its shared-memory
 * addresses: `Ks + (8n + g)·LD + 16kk + 2t` is frag_b below with B = Kᵀ,
 * `Vs + (16kk + 2t)·LD + 8n + g` is frag_b with B = V, the output store at
 * row g + 8h, column 8n + 2t is frag_c, and the four pack2() lines that
 * build P's A fragment are p_source. Here the same maps stand alone, one
 * element at a time, so that tests/test_08.c can check them against the
 * PTX ISA's figures and against the properties the kernel relies on. In
 * every map g = lane / 4 is the lane's group and t = lane % 4 its place in
 * the group.
 */
#include "fragment.h"

void attn08_frag_a(int lane, int i, int *row, int *col)
{
    const int g = lane / 4, t = lane % 4;
    /* registers a[0..3], two elements each (i = 2·register + half):
     * a[0] rows g, a[1] rows g + 8, a[2] rows g, a[3] rows g + 8;
     * a[0], a[1] columns 2t, 2t + 1; a[2], a[3] the same 8 columns on */
    *row = g + 8 * ((i / 2) % 2);
    *col = 2 * t + i % 2 + 8 * (i / 4);
}

void attn08_frag_b(int lane, int i, int *row, int *col)
{
    const int g = lane / 4, t = lane % 4;
    /* b[0] = rows (k) 2t, 2t + 1 of column (n) g; b[1] the same 8 rows on */
    *row = 2 * t + i % 2 + 8 * (i / 2);
    *col = g;
}

void attn08_frag_c(int lane, int i, int *row, int *col)
{
    const int g = lane / 4, t = lane % 4;
    /* c[0], c[1]: row g, columns 2t, 2t + 1; c[2], c[3]: row g + 8 */
    *row = g + 8 * (i / 2);
    *col = 2 * t + i % 2;
}

void attn08_p_source(int i, int *tile, int *elem)
{
    /* A element i of one k16 step of P: elements 0..3 (a[0], a[1]) are
     * keys 0..7, tile 2kk of S; elements 4..7 (a[2], a[3]) keys 8..15,
     * tile 2kk + 1; in each, the same element of the accumulator */
    *tile = i / 4;
    *elem = i % 4;
}
