/**
 * @file device/mma.cuh
 * @brief Tensor cores through `mma.sync`: the m16n8k16 product on fp16/bf16
 * fragments with fp32 accumulators, the packing of two floats into one
 * fragment register, and 16-bit tiles between device and shared memory.
 *
 * Introduced by step 08, whose two products (S = QKᵀ and O += PV) run on
 * these wrappers; the later tensor-core steps include it.
 *
 * One `mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}.{f16,bf16}.f32`
 * multiplies a 16×16 A by a 16×8 B and adds a 16×8 C, all 32 lanes of a
 * warp together. Each lane holds a fixed part of each operand (g = lane / 4,
 * the lane's "group", t = lane % 4, its place in the group):
 *
 *     A (16×16, 4 registers of 2 elements):      B (16×8, 2 registers):
 *       a[0] = A[g    ][2t, 2t+1]                  b[0] = B[2t, 2t+1  ][g]
 *       a[1] = A[g + 8][2t, 2t+1]                  b[1] = B[2t+8, 2t+9][g]
 *       a[2] = A[g    ][2t+8, 2t+9]
 *       a[3] = A[g + 8][2t+8, 2t+9]              C, D (16×8, 4 floats):
 *                                                  c[0], c[1] = C[g    ][2t, 2t+1]
 *                                                  c[2], c[3] = C[g + 8][2t, 2t+1]
 *
 * (the lower-numbered column, or row for B, in the low 16 bits). Turing
 * (sm_75) has no m16n8k16 for fp16 but has m16n8k8, whose A fragment is
 * a[0], a[1] above and whose B fragment is b[0]: columns 0..7 of A against
 * rows 0..7 of B. So m16n8k16 is two m16n8k8 on the same registers, the
 * second on a[2], a[3] and b[1], and the kernels above this header are the
 * same code on both. bf16 tensor cores start at sm_80: there is no bf16
 * product below it, and a launcher must not run a bf16 kernel built for
 * compute_75 (the wrapper traps).
 */
#ifndef ATTN_DEVICE_MMA_CUH
#define ATTN_DEVICE_MMA_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

/**
 * D = A·B + C on one warp's fragments (layouts in the file comment):
 * @p c is both C and D. @p BF16 picks the operand type (0: fp16, 1: bf16);
 * accumulation is fp32 either way. On sm_80 and later one
 * `mma.sync.aligned.m16n8k16`; on sm_75 two `m16n8k8` (fp16 only).
 */
template <bool BF16>
static __device__ __forceinline__ void mma_m16n8k16(float (&c)[4], const uint32_t (&a)[4],
                                                    const uint32_t (&b)[2])
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    if (BF16)
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                     "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    else
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                     "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 750
    if (BF16) {
        __trap(); /* no bf16 tensor cores before sm_80: the host never launches this */
    } else {
        asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 "
                     "{%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(b[0]));
        asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 "
                     "{%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[2]), "r"(a[3]), "r"(b[1]));
    }
#else
    (void)c, (void)a, (void)b; /* host pass, or an architecture without mma.sync */
#endif
}

/**
 * Two floats rounded (to nearest even) to one fragment register: @p lo in
 * the low 16 bits, @p hi in the high ones, as fp16 or, with @p BF16, bf16.
 * This is how an fp32 accumulator becomes an A operand (step 08's P).
 */
template <bool BF16>
static __device__ __forceinline__ uint32_t pack2(float lo, float hi)
{
    uint32_t r;
    if (BF16) {
        __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
        r = *reinterpret_cast<uint32_t *>(&h);
    } else {
        __half2 h = __floats2half2_rn(lo, hi);
        r = *reinterpret_cast<uint32_t *>(&h);
    }
    return r;
}

/** Two 16-bit values, @p lo and @p hi (raw bits), in one register. */
static __device__ __forceinline__ uint32_t pack_bits(uint16_t lo, uint16_t hi)
{
    return (uint32_t)lo | ((uint32_t)hi << 16);
}

/** One 16-bit element (raw bits) as a float: fp16 or, with @p BF16, bf16. */
template <bool BF16>
static __device__ __forceinline__ float bits_to_float(uint16_t x)
{
    if (BF16)
        return __bfloat162float(__ushort_as_bfloat16(x));
    return __half2float(__ushort_as_half(x));
}

/** Is the 16-bit value @p x (raw bits) ±inf or NaN? All exponent bits set,
 *  in fp16 (5 bits) or bf16 (8 bits). */
template <bool BF16>
static __device__ __forceinline__ bool bits_nonfinite(uint16_t x)
{
    return BF16 ? (x & 0x7f80u) == 0x7f80u : (x & 0x7c00u) == 0x7c00u;
}

/** A row-major tile, rows @p LD elements apart (LD − D of padding): where
 *  element (@p r, @p col) is. The layout argument of load_tile16(). */
template <int LD> struct padded_tile {
    /** The offset of element (@p r, @p col), in elements. */
    static __device__ __forceinline__ int at(int r, int col) { return r * LD + col; }
};

/**
 * Rows [@p row0, @p row0 + @p rows) of a 16-bit tensor (rows @p stride
 * elements apart, @p n_rows of them, each @p D elements) into shared memory
 * @p dst, laid out by @p Tile (padded_tile<LD>: rows LD elements apart);
 * rows past @p n_rows are zero-filled.
 * All @p nt threads of the block take part, 16 bytes (8 elements) at a time
 * when @p vec (the row stride a multiple of 8, the base 16-byte aligned),
 * element by element otherwise. With @p sanitize, ±inf and NaN elements
 * are stored as 0 (a masked key must not put 0 · NaN into O), and the
 * return value says whether this thread met one.
 */
template <bool BF16, int D, class Tile>
static __device__ __forceinline__ bool load_tile16(uint16_t *dst, const uint16_t *src,
                                                   int64_t stride, int rows, int row0,
                                                   int n_rows, int vec, bool sanitize, int tid,
                                                   int nt)
{
    constexpr int CH = D / 8; /* 16-byte chunks per row */
    bool bad = false;
    for (int c = tid; c < rows * CH; c += nt) {
        const int r = c / CH, col = (c % CH) * 8;
        uint16_t x[8];
        if (row0 + r < n_rows) {
            const uint16_t *s = src + (int64_t)(row0 + r) * stride + col;
            if (vec) {
                const uint4 u = *reinterpret_cast<const uint4 *>(s);
                memcpy(x, &u, sizeof u);
            } else {
#pragma unroll
                for (int e = 0; e < 8; e++)
                    x[e] = s[e];
            }
        } else {
#pragma unroll
            for (int e = 0; e < 8; e++)
                x[e] = 0;
        }
        if (sanitize) {
#pragma unroll
            for (int e = 0; e < 8; e++)
                if (bits_nonfinite<BF16>(x[e])) {
                    x[e] = 0;
                    bad = true;
                }
        }
        uint4 u;
        memcpy(&u, x, sizeof u);
        *reinterpret_cast<uint4 *>(dst + Tile::at(r, col)) = u;
    }
    return bad;
}

#endif /* ATTN_DEVICE_MMA_CUH */
