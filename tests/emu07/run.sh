#!/bin/sh
# Run step 07's GPU code on the CPU (see emu07.cpp): needs `make` first (for
# build/obj) and g++ with C++20 (<barrier>). From the repository root:
#   sh tests/emu07/run.sh
set -e
B=${BUILD:-build}/obj
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# the kernels, verbatim: from "#define NT" up to the host code
sed -n '/^#define NT 256/,/^\/\*\* δ: B·Hq·Sq floats/p' steps/07_backward/attention.cu | sed '$d' > "$T/kernels.inc"
# the stored-P call sequence, with the two row kernels' launches as host calls
sed -n '/^static cublasHandle_t g_handle/,/^\/\*\* The baseline as a backward step/p' steps/07_backward/standard_cublas.cu | sed '$d' \
  | sed 's/softmax_kernel<<<row_blocks, THREADS, 0, stream>>>(/host_softmax(/; s/ds_kernel<<<row_blocks, THREADS, 0, stream>>>(/host_ds(/; s/extern "C" //' > "$T/standard.inc"
echo 'extern "C" int attn_cpu_run() { return 0; }' > "$T/stub.cpp"
g++ -std=c++20 -O1 -Icommon -Itests/emu07 -I"$T" tests/emu07/emu07.cpp "$T/stub.cpp" \
  $B/steps/01_naive_cpu.o $B/steps/03_tiled_cpu.o \
  $B/common/mem.o $B/common/rng.o $B/common/problem.o $B/common/compare.o $B/common/oracle.o \
  -o "$T/emu07" -lpthread
"$T/emu07"
