#include "base/arena.h"

#include <stdlib.h>
#include <string.h>

#include "base/status.h"

qkv_status qkv_arena_init(qkv_arena *a, size_t size)
{
    memset(a, 0, sizeof *a);
    size = qkv_arena_round(size ? size : QKV_ARENA_ALIGN);
    a->base = aligned_alloc(QKV_ARENA_ALIGN, size);
    if (!a->base)
        return qkv_fail(QKV_ERR_NOMEM, "cannot allocate a workspace of %zu bytes", size);
    a->size = size;
    return QKV_OK;
}

void qkv_arena_free(qkv_arena *a)
{
    free(a->base);
    memset(a, 0, sizeof *a);
}

void *qkv_arena_alloc(qkv_arena *a, size_t n)
{
    n = qkv_arena_round(n);
    if (n > a->size - a->used)
        return NULL;
    void *p = a->base + a->used;
    a->used += n;
    if (a->used > a->peak)
        a->peak = a->used;
    return p;
}
