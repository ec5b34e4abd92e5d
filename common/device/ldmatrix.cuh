/**
 * @file device/ldmatrix.cuh
 * @brief `ldmatrix` and the swizzled tile it reads (step 09). One
 * `ldmatrix.x4` loads four 8×8 matrices of 16-bit elements: lanes
 * 8m .. 8m + 7 give the addresses of matrix m's 8 rows (16 bytes each),
 * and lane 4g + t receives in register m its elements (g, 2t), (g, 2t + 1);
 * with `.trans`, (2t, g), (2t + 1, g): an mma fragment register either way.
 */
#ifndef ATTN_DEVICE_LDMATRIX_CUH
#define ATTN_DEVICE_LDMATRIX_CUH

#include <stdint.h>

#include "device/swizzle.h"

/** Four 8×8 matrices into @p r; this lane's row address @p p; @p TRANS: transposed. */
template <bool TRANS>
static __device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const uint16_t *p)
{
    const unsigned a = (unsigned)__cvta_generic_to_shared(p);
    if (TRANS)
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
    else
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}

/** A tile of D 16-bit columns, no padding, chunks swizzled: the offset of
 *  element (@p r, @p col). The layout argument of load_tile16(). */
template <int D> struct swizzled_tile {
    /** The offset of element (@p r, @p col), in elements. */
    static __device__ __forceinline__ int at(int r, int col)
    {
#ifdef ATTN_NO_SWIZZLE /* a measurement build only: the conflicts without the swizzle */
        return r * D + col;
#endif
        return r * D + 8 * swizzle_chunk(r, col / 8, D / 8) + col % 8;
    }
};

#endif /* ATTN_DEVICE_LDMATRIX_CUH */
