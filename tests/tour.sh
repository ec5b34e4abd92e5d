#!/bin/sh
# The tour (`make run`): every step program in order on one seed and one
# small problem, each handed the prior step's output (--prev), one line per
# step as it finishes (the table), then one line that counts the verdicts.
# A GPU step that cannot run here (no nvcc, or no CUDA device) but has a CPU
# part, checked by a CPU suite (tests/test_NN.c: step 07's backward_cpu.c,
# step 08's fragment maps), gets a second line: that part, run by its suite
# (build/bin/test_cpu; cpu_part below picks a quick case where it is slow).
BIN=${BIN:-build/bin}
OUT=${OUT:-build/tour}
PROBLEM=${PROBLEM:---batch 1 --heads 4 --kv-heads 2 --seq 1024 --dim 64 --causal --seed 2026}
mkdir -p "$OUT"
rm -f "$OUT"/*.npy
echo "tour: $PROBLEM"
echo "(vs_prev: max |O - O of the step before|; errors against the float64 oracle)"
printf '%-24s %10s %10s %14s %12s %12s  %s\n' step ms GFLOP/s extra_bytes max_abs_err vs_prev verdict
prev=""
n_pass=0 n_skip=0 n_bad=0
status=0
# cpu_part S: the line of step S's CPU part, run by its CPU suite
cpu_part() {
  n=${1%%_*}
  [ -f "tests/test_$n.c" ] || return 0
  # a quick case where the whole suite is slow: step 07's takes about 20 s
  # on two cores, its properties case (odd head dims, explicit scales, O(N)
  # memory, exit 3) well under a second
  case $n in 07) c=properties ;; *) c= ;; esac
  what="suite step$n${c:+, case $c}"
  srcs=""
  for f in "steps/$1"/*.c; do [ -f "$f" ] && srcs="$srcs${srcs:+ }${f##*/}"; done
  if [ ! -x "$BIN/test_cpu" ]; then
    printf '%-24s %s\n' "  $n on the CPU" "$what: $BIN/test_cpu not built (make builds it)"; return 0
  fi
  t0=$(date +%s.%N)
  res=$(env CK_RUN_SUITE="step$n" ${c:+CK_RUN_CASE="$c"} CK_VERBOSITY=normal "$BIN/test_cpu" 2>&1); rc=$?
  ms=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.0f", (b - a) * 1000}')
  checks=$(echo "$res" | grep -o '[0-9]*%: Checks: [0-9]*, Failures: [0-9]*, Errors: [0-9]*' | tail -n 1)
  if [ $rc -eq 0 ] && [ -n "$checks" ]; then verdict=PASS; n_pass=$((n_pass + 1))
  else verdict=FAIL; n_bad=$((n_bad + 1)); status=1; fi
  printf '%-24s %10s  %s  %s\n' "  $n on the CPU" "$ms" "$what ($srcs): ${checks:-$(echo "$res" | tail -n 1)}" "$verdict"
}
for s in "$@"; do
  if [ ! -x "$BIN/$s" ]; then
    printf '%-24s %s\n' "$s" "not built (CUDA step without nvcc?)"; n_skip=$((n_skip + 1)); cpu_part "$s"; continue
  fi
  args="$PROBLEM --out $OUT/$s.npy"
  [ -n "$prev" ] && args="$args --prev $prev"
  res=$("$BIN/$s" $args 2>"$OUT/$s.err"); rc=$?
  if [ $rc -eq 3 ] && grep -q "no CUDA device" "$OUT/$s.err"; then
    line=$(printf '%-24s %s' "$s" "skipped: no CUDA device"); n_skip=$((n_skip + 1))
  elif [ $rc -ge 2 ]; then
    line=$(printf '%-24s %s' "$s" "error (exit $rc): $(head -n 1 "$OUT/$s.err")"); status=1
    n_bad=$((n_bad + 1))
  else
    r=$(echo "$res" | grep '^result:')
    get() { echo "$r" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
    verdict=$(echo "$res" | tail -n 1)
    if [ "$verdict" = PASS ]; then n_pass=$((n_pass + 1)); else status=1; n_bad=$((n_bad + 1)); fi
    gflops=$(awk -v t="$(get tflops)" 'BEGIN{printf "%.2f", t*1000}')
    line=$(printf '%-24s %10s %10s %14s %12s %12s  %s' "$s" "$(get ms)" "$gflops" "$(get extra_bytes)" \
           "$(get max_abs_err)" "$(get vs_prev_max_abs || true)" "$verdict")
    prev="$OUT/$s.npy"
  fi
  echo "$line"
  case $line in *"skipped: no CUDA device"*) cpu_part "$s" ;; esac
done
echo "tour: $n_pass PASS, $n_bad FAIL or error, $n_skip skipped"
exit $status
