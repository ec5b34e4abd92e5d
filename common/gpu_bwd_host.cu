/**
 * @file gpu_bwd_host.cu
 * @brief The host side of a GPU backward step: device check, copies,
 * forward for O and LSE, backward, timing.
 *
 * The backward twin of gpu_host.cu's attn_gpu_run(), with the same
 * guarantees: exit 3 "no CUDA device" or "out of device memory: needed N
 * bytes …, M free" (checked before anything runs; host outputs untouched),
 * exit 2 when the step refuses the shape; every output poisoned on the
 * device (ATTN_POISON) and the workspace filled with NaN before the first
 * run; timing with CUDA events around the step alone, after warm-up, median,
 * capped by time, L2 flushed before each timed run when the tensors fit in
 * it; every allocation freed on every path.
 */
#include <cuda_runtime.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backward.h"
#include "gpu_host.h"

/** On a failed step call: message naming the step, keep its exit code. */
#define STEP_TRY(what, call)                                                  \
    do {                                                                      \
        rc = (call);                                                          \
        if (rc) {                                                             \
            snprintf(msg, msg_len, "step %s: %s failed (exit %d)", step->id,  \
                     what, rc);                                               \
            goto done;                                                        \
        }                                                                     \
    } while (0)

extern "C" int attn_bwd_gpu_run(const attn_bwd_step *step, const attn_problem *p,
                                const float *q, const float *k, const float *v,
                                const float *dout, float *o, float *lse, float *dq,
                                float *dk, float *dv, int deterministic,
                                const attn_bench_opts *bench, attn_bwd_stats *st,
                                char *msg, size_t msg_len)
{
    int rc = 0;
    float *d_q = NULL, *d_k = NULL, *d_v = NULL, *d_do = NULL, *d_o = NULL, *d_lse = NULL;
    float *d_dq = NULL, *d_dk = NULL, *d_dv = NULL;
    void *fws = NULL, *bws = NULL, *flush = NULL;
    cudaStream_t stream = NULL;
    cudaEvent_t ev0 = NULL, ev1 = NULL;
    double *times = NULL;
    size_t free_b = 0, total_b = 0, flush_bytes = 0, qe, kve, le, fws_bytes, bws_bytes,
           tensor_bytes;
    int iters = 1;
    float ms = 0.0f;
    const attn_step *fwd = step ? step->forward : NULL;

    if (msg && msg_len)
        msg[0] = '\0';
    if (st)
        memset(st, 0, sizeof *st);
    if (!attn_gpu_available(msg, msg_len))
        return ATTN_EXIT_RESOURCE;
    if (!step || !fwd || !fwd->gpu_forward || !step->gpu_backward) {
        snprintf(msg, msg_len, "step %s has no GPU forward or backward", step ? step->id : "(null)");
        return ATTN_EXIT_BAD_INPUT;
    }
    if ((rc = attn_problem_validate(p, msg, msg_len)) ||
        (fwd->supports && (rc = fwd->supports(p, msg, msg_len))) ||
        (step->supports && (rc = step->supports(p, msg, msg_len))))
        return rc;

    qe = attn_q_elems(p);
    kve = attn_kv_elems(p);
    le = attn_lse_elems(p);
    fws_bytes = fwd->workspace_bytes ? fwd->workspace_bytes(p) : 0;
    bws_bytes = step->workspace_bytes ? step->workspace_bytes(p) : 0;
    tensor_bytes = (5 * qe + 4 * kve + le) * sizeof(float);
    HOST_TRY(cudaMemGetInfo(&free_b, &total_b));
    /* the backward's workspace first: for the stored-P baseline it is the big one */
    if (attn_dev_alloc(&bws, bws_bytes) != cudaSuccess || attn_dev_alloc(&fws, fws_bytes) != cudaSuccess ||
        attn_dev_alloc((void **)&d_q, qe * 4) != cudaSuccess ||
        attn_dev_alloc((void **)&d_k, kve * 4) != cudaSuccess ||
        attn_dev_alloc((void **)&d_v, kve * 4) != cudaSuccess ||
        attn_dev_alloc((void **)&d_do, qe * 4) != cudaSuccess ||
        attn_dev_alloc((void **)&d_o, qe * 4) != cudaSuccess ||
        attn_dev_alloc((void **)&d_lse, le * 4) != cudaSuccess ||
        attn_dev_alloc((void **)&d_dq, qe * 4) != cudaSuccess ||
        attn_dev_alloc((void **)&d_dk, kve * 4) != cudaSuccess ||
        attn_dev_alloc((void **)&d_dv, kve * 4) != cudaSuccess) {
        snprintf(msg, msg_len,
                 "out of device memory: needed %zu bytes (%zu backward workspace + %zu forward "
                 "workspace + %zu for Q, K, V, dO, O, LSE, dQ, dK, dV), %zu free of %zu",
                 bws_bytes + fws_bytes + tensor_bytes, bws_bytes, fws_bytes, tensor_bytes,
                 free_b, total_b);
        rc = ATTN_EXIT_RESOURCE;
        goto done;
    }
    HOST_TRY(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    HOST_TRY(cudaEventCreate(&ev0));
    HOST_TRY(cudaEventCreate(&ev1));
    HOST_TRY(cudaMemcpyAsync(d_q, q, qe * 4, cudaMemcpyHostToDevice, stream));
    HOST_TRY(cudaMemcpyAsync(d_k, k, kve * 4, cudaMemcpyHostToDevice, stream));
    HOST_TRY(cudaMemcpyAsync(d_v, v, kve * 4, cudaMemcpyHostToDevice, stream));
    HOST_TRY(cudaMemcpyAsync(d_do, dout, qe * 4, cudaMemcpyHostToDevice, stream));
    HOST_TRY(attn_dev_fill(d_o, qe, ATTN_POISON, stream));
    HOST_TRY(attn_dev_fill(d_lse, le, ATTN_POISON, stream));
    HOST_TRY(attn_dev_fill(d_dq, qe, ATTN_POISON, stream));
    HOST_TRY(attn_dev_fill(d_dk, kve, ATTN_POISON, stream));
    HOST_TRY(attn_dev_fill(d_dv, kve, ATTN_POISON, stream));
    if (fws_bytes)
        HOST_TRY(cudaMemsetAsync(fws, 0xff, fws_bytes, stream)); /* NaN bits */
    if (bws_bytes)
        HOST_TRY(cudaMemsetAsync(bws, 0xff, bws_bytes, stream));
    HOST_TRY(cudaStreamSynchronize(stream));

    /* the forward the backward differentiates: O and LSE */
    STEP_TRY("forward", fwd->gpu_forward(p, d_q, d_k, d_v, d_o, d_lse, fws, stream));

    if (!bench) {
        HOST_TRY(cudaEventRecord(ev0, stream));
        STEP_TRY("backward", step->gpu_backward(p, d_q, d_k, d_v, d_o, d_lse, d_do, d_dq, d_dk,
                                                d_dv, deterministic, bws, stream));
        HOST_TRY(cudaEventRecord(ev1, stream));
        HOST_TRY(cudaEventSynchronize(ev1));
        HOST_TRY(cudaEventElapsedTime(&ms, ev0, ev1));
        if (st) {
            st->ms_bwd = ms;
            st->runs = 1;
        }
    } else {
        double warm_start = attn_now_ms();
        iters = bench->iters > 0 ? bench->iters : 1;
        times = (double *)malloc((size_t)iters * sizeof(double));
        if (!times) {
            snprintf(msg, msg_len, "out of host memory for %d timings", iters);
            rc = ATTN_EXIT_RESOURCE;
            goto done;
        }
        HOST_TRY(attn_l2_flush_alloc(tensor_bytes, &flush, &flush_bytes));
        for (int w = 0; w < bench->warmup; w++) {
            STEP_TRY("forward", fwd->gpu_forward(p, d_q, d_k, d_v, d_o, d_lse, fws, stream));
            STEP_TRY("backward", step->gpu_backward(p, d_q, d_k, d_v, d_o, d_lse, d_do, d_dq,
                                                    d_dk, d_dv, deterministic, bws, stream));
            HOST_TRY(cudaStreamSynchronize(stream));
            if (bench->max_ms > 0 && attn_now_ms() - warm_start > bench->max_ms)
                break;
        }
        /* pass 0: forward + backward; pass 1: backward alone */
        for (int pass = 0; pass < 2; pass++) {
            double spent = 0;
            int runs = 0;
            while (runs < iters) {
                if (flush_bytes)
                    HOST_TRY(cudaMemsetAsync(flush, runs & 1, flush_bytes, stream));
                HOST_TRY(cudaEventRecord(ev0, stream));
                if (pass == 0)
                    STEP_TRY("forward", fwd->gpu_forward(p, d_q, d_k, d_v, d_o, d_lse, fws, stream));
                STEP_TRY("backward", step->gpu_backward(p, d_q, d_k, d_v, d_o, d_lse, d_do, d_dq,
                                                        d_dk, d_dv, deterministic, bws, stream));
                HOST_TRY(cudaEventRecord(ev1, stream));
                HOST_TRY(cudaEventSynchronize(ev1));
                HOST_TRY(cudaEventElapsedTime(&ms, ev0, ev1));
                times[runs++] = ms;
                spent += ms;
                if (bench->max_ms > 0 && spent >= bench->max_ms)
                    break;
            }
            if (st) {
                if (pass == 0)
                    st->ms_fwd_bwd = attn_median(times, runs);
                else
                    st->ms_bwd = attn_median(times, runs), st->runs = runs;
            }
        }
    }
    HOST_TRY(cudaStreamSynchronize(stream));
    HOST_TRY(cudaGetLastError());
    HOST_TRY(cudaMemcpy(o, d_o, qe * 4, cudaMemcpyDeviceToHost));
    HOST_TRY(cudaMemcpy(lse, d_lse, le * 4, cudaMemcpyDeviceToHost));
    HOST_TRY(cudaMemcpy(dq, d_dq, qe * 4, cudaMemcpyDeviceToHost));
    HOST_TRY(cudaMemcpy(dk, d_dk, kve * 4, cudaMemcpyDeviceToHost));
    HOST_TRY(cudaMemcpy(dv, d_dv, kve * 4, cudaMemcpyDeviceToHost));
    if (st)
        st->extra_bytes = bws_bytes;

done:
    free(times);
    if (stream)
        (void)cudaStreamSynchronize(stream);
    if (ev0)
        (void)cudaEventDestroy(ev0);
    if (ev1)
        (void)cudaEventDestroy(ev1);
    if (stream)
        (void)cudaStreamDestroy(stream);
    (void)cudaFree(flush);
    (void)cudaFree(bws);
    (void)cudaFree(fws);
    (void)cudaFree(d_q), (void)cudaFree(d_k), (void)cudaFree(d_v), (void)cudaFree(d_do);
    (void)cudaFree(d_o), (void)cudaFree(d_lse);
    (void)cudaFree(d_dq), (void)cudaFree(d_dk), (void)cudaFree(d_dv);
    if (rc)
        (void)cudaGetLastError();
    return rc;
}
