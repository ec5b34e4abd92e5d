#!/bin/bash
# Step 10's ablation (notes/10_tc_pipeline.md, "The ablation"), on a GPU
# machine, from the project root after `make GPU_ARCHS=90`: one build of
# step 10 per switch (build/v_NAME, in parallel), then each timed with
# --bench at N = 4096, B = 4, Hq = 32, fp16, D = 64, 128 (and causal), 256.
#   bash tests/ablate10.sh            prints one line per build and shape
# The same builds and the same commands made the note's table (run by hand
# there, before this script gathered them).
set -u
VARIANTS=${VARIANTS:-"s1:-DATTN10_STAGES=1 s3:-DATTN10_STAGES=3 nw4:-DATTN10_NW_OVERRIDE=4 nw8:-DATTN10_NW_OVERRIDE=8 qreg128:-DATTN10_QREG_MAX_D=128 onewait:-DATTN10_ONE_WAIT expf:-DATTN10_EXPF noskip:-DATTN10_NO_SKIP"}
for v in $VARIANTS; do
  n=${v%%:*}; f=${v#*:}
  ( NVCC_APPEND_FLAGS="$f" make -j2 GPU_ARCHS="${GPU_ARCHS:-90}" BUILD=build/v_$n build/v_$n/bin/10_tc_pipeline \
      > "build/v_$n.log" 2>&1 || { echo "build $n failed:"; tail -5 "build/v_$n.log"; } ) &
done
wait
for cfg in "64" "128" "128 --causal" "256"; do
  # shellcheck disable=SC2086 # $cfg is a word list
  set -- $cfg
  for b in build/bin/10_tc_pipeline build/v_*/bin/10_tc_pipeline; do
    r=$(timeout 20 "$b" --dtype fp16 --batch 4 --heads 32 --seq 4096 --dim "$1" ${2:-} --bench --no-check 2>&1 \
        | grep '^result:' | grep -oE 'tflops=[0-9.]+')
    echo "D=$1 ${2:-} $b ${r:-no result within 20 s}"
  done
done
