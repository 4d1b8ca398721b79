/* Search over ids (src/decode/): the per-row pieces against plain
 * references, the decoder cache with row selection against full
 * recomputation, greedy search against a search without any cache, and
 * batched search against one sentence at a time. Models are built here
 * with random weights (sharpened so that searches end at varied lengths). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "decode/search.h"
#include "model/model.h"
#include "test.h"

/* ---- fixtures -------------------------------------------------------------- */

enum { VOCAB = 40, PAD = 0, BOS = 1, EOS = 2 };

static qkv_model *tiny_model(uint64_t seed, qkv_norm_placement norm)
{
    qkv_model_config c = qkv_model_default_config();
    c.src_vocab_size = c.tgt_vocab_size = VOCAB;
    c.shared_vocab = 1;
    c.d_model = 16;
    c.encoder_heads = c.decoder_heads = 2;
    c.encoder_d_ff = c.decoder_d_ff = 32;
    c.encoder_layers = c.decoder_layers = 2;
    c.max_positions = 48;
    c.norm = norm;
    c.final_norm = norm == QKV_NORM_PRE;
    c.output_bias = 1;
    c.activation = QKV_ACT_SWISH;
    c.pad_id = PAD;
    c.bos_id = BOS;
    c.eos_id = EOS;
    c.decoder_start_id = BOS;
    qkv_model *m = NULL;
    if (qkv_model_new(&c, seed, &m) != QKV_OK)
        return NULL;
    /* a random logit bias that makes EOS likely enough to end some
     * sentences early and others not */
    qkv_tensor_info info;
    float *bias = qkv_model_find(m, "final_logits_bias", &info);
    if (bias) {
        qkv_rng r;
        qkv_rng_seed(&r, seed + 7);
        for (size_t i = 0; i < info.size; i++)
            bias[i] = qkv_rng_normal(&r);
        bias[EOS] = 2.5f;
    }
    return m;
}

/* n random sources of lengths 1..maxlen (EOS last), ids in [3, VOCAB). */
static void random_sources(int **src, int *len, int n, int maxlen, uint64_t seed)
{
    qkv_rng r;
    qkv_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        len[i] = 1 + (int)qkv_rng_below(&r, (uint64_t)maxlen);
        src[i] = malloc((size_t)len[i] * sizeof(int));
        for (int j = 0; j + 1 < len[i]; j++)
            src[i][j] = 3 + (int)qkv_rng_below(&r, VOCAB - 3);
        src[i][len[i] - 1] = EOS;
    }
}

static search_params base_params(const int *prompt, int prompt_len, const int *bad, int n_bad)
{
    search_params p = {0};
    p.beam_size = 1;
    p.n_best = 1;
    p.num_samples = 1;
    p.temperature = 1;
    p.top_p = 1;
    p.seed = 1;
    p.alpha = 1;
    p.max_length = 20;
    p.repetition_penalty = 1;
    p.forced_eos = 1;
    p.bad = bad;
    p.n_bad = n_bad;
    p.prompt = prompt;
    p.prompt_len = prompt_len;
    p.eos_id = EOS;
    p.batch_size = 32;
    return p;
}

static const int PROMPT[] = {BOS, 5, 6};
static const int BAD_PAD[] = {PAD, -1};

/* ---- per-row pieces -------------------------------------------------------- */

static void test_topk_matches_sort(void)
{
    qkv_rng r;
    qkv_rng_seed(&r, 3);
    int sizes[] = {1, 2, 7, 31, 100, 1001, 4000};
    float vals[40], rv[40];
    int idx[40], ri[40];
    for (int si = 0; si < 7; si++) {
        int V = sizes[si];
        float *x = malloc((size_t)V * sizeof(float)), *y = malloc((size_t)V * sizeof(float));
        for (int trial = 0; trial < 20; trial++) {
            for (int v = 0; v < V; v++) {
                /* few distinct values: many ties; some -inf */
                x[v] = (float)qkv_rng_below(&r, 7) - 3.0f;
                if (qkv_rng_below(&r, 9) == 0)
                    x[v] = -INFINITY;
                if (qkv_rng_below(&r, 50) == 0)
                    x[v] = NAN; /* never selected */
            }
            int k = 1 + (int)qkv_rng_below(&r, 39);
            int n = search_topk(x, V, k, vals, idx), nr = search_topk_ref(x, V, k, rv, ri);
            CHECK(n == nr, "V %d k %d: %d selected, reference %d", V, k, n, nr);
            for (int i = 0; i < n && i < nr; i++)
                CHECK(idx[i] == ri[i] && vals[i] == rv[i], "V %d k %d rank %d: (%d, %g), reference (%d, %g)", V,
                      k, i, idx[i], vals[i], ri[i], rv[i]);
            /* with an offset (a beam score): the top k of x + off, x unchanged */
            float off = -0.75f * (float)qkv_rng_below(&r, 5);
            for (int v = 0; v < V; v++)
                y[v] = x[v] + off;
            n = search_topk_offset(x, V, off, k, vals, idx);
            nr = search_topk_ref(y, V, k, rv, ri);
            CHECK(n == nr, "V %d k %d offset %g: %d selected, reference %d", V, k, off, n, nr);
            for (int i = 0; i < n && i < nr; i++)
                CHECK(idx[i] == ri[i] && vals[i] == rv[i],
                      "V %d k %d offset %g rank %d: (%d, %g), reference (%d, %g)", V, k, off, i, idx[i], vals[i],
                      ri[i], rv[i]);
        }
        free(x), free(y);
    }
}

static void test_processors(void)
{
    int bad[] = {PAD, -1, 7, 8, -1, 9}; /* pad; 8 after 7; 9 always (no trailing -1) */
    search_params p = base_params(PROMPT, 1, bad, 6);
    unsigned char mark[VOCAB] = {0};
    float x[VOCAB];
    /* no-repeat 3-gram: seq 1 4 5 4 5 ... last two (4 5) were followed by 4 */
    p.no_repeat_ngram_size = 3;
    int seq[] = {1, 4, 5, 4, 5, 7};
    for (int v = 0; v < VOCAB; v++)
        x[v] = 0.5f;
    search_process_row(x, VOCAB, seq, 5, &p, 20, mark);
    CHECK(x[4] == -INFINITY, "no-repeat: token 4 would repeat the 3-gram (4 5 4), score %g", x[4]);
    CHECK(x[5] == 0.5f && x[3] == 0.5f, "no-repeat: only token 4 is banned (5: %g, 3: %g)", x[5], x[3]);
    CHECK(x[PAD] == -INFINITY && x[9] == -INFINITY, "bad words: pad %g, 9 %g", x[PAD], x[9]);
    CHECK(x[8] == 0.5f, "bad word 8 is banned only after 7, got %g", x[8]);
    /* after 7: 8 banned */
    for (int v = 0; v < VOCAB; v++)
        x[v] = 0.5f;
    p.no_repeat_ngram_size = 0;
    search_process_row(x, VOCAB, seq, 6, &p, 20, mark);
    CHECK(x[8] == -INFINITY, "bad word sequence (7, 8): 8 after 7 has score %g", x[8]);
    /* repetition penalty: positive divided, negative multiplied, once per token */
    p.repetition_penalty = 2.0f;
    for (int v = 0; v < VOCAB; v++)
        x[v] = (v % 2) ? 1.0f : -1.0f;
    search_process_row(x, VOCAB, seq, 5, &p, 20, mark);
    CHECK(x[5] == 0.5f && x[4] == -2.0f && x[1] == 0.5f, "repetition penalty: x[5] %g (0.5), x[4] %g (-2), x[1] %g",
          x[5], x[4], x[1]);
    CHECK(x[3] == 1.0f && x[6] == -1.0f, "repetition penalty touched unseen tokens: %g %g", x[3], x[6]);
    for (int v = 0; v < VOCAB; v++)
        CHECK(mark[v] == 0, "scratch mark[%d] left set", v);
    /* min length: EOS masked while len < min_length */
    p.repetition_penalty = 1;
    p.min_length = 6;
    for (int v = 0; v < VOCAB; v++)
        x[v] = 0.5f;
    search_process_row(x, VOCAB, seq, 5, &p, 20, mark);
    CHECK(x[EOS] == -INFINITY, "min length 6 at length 5: EOS %g", x[EOS]);
    for (int v = 0; v < VOCAB; v++)
        x[v] = 0.5f;
    search_process_row(x, VOCAB, seq, 6, &p, 20, mark);
    CHECK(x[EOS] == 0.5f, "min length 6 at length 6: EOS %g", x[EOS]);
    /* forced EOS at max_length - 1 */
    search_process_row(x, VOCAB, seq, 6, &p, 7, mark);
    for (int v = 0; v < VOCAB; v++)
        CHECK(x[v] == (v == EOS ? 0.0f : -INFINITY), "forced EOS: x[%d] = %g", v, x[v]);
}

static void test_sampling_warpers(void)
{
    search_params p = base_params(PROMPT, 1, NULL, 0);
    float x[VOCAB];
    int order[VOCAB], counts[VOCAB] = {0};
    qkv_rng r;
    qkv_rng_seed(&r, 5);
    /* top-k 3: only the three largest are ever drawn */
    p.top_k = 3;
    for (int it = 0; it < 2000; it++) {
        for (int v = 0; v < VOCAB; v++)
            x[v] = (float)v * 0.01f;
        counts[search_sample_row(x, VOCAB, &p, &r, order)]++;
    }
    for (int v = 0; v < VOCAB - 3; v++)
        CHECK(counts[v] == 0, "top-k 3 drew token %d %d times", v, counts[v]);
    CHECK(counts[VOCAB - 1] > 500 && counts[VOCAB - 3] > 500, "top-k 3 draws: %d %d %d", counts[VOCAB - 3],
          counts[VOCAB - 2], counts[VOCAB - 1]);
    /* top-p 0.5 with probabilities 0.4 0.3 0.2 0.1: keeps 0.4 and 0.3 */
    p.top_k = 0;
    p.top_p = 0.5f;
    memset(counts, 0, sizeof counts);
    const float pr[4] = {0.1f, 0.4f, 0.2f, 0.3f};
    for (int it = 0; it < 3000; it++) {
        for (int v = 0; v < VOCAB; v++)
            x[v] = v < 4 ? logf(pr[v]) : -INFINITY;
        counts[search_sample_row(x, VOCAB, &p, &r, order)]++;
    }
    CHECK(counts[0] == 0 && counts[2] == 0, "top-p 0.5 drew 0.1 (%d) or 0.2 (%d)", counts[0], counts[2]);
    double f = counts[1] / 3000.0;
    CHECK(fabs(f - 0.4 / 0.7) < 0.04, "top-p 0.5: token of p 0.4 drawn with frequency %g, expected %g", f, 0.4 / 0.7);
    /* temperature -> 0: the argmax */
    p.top_p = 1;
    p.temperature = 1e-3f;
    for (int it = 0; it < 50; it++) {
        for (int v = 0; v < VOCAB; v++)
            x[v] = (float)((v * 7) % VOCAB) * 0.1f;
        int t = search_sample_row(x, VOCAB, &p, &r, order);
        CHECK(t == search_argmax(x, VOCAB), "temperature 1e-3 drew %d", t);
    }
}

/* ---- the cache with row selection ------------------------------------------ */

/* Random selections (reorder, drop, expand) between steps: each row's
 * logits equal a full recomputation of its own token history. */
static void test_cache_select_matches_full(void)
{
    qkv_model *m = tiny_model(11, QKV_NORM_POST);
    CHECK(m != NULL, "model: %s", qkv_last_error());
    if (!m)
        return;
    enum { NS = 3, T = 9, MAXR = 8 };
    int *src[NS], len[NS];
    random_sources(src, len, NS, 7, 12);
    int S = 0;
    for (int i = 0; i < NS; i++)
        S = len[i] > S ? len[i] : S;
    int sp[NS * 8], sl[NS];
    for (int i = 0; i < NS; i++) {
        sl[i] = len[i];
        for (int j = 0; j < S; j++)
            sp[i * S + j] = j < len[i] ? src[i][j] : PAD;
    }
    model_state *st = NULL, *full = NULL;
    model_decoder_cache *c = NULL;
    CHECK(model_state_new(m, NS, S, 1, 0, &st) == QKV_OK, "%s", qkv_last_error());
    CHECK(model_state_new(m, 1, S, T, 0, &full) == QKV_OK, "%s", qkv_last_error());
    CHECK(model_cache_new(m, MAXR, S, T, &c) == QKV_OK, "%s", qkv_last_error());
    if (!st || !full || !c)
        goto done;
    CHECK(model_encode(st, sp, sl, NS, S) == QKV_OK, "%s", qkv_last_error());
    CHECK(model_cache_start(c, model_encoder_output(st), sl, NS, S) == QKV_OK, "%s", qkv_last_error());
    int R = NS, sent[MAXR], hist[MAXR][T], nh[MAXR] = {0}, V = VOCAB;
    for (int i = 0; i < NS; i++)
        sent[i] = i;
    qkv_rng r;
    qkv_rng_seed(&r, 13);
    for (int t = 0; t < T; t++) {
        int tok[MAXR];
        for (int i = 0; i < R; i++) {
            tok[i] = t == 0 ? BOS : 3 + (int)qkv_rng_below(&r, V - 3);
            hist[i][t] = tok[i];
            nh[i] = t + 1;
        }
        const float *lg;
        CHECK(model_decode_step(c, tok, &lg) == QKV_OK, "step %d: %s", t, qkv_last_error());
        for (int i = 0; i < R; i++) {
            const float *fl;
            int s = sent[i], one = nh[i];
            CHECK(model_encode(full, src[s], &len[s], 1, len[s]) == QKV_OK, "%s", qkv_last_error());
            CHECK(model_decode_logits(full, hist[i], &one, one, &fl) == QKV_OK, "%s", qkv_last_error());
            char what[96];
            snprintf(what, sizeof what, "step %d row %d (sentence %d)", t, i, s);
            CHECK_CLOSE_F32(lg + (size_t)i * V, fl + (size_t)(one - 1) * V, V, 2e-5, what);
        }
        /* next selection: between 1 and MAXR rows from the current ones */
        int n = 1 + (int)qkv_rng_below(&r, MAXR), rows[MAXR], hs[MAXR][T], ss[MAXR];
        for (int i = 0; i < n; i++) {
            rows[i] = (int)qkv_rng_below(&r, (uint64_t)R);
            if (t % 3 == 0 && i < R)
                rows[i] = i; /* some rows stay in place */
            memcpy(hs[i], hist[rows[i]], sizeof hs[i]);
            ss[i] = sent[rows[i]];
        }
        CHECK(model_cache_select(c, rows, n) == QKV_OK, "select: %s", qkv_last_error());
        memcpy(hist, hs, sizeof hs);
        memcpy(sent, ss, sizeof ss);
        R = n;
    }
    int bad_rows[1] = {R};
    CHECK(model_cache_select(c, bad_rows, 1) == QKV_ERR_ARG, "a row out of range was accepted");
    CHECK(model_cache_select(c, bad_rows, MAXR + 1) == QKV_ERR_ARG, "more rows than the cache holds were accepted");
done:
    model_cache_free(c);
    model_state_free(st);
    model_state_free(full);
    for (int i = 0; i < NS; i++)
        free(src[i]);
    qkv_model_free(m);
}

/* ---- searches ---------------------------------------------------------------- */

/* Greedy search written the slow way: the whole prefix through the decoder
 * at every step, no cache, one sentence at a time. */
static void greedy_uncached(const qkv_model *m, const search_params *p, const int *src, int n_src, int **ids,
                            int *n, float *logprob, int *ended)
{
    int T = search_max_length(m, p, n_src), V = VOCAB;
    int *seq = calloc((size_t)T + 1, sizeof(int));
    unsigned char mark[VOCAB] = {0};
    float x[VOCAB];
    model_state *s = NULL;
    *ids = NULL;
    *n = 0;
    *ended = 0;
    *logprob = 0;
    if (model_state_new(m, 1, n_src, T, 0, &s) != QKV_OK || model_encode(s, src, &n_src, 1, n_src) != QKV_OK) {
        model_state_free(s);
        free(seq);
        return;
    }
    memcpy(seq, p->prompt, (size_t)p->prompt_len * sizeof(int));
    int len = p->prompt_len;
    while (len < T) {
        const float *lg;
        if (model_decode_logits(s, seq, &len, len, &lg) != QKV_OK)
            break;
        memcpy(x, lg + (size_t)(len - 1) * V, sizeof x);
        search_process_row(x, V, seq, len, p, T, mark);
        int tk = search_argmax(x, V);
        *logprob += x[tk] - search_logsumexp(x, V);
        seq[len++] = tk;
        if (tk == p->eos_id) {
            *ended = 1;
            break;
        }
    }
    *n = len - p->prompt_len - *ended;
    *ids = malloc((size_t)(*n + 1) * sizeof(int));
    memcpy(*ids, seq + p->prompt_len, (size_t)*n * sizeof(int));
    model_state_free(s);
    free(seq);
}

static void test_greedy_equals_uncached(void)
{
    for (int norm = 0; norm < 2; norm++) {
        qkv_model *m = tiny_model(21 + norm, (qkv_norm_placement)norm);
        CHECK(m != NULL, "model: %s", qkv_last_error());
        if (!m)
            return;
        enum { N = 12 };
        int *src[N], len[N];
        random_sources(src, len, N, 10, 22);
        for (int variant = 0; variant < 3; variant++) {
            search_params p = base_params(PROMPT, variant == 1 ? 3 : 1, BAD_PAD, 2);
            p.batch_size = 5;
            if (variant == 2) {
                p.no_repeat_ngram_size = 2;
                p.min_length = 4;
                p.repetition_penalty = 1.3f;
            }
            search_result res[N];
            CHECK(search_run(m, &p, (const int *const *)src, len, N, res) == QKV_OK, "%s", qkv_last_error());
            int lens_seen[64] = {0}, distinct = 0;
            for (int i = 0; i < N; i++) {
                int *ids, n, ended;
                float lp;
                greedy_uncached(m, &p, src[i], len[i], &ids, &n, &lp, &ended);
                CHECK(res[i].n_hyps == 1, "norm %d variant %d sentence %d: %d hypotheses", norm, variant, i,
                      res[i].n_hyps);
                if (res[i].n_hyps != 1) {
                    free(ids);
                    continue;
                }
                search_hyp *h = &res[i].hyps[0];
                int d = 0;
                while (d < n && d < h->n && h->ids[d] == ids[d])
                    d++;
                int same = h->n == n && h->ended == ended && d == n;
                CHECK(same, "norm %d variant %d sentence %d: cached greedy gives %d ids (ended %d), uncached %d "
                            "(ended %d); first difference at %d",
                      norm, variant, i, h->n, h->ended, n, ended, d);
                CHECK(fabsf(h->logprob - lp) <= 1e-4f * (1 + fabsf(lp)),
                      "norm %d variant %d sentence %d: logprob %.6f, uncached %.6f", norm, variant, i, h->logprob, lp);
                if (!lens_seen[h->n & 63]++)
                    distinct++;
                free(ids);
            }
            CHECK(distinct >= 2, "norm %d variant %d: only %d distinct output lengths (the test needs variety)", norm,
                  variant, distinct);
            search_results_free(res, N);
        }
        for (int i = 0; i < N; i++)
            free(src[i]);
        qkv_model_free(m);
    }
}

/* The same sentences in batches of 1, 3 and 32: same hypotheses, same
 * scores (to rounding), results in input order. */
static void test_batch_equals_alone(void)
{
    qkv_model *m = tiny_model(31, QKV_NORM_PRE);
    CHECK(m != NULL, "model: %s", qkv_last_error());
    if (!m)
        return;
    enum { N = 10 };
    int *src[N], len[N];
    random_sources(src, len, N, 12, 32);
    len[4] = 0; /* an empty line: no hypothesis, others unaffected */
    struct {
        int beam, sample, nbest;
        qkv_early_stopping es;
        float alpha;
        qkv_length_penalty_kind lp;
    } modes[] = {
        {1, 0, 1, QKV_EARLY_STOPPING_HEURISTIC, 1, QKV_LENGTH_PENALTY_POWER},
        {4, 0, 4, QKV_EARLY_STOPPING_HEURISTIC, 1, QKV_LENGTH_PENALTY_POWER},
        {5, 0, 2, QKV_EARLY_STOPPING_TRUE, 0.6f, QKV_LENGTH_PENALTY_GNMT},
        {3, 0, 3, QKV_EARLY_STOPPING_NEVER, 1.2f, QKV_LENGTH_PENALTY_POWER},
        {1, 1, 3, QKV_EARLY_STOPPING_HEURISTIC, 1, QKV_LENGTH_PENALTY_POWER},
    };
    for (int mi = 0; mi < 5; mi++) {
        search_params p = base_params(PROMPT, mi == 3 ? 3 : 1, BAD_PAD, 2); /* mode 3: with a forced prefix */
        p.beam_size = modes[mi].beam;
        p.sample = modes[mi].sample;
        p.num_samples = modes[mi].sample ? 4 : 1;
        p.top_k = 10;
        p.n_best = modes[mi].nbest;
        p.early_stopping = modes[mi].es;
        p.alpha = modes[mi].alpha;
        p.lp_kind = modes[mi].lp;
        search_result ref[N], got[N];
        p.batch_size = 1;
        p.encoder_tokens = mi == 1 ? 20 : 0; /* the encoder in chunks of one or two sentences */
        CHECK(search_run(m, &p, (const int *const *)src, len, N, ref) == QKV_OK, "%s", qkv_last_error());
        int bs[] = {3, 32};
        for (int bi = 0; bi < 2; bi++) {
            p.batch_size = bs[bi];
            CHECK(search_run(m, &p, (const int *const *)src, len, N, got) == QKV_OK, "%s", qkv_last_error());
            for (int i = 0; i < N; i++) {
                CHECK(got[i].n_hyps == ref[i].n_hyps, "mode %d batch %d sentence %d: %d hypotheses, alone %d", mi,
                      bs[bi], i, got[i].n_hyps, ref[i].n_hyps);
                CHECK((i == 4) == (ref[i].n_hyps == 0), "mode %d sentence %d: %d hypotheses", mi, i, ref[i].n_hyps);
                for (int j = 0; j < got[i].n_hyps && j < ref[i].n_hyps; j++) {
                    search_hyp *a = &got[i].hyps[j], *b = &ref[i].hyps[j];
                    CHECK(a->n == b->n && !memcmp(a->ids, b->ids, (size_t)a->n * sizeof(int)) && a->ended == b->ended,
                          "mode %d batch %d sentence %d hypothesis %d: %d ids vs %d alone", mi, bs[bi], i, j, a->n,
                          b->n);
                    CHECK(fabsf(a->score - b->score) <= 1e-4f * (1 + fabsf(b->score)),
                          "mode %d batch %d sentence %d hypothesis %d: score %.6f vs %.6f alone", mi, bs[bi], i, j,
                          a->score, b->score);
                    if (j > 0)
                        CHECK(got[i].hyps[j - 1].score >= a->score, "mode %d sentence %d: hypotheses not best first",
                              mi, i);
                }
            }
            search_results_free(got, N);
        }
        search_results_free(ref, N);
    }
    for (int i = 0; i < N; i++)
        free(src[i]);
    qkv_model_free(m);
}

/* Beam search of width 1 is greedy search on log-probabilities: same ids. */
static void test_beam_limits(void)
{
    qkv_model *m = tiny_model(41, QKV_NORM_POST);
    if (!m)
        return;
    enum { N = 6 };
    int *src[N], len[N];
    random_sources(src, len, N, 9, 42);
    search_params p = base_params(PROMPT, 1, BAD_PAD, 2);
    search_result a[N];
    /* max_length caps every hypothesis; min_length holds EOS back */
    p.beam_size = 4;
    p.n_best = 4;
    p.max_length = 6;
    p.min_length = 4;
    CHECK(search_run(m, &p, (const int *const *)src, len, N, a) == QKV_OK, "%s", qkv_last_error());
    for (int i = 0; i < N; i++)
        for (int j = 0; j < a[i].n_hyps; j++) {
            search_hyp *h = &a[i].hyps[j];
            int total = 1 + h->n + h->ended;
            CHECK(total <= 6, "sentence %d hyp %d: %d tokens with the start token, max_length 6", i, j, total);
            CHECK(!h->ended || total >= 5, "sentence %d hyp %d: ended at length %d despite min_length 4", i, j,
                  total);
            CHECK(h->ended, "sentence %d hyp %d: forced EOS did not end it", i, j);
            for (int q = 0; q < h->n; q++)
                CHECK(h->ids[q] != PAD && h->ids[q] != EOS, "sentence %d hyp %d: id %d at %d", i, j, h->ids[q], q);
        }
    search_results_free(a, N);
    for (int i = 0; i < N; i++)
        free(src[i]);
    qkv_model_free(m);
}

static const test_case cases[] = {
    TEST(test_topk_matches_sort),         TEST(test_processors),          TEST(test_sampling_warpers),
    TEST(test_cache_select_matches_full), TEST(test_greedy_equals_uncached), TEST(test_batch_equals_alone),
    TEST(test_beam_limits),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
