/* GNU gettext .mo message catalogs (reader).
 *
 * Layout (u32 fields, in the byte order the magic reveals):
 *
 *   0  magic 0x950412de        24 offset H of the hash table
 *   4  revision (major << 16 | minor), major 0 or 1
 *   8  N strings               -- minor revision >= 1 only:
 *  12  offset O of originals   28 M system-dependent segments
 *  16  offset T of translations 32 offset of the segment table [M] {u32 len, u32 off}
 *  20  S hash table size       36 N' system-dependent strings
 *                              40 offset of their original table [N'] u32
 *                              44 offset of their translation table [N'] u32
 *   O: [N] {u32 length, u32 offset}, lengths exclude the terminating NUL
 *   T: [N] {u32 length, u32 offset}
 *
 * An original string is "msgctxt \x04 msgid" with the context optional and
 * "msgid \0 msgid_plural" for plural entries; a translation holds the
 * plural forms separated by \0. The entry whose msgid is "" (and has no
 * context) is the header ("Content-Type: ...\nPlural-Forms: ...\n").
 *
 * System-dependent strings (minor revision 1, written by msgfmt for c-format
 * strings using <inttypes.h> macros such as "%<PRIu64>") are stored as static
 * pieces and references to named segments; the reader expands them with this
 * platform's <inttypes.h>, as libintl does, so "%<PRIu64>" reads as "%lu" on
 * x86-64 Linux (msgfmt leaves msgid_plural unsegmented: it reads literally,
 * "%<PRIu64> files"). Strings naming a segment unknown here are skipped, as libintl
 * skips them, and counted (mo_skipped).
 *
 * .mo files carry no "fuzzy" flag: msgfmt leaves fuzzy entries out unless
 * run with --use-fuzzy, and then they are indistinguishable from the others.
 * Entries whose translation is empty are kept (msgfmt never writes them; a
 * hand-made file may). */
#ifndef QKV_FORMATS_MO_H
#define QKV_FORMATS_MO_H

#include <stddef.h>

#include "qkv.h"

#define MO_MAGIC 0x950412deu

typedef struct {
    const char *context;       /* msgctxt, or NULL when the entry has none */
    const char *msgid;         /* singular source text */
    const char *msgid_plural;  /* NULL unless a plural entry */
    const char *const *msgstr; /* n_msgstr translations (plural forms in order) */
    int n_msgstr;              /* >= 1 */
    int sysdep;                /* 1 if expanded from a system-dependent string */
} mo_entry;

typedef struct mo_file mo_file;

/* Reads the whole file and checks every offset and length against its size.
 * On failure *out is NULL and the message names the file and the entry index
 * (or header field) at fault: QKV_ERR_FORMAT for a malformed file,
 * QKV_ERR_UNSUPPORTED for a major revision above 1. */
qkv_status mo_open(mo_file **out, const char *path);

/* As mo_open, from len bytes (copied); name is used in messages only. */
qkv_status mo_open_memory(mo_file **out, const void *data, size_t len, const char *name);

void mo_close(mo_file *f); /* NULL ok */

/* Entries other than the header: the static ones in file order (sorted by
 * original string, as msgfmt writes them), then the system-dependent ones. */
int mo_count(const mo_file *f);
const mo_entry *mo_get(const mo_file *f, int i);

/* The header's text (translation of the empty msgid), or NULL if absent. */
const char *mo_header(const mo_file *f);

/* A header field's value ("Plural-Forms" -> "nplurals=2; plural=n != 1;"),
 * without the trailing newline, copied into buf (truncated to cap - 1). Returns
 * 1 if the field is present, 0 otherwise (buf then ""). */
int mo_header_field(const mo_file *f, const char *field, char *buf, size_t cap);

/* The charset named by the header's Content-Type ("UTF-8"), or "" if none. */
const char *mo_charset(const mo_file *f);

/* (major << 16 | minor) revision, and how many system-dependent strings were
 * skipped for naming a segment this platform does not know. */
unsigned mo_revision(const mo_file *f);
int mo_skipped(const mo_file *f);

#endif
