/* The tokenizers of sacreBLEU 2.x, rebuilt on code points.
 *
 * sacreBLEU applies Python regular expressions with re.sub; each rule here is
 * the same left-to-right scan over non-overlapping matches, which matters for
 * runs such as "a.,b" where a character consumed by one match cannot start
 * the next. */
#include "eval/tokenize.h"

#include <stdlib.h>
#include <string.h>

#include "base/status.h"

static int is_digit(uint32_t c) { return c >= '0' && c <= '9'; }

/* The 13a class [\{-\~\[-\` -\&\(-\+\:-\@\/]: ASCII punctuation and space,
 * except ' - . , and the digits/letters. */
static int is_13a_sep(uint32_t c)
{
    return (c >= 0x7B && c <= 0x7E) || (c >= 0x5B && c <= 0x60) || (c >= 0x20 && c <= 0x26) ||
           (c >= 0x28 && c <= 0x2B) || (c >= 0x3A && c <= 0x40) || c == '/';
}

static int is_p(uint32_t c) { return eval_uc_in(eval_uc_punct, eval_uc_punct_count, c); }
static int is_s(uint32_t c) { return eval_uc_in(eval_uc_symbol, eval_uc_symbol_count, c); }
static int is_n(uint32_t c) { return eval_uc_in(eval_uc_number, eval_uc_number_count, c); }

/* Python's str.replace(pat, rep) with ASCII pat and rep. */
static qkv_status replace_all(eval_u32buf *b, eval_u32buf *tmp, const char *pat, const char *rep)
{
    size_t m = strlen(pat), r = strlen(rep);
    tmp->n = 0;
    for (size_t i = 0; i < b->n;) {
        size_t k = 0;
        while (k < m && i + k < b->n && b->cp[i + k] == (uint8_t)pat[k])
            k++;
        if (k == m) {
            for (size_t j = 0; j < r; j++)
                QKV_TRY(eval_u32_push(tmp, (uint8_t)rep[j]));
            i += m;
        } else {
            QKV_TRY(eval_u32_push(tmp, b->cp[i++]));
        }
    }
    eval_u32buf t = *b;
    *b = *tmp;
    *tmp = t;
    return QKV_OK;
}

/* The pair rules of the regexp tokenizers, all shaped (A)(B) -> repl. */
enum pair_rule {
    NONDIGIT_DOTCOMMA, /* ([^0-9])([\.,])  -> "\1 \2 " */
    DOTCOMMA_NONDIGIT, /* ([\.,])([^0-9])  -> " \1 \2" */
    DIGIT_DASH,        /* ([0-9])(-)       -> "\1 \2 " */
    NONNUM_PUNCT,      /* (\P{N})(\p{P})   -> "\1 \2 " */
    PUNCT_NONNUM       /* (\p{P})(\P{N})   -> " \1 \2" */
};

static int pair_match(enum pair_rule r, uint32_t a, uint32_t b)
{
    switch (r) {
    case NONDIGIT_DOTCOMMA: return !is_digit(a) && (b == '.' || b == ',');
    case DOTCOMMA_NONDIGIT: return (a == '.' || a == ',') && !is_digit(b);
    case DIGIT_DASH: return is_digit(a) && b == '-';
    case NONNUM_PUNCT: return !is_n(a) && is_p(b);
    case PUNCT_NONNUM: return is_p(a) && !is_n(b);
    }
    return 0;
}

static qkv_status apply_pair(eval_u32buf *b, eval_u32buf *tmp, enum pair_rule r)
{
    int lead = r == DOTCOMMA_NONDIGIT || r == PUNCT_NONNUM; /* " \1 \2" vs "\1 \2 " */
    tmp->n = 0;
    for (size_t i = 0; i < b->n;) {
        if (i + 1 < b->n && pair_match(r, b->cp[i], b->cp[i + 1])) {
            if (lead)
                QKV_TRY(eval_u32_push(tmp, ' '));
            QKV_TRY(eval_u32_push(tmp, b->cp[i]));
            QKV_TRY(eval_u32_push(tmp, ' '));
            QKV_TRY(eval_u32_push(tmp, b->cp[i + 1]));
            if (!lead)
                QKV_TRY(eval_u32_push(tmp, ' '));
            i += 2;
        } else {
            QKV_TRY(eval_u32_push(tmp, b->cp[i++]));
        }
    }
    eval_u32buf t = *b;
    *b = *tmp;
    *tmp = t;
    return QKV_OK;
}

/* Surrounds every character of a class with spaces: (X) -> " \1 ". */
static qkv_status pad_class(eval_u32buf *b, eval_u32buf *tmp, int (*cls)(uint32_t))
{
    tmp->n = 0;
    for (size_t i = 0; i < b->n; i++) {
        int hit = cls(b->cp[i]);
        if (hit)
            QKV_TRY(eval_u32_push(tmp, ' '));
        QKV_TRY(eval_u32_push(tmp, b->cp[i]));
        if (hit)
            QKV_TRY(eval_u32_push(tmp, ' '));
    }
    eval_u32buf t = *b;
    *b = *tmp;
    *tmp = t;
    return QKV_OK;
}

/* ' '.join(line.split()) */
static qkv_status squeeze(eval_u32buf *b, eval_u32buf *tmp)
{
    tmp->n = 0;
    int pending = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (eval_uc_is_space(b->cp[i])) {
            pending = tmp->n > 0;
            continue;
        }
        if (pending)
            QKV_TRY(eval_u32_push(tmp, ' '));
        pending = 0;
        QKV_TRY(eval_u32_push(tmp, b->cp[i]));
    }
    eval_u32buf t = *b;
    *b = *tmp;
    *tmp = t;
    return QKV_OK;
}

/* TokenizerRegexp, the 13a/zh common part. */
static qkv_status regexp_tok(eval_u32buf *b, eval_u32buf *tmp)
{
    QKV_TRY(pad_class(b, tmp, is_13a_sep));
    QKV_TRY(apply_pair(b, tmp, NONDIGIT_DOTCOMMA));
    QKV_TRY(apply_pair(b, tmp, DOTCOMMA_NONDIGIT));
    QKV_TRY(apply_pair(b, tmp, DIGIT_DASH));
    return squeeze(b, tmp);
}

/* The CJK test of sacreBLEU's zh tokenizer. Its table compares one-character
 * strings against bounds such as '\u20000', which Python reads as two
 * characters ('\u2000' '0'); the ranges that result are reproduced here, so
 * e.g. U+2001..U+2A6D (general punctuation, arrows, maths) counts as Chinese
 * and U+20000 (CJK extension B) does not. */
static int is_zh_char(uint32_t c)
{
    static const eval_uc_range r[] = {
        {0x2001, 0x2A6D}, {0x2E80, 0x2FDF}, {0x2FF0, 0x303F}, {0x3100, 0x312F}, {0x31A0, 0x31EF},
        {0x3200, 0x4DB5}, {0x4E00, 0x9FBB}, {0xF900, 0xFA2D}, {0xFA30, 0xFA6A}, {0xFA70, 0xFAD9},
        {0xFE10, 0xFE1F}, {0xFE30, 0xFE4F}, {0xFF00, 0xFFEF},
    };
    return eval_uc_in(r, (int)(sizeof r / sizeof r[0]), c);
}

static void rstrip(eval_u32buf *b)
{
    while (b->n && eval_uc_is_space(b->cp[b->n - 1]))
        b->n--;
}

qkv_status eval_bleu_preprocess(eval_u32buf *out, const char *line, qkv_bleu_tokenizer tok, int lowercase,
                                const char *what)
{
    eval_u32buf raw = {0}, tmp = {0};
    qkv_status s = eval_utf8_decode(&raw, line, what);
    if (s == QKV_OK && lowercase) {
        s = eval_lower(&tmp, raw.cp, raw.n);
        eval_u32buf t = raw;
        raw = tmp;
        tmp = t;
    }
    if (s != QKV_OK)
        goto done;
    rstrip(&raw);
    out->n = 0;
    switch (tok) {
    case QKV_TOK_NONE:
        for (size_t i = 0; i < raw.n && s == QKV_OK; i++)
            s = eval_u32_push(out, raw.cp[i]);
        break;
    case QKV_TOK_CHAR: /* " ".join(line): spaces become tokens of their own */
        for (size_t i = 0; i < raw.n && s == QKV_OK; i++) {
            if (i)
                s = eval_u32_push(out, ' ');
            if (s == QKV_OK)
                s = eval_u32_push(out, raw.cp[i]);
        }
        break;
    case QKV_TOK_13A:
        /* the language-independent part of mteval-v13a, in its order */
        s = replace_all(&raw, &tmp, "<skipped>", "");
        if (s == QKV_OK)
            s = replace_all(&raw, &tmp, "-\n", "");
        if (s == QKV_OK)
            s = replace_all(&raw, &tmp, "\n", " ");
        static const char *const ent[][2] = {{"&quot;", "\""}, {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}};
        for (int k = 0; k < 4 && s == QKV_OK; k++)
            s = replace_all(&raw, &tmp, ent[k][0], ent[k][1]);
        if (s == QKV_OK)
            s = eval_u32_push(out, ' ');
        for (size_t i = 0; i < raw.n && s == QKV_OK; i++)
            s = eval_u32_push(out, raw.cp[i]);
        if (s == QKV_OK)
            s = eval_u32_push(out, ' ');
        if (s == QKV_OK)
            s = regexp_tok(out, &tmp);
        break;
    case QKV_TOK_ZH: {
        size_t a = 0;
        while (a < raw.n && eval_uc_is_space(raw.cp[a]))
            a++;
        for (size_t i = a; i < raw.n && s == QKV_OK; i++) {
            int z = is_zh_char(raw.cp[i]);
            if (z)
                s = eval_u32_push(out, ' ');
            if (s == QKV_OK)
                s = eval_u32_push(out, raw.cp[i]);
            if (s == QKV_OK && z)
                s = eval_u32_push(out, ' ');
        }
        if (s == QKV_OK)
            s = regexp_tok(out, &tmp);
        break;
    }
    case QKV_TOK_INTL:
        for (size_t i = 0; i < raw.n && s == QKV_OK; i++)
            s = eval_u32_push(out, raw.cp[i]);
        if (s == QKV_OK)
            s = apply_pair(out, &tmp, NONNUM_PUNCT);
        if (s == QKV_OK)
            s = apply_pair(out, &tmp, PUNCT_NONNUM);
        if (s == QKV_OK)
            s = pad_class(out, &tmp, is_s);
        if (s == QKV_OK)
            s = squeeze(out, &tmp);
        break;
    default:
        s = qkv_fail(QKV_ERR_ARG, "unknown BLEU tokenizer %d", (int)tok);
    }
done:
    eval_u32_free(&raw);
    eval_u32_free(&tmp);
    return s;
}

qkv_status eval_split(eval_spans *sp, const uint32_t *cp, size_t n)
{
    sp->n = 0;
    for (size_t i = 0; i < n;) {
        if (eval_uc_is_space(cp[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && !eval_uc_is_space(cp[j]))
            j++;
        if (sp->n == sp->cap) {
            size_t cap = sp->cap ? 2 * sp->cap : 32;
            eval_span *w = realloc(sp->w, cap * sizeof *w);
            if (!w)
                return qkv_fail(QKV_ERR_NOMEM, "out of memory (%zu words)", cap);
            sp->w = w;
            sp->cap = cap;
        }
        sp->w[sp->n++] = (eval_span){i, j - i};
        i = j;
    }
    return QKV_OK;
}

void eval_spans_free(eval_spans *sp)
{
    free(sp->w);
    sp->w = NULL;
    sp->n = sp->cap = 0;
}

static const char *const tok_names[] = {"13a", "zh", "intl", "char", "none"};

const char *qkv_bleu_tokenizer_name(qkv_bleu_tokenizer t)
{
    return (unsigned)t < sizeof tok_names / sizeof tok_names[0] ? tok_names[t] : "?";
}

qkv_status qkv_bleu_tokenizer_parse(const char *name, qkv_bleu_tokenizer *t)
{
    for (size_t i = 0; i < sizeof tok_names / sizeof tok_names[0]; i++)
        if (!strcmp(name, tok_names[i])) {
            *t = (qkv_bleu_tokenizer)i;
            return QKV_OK;
        }
    return qkv_fail(QKV_ERR_CONFIG, "unknown tokenizer '%s' (expected 13a, zh, intl, char or none)", name);
}

qkv_status qkv_bleu_tokenize(const char *line, qkv_bleu_tokenizer tok, int lowercase, char **out)
{
    eval_u32buf b = {0};
    qkv_status s = eval_bleu_preprocess(&b, line, tok, lowercase, "line");
    if (s == QKV_OK)
        s = eval_utf8_encode(out, b.cp, b.n);
    eval_u32_free(&b);
    return s;
}
