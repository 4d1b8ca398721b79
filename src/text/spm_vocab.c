/* Loading a SentencePiece model into a qkv_vocab (the checks of
 * sentencepiece's ModelInterface::InitializePieces), the public API, and
 * decoding (sentencepiece_processor.cc's Decode, 0.1.97). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "text/spm.h"
#include "text/utf8.h"

#define SPACE_SYMBOL "\xE2\x96\x81" /* U+2581 */

int spm_piece_to_byte(const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    if (len != 6 || memcmp(s, "<0x", 3) || s[5] != '>')
        return -1;
    const char *hi = memchr(hex, s[3], 16), *lo = memchr(hex, s[4], 16);
    if (!hi || !lo || !s[3] || !s[4])
        return -1;
    return (int)((hi - hex) * 16 + (lo - hex));
}

int spm_piece_id(const qkv_vocab *v, const char *s, size_t len)
{
    int id = spm_trie_find(&v->reserved, s, len);
    if (id >= 0)
        return id;
    id = spm_trie_find(&v->pieces, s, len);
    return id >= 0 ? id : v->unk_id;
}

static qkv_status build(qkv_vocab *v, const char *name)
{
    const spm_model *m = &v->m;
    const spm_trainer_spec *t = &m->trainer;
    if (m->n_pieces == 0)
        return qkv_fail(QKV_ERR_FORMAT, "%s: the model has no pieces", name);
    spm_trie_init(&v->pieces);
    spm_trie_init(&v->reserved);
    spm_trie_init(&v->users);
    v->unk_id = -1;
    for (int b = 0; b < 256; b++)
        v->byte_id[b] = -1;
    v->min_score = 3.402823466e+38f; /* FLT_MAX, FLT_MIN: sentencepiece's */
    v->max_score = 1.175494351e-38f; /* starting values, kept for parity */
    for (int i = 0; i < m->n_pieces; i++) {
        const spm_piece *p = &m->pieces[i];
        size_t len = strlen(p->piece);
        if (!len)
            return qkv_fail(QKV_ERR_FORMAT, "%s: piece %d is empty", name, i);
        int normal = p->type == SPM_NORMAL || p->type == SPM_USER_DEFINED || p->type == SPM_UNUSED, added;
        QKV_TRY(spm_trie_add(normal ? &v->pieces : &v->reserved, p->piece, len, i, &added));
        if (!added)
            return qkv_fail(QKV_ERR_FORMAT, "%s: piece %d \"%s\" is already defined", name, i, p->piece);
        if (p->type == SPM_USER_DEFINED) {
            QKV_TRY(spm_trie_add(&v->users, p->piece, len, i, &added));
            v->has_users = 1;
        }
        if (p->type == SPM_UNKNOWN) {
            if (v->unk_id >= 0)
                return qkv_fail(QKV_ERR_FORMAT, "%s: piece %d is a second unknown piece (first: %d)", name, i,
                                v->unk_id);
            v->unk_id = i;
        }
        if (p->type == SPM_BYTE) {
            if (!t->byte_fallback)
                return qkv_fail(QKV_ERR_FORMAT, "%s: byte piece %d \"%s\" found but byte_fallback is false", name,
                                i, p->piece);
            int b = spm_piece_to_byte(p->piece, len);
            if (b < 0)
                return qkv_fail(QKV_ERR_FORMAT, "%s: byte piece %d \"%s\" is not of the form <0xXX>", name, i,
                                p->piece);
            v->byte_id[b] = i;
        }
        if (p->type == SPM_NORMAL) {
            if (p->score < v->min_score)
                v->min_score = p->score;
            if (p->score > v->max_score)
                v->max_score = p->score;
        }
    }
    for (int i = 0; i < m->n_pieces; i++) {
        const spm_piece *p = &m->pieces[i];
        if (p->type != SPM_NORMAL && p->type != SPM_USER_DEFINED && p->type != SPM_UNUSED &&
            spm_trie_find(&v->pieces, p->piece, strlen(p->piece)) >= 0)
            v->reserved_shadows = 1;
    }
    if (v->unk_id < 0)
        return qkv_fail(QKV_ERR_FORMAT, "%s: no piece has type UNKNOWN (<unk> is not defined)", name);
    if (t->byte_fallback)
        for (int b = 0; b < 256; b++)
            if (v->byte_id[b] < 0)
                return qkv_fail(QKV_ERR_FORMAT, "%s: byte_fallback is on but byte piece <0x%02X> is missing", name,
                                b);
    qkv_status s = spm_normalizer_init(&v->norm, &m->normalizer, t->treat_whitespace_as_suffix,
                                       v->has_users ? &v->users : NULL);
    if (s == QKV_OK && m->has_denormalizer && m->denormalizer.precompiled_charsmap_len) {
        s = spm_normalizer_init(&v->denorm, &m->denormalizer, 0, NULL);
        v->has_denorm = s == QKV_OK;
    }
    if (s != QKV_OK)
        return qkv_fail_context(s, "%s", name);
    return QKV_OK;
}

static qkv_status finish_load(qkv_vocab *v, const char *name, qkv_vocab **out)
{
    qkv_status s = build(v, name);
    if (s != QKV_OK) {
        qkv_vocab_free(v);
        return s;
    }
    *out = v;
    return QKV_OK;
}

qkv_status qkv_vocab_load(const char *path, qkv_vocab **out)
{
    *out = NULL;
    qkv_vocab *v = calloc(1, sizeof *v);
    if (!v)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    qkv_status s = spm_model_read(&v->m, path);
    if (s != QKV_OK) {
        free(v);
        return s;
    }
    return finish_load(v, path, out);
}

qkv_status qkv_vocab_load_memory(const void *data, size_t len, qkv_vocab **out)
{
    *out = NULL;
    qkv_vocab *v = calloc(1, sizeof *v);
    if (!v)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    qkv_status s = spm_model_read_memory(&v->m, data, len, "<memory>");
    if (s != QKV_OK) {
        free(v);
        return s;
    }
    return finish_load(v, "<memory>", out);
}

qkv_status qkv_vocab_save(const qkv_vocab *v, const char *path) { return spm_model_write(&v->m, path); }

void qkv_vocab_free(qkv_vocab *v)
{
    if (!v)
        return;
    spm_normalizer_free(&v->norm);
    spm_normalizer_free(&v->denorm);
    spm_trie_free(&v->pieces);
    spm_trie_free(&v->reserved);
    spm_trie_free(&v->users);
    spm_model_free(&v->m);
    free(v);
}

int qkv_vocab_size(const qkv_vocab *v) { return v->m.n_pieces; }

const char *qkv_vocab_piece(const qkv_vocab *v, int id)
{
    return id >= 0 && id < v->m.n_pieces ? v->m.pieces[id].piece : NULL;
}

int qkv_vocab_piece_to_id(const qkv_vocab *v, const char *piece) { return spm_piece_id(v, piece, strlen(piece)); }

/* sentencepiece's special ids: the id of the configured piece when that
 * piece has the expected type, else -1. */
static int special_id(const qkv_vocab *v, const char *piece, spm_piece_type type)
{
    if (!piece)
        return -1;
    int id = qkv_vocab_piece_to_id(v, piece);
    return v->m.pieces[id].type == type ? id : -1;
}

int qkv_vocab_unk_id(const qkv_vocab *v) { return v->unk_id; }
int qkv_vocab_bos_id(const qkv_vocab *v) { return special_id(v, v->m.trainer.bos_piece, SPM_CONTROL); }
int qkv_vocab_eos_id(const qkv_vocab *v) { return special_id(v, v->m.trainer.eos_piece, SPM_CONTROL); }
int qkv_vocab_pad_id(const qkv_vocab *v) { return special_id(v, v->m.trainer.pad_piece, SPM_CONTROL); }

qkv_status qkv_vocab_encode(const qkv_vocab *v, const char *text, size_t len, int **ids, size_t *n,
                            size_t *n_invalid)
{
    spm_state st = {0};
    *ids = NULL;
    *n = 0;
    qkv_status s = spm_encode(v, &st, text, len);
    if (s == QKV_OK && st.n_tok) {
        *ids = malloc(st.n_tok * sizeof **ids);
        if (!*ids)
            s = qkv_fail(QKV_ERR_NOMEM, "out of memory");
        else
            for (size_t i = 0; i < st.n_tok; i++)
                (*ids)[i] = st.tok[i].id;
    }
    if (s == QKV_OK) {
        *n = st.n_tok;
        if (n_invalid)
            *n_invalid = st.n_invalid;
    }
    spm_state_free(&st);
    return s;
}

/* ---- decoding ------------------------------------------------------------- */

static qkv_status put(spm_str *out, const char *s, size_t n)
{
    QKV_TRY(spm_str_reserve(out, out->len + n + 1));
    memcpy(out->p + out->len, s, n);
    out->len += n;
    out->p[out->len] = 0;
    return QKV_OK;
}

/* A run of byte pieces is reassembled into UTF-8; each malformed byte
 * becomes U+FFFD. Returns whether anything was written. */
static qkv_status flush_bytes(spm_str *out, const unsigned char *bytes, size_t n)
{
    size_t i = 0, len;
    int valid;
    while (i < n) {
        utf8_decode((const char *)bytes + i, n - i, &len, &valid);
        if (valid)
            QKV_TRY(put(out, (const char *)bytes + i, len));
        else
            QKV_TRY(put(out, "\xEF\xBF\xBD", 3));
        i += len;
    }
    return QKV_OK;
}

static qkv_status put_unescaped(spm_str *out, const char *s, size_t n)
{
    QKV_TRY(spm_str_reserve(out, out->len + n + 1));
    for (size_t i = 0; i < n;) {
        if (i + 3 <= n && !memcmp(s + i, SPACE_SYMBOL, 3)) {
            out->p[out->len++] = ' ';
            i += 3;
        } else {
            out->p[out->len++] = s[i++];
        }
    }
    out->p[out->len] = 0;
    return QKV_OK;
}

qkv_status spm_decode(const qkv_vocab *v, spm_str *out, const int *ids, const char *const *pieces,
                      const size_t *piece_lens, size_t n)
{
    const spm_model *m = &v->m;
    const spm_normalizer_spec *ns = &m->normalizer;
    /* The leading U+2581 is the dummy prefix; with remove_extra_whitespaces
     * every leading one goes (the normalizer never leaves more than one). */
    int strip_lead = ns->add_dummy_prefix || ns->remove_extra_whitespaces;
    int bos_ws = 1;
    unsigned char *bytes = NULL;
    size_t n_bytes = 0;
    qkv_status s = QKV_OK;
    size_t start = out->len;
    QKV_TRY(spm_str_reserve(out, out->len + 1));
    out->p[out->len] = 0;
    if (n) {
        bytes = malloc(n);
        if (!bytes)
            return qkv_fail(QKV_ERR_NOMEM, "out of memory decoding");
    }
    for (size_t i = 0; i < n && s == QKV_OK; i++) {
        int id = ids[i];
        if (id < 0 || id >= m->n_pieces) {
            s = qkv_fail(QKV_ERR_ARG, "id %d at position %zu is out of range [0, %d)", id, i, m->n_pieces);
            break;
        }
        const spm_piece *p = &m->pieces[id];
        const char *ps = pieces && pieces[i] ? pieces[i] : p->piece;
        size_t pl = pieces && pieces[i] ? piece_lens[i] : strlen(p->piece);
        if (p->type == SPM_BYTE) {
            bytes[n_bytes++] = (unsigned char)spm_piece_to_byte(p->piece, strlen(p->piece));
            continue;
        }
        if (n_bytes) {
            s = flush_bytes(out, bytes, n_bytes);
            n_bytes = 0;
            bos_ws = 0;
            if (s != QKV_OK)
                break;
        }
        size_t before = out->len;
        int consumed = 0;
        if (p->type == SPM_CONTROL)
            continue;
        if (p->type == SPM_UNKNOWN) {
            /* the <unk> piece shows as unk_surface; an unknown string given
             * as a piece is passed through as written */
            if (pl == strlen(p->piece) && !memcmp(ps, p->piece, pl)) {
                const char *u = m->trainer.unk_surface ? m->trainer.unk_surface : " \xE2\x81\x87 ";
                s = put(out, u, strlen(u));
            } else {
                s = put(out, ps, pl);
            }
        } else {
            if (bos_ws && strip_lead && pl >= 3 && !memcmp(ps, SPACE_SYMBOL, 3)) {
                ps += 3, pl -= 3;
                consumed = !ns->remove_extra_whitespaces;
            }
            s = put_unescaped(out, ps, pl);
        }
        if (consumed || out->len > before)
            bos_ws = 0;
    }
    if (s == QKV_OK && n_bytes)
        s = flush_bytes(out, bytes, n_bytes);
    free(bytes);
    if (s == QKV_OK && v->has_denorm) {
        spm_str tmp = {0};
        s = spm_normalize(&v->denorm, &tmp, out->p + start, out->len - start, NULL);
        if (s == QKV_OK) {
            out->len = start;
            s = put(out, tmp.p ? tmp.p : "", tmp.len);
        }
        spm_str_free(&tmp);
    }
    return s;
}

qkv_status qkv_vocab_decode(const qkv_vocab *v, const int *ids, size_t n, char **text, size_t *len)
{
    spm_str out = {0};
    *text = NULL;
    *len = 0;
    qkv_status s = spm_decode(v, &out, ids, NULL, NULL, n);
    if (s != QKV_OK) {
        spm_str_free(&out);
        return s;
    }
    *text = out.p;
    *len = out.len;
    return QKV_OK;
}
