/**
 * @file test_cli.c
 * @brief Suite cli: the flags' defaults and forms, every invalid flag
 * value (exit 2, one line naming the flag), strict number parsing.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "suites.h"

/* ---- CLI ----------------------------------------------------------------- */

static int parse(const char *line, attn_opts *o, char *msg)
{
    char buf[512], *argv[32];
    int argc = 0;
    snprintf(buf, sizeof buf, "prog %s", line);
    for (char *t = strtok(buf, " "); t && argc < 31; t = strtok(NULL, " "))
        argv[argc++] = t;
    argv[argc] = NULL;
    FILE *null = fopen("/dev/null", "w");
    int rc = attn_parse_args(argc, argv, o, null, msg, 256);
    fclose(null);
    return rc;
}

START_TEST(cli_defaults_and_forms)
{
    attn_opts o;
    char msg[256];
    ck_assert_int_eq(parse("", &o, msg), 0);
    ck_assert_int_eq(o.prob.heads_kv, o.prob.heads_q);
    ck_assert_int_eq(o.prob.seqlen_k, o.prob.seqlen_q);
    ck_assert_int_eq(o.check, 1);
    ck_assert_int_eq(parse("--seq=100 --seq-k 7 --heads=8 --kv-heads 2 --dim 33 --causal --scale=0.25 "
                           "--seed 42 --no-check --bench --warmup=0 --iters 5",
                           &o, msg), 0);
    ck_assert_int_eq(o.prob.seqlen_q, 100);
    ck_assert_int_eq(o.prob.seqlen_k, 7);
    ck_assert_int_eq(o.prob.heads_kv, 2);
    ck_assert_int_eq(o.prob.causal, 1);
    ck_assert_float_eq(o.prob.softmax_scale, 0.25f);
    ck_assert_uint_eq(o.seed, 42);
    ck_assert_int_eq(o.check, 0);
    ck_assert_int_eq(o.bench, 1);
    ck_assert_int_eq(o.iters, 5);
    ck_assert_int_eq(parse("--help", &o, msg), 1);
}
END_TEST

/* Every invalid flag value: exit code 2 and a message naming the flag. */
static const struct {
    const char *line, *names;
} BAD_CLI[] = {
    {"--seq 0", "--seq"},          {"--seq abc", "--seq"},        {"--seq", "--seq"},
    {"--seq 16777217", "--seq"},   {"--seq 12x", "--seq"},        {"--seq-k -1", "--seq-k"},
    {"--batch 0", "--batch"},      {"--heads 0", "--heads"},      {"--heads 70000", "--heads"},
    {"--heads 4 --kv-heads 3", "--kv-heads"}, {"--heads 4 --kv-heads 8", "--kv-heads"},
    {"--dim 0", "--dim"},          {"--dim 257", "--dim"},        {"--scale -1", "--scale"},
    {"--scale nan", "--scale"},    {"--scale inf", "--scale"},    {"--scale x", "--scale"},
    {"--seed -1", "--seed"},       {"--seed abc", "--seed"},      {"--dtype fp8", "--dtype"},
    {"--warmup -1", "--warmup"},   {"--iters 0", "--iters"},      {"--frobnicate", "unknown flag"},
    {"extra", "unexpected argument"}, {"--q a.npy", "--q"},      {"--q a --k b", "--v"},
    {"--causal=2", "--causal"},    {"--check=1", "--check"},      {"--out=", "--out"},
    {"--heads 64 --seq 16777216 --dim 256", "too large"},
    {"--scale 1e-50", "--scale"},  {"--scale 1e31", "--scale"},  {"--seed +1", "--seed"},
    {"--seq +8", "--seq"},         {"--seq=\t8", "--seq"},       {"--dim=\n8", "--dim"},
    {"--layout nhwc", "--layout"},
};

START_TEST(cli_errors)
{
    attn_opts o;
    char msg[256] = "";
    ck_assert_int_eq(parse(BAD_CLI[_i].line, &o, msg), ATTN_EXIT_BAD_INPUT);
    ck_assert_msg(strstr(msg, BAD_CLI[_i].names) != NULL, "'%s': message '%s' should name '%s'",
                  BAD_CLI[_i].line, msg, BAD_CLI[_i].names);
    ck_assert_ptr_null(strchr(msg, '\n')); /* one line */
}
END_TEST

/* Regressions: strtoull() takes " -1" as 2^64 - 1, and a positive --scale
 * below float's range rounded to 0, which silently meant 1/sqrt(dim). */
START_TEST(cli_strict_numbers)
{
    char *argv[] = {"prog", "--seed", " -1", NULL};
    attn_opts o;
    char msg[256] = "";
    ck_assert_int_eq(attn_parse_args(3, argv, &o, stdout, msg, sizeof msg), ATTN_EXIT_BAD_INPUT);
    ck_assert_ptr_nonnull(strstr(msg, "--seed"));
    argv[2] = "+1";
    ck_assert_int_eq(attn_parse_args(3, argv, &o, stdout, msg, sizeof msg), ATTN_EXIT_BAD_INPUT);
    argv[1] = "--scale", argv[2] = "1e-50";
    ck_assert_int_eq(attn_parse_args(3, argv, &o, stdout, msg, sizeof msg), ATTN_EXIT_BAD_INPUT);
    ck_assert_ptr_nonnull(strstr(msg, "--scale"));
    argv[2] = "1.5e-45"; /* the smallest float, 2^-149, is still a scale */
    ck_assert_int_eq(attn_parse_args(3, argv, &o, stdout, msg, sizeof msg), 0);
    ck_assert(o.prob.softmax_scale > 0.0f);
    argv[2] = "0";
    ck_assert_int_eq(attn_parse_args(3, argv, &o, stdout, msg, sizeof msg), 0);
    ck_assert_float_eq(attn_scale(&o.prob), 0.125f);
}
END_TEST

Suite *suite_cli(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_add_test(tc, cli_defaults_and_forms);
    tcase_add_loop_test(tc, cli_errors, 0, (int)(sizeof BAD_CLI / sizeof BAD_CLI[0]));
    tcase_add_test(tc, cli_strict_numbers);
    suite_add_tcase(s, tc);
    return s;
}
