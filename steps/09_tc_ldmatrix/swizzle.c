/**
 * @file steps/09_tc_ldmatrix/swizzle.c
 * @brief Step 09's swizzle on the CPU: the kernel's own function
 * (common/device/swizzle.h), callable from C, so that a CPU test can check
 * that its copies and its `ldmatrix` reads are free of bank conflicts.
 */
#include "swizzle.h"

#include "device/swizzle.h"

int attn09_swizzle_chunk(int row, int chunk, int chunks)
{
    return swizzle_chunk(row, chunk, chunks);
}
