/* libFuzzer target for the form body readers of qkv serve (src/serve/form.c;
 * scripts/fuzz-formats builds and runs it). The input's first line is the
 * Content-Type header, the rest the body. Any input must give either an
 * error message or an object of UTF-8 string fields; the line-ending
 * normalisation must never lengthen a string. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve/form.h"
#include "text/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data, *nl = memchr(s, '\n', size);
    size_t hl = nl ? (size_t)(nl - s) : size;
    char *ctype = malloc(hl + 1);
    if (!ctype)
        return 0;
    memcpy(ctype, s, hl);
    ctype[hl] = 0;
    const char *body = nl ? nl + 1 : s + size;
    size_t n = (size_t)(s + size - body);
    char boundary[FORM_BOUNDARY_MAX + 1], err[600];
    form_kind k;
    int http = 0, n_files = 0;
    form_file files[2];
    const char *e = form_content_type(memchr(ctype, 0, hl) ? "" : ctype, &k, boundary, &http, err, sizeof err);
    assert(!e || http == 400 || http == 415);
    cJSON *o = cJSON_CreateObject();
    if (o && !e) {
        e = k == FORM_MULTIPART ? form_parse_multipart(o, files, 2, &n_files, body, n, boundary, err, sizeof err)
                                : form_parse_urlencoded(o, body, n, err, sizeof err);
        if (e)
            assert(strlen(e) > 0 && strlen(e) < sizeof err);
        for (int i = 0; !e && i < n_files && i < 2; i++)
            assert(files[i].data >= body && files[i].data + files[i].n <= body + n &&
                   strlen(files[i].filename) < sizeof files[i].filename);
        cJSON *it;
        cJSON_ArrayForEach(it, o)
        {
            assert(cJSON_IsString(it));
            size_t len = strlen(it->valuestring);
            assert(utf8_count_invalid(it->valuestring, len) == 0);
            form_normalize_newlines(it->valuestring);
            assert(strlen(it->valuestring) <= len);
        }
    }
    cJSON_Delete(o);
    free(ctype);
    return 0;
}
