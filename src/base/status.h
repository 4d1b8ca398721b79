/* Internal error reporting: every library failure goes through qkv_fail(),
 * which records a formatted message for qkv_last_error() and returns the code,
 * so a failing path reads `return qkv_fail(QKV_ERR_FORMAT, "%s: ...", path);`. */
#ifndef QKV_BASE_STATUS_H
#define QKV_BASE_STATUS_H

#include "qkv.h"

#if defined(__GNUC__)
#define QKV_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define QKV_PRINTF(a, b)
#endif

/* Records the message (printf-style) and returns code. */
qkv_status qkv_fail(qkv_status code, const char *fmt, ...) QKV_PRINTF(2, 3);

/* Prepends "prefix: " to the current message (for adding context such as a
 * file name on the way up) and returns code. */
qkv_status qkv_fail_context(qkv_status code, const char *fmt, ...) QKV_PRINTF(2, 3);

/* Evaluates a call returning qkv_status and returns early on failure. */
#define QKV_TRY(call)                          \
    do {                                       \
        qkv_status qkv_try_s_ = (call);        \
        if (qkv_try_s_ != QKV_OK)              \
            return qkv_try_s_;                 \
    } while (0)

#endif
