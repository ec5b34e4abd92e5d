/**
 * @file fuzz_npy.c
 * @brief libFuzzer target: attn_npy_parse() on arbitrary bytes.
 *
 * Whatever the bytes, the parser must return 0 (a well-formed float32 or
 * float16 array), ATTN_EXIT_BAD_INPUT with a one-line message, or
 * ATTN_EXIT_RESOURCE; never crash, read out of bounds, leak or hang. An
 * array it accepts must hold the file's data, and survive a round trip
 * through attn_npy_write() and attn_npy_read() (a file under /tmp).
 * Built and run by `make fuzz` (clang -fsanitize=fuzzer,address,undefined);
 * seeds in tests/fuzz/corpus/npy/, dictionary in tests/fuzz/npy.dict.
 * Reproduce a finding with `build/fuzz/fuzz_npy FILE`.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

/* A broken invariant is a crash, so libFuzzer saves the input. */
#define REQUIRE(cond)       \
    do {                    \
        if (!(cond))        \
            abort();        \
    } while (0)

/* The round trip's file, removed at exit. */
static char rt_path[64];
static void remove_rt_file(void) { unlink(rt_path); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A message buffer of varying length: truncation must stay safe. */
    char msg[300];
    size_t msg_len = 2 + size % (sizeof msg - 2);
    memset(msg, 0, sizeof msg);
    attn_array a;
    int rc = attn_npy_parse(data, size, "fuzz.npy", &a, msg, msg_len);
    REQUIRE(rc == 0 || rc == ATTN_EXIT_BAD_INPUT || rc == ATTN_EXIT_RESOURCE);
    if (rc != 0) {
        REQUIRE(a.data == NULL);
        REQUIRE(msg[0] != '\0' && strlen(msg) < msg_len && !strchr(msg, '\n'));
        return 0;
    }
    /* A parsed array: rank 1..4, and its element count fits the file. */
    REQUIRE(a.rank >= 1 && a.rank <= 4 && a.data != NULL);
    REQUIRE(a.was_fp16 == 0 || a.was_fp16 == 1);
    size_t count = 1;
    for (int i = 0; i < a.rank; i++) {
        REQUIRE(a.shape[i] >= 0);
        count *= (size_t)a.shape[i];
    }
    REQUIRE(count * (a.was_fp16 ? 2 : 4) <= size);
    /* The data are the file's last bytes (nothing may trail them), taken
     * bit for bit (float32) or converted (float16); comparing every element
     * also lets AddressSanitizer see a buffer that is too short. */
    size_t esz = a.was_fp16 ? 2 : 4;
    const uint8_t *src = data + size - count * esz;
    for (size_t i = 0; i < count; i++) {
        float want;
        if (a.was_fp16) {
            want = attn_half_to_float((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
        } else {
            memcpy(&want, src + 4 * i, 4);
        }
        uint32_t got_bits, want_bits; /* bits, so NaN payloads count too */
        memcpy(&got_bits, &a.data[i], 4);
        memcpy(&want_bits, &want, 4);
        REQUIRE(got_bits == want_bits);
    }
    /* Round trip through the writer and the file reader: same rank, shape
     * and values (a float16 NaN may come back with another payload). */
    if (!rt_path[0]) {
        snprintf(rt_path, sizeof rt_path, "/tmp/fuzz_npy_rt.%ld.npy", (long)getpid());
        atexit(remove_rt_file);
    }
    const char *path = rt_path;
    attn_array b;
    REQUIRE(attn_npy_write(path, a.data, a.rank, a.shape, a.was_fp16, msg, sizeof msg) == 0);
    REQUIRE(attn_npy_read(path, &b, msg, sizeof msg) == 0);
    REQUIRE(b.rank == a.rank && b.was_fp16 == a.was_fp16);
    REQUIRE(memcmp(a.shape, b.shape, sizeof a.shape) == 0);
    for (size_t i = 0; i < count; i++) {
        uint32_t x, y;
        memcpy(&x, &a.data[i], 4);
        memcpy(&y, &b.data[i], 4);
        REQUIRE(x == y || (a.was_fp16 && isnan(a.data[i]) && isnan(b.data[i])));
    }
    attn_array_free(&b);
    attn_array_free(&a);
    return 0;
}
