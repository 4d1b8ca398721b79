/* gettext .po reader and writer (see po.h). */
#include "formats/po.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "base/status.h"
#include "base/strbuf.h"

typedef enum { F_NONE, F_CTXT, F_ID, F_PLURAL, F_STR } field;

typedef struct {
    const char *name;
    int line;
} where;

/* Decodes the C string literal at s (s[0] == '"') onto b; *end past the
 * closing quote. */
static qkv_status decode_string(const char *s, const char *lim, sbuf *b, const char **end, where w)
{
    const char *p = s + 1;
    while (p < lim && *p != '"') {
        if (*p != '\\') {
            sb_add(b, p++, 1);
            continue;
        }
        if (p + 1 >= lim)
            break;
        char c = p[1], o;
        p += 2;
        switch (c) {
        case 'n': o = '\n'; break;
        case 't': o = '\t'; break;
        case 'r': o = '\r'; break;
        case 'a': o = '\a'; break;
        case 'b': o = '\b'; break;
        case 'f': o = '\f'; break;
        case 'v': o = '\v'; break;
        case '"': case '\\': case '\'': case '?': o = c; break;
        default:
            if (c >= '0' && c <= '7') {
                int v = c - '0';
                for (int k = 0; k < 2 && p < lim && *p >= '0' && *p <= '7'; k++)
                    v = v * 8 + (*p++ - '0');
                o = (char)v;
            } else {
                return qkv_fail(QKV_ERR_FORMAT, "%s:%d: bad escape '\\%c' in a string", w.name, w.line, c);
            }
        }
        sb_add(b, &o, 1);
    }
    if (p >= lim)
        return qkv_fail(QKV_ERR_FORMAT, "%s:%d: unterminated string (no closing '\"')", w.name, w.line);
    const char *q = p + 1;
    while (q < lim && (*q == ' ' || *q == '\t' || *q == '\r'))
        q++;
    if (q < lim)
        return qkv_fail(QKV_ERR_FORMAT, "%s:%d: text after the closing '\"' of a string", w.name, w.line);
    *end = q;
    return QKV_OK;
}

static void entry_free(po_entry *e)
{
    free(e->msgctxt);
    free(e->msgid);
    free(e->msgid_plural);
    for (int k = 0; k < e->n_msgstr; k++)
        free(e->msgstr[k]);
    free(e->msgstr);
    for (int k = 0; k < e->n_new; k++)
        free(e->new_msgstr[k]);
    free(e->new_msgstr);
}

void po_free(po_file *f)
{
    for (int i = 0; i < f->n; i++)
        entry_free(&f->e[i]);
    free(f->e);
    free(f->data);
    memset(f, 0, sizeof *f);
}

static int starts(const char *s, const char *lim, const char *kw)
{
    size_t n = strlen(kw);
    return (size_t)(lim - s) >= n && !memcmp(s, kw, n);
}

/* The parser's current entry. */
typedef struct {
    po_entry e;
    int open, saw_str, saw_key;
    field f;
    sbuf cur;
    int str_index;
} building;

static qkv_status finish_field(building *b)
{
    if (b->f == F_NONE)
        return QKV_OK;
    char *s = sb_take(&b->cur);
    memset(&b->cur, 0, sizeof b->cur);
    if (!s)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    po_entry *e = &b->e;
    if (b->f == F_CTXT)
        e->msgctxt = s;
    else if (b->f == F_ID)
        e->msgid = s;
    else if (b->f == F_PLURAL) {
        free(e->msgid_plural);
        e->msgid_plural = s;
    }
    else {
        char **v = realloc(e->msgstr, (size_t)(e->n_msgstr + 1) * sizeof(char *));
        if (!v) {
            free(s);
            return qkv_fail(QKV_ERR_NOMEM, "out of memory");
        }
        e->msgstr = v;
        e->msgstr[e->n_msgstr++] = s;
    }
    b->f = F_NONE;
    return QKV_OK;
}

/* Closes the current entry at byte end into f. */
static qkv_status close_entry(po_file *f, building *b, size_t end, const char *name)
{
    if (!b->open)
        return QKV_OK;
    QKV_TRY(finish_field(b));
    if (b->saw_key && !b->saw_str)
        return qkv_fail(QKV_ERR_FORMAT, "%s:%d: entry without msgstr", name, b->e.line);
    if (!b->e.has_flags)
        b->e.flags_at = b->e.flags_end = b->e.has_msgid ? b->e.flags_at : end;
    b->e.raw_end = end;
    if (!b->saw_str)
        b->e.msgstr_at = end;
    po_entry *v = realloc(f->e, (size_t)(f->n + 1) * sizeof *v);
    if (!v)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    f->e = v;
    f->e[f->n++] = b->e;
    memset(b, 0, sizeof *b);
    return QKV_OK;
}

static void parse_flags(po_entry *e, const char *s, const char *lim)
{
    for (const char *p = s + 2; p < lim;) {
        while (p < lim && (*p == ' ' || *p == ',' || *p == '\t'))
            p++;
        const char *q = p;
        while (q < lim && *q != ',' && *q != ' ' && *q != '\t' && *q != '\r')
            q++;
        if (q - p == 5 && !memcmp(p, "fuzzy", 5))
            e->fuzzy = 1;
        if (q - p == 8 && !memcmp(p, "c-format", 8))
            e->c_format = 1;
        p = q > p ? q : p + 1;
    }
}

qkv_status po_parse(const char *name, const char *data, size_t len, po_file *out)
{
    memset(out, 0, sizeof *out);
    out->data = malloc(len + 1);
    if (!out->data)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    memcpy(out->data, data, len);
    out->data[len] = 0;
    out->len = len;
    const char *d = out->data;
    building b;
    memset(&b, 0, sizeof b);
    qkv_status s = QKV_OK;
    int line = 0;
    for (size_t at = 0; at < len && s == QKV_OK;) {
        const char *ls = d + at, *nl = memchr(ls, '\n', len - at);
        const char *le = nl ? nl : d + len; /* line without its newline */
        size_t next = nl ? (size_t)(nl - d) + 1 : len;
        line++;
        where w = {name, line};
        const char *p = ls;
        while (p < le && (*p == ' ' || *p == '\t' || *p == '\r'))
            p++;
        int blank = p == le;
        int is_obsolete = starts(p, le, "#~");
        int is_comment = !is_obsolete && *p == '#';
        int is_key = !blank && !is_comment && !is_obsolete && *p != '"';
        /* a new entry begins at a comment or keyword after a msgstr, or at
         * anything after a blank line */
        if (blank) {
            if (b.open && (b.saw_str || !b.saw_key))
                s = close_entry(out, &b, at, name);
            at = next;
            continue;
        }
        if (b.open && b.saw_str && (is_comment || is_obsolete || (is_key && !starts(p, le, "msgstr"))))
            s = close_entry(out, &b, at, name);
        if (s != QKV_OK)
            break;
        if (!b.open) {
            b.open = 1;
            b.e.raw_start = at;
            b.e.line = line;
            b.e.flags_at = at;
        }
        if (is_obsolete) {
            b.e.obsolete = 1;
        } else if (is_comment) {
            if (starts(p, le, "#,")) {
                if (!b.e.has_flags) {
                    b.e.has_flags = 1;
                    b.e.flags_at = at;
                    b.e.flags_end = next;
                }
                parse_flags(&b.e, p, le);
            } else if (!b.e.has_flags && !starts(p, le, "#|")) {
                b.e.flags_at = next; /* "#," goes after translator, extracted and reference comments */
            }
        } else if (*p == '"') {
            if (b.f == F_NONE)
                s = qkv_fail(QKV_ERR_FORMAT, "%s:%d: string continuation without a keyword", name, line);
            else
                s = decode_string(p, le, &b.cur, &p, w);
        } else {
            s = finish_field(&b);
            field f = F_NONE;
            const char *q = p;
            int index = -1;
            if (starts(p, le, "msgctxt") && (q = p + 7))
                f = F_CTXT;
            else if (starts(p, le, "msgid_plural") && (q = p + 12))
                f = F_PLURAL;
            else if (starts(p, le, "msgid") && (q = p + 5))
                f = F_ID;
            else if (starts(p, le, "msgstr[")) {
                q = p + 7;
                index = 0;
                while (q < le && *q >= '0' && *q <= '9')
                    index = index * 10 + (*q++ - '0');
                if (q >= le || *q != ']')
                    s = qkv_fail(QKV_ERR_FORMAT, "%s:%d: msgstr[ without a closing ']'", name, line);
                q++;
                f = F_STR;
            } else if (starts(p, le, "msgstr") && (q = p + 6))
                f = F_STR;
            if (s == QKV_OK && f == F_NONE)
                s = qkv_fail(QKV_ERR_FORMAT, "%s:%d: expected a comment, a keyword (msgctxt, msgid, msgid_plural, "
                             "msgstr) or a string, got '%.*s'", name, line, (int)(le - p > 20 ? 20 : le - p), p);
            if (s == QKV_OK && (f == F_CTXT || f == F_ID) && b.saw_key && (f == F_ID ? b.e.has_msgid : 1))
                s = qkv_fail(QKV_ERR_FORMAT, "%s:%d: %s repeated in one entry", name, line,
                             f == F_ID ? "msgid" : "msgctxt");
            if (s == QKV_OK && (f == F_PLURAL || f == F_STR) && !b.e.has_msgid)
                s = qkv_fail(QKV_ERR_FORMAT, "%s:%d: %s before msgid", name, line, f == F_STR ? "msgstr" : "msgid_plural");
            if (s == QKV_OK && f == F_STR) {
                if (index >= 0 && !b.e.msgid_plural)
                    s = qkv_fail(QKV_ERR_FORMAT, "%s:%d: msgstr[%d] in an entry without msgid_plural", name, line,
                                 index);
                else if (index < 0 && b.e.msgid_plural)
                    s = qkv_fail(QKV_ERR_FORMAT, "%s:%d: plain msgstr in an entry with msgid_plural (expected "
                                 "msgstr[0])", name, line);
                else if (index >= 0 && index != b.e.n_msgstr)
                    s = qkv_fail(QKV_ERR_FORMAT, "%s:%d: msgstr[%d] out of order (expected msgstr[%d])", name, line,
                                 index, b.e.n_msgstr);
                if (!b.saw_str)
                    b.e.msgstr_at = at;
                b.saw_str = 1;
            }
            while (s == QKV_OK && q < le && (*q == ' ' || *q == '\t'))
                q++;
            if (s == QKV_OK && (q >= le || *q != '"'))
                s = qkv_fail(QKV_ERR_FORMAT, "%s:%d: expected a string after the keyword", name, line);
            if (s == QKV_OK) {
                b.f = f;
                b.saw_key = 1;
                if (f == F_ID)
                    b.e.has_msgid = 1;
                if (f == F_PLURAL && !b.e.msgid_plural && !(b.e.msgid_plural = strdup("")))
                    s = qkv_fail(QKV_ERR_NOMEM, "out of memory"); /* present from here on, for msgstr[N] */
                if (s == QKV_OK)
                    s = decode_string(q, le, &b.cur, &p, w);
            }
        }
        at = next;
    }
    if (s == QKV_OK)
        s = close_entry(out, &b, len, name);
    if (s != QKV_OK) {
        free(b.cur.p);
        entry_free(&b.e);
        po_free(out);
    }
    return s;
}

qkv_status po_read(const char *path, po_file *out)
{
    char *data;
    size_t len;
    QKV_TRY(qkv_read_file(path, &data, &len));
    qkv_status s = po_parse(path, data, len, out);
    free(data);
    return s;
}

int po_is_header(const po_entry *e) { return e->has_msgid && !e->obsolete && !e->msgctxt && !e->msgid[0]; }

int po_untranslated(const po_entry *e)
{
    for (int k = 0; k < e->n_msgstr; k++)
        if (e->msgstr[k][0])
            return 0;
    return 1;
}

int po_nplurals(const po_file *f)
{
    for (int i = 0; i < f->n; i++)
        if (po_is_header(&f->e[i]) && f->e[i].n_msgstr > 0) {
            const char *p = strstr(f->e[i].msgstr[0], "nplurals=");
            if (!p)
                return 0;
            int n = atoi(p + 9);
            return n > 0 && n < 100 ? n : 0;
        }
    return 0;
}

static void escape(sbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[8];
        switch (c) {
        case '"': sb_str(b, "\\\""); break;
        case '\\': sb_str(b, "\\\\"); break;
        case '\n': sb_str(b, "\\n"); break;
        case '\t': sb_str(b, "\\t"); break;
        case '\r': sb_str(b, "\\r"); break;
        default:
            if (c < 0x20) {
                snprintf(tmp, sizeof tmp, "\\%03o", c);
                sb_str(b, tmp);
            } else {
                sb_add(b, (const char *)&c, 1);
            }
        }
    }
}

/* msgstr KEYWORD "value", split after each \n as gettext does */
static void write_msgstr(sbuf *b, const char *kw, const char *v)
{
    sb_str(b, kw);
    const char *nl = strchr(v, '\n');
    if (!nl || !nl[1]) {
        sb_str(b, " \"");
        escape(b, v, strlen(v));
        sb_str(b, "\"\n");
        return;
    }
    sb_str(b, " \"\"\n");
    for (const char *p = v; *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) + 1 : strlen(p);
        sb_str(b, "\"");
        escape(b, p, n);
        sb_str(b, "\"\n");
        p += n;
    }
}

qkv_status po_render(const po_file *f, char **out, size_t *len)
{
    sbuf b = {0};
    size_t at = 0;
    for (int i = 0; i < f->n; i++) {
        const po_entry *e = &f->e[i];
        sb_add(&b, f->data + at, e->raw_start - at);
        if (!e->n_new) {
            sb_add(&b, f->data + e->raw_start, e->raw_end - e->raw_start);
            at = e->raw_end;
            continue;
        }
        if (e->mark_fuzzy && !e->fuzzy) {
            if (e->has_flags) {
                /* "#, c-format" -> "#, fuzzy, c-format" */
                sb_add(&b, f->data + e->raw_start, e->flags_at - e->raw_start);
                sb_str(&b, "#, fuzzy,");
                const char *p = f->data + e->flags_at + 2;
                sb_add(&b, p, f->data + e->flags_end - p);
                sb_add(&b, f->data + e->flags_end, e->msgstr_at - e->flags_end);
            } else {
                sb_add(&b, f->data + e->raw_start, e->flags_at - e->raw_start);
                sb_str(&b, "#, fuzzy\n");
                sb_add(&b, f->data + e->flags_at, e->msgstr_at - e->flags_at);
            }
        } else {
            sb_add(&b, f->data + e->raw_start, e->msgstr_at - e->raw_start);
        }
        for (int k = 0; k < e->n_new; k++) {
            char kw[32];
            if (e->msgid_plural)
                snprintf(kw, sizeof kw, "msgstr[%d]", k);
            else
                snprintf(kw, sizeof kw, "msgstr");
            write_msgstr(&b, kw, e->new_msgstr[k]);
        }
        at = e->raw_end;
    }
    sb_add(&b, f->data + at, f->len - at);
    *len = b.n;
    if (!(*out = sb_take(&b)))
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    return QKV_OK;
}

qkv_status po_write(const po_file *f, const char *path)
{
    char *s;
    size_t n;
    QKV_TRY(po_render(f, &s, &n));
    qkv_status st = qkv_write_file(path, s, n);
    free(s);
    return st;
}
