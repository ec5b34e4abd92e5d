D=$OUT; T0=$(date +%s); el() { echo "[$(( $(date +%s) - T0 ))s] $*"; }
mkdir -p /tmp/ck && for f in .deps/*.deb; do dpkg -x $f /tmp/ck; done
export LD_LIBRARY_PATH=/tmp/ck/usr/lib/x86_64-linux-gnu
el build; make -j16 GPU_ARCHS=90 CHECK_CFLAGS=-I/tmp/ck/usr/include "CHECK_LIBS=-L/tmp/ck/usr/lib/x86_64-linux-gnu -lcheck -lsubunit -lm -lrt -lpthread" build/bin/09_tc_ldmatrix build/bin/test_gpu_09 > $D/build.txt 2>&1 || tail -5 $D/build.txt
el suites; for c in special fp16_bhsd fp16_bshd bf16_bhsd bf16_bshd; do CK_RUN_CASE=$c timeout 120 build/bin/test_gpu_09 > $D/s_$c.txt 2>&1 & done; wait; grep -hE "^[0-9]+%|^summary|:F:" $D/s_*.txt
el sanitizer; : > $D/san.txt
for tool in memcheck racecheck initcheck synccheck; do for v in "--dtype fp16" "--dtype bf16 --layout bshd"; do for sh in "--heads 4 --kv-heads 2 --seq 203 --seq-k 113 --dim 64 --causal" "--heads 2 --kv-heads 1 --seq 113 --seq-k 203 --dim 128" "--heads 3 --seq 31 --dim 32 --causal" "--heads 3 --seq 97 --dim 128 --causal" "--batch 2 --heads 2 --seq 1 --seq-k 203 --dim 64"; do
log=$(timeout 60 compute-sanitizer --tool $tool --error-exitcode 9 build/bin/09_tc_ldmatrix $v $sh 2>&1); rc=$?
echo "$tool 09 $v [$sh] rc=$rc $(echo "$log" | grep -E '^(PASS|FAIL)$' | tail -1) $(echo "$log" | grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' | tail -1)" >> $D/san.txt; done; done; done
echo "sanitizer runs: $(wc -l < $D/san.txt), clean: $(grep -c ' rc=0 PASS' $D/san.txt)"; grep -v ' rc=0 PASS' $D/san.txt | head -5
el sm75; NVCC_APPEND_FLAGS="-gencode arch=compute_75,code=compute_75" make -j16 GPU_ARCHS=75 BUILD=build/sm75 build/sm75/bin/09_tc_ldmatrix > $D/b75.txt 2>&1 || tail -5 $D/b75.txt
for sh in "--heads 4 --kv-heads 2 --seq 203 --seq-k 113 --dim 64 --causal" "--heads 2 --kv-heads 1 --seq 113 --seq-k 203 --dim 128" "--batch 2 --heads 3 --seq 31 --dim 32 --causal --layout bshd" "--heads 2 --seq 1023 --seq-k 1024 --dim 128 --causal"; do echo "sm75 [$sh] $(build/sm75/bin/09_tc_ldmatrix --dtype fp16 $sh 2>&1 | tail -1)"; done
build/sm75/bin/09_tc_ldmatrix --dtype bf16 --dim 64 2>&1 | tail -1; echo "bf16 rc=$?"
el timing; for d in 64 128; do for c in "" "--causal"; do build/bin/09_tc_ldmatrix --dtype fp16 --heads 32 --seq 4096 --dim $d $c --bench --no-check 2>&1 | grep '^result:'; done; done
el bench; timeout 150 build/bin/test_gpu_09 --bench 512,1024,2048,4096,8192,16384 128 2>&1 | tee $D/bench09.txt | tail -60
el done
