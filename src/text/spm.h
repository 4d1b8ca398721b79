/* The loaded vocabulary behind the public qkv_vocab handle, and the
 * encoder/decoder internals shared by spm_vocab.c, spm_encode.c and
 * spm_decode.c. Rules follow sentencepiece 0.1.97 (model_interface.cc,
 * unigram_model.cc, bpe_model.cc, sentencepiece_processor.cc).
 *
 * The vocabulary is immutable after load; everything an encode call mutates
 * lives in an spm_state, so one vocabulary serves many threads. */
#ifndef QKV_TEXT_SPM_H
#define QKV_TEXT_SPM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "qkv.h"
#include "text/spm_model.h"
#include "text/spm_normalizer.h"
#include "text/spm_trie.h"

struct qkv_vocab {
    spm_model m;
    spm_trie pieces;   /* NORMAL, USER_DEFINED, UNUSED pieces -> id */
    spm_trie reserved; /* UNKNOWN, CONTROL, BYTE pieces -> id */
    spm_trie users;    /* USER_DEFINED pieces (prefix matcher) */
    int has_users;
    int reserved_shadows; /* a reserved piece is also a normal piece: ids
                             then need the reserved-first lookup */
    spm_normalizer norm, denorm;
    int has_denorm;
    int unk_id;
    float min_score, max_score; /* over NORMAL pieces (unigram) */
    int byte_id[256];           /* byte piece "<0xXX>" ids, -1 if absent */
};

/* One output token: its id and where its surface lies in the normalized
 * text (byte-fallback tokens carry the span of the byte they stand for). */
typedef struct {
    int id;
    uint32_t off, len;
} spm_token;

/* Per-thread scratch for encoding, reused across calls. */
typedef struct {
    spm_str normalized;
    spm_token *tok;
    size_t n_tok, tok_cap;
    void *work; /* Viterbi arrays */
    size_t work_cap;
    struct spm_bpe_work *bpe; /* BPE arrays, kept between calls */
    size_t n_invalid; /* malformed UTF-8 bytes in the last input */
} spm_state;

void spm_state_free(spm_state *st);

/* Normalizes and encodes text[0..len) into st->tok (surfaces point into
 * st->normalized). */
qkv_status spm_encode(const qkv_vocab *v, spm_state *st, const char *text, size_t len);

/* Unigram Viterbi / BPE merges over an already normalized string; append to
 * st->tok, unknowns as unk_id (byte fallback applied by spm_encode). */
qkv_status spm_encode_unigram(const qkv_vocab *v, spm_state *st, const char *s, size_t len);
qkv_status spm_encode_bpe(const qkv_vocab *v, spm_state *st, const char *s, size_t len);

/* Id of a piece string, including reserved ones; unk_id if absent
 * (sentencepiece's PieceToId). */
int spm_piece_id(const qkv_vocab *v, const char *s, size_t len);

/* Decodes pieces (with ids) into text, appending to out. pieces[i] may be
 * NULL to mean the vocabulary's piece for ids[i]. */
qkv_status spm_decode(const qkv_vocab *v, spm_str *out, const int *ids, const char *const *pieces,
                      const size_t *piece_lens, size_t n);

/* The piece text of token i as sentencepiece reports it: the vocabulary's
 * piece, except for unknowns, which show their surface text. */
static inline const char *spm_token_piece(const qkv_vocab *v, const spm_state *st, size_t i, size_t *len)
{
    const spm_token *t = &st->tok[i];
    if (t->id == v->unk_id) {
        *len = t->len;
        return st->normalized.p + t->off;
    }
    const char *p = v->m.pieces[t->id].piece;
    *len = strlen(p);
    return p;
}

/* Byte value of a "<0xXX>" piece or -1. */
int spm_piece_to_byte(const char *s, size_t len);

#endif
