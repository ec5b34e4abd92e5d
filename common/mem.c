/**
 * @file mem.c
 * @brief Host allocation with byte accounting: what `extra_bytes` reports.
 *
 * Each block carries a small header with its size, so attn_free() can keep
 * the running total; the peak since attn_mem_reset_peak() is the step's
 * extra memory. Single-threaded, like the CPU steps.
 */
#include "common.h"

#include <stdlib.h>
#include <string.h>

/** Header bytes before each block: 64 keep the user pointer aligned for any vector load. */
#define HDR 64

static size_t g_current;    /**< bytes allocated now */
static size_t g_peak;       /**< the most allocated at once since the last reset */
static size_t g_base;       /**< g_current at the last reset */
static size_t g_failed;     /**< bytes of the requests that failed since the last reset */
static long g_fail_after = -1; /**< fault injection: allocations left before failing; -1: off */

/** Add a refused request to the bytes attn_mem_failed_bytes() reports. A
 * step that allocates all its buffers and then checks them (step 03) sees
 * every one after the first fail too: the sum is what it needed on top of
 * what it got. Saturates instead of wrapping. */
static void note_failure(size_t bytes)
{
    g_failed = bytes > (size_t)-1 - g_failed ? (size_t)-1 : g_failed + bytes;
}

void *attn_alloc(size_t bytes)
{
    if (g_fail_after == 0 || bytes > (size_t)-1 - HDR) {
        note_failure(bytes);
        return NULL;
    }
    if (g_fail_after > 0)
        g_fail_after--;
    unsigned char *b = malloc(bytes + HDR);
    if (!b) {
        note_failure(bytes);
        return NULL;
    }
    memcpy(b, &bytes, sizeof bytes);
    g_current += bytes;
    if (g_current > g_peak)
        g_peak = g_current;
    return b + HDR;
}

void *attn_calloc(size_t count, size_t size)
{
    if (size != 0 && count > (size_t)-1 / size) {
        note_failure((size_t)-1);
        return NULL;
    }
    void *p = attn_alloc(count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

void attn_free(void *ptr)
{
    if (!ptr)
        return;
    unsigned char *b = (unsigned char *)ptr - HDR;
    size_t bytes;
    memcpy(&bytes, b, sizeof bytes);
    g_current -= bytes;
    free(b);
}

void attn_mem_reset_peak(void)
{
    g_peak = g_current;
    g_base = g_current;
    g_failed = 0;
}

size_t attn_mem_peak(void) { return g_peak - g_base; }

size_t attn_mem_failed_bytes(void) { return g_failed; }

void attn_mem_fail_after(long n)
{
    g_fail_after = n;
    if (n >= 0) /* arming starts a fresh count; disarming keeps it for reading */
        g_failed = 0;
}
