# Step 07: the backward with recomputation. Its CPU twin (backward_cpu.c)
# is linked into the CPU suites too; the program links step 06, the
# forward it differentiates. `make diff FROM=01/backward.c TO=07/backward_cpu.c`
# shows the CPU version of the idea against the standard backward.
STEP_BASE       := 06
STEP_IDEA       := kernel.cuh
STEP_SRCS       := launch.cu backward_cpu.c standard_cublas.cu
STEP_MAIN       := launch.cu
STEP_LINKS      := 06
