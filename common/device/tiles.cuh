/**
 * @file device/tiles.cuh
 * @brief fp32 tiles between device memory and shared memory.
 *
 * Introduced by step 05; used by steps 06 and 07. The block copies a tile
 * together, thread t taking elements t, t + NT, … (coalesced).
 */
#ifndef ATTN_DEVICE_TILES_CUH
#define ATTN_DEVICE_TILES_CUH

/**
 * Copy rows [row0, row0 + R) of a row-major [n, d] matrix into a shared
 * tile [R][LD], zero-filling rows ≥ n and columns ≥ d (up to D): a zero adds
 * nothing to Q·Kᵀ or P·V, so tails need no special case in the math.
 * @p vec: d % 4 == 0 and 16-byte aligned pointers, a float4 per thread and
 * trip; otherwise one float. @p NT: the block's thread count.
 */
template <int R, int D, int LD, int NT>
static __device__ __forceinline__ void load_tile(float *tile, const float *src,
                                                 int row0, int n, int d, int vec)
{
    if (vec) {
#pragma unroll
        for (int it = 0; it < (R * D / 4 + NT - 1) / NT; it++) {
            const int idx = it * NT + threadIdx.x;
            if ((R * D / 4) % NT != 0 && idx >= R * D / 4)
                break;
            const int r = idx / (D / 4), c = idx % (D / 4) * 4;
            float4 x = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (row0 + r < n && c < d)
                x = *reinterpret_cast<const float4 *>(src + (size_t)(row0 + r) * d + c);
            *reinterpret_cast<float4 *>(tile + r * LD + c) = x;
        }
    } else {
        for (int idx = threadIdx.x; idx < R * D; idx += NT) {
            const int r = idx / D, c = idx % D;
            tile[r * LD + c] = (row0 + r < n && c < d) ? src[(size_t)(row0 + r) * d + c] : 0.0f;
        }
    }
}

/** The reverse of load_tile() for the rows < n and columns < d of the tile. */
template <int R, int D, int LD, int NT>
static __device__ __forceinline__ void store_tile(float *dst, const float *tile,
                                                  int row0, int n, int d, int vec)
{
    if (vec) {
#pragma unroll 1 /* unrolled, step 06 at D = 64 needed 230 registers, not 168 */
        for (int it = 0; it < (R * D / 4 + NT - 1) / NT; it++) {
            const int idx = it * NT + threadIdx.x;
            if ((R * D / 4) % NT != 0 && idx >= R * D / 4)
                break;
            const int r = idx / (D / 4), c = idx % (D / 4) * 4;
            if (row0 + r < n && c < d)
                *reinterpret_cast<float4 *>(dst + (size_t)(row0 + r) * d + c) =
                    *reinterpret_cast<const float4 *>(tile + r * LD + c);
        }
    } else {
        for (int idx = threadIdx.x; idx < R * D; idx += NT) {
            const int r = idx / D, c = idx % D;
            if (row0 + r < n && c < d)
                dst[(size_t)(row0 + r) * d + c] = tile[r * LD + c];
        }
    }
}

#endif /* ATTN_DEVICE_TILES_CUH */
