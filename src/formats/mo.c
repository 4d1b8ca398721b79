/* GNU .mo reader; the layout is drawn in mo.h. Checks follow libintl's
 * loadmsgcat.c where it checks, and go further where it trusts the file:
 * every table and string must lie inside the file and every string must be
 * NUL-terminated there. Strings are split in place (the buffer is ours), so
 * a crafted file whose entries share bytes cannot make us allocate more than
 * a small multiple of its size. */
#include "formats/mo.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "base/status.h"

#define SEGMENTS_END 0xffffffffu

struct mo_file {
    char *name;
    unsigned char *buf; /* the whole file plus a NUL */
    size_t len;
    int swap;
    unsigned revision;
    int n;
    mo_entry *e;
    const char **forms; /* every entry's msgstr array, back to back */
    size_t n_forms, cap_forms;
    char **owned; /* expanded system-dependent strings */
    int n_owned;
    const char *header;
    char charset[64];
    int skipped;
};

/* The <inttypes.h> conversion macros libintl expands ("PRIu64" -> "lu"). */
#define PRI_ROW(c)                                                                                          \
    {"PRI" #c "8", PRI##c##8}, {"PRI" #c "16", PRI##c##16}, {"PRI" #c "32", PRI##c##32},                    \
        {"PRI" #c "64", PRI##c##64}, {"PRI" #c "LEAST8", PRI##c##LEAST8}, {"PRI" #c "LEAST16", PRI##c##LEAST16}, \
        {"PRI" #c "LEAST32", PRI##c##LEAST32}, {"PRI" #c "LEAST64", PRI##c##LEAST64},                        \
        {"PRI" #c "FAST8", PRI##c##FAST8}, {"PRI" #c "FAST16", PRI##c##FAST16},                               \
        {"PRI" #c "FAST32", PRI##c##FAST32}, {"PRI" #c "FAST64", PRI##c##FAST64}, {"PRI" #c "MAX", PRI##c##MAX}, \
        {"PRI" #c "PTR", PRI##c##PTR}
static const struct {
    const char *name, *value;
} segment_values[] = {PRI_ROW(d), PRI_ROW(i), PRI_ROW(o), PRI_ROW(u), PRI_ROW(x), PRI_ROW(X), {"I", "I"}};

static const char *segment_value(const char *name)
{
    for (size_t i = 0; i < sizeof segment_values / sizeof segment_values[0]; i++)
        if (!strcmp(segment_values[i].name, name))
            return segment_values[i].value;
    return NULL;
}

/* Reads the u32 at off; 0 if it lies (partly) past the end. */
static int rd32(const mo_file *f, uint64_t off, uint32_t *v)
{
    if (off > f->len || f->len - off < 4)
        return 0;
    const unsigned char *p = f->buf + off;
    *v = f->swap ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
                 : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
    return 1;
}

void mo_close(mo_file *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->n_owned; i++)
        free(f->owned[i]);
    free(f->owned);
    free(f->forms);
    free(f->e);
    free(f->buf);
    free(f->name);
    free(f);
}

/* Splits a raw original and translation (each len bytes, NUL at [len]) into
 * e. Form pointers are stored as offsets into f->forms until the table is
 * complete (it may move while growing). */
static qkv_status split_entry(mo_file *f, mo_entry *e, char *orig, size_t olen, char *trans, size_t tlen,
                              const char *what, uint32_t idx)
{
    memset(e, 0, sizeof *e);
    size_t idlen = strlen(orig);
    char *eot = memchr(orig, '\x04', idlen);
    if (eot) {
        *eot = '\0';
        e->context = orig;
        orig = eot + 1;
        olen -= (size_t)(orig - e->context);
        idlen = strlen(orig);
    }
    e->msgid = orig;
    if (idlen < olen)
        e->msgid_plural = orig + idlen + 1;
    size_t forms = 1;
    for (size_t i = 0; i < tlen; i++)
        forms += trans[i] == '\0';
    /* disjoint strings hold at most len NULs in all (expanded system-dependent
     * ones add a few); more means entries share bytes */
    if (forms > 2 * f->len + 16 - f->n_forms)
        return qkv_fail(QKV_ERR_FORMAT, "%s: %s %u: translations overlap beyond the file's size", f->name, what,
                        (unsigned)idx);
    if (f->n_forms + forms > f->cap_forms) {
        size_t cap = f->cap_forms ? f->cap_forms : 256;
        while (cap < f->n_forms + forms)
            cap *= 2;
        const char **nf = realloc(f->forms, cap * sizeof *nf);
        if (!nf)
            return qkv_fail(QKV_ERR_NOMEM, "%s: out of memory", f->name);
        f->forms = nf;
        f->cap_forms = cap;
    }
    e->msgstr = (const char *const *)(uintptr_t)f->n_forms;
    e->n_msgstr = (int)forms;
    const char *p = trans;
    for (size_t k = 0; k < forms; k++) {
        f->forms[f->n_forms++] = p;
        p += strlen(p) + 1;
    }
    return QKV_OK;
}

/* A static string's {length, offset} descriptor at table offset d. */
static qkv_status static_string(mo_file *f, uint64_t d, uint32_t idx, const char *which, char **s, size_t *n)
{
    uint32_t len, off;
    if (!rd32(f, d, &len) || !rd32(f, d + 4, &off))
        return qkv_fail(QKV_ERR_FORMAT, "%s: entry %u: %s descriptor at offset %llu runs past the end (%zu bytes)",
                        f->name, (unsigned)idx, which, (unsigned long long)d, f->len);
    if ((uint64_t)off + len >= f->len)
        return qkv_fail(QKV_ERR_FORMAT,
                        "%s: entry %u: %s string (offset %u, length %u) runs past the end of the file (%zu bytes)",
                        f->name, (unsigned)idx, which, (unsigned)off, (unsigned)len, f->len);
    if (f->buf[off + len] != '\0')
        return qkv_fail(QKV_ERR_FORMAT, "%s: entry %u: %s string (offset %u, length %u) is not NUL-terminated",
                        f->name, (unsigned)idx, which, (unsigned)off, (unsigned)len);
    *s = (char *)f->buf + off;
    *n = len;
    return QKV_OK;
}

/* Expands system-dependent string idx whose descriptor sits at offset d.
 * *out is NULL (and no error) when it names a segment unknown here. */
static qkv_status sysdep_string(mo_file *f, uint32_t idx, const char *which, uint64_t d, const char **seg_vals,
                                uint32_t n_segs, uint64_t *budget, char **out, size_t *out_len)
{
    *out = NULL;
    uint32_t pos;
    if (!rd32(f, d, &pos))
        return qkv_fail(QKV_ERR_FORMAT, "%s: system-dependent entry %u: %s descriptor at offset %llu runs past the end",
                        f->name, (unsigned)idx, which, (unsigned long long)d);
    /* first pass: validate and size; second: copy */
    uint64_t size = 0;
    int unknown = 0;
    uint32_t last = 0;
    uint64_t p = d + 4, static_pos = pos;
    for (;;) {
        uint32_t segsize, ref;
        if (!rd32(f, p, &segsize) || !rd32(f, p + 4, &ref))
            return qkv_fail(QKV_ERR_FORMAT,
                            "%s: system-dependent entry %u: %s segment list runs past the end of the file (offset %llu)",
                            f->name, (unsigned)idx, which, (unsigned long long)p);
        p += 8;
        if (static_pos + segsize > f->len)
            return qkv_fail(QKV_ERR_FORMAT,
                            "%s: system-dependent entry %u: %s static piece (offset %llu, length %u) runs past the end",
                            f->name, (unsigned)idx, which, (unsigned long long)static_pos, (unsigned)segsize);
        size += segsize;
        static_pos += segsize;
        if (ref == SEGMENTS_END) {
            last = segsize;
            break;
        }
        if (ref >= n_segs)
            return qkv_fail(QKV_ERR_FORMAT, "%s: system-dependent entry %u: %s refers to segment %u of %u", f->name,
                            (unsigned)idx, which, (unsigned)ref, (unsigned)n_segs);
        if (!seg_vals[ref])
            unknown = 1;
        else
            size += strlen(seg_vals[ref]);
    }
    /* the closing static piece carries the terminating NUL */
    if (last == 0 || f->buf[static_pos - 1] != '\0')
        return qkv_fail(QKV_ERR_FORMAT, "%s: system-dependent entry %u: %s string is not NUL-terminated", f->name,
                        (unsigned)idx, which);
    if (unknown)
        return QKV_OK;
    if (size > *budget)
        return qkv_fail(QKV_ERR_FORMAT,
                        "%s: system-dependent entry %u: expanded strings exceed 16 times the file's size", f->name,
                        (unsigned)idx);
    *budget -= size;
    char *s = malloc((size_t)size);
    char **no = realloc(f->owned, ((size_t)f->n_owned + 1) * sizeof *no);
    if (!s || !no) {
        free(s);
        if (no)
            f->owned = no;
        return qkv_fail(QKV_ERR_NOMEM, "%s: out of memory", f->name);
    }
    f->owned = no;
    f->owned[f->n_owned++] = s;
    size_t k = 0;
    p = d + 4;
    static_pos = pos;
    for (;;) {
        uint32_t segsize = 0, ref = SEGMENTS_END; /* validated by the first pass */
        rd32(f, p, &segsize);
        rd32(f, p + 4, &ref);
        p += 8;
        memcpy(s + k, f->buf + static_pos, segsize);
        k += segsize;
        static_pos += segsize;
        if (ref == SEGMENTS_END)
            break;
        size_t vl = strlen(seg_vals[ref]);
        memcpy(s + k, seg_vals[ref], vl);
        k += vl;
    }
    *out = s;
    *out_len = k - 1; /* without the final NUL */
    return QKV_OK;
}

static qkv_status parse_sysdep(mo_file *f)
{
    uint32_t n_segs, seg_tab, n_str, orig_tab, trans_tab;
    if (!rd32(f, 28, &n_segs) || !rd32(f, 32, &seg_tab) || !rd32(f, 36, &n_str) || !rd32(f, 40, &orig_tab) ||
        !rd32(f, 44, &trans_tab))
        return qkv_fail(QKV_ERR_FORMAT, "%s: revision %u.%u needs a 48-byte header, the file has %zu bytes", f->name,
                        f->revision >> 16, f->revision & 0xffff, f->len);
    if ((uint64_t)seg_tab + (uint64_t)n_segs * 8 > f->len)
        return qkv_fail(QKV_ERR_FORMAT, "%s: segment table (%u entries at offset %u) runs past the end (%zu bytes)",
                        f->name, (unsigned)n_segs, (unsigned)seg_tab, f->len);
    if ((uint64_t)orig_tab + (uint64_t)n_str * 4 > f->len || (uint64_t)trans_tab + (uint64_t)n_str * 4 > f->len)
        return qkv_fail(QKV_ERR_FORMAT,
                        "%s: system-dependent string tables (%u entries at offsets %u, %u) run past the end (%zu bytes)",
                        f->name, (unsigned)n_str, (unsigned)orig_tab, (unsigned)trans_tab, f->len);
    if (n_str == 0)
        return QKV_OK;
    const char **vals = calloc((size_t)n_segs + 1, sizeof *vals);
    if (!vals)
        return qkv_fail(QKV_ERR_NOMEM, "%s: out of memory", f->name);
    qkv_status s = QKV_OK;
    for (uint32_t i = 0; i < n_segs && s == QKV_OK; i++) {
        uint32_t len = 0, off = 0; /* the table bounds were checked above */
        rd32(f, (uint64_t)seg_tab + 8 * (uint64_t)i, &len);
        rd32(f, (uint64_t)seg_tab + 8 * (uint64_t)i + 4, &off);
        if (len == 0 || (uint64_t)off + len > f->len || f->buf[off + len - 1] != '\0')
            s = qkv_fail(QKV_ERR_FORMAT, "%s: segment %u (offset %u, length %u) is outside the file or not NUL-terminated",
                         f->name, (unsigned)i, (unsigned)off, (unsigned)len);
        else
            vals[i] = segment_value((const char *)f->buf + off);
    }
    uint64_t budget = 16 * (uint64_t)f->len + 65536;
    for (uint32_t i = 0; i < n_str && s == QKV_OK; i++) {
        uint32_t od = 0, td = 0;
        rd32(f, (uint64_t)orig_tab + 4 * (uint64_t)i, &od);
        rd32(f, (uint64_t)trans_tab + 4 * (uint64_t)i, &td);
        char *o, *t;
        size_t ol = 0, tl = 0;
        s = sysdep_string(f, i, "original", od, vals, n_segs, &budget, &o, &ol);
        if (s == QKV_OK)
            s = sysdep_string(f, i, "translation", td, vals, n_segs, &budget, &t, &tl);
        if (s != QKV_OK)
            break;
        if (!o || !t) {
            f->skipped++;
            continue;
        }
        s = split_entry(f, &f->e[f->n], o, ol, t, tl, "system-dependent entry", i);
        if (s == QKV_OK)
            f->e[f->n++].sysdep = 1;
    }
    free(vals);
    return s;
}

static void parse_charset(mo_file *f)
{
    char ct[256];
    f->charset[0] = '\0';
    if (!mo_header_field(f, "Content-Type", ct, sizeof ct))
        return;
    const char *c = strstr(ct, "charset=");
    if (!c)
        return;
    c += 8;
    size_t k = 0;
    while (c[k] && c[k] != ';' && c[k] != ' ' && c[k] != '\t' && k + 1 < sizeof f->charset) {
        f->charset[k] = c[k];
        k++;
    }
    f->charset[k] = '\0';
}

static qkv_status parse(mo_file *f)
{
    const char *fn = f->name;
    if (f->len < 28)
        return qkv_fail(QKV_ERR_FORMAT, "%s: %zu bytes, too short for a .mo header (28 bytes)", fn, f->len);
    uint32_t magic = (uint32_t)f->buf[0] | (uint32_t)f->buf[1] << 8 | (uint32_t)f->buf[2] << 16 |
                     (uint32_t)f->buf[3] << 24;
    if (magic == 0xde120495u)
        f->swap = 1;
    else if (magic != MO_MAGIC)
        return qkv_fail(QKV_ERR_FORMAT, "%s: magic 0x%08x is not a .mo file's (0x950412de in either byte order)", fn,
                        (unsigned)magic);
    uint32_t rev, n, otab, ttab, hsize, hoff;
    rd32(f, 4, &rev);
    rd32(f, 8, &n);
    rd32(f, 12, &otab);
    rd32(f, 16, &ttab);
    rd32(f, 20, &hsize);
    rd32(f, 24, &hoff);
    f->revision = rev;
    if (rev >> 16 > 1)
        return qkv_fail(QKV_ERR_UNSUPPORTED, "%s: major revision %u (readers know 0 and 1)", fn, (unsigned)(rev >> 16));
    if ((uint64_t)otab + (uint64_t)n * 8 > f->len)
        return qkv_fail(QKV_ERR_FORMAT, "%s: table of originals (%u entries at offset %u) runs past the end (%zu bytes)",
                        fn, (unsigned)n, (unsigned)otab, f->len);
    if ((uint64_t)ttab + (uint64_t)n * 8 > f->len)
        return qkv_fail(QKV_ERR_FORMAT,
                        "%s: table of translations (%u entries at offset %u) runs past the end (%zu bytes)", fn,
                        (unsigned)n, (unsigned)ttab, f->len);
    if (hsize && (uint64_t)hoff + (uint64_t)hsize * 4 > f->len)
        return qkv_fail(QKV_ERR_FORMAT, "%s: hash table (%u slots at offset %u) runs past the end (%zu bytes)", fn,
                        (unsigned)hsize, (unsigned)hoff, f->len);
    uint32_t n_sys = 0;
    if ((rev & 0xffff) >= 1 && !rd32(f, 36, &n_sys))
        return qkv_fail(QKV_ERR_FORMAT, "%s: revision %u.%u needs a 48-byte header, the file has %zu bytes", fn,
                        (unsigned)(rev >> 16), (unsigned)(rev & 0xffff), f->len);
    if ((rev & 0xffff) >= 1 && (uint64_t)n_sys * 4 > f->len)
        return qkv_fail(QKV_ERR_FORMAT, "%s: %u system-dependent strings cannot fit in %zu bytes", fn,
                        (unsigned)n_sys, f->len);
    f->e = calloc((size_t)n + n_sys + 1, sizeof *f->e);
    if (!f->e)
        return qkv_fail(QKV_ERR_NOMEM, "%s: out of memory for %u entries", fn, (unsigned)n);
    for (uint32_t i = 0; i < n; i++) {
        char *o, *t;
        size_t ol, tl;
        QKV_TRY(static_string(f, (uint64_t)otab + 8 * (uint64_t)i, i, "original", &o, &ol));
        QKV_TRY(static_string(f, (uint64_t)ttab + 8 * (uint64_t)i, i, "translation", &t, &tl));
        if (ol == 0 && !f->header) {
            f->header = t;
            continue;
        }
        QKV_TRY(split_entry(f, &f->e[f->n], o, ol, t, tl, "entry", i));
        f->n++;
    }
    if ((rev & 0xffff) >= 1)
        QKV_TRY(parse_sysdep(f));
    for (int i = 0; i < f->n; i++)
        f->e[i].msgstr = f->forms + (uintptr_t)f->e[i].msgstr;
    parse_charset(f);
    return QKV_OK;
}

qkv_status mo_open_memory(mo_file **out, const void *data, size_t len, const char *name)
{
    *out = NULL;
    const char *nm = name ? name : "(memory)";
    mo_file *f = calloc(1, sizeof *f);
    if (f) {
        f->name = strdup(nm);
        f->buf = malloc(len + 1);
    }
    if (!f || !f->name || !f->buf) {
        mo_close(f);
        return qkv_fail(QKV_ERR_NOMEM, "%s: out of memory for %zu bytes", nm, len);
    }
    if (len)
        memcpy(f->buf, data, len);
    f->buf[len] = '\0';
    f->len = len;
    qkv_status s = parse(f);
    if (s != QKV_OK) {
        mo_close(f);
        return s;
    }
    *out = f;
    return QKV_OK;
}

qkv_status mo_open(mo_file **out, const char *path)
{
    *out = NULL;
    char *data;
    size_t len;
    QKV_TRY(qkv_read_file(path, &data, &len));
    qkv_status s = mo_open_memory(out, data, len, path);
    free(data);
    return s;
}

int mo_count(const mo_file *f) { return f->n; }
const mo_entry *mo_get(const mo_file *f, int i) { return i >= 0 && i < f->n ? &f->e[i] : NULL; }
const char *mo_header(const mo_file *f) { return f->header; }
const char *mo_charset(const mo_file *f) { return f->charset; }
unsigned mo_revision(const mo_file *f) { return f->revision; }
int mo_skipped(const mo_file *f) { return f->skipped; }

int mo_header_field(const mo_file *f, const char *field, char *buf, size_t cap)
{
    if (cap)
        buf[0] = '\0';
    size_t fl = strlen(field);
    for (const char *line = f->header; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t ll = nl ? (size_t)(nl - line) : strlen(line);
        if (ll > fl && !strncmp(line, field, fl) && line[fl] == ':') {
            const char *v = line + fl + 1;
            while (v < line + ll && (*v == ' ' || *v == '\t'))
                v++;
            size_t vl = (size_t)(line + ll - v);
            if (cap) {
                if (vl > cap - 1)
                    vl = cap - 1;
                memcpy(buf, v, vl);
                buf[vl] = '\0';
            }
            return 1;
        }
        line = nl ? nl + 1 : line + ll;
    }
    return 0;
}
