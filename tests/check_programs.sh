#!/bin/sh
# The CPU step programs on small odd shapes, files in and out, timing, and
# bad input, each expected to give a given exit code; run by CI under
# AddressSanitizer + UndefinedBehaviorSanitizer (an ASan build in BIN) and
# under valgrind memcheck (RUN="valgrind ..."). A sanitizer or valgrind
# report fails the case even when the exit code is the expected one:
# sanitizers and valgrind are told to exit 99 (an exit code no program
# uses) and their report lines are looked for on stderr.
#   BIN=build/asan/bin sh tests/check_programs.sh
#   RUN="valgrind -q --error-exitcode=99 --leak-check=full" sh tests/check_programs.sh
BIN=${BIN:-build/bin}
RUN=${RUN:-}
# the CPU step programs: steps whose main source is C
STEPS=${STEPS:-$(for f in steps/*/attention.c; do basename "$(dirname "$f")"; done)}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:exitcode=99:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=99}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
n=0 failed=0

# expect CODE ARGS...: run the step program $s with ARGS, want exit CODE
expect() {
  want=$1; shift
  n=$((n + 1))
  $RUN "$BIN/$s" "$@" > "$t/out" 2> "$t/err"
  rc=$?
  if [ $rc -ne "$want" ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|ERROR SUMMARY: [1-9]|definitely lost: [1-9]' "$t/err"; then
    failed=$((failed + 1))
    echo "FAIL $s $* (exit $rc, expected $want)"
    tail -n 30 "$t/err" | sed 's/^/  | /'
  else
    echo "ok   $s $* (exit $rc)"
  fi
}

for s in $STEPS; do
  rm -f "$t"/*.npy
  expect 0 --help
  expect 0 --seq 1 --dim 1
  expect 0 --seq 31 --seq-k 113 --heads 4 --kv-heads 2 --dim 33 --causal
  expect 0 --batch 2 --seq 113 --seq-k 31 --heads 3 --kv-heads 1 --dim 7 --causal --scale 0.3 \
           --out "$t/o.npy" --lse "$t/lse.npy"
  expect 0 --q "$t/o.npy" --k "$t/o.npy" --v "$t/o.npy" --causal --prev "$t/o.npy"
  expect 0 --seq 64 --dim 16 --bench --warmup 1 --iters 3 --no-check
  head -c 100 "$t/o.npy" > "$t/cut.npy"
  expect 2 --seq 0
  expect 2 --heads 65535 --seq 16777216 --dim 256
  expect 2 --q "$t/lse.npy" --k "$t/o.npy" --v "$t/o.npy"
  expect 2 --q "$t/cut.npy" --k "$t/o.npy" --v "$t/o.npy"
  expect 2 --seq 8 --out /dev/null/o.npy
  expect 2 --seq 8 --out "$t/o2.npy" --lse "$t/missing/lse.npy"
done
echo "step programs${RUN:+ under ${RUN%% *}}: $((n - failed)) of $n cases as expected"
[ $failed -eq 0 ]
