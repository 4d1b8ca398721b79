/* Open addressing with linear probing, grown at half load. */
#include "eval/ngram.h"

#include <stdlib.h>
#include <string.h>

#include "base/status.h"

static uint64_t hash_seq(const uint32_t *seq, int n)
{
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)n;
    for (int i = 0; i < n; i++) {
        h ^= seq[i];
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    return h;
}

static size_t find_slot(const eval_ngram_entry *e, size_t cap, const uint32_t *seq, int n, uint64_t h)
{
    size_t i = h & (cap - 1);
    while (e[i].seq && !(e[i].hash == h && e[i].n == (uint32_t)n && !memcmp(e[i].seq, seq, n * sizeof *seq)))
        i = (i + 1) & (cap - 1);
    return i;
}

static qkv_status grow(eval_ngram_counter *c)
{
    size_t cap = c->cap ? 2 * c->cap : 64;
    eval_ngram_entry *e = calloc(cap, sizeof *e);
    if (!e)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory (n-gram table of %zu entries)", cap);
    for (size_t i = 0; i < c->cap; i++) {
        if (!c->e[i].seq)
            continue;
        size_t j = c->e[i].hash & (cap - 1);
        while (e[j].seq)
            j = (j + 1) & (cap - 1);
        e[j] = c->e[i];
    }
    free(c->e);
    c->e = e;
    c->cap = cap;
    return QKV_OK;
}

/* Returns the entry for seq, inserting it with count 0 if absent. */
static qkv_status upsert(eval_ngram_counter *c, const uint32_t *seq, int n, eval_ngram_entry **out, int *fresh)
{
    if (2 * (c->size + 1) > c->cap)
        QKV_TRY(grow(c));
    uint64_t h = hash_seq(seq, n);
    size_t i = find_slot(c->e, c->cap, seq, n, h);
    *fresh = !c->e[i].seq;
    if (*fresh) {
        c->e[i] = (eval_ngram_entry){seq, (uint32_t)n, h, 0};
        c->size++;
    }
    *out = &c->e[i];
    return QKV_OK;
}

qkv_status eval_ngram_add(eval_ngram_counter *c, const uint32_t *seq, int n, int64_t k)
{
    eval_ngram_entry *e;
    int fresh;
    QKV_TRY(upsert(c, seq, n, &e, &fresh));
    e->count += k;
    return QKV_OK;
}

qkv_status eval_ngram_max(eval_ngram_counter *c, const uint32_t *seq, int n, int64_t k)
{
    eval_ngram_entry *e;
    int fresh;
    QKV_TRY(upsert(c, seq, n, &e, &fresh));
    if (k > e->count)
        e->count = k;
    return QKV_OK;
}

int64_t eval_ngram_get(const eval_ngram_counter *c, const uint32_t *seq, int n)
{
    if (!c->size)
        return 0;
    size_t i = find_slot(c->e, c->cap, seq, n, hash_seq(seq, n));
    return c->e[i].seq ? c->e[i].count : 0;
}

qkv_status eval_ngram_intern(eval_ngram_counter *c, const uint32_t *seq, int n, int64_t value_if_new,
                             int64_t *value)
{
    eval_ngram_entry *e;
    int fresh;
    QKV_TRY(upsert(c, seq, n, &e, &fresh));
    if (fresh)
        e->count = value_if_new;
    *value = e->count;
    return QKV_OK;
}

void eval_ngram_clear(eval_ngram_counter *c)
{
    if (c->size)
        memset(c->e, 0, c->cap * sizeof *c->e);
    c->size = 0;
}

void eval_ngram_free(eval_ngram_counter *c)
{
    free(c->e);
    c->e = NULL;
    c->cap = c->size = 0;
}
