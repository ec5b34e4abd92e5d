/*
 * tests/bench/bench.cu — the in-process GPU benchmark behind `make bench`.
 *
 * One process runs every GPU step on every shape of two sweeps and writes
 * the build/bench/results.csv that tests/bench/sweep.py writes (its columns,
 * its number formats, CRLF line ends as Python's csv module writes them),
 * so that
 *
 *     build/bin/bench                                   # both GPU sweeps
 *     python3 tests/bench/sweep.py --print build/bench/results.csv
 *
 * prints the usual tables. sweep.py ran one step program per point as a
 * subprocess, and each of those drew its 100M-element inputs on the host
 * first: a full 72-point, six-implementation sweep took longer than the
 * 10 minutes a GPU job may run. Here the inputs are drawn once, on the
 * device, and every point reuses the same buffers.
 *
 * The two sweeps (--sweep fp32|tc|all; default all). The CSV's `sweep`
 * column says which one a row belongs to:
 *   - `fp32`: the float steps in fp32, as before the tensor-core steps:
 *     steps 04, 05, 06 forward, step 07 backward. B = 1 (--batch),
 *     Hq = Hkv = 32 (--heads). A typed step whose caps take fp32 would run
 *     here too, through its params forward.
 *   - `tc`: the tensor-core sweep, the shapes of notes/08_tc_mma.md and of
 *     the FlashAttention papers: B = 16384 / N (--tc-tokens; B·N tokens
 *     constant, so every N does about the same work per token), Hq = Hkv =
 *     32. Every step with a params forward that takes fp16 or bf16 runs in
 *     fp16 at every N, and in bf16 at the N of --bf16-seqs (default 4096):
 *     the typed steps (08 on: whatever the registry lists, step 09 included
 *     without a line here) and step 04 (its `--dtype fp16|bf16` path:
 *     standard attention with cuBLAS tensor-core GEMMs, S and P in 16
 *     bits). Step 06 runs there in fp32 as the reference (TC_REF_STEP).
 *     The 16-bit inputs are the fp32 inputs rounded to nearest (one copy
 *     per type, made once, outside any timed region), contiguous BHSD.
 *
 * What is timed
 *   - forward steps: the forward, step->gpu_forward() on device buffers, or
 *     step->params_forward() on attn_params (the 16-bit copies, or the
 *     fp32 buffers for a typed step run in fp32);
 *   - step 07: the backward, attn07_step.gpu_backward(). Its forward
 *     (attn07_step.forward, step 06) runs once per shape first, untimed,
 *     for the O and LSE the backward reads (its own O and LSE buffers, so
 *     the forward steps timed beside it cannot touch them). CSV `ms` is the
 *     backward alone; `tflops` counts the FlashAttention convention for a
 *     backward, 2.5 x the forward FLOPs (attn_flops_forward()), as step 07's
 *     own `result:` line does; `extra_bytes` is its workspace (δ).
 * `tflops` is attn_flops_forward() / ms: 4·B·Hq·Sq·Sk·D, halved when
 * causal whatever the step skips (step 04 computes the whole product and
 * is still counted half). `extra_bytes` is the step's workspace_bytes() for
 * the shape, what the bench hands it: the size a step states by shape,
 * not by type (step 04 states fp32 S and P; at fp16/bf16 it uses half).
 *
 * Shapes (flags override): N in {512, 1024, 2048, 4096, 8192, 16384}
 * (Sq = Sk = N), D in {64, 128}, causal 0 and 1, for both sweeps.
 *
 * The timing discipline (notes/design.md, "Benchmark and timing"; the same
 * rules as attn_gpu_timer in common/gpu_host.h):
 *   - CUDA events around the step's launches alone: nothing else (no
 *     allocation, copy, fill) sits between the two events;
 *   - warm-up first: up to --warmup runs of each step, each waited for,
 *     a step's warm-up stopping once it has spent --max-ms of wall time;
 *   - then up to --iters timed runs of each step, a step stopping once its
 *     timed runs add up to --max-ms; the CSV has their median;
 *   - the L2 cache is flushed before every timed run: a write of a buffer of
 *     twice its size (attn_timer_run()'s flush). Always, not only where the
 *     tensors would fit in L2 as attn_timer_open() decides: here every step
 *     reads the same Q, K, V buffers, so without the flush a step could find
 *     the inputs the step before it left in L2. The write costs ~0.04 ms
 *     and is outside the timed region;
 *   - repeats are interleaved: for each shape, round r = 0, 1, … runs each
 *     step of the sweep once (04, 05, 06, 07, 04, 05, …; in the tc sweep
 *     04 fp16, 06, 08 fp16, 08 bf16, …), so a drift of the clocks or the
 *     temperature during a shape spreads over every step instead of
 *     favouring the one that ran first.
 *
 * A point is not timed, and its row says why (the `status` column, as
 * sweep.py writes it):
 *   - `refused`: the step's supports() or caps (type, head dim) refuse the
 *     shape, or its entry point returns 2; the note is the step's message;
 *   - `oom`: the step's workspace at this shape does not fit (step 04 keeps
 *     S and P, 2·B·Hq·N² floats: 64 GiB at N = 16384, B = 1); the note says
 *     how many bytes it needs;
 *   - `skipped`: one run, estimated from the step's time at the previous N
 *     (scaled by the FLOPs: N² at fixed B, N in the tc sweep), would take
 *     longer than --limit-s (as sweep.py's --gpu-limit-s), and every larger
 *     N of that (step, type, D, causal) after it;
 *   - `error`: the step returned 3 (a CUDA call it made failed) while the
 *     device stayed usable. A fault that breaks the device (an illegal
 *     address, a launch timeout) ends the program with exit 3 and its
 *     message, after writing the rows measured so far.
 *
 * Memory: Q, K, V, O, LSE (and for step 07 dO, its O and LSE, dQ, dK, dV)
 * are allocated once, at the largest shape of both sweeps (B·Hq·N·D is the
 * same, 16384·32·D, at every N of the tc sweep and at N = 16384 of the fp32
 * one), with fp16 and bf16 copies of Q, K, V and O where a sweep uses that
 * type; each point uses their prefix. One workspace is allocated once too:
 * the largest workspace any (step, shape) of the run needs that fits in the
 * device's free memory, leaving WS_HEADROOM for cuBLAS and the runtime; a
 * point that needs more is `oom`. The CSV is rewritten after every shape,
 * so a run cut short (a timeout's SIGTERM) keeps what it measured.
 *
 * Inputs: fill_normal_kernel is common/rng.c's generator on the device
 * (see there). Because element i of a tensor depends only on
 * (seed, stream, i), the prefix of the largest shape's tensor is the tensor
 * a step program with the same --seed draws for a smaller shape.
 *
 * Exit codes: 0 (also with no CUDA device: it prints `skipped: no CUDA
 * device …` and writes nothing), 2 for a bad flag, 3 for a CUDA fault or
 * when the tensors of the largest shape do not fit.
 *
 * Run time with the defaults (iters 20, max-ms 1000, warm-up 3) on one H200:
 * the fp32 sweep took 56 s for its 96 points (4 steps x 24 shapes), of
 * which step 05 (a run of 0.75 to 1.3 s at N = 16384, so 1 or 2 timed runs
 * there) takes about half. The tc sweep is estimated from the figures of
 * notes/08_tc_mma.md at about 21 s with step 08 (04 fp16, 06 and 08 fp16 at
 * 24 shapes, 04 and 08 bf16 at 4; its work doubles with N, so N = 16384 is
 * about half of it: 08 at ~35 ms a run, 06 at ~120 ms; 06 is half of the
 * sweep's time), and ~4 s more for each further typed step: about 1.5
 * minutes in all. The caps bound it on any GPU: per
 * step and point at most max-ms of warm-up plus max-ms of timed runs plus
 * one run, and --limit-s (10 s) skips points whose one run would be longer.
 * tests/bench/bench.mk builds it; `build/bin/bench --help` lists the flags;
 * tests/bench/gpu_bench.sh runs it with the PyTorch peers.
 */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "common.h"
#include "gpu_host.h"

/* The GPU steps, as the Makefile's step registry lists them
 * ($(BUILD)/gen/registry.c, made from every steps/NN_name/step.mk): a new
 * step is benchmarked without a line here. NULL-terminated. */
extern "C" const attn_step *const attn_gpu_steps[];

/** Most values a list flag (--seqs, --dims, --causal, --bf16-seqs, --steps) takes. */
#define MAX_LIST 16
/** Room for one message (a step's refusal, a CUDA error). */
#define MSG_LEN 512
/** Device memory left free beside the workspace: cuBLAS's own workspace,
 *  kernels' local memory, the runtime. */
#define WS_HEADROOM ((size_t)512 << 20)
/** The FlashAttention convention: a backward is 2.5 forwards' FLOPs. */
#define BWD_FLOP_FACTOR 2.5
/** The tc sweep's tokens per point, B·N (--tc-tokens): B = 16384 / N, the
 *  FlashAttention papers' and notes/08_tc_mma.md's shapes. */
#define TC_TOKENS 16384
/** The fp32 step the tc sweep runs beside the 16-bit ones, for reference:
 *  step 06, the FlashAttention-2 kernel the tensor-core steps start from. */
#define TC_REF_STEP "06"
/** The N at which the tc sweep also runs bf16 by default (--bf16-seqs). */
#define TC_BF16_SEQ 4096

/* ---- inputs on the device: common/rng.c, ported -------------------------- */

/**
 * SplitMix64 finalizer, bit for bit common/rng.c's mix64() (integer
 * arithmetic: host and device agree exactly).
 */
__host__ __device__ static inline uint64_t mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/** common/rng.c's unit(): uniform in (0, 1], 53 random bits, never 0. */
__device__ static inline double unit01(uint64_t bits)
{
    return (double)((bits >> 11) + 1) * (1.0 / 9007199254740992.0); /* 2^-53 */
}

/**
 * x[0..n) = standard normals: common/rng.c's attn_fill_normal() with its
 * per-stream @p key, one thread per pair (elements 2j and 2j+1 share the
 * uniforms of counters key + 2j and key + 2j + 1; Box–Muller), in double
 * precision like the host. The counters, the mixing and the uniforms are
 * the host's bit for bit; log, sqrt, cos and sin are CUDA's double-precision
 * functions instead of glibc's, which may round the last bit of a double
 * differently (CUDA documents 1-ulp bounds, glibc is nearly correctly
 * rounded), and that rarely survives the rounding to float. So the values
 * match the host generator up to those libm rounding differences: a separate
 * but near-identical stream, fine for timing and never used for correctness
 * (the step programs and suites check against the host's inputs).
 * `build/bin/bench --check-rng` counts the differences: on an H200 (CUDA 13)
 * the first 2^20 + 1 values of each of the four streams (seeds 1, 12345) were
 * bit-identical to the host's; that is what was seen, not a guarantee.
 */
static __global__ void fill_normal_kernel(float *x, size_t n, uint64_t key)
{
    const size_t pairs = (n + 1) / 2;
    for (size_t j = (size_t)blockIdx.x * blockDim.x + threadIdx.x; j < pairs;
         j += (size_t)gridDim.x * blockDim.x) {
        const size_t i = 2 * j;
        const uint64_t c = key + (uint64_t)j * 2; /* rng.c: key + (i / 2) * 2 */
        const double u1 = unit01(mix64(c)), u2 = unit01(mix64(c + 1));
        const double r = sqrt(-2.0 * log(u1)), t = 6.283185307179586 * u2;
        x[i] = (float)(r * cos(t));
        if (i + 1 < n)
            x[i + 1] = (float)(r * sin(t));
    }
}

/** Launch fill_normal_kernel for tensor @p stream_id (ATTN_STREAM_Q, …) of @p seed. */
static cudaError_t dev_fill_normal(float *x, size_t n, uint64_t seed, int stream_id,
                                   cudaStream_t s)
{
    /* rng.c: key = mix64(seed ^ mix64((uint64_t)stream + 0x1234567)) */
    const uint64_t key = mix64(seed ^ mix64((uint64_t)stream_id + 0x1234567ull));
    size_t blocks = ((n + 1) / 2 + 255) / 256;
    if (n == 0)
        return cudaSuccess;
    if (blocks > 65536)
        blocks = 65536;
    fill_normal_kernel<<<(unsigned)blocks, 256, 0, s>>>(x, n, key);
    return cudaGetLastError();
}

/* ---- the implementations ------------------------------------------------- */

/** The two sweeps (the CSV's `sweep` column). */
enum { SW_FP32 = 0, SW_TC = 1, N_SWEEPS = 2 };
/** The `sweep` column's values. */
static const char *const SWEEP_NAME[N_SWEEPS] = {"fp32", "tc"};

/** One implementation timed: a step in one element type. */
typedef struct {
    const attn_step *fwd;     /**< forward step: gpu_forward or params_forward is timed */
    const attn_step *bwd;     /**< backward step: forward untimed, gpu_backward timed */
    attn_dtype dt;            /**< the element type it runs in */
    int typed;                /**< through params_forward (dt's tensors), else the float entry */
} impl;

/** Room for implementations per sweep (a few per GPU step). */
#define MAX_IMPLS 32
/** The implementations of each sweep, in the CSV's order (step id, then fp16, bf16). */
static impl IMPLS[N_SWEEPS][MAX_IMPLS];
/** How many each sweep has (collect_impls()). */
static int N_IMPLS[N_SWEEPS];

/** The step id: "04" … "08". */
static const char *impl_id(const impl *m) { return m->fwd ? m->fwd->id : m->bwd->id; }
/** The step name of the CSV's `name` column ("standard_cublas", …, "backward"). */
static const char *impl_name(const impl *m) { return m->fwd ? m->fwd->name : m->bwd->name; }

/** Does the forward step @p s have a params forward that takes type @p t? */
static int takes(const attn_step *s, attn_dtype t)
{
    return s->params_forward && (s->caps.dtypes & (1u << t));
}

/** Append @p m to sweep @p sw (quietly dropped past MAX_IMPLS). */
static void add_impl(int sw, impl m)
{
    if (N_IMPLS[sw] < MAX_IMPLS)
        IMPLS[sw][N_IMPLS[sw]++] = m;
}

/**
 * IMPLS from the step registry. fp32 sweep: a backward step (its
 * backward), a forward step with a float entry point (gpu_forward), a
 * typed step whose caps take fp32. tc sweep: every forward step whose
 * params forward takes fp16 or bf16, once per type (step 04 and the typed
 * steps), and TC_REF_STEP in fp32. Each ordered by step id, then fp32,
 * fp16, bf16.
 */
static void collect_impls(void)
{
    N_IMPLS[SW_FP32] = N_IMPLS[SW_TC] = 0;
    for (int i = 0; attn_gpu_steps[i]; i++) {
        const attn_step *s = attn_gpu_steps[i];
        if (s->kind == ATTN_KIND_BACKWARD) {
            if (s->gpu_backward && s->forward && s->forward->gpu_forward)
                add_impl(SW_FP32, impl{NULL, s, ATTN_F32, 0});
            continue;
        }
        if (s->gpu_forward)
            add_impl(SW_FP32, impl{s, NULL, ATTN_F32, 0});
        else if (takes(s, ATTN_F32))
            add_impl(SW_FP32, impl{s, NULL, ATTN_F32, 1});
        if (s->gpu_forward && !strcmp(s->id, TC_REF_STEP))
            add_impl(SW_TC, impl{s, NULL, ATTN_F32, 0});
        if (takes(s, ATTN_F16))
            add_impl(SW_TC, impl{s, NULL, ATTN_F16, 1});
        if (takes(s, ATTN_BF16))
            add_impl(SW_TC, impl{s, NULL, ATTN_BF16, 1});
    }
    for (int sw = 0; sw < N_SWEEPS; sw++) { /* insertion sort by id, stable: a handful */
        impl *v = IMPLS[sw];
        for (int a = 1; a < N_IMPLS[sw]; a++)
            for (int b = a; b > 0 && strcmp(impl_id(&v[b - 1]), impl_id(&v[b])) > 0; b--) {
                const impl t = v[b - 1];
                v[b - 1] = v[b];
                v[b] = t;
            }
    }
}

/** @p b rounded up to 256 bytes (where the forward's workspace starts after the backward's). */
static size_t align256(size_t b) { return (b + 255) / 256 * 256; }

/** The backward's own workspace (δ for step 07): what `extra_bytes` reports for it. */
static size_t bwd_ws_bytes(const impl *m, const attn_problem *p)
{
    return m->bwd->workspace_bytes ? m->bwd->workspace_bytes(p) : 0;
}

/** The forward's workspace (a forward step's, or a backward step's forward's). */
static size_t fwd_ws_bytes(const attn_step *f, const attn_problem *p)
{
    return f->workspace_bytes ? f->workspace_bytes(p) : 0;
}

/** Workspace one point needs: a backward step holds its own and its forward's at once. */
static size_t impl_ws_bytes(const impl *m, const attn_problem *p)
{
    if (m->fwd)
        return fwd_ws_bytes(m->fwd, p);
    return align256(bwd_ws_bytes(m, p)) + fwd_ws_bytes(m->bwd->forward, p);
}

/** What the `extra_bytes` column says: the timed pass's workspace (as the step programs report). */
static size_t impl_extra_bytes(const impl *m, const attn_problem *p)
{
    return m->fwd ? fwd_ws_bytes(m->fwd, p) : bwd_ws_bytes(m, p);
}

/** FLOPs of one timed run: the forward's, or 2.5 x that for a backward. */
static double impl_flops(const impl *m, const attn_problem *p)
{
    return (m->fwd ? 1.0 : BWD_FLOP_FACTOR) * attn_flops_forward(p);
}

/**
 * Does the step take this shape (and, typed, this type and head dim: its
 * caps, as attn_params_check() reads them)? 0, or 2 with the step's message.
 */
static int impl_supports(const impl *m, const attn_problem *p, char *msg, size_t n)
{
    int rc = 0;
    if (m->fwd) {
        if (m->fwd->supports && (rc = m->fwd->supports(p, msg, n)))
            return rc;
        if (m->typed) {
            attn_params pp;
            attn_params_init(&pp, p, m->dt, NULL, NULL, NULL, NULL, NULL);
            return attn_params_check(&pp, &m->fwd->caps, m->fwd->id, msg, n);
        }
        return 0;
    }
    if (m->bwd->forward->supports && (rc = m->bwd->forward->supports(p, msg, n)))
        return rc;
    return m->bwd->supports ? m->bwd->supports(p, msg, n) : 0;
}

/* ---- device buffers ------------------------------------------------------ */

/** Everything on the device, allocated once at the largest shape. */
typedef struct {
    float *q, *k, *v;     /**< inputs (streams Q, K, V) */
    float *o, *lse;       /**< the forward steps' outputs */
    float *dout;          /**< dO (stream DO), step 07 only */
    float *o_b, *lse_b;   /**< step 07's forward outputs, read by its backward */
    float *dq, *dk, *dv;  /**< step 07's gradients */
    /** Copies of Q, K, V (the float inputs rounded) and an O, by element type:
     *  [ATTN_F16] and [ATTN_BF16] where a sweep runs that type; NULL else. */
    void *q16[ATTN_DTYPE_COUNT], *k16[ATTN_DTYPE_COUNT], *v16[ATTN_DTYPE_COUNT],
        *o16[ATTN_DTYPE_COUNT];
    void *ws;             /**< the one workspace */
    size_t ws_bytes;      /**< its size: the largest need that fit */
    void *flush;          /**< the L2 flush buffer (2 x L2), or NULL */
    size_t flush_bytes;   /**< its size; 0: no flush */
    cudaStream_t stream;  /**< every launch goes here */
    cudaEvent_t ev0, ev1; /**< around each timed run */
} bufs;

/**
 * One run of @p m on @p p: a forward step's forward, a backward step's
 * backward — or, with @p bwd_forward, a backward step's forward (for O and
 * LSE). Returns the entry point's code; its message is attn_last_error().
 */
static int impl_run(const impl *m, const attn_problem *p, const bufs *b, int deterministic,
                    int bwd_forward)
{
    attn_clear_error();
    if (m->fwd && m->typed) { /* contiguous BHSD of type dt; LSE fp32 */
        attn_params pp;
        if (m->dt == ATTN_F32)
            attn_params_init(&pp, p, m->dt, b->q, b->k, b->v, b->o, b->lse);
        else
            attn_params_init(&pp, p, m->dt, b->q16[m->dt], b->k16[m->dt], b->v16[m->dt],
                             b->o16[m->dt], b->lse);
        return m->fwd->params_forward(&pp, fwd_ws_bytes(m->fwd, p) ? b->ws : NULL, b->stream);
    }
    if (m->fwd)
        return m->fwd->gpu_forward(p, b->q, b->k, b->v, b->o, b->lse,
                                   fwd_ws_bytes(m->fwd, p) ? b->ws : NULL, b->stream);
    if (bwd_forward) {
        const attn_step *f = m->bwd->forward;
        void *fws = fwd_ws_bytes(f, p) ? (char *)b->ws + align256(bwd_ws_bytes(m, p)) : NULL;
        return f->gpu_forward(p, b->q, b->k, b->v, b->o_b, b->lse_b, fws, b->stream);
    }
    return m->bwd->gpu_backward(p, b->q, b->k, b->v, b->o_b, b->lse_b, b->dout, b->dq, b->dk,
                                b->dv, deterministic, bwd_ws_bytes(m, p) ? b->ws : NULL,
                                b->stream);
}

/* ---- options ------------------------------------------------------------- */

/** What the flags say. */
typedef struct {
    const char *out_dir;            /**< --out (default build/bench) */
    int sweeps[N_SWEEPS];           /**< --sweep: which sweeps run */
    char steps[MAX_LIST][8];        /**< --steps: the step ids that run */
    int n_steps;                    /**< how many (0: every step) */
    char skip[MAX_LIST][8];         /**< --skip-steps: the step ids that do not */
    int n_skip;                     /**< how many */
    int seqs[MAX_LIST], n_seqs;     /**< --seqs (sorted ascending) */
    int dims[MAX_LIST], n_dims;     /**< --dims */
    int causals[2], n_causals;      /**< --causal */
    int batch, heads;               /**< --batch (fp32 sweep), --heads (Hq = Hkv, both) */
    int tc_tokens;                  /**< --tc-tokens: B·N of the tc sweep */
    int bf16_seqs[MAX_LIST], n_bf16;/**< --bf16-seqs: the tc sweep's N that run bf16 */
    int iters, warmup;              /**< --iters, --warmup */
    double max_ms;                  /**< --max-ms: per step and point */
    double limit_s;                 /**< --limit-s: skip a point whose one run exceeds this */
    uint64_t seed;                  /**< --seed */
    int deterministic;              /**< --deterministic (step 07's dQ without atomics) */
    int check_rng;                  /**< --check-rng: compare with the host generator, exit */
    int list;                       /**< --list: print what would run, exit (no device needed) */
} opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: build/bin/bench [flags]\n"
            "The GPU benchmark: every GPU step on every shape of two sweeps in one process;\n"
            "writes OUT/results.csv (the columns of tests/bench/sweep.py).\n"
            "  fp32 sweep: the float steps (04, 05, 06; 07's backward) in fp32, B = --batch;\n"
            "  tc sweep:   the steps that take fp16/bf16 (04, 08 on) in fp16 at every N and\n"
            "              bf16 at --bf16-seqs, step " TC_REF_STEP " in fp32 beside them,\n"
            "              B = --tc-tokens / N.\n"
            "  --out DIR          output folder (default build/bench)\n"
            "  --sweep S          fp32, tc or all (default all)\n"
            "  --steps LIST       step ids, e.g. 04,08 (default: every GPU step; a backward\n"
            "                     step such as 07 times its backward)\n"
            "  --skip-steps LIST  step ids left out (e.g. one that faulted in a previous run)\n"
            "  --seqs LIST        N = Sq = Sk (default 512,1024,2048,4096,8192,16384)\n"
            "  --dims LIST        head dims D (default 64,128)\n"
            "  --causal LIST      0, 1 or 0,1 (default 0,1)\n"
            "  --batch B          fp32 sweep (default 1)\n"
            "  --heads H          Hq = Hkv, both sweeps (default 32)\n"
            "  --tc-tokens T      tc sweep: B = max(1, T / N) (default %d)\n"
            "  --bf16-seqs LIST   tc sweep: the N that also run bf16; all or none\n"
            "                     (default %d)\n"
            "  --quick            N in {512, 2048}, D = 64, bf16 at 2048 (a smoke test)\n"
            "  --iters I          timed runs per step and point at most (default 20)\n"
            "  --warmup W         warm-up runs per step and point at most (default 3)\n"
            "  --max-ms MS        time cap per step and point, for warm-up and for the\n"
            "                     timed runs each (default 1000; 0: no cap)\n"
            "  --limit-s S        skip points whose one run is estimated (scaled by the FLOPs\n"
            "                     from the previous N) over S seconds, and larger N (default 10)\n"
            "  --seed S           input seed (default 1, as sweep.py)\n"
            "  --deterministic    step 07 with its deterministic dQ (default: atomic dQ)\n"
            "  --check-rng        compare the device generator with common/rng.c, then exit\n"
            "  --list             print each sweep's steps, shapes and points, then exit\n"
            "                     (no device needed)\n"
            "  --help\n"
            "Exit: 0 (also with no CUDA device: `skipped: no CUDA device`), 2 bad flag,\n"
            "3 CUDA fault or the largest shape's tensors do not fit.\n",
            TC_TOKENS, TC_BF16_SEQ);
}

/** Parse an int in [lo, hi]; 0 or 2 with a message. */
static int parse_int(const char *flag, const char *s, long lo, long hi, int *out, char *msg,
                     size_t n)
{
    char *end = NULL;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || end == s || *end || x < lo || x > hi) {
        snprintf(msg, n, "%s: expected an integer in %ld..%ld (got \"%s\")", flag, lo, hi, s);
        return ATTN_EXIT_BAD_INPUT;
    }
    *out = (int)x;
    return 0;
}

/** Parse a number >= 0; 0 or 2 with a message. */
static int parse_double(const char *flag, const char *s, double *out, char *msg, size_t n)
{
    char *end = NULL;
    errno = 0;
    double x = strtod(s, &end);
    if (errno || end == s || *end || !(x >= 0) || isinf(x)) {
        snprintf(msg, n, "%s: expected a finite number >= 0 (got \"%s\")", flag, s);
        return ATTN_EXIT_BAD_INPUT;
    }
    *out = x;
    return 0;
}

/** Parse "a,b,c" into @p out (at most @p max values in [lo, hi]); 0 or 2. */
static int parse_list(const char *flag, const char *s, long lo, long hi, int *out, int max,
                      int *count, char *msg, size_t n)
{
    char buf[256], *save = NULL;
    int c = 0;
    if (strlen(s) >= sizeof buf) {
        snprintf(msg, n, "%s: list too long", flag);
        return ATTN_EXIT_BAD_INPUT;
    }
    strcpy(buf, s);
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (c == max) {
            snprintf(msg, n, "%s: at most %d values", flag, max);
            return ATTN_EXIT_BAD_INPUT;
        }
        int rc = parse_int(flag, tok, lo, hi, &out[c], msg, n);
        if (rc)
            return rc;
        c++;
    }
    if (c == 0) {
        snprintf(msg, n, "%s: empty list", flag);
        return ATTN_EXIT_BAD_INPUT;
    }
    *count = c;
    return 0;
}


/** The GPU step ids, "04,05,…" (for messages). */
static void step_ids(char *buf, size_t n)
{
    buf[0] = '\0';
    for (int i = 0; attn_gpu_steps[i]; i++)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%s", i ? "," : "", attn_gpu_steps[i]->id);
}

/** Parse "04,07" into @p out (each a GPU step of the registry) for @p flag; 0 or 2. */
static int parse_steps(const char *flag, const char *s, char (*out)[8], int *count, char *msg,
                       size_t n)
{
    char buf[256], *save = NULL, ids[128];
    if (strlen(s) >= sizeof buf) {
        snprintf(msg, n, "%s: list too long", flag);
        return ATTN_EXIT_BAD_INPUT;
    }
    strcpy(buf, s);
    *count = 0;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int found = 0;
        for (int i = 0; attn_gpu_steps[i]; i++)
            found |= !strcmp(tok, attn_gpu_steps[i]->id);
        if (!found || strlen(tok) >= sizeof out[0]) {
            step_ids(ids, sizeof ids);
            snprintf(msg, n, "%s: no GPU step \"%.20s\" here (choose from %s)", flag, tok, ids);
            return ATTN_EXIT_BAD_INPUT;
        }
        if (*count == MAX_LIST) {
            snprintf(msg, n, "%s: at most %d values", flag, MAX_LIST);
            return ATTN_EXIT_BAD_INPUT;
        }
        strcpy(out[(*count)++], tok);
    }
    if (!*count) {
        snprintf(msg, n, "%s: empty list", flag);
        return ATTN_EXIT_BAD_INPUT;
    }
    return 0;
}

/** Does implementation @p m run (its step is in --steps, or --steps was not
 *  given; and not in --skip-steps)? */
static int impl_used(const opts *o, const impl *m)
{
    for (int i = 0; i < o->n_skip; i++)
        if (!strcmp(o->skip[i], impl_id(m)))
            return 0;
    if (!o->n_steps)
        return 1;
    for (int i = 0; i < o->n_steps; i++)
        if (!strcmp(o->steps[i], impl_id(m)))
            return 1;
    return 0;
}

/** Does the tc sweep run bf16 at @p n? */
static int bf16_at(const opts *o, int n)
{
    for (int i = 0; i < o->n_bf16; i++)
        if (o->bf16_seqs[i] == n || o->bf16_seqs[i] == -1)
            return 1;
    return 0;
}

/** Does implementation @p m of sweep @p sw run at N = @p n (bf16 only at --bf16-seqs)? */
static int impl_at(const opts *o, int sw, const impl *m, int n)
{
    return impl_used(o, m) && (sw != SW_TC || m->dt != ATTN_BF16 || bf16_at(o, n));
}

/** qsort() order of ints. */
static int cmp_int(const void *a, const void *b)
{
    const int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/** Parse the flags: 0, 1 for --help (usage printed), or 2 with a message. */
static int parse_args(int argc, char **argv, opts *o, char *msg, size_t n)
{
    static const int SEQS[] = {512, 1024, 2048, 4096, 8192, 16384}, DIMS[] = {64, 128};
    static const int QUICK_SEQS[] = {512, 2048}, QUICK_DIMS[] = {64};
    int quick = 0, seqs_given = 0, dims_given = 0, bf16_given = 0, rc = 0;
    memset(o, 0, sizeof *o);
    o->out_dir = "build/bench";
    o->sweeps[SW_FP32] = o->sweeps[SW_TC] = 1;
    o->causals[0] = 0, o->causals[1] = 1, o->n_causals = 2;
    o->batch = 1, o->heads = 32, o->iters = 20, o->warmup = 3;
    o->tc_tokens = TC_TOKENS;
    o->max_ms = 1000.0, o->limit_s = 10.0, o->seed = 1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        /* "--flag value" or "--flag=value" */
        char name[64];
        const char *val = NULL, *eq = strchr(a, '=');
        if (eq && (size_t)(eq - a) < sizeof name) {
            memcpy(name, a, (size_t)(eq - a));
            name[eq - a] = '\0';
            val = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", a);
        }
        if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
            usage(stdout);
            return 1;
        }
        if (!strcmp(name, "--quick")) {
            quick = 1;
            continue;
        }
        if (!strcmp(name, "--deterministic")) {
            o->deterministic = 1;
            continue;
        }
        if (!strcmp(name, "--check-rng")) {
            o->check_rng = 1;
            continue;
        }
        if (!strcmp(name, "--list")) {
            o->list = 1;
            continue;
        }
        static const char *const WITH_VALUE[] = {
            "--out", "--steps", "--seqs", "--dims", "--causal", "--batch", "--heads",
            "--iters", "--warmup", "--max-ms", "--limit-s", "--seed", "--sweep",
            "--tc-tokens", "--bf16-seqs", "--skip-steps"};
        int known = 0;
        for (size_t w = 0; w < sizeof WITH_VALUE / sizeof WITH_VALUE[0]; w++)
            known |= !strcmp(name, WITH_VALUE[w]);
        if (!known) {
            snprintf(msg, n, "unknown flag %s (see --help)", a);
            return ATTN_EXIT_BAD_INPUT;
        }
        if (!val) {
            if (i + 1 >= argc) {
                snprintf(msg, n, "%s needs a value", name);
                return ATTN_EXIT_BAD_INPUT;
            }
            val = argv[++i];
        }
        if (!strcmp(name, "--out"))
            o->out_dir = val;
        else if (!strcmp(name, "--steps"))
            rc = parse_steps(name, val, o->steps, &o->n_steps, msg, n);
        else if (!strcmp(name, "--skip-steps"))
            rc = parse_steps(name, val, o->skip, &o->n_skip, msg, n);
        else if (!strcmp(name, "--sweep")) {
            const int fp32 = !strcmp(val, "fp32"), tc = !strcmp(val, "tc"),
                      all = !strcmp(val, "all");
            if (!fp32 && !tc && !all) {
                snprintf(msg, n, "--sweep: expected fp32, tc or all (got \"%s\")", val);
                return ATTN_EXIT_BAD_INPUT;
            }
            o->sweeps[SW_FP32] = fp32 || all;
            o->sweeps[SW_TC] = tc || all;
        } else if (!strcmp(name, "--seqs"))
            rc = parse_list(name, val, 1, 1 << 24, o->seqs, MAX_LIST, &o->n_seqs, msg, n),
            seqs_given = 1;
        else if (!strcmp(name, "--dims"))
            rc = parse_list(name, val, 1, ATTN_MAX_HEAD_DIM, o->dims, MAX_LIST, &o->n_dims, msg, n),
            dims_given = 1;
        else if (!strcmp(name, "--causal"))
            rc = parse_list(name, val, 0, 1, o->causals, 2, &o->n_causals, msg, n);
        else if (!strcmp(name, "--batch"))
            rc = parse_int(name, val, 1, 65535, &o->batch, msg, n);
        else if (!strcmp(name, "--heads"))
            rc = parse_int(name, val, 1, 65535, &o->heads, msg, n);
        else if (!strcmp(name, "--tc-tokens"))
            rc = parse_int(name, val, 1, 1 << 24, &o->tc_tokens, msg, n);
        else if (!strcmp(name, "--bf16-seqs")) {
            bf16_given = 1;
            if (!strcmp(val, "none"))
                o->n_bf16 = 0;
            else if (!strcmp(val, "all"))
                o->bf16_seqs[0] = -1, o->n_bf16 = 1;
            else
                rc = parse_list(name, val, 1, 1 << 24, o->bf16_seqs, MAX_LIST, &o->n_bf16, msg, n);
        } else if (!strcmp(name, "--iters"))
            rc = parse_int(name, val, 1, 100000, &o->iters, msg, n);
        else if (!strcmp(name, "--warmup"))
            rc = parse_int(name, val, 0, 100000, &o->warmup, msg, n);
        else if (!strcmp(name, "--max-ms"))
            rc = parse_double(name, val, &o->max_ms, msg, n);
        else if (!strcmp(name, "--limit-s"))
            rc = parse_double(name, val, &o->limit_s, msg, n);
        else if (!strcmp(name, "--seed")) {
            char *end = NULL;
            errno = 0;
            unsigned long long s = strtoull(val, &end, 10);
            if (errno || end == val || *end || val[0] == '-') {
                snprintf(msg, n, "--seed: expected an unsigned integer (got \"%s\")", val);
                return ATTN_EXIT_BAD_INPUT;
            }
            o->seed = (uint64_t)s;
        }
        if (rc)
            return rc;
    }
    if (!seqs_given) {
        const int *s = quick ? QUICK_SEQS : SEQS;
        o->n_seqs = quick ? 2 : 6;
        memcpy(o->seqs, s, (size_t)o->n_seqs * sizeof *s);
    }
    if (!dims_given) {
        const int *d = quick ? QUICK_DIMS : DIMS;
        o->n_dims = quick ? 1 : 2;
        memcpy(o->dims, d, (size_t)o->n_dims * sizeof *d);
    }
    if (!bf16_given)
        o->bf16_seqs[0] = quick ? 2048 : TC_BF16_SEQ, o->n_bf16 = 1;
    /* ascending N: the skip estimate reads the previous (smaller) N */
    qsort(o->seqs, (size_t)o->n_seqs, sizeof o->seqs[0], cmp_int);
    return 0;
}

/** The batch of sweep @p sw at N = @p n: --batch, or max(1, --tc-tokens / N). */
static int sweep_batch(const opts *o, int sw, int n)
{
    if (sw == SW_FP32)
        return o->batch;
    return o->tc_tokens / n > 1 ? o->tc_tokens / n : 1;
}

/** The problem of one point of sweep @p sw. */
static attn_problem make_problem(const opts *o, int sw, int n, int d, int causal)
{
    attn_problem p;
    memset(&p, 0, sizeof p);
    p.batch = sweep_batch(o, sw, n);
    p.heads_q = p.heads_kv = o->heads;
    p.seqlen_q = p.seqlen_k = n;
    p.head_dim = d;
    p.causal = causal;
    p.softmax_scale = 0.0f; /* 1/sqrt(D) */
    return p;
}

/* ---- results: one row per (sweep, step, type, D, causal, N), written as CSV */

/** One row of results.csv. */
typedef struct {
    int filled;            /**< measured or decided (else not written yet) */
    int sw;                /**< the sweep (SW_FP32, SW_TC) */
    const impl *m;         /**< the implementation */
    attn_problem p;        /**< the shape */
    char status[16];       /**< ok, refused, oom, skipped, error */
    char note[MSG_LEN];    /**< why, when not ok (step 07 ok rows: what ms means) */
    double ms;             /**< median of the timed runs */
    double tflops;         /**< impl_flops() / ms */
    size_t extra_bytes;    /**< impl_extra_bytes() */
    int runs;              /**< timed runs */
} row;

/** All rows, indexed in sweep.py's order within each sweep: step (and type), D, causal, N. */
typedef struct {
    row *rows;
    int n;
    int base[N_SWEEPS];    /**< index of each sweep's first row */
} table;

/** Index of a row: sweep @p sw, (impl, D index, causal index, N index), step-major as sweep.py writes. */
static int row_index(const opts *o, const table *t, int sw, int m, int di, int ci, int ni)
{
    return t->base[sw] + ((m * o->n_dims + di) * o->n_causals + ci) * o->n_seqs + ni;
}

/** One CSV field, quoted as Python's csv module quotes (QUOTE_MINIMAL). */
static void csv_field(FILE *f, const char *s, int last)
{
    if (strpbrk(s, ",\"\r\n")) {
        fputc('"', f);
        for (const char *c = s; *c; c++) {
            if (*c == '"')
                fputc('"', f);
            fputc(*c, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
    fputs(last ? "\r\n" : ",", f);
}

/** mkdir -p @p dir; 0 or -1 (errno set). */
static int make_dirs(const char *dir)
{
    char buf[4096];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof buf)
        return errno = ENAMETOOLONG, -1;
    memcpy(buf, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            const char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return -1;
            buf[i] = c;
        }
    }
    return 0;
}

/**
 * Write the filled rows to @p path (through a temporary file and a
 * rename, so a reader never sees half a file). The columns and formats of
 * sweep.py: step,name,device,dtype,B,Hq,Hkv,Sq,Sk,D,causal,ms,tflops,
 * extra_bytes,runs,status,note,sweep; ms and tflops as the `result:` line
 * prints them (%.4f); the numbers left empty where the status is not ok.
 * 0 or -1.
 */
static int write_csv(const char *path, const table *t)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return -1;
    fputs("step,name,device,dtype,B,Hq,Hkv,Sq,Sk,D,causal,ms,tflops,extra_bytes,runs,status,"
          "note,sweep\r\n",
          f);
    for (int i = 0; i < t->n; i++) {
        const row *r = &t->rows[i];
        if (!r->filled)
            continue;
        fprintf(f, "%s,", impl_id(r->m));
        csv_field(f, impl_name(r->m), 0);
        fprintf(f, "gpu,%s,%d,%d,%d,%d,%d,%d,%d,", attn_dtype_name(r->m->dt), r->p.batch,
                r->p.heads_q, r->p.heads_kv, r->p.seqlen_q, r->p.seqlen_k, r->p.head_dim,
                r->p.causal);
        if (!strcmp(r->status, "ok"))
            fprintf(f, "%.4f,%.4f,%zu,%d,", r->ms, r->tflops, r->extra_bytes, r->runs);
        else
            fputs(",,,,", f);
        csv_field(f, r->status, 0);
        csv_field(f, r->note, 0);
        csv_field(f, SWEEP_NAME[r->sw], 1);
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        remove(tmp);
        return -1;
    }
    return 0;
}

/** The line printed for one point (sweep.py's format, with the type and B). */
static void print_row(const row *r)
{
    const impl *m = r->m;
    char head[96];
    snprintf(head, sizeof head, "  %s %-16s %-4s B=%-2d D=%-3d causal=%d N=%-6d", impl_id(m),
             impl_name(m), attn_dtype_name(m->dt), r->p.batch, r->p.head_dim, r->p.causal,
             r->p.seqlen_q);
    if (!strcmp(r->status, "ok"))
        printf("%s %-8s %.4g ms %.4g TFLOP/s (%d runs)\n", head, r->status, r->ms, r->tflops,
               r->runs);
    else
        printf("%s %-8s %.90s\n", head, r->status, r->note);
    fflush(stdout);
}

/* ---- timing one shape ---------------------------------------------------- */

/** Per step, while one shape is timed. */
typedef struct {
    int active;       /**< still running at this shape */
    int runs;         /**< timed runs so far */
    double spent_ms;  /**< their total */
    double warm_ms;   /**< warm-up wall time so far */
    double *times;    /**< the timed runs (room for opts.iters) */
} timing;

/**
 * A step's entry point returned @p rc (not 0) for row @p r: 2 → `refused`,
 * 3 → `error` while the device stays usable. Returns 0, or 3 with @p msg
 * when the device is broken (a sticky fault: the sweep cannot go on).
 */
static int step_failed(int rc, const char *what, row *r, char *msg, size_t n)
{
    const char *why = attn_last_error();
    if (rc == ATTN_EXIT_BAD_INPUT) {
        snprintf(r->status, sizeof r->status, "refused");
        snprintf(r->note, sizeof r->note, "%s%s", what, why[0] ? why : "refused the shape");
        return 0;
    }
    (void)cudaGetLastError(); /* a launch error is not sticky: clear it */
    cudaError_t e = cudaDeviceSynchronize();
    if (e != cudaSuccess) {
        snprintf(msg, n, "step %s (%s): %s%s; then: %s", impl_id(r->m),
                 attn_dtype_name(r->m->dt), what, why,
                 cudaGetErrorString(e));
        return ATTN_EXIT_RESOURCE;
    }
    snprintf(r->status, sizeof r->status, "error");
    snprintf(r->note, sizeof r->note, "%sexit %d: %s", what, rc, why);
    return 0;
}

/**
 * A CUDA call right after a run of @p m failed with @p rc and @p msg: the
 * fault is that run's (every run before it was waited for), so @p msg
 * names the step first ("step 09 (fp16): …", what tests/bench/gpu_bench.sh
 * reads to run the sweep again without it). Returns @p rc.
 */
static int blame(int rc, const impl *m, char *msg, size_t n)
{
    char what[MSG_LEN];
    snprintf(what, sizeof what, "%s", msg);
    snprintf(msg, n, "step %s (%s): %.400s", impl_id(m), attn_dtype_name(m->dt), what);
    return rc;
}

/**
 * Time every active implementation of @p impls (@p nm of them) at problem
 * @p p, interleaved: the backward steps'
 * forwards (untimed), then warm-up rounds, then timed rounds, each round
 * one run of every active step in turn. Fills the rows (status ok, or
 * refused / error where an entry point failed). 0, or 3 with @p msg on a
 * CUDA fault.
 */
static int time_shape(const opts *o, const attn_problem *p, bufs *b, const impl *impls, int nm,
                      timing *tm, row **rows, char *msg, size_t n)
{
    int rc = 0;
    /* step 07: its forward, for the O and LSE its backward reads */
    for (int m = 0; m < nm; m++) {
        if (!tm[m].active || !impls[m].bwd)
            continue;
        if ((rc = impl_run(&impls[m], p, b, o->deterministic, 1)) != 0) {
            tm[m].active = 0;
            if ((rc = step_failed(rc, "its forward: ", rows[m], msg, n)))
                return rc;
        }
    }
    if ((rc = HOST_CALL(cudaStreamSynchronize(b->stream), msg, n)))
        return rc;

    /* warm-up: each step waited for, stopping once it spent max_ms */
    for (int w = 0; w < o->warmup; w++) {
        for (int m = 0; m < nm; m++) {
            if (!tm[m].active || (o->max_ms > 0 && tm[m].warm_ms >= o->max_ms))
                continue;
            const double t0 = attn_now_ms();
            if ((rc = impl_run(&impls[m], p, b, o->deterministic, 0)) != 0) {
                tm[m].active = 0;
                if ((rc = step_failed(rc, "", rows[m], msg, n)))
                    return rc;
                continue;
            }
            if ((rc = HOST_CALL(cudaStreamSynchronize(b->stream), msg, n)))
                return blame(rc, &impls[m], msg, n);
            tm[m].warm_ms += attn_now_ms() - t0;
        }
    }

    /* timed rounds: flush L2, event, the step alone, event */
    for (int r = 0; r < o->iters; r++) {
        int any = 0;
        for (int m = 0; m < nm; m++) {
            if (!tm[m].active || tm[m].runs >= o->iters ||
                (o->max_ms > 0 && tm[m].spent_ms >= o->max_ms))
                continue;
            float one = 0.0f;
            any = 1;
            if (b->flush_bytes &&
                (rc = HOST_CALL(cudaMemsetAsync(b->flush, r & 1, b->flush_bytes, b->stream), msg, n)))
                return rc;
            if ((rc = HOST_CALL(cudaEventRecord(b->ev0, b->stream), msg, n)))
                return rc;
            if ((rc = impl_run(&impls[m], p, b, o->deterministic, 0)) != 0) {
                tm[m].active = 0;
                if ((rc = step_failed(rc, "", rows[m], msg, n)))
                    return rc;
                continue;
            }
            if ((rc = HOST_CALL(cudaEventRecord(b->ev1, b->stream), msg, n)) ||
                (rc = HOST_CALL(cudaEventSynchronize(b->ev1), msg, n)) ||
                (rc = HOST_CALL(cudaEventElapsedTime(&one, b->ev0, b->ev1), msg, n)))
                return blame(rc, &impls[m], msg, n);
            tm[m].times[tm[m].runs++] = one;
            tm[m].spent_ms += one;
        }
        if (!any)
            break;
    }
    /* an asynchronous fault of the last runs surfaces here */
    if ((rc = HOST_CALL(cudaStreamSynchronize(b->stream), msg, n)) ||
        (rc = HOST_CALL(cudaGetLastError(), msg, n)))
        return rc;

    for (int m = 0; m < nm; m++) {
        if (!tm[m].active)
            continue;
        row *rw = rows[m];
        rw->runs = tm[m].runs;
        rw->ms = attn_median(tm[m].times, tm[m].runs);
        rw->tflops = rw->ms > 0 ? impl_flops(&impls[m], p) / (rw->ms * 1e-3) * 1e-12 : 0.0;
        rw->extra_bytes = impl_extra_bytes(&impls[m], p);
        snprintf(rw->status, sizeof rw->status, "ok");
        if (impls[m].bwd)
            snprintf(rw->note, sizeof rw->note,
                     "backward alone (forward untimed); tflops at %.1fx forward FLOPs",
                     BWD_FLOP_FACTOR);
    }
    return 0;
}

/* ---- --check-rng ---------------------------------------------------------- */

/**
 * Draw the first 2^20 + 1 values of each input stream on the device and
 * with common/rng.c on the host; print how many differ and by how much.
 * 0, or 3 on a CUDA error.
 */
static int check_rng(uint64_t seed)
{
    const size_t n = ((size_t)1 << 20) + 1; /* odd: the last pair's half too */
    static const char *const NAMES[] = {"Q", "K", "V", "dO"};
    float *host = (float *)malloc(n * sizeof(float)), *dev_copy = (float *)malloc(n * sizeof(float));
    float *d = NULL;
    char msg[MSG_LEN];
    int rc = 0;
    if (!host || !dev_copy) {
        fprintf(stderr, "error: out of host memory\n");
        free(host), free(dev_copy);
        return ATTN_EXIT_RESOURCE;
    }
    if ((rc = HOST_CALL(attn_dev_alloc((void **)&d, n * sizeof(float)), msg, sizeof msg)))
        goto done;
    for (int s = ATTN_STREAM_Q; s <= ATTN_STREAM_DO; s++) {
        size_t differ = 0;
        double max_abs = 0.0;
        if ((rc = HOST_CALL(dev_fill_normal(d, n, seed, s, 0), msg, sizeof msg)) ||
            (rc = HOST_CALL(cudaMemcpy(dev_copy, d, n * sizeof(float), cudaMemcpyDeviceToHost),
                            msg, sizeof msg)))
            goto done;
        attn_fill_normal(host, n, seed, s);
        for (size_t i = 0; i < n; i++) {
            if (memcmp(&host[i], &dev_copy[i], sizeof(float)) != 0) {
                differ++;
                max_abs = fmax(max_abs, fabs((double)host[i] - (double)dev_copy[i]));
            }
        }
        printf("rng: stream %-2s seed %llu: %zu values, %zu differ from common/rng.c "
               "(max |diff| %.3g)\n",
               NAMES[s], (unsigned long long)seed, n, differ, max_abs);
    }
done:
    if (rc)
        fprintf(stderr, "error: %s\n", msg);
    (void)cudaFree(d);
    free(host), free(dev_copy);
    return rc;
}

/* ---- main ------------------------------------------------------------------ */

/** Largest element counts over the sweep's shapes (Q/O, K/V, LSE). */
typedef struct {
    size_t qe, kve, le;
} sizes;

/** fp32 → fp16, round to nearest even. */
static __device__ __forceinline__ void put16(__half *d, float x) { *d = __float2half_rn(x); }
/** fp32 → bf16, round to nearest even. */
static __device__ __forceinline__ void put16(__nv_bfloat16 *d, float x)
{
    *d = __float2bfloat16_rn(x);
}

/** fp32 → @p T (__half or __nv_bfloat16): the typed steps' inputs. */
template <class T>
static __global__ void to_16bit_kernel(T *dst, const float *src, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        put16(dst + i, src[i]);
}

/** Convert @p n floats at @p src into @p dst as type @p t (fp16 or bf16). */
static cudaError_t dev_to_16bit(void *dst, const float *src, size_t n, attn_dtype t,
                                cudaStream_t s)
{
    const unsigned blocks = (unsigned)((n + 255) / 256 < 65536 ? (n + 255) / 256 : 65536);
    if (n == 0)
        return cudaSuccess;
    if (t == ATTN_F16)
        to_16bit_kernel<__half><<<blocks, 256, 0, s>>>((__half *)dst, src, n);
    else
        to_16bit_kernel<__nv_bfloat16><<<blocks, 256, 0, s>>>((__nv_bfloat16 *)dst, src, n);
    return cudaGetLastError();
}

/**
 * Fill b->q16[t], b->k16[t], b->v16[t] with the inputs in type @p t (fp16 or
 * bf16), converted from the float inputs, whole buffers (the prefix of a
 * converted tensor is the converted prefix). Outside any timed region.
 * 0, or 3 with @p msg.
 */
static int make_16bit(bufs *b, const sizes *s, attn_dtype t, char *msg, size_t n)
{
    int rc = 0;
    if ((rc = HOST_CALL(dev_to_16bit(b->q16[t], b->q, s->qe, t, b->stream), msg, n)) ||
        (rc = HOST_CALL(dev_to_16bit(b->k16[t], b->k, s->kve, t, b->stream), msg, n)) ||
        (rc = HOST_CALL(dev_to_16bit(b->v16[t], b->v, s->kve, t, b->stream), msg, n)))
        return rc;
    return HOST_CALL(cudaStreamSynchronize(b->stream), msg, n);
}

/** Allocate @p count floats into *@p ptr; false when it did not fit. */
static bool alloc_f(float **ptr, size_t count)
{
    return attn_dev_alloc((void **)ptr, count * sizeof(float)) == cudaSuccess;
}

/**
 * The tensors at the largest shape (the backward's only when step 07 runs;
 * the 16-bit copies of each type in @p types16, a bit per attn_dtype) and
 * the inputs drawn into them. 0, or 3 with @p msg.
 */
static int alloc_tensors(bufs *b, const sizes *s, int with_bwd, unsigned types16, uint64_t seed,
                         char *msg, size_t n)
{
    int rc = 0;
    const size_t need =
        (2 * s->qe + 2 * s->kve + s->le + (with_bwd ? 3 * s->qe + 2 * s->kve + s->le : 0)) *
        sizeof(float);
    if (!alloc_f(&b->q, s->qe) || !alloc_f(&b->k, s->kve) || !alloc_f(&b->v, s->kve) ||
        !alloc_f(&b->o, s->qe) || !alloc_f(&b->lse, s->le) ||
        (with_bwd && (!alloc_f(&b->dout, s->qe) || !alloc_f(&b->o_b, s->qe) ||
                      !alloc_f(&b->lse_b, s->le) || !alloc_f(&b->dq, s->qe) ||
                      !alloc_f(&b->dk, s->kve) || !alloc_f(&b->dv, s->kve)))) {
        size_t free_b = 0, total_b = 0;
        (void)cudaMemGetInfo(&free_b, &total_b);
        snprintf(msg, n,
                 "out of device memory for the tensors of the largest shape: needed %zu bytes, "
                 "%zu free of %zu (try smaller --seqs, --dims, --heads)",
                 need, free_b, total_b);
        return ATTN_EXIT_RESOURCE;
    }
    /* 16-bit copies of Q, K, V and an O, one set per type a sweep runs */
    for (int t = ATTN_F16; t <= ATTN_BF16; t++) {
        const size_t es = attn_dtype_size((attn_dtype)t);
        if (!(types16 & (1u << t)))
            continue;
        if (attn_dev_alloc(&b->q16[t], s->qe * es) != cudaSuccess ||
            attn_dev_alloc(&b->k16[t], s->kve * es) != cudaSuccess ||
            attn_dev_alloc(&b->v16[t], s->kve * es) != cudaSuccess ||
            attn_dev_alloc(&b->o16[t], s->qe * es) != cudaSuccess) {
            snprintf(msg, n, "out of device memory for the %s tensors of the largest shape: "
                     "needed %zu bytes", attn_dtype_name((attn_dtype)t),
                     (2 * s->qe + 2 * s->kve) * es);
            return ATTN_EXIT_RESOURCE;
        }
    }
    if ((rc = HOST_CALL(dev_fill_normal(b->q, s->qe, seed, ATTN_STREAM_Q, b->stream), msg, n)) ||
        (rc = HOST_CALL(dev_fill_normal(b->k, s->kve, seed, ATTN_STREAM_K, b->stream), msg, n)) ||
        (rc = HOST_CALL(dev_fill_normal(b->v, s->kve, seed, ATTN_STREAM_V, b->stream), msg, n)) ||
        (with_bwd &&
         (rc = HOST_CALL(dev_fill_normal(b->dout, s->qe, seed, ATTN_STREAM_DO, b->stream), msg, n))))
        return rc;
    if ((rc = HOST_CALL(cudaStreamSynchronize(b->stream), msg, n)))
        return rc;
    for (int t = ATTN_F16; t <= ATTN_BF16; t++)
        if ((types16 & (1u << t)) && (rc = make_16bit(b, s, (attn_dtype)t, msg, n)))
            return rc;
    return 0;
}


/** qsort() order of sizes, largest first. */
static int cmp_size_desc(const void *a, const void *b)
{
    const size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x < y) - (x > y);
}

/**
 * The one workspace: the largest of the @p count needs in @p needs that
 * can be allocated leaving WS_HEADROOM free; the next smaller one when it
 * cannot, and so on. b->ws_bytes = what was allocated (0: none needed, or
 * none fit). Sorts @p needs.
 */
static void alloc_workspace(bufs *b, size_t *needs, int count)
{
    size_t free_b = 0, total_b = 0;
    qsort(needs, (size_t)count, sizeof *needs, cmp_size_desc);
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
        (void)cudaGetLastError();
        free_b = 0;
    }
    for (int i = 0; i < count; i++) {
        if (needs[i] == 0 || (i > 0 && needs[i] == needs[i - 1]))
            continue;
        if (needs[i] + WS_HEADROOM > free_b)
            continue;
        if (attn_dev_alloc(&b->ws, needs[i]) == cudaSuccess) {
            b->ws_bytes = needs[i];
            return;
        }
    }
}

/** Free what the sweep allocated (errors ignored: after a fault every call fails). */
static void free_bufs(bufs *b)
{
    if (b->stream)
        (void)cudaStreamSynchronize(b->stream);
    float *fs[] = {b->q, b->k, b->v, b->o, b->lse, b->dout, b->o_b, b->lse_b, b->dq, b->dk, b->dv};
    for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++)
        (void)cudaFree(fs[i]);
    for (int t = 0; t < ATTN_DTYPE_COUNT; t++) {
        (void)cudaFree(b->q16[t]), (void)cudaFree(b->k16[t]);
        (void)cudaFree(b->v16[t]), (void)cudaFree(b->o16[t]);
    }
    (void)cudaFree(b->ws);
    (void)cudaFree(b->flush);
    if (b->ev0)
        (void)cudaEventDestroy(b->ev0);
    if (b->ev1)
        (void)cudaEventDestroy(b->ev1);
    if (b->stream)
        (void)cudaStreamDestroy(b->stream);
    memset(b, 0, sizeof *b);
}

/** Does sweep @p sw run (chosen by --sweep, and some implementation of it in --steps)? */
static int sweep_runs(const opts *o, int sw)
{
    if (!o->sweeps[sw])
        return 0;
    for (int m = 0; m < N_IMPLS[sw]; m++)
        if (impl_used(o, &IMPLS[sw][m]))
            return 1;
    return 0;
}

/** The line that opens sweep @p sw: its implementations and shapes. */
static void print_sweep_head(const opts *o, int sw)
{
    printf("bench: %s sweep:", SWEEP_NAME[sw]);
    for (int m = 0, first = 1; m < N_IMPLS[sw]; m++) {
        const impl *im = &IMPLS[sw][m];
        if (!impl_used(o, im))
            continue;
        printf("%s %s %s", first ? "" : ",", impl_id(im), attn_dtype_name(im->dt));
        first = 0;
    }
    printf("; N");
    for (int i = 0; i < o->n_seqs; i++)
        printf("%c%d", i ? ',' : '=', o->seqs[i]);
    printf(" D");
    for (int i = 0; i < o->n_dims; i++)
        printf("%c%d", i ? ',' : '=', o->dims[i]);
    printf(" causal");
    for (int i = 0; i < o->n_causals; i++)
        printf("%c%d", i ? ',' : '=', o->causals[i]);
    if (sw == SW_FP32) {
        printf(" B=%d Hq=Hkv=%d\n", o->batch, o->heads);
    } else {
        printf(" B=max(1,%d/N) Hq=Hkv=%d; bf16 at N", o->tc_tokens, o->heads);
        if (o->n_bf16 == 0)
            printf(" none");
        for (int i = 0; i < o->n_bf16; i++)
            o->bf16_seqs[i] < 0 ? printf("=all") : printf("%c%d", i ? ',' : '=', o->bf16_seqs[i]);
        printf("\n");
    }
    fflush(stdout);
}

/**
 * The sweeps: decide every row (refused, oom, skipped) or time it, shape by
 * shape, printing each and rewriting @p csv after each shape. 0, or 3 with
 * @p msg on a CUDA fault (the rows so far written).
 */
static int sweep(const opts *o, bufs *b, table *t, const char *csv, char *msg, size_t n)
{
    int rc = 0;
    timing tm[MAX_IMPLS];
    row *rows[MAX_IMPLS];
    memset(tm, 0, sizeof tm);
    for (int m = 0; m < MAX_IMPLS; m++)
        if (!(tm[m].times = (double *)malloc((size_t)o->iters * sizeof(double)))) {
            snprintf(msg, n, "out of host memory for %d timings", o->iters);
            rc = ATTN_EXIT_RESOURCE;
            goto done;
        }
    for (int sw = 0; sw < N_SWEEPS; sw++) {
        if (!sweep_runs(o, sw))
            continue;
        const impl *impls = IMPLS[sw];
        const int nm = N_IMPLS[sw];
        print_sweep_head(o, sw);
        for (int di = 0; di < o->n_dims; di++)
            for (int ci = 0; ci < o->n_causals; ci++) {
                /* per implementation, within this (D, causal): the last point
                 * timed, and a skip that holds for every larger N */
                int stopped[MAX_IMPLS] = {0};
                double prev_ms[MAX_IMPLS] = {0}, prev_flops[MAX_IMPLS] = {0};
                for (int ni = 0; ni < o->n_seqs; ni++) {
                    const int N = o->seqs[ni];
                    const attn_problem p = make_problem(o, sw, N, o->dims[di], o->causals[ci]);
                    int any = 0;
                    for (int m = 0; m < nm; m++) {
                        const impl *im = &impls[m];
                        tm[m].active = tm[m].runs = 0;
                        tm[m].spent_ms = tm[m].warm_ms = 0.0;
                        rows[m] = NULL;
                        if (!impl_at(o, sw, im, N))
                            continue;
                        row *r = rows[m] = &t->rows[row_index(o, t, sw, m, di, ci, ni)];
                        memset(r, 0, sizeof *r);
                        r->filled = 1;
                        r->sw = sw;
                        r->m = im;
                        r->p = p;
                        const size_t need = impl_ws_bytes(im, &p);
                        /* one run's time grows with the FLOPs: N² at fixed B, N in the tc sweep */
                        const double est =
                            prev_flops[m] > 0 ? prev_ms[m] * impl_flops(im, &p) / prev_flops[m] : 0.0;
                        if (impl_supports(im, &p, r->note, sizeof r->note)) {
                            snprintf(r->status, sizeof r->status, "refused");
                        } else if (need > b->ws_bytes) {
                            snprintf(r->status, sizeof r->status, "oom");
                            snprintf(r->note, sizeof r->note,
                                     "out of device memory: needs %zu bytes of workspace, %zu "
                                     "allocated",
                                     need, b->ws_bytes);
                        } else if (stopped[m]) {
                            snprintf(r->status, sizeof r->status, "skipped");
                            snprintf(r->note, sizeof r->note, "a run estimated over %g s",
                                     o->limit_s);
                        } else if (o->limit_s > 0 && est > o->limit_s * 1e3) {
                            stopped[m] = 1;
                            snprintf(r->status, sizeof r->status, "skipped");
                            snprintf(r->note, sizeof r->note,
                                     "one run estimated at %.3g s > %g s", est * 1e-3,
                                     o->limit_s);
                        } else {
                            tm[m].active = any = 1;
                        }
                    }
                    if (any && (rc = time_shape(o, &p, b, impls, nm, tm, rows, msg, n)))
                        goto done;
                    for (int m = 0; m < nm; m++) {
                        if (!rows[m])
                            continue;
                        if (!strcmp(rows[m]->status, "ok"))
                            prev_ms[m] = rows[m]->ms, prev_flops[m] = impl_flops(&impls[m], &p);
                        print_row(rows[m]);
                    }
                    if (write_csv(csv, t) != 0) {
                        snprintf(msg, n, "cannot write %.400s: %s", csv, strerror(errno));
                        rc = ATTN_EXIT_BAD_INPUT;
                        goto done;
                    }
                }
            }
    }
done:
    if (rc == ATTN_EXIT_RESOURCE)
        (void)write_csv(csv, t); /* what was measured before the fault */
    for (int m = 0; m < MAX_IMPLS; m++)
        free(tm[m].times);
    return rc;
}

int main(int argc, char **argv)
{
    opts o;
    char msg[MSG_LEN] = "";
    collect_impls();
    int rc = parse_args(argc, argv, &o, msg, sizeof msg);
    if (rc == 1)
        return 0;
    if (rc) {
        fprintf(stderr, "error: %s\n", msg);
        return rc;
    }
    if (!sweep_runs(&o, SW_FP32) && !sweep_runs(&o, SW_TC)) {
        fprintf(stderr, "error: --steps: no step given runs in the %s sweep%s\n",
                o.sweeps[SW_FP32] && o.sweeps[SW_TC] ? "fp32 or the tc" : o.sweeps[SW_TC] ? "tc" : "fp32",
                o.sweeps[SW_TC] ? " (the tc sweep runs the steps that take fp16/bf16, and " TC_REF_STEP ")" : "");
        return ATTN_EXIT_BAD_INPUT;
    }
    /* every shape valid for the library (flags out of range are exit 2) */
    for (int sw = 0; sw < N_SWEEPS; sw++)
        for (int ni = 0; sweep_runs(&o, sw) && ni < o.n_seqs; ni++)
            for (int di = 0; di < o.n_dims; di++) {
                attn_problem p = make_problem(&o, sw, o.seqs[ni], o.dims[di], 0);
                if ((rc = attn_problem_validate(&p, msg, sizeof msg))) {
                    fprintf(stderr, "error: %s sweep: %s\n", SWEEP_NAME[sw], msg);
                    return rc;
                }
            }
    if (o.list) {
        for (int sw = 0; sw < N_SWEEPS; sw++) {
            int points = 0;
            if (!sweep_runs(&o, sw))
                continue;
            print_sweep_head(&o, sw);
            for (int m = 0; m < N_IMPLS[sw]; m++)
                for (int ni = 0; ni < o.n_seqs; ni++)
                    points += impl_at(&o, sw, &IMPLS[sw][m], o.seqs[ni]) * o.n_dims * o.n_causals;
            printf("bench: %s sweep: %d points\n", SWEEP_NAME[sw], points);
        }
        return 0;
    }
    if (!attn_gpu_available(msg, sizeof msg)) {
        printf("skipped: %s\n", msg); /* "no CUDA device (…)" */
        return 0;
    }
    if (o.check_rng)
        return check_rng(o.seed);

    const double t_start = attn_now_ms();
    bufs b;
    table t;
    sizes s = {0, 0, 0};
    size_t *needs = NULL;
    int n_needs = 0, with_bwd = 0, dev = 0, l2 = 0;
    unsigned types16 = 0; /* bit per 16-bit type some implementation runs in */
    char csv[4200];
    cudaDeviceProp prop;
    memset(&b, 0, sizeof b);
    memset(&t, 0, sizeof t);
    memset(&prop, 0, sizeof prop);

    /* the rows, the largest tensors, and every workspace the run could need */
    for (int sw = 0; sw < N_SWEEPS; sw++) {
        t.base[sw] = t.n;
        t.n += N_IMPLS[sw] * o.n_dims * o.n_causals * o.n_seqs;
    }
    t.rows = (row *)calloc((size_t)t.n + 1, sizeof(row));
    needs = (size_t *)calloc((size_t)t.n + 1, sizeof(size_t));
    if (!t.rows || !needs) {
        snprintf(msg, sizeof msg, "out of host memory");
        rc = ATTN_EXIT_RESOURCE;
        goto done;
    }
    for (int sw = 0; sw < N_SWEEPS; sw++) {
        if (!sweep_runs(&o, sw))
            continue;
        for (int m = 0; m < N_IMPLS[sw]; m++) {
            const impl *im = &IMPLS[sw][m];
            for (int di = 0; di < o.n_dims; di++)
                for (int ci = 0; ci < o.n_causals; ci++)
                    for (int ni = 0; ni < o.n_seqs; ni++) {
                        attn_problem p = make_problem(&o, sw, o.seqs[ni], o.dims[di], o.causals[ci]);
                        char why[MSG_LEN];
                        if (!impl_at(&o, sw, im, o.seqs[ni]) ||
                            impl_supports(im, &p, why, sizeof why))
                            continue;
                        with_bwd |= im->bwd != NULL;
                        if (im->typed && im->dt != ATTN_F32)
                            types16 |= 1u << im->dt;
                        s.qe = s.qe > attn_q_elems(&p) ? s.qe : attn_q_elems(&p);
                        s.kve = s.kve > attn_kv_elems(&p) ? s.kve : attn_kv_elems(&p);
                        s.le = s.le > attn_lse_elems(&p) ? s.le : attn_lse_elems(&p);
                        needs[n_needs++] = impl_ws_bytes(im, &p);
                    }
        }
    }

    if ((rc = HOST_CALL(cudaGetDevice(&dev), msg, sizeof msg)) ||
        (rc = HOST_CALL(cudaGetDeviceProperties(&prop, dev), msg, sizeof msg)) ||
        (rc = HOST_CALL(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev), msg, sizeof msg)) ||
        (rc = HOST_CALL(cudaStreamCreateWithFlags(&b.stream, cudaStreamNonBlocking), msg, sizeof msg)) ||
        (rc = HOST_CALL(cudaEventCreate(&b.ev0), msg, sizeof msg)) ||
        (rc = HOST_CALL(cudaEventCreate(&b.ev1), msg, sizeof msg)))
        goto done;
    /* the L2 flush buffer, 2 x L2 (attn_l2_flush_alloc()'s size) */
    if (l2 > 0 && attn_dev_alloc(&b.flush, 2 * (size_t)l2) == cudaSuccess)
        b.flush_bytes = 2 * (size_t)l2;
    else
        printf("notice: no L2 flush buffer (L2 %d bytes): timed runs may find data cached\n", l2);
    if ((rc = alloc_tensors(&b, &s, with_bwd, types16, o.seed, msg, sizeof msg)))
        goto done;
    alloc_workspace(&b, needs, n_needs);

    if (make_dirs(o.out_dir) != 0) {
        snprintf(msg, sizeof msg, "cannot create %s: %s", o.out_dir, strerror(errno));
        rc = ATTN_EXIT_BAD_INPUT;
        goto done;
    }
    snprintf(csv, sizeof csv, "%s/results.csv", o.out_dir);

    printf("bench: %s (sm_%d%d, %d SMs, L2 %.0f MiB); per step and point up to %d warm-up and "
           "%d timed runs, %g ms cap each; workspace %.3g GiB; seed %llu%s\n",
           prop.name, prop.major, prop.minor, prop.multiProcessorCount, l2 / 1048576.0, o.warmup,
           o.iters, o.max_ms, b.ws_bytes / 1073741824.0, (unsigned long long)o.seed,
           o.deterministic ? "; step 07 deterministic" : "");
    fflush(stdout);

    rc = sweep(&o, &b, &t, csv, msg, sizeof msg);
    if (rc == 0) {
        int counts[5] = {0, 0, 0, 0, 0}, total = 0;
        static const char *const ST[5] = {"ok", "oom", "refused", "skipped", "error"};
        for (int i = 0; i < t.n; i++) {
            if (!t.rows[i].filled)
                continue;
            total++;
            for (int k = 0; k < 5; k++)
                counts[k] += !strcmp(t.rows[i].status, ST[k]);
        }
        printf("bench: %d points (%d ok, %d oom, %d refused, %d skipped, %d error) in %.1f s; "
               "wrote %s\n",
               total, counts[0], counts[1], counts[2], counts[3], counts[4],
               (attn_now_ms() - t_start) * 1e-3, csv);
    }
done:
    if (rc)
        fprintf(stderr, "error: %s\n", msg);
    free_bufs(&b);
    free(needs);
    free(t.rows);
    return rc;
}
