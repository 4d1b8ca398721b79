/* The translator's decoding states: the decoder weights packed once per
 * compute type (on the first translate call in that type) and a small pool
 * of search states per type, so that a call
 * pays for decoding, not for allocation and packing, and several threads
 * can translate with one translator at once. A call takes a free state (or
 * makes one when all are busy) and gives it back; at most
 * TRANSLATOR_KEEP_STATES are kept, the others freed when given back. */
#include <pthread.h>
#include <stdlib.h>

#include "base/status.h"
#include "decode/translator.h"
#include "kernels/qlinear.h"
#include "model/model.h"

#define TRANSLATOR_KEEP_STATES 8
#define TRANSLATOR_TYPES 3 /* qlinear_type: float32, int8, bf16 */

struct translator_pool {
    pthread_mutex_t mu;
    model_decoder_weights *w[TRANSLATOR_TYPES]; /* NULL until the first call in the type */
    search_state *free_states[TRANSLATOR_TYPES][TRANSLATOR_KEEP_STATES];
    int n_free[TRANSLATOR_TYPES];
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
    for (int k = 0; k < TRANSLATOR_TYPES; k++) {
        for (int i = 0; i < p->n_free[k]; i++)
            search_state_free(p->free_states[k][i]);
        model_decoder_weights_free(p->w[k]);
    }
    pthread_mutex_destroy(&p->mu);
    free(p);
}

qkv_status translator_state_take(const qkv_translator *t, int wtype, search_state **out)
{
    *out = NULL;
    if (wtype < 0 || wtype >= TRANSLATOR_TYPES)
        return qkv_fail(QKV_ERR_ARG, "translate: compute type %d", wtype);
    translator_pool *p = t->pool;
    qkv_status st = QKV_OK;
    pthread_mutex_lock(&p->mu);
    if (!p->w[wtype])
        st = model_decoder_weights_new_typed(t->model, wtype, &p->w[wtype]);
    if (st == QKV_OK && p->n_free[wtype] > 0)
        *out = p->free_states[wtype][--p->n_free[wtype]];
    pthread_mutex_unlock(&p->mu);
    if (st == QKV_OK && !*out)
        st = search_state_new(t->model, p->w[wtype], out);
    return st;
}

void translator_state_give(const qkv_translator *t, int wtype, search_state *s)
{
    if (!s)
        return;
    translator_pool *p = t->pool;
    pthread_mutex_lock(&p->mu);
    if (p->n_free[wtype] < TRANSLATOR_KEEP_STATES) {
        p->free_states[wtype][p->n_free[wtype]++] = s;
        s = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    search_state_free(s);
}

qkv_status translator_weights(const qkv_translator *t, int wtype, const model_decoder_weights **out)
{
    *out = NULL;
    if (wtype < 0 || wtype >= TRANSLATOR_TYPES)
        return qkv_fail(QKV_ERR_ARG, "translate: compute type %d", wtype);
    translator_pool *p = t->pool;
    qkv_status st = QKV_OK;
    pthread_mutex_lock(&p->mu);
    if (!p->w[wtype])
        st = model_decoder_weights_new_typed(t->model, wtype, &p->w[wtype]);
    *out = p->w[wtype];
    pthread_mutex_unlock(&p->mu);
    return st;
}

void translator_pool_set_weights(translator_pool *p, int wtype, model_decoder_weights *w)
{
    pthread_mutex_lock(&p->mu);
    model_decoder_weights_free(p->w[wtype]);
    p->w[wtype] = w;
    pthread_mutex_unlock(&p->mu);
}
