#!/bin/bash
# The GPU machine's full check, in one call: build for sm_90 (H100/H200),
# the CPU and GPU suites, compute-sanitizer (memcheck, racecheck, initcheck,
# synccheck) on every GPU step at small, odd sizes (07 in both dQ modes),
# the tour, and the forward steps timed at N = 4096 (the figures the notes
# quote, to compare a change against). Steps 08, 09 and 10 also run from
# their compute_75 PTX alone, JIT-compiled by the driver: their sm_75 path.
# Run from the project root with .deps/ (the Check packages) present:
#   bash tests/gpu_check.sh            logs under $OUT (or build/gpu_check)
# Prints a summary last; exit status 0 only if everything passed.
# QUICK=1: a shorter run for a device budget that is nearly spent: no CPU
# suites (CI runs them), no sm_75 PTX build, two sanitizer shapes.
# PART=main | sm75: the full check in two calls, each well under 10 minutes
# (main: everything but the sm_75 section and the CPU suites; sm75: the
# build and the sm_75 section alone).
set -u
OUT=${OUT:-build/gpu_check}
mkdir -p "$OUT"
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 ))s] $*"; }
status=0

mkdir -p /tmp/ck && for f in .deps/*.deb; do dpkg -x "$f" /tmp/ck; done
export LD_LIBRARY_PATH=/tmp/ck/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
CK="CHECK_CFLAGS=-I/tmp/ck/usr/include"
CKL="CHECK_LIBS=-L/tmp/ck/usr/lib/x86_64-linux-gnu -lcheck -lsubunit -lm -lrt -lpthread"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; nvcc --version | tail -n 2; } > "$OUT/env.txt" 2>&1

el "build (GPU_ARCHS=90)"
make -j"$(nproc)" GPU_ARCHS=90 "$CK" "$CKL" all > "$OUT/build.txt" 2>&1 || { tail -30 "$OUT/build.txt"; exit 1; }

if [ "${QUICK:-0}" != 1 ] && [ "${PART:-all}" = all ]; then
el "CPU suites"
BIN=build/bin sh tests/run_suites.sh $(for n in $(make -s print-cpu-suites); do echo "test_cpu:$n"; done) > "$OUT/test_cpu.txt" 2>&1 || status=1
tail -n 1 "$OUT/test_cpu.txt"
fi

if [ "${PART:-all}" != sm75 ]; then
el "GPU suites (no fork)"
build/bin/test_gpu > "$OUT/test_gpu.txt" 2>&1 || status=1
grep -E '^[0-9]+%: Checks|^skipped' "$OUT/test_gpu.txt"
grep -E ':F:|:E:' "$OUT/test_gpu.txt" | head -20
build/bin/test_gpu_07 > "$OUT/test_gpu_07.txt" 2>&1 || status=1
grep -E '^[0-9]+%: Checks|^skipped|^summary|^determinism' "$OUT/test_gpu_07.txt"
grep -E ':F:|:E:' "$OUT/test_gpu_07.txt" | head -20

# the tensor-core steps: the table in four type x layout cases, and (08) step
# 04 at fp16 and bf16, side by side (one process each)
for n in 08 09 10; do
  cases="special fp16_bhsd fp16_bshd bf16_bhsd bf16_bshd"
  [ $n = 08 ] && cases="$cases step04_fp16 step04_bf16"
  [ $n = 10 ] && cases="$cases xdims_fp16 xdims_bf16"
  for c in $cases; do
    CK_RUN_CASE=$c build/bin/test_gpu_$n > "$OUT/test_gpu_${n}_$c.txt" 2>&1 &
  done
done
for j in $(jobs -p); do wait "$j" || status=1; done
for n in 08 09 10; do
  cat "$OUT"/test_gpu_${n}_*.txt > "$OUT/test_gpu_$n.txt"
  echo "test_gpu_$n:"
  grep -E '^[0-9]+%: Checks|^skipped|^summary' "$OUT/test_gpu_$n.txt"
  grep -E ':F:|:E:' "$OUT/test_gpu_$n.txt" | head -20
done

fi

if [ "${QUICK:-0}" != 1 ] && [ "${PART:-all}" != main ]; then
el "steps 08, 09, 10 from compute_75 PTX (the sm_75 path: m16n8k8, fp16; bf16 is exit 3)"
# Every CUDA object of this build carries compute_75 PTX and sm_75 code
# only, so the driver JIT-compiles the PTX for this GPU: steps 08, 09 (and
# their suites' fp16 table) see
# ptxVersion 75 and takes its Turing path. Its speed here says nothing
# about a Turing GPU.
NVCC_APPEND_FLAGS="-gencode arch=compute_75,code=compute_75" \
  make -j"$(nproc)" GPU_ARCHS=75 BUILD=build/sm75 "$CK" "$CKL" build/sm75/bin/08_tc_mma \
  build/sm75/bin/09_tc_ldmatrix build/sm75/bin/10_tc_pipeline build/sm75/bin/test_gpu_08 \
  build/sm75/bin/test_gpu_09 build/sm75/bin/test_gpu_10 \
  > "$OUT/build_sm75.txt" 2>&1 \
  || { tail -30 "$OUT/build_sm75.txt"; status=1; }
# the fp16 conformance table through the sm_75 path, both layouts, side by side
for n in 08 09 10; do
  cases="fp16_bhsd fp16_bshd"
  [ $n = 10 ] && cases="$cases xdims_fp16"
  for c in $cases; do
    CK_RUN_CASE=$c build/sm75/bin/test_gpu_$n > "$OUT/sm75_test_gpu_${n}_$c.txt" 2>&1 &
  done
done
for j in $(jobs -p); do wait "$j" || status=1; done
for f in "$OUT"/sm75_test_gpu_*.txt; do
  echo "sm75 path, $(basename "$f" .txt):"
  grep -E '^[0-9]+%: Checks|^skipped|^summary' "$f"
  grep -E ':F:|:E:' "$f" | head -5
done
: > "$OUT/sm75.txt"
for st in 08_tc_mma 09_tc_ldmatrix 10_tc_pipeline; do
for sh in "--heads 4 --kv-heads 2 --seq 203 --seq-k 113 --dim 64 --causal" \
          "--heads 2 --kv-heads 1 --seq 113 --seq-k 203 --dim 128" \
          "--batch 2 --heads 3 --seq 31 --dim 32 --causal --layout bshd" \
          "--heads 2 --seq 1023 --seq-k 1024 --dim 128 --causal"; do
  # shellcheck disable=SC2086 # $sh is a word list
  out=$(build/sm75/bin/$st --dtype fp16 $sh 2>&1); rc=$?
  echo "$st fp16 [$sh] rc=$rc $(echo "$out" | tail -n 1)" >> "$OUT/sm75.txt"
  [ $rc -eq 0 ] || status=1
done
out=$(build/sm75/bin/$st --dtype bf16 --dim 64 2>&1); rc=$?
echo "$st bf16 rc=$rc (3 expected) $out" >> "$OUT/sm75.txt"
{ [ $rc -eq 3 ] && echo "$out" | grep -q compute_75; } || status=1
for c in "" "--causal"; do
  # shellcheck disable=SC2086 # $c is empty or one flag
  build/sm75/bin/$st --dtype fp16 --heads 32 --seq 4096 --dim 128 $c --bench --no-check 2>&1 \
    | grep '^result:' | sed 's/^/sm75 path, JIT on this GPU (not a T4 figure): /' >> "$OUT/sm75.txt"
done
done
cat "$OUT/sm75.txt"
fi

if [ "${PART:-all}" = sm75 ]; then
  el "done (PART=sm75)"
  exit $status
fi

el "compute-sanitizer"
shapes=("--heads 4 --kv-heads 2 --seq 203 --seq-k 113 --dim 64 --causal"
        "--heads 2 --kv-heads 1 --seq 113 --seq-k 203 --dim 128"
        "--heads 3 --seq 31 --dim 32 --causal"
        "--heads 3 --seq 97 --dim 128 --causal"
        "--batch 2 --heads 2 --seq 1 --seq-k 203 --dim 64")
[ "${QUICK:-0}" = 1 ] && shapes=("${shapes[0]}" "${shapes[2]}")
: > "$OUT/sanitizer.txt"
# sanitize TOOL PROGRAM SHAPE: one compute-sanitizer run, one line in
# sanitizer.txt (PROGRAM and SHAPE are word lists: a binary and its flags)
sanitize() {
  # shellcheck disable=SC2086 # $2 and $3 are word lists
  log=$(compute-sanitizer --tool "$1" --error-exitcode 9 $2 $3 2>&1); rc=$?
  summary=$(echo "$log" | grep -E "ERROR SUMMARY|RACECHECK SUMMARY" | tail -n 1)
  verdict=$(echo "$log" | grep -E "^(PASS|FAIL)$" | tail -n 1)
  echo "$1 $(basename "${2%% *}")${2#"${2%% *}"} [$3] rc=$rc $verdict $summary" >> "$OUT/sanitizer.txt"
  [ $rc -eq 0 ] || { status=1; echo "$log" | head -40 >> "$OUT/sanitizer_failures.txt"; }
}
for tool in memcheck racecheck initcheck synccheck; do
  for s in build/bin/0[4-7]_* "build/bin/07_backward --deterministic" \
           "build/bin/08_tc_mma --dtype fp16" "build/bin/08_tc_mma --dtype bf16 --layout bshd" \
           "build/bin/09_tc_ldmatrix --dtype fp16" "build/bin/09_tc_ldmatrix --dtype bf16 --layout bshd" \
           "build/bin/10_tc_pipeline --dtype fp16" "build/bin/10_tc_pipeline --dtype bf16 --layout bshd"; do
    for sh in "${shapes[@]}"; do
      sanitize "$tool" "$s" "$sh"
    done
  done
  # step 10's head dims beyond the shapes' (96, 256), one type each
  for sh in "--dtype fp16 --heads 3 --kv-heads 1 --seq 97 --seq-k 203 --dim 96 --causal" \
            "--dtype bf16 --batch 2 --heads 2 --seq 113 --dim 256 --causal --layout bshd"; do
    sanitize "$tool" build/bin/10_tc_pipeline "$sh"
  done
done
echo "sanitizer runs: $(wc -l < "$OUT/sanitizer.txt"), clean: $(grep -c ' rc=0 PASS' "$OUT/sanitizer.txt")"
grep -v ' rc=0 PASS' "$OUT/sanitizer.txt" | head

el "tour"
BIN=build/bin OUT=build/tour sh tests/tour.sh $(ls steps) > "$OUT/tour.txt" 2>&1 || status=1
tail -n 10 "$OUT/tour.txt"

el "forward steps timed (B = 1, Hq = 32, N = 4096, --bench)"
for s in 04_standard_cublas 05_smem_fa1 06_fa2_warp; do
  for d in 64 128; do
    for c in "" "--causal"; do
      # shellcheck disable=SC2086 # $c is empty or one flag
      build/bin/$s --heads 32 --seq 4096 --dim $d $c --bench --no-check 2>&1 | grep '^result:' \
        | sed -E 's/.*step=([0-9]+).* D=([0-9]+) causal=([01]) ms=([0-9.]+) tflops=([0-9.]+).*/step \1 D=\2 causal=\3 ms=\4 tflops=\5/'
    done
  done
done | tee "$OUT/timing.txt"
for s in 08_tc_mma 09_tc_ldmatrix 10_tc_pipeline; do
for d in 64 128; do
  for c in "" "--causal"; do
    # shellcheck disable=SC2086 # $c is empty or one flag
    build/bin/$s --dtype fp16 --heads 32 --seq 4096 --dim $d $c --bench --no-check 2>&1 | grep '^result:' \
      | sed -E 's/.*step=([0-9]+).* D=([0-9]+) causal=([01]) .*ms=([0-9.]+) tflops=([0-9.]+).*/step \1 fp16 D=\2 causal=\3 ms=\4 tflops=\5/'
  done
done
done | tee -a "$OUT/timing.txt"

el "done"
git log -1 --format='commit %H' 2>/dev/null || cat .snap/COMMIT 2>/dev/null || true
exit $status
