# Step 02: online softmax
STEP_BASE       := 01
STEP_IDEA       := attention.c
STEP_SRCS       := attention.c
STEP_MAIN       := attention.c
