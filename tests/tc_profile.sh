#!/bin/bash
# The tensor-core steps' counters, on the GPU machine: for steps 08 and 09
# (fp16, D = 128, B = 4, Hq = 32, N = 4096, causal off and on), the SASS
# instruction counts of the kernel (cuobjdump: HMMA, LDSM, LDS, STS, BAR)
# and, from one launch under Nsight Compute with the clocks left alone,
# the shared-memory bank conflicts of loads and stores, the shared-memory
# wavefronts, the instructions executed and the kernel's duration.
# The same for step 09 built with -DATTN_NO_SWIZZLE (its tiles row-major,
# unpadded: what the swizzle removes), as noswz/09_tc_ldmatrix, and the
# three timed at N = 4096. Run from the project root after a GPU_ARCHS=90
# build:
#   bash tests/tc_profile.sh    output under $OUT (or build/tc_profile), and all of it in tc_profile.tgz
set -u
OUT=${OUT:-build/tc_profile}
mkdir -p "$OUT"
NVCC_APPEND_FLAGS=-DATTN_NO_SWIZZLE make -j"$(nproc)" GPU_ARCHS=90 BUILD=build/noswz \
  build/noswz/bin/09_tc_ldmatrix > "$OUT/build_noswz.txt" 2>&1 || tail -20 "$OUT/build_noswz.txt"
mkdir -p build/bin/noswz && cp build/noswz/bin/09_tc_ldmatrix build/bin/noswz/
STEPS=${STEPS:-"08_tc_mma 09_tc_ldmatrix noswz/09_tc_ldmatrix"}
{
  echo "SASS counts per kernel (static, cuobjdump --dump-sass; fa2_kernel<128, false>: D = 128, fp16)"
  for s in $STEPS; do
    f=${s//\//_}
    cuobjdump --dump-sass "build/bin/$s" > "$OUT/$f.sass" 2>&1
    # the D = 128 fp16 kernel: its mangled name has Li128ELb0E
    awk '/Function : .*fa2_kernel.*Li128ELb0E/{on=1; next} /Function :/{on=0} on' "$OUT/$f.sass" \
      > "$OUT/$f.d128.sass"
    printf '%-16s' "$s"
    for op in HMMA LDSM LDS STS LDG BAR MUFU.EX2; do
      printf ' %s=%s' "$op" "$(grep -cE "[[:space:]]$op[[:space:].]" "$OUT/$f.d128.sass")"
    done
    echo
  done
} | tee "$OUT/sass_counts.txt"

metrics=l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ld.sum,\
l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_st.sum,\
l1tex__data_pipe_lsu_wavefronts_mem_shared_op_ld.sum,\
l1tex__data_pipe_lsu_wavefronts_mem_shared_op_st.sum,\
smsp__inst_executed_op_shared_ld.sum,\
smsp__inst_executed_op_ldsm.sum,\
smsp__inst_executed_pipe_tensor.sum,\
smsp__inst_executed.sum,\
gpu__time_duration.sum
: > "$OUT/ncu.txt"
for s in $STEPS; do
  for c in "" "--causal"; do
    echo "== $s --dtype fp16 --batch 4 --heads 32 --seq 4096 --dim 128 $c" >> "$OUT/ncu.txt"
    # shellcheck disable=SC2086 # $c is empty or one flag
    timeout 120 ncu --clock-control none -k regex:fa2_kernel -c 1 --metrics "$metrics" \
      "build/bin/$s" --dtype fp16 --batch 4 --heads 32 --seq 4096 --dim 128 $c --no-check \
      >> "$OUT/ncu.txt" 2>&1
  done
done
grep -E "^==|bank_conflicts|wavefronts|inst_executed|duration" "$OUT/ncu.txt"
for s in $STEPS; do
  for d in 64 128; do
    for c in "" "--causal"; do
      # shellcheck disable=SC2086 # $c is empty or one flag
      build/bin/$s --dtype fp16 --heads 32 --seq 4096 --dim $d $c --bench --no-check 2>&1 \
        | grep '^result:' | sed "s|^result:|$s:|"
    done
  done
done | tee "$OUT/timing.txt"
tar -czf "$OUT/../tc_profile.tgz" -C "$OUT" . 2>/dev/null
