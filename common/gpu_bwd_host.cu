/**
 * @file gpu_bwd_host.cu
 * @brief The host side of a GPU backward step: device check, copies,
 * forward for O and LSE, backward, timing.
 *
 * The backward runner beside gpu_host.cu's forward one (attn_gpu_run()),
 * on the same helpers (gpu_host.h) and with the same guarantees: exit 3 "no CUDA device" or "out of device memory: needed N
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

#include "common.h"
#include "gpu_host.h"

/** What one run needs: attn_bwd_gpu_run()'s device pointers, and which
 *  passes to run (the forward, the backward, or both in turn). */
struct bwd_ctx {
    const attn_step *step;     /**< the backward step; step->forward its forward */
    const attn_problem *p;     /**< its problem */
    const float *q;            /**< Q on the device */
    const float *k;            /**< K on the device */
    const float *v;            /**< V on the device */
    const float *dout;         /**< dO on the device */
    float *o;                  /**< O on the device (the forward writes it) */
    float *lse;                /**< LSE on the device (the forward writes it) */
    float *dq;                 /**< dQ on the device */
    float *dk;                 /**< dK on the device */
    float *dv;                 /**< dV on the device */
    int deterministic;         /**< --deterministic */
    int forward;               /**< run the forward */
    int backward;              /**< then the backward */
    void *fws;                 /**< the forward's workspace */
    void *bws;                 /**< the backward's workspace */
    char *msg;                 /**< where a failure is described */
    size_t msg_len;            /**< its size */
};

/** One timed unit of a backward run: the forward, the backward, or both (ctx: bwd_ctx). */
static int run_passes(void *ctx, cudaStream_t stream)
{
    bwd_ctx *c = (bwd_ctx *)ctx;
    int rc = 0;
    const char *what = "forward";
    attn_clear_error();
    if (c->forward)
        rc = c->step->forward->gpu_forward(c->p, c->q, c->k, c->v, c->o, c->lse, c->fws, stream);
    if (!rc && c->backward) {
        what = "backward";
        rc = c->step->gpu_backward(c->p, c->q, c->k, c->v, c->o, c->lse, c->dout, c->dq, c->dk,
                                   c->dv, c->deterministic, c->bws, stream);
    }
    if (rc)
        snprintf(c->msg, c->msg_len, "step %s: %s failed (exit %d): %s", c->step->id, what, rc,
                 attn_last_error());
    return rc;
}

extern "C" int attn_bwd_gpu_run(const attn_step *step, const attn_problem *p,
                                const float *q, const float *k, const float *v,
                                const float *dout, float *o, float *lse, float *dq,
                                float *dk, float *dv, int deterministic, int given_forward,
                                const attn_bench_opts *bench, attn_bwd_stats *st,
                                char *msg, size_t msg_len)
{
    int rc = 0, runs = 0;
    float *d_q = NULL, *d_k = NULL, *d_v = NULL, *d_do = NULL, *d_o = NULL, *d_lse = NULL;
    float *d_dq = NULL, *d_dk = NULL, *d_dv = NULL;
    void *fws = NULL, *bws = NULL;
    attn_gpu_timer t = {};
    bwd_ctx ctx = {};
    size_t free_b = 0, total_b = 0, qe, kve, le, fws_bytes, bws_bytes, tensor_bytes;
    double ms = 0.0;
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
    const size_t F = sizeof(float); /* every tensor of a float step */
    tensor_bytes = (5 * qe + 4 * kve + le) * F;
    if ((rc = HOST_CALL(cudaMemGetInfo(&free_b, &total_b), msg, msg_len)))
        goto done;
    /* the backward's workspace first: for the stored-P baseline it is the big one */
    if (attn_dev_alloc(&bws, bws_bytes) != cudaSuccess || attn_dev_alloc(&fws, fws_bytes) != cudaSuccess ||
        attn_dev_alloc((void **)&d_q, qe * F) != cudaSuccess ||
        attn_dev_alloc((void **)&d_k, kve * F) != cudaSuccess ||
        attn_dev_alloc((void **)&d_v, kve * F) != cudaSuccess ||
        attn_dev_alloc((void **)&d_do, qe * F) != cudaSuccess ||
        attn_dev_alloc((void **)&d_o, qe * F) != cudaSuccess ||
        attn_dev_alloc((void **)&d_lse, le * F) != cudaSuccess ||
        attn_dev_alloc((void **)&d_dq, qe * F) != cudaSuccess ||
        attn_dev_alloc((void **)&d_dk, kve * F) != cudaSuccess ||
        attn_dev_alloc((void **)&d_dv, kve * F) != cudaSuccess) {
        snprintf(msg, msg_len,
                 "out of device memory: needed %zu bytes (%zu backward workspace + %zu forward "
                 "workspace + %zu for Q, K, V, dO, O, LSE, dQ, dK, dV), %zu free of %zu",
                 bws_bytes + fws_bytes + tensor_bytes, bws_bytes, fws_bytes, tensor_bytes,
                 free_b, total_b);
        rc = ATTN_EXIT_RESOURCE;
        goto done;
    }
    if ((rc = attn_timer_open(&t, bench, tensor_bytes, msg, msg_len)))
        goto done;
    if ((rc = HOST_CALL(cudaMemcpyAsync(d_q, q, qe * F, cudaMemcpyHostToDevice, t.stream), msg, msg_len)))
        goto done;
    if ((rc = HOST_CALL(cudaMemcpyAsync(d_k, k, kve * F, cudaMemcpyHostToDevice, t.stream), msg, msg_len)))
        goto done;
    if ((rc = HOST_CALL(cudaMemcpyAsync(d_v, v, kve * F, cudaMemcpyHostToDevice, t.stream), msg, msg_len)))
        goto done;
    if ((rc = HOST_CALL(cudaMemcpyAsync(d_do, dout, qe * F, cudaMemcpyHostToDevice, t.stream), msg, msg_len)))
        goto done;
    if (given_forward) { /* O and LSE are inputs: the caller's forward */
        if ((rc = HOST_CALL(cudaMemcpyAsync(d_o, o, qe * F, cudaMemcpyHostToDevice, t.stream), msg, msg_len)) ||
            (rc = HOST_CALL(cudaMemcpyAsync(d_lse, lse, le * F, cudaMemcpyHostToDevice, t.stream), msg, msg_len)))
            goto done;
    } else if ((rc = HOST_CALL(attn_dev_fill(d_o, qe, ATTN_POISON, t.stream), msg, msg_len)) ||
               (rc = HOST_CALL(attn_dev_fill(d_lse, le, ATTN_POISON, t.stream), msg, msg_len))) {
        goto done;
    }
    if ((rc = HOST_CALL(attn_dev_fill(d_dq, qe, ATTN_POISON, t.stream), msg, msg_len)))
        goto done;
    if ((rc = HOST_CALL(attn_dev_fill(d_dk, kve, ATTN_POISON, t.stream), msg, msg_len)))
        goto done;
    if ((rc = HOST_CALL(attn_dev_fill(d_dv, kve, ATTN_POISON, t.stream), msg, msg_len)))
        goto done;
    if (fws_bytes &&
        (rc = HOST_CALL(cudaMemsetAsync(fws, 0xff, fws_bytes, t.stream), msg, msg_len)))
        goto done; /* NaN bits */
    if (bws_bytes &&
        (rc = HOST_CALL(cudaMemsetAsync(bws, 0xff, bws_bytes, t.stream), msg, msg_len)))
        goto done;
    if ((rc = HOST_CALL(cudaStreamSynchronize(t.stream), msg, msg_len)))
        goto done;

    ctx = bwd_ctx{step, p, d_q, d_k, d_v, d_do, d_o, d_lse, d_dq, d_dk, d_dv, deterministic,
                  1, 0, fws, bws, msg, msg_len};
    /* the forward the backward differentiates: O and LSE */
    if (!given_forward && (rc = run_passes(&ctx, t.stream)))
        goto done;
    ctx.backward = 1;
    if (!bench || given_forward) {
        ctx.forward = 0; /* the backward alone, one timed run */
        if (bench && (rc = attn_timer_warm_up(&t, bench, run_passes, &ctx, msg, msg_len)))
            goto done;
        if ((rc = attn_timer_run(&t, bench ? bench->max_ms : 0.0, run_passes, &ctx, &ms, &runs,
                                 msg, msg_len)))
            goto done;
        if (st) {
            st->ms_bwd = ms;
            st->runs = runs;
        }
    } else {
        /* warm-up and the first pass: forward + backward; the second: backward alone */
        if ((rc = attn_timer_warm_up(&t, bench, run_passes, &ctx, msg, msg_len)) ||
            (rc = attn_timer_run(&t, bench->max_ms, run_passes, &ctx, &ms, &runs, msg, msg_len)))
            goto done;
        if (st)
            st->ms_fwd_bwd = ms;
        ctx.forward = 0;
        if ((rc = attn_timer_run(&t, bench->max_ms, run_passes, &ctx, &ms, &runs, msg, msg_len)))
            goto done;
        if (st) {
            st->ms_bwd = ms;
            st->runs = runs;
        }
    }
    if ((rc = HOST_CALL(cudaStreamSynchronize(t.stream), msg, msg_len)))
        goto done;
    if ((rc = HOST_CALL(cudaGetLastError(), msg, msg_len)))
        goto done;
    if (!given_forward &&
        ((rc = HOST_CALL(cudaMemcpy(o, d_o, qe * F, cudaMemcpyDeviceToHost), msg, msg_len)) ||
         (rc = HOST_CALL(cudaMemcpy(lse, d_lse, le * F, cudaMemcpyDeviceToHost), msg, msg_len))))
        goto done;
    if ((rc = HOST_CALL(cudaMemcpy(dq, d_dq, qe * F, cudaMemcpyDeviceToHost), msg, msg_len)))
        goto done;
    if ((rc = HOST_CALL(cudaMemcpy(dk, d_dk, kve * F, cudaMemcpyDeviceToHost), msg, msg_len)))
        goto done;
    if ((rc = HOST_CALL(cudaMemcpy(dv, d_dv, kve * F, cudaMemcpyDeviceToHost), msg, msg_len)))
        goto done;
    if (st)
        st->extra_bytes = bws_bytes;

done:
    attn_timer_close(&t);
    (void)cudaFree(bws);
    (void)cudaFree(fws);
    (void)cudaFree(d_q), (void)cudaFree(d_k), (void)cudaFree(d_v), (void)cudaFree(d_do);
    (void)cudaFree(d_o), (void)cudaFree(d_lse);
    (void)cudaFree(d_dq), (void)cudaFree(d_dk), (void)cudaFree(d_dv);
    if (rc)
        (void)cudaGetLastError();
    return rc;
}
