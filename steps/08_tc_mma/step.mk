# Step 08: tensor cores with mma.sync (fp16/bf16, fp32 accumulators).
# Its kernels also carry compute_75 PTX where GPU_ARCHS has 75, so that the
# sm_75 path (m16n8k8, fp16 only) can be run, JIT-compiled by the driver, on
# a later GPU; tests/gpu_check.sh does so with a GPU_ARCHS=75 build whose
# every object carries that PTX (notes/08_tc_mma.md, Turing).
STEP_BASE       := 06
STEP_IDEA       := kernel.cuh
STEP_SRCS       := launch.cu fragment.c
STEP_MAIN       := launch.cu
STEP_INTRODUCES := common/device/mma.cuh
ifneq ($(filter 75,$(GPU_ARCHS)),)
$(OBJ)/steps/08_tc_mma/%.o: export NVCC_APPEND_FLAGS = -gencode arch=compute_75,code=compute_75
endif
