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

/* The bytes of a file: a regular file is mapped read-only (*mapped = 1;
 * qkv replaces files by renaming new ones over them, which leaves a mapped
 * one intact), anything else (a FIFO, an empty file) is read with
 * qkv_read_file (*mapped = 0). qkv_unmap_file releases either. */
qkv_status qkv_map_file(const char *path, void **data, size_t *len, int *mapped);
void qkv_unmap_file(void *data, size_t len, int mapped);
/* Drops the whole pages inside [p, p + n) of a mapped file from memory (they
 * are clean: reading them again refills them from the page cache), so a
 * reader that copies a file out in pieces holds one piece, not the file. A
 * hint: nothing happens where it fails. */
void qkv_release_pages(const void *p, size_t n);

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
