/**
 * @file device/cp_async.cuh
 * @brief Copies from device to shared memory that run while the thread
 * computes (step 10): `cp.async` (sm_80 and later), its groups and waits,
 * a whole 16-bit tile copied that way, and the pass that clears ±inf and
 * NaN out of a tile once it has landed.
 *
 * `cp.async.cg.shared.global [dst], [src], 16, n` starts a 16-byte copy
 * that does not pass through the thread's registers (`.cg`: cached in L2
 * only) and returns at once; with n = 0 it writes 16 zero bytes and reads
 * nothing (a row past the end of K or V). `cp.async.commit_group` closes
 * the copies issued so far into a group; `cp.async.wait_group N` waits
 * until at most the N most recent groups are still in flight. The copied
 * bytes are then visible to the thread that issued them; to the rest of
 * the block only after a barrier.
 *
 * Turing (sm_75) has no `cp.async`: there the same calls copy at once,
 * through registers, and commit and wait do nothing, so that the kernels
 * above this header are one code on both.
 */
#ifndef ATTN_DEVICE_CP_ASYNC_CUH
#define ATTN_DEVICE_CP_ASYNC_CUH

#include <stdint.h>

#include "device/mma.cuh"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#define ATTN_HAVE_CP_ASYNC 0 /**< sm_75: copies are synchronous */
#else
#define ATTN_HAVE_CP_ASYNC 1 /**< sm_80 and later: `cp.async` */
#endif

/** 16 bytes from @p src (device memory) to @p dst (shared memory), both
 *  16-byte aligned; @p valid false: 16 zero bytes, and @p src is not read. */
static __device__ __forceinline__ void cp_async16(void *dst, const void *src, bool valid)
{
#if ATTN_HAVE_CP_ASYNC
    const unsigned d = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(d), "l"(src),
                 "r"(valid ? 16 : 0)
                 : "memory");
#else
    *static_cast<uint4 *>(dst) = valid ? *static_cast<const uint4 *>(src) : make_uint4(0, 0, 0, 0);
#endif
}

/** Close the copies this thread issued since the last commit into one group. */
static __device__ __forceinline__ void cp_async_commit()
{
#if ATTN_HAVE_CP_ASYNC
    asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}

/** Wait until at most @p N of this thread's most recent groups are in flight. */
template <int N> static __device__ __forceinline__ void cp_async_wait()
{
#if ATTN_HAVE_CP_ASYNC
    asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
#endif
}

/**
 * Rows [@p row0, @p row0 + @p rows) of a 16-bit tensor (rows @p stride
 * elements apart, a multiple of 8; @p n_rows rows; each @p D elements) into
 * shared memory @p dst, laid out by @p Tile, 16 bytes per `cp.async`; rows
 * past @p n_rows zero-filled. All @p nt threads take part, chunk c by
 * thread c mod nt: the chunks of sanitize_tile16(). Not committed.
 */
template <int D, class Tile>
static __device__ __forceinline__ void copy_tile_async(uint16_t *dst, const uint16_t *src,
                                                       int64_t stride, int rows, int row0,
                                                       int n_rows, int tid, int nt)
{
    constexpr int CH = D / 8; /* 16-byte chunks per row */
    for (int c = tid; c < rows * CH; c += nt) {
        const int r = c / CH, col = (c % CH) * 8;
        const bool in = row0 + r < n_rows;
        cp_async16(dst + Tile::at(r, col), src + (int64_t)(in ? row0 + r : 0) * stride + col, in);
    }
}

/**
 * ±inf and NaN elements of the @p rows × @p D tile @p t (laid out by
 * @p Tile) set to 0, over the chunks this thread copied (chunk c by thread
 * c mod @p nt, as copy_tile_async() and load_tile16() assign them, so no
 * barrier is needed between the copy and this pass). Returns whether this
 * thread met one. What load_tile16()'s sanitize does during the copy, for a
 * tile that reached shared memory without passing through registers.
 */
template <bool BF16, int D, class Tile>
static __device__ __forceinline__ bool sanitize_tile16(uint16_t *t, int rows, int tid, int nt)
{
    constexpr int CH = D / 8;
    bool bad = false;
    for (int c = tid; c < rows * CH; c += nt) {
        uint16_t *p = t + Tile::at(c / CH, (c % CH) * 8);
        uint4 u = *reinterpret_cast<const uint4 *>(p);
        uint16_t x[8];
        memcpy(x, &u, sizeof x);
#pragma unroll
        for (int e = 0; e < 8; e++)
            if (bits_nonfinite<BF16>(x[e])) {
                x[e] = 0;
                bad = true;
            }
        memcpy(&u, x, sizeof u);
        *reinterpret_cast<uint4 *>(p) = u;
    }
    return bad;
}

#endif /* ATTN_DEVICE_CP_ASYNC_CUH */
