/**
 * @file mem.c
 * @brief Host allocation with byte accounting: what `extra_bytes` reports.
 *
 * Each block carries a small header with its size, so attn_free() can keep
 * the running total; the peak since attn_mem_reset_peak() is the step's
 * extra memory. Single-threaded, like the CPU steps.
 */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/** Header bytes before each block: 64 keep the user pointer aligned for any vector load. */
#define HDR 64

static size_t g_current;    /**< bytes allocated now */
static size_t g_peak;       /**< the most allocated at once since the last reset */
static size_t g_base;       /**< g_current at the last reset */
static size_t g_failed;     /**< bytes of the requests that failed since the last reset */
static long g_fail_after = -1; /**< fault injection: allocations left before failing; -1: off */

static size_t g_avail_at_fail; /**< attn_mem_available() at the first refused request since the reset */
static size_t g_budget = (size_t)-1; /**< what attn_alloc() may hold beyond g_budget_base */
static size_t g_budget_base;         /**< g_current when the budget was taken */
static int g_budget_set;             /**< the budget has been taken */

/** The process's address space now, in bytes (/proc/self/statm), or 0. */
static size_t vm_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    char line[128];
    unsigned long long pages = 0;
    if (!f)
        return 0;
    if (fgets(line, sizeof line, f))
        pages = strtoull(line, NULL, 10);
    fclose(f);
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

/** MemAvailable of /proc/meminfo in bytes, or (size_t)-1 when unknown. */
static size_t mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    unsigned long long kb = 0;
    int found = 0;
    if (!f)
        return (size_t)-1;
    while (!found && fgets(line, sizeof line, f))
        if (!strncmp(line, "MemAvailable:", 13)) {
            char *end;
            kb = strtoull(line + 13, &end, 10);
            found = end != line + 13;
        }
    fclose(f);
    return found ? (size_t)(kb * 1024ull) : (size_t)-1;
}

/**
 * Take the budget: the room left under RLIMIT_AS and RLIMIT_DATA (strict:
 * past them the kernel refuses the pages) and, as a heuristic, the memory
 * available now (on an overcommitting kernel malloc() would succeed and
 * the process be killed later, when the pages are touched). ATTN_MEM_LIMIT
 * in the environment replaces the heuristic: a number of bytes, or 0 for
 * none (a machine whose memory grows as it is used).
 */
static void take_budget(void)
{
    size_t b = (size_t)-1, vm = vm_bytes();
    const int lims[2] = {RLIMIT_AS, RLIMIT_DATA};
    for (int i = 0; i < 2; i++) {
        struct rlimit rl;
        if (getrlimit(lims[i], &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
            size_t room = rl.rlim_cur > vm ? (size_t)rl.rlim_cur - vm : 0;
            b = room < b ? room : b;
        }
    }
    const char *env = getenv("ATTN_MEM_LIMIT");
    if (env && *env) {
        char *end;
        unsigned long long v = strtoull(env, &end, 10);
        if (!*end && v > 0 && v < b)
            b = (size_t)v;
    } else {
        size_t avail = mem_available();
        b = avail < b ? avail : b;
    }
    g_budget = b;
    g_budget_base = g_current;
    g_budget_set = 1;
}

size_t attn_mem_available(void)
{
    if (!g_budget_set)
        take_budget();
    size_t used = g_current > g_budget_base ? g_current - g_budget_base : 0;
    return used >= g_budget ? 0 : g_budget - used;
}

/** Add a refused request to the bytes attn_mem_failed_bytes() reports. A
 * step that allocates all its buffers and then checks them (step 03) sees
 * every one after the first fail too: the sum is what it needed on top of
 * what it got. Saturates instead of wrapping. */
static void note_failure(size_t bytes)
{
    if (g_failed == 0)
        g_avail_at_fail = attn_mem_available();
    g_failed = bytes > (size_t)-1 - g_failed ? (size_t)-1 : g_failed + bytes;
}

void *attn_alloc(size_t bytes)
{
    if (g_fail_after == 0 || bytes > (size_t)-1 - HDR || bytes > attn_mem_available()) {
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
    take_budget(); /* the memory available may have changed since */
    g_peak = g_current;
    g_base = g_current;
    g_failed = 0;
}

size_t attn_mem_peak(void) { return g_peak - g_base; }

size_t attn_mem_failed_bytes(void) { return g_failed; }

size_t attn_mem_available_at_failure(void) { return g_avail_at_fail; }

void attn_mem_fail_after(long n)
{
    g_fail_after = n;
    if (n >= 0) /* arming starts a fresh count; disarming keeps it for reading */
        g_failed = 0;
}
