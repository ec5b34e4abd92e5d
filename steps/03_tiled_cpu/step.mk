# Step 03: tiled FlashAttention on the CPU
STEP_BASE       := 02
STEP_IDEA       := attention.c
STEP_SRCS       := attention.c
STEP_MAIN       := attention.c
