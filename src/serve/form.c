/* Form bodies: urlencoded and multipart/form-data. See form.h. */
#include "serve/form.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "text/utf8.h"

#define MAX_PARTS 1000

static int hexv(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static int is_text(const char *s, size_t n) { return memchr(s, 0, n) == NULL && utf8_count_invalid(s, n) == 0; }

/* Adds key = val[0, vn) unless o has key already. */
static int add_first(cJSON *o, const char *key, const char *val, size_t vn)
{
    if (cJSON_GetObjectItemCaseSensitive(o, key))
        return 1;
    char *v = malloc(vn + 1);
    if (!v)
        return 0;
    memcpy(v, val, vn);
    v[vn] = 0;
    cJSON *item = cJSON_CreateString(v);
    free(v);
    return item && cJSON_AddItemToObject(o, key, item);
}

/* ---- Content-Type ------------------------------------------------------------ */

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Finds parameter name (case-insensitive) in "; a=b; c="d"" and copies its
 * value, unquoted, to out. Returns 1 when found and it fits, 0 when
 * absent, -1 when malformed or too long. */
static int header_param(const char *p, const char *name, char *out, size_t outn)
{
    size_t nl = strlen(name);
    while (p && *p) {
        p = strchr(p, ';');
        if (!p)
            return 0;
        p = skip_ws(p + 1);
        const char *eq = p;
        while (*eq && *eq != '=' && *eq != ';')
            eq++;
        const char *ke = eq;
        while (ke > p && (ke[-1] == ' ' || ke[-1] == '\t'))
            ke--;
        int match = (size_t)(ke - p) == nl && !strncasecmp(p, name, nl);
        if (*eq != '=') {
            p = eq;
            continue;
        }
        const char *v = skip_ws(eq + 1);
        size_t k = 0;
        if (*v == '"') {
            for (v++; *v && *v != '"'; v++) {
                if (*v == '\\' && v[1])
                    v++;
                if (match && k + 1 < outn)
                    out[k] = *v;
                k++;
            }
            if (*v != '"')
                return match ? -1 : 0; /* an unterminated quote ends the header */
            v++;
        } else {
            for (; *v && *v != ';' && *v != ' ' && *v != '\t'; v++) {
                if (match && k + 1 < outn)
                    out[k] = *v;
                k++;
            }
        }
        if (match) {
            if (k + 1 > outn)
                return -1;
            out[k] = 0;
            return 1;
        }
        p = v;
    }
    return 0;
}

static int charset_ok(const char *cs)
{
    return !strcasecmp(cs, "utf-8") || !strcasecmp(cs, "utf8") || !strcasecmp(cs, "us-ascii") ||
           !strcasecmp(cs, "ascii");
}

const char *form_content_type(const char *ctype, form_kind *kind, char boundary[FORM_BOUNDARY_MAX + 1], int *http,
                              char *err, size_t errn)
{
    boundary[0] = 0;
    *kind = FORM_NONE;
    if (!ctype)
        return NULL;
    const char *p = skip_ws(ctype), *e = p;
    while (*e && *e != ';' && *e != ' ' && *e != '\t')
        e++;
    size_t n = (size_t)(e - p);
    if (n == 16 && !strncasecmp(p, "application/json", 16))
        *kind = FORM_JSON;
    else if (n > 17 && !strncasecmp(p, "application/", 12) && !strncasecmp(e - 5, "+json", 5))
        *kind = FORM_JSON;
    else if (n == 33 && !strncasecmp(p, "application/x-www-form-urlencoded", 33))
        *kind = FORM_URLENCODED;
    else if (n == 19 && !strncasecmp(p, "multipart/form-data", 19))
        *kind = FORM_MULTIPART;
    else
        *kind = FORM_OTHER;
    char cs[64];
    int r = header_param(e, "charset", cs, sizeof cs);
    if (r < 0 || (r > 0 && !charset_ok(cs))) {
        *http = 415;
        snprintf(err, errn, "Unsupported Media Type: charset %.60s; send UTF-8", r > 0 ? cs : "(malformed)");
        return err;
    }
    if (*kind == FORM_MULTIPART) {
        r = header_param(e, "boundary", boundary, FORM_BOUNDARY_MAX + 1);
        if (r <= 0 || !boundary[0]) {
            *http = 400;
            snprintf(err, errn, "Invalid request: multipart/form-data %s",
                     r < 0 ? "with a boundary of more than 70 characters or unterminated quotes"
                           : "without a boundary parameter");
            boundary[0] = 0;
            return err;
        }
    }
    return NULL;
}

/* ---- urlencoded ---------------------------------------------------------------- */

/* Decodes s[0, n) (+ as space, %XX) into out (n + 1 bytes); -1 on a bad escape. */
static long url_decode(char *out, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)s[i];
        if (ch == '+')
            ch = ' ';
        else if (ch == '%') {
            if (i + 2 >= n)
                return -1;
            int a = hexv(s[i + 1]), b = hexv(s[i + 2]);
            if (a < 0 || b < 0)
                return -1;
            ch = a * 16 + b;
            i += 2;
        }
        out[k++] = (char)ch;
    }
    out[k] = 0;
    return (long)k;
}

const char *form_parse_urlencoded(cJSON *o, const char *s, size_t n, char *err, size_t errn)
{
    size_t i = 0;
    while (i < n) {
        size_t e = i;
        while (e < n && s[e] != '&')
            e++;
        size_t eq = i;
        while (eq < e && s[eq] != '=')
            eq++;
        char *key = malloc(eq - i + 1), *val = malloc(e - i + 1);
        if (!key || !val) {
            free(key);
            free(val);
            snprintf(err, errn, "out of memory");
            return err;
        }
        long kn = url_decode(key, s + i, eq - i);
        long vn = eq < e ? url_decode(val, s + eq + 1, e - eq - 1) : (val[0] = 0, 0);
        const char *msg = NULL;
        if (kn < 0 || vn < 0)
            msg = "Invalid request: malformed form encoding (a % not followed by two hex digits)";
        else if (!is_text(key, (size_t)kn) || !is_text(val, (size_t)vn))
            msg = "Invalid request: a form field is not UTF-8 text";
        else if (kn > 0 && !add_first(o, key, val, (size_t)vn))
            msg = "out of memory";
        free(key);
        free(val);
        if (msg) {
            snprintf(err, errn, "%s", msg);
            return err;
        }
        i = e + 1;
    }
    return NULL;
}

/* ---- multipart/form-data ----------------------------------------------------------- */

/* The end of the line at p (the LF, or end); sets *next past the line break. */
static const char *line_end(const char *p, const char *end, const char **next)
{
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    if (!lf) {
        *next = end;
        return NULL;
    }
    *next = lf + 1;
    return lf > p && lf[-1] == '\r' ? lf - 1 : lf;
}

/* Position right after a delimiter "--boundary" that starts a line at or
 * after p (at p itself too when at_start) and is followed by "--" or by
 * optional blanks and a line break (a line that merely begins with the
 * boundary is content). *content_end is where the line break before it
 * begins. NULL when there is none. */
static const char *find_delim(const char *p, const char *end, const char *delim, size_t dl, int at_start,
                              const char **content_end)
{
    const char *q = p;
    for (int first = at_start;; first = 0) {
        const char *cand = q;
        if (!first) {
            const char *lf = memchr(q, '\n', (size_t)(end - q));
            if (!lf)
                return NULL;
            cand = lf + 1;
        }
        q = cand;
        if ((size_t)(end - cand) < dl || memcmp(cand, delim, dl))
            continue;
        const char *a = cand + dl, *b = a;
        while (b < end && (*b == ' ' || *b == '\t'))
            b++;
        int ok = (end - a >= 2 && a[0] == '-' && a[1] == '-') ||
                 (b < end && (*b == '\n' || (*b == '\r' && b + 1 < end && b[1] == '\n')));
        if (!ok)
            continue;
        const char *ce = cand;
        if (ce > p && ce[-1] == '\n')
            ce--;
        if (ce > p && ce[-1] == '\r')
            ce--;
        *content_end = ce;
        return a;
    }
}

/* Reads one part's headers from p; returns the position after the blank
 * line, or NULL (err set). */
static const char *part_headers(const char *p, const char *end, int part, char *name, size_t namen, int *is_file,
                                char filename[256], char *err, size_t errn)
{
    int have_disp = 0;
    *is_file = 0;
    name[0] = filename[0] = 0;
    for (int lines = 0;; lines++) {
        const char *next, *le = line_end(p, end, &next);
        if (!le || lines > 64) {
            snprintf(err, errn, "Invalid request: malformed multipart body: the headers of part %d %s", part,
                     le ? "are too many" : "are cut off (truncated body?)");
            return NULL;
        }
        if (le == p) {
            p = next; /* the blank line */
            break;
        }
        size_t ln = (size_t)(le - p);
        char line[1024];
        if (ln >= sizeof line) {
            snprintf(err, errn, "Invalid request: malformed multipart body: a header of part %d is too long", part);
            return NULL;
        }
        memcpy(line, p, ln);
        line[ln] = 0;
        char *colon = strchr(line, ':');
        if (!colon) {
            snprintf(err, errn, "Invalid request: malformed multipart body: part %d has a header line without ':'",
                     part);
            return NULL;
        }
        *colon = 0;
        const char *val = skip_ws(colon + 1);
        if (!strcasecmp(line, "Content-Disposition")) {
            const char *e = val;
            while (*e && *e != ';' && *e != ' ')
                e++;
            if ((size_t)(e - val) != 9 || strncasecmp(val, "form-data", 9) ||
                header_param(e, "name", name, namen) <= 0) {
                snprintf(err, errn,
                         "Invalid request: malformed multipart body: part %d needs Content-Disposition: form-data; "
                         "name=\"...\"",
                         part);
                return NULL;
            }
            /* a filename parameter makes a file even when it is empty or long */
            int r = header_param(e, "filename", filename, 256);
            *is_file = r != 0 || header_param(e, "filename*", filename, 256) != 0;
            if (r <= 0)
                filename[0] = 0;
            have_disp = 1;
        } else if (!strcasecmp(line, "Content-Transfer-Encoding")) {
            if (strcasecmp(val, "binary") && strcasecmp(val, "8bit") && strcasecmp(val, "7bit")) {
                snprintf(err, errn,
                         "Invalid request: multipart part %d: Content-Transfer-Encoding %.40s is not supported", part,
                         val);
                return NULL;
            }
        } else if (!strcasecmp(line, "Content-Type") && !*is_file) {
            char cs[64];
            int r = header_param(val, "charset", cs, sizeof cs);
            if (r > 0 && !charset_ok(cs)) {
                snprintf(err, errn, "Invalid request: multipart part %d: charset %.40s; send UTF-8", part, cs);
                return NULL;
            }
        }
        p = next;
    }
    if (!have_disp) {
        snprintf(err, errn, "Invalid request: malformed multipart body: part %d has no Content-Disposition", part);
        return NULL;
    }
    return p;
}

const char *form_parse_multipart(cJSON *o, form_file *files, int max_files, int *n_files, const char *s, size_t n,
                                 const char *boundary, char *err, size_t errn)
{
    *n_files = 0;
    size_t bl = strlen(boundary);
    char delim[FORM_BOUNDARY_MAX + 3];
    if (bl < 1 || bl > FORM_BOUNDARY_MAX) {
        snprintf(err, errn, "Invalid request: multipart/form-data without a boundary parameter");
        return err;
    }
    delim[0] = delim[1] = '-';
    memcpy(delim + 2, boundary, bl);
    size_t dl = bl + 2;
    const char *end = s + n, *ce;
    const char *p = find_delim(s, end, delim, dl, 1, &ce);
    if (!p) {
        snprintf(err, errn, "Invalid request: malformed multipart body: no line \"--%.70s\" (the boundary of the "
                            "Content-Type header)",
                 boundary);
        return err;
    }
    for (int part = 1;; part++) {
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            return NULL; /* the close delimiter; the epilogue is ignored */
        if (part > MAX_PARTS) {
            snprintf(err, errn, "Invalid request: more than %d multipart parts", MAX_PARTS);
            return err;
        }
        const char *next;
        line_end(p, end, &next); /* transport padding and the line break (find_delim checked them) */
        char name[256], filename[256];
        int is_file;
        const char *body = part_headers(next, end, part, name, sizeof name, &is_file, filename, err, errn);
        if (!body)
            return err;
        const char *after = find_delim(body, end, delim, dl, 1, &ce);
        if (!after) {
            snprintf(err, errn, "Invalid request: malformed multipart body: part %d (\"%.100s\") is not closed by "
                                "the boundary (truncated body?)",
                     part, name);
            return err;
        }
        size_t len = (size_t)(ce - body);
        if (is_file) {
            if (files && *n_files < max_files) {
                form_file *f = &files[*n_files];
                memcpy(f->name, name, sizeof f->name);
                memcpy(f->filename, filename, sizeof f->filename);
                f->data = body;
                f->n = len;
            }
            (*n_files)++;
        }
        else if (!is_text(body, len)) {
            snprintf(err, errn, "Invalid request: multipart field \"%.100s\" is not UTF-8 text", name);
            return err;
        } else if (!is_text(name, strlen(name))) {
            snprintf(err, errn, "Invalid request: a multipart field name is not UTF-8 text");
            return err;
        } else if (!add_first(o, name, body, len)) {
            snprintf(err, errn, "out of memory");
            return err;
        }
        p = after;
    }
}

/* ---- LibreTranslate's line endings ---------------------------------------------------- */

/* Bytes of the line break at s (0: none). */
static size_t line_break(const unsigned char *s)
{
    if (s[0] == '\r')
        return s[1] == '\n' ? 2 : 1;
    if (s[0] == '\n' || s[0] == 0x0b || s[0] == 0x0c || s[0] == 0x1c || s[0] == 0x1d || s[0] == 0x1e)
        return 1;
    if (s[0] == 0xc2 && s[1] == 0x85)
        return 2;
    if (s[0] == 0xe2 && s[1] == 0x80 && (s[2] == 0xa8 || s[2] == 0xa9))
        return 3;
    return 0;
}

void form_normalize_newlines(char *s)
{
    unsigned char *r = (unsigned char *)s, *w = r;
    int last_break = 0;
    while (*r) {
        size_t b = line_break(r);
        if (b) {
            *w++ = '\n';
            r += b;
            last_break = 1;
        } else {
            *w++ = *r++;
            last_break = 0;
        }
    }
    if (last_break)
        w--;
    *w = 0;
}
