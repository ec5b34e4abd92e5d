/* A reference column-major SGEMM in place of cuBLAS, and the two row
 * kernels of standard_cublas.cu as host loops: checks the GEMM arguments
 * (transposes, leading dimensions, strides, GQA stacking) of
 * attn07_standard_backward without a GPU. */
typedef int cudaError_t;
enum { cudaSuccess = 0 };
static inline cudaError_t cudaGetLastError() { return 0; }
#define CUDA_CHECK(call) do { if ((call) != 0) return ATTN_EXIT_RESOURCE; } while (0)
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
#define CUBLAS_CHECK(call) do { if ((int)(call) != 0) return ATTN_EXIT_RESOURCE; } while (0)
typedef void *cublasHandle_t;
enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_DEFAULT_MATH = 0 };
static int cublasCreate(cublasHandle_t *h) { *h = (void *)1; return 0; }
static int cublasSetMathMode(cublasHandle_t, int) { return 0; }
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
static int host_keys(int i, int sq, int sk, int causal)
{
    if (!causal)
        return sk;
    long long n = (long long)i + sk - sq + 1;
    return n < 0 ? 0 : (n > sk ? sk : (int)n);
}
static void host_softmax(float *s, size_t rows, int sq, int sk, int causal)
{
    for (size_t r = 0; r < rows; r++) {
        float *row = s + r * sk, m = -INFINITY, l = 0;
        int n = host_keys((int)(r % sq), sq, sk, causal);
        for (int j = 0; j < n; j++) m = fmaxf(m, row[j]);
        for (int j = 0; j < n; j++) l += expf(row[j] - m);
        for (int j = 0; j < sk; j++) row[j] = j < n ? expf(row[j] - m) / l : 0.0f;
    }
}
static void host_ds(const float *pr, float *ds, size_t rows, int sq, int sk, int causal)
{
    for (size_t r = 0; r < rows; r++) {
        const float *p = pr + r * sk;
        float *x = ds + r * sk, d = 0;
        int n = host_keys((int)(r % sq), sq, sk, causal);
        for (int j = 0; j < n; j++) d += p[j] * x[j];
        for (int j = 0; j < sk; j++) x[j] = j < n ? p[j] * (x[j] - d) : 0.0f;
    }
}
