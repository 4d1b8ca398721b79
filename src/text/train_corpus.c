/* Training text for the vocabulary trainers: reading, sampling, normalizing,
 * character coverage and word counting (sentencepiece's
 * TrainerInterface::LoadSentences and SplitSentencesByWhitespace), plus the
 * small string utilities the trainers share. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/context.h"
#include "base/io.h"
#include "base/rng.h"
#include "base/status.h"
#include "text/train.h"
#include "text/train_tables.h"

/* ---- small utilities ---------------------------------------------------- */

void train_progress(const qkv_vocab_train_options *opt, const char *fmt, ...)
{
    if (!opt->progress)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    opt->progress(opt->progress_ctx, line);
}

int train_utf8(char *out, uint32_t c)
{
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

char *train_utf8_string(const uint32_t *s, int len)
{
    char *out = malloc((size_t)len * 4 + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    for (int i = 0; i < len; i++)
        n += (size_t)train_utf8(out + n, s[i]);
    out[n] = 0;
    return out;
}

int train_script(uint32_t c)
{
    if (c == 0x30FC) /* the Katakana long vowel mark is Common in Unicode; sentencepiece keeps it with kana */
        return 2;
    size_t lo = 0, hi = train_script_count;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (train_script_start[mid] <= c)
            lo = mid;
        else
            hi = mid;
    }
    return train_script_id[lo];
}

static int is_decimal(uint32_t c) { return (c >= '0' && c <= '9') || (c >= 0xFF10 && c <= 0xFF19); }

int train_valid_piece(const qkv_vocab_train_options *opt, const uint32_t *s, int len)
{
    if (len <= 0 || len > opt->max_piece_length)
        return 0;
    int prev = TRAIN_ANY_SCRIPT;
    for (int pos = 0; pos < len; pos++) {
        uint32_t c = s[pos];
        if (c == TRAIN_UNK_CHAR || c == 0 || c == TRAIN_BOUNDARY || c == ' ' || c > 0x10FFFF ||
            (c >= 0xD800 && c <= 0xDFFF))
            return 0;
        if (c == TRAIN_WS) { /* whitespace only as the prefix of a piece */
            if (pos > 0)
                return 0;
            continue;
        }
        int sc = train_script(c);
        if (sc == 1) /* Inherited (combining marks) takes the script of what it follows */
            sc = prev;
        if (!opt->split_by_number && is_decimal(c))
            sc = TRAIN_ANY_SCRIPT;
        if (opt->split_digits && is_decimal(c) && len > 1)
            return 0;
        if (opt->split_by_unicode_script && sc != TRAIN_ANY_SCRIPT && prev != TRAIN_ANY_SCRIPT && prev != sc)
            return 0;
        prev = sc;
    }
    return 1;
}

/* ---- hash set of code-point strings --------------------------------------- */

uint64_t train_hash(const uint32_t *s, int len)
{
    uint64_t h = TRAIN_HASH_INIT;
    for (int i = 0; i < len; i++)
        h = train_hash_step(h, s[i]);
    return h;
}

static size_t slot_of(uint64_t h, size_t cap) { return (size_t)qkv_splitmix64(h) & (cap - 1); }

qkv_status train_strset_init(train_strset *s, size_t expected)
{
    memset(s, 0, sizeof *s);
    s->cap = 1024;
    while (s->cap < expected * 2)
        s->cap <<= 1;
    s->slot = malloc(s->cap * sizeof *s->slot);
    s->slot_hash = malloc(s->cap * sizeof *s->slot_hash);
    if (!s->slot || !s->slot_hash) {
        train_strset_free(s);
        return qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory for a string table of %zu slots", s->cap);
    }
    memset(s->slot, 0xFF, s->cap * sizeof *s->slot);
    return QKV_OK;
}

void train_strset_free(train_strset *s)
{
    free(s->buf);
    free(s->off);
    free(s->len);
    free(s->slot);
    free(s->slot_hash);
    memset(s, 0, sizeof *s);
}

int train_strset_find(const train_strset *set, const uint32_t *s, int len, uint64_t h)
{
    for (size_t i = slot_of(h, set->cap);; i = (i + 1) & (set->cap - 1)) {
        int32_t id = set->slot[i];
        if (id < 0)
            return -1;
        if (set->slot_hash[i] == h && set->len[id] == len &&
            !memcmp(set->buf + set->off[id], s, (size_t)len * sizeof *s))
            return id;
    }
}

static qkv_status strset_grow(train_strset *set)
{
    size_t cap = set->cap * 2;
    int32_t *slot = malloc(cap * sizeof *slot);
    uint64_t *hash = malloc(cap * sizeof *hash);
    if (!slot || !hash) {
        free(slot);
        free(hash);
        return qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory growing a string table to %zu slots", cap);
    }
    memset(slot, 0xFF, cap * sizeof *slot);
    for (size_t i = 0; i < set->cap; i++) {
        if (set->slot[i] < 0)
            continue;
        size_t j = slot_of(set->slot_hash[i], cap);
        while (slot[j] >= 0)
            j = (j + 1) & (cap - 1);
        slot[j] = set->slot[i];
        hash[j] = set->slot_hash[i];
    }
    free(set->slot);
    free(set->slot_hash);
    set->slot = slot;
    set->slot_hash = hash;
    set->cap = cap;
    return QKV_OK;
}

qkv_status train_strset_add(train_strset *set, const uint32_t *s, int len, uint64_t h, int *id, int *added)
{
    int found = train_strset_find(set, s, len, h);
    if (added)
        *added = found < 0;
    if (found >= 0) {
        *id = found;
        return QKV_OK;
    }
    if ((size_t)(set->n + 1) * 2 > set->cap)
        QKV_TRY(strset_grow(set));
    if (set->n == set->cap_ids) {
        int cap = set->cap_ids ? set->cap_ids * 2 : 1024;
        size_t *off = realloc(set->off, (size_t)cap * sizeof *off);
        if (off)
            set->off = off;
        int *ln = realloc(set->len, (size_t)cap * sizeof *ln);
        if (ln)
            set->len = ln;
        if (!off || !ln)
            return qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory for %d strings", cap);
        set->cap_ids = cap;
    }
    if (set->buf_len + (size_t)len > set->buf_cap) {
        size_t cap = set->buf_cap ? set->buf_cap : 4096;
        while (cap < set->buf_len + (size_t)len)
            cap *= 2;
        uint32_t *buf = realloc(set->buf, cap * sizeof *buf);
        if (!buf)
            return qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory for %zu code points", cap);
        set->buf = buf;
        set->buf_cap = cap;
    }
    memcpy(set->buf + set->buf_len, s, (size_t)len * sizeof *s);
    set->off[set->n] = set->buf_len;
    set->len[set->n] = len;
    set->buf_len += (size_t)len;
    size_t i = slot_of(h, set->cap);
    while (set->slot[i] >= 0)
        i = (i + 1) & (set->cap - 1);
    set->slot[i] = set->n;
    set->slot_hash[i] = h;
    *id = set->n++;
    return QKV_OK;
}

/* ---- loading ------------------------------------------------------------- */

typedef struct {
    const char *p;
    size_t len;
} line_ref;

typedef struct {
    char **files;
    int n_files;
    line_ref *lines;
    size_t n, cap;
    int64_t seen;
} line_pool;

static void line_pool_free(line_pool *lp)
{
    for (int i = 0; i < lp->n_files; i++)
        free(lp->files[i]);
    free(lp->files);
    free(lp->lines);
}

/* Keeps every line, or a uniform sample of max lines (reservoir sampling
 * with our seeded generator, so the sample depends only on the seed). */
static qkv_status line_pool_add(line_pool *lp, const char *p, size_t len, long max, qkv_rng *rng)
{
    lp->seen++;
    if (max > 0 && lp->n == (size_t)max) {
        uint64_t j = qkv_rng_below(rng, (uint64_t)lp->seen);
        if (j < (uint64_t)max)
            lp->lines[j] = (line_ref){p, len};
        return QKV_OK;
    }
    if (lp->n == lp->cap) {
        size_t cap = lp->cap ? lp->cap * 2 : 4096;
        line_ref *l = realloc(lp->lines, cap * sizeof *l);
        if (!l)
            return qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory for %zu lines", cap);
        lp->lines = l;
        lp->cap = cap;
    }
    lp->lines[lp->n++] = (line_ref){p, len};
    return QKV_OK;
}

static qkv_status read_lines(line_pool *lp, const qkv_vocab_train_options *opt, const char *const *inputs,
                             int n_inputs, int64_t skipped[2])
{
    qkv_rng rng;
    qkv_rng_seed(&rng, opt->seed);
    lp->files = calloc((size_t)n_inputs, sizeof *lp->files);
    if (!lp->files)
        return qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory");
    static const char unk_utf8[] = "\xe2\x96\x85";
    for (int f = 0; f < n_inputs; f++) {
        size_t len;
        qkv_status s = qkv_read_file(inputs[f], &lp->files[f], &len);
        if (s != QKV_OK)
            return s;
        lp->n_files = f + 1;
        char *p = lp->files[f], *end = p + len;
        while (p < end) {
            char *nl = memchr(p, '\n', (size_t)(end - p));
            char *le = nl ? nl : end;
            size_t n = (size_t)(le - p);
            if (n > 0 && p[n - 1] == '\r')
                n--;
            if (n > (size_t)opt->max_sentence_bytes)
                skipped[0]++;
            else if (n > 0 && memmem(p, n, unk_utf8, 3)) /* ▅ is reserved, as in sentencepiece */
                skipped[1]++;
            else if (n > 0)
                QKV_TRY(line_pool_add(lp, p, n, opt->max_sentences, &rng));
            p = nl ? nl + 1 : end;
        }
        train_progress(opt, "read %s: %lld lines so far", inputs[f], (long long)lp->seen);
    }
    return QKV_OK;
}

/* Replaces each user-defined symbol in the normalized text by the boundary
 * mark (longest match first), as sentencepiece's meta-piece matcher does, so
 * that no piece is learned across or inside one. */
static void cut_user_symbols(uint32_t *t, int *len, uint32_t **sym, const int *sym_len, int n_sym)
{
    int w = 0;
    for (int i = 0; i < *len;) {
        int best = 0;
        for (int k = 0; k < n_sym; k++)
            if (sym_len[k] > best && i + sym_len[k] <= *len && !memcmp(t + i, sym[k], (size_t)sym_len[k] * 4))
                best = sym_len[k];
        if (best) {
            t[w++] = TRAIN_BOUNDARY;
            i += best;
        } else {
            t[w++] = t[i++];
        }
    }
    *len = w;
}

/* Distinct words with counts. A key is the word's code points plus one unit
 * for what followed it (▁ or 0). */
typedef struct {
    train_strset set;
    int64_t *freq;
    size_t cap;
} word_counter;

static void wc_free(word_counter *wc)
{
    train_strset_free(&wc->set);
    free(wc->freq);
    memset(wc, 0, sizeof *wc);
}

static qkv_status wc_add(word_counter *wc, const uint32_t *key, int len, int64_t f)
{
    int id, added;
    QKV_TRY(train_strset_add(&wc->set, key, len, train_hash(key, len), &id, &added));
    if ((size_t)id >= wc->cap) {
        size_t nc = wc->cap ? wc->cap * 2 : 4096;
        int64_t *f2 = realloc(wc->freq, nc * sizeof *f2);
        if (!f2)
            return qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory counting words");
        memset(f2 + wc->cap, 0, (nc - wc->cap) * sizeof *f2);
        wc->freq = f2;
        wc->cap = nc;
    }
    wc->freq[id] += f;
    return QKV_OK;
}

/* Words start at the sentence start and before each ▁; a boundary mark
 * ends a word and is dropped. t has room for one more unit at t[n]. */
static qkv_status wc_add_sentence(word_counter *wc, uint32_t *t, int n)
{
    for (int b = 0; b < n;) {
        if (t[b] == TRAIN_BOUNDARY) {
            b++;
            continue;
        }
        int e = b + 1;
        while (e < n && t[e] != TRAIN_WS && t[e] != TRAIN_BOUNDARY)
            e++;
        uint32_t saved = t[e];
        t[e] = e < n && t[e] == TRAIN_WS ? TRAIN_WS : 0;
        qkv_status st = wc_add(wc, t + b, e - b + 1, 1);
        t[e] = saved;
        QKV_TRY(st);
        b = e;
    }
    return QKV_OK;
}

static int cmp_char_freq(const void *a, const void *b)
{
    const int64_t *x = a, *y = b; /* (freq, code point) pairs */
    if (x[0] != y[0])
        return x[0] > y[0] ? -1 : 1;
    return x[1] < y[1] ? -1 : x[1] > y[1];
}

/* Chooses the required characters (most frequent first until the coverage is
 * reached, as sentencepiece does), rewrites the others as ▅ and lays the
 * words out in c->words. */
static qkv_status apply_coverage(train_corpus *c, word_counter *wc)
{
    int64_t *count = calloc(0x110000, sizeof *count);
    int64_t *pairs = NULL;
    word_counter out = {0};
    uint32_t *key = NULL;
    qkv_status st = QKV_OK;
    if (!count)
        return qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory");
    int64_t all = 0;
    int distinct = 0, max_len = 1;
    for (int i = 0; i < wc->set.n; i++) {
        const uint32_t *k = train_strset_key(&wc->set, i);
        int n = wc->set.len[i] - 1;
        max_len = n + 1 > max_len ? n + 1 : max_len;
        for (int j = 0; j < n; j++) {
            if (k[j] == 0) /* NUL: never a piece (sentencepiece skips it too), so it becomes ▅ */
                continue;
            distinct += count[k[j]] == 0;
            count[k[j]] += wc->freq[i];
            all += wc->freq[i];
        }
    }
    pairs = malloc((size_t)(distinct + 1) * 2 * sizeof *pairs);
    c->req_chars = malloc((size_t)(distinct + 1) * sizeof *c->req_chars);
    c->req_freq = malloc((size_t)(distinct + 1) * sizeof *c->req_freq);
    key = malloc((size_t)max_len * sizeof *key);
    if (!pairs || !c->req_chars || !c->req_freq || !key) {
        st = qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory");
        goto done;
    }
    int np = 0;
    for (uint32_t ch = 0; ch < 0x110000; ch++)
        if (count[ch]) {
            pairs[2 * np] = count[ch];
            pairs[2 * np + 1] = ch;
            np++;
        }
    qsort(pairs, (size_t)np, 2 * sizeof *pairs, cmp_char_freq);
    float cov = c->opt->character_coverage;
    if (cov <= 0)
        cov = distinct <= 1000 ? 1.0f : 0.9995f;
    c->coverage = cov;
    int64_t acc = 0;
    c->n_req = 0;
    for (int i = 0; i < np; i++) {
        /* the same float comparison as sentencepiece, so both keep the same alphabet */
        float coverage = (float)(1.0 * acc / all);
        if (coverage >= cov)
            break;
        acc += pairs[2 * i];
        c->req_chars[c->n_req] = (uint32_t)pairs[2 * i + 1];
        c->req_freq[c->n_req++] = pairs[2 * i];
    }
    train_progress(c->opt, "alphabet: %d of %d characters (coverage %.6f of %.4f asked)", c->n_req, np,
                   all ? 1.0 * acc / all : 1.0, cov);
    memset(count, 0, 0x110000 * sizeof *count);
    for (int i = 0; i < c->n_req; i++)
        count[c->req_chars[i]] = 1;
    st = train_strset_init(&out.set, (size_t)wc->set.n);
    for (int i = 0; i < wc->set.n && st == QKV_OK; i++) {
        const uint32_t *k = train_strset_key(&wc->set, i);
        int n = wc->set.len[i];
        for (int j = 0; j < n; j++)
            key[j] = j < n - 1 && !count[k[j]] ? TRAIN_UNK_CHAR : k[j];
        st = wc_add(&out, key, n, wc->freq[i]);
    }
    if (st != QKV_OK)
        goto done;
    train_words *w = &c->words;
    w->n = out.set.n;
    w->chars = malloc((out.set.buf_len + 1) * sizeof *w->chars);
    w->offset = malloc(((size_t)out.set.n + 1) * sizeof *w->offset);
    w->freq = malloc(((size_t)out.set.n + 1) * sizeof *w->freq);
    w->ws_after = malloc((size_t)out.set.n + 1);
    if (!w->chars || !w->offset || !w->freq || !w->ws_after) {
        st = qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory");
        goto done;
    }
    size_t pos = 0;
    for (int i = 0; i < out.set.n; i++) {
        const uint32_t *k = train_strset_key(&out.set, i);
        int n = out.set.len[i] - 1;
        memcpy(w->chars + pos, k, (size_t)n * sizeof *k);
        w->offset[i] = pos;
        w->freq[i] = out.freq[i];
        w->ws_after[i] = k[n] == TRAIN_WS;
        pos += (size_t)n;
    }
    w->offset[out.set.n] = pos;
done:
    free(count);
    free(pairs);
    free(key);
    wc_free(&out);
    return st;
}

/* Sentences are normalized in parallel, a block at a time, and their words
 * counted as each block completes: only distinct words stay in memory. */
#define NORMALIZE_BLOCK 65536

qkv_status train_corpus_load(train_corpus *c, const qkv_vocab_train_options *opt, const char *const *inputs,
                             int n_inputs)
{
    memset(c, 0, sizeof *c);
    c->opt = opt;
    line_pool lp = {0};
    int64_t skipped[2] = {0, 0}; /* too long, holding ▅ */
    train_normalizer norm = {0};
    word_counter wc = {0};
    uint32_t **sym = NULL, **text = NULL;
    int *sym_len = NULL, *len = NULL;
    qkv_status st = read_lines(&lp, opt, inputs, n_inputs, skipped);
    c->n_skipped_long = skipped[0];
    c->n_skipped_reserved = skipped[1];
    if (skipped[0])
        train_progress(opt, "warning: %lld lines longer than %d bytes skipped", (long long)skipped[0],
                       opt->max_sentence_bytes);
    if (skipped[1])
        train_progress(opt, "warning: %lld lines holding the reserved U+2585 skipped", (long long)skipped[1]);
    if (st == QKV_OK)
        st = train_normalizer_init(&norm, opt);
    if (st == QKV_OK && lp.n == 0)
        st = qkv_fail(QKV_ERR_ARG, "vocab train: the input files hold no usable line (%lld too long)",
                      (long long)skipped[0]);
    c->n_lines = lp.seen;
    if (st == QKV_OK)
        st = train_strset_init(&wc.set, 1 << 16);
    if (st == QKV_OK) {
        text = calloc(NORMALIZE_BLOCK, sizeof *text);
        len = calloc(NORMALIZE_BLOCK, sizeof *len);
        sym = calloc((size_t)opt->n_user_defined_symbols + 1, sizeof *sym);
        sym_len = calloc((size_t)opt->n_user_defined_symbols + 1, sizeof *sym_len);
        if (!text || !len || !sym || !sym_len)
            st = qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory");
    }
    for (int k = 0; st == QKV_OK && k < opt->n_user_defined_symbols; k++) {
        const char *u = opt->user_defined_symbols[k];
        int64_t bad = 0;
        st = train_decode_utf8(u, strlen(u), &sym[k], &sym_len[k], &bad);
    }
    if (st == QKV_OK && lp.n > 1000000 && opt->max_sentences == 0)
        train_progress(opt, "note: %zu sentences; --max-sentences N trains on a sample and is faster", lp.n);
    if (st == QKV_OK)
        train_progress(opt, "normalizing and counting %zu sentences (%s)", lp.n, opt->normalization);
    int64_t invalid = 0;
    int threads = opt->threads;
    if (threads <= 0 && ctx_default_threads(&threads) != QKV_OK)
        threads = 1;
    for (size_t b0 = 0; st == QKV_OK && b0 < lp.n; b0 += NORMALIZE_BLOCK) {
        int nb = (int)(lp.n - b0 < NORMALIZE_BLOCK ? lp.n - b0 : NORMALIZE_BLOCK);
        int failed = 0;
#pragma omp parallel for schedule(dynamic, 256) reduction(+ : invalid, failed) num_threads(threads)
        for (int i = 0; i < nb; i++) {
            int64_t bad = 0;
            const line_ref *lr = &lp.lines[b0 + (size_t)i];
            if (train_normalize(&norm, lr->p, lr->len, &text[i], &len[i], &bad) != QKV_OK) {
                text[i] = NULL;
                failed++;
                continue;
            }
            invalid += bad;
            if (opt->n_user_defined_symbols)
                cut_user_symbols(text[i], &len[i], sym, sym_len, opt->n_user_defined_symbols);
        }
        if (failed)
            st = qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory normalizing");
        for (int i = 0; i < nb; i++) {
            /* empty after normalization: dropped, as sentencepiece does */
            if (st == QKV_OK && text[i] && len[i] > 0) {
                c->n_sentences++;
                st = wc_add_sentence(&wc, text[i], len[i]);
            }
            free(text[i]);
            text[i] = NULL;
        }
        if (lp.n > NORMALIZE_BLOCK)
            train_progress(opt, "%zu of %zu sentences counted", b0 + (size_t)nb, lp.n);
    }
    c->n_invalid_utf8 = invalid;
    if (invalid)
        train_progress(opt, "warning: %lld invalid UTF-8 bytes read as U+FFFD", (long long)invalid);
    if (st == QKV_OK && c->n_sentences == 0)
        st = qkv_fail(QKV_ERR_ARG, "vocab train: every input line is empty after normalization");
    if (st == QKV_OK)
        st = apply_coverage(c, &wc);
    if (st == QKV_OK)
        train_progress(opt, "%lld sentences, %d distinct words, %d required characters",
                       (long long)c->n_sentences, c->words.n, c->n_req);
    for (int k = 0; sym && k < opt->n_user_defined_symbols; k++)
        free(sym[k]);
    free(sym);
    free(sym_len);
    free(text);
    free(len);
    wc_free(&wc);
    train_normalizer_free(&norm);
    line_pool_free(&lp);
    if (st != QKV_OK)
        train_corpus_free(c);
    return st;
}

void train_corpus_free(train_corpus *c)
{
    free(c->req_chars);
    free(c->req_freq);
    free(c->words.chars);
    free(c->words.offset);
    free(c->words.freq);
    free(c->words.ws_after);
    memset(c, 0, sizeof *c);
}

void train_pieces_free(train_pieces *p)
{
    for (int i = 0; i < p->n; i++)
        free(p->piece[i]);
    free(p->piece);
    free(p->score);
    memset(p, 0, sizeof *p);
}
