#include "train/checkpoint.h"

#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "base/status.h"

static const char ckpt_magic[8] = {'Q', 'K', 'V', 'C', 'K', 'P', 'T', '\0'};
#define CKPT_VERSION 1u

uint64_t ckpt_fnv1a64(const void *data, size_t len, uint64_t h)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Writes and hashes in one pass so the checksum covers exactly what is on disk. */
static int put(qkv_afile *f, uint64_t *h, const void *data, size_t n)
{
    *h = ckpt_fnv1a64(data, n, *h);
    return n == 0 || fwrite(data, 1, n, f->fp) == n;
}

qkv_status ckpt_write(const char *path, const ckpt_section *sections, int n)
{
    for (int i = 0; i < n; i++)
        if (!memchr(sections[i].tag, '\0', CKPT_TAG_LEN + 1) || !sections[i].tag[0])
            return qkv_fail(QKV_ERR_ARG, "%s: section tag '%s' must have 1 to %d characters", path,
                            sections[i].tag, CKPT_TAG_LEN);
    int n_params = 0;
    for (int i = 0; i < n; i++)
        n_params += !strcmp(sections[i].tag, "params");
    qkv_afile f;
    QKV_TRY(qkv_afile_open(&f, path));
    uint64_t h = CKPT_FNV_OFFSET;
    uint8_t head[16];
    memcpy(head, ckpt_magic, 8);
    put_u32(head + 8, CKPT_VERSION);
    put_u32(head + 12, (uint32_t)(n + n_params));
    int ok = put(&f, &h, head, sizeof head);
    size_t pos = sizeof head;
    static const uint8_t zeros[CKPT_PARAMS_ALIGN];
    for (int i = 0; ok && i < n; i++) {
        uint8_t sh[CKPT_TAG_LEN + 8] = {0};
        if (!strcmp(sections[i].tag, "params")) { /* a "pad" section first: see checkpoint.h */
            size_t pad = (CKPT_PARAMS_ALIGN - (pos + 2 * sizeof sh) % CKPT_PARAMS_ALIGN) % CKPT_PARAMS_ALIGN;
            memcpy(sh, "pad", 3);
            put_u64(sh + CKPT_TAG_LEN, pad);
            ok = put(&f, &h, sh, sizeof sh) && put(&f, &h, zeros, pad);
            pos += sizeof sh + pad;
            memset(sh, 0, sizeof sh);
        }
        memcpy(sh, sections[i].tag, strlen(sections[i].tag));
        put_u64(sh + CKPT_TAG_LEN, sections[i].nbytes);
        ok = ok && put(&f, &h, sh, sizeof sh) && put(&f, &h, sections[i].data, sections[i].nbytes);
        pos += sizeof sh + sections[i].nbytes;
    }
    uint8_t tail[8];
    put_u64(tail, h);
    if (!ok || fwrite(tail, 1, 8, f.fp) != 8) {
        qkv_afile_abort(&f);
        return qkv_fail(QKV_ERR_IO, "%s: write failed", path);
    }
    return qkv_afile_commit(&f);
}

static qkv_status parse(const void *data, size_t len, const char *name, ckpt_file *out);

/* A mapped file's pages are dropped behind every CKPT_CHUNK bytes read
 * (they are clean, so the kernel refills them from the page cache if read
 * again): reading a checkpoint then costs one chunk of memory besides what
 * the caller copies out, instead of the whole file. */
#define CKPT_CHUNK ((size_t)4 << 20)

static void drop_pages(const ckpt_file *f, const void *from, size_t n)
{
    if (f->map_len)
        qkv_release_pages(from, n);
}

static uint64_t checksum(const ckpt_file *f, const uint8_t *p, size_t n)
{
    uint64_t h = CKPT_FNV_OFFSET;
    for (size_t at = 0; at < n; at += CKPT_CHUNK) {
        size_t k = n - at < CKPT_CHUNK ? n - at : CKPT_CHUNK;
        h = ckpt_fnv1a64(p + at, k, h);
        drop_pages(f, p + at, k);
    }
    return h;
}

void ckpt_copy(const ckpt_file *f, void *dst, const void *src, size_t n)
{
    for (size_t at = 0; at < n; at += CKPT_CHUNK) {
        size_t k = n - at < CKPT_CHUNK ? n - at : CKPT_CHUNK;
        memcpy((char *)dst + at, (const char *)src + at, k);
        drop_pages(f, (const char *)src + at, k);
    }
}

void ckpt_section_copy(const ckpt_file *f, void *dst, const ckpt_section *s) { ckpt_copy(f, dst, s->data, s->nbytes); }

qkv_status ckpt_parse(const void *data, size_t len, const char *name, ckpt_file *out)
{
    memset(out, 0, sizeof *out);
    return parse(data, len, name, out);
}

static qkv_status parse(const void *data, size_t len, const char *name, ckpt_file *out)
{
    const uint8_t *p = data;
    if (len < 16 + 8 || memcmp(p, ckpt_magic, 8) != 0)
        return qkv_fail(QKV_ERR_FORMAT, "%s: not a qkv checkpoint (no QKVCKPT magic)", name);
    out->version = get_u32(p + 8);
    if (out->version != CKPT_VERSION)
        return qkv_fail(QKV_ERR_FORMAT, "%s: checkpoint version %u, this qkv reads version %u", name,
                        out->version, CKPT_VERSION);
    uint64_t want = get_u64(p + len - 8), got = checksum(out, p, len - 8);
    if (want != got)
        return qkv_fail(QKV_ERR_FORMAT, "%s: checksum mismatch (file truncated or corrupted)", name);
    uint32_t n = get_u32(p + 12);
    size_t body_end = len - 8, pos = 16;
    if (n > (body_end - pos) / (CKPT_TAG_LEN + 8))
        return qkv_fail(QKV_ERR_FORMAT, "%s: %u sections cannot fit in %zu bytes", name, n, len);
    out->sections = calloc(n ? n : 1, sizeof *out->sections);
    if (!out->sections)
        return qkv_fail(QKV_ERR_NOMEM, "%s: out of memory", name);
    for (uint32_t i = 0; i < n; i++) {
        if (body_end - pos < CKPT_TAG_LEN + 8) {
            ckpt_free(out);
            return qkv_fail(QKV_ERR_FORMAT, "%s: section %u header at byte %zu runs past the end", name, i, pos);
        }
        ckpt_section *s = &out->sections[i];
        memcpy(s->tag, p + pos, CKPT_TAG_LEN);
        s->tag[CKPT_TAG_LEN] = '\0';
        uint64_t nb = get_u64(p + pos + CKPT_TAG_LEN);
        pos += CKPT_TAG_LEN + 8;
        if (nb > body_end - pos) {
            qkv_status st = qkv_fail(QKV_ERR_FORMAT, "%s: section '%s' claims %llu bytes, only %zu remain",
                                     name, s->tag, (unsigned long long)nb, body_end - pos);
            ckpt_free(out);
            return st;
        }
        s->data = (void *)(p + pos);
        s->nbytes = (size_t)nb;
        pos += (size_t)nb;
        out->n_sections = (int)i + 1;
    }
    if (pos != body_end) {
        ckpt_free(out);
        return qkv_fail(QKV_ERR_FORMAT, "%s: %zu unexpected bytes after the last section", name, body_end - pos);
    }
    return QKV_OK;
}

qkv_status ckpt_read(const char *path, ckpt_file *out)
{
    void *data;
    size_t len;
    int mapped;
    memset(out, 0, sizeof *out);
    QKV_TRY(qkv_map_file(path, &data, &len, &mapped));
    out->file_data = data;
    out->map_len = mapped ? len : 0;
    qkv_status s = parse(data, len, path, out);
    if (s != QKV_OK)
        ckpt_free(out);
    return s;
}

void ckpt_free(ckpt_file *f)
{
    free(f->sections);
    qkv_unmap_file(f->file_data, f->map_len, f->map_len > 0);
    memset(f, 0, sizeof *f);
}

const ckpt_section *ckpt_find(const ckpt_file *f, const char *tag)
{
    for (int i = 0; i < f->n_sections; i++)
        if (strcmp(f->sections[i].tag, tag) == 0)
            return &f->sections[i];
    return NULL;
}
