/* chrF and chrF++ as sacreBLEU 2.x computes them (metrics/chrf.py): character
 * n-grams of the line with whitespace removed, optionally word n-grams after
 * splitting punctuation off word edges; per sentence the reference with the
 * best F-score is kept; corpus statistics are summed and the F-score taken
 * from precision and recall averaged over the orders that have both a
 * hypothesis and a reference n-gram ("effective order"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "eval/ngram.h"
#include "eval/tokenize.h"

qkv_chrf_options qkv_chrf_default_options(void)
{
    return (qkv_chrf_options){6, 0, 2, 0, 0, 0};
}

/* n-grams of one line, per order. Keys point into chars and ids. */
typedef struct {
    eval_u32buf chars, ids, text;
    eval_ngram_counter ng[QKV_CHRF_MAX_ORDER];
} chrf_side;

static void side_free(chrf_side *s)
{
    eval_u32_free(&s->chars);
    eval_u32_free(&s->ids);
    eval_u32_free(&s->text);
    for (int n = 0; n < QKV_CHRF_MAX_ORDER; n++)
        eval_ngram_free(&s->ng[n]);
}

/* string.punctuation, as chrF++'s word splitter knows it */
static int is_ascii_punct(uint32_t c)
{
    return c < 0x80 && c > 0x20 && c != 0x7F && !(c >= '0' && c <= '9') && !(c >= 'A' && c <= 'Z') &&
           !(c >= 'a' && c <= 'z');
}

static qkv_status push_word(chrf_side *s, eval_ngram_counter *vocab, const uint32_t *w, size_t len)
{
    int64_t id;
    QKV_TRY(eval_ngram_intern(vocab, w, (int)len, (int64_t)vocab->size, &id));
    return eval_u32_push(&s->ids, (uint32_t)id);
}

/* Fills a side from one line. The vocabulary (word -> id) is shared by the
 * hypothesis and references of a sentence and points into s->text. */
static qkv_status side_fill(chrf_side *s, eval_ngram_counter *vocab, eval_spans *words, const char *line,
                            const qkv_chrf_options *o, const char *what)
{
    eval_u32buf raw = {0};
    s->text.n = s->chars.n = s->ids.n = 0;
    qkv_status st = eval_utf8_decode(&raw, line, what);
    if (st == QKV_OK && o->lowercase)
        st = eval_lower(&s->text, raw.cp, raw.n);
    else
        for (size_t i = 0; i < raw.n && st == QKV_OK; i++)
            st = eval_u32_push(&s->text, raw.cp[i]);
    eval_u32_free(&raw);
    QKV_TRY(st);
    for (size_t i = 0; i < s->text.n; i++)
        if (o->whitespace || !eval_uc_is_space(s->text.cp[i]))
            QKV_TRY(eval_u32_push(&s->chars, s->text.cp[i]));
    for (int n = 1; n <= o->char_order; n++) {
        eval_ngram_clear(&s->ng[n - 1]);
        for (size_t i = 0; i + n <= s->chars.n; i++)
            QKV_TRY(eval_ngram_add(&s->ng[n - 1], s->chars.cp + i, n, 1));
    }
    if (o->word_order <= 0)
        return QKV_OK;
    /* CHRF._remove_punctuation: one punctuation mark split off the end of a
     * word, else off its start ("(hi)" -> "(hi" ")") */
    QKV_TRY(eval_split(words, s->text.cp, s->text.n));
    for (size_t i = 0; i < words->n; i++) {
        const uint32_t *w = s->text.cp + words->w[i].start;
        size_t len = words->w[i].len;
        if (len > 1 && is_ascii_punct(w[len - 1])) {
            QKV_TRY(push_word(s, vocab, w, len - 1));
            QKV_TRY(push_word(s, vocab, w + len - 1, 1));
        } else if (len > 1 && is_ascii_punct(w[0])) {
            QKV_TRY(push_word(s, vocab, w, 1));
            QKV_TRY(push_word(s, vocab, w + 1, len - 1));
        } else {
            QKV_TRY(push_word(s, vocab, w, len));
        }
    }
    for (int n = 1; n <= o->word_order; n++) {
        eval_ngram_counter *c = &s->ng[o->char_order + n - 1];
        eval_ngram_clear(c);
        for (size_t i = 0; i + n <= s->ids.n; i++)
            QKV_TRY(eval_ngram_add(c, s->ids.cp + i, n, 1));
    }
    return QKV_OK;
}

/* CHRF._compute_f_score over stats[3 * order] */
static double f_score(const int64_t *stats, const qkv_chrf_options *o)
{
    int order = o->char_order + o->word_order;
    const double eps = 1e-16;
    int factor = o->beta * o->beta, eff = 0;
    double score = 0.0, avg_prec = 0.0, avg_rec = 0.0;
    for (int i = 0; i < order; i++) {
        int64_t n_hyp = stats[3 * i], n_ref = stats[3 * i + 1], n_match = stats[3 * i + 2];
        double prec = n_hyp > 0 ? (double)n_match / (double)n_hyp : eps;
        double rec = n_ref > 0 ? (double)n_match / (double)n_ref : eps;
        double denom = factor * prec + rec;
        score += denom > 0 ? (1 + factor) * prec * rec / denom : eps;
        if (n_hyp > 0 && n_ref > 0) {
            avg_prec += prec;
            avg_rec += rec;
            eff++;
        }
    }
    if (o->eps_smoothing)
        return 100 * score / order;
    if (eff == 0) {
        avg_prec = avg_rec = 0.0;
    } else {
        avg_prec /= eff;
        avg_rec /= eff;
    }
    if (avg_prec + avg_rec != 0) {
        score = (1 + factor) * avg_prec * avg_rec;
        score /= (factor * avg_prec) + avg_rec;
        return 100 * score;
    }
    return 0.0;
}

/* CHRF._get_match_statistics for one order */
static void match_stats(int64_t *out3, const eval_ngram_counter *h, const eval_ngram_counter *r)
{
    int64_t hyp = 0, ref = 0, match = 0;
    for (size_t e = 0; e < h->cap; e++) {
        if (!h->e[e].seq)
            continue;
        hyp += h->e[e].count;
        int64_t rc = eval_ngram_get(r, h->e[e].seq, (int)h->e[e].n);
        match += h->e[e].count < rc ? h->e[e].count : rc;
    }
    for (size_t e = 0; e < r->cap; e++)
        if (r->e[e].seq)
            ref += r->e[e].count;
    out3[0] = r->size ? hyp : 0; /* no hits counted where the reference has no n-gram of this order */
    out3[1] = ref;
    out3[2] = match;
}

qkv_status qkv_chrf(const char *const *hyps, const char *const *const *refs, int n_sent, int n_refs,
                    const qkv_chrf_options *o, qkv_chrf_result *r)
{
    qkv_chrf_options def = qkv_chrf_default_options();
    if (!o)
        o = &def;
    if (o->char_order < 0 || o->word_order < 0 || o->char_order + o->word_order < 1 ||
        o->char_order + o->word_order > QKV_CHRF_MAX_ORDER || o->beta < 0)
        return qkv_fail(QKV_ERR_CONFIG, "chrF: char_order %d + word_order %d must be 1..%d, beta %d >= 0",
                        o->char_order, o->word_order, QKV_CHRF_MAX_ORDER, o->beta);
    if (n_sent < 0 || n_refs < 1 || !hyps || !refs)
        return qkv_fail(QKV_ERR_ARG, "chrF: need hypotheses and at least one reference stream (n_sent %d, n_refs %d)",
                        n_sent, n_refs);
    memset(r, 0, sizeof *r);
    r->char_order = o->char_order;
    r->word_order = o->word_order;
    r->beta = o->beta;
    int order = o->char_order + o->word_order;

    chrf_side hyp = {0}, *ref = calloc((size_t)n_refs, sizeof *ref);
    eval_ngram_counter vocab = {0};
    eval_spans words = {0};
    qkv_status s = ref ? QKV_OK : qkv_fail(QKV_ERR_NOMEM, "chrF: out of memory");
    int64_t stats[3 * QKV_CHRF_MAX_ORDER], best[3 * QKV_CHRF_MAX_ORDER];
    char what[64];
    for (int i = 0; i < n_sent && s == QKV_OK; i++) {
        int have = 0;
        for (int k = 0; k < n_refs; k++)
            if (!refs[k])
                s = qkv_fail(QKV_ERR_ARG, "chrF: reference stream %d is NULL", k);
            else
                have += refs[k][i] != NULL;
        if (s == QKV_OK && (!hyps[i] || !have))
            s = qkv_fail(QKV_ERR_ARG, "chrF: sentence %d has no %s", i + 1, hyps[i] ? "reference" : "hypothesis");
        if (s != QKV_OK)
            break;
        if (i == 0)
            r->n_refs = have;
        else if (have != r->n_refs)
            r->n_refs = -1;
        eval_ngram_clear(&vocab);
        snprintf(what, sizeof what, "hypothesis %d", i + 1);
        s = side_fill(&hyp, &vocab, &words, hyps[i], o, what);
        double best_f = -1.0;
        for (int k = 0; k < n_refs && s == QKV_OK; k++) {
            if (!refs[k][i])
                continue;
            snprintf(what, sizeof what, "reference %d of sentence %d", k + 1, i + 1);
            s = side_fill(&ref[k], &vocab, &words, refs[k][i], o, what);
            if (s != QKV_OK)
                break;
            for (int n = 0; n < order; n++)
                match_stats(stats + 3 * n, &hyp.ng[n], &ref[k].ng[n]);
            double f = f_score(stats, o);
            if (f > best_f) {
                best_f = f;
                memcpy(best, stats, sizeof stats);
            }
        }
        for (int j = 0; j < 3 * order && s == QKV_OK; j++)
            r->stats[j] += best[j];
    }
    if (n_sent == 0)
        r->n_refs = n_refs;
    side_free(&hyp);
    for (int k = 0; ref && k < n_refs; k++)
        side_free(&ref[k]);
    free(ref);
    eval_ngram_free(&vocab);
    eval_spans_free(&words);
    if (s != QKV_OK)
        return s;
    r->score = f_score(r->stats, o);
    return QKV_OK;
}

int qkv_chrf_format(char *buf, size_t size, const qkv_chrf_result *r, const qkv_chrf_options *o, int signature)
{
    qkv_chrf_options def = qkv_chrf_default_options();
    if (!o)
        o = &def;
    char name[32], sig[256] = "", nrefs[16];
    snprintf(name, sizeof name, "chrF%d%s", o->beta, o->word_order == 1 ? "+" : o->word_order >= 2 ? "++" : "");
    if (o->word_order > 2) {
        size_t at = strlen(name);
        for (int k = 2; k < o->word_order && at + 1 < sizeof name; k++)
            name[at++] = '+', name[at] = 0;
    }
    if (signature) {
        if (r->n_refs < 0)
            snprintf(nrefs, sizeof nrefs, "var");
        else
            snprintf(nrefs, sizeof nrefs, "%d", r->n_refs);
        snprintf(sig, sizeof sig, "|nrefs:%s|case:%s|eff:%s|nc:%d|nw:%d|space:%s|version:qkv-%s", nrefs,
                 o->lowercase ? "lc" : "mixed", o->eps_smoothing ? "no" : "yes", o->char_order, o->word_order,
                 o->whitespace ? "yes" : "no", QKV_VERSION_STRING);
    }
    return snprintf(buf, size, "%s%s = %.2f", name, sig, r->score);
}
