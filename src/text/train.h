/* Vocabulary training (qkv vocab train): what the unigram and BPE trainers
 * share. The flow, as in sentencepiece's trainer_interface.cc:
 *
 *   lines ──► normalize (▁ for spaces, dummy prefix) ──► user-defined symbols
 *   cut out ──► character coverage (rare chars -> U+2585) ──► words (split
 *   before each ▁), counted once ──► train_unigram / train_bpe ──► pieces and
 *   scores ──► train_build_model (special, user-defined and byte pieces at
 *   their ids) ──► spm_model_write.
 *
 * Text is handled as arrays of code points (uint32_t) throughout. */
#ifndef QKV_TEXT_TRAIN_H
#define QKV_TEXT_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "qkv.h"
#include "text/spm_model.h"
#include "text/spm_normalizer.h"

#define TRAIN_WS 0x2581u       /* ▁, sentencepiece's whitespace */
#define TRAIN_UNK_CHAR 0x2585u /* ▅, stands for characters left out by the coverage */
#define TRAIN_BOUNDARY 0x09u   /* where a user-defined symbol was cut out */
#define TRAIN_ANY_SCRIPT (-1)

/* Unique words with their counts. A word is stored once per (text, what
 * follows it): the suffix array of the unigram seeds needs to know whether a
 * word was followed by ▁ or ended its sentence. */
typedef struct {
    uint32_t *chars; /* every word's code points, concatenated */
    size_t *offset;  /* [n + 1]: word i is chars[offset[i] .. offset[i+1]) */
    int64_t *freq;   /* [n] */
    uint8_t *ws_after; /* [n]: 1 when the word was followed by ▁ */
    int n;
} train_words;

typedef struct {
    const qkv_vocab_train_options *opt;
    float coverage;      /* the character coverage used */
    uint32_t *req_chars; /* required characters, most frequent first */
    int64_t *req_freq;
    int n_req;
    train_words words;
    int64_t n_sentences; /* sentences used (after sampling, empty ones dropped) */
    int64_t n_lines;     /* non-empty lines read (before sampling) */
    int64_t n_skipped_long; /* lines over max_sentence_bytes, skipped */
    int64_t n_skipped_reserved; /* lines holding ▅, skipped as sentencepiece does */
    int64_t n_invalid_utf8; /* bytes replaced by U+FFFD */
    int n_meta;          /* pieces with fixed ids: specials, user-defined, bytes */
} train_corpus;

/* Reads, samples and normalizes the input files, applies the character
 * coverage and counts the words. */
qkv_status train_corpus_load(train_corpus *c, const qkv_vocab_train_options *opt,
                             const char *const *inputs, int n_inputs);
void train_corpus_free(train_corpus *c);

/* The trainers' result: normal pieces in id order (after the meta pieces). */
typedef struct {
    char **piece; /* UTF-8 */
    float *score;
    int n;
} train_pieces;
void train_pieces_free(train_pieces *p);

qkv_status train_unigram(train_pieces *out, const train_corpus *c);
qkv_status train_bpe(train_pieces *out, const train_corpus *c);

/* Whether s may be a piece: sentencepiece's IsValidSentencePiece (length,
 * ▁ only in front, one Unicode script, no ▅, NUL or boundary). */
int train_valid_piece(const qkv_vocab_train_options *opt, const uint32_t *s, int len);
/* Unicode script id (0 Common, 1 Inherited, 2 Han incl. kana, ...). */
int train_script(uint32_t c);

/* Code points <-> UTF-8. train_utf8 writes at most 4 bytes, returns count. */
int train_utf8(char *out, uint32_t c);
/* malloc'ed NUL-terminated UTF-8 of s[0..len), NULL when out of memory. */
char *train_utf8_string(const uint32_t *s, int len);

/* Hash set of code-point strings, mapping each to a dense id (insertion
 * order). Keys are copied into the set. */
typedef struct {
    uint32_t *buf;
    size_t buf_len, buf_cap;
    size_t *off; /* [n]: key i at buf + off[i], length len[i] */
    int *len;
    int n, cap_ids;
    int32_t *slot; /* -1 empty */
    uint64_t *slot_hash;
    size_t cap; /* power of two */
} train_strset;

/* FNV-1a over 32-bit units: extend one code point at a time. */
#define TRAIN_HASH_INIT 0xcbf29ce484222325ull
static inline uint64_t train_hash_step(uint64_t h, uint32_t c) { return (h ^ c) * 0x100000001b3ull; }
uint64_t train_hash(const uint32_t *s, int len);

qkv_status train_strset_init(train_strset *s, size_t expected);
void train_strset_free(train_strset *s);
/* Id of s[0..len) with hash h (= train_hash(s, len)), or -1. */
int train_strset_find(const train_strset *set, const uint32_t *s, int len, uint64_t h);
/* Id of s[0..len), inserting it when absent (*added says which). */
qkv_status train_strset_add(train_strset *set, const uint32_t *s, int len, uint64_t h, int *id, int *added);
static inline const uint32_t *train_strset_key(const train_strset *set, int id) { return set->buf + set->off[id]; }

/* sentencepiece's normalizer as the trainer applies it (spm_normalizer.h
 * with the charsmap of opt->normalization, no user-defined symbols: those
 * are cut out afterwards, as sentencepiece's trainer does). */
typedef struct {
    spm_normalizer_spec spec; /* the normalizer points into it: do not copy */
    spm_normalizer norm;
    int ready;
} train_normalizer;
qkv_status train_normalizer_init(train_normalizer *n, const qkv_vocab_train_options *opt);
void train_normalizer_free(train_normalizer *n);
/* Normalizes one line into malloc'ed code points; *bad counts invalid UTF-8
 * bytes (each replaced by U+FFFD). */
qkv_status train_normalize(const train_normalizer *n, const char *s, size_t len, uint32_t **out, int *out_len,
                           int64_t *bad);
/* Decodes UTF-8 (invalid bytes -> U+FFFD, counted in *bad). */
qkv_status train_decode_utf8(const char *s, size_t len, uint32_t **out, int *out_len, int64_t *bad);
/* The precompiled charsmap of a normalization rule name ("identity": none);
 * QKV_ERR_CONFIG for names qkv does not carry. */
qkv_status train_charsmap(const char *name, const uint8_t **data, size_t *len);

/* The unigram trainer's seed pieces into *set (initialised here) with their
 * log-probabilities in *score (malloc'ed, by set id); characters first. */
qkv_status train_unigram_seeds(train_strset *set, double **score, const train_corpus *c);

/* Sends a progress line to opt->progress (printf-style). */
void train_progress(const qkv_vocab_train_options *opt, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The whole pipeline into an in-memory model (what qkv_vocab_train writes).
 * On success the caller releases m with spm_model_free. */
qkv_status train_vocab_model(spm_model *m, const qkv_vocab_train_options *opt, const char *const *inputs,
                             int n_inputs);
/* Writes PREFIX.vocab: "piece<TAB>score" per line, as spm_train does. */
qkv_status train_write_vocab(const spm_model *m, const char *path);

#endif
