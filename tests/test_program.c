/**
 * @file test_program.c
 * @brief Suite program: a step's program run in this process
 * (run_program()): exit codes, outputs, typed inputs through a test-only
 * pass-through step, a step's caps; and the faults of notes/faults.md
 * (unwritable outputs, host allocation failures, sizes too large, NaN and
 * Inf inputs).
 */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "suites.h"
#include "util.h"

/* ---- helpers ---------------------------------------------------------- */

static void write_bytes(const char *path, const void *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
    fclose(f);
}


/* ---- the step program: exit codes, outputs ---------------------------- */

/* What the last run_program() printed. */
static char prog_out[16384], prog_err[4096];

static void slurp(FILE *f, char *buf, size_t n)
{
    rewind(f);
    size_t got = fread(buf, 1, n - 1, f);
    buf[got] = '\0';
    fclose(f);
}

/* Run step @p s's program in this process on the space-separated flags
 * @p line, its stdout and stderr captured in prog_out / prog_err. The
 * streams are restored afterwards, so this works without fork too
 * (valgrind runs this suite with CK_FORK=no). Returns the exit code. */
static int run_program(const attn_step *s, const char *line)
{
    char buf[4096], *argv[48];
    int argc = 0;
    snprintf(buf, sizeof buf, "%s_%s %s", s->id, s->name, line);
    for (char *t = strtok(buf, " "); t && argc < 47; t = strtok(NULL, " "))
        argv[argc++] = t;
    argv[argc] = NULL;
    fflush(stdout);
    fflush(stderr);
    FILE *fo = tmpfile(), *fe = tmpfile();
    ck_assert(fo && fe);
    int saved_out = dup(STDOUT_FILENO), saved_err = dup(STDERR_FILENO);
    ck_assert(saved_out >= 0 && saved_err >= 0);
    dup2(fileno(fo), STDOUT_FILENO);
    dup2(fileno(fe), STDERR_FILENO);
    int rc = attn_step_main(argc, argv, s);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, STDOUT_FILENO);
    dup2(saved_err, STDERR_FILENO);
    close(saved_out);
    close(saved_err);
    slurp(fo, prog_out, sizeof prog_out);
    slurp(fe, prog_err, sizeof prog_err);
    return rc;
}

/* Step 01's program (the driver every CPU step shares). */
static int step_main(const char *line) { return run_program(&attn01_step, line); }

/* Exit 2 or 3 (notes/design.md): nothing on stdout, one "error: " line on stderr
 * containing @p what. */
static void assert_refused(int rc, int want_rc, const char *what, const char *line)
{
    ck_assert_msg(rc == want_rc, "'%s': exit %d, expected %d (stderr: %s)", line, rc, want_rc,
                  prog_err);
    ck_assert_msg(prog_out[0] == '\0', "'%s': exit %d but stdout has: %s", line, rc, prog_out);
    ck_assert_msg(!strncmp(prog_err, "error: ", 7) && strchr(prog_err, '\n') ==
                  prog_err + strlen(prog_err) - 1, "'%s': stderr should be one error line: %s",
                  line, prog_err);
    ck_assert_msg(strstr(prog_err, what) != NULL, "'%s': stderr should say '%s': %s", line, what,
                  prog_err);
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
        /* every format names %1$s (.0: prints nothing): glibc's fortified
         * printf aborts on positional arguments with a gap */
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

/* ---- faults: each row of notes/faults.md names the test that backs it --- */

/* Outputs that cannot be written are refused before the run: exit 2, one
 * line naming the flag, nothing on stdout, no file left behind (no O, no
 * temporary or probe file), and what already sits at the path unchanged.
 * CI runs as root, where permission bits do not stop a write: most cases
 * use a path under a non-directory (/dev/null/x), a missing directory, a
 * directory or a FIFO (a file that is not a regular one, like /dev/null,
 * which the rename would have replaced when run as root); the read-only
 * directory runs only as a normal user. */
static const struct {
    const char *line, *says;
    int non_root; /* 1: only meaningful when permission bits apply */
} UNWRITABLE[] = {
    {"--out /dev/null/o.npy", "--out /dev/null/o.npy: cannot write", 0},
    {"--out %1$s/o.npy --lse /dev/null/lse.npy", "--lse /dev/null/lse.npy: cannot write", 0},
    {"--out %1$s/missing/o.npy", "--out", 0},
    {"--out %1$s/o.npy --lse %1$s/missing/lse.npy", "--lse", 0},
    {"--out %1$s/dir", "not a regular file", 0},
    {"--out %1$s/fifo", "not a regular file", 0},
    {"--out %1$s/o.npy --lse %1$s/fifo", "not a regular file", 0},
    {"--out %1$s/o.npy --lse %1$s/o.npy", "same file", 0},
    {"--out %1$s/keep.npy --lse /dev/null/lse.npy", "--lse", 0},
    {"--out %1$s/ro/o.npy", "--out", 1},
};

static int dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

START_TEST(program_unwritable_outputs)
{
    if (UNWRITABLE[_i].non_root && geteuid() == 0)
        return; /* root writes into a read-only directory */
    make_tmpdir();
    static const char keep[] = "an older file the run must not touch";
    ck_assert_int_eq(mkdir(tmp_path("dir"), 0755), 0);
    ck_assert_int_eq(mkfifo(tmp_path("fifo"), 0644), 0);
    ck_assert_int_eq(mkdir(tmp_path("ro"), 0555), 0);
    write_bytes(tmp_path("keep.npy"), keep, sizeof keep);
    char line[1024];
    snprintf(line, sizeof line, "--seq 4 --dim 8 ");
    snprintf(line + strlen(line), sizeof line - strlen(line), UNWRITABLE[_i].line, tmpdir);
    assert_refused(step_main(line), ATTN_EXIT_BAD_INPUT, UNWRITABLE[_i].says, line);
    struct stat st;
    ck_assert(!exists(tmp_path("o.npy")));
    ck_assert(stat(tmp_path("dir"), &st) == 0 && S_ISDIR(st.st_mode));
    ck_assert(stat(tmp_path("fifo"), &st) == 0 && S_ISFIFO(st.st_mode));
    ck_assert(stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode));
    char got[sizeof keep] = "";
    FILE *f = fopen(tmp_path("keep.npy"), "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fread(got, 1, sizeof got, f), sizeof keep);
    fclose(f);
    ck_assert_mem_eq(got, keep, sizeof keep);
    ck_assert_int_eq(dir_entries(tmpdir), 4); /* dir, fifo, ro, keep.npy: no leftovers */
    ck_assert_int_eq(dir_entries(tmp_path("ro")), 0);
}
END_TEST

/* Host allocation failures (attn_mem_fail_after): the driver's inputs and
 * outputs, an input file's data, and every allocation inside each CPU
 * step. Each gives exit 3 and "needed N bytes", nothing on stdout, no
 * output file, and (under ASan and valgrind in CI) no leak. N is what the
 * failing part asked for on top of what it got: the driver names all its
 * inputs and outputs, a file its data, a step the sum of its refused
 * requests (step 03 allocates its six buffers, then checks them, so the
 * ones after the first failure count too). Problem: Hq = 2, Hkv = 1,
 * Sq = 40, Sk = 23, D = 19: Q and O are 1520 floats, K and V 437 each,
 * LSE 80; step 03 tiles are Br·D = Bc·D = 32·19 and Br·Bc = 32·32. */
#define DRIVER_BYTES ((2 * 1520 + 2 * 437 + 80) * 4)
static const struct {
    const attn_step *step;
    int files;      /* 1: inputs from .npy files */
    long ok_allocs; /* allocations that succeed before the failing one */
    size_t bytes;   /* the bytes the message must name */
    const char *what;
} HOST_OOM[] = {
    {&attn01_step, 0, 0, DRIVER_BYTES, "driver: Q"},
    {&attn01_step, 0, 4, DRIVER_BYTES, "driver: LSE"},
    {&attn01_step, 1, 0, 1520 * 4, "--q file data"},
    {&attn01_step, 1, 2, 437 * 4, "--v file data"},
    {&attn01_step, 1, 3, DRIVER_BYTES, "driver: O after files"},
    {&attn01_step, 0, 5, 2 * 40 * 23 * 4, "step 01: S (and P)"},
    {&attn01_step, 0, 6, 40 * 23 * 4, "step 01: P"},
    {&attn02_step, 0, 5, 19 * 4, "step 02: O_i accumulator"},
    {&attn03_step, 0, 5, 3 * 32 * 19 * 4 + 32 * 32 * 4 + 2 * 40 * 4, "step 03: Q_i tile (and the rest)"},
    {&attn03_step, 0, 6, 2 * 32 * 19 * 4 + 32 * 32 * 4 + 2 * 40 * 4, "step 03: K_j tile (and the rest)"},
    {&attn03_step, 0, 7, 32 * 19 * 4 + 32 * 32 * 4 + 2 * 40 * 4, "step 03: V_j tile (and the rest)"},
    {&attn03_step, 0, 8, 32 * 32 * 4 + 2 * 40 * 4, "step 03: S_ij tile (and m, l)"},
    {&attn03_step, 0, 9, 2 * 40 * 4, "step 03: m (and l)"},
    {&attn03_step, 0, 10, 40 * 4, "step 03: l"},
};

/* Q [1, 2, 40, 19], K and V [1, 1, 23, 19] as .npy files in tmpdir. */
static void write_qkv_files(void)
{
    attn_problem p = {1, 2, 1, 40, 23, 19, 0, 0};
    size_t qn = attn_q_elems(&p), kvn = attn_kv_elems(&p);
    float *q = malloc(qn * 4), *kv = malloc(kvn * 4);
    ck_assert(q && kv);
    attn_fill_normal(q, qn, 9, ATTN_STREAM_Q);
    attn_fill_normal(kv, kvn, 9, ATTN_STREAM_K);
    int64_t qs[4] = {1, 2, 40, 19}, ks[4] = {1, 1, 23, 19};
    char msg[256];
    ck_assert_int_eq(attn_npy_write(tmp_path("q.npy"), q, 4, qs, 0, msg, sizeof msg), 0);
    ck_assert_int_eq(attn_npy_write(tmp_path("k.npy"), kv, 4, ks, 0, msg, sizeof msg), 0);
    ck_assert_int_eq(attn_npy_write(tmp_path("v.npy"), kv, 4, ks, 0, msg, sizeof msg), 0);
    free(q), free(kv);
}

START_TEST(program_host_out_of_memory)
{
    make_tmpdir();
    char line[2048], want[64];
    if (HOST_OOM[_i].files) {
        write_qkv_files();
        snprintf(line, sizeof line, "--q %1$s/q.npy --k %1$s/k.npy --v %1$s/v.npy --out %1$s/o.npy",
                 tmpdir);
    } else {
        snprintf(line, sizeof line, "--heads 2 --kv-heads 1 --seq 40 --seq-k 23 --dim 19 --out %s/o.npy",
                 tmpdir);
    }
    attn_mem_fail_after(HOST_OOM[_i].ok_allocs);
    int rc = run_program(HOST_OOM[_i].step, line);
    attn_mem_fail_after(-1);
    snprintf(want, sizeof want, "needed %zu bytes", HOST_OOM[_i].bytes);
    assert_refused(rc, ATTN_EXIT_RESOURCE, want, HOST_OOM[_i].what);
    ck_assert(!exists(tmp_path("o.npy")));
}
END_TEST

/* A real allocation failure, not an injected one: step 01's S and P for
 * Sq = Sk = 2^23 need 2^48 bytes each, more than a 64-bit machine's address
 * space (so this holds with memory overcommit too).
 * Exit 3 and the bytes. (Skipped under valgrind, ATTN_TEST_QUICK=1: the
 * 100 MB of inputs take minutes there.) */
START_TEST(program_step_buffer_too_big)
{
    if (getenv("ATTN_TEST_QUICK"))
        return;
    int rc = step_main("--seq 8388608 --heads 1 --dim 1");
    /* not assert_refused(): AddressSanitizer adds a warning line of its own */
    ck_assert_int_eq(rc, ATTN_EXIT_RESOURCE);
    ck_assert_str_eq(prog_out, "");
    ck_assert_msg(strstr(prog_err, "error: step 01: out of host memory: needed 562949953421312 bytes, "),
                  "stderr: %s", prog_err);
}
END_TEST

/* Sizes whose element or byte counts overflow 32-bit indexing (or size_t):
 * refused with exit 2 before any allocation. Allocation is switched off
 * during the run, so a problem that reached one would exit 3 instead. */
static const struct {
    const char *line, *says;
} TOO_LARGE[] = {
    {"--heads 65535 --seq 16777216 --dim 256", "too large"},
    /* 2^64 elements: B·H·S·D wraps to 0 in size_t */
    {"--batch 65535 --heads 65535 --seq 16777216 --dim 256", "too large"},
    {"--heads 1 --seq 1 --seq-k 16777216 --dim 256", "too large"},
    {"--q %1$s/huge.npy --k %1$s/huge.npy --v %1$s/huge.npy", "array too large"},
    {"--q %1$s/claims4g.npy --k %1$s/claims4g.npy --v %1$s/claims4g.npy", "truncated data"},
};

START_TEST(program_too_large)
{
    make_tmpdir();
    unsigned char buf[256];
    size_t n = npy_image(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (65535, 65535, 16777216, 256), }", 0);
    write_bytes(tmp_path("huge.npy"), buf, n);
    n = npy_image(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1048576, 1024), }", 16);
    write_bytes(tmp_path("claims4g.npy"), buf, n);
    char line[1024];
    snprintf(line, sizeof line, TOO_LARGE[_i].line, tmpdir);
    attn_mem_fail_after(0);
    int rc = step_main(line);
    attn_mem_fail_after(-1);
    assert_refused(rc, ATTN_EXIT_BAD_INPUT, TOO_LARGE[_i].says, line);
}
END_TEST

/* Found while writing the fuzz targets and this table (regressions):
 * a directory given as an input file once opened, "seeked" to a size of
 * 2^63 and gave exit 3 "out of host memory"; it is bad input (exit 2). */
/* A problem larger than memory is exit 3 at once, with the bytes needed and
 * available, never a kill by the OOM killer minutes later: step 01 at
 * Sq = Sk = 65536 wants 32 GiB of S and P (it used to be killed after
 * minutes: malloc succeeds on an overcommitting kernel). Under a memory budget
 * (ATTN_MEM_LIMIT, which stands in for MemAvailable) and under `ulimit -v`
 * (RLIMIT_AS, in a child process). */
START_TEST(program_larger_than_memory)
{
    make_tmpdir();
    char line[256];
    snprintf(line, sizeof line, "--seq 65536 --dim 1 --heads 1 --out %s", tmp_path("o.npy"));
    setenv("ATTN_MEM_LIMIT", "1000000000", 1); /* 1 GB */
    int rc = step_main(line);
    unsetenv("ATTN_MEM_LIMIT");
    attn_mem_reset_peak(); /* the budget from the machine again */
    assert_refused(rc, ATTN_EXIT_RESOURCE, "needed 34359738368 bytes, 1000000000 available", line);
    ck_assert_msg(strstr(prog_err, "available"), "%s", prog_err);
    ck_assert(!exists(tmp_path("o.npy")));
    if (getenv("ATTN_TEST_QUICK"))
        return; /* valgrind: its own allocator does not mix with RLIMIT_AS */
#if defined(__SANITIZE_ADDRESS__)
    return; /* AddressSanitizer reserves terabytes of address space at start */
#endif
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct rlimit rl = {(rlim_t)4 << 30, (rlim_t)4 << 30}; /* 4 GiB of address space */
        if (setrlimit(RLIMIT_AS, &rl) != 0)
            _exit(99);
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, STDOUT_FILENO), dup2(fd, STDERR_FILENO);
        attn_mem_reset_peak();
        char *argv[] = {"01_naive_cpu", "--seq", "65536", "--dim", "1", "--heads", "1", NULL};
        _exit(attn_step_main(7, argv, &attn01_step));
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == ATTN_EXIT_RESOURCE,
                  "under ulimit -v: status 0x%x, expected exit 3", status);
}
END_TEST

/* A flag value or a path with a newline or an escape sequence is echoed
 * escaped (\x0a, \x1b): the error stays one line, and cannot move the
 * terminal's cursor (it used to be echoed raw). */
START_TEST(program_messages_one_line)
{
    static const char *const LINES[] = {
        "--seq 12\n3",
        "--dtype \x1b[2Jfp16",
        "--seq 4 --dim 8 --out /nonexistent\n/x.npy",
        "--q /missing\r.npy --k /missing.npy --v /missing.npy",
    };
    for (size_t c = 0; c < sizeof LINES / sizeof LINES[0]; c++) {
        int rc = step_main(LINES[c]);
        assert_refused(rc, ATTN_EXIT_BAD_INPUT, "\\x", LINES[c]);
        for (const char *e = prog_err; *e; e++)
            ck_assert_msg(!((unsigned char)*e < 0x20 && *e != '\n'), "case %zu: raw control byte 0x%02x",
                          c, (unsigned)(unsigned char)*e);
    }
}
END_TEST

/* Smaller refusals: --deterministic=0 on a forward step (any
 * --deterministic there is a backward flag), --prev in float16 to an fp32
 * step (as --q), and a long but valid output name (250 bytes: the old probe
 * name added ".probe.<pid>" and passed NAME_MAX) that must be written. */
START_TEST(program_small_refusals)
{
    make_tmpdir();
    char line[1024], name[251];
    assert_refused(step_main("--seq 4 --dim 8 --deterministic=0"), ATTN_EXIT_BAD_INPUT,
                   "forward step", "--deterministic=0");
    float x[32];
    attn_fill_normal(x, 32, 3, ATTN_STREAM_Q);
    int64_t shape[4] = {1, 4, 4, 2};
    char msg[256];
    ck_assert_int_eq(attn_npy_write(tmp_path("prev16.npy"), x, 4, shape, 1, msg, sizeof msg), 0);
    snprintf(line, sizeof line, "--seq 4 --dim 2 --prev %s", tmp_path("prev16.npy"));
    assert_refused(step_main(line), ATTN_EXIT_BAD_INPUT, "float16", line);
    memset(name, 'n', 250);
    name[250] = '\0';
    snprintf(line, sizeof line, "--seq 4 --dim 8 --out %s/%s", tmpdir, name);
    int rc = step_main(line);
    ck_assert_msg(rc == ATTN_EXIT_PASS, "a 250-byte output name: exit %d (%s)", rc, prog_err);
    ck_assert(exists(tmp_path(name)));
}
END_TEST

/* Outputs that are one file under two names, or an input: refused with
 * exit 2 before the run, nothing written, the files untouched (these used
 * to exit 0 and lose O, or overwrite the input). */
START_TEST(program_output_aliases)
{
    make_tmpdir();
    write_qkv_files();
    char line[1024];
    static const char keep[4] = "KEEP";
    write_bytes(tmp_path("keep.npy"), keep, sizeof keep);
    ck_assert_int_eq(link(tmp_path("keep.npy"), tmp_path("hard.npy")), 0);
    ck_assert_int_eq(mkdir(tmp_path("sub"), 0755), 0);
    static const struct {
        const char *line, *says;
    } C[] = {
        {"%1$.0s--seq 4 --dim 8 --out %1$s/o.npy --lse %1$s/./o.npy", "same file"},
        {"%1$.0s--seq 4 --dim 8 --out %1$s/o.npy --lse %1$s/sub/../o.npy", "same file"},
        {"%1$.0s--seq 4 --dim 8 --out %1$s/keep.npy --lse %1$s/hard.npy", "same file"},
        {"--q %1$s/q.npy --k %1$s/k.npy --v %1$s/v.npy --out %1$s/./q.npy", "must not overwrite an input"},
        {"--q %1$s/q.npy --k %1$s/k.npy --v %1$s/v.npy --lse %1$s/sub/../v.npy", "must not overwrite an input"},
    };
    for (size_t c = 0; c < sizeof C / sizeof C[0]; c++) {
        snprintf(line, sizeof line, C[c].line, tmpdir);
        assert_refused(step_main(line), ATTN_EXIT_BAD_INPUT, C[c].says, line);
        ck_assert_msg(!exists(tmp_path("o.npy")), "'%s' wrote o.npy", line);
    }
    char got[8] = {0};
    FILE *f = fopen(tmp_path("keep.npy"), "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fread(got, 1, sizeof got, f), sizeof keep);
    fclose(f);
    ck_assert(!memcmp(got, keep, sizeof keep));
    attn_array q = {0};
    char msg[256];
    ck_assert_int_eq(attn_npy_read(tmp_path("q.npy"), &q, msg, sizeof msg), 0); /* still the input */
    attn_array_free(&q);
    /* q, k, v, keep, hard, sub, and nothing else: no temporaries left */
    ck_assert_int_eq(dir_entries(tmpdir), 6);
}
END_TEST

/* All or none: when a later output fails after an earlier one was written,
 * neither path changes (an older file at the first stays as it was) and no
 * temporary is left; the temporaries are made with mkstemp beside each
 * path (a planted symlink is never followed). */
START_TEST(outputs_all_or_none)
{
    make_tmpdir();
    static const char old[3] = "OLD";
    write_bytes(tmp_path("o.npy"), old, sizeof old);
    ck_assert_int_eq(mkdir(tmp_path("gone"), 0755), 0);
    char lse_path[512], msg[512];
    snprintf(lse_path, sizeof lse_path, "%s", tmp_path("gone/lse.npy"));
    char o_path[512];
    snprintf(o_path, sizeof o_path, "%s", tmp_path("o.npy"));
    attn_outputs s;
    attn_outputs_init(&s);
    ck_assert_int_eq(attn_outputs_add(&s, "--out", o_path, msg, sizeof msg), 0);
    ck_assert_int_eq(attn_outputs_add(&s, "--lse", lse_path, msg, sizeof msg), 0);
    const float x[4] = {1, 2, 3, 4};
    const int64_t shape[1] = {4};
    ck_assert_int_eq(attn_outputs_write(&s, o_path, x, 1, shape, 0, msg, sizeof msg), 0);
    ck_assert_int_eq(rmdir(tmp_path("gone")), 0); /* the second output's directory vanishes */
    ck_assert_int_ne(attn_outputs_write(&s, lse_path, x, 1, shape, 0, msg, sizeof msg), 0);
    attn_outputs_discard(&s);
    char got[8] = {0};
    FILE *f = fopen(o_path, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fread(got, 1, sizeof got, f), sizeof old);
    fclose(f);
    ck_assert_msg(!memcmp(got, old, sizeof old), "o.npy changed although the set failed");
    ck_assert_int_eq(dir_entries(tmpdir), 1); /* o.npy only: the temporary is gone */
    /* and the good path: both written, renamed, no temporary left */
    attn_outputs_init(&s);
    ck_assert_int_eq(attn_outputs_add(&s, "--out", o_path, msg, sizeof msg), 0);
    ck_assert_int_eq(attn_outputs_write(&s, o_path, x, 1, shape, 0, msg, sizeof msg), 0);
    ck_assert_int_eq(attn_outputs_commit(&s, msg, sizeof msg), 0);
    attn_array a = {0};
    ck_assert_int_eq(attn_npy_read(o_path, &a, msg, sizeof msg), 0);
    ck_assert(a.rank == 1 && a.data[3] == 4.0f);
    attn_array_free(&a);
    ck_assert_int_eq(dir_entries(tmpdir), 1);
}
END_TEST

/* A file another user owns in a sticky directory (as in /tmp) cannot be
 * replaced by the final rename: the rule that refuses it before the run,
 * on the owners and modes that decide it. (A test suite run by one user,
 * or by root, whom the sticky bit does not stop, cannot make the real
 * case; the rule itself is what this checks.) */
START_TEST(outputs_sticky_directory)
{
    const unsigned sticky = 01777u | 0040000u, plain = 0755u | 0040000u;
    ck_assert(attn_sticky_blocks(sticky, 0, 1001, 1000));      /* someone else's file, root's /tmp */
    ck_assert(!attn_sticky_blocks(sticky, 0, 1000, 1000));     /* one's own file */
    ck_assert(!attn_sticky_blocks(sticky, 1000, 1001, 1000));  /* one's own directory */
    ck_assert(!attn_sticky_blocks(sticky, 0, 1001, 0));        /* root */
    ck_assert(!attn_sticky_blocks(plain, 0, 1001, 1000));      /* not sticky: write permission decides */
}
END_TEST

/* SIGTERM (and SIGINT) while outputs are being written: the temporaries
 * are removed before the process dies, and no output appears. */
START_TEST(outputs_signal_removes_temporaries)
{
    make_tmpdir();
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char msg[256];
        attn_outputs s;
        attn_outputs_init(&s);
        const char *o = tmp_path("o.npy");
        const float x[2] = {1, 2};
        const int64_t shape[1] = {2};
        if (attn_outputs_add(&s, "--out", o, msg, sizeof msg) ||
            attn_outputs_write(&s, o, x, 1, shape, 0, msg, sizeof msg))
            _exit(2);
        kill(getpid(), _i == 0 ? SIGTERM : SIGINT); /* before the commit */
        _exit(0); /* not reached: the handler re-raises the signal */
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == (_i == 0 ? SIGTERM : SIGINT),
                  "the child should die of the signal (status 0x%x)", status);
    ck_assert_int_eq(dir_entries(tmpdir), 0);
}
END_TEST

/* An input that is a FIFO with no writer: refused at once as not a regular
 * file (it used to block forever in fopen). alarm() turns a hang into a
 * failure when the suite runs without fork. */
START_TEST(program_input_fifo)
{
    make_tmpdir();
    char line[1024];
    ck_assert_int_eq(mkfifo(tmp_path("fifo.npy"), 0644), 0);
    const char *flags[] = {"--q %1$s/fifo.npy --k %1$s/fifo.npy --v %1$s/fifo.npy",
                           "%1$.0s--seq 4 --dim 8 --prev %1$s/fifo.npy"};
    for (int c = 0; c < 2; c++) {
        snprintf(line, sizeof line, flags[c], tmpdir);
        alarm(20);
        assert_refused(step_main(line), ATTN_EXIT_BAD_INPUT, "not a regular file", line);
        alarm(0);
    }
}
END_TEST

/* Large files are judged by their header and size before any data is read
 * or any memory taken for it: a 64 GiB (sparse) file whose header promises
 * 64 bytes is "trailing bytes" (exit 2; it was "out of host memory", exit 3,
 * after a read of the whole file), and a 16 GiB --q whose shape disagrees
 * with --k is refused by shape (it was read in full first). */
START_TEST(program_large_files_judged_by_header)
{
    make_tmpdir();
    unsigned char buf[512];
    char line[1024];
    size_t n = npy_image(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 4, 4), }", 64);
    write_bytes(tmp_path("small.npy"), buf, n);
    write_bytes(tmp_path("tail.npy"), buf, n);
    ck_assert_int_eq(truncate(tmp_path("tail.npy"), (off_t)64 << 30), 0);
    n = npy_image(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1048576, 4096), }", 0);
    write_bytes(tmp_path("big.npy"), buf, n);
    ck_assert_int_eq(truncate(tmp_path("big.npy"), (off_t)n + ((off_t)16 << 30)), 0);
    snprintf(line, sizeof line, "--q %1$s/tail.npy --k %1$s/small.npy --v %1$s/small.npy", tmpdir);
    attn_mem_fail_after(0); /* a read of the data would need memory: none is given */
    int rc = step_main(line);
    attn_mem_fail_after(-1);
    assert_refused(rc, ATTN_EXIT_BAD_INPUT, "trailing bytes", line);
    snprintf(line, sizeof line, "--q %1$s/big.npy --k %1$s/small.npy --v %1$s/small.npy", tmpdir);
    attn_mem_fail_after(0);
    rc = step_main(line);
    attn_mem_fail_after(-1);
    assert_refused(rc, ATTN_EXIT_BAD_INPUT, "batch and head dim must match", line);
}
END_TEST

START_TEST(program_input_not_a_file)
{
    make_tmpdir();
    char line[1024];
    snprintf(line, sizeof line, "--q %1$s --k %1$s --v %1$s", tmpdir);
    assert_refused(step_main(line), ATTN_EXIT_BAD_INPUT, "not a regular file", line);
    assert_refused(step_main("--q /dev/null --k /dev/null --v /dev/null"), ATTN_EXIT_BAD_INPUT,
                   "not a regular file", "--q /dev/null");
}
END_TEST

/*
 * NaN and Inf in input files, through the step programs 01, 02, 03.
 * Problem: Q [1, 2, 5, 4], K and V [1, 1, 7, 4] (GQA: both query heads read
 * the one K/V head), default scale 0.5; causal where a case says so, and
 * then query row i sees keys j <= i + 2. The results, as notes/faults.md
 * states them:
 *  - NaN in Q row i: O row i and LSE i are NaN, nothing else.
 *  - NaN in K row j: every row that sees key j is NaN (O and LSE).
 *  - NaN in V[j][d]: O[i][d] of every row i that sees key j; LSE finite.
 *  - +Inf in Q row i: O row i and LSE i are NaN (every score of the row is
 *    +inf, -inf or NaN, and the softmax of those is inf/inf or 0/0).
 *  - +Inf in K[j][0]: rows whose score for key j is +inf are NaN; rows
 *    where it is -inf give key j weight 0, as if it were masked.
 *  - A -inf score on a row's first key: weight 0, as if masked, in every
 *    step (step 02 needs FlashAttention-2's guard for it: without it the
 *    online update computes exp(-inf - (-inf)) = NaN).
 *  - +Inf in V[j][d]: O[i][d] = +Inf for every row that sees key j.
 *  - Finite inputs whose fp32 score overflows (1e30 · 1e30): that row is
 *    NaN in fp32 while the float64 oracle is finite: FAIL, exit 1, with
 *    the "NaN in O" line; the outputs are still written.
 *  - -Inf in Q row i, every K[j][0] > 0: every score of row i is -inf, a
 *    row masked by its scores: O row i = 0 and LSE i = -inf, never NaN
 *    (the rule of notes/design.md, "Fully masked rows"), in the oracle too.
 * Exit 0 (PASS) everywhere else: the float64 oracle follows the same IEEE
 * rules, and the check compares NaN and Inf positions as well as values.
 */
enum { NI_SQ = 5, NI_SK = 7, NI_D = 4, NI_CASES = 9 };
static const char *const NI_NAME[NI_CASES] = {
    "nan-q", "nan-k causal", "nan-v causal", "+inf-q", "+inf-k", "-inf-k first key", "+inf-v",
    "fp32 overflow", "-inf-q every score"};
/* NI_MASKED: O exactly 0, LSE exactly -inf */
enum { NI_FINITE = 0, NI_NAN = 1, NI_INF = 2, NI_MASKED = 3 };

static int ni_sees(int c, int i, int j) { return (c == 1 || c == 2) ? j <= i + NI_SK - NI_SQ : 1; }

/* What O[h][i][d] must be for case c (every step alike). */
static int ni_o(int c, int h, int i, int d)
{
    switch (c) {
    case 0: return h == 1 && i == 2 ? NI_NAN : NI_FINITE;
    case 1: return ni_sees(c, i, 3) ? NI_NAN : NI_FINITE;
    case 2: return ni_sees(c, i, 3) && d == 2 ? NI_NAN : NI_FINITE;
    case 3: return h == 0 && i == 1 ? NI_NAN : NI_FINITE;
    case 4: return i % 2 == 0 ? NI_NAN : NI_FINITE;
    case 5: return i % 2 == 1 ? NI_NAN : NI_FINITE;
    case 6: return d == 1 ? NI_INF : NI_FINITE;
    case 8: return h == 1 && i == 3 ? NI_MASKED : NI_FINITE;
    default: return h == 0 && i == 1 ? NI_NAN : NI_FINITE;
    }
}

static int ni_lse(int c, int h, int i)
{
    return (c == 2 || c == 6) ? NI_FINITE : ni_o(c, h, i, 0);
}

static int ni_rc(int c) { return c == 7 ? ATTN_EXIT_FAIL : ATTN_EXIT_PASS; }

static int classify(float x) { return isnan(x) ? NI_NAN : isinf(x) ? NI_INF : NI_FINITE; }

START_TEST(program_nan_inf_inputs)
{
    const int c = _i / 3, s = 1 + _i % 3;
    const attn_step *step = s == 1 ? &attn01_step : s == 2 ? &attn02_step : &attn03_step;
    make_tmpdir();
    float q[2 * NI_SQ * NI_D], k[NI_SK * NI_D], v[NI_SK * NI_D];
    attn_fill_normal(q, 2 * NI_SQ * NI_D, 31 + (uint64_t)c, ATTN_STREAM_Q);
    attn_fill_normal(k, NI_SK * NI_D, 31 + (uint64_t)c, ATTN_STREAM_K);
    attn_fill_normal(v, NI_SK * NI_D, 31 + (uint64_t)c, ATTN_STREAM_V);
#define Q(h, i, d) q[((h) * NI_SQ + (i)) * NI_D + (d)]
    if (c == 8) /* a positive first coordinate in every K row */
        for (int j = 0; j < NI_SK; j++)
            k[j * NI_D] = fabsf(k[j * NI_D]) + 0.25f;
    if (c == 4 || c == 5) /* the sign of each row's score for the Inf key */
        for (int h = 0; h < 2; h++)
            for (int i = 0; i < NI_SQ; i++)
                Q(h, i, 0) = i % 2 == 0 ? 1.0f : -1.0f;
    switch (c) {
    case 0: Q(1, 2, 1) = NAN; break;
    case 1: k[3 * NI_D + 0] = NAN; break;
    case 2: v[3 * NI_D + 2] = NAN; break;
    case 3: Q(0, 1, 0) = INFINITY; break;
    case 4: k[2 * NI_D + 0] = INFINITY; break;
    case 5: k[0 * NI_D + 0] = -INFINITY; break;
    case 6: v[3 * NI_D + 1] = INFINITY; break;
    case 8: Q(1, 3, 0) = -INFINITY; break;
    default:
        for (int d = 0; d < NI_D; d++)
            Q(0, 1, d) = 1e30f, k[4 * NI_D + d] = 1e30f;
    }
    int64_t qs[4] = {1, 2, NI_SQ, NI_D}, ks[4] = {1, 1, NI_SK, NI_D};
    char msg[256], line[2048];
    ck_assert_int_eq(attn_npy_write(tmp_path("q.npy"), q, 4, qs, 0, msg, sizeof msg), 0);
    ck_assert_int_eq(attn_npy_write(tmp_path("k.npy"), k, 4, ks, 0, msg, sizeof msg), 0);
    ck_assert_int_eq(attn_npy_write(tmp_path("v.npy"), v, 4, ks, 0, msg, sizeof msg), 0);
    snprintf(line, sizeof line, "--q %1$s/q.npy --k %1$s/k.npy --v %1$s/v.npy --out %1$s/o.npy "
             "--lse %1$s/lse.npy%2$s", tmpdir, (c == 1 || c == 2) ? " --causal" : "");
    int rc = run_program(step, line);
    const int want = ni_rc(c);
    ck_assert_msg(rc == want, "%s, step %s: exit %d, expected %d\n%s%s", NI_NAME[c], step->id, rc,
                  want, prog_out, prog_err);
    const char *verdict = want == ATTN_EXIT_PASS ? "\nPASS\n" : "\nFAIL\n";
    ck_assert_msg(strlen(prog_out) > 6 && !strcmp(prog_out + strlen(prog_out) - 6, verdict),
                  "%s: stdout should end in %s: %s", NI_NAME[c], verdict + 1, prog_out);
    if (want == ATTN_EXIT_FAIL)
        ck_assert_msg(strstr(prog_out, "NaN in O"), "%s: FAIL should say why: %s", NI_NAME[c],
                      prog_out);
    attn_array o, l;
    ck_assert_int_eq(attn_npy_read(tmp_path("o.npy"), &o, msg, sizeof msg), 0);
    ck_assert_int_eq(attn_npy_read(tmp_path("lse.npy"), &l, msg, sizeof msg), 0);
    for (int h = 0; h < 2; h++)
        for (int i = 0; i < NI_SQ; i++) {
            float lse = l.data[h * NI_SQ + i];
            const int want_l = ni_lse(c, h, i);
            ck_assert_msg(want_l == NI_MASKED ? lse == -INFINITY : classify(lse) == want_l,
                          "%s, step %s: LSE[%d][%d] = %g", NI_NAME[c], step->id, h, i,
                          (double)lse);
            for (int d = 0; d < NI_D; d++) {
                float x = o.data[(h * NI_SQ + i) * NI_D + d];
                const int want_o = ni_o(c, h, i, d);
                ck_assert_msg(want_o == NI_MASKED ? x == 0.0f : classify(x) == want_o,
                              "%s, step %s: O[%d][%d][%d] = %g", NI_NAME[c], step->id, h, i, d,
                              (double)x);
                ck_assert(classify(x) != NI_INF || x > 0);
            }
        }
#undef Q
    attn_array_free(&o), attn_array_free(&l);
}
END_TEST

/* ---- typed tensors through the driver: a test-only pass-through step ---- */

/** What the pass-through step was last handed. */
static attn_params pt_seen;
/** The first bits of Q it was handed, as stored (16-bit types). */
static uint16_t pt_q_bits[8];

/** A test-only step on attn_params: records what it is given, then writes
 *  O = Q element by element in Q's type and strides (a pass-through) and
 *  LSE = 0. It proves what reaches an entry point, not attention. */
static int passthrough_forward(const attn_params *pp, void *ws, struct CUstream_st *stream)
{
    (void)ws, (void)stream;
    pt_seen = *pp;
    const attn_problem *p = &pp->prob;
    const size_t es = attn_dtype_size(pp->q.dtype);
    if (es == 2)
        memcpy(pt_q_bits, pp->q.data, sizeof pt_q_bits);
    for (int b = 0; b < p->batch; b++)
        for (int h = 0; h < p->heads_q; h++)
            for (int i = 0; i < p->seqlen_q; i++) {
                const char *src = (const char *)pp->q.data +
                                  (b * pp->q.stride_b + h * pp->q.stride_h + i * pp->q.stride_s) * es;
                char *dst = (char *)pp->o.data +
                            (b * pp->o.stride_b + h * pp->o.stride_h + i * pp->o.stride_s) * es;
                memcpy(dst, src, (size_t)p->head_dim * es);
                pp->lse[((size_t)b * p->heads_q + h) * p->seqlen_q + i] = 0.0f;
            }
    return 0;
}

/** The pass-through step: fp16 and bf16, any strides, any head dim. */
static const attn_step passthrough_step = {
    "t16", "passthrough", 0, NULL, NULL, NULL, NULL, attn_cpu_run,
    {(1u << ATTN_F16) | (1u << ATTN_BF16), ATTN_FEAT_STRIDES, 1, 256, NULL}, passthrough_forward,
    ATTN_KIND_FORWARD, NULL, NULL, NULL};

/** Q, K, V files of shape [1, 2, 5, 8] (K/V: one head, 7 rows) in float16 or float32. */
static void write_typed_qkv(int as_fp16, float *q)
{
    float kv[7 * 8];
    int64_t qs[4] = {1, 2, 5, 8}, ks[4] = {1, 1, 7, 8};
    char msg[256];
    attn_fill_normal(q, 80, 11, ATTN_STREAM_Q);
    attn_fill_normal(kv, 56, 11, ATTN_STREAM_K);
    if (as_fp16)
        for (int i = 0; i < 80; i++)
            q[i] = attn_half_to_float(attn_float_to_half(q[i])); /* what the file will hold */
    ck_assert_int_eq(attn_npy_write(tmp_path("q.npy"), q, 4, qs, as_fp16, msg, sizeof msg), 0);
    ck_assert_int_eq(attn_npy_write(tmp_path("k.npy"), kv, 4, ks, as_fp16, msg, sizeof msg), 0);
    ck_assert_int_eq(attn_npy_write(tmp_path("v.npy"), kv, 4, ks, as_fp16, msg, sizeof msg), 0);
}

/* --dtype fp16 and a float16 .npy reach the entry point as fp16 data (the
 * file's bits), the result line says dtype=fp16, and O is written as
 * float16; --dtype bf16 with float32 files hands over bf16 bits and writes
 * float32; --layout bshd hands over BSHD strides and O comes back right. */
START_TEST(program_typed_inputs)
{
    make_tmpdir();
    static const struct {
        int fp16_files;
        const char *flags;
        attn_dtype want;
        attn_layout layout;
    } C[] = {
        {1, "--dtype fp16", ATTN_F16, ATTN_LAYOUT_BHSD},
        {0, "--dtype bf16", ATTN_BF16, ATTN_LAYOUT_BHSD},
        {1, "--dtype fp16 --layout bshd", ATTN_F16, ATTN_LAYOUT_BSHD},
        {0, "--dtype bf16 --layout=bshd", ATTN_BF16, ATTN_LAYOUT_BSHD},
    };
    float q[80];
    char line[1024], msg[256], want_kv[32];
    write_typed_qkv(C[_i].fp16_files, q);
    snprintf(line, sizeof line, "--q %s --k %s --v %s %s --no-check --out %s", tmp_path("q.npy"),
             tmp_path("k.npy"), tmp_path("v.npy"), C[_i].flags, tmp_path("o.npy"));
    memset(&pt_seen, 0, sizeof pt_seen);
    int rc = run_program(&passthrough_step, line);
    ck_assert_msg(rc == 0, "'%s': exit %d (%s)", line, rc, prog_err);
    snprintf(want_kv, sizeof want_kv, "dtype=%s ", attn_dtype_name(C[_i].want));
    ck_assert_msg(strstr(prog_out, want_kv), "'%s': no '%s' in: %s", line, want_kv, prog_out);
    /* what the entry point saw */
    ck_assert_int_eq(pt_seen.q.dtype, C[_i].want);
    ck_assert_int_eq(pt_seen.o.dtype, C[_i].want);
    ck_assert_int_eq(pt_seen.struct_size, sizeof(attn_params));
    const int64_t want_stride_h = C[_i].layout == ATTN_LAYOUT_BSHD ? 8 : 5 * 8;
    ck_assert_int_eq(pt_seen.q.stride_h, want_stride_h);
    /* K has one head: its row stride is D = 8 in both layouts, its head
     * stride 7·8 in BHSD and 8 in BSHD */
    ck_assert_int_eq(pt_seen.k.stride_s, 8);
    ck_assert_int_eq(pt_seen.k.stride_h, C[_i].layout == ATTN_LAYOUT_BSHD ? 8 : 7 * 8);
    for (int e = 0; e < 8; e++) {
        const uint16_t want = C[_i].want == ATTN_F16 ? attn_float_to_half(q[e]) : attn_float_to_bf16(q[e]);
        ck_assert_msg(pt_q_bits[e] == want, "'%s': Q[%d] reached the step as 0x%04x, expected 0x%04x",
                      line, e, pt_q_bits[e], want);
    }
    /* O: written in the input's type, equal to Q rounded to the step's type */
    attn_array o = {0};
    ck_assert_int_eq(attn_npy_read(tmp_path("o.npy"), &o, msg, sizeof msg), 0);
    ck_assert_int_eq(o.was_fp16, C[_i].want == ATTN_F16);
    for (int e = 0; e < 80; e++)
        ck_assert_float_eq(o.data[e], attn_round_to(q[e], C[_i].want));
    attn_array_free(&o);
}
END_TEST

/* What a step does not take is refused with exit 2 and writes nothing: an
 * fp32 step and --dtype fp16 or a float16 file, an fp32 step and --layout
 * bshd, the 16-bit step and --dtype fp32. */
START_TEST(program_typed_refusals)
{
    make_tmpdir();
    float q[80];
    char line[1024];
    write_typed_qkv(1, q);
    const char *out = tmp_path("o.npy");
    snprintf(line, sizeof line, "--seq 4 --dim 8 --dtype fp16 --out %s", out);
    assert_refused(step_main(line), ATTN_EXIT_BAD_INPUT, "computes in fp32 only", line);
    snprintf(line, sizeof line, "--q %s --k %s --v %s --out %s", tmp_path("q.npy"), tmp_path("k.npy"),
             tmp_path("v.npy"), out);
    assert_refused(step_main(line), ATTN_EXIT_BAD_INPUT, "float16 input", line);
    snprintf(line, sizeof line, "--seq 4 --dim 8 --layout bshd --out %s", out);
    assert_refused(step_main(line), ATTN_EXIT_BAD_INPUT, "BHSD tensors only", line);
    snprintf(line, sizeof line, "--seq 4 --dim 8 --dtype fp32 --out %s", out);
    assert_refused(run_program(&passthrough_step, line), ATTN_EXIT_BAD_INPUT, "computes in fp16 bf16", line);
    snprintf(line, sizeof line, "--seq 4 --dim 8 --layout bhsdx --out %s", out);
    assert_refused(step_main(line), ATTN_EXIT_BAD_INPUT, "--layout: expected bhsd or bshd", line);
    ck_assert(!exists(out));
}
END_TEST

/* attn_params_check refuses what a step's caps lack, by name. */
START_TEST(params_check_caps)
{
    attn_problem p = {1, 4, 2, 10, 12, 64, 1, 0};
    attn_params pp;
    char msg[256];
    const int dims[] = {64, 128, 0};
    attn_caps caps = {1u << ATTN_F16, 0, 1, 256, dims};
    attn_params_init(&pp, &p, ATTN_F16, NULL, NULL, NULL, NULL, NULL);
    ck_assert_int_eq(attn_params_check(&pp, &caps, "08", msg, sizeof msg), 0);
    attn_params_init(&pp, &p, ATTN_BF16, NULL, NULL, NULL, NULL, NULL);
    ck_assert_int_eq(attn_params_check(&pp, &caps, "08", msg, sizeof msg), ATTN_EXIT_BAD_INPUT);
    ck_assert_msg(strstr(msg, "--dtype bf16: step 08 computes in fp16"), "%s", msg);
    p.head_dim = 96;
    attn_params_init(&pp, &p, ATTN_F16, NULL, NULL, NULL, NULL, NULL);
    ck_assert_int_eq(attn_params_check(&pp, &caps, "08", msg, sizeof msg), ATTN_EXIT_BAD_INPUT);
    ck_assert_msg(strstr(msg, "--dim 96: step 08 supports head dims 64, 128"), "%s", msg);
    p.head_dim = 64;
    attn_params_init(&pp, &p, ATTN_F16, NULL, NULL, NULL, NULL, NULL);
    attn_tensor_strides(&pp.q, ATTN_LAYOUT_BSHD, 4, 10, 64);
    ck_assert_int_eq(attn_params_check(&pp, &caps, "08", msg, sizeof msg), ATTN_EXIT_BAD_INPUT);
    ck_assert_msg(strstr(msg, "BHSD"), "%s", msg);
    caps.features = ATTN_FEAT_STRIDES;
    ck_assert_int_eq(attn_params_check(&pp, &caps, "08", msg, sizeof msg), 0);
    static const struct {
        const char *what;
        unsigned feat;
    } F[] = {{"a sliding window", ATTN_FEAT_WINDOW}, {"ALiBi", ATTN_FEAT_ALIBI},
             {"softcap", ATTN_FEAT_SOFTCAP},        {"dropout", ATTN_FEAT_DROPOUT},
             {"variable lengths", ATTN_FEAT_VARLEN}, {"a KV cache", ATTN_FEAT_KVCACHE},
             {"a paged KV cache", ATTN_FEAT_PAGED}};
    const float slopes[4] = {0};
    const int32_t ints[4] = {0};
    for (size_t f = 0; f < sizeof F / sizeof F[0]; f++) {
        attn_params_init(&pp, &p, ATTN_F16, NULL, NULL, NULL, NULL, NULL);
        switch (f) {
        case 0: pp.window_left = 3; break;
        case 1: pp.alibi_slopes = slopes; break;
        case 2: pp.softcap = 30.0f; break;
        case 3: pp.dropout_p = 0.1f; break;
        case 4: pp.cu_seqlens_q = ints; break;
        case 5: pp.cache_seqlens = ints; break;
        default: pp.block_table = ints, pp.page_size = 16, pp.max_blocks = 1; break;
        }
        caps.features = ATTN_FEAT_STRIDES;
        ck_assert_int_eq(attn_params_check(&pp, &caps, "08", msg, sizeof msg), ATTN_EXIT_BAD_INPUT);
        ck_assert_msg(strstr(msg, F[f].what), "feature %zu: %s", f, msg);
        caps.features |= F[f].feat;
        ck_assert_msg(attn_params_check(&pp, &caps, "08", msg, sizeof msg) == 0, "feature %zu: %s", f, msg);
    }
    attn_params_init(&pp, &p, ATTN_F16, NULL, NULL, NULL, NULL, NULL);
    pp.version = 0;
    ck_assert_int_eq(attn_params_check(&pp, &caps, "08", msg, sizeof msg), ATTN_EXIT_BAD_INPUT);
    ck_assert_int_eq(attn_dtype_parse("bf16"), ATTN_BF16);
    ck_assert_int_eq(attn_dtype_parse("fp64"), -1);
    ck_assert_uint_eq(attn_dtype_size(ATTN_F8_E4M3), 1);
}
END_TEST

Suite *suite_program(void)
{
    Suite *s = suite_create("program");
    TCase *tc = tcase_create("program");
    tcase_add_test(tc, program_pass_and_outputs);
    tcase_add_loop_test(tc, program_bad_input_writes_nothing, 0, 12);
    tcase_add_test(tc, program_unwritable_out);
    tcase_add_test(tc, program_out_of_memory);
    tcase_add_loop_test(tc, program_typed_inputs, 0, 4);
    tcase_add_test(tc, program_typed_refusals);
    tcase_add_test(tc, params_check_caps);
    suite_add_tcase(s, tc);
    tc = tcase_create("faults");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, program_unwritable_outputs, 0, (int)(sizeof UNWRITABLE / sizeof UNWRITABLE[0]));
    tcase_add_loop_test(tc, program_host_out_of_memory, 0, (int)(sizeof HOST_OOM / sizeof HOST_OOM[0]));
    tcase_add_test(tc, program_step_buffer_too_big);
    tcase_add_test(tc, program_input_fifo);
    tcase_add_test(tc, program_small_refusals);
    tcase_add_test(tc, program_messages_one_line);
    tcase_add_test(tc, program_larger_than_memory);
    tcase_add_test(tc, program_output_aliases);
    tcase_add_test(tc, outputs_all_or_none);
    tcase_add_test(tc, outputs_sticky_directory);
    tcase_add_loop_test(tc, outputs_signal_removes_temporaries, 0, 2);
    tcase_add_test(tc, program_large_files_judged_by_header);
    tcase_add_loop_test(tc, program_too_large, 0, (int)(sizeof TOO_LARGE / sizeof TOO_LARGE[0]));
    tcase_add_test(tc, program_input_not_a_file);
    tcase_add_loop_test(tc, program_nan_inf_inputs, 0, NI_CASES * 3);
    suite_add_tcase(s, tc);
    return s;
}
