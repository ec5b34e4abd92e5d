/**
 * @file device/warp.cuh
 * @brief Reductions across the lanes of a warp with __shfl_xor_sync.
 *
 * Introduced by step 04, whose softmax gives each row of S to one warp;
 * used by step 06 (the 8 lanes of a row share its max and sum) and step 07.
 *
 * A butterfly: at each stage every lane exchanges with the lane whose index
 * differs in one bit (xor LANES/2, …, 2, 1) and combines. After log2(LANES)
 * stages every lane of each aligned group of LANES lanes holds the
 * group's result; no lane idles, and no shared memory is touched.
 */
#ifndef ATTN_DEVICE_WARP_CUH
#define ATTN_DEVICE_WARP_CUH

/** Every lane of the warp takes part in the shuffles. */
#define ATTN_FULL_MASK 0xffffffffu

/**
 * Max over each aligned group of @p LANES lanes (a power of two ≤ 32), in
 * every lane of the group. fmaxf: a NaN is dropped (callers that must keep
 * a NaN carry it through exp, where it survives).
 */
template <int LANES>
static __device__ __forceinline__ float warp_allreduce_max(float x)
{
#pragma unroll
    for (int off = LANES / 2; off > 0; off /= 2)
        x = fmaxf(x, __shfl_xor_sync(ATTN_FULL_MASK, x, off));
    return x;
}

/**
 * Sum over each aligned group of @p LANES lanes, in every lane of the group.
 * The order of the additions is fixed (xor LANES/2 first), so the result is
 * the same bits in every lane and every run.
 */
template <int LANES>
static __device__ __forceinline__ float warp_allreduce_sum(float x)
{
#pragma unroll
    for (int off = LANES / 2; off > 0; off /= 2)
        x += __shfl_xor_sync(ATTN_FULL_MASK, x, off);
    return x;
}

#endif /* ATTN_DEVICE_WARP_CUH */
