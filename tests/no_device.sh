#!/bin/sh
# The GPU step programs on a machine with no usable CUDA device (CI's):
# each must exit 3 with one line on stderr that says "no CUDA device",
# print nothing on stdout and write no output file (notes/design.md: exit codes);
# bad input (--seq 0) still gives exit 2 there: flags are checked first.
# Ends with a Check-style summary line, so tests/run_suites.sh counts it.
# Where a device is present (a program runs and passes) it is skipped, and
# says so; where nvcc is missing there are no GPU programs to try.
BIN=${BIN:-build/bin}
progs=""
for f in steps/*/launch.cu; do
  s=$(basename "$(dirname "$f")")
  [ -x "$BIN/$s" ] && progs="$progs $s"
done
if [ -z "$progs" ]; then
  echo "skipped: no-device check: no GPU step program built (nvcc not found)"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0 failed=0
for s in $progs; do
  n=$((n + 1))
  rm -f "$tmp/o.npy"
  "$BIN/$s" --seq 8 --dim 32 --out "$tmp/o.npy" > "$tmp/out" 2> "$tmp/err"
  rc=$?
  if [ $rc -eq 0 ] && [ $failed -eq 0 ] && tail -n 1 "$tmp/out" | grep -q '^PASS$'; then
    echo "skipped: no-device check: $s ran on a CUDA device"
    exit 0
  fi
  why=""
  [ $rc -eq 3 ] || why="exit $rc, expected 3"
  [ -z "$why" ] && ! grep -q "no CUDA device" "$tmp/err" && why="stderr does not say 'no CUDA device'"
  [ -z "$why" ] && [ "$(wc -l < "$tmp/err")" -ne 1 ] && why="stderr is not one line"
  [ -z "$why" ] && [ -s "$tmp/out" ] && why="stdout is not empty"
  [ -z "$why" ] && [ -e "$tmp/o.npy" ] && why="it wrote --out"
  if [ -n "$why" ]; then
    failed=$((failed + 1))
    echo "no_device.sh:$s:F: $why"
    sed 's/^/  stdout: /' "$tmp/out"; sed 's/^/  stderr: /' "$tmp/err"
  else
    echo "$s: exit 3, $(cat "$tmp/err")"
  fi
  # bad input is bad input, device or not: checked first, exit 2
  n=$((n + 1))
  "$BIN/$s" --seq 0 > "$tmp/out" 2> "$tmp/err"
  rc=$?
  if [ $rc -ne 2 ] || [ -s "$tmp/out" ]; then
    failed=$((failed + 1))
    echo "no_device.sh:$s --seq 0:F: exit $rc, expected 2 and nothing on stdout"
  fi
done
echo "$(( (n - failed) * 100 / n ))%: Checks: $n, Failures: $failed, Errors: 0"
[ $failed -eq 0 ]
