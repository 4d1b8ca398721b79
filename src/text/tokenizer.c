/* The text <-> model-id layer: see tokenizer.h. The Marian rules follow
 * transformers 4.39 (models/marian/tokenization_marian.py and
 * tokenization_utils.py's _decode); where this file departs from them it
 * says so. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "base/status.h"
#include "text/spm.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

/* ---- piece -> id map (open addressing, FNV-1a) ---------------------------- */

typedef struct {
    char **keys; /* owned, NULL = empty slot */
    size_t *key_lens;
    int *vals;
    size_t cap, n;
} strmap;

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static void strmap_free(strmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->keys[i]);
    free(m->keys);
    free(m->key_lens);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

static qkv_status strmap_init(strmap *m, size_t expected)
{
    size_t cap = 16;
    while (cap < 2 * expected + 1)
        cap *= 2;
    m->keys = calloc(cap, sizeof *m->keys);
    m->key_lens = calloc(cap, sizeof *m->key_lens);
    m->vals = calloc(cap, sizeof *m->vals);
    m->cap = cap;
    m->n = 0;
    if (!m->keys || !m->key_lens || !m->vals) {
        strmap_free(m);
        return qkv_fail(QKV_ERR_NOMEM, "tokenizer: out of memory");
    }
    return QKV_OK;
}

static size_t strmap_slot(const strmap *m, const char *s, size_t n)
{
    size_t i = (size_t)hash_bytes(s, n) & (m->cap - 1);
    while (m->keys[i] && !(m->key_lens[i] == n && !memcmp(m->keys[i], s, n)))
        i = (i + 1) & (m->cap - 1);
    return i;
}

/* Later entries overwrite earlier ones, as a Python dict built from JSON. */
static qkv_status strmap_put(strmap *m, const char *s, size_t n, int val)
{
    size_t i = strmap_slot(m, s, n);
    if (!m->keys[i]) {
        m->keys[i] = malloc(n + 1);
        if (!m->keys[i])
            return qkv_fail(QKV_ERR_NOMEM, "tokenizer: out of memory");
        memcpy(m->keys[i], s, n);
        m->keys[i][n] = 0;
        m->key_lens[i] = n;
        m->n++;
    }
    m->vals[i] = val;
    return QKV_OK;
}

static int strmap_get(const strmap *m, const char *s, size_t n, int dflt)
{
    if (!m->cap)
        return dflt;
    size_t i = strmap_slot(m, s, n);
    return m->keys[i] ? m->vals[i] : dflt;
}

/* ---- one side's id map ---------------------------------------------------- */

typedef struct {
    strmap map;       /* piece -> model id */
    const char **inv; /* [n_ids] model id -> piece (points into map), NULL for holes */
    int n_ids;        /* largest id + 1 */
    int eos, unk, pad;
} id_map;

static void id_map_free(id_map *s)
{
    strmap_free(&s->map);
    free(s->inv);
    memset(s, 0, sizeof *s);
}

struct qkv_tokenizer {
    int marian;
    qkv_vocab *src_spm, *tgt_spm; /* equal when shared (freed once) */
    id_map src, tgt_own;
    const id_map *tgt; /* &src for a joint vocab.json, else &tgt_own */
    char *eos_name, *unk_name, *pad_name;
    /* tokens that tokenize() splits out of the text before sentencepiece
     * sees it (transformers' added tokens: the specials and the entries of
     * tokenizer_config.json's added_tokens_decoder) */
    char **added;
    int n_added;
    int cleanup; /* clean_up_tokenization_spaces */
    /* spm mode */
    int spm_eos, spm_pad, spm_unk, spm_bos;
};

/* ---- JSON helpers ----------------------------------------------------------- */

static qkv_status read_json(const char *path, cJSON **out)
{
    char *data;
    size_t len;
    *out = NULL;
    QKV_TRY(qkv_read_file(path, &data, &len));
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(data, len, &end, 0);
    if (!j) {
        size_t off = end ? (size_t)(end - data) : 0;
        free(data);
        return qkv_fail(QKV_ERR_FORMAT, "%s: invalid JSON near byte %zu", path, off);
    }
    free(data);
    *out = j;
    return QKV_OK;
}

/* vocab.json: an object of piece -> non-negative integer id. */
static qkv_status load_id_map(const char *path, id_map *s)
{
    cJSON *j;
    memset(s, 0, sizeof *s);
    QKV_TRY(read_json(path, &j));
    qkv_status st = QKV_OK;
    if (!cJSON_IsObject(j)) {
        st = qkv_fail(QKV_ERR_FORMAT, "%s: expected a JSON object of piece -> id", path);
        goto done;
    }
    int n = cJSON_GetArraySize(j);
    if ((st = strmap_init(&s->map, (size_t)n)) != QKV_OK)
        goto done;
    int max_id = -1;
    for (const cJSON *e = j->child; e; e = e->next) {
        double d = e->valuedouble;
        if (!cJSON_IsNumber(e) || !(d >= 0 && d <= 1e8) || d != (double)(int)d) {
            st = qkv_fail(QKV_ERR_FORMAT, "%s: piece \"%s\": expected a non-negative integer id", path, e->string);
            goto done;
        }
        if ((st = strmap_put(&s->map, e->string, strlen(e->string), (int)d)) != QKV_OK)
            goto done;
        if ((int)d > max_id)
            max_id = (int)d;
    }
    s->n_ids = max_id + 1;
    s->inv = calloc(s->n_ids > 0 ? (size_t)s->n_ids : 1, sizeof *s->inv);
    if (!s->inv) {
        st = qkv_fail(QKV_ERR_NOMEM, "tokenizer: out of memory");
        goto done;
    }
    /* {v: k for k, v in encoder.items()}: for a repeated id the later
     * piece wins; walk the JSON order and look each key's slot up. */
    for (const cJSON *e = j->child; e; e = e->next) {
        size_t slot = strmap_slot(&s->map, e->string, strlen(e->string));
        s->inv[(int)e->valuedouble] = s->map.keys[slot];
    }
done:
    cJSON_Delete(j);
    if (st != QKV_OK)
        id_map_free(s);
    return st;
}

/* tokenizer_config.json values are strings or, in newer files, AddedToken
 * objects {"content": ...}. */
static qkv_status token_name(const cJSON *cfg, const char *key, const char *dflt, const char *path, char **out)
{
    const cJSON *v = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, key) : NULL;
    const char *s = dflt;
    if (v && cJSON_IsObject(v))
        v = cJSON_GetObjectItemCaseSensitive(v, "content");
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsString(v))
            return qkv_fail(QKV_ERR_FORMAT, "%s: field '%s': expected a string", path, key);
        s = v->valuestring;
    }
    *out = strdup(s);
    if (!*out)
        return qkv_fail(QKV_ERR_NOMEM, "tokenizer: out of memory");
    return QKV_OK;
}

static qkv_status special_ids(id_map *s, const qkv_tokenizer *t, const char *path)
{
    s->eos = strmap_get(&s->map, t->eos_name, strlen(t->eos_name), -1);
    s->unk = strmap_get(&s->map, t->unk_name, strlen(t->unk_name), -1);
    s->pad = strmap_get(&s->map, t->pad_name, strlen(t->pad_name), -1);
    /* MarianTokenizer raises KeyError / AssertionError for these two */
    if (s->unk < 0)
        return qkv_fail(QKV_ERR_FORMAT, "%s: the unknown token \"%s\" is not in the vocabulary", path, t->unk_name);
    if (s->pad < 0)
        return qkv_fail(QKV_ERR_FORMAT, "%s: the padding token \"%s\" is not in the vocabulary", path, t->pad_name);
    if (s->eos < 0)
        return qkv_fail(QKV_ERR_FORMAT, "%s: the end-of-sentence token \"%s\" is not in the vocabulary", path,
                        t->eos_name);
    return QKV_OK;
}

void qkv_tokenizer_free(qkv_tokenizer *t)
{
    if (!t)
        return;
    if (t->tgt_spm != t->src_spm)
        qkv_vocab_free(t->tgt_spm);
    qkv_vocab_free(t->src_spm);
    id_map_free(&t->src);
    id_map_free(&t->tgt_own);
    free(t->eos_name);
    free(t->unk_name);
    free(t->pad_name);
    for (int i = 0; i < t->n_added; i++)
        free(t->added[i]);
    free(t->added);
    free(t);
}

/* Takes src and tgt (tgt may be NULL or src: shared). */
static qkv_status spm_tokenizer(qkv_vocab *src, qkv_vocab *tgt, qkv_tokenizer **out)
{
    qkv_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        if (tgt != src)
            qkv_vocab_free(tgt);
        qkv_vocab_free(src);
        return qkv_fail(QKV_ERR_NOMEM, "tokenizer: out of memory");
    }
    t->src_spm = src;
    t->tgt_spm = tgt ? tgt : src;
    t->tgt = &t->src;
    t->spm_eos = qkv_vocab_eos_id(t->tgt_spm);
    t->spm_pad = qkv_vocab_pad_id(t->tgt_spm);
    t->spm_unk = qkv_vocab_unk_id(t->tgt_spm);
    t->spm_bos = qkv_vocab_bos_id(t->tgt_spm);
    *out = t;
    return QKV_OK;
}

qkv_status qkv_tokenizer_load_spm(const char *src_spm, const char *tgt_spm, qkv_tokenizer **out)
{
    qkv_vocab *a = NULL, *b = NULL;
    *out = NULL;
    QKV_TRY(qkv_vocab_load(src_spm, &a));
    if (tgt_spm && strcmp(tgt_spm, src_spm)) {
        qkv_status s = qkv_vocab_load(tgt_spm, &b);
        if (s != QKV_OK) {
            qkv_vocab_free(a);
            return s;
        }
    }
    return spm_tokenizer(a, b, out);
}

qkv_status qkv_tokenizer_load_spm_memory(const void *src, size_t src_len, const void *tgt, size_t tgt_len,
                                         qkv_tokenizer **out)
{
    qkv_vocab *a = NULL, *b = NULL;
    *out = NULL;
    QKV_TRY(qkv_vocab_load_memory(src, src_len, &a));
    if (tgt) {
        qkv_status s = qkv_vocab_load_memory(tgt, tgt_len, &b);
        if (s != QKV_OK) {
            qkv_vocab_free(a);
            return s;
        }
    }
    return spm_tokenizer(a, b, out);
}

static qkv_status add_token(qkv_tokenizer *t, const char *name)
{
    if (!*name)
        return QKV_OK;
    for (int i = 0; i < t->n_added; i++)
        if (!strcmp(t->added[i], name))
            return QKV_OK;
    char **a = realloc(t->added, (size_t)(t->n_added + 1) * sizeof *a);
    if (!a)
        return qkv_fail(QKV_ERR_NOMEM, "tokenizer: out of memory");
    t->added = a;
    if (!(a[t->n_added] = strdup(name)))
        return qkv_fail(QKV_ERR_NOMEM, "tokenizer: out of memory");
    t->n_added++;
    return QKV_OK;
}

static qkv_status collect_added(qkv_tokenizer *t, const cJSON *cfg, const char *path)
{
    QKV_TRY(add_token(t, t->eos_name));
    QKV_TRY(add_token(t, t->unk_name));
    QKV_TRY(add_token(t, t->pad_name));
    const cJSON *d = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "added_tokens_decoder") : NULL;
    if (!d || cJSON_IsNull(d))
        return QKV_OK;
    if (!cJSON_IsObject(d))
        return qkv_fail(QKV_ERR_FORMAT, "%s: field 'added_tokens_decoder': expected an object", path);
    for (const cJSON *e = d->child; e; e = e->next) {
        const cJSON *c = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "content") : e;
        if (!cJSON_IsString(c))
            return qkv_fail(QKV_ERR_FORMAT, "%s: field 'added_tokens_decoder.%s': expected a token with a 'content' string",
                            path, e->string);
        QKV_TRY(add_token(t, c->valuestring));
    }
    return QKV_OK;
}

static int file_exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f)
        fclose(f);
    return f != NULL;
}

qkv_status qkv_tokenizer_load_marian(const char *dir, qkv_tokenizer **out)
{
    *out = NULL;
    qkv_tokenizer *t = calloc(1, sizeof *t);
    char *p_src = qkv_path_join(dir, "source.spm"), *p_tgt = qkv_path_join(dir, "target.spm");
    char *p_voc = qkv_path_join(dir, "vocab.json"), *p_tvoc = qkv_path_join(dir, "target_vocab.json");
    char *p_cfg = qkv_path_join(dir, "tokenizer_config.json");
    cJSON *cfg = NULL;
    qkv_status s = QKV_OK;
    if (!t || !p_src || !p_tgt || !p_voc || !p_tvoc || !p_cfg) {
        s = qkv_fail(QKV_ERR_NOMEM, "tokenizer: out of memory");
        goto done;
    }
    t->marian = 1;
    t->cleanup = 1; /* PreTrainedTokenizerBase's default */
    int separate = 0;
    if (file_exists(p_cfg)) {
        if ((s = read_json(p_cfg, &cfg)) != QKV_OK)
            goto done;
        if (!cJSON_IsObject(cfg)) {
            s = qkv_fail(QKV_ERR_FORMAT, "%s: expected a JSON object", p_cfg);
            goto done;
        }
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, "separate_vocabs");
        if (v && !cJSON_IsNull(v)) {
            if (!cJSON_IsBool(v)) {
                s = qkv_fail(QKV_ERR_FORMAT, "%s: field 'separate_vocabs': expected true or false", p_cfg);
                goto done;
            }
            separate = cJSON_IsTrue(v);
        }
        v = cJSON_GetObjectItemCaseSensitive(cfg, "clean_up_tokenization_spaces");
        if (v && !cJSON_IsNull(v)) {
            if (!cJSON_IsBool(v)) {
                s = qkv_fail(QKV_ERR_FORMAT, "%s: field 'clean_up_tokenization_spaces': expected true or false",
                             p_cfg);
                goto done;
            }
            t->cleanup = cJSON_IsTrue(v);
        }
    }
    if ((s = token_name(cfg, "eos_token", "</s>", p_cfg, &t->eos_name)) != QKV_OK ||
        (s = token_name(cfg, "unk_token", "<unk>", p_cfg, &t->unk_name)) != QKV_OK ||
        (s = token_name(cfg, "pad_token", "<pad>", p_cfg, &t->pad_name)) != QKV_OK)
        goto done;
    if ((s = collect_added(t, cfg, p_cfg)) != QKV_OK)
        goto done;
    if ((s = qkv_vocab_load(p_src, &t->src_spm)) != QKV_OK || (s = qkv_vocab_load(p_tgt, &t->tgt_spm)) != QKV_OK)
        goto done;
    if ((s = load_id_map(p_voc, &t->src)) != QKV_OK || (s = special_ids(&t->src, t, p_voc)) != QKV_OK)
        goto done;
    t->tgt = &t->src;
    if (separate) {
        if ((s = load_id_map(p_tvoc, &t->tgt_own)) != QKV_OK || (s = special_ids(&t->tgt_own, t, p_tvoc)) != QKV_OK)
            goto done;
        t->tgt = &t->tgt_own;
    }
done:
    cJSON_Delete(cfg);
    free(p_src);
    free(p_tgt);
    free(p_voc);
    free(p_tvoc);
    free(p_cfg);
    if (s != QKV_OK) {
        qkv_tokenizer_free(t);
        return s;
    }
    *out = t;
    return QKV_OK;
}

/* ---- encoding ----------------------------------------------------------------- */

typedef struct {
    int *p;
    size_t n, cap;
} int_vec;

static qkv_status push(int_vec *v, int x)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 32;
        int *p = realloc(v->p, cap * sizeof *p);
        if (!p)
            return qkv_fail(QKV_ERR_NOMEM, "tokenizer: out of memory");
        v->p = p;
        v->cap = cap;
    }
    v->p[v->n++] = x;
    return QKV_OK;
}

/* End of a match of Python's re ">>.+<<" at text[i] (greedy; '.' is any
 * character but '\n'), or 0 when none starts there. */
static size_t lang_code_end(const char *text, size_t len, size_t i)
{
    if (i + 2 > len || text[i] != '>' || text[i + 1] != '>')
        return 0;
    size_t line_end = i + 2;
    while (line_end < len && text[line_end] != '\n')
        line_end++;
    for (size_t j = line_end; j >= i + 5; j--)
        if (text[j - 2] == '<' && text[j - 1] == '<')
            return j;
    return 0;
}

/* MarianTokenizer._tokenize of one chunk: language code, then pieces. */
static qkv_status encode_chunk(const qkv_vocab *v, const id_map *m, const char *text, size_t len, int_vec *out)
{
    char *clean = malloc(len + 1);
    if (!clean)
        return qkv_fail(QKV_ERR_NOMEM, "tokenizer: out of memory");
    size_t n = 0;
    qkv_status s = QKV_OK;
    /* remove_language_code: match() at 0 gives the code token, sub()
     * removes every match anywhere */
    size_t e0 = lang_code_end(text, len, 0);
    if (e0)
        s = push(out, strmap_get(&m->map, text, e0, m->unk));
    for (size_t i = 0; i < len;) {
        size_t e = lang_code_end(text, len, i);
        if (e)
            i = e;
        else
            clean[n++] = text[i++];
    }
    spm_state st = {0};
    if (s == QKV_OK)
        s = spm_encode(v, &st, clean, n);
    for (size_t i = 0; s == QKV_OK && i < st.n_tok; i++) {
        size_t plen;
        const char *piece = spm_token_piece(v, &st, i, &plen);
        s = push(out, strmap_get(&m->map, piece, plen, m->unk));
    }
    spm_state_free(&st);
    free(clean);
    return s;
}

/* PreTrainedTokenizer.tokenize: added tokens (longest first where several
 * start at one place) are cut out of the text and kept whole; the chunks
 * between them go through _tokenize. */
static qkv_status encode_marian(const qkv_tokenizer *t, const qkv_vocab *v, const id_map *m, const char *text,
                                size_t len, int_vec *out)
{
    size_t chunk = 0;
    for (size_t i = 0; i < len;) {
        int best = -1;
        size_t best_len = 0;
        for (int k = 0; k < t->n_added; k++) {
            size_t l = strlen(t->added[k]);
            if (l > best_len && i + l <= len && !memcmp(text + i, t->added[k], l)) {
                best = k;
                best_len = l;
            }
        }
        if (best < 0) {
            i++;
            continue;
        }
        if (i > chunk)
            QKV_TRY(encode_chunk(v, m, text + chunk, i - chunk, out));
        QKV_TRY(push(out, strmap_get(&m->map, t->added[best], best_len, m->unk)));
        i += best_len;
        chunk = i;
    }
    if (len > chunk)
        QKV_TRY(encode_chunk(v, m, text + chunk, len - chunk, out));
    return QKV_OK;
}

static qkv_status encode_side(const qkv_tokenizer *t, int target, const char *text, size_t len, int **ids,
                              size_t *n)
{
    int_vec out = {0};
    qkv_status s;
    *ids = NULL;
    *n = 0;
    if (t->marian) {
        s = target ? encode_marian(t, t->tgt_spm, t->tgt, text, len, &out)
                   : encode_marian(t, t->src_spm, &t->src, text, len, &out);
        if (s == QKV_OK)
            s = push(&out, target ? t->tgt->eos : t->src.eos);
    } else {
        const qkv_vocab *v = target ? t->tgt_spm : t->src_spm;
        size_t k = 0;
        int *p = NULL;
        s = qkv_vocab_encode(v, text, len, &p, &k, NULL);
        for (size_t i = 0; s == QKV_OK && i < k; i++)
            s = push(&out, p[i]);
        free(p);
        int eos = qkv_vocab_eos_id(v);
        if (s == QKV_OK && eos >= 0)
            s = push(&out, eos);
    }
    if (s != QKV_OK) {
        free(out.p);
        return s;
    }
    *ids = out.p;
    *n = out.n;
    return QKV_OK;
}

qkv_status qkv_tokenizer_encode_source(const qkv_tokenizer *t, const char *text, size_t len, int **ids, size_t *n)
{
    return encode_side(t, 0, text, len, ids, n);
}

qkv_status qkv_tokenizer_encode_target(const qkv_tokenizer *t, const char *text, size_t len, int **ids, size_t *n)
{
    return encode_side(t, 1, text, len, ids, n);
}

/* ---- decoding ------------------------------------------------------------------- */

static qkv_status put(spm_str *o, const char *s, size_t n)
{
    QKV_TRY(spm_str_reserve(o, o->len + n + 1));
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = 0;
    return QKV_OK;
}

/* sp_model.decode_pieces(pieces) appended to o. */
static qkv_status decode_pieces(const qkv_vocab *v, spm_str *o, const char **pieces, size_t n)
{
    if (!n)
        return QKV_OK;
    int *ids = malloc(n * sizeof *ids);
    size_t *lens = malloc(n * sizeof *lens);
    qkv_status s = QKV_OK;
    if (!ids || !lens) {
        s = qkv_fail(QKV_ERR_NOMEM, "tokenizer: out of memory");
    } else {
        for (size_t i = 0; i < n; i++) {
            lens[i] = strlen(pieces[i]);
            ids[i] = spm_piece_id(v, pieces[i], lens[i]);
        }
        s = spm_decode(v, o, ids, pieces, lens, n);
    }
    free(ids);
    free(lens);
    return s;
}

/* Python's str.isspace() for a code point. */
static int py_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f ||
           c == 0x3000;
}

/* str.replace("\u2581", " ").strip() in place on o (from byte start). */
static void space_and_strip(spm_str *o, size_t start)
{
    char *p = o->p + start;
    size_t n = o->len - start, w = 0;
    for (size_t i = 0; i < n;) {
        if (i + 3 <= n && !memcmp(p + i, "\xE2\x96\x81", 3)) {
            p[w++] = ' ';
            i += 3;
        } else {
            p[w++] = p[i++];
        }
    }
    n = w;
    size_t a = 0, b = n, len;
    int valid;
    while (a < b) {
        uint32_t c = utf8_decode(p + a, b - a, &len, &valid);
        if (!valid || !py_space(c))
            break;
        a += len;
    }
    while (b > a) {
        size_t k = b - 1;
        while (k > a && ((unsigned char)p[k] & 0xC0) == 0x80)
            k--;
        uint32_t c = utf8_decode(p + k, b - k, &len, &valid);
        if (!valid || k + len != b || !py_space(c))
            break;
        b = k;
    }
    memmove(p, p + a, b - a);
    o->len = start + (b - a);
    o->p[o->len] = 0;
}

/* transformers' clean_up_tokenization: these replacements, in this order,
 * each over the whole string. */
static void cleanup_spaces(spm_str *o)
{
    static const char *const rules[][2] = {
        {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
        {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
    };
    for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++) {
        const char *from = rules[r][0], *to = rules[r][1];
        size_t fl = strlen(from), tl = strlen(to), w = 0; /* tl < fl: in place */
        for (size_t i = 0; i < o->len;) {
            if (i + fl <= o->len && !memcmp(o->p + i, from, fl)) {
                memcpy(o->p + w, to, tl);
                w += tl;
                i += fl;
            } else {
                o->p[w++] = o->p[i++];
            }
        }
        o->len = w;
        o->p[w] = 0;
    }
}

static qkv_status decode_marian(const qkv_tokenizer *t, const int *ids, size_t n, spm_str *o)
{
    const id_map *m = t->tgt;
    const char **cur = malloc((n ? n : 1) * sizeof *cur);
    if (!cur)
        return qkv_fail(QKV_ERR_NOMEM, "tokenizer: out of memory");
    size_t nc = 0;
    qkv_status s = QKV_OK;
    for (size_t i = 0; i < n && s == QKV_OK; i++) {
        int id = ids[i];
        /* skip_special_tokens. transformers compares with the special ids
         * of the *source* map (current_encoder); the target map's are used
         * here, which differs only when separate vocabularies place the
         * special tokens at different ids. */
        if (id == m->eos || id == m->pad || id == m->unk)
            continue;
        const char *piece = id >= 0 && id < m->n_ids ? m->inv[id] : NULL;
        if (!piece)
            piece = t->unk_name; /* _convert_id_to_token's fallback */
        if (!strcmp(piece, t->eos_name) || !strcmp(piece, t->unk_name) || !strcmp(piece, t->pad_name)) {
            /* convert_tokens_to_string keeps special tokens literally */
            s = decode_pieces(t->tgt_spm, o, cur, nc);
            nc = 0;
            if (s == QKV_OK)
                s = put(o, piece, strlen(piece));
            if (s == QKV_OK)
                s = put(o, " ", 1);
        } else {
            cur[nc++] = piece;
        }
    }
    if (s == QKV_OK)
        s = decode_pieces(t->tgt_spm, o, cur, nc);
    free(cur);
    if (s == QKV_OK) {
        space_and_strip(o, 0);
        if (t->cleanup)
            cleanup_spaces(o);
    }
    return s;
}

qkv_status qkv_tokenizer_decode_target(const qkv_tokenizer *t, const int *ids, size_t n, char **text, size_t *len)
{
    spm_str o = {0};
    qkv_status s = spm_str_reserve(&o, 1);
    *text = NULL;
    if (len)
        *len = 0;
    if (s == QKV_OK) {
        o.p[0] = 0;
        if (t->marian) {
            s = decode_marian(t, ids, n, &o);
        } else {
            int *keep = malloc((n ? n : 1) * sizeof *keep);
            size_t k = 0;
            if (!keep) {
                s = qkv_fail(QKV_ERR_NOMEM, "tokenizer: out of memory");
            } else {
                for (size_t i = 0; i < n; i++)
                    if (ids[i] != t->spm_eos && ids[i] != t->spm_pad)
                        keep[k++] = ids[i];
                s = spm_decode(t->tgt_spm, &o, keep, NULL, NULL, k);
            }
            free(keep);
        }
    }
    if (s != QKV_OK) {
        spm_str_free(&o);
        return s;
    }
    *text = o.p;
    if (len)
        *len = o.len;
    return QKV_OK;
}

/* ---- accessors ---------------------------------------------------------------------- */

const char *qkv_tokenizer_target_piece(const qkv_tokenizer *t, int id)
{
    if (t->marian)
        return id >= 0 && id < t->tgt->n_ids ? t->tgt->inv[id] : NULL;
    return qkv_vocab_piece(t->tgt_spm, id);
}

const char *qkv_tokenizer_source_piece(const qkv_tokenizer *t, int id)
{
    if (t->marian)
        return id >= 0 && id < t->src.n_ids ? t->src.inv[id] : NULL;
    return qkv_vocab_piece(t->src_spm, id);
}

void qkv_tokenizer_special_names(const qkv_tokenizer *t, const char **eos, const char **unk, const char **pad,
                                 int *cleanup)
{
    *eos = t->marian ? t->eos_name : NULL;
    *unk = t->marian ? t->unk_name : NULL;
    *pad = t->marian ? t->pad_name : NULL;
    *cleanup = t->marian ? t->cleanup : 0;
}

int qkv_tokenizer_pad_id(const qkv_tokenizer *t) { return t->marian ? t->src.pad : t->spm_pad; }
int qkv_tokenizer_eos_id(const qkv_tokenizer *t) { return t->marian ? t->src.eos : t->spm_eos; }
int qkv_tokenizer_unk_id(const qkv_tokenizer *t) { return t->marian ? t->src.unk : t->spm_unk; }
int qkv_tokenizer_decoder_start_id(const qkv_tokenizer *t) { return t->marian ? t->tgt->pad : t->spm_bos; }

int qkv_tokenizer_src_vocab_size(const qkv_tokenizer *t)
{
    return t->marian ? t->src.n_ids : qkv_vocab_size(t->src_spm);
}

int qkv_tokenizer_tgt_vocab_size(const qkv_tokenizer *t)
{
    return t->marian ? t->tgt->n_ids : qkv_vocab_size(t->tgt_spm);
}

int qkv_tokenizer_is_marian(const qkv_tokenizer *t) { return t->marian; }
int qkv_tokenizer_shared_vocab(const qkv_tokenizer *t) { return t->marian ? t->tgt == &t->src : t->tgt_spm == t->src_spm; }
const qkv_vocab *qkv_tokenizer_source_spm(const qkv_tokenizer *t) { return t->src_spm; }
const qkv_vocab *qkv_tokenizer_target_spm(const qkv_tokenizer *t) { return t->tgt_spm; }
