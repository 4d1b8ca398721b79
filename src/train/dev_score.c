#include "train/dev_score.h"

#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "base/status.h"
#include "decode/search.h"
#include "model/model.h"

struct qkv_dev_scorer {
    const qkv_parallel *dev;
    const qkv_vocab *tgt_vocab;
    char **refs; /* reference text of each kept dev pair */
    int n;
    int **src;   /* source ids + EOS */
    int *src_len;
    qkv_bleu_tokenizer tok;
};

static int has_cjk(const char *s)
{
    /* UTF-8 lead bytes 0xE3..0xE9 cover U+3000..U+9FFF (CJK punctuation, kana, ideographs) */
    for (; *s; s++)
        if ((unsigned char)*s >= 0xE3 && (unsigned char)*s <= 0xE9)
            return 1;
    return 0;
}

/* Reads the dev target lines again, keeping those of the pairs the reader
 * kept (pair.line is 1-based). */
qkv_status qkv_dev_scorer_new(qkv_dev_scorer **out, const qkv_parallel *dev, const char *tgt_path,
                              const qkv_vocab *tv, int max_sentences)
{
    *out = NULL;
    qkv_dev_scorer *d = calloc(1, sizeof *d);
    if (!d)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    d->dev = dev;
    d->tgt_vocab = tv;
    d->n = dev->n_pairs < max_sentences ? (int)dev->n_pairs : max_sentences;
    char *text;
    size_t len;
    qkv_status s = qkv_read_file(tgt_path, &text, &len);
    if (s != QKV_OK) {
        free(d);
        return s;
    }
    d->refs = calloc((size_t)d->n, sizeof *d->refs);
    d->src = calloc((size_t)d->n, sizeof *d->src);
    d->src_len = calloc((size_t)d->n, sizeof *d->src_len);
    int64_t line = 1, k = 0, cjk = 0;
    char *p = text;
    while (k < d->n && p < text + len) {
        char *e = strchr(p, '\n');
        if (!e)
            e = text + len;
        if (line == dev->pairs[k].line) {
            size_t n = (size_t)(e - p);
            if (n && p[n - 1] == '\r')
                n--;
            d->refs[k] = strndup(p, n);
            cjk += has_cjk(d->refs[k]);
            const qkv_pair *q = &dev->pairs[k];
            d->src_len[k] = q->src_len + 1;
            d->src[k] = malloc((size_t)d->src_len[k] * sizeof(int));
            memcpy(d->src[k], dev->ids + q->off, (size_t)q->src_len * sizeof(int));
            d->src[k][q->src_len] = dev->src_eos;
            k++;
        }
        line++;
        p = e + 1;
    }
    free(text);
    d->n = (int)k;
    d->tok = cjk * 2 > k ? QKV_TOK_ZH : QKV_TOK_13A;
    *out = d;
    return QKV_OK;
}

void qkv_dev_scorer_free(qkv_dev_scorer *d)
{
    if (!d)
        return;
    for (int i = 0; i < d->n; i++) {
        free(d->refs[i]);
        free(d->src[i]);
    }
    free(d->refs);
    free(d->src);
    free(d->src_len);
    free(d);
}

qkv_status qkv_dev_scorer_score(void *ctx, const qkv_model *m, double *bleu, double *chrf)
{
    qkv_dev_scorer *d = ctx;
    const qkv_model_config *c = qkv_model_get_config(m);
    search_params p;
    memset(&p, 0, sizeof p);
    p.beam_size = p.n_best = 1;
    p.temperature = p.top_p = p.alpha = p.repetition_penalty = 1;
    p.max_length = c->max_positions + 1;
    p.max_length_ratio = 2;
    p.max_length_offset = 10;
    int prompt = c->decoder_start_id;
    p.prompt = &prompt;
    p.prompt_len = 1;
    p.eos_id = c->eos_id;
    p.batch_size = 64;
    search_result *res = calloc((size_t)d->n, sizeof *res);
    char **hyps = calloc((size_t)d->n, sizeof *hyps);
    if (!res || !hyps) {
        free(res);
        free(hyps);
        return QKV_ERR_NOMEM;
    }
    qkv_status s = search_run(m, &p, (const int *const *)d->src, d->src_len, d->n, res);
    for (int i = 0; s == QKV_OK && i < d->n; i++) {
        size_t len;
        const search_hyp *h = res[i].n_hyps ? &res[i].hyps[0] : NULL;
        /* ids beyond the SentencePiece model (an appended pad) decode to nothing */
        int *ids = malloc(((h ? h->n : 0) + 1) * sizeof(int)), n = 0;
        for (int j = 0; h && j < h->n; j++)
            if (h->ids[j] < qkv_vocab_size(d->tgt_vocab))
                ids[n++] = h->ids[j];
        s = qkv_vocab_decode(d->tgt_vocab, ids, (size_t)n, &hyps[i], &len);
        free(ids);
    }
    if (s == QKV_OK) {
        const char *const *refs[1] = {(const char *const *)d->refs};
        qkv_bleu_options bo = qkv_bleu_default_options();
        bo.tokenize = d->tok;
        qkv_bleu_result br;
        qkv_chrf_options co = qkv_chrf_default_options();
        qkv_chrf_result cr;
        s = qkv_bleu((const char *const *)hyps, refs, d->n, 1, &bo, &br);
        if (s == QKV_OK)
            s = qkv_chrf((const char *const *)hyps, refs, d->n, 1, &co, &cr);
        if (s == QKV_OK) {
            *bleu = br.score;
            *chrf = cr.score;
        }
    }
    search_results_free(res, d->n);
    for (int i = 0; i < d->n; i++)
        free(hyps[i]);
    free(hyps);
    return s;
}

