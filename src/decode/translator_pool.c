/* The translator's decoding states: the decoder weights packed once per
 * compute type (on the first translate call in that type) and a small pool
 * of search states per type, so that a call
 * pays for decoding, not for allocation and packing, and several threads
 * can translate with one translator at once. A call takes a free state (or
 * makes one when all are busy) and gives it back; at most
 * TRANSLATOR_KEEP_STATES are kept, the others freed when given back. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/context.h"
#include "base/pool.h"
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
    const model_decoder_weights *w;
    QKV_TRY(translator_weights(t, wtype, &w));
    translator_pool *p = t->pool;
    pthread_mutex_lock(&p->mu);
    if (p->n_free[wtype] > 0)
        *out = p->free_states[wtype][--p->n_free[wtype]];
    pthread_mutex_unlock(&p->mu);
    return *out ? QKV_OK : search_state_new(t->model, w, out);
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

/* ---- decoding a call's batches -------------------------------------------------
 *
 * A call's sentences are decoded in batches (search_run_state). When a batch
 * has few rows (batch size x beam below TRANSLATOR_BATCH_ROWS: batch 1
 * greedy or beam 4), a step's products are too small to share between
 * threads, so the batches themselves go to the context's threads, each on
 * its own search state with its kernels on that thread alone (as
 * CTranslate2's inter_threads). So do larger batches when the call has
 * TRANSLATOR_MANY_BATCHES of them per thread or more: threads that never
 * wait for each other within a step beat sharing its products (demo model,
 * 1,000 sentences, beam 4 batch 32, 2 threads on an AVX2 EPYC, old and new
 * interleaved, best and median of 6: int8 2.63 -> 2.27 s and 3.2 -> 2.5 s;
 * of 5, float32 5.03 -> 4.10 s and 5.29 -> 4.35 s), for one more state's
 * memory (peak RSS 92 -> 137 MB int8, 110 -> 154 MB float32); a call of few
 * batches (a server's request) still shares each step. The batches are the
 * ones a single state makes (search_batch_order), and each decodes
 * independently, so the results are those of one thread. Sampling stays on
 * one state: its random streams run through a call's batches in order. */
#define TRANSLATOR_BATCH_ROWS 16
#define TRANSLATOR_MANY_BATCHES 4

typedef struct {
    const qkv_translator *t;
    const search_params *p;
    const int *const *src;
    const int *len;
    const int *order;
    int cnt, B;
    search_result *out;
    qkv_status *st; /* per batch */
    char (*msg)[256]; /* per batch: its error message (tasks run on other threads) */
} batch_job;

static void batch_range(void *arg, long b0, long b1)
{
    batch_job *j = arg;
    for (long b = b0; b < b1; b++) {
        int i0 = (int)b * j->B, nb = j->cnt - i0 < j->B ? j->cnt - i0 : j->B;
        const int *src[nb];
        int len[nb];
        search_result res[nb];
        for (int k = 0; k < nb; k++) {
            src[k] = j->src[j->order[i0 + k]];
            len[k] = j->len[j->order[i0 + k]];
        }
        search_state *ss = NULL;
        qkv_status st = translator_state_take(j->t, j->p->weight_type, &ss);
        if (st == QKV_OK)
            st = search_run_state(ss, j->p, src, len, nb, res);
        translator_state_give(j->t, j->p->weight_type, ss);
        if (st == QKV_OK)
            for (int k = 0; k < nb; k++)
                j->out[j->order[i0 + k]] = res[k]; /* the hypotheses move over */
        j->st[b] = st;
        if (st != QKV_OK)
            snprintf(j->msg[b], sizeof j->msg[b], "%s", qkv_last_error());
    }
}

qkv_status translator_search(const qkv_translator *t, const search_params *p, const int *const *src,
                             const int *src_len, int n, search_result *out)
{
    qkv_pool *pool = ctx_pool();
    int rows = p->batch_size * (p->beam_size > 1 ? p->beam_size : 1), threads = pool_threads(pool);
    int many = n >= TRANSLATOR_MANY_BATCHES * threads * p->batch_size;
    if (threads < 2 || pool_in_task() || p->sample || (rows >= TRANSLATOR_BATCH_ROWS && !many) ||
        n <= p->batch_size) {
        search_state *ss = NULL;
        qkv_status st = translator_state_take(t, p->weight_type, &ss);
        if (st == QKV_OK)
            st = search_run_state(ss, p, src, src_len, n, out);
        translator_state_give(t, p->weight_type, ss);
        return st;
    }
    memset(out, 0, (size_t)n * sizeof *out);
    int *order = malloc((size_t)n * sizeof(int));
    int cnt = order ? search_batch_order(src_len, n, order) : -1;
    int nbatch = cnt > 0 ? (cnt + p->batch_size - 1) / p->batch_size : 0;
    qkv_status *st = calloc((size_t)(nbatch > 0 ? nbatch : 1), sizeof *st);
    char(*msg)[256] = calloc((size_t)(nbatch > 0 ? nbatch : 1), sizeof *msg);
    if (cnt < 0 || !st || !msg) {
        free(order);
        free(st);
        free(msg);
        return qkv_fail(QKV_ERR_NOMEM, "translate: out of memory");
    }
    batch_job j = {t, p, src, src_len, order, cnt, p->batch_size, out, st, msg};
    par_dynamic(pool, nbatch, 1, batch_range, &j);
    qkv_status r = QKV_OK;
    int bad = 0;
    for (int b = 0; b < nbatch && r == QKV_OK; b++)
        if ((r = st[b]) != QKV_OK)
            bad = b;
    if (r != QKV_OK) {
        search_results_free(out, n);
        qkv_fail(r, "%s", msg[bad]);
    }
    free(order);
    free(st);
    free(msg);
    return r;
}
