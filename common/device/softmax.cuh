/**
 * @file device/softmax.cuh
 * @brief The two rules of the online softmax that every kernel needs when
 * a running max may still be −inf.
 *
 * Introduced by step 04 (its one-pass softmax merges per-lane running
 * sums); used by steps 05 and 06 (the rescale factor of O_i and l_i). The
 * CPU steps write the same two lines in C (step 02 derives them).
 */
#ifndef ATTN_DEVICE_SOFTMAX_CUH
#define ATTN_DEVICE_SOFTMAX_CUH

/**
 * The −inf guard: the max to subtract from the scores. While every score a
 * row has seen is −inf (a masked block, or an infinite input), its running
 * max m is −inf, and exp(s − m) would be exp(−inf − (−inf)) = NaN.
 * Subtracting 0 instead gives exp(−inf) = 0: the weights are 0, as they
 * should be. FlashAttention-2 carries the same guard. Any other m is
 * returned as it is (a NaN too: a NaN score must poison its row).
 */
static __device__ __forceinline__ float softmax_guard(float m)
{
    return m == -INFINITY ? 0.0f : m;
}

/**
 * l · e^{m − m_new}: a running sum l, taken against max m, re-expressed
 * against the new max m_new ≥ m. When m == m_new the factor is exactly 1 —
 * also when both are −inf (a lane that has seen no finite score yet), where
 * exp(−inf − (−inf)) would be NaN. A NaN in l always survives: NaN · 0 and
 * NaN · 1 are NaN, so a row that met a NaN score stays NaN through every
 * rescale and merge.
 */
static __device__ __forceinline__ float rescale_sum(float l, float m, float m_new)
{
    return l * (m == m_new ? 1.0f : expf(m - m_new));
}

#endif /* ATTN_DEVICE_SOFTMAX_CUH */
