/**
 * @file gpu_host.cu
 * @brief The host side of every GPU step: device check, copies, timing.
 *
 * A GPU step (04, 05, 06, …) is a function on device pointers
 * (attn_gpu_forward_fn). The step programs and the test suites hold their
 * tensors on the host, so something has to allocate device memory, copy the
 * inputs over, run the step, time it and copy the outputs back. That is
 * attn_gpu_run(), the `run` member of every GPU step's descriptor. It is
 * plumbing, not an idea of FlashAttention, so it lives here and never shows
 * up in `make diff`.
 *
 * What it guarantees, for every step alike:
 *  - exit 3 with "no CUDA device" when there is none (the suites then skip);
 *  - exit 2 when the step's supports() refuses the shape;
 *  - exit 3 with "out of device memory: needed N bytes …, M free" when the
 *    tensors or the step's workspace do not fit — checked before anything
 *    runs, and the host outputs are left untouched;
 *  - O and LSE are poisoned on the device (ATTN_POISON) and the workspace
 *    is filled with NaN before the first run, so an element a step forgets
 *    to write, or a workspace value it reads before writing, fails the check;
 *  - timing covers the step alone (no allocation, no copies), with CUDA
 *    events around each run, after warm-up, median of up to bench->iters
 *    runs, stopping once bench->max_ms of timed runs were spent; when the
 *    inputs are small enough to sit in L2, L2 is flushed before each timed
 *    run so every run starts from cold memory like a real layer would;
 *  - extra_bytes is the step's workspace: steps do not cudaMalloc inside
 *    their forward (cuBLAS's own small workspace, step 04, is not counted);
 *  - every device allocation is freed on every path.
 */
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_check.h"
#include "gpu_host.h"

int attn_cublas_handle(attn_cublas_t *out)
{
    static cublasHandle_t handle = NULL;
    if (!handle) {
        cublasHandle_t h = NULL;
        CUBLAS_CHECK(cublasCreate(&h));
        CUBLAS_CHECK(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
        handle = h;
    }
    *out = handle;
    return 0;
}

/** x[0..n) = value. grid-stride loop, so any n works with a bounded grid. */
static __global__ void attn_fill_kernel(float *x, size_t n, float value)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        x[i] = value;
}

cudaError_t attn_dev_fill(float *x, size_t n, float value, cudaStream_t s)
{
    if (n == 0)
        return cudaSuccess;
    size_t blocks = (n + 255) / 256;
    if (blocks > 4096)
        blocks = 4096;
    attn_fill_kernel<<<(unsigned)blocks, 256, 0, s>>>(x, n, value);
    return cudaGetLastError();
}

int attn_cuda_msg(cudaError_t e, const char *what, const char *file, int line, char *msg,
                  size_t msg_len)
{
    if (e == cudaSuccess)
        return 0;
    (void)cudaGetLastError();
    if (msg && msg_len)
        snprintf(msg, msg_len, "CUDA error: %s failed at %s:%d: %s", what, file, line,
                 cudaGetErrorString(e));
    return ATTN_EXIT_RESOURCE;
}

cudaError_t attn_dev_alloc(void **ptr, size_t bytes)
{
    *ptr = NULL;
    if (bytes == 0)
        return cudaSuccess;
    cudaError_t e = cudaMalloc(ptr, bytes);
    if (e != cudaSuccess) {
        *ptr = NULL;
        (void)cudaGetLastError(); /* allocation errors are not sticky */
    }
    return e;
}

cudaError_t attn_l2_flush_alloc(size_t tensor_bytes, void **flush, size_t *flush_bytes)
{
    int dev = 0, l2_bytes = 0;
    cudaError_t e;
    *flush = NULL;
    *flush_bytes = 0;
    if ((e = cudaGetDevice(&dev)) != cudaSuccess ||
        (e = cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, dev)) != cudaSuccess)
        return e;
    if (l2_bytes > 0 && tensor_bytes < 2 * (size_t)l2_bytes &&
        attn_dev_alloc(flush, 2 * (size_t)l2_bytes) == cudaSuccess)
        *flush_bytes = 2 * (size_t)l2_bytes;
    return cudaSuccess;
}

int attn_timer_open(attn_gpu_timer *t, const attn_bench_opts *bench, size_t tensor_bytes,
                    char *msg, size_t msg_len)
{
    int rc = 0;
    memset(t, 0, sizeof *t);
    t->iters = bench && bench->iters > 0 ? bench->iters : 1;
    if ((rc = HOST_CALL(cudaStreamCreateWithFlags(&t->stream, cudaStreamNonBlocking), msg, msg_len)))
        goto done;
    if ((rc = HOST_CALL(cudaEventCreate(&t->ev0), msg, msg_len)))
        goto done;
    if ((rc = HOST_CALL(cudaEventCreate(&t->ev1), msg, msg_len)))
        goto done;
    t->times = (double *)malloc((size_t)t->iters * sizeof(double));
    if (!t->times) {
        snprintf(msg, msg_len, "out of host memory for %d timings", t->iters);
        return ATTN_EXIT_RESOURCE;
    }
    /* When Q, K, V, O fit in L2 together, a timed run would otherwise find
     * them cached by the previous one (harness memory, not the step's). */
    if (bench &&
        (rc = HOST_CALL(attn_l2_flush_alloc(tensor_bytes, &t->flush, &t->flush_bytes), msg, msg_len)))
        goto done;
done:
    return rc;
}

void attn_timer_close(attn_gpu_timer *t)
{
    if (t->stream)
        (void)cudaStreamSynchronize(t->stream);
    if (t->ev0)
        (void)cudaEventDestroy(t->ev0);
    if (t->ev1)
        (void)cudaEventDestroy(t->ev1);
    if (t->stream)
        (void)cudaStreamDestroy(t->stream);
    (void)cudaFree(t->flush);
    free(t->times);
    memset(t, 0, sizeof *t);
}

int attn_timer_warm_up(attn_gpu_timer *t, const attn_bench_opts *bench, attn_gpu_run_fn fn,
                       void *ctx, char *msg, size_t msg_len)
{
    int rc = 0;
    const double start = attn_now_ms();
    for (int w = 0; w < bench->warmup; w++) {
        if ((rc = fn(ctx, t->stream)))
            return rc;
        if ((rc = HOST_CALL(cudaStreamSynchronize(t->stream), msg, msg_len)))
            goto done;
        /* a slow step must not spend the budget on warm-up */
        if (bench->max_ms > 0 && attn_now_ms() - start > bench->max_ms)
            break;
    }
done:
    return rc;
}

int attn_timer_run(attn_gpu_timer *t, double max_ms, attn_gpu_run_fn fn, void *ctx, double *ms,
                   int *runs, char *msg, size_t msg_len)
{
    int rc = 0, n = 0;
    double spent = 0.0;
    while (n < t->iters) {
        float one = 0.0f;
        if (t->flush_bytes &&
            (rc = HOST_CALL(cudaMemsetAsync(t->flush, n & 1, t->flush_bytes, t->stream), msg, msg_len)))
            goto done;
        if ((rc = HOST_CALL(cudaEventRecord(t->ev0, t->stream), msg, msg_len)))
            goto done;
        if ((rc = fn(ctx, t->stream)))
            return rc;
        if ((rc = HOST_CALL(cudaEventRecord(t->ev1, t->stream), msg, msg_len)))
            goto done;
        if ((rc = HOST_CALL(cudaEventSynchronize(t->ev1), msg, msg_len)))
            goto done;
        if ((rc = HOST_CALL(cudaEventElapsedTime(&one, t->ev0, t->ev1), msg, msg_len)))
            goto done;
        t->times[n++] = one;
        spent += one;
        if (max_ms > 0 && spent >= max_ms)
            break;
    }
    *ms = attn_median(t->times, n);
    *runs = n;
done:
    return rc;
}

extern "C" int attn_gpu_available(char *msg, size_t msg_len)
{
    /* Cached: the answer does not change within a process, and the suites
     * ask once per test. -1 = not asked yet. */
    static int available = -1;
    static char why[160];
    if (available < 0) {
        int n = 0;
        cudaError_t e = cudaGetDeviceCount(&n);
        if (e == cudaSuccess && n > 0)
            e = cudaFree(0); /* create the context: catches busy/prohibited */
        if (e != cudaSuccess || n <= 0) {
            (void)cudaGetLastError();
            snprintf(why, sizeof why, "no CUDA device (%s)",
                     e != cudaSuccess ? cudaGetErrorString(e)
                                      : "cudaGetDeviceCount returned 0");
            available = 0;
        } else {
            available = 1;
        }
    }
    if (!available && msg && msg_len)
        snprintf(msg, msg_len, "%s", why);
    return available;
}

/** What one forward run needs: attn_gpu_run()'s device pointers. */
struct fwd_ctx {
    const attn_step *step;  /**< the step run */
    const attn_problem *p;  /**< its problem */
    const float *q;         /**< Q on the device (float steps) */
    const float *k;         /**< K on the device (float steps) */
    const float *v;         /**< V on the device (float steps) */
    float *o;               /**< O on the device (float steps) */
    float *lse;             /**< LSE on the device (float steps) */
    const attn_params *pp;  /**< typed steps: everything, device pointers */
    void *ws;               /**< the step's workspace */
    char *msg;              /**< where a failure is described */
    size_t msg_len;         /**< its size */
};

/** One run of the step's forward (ctx: fwd_ctx); its failure message into ctx. */
static int run_forward(void *ctx, cudaStream_t stream)
{
    fwd_ctx *c = (fwd_ctx *)ctx;
    attn_clear_error();
    int rc = c->pp ? c->step->params_forward(c->pp, c->ws, stream)
                   : c->step->gpu_forward(c->p, c->q, c->k, c->v, c->o, c->lse, c->ws, stream);
    if (rc)
        snprintf(c->msg, c->msg_len, "step %s forward failed (exit %d): %s", c->step->id, rc,
                 attn_last_error());
    return rc;
}

extern "C" int attn_gpu_run(const attn_step *step, const attn_problem *p, attn_dtype t,
                            attn_layout layout, const float *q, const float *k, const float *v,
                            float *o, float *lse, const attn_bench_opts *bench,
                            attn_run_stats *st, char *msg, size_t msg_len)
{
    /* Everything a `goto done` may reach is declared before the first one
     * (C++ forbids jumping over initializations). */
    int rc = 0, runs = 0;
    void *dq = NULL, *dk = NULL, *dv = NULL, *d_o = NULL;
    float *dlse = NULL;
    void *hq = NULL, *hk = NULL, *hv = NULL, *ho = NULL; /* typed host staging */
    void *ws = NULL;
    attn_gpu_timer t_ = {};
    fwd_ctx ctx = {};
    attn_params pp;
    size_t free_b = 0, total_b = 0;
    size_t qn, kvn, ln, es, ws_bytes, tensor_bytes;
    double ms = 0.0;
    const int typed = step && step->params_forward != NULL;

    if (msg && msg_len)
        msg[0] = '\0';
    if (st)
        memset(st, 0, sizeof *st);
    if (!attn_gpu_available(msg, msg_len))
        return ATTN_EXIT_RESOURCE;
    if (!step || (!step->gpu_forward && !typed)) {
        snprintf(msg, msg_len, "step %s has no GPU forward", step ? step->id : "(null)");
        return ATTN_EXIT_BAD_INPUT;
    }
    if ((rc = attn_problem_validate(p, msg, msg_len)) ||
        (rc = attn_step_takes(step, t, layout, msg, msg_len)))
        return rc;
    if (step->supports && (rc = step->supports(p, msg, msg_len)))
        return rc;

    qn = attn_q_elems(p);
    kvn = attn_kv_elems(p);
    ln = attn_lse_elems(p);
    es = typed ? attn_dtype_size(t) : sizeof(float);
    ws_bytes = step->workspace_bytes ? step->workspace_bytes(p) : 0;
    tensor_bytes = (2 * qn + 2 * kvn) * es + ln * sizeof(float);

    /* Free memory before we take any: the figure the OOM message reports. */
    if ((rc = HOST_CALL(cudaMemGetInfo(&free_b, &total_b), msg, msg_len)))
        goto done;

    /* Allocate everything first, the workspace (the big one for step 04)
     * before the tensors' copies: a run that cannot fit fails here, before
     * any output is touched. */
    if (attn_dev_alloc(&dq, qn * es) != cudaSuccess ||
        attn_dev_alloc(&dk, kvn * es) != cudaSuccess ||
        attn_dev_alloc(&dv, kvn * es) != cudaSuccess ||
        attn_dev_alloc(&d_o, qn * es) != cudaSuccess ||
        attn_dev_alloc((void **)&dlse, ln * sizeof(float)) != cudaSuccess ||
        attn_dev_alloc(&ws, ws_bytes) != cudaSuccess) {
        snprintf(msg, msg_len,
                 "out of device memory: needed %zu bytes (%zu workspace + "
                 "%zu for Q, K, V, O, LSE), %zu free of %zu",
                 ws_bytes + tensor_bytes, ws_bytes, tensor_bytes, free_b,
                 total_b);
        rc = ATTN_EXIT_RESOURCE;
        goto done;
    }
    if ((rc = attn_timer_open(&t_, bench, tensor_bytes, msg, msg_len)))
        goto done;

    if (typed) {
        /* Converted once on the host to the step's type and layout; O gets
         * the caller's poisoned O, converted too, so an element the step
         * does not write fails the check. */
        hq = malloc(qn * es), hk = malloc(kvn * es), hv = malloc(kvn * es), ho = malloc(qn * es);
        if (!hq || !hk || !hv || !ho) {
            snprintf(msg, msg_len, "out of host memory: needed %zu bytes for the %s copies",
                     (2 * qn + 2 * kvn) * es, attn_dtype_name(t));
            rc = ATTN_EXIT_RESOURCE;
            goto done;
        }
        if ((rc = attn_typed_setup(&pp, step, p, t, layout, q, k, v, o, hq, hk, hv, ho, dq, dk,
                                   dv, d_o, dlse, msg, msg_len)))
            goto done;
        if ((rc = HOST_CALL(cudaMemcpyAsync(dq, hq, qn * es, cudaMemcpyHostToDevice, t_.stream), msg, msg_len)) ||
            (rc = HOST_CALL(cudaMemcpyAsync(dk, hk, kvn * es, cudaMemcpyHostToDevice, t_.stream), msg, msg_len)) ||
            (rc = HOST_CALL(cudaMemcpyAsync(dv, hv, kvn * es, cudaMemcpyHostToDevice, t_.stream), msg, msg_len)) ||
            (rc = HOST_CALL(cudaMemcpyAsync(d_o, ho, qn * es, cudaMemcpyHostToDevice, t_.stream), msg, msg_len)))
            goto done;
    } else {
        if ((rc = HOST_CALL(cudaMemcpyAsync(dq, q, qn * es, cudaMemcpyHostToDevice, t_.stream), msg, msg_len)) ||
            (rc = HOST_CALL(cudaMemcpyAsync(dk, k, kvn * es, cudaMemcpyHostToDevice, t_.stream), msg, msg_len)) ||
            (rc = HOST_CALL(cudaMemcpyAsync(dv, v, kvn * es, cudaMemcpyHostToDevice, t_.stream), msg, msg_len)))
            goto done;
        /* Poison: an element the step does not write keeps ATTN_POISON and
         * the check fails. */
        if ((rc = HOST_CALL(attn_dev_fill((float *)d_o, qn, ATTN_POISON, t_.stream), msg, msg_len)))
            goto done;
    }
    /* LSE poisoned too; a workspace value read before it is written is NaN. */
    if ((rc = HOST_CALL(attn_dev_fill(dlse, ln, ATTN_POISON, t_.stream), msg, msg_len)))
        goto done;
    if (ws_bytes &&
        (rc = HOST_CALL(cudaMemsetAsync(ws, 0xff, ws_bytes, t_.stream), msg, msg_len))) /* NaN bits */
        goto done;
    if ((rc = HOST_CALL(cudaStreamSynchronize(t_.stream), msg, msg_len)))
        goto done;

    /* Without --bench: one run, timed (it includes one-time setup such as a
     * cuBLAS handle's creation; --bench gives the steady-state figure). */
    ctx = fwd_ctx{step, p, (const float *)dq, (const float *)dk, (const float *)dv, (float *)d_o,
                  dlse, typed ? &pp : NULL, ws, msg, msg_len};
    if ((bench && (rc = attn_timer_warm_up(&t_, bench, run_forward, &ctx, msg, msg_len))) ||
        (rc = attn_timer_run(&t_, bench ? bench->max_ms : 0.0, run_forward, &ctx, &ms, &runs, msg,
                             msg_len)))
        goto done;
    if (st) {
        st->ms = ms;
        st->runs = runs;
    }
    /* Catch asynchronous faults of the last run before reading results. */
    if ((rc = HOST_CALL(cudaStreamSynchronize(t_.stream), msg, msg_len)) ||
        (rc = HOST_CALL(cudaGetLastError(), msg, msg_len)))
        goto done;

    if (typed) {
        if ((rc = HOST_CALL(cudaMemcpy(ho, d_o, qn * es, cudaMemcpyDeviceToHost), msg, msg_len)))
            goto done;
        if ((rc = attn_from_typed(o, ho, t, layout, p->batch, p->heads_q, p->seqlen_q, p->head_dim))) {
            snprintf(msg, msg_len, "%s", attn_last_error());
            goto done;
        }
    } else if ((rc = HOST_CALL(cudaMemcpy(o, d_o, qn * es, cudaMemcpyDeviceToHost), msg, msg_len))) {
        goto done;
    }
    if ((rc = HOST_CALL(cudaMemcpy(lse, dlse, ln * sizeof(float), cudaMemcpyDeviceToHost), msg, msg_len)))
        goto done;
    if (st)
        st->extra_bytes = ws_bytes;

done:
    /* Frees run even after an error; their own errors are ignored (after a
     * sticky fault they all fail, and rc already says 3). */
    attn_timer_close(&t_);
    (void)cudaFree(ws);
    (void)cudaFree(dlse);
    (void)cudaFree(d_o);
    (void)cudaFree(dv);
    (void)cudaFree(dk);
    (void)cudaFree(dq);
    free(hq), free(hk), free(hv), free(ho);
    if (rc == ATTN_EXIT_RESOURCE || rc == ATTN_EXIT_BAD_INPUT)
        (void)cudaGetLastError();
    return rc;
}
