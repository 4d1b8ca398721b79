/* Workspace arena: one allocation sized up front, carved into 64-byte-aligned
 * pieces by a bump pointer. Layers take their activations from an arena
 * instead of calling malloc inside forward or backward. */
#ifndef QKV_BASE_ARENA_H
#define QKV_BASE_ARENA_H

#include <stddef.h>

#include "qkv.h"

typedef struct {
    char *base;
    size_t size; /* bytes available */
    size_t used; /* bytes handed out */
    size_t peak; /* high-water mark of used */
} qkv_arena;

#define QKV_ARENA_ALIGN 64

/* Rounds n up to the arena's alignment: sum these to size an arena. */
static inline size_t qkv_arena_round(size_t n) { return (n + QKV_ARENA_ALIGN - 1) & ~(size_t)(QKV_ARENA_ALIGN - 1); }

qkv_status qkv_arena_init(qkv_arena *a, size_t size);
void qkv_arena_free(qkv_arena *a);
/* Returns n bytes (aligned, uninitialised) or NULL when the arena is full:
 * callers size the arena beforehand, so NULL is a programmer error. */
void *qkv_arena_alloc(qkv_arena *a, size_t n);
static inline size_t qkv_arena_mark(const qkv_arena *a) { return a->used; }
static inline void qkv_arena_reset(qkv_arena *a, size_t mark) { a->used = mark; }

#endif
