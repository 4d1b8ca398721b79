/* The corpus index file of `qkv search` (qkv_embed_index_* in qkv.h).
 *
 * Layout, all integers little-endian:
 *
 *   offset  size        field
 *   0       8           magic "QKVINDEX"
 *   8       4           u32 version (1)
 *   12      4           u32 dim
 *   16      8           u64 n (vectors)
 *   24      4           u32 normalized (0 or 1)
 *   28      4           u32 model_len
 *   32      8           u64 text_len
 *   40      model_len   the model path, UTF-8, no NUL
 *   ...     4*n*dim     f32 vectors, row-major [n, dim]
 *   ...     text_len    the n lines, each ended by '\n'
 *   ...     8           u64 FNV-1a 64 of every byte before it
 *
 * Keep the writer and the reader below in sync. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "base/status.h"
#include "qkv.h"

#define INDEX_MAGIC "QKVINDEX"
#define INDEX_VERSION 1u
#define INDEX_HEADER 40

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static qkv_status put(qkv_afile *f, uint64_t *h, const void *p, size_t n, const char *path)
{
    *h = fnv(*h, p, n);
    if (n && fwrite(p, 1, n, f->fp) != n) {
        qkv_afile_abort(f);
        return qkv_fail(QKV_ERR_IO, "%s: write failed", path);
    }
    return QKV_OK;
}

qkv_status qkv_embed_index_save(const char *path, const qkv_embed_index *ix)
{
    if (ix->n < 0 || ix->dim < 1)
        return qkv_fail(QKV_ERR_ARG, "%s: index of %d vectors of dim %d", path, ix->n, ix->dim);
    for (int i = 0; i < ix->n; i++)
        if (strchr(ix->lines[i], '\n'))
            return qkv_fail(QKV_ERR_ARG, "%s: line %d contains a newline", path, i + 1);
    const char *model = ix->model ? ix->model : "";
    uint64_t text_len = 0;
    for (int i = 0; i < ix->n; i++)
        text_len += strlen(ix->lines[i]) + 1;
    unsigned char h[INDEX_HEADER];
    memcpy(h, INDEX_MAGIC, 8);
    put32(h + 8, INDEX_VERSION);
    put32(h + 12, (uint32_t)ix->dim);
    put64(h + 16, (uint64_t)ix->n);
    put32(h + 24, ix->normalized ? 1u : 0u);
    put32(h + 28, (uint32_t)strlen(model));
    put64(h + 32, text_len);
    qkv_afile f;
    QKV_TRY(qkv_afile_open(&f, path));
    uint64_t sum = 1469598103934665603ull;
    QKV_TRY(put(&f, &sum, h, sizeof h, path));
    QKV_TRY(put(&f, &sum, model, strlen(model), path));
    unsigned char buf[4];
    for (size_t i = 0; i < (size_t)ix->n * ix->dim; i++) {
        uint32_t bits;
        memcpy(&bits, ix->vectors + i, 4);
        put32(buf, bits);
        QKV_TRY(put(&f, &sum, buf, 4, path));
    }
    for (int i = 0; i < ix->n; i++) {
        QKV_TRY(put(&f, &sum, ix->lines[i], strlen(ix->lines[i]), path));
        QKV_TRY(put(&f, &sum, "\n", 1, path));
    }
    unsigned char tail[8];
    put64(tail, sum);
    if (fwrite(tail, 1, 8, f.fp) != 8) {
        qkv_afile_abort(&f);
        return qkv_fail(QKV_ERR_IO, "%s: write failed", path);
    }
    return qkv_afile_commit(&f);
}

void qkv_embed_index_free(qkv_embed_index *ix)
{
    if (!ix)
        return;
    free(ix->vectors);
    free(ix->lines); /* the line texts live in the same block */
    free(ix->model);
    memset(ix, 0, sizeof *ix);
}

qkv_status qkv_embed_index_load(const char *path, qkv_embed_index *out)
{
    memset(out, 0, sizeof *out);
    char *data;
    size_t len;
    QKV_TRY(qkv_read_file(path, &data, &len));
    const unsigned char *d = (const unsigned char *)data;
    qkv_status s = QKV_OK;
    if (len < INDEX_HEADER + 8 || memcmp(d, INDEX_MAGIC, 8))
        s = qkv_fail(QKV_ERR_FORMAT, "%s: not a qkv index (no \"QKVINDEX\" magic)", path);
    else if (get32(d + 8) != INDEX_VERSION)
        s = qkv_fail(QKV_ERR_FORMAT, "%s: index version %u, this qkv reads version %u", path, get32(d + 8),
                     INDEX_VERSION);
    uint64_t dim = s == QKV_OK ? get32(d + 12) : 0, n = s == QKV_OK ? get64(d + 16) : 0;
    uint64_t model_len = s == QKV_OK ? get32(d + 28) : 0, text_len = s == QKV_OK ? get64(d + 32) : 0;
    if (s == QKV_OK && (dim < 1 || dim > (1u << 20) || n > (1u << 30) || model_len > len || text_len > len ||
                        INDEX_HEADER + model_len + 4 * n * dim + text_len + 8 != len))
        s = qkv_fail(QKV_ERR_FORMAT, "%s: %zu bytes, the header (dim %llu, n %llu) implies another size: truncated "
                     "or damaged", path, len, (unsigned long long)dim, (unsigned long long)n);
    if (s == QKV_OK && fnv(1469598103934665603ull, d, len - 8) != get64(d + len - 8))
        s = qkv_fail(QKV_ERR_FORMAT, "%s: checksum mismatch (damaged file)", path);
    const unsigned char *text = d + INDEX_HEADER + model_len + 4 * n * dim;
    uint64_t count = 0;
    for (uint64_t i = 0; s == QKV_OK && i < text_len; i++)
        count += text[i] == '\n';
    if (s == QKV_OK && (count != n || (text_len && text[text_len - 1] != '\n')))
        s = qkv_fail(QKV_ERR_FORMAT, "%s: %llu lines for %llu vectors", path, (unsigned long long)count,
                     (unsigned long long)n);
    if (s == QKV_OK) {
        out->n = (int)n;
        out->dim = (int)dim;
        out->normalized = get32(d + 24) != 0;
        out->model = malloc(model_len + 1);
        out->vectors = malloc((n * dim > 0 ? n * dim : 1) * sizeof(float));
        out->lines = malloc((n ? n : 1) * sizeof(char *) + text_len + 1);
        if (!out->model || !out->vectors || !out->lines) {
            qkv_embed_index_free(out);
            s = qkv_fail(QKV_ERR_NOMEM, "%s: out of memory", path);
        }
    }
    if (s == QKV_OK) {
        memcpy(out->model, d + INDEX_HEADER, model_len);
        out->model[model_len] = '\0';
        const unsigned char *v = d + INDEX_HEADER + model_len;
        for (uint64_t i = 0; i < n * dim; i++) {
            uint32_t bits = get32(v + 4 * i);
            memcpy(out->vectors + i, &bits, 4);
        }
        char *t = (char *)(out->lines + (n ? n : 1));
        memcpy(t, text, text_len);
        t[text_len] = '\0';
        for (uint64_t i = 0; i < n; i++) {
            out->lines[i] = t;
            t = strchr(t, '\n');
            *t++ = '\0';
        }
    }
    free(data);
    return s;
}
