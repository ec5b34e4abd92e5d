#!/bin/sh
# The tour (`make run`): every step program in order on one seed and one
# small problem, each handed the prior step's output (--prev), one line per
# step as it finishes (the table), then one line that counts the verdicts.
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
for s in "$@"; do
  if [ ! -x "$BIN/$s" ]; then
    printf '%-24s %s\n' "$s" "not built (CUDA step without nvcc?)"; n_skip=$((n_skip + 1)); continue
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
done
echo "tour: $n_pass PASS, $n_bad FAIL or error, $n_skip skipped"
exit $status
