/**
 * @file swizzle_check.h
 * @brief Bank-group arithmetic for the CPU tests of a swizzled shared tile
 * (test_09.c: the exercise's swizzle at D = 32 … 256; test_10.c: the
 * kernel's at D = 96). A 16-byte chunk covers 4 of the 32 banks, one "bank
 * group" of the 8 in a 128-byte line; 8 accesses by a quarter-warp are
 * served in one pass when they hit 8 different groups.
 */
#ifndef ATTN_TESTS_SWIZZLE_CHECK_H
#define ATTN_TESTS_SWIZZLE_CHECK_H

/** A swizzle: the slot of chunk @p chunk of row @p row, @p chunks per row. */
typedef int (*swizzle_fn)(int row, int chunk, int chunks);

/** No swizzle: the row-major tile (step 08's without its padding). */
static inline int swizzle_identity(int row, int chunk, int chunks)
{
    (void)row, (void)chunks;
    return chunk;
}

/** The bank group (0..7) of chunk @p chunk of row @p row under @p f: slot
 *  s of row r is chunk r·chunks + s of the tile, 8 chunks to a line. */
static inline int bank_group(swizzle_fn f, int row, int chunk, int chunks)
{
    return (row * chunks + f(row, chunk, chunks)) % 8;
}

/** The largest number of the 8 accesses (@p rows[i], @p cols[i]) that share
 *  a bank group: 1 is conflict-free, 8 is eight passes. */
static inline int bank_ways(swizzle_fn f, const int *rows, const int *cols, int chunks)
{
    int count[8] = {0}, worst = 0;
    for (int i = 0; i < 8; i++) {
        const int gr = bank_group(f, rows[i], cols[i], chunks);
        if (++count[gr] > worst)
            worst = count[gr];
    }
    return worst;
}

#endif /* ATTN_TESTS_SWIZZLE_CHECK_H */
