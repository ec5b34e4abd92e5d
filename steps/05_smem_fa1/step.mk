# Step 05: the FlashAttention-1 kernel
STEP_BASE       := 04
STEP_IDEA       := kernel.cuh
STEP_SRCS       := launch.cu
STEP_MAIN       := launch.cu
STEP_INTRODUCES := common/device/tiles.cuh
