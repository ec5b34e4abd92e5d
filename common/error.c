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
#include <string.h>

/** This thread's message; "" until a call fails. */
static _Thread_local char last_error[512];

const char *attn_last_error(void) { return last_error; }

void attn_clear_error(void) { last_error[0] = '\0'; }

int attn_set_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* ap is started just above; clang-tidy's analyzer says otherwise only
     * when driver.c precedes this file in one run (a false positive that
     * leaks across files), hence the NOLINT */
    (void)vsnprintf(last_error, sizeof last_error, fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized)
    va_end(ap);
    return code;
}

void attn_print_error(FILE *f, const char *msg)
{
    /* One line, whatever a flag value or a file name held: control
     * characters (a newline, an escape sequence that moves the cursor) are
     * written as \xNN. */
    fputs("error: ", f);
    for (const unsigned char *c = (const unsigned char *)msg; *c; c++) {
        if (*c < 0x20 || *c == 0x7f)
            fprintf(f, "\\x%02x", *c);
        else
            fputc(*c, f);
    }
    fputc('\n', f);
}

void attn_escape_controls(char *msg, size_t len)
{
    char out[1024];
    size_t o = 0;
    for (const unsigned char *c = (const unsigned char *)msg; *c && o + 5 < sizeof out; c++) {
        if (*c < 0x20 || *c == 0x7f)
            o += (size_t)snprintf(out + o, sizeof out - o, "\\x%02x", *c);
        else
            out[o++] = (char)*c;
    }
    out[o] = '\0';
    snprintf(msg, len, "%s", out);
}
