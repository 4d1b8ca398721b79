/* Corpus BLEU as sacreBLEU 2.x computes it (metrics/bleu.py): per sentence,
 * hypothesis n-gram counts clipped by the maximum count over references, the
 * closest reference length (ties to the shorter), summed over the corpus,
 * then smoothed precisions, geometric mean and brevity penalty. Floating
 * point operations follow sacreBLEU's order so the scores agree to the bit
 * on the same libm. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "eval/ngram.h"
#include "eval/tokenize.h"

qkv_bleu_options qkv_bleu_default_options(void)
{
    return (qkv_bleu_options){QKV_TOK_13A, 0, QKV_SMOOTH_EXP, -1.0, 4, 0};
}

/* Per-call scratch, reused across sentences. */
typedef struct {
    eval_spans words;
    eval_ngram_counter vocab; /* word -> id, shared by a sentence's hypothesis and references */
    eval_ngram_counter hyp, ref, one;
    eval_u32buf *ids;   /* [1 + n_refs] word ids of the hypothesis and each reference */
    eval_u32buf *texts; /* [1 + n_refs] their tokenized text */
} bleu_work;

static void work_free(bleu_work *w, int n_refs)
{
    eval_spans_free(&w->words);
    eval_ngram_free(&w->vocab);
    eval_ngram_free(&w->hyp);
    eval_ngram_free(&w->ref);
    eval_ngram_free(&w->one);
    for (int k = 0; k <= n_refs; k++) {
        if (w->ids)
            eval_u32_free(&w->ids[k]);
        if (w->texts)
            eval_u32_free(&w->texts[k]);
    }
    free(w->ids);
    free(w->texts);
}

/* Tokenizes a line into text (kept until the sentence is done, since the
 * vocabulary points into it) and its word ids. */
static qkv_status line_ids(bleu_work *w, eval_u32buf *ids, eval_u32buf *text, const char *line,
                           const qkv_bleu_options *o, const char *what)
{
    QKV_TRY(eval_bleu_preprocess(text, line, o->tokenize, o->lowercase, what));
    QKV_TRY(eval_split(&w->words, text->cp, text->n));
    ids->n = 0;
    for (size_t i = 0; i < w->words.n; i++) {
        int64_t id;
        QKV_TRY(eval_ngram_intern(&w->vocab, text->cp + w->words.w[i].start, (int)w->words.w[i].len,
                                  (int64_t)w->vocab.size, &id));
        QKV_TRY(eval_u32_push(ids, (uint32_t)id));
    }
    return QKV_OK;
}

static qkv_status count_ngrams(eval_ngram_counter *c, const eval_u32buf *ids, int max_order)
{
    for (int n = 1; n <= max_order; n++)
        for (size_t i = 0; i + n <= ids->n; i++)
            QKV_TRY(eval_ngram_add(c, ids->cp + i, n, 1));
    return QKV_OK;
}

static double my_log(double x) { return x == 0.0 ? -9999999999.0 : log(x); }

/* BLEU.compute_bleu */
static void compute_bleu(qkv_bleu_result *r, const qkv_bleu_options *o)
{
    int N = o->max_ngram_order;
    r->bp = 1.0;
    if (r->sys_len < r->ref_len)
        r->bp = r->sys_len > 0 ? exp(1.0 - (double)r->ref_len / (double)r->sys_len) : 0.0;
    r->ratio = r->ref_len ? (double)r->sys_len / (double)r->ref_len : 0.0;
    for (int n = 0; n < QKV_BLEU_MAX_ORDER; n++)
        r->precisions[n] = 0.0;
    r->score = 0.0;
    int any = 0;
    for (int n = 0; n < N; n++)
        any |= r->counts[n] != 0;
    if (!any)
        return;
    double sv = o->smooth_value >= 0 ? o->smooth_value : o->smooth == QKV_SMOOTH_FLOOR ? 0.1 : 1.0;
    double smooth_mteval = 1.0;
    int eff = N;
    for (int n = 1; n <= N; n++) {
        double correct = (double)r->counts[n - 1], total = (double)r->totals[n - 1];
        if (o->smooth == QKV_SMOOTH_ADD_K && n > 1)
            correct += sv, total += sv;
        if (total == 0)
            break;
        if (o->effective_order)
            eff = n;
        if (correct == 0) {
            if (o->smooth == QKV_SMOOTH_EXP) {
                smooth_mteval *= 2;
                r->precisions[n - 1] = 100. / (smooth_mteval * total);
            } else if (o->smooth == QKV_SMOOTH_FLOOR) {
                r->precisions[n - 1] = 100. * sv / total;
            }
        } else {
            r->precisions[n - 1] = 100. * correct / total;
        }
    }
    double sum = 0.0;
    for (int n = 0; n < eff; n++)
        sum += my_log(r->precisions[n]);
    r->score = r->bp * exp(sum / eff);
}

static qkv_status check_args(const char *const *hyps, const char *const *const *refs, int n_sent, int n_refs,
                             const char *fn)
{
    if (n_sent < 0 || n_refs < 1 || !hyps || !refs)
        return qkv_fail(QKV_ERR_ARG, "%s: need hypotheses and at least one reference stream (n_sent %d, n_refs %d)",
                        fn, n_sent, n_refs);
    for (int k = 0; k < n_refs; k++)
        if (!refs[k])
            return qkv_fail(QKV_ERR_ARG, "%s: reference stream %d is NULL", fn, k);
    for (int i = 0; i < n_sent; i++) {
        if (!hyps[i])
            return qkv_fail(QKV_ERR_ARG, "%s: hypothesis %d is NULL", fn, i + 1);
        int have = 0;
        for (int k = 0; k < n_refs; k++)
            have += refs[k][i] != NULL;
        if (!have)
            return qkv_fail(QKV_ERR_ARG, "%s: sentence %d has no reference", fn, i + 1);
    }
    return QKV_OK;
}

/* nrefs of the signature: the count per sentence, or -1 ("var"). */
static int count_refs(const char *const *const *refs, int n_sent, int n_refs)
{
    int nr = 0;
    for (int i = 0; i < n_sent; i++) {
        int have = 0;
        for (int k = 0; k < n_refs; k++)
            have += refs[k][i] != NULL;
        if (i == 0)
            nr = have;
        else if (have != nr)
            return -1;
    }
    return n_sent ? nr : n_refs;
}

qkv_status qkv_bleu(const char *const *hyps, const char *const *const *refs, int n_sent, int n_refs,
                    const qkv_bleu_options *o, qkv_bleu_result *r)
{
    qkv_bleu_options def = qkv_bleu_default_options();
    if (!o)
        o = &def;
    if (o->max_ngram_order < 1 || o->max_ngram_order > QKV_BLEU_MAX_ORDER)
        return qkv_fail(QKV_ERR_CONFIG, "BLEU: max_ngram_order %d (expected 1..%d)", o->max_ngram_order,
                        QKV_BLEU_MAX_ORDER);
    if ((unsigned)o->smooth > QKV_SMOOTH_ADD_K || (unsigned)o->tokenize > QKV_TOK_NONE)
        return qkv_fail(QKV_ERR_CONFIG, "BLEU: unknown smoothing %d or tokenizer %d", (int)o->smooth,
                        (int)o->tokenize);
    QKV_TRY(check_args(hyps, refs, n_sent, n_refs, "BLEU"));
    memset(r, 0, sizeof *r);
    r->max_ngram_order = o->max_ngram_order;
    r->n_refs = count_refs(refs, n_sent, n_refs);
    int N = o->max_ngram_order;

    bleu_work w = {0};
    qkv_status s = QKV_OK;
    w.ids = calloc((size_t)n_refs + 1, sizeof *w.ids);
    w.texts = calloc((size_t)n_refs + 1, sizeof *w.texts);
    if (!w.ids || !w.texts)
        s = qkv_fail(QKV_ERR_NOMEM, "BLEU: out of memory");
    char what[64];
    for (int i = 0; i < n_sent && s == QKV_OK; i++) {
        eval_ngram_clear(&w.vocab);
        eval_ngram_clear(&w.hyp);
        eval_ngram_clear(&w.ref);
        snprintf(what, sizeof what, "hypothesis %d", i + 1);
        s = line_ids(&w, &w.ids[0], &w.texts[0], hyps[i], o, what);
        for (int k = 0; k < n_refs && s == QKV_OK; k++) {
            w.ids[k + 1].n = 0;
            if (!refs[k][i])
                continue;
            snprintf(what, sizeof what, "reference %d of sentence %d", k + 1, i + 1);
            s = line_ids(&w, &w.ids[k + 1], &w.texts[k + 1], refs[k][i], o, what);
        }
        if (s != QKV_OK)
            break;
        int64_t hyp_len = (int64_t)w.ids[0].n, best_len = -1, best_diff = -1;
        for (int k = 0; k < n_refs && s == QKV_OK; k++) {
            if (!refs[k][i])
                continue;
            int64_t len = (int64_t)w.ids[k + 1].n, diff = llabs(hyp_len - len);
            if (best_diff == -1 || diff < best_diff)
                best_diff = diff, best_len = len;
            else if (diff == best_diff && len < best_len)
                best_len = len;
            eval_ngram_clear(&w.one);
            s = count_ngrams(&w.one, &w.ids[k + 1], N);
            for (size_t e = 0; e < w.one.cap && s == QKV_OK; e++)
                if (w.one.e[e].seq)
                    s = eval_ngram_max(&w.ref, w.one.e[e].seq, (int)w.one.e[e].n, w.one.e[e].count);
        }
        if (s == QKV_OK)
            s = count_ngrams(&w.hyp, &w.ids[0], N);
        for (size_t e = 0; e < w.hyp.cap && s == QKV_OK; e++) {
            const eval_ngram_entry *h = &w.hyp.e[e];
            if (!h->seq)
                continue;
            int64_t rc = eval_ngram_get(&w.ref, h->seq, (int)h->n);
            r->totals[h->n - 1] += h->count;
            r->counts[h->n - 1] += h->count < rc ? h->count : rc;
        }
        r->sys_len += hyp_len;
        r->ref_len += best_len;
    }
    work_free(&w, n_refs);
    if (s != QKV_OK)
        return s;
    compute_bleu(r, o);
    return QKV_OK;
}

static const char *smooth_name(qkv_bleu_smooth s)
{
    switch (s) {
    case QKV_SMOOTH_NONE: return "none";
    case QKV_SMOOTH_FLOOR: return "floor";
    case QKV_SMOOTH_ADD_K: return "add-k";
    default: return "exp";
    }
}

int qkv_bleu_format(char *buf, size_t size, const qkv_bleu_result *r, const qkv_bleu_options *o, int signature)
{
    qkv_bleu_options def = qkv_bleu_default_options();
    if (!o)
        o = &def;
    char sig[256] = "", nrefs[16], smooth[32], prec[QKV_BLEU_MAX_ORDER * 12] = "";
    if (signature) {
        if (r->n_refs < 0)
            snprintf(nrefs, sizeof nrefs, "var");
        else
            snprintf(nrefs, sizeof nrefs, "%d", r->n_refs);
        if (o->smooth == QKV_SMOOTH_FLOOR || o->smooth == QKV_SMOOTH_ADD_K)
            snprintf(smooth, sizeof smooth, "%s[%.2f]", smooth_name(o->smooth),
                     o->smooth_value >= 0 ? o->smooth_value : o->smooth == QKV_SMOOTH_FLOOR ? 0.1 : 1.0);
        else
            snprintf(smooth, sizeof smooth, "%s", smooth_name(o->smooth));
        snprintf(sig, sizeof sig, "|nrefs:%s|case:%s|eff:%s|tok:%s|smooth:%s|version:qkv-%s", nrefs,
                 o->lowercase ? "lc" : "mixed", o->effective_order ? "yes" : "no",
                 qkv_bleu_tokenizer_name(o->tokenize), smooth, QKV_VERSION_STRING);
    }
    size_t at = 0;
    for (int n = 0; n < r->max_ngram_order; n++)
        at += snprintf(prec + at, sizeof prec - at, "%s%.1f", n ? "/" : "", r->precisions[n]);
    return snprintf(buf, size, "BLEU%s = %.2f %s (BP = %.3f ratio = %.3f hyp_len = %lld ref_len = %lld)", sig,
                    r->score, prec, r->bp, r->ratio, (long long)r->sys_len, (long long)r->ref_len);
}
