#!/bin/sh
# Run step 07's GPU code on the CPU (see emu07.cpp): needs `make` first (for
# build/obj) and g++ with C++20 (<barrier>). From the repository root:
#   sh tests/emu07/run.sh
# The step's sources are compiled as they are: tests/emu07 comes first on
# the include path, so <cuda_runtime.h> and <cublas_v2.h> are the emulation's.
set -e
B=${BUILD:-build}/obj
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
echo 'extern "C" int attn_cpu_run() { return 0; }' > "$T/stub.cpp"
g++ -std=c++20 -O1 -x c++ -Itests/emu07 -Icommon -Isteps/07_backward tests/emu07/emu07.cpp "$T/stub.cpp" -x none \
  $B/steps/01_naive_cpu/backward.o $B/steps/03_tiled_cpu/attention.o \
  $(for f in mem rng problem compare oracle error precision npy outputs; do echo "$B/common/$f.o"; done) -o "$T/emu07" -lpthread
"$T/emu07"
