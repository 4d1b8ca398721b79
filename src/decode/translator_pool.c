/* The translator's decoding states: the decoder weights packed once (on the
 * first translate call) and a small pool of search states, so that a call
 * pays for decoding, not for allocation and packing, and several threads
 * can translate with one translator at once. A call takes a free state (or
 * makes one when all are busy) and gives it back; at most
 * TRANSLATOR_KEEP_STATES are kept, the others freed when given back. */
#include <pthread.h>
#include <stdlib.h>

#include "base/status.h"
#include "decode/translator.h"
#include "model/model.h"

#define TRANSLATOR_KEEP_STATES 8

struct translator_pool {
    pthread_mutex_t mu;
    model_decoder_weights *w; /* NULL until the first call */
    search_state *free_states[TRANSLATOR_KEEP_STATES];
    int n_free;
};

qkv_status translator_pool_new(translator_pool **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&(*out)->mu, NULL);
    return QKV_OK;
}

void translator_pool_free(translator_pool *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n_free; i++)
        search_state_free(p->free_states[i]);
    model_decoder_weights_free(p->w);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

qkv_status translator_state_take(const qkv_translator *t, search_state **out)
{
    *out = NULL;
    translator_pool *p = t->pool;
    qkv_status st = QKV_OK;
    pthread_mutex_lock(&p->mu);
    if (!p->w)
        st = model_decoder_weights_new(t->model, &p->w);
    if (st == QKV_OK && p->n_free > 0)
        *out = p->free_states[--p->n_free];
    pthread_mutex_unlock(&p->mu);
    if (st == QKV_OK && !*out)
        st = search_state_new(t->model, p->w, out);
    return st;
}

void translator_state_give(const qkv_translator *t, search_state *s)
{
    if (!s)
        return;
    translator_pool *p = t->pool;
    pthread_mutex_lock(&p->mu);
    if (p->n_free < TRANSLATOR_KEEP_STATES) {
        p->free_states[p->n_free++] = s;
        s = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    search_state_free(s);
}
