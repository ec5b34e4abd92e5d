/**
 * @file cli.c
 * @brief The command-line parser every step program shares (the flags of
 * notes/design.md). Every bad value gets one line naming the flag and what is allowed.
 */
#include "common.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

void attn_print_usage(FILE *f, const char *prog)
{
    fprintf(f,
        "usage: %s [flags]\n"
        "problem (defaults: B=1, H=4, N=256, D=64; small and quick):\n"
        "  --batch B          batch size, 1..65535 (default 1)\n"
        "  --heads H          query heads, 1..65535 (default 4)\n"
        "  --kv-heads HKV     K/V heads, divides H (default H; 1 = MQA)\n"
        "  --seq N            query length, 1..16777216 (default 256)\n"
        "  --seq-k NK         key length (default N)\n"
        "  --dim D            head dimension, 1..256 (default 64; GPU steps may refuse some)\n"
        "  --causal           causal mask, aligned bottom-right\n"
        "  --scale S          softmax scale (default 0: 1/sqrt(D))\n"
        "  --seed X           input seed (default 1)\n"
        "inputs and outputs (.npy, BHSD):\n"
        "  --q F --k F --v F  read Q, K, V (all three or none; shape from the files)\n"
        "  --do F             upstream gradient (backward steps)\n"
        "  --dtype T          fp32 | fp16 | bf16, where the step offers them (default: the\n"
        "                     step's first: fp32, or fp16 for a 16-bit-only step)\n"
        "  --layout L         bhsd | bshd: the tensors' layout in memory, where the step\n"
        "                     takes strides (files are always BHSD; default bhsd)\n"
        "  --deterministic    backward: bitwise-reproducible dQ\n"
        "  --out F --lse F    write O / LSE\n"
        "  --dq F --dk F --dv F  write gradients (backward steps)\n"
        "  --prev F           the prior step's O: report vs_prev_max_abs\n"
        "checking and timing:\n"
        "  --check | --no-check   compare with the float64 oracle (default: check)\n"
        "  --bench            time: median of the timed runs\n"
        "  --warmup W         untimed runs first, 0..1000 (default 3)\n"
        "  --iters I          timed runs at most, 1..100000 (default 20; capped at ~1 s)\n"
        "  --help             this text\n"
        "exit codes: 0 PASS, 1 FAIL, 2 bad input, 3 out of memory / no CUDA device\n",
        prog);
}

/** Strict integer: the whole string, in [lo, hi]. */
static int parse_int(const char *flag, const char *s, long lo, long hi, int *out,
                     char *msg, size_t msg_len)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    /* strtol() skips leading spaces and takes a sign: " 8", "+8" and "\n8"
     * are not integers here (as for --seed) */
    if (!isdigit((unsigned char)*s) || *end || errno || v < lo || v > hi) {
        snprintf(msg, msg_len, "%s: expected an integer in %ld..%ld, got '%.40s'", flag,
                 lo, hi, s);
        return ATTN_EXIT_BAD_INPUT;
    }
    *out = (int)v;
    return 0;
}

/** attn_parse_args() before its message is made one line. */
static int parse_args(int argc, char **argv, attn_opts *o, FILE *help_out, char *msg,
                      size_t msg_len);

int attn_parse_args(int argc, char **argv, attn_opts *o, FILE *help_out, char *msg,
                    size_t msg_len)
{
    int rc = parse_args(argc, argv, o, help_out, msg, msg_len);
    if (rc > 1 && msg && msg_len) /* a value with a newline stays one line: \x0a */
        attn_escape_controls(msg, msg_len);
    return rc;
}

static int parse_args(int argc, char **argv, attn_opts *o, FILE *help_out, char *msg,
                      size_t msg_len)
{
    memset(o, 0, sizeof *o);
    o->prob = (attn_problem){1, 4, 0, 256, 0, 64, 0, 0.0f};
    o->seed = 1;
    o->dtype = NULL; /* not given: the step's first type (attn_step_default_dtype) */
    o->check = 1;
    o->warmup = 3;
    o->iters = 20;
    int kv_given = 0, seqk_given = 0;

    for (int a = 1; a < argc; a++) {
        char flag[64];
        const char *arg = argv[a], *val = NULL;
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(msg, msg_len, "unexpected argument '%.40s' (flags start with --; see --help)", arg);
            return ATTN_EXIT_BAD_INPUT;
        }
        const char *eq = strchr(arg, '=');
        size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
        if (n >= sizeof flag) {
            snprintf(msg, msg_len, "unknown flag '%.40s' (see --help)", arg);
            return ATTN_EXIT_BAD_INPUT;
        }
        memcpy(flag, arg, n);
        flag[n] = '\0';
        if (eq)
            val = eq + 1;

        /* boolean flags */
        int *bflag = !strcmp(flag, "--causal") ? &o->prob.causal
                   : !strcmp(flag, "--deterministic") ? &o->deterministic
                   : !strcmp(flag, "--bench") ? &o->bench : NULL;
        if (bflag) {
            if (val && strcmp(val, "0") != 0 && strcmp(val, "1") != 0) {
                snprintf(msg, msg_len, "%s: takes no value, or =0 / =1, got '%.40s'", flag, val);
                return ATTN_EXIT_BAD_INPUT;
            }
            *bflag = val ? (*val == '1') : 1;
            if (bflag == &o->deterministic)
                o->deterministic_given = 1;
            continue;
        }
        if (!strcmp(flag, "--check") || !strcmp(flag, "--no-check") || !strcmp(flag, "--help")) {
            if (val) {
                snprintf(msg, msg_len, "%s takes no value", flag);
                return ATTN_EXIT_BAD_INPUT;
            }
            if (!strcmp(flag, "--help")) {
                attn_print_usage(help_out, argv[0]);
                return 1;
            }
            o->check = !strcmp(flag, "--check");
            continue;
        }

        /* flags with a value: --flag value or --flag=value */
        static const char *const VALUE_FLAGS[] = {
            "--batch", "--heads", "--kv-heads", "--seq", "--seq-k", "--dim", "--scale",
            "--seed", "--warmup", "--iters", "--dtype", "--layout", "--q", "--k", "--v", "--do",
            "--out", "--lse", "--prev", "--dq", "--dk", "--dv"};
        int known = 0;
        for (size_t f = 0; f < sizeof VALUE_FLAGS / sizeof VALUE_FLAGS[0]; f++)
            known |= !strcmp(flag, VALUE_FLAGS[f]);
        if (!known) {
            snprintf(msg, msg_len, "unknown flag '%.40s' (see --help)", flag);
            return ATTN_EXIT_BAD_INPUT;
        }
        if (!val) {
            if (a + 1 >= argc) {
                snprintf(msg, msg_len, "%s needs a value (see --help)", flag);
                return ATTN_EXIT_BAD_INPUT;
            }
            val = argv[++a];
        }
        int rc = 0;
        attn_problem *p = &o->prob;
        if (!strcmp(flag, "--batch")) {
            rc = parse_int(flag, val, 1, 65535, &p->batch, msg, msg_len);
            o->shape_given[ATTN_SG_BATCH] = 1;
        } else if (!strcmp(flag, "--heads")) {
            rc = parse_int(flag, val, 1, 65535, &p->heads_q, msg, msg_len);
            o->shape_given[ATTN_SG_HEADS] = 1;
        } else if (!strcmp(flag, "--kv-heads")) {
            rc = parse_int(flag, val, 1, 65535, &p->heads_kv, msg, msg_len);
            o->shape_given[ATTN_SG_KV_HEADS] = kv_given = 1;
        } else if (!strcmp(flag, "--seq")) {
            rc = parse_int(flag, val, 1, 1 << 24, &p->seqlen_q, msg, msg_len);
            o->shape_given[ATTN_SG_SEQ] = 1;
        } else if (!strcmp(flag, "--seq-k")) {
            rc = parse_int(flag, val, 1, 1 << 24, &p->seqlen_k, msg, msg_len);
            o->shape_given[ATTN_SG_SEQ_K] = seqk_given = 1;
        } else if (!strcmp(flag, "--dim")) {
            rc = parse_int(flag, val, 1, ATTN_MAX_HEAD_DIM, &p->head_dim, msg, msg_len);
            o->shape_given[ATTN_SG_DIM] = 1;
        } else if (!strcmp(flag, "--scale")) {
            char *end;
            errno = 0;
            double s = strtod(val, &end);
            /* a positive scale that rounds to float 0 would silently become
             * the default 1/sqrt(dim): refuse it */
            if (!*val || *end || errno || !(s >= 0) || s > 1e30 || (s > 0 && (float)s == 0.0f)) {
                snprintf(msg, msg_len,
                         "--scale: expected 0 (meaning 1/sqrt(dim)) or a number in "
                         "1.4e-45..1e30, got '%.40s'", val);
                return ATTN_EXIT_BAD_INPUT;
            }
            p->softmax_scale = (float)s;
        } else if (!strcmp(flag, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(val, &end, 10);
            if (!isdigit((unsigned char)*val) || *end || errno) { /* strtoull takes " -1" */
                snprintf(msg, msg_len, "--seed: expected an integer in 0..2^64-1, got '%.40s'", val);
                return ATTN_EXIT_BAD_INPUT;
            }
            o->seed = s;
        } else if (!strcmp(flag, "--warmup")) {
            rc = parse_int(flag, val, 0, 1000, &o->warmup, msg, msg_len);
        } else if (!strcmp(flag, "--iters")) {
            rc = parse_int(flag, val, 1, 100000, &o->iters, msg, msg_len);
        } else if (!strcmp(flag, "--dtype")) {
            if (strcmp(val, "fp32") != 0 && strcmp(val, "fp16") != 0 && strcmp(val, "bf16") != 0) {
                snprintf(msg, msg_len, "--dtype: expected fp32, fp16 or bf16, got '%.40s'", val);
                return ATTN_EXIT_BAD_INPUT;
            }
            o->dtype = val;
        } else if (!strcmp(flag, "--layout")) {
            if (strcmp(val, "bhsd") != 0 && strcmp(val, "bshd") != 0) {
                snprintf(msg, msg_len, "--layout: expected bhsd or bshd, got '%.40s'", val);
                return ATTN_EXIT_BAD_INPUT;
            }
            o->layout = !strcmp(val, "bshd") ? ATTN_LAYOUT_BSHD : ATTN_LAYOUT_BHSD;
        } else {
            const char **path = !strcmp(flag, "--q") ? &o->q_path
                              : !strcmp(flag, "--k") ? &o->k_path
                              : !strcmp(flag, "--v") ? &o->v_path
                              : !strcmp(flag, "--do") ? &o->do_path
                              : !strcmp(flag, "--out") ? &o->out_path
                              : !strcmp(flag, "--lse") ? &o->lse_path
                              : !strcmp(flag, "--prev") ? &o->prev_path
                              : !strcmp(flag, "--dq") ? &o->dq_path
                              : !strcmp(flag, "--dk") ? &o->dk_path
                              : !strcmp(flag, "--dv") ? &o->dv_path : NULL;
            if (!path) {
                snprintf(msg, msg_len, "unknown flag '%.40s' (see --help)", flag);
                return ATTN_EXIT_BAD_INPUT;
            }
            if (!*val) {
                snprintf(msg, msg_len, "%s: expected a file path, got an empty string", flag);
                return ATTN_EXIT_BAD_INPUT;
            }
            *path = val;
        }
        if (rc)
            return rc;
    }
    if (!kv_given)
        o->prob.heads_kv = o->prob.heads_q;
    if (!seqk_given)
        o->prob.seqlen_k = o->prob.seqlen_q;
    int nfiles = !!o->q_path + !!o->k_path + !!o->v_path;
    if (nfiles != 0 && nfiles != 3) {
        snprintf(msg, msg_len, "--q, --k and --v go together: give all three or none");
        return ATTN_EXIT_BAD_INPUT;
    }
    if (nfiles == 0)
        return attn_problem_validate(&o->prob, msg, msg_len);
    return 0;
}
