#!/bin/sh
# The CPU steps' memory traffic, measured: steps 01, 02 and 03 under
# valgrind's cachegrind with its last-level cache set to 8 MiB
# (--LL=8388608,16,64), one head, D = 64, N = $1 (default 4096), no check
# (the oracle's own traffic is not the step's). Prints a table of data
# references and last-level misses (reads, writes, all), and each step's
# misses against step 01's. Step 01 stores S and P, N² floats each (64 MiB
# at N = 4096: eight times the cache), so it misses on nearly every line of
# them; steps 02 and 03 keep one row or one tile, and miss only on Q, K, V
# and O. Exits 1 unless step 03 misses at least MIN_RATIO (default 10)
# times less than step 01, so the claim is checked, not just printed.
#   sh tests/cachegrind.sh [N]     from the project root, after `make`
set -eu
N=${1:-4096}
BIN=${BIN:-build/bin}
MIN_RATIO=${MIN_RATIO:-10}
command -v valgrind > /dev/null || { echo "cachegrind: valgrind not found" >&2; exit 2; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
echo "cachegrind, LL = 8 MiB (16-way, 64-byte lines); B = 1, H = 1, N = $N, D = 64, fp32, --no-check"
echo
echo "| step | D refs | LL read misses | LL write misses | LL misses | against step 01 |"
echo "|---|---:|---:|---:|---:|---:|"
m01=0
m03=0
for s in 01_naive_cpu 02_online_softmax_cpu 03_tiled_cpu; do
  valgrind --tool=cachegrind --cache-sim=yes --LL=8388608,16,64 \
    --cachegrind-out-file="$T/cg.out" "$BIN/$s" --heads 1 --seq "$N" --dim 64 --no-check \
    > "$T/out.txt" 2> "$T/err.txt" || { echo "cachegrind: $s failed" >&2; cat "$T/err.txt" >&2; exit 2; }
  # "==pid== D   refs:  445,645,152  (…)" and "==pid== LL misses:  575,040  (10,188 rd + 564,852 wr)"
  refs=$(sed -n 's/.*D   refs: *\([0-9,]*\).*/\1/p' "$T/err.txt" | tr -d ,)
  ll=$(sed -n 's/.*LL misses: *\([0-9,]*\) *( *\([0-9,]*\) rd *+ *\([0-9,]*\) wr.*/\1 \2 \3/p' "$T/err.txt" | tr -d ,)
  set -- $ll
  [ -n "$refs" ] && [ $# -eq 3 ] || { echo "cachegrind: no summary for $s" >&2; cat "$T/err.txt" >&2; exit 2; }
  [ "$s" = 01_naive_cpu ] && m01=$1
  [ "$s" = 03_tiled_cpu ] && m03=$1
  ratio=$(awk -v a="$m01" -v b="$1" -v s="$s" \
    'BEGIN { if (s == "01_naive_cpu") print "—"; else printf "%.1f× fewer\n", (b > 0 ? a / b : 0) }')
  echo "| $s | $refs | $2 | $3 | $1 | $ratio |"
done
echo
if [ "$((m03 * MIN_RATIO))" -le "$m01" ]; then
  echo "step 03 misses the last-level cache at least ${MIN_RATIO}x less than step 01: yes"
else
  echo "step 03 misses the last-level cache at least ${MIN_RATIO}x less than step 01: NO ($m03 against $m01)"
  exit 1
fi
