/**
 * @file test_10.c
 * @brief Suite step10 (CPU): step 10's pipeline bookkeeping (pipeline.c),
 * checked by replaying the kernel's loop, and the swizzle of its new head
 * dim, D = 96.
 *
 * The replay follows common/device/pipeline.h's loop for S = 1 .. 4 stages
 * and Tc = 1 .. 9 K/V blocks, step by step: every `cp.async` group
 * committed, every `wait_group`, every barrier, every read of a stage. The
 * copies are modelled the way the hardware allows them to behave at worst:
 * `wait_group N` guarantees that all but the N most recent groups have
 * landed, and a group it lets stay in flight is taken as not landed. The
 * suite checks that
 *
 * - every read finds its block in its stage, landed and made visible by a
 *   barrier (Q, K_j at Q K_jᵀ, V_j at P V_j);
 * - no issue overwrites a stage whose block is still to be read, or may
 *   still be read by a warp that has not passed a barrier since;
 * - every block is issued once, in order, before it is read;
 * - the waits are as loose as they can be (each lets every group committed
 *   after the awaited one stay in flight) and, with S ≥ 2, block j + 1 is
 *   in flight while block j is computed: the overlap that is the point of
 *   the pipeline.
 *
 * It also checks the checker: common/device/pipeline.h itself passes, and
 * wrong bookkeepings (a wait one too loose or one too tight, a block
 * issued one too far, one stage too few) are caught. These grade exercise
 * 10 (`make exercise EX=10`). Tcase `swizzle96` checks common/device/
 * swizzle.h at 12 chunks per row the way tests/test_09.c checks the others.
 * The kernel is tested on a GPU.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../steps/10_tc_pipeline/pipeline.h"
#include "device/pipeline.h"
#include "device/swizzle.h"
#include "swizzle_check.h"

enum { MAX_S = 4, MAX_TC = 9, MAX_GROUPS = 64 };

/* One bookkeeping: the four functions of pipeline.h, however they are
 * written (the step's, the header's, or a deliberately wrong one). */
typedef struct {
    int (*issue_block)(int j, int stages);
    int (*stage)(int b, int stages);
    int (*wait_k)(int stages);
    int (*wait_v)(int stages);
} bookkeeping;

/* What a replay saw: the first violation of each kind, one line each
 * (empty when none). `safe`: a read of something not there, an overwrite of
 * something still needed, a block issued twice or out of order. `overlap`:
 * a wait tighter than it needs to be, or no copy in flight while a block is
 * computed. */
typedef struct {
    char safe[200];
    char overlap[200];
} report;

enum { K = 0, V = 1 }; /* the two halves of a block and of a stage */

/* The state of one replay. Groups are numbered in commit order; the first
 * `landed` of them are guaranteed complete, the first `visible` also made
 * visible to every warp by a barrier. */
typedef struct {
    const bookkeeping *f;
    int S, Tc, j;                          /* j: the iteration, -1 before the loop */
    int committed, landed, visible, epoch; /* epoch: barriers passed */
    int last_wait;                         /* the N of the last wait_group */
    int group[MAX_TC][2];                  /* the group of K_b, V_b; -1: not issued */
    int read_epoch[MAX_TC][2];             /* the epoch of the last read; -1: not read */
    int slot[MAX_S][2];                    /* the block a stage holds; -1: none */
    int issued[MAX_TC];
    int next; /* the first block not yet issued */
    report *rep;
} replay_state;

/* Records a violation, if it is the first of its kind: "S = 2, Tc = 3,
 * j = 1: what". */
static void violation(const replay_state *st, char *first, const char *fmt, ...)
{
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    /* va_start is the line above: the analyzer reports this call as
     * reading an uninitialized va_list only when run on several files at
     * once (a false positive, not seen on this file alone) */
    vsnprintf(what, sizeof what, fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
    va_end(ap);
    if (first[0])
        return;
    if (st->j < 0)
        snprintf(first, 200, "S = %d, Tc = %d, before the loop: %s", st->S, st->Tc, what);
    else
        snprintf(first, 200, "S = %d, Tc = %d, j = %d: %s", st->S, st->Tc, st->j, what);
}

/* Commits one group (a copy, or nothing); returns its number. */
static int commit(replay_state *st)
{
    return st->committed < MAX_GROUPS ? st->committed++ : st->committed;
}

/* cp.async.wait_group n: all but the n most recent groups have landed. */
static void wait_group(replay_state *st, int n)
{
    st->last_wait = n;
    if (n < 0) {
        violation(st, st->rep->safe, "wait_group %d: a count of groups is never negative", n);
        n = 0;
    }
    if (st->committed - n > st->landed)
        st->landed = st->committed - n;
}

/* __syncthreads(): what has landed becomes visible to every warp, and
 * every warp is done with what it read before. */
static void barrier(replay_state *st)
{
    st->visible = st->landed;
    st->epoch++;
}

/* Writes one half of block b into stage s: the half the stage holds must
 * have been read, and a barrier passed since, by every warp. */
static void write_half(replay_state *st, int b, int s, int half)
{
    const char *name = half == K ? "K" : "V";
    const int h = st->slot[s][half];
    if (h >= 0 && h != b) {
        if (st->read_epoch[h][half] < 0)
            violation(st, st->rep->safe,
                      "issuing block %d overwrites %s_%d in stage %d before it is read", b, name, h,
                      s);
        else if (st->read_epoch[h][half] == st->epoch)
            violation(st, st->rep->safe,
                      "issuing block %d overwrites %s_%d in stage %d with no barrier since "
                      "its read",
                      b, name, h, s);
    }
    st->slot[s][half] = b;
    st->group[b][half] = commit(st);
}

/* Issues block b: two groups, K_b then V_b, into stage pipe_stage(b); a
 * block past the last is two empty groups. */
static void issue(replay_state *st, int b)
{
    report *rep = st->rep;
    if (b < 0 || b >= st->Tc) {
        if (b < 0)
            violation(st, rep->safe, "issues block %d", b);
        else if (st->next < st->Tc)
            violation(st, rep->safe,
                      "issues block %d (past the last: empty groups) while block %d is not issued",
                      b, st->next);
        commit(st);
        commit(st);
        return;
    }
    if (st->issued[b])
        violation(st, rep->safe, "issues block %d a second time", b);
    else if (b != st->next)
        violation(st, rep->safe, "issues block %d while block %d is not issued", b, st->next);
    st->issued[b]++;
    while (st->next < st->Tc && st->issued[st->next])
        st->next++;
    const int s = st->f->stage(b, st->S);
    if (s < 0 || s >= st->S) {
        violation(st, rep->safe, "block %d goes to stage %d, outside 0..%d", b, s, st->S - 1);
        commit(st);
        commit(st);
        return;
    }
    write_half(st, b, s, K);
    write_half(st, b, s, V);
}

/* Waits for one half of block j with wait_group n, and checks that n is as
 * loose as it can be: every group committed after the awaited one may stay
 * in flight. */
static void wait_for(replay_state *st, int half, int n)
{
    const int g = st->group[st->j][half];
    wait_group(st, n);
    if (g >= 0 && n < st->committed - 1 - g)
        violation(st, st->rep->overlap,
                  "wait_group %d for %s_%d waits for more than it needs: wait_group %d would do", n,
                  half == K ? "K" : "V", st->j, st->committed - 1 - g);
}

/* Reads one half of block j from its stage: QK^T reads Q and K_j, PV reads
 * V_j. */
static void read_half(replay_state *st, int half)
{
    const char *name = half == K ? "K" : "V";
    const char *op = half == K ? "QK^T" : "PV";
    const int j = st->j;
    report *rep = st->rep;
    if (!st->issued[j]) {
        violation(st, rep->safe, "%s reads block %d, which is not issued", op, j);
        return;
    }
    const int s = st->f->stage(j, st->S);
    if (s < 0 || s >= st->S) {
        violation(st, rep->safe, "%s reads stage %d, outside 0..%d", op, s, st->S - 1);
        return;
    }
    if (st->slot[s][half] != j) {
        violation(st, rep->safe, "%s reads stage %d, which holds %s_%d, not %s_%d", op, s, name,
                  st->slot[s][half], name, j);
        return;
    }
    if (st->group[j][half] >= st->visible)
        violation(st, rep->safe, "%s reads %s_%d before it has surely landed (wait_group %d)", op,
                  name, j, st->last_wait);
    if (half == K && st->visible < 1) /* Q is group 0: landed before any K_j has */
        violation(st, rep->safe, "%s reads Q before it has surely landed", op);
    st->read_epoch[j][half] = st->epoch;
}

/* With S ≥ 2, while Q K_jᵀ is computed the copy of block j + 1 must be
 * committed and still allowed in flight: the copies overlap the compute. */
static void check_overlap(replay_state *st)
{
    const int b = st->j + 1;
    if (st->S < 2 || b >= st->Tc)
        return;
    if (!st->issued[b])
        violation(st, st->rep->overlap,
                  "block %d is not issued while block %d is computed: nothing overlaps", b, st->j);
    else if (st->group[b][K] < st->landed)
        violation(st, st->rep->overlap,
                  "block %d has been waited for before block %d is computed: nothing overlaps", b,
                  st->j);
}

/* Replays the loop of common/device/pipeline.h with bookkeeping f for S
 * stages and Tc blocks; the first violation of each kind goes to rep. */
static void replay(const bookkeeping *f, int S, int Tc, report *rep)
{
    replay_state st;
    memset(&st, 0, sizeof st);
    st.f = f, st.S = S, st.Tc = Tc, st.j = -1, st.rep = rep;
    memset(st.group, -1, sizeof st.group);
    memset(st.read_epoch, -1, sizeof st.read_epoch);
    memset(st.slot, -1, sizeof st.slot);

    commit(&st); /* Q */
    for (int b = 0; b <= S - 2; b++)
        issue(&st, b);
    for (st.j = 0; st.j < Tc; st.j++) {
        if (S == 1) {
            barrier(&st); /* every warp is done with block j - 1 */
            issue(&st, f->issue_block(st.j, S));
            wait_for(&st, K, f->wait_k(S));
            barrier(&st);
        } else {
            wait_for(&st, K, f->wait_k(S));
            barrier(&st); /* K_j visible; every warp is done with block j - 1 */
            issue(&st, f->issue_block(st.j, S));
        }
        check_overlap(&st);
        read_half(&st, K);
        wait_for(&st, V, f->wait_v(S));
        barrier(&st);
        read_half(&st, V);
    }
}

/* Replays f with S stages for Tc = 1 .. 9 and copies out the first
 * violation of one kind (safe: 1, overlap: 0); empty if there is none. */
static void first_violation(const bookkeeping *f, int S, int safe, char *out, size_t size)
{
    out[0] = '\0';
    for (int Tc = 1; Tc <= MAX_TC && !out[0]; Tc++) {
        report rep;
        memset(&rep, 0, sizeof rep);
        replay(f, S, Tc, &rep);
        snprintf(out, size, "%s", safe ? rep.safe : rep.overlap);
    }
}

/* The bookkeeping being graded: pipeline.c (the step's, or exercise 10's). */
static const bookkeeping GRADED = {attn10_pipe_issue_block, attn10_pipe_stage, attn10_pipe_wait_k,
                                   attn10_pipe_wait_v};

/* Every read finds its block, landed and visible; no issue overwrites a
 * stage in use; every block is issued once, in order. S = _i + 1. */
START_TEST(test_pipeline_is_safe)
{
    char why[200];
    first_violation(&GRADED, _i + 1, 1, why, sizeof why);
    ck_assert_msg(!why[0], "%s", why);
}
END_TEST

/* The waits are no tighter than they must be, and with S ≥ 2 the next
 * block is in flight while one is computed. S = _i + 1. */
START_TEST(test_pipeline_overlaps)
{
    char why[200];
    first_violation(&GRADED, _i + 1, 0, why, sizeof why);
    ck_assert_msg(!why[0], "%s", why);
}
END_TEST

/* ---- the checker, checked ------------------------------------------------ */

/* The kernel's own bookkeeping, common/device/pipeline.h. */
static int h_issue(int j, int s)
{
    return pipe_issue_block(j, s);
}
static int h_stage(int b, int s)
{
    return pipe_stage(b, s);
}
static int h_wait_k(int s)
{
    return pipe_wait_k(s);
}
static int h_wait_v(int s)
{
    return pipe_wait_v(s);
}

/* Wrong ones, each one change away from the header. */
static int wait_k_one_loose(int s)
{
    return pipe_wait_k(s) + 1; /* lets K_j itself stay in flight */
}
static int wait_k_one_tight(int s)
{
    return pipe_wait_k(s) - 1; /* also waits for V_j */
}
static int wait_v_one_loose(int s)
{
    return pipe_wait_v(s) + 1; /* lets V_j itself stay in flight */
}
static int issue_one_far(int j, int s)
{
    return j + s; /* one too far: block j + S - 1 is never issued */
}
static int stage_one_few(int b, int s)
{
    return s == 1 ? 0 : b % (s - 1); /* S - 1 stages: block j + S - 1 lands on block j */
}
static int issue_one_stage(int j, int s)
{
    (void)s;
    return j; /* the one-stage loop at every S */
}
static int stage_one_stage(int b, int s)
{
    (void)b, (void)s;
    return 0;
}

/* common/device/pipeline.h passes the replay at every S: the checker does
 * not ask for more than the kernel does. S = _i + 1. */
START_TEST(test_header_passes)
{
    const bookkeeping header = {h_issue, h_stage, h_wait_k, h_wait_v};
    char why[200];
    first_violation(&header, _i + 1, 1, why, sizeof why);
    ck_assert_msg(!why[0], "%s", why);
    first_violation(&header, _i + 1, 0, why, sizeof why);
    ck_assert_msg(!why[0], "%s", why);
}
END_TEST

/* Each wrong bookkeeping is caught at some S, with the violation it
 * commits: `want` is a piece of the message, `safe` its kind. */
static const struct {
    bookkeeping f;
    int safe;
    const char *want;
} FAULTS[] = {
    {{h_issue, h_stage, wait_k_one_loose, h_wait_v}, 1, "reads K_0 before it has surely landed"},
    {{h_issue, h_stage, h_wait_k, wait_v_one_loose}, 1, "reads V_0 before it has surely landed"},
    {{h_issue, h_stage, wait_k_one_tight, h_wait_v}, 0, "waits for more than it needs"},
    {{issue_one_far, h_stage, h_wait_k, h_wait_v}, 1, "is not issued"},
    {{h_issue, stage_one_few, h_wait_k, h_wait_v}, 1, "before it is read"},
    {{issue_one_stage, stage_one_stage, h_wait_k, h_wait_v}, 0, "nothing overlaps"},
};

START_TEST(test_checker_sees_faults)
{
    int caught = 0;
    char why[200], seen[200] = "nothing";
    for (int S = 1; S <= MAX_S && !caught; S++) {
        first_violation(&FAULTS[_i].f, S, FAULTS[_i].safe, why, sizeof why);
        if (why[0])
            snprintf(seen, sizeof seen, "%s", why);
        caught = strstr(why, FAULTS[_i].want) != NULL;
    }
    ck_assert_msg(caught, "fault %d: expected \"%s\", saw: %s", _i, FAULTS[_i].want, seen);
}
END_TEST

/* The adversarial model itself: with S = 1, a wait_group 1 right after block
 * j's two groups leaves V_j in flight, so P V_j may not read it without the
 * second wait. */
START_TEST(test_model_keeps_groups_in_flight)
{
    const bookkeeping no_v_wait = {h_issue, h_stage, h_wait_k, h_wait_k};
    report rep;
    memset(&rep, 0, sizeof rep);
    replay(&no_v_wait, 1, 1, &rep);
    ck_assert_str_eq(
        rep.safe, "S = 1, Tc = 1, j = 0: PV reads V_0 before it has surely landed (wait_group 1)");
}
END_TEST

/* ---- the swizzle at D = 96: 12 chunks per row ------------------------------ */

enum { CH96 = 12 };

/* The kernel's swizzle (common/device/swizzle.h); bank_ways and
 * swizzle_identity are tests/swizzle_check.h's, shared with test_09.c. */
static int swz_header(int row, int chunk, int chunks)
{
    return swizzle_chunk(row, chunk, chunks);
}
/* Step 09's XOR for whole lines, chunk ^ (row % 8), applied to rows of 12. */
static int swz_row8(int row, int chunk, int chunks)
{
    (void)chunks;
    return chunk ^ (row & 7);
}

/* The first row (of 0..63) whose chunks f does not permute; -1 if none. */
static int first_bad_row(swizzle_fn f, int chunks)
{
    for (int row = 0; row < 64; row++) {
        int seen[32] = {0};
        for (int c = 0; c < chunks; c++) {
            const int s = f(row, c, chunks);
            if (s < 0 || s >= chunks || seen[s]++)
                return row;
        }
    }
    return -1;
}

/* Each row's 12 chunks are a permutation of 0 .. 11. */
START_TEST(test_permutes_each_row_96)
{
    for (int row = 0; row < 64; row++) {
        int seen[CH96] = {0};
        for (int c = 0; c < CH96; c++) {
            const int s = swizzle_chunk(row, c, CH96);
            ck_assert_msg(s >= 0 && s < CH96,
                          "D = 96: row %d chunk %d goes to slot %d, outside 0..11", row, c, s);
            ck_assert_msg(!seen[s], "D = 96: row %d: chunks %d and %d both go to slot %d", row,
                          seen[s] - 1, c, s);
            seen[s] = c + 1;
        }
    }
}
END_TEST

/* ldmatrix: 8 rows r0 .. r0 + 7 (r0 a multiple of 8) of one chunk column.
 * A row of 12 chunks is a line and a half, so rows r and r + 1 start 4 bank
 * groups apart. */
START_TEST(test_ldmatrix_reads_96)
{
    for (int r0 = 0; r0 < 128; r0 += 8)
        for (int c = 0; c < CH96; c++) {
            int rows[8], cols[8];
            for (int i = 0; i < 8; i++)
                rows[i] = r0 + i, cols[i] = c;
            const int w = bank_ways(swz_header, rows, cols, CH96);
            ck_assert_msg(w == 1,
                          "D = 96: ldmatrix of rows %d..%d, chunk %d: a %d-way bank conflict", r0,
                          r0 + 7, c, w);
        }
}
END_TEST

/* The copies: thread x writes chunk x % 12 of row x / 12, so 8 consecutive
 * x can span two rows (chunks 8..11 of one, 0..3 of the next). */
START_TEST(test_copy_writes_96)
{
    for (int x0 = 0; x0 < 64 * CH96; x0 += 8) {
        int rows[8], cols[8];
        for (int i = 0; i < 8; i++)
            rows[i] = (x0 + i) / CH96, cols[i] = (x0 + i) % CH96;
        const int w = bank_ways(swz_header, rows, cols, CH96);
        ck_assert_msg(w == 1, "D = 96: the copy of chunks %d..%d (row %d): a %d-way bank conflict",
                      x0, x0 + 7, rows[0], w);
    }
}
END_TEST

/* The checker can fail at D = 96: without a swizzle ldmatrix's 8 rows hit
 * two bank groups (4-way), and step 09's chunk ^ (row % 8) sends chunk 8 of
 * row 4 to slot 12, outside its row: why 12 chunks need their own XOR. */
START_TEST(test_checker_sees_faults_96)
{
    int rows[8], cols[8];
    for (int i = 0; i < 8; i++)
        rows[i] = i, cols[i] = 0;
    ck_assert_int_eq(bank_ways(swizzle_identity, rows, cols, CH96), 4);
    ck_assert_int_eq(first_bad_row(swz_row8, CH96), 4);
    ck_assert_int_eq(first_bad_row(swz_header, CH96), -1);
}
END_TEST

/** Suite step10: the pipeline bookkeeping of step 10, and its swizzle at D = 96. */
Suite *suite_step10(void);
Suite *suite_step10(void)
{
    Suite *s = suite_create("step10");
    TCase *tc = tcase_create("pipeline");
    tcase_add_loop_test(tc, test_pipeline_is_safe, 0, MAX_S);
    tcase_add_loop_test(tc, test_pipeline_overlaps, 0, MAX_S);
    suite_add_tcase(s, tc);
    TCase *ck = tcase_create("checker");
    tcase_add_loop_test(ck, test_header_passes, 0, MAX_S);
    tcase_add_loop_test(ck, test_checker_sees_faults, 0, (int)(sizeof FAULTS / sizeof FAULTS[0]));
    tcase_add_test(ck, test_model_keeps_groups_in_flight);
    suite_add_tcase(s, ck);
    TCase *sw = tcase_create("swizzle96");
    tcase_add_test(sw, test_permutes_each_row_96);
    tcase_add_test(sw, test_ldmatrix_reads_96);
    tcase_add_test(sw, test_copy_writes_96);
    tcase_add_test(sw, test_checker_sees_faults_96);
    suite_add_tcase(s, sw);
    return s;
}
