/* The batch driver: sources sorted by length and cut into batches; per
 * batch, the encoder once, the cross-attention keys and values once, then
 * one decoder step per position for every running row (a beam of a
 * sentence, or a sample), only the last position's logits. Rows of a
 * sentence are contiguous; when a sentence (or a greedy/sampled row) ends,
 * its rows leave the running batch and the cache is compacted
 * (model_cache_select), so late steps cost what the long sentences need.
 *
 * Beam search is BeamSearchScorer.process / finalize and BeamHypotheses of
 * transformers 4.39, step for step (see search.h for the conventions). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "decode/search.h"
#include "kernels/kernels.h"
#include "model/model.h"

typedef struct {
    int *ids; /* generated ids after the prompt, EOS excluded */
    int n, ended;
    float logprob;
    double score;
    int order; /* insertion counter: ties resolve as Python's sorted + pop */
} hyp;

typedef struct {
    int src;      /* input index */
    int max_len;  /* max_length for this sentence */
    int done;
    hyp *hyps;    /* beam: at most beam_size; sampling: num_samples */
    int n_hyps, n_added;
    double worst; /* BeamHypotheses.worst_score */
    int first_row, n_rows;
} sentence;

/* Everything a search allocates, kept between calls by a search_state:
 * the buffers are sized by the capacities (cap_*) and grow when a call
 * needs more; a smaller call uses their first part. The fields from p to
 * enc_B are set per call. */
typedef struct {
    const qkv_model *m;
    const search_params *p;
    int V, K, rows_per_sent;
    int Tcap, maxR;      /* = cap_T, cap_R: the row stride of tok and the spare row of x */
    int enc_B;           /* this call's encoder chunk (rows) */
    model_state *enc;    /* encoder workspace for cap_encB rows of cap_S tokens */
    float *enc_out;      /* [cap_B, cap_S, C] encoder outputs of the batch */
    model_decoder_cache *cache;
    const model_decoder_weights *w; /* the state's weights: typed ones run the encoder too */
    /* running rows */
    int R;
    int *tok, *tok_tmp;  /* [maxR, Tcap] sequences, prompt included */
    float *row_score;    /* beam: running beam score; else sum of log-probs */
    int *row_sent;       /* sentence of each row */
    qkv_rng *rng;        /* per row (sampling); NULL when this call does not sample */
    /* step scratch */
    float *x;            /* [maxR, V] processed scores */
    int *in, *parents, *new_tok, *new_sent, *order;
    float *new_score;
    qkv_rng *new_rng;
    float *cand_v;       /* [maxR * 2K] candidates */
    int *cand_i;
    unsigned char *mark;
    sentence *sents;     /* [cap_B] */
    hyp *hyp_store;      /* [cap_B * (cap_nh + 1)] */
    qkv_rng *rng_store, *new_rng_store; /* [cap_R] once a call samples */
} search_ctx;

struct search_state {
    search_ctx c;
    const model_decoder_weights *w; /* shared, or own_w */
    model_decoder_weights *own_w;   /* packed on first use when none was given */
    int cap_R, cap_T, cap_K2, cap_B, cap_nh, cap_rng; /* row buffers */
    int cap_encB, cap_S;                             /* encoder workspace */
    size_t cap_enc_out;                              /* floats of enc_out */
    int cap_cR, cap_cS, cap_cT;                      /* decoder cache */
};

int search_max_length(const qkv_model *m, const search_params *p, int src_len)
{
    int cap = p->max_length;
    if (p->max_length_ratio > 0) {
        int r = (int)floorf(p->max_length_ratio * (float)src_len) + p->max_length_offset + 1;
        if (r < cap)
            cap = r;
    }
    /* the decoder reads positions 0 .. max_length - 2 */
    int pos = qkv_model_get_config(m)->max_positions + 1;
    if (cap > pos)
        cap = pos;
    if (cap < p->prompt_len + 1)
        cap = p->prompt_len + 1; /* room for one generated token */
    return cap;
}

static void hyp_free(hyp *h) { free(h->ids); }

void search_results_free(search_result *r, int n)
{
    if (!r)
        return;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < r[i].n_hyps; j++)
            free(r[i].hyps[j].ids);
        free(r[i].hyps);
        r[i].hyps = NULL;
        r[i].n_hyps = 0;
    }
}

/* BeamHypotheses.add: seq is the row's sequence (prompt included) of
 * seq_len tokens, the generated part starts at prompt_len. */
static qkv_status beam_add(search_ctx *c, sentence *s, const int *seq, int seq_len, int ended, float sum_logprobs,
                           int gen_len)
{
    const search_params *p = c->p;
    double score = sum_logprobs / search_length_penalty(p->lp_kind, p->alpha, gen_len);
    int K = c->K;
    if (!(s->n_hyps < K || score > s->worst))
        return QKV_OK;
    int n = seq_len - p->prompt_len;
    hyp h = {malloc((size_t)(n > 0 ? n : 1) * sizeof(int)), n, ended, sum_logprobs, score, s->n_added++};
    if (!h.ids)
        return qkv_fail(QKV_ERR_NOMEM, "translate: out of memory");
    memcpy(h.ids, seq + p->prompt_len, (size_t)n * sizeof(int));
    s->hyps[s->n_hyps++] = h;
    if (s->n_hyps > K) {
        /* drop the smallest (score, index) as sorted() orders them; the new
         * worst is the second smallest */
        int lo = 0;
        for (int i = 1; i < s->n_hyps; i++)
            if (s->hyps[i].score < s->hyps[lo].score)
                lo = i;
        hyp_free(&s->hyps[lo]);
        memmove(s->hyps + lo, s->hyps + lo + 1, (size_t)(s->n_hyps - lo - 1) * sizeof(hyp));
        s->n_hyps--;
        double w = INFINITY;
        for (int i = 0; i < s->n_hyps; i++)
            if (s->hyps[i].score < w)
                w = s->hyps[i].score;
        s->worst = w;
    } else if (score < s->worst) {
        s->worst = score;
    }
    return QKV_OK;
}

/* BeamHypotheses.is_done; cur_len counts the token being chosen. */
static int beam_is_done(const search_ctx *c, const sentence *s, float best, int cur_len)
{
    const search_params *p = c->p;
    if (s->n_hyps < c->K)
        return 0;
    if (p->early_stopping == QKV_EARLY_STOPPING_TRUE)
        return 1;
    int len = cur_len - p->prompt_len;
    if (p->early_stopping == QKV_EARLY_STOPPING_NEVER && p->alpha > 0)
        len = s->max_len - p->prompt_len;
    return s->worst >= best / search_length_penalty(p->lp_kind, p->alpha, len);
}

/* sorted by score, highest first; equal scores: later insertion first
 * (Python's stable sorted() then pop() from the end) */
static int cmp_hyp(const void *a, const void *b)
{
    const hyp *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return y->order - x->order;
}

static qkv_status sentence_result(const search_ctx *c, sentence *s, search_result *out)
{
    qsort(s->hyps, (size_t)s->n_hyps, sizeof(hyp), cmp_hyp);
    int n = s->n_hyps < c->p->n_best ? s->n_hyps : c->p->n_best;
    out->hyps = calloc((size_t)(n > 0 ? n : 1), sizeof(search_hyp));
    if (!out->hyps)
        return qkv_fail(QKV_ERR_NOMEM, "translate: out of memory");
    for (int i = 0; i < n; i++) {
        hyp *h = &s->hyps[i];
        out->hyps[i] = (search_hyp){h->ids, h->n, h->ended, h->logprob, (float)h->score};
        h->ids = NULL;
    }
    out->n_hyps = n;
    for (int i = 0; i < s->n_hyps; i++)
        hyp_free(&s->hyps[i]);
    s->n_hyps = 0;
    return QKV_OK;
}

/* Appends a running row for the next step. */
static void push_row(search_ctx *c, int *R, int parent, int token, float score, int sent)
{
    int i = (*R)++;
    c->parents[i] = parent;
    c->new_tok[i] = token;
    c->new_score[i] = score;
    c->new_sent[i] = sent;
    if (c->rng)
        c->new_rng[i] = c->rng[parent];
}

/* One beam-search step of sentence s (BeamSearchScorer.process): its rows
 * hold log_softmax(logits) in c->x; t + 1 tokens are in each row. */
static qkv_status beam_step(search_ctx *c, sentence *s, int si, int t, int *newR)
{
    const search_params *p = c->p;
    int V = c->V, K = c->K, K2 = 2 * K, cur_len = t + 1;
    float *cv = c->cand_v;
    int *ci = c->cand_i, nc = 0;
    for (int k = 0; k < s->n_rows; k++) {
        int r = s->first_row + k;
        float *x = c->x + (size_t)r * V;
        search_process_row(x, V, c->tok + (size_t)r * c->Tcap, cur_len, p, s->max_len, c->mark);
        /* the running beam score added in float32, as the torch tensors */
        int got = search_topk_offset(x, V, c->row_score[r], K2, cv + nc, ci + nc);
        for (int j = 0; j < got; j++)
            ci[nc + j] += k * V; /* flat index over the sentence's beams */
        nc += got;
    }
    float top_v[2 * SEARCH_MAX_BEAM];
    int top_i[2 * SEARCH_MAX_BEAM], ntop;
    {
        /* merge: the global top 2K lie among the per-row top 2K; rank by
         * value, ties by flat index (as one topk over [K * V]) */
        int used = 0;
        for (int j = 0; j < K2 && j < nc; j++) {
            int best = -1;
            for (int q = 0; q < nc; q++) {
                if (ci[q] < 0)
                    continue;
                if (best < 0 || cv[q] > cv[best] || (cv[q] == cv[best] && ci[q] < ci[best]))
                    best = q;
            }
            top_v[used] = cv[best];
            top_i[used] = ci[best];
            ci[best] = -1;
            used++;
        }
        ntop = used;
    }
    int beam_idx = 0, first = *newR;
    for (int rank = 0; rank < ntop && beam_idx < K; rank++) {
        int k = top_i[rank] / V, token = top_i[rank] % V, r = s->first_row + k;
        if (token == p->eos_id) {
            if (rank >= K)
                continue;
            const int *seq = c->tok + (size_t)r * c->Tcap;
            QKV_TRY(beam_add(c, s, seq, cur_len, 1, top_v[rank], cur_len + 1 - p->prompt_len));
        } else {
            push_row(c, newR, r, token, top_v[rank], si);
            beam_idx++;
        }
    }
    while (beam_idx < K) { /* fewer than K non-EOS candidates (tiny vocabularies) */
        push_row(c, newR, s->first_row, p->eos_id == 0 ? 1 : 0, -INFINITY, si);
        beam_idx++;
    }
    s->done = s->done || beam_is_done(c, s, ntop > 0 ? top_v[0] : -INFINITY, cur_len + 1);
    if (s->done) {
        *newR = first; /* the sentence leaves the batch */
        return QKV_OK;
    }
    if (cur_len + 1 >= s->max_len) {
        /* BeamSearchScorer.finalize: the open beams compete too */
        for (int i = first; i < *newR; i++) {
            int r = c->parents[i];
            int *seq = c->tok_tmp; /* scratch row: parent's tokens + the new one */
            memcpy(seq, c->tok + (size_t)r * c->Tcap, (size_t)cur_len * sizeof(int));
            seq[cur_len] = c->new_tok[i];
            QKV_TRY(beam_add(c, s, seq, cur_len + 1, 0, c->new_score[i], cur_len + 1 - p->prompt_len));
        }
        s->done = 1;
        *newR = first;
    }
    return QKV_OK;
}

/* Greedy or sampling step of sentence s: each row picks its own token. */
static qkv_status row_step(search_ctx *c, sentence *s, int si, int t, int *newR)
{
    const search_params *p = c->p;
    int V = c->V, cur_len = t + 1;
    for (int k = 0; k < s->n_rows; k++) {
        int r = s->first_row + k;
        float *x = c->x + (size_t)r * V;
        const int *seq = c->tok + (size_t)r * c->Tcap;
        search_process_row(x, V, seq, cur_len, p, s->max_len, c->mark);
        float lse = search_logsumexp(x, V);
        int token;
        if (p->sample) {
            /* the warpers change x; score under the processed distribution */
            float *w = c->x + (size_t)c->maxR * V; /* one spare row */
            memcpy(w, x, (size_t)V * sizeof(float));
            token = search_sample_row(w, V, p, &c->rng[r], c->order);
        } else {
            token = search_argmax(x, V);
        }
        float lp = c->row_score[r] + (x[token] - lse);
        if (token == p->eos_id || cur_len + 1 >= s->max_len) {
            int *seq2 = c->tok_tmp;
            memcpy(seq2, seq, (size_t)cur_len * sizeof(int));
            seq2[cur_len] = token;
            int ended = token == p->eos_id, len = cur_len + 1 - ended;
            /* every sample is kept: s->hyps has num_samples slots */
            int n = len - p->prompt_len;
            hyp h = {malloc((size_t)(n > 0 ? n : 1) * sizeof(int)), n, ended, lp, 0, s->n_added++};
            if (!h.ids)
                return qkv_fail(QKV_ERR_NOMEM, "translate: out of memory");
            memcpy(h.ids, seq2 + p->prompt_len, (size_t)n * sizeof(int));
            h.score = lp / search_length_penalty(p->lp_kind, p->alpha, cur_len + 1 - p->prompt_len);
            s->hyps[s->n_hyps++] = h;
        } else {
            push_row(c, newR, r, token, lp, si);
        }
    }
    if (s->n_hyps == c->rows_per_sent)
        s->done = 1;
    return QKV_OK;
}

/* The row buffers (those sized by cap_R, cap_T, cap_K2, cap_B, cap_nh). */
static void free_rows(search_ctx *c)
{
    free(c->tok);
    free(c->tok_tmp);
    free(c->row_score);
    free(c->row_sent);
    free(c->x);
    free(c->in);
    free(c->parents);
    free(c->new_tok);
    free(c->new_sent);
    free(c->new_score);
    free(c->cand_v);
    free(c->cand_i);
    free(c->sents);
    free(c->hyp_store);
    free(c->rng_store);
    free(c->new_rng_store);
    c->tok = c->tok_tmp = c->row_sent = c->in = c->parents = c->new_tok = c->new_sent = c->cand_i = NULL;
    c->row_score = c->x = c->new_score = c->cand_v = NULL;
    c->sents = NULL;
    c->hyp_store = NULL;
    c->rng_store = c->new_rng_store = NULL;
}

void search_state_free(search_state *s)
{
    if (!s)
        return;
    search_ctx *c = &s->c;
    free_rows(c);
    model_state_free(c->enc);
    free(c->enc_out);
    model_cache_free(c->cache);
    free(c->order);
    free(c->mark);
    model_decoder_weights_free(s->own_w);
    free(s);
}

qkv_status search_state_new(const qkv_model *m, const model_decoder_weights *w, search_state **out)
{
    *out = NULL;
    search_state *s = calloc(1, sizeof *s);
    if (!s)
        return qkv_fail(QKV_ERR_NOMEM, "translate: out of memory");
    s->c.m = m;
    s->c.V = qkv_model_get_config(m)->tgt_vocab_size;
    s->w = w;
    size_t V = (size_t)s->c.V;
    s->c.order = malloc(V * sizeof(int));
    s->c.mark = calloc(V, 1);
    if (!s->c.order || !s->c.mark) {
        search_state_free(s);
        return qkv_fail(QKV_ERR_NOMEM, "translate: out of memory");
    }
    *out = s;
    return QKV_OK;
}

static int imax(int a, int b) { return a > b ? a : b; }

/* Makes the state big enough for a call: B sentences of rows_per_sent rows
 * (maxR = B * rows_per_sent), sources of up to maxS tokens, sequences of
 * up to Tcap tokens, K2 candidates per row, nh hypotheses per sentence,
 * encoder chunks of enc_B rows, rng for sampling. What grows is made anew
 * at the larger of the old and the new size, so alternating shapes settle;
 * what fits is kept (the weights are never repacked). */
static qkv_status search_reserve(search_state *s, int B, int maxR, int maxS, int Tcap, int K2, int nh, int enc_B,
                                 int sample, int wtype)
{
    search_ctx *c = &s->c;
    const qkv_model_config *cfg = qkv_model_get_config(c->m);
    if (maxR > s->cap_R || Tcap > s->cap_T || K2 > s->cap_K2 || B > s->cap_B || nh > s->cap_nh ||
        (sample && maxR > s->cap_rng)) {
        free_rows(c);
        s->cap_R = imax(s->cap_R, maxR);
        s->cap_T = imax(s->cap_T, Tcap);
        s->cap_K2 = imax(s->cap_K2, K2);
        s->cap_B = imax(s->cap_B, B);
        s->cap_nh = imax(s->cap_nh, nh);
        int rng = sample || s->cap_rng; /* sampled before: keep room for it */
        s->cap_rng = 0;
        size_t R = (size_t)s->cap_R, T = (size_t)s->cap_T, V = (size_t)c->V, K = (size_t)s->cap_K2;
        c->tok = malloc(R * T * sizeof(int));
        c->tok_tmp = malloc(R * T * sizeof(int));
        c->row_score = malloc(R * sizeof(float));
        c->row_sent = malloc(R * sizeof(int));
        c->x = malloc((R + 1) * V * sizeof(float));
        c->in = malloc(R * sizeof(int));
        c->parents = malloc(R * sizeof(int));
        c->new_tok = malloc(R * sizeof(int));
        c->new_sent = malloc(R * sizeof(int));
        c->new_score = malloc(R * sizeof(float));
        c->cand_v = malloc(R * K * sizeof(float));
        c->cand_i = malloc(R * K * sizeof(int));
        c->sents = calloc((size_t)s->cap_B, sizeof(sentence));
        c->hyp_store = calloc((size_t)s->cap_B * (s->cap_nh + 1), sizeof(hyp));
        if (rng) {
            c->rng_store = malloc(R * sizeof(qkv_rng));
            c->new_rng_store = malloc(R * sizeof(qkv_rng));
            s->cap_rng = s->cap_R;
        }
        if (!c->tok || !c->tok_tmp || !c->row_score || !c->row_sent || !c->x || !c->in || !c->parents ||
            !c->new_tok || !c->new_sent || !c->new_score || !c->cand_v || !c->cand_i || !c->sents ||
            !c->hyp_store || (s->cap_rng && (!c->rng_store || !c->new_rng_store))) {
            free_rows(c);
            s->cap_R = s->cap_T = s->cap_K2 = s->cap_B = s->cap_nh = s->cap_rng = 0;
            return qkv_fail(QKV_ERR_NOMEM, "translate: out of memory for a batch of %d rows", maxR);
        }
    }
    size_t out_n = (size_t)B * maxS * cfg->d_model;
    if (out_n > s->cap_enc_out) {
        free(c->enc_out);
        c->enc_out = malloc(out_n * sizeof(float));
        s->cap_enc_out = c->enc_out ? out_n : 0;
        if (!c->enc_out)
            return qkv_fail(QKV_ERR_NOMEM, "translate: out of memory for %d encoder outputs of %d tokens", B, maxS);
    }
    if (enc_B > s->cap_encB || maxS > s->cap_S) {
        model_state_free(c->enc);
        c->enc = NULL;
        int eb = imax(s->cap_encB, enc_B), es = imax(s->cap_S, maxS);
        s->cap_encB = s->cap_S = 0;
        QKV_TRY(model_state_new_forward(c->m, eb, es, 1, &c->enc));
        s->cap_encB = eb;
        s->cap_S = es;
    }
    if (!s->w) {
        QKV_TRY(model_decoder_weights_new_typed(c->m, wtype, &s->own_w));
        s->w = s->own_w;
    }
    c->w = s->w;
    if (model_decoder_weights_type(s->w) != wtype)
        return qkv_fail(QKV_ERR_ARG, "translate: a search state packed in compute type %d asked for type %d",
                        model_decoder_weights_type(s->w), wtype);
    if (!c->cache || !model_cache_fits(c->cache, maxR, maxS, Tcap - 1)) {
        model_cache_free(c->cache);
        c->cache = NULL;
        int cr = imax(s->cap_cR, maxR), cs = imax(s->cap_cS, maxS), ct = imax(s->cap_cT, Tcap - 1);
        s->cap_cR = s->cap_cS = s->cap_cT = 0;
        QKV_TRY(model_cache_new_shared(s->w, cr, cs, ct, &c->cache));
        s->cap_cR = cr;
        s->cap_cS = cs;
        s->cap_cT = ct;
    }
    return QKV_OK;
}

static int search_encoder_tokens(const search_params *p)
{
    return p->encoder_tokens > 0 ? p->encoder_tokens : SEARCH_ENCODER_TOKENS;
}

/* Decodes the sentences order[0..nb) (input indices) as one batch. */
static qkv_status run_batch(search_ctx *c, const int *const *src, const int *src_len, const int *order, int nb,
                            sentence *sents, search_result *out)
{
    const search_params *p = c->p;
    int S = 0;
    for (int b = 0; b < nb; b++)
        if (src_len[order[b]] > S)
            S = src_len[order[b]];
    int *src_pad = calloc((size_t)nb * S, sizeof(int)), *lens = malloc((size_t)nb * sizeof(int));
    if (!src_pad || !lens) {
        free(src_pad);
        free(lens);
        return qkv_fail(QKV_ERR_NOMEM, "translate: out of memory");
    }
    int pad = qkv_model_get_config(c->m)->pad_id;
    for (int b = 0; b < nb; b++) {
        int i = order[b];
        lens[b] = src_len[i];
        for (int j = 0; j < S; j++)
            src_pad[(size_t)b * S + j] = j < src_len[i] ? src[i][j] : pad;
    }
    /* the encoder in chunks of at most enc_B rows (its workspace grows with
     * rows x S), outputs gathered into one [nb, S, C] buffer */
    qkv_status st = QKV_OK;
    size_t row = (size_t)S * qkv_model_get_config(c->m)->d_model;
    int chunk = search_encoder_tokens(p) / S;
    chunk = chunk < 1 ? 1 : chunk > c->enc_B ? c->enc_B : chunk;
    for (int b0 = 0; b0 < nb && st == QKV_OK; b0 += chunk) {
        int n = nb - b0 < chunk ? nb - b0 : chunk;
        st = model_encode_typed(c->enc, c->w, src_pad + (size_t)b0 * S, lens + b0, n, S);
        if (st == QKV_OK)
            memcpy(c->enc_out + (size_t)b0 * row, model_encoder_output(c->enc), (size_t)n * row * sizeof(float));
    }
    /* cross-attention keys and values once per source; the cache starts
     * with one row per sentence (below) */
    if (st == QKV_OK)
        st = model_cache_start_beams(c->cache, c->enc_out, lens, nb, S, 1);
    free(src_pad);
    free(lens);
    QKV_TRY(st);

    int rps = c->rows_per_sent;
    c->R = nb * rps;
    for (int b = 0; b < nb; b++) {
        sentence *s = &sents[b];
        hyp *store = s->hyps;
        memset(s, 0, sizeof *s);
        s->hyps = store;
        s->src = order[b];
        s->max_len = search_max_length(c->m, p, src_len[order[b]]);
        s->worst = 1e9;
        s->first_row = b * rps;
        s->n_rows = rps;
        for (int k = 0; k < rps; k++) {
            int r = b * rps + k;
            c->parents[r] = b;
            c->row_sent[r] = b;
            c->tok[(size_t)r * c->Tcap] = p->prompt[0];
            /* beam: only the first beam is live at the start (transformers
             * gives the others -1e9) */
            c->row_score[r] = (p->beam_size > 1 && !p->sample && k > 0) ? -1e9f : 0.0f;
            if (c->rng) {
                /* seeded by the source's ids, not its position: a sentence
                 * draws the same samples in any batch */
                uint64_t h = 0x9e3779b97f4a7c15u;
                for (int j = 0; j < src_len[order[b]]; j++)
                    h = qkv_splitmix64(h ^ (uint64_t)(uint32_t)src[order[b]][j]);
                qkv_rng_seed(&c->rng[r], p->seed ^ qkv_splitmix64(h + (uint64_t)k));
            }
        }
    }

    /* A sentence's rows hold the same tokens until its first search step
     * (the prompt, then the first choice), so until then the decoder runs
     * one row per sentence and its scores are copied to the sentence's
     * rows (as CTranslate2 expands the beams after the first step): the
     * same scores, since a row's do not depend on the other rows. */
    int expanded = rps == 1;
    for (int t = 0; c->R > 0; t++) {
        int Rd = expanded ? c->R : nb; /* rows the decoder runs */
        for (int r = 0; r < Rd; r++)
            c->in[r] = c->tok[(size_t)(expanded ? r : r * rps) * c->Tcap + t];
        const float *logits;
        QKV_TRY(model_decode_step(c->cache, c->in, &logits));
        if (t + 1 < p->prompt_len) { /* still feeding the prompt */
            for (int r = 0; r < c->R; r++)
                c->tok[(size_t)r * c->Tcap + t + 1] = p->prompt[t + 1];
            continue;
        }
        if (p->beam_size > 1 && !p->sample)
            log_softmax_forward(c->x, logits, Rd, c->V);
        else
            memcpy(c->x, logits, (size_t)Rd * c->V * sizeof(float));
        if (!expanded) /* row b to rows b rps .. b rps + rps - 1, last first */
            for (int b = nb - 1; b >= 0; b--)
                for (int k = rps - 1; k >= 0; k--)
                    memmove(c->x + ((size_t)b * rps + k) * c->V, c->x + (size_t)b * c->V, (size_t)c->V * sizeof(float));
        int newR = 0;
        for (int b = 0; b < nb; b++) {
            sentence *s = &sents[b];
            if (s->done)
                continue;
            int first = newR;
            if (p->beam_size > 1 && !p->sample)
                QKV_TRY(beam_step(c, s, b, t, &newR));
            else
                QKV_TRY(row_step(c, s, b, t, &newR));
            s->first_row = first;
            s->n_rows = newR - first;
            if (s->done)
                QKV_TRY(sentence_result(c, s, &out[s->src]));
        }
        /* gather the surviving rows' sequences and append their tokens */
        for (int i = 0; i < newR; i++) {
            const int *from = c->tok + (size_t)c->parents[i] * c->Tcap;
            int *to = c->tok_tmp + (size_t)i * c->Tcap;
            memcpy(to, from, (size_t)(t + 1) * sizeof(int));
            to[t + 1] = c->new_tok[i];
        }
        int *sw = c->tok;
        c->tok = c->tok_tmp;
        c->tok_tmp = sw;
        memcpy(c->row_score, c->new_score, (size_t)newR * sizeof(float));
        memcpy(c->row_sent, c->new_sent, (size_t)newR * sizeof(int));
        if (c->rng)
            memcpy(c->rng, c->new_rng, (size_t)newR * sizeof(qkv_rng));
        if (newR > 0 && !expanded) { /* parents among the sentences' rows: the cache's row b */
            for (int i = 0; i < newR; i++)
                c->parents[i] /= rps;
            expanded = 1;
        }
        if (newR > 0)
            QKV_TRY(model_cache_select(c->cache, c->parents, newR));
        c->R = newR;
    }
    return QKV_OK;
}

struct len_idx {
    int len, idx;
};

static int cmp_len_idx(const void *a, const void *b)
{
    const struct len_idx *x = a, *y = b;
    if (x->len != y->len)
        return y->len - x->len;
    return x->idx - y->idx;
}

int search_batch_order(const int *src_len, int n, int *order)
{
    struct len_idx *li = malloc((size_t)(n > 0 ? n : 1) * sizeof *li);
    if (!li)
        return -1;
    int cnt = 0;
    for (int i = 0; i < n; i++)
        if (src_len[i] > 0)
            li[cnt++] = (struct len_idx){src_len[i], i};
    qsort(li, (size_t)cnt, sizeof *li, cmp_len_idx);
    for (int i = 0; i < cnt; i++)
        order[i] = li[i].idx;
    free(li);
    return cnt;
}

qkv_status search_run_state(search_state *state, const search_params *p, const int *const *src, const int *src_len,
                            int n, search_result *out)
{
    memset(out, 0, (size_t)n * sizeof *out);
    search_ctx *cp = &state->c;
    const qkv_model *m = cp->m;
    const qkv_model_config *cfg = qkv_model_get_config(m);
    cp->p = p;
    cp->K = p->beam_size;
    cp->rows_per_sent = p->sample ? p->num_samples : (p->beam_size > 1 ? p->beam_size : 1);
    /* the sentences that need decoding, longest first, so batches are
     * similar in length (less padding) */
    int *order = malloc((size_t)(n > 0 ? n : 1) * sizeof(int)), cnt, maxS = 1, Tcap = p->prompt_len + 1;
    if (!order)
        return qkv_fail(QKV_ERR_NOMEM, "translate: out of memory");
    for (int i = 0; i < n; i++) {
        if (src_len[i] <= 0)
            continue;
        if (src_len[i] > cfg->max_positions) {
            free(order);
            return qkv_fail(QKV_ERR_ARG, "translate: source %d has %d tokens, max_positions is %d", i, src_len[i],
                            cfg->max_positions);
        }
        if (src_len[i] > maxS)
            maxS = src_len[i];
        int ml = search_max_length(m, p, src_len[i]);
        if (ml > Tcap)
            Tcap = ml;
    }
    if ((cnt = search_batch_order(src_len, n, order)) < 0) {
        free(order);
        return qkv_fail(QKV_ERR_NOMEM, "translate: out of memory");
    }
    if (cnt == 0) {
        free(order);
        return QKV_OK;
    }
    int B = p->batch_size < cnt ? p->batch_size : cnt;
    int maxR = B * cp->rows_per_sent, K2 = 2 * (cp->K > 1 ? cp->K : 1);
    /* the encoder's chunk follows from this call alone (not from the
     * state's capacity), so a reused state encodes exactly as a new one */
    int enc_B = search_encoder_tokens(p) / maxS;
    enc_B = enc_B < 1 ? 1 : enc_B > B ? B : enc_B;
    int nh = cp->rows_per_sent > cp->K ? cp->rows_per_sent : cp->K;
    qkv_status st = search_reserve(state, B, maxR, maxS, Tcap, K2, nh, enc_B, p->sample, p->weight_type);
    cp->Tcap = state->cap_T;
    cp->maxR = state->cap_R;
    cp->enc_B = enc_B;
    cp->rng = p->sample ? cp->rng_store : NULL;
    cp->new_rng = p->sample ? cp->new_rng_store : NULL;
    sentence *sents = cp->sents;
    for (int i0 = 0; st == QKV_OK && i0 < cnt; i0 += B) {
        int nb = cnt - i0 < B ? cnt - i0 : B;
        for (int b = 0; b < nb; b++) {
            sents[b].hyps = cp->hyp_store + (size_t)b * (nh + 1);
            sents[b].n_hyps = 0;
        }
        st = run_batch(cp, src, src_len, order + i0, nb, sents, out);
        for (int b = 0; b < nb; b++) { /* free what an error left behind */
            for (int j = 0; j < sents[b].n_hyps; j++)
                hyp_free(&sents[b].hyps[j]);
            sents[b].n_hyps = 0;
        }
    }
    free(order);
    cp->p = NULL;
    if (st != QKV_OK)
        search_results_free(out, n);
    return st;
}

qkv_status search_run(const qkv_model *m, const search_params *p, const int *const *src, const int *src_len, int n,
                      search_result *out)
{
    memset(out, 0, (size_t)n * sizeof *out);
    search_state *s;
    QKV_TRY(search_state_new(m, NULL, &s));
    qkv_status st = search_run_state(s, p, src, src_len, n, out);
    search_state_free(s);
    return st;
}
