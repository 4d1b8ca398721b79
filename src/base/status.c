#include "base/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[2048];

const char *qkv_last_error(void) { return last_error; }

const char *qkv_status_name(qkv_status s)
{
    switch (s) {
    case QKV_OK: return "ok";
    case QKV_ERR_IO: return "io";
    case QKV_ERR_FORMAT: return "format";
    case QKV_ERR_CONFIG: return "config";
    case QKV_ERR_ARG: return "argument";
    case QKV_ERR_NOMEM: return "out of memory";
    case QKV_ERR_UNSUPPORTED: return "unsupported";
    case QKV_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown";
}

qkv_status qkv_fail(qkv_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

qkv_status qkv_fail_context(qkv_status code, const char *fmt, ...)
{
    char prefix[512], old[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_error, sizeof old);
    /* Truncation is acceptable: the start of a message says the most. */
    size_t n = strlen(prefix);
    if (n > sizeof last_error - 3)
        n = sizeof last_error - 3;
    memcpy(last_error, prefix, n);
    memcpy(last_error + n, ": ", 2);
    size_t room = sizeof last_error - n - 3;
    size_t m = strnlen(old, room);
    memcpy(last_error + n + 2, old, m);
    last_error[n + 2 + m] = '\0';
    return code;
}
