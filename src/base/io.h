/* File helpers: whole-file reads and atomic writes.
 *
 * Every output file is written to "<path>.tmp.<pid>", flushed, fsync'ed and
 * renamed over <path>, so a crash never leaves a half-written file behind. */
#ifndef QKV_BASE_IO_H
#define QKV_BASE_IO_H

#include <stddef.h>
#include <stdio.h>

#include "qkv.h"

/* Reads the whole file into a malloc'ed buffer (NUL-terminated for
 * convenience; *len excludes the NUL). Caller frees *data. */
qkv_status qkv_read_file(const char *path, char **data, size_t *len);

/* An output file being written atomically. */
typedef struct {
    FILE *fp;
    char *path;
    char *tmp_path;
} qkv_afile;

/* Opens a temporary file next to path. */
qkv_status qkv_afile_open(qkv_afile *f, const char *path);
/* Flushes, syncs and renames over the final path; on any failure the
 * temporary file is removed. Always releases f. */
qkv_status qkv_afile_commit(qkv_afile *f);
/* Removes the temporary file and releases f (use on error paths). */
void qkv_afile_abort(qkv_afile *f);

/* "dir/name", malloc'ed (caller frees); NULL when out of memory. */
char *qkv_path_join(const char *dir, const char *name);

/* Writes len bytes atomically to path. */
qkv_status qkv_write_file(const char *path, const void *data, size_t len);

#endif
