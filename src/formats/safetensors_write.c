/* safetensors writer (st_write); the layout is drawn in safetensors.h.
 * Keep in sync with the reader in safetensors.c: same field names, offsets
 * relative to the data section, header padded to 8 bytes with spaces. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "base/status.h"
#include "base/strbuf.h"
#include "formats/safetensors.h"

/* JSON string as serde_json writes it (short escapes where JSON has them). */
static void sb_json_string(sbuf *b, const char *s)
{
    sb_add(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': sb_add(b, "\\\"", 2); break;
        case '\\': sb_add(b, "\\\\", 2); break;
        case '\n': sb_add(b, "\\n", 2); break;
        case '\r': sb_add(b, "\\r", 2); break;
        case '\t': sb_add(b, "\\t", 2); break;
        case '\b': sb_add(b, "\\b", 2); break;
        case '\f': sb_add(b, "\\f", 2); break;
        default:
            if (*p < 0x20)
                sb_printf(b, "\\u%04x", *p);
            else
                sb_add(b, (const char *)p, 1);
        }
    }
    sb_add(b, "\"", 1);
}

static int cmp_str_ptr(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Checks the writer's arguments; *sizes receives each tensor's byte count. */
static qkv_status check_write_args(const char *path, const st_write_tensor *ts, int n, const char *const *kv,
                                   int n_meta, size_t *sizes)
{
    if (n < 0 || n_meta < 0 || (n && !ts) || (n_meta && !kv))
        return qkv_fail(QKV_ERR_ARG, "%s: st_write: bad counts (%d tensors, %d metadata pairs)", path, n, n_meta);
    for (int i = 0; i < n; i++) {
        const st_write_tensor *t = &ts[i];
        if (!t->name || !strcmp(t->name, "__metadata__"))
            return qkv_fail(QKV_ERR_ARG, "%s: st_write: tensor %d: name is %s", path, i,
                            t->name ? "the reserved '__metadata__'" : "NULL");
        if (st_utf8_check(t->name, strlen(t->name)) != strlen(t->name))
            return qkv_fail(QKV_ERR_ARG, "%s: st_write: tensor %d: name is not valid UTF-8", path, i);
        if (!st_dtype_size(t->dtype))
            return qkv_fail(QKV_ERR_ARG, "%s: st_write: tensor '%s': bad dtype %d", path, t->name, (int)t->dtype);
        if (t->ndim < 0 || t->ndim > ST_MAX_DIMS)
            return qkv_fail(QKV_ERR_ARG, "%s: st_write: tensor '%s': ndim %d outside 0..%d", path, t->name, t->ndim,
                            ST_MAX_DIMS);
        uint64_t count = 1;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0 || t->shape[d] > (int64_t)9007199254740992LL)
                return qkv_fail(QKV_ERR_ARG, "%s: st_write: tensor '%s': shape[%d] = %lld", path, t->name, d,
                                (long long)t->shape[d]);
            if (t->shape[d] && count > SIZE_MAX / 8 / (uint64_t)t->shape[d])
                return qkv_fail(QKV_ERR_ARG, "%s: st_write: tensor '%s': shape overflows", path, t->name);
            count *= (uint64_t)t->shape[d];
        }
        sizes[i] = (size_t)count * st_dtype_size(t->dtype);
        if (sizes[i] && !t->data)
            return qkv_fail(QKV_ERR_ARG, "%s: st_write: tensor '%s': data is NULL", path, t->name);
    }
    for (int i = 0; i < 2 * n_meta; i++)
        if (!kv[i] || st_utf8_check(kv[i], strlen(kv[i])) != strlen(kv[i]))
            return qkv_fail(QKV_ERR_ARG, "%s: st_write: metadata %s %d is NULL or not UTF-8", path,
                            i % 2 ? "value" : "key", i / 2);
    /* distinct names, distinct metadata keys */
    size_t m = (size_t)(n > n_meta ? n : n_meta);
    const char **names = malloc((m + 1) * sizeof *names);
    if (!names)
        return qkv_fail(QKV_ERR_NOMEM, "%s: out of memory", path);
    qkv_status s = QKV_OK;
    for (int pass = 0; pass < 2 && s == QKV_OK; pass++) {
        int k = pass ? n_meta : n;
        for (int i = 0; i < k; i++)
            names[i] = pass ? kv[2 * i] : ts[i].name;
        qsort(names, (size_t)k, sizeof *names, cmp_str_ptr);
        for (int i = 1; i < k && s == QKV_OK; i++)
            if (!strcmp(names[i], names[i - 1]))
                s = qkv_fail(QKV_ERR_ARG, "%s: st_write: %s '%s' given twice", path, pass ? "metadata key" : "tensor",
                             names[i]);
    }
    free(names);
    return s;
}

qkv_status st_write(const char *path, const st_write_tensor *tensors, int n, const char *const *metadata_kv,
                    int n_metadata)
{
    size_t *sizes = malloc(((size_t)n + 1) * sizeof *sizes);
    if (!sizes)
        return qkv_fail(QKV_ERR_NOMEM, "%s: out of memory", path);
    qkv_status s = check_write_args(path, tensors, n, metadata_kv, n_metadata, sizes);
    if (s != QKV_OK) {
        free(sizes);
        return s;
    }
    sbuf h = {0};
    sb_add(&h, "{", 1);
    if (n_metadata > 0) {
        sb_add(&h, "\"__metadata__\":{", 16);
        for (int i = 0; i < n_metadata; i++) {
            if (i)
                sb_add(&h, ",", 1);
            sb_json_string(&h, metadata_kv[2 * i]);
            sb_add(&h, ":", 1);
            sb_json_string(&h, metadata_kv[2 * i + 1]);
        }
        sb_add(&h, "}", 1);
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        const st_write_tensor *t = &tensors[i];
        if (i || n_metadata > 0)
            sb_add(&h, ",", 1);
        sb_json_string(&h, t->name);
        sb_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++)
            sb_printf(&h, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        sb_printf(&h, "],\"data_offsets\":[%zu,", off);
        off += sizes[i];
        sb_printf(&h, "%zu]}", off);
    }
    sb_add(&h, "}", 1);
    while (h.n % 8)
        sb_add(&h, " ", 1);
    if (h.oom || h.n > ST_MAX_HEADER) {
        free(h.p);
        free(sizes);
        return qkv_fail(h.oom ? QKV_ERR_NOMEM : QKV_ERR_ARG, "%s: st_write: header of %zu bytes %s", path, h.n,
                        h.oom ? "does not fit in memory" : "exceeds the format's limit");
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
    qkv_afile af;
    s = qkv_afile_open(&af, path);
    if (s == QKV_OK) {
        int ok = fwrite(len8, 1, 8, af.fp) == 8 && fwrite(h.p, 1, h.n, af.fp) == h.n;
        for (int i = 0; i < n && ok; i++)
            ok = !sizes[i] || fwrite(tensors[i].data, 1, sizes[i], af.fp) == sizes[i];
        if (!ok) {
            s = qkv_fail(QKV_ERR_IO, "%s: write failed", path);
            qkv_afile_abort(&af);
        } else {
            s = qkv_afile_commit(&af);
        }
    }
    free(h.p);
    free(sizes);
    return s;
}
