/**
 * @file util.h
 * @brief Helpers the CPU suites share: a scratch directory per test, and
 * .npy images built byte by byte (well-formed or not).
 *
 * Not named test_*.h/.c: the Makefile takes every tests/test_*.c as a suite.
 */
#ifndef ATTN_TEST_UTIL_H
#define ATTN_TEST_UTIL_H

#include <stddef.h>

/** The scratch directory of the running test, set by make_tmpdir(). */
extern char tmpdir[256];

/** Create a fresh directory /tmp/attn_test_XXXXXX and store its path in
 *  tmpdir; the test fails if it cannot. */
void make_tmpdir(void);

/** The path tmpdir/@p name, in one of four static buffers used in turn:
 *  valid until four more calls. */
const char *tmp_path(const char *name);

/** 1 if something exists at @p path (stat() succeeds), else 0. */
int exists(const char *path);

/** Write a .npy image into @p out: format version @p major (1, or 2 and
 *  above with a 4-byte header length), the header dict @p dict padded to
 *  64 bytes, then @p data_bytes bytes of data (byte i is i * 7). Returns
 *  the image's size; @p out must hold it. */
size_t npy_image(unsigned char *out, int major, const char *dict, size_t data_bytes);

#endif
