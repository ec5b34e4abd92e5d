/**
 * @file util.c
 * @brief Helpers the CPU suites share (util.h): a scratch directory per
 * test, and .npy images built byte by byte.
 */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

char tmpdir[256];

void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/attn_test_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int slot;
    char *b = buf[slot++ % 4];
    snprintf(b, 512, "%s/%s", tmpdir, name);
    return b;
}

int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* A .npy image with the given header dict and @p data_bytes bytes of data. */
size_t npy_image(unsigned char *out, int major, const char *dict, size_t data_bytes)
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
