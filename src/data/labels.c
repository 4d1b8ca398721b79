/* labels.tsv reader and row writer; the format is drawn in labels.h. */
#include "data/labels.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "base/io.h"

int labels_split_valid(const char *split)
{
    return split && (!strcmp(split, "train") || !strcmp(split, "dev") || !strcmp(split, "test"));
}

qkv_status labels_write_row(FILE *fp, const char *split, const char *label, const char *text)
{
    if (!labels_split_valid(split))
        return qkv_fail(QKV_ERR_ARG, "labels: split '%s', expected train, dev or test", split ? split : "(null)");
    if (!label[0] || strpbrk(label, "\t\r\n"))
        return qkv_fail(QKV_ERR_ARG, "labels: label '%s' is empty or holds a tab or line break", label);
    fputs(split, fp);
    fputc('\t', fp);
    fputs(label, fp);
    fputc('\t', fp);
    for (const char *c = text; *c; c++)
        fputc(*c == '\t' || *c == '\r' || *c == '\n' ? ' ' : *c, fp);
    fputc('\n', fp);
    return ferror(fp) ? qkv_fail(QKV_ERR_IO, "labels: write error") : QKV_OK;
}

void labels_free(labels_set *s)
{
    if (!s)
        return;
    free(s->labels);
    free(s->texts);
    free(s->buf);
    memset(s, 0, sizeof *s);
}

/* Cuts the next line out of [*p, end) in place ('\n' and a '\r' before it
 * become NULs); NULL when none is left. */
static char *next_line(char **p, char *end)
{
    if (*p >= end)
        return NULL;
    char *line = *p, *nl = memchr(line, '\n', (size_t)(end - line));
    char *stop = nl ? nl : end;
    *p = nl ? nl + 1 : end;
    *stop = '\0';
    if (stop > line && stop[-1] == '\r')
        stop[-1] = '\0';
    return line;
}

qkv_status labels_parse(labels_set *out, char *text, size_t len, const char *name, const char *split)
{
    memset(out, 0, sizeof *out);
    out->buf = text;
    size_t max_rows = 1;
    for (size_t i = 0; i < len; i++)
        max_rows += text[i] == '\n';
    if (max_rows > INT_MAX) {
        labels_free(out);
        return qkv_fail(QKV_ERR_UNSUPPORTED, "%s: more than 2^31 lines", name);
    }
    out->labels = malloc(max_rows * sizeof *out->labels);
    out->texts = malloc(max_rows * sizeof *out->texts);
    if (!out->labels || !out->texts) {
        labels_free(out);
        return qkv_fail(QKV_ERR_NOMEM, "%s: out of memory", name);
    }
    char *p = text, *end = text + len, *line;
    int lineno = 0;
    qkv_status s = QKV_OK;
    while (s == QKV_OK && (line = next_line(&p, end)) != NULL) {
        lineno++;
        if (lineno == 1 && !strcmp(line, LABELS_HEADER)) {
            out->has_splits = 1;
            if (!labels_split_valid(split)) {
                s = qkv_fail(QKV_ERR_ARG, "%s: split '%s' asked for, expected train, dev or test", name,
                             split ? split : "(none)");
                break;
            }
            continue;
        }
        out->rows++;
        char *row_split = NULL;
        if (out->has_splits) {
            char *tab = strchr(line, '\t');
            if (!tab || !strchr(tab + 1, '\t')) {
                s = qkv_fail(QKV_ERR_FORMAT, "%s: line %d: expected SPLIT<TAB>LABEL<TAB>TEXT", name, lineno);
                break;
            }
            *tab = '\0';
            row_split = line;
            line = tab + 1;
            if (!labels_split_valid(row_split)) {
                s = qkv_fail(QKV_ERR_FORMAT, "%s: line %d: unknown split '%s', expected train, dev or test", name,
                             lineno, row_split);
                break;
            }
        }
        char *tab = strchr(line, '\t');
        if (!tab || tab == line) {
            s = qkv_fail(QKV_ERR_FORMAT, "%s: line %d: %s", name, lineno,
                         !tab ? (out->has_splits ? "expected SPLIT<TAB>LABEL<TAB>TEXT" : "expected LABEL<TAB>TEXT")
                              : "empty label");
            break;
        }
        *tab = '\0';
        if (row_split && strcmp(row_split, split))
            continue;
        out->labels[out->n] = line;
        out->texts[out->n++] = tab + 1;
    }
    if (s == QKV_OK && out->has_splits && out->n == 0)
        s = qkv_fail(QKV_ERR_FORMAT, "%s: no row of split '%s' (%d rows after the header on %d lines)", name, split,
                     out->rows, lineno);
    if (s != QKV_OK)
        labels_free(out);
    return s;
}

qkv_status labels_read(labels_set *out, const char *path, const char *split)
{
    memset(out, 0, sizeof *out);
    char *text;
    size_t len;
    QKV_TRY(qkv_read_file(path, &text, &len));
    return labels_parse(out, text, len, path, split);
}
