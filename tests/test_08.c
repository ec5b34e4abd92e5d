/**
 * @file test_08.c
 * @brief Suite step08 (CPU): step 08's fragment maps (fragment.c), which
 * lane holds which (row, column) of the A, B and C operands of
 * mma.sync.m16n8k16, against the PTX ISA's figures and against what the
 * kernel relies on: every element held once, pairs of elements packable
 * into one 32-bit register, the m16n8k8 halves, and two accumulator tiles
 * of S making one A fragment of P. It grades exercise 08
 * (`make exercise EX=08`). The kernel itself is tested on a GPU
 * (tests/test_gpu_08.c).
 */
#include <check.h>
#include <string.h>

#include "../steps/08_tc_mma/fragment.h"
#include "common.h"

/* The PTX ISA's figures for m16n8k16 with .f16/.bf16 A and B and .f32 C,
 * as the ISA states them: groupID = lane >> 2, threadID_in_group = lane % 4;
 * A elements a0..a7, B elements b0..b3, C elements c0..c3. */
static void isa_a(int lane, int i, int *row, int *col)
{
    const int gid = lane >> 2, tig = lane % 4;
    *row = (i == 0 || i == 1 || i == 4 || i == 5) ? gid : gid + 8;
    *col = i < 4 ? tig * 2 + (i & 1) : tig * 2 + (i & 1) + 8;
}
static void isa_b(int lane, int i, int *row, int *col)
{
    const int gid = lane >> 2, tig = lane % 4;
    *row = i < 2 ? tig * 2 + (i & 1) : tig * 2 + (i & 1) + 8;
    *col = gid;
}
static void isa_c(int lane, int i, int *row, int *col)
{
    const int gid = lane >> 2, tig = lane % 4;
    *row = i < 2 ? gid : gid + 8;
    *col = tig * 2 + (i & 1);
}

typedef void (*frag_map)(int lane, int i, int *row, int *col);
static const frag_map MAPS[3] = {attn08_frag_a, attn08_frag_b, attn08_frag_c};
static const frag_map ISA[3] = {isa_a, isa_b, isa_c};
static const char *NAMES[3] = {"A", "B", "C"};
static const int ELEMS[3] = {8, 4, 4};            /* per lane */
static const int ROWS[3] = {16, 16, 16}, COLS[3] = {16, 8, 8};

/* Each map, every lane and element, equals the ISA's figure. */
START_TEST(test_isa_figures)
{
    const int m = _i;
    for (int lane = 0; lane < 32; lane++)
        for (int i = 0; i < ELEMS[m]; i++) {
            int r = -1, c = -1, rr, cc;
            MAPS[m](lane, i, &r, &c);
            ISA[m](lane, i, &rr, &cc);
            ck_assert_msg(r == rr && c == cc, "%s: lane %d element %d is (%d, %d), the ISA says (%d, %d)",
                          NAMES[m], lane, i, r, c, rr, cc);
        }
}
END_TEST

/* Every element of the matrix is held by exactly one (lane, element): the
 * 32 lanes together hold the operand once. */
START_TEST(test_each_element_once)
{
    const int m = _i;
    int seen[16][16];
    memset(seen, 0, sizeof seen);
    for (int lane = 0; lane < 32; lane++)
        for (int i = 0; i < ELEMS[m]; i++) {
            int r = -1, c = -1;
            MAPS[m](lane, i, &r, &c);
            ck_assert_msg(r >= 0 && r < ROWS[m] && c >= 0 && c < COLS[m],
                          "%s: lane %d element %d at (%d, %d), outside %d x %d", NAMES[m], lane, i,
                          r, c, ROWS[m], COLS[m]);
            seen[r][c]++;
        }
    for (int r = 0; r < ROWS[m]; r++)
        for (int c = 0; c < COLS[m]; c++)
            ck_assert_msg(seen[r][c] == 1, "%s[%d][%d] held %d times", NAMES[m], r, c, seen[r][c]);
}
END_TEST

/* The two halves of one register are neighbours in memory, so one 32-bit
 * shared-memory load fills it: A and C, two columns of one row (c, c + 1,
 * c even); B, two rows of one column (the k index; B = Kᵀ makes those two
 * adjacent elements of one K row). */
START_TEST(test_pairs_pack)
{
    const int m = _i;
    for (int lane = 0; lane < 32; lane++)
        for (int i = 0; i < ELEMS[m]; i += 2) {
            int r0, c0, r1, c1;
            MAPS[m](lane, i, &r0, &c0);
            MAPS[m](lane, i + 1, &r1, &c1);
            if (m == 1)
                ck_assert_msg(c0 == c1 && r1 == r0 + 1 && r0 % 2 == 0,
                              "B: lane %d register %d is (%d, %d), (%d, %d)", lane, i / 2, r0, c0,
                              r1, c1);
            else
                ck_assert_msg(r0 == r1 && c1 == c0 + 1 && c0 % 2 == 0,
                              "%s: lane %d register %d is (%d, %d), (%d, %d)", NAMES[m], lane,
                              i / 2, r0, c0, r1, c1);
        }
}
END_TEST

/* The m16n8k8 halves (sm_75 runs m16n8k16 as two m16n8k8): A's registers
 * 0 and 1 hold columns 0..7, registers 2 and 3 columns 8..15; B's register
 * 0 rows 0..7, register 1 rows 8..15; and within each half the positions
 * are those of an m16n8k8 fragment (A: row g or g + 8, column 2t, 2t + 1;
 * B: row 2t, 2t + 1, column g). */
START_TEST(test_k8_halves)
{
    for (int lane = 0; lane < 32; lane++) {
        const int g = lane / 4, t = lane % 4;
        for (int i = 0; i < 8; i++) {
            int r, c;
            attn08_frag_a(lane, i, &r, &c);
            ck_assert_msg((c >= 8) == (i >= 4), "A: lane %d element %d in column %d", lane, i, c);
            ck_assert_int_eq(c % 8, 2 * t + i % 2);
            ck_assert_int_eq(r, g + 8 * ((i / 2) % 2));
        }
        for (int i = 0; i < 4; i++) {
            int r, c;
            attn08_frag_b(lane, i, &r, &c);
            ck_assert_msg((r >= 8) == (i >= 2), "B: lane %d element %d in row %d", lane, i, r);
            ck_assert_int_eq(r % 8, 2 * t + i % 2);
        }
    }
}
END_TEST

/* P in registers: the accumulators of S tiles 2kk and 2kk + 1 (keys
 * 16kk .. 16kk + 7 and 16kk + 8 .. 16kk + 15) are, lane by lane, the A
 * fragment of P for k-step kk. p_source names, for each A element, the
 * tile and accumulator element it is taken from; that element must sit at
 * the same (row, key) as the A element, in the same lane, so no shuffle
 * and no shared memory is needed. */
START_TEST(test_p_from_s)
{
    int used[2][4];
    memset(used, 0, sizeof used);
    for (int lane = 0; lane < 32; lane++)
        for (int i = 0; i < 8; i++) {
            int tile = -1, elem = -1, ra, ca, rc, cc;
            attn08_p_source(i, &tile, &elem);
            ck_assert_msg(tile >= 0 && tile < 2 && elem >= 0 && elem < 4,
                          "A element %d from tile %d element %d", i, tile, elem);
            attn08_frag_a(lane, i, &ra, &ca);
            attn08_frag_c(lane, elem, &rc, &cc);
            ck_assert_msg(ra == rc && ca == 8 * tile + cc,
                          "lane %d: A element %d is P[%d][%d], but tile %d element %d is S[%d][%d]",
                          lane, i, ra, ca, tile, elem, rc, 8 * tile + cc);
            if (lane == 0)
                used[tile][elem]++;
        }
    for (int tile = 0; tile < 2; tile++)
        for (int e = 0; e < 4; e++)
            ck_assert_msg(used[tile][e] == 1, "tile %d element %d used %d times", tile, e,
                          used[tile][e]);
}
END_TEST

/* One m16n8k16 emulated through the maps: A and B scattered into 32 lanes'
 * fragments, each lane's D = Σ_k A[row][k]·B[k][col] computed from the
 * fragments of all lanes (the matrices rebuilt by the maps), equal to the
 * direct product at the (row, col) the C map names. Small integers: exact. */
START_TEST(test_emulated_mma)
{
    float a[16][16], b[16][8], fa[32][8], fb[32][4];
    float ra[16][16], rb[16][8];
    uint64_t x = 88172645463325252ull;
    memset(ra, 0, sizeof ra);
    memset(rb, 0, sizeof rb);
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            a[r][c] = (float)((int)(x % 9) - 4);
            if (c < 8)
                b[r][c] = (float)((int)((x >> 8) % 9) - 4);
        }
    for (int lane = 0; lane < 32; lane++) {
        for (int i = 0; i < 8; i++) {
            int r, c;
            attn08_frag_a(lane, i, &r, &c);
            fa[lane][i] = a[r][c];
        }
        for (int i = 0; i < 4; i++) {
            int r, c;
            attn08_frag_b(lane, i, &r, &c);
            fb[lane][i] = b[r][c];
        }
    }
    for (int lane = 0; lane < 32; lane++) {
        for (int i = 0; i < 8; i++) {
            int r, c;
            attn08_frag_a(lane, i, &r, &c);
            ra[r][c] = fa[lane][i];
        }
        for (int i = 0; i < 4; i++) {
            int r, c;
            attn08_frag_b(lane, i, &r, &c);
            rb[r][c] = fb[lane][i];
        }
    }
    for (int lane = 0; lane < 32; lane++)
        for (int i = 0; i < 4; i++) {
            int r, c;
            attn08_frag_c(lane, i, &r, &c);
            float d = 0.0f, want = 0.0f;
            for (int k = 0; k < 16; k++) {
                d += ra[r][k] * rb[k][c];
                want += a[r][k] * b[k][c];
            }
            ck_assert_msg(d == want, "lane %d D element %d: %g, A·B %g", lane, i, (double)d,
                          (double)want);
        }
}
END_TEST

/** Suite step08: the fragment maps of step 08. */
Suite *suite_step08(void);
Suite *suite_step08(void)
{
    Suite *s = suite_create("step08");
    TCase *tc = tcase_create("fragments");
    tcase_add_loop_test(tc, test_isa_figures, 0, 3);
    tcase_add_loop_test(tc, test_each_element_once, 0, 3);
    tcase_add_loop_test(tc, test_pairs_pack, 0, 3);
    tcase_add_test(tc, test_k8_halves);
    tcase_add_test(tc, test_p_from_s);
    tcase_add_test(tc, test_emulated_mma);
    suite_add_tcase(s, tc);
    return s;
}
