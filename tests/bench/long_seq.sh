#!/bin/sh
# Long sequences, B = 1, Hq = 32, D = 128, fp32:
#  - step 04 at N = 4096, 8192, 16384, … until S and P no longer fit: it must
#    exit 3 and say how many bytes it needed and how many were free;
#  - step 06 at N = 131072, checked against the float64 oracle on sampled
#    rows (the driver samples when the full oracle would be too big).
# Everything it prints also goes to build/bench/long_seq.txt.
#
#   sh tests/bench/long_seq.sh [BIN=build/bin] [OUT=build/bench]
#   LONG_N=65536 CAUSAL=1 sh tests/bench/long_seq.sh   # a shorter 06 run
set -u
BIN=${BIN:-build/bin}
OUT=${OUT:-build/bench}
LONG_N=${LONG_N:-131072}
CAUSAL=${CAUSAL:-0}
mkdir -p "$OUT"
LOG="$OUT/long_seq.txt"
: > "$LOG"
say() { echo "$@" | tee -a "$LOG"; }

shape="--batch 1 --heads 32 --dim 128"
s04=$(ls "$BIN"/04_* 2>/dev/null | head -n 1)
s06=$(ls "$BIN"/06_* 2>/dev/null | head -n 1)

say "# long sequences, B=1 Hq=32 D=128 fp32 ($(date -u +%Y-%m-%dT%H:%MZ))"
if command -v nvidia-smi >/dev/null 2>&1; then
    say "# device: $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | head -n 1)"
fi

if [ -n "$s04" ]; then
    for n in 4096 8192 16384 32768 65536 131072; do
        say "\$ $s04 $shape --seq $n --no-check"
        "$s04" $shape --seq $n --no-check > "$OUT/.out" 2> "$OUT/.err"
        rc=$?
        grep '^result:' "$OUT/.out" | tee -a "$LOG"
        cat "$OUT/.err" | tee -a "$LOG"
        say "exit $rc"
        if [ $rc -eq 3 ]; then
            # The largest N whose S and P (2·32·N²·4 bytes) fit in the free
            # memory the message reports (inputs and O are small beside them).
            free=$(sed -n 's/.*, \([0-9]*\) free.*/\1/p' "$OUT/.err" | head -n 1)
            if [ -n "$free" ]; then
                say "04: out of memory from N=$n; S and P fit up to N of about $(awk -v f="$free" 'BEGIN { printf "%d", sqrt(f / (2 * 32 * 4)) }') in $free free bytes"
            fi
            break
        fi
        [ $rc -ne 0 ] && break
    done
else
    say "04: not built, skipped"
fi

if [ -n "$s06" ]; then
    c=""
    [ "$CAUSAL" = 1 ] && c="--causal"
    say "\$ $s06 $shape --seq $LONG_N $c --check"
    "$s06" $shape --seq "$LONG_N" $c --check > "$OUT/.out" 2> "$OUT/.err"
    rc=$?
    cat "$OUT/.out" "$OUT/.err" | tee -a "$LOG"
    say "exit $rc"
else
    say "06: not built, skipped"
fi
rm -f "$OUT/.out" "$OUT/.err"
