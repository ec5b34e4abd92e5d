#!/bin/bash
# Build, time and check steps 05 and 06 on the GPU machine, in one call.
# Run from the project root there, with .deps/ carried (Check packages):
#   bash notes/results/run_05_06.sh [final|verify05|tune]
# final: build; benchmarks on a quiet GPU (04, 05, 06, PyTorch peers); then,
#        in parallel, the step05/step06 Check suites, the N = 131072 run, and
#        compute-sanitizer + step-program checks + the exercises (must FAIL).
# verify05: step 05 only (timings, suites, sanitizer, exercise): the last call.
# tune:  times 06 alone. The tile variants of notes/06_fa2_warp.md were built
#        with variant() and -D flags (FA2_NW, FA2_TM, FA2_BC_D128) that the
#        committed source no longer has: its per-D dispatch is the result.
# Logs go to /tmp/l0506/logs and one tarball $OUT/run_05_06.tar.gz; a short
# table is printed last. Every number in notes/05_smem_fa1.md and
# notes/06_fa2_warp.md names the command line this script ran for it.
set -u
MODE=${1:-final}
OUT=${OUT:-/tmp/out_05_06}
L=/tmp/l0506/logs
rm -rf /tmp/l0506 && mkdir -p "$L"
BIN=build/bin
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 ))s] $*"; }

mkdir -p /tmp/ck && for f in .deps/*.deb; do dpkg -x "$f" /tmp/ck; done
export LD_LIBRARY_PATH=/tmp/ck/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
CKLIBS="-L/tmp/ck/usr/lib/x86_64-linux-gnu -lcheck -lsubunit -lm -lrt -lpthread"

{ nvidia-smi; nvcc --version; } > "$L/env.txt" 2>&1

el "build"
make -j16 GPU_ARCHS=90 CHECK_CFLAGS=-I/tmp/ck/usr/include CHECK_LIBS="$CKLIBS" \
    $BIN/04_standard_cublas $BIN/05_smem_fa1 $BIN/06_fa2_warp $BIN/test_gpu > "$L/build.txt" 2>&1 \
    || { tail -30 "$L/build.txt"; }
# resource report (registers, spills, shared memory) and SASS instruction counts
for s in 05_smem_fa1 06_fa2_warp; do
    nvcc -std=c++17 -O3 -gencode arch=compute_90,code=sm_90 -Icommon -Xptxas -v \
        -c steps/$s/attention.cu -o /tmp/$s.o > "$L/ptxas_$s.txt" 2>&1
    cuobjdump -sass /tmp/$s.o | awk '/Function :/{f=$3} /FFMA/{a[f" FFMA"]++} /LDS.128/{a[f" LDS.128"]++} /LDL|STL/{a[f" LOCAL"]++} /MUFU.EX2/{a[f" MUFU.EX2"]++} /SHFL/{a[f" SHFL"]++} /BAR.SYNC/{a[f" BAR"]++} END{for(k in a) print k, a[k]}' | sort > "$L/sass_$s.txt"
done

bench() { # step binary, args
    local r
    r=$(timeout 60 $BIN/$1 $2 --bench --no-check 2>&1 | grep '^result:')
    echo "$1 $2 :: $r" >> "$L/bench.txt"
    echo "$r" | sed -E 's/.*step=([0-9]+).*B=([0-9]+) Hq=([0-9]+).*Sq=([0-9]+).*D=([0-9]+) causal=([01]).*ms=([0-9.]+) tflops=([0-9.]+) extra_bytes=([0-9]+).*/\1 B=\2 Hq=\3 N=\4 D=\5 causal=\6 ms=\7 tflops=\8 extra=\9/' | sed "s/^/$1 /"
}
variant() { # name, flags: 06 compiled with -D flags, linked like the step program
    nvcc -std=c++17 -O3 -lineinfo -gencode arch=compute_90,code=sm_90 -Icommon $2 -Xptxas -v \
        -DATTN_STEP_MAIN -c steps/06_fa2_warp/attention.cu -o /tmp/v_$1.o > "$L/ptxas_v_$1.txt" 2>&1 &&
    g++ /tmp/v_$1.o build/obj/common/*.o -o $BIN/06_$1 \
        -L/usr/local/cuda/targets/x86_64-linux/lib -Wl,-rpath,/usr/local/cuda/targets/x86_64-linux/lib \
        -lcublas -lcudart_static -ldl -lrt -lpthread -lm
}

if [ "$MODE" = verify05 ]; then
    el "verify 05: benchmarks, then suites + sanitizer + exercise"
    for D in 64 128; do for c in "" "--causal"; do
        bench 05_smem_fa1 "--batch 1 --heads 32 --seq 4096 --dim $D $c --warmup 1"
    done; done | tee "$L/bench_table.txt"
    for D in 64 128; do bench 05_smem_fa1 "--batch 4 --heads 33 --seq 4096 --dim $D --warmup 1"; done | tee -a "$L/bench_table.txt"
    ( CK_RUN_SUITE=step05 timeout 300 $BIN/test_gpu > "$L/suite05.txt" 2>&1
      echo "suite step05 rc=$? $(grep -E '^[0-9]+%' "$L/suite05.txt")" ) &
    ( CK_RUN_SUITE=step06 timeout 300 $BIN/test_gpu > "$L/suite06.txt" 2>&1
      echo "suite step06 rc=$? $(grep -E '^[0-9]+%' "$L/suite06.txt")" ) &
    ( for tool in memcheck racecheck synccheck initcheck; do
        timeout 120 compute-sanitizer --tool $tool --error-exitcode 9 $BIN/05_smem_fa1 --batch 1 --heads 2 --kv-heads 1 --seq 130 --seq-k 97 --dim 64 --causal > "$L/san_05_$tool.txt" 2>&1
        echo "05 $tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$L/san_05_$tool.txt" | tail -1)"
      done
      make -j8 GPU_ARCHS=90 BUILD=build/ex EX=05 build/ex/bin/05_smem_fa1 > "$L/build_ex_05.txt" 2>&1
      timeout 30 build/ex/bin/05_smem_fa1 --batch 1 --heads 2 --seq 200 --dim 64 --causal > "$L/ex_05.txt" 2>&1
      echo "exercise 05 (must FAIL): rc=$? $(grep -E '^(PASS|FAIL)' "$L/ex_05.txt")"
      for a in "--batch 1 --heads 4 --seq 1023 --seq-k 1024 --dim 128 --causal" "--batch 2 --heads 8 --kv-heads 2 --seq 203 --seq-k 113 --dim 64 --causal" "--batch 1 --heads 3 --seq 77 --seq-k 300 --dim 80 --causal"; do
        timeout 60 $BIN/05_smem_fa1 $a > "$L/chk.txt" 2>&1; echo "05 $a rc=$? $(grep -oE 'max_abs_err=[^ ]*' "$L/chk.txt")"
      done ) &
    wait
elif [ "$MODE" = tune ]; then
    el "tune"
    for D in 64 128; do for c in "" "--causal"; do
        bench 06_fa2_warp "--batch 1 --heads 32 --seq 4096 --dim $D $c"
    done; done | tee "$L/bench_table.txt"
else
    el "benchmarks (GPU otherwise idle)"
    for D in 64 128; do for c in "" "--causal"; do
        for s in 06_fa2_warp 04_standard_cublas 05_smem_fa1; do
            bench $s "--batch 1 --heads 32 --seq 4096 --dim $D $c --warmup 1"
        done
    done; done | tee "$L/bench_table.txt"
    for D in 64 128; do
        bench 05_smem_fa1 "--batch 4 --heads 33 --seq 4096 --dim $D --warmup 1"
        bench 06_fa2_warp "--batch 4 --heads 33 --seq 4096 --dim $D"
    done | tee -a "$L/bench_table.txt"
    for n in 1024 16384; do bench 06_fa2_warp "--batch 1 --heads 32 --seq $n --dim 128"; done | tee -a "$L/bench_table.txt"
    timeout 120 python3 tests/bench/peers.py --seqs 4096 --dims 64,128 --out "$L/peers" > "$L/peers.txt" 2>&1
    grep -E "sdpa_eff" "$L/peers.txt"

    el "suites, long sequence, sanitizer, checks, exercises (in parallel)"
    ( CK_RUN_SUITE=step06 timeout 380 $BIN/test_gpu > "$L/suite06.txt" 2>&1
      echo "suite step06 rc=$? $(grep -E '^[0-9]+%' "$L/suite06.txt")" ) &
    ( CK_RUN_SUITE=step05 timeout 380 $BIN/test_gpu > "$L/suite05.txt" 2>&1
      echo "suite step05 rc=$? $(grep -E '^[0-9]+%' "$L/suite05.txt")" ) &
    ( timeout 240 $BIN/06_fa2_warp --batch 1 --heads 32 --seq 131072 --dim 128 --causal > "$L/long.txt" 2>&1
      echo "long rc=$? $(grep -E '^result|PASS|FAIL' "$L/long.txt" | tr '\n' ' ')" ) &
    (
    for s in 05_smem_fa1 06_fa2_warp; do
        for shape in "--heads 2 --kv-heads 1 --seq 130 --seq-k 97 --dim 64 --causal" \
                     "--heads 2 --seq 150 --dim 128 --causal"; do
            for tool in memcheck racecheck synccheck initcheck; do
                f="$L/san_${s}_${tool}_$(echo $shape | tr -dc 0-9 | tail -c 6).txt"
                timeout 120 compute-sanitizer --tool $tool --error-exitcode 9 $BIN/$s --batch 1 $shape > "$f" 2>&1
                echo "$s [$shape] $tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$f" | tail -1)"
            done
        done
    done > "$L/sanitizer.txt"
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
      "--batch 1 --heads 4 --seq 4096 --dim 128 --causal"
    )
    for s in 05_smem_fa1 06_fa2_warp; do
        for a in "${CHECKS[@]}"; do
            echo "$s $a" >> "$L/checks.txt"
            timeout 60 $BIN/$s $a >> "$L/checks.txt" 2>&1; echo "rc=$?" >> "$L/checks.txt"
        done
    done
    for e in 05_smem_fa1 06_fa2_warp; do
        make -j8 GPU_ARCHS=90 BUILD=build/ex EX=${e%%_*} build/ex/bin/$e > "$L/build_ex_$e.txt" 2>&1
        timeout 30 build/ex/bin/$e --batch 1 --heads 2 --seq 200 --dim 64 --causal > "$L/ex_$e.txt" 2>&1
        echo "exercise $e (must FAIL): rc=$? $(grep -E '^(PASS|FAIL)' "$L/ex_$e.txt")" >> "$L/sanitizer.txt"
    done
    ) &
    wait
    cat "$L/sanitizer.txt"
    grep -E "^(PASS|FAIL|rc=)" "$L/checks.txt" | sort | uniq -c
fi
el "done"
mkdir -p "$OUT" && tar czf "$OUT/run_05_06.tar.gz" -C /tmp/l0506 logs
