#include "data/batch.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "base/status.h"

/* A pair as the sort sees it: key (w, s, t), then tie. */
typedef struct {
    int32_t w, s, t; /* max(s, t), padded source and target lengths */
    int32_t idx;     /* pair index in the corpus */
    int32_t tie;     /* position in the shuffled (or corpus) order */
} sort_item;

struct qkv_batcher {
    const qkv_parallel *corpus;
    qkv_batcher_options opt;
    int n;            /* pairs */
    int *order;       /* [n] pair indices, batch after batch */
    int *bstart;      /* [n + 1] batch k is order[bstart[k], bstart[k + 1]) */
    int *order2;      /* [n] scratch: the shuffled pairs, then the batch permutation */
    int *bstart2;     /* [n + 1] scratch: boundaries after shuffling batches */
    sort_item *items; /* [n] the sort's view of the pairs; then scratch */
    int nbatches;
    int64_t epoch, cursor;
    qkv_rng rng;       /* advanced by planning */
    qkv_rng epoch_rng; /* state before planning the current epoch */
    uint64_t corpus_hash, options_hash;
    qkv_batch_limits lim;
    int *src, *tgt_in, *labels;     /* keep x [max_src_cells], keep x [max_tgt_cells] x 2 */
    int *src_len, *tgt_len, *index; /* keep x [max_rows] */
    int64_t filled;                 /* batches handed out: picks the set of arrays */
    int64_t dealt;                  /* batches handed out since the last group boundary (new, seek) */
};

qkv_batcher_options qkv_batcher_default_options(void)
{
    qkv_batcher_options o = {
        .batch_tokens = 4096,
        .max_sentences = 0,
        .pad_id = 0,
        .shuffle = 1,
        .sort_by_length = 1,
        .sort_window = 0,
        .seed = 1,
        .keep = 1,
        .rank = 0,
        .world = 1,
        .share = 1,
    };
    return o;
}

qkv_status qkv_batcher_validate(const qkv_batcher_options *o)
{
    if (o->batch_tokens <= 0)
        return qkv_fail(QKV_ERR_CONFIG, "batcher: field 'batch_tokens' is %d; expected > 0", o->batch_tokens);
    if (o->max_sentences < 0)
        return qkv_fail(QKV_ERR_CONFIG, "batcher: field 'max_sentences' is %d; expected >= 0 (0: no limit)",
                        o->max_sentences);
    if (o->pad_id < 0)
        return qkv_fail(QKV_ERR_CONFIG, "batcher: field 'pad_id' is %d; expected an id >= 0", o->pad_id);
    if (o->shuffle != 0 && o->shuffle != 1)
        return qkv_fail(QKV_ERR_CONFIG, "batcher: field 'shuffle' is %d; expected 0 or 1", o->shuffle);
    if (o->sort_by_length != 0 && o->sort_by_length != 1)
        return qkv_fail(QKV_ERR_CONFIG, "batcher: field 'sort_by_length' is %d; expected 0 or 1", o->sort_by_length);
    if (o->keep < 1 || o->keep > 4096)
        return qkv_fail(QKV_ERR_CONFIG, "batcher: field 'keep' is %d; expected 1 to 4096", o->keep);
    if (o->world < 1 || o->share < 1 || o->rank < 0 || o->rank >= o->world)
        return qkv_fail(QKV_ERR_CONFIG, "batcher: fields 'rank', 'world', 'share' are %d, %d, %d; expected "
                                        "0 <= rank < world, share >= 1", o->rank, o->world, o->share);
    if (o->sort_window < 0)
        return qkv_fail(QKV_ERR_CONFIG, "batcher: field 'sort_window' is %d; expected >= 0 (0: the whole corpus)",
                        o->sort_window);
    return QKV_OK;
}

/* ---- fingerprints --------------------------------------------------------- */

static uint64_t mix(uint64_t h, uint64_t v) { return qkv_splitmix64(h ^ v) + 0x9e3779b97f4a7c15ULL * (v | 1); }

static uint64_t hash_corpus(const qkv_parallel *c)
{
    uint64_t h = mix(0x636f72707573ULL, (uint64_t)c->n_pairs);
    h = mix(h, (uint64_t)(int64_t)c->src_eos);
    h = mix(h, (uint64_t)(int64_t)c->tgt_bos);
    h = mix(h, (uint64_t)(int64_t)c->tgt_eos);
    for (int64_t i = 0; i < c->n_pairs; i++)
        h = mix(h, ((uint64_t)(uint32_t)c->pairs[i].src_len << 32) | (uint32_t)c->pairs[i].tgt_len);
    /* Ids two at a time: one pass over the corpus at start-up. */
    for (size_t i = 0; i < c->n_ids; i += 2) {
        uint64_t lo = (uint32_t)c->ids[i], hi = i + 1 < c->n_ids ? (uint32_t)c->ids[i + 1] : 0xffffffffu;
        h = mix(h, lo | hi << 32);
    }
    return h;
}

/* keep in sync with qkv_batcher_options: every field that shapes the plan
 * (not `keep`, which only decides how long batches stay valid). */
static uint64_t hash_options(const qkv_batcher_options *o)
{
    uint64_t h = mix(0x6f7074696f6e73ULL, (uint64_t)o->batch_tokens);
    h = mix(h, (uint64_t)o->max_sentences);
    h = mix(h, (uint64_t)o->pad_id);
    h = mix(h, (uint64_t)o->shuffle);
    h = mix(h, (uint64_t)o->sort_by_length);
    h = mix(h, (uint64_t)o->sort_window);
    return mix(h, o->shuffle ? o->seed : 0);
}

/* ---- planning an epoch ---------------------------------------------------- */

static int cmp_items(const void *pa, const void *pb)
{
    const sort_item *a = pa, *b = pb;
    if (a->w != b->w)
        return a->w < b->w ? -1 : 1;
    if (a->s != b->s)
        return a->s < b->s ? -1 : 1;
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    return (a->tie > b->tie) - (a->tie < b->tie); /* ties are unique: a total order, whatever qsort does */
}

static void shuffle_ints(int *a, int n, qkv_rng *r)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)qkv_rng_below(r, (uint64_t)i + 1);
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

static sort_item item_of(const qkv_parallel *c, int idx, int tie)
{
    int s = qkv_parallel_src_padded(c, idx), t = qkv_parallel_tgt_padded(c, idx);
    return (sort_item){.w = s > t ? s : t, .s = s, .t = t, .idx = idx, .tie = tie};
}

/* Cuts items[0, m) (in their order) into batches appended to b->order and
 * b->bstart; *pos is the next free slot of b->order. */
static void cut_batches(qkv_batcher *b, const sort_item *items, int m, int *pos)
{
    int rows = 0, S = 0, T = 0;
    for (int i = 0; i < m; i++) {
        int s = items[i].s > S ? items[i].s : S, t = items[i].t > T ? items[i].t : T;
        int64_t cost = (int64_t)(rows + 1) * (s > t ? s : t);
        int full = rows > 0 && (cost > b->opt.batch_tokens || (b->opt.max_sentences && rows == b->opt.max_sentences));
        if (full) {
            b->bstart[++b->nbatches] = *pos;
            rows = 0;
            s = items[i].s, t = items[i].t;
        }
        b->order[(*pos)++] = items[i].idx;
        rows++, S = s, T = t;
    }
    if (rows)
        b->bstart[++b->nbatches] = *pos;
}

/* Plans the current epoch from b->rng (which it advances) and rewinds the cursor. */
static void plan_epoch(qkv_batcher *b)
{
    const qkv_parallel *c = b->corpus;
    int n = b->n, *perm = b->order2;
    b->epoch_rng = b->rng;
    for (int i = 0; i < n; i++)
        perm[i] = i;
    if (b->opt.shuffle)
        shuffle_ints(perm, n, &b->rng);
    for (int i = 0; i < n; i++)
        b->items[i] = item_of(c, perm[i], i);
    int window = n;
    if (b->opt.shuffle && b->opt.sort_window > 0 && b->opt.sort_window < n)
        window = b->opt.sort_window;
    b->nbatches = 0;
    b->bstart[0] = 0;
    int pos = 0;
    for (int w0 = 0; w0 < n; w0 += window) {
        int m = n - w0 < window ? n - w0 : window;
        if (b->opt.sort_by_length)
            qsort(b->items + w0, (size_t)m, sizeof *b->items, cmp_items);
        cut_batches(b, b->items + w0, m, &pos);
    }
    if (b->opt.shuffle) {
        /* Shuffle whole batches: a permutation of batch ids (in order2, free
         * again), the rows copied aside (into items, free again), then laid
         * back batch after batch with new boundaries in bstart2. */
        int nb = b->nbatches, *bperm = b->order2, at = 0;
        for (int k = 0; k < nb; k++)
            bperm[k] = k;
        shuffle_ints(bperm, nb, &b->rng);
        for (int i = 0; i < n; i++)
            b->items[i].idx = b->order[i];
        b->bstart2[0] = 0;
        for (int k = 0; k < nb; k++) {
            for (int i = b->bstart[bperm[k]]; i < b->bstart[bperm[k] + 1]; i++)
                b->order[at++] = b->items[i].idx;
            b->bstart2[k + 1] = at;
        }
        memcpy(b->bstart, b->bstart2, ((size_t)nb + 1) * sizeof *b->bstart);
    }
    b->cursor = 0;
}

/* ---- the batcher ------------------------------------------------------------ */

static void compute_limits(qkv_batcher *b)
{
    const qkv_parallel *c = b->corpus;
    int max_s = 0, max_t = 0, min_w = 0;
    for (int i = 0; i < b->n; i++) {
        int s = qkv_parallel_src_padded(c, i), t = qkv_parallel_tgt_padded(c, i), w = s > t ? s : t;
        max_s = s > max_s ? s : max_s;
        max_t = t > max_t ? t : max_t;
        min_w = i == 0 || w < min_w ? w : min_w;
    }
    /* A batch of more than one row has rows * max(S, T) <= batch_tokens; a
     * batch of one row is one pair. Hence these bounds. */
    int rows = b->opt.batch_tokens / min_w;
    if (rows < 1)
        rows = 1;
    if (rows > b->n)
        rows = b->n;
    if (b->opt.max_sentences && rows > b->opt.max_sentences)
        rows = b->opt.max_sentences;
    b->lim.max_rows = rows;
    b->lim.max_src_len = max_s;
    b->lim.max_tgt_len = max_t;
    int64_t cap_s = (int64_t)rows * max_s, cap_t = (int64_t)rows * max_t;
    int64_t tok_s = b->opt.batch_tokens > max_s ? b->opt.batch_tokens : max_s;
    int64_t tok_t = b->opt.batch_tokens > max_t ? b->opt.batch_tokens : max_t;
    b->lim.max_src_cells = cap_s < tok_s ? cap_s : tok_s;
    b->lim.max_tgt_cells = cap_t < tok_t ? cap_t : tok_t;
}

qkv_status qkv_batcher_new(qkv_batcher **out, const qkv_parallel *corpus, const qkv_batcher_options *o)
{
    *out = NULL;
    QKV_TRY(qkv_batcher_validate(o));
    if (corpus->n_pairs <= 0)
        return qkv_fail(QKV_ERR_ARG, "batcher: the corpus holds no sentence pairs (all lines empty or filtered out?)");
    if (corpus->n_pairs >= INT32_MAX)
        return qkv_fail(QKV_ERR_UNSUPPORTED, "batcher: %lld sentence pairs; at most %d are supported",
                        (long long)corpus->n_pairs, INT32_MAX - 1);
    qkv_batcher *b = calloc(1, sizeof *b);
    if (!b)
        return qkv_fail(QKV_ERR_NOMEM, "batcher: out of memory");
    b->corpus = corpus;
    b->opt = *o;
    b->n = (int)corpus->n_pairs;
    compute_limits(b);
    size_t n = (size_t)b->n, keep = (size_t)o->keep, r = keep * (size_t)b->lim.max_rows;
    b->order = malloc(n * sizeof *b->order);
    b->order2 = malloc(n * sizeof *b->order2);
    b->bstart = malloc((n + 1) * sizeof *b->bstart);
    b->bstart2 = malloc((n + 1) * sizeof *b->bstart2);
    b->items = malloc(n * sizeof *b->items);
    b->src = malloc(keep * (size_t)b->lim.max_src_cells * sizeof *b->src);
    b->tgt_in = malloc(keep * (size_t)b->lim.max_tgt_cells * sizeof *b->tgt_in);
    b->labels = malloc(keep * (size_t)b->lim.max_tgt_cells * sizeof *b->labels);
    b->src_len = malloc(r * sizeof *b->src_len);
    b->tgt_len = malloc(r * sizeof *b->tgt_len);
    b->index = malloc(r * sizeof *b->index);
    if (!b->order || !b->order2 || !b->bstart || !b->bstart2 || !b->items || !b->src || !b->tgt_in || !b->labels ||
        !b->src_len || !b->tgt_len || !b->index) {
        qkv_batcher_free(b);
        return qkv_fail(QKV_ERR_NOMEM, "batcher: out of memory for %zu pairs", n);
    }
    b->corpus_hash = hash_corpus(corpus);
    b->options_hash = hash_options(o);
    qkv_rng_seed(&b->rng, o->seed);
    plan_epoch(b);
    *out = b;
    return QKV_OK;
}

void qkv_batcher_free(qkv_batcher *b)
{
    if (!b)
        return;
    free(b->order);
    free(b->order2);
    free(b->bstart);
    free(b->bstart2);
    free(b->items);
    free(b->src);
    free(b->tgt_in);
    free(b->labels);
    free(b->src_len);
    free(b->tgt_len);
    free(b->index);
    free(b);
}

/* Lays out batch k of the current plan. */
static void fill_batch(qkv_batcher *b, int k, qkv_batch *out)
{
    const qkv_parallel *c = b->corpus;
    const int *rows = b->order + b->bstart[k];
    int B = b->bstart[k + 1] - b->bstart[k], S = 0, T = 0, pad = b->opt.pad_id;
    size_t set = (size_t)(b->filled++ % b->opt.keep);
    int *src = b->src + set * (size_t)b->lim.max_src_cells, *tgt_in = b->tgt_in + set * (size_t)b->lim.max_tgt_cells;
    int *labels = b->labels + set * (size_t)b->lim.max_tgt_cells;
    int *src_len = b->src_len + set * (size_t)b->lim.max_rows, *tgt_len = b->tgt_len + set * (size_t)b->lim.max_rows;
    int *index = b->index + set * (size_t)b->lim.max_rows;
    for (int r = 0; r < B; r++) {
        int s = qkv_parallel_src_padded(c, rows[r]), t = qkv_parallel_tgt_padded(c, rows[r]);
        S = s > S ? s : S;
        T = t > T ? t : T;
    }
    assert(B <= b->lim.max_rows && (int64_t)B * S <= b->lim.max_src_cells && (int64_t)B * T <= b->lim.max_tgt_cells);
    int64_t src_tokens = 0, tgt_tokens = 0;
    for (int r = 0; r < B; r++) {
        int i = rows[r];
        int nx = c->pairs[i].src_len, ny = c->pairs[i].tgt_len;
        const int *x = qkv_parallel_src(c, i), *y = qkv_parallel_tgt(c, i);
        int *srow = src + (size_t)r * S, *in = tgt_in + (size_t)r * T, *lab = labels + (size_t)r * T;
        memcpy(srow, x, (size_t)nx * sizeof *x);
        int sl = nx;
        if (c->src_eos >= 0)
            srow[sl++] = c->src_eos;
        for (int j = sl; j < S; j++)
            srow[j] = pad;
        in[0] = c->tgt_bos;
        memcpy(in + 1, y, (size_t)ny * sizeof *y);
        memcpy(lab, y, (size_t)ny * sizeof *y);
        lab[ny] = c->tgt_eos;
        for (int j = ny + 1; j < T; j++)
            in[j] = lab[j] = pad;
        src_len[r] = sl;
        tgt_len[r] = ny + 1;
        index[r] = i;
        src_tokens += sl;
        tgt_tokens += ny + 1;
    }
    *out = (qkv_batch){
        .B = B, .S = S, .T = T,
        .src = src, .src_len = src_len, .tgt_in = tgt_in, .labels = labels,
        .tgt_len = tgt_len, .index = index,
        .src_tokens = src_tokens, .tgt_tokens = tgt_tokens,
        .epoch = b->epoch, .batch = k, .epoch_batches = b->nbatches,
    };
}

/* Batch k of the current plan as another rank builds it: shape and token
 * counts only. */
static void count_batch(const qkv_batcher *b, int k, qkv_batch *out)
{
    const qkv_parallel *c = b->corpus;
    const int *rows = b->order + b->bstart[k];
    int B = b->bstart[k + 1] - b->bstart[k], S = 0, T = 0;
    int64_t src_tokens = 0, tgt_tokens = 0;
    for (int r = 0; r < B; r++) {
        int s = qkv_parallel_src_padded(c, rows[r]), t = qkv_parallel_tgt_padded(c, rows[r]);
        S = s > S ? s : S;
        T = t > T ? t : T;
        src_tokens += c->pairs[rows[r]].src_len + (c->src_eos >= 0);
        tgt_tokens += c->pairs[rows[r]].tgt_len + 1;
    }
    *out = (qkv_batch){
        .B = B, .S = S, .T = T,
        .src_tokens = src_tokens, .tgt_tokens = tgt_tokens,
        .epoch = b->epoch, .batch = k, .epoch_batches = b->nbatches, .owned = 0,
    };
}

int qkv_batcher_next(qkv_batcher *b, qkv_batch *batch)
{
    if (b->cursor >= b->nbatches) {
        b->epoch++;
        plan_epoch(b);
        return 0;
    }
    int64_t group = (int64_t)b->opt.world * b->opt.share, g = b->dealt++ % group;
    if (g / b->opt.share == b->opt.rank) {
        fill_batch(b, (int)b->cursor++, batch);
        batch->owned = 1;
    } else {
        count_batch(b, (int)b->cursor++, batch);
    }
    return 1;
}

int64_t qkv_batcher_epoch_batches(const qkv_batcher *b) { return b->nbatches; }

qkv_batch_limits qkv_batcher_limits(const qkv_batcher *b) { return b->lim; }

void qkv_batcher_tell(const qkv_batcher *b, qkv_data_position *pos)
{
    memset(pos, 0, sizeof *pos);
    pos->epoch = b->epoch;
    pos->batch = b->cursor;
    memcpy(pos->rng, b->epoch_rng.s, sizeof pos->rng);
    pos->corpus_hash = b->corpus_hash;
    pos->options_hash = b->options_hash;
}

qkv_status qkv_batcher_seek(qkv_batcher *b, const qkv_data_position *pos)
{
    if (pos->corpus_hash != b->corpus_hash)
        return qkv_fail(QKV_ERR_ARG,
                        "data position: saved for another corpus (fingerprint %016llx, this corpus %016llx): "
                        "the same files, vocabularies and max length are needed to resume",
                        (unsigned long long)pos->corpus_hash, (unsigned long long)b->corpus_hash);
    if (pos->options_hash != b->options_hash)
        return qkv_fail(QKV_ERR_ARG,
                        "data position: saved with other batching options (fingerprint %016llx, now %016llx): "
                        "the same batch tokens, sentence limit, padding, shuffling and seed are needed to resume",
                        (unsigned long long)pos->options_hash, (unsigned long long)b->options_hash);
    if (pos->epoch < 0 || pos->batch < 0)
        return qkv_fail(QKV_ERR_ARG, "data position: epoch %lld, batch %lld; expected both >= 0", (long long)pos->epoch,
                        (long long)pos->batch);
    qkv_rng saved = b->rng, saved_epoch_rng = b->epoch_rng;
    int64_t saved_epoch = b->epoch, saved_cursor = b->cursor;
    memcpy(b->rng.s, pos->rng, sizeof b->rng.s);
    b->epoch = pos->epoch;
    plan_epoch(b);
    if (pos->batch > b->nbatches) {
        int64_t nb = b->nbatches;
        /* Put the old plan back so that a failed seek changes nothing. */
        b->rng = saved_epoch_rng;
        b->epoch = saved_epoch;
        plan_epoch(b);
        b->rng = saved;
        b->cursor = saved_cursor;
        return qkv_fail(QKV_ERR_ARG, "data position: batch %lld of epoch %lld, which has only %lld batches",
                        (long long)pos->batch, (long long)pos->epoch, (long long)nb);
    }
    b->cursor = pos->batch;
    b->dealt = 0;
    return QKV_OK;
}

/* ---- serialized position ----------------------------------------------------- */

static const unsigned char position_magic[8] = {'Q', 'K', 'V', 'D', 'P', 'O', 'S', '1'};

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint64_t check_of(const unsigned char *p, size_t n)
{
    uint64_t h = 0x706f736974696f6eULL;
    for (size_t i = 0; i < n; i += 8)
        h = mix(h, get_u64(p + i));
    return h;
}

void qkv_data_position_encode(unsigned char out[QKV_DATA_POSITION_BYTES], const qkv_data_position *pos)
{
    memcpy(out, position_magic, 8);
    put_u64(out + 8, (uint64_t)pos->epoch);
    put_u64(out + 16, (uint64_t)pos->batch);
    for (int i = 0; i < 4; i++)
        put_u64(out + 24 + 8 * i, pos->rng[i]);
    put_u64(out + 56, pos->corpus_hash);
    put_u64(out + 64, pos->options_hash);
    put_u64(out + 72, check_of(out, 72));
}

qkv_status qkv_data_position_decode(qkv_data_position *pos, const unsigned char in[QKV_DATA_POSITION_BYTES])
{
    if (memcmp(in, position_magic, 8) != 0)
        return qkv_fail(QKV_ERR_FORMAT, "data position: bad magic (expected \"QKVDPOS1\")");
    if (get_u64(in + 72) != check_of(in, 72))
        return qkv_fail(QKV_ERR_FORMAT, "data position: checksum mismatch (the record is damaged)");
    qkv_data_position p;
    p.epoch = (int64_t)get_u64(in + 8);
    p.batch = (int64_t)get_u64(in + 16);
    for (int i = 0; i < 4; i++)
        p.rng[i] = get_u64(in + 24 + 8 * i);
    p.corpus_hash = get_u64(in + 56);
    p.options_hash = get_u64(in + 64);
    if (p.epoch < 0 || p.batch < 0)
        return qkv_fail(QKV_ERR_FORMAT, "data position: epoch %lld, batch %lld; expected both >= 0",
                        (long long)p.epoch, (long long)p.batch);
    if (!(p.rng[0] | p.rng[1] | p.rng[2] | p.rng[3]))
        return qkv_fail(QKV_ERR_FORMAT, "data position: an all-zero RNG state (xoshiro256** cannot leave it)");
    *pos = p;
    return QKV_OK;
}
