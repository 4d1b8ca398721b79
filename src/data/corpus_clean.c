/* Cleaning steps of the corpus builder (rules in corpus.h). Every step only
 * removes bytes or replaces whitespace by one space, so strings are edited in
 * place and never grow; '%' and what follows it are never touched, which keeps
 * printf (%s, %1$s, %ld) and Qt-style (%1) placeholders intact. */
#include <ctype.h>
#include <string.h>

#include "data/corpus.h"

static const char marks[] = "_&~";

static int ascii_alnum(unsigned char c) { return c < 0x80 && isalnum(c); }

/* "&amp;", "&#38;", "&#x26;": an entity, not an accelerator */
static int is_entity(const char *s)
{
    size_t i = 1;
    if (s[i] == '#') {
        i++;
        if (s[i] == 'x' || s[i] == 'X')
            i++;
        size_t d = i;
        while (isxdigit((unsigned char)s[i]))
            i++;
        return i > d && s[i] == ';';
    }
    while (s[i] && ascii_alnum((unsigned char)s[i]))
        i++;
    return i > 1 && s[i] == ';';
}

/* A mark of kind c at s[i]: before a letter or digit (a non-ASCII one too, as
 * in "_Über"), not doubled (GTK "__" and Qt "&&" are literal). */
static int mark_at(const char *s, size_t i, char c)
{
    unsigned char next = (unsigned char)s[i + 1];
    if (s[i] != c || !(ascii_alnum(next) || next >= 0x80))
        return 0;
    if (i > 0 && s[i - 1] == c)
        return 0;
    return c != '&' || !is_entity(s + i);
}

static int count_marks(const char *s, char c, size_t *first)
{
    int n = 0;
    for (size_t i = 0; s[i]; i++)
        if (mark_at(s, i, c) && n++ == 0)
            *first = i;
    return n;
}

static int word_start(const char *s, size_t i)
{
    unsigned char p = i ? (unsigned char)s[i - 1] : ' ';
    return !(ascii_alnum(p) || p >= 0x80);
}

/* A mark inside a word that is neither quoted ("x_y", »x_y«, `x_y`, <x_y>)
 * nor between two capitals (an identifier such as SKRIPT_DATEI). */
static int plain_word_mark(const char *s, size_t i)
{
    if (i == 0 || (isupper((unsigned char)s[i - 1]) && isupper((unsigned char)s[i + 1])))
        return 0;
    size_t a = i;
    while (a > 0 && s[a - 1] != ' ')
        a--;
    static const char *const quotes[] = {"\"", "'", "`", "<", "\xc2\xbb", "\xc2\xab", "\xe2\x80\x9e", "\xe2\x80\x9c",
                                         "\xe2\x80\x98"};
    for (size_t q = 0; q < sizeof quotes / sizeof quotes[0]; q++)
        for (size_t k = a; k < i; k++)
            if (!strncmp(s + k, quotes[q], strlen(quotes[q])))
                return 0;
    return 1;
}

static void cut(char *s, size_t from, size_t to) { memmove(s + from, s + to, strlen(s + to) + 1); }

/* The mark s[i] sits inside a word (maximal run of non-space bytes) that
 * appears in t as well: part of a literal the translator kept (an identifier
 * such as "max_connections", "Q&A", "AT&T"). A word-initial mark is an
 * accelerator even when the word is kept ("_URL:" -> "_URL:", "_Java" ->
 * "已安装的 _Java"), and so is any '~' (LibreOffice: "~Mozilla"). */
static int word_in(const char *s, size_t i, const char *t)
{
    if (s[i] == '~' || word_start(s, i))
        return 0;
    size_t a = i, b = i;
    while (a > 0 && s[a - 1] != ' ')
        a--;
    while (s[b] && s[b] != ' ')
        b++;
    size_t n = b - a;
    for (const char *p = t; (p = strchr(p, s[a])) != NULL; p++)
        if (!strncmp(p, s + a, n))
            return 1;
    return 0;
}

/* "(_F)" / "（_F）" in t: [*from, *to) including spaces before it; *mark is
 * the mark or 0 ("(F)"), *letter the character. */
static int find_suffix(const char *t, size_t start, size_t *from, size_t *to, char *mark, char *letter)
{
    for (size_t i = start; t[i]; i++) {
        size_t j;
        if (t[i] == '(')
            j = i + 1;
        else if (!strncmp(t + i, "\xef\xbc\x88", 3)) /* U+FF08 */
            j = i + 3;
        else
            continue;
        char m = 0;
        if (t[j] && strchr(marks, t[j]))
            m = t[j++];
        if (!ascii_alnum((unsigned char)t[j]))
            continue;
        char l = t[j++];
        if (t[j] == ')')
            j++;
        else if (!strncmp(t + j, "\xef\xbc\x89", 3)) /* U+FF09 */
            j += 3;
        else
            continue;
        size_t a = i;
        while (a > 0 && t[a - 1] == ' ')
            a--;
        *from = a;
        *to = j;
        *mark = m;
        *letter = l;
        return 1;
    }
    return 0;
}

int corpus_strip_accelerators(char *src, char *tgt)
{
    char kind = 0;
    size_t spos = 0;
    for (const char *k = marks; *k && !kind; k++) {
        size_t p;
        if (count_marks(src, *k, &p) == 1 && !word_in(src, p, tgt)) {
            kind = *k;
            spos = p;
        }
    }
    int changed = 0, tgt_has = 0;
    size_t from, to, tpos;
    char m, letter;
    int found = 0;
    for (size_t at = 0; !found && find_suffix(tgt, at, &from, &to, &m, &letter); at = to)
        found = m || /* "(~N)" for "Do _Not Send": translators mix the kinds */
                (!m && kind && toupper((unsigned char)letter) == toupper((unsigned char)src[spos + 1]));
    if (found) {
        cut(tgt, from, to);
        tgt_has = changed = 1;
    } else if (kind) {
        if (count_marks(tgt, kind, &tpos) == 1 && !word_in(tgt, tpos, src)) {
            cut(tgt, tpos, tpos + 1);
            tgt_has = changed = 1;
        }
    } else {
        /* the source has none: a lone mark in the translation is one if it
         * starts a word, or (not '&') sits inside a plain word: "Richtun_g"
         * but not "SKRIPT_DATEI" (a placeholder) nor »titlebar_font« */
        for (const char *k = marks; *k; k++)
            if (count_marks(tgt, *k, &tpos) == 1 && !word_in(tgt, tpos, src) &&
                (word_start(tgt, tpos) || (*k != '&' && plain_word_mark(tgt, tpos)))) {
                cut(tgt, tpos, tpos + 1);
                changed = 1;
                break;
            }
    }
    if (kind && (tgt_has || word_start(src, spos))) {
        cut(src, spos, spos + 1);
        changed = 1;
    }
    return changed;
}

/* ---- whitespace ---------------------------------------------------------- */

static unsigned decode(const unsigned char *s, size_t *len)
{
    unsigned c = s[0];
    if (c < 0x80)
        return *len = 1, c;
    int n = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
    unsigned cp = c & (0x3f >> n);
    for (int i = 1; i <= n && s[i]; i++)
        cp = cp << 6 | (s[i] & 0x3f);
    *len = (size_t)n + 1;
    return cp;
}

static int is_cjk(unsigned cp)
{
    return (cp >= 0x2e80 && cp <= 0x9fff) || (cp >= 0xac00 && cp <= 0xd7af) || (cp >= 0xf900 && cp <= 0xfaff) ||
           (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xffef) || (cp >= 0x20000 && cp <= 0x3ffff);
}

/* Code point ending at s[end-1]. */
static unsigned last_cp(const char *s, size_t end)
{
    size_t a = end - 1, len;
    while (a > 0 && ((unsigned char)s[a] & 0xc0) == 0x80)
        a--;
    return decode((const unsigned char *)s + a, &len);
}

int corpus_join_lines(char *s)
{
    size_t r = 0, w = 0;
    int joined = 0;
    while (s[r]) {
        if (s[r] == ' ' || s[r] == '\t' || s[r] == '\n' || s[r] == '\r' || s[r] == '\v' || s[r] == '\f') {
            int brk = 0;
            while (s[r] == ' ' || s[r] == '\t' || s[r] == '\n' || s[r] == '\r' || s[r] == '\v' || s[r] == '\f')
                brk |= s[r++] != ' ';
            joined |= brk;
            if (w == 0 || !s[r])
                continue;
            size_t len;
            if (brk && is_cjk(last_cp(s, w)) && is_cjk(decode((const unsigned char *)s + r, &len)))
                continue;
            s[w++] = ' ';
            continue;
        }
        s[w++] = s[r++];
    }
    s[w] = '\0';
    return joined;
}

/* ---- UTF-8 and hashing ---------------------------------------------------- */

int corpus_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t k;
        unsigned cp, min;
        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0)
            k = 1, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0)
            k = 2, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0)
            k = 3, cp = c & 0x07, min = 0x10000;
        else
            return 0;
        if (len - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
}

size_t corpus_utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

uint64_t corpus_fnv1a64(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}
