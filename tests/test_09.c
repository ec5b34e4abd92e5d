/**
 * @file test_09.c
 * @brief Suite step09 (CPU): step 09's swizzle (swizzle.c), checked the
 * way shared memory will use it. A 16-byte access touches 4 of the 32
 * banks, one "bank group" of the 8 in a 128-byte line; 8 accesses by a
 * quarter-warp are served in one pass when they hit 8 different groups.
 * The suite checks that for the kernel's `ldmatrix` reads (Q, K, V: every
 * 8 rows of one chunk column) and its 16-byte copies (8 consecutive chunks
 * of a row), at head dims 32, 64, 128 and 256, and that every row's chunks
 * are only permuted. It also checks the checker: a tile without the
 * swizzle conflicts 8-way at D = 64. It grades exercise 09
 * (`make exercise EX=09`). The kernel is tested on a GPU
 * (tests/test_gpu_09.c).
 */
#include <check.h>
#include <string.h>

#include "../steps/09_tc_ldmatrix/swizzle.h"
#include "common.h"
#include "swizzle_check.h"

static const int CHUNKS[4] = {4, 8, 16, 32}; /* D = 32, 64, 128, 256 in 16 bits */

/* swizzle_fn, swizzle_identity, bank_ways: tests/swizzle_check.h */

/* Each row's chunks are a permutation of 0 .. chunks - 1: every element
 * keeps one place of its own, in its own row. */
START_TEST(test_permutes_each_row)
{
    const int ch = CHUNKS[_i];
    for (int row = 0; row < 64; row++) {
        int seen[32] = {0};
        for (int c = 0; c < ch; c++) {
            const int s = attn09_swizzle_chunk(row, c, ch);
            ck_assert_msg(s >= 0 && s < ch, "D = %d: row %d chunk %d goes to slot %d, outside 0..%d",
                          8 * ch, row, c, s, ch - 1);
            ck_assert_msg(!seen[s], "D = %d: row %d: chunks %d and %d both go to slot %d", 8 * ch,
                          row, seen[s] - 1, c, s);
            seen[s] = c + 1;
        }
    }
}
END_TEST

/* ldmatrix: a quarter-warp gives 8 rows r0 .. r0 + 7 (r0 a multiple of 8,
 * as every fragment of Q, K and V starts) of one chunk column. */
START_TEST(test_ldmatrix_reads)
{
    const int ch = CHUNKS[_i];
    for (int r0 = 0; r0 < 128; r0 += 8)
        for (int c = 0; c < ch; c++) {
            int rows[8], cols[8];
            for (int i = 0; i < 8; i++)
                rows[i] = r0 + i, cols[i] = c;
            const int w = bank_ways(attn09_swizzle_chunk, rows, cols, ch);
            ck_assert_msg(w == 1, "D = %d: ldmatrix of rows %d..%d, chunk %d: a %d-way bank conflict",
                          8 * ch, r0, r0 + 7, c, w);
        }
}
END_TEST

/* The copies: thread x of the block writes chunk x % chunks of row
 * x / chunks, so a quarter-warp writes chunks 8q .. 8q + 7 of the tile in
 * that order (two rows of 4 chunks at D = 32). */
START_TEST(test_copy_writes)
{
    const int ch = CHUNKS[_i];
    for (int x0 = 0; x0 < 64 * ch; x0 += 8) {
        int rows[8], cols[8];
        for (int i = 0; i < 8; i++)
            rows[i] = (x0 + i) / ch, cols[i] = (x0 + i) % ch;
        const int w = bank_ways(attn09_swizzle_chunk, rows, cols, ch);
        ck_assert_msg(w == 1, "D = %d: the copy of chunks %d..%d (row %d): a %d-way bank conflict",
                      8 * ch, x0, x0 + 7, rows[0], w);
    }
}
END_TEST

/* The checker can fail: without the swizzle, ldmatrix's 8 rows of one chunk
 * hit one bank group at D = 64 (8-way) and D = 128, two at D = 32 (4-way). */
START_TEST(test_checker_sees_conflicts)
{
    const int want[4] = {4, 8, 8, 8};
    const int ch = CHUNKS[_i];
    int rows[8], cols[8];
    for (int i = 0; i < 8; i++)
        rows[i] = i, cols[i] = 0;
    ck_assert_int_eq(bank_ways(swizzle_identity, rows, cols, ch), want[_i]);
}
END_TEST

/** Suite step09: the swizzle of step 09. */
Suite *suite_step09(void);
Suite *suite_step09(void)
{
    Suite *s = suite_create("step09");
    TCase *tc = tcase_create("swizzle");
    tcase_add_loop_test(tc, test_permutes_each_row, 0, 4);
    tcase_add_loop_test(tc, test_ldmatrix_reads, 0, 4);
    tcase_add_loop_test(tc, test_copy_writes, 0, 4);
    tcase_add_loop_test(tc, test_checker_sees_conflicts, 0, 4);
    suite_add_tcase(s, tc);
    return s;
}
