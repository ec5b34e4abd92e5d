# Step 01: standard attention on the CPU. How a step.mk is read: notes/design.md
STEP_BASE       :=
STEP_IDEA       := attention.c
STEP_SRCS       := attention.c backward.c
STEP_MAIN       := attention.c
