/* WordPiece: BertTokenizer's basic tokenizer and greedy word pieces
 * (contract in wordpiece.h). Every step works on code points; the vocabulary
 * is an open-addressing hash of UTF-8 strings. */
#include "text/wordpiece.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "base/status.h"
#include "eval/unicode.h"
#include "text/utf8.h"
#include "text/wordpiece_tables.h"

#define WP_N_SPECIAL 5

struct qkv_wordpiece {
    wp_options opt;
    char *names[WP_N_SPECIAL]; /* unk, sep, pad, cls, mask (owned copies) */
    int special_ids[WP_N_SPECIAL];
    char *blob;     /* the file's bytes, tokens NUL-terminated in place */
    char **tokens;  /* [n] */
    int *tok_len;   /* [n] bytes */
    int n;
    int *table;     /* [cap] ids, -1 empty */
    size_t cap;
};

wp_options wp_default_options(void)
{
    return (wp_options){.do_lower_case = 1,
                        .strip_accents = -1,
                        .tokenize_chinese_chars = 1,
                        .max_input_chars_per_word = 100,
                        .model_max_length = 512};
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int lookup(const qkv_wordpiece *w, const char *s, size_t n)
{
    size_t mask = w->cap - 1;
    for (size_t i = hash_bytes(s, n) & mask;; i = (i + 1) & mask) {
        int id = w->table[i];
        if (id < 0)
            return -1;
        if ((size_t)w->tok_len[id] == n && !memcmp(w->tokens[id], s, n))
            return id;
    }
}

/* A later line with the same token replaces the earlier id, as a Python
 * dict filled line by line does. */
static void insert(qkv_wordpiece *w, int id)
{
    size_t mask = w->cap - 1, n = (size_t)w->tok_len[id];
    for (size_t i = hash_bytes(w->tokens[id], n) & mask;; i = (i + 1) & mask) {
        int old = w->table[i];
        if (old < 0 || ((size_t)w->tok_len[old] == n && !memcmp(w->tokens[old], w->tokens[id], n))) {
            w->table[i] = id;
            return;
        }
    }
}

void wp_free(qkv_wordpiece *w)
{
    if (!w)
        return;
    for (int i = 0; i < WP_N_SPECIAL; i++)
        free(w->names[i]);
    free(w->blob);
    free(w->tokens);
    free(w->tok_len);
    free(w->table);
    free(w);
}

static const char *const default_names[WP_N_SPECIAL] = {"[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"};

qkv_status wp_load(const char *vocab_path, const wp_options *o, qkv_wordpiece **out)
{
    *out = NULL;
    wp_options opt = o ? *o : wp_default_options();
    if (opt.max_input_chars_per_word <= 0)
        return qkv_fail(QKV_ERR_CONFIG, "wordpiece: max_input_chars_per_word must be > 0, got %d",
                        opt.max_input_chars_per_word);
    qkv_wordpiece *w = calloc(1, sizeof *w);
    if (!w)
        return qkv_fail(QKV_ERR_NOMEM, "wordpiece: out of memory");
    w->opt = opt;
    const char *given[WP_N_SPECIAL] = {opt.unk_token, opt.sep_token, opt.pad_token, opt.cls_token, opt.mask_token};
    for (int i = 0; i < WP_N_SPECIAL; i++) {
        w->names[i] = strdup(given[i] ? given[i] : default_names[i]);
        if (!w->names[i])
            return wp_free(w), qkv_fail(QKV_ERR_NOMEM, "wordpiece: out of memory");
    }
    w->opt.unk_token = w->names[0];
    w->opt.sep_token = w->names[1];
    w->opt.pad_token = w->names[2];
    w->opt.cls_token = w->names[3];
    w->opt.mask_token = w->names[4];

    size_t len;
    qkv_status s = qkv_read_file(vocab_path, &w->blob, &len);
    if (s != QKV_OK)
        return wp_free(w), s;
    /* count lines: \n, \r\n and \r end a line (Python's universal newlines) */
    size_t lines = 0;
    for (size_t i = 0; i < len; i++) {
        if (w->blob[i] == '\n' || (w->blob[i] == '\r' && (i + 1 >= len || w->blob[i + 1] != '\n')))
            lines++;
    }
    if (len && w->blob[len - 1] != '\n' && w->blob[len - 1] != '\r')
        lines++;
    if (lines == 0)
        return wp_free(w), qkv_fail(QKV_ERR_FORMAT, "%s: empty vocabulary (no lines)", vocab_path);
    if (lines > INT_MAX / 2)
        return wp_free(w), qkv_fail(QKV_ERR_FORMAT, "%s: too many lines", vocab_path);
    w->tokens = malloc(lines * sizeof *w->tokens);
    w->tok_len = malloc(lines * sizeof *w->tok_len);
    for (w->cap = 16; w->cap < 2 * lines; w->cap *= 2) {
    }
    w->table = malloc(w->cap * sizeof *w->table);
    if (!w->tokens || !w->tok_len || !w->table)
        return wp_free(w), qkv_fail(QKV_ERR_NOMEM, "%s: out of memory", vocab_path);
    memset(w->table, 0xff, w->cap * sizeof *w->table);
    size_t start = 0;
    for (size_t i = 0; i <= len && (size_t)w->n < lines; i++) {
        int end = i == len || w->blob[i] == '\n' || w->blob[i] == '\r';
        if (!end)
            continue;
        size_t tl = i - start;
        for (size_t k = start; k < i;) {
            size_t cl;
            int valid;
            utf8_decode(w->blob + k, i - k, &cl, &valid);
            if (!valid)
                return qkv_fail(QKV_ERR_FORMAT, "%s: line %d: invalid UTF-8 at byte %zu of the line", vocab_path,
                                w->n + 1, k - start),
                       wp_free(w), QKV_ERR_FORMAT;
            k += cl;
        }
        if (i < len && w->blob[i] == '\r' && i + 1 < len && w->blob[i + 1] == '\n')
            w->blob[i++] = '\0';
        if (i < len)
            w->blob[i] = '\0';
        w->tokens[w->n] = w->blob + start;
        w->tok_len[w->n] = (int)tl;
        insert(w, w->n);
        w->n++;
        start = i + 1;
    }
    for (int i = 0; i < WP_N_SPECIAL; i++) {
        w->special_ids[i] = lookup(w, w->names[i], strlen(w->names[i]));
        /* [UNK], [CLS] and [SEP] are needed to encode; [PAD] and [MASK] only when present */
        if (w->special_ids[i] < 0 && (i == 0 || i == 1 || i == 3))
            return qkv_fail(QKV_ERR_FORMAT, "%s: special token '%s' is not in the vocabulary", vocab_path,
                            w->names[i]),
                   wp_free(w), QKV_ERR_FORMAT;
    }
    *out = w;
    return QKV_OK;
}

static qkv_status config_string(const cJSON *root, const char *key, const char *path, char **dst)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v))
        return QKV_OK;
    if (cJSON_IsObject(v)) /* a serialized AddedToken */
        v = cJSON_GetObjectItemCaseSensitive(v, "content");
    if (!cJSON_IsString(v))
        return qkv_fail(QKV_ERR_CONFIG, "%s: field '%s': expected a string or an AddedToken", path, key);
    free(*dst);
    *dst = strdup(v->valuestring);
    return *dst ? QKV_OK : qkv_fail(QKV_ERR_NOMEM, "out of memory");
}

static qkv_status config_bool(const cJSON *root, const char *key, const char *path, int *dst, int null_value)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v)
        return QKV_OK;
    if (cJSON_IsNull(v) && null_value != INT_MIN) {
        *dst = null_value;
        return QKV_OK;
    }
    if (!cJSON_IsBool(v))
        return qkv_fail(QKV_ERR_CONFIG, "%s: field '%s': expected true or false", path, key);
    *dst = cJSON_IsTrue(v);
    return QKV_OK;
}

static qkv_status parse_tokenizer_config(const char *path, wp_options *o, char *names[WP_N_SPECIAL])
{
    char *text;
    size_t len;
    QKV_TRY(qkv_read_file(path, &text, &len));
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!cJSON_IsObject(root))
        return cJSON_Delete(root), qkv_fail(QKV_ERR_FORMAT, "%s: not a JSON object", path);
    qkv_status s = QKV_OK;
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(root, "tokenizer_class");
    if (cls && (!cJSON_IsString(cls) || (strcmp(cls->valuestring, "BertTokenizer") &&
                                         strcmp(cls->valuestring, "BertTokenizerFast"))))
        s = qkv_fail(QKV_ERR_UNSUPPORTED, "%s: field 'tokenizer_class': '%s' is not a WordPiece tokenizer "
                     "(BertTokenizer or BertTokenizerFast)", path,
                     cJSON_IsString(cls) ? cls->valuestring : "(not a string)");
    int basic = 1;
    if (s == QKV_OK)
        s = config_bool(root, "do_basic_tokenize", path, &basic, INT_MIN);
    if (s == QKV_OK && !basic)
        s = qkv_fail(QKV_ERR_UNSUPPORTED, "%s: field 'do_basic_tokenize': false is not supported", path);
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(root, "never_split");
    if (s == QKV_OK && ns && !cJSON_IsNull(ns) && !(cJSON_IsArray(ns) && cJSON_GetArraySize(ns) == 0))
        s = qkv_fail(QKV_ERR_UNSUPPORTED, "%s: field 'never_split' is not supported", path);
    if (s == QKV_OK)
        s = config_bool(root, "do_lower_case", path, &o->do_lower_case, INT_MIN);
    if (s == QKV_OK)
        s = config_bool(root, "strip_accents", path, &o->strip_accents, -1);
    if (s == QKV_OK)
        s = config_bool(root, "tokenize_chinese_chars", path, &o->tokenize_chinese_chars, INT_MIN);
    const cJSON *ml = cJSON_GetObjectItemCaseSensitive(root, "model_max_length");
    if (s == QKV_OK && ml) {
        if (!cJSON_IsNumber(ml) || ml->valuedouble < 1)
            s = qkv_fail(QKV_ERR_CONFIG, "%s: field 'model_max_length': expected a positive number", path);
        else /* transformers writes 1e30 for "no limit" */
            o->model_max_length = ml->valuedouble > 1e9 ? 0 : (int)ml->valuedouble;
    }
    static const char *const keys[WP_N_SPECIAL] = {"unk_token", "sep_token", "pad_token", "cls_token",
                                                   "mask_token"};
    for (int i = 0; i < WP_N_SPECIAL && s == QKV_OK; i++)
        s = config_string(root, keys[i], path, &names[i]);
    cJSON_Delete(root);
    return s;
}

qkv_status wp_load_dir(const char *dir, qkv_wordpiece **out)
{
    *out = NULL;
    wp_options o = wp_default_options();
    char *names[WP_N_SPECIAL] = {0};
    char *cfg = qkv_path_join(dir, "tokenizer_config.json"), *vocab = qkv_path_join(dir, "vocab.txt");
    qkv_status s = cfg && vocab ? QKV_OK : qkv_fail(QKV_ERR_NOMEM, "out of memory");
    FILE *fp = s == QKV_OK ? fopen(cfg, "rb") : NULL;
    if (fp) {
        fclose(fp);
        s = parse_tokenizer_config(cfg, &o, names);
    }
    if (s == QKV_OK) {
        o.unk_token = names[0];
        o.sep_token = names[1];
        o.pad_token = names[2];
        o.cls_token = names[3];
        o.mask_token = names[4];
        s = wp_load(vocab, &o, out);
    }
    for (int i = 0; i < WP_N_SPECIAL; i++)
        free(names[i]);
    free(cfg);
    free(vocab);
    return s;
}

int wp_vocab_size(const qkv_wordpiece *w) { return w->n; }
int wp_token_id(const qkv_wordpiece *w, const char *token) { return lookup(w, token, strlen(token)); }
const char *wp_id_token(const qkv_wordpiece *w, int id) { return id >= 0 && id < w->n ? w->tokens[id] : NULL; }
int wp_unk_id(const qkv_wordpiece *w) { return w->special_ids[0]; }
int wp_sep_id(const qkv_wordpiece *w) { return w->special_ids[1]; }
int wp_pad_id(const qkv_wordpiece *w) { return w->special_ids[2]; }
int wp_cls_id(const qkv_wordpiece *w) { return w->special_ids[3]; }
int wp_model_max_length(const qkv_wordpiece *w) { return w->opt.model_max_length; }
const wp_options *wp_get_options(const qkv_wordpiece *w) { return &w->opt; }

/* ---- Unicode helpers ------------------------------------------------------ */

static int in_ranges(const wp_uc_range *t, int count, uint32_t c)
{
    int lo = 0, hi = count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < t[mid].first)
            hi = mid - 1;
        else if (c > t[mid].last)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

static int ccc_of(uint32_t c)
{
    if (c < 0x300)
        return 0;
    int lo = 0, hi = wp_uc_ccc_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < wp_uc_ccc[mid].first)
            hi = mid - 1;
        else if (c > wp_uc_ccc[mid].last)
            lo = mid + 1;
        else
            return wp_uc_ccc[mid].ccc;
    }
    return 0;
}

static const uint32_t *decomp_of(uint32_t c)
{
    if (c < 0xC0)
        return NULL;
    int lo = 0, hi = wp_uc_decomp_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < wp_uc_decomp[mid].cp)
            hi = mid - 1;
        else if (c > wp_uc_decomp[mid].cp)
            lo = mid + 1;
        else
            return wp_uc_decomp[mid].d;
    }
    return NULL;
}

#define HANGUL_S 0xAC00u
#define HANGUL_L 0x1100u
#define HANGUL_V 0x1161u
#define HANGUL_T 0x11A7u
#define HANGUL_NV 21u
#define HANGUL_NT 28u
#define HANGUL_N (HANGUL_NV * HANGUL_NT)
#define HANGUL_COUNT 11172u

static uint32_t compose_pair(uint32_t a, uint32_t b)
{
    if (a >= HANGUL_L && a < HANGUL_L + 19 && b >= HANGUL_V && b < HANGUL_V + HANGUL_NV)
        return HANGUL_S + ((a - HANGUL_L) * HANGUL_NV + (b - HANGUL_V)) * HANGUL_NT;
    if (a >= HANGUL_S && a < HANGUL_S + HANGUL_COUNT && (a - HANGUL_S) % HANGUL_NT == 0 && b > HANGUL_T &&
        b < HANGUL_T + HANGUL_NT)
        return a + (b - HANGUL_T);
    int lo = 0, hi = wp_uc_compose_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const wp_uc_compose_entry *p = &wp_uc_compose[mid];
        if (a < p->a || (a == p->a && b < p->b))
            hi = mid - 1;
        else if (a > p->a || b > p->b)
            lo = mid + 1;
        else
            return p->c;
    }
    return 0;
}

/* Canonical decomposition with canonical ordering (NFD), appended to out. */
static qkv_status nfd(eval_u32buf *out, const uint32_t *cp, size_t n)
{
    size_t base = out->n;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cp[i];
        if (c >= HANGUL_S && c < HANGUL_S + HANGUL_COUNT) {
            uint32_t si = c - HANGUL_S;
            QKV_TRY(eval_u32_push(out, HANGUL_L + si / HANGUL_N));
            QKV_TRY(eval_u32_push(out, HANGUL_V + (si % HANGUL_N) / HANGUL_NT));
            if (si % HANGUL_NT)
                QKV_TRY(eval_u32_push(out, HANGUL_T + si % HANGUL_NT));
            continue;
        }
        const uint32_t *d = decomp_of(c);
        if (!d) {
            QKV_TRY(eval_u32_push(out, c));
            continue;
        }
        for (int k = 0; k < 4 && d[k]; k++)
            QKV_TRY(eval_u32_push(out, d[k]));
    }
    /* canonical ordering: stable insertion sort of each run of non-starters */
    for (size_t i = base + 1; i < out->n; i++) {
        int ci = ccc_of(out->cp[i]);
        if (!ci)
            continue;
        uint32_t c = out->cp[i];
        size_t j = i;
        while (j > base) {
            int cj = ccc_of(out->cp[j - 1]);
            if (cj <= ci)
                break;
            out->cp[j] = out->cp[j - 1];
            j--;
        }
        out->cp[j] = c;
    }
    return QKV_OK;
}

/* NFC in place of b: NFD, then canonical composition. */
static qkv_status nfc(eval_u32buf *b, eval_u32buf *tmp)
{
    tmp->n = 0;
    QKV_TRY(nfd(tmp, b->cp, b->n));
    b->n = 0;
    if (!tmp->n)
        return QKV_OK;
    uint32_t *s = tmp->cp;
    size_t starter = 0, comp = 1;
    int last = ccc_of(s[0]) ? 256 : 0;
    for (size_t i = 1; i < tmp->n; i++) {
        uint32_t c = s[i];
        int cc = ccc_of(c);
        uint32_t composite = compose_pair(s[starter], c);
        if (composite && (last < cc || last == 0)) {
            s[starter] = composite;
            continue;
        }
        if (!cc)
            starter = comp;
        last = cc;
        s[comp++] = c;
    }
    for (size_t i = 0; i < comp; i++)
        QKV_TRY(eval_u32_push(b, s[i]));
    return QKV_OK;
}

static int is_chinese(uint32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static int is_punct(uint32_t c)
{
    if (c < 0x80)
        return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
    return in_ranges(wp_uc_punct, wp_uc_punct_count, c);
}

/* ---- encoding ------------------------------------------------------------- */

typedef struct {
    int *ids;
    size_t n, cap;
} idbuf;

static qkv_status id_push(idbuf *b, int id)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 64;
        int *p = realloc(b->ids, cap * sizeof *p);
        if (!p)
            return qkv_fail(QKV_ERR_NOMEM, "wordpiece: out of memory");
        b->ids = p;
        b->cap = cap;
    }
    b->ids[b->n++] = id;
    return QKV_OK;
}

typedef struct {
    eval_u32buf a, b, c;
    char *bytes;
    size_t *offs;
    size_t cap_bytes, cap_offs;
} scratch;

/* Greedy longest-match-first pieces of one word (cp[0..n)). */
static qkv_status word_pieces(const qkv_wordpiece *w, const uint32_t *cp, size_t n, scratch *sc, idbuf *out)
{
    if (n > (size_t)w->opt.max_input_chars_per_word)
        return id_push(out, w->special_ids[0]);
    if (sc->cap_bytes < 4 * n + 3 || sc->cap_offs < n + 1) {
        free(sc->bytes);
        free(sc->offs);
        sc->cap_bytes = 4 * n + 3;
        sc->cap_offs = n + 1;
        sc->bytes = malloc(sc->cap_bytes);
        sc->offs = malloc(sc->cap_offs * sizeof *sc->offs);
        if (!sc->bytes || !sc->offs) {
            sc->cap_bytes = sc->cap_offs = 0;
            return qkv_fail(QKV_ERR_NOMEM, "wordpiece: out of memory");
        }
    }
    /* bytes = "##" + utf8(word); offs[i] = byte offset of char i after the "##" */
    char *u = sc->bytes + 2;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        sc->offs[i] = len;
        len += utf8_encode(u + len, cp[i]);
    }
    sc->offs[n] = len;
    size_t first = out->n;
    for (size_t start = 0; start < n;) {
        int found = -1;
        size_t end = n;
        for (; end > start; end--) {
            size_t b0 = sc->offs[start], b1 = sc->offs[end];
            int id;
            if (start > 0) {
                u[b0 - 2] = '#';
                u[b0 - 1] = '#';
                id = lookup(w, u + b0 - 2, b1 - b0 + 2);
            } else {
                id = lookup(w, u, b1);
            }
            if (id >= 0) {
                found = id;
                break;
            }
        }
        if (found < 0) { /* no split works: the whole word is [UNK] */
            out->n = first;
            return id_push(out, w->special_ids[0]);
        }
        /* the "##" written over bytes before start is never read again */
        QKV_TRY(id_push(out, found));
        start = end;
    }
    return QKV_OK;
}

static qkv_status lower_each(eval_u32buf *out, const uint32_t *cp, size_t n)
{
    for (size_t i = 0; i < n; i++) /* one character at a time: no Final_Sigma here */
        QKV_TRY(eval_lower(out, cp + i, 1));
    return QKV_OK;
}

/* One segment without special tokens: the basic tokenizer, then pieces. */
static qkv_status encode_segment(const qkv_wordpiece *w, const char *text, size_t len, scratch *sc, idbuf *out,
                                 size_t *n_invalid)
{
    eval_u32buf *a = &sc->a, *b = &sc->b, *c = &sc->c;
    a->n = b->n = 0;
    for (size_t i = 0; i < len;) {
        size_t cl;
        int valid;
        uint32_t cp = utf8_decode(text + i, len - i, &cl, &valid);
        if (!valid)
            (*n_invalid)++;
        QKV_TRY(eval_u32_push(a, cp));
        i += cl;
    }
    const uint32_t *src = a->cp;
    size_t n = a->n;
    if (w->opt.do_lower_case) {
        QKV_TRY(lower_each(b, a->cp, a->n));
        src = b->cp;
        n = b->n;
    }
    /* _clean_text and _tokenize_chinese_chars into c */
    c->n = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = src[i];
        if (cp == 0 || cp == 0xFFFD)
            continue;
        int ws = cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || in_ranges(wp_uc_zs, wp_uc_zs_count, cp);
        if (ws) {
            QKV_TRY(eval_u32_push(c, ' '));
            continue;
        }
        if (in_ranges(wp_uc_control, wp_uc_control_count, cp))
            continue;
        if (w->opt.tokenize_chinese_chars && is_chinese(cp)) {
            QKV_TRY(eval_u32_push(c, ' '));
            QKV_TRY(eval_u32_push(c, cp));
            QKV_TRY(eval_u32_push(c, ' '));
        } else {
            QKV_TRY(eval_u32_push(c, cp));
        }
    }
    QKV_TRY(nfc(c, a)); /* a is free again */
    int strip = w->opt.strip_accents < 0 ? w->opt.do_lower_case : w->opt.strip_accents;
    for (size_t i = 0; i < c->n;) {
        if (eval_uc_is_space(c->cp[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < c->n && !eval_uc_is_space(c->cp[j]))
            j++;
        /* the word c[i..j): lower, strip accents, into b */
        const uint32_t *word = c->cp + i;
        size_t wn = j - i;
        if (w->opt.do_lower_case) {
            a->n = 0;
            QKV_TRY(eval_lower(a, word, wn));
            word = a->cp;
            wn = a->n;
        }
        b->n = 0;
        if (strip) {
            eval_u32buf d = {0};
            qkv_status s = nfd(&d, word, wn);
            for (size_t k = 0; s == QKV_OK && k < d.n; k++)
                if (!in_ranges(wp_uc_mn, wp_uc_mn_count, d.cp[k]))
                    s = eval_u32_push(b, d.cp[k]);
            eval_u32_free(&d);
            QKV_TRY(s);
        } else {
            for (size_t k = 0; k < wn; k++)
                QKV_TRY(eval_u32_push(b, word[k]));
        }
        /* punctuation split; each run of non-punctuation is one word */
        for (size_t k = 0; k < b->n;) {
            if (is_punct(b->cp[k])) {
                QKV_TRY(word_pieces(w, b->cp + k, 1, sc, out));
                k++;
                continue;
            }
            size_t e = k;
            while (e < b->n && !is_punct(b->cp[e]))
                e++;
            QKV_TRY(word_pieces(w, b->cp + k, e - k, sc, out));
            k = e;
        }
        i = j;
    }
    return QKV_OK;
}

qkv_status wp_encode(const qkv_wordpiece *w, const char *text, size_t len, int add_special, int max_length,
                     int **ids, size_t *n, size_t *n_invalid, int *truncated)
{
    *ids = NULL;
    *n = 0;
    size_t invalid = 0;
    idbuf out = {0};
    scratch sc = {0};
    qkv_status s = QKV_OK;
    if (add_special)
        s = id_push(&out, w->special_ids[3]);
    /* split out literal special tokens (leftmost match; none is a prefix of another in BERT's set,
     * and where one is, the longest wins as in the added-tokens trie) */
    size_t seg = 0;
    for (size_t i = 0; i < len && s == QKV_OK;) {
        int best = -1;
        size_t best_len = 0;
        if (text[i] == w->names[0][0] || text[i] == w->names[1][0] || text[i] == w->names[2][0] ||
            text[i] == w->names[3][0] || text[i] == w->names[4][0]) {
            for (int k = 0; k < WP_N_SPECIAL; k++) {
                size_t kl = strlen(w->names[k]);
                if (w->special_ids[k] >= 0 && kl && kl <= len - i && kl > best_len &&
                    !memcmp(text + i, w->names[k], kl)) {
                    best = k;
                    best_len = kl;
                }
            }
        }
        if (best < 0) {
            i++;
            continue;
        }
        s = encode_segment(w, text + seg, i - seg, &sc, &out, &invalid);
        if (s == QKV_OK)
            s = id_push(&out, w->special_ids[best]);
        i += best_len;
        seg = i;
    }
    if (s == QKV_OK)
        s = encode_segment(w, text + seg, len - seg, &sc, &out, &invalid);
    eval_u32_free(&sc.a);
    eval_u32_free(&sc.b);
    eval_u32_free(&sc.c);
    free(sc.bytes);
    free(sc.offs);
    int cut = 0;
    if (s == QKV_OK && max_length > 0) {
        size_t room = (size_t)max_length - (add_special ? (max_length >= 2 ? 1 : 0) : 0);
        if (out.n > room) {
            out.n = room;
            cut = 1;
        }
    }
    if (s == QKV_OK && add_special)
        s = id_push(&out, w->special_ids[1]);
    if (s != QKV_OK) {
        free(out.ids);
        return s;
    }
    *ids = out.ids;
    *n = out.n;
    if (n_invalid)
        *n_invalid = invalid;
    if (truncated)
        *truncated = cut;
    return QKV_OK;
}
