/**
 * @file device/visibility.cuh
 * @brief Which keys a query row sees: the causal rule on the device.
 *
 * Introduced by step 04 (its softmax kernel is the first device code that
 * masks); every later kernel includes it. The host twin is
 * attn_keys_visible() (problem.c): the two must agree, and the suites
 * compare every step with the float64 oracle, which uses the host one.
 */
#ifndef ATTN_DEVICE_VISIBILITY_CUH
#define ATTN_DEVICE_VISIBILITY_CUH

/**
 * Keys query row @p i sees, in 0..@p sk: keys 0 .. n−1. Without causal
 * masking that is every key; with it (aligned bottom-right, so that the
 * last query row sees the last key when Sq ≠ Sk) it is
 * clamp(i + Sk − Sq + 1, 0, Sk). A row with 0 keys gets O = 0, LSE = −inf.
 */
static __device__ __forceinline__ int keys_visible(int i, int sq, int sk, int causal)
{
    if (!causal)
        return sk;
    long long n = (long long)i + sk - sq + 1;
    return n < 0 ? 0 : (n > sk ? sk : (int)n);
}

#endif /* ATTN_DEVICE_VISIBILITY_CUH */
