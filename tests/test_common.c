/**
 * @file test_common.c
 * @brief common/: .npy round trips and every malformed file, every CLI
 * error, the step program's exit codes and outputs, the oracle on hand-
 * computed cases and against finite differences, the metrics, the inputs.
 */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "suites.h"

/* ---- helpers ---------------------------------------------------------- */

static char tmpdir[256];

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/attn_test_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int slot;
    char *b = buf[slot++ % 4];
    snprintf(b, 512, "%s/%s", tmpdir, name);
    return b;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void write_bytes(const char *path, const void *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
    fclose(f);
}

/* A .npy image with the given header dict and @p data_bytes bytes of data. */
static size_t npy_image(unsigned char *out, int major, const char *dict, size_t data_bytes)
{
    size_t pre = major == 1 ? 10 : 12, n = strlen(dict);
    size_t hlen = n + 1 + (64 - (pre + n + 1) % 64) % 64;
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (unsigned char)major;
    out[7] = 0;
    out[8] = (unsigned char)(hlen & 0xff);
    out[9] = (unsigned char)(hlen >> 8);
    if (major != 1)
        out[10] = out[11] = 0;
    memcpy(out + pre, dict, n);
    memset(out + pre + n, ' ', hlen - n - 1);
    out[pre + hlen - 1] = '\n';
    for (size_t i = 0; i < data_bytes; i++)
        out[pre + hlen + i] = (unsigned char)(i * 7);
    return pre + hlen + data_bytes;
}

/* ---- .npy ---------------------------------------------------------------- */

START_TEST(npy_round_trip)
{
    make_tmpdir();
    int64_t shapes[4][4] = {{7}, {3, 5}, {2, 3, 4}, {2, 3, 5, 7}};
    for (int rank = 1; rank <= 4; rank++) {
        size_t n = 1;
        for (int i = 0; i < rank; i++)
            n *= (size_t)shapes[rank - 1][i];
        float *x = malloc(n * 4);
        attn_fill_normal(x, n, (uint64_t)rank, ATTN_STREAM_Q);
        x[0] = -INFINITY;
        char msg[256];
        const char *path = tmp_path("rt.npy");
        ck_assert_int_eq(attn_npy_write(path, x, rank, shapes[rank - 1], 0, msg, sizeof msg), 0);
        attn_array a;
        ck_assert_int_eq(attn_npy_read(path, &a, msg, sizeof msg), 0);
        ck_assert_int_eq(a.rank, rank);
        ck_assert_int_eq(a.was_fp16, 0);
        for (int i = 0; i < rank; i++)
            ck_assert_int_eq(a.shape[i], shapes[rank - 1][i]);
        ck_assert_mem_eq(a.data, x, n * 4);
        attn_array_free(&a);
        /* float16: values come back rounded to half precision */
        ck_assert_int_eq(attn_npy_write(path, x, rank, shapes[rank - 1], 1, msg, sizeof msg), 0);
        ck_assert_int_eq(attn_npy_read(path, &a, msg, sizeof msg), 0);
        ck_assert_int_eq(a.was_fp16, 1);
        for (size_t i = 0; i < n; i++)
            ck_assert_float_eq(a.data[i], attn_half_to_float(attn_float_to_half(x[i])));
        attn_array_free(&a);
        free(x);
    }
}
END_TEST

START_TEST(npy_version2)
{
    unsigned char buf[512];
    size_t n = npy_image(buf, 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24);
    attn_array a;
    char msg[256];
    ck_assert_int_eq(attn_npy_parse(buf, n, "v2", &a, msg, sizeof msg), 0);
    ck_assert_int_eq(a.rank, 2);
    ck_assert_int_eq(a.shape[1], 3);
    attn_array_free(&a);
}
END_TEST

/* Every malformed file: exit code 2 and a message naming the problem. */
static const struct {
    int major;
    const char *dict;
    long data;       /* bytes of data, -1: cut the header */
    const char *why; /* a word the message must contain */
} BAD_NPY[] = {
    {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16, "dtype"},
    {1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", 8, "dtype"},
    {1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8, "big-endian"},
    {1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16, "Fortran"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", 15, "truncated"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", 17, "trailing"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", -1, "truncated"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1), }", 4, "rank"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4, "rank-0"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8, "shape"},
    {1, "{'descr': '<f4', 'fortran_order': False, }", 8, "shape"},
    {1, "{'fortran_order': False, 'shape': (2,), }", 8, "descr"},
    {1, "{'descr': '<f4', 'shape': (2,), }", 8, "fortran_order"},
    {4, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8, "version"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999,), }", 8, "shape"},
};

START_TEST(npy_malformed)
{
    unsigned char buf[1024];
    size_t n = npy_image(buf, BAD_NPY[_i].major, BAD_NPY[_i].dict,
                         BAD_NPY[_i].data < 0 ? 0 : (size_t)BAD_NPY[_i].data);
    if (BAD_NPY[_i].data < 0)
        n = 30; /* header cut short */
    attn_array a;
    char msg[256] = "";
    ck_assert_int_eq(attn_npy_parse(buf, n, "bad.npy", &a, msg, sizeof msg), ATTN_EXIT_BAD_INPUT);
    ck_assert_msg(strstr(msg, BAD_NPY[_i].why) && strstr(msg, "bad.npy"),
                  "message '%s' should name the file and say '%s'", msg, BAD_NPY[_i].why);
    ck_assert_ptr_null(a.data);
}
END_TEST

START_TEST(npy_not_npy)
{
    attn_array a;
    char msg[256];
    ck_assert_int_eq(attn_npy_parse((const unsigned char *)"hello world", 11, "x", &a, msg, sizeof msg),
                     ATTN_EXIT_BAD_INPUT);
    ck_assert_ptr_nonnull(strstr(msg, "magic"));
    ck_assert_int_eq(attn_npy_parse((const unsigned char *)"", 0, "x", &a, msg, sizeof msg),
                     ATTN_EXIT_BAD_INPUT);
    ck_assert_int_eq(attn_npy_read("/nonexistent/q.npy", &a, msg, sizeof msg), ATTN_EXIT_BAD_INPUT);
    ck_assert_ptr_nonnull(strstr(msg, "cannot open"));
}
END_TEST

START_TEST(npy_unwritable)
{
    float x[2] = {1, 2};
    int64_t shape[1] = {2};
    char msg[256];
    ck_assert_int_eq(attn_npy_write("/nonexistent/dir/o.npy", x, 1, shape, 0, msg, sizeof msg),
                     ATTN_EXIT_BAD_INPUT);
    ck_assert(!exists("/nonexistent/dir/o.npy"));
}
END_TEST

START_TEST(half_conversions)
{
    ck_assert_float_eq(attn_half_to_float(0x3c00), 1.0f);
    ck_assert_float_eq(attn_half_to_float(0xc000), -2.0f);
    ck_assert_float_eq(attn_half_to_float(0x7bff), 65504.0f);
    ck_assert_float_eq(attn_half_to_float(0x0001), 0x1p-24f); /* smallest subnormal */
    ck_assert(isinf(attn_half_to_float(0x7c00)));
    ck_assert(isnan(attn_half_to_float(0x7e00)));
    ck_assert_uint_eq(attn_float_to_half(1.0f), 0x3c00);
    ck_assert_uint_eq(attn_float_to_half(65504.0f), 0x7bff);
    ck_assert_uint_eq(attn_float_to_half(1e6f), 0x7c00);
    ck_assert_uint_eq(attn_float_to_half(0x1p-24f), 0x0001);
    ck_assert_uint_eq(attn_float_to_half(1.0f + 0x1p-11f), 0x3c00); /* tie: to even */
    ck_assert_uint_eq(attn_float_to_half(1.0f + 0x1p-10f + 0x1p-11f), 0x3c02);
    ck_assert(isnan(attn_half_to_float(attn_float_to_half(NAN))));
    for (uint32_t h = 0; h < 0x7c00; h++) /* every finite positive half round-trips */
        if (attn_float_to_half(attn_half_to_float((uint16_t)h)) != h)
            ck_abort_msg("half 0x%04x does not round-trip", h);
}
END_TEST

/* ---- CLI ----------------------------------------------------------------- */

static int parse(const char *line, attn_opts *o, char *msg)
{
    char buf[512], *argv[32];
    int argc = 0;
    snprintf(buf, sizeof buf, "prog %s", line);
    for (char *t = strtok(buf, " "); t && argc < 31; t = strtok(NULL, " "))
        argv[argc++] = t;
    argv[argc] = NULL;
    FILE *null = fopen("/dev/null", "w");
    int rc = attn_parse_args(argc, argv, o, null, msg, 256);
    fclose(null);
    return rc;
}

START_TEST(cli_defaults_and_forms)
{
    attn_opts o;
    char msg[256];
    ck_assert_int_eq(parse("", &o, msg), 0);
    ck_assert_int_eq(o.prob.heads_kv, o.prob.heads_q);
    ck_assert_int_eq(o.prob.seqlen_k, o.prob.seqlen_q);
    ck_assert_int_eq(o.check, 1);
    ck_assert_int_eq(parse("--seq=100 --seq-k 7 --heads=8 --kv-heads 2 --dim 33 --causal --scale=0.25 "
                           "--seed 42 --no-check --bench --warmup=0 --iters 5",
                           &o, msg), 0);
    ck_assert_int_eq(o.prob.seqlen_q, 100);
    ck_assert_int_eq(o.prob.seqlen_k, 7);
    ck_assert_int_eq(o.prob.heads_kv, 2);
    ck_assert_int_eq(o.prob.causal, 1);
    ck_assert_float_eq(o.prob.softmax_scale, 0.25f);
    ck_assert_uint_eq(o.seed, 42);
    ck_assert_int_eq(o.check, 0);
    ck_assert_int_eq(o.bench, 1);
    ck_assert_int_eq(o.iters, 5);
    ck_assert_int_eq(parse("--help", &o, msg), 1);
}
END_TEST

/* Every invalid flag value: exit code 2 and a message naming the flag. */
static const struct {
    const char *line, *names;
} BAD_CLI[] = {
    {"--seq 0", "--seq"},          {"--seq abc", "--seq"},        {"--seq", "--seq"},
    {"--seq 16777217", "--seq"},   {"--seq 12x", "--seq"},        {"--seq-k -1", "--seq-k"},
    {"--batch 0", "--batch"},      {"--heads 0", "--heads"},      {"--heads 70000", "--heads"},
    {"--heads 4 --kv-heads 3", "--kv-heads"}, {"--heads 4 --kv-heads 8", "--kv-heads"},
    {"--dim 0", "--dim"},          {"--dim 257", "--dim"},        {"--scale -1", "--scale"},
    {"--scale nan", "--scale"},    {"--scale inf", "--scale"},    {"--scale x", "--scale"},
    {"--seed -1", "--seed"},       {"--seed abc", "--seed"},      {"--dtype fp8", "--dtype"},
    {"--warmup -1", "--warmup"},   {"--iters 0", "--iters"},      {"--frobnicate", "unknown flag"},
    {"extra", "unexpected argument"}, {"--q a.npy", "--q"},      {"--q a --k b", "--v"},
    {"--causal=2", "--causal"},    {"--check=1", "--check"},      {"--out=", "--out"},
    {"--heads 64 --seq 16777216 --dim 256", "too large"},
};

START_TEST(cli_errors)
{
    attn_opts o;
    char msg[256] = "";
    ck_assert_int_eq(parse(BAD_CLI[_i].line, &o, msg), ATTN_EXIT_BAD_INPUT);
    ck_assert_msg(strstr(msg, BAD_CLI[_i].names) != NULL, "'%s': message '%s' should name '%s'",
                  BAD_CLI[_i].line, msg, BAD_CLI[_i].names);
    ck_assert_ptr_null(strchr(msg, '\n')); /* one line */
}
END_TEST

/* ---- the step program: exit codes, outputs ---------------------------- */

static int step_main(const char *line)
{
    char buf[1024], *argv[40];
    int argc = 0;
    snprintf(buf, sizeof buf, "01_naive_cpu %s", line);
    for (char *t = strtok(buf, " "); t && argc < 39; t = strtok(NULL, " "))
        argv[argc++] = t;
    argv[argc] = NULL;
    fflush(stdout);
    FILE *saved = freopen("/dev/null", "w", stdout); /* quiet; the test forks */
    (void)saved;
    return attn_step_main(argc, argv, &attn01_step);
}

START_TEST(program_pass_and_outputs)
{
    make_tmpdir();
    char line[1024];
    snprintf(line, sizeof line, "--seq 40 --seq-k 23 --heads 4 --kv-heads 2 --dim 19 --causal "
             "--scale 0.3 --seed 7 --out %s --lse %s", tmp_path("o.npy"), tmp_path("lse.npy"));
    ck_assert_int_eq(step_main(line), 0);
    attn_array o, l;
    char msg[256];
    ck_assert_int_eq(attn_npy_read(tmp_path("o.npy"), &o, msg, sizeof msg), 0);
    ck_assert_int_eq(attn_npy_read(tmp_path("lse.npy"), &l, msg, sizeof msg), 0);
    ck_assert_int_eq(o.rank, 4);
    ck_assert_int_eq(l.rank, 3);
    ck_assert_int_eq(o.shape[2], 40);
    ck_assert_int_eq(o.shape[3], 19);
    /* outputs agree with a float64 computation on a shape outside the table */
    attn_problem p = {1, 4, 2, 40, 23, 19, 1, 0.3f};
    size_t qn = attn_q_elems(&p), kvn = attn_kv_elems(&p), ln = attn_lse_elems(&p);
    float *q = malloc(qn * 4), *k = malloc(kvn * 4), *v = malloc(kvn * 4);
    double *o_ref = malloc(qn * 8), *lse_ref = malloc(ln * 8);
    attn_fill_normal(q, qn, 7, ATTN_STREAM_Q);
    attn_fill_normal(k, kvn, 7, ATTN_STREAM_K);
    attn_fill_normal(v, kvn, 7, ATTN_STREAM_V);
    attn_oracle_forward(&p, q, k, v, NULL, ln, o_ref, lse_ref);
    attn_err e = attn_compare(o.data, o_ref, qn);
    ck_assert_double_le(e.rel_l2, 1e-5);
    ck_assert_double_le(attn_lse_err(l.data, lse_ref, ln), ATTN_LSE_TOL);
    /* and read back in through --q/--k/--v, --prev */
    int64_t qs[4] = {1, 4, 40, 19}, ks[4] = {1, 2, 23, 19};
    ck_assert_int_eq(attn_npy_write(tmp_path("q.npy"), q, 4, qs, 0, msg, sizeof msg), 0);
    ck_assert_int_eq(attn_npy_write(tmp_path("k.npy"), k, 4, ks, 0, msg, sizeof msg), 0);
    ck_assert_int_eq(attn_npy_write(tmp_path("v.npy"), v, 4, ks, 0, msg, sizeof msg), 0);
    snprintf(line, sizeof line, "--q %s --k %s --v %s --causal --scale 0.3 --prev %s",
             tmp_path("q.npy"), tmp_path("k.npy"), tmp_path("v.npy"), tmp_path("o.npy"));
    ck_assert_int_eq(step_main(line), 0);
    attn_array_free(&o), attn_array_free(&l);
    free(q), free(k), free(v), free(o_ref), free(lse_ref);
}
END_TEST

/* Bad input through the whole program: exit 2, no output file. */
START_TEST(program_bad_input_writes_nothing)
{
    make_tmpdir();
    unsigned char buf[512];
    size_t n = npy_image(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 4, 8), }", 100);
    write_bytes(tmp_path("trunc.npy"), buf, n); /* truncated: 128 bytes expected */
    n = npy_image(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 8), }", 128);
    write_bytes(tmp_path("rank2.npy"), buf, n);
    n = npy_image(buf, 1, "{'descr': '<f2', 'fortran_order': False, 'shape': (1, 1, 4, 8), }", 64);
    write_bytes(tmp_path("half.npy"), buf, n);
    n = npy_image(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 4, 8), }", 128);
    write_bytes(tmp_path("good.npy"), buf, n);
    n = npy_image(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 4, 6), }", 96);
    write_bytes(tmp_path("d6.npy"), buf, n);
    const char *out = tmp_path("out.npy");
    const char *cases[] = {
        "--q %1$s/trunc.npy --k %1$s/good.npy --v %1$s/good.npy --out %2$s",
        "--q %1$s/rank2.npy --k %1$s/good.npy --v %1$s/good.npy --out %2$s",
        "--q %1$s/half.npy --k %1$s/good.npy --v %1$s/good.npy --out %2$s",
        "--q %1$s/good.npy --k %1$s/d6.npy --v %1$s/d6.npy --out %2$s",
        "--q %1$s/good.npy --k %1$s/good.npy --v %1$s/d6.npy --out %2$s",
        "--q %1$s/good.npy --k %1$s/good.npy --v %1$s/good.npy --seq 5 --out %2$s",
        "--q %1$s/good.npy --k %1$s/good.npy --v %1$s/missing.npy --out %2$s",
        "--seq 4 --dim 8 --prev %1$s/d6.npy --out %2$s",
        "%1$.0s--seq 4 --dim 8 --dtype fp16 --out %2$s",
        "--seq 4 --dim 8 --do %1$s/good.npy --out %2$s",
        "%1$.0s--seq 0 --out %2$s",
        "%1$.0s--seq 4 --out %2$s --lse /nonexistent/dir/lse.npy",
    };
    char line[1024];
    snprintf(line, sizeof line, cases[_i], tmpdir, out);
    ck_assert_int_eq(step_main(line), ATTN_EXIT_BAD_INPUT);
    ck_assert_msg(!exists(out), "case %d wrote %s", _i, out);
}
END_TEST

START_TEST(program_unwritable_out)
{
    ck_assert_int_eq(step_main("--seq 4 --out /nonexistent/dir/o.npy"), ATTN_EXIT_BAD_INPUT);
}
END_TEST

/* A host allocation failure in the step: exit code 3, nothing written. */
START_TEST(program_out_of_memory)
{
    make_tmpdir();
    char line[512];
    snprintf(line, sizeof line, "--seq 64 --out %s", tmp_path("o.npy"));
    attn_mem_fail_after(5); /* Q, K, V, O, LSE succeed; the step's S fails */
    int rc = step_main(line);
    attn_mem_fail_after(-1);
    ck_assert_int_eq(rc, ATTN_EXIT_RESOURCE);
    ck_assert(!exists(tmp_path("o.npy")));
}
END_TEST

/* ---- the oracle ---------------------------------------------------------- */

/* By hand: q = 1, keys 0 and ln 2 (scale 1), so weights 1/3 and 2/3;
 * values 3 and 6, so O = 1 + 4 = 5 and LSE = ln(1 + 2) = ln 3. */
START_TEST(oracle_by_hand)
{
    attn_problem p = {1, 1, 1, 1, 2, 1, 0, 1.0f};
    float q[1] = {1}, k[2] = {0, 0.69314718f}, v[2] = {3, 6};
    double o, lse;
    attn_oracle_forward(&p, q, k, v, NULL, 1, &o, &lse);
    ck_assert_double_eq_tol(o, 5.0, 1e-7);
    ck_assert_double_eq_tol(lse, log(3.0), 1e-7);
    /* causal, Sq = 2 > Sk = 1: bottom-right, so row 0 sees no key, row 1 sees key 0 */
    attn_problem c = {1, 1, 1, 2, 1, 1, 1, 1.0f};
    float q2[2] = {1, 2};
    double o2[2], lse2[2];
    attn_oracle_forward(&c, q2, k, v, NULL, 2, o2, lse2);
    ck_assert_double_eq(o2[0], 0.0);
    ck_assert(isinf(lse2[0]) && lse2[0] < 0);
    ck_assert_double_eq_tol(o2[1], 3.0, 1e-12);
    ck_assert_double_eq_tol(lse2[1], 0.0, 1e-12);
    /* the same with the bottom-right rule: Sq = 2, Sk = 3 → row 0 sees keys 0, 1 */
    attn_problem c3 = {1, 1, 1, 2, 3, 1, 1, 1.0f};
    ck_assert_int_eq(attn_keys_visible(&c3, 0), 2);
    ck_assert_int_eq(attn_keys_visible(&c3, 1), 3);
    /* NaN: propagates through the max (fmax would drop it) */
    float kn[2] = {NAN, 0};
    attn_oracle_forward(&p, q, kn, v, NULL, 1, &o, &lse);
    ck_assert(isnan(o) && isnan(lse));
}
END_TEST

/* The oracle's backward against central finite differences of
 * L = Σ O ∘ dO, with every input perturbed in turn. */
START_TEST(oracle_backward_finite_differences)
{
    static const attn_problem P[] = {{1, 2, 1, 3, 4, 3, 1, 0.7f}, {1, 2, 2, 4, 3, 2, 0, 0}};
    attn_problem p = P[_i];
    size_t qn = attn_q_elems(&p), kvn = attn_kv_elems(&p), ln = attn_lse_elems(&p);
    float *x = malloc((qn * 2 + kvn * 2) * 4);
    float *q = x, *k = q + qn, *v = k + kvn, *dout = v + kvn;
    attn_fill_normal(q, qn, 3 + _i, ATTN_STREAM_Q);
    attn_fill_normal(k, kvn, 3 + _i, ATTN_STREAM_K);
    attn_fill_normal(v, kvn, 3 + _i, ATTN_STREAM_V);
    attn_fill_normal(dout, qn, 3 + _i, ATTN_STREAM_DO);
    double *g = malloc((qn + 2 * kvn) * 8), *o = malloc(qn * 8), *lse = malloc(ln * 8);
    attn_oracle_backward(&p, q, k, v, dout, g, g + qn, g + qn + kvn);
    for (size_t t = 0; t < qn + 2 * kvn; t++) {
        float *xt = x + t, saved = *xt, h = 1e-2f;
        double L[2];
        for (int s = 0; s < 2; s++) {
            *xt = saved + (s ? -h : h);
            attn_oracle_forward(&p, q, k, v, NULL, ln, o, lse);
            L[s] = 0;
            for (size_t i = 0; i < qn; i++)
                L[s] += o[i] * dout[i];
        }
        double step = (double)(saved + h) - (double)(saved - h);
        *xt = saved;
        double fd = (L[0] - L[1]) / step;
        ck_assert_msg(fabs(fd - g[t]) <= 2e-3 * (1 + fabs(g[t])), "input %zu: analytic %.6g, finite difference %.6g",
                      t, g[t], fd);
    }
    free(x), free(g), free(o), free(lse);
}
END_TEST

/* ---- metrics, inputs, validation ---------------------------------------- */

START_TEST(metrics)
{
    float x[5] = {1.0f, 2.5f, NAN, -INFINITY, 4.0f};
    double ref[5] = {1.0, 2.0, NAN, -INFINITY, 4.0};
    attn_err e = attn_compare(x, ref, 5);
    ck_assert_double_eq_tol(e.max_abs, 0.5, 1e-12);
    ck_assert_double_eq_tol(e.rel_l2, 0.5 / sqrt(1 + 4 + 16), 1e-12);
    ck_assert_uint_eq(e.nan_count + e.nan_missing + e.inf_mismatch, 0);
    ck_assert(attn_rule_ok(&e, 0.25, 2, 1e-6));
    ck_assert(!attn_rule_ok(&e, 0.2, 2, 1e-6));
    ref[2] = 1.0; /* NaN where the reference has none: fails the rule */
    e = attn_compare(x, ref, 5);
    ck_assert_uint_eq(e.nan_count, 1);
    ck_assert(!attn_rule_ok(&e, 1.0, 2, 1e-6));
    x[2] = 1.0f, ref[2] = NAN; /* a NaN the step lost */
    e = attn_compare(x, ref, 5);
    ck_assert_uint_eq(e.nan_missing, 1);
    x[3] = 7.0f; /* a finite value where -inf belongs */
    e = attn_compare(x, ref, 5);
    ck_assert_uint_eq(e.inf_mismatch, 1);
    float l[3] = {-INFINITY, 2.0f, 1.0f};
    double lr[3] = {-INFINITY, 2.0, 1.0 + 1e-6};
    ck_assert_double_le(attn_lse_err(l, lr, 3), 1e-6);
    lr[0] = 0;
    ck_assert(isinf(attn_lse_err(l, lr, 3)));
    double med[5] = {5, 1, 4, 2, 3};
    ck_assert_double_eq(attn_median(med, 5), 3);
    ck_assert_double_eq(attn_median(med, 4), 2.5);
}
END_TEST

START_TEST(inputs_seeded)
{
    enum { N = 100001 };
    float *a = malloc(N * 4), *b = malloc(N * 4), *c = malloc(N * 4);
    attn_fill_normal(a, N, 42, ATTN_STREAM_Q);
    attn_fill_normal(b, N, 42, ATTN_STREAM_Q);
    attn_fill_normal(c, N, 42, ATTN_STREAM_K);
    ck_assert_mem_eq(a, b, N * 4);
    double mean = 0, var = 0;
    int same = 0;
    for (int i = 0; i < N; i++) {
        mean += a[i];
        same += a[i] == c[i];
        ck_assert(isfinite(a[i]) && a[i] != 0.0f);
    }
    mean /= N;
    for (int i = 0; i < N; i++)
        var += (a[i] - mean) * (a[i] - mean);
    var /= N;
    ck_assert_double_lt(fabs(mean), 0.02);
    ck_assert_double_lt(fabs(var - 1), 0.02);
    ck_assert_int_lt(same, 10);
    /* a prefix is the same whatever the length asked for */
    attn_fill_normal(b, 1001, 42, ATTN_STREAM_Q);
    ck_assert_mem_eq(a, b, 1001 * 4);
    free(a), free(b), free(c);
}
END_TEST

START_TEST(memory_accounting)
{
    attn_mem_reset_peak();
    void *a = attn_alloc(1000), *b = attn_alloc(500);
    attn_free(a);
    void *c = attn_alloc(200);
    ck_assert_uint_eq(attn_mem_peak(), 1500);
    attn_free(b), attn_free(c);
    attn_mem_fail_after(0);
    ck_assert_ptr_null(attn_alloc(12345));
    ck_assert_uint_eq(attn_mem_failed_bytes(), 12345);
    attn_mem_fail_after(-1);
    ck_assert_ptr_null(attn_calloc((size_t)-1 / 2, 4)); /* overflow refused */
    void *d = attn_alloc(8);
    ck_assert_ptr_nonnull(d);
    attn_free(d);
}
END_TEST

START_TEST(problem_rules)
{
    attn_problem p = {1, 8, 2, 10, 20, 64, 1, 0};
    char msg[256];
    ck_assert_int_eq(attn_problem_validate(&p, msg, sizeof msg), 0);
    ck_assert_float_eq(attn_scale(&p), 0.125f);
    ck_assert_int_eq(attn_kv_head(&p, 3), 0);
    ck_assert_int_eq(attn_kv_head(&p, 4), 1);
    ck_assert_int_eq(attn_keys_visible(&p, 0), 11); /* bottom-right: j <= i + 10 */
    ck_assert_int_eq(attn_keys_visible(&p, 9), 20);
    ck_assert_double_eq(attn_flops_forward(&p), 4.0 * 8 * 10 * 20 * 64 / 2);
    p.seqlen_q = 30;
    ck_assert_int_eq(attn_keys_visible(&p, 5), 0);
    ck_assert_int_eq(attn_keys_visible(&p, 10), 1);
    p.softmax_scale = -1;
    ck_assert_int_eq(attn_problem_validate(&p, msg, sizeof msg), ATTN_EXIT_BAD_INPUT);
    p.softmax_scale = 0, p.heads_kv = 3;
    ck_assert_int_eq(attn_problem_validate(&p, msg, sizeof msg), ATTN_EXIT_BAD_INPUT);
}
END_TEST

Suite *suite_common(void)
{
    Suite *s = suite_create("common");
    TCase *tc = tcase_create("npy");
    tcase_add_test(tc, npy_round_trip);
    tcase_add_test(tc, npy_version2);
    tcase_add_loop_test(tc, npy_malformed, 0, (int)(sizeof BAD_NPY / sizeof BAD_NPY[0]));
    tcase_add_test(tc, npy_not_npy);
    tcase_add_test(tc, npy_unwritable);
    tcase_add_test(tc, half_conversions);
    suite_add_tcase(s, tc);
    tc = tcase_create("cli");
    tcase_add_test(tc, cli_defaults_and_forms);
    tcase_add_loop_test(tc, cli_errors, 0, (int)(sizeof BAD_CLI / sizeof BAD_CLI[0]));
    tcase_add_test(tc, program_pass_and_outputs);
    tcase_add_loop_test(tc, program_bad_input_writes_nothing, 0, 12);
    tcase_add_test(tc, program_unwritable_out);
    tcase_add_test(tc, program_out_of_memory);
    suite_add_tcase(s, tc);
    tc = tcase_create("oracle");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, oracle_by_hand);
    tcase_add_loop_test(tc, oracle_backward_finite_differences, 0, 2);
    suite_add_tcase(s, tc);
    tc = tcase_create("metrics");
    tcase_add_test(tc, metrics);
    tcase_add_test(tc, inputs_seeded);
    tcase_add_test(tc, memory_accounting);
    tcase_add_test(tc, problem_rules);
    suite_add_tcase(s, tc);
    return s;
}
