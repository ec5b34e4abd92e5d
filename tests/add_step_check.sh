#!/bin/sh
# Adding a step touches its folder, its suite file and at most one other
# line: this script shows it, and can be rerun. In a scratch copy of the
# working tree it adds steps/99_copy_of_06 (step 06 with its number changed:
# attn06_* -> attn99_*) and tests/test_gpu_99.c (its suite: the conformance
# table against step 06), and nothing else, then:
#   - git status lists exactly those (the diff outside the two new files is
#     at most one added line);
#   - `make` builds build/bin/99_copy_of_06 and build/bin/test_gpu_99 with no
#     Makefile edit (steps and suites are found by pattern);
#   - `make diff TO=99` compares it with its base (06) and shows no change
#     but the bookkeeping, `make diffstat` lists it;
#   - the tour runs it (a line for 99_copy_of_06) and so does its suite
#     (`skipped: no CUDA device` without a GPU; the conformance table with
#     one); the step registry (build/gen/registry.c) lists it, so the
#     benchmark (build/bin/bench) runs it.
# Run from the repository root: sh tests/add_step_check.sh [KEEP_DIR]
set -eu
root=$(pwd)
W=${1:-$(mktemp -d)/wt}
fail() { echo "add_step_check: FAIL: $*" >&2; exit 1; }
# the scratch copy: this working tree (not build/, not .git), as a fresh
# repository whose one commit is the base the change is measured against
mkdir -p "$W"
tar -c --exclude=./build --exclude=./.git --exclude=./.deps . | tar -x -C "$W"
cleanup() { cd "$root"; rm -rf "$W"; }
[ -n "${1:-}" ] || trap cleanup EXIT
cd "$W"
git init -q . && git add -A && git -c user.name=check -c user.email=check@localhost commit -qm base

# 1. the folder: a copy of step 06 with its number changed
cp -r steps/06_fa2_warp steps/99_copy_of_06
sed -i 's/attn06_/attn99_/g; s/\bsupports06\b/supports99/g; s/"06", "fa2_warp"/"99", "copy_of_06"/; s#steps/06_fa2_warp/#steps/99_copy_of_06/#' \
  steps/99_copy_of_06/launch.cu steps/99_copy_of_06/kernel.cuh
cat > steps/99_copy_of_06/step.mk <<'MK'
# Step 99: a scratch copy of step 06 (tests/add_step_check.sh)
STEP_BASE       := 06
STEP_IDEA       := kernel.cuh
STEP_SRCS       := launch.cu
STEP_MAIN       := launch.cu
MK
# 2. its suite
cat > tests/test_gpu_99.c <<'C'
/** @file test_gpu_99.c @brief Step 99 (a copy of 06) against step 06 and the oracle. */
#include <check.h>
#include <stdlib.h>

#include "conformance.h"

extern const attn_step attn99_step; /* steps/99_copy_of_06/launch.cu */

START_TEST(test_99_vs_06)
{
    attn_problem p = conf_shape(_i / CONF_KIND_COUNT);
    (void)conf_check_step(&attn99_step, &attn06_step, &p, (conf_kind)(_i % CONF_KIND_COUNT),
                          99u * 100003u + (uint64_t)_i);
}
END_TEST

int main(void)
{
    char msg[256];
    if (!attn_gpu_available(msg, sizeof msg)) {
        printf("skipped: no CUDA device\n");
        return 0;
    }
    Suite *s = suite_create("step99");
    TCase *tc = tcase_create("conformance");
    tcase_add_loop_test(tc, test_99_vs_06, 0, conf_shape_count() * CONF_KIND_COUNT);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
C
# what changed: the two new files, and at most one line elsewhere
untracked=$(git status --porcelain | grep '^??' | awk '{print $2}' | sort | tr '\n' ' ')
[ "$untracked" = "steps/99_copy_of_06/ tests/test_gpu_99.c " ] || fail "new files: $untracked"
changed=$(git diff --numstat | awk '{a += $1; d += $2} END {print a + d + 0}')
[ "$changed" -le 1 ] || fail "$changed lines changed outside the step's folder and suite file"
echo "added: $untracked; other lines changed: $changed"

# builds with no Makefile edit
JOBS=$(nproc 2>/dev/null || echo 2)
make -j"$JOBS" ${GPU_ARCHS:+GPU_ARCHS="$GPU_ARCHS"} ${CHECK_CFLAGS:+CHECK_CFLAGS="$CHECK_CFLAGS"} \
  ${CHECK_LIBS:+CHECK_LIBS="$CHECK_LIBS"} build/bin/99_copy_of_06 build/bin/test_gpu_99 build/bin/03_tiled_cpu \
  build/bin/04_standard_cublas build/bin/05_smem_fa1 build/bin/06_fa2_warp build/bin/bench >/dev/null || fail "build"
[ -x build/bin/99_copy_of_06 ] && [ -x build/bin/test_gpu_99 ] || fail "not built"
make -s -n test | grep -q test_gpu_99 || fail "make test does not run test_gpu_99"
# the diff against its base is bookkeeping only: nothing once numbers are normalized
n=$(make -s diff TO=99 | grep -c '^[-+][^-+]' || true)
[ "$n" -eq 0 ] || fail "make diff TO=99 shows $n changed lines (a copy should show none)"
make -s diffstat | grep -q '^99_copy_of_06 *06_fa2_warp' || fail "make diffstat does not list step 99"
# the tour and the suite run it
BIN=build/bin OUT=build/tour sh tests/tour.sh 06_fa2_warp 99_copy_of_06 > build/tour99.txt 2>&1 || true
grep -q '^99_copy_of_06 ' build/tour99.txt || fail "the tour has no line for step 99"
grep '^99_copy_of_06 ' build/tour99.txt | tail -n 1
build/bin/test_gpu_99 > build/test99.txt 2>&1 || fail "its suite: $(tail -n 3 build/test99.txt)"
tail -n 1 build/test99.txt
grep -q '&attn99_step' build/gen/registry.c || fail "the step registry does not list attn99_step"
build/bin/bench --steps 99 --quick --out build/bench99 > build/bench99.txt 2>&1 || fail "bench: $(tail -n 2 build/bench99.txt)"
echo "bench: $(tail -n 1 build/bench99.txt)"
echo "add_step_check: ok"
