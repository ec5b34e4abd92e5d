#!/usr/bin/env bash
# tests/bench/gpu_bench.sh: the whole GPU benchmark in one command, for a
# GPU machine that gives a job 10 minutes (notes/design.md, "Benchmark and
# timing"). Run from the repository root:
#
#     bash tests/bench/gpu_bench.sh
#
# 1. builds build/bin/bench alone, for sm_90 (GPU_ARCHS=90; override with
#    GPU_ARCHS=…), with every core;
# 2. runs it: the fp32 sweep (steps 04-07, B = 1), then the tc sweep (the
#    steps that take fp16/bf16, step 04 in fp16/bf16 and step 06 in fp32
#    beside them, B = 16384 / N), two processes: a step that breaks the
#    device (exit 3, "error: step NN (…): …"; a new step not yet run on a GPU)
#    costs only its sweep, and the tc sweep is run once more without it
#    (--skip-steps NN); their rows together are results.csv;
# 3. runs tests/bench/peers.py: PyTorch SDPA on the same shapes (tc: flash,
#    cuDNN, efficient in fp16 and bf16; fp32: efficient and math), writing
#    peers.csv (skipped, with one line, where PyTorch or CUDA is missing);
# 4. prints the tables of both with tests/bench/sweep.py --print (tables.md);
# 5. packs results.csv, peers.csv, tables.md, the log of every stage and the
#    machine's description (env.txt) into $OUT/gpu_bench.tar.gz, and copies
#    tables.md beside it.
#
# $OUT: the folder the results go to (default build/bench; the GPU runner
# sets it to a folder whose files come back). The stages run in build/bench.
# Each stage has a time limit, and all of them together stop before
# GPU_BENCH_LIMIT_S seconds (default 510: 8.5 minutes, under the 9 that
# leave room for the runner); a stage cut short keeps what it wrote (bench
# and peers.py write their CSV as they go). Expected on one H200: build
# ~30 s, bench ~1.5 min (fp32 sweep 56 s measured, tc sweep ~21 s
# estimated), peers ~1 min: about 3 minutes.
# Extra flags for build/bin/bench and peers.py: BENCH_FLAGS, PEERS_FLAGS
# (e.g. BENCH_FLAGS="--sweep tc" PEERS_FLAGS="--sweep tc" for the 16-bit half).
# Exit status: 0 when every stage succeeded, else that of the first that
# failed (the archive is written either way): a tc step that broke the
# device makes it 3 even where the sweep without it then ran.
set -u
t0=$(date +%s)
LIMIT=${GPU_BENCH_LIMIT_S:-510}
OUT=${OUT:-build/bench}
W=build/bench
mkdir -p "$OUT" "$W" || exit 3
OUT=$(cd "$OUT" && pwd)
LOG=$W/gpu_bench.log
rm -rf "$W/results.csv" "$W/peers.csv" "$W/tables.md" "$W/env.txt" "$LOG" "$W/fp32" "$W/tc" "$W/tc2"
status=0

say() { echo "gpu_bench: $*" | tee -a "$LOG"; }
left() { echo $((LIMIT - ($(date +%s) - t0))); }
# stage NAME CAP RESERVE CMD…: run CMD for at most min(CAP, time left - RESERVE)
# seconds, its output into the log (and on screen); the first failure's code
# becomes the script's.
stage() {
  local name=$1 cap=$2 reserve=$3 t rc s
  shift 3
  t=$(($(left) - reserve))
  [ "$t" -gt "$cap" ] && t=$cap
  if [ "$t" -lt 5 ]; then
    say "$name: not run (no time left of ${LIMIT} s)"
    [ "$status" -eq 0 ] && status=124
    return 124
  fi
  say "$name: up to ${t} s: $*"
  s=$(date +%s)
  timeout -k 10 "$t" "$@" 2>&1 | tee -a "$LOG"
  rc=${PIPESTATUS[0]}
  say "$name: exit $rc after $(($(date +%s) - s)) s$([ "$rc" -eq 124 ] && echo ' (time limit)')"
  [ "$rc" -ne 0 ] && [ "$status" -eq 0 ] && status=$rc
  return "$rc"
}

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "commit: $(git rev-parse HEAD 2>/dev/null || echo 'not a git checkout')$(git diff --quiet HEAD 2>/dev/null || echo ' (dirty or unknown)')"
  echo "host: $(uname -srm), $(nproc) cores"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader 2>&1 | sed 's/^/gpu: /'
  echo "nvcc: $( (command -v nvcc >/dev/null && nvcc --version || /usr/local/cuda/bin/nvcc --version) 2>&1 | tail -n 2 | tr '\n' ' ')"
  echo "python: $(python3 -c 'import sys; print(sys.version.split()[0])' 2>&1)"
  echo "torch: $(python3 -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda, "cuDNN", torch.backends.cudnn.version())' 2>&1 | tail -n 1)"
  echo "GPU_ARCHS=${GPU_ARCHS:-90} BENCH_FLAGS=${BENCH_FLAGS:-} PEERS_FLAGS=${PEERS_FLAGS:-} limit ${LIMIT} s"
} > "$W/env.txt" 2>&1
cat "$W/env.txt" | tee -a "$LOG"

# reserves: what the later stages need at least (bench ~100 s, peers ~60 s)
if stage build 240 200 make -j"$(nproc)" GPU_ARCHS="${GPU_ARCHS:-90}" build/bin/bench; then
  # shellcheck disable=SC2086
  stage bench-fp32 200 150 build/bin/bench --sweep fp32 --out "$W/fp32" ${BENCH_FLAGS:-}
  n0=$(wc -l < "$LOG")
  # shellcheck disable=SC2086
  stage bench-tc 150 90 build/bin/bench --sweep tc --out "$W/tc" ${BENCH_FLAGS:-}
  tc=$W/tc
  bad=$(tail -n +"$((n0 + 1))" "$LOG" | sed -n 's/^error: step \([0-9][0-9]*\) .*/\1/p' | tail -n 1)
  if [ -n "$bad" ]; then
    say "bench-tc: step $bad broke the device: the tc sweep again without it"
    # shellcheck disable=SC2086
    stage bench-tc2 120 80 build/bin/bench --sweep tc --skip-steps "$bad" --out "$W/tc2" ${BENCH_FLAGS:-}
    tc=$W/tc2
  fi
  # results.csv: the header once, then the fp32 sweep's rows and the tc sweep's
  for f in "$W/fp32/results.csv" "$tc/results.csv"; do
    [ -s "$f" ] || continue
    [ -s "$W/results.csv" ] || head -n 1 "$f" > "$W/results.csv"
    tail -n +2 "$f" >> "$W/results.csv"
  done
fi
# shellcheck disable=SC2086
stage peers 240 20 python3 tests/bench/peers.py --out "$W" ${PEERS_FLAGS:-}
if [ -s "$W/results.csv" ] || [ -s "$W/peers.csv" ]; then
  [ -s "$W/results.csv" ] || head -n 1 "$W/peers.csv" > "$W/results.csv" # peers alone
  stage tables 60 5 sh -c "python3 tests/bench/sweep.py --print '$W/results.csv' --peers '$W/peers.csv' --out '$W' > '$W/tables.md'"
  cat "$W/tables.md" 2>/dev/null
else
  say "tables: nothing measured"
fi
say "done in $(($(date +%s) - t0)) s, exit $status"

files=""
for f in results.csv peers.csv tables.md env.txt gpu_bench.log; do
  [ -e "$W/$f" ] && files="$files $f"
done
# shellcheck disable=SC2086
tar -czf "$OUT/gpu_bench.tar.gz" -C "$W" $files && echo "gpu_bench: wrote $OUT/gpu_bench.tar.gz:$files"
[ -e "$W/tables.md" ] && [ "$OUT" != "$(cd "$W" && pwd)" ] && cp "$W/tables.md" "$OUT/tables.md"
exit "$status"
