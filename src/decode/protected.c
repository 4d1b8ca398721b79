/* qkv_translate_protected: masking around qkv_translate, and the repair that
 * makes every protected span of a source appear exactly once in its output.
 *
 *   text ─► protect_find/mask ─► qkv_translate ─► per hypothesis (ids):
 *     drop strays and repeats ─► missing? forced decoding with attention of
 *     the masked source and the kept text, insert each missing sentinel
 *     before the target token attending most to it ─► decode ─►
 *     protect_finish: drop placeholders written as text, put crossed tags
 *     back in nesting order, unmask (positional %N$s when the printf
 *     arguments were reordered), check, scrub text that ran into a span
 *
 * Every step is a rule on the ids and the text, so the guarantee holds for
 * any model, good or bad: each span of the source exactly once, no other.
 *
 * Kept outside translator.c: it needs only the translator's public calls
 * and its text side (translator.h). */
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "decode/translator.h"
#include "text/protect.h"

static int sentinel_id(const qkv_vocab *v, int k)
{
    char s[4];
    protect_sentinel(k, s);
    int id = qkv_vocab_piece_to_id(v, s);
    return id >= 0 && id != qkv_vocab_unk_id(v) ? id : -1;
}

int qkv_translator_protects(const qkv_translator *t)
{
    return t && !t->tok && t->src_vocab && t->tgt_vocab && sentinel_id(t->src_vocab, 0) >= 0 &&
           sentinel_id(t->tgt_vocab, 0) >= 0;
}

/* Sentinel index of target id, or -1 (sid: ids of sentinels 0..PROTECT_MAX-1) */
static int which(const int *sid, int id)
{
    for (int k = 0; k < PROTECT_MAX; k++)
        if (sid[k] == id)
            return k;
    return -1;
}

/* Inserts the missing sentinels of ids (by cross-attention of the masked
 * source src and the target text) into *ids. */
static qkv_status insert_missing(const qkv_translator *t, const char *src, const qkv_translate_options *o,
                                 const int *sid, const int *missing, int n_missing, int **ids, int *n_ids,
                                 qkv_protect_stats *st)
{
    char *text = NULL;
    QKV_TRY(translator_decode_target(t, *ids, *n_ids, &text));
    int *tid = NULL, nt = 0;
    qkv_status s = translator_encode_target(t, text, &tid, &nt);
    qkv_translate_options so = *o;
    so.attention = 1;
    double lp;
    qkv_translation *r = NULL;
    const char *tt = text;
    if (s == QKV_OK)
        s = qkv_translate_score(t, &src, &tt, 1, &so, &lp, NULL, &r);
    free(text);
    if (s != QKV_OK) {
        free(tid);
        qkv_translations_free(r, 1);
        return s;
    }
    int *pos = malloc((size_t)n_missing * sizeof(int)), *o2 = malloc((size_t)(nt + n_missing + 1) * sizeof(int));
    if (!pos || !o2) {
        free(pos);
        free(o2);
        free(tid);
        qkv_translations_free(r, 1);
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    }
    const qkv_translation *a = r;
    int T = a->n_tgt, S = a->n_src, LH = a->n_layers * a->n_heads;
    for (int m = 0; m < n_missing; m++) {
        char piece[4];
        protect_sentinel(missing[m], piece);
        int s_at = -1;
        for (int j = 0; j < S && s_at < 0; j++)
            if (a->src_tokens && !strcmp(a->src_tokens[j], piece))
                s_at = j;
        /* a source cut at max_positions may have lost the sentinel: append */
        int best = T > 0 ? T - 1 : 0;
        if (s_at >= 0 && a->attention) {
            double top = -1;
            for (int q = 0; q < T; q++) {
                double sum = 0;
                for (int lh = 0; lh < LH; lh++)
                    sum += a->attention[((size_t)lh * T + q) * S + s_at];
                if (sum > top) {
                    top = sum;
                    best = q;
                }
            }
        }
        pos[m] = best < nt ? best : nt; /* EOS row: after the last token */
    }
    int k = 0;
    for (int q = 0; q <= nt; q++) {
        for (int m = 0; m < n_missing; m++)
            if (pos[m] == q) {
                o2[k++] = sid[missing[m]];
                st->inserted++;
            }
        if (q < nt)
            o2[k++] = tid[q];
    }
    free(pos);
    free(tid);
    qkv_translations_free(r, 1);
    free(*ids);
    *ids = o2;
    *n_ids = k;
    return QKV_OK;
}

/* Repairs and unmasks one hypothesis of text (masked: src). */
static qkv_status repair(const qkv_translator *t, const char *text, const char *src, const protect_spans *sp,
                         const qkv_translate_options *o, const int *sid, qkv_hypothesis *h, qkv_protect_stats *st)
{
    int seen[PROTECT_MAX] = {0}, k = 0, bad = 0;
    int *ids = malloc((size_t)(h->n_ids + 1) * sizeof(int)), n_ids = 0;
    if (!ids)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    for (int j = 0; j < h->n_ids; j++) {
        int w = which(sid, h->ids[j]);
        if (w >= sp->n) {
            st->strays++;
            bad = 1;
            continue;
        }
        if (w >= 0 && seen[w]++) {
            st->duplicates++;
            bad = 1;
            continue;
        }
        ids[n_ids++] = h->ids[j];
    }
    int missing[PROTECT_MAX], n_missing = 0;
    for (k = 0; k < sp->n; k++)
        if (!seen[k])
            missing[n_missing++] = k;
    qkv_status s = QKV_OK;
    if (n_missing)
        s = insert_missing(t, src, o, sid, missing, n_missing, &ids, &n_ids, st);
    char *masked = NULL, *plain = NULL;
    protect_finish_info fi = {0};
    if (s == QKV_OK)
        s = translator_decode_target(t, ids, n_ids, &masked);
    if (s == QKV_OK) {
        if (!(plain = protect_finish(masked, text, sp, &fi)))
            s = qkv_fail(QKV_ERR_NOMEM, "out of memory");
        st->literals += fi.literals;
        st->nested += fi.nested;
        st->reordered += fi.reordered;
        st->scrubbed += fi.scrubbed;
        st->unverified += fi.unverified;
    }
    free(masked);
    if (s != QKV_OK) {
        free(ids);
        return s;
    }
    if (sp->n)
        st->exact += !bad && !n_missing && !fi.literals && !fi.nested && !fi.scrubbed;
    free(h->text);
    h->text = plain;
    free(h->ids);
    h->ids = ids;
    h->n_ids = n_ids;
    return QKV_OK;
}

qkv_status qkv_translate_protected(const qkv_translator *t, const char *const *texts, int n,
                                   const qkv_translate_options *o, qkv_protect_stats *stats,
                                   qkv_translation **out)
{
    *out = NULL;
    if (!qkv_translator_protects(t))
        return qkv_fail(QKV_ERR_ARG, "translate: the model's vocabularies have no sentinel pieces "
                                     "(it was not trained on protected text); use --no-protect");
    if (n < 0)
        return qkv_fail(QKV_ERR_ARG, "qkv_translate_protected: n = %d", n);
    qkv_protect_stats local = {0}, *st = stats ? stats : &local;
    int sid[PROTECT_MAX];
    for (int k = 0; k < PROTECT_MAX; k++)
        sid[k] = sentinel_id(t->tgt_vocab, k);
    size_t nn = (size_t)(n > 0 ? n : 1);
    protect_spans *sp = malloc(nn * sizeof *sp);
    char **masked = calloc(nn, sizeof(char *));
    qkv_status s = QKV_OK;
    if (!sp || !masked)
        s = qkv_fail(QKV_ERR_NOMEM, "out of memory");
    for (int i = 0; s == QKV_OK && i < n; i++) {
        const char *x = texts[i] ? texts[i] : "";
        protect_find(x, strlen(x), &sp[i]);
        if (!(masked[i] = protect_mask(x, &sp[i])))
            s = qkv_fail(QKV_ERR_NOMEM, "out of memory");
        st->lines += sp[i].n > 0;
        st->spans += sp[i].n;
        st->malformed += sp[i].malformed;
        st->overflow += sp[i].overflow;
    }
    qkv_translation *r = NULL;
    if (s == QKV_OK)
        s = qkv_translate(t, (const char *const *)masked, n, o, &r);
    for (int i = 0; s == QKV_OK && i < n; i++)
        for (int j = 0; s == QKV_OK && j < r[i].n_hyps; j++)
            s = repair(t, texts[i] ? texts[i] : "", masked[i], &sp[i], o, sid, &r[i].hyps[j], st);
    for (int i = 0; masked && i < n; i++)
        free(masked[i]);
    free(masked);
    free(sp);
    if (s != QKV_OK) {
        qkv_translations_free(r, n);
        return s;
    }
    *out = r;
    return QKV_OK;
}
