#!/bin/bash
# The GPU machine's full check, in one call: build for sm_90 (H100/H200),
# the CPU and GPU suites, compute-sanitizer (memcheck, racecheck, initcheck,
# synccheck) on every GPU step at small, odd sizes (07 in both dQ modes),
# the tour, and the forward steps timed at N = 4096 (the figures the notes
# quote, to compare a change against).
# Run from the project root with .deps/ (the Check packages) present:
#   bash tests/gpu_check.sh            logs under $OUT (or build/gpu_check)
# Prints a summary last; exit status 0 only if everything passed.
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

el "CPU suites"
BIN=build/bin sh tests/run_suites.sh $(for n in $(make -s print-cpu-suites); do echo "test_cpu:$n"; done) > "$OUT/test_cpu.txt" 2>&1 || status=1
tail -n 1 "$OUT/test_cpu.txt"

el "GPU suites (no fork)"
build/bin/test_gpu > "$OUT/test_gpu.txt" 2>&1 || status=1
grep -E '^[0-9]+%: Checks|^skipped' "$OUT/test_gpu.txt"
grep -E ':F:|:E:' "$OUT/test_gpu.txt" | head -20
build/bin/test_gpu_07 > "$OUT/test_gpu_07.txt" 2>&1 || status=1
grep -E '^[0-9]+%: Checks|^skipped|^summary|^determinism' "$OUT/test_gpu_07.txt"
grep -E ':F:|:E:' "$OUT/test_gpu_07.txt" | head -20

el "compute-sanitizer"
shapes=("--heads 4 --kv-heads 2 --seq 203 --seq-k 113 --dim 64 --causal"
        "--heads 2 --kv-heads 1 --seq 113 --seq-k 203 --dim 128"
        "--heads 3 --seq 31 --dim 32 --causal"
        "--heads 3 --seq 97 --dim 128 --causal"
        "--batch 2 --heads 2 --seq 1 --seq-k 203 --dim 64")
: > "$OUT/sanitizer.txt"
for tool in memcheck racecheck initcheck synccheck; do
  for s in build/bin/0[4-9]_* "build/bin/07_backward --deterministic"; do
    for sh in "${shapes[@]}"; do
      # shellcheck disable=SC2086 # $s and $sh are word lists
      log=$(compute-sanitizer --tool $tool --error-exitcode 9 $s $sh 2>&1); rc=$?
      summary=$(echo "$log" | grep -E "ERROR SUMMARY|RACECHECK SUMMARY" | tail -n 1)
      verdict=$(echo "$log" | grep -E "^(PASS|FAIL)$" | tail -n 1)
      echo "$tool $(basename "$s") [$sh] rc=$rc $verdict $summary" >> "$OUT/sanitizer.txt"
      [ $rc -eq 0 ] || { status=1; echo "$log" | head -40 >> "$OUT/sanitizer_failures.txt"; }
    done
  done
done
echo "sanitizer runs: $(wc -l < "$OUT/sanitizer.txt"), clean: $(grep -c ' rc=0 PASS' "$OUT/sanitizer.txt")"
grep -v ' rc=0 PASS' "$OUT/sanitizer.txt" | head

el "tour"
BIN=build/bin OUT=build/tour sh tests/tour.sh $(ls steps) > "$OUT/tour.txt" 2>&1 || status=1
tail -n 9 "$OUT/tour.txt"

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

el "done"
git log -1 --format='commit %H' 2>/dev/null || cat .snap/COMMIT 2>/dev/null || true
exit $status
