#!/bin/sh
# Run test binaries (from $BIN), several at once on a multi-core machine,
# show their output in order, and end with one total line over all suites.
# An argument is a binary name, or binary:suite to run one Check suite of it
# (CK_RUN_SUITE), so that the long CPU suites run side by side, or a
# tests/*.sh script that prints a Check-style summary line (or "skipped: ").
BIN=${BIN:-build/bin}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
dir=$(mktemp -d)
i=0
for t in "$@"; do
  i=$((i + 1)); echo "$i $t"
done | xargs -P "$JOBS" -L 1 sh -c '
  bin=${3%%:*}; suite=${3#*:}; [ "$suite" = "$3" ] && suite=
  case $bin in
    *.sh) BIN=$0 sh "$bin" ;;
    *) CK_RUN_SUITE=$suite "$0/$bin" ;;
  esac > "$1/$2.log" 2>&1
  echo $? > "$1/$2.rc"' "$BIN" "$dir"
passed=0; failed=0; status=0
i=0
for t in "$@"; do
  i=$((i + 1)); log="$dir/$i.log"
  echo "== $t"
  cat "$log"
  line=$(grep -E '^[0-9]+%: Checks: [0-9]+' "$log" | tail -n 1)
  if [ -n "$line" ]; then
    n=$(echo "$line" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
    f=$(echo "$line" | sed -E 's/.*Failures: ([0-9]+), Errors: ([0-9]+).*/\1 \2/' | awk '{print $1+$2}')
    passed=$((passed + n - f)); failed=$((failed + f))
    [ "$f" -eq 0 ] || status=1
  elif grep -q '^skipped: ' "$log"; then
    :
  else
    echo "error: $t printed no Check summary (exit $(cat "$dir/$i.rc" 2>/dev/null))" >&2
    status=1; failed=$((failed + 1))
  fi
done
rm -rf "$dir"
[ -n "$(command -v nvcc)" ] || [ -x /usr/local/cuda/bin/nvcc ] || echo "skipped: GPU suites (nvcc not found)"
echo "total: $passed passed, $failed failed"
exit $status
