/**
 * @file fuzz_cli.c
 * @brief libFuzzer target: attn_parse_args() and attn_problem_validate()
 * on arbitrary command lines.
 *
 * The input is split into argv words at newlines and NUL bytes (so a word
 * may hold spaces, '=' or nothing at all, as a real argv can). Whatever
 * the words, the parser must return 0, 1 (--help) or ATTN_EXIT_BAD_INPUT
 * with a one-line message; a problem it accepts without input files must
 * pass validation and stay inside the documented ranges; never a crash, an
 * out-of-bounds read, a leak or a hang.
 * Built and run by `make fuzz`; seeds in tests/fuzz/corpus/cli/ (one word
 * per line), dictionary in tests/fuzz/cli.dict.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define REQUIRE(cond)       \
    do {                    \
        if (!(cond))        \
            abort();        \
    } while (0)

/** At most this many words (plus argv[0]); the rest of the input is ignored. */
#define MAX_WORDS 64

static int one_line(const char *msg, size_t msg_len)
{
    return msg[0] != '\0' && strlen(msg) < msg_len && !strchr(msg, '\n');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *devnull;
    if (!devnull)
        devnull = fopen("/dev/null", "w");
    /* One heap copy, NUL-terminated words, so AddressSanitizer sees reads
     * past the end of a word as reads past the end of the input. */
    char *buf = malloc(size + 1);
    REQUIRE(buf != NULL);
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *argv[MAX_WORDS + 2];
    int argc = 0;
    argv[argc++] = "fuzz_cli";
    char *w = buf;
    for (size_t i = 0; i <= size && argc <= MAX_WORDS; i++)
        if (i == size || buf[i] == '\n' || buf[i] == '\0') {
            buf[i] = '\0';
            if (i < size || w < buf + size)
                argv[argc++] = w;
            w = buf + i + 1;
        }
    argv[argc] = NULL;

    char msg[256];
    memset(msg, 0, sizeof msg);
    attn_opts o;
    int rc = attn_parse_args(argc, argv, &o, devnull, msg, sizeof msg);
    REQUIRE(rc == 0 || rc == 1 || rc == ATTN_EXIT_BAD_INPUT);
    if (rc == ATTN_EXIT_BAD_INPUT)
        REQUIRE(one_line(msg, sizeof msg));
    if (rc == 0) {
        const attn_problem *p = &o.prob;
        REQUIRE(o.check == 0 || o.check == 1);
        REQUIRE(p->causal == 0 || p->causal == 1);
        REQUIRE(o.warmup >= 0 && o.warmup <= 1000 && o.iters >= 1 && o.iters <= 100000);
        /* NULL: not given (the step's first type) */
        REQUIRE(!o.dtype || !strcmp(o.dtype, "fp32") || !strcmp(o.dtype, "fp16") || !strcmp(o.dtype, "bf16"));
        REQUIRE(!!o.q_path == !!o.k_path && !!o.k_path == !!o.v_path);
        REQUIRE(p->softmax_scale >= 0.0f);
        char vmsg[256] = "";
        int vrc = attn_problem_validate(p, vmsg, sizeof vmsg);
        REQUIRE(vrc == 0 || vrc == ATTN_EXIT_BAD_INPUT);
        if (vrc)
            REQUIRE(one_line(vmsg, sizeof vmsg));
        if (!o.q_path) {
            REQUIRE(vrc == 0); /* validated by the parser already */
            /* sizes of an accepted problem fit 32-bit element indexing */
            REQUIRE(attn_q_elems(p) <= 2147483647u && attn_kv_elems(p) <= 2147483647u);
            REQUIRE(attn_lse_elems(p) <= attn_q_elems(p));
            float s = attn_scale(p);
            REQUIRE(s > 0.0f && s <= 1e30f);
            for (int i = 0; i < p->seqlen_q; i += 1 + p->seqlen_q / 7) {
                int nk = attn_keys_visible(p, i);
                REQUIRE(nk >= 0 && nk <= p->seqlen_k);
            }
            REQUIRE(attn_flops_forward(p) > 0);
        }
    }
    free(buf);
    return 0;
}
