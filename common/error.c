/**
 * @file error.c
 * @brief The library's last-error message: entry points never print.
 *
 * A library entry point (attnNN_forward, attn07_backward, …) that fails
 * returns 2 or 3 and leaves a one-line message here, in a buffer of the
 * calling thread; attn_last_error() reads it. The step programs print it;
 * a library user decides for themselves.
 */
#include "common.h"

#include <stdarg.h>
#include <stdio.h>

/** This thread's message; "" until a call fails. */
static _Thread_local char last_error[512];

const char *attn_last_error(void) { return last_error; }

void attn_clear_error(void) { last_error[0] = '\0'; }

int attn_set_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}
