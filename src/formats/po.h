/* gettext .po / .pot catalogs: read, change some translations, write back
 * with everything else byte for byte.
 *
 * A catalog is kept as its bytes plus one po_entry per entry, each naming
 * the byte range it came from:
 *
 *   # translator comment          ─┐
 *   #. extracted comment           │ raw_start
 *   #: file.c:12                   │
 *   #, c-format                    │ flags line (flags_at .. flags_end)
 *   msgctxt "menu"                 │
 *   msgid "Open %s"                │
 *   msgid_plural "Open %s files"   │
 *   msgstr[0] ""                  ─┤ msgstr_at
 *   msgstr[1] ""                  ─┘ raw_end
 *
 * Obsolete entries (#~) and comment-only blocks are kept as raw entries
 * (obsolete = 1 / no msgid). An entry whose translation is not changed is
 * written from its bytes; a changed one keeps its bytes up to msgstr_at
 * (with "fuzzy" added to its flags on request) and gets new msgstr lines.
 * A leaf module: no model, no translation. */
#ifndef QKV_FORMATS_PO_H
#define QKV_FORMATS_PO_H

#include <stddef.h>

#include "qkv.h"

typedef struct {
    size_t raw_start, raw_end, msgstr_at;
    size_t flags_at, flags_end; /* the "#," line; without one, flags_at = flags_end = where it goes */
    int line;                   /* 1-based line of the entry's first line */
    int obsolete, has_msgid, has_flags, fuzzy, c_format;
    char *msgctxt;              /* NULL when absent */
    char *msgid, *msgid_plural; /* decoded; msgid_plural NULL when absent */
    char **msgstr;              /* [n_msgstr] decoded (msgstr, or msgstr[0..]) */
    int n_msgstr;
    /* set by the caller before po_write: new msgstr values (n_new of them),
     * and whether to add "fuzzy" to the flags */
    char **new_msgstr;
    int n_new, mark_fuzzy;
} po_entry;

typedef struct {
    char *data;
    size_t len;
    po_entry *e;
    int n;
} po_file;

/* Parses path. Errors (QKV_ERR_FORMAT) name the file and line: an
 * unterminated string, a bad escape, msgstr[N] without msgid_plural, msgid
 * without msgstr, text that is no keyword or string. */
qkv_status po_read(const char *path, po_file *out);
/* As po_read, from memory (name is used in messages; data is copied). */
qkv_status po_parse(const char *name, const char *data, size_t len, po_file *out);
void po_free(po_file *f);

/* 1 when e is the header (msgid "" without msgctxt). */
int po_is_header(const po_entry *e);
/* 1 when every msgstr of e is empty. */
int po_untranslated(const po_entry *e);
/* nplurals of the header's Plural-Forms, or 0 when absent or a template's
 * "nplurals=INTEGER". */
int po_nplurals(const po_file *f);

/* The catalog with the changes of new_msgstr / mark_fuzzy, atomically to
 * path. */
qkv_status po_write(const po_file *f, const char *path);
/* Same, into a malloc'ed buffer (*out, *len). */
qkv_status po_render(const po_file *f, char **out, size_t *len);

#endif
