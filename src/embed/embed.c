/* Sentence embeddings (qkv_embed* in qkv.h): a BERT-family directory or a
 * translation model's encoder, batched by length, pooled and optionally
 * normalised. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/context.h"
#include "base/status.h"
#include "decode/translator.h"
#include "embed/bert_encoder.h"
#include "formats/bert.h"
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
    bert_workspace *ws = NULL;
    model_state *ms = NULL;
    int *ids = malloc((size_t)B * longest * sizeof *ids), *len = malloc((size_t)B * sizeof *len);
    float *pooled = malloc((size_t)B * dim * sizeof *pooled);
    if (s == QKV_OK && (!ids || !len || !pooled))
        s = qkv_fail(QKV_ERR_NOMEM, "embed: out of memory");
    if (s == QKV_OK && live) {
        if (e->bert)
            s = bert_workspace_new(e->bert, B, longest, &ws);
        else
            s = model_state_new(e->tr->model, B, longest, 1, 0, &ms);
    }
    int pad = e->bert ? (wp_pad_id(e->bert->tok) >= 0 ? wp_pad_id(e->bert->tok) : 0)
                      : qkv_model_get_config(e->tr->model)->pad_id;
    for (int start = 0; start < live && s == QKV_OK; start += B) {
        int nb = live - start < B ? live - start : B;
        int T = tok[order[start]].n; /* longest first */
        for (int b = 0; b < nb; b++) {
            const tokens *t = &tok[order[start + b]];
            for (int j = 0; j < T; j++)
                ids[(size_t)b * T + j] = j < t->n ? t->ids[j] : pad;
            len[b] = t->n;
        }
        const float *hidden;
        if (e->bert) {
            s = bert_forward(e->bert, ws, ids, len, nb, T, &hidden);
        } else {
            s = model_encode(ms, ids, len, nb, T);
            hidden = model_encoder_output(ms);
        }
        if (s != QKV_OK)
            break;
        pool_forward(pooled, hidden, len, nb, T, dim, pool);
        if (normalize)
            l2_normalize_forward(pooled, pooled, nb, dim);
        for (int b = 0; b < nb; b++)
            memcpy(out + (size_t)order[start + b] * dim, pooled + (size_t)b * dim, (size_t)dim * sizeof *out);
    }
    bert_workspace_free(ws);
    model_state_free(ms);
    free(ids);
    free(len);
    free(pooled);
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
