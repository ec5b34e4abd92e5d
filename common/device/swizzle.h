/**
 * @file device/swizzle.h
 * @brief The XOR swizzle of a 16-bit shared tile (step 09): a 128-byte
 * line of shared memory is 8 chunks of 16 bytes, 4 banks each. `ldmatrix`
 * reads one chunk from each of 8 rows; in a row-major tile of 128-byte
 * rows those 8 chunks share 4 banks (an 8-way conflict). Chunk c of row r
 * stored at c ^ (r % 8) puts them in 8 different places, and a row is only
 * permuted, so 8 consecutive chunks of it (the copies) stay apart too. Rows
 * of 4 chunks (D = 32) pair up in a line: the XOR takes r / 2 there.
 * Plain C, host and device: the CPU test checks the kernel's own function.
 */
#ifndef ATTN_DEVICE_SWIZZLE_H
#define ATTN_DEVICE_SWIZZLE_H

#ifdef __CUDACC__
#define ATTN_HD __host__ __device__
#else
#define ATTN_HD
#endif

/** Where chunk @p chunk of row @p row is stored in its row, for @p chunks
 *  16-byte chunks per row (a power of two, at least 4). */
static ATTN_HD inline int swizzle_chunk(int row, int chunk, int chunks)
{
    const int rows_per_line = chunks >= 8 ? 1 : 8 / chunks; /* rows that share a 128-byte line */
    return chunk ^ ((row / rows_per_line) & (chunks >= 8 ? 7 : chunks - 1));
}

#endif /* ATTN_DEVICE_SWIZZLE_H */
