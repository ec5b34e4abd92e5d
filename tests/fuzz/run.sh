#!/bin/sh
# Run the libFuzzer targets side by side, each for SECONDS, and fail on any
# finding: a crash, a sanitizer report (ASan, UBSan), a leak, a timeout or
# an out-of-memory. Called by `make fuzz`:
#   sh tests/fuzz/run.sh OUTDIR SECONDS npy cli
# Each target NAME is OUTDIR/fuzz_NAME; it starts from the committed seeds
# (tests/fuzz/corpus/NAME/, read only) and the corpus of earlier runs
# (OUTDIR/corpus-NAME/, where new inputs go). A finding is saved as
# OUTDIR/NAME-crash-… (or leak-, timeout-, oom-); reproduce it with
# `OUTDIR/fuzz_NAME FILE`, and keep it as a regression case in
# tests/test_npy.c (the .npy reader) or tests/test_cli.c (the flags).
set -u
out=$1 seconds=$2
shift 2
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for name in "$@"; do
  mkdir -p "$out/corpus-$name"
  rm -f "$out/$name".log "$out/$name-"crash-* "$out/$name-"leak-* "$out/$name-"timeout-* "$out/$name-"oom-*
  # -timeout: one input may take 10 s at most (a hang is a finding);
  # -rss_limit_mb/-malloc_limit_mb: no input may make the parser allocate 1 GiB
  "$out/fuzz_$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 \
      -dict="tests/fuzz/$name.dict" -artifact_prefix="$out/$name-" -print_final_stats=1 \
      "$out/corpus-$name" "tests/fuzz/corpus/$name" > "$out/$name.log" 2>&1 &
  echo $! > "$out/$name.pid"
done
status=0
for name in "$@"; do
  wait "$(cat "$out/$name.pid")"
  rc=$?
  rm -f "$out/$name.pid"
  runs=$(grep -E '^stat::number_of_executed_units' "$out/$name.log" | awk '{print $2}')
  cov=$(grep -E '^#[0-9]+.*(DONE|cov:)' "$out/$name.log" | tail -n 1 | sed -E 's/.*(cov: [0-9]+).*(corp: [0-9]+[^ ]*).*/\1 \2/')
  if [ "$rc" -eq 0 ] && ! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$out/$name.log"; then
    echo "fuzz $name: clean: ${runs:-?} inputs in ${seconds} s ($cov)"
  else
    status=1
    echo "fuzz $name: FINDING (exit $rc); the log's end ($out/$name.log):"
    tail -n 40 "$out/$name.log"
    ls "$out/$name-"* 2>/dev/null | sed 's/^/  saved: /'
  fi
done
exit $status
