# tests/bench/bench.mk: build/bin/bench, the in-process GPU benchmark
# (tests/bench/bench.cu: every GPU step on every shape of the fp32 and the
# tensor-core sweeps in one process, writing build/bench/results.csv as
# tests/bench/sweep.py does; tests/bench/gpu_bench.sh runs it on a GPU
# machine with the PyTorch peers).
#
# Included by the Makefile after its variables (OBJ, BIN, NVCC,
# ALL_NVFLAGS, CUDA_LINK, the object lists) are defined; on its own:
#
#     make -f Makefile -f tests/bench/bench.mk build/bin/bench
#
# The steps come from the step registry ($(BUILD)/gen/registry.c, made by
# the Makefile from every step.mk). Compiled like common/*.cu (ALL_NVFLAGS: every GPU_ARCHS, the strict
# warnings) and linked like the GPU suites (test_gpu): every step's objects
# and common's C and CUDA objects, with cuBLAS and the static CUDA runtime.
# Needs nvcc; the Makefile asks for it only where HAVE_CUDA is set.

$(OBJ)/tests/bench/bench.o: tests/bench/bench.cu $(COMMON_H)
	@mkdir -p $(@D)
	$(NVCC) $(ALL_NVFLAGS) -c $< -o $@

$(BIN)/bench: $(OBJ)/tests/bench/bench.o $(OBJ)/gen/registry.o $(CPU_LIB_OBJ) $(GPU_LIB_OBJ) $(COMMON_OBJ) $(COMMON_GOBJ)
	@mkdir -p $(@D)
	$(CXX) $^ -o $@ $(CUDA_LINK) -lm
