/* Per-thread scratch buffers (thread_buf.h). */
#include <pthread.h>
#include <stdlib.h>

#include "kernels/thread_buf.h"

typedef struct {
    void *p[TBUF_COUNT];
    size_t n[TBUF_COUNT];
} bufs;

static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void bufs_free(void *v)
{
    bufs *t = v;
    for (int i = 0; i < TBUF_COUNT; i++)
        free(t->p[i]);
    free(t);
}

static void init(void) { pthread_key_create(&key, bufs_free); }

void *thread_buf(int slot, size_t bytes)
{
    pthread_once(&once, init);
    bufs *t = pthread_getspecific(key);
    if (!t && (t = calloc(1, sizeof *t)) && pthread_setspecific(key, t) != 0) {
        free(t);
        t = NULL;
    }
    if (!t)
        return NULL;
    if (t->n[slot] < bytes) {
        free(t->p[slot]);
        size_t n = (bytes + 4095) / 4096 * 4096;
        t->p[slot] = aligned_alloc(64, n);
        t->n[slot] = t->p[slot] ? n : 0;
    }
    return t->p[slot];
}
