/**
 * @file rng.c
 * @brief The one input generator: counter-based, so element i of a tensor
 * depends only on (seed, stream, i) and every step sees the same inputs.
 */
#include "common.h"

#include <math.h>

/** SplitMix64 finalizer: a good 64-bit mix of a counter. */
static uint64_t mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/** Uniform in (0, 1]: 53 random bits, never 0 (log(0) would be -inf). */
static double unit(uint64_t bits) { return ((bits >> 11) + 1) * 0x1.0p-53; }

void attn_fill_normal(float *x, size_t n, uint64_t seed, int stream)
{
    uint64_t key = mix64(seed ^ mix64((uint64_t)stream + 0x1234567ull));
    /* Box-Muller on pairs: elements 2k and 2k+1 share one pair of uniforms. */
    for (size_t i = 0; i < n; i += 2) {
        uint64_t c = key + (i / 2) * 2;
        double u1 = unit(mix64(c)), u2 = unit(mix64(c + 1));
        double r = sqrt(-2.0 * log(u1)), t = 6.283185307179586 * u2;
        x[i] = (float)(r * cos(t));
        if (i + 1 < n)
            x[i + 1] = (float)(r * sin(t));
    }
}
