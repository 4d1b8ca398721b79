/* labels.tsv: labelled English messages for the package-classification task,
 * as `qkv corpus` writes them (src/data/corpus.c) and `qkv classify` reads
 * them (cli/cmd_classify.c).
 *
 *   split<TAB>label<TAB>text                  the header, exactly this line
 *   train<TAB>libgtk-3-common<TAB>Open File   one row per message
 *   dev<TAB>postgresql-15<TAB>...
 *   test<TAB>...
 *
 * split is train, dev or test; label is not empty and holds no tab; text is
 * the rest of the line (the writer turns tabs and line breaks in it into
 * spaces; the reader keeps any tab after the second one). A file whose first
 * line is not the header is the older two-column form LABEL<TAB>TEXT (what
 * {train,dev,test}.labels.tsv hold): it has no splits, and every row is taken.
 * A '\r' before a line's '\n' is dropped. Keep labels_write_row and
 * labels_parse in sync. */
#ifndef QKV_DATA_LABELS_H
#define QKV_DATA_LABELS_H

#include <stddef.h>
#include <stdio.h>

#include "base/status.h"
#include "qkv.h"

#define LABELS_HEADER "split\tlabel\ttext"

typedef struct {
    char **labels, **texts; /* [n], pointing into buf */
    int n;
    int has_splits; /* 1: the file began with LABELS_HEADER */
    int rows;       /* data rows in the file, of any split */
    char *buf;      /* the file's text, owned */
} labels_set;

/* 1 if split is "train", "dev" or "test". */
int labels_split_valid(const char *split);

/* Writes one row "split<TAB>label<TAB>text\n" to fp; tabs, '\r' and '\n' in
 * text become spaces. QKV_ERR_ARG when split is not valid or label is empty
 * or holds a tab or line break; QKV_ERR_IO when fp has an error. */
qkv_status labels_write_row(FILE *fp, const char *split, const char *label, const char *text);

/* Parses the labelled file text (len bytes, malloc'ed, NUL after them as
 * qkv_read_file leaves it), taking it over whatever the result; name is the
 * file's name in messages. With the header, *out holds the rows of split
 * (train, dev or test) in file order; without, every row, split unused.
 * Errors (QKV_ERR_FORMAT) name the file and the line: a row without its
 * fields ("expected SPLIT<TAB>LABEL<TAB>TEXT" / "LABEL<TAB>TEXT"), an empty
 * label, a split other than train, dev or test, and, with the header, no
 * row of split at all. QKV_ERR_ARG when split is not valid. On failure *out
 * holds nothing to free. */
qkv_status labels_parse(labels_set *out, char *text, size_t len, const char *name, const char *split);

/* labels_parse on the file at path. */
qkv_status labels_read(labels_set *out, const char *path, const char *split);

void labels_free(labels_set *s);

#endif
