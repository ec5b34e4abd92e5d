/**
 * @file steps/10_tc_pipeline/pipeline.c
 * @brief Step 10's pipeline bookkeeping on the CPU: the kernel's own
 * functions (common/device/pipeline.h), callable from C, so that a CPU test
 * can replay the loop's copies, waits and barriers and check that no block
 * is read before it has landed and no stage is overwritten while in use.
 */
#include "pipeline.h"

#include "device/pipeline.h"

int attn10_pipe_issue_block(int j, int stages)
{
    return pipe_issue_block(j, stages);
}

int attn10_pipe_stage(int b, int stages)
{
    return pipe_stage(b, stages);
}

int attn10_pipe_wait_k(int stages)
{
    return pipe_wait_k(stages);
}

int attn10_pipe_wait_v(int stages)
{
    return pipe_wait_v(stages);
}
