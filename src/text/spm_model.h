/* A SentencePiece model in memory: the fields of sentencepiece's ModelProto
 * (sentencepiece_model.proto) that encoding, decoding and training use.
 * spm_model.c reads and writes the protobuf wire format; the unigram and BPE
 * trainers fill this struct and hand it to the writer.
 * Keep in sync with spm_model.c (reader and writer) and with the field
 * numbers of sentencepiece_model.proto. */
#ifndef QKV_TEXT_SPM_MODEL_H
#define QKV_TEXT_SPM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "qkv.h"

typedef enum { /* SentencePiece.Type */
    SPM_NORMAL = 1,
    SPM_UNKNOWN = 2,
    SPM_CONTROL = 3,
    SPM_USER_DEFINED = 4,
    SPM_UNUSED = 5,
    SPM_BYTE = 6
} spm_piece_type;

typedef enum { /* TrainerSpec.ModelType */
    SPM_UNIGRAM = 1,
    SPM_BPE = 2,
    SPM_WORD = 3,
    SPM_CHAR = 4
} spm_model_type;

typedef struct {
    char *piece; /* UTF-8, NUL-terminated */
    float score;
    spm_piece_type type;
} spm_piece;

typedef struct { /* NormalizerSpec */
    char *name;                  /* "nmt_nfkc", "identity", ... */
    uint8_t *precompiled_charsmap; /* may be NULL (identity) */
    size_t precompiled_charsmap_len;
    int add_dummy_prefix;        /* default true */
    int remove_extra_whitespaces; /* default true */
    int escape_whitespaces;      /* default true */
    /* Fields qkv does not interpret (normalization_rule_tsv, and any field
     * unknown to this reader), kept as raw protobuf bytes (tag + value) so
     * that read -> write preserves them. May be NULL. */
    uint8_t *extra;
    size_t extra_len;
} spm_normalizer_spec;

typedef struct { /* the TrainerSpec fields that matter outside training */
    spm_model_type model_type;
    int vocab_size;
    float character_coverage;
    int byte_fallback;
    int unk_id, bos_id, eos_id, pad_id; /* -1: absent */
    char *unk_piece, *bos_piece, *eos_piece, *pad_piece;
    char *unk_surface; /* " \u2047 " by default */
    int treat_whitespace_as_suffix;
    int split_digits;
    int split_by_whitespace; /* default true */
    int split_by_unicode_script; /* default true */
    int split_by_number;         /* default true */
    int max_sentencepiece_length; /* default 16 */
    /* Raw protobuf bytes of the TrainerSpec fields not held above (input,
     * model_prefix, user_defined_symbols, seeds, ...), written back verbatim.
     * May be NULL. A trainer may leave it empty. */
    uint8_t *extra;
    size_t extra_len;
} spm_trainer_spec;

typedef struct {
    spm_piece *pieces;
    int n_pieces;
    spm_trainer_spec trainer;
    spm_normalizer_spec normalizer;
    int has_denormalizer;
    spm_normalizer_spec denormalizer;
    /* Raw bytes of ModelProto fields not held above (self_test_data, ...). */
    uint8_t *extra;
    size_t extra_len;
} spm_model;

/* Fills m with sentencepiece's defaults (no pieces; unigram; ids unk 0, bos 1,
 * eos 2, pad -1; the default special pieces; all split_* flags true; the
 * normalizer's three whitespace flags true, no charsmap). Strings are owned
 * by m (spm_model_free releases them). */
qkv_status spm_model_init(spm_model *m);

/* Reads a ModelProto (.model file). Unknown fields are skipped (and kept in
 * the extra buffers); a truncated or malformed file gives QKV_ERR_FORMAT
 * naming the field and byte offset. On failure *m is left empty. Does not
 * check the vocabulary's consistency (see spm_vocab in spm.h). */
qkv_status spm_model_read(spm_model *m, const char *path);
/* The same from memory; name is used in messages. */
qkv_status spm_model_read_memory(spm_model *m, const void *data, size_t len, const char *name);
/* Serialises m to protobuf wire format (malloc'ed *out). */
qkv_status spm_model_serialize(const spm_model *m, uint8_t **out, size_t *out_len);
/* Writes m to path atomically. */
qkv_status spm_model_write(const spm_model *m, const char *path);
/* Releases everything m owns and zeroes it; NULL-safe. */
void spm_model_free(spm_model *m);

#endif
