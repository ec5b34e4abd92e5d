# Step 09: ldmatrix and a swizzled, conflict-free shared-memory layout.
# Like step 08, its kernels also carry compute_75 PTX where GPU_ARCHS has
# 75 (the sm_75 path, run JIT-compiled on a later GPU by tests/gpu_check.sh).
STEP_BASE       := 08
STEP_IDEA       := kernel.cuh
STEP_SRCS       := launch.cu swizzle.c
STEP_MAIN       := launch.cu
STEP_INTRODUCES := common/device/swizzle.h common/device/ldmatrix.cuh
ifneq ($(filter 75,$(GPU_ARCHS)),)
$(OBJ)/steps/09_tc_ldmatrix/%.o: export NVCC_APPEND_FLAGS = -gencode arch=compute_75,code=compute_75
endif
