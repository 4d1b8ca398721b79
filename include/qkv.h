/* qkv — a Transformer encoder-decoder for machine translation, in C11.
 *
 * This header is the whole public API. Conventions (as in whisper.cpp and
 * SQLite):
 *   - objects are opaque handles created by qkv_*_load / qkv_*_new and
 *     released by the matching qkv_*_free (NULL is accepted by every free);
 *   - functions that can fail return a qkv_status; on failure a message
 *     naming the file, line or field and what was expected is kept per thread
 *     and returned by qkv_last_error();
 *   - options are structs obtained from qkv_*_default_options() and edited by
 *     the caller;
 *   - nothing in the library prints to stdout or calls exit().
 *
 * Each module adds its declarations in its own section below. */
#ifndef QKV_H
#define QKV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QKV_VERSION_STRING "0.1.0"

/* ---- status and errors (src/base/status.c) ---------------------------- */

typedef enum {
    QKV_OK = 0,
    QKV_ERR_IO,          /* a file could not be opened, read or written */
    QKV_ERR_FORMAT,      /* a file's content is malformed or truncated */
    QKV_ERR_CONFIG,      /* an option or configuration field is invalid */
    QKV_ERR_ARG,         /* a function was called with invalid arguments */
    QKV_ERR_NOMEM,       /* an allocation failed */
    QKV_ERR_UNSUPPORTED, /* valid input that qkv does not handle */
    QKV_ERR_INTERRUPTED  /* stopped by a signal or a time budget */
} qkv_status;

/* The message of the most recent failure on this thread ("" if none).
 * The pointer stays valid until the next failing call on this thread. */
const char *qkv_last_error(void);

/* A short fixed name for a status code ("ok", "io", "format", ...). */
const char *qkv_status_name(qkv_status s);

/* ---- threads (src/kernels/threads.c) ------------------------------------- */

/* Number of threads used by kernels (OpenMP regions and the BLAS).
 * n <= 0 selects the default: $QKV_THREADS if set, else the number of cores. */
void qkv_set_threads(int n);
int qkv_get_threads(void);

#ifdef __cplusplus
}
#endif
#endif /* QKV_H */
