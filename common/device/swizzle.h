/**
 * @file device/swizzle.h
 * @brief The XOR swizzle of a 16-bit shared tile (step 09): a 128-byte
 * line of shared memory is 8 chunks of 16 bytes, 4 banks each. `ldmatrix`
 * reads one chunk from each of 8 rows; in a row-major tile of 128-byte
 * rows those 8 chunks share 4 banks (an 8-way conflict). Chunk c of row r
 * stored at c ^ (r % 8) puts them in 8 different places, and a row is only
 * permuted, so 8 consecutive chunks of it (the copies) stay apart too. Rows
 * of 4 or 12 chunks (D = 32, 96) end half a line off: rows r and r + 1
 * start 4 bank groups apart, so the XOR takes (r / 2) % 4 there, which
 * keeps a chunk inside its aligned group of 4 (step 10 adds D = 96).
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
 *  16-byte chunks per row (a multiple of 8, or 4 or 12). */
static ATTN_HD inline int swizzle_chunk(int row, int chunk, int chunks)
{
    return chunks % 8 == 0 ? chunk ^ (row & 7) : chunk ^ ((row >> 1) & 3);
}

#endif /* ATTN_DEVICE_SWIZZLE_H */
