/* qkv_translator: loading, text <-> ids, qkv_translate (search over a
 * batch of lines) and qkv_translate_score (forced decoding), with the
 * cross-attention of the results on request.
 *
 * Attention and scores of a fixed target are computed by one full decoder
 * pass (model_decode_logits) over the finished hypotheses instead of being
 * kept at every search step: the search then never stores per-step
 * attention of beams that are thrown away, and the same code serves
 * `qkv attn` with a given target. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/context.h"
#include "base/io.h"
#include "base/status.h"
#include "decode/translator.h"
#include "kernels/qlinear.h"
#include "formats/marian.h"
#include "model/model.h"
#include "train/model_io.h"

void qkv_translator_free(qkv_translator *t)
{
    if (!t)
        return;
    translator_pool_free(t->pool); /* its states and packed weights read the model */
    if (t->tgt_vocab != t->src_vocab)
        qkv_vocab_free(t->tgt_vocab);
    qkv_vocab_free(t->src_vocab);
    qkv_tokenizer_free(t->tok);
    qkv_model_free(t->model);
    if (t->file)
        qkv_checkpoint_release(t->file);
    free(t->defaults.bad_words);
    qkv_context_free(t->own_ctx);
    free(t);
}

const qkv_model *qkv_translator_model(const qkv_translator *t) { return t->model; }

static qkv_status load_checkpoint(qkv_translator *t, const char *path)
{
    qkv_vocab_blobs vb;
    QKV_TRY(qkv_checkpoint_load_model_readonly(path, &t->model, &vb, &t->file));
    if (!vb.src)
        return qkv_fail(QKV_ERR_FORMAT, "%s: checkpoint has no vocabulary (section 'src_vocab')", path);
    qkv_status s = qkv_vocab_load_memory(vb.src, vb.src_len, &t->src_vocab);
    if (s != QKV_OK)
        return qkv_fail_context(s, "%s: section 'src_vocab'", path);
    t->tgt_vocab = t->src_vocab;
    if (vb.tgt && (s = qkv_vocab_load_memory(vb.tgt, vb.tgt_len, &t->tgt_vocab)) != QKV_OK) {
        t->tgt_vocab = t->src_vocab;
        return qkv_fail_context(s, "%s: section 'tgt_vocab'", path);
    }
    const qkv_model_config *c = qkv_model_get_config(t->model);
    if (qkv_vocab_size(t->src_vocab) > c->src_vocab_size || qkv_vocab_size(t->tgt_vocab) > c->tgt_vocab_size)
        return qkv_fail(QKV_ERR_FORMAT, "%s: vocabularies (%d, %d pieces) larger than the model's (%d, %d)", path,
                        qkv_vocab_size(t->src_vocab), qkv_vocab_size(t->tgt_vocab), c->src_vocab_size,
                        c->tgt_vocab_size);
    /* the length cap: a model that has not learned to stop would otherwise
     * run every sentence to max_positions; 2 * source + 10 (as the demo
     * translates) leaves room for any real translation of this corpus */
    t->defaults = (translator_defaults){.num_beams = 4, .max_length = c->max_positions + 1, .max_length_ratio = 2.0f,
                                        .max_length_offset = 10, .forced_eos = 1, .length_penalty = 1.0f,
                                        .repetition_penalty = 1.0f};
    /* ids with no target piece (the extra pad id qkv train appends, and the
     * rows a larger source vocabulary gives the target side) are never
     * generated: one single-id bad word each */
    int first = qkv_vocab_size(t->tgt_vocab), n = 0;
    if (first < c->tgt_vocab_size) {
        t->defaults.bad_words = malloc(2 * (size_t)(c->tgt_vocab_size - first) * sizeof(int));
        if (!t->defaults.bad_words)
            return qkv_fail(QKV_ERR_NOMEM, "%s: out of memory", path);
        for (int id = first; id < c->tgt_vocab_size; id++)
            if (id != c->eos_id) {
                t->defaults.bad_words[n++] = id;
                t->defaults.bad_words[n++] = -1;
            }
    }
    t->defaults.n_bad_words = n;
    /* a quantized checkpoint: its type is the default, and int8 weights
     * are packed from the stored rows, not re-quantized */
    const char *ct = qkv_checkpoint_compute_type(t->file);
    t->own_type = qlinear_type_of(ct);
    if (t->own_type == QLIN_INT8) {
        model_i8_tensor *i8;
        float *scales;
        QKV_TRY(qkv_checkpoint_i8_tensors(t->file, t->model, &i8, &scales));
        model_decoder_weights *w = NULL;
        qkv_status st = model_decoder_weights_new_i8(t->model, i8, &w);
        free(i8);
        free(scales);
        QKV_TRY(st);
        translator_pool_set_weights(t->pool, QLIN_INT8, w);
    }
    /* the vocabularies and parameters are copies: the file's bytes can go */
    qkv_checkpoint_release(t->file);
    t->file = NULL;
    return QKV_OK;
}

static qkv_status load_marian(qkv_translator *t, const char *dir)
{
    marian_generation g;
    QKV_TRY(marian_load(dir, &t->model, &t->tok, &g));
    translator_defaults *d = &t->defaults;
    const qkv_model_config *c = qkv_model_get_config(t->model);
    *d = (translator_defaults){
        .num_beams = g.num_beams > 0 ? g.num_beams : 1,
        .max_length = g.max_length,
        .forced_eos = g.forced_eos_token_id >= 0 && g.forced_eos_token_id == c->eos_id,
        .min_length = g.min_length,
        .no_repeat_ngram_size = g.no_repeat_ngram_size,
        .length_penalty = g.length_penalty,
        .repetition_penalty = g.repetition_penalty,
        .early_stopping = g.early_stopping == 1   ? QKV_EARLY_STOPPING_TRUE
                          : g.early_stopping == 2 ? QKV_EARLY_STOPPING_NEVER
                                                  : QKV_EARLY_STOPPING_HEURISTIC,
    };
    if (d->num_beams > SEARCH_MAX_BEAM)
        d->num_beams = SEARCH_MAX_BEAM;
    int total = 0;
    for (int i = 0; i < g.n_bad_words; i++)
        total += g.bad_words_len[i] + 1;
    d->bad_words = malloc((size_t)(total > 0 ? total : 1) * sizeof(int));
    if (!d->bad_words) {
        marian_generation_free(&g);
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    }
    const int *src = g.bad_words_ids;
    for (int i = 0; i < g.n_bad_words; i++) {
        /* generate() drops a bad word that is exactly [eos]; ids past the
         * vocabulary cannot be generated anyway */
        int len = g.bad_words_len[i], ok = len > 0 && !(len == 1 && src[0] == c->eos_id);
        for (int j = 0; j < len; j++)
            ok = ok && src[j] >= 0 && src[j] < c->tgt_vocab_size;
        if (ok) {
            memcpy(d->bad_words + d->n_bad_words, src, (size_t)len * sizeof(int));
            d->n_bad_words += len;
            d->bad_words[d->n_bad_words++] = -1;
        }
        src += len;
    }
    marian_generation_free(&g);
    return QKV_OK;
}

qkv_translate_options qkv_translator_default_options(const qkv_translator *t)
{
    qkv_translate_options o = qkv_translate_default_options();
    const translator_defaults *d = &t->defaults;
    o.beam_size = d->num_beams;
    o.max_length = d->max_length;
    o.max_length_ratio = d->max_length_ratio;
    o.max_length_offset = d->max_length_offset;
    o.forced_eos = d->forced_eos;
    o.min_length = d->min_length;
    o.no_repeat_ngram_size = d->no_repeat_ngram_size;
    o.length_penalty = d->length_penalty;
    o.repetition_penalty = d->repetition_penalty;
    o.early_stopping = d->early_stopping;
    return o;
}

qkv_status qkv_translator_load(const char *path, qkv_translator **out)
{
    return qkv_translator_load_ctx(path, NULL, out);
}

qkv_status qkv_translator_load_ctx(const char *path, qkv_context *ctx, qkv_translator **out)
{
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return qkv_fail(QKV_ERR_IO, "%s: no such model file or directory", path);
    qkv_translator *t = calloc(1, sizeof *t);
    if (!t)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    qkv_status s = translator_pool_new(&t->pool);
    t->ctx = ctx;
    if (s == QKV_OK && !ctx && (s = qkv_context_new(NULL, &t->own_ctx)) == QKV_OK)
        t->ctx = t->own_ctx;
    if (s != QKV_OK)
        ;
    else if (S_ISDIR(sb.st_mode))
        s = load_marian(t, path);
    else
        s = load_checkpoint(t, path);
    if (s != QKV_OK) {
        qkv_translator_free(t);
        return s;
    }
    *out = t;
    return QKV_OK;
}

static int blank(const char *s)
{
    for (; *s; s++)
        if (!isspace((unsigned char)*s))
            return 0;
    return 1;
}

qkv_status translator_encode_source(const qkv_translator *t, const char *text, int **ids, int *n, int *truncated)
{
    *ids = NULL;
    *n = 0;
    *truncated = 0;
    if (blank(text))
        return QKV_OK;
    const qkv_model_config *c = qkv_model_get_config(t->model);
    int *raw;
    size_t len;
    if (t->tok) {
        QKV_TRY(qkv_tokenizer_encode_source(t->tok, text, strlen(text), &raw, &len));
        if (len > 0 && raw[len - 1] == c->eos_id)
            len--; /* put back below, after the cut */
    } else {
        QKV_TRY(qkv_vocab_encode(t->src_vocab, text, strlen(text), &raw, &len, NULL));
    }
    /* keep the first max_positions - 1 pieces and EOS */
    int maxp = c->max_positions;
    size_t keep = len + 1 > (size_t)maxp ? (size_t)maxp - 1 : len;
    int *o = malloc((keep + 1) * sizeof(int));
    if (!o) {
        free(raw);
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    }
    if (keep)
        memcpy(o, raw, keep * sizeof(int));
    o[keep] = c->eos_id;
    *truncated = (int)(len - keep);
    free(raw);
    for (size_t i = 0; i <= keep; i++)
        if (o[i] < 0 || o[i] >= c->src_vocab_size) {
            int bad = o[i];
            free(o);
            return qkv_fail(QKV_ERR_FORMAT, "source id %d outside the model's vocabulary [0, %d)", bad,
                            c->src_vocab_size);
        }
    *ids = o;
    *n = (int)keep + 1;
    return QKV_OK;
}

qkv_status translator_encode_target(const qkv_translator *t, const char *text, int **ids, int *n)
{
    const qkv_model_config *c = qkv_model_get_config(t->model);
    int *raw;
    size_t len;
    if (t->tok) {
        QKV_TRY(qkv_tokenizer_encode_target(t->tok, text, strlen(text), &raw, &len));
        if (len > 0 && raw[len - 1] == c->eos_id)
            len--;
    } else {
        QKV_TRY(qkv_vocab_encode(t->tgt_vocab, text, strlen(text), &raw, &len, NULL));
    }
    for (size_t i = 0; i < len; i++)
        if (raw[i] < 0 || raw[i] >= c->tgt_vocab_size) {
            int bad = raw[i];
            free(raw);
            return qkv_fail(QKV_ERR_FORMAT, "target id %d outside the model's vocabulary [0, %d)", bad,
                            c->tgt_vocab_size);
        }
    *ids = raw;
    *n = (int)len;
    return QKV_OK;
}

qkv_status translator_decode_target(const qkv_translator *t, const int *ids, int n, char **text)
{
    if (t->tok)
        return qkv_tokenizer_decode_target(t->tok, ids, (size_t)n, text, NULL);
    /* ids past the vocabulary (the extra pad id of a qkv model) are skipped */
    int *keep = malloc((size_t)(n > 0 ? n : 1) * sizeof(int)), k = 0, V = qkv_vocab_size(t->tgt_vocab);
    if (!keep)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] < V)
            keep[k++] = ids[i];
    size_t len;
    qkv_status s = qkv_vocab_decode(t->tgt_vocab, keep, (size_t)k, text, &len);
    free(keep);
    return s;
}

char *translator_piece(const qkv_translator *t, int src, int id)
{
    const char *p = NULL;
    char tmp[32];
    if (t->tok) {
        if (!src || qkv_tokenizer_shared_vocab(t->tok))
            p = qkv_tokenizer_target_piece(t->tok, id);
    } else {
        p = qkv_vocab_piece(src ? t->src_vocab : t->tgt_vocab, id);
    }
    if (!p && id == qkv_model_get_config(t->model)->pad_id)
        p = "<pad>";
    if (!p) {
        snprintf(tmp, sizeof tmp, "#%d", id);
        p = tmp;
    }
    return strdup(p);
}

/* ---- forced decoding: scores and cross-attention ------------------------- */

typedef struct {
    const int *src;
    int n_src;
    const int *tgt; /* generated ids, EOS included when it ended */
    int n_tgt;
} pair_ref;

/* The padded shape of pairs pr[0..B): sources of S tokens, decoder inputs
 * of T positions (the prompt, then every target token but the last). */
static qkv_status pairs_shape(const pair_ref *pr, int B, int prompt_len, const qkv_model_config *cfg, int *S,
                              int *T)
{
    *S = *T = 1;
    for (int b = 0; b < B; b++) {
        if (pr[b].n_src > *S)
            *S = pr[b].n_src;
        if (prompt_len - 1 + pr[b].n_tgt > *T)
            *T = prompt_len - 1 + pr[b].n_tgt;
    }
    if (*T > cfg->max_positions)
        return qkv_fail(QKV_ERR_ARG, "translate: target of %d tokens exceeds max_positions %d", *T,
                        cfg->max_positions);
    return QKV_OK;
}

/* src [B, S]: the pairs' sources padded with pad_id; sl [B]: their lengths. */
static void pairs_sources(int *src, int *sl, const pair_ref *pr, int B, int S, int pad_id)
{
    for (int b = 0; b < B; b++) {
        for (int j = 0; j < S; j++)
            src[(size_t)b * S + j] = j < pr[b].n_src ? pr[b].src[j] : pad_id;
        sl[b] = pr[b].n_src;
    }
}

/* Runs the decoder over target prefixes [prompt, tgt[0..n-1)) of a batch of
 * pairs; fills logprob[i] (sum of log P(tgt[j]) of the raw model, j >=
 * 0) and, when attn is not NULL, attn[i] = [L][H][n_tgt][n_src]. */
static qkv_status force_decode(const qkv_translator *t, const pair_ref *pr, int n, const int *prompt,
                               int prompt_len, int batch, double *logprob, float **attn)
{
    const qkv_model *m = t->model;
    const qkv_model_config *cfg = qkv_model_get_config(m);
    int V = cfg->tgt_vocab_size, L = cfg->decoder_layers, H = cfg->decoder_heads;
    qkv_status st = QKV_OK;
    for (int i0 = 0; i0 < n && st == QKV_OK; i0 += batch) {
        int B = n - i0 < batch ? n - i0 : batch, S, T;
        QKV_TRY(pairs_shape(pr + i0, B, prompt_len, cfg, &S, &T));
        int *src = calloc((size_t)B * S, sizeof(int)), *sl = calloc((size_t)B, sizeof(int));
        int *tin = calloc((size_t)B * T, sizeof(int)), *tl = calloc((size_t)B, sizeof(int));
        model_state *ms = NULL;
        if (!src || !sl || !tin || !tl)
            st = qkv_fail(QKV_ERR_NOMEM, "out of memory");
        if (st == QKV_OK)
            pairs_sources(src, sl, pr + i0, B, S, cfg->pad_id);
        for (int b = 0; st == QKV_OK && b < B; b++) {
            const pair_ref *p = &pr[i0 + b];
            /* decoder input: the prompt, then every target token but the last */
            int len = prompt_len - 1 + p->n_tgt;
            for (int j = 0; j < T; j++) {
                int v = cfg->pad_id;
                if (j < prompt_len)
                    v = prompt[j];
                else if (j < len)
                    v = p->tgt[j - prompt_len];
                tin[(size_t)b * T + j] = v < V ? v : cfg->eos_id;
            }
            tl[b] = len > 0 ? len : 1;
        }
        const float *logits = NULL;
        if (st == QKV_OK)
            st = attn ? model_state_new(m, B, S, T, 0, &ms) : model_state_new_forward(m, B, S, T, &ms);
        if (st == QKV_OK)
            st = model_encode(ms, src, sl, B, S);
        if (st == QKV_OK)
            st = model_decode_logits(ms, tin, tl, T, &logits);
        for (int b = 0; st == QKV_OK && b < B; b++) {
            const pair_ref *p = &pr[i0 + b];
            double sum = 0;
            for (int j = 0; j < p->n_tgt; j++) {
                const float *row = logits + ((size_t)b * T + prompt_len - 1 + j) * V;
                sum += row[p->tgt[j]] - search_logsumexp(row, V);
            }
            if (logprob)
                logprob[i0 + b] = sum;
            if (!attn)
                continue;
            int nt = p->n_tgt, ns = p->n_src;
            float *a = malloc(((size_t)L * H * nt * ns + 1) * sizeof(float));
            if (!a) {
                st = qkv_fail(QKV_ERR_NOMEM, "out of memory");
                break;
            }
            for (int l = 0; l < L; l++) {
                const float *pa = model_attention(ms, ATTN_DECODER_CROSS, l); /* [B, H, T, S] */
                for (int h = 0; h < H; h++)
                    for (int q = 0; q < nt; q++)
                        memcpy(a + (((size_t)l * H + h) * nt + q) * ns,
                               pa + (((size_t)b * H + h) * T + prompt_len - 1 + q) * S, (size_t)ns * sizeof(float));
            }
            attn[i0 + b] = a;
        }
        model_state_free(ms);
        free(src);
        free(sl);
        free(tin);
        free(tl);
    }
    return st;
}

static void translation_clear(qkv_translation *r)
{
    for (int j = 0; j < r->n_hyps; j++) {
        free(r->hyps[j].text);
        free(r->hyps[j].ids);
    }
    free(r->hyps);
    for (int j = 0; r->src_tokens && j < r->n_src; j++)
        free(r->src_tokens[j]);
    for (int j = 0; r->tgt_tokens && j < r->n_tgt; j++)
        free(r->tgt_tokens[j]);
    free(r->src_tokens);
    free(r->tgt_tokens);
    free(r->attention);
    memset(r, 0, sizeof *r);
}

void qkv_translations_free(qkv_translation *r, int n)
{
    if (!r)
        return;
    for (int i = 0; i < n; i++)
        translation_clear(&r[i]);
    free(r);
}

/* Fills the attention fields of out[i] for the pairs (sources, tgt_ids). */
static qkv_status add_attention(const qkv_translator *t, qkv_translation *out, int n, int *const *src,
                                const int *src_len, int *const *tgt, const int *tgt_len, const search_params *p,
                                int batch)
{
    pair_ref *pr = calloc((size_t)(n > 0 ? n : 1), sizeof *pr);
    int *idx = malloc((size_t)(n > 0 ? n : 1) * sizeof(int)), k = 0;
    float **attn = calloc((size_t)(n > 0 ? n : 1), sizeof(float *));
    qkv_status st = QKV_OK;
    if (!pr || !idx || !attn)
        st = qkv_fail(QKV_ERR_NOMEM, "out of memory");
    for (int i = 0; st == QKV_OK && i < n; i++)
        if (src_len[i] > 0 && tgt_len[i] > 0) {
            pr[k] = (pair_ref){src[i], src_len[i], tgt[i], tgt_len[i]};
            idx[k++] = i;
        }
    if (st == QKV_OK)
        st = force_decode(t, pr, k, p->prompt, p->prompt_len, batch, NULL, attn);
    const qkv_model_config *cfg = qkv_model_get_config(t->model);
    for (int j = 0; j < k; j++) {
        qkv_translation *r = &out[idx[j]];
        r->attention = attn[j];
        attn[j] = NULL;
        if (st != QKV_OK)
            continue;
        r->n_layers = cfg->decoder_layers;
        r->n_heads = cfg->decoder_heads;
        r->n_src = pr[j].n_src;
        r->n_tgt = pr[j].n_tgt;
        r->src_tokens = calloc((size_t)r->n_src, sizeof(char *));
        r->tgt_tokens = calloc((size_t)r->n_tgt, sizeof(char *));
        if (!r->src_tokens || !r->tgt_tokens) {
            st = qkv_fail(QKV_ERR_NOMEM, "out of memory");
            continue;
        }
        for (int q = 0; q < r->n_src; q++)
            r->src_tokens[q] = translator_piece(t, 1, pr[j].src[q]);
        for (int q = 0; q < r->n_tgt; q++)
            r->tgt_tokens[q] = translator_piece(t, 0, pr[j].tgt[q]);
    }
    for (int j = 0; j < k; j++)
        free(attn[j]);
    free(attn);
    free(pr);
    free(idx);
    return st;
}

/* Sources of n texts; *trunc[i] tokens dropped. */
static qkv_status encode_sources(const qkv_translator *t, const char *const *texts, int n, int **src, int *len,
                                 int *trunc)
{
    for (int i = 0; i < n; i++) {
        qkv_status s = translator_encode_source(t, texts[i] ? texts[i] : "", &src[i], &len[i], &trunc[i]);
        if (s != QKV_OK)
            return qkv_fail_context(s, "line %d", i + 1);
    }
    return QKV_OK;
}

static void free_id_lists(int **v, int n)
{
    for (int i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static qkv_status translate_impl(const qkv_translator *t, const char *const *texts, int n,
                                 const qkv_translate_options *o, qkv_translation **out)
{
    *out = NULL;
    if (n < 0)
        return qkv_fail(QKV_ERR_ARG, "qkv_translate: n = %d", n);
    QKV_TRY(qkv_translate_validate_options(o));
    int *prefix = NULL, n_prefix = 0;
    if (o->target_prefix && o->target_prefix[0])
        QKV_TRY(translator_encode_target(t, o->target_prefix, &prefix, &n_prefix));
    search_params p;
    int *owned = NULL;
    qkv_status st = translator_resolve(t, o, prefix, n_prefix, &p, &owned);
    free(prefix);
    QKV_TRY(st);
    size_t nn = (size_t)(n > 0 ? n : 1);
    int **src = calloc(nn, sizeof(int *)), *len = calloc(nn, sizeof(int)), *trunc = calloc(nn, sizeof(int));
    int **best = calloc(nn, sizeof(int *)), *best_len = calloc(nn, sizeof(int));
    search_result *res = calloc(nn, sizeof *res);
    qkv_translation *r = calloc(nn, sizeof *r);
    if (!src || !len || !trunc || !res || !r || !best || !best_len)
        st = qkv_fail(QKV_ERR_NOMEM, "out of memory");
    if (st == QKV_OK)
        st = encode_sources(t, texts, n, src, len, trunc);
    if (st == QKV_OK)
        st = translator_search(t, &p, (const int *const *)src, len, n, res);
    for (int i = 0; st == QKV_OK && i < n; i++) {
        r[i].truncated = trunc[i];
        r[i].hyps = calloc((size_t)(res[i].n_hyps > 0 ? res[i].n_hyps : 1), sizeof(qkv_hypothesis));
        if (!r[i].hyps) {
            st = qkv_fail(QKV_ERR_NOMEM, "out of memory");
            break;
        }
        r[i].n_hyps = res[i].n_hyps;
        for (int j = 0; j < res[i].n_hyps && st == QKV_OK; j++) {
            search_hyp *h = &res[i].hyps[j];
            qkv_hypothesis *q = &r[i].hyps[j];
            q->ids = h->ids;
            q->n_ids = h->n;
            h->ids = NULL;
            q->ended = h->ended;
            q->logprob = h->logprob;
            q->score = h->score;
            st = translator_decode_target(t, q->ids, q->n_ids, &q->text);
        }
        if (o->attention && r[i].n_hyps > 0 && st == QKV_OK) {
            qkv_hypothesis *q = &r[i].hyps[0];
            best_len[i] = q->n_ids + q->ended;
            best[i] = malloc((size_t)(best_len[i] + 1) * sizeof(int));
            if (!best[i]) {
                st = qkv_fail(QKV_ERR_NOMEM, "out of memory");
                break;
            }
            memcpy(best[i], q->ids, (size_t)q->n_ids * sizeof(int));
            if (q->ended)
                best[i][q->n_ids] = qkv_model_get_config(t->model)->eos_id;
        }
    }
    if (st == QKV_OK && o->attention)
        st = add_attention(t, r, n, src, len, best, best_len, &p, o->batch_size);
    search_results_free(res, n);
    free(res);
    free_id_lists(src, n);
    free_id_lists(best, n);
    free(len);
    free(trunc);
    free(best_len);
    free(owned);
    if (st != QKV_OK) {
        qkv_translations_free(r, n);
        return st;
    }
    *out = r;
    return QKV_OK;
}

/* Forced decoding in a lower compute type: the incremental decoder (whose
 * linear layers have the typed weights) fed the reference one token per
 * step, summing log p(gold). Rows that have ended keep stepping on padding;
 * their logits are not read. */
static qkv_status force_decode_typed(const qkv_translator *t, const pair_ref *pr, int n, const int *prompt,
                                     int prompt_len, int batch, int wtype, double *logprob)
{
    const qkv_model *m = t->model;
    const qkv_model_config *cfg = qkv_model_get_config(m);
    int V = cfg->tgt_vocab_size;
    const model_decoder_weights *w;
    QKV_TRY(translator_weights(t, wtype, &w));
    qkv_status st = QKV_OK;
    for (int i0 = 0; i0 < n && st == QKV_OK; i0 += batch) {
        int B = n - i0 < batch ? n - i0 : batch, S, T;
        QKV_TRY(pairs_shape(pr + i0, B, prompt_len, cfg, &S, &T));
        int *src = calloc((size_t)B * S, sizeof(int)), *sl = calloc((size_t)B, sizeof(int));
        int *in = calloc((size_t)B, sizeof(int));
        double *sum = calloc((size_t)B, sizeof(double));
        model_state *ms = NULL;
        model_decoder_cache *cache = NULL;
        if (!src || !sl || !in || !sum)
            st = qkv_fail(QKV_ERR_NOMEM, "out of memory");
        if (st == QKV_OK)
            pairs_sources(src, sl, pr + i0, B, S, cfg->pad_id);
        if (st == QKV_OK)
            st = model_state_new_forward(m, B, S, 1, &ms);
        if (st == QKV_OK)
            st = model_encode_typed(ms, w, src, sl, B, S);
        if (st == QKV_OK)
            st = model_cache_new_shared(w, B, S, T, &cache);
        if (st == QKV_OK)
            st = model_cache_start(cache, model_encoder_output(ms), sl, B, S);
        /* step j reads input token j (the prompt, then the reference) and
         * predicts token j + 1 */
        for (int j = 0; st == QKV_OK && j < T; j++) {
            for (int b = 0; b < B; b++) {
                const pair_ref *p = &pr[i0 + b];
                int v = j < prompt_len ? prompt[j] : j < prompt_len - 1 + p->n_tgt ? p->tgt[j - prompt_len] : cfg->pad_id;
                in[b] = v < V ? v : cfg->eos_id;
            }
            const float *logits;
            st = model_decode_step(cache, in, &logits);
            for (int b = 0; st == QKV_OK && b < B; b++) {
                const pair_ref *p = &pr[i0 + b];
                int g = j - (prompt_len - 1); /* the reference token this step predicts */
                if (g >= 0 && g < p->n_tgt) {
                    const float *row = logits + (size_t)b * V;
                    sum[b] += row[p->tgt[g]] - search_logsumexp(row, V);
                }
            }
        }
        for (int b = 0; st == QKV_OK && b < B; b++)
            logprob[i0 + b] = sum[b];
        model_cache_free(cache);
        model_state_free(ms);
        free(src);
        free(sl);
        free(in);
        free(sum);
    }
    return st;
}

static qkv_status score_impl(const qkv_translator *t, const char *const *src_text, const char *const *tgt_text,
                             int n, const qkv_translate_options *o, double *logprob, int *n_tokens,
                             qkv_translation **out)
{
    if (out)
        *out = NULL;
    qkv_translate_options def = qkv_translate_default_options();
    if (!o)
        o = &def;
    QKV_TRY(qkv_translate_validate_options(o));
    search_params p;
    int *owned = NULL;
    QKV_TRY(translator_resolve(t, o, NULL, 0, &p, &owned));
    size_t nn = (size_t)(n > 0 ? n : 1);
    int **src = calloc(nn, sizeof(int *)), *len = calloc(nn, sizeof(int)), *trunc = calloc(nn, sizeof(int));
    int **tgt = calloc(nn, sizeof(int *)), *tlen = calloc(nn, sizeof(int));
    pair_ref *pr = calloc(nn, sizeof *pr);
    double *lp = calloc(nn, sizeof(double));
    qkv_translation *r = out ? calloc(nn, sizeof *r) : NULL;
    qkv_status st = QKV_OK;
    if (!src || !len || !trunc || !tgt || !tlen || !pr || !lp || (out && !r))
        st = qkv_fail(QKV_ERR_NOMEM, "out of memory");
    if (st == QKV_OK)
        st = encode_sources(t, src_text, n, src, len, trunc);
    int eos = qkv_model_get_config(t->model)->eos_id;
    int k = 0, *idx = malloc(nn * sizeof(int));
    if (!idx && st == QKV_OK)
        st = qkv_fail(QKV_ERR_NOMEM, "out of memory");
    for (int i = 0; st == QKV_OK && i < n; i++) {
        int *ids, m;
        if ((st = translator_encode_target(t, tgt_text[i] ? tgt_text[i] : "", &ids, &m)) != QKV_OK)
            break;
        tgt[i] = realloc(ids, (size_t)(m + 1) * sizeof(int));
        if (!tgt[i]) {
            free(ids);
            st = qkv_fail(QKV_ERR_NOMEM, "out of memory");
            break;
        }
        int maxp = qkv_model_get_config(t->model)->max_positions;
        if (m + 1 > maxp) {
            trunc[i] += m + 1 - maxp;
            m = maxp - 1;
        }
        tgt[i][m] = eos;
        tlen[i] = m + 1;
        if (n_tokens)
            n_tokens[i] = len[i] > 0 ? tlen[i] : 0;
        logprob[i] = 0;
        if (len[i] > 0) {
            pr[k] = (pair_ref){src[i], len[i], tgt[i], tlen[i]};
            idx[k++] = i;
        }
    }
    if (st == QKV_OK && p.weight_type == QLIN_F32)
        st = force_decode(t, pr, k, p.prompt, p.prompt_len, o->batch_size, lp, NULL);
    else if (st == QKV_OK)
        st = force_decode_typed(t, pr, k, p.prompt, p.prompt_len, o->batch_size, p.weight_type, lp);
    for (int j = 0; st == QKV_OK && j < k; j++)
        logprob[idx[j]] = lp[j];
    if (st == QKV_OK && out) {
        for (int i = 0; i < n; i++)
            r[i].truncated = trunc[i];
        if (o->attention)
            st = add_attention(t, r, n, src, len, tgt, tlen, &p, o->batch_size);
    }
    free_id_lists(src, n);
    free_id_lists(tgt, n);
    free(len);
    free(trunc);
    free(tlen);
    free(pr);
    free(lp);
    free(idx);
    free(owned);
    if (st != QKV_OK) {
        qkv_translations_free(r, n);
        return st;
    }
    if (out)
        *out = r;
    return QKV_OK;
}

/* The public calls run their kernels on the translator's context, bound to
 * the calling thread for the call (base/context.h). */
qkv_status qkv_translate(const qkv_translator *t, const char *const *texts, int n, const qkv_translate_options *o,
                         qkv_translation **out)
{
    qkv_context *prev = ctx_bind(t->ctx);
    qkv_status s = translate_impl(t, texts, n, o, out);
    ctx_bind(prev);
    return s;
}

qkv_status qkv_translate_score(const qkv_translator *t, const char *const *src_text, const char *const *tgt_text,
                               int n, const qkv_translate_options *o, double *logprob, int *n_tokens,
                               qkv_translation **out)
{
    qkv_context *prev = ctx_bind(t->ctx);
    qkv_status s = score_impl(t, src_text, tgt_text, n, o, logprob, n_tokens, out);
    ctx_bind(prev);
    return s;
}
