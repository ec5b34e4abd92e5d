/*
 * Step 07's GPU code, run on the CPU (tests/emu07/run.sh builds this):
 *  1. bwd_kv_kernel (atomic and deterministic modes) and dq_kernel, from
 *     steps/07_backward/kernel.cuh as it is, run under the thread
 *     emulation of tests/emu07/cuda_runtime.h, against attn07_backward_cpu
 *     and, under the gradient rule of notes/design.md, the float64 oracle;
 *  2. steps/07_backward/standard_cublas.cu as it is: its call sequence, with
 *     a reference SGEMM in place of cuBLAS (tests/emu07/cublas_v2.h) and its
 *     two row kernels as host loops (LAUNCH_ROWS, below), against the oracle.
 * δ is computed on the host (delta_kernel uses warp shuffles). Exit 0 when
 * every check passes.
 */
#include <cuda_runtime.h> /* tests/emu07/cuda_runtime.h: -Itests/emu07 comes first */

#include "common.h"
#include "kernel.cuh" /* steps/07_backward/kernel.cuh */

static int host_keys(int i, int sq, int sk, int causal)
{
    if (!causal)
        return sk;
    long long n = (long long)i + sk - sq + 1;
    return n < 0 ? 0 : (n > sk ? sk : (int)n);
}
static void host_softmax_kernel(float *s, size_t rows, int sq, int sk, int causal)
{
    for (size_t r = 0; r < rows; r++) {
        float *row = s + r * sk, m = -INFINITY, l = 0;
        int n = host_keys((int)(r % sq), sq, sk, causal);
        for (int j = 0; j < n; j++) m = fmaxf(m, row[j]);
        for (int j = 0; j < n; j++) l += expf(row[j] - m);
        for (int j = 0; j < sk; j++) row[j] = j < n ? expf(row[j] - m) / l : 0.0f;
    }
}
static void host_ds_kernel(const float *pr, float *ds, size_t rows, int sq, int sk, int causal)
{
    for (size_t r = 0; r < rows; r++) {
        const float *p = pr + r * sk;
        float *x = ds + r * sk, d = 0;
        int n = host_keys((int)(r % sq), sq, sk, causal);
        for (int j = 0; j < n; j++) d += p[j] * x[j];
        for (int j = 0; j < sk; j++) x[j] = j < n ? p[j] * (x[j] - d) : 0.0f;
    }
}

/* the two row kernels of the stored-P backward, as the host loops above */
#define LAUNCH_ROWS(kernel, blocks, stream) host_##kernel
#include "standard_cublas.cu" /* steps/07_backward/standard_cublas.cu */

/* what standard_cublas.cu links against in the real build */
int attn_cublas_handle(attn_cublas_t *out)
{
    static cublasContext ctx;
    *out = &ctx;
    return 0;
}
extern "C" const attn_step attn06_step = {};
extern "C" int attn_bwd_gpu_run(const attn_step *, const attn_problem *, const float *,
                                const float *, const float *, const float *, float *, float *,
                                float *, float *, float *, int, int, const attn_bench_opts *,
                                attn_bwd_stats *, char *, size_t)
{
    return ATTN_EXIT_RESOURCE;
}

template <class F> static void launch(int blocks, F f)
{
    for (int b = 0; b < blocks; b++) {
        std::barrier<> bar(NT);
        g_bar = &bar;
        for (auto &x : g_or)
            x.store(0);
        std::vector<std::thread> th;
        for (int t = 0; t < NT; t++)
            th.emplace_back([&, t, b] { threadIdx.x = t; blockIdx.x = b; f(); });
        for (auto &x : th)
            x.join();
    }
}

template <int D>
static void run(const attn_problem *p, const float *q, const float *k, const float *v,
                const float *o, const float *lse, const float *dout, float *dq, float *dk,
                float *dv, int det)
{
    int sq = p->seqlen_q, sk = p->seqlen_k, d = p->head_dim;
    constexpr int BC = Cols<D>::BC_KV;
    int tc = (sk + BC - 1) / BC, tr = (sq + BR - 1) / BR;
    size_t rows = attn_lse_elems(p);
    std::vector<float> delta(rows);
    for (size_t r = 0; r < rows; r++) {
        float a = 0;
        for (int c = 0; c < d; c++)
            a += o[r * d + c] * dout[r * d + c];
        delta[r] = a;
    }
    float scale = attn_scale(p);
    int hq = p->heads_q, hkv = p->heads_kv, causal = p->causal;
    if (!det) {
        std::fill(dq, dq + attn_q_elems(p), 0.0f);
        launch(p->batch * hkv * tc, [&] {
            bwd_kv_kernel<D, true>(q, k, v, dout, lse, delta.data(), dq, dk, dv, hq, hkv, sq, sk,
                                   d, causal, scale, tc);
        });
    } else {
        launch(p->batch * hkv * tc, [&] {
            bwd_kv_kernel<D, false>(q, k, v, dout, lse, delta.data(), dq, dk, dv, hq, hkv, sq, sk,
                                    d, causal, scale, tc);
        });
        launch(p->batch * hq * tr, [&] {
            dq_kernel<D>(q, k, v, dout, lse, delta.data(), dq, hq, hkv, sq, sk, d, causal, scale,
                         tr);
        });
    }
}

/* The gradient rule (notes/design.md) for three gradients; prints and returns failures. */
static int rule(const attn_problem *p, const char *what, float *const got[3],
                float *const base[3], double *const ref[3])
{
    size_t n[3] = {attn_q_elems(p), attn_kv_elems(p), attn_kv_elems(p)};
    int bad = 0;
    for (int t = 0; t < 3; t++) {
        attn_err eb = attn_compare(base[t], ref[t], n[t]), e = attn_compare(got[t], ref[t], n[t]);
        for (size_t i = 0; i < n[t]; i++)
            if (got[t][i] == ATTN_POISON || !std::isfinite(got[t][i]))
                e.nan_count++;
        int ok = attn_rule_ok(&e, eb.max_abs, 3.0, 1e-6);
        printf("  %-22s %s: max_abs_err %.2e (step 01: %.2e) %s\n", what, t == 0 ? "dQ" : t == 1 ? "dK" : "dV",
               e.max_abs, eb.max_abs, ok ? "ok" : "FAIL");
        bad += !ok;
    }
    return bad;
}

int main()
{
    const attn_problem P[] = {
        {2, 4, 2, 70, 130, 64, 1, 0},   {1, 3, 1, 130, 45, 20, 1, 0}, {1, 2, 2, 33, 97, 128, 0, 0},
        {1, 2, 1, 1, 1, 32, 1, 0},      {2, 8, 1, 65, 64, 100, 1, 0.3f}, {1, 2, 2, 203, 113, 64, 1, 0},
    };
    int fails = 0;
    for (const attn_problem &p : P) {
        size_t qn = attn_q_elems(&p), kvn = attn_kv_elems(&p), ln = attn_lse_elems(&p);
        std::vector<float> q(qn), k(kvn), v(kvn), dout(qn), o(qn), lse(ln), bq(qn), bk(kvn), bv(kvn);
        std::vector<double> rq(qn), rk(kvn), rv(kvn);
        attn_fill_normal(q.data(), qn, 5, ATTN_STREAM_Q);
        attn_fill_normal(k.data(), kvn, 5, ATTN_STREAM_K);
        attn_fill_normal(v.data(), kvn, 5, ATTN_STREAM_V);
        attn_fill_normal(dout.data(), qn, 5, ATTN_STREAM_DO);
        attn03_forward(&p, q.data(), k.data(), v.data(), o.data(), lse.data());
        attn01_backward(&p, q.data(), k.data(), v.data(), dout.data(), bq.data(), bk.data(), bv.data());
        attn_oracle_backward(&p, q.data(), k.data(), v.data(), dout.data(), rq.data(), rk.data(), rv.data());
        float *base[3] = {bq.data(), bk.data(), bv.data()};
        double *ref[3] = {rq.data(), rk.data(), rv.data()};
        printf("B=%d Hq=%d Hkv=%d Sq=%d Sk=%d D=%d causal=%d scale=%g\n", p.batch, p.heads_q,
               p.heads_kv, p.seqlen_q, p.seqlen_k, p.head_dim, p.causal, (double)p.softmax_scale);
        for (int det = 0; det < 3; det++) { /* 0, 1: the kernel's two modes; 2: stored-P */
            std::vector<float> dq(qn, ATTN_POISON), dk(kvn, ATTN_POISON), dv(kvn, ATTN_POISON);
            int D = p.head_dim <= 32 ? 32 : p.head_dim <= 64 ? 64 : 128;
            if (det == 2) {
                std::vector<float> ws(attn07_standard_workspace_bytes(&p) / 4);
                attn07_standard_backward(&p, q.data(), k.data(), v.data(), NULL, NULL, dout.data(),
                                         dq.data(), dk.data(), dv.data(), 0, ws.data(), NULL);
            } else if (D == 32) {
                run<32>(&p, q.data(), k.data(), v.data(), o.data(), lse.data(), dout.data(), dq.data(), dk.data(), dv.data(), det);
            } else if (D == 64) {
                run<64>(&p, q.data(), k.data(), v.data(), o.data(), lse.data(), dout.data(), dq.data(), dk.data(), dv.data(), det);
            } else {
                run<128>(&p, q.data(), k.data(), v.data(), o.data(), lse.data(), dout.data(), dq.data(), dk.data(), dv.data(), det);
            }
            float *got[3] = {dq.data(), dk.data(), dv.data()};
            fails += rule(&p, det == 0 ? "kernel, atomic dQ" : det == 1 ? "kernel, deterministic" : "stored-P (ref. SGEMM)",
                          got, base, ref);
        }
    }
    /* NaN in one row of Q, K or V (batch 0, head 0, middle row), causal:
     * the kernel's gradients must be NaN exactly where the oracle's are */
    const attn_problem PN[] = {{2, 4, 2, 70, 130, 64, 1, 0}, {1, 2, 1, 130, 45, 32, 1, 0},
                               {1, 2, 2, 97, 97, 128, 1, 0}};
    for (const attn_problem &p : PN)
        for (int which = 0; which < 3; which++) {
            size_t qn = attn_q_elems(&p), kvn = attn_kv_elems(&p), ln = attn_lse_elems(&p);
            std::vector<float> q(qn), k(kvn), v(kvn), dout(qn), o(qn), lse(ln);
            std::vector<double> rq(qn), rk(kvn), rv(kvn);
            attn_fill_normal(q.data(), qn, 6, ATTN_STREAM_Q);
            attn_fill_normal(k.data(), kvn, 6, ATTN_STREAM_K);
            attn_fill_normal(v.data(), kvn, 6, ATTN_STREAM_V);
            attn_fill_normal(dout.data(), qn, 6, ATTN_STREAM_DO);
            int D = p.head_dim;
            float *t = which == 0 ? q.data() : which == 1 ? k.data() : v.data();
            int row = which == 0 ? p.seqlen_q / 2 : p.seqlen_k / 2;
            for (int c = 0; c < D; c++)
                t[(size_t)row * D + c] = NAN;
            attn03_forward(&p, q.data(), k.data(), v.data(), o.data(), lse.data());
            attn_oracle_backward(&p, q.data(), k.data(), v.data(), dout.data(), rq.data(), rk.data(), rv.data());
            double *ref[3] = {rq.data(), rk.data(), rv.data()};
            size_t n[3] = {qn, kvn, kvn};
            for (int det = 0; det < 2; det++) {
                std::vector<float> dq(qn, ATTN_POISON), dk(kvn, ATTN_POISON), dv(kvn, ATTN_POISON);
                if (D == 32)
                    run<32>(&p, q.data(), k.data(), v.data(), o.data(), lse.data(), dout.data(), dq.data(), dk.data(), dv.data(), det);
                else if (D == 64)
                    run<64>(&p, q.data(), k.data(), v.data(), o.data(), lse.data(), dout.data(), dq.data(), dk.data(), dv.data(), det);
                else
                    run<128>(&p, q.data(), k.data(), v.data(), o.data(), lse.data(), dout.data(), dq.data(), dk.data(), dv.data(), det);
                float *got[3] = {dq.data(), dk.data(), dv.data()};
                for (int g = 0; g < 3; g++) {
                    attn_err e = attn_compare(got[g], ref[g], n[g]);
                    int ok = !e.nan_count && !e.nan_missing && !e.inf_mismatch;
                    printf("  Sq=%d Sk=%d D=%d NaN in %c, %s %s: NaN extra %zu, missing %zu %s\n",
                           p.seqlen_q, p.seqlen_k, D, "QKV"[which], det ? "deterministic" : "atomic",
                           g == 0 ? "dQ" : g == 1 ? "dK" : "dV", e.nan_count, e.nan_missing,
                           ok ? "ok" : "FAIL");
                    fails += !ok;
                }
            }
        }
    printf("emu07: %s\n", fails ? "FAIL" : "all checks passed");
    return fails != 0;
}
