# Step 06: the FlashAttention-2 kernel
STEP_BASE       := 05
STEP_IDEA       := kernel.cuh
STEP_SRCS       := launch.cu
STEP_MAIN       := launch.cu
