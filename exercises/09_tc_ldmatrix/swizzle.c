/**
 * @file steps/09_tc_ldmatrix/swizzle.c
 * @brief Exercise 09 (fill in the TODO; README.md beside this file): the
 * XOR swizzle of a 16-bit shared-memory tile, so that `ldmatrix` (8 rows of
 * one 16-byte chunk) and the 16-byte copies (8 consecutive chunks of a row)
 * each hit 8 different bank groups.
 *
 * Shared memory: 32 banks of 4 bytes, so a 128-byte line holds 8 chunks of
 * 16 bytes, each chunk covering 4 banks — one "bank group" (0..7). Rows of
 * the tile are stored back to back, `chunks` chunks each: chunk slot s of
 * row r is at byte (r·chunks + s)·16, in bank group (r·chunks + s) % 8.
 */
#include "swizzle.h"

int attn09_swizzle_chunk(int row, int chunk, int chunks)
{
    /* TODO(9.1): return the slot (0 .. chunks - 1) where chunk `chunk` of
     * row `row` is stored. Each row's chunks must only be permuted; the 8
     * rows r0 .. r0 + 7 (r0 a multiple of 8) must put one chunk column in
     * 8 different bank groups; 8 consecutive chunks of the tile (a row of
     * 8 or more chunks, or two rows of 4) too. With 8 or more chunks a row
     * fills whole lines; with 4 (D = 32) two rows share a line
     * (~3 lines). */
    (void)row, (void)chunks;
    return chunk;
}
