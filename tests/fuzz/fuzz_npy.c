/**
 * @file fuzz_npy.c
 * @brief libFuzzer target: attn_npy_parse() on arbitrary bytes.
 *
 * Whatever the bytes, the parser must return 0 (a well-formed float32 or
 * float16 array), ATTN_EXIT_BAD_INPUT with a one-line message, or
 * ATTN_EXIT_RESOURCE; never crash, read out of bounds, leak or hang.
 * Built and run by `make fuzz` (clang -fsanitize=fuzzer,address,undefined);
 * seeds in tests/fuzz/corpus/npy/, dictionary in tests/fuzz/npy.dict.
 * Reproduce a finding with `build/fuzz/fuzz_npy FILE`.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* A broken invariant is a crash, so libFuzzer saves the input. */
#define REQUIRE(cond)       \
    do {                    \
        if (!(cond))        \
            abort();        \
    } while (0)

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
    attn_array_free(&a);
    return 0;
}
