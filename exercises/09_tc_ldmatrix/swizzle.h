/**
 * @file steps/09_tc_ldmatrix/swizzle.h
 * @brief Step 09's swizzle (swizzle.c), declared for the CPU test that
 * checks it (tests/test_09.c) and for exercise 09.
 */
#ifndef ATTN_STEP09_SWIZZLE_H
#define ATTN_STEP09_SWIZZLE_H

#ifdef __cplusplus
extern "C" {
#endif

/**
 * The 16-byte slot of its row where chunk @p chunk of row @p row is stored,
 * in a shared tile of @p chunks 16-byte chunks per row (4, 8, 16 or 32:
 * head dims 32, 64, 128, 256 in 16 bits), rows stored back to back.
 */
int attn09_swizzle_chunk(int row, int chunk, int chunks);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_STEP09_SWIZZLE_H */
