/**
 * @file test_npy.c
 * @brief Suite npy: .npy round trips (float32 and float16, ranks 1 to 4),
 * format version 2, every malformed file, and the half-precision
 * conversions.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "suites.h"
#include "util.h"

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

/* Keys are read only at a key's place: a string value that holds
 * "'descr': '<f2'" before the real key is not the dtype (it used to be:
 * these 8 bytes were then read as four float16 values). */
START_TEST(npy_key_inside_a_string)
{
    unsigned char buf[512];
    size_t n = npy_image(buf, 1,
                         "{'note': \"'descr': '<f2', 'shape': (4,),\", 'descr': '<f4', "
                         "'fortran_order': False, 'shape': (2,), }", 8);
    attn_array a;
    char msg[256];
    ck_assert_msg(attn_npy_parse(buf, n, "k", &a, msg, sizeof msg) == 0, "%s", msg);
    ck_assert_int_eq(a.was_fp16, 0);
    ck_assert_int_eq(a.rank, 1);
    ck_assert_int_eq(a.shape[0], 2);
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
    {1, "{'descr': '<f4', 'fortran_order': Falsehood, 'shape': (2,), }", 8, "fortran_order"},
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

Suite *suite_npy(void)
{
    Suite *s = suite_create("npy");
    TCase *tc = tcase_create("npy");
    tcase_add_test(tc, npy_round_trip);
    tcase_add_test(tc, npy_version2);
    tcase_add_test(tc, npy_key_inside_a_string);
    tcase_add_loop_test(tc, npy_malformed, 0, (int)(sizeof BAD_NPY / sizeof BAD_NPY[0]));
    tcase_add_test(tc, npy_not_npy);
    tcase_add_test(tc, npy_unwritable);
    tcase_add_test(tc, half_conversions);
    suite_add_tcase(s, tc);
    return s;
}
