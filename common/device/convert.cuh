/**
 * @file device/convert.cuh
 * @brief An element of type T (float, __half, __nv_bfloat16) to and from
 * float. Introduced by step 04, whose S and P are stored in the type of the
 * run (`--dtype`) while its arithmetic is always fp32.
 */
#ifndef ATTN_DEVICE_CONVERT_CUH
#define ATTN_DEVICE_CONVERT_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>

/** An element of S, P or V as a float (the identity for float). */
static __device__ __forceinline__ float to_f32(float x) { return x; }
/** @copydoc to_f32(float) */
static __device__ __forceinline__ float to_f32(__half x) { return __half2float(x); }
/** @copydoc to_f32(float) */
static __device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
/** A float rounded (to nearest even) to T, as it is written (the identity for float). */
template <typename T> static __device__ __forceinline__ T from_f32(float x) { return x; }
/** @copydoc from_f32 */
template <> __device__ __forceinline__ __half from_f32<__half>(float x) { return __float2half_rn(x); }
/** @copydoc from_f32 */
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x)
{
    return __float2bfloat16_rn(x);
}

#endif /* ATTN_DEVICE_CONVERT_CUH */
