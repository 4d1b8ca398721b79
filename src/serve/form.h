/* Request bodies that carry form fields, read the way LibreTranslate's
 * server (Flask, werkzeug) reads them, so that its clients get the same
 * answers from qkv serve:
 *   application/x-www-form-urlencoded  (libretranslatepy, curl -d)
 *   multipart/form-data                (the LibreTranslate web page's
 *                                       FormData, curl -F, requests' files=)
 * Fields become the string members of a cJSON object. A key given twice
 * keeps its first value (werkzeug's MultiDict.get); a multipart part with a
 * filename is a file, not a field (request.files, not request.form), so it
 * never supplies q. The whole body is in memory (the server caps it), so the
 * parsers see it at once; chunked transfer is undone by libmicrohttpd before. */
#ifndef QKV_SERVE_FORM_H
#define QKV_SERVE_FORM_H

#include <cjson/cJSON.h>
#include <stddef.h>

typedef enum {
    FORM_NONE,       /* no Content-Type header */
    FORM_JSON,       /* application/json, application/...+json */
    FORM_URLENCODED, /* application/x-www-form-urlencoded */
    FORM_MULTIPART,  /* multipart/form-data */
    FORM_OTHER
} form_kind;

#define FORM_BOUNDARY_MAX 70 /* RFC 2046 */

/* Reads a Content-Type header value (NULL: none). Sets *kind and, for
 * multipart, boundary (NUL-terminated, at most FORM_BOUNDARY_MAX bytes).
 * Returns NULL, or an error message written to err with *http the status
 * to answer: 415 for a charset other than UTF-8 (or its ASCII subset), 400
 * for multipart without a usable boundary. */
const char *form_content_type(const char *ctype, form_kind *kind, char boundary[FORM_BOUNDARY_MAX + 1], int *http,
                              char *err, size_t errn);

/* Adds the fields of an urlencoded body s[0, n) to o; a key already in o
 * (or earlier in s) keeps its value. Values must decode to UTF-8 text
 * without NUL. Returns NULL, or an error message (400) written to err. */
const char *form_parse_urlencoded(cJSON *o, const char *s, size_t n, char *err, size_t errn);

/* A file part of a multipart body: its field name, the filename it was
 * sent with ("" when empty or longer than 255 bytes) and its bytes (a view
 * into the body, which must outlive it). */
typedef struct {
    char name[256], filename[256];
    const char *data;
    size_t n;
} form_file;

/* Adds the text fields of a multipart/form-data body s[0, n) with this
 * boundary to o (first value wins, as above); *n_files counts the file
 * parts, whose content may be binary: the first max_files of them are
 * described in files (NULL: none kept). Accepts CRLF
 * and bare LF line breaks (as werkzeug does) and ignores the preamble and
 * epilogue. Returns NULL, or an error message (400) written to err: no
 * boundary line, a part whose headers or content are cut off (truncated
 * body, no closing "--boundary--"), a part without Content-Disposition:
 * form-data; name=..., an unsupported Content-Transfer-Encoding, a text
 * field that is not UTF-8 or holds NUL, more than 1000 parts. */
const char *form_parse_multipart(cJSON *o, form_file *files, int max_files, int *n_files, const char *s, size_t n,
                                 const char *boundary, char *err, size_t errn);

/* LibreTranslate's "\n".join(q.splitlines()) on form input, in place: every
 * line break Python's str.splitlines knows (CR LF, CR, LF, VT, FF, FS, GS,
 * RS, NEL, U+2028, U+2029) becomes LF, and one trailing break is dropped.
 * The result is never longer. */
void form_normalize_newlines(char *s);

#endif
