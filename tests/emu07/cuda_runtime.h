/*
 * tests/emu07's stand-in for <cuda_runtime.h>: the CUDA subset step 07's
 * code uses, emulated on the host, so that its indexing, masking and
 * barriers can be checked on a machine without a GPU. One std::thread per
 * CUDA thread, std::barrier for __syncthreads() (and __syncthreads_or()),
 * a mutex for atomicAdd(),
 * one global array for dynamic shared memory (blocks run one after
 * another). Not a performance model; a race that a real GPU would expose
 * is only likely, not certain, to show up here. emu07.cpp compiles the
 * step's real sources against it (-Itests/emu07 comes first).
 */
#ifndef EMU07_CUDA_RUNTIME_H
#define EMU07_CUDA_RUNTIME_H
#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>
using std::max;
using std::min;
struct dim3e { unsigned x; };
thread_local dim3e threadIdx, blockIdx;
std::barrier<> *g_bar;
std::mutex g_mu;
struct float4 { float x, y, z, w; };
struct float2 { float x, y; };
static inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
alignas(16) float4 smem4[1 << 15]; /* 512 KiB: any tile */
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__
static inline void __syncthreads() { g_bar->arrive_and_wait(); }
/* __syncthreads_or: a barrier that also ORs every thread's predicate. Call
 * n of a block uses slot n mod 3 and clears slot n - 1's, which every
 * thread read before this call's barrier and none writes before the next
 * one's; launch() clears all three when a block starts. */
std::atomic<int> g_or[3];
thread_local unsigned t_or_calls;
static inline int __syncthreads_or(int pred)
{
    const unsigned k = t_or_calls++ % 3;
    if (pred)
        g_or[k].store(1);
    g_bar->arrive_and_wait();
    const int r = g_or[k].load();
    g_or[(k + 2) % 3].store(0);
    return r;
}
static inline float atomicAdd(float *p, float v)
{
    std::lock_guard<std::mutex> l(g_mu);
    float o = *p;
    *p += v;
    return o;
}
static inline float __shfl_xor_sync(unsigned, float, int) { abort(); } /* delta_kernel: not emulated */

typedef int cudaError_t;
enum { cudaSuccess = 0 };
static inline cudaError_t cudaGetLastError() { return 0; }
static inline const char *cudaGetErrorString(cudaError_t) { return "emulated"; }
struct CUstream_st;
typedef struct CUstream_st *cudaStream_t;

#endif /* EMU07_CUDA_RUNTIME_H */
