/* data/batch: the batcher's invariants (coverage, token budget, padding,
 * alignment, seeds, resume) on corpora read with a fake tokenizer: one id
 * per whitespace-separated number (numbers_text.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "base/status.h"
#include "data/batch.h"
#include "data/parallel.h"
#include "numbers_text.h"
#include "test.h"

/* ---- batcher ------------------------------------------------------------------ */

/* A synthetic corpus of n pairs with lengths uniform in [1, max_src] and
 * [1, max_tgt] and ids in [3, 1000); `outliers` extra pairs of 300 ids a side
 * are put at random lines. Built as text and read back, as a run would. */
static void make_corpus(qkv_parallel *c, int n, int max_src, int max_tgt, int outliers, uint64_t seed)
{
    qkv_rng r;
    qkv_rng_seed(&r, seed);
    size_t cap = (size_t)(n + outliers) * (size_t)(max_src + max_tgt + 600) * 5 + 16;
    char *src = malloc(cap), *tgt = malloc(cap);
    size_t ns = 0, nt = 0;
    int total = n + outliers;
    for (int i = 0; i < total; i++) {
        int outlier = outliers > 0 && (int)qkv_rng_below(&r, (uint64_t)total) < outliers;
        int ls = outlier ? 300 : 1 + (int)qkv_rng_below(&r, (uint64_t)max_src);
        int lt = outlier ? 300 : 1 + (int)qkv_rng_below(&r, (uint64_t)max_tgt);
        for (int k = 0; k < ls; k++)
            ns += (size_t)sprintf(src + ns, k ? " %d" : "%d", 3 + (int)qkv_rng_below(&r, 997));
        for (int k = 0; k < lt; k++)
            nt += (size_t)sprintf(tgt + nt, k ? " %d" : "%d", 3 + (int)qkv_rng_below(&r, 997));
        src[ns++] = '\n';
        tgt[nt++] = '\n';
    }
    qkv_parallel_options o = numbers_options(0);
    qkv_parallel_stats st;
    if (qkv_parallel_read_text(c, src, ns, "syn.src", tgt, nt, "syn.tgt", &o, &st) != QKV_OK)
        test_fail(__FILE__, __LINE__, "synthetic corpus: %s", qkv_last_error());
    free(src);
    free(tgt);
}

static int row_width(const qkv_parallel *c, int i)
{
    int s = qkv_parallel_src_padded(c, i), t = qkv_parallel_tgt_padded(c, i);
    return s > t ? s : t;
}

/* Checks one batch against the corpus: token budget, shape, padding and the
 * decoder input / label alignment. Returns the number of failures it found. */
static int check_batch(const char *file, int line, const qkv_parallel *c, const qkv_batch *bt,
                       const qkv_batcher_options *o, qkv_batch_limits lim)
{
    int before = test_failures();
#define BFAIL(...) test_fail(file, line, __VA_ARGS__)
    int S = 0, T = 0;
    for (int r = 0; r < bt->B; r++) {
        S = qkv_parallel_src_padded(c, bt->index[r]) > S ? qkv_parallel_src_padded(c, bt->index[r]) : S;
        T = qkv_parallel_tgt_padded(c, bt->index[r]) > T ? qkv_parallel_tgt_padded(c, bt->index[r]) : T;
    }
    if (bt->B < 1 || bt->S != S || bt->T != T) {
        BFAIL("epoch %lld batch %lld: shape [%d, %d, %d], want S %d T %d (longest rows)", (long long)bt->epoch,
                     (long long)bt->batch, bt->B, bt->S, bt->T, S, T);
        return 1;
    }
    int64_t cost = (int64_t)bt->B * (S > T ? S : T);
    if (cost > o->batch_tokens && bt->B != 1)
        BFAIL("epoch %lld batch %lld: %d rows x %d = %lld > batch_tokens %d", (long long)bt->epoch,
              (long long)bt->batch, bt->B, S > T ? S : T, (long long)cost, o->batch_tokens);
    if (o->max_sentences && bt->B > o->max_sentences)
        BFAIL("batch %lld: %d rows > max_sentences %d", (long long)bt->batch, bt->B, o->max_sentences);
    if (bt->B > lim.max_rows || S > lim.max_src_len || T > lim.max_tgt_len ||
        (int64_t)bt->B * S > lim.max_src_cells || (int64_t)bt->B * T > lim.max_tgt_cells)
        BFAIL("batch %lld: [%d, %d, %d] outside the limits rows %d S %d T %d cells %lld/%lld", (long long)bt->batch,
              bt->B, S, T, lim.max_rows, lim.max_src_len, lim.max_tgt_len, (long long)lim.max_src_cells,
              (long long)lim.max_tgt_cells);
    int64_t src_tok = 0, tgt_tok = 0;
    for (int r = 0; r < bt->B && test_failures() - before < 5; r++) {
        int i = bt->index[r], nx = c->pairs[i].src_len, ny = c->pairs[i].tgt_len;
        const int *x = qkv_parallel_src(c, i), *y = qkv_parallel_tgt(c, i);
        const int *srow = bt->src + (size_t)r * S, *in = bt->tgt_in + (size_t)r * T, *lab = bt->labels + (size_t)r * T;
        int sl = nx + (c->src_eos >= 0);
        if (bt->src_len[r] != sl || bt->tgt_len[r] != ny + 1)
            BFAIL("batch %lld row %d: lengths (%d, %d), want (%d, %d)", (long long)bt->batch, r, bt->src_len[r],
                  bt->tgt_len[r], sl, ny + 1);
        for (int j = 0; j < S; j++) {
            int want = j < nx ? x[j] : j < sl ? c->src_eos : o->pad_id;
            if (srow[j] != want) {
                BFAIL("batch %lld row %d (pair %d): src[%d] = %d, want %d (|x| = %d, S = %d)", (long long)bt->batch,
                      r, i, j, srow[j], want, nx, S);
                break;
            }
        }
        for (int j = 0; j < T; j++) {
            int want_in = j == 0 ? BOS : j <= ny ? y[j - 1] : o->pad_id;
            int want_lab = j < ny ? y[j] : j == ny ? EOS : o->pad_id;
            if (in[j] != want_in || lab[j] != want_lab) {
                BFAIL("batch %lld row %d (pair %d) position %d: tgt_in %d labels %d, want %d %d (|y| = %d, T = %d)",
                      (long long)bt->batch, r, i, j, in[j], lab[j], want_in, want_lab, ny, T);
                break;
            }
            /* Teacher forcing: the label at j is the input at j + 1. */
            if (j + 1 < ny + 1 && lab[j] != in[j + 1]) {
                BFAIL("batch %lld row %d: labels[%d] = %d but tgt_in[%d] = %d", (long long)bt->batch, r, j, lab[j],
                      j + 1, in[j + 1]);
                break;
            }
        }
        src_tok += sl;
        tgt_tok += ny + 1;
    }
    if (test_failures() == before && (bt->src_tokens != src_tok || bt->tgt_tokens != tgt_tok))
        BFAIL("batch %lld: src_tokens %lld tgt_tokens %lld, want %lld %lld", (long long)bt->batch,
              (long long)bt->src_tokens, (long long)bt->tgt_tokens, (long long)src_tok, (long long)tgt_tok);
#undef BFAIL
    return test_failures() - before;
}
#define CHECK_BATCH(c, bt, o, lim) check_batch(__FILE__, __LINE__, (c), (bt), (o), (lim))

/* A digest of everything a batch holds, to compare runs batch by batch. */
static uint64_t batch_digest(const qkv_batch *bt)
{
    uint64_t h = qkv_splitmix64(((uint64_t)bt->B << 40) ^ ((uint64_t)bt->S << 20) ^ (uint64_t)bt->T);
    h = qkv_splitmix64(h ^ (uint64_t)bt->epoch * 31 ^ (uint64_t)bt->batch);
    for (int i = 0; i < bt->B * bt->S; i++)
        h = qkv_splitmix64(h ^ (uint32_t)bt->src[i]);
    for (int i = 0; i < bt->B * bt->T; i++)
        h = qkv_splitmix64(h ^ (uint32_t)bt->tgt_in[i] ^ (uint64_t)(uint32_t)bt->labels[i] << 32);
    for (int i = 0; i < bt->B; i++)
        h = qkv_splitmix64(h ^ (uint32_t)bt->index[i]);
    return h;
}

/* Digests of the next `count` batches (epoch ends skipped and marked 0). */
static void run_digests(qkv_batcher *b, uint64_t *out, int count)
{
    qkv_batch bt;
    for (int k = 0; k < count; k++)
        out[k] = qkv_batcher_next(b, &bt) ? batch_digest(&bt) : 0;
}

static qkv_batcher_options train_options(int batch_tokens, uint64_t seed)
{
    qkv_batcher_options o = qkv_batcher_default_options();
    o.batch_tokens = batch_tokens;
    o.pad_id = PAD;
    o.seed = seed;
    return o;
}

static void test_batcher_epoch_invariants(void)
{
    qkv_parallel c;
    make_corpus(&c, 1500, 40, 50, 5, 11);
    int n = (int)c.n_pairs;
    int *seen = calloc((size_t)n, sizeof *seen);
    /* Training plans (whole-corpus sort, windows, no sort, a sentence cap)
     * and dev plans. */
    struct {
        int shuffle, sort, window, max_sentences, tokens;
    } plans[] = {{1, 1, 0, 0, 800}, {1, 1, 97, 0, 800}, {1, 0, 0, 0, 800}, {1, 1, 0, 7, 800},
                 {0, 1, 0, 0, 500}, {0, 0, 0, 0, 500}, {1, 1, 0, 0, 3}};
    for (size_t p = 0; p < sizeof plans / sizeof plans[0]; p++) {
        qkv_batcher_options o = train_options(plans[p].tokens, 5);
        o.shuffle = plans[p].shuffle, o.sort_by_length = plans[p].sort, o.sort_window = plans[p].window;
        o.max_sentences = plans[p].max_sentences;
        qkv_batcher *b;
        CHECK(qkv_batcher_new(&b, &c, &o) == QKV_OK, "plan %zu: %s", p, qkv_last_error());
        if (!b)
            continue;
        qkv_batch_limits lim = qkv_batcher_limits(b);
        for (int epoch = 0; epoch < 3; epoch++) {
            memset(seen, 0, (size_t)n * sizeof *seen);
            int64_t batches = 0, want_batches = qkv_batcher_epoch_batches(b);
            qkv_batch bt;
            int bad = 0;
            while (qkv_batcher_next(b, &bt)) {
                CHECK(bt.epoch == epoch && bt.batch == batches && bt.epoch_batches == want_batches,
                      "plan %zu: batch says epoch %lld batch %lld of %lld; want %d, %lld of %lld", p, (long long)bt.epoch,
                      (long long)bt.batch, (long long)bt.epoch_batches, epoch, (long long)batches,
                      (long long)want_batches);
                if (!bad)
                    bad = CHECK_BATCH(&c, &bt, &o, lim);
                for (int r = 0; r < bt.B; r++)
                    seen[bt.index[r]]++;
                batches++;
            }
            CHECK(batches == want_batches, "plan %zu epoch %d: %lld batches, epoch_batches said %lld", p, epoch,
                  (long long)batches, (long long)want_batches);
            for (int i = 0; i < n; i++)
                if (seen[i] != 1) {
                    CHECK(0, "plan %zu epoch %d: pair %d seen %d times, want once", p, epoch, i, seen[i]);
                    break;
                }
        }
        qkv_batcher_free(b);
    }
    free(seen);
    qkv_parallel_free(&c);
}

static void test_batcher_without_source_eos(void)
{
    /* fairseq-style sources without </s>, and a pad id that is also the
     * decoder start (Marian's convention). */
    const char *src = "5 6 7\n8\n9 10\n11 12 13 14\n", *tgt = "20\n21 22\n23 24 25\n26\n";
    qkv_parallel c;
    qkv_parallel_options po = numbers_options(0);
    po.src_eos = -1;
    CHECK(read_str(&c, src, tgt, &po, NULL) == QKV_OK && c.n_pairs == 4, "read: %s", qkv_last_error());
    qkv_batcher_options o = train_options(1000, 3);
    o.pad_id = BOS;
    o.shuffle = 0;
    o.sort_by_length = 0;
    qkv_batcher *b;
    CHECK(qkv_batcher_new(&b, &c, &o) == QKV_OK, "new: %s", qkv_last_error());
    qkv_batch bt;
    CHECK(b && qkv_batcher_next(b, &bt) == 1, "no batch");
    if (!b)
        return;
    CHECK(bt.B == 4 && bt.S == 4 && bt.T == 4, "shape [%d, %d, %d], want [4, 4, 4]", bt.B, bt.S, bt.T);
    CHECK_BATCH(&c, &bt, &o, qkv_batcher_limits(b));
    /* Written out by hand: row 1 is x = 8, y = 21 22. */
    static const int src1[] = {8, BOS, BOS, BOS}, in1[] = {BOS, 21, 22, BOS}, lab1[] = {21, 22, EOS, BOS};
    if (bt.B == 4 && bt.S == 4 && bt.T == 4)
        for (int j = 0; j < 4; j++)
            CHECK(bt.src[4 + j] == src1[j] && bt.tgt_in[4 + j] == in1[j] && bt.labels[4 + j] == lab1[j],
                  "row 1 position %d: src %d tgt_in %d labels %d, want %d %d %d", j, bt.src[4 + j], bt.tgt_in[4 + j],
                  bt.labels[4 + j], src1[j], in1[j], lab1[j]);
    CHECK(bt.src_tokens == 10 && bt.tgt_tokens == 11, "tokens %lld, %lld; want 10, 11", (long long)bt.src_tokens,
          (long long)bt.tgt_tokens);
    CHECK(qkv_batcher_next(b, &bt) == 0, "a second batch in a 1000-token epoch of 4 short pairs");
    qkv_batcher_free(b);
    qkv_parallel_free(&c);
}

static void test_batcher_oversized_pair_alone(void)
{
    /* Outliers of 300 ids (width 301) against a budget of 200: each is a
     * batch of its own, the one documented case above the budget. */
    qkv_parallel c;
    make_corpus(&c, 300, 20, 20, 6, 12);
    int outliers = 0;
    for (int64_t i = 0; i < c.n_pairs; i++)
        outliers += row_width(&c, (int)i) > 200;
    CHECK(outliers >= 3, "only %d outliers in the corpus", outliers);
    for (int shuffle = 0; shuffle <= 1; shuffle++) {
        qkv_batcher_options o = train_options(200, 3);
        o.shuffle = shuffle;
        o.sort_by_length = 0; /* outliers amid short pairs, not grouped at the end */
        qkv_batcher *b;
        CHECK(qkv_batcher_new(&b, &c, &o) == QKV_OK, "new: %s", qkv_last_error());
        qkv_batch bt;
        int alone = 0;
        while (b && qkv_batcher_next(b, &bt)) {
            CHECK_BATCH(&c, &bt, &o, qkv_batcher_limits(b));
            for (int r = 0; r < bt.B; r++)
                if (row_width(&c, bt.index[r]) > 200) {
                    CHECK(bt.B == 1, "an oversized pair shares a batch of %d rows", bt.B);
                    alone++;
                }
        }
        CHECK(alone == outliers, "shuffle %d: %d oversized batches, want %d", shuffle, alone, outliers);
        qkv_batcher_free(b);
    }
    qkv_parallel_free(&c);
}

static void test_batcher_seeds(void)
{
    qkv_parallel c;
    make_corpus(&c, 800, 30, 30, 0, 13);
    enum { N = 200 };
    uint64_t a[N], b2[N], d[N];
    qkv_batcher *x, *y, *z;
    qkv_batcher_options o = train_options(600, 42);
    CHECK(qkv_batcher_new(&x, &c, &o) == QKV_OK && qkv_batcher_new(&y, &c, &o) == QKV_OK, "new: %s", qkv_last_error());
    o.seed = 43;
    CHECK(qkv_batcher_new(&z, &c, &o) == QKV_OK, "new: %s", qkv_last_error());
    int64_t per_epoch = qkv_batcher_epoch_batches(x);
    CHECK(3 * per_epoch < N, "%lld batches per epoch: the run does not span three epochs", (long long)per_epoch);
    run_digests(x, a, N);
    run_digests(y, b2, N);
    run_digests(z, d, N);
    int same_seed_diff = -1, diff_seed_same = 0;
    for (int k = 0; k < N; k++) {
        if (a[k] != b2[k] && same_seed_diff < 0)
            same_seed_diff = k;
        diff_seed_same += a[k] == d[k] && a[k] != 0;
    }
    CHECK(same_seed_diff < 0, "seed 42 twice: batch %d differs", same_seed_diff);
    CHECK(diff_seed_same < N / 20, "seeds 42 and 43: %d of %d batches identical", diff_seed_same, N);
    /* Epochs differ too: the first batches of epochs 0 and 1. */
    int same_epochs = 0;
    for (int k = 0; k < per_epoch && k < 20; k++)
        same_epochs += a[k] == a[per_epoch + 1 + k];
    CHECK(same_epochs < 2, "epochs 0 and 1 share %d of their first 20 batches", same_epochs);
    qkv_batcher_free(x);
    qkv_batcher_free(y);
    qkv_batcher_free(z);
    qkv_parallel_free(&c);
}

/* Sorting groups pairs of equal lengths; the shuffled position breaking ties
 * regroups them every epoch, and the batches themselves come in random length
 * order, not shortest first. */
static void test_batcher_epochs_regroup(void)
{
    /* Every pair has the same lengths, so only the tie-break decides the groups. */
    char src[4000], tgt[4000];
    size_t ns = 0, nt = 0;
    for (int i = 0; i < 400; i++) {
        ns += (size_t)snprintf(src + ns, sizeof src - ns, "%d 5 6\n", 10 + i);
        nt += (size_t)snprintf(tgt + nt, sizeof tgt - nt, "7 %d\n", 10 + i);
    }
    qkv_parallel c;
    qkv_parallel_options po = numbers_options(0);
    CHECK(qkv_parallel_read_text(&c, src, ns, "same.src", tgt, nt, "same.tgt", &po, NULL) == QKV_OK && c.n_pairs == 400,
          "read: %s", qkv_last_error());
    qkv_batcher_options o = train_options(40, 8); /* 10 rows of width 4 */
    qkv_batcher *b;
    CHECK(qkv_batcher_new(&b, &c, &o) == QKV_OK, "new: %s", qkv_last_error());
    /* group[e][i]: the smallest pair index in pair i's batch in epoch e. */
    static int group[2][400];
    qkv_batch bt;
    for (int e = 0; e < 2 && b; e++)
        while (qkv_batcher_next(b, &bt)) {
            int m = bt.index[0];
            for (int r = 1; r < bt.B; r++)
                m = bt.index[r] < m ? bt.index[r] : m;
            for (int r = 0; r < bt.B; r++)
                group[e][bt.index[r]] = m;
        }
    int same = 0;
    for (int i = 0; i < 400; i++)
        same += group[0][i] == group[1][i];
    CHECK(same < 200, "%d of 400 pairs keep the same batch leader across epochs: groups are not reshuffled", same);
    qkv_batcher_free(b);
    qkv_parallel_free(&c);

    /* Varied lengths: the widths of successive batches go down about as
     * often as up. */
    make_corpus(&c, 1000, 50, 50, 0, 20);
    o = train_options(500, 8);
    CHECK(qkv_batcher_new(&b, &c, &o) == QKV_OK, "new: %s", qkv_last_error());
    int prev = -1, down = 0, steps = 0;
    while (b && qkv_batcher_next(b, &bt)) {
        int w = bt.S > bt.T ? bt.S : bt.T;
        if (prev >= 0)
            down += w < prev, steps++;
        prev = w;
    }
    CHECK(down > steps / 4, "batch widths went down %d times in %d steps: batches not shuffled", down, steps);
    qkv_batcher_free(b);
    qkv_parallel_free(&c);
}

static void test_batcher_resume_identical(void)
{
    qkv_parallel c;
    make_corpus(&c, 700, 35, 35, 0, 14);
    qkv_batcher_options o = train_options(700, 9);
    o.sort_window = 150;
    qkv_batcher *ref;
    CHECK(qkv_batcher_new(&ref, &c, &o) == QKV_OK, "new: %s", qkv_last_error());
    int64_t e0 = qkv_batcher_epoch_batches(ref);
    enum { N = 400 };
    uint64_t want[N];
    run_digests(ref, want, N);
    qkv_batcher_free(ref);
    /* Stop after k calls: at the start, mid-epoch, on the last batch of an
     * epoch (before next() reports its end), just after that report, and in a
     * later epoch. */
    int stops[] = {0, 1, 17, (int)e0 - 1, (int)e0, (int)e0 + 1, (int)e0 + 5, 2 * (int)e0 + 3};
    for (size_t s = 0; s < sizeof stops / sizeof stops[0]; s++) {
        int k = stops[s];
        if (k < 0 || k >= N / 2)
            continue;
        qkv_batcher *a, *b;
        CHECK(qkv_batcher_new(&a, &c, &o) == QKV_OK, "new: %s", qkv_last_error());
        uint64_t skip[N];
        run_digests(a, skip, k);
        qkv_data_position pos, back;
        qkv_batcher_tell(a, &pos);
        unsigned char bytes[QKV_DATA_POSITION_BYTES];
        qkv_data_position_encode(bytes, &pos);
        CHECK(qkv_data_position_decode(&back, bytes) == QKV_OK, "decode: %s", qkv_last_error());
        CHECK(!memcmp(&back, &pos, sizeof pos), "position changed through its bytes");
        qkv_batcher_free(a);
        /* A fresh batcher, as a resumed process would build it. */
        CHECK(qkv_batcher_new(&b, &c, &o) == QKV_OK, "new: %s", qkv_last_error());
        CHECK(qkv_batcher_seek(b, &back) == QKV_OK, "seek after %d: %s", k, qkv_last_error());
        uint64_t got[N];
        run_digests(b, got, N - k);
        for (int i = 0; i < N - k; i++)
            if (got[i] != want[k + i]) {
                CHECK(0, "resumed after %d calls: call %d differs from the uninterrupted run", k, k + i);
                break;
            }
        qkv_batcher_free(b);
    }
    qkv_parallel_free(&c);
}

static void test_batcher_seek_rejects(void)
{
    qkv_parallel c, c2;
    make_corpus(&c, 300, 20, 20, 0, 15);
    make_corpus(&c2, 300, 20, 20, 0, 16);
    qkv_batcher_options o = train_options(300, 1);
    qkv_batcher *a, *b;
    CHECK(qkv_batcher_new(&a, &c, &o) == QKV_OK, "new: %s", qkv_last_error());
    uint64_t skip[5];
    run_digests(a, skip, 5);
    qkv_data_position pos;
    qkv_batcher_tell(a, &pos);

    CHECK(qkv_batcher_new(&b, &c2, &o) == QKV_OK, "new: %s", qkv_last_error());
    CHECK(qkv_batcher_seek(b, &pos) == QKV_ERR_ARG && strstr(qkv_last_error(), "another corpus"),
          "another corpus: %s", qkv_last_error());
    qkv_batcher_free(b);
    o.seed = 2;
    CHECK(qkv_batcher_new(&b, &c, &o) == QKV_OK, "new: %s", qkv_last_error());
    CHECK(qkv_batcher_seek(b, &pos) == QKV_ERR_ARG && strstr(qkv_last_error(), "batching options"),
          "another seed: %s", qkv_last_error());
    qkv_batcher_free(b);
    o.seed = 1;

    /* A batch beyond its epoch fails and leaves the batcher where it was. */
    CHECK(qkv_batcher_new(&b, &c, &o) == QKV_OK, "new: %s", qkv_last_error());
    uint64_t before[3], after[3];
    run_digests(b, before, 2);
    qkv_data_position bad = pos;
    bad.batch = qkv_batcher_epoch_batches(a) + 100;
    CHECK(qkv_batcher_seek(b, &bad) == QKV_ERR_ARG && strstr(qkv_last_error(), "only"), "batch beyond: %s",
          qkv_last_error());
    run_digests(b, after, 3);
    run_digests(a, before, 0);
    qkv_batcher *fresh;
    CHECK(qkv_batcher_new(&fresh, &c, &o) == QKV_OK, "new: %s", qkv_last_error());
    uint64_t want[5];
    run_digests(fresh, want, 5);
    CHECK(after[0] == want[2] && after[1] == want[3] && after[2] == want[4], "a failed seek moved the batcher");
    qkv_batcher_free(fresh);
    qkv_batcher_free(b);

    /* Damaged bytes. */
    unsigned char bytes[QKV_DATA_POSITION_BYTES];
    qkv_data_position_encode(bytes, &pos);
    qkv_data_position back;
    bytes[20] ^= 1;
    CHECK(qkv_data_position_decode(&back, bytes) == QKV_ERR_FORMAT && strstr(qkv_last_error(), "checksum"),
          "flipped bit: %s", qkv_last_error());
    qkv_data_position_encode(bytes, &pos);
    bytes[0] = 'X';
    CHECK(qkv_data_position_decode(&back, bytes) == QKV_ERR_FORMAT && strstr(qkv_last_error(), "magic"),
          "bad magic: %s", qkv_last_error());
    qkv_batcher_free(a);
    qkv_parallel_free(&c);
    qkv_parallel_free(&c2);
}

static void test_batcher_keep_for_accumulation(void)
{
    /* keep = 4: four micro-batches fetched before any is used are all intact,
     * and they are the batches keep = 1 gives. */
    qkv_parallel c;
    make_corpus(&c, 400, 30, 30, 0, 22);
    qkv_batcher_options o = train_options(300, 6);
    qkv_batcher *one, *four;
    CHECK(qkv_batcher_new(&one, &c, &o) == QKV_OK, "new: %s", qkv_last_error());
    o.keep = 4;
    CHECK(qkv_batcher_new(&four, &c, &o) == QKV_OK, "new keep 4: %s", qkv_last_error());
    enum { STEPS = 40 };
    uint64_t want[4 * STEPS];
    run_digests(one, want, 4 * STEPS);
    int k = 0, bad = 0;
    for (int step = 0; step < STEPS && !bad; step++) {
        qkv_batch micro[4];
        uint64_t at_fetch[4];
        for (int a = 0; a < 4; a++, k++) {
            at_fetch[a] = qkv_batcher_next(four, &micro[a]) ? batch_digest(&micro[a]) : 0;
            CHECK(at_fetch[a] == want[k], "keep 4 gives another batch at call %d", k);
        }
        for (int a = 0; a < 4; a++)
            if (at_fetch[a] && batch_digest(&micro[a]) != at_fetch[a]) {
                CHECK(0, "step %d: micro-batch %d changed after the next ones were fetched", step, a);
                bad = 1;
            }
    }
    /* keep does not shape the plan: a position moves between the two. */
    qkv_data_position pos;
    qkv_batcher_tell(four, &pos);
    CHECK(qkv_batcher_seek(one, &pos) == QKV_OK, "seek from keep 4 to keep 1: %s", qkv_last_error());
    o.keep = 0;
    CHECK(qkv_batcher_validate(&o) == QKV_ERR_CONFIG && strstr(qkv_last_error(), "keep"), "keep 0: %s",
          qkv_last_error());
    qkv_batcher_free(one);
    qkv_batcher_free(four);
    qkv_parallel_free(&c);
}

static void test_batcher_dev_order(void)
{
    qkv_parallel c;
    make_corpus(&c, 500, 30, 30, 0, 17);
    int n = (int)c.n_pairs;
    qkv_batcher_options o = train_options(400, 0);
    o.shuffle = 0;
    /* Sorted: widths never decrease, and the row indices put results back in
     * corpus order. */
    qkv_batcher *b;
    CHECK(qkv_batcher_new(&b, &c, &o) == QKV_OK, "new: %s", qkv_last_error());
    int *slot = malloc((size_t)n * sizeof *slot), prev_w = 0, k = 0;
    for (int i = 0; i < n; i++)
        slot[i] = -1;
    qkv_batch bt;
    while (b && qkv_batcher_next(b, &bt)) {
        for (int r = 0; r < bt.B; r++, k++) {
            int w = row_width(&c, bt.index[r]);
            CHECK(w >= prev_w, "dev row %d has width %d after %d: not sorted", k, w, prev_w);
            prev_w = w;
            slot[bt.index[r]] = k;
        }
    }
    for (int i = 0; i < n; i++)
        if (slot[i] < 0) {
            CHECK(0, "pair %d never produced", i);
            break;
        }
    /* Later dev passes are identical to the first (the RNG is not drawn). */
    uint64_t first[64];
    int nb = (int)qkv_batcher_epoch_batches(b);
    CHECK(nb < 64, "%d dev batches", nb);
    for (int pass = 0; pass < 3 && nb < 64; pass++) {
        int i = 0;
        while (qkv_batcher_next(b, &bt)) {
            CHECK(bt.epoch == pass + 1, "dev pass %d reports epoch %lld", pass + 1, (long long)bt.epoch);
            bt.epoch = 0; /* compare the contents only */
            uint64_t d = batch_digest(&bt);
            if (pass == 0 && i < 64)
                first[i] = d;
            else
                CHECK(i < nb && d == first[i], "dev pass %d differs from the first at batch %d", pass + 1, i);
            i++;
        }
        CHECK(i == nb, "dev pass %d has %d batches, want %d", pass + 1, i, nb);
    }
    qkv_batcher_free(b);
    /* Unsorted: corpus order, row after row. */
    o.sort_by_length = 0;
    CHECK(qkv_batcher_new(&b, &c, &o) == QKV_OK, "new: %s", qkv_last_error());
    k = 0;
    while (b && qkv_batcher_next(b, &bt))
        for (int r = 0; r < bt.B; r++, k++)
            if (bt.index[r] != k) {
                CHECK(0, "unsorted dev row %d is pair %d", k, bt.index[r]);
                k = n;
                break;
            }
    qkv_batcher_free(b);
    free(slot);
    qkv_parallel_free(&c);
}

/* Cells that hold real tokens, over all cells of one epoch. */
static double epoch_fill(const qkv_parallel *c, const qkv_batcher_options *o)
{
    qkv_batcher *b;
    if (qkv_batcher_new(&b, c, o) != QKV_OK)
        return -1;
    int64_t real = 0, cells = 0;
    qkv_batch bt;
    while (qkv_batcher_next(b, &bt)) {
        real += bt.src_tokens + bt.tgt_tokens;
        cells += (int64_t)bt.B * (bt.S + bt.T);
    }
    qkv_batcher_free(b);
    return (double)real / (double)cells;
}

static void test_batcher_bucketing_saves_padding(void)
{
    qkv_parallel c;
    make_corpus(&c, 2000, 60, 60, 0, 18);
    qkv_batcher_options o = train_options(1500, 4);
    double sorted = epoch_fill(&c, &o);
    o.sort_window = 200;
    double windowed = epoch_fill(&c, &o);
    o.sort_by_length = 0;
    double unsorted = epoch_fill(&c, &o);
    /* Measured with this corpus and seed: sorted 0.757, windows of 200
     * 0.692, unsorted 0.533 (source and target lengths are independent, so
     * even sorted batches pad one side). A window sorts less than the whole
     * corpus, and more than nothing. */
    CHECK(sorted > 0.7 && sorted > unsorted + 0.15, "fill: sorted %.3f, unsorted %.3f", sorted, unsorted);
    CHECK(windowed > unsorted + 0.1 && windowed < sorted - 0.03, "fill: windowed %.3f (sorted %.3f, unsorted %.3f)",
          windowed, sorted, unsorted);
    qkv_parallel_free(&c);
}

static void test_batcher_options(void)
{
    qkv_parallel c;
    make_corpus(&c, 10, 5, 5, 0, 19);
    qkv_batcher *b = (qkv_batcher *)&c; /* must be reset to NULL on failure */
    qkv_batcher_options o = train_options(0, 1);
    CHECK(qkv_batcher_new(&b, &c, &o) == QKV_ERR_CONFIG && strstr(qkv_last_error(), "batch_tokens") && !b,
          "batch_tokens 0: %s", qkv_last_error());
    o = train_options(100, 1), o.pad_id = -1;
    CHECK(qkv_batcher_validate(&o) == QKV_ERR_CONFIG && strstr(qkv_last_error(), "pad_id"), "pad -1: %s",
          qkv_last_error());
    o = train_options(100, 1), o.sort_window = -2;
    CHECK(qkv_batcher_validate(&o) == QKV_ERR_CONFIG && strstr(qkv_last_error(), "sort_window"), "window: %s",
          qkv_last_error());
    o = train_options(100, 1), o.max_sentences = -1;
    CHECK(qkv_batcher_validate(&o) == QKV_ERR_CONFIG && strstr(qkv_last_error(), "max_sentences"), "sentences: %s",
          qkv_last_error());
    qkv_parallel empty;
    qkv_parallel_options po = numbers_options(0);
    CHECK(read_str(&empty, "\n\n", "\n\n", &po, NULL) == QKV_OK && empty.n_pairs == 0, "empty corpus read");
    o = train_options(100, 1);
    CHECK(qkv_batcher_new(&b, &empty, &o) == QKV_ERR_ARG && strstr(qkv_last_error(), "no sentence pairs"),
          "empty corpus: %s", qkv_last_error());
    qkv_parallel_free(&empty);
    /* One pair: one batch per epoch, epoch after epoch. */
    qkv_parallel one;
    CHECK(read_str(&one, "4 5\n", "6\n", &po, NULL) == QKV_OK && one.n_pairs == 1, "one pair: %s", qkv_last_error());
    CHECK(qkv_batcher_new(&b, &one, &o) == QKV_OK, "new: %s", qkv_last_error());
    qkv_batch bt;
    for (int e = 0; e < 3 && b; e++) {
        CHECK(qkv_batcher_next(b, &bt) == 1 && bt.B == 1 && bt.epoch == e && bt.index[0] == 0, "epoch %d: no batch", e);
        CHECK(qkv_batcher_next(b, &bt) == 0, "epoch %d: a second batch", e);
    }
    qkv_batcher_free(b);
    qkv_parallel_free(&one);
    qkv_parallel_free(&c);
}

/* rank/world/share: every rank walks the reference plan; it builds exactly
 * its share of each group of world * share batches (the same arrays as one
 * process builds), gets the others' sizes and token counts, and ends at the
 * same position. */
static void test_batcher_ranks_deal(void)
{
    qkv_parallel c;
    make_corpus(&c, 700, 35, 35, 0, 15);
    enum { WORLD = 3, SHARE = 2, CALLS = 150 };
    qkv_batcher_options o = train_options(700, 9);
    o.keep = SHARE;
    qkv_batcher *ref, *rk[WORLD];
    CHECK(qkv_batcher_new(&ref, &c, &o) == QKV_OK, "new: %s", qkv_last_error());
    for (int r = 0; r < WORLD; r++) {
        qkv_batcher_options ro = o;
        ro.rank = r;
        ro.world = WORLD;
        ro.share = SHARE;
        CHECK(qkv_batcher_new(&rk[r], &c, &ro) == QKV_OK, "new rank %d: %s", r, qkv_last_error());
    }
    int64_t dealt = 0;
    for (int k = 0; k < CALLS && !test_failures(); k++) {
        qkv_batch want, got;
        int w = qkv_batcher_next(ref, &want);
        int owner = (int)(dealt % (WORLD * SHARE)) / SHARE;
        for (int r = 0; r < WORLD; r++) {
            int g = qkv_batcher_next(rk[r], &got);
            CHECK(g == w, "call %d, rank %d: next() %d, one process %d", k, r, g, w);
            if (!w || g != w)
                continue;
            CHECK(got.B == want.B && got.S == want.S && got.T == want.T && got.tgt_tokens == want.tgt_tokens &&
                      got.src_tokens == want.src_tokens && got.epoch == want.epoch && got.batch == want.batch,
                  "call %d, rank %d: batch %lld of epoch %lld is %dx%dx%d (%lld/%lld tokens), one process "
                  "%dx%dx%d (%lld/%lld)", k, r, (long long)got.batch, (long long)got.epoch, got.B, got.S, got.T,
                  (long long)got.src_tokens, (long long)got.tgt_tokens, want.B, want.S, want.T,
                  (long long)want.src_tokens, (long long)want.tgt_tokens);
            CHECK(got.owned == (r == owner), "call %d, rank %d: owned %d, want %d", k, r, got.owned, r == owner);
            if (got.owned && got.B == want.B && got.S == want.S && got.T == want.T)
                CHECK(!memcmp(got.src, want.src, (size_t)want.B * want.S * sizeof(int)) &&
                          !memcmp(got.tgt_in, want.tgt_in, (size_t)want.B * want.T * sizeof(int)) &&
                          !memcmp(got.labels, want.labels, (size_t)want.B * want.T * sizeof(int)),
                      "call %d, rank %d: the arrays differ from one process's", k, r);
            if (!got.owned)
                CHECK(!got.src && !got.labels, "call %d, rank %d: another rank's batch has arrays", k, r);
        }
        if (w)
            dealt++;
    }
    qkv_data_position pw, pg;
    qkv_batcher_tell(ref, &pw);
    for (int r = 0; r < WORLD; r++) {
        qkv_batcher_tell(rk[r], &pg);
        CHECK(!memcmp(&pw, &pg, sizeof pw), "rank %d ends at another position than one process", r);
        qkv_batcher_free(rk[r]);
    }
    qkv_batcher_options bad = o;
    bad.rank = 3;
    bad.world = 3;
    CHECK(qkv_batcher_validate(&bad) == QKV_ERR_CONFIG && strstr(qkv_last_error(), "rank"),
          "rank 3 of 3 accepted: %s", qkv_last_error());
    qkv_batcher_free(ref);
    qkv_parallel_free(&c);
}

static const test_case cases[] = {
    TEST(test_batcher_epoch_invariants),
    TEST(test_batcher_oversized_pair_alone),
    TEST(test_batcher_without_source_eos),
    TEST(test_batcher_seeds),
    TEST(test_batcher_epochs_regroup),
    TEST(test_batcher_resume_identical),
    TEST(test_batcher_seek_rejects),
    TEST(test_batcher_keep_for_accumulation),
    TEST(test_batcher_dev_order),
    TEST(test_batcher_bucketing_saves_padding),
    TEST(test_batcher_options),
    TEST(test_batcher_ranks_deal),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
