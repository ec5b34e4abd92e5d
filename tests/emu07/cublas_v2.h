/*
 * tests/emu07's stand-in for <cublas_v2.h>: a reference column-major SGEMM
 * in place of cuBLAS, so that the GEMM arguments (transposes, leading
 * dimensions, strides, GQA stacking) of attn07_standard_backward are
 * checked without a GPU.
 */
#ifndef EMU07_CUBLAS_V2_H
#define EMU07_CUBLAS_V2_H
struct cublasContext { int unused; };
typedef struct cublasContext *cublasHandle_t;

enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_DEFAULT_MATH = 0 };
static int cublasSetStream(cublasHandle_t, struct CUstream_st *) { return 0; }
static int cublasSgemmStridedBatched(cublasHandle_t, int ta, int tb, int m, int n, int k,
                                     const float *alpha, const float *A, int lda, long long sA,
                                     const float *B, int ldb, long long sB, const float *beta,
                                     float *C, int ldc, long long sC, int batches)
{
    for (int bt = 0; bt < batches; bt++) {
        const float *a = A + bt * sA, *b = B + bt * sB;
        float *c = C + bt * sC;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double acc = 0;
                for (int l = 0; l < k; l++)
                    acc += (double)(ta ? a[l + (size_t)i * lda] : a[i + (size_t)l * lda]) *
                           (tb ? b[j + (size_t)l * ldb] : b[l + (size_t)j * ldb]);
                float *cij = c + i + (size_t)j * ldc;
                *cij = (float)(*alpha * acc + (*beta == 0 ? 0 : *beta * *cij));
            }
    }
    return 0;
}
#endif /* EMU07_CUBLAS_V2_H */
