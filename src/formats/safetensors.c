/* safetensors reader and element conversions (the writer is in
 * safetensors_write.c); the layout is drawn in safetensors.h. The checks
 * follow the reference crate's read_metadata() and validate(): what the
 * reference refuses is QKV_ERR_FORMAT here, what it reads is read here or,
 * for what qkv cannot hold (dtypes such as U16, more than 8 dimensions,
 * escaped NULs in names), QKV_ERR_UNSUPPORTED. tests/test_safetensors.c
 * checks this against the reference's verdicts (st_cases.json). */
#include "formats/safetensors.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "base/status.h"

struct st_file {
    char *name; /* for messages */
    unsigned char *buf;
    size_t len;
    int mapped;        /* buf maps the file (st_open): pages are released once read */
    size_t data_start; /* 8 + N */
    int n;
    st_tensor *t;
    int *by_name; /* tensor indices sorted by name, for st_find */
    int n_meta;
    char **meta; /* key, value, key, value... in header order */
};

/* keep in sync with st_dtype */
static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [ST_F32] = {"F32", 4}, [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2}, [ST_F64] = {"F64", 8},
    [ST_I64] = {"I64", 8}, [ST_I32] = {"I32", 4}, [ST_I16] = {"I16", 2},   [ST_I8] = {"I8", 1},
    [ST_U8] = {"U8", 1},   [ST_BOOL] = {"BOOL", 1},
};
#define N_DTYPES ((int)(sizeof dtypes / sizeof dtypes[0]))

/* Dtypes of the format that qkv does not represent: refused as unsupported
 * rather than malformed. */
static const char *const other_dtypes[] = {"U16", "U32", "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3",
                                           "F6_E3M2", "F4", "C64"};

size_t st_dtype_size(st_dtype d) { return (unsigned)d < N_DTYPES ? dtypes[d].size : 0; }
const char *st_dtype_name(st_dtype d) { return (unsigned)d < N_DTYPES ? dtypes[d].name : "?"; }

/* ---- element conversions ------------------------------------------------ */

static float bits_to_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float st_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) /* inf, or NaN with its payload kept */
        return bits_to_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        /* zero or subnormal: man * 2^-24, exact in float */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_to_f32(sign | ((exp + 112) << 23) | (man << 13));
}

float st_bf16_to_f32(uint16_t h) { return bits_to_f32((uint32_t)h << 16); }

uint16_t st_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t exp = (x >> 23) & 0xff, man = x & 0x7fffff;
    if (exp == 0xff)
        return sign | 0x7c00 | (man ? 0x200 | (man >> 13) : 0);
    int e = (int)exp - 127 + 15;
    if (e >= 0x1f)
        return sign | 0x7c00;
    if (e <= 0) {
        if (e < -10) /* below half the smallest subnormal */
            return sign;
        /* subnormal: h = value / 2^-24 = (man | 2^23) >> (14 - e), rounded */
        man |= 0x800000;
        int shift = 14 - e;
        uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1)))
            h++;
        return sign | (uint16_t)h;
    }
    uint32_t h = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
        h++; /* a carry runs into the exponent, up to infinity: as IEEE rounding does */
    return sign | (uint16_t)h;
}

uint16_t st_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

static uint64_t load_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* ---- reading ------------------------------------------------------------ */

static void format_shape(char *s, size_t cap, const int64_t *shape, int ndim)
{
    size_t k = (size_t)snprintf(s, cap, "[");
    for (int i = 0; i < ndim && k < cap; i++)
        k += (size_t)snprintf(s + k, cap - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < cap)
        snprintf(s + k, cap - k, "]");
}

/* A JSON number that is a non-negative integer exactly representable in a
 * double (below 2^53). */
static int json_uint(const cJSON *j, uint64_t *v)
{
    if (!cJSON_IsNumber(j))
        return 0;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != floor(d))
        return 0;
    *v = (uint64_t)d;
    return 1;
}

size_t st_utf8_check(const void *str, size_t len)
{
    const unsigned char *s = str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t k;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return i;
        }
        if (len - i <= k)
            return i;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return i;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += k + 1;
    }
    return len;
}

/* qsort_r (glibc) comparators; ctx is the tensor array */
static int cmp_by_name(const void *a, const void *b, void *ctx)
{
    const st_tensor *t = ctx;
    return strcmp(t[*(const int *)a].name, t[*(const int *)b].name);
}

static int cmp_by_offsets(const void *a, const void *b, void *ctx)
{
    const st_tensor *x = (const st_tensor *)ctx + *(const int *)a, *y = (const st_tensor *)ctx + *(const int *)b;
    size_t xe = x->offset + x->nbytes, ye = y->offset + y->nbytes;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    if (xe != ye)
        return xe < ye ? -1 : 1;
    return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

void st_close(st_file *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->n; i++)
        free(f->t[i].name);
    for (int i = 0; i < 2 * f->n_meta; i++)
        free(f->meta[i]);
    free(f->t);
    free(f->by_name);
    free(f->meta);
    qkv_unmap_file(f->buf, f->len, f->mapped);
    free(f->name);
    free(f);
}

static qkv_status parse_metadata(st_file *f, const cJSON *m)
{
    const char *fn = f->name;
    if (cJSON_IsNull(m))
        return QKV_OK;
    if (!cJSON_IsObject(m))
        return qkv_fail(QKV_ERR_FORMAT, "%s: header field '__metadata__': expected an object of strings", fn);
    int n = cJSON_GetArraySize(m);
    f->meta = calloc((size_t)2 * n + 1, sizeof *f->meta);
    if (!f->meta)
        return qkv_fail(QKV_ERR_NOMEM, "%s: out of memory", fn);
    for (const cJSON *kv = m->child; kv; kv = kv->next) {
        if (!cJSON_IsString(kv))
            return qkv_fail(QKV_ERR_FORMAT, "%s: '__metadata__' key '%s': expected a string value", fn, kv->string);
        for (int i = 0; i < f->n_meta; i++)
            if (!strcmp(f->meta[2 * i], kv->string))
                return qkv_fail(QKV_ERR_FORMAT, "%s: '__metadata__' key '%s' appears twice", fn, kv->string);
        f->meta[2 * f->n_meta] = strdup(kv->string);
        f->meta[2 * f->n_meta + 1] = strdup(kv->valuestring);
        f->n_meta++;
        if (!f->meta[2 * f->n_meta - 2] || !f->meta[2 * f->n_meta - 1])
            return qkv_fail(QKV_ERR_NOMEM, "%s: out of memory", fn);
    }
    return QKV_OK;
}

static qkv_status parse_tensor(st_file *f, st_tensor *t, const cJSON *e)
{
    const char *fn = f->name, *tn = e->string;
    size_t data_len = f->len - f->data_start;
    if (!cJSON_IsObject(e))
        return qkv_fail(QKV_ERR_FORMAT, "%s: tensor '%s': expected an object with dtype, shape, data_offsets", fn,
                        tn);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt))
        return qkv_fail(QKV_ERR_FORMAT, "%s: tensor '%s': field 'dtype' %s", fn, tn,
                        dt ? "is not a string" : "is missing");
    int d = 0;
    while (d < N_DTYPES && strcmp(dtypes[d].name, dt->valuestring))
        d++;
    if (d == N_DTYPES) {
        for (size_t i = 0; i < sizeof other_dtypes / sizeof other_dtypes[0]; i++)
            if (!strcmp(other_dtypes[i], dt->valuestring))
                return qkv_fail(QKV_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s is not supported by qkv", fn, tn,
                                dt->valuestring);
        return qkv_fail(QKV_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%s'", fn, tn, dt->valuestring);
    }
    t->dtype = (st_dtype)d;
    if (!cJSON_IsArray(sh))
        return qkv_fail(QKV_ERR_FORMAT, "%s: tensor '%s': field 'shape' %s", fn, tn,
                        sh ? "is not an array" : "is missing");
    int ndim = cJSON_GetArraySize(sh);
    if (ndim > ST_MAX_DIMS)
        return qkv_fail(QKV_ERR_UNSUPPORTED, "%s: tensor '%s': %d dimensions, qkv handles at most %d", fn, tn, ndim,
                        ST_MAX_DIMS);
    t->ndim = ndim;
    uint64_t count = 1;
    int overflow = 0, k = 0;
    for (const cJSON *s = sh->child; s; s = s->next, k++) {
        uint64_t v;
        if (!json_uint(s, &v))
            return qkv_fail(QKV_ERR_FORMAT, "%s: tensor '%s': shape[%d] is not a non-negative integer", fn, tn, k);
        t->shape[k] = (int64_t)v;
        if (v && count > UINT64_MAX / v)
            overflow = 1;
        count *= v;
    }
    char shape_s[256];
    format_shape(shape_s, sizeof shape_s, t->shape, t->ndim);
    uint64_t need = count * dtypes[d].size;
    if (overflow || count > UINT64_MAX / dtypes[d].size)
        return qkv_fail(QKV_ERR_FORMAT, "%s: tensor '%s': shape %s overflows", fn, tn, shape_s);
    uint64_t b, en;
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2 || !json_uint(of->child, &b) ||
        !json_uint(of->child->next, &en))
        return qkv_fail(QKV_ERR_FORMAT, "%s: tensor '%s': field 'data_offsets' %s", fn, tn,
                        of ? "must be [begin, end], two non-negative integers" : "is missing");
    if (en < b)
        return qkv_fail(QKV_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] end before they begin", fn, tn,
                        (unsigned long long)b, (unsigned long long)en);
    if (en - b != need)
        return qkv_fail(QKV_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] give %llu bytes, shape %s %s needs %llu",
                        fn, tn, (unsigned long long)b, (unsigned long long)en, (unsigned long long)(en - b), shape_s,
                        dtypes[d].name, (unsigned long long)need);
    if (en > data_len)
        return qkv_fail(QKV_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets [%llu, %llu] run past the data section (%zu bytes, file offset %zu to %zu)",
                        fn, tn, (unsigned long long)b, (unsigned long long)en, data_len, f->data_start, f->len);
    t->offset = (size_t)b;
    t->nbytes = (size_t)need;
    t->name = strdup(tn);
    if (!t->name)
        return qkv_fail(QKV_ERR_NOMEM, "%s: out of memory", fn);
    return QKV_OK;
}

/* The tensors sorted by offsets must tile [0, data_len) exactly. */
static qkv_status check_tiling(st_file *f)
{
    const char *fn = f->name;
    size_t data_len = f->len - f->data_start, pos = 0;
    int *order = malloc(((size_t)f->n + 1) * sizeof *order);
    if (!order)
        return qkv_fail(QKV_ERR_NOMEM, "%s: out of memory", fn);
    for (int i = 0; i < f->n; i++)
        order[i] = i;
    qsort_r(order, (size_t)f->n, sizeof *order, cmp_by_offsets, f->t);
    const st_tensor *prev = NULL;
    for (int i = 0; i < f->n; i++) {
        const st_tensor *t = &f->t[order[i]];
        if (t->offset != pos) {
            qkv_status s;
            if (!prev)
                s = qkv_fail(QKV_ERR_FORMAT,
                             "%s: tensor '%s': data_offsets begin at %zu, leaving the data section's first bytes "
                             "(file offset %zu) to no tensor",
                             fn, t->name, t->offset, f->data_start);
            else
                s = qkv_fail(QKV_ERR_FORMAT, "%s: tensor '%s': data_offsets [%zu, %zu] %s tensor '%s', which ends at %zu",
                             fn, t->name, t->offset, t->offset + t->nbytes,
                             t->offset < pos ? "overlap" : "leave a gap after", prev->name, pos);
            free(order);
            return s;
        }
        pos = t->offset + t->nbytes;
        prev = t;
    }
    free(order);
    if (pos != data_len)
        return qkv_fail(QKV_ERR_FORMAT,
                        "%s: the tensors cover %zu bytes of the data section but it holds %zu (file offset %zu onwards "
                        "belongs to no tensor)",
                        fn, pos, data_len, f->data_start + pos);
    return QKV_OK;
}

static qkv_status parse_header(st_file *f)
{
    const char *fn = f->name;
    if (f->len < 8)
        return qkv_fail(QKV_ERR_FORMAT, "%s: %zu bytes, too short for the 8-byte header size", fn, f->len);
    uint64_t n = load_le(f->buf, 8);
    if (n == 0)
        return qkv_fail(QKV_ERR_FORMAT, "%s: header size is 0", fn);
    if (n > ST_MAX_HEADER)
        return qkv_fail(QKV_ERR_FORMAT, "%s: header size %llu exceeds the limit of %u bytes", fn,
                        (unsigned long long)n, ST_MAX_HEADER);
    if (n > f->len - 8)
        return qkv_fail(QKV_ERR_FORMAT, "%s: header size %llu runs past the end of the file (%zu bytes)", fn,
                        (unsigned long long)n, f->len);
    f->data_start = 8 + (size_t)n;
    const unsigned char *h = f->buf + 8;
    size_t bad = st_utf8_check(h, (size_t)n);
    if (bad != n)
        return qkv_fail(QKV_ERR_FORMAT, "%s: header is not valid UTF-8 at file offset %zu", fn, 8 + bad);
    for (size_t i = 0; i < n; i++)
        if (h[i] < 0x20 && h[i] != '\t' && h[i] != '\n' && h[i] != '\r')
            return qkv_fail(QKV_ERR_FORMAT, "%s: header holds control byte 0x%02x at file offset %zu", fn, h[i],
                            8 + i);
    /* cJSON would cut a name at an escaped NUL, merging distinct names */
    for (size_t i = 0; i + 6 <= n; i++)
        if (h[i] == '\\' && h[i + 1] == 'u' && !memcmp(h + i + 2, "0000", 4)) {
            size_t k = i;
            while (k > 0 && h[k - 1] == '\\')
                k--;
            if ((i - k) % 2 == 0)
                return qkv_fail(QKV_ERR_UNSUPPORTED,
                                "%s: header holds an escaped NUL (\\u0000) at file offset %zu; qkv's names are C strings",
                                fn, 8 + i);
        }
    size_t first = 0; /* leading whitespace is valid JSON and the reference reads it */
    while (first < n && (h[first] == ' ' || h[first] == '\t' || h[first] == '\n' || h[first] == '\r'))
        first++;
    if (first == n || h[first] != '{')
        return qkv_fail(QKV_ERR_FORMAT, "%s: header must be a JSON object: '{' expected at file offset %zu", fn,
                        8 + first);

    /* cJSON wants a NUL-terminated buffer to be safe from over-reads */
    char *text = malloc((size_t)n + 1);
    if (!text)
        return qkv_fail(QKV_ERR_NOMEM, "%s: out of memory for a %llu-byte header", fn, (unsigned long long)n);
    memcpy(text, h, (size_t)n);
    text[n] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, (size_t)n, &end, 0);
    if (!root) {
        size_t at = end ? (size_t)(end - text) : 0;
        free(text);
        return qkv_fail(QKV_ERR_FORMAT, "%s: header is not valid JSON (error near file offset %zu)", fn, 8 + at);
    }
    size_t used = (size_t)(end - text);
    free(text);
    for (size_t i = used; i < n; i++)
        if (h[i] != ' ' && h[i] != '\t' && h[i] != '\n' && h[i] != '\r') {
            cJSON_Delete(root);
            return qkv_fail(QKV_ERR_FORMAT, "%s: unexpected byte after the header's JSON object at file offset %zu",
                            fn, 8 + i);
        }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return qkv_fail(QKV_ERR_FORMAT, "%s: header is not a JSON object", fn);
    }

    int count = cJSON_GetArraySize(root);
    f->t = calloc((size_t)count + 1, sizeof *f->t);
    f->by_name = malloc(((size_t)count + 1) * sizeof *f->by_name);
    if (!f->t || !f->by_name) {
        cJSON_Delete(root);
        return qkv_fail(QKV_ERR_NOMEM, "%s: out of memory", fn);
    }
    qkv_status s = QKV_OK;
    int seen_meta = 0;
    for (const cJSON *e = root->child; e && s == QKV_OK; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) {
            if (seen_meta++)
                s = qkv_fail(QKV_ERR_FORMAT, "%s: header has '__metadata__' twice", fn);
            else
                s = parse_metadata(f, e);
            continue;
        }
        s = parse_tensor(f, &f->t[f->n], e);
        if (s == QKV_OK)
            f->n++;
    }
    cJSON_Delete(root);
    if (s != QKV_OK)
        return s;

    for (int i = 0; i < f->n; i++)
        f->by_name[i] = i;
    qsort_r(f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_by_name, f->t);
    for (int i = 1; i < f->n; i++)
        if (!strcmp(f->t[f->by_name[i]].name, f->t[f->by_name[i - 1]].name))
            return qkv_fail(QKV_ERR_FORMAT, "%s: tensor '%s' appears twice in the header", fn,
                            f->t[f->by_name[i]].name);
    return check_tiling(f);
}

/* Takes ownership of buf (malloc'ed, or a qkv_map_file mapping). */
static qkv_status open_buffer(st_file **out, unsigned char *buf, size_t len, int mapped, const char *name)
{
    *out = NULL;
    st_file *f = calloc(1, sizeof *f);
    char *nm = strdup(name ? name : "(memory)");
    if (!f || !nm) {
        free(f);
        free(nm);
        qkv_unmap_file(buf, len, mapped);
        return qkv_fail(QKV_ERR_NOMEM, "%s: out of memory", name ? name : "(memory)");
    }
    f->name = nm;
    f->buf = buf;
    f->len = len;
    f->mapped = mapped;
    qkv_status s = parse_header(f);
    if (s != QKV_OK) {
        st_close(f);
        return s;
    }
    *out = f;
    return QKV_OK;
}

qkv_status st_open(st_file **out, const char *path)
{
    *out = NULL;
    void *data;
    size_t len;
    int mapped;
    QKV_TRY(qkv_map_file(path, &data, &len, &mapped));
    return open_buffer(out, (unsigned char *)data, len, mapped, path);
}

qkv_status st_open_memory(st_file **out, const void *data, size_t len, const char *name)
{
    *out = NULL;
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf)
        return qkv_fail(QKV_ERR_NOMEM, "%s: out of memory for %zu bytes", name ? name : "(memory)", len);
    if (len)
        memcpy(buf, data, len);
    return open_buffer(out, buf, len, 0, name);
}

int st_count(const st_file *f) { return f->n; }

const st_tensor *st_get(const st_file *f, int i) { return i >= 0 && i < f->n ? &f->t[i] : NULL; }

const st_tensor *st_find(const st_file *f, const char *name)
{
    int lo = 0, hi = f->n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(f->t[f->by_name[mid]].name, name);
        if (c == 0)
            return &f->t[f->by_name[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const void *st_data(const st_file *f, const st_tensor *t) { return f->buf + f->data_start + t->offset; }

const char *st_metadata(const st_file *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta[2 * i], key))
            return f->meta[2 * i + 1];
    return NULL;
}

int st_metadata_count(const st_file *f) { return f->n_meta; }

void st_metadata_get(const st_file *f, int i, const char **key, const char **value)
{
    *key = i >= 0 && i < f->n_meta ? f->meta[2 * i] : NULL;
    *value = i >= 0 && i < f->n_meta ? f->meta[2 * i + 1] : NULL;
}

static qkv_status lookup(const st_file *f, const char *name, size_t n, const st_tensor **tp)
{
    const st_tensor *t = st_find(f, name);
    if (!t)
        return qkv_fail(QKV_ERR_FORMAT, "%s: no tensor '%s'", f->name, name);
    size_t count = t->nbytes / dtypes[t->dtype].size;
    if (count != n) {
        char s[256];
        format_shape(s, sizeof s, t->shape, t->ndim);
        return qkv_fail(QKV_ERR_FORMAT, "%s: tensor '%s': shape %s holds %zu elements, expected %zu", f->name, name,
                        s, count, n);
    }
    *tp = t;
    return QKV_OK;
}

static qkv_status read_f32(const st_file *f, const st_tensor *t, float *out, size_t n);

/* A tensor read from a mapped file leaves memory once converted: loading a
 * model then holds its parameters and one tensor of the file, not both
 * whole (a tensor read twice, as tied weights are, is read again from the
 * page cache). */
qkv_status st_read_f32(const st_file *f, const char *name, float *out, size_t n)
{
    const st_tensor *t;
    QKV_TRY(lookup(f, name, n, &t));
    qkv_status s = read_f32(f, t, out, n);
    if (f->mapped)
        qkv_release_pages(st_data(f, t), t->nbytes);
    return s;
}

static qkv_status read_f32(const st_file *f, const st_tensor *t, float *out, size_t n)
{
    const unsigned char *p = st_data(f, t);
    switch (t->dtype) {
    case ST_F32:
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        memcpy(out, p, n * 4); /* the file's byte order is the host's */
#else
        for (size_t i = 0; i < n; i++)
            out[i] = bits_to_f32((uint32_t)load_le(p + 4 * i, 4));
#endif
        return QKV_OK;
    case ST_F16:
        for (size_t i = 0; i < n; i++)
            out[i] = st_f16_to_f32((uint16_t)load_le(p + 2 * i, 2));
        return QKV_OK;
    case ST_BF16:
        for (size_t i = 0; i < n; i++)
            out[i] = st_bf16_to_f32((uint16_t)load_le(p + 2 * i, 2));
        return QKV_OK;
    case ST_F64:
        for (size_t i = 0; i < n; i++) {
            uint64_t u = load_le(p + 8 * i, 8);
            double d;
            memcpy(&d, &u, 8);
            out[i] = (float)d;
        }
        return QKV_OK;
    default:
        return qkv_fail(QKV_ERR_FORMAT, "%s: tensor '%s': dtype %s, expected a float dtype (F32, F16, BF16, F64)",
                        f->name, t->name, dtypes[t->dtype].name);
    }
}

qkv_status st_read_i32(const st_file *f, const char *name, int32_t *out, size_t n)
{
    const st_tensor *t;
    QKV_TRY(lookup(f, name, n, &t));
    const unsigned char *p = st_data(f, t);
    switch (t->dtype) {
    case ST_I32:
        for (size_t i = 0; i < n; i++)
            out[i] = (int32_t)(uint32_t)load_le(p + 4 * i, 4);
        return QKV_OK;
    case ST_I64:
        for (size_t i = 0; i < n; i++) {
            int64_t v = (int64_t)load_le(p + 8 * i, 8);
            if (v < INT32_MIN || v > INT32_MAX)
                return qkv_fail(QKV_ERR_FORMAT, "%s: tensor '%s': element %zu is %lld, outside the int32 range",
                                f->name, name, i, (long long)v);
            out[i] = (int32_t)v;
        }
        return QKV_OK;
    default:
        return qkv_fail(QKV_ERR_FORMAT, "%s: tensor '%s': dtype %s, expected I32 or I64", f->name, name,
                        dtypes[t->dtype].name);
    }
}
