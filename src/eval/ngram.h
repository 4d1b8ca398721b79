/* A counter of n-grams of 32-bit symbols (code points or interned word ids),
 * the C stand-in for the collections.Counter sacreBLEU builds. Keys point into
 * caller-owned arrays that must outlive the counter's use. */
#ifndef QKV_EVAL_NGRAM_H
#define QKV_EVAL_NGRAM_H

#include <stddef.h>
#include <stdint.h>

#include "qkv.h"

typedef struct {
    const uint32_t *seq; /* NULL marks an empty slot */
    uint32_t n;
    uint64_t hash;
    int64_t count;
} eval_ngram_entry;

typedef struct {
    eval_ngram_entry *e;
    size_t cap, size;
} eval_ngram_counter;

/* count[seq] += k. */
qkv_status eval_ngram_add(eval_ngram_counter *c, const uint32_t *seq, int n, int64_t k);
/* count[seq] = max(count[seq], k). */
qkv_status eval_ngram_max(eval_ngram_counter *c, const uint32_t *seq, int n, int64_t k);
/* count[seq], or 0 when absent. */
int64_t eval_ngram_get(const eval_ngram_counter *c, const uint32_t *seq, int n);
/* The value stored under seq; when absent stores and returns value_if_new
 * (used to intern words as ids). */
qkv_status eval_ngram_intern(eval_ngram_counter *c, const uint32_t *seq, int n, int64_t value_if_new,
                             int64_t *value);
/* Empties the counter, keeping its memory. */
void eval_ngram_clear(eval_ngram_counter *c);
void eval_ngram_free(eval_ngram_counter *c);

#endif
