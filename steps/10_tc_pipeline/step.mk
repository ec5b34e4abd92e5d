# Step 10: the cp.async pipeline, the complete FlashAttention-2 forward.
# Like steps 08 and 09, its kernels also carry compute_75 PTX where
# GPU_ARCHS has 75 (the sm_75 path: no cp.async, synchronous copies).
STEP_BASE       := 09
STEP_IDEA       := kernel.cuh
STEP_SRCS       := launch.cu pipeline.c
STEP_MAIN       := launch.cu
STEP_INTRODUCES := common/device/cp_async.cuh common/device/pipeline.h
ifneq ($(filter 75,$(GPU_ARCHS)),)
$(OBJ)/steps/10_tc_pipeline/%.o: export NVCC_APPEND_FLAGS = -gencode arch=compute_75,code=compute_75
endif
