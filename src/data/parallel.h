/* Parallel corpus: two aligned text files (one sentence per line) read into
 * pairs of token-id sequences.
 *
 * The tokenizer is reached only through an encoder callback, so this module
 * does not depend on text/. All ids live in one int buffer; a pair is an
 * offset and two lengths into it (no allocation per sentence).
 *
 * What is stored per pair is the bare encoding (x, y) of the two lines; the
 * special ids are added by the batcher:
 *     source       x + [src_eos]        (Marian appends </s>; src_eos < 0: nothing)
 *     decoder in   [tgt_bos] + y        (Marian starts the decoder with <pad>)
 *     labels       y + [tgt_eos]
 * so a pair's padded lengths are |x| + (src_eos >= 0) and |y| + 1.
 *
 * Line handling, in this order (each pair is dropped for the first reason):
 *   - a trailing "\n" and then "\r" are removed;
 *   - a line holding bytes that are not UTF-8 is counted (invalid_utf8) and
 *     still given to the encoder, whose job it is to map them (to <unk> or
 *     byte pieces);
 *   - a pair with an empty side (no bytes, or no ids from the encoder, as for
 *     a line of spaces) is dropped and counted (empty);
 *   - a pair whose padded length on either side exceeds max_len is dropped and
 *     counted (too_long); max_len therefore bounds the positions the model sees.
 * Line counts that differ between the two files are an error (QKV_ERR_FORMAT)
 * naming both files and both counts; nothing is kept then. */
#ifndef QKV_DATA_PARALLEL_H
#define QKV_DATA_PARALLEL_H

#include <stddef.h>
#include <stdint.h>

#include "qkv.h"

/* Encodes text[0, len) (not NUL-terminated, no newline) into ids.
 * Returns the number of ids of the whole encoding, writing the first
 * min(that, max_ids) of them (snprintf's contract: a result above max_ids
 * means the buffer was too small; an encoder may stop counting early once it
 * knows the result exceeds max_ids). Returns a negative value on failure,
 * after recording a message with qkv_fail(). */
typedef int (*qkv_encode_fn)(void *ctx, const char *text, size_t len, int *ids, int max_ids);

typedef struct {
    qkv_encode_fn encode_src;
    void *src_ctx;
    qkv_encode_fn encode_tgt;
    void *tgt_ctx;
    int src_eos;        /* appended to the source; < 0 appends nothing */
    int tgt_bos;        /* >= 0: first decoder input id */
    int tgt_eos;        /* >= 0: last label */
    int max_len;        /* > 0: longest padded side kept; 0: no limit */
    int src_vocab_size; /* > 0: ids from encode_src must lie in [0, size); 0: unchecked */
    int tgt_vocab_size; /* the same for encode_tgt */
} qkv_parallel_options;

/* Counts for the user: the library never prints them. */
typedef struct {
    int64_t lines;        /* lines in each file */
    int64_t kept;         /* pairs kept */
    int64_t empty;        /* pairs dropped for an empty side */
    int64_t too_long;     /* pairs dropped by max_len */
    int64_t invalid_utf8; /* lines (either file) holding bytes that are not UTF-8 */
    int64_t src_tokens;   /* kept ids, bare (without specials) */
    int64_t tgt_tokens;
} qkv_parallel_stats;

/* One kept pair: x = ids[off, off + src_len), y = ids[off + src_len, off + src_len + tgt_len). */
typedef struct {
    size_t off;
    int32_t src_len;
    int32_t tgt_len;
    int64_t line; /* 1-based line number in the files */
} qkv_pair;

typedef struct {
    int *ids;
    size_t n_ids, cap_ids;
    qkv_pair *pairs;
    int64_t n_pairs, cap_pairs;
    int src_eos, tgt_bos, tgt_eos; /* copied from the options */
    int max_len;
} qkv_parallel;

/* Options with no encoder, src_eos = tgt_eos = 2 (SentencePiece's </s>),
 * tgt_bos = 0, max_len = 0, vocabularies unchecked. */
qkv_parallel_options qkv_parallel_default_options(void);

/* Checks the options (QKV_ERR_CONFIG naming the field). */
qkv_status qkv_parallel_validate(const qkv_parallel_options *o);

/* Reads src_path and tgt_path into *out (which the caller frees with
 * qkv_parallel_free, on failure too). stats may be NULL.
 * Errors: QKV_ERR_IO (a file cannot be opened or read, naming it),
 * QKV_ERR_FORMAT (line counts differ; an encoder failure or an id outside
 * the vocabulary, naming the file and line), QKV_ERR_CONFIG, QKV_ERR_NOMEM. */
qkv_status qkv_parallel_read(qkv_parallel *out, const char *src_path, const char *tgt_path,
                             const qkv_parallel_options *o, qkv_parallel_stats *stats);

/* Reads two aligned in-memory texts (newline-separated, as the files would
 * be); src_name and tgt_name stand for the file names in messages. */
qkv_status qkv_parallel_read_text(qkv_parallel *out, const char *src, size_t src_len, const char *src_name,
                                  const char *tgt, size_t tgt_len, const char *tgt_name,
                                  const qkv_parallel_options *o, qkv_parallel_stats *stats);

void qkv_parallel_free(qkv_parallel *c);

/* The bare ids of pair i (0 <= i < n_pairs). */
static inline const int *qkv_parallel_src(const qkv_parallel *c, int64_t i) { return c->ids + c->pairs[i].off; }
static inline const int *qkv_parallel_tgt(const qkv_parallel *c, int64_t i)
{
    return c->ids + c->pairs[i].off + c->pairs[i].src_len;
}
/* Padded lengths of pair i: source with </s>, target with the start id (or </s>). */
static inline int qkv_parallel_src_padded(const qkv_parallel *c, int64_t i)
{
    return c->pairs[i].src_len + (c->src_eos >= 0);
}
static inline int qkv_parallel_tgt_padded(const qkv_parallel *c, int64_t i) { return c->pairs[i].tgt_len + 1; }

#endif
