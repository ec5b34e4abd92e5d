# Step 04: standard attention on the GPU (its base is step 01, the same algorithm)
STEP_BASE       := 01
STEP_IDEA       := kernel.cuh
STEP_SRCS       := launch.cu
STEP_MAIN       := launch.cu
STEP_INTRODUCES := common/device/visibility.cuh common/device/softmax.cuh common/device/warp.cuh common/device/convert.cuh
