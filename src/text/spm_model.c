/* Reader and writer of SentencePiece's ModelProto, by hand, in protobuf wire
 * format. Keep in sync with spm_model.h and with the field numbers of
 * sentencepiece_model.proto:
 *
 *   ModelProto       1 pieces (repeated SentencePiece)  2 trainer_spec
 *                    3 normalizer_spec  4 self_test_data  5 denormalizer_spec
 *   SentencePiece    1 piece (string)  2 score (float)  3 type (enum)
 *   NormalizerSpec   1 name  2 precompiled_charsmap  3 add_dummy_prefix
 *                    4 remove_extra_whitespaces  5 escape_whitespaces
 *   TrainerSpec      3 model_type  4 vocab_size  10 character_coverage
 *                    20 max_sentencepiece_length  21 split_by_unicode_script
 *                    22 split_by_whitespace  23 split_by_number
 *                    24 treat_whitespace_as_suffix  25 split_digits
 *                    35 byte_fallback  40..43 unk/bos/eos/pad id
 *                    44 unk_surface  45..48 unk/bos/eos/pad piece
 *
 * Wire format: each field is a varint tag (number << 3 | wire type) then
 * wire type 0 a varint, 1 eight bytes, 2 a varint length and that many
 * bytes, 5 four bytes (floats are little-endian IEEE fixed32). */
#include "text/spm_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "base/status.h"

/* ---- reading ------------------------------------------------------------ */

typedef struct {
    const uint8_t *buf; /* whole file: offsets in messages are absolute */
    size_t pos, end;
    const char *name;
} pb_reader;

static qkv_status pb_varint(pb_reader *r, uint64_t *v, const char *what)
{
    uint64_t x = 0;
    size_t start = r->pos;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->pos >= r->end)
            return qkv_fail(QKV_ERR_FORMAT, "%s: byte %zu: truncated varint in %s", r->name, start, what);
        uint8_t b = r->buf[r->pos++];
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return QKV_OK;
        }
    }
    return qkv_fail(QKV_ERR_FORMAT, "%s: byte %zu: varint longer than 10 bytes in %s", r->name, start, what);
}

/* One field: its number, wire type and where its value lies. */
typedef struct {
    uint32_t num;
    int wire;
    uint64_t v;              /* wire 0, 1, 5 */
    size_t start, off, len;  /* start: tag offset; off/len: wire 2 payload */
} pb_field;

static qkv_status pb_next(pb_reader *r, pb_field *f, const char *msg)
{
    f->start = r->pos;
    uint64_t tag = 0;
    QKV_TRY(pb_varint(r, &tag, msg));
    f->num = (uint32_t)(tag >> 3);
    f->wire = (int)(tag & 7);
    if (f->num == 0 || tag >> 3 > 0x1fffffff)
        return qkv_fail(QKV_ERR_FORMAT, "%s: byte %zu: invalid field number %llu in %s", r->name, f->start,
                        (unsigned long long)(tag >> 3), msg);
    switch (f->wire) {
    case 0:
        return pb_varint(r, &f->v, msg);
    case 1:
    case 5: {
        size_t n = f->wire == 1 ? 8 : 4;
        if (r->end - r->pos < n)
            return qkv_fail(QKV_ERR_FORMAT, "%s: byte %zu: truncated fixed%zu field %u in %s", r->name, r->pos,
                            n * 8, f->num, msg);
        f->v = 0;
        for (size_t i = 0; i < n; i++)
            f->v |= (uint64_t)r->buf[r->pos + i] << (8 * i);
        r->pos += n;
        return QKV_OK;
    }
    case 2: {
        uint64_t len = 0;
        QKV_TRY(pb_varint(r, &len, msg));
        if (len > r->end - r->pos)
            return qkv_fail(QKV_ERR_FORMAT,
                            "%s: byte %zu: field %u of %s claims %llu bytes but only %zu remain", r->name,
                            f->start, f->num, msg, (unsigned long long)len, r->end - r->pos);
        f->off = r->pos;
        f->len = (size_t)len;
        r->pos += (size_t)len;
        return QKV_OK;
    }
    default:
        return qkv_fail(QKV_ERR_FORMAT, "%s: byte %zu: field %u of %s has unsupported wire type %d", r->name,
                        f->start, f->num, msg, f->wire);
    }
}

static qkv_status want_wire(const pb_reader *r, const pb_field *f, int wire, const char *field)
{
    if (f->wire != wire)
        return qkv_fail(QKV_ERR_FORMAT, "%s: byte %zu: field %s has wire type %d, expected %d", r->name, f->start,
                        field, f->wire, wire);
    return QKV_OK;
}

static qkv_status get_string(const pb_reader *r, const pb_field *f, char **out, const char *field)
{
    QKV_TRY(want_wire(r, f, 2, field));
    if (memchr(r->buf + f->off, 0, f->len))
        return qkv_fail(QKV_ERR_FORMAT, "%s: byte %zu: %s contains a NUL byte", r->name, f->off, field);
    char *s = malloc(f->len + 1);
    if (!s)
        return qkv_fail(QKV_ERR_NOMEM, "%s: out of memory reading %s", r->name, field);
    memcpy(s, r->buf + f->off, f->len);
    s[f->len] = 0;
    free(*out);
    *out = s;
    return QKV_OK;
}

static qkv_status get_int(const pb_reader *r, const pb_field *f, int *out, const char *field)
{
    QKV_TRY(want_wire(r, f, 0, field));
    /* int32 fields: negative values arrive sign-extended to 64 bits */
    int64_t v = (int64_t)f->v;
    if (v < INT32_MIN || v > INT32_MAX)
        return qkv_fail(QKV_ERR_FORMAT, "%s: byte %zu: %s = %lld is out of int32 range", r->name, f->start, field,
                        (long long)v);
    *out = (int)v;
    return QKV_OK;
}

static qkv_status get_float(const pb_reader *r, const pb_field *f, float *out, const char *field)
{
    QKV_TRY(want_wire(r, f, 5, field));
    uint32_t u = (uint32_t)f->v;
    memcpy(out, &u, 4);
    return QKV_OK;
}

/* Appends the raw bytes of field f (tag included) to an extra buffer. */
static qkv_status keep_raw(const pb_reader *r, const pb_field *f, uint8_t **buf, size_t *len)
{
    size_t n = r->pos - f->start;
    uint8_t *nb = realloc(*buf, *len + n);
    if (!nb)
        return qkv_fail(QKV_ERR_NOMEM, "%s: out of memory", r->name);
    memcpy(nb + *len, r->buf + f->start, n);
    *buf = nb;
    *len += n;
    return QKV_OK;
}

static pb_reader sub_reader(const pb_reader *r, const pb_field *f)
{
    pb_reader s = {r->buf, f->off, f->off + f->len, r->name};
    return s;
}

static qkv_status read_piece(const pb_reader *parent, const pb_field *pf, spm_piece *p, int index)
{
    pb_reader r = sub_reader(parent, pf);
    char what[48];
    snprintf(what, sizeof what, "pieces[%d]", index);
    p->type = SPM_NORMAL;
    p->score = 0;
    pb_field f;
    while (r.pos < r.end) {
        QKV_TRY(pb_next(&r, &f, what));
        if (f.num == 1) {
            QKV_TRY(get_string(&r, &f, &p->piece, "SentencePiece.piece"));
        } else if (f.num == 2) {
            QKV_TRY(get_float(&r, &f, &p->score, "SentencePiece.score"));
        } else if (f.num == 3) {
            int t = 0;
            QKV_TRY(get_int(&r, &f, &t, "SentencePiece.type"));
            if (t < SPM_NORMAL || t > SPM_BYTE)
                return qkv_fail(QKV_ERR_FORMAT, "%s: byte %zu: %s has type %d, expected 1..6", r.name, f.start,
                                what, t);
            p->type = (spm_piece_type)t;
        }
    }
    if (!p->piece)
        p->piece = calloc(1, 1);
    return p->piece ? QKV_OK : qkv_fail(QKV_ERR_NOMEM, "%s: out of memory", r.name);
}

static qkv_status read_normalizer(const pb_reader *parent, const pb_field *pf, spm_normalizer_spec *n)
{
    pb_reader r = sub_reader(parent, pf);
    pb_field f;
    while (r.pos < r.end) {
        QKV_TRY(pb_next(&r, &f, "NormalizerSpec"));
        switch (f.num) {
        case 1:
            QKV_TRY(get_string(&r, &f, &n->name, "NormalizerSpec.name"));
            break;
        case 2:
            QKV_TRY(want_wire(&r, &f, 2, "NormalizerSpec.precompiled_charsmap"));
            free(n->precompiled_charsmap);
            n->precompiled_charsmap = NULL;
            n->precompiled_charsmap_len = f.len;
            if (f.len) {
                n->precompiled_charsmap = malloc(f.len);
                if (!n->precompiled_charsmap)
                    return qkv_fail(QKV_ERR_NOMEM, "%s: out of memory", r.name);
                memcpy(n->precompiled_charsmap, r.buf + f.off, f.len);
            }
            break;
        case 3:
            QKV_TRY(get_int(&r, &f, &n->add_dummy_prefix, "NormalizerSpec.add_dummy_prefix"));
            n->add_dummy_prefix = !!n->add_dummy_prefix;
            break;
        case 4:
            QKV_TRY(get_int(&r, &f, &n->remove_extra_whitespaces, "NormalizerSpec.remove_extra_whitespaces"));
            n->remove_extra_whitespaces = !!n->remove_extra_whitespaces;
            break;
        case 5:
            QKV_TRY(get_int(&r, &f, &n->escape_whitespaces, "NormalizerSpec.escape_whitespaces"));
            n->escape_whitespaces = !!n->escape_whitespaces;
            break;
        default:
            QKV_TRY(keep_raw(&r, &f, &n->extra, &n->extra_len));
        }
    }
    return QKV_OK;
}

static qkv_status read_trainer(const pb_reader *parent, const pb_field *pf, spm_trainer_spec *t)
{
    pb_reader r = sub_reader(parent, pf);
    pb_field f;
    int v = 0;
    while (r.pos < r.end) {
        QKV_TRY(pb_next(&r, &f, "TrainerSpec"));
        switch (f.num) {
        case 3:
            QKV_TRY(get_int(&r, &f, &v, "TrainerSpec.model_type"));
            if (v < SPM_UNIGRAM || v > SPM_CHAR)
                return qkv_fail(QKV_ERR_FORMAT, "%s: byte %zu: TrainerSpec.model_type is %d, expected 1..4",
                                r.name, f.start, v);
            t->model_type = (spm_model_type)v;
            break;
        case 4: QKV_TRY(get_int(&r, &f, &t->vocab_size, "TrainerSpec.vocab_size")); break;
        case 10: QKV_TRY(get_float(&r, &f, &t->character_coverage, "TrainerSpec.character_coverage")); break;
        case 20:
            QKV_TRY(get_int(&r, &f, &t->max_sentencepiece_length, "TrainerSpec.max_sentencepiece_length"));
            break;
        case 21:
            QKV_TRY(get_int(&r, &f, &t->split_by_unicode_script, "TrainerSpec.split_by_unicode_script"));
            t->split_by_unicode_script = !!t->split_by_unicode_script;
            break;
        case 22:
            QKV_TRY(get_int(&r, &f, &t->split_by_whitespace, "TrainerSpec.split_by_whitespace"));
            t->split_by_whitespace = !!t->split_by_whitespace;
            break;
        case 23:
            QKV_TRY(get_int(&r, &f, &t->split_by_number, "TrainerSpec.split_by_number"));
            t->split_by_number = !!t->split_by_number;
            break;
        case 24:
            QKV_TRY(get_int(&r, &f, &t->treat_whitespace_as_suffix, "TrainerSpec.treat_whitespace_as_suffix"));
            t->treat_whitespace_as_suffix = !!t->treat_whitespace_as_suffix;
            break;
        case 25:
            QKV_TRY(get_int(&r, &f, &t->split_digits, "TrainerSpec.split_digits"));
            t->split_digits = !!t->split_digits;
            break;
        case 35:
            QKV_TRY(get_int(&r, &f, &t->byte_fallback, "TrainerSpec.byte_fallback"));
            t->byte_fallback = !!t->byte_fallback;
            break;
        case 40: QKV_TRY(get_int(&r, &f, &t->unk_id, "TrainerSpec.unk_id")); break;
        case 41: QKV_TRY(get_int(&r, &f, &t->bos_id, "TrainerSpec.bos_id")); break;
        case 42: QKV_TRY(get_int(&r, &f, &t->eos_id, "TrainerSpec.eos_id")); break;
        case 43: QKV_TRY(get_int(&r, &f, &t->pad_id, "TrainerSpec.pad_id")); break;
        case 44: QKV_TRY(get_string(&r, &f, &t->unk_surface, "TrainerSpec.unk_surface")); break;
        case 45: QKV_TRY(get_string(&r, &f, &t->unk_piece, "TrainerSpec.unk_piece")); break;
        case 46: QKV_TRY(get_string(&r, &f, &t->bos_piece, "TrainerSpec.bos_piece")); break;
        case 47: QKV_TRY(get_string(&r, &f, &t->eos_piece, "TrainerSpec.eos_piece")); break;
        case 48: QKV_TRY(get_string(&r, &f, &t->pad_piece, "TrainerSpec.pad_piece")); break;
        default: QKV_TRY(keep_raw(&r, &f, &t->extra, &t->extra_len));
        }
    }
    return QKV_OK;
}

static void normalizer_defaults(spm_normalizer_spec *n)
{
    n->add_dummy_prefix = 1;
    n->remove_extra_whitespaces = 1;
    n->escape_whitespaces = 1;
}

qkv_status spm_model_init(spm_model *m)
{
    memset(m, 0, sizeof *m);
    spm_trainer_spec *t = &m->trainer;
    t->model_type = SPM_UNIGRAM;
    t->vocab_size = 8000;
    t->character_coverage = 0.9995f;
    t->unk_id = 0;
    t->bos_id = 1;
    t->eos_id = 2;
    t->pad_id = -1;
    t->split_by_whitespace = 1;
    t->split_by_unicode_script = 1;
    t->split_by_number = 1;
    t->max_sentencepiece_length = 16;
    t->unk_piece = strdup("<unk>");
    t->bos_piece = strdup("<s>");
    t->eos_piece = strdup("</s>");
    t->pad_piece = strdup("<pad>");
    t->unk_surface = strdup(" \xE2\x81\x87 ");
    normalizer_defaults(&m->normalizer);
    normalizer_defaults(&m->denormalizer);
    if (!t->unk_piece || !t->bos_piece || !t->eos_piece || !t->pad_piece || !t->unk_surface) {
        spm_model_free(m);
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    }
    return QKV_OK;
}

static qkv_status read_model(spm_model *m, const uint8_t *data, size_t len, const char *name)
{
    pb_reader r = {data, 0, len, name};
    pb_field f;
    int cap = 0;
    while (r.pos < r.end) {
        QKV_TRY(pb_next(&r, &f, "ModelProto"));
        switch (f.num) {
        case 1:
            QKV_TRY(want_wire(&r, &f, 2, "ModelProto.pieces"));
            if (m->n_pieces == cap) {
                int nc = cap ? cap * 2 : 256;
                spm_piece *np = realloc(m->pieces, (size_t)nc * sizeof *np);
                if (!np)
                    return qkv_fail(QKV_ERR_NOMEM, "%s: out of memory", name);
                m->pieces = np;
                cap = nc;
            }
            memset(&m->pieces[m->n_pieces], 0, sizeof m->pieces[0]);
            m->n_pieces++;
            QKV_TRY(read_piece(&r, &f, &m->pieces[m->n_pieces - 1], m->n_pieces - 1));
            break;
        case 2:
            QKV_TRY(want_wire(&r, &f, 2, "ModelProto.trainer_spec"));
            QKV_TRY(read_trainer(&r, &f, &m->trainer));
            break;
        case 3:
            QKV_TRY(want_wire(&r, &f, 2, "ModelProto.normalizer_spec"));
            QKV_TRY(read_normalizer(&r, &f, &m->normalizer));
            break;
        case 5:
            QKV_TRY(want_wire(&r, &f, 2, "ModelProto.denormalizer_spec"));
            m->has_denormalizer = 1;
            QKV_TRY(read_normalizer(&r, &f, &m->denormalizer));
            break;
        default:
            QKV_TRY(keep_raw(&r, &f, &m->extra, &m->extra_len));
        }
    }
    return QKV_OK;
}

qkv_status spm_model_read_memory(spm_model *m, const void *data, size_t len, const char *name)
{
    QKV_TRY(spm_model_init(m));
    qkv_status s = read_model(m, data, len, name ? name : "<memory>");
    if (s != QKV_OK) {
        spm_model_free(m);
        if (s == QKV_ERR_FORMAT) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", qkv_last_error());
            s = qkv_fail(s, "%s (expected a SentencePiece .model: a serialized ModelProto)", msg);
        }
    }
    return s;
}

qkv_status spm_model_read(spm_model *m, const char *path)
{
    char *data;
    size_t len;
    memset(m, 0, sizeof *m);
    QKV_TRY(qkv_read_file(path, &data, &len));
    qkv_status s = spm_model_read_memory(m, data, len, path);
    free(data);
    return s;
}

static void normalizer_free(spm_normalizer_spec *n)
{
    free(n->name);
    free(n->precompiled_charsmap);
    free(n->extra);
}

void spm_model_free(spm_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_pieces; i++)
        free(m->pieces[i].piece);
    free(m->pieces);
    spm_trainer_spec *t = &m->trainer;
    free(t->unk_piece);
    free(t->bos_piece);
    free(t->eos_piece);
    free(t->pad_piece);
    free(t->unk_surface);
    free(t->extra);
    normalizer_free(&m->normalizer);
    normalizer_free(&m->denormalizer);
    free(m->extra);
    memset(m, 0, sizeof *m);
}

/* ---- writing ------------------------------------------------------------ */

typedef struct {
    uint8_t *p;
    size_t len, cap;
    int oom;
} pb_buf;

static void buf_put(pb_buf *b, const void *data, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t nc = b->cap ? b->cap : 1024;
        while (nc < b->len + n)
            nc *= 2;
        uint8_t *np = realloc(b->p, nc);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void put_varint(pb_buf *b, uint64_t v)
{
    uint8_t t[10];
    int n = 0;
    do {
        t[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    buf_put(b, t, (size_t)n);
}

static void put_tag(pb_buf *b, uint32_t num, int wire) { put_varint(b, (uint64_t)num << 3 | (uint64_t)wire); }

static void put_int(pb_buf *b, uint32_t num, int v)
{
    put_tag(b, num, 0);
    put_varint(b, (uint64_t)(int64_t)v); /* int32: negatives sign-extended */
}

static void put_float(pb_buf *b, uint32_t num, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint8_t t[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    put_tag(b, num, 5);
    buf_put(b, t, 4);
}

static void put_bytes(pb_buf *b, uint32_t num, const void *data, size_t n)
{
    put_tag(b, num, 2);
    put_varint(b, n);
    buf_put(b, data, n);
}

static void put_str(pb_buf *b, uint32_t num, const char *s)
{
    if (s)
        put_bytes(b, num, s, strlen(s));
}

/* Appends a nested message held in sub. */
static void put_msg(pb_buf *b, uint32_t num, pb_buf *sub)
{
    b->oom |= sub->oom;
    put_bytes(b, num, sub->p ? sub->p : (const uint8_t *)"", sub->len);
    free(sub->p);
    memset(sub, 0, sizeof *sub);
}

static void write_normalizer(pb_buf *b, const spm_normalizer_spec *n)
{
    put_str(b, 1, n->name);
    if (n->precompiled_charsmap_len)
        put_bytes(b, 2, n->precompiled_charsmap, n->precompiled_charsmap_len);
    put_int(b, 3, !!n->add_dummy_prefix);
    put_int(b, 4, !!n->remove_extra_whitespaces);
    put_int(b, 5, !!n->escape_whitespaces);
    if (n->extra_len)
        buf_put(b, n->extra, n->extra_len);
}

qkv_status spm_model_serialize(const spm_model *m, uint8_t **out, size_t *out_len)
{
    pb_buf b = {0}, sub = {0};
    for (int i = 0; i < m->n_pieces; i++) {
        const spm_piece *p = &m->pieces[i];
        put_str(&sub, 1, p->piece ? p->piece : "");
        put_float(&sub, 2, p->score);
        if (p->type != SPM_NORMAL)
            put_int(&sub, 3, (int)p->type);
        put_msg(&b, 1, &sub);
    }
    const spm_trainer_spec *t = &m->trainer;
    put_int(&sub, 3, (int)t->model_type);
    put_int(&sub, 4, t->vocab_size);
    put_float(&sub, 10, t->character_coverage);
    put_int(&sub, 20, t->max_sentencepiece_length);
    put_int(&sub, 21, !!t->split_by_unicode_script);
    put_int(&sub, 22, !!t->split_by_whitespace);
    put_int(&sub, 23, !!t->split_by_number);
    put_int(&sub, 24, !!t->treat_whitespace_as_suffix);
    put_int(&sub, 25, !!t->split_digits);
    put_int(&sub, 35, !!t->byte_fallback);
    put_int(&sub, 40, t->unk_id);
    put_int(&sub, 41, t->bos_id);
    put_int(&sub, 42, t->eos_id);
    put_int(&sub, 43, t->pad_id);
    put_str(&sub, 44, t->unk_surface);
    put_str(&sub, 45, t->unk_piece);
    put_str(&sub, 46, t->bos_piece);
    put_str(&sub, 47, t->eos_piece);
    put_str(&sub, 48, t->pad_piece);
    if (t->extra_len)
        buf_put(&sub, t->extra, t->extra_len);
    put_msg(&b, 2, &sub);
    write_normalizer(&sub, &m->normalizer);
    put_msg(&b, 3, &sub);
    if (m->extra_len)
        buf_put(&b, m->extra, m->extra_len);
    if (m->has_denormalizer) {
        write_normalizer(&sub, &m->denormalizer);
        put_msg(&b, 5, &sub);
    }
    if (b.oom) {
        free(b.p);
        return qkv_fail(QKV_ERR_NOMEM, "out of memory serialising a sentencepiece model");
    }
    *out = b.p;
    *out_len = b.len;
    return QKV_OK;
}

qkv_status spm_model_write(const spm_model *m, const char *path)
{
    uint8_t *data;
    size_t len;
    QKV_TRY(spm_model_serialize(m, &data, &len));
    qkv_status s = qkv_write_file(path, data, len);
    free(data);
    return s;
}
