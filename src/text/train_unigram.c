/* Unigram language-model vocabulary training, after sentencepiece's
 * unigram_model_trainer.cc (Kudo 2018):
 *
 *   seeds     every character, plus the substrings that a suffix tree of the
 *             text has as internal nodes (occurring twice or more, and
 *             followed by at least two different characters), scored
 *             frequency x length, the best seed_pieces kept; log-normalized.
 *   EM        E: forward-backward over each distinct word's lattice, expected
 *             counts weighted by the word's count. M: the Bayesian (digamma)
 *             update, pieces expected fewer than 0.5 times dropped.
 *   pruning   each piece's loss of likelihood if removed (its occurrences
 *             re-segmented by its best alternative); the best
 *             max(1.1 vocab_size, shrinking_factor x size) kept.
 *   final     required characters always, then the highest scores up to
 *             vocab_size; scores are the final log-probabilities.
 *
 * The seeds are made in train_seeds.c, the lattices in train_lattice.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#ifdef _OPENMP
#include <omp.h>
#endif
#include "text/train_lattice.h"


/* ---- EM ------------------------------------------------------------------ */

static double digamma(double x)
{
    double r = 0;
    for (; x < 7; ++x)
        r -= 1 / x;
    x -= 0.5;
    double xx = 1 / x, xx2 = xx * xx, xx4 = xx2 * xx2;
    return r + log(x) + xx2 / 24 - 7.0 / 960 * xx4 + 31.0 / 8064 * xx4 * xx2 - 127.0 / 30720 * xx4 * xx4;
}

/* Expected count of every piece over all words (each thread accumulates its
 * own fixed-point array; the sums are exact, so any thread count gives the
 * same counts). Returns 0 when out of memory. */
static int e_step(const ulm_pieces *p, const train_corpus *c, double *expected, double *objective)
{
    const train_words *w = &c->words;
    int nt = c->opt->threads, np = p->set.n, fail = 0;
    int64_t *acc = calloc((size_t)nt * (size_t)np, sizeof *acc);
    double *obj = calloc((size_t)nt, sizeof *obj);
    if (!acc || !obj) {
        free(acc);
        free(obj);
        return 0;
    }
    double total = 0;
    for (int i = 0; i < w->n; i++)
        total += (double)w->freq[i];
#pragma omp parallel num_threads(nt) reduction(| : fail)
    {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        ulm_lattice l = {0};
        int64_t *mine = acc + (size_t)t * (size_t)np;
#pragma omp for schedule(dynamic, 64)
        for (int i = 0; i < w->n; i++) {
            int len = (int)(w->offset[i + 1] - w->offset[i]);
            if (!ulm_word_lattice(&l, p, w, i)) {
                fail = 1;
                continue;
            }
            double z = ulm_lattice_marginal(&l, len, (double)w->freq[i], mine);
            obj[t] -= z * (double)w->freq[i] / total;
        }
        ulm_lattice_free(&l);
    }
    *objective = 0;
    for (int t = 0; t < nt; t++)
        *objective += obj[t];
    for (int k = 0; k < np; k++) {
        int64_t sum = 0;
        for (int t = 0; t < nt; t++)
            sum += acc[(size_t)t * (size_t)np + k];
        expected[k] = (double)sum / EXPECTED_ONE;
    }
    free(acc);
    free(obj);
    return !fail;
}

static qkv_status m_step(ulm_pieces *p, const double *expected)
{
    int np = p->set.n, n = 0;
    int *keep = malloc(((size_t)np + 1) * sizeof *keep);
    double *score = malloc(((size_t)np + 1) * sizeof *score);
    if (!keep || !score) {
        free(keep);
        free(score);
        return qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory");
    }
    double sum = 0;
    for (int i = 0; i < np; i++) {
        if (expected[i] < 0.5) /* sentencepiece's kExpectedFrequencyThreshold */
            continue;
        keep[n] = i;
        score[n++] = expected[i];
        sum += expected[i];
    }
    /* the variational-Bayes (Dirichlet-process) update: a sparse prior */
    double logsum = digamma(sum);
    for (int i = 0; i < n; i++)
        score[i] = digamma(score[i]) - logsum;
    qkv_status st = ulm_pieces_select(p, keep, score, n);
    free(keep);
    free(score);
    return st;
}

typedef struct {
    int piece;
    double loss;
} prune_cand;

static int cmp_loss(const void *a, const void *b)
{
    const prune_cand *x = a, *y = b;
    if (x->loss != y->loss)
        return x->loss > y->loss ? -1 : 1;
    return x->piece < y->piece ? -1 : x->piece > y->piece;
}

static qkv_status prune(ulm_pieces *p, const train_corpus *c, int desired)
{
    const train_words *w = &c->words;
    int np = p->set.n, nt = c->opt->threads, fail = 0;
    /* alternatives: piece i's best segmentation without itself, when the
     * piece itself is its best segmentation */
    int *always_keep = malloc((size_t)np * sizeof *always_keep);
    int *alt = malloc((size_t)np * (size_t)c->opt->max_piece_length * sizeof *alt + 1);
    double *freq = calloc((size_t)nt * (size_t)np, sizeof *freq);
    double *vsums = calloc((size_t)nt, sizeof *vsums);
    prune_cand *cand = malloc((size_t)np * sizeof *cand + 1);
    int *keep = malloc((size_t)np * sizeof *keep + 1);
    double *score = malloc((size_t)np * sizeof *score + 1);
    int *alt_n = calloc((size_t)np, sizeof *alt_n);
    qkv_status st = QKV_OK;
    if (!always_keep || !alt || !freq || !vsums || !cand || !keep || !score || !alt_n) {
        st = qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory pruning %d pieces", np);
        goto done;
    }
    int maxl = c->opt->max_piece_length;
#pragma omp parallel num_threads(nt) reduction(| : fail)
    {
        ulm_lattice l = {0};
#pragma omp for schedule(dynamic, 256)
        for (int i = 0; i < np; i++) {
            const uint32_t *s = train_strset_key(&p->set, i);
            int len = p->set.len[i];
            always_keep[i] = 1;
            if (!ulm_lattice_build(&l, p, s, len, i)) {
                fail = 1;
                continue;
            }
            double best = ulm_lattice_viterbi(&l, len);
            if (best == -INFINITY)
                continue; /* no second segmentation: keep */
            if (best > p->score[i]) { /* split anyway: safe to remove */
                always_keep[i] = 0;
                continue;
            }
            int n = 0, tmp[520];
            for (int j = len; j > 0; j = l.start[l.back[j]])
                tmp[n++] = l.piece[l.back[j]];
            for (int k = 0; k < n && k < maxl; k++)
                alt[(size_t)i * (size_t)maxl + (size_t)k] = tmp[n - 1 - k];
            alt_n[i] = n < maxl ? n : maxl;
        }
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        double *mine = freq + (size_t)t * (size_t)np;
#pragma omp for schedule(dynamic, 64)
        for (int i = 0; i < w->n; i++) {
            int len = (int)(w->offset[i + 1] - w->offset[i]);
            if (!ulm_word_lattice(&l, p, w, i)) {
                fail = 1;
                continue;
            }
            ulm_lattice_viterbi(&l, len);
            vsums[t] += (double)w->freq[i];
            for (int j = len; j > 0; j = l.start[l.back[j]])
                if (l.piece[l.back[j]] >= 0)
                    mine[l.piece[l.back[j]]] += (double)w->freq[i];
        }
        ulm_lattice_free(&l);
    }
    if (fail) {
        st = qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory in a lattice");
        goto done;
    }
    double vsum = 0, sum = 0;
    for (int t = 1; t < nt; t++)
        for (int k = 0; k < np; k++)
            freq[k] += freq[(size_t)t * (size_t)np + k];
    for (int t = 0; t < nt; t++)
        vsum += vsums[t];
    for (int k = 0; k < np; k++)
        sum += freq[k];
    double logsum = log(sum);
    int n_keep = 0, n_cand = 0;
    for (int i = 0; i < np; i++) {
        if (freq[i] == 0 || !always_keep[i])
            continue; /* not on any best path, or always split: removable */
        if (alt_n[i] == 0) {
            keep[n_keep++] = i;
            continue;
        }
        /* removing i moves its count to its alternatives */
        double f = freq[i] / vsum;
        double logprob_sp = log(freq[i]) - logsum;
        double logsum_alt = log(sum + freq[i] * (alt_n[i] - 1));
        double logprob_alt = 0;
        for (int k = 0; k < alt_n[i]; k++) {
            int a = alt[(size_t)i * (size_t)maxl + (size_t)k];
            logprob_alt += log((a >= 0 ? freq[a] : 0) + freq[i]) - logsum_alt;
        }
        cand[n_cand++] = (prune_cand){i, f * (logprob_sp - logprob_alt)};
    }
    qsort(cand, (size_t)n_cand, sizeof *cand, cmp_loss);
    int target = (int)(c->opt->shrinking_factor * np);
    if (target < desired)
        target = desired;
    for (int k = 0; k < n_cand && n_keep < target; k++)
        keep[n_keep++] = cand[k].piece;
    for (int k = 0; k < n_keep; k++)
        score[k] = p->score[keep[k]];
    st = ulm_pieces_select(p, keep, score, n_keep);
done:
    free(always_keep);
    free(alt);
    free(freq);
    free(vsums);
    free(cand);
    free(keep);
    free(score);
    free(alt_n);
    return st;
}

/* ---- final vocabulary --------------------------------------------------------- */

typedef struct {
    char *s;
    double score;
    int id;
} scored;

static int cmp_scored(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return strcmp(x->s, y->s);
}

static qkv_status finalize(train_pieces *out, const ulm_pieces *p, const train_corpus *c)
{
    int want = c->opt->vocab_size - c->n_meta;
    int np = p->set.n;
    scored *all = calloc((size_t)np + 1, sizeof *all);
    scored *fin = malloc(((size_t)want + 1) * sizeof *fin);
    char *in_final = calloc((size_t)np + 1, 1);
    int n_fin = 0;
    qkv_status st = QKV_OK;
    if (!all || !fin || !in_final) {
        st = qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory");
        goto done;
    }
    /* required characters always; those EM dropped get the lowest scores,
     * the rarer the lower (sentencepiece's min_score + k x 0.0001) */
    double penalty = 0;
    for (int i = 0; i < c->n_req; i++) {
        int id = train_strset_find(&p->set, &c->req_chars[i], 1, train_hash(&c->req_chars[i], 1));
        double s;
        if (id >= 0) {
            s = p->score[id];
            in_final[id] = 1;
        } else {
            s = p->min_score + penalty;
            penalty += 0.0001;
        }
        fin[n_fin].s = train_utf8_string(&c->req_chars[i], 1);
        fin[n_fin++].score = s;
        if (!fin[n_fin - 1].s) {
            st = qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory");
            goto done;
        }
    }
    for (int i = 0; i < np; i++) {
        all[i].s = train_utf8_string(train_strset_key(&p->set, i), p->set.len[i]);
        all[i].score = p->score[i];
        all[i].id = i;
        if (!all[i].s) {
            st = qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory");
            np = i + 1;
            goto done;
        }
    }
    qsort(all, (size_t)np, sizeof *all, cmp_scored);
    for (int i = 0; i < np && n_fin < want; i++) {
        if (in_final[all[i].id])
            continue;
        fin[n_fin].s = all[i].s;
        fin[n_fin++].score = all[i].score;
        all[i].s = NULL;
    }
    if (n_fin < want) {
        st = qkv_fail(QKV_ERR_CONFIG,
                      "vocab train: vocabulary size %d is too high for this text: only %d pieces were found "
                      "(with %d special, user-defined and byte pieces); lower --vocab-size to at most %d",
                      c->opt->vocab_size, n_fin, c->n_meta, n_fin + c->n_meta);
        goto done;
    }
    qsort(fin, (size_t)n_fin, sizeof *fin, cmp_scored);
    out->piece = malloc((size_t)n_fin * sizeof *out->piece);
    out->score = malloc((size_t)n_fin * sizeof *out->score);
    if (!out->piece || !out->score) {
        st = qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory");
        goto done;
    }
    for (int i = 0; i < n_fin; i++) {
        out->piece[i] = fin[i].s;
        out->score[i] = (float)fin[i].score;
        fin[i].s = NULL;
    }
    out->n = n_fin;
done:
    for (int i = 0; all && i < np; i++)
        free(all[i].s);
    for (int i = 0; fin && i < n_fin; i++)
        free(fin[i].s);
    free(all);
    free(fin);
    free(in_final);
    return st;
}

qkv_status train_unigram(train_pieces *out, const train_corpus *c)
{
    memset(out, 0, sizeof *out);
    const qkv_vocab_train_options *opt = c->opt;
    int want = opt->vocab_size - c->n_meta;
    if (c->n_req > want)
        return qkv_fail(QKV_ERR_CONFIG,
                        "vocab train: vocabulary size %d is smaller than the %d required characters plus %d "
                        "special, user-defined and byte pieces; raise --vocab-size or lower --character-coverage",
                        opt->vocab_size, c->n_req, c->n_meta);
    ulm_pieces p = {0};
    qkv_status st = train_unigram_seeds(&p.set, &p.score, c);
    if (st == QKV_OK)
        st = ulm_pieces_index(&p);
    if (st == QKV_OK)
        st = ulm_cache_build(&p, c);
    int desired = (int)(opt->vocab_size * 1.1);
    double *expected = NULL;
    for (int round = 0; st == QKV_OK; round++) {
        for (int it = 0; it < opt->em_sub_iterations && st == QKV_OK; it++) {
            double *e = realloc(expected, ((size_t)p.set.n + 1) * sizeof *e);
            if (!e) {
                st = qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory");
                break;
            }
            expected = e;
            double obj = 0;
            if (!e_step(&p, c, expected, &obj)) {
                st = qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory in the E step");
                break;
            }
            st = m_step(&p, expected);
            train_progress(opt, "EM round %d.%d: %d pieces, objective %.4f", round, it, p.set.n, obj);
        }
        if (st != QKV_OK || p.set.n <= desired)
            break;
        st = prune(&p, c, desired);
        if (st == QKV_OK)
            train_progress(opt, "pruned to %d pieces", p.set.n);
    }
    free(expected);
    if (st == QKV_OK)
        st = finalize(out, &p, c);
    ulm_pieces_free(&p);
    return st;
}
