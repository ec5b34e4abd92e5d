#!/bin/bash
# Build, check and time steps 05 and 06 on the GPU machine, in one call.
# Run from the project root there, with .deps/ carried (Check packages):
#   bash notes/results/run_05_06.sh [quick|full|sanitize]
# Writes logs under $OUT/logs and one tarball $OUT/run_05_06.tar.gz; prints
# a short table last. Every number in notes/05_smem_fa1.md and
# notes/06_fa2_warp.md names the command line this script ran for it.
set -u
MODE=${1:-full}
OUT=${OUT:-/tmp/out_05_06}
L=/tmp/l0506/logs
mkdir -p "$L"
BIN=build/bin
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 ))s] $*"; }

mkdir -p /tmp/ck && for f in .deps/*.deb; do dpkg -x "$f" /tmp/ck; done
export LD_LIBRARY_PATH=/tmp/ck/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
CKLIBS="-L/tmp/ck/usr/lib/x86_64-linux-gnu -lcheck -lsubunit -lm -lrt -lpthread"

{ nvidia-smi; nvcc --version; git log -1 --format='%H %cd' 2>/dev/null; } > "$L/env.txt" 2>&1

el "build"
make -j16 GPU_ARCHS=90 CHECK_CFLAGS=-I/tmp/ck/usr/include CHECK_LIBS="$CKLIBS" \
    $BIN/04_standard_cublas $BIN/05_smem_fa1 $BIN/06_fa2_warp $BIN/test_gpu > "$L/build.txt" 2>&1 \
    || { tail -30 "$L/build.txt"; }
grep -E "registers|spill|Compiling entry" "$L/build.txt" > /dev/null 2>&1
# resource report (registers, spills, shared memory) for the two steps
for s in 05_smem_fa1 06_fa2_warp; do
    nvcc -std=c++17 -O3 -gencode arch=compute_90,code=sm_90 -Icommon -Xptxas -v \
        -c steps/$s/attention.cu -o /tmp/$s.o > "$L/ptxas_$s.txt" 2>&1
done
# variants of 06 for the tile-size comparison: -D flags on the same source
variant() { # name, flags
    nvcc -std=c++17 -O3 -lineinfo -gencode arch=compute_90,code=sm_90 -Icommon $2 \
        -DATTN_STEP_MAIN -c steps/06_fa2_warp/attention.cu -o /tmp/v_$1.o > "$L/ptxas_v_$1.txt" 2>&1 -Xptxas -v &&
    g++ /tmp/v_$1.o build/obj/common/*.o -o $BIN/06_$1 \
        -L/usr/local/cuda/targets/x86_64-linux/lib -Wl,-rpath,/usr/local/cuda/targets/x86_64-linux/lib \
        -lcublas -lcudart_static -ldl -lrt -lpthread -lm
}
if [ "$MODE" = tune ]; then
    variant tm8 "-DFA2_TM=8 -DFA2_LOAD_UNROLL=4" &
    variant nw8 "-DFA2_NW=8" &
    variant nw8bc64 "-DFA2_NW=8 -DFA2_BC_D128=64" &
    variant lu4 "-DFA2_LOAD_UNROLL=4" &
    wait
fi
# the exercises, built in place of the steps: they must compile, and fail
for e in 05_smem_fa1 06_fa2_warp; do
    make -j8 GPU_ARCHS=90 BUILD=build/ex EX=${e%%_*} build/ex/bin/$e > "$L/build_ex_$e.txt" 2>&1 || tail -5 "$L/build_ex_$e.txt"
done
cuobjdump -sass $BIN/06_fa2_warp > /tmp/06.sass 2>/dev/null &&
    awk '/Function :/{f=$3} /FFMA/{a[f" FFMA"]++} /LDS.128/{a[f" LDS.128"]++} /LDS[^.]/{a[f" LDS.32"]++} /STS/{a[f" STS"]++} /LDL|STL/{a[f" LOCAL"]++} /MUFU.EX2/{a[f" MUFU.EX2"]++} /SHFL/{a[f" SHFL"]++} END{for(k in a) print k, a[k]}' /tmp/06.sass | sort > "$L/sass_06.txt"

el "step-program checks"
CHECKS=(
  "--batch 2 --heads 8 --kv-heads 2 --seq 203 --seq-k 113 --dim 64 --causal"
  "--batch 2 --heads 8 --kv-heads 2 --seq 113 --seq-k 203 --dim 128 --causal"
  "--batch 2 --heads 8 --kv-heads 1 --seq 1 --seq-k 203 --dim 32"
  "--batch 1 --heads 4 --seq 1023 --seq-k 1024 --dim 128 --causal"
  "--batch 1 --heads 4 --seq 1024 --seq-k 1023 --dim 64"
  "--batch 1 --heads 3 --seq 77 --seq-k 300 --dim 80 --causal"
  "--batch 1 --heads 2 --seq 65 --seq-k 33 --dim 7 --causal"
  "--batch 1 --heads 2 --seq 31 --seq-k 31 --dim 100"
  "--batch 1 --heads 2 --seq 500 --seq-k 500 --dim 64 --scale 50"
)
for s in 05_smem_fa1 06_fa2_warp; do
    for a in "${CHECKS[@]}"; do
        echo "$s $a" >> "$L/checks.txt"
        timeout 60 $BIN/$s $a >> "$L/checks.txt" 2>&1; echo "rc=$?" >> "$L/checks.txt"
    done
done
grep -E "^(0[56]_|result|PASS|FAIL|rc=|error)" "$L/checks.txt" | grep -vE "^(PASS|rc=0)$" | grep -E "FAIL|rc=[1-9]|error" && echo "SOME CHECKS FAILED" || echo "step-program checks: all PASS"

if [ "$MODE" = sanitize ] || [ "$MODE" = full ]; then
    el "compute-sanitizer"
    for s in 05_smem_fa1 06_fa2_warp; do
        for tool in memcheck racecheck synccheck initcheck; do
            timeout 120 compute-sanitizer --tool $tool --error-exitcode 9 $BIN/$s \
                --batch 1 --heads 2 --kv-heads 1 --seq 130 --seq-k 97 --dim 64 --causal \
                > "$L/san_${s}_$tool.txt" 2>&1
            echo "$s $tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$L/san_${s}_$tool.txt" | tail -1)"
        done
    done | tee "$L/sanitizer.txt"
fi

if [ "$MODE" != sanitize ]; then
    el "benchmarks"
    bench() { # step binary, args
        local r
        r=$(timeout 60 $BIN/$1 $2 --bench --no-check 2>&1 | grep '^result:')
        echo "$1 $2 :: $r" >> "$L/bench.txt"
        echo "$r" | sed -E 's/.*step=([0-9]+).*B=([0-9]+) Hq=([0-9]+).*Sq=([0-9]+).*D=([0-9]+) causal=([01]).*ms=([0-9.]+) tflops=([0-9.]+).*/\1 B=\2 Hq=\3 N=\4 D=\5 causal=\6 ms=\7 tflops=\8/' | sed "s/^/$1 /"
    }
    if [ "$MODE" = tune ]; then
        for D in 64 128; do for c in "" "--causal"; do
            for s in 06_fa2_warp 06_nw8 06_lu4 06_fa2_warp; do bench $s "--batch 1 --heads 32 --seq 4096 --dim $D $c"; done
            [ $D = 64 ] && bench 06_tm8 "--batch 1 --heads 32 --seq 4096 --dim $D $c"
            [ $D = 128 ] && bench 06_nw8bc64 "--batch 1 --heads 32 --seq 4096 --dim $D $c"
        done; done | tee "$L/bench_table.txt"
        bench 05_smem_fa1 "--batch 1 --heads 32 --seq 4096 --dim 64 --warmup 1" | tee -a "$L/bench_table.txt"
    else
        for D in 64 128; do for c in "" "--causal"; do
            for s in 06_fa2_warp 04_standard_cublas 05_smem_fa1; do bench $s "--batch 1 --heads 32 --seq 4096 --dim $D $c --warmup 1"; done
        done; done | tee "$L/bench_table.txt"
        for D in 64 128; do
            bench 05_smem_fa1 "--batch 4 --heads 33 --seq 4096 --dim $D --warmup 1"
            bench 06_fa2_warp "--batch 4 --heads 33 --seq 4096 --dim $D"
        done | tee -a "$L/bench_table.txt"
    fi
    el "exercises (must FAIL)"
    for e in 05_smem_fa1 06_fa2_warp; do
        timeout 30 build/ex/bin/$e --batch 1 --heads 2 --seq 200 --dim 64 --causal > "$L/ex_$e.txt" 2>&1
        echo "exercise $e rc=$? $(grep -E '^(PASS|FAIL)' "$L/ex_$e.txt")"
    done
    el "GPU suites and long sequence, in parallel"
    ( CK_RUN_SUITE=step06 timeout 450 $BIN/test_gpu > "$L/suite06.txt" 2>&1; echo "suite step06 rc=$? $(grep -E '^[0-9]+%' "$L/suite06.txt")" ) &
    ( CK_RUN_SUITE=step05 timeout 450 $BIN/test_gpu > "$L/suite05.txt" 2>&1; echo "suite step05 rc=$? $(grep -E '^[0-9]+%' "$L/suite05.txt")" ) &
    ( timeout 200 $BIN/06_fa2_warp --batch 1 --heads 32 --seq 131072 --dim 128 --causal > "$L/long.txt" 2>&1
      echo "long rc=$? $(grep -E '^result|PASS|FAIL' "$L/long.txt" | tr '\n' ' ')" ) &
    el "peers"
    timeout 150 python3 tests/bench/peers.py --seqs 4096 --dims 64,128 --out "$L/peers" > "$L/peers.txt" 2>&1
    grep -E "sdpa|peers" "$L/peers.txt" | head -20
    cat "$L/peers/peers.csv" 2>/dev/null | cut -d, -f1,10,11,12,13 | head -12
fi

wait
el "done"
mkdir -p "$OUT" && tar czf "$OUT/run_05_06.tar.gz" -C /tmp/l0506 logs
