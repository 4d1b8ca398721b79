/* Sentence embeddings (qkv_embed* in qkv.h): a BERT-family directory or a
 * translation model's encoder, batched by length, pooled and optionally
 * normalised. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/context.h"
#include "base/status.h"
#include "decode/translator.h"
#include "embed/bert_encoder.h"
#include "formats/bert.h"
#include "base/pool.h"
#include "kernels/pooling.h"
#include "model/model.h"
#include "qkv.h"

struct qkv_embedder {
    bert_model *bert;     /* a BERT directory, or */
    qkv_translator *tr;   /* a translation model (its encoder) */
    int dim;
};

qkv_embed_options qkv_embed_default_options(void)
{
    return (qkv_embed_options){.pooling = QKV_POOL_DEFAULT, .normalize = -1, .batch_size = 32};
}

qkv_status qkv_embedder_load(const char *path, qkv_embedder **out)
{
    *out = NULL;
    qkv_embedder *e = calloc(1, sizeof *e);
    if (!e)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    struct stat st;
    qkv_status s;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode) && bert_is_dir(path)) {
        s = bert_load(path, &e->bert);
        if (s == QKV_OK)
            e->dim = e->bert->cfg.hidden;
    } else {
        s = qkv_translator_load(path, &e->tr);
        if (s == QKV_OK)
            e->dim = qkv_model_get_config(e->tr->model)->d_model;
    }
    if (s != QKV_OK) {
        free(e);
        return s;
    }
    *out = e;
    return QKV_OK;
}

void qkv_embedder_free(qkv_embedder *e)
{
    if (!e)
        return;
    bert_free(e->bert);
    qkv_translator_free(e->tr);
    free(e);
}

int qkv_embedder_dim(const qkv_embedder *e) { return e->dim; }
const char *qkv_embedder_kind(const qkv_embedder *e) { return e->bert ? "bert" : "translation-encoder"; }

typedef struct {
    int *ids;
    int n;
} tokens;

static int all_space(const char *s)
{
    for (; *s; s++)
        if (!(*s == ' ' || (*s >= '\t' && *s <= '\r')))
            return 0;
    return 1;
}

static int by_length(const void *a, const void *b, void *ctx)
{
    const tokens *tok = ctx;
    int ia = *(const int *)a, ib = *(const int *)b;
    int la = tok[ia].n, lb = tok[ib].n;
    return la != lb ? (la > lb ? -1 : 1) : (ia > ib) - (ia < ib); /* longest first, then input order */
}

/* One thread's share of an embedding call (embed_run): a workspace and
 * the batch buffers. */
typedef struct {
    bert_workspace *ws;
    model_state *ms;
    int *ids, *len;
    float *pooled;
} embed_worker;

typedef struct {
    const qkv_embedder *e;
    const tokens *tok;
    const int *order;
    int live, B, longest, dim;
    pool_kind pool;
    int normalize;
    float *out;
    embed_worker *w;
    atomic_int next;   /* the next batch to take */
    atomic_int failed; /* 1 once a task met an error; that task alone writes st and msg */
    qkv_status st;
    char msg[512];     /* its message: tasks run on other threads, whose qkv_last_error is their own */
} embed_job;

static qkv_status worker_new(const embed_job *j, embed_worker *w)
{
    int B = j->B;
    w->ids = malloc((size_t)B * j->longest * sizeof *w->ids);
    w->len = malloc((size_t)B * sizeof *w->len);
    w->pooled = malloc((size_t)B * j->dim * sizeof *w->pooled);
    if (!w->ids || !w->len || !w->pooled)
        return qkv_fail(QKV_ERR_NOMEM, "embed: out of memory");
    if (j->e->bert)
        return bert_workspace_new(j->e->bert, B, j->longest, &w->ws);
    return model_state_new_forward(j->e->tr->model, B, j->longest, 1, &w->ms);
}

static void worker_free(embed_worker *w)
{
    bert_workspace_free(w->ws);
    model_state_free(w->ms);
    free(w->ids);
    free(w->len);
    free(w->pooled);
}

/* Task k: batches taken one at a time, on worker k's buffers. */
static void embed_task(void *arg, int k, int n_tasks)
{
    embed_job *j = arg;
    embed_worker *w = &j->w[k];
    const qkv_embedder *e = j->e;
    int pad = e->bert ? (wp_pad_id(e->bert->tok) >= 0 ? wp_pad_id(e->bert->tok) : 0)
                      : qkv_model_get_config(e->tr->model)->pad_id;
    for (;;) {
        int bi = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed), start = bi * j->B;
        if (start >= j->live)
            return;
        int nb = j->live - start < j->B ? j->live - start : j->B;
        int T = j->tok[j->order[start]].n; /* longest first */
        for (int b = 0; b < nb; b++) {
            const tokens *t = &j->tok[j->order[start + b]];
            for (int c = 0; c < T; c++)
                w->ids[(size_t)b * T + c] = c < t->n ? t->ids[c] : pad;
            w->len[b] = t->n;
        }
        const float *hidden;
        qkv_status s;
        if (e->bert) {
            s = bert_forward(e->bert, w->ws, w->ids, w->len, nb, T, &hidden);
        } else {
            s = model_encode(w->ms, w->ids, w->len, nb, T);
            hidden = model_encoder_output(w->ms);
        }
        if (s != QKV_OK) {
            int no = 0;
            if (atomic_compare_exchange_strong(&j->failed, &no, 1)) {
                j->st = s;
                snprintf(j->msg, sizeof j->msg, "%s", qkv_last_error());
            }
            atomic_store_explicit(&j->next, j->live, memory_order_relaxed); /* the others stop too */
            return;
        }
        pool_forward(w->pooled, hidden, w->len, nb, T, j->dim, j->pool);
        if (j->normalize)
            l2_normalize_forward(w->pooled, w->pooled, nb, j->dim);
        for (int b = 0; b < nb; b++)
            memcpy(j->out + (size_t)j->order[start + b] * j->dim, w->pooled + (size_t)b * j->dim,
                   (size_t)j->dim * sizeof *j->out);
    }
}

static qkv_status embed_run(const qkv_embedder *e, const char *const *texts, int n, const qkv_embed_options *o,
                            float *out, qkv_embed_stats *stats)
{
    qkv_embed_options opt = *o;
    qkv_embed_stats st = {0};
    if (opt.batch_size < 1)
        return qkv_fail(QKV_ERR_CONFIG, "embed: batch_size = %d, expected >= 1", opt.batch_size);
    if (opt.max_length < 0 || opt.max_length == 1)
        return qkv_fail(QKV_ERR_CONFIG, "embed: max_length = %d, expected 0 (the model's) or >= 2", opt.max_length);
    if (opt.pooling < QKV_POOL_DEFAULT || opt.pooling > QKV_POOL_MAX)
        return qkv_fail(QKV_ERR_CONFIG, "embed: unknown pooling %d", (int)opt.pooling);
    if (opt.threads < 0)
        return qkv_fail(QKV_ERR_CONFIG, "embed: threads = %d, expected >= 0", opt.threads);
    if (n < 0)
        return qkv_fail(QKV_ERR_ARG, "embed: n = %d", n);
    int dim = e->dim;
    pool_kind pool = opt.pooling != QKV_POOL_DEFAULT ? (pool_kind)opt.pooling
                                                     : (e->bert ? (pool_kind)e->bert->pooling : POOL_MEAN);
    int normalize = opt.normalize >= 0 ? opt.normalize : (e->bert ? e->bert->normalize : 0);
    int max_len = 0;
    if (e->bert) {
        max_len = opt.max_length ? opt.max_length : e->bert->max_seq_length;
        if (max_len > e->bert->cfg.max_positions)
            max_len = e->bert->cfg.max_positions;
    }

    tokens *tok = calloc((size_t)n + 1, sizeof *tok);
    int *order = malloc(((size_t)n + 1) * sizeof *order);
    qkv_status s = tok && order ? QKV_OK : qkv_fail(QKV_ERR_NOMEM, "embed: out of memory");
    int live = 0, longest = 1;
    for (int i = 0; i < n && s == QKV_OK; i++) {
        memset(out + (size_t)i * dim, 0, (size_t)dim * sizeof *out);
        if (all_space(texts[i])) {
            st.empty++;
            continue;
        }
        int truncated = 0;
        if (e->bert) {
            size_t m, invalid;
            s = wp_encode(e->bert->tok, texts[i], strlen(texts[i]), 1, max_len, &tok[i].ids, &m, &invalid,
                          &truncated);
            tok[i].n = (int)m;
            st.invalid_bytes += (long)invalid;
        } else {
            s = translator_encode_source(e->tr, texts[i], &tok[i].ids, &tok[i].n, &truncated);
            if (s == QKV_OK && opt.max_length && tok[i].n > opt.max_length) { /* keep the EOS last */
                tok[i].ids[opt.max_length - 1] = tok[i].ids[tok[i].n - 1];
                tok[i].n = opt.max_length;
                truncated = 1;
            }
        }
        if (s != QKV_OK) {
            qkv_fail_context(s, "line %d", i + 1);
            break;
        }
        st.truncated += truncated != 0;
        if (tok[i].n == 0) { /* a translation tokenizer gave nothing: zero vector too */
            st.empty++;
            continue;
        }
        order[live++] = i;
        if (tok[i].n > longest)
            longest = tok[i].n;
    }
    if (s == QKV_OK)
        qsort_r(order, (size_t)live, sizeof *order, by_length, tok);

    int B = opt.batch_size < live ? opt.batch_size : (live ? live : 1);
    int nbatch = live ? (live + B - 1) / B : 0;
    /* Batches are independent: with several threads and batches, each
     * thread takes whole batches on a workspace of its own, its kernels on
     * that thread alone (no step is small enough to share well at sentence
     * lengths); the batches and their results are the one-thread ones. */
    qkv_pool *tp = ctx_pool();
    int workers = pool_threads(tp) < nbatch ? pool_threads(tp) : nbatch;
    if (workers < 1 || pool_in_task())
        workers = 1;
    embed_job job = {.e = e, .tok = tok, .order = order, .live = live, .B = B, .longest = longest, .dim = dim,
                     .pool = pool, .normalize = normalize, .out = out, .st = QKV_OK};
    job.w = calloc((size_t)workers, sizeof *job.w);
    if (s == QKV_OK && !job.w)
        s = qkv_fail(QKV_ERR_NOMEM, "embed: out of memory");
    for (int k = 0; k < workers && s == QKV_OK && live; k++)
        s = worker_new(&job, &job.w[k]);
    if (s == QKV_OK && live) {
        atomic_init(&job.next, 0);
        atomic_init(&job.failed, 0);
        if (workers > 1)
            pool_run(tp, workers, embed_task, &job);
        else
            embed_task(&job, 0, 1);
        if (job.st != QKV_OK)
            s = qkv_fail(job.st, "%s", job.msg);
    }
    for (int k = 0; job.w && k < workers; k++)
        worker_free(&job.w[k]);
    free(job.w);
    for (int i = 0; tok && i < n; i++)
        free(tok[i].ids);
    free(tok);
    free(order);
    if (stats)
        *stats = st;
    return s;
}

/* Threads: the kernels run on the context bound to the calling thread. With
 * threads > 0, or with none bound, this call makes a context of its own
 * (threads, or the default: $QKV_THREADS or the CPUs) and binds it for the
 * duration of the call. */
qkv_status qkv_embed(const qkv_embedder *e, const char *const *texts, int n, const qkv_embed_options *o,
                     float *out, qkv_embed_stats *stats)
{
    qkv_embed_options opt = o ? *o : qkv_embed_default_options();
    if (opt.threads < 0)
        return qkv_fail(QKV_ERR_CONFIG, "embed: threads = %d, expected >= 0", opt.threads);
    if (opt.threads == 0 && ctx_current())
        return embed_run(e, texts, n, &opt, out, stats);
    qkv_context_options co = qkv_context_default_options();
    co.threads = opt.threads;
    qkv_context *c;
    QKV_TRY(qkv_context_new(&co, &c));
    qkv_context *prev = ctx_bind(c);
    qkv_status s = embed_run(e, texts, n, &opt, out, stats);
    ctx_bind(prev);
    qkv_context_free(c);
    return s;
}
